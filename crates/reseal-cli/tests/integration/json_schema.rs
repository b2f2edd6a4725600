//! Every kind of `--json` document (inspect, generalize, clone, operations, audit, sid, user
//! list, user change, undo --list, reg ls, reg get, error) is produced at least once on a
//! fixture and validated against its schema in `docs/schema/` (`reseal_tests::schema`), and
//! every schema there is a valid draft 2020-12 schema that some document here exercises.

use reseal_tests::schema::{assert_json_schema, is_valid_schema, parse_json, schemas};
use reseal_tests::*;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(dir: &Path) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/quickstart.vhdx");
    let img = dir.join("q.vhdx");
    std::fs::copy(src, &img).unwrap();
    img
}

fn reseal<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(args)
        .output()
        .unwrap()
}

/// Runs `args` (which include `--json`), expects success and a document of `kind`.
fn doc<S: AsRef<std::ffi::OsStr> + std::fmt::Debug>(kind: &str, args: &[S]) -> serde_json::Value {
    let o = reseal(args);
    assert!(
        o.status.success(),
        "{args:?}: {}{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    let v = parse_json(kind, &o.stdout);
    assert_eq!(v["schema_version"], 1, "{args:?}");
    v
}

#[test]
fn every_schema_is_a_valid_draft_2020_12_schema() {
    let all = schemas();
    assert!(all.len() >= 12, "{:?}", all.keys().collect::<Vec<_>>());
    for (kind, s) in all {
        assert!(
            is_valid_schema(s),
            "{kind}.schema.json is not a valid schema"
        );
        assert_eq!(
            s["$schema"], "https://json-schema.org/draft/2020-12/schema",
            "{kind}"
        );
        assert_eq!(
            s["$id"],
            format!("https://example.invalid/reseal/schema/{kind}.schema.json")
        );
    }
}

#[test]
fn every_json_document_matches_its_schema() {
    let tmp = tempfile::tempdir().unwrap();
    let img = fixture(tmp.path());
    let i = img.to_str().unwrap();
    let mut seen = BTreeSet::new();
    let mut check = |kind: &str, args: &[&str]| {
        seen.insert(kind.to_string());
        doc(kind, args)
    };

    let ins = check("inspect", &["inspect", i, "--json"]);
    // GUIDs are GUIDs, times are RFC 3339 (the schema checks the formats; spot-check here).
    assert!(ins["partition_table"]["disk_guid"].is_string());
    check("operations", &["generalize", "--list-operations", "--json"]);
    let g = check(
        "generalize",
        &[
            "generalize",
            i,
            "--dry-run",
            "--audit",
            "--computer-name",
            "SCHEMA-1",
            "--json",
        ],
    );
    assert!(g["audit"].is_object(), "--audit adds the audit");
    assert!(g["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["code"].is_string() && w["message"].is_string()));
    // The library type reads its own JSON back (extra CLI fields are ignored).
    let r: reseal_windows::generalize::Report = serde_json::from_value(g.clone()).unwrap();
    assert_eq!(r.old_sid, g["old_sid"].as_str().unwrap());
    check("audit", &["audit", i, "--json"]);
    let ck = check("check", &["check", i, "--output=json"]);
    assert_eq!(ck["summary"]["clean"], true, "{ck}");
    check("user-list", &["user", "list", i, "--json"]);
    check(
        "user-change",
        &["user", "disable", i, "alice", "--dry-run", "--json"],
    );
    check(
        "reg-ls",
        &["reg", "ls", &format!("{i}:SOFTWARE"), "Microsoft", "--json"],
    );
    let get = check(
        "reg-get",
        &[
            "reg",
            "get",
            &format!("{i}:SYSTEM"),
            r"HKLM\SYSTEM\Select",
            "--json",
        ],
    );
    let current = get["values"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "Current")
        .expect("Select\\Current");
    assert_eq!(current["type"], "REG_DWORD");
    assert!(current["data"].is_u64());
    // A real write, so that undo --list has an entry.
    let o = reseal(&["user", "disable", i, "alice"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let u = check("undo-list", &["undo", "--list", "--json", i]);
    assert_eq!(u["operations"].as_array().unwrap().len(), 1, "{u}");
    let out = tmp.path().join("c{n}.vhdx");
    let c = check(
        "clone",
        &["clone", i, out.to_str().unwrap(), "--count", "2", "--json"],
    );
    assert_eq!(c["clones"].as_array().unwrap().len(), 2);

    // reseal sid on a data volume (no Windows on it).
    require_tool("mkntfs");
    let vol = tmp.path().join("data.ntfs");
    let from = "S-1-5-21-1111111111-2222222222-3333333333";
    NtfsSpec {
        size: 16 << 20,
        cluster: 4096,
        label: "Data".into(),
        entries: vec![Entry::Dir(format!("Profiles/{from}-1001"))],
    }
    .build(&vol)
    .unwrap();
    let s = check(
        "sid",
        &[
            "sid",
            vol.to_str().unwrap(),
            "--from",
            from,
            "--to",
            "S-1-5-21-1444444444-1555555555-1666666666",
            "--dry-run",
            "--json",
        ],
    );
    assert_eq!(s["renamed"].as_array().unwrap().len(), 1, "{s}");

    // Errors.
    seen.insert("error".into());
    for args in [
        vec!["inspect", "/nonexistent/image.vhdx", "--json"],
        vec!["user", "disable", i, "nobody", "--json"],
        vec![
            "reg",
            "get",
            &format!("{i}:SYSTEM"),
            "Select",
            "Nope",
            "--json",
        ],
        vec!["audit", i, "--sid", "not-a-sid", "--json"],
    ] {
        let o = reseal(&args);
        assert!(!o.status.success(), "{args:?}");
        let v = parse_json("error", &o.stdout);
        assert_eq!(
            v["error"]["exit_code"],
            o.status.code().unwrap(),
            "{args:?}"
        );
    }

    let kinds: BTreeSet<String> = schemas().keys().cloned().collect();
    assert_eq!(seen, kinds, "every schema is exercised by a document");
}

#[test]
fn a_document_that_drifts_from_its_schema_fails() {
    let ok = serde_json::json!({"schema_version": 1, "name": "Guest", "rid": 501,
        "action": "disabled", "changed": false, "dry_run": true});
    assert_json_schema("user-change", &ok);
    for bad in [
        serde_json::json!({"schema_version": 1, "name": "Guest", "rid": 501,
            "action": "disabled", "changed": false, "dry_run": true, "extra": 1}),
        serde_json::json!({"schema_version": 1, "name": "Guest", "rid": 501,
            "action": "disabled", "changed": false}),
    ] {
        let r = std::panic::catch_unwind(|| assert_json_schema("user-change", &bad));
        assert!(r.is_err(), "{bad} should not validate");
    }
    let bad_time = serde_json::json!({"schema_version": 1, "operations": [{"number": 1,
        "undo_file": "x", "time": "133400000000000000", "operation": null, "bytes": 1,
        "ranges": 1, "old_len": 1, "new_len": 1}]});
    let r = std::panic::catch_unwind(|| assert_json_schema("undo-list", &bad_time));
    assert!(r.is_err(), "a raw FILETIME is not a date-time");
}
