//! qcow2 against the qemu-img oracle: qemu-made images (v2, v3, zlib, zstd, zero clusters,
//! overlays, chains) read as `qemu-img convert -O raw` reads them; random writes committed
//! through the journal equal the same writes on a raw copy (`qemu-img compare`) and leave
//! `qemu-img check` clean; backing files stay byte-identical; hostile headers are errors;
//! other formats and random bytes are refused rather than taken for raw; block devices.

use crate::containers_util;

use std::path::{Path, PathBuf};
use std::process::Command;

use containers_util::*;
use reseal_disk::qcow2::create_overlay;
use reseal_disk::{Access, ContainerKind, Device, Error, Image, ImageFormat, OpenOptions};

const SIZE: usize = 6 << 20;

fn qemu_check(img: &Path) {
    let out = Command::new("qemu-img")
        .args(["check", "-f", "qcow2", p(img)])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && text.contains("No errors were found"),
        "qemu-img check {}: {text}",
        img.display()
    );
}

fn qemu_compare(img: &Path, raw: &Path) {
    let out = Command::new("qemu-img")
        .args(["compare", "-f", "qcow2", "-F", "raw", p(img), p(raw)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "qemu-img compare {} {}: {}{}",
        img.display(),
        raw.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sha(path: &Path) -> String {
    run("sha256sum", &[p(path)])
}

/// `count` writes of up to `max_len` bytes anywhere in a disk of `size` bytes.
fn random_writes(seed: u64, count: usize, size: u64, max_len: u64) -> Vec<(u64, Vec<u8>)> {
    let r = pseudo_random(seed, count * 16);
    (0..count)
        .map(|i| {
            let a = u64::from_le_bytes(r[16 * i..16 * i + 8].try_into().unwrap());
            let b = u64::from_le_bytes(r[16 * i + 8..16 * i + 16].try_into().unwrap());
            let len = 1 + b % max_len;
            let off = a % (size - len);
            (off, pseudo_random(a ^ b, len as usize))
        })
        .collect()
}

/// Apply `writes` to the qcow2 `img` through Image + commit and to `reference` (a raw copy),
/// then check and compare with qemu-img.
fn write_and_verify(img: &Path, reference: &mut [u8], ref_path: &Path, writes: &[(u64, Vec<u8>)]) {
    {
        let mut image = Image::open(img, Access::ReadWrite).unwrap();
        assert_eq!(image.format(), ImageFormat::Qcow2);
        for (off, data) in writes {
            image.write_at(*off, data).unwrap();
            reference[*off as usize..*off as usize + data.len()].copy_from_slice(data);
        }
        // Reads through the staged writes see them.
        let (off, data) = &writes[writes.len() / 2];
        let mut back = vec![0u8; data.len()];
        image.read_at(*off, &mut back).unwrap();
        assert_eq!(
            back,
            reference[*off as usize..*off as usize + data.len()].to_vec()
        );
        image.commit().unwrap();
    }
    std::fs::write(ref_path, &*reference).unwrap();
    qemu_check(img);
    qemu_compare(img, ref_path);
    let image = Image::open(img, Access::ReadOnly).unwrap();
    assert!(
        read_all(&image) == reference,
        "reseal reads back its writes"
    );
}

/// [`write_and_verify`] for big, mostly empty images: `ref_path` is a sparse raw file equal to
/// the image; the written ranges are compared by reading them back, the rest by qemu-img.
fn write_and_verify_sparse(img: &Path, ref_path: &Path, writes: &[(u64, Vec<u8>)]) {
    use std::os::unix::fs::FileExt;
    let rf = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(ref_path)
        .unwrap();
    {
        let mut image = Image::open(img, Access::ReadWrite).unwrap();
        for (off, data) in writes {
            image.write_at(*off, data).unwrap();
            rf.write_all_at(data, *off).unwrap();
        }
        image.commit().unwrap();
    }
    qemu_check(img);
    qemu_compare(img, ref_path);
    let image = Image::open(img, Access::ReadOnly).unwrap();
    for (off, data) in writes {
        let mut a = vec![0u8; data.len()];
        let mut b = vec![0u8; data.len()];
        image.read_at(*off, &mut a).unwrap();
        rf.read_exact_at(&mut b, *off).unwrap();
        assert!(a == b, "range at {off}");
    }
}

/// (name, qemu-img convert options) of the qcow2 variants made from a raw source.
const VARIANTS: &[(&str, &[&str])] = &[
    ("v2", &["-o", "compat=0.10"]),
    ("v3", &["-o", "compat=1.1"]),
    ("zlib", &["-c"]),
    ("zstd", &["-c", "-o", "compression_type=zstd"]),
    ("v2-zlib", &["-c", "-o", "compat=0.10"]),
    ("small-clusters", &["-o", "cluster_size=512"]),
    ("refcount1", &["-o", "refcount_bits=1"]),
    ("refcount64", &["-o", "refcount_bits=64,cluster_size=4096"]),
    ("big-clusters", &["-o", "cluster_size=2M"]),
    ("lazy-refcounts", &["-o", "lazy_refcounts=on"]),
    ("prealloc-metadata", &["-o", "preallocation=metadata"]),
];

fn make_variant(dir: &Path, src: &Path, name: &str, opts: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.qcow2"));
    let mut args = vec!["convert", "-f", "raw", "-O", "qcow2"];
    args.extend_from_slice(opts);
    args.extend_from_slice(&[p(src), p(&out)]);
    run("qemu-img", &args);
    out
}

#[test]
fn reads_qemu_made_images() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    std::fs::write(&src, sample_disk(SIZE + 12345, 3)).unwrap();
    for (name, opts) in VARIANTS {
        let img = make_variant(dir.path(), &src, name, opts);
        let image = Image::open(&img, Access::ReadOnly).unwrap();
        assert_eq!(image.format(), ImageFormat::Qcow2, "{name}");
        let expect = qemu_raw(&img, "qcow2", dir.path());
        assert_eq!(image.len(), expect.len() as u64, "{name}");
        assert!(read_all(&image) == expect, "{name}: content differs");
        // Unaligned reads across cluster boundaries.
        for (off, len) in [(511u64, 3000usize), (65535, 70000), (1 << 20, 1)] {
            let mut b = vec![0u8; len];
            image.read_at(off, &mut b).unwrap();
            assert_eq!(
                b,
                expect[off as usize..off as usize + len],
                "{name} at {off}"
            );
        }
    }
}

#[test]
fn writes_equal_raw_copy_and_check_clean() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    std::fs::write(&src, sample_disk(SIZE, 5)).unwrap();
    let refp = dir.path().join("ref.raw");
    for (k, (name, opts)) in VARIANTS.iter().enumerate() {
        let img = make_variant(dir.path(), &src, name, opts);
        let mut reference = qemu_raw(&img, "qcow2", dir.path());
        for round in 0..2u64 {
            let w = random_writes(100 * k as u64 + round, 40, SIZE as u64, 150_000);
            write_and_verify(&img, &mut reference, &refp, &w);
        }
    }
}

/// An empty image with small clusters and wide refcounts: the writes need many new L2 tables,
/// new refcount blocks, and the refcount table moved (twice) to a bigger place.
#[test]
fn growth_of_l2_tables_and_refcount_table() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let refp = dir.path().join("ref.raw");
    for (name, opts, size) in [
        ("rc64", "cluster_size=512,refcount_bits=64", 64u64 << 20),
        ("rc16", "cluster_size=512", 64 << 20),
        ("v2", "cluster_size=1024,compat=0.10", 64 << 20),
        ("default-64k-64g", "compat=1.1", 64 << 30),
    ] {
        let img = dir.path().join(format!("{name}.qcow2"));
        run(
            "qemu-img",
            &[
                "create",
                "-q",
                "-f",
                "qcow2",
                "-o",
                opts,
                p(&img),
                &size.to_string(),
            ],
        );
        std::fs::File::create(&refp).unwrap().set_len(size).unwrap();
        // Many scattered small writes (one new L2 table each) and some large ones.
        let mut w = random_writes(7, 300, size, 4096);
        w.extend(random_writes(8, 6, size, 3 << 20));
        write_and_verify_sparse(&img, &refp, &w);
        // A second session on the grown image.
        let w = random_writes(9, 100, size, 20_000);
        write_and_verify_sparse(&img, &refp, &w);
    }
    // The refcount table did move: more than its one initial cluster.
    let img = dir.path().join("rc64.qcow2");
    let h = std::fs::read(&img).unwrap();
    let rt_clusters = u32::from_be_bytes(h[56..60].try_into().unwrap());
    assert!(rt_clusters > 1, "refcount table clusters {rt_clusters}");
}

