//! `reseal generalize --oobe --unattend --djoin-blob --firstboot*` end to end on the
//! Windows-like fixture, checked with independent readers: ntfs-3g's `ntfscat` for the files,
//! hivex's `hivexget` for the registry values, python's `xml.etree` for the placed answer file.
//! Bad inputs are refused with the file name and write nothing; `reseal undo` restores the image.

use reseal_tests::windows::WindowsSpec;
use reseal_tests::{hivexget_in_volume, ntfscat, require_tool, run, sha256_hex};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn reseal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(args)
        .output()
        .unwrap()
}

fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn sha(p: &Path) -> String {
    sha256_hex(&std::fs::read(p).unwrap())
}

struct Built {
    _dir: tempfile::TempDir,
    dir: PathBuf,
    raw: PathBuf,
    spec: WindowsSpec,
}

fn build() -> Built {
    require_tool("ntfscat");
    require_tool("hivexget");
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    let spec = WindowsSpec::default();
    spec.build(&raw).unwrap();
    Built {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        raw,
        spec,
    }
}

impl Built {
    fn file(&self, name: &str, data: &[u8]) -> String {
        let p = self.dir.join(name);
        std::fs::write(&p, data).unwrap();
        p.display().to_string()
    }

    /// The Windows volume as a bare file for ntfs-3g.
    fn volume(&self) -> PathBuf {
        let v = self.dir.join("vol.img");
        let _ = std::fs::remove_file(&v);
        self.spec.extract_volume(&self.raw, &v).unwrap();
        v
    }
}

/// `hivexget` of a value in a `config` hive of the volume (read with ntfscat).
fn hivexget(vol: &Path, hive: &str, key: &str, value: &str) -> Option<String> {
    hivexget_in_volume(vol, &format!("/Windows/System32/config/{hive}"), key, value)
}

/// UTF-16LE with BOM and a final NUL, as `djoin /provision /savefile` writes its blob.
fn utf16_blob(b64: &str) -> Vec<u8> {
    let mut v = vec![0xff, 0xfe];
    for c in format!("{b64}\0").encode_utf16() {
        v.extend_from_slice(&c.to_le_bytes());
    }
    v
}

const BLOB: &str =
    "ARAIAMzMzMxIBgAAAAAAAAAAAgABAAAAAQAAAAQAAgABAAAAAQAAACAGAAAABAACIAYAAAEQCADMzMzM";

const UNATTEND: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<unattend xmlns="urn:schemas-microsoft-com:unattend">
  <settings pass="specialize">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS" xmlns:wcm="http://schemas.microsoft.com/WMIConfig/2002/State">
      <ComputerName>RESEAL-OOBE</ComputerName>
    </component>
  </settings>
  <settings pass="oobeSystem">
    <component name="Microsoft-Windows-Shell-Setup" processorArchitecture="amd64" publicKeyToken="31bf3856ad364e35" language="neutral" versionScope="nonSxS">
      <OOBE><HideEULAPage>true</HideEULAPage></OOBE>
    </component>
  </settings>
</unattend>
"#;

/// Python's own XML parser reads the placed answer file: the user's settings and the blob.
const CHECK_XML: &str = r#"
import sys, xml.etree.ElementTree as ET
ns = {"u": "urn:schemas-microsoft-com:unattend"}
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == "{urn:schemas-microsoft-com:unattend}unattend", root.tag
spec = [s for s in root.findall("u:settings", ns) if s.get("pass") == "specialize"]
assert len(spec) == 1, len(spec)
names = [c.get("name") for c in spec[0].findall("u:component", ns)]
assert names == ["Microsoft-Windows-Shell-Setup", "Microsoft-Windows-UnattendedJoin"], names
assert spec[0].find("u:component/u:ComputerName", ns).text == "RESEAL-OOBE"
join = spec[0].findall("u:component", ns)[1]
assert join.get("processorArchitecture") == "arm64", join.attrib
assert join.get("publicKeyToken") == "31bf3856ad364e35"
assert join.get("language") == "neutral" and join.get("versionScope") == "nonSxS"
data = join.find("u:Identification/u:Provisioning/u:AccountData", ns).text
assert data == sys.argv[2], data
oobe = [s for s in root.findall("u:settings", ns) if s.get("pass") == "oobeSystem"]
assert oobe[0].find("u:component/u:OOBE/u:HideEULAPage", ns).text == "true"
print("ok")
"#;

