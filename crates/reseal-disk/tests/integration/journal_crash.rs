//! Crash injection and undo of journaled commits.

use crate::containers_util;

use std::path::Path;

/// Open as detection would, except that content detection refuses as unrecognised is opened
/// raw: these tests write arbitrary patterns at offset 0 of raw disks.
fn open(p: &Path, access: Access) -> reseal_disk::Result<Image> {
    open_spill(p, access, None)
}

/// [`open`] with the journal's memory bound set to `spill` bytes (staged data beyond it goes to
/// the spill file).
fn open_spill(p: &Path, access: Access, spill: Option<u64>) -> reseal_disk::Result<Image> {
    let mut opts = reseal_disk::OpenOptions::new(access);
    if let Some(n) = spill {
        opts = opts.spill_limit(n);
    }
    match Image::open_as(p, None, &opts) {
        Err(reseal_disk::Error::UnknownFormat { .. }) => {
            Image::open_as(p, Some(reseal_disk::ContainerKind::Raw), &opts)
        }
        r => r,
    }
}

use containers_util::*;
use reseal_disk::{journal, Access, Device, Image};

fn reset(img: &Path, orig: &[u8]) {
    std::fs::write(img, orig).unwrap();
    let _ = std::fs::remove_dir_all(journal::journal_dir(img));
}

/// Several ranges, unaligned, across block boundaries, allocating new blocks (the file grows).
/// Returns the virtual disk's expected content, computed from `before` by applying the writes
/// that are kept (not those taken back by a savepoint rollback). With `taken_back` false the
/// writes that a rollback takes back are not made at all (the savepoints still are).
fn apply_writes(image: &mut Image, before: &[u8]) -> Vec<u8> {
    apply_writes_as(image, before, true)
}

fn apply_writes_as(image: &mut Image, before: &[u8], taken_back: bool) -> Vec<u8> {
    let mut model = before.to_vec();
    let size = image.len();
    // Disks of 16 MiB and more also get writes in their unallocated second half (the crash
    // matrix's disk); the 8 MiB disks of the undo tests only the first ones.
    let big = size >= 16 << 20;
    let mut keep = |image: &mut Image, at: u64, data: Vec<u8>| {
        image.write_at(at, &data).unwrap();
        model[at as usize..at as usize + data.len()].copy_from_slice(&data);
    };
    keep(image, 100, pseudo_random(1, 3000));
    keep(image, (2 << 20) - 700, pseudo_random(2, 5000)); // allocates block 1
    keep(image, size - 1000, pseudo_random(3, 1000)); // allocates the last block
    keep(image, 5 << 20, pseudo_random(4, 70_000));
    // Every format offers savepoints: a change taken back and one kept, over and next to the
    // writes above, as the NTFS writer's streamed data is. The change taken back allocates
    // blocks (in the unallocated tail), and the kept one allocates others after the rollback,
    // so a container that did not put its block table and allocation point back would map
    // them over each other or leak the blocks taken back.
    assert!(image.savepoint(), "read-write images have savepoints");
    if taken_back {
        image.write_at(50, &pseudo_random(5, 9000)).unwrap();
        image.write_at(6 << 20, &pseudo_random(6, 300_000)).unwrap();
        image
            .write_at((7 << 20) + 100_000, &pseudo_random(8, 600_000))
            .unwrap();
    }
    image.rollback_savepoint().unwrap();
    assert!(image.savepoint());
    keep(image, (5 << 20) + 60_000, pseudo_random(7, 200_000));
    keep(image, 3 << 20, pseudo_random(9, 70_000));
    if big {
        keep(image, (13 << 20) + 4000, pseudo_random(11, 70_000));
    }
    // A nested savepoint taken back inside a kept one.
    assert!(image.savepoint());
    if taken_back && big {
        image
            .write_at((11 << 20) + 500_000, &pseudo_random(10, 100_000))
            .unwrap();
    }
    image.rollback_savepoint().unwrap();
    image.release_savepoint().unwrap();
    model
}

fn crash_matrix(fmt: &str, opts: &[&str], compare_file_bytes: bool) {
    crash_matrix_spill(fmt, opts, compare_file_bytes, None);
}