/// v3 zero clusters (with and without a preallocated host cluster) read as zeros; writing into
/// one allocates.
#[test]
fn zero_clusters() {
    if !have("qemu-img") || !have("qemu-io") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.raw");
    std::fs::write(&src, sample_disk(SIZE, 11)).unwrap();
    let img = make_variant(dir.path(), &src, "z", &["-o", "compat=1.1"]);
    run(
        "qemu-io",
        &[
            "-f",
            "qcow2",
            "-c",
            "write -z 0 256k",
            "-c",
            "write -z -u 1M 192k",
            "-c",
            "write -z 2097152 65536",
            p(&img),
        ],
    );
    let mut reference = qemu_raw(&img, "qcow2", dir.path());
    assert!(reference[..256 << 10].iter().all(|&b| b == 0));
    let image = Image::open(&img, Access::ReadOnly).unwrap();
    assert!(read_all(&image) == reference);
    assert!(image.known_zero(0, 256 << 10));
    drop(image);
    let refp = dir.path().join("ref.raw");
    let w = vec![
        (100u64, vec![1u8; 10]),
        (70_000, vec![2u8; 100_000]),
        ((1 << 20) + 5, vec![3u8; 200]),
        (2 << 20, vec![4u8; 65536]),
    ];
    write_and_verify(&img, &mut reference, &refp, &w);
}