#[test]
fn oobe_places_state_answer_file_blob_and_setupcomplete() {
    let b = build();
    let raw = b.raw.display().to_string();
    // The image already has a SetupComplete.cmd: it must be kept and still run.
    let own = b.file("own.cmd", b"@echo off\r\necho the image's own\r\n");
    ok(reseal(&[
        "mkdir",
        "--parents",
        &raw,
        "/Windows/Setup/Scripts",
    ]));
    ok(reseal(&[
        "put",
        &raw,
        &own,
        "/Windows/Setup/Scripts/SetupComplete.cmd",
    ]));
    // A cached answer file from the golden machine is replaced.
    let cached = b.file("cached.xml", b"<unattend/>");
    ok(reseal(&[
        "put",
        &raw,
        &cached,
        "/Windows/Panther/unattend.xml",
    ]));
    let before = sha(&b.raw);

    let u = b.file("my unattend.xml", UNATTEND.as_bytes());
    let blob = b.file("odj.txt", &utf16_blob(BLOB));
    let script = b.file("setup.cmd", b"@echo off\r\necho from the file\r\n");
    let dry = ok(reseal(&[
        "generalize",
        &raw,
        "--dry-run",
        "--oobe",
        "--unattend",
        &u,
        "--djoin-blob",
        &blob,
        "--firstboot-command",
        "echo one",
        "--firstboot",
        &script,
    ]));
    assert_eq!(sha(&b.raw), before, "--dry-run wrote");
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(text.contains("[provision] provisioning:"), "{text}");
    // setup-logs deletes the cached copy (zeroed), then provision writes the new one.
    assert!(
        text.contains("file /Windows/Panther/unattend.xml deleted"),
        "{text}"
    );
    assert!(
        text.contains("file /Windows/Panther/unattend.xml written"),
        "{text}"
    );
    assert!(
        !text.contains(BLOB),
        "the blob (a machine password) is not printed"
    );

    let out = ok(reseal(&[
        "generalize",
        &raw,
        "--json",
        "--oobe",
        "--unattend",
        &u,
        "--djoin-blob",
        &blob,
        "--firstboot-command",
        "echo one",
        "--firstboot",
        &script,
    ]));
    let rep: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let prov: Vec<&serde_json::Value> = rep["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["operation"] == "provision")
        .collect();
    let has = |kind: &str, key: &str, want: &str| {
        prov.iter().any(|c| {
            c["kind"] == kind
                && c[key]
                    .as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(want))
        })
    };
    for p in [
        "/Windows/Panther/unattend.xml",
        "/Windows/Setup/State/State.ini",
        "/Windows/Setup/Scripts/SetupComplete.cmd",
        "/Windows/Setup/Scripts/reseal-firstboot.cmd",
        "/Windows/Setup/Scripts/reseal-firstboot/01-command.cmd",
        "/Windows/Setup/Scripts/reseal-firstboot/02-setup.cmd",
    ] {
        assert!(has("file_written", "path", p), "{p} not reported: {prov:?}");
    }
    for v in [
        "CmdLine",
        "SetupType",
        "SystemSetupInProgress",
        "UnattendFile",
        "ImageState",
        "setup.exe",
    ] {
        assert!(has("value_set", "value", v), "{v} not reported");
    }
    assert!(has(
        "file_moved",
        "new",
        "/Windows/Setup/Scripts/SetupComplete-before-reseal.cmd"
    ));

    let vol = b.volume();
    let g = |hive, key, value| hivexget(&vol, hive, key, value);
    assert_eq!(
        g("SYSTEM", "\\Setup", "CmdLine").as_deref(),
        Some("oobe\\windeploy.exe")
    );
    assert_eq!(g("SYSTEM", "\\Setup", "SetupType").as_deref(), Some("1"));
    assert_eq!(
        g("SYSTEM", "\\Setup", "SystemSetupInProgress").as_deref(),
        Some("1")
    );
    assert_eq!(
        g("SYSTEM", "\\Setup\\Status\\ChildCompletion", "setup.exe").as_deref(),
        Some("1")
    );
    assert_eq!(
        g("SYSTEM", "\\Setup", "UnattendFile").as_deref(),
        Some("C:\\Windows\\Panther\\unattend.xml")
    );
    assert_eq!(
        g(
            "SOFTWARE",
            "\\Microsoft\\Windows\\CurrentVersion\\Setup\\State",
            "ImageState"
        )
        .as_deref(),
        Some("IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE")
    );
    let ini = ntfscat(&vol, "/Windows/Setup/State/State.ini").unwrap();
    assert_eq!(
        ini,
        b"[State]\r\nImageState=IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE\r\n"
    );

    let xml = b.dir.join("placed.xml");
    std::fs::write(
        &xml,
        ntfscat(&vol, "/Windows/Panther/unattend.xml").unwrap(),
    )
    .unwrap();
    let o = run(Command::new("python3")
        .arg("-c")
        .arg(CHECK_XML)
        .arg(&xml)
        .arg(BLOB))
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&o.stdout).trim(), "ok");

    let sc = String::from_utf8(ntfscat(&vol, "/Windows/Setup/Scripts/SetupComplete.cmd").unwrap())
        .unwrap();
    let kept = ntfscat(
        &vol,
        "/Windows/Setup/Scripts/SetupComplete-before-reseal.cmd",
    )
    .unwrap();
    assert_eq!(kept, b"@echo off\r\necho the image's own\r\n");
    let a = sc
        .find("call \"C:\\Windows\\Setup\\Scripts\\SetupComplete-before-reseal.cmd\"")
        .expect(&sc);
    let w = sc
        .find("call \"C:\\Windows\\Setup\\Scripts\\reseal-firstboot.cmd\"")
        .expect(&sc);
    assert!(a < w, "{sc}");
    let wrapper =
        String::from_utf8(ntfscat(&vol, "/Windows/Setup/Scripts/reseal-firstboot.cmd").unwrap())
            .unwrap();
    for s in [&sc, &wrapper] {
        assert!(
            !s.replace("\r\n", "").contains('\n'),
            "CRLF line ends: {s:?}"
        );
    }
    let c1 = wrapper.find("reseal-firstboot\\01-command.cmd").unwrap();
    let c2 = wrapper.find("reseal-firstboot\\02-setup.cmd").unwrap();
    assert!(c1 < c2, "items in command-line order: {wrapper}");
    assert!(wrapper.contains(">>\"C:\\Windows\\Setup\\Scripts\\reseal-firstboot.log\" 2>&1"));
    // The redirection comes first: `… exit code 1>>log` would redirect handle 1.
    assert!(wrapper.contains(
        ">>\"C:\\Windows\\Setup\\Scripts\\reseal-firstboot.log\" echo [%DATE% %TIME%] \
         01-command.cmd: exit code %ERRORLEVEL%\r\n"
    ));
    assert!(
        !wrapper.contains("SetupType"),
        "Setup resets SetupType itself with --oobe"
    );
    let cmd1 = ntfscat(
        &vol,
        "/Windows/Setup/Scripts/reseal-firstboot/01-command.cmd",
    )
    .unwrap();
    assert!(String::from_utf8_lossy(&cmd1).ends_with("echo one\r\n"));
    assert_eq!(
        ntfscat(&vol, "/Windows/Setup/Scripts/reseal-firstboot/02-setup.cmd").unwrap(),
        b"@echo off\r\necho from the file\r\n"
    );
    // ntfs-3g agrees the volume is consistent.
    run(Command::new("ntfsfix").arg("-n").arg(&vol)).unwrap();

    ok(reseal(&["undo", &raw]));
    assert_eq!(sha(&b.raw), before, "undo restores the image");
}

