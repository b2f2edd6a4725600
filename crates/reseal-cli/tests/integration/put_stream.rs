//! `reseal put` of a large file streams it: with `RESEAL_SPILL_LIMIT=8M` a 200 MiB file goes
//! into a raw image (and a 120 MiB one into qcow2, VHDX and VHD images) with the process's peak
//! RSS far below the file's size (a bound, measured with `/usr/bin/time -f %M`, not a timing);
//! ntfs-3g reads the same bytes back (from qemu-img's raw conversion of a container),
//! `ntfsfix -n` finds the volume clean, `qemu-img check` finds a qcow2 or VHDX clean, and
//! `reseal undo` restores the image byte for byte.

use crate::common;

use common::*;
use reseal_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1 << 20;

/// A GPT disk (raw) with one NTFS partition of `mib` MiB; returns (disk, start, size).
fn disk(dir: &Path, mib: u64) -> (PathBuf, u64, u64) {
    let disk = dir.join("disk.raw");
    let parts = DiskSpec::gpt_ntfs(
        mib * MIB,
        "W",
        vec![Entry::File("Windows/old.txt".into(), b"old".to_vec())],
    )
    .build(&disk)
    .unwrap();
    (disk, parts[0].start, parts[0].size)
}

fn sha256(p: &Path) -> String {
    let o = run(Command::new("sha256sum").arg(p)).unwrap();
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Write `len` pseudo-random bytes to `p` in pieces (the test itself stays small too).
fn write_random(p: &Path, len: u64) {
    use std::io::Write;
    let mut f = std::io::BufWriter::new(std::fs::File::create(p).unwrap());
    let mut done = 0u64;
    let mut seed = 1u64;
    while done < len {
        let n = (len - done).min(4 * MIB) as usize;
        f.write_all(&pseudo_random(seed, n)).unwrap();
        done += n as u64;
        seed += 1;
    }
    f.flush().unwrap();
}

/// Copy `size` bytes at `start` of `from` into a new file `to` (the partition, for ntfs-3g).
fn extract(from: &Path, start: u64, size: u64, to: &Path) {
    run(Command::new("dd")
        .arg(format!("if={}", from.display()))
        .arg(format!("of={}", to.display()))
        .args(["bs=1M", "iflag=skip_bytes,count_bytes", "status=none"])
        .arg(format!("skip={start}"))
        .arg(format!("count={size}")))
    .unwrap();
}

#[test]
fn put_of_a_200_mib_file_streams_in_bounded_memory() {
    put_streams("raw", 200);
}

#[test]
fn put_into_qcow2_streams_in_bounded_memory() {
    put_streams("qcow2", 120);
}

#[test]
fn put_into_vhdx_streams_in_bounded_memory() {
    put_streams("vhdx", 120);
}

#[test]
fn put_into_vhd_streams_in_bounded_memory() {
    put_streams("vpc", 120);
}

/// The disk as qemu reads it, as a raw file next to it (for ntfs-3g), after `qemu-img check`
/// (qcow2, VHDX) finds the container clean.
fn as_raw(image: &Path, format: &str) -> PathBuf {
    if format == "raw" {
        return image.to_path_buf();
    }
    if format != "vpc" {
        run(Command::new("qemu-img")
            .args(["check", "-q", "-f", format])
            .arg(image))
        .unwrap();
    }
    let raw = image.with_extension("qemu.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-f", format, "-O", "raw"])
        .arg(image)
        .arg(&raw))
    .unwrap();
    raw
}

