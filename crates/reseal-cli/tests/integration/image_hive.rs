//! `reseal reg … IMAGE:HIVE`: a real SOFTWARE hive inside a VHDX, edited through the NTFS write
//! engine (including an edit that grows the hive), read back by reseal, by ntfs-3g +
//! hivexregedit, and undone byte for byte.

use crate::common;

use common::*;
use reseal_tests::*;
use std::process::Command;

#[test]
fn import_into_software_inside_a_vhdx_grows_and_undoes() {
    require_tool("hivexregedit");
    let tmp = tempfile::tempdir().unwrap();
    let software = corpus_bytes("aiowinreg/nt/software.reg").unwrap();
    let disk = tmp.path().join("disk.raw");
    let parts = DiskSpec::gpt_ntfs(
        64 << 20,
        "Windows",
        vec![Entry::File(
            "Windows/System32/config/SOFTWARE".into(),
            software.clone(),
        )],
    )
    .build(&disk)
    .unwrap();
    let image = tmp.path().join("disk.vhdx");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "vhdx"])
        .arg(&disk)
        .arg(&image))
    .unwrap();
    let original = std::fs::read(&image).unwrap();
    let target = format!("{}:SOFTWARE", image.display());

    // A small edit and one that needs ~600 KiB more hive space.
    let big: String = (0..600_000)
        .map(|i| format!("{:02x}", (i * 7) & 0xff))
        .collect::<Vec<_>>()
        .join(",");
    let reg = format!(
        "Windows Registry Editor Version 5.00\r\n\r\n\
         [HKEY_LOCAL_MACHINE\\SOFTWARE\\Reseal\\Test]\r\n\"Name\"=\"clone-0001\"\r\n\"Count\"=dword:00000007\r\n\r\n\
         [HKEY_LOCAL_MACHINE\\SOFTWARE\\Reseal\\Big]\r\n\"Blob\"=hex:{big}\r\n\r\n"
    );
    let reg_file = tmp.path().join("edits.reg");
    std::fs::write(&reg_file, utf16_reg(&reg)).unwrap();

    ok(a!(
        "reg",
        "import",
        &target,
        reg_file.to_str().unwrap(),
        "--dry-run"
    ));
    assert!(
        std::fs::read(&image).unwrap() == original,
        "--dry-run changed the image"
    );
    ok(a!("reg", "import", &target, reg_file.to_str().unwrap()));

    // reseal reads the edits back.
    let out =
        String::from_utf8(ok(a!("reg", "export", &target, "Reseal\\Test", "--utf8"))).unwrap();
    assert!(out.contains("\"Name\"=\"clone-0001\""), "{out}");
    assert!(out.contains("\"Count\"=dword:00000007"), "{out}");

    // ntfs-3g + hivexregedit read the same from the extracted hive, which grew.
    let back = tmp.path().join("back.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&image)
        .arg(&back))
    .unwrap();
    let bytes = std::fs::read(&back).unwrap();
    let vol = tmp.path().join("vol.ntfs");
    std::fs::write(
        &vol,
        &bytes[parts[0].start as usize..(parts[0].start + parts[0].size) as usize],
    )
    .unwrap();
    run(Command::new("ntfsfix").arg("-n").arg(&vol)).unwrap();
    let m = NtfsMount::new(&vol, "ro").unwrap();
    let hive = tmp.path().join("SOFTWARE");
    std::fs::copy(m.path().join("Windows/System32/config/SOFTWARE"), &hive).unwrap();
    m.unmount().unwrap();
    assert!(
        std::fs::metadata(&hive).unwrap().len() > software.len() as u64 + 500_000,
        "the hive did not grow"
    );
    let o = run(Command::new("hivexregedit")
        .args(["--export", "--prefix", "HKEY_LOCAL_MACHINE\\SOFTWARE"])
        .arg(&hive)
        .arg("\\Reseal"))
    .unwrap();
    let exported = String::from_utf8_lossy(&o.stdout);
    assert!(exported.contains("\"Count\"=dword:00000007"), "{exported}");
    assert!(
        exported.contains("[HKEY_LOCAL_MACHINE\\SOFTWARE\\Reseal\\Big]"),
        "{exported}"
    );

    ok(a!("undo", image.to_str().unwrap()));
    assert!(
        std::fs::read(&image).unwrap() == original,
        "undo did not restore the image"
    );
}

