//! Round trips over every security descriptor found in the shared corpus: `$SDS` extracts,
//! sk cells of every registry hive, and the `$Secure:$SDS` streams of the corpus NTFS images
//! (read with ntfs-3g's `ntfscat`, an independent implementation).

use crate::common;

use std::path::{Path, PathBuf};

use common::{check_descriptor, corpus_dir, decompress, require_or_skip};
use reseal_security::SecurityDescriptor;

/// ntfs-3g's `$SDS` hash (FORMATS C.5): for each LE u32 word, h = word + rol(h, 3).
fn sds_hash(sd: &[u8]) -> u32 {
    sd.chunks_exact(4).fold(0u32, |h, w| {
        u32::from_le_bytes([w[0], w[1], w[2], w[3]]).wrapping_add(h.rotate_left(3))
    })
}

/// Entries of a `$SDS` stream: (stream offset, security id, descriptor bytes), primary copies
/// only (mirror copies in odd 256 KiB blocks are checked to be identical to their primary).
fn sds_entries(data: &[u8]) -> Vec<(usize, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let block = 0x40000usize;
    let mut blk = 0;
    while blk * block < data.len() {
        if blk % 2 == 1 {
            blk += 1;
            continue;
        }
        let start = blk * block;
        let end = (start + block).min(data.len());
        let mut off = start;
        while off + 20 <= end {
            let hash = u32::from_le_bytes(data[off..off + 4].try_into().unwrap());
            let id = u32::from_le_bytes(data[off + 4..off + 8].try_into().unwrap());
            let eoff = u64::from_le_bytes(data[off + 8..off + 16].try_into().unwrap());
            let len = u32::from_le_bytes(data[off + 16..off + 20].try_into().unwrap()) as usize;
            if len < 20 || eoff != off as u64 || off + len > end {
                break;
            }
            let sd = &data[off + 20..off + len];
            assert_eq!(sds_hash(sd), hash, "$SDS entry at {off:#x}: hash mismatch");
            // mirror copy
            if let Some(m) = data.get(off + block..off + block + len) {
                assert_eq!(
                    m,
                    &data[off..off + len],
                    "mirror of $SDS entry {off:#x} differs"
                );
            }
            out.push((off, id, sd.to_vec()));
            off = (off + len + 15) & !15;
        }
        blk += 1;
    }
    out
}

#[test]
fn sds_extracts_round_trip() {
    let Some(dir) = corpus_dir() else { return };
    let mut total = 0;
    for (name, expect) in [("sds.bin.gz", 12usize), ("sds_complex.bin.gz", 4)] {
        let data = decompress(&dir.join("dissect.ntfs").join(name));
        let entries = sds_entries(&data);
        for (off, id, sd) in &entries {
            check_descriptor(sd, &format!("{name} entry {off:#x} id {id:#x}"));
            let canon = SecurityDescriptor::parse(sd)
                .unwrap()
                .to_canonical_bytes()
                .unwrap();
            assert_eq!(
                &canon, sd,
                "{name} entry {off:#x}: Windows layout is SACL, DACL, owner, group"
            );
        }
        eprintln!("{name}: {} entries", entries.len());
        assert_eq!(entries.len(), expect, "{name}: entry count");
        total += entries.len();
    }
    assert!(total > 0);
}

