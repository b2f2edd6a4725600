//! NTFS write commands through the CLI, checked by ntfs-3g: `--dry-run` changes no byte, every
//! command's result is what ntfs-3g reads, `reseal undo` restores the image byte for byte, and a
//! hibernated volume is refused unless forced.

use crate::common;

use common::*;
use reseal_tests::*;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A GPT disk (raw) with one NTFS partition; returns (disk, partition start, size).
fn disk(dir: &Path, entries: Vec<Entry>) -> (PathBuf, u64, u64) {
    let disk = dir.join("disk.raw");
    let parts = DiskSpec::gpt_ntfs(64 << 20, "W", entries)
        .build(&disk)
        .unwrap();
    (disk, parts[0].start, parts[0].size)
}

/// The NTFS partition of `disk` as a separate file, for ntfs-3g.
fn extract(disk: &Path, start: u64, size: u64, out: &Path) {
    let bytes = std::fs::read(disk).unwrap();
    std::fs::write(out, &bytes[start as usize..(start + size) as usize]).unwrap();
}

#[test]
fn put_mkdir_mv_rm_dry_run_and_undo_in_a_vhdx() {
    require_tool("qemu-img");
    let tmp = tempfile::tempdir().unwrap();
    let (raw, start, size) = disk(
        tmp.path(),
        vec![Entry::File("Windows/old.txt".into(), b"old".to_vec())],
    );
    let image = tmp.path().join("disk.vhdx");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "vhdx"])
        .arg(&raw)
        .arg(&image))
    .unwrap();
    let original = std::fs::read(&image).unwrap();
    let img = image.to_str().unwrap();

    let local = tmp.path().join("payload.bin");
    let payload = pseudo_random(9, 300_000);
    std::fs::write(&local, &payload).unwrap();
    let local_s = local.to_str().unwrap();

    ok_text(a!("put", img, local_s, "/Windows/payload.bin", "--dry-run"));
    ok_text(a!("mkdir", img, "/Dry", "--dry-run"));
    assert!(
        std::fs::read(&image).unwrap() == original,
        "a dry run changed the image"
    );

    ok_text(a!("put", img, local_s, "/Windows/payload.bin"));
    ok_text(a!("mkdir", img, "/Users"));
    ok_text(a!("mkdir", img, "/Users/Ünïcode"));
    ok_text(a!(
        "mv",
        img,
        "/Windows/payload.bin",
        "/Users/Ünïcode/moved.bin"
    ));
    ok_text(a!("rm", img, "/Windows/old.txt"));
    let sddl = "O:SYG:SYD:PAI(A;;FA;;;SY)(A;;0x1200a9;;;S-1-5-21-1-2-3-1001)";
    ok_text(a!("setsd", img, "/Users/Ünïcode/moved.bin", sddl));
    assert_eq!(
        ok_text(a!("getsd", img, "/Users/Ünïcode/moved.bin")).trim(),
        sddl
    );
    let long = ok_text(a!("ls", "-l", img, "/Users/Ünïcode"));
    assert!(
        long.contains(" SY ") && long.contains("moved.bin"),
        "{long}"
    );
    let hex = ok_text(a!("getsd", "--hex", img, "/Users/Ünïcode/moved.bin"));
    run(Command::new("qemu-img").args(["check", "-q"]).arg(&image)).unwrap();

    // ntfs-3g's view.
    let back = tmp.path().join("back.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&image)
        .arg(&back))
    .unwrap();
    let vol = tmp.path().join("vol.ntfs");
    extract(&back, start, size, &vol);
    run(Command::new("ntfsfix").arg("-n").arg(&vol)).unwrap();
    let m = NtfsMount::new(&vol, "ro").unwrap();
    assert!(
        std::fs::read(m.path().join("Users/Ünïcode/moved.bin")).unwrap() == payload,
        "content differs"
    );
    assert!(!m.path().join("Windows/payload.bin").exists());
    assert!(!m.path().join("Windows/old.txt").exists());
    assert!(!m.path().join("Dry").exists());
    let acl = run(Command::new("getfattr")
        .args(["-n", "system.ntfs_acl", "-e", "hex", "--only-values"])
        .arg(m.path().join("Users/Ünïcode/moved.bin")))
    .unwrap();
    let acl_hex: String = acl.stdout.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(acl_hex, hex.trim(), "ntfs-3g reads another descriptor");
    m.unmount().unwrap();
    ntfssecaudit_clean(&vol).unwrap();

    // put, mkdir, mkdir, mv, rm, setsd: six operations, six undos.
    for _ in 0..6 {
        ok_text(a!("undo", img));
    }
    assert!(
        std::fs::read(&image).unwrap() == original,
        "undo did not restore the image"
    );
    let o = reseal(a!("undo", img));
    assert!(
        !o.status.success(),
        "a seventh undo must fail: nothing left to undo"
    );
}

