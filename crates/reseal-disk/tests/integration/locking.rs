//! Image locks against qemu's (the oracle: `qemu-io` and `qemu-img` from qemu-utils), read-only
//! and dry-run opens of write-protected files, and the write-protection refusal.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reseal_disk::{Access, Device, Error, Image, OpenOptions};

use crate::containers_util;
use containers_util::have;

/// A `qemu-io` holding an image open until dropped (killed even when the test fails).
struct QemuIo(Child);

impl QemuIo {
    fn start(image: &Path, read_only: bool) -> QemuIo {
        let mut c = Command::new("qemu-io");
        c.args(["-f", "raw"]);
        if read_only {
            c.arg("-r");
        }
        let child = c
            .arg(image)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start qemu-io");
        // Wait until it holds its locks.
        let ino = std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(image).unwrap());
        for _ in 0..200 {
            let locks = std::fs::read_to_string("/proc/locks").unwrap_or_default();
            if locks.contains(&format!(":{ino} ")) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        QemuIo(child)
    }
}

impl Drop for QemuIo {
    fn drop(&mut self) {
        if let Some(stdin) = self.0.stdin.as_mut() {
            let _ = stdin.write_all(b"quit\n");
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn image(dir: &Path) -> std::path::PathBuf {
    let p = dir.join("disk.img");
    let f = std::fs::File::create(&p).unwrap();
    f.set_len(4 << 20).unwrap();
    p
}

fn quick(access: Access) -> OpenOptions {
    OpenOptions::new(access).lock_timeout(Duration::from_millis(300))
}

fn qemu_img_info(p: &Path) -> std::process::Output {
    Command::new("qemu-img")
        .args(["info", "-f", "raw"])
        .arg(p)
        .output()
        .unwrap()
}

#[test]
fn qemu_writer_excludes_reseal_readers_and_writers() {
    if !have("qemu-io") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = image(tmp.path());
    {
        let _q = QemuIo::start(&p, false);
        for access in [Access::ReadOnly, Access::DryRun, Access::ReadWrite] {
            match Image::open_with(&p, &quick(access)) {
                Err(Error::Locked { holders, .. }) => {
                    assert!(
                        holders.iter().any(|h| h.starts_with("qemu-io")),
                        "{holders:?}"
                    );
                }
                other => panic!("{access:?}: expected Locked, got {other:?}"),
            }
        }
        let msg = Image::open_with(&p, &quick(Access::ReadWrite))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("qemu-io (pid"), "{msg}");
        assert!(msg.contains("--lock-timeout"), "{msg}");
    }
    // Released when qemu-io ends.
    Image::open_with(&p, &quick(Access::ReadWrite)).unwrap();
}

#[test]
fn qemu_reader_shares_with_reseal_readers_only() {
    if !have("qemu-io") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = image(tmp.path());
    let _q = QemuIo::start(&p, true);
    Image::open_with(&p, &quick(Access::ReadOnly)).unwrap();
    Image::open_with(&p, &quick(Access::DryRun)).unwrap();
    assert!(matches!(
        Image::open_with(&p, &quick(Access::ReadWrite)),
        Err(Error::Locked { .. })
    ));
}

#[test]
fn reseal_writer_excludes_qemu() {
    if !have("qemu-img") || !have("qemu-io") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = image(tmp.path());
    {
        let _w = Image::open_with(&p, &quick(Access::ReadWrite)).unwrap();
        // A consistent read is refused (qemu-img info of a raw image takes no lock at all in
        // qemu 10, so qemu-io stands for every reader).
        let rd = qemu_io_read(&p);
        assert!(!rd.status.success(), "qemu-io read a locked image");
        let err = String::from_utf8_lossy(&rd.stderr);
        assert!(err.contains("\"consistent read\" lock"), "{err}");
        // A VM (or qemu-io) cannot start writing it either.
        let io = Command::new("qemu-io")
            .args(["-f", "raw", "-c", "write 0 512"])
            .arg(&p)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&io.stdout),
            String::from_utf8_lossy(&io.stderr)
        );
        assert!(text.contains("lock"), "{text}");
    }
    assert!(qemu_io_read(&p).status.success());
}

fn qemu_io_read(p: &Path) -> std::process::Output {
    Command::new("qemu-io")
        .args(["-f", "raw", "-r", "-c", "read 0 512"])
        .arg(p)
        .output()
        .unwrap()
}

#[test]
fn reseal_reader_lets_qemu_img_info_in_but_not_a_writer() {
    if !have("qemu-img") || !have("qemu-io") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = image(tmp.path());
    let _r = Image::open_with(&p, &quick(Access::DryRun)).unwrap();
    assert!(qemu_img_info(&p).status.success());
    assert!(qemu_io_read(&p).status.success());
    let io = Command::new("qemu-io")
        .args(["-f", "raw", "-c", "write 0 512"])
        .arg(&p)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&io.stderr);
    assert!(text.contains("lock"), "{text}");
}

