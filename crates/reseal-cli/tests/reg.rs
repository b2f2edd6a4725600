//! `reseal reg` on hive files from the corpus: edits are seen by hivex, `--dry-run` writes
//! nothing, `reseal undo` restores the file byte for byte, and export/import round-trip.

use reseal_tests::*;
use std::path::Path;
use std::process::Command;

fn reseal(args: &[&str], hive: &Path) -> std::process::Output {
    // The hive path goes where "{}" stands.
    let mut c = Command::new(env!("CARGO_BIN_EXE_reseal"));
    for a in args {
        if *a == "{}" {
            c.arg(hive);
        } else {
            c.arg(a);
        }
    }
    c.output().unwrap()
}

fn ok(o: std::process::Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn hivexsh(hive: &Path, script: &str) -> String {
    let mut c = Command::new("hivexsh");
    c.arg(hive)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn set_dry_run_undo_on_a_real_system_hive() {
    require_tool("hivexsh");
    let tmp = tempfile::tempdir().unwrap();
    let hive = corpus_file("regipy/SYSTEM.xz", tmp.path()).unwrap();
    let before = std::fs::read(&hive).unwrap();
    let key = r"ControlSet001\Control\ComputerName\ComputerName";

    let got = ok(reseal(&["reg", "get", "{}", key, "ComputerName"], &hive));
    assert_eq!(got.trim(), "\"ComputerName\"=\"WKS-WIN732BITA\"");

    ok(reseal(
        &[
            "reg",
            "set",
            "{}",
            key,
            "ComputerName",
            "CLONE-0001",
            "--dry-run",
        ],
        &hive,
    ));
    assert!(
        std::fs::read(&hive).unwrap() == before,
        "--dry-run changed the hive"
    );

    // A longer value than the old one needs a new cell.
    let name = "A-MUCH-LONGER-NAME-THAN-BEFORE-1234567890";
    ok(reseal(
        &["reg", "set", "{}", key, "ComputerName", name],
        &hive,
    ));
    ok(reseal(
        &[
            "reg",
            "set",
            "{}",
            r"Software\Reseal\Test",
            "Count",
            "--type",
            "dword",
            "0x2a",
        ],
        &hive,
    ));
    let out = hivexsh(
        &hive,
        &format!("cd {key}\nlsval ComputerName\ncd \\Software\\Reseal\\Test\nlsval Count\n"),
    );
    assert!(out.contains(name), "hivexsh sees: {out}");
    assert!(
        out.contains("42") || out.contains("2a"),
        "hivexsh sees: {out}"
    );
    let check = ok(reseal(&["reg", "check", "{}"], &hive));
    assert!(check.contains("(0 errors)"), "{check}");

    // Two operations, two undos, back to the original bytes.
    ok(reseal(&["undo", "{}"], &hive));
    ok(reseal(&["undo", "{}"], &hive));
    assert!(
        std::fs::read(&hive).unwrap() == before,
        "undo did not restore the hive"
    );
}

#[test]
fn export_import_round_trip_through_hivex() {
    require_tool("hivexregedit");
    let tmp = tempfile::tempdir().unwrap();
    let hive = corpus_file("regipy/SYSTEM.xz", tmp.path()).unwrap();
    let reg_file = tmp.path().join("edit.reg");
    let text = "Windows Registry Editor Version 5.00\r\n\r\n\
        [HKEY_LOCAL_MACHINE\\SYSTEM\\Reseal]\r\n\
        \"Str\"=\"h\u{e9}llo\"\r\n\
        \"Dw\"=dword:0000002a\r\n\
        \"Bin\"=hex:01,02,03\r\n\
        \"Multi\"=hex(7):61,00,00,00,62,00,00,00,00,00\r\n\r\n\
        [-HKEY_LOCAL_MACHINE\\SYSTEM\\RNG]\r\n\r\n";
    let mut bytes = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    std::fs::write(&reg_file, &bytes).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_reseal"));
    let o = c
        .args(["reg", "import"])
        .arg(&hive)
        .arg(&reg_file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));

    // hivex sees the new key and values, and the deleted key is gone.
    let o = run(Command::new("hivexregedit")
        .args(["--export", "--prefix", "HKEY_LOCAL_MACHINE\\SYSTEM"])
        .arg(&hive)
        .arg("\\Reseal"))
    .unwrap();
    let exported = String::from_utf8_lossy(&o.stdout);
    assert!(exported.contains("\"Dw\"=dword:0000002a"), "{exported}");
    // hivexregedit writes REG_BINARY as hex(3):
    assert!(exported.contains("\"Bin\"=hex(3):01,02,03"), "{exported}");
    assert!(
        exported.contains("\"Str\"=hex(1):68,00,e9,00,6c,00,6c,00,6f,00,00,00"),
        "{exported}"
    );
    let out = hivexsh(&hive, "cd \\RNG\n");
    assert!(
        out.contains("not found") || out.is_empty(),
        "RNG still there: {out}"
    );

    // Our export of the key, imported into a fresh copy, gives the same export again.
    let out = tmp.path().join("reseal.reg");
    let mut c = Command::new(env!("CARGO_BIN_EXE_reseal"));
    let o = c
        .args(["reg", "export"])
        .arg(&hive)
        .arg("Reseal")
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let exported = std::fs::read(&out).unwrap();
    assert_eq!(
        &exported[..2],
        &[0xFF, 0xFE],
        "export is UTF-16LE with a BOM"
    );
    let fresh = tmp.path().join("fresh");
    std::fs::create_dir(&fresh).unwrap();
    let hive2 = corpus_file("regipy/SYSTEM.xz", &fresh).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_reseal"));
    let o = c
        .args(["reg", "import"])
        .arg(&hive2)
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let again = tmp.path().join("again.reg");
    let mut c = Command::new(env!("CARGO_BIN_EXE_reseal"));
    let o = c
        .args(["reg", "export"])
        .arg(&hive2)
        .arg("Reseal")
        .arg("-o")
        .arg(&again)
        .output()
        .unwrap();
    assert!(o.status.success());
    assert!(
        std::fs::read(&again).unwrap() == exported,
        "re-export differs"
    );
}

#[test]
fn an_edit_invalidates_the_logs_beside_the_hive() {
    let tmp = tempfile::tempdir().unwrap();
    let hive = tmp.path().join("NTUSER.DAT");
    std::fs::write(&hive, corpus_bytes("plaso/regf/NTUSER.DAT").unwrap()).unwrap();
    let log = tmp.path().join("NTUSER.DAT.LOG");
    std::fs::write(&log, corpus_bytes("winreg-kb/NTUSER.DAT.LOG").unwrap()).unwrap();
    assert!(std::fs::metadata(&log).unwrap().len() > 0);
    ok(reseal(
        &["reg", "set", "{}", r"Software\Reseal", "X", "y"],
        &hive,
    ));
    let head = std::fs::read(&log).unwrap();
    assert!(
        head[..512].iter().all(|&b| b == 0),
        "the stale log was left valid"
    );
    let out = hivexsh(&hive, "cd \\Software\\Reseal\nlsval\n");
    assert!(out.contains("\"X\"=\"y\""), "{out}");
    // Undo of the log emptying, then of the edit.
    ok(reseal(&["undo", "{}"], &log));
    assert!(std::fs::read(&log).unwrap() == corpus_bytes("winreg-kb/NTUSER.DAT.LOG").unwrap());
    ok(reseal(&["undo", "{}"], &hive));
    assert!(std::fs::read(&hive).unwrap() == corpus_bytes("plaso/regf/NTUSER.DAT").unwrap());
}

/// A dirty hive without logs (the corpus SECURITY): read-only commands read the primary as it
/// is with a warning, as hivex does; a write still refuses it and changes nothing.
#[test]
fn dirty_hive_without_logs_reads_with_a_warning_and_refuses_writes() {
    require_tool("hivexsh");
    let tmp = tempfile::tempdir().unwrap();
    let hive = tmp.path().join("SECURITY");
    std::fs::write(&hive, corpus_bytes("regipy/SECURITY.xz").unwrap()).unwrap();
    let before = std::fs::read(&hive).unwrap();
    let o = reseal(&["reg", "ls", "{}", ""], &hive);
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("warning") && err.contains("dirty"), "{err}");
    let ls = ok(o);
    let hx = hivexsh(&hive, "ls\n");
    let ours: Vec<String> = ls.lines().map(|l| l.trim_end_matches('\\').to_string()).collect();
    let theirs: Vec<String> = hx.lines().map(str::to_string).collect();
    assert_eq!(ours, theirs);
    let exported = ok(reseal(&["reg", "export", "{}", "--utf8"], &hive));
    assert!(exported.contains("[HKEY_LOCAL_MACHINE\\SECURITY\\Policy]"), "{exported:.400}");
    let o = reseal(&["reg", "set", "{}", "Policy", "X", "y"], &hive);
    assert!(!o.status.success(), "a write to a dirty hive without logs succeeded");
    assert!(std::fs::read(&hive).unwrap() == before, "the refused write changed the file");
}
