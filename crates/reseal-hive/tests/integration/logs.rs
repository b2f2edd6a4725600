//! Transaction-log replay against Windows' own recovery (yarp) and regipy's replay.
use crate::common;

use std::process::Command;

use reseal_hive::log::LogFormat;
use reseal_hive::{Hive, HiveError};

fn model(h: &Hive) -> common::Model {
    common::our_model(h).expect("export")
}

#[test]
fn new_format_matches_windows10() {
    let (Some(p), Some(l1), Some(l2), Some(w)) = (
        common::load("yarp/NewDirtyHive1/NewDirtyHive.xz"),
        common::load("yarp/NewDirtyHive1/NewDirtyHive.LOG1.xz"),
        common::load("yarp/NewDirtyHive1/NewDirtyHive.LOG2.xz"),
        common::load("yarp/NewDirtyHive1/RecoveredHive_Windows10.xz"),
    ) else {
        return;
    };
    assert!(Hive::from_bytes(p.clone()).expect("open").is_dirty());
    let (h, rep) = Hive::recover(p, Some(l1), Some(l2)).expect("recover");
    eprintln!("{rep:?}");
    assert_eq!(rep.format, LogFormat::New);
    assert!(!h.is_dirty());
    let win = Hive::from_bytes(w).expect("windows");
    let d = common::diff_models(&model(&h), &model(&win), 10);
    assert!(d.is_empty(), "{d:#?}");
    common::verify_with_oracles("NewDirtyHive1 recovered", h.as_bytes());
}

#[test]
fn new_format_only_log2_valid() {
    let (Some(p), Some(l1), Some(l2)) = (
        common::load("yarp/NewDirtyHive2/NewDirtyHive.xz"),
        common::load("yarp/NewDirtyHive2/NewDirtyHive.LOG1.xz"),
        common::load("yarp/NewDirtyHive2/NewDirtyHive.LOG2.xz"),
    ) else {
        return;
    };
    let (h, rep) = Hive::recover(p, Some(l1), Some(l2)).expect("recover");
    eprintln!("{rep:?}");
    assert!(rep.applied_log2 > 0);
    common::verify_with_oracles("NewDirtyHive2 recovered", h.as_bytes());
}

#[test]
fn old_format_matches_windows7() {
    let (Some(p), Some(l1), Some(w)) = (
        common::load("yarp/OldDirtyHive/OldDirtyHive.xz"),
        common::load("yarp/OldDirtyHive/OldDirtyHive.LOG1.xz"),
        common::load("yarp/OldDirtyHive/RecoveredHive_Windows7.xz"),
    ) else {
        return;
    };
    let (h, rep) = Hive::recover(p, Some(l1), None).expect("recover");
    eprintln!("{rep:?}");
    assert_eq!(rep.format, LogFormat::Old);
    let win = Hive::from_bytes(w).expect("windows");
    let d = common::diff_models(&model(&h), &model(&win), 10);
    assert!(d.is_empty(), "{d:#?}");
    common::verify_with_oracles("OldDirtyHive recovered", h.as_bytes());
}

#[test]
fn bad_base_block_repaired_from_log() {
    let (Some(p), Some(l1), Some(w)) = (
        common::load("yarp/BadBaseBlockHive/BadBaseBlockHive.xz"),
        common::load("yarp/BadBaseBlockHive/BadBaseBlockHive.LOG1.xz"),
        common::load("yarp/OldDirtyHive/RecoveredHive_Windows7.xz"),
    ) else {
        return;
    };
    assert!(Hive::from_bytes(p.clone()).is_err());
    let (h, rep) = Hive::recover(p, Some(l1), None).expect("recover");
    eprintln!("{rep:?}");
    assert!(rep.base_block_repaired);
    assert!(h.open_path("key_with_many_subkeys").is_ok());
    let win = Hive::from_bytes(w).expect("windows");
    let d = common::diff_models(&model(&h), &model(&win), 10);
    eprintln!("vs Windows 7 recovery of the same hive: {d:#?}");
    common::verify_with_oracles("BadBaseBlockHive recovered", h.as_bytes());
}

