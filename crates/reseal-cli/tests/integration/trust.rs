//! Trustworthy writes as CI uses reseal: concurrent processes on one image, write-protected
//! golden images, unprivileged dry runs.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn fixture(dir: &Path) -> PathBuf {
    let p = dir.join("q.vhdx");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/quickstart.vhdx"),
        &p,
    )
    .unwrap();
    p
}

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_reseal"))
}

fn machine_sid(img: &Path) -> String {
    let o = bin().arg("inspect").arg(img).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("machine SID:"))
        .and_then(|s| s.split_whitespace().next())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no machine SID in:\n{text}"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// One real generalize racing three dry runs, 20 rounds: every process succeeds (the lock makes
/// the others wait), no dry run rolls back the writer's in-flight commit, and every time the
/// writer says it wrote, its SID is on disk.
#[test]
fn writer_and_dry_runs_race_without_losing_the_write() {
    let tmp = tempfile::tempdir().unwrap();
    let img = fixture(tmp.path());
    for round in 1..=20u32 {
        let sid = format!("S-1-5-21-1000{round:06}-2000000000-3000000000");
        let mut kids = Vec::new();
        let mut writer = bin();
        writer
            .args(["--lock-timeout", "60", "generalize", "--new-sid", &sid])
            .arg(&img);
        kids.push((
            true,
            writer
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        ));
        for _ in 0..3 {
            let mut d = bin();
            d.args(["--lock-timeout", "60", "generalize", "--dry-run"])
                .arg(&img);
            kids.push((
                false,
                d.stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            ));
        }
        for (is_writer, k) in kids {
            let o = k.wait_with_output().unwrap();
            assert!(o.status.success(), "round {round}: {}", text(&o));
            if is_writer {
                assert!(text(&o).contains("wrote"), "round {round}: {}", text(&o));
            }
        }
        assert_eq!(machine_sid(&img), sid, "round {round}");
    }
    // Independent of reseal's readers: qemu-img finds the container consistent, and the raw
    // disk it reads holds the last SID in binary form.
    qemu_img_check_clean(&img);
    let raw = qemu_raw(&img, tmp.path());
    let last = binary_domain_sid(&[21, 1_000_000_020, 2_000_000_000, 3_000_000_000]);
    assert!(
        raw.windows(last.len()).any(|w| w == last),
        "the last SID is not in the raw disk qemu-img reads"
    );
}

/// `qemu-img check` exits 0 (or skips when qemu-img is missing).
fn qemu_img_check_clean(img: &Path) {
    if !reseal_tests::have_tool("qemu-img") {
        return;
    }
    let o = Command::new("qemu-img")
        .arg("check")
        .arg(img)
        .output()
        .expect("run qemu-img check");
    assert!(o.status.success(), "qemu-img check: {}", text(&o));
}

/// The virtual disk as qemu-img reads it.
fn qemu_raw(img: &Path, dir: &Path) -> Vec<u8> {
    let out = dir.join("check.raw");
    let o = Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(img)
        .arg(&out)
        .output()
        .expect("qemu-img");
    assert!(o.status.success(), "qemu-img convert: {}", text(&o));
    let b = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    b
}

/// S-1-5-<sub…> in binary (revision 1, NT authority).
fn binary_domain_sid(subs: &[u32]) -> Vec<u8> {
    let mut b = vec![1u8, subs.len() as u8, 0, 0, 0, 0, 0, 5];
    for s in subs {
        b.extend_from_slice(&s.to_le_bytes());
    }
    b
}

/// `put` and `generalize` at once: both succeed one after the other and both changes are there.
#[test]
fn put_and_generalize_at_once_keep_both_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let img = fixture(tmp.path());
    let local = tmp.path().join("hello.txt");
    std::fs::write(&local, b"hello from a concurrent put\n").unwrap();
    let sid = "S-1-5-21-1234567890-1234567890-1234567890";
    let g = bin()
        .args(["--lock-timeout", "60", "generalize", "--new-sid", sid])
        .arg(&img)
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let p = bin()
        .args(["--lock-timeout", "60", "put"])
        .arg(&img)
        .arg(&local)
        .arg("/hello.txt")
        .stderr(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (g, p) = (g.wait_with_output().unwrap(), p.wait_with_output().unwrap());
    assert!(g.status.success(), "{}", text(&g));
    assert!(p.status.success(), "{}", text(&p));
    assert_eq!(machine_sid(&img), sid);
    let cat = bin()
        .arg("cat")
        .arg(&img)
        .arg("/hello.txt")
        .output()
        .unwrap();
    assert_eq!(
        cat.stdout,
        b"hello from a concurrent put\n",
        "{}",
        text(&cat)
    );
    // Both commits left a consistent container (qemu-img, not our reader).
    qemu_img_check_clean(&img);
}

