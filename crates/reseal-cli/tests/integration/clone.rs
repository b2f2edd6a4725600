//! `reseal clone` on the committed quick-start fixture: children recognised by libvhdi as
//! children of the base, the base byte-identical, content equal to an in-place generalize of a
//! copy with the same SID and name, a templated fleet with unique identities, and concurrent
//! clones of one base.

use reseal_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The deterministic operations (machine-ids draws new random GUIDs each run).
const OPS: &str = "-machine-ids";

fn fixture(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/quickstart.vhdx");
    let base = dir.join("base.vhdx");
    std::fs::copy(src, &base).unwrap();
    base
}

fn reseal(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(args: &[&std::ffi::OsStr]) -> String {
    let o = reseal(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

macro_rules! a {
    ($($x:expr),*) => { &[$(std::ffi::OsStr::new($x)),*] };
}

/// The virtual disk's bytes, as reseal's own converter writes them to a raw file.
fn raw_bytes(img: &Path, dir: &Path, name: &str) -> Vec<u8> {
    let out = dir.join(name);
    ok(a![
        "convert",
        img.as_os_str(),
        out.as_os_str(),
        "--format",
        "raw"
    ]);
    std::fs::read(out).unwrap()
}

#[test]
fn clone_is_a_child_equal_to_an_in_place_generalize() {
    require_tool("vhdiinfo");
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture(tmp.path());
    let before = std::fs::read(&base).unwrap();
    let child = tmp.path().join("c1.vhdx");
    let sid = "S-1-5-21-101-202-303";
    ok(a![
        "clone",
        base.as_os_str(),
        child.as_os_str(),
        "--new-sid",
        sid,
        "--computer-name",
        "CLONE-1",
        "--operations",
        OPS
    ]);
    assert_eq!(std::fs::read(&base).unwrap(), before, "the base changed");
    // libvhdi (qemu cannot open VHDX differencing disks) sees a differencing child of BASE.
    let info = Command::new("vhdiinfo").arg(&child).output().unwrap();
    let text = String::from_utf8_lossy(&info.stdout);
    assert!(text.contains("Differential"), "{text}");
    assert!(text.contains("base.vhdx"), "{text}");
    // The same change made in place on a copy gives the same virtual disk.
    let copy = tmp.path().join("copy.vhdx");
    std::fs::copy(&base, &copy).unwrap();
    ok(a![
        "generalize",
        copy.as_os_str(),
        "--new-sid",
        sid,
        "--computer-name",
        "CLONE-1",
        "--operations",
        OPS
    ]);
    // The same change made in place on a copy gives the same registry content (hivexregedit
    // exports; key times differ between runs, so bytes are not compared) and the same files.
    require_tool("hivexregedit");
    for hive in [
        "Windows/System32/config/SYSTEM",
        "Windows/System32/config/SOFTWARE",
        "Windows/System32/config/SAM",
        "Windows/System32/config/SECURITY",
        "Users/alice/NTUSER.DAT",
    ] {
        let export = |img: &Path, tag: &str| {
            let f = tmp.path().join(format!("{tag}.hive"));
            let bytes = Command::new(env!("CARGO_BIN_EXE_reseal"))
                .arg("cat")
                .arg(img)
                .arg(format!("/{hive}"))
                .output()
                .unwrap();
            assert!(bytes.status.success(), "cat {hive}");
            std::fs::write(&f, &bytes.stdout).unwrap();
            let o = Command::new("hivexregedit")
                .args(["--export", "--prefix", "X"])
                .arg(&f)
                .arg("\\")
                .output()
                .unwrap();
            assert!(o.status.success(), "hivexregedit {hive}");
            o.stdout
        };
        assert!(export(&child, "c") == export(&copy, "g"), "{hive} differs");
    }
    let ls = |img: &Path| {
        ok(a![
            "ls",
            img.as_os_str(),
            "/Users/alice/AppData/Roaming/Microsoft/Protect"
        ])
    };
    assert_eq!(ls(&child), ls(&copy));
    let _ = raw_bytes;
    // The child holds only the changes (a few MiB), not a copy of the base.
    let child_len = std::fs::metadata(&child).unwrap().len();
    assert!(child_len < before.len() as u64, "{child_len}");
    // No undo history is kept for a file this run created.
    assert!(!reseal_disk::journal::journal_dir(&child).exists());
}

#[test]
fn a_templated_fleet_is_unique_and_concurrent_clones_of_one_base_all_succeed() {
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture(tmp.path());
    let before = std::fs::read(&base).unwrap();
    let out = tmp.path().join("w{n:02}.vhdx");
    let json = ok(a![
        "clone",
        base.as_os_str(),
        out.as_os_str(),
        "--count",
        "8",
        "--computer-name",
        "FLEET-{n:03}",
        "--json"
    ]);
    let doc = reseal_tests::schema::parse_json("clone", &json);
    assert_eq!(doc["schema_version"], 1);
    let docs = doc["clones"].as_array().unwrap();
    assert_eq!(docs.len(), 8);
    let mut sids = std::collections::BTreeSet::new();
    let mut names = std::collections::BTreeSet::new();
    for (i, d) in docs.iter().enumerate() {
        assert_eq!(d["clone"], i + 1);
        let p = tmp.path().join(format!("w{:02}.vhdx", i + 1));
        assert_eq!(d["output"], p.to_str().unwrap());
        let inspect =
            reseal_tests::schema::parse_json("inspect", ok(a!["inspect", p.as_os_str(), "--json"]));
        let text = inspect.to_string();
        let name = format!("FLEET-{:03}", i + 1);
        assert!(text.contains(&name), "clone {}: no {name}", i + 1);
        sids.insert(d["new_sid"].as_str().unwrap().to_string());
        names.insert(name);
        assert!(text.contains(d["new_sid"].as_str().unwrap()));
    }
    assert_eq!(sids.len(), 8, "SIDs are not unique: {sids:?}");
    assert_eq!(names.len(), 8);
    // Four processes at once on the same base.
    let procs: Vec<_> = (0..4)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_reseal"))
                .arg("clone")
                .arg(&base)
                .arg(tmp.path().join(format!("con{i}.vhdx")))
                .arg("--computer-name")
                .arg(format!("CON-{i}"))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, p) in procs.into_iter().enumerate() {
        let o = p.wait_with_output().unwrap();
        assert!(
            o.status.success(),
            "clone {i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let c = tmp.path().join(format!("con{i}.vhdx"));
        let text = ok(a!["inspect", c.as_os_str()]);
        assert!(text.contains(&format!("CON-{i}")), "{text}");
    }
    assert_eq!(std::fs::read(&base).unwrap(), before, "the base changed");
    // A failing clone leaves nothing behind: OUT exists already.
    let o = reseal(a![
        "clone",
        base.as_os_str(),
        tmp.path().join("con0.vhdx").as_os_str()
    ]);
    assert!(!o.status.success());
}

#[test]
fn qcow2_clones_of_a_qcow2_and_of_a_vhdx_base_pass_qemu_img_check() {
    require_tool("qemu-img");
    let tmp = tempfile::tempdir().unwrap();
    let vhdx = fixture(tmp.path());
    let base = tmp.path().join("golden.qcow2");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "qcow2"])
        .arg(&vhdx)
        .arg(&base))
    .unwrap();
    let before = std::fs::read(&base).unwrap();
    for (b, out) in [(&base, "q{n}.qcow2"), (&vhdx, "v{n}.qcow2")] {
        let out = tmp.path().join(out);
        ok(a![
            "clone",
            b.as_os_str(),
            out.as_os_str(),
            "--format",
            "qcow2",
            "--count",
            "2",
            "--computer-name",
            "Q-{n}"
        ]);
        for n in 1..=2 {
            let c = tmp.path().join(
                out.file_name()
                    .unwrap()
                    .to_str()
                    .unwrap()
                    .replace("{n}", &n.to_string()),
            );
            run(Command::new("qemu-img").arg("check").arg(&c)).unwrap();
            let info = run(Command::new("qemu-img")
                .args(["info", "--output=json"])
                .arg(&c))
            .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
            assert_eq!(
                v["backing-filename"].as_str().unwrap(),
                b.file_name().unwrap().to_str().unwrap(),
                "{v}"
            );
            // qemu reads the clone through its backing file and sees the new name.
            let raw = tmp.path().join("x.raw");
            let _ = std::fs::remove_file(&raw);
            run(Command::new("qemu-img")
                .args(["convert", "-O", "raw"])
                .arg(&c)
                .arg(&raw))
            .unwrap();
            let text = ok(a!["inspect", raw.as_os_str()]);
            assert!(text.contains(&format!("Q-{n}")), "{text}");
        }
    }
    assert_eq!(
        std::fs::read(&base).unwrap(),
        before,
        "the qcow2 base changed"
    );
}