#[test]
fn hibernated_volume_is_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let mut hiber = b"HIBR".to_vec();
    hiber.resize(8192, 0);
    let (raw, _, _) = disk(tmp.path(), vec![Entry::File("hiberfil.sys".into(), hiber)]);
    let before = std::fs::read(&raw).unwrap();
    let img = raw.to_str().unwrap();
    let o = reseal(a!("mkdir", img, "/X"));
    assert_eq!(o.status.code(), Some(3), "a refusal exits 3");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("hibernated"), "{err}");
    assert!(
        std::fs::read(&raw).unwrap() == before,
        "a refused write changed the image"
    );
    let text = ok_text(a!("inspect", img));
    assert!(text.contains("hibernated"), "{text}");
    ok_text(a!("mkdir", img, "/X", "--force"));
    assert!(ok_text(a!("ls", img, "/")).contains("X/"));
}

/// Dirty, hibernated and Fast-Startup volumes (the fixture variants, whose states ntfs-3g itself
/// refuses) are refused by every write command with a clear message and no byte written;
/// `--force` writes.
#[test]
fn unsafe_volume_states_are_refused_unless_forced() {
    let tmp = tempfile::tempdir().unwrap();
    let variants = reseal_tests::windows::variants();
    for (name, want) in [
        ("win-dirty-volume", "dirty"),
        ("win-hibernated", "hibernated"),
        ("win-fast-startup", "Fast Startup"),
    ] {
        let spec = &variants
            .iter()
            .find(|(n, _)| *n == name)
            .expect("variant")
            .1;
        let raw = tmp.path().join(format!("{name}.raw"));
        spec.build(&raw).unwrap();
        let before = std::fs::read(&raw).unwrap();
        let img = raw.to_str().unwrap();
        for args in [
            &["mkdir", img, "/X"][..],
            &["setsd", img, "/Windows", "O:BAG:SYD:(A;;FA;;;SY)"][..],
            &["reg", "set", &format!("{img}:SOFTWARE"), "Reseal", "X", "y"][..],
        ] {
            let o = reseal(&args.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>());
            assert!(!o.status.success(), "{name}: {args:?} was not refused");
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains(want), "{name}: {args:?}: {err}");
            assert!(
                std::fs::read(&raw).unwrap() == before,
                "{name}: a refused write changed the image"
            );
        }
        ok_text(a!("mkdir", img, "/Forced", "--force"));
        assert!(
            ok_text(a!("ls", img, "/")).contains("Forced/"),
            "{name}: forced mkdir missing"
        );
    }
}

/// C:\Users as Windows 10/11 ship it (owner SYSTEM, protected explicit ACL).
const USERS_SDDL: &str =
    "O:SYG:SYD:PAI(D;;CC;;;WD)(A;OICIIO;GA;;;CO)(A;OICIIO;GA;;;SY)(A;;FA;;;SY)\
    (A;OICIIO;GA;;;BA)(A;;FA;;;BA)(A;OICIIO;GXGR;;;BU)(A;;0x1200a9;;;BU)(A;OICIIO;GXGR;;;WD)\
    (A;;0x1200a9;;;WD)";
