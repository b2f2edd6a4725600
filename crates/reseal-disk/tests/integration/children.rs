//! Differencing children made by `children::create_child`, written through `Image`.
//!
//! Oracles: the bases are made by qemu-img from raw files of random content, and every change
//! is also applied to a raw copy (the model). qemu 10 reads neither VHD nor VHDX differencing
//! disks ("Backing file not supported for file format 'vpc'/'vhdx'"), so `qemu-img info`,
//! `check` and `compare` cannot run on the children: qemu checks the VHDX base (it has no check
//! for vpc) and reads both bases back unchanged, and `sha256sum`
//! proves them unchanged. libvhdi is the independent reader of children: `vhdiinfo` for the
//! parent identity and file name, `vhdimount` for content (byte-compared with the raw model).
//! vhdimount looks for the parent only beside the child (by name), and it misreads NOT_PRESENT
//! blocks of differencing VHDX (see containers_vhdx_diff.rs): VHDX children are compared with
//! it once every block is FULLY or PARTIALLY_PRESENT, and with the model through reseal's own
//! reader at every step, plus a structural check of the BAT states (7 PARTIALLY_PRESENT,
//! 6 SB_BLOCK_PRESENT) and sector bitmap bits read straight from the file.

use crate::containers_util;

use std::path::{Path, PathBuf};
use std::process::Command;

use containers_util::*;
use reseal_disk::children::{create_child, create_child_with, ChildFormat, ChildOptions};
use reseal_disk::{Access, Device, Error, Image, ImageFormat};

const MIB: u64 = 1 << 20;
const SIZE: usize = 8 << 20;

fn sha256(path: &Path) -> String {
    run("sha256sum", &[p(path)])
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// A qemu-made base in `dir/golden/` from random content; returns (base, content).
fn qemu_base(dir: &Path, fmt: &str, seed: u64) -> (PathBuf, Vec<u8>) {
    let golden = dir.join("golden");
    std::fs::create_dir_all(&golden).unwrap();
    let content = sample_disk(SIZE, seed);
    let raw = dir.join(format!("base-{seed}.raw"));
    std::fs::write(&raw, &content).unwrap();
    let (name, opts) = match fmt {
        "vpc" => ("base.vhd", "subformat=dynamic,force_size=on"),
        _ => ("base.vhdx", "subformat=dynamic,block_size=1048576"),
    };
    let base = golden.join(name);
    run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            fmt,
            "-o",
            opts,
            p(&raw),
            p(&base),
        ],
    );
    std::fs::remove_file(&raw).unwrap();
    (base, content)
}

/// Writes that exercise the child writers: unaligned and partial sectors, block-crossing, a
/// whole block, all-zero data, bytes equal to the parent's, rewrites of written sectors.
fn writes(content: &[u8], bs: u64) -> Vec<(u64, Vec<u8>)> {
    let mut w = vec![
        (100, pseudo_random(1, 10)),             // inside sector 0
        (bs - 700, pseudo_random(2, 1500)),      // crosses a block boundary
        (3 * 512, pseudo_random(3, 2048)),       // aligned sectors
        (bs * 2, pseudo_random(4, bs as usize)), // a whole block
        (bs * 3 + 5000, vec![0u8; 7000]),        // zeros over parent data
        (
            bs * 4 + 77,
            content[(bs * 4 + 77) as usize..(bs * 4 + 1077) as usize].to_vec(),
        ), // same bytes
        (110, pseudo_random(5, 3)),              // rewrite inside a written sector
        (SIZE as u64 - 513, pseudo_random(6, 513)), // the disk's last bytes
    ];
    // A few pseudo-random ranges.
    let r = pseudo_random(7, 64);
    for i in 0..6 {
        let o =
            u64::from_le_bytes(r[8 * i..8 * i + 8].try_into().unwrap()) % (SIZE as u64 - 40_000);
        let l = 1 + (o as usize * 7919) % 30_000;
        w.push((o, pseudo_random(10 + i as u64, l)));
    }
    w
}

