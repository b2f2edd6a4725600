//! End-to-end: disks whose partition table and NTFS volume were written by independent tools
//! (sfdisk, mkfs.fat, mkntfs + an ntfs-3g mount), put in every container qemu-img makes (raw,
//! vpc fixed and dynamic, vhdx fixed and dynamic). `reseal inspect` must report the layout, and
//! `reseal ls -l` / `reseal cat` must agree with ntfs-3g on every name, size and content hash.

use reseal_tests::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn reseal() -> Command {
    Command::new(env!("CARGO_BIN_EXE_reseal"))
}

fn reseal_out(args: &[&std::ffi::OsStr]) -> Vec<u8> {
    let out = run(reseal().args(args)).expect("reseal failed");
    out.stdout
}

/// The NTFS content: nested directories, Unicode and case-colliding-looking names, a file large
/// enough to be non-resident with several runs, a sparse file, an alternate data stream, and a
/// directory with enough entries to need an index allocation.
fn ntfs_entries() -> Vec<Entry> {
    let mut e = vec![
        Entry::Dir("Windows/System32/config".into()),
        Entry::File(
            "Windows/System32/config/SYSTEM".into(),
            pseudo_random(1, 3 << 20),
        ),
        Entry::File(
            "Windows/System32/config/SAM".into(),
            pseudo_random(2, 65536),
        ),
        Entry::File(
            "Windows/win.ini".into(),
            b"; for 16-bit app support\r\n".to_vec(),
        ),
        Entry::File(
            "Users/Åsa Ölund/Desktop/résumé.txt".into(),
            "Ünïcödé ✓".as_bytes().to_vec(),
        ),
        Entry::File("Users/日本語/ファイル.txt".into(), pseudo_random(3, 5000)),
        Entry::File("empty.txt".into(), Vec::new()),
        Entry::File("tiny.bin".into(), vec![7]),
        Entry::Sparse {
            path: "sparse.vhd".into(),
            len: 20 << 20,
            offset: 9 << 20,
            data: pseudo_random(4, 70000),
        },
        Entry::File("withstream.txt".into(), b"main data".to_vec()),
        Entry::Stream {
            path: "withstream.txt".into(),
            stream: "Zone.Identifier".into(),
            data: b"[ZoneTransfer]\r\nZoneId=3\r\n".to_vec(),
        },
    ];
    for i in 0..400 {
        e.push(Entry::File(
            format!("many/file-{i:04} with a fairly long name to fill index blocks.txt"),
            format!("content {i}").into_bytes(),
        ));
    }
    e
}

/// (relative path → size) for files and (relative path → None) for directories, from a mount.
fn walk_mount(root: &Path) -> BTreeMap<String, Option<u64>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        for ent in std::fs::read_dir(root.join(&rel)).unwrap() {
            let ent = ent.unwrap();
            let name = ent.file_name().into_string().unwrap();
            let r = rel.join(&name);
            let md = ent.metadata().unwrap();
            let key = r.to_string_lossy().replace('\\', "/");
            if md.is_dir() {
                out.insert(key, None);
                stack.push(r);
            } else {
                out.insert(key, Some(md.len()));
            }
        }
    }
    out
}

/// Parse one `reseal ls -l` line: (is_dir, size, name).
fn parse_long(line: &str) -> Option<(bool, u64, String)> {
    if line.trim_start().starts_with("stream") {
        return None;
    }
    // attrs size date time record owner, then two spaces and the name
    let mut rest = line;
    let mut fields = Vec::new();
    for _ in 0..6 {
        rest = rest.trim_start();
        let end = rest.find(' ').unwrap_or(rest.len());
        fields.push(&rest[..end]);
        rest = &rest[end..];
    }
    // The owner column is padded; names in these tests never start with a space.
    let name = rest.trim_start();
    let is_dir = fields[0].starts_with('d');
    let name = name.strip_suffix('/').unwrap_or(name).to_string();
    Some((is_dir, fields[1].parse().ok()?, name))
}