#[test]
fn vhd_children_and_full_copies() {
    require_tool("qemu-img");
    let tmp = tempfile::tempdir().unwrap();
    let vhdx = fixture(tmp.path());
    // A VHD golden image: its clones are VHD differencing children.
    let vhd = tmp.path().join("golden.vhd");
    ok(a![
        "convert",
        vhdx.as_os_str(),
        vhd.as_os_str(),
        "--format",
        "vhd"
    ]);
    let before = std::fs::read(&vhd).unwrap();
    let child = tmp.path().join("d1.vhd");
    ok(a![
        "clone",
        vhd.as_os_str(),
        child.as_os_str(),
        "--computer-name",
        "VHD-1"
    ]);
    assert_eq!(std::fs::read(&vhd).unwrap(), before);
    let text = ok(a!["inspect", child.as_os_str()]);
    assert!(
        text.contains("VHD-1") && text.contains("golden.vhd"),
        "{text}"
    );
    if Command::new("vhdiinfo").arg("-h").output().is_ok() {
        let info = Command::new("vhdiinfo").arg(&child).output().unwrap();
        let t = String::from_utf8_lossy(&info.stdout);
        assert!(
            t.contains("Differential") && t.contains("golden.vhd"),
            "{t}"
        );
    }
    // --full: standalone copies, readable by qemu-img without the base.
    for (fmt, ext, qfmt) in [
        ("raw", "raw", "raw"),
        ("vhdx", "vhdx", "vhdx"),
        ("qcow2", "qcow2", "qcow2"),
    ] {
        let out = tmp.path().join(format!("full{{n}}.{ext}"));
        ok(a![
            "clone",
            vhd.as_os_str(),
            out.as_os_str(),
            "--full",
            "--format",
            fmt,
            "--count",
            "2",
            "--computer-name",
            "FULL-{n}"
        ]);
        for n in 1..=2 {
            let c = tmp.path().join(format!("full{n}.{ext}"));
            let info = run(Command::new("qemu-img")
                .args(["info", "--output=json", "-f", qfmt])
                .arg(&c))
            .unwrap();
            let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
            assert!(v.get("backing-filename").is_none(), "{v}");
            if qfmt == "qcow2" {
                run(Command::new("qemu-img").arg("check").arg(&c)).unwrap();
            }
            let text = ok(a!["inspect", c.as_os_str()]);
            assert!(text.contains(&format!("FULL-{n}")), "{text}");
        }
    }
    assert_eq!(std::fs::read(&vhd).unwrap(), before);
}