fn apply(img: &mut Image, model: &mut [u8], ws: &[(u64, Vec<u8>)]) {
    for (o, d) in ws {
        img.write_at(*o, d).unwrap();
        model[*o as usize..*o as usize + d.len()].copy_from_slice(d);
    }
}

fn first_diff(a: &[u8], b: &[u8]) -> Option<usize> {
    a.iter().zip(b).position(|(x, y)| x != y)
}

/// `qemu-img info --output=json` of a child: qemu 10 refuses differencing VHD/VHDX. If a
/// future qemu reads them, the base must be its backing file.
fn qemu_info_child(child: &Path, base: &Path) {
    let out = Command::new("qemu-img")
        .args(["info", "--output=json", p(child)])
        .output()
        .unwrap();
    if out.status.success() {
        let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(b) = j.get("backing-filename").and_then(|b| b.as_str()) {
            let b = b.replace('\\', "/");
            let name = base.file_name().unwrap().to_str().unwrap();
            assert!(b.ends_with(name), "qemu sees backing file {b}");
        } else {
            eprintln!("qemu-img info reads the child without a backing file: {j}");
        }
    } else {
        eprintln!(
            "qemu-img info cannot open the child (expected with qemu 10): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

fn vhdiinfo(img: &Path) -> String {
    run("vhdiinfo", &[p(img)])
}

/// The value of field `name` in vhdiinfo output ("\tName\t\t: value").
fn field(out: &str, name: &str) -> Option<String> {
    out.lines()
        .map(str::trim)
        .find(|l| l.starts_with(name) && l[name.len()..].trim_start().starts_with(':'))
        .map(|l| l.split_once(':').unwrap().1.trim().to_string())
}

#[test]
fn vhd_child_of_qemu_vhd() {
    if !have("qemu-img") || !have("vhdiinfo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, content) = qemu_base(d, "vpc", 11);
    // qemu-img check does not support vpc ("This image format does not support checks").
    let before = sha256(&base);
    std::fs::create_dir_all(d.join("clones")).unwrap();
    let child = d.join("clones/c1.vhd");

    let info = create_child(&base, &child, ChildFormat::Vhd).unwrap();
    let base_abs = std::fs::canonicalize(&base).unwrap();
    assert_eq!(info.parent, base_abs);
    assert_eq!(info.parent_chain, vec![d.join("clones/../golden/base.vhd")]);
    assert_eq!(info.virtual_size, SIZE as u64);
    assert_eq!(info.parent_format, ImageFormat::VhdDynamic);
    assert_eq!(
        info.locators[0],
        ("W2ru".to_string(), "..\\golden\\base.vhd".to_string())
    );
    assert_eq!(info.locators[1].1, base_abs.to_str().unwrap());
    qemu_info_child(&child, &base);

    // libvhdi: a differencing disk whose parent identifier is the base's UUID.
    let base_id = vhdiinfo(&base);
    let theirs = vhdiinfo(&child);
    eprintln!("vhdiinfo child:\n{theirs}");
    assert!(theirs.contains("Differential"), "{theirs}");
    let uuid = info.parent_id.to_string();
    assert_eq!(
        field(&base_id, "Identifier"),
        Some(uuid.clone()),
        "{base_id}"
    );
    assert_eq!(field(&theirs, "Parent identifier"), Some(uuid), "{theirs}");
    assert!(
        field(&theirs, "Parent filename").is_some_and(|f| f.ends_with("base.vhd")),
        "{theirs}"
    );

    // Empty child = base, for reseal and for libvhdi.
    let img = Image::open(&child, Access::ReadOnly).unwrap();
    assert_eq!(img.format(), ImageFormat::VhdDifferencing);
    assert!(read_all(&img) == content);
    drop(img);

    let mut model = content.clone();
    let ws = writes(&content, MIB);
    let mut img = Image::open(&child, Access::ReadWrite).unwrap();
    apply(&mut img, &mut model, &ws);
    assert!(read_all(&img) == model, "staged view");
    img.commit().unwrap();
    drop(img);

    // Reopen after commit, write again, commit again.
    let mut img = Image::open(&child, Access::ReadWrite).unwrap();
    assert!(read_all(&img) == model, "after reopen");
    apply(&mut img, &mut model, &[(MIB + 3, pseudo_random(99, 4000))]);
    img.commit().unwrap();
    drop(img);

    let img = Image::open(&child, Access::ReadOnly).unwrap();
    let ours = read_all(&img);
    drop(img);
    assert!(
        ours == model,
        "reseal: first difference {:?}",
        first_diff(&ours, &model)
    );
    if have("vhdimount") {
        // vhdimount 20210425 ignores the locators: it opens the parent unicode name in the
        // child's folder only. Show it the base there.
        std::os::unix::fs::symlink("../golden/base.vhd", d.join("clones/base.vhd")).unwrap();
        let theirs = vhdimount_read(&child, d);
        assert!(
            theirs == model,
            "libvhdi: first difference {:?} ({} bytes)",
            first_diff(&theirs, &model),
            theirs.len()
        );
    }
    assert_eq!(sha256(&base), before, "the base changed");
    assert!(qemu_raw(&base, "vpc", d) == content);
}

/// BAT entry `i` of a VHDX file (BAT at 3 MiB in reseal's layout).
fn bat_entry(file: &[u8], i: u64) -> u64 {
    let o = (3 * MIB + 8 * i) as usize;
    u64::from_le_bytes(file[o..o + 8].try_into().unwrap())
}

#[test]
fn vhdx_child_of_qemu_vhdx() {
    if !have("qemu-img") || !have("vhdiinfo") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, content) = qemu_base(d, "vhdx", 12);
    run("qemu-img", &["check", "-f", "vhdx", p(&base)]);
    let before = sha256(&base);
    let child = d.join("golden/c1.vhdx");

    let info = create_child(&base, &child, ChildFormat::Vhdx).unwrap();
    assert_eq!(info.parent_format, ImageFormat::VhdxDynamic);
    assert_eq!(info.block_size, MIB);
    let get = |k: &str| {
        info.locators
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
            .unwrap()
    };
    assert_eq!(get("relative_path"), ".\\base.vhdx");
    assert_eq!(get("parent_linkage"), format!("{{{}}}", info.parent_id));
    qemu_info_child(&child, &base);

    // libvhdi: differencing, parent identifier = the base's DataWriteGuid, parent file name.
    let theirs = vhdiinfo(&child);
    eprintln!("vhdiinfo child:\n{theirs}");
    assert!(theirs.contains("Differential"), "{theirs}");
    let uuid = info.parent_id.to_string();
    assert_eq!(field(&theirs, "Parent identifier"), Some(uuid), "{theirs}");
    assert!(
        field(&theirs, "Parent filename").is_some_and(|f| f.ends_with("\\base.vhdx")),
        "{theirs}"
    );

    let img = Image::open(&child, Access::ReadOnly).unwrap();
    assert_eq!(img.format(), ImageFormat::VhdxDifferencing);
    assert!(read_all(&img) == content);
    drop(img);
    if have("vhdimount") {
        let theirs = vhdimount_read(&child, d);
        eprintln!(
            "libvhdi vhdimount on the empty VHDX child agrees with the base: {} (first \
             difference {:?})",
            theirs == content,
            first_diff(&theirs, &content)
        );
    }

    let mut model = content.clone();
    let ws = writes(&content, MIB);
    let mut img = Image::open(&child, Access::ReadWrite).unwrap();
    apply(&mut img, &mut model, &ws);
    assert!(read_all(&img) == model, "staged view");
    img.commit().unwrap();
    drop(img);

    // Structure, read straight from the file: 8 blocks of 1 MiB, chunk ratio 4096, so the
    // sector bitmap of chunk 0 is BAT entry 4096.
    let file = std::fs::read(&child).unwrap();
    let sb = bat_entry(&file, 4096);
    assert_eq!(sb & 7, 6, "sector bitmap block present");
    let bm = ((sb >> 20) << 20) as usize;
    let state = |k: u64| bat_entry(&file, k) & 7;
    assert_eq!(state(0), 7, "block 0 partially present");
    assert_eq!(state(2), 6, "block 2 (written whole) fully present");
    // Block 0: sectors 0 and 3..=6 written, 1 and 2 not; sector 0's bit is LSB of byte 0.
    assert_eq!(file[bm] & 0b0111_1001, 0b0111_1001);
    let bits = |s: usize| file[bm + s / 8] & (1 << (s % 8)) != 0;
    assert!(!bits(1) && !bits(2));
    // The same-bytes write left its block's sectors to the parent (if nothing else hit it).
    let hit4 = ws
        .iter()
        .any(|(o, l)| *o < 5 * MIB && o + l.len() as u64 > 4 * MIB && *o != 4 * MIB + 77);
    if !hit4 {
        assert_eq!(state(4), 0, "block 4 still from the parent");
    }

    let mut img = Image::open(&child, Access::ReadWrite).unwrap();
    assert!(read_all(&img) == model, "after reopen");
    apply(
        &mut img,
        &mut model,
        &[(0, vec![0xA5; MIB as usize]), (5 * MIB - 1, vec![1, 2])],
    );
    img.commit().unwrap();
    drop(img);
    let file = std::fs::read(&child).unwrap();
    assert_eq!(
        bat_entry(&file, 0) & 7,
        6,
        "block 0 written whole: fully present"
    );
    // Leave no block NOT_PRESENT (a few bytes inside one sector of each, so the blocks that
    // were not present become PARTIALLY_PRESENT): then libvhdi can judge the result.
    let mut img = Image::open(&child, Access::ReadWrite).unwrap();
    let each: Vec<(u64, Vec<u8>)> = (0..8)
        .map(|k| (k * MIB + 9000 + 31 * k, pseudo_random(40 + k, 5)))
        .collect();
    apply(&mut img, &mut model, &each);
    img.commit().unwrap();
    drop(img);
    let file = std::fs::read(&child).unwrap();
    assert!((0..8).all(|k| bat_entry(&file, k) & 7 >= 6));

    let img = Image::open(&child, Access::ReadOnly).unwrap();
    let ours = read_all(&img);
    drop(img);
    assert!(
        ours == model,
        "first difference {:?}",
        first_diff(&ours, &model)
    );
    if have("vhdimount") {
        // Every block is FULLY or PARTIALLY_PRESENT now: libvhdi reads those through the
        // sector bitmaps independently of reseal.
        let theirs = vhdimount_read(&child, d);
        assert!(
            theirs == model,
            "libvhdi: first difference {:?} ({} bytes)",
            first_diff(&theirs, &model),
            theirs.len()
        );
    }
    assert_eq!(sha256(&base), before, "the base changed");
    run("qemu-img", &["check", "-f", "vhdx", p(&base)]);
    assert!(qemu_raw(&base, "vhdx", d) == content);
}

#[test]
fn chains_of_children() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (fmt, cf, ext) in [
        ("vpc", ChildFormat::Vhd, "vhd"),
        ("vhdx", ChildFormat::Vhdx, "vhdx"),
    ] {
        let (base, content) = qemu_base(d, fmt, 13);
        let before = sha256(&base);
        let mid = d.join(format!("mid.{ext}"));
        let leaf = d.join(format!("leaf.{ext}"));
        let mut model = content.clone();
        create_child(&base, &mid, cf).unwrap();
        let mut img = Image::open(&mid, Access::ReadWrite).unwrap();
        apply(
            &mut img,
            &mut model,
            &[(700, pseudo_random(20, 3 * MIB as usize))],
        );
        img.commit().unwrap();
        drop(img);
        let mid_sum = sha256(&mid);
        let info = create_child(&mid, &leaf, cf).unwrap();
        assert_eq!(info.parent_chain.len(), 2, "{:?}", info.parent_chain);
        let mut img = Image::open(&leaf, Access::ReadWrite).unwrap();
        apply(&mut img, &mut model, &[(MIB + 1, pseudo_random(21, 5000))]);
        img.commit().unwrap();
        drop(img);
        let img = Image::open(&leaf, Access::ReadOnly).unwrap();
        assert!(read_all(&img) == model, "{ext} chain");
        drop(img);
        assert_eq!(sha256(&mid), mid_sum);
        assert_eq!(sha256(&base), before);
        std::fs::remove_dir_all(d.join("golden")).unwrap();
    }
}

#[test]
fn refusals() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (vhd, _) = qemu_base(d, "vpc", 14);
    let raw = d.join("plain.raw");
    std::fs::write(&raw, vec![0u8; 1 << 20]).unwrap();
    let out = d.join("c.vhdx");
    for (base, fmt) in [
        (&raw, ChildFormat::Vhdx),
        (&raw, ChildFormat::Vhd),
        (&vhd, ChildFormat::Vhdx),
    ] {
        match create_child(base, &out, fmt) {
            Err(Error::Unsupported { reason, .. }) => {
                eprintln!("{reason}");
                assert!(reason.contains("cannot be the parent"), "{reason}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert!(!out.exists());
    }
    // No leftovers beside OUT.
    assert_eq!(std::fs::read_dir(d).unwrap().count(), 2); // golden, plain.raw

    // OUT exists: refused, untouched; with overwrite: replaced (and its journal dropped).
    let out = d.join("c.vhd");
    std::fs::write(&out, b"precious").unwrap();
    match create_child(&vhd, &out, ChildFormat::Vhd) {
        Err(Error::Io { source, .. }) => {
            assert_eq!(source.kind(), std::io::ErrorKind::AlreadyExists)
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    std::fs::create_dir(d.join("c.vhd.reseal-journal")).unwrap();
    let opts = ChildOptions::default().overwrite(true);
    create_child_with(&vhd, &out, ChildFormat::Vhd, &opts).unwrap();
    assert!(!d.join("c.vhd.reseal-journal").exists());
    assert_eq!(
        Image::open(&out, Access::ReadOnly).unwrap().format(),
        ImageFormat::VhdDifferencing
    );
    // A stale journal directory without OUT is refused (its undo files are someone else's).
    let out2 = d.join("c2.vhd");
    std::fs::create_dir(d.join("c2.vhd.reseal-journal")).unwrap();
    assert!(matches!(
        create_child(&vhd, &out2, ChildFormat::Vhd),
        Err(Error::Journal { .. })
    ));
    assert!(!out2.exists());

    // Overwriting the base itself (directly, or as the parent of a child) is refused.
    let before = sha256(&vhd);
    for target in [&vhd, &d.join("golden/../golden/base.vhd")] {
        assert!(matches!(
            create_child_with(&vhd, target, ChildFormat::Vhd, &opts),
            Err(Error::Unsupported { .. })
        ));
    }
    assert!(matches!(
        create_child_with(&out, &vhd, ChildFormat::Vhd, &opts),
        Err(Error::Unsupported { .. })
    ));
    std::fs::hard_link(&vhd, d.join("link.vhd")).unwrap();
    assert!(matches!(
        create_child_with(&vhd, &d.join("link.vhd"), ChildFormat::Vhd, &opts),
        Err(Error::Unsupported { .. })
    ));
    assert_eq!(sha256(&vhd), before);

    // A base someone writes: the shared lock is refused.
    let w = Image::open(&vhd, Access::ReadWrite).unwrap();
    let quick = ChildOptions::default().lock_timeout(std::time::Duration::from_millis(50));
    assert!(matches!(
        create_child_with(&vhd, &d.join("c3.vhd"), ChildFormat::Vhd, &quick),
        Err(Error::Locked { .. })
    ));
    drop(w);
}

#[test]
fn concurrent_children_of_one_base() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let (base, content) = qemu_base(&d, "vhdx", 15);
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (base, d) = (base.clone(), d.clone());
            std::thread::spawn(move || {
                let out = d.join(format!("c{i}.vhdx"));
                create_child(&base, &out, ChildFormat::Vhdx).unwrap();
                let mut img = Image::open(&out, Access::ReadWrite).unwrap();
                img.write_at(512 * i, &[i as u8 + 1; 512]).unwrap();
                img.commit().unwrap();
                out
            })
        })
        .collect();
    for (i, t) in threads.into_iter().enumerate() {
        let out = t.join().unwrap();
        let img = Image::open(&out, Access::ReadOnly).unwrap();
        let mut model = content.clone();
        model[512 * i..512 * (i + 1)].fill(i as u8 + 1);
        assert!(read_all(&img) == model);
    }
}

/// Hostile parent locators: every byte of the VHDX locator item and of the VHD locator entries
/// set to a few values; opening must give a result or an error, never panic.
#[test]
fn hostile_parent_locators() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (vhdx, _) = qemu_base(d, "vhdx", 16);
    let child = d.join("golden/c.vhdx");
    create_child(&vhdx, &child, ChildFormat::Vhdx).unwrap();
    let good = std::fs::read(&child).unwrap();
    // Locator item: after the 40 bytes of fixed items at metadata offset 2 MiB + 64 KiB.
    let loc = (2 * MIB + 64 * 1024 + 40) as usize;
    let victim = d.join("golden/v.vhdx");
    let mut errors = 0;
    for i in (loc..loc + 400).step_by(3) {
        for v in [0u8, 0xFF, 0x7F] {
            let mut f = good.clone();
            f[i] = v;
            std::fs::write(&victim, &f).unwrap();
            match Image::open(&victim, Access::ReadOnly) {
                Ok(img) => {
                    let mut b = vec![0u8; 4096];
                    let _ = img.read_at(0, &mut b);
                }
                Err(_) => errors += 1,
            }
        }
    }
    assert!(errors > 0);
    // Wrong parent linkage: an error naming the locator.
    let mut f = good.clone();
    let pos = f
        .windows(2 * 14)
        .position(|w| {
            w == "parent_linkage"
                .encode_utf16()
                .flat_map(u16::to_le_bytes)
                .collect::<Vec<_>>()
        })
        .unwrap();
    // The value follows the key: flip one hex digit of the GUID ("{" then 8 hex digits).
    let val = pos + 28 + 2;
    f[val] = if f[val] == b'0' { b'1' } else { b'0' };
    std::fs::write(&victim, &f).unwrap();
    match Image::open(&victim, Access::ReadOnly) {
        Err(Error::Corrupt { structure, .. }) => assert_eq!(structure, "VHDX parent locator"),
        other => panic!("expected a linkage error, got {other:?}"),
    }

    let (vhd, _) = qemu_base(d, "vpc", 17);
    let child = d.join("golden/c.vhd");
    create_child(&vhd, &child, ChildFormat::Vhd).unwrap();
    let good = std::fs::read(&child).unwrap();
    let victim = d.join("golden/v.vhd");
    // Locator entries at header offset 576 (header at 512), their data after the BAT.
    for i in (512 + 576..512 + 576 + 48).chain(1536 + 512..1536 + 512 + 64) {
        for v in [0u8, 0xFF, 0x80] {
            let mut f = good.clone();
            f[i] = v;
            std::fs::write(&victim, &f).unwrap();
            for access in [Access::ReadOnly, Access::ReadWrite] {
                if let Ok(img) = Image::open(&victim, access) {
                    let mut b = vec![0u8; 4096];
                    let _ = img.read_at(0, &mut b);
                }
            }
        }
    }
    // Wrong parent UUID: an error naming the dynamic header.
    let mut f = good.clone();
    f[512 + 40] ^= 1;
    let h = &mut f[512..1536];
    h[36..40].fill(0);
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[36..40].copy_from_slice(&(!sum).to_be_bytes());
    std::fs::write(&victim, &f).unwrap();
    match Image::open(&victim, Access::ReadOnly) {
        Err(Error::Corrupt { structure, .. }) => assert_eq!(structure, "VHD dynamic header"),
        other => panic!("expected a parent UUID error, got {other:?}"),
    }
}

fn vhdx_child_random_writes(ws: &[(u64, usize, u64)]) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (base, content) = qemu_base(d, "vhdx", 18);
    let child = d.join("golden/c.vhdx");
    create_child(&base, &child, ChildFormat::Vhdx).unwrap();
    let mut model = content.clone();
    let mut img = Image::open(&child, Access::ReadWrite).unwrap();
    for &(o, l, s) in ws {
        let data = match s % 5 {
            0 => vec![0u8; l],
            1 => content[o as usize..o as usize + l].to_vec(),
            _ => pseudo_random(s, l),
        };
        img.write_at(o, &data).unwrap();
        model[o as usize..o as usize + l].copy_from_slice(&data);
    }
    assert!(read_all(&img) == model, "staged view; writes {ws:?}");
    img.commit().unwrap();
    drop(img);
    let img = Image::open(&child, Access::ReadOnly).unwrap();
    let ours = read_all(&img);
    drop(img);
    assert!(
        ours == model,
        "first difference {:?}; writes {ws:?}",
        first_diff(&ours, &model)
    );
    // Touch one byte of every block still NOT_PRESENT, then libvhdi must agree.
    let mut img = Image::open(&child, Access::ReadWrite).unwrap();
    for k in 0..(SIZE as u64 / MIB) {
        let o = k * MIB + 4321;
        let b = [model[o as usize] ^ 0x5A];
        img.write_at(o, &b).unwrap();
        model[o as usize] = b[0];
    }
    img.commit().unwrap();
    drop(img);
    if have("vhdimount") {
        let theirs = vhdimount_read(&child, d);
        assert!(
            theirs == model,
            "libvhdi: first difference {:?}; writes {ws:?}",
            first_diff(&theirs, &model)
        );
    }
}

fn child_writes() -> impl proptest::strategy::Strategy<Value = Vec<(u64, usize, u64)>> {
    use proptest::prelude::*;
    let size = SIZE as u64;
    let w = (0..size, 1usize..(3 << 20), any::<u64>()).prop_map(move |(o, l, s)| {
        // Bias towards block boundaries, sector alignment and short writes.
        let o = match s % 4 {
            0 => (o / MIB) * MIB,
            1 => (o / 512) * 512,
            2 => ((o / MIB) * MIB).saturating_sub(s % 700),
            _ => o,
        };
        let l = if s % 3 == 0 { l % 1500 + 1 } else { l };
        (o, l.min((size - o) as usize), s)
    });
    proptest::collection::vec(w, 1..12)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 12, max_shrink_iters: 30, ..proptest::prelude::ProptestConfig::default()
    })]
    #[test]
    fn random_writes_vhdx_child(ws in child_writes()) {
        if have("qemu-img") {
            vhdx_child_random_writes(&ws);
        }
    }
}

/// A child moved to another folder (its relative locator now wrong) finds the base through
/// its absolute locator (VHD `W2ku`, VHDX `absolute_win32_path` with `\` separators).
#[test]
fn moved_child_finds_base_by_absolute_path() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("a/b")).unwrap();
    for (fmt, cf, ext) in [
        ("vpc", ChildFormat::Vhd, "vhd"),
        ("vhdx", ChildFormat::Vhdx, "vhdx"),
    ] {
        let (base, content) = qemu_base(d, fmt, 19);
        let child = d.join(format!("c.{ext}"));
        create_child(&base, &child, cf).unwrap();
        let moved = d.join(format!("a/b/c.{ext}"));
        std::fs::rename(&child, &moved).unwrap();
        let img = Image::open(&moved, Access::ReadOnly).unwrap();
        assert_eq!(
            img.info().parent_chain,
            vec![std::fs::canonicalize(&base).unwrap()]
        );
        assert!(read_all(&img) == content);
    }
}
