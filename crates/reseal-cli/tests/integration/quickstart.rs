//! The README's quick start: `reseal inspect` on the committed fixture.

use std::path::Path;
use std::process::Command;

#[test]
fn inspect_committed_fixture() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/quickstart.vhdx");
    let out = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .arg("inspect")
        .arg(&fixture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for want in [
        "vhdx (dynamic)",
        "gpt",
        "EFI system",
        "FAT32 label \"SYSTEM\"",
        "Microsoft reserved",
        "Microsoft basic data \"Basic data partition\"",
        "NTFS 3.1 label \"Windows\" state clean",
        "Windows 10 Pro (Professional) build 19045.3803, 22H2",
        "computer name:  WIN-FIXTURE01",
        "machine SID:    S-1-5-21-1111111111-2222222222-3333333333",
        "alice",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(["ls"])
        .arg(&fixture)
        .arg("/Windows")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("System32/"), "{text}");

    // The README's main job: generalize --dry-run reports and changes no byte.
    let before = std::fs::read(&fixture).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(["generalize"])
        .arg(&fixture)
        .args(["--computer-name", "CLONE-0001", "--dry-run"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(report.contains("CLONE-0001"), "{report}");
    assert!(
        std::fs::read(&fixture).unwrap() == before,
        "a dry run changed the committed fixture"
    );
    assert!(
        !fixture.with_extension("vhdx.reseal-journal").exists(),
        "a dry run left a journal beside the fixture"
    );
}