/// qcow2 through the CLI, qemu-img as the oracle: a zlib-compressed base, a qemu-made overlay
/// on it and a second overlay (a chain of two backing files); inspect, ls and cat read through
/// the chain, generalize writes only the top, both backing files stay byte-identical and
/// `qemu-img check` is clean.
#[test]
fn generalize_a_qcow2_overlay_on_a_compressed_chain() {
    require_tool("qemu-img");
    let tmp = tempfile::tempdir().unwrap();
    let vhdx = fixture(tmp.path());
    let base = tmp.path().join("base.qcow2");
    run(Command::new("qemu-img")
        .args(["convert", "-c", "-O", "qcow2"])
        .arg(&vhdx)
        .arg(&base))
    .unwrap();
    let mid = tmp.path().join("mid.qcow2");
    let top = tmp.path().join("top.qcow2");
    for (b, o) in [(&base, &mid), (&mid, &top)] {
        run(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
            .arg(b.file_name().unwrap())
            .arg(o))
        .unwrap();
    }
    let (b0, m0) = (std::fs::read(&base).unwrap(), std::fs::read(&mid).unwrap());
    let text = ok(a!["inspect", top.as_os_str()]);
    assert!(
        text.contains("qcow2") && text.contains("WIN-FIXTURE01"),
        "{text}"
    );
    let ls = ok(a!["ls", top.as_os_str(), "/Windows/System32/config"]);
    assert!(ls.contains("SOFTWARE"), "{ls}");
    let task = reseal(a![
        "cat",
        top.as_os_str(),
        "/Windows/System32/Tasks/ResealFixtureTask"
    ]);
    assert!(task.status.success() && task.stdout.starts_with(&[0xFF, 0xFE]));
    ok(a![
        "generalize",
        top.as_os_str(),
        "--computer-name",
        "QCOW-TOP"
    ]);
    assert_eq!(std::fs::read(&base).unwrap(), b0, "base changed");
    assert_eq!(std::fs::read(&mid).unwrap(), m0, "middle overlay changed");
    run(Command::new("qemu-img").arg("check").arg(&top)).unwrap();
    let raw = tmp.path().join("top.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&top)
        .arg(&raw))
    .unwrap();
    let text = ok(a!["inspect", raw.as_os_str()]);
    assert!(text.contains("QCOW-TOP"), "{text}");
}