/// The same on the Windows-like fixture: SOFTWARE grows, a user's NTUSER.DAT is found by name,
/// and ntfs-3g + hivexregedit see the edits.
#[test]
fn import_into_the_windows_fixture() {
    require_tool("hivexregedit");
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("win.raw");
    reseal_tests::windows::WindowsSpec::default()
        .build(&raw)
        .unwrap();
    let image = tmp.path().join("win.vhdx");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "vhdx"])
        .arg(&raw)
        .arg(&image))
    .unwrap();
    let img = image.to_str().unwrap();

    // A user's hive by the user's name (through ProfileList).
    let out = String::from_utf8(ok(a!("reg", "ls", &format!("{img}:alice")))).unwrap();
    assert!(out.contains("Software\\"), "{out}");

    let big: String = (0..300_000)
        .map(|i| format!("{:02x}", (i * 13) & 0xff))
        .collect::<Vec<_>>()
        .join(",");
    let reg = format!(
        "Windows Registry Editor Version 5.00\r\n\r\n\
         [HKEY_LOCAL_MACHINE\\SOFTWARE\\Reseal]\r\n\"Edited\"=\"yes\"\r\n\"Blob\"=hex:{big}\r\n\r\n"
    );
    let reg_file = tmp.path().join("edits.reg");
    std::fs::write(&reg_file, utf16_reg(&reg)).unwrap();
    let target = format!("{img}:SOFTWARE");
    ok(a!("reg", "import", &target, reg_file.to_str().unwrap()));
    let out = String::from_utf8(ok(a!("reg", "get", &target, "Reseal", "Edited"))).unwrap();
    assert_eq!(out.trim(), "\"Edited\"=\"yes\"");

    // ntfs-3g + hivexregedit on the extracted hive.
    let back = tmp.path().join("back.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&image)
        .arg(&back))
    .unwrap();
    let o = run(Command::new("sfdisk").arg("--json").arg(&back)).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let last = v["partitiontable"]["partitions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let (start, size) = (
        last["start"].as_u64().unwrap() * 512,
        last["size"].as_u64().unwrap() * 512,
    );
    let bytes = std::fs::read(&back).unwrap();
    let vol = tmp.path().join("vol.ntfs");
    std::fs::write(&vol, &bytes[start as usize..(start + size) as usize]).unwrap();
    run(Command::new("ntfsfix").arg("-n").arg(&vol)).unwrap();
    let m = NtfsMount::new(&vol, "ro").unwrap();
    let hive = tmp.path().join("SOFTWARE");
    std::fs::copy(m.path().join("Windows/System32/config/SOFTWARE"), &hive).unwrap();
    m.unmount().unwrap();
    let o = run(Command::new("hivexregedit")
        .args(["--export", "--prefix", "HKEY_LOCAL_MACHINE\\SOFTWARE"])
        .arg(&hive)
        .arg("\\Reseal"))
    .unwrap();
    let exported = String::from_utf8_lossy(&o.stdout);
    assert!(
        exported.contains("\"Edited\"=hex(1):79,00,65,00,73,00,00,00"),
        "{}",
        &exported[..exported.len().min(400)]
    );
    // The fixture's facts are still there for discovery.
    let text = String::from_utf8(ok(a!("inspect", img))).unwrap();
    assert!(text.contains("WIN-FIXTURE01"), "{text}");
}