/// What Windows gives a file created in it: the OI ACEs, effective, generic rights mapped,
/// CREATOR OWNER replaced by the owner (here the parent's: there is no creator token).
const USERS_FILE: &str = "O:SYG:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;SY)(A;ID;FA;;;BA)\
    (A;ID;0x1200a9;;;BU)(A;ID;0x1200a9;;;WD)";
/// ... and a directory: each generic / CREATOR OWNER ACE split into an effective ACE and an
/// inherit-only one passed on unmapped.
const USERS_DIR: &str = "O:SYG:SYD:AI(A;ID;FA;;;SY)(A;OICIIOID;GA;;;CO)(A;ID;FA;;;SY)\
    (A;OICIIOID;GA;;;SY)(A;ID;FA;;;BA)(A;OICIIOID;GA;;;BA)(A;ID;0x1200a9;;;BU)\
    (A;OICIIOID;GXGR;;;BU)(A;ID;0x1200a9;;;WD)(A;OICIIOID;GXGR;;;WD)";

/// The `Security ID` ntfsinfo prints for `path` of the bare volume `vol`.
fn ntfsinfo_security_id(vol: &Path, path: &str) -> u64 {
    let o = run(Command::new("ntfsinfo").arg("-F").arg(path).arg(vol)).unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("Security ID:"))
        .unwrap_or_else(|| panic!("ntfsinfo -F {path}: no Security ID line:\n{text}"));
    let v = line.split_whitespace().nth(2).expect("a number");
    v.parse().unwrap_or_else(|_| panic!("{line}"))
}

/// `put` and `mkdir` give new entries the descriptor Windows computes from the parent's
/// inheritable ACEs: ntfsinfo shows a security id, ntfssecaudit finds no error, and the
/// descriptor ntfs-3g reads for each new entry is the expected one, every ACE flagged inherited.
#[test]
fn put_and_mkdir_inherit_the_parent_descriptor() {
    require_tool("ntfsinfo");
    require_tool("getfattr");
    let tmp = tempfile::tempdir().unwrap();
    let (raw, start, size) = disk(
        tmp.path(),
        vec![
            Entry::Dir("Users".into()),
            Entry::Acl(
                "Users".into(),
                reseal_tests::windows::sd_bytes(USERS_SDDL).unwrap(),
            ),
        ],
    );
    let img = raw.to_str().unwrap();
    let local = tmp.path().join("payload.txt");
    std::fs::write(&local, b"hello").unwrap();
    let local_s = local.to_str().unwrap();
    ok_text(a!("put", img, local_s, "/Users/new.txt"));
    ok_text(a!("mkdir", img, "/Users/NewDir"));
    ok_text(a!("put", img, local_s, "/Users/NewDir/deeper.txt"));
    ok_text(a!("mkdir", "--parents", img, "/Users/NewDir/a/b"));
    let want = [
        ("/Users/new.txt", USERS_FILE),
        ("/Users/NewDir", USERS_DIR),
        // Second generation: the directory passes the same ACEs on.
        ("/Users/NewDir/deeper.txt", USERS_FILE),
        ("/Users/NewDir/a/b", USERS_DIR),
    ];
    for (p, sddl) in want {
        assert_eq!(ok_text(a!("getsd", img, p)).trim(), sddl, "getsd {p}");
    }

    let vol = tmp.path().join("vol.ntfs");
    extract(&raw, start, size, &vol);
    let mut ids = Vec::new();
    for (p, _) in want {
        let id = ntfsinfo_security_id(&vol, p);
        assert!(id >= 0x100, "{p}: Security ID {id}");
        ids.push(id);
    }
    // Identical descriptors share one $Secure entry (found through $SDH).
    assert_eq!(ids[0], ids[2], "two files, one descriptor, one id");
    assert_eq!(ids[1], ids[3], "two directories, one descriptor, one id");
    assert_ne!(ids[0], ids[1]);
    ntfssecaudit_clean(&vol).unwrap();
    run(Command::new("ntfsfix").arg("-n").arg(&vol)).unwrap();

    let m = NtfsMount::new(&vol, "ro").unwrap();
    for (p, sddl) in want {
        let o = run(Command::new("getfattr")
            .args(["-n", "system.ntfs_acl", "-e", "hex", "--only-values"])
            .arg(m.path().join(&p[1..])))
        .unwrap();
        let sd = reseal_security::SecurityDescriptor::parse(&o.stdout)
            .unwrap_or_else(|e| panic!("{p}: ntfs-3g's system.ntfs_acl does not parse: {e}"));
        assert_eq!(sd.to_sddl().unwrap(), sddl, "{p} as ntfs-3g reads it");
        let dacl = sd.dacl.as_ref().expect("a DACL");
        assert!(
            dacl.aces
                .iter()
                .all(|a| a.flags().0 & reseal_security::AceFlags::INHERITED != 0),
            "{p}: an ACE is not flagged inherited"
        );
        assert!(sd
            .control
            .has(reseal_security::Control::DACL_AUTO_INHERITED));
    }
    m.unmount().unwrap();
}

