//! Every VHD/VHDX of the shared corpus opens (or fails as its MANIFEST entry predicts), reads the
//! same bytes as qemu-img where qemu can read it, and damaged copies fail with located errors.

use crate::containers_util;

use std::path::{Path, PathBuf};

use containers_util::*;
use reseal_disk::{Access, Device, Error, Image, ImageFormat};

struct Case {
    file: &'static str,
    format: ImageFormat,
    size: u64,
    /// qemu-img can read it (per MANIFEST).
    qemu: Option<&'static str>,
}

const CASES: &[Case] = &[
    Case {
        file: "dissect.hypervisor/dynamic.vhd.gz",
        format: ImageFormat::VhdDynamic,
        size: 10 << 20,
        qemu: Some("vpc"),
    },
    Case {
        file: "dissect.hypervisor/fixed.vhdx.gz",
        format: ImageFormat::VhdxFixed,
        size: 10 << 20,
        qemu: Some("vhdx"),
    },
    Case {
        file: "velociraptor/test.vhdx.xz",
        format: ImageFormat::VhdxDynamic,
        size: 5 << 20,
        qemu: Some("vhdx"),
    },
    Case {
        file: "dfvfs/ext2.vhd",
        format: ImageFormat::VhdDynamic,
        size: 4_212_736,
        qemu: Some("vpc"),
    },
    // qemu rejects it ("Incorrect header checksum"): the footer checksum is wrong in both copies.
    Case {
        file: "dfvfs/image.vhd",
        format: ImageFormat::VhdDynamic,
        size: 104_448,
        qemu: None,
    },
];

fn unpacked(dir: &Path, file: &str) -> Option<PathBuf> {
    let c = corpus()?;
    Some(unpack(&c.join(file), dir))
}

#[test]
fn corpus_images_open_and_match_qemu() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for case in CASES {
        let Some(path) = unpacked(dir.path(), case.file) else {
            return;
        };
        let img =
            Image::open(&path, Access::ReadOnly).unwrap_or_else(|e| panic!("{}: {e}", case.file));
        let info = img.info();
        assert_eq!(info.format, case.format, "{}", case.file);
        assert_eq!(info.virtual_size, case.size, "{}", case.file);
        let data = read_all(&img);
        if let Some(fmt) = case.qemu {
            let q = qemu_raw(&path, fmt, dir.path());
            assert!(q == data, "{}: differs from qemu-img convert", case.file);
        }
        eprintln!("{}: {:?}", case.file, info);
    }
}

#[test]
fn corpus_contents_are_what_the_manifest_says() {
    let dir = tempfile::tempdir().unwrap();
    let read = |file: &str| -> Option<Vec<u8>> {
        let p = unpacked(dir.path(), file)?;
        Some(read_all(&Image::open(&p, Access::ReadOnly).unwrap()))
    };
    // Windows-made VHD/VHDX: MBR with an NTFS partition at LBA 128.
    for f in [
        "dissect.hypervisor/dynamic.vhd.gz",
        "dissect.hypervisor/fixed.vhdx.gz",
    ] {
        let Some(d) = read(f) else { return };
        assert_eq!(&d[510..512], &[0x55, 0xAA], "{f}");
        assert_eq!(d[446 + 4], 0x07, "{f}");
        assert_eq!(&d[128 * 512 + 3..128 * 512 + 11], b"NTFS    ", "{f}");
    }
    // GPT disk in the Windows-made VHDX, NTFS at LBA 128.
    let d = read("velociraptor/test.vhdx.xz").unwrap();
    assert_eq!(&d[512..520], b"EFI PART");
    assert_eq!(&d[128 * 512 + 3..128 * 512 + 11], b"NTFS    ");
    // ext2 payloads.
    for f in ["dfvfs/ext2.vhd", "dfvfs/image.vhd"] {
        let d = read(f).unwrap();
        assert_eq!(&d[1024 + 56..1024 + 58], &[0x53, 0xEF], "{f}: ext2 magic");
    }
}

#[test]
fn dfvfs_bad_checksums_lenient_read_only_strict_read_write() {
    let dir = tempfile::tempdir().unwrap();
    let Some(p) = unpacked(dir.path(), "dfvfs/image.vhd") else {
        return;
    };
    let img = Image::open(&p, Access::ReadOnly).unwrap();
    assert!(
        img.info().warnings.iter().any(|w| w.contains("checksum")),
        "{:?}",
        img.info().warnings
    );
    drop(img);
    match Image::open(&p, Access::ReadWrite) {
        Err(Error::Corrupt {
            structure,
            offset,
            reason,
        }) => {
            assert_eq!(structure, "VHD footer");
            assert_eq!(offset, 2_100_224 - 512);
            assert!(reason.contains("checksum"));
        }
        other => panic!("expected a footer checksum error, got {other:?}"),
    }
}

