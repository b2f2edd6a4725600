//! Corrupted boot sectors and MFT/index bytes give located errors, never panics.

use crate::ntfsw_common;

use ntfsw_common::*;
use reseal_disk::MemDevice;
use reseal_ntfs::{Error, Offset, Volume};

fn image() -> Vec<u8> {
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 8, 4096);
    {
        let m = Mount::new(&img, &td.path().join("m"));
        std::fs::create_dir(m.dir.join("d")).unwrap();
        for i in 0..40 {
            std::fs::write(m.dir.join(format!("d/file-{i}")), vec![i as u8; 100 * i]).unwrap();
        }
    }
    std::fs::read(&img).unwrap()
}

#[test]
fn boot_sector_errors_are_located() {
    if !have("mkntfs") || !have("ntfs-3g") {
        return;
    }
    let base = image();
    for (off, val, want_off) in [
        (3usize, b'X', 3u64),
        (0x0B, 3, 0x0B),
        (0x0D, 3, 0x0D),
        (0x40, 0x7F, 0x40),
    ] {
        let mut b = base.clone();
        b[off] = val;
        match Volume::open(MemDevice::new(b)) {
            Err(Error::Corrupt {
                structure: "boot sector",
                offset,
                ..
            }) => assert_eq!(offset, Offset::Volume(want_off), "field {off:#x}"),
            other => panic!("byte {off:#x}: expected a boot-sector error, got {other:?}"),
        }
    }
    // No 0x55AA marker: opened, as ntfs-3g (ntfsinfo, ntfsls) opens such a volume and as the
    // probe accepts it (one boot-sector parser).
    let mut b = base.clone();
    b[510] = 0;
    assert!(Volume::open(MemDevice::new(b)).is_ok());
    // MFT LCN past the end
    let mut b = base.clone();
    b[0x30..0x38].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        Volume::open(MemDevice::new(b)),
        Err(Error::Corrupt {
            offset: Offset::Volume(0x30),
            ..
        })
    ));
}

#[test]
fn mutated_metadata_never_panics() {
    if !have("mkntfs") || !have("ntfs-3g") {
        return;
    }
    let base = image();
    let v0 = Volume::open(MemDevice::new(base.clone())).unwrap();
    let cs = u64::from(v0.boot_sector().cluster_size);
    let mft = (v0.boot_sector().mft_lcn * cs) as usize;
    drop(v0);
    let mut seed = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut errors = 0;
    let iterations: usize = std::env::var("RESEAL_MUTATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    for _ in 0..iterations {
        let mut b = base.clone();
        for _ in 0..1 + next() % 6 {
            let pos = mft + (next() % (80 * 1024)) as usize;
            b[pos] = next() as u8;
        }
        let Ok(mut v) = Volume::open(MemDevice::new(b)) else {
            errors += 1;
            continue;
        };
        let mut r = Vec::new();
        r.push(v.read_dir("d").map(|_| ()));
        r.push(v.read_file("d/file-7").map(|_| ()));
        r.push(v.security_descriptor("d/file-3").map(|_| ()));
        r.push(v.write_file("d/new", b"data").map(|_| ()));
        r.push(v.remove("d/file-9"));
        r.push(v.set_len("d/file-20", 9000));
        for x in r {
            if let Err(e) = x {
                errors += 1;
                // Every error renders a message naming something.
                assert!(!e.to_string().is_empty());
            }
        }
    }
    assert!(errors > 0, "mutations were never detected");
}

/// Patch MFT record `num` of the volume bytes `b` (fixups removed, `f` applied, fixups put
/// back), so the record still reads as untorn and the hostile value is what the engine sees.
fn patch_record(b: &mut [u8], num: u64, f: impl FnOnce(&mut reseal_ntfs::record::Record)) {
    use reseal_ntfs::record;
    let boot = *Volume::open(MemDevice::new(b.to_vec()))
        .unwrap()
        .boot_sector();
    let rs = boot.record_size as usize;
    let at = (boot.mft_lcn * u64::from(boot.cluster_size)) as usize + num as usize * rs;
    let mut buf = b[at..at + rs].to_vec();
    record::remove_fixups(&mut buf, "MFT record", Some(num)).unwrap();
    let mut r = record::Record { num, buf };
    f(&mut r);
    record::apply_fixups(&mut r.buf, "MFT record", Some(num)).unwrap();
    b[at..at + rs].copy_from_slice(&r.buf);
}

/// Offset in record `r` of the last 8 bytes of the END entry of `$INDEX_ROOT` `name` (its
/// sub-node VCN), or `None` when the END entry has no sub-node.
fn root_end_vcn(r: &reseal_ntfs::record::Record, name: &str) -> Option<usize> {
    let name: Vec<u16> = name.encode_utf16().collect();
    let a = r
        .find(reseal_ntfs::attribute::INDEX_ROOT, &name)
        .unwrap()
        .unwrap();
    let v = a.off + a.value_off;
    let le32 = |o: usize| u32::from_le_bytes(r.buf[o..o + 4].try_into().unwrap()) as usize;
    let le16 = |o: usize| u16::from_le_bytes(r.buf[o..o + 2].try_into().unwrap());
    let mut p = v + 16 + le32(v + 16);
    loop {
        let len = usize::from(le16(p + 8));
        let flags = le16(p + 12);
        if flags & 2 != 0 {
            return (flags & 1 != 0).then_some(p + len - 8);
        }
        p += len;
    }
}