/// An overlay made by qemu-img over a qcow2 base, and a chain raw ← qcow2 ← qcow2 (relative and
/// absolute backing names): reads equal qemu's, writes go to the top only.
#[test]
fn overlays_and_chains() {
    if !have("qemu-img") || !have("qemu-io") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src.raw");
    std::fs::write(&src, sample_disk(SIZE, 13)).unwrap();
    let base = make_variant(d, &src, "base", &["-c"]);
    let ov = d.join("ov.qcow2");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "base.qcow2",
            "-F",
            "qcow2",
            p(&ov),
        ],
    );
    let base_sum = sha(&base);
    let image = Image::open(&ov, Access::ReadOnly).unwrap();
    assert_eq!(image.info().parent_chain, vec![d.join("base.qcow2")]);
    assert!(read_all(&image) == qemu_raw(&ov, "qcow2", d));
    drop(image);
    // While reseal writes the overlay, the base is shared: qemu may read it, not write it.
    {
        let _w = Image::open(&ov, Access::ReadWrite).unwrap();
        run("qemu-img", &["info", p(&base)]);
        let out = Command::new("qemu-io")
            .args(["-f", "qcow2", "-c", "write 0 512", p(&base)])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && text.contains("lock"),
            "qemu-io must be refused by the lock: {text}"
        );
    }
    assert_eq!(sha(&base), base_sum);
    let refp = d.join("ref.raw");
    let mut reference = qemu_raw(&ov, "qcow2", d);
    write_and_verify(
        &ov,
        &mut reference,
        &refp,
        &random_writes(1, 50, SIZE as u64, 100_000),
    );
    assert_eq!(sha(&base), base_sum, "backing file unchanged");
    // A version 2 overlay.
    let ov2 = d.join("ov2.qcow2");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-o",
            "compat=0.10",
            "-b",
            "base.qcow2",
            "-F",
            "qcow2",
            p(&ov2),
        ],
    );
    let mut reference = qemu_raw(&ov2, "qcow2", d);
    write_and_verify(
        &ov2,
        &mut reference,
        &refp,
        &random_writes(4, 50, SIZE as u64, 100_000),
    );
    assert_eq!(sha(&base), base_sum, "backing file unchanged");

    // Chain: raw base ← mid (absolute backing name, some writes by qemu) ← top (relative).
    let sub = d.join("sub");
    std::fs::create_dir(&sub).unwrap();
    let mid = sub.join("mid.qcow2");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            p(&src),
            "-F",
            "raw",
            p(&mid),
        ],
    );
    run(
        "qemu-io",
        &["-f", "qcow2", "-c", "write -P 0x5a 100k 300k", p(&mid)],
    );
    let top = d.join("top.qcow2");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "sub/mid.qcow2",
            "-F",
            "qcow2",
            p(&top),
        ],
    );
    let (src_sum, mid_sum) = (sha(&src), sha(&mid));
    let image = Image::open(&top, Access::ReadOnly).unwrap();
    assert_eq!(
        image.info().parent_chain,
        vec![d.join("sub/mid.qcow2"), src.clone()]
    );
    let mut reference = qemu_raw(&top, "qcow2", d);
    assert!(read_all(&image) == reference);
    drop(image);
    write_and_verify(
        &top,
        &mut reference,
        &refp,
        &random_writes(2, 50, SIZE as u64, 100_000),
    );
    assert_eq!(
        (sha(&src), sha(&mid)),
        (src_sum, mid_sum),
        "parents unchanged"
    );

    // A missing backing file is named.
    std::fs::rename(&mid, sub.join("moved.qcow2")).unwrap();
    match Image::open(&top, Access::ReadOnly) {
        Err(Error::MissingParent { parent, .. }) => assert_eq!(parent, "sub/mid.qcow2"),
        other => panic!("expected MissingParent, got {other:?}"),
    }
}