#[test]
fn dfvfs_differencing_with_and_without_parent() {
    let dir = tempfile::tempdir().unwrap();
    let Some(parent) = unpacked(dir.path(), "dfvfs/image.vhd") else {
        return;
    };
    let child = unpacked(dir.path(), "dfvfs/image-differential.vhd").unwrap();
    // The child has no locators; its header names "image.vhd", found next to it.
    let img = Image::open(&child, Access::ReadOnly).unwrap();
    let info = img.info();
    assert_eq!(info.format, ImageFormat::VhdDifferencing);
    assert_eq!(info.parent_chain, vec![parent.clone()]);
    let c = read_all(&img);
    let pimg = Image::open(&parent, Access::ReadOnly).unwrap();
    let pd = read_all(&pimg);
    assert_eq!(c.len(), pd.len());
    assert_eq!(&c[1024 + 56..1024 + 58], &[0x53, 0xEF]);
    let differing = c
        .chunks(512)
        .zip(pd.chunks(512))
        .filter(|(a, b)| a != b)
        .count();
    eprintln!(
        "image-differential.vhd: {differing} of {} sectors differ from the parent",
        c.len() / 512
    );

    // Windows-made child whose parent is not in the corpus: a clear MissingParent error.
    let fat = unpacked(dir.path(), "dfvfs/fat-differential.vhd").unwrap();
    match Image::open(&fat, Access::ReadOnly) {
        Err(e @ Error::MissingParent { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains("fat-parent.vhd"), "{msg}");
        }
        other => panic!("expected MissingParent, got {other:?}"),
    }
    // Parse-only access still works.
    let v =
        reseal_disk::vhd::Vhd::open(reseal_disk::raw::HostFile::open(&fat, false).unwrap(), true)
            .unwrap();
    let pi = v.parent_info().unwrap();
    assert!(
        pi.locators
            .iter()
            .any(|l| &l.code == b"W2ru" && l.path.ends_with("fat-parent.vhd")),
        "{pi:?}"
    );
    assert!(
        pi.locators
            .iter()
            .any(|l| &l.code == b"W2ku" && l.path.contains("C:\\")),
        "{pi:?}"
    );
}

fn expect_corrupt(path: &Path, access: Access, structure: &str, offset: Option<u64>) {
    match Image::open(path, access) {
        Err(Error::Corrupt {
            structure: s,
            offset: o,
            reason,
        }) => {
            assert!(
                s.starts_with(structure),
                "expected {structure}, got {s} at {o:#x}: {reason}"
            );
            if let Some(want) = offset {
                assert_eq!(o, want, "{s}: {reason}");
            }
        }
        Err(e) => panic!("expected Corrupt({structure}), got {e}"),
        Ok(_) => panic!("expected Corrupt({structure}), but it opened"),
    }
}

