//! Shared helpers of the NTFS tests: the corpus, oracle tools, file-backed devices, volumes made
//! by mkntfs, and ntfs-3g mounts.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use reseal_disk::partition::Slice;
use reseal_disk::raw::HostFile;
use reseal_disk::Device;

/// The device the tests write through: the project's own [`HostFile`] bounded by a [`Slice`] to
/// the volume's length, so an engine write outside the volume is an error, not a grown file.
pub type FileDev = Slice<HostFile>;

/// The shared corpus; `None` only when skipping is allowed (see [`reseal_tests::env`]).
pub fn corpus() -> Option<PathBuf> {
    reseal_tests::corpus_or_skip()
}

/// Whether every tool is installed (see [`have`]).
pub fn tools(names: &[&str]) -> bool {
    names.iter().all(|t| have(t))
}

/// Open `p` read-only as a [`FileDev`].
pub fn file_dev_ro(p: &Path) -> FileDev {
    let f = HostFile::open(p, false).expect("open image");
    let len = f.len();
    Slice::new(f, 0, len).expect("slice over the whole file")
}

/// Unmount an ntfs-3g FUSE mount, retrying while it is busy (ntfs-3g may still be flushing).
pub fn unmount(dir: &Path) -> bool {
    for _ in 0..50 {
        if Command::new("fusermount")
            .arg("-u")
            .arg(dir)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
        {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Command::new("umount")
        .arg(dir)
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Open `p` read-write as a [`FileDev`].
pub fn file_dev(p: &Path) -> FileDev {
    let f = HostFile::open(p, true).expect("open image");
    let len = f.len();
    Slice::new(f, 0, len).expect("slice over the whole file")
}

/// True if oracle tool `tool` is installed; panics (naming its package) unless skipping is
/// allowed.
pub fn have(tool: &str) -> bool {
    reseal_tests::have_tool(tool)
}

pub fn run(cmd: &str) -> (bool, String) {
    let o = Command::new("sh").arg("-c").arg(cmd).output().expect("sh");
    let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&o.stderr));
    (o.status.success(), s)
}

/// A fresh NTFS volume image of `mb` MiB with `cluster` byte clusters.
pub fn mkvol(dir: &Path, mb: u64, cluster: u32) -> PathBuf {
    let img = dir.join("vol.img");
    let f = File::create(&img).expect("create");
    f.set_len(mb << 20).expect("len");
    drop(f);
    let (ok, out) = run(&format!(
        "mkntfs -F -q -Q -c {cluster} {} 2>&1",
        img.display()
    ));
    assert!(ok, "mkntfs failed: {out}");
    img
}

/// An ntfs-3g FUSE mount (daemon kept in the foreground as our child), unmounted on drop;
/// the drop waits for the daemon to exit so its final writes cannot race ours.
pub struct Mount {
    pub dir: PathBuf,
    child: Option<std::process::Child>,
}

impl Mount {
    pub fn new(img: &Path, at: &Path) -> Mount {
        std::fs::create_dir_all(at).expect("mkdir");
        let child = Command::new("ntfs-3g")
            .arg("-o")
            .arg("no_detach")
            .arg(img)
            .arg(at)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn ntfs-3g");
        let mut m = Mount {
            dir: at.to_path_buf(),
            child: Some(child),
        };
        for _ in 0..500 {
            if run(&format!("mountpoint -q {}", at.display())).0 {
                return m;
            }
            if let Some(c) = m.child.as_mut() {
                if let Ok(Some(st)) = c.try_wait() {
                    let mut err = String::new();
                    if let Some(mut e) = c.stderr.take() {
                        use std::io::Read;
                        let _ = e.read_to_string(&mut err);
                    }
                    m.child = None;
                    panic!(
                        "ntfs-3g exited early ({st}) mounting {}: {err}",
                        img.display()
                    );
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("ntfs-3g mount of {} did not appear", img.display());
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let mut ok = false;
        for _ in 0..50 {
            if run(&format!("umount {}", self.dir.display())).0 {
                ok = true;
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        if !ok {
            let _ = run(&format!("umount -l {}", self.dir.display()));
        }
        if let Some(mut c) = self.child.take() {
            for _ in 0..1000 {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `ntfsfix -n` must report the volume clean/OK.
pub fn ntfsfix_clean(img: &Path) {
    let (ok, out) = run(&format!("ntfsfix -n {}", img.display()));
    assert!(ok, "ntfsfix -n failed: {out}");
}

/// `ntfsinfo -m` and `fsntfsinfo` parse the volume.
pub fn info_parses(img: &Path) {
    let (ok, out) = run(&format!("ntfsinfo -m {}", img.display()));
    assert!(ok, "ntfsinfo failed: {out}");
    if have("fsntfsinfo") {
        let (ok, out) = run(&format!("fsntfsinfo {}", img.display()));
        assert!(ok, "fsntfsinfo failed: {out}");
    }
}

/// Compare without dumping megabytes: panics naming the first differing offset.
#[track_caller]
pub fn same(what: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let i = got
            .iter()
            .zip(want)
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: differs at offset {i} (len got {} want {})",
            got.len(),
            want.len()
        );
    }
}

/// The full `ntfsfix -n` report (for before/after comparison on volumes with old defects).
pub fn ntfsfix_report(img: &Path) -> String {
    run(&format!("ntfsfix -n {}", img.display())).1
}
