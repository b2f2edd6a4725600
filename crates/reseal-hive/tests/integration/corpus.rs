//! Corpus tests: export vs hivexregedit (parsed), no-op commit, corrupted hives.
use crate::common;

use reseal_hive::{Hive, HiveError, Key, Value, Visitor};

/// Cases where hivexregedit's output differs from ours and hivex is demonstrably wrong
/// (or cannot express the data), with the reason.
const HIVEX_WRONG: &[(&str, &str)] = &[
    (
        "yarp/InvalidParentHive.xz",
        "key 4900 has a bogus parent field; hivexregedit builds paths from the parent field \
         (reports it as a child of the root) while Windows and we follow the subkey lists \
         (key_with_many_subkeys\\4900)",
    ),
    (
        "yarp/BogusKeyNamesHive.xz",
        "key names contain CR LF and NUL; hivexregedit prints them raw so its .reg output \
         cannot be parsed back (the .reg format cannot express them); checked by a tree walk instead",
    ),
];

#[test]
fn export_matches_hivexregedit() {
    if !common::need_tool("hivexregedit") {
        return;
    }
    let mut failures = Vec::new();
    for &h in common::CLEAN_HIVES {
        let Some(b) = common::load(h) else { return };
        let hive = Hive::from_bytes(b.clone()).unwrap_or_else(|e| panic!("{h}: {e}"));
        if let Some((_, why)) = HIVEX_WRONG.iter().find(|(n, _)| *n == h) {
            eprintln!("{h}: hivex exception: {why}");
            // still: a full walk must succeed
            assert!(hive.walk(&mut Counter::default()).is_ok(), "{h}");
            continue;
        }
        let ours = common::our_model(&hive).unwrap_or_else(|e| panic!("{h}: {e}"));
        let theirs = common::hivex_model(&b).unwrap_or_else(|e| panic!("{h}: hivex: {e}"));
        let d = common::diff_models(&ours, &theirs, 5);
        if !d.is_empty() {
            failures.push(format!("{h}: {d:#?}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn bogus_key_names_read_exactly() {
    let Some(b) = common::load("yarp/BogusKeyNamesHive.xz") else {
        return;
    };
    let h = Hive::from_bytes(b).expect("open");
    let names: Vec<String> = h
        .root()
        .expect("root")
        .subkeys()
        .expect("list")
        .map(|k| k.expect("key").name())
        .collect();
    assert_eq!(
        names,
        vec!["testnew\r\nne".to_string(), "testnu\0l".to_string()]
    );
}

#[test]
fn invalid_parent_key_found_through_lists() {
    let Some(b) = common::load("yarp/InvalidParentHive.xz") else {
        return;
    };
    let h = Hive::from_bytes(b).expect("open");
    assert!(h.open_path("key_with_many_subkeys\\4900").is_ok());
}

#[derive(Default)]
struct Counter {
    keys: usize,
    values: usize,
    bytes: usize,
}

impl Visitor for Counter {
    fn enter_key(&mut self, key: &Key<'_>, _path: &str) -> reseal_hive::Result<()> {
        self.keys += 1;
        let _ = key.name();
        Ok(())
    }
    fn value(&mut self, _key: &Key<'_>, v: &Value<'_>) -> reseal_hive::Result<()> {
        self.values += 1;
        self.bytes += v.data()?.len();
        Ok(())
    }
}

/// Every hive file of the corpus that opens: open + commit without edit = same bytes.
#[test]
fn noop_commit_is_byte_identical() {
    let mut all: Vec<&str> = common::CLEAN_HIVES.to_vec();
    all.extend([
        "regipy/SECURITY.xz",
        "regipy/amcache.hve.xz",
        "regipy/SYSTEM_B.xz",
        "regipy/UsrClass.dat.xz",
        "regipy/transactions_NTUSER.DAT.xz",
        "yarp/NewDirtyHive1/NewDirtyHive.xz",
        "yarp/OldDirtyHive/OldDirtyHive.xz",
        "yarp/NewDirtyHive1/RecoveredHive_Windows10.xz",
        "yarp/OldDirtyHive/RecoveredHive_Windows7.xz",
    ]);
    for h in all {
        let Some(b) = common::load(h) else { return };
        let mut hive = Hive::from_bytes(b.clone()).unwrap_or_else(|e| panic!("{h}: {e}"));
        hive.commit().expect("commit");
        assert!(hive.dirty_ranges().is_empty(), "{h}");
        assert!(hive.as_bytes() == &b[..], "{h}: no-op commit changed bytes");
        // writable mode + commit without edit too (clean hives only)
        if !hive.is_dirty() {
            hive.make_writable().unwrap_or_else(|e| panic!("{h}: {e}"));
            hive.commit().expect("commit");
            assert!(
                hive.into_bytes() == b,
                "{h}: writable no-op commit changed bytes"
            );
        }
    }
}

/// Damaged hives: located errors, never a panic.
#[test]
fn corrupted_hives_give_located_errors() {
    let cases: &[(&str, bool)] = &[
        // (file, must the open or full walk fail?)
        ("yarp/BadListHive.xz", true),
        ("yarp/BadSubkeyHive.xz", true),
        ("yarp/GarbageHive.xz", true),
        ("yarp/TruncatedHive.xz", true),
        ("yarp/TruncatedDirtyHive.xz", true),
        ("yarp/TruncatedNameHive.xz", true),
        ("yarp/EffectiveSizeHive.xz", true),
        ("yarp/BadBaseBlockHive/BadBaseBlockHive.xz", true),
        ("regipy/corrupted_system_hive.xz", true),
        ("plaso/regf/corrupt_sub_key_list.hiv", true),
    ];
    for &(f, must_fail) in cases {
        let Some(b) = common::load(f) else { return };
        let r = Hive::from_bytes(b).and_then(|h| {
            let mut c = Counter::default();
            h.walk(&mut c)?;
            Ok((c.keys, reseal_hive::check(&h)))
        });
        match r {
            Ok((n, problems)) => {
                eprintln!(
                    "{f}: walked {n} keys; check: {:?}",
                    problems.iter().map(|p| p.to_string()).collect::<Vec<_>>()
                );
                assert!(
                    !must_fail || !problems.is_empty(),
                    "{f}: expected an error or a check problem, walked {n} keys"
                );
            }
            Err(e) => {
                let msg = e.to_string();
                eprintln!("{f}: {msg}");
                match e {
                    HiveError::Corrupt { .. } => assert!(
                        msg.contains("cell offset") && msg.contains("file offset"),
                        "{msg}"
                    ),
                    HiveError::BadBaseBlock { .. }
                    | HiveError::Limit { .. }
                    | HiveError::BadHbin { .. } => {}
                    other => panic!("{f}: unexpected error kind {other:?}"),
                }
            }
        }
    }
}

/// Every clean corpus hive passes `check`, except yarp hives built to be odd, where `check`
/// must find exactly the oddity they were built for.
#[test]
fn check_clean_corpus() {
    const EXPECTED: &[(&str, &str)] = &[
        (
            "yarp/DuplicateSubkeysHive.xz",
            "not sorted at \"4500\" / \"4500\"",
        ),
        ("yarp/HealedHive.xz", "refcount 8 but 4 keys use it"),
        (
            "yarp/InvalidParentHive.xz",
            "parent field does not point to the parent",
        ),
        ("yarp/WrongOrderHive.xz", "not sorted"),
    ];
    let mut bad = Vec::new();
    for &h in common::CLEAN_HIVES {
        let Some(b) = common::load(h) else { return };
        let hive = Hive::from_bytes(b).expect("open");
        let p = reseal_hive::check(&hive);
        match EXPECTED.iter().find(|(n, _)| *n == h) {
            Some((_, want)) => {
                assert!(
                    p.iter().any(|x| x.message.contains(want)),
                    "{h}: expected {want:?}, got {p:?}"
                );
            }
            None => {
                if !p.is_empty() {
                    bad.push(format!("{h}: {} problems, first: {}", p.len(), p[0]));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{bad:#?}");
}