#[test]
fn damaged_copies_give_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let Some(vhd) = unpacked(d, "dissect.hypervisor/dynamic.vhd.gz") else {
        return;
    };
    let vhdx = unpacked(d, "velociraptor/test.vhdx.xz").unwrap();
    let vhd_bytes = std::fs::read(&vhd).unwrap();
    let vhdx_bytes = std::fs::read(&vhdx).unwrap();
    let t = d.join("t.img");

    // VHD: dynamic header byte flipped → strict open names the header at its offset.
    let mut b = vhd_bytes.clone();
    b[512 + 100] ^= 0xFF;
    std::fs::write(&t, &b).unwrap();
    expect_corrupt(&t, Access::ReadWrite, "VHD dynamic header", Some(512));
    // VHD: end footer damaged, copy at 0 good → opens (with a warning) and reads the same.
    let mut b = vhd_bytes.clone();
    let n = b.len();
    b[n - 512 + 50] ^= 0x01;
    std::fs::write(&t, &b).unwrap();
    let img = Image::open(&t, Access::ReadWrite).unwrap();
    assert!(!img.info().warnings.is_empty());
    // Release its lock before opening the file again.
    drop(img);
    // VHD: both footers damaged → strict error names the end footer.
    b[50] ^= 0x01;
    std::fs::write(&t, &b).unwrap();
    expect_corrupt(&t, Access::ReadWrite, "VHD footer", Some(n as u64 - 512));
    // VHD truncated in the middle of its blocks: the footer copy at 0 is found, the BAT entry
    // pointing past the end is named.
    std::fs::write(&t, &vhd_bytes[..vhd_bytes.len() / 2]).unwrap();
    expect_corrupt(&t, Access::ReadOnly, "VHD BAT entry", None);
    // VHD: BAT offset pointing outside the file.
    let mut b = vhd_bytes.clone();
    b[512 + 16..512 + 24].copy_from_slice(&u64::MAX.to_be_bytes());
    std::fs::write(&t, &b).unwrap();
    expect_corrupt(&t, Access::ReadOnly, "VHD BAT", None);

    // VHDX: both headers damaged.
    let mut b = vhdx_bytes.clone();
    b[0x10000 + 8] ^= 1;
    b[0x20000 + 8] ^= 1;
    std::fs::write(&t, &b).unwrap();
    expect_corrupt(&t, Access::ReadOnly, "VHDX header", Some(0x10000));
    // One header damaged: the other is used.
    b[0x20000 + 8] ^= 1;
    std::fs::write(&t, &b).unwrap();
    let img = Image::open(&t, Access::ReadOnly).unwrap();
    assert!(img
        .info()
        .warnings
        .iter()
        .any(|w| w.contains("VHDX header")));
    // Both region tables damaged.
    let mut b = vhdx_bytes.clone();
    b[0x30000 + 20] ^= 1;
    b[0x40000 + 20] ^= 1;
    std::fs::write(&t, &b).unwrap();
    expect_corrupt(&t, Access::ReadOnly, "VHDX region table", Some(0x30000));
    // A non-empty log (LogGuid set, headers otherwise valid) is refused with a clear message.
    let mut b = vhdx_bytes.clone();
    for h in [0x10000usize, 0x20000] {
        b[h + 48..h + 64].copy_from_slice(&[0x5A; 16]);
        let c = reseal_disk::vhdx::crc_with_zeroed_field(&b[h..h + 4096], 4);
        b[h + 4..h + 8].copy_from_slice(&c.to_le_bytes());
    }
    std::fs::write(&t, &b).unwrap();
    match Image::open(&t, Access::ReadOnly) {
        Err(e @ Error::Unsupported { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("VHDX log") && msg.contains("not empty"),
                "{msg}"
            );
        }
        other => panic!("expected the log to be refused, got {other:?}"),
    }
    // Truncated VHDX: a region or block lies outside the file.
    std::fs::write(&t, &vhdx_bytes[..(3 << 20) + 4096]).unwrap();
    expect_corrupt(&t, Access::ReadOnly, "VHDX", None);
    std::fs::write(&t, &vhdx_bytes[..100_000]).unwrap();
    expect_corrupt(&t, Access::ReadOnly, "VHDX", None);
}

/// No panic on hostile bytes: random byte flips and truncations of every corpus container, opened
/// read-only and read-write and read in full.
#[test]
fn hostile_copies_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut files = Vec::new();
    for case in CASES {
        let Some(p) = unpacked(d, case.file) else {
            return;
        };
        files.push(std::fs::read(&p).unwrap());
    }
    let t = d.join("h.img");
    let mut seed = 1u64;
    for (fi, orig) in files.iter().enumerate() {
        for round in 0..40 {
            let mut b = orig.clone();
            let r = pseudo_random(seed, 64);
            seed += 1;
            let region = match round % 4 {
                0 => 0..4096.min(b.len()),
                1 => 0..(0x50000).min(b.len()),
                2 => b.len().saturating_sub(4096)..b.len(),
                _ => 0..b.len(),
            };
            for k in 0..8 {
                let at = region.start
                    + (u64::from_le_bytes(r[8 * k..8 * k + 8].try_into().unwrap()) as usize)
                        % (region.end - region.start).max(1);
                if at < b.len() {
                    b[at] = r[k * 3];
                }
            }
            if round % 5 == 4 {
                b.truncate((r[0] as usize * 4099 + r[1] as usize * 977) % b.len());
            }
            std::fs::write(&t, &b).unwrap();
            for access in [Access::ReadOnly, Access::ReadWrite] {
                if let Ok(mut img) = Image::open(&t, access) {
                    let mut buf = vec![0u8; 1 << 20];
                    let len = img.len();
                    let mut pos = 0;
                    while pos < len {
                        let n = (len - pos).min(1 << 20) as usize;
                        let _ = img.read_at(pos, &mut buf[..n]);
                        pos += n as u64;
                    }
                    if access == Access::ReadWrite {
                        let _ = img.write_at(len / 2, &[1, 2, 3]);
                    }
                }
            }
            let _ = fi;
        }
    }
}
