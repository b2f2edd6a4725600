//! The journal's spill of staged writes beyond its memory bound, against an in-memory model:
//! random staged writes, reads and growth with a tiny bound (so most writes go to the spill
//! file, with overlaps between memory and spilled extents), then a commit whose image bytes and
//! undo are checked byte for byte. Savepoints opened, rolled back and released among the
//! writes must give back exactly the model state they were opened at.

use std::path::Path;

use proptest::prelude::*;
use reseal_disk::raw::HostFile;
use reseal_disk::{journal, Device, Journal};

#[derive(Debug, Clone)]
enum Op {
    /// Stage `len` pseudo-random bytes (from `seed`) at `off`.
    Write { off: u64, len: usize, seed: u64 },
    /// Read `len` bytes at `off` (clamped to the staged length) and compare with the model.
    Read { off: u64, len: usize },
    /// Grow the staged device by `by` bytes.
    Grow { by: u64 },
    /// Open a savepoint.
    Savepoint,
    /// Take back the writes since the innermost savepoint (no-op when none is open).
    Rollback,
    /// Keep them and close the innermost savepoint (no-op when none is open).
    Release,
}

use reseal_tests::pseudo_random as bytes;

fn op() -> impl Strategy<Value = Op> {
    // Offsets cluster in a 48 KiB window so writes overlap often; some run past the base's end.
    prop_oneof![
        5 => (0u64..48 << 10, 1usize..12 << 10, any::<u64>())
            .prop_map(|(off, len, seed)| Op::Write { off, len, seed }),
        1 => (0u64..48 << 10, 1usize..3, any::<u64>())
            .prop_map(|(off, len, seed)| Op::Write { off, len, seed }),
        3 => (0u64..64 << 10, 1usize..16 << 10).prop_map(|(off, len)| Op::Read { off, len }),
        1 => (1u64..8 << 10).prop_map(|by| Op::Grow { by }),
        1 => Just(Op::Savepoint),
        1 => Just(Op::Rollback),
        1 => Just(Op::Release),
    ]
}

/// Apply `ops` to a journal over a file holding `orig` and to a model, checking every read, the
/// memory bound and the whole device; then commit and undo.
fn check(dir: &Path, orig: &[u8], limit: u64, ops: &[Op]) -> Result<(), TestCaseError> {
    let img = dir.join("model.img");
    std::fs::write(&img, orig).unwrap();
    let _ = std::fs::remove_dir_all(journal::journal_dir(&img));
    let spill_dir = dir.join("spill");
    let mut j = Journal::new(HostFile::open(&img, true).unwrap())
        .with_spill_limit(limit)
        .with_spill_dir(spill_dir.clone());
    let mut model = orig.to_vec();
    // Model states at the open savepoints, outermost first.
    let mut saved: Vec<Vec<u8>> = Vec::new();
    for op in ops {
        match *op {
            Op::Write { off, len, seed } => {
                let d = bytes(seed, len);
                j.write_at(off, &d).unwrap();
                let end = off as usize + len;
                if model.len() < end {
                    model.resize(end, 0);
                }
                model[off as usize..end].copy_from_slice(&d);
            }
            Op::Read { off, len } => {
                let off = off.min(model.len() as u64) as usize;
                let len = len.min(model.len() - off);
                let mut b = vec![0xEEu8; len];
                j.read_at(off as u64, &mut b).unwrap();
                prop_assert!(b == model[off..off + len], "read {off}+{len} differs");
            }
            Op::Grow { by } => {
                let n = model.len() as u64 + by;
                j.set_len(n).unwrap();
                model.resize(n as usize, 0);
            }
            Op::Savepoint => {
                j.savepoint();
                saved.push(model.clone());
            }
            Op::Rollback => {
                if let Some(m) = saved.pop() {
                    j.rollback_savepoint().unwrap();
                    model = m;
                } else {
                    prop_assert!(j.rollback_savepoint().is_err());
                }
            }
            Op::Release => {
                if saved.pop().is_some() {
                    j.release_savepoint().unwrap();
                } else {
                    prop_assert!(j.release_savepoint().is_err());
                }
            }
        }
        prop_assert_eq!(j.savepoints(), saved.len());
        let (ram, _) = j.staged_bytes();
        prop_assert!(ram <= limit, "{ram} bytes in memory, bound {limit}");
        prop_assert_eq!(j.len(), model.len() as u64);
    }
    let mut all = vec![0u8; model.len()];
    j.read_at(0, &mut all).unwrap();
    prop_assert!(all == model, "staged view differs from the model");
    // Every changed range covers only bytes that differ or were written; outside them the
    // model equals the original.
    let changes = j.changes();
    let mut outside = model.clone();
    for r in &changes {
        for b in &mut outside[r.start as usize..r.end as usize] {
            *b = 0;
        }
    }
    let mut orig_outside = orig.to_vec();
    orig_outside.resize(model.len(), 0);
    for r in &changes {
        for b in &mut orig_outside[r.start as usize..r.end as usize] {
            *b = 0;
        }
    }
    prop_assert!(
        outside == orig_outside,
        "a change outside the changed ranges"
    );

    let undo = journal::next_undo_path(&img).unwrap();
    j.commit(&undo).unwrap();
    prop_assert_eq!(j.staged_bytes(), (0, 0));
    prop_assert!(!j.is_modified());
    // Reads after the commit come from the base.
    let mut again = vec![0u8; model.len()];
    j.read_at(0, &mut again).unwrap();
    prop_assert!(again == model);
    drop(j);
    prop_assert!(
        std::fs::read(&img).unwrap() == model,
        "committed bytes differ"
    );
    if !changes.is_empty() {
        journal::undo(&img).unwrap();
    }
    prop_assert!(std::fs::read(&img).unwrap() == orig, "undo did not restore");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn spilled_journal_matches_model(
        base_len in 0usize..40 << 10,
        base_seed in any::<u64>(),
        limit in prop_oneof![Just(0u64), Just(1), Just(4096), Just(20_000), Just(1 << 30)],
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let orig = bytes(base_seed, base_len);
        check(dir.path(), &orig, limit, &ops)?;
    }
}

