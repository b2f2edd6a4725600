//! `reseal generalize` end to end on the Windows-like fixture: `--dry-run` changes no byte,
//! `--json` reports the changes, the commit is seen by `inspect`-level discovery and hivexsh,
//! `reseal undo` restores the image byte-identically, refusals write nothing.

use reseal_disk::{Access, Image};
use reseal_tests::schema::parse_json;
use reseal_tests::windows::WindowsSpec;
use std::process::Command;

fn reseal(args: &[&str], image: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(args)
        .arg(image)
        .output()
        .unwrap()
}

#[test]
fn generalize_dry_run_commit_undo() {
    let spec = WindowsSpec::default();
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    spec.build(&raw).unwrap();
    let orig = std::fs::read(&raw).unwrap();
    let sid = "S-1-5-21-7-8-9";

    let out = reseal(
        &[
            "generalize",
            "--dry-run",
            "--json",
            "--new-sid",
            sid,
            "--computer-name",
            "CLI-HOST",
        ],
        &raw,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dry = parse_json("generalize", &out.stdout);
    assert_eq!(dry["new_sid"], sid);
    assert_eq!(dry["old_sid"], spec.machine_sid.as_str());
    assert!(dry["counts"]["keys_renamed"].as_u64().unwrap() > 0);
    assert!(std::fs::read(&raw).unwrap() == orig, "--dry-run wrote");
    // Shared NTFS descriptors are reported with the files that use them.
    let sd = dry["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "ntfs_descriptor" && c["files"].as_u64() > Some(0))
        .expect("an NTFS descriptor change with its files");
    assert!(sd["example"].as_str().unwrap().starts_with("/"), "{sd}");
    let out = reseal(&["generalize", "--dry-run", "--new-sid", sid], &raw);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("NTFS $Secure id") && l.contains("used by /")),
        "{text}"
    );
    assert!(std::fs::read(&raw).unwrap() == orig, "--dry-run wrote");

    let out = reseal(
        &[
            "generalize",
            "--json",
            "--new-sid",
            sid,
            "--computer-name",
            "CLI-HOST",
        ],
        &raw,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let real = parse_json("generalize", &out.stdout);
    assert_eq!(real["counts"], dry["counts"], "dry run reports the same");
    {
        let mut img = Image::open(&raw, Access::ReadOnly).unwrap();
        let w = reseal_windows::discover(&mut img).unwrap().remove(0);
        assert_eq!(w.machine_sid.as_deref(), Some(sid));
        assert_eq!(w.computer.netbios.as_deref(), Some("CLI-HOST"));
    }
    // Text report and the inspect command still work on the result.
    let out = reseal(&["inspect"], &raw);
    assert!(out.status.success());
    let out = reseal(&["undo"], &raw);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(std::fs::read(&raw).unwrap() == orig, "undo");

    // Bad arguments and a bad name: clear errors, nothing written.
    for args in [
        vec!["generalize", "--new-sid", "S-1-5-32-544"],
        vec!["generalize", "--computer-name", "THIS-NAME-IS-TOO-LONG"],
        vec!["generalize", "--new-sid", spec.machine_sid.as_str()],
    ] {
        let out = reseal(&args, &raw);
        assert!(!out.status.success(), "{args:?}");
        assert!(!out.stderr.is_empty());
    }
    assert!(std::fs::read(&raw).unwrap() == orig, "failed runs wrote");
}

#[test]
fn generalize_refuses_a_hibernated_volume_unless_forced() {
    let spec = WindowsSpec {
        hibernated: true,
        ..WindowsSpec::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    spec.build(&raw).unwrap();
    let orig = std::fs::read(&raw).unwrap();
    let out = reseal(&["generalize"], &raw);
    assert_eq!(out.status.code(), Some(3), "a refusal exits 3");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hibernated"), "{err}");
    // With --json the refusal is an error document naming the refusal and its override.
    let out = reseal(&["generalize", "--json"], &raw);
    assert_eq!(out.status.code(), Some(3));
    let doc = parse_json("error", &out.stdout);
    assert_eq!(doc["error"]["code"], "refused", "{doc}");
    assert_eq!(doc["error"]["refusal"], "volume_state", "{doc}");
    assert_eq!(doc["error"]["override"], "--force-volume-state", "{doc}");
    assert!(std::fs::read(&raw).unwrap() == orig);
    let out = reseal(&["generalize", "--force-volume-state", "--dry-run"], &raw);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("warning: forced"));
    assert!(std::fs::read(&raw).unwrap() == orig);
}

#[test]
fn operations_list_select_and_report() {
    // --list-operations needs no image, text and JSON.
    let out = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(["generalize", "--list-operations"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for n in [
        "machine-sid",
        "computer-name",
        "machine-ids",
        "rdp-certificate",
        "ssh-hostkeys",
        "event-logs",
        "swap-files",
        "setup-logs",
        "restore-points",
        "provision",
    ] {
        assert!(text.contains(n), "{n} missing in {text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(["generalize", "--list-operations", "--json"])
        .output()
        .unwrap();
    let v = parse_json("operations", &out.stdout);
    let ops = v["operations"].as_array().unwrap();
    assert_eq!(ops.len(), 10);
    assert!(ops
        .iter()
        .all(|o| o["default"] == true && o["description"].as_str().unwrap().len() > 10));

    let spec = WindowsSpec::default();
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    spec.build(&raw).unwrap();
    let orig = std::fs::read(&raw).unwrap();

    // An unknown operation: an error naming the valid ones, nothing written.
    let out = reseal(&["generalize", "--operations", "machine-sid,nosuch"], &raw);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nosuch") && err.contains("ssh-hostkeys"),
        "{err}"
    );

    // inspect --json shows the identifiers.
    let out = reseal(&["inspect", "--json"], &raw);
    assert!(out.status.success());
    let v = parse_json("inspect", &out.stdout);
    let w = &v["windows"]["installs"][0];
    assert_eq!(
        w["machine_guid"],
        reseal_tests::windows::ids::MACHINE_GUID,
        "{w}"
    );
    assert_eq!(
        w["wsus_client_id"],
        reseal_tests::windows::ids::SUS_CLIENT_ID
    );
    assert!(w["dhcpv6_duid"].is_string() && w["sqm_machine_id"].is_string());

    // A dry run keeping the SID lists every other operation's changes, tagged.
    let out = reseal(
        &[
            "generalize",
            "--dry-run",
            "--json",
            "--operations",
            "-machine-sid",
            "--computer-name",
            "random",
        ],
        &raw,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = parse_json("generalize", &out.stdout);
    assert_eq!(r["old_sid"], r["new_sid"]);
    assert!(r["new_computer_name"]
        .as_str()
        .unwrap()
        .starts_with("DESKTOP-"));
    let changes = r["changes"].as_array().unwrap();
    assert!(!changes.iter().any(|c| c["operation"] == "machine-sid"));
    for op in [
        "computer-name",
        "machine-ids",
        "rdp-certificate",
        "ssh-hostkeys",
        "event-logs",
        "swap-files",
        "setup-logs",
    ] {
        assert!(
            changes.iter().any(|c| c["operation"] == op),
            "no change of {op}"
        );
    }
    assert!(changes
        .iter()
        .any(|c| c["kind"] == "file_deleted" && c["path"] == "/pagefile.sys"));
    let sections = r["operations"].as_array().unwrap();
    assert_eq!(sections.len(), 10);
    assert!(std::fs::read(&raw).unwrap() == orig, "--dry-run wrote");
    // The text report has a section per operation.
    let out = reseal(
        &[
            "generalize",
            "--dry-run",
            "--operations",
            "machine-ids,event-logs",
        ],
        &raw,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("[machine-ids]") && text.contains("[event-logs]"),
        "{text}"
    );
    assert!(!text.contains("[machine-sid]"), "{text}");
    assert!(text.contains("not run: machine-sid"), "{text}");
    assert!(std::fs::read(&raw).unwrap() == orig, "--dry-run wrote");
}

#[test]
fn generalize_audit_reports_what_is_left_of_the_old_sid() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("q.vhdx");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/quickstart.vhdx"),
        &img,
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_reseal");
    // Before: the untouched fixture has the SID in many places.
    let o = Command::new(bin)
        .args(["audit", "--json"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let before = parse_json("audit", &o.stdout);
    assert!(before["places"].as_array().unwrap().len() > 50);
    // A dry run audits the staged result: nothing unexplained is left, and nothing is written.
    let original = std::fs::read(&img).unwrap();
    let o = Command::new(bin)
        .args(["generalize", "--dry-run", "--audit", "--json"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v = parse_json("generalize", &o.stdout);
    let places = v["audit"]["places"].as_array().unwrap();
    for p in places {
        let c = p["category"].as_str().unwrap();
        assert!(
            [
                "unallocated",
                "unowned",
                "file_slack",
                "mft_slack",
                "ntfs_logfile",
                "file_content"
            ]
            .contains(&c),
            "unexplained residual place: {p}"
        );
    }
    assert_eq!(std::fs::read(&img).unwrap(), original);
    // A real run prints the summary line; `reseal audit --fail-on-unexplained` then passes.
    let o = Command::new(bin)
        .args(["generalize", "--audit"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("audit: ") && text.contains("place(s) of the old SID"),
        "{text}"
    );
    let o = Command::new(bin)
        .args([
            "audit",
            "--fail-on-unexplained",
            "--sid",
            "S-1-5-21-1111111111-2222222222-3333333333",
            "-p",
            "3",
        ])
        .arg(&img)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
}