/// A sub-node VCN whose byte offset fits in a u64 but whose block end does not
/// (`u64::MAX / block`): before the checked arithmetic this panicked in debug builds. Every
/// operation through that index is now a located error.
#[test]
fn hostile_sub_node_vcn_is_an_error() {
    if !have("mkntfs") || !have("ntfs-3g") {
        return;
    }
    let mut b = image();
    let v = Volume::open(MemDevice::new(b.clone())).unwrap();
    let d = v.lookup("d").unwrap();
    let r = v.read_record(d).unwrap();
    let at = root_end_vcn(&r, "$I30").expect("d's index has INDX blocks");
    drop(v);
    let hostile = u64::MAX / 4096;
    assert!(hostile.checked_mul(4096).is_some());
    patch_record(&mut b, d, |r| {
        r.buf[at..at + 8].copy_from_slice(&hostile.to_le_bytes());
    });
    let mut v = Volume::open(MemDevice::new(b)).unwrap();
    let located = |e: Error| match e {
        Error::Corrupt {
            structure,
            record,
            offset,
            reason,
        } => {
            assert!(
                reason.contains("outside $INDEX_ALLOCATION"),
                "{structure}: {reason}"
            );
            assert_eq!(record, Some(d));
            (structure, offset)
        }
        other => panic!("expected a located corruption error, got {other}"),
    };
    let (s, off) = located(v.read_dir("d").unwrap_err());
    assert_eq!(s, "index node");
    assert!(matches!(off, Offset::Record(o) if o > 0), "{off:?}");
    // A name after every existing one descends through the END entry.
    let (s, off) = located(v.metadata("d/zzz").unwrap_err());
    // The sub-node VCN field of the root, by its offset in the record.
    assert_eq!(s, "$INDEX_ROOT");
    assert_eq!(off, Offset::Record(at as u64));
    assert!(v.write_file("d/zzz", b"x").is_err());
}

/// A `$SII` whose last security id is `u32::MAX`: a new descriptor cannot take the next id
/// (before, `id + 1` panicked in debug builds); the create is refused and nothing is written.
#[test]
fn hostile_last_security_id_is_an_error() {
    if !have("mkntfs") || !have("ntfs-3g") {
        return;
    }
    let mut b = image();
    // The last $SII entry sits in $Secure's index root (a small mkntfs volume): its data's id.
    patch_record(&mut b, 9, |r| {
        let name: Vec<u16> = "$SII".encode_utf16().collect();
        let a = r
            .find(reseal_ntfs::attribute::INDEX_ROOT, &name)
            .unwrap()
            .unwrap();
        assert!(root_end_vcn(r, "$SII").is_none(), "$SII is in its root");
        let v = a.off + a.value_off;
        let le16 = |o: usize| usize::from(u16::from_le_bytes([r.buf[o], r.buf[o + 1]]));
        let mut p = v + 16 + le16(v + 16);
        let mut last = None;
        while le16(p + 12) & 2 == 0 {
            last = Some(p);
            p += le16(p + 8);
        }
        let e = last.expect("an entry");
        let data = e + le16(e);
        r.buf[data + 4..data + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        r.buf[e + 16..e + 20].copy_from_slice(&u32::MAX.to_le_bytes());
    });
    let mut v = Volume::open(MemDevice::new(b.clone())).unwrap();
    match v.create_file("d/new-file") {
        Err(Error::Corrupt {
            structure, reason, ..
        }) => assert!(
            structure == "$SII entry" && reason.contains("last security id 0xffffffff"),
            "{structure}: {reason}"
        ),
        other => panic!("expected a $SII error, got {other:?}"),
    }
    assert!(matches!(
        v.metadata("d/new-file"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn an_unreadable_record_in_use_is_reported_not_passed_over() {
    if !have("mkntfs") || !have("ntfs-3g") {
        return;
    }
    let mut b = image();
    let (num, at) = {
        let v = Volume::open(MemDevice::new(b.clone())).unwrap();
        let num = v.lookup("d/file-7").unwrap();
        let bs = v.boot_sector();
        let at = bs.mft_lcn * u64::from(bs.cluster_size) + num * u64::from(bs.record_size);
        (num, at as usize)
    };
    // Break the record's update sequence: the last two bytes of its first sector no longer
    // match the update sequence number, so the record cannot be read.
    b[at + 510] ^= 0xFF;
    let mut v = Volume::open(MemDevice::new(b)).unwrap();
    let mut skipped = Vec::new();
    v.rewrite_descriptors_with(|_, _| None, |s| skipped.push(s))
        .unwrap();
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].record, Some(num));
    assert!(
        skipped[0].to_string().contains("not rewritten"),
        "{}",
        skipped[0]
    );
    // Taken from a catalog, the same record is named.
    let catalog = v.catalog();
    let mut again = Vec::new();
    v.rewrite_descriptors_from(&catalog, |_, _| None, |s| again.push(s))
        .unwrap();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0].to_string(), skipped[0].to_string());
}
