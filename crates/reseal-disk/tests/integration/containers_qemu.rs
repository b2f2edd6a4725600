//! Containers against the qemu-img oracle: reading qemu-made images, random writes committed
//! through the journal then exported by qemu, and convert round trips.

use crate::containers_util;

use std::path::Path;

use containers_util::*;
use proptest::prelude::*;
use reseal_disk::convert::{convert, TargetFormat};
use reseal_disk::{Access, Device, Image, ImageFormat};

const SIZE: usize = 9 << 20;

/// qemu-made raw, vpc dynamic/fixed, vhdx dynamic/fixed images of known content read back
/// byte-identically (compared both to the source and to qemu's own raw export).
#[test]
fn reads_qemu_made_images() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    let data = sample_disk(SIZE, 7);
    std::fs::write(&src, &data).unwrap();
    let cases: &[(&str, &str, &[&str], ImageFormat)] = &[
        ("raw", "raw", &[], ImageFormat::Raw),
        (
            "vpc-dyn",
            "vpc",
            &["-o", "subformat=dynamic"],
            ImageFormat::VhdDynamic,
        ),
        (
            "vpc-fixed",
            "vpc",
            &["-o", "subformat=fixed"],
            ImageFormat::VhdFixed,
        ),
        (
            "vpc-dyn-force",
            "vpc",
            &["-o", "subformat=dynamic,force_size=on"],
            ImageFormat::VhdDynamic,
        ),
        (
            "vhdx-dyn",
            "vhdx",
            &["-o", "subformat=dynamic"],
            ImageFormat::VhdxDynamic,
        ),
        (
            "vhdx-fixed",
            "vhdx",
            &["-o", "subformat=fixed"],
            ImageFormat::VhdxFixed,
        ),
        (
            "vhdx-1m",
            "vhdx",
            &["-o", "block_size=1048576"],
            ImageFormat::VhdxDynamic,
        ),
    ];
    for (name, fmt, opts, want) in cases {
        let img = dir.path().join(format!("{name}.img"));
        let mut args = vec!["convert", "-f", "raw", "-O", fmt];
        args.extend_from_slice(opts);
        args.push(p(&src));
        args.push(p(&img));
        run("qemu-img", &args);
        let image = Image::open(&img, Access::ReadOnly).unwrap();
        assert_eq!(image.format(), *want, "{name}");
        let ours = read_all(&image);
        let theirs = qemu_raw(&img, fmt, dir.path());
        assert_eq!(
            ours.len(),
            theirs.len(),
            "{name}: virtual size differs from qemu's"
        );
        assert!(ours == theirs, "{name}: content differs from qemu's export");
        assert!(
            ours.len() >= SIZE && ours[..SIZE] == data[..],
            "{name}: content differs from source"
        );
        assert!(ours[SIZE..].iter().all(|&b| b == 0));
        eprintln!(
            "{name}: ok ({} bytes, {:?})",
            ours.len(),
            image.info().block_size
        );
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Raw,
    VhdDynamic,
    VhdFixed,
    VhdDifferencing,
    VhdxDynamic,
    VhdxFixed,
}

const PROP_SIZE: u64 = 6 << 20;

/// Make an image of kind `k`; returns (path, qemu format name, initial content).
fn make(k: Kind, dir: &Path) -> (std::path::PathBuf, &'static str, Vec<u8>) {
    let img = dir.join("t.img");
    let _ = std::fs::remove_file(&img);
    let _ = std::fs::remove_dir_all(dir.join("t.img.reseal-journal"));
    let size = PROP_SIZE.to_string();
    let (fmt, opts): (&str, &[&str]) = match k {
        Kind::Raw => ("raw", &[]),
        Kind::VhdDynamic => ("vpc", &["-o", "subformat=dynamic,force_size=on"]),
        Kind::VhdFixed => ("vpc", &["-o", "subformat=fixed,force_size=on"]),
        Kind::VhdxDynamic => ("vhdx", &["-o", "block_size=1048576"]),
        Kind::VhdxFixed => ("vhdx", &["-o", "subformat=fixed,block_size=1048576"]),
        Kind::VhdDifferencing => {
            // Parent: qemu-made dynamic VHD with content; child made by reseal.
            let parent = dir.join("parent.vhd");
            let praw = dir.join("parent.raw");
            let content = sample_disk(PROP_SIZE as usize, 3);
            std::fs::write(&praw, &content).unwrap();
            let _ = std::fs::remove_file(&parent);
            run(
                "qemu-img",
                &[
                    "convert",
                    "-f",
                    "raw",
                    "-O",
                    "vpc",
                    "-o",
                    "force_size=on",
                    p(&praw),
                    p(&parent),
                ],
            );
            reseal_disk::vhd::create_differencing(&img, &parent).unwrap();
            return (img, "vpc-diff", content);
        }
    };
    let mut args = vec!["create", "-q", "-f", fmt];
    args.extend_from_slice(opts);
    args.push(p(&img));
    args.push(&size);
    run("qemu-img", &args);
    (img, fmt, vec![0u8; PROP_SIZE as usize])
}

