//! `generalize` on Windows-like fixtures, checked by independent tools: hivexregedit exports of
//! every hive (ASCII, UTF-16 and binary forms of the old SID), regipy, an ntfs-3g mount reading
//! every file name and every `system.ntfs_acl`, and `discover` for the new identity.

use reseal_disk::{Access, Image};
use reseal_security::Sid;
use reseal_tests::windows::{variants, BulkSpec, WindowsSpec};
use reseal_tests::{require_tool, run, NtfsMount};
use reseal_windows::generalize::{generalize, NewSid, Operations, Options};
use reseal_windows::{discover, Error};
use std::path::{Path, PathBuf};
use std::process::Command;

const NEW: &str = "S-1-5-21-401-502-603";

fn variant(name: &str) -> WindowsSpec {
    variants()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s)
        .expect("variant")
}

fn opts(sid: &str, name: Option<&str>) -> Options {
    let mut o = Options::default();
    o.new_sid = NewSid::Given(sid.parse::<Sid>().unwrap());
    o.computer_name = name.map(str::to_string);
    // The SID round trips: the identifier operations (new GUIDs, deleted files) are not
    // reversible and have their own tests (identity.rs).
    o.operations = Operations::parse("machine-sid,computer-name").unwrap();
    o
}

/// The forms of a domain's X-Y-Z that must not appear: ASCII text, UTF-16LE text as
/// hivexregedit prints hex (`xx,xx,...`), and the 12 binary bytes in the same hex form.
fn forbidden_forms(sid: &str) -> Vec<String> {
    let s: Sid = sid.parse().unwrap();
    let a = s.sub_authorities();
    let text = format!("{}-{}-{}", a[1], a[2], a[3]);
    let hex = |b: &[u8]| {
        b.iter()
            .map(|x| format!("{x:02x}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let bin: Vec<u8> = a[1..4].iter().flat_map(|v| v.to_le_bytes()).collect();
    vec![text, hex(&utf16), hex(&bin)]
}

fn hives(mount: &Path, spec: &WindowsSpec) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = ["SYSTEM", "SOFTWARE", "SAM", "SECURITY", "DEFAULT"]
        .iter()
        .map(|h| mount.join("Windows/System32/config").join(h))
        .collect();
    for u in spec.users.iter().filter(|u| u.profile) {
        v.push(mount.join(format!("Users/{}/NTUSER.DAT", u.name)));
        v.push(mount.join(format!(
            "Users/{}/AppData/Local/Microsoft/Windows/UsrClass.dat",
            u.name
        )));
    }
    v
}

fn export(h: &Path) -> String {
    let out = run(Command::new("hivexregedit")
        .args(["--export", "--unsafe-printable-strings"])
        .arg(h)
        .arg("\\"))
    .unwrap();
    // hivexregedit wraps long hex lines with ",\\\n  ": join them back.
    String::from_utf8_lossy(&out.stdout)
        .replace(",\\\n  ", ",")
        .to_ascii_lowercase()
}

/// Hive exports, file names and ACLs of the volume, as seen by hivex and ntfs-3g. The ACLs are
/// read with `lgetxattr` and a 64 KiB buffer: Python's `os.getxattr` starts with a small buffer
/// and ntfs-3g answers EIO (not ERANGE) when a descriptor does not fit.
struct Seen {
    exports: Vec<String>,
    /// Path -> sha256 of the content ("dir" for directories).
    contents: std::collections::BTreeMap<String, String>,
    names: String,
    acls: String,
    /// Every hive file's bytes (path, bytes), to scan free cells and slack too.
    raw_hives: Vec<(PathBuf, Vec<u8>)>,
}

fn look(raw: &Path, spec: &WindowsSpec, dir: &Path) -> Seen {
    look_with(raw, spec, dir, true)
}

/// [`look`], optionally without regipy (which expects the root key in the first cell).
fn look_with(raw: &Path, spec: &WindowsSpec, dir: &Path, regipy: bool) -> Seen {
    let vol = dir.join("vol.img");
    spec.extract_volume(raw, &vol).unwrap();
    reseal_tests::ntfssecaudit_clean(&vol).unwrap();
    let m = NtfsMount::new(&vol, "ro").unwrap();
    let exports = hives(m.path(), spec).iter().map(|h| export(h)).collect();
    let raw_hives = hives(m.path(), spec)
        .into_iter()
        .filter_map(|h| {
            let b = std::fs::read(&h).ok()?;
            Some((h.strip_prefix(m.path()).unwrap().to_path_buf(), b))
        })
        .collect();
    let script = "import os,sys,hashlib,ctypes\nlibc=ctypes.CDLL(None,use_errno=True)\nbuf=ctypes.create_string_buffer(1<<16)\ndef acl(p):\n    n=libc.lgetxattr(os.fsencode(p),b'system.ntfs_acl',buf,len(buf))\n    return buf.raw[:n].hex() if n>=0 else 'ERR'+str(ctypes.get_errno())\nroot=sys.argv[1]\nfor d,ds,fs in os.walk(root):\n    for n in ds+fs:\n        p=os.path.join(d,n)\n        a=acl(p)\n        h='dir'\n        if os.path.isfile(p):\n            try:\n                h=hashlib.sha256(open(p,'rb').read()).hexdigest()\n            except OSError as e:\n                h='ERR'+str(e.errno)\n        print(os.path.relpath(p,root)+'\\t'+a+'\\t'+h)\n";
    let out = run(Command::new("python3").arg("-c").arg(script).arg(m.path())).unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut names = String::new();
    let mut acls = String::new();
    let mut contents = std::collections::BTreeMap::new();
    for l in text.lines() {
        let mut it = l.split('\t');
        let (n, a, h) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
        contents.insert(n.to_string(), h.to_string());
        names.push_str(n);
        names.push('\n');
        acls.push_str(n);
        acls.push('\t');
        acls.push_str(a);
        acls.push('\n');
    }
    // libregf exports every hive.
    for h in hives(m.path(), spec) {
        let out = Command::new("regfexport").arg(&h).output().unwrap();
        assert!(
            out.status.success(),
            "regfexport {}: {}",
            h.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // regipy opens every hive and walks it.
    if regipy {
        let script = "import sys\nfrom regipy.registry import RegistryHive\nfor p in sys.argv[1:]:\n    h = RegistryHive(p)\n    n = sum(1 for _ in h.recurse_subkeys(as_json=False))\n    assert n > 0, p\n";
        run(Command::new("python3")
            .arg("-c")
            .arg(script)
            .args(hives(m.path(), spec)))
        .unwrap();
    }
    m.unmount().unwrap();
    Seen {
        exports,
        contents,
        names,
        acls: acls.to_ascii_lowercase(),
        raw_hives,
    }
}

fn assert_absent(seen: &Seen, sid: &str) {
    let forms = forbidden_forms(sid);
    for (i, e) in seen.exports.iter().enumerate() {
        for f in &forms {
            assert!(!e.contains(f.as_str()), "hive #{i} export still holds {f}");
        }
    }
    assert!(
        !seen.names.contains(&forms[0]),
        "a file name still holds {}",
        forms[0]
    );
    let bin = forms[2].replace(',', "");
    assert!(!seen.acls.contains(&bin), "an ACL still holds {sid}");
    // Every byte of every hive file (free cells and slack included, issue 15): the binary
    // X,Y,Z, the ASCII and the UTF-16LE text.
    let s: Sid = sid.parse().unwrap();
    let a = s.sub_authorities();
    let text = format!("{}-{}-{}", a[1], a[2], a[3]);
    let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let binary: Vec<u8> = a[1..4].iter().flat_map(|v| v.to_le_bytes()).collect();
    for (path, bytes) in &seen.raw_hives {
        for p in [text.as_bytes(), &utf16[..], &binary[..]] {
            let at = bytes.windows(p.len()).position(|w| w == p);
            assert!(
                at.is_none(),
                "{}: the old SID is still at byte {:#x}",
                path.display(),
                at.unwrap_or(0)
            );
        }
    }
    let unread: Vec<&str> = seen.acls.lines().filter(|l| l.contains("\terr")).collect();
    assert!(unread.is_empty(), "ACLs ntfs-3g could not read: {unread:?}");
}

#[test]
fn generalize_fixture_and_back() {
    require_tool("hivexregedit");
    require_tool("ntfs-3g");
    let spec = variant("win-gpt");
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    spec.build(&raw).unwrap();
    let before = look(&raw, &spec, dir.path());
    let orig_bytes = std::fs::read(&raw).unwrap();
    // The old SID is really there (text, UTF-16 or binary) before.
    let forms = forbidden_forms(&spec.machine_sid);
    assert!(before.exports.iter().any(|e| e.contains(&forms[2])));
    assert!(before.names.contains(&forms[0]), "{}", before.names);

    // Dry run: discard changes no byte.
    {
        let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
        let rep = generalize(&mut img, &opts(NEW, Some("NEWHOST"))).unwrap();
        assert!(rep.counts.hives_written >= 5, "{:?}", rep.counts);
        img.discard().unwrap();
    }
    assert!(std::fs::read(&raw).unwrap() == orig_bytes, "dry run wrote");

    let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
    let rep = generalize(&mut img, &opts(NEW, Some("NEWHOST"))).unwrap();
    img.commit().unwrap();
    drop(img);
    assert_eq!(rep.old_sid, spec.machine_sid);
    assert!(rep.counts.keys_renamed > 0 && rep.counts.ntfs_descriptors > 0);
    assert!(rep.counts.files_renamed > 0, "{:?}", rep.counts);
    serde_json::to_string(&rep).unwrap();

    let after = look(&raw, &spec, dir.path());
    assert_absent(&after, &spec.machine_sid);
    // The new SID is where the old one was.
    let newf = forbidden_forms(NEW);
    assert!(after.exports.iter().any(|e| e.contains(&newf[2])));
    assert!(after.names.contains(&newf[0]));
    // Every ACL equals the original with the domain replaced.
    let oldb = forms[2].replace(',', "");
    let newb = newf[2].replace(',', "");
    assert!(
        before.acls.contains(&oldb),
        "no ACL held the old SID before"
    );
    let old_name = forms[0].clone();
    let expect_acls = before
        .acls
        .replace(&oldb, &newb)
        .replace(&old_name, &newf[0]);
    let mut a: Vec<&str> = after.acls.lines().collect();
    let mut e: Vec<&str> = expect_acls.lines().collect();
    a.sort_unstable();
    e.sort_unstable();
    assert_eq!(a, e, "ACLs differ beyond the domain");

    // Every file's content is unchanged except hives, their logs and task XML (names mapped).
    let changed = |p: &str| {
        let l = p.to_ascii_lowercase();
        l.starts_with("windows/system32/config/")
            || l.starts_with("windows/system32/tasks/")
            || l.contains("ntuser.dat")
            || l.contains("usrclass.dat")
    };
    let mut compared = 0;
    for (p, h) in &before.contents {
        let np = p.replace(&old_name, &newf[0]);
        let Some(h2) = after.contents.get(&np) else {
            panic!("{p} vanished (looked for {np})");
        };
        if !changed(p) {
            assert_eq!(h, h2, "{p} changed");
            compared += 1;
        }
    }
    assert_eq!(before.contents.len(), after.contents.len());
    assert!(compared > 10);

    // discover sees the new identity; users keep RIDs and names.
    let mut img = Image::open(&raw, Access::ReadOnly).unwrap();
    let w = discover(&mut img).unwrap().remove(0);
    drop(img);
    assert_eq!(w.machine_sid.as_deref(), Some(NEW));
    assert_eq!(w.computer.netbios.as_deref(), Some("NEWHOST"));
    assert_eq!(w.computer.lsa_account_domain.as_deref(), Some("NEWHOST"));
    let users: Vec<(u32, String)> = w.users.iter().map(|u| (u.rid, u.name.clone())).collect();
    let want: Vec<(u32, String)> = spec.users.iter().map(|u| (u.rid, u.name.clone())).collect();
    assert_eq!(users, want);

    // Undo restores byte-identically.
    reseal_disk::journal::undo(&raw).unwrap();
    assert!(std::fs::read(&raw).unwrap() == orig_bytes, "undo");

    // Generalize, then back to the old SID and name: hive exports equal the original.
    for (sid, name) in [
        (NEW, "NEWHOST"),
        (spec.machine_sid.as_str(), "WIN-FIXTURE01"),
    ] {
        let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
        generalize(&mut img, &opts(sid, Some(name))).unwrap();
        img.commit().unwrap();
    }
    let back = look(&raw, &spec, dir.path());
    assert_eq!(back.acls, before.acls);
    assert_eq!(back.names, before.names);
    for (i, (b, o)) in back.exports.iter().zip(&before.exports).enumerate() {
        assert!(b == o, "hive #{i} export differs after the round trip");
    }
}

#[test]
fn refusals_write_nothing() {
    for (v, code) in [
        ("win-domain", "domain-joined"),
        ("win-hibernated", "volume-state"),
        ("win-bitlocker", "bitlocker"),
        ("win-dirty-hive", "txr-pending"),
        ("win-dirty-volume", "volume-state"),
        ("win-fast-startup", "volume-state"),
    ] {
        let spec = variant(v);
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("w.raw");
        spec.build(&raw).unwrap();
        let orig = std::fs::read(&raw).unwrap();
        let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
        match generalize(&mut img, &opts(NEW, None)) {
            Err(Error::Refused(r)) => assert_eq!(r.code(), code, "{v}: {r}"),
            other => panic!("{v}: expected refusal {code}, got {other:?}"),
        }
        assert!(img.changes().is_empty(), "{v}: staged writes");
        drop(img);
        assert!(std::fs::read(&raw).unwrap() == orig, "{v}: wrote");
    }
    // Bad computer names.
    for bad in ["", "A-NAME-THAT-IS-TOO-LONG", "bad name", "1234"] {
        assert!(reseal_windows::generalize::validate_computer_name(bad).is_err());
    }
    assert!(reseal_windows::generalize::validate_computer_name("WS-0042").is_ok());
}

/// Generalize `spec` (forced past a domain join and pending TxR when `force`), then check with the
/// oracles that the old machine SID is gone, `keep` (forms of other SIDs) is still there and
/// discovery sees the new SID with the same users.
fn generalize_and_check(
    spec: &WindowsSpec,
    force: bool,
    keep: Option<&str>,
) -> reseal_windows::generalize::Report {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    spec.build(&raw).unwrap();
    let mut img = Image::open(&raw, Access::ReadOnly).unwrap();
    let w0 = discover(&mut img).unwrap().remove(0);
    drop(img);
    let old = w0.machine_sid.clone().unwrap();
    let mut o = opts(NEW, Some("RESEALED-1"));
    o.force_domain_joined = force;
    o.force_txr = force;
    let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
    let rep = generalize(&mut img, &o).unwrap_or_else(|e| panic!("{old}: {e}"));
    img.commit().unwrap();
    drop(img);
    assert_eq!(rep.old_sid, old);
    let seen = look(&raw, spec, dir.path());
    assert_absent(&seen, &old);
    if let Some(k) = keep {
        let f = forbidden_forms(k);
        assert!(
            seen.exports.iter().any(|e| e.contains(&f[2])),
            "the domain SID {k} was lost"
        );
    }
    let mut img = Image::open(&raw, Access::ReadOnly).unwrap();
    let w = discover(&mut img).unwrap().remove(0);
    assert_eq!(w.machine_sid.as_deref(), Some(NEW));
    assert_eq!(w.computer.netbios.as_deref(), Some("RESEALED-1"));
    assert_eq!(w.domain.domain_sid, w0.domain.domain_sid);
    let users = |w: &reseal_windows::WindowsInstall| -> Vec<(u32, String, bool)> {
        w.users
            .iter()
            .map(|u| (u.rid, u.name.clone(), u.disabled))
            .collect()
    };
    assert_eq!(users(&w), users(&w0));
    for u in &w.users {
        assert_eq!(u.sid.as_deref(), Some(format!("{NEW}-{}", u.rid).as_str()));
    }
    assert!(
        !w.hives.iter().any(|h| !matches!(
            h.state,
            reseal_windows::HiveState::Clean | reseal_windows::HiveState::Missing
        )),
        "{:?}",
        w.hives
    );
    rep
}

#[test]
fn other_variants() {
    require_tool("hivexregedit");
    require_tool("ntfs-3g");
    generalize_and_check(&variant("win-mbr"), false, None);
    generalize_and_check(&variant("win-dirty-hive"), true, None);
    let d = variant("win-domain");
    let dsid = d.domain.as_ref().unwrap().sid.clone();
    generalize_and_check(&d, true, Some(&dsid));
}

#[test]
fn bulk_content_on_a_bare_volume() {
    require_tool("hivexregedit");
    require_tool("ntfs-3g");
    // The benchmark's shape at a small scale: files with their own descriptors, hives full of
    // SID strings, binary SIDs and per-key descriptors, on an image that is the bare volume.
    let spec = WindowsSpec {
        label: "none".into(),
        ntfs_mib: 64,
        bulk: Some(BulkSpec {
            files: 600,
            descriptors: 60,
            software_keys: 400,
            ntuser_keys: 200,
            ..BulkSpec::default()
        }),
        ..WindowsSpec::default()
    };
    let rep = generalize_and_check(&spec, false, None);
    // Each rewritten shared descriptor names the files using it: 60 bulk ones, 10 files each.
    let mut bulk = 0;
    for c in &rep.changes {
        if let reseal_windows::generalize::Change::NtfsDescriptor {
            files,
            example: Some(e),
            ..
        } = c
        {
            if e.contains("/Documents/Bulk/") {
                assert_eq!(*files, 10, "{e}");
                bulk += 1;
            }
        }
    }
    assert_eq!(bulk, 60);
}

#[test]
fn real_corpus_sam_security_pairs() {
    require_tool("hivexregedit");
    let spec = |sam: &str, sec: &str| WindowsSpec {
        real_sam: Some(sam.to_string()),
        real_security: Some(sec.to_string()),
        users: Vec::new(),
        system_dpapi: false,
        ..WindowsSpec::default()
    };
    // Domain members: forced, the domain SID (PolPrDmS) stays.
    for (os, domain) in [
        ("win2008_32", "S-1-5-21-2275648644-3942841253-2971125818"),
        ("win2008r2_64", "S-1-5-21-664776169-1866141539-3234210782"),
        ("win2012_64", "S-1-5-21-3242107621-661933761-745066312"),
        ("win2016_64", "S-1-5-21-1455456205-2985946602-3455386300"),
    ] {
        let s = spec(
            &format!("aiowinreg/{os}/sam.reg"),
            &format!("aiowinreg/{os}/security.reg"),
        );
        generalize_and_check(&s, true, Some(domain));
    }
    // A domain controller (machine SID = domain SID) and a SAM/SECURITY mismatch: refused.
    for (sam, sec, code) in [
        (
            "aiowinreg/nt/sam.reg",
            "aiowinreg/nt/security.reg",
            "domain-controller",
        ),
        ("regipy/SAM.xz", "regipy/SECURITY.xz", "sid-mismatch"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("w.raw");
        spec(sam, sec).build(&raw).unwrap();
        let orig = std::fs::read(&raw).unwrap();
        let mut o = opts(NEW, None);
        o.force_domain_joined = true;
        o.force_dirty_hive = true;
        let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
        match generalize(&mut img, &o) {
            Err(Error::Refused(r)) => assert_eq!(r.code(), code, "{sam}: {r}"),
            other => panic!("{sam}: expected {code}, got {other:?}"),
        }
        drop(img);
        assert!(std::fs::read(&raw).unwrap() == orig, "{sam}: wrote");
    }
}

#[test]
fn generalize_inside_vhdx_passes_qemu_img_check() {
    require_tool("qemu-img");
    require_tool("ntfs-3g");
    let spec = variant("win-gpt");
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    spec.build(&raw).unwrap();
    let vhdx = dir.path().join("w.vhdx");
    reseal_tests::windows::convert(&raw, "vhdx", &vhdx).unwrap();
    let mut img = Image::open(&vhdx, Access::ReadWrite).unwrap();
    generalize(&mut img, &opts(NEW, Some("VHDX-HOST"))).unwrap();
    img.commit().unwrap();
    drop(img);
    run(Command::new("qemu-img")
        .args(["check", "-f", "vhdx"])
        .arg(&vhdx))
    .unwrap();
    let back = dir.path().join("back.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-f", "vhdx", "-O", "raw"])
        .arg(&vhdx)
        .arg(&back))
    .unwrap();
    let seen = look(&back, &spec, dir.path());
    assert_absent(&seen, &spec.machine_sid);
    let mut img = Image::open(&vhdx, Access::ReadOnly).unwrap();
    let w = discover(&mut img).unwrap().remove(0);
    assert_eq!(w.machine_sid.as_deref(), Some(NEW));
    assert_eq!(w.computer.netbios.as_deref(), Some("VHDX-HOST"));
}

/// A crash injected before each durable step of the commit leaves, after recovery (the next
/// writable open), either the original image byte for byte or the complete new identity (the
/// hives' timestamps differ between runs, so "new" is checked through discovery and undo).
#[test]
fn crash_at_each_commit_step_is_all_old_or_all_new() {
    let spec = variant("win-gpt");
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    spec.build(&raw).unwrap();
    let orig = std::fs::read(&raw).unwrap();
    let steps = {
        let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
        generalize(&mut img, &opts(NEW, Some("CRASHED"))).unwrap();
        let rep = img.commit().unwrap();
        drop(img);
        reseal_disk::journal::undo(&raw).unwrap();
        assert!(std::fs::read(&raw).unwrap() == orig);
        rep.steps
    };
    assert!(steps > 2);
    // Every durable step of the commit, not a sample.
    let ks: Vec<usize> = (0..steps).collect();
    let (mut old, mut new) = (0, 0);
    for k in ks {
        {
            let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
            generalize(&mut img, &opts(NEW, Some("CRASHED"))).unwrap();
            assert!(img.commit_with_faults(Some(k)).is_err(), "step {k}");
        }
        // Recovery happens on the writable open.
        drop(Image::open(&raw, Access::ReadWrite).unwrap());
        if std::fs::read(&raw).unwrap() == orig {
            old += 1;
            continue;
        }
        new += 1;
        let mut img = Image::open(&raw, Access::ReadOnly).unwrap();
        let w = discover(&mut img).unwrap().remove(0);
        drop(img);
        assert_eq!(w.machine_sid.as_deref(), Some(NEW), "step {k}");
        assert_eq!(w.computer.netbios.as_deref(), Some("CRASHED"), "step {k}");
        reseal_disk::journal::undo(&raw).unwrap();
        assert!(std::fs::read(&raw).unwrap() == orig, "step {k}: undo");
    }
    assert!(old > 0, "no crash left the old image");
    eprintln!("{steps} steps: {old} all-old, {new} all-new");
}

/// A dirty hive without usable logs is refused; forced, its primary is taken as is, rewritten
/// whole and left clean.
#[test]
fn dirty_hive_without_logs_refused_unless_forced() {
    let spec = variant("win-gpt");
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    spec.build(&raw).unwrap();
    {
        let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
        let t = reseal_disk::partition::PartitionTable::read(&img).unwrap();
        let p = t.get(spec.windows_partition()).unwrap();
        let (start, len) = (p.start, p.len);
        {
            let mut slice = reseal_disk::partition::Slice::new(&mut img, start, len).unwrap();
            let mut vol = reseal_ntfs::Volume::open(&mut slice).unwrap();
            let path = "Windows/System32/config/SYSTEM";
            let mut head = [0u8; 512];
            vol.read_file_at(path, 0, &mut head).unwrap();
            let seq1 = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            head[8..12].copy_from_slice(&(seq1 + 1).to_le_bytes());
            let c = reseal_hive::base_block::checksum(&head);
            head[508..512].copy_from_slice(&c.to_le_bytes());
            vol.write_at(path, 0, &head).unwrap();
            vol.flush().unwrap();
        }
        img.commit().unwrap();
    }
    let orig = std::fs::read(&raw).unwrap();
    let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
    match generalize(&mut img, &opts(NEW, Some("FORCED"))) {
        Err(Error::Refused(r)) => assert_eq!(r.code(), "hive-dirty", "{r}"),
        other => panic!("expected hive-dirty, got {other:?}"),
    }
    drop(img);
    assert!(std::fs::read(&raw).unwrap() == orig);
    let mut o = opts(NEW, Some("FORCED"));
    o.force_dirty_hive = true;
    let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
    let rep = generalize(&mut img, &o).unwrap();
    assert!(rep.warnings.iter().any(|w| w.contains("SYSTEM")));
    img.commit().unwrap();
    drop(img);
    let mut img = Image::open(&raw, Access::ReadOnly).unwrap();
    let w = discover(&mut img).unwrap().remove(0);
    let sys = w.hives.iter().find(|h| h.name == "SYSTEM").unwrap();
    assert_eq!(sys.state, reseal_windows::HiveState::Clean);
    assert_eq!(w.computer.netbios.as_deref(), Some("FORCED"));
    assert_eq!(w.machine_sid.as_deref(), Some(NEW));
}

/// The other hives of `config` and the service profiles' NTUSER.DAT are rewritten too.
#[test]
fn other_config_and_service_profile_hives() {
    require_tool("hivexregedit");
    require_tool("ntfs-3g");
    let spec = variant("win-gpt");
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    spec.build(&raw).unwrap();
    let extra = [
        "Windows/System32/config/COMPONENTS",
        "Windows/ServiceProfiles/LocalService/NTUSER.DAT",
    ];
    {
        let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
        let t = reseal_disk::partition::PartitionTable::read(&img).unwrap();
        let p = t.get(spec.windows_partition()).unwrap();
        let (start, len) = (p.start, p.len);
        {
            let mut slice = reseal_disk::partition::Slice::new(&mut img, start, len).unwrap();
            let mut vol = reseal_ntfs::Volume::open(&mut slice).unwrap();
            // Copies of hives that hold the machine SID.
            let software = vol.read_file("Windows/System32/config/SOFTWARE").unwrap();
            let ntuser = vol.read_file("Users/alice/NTUSER.DAT").unwrap();
            vol.write_file(extra[0], &software).unwrap();
            vol.create_dir("Windows/ServiceProfiles").unwrap();
            vol.create_dir("Windows/ServiceProfiles/LocalService")
                .unwrap();
            vol.write_file(extra[1], &ntuser).unwrap();
            vol.flush().unwrap();
        }
        img.commit().unwrap();
    }
    let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
    let rep = generalize(&mut img, &opts(NEW, None)).unwrap();
    img.commit().unwrap();
    drop(img);
    for e in extra {
        assert!(
            rep.changes.iter().any(|c| matches!(
                c,
                reseal_windows::generalize::Change::HiveWritten { hive, .. } if hive == &format!("/{e}")
            )),
            "{e} not written"
        );
    }
    let vol = dir.path().join("vol.img");
    spec.extract_volume(&raw, &vol).unwrap();
    let m = NtfsMount::new(&vol, "ro").unwrap();
    let forms = forbidden_forms(&spec.machine_sid);
    for e in extra {
        let x = export(&m.path().join(e));
        assert!(x.contains(&forbidden_forms(NEW)[0]), "{e}");
        for f in &forms {
            assert!(!x.contains(f.as_str()), "{e} still holds {f}");
        }
    }
    m.unmount().unwrap();
}

/// A real Windows 10 SYSTEM (12 MB, dirty, recovered from its LOG1/LOG2) as the fixture's
/// SYSTEM: the computer name is set in the recovered hive, which is written whole and left
/// clean, and its logs are truncated; hivex, regipy and libregf open the result.
#[test]
fn real_dirty_system_hive_renamed() {
    require_tool("hivexregedit");
    require_tool("ntfs-3g");
    let spec = WindowsSpec {
        ntfs_mib: 80,
        real_hives: vec![reseal_tests::windows::RealHive {
            name: "SYSTEM".into(),
            hive: "regipy/SYSTEM_B.xz".into(),
            log1: Some("regipy/SYSTEM_B.LOG1.xz".into()),
            log2: Some("regipy/SYSTEM_B.LOG2.xz".into()),
        }],
        ..variant("win-gpt")
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    spec.build(&raw).unwrap();
    let t0 = std::time::Instant::now();
    let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
    let rep = generalize(&mut img, &opts(NEW, Some("REAL-SYS"))).unwrap();
    img.commit().unwrap();
    drop(img);
    eprintln!("generalize + commit: {:?}", t0.elapsed());
    assert!(rep
        .changes
        .iter()
        .any(|c| matches!(c, reseal_windows::generalize::Change::LogInvalidated { path } if path.ends_with("SYSTEM.LOG1"))));
    let mut img = Image::open(&raw, Access::ReadOnly).unwrap();
    let w = discover(&mut img).unwrap().remove(0);
    drop(img);
    let sys = w.hives.iter().find(|h| h.name == "SYSTEM").unwrap();
    assert_eq!(sys.state, reseal_windows::HiveState::Clean, "{sys:?}");
    assert_eq!(w.computer.netbios.as_deref(), Some("REAL-SYS"));
    assert_eq!(w.machine_sid.as_deref(), Some(NEW));
    // hivex reads the name from the file written whole (a full export of this hive through
    // every oracle takes minutes, see `look`; the SID checks run on the other fixtures).
    let vol = dir.path().join("vol.img");
    spec.extract_volume(&raw, &vol).unwrap();
    let m = NtfsMount::new(&vol, "ro").unwrap();
    let sys = m.path().join("Windows/System32/config/SYSTEM");
    let out = run(Command::new("hivexregedit")
        .args(["--export", "--unsafe-printable-strings"])
        .arg(&sys)
        .arg("\\ControlSet001\\Control\\ComputerName"))
    .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"REAL-SYS\""));
    let log1 = std::fs::metadata(m.path().join("Windows/System32/config/SYSTEM.LOG1")).unwrap();
    assert_eq!(log1.len(), 0);
    m.unmount().unwrap();
}

/// Longer SID strings (key names, string values, task XML grow) and back: the hive exports,
/// file names and ACLs equal the original. The `<SID>_Classes` root of UsrClass.dat no longer
/// fits its cell and moves (reported as a warning): hivex and libregf follow the base block,
/// regipy (root = first cell) is not run here.
#[test]
fn longer_sid_and_back() {
    require_tool("hivexregedit");
    require_tool("ntfs-3g");
    let spec = variant("win-mbr");
    let long = "S-1-5-21-4294967295-4294967294-4294967293";
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    spec.build(&raw).unwrap();
    let before = look(&raw, &spec, dir.path());
    let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
    let rep = generalize(&mut img, &opts(long, None)).unwrap();
    img.commit().unwrap();
    drop(img);
    assert!(rep.changes.iter().any(|c| matches!(
        c,
        reseal_windows::generalize::Change::FileRewritten { old_len, new_len, .. } if new_len > old_len
    )));
    assert!(
        rep.warnings.iter().any(|w| w.contains("root key")),
        "{:?}",
        rep.warnings
    );
    let mid = look_with(&raw, &spec, dir.path(), false);
    assert_absent(&mid, &spec.machine_sid);
    let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
    generalize(&mut img, &opts(&spec.machine_sid, None)).unwrap();
    img.commit().unwrap();
    drop(img);
    let back = look_with(&raw, &spec, dir.path(), false);
    assert_absent(&back, long);
    assert_eq!(back.acls, before.acls);
    assert_eq!(back.names, before.names);
    assert_eq!(back.contents.len(), before.contents.len());
    for (i, (b, o)) in back.exports.iter().zip(&before.exports).enumerate() {
        assert!(b == o, "hive #{i} export differs after the round trip");
    }
}

/// A random new SID keeps every SID string's length: nothing grows, no root moves, and regipy
/// (root = first cell) still opens every hive.
#[test]
fn random_sid_keeps_lengths() {
    require_tool("hivexregedit");
    require_tool("ntfs-3g");
    for v in ["win-gpt", "win-mbr"] {
        let spec = variant(v);
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("w.raw");
        spec.build(&raw).unwrap();
        let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
        let rep = generalize(&mut img, &Options::default()).unwrap();
        img.commit().unwrap();
        drop(img);
        assert_eq!(rep.new_sid.len(), rep.old_sid.len(), "{v}");
        assert_ne!(rep.new_sid, rep.old_sid);
        assert!(rep.warnings.iter().all(|w| !w.contains("root key")), "{v}");
        for c in &rep.changes {
            if let reseal_windows::generalize::Change::FileRewritten {
                old_len, new_len, ..
            } = c
            {
                assert_eq!(old_len, new_len);
            }
        }
        let seen = look(&raw, &spec, dir.path());
        assert_absent(&seen, &spec.machine_sid);
    }
}

/// Hostile hive bytes never make `generalize` panic or write behind the journal: random bytes
/// over the hive bins of every hive (restored after each round); each run either succeeds or
/// fails with an error, and after the journal is discarded the image is byte-identical.
#[test]
fn corrupted_hives_never_panic_or_write() {
    let dir = tempfile::tempdir().unwrap();
    let spec = WindowsSpec {
        label: "none".into(),
        ntfs_mib: 24,
        ..WindowsSpec::default()
    };
    let raw = dir.path().join("hostile.raw");
    spec.build(&raw).unwrap();
    let bytes = std::fs::read(&raw).unwrap();
    let hives = reseal_tests::find_hives(&bytes);
    assert!(hives.len() >= 9, "{} hives found", hives.len());
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&raw)
        .unwrap();
    let rnd = reseal_tests::pseudo_random(91, 64 * 1024);
    let (mut ok, mut failed) = (0, 0);
    for round in 0..27usize {
        let saved =
            reseal_tests::scribble_hive(&f, hives[round % hives.len()], round, 16, &rnd).unwrap();
        let before = std::fs::read(&raw).unwrap();
        let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
        match generalize(&mut img, &opts(NEW, Some("HOSTILE-1"))) {
            Ok(_) => ok += 1,
            Err(e) => {
                eprintln!("round {round}: {e}");
                failed += 1;
            }
        }
        img.discard().unwrap();
        drop(img);
        assert!(
            std::fs::read(&raw).unwrap() == before,
            "round {round}: the image changed without a commit"
        );
        reseal_tests::restore_bytes(&f, saved).unwrap();
    }
    eprintln!("{ok} rounds generalized, {failed} refused with an error");
    assert!(std::fs::read(&raw).unwrap() == bytes);
}

/// `no_scrub`: the real SAM's free cells and slack keep the old SID (what every reader sees is
/// still rewritten); by default (checked in `real_corpus_sam_security_pairs` through
/// `assert_absent`) no byte of any hive holds it.
#[test]
fn no_scrub_leaves_old_sids_in_unused_cells() {
    require_tool("hivexregedit");
    let spec = WindowsSpec {
        real_sam: Some("aiowinreg/win2016_64/sam.reg".into()),
        real_security: Some("aiowinreg/win2016_64/security.reg".into()),
        users: Vec::new(),
        system_dpapi: false,
        ..WindowsSpec::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    spec.build(&raw).unwrap();
    let mut img = Image::open(&raw, Access::ReadOnly).unwrap();
    let old = discover(&mut img).unwrap().remove(0).machine_sid.unwrap();
    drop(img);
    let mut o = opts(NEW, None);
    o.force_domain_joined = true;
    o.force_txr = true;
    o.no_scrub = true;
    let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
    let rep = generalize(&mut img, &o).unwrap();
    img.commit().unwrap();
    drop(img);
    assert_eq!(rep.counts.hives_scrubbed, 0);
    let seen = look(&raw, &spec, dir.path());
    let f = forbidden_forms(&old);
    assert!(seen.exports.iter().all(|e| !e.contains(&f[2])));
    let s: Sid = old.parse().unwrap();
    let bin: Vec<u8> = s.sub_authorities()[1..4]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert!(
        seen.raw_hives
            .iter()
            .any(|(_, b)| b.windows(12).any(|w| w == &bin[..])),
        "no old SID left in unused cells although not scrubbed"
    );
}