#[test]
fn bad_logs_are_refused() {
    for (p, l1, l2) in [
        (
            "yarp/BadLogHive1/BadLogHive.xz",
            "yarp/BadLogHive1/BadLogHive.LOG1.xz",
            None,
        ),
        (
            "yarp/BadLogHive2/BadLogHive.xz",
            "yarp/BadLogHive2/BadLogHive.LOG1.xz",
            None,
        ),
        (
            "yarp/BadLogHive3/BadLogHive.xz",
            "yarp/BadLogHive3/BadLogHive.LOG1.xz",
            Some("yarp/BadLogHive3/BadLogHive.LOG2.xz"),
        ),
    ] {
        let (Some(pb), Some(l1b)) = (common::load(p), common::load(l1)) else {
            return;
        };
        let l2b = l2.and_then(common::load);
        match Hive::recover(pb, Some(l1b), l2b) {
            Err(HiveError::Log { reason, .. }) => eprintln!("{p}: refused: {reason}"),
            Err(e) => panic!("{p}: wrong error {e}"),
            Ok((_, rep)) => panic!("{p}: recovered although the log is bad: {rep:?}"),
        }
    }
}

/// regipy's own replay of the dirty regipy hives, compared with ours.
fn regipy_recover(primary: &[u8], log1: &[u8], log2: Option<&[u8]>) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tmp");
    let p = dir.path().join("hive");
    let l1 = dir.path().join("hive.LOG1");
    let l2 = dir.path().join("hive.LOG2");
    let out = dir.path().join("restored");
    std::fs::write(&p, primary).expect("w");
    std::fs::write(&l1, log1).expect("w");
    let mut args = vec![p.display().to_string(), l1.display().to_string()];
    if let Some(l) = log2 {
        std::fs::write(&l2, l).expect("w");
        args.push(l2.display().to_string());
    } else {
        args.push(String::new());
    }
    args.push(out.display().to_string());
    let script = r#"
import sys
from regipy.recovery import apply_transaction_logs
apply_transaction_logs(sys.argv[1], sys.argv[2], secondary_log_path=(sys.argv[3] or None), restored_hive_path=sys.argv[4], verbose=False)
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&args)
        .output()
        .expect("python3");
    assert!(
        o.status.success(),
        "regipy recovery failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::read(&out).expect("restored hive")
}

#[test]
fn regipy_dirty_hives_match_regipy_replay() {
    if !common::need_tool("python3") {
        return;
    }
    for (p, l1, l2) in [
        (
            "regipy/UsrClass.dat.xz",
            "regipy/UsrClass.dat.LOG1.xz",
            "regipy/UsrClass.dat.LOG2.xz",
        ),
        (
            "regipy/transactions_NTUSER.DAT.xz",
            "regipy/transactions_ntuser.dat.log1.xz",
            "regipy/transactions_ntuser.dat.log2.xz",
        ),
    ] {
        let (Some(pb), Some(l1b), Some(l2b)) =
            (common::load(p), common::load(l1), common::load(l2))
        else {
            return;
        };
        let theirs = regipy_recover(&pb, &l1b, Some(&l2b));
        let (ours, rep) = Hive::recover(pb, Some(l1b), Some(l2b)).expect("recover");
        eprintln!("{p}: {rep:?}");
        if let Ok(d) = std::env::var("RESEAL_DUMP_RECOVERED") {
            std::fs::write(format!("{d}/{}", p.replace('/', "_")), ours.as_bytes()).expect("dump");
            std::fs::write(format!("{d}/{}.regipy", p.replace('/', "_")), &theirs).expect("dump");
        }
        eprintln!(
            "{p}: check: {:?}",
            reseal_hive::check(&ours)
                .iter()
                .take(5)
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
        );
        // regipy copies the pages but leaves the base block dirty: make it readable.
        let mut theirs = theirs;
        let s1 = theirs[4..8].to_vec();
        theirs[8..12].copy_from_slice(&s1);
        let c = reseal_hive::base_block::checksum(&theirs[..512]);
        theirs[508..512].copy_from_slice(&c.to_le_bytes());
        let th = Hive::from_bytes(theirs).expect("regipy result");
        let ours_model = model(&ours);
        match common::our_model(&th) {
            Ok(m) => {
                let d = common::diff_models(&ours_model, &m, 10);
                assert!(d.is_empty(), "{p}: ours vs regipy replay: {d:#?}");
            }
            Err(e) => {
                // regipy demonstrably wrong: its replay leaves a dangling cell reference
                // (it does not apply the entries strictly in sequence order across the two
                // logs); ours must then be structurally clean and readable by hivex.
                eprintln!(
                    "{p}: regipy's replay is corrupt ({e}); checking ours with the other oracles"
                );
                assert!(
                    REGIPY_WRONG.contains(&p),
                    "{p}: regipy result unreadable: {e}"
                );
                common::verify_with_oracles(p, ours.as_bytes());
            }
        }
    }
}