/// A writer that cannot get the lock in time fails with a message naming the holder and the
/// option to wait longer, and writes nothing.
#[test]
fn lock_timeout_names_the_holder() {
    let tmp = tempfile::tempdir().unwrap();
    let img = fixture(tmp.path());
    let before = std::fs::read(&img).unwrap();
    // A long-lived reader: qemu-io holding the image open for writing.
    if !reseal_tests::have_tool("qemu-io") {
        return;
    }
    let mut q = Command::new("qemu-io")
        .args(["-f", "vhdx"])
        .arg(&img)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _k = Kill(&mut q);
    std::thread::sleep(std::time::Duration::from_millis(300));
    let o = bin()
        .args(["--lock-timeout", "0.5", "generalize"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(!o.status.success());
    let t = text(&o);
    assert!(t.contains("qemu-io (pid"), "{t}");
    assert!(t.contains("--lock-timeout"), "{t}");
    drop(_k);
    assert!(std::fs::read(&img).unwrap() == before);
}

/// A 0444 golden image: read commands and dry runs work for an unprivileged user; as root, a
/// write is refused (naming the flag) and the image stays byte-identical.
#[test]
fn write_protected_golden_image() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let img = fixture(tmp.path());
    std::fs::set_permissions(&img, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = std::fs::read(&img).unwrap();
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    let have_setpriv = Command::new("setpriv").arg("--version").output().is_ok();
    let as_user = |args: &[&str]| -> Output {
        let mut c = if root && have_setpriv {
            let mut c = Command::new("setpriv");
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
                .arg(env!("CARGO_BIN_EXE_reseal"));
            c
        } else {
            bin()
        };
        c.args(args).arg(&img).output().unwrap()
    };
    for args in [
        &["inspect"][..],
        &["ls"][..],
        &["generalize", "--dry-run"][..],
    ] {
        let o = as_user(args);
        assert!(o.status.success(), "{args:?}: {}", text(&o));
    }
    let o = bin().args(["generalize"]).arg(&img).output().unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("--force-write-protected"), "{}", text(&o));
    let local = tmp.path().join("x.txt");
    std::fs::write(&local, b"x").unwrap();
    let o = bin()
        .arg("put")
        .arg(&img)
        .arg(&local)
        .arg("/x.txt")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("write-protected"), "{}", text(&o));
    assert!(
        std::fs::read(&img).unwrap() == before,
        "golden image changed"
    );
    assert!(!reseal_journal_dir(&img).exists());
    if root {
        // Forced, root may write it.
        let o = bin()
            .args(["generalize", "--force-write-protected"])
            .arg(&img)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
    }
}

fn reseal_journal_dir(img: &Path) -> PathBuf {
    let mut s = img.as_os_str().to_owned();
    s.push(".reseal-journal");
    PathBuf::from(s)
}

/// Two `reg set` on one hive at once, 10 rounds: both succeed and both values are on disk (read
/// back by hivexget, not by reseal). An edit made from a read that the other process's write
/// made stale is never written over it: reseal notices under the writer's lock and edits again.
#[test]
fn concurrent_reg_set_loses_no_value() {
    if !reseal_tests::have_tool("hivexget") || reseal_tests::corpus_or_skip().is_none() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let hive = reseal_tests::corpus_file("regipy/SYSTEM.xz", tmp.path())
        .expect("corpus file regipy/SYSTEM.xz");
    for round in 0..10 {
        let kids: Vec<_> = ["A", "B"]
            .iter()
            .map(|who| {
                let name = format!("v{who}{round}");
                let child = bin()
                    .args(["--lock-timeout", "60", "reg", "set", "--type", "sz"])
                    .arg(&hive)
                    .args(["ResealRace", &name, &format!("data {who} {round}")])
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap();
                (name, child)
            })
            .collect();
        for (name, child) in kids {
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "round {round}: {name}: {}", text(&o));
        }
        // Every value of every round so far is there.
        for r in 0..=round {
            for who in ["A", "B"] {
                let got = Command::new("hivexget")
                    .arg(&hive)
                    .arg("\\ResealRace")
                    .arg(format!("v{who}{r}"))
                    .output()
                    .unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&got.stdout).trim(),
                    format!("data {who} {r}"),
                    "after round {round}: v{who}{r} lost"
                );
            }
        }
    }
}