/// sk cells of a hive: (cell offset, descriptor bytes).
fn sk_cells(hive: &[u8]) -> Vec<(usize, Vec<u8>)> {
    let mut out = Vec::new();
    let mut bin = 4096;
    while bin + 32 <= hive.len() && &hive[bin..bin + 4] == b"hbin" {
        let size = u32::from_le_bytes(hive[bin + 8..bin + 12].try_into().unwrap()) as usize;
        if size < 32 || bin + size > hive.len() {
            break;
        }
        let mut cell = bin + 32;
        while cell + 4 <= bin + size {
            let raw = i32::from_le_bytes(hive[cell..cell + 4].try_into().unwrap());
            let len = raw.unsigned_abs() as usize;
            if len < 8 || cell + len > bin + size {
                break;
            }
            let data = &hive[cell + 4..cell + len];
            if raw < 0 && data.len() >= 20 && &data[0..2] == b"sk" {
                let sd_len = u32::from_le_bytes(data[16..20].try_into().unwrap()) as usize;
                if let Some(sd) = data.get(20..20 + sd_len) {
                    out.push((cell, sd.to_vec()));
                }
            }
            cell += len;
        }
        bin += size;
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut v: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    v.sort();
    for p in v {
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn hive_sk_cells_round_trip() {
    let Some(dir) = corpus_dir() else { return };
    let mut files = Vec::new();
    walk(&dir, &mut files);
    let mut hives = 0;
    let mut cells = 0;
    let mut failures = Vec::new();
    for f in files {
        let name = f.to_string_lossy().to_string();
        if name.ends_with(".zip")
            || name.ends_with(".tgz")
            || name.ends_with(".E01")
            || name.contains("/dissect.")
        {
            continue;
        }
        let size = std::fs::metadata(&f).map(|m| m.len()).unwrap_or(0);
        if size > 64 << 20 {
            continue;
        }
        // Only decompress/read files that may be hives.
        let head = {
            use std::io::Read;
            let mut b = [0u8; 6];
            std::fs::File::open(&f)
                .and_then(|mut h| h.read(&mut b))
                .ok();
            b
        };
        let compressed = name.ends_with(".xz") || name.ends_with(".gz") || name.ends_with(".bz2");
        if !compressed && &head[0..4] != b"regf" {
            continue;
        }
        let data = if compressed {
            decompress(&f)
        } else {
            std::fs::read(&f).unwrap()
        };
        if data.len() < 4096 + 32 || &data[0..4] != b"regf" {
            continue;
        }
        hives += 1;
        for (off, sd) in sk_cells(&data) {
            cells += 1;
            let what = format!("{name} sk cell {off:#x}");
            match std::panic::catch_unwind(|| check_descriptor(&sd, &what)) {
                Ok(()) => {}
                Err(_) => failures.push(what),
            }
        }
    }
    eprintln!("{hives} hives, {cells} sk cells");
    assert!(failures.is_empty(), "failures: {failures:#?}");
    assert!(hives >= 91, "only {hives} hives found (corpus had 91)");
    assert!(
        cells >= 2047,
        "only {cells} sk cells found (corpus had 2047)"
    );
}

/// `$Secure:$SDS` of the corpus NTFS images, extracted with ntfs-3g's `ntfscat`.
#[test]
fn ntfs_volume_sds_round_trip() {
    let Some(dir) = corpus_dir() else { return };
    if !require_or_skip("ntfscat") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut total = 0;
    for rel in ["velociraptor/test.ntfs.dd.raw.xz", "go-ntfs/charlie.dd.bz2"] {
        let img = tmp.path().join("img");
        std::fs::write(&img, decompress(&dir.join(rel))).unwrap();
        let out = std::process::Command::new("ntfscat")
            .args(["-f", "-a", "0x80", "-n", "$SDS"])
            .arg(&img)
            .arg("$Secure")
            .output()
            .expect("run ntfscat");
        assert!(
            out.status.success(),
            "ntfscat {rel}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let entries = sds_entries(&out.stdout);
        for (off, id, sd) in &entries {
            check_descriptor(sd, &format!("{rel} $SDS {off:#x} id {id:#x}"));
            let canon = SecurityDescriptor::parse(sd)
                .unwrap()
                .to_canonical_bytes()
                .unwrap();
            assert_eq!(
                &canon, sd,
                "{rel} $SDS {off:#x}: Windows layout is SACL, DACL, owner, group"
            );
        }
        eprintln!("{rel}: {} $SDS entries", entries.len());
        assert!(!entries.is_empty(), "{rel}: no $SDS entries");
        total += entries.len();
    }
    assert!(total > 0);
}

/// Every file's `system.ntfs_acl` through an ntfs-3g read-only mount (needs FUSE).
#[test]
fn ntfs3g_mount_acls_round_trip() {
    let Some(dir) = corpus_dir() else { return };
    if !require_or_skip("ntfs-3g") || !require_or_skip("getfattr") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut total = 0;
    for rel in ["velociraptor/test.ntfs.dd.raw.xz", "go-ntfs/charlie.dd.bz2"] {
        let img = tmp.path().join("img");
        std::fs::write(&img, decompress(&dir.join(rel))).unwrap();
        let mnt = tmp.path().join("mnt");
        std::fs::create_dir_all(&mnt).unwrap();
        let st = std::process::Command::new("ntfs-3g")
            .args(["-o", "ro"])
            .arg(&img)
            .arg(&mnt)
            .status()
            .expect("run ntfs-3g");
        if !st.success() {
            reseal_tests::skip_or_panic(
                &format!("ntfs-3g mount of {rel} failed"),
                "make FUSE available (/dev/fuse; run the tests as root)",
            );
            return;
        }
        let out = std::process::Command::new("getfattr")
            .args([
                "-R",
                "-h",
                "-e",
                "hex",
                "-n",
                "system.ntfs_acl",
                "--absolute-names",
            ])
            .arg(&mnt)
            .output()
            .expect("getfattr");
        let _ = std::process::Command::new("fusermount")
            .arg("-u")
            .arg(&mnt)
            .status();
        let _ = std::process::Command::new("umount")
            .arg(&mnt)
            .stderr(std::process::Stdio::null())
            .status();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut n = 0;
        let mut file = String::new();
        for line in text.lines() {
            if let Some(f) = line.strip_prefix("# file: ") {
                file = f.to_string();
            } else if let Some(h) = line.strip_prefix("system.ntfs_acl=0x") {
                let bytes: Vec<u8> = (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
                    .collect();
                check_descriptor(&bytes, &format!("{rel}:{file}"));
                n += 1;
            }
        }
        eprintln!("{rel}: {n} file ACLs via ntfs-3g");
        assert!(n > 0, "{rel}: no ACLs read");
        total += n;
    }
    assert!(total > 0);
}

#[test]
fn canonical_layout_matches_windows_written_descriptors() {
    // Registry sk cells are written by Windows: their layout must equal to_canonical_bytes().
    let Some(dir) = corpus_dir() else { return };
    let data = decompress(&dir.join("regipy/SYSTEM.xz"));
    let mut same = 0;
    let cells = sk_cells(&data);
    for (_, sd) in &cells {
        let d = SecurityDescriptor::parse(sd).unwrap();
        if d.to_canonical_bytes().unwrap() == *sd {
            same += 1;
        }
    }
    eprintln!(
        "SYSTEM: {same}/{} sk descriptors in canonical layout",
        cells.len()
    );
    assert_eq!(same, cells.len());
}

/// Find every NTFS boot sector at a 512-byte boundary of a disk image in its first 64 MiB (where
/// partitions of the corpus disks start) and return the volume byte ranges.
fn ntfs_volumes(disk: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let limit = disk.len().min(64 << 20);
    let mut off = 0;
    while off + 512 <= limit {
        let b = &disk[off..off + 512];
        if &b[3..11] == b"NTFS    " && b[510] == 0x55 && b[511] == 0xAA {
            let bps = u16::from_le_bytes([b[11], b[12]]) as usize;
            let sectors = u64::from_le_bytes(b[0x28..0x30].try_into().unwrap()) as usize;
            let len = (sectors + 1).saturating_mul(bps).min(disk.len() - off);
            out.push(off..off + len);
            off += len.max(512);
            continue;
        }
        off += 512;
    }
    out
}

/// The remaining corpus NTFS volumes, whatever holds them: bare volumes, an MBR disk, and the
/// volumes inside VHD, VHDX and qcow2 containers (turned into raw disks by `qemu-img`). The
/// Windows-made ones must also be in Windows' canonical layout.
#[test]
fn every_other_corpus_ntfs_volume_sds_round_trip() {
    let Some(dir) = corpus_dir() else { return };
    if !require_or_skip("ntfscat") || !require_or_skip("qemu-img") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // (corpus path, made by Windows, container format for qemu-img or "" for raw bytes)
    let items = [
        ("dfir_ntfs/ntfs_index.raw.gz", true, ""),
        ("dfir_ntfs/ntfs3.raw.gz", false, ""),
        ("dfir_ntfs/ntfs3_attrlist.raw.gz", false, ""),
        ("ntfs-rs/testfs1", false, ""),
        ("dissect.hypervisor/dynamic.vhd.gz", true, "vpc"),
        ("dissect.hypervisor/fixed.vhdx.gz", true, "vhdx"),
        ("velociraptor/test.vhdx.xz", true, "vhdx"),
        ("plaso/vsstest.qcow2", true, "qcow2"),
        ("dfvfs/windows_volume.qcow2", false, "qcow2"),
    ];
    let mut total = 0;
    for (rel, windows, fmt) in items {
        let bytes = if fmt.is_empty() {
            decompress(&dir.join(rel))
        } else {
            let src = tmp.path().join("container");
            std::fs::write(&src, decompress(&dir.join(rel))).unwrap();
            let raw = tmp.path().join("disk.raw");
            let st = std::process::Command::new("qemu-img")
                .args(["convert", "-f", fmt, "-O", "raw"])
                .arg(&src)
                .arg(&raw)
                .status()
                .expect("run qemu-img");
            assert!(st.success(), "qemu-img convert {rel}");
            std::fs::read(&raw).unwrap()
        };
        let vols = ntfs_volumes(&bytes);
        assert!(!vols.is_empty(), "{rel}: no NTFS volume found");
        for (n, v) in vols.iter().enumerate() {
            let img = tmp.path().join("vol");
            std::fs::write(&img, &bytes[v.clone()]).unwrap();
            let out = std::process::Command::new("ntfscat")
                .args(["-f", "-a", "0x80", "-n", "$SDS"])
                .arg(&img)
                .arg("$Secure")
                .output()
                .expect("run ntfscat");
            assert!(
                out.status.success(),
                "ntfscat {rel} volume {n}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let entries = sds_entries(&out.stdout);
            assert!(!entries.is_empty(), "{rel} volume {n}: no $SDS entries");
            for (off, id, sd) in &entries {
                check_descriptor(sd, &format!("{rel} volume {n} $SDS {off:#x} id {id:#x}"));
                if windows {
                    let canon = SecurityDescriptor::parse(sd)
                        .unwrap()
                        .to_canonical_bytes()
                        .unwrap();
                    assert!(
                        canon == *sd,
                        "{rel} volume {n} $SDS {off:#x}: not in Windows' layout"
                    );
                }
            }
            eprintln!("{rel} volume {n}: {} $SDS entries", entries.len());
            total += entries.len();
        }
    }
    assert!(total > 0);
}
