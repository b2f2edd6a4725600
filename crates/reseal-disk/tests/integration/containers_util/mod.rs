//! Shared helpers of the container and journal tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use reseal_disk::Device;

/// The shared corpus directory; `None` only when skipping is allowed (see [`reseal_tests::env`]).
pub fn corpus() -> Option<PathBuf> {
    reseal_tests::corpus_or_skip()
}

/// True if oracle tool `tool` is installed; panics (unless skipping is allowed) otherwise.
pub fn have(tool: &str) -> bool {
    reseal_tests::have_tool(tool)
}

/// Run a command, asserting success; returns stdout.
pub fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `qemu-img convert -O raw` of `img`, read back.
pub fn qemu_raw(img: &Path, fmt: &str, tmp: &Path) -> Vec<u8> {
    let out = tmp.join("qemu-export.raw");
    run(
        "qemu-img",
        &["convert", "-f", fmt, "-O", "raw", p(img), p(&out)],
    );
    let d = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    d
}

/// Path as &str.
pub fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Read a whole device.
pub fn read_all(d: &dyn Device) -> Vec<u8> {
    let mut v = vec![0u8; d.len() as usize];
    for (i, c) in v.chunks_mut(1 << 20).enumerate() {
        d.read_at(i as u64 * (1 << 20), c).unwrap();
    }
    v
}

pub use reseal_tests::pseudo_random;

/// A raw disk of `size` bytes: random data in some 64 KiB regions, zero elsewhere.
pub fn sample_disk(size: usize, seed: u64) -> Vec<u8> {
    let mut d = vec![0u8; size];
    let r = pseudo_random(seed, size);
    for (i, c) in d.chunks_mut(64 * 1024).enumerate() {
        if i % 3 != 1 {
            let o = i * 64 * 1024;
            c.copy_from_slice(&r[o..o + c.len()]);
        }
    }
    // A boot signature, as a raw disk has (detection refuses unrecognised content as raw).
    if size >= 512 {
        d[510] = 0x55;
        d[511] = 0xaa;
    }
    d
}

/// Decompress a corpus file (.gz/.xz/.bz2 or plain) into `dir`, returning the new path.
pub fn unpack(src: &Path, dir: &Path) -> PathBuf {
    let name = src.file_name().unwrap().to_str().unwrap();
    let (stem, tool) = if let Some(s) = name.strip_suffix(".gz") {
        (s, Some("gzip"))
    } else if let Some(s) = name.strip_suffix(".xz") {
        (s, Some("xz"))
    } else if let Some(s) = name.strip_suffix(".bz2") {
        (s, Some("bzip2"))
    } else {
        (name, None)
    };
    let dst = dir.join(stem);
    match tool {
        Some(t) => {
            let out = Command::new(t).arg("-dc").arg(src).output().unwrap();
            assert!(out.status.success(), "{t} -dc {}", src.display());
            std::fs::write(&dst, out.stdout).unwrap();
        }
        None => {
            std::fs::copy(src, &dst).unwrap();
        }
    }
    let mut perm = std::fs::metadata(&dst).unwrap().permissions();
    #[allow(clippy::permissions_set_readonly_false)]
    perm.set_readonly(false);
    std::fs::set_permissions(&dst, perm).unwrap();
    dst
}

/// Read the virtual disk of a VHD (with its parent chain) through libvhdi's `vhdimount` (FUSE),
/// an independent reader. vhdimount exposes one file per layer, `vhdi1` being the base parent and
/// the highest number the image itself; that one is returned.
pub fn vhdimount_read(img: &Path, tmp: &Path) -> Vec<u8> {
    let mnt = tmp.join("vhdimount");
    std::fs::create_dir_all(&mnt).unwrap();
    run("vhdimount", &[p(img), p(&mnt)]);
    let layers = std::fs::read_dir(&mnt).map(|rd| rd.count()).unwrap_or(0);
    let data = std::fs::read(mnt.join(format!("vhdi{layers}")));
    let _ = Command::new("fusermount").arg("-u").arg(&mnt).status();
    data.unwrap_or_else(|e| panic!("reading vhdimount output: {e}"))
}