fn walk_reseal(image: &Path) -> BTreeMap<String, Option<u64>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![String::new()];
    while let Some(dir) = stack.pop() {
        let arg = format!("/{dir}");
        let text = reseal_out(&[
            "ls".as_ref(),
            "-l".as_ref(),
            image.as_os_str(),
            arg.as_ref(),
        ]);
        for line in String::from_utf8(text).unwrap().lines() {
            let Some((is_dir, size, name)) = parse_long(line) else {
                continue;
            };
            let rel = if dir.is_empty() {
                name
            } else {
                format!("{dir}/{name}")
            };
            if is_dir {
                out.insert(rel.clone(), None);
                stack.push(rel);
            } else {
                out.insert(rel, Some(size));
            }
        }
    }
    out
}

fn build_disk(dir: &Path) -> (PathBuf, PathBuf, Vec<BuiltPart>) {
    let ntfs = dir.join("ntfs.img");
    NtfsSpec {
        size: 96 << 20,
        cluster: 4096,
        label: "Windows".into(),
        entries: ntfs_entries(),
    }
    .build(&ntfs)
    .unwrap();
    let disk = dir.join("disk.raw");
    let spec = DiskSpec::gpt_windows(96 << 20, PartContent::File(ntfs.clone()));
    let parts = spec.build(&disk).unwrap();
    (disk, ntfs, parts)
}

#[test]
fn qemu_containers_of_a_gpt_ntfs_disk_agree_with_ntfs3g() {
    require_tool("qemu-img");
    let tmp = tempfile::tempdir().unwrap();
    let (disk, ntfs, parts) = build_disk(tmp.path());

    // The oracle: what ntfs-3g sees in the volume.
    let mount = NtfsMount::new(&ntfs, "ro,streams_interface=windows").unwrap();
    let expected = walk_mount(mount.path());
    let mut hashes = BTreeMap::new();
    for (rel, size) in &expected {
        if size.is_some() {
            hashes.insert(
                rel.clone(),
                sha256_hex(&std::fs::read(mount.path().join(rel)).unwrap()),
            );
        }
    }
    let stream = std::fs::read(format!(
        "{}:Zone.Identifier",
        mount.path().join("withstream.txt").display()
    ))
    .unwrap();
    mount.unmount().unwrap();
    assert!(
        expected.len() > 400,
        "the oracle walk found {} entries",
        expected.len()
    );

    let variants: &[(&str, &str, &str, &str)] = &[
        ("raw", "raw", "", "raw"),
        ("vhd-fixed", "vpc", "subformat=fixed", "vhd (fixed)"),
        ("vhd-dynamic", "vpc", "subformat=dynamic", "vhd (dynamic)"),
        ("vhdx-fixed", "vhdx", "subformat=fixed", "vhdx (fixed)"),
        (
            "vhdx-dynamic",
            "vhdx",
            "subformat=dynamic",
            "vhdx (dynamic)",
        ),
    ];
    for (name, fmt, opts, shown) in variants {
        let image = tmp.path().join(format!("image.{name}"));
        let mut c = Command::new("qemu-img");
        c.args(["convert", "-f", "raw", "-O", fmt]);
        if !opts.is_empty() {
            c.args(["-o", opts]);
        }
        run(c.arg(&disk).arg(&image)).unwrap();

        // inspect: the layout sfdisk wrote.
        let v = reseal_tests::schema::parse_json(
            "inspect",
            reseal_out(&["inspect".as_ref(), image.as_os_str(), "--json".as_ref()]),
        );
        assert_eq!(v["container"]["format"], *shown, "{name}");
        // qemu's vpc rounds the virtual size to its CHS geometry; it is never smaller.
        assert!(
            v["container"]["virtual_size"].as_u64().unwrap()
                >= std::fs::metadata(&disk).unwrap().len()
        );
        let t = &v["partition_table"];
        assert_eq!(t["scheme"], "gpt", "{name}");
        let ps = t["partitions"].as_array().unwrap();
        assert_eq!(ps.len(), 3, "{name}");
        for (p, b) in ps.iter().zip(&parts) {
            assert_eq!(p["start"].as_u64().unwrap(), b.start, "{name}");
            assert_eq!(p["size"].as_u64().unwrap(), b.size, "{name}");
        }
        assert_eq!(ps[0]["type"], "EFI system");
        assert_eq!(ps[0]["filesystem"]["type"], "FAT32");
        assert_eq!(ps[1]["type"], "Microsoft reserved");
        assert_eq!(ps[2]["type"], "Microsoft basic data");
        assert_eq!(ps[2]["name"], "Basic data partition");
        assert_eq!(ps[2]["filesystem"]["type"], "NTFS");
        assert_eq!(ps[2]["filesystem"]["cluster_size"], 4096);
        assert_eq!(ps[2]["ntfs"]["label"], "Windows");
        assert_eq!(ps[2]["ntfs"]["version"], "3.1");
        assert_eq!(ps[2]["ntfs"]["state"]["dirty"], false);

        // ls -l: every name and size.
        let seen = walk_reseal(&image);
        assert_eq!(
            seen, expected,
            "{name}: reseal ls -l disagrees with ntfs-3g"
        );

        // cat: every file's content hash (spot-check the many/ dir to keep the test fast).
        for (rel, want) in &hashes {
            if rel.starts_with("many/") && !rel.ends_with("0.txt") {
                continue;
            }
            let got = reseal_out(&["cat".as_ref(), image.as_os_str(), rel.as_ref()]);
            assert_eq!(&sha256_hex(&got), want, "{name}: content of {rel}");
        }
        // Case-insensitive, backslash paths, and an alternate data stream.
        let got = reseal_out(&[
            "cat".as_ref(),
            image.as_os_str(),
            r"\WINDOWS\win.INI".as_ref(),
        ]);
        assert_eq!(got, b"; for 16-bit app support\r\n");
        let got = reseal_out(&[
            "cat".as_ref(),
            image.as_os_str(),
            "withstream.txt:Zone.Identifier".as_ref(),
        ]);
        assert_eq!(got, stream);
    }
}

