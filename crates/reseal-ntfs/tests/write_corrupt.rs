//! Corrupted boot sectors and MFT/index bytes give located errors, never panics.

mod ntfsw_common;

use ntfsw_common::*;
use reseal_disk::MemDevice;
use reseal_ntfs::{Error, Volume};

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
        (510, 0, 510),
    ] {
        let mut b = base.clone();
        b[off] = val;
        match Volume::open(MemDevice::new(b)) {
            Err(Error::Corrupt {
                structure: "boot sector",
                offset,
                ..
            }) => assert_eq!(offset, want_off, "field {off:#x}"),
            other => panic!("byte {off:#x}: expected a boot-sector error, got {other:?}"),
        }
    }
    // MFT LCN past the end
    let mut b = base.clone();
    b[0x30..0x38].copy_from_slice(&u64::MAX.to_le_bytes());
    assert!(matches!(
        Volume::open(MemDevice::new(b)),
        Err(Error::Corrupt { offset: 0x30, .. })
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
}