/// Dirty hives whose regipy replay is corrupt (value list pointing at a free cell) while
/// ours passes `check` and hivexregedit/regfexport.
const REGIPY_WRONG: &[&str] = &[
    "regipy/UsrClass.dat.xz",
    "regipy/transactions_NTUSER.DAT.xz",
];

/// Commit after an edit leaves the logs unable to replay over it: the committed hive is
/// clean (Windows ignores logs of a clean hive) and its sequence number is above every
/// log entry, so even the old logs fed to `recover` change nothing.
#[test]
fn commit_neutralises_stale_logs() {
    let (Some(p), Some(l1), Some(l2)) = (
        common::load("yarp/NewDirtyHive1/NewDirtyHive.xz"),
        common::load("yarp/NewDirtyHive1/NewDirtyHive.LOG1.xz"),
        common::load("yarp/NewDirtyHive1/NewDirtyHive.LOG2.xz"),
    ) else {
        return;
    };
    let (mut h, rep) = Hive::recover(p, Some(l1.clone()), Some(l2.clone())).expect("recover");
    let last = rep.last_sequence.expect("applied");
    h.make_writable().expect("w");
    let k = h
        .create_key(h.root_offset(), "after-replay")
        .expect("create");
    h.set_value(k, "x", reseal_hive::REG_DWORD, &1u32.to_le_bytes())
        .expect("set");
    h.commit().expect("commit");
    let bb = h.base_block();
    assert_eq!(bb.seq1, bb.seq2);
    assert!(
        bb.seq1 > last,
        "seq {} must exceed last log entry {last}",
        bb.seq1
    );
    assert!(bb.checksum_ok);
    let bytes = h.into_bytes();
    let (again, rep2) = Hive::recover(bytes.clone(), Some(l1), Some(l2)).expect("recover again");
    assert!(!rep2.was_dirty);
    assert_eq!(rep2.applied_log1 + rep2.applied_log2, 0);
    assert!(again.as_bytes() == &bytes[..]);
    assert!(again.open_path("after-replay").is_ok());
}

/// SYSTEM_B (12 MB, Windows 10): replay then hivexregedit must read exactly our content.
/// regipy's own replay of it references cells past the hive bins, and regipy reading our
/// result skips some values (not investigated), so hivex and `check` are the oracles here.
#[test]
#[ignore = "slow (about 30 s)"]
fn system_b_replay_hivex() {
    let (Some(p), Some(l1), Some(l2)) = (
        common::load("regipy/SYSTEM_B.xz"),
        common::load("regipy/SYSTEM_B.LOG1.xz"),
        common::load("regipy/SYSTEM_B.LOG2.xz"),
    ) else {
        return;
    };
    let (h, rep) = Hive::recover(p, Some(l1), Some(l2)).expect("recover");
    eprintln!("{rep:?}");
    let errs: Vec<_> = reseal_hive::check(&h)
        .into_iter()
        .filter(|p| p.severity == reseal_hive::Severity::Error)
        .collect();
    assert!(errs.is_empty(), "{errs:?}");
    let hx = common::hivex_model(h.as_bytes()).expect("hivex");
    let d = common::diff_models(&model(&h), &hx, 10);
    assert!(d.is_empty(), "{d:#?}");
}