/// The crash matrix with the journal's memory bound at `spill` bytes (a tiny bound: the commit
/// applies the staged data from the spill file).
fn crash_matrix_spill(fmt: &str, opts: &[&str], compare_file_bytes: bool, spill: Option<u64>) {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("disk.img");
    let raw = dir.path().join("content.raw");
    let content = sample_disk(16 << 20, 5);
    std::fs::write(&raw, &content).unwrap();
    // Leave the middle of the disk unallocated so the writes allocate blocks.
    let mut c2 = content.clone();
    c2[(2 << 20)..(6 << 20)].fill(0);
    c2[(7 << 20)..].fill(0);
    std::fs::write(&raw, &c2).unwrap();
    let mut args = vec!["convert", "-q", "-f", "raw", "-O", fmt];
    args.extend_from_slice(opts);
    args.push(p(&raw));
    args.push(p(&img));
    run("qemu-img", &args);
    let orig = std::fs::read(&img).unwrap();
    let old_virtual = read_all(&open(&img, Access::ReadOnly).unwrap());

    // Reference run.
    let (new_file, new_virtual, steps) = {
        let mut image = open_spill(&img, Access::ReadWrite, spill).unwrap();
        let expected = apply_writes(&mut image, &old_virtual);
        let v = read_all(&image);
        assert!(
            v == expected,
            "{fmt}: staged content differs from the writes kept"
        );
        let rep = image.commit().unwrap();
        assert!(
            fmt == "raw" || rep.new_len > rep.old_len,
            "the commit must grow the file"
        );
        (std::fs::read(&img).unwrap(), v, rep.steps)
    };
    if fmt != "raw" {
        // qemu reads the committed image as the writes kept, and finds its metadata clean
        // (no cluster or block of the rolled-back writes left referenced or leaked).
        let q = qemu_raw(&img, fmt, dir.path());
        assert!(
            q == new_virtual,
            "{fmt}: qemu reads different committed content"
        );
        if fmt == "qcow2" {
            run("qemu-img", &["check", "-q", p(&img)]);
        }
    }
    {
        // Taking writes back leaves what never making them gives: the same file length (no
        // block of them left allocated) and, where the format has no random fields, the same
        // bytes.
        reset(&img, &orig);
        let mut image = open_spill(&img, Access::ReadWrite, spill).unwrap();
        apply_writes_as(&mut image, &old_virtual, false);
        image.commit().unwrap();
        let never = std::fs::read(&img).unwrap();
        assert_eq!(
            never.len(),
            new_file.len(),
            "{fmt}: rollback left the file longer"
        );
        assert!(
            !compare_file_bytes || never == new_file,
            "{fmt}: rollback left other bytes than never writing"
        );
        reset(&img, &orig);
    }
    assert!(steps > 5);
    let (mut old_count, mut new_count) = (0, 0);
    for k in 0..=steps {
        reset(&img, &orig);
        {
            let mut image = open_spill(&img, Access::ReadWrite, spill).unwrap();
            apply_writes(&mut image, &old_virtual);
            let r = image.commit_with_faults(Some(k));
            assert_eq!(r.is_ok(), k >= steps, "k={k}");
        }
        // A read-only open refuses while an operation is unfinished.
        if journal::pending(&img).unwrap().is_some() {
            assert!(matches!(
                open(&img, Access::ReadOnly),
                Err(reseal_disk::Error::Journal { .. })
            ));
        }
        // Recovery happens on a writable open; run it twice (idempotent).
        journal::recover(&img).unwrap();
        let image = open(&img, Access::ReadWrite).unwrap();
        let virt = read_all(&image);
        drop(image);
        let file = std::fs::read(&img).unwrap();
        let is_old = virt == old_virtual && (!compare_file_bytes || file == orig);
        let is_new = virt == new_virtual && (!compare_file_bytes || file == new_file);
        assert!(
            is_old || is_new,
            "k={k}: image is neither all-old nor all-new"
        );
        if is_new {
            new_count += 1;
        } else {
            old_count += 1;
            assert_eq!(file.len(), orig.len(), "k={k}: length not restored");
        }
        if fmt != "raw" {
            let q = qemu_raw(&img, fmt, dir.path());
            assert!(q == virt, "k={k}: qemu reads different content");
        }
    }
    eprintln!(
        "{fmt}: {} crash points: {old_count} all-old, {new_count} all-new",
        steps + 1
    );
    assert!(old_count > 0 && new_count > 0);
}