fn writes() -> impl Strategy<Value = Vec<(u64, usize, u64)>> {
    let w = (0..PROP_SIZE, 1usize..300_000, any::<u64>()).prop_map(|(o, l, s)| {
        // Bias towards block boundaries and sector alignment.
        let o = match s % 4 {
            0 => (o / (1 << 20)) * (1 << 20),
            1 => (o / 512) * 512,
            2 => ((o / (1 << 20)) * (1 << 20)).saturating_sub(s % 700),
            _ => o,
        };
        let l = l.min((PROP_SIZE - o) as usize).max(1);
        (
            o.min(PROP_SIZE - 1),
            l.min((PROP_SIZE - o.min(PROP_SIZE - 1)) as usize),
            s,
        )
    });
    prop::collection::vec(w, 1..20)
}

fn check_kind(k: Kind, ws: &[(u64, usize, u64)]) {
    let dir = tempfile::tempdir().unwrap();
    let (img, fmt, mut model) = make(k, dir.path());
    {
        let mut image = Image::open(&img, Access::ReadWrite).unwrap();
        for &(o, l, s) in ws {
            let data = if s % 5 == 0 {
                vec![0u8; l]
            } else {
                pseudo_random(s, l)
            };
            image.write_at(o, &data).unwrap();
            model[o as usize..o as usize + l].copy_from_slice(&data);
        }
        // Reads see staged writes.
        assert!(read_all(&image) == model, "{k:?}: staged view differs");
        image.commit().unwrap();
    }
    let got = if fmt == "vpc-diff" {
        // qemu cannot read differencing VHDs: libvhdi (vhdimount) and reseal itself must agree.
        let image = Image::open(&img, Access::ReadOnly).unwrap();
        assert_eq!(image.info().parent_chain.len(), 1);
        let ours = read_all(&image);
        if have("vhdimount") {
            let theirs = vhdimount_read(&img, dir.path());
            if theirs != ours {
                let first = theirs.iter().zip(&ours).position(|(a, b)| a != b);
                panic!(
                    "{k:?}: libvhdi reads different content ({} vs {} bytes, first difference at {first:?}, model agrees with reseal: {}); writes {ws:?}",
                    theirs.len(),
                    ours.len(),
                    ours == model
                );
            }
        }
        ours
    } else {
        if fmt == "vhdx" {
            run("qemu-img", &["check", "-f", "vhdx", p(&img)]);
        }
        qemu_raw(&img, fmt, dir.path())
    };
    assert_eq!(got.len(), model.len(), "{k:?}: size");
    if got != model {
        let first = got.iter().zip(&model).position(|(a, b)| a != b).unwrap();
        panic!("{k:?}: content differs from the model, first at {first:#x}; writes {ws:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, max_shrink_iters: 50, ..ProptestConfig::default() })]

    #[test]
    fn random_writes_raw(ws in writes()) { check_kind(Kind::Raw, &ws) }
    #[test]
    fn random_writes_vhd_dynamic(ws in writes()) { check_kind(Kind::VhdDynamic, &ws) }
    #[test]
    fn random_writes_vhd_fixed(ws in writes()) { check_kind(Kind::VhdFixed, &ws) }
    #[test]
    fn random_writes_vhd_differencing(ws in writes()) { check_kind(Kind::VhdDifferencing, &ws) }
    #[test]
    fn random_writes_vhdx_dynamic(ws in writes()) { check_kind(Kind::VhdxDynamic, &ws) }
    #[test]
    fn random_writes_vhdx_fixed(ws in writes()) { check_kind(Kind::VhdxFixed, &ws) }
}

/// raw → vhd → vhdx → raw is byte-identical; qemu-img compare finds every step equal to the
/// source, and qemu-img check passes on the VHDX.
#[test]
fn convert_round_trip() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src.raw");
    let data = sample_disk(SIZE + 512 * 7, 11);
    std::fs::write(&src, &data).unwrap();
    let rounded = reseal_disk::vhd::covering_geometry(data.len() as u64 / 512).0 * 512;
    assert!(rounded > data.len() as u64);
    let steps: [(&str, &str, TargetFormat, &str); 4] = [
        ("src.raw", "a.vhd", TargetFormat::VhdDynamic, "vpc"),
        ("a.vhd", "b.vhdx", TargetFormat::Vhdx, "vhdx"),
        ("b.vhdx", "c.raw", TargetFormat::Raw, "raw"),
        ("c.raw", "d.vhd", TargetFormat::VhdFixed, "vpc"),
    ];
    for (from, to, fmt, qfmt) in steps {
        let img = Image::open(&d.join(from), Access::ReadOnly).unwrap();
        let mut last = (0, 0);
        let rep = convert(&img, &d.join(to), fmt, &mut |a, b| last = (a, b)).unwrap();
        eprintln!("{from} -> {to}: {rep:?}");
        assert_eq!(last, (img.len(), img.len()));
        assert!(!d.join(format!("{to}.reseal-tmp")).exists());
        run(
            "qemu-img",
            &["compare", "-f", "raw", "-F", qfmt, p(&src), p(&d.join(to))],
        );
        if qfmt == "vhdx" {
            run("qemu-img", &["check", "-f", "vhdx", p(&d.join(to))]);
        }
        // The first VHD rounds the size up to its CHS geometry (as qemu-img does); from there
        // on every output has that size, and the tail is zero (qemu-img compare above).
        let info = run("qemu-img", &["info", "-f", qfmt, p(&d.join(to))]);
        assert!(info.contains(&format!("({rounded} bytes)")), "{to}: {info}");
    }
    let c = std::fs::read(d.join("c.raw")).unwrap();
    assert!(c[..data.len()] == data[..] && c[data.len()..].iter().all(|&b| b == 0));
    // Sparse: the dynamic outputs did not allocate the zero regions.
    let vhd_len = std::fs::metadata(d.join("a.vhd")).unwrap().len();
    assert!(vhd_len > data.len() as u64 / 2);
    // An all-zero disk converts to an almost empty dynamic image.
    let zero = d.join("zero.raw");
    reseal_disk::raw::create(&zero, 64 << 20).unwrap();
    let img = Image::open(&zero, Access::ReadOnly).unwrap();
    convert(
        &img,
        &d.join("zero.vhdx"),
        TargetFormat::Vhdx,
        &mut |_, _| {},
    )
    .unwrap();
    convert(
        &img,
        &d.join("zero.vhd"),
        TargetFormat::VhdDynamic,
        &mut |_, _| {},
    )
    .unwrap();
    assert!(std::fs::metadata(d.join("zero.vhdx")).unwrap().len() <= 5 << 20);
    assert!(std::fs::metadata(d.join("zero.vhd")).unwrap().len() <= 64 << 10);
    run(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "vpc",
            p(&zero),
            p(&d.join("zero.vhd")),
        ],
    );
    run(
        "qemu-img",
        &[
            "compare",
            "-f",
            "raw",
            "-F",
            "vhdx",
            p(&zero),
            p(&d.join("zero.vhdx")),
        ],
    );
}