/// Names Windows cannot open are refused by put, mkdir and mv, the message naming the rule, and
/// nothing is written.
#[test]
fn names_windows_cannot_open_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, _, _) = disk(
        tmp.path(),
        vec![Entry::File("Windows/old.txt".into(), b"old".to_vec())],
    );
    let before = std::fs::read(&raw).unwrap();
    let img = raw.to_str().unwrap();
    let local = tmp.path().join("payload.txt");
    std::fs::write(&local, b"x").unwrap();
    let local_s = local.to_str().unwrap();
    let long = "n".repeat(256);
    let cases: &[(&str, &str)] = &[
        ("a:b", "character ':' is not allowed"),
        ("a*b", "character '*' is not allowed"),
        ("a?b", "character '?' is not allowed"),
        ("a\"b", "character '\"' is not allowed"),
        ("a<b", "character '<' is not allowed"),
        ("a>b", "character '>' is not allowed"),
        ("a|b", "character '|' is not allowed"),
        ("bell\u{7}", "control character U+0007"),
        ("trailing.", "must not end with a dot"),
        ("trailing ", "must not end with a space"),
        ("CON", "CON is a reserved device name"),
        ("nul.txt", "NUL is a reserved device name"),
        ("Com3.log", "COM3 is a reserved device name"),
        ("lpt9", "LPT9 is a reserved device name"),
        ("AUX .c", "AUX is a reserved device name"),
        ("prn", "PRN is a reserved device name"),
        ("COM¹", "COM¹ is a reserved device name"),
        ("lpt³.txt", "LPT³ is a reserved device name"),
        (&long, "longer than 255 UTF-16 code units"),
    ];
    for (name, rule) in cases {
        let target = format!("/Windows/{name}");
        for args in [
            vec!["put", img, local_s, &target],
            vec!["mkdir", img, &target],
            vec!["mkdir", "--parents", img, &target],
            vec!["mv", img, "/Windows/old.txt", &target],
        ] {
            let o = reseal(&args.iter().map(std::ffi::OsStr::new).collect::<Vec<_>>());
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(!o.status.success(), "{args:?} was accepted");
            assert!(
                err.contains("invalid name") && err.contains(rule),
                "{args:?}: {err}"
            );
        }
    }
    assert!(
        std::fs::read(&raw).unwrap() == before,
        "a refused name changed the image"
    );
    // Names close to the rules are fine.
    for name in ["CONSOLE.txt", "com10", ".profile", "a b.txt", "x.y"] {
        ok_text(a!("put", img, local_s, &format!("/Windows/{name}")));
    }
}