/// create_overlay: qemu-img sees the child of the backing file (relative name, also from a
/// subfolder), writes land in the overlay only.
#[test]
fn create_overlay_is_a_child_for_qemu() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src.raw");
    std::fs::write(&src, sample_disk(SIZE, 17)).unwrap();
    let base = make_variant(d, &src, "base", &[]);
    let sub = d.join("clones");
    std::fs::create_dir(&sub).unwrap();
    for (out, fmt, backing, want_name, cluster) in [
        (d.join("c1.qcow2"), "qcow2", &base, "base.qcow2", 65536u32),
        (sub.join("c2.qcow2"), "qcow2", &base, "../base.qcow2", 512),
        (sub.join("c3.qcow2"), "raw", &src, "../src.raw", 2 << 20),
    ] {
        create_overlay(&out, backing, fmt, SIZE as u64, cluster).unwrap();
        let info: serde_json::Value =
            serde_json::from_str(&run("qemu-img", &["info", "--output=json", p(&out)])).unwrap();
        assert_eq!(info["backing-filename"], want_name, "{info}");
        assert_eq!(info["backing-filename-format"], fmt, "{info}");
        assert_eq!(info["virtual-size"], SIZE as u64);
        assert_eq!(info["cluster-size"], cluster);
        qemu_check(&out);
        let backing_sum = sha(backing);
        let mut reference = qemu_raw(&out, "qcow2", d);
        assert!(reference == qemu_raw(backing, fmt, d));
        let refp = d.join("ref.raw");
        write_and_verify(
            &out,
            &mut reference,
            &refp,
            &random_writes(3, 30, SIZE as u64, 70_000),
        );
        assert_eq!(sha(backing), backing_sum);
    }
}

