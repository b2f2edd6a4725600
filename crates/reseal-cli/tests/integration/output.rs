//! Output plumbing and exit codes: a closed stdout ends every command quietly (status 0, no
//! panic), errors say their cause once, `--json` errors are JSON on stdout, and usage errors
//! exit 2.

use reseal_tests::schema::parse_json;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/quickstart.vhdx")
}

/// Runs reseal with stdout a pipe whose reader closes it after the first byte.
fn closed_early(args: &[&str]) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut one = [0u8; 1];
    let _ = stdout.read(&mut one);
    drop(stdout);
    child.wait_with_output().unwrap()
}

#[test]
fn closed_stdout_ends_quietly() {
    let img = fixture();
    let img = img.to_str().unwrap();
    for args in [
        vec!["inspect", img],
        vec!["inspect", img, "--json"],
        vec!["ls", img, "/Windows/System32"],
        vec!["ls", img, "-l", "/Windows/System32"],
        vec!["cat", img, "/Windows/System32/config/SOFTWARE"],
        vec!["reg", "export", &format!("{img}:SOFTWARE")],
        vec!["generalize", img, "--dry-run"],
    ] {
        let out = closed_early(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(!err.contains("Broken pipe"), "{args:?}: {err}");
    }
}

#[test]
fn missing_image_says_cause_once() {
    let out = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(["inspect", "/nonexistent/image.vhdx"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("os error 2").count(), 1, "{err}");

    let out = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(["inspect", "/nonexistent/image.vhdx", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc = parse_json("error", &out.stdout);
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["error"]["code"], "io");
    assert!(doc["error"]["message"]
        .as_str()
        .unwrap()
        .contains("os error 2"));
}

#[test]
fn usage_error_exits_2_and_help_lists_exit_codes() {
    let out = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(["inspect", "--no-such-flag"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .arg("--help")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("3 refused"), "{text}");
}

#[test]
fn json_documents_carry_schema_version_and_type_guids() {
    let img = fixture();
    let out = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .arg("inspect")
        .arg(&img)
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc = parse_json("inspect", &out.stdout);
    assert_eq!(doc["schema_version"], 1);
    let parts = doc["partition_table"]["partitions"].as_array().unwrap();
    let ids: Vec<&str> = parts
        .iter()
        .map(|p| p["type_id"].as_str().unwrap())
        .collect();
    let text = String::from_utf8_lossy(&out.stdout);
    // last_logon is an RFC 3339 time (the fixture's FILETIME 133400000000000000; `date -u` agrees).
    assert!(
        text.contains("\"last_logon\": \"2023-09-24T03:33:20Z\""),
        "{text}"
    );
    assert!(
        ids.contains(&"EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"),
        "{ids:?}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .arg("generalize")
        .arg(&img)
        .args(["--dry-run", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = parse_json("generalize", &out.stdout);
    assert_eq!(doc["schema_version"], 1);
}

#[test]
fn generalize_on_a_missing_partition_names_the_ones_there_are() {
    let out = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .arg("generalize")
        .arg(fixture())
        .args(["-p", "7", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no partition 7"), "{err}");
    assert!(err.contains("1, 2, 3"), "{err}");
}

#[test]
fn put_onto_an_existing_directory_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("q.vhdx");
    std::fs::copy(fixture(), &img).unwrap();
    let local = dir.path().join("x");
    std::fs::write(&local, b"x").unwrap();
    let before = std::fs::read(&img).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .arg("put")
        .arg(&img)
        .arg(&local)
        .arg("/Users")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/Users is an existing directory"), "{err}");
    assert!(std::fs::read(&img).unwrap() == before, "a failed put wrote");
}

#[test]
fn mkdir_p_creates_parents_and_accepts_existing() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("q.vhdx");
    std::fs::copy(fixture(), &img).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_reseal"))
            .args(args)
            .output()
            .unwrap()
    };
    let i = img.to_str().unwrap();
    let out = run(&["mkdir", i, "/A/B/C"]);
    assert_eq!(out.status.code(), Some(1), "no parent without -p");
    let out = run(&["mkdir", "--parents", i, "/A/B/C"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["mkdir", "--parents", i, "/A/B/C"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["ls", i, "/A/B"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("C/"));
}

#[test]
fn image_format_option_overrides_detection_and_unknown_content_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_reseal");
    let rnd = tmp.path().join("random.img");
    let bytes: Vec<u8> = (0..1_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&rnd, &bytes).unwrap();
    let o = std::process::Command::new(bin)
        .arg("inspect")
        .arg(&rnd)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("-f raw"), "{err}");
    let o = std::process::Command::new(bin)
        .args(["-f", "raw", "inspect"])
        .arg(&rnd)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("raw"));
    // A forced container the file does not hold is refused.
    let o = std::process::Command::new(bin)
        .args(["inspect", "-f", "qcow2"])
        .arg(&rnd)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    // VMDK is named, with the conversion to run.
    if std::process::Command::new("qemu-img")
        .arg("--version")
        .output()
        .is_ok()
    {
        let vmdk = tmp.path().join("d.vmdk");
        assert!(std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "vmdk"])
            .arg(&vmdk)
            .arg("8M")
            .status()
            .unwrap()
            .success());
        let o = std::process::Command::new(bin)
            .arg("inspect")
            .arg(&vmdk)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("VMDK") && err.contains("qemu-img convert -O qcow2"),
            "{err}"
        );
    }
}