/// `--count N` reads and plans once from the base and reuses it for every clone: each clone
/// must still hold exactly the virtual disk that an in-place `generalize` of a full copy (no
/// plan, every read from its own image) with the same SID and name gives. `SOURCE_DATE_EPOCH`
/// fixes the timestamps written (key and file times), so the disks compare byte for byte
/// (`qemu-img compare`: the qcow2 child read through its backing file against the raw copy).
#[test]
fn count_n_clones_equal_in_place_generalizes_byte_for_byte() {
    require_tool("qemu-img");
    let tmp = tempfile::tempdir().unwrap();
    let base = fixture(tmp.path());
    let epoch = "1700000000";
    let out = tmp.path().join("f{n}.qcow2");
    let o = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .env("SOURCE_DATE_EPOCH", epoch)
        .arg("clone")
        .arg(&base)
        .arg(&out)
        .args(["--format", "qcow2", "--count", "3"])
        .args(["--computer-name", "PLAN-{n}", "--operations", OPS, "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let doc = reseal_tests::schema::parse_json("clone", String::from_utf8(o.stdout).unwrap());
    let docs = doc["clones"].as_array().unwrap();
    assert_eq!(docs.len(), 3);
    let mut sids = std::collections::BTreeSet::new();
    for (i, d) in docs.iter().enumerate() {
        let n = i + 1;
        let sid = d["new_sid"].as_str().unwrap();
        sids.insert(sid.to_string());
        let name = format!("PLAN-{n}");
        assert_eq!(d["new_computer_name"], name.as_str(), "{d}");
        let copy = tmp.path().join(format!("copy{n}.raw"));
        ok(a![
            "convert",
            base.as_os_str(),
            copy.as_os_str(),
            "--format",
            "raw"
        ]);
        let o = Command::new(env!("CARGO_BIN_EXE_reseal"))
            .env("SOURCE_DATE_EPOCH", epoch)
            .arg("generalize")
            .arg(&copy)
            .args(["--new-sid", sid, "--computer-name", &name])
            .args(["--operations", OPS])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let child = tmp.path().join(format!("f{n}.qcow2"));
        run(Command::new("qemu-img").arg("check").arg(&child)).unwrap();
        let cmp = Command::new("qemu-img")
            .args(["compare", "-f", "qcow2", "-F", "raw"])
            .arg(&child)
            .arg(&copy)
            .output()
            .unwrap();
        assert!(
            cmp.status.success(),
            "clone {n} differs from an in-place generalize: {}{}",
            String::from_utf8_lossy(&cmp.stdout),
            String::from_utf8_lossy(&cmp.stderr)
        );
        let _ = std::fs::remove_file(&copy);
    }
    assert_eq!(sids.len(), 3, "SIDs are not unique: {sids:?}");
}