/// A chain of four create_overlay children, the backing format of one of them left to be
/// probed (its backing-format extension renamed to an unknown type), and an overlay bigger than
/// its backing file: reads equal qemu's, writes at the top leave every parent as it was.
#[test]
fn deep_chains_probed_format_and_bigger_overlay() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src.raw");
    std::fs::write(&src, sample_disk(SIZE, 29)).unwrap();
    let base = make_variant(d, &src, "base", &["-c", "-o", "compression_type=zstd"]);
    let mut parent = base.clone();
    let mut sums = vec![sha(&base)];
    let refp = d.join("ref.raw");
    for level in 1..=4 {
        let child = d.join(format!("l{level}.qcow2"));
        create_overlay(&child, &parent, "qcow2", SIZE as u64, 65536).unwrap();
        if level == 2 {
            // Hide the backing format: the extension type becomes one nobody knows.
            let mut b = std::fs::read(&child).unwrap();
            let at = b
                .windows(4)
                .position(|w| w == 0xe279_2acau32.to_be_bytes())
                .unwrap();
            b[at..at + 4].copy_from_slice(&0x1234_5678u32.to_be_bytes());
            std::fs::write(&child, &b).unwrap();
        }
        let mut reference = qemu_raw(&child, "qcow2", d);
        write_and_verify(
            &child,
            &mut reference,
            &refp,
            &random_writes(level, 10, SIZE as u64, 30_000),
        );
        assert_eq!(sha(&base), sums[0]);
        sums.push(sha(&child));
        parent = child;
    }
    let top = Image::open(&parent, Access::ReadOnly).unwrap();
    assert_eq!(top.info().parent_chain.len(), 4);
    drop(top);
    for (level, sum) in sums.iter().enumerate().take(4) {
        let p = if level == 0 {
            base.clone()
        } else {
            d.join(format!("l{level}.qcow2"))
        };
        assert_eq!(&sha(&p), sum, "level {level} unchanged");
    }
    // An overlay bigger than its backing file: the tail reads as zeros.
    let big = d.join("big.qcow2");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-b",
            "src.raw",
            "-F",
            "raw",
            p(&big),
            "9M",
        ],
    );
    let mut reference = qemu_raw(&big, "qcow2", d);
    let image = Image::open(&big, Access::ReadOnly).unwrap();
    assert!(read_all(&image) == reference);
    drop(image);
    let w = vec![
        ((6 << 20) - 100, vec![9u8; 300]),
        (8 << 20, vec![8u8; 5000]),
    ];
    write_and_verify(&big, &mut reference, &refp, &w);
}

/// Internal snapshots and persistent bitmaps: the image reads (the active state), writes are
/// refused with a message and leave the file as it was.
#[test]
fn snapshots_and_bitmaps_read_but_refuse_writes() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src.raw");
    std::fs::write(&src, sample_disk(SIZE, 31)).unwrap();
    let snap = make_variant(d, &src, "snap", &[]);
    run("qemu-img", &["snapshot", "-c", "s1", p(&snap)]);
    let bm = make_variant(d, &src, "bm", &[]);
    run("qemu-img", &["bitmap", "--add", p(&bm), "bm0"]);
    for (img, needle) in [(&snap, "snapshot"), (&bm, "qemu-img bitmap --remove")] {
        let before = sha(img);
        let image = Image::open(img, Access::ReadOnly).unwrap();
        assert!(read_all(&image) == qemu_raw(img, "qcow2", d));
        drop(image);
        let mut image = Image::open(img, Access::ReadWrite).unwrap();
        let e = image.write_at(4096, b"x").unwrap_err();
        assert!(e.to_string().contains(needle), "{e}");
        image.commit().unwrap();
        drop(image);
        assert_eq!(sha(img), before);
        qemu_check(img);
    }
}

/// A standalone image from qcow2::create: qemu-img accepts it, reseal writes it, and
/// known_zero answers for a huge empty image without walking every cluster.
#[test]
fn create_standalone() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let img = d.join("new.qcow2");
    reseal_disk::qcow2::create(&img, SIZE as u64, 65536).unwrap();
    qemu_check(&img);
    let info: serde_json::Value =
        serde_json::from_str(&run("qemu-img", &["info", "--output=json", p(&img)])).unwrap();
    assert_eq!(info["virtual-size"], SIZE as u64);
    assert!(info.get("backing-filename").is_none(), "{info}");
    let mut reference = vec![0u8; SIZE];
    let refp = d.join("ref.raw");
    write_and_verify(
        &img,
        &mut reference,
        &refp,
        &random_writes(5, 40, SIZE as u64, 90_000),
    );
    let huge = d.join("huge.qcow2");
    reseal_disk::qcow2::create(&huge, 1 << 50, 2 << 20).unwrap();
    qemu_check(&huge);
    let t = std::time::Instant::now();
    let image = Image::open(&huge, Access::ReadOnly).unwrap();
    assert!(image.known_zero(0, 1 << 50));
    assert!(t.elapsed().as_secs() < 10);
}