/// The spill file is in the directory it was given (anonymous: only an open descriptor names
/// it) and closed on commit and on discard.
#[test]
fn spill_file_lives_in_the_journal_directory_and_goes_away() {
    fn open_in(dir: &Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .filter(|t| t.starts_with(dir))
            .count()
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("s.img");
    std::fs::write(&img, vec![1u8; 1 << 16]).unwrap();
    let jdir = journal::journal_dir(&img);
    let mut j = Journal::new(HostFile::open(&img, true).unwrap())
        .with_spill_limit(4096)
        .with_spill_dir(jdir.clone());
    j.write_at(0, &[2u8; 4096]).unwrap();
    assert_eq!(j.staged_bytes(), (4096, 0));
    assert!(!jdir.exists(), "nothing is made until data spills");
    j.write_at(8192, &[3u8; 10_000]).unwrap();
    assert_eq!(j.staged_bytes(), (4096, 10_000));
    assert_eq!(
        open_in(&jdir),
        1,
        "one spill file, in the journal directory"
    );
    // Nothing but the (anonymous) spill file: no name a crash could leave behind.
    assert_eq!(std::fs::read_dir(&jdir).unwrap().count(), 0);
    j.discard();
    assert_eq!(open_in(&jdir), 0, "discard closes the spill file");
    j.write_at(8192, &[4u8; 10_000]).unwrap();
    assert_eq!(open_in(&jdir), 1);
    let undo = journal::next_undo_path(&img).unwrap();
    j.commit(&undo).unwrap();
    assert_eq!(open_in(&jdir), 0, "commit closes the spill file");
    j.write_at(8192, &[5u8; 10_000]).unwrap();
    assert_eq!(open_in(&jdir), 1);
    drop(j);
    assert_eq!(open_in(&jdir), 0, "drop closes the spill file");
    let names: Vec<_> = std::fs::read_dir(&jdir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    assert_eq!(names, vec!["000001.undo".to_string()]);
}

/// One big sequential stream (a large `put` or copy) through a small bound: memory stays at the
/// bound, the spilled bytes are appended once (no copy per write), the commit streams them.
#[test]
fn sequential_stream_spills_once() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("seq.img");
    std::fs::write(&img, vec![0u8; 1 << 20]).unwrap();
    let mut j = Journal::new(HostFile::open(&img, true).unwrap())
        .with_spill_limit(64 << 10)
        .with_spill_dir(dir.path().join("spill"));
    let total = 3 << 20;
    let data = bytes(7, total);
    for (i, c) in data.chunks(4096).enumerate() {
        j.write_at(512 + i as u64 * 4096, c).unwrap();
    }
    let (ram, spilled) = j.staged_bytes();
    assert_eq!(ram, 64 << 10);
    assert_eq!(spilled, total as u64 - (64 << 10));
    assert_eq!(j.changes(), vec![512..512 + total as u64]);
    let undo = journal::next_undo_path(&img).unwrap();
    let rep = j.commit(&undo).unwrap();
    assert_eq!(rep.ranges, 1);
    drop(j);
    let f = std::fs::read(&img).unwrap();
    assert!(f[..512].iter().all(|&b| b == 0));
    assert!(f[512..512 + total] == data[..]);
    journal::undo(&img).unwrap();
    assert_eq!(std::fs::read(&img).unwrap(), vec![0u8; 1 << 20]);
}