#[test]
fn crash_at_every_step_vhd_dynamic() {
    crash_matrix("vpc", &["-o", "subformat=dynamic,force_size=on"], true);
}

#[test]
fn crash_at_every_step_vhdx_dynamic() {
    // New FileWriteGuid/DataWriteGuid are random per run: compare the virtual disk only.
    crash_matrix("vhdx", &["-o", "block_size=1048576"], false);
}

#[test]
fn crash_at_every_step_qcow2() {
    crash_matrix("qcow2", &["-o", "cluster_size=65536"], true);
}

#[test]
fn crash_at_every_step_qcow2_spilled() {
    crash_matrix_spill("qcow2", &["-o", "cluster_size=65536"], true, Some(4096));
}

#[test]
fn crash_at_every_step_raw() {
    crash_matrix("raw", &[], true);
}

#[test]
fn crash_at_every_step_raw_spilled() {
    // A 4 KiB bound: nearly every staged byte (and the savepoints' prior bytes) is in the
    // spill file when the commit applies it.
    crash_matrix_spill("raw", &[], true, Some(4096));
}

#[test]
fn crash_at_every_step_vhdx_spilled() {
    crash_matrix_spill("vhdx", &["-o", "block_size=1048576"], false, Some(4096));
}

#[test]
fn undo_restores_original_bytes_and_length() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("u.vhd");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "force_size=on",
            p(&img),
            "8M",
        ],
    );
    let orig = std::fs::read(&img).unwrap();
    let mut image = open(&img, Access::ReadWrite).unwrap();
    image.write_at(3 << 20, b"first operation").unwrap();
    image.commit().unwrap();
    drop(image);
    let after_first = std::fs::read(&img).unwrap();
    assert!(after_first.len() > orig.len());
    let mut image = open(&img, Access::ReadWrite).unwrap();
    image.write_at(100, b"second").unwrap();
    image.write_at(7 << 20, b"grows again").unwrap();
    image.commit().unwrap();
    drop(image);
    // Undo pops the newest first.
    journal::undo(&img).unwrap();
    assert!(std::fs::read(&img).unwrap() == after_first);
    journal::undo(&img).unwrap();
    assert!(std::fs::read(&img).unwrap() == orig);
    assert!(matches!(
        journal::undo(&img),
        Err(reseal_disk::Error::Journal { .. })
    ));
    let q = qemu_raw(&img, "vpc", dir.path());
    assert!(q.iter().all(|&b| b == 0));

    // Undo refuses when the image changed since the operation.
    let mut image = open(&img, Access::ReadWrite).unwrap();
    image.write_at(0, b"op").unwrap();
    image.commit().unwrap();
    drop(image);
    let mut f = reseal_disk::raw::HostFile::open(&img, true).unwrap();
    let len = f.len();
    // Change the footer's reserved area behind the journal's back.
    f.write_at(len - 10, b"x").unwrap();
    drop(f);
    let e = journal::undo(&img).unwrap_err();
    assert!(e.to_string().contains("changed since"), "{e}");
}

#[test]
fn dry_run_is_never_committed() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("d.raw");
    std::fs::write(&img, vec![7u8; 1 << 16]).unwrap();
    {
        let mut image = open(&img, Access::ReadWrite).unwrap();
        image.write_at(10, b"abc").unwrap();
        assert_eq!(image.changes(), vec![10..13]);
        assert!(image.is_modified());
        let mut b = [0u8; 3];
        image.read_at(10, &mut b).unwrap();
        assert_eq!(&b, b"abc");
    }
    assert_eq!(std::fs::read(&img).unwrap(), vec![7u8; 1 << 16]);
    let mut image = open(&img, Access::ReadOnly).unwrap();
    assert!(matches!(
        image.write_at(0, b"x"),
        Err(reseal_disk::Error::ReadOnly)
    ));
}