/// `setsd` with a descriptor lacking a DACL (a NULL DACL: everyone gets full access) is refused
/// unless `--allow-null-dacl` is given, and the message names the flag.
#[test]
fn setsd_without_dacl_needs_allow_null_dacl() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, _, _) = disk(
        tmp.path(),
        vec![Entry::File("Windows/old.txt".into(), b"old".to_vec())],
    );
    let before = std::fs::read(&raw).unwrap();
    let img = raw.to_str().unwrap();
    for sddl in [
        "O:BA",
        "O:BAG:SY",
        "O:BAG:SYD:NO_ACCESS_CONTROL",
        "O:BAS:(AU;SA;FA;;;WD)",
    ] {
        let o = reseal(a!("setsd", img, "/Windows/old.txt", sddl));
        assert!(!o.status.success(), "{sddl} was accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("--allow-null-dacl"), "{sddl}: {err}");
        assert!(err.contains("NULL DACL"), "{sddl}: {err}");
    }
    assert!(
        std::fs::read(&raw).unwrap() == before,
        "a refused setsd changed the image"
    );
    // An empty DACL (nobody has access) is a DACL, not a NULL one.
    ok_text(a!("setsd", img, "/Windows/old.txt", "O:BAG:SYD:"));
    assert_eq!(
        ok_text(a!("getsd", img, "/Windows/old.txt")).trim(),
        "O:BAG:SYD:"
    );
    ok_text(a!(
        "setsd",
        img,
        "/Windows/old.txt",
        "O:BA",
        "--allow-null-dacl"
    ));
    assert_eq!(ok_text(a!("getsd", img, "/Windows/old.txt")).trim(), "O:BA");
}

#[test]
fn undo_lists_checks_and_names_what_it_reverts() {
    let tmp = tempfile::tempdir().unwrap();
    let (raw, _, _) = disk(tmp.path(), vec![Entry::Dir("Data".into())]);
    let img = raw.to_str().unwrap();
    let bin = env!("CARGO_BIN_EXE_reseal");
    let go = |args: &[&str]| {
        let o = Command::new(bin).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        (
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        )
    };
    let (out, _) = go(&["undo", "--list", img]);
    assert!(out.contains("nothing to undo"), "{out}");
    go(&["mkdir", img, "/Data/a"]);
    go(&["mkdir", img, "/Data/b"]);
    let after_two = std::fs::read(&raw).unwrap();
    let (out, _) = go(&["undo", "--list", img]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].starts_with("#1 ") && lines[0].contains("mkdir /Data/a"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("#2 ") && lines[1].contains("mkdir /Data/b"),
        "{out}"
    );
    assert!(lines[1].contains(&time_prefix()), "RFC 3339 time: {out}");
    let (json, _) = go(&["undo", "--list", "--json", img]);
    let v = reseal_tests::schema::parse_json("undo-list", &json);
    assert_eq!(v["schema_version"], 1);
    assert_eq!(v["operations"][1]["operation"], "mkdir /Data/b");
    // --dry-run names the operation and changes nothing.
    let (out, _) = go(&["undo", "--dry-run", img]);
    assert!(
        out.starts_with("would revert #2") && out.contains("mkdir /Data/b"),
        "{out}"
    );
    assert_eq!(std::fs::read(&raw).unwrap(), after_two);
    let (_, err) = go(&["undo", img]);
    assert!(
        err.contains("reverted #2") && err.contains("mkdir /Data/b"),
        "{err}"
    );
    let (out, _) = go(&["undo", "--list", img]);
    assert_eq!(out.lines().count(), 1, "{out}");
}

/// The year of now, which every fresh undo entry's time starts with.
fn time_prefix() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // 365.2425-day years are close enough away from New Year's Eve.
    format!("{}-", 1970 + secs / 31_556_952)
}