/// Images created by reseal are accepted by qemu-img (info, check, compare with an empty disk).
#[test]
fn created_images_are_accepted_by_qemu() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let size = 5_000_192u64;
    reseal_disk::vhd::create_dynamic(&d.join("a.vhd"), size, 2 << 20).unwrap();
    reseal_disk::vhd::create_fixed(&d.join("b.vhd"), size).unwrap();
    reseal_disk::vhdx::create_dynamic(&d.join("c.vhdx"), size, 1 << 20).unwrap();
    reseal_disk::vhdx::create_fixed(&d.join("d.vhdx"), size).unwrap();
    reseal_disk::raw::create(&d.join("e.raw"), size).unwrap();
    // VHDs round up to their CHS geometry, as `qemu-img create -f vpc` does, so that readers
    // going by geometry (qemu 7.2) and by the footer's size agree; `VhdSize::Exact` keeps it.
    let vhd_size = reseal_disk::vhd::covering_geometry(size.div_ceil(512)).0 * 512;
    reseal_disk::vhd::create_fixed_sized(&d.join("f.vhd"), size, reseal_disk::vhd::VhdSize::Exact)
        .unwrap();
    for (f, fmt, want) in [
        ("a.vhd", "vpc", vhd_size),
        ("b.vhd", "vpc", vhd_size),
        ("c.vhdx", "vhdx", size),
        ("d.vhdx", "vhdx", size),
        ("e.raw", "raw", size),
    ] {
        let info = run("qemu-img", &["info", "-f", fmt, p(&d.join(f))]);
        assert!(info.contains(&format!("({want} bytes)")), "{f}: {info}");
        if fmt == "vhdx" {
            run("qemu-img", &["check", "-f", fmt, p(&d.join(f))]);
        }
        run(
            "qemu-img",
            &[
                "compare",
                "-f",
                "raw",
                "-F",
                fmt,
                p(&d.join("e.raw")),
                p(&d.join(f)),
            ],
        );
        let img = Image::open(&d.join(f), Access::ReadOnly).unwrap();
        assert_eq!(img.len(), want);
    }
    // The exact-size VHD: reseal and qemu told to take the footer's size (any qemu version;
    // qemu 7.2 would otherwise go by the geometry, which covers less) see the size asked for.
    let img = Image::open(&d.join("f.vhd"), Access::ReadOnly).unwrap();
    assert_eq!(img.len(), size);
    let opts = format!(
        "driver=vpc,force_size_calc=current_size,file.filename={}",
        p(&d.join("f.vhd"))
    );
    let info = run("qemu-img", &["info", "--image-opts", &opts]);
    assert!(info.contains(&format!("({size} bytes)")), "f.vhd: {info}");
}