/// `reg import IMAGE FILE`: one `.reg` naming four hives (SOFTWARE also through HKCR, SYSTEM
/// through CurrentControlSet, a profile by SID and through HKCU with --user) is one change that
/// ntfs-3g + hivexget see and one `undo` reverts; a file naming a hive the image lacks and HKCU
/// without --user write nothing.
#[test]
fn import_one_reg_across_the_hives_of_an_image() {
    require_tool("hivexget");
    require_tool("ntfscat");
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("win.raw");
    let spec = reseal_tests::windows::WindowsSpec::default();
    spec.build(&raw).unwrap();
    let original = std::fs::read(&raw).unwrap();
    let img = raw.to_str().unwrap();
    let alice = format!("{}-1001", spec.machine_sid);
    let bob = format!("{}-1002", spec.machine_sid);
    let reg = format!(
        "Windows Registry Editor Version 5.00\r\n\r\n\
         [HKEY_LOCAL_MACHINE\\SOFTWARE\\Reseal]\r\n\"Edited\"=\"yes\"\r\n\r\n\
         [HKLM\\SYSTEM\\CurrentControlSet\\Services\\ResealTest]\r\n\"Start\"=dword:00000003\r\n\r\n\
         [HKEY_CLASSES_ROOT\\.reseal]\r\n@=\"Reseal.File\"\r\n\r\n\
         [HKEY_USERS\\{alice}\\Software\\Reseal]\r\n\"Who\"=\"alice\"\r\n\r\n\
         [HKEY_CURRENT_USER\\Software\\Reseal]\r\n\"Via\"=\"hkcu\"\r\n\r\n\
         [HKEY_USERS\\{bob}\\Software\\Reseal]\r\n\"Who\"=\"bob\"\r\n\r\n"
    );
    let reg_file = tmp.path().join("all.reg");
    std::fs::write(&reg_file, utf16_reg(&reg)).unwrap();
    let rf = reg_file.to_str().unwrap();

    // HKCU without --user, and a dry run: nothing written.
    let o = reseal(a!("reg", "import", img, rf));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("--user"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    ok(a!("reg", "import", "--dry-run", "--user", "alice", img, rf));
    assert!(
        std::fs::read(&raw).unwrap() == original,
        "wrote without a commit"
    );

    ok(a!("reg", "import", "--user", "alice", img, rf));
    let vol = tmp.path().join("vol.ntfs");
    spec.extract_volume(&raw, &vol).unwrap();
    let config = "/Windows/System32/config";
    let get = |hive: &str, key: &str, value: &str| hivexget_in_volume(&vol, hive, key, value);
    assert_eq!(
        get(&format!("{config}/SOFTWARE"), "\\Reseal", "Edited").as_deref(),
        Some("yes")
    );
    assert_eq!(
        get(&format!("{config}/SOFTWARE"), "\\Classes\\.reseal", "@").as_deref(),
        Some("Reseal.File")
    );
    assert_eq!(
        get(
            &format!("{config}/SYSTEM"),
            &format!(
                "\\ControlSet{:03}\\Services\\ResealTest",
                spec.current_control_set
            ),
            "Start"
        )
        .as_deref(),
        Some("3")
    );
    for (user, who) in [("alice", "alice"), ("bob", "bob")] {
        let nt = format!("/Users/{user}/NTUSER.DAT");
        assert_eq!(
            get(&nt, "\\Software\\Reseal", "Who").as_deref(),
            Some(who),
            "{nt}"
        );
    }
    assert_eq!(
        get("/Users/alice/NTUSER.DAT", "\\Software\\Reseal", "Via").as_deref(),
        Some("hkcu")
    );
    run(Command::new("ntfsfix").arg("-n").arg(&vol)).unwrap();

    // One change: one undo gives the original image back.
    let list = String::from_utf8(ok(a!("undo", "--list", img))).unwrap();
    assert!(list.contains("reg import"), "{list}");
    ok(a!("undo", img));
    assert_eq!(
        sha256_hex(&std::fs::read(&raw).unwrap()),
        sha256_hex(&original),
        "undo did not restore the image"
    );

    // A hive the image lacks: refused before anything is written.
    let missing = "Windows Registry Editor Version 5.00\r\n\r\n\
         [HKEY_LOCAL_MACHINE\\SOFTWARE\\Reseal]\r\n\"Edited\"=\"yes\"\r\n\r\n\
         [HKEY_USERS\\S-1-5-21-9-9-9-1001\\Software]\r\n\"X\"=\"y\"\r\n\r\n\
         [HKEY_LOCAL_MACHINE\\ELAM\\Reseal]\r\n\"X\"=\"y\"\r\n";
    let mf = tmp.path().join("missing.reg");
    std::fs::write(&mf, missing).unwrap();
    let o = reseal(a!("reg", "import", img, mf.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("S-1-5-21-9-9-9-1001"), "{err}");
    let elam = "Windows Registry Editor Version 5.00\r\n\r\n\
         [HKEY_LOCAL_MACHINE\\SOFTWARE\\Reseal]\r\n\"Edited\"=\"yes\"\r\n\r\n\
         [HKEY_LOCAL_MACHINE\\ELAM\\Reseal]\r\n\"X\"=\"y\"\r\n";
    std::fs::write(&mf, elam).unwrap();
    let o = reseal(a!("reg", "import", img, mf.to_str().unwrap()));
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("ELAM") && err.contains("nothing was written"),
        "{err}"
    );
    assert_eq!(
        sha256_hex(&std::fs::read(&raw).unwrap()),
        sha256_hex(&original),
        "a refused import wrote"
    );
}