/// `setsd` resolves SDDL's domain-relative aliases (`LA` = machine SID-500, `LG` = -501, `DU` =
/// -513) against the image's machine SID; ntfs-3g reads back the same descriptor bytes. On a
/// volume without a Windows install the alias is refused, naming the way out, and nothing is
/// written.
#[test]
fn setsd_resolves_domain_aliases_against_the_machine_sid() {
    require_tool("getfattr");
    let tmp = tempfile::tempdir().unwrap();
    let raw = tmp.path().join("w.raw");
    let spec = reseal_tests::windows::WindowsSpec::default();
    spec.build(&raw).unwrap();
    let img = raw.to_str().unwrap();
    ok_text(a!(
        "setsd",
        img,
        "/Windows",
        "O:LAG:DUD:(A;OICI;FA;;;LA)(A;;0x1200a9;;;LG)"
    ));
    let m = &spec.machine_sid;
    assert_eq!(
        ok_text(a!("getsd", img, "/Windows")).trim(),
        format!("O:{m}-500G:{m}-513D:(A;OICI;FA;;;{m}-500)(A;;0x1200a9;;;{m}-501)")
    );
    let hex = ok_text(a!("getsd", "--hex", img, "/Windows"));
    let vol = tmp.path().join("vol.ntfs");
    spec.extract_volume(&raw, &vol).unwrap();
    let mount = NtfsMount::new(&vol, "ro").unwrap();
    let o = run(Command::new("getfattr")
        .args(["--only-values", "-n", "system.ntfs_acl"])
        .arg(mount.path().join("Windows")))
    .unwrap();
    mount.unmount().unwrap();
    let theirs: String = o.stdout.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex.trim(), theirs, "ntfs-3g reads another descriptor");

    // No Windows install: no machine SID to resolve against.
    let (bare, _, _) = disk(
        tmp.path(),
        vec![Entry::File("Windows/old.txt".into(), b"old".to_vec())],
    );
    let before = std::fs::read(&bare).unwrap();
    let o = reseal(a!(
        "setsd",
        bare.to_str().unwrap(),
        "/Windows/old.txt",
        "O:LAG:LGD:"
    ));
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("machine SID") && err.contains("S-1-5-21-"),
        "{err}"
    );
    assert!(
        std::fs::read(&bare).unwrap() == before,
        "a refused setsd wrote"
    );
}

/// `put -r` copies a local tree (nested directories, an empty file, a 1 MiB file, non-ASCII
/// names) into the volume as one change: ntfs-3g's read-only mount shows the same tree and bytes
/// (`diff -r`), `ntfsfix -n` is clean; `get -r` copies it back out equal (`diff -r`); one `undo`
/// gives back the original image.
#[test]
fn put_r_and_get_r_copy_trees_as_ntfs3g_sees_them() {
    require_tool("ntfsfix");
    let tmp = tempfile::tempdir().unwrap();
    let (raw, start, size) = disk(
        tmp.path(),
        vec![Entry::File("Windows/old.txt".into(), b"old".to_vec())],
    );
    let original = std::fs::read(&raw).unwrap();
    let img = raw.to_str().unwrap();
    let tree = tmp.path().join("tree");
    let mut n = 0;
    for d in ["", "a", "a/b", "a/b/c", "Ünïcode dir", "empty-dir"] {
        std::fs::create_dir_all(tree.join(d)).unwrap();
        if d == "empty-dir" {
            continue;
        }
        for i in 0..4 {
            n += 1;
            std::fs::write(
                tree.join(d).join(format!("f{i}-ß.txt")),
                pseudo_random(n, 100 * n as usize),
            )
            .unwrap();
        }
    }
    std::fs::write(tree.join("a/empty.bin"), b"").unwrap();
    std::fs::write(tree.join("a/b/big.bin"), pseudo_random(77, 1 << 20)).unwrap();
    let t = tree.to_str().unwrap();

    ok_text(a!("put", "-r", img, t, "/Data"));
    let vol = tmp.path().join("vol.ntfs");
    extract(&raw, start, size, &vol);
    run(Command::new("ntfsfix").arg("-n").arg(&vol)).unwrap();
    let m = NtfsMount::new(&vol, "ro").unwrap();
    let d = run(Command::new("diff")
        .arg("-r")
        .arg(&tree)
        .arg(m.path().join("Data")));
    m.unmount().unwrap();
    d.unwrap();

    let out = tmp.path().join("out");
    ok_text(a!("get", "-r", img, "/Data", out.to_str().unwrap()));
    run(Command::new("diff").arg("-r").arg(&tree).arg(&out)).unwrap();

    // One change: one undo.
    ok_text(a!("undo", img));
    assert!(
        std::fs::read(&raw).unwrap() == original,
        "undo of put -r did not restore the image"
    );
}