/// `put` of a `mib` MiB file (plus a few bytes) into a disk of format `format`, then a smaller
/// replacement, then two undos.
fn put_streams(format: &str, mib: u64) {
    require_tool("ntfscat");
    require_tool("ntfsfix");
    if format != "raw" {
        require_tool("qemu-img");
    }
    let have_time = Path::new("/usr/bin/time").exists();
    if !have_time {
        eprintln!("note: /usr/bin/time missing: the peak RSS bound is not checked");
    }
    let tmp = tempfile::tempdir().unwrap();
    let (raw_disk, start, size) = disk(tmp.path(), mib + 56);
    let image = if format == "raw" {
        raw_disk
    } else {
        let img = tmp.path().join(format!("disk.{format}"));
        let mut c = Command::new("qemu-img");
        c.args(["convert", "-f", "raw", "-O", format]);
        if format == "vpc" {
            // Exact size, so the partition table's backup GPT stays at the disk's end.
            c.args(["-o", "subformat=dynamic,force_size=on"]);
        }
        run(c.arg(&raw_disk).arg(&img)).unwrap();
        std::fs::remove_file(&raw_disk).unwrap();
        img
    };
    let original = sha256(&image);
    let local = tmp.path().join("big.bin");
    let len = mib * MIB + 4321;
    write_random(&local, len);
    let want = sha256(&local);

    let rss_file = tmp.path().join("rss.txt");
    let mut cmd = if have_time {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-f").arg("%M").arg("-o").arg(&rss_file);
        c.arg(env!("CARGO_BIN_EXE_reseal"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_reseal"))
    };
    cmd.env("RESEAL_SPILL_LIMIT", "8M")
        .arg("put")
        .arg(&image)
        .arg(&local)
        .arg("/Windows/big.bin");
    let o = cmd.output().unwrap();
    assert!(
        o.status.success(),
        "put failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    if have_time {
        let kib: u64 = std::fs::read_to_string(&rss_file)
            .unwrap()
            .trim()
            .lines()
            .last()
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // Chunk (1 MiB) + spill bound (8 MiB) + metadata + the binary itself: far below the
        // size of the file.
        assert!(
            kib < 48 * 1024,
            "{format}: peak RSS {kib} KiB for a {mib} MiB put with an 8 MiB spill bound"
        );
        eprintln!("{format}: put {mib} MiB: peak RSS {kib} KiB");
    }

    let vol = tmp.path().join("vol.ntfs");
    extract(&as_raw(&image, format), start, size, &vol);
    run(Command::new("ntfsfix").arg("-n").arg(&vol)).unwrap();
    let back = tmp.path().join("back.bin");
    let out = std::fs::File::create(&back).unwrap();
    let st = Command::new("ntfscat")
        .arg(&vol)
        .arg("/Windows/big.bin")
        .stdout(out)
        .status()
        .unwrap();
    assert!(st.success(), "ntfscat failed");
    assert_eq!(sha256(&back), want, "{format}: ntfs-3g reads other bytes");
    let st = Command::new("ntfscat")
        .arg(&vol)
        .arg("/Windows/old.txt")
        .output()
        .unwrap();
    assert_eq!(st.stdout, b"old");

    // Replacing it with a smaller file, then two undos, gives the original image back.
    let small = tmp.path().join("small.bin");
    write_random(&small, 3 * MIB);
    ok_text(a!(
        "put",
        image.to_str().unwrap(),
        small.to_str().unwrap(),
        "/Windows/big.bin"
    ));
    extract(&as_raw(&image, format), start, size, &vol);
    run(Command::new("ntfsfix").arg("-n").arg(&vol)).unwrap();
    let o = Command::new("ntfscat")
        .arg(&vol)
        .arg("/Windows/big.bin")
        .output()
        .unwrap();
    assert!(
        o.stdout == std::fs::read(&small).unwrap(),
        "replacement differs"
    );
    ok_text(a!("undo", image.to_str().unwrap()));
    ok_text(a!("undo", image.to_str().unwrap()));
    assert_eq!(
        sha256(&image),
        original,
        "{format}: undo did not restore the image"
    );
}

/// A put that cannot finish (the volume is too small) writes nothing and leaves no undo.
#[test]
fn put_too_large_for_the_volume_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (image, _, _) = disk(tmp.path(), 24);
    let original = sha256(&image);
    let local = tmp.path().join("big.bin");
    write_random(&local, 40 * MIB);
    let o = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .env("RESEAL_SPILL_LIMIT", "1M")
        .arg("put")
        .arg(&image)
        .arg(&local)
        .arg("/big.bin")
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "a put larger than the volume succeeded"
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no space"), "{err}");
    assert_eq!(sha256(&image), original, "a failed put changed the image");
    let o = reseal(a!("undo", image.to_str().unwrap()));
    assert!(!o.status.success(), "a failed put left something to undo");
}