#[test]
fn readers_share_writers_exclude() {
    let tmp = tempfile::tempdir().unwrap();
    let p = image(tmp.path());
    let a = Image::open_with(&p, &quick(Access::ReadOnly)).unwrap();
    let b = Image::open_with(&p, &quick(Access::DryRun)).unwrap();
    assert!(matches!(
        Image::open_with(&p, &quick(Access::ReadWrite)),
        Err(Error::Locked { .. })
    ));
    drop((a, b));
    let w = Image::open_with(&p, &quick(Access::ReadWrite)).unwrap();
    for access in [Access::ReadOnly, Access::DryRun, Access::ReadWrite] {
        assert!(matches!(
            Image::open_with(&p, &quick(access)),
            Err(Error::Locked { .. })
        ));
    }
    drop(w);
    // A writer waits for a reader that goes away within the timeout.
    let r = Image::open_with(&p, &quick(Access::ReadOnly)).unwrap();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        drop(r);
    });
    Image::open_with(
        &p,
        &OpenOptions::new(Access::ReadWrite).lock_timeout(Duration::from_secs(5)),
    )
    .unwrap();
    t.join().unwrap();
}

#[test]
fn dry_run_on_a_write_protected_file_stages_but_never_writes() {
    let tmp = tempfile::tempdir().unwrap();
    let p = image(tmp.path());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
    let before = std::fs::read(&p).unwrap();
    let mut img = Image::open_with(&p, &quick(Access::DryRun)).unwrap();
    img.write_at(4096, &[0xAB; 512]).unwrap();
    let mut back = [0u8; 512];
    img.read_at(4096, &mut back).unwrap();
    assert_eq!(back, [0xAB; 512], "a dry run reads its own staged writes");
    assert!(!img.changes().is_empty());
    assert!(matches!(img.commit(), Err(Error::DryRun)));
    drop(img);
    assert_eq!(std::fs::read(&p).unwrap(), before);
    assert!(!reseal_disk::journal::journal_dir(&p).exists());

    // A writable open is refused, naming the flag, and writes nothing.
    let e = Image::open_with(&p, &quick(Access::ReadWrite)).unwrap_err();
    assert!(matches!(e, Error::WriteProtected { .. }), "{e}");
    assert!(e.to_string().contains("--force"), "{e}");
    // Forced, it is written.
    let mut img =
        Image::open_with(&p, &quick(Access::ReadWrite).force_write_protected(true)).unwrap();
    img.write_at(0, &[1; 512]).unwrap();
    img.commit().unwrap();
    assert_eq!(std::fs::read(&p).unwrap()[..512], [1; 512]);
}

#[test]
fn unprivileged_user_reads_and_dry_runs_a_0444_image() {
    // Root bypasses file permissions; drop to nobody with setpriv (util-linux) to see what an
    // ordinary user sees.
    if is_not_root() {
        reseal_tests::skip_or_panic(
            "testing as an unprivileged user needs root (to drop to nobody)",
            "run the tests as root",
        );
        return;
    }
    if !have("setpriv") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let p = image(tmp.path());
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o444)).unwrap();
    // The test binary itself, re-run as nobody, opens the image (see `child_open` below).
    let exe = std::env::current_exe().unwrap();
    for mode in ["ro", "dry"] {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&exe)
            .args([
                "--exact",
                "locking::child_open",
                "--nocapture",
                "--include-ignored",
            ])
            .env("RESEAL_CHILD_OPEN", format!("{mode}:{}", p.display()))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && text.contains("CHILD_OK"),
            "{mode}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

fn is_not_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() != "0")
        .unwrap_or(true)
}

/// Not a test of its own: run by `unprivileged_user_reads_and_dry_runs_a_0444_image` as nobody.
#[test]
#[ignore = "run as a child process by unprivileged_user_reads_and_dry_runs_a_0444_image"]
fn child_open() {
    let Ok(spec) = std::env::var("RESEAL_CHILD_OPEN") else {
        return;
    };
    let (mode, path) = spec.split_once(':').unwrap();
    let access = if mode == "ro" {
        Access::ReadOnly
    } else {
        Access::DryRun
    };
    let mut img = Image::open_with(Path::new(path), &quick(access)).unwrap();
    let mut b = [0u8; 512];
    img.read_at(0, &mut b).unwrap();
    if access == Access::DryRun {
        img.write_at(0, &[7; 512]).unwrap();
    }
    println!("CHILD_OK");
}

#[test]
fn qemu_img_info_refuses_a_vhdx_reseal_is_writing() {
    if !have("qemu-img") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("q.vhdx");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/quickstart.vhdx"),
        &p,
    )
    .unwrap();
    {
        let _w = Image::open_with(&p, &quick(Access::ReadWrite)).unwrap();
        let info = Command::new("qemu-img")
            .arg("info")
            .arg(&p)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&info.stderr);
        assert!(!info.status.success() && err.contains("lock"), "{err}");
    }
    {
        // A reseal reader (inspect, --dry-run) shares with qemu-img info.
        let _r = Image::open_with(&p, &quick(Access::DryRun)).unwrap();
        let info = Command::new("qemu-img")
            .arg("info")
            .arg(&p)
            .output()
            .unwrap();
        assert!(
            info.status.success(),
            "{}",
            String::from_utf8_lossy(&info.stderr)
        );
    }
}