fn expect_err(img: &Path, needle: &str) {
    match Image::open(img, Access::ReadOnly) {
        Ok(_) => panic!(
            "{}: opened, expected an error with {needle:?}",
            img.display()
        ),
        Err(e) => {
            let m = e.to_string();
            assert!(m.contains(needle), "{}: {m}", img.display());
        }
    }
}

#[test]
fn hostile_headers_are_errors() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = d.join("good.qcow2");
    run(
        "qemu-img",
        &["create", "-q", "-f", "qcow2", p(&good), "16M"],
    );
    let bytes = std::fs::read(&good).unwrap();
    let case = |name: &str, f: &dyn Fn(&mut Vec<u8>), needle: &str| {
        let mut b = bytes.clone();
        f(&mut b);
        let path = d.join(name);
        std::fs::write(&path, &b).unwrap();
        expect_err(&path, needle);
    };
    case("trunc", &|b| b.truncate(50), "too short");
    case("trunc2", &|b| b.truncate(90), "too short");
    case(
        "l1",
        &|b| b[36..40].copy_from_slice(&u32::MAX.to_be_bytes()),
        "l1_size",
    );
    case(
        "cb",
        &|b| b[20..24].copy_from_slice(&40u32.to_be_bytes()),
        "cluster_bits",
    );
    case(
        "cb8",
        &|b| b[20..24].copy_from_slice(&8u32.to_be_bytes()),
        "cluster_bits",
    );
    case(
        "l1off",
        &|b| b[40..48].copy_from_slice(&(1u64 << 40).to_be_bytes()),
        "L1 table",
    );
    case(
        "rt",
        &|b| b[56..60].copy_from_slice(&0x10_0000u32.to_be_bytes()),
        "refcount_table_clusters",
    );
    case(
        "size",
        &|b| b[24..32].copy_from_slice(&u64::MAX.to_be_bytes()),
        "l1_size",
    );
    case(
        "ver",
        &|b| b[4..8].copy_from_slice(&9u32.to_be_bytes()),
        "version 9",
    );
    case(
        "ro",
        &|b| b[96..100].copy_from_slice(&7u32.to_be_bytes()),
        "refcount_order",
    );
    case(
        "hl",
        &|b| b[100..104].copy_from_slice(&20u32.to_be_bytes()),
        "header_length",
    );
    case("dirty", &|b| b[79] |= 1, "qemu-img check -r all");
    case("corrupt", &|b| b[79] |= 2, "corrupt");
    case("datafile", &|b| b[79] |= 4, "external data file");
    case("extl2", &|b| b[79] |= 16, "extended L2");
    case(
        "unknown",
        &|b| b[78] |= 1,
        "unknown incompatible features: bit 8",
    );
    case("crypt", &|b| b[35] = 2, "encrypted");
    case(
        "backing",
        &|b| {
            b[8..16].copy_from_slice(&(1u64 << 20).to_be_bytes());
            b[16..20].copy_from_slice(&10u32.to_be_bytes());
        },
        "backing file name",
    );
    // An L1 entry pointing past the end of the file.
    let l1 = u64::from_be_bytes(bytes[40..48].try_into().unwrap()) as usize;
    case(
        "l1entry",
        &|b| b[l1..l1 + 8].copy_from_slice(&(0x8000_0000_0100_0000u64).to_be_bytes()),
        "qcow2 L1 entry",
    );
    // A backing file that is the image itself.
    let b_img = d.join("b.qcow2");
    let a_img = d.join("a.qcow2");
    std::fs::copy(&good, &b_img).unwrap();
    create_overlay(&a_img, &b_img, "qcow2", 16 << 20, 65536).unwrap();
    let mut a = std::fs::read(&a_img).unwrap();
    let at = a.windows(7).position(|w| w == b"b.qcow2").unwrap();
    a[at] = b'a';
    std::fs::write(&a_img, &a).unwrap();
    expect_err(&a_img, "names itself");
    // Random corruption of the first bytes never panics (errors or reads are both fine).
    let path = d.join("fuzz.qcow2");
    for i in 0..400u64 {
        let mut b = bytes.clone();
        let r = pseudo_random(i, 16);
        for k in 0..4 {
            let at = (r[k * 2] as usize) % 112;
            b[at] = r[k * 2 + 1];
        }
        std::fs::write(&path, &b).unwrap();
        if let Ok(img) = Image::open(&path, Access::ReadOnly) {
            let mut buf = vec![0u8; 70_000];
            let _ = img.read_at(0, &mut buf);
        }
    }
}