/// A crash during recovery itself (after every possible step) followed by another recovery still
/// ends all-old.
#[test]
fn crash_during_recovery_still_ends_all_old() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("r.vhd");
    run(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "vpc",
            "-o",
            "force_size=on",
            p(&img),
            "8M",
        ],
    );
    let orig = std::fs::read(&img).unwrap();
    // Reference: how many steps a full commit takes, and how many a full recovery takes after a
    // crash just before marking the undo complete (everything applied, IN_PROGRESS).
    let steps = {
        let mut image = open(&img, Access::ReadWrite).unwrap();
        let before = read_all(&image);
        apply_writes(&mut image, &before);
        image.commit().unwrap().steps
    };
    let crash = |img: &Path| {
        reset(img, &orig);
        let mut image = open(img, Access::ReadWrite).unwrap();
        let before = read_all(&image);
        apply_writes(&mut image, &before);
        assert!(image.commit_with_faults(Some(steps - 2)).is_err());
    };
    crash(&img);
    assert!(
        std::fs::read(&img).unwrap() != orig,
        "the commit was applied before the crash"
    );
    let mut j = 0;
    loop {
        crash(&img);
        let r = journal::recover_with_faults(&img, Some(j));
        journal::recover(&img).unwrap();
        assert!(
            std::fs::read(&img).unwrap() == orig,
            "recovery crashed at step {j}: not all-old"
        );
        assert_eq!(journal::pending(&img).unwrap(), None);
        if r.is_ok() {
            break;
        }
        j += 1;
    }
    eprintln!("recovery crashed at each of {j} steps, re-run recovered all-old every time");
    assert!(j >= 4);
}

/// A small tmpfs, unmounted (lazily, even if the test fails) on drop.
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .ok()?;
        st.success().then(|| Tmpfs(dir.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// ENOSPC while writing the undo file, and while applying (holes of a sparse image to fill):
/// a clear error that says the image was not changed, and it was not — same bytes, same
/// allocation, no undo file left behind.
#[test]
fn full_disk_while_writing_undo_or_applying_leaves_image_identical() {
    let dir = tempfile::tempdir().unwrap();
    let Some(fs) = Tmpfs::mount(&dir.path().join("m"), "8M") else {
        reseal_tests::skip_or_panic("cannot mount a tmpfs (needs root)", "run the tests as root");
        return;
    };
    let img = fs.0.join("sparse.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    // Some real data at the start, so the image is not all holes.
    {
        let mut i = open(&img, Access::ReadWrite).unwrap();
        i.write_at(0, &pseudo_random(9, 64 << 10)).unwrap();
        i.commit().unwrap();
        drop(i);
        std::fs::remove_dir_all(journal::journal_dir(&img)).unwrap();
    }
    let before = std::fs::read(&img).unwrap();
    let blocks = |p: &Path| std::os::unix::fs::MetadataExt::blocks(&std::fs::metadata(p).unwrap());
    let blocks_before = blocks(&img);
    for (what, len) in [("undo", 10usize << 20), ("apply", 5 << 20)] {
        let mut i = open(&img, Access::ReadWrite).unwrap();
        // Into the holes: the undo file stores their (zero) bytes, applying must allocate them.
        i.write_at(16 << 20, &pseudo_random(3, len)).unwrap();
        let e = i.commit().expect_err(what).to_string();
        assert!(e.contains("No space left on device"), "{what}: {e}");
        assert!(e.contains("the image was not changed"), "{what}: {e}");
        if what == "undo" {
            assert!(e.contains("writing the undo file"), "{e}");
        } else {
            assert!(e.contains("allocating space"), "{e}");
        }
        drop(i);
        assert!(
            std::fs::read(&img).unwrap() == before,
            "{what}: image changed"
        );
        assert!(
            blocks(&img) <= blocks_before + 8,
            "{what}: holes were filled"
        );
        let left: Vec<_> = std::fs::read_dir(journal::journal_dir(&img))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{what}: left {left:?}");
        // The next writable open has nothing to recover and the image still works.
        let i = open(&img, Access::ReadWrite).unwrap();
        let mut b = vec![0u8; 64 << 10];
        i.read_at(0, &mut b).unwrap();
        assert_eq!(b, pseudo_random(9, 64 << 10));
    }
}