#[test]
fn bad_inputs_are_refused_before_anything_is_written() {
    let b = build();
    let raw = b.raw.display().to_string();
    let before = sha(&b.raw);
    let good = b.file("good.xml", UNATTEND.as_bytes());
    let cases: Vec<(Vec<String>, &str, Option<i32>)> = vec![
        (
            vec!["--oobe".into(), "--unattend".into(), b.file("broken.xml", b"<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n<settings pass=\"specialize\">\n</unattend>")],
            "broken.xml",
            None,
        ),
        (
            vec!["--oobe".into(), "--unattend".into(), b.file("other.xml", b"<?xml version=\"1.0\"?><project><a/></project>")],
            "other.xml",
            None,
        ),
        (
            vec!["--oobe".into(), "--unattend".into(), b.file("pass.xml", b"<unattend xmlns=\"urn:schemas-microsoft-com:unattend\"><settings pass=\"firstLogon\"/></unattend>")],
            "pass.xml",
            None,
        ),
        (
            vec!["--oobe".into(), "--unattend".into(), good.clone(), "--djoin-blob".into(), b.file("blob.bin", b"this is %% not base64!")],
            "blob.bin",
            None,
        ),
        (
            vec!["--djoin-blob".into(), b.file("blob2.txt", BLOB.as_bytes())],
            "--oobe",
            Some(2),
        ),
        (
            vec!["--firstboot".into(), b.file("notes.txt", b"hello")],
            "notes.txt",
            None,
        ),
    ];
    for (args, want, code) in cases {
        let mut a = vec!["generalize".to_string(), raw.clone()];
        a.extend(args);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let o = reseal(&a);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success(), "{a:?} succeeded");
        if let Some(c) = code {
            assert_eq!(o.status.code(), Some(c), "{a:?}: {err}");
        }
        assert!(err.contains(want), "{a:?}: {err}");
        assert_eq!(sha(&b.raw), before, "{a:?} wrote");
    }
    // The parse error carries its place.
    let o = reseal(&[
        "generalize",
        &raw,
        "--oobe",
        "--unattend",
        &b.dir.join("broken.xml").display().to_string(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn firstboot_without_oobe_uses_setuptype_2() {
    let b = build();
    let raw = b.raw.display().to_string();
    let before = sha(&b.raw);
    let ps = b.file("config.ps1", b"Write-Output hello\r\n");
    let out = ok(reseal(&[
        "generalize",
        &raw,
        "--operations",
        "provision",
        "--firstboot",
        &ps,
        "--firstboot-command",
        "ipconfig /all",
    ]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("no answer file placed"), "{text}");
    let vol = b.volume();
    let g = |hive, key, value| hivexget(&vol, hive, key, value);
    assert_eq!(g("SYSTEM", "\\Setup", "SetupType").as_deref(), Some("2"));
    assert_eq!(
        g("SYSTEM", "\\Setup", "CmdLine").as_deref(),
        Some("cmd.exe /c C:\\Windows\\Setup\\Scripts\\reseal-firstboot.cmd")
    );
    assert_eq!(g("SYSTEM", "\\Setup", "SystemSetupInProgress"), None);
    assert_eq!(
        g(
            "SOFTWARE",
            "\\Microsoft\\Windows\\CurrentVersion\\Setup\\State",
            "ImageState"
        ),
        None,
        "not generalized: no image state"
    );
    assert!(ntfscat(&vol, "/Windows/Setup/Scripts/SetupComplete.cmd").is_none());
    assert!(ntfscat(&vol, "/Windows/Panther/unattend.xml").is_none());
    let w =
        String::from_utf8(ntfscat(&vol, "/Windows/Setup/Scripts/reseal-firstboot.cmd").unwrap())
            .unwrap();
    let p = w
        .find("powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File \"C:\\Windows\\Setup\\Scripts\\reseal-firstboot\\01-config.ps1\"")
        .expect(&w);
    let c = w.find("reseal-firstboot\\02-command.cmd").expect(&w);
    assert!(p < c);
    // It runs once: the marker, then SetupType and CmdLine put back.
    let done = w
        .find(">\"C:\\Windows\\Setup\\Scripts\\reseal-firstboot.done\" echo done")
        .unwrap();
    let reset = w
        .find("reg.exe add HKLM\\SYSTEM\\Setup /v SetupType /t REG_DWORD /d 0 /f")
        .unwrap();
    assert!(
        done < reset && w.contains("/v CmdLine /t REG_SZ /d \"\" /f"),
        "{w}"
    );
    assert!(w.contains("if exist \"C:\\Windows\\Setup\\Scripts\\reseal-firstboot.done\" goto :end"));
    assert_eq!(
        ntfscat(
            &vol,
            "/Windows/Setup/Scripts/reseal-firstboot/01-config.ps1"
        )
        .unwrap(),
        b"Write-Output hello\r\n"
    );
    // The new files inherit their folder's descriptor (as `put` does): ntfs-3g reads them.
    let sd = ok(reseal(&[
        "getsd",
        &raw,
        "/Windows/Setup/Scripts/reseal-firstboot.cmd",
    ]));
    assert!(String::from_utf8_lossy(&sd.stdout).contains("D:"), "a DACL");
    ok(reseal(&["undo", &raw]));
    assert_eq!(sha(&b.raw), before);
}