/// Corrupted tables (L1, L2, refcount table and blocks, compressed data) anywhere in the
/// metadata: opening, reading everything and writing give errors or data, never a panic.
#[test]
fn corrupted_tables_never_panic() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let src = d.join("src.raw");
    std::fs::write(&src, sample_disk(1 << 20, 37)).unwrap();
    let good = make_variant(d, &src, "good", &["-c", "-o", "cluster_size=512"]);
    let bytes = std::fs::read(&good).unwrap();
    let path = d.join("bad.qcow2");
    let mut errors = 0;
    for i in 0..300u64 {
        let mut b = bytes.clone();
        let r = pseudo_random(1000 + i, 64);
        for k in 0..8 {
            let at = u64::from_le_bytes(r[8 * k..8 * k + 8].try_into().unwrap());
            // Mostly the metadata near the start (header, tables), sometimes anywhere.
            let span = if k % 2 == 0 { 16 << 10 } else { b.len() as u64 };
            let at = (at % span) as usize;
            b[at] = r[(k + 5) % 64];
        }
        std::fs::write(&path, &b).unwrap();
        let Ok(mut img) = Image::open(&path, Access::ReadWrite) else {
            errors += 1;
            continue;
        };
        let mut buf = vec![0u8; img.len().min(1 << 20) as usize];
        if img.read_at(0, &mut buf).is_err() {
            errors += 1;
        }
        for (off, data) in random_writes(i, 5, img.len().max(70_000), 60_000) {
            if off + data.len() as u64 <= img.len() && img.write_at(off, &data).is_err() {
                errors += 1;
            }
        }
        img.discard().ok();
    }
    assert!(errors > 0, "corruption was noticed at least once");
}

