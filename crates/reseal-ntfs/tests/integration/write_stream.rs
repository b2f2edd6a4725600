//! `Volume::write_file_from`: a file's data streamed from a reader, straight into a journal with
//! a tiny spill bound (so the data lives in the spill file), checked by ntfs-3g; a reader that
//! fails half-way leaves the journal with nothing staged (first operation) or the volume as it
//! was (later operation), through the journal's savepoint; without savepoints (a bare memory
//! device) the same call works through the overlay.

use crate::ntfsw_common;

use ntfsw_common::*;
use reseal_disk::{Device, Journal, MemDevice};
use reseal_ntfs::{Error, Volume};

use reseal_tests::pseudo_random as bytes;

/// A reader that hands out `data` and fails once `fail_at` bytes were read.
struct Failing<'a> {
    data: &'a [u8],
    pos: usize,
    fail_at: usize,
}

impl std::io::Read for Failing<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.fail_at {
            return Err(std::io::Error::other("injected read error"));
        }
        let n = buf
            .len()
            .min(self.fail_at - self.pos)
            .min(self.data.len() - self.pos);
        buf[..n].copy_from_slice(&self.data[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

fn whole<D: Device>(d: &D) -> Vec<u8> {
    let mut v = vec![0u8; d.len() as usize];
    d.read_at(0, &mut v).unwrap();
    v
}

#[test]
fn streamed_file_through_a_spilling_journal_reads_back_in_ntfs3g() {
    if !tools(&["mkntfs", "ntfscat", "ntfsfix"]) {
        return;
    }
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 32, 4096);
    let orig = std::fs::read(&img).unwrap();
    let big = bytes(7, (5 << 20) + 1234);
    let spill = td.path().join("spill");
    let j = Journal::new(MemDevice::new(orig.clone()))
        .with_spill_limit(64 << 10)
        .with_spill_dir(spill);
    let mut v = Volume::open(j).unwrap();

    // First operation fails half-way: nothing at all stays staged (the $LogFile reset of the
    // first operation is taken back too).
    let mut r = Failing {
        data: &big,
        pos: 0,
        fail_at: 3 << 20,
    };
    let e = v.write_file_from("big.bin", &mut r, big.len() as u64);
    assert!(matches!(e, Err(Error::Source { .. })), "{e:?}");
    let j = v.into_inner();
    assert!(
        !j.is_modified(),
        "a failed streaming write left {:?}",
        j.changes()
    );
    assert_eq!(j.savepoints(), 0);
    let mut v = Volume::open(j).unwrap();

    v.write_file_from("big.bin", &mut &big[..], big.len() as u64)
        .unwrap();
    v.write_file_from("small.txt", &mut &b"tiny"[..], 4)
        .unwrap();
    assert!(v.read_file("big.bin").unwrap() == big, "read back differs");
    let (_, spilled) = v.into_inner().staged_bytes();
    assert!(spilled >= 5 << 20, "only {spilled} bytes spilled");

    // A later operation fails while replacing the file: the volume reads as before it.
    let j = Journal::new(MemDevice::new(orig.clone()))
        .with_spill_limit(64 << 10)
        .with_spill_dir(td.path().join("spill2"));
    let mut v = Volume::open(j).unwrap();
    v.write_file_from("big.bin", &mut &big[..], big.len() as u64)
        .unwrap();
    v.write_file_from("small.txt", &mut &b"tiny"[..], 4)
        .unwrap();
    let before = whole(&v.into_inner());
    let j = Journal::new(MemDevice::new(before.clone()))
        .with_spill_limit(64 << 10)
        .with_spill_dir(td.path().join("spill3"));
    let mut v = Volume::open(j).unwrap();
    let other = bytes(8, 4 << 20);
    let mut r = Failing {
        data: &other,
        pos: 0,
        fail_at: (2 << 20) + 17,
    };
    let e = v.write_file_from("big.bin", &mut r, other.len() as u64);
    assert!(matches!(e, Err(Error::Source { .. })), "{e:?}");
    // A short reader is an error too.
    let e = v.write_file_from("small.txt", &mut &b"ab"[..], 3);
    assert!(matches!(e, Err(Error::Source { .. })), "{e:?}");
    let j = v.into_inner();
    assert!(
        whole(&j) == before,
        "a failed replacement changed the volume"
    );

    // ntfs-3g reads what the successful writes left.
    let out = td.path().join("out.img");
    std::fs::write(&out, &before).unwrap();
    ntfsfix_clean(&out);
    let (ok, _) = run(&format!(
        "ntfscat {} big.bin > {}",
        out.display(),
        td.path().join("big.out").display()
    ));
    assert!(ok, "ntfscat failed");
    same(
        "big.bin",
        &std::fs::read(td.path().join("big.out")).unwrap(),
        &big,
    );
    let (ok, small) = run(&format!("ntfscat {} small.txt", out.display()));
    assert!(ok && small == "tiny", "{small}");
}

#[test]
fn streaming_without_savepoints_goes_through_the_overlay() {
    if !tools(&["mkntfs", "ntfscat", "ntfsfix"]) {
        return;
    }
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 16, 4096);
    let orig = std::fs::read(&img).unwrap();
    let big = bytes(3, (2 << 20) + 5);
    let mut v = Volume::open(MemDevice::new(orig.clone())).unwrap();
    let mut r = Failing {
        data: &big,
        pos: 0,
        fail_at: 1 << 20,
    };
    assert!(v
        .write_file_from("a.bin", &mut r, big.len() as u64)
        .is_err());
    let dev = v.into_inner();
    assert!(dev.as_slice() == orig, "a failed write changed the device");
    let mut v = Volume::open(dev).unwrap();
    v.write_file_from("a.bin", &mut &big[..], big.len() as u64)
        .unwrap();
    let after = v.into_inner().into_inner();
    let out = td.path().join("out.img");
    std::fs::write(&out, &after).unwrap();
    ntfsfix_clean(&out);
    let (ok, _) = run(&format!(
        "ntfscat {} a.bin > {}",
        out.display(),
        td.path().join("a.out").display()
    ));
    assert!(ok);
    same(
        "a.bin",
        &std::fs::read(td.path().join("a.out")).unwrap(),
        &big,
    );
}