#[test]
fn partition_choice_errors_are_clear() {
    let tmp = tempfile::tempdir().unwrap();
    let (disk, _, _) = build_disk(tmp.path());
    let out = reseal()
        .args(["ls"])
        .arg(&disk)
        .args(["-p", "1", "/"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("partition 1 holds FAT32, not NTFS"), "{err}");
    let out = reseal()
        .args(["ls"])
        .arg(&disk)
        .args(["-p", "9", "/"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no partition 9"), "{err}");
    let out = reseal()
        .args(["cat"])
        .arg(&disk)
        .arg("/no/such/file")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// `reseal convert` with qemu-img's spelling: the committed fixture to every output format,
/// each identical to the input for `qemu-img compare`, qcow2/vhdx outputs clean for
/// `qemu-img check`; `-p` prints qemu-img's progress line on a pipe; an existing output is
/// refused untouched; an unknown `-O` is a usage error naming the formats.
#[test]
fn convert_speaks_qemu_img() {
    require_tool("qemu-img");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/quickstart.vhdx");
    let tmp = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str, &str)] = &[
        (&["-O", "raw"], "raw", "raw"),
        (&["-O", "vpc"], "vpc", "vpc"),
        (&["-O", "vhd"], "vhd", "vpc"),
        (&["--format", "vhd-fixed"], "vhd-fixed", "vpc"),
        (&["-O", "vpc", "-o", "subformat=fixed"], "vpc-fixed", "vpc"),
        (&["-O", "vhdx"], "vhdx", "vhdx"),
        (
            &["-O", "vhdx", "-o", "subformat=fixed"],
            "vhdx-fixed",
            "vhdx",
        ),
        (&["-p", "-O", "qcow2"], "qcow2", "qcow2"),
        (
            &["-O", "vpc", "-o", "subformat=fixed,force_size"],
            "vpc-fixed-exact",
            "vpc",
        ),
    ];
    let fixture_size = {
        let o = run(Command::new("qemu-img")
            .args(["info", "--output=json", "-f", "vhdx"])
            .arg(&fixture))
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        v["virtual-size"].as_u64().unwrap()
    };
    // A VHD is rounded up to what its CHS geometry covers, as qemu-img does (the fixture's
    // size is not such a size); `-o force_size` keeps the size.
    let rounded = reseal_disk::vhd::covering_geometry(fixture_size / 512).0 * 512;
    assert!(rounded > fixture_size);
    for (args, name, qfmt) in cases {
        let out = tmp.path().join(format!("out.{name}"));
        let o = reseal()
            .arg("convert")
            .args(*args)
            .arg(&fixture)
            .arg(&out)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{args:?}: {err}");
        if args.contains(&"-p") {
            // stderr is a pipe here: qemu-img's `    (NN.NN/100%)\r` line, ending at 100.
            assert!(err.contains("(0.00/100%)\r"), "{err:?}");
            assert!(err.contains("(100.00/100%)\r\n"), "{err:?}");
        } else {
            assert!(!err.contains("/100%)"), "progress without -p: {err:?}");
        }
        if name.ends_with("exact") {
            // The exact size is below what the geometry covers: qemu 7.2 reads it by the
            // geometry unless told to take the footer's size (qemu 10 takes it anyway).
            let second = format!(
                r#"json:{{"driver":"vpc","force_size_calc":"current_size","file":{{"driver":"file","filename":"{}"}}}}"#,
                out.display()
            );
            run(Command::new("qemu-img")
                .args(["compare", "-f", "vhdx"])
                .arg(&fixture)
                .arg(&second))
            .unwrap();
        } else {
            run(Command::new("qemu-img")
                .args(["compare", "-f", "vhdx", "-F", qfmt])
                .arg(&fixture)
                .arg(&out))
            .unwrap();
        }
        if matches!(*qfmt, "qcow2" | "vhdx") {
            run(Command::new("qemu-img")
                .args(["check", "-f", qfmt])
                .arg(&out))
            .unwrap();
        }
        let info = run(Command::new("qemu-img")
            .args(["info", "--output=json", "-f", qfmt])
            .arg(&out))
        .unwrap();
        let info: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        if *qfmt == "vpc" && !name.ends_with("exact") {
            assert_eq!(info["virtual-size"].as_u64(), Some(rounded), "{name}");
            assert!(err.contains("rounded up"), "{name}: {err}");
        }
        if name.ends_with("exact") {
            // Every qemu reads the footer's size when told to (qemu 7.2 goes by the geometry
            // otherwise, for a creator it does not know); reseal itself reads that size.
            let opts = format!(
                "driver=vpc,force_size_calc=current_size,file.filename={}",
                out.display()
            );
            let o = run(Command::new("qemu-img").args([
                "info",
                "--output=json",
                "--image-opts",
                &opts,
            ]))
            .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert_eq!(v["virtual-size"].as_u64(), Some(fixture_size));
        }
        let want_sub = if name.contains("fixed") {
            "fixed"
        } else {
            "dynamic"
        };
        if *qfmt != "raw" && *qfmt != "qcow2" {
            let sub = &info["format-specific"]["data"]["subformat"];
            // qemu reports a vhdx subformat only in newer versions; check it when present.
            if !sub.is_null() {
                assert_eq!(sub, want_sub, "{name}");
            }
        }
    }
    // The global -f applies to the input: the fixture read as raw is the VHDX file itself.
    let as_raw = tmp.path().join("file.raw");
    reseal_out(&[
        "convert".as_ref(),
        "-f".as_ref(),
        "raw".as_ref(),
        "-O".as_ref(),
        "raw".as_ref(),
        fixture.as_os_str(),
        as_raw.as_os_str(),
    ]);
    assert!(std::fs::read(&as_raw).unwrap() == std::fs::read(&fixture).unwrap());

    // An existing output is refused and left as it was.
    let existing = tmp.path().join("existing.qcow2");
    std::fs::write(&existing, b"keep me").unwrap();
    let o = reseal()
        .args(["convert", "-O", "qcow2"])
        .arg(&fixture)
        .arg(&existing)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("never overwrites"));
    assert_eq!(std::fs::read(&existing).unwrap(), b"keep me");
    assert!(!tmp.path().join("existing.qcow2.reseal-tmp").exists());

    // Unknown -O, or a subformat of a format without one: usage errors (exit 2).
    let o = reseal()
        .args(["convert", "-O", "vmdk"])
        .arg(&fixture)
        .arg(tmp.path().join("x.vmdk"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    for f in ["raw", "vpc", "vhdx", "qcow2", "vhd-fixed"] {
        assert!(err.contains(f), "{f} not named in {err}");
    }
    let o = reseal()
        .args(["convert", "-O", "qcow2", "-o", "subformat=fixed"])
        .arg(&fixture)
        .arg(tmp.path().join("x.qcow2"))
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!tmp.path().join("x.qcow2").exists());
}

/// `reseal check`: the committed fixture is clean (exit 0, also as qcow2, where `qemu-img
/// check` agrees); damaged copies — a GPT header byte, a hive base-block byte, a truncated
/// qcow2 — are reported naming the structure and its offset, exit 4, never a panic.
#[test]
fn check_reports_damage_with_structure_and_offset() {
    let tmp = tempfile::tempdir().unwrap();
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/quickstart.vhdx");
    let raw = tmp.path().join("q.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&fixture)
        .arg(&raw))
    .unwrap();
    let qcow = tmp.path().join("q.qcow2");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "qcow2"])
        .arg(&fixture)
        .arg(&qcow))
    .unwrap();
    for img in [&fixture, &raw, &qcow] {
        let o = Command::new(env!("CARGO_BIN_EXE_reseal"))
            .arg("check")
            .arg(img)
            .output()
            .unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}: {}{}",
            img.display(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
    run(Command::new("qemu-img").arg("check").arg(&qcow)).unwrap();

    let bytes = std::fs::read(&raw).unwrap();
    let damaged = |name: &str, f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = bytes.clone();
        f(&mut b);
        let p = tmp.path().join(name);
        std::fs::write(&p, b).unwrap();
        let o = Command::new(env!("CARGO_BIN_EXE_reseal"))
            .args(["check", "--output=json"])
            .arg(&p)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        assert_eq!(
            o.status.code(),
            Some(4),
            "{name}: {text}{}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v = reseal_tests::schema::parse_json("check", &o.stdout);
        assert_eq!(v["summary"]["clean"], false, "{name}");
        v
    };
    // GPT header (LBA 1): a byte of its disk GUID, so its CRC fails.
    let v = damaged("gpt.raw", &|b| b[512 + 0x38] ^= 0xFF);
    let t = v["partition_table"].to_string();
    assert!(t.contains("GPT") && t.contains("\"offset\""), "{t}");
    // Every base block (hives and logs): a byte of the file name, so the checksums fail.
    let at: Vec<usize> = (0..bytes.len() - 4)
        .step_by(4096)
        .filter(|&i| &bytes[i..i + 4] == b"regf")
        .collect();
    assert!(!at.is_empty(), "no hive in the fixture");
    let v = damaged("hive.raw", &|b| {
        for &i in &at {
            b[i + 0x40] ^= 0xFF
        }
    });
    let h = v["hives"].to_string();
    assert!(h.contains("checksum_ok\":false"), "{h}");
    // A qcow2 cut in half.
    let q = std::fs::read(&qcow).unwrap();
    let cut = tmp.path().join("cut.qcow2");
    std::fs::write(&cut, &q[..q.len() / 2]).unwrap();
    // qemu-img agrees that it is damaged (exit 0 is its "no errors").
    let q = Command::new("qemu-img")
        .arg("check")
        .arg(&cut)
        .output()
        .unwrap();
    assert_ne!(
        q.status.code(),
        Some(0),
        "qemu-img check passes the cut qcow2"
    );
    let o = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .arg("check")
        .arg(&cut)
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(4),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}