/// VMDK, VDI, QED, qcow v1 and random bytes are refused with the convert command, never raw;
/// `-f` (open_as) overrides detection and refuses a contradicting container.
#[test]
fn foreign_formats_are_refused() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (name, fmt, opts) in [
        ("a.vmdk", "vmdk", ""),
        ("b.vmdk", "vmdk", "subformat=monolithicFlat"),
        ("c.vdi", "vdi", ""),
        ("d.qed", "qed", ""),
        ("e.qcow", "qcow", ""),
    ] {
        let img = d.join(name);
        let mut args = vec!["create", "-q", "-f", fmt];
        if !opts.is_empty() {
            args.extend_from_slice(&["-o", opts]);
        }
        args.extend_from_slice(&[p(&img), "16M"]);
        run("qemu-img", &args);
        match Image::open(&img, Access::ReadOnly) {
            Err(e @ Error::ForeignFormat { .. }) => {
                let m = e.to_string();
                let cmd = format!(
                    "qemu-img convert -O qcow2 {} {}",
                    img.display(),
                    img.with_extension("qcow2").display()
                );
                assert!(m.contains(&cmd), "{m}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
    let rnd = d.join("random.bin");
    std::fs::write(&rnd, pseudo_random(1, 1 << 20)).unwrap();
    assert!(matches!(
        Image::open(&rnd, Access::ReadOnly),
        Err(Error::UnknownFormat { .. })
    ));
    // Forced raw opens anything; forced qcow2 on non-qcow2 content is refused.
    let ro = OpenOptions::new(Access::ReadOnly);
    let img = Image::open_as(&rnd, Some(ContainerKind::Raw), &ro).unwrap();
    assert_eq!((img.format(), img.len()), (ImageFormat::Raw, 1 << 20));
    drop(img);
    let e = Image::open_as(&rnd, Some(ContainerKind::Qcow2), &ro).unwrap_err();
    assert!(e.to_string().contains("opened as qcow2"), "{e}");
    let q = d.join("q.qcow2");
    run("qemu-img", &["create", "-q", "-f", "qcow2", p(&q), "16M"]);
    assert!(Image::open_as(&q, Some(ContainerKind::Vhdx), &ro).is_err());
    let img = Image::open_as(&q, Some(ContainerKind::Raw), &ro).unwrap();
    assert_eq!(img.format(), ImageFormat::Raw);
    let img = Image::open_as(&q, Some(ContainerKind::Qcow2), &ro).unwrap();
    assert_eq!((img.format(), img.len()), (ImageFormat::Qcow2, 16 << 20));
    // Blank and boot-signature raw files are still raw.
    let blank = d.join("blank.raw");
    std::fs::write(&blank, vec![0u8; 1 << 20]).unwrap();
    assert_eq!(
        Image::open(&blank, Access::ReadOnly).unwrap().format(),
        ImageFormat::Raw
    );
}

/// Detaches a loop device even when the test fails, and removes the journal directory a commit
/// left beside the device node (`/dev/loopN.reseal-journal`).
struct Loop(String);
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
        let _ = std::fs::remove_dir_all(reseal_disk::journal::journal_dir(Path::new(&self.0)));
    }
}

fn attach(file: &Path, extra: &[&str]) -> Option<Loop> {
    let mut args = vec!["-f", "--show"];
    args.extend_from_slice(extra);
    args.push(p(file));
    let out = Command::new("losetup").args(&args).output().ok()?;
    if !out.status.success() {
        eprintln!(
            "SKIP: losetup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    Some(Loop(
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    ))
}

#[test]
fn loop_device_size_and_writes() {
    if !run("id", &["-u"]).trim().eq("0") {
        eprintln!("SKIP: the loop-device test needs root (losetup)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("disk.raw");
    let size = 24u64 << 20;
    std::fs::write(&file, vec![0u8; size as usize]).unwrap();
    for (extra, sector) in [(&[][..], 512u32), (&["--sector-size", "4096"][..], 4096)] {
        let Some(lo) = attach(&file, extra) else {
            reseal_tests::skip_or_panic(
                "losetup could not attach a loop device",
                "run the tests as root on a host with loop devices (modprobe loop)",
            );
            return;
        };
        let dev = PathBuf::from(&lo.0);
        let w = random_writes(u64::from(sector), 20, size, 50_000);
        {
            let mut img = Image::open(&dev, Access::ReadWrite).unwrap();
            assert_eq!(img.format(), ImageFormat::Raw);
            assert_eq!(img.len(), size);
            assert_eq!(img.info().virtual_size, size);
            assert_eq!(img.sector_size(), sector);
            for (off, data) in &w {
                img.write_at(*off, data).unwrap();
            }
            assert!(img.write_at(size - 1, &[1, 2]).is_err());
            img.commit().unwrap();
        }
        drop(lo);
        let back = std::fs::read(&file).unwrap();
        let mut expect = back.clone();
        for (off, data) in &w {
            expect[*off as usize..*off as usize + data.len()].copy_from_slice(data);
        }
        assert!(
            back == expect,
            "writes reached the file behind the loop device"
        );
        // Later rounds overwrite; keep the file as it is now.
    }
    // A qcow2 image on a loop device reads as qemu reads it.
    if !have("qemu-img") {
        return;
    }
    let src = dir.path().join("src.raw");
    std::fs::write(&src, sample_disk(SIZE, 23)).unwrap();
    let q = make_variant(dir.path(), &src, "onloop", &[]);
    let Some(lo) = attach(&q, &[]) else {
        reseal_tests::skip_or_panic(
            "losetup could not attach a loop device",
            "run the tests as root on a host with loop devices (modprobe loop)",
        );
        return;
    };
    let img = Image::open(Path::new(&lo.0), Access::ReadOnly).unwrap();
    assert_eq!(img.format(), ImageFormat::Qcow2);
    assert!(read_all(&img) == std::fs::read(&src).unwrap());
}
