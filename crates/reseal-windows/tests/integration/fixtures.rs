//! Discovery on Windows-like fixture images (built by sfdisk, mkfs.fat, mkntfs + ntfs-3g, with
//! hives from the fixture builder or from the real corpus) reports exactly the facts of the
//! spec; the fixtures themselves are checked by independent tools (ntfs-3g, ntfssecaudit,
//! hivexsh, regipy, qemu-img).

use reseal_disk::{Access, Image};
use reseal_tests::windows::{convert, variants, RealHive, WindowsSpec};
use reseal_tests::{require_tool, run, NtfsMount};
use reseal_windows::{discover, scan, HiveState, Severity, WindowsInstall};
use std::path::Path;
use std::process::Command;

fn variant(name: &str) -> WindowsSpec {
    variants()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s)
        .expect("variant")
}

fn build(spec: &WindowsSpec, dir: &Path, name: &str) -> std::path::PathBuf {
    let p = dir.join(format!("{name}.raw"));
    spec.build(&p)
        .unwrap_or_else(|e| panic!("building {name}: {e:#}"));
    p
}

fn install_of(path: &Path) -> WindowsInstall {
    let mut img = Image::open(path, Access::ReadOnly).expect("open image");
    let mut all = discover(&mut img).expect("discover");
    assert_eq!(all.len(), 1, "{} installs in {}", all.len(), path.display());
    all.remove(0)
}

fn codes(w: &WindowsInstall) -> Vec<&str> {
    w.findings.iter().map(|f| f.code.as_str()).collect()
}

/// Every fact of the spec, and nothing contradicting it.
fn assert_facts(spec: &WindowsSpec, w: &WindowsInstall) {
    assert_eq!(w.partition, spec.windows_partition());
    assert!(w.errors.is_empty(), "read errors: {:?}", w.errors);
    for h in &w.hives {
        let dirty = spec.dirty_hive.as_deref() == Some(h.name.as_str());
        if dirty {
            assert_eq!(
                h.state,
                HiveState::DirtyReplayed {
                    logs: vec!["LOG1".into()]
                },
                "{}",
                h.name
            );
        } else {
            assert_eq!(h.state, HiveState::Clean, "{}", h.name);
        }
        assert!(!h.ktm_locked);
    }
    assert_eq!(w.txr.pending, spec.txr_pending, "{:?}", w.txr);
    assert_eq!(w.txr.empty_files.len(), 1);
    assert_eq!(
        w.txr.files_with_content.len(),
        usize::from(spec.txr_pending)
    );
    assert_eq!(codes(w).contains(&"txr_pending"), spec.txr_pending);
    assert_eq!(w.current_control_set, Some(spec.current_control_set.max(1)));
    assert_eq!(
        w.product.product_name.as_deref(),
        Some(spec.product_name.as_str())
    );
    assert_eq!(
        w.product.edition_id.as_deref(),
        Some(spec.edition_id.as_str())
    );
    assert_eq!(w.product.build.as_deref(), Some(spec.build.as_str()));
    assert_eq!(w.product.ubr, Some(spec.ubr));
    assert_eq!(
        w.product.display_version.as_deref(),
        Some(spec.display_version.as_str())
    );
    assert_eq!(
        w.computer.netbios.as_deref(),
        Some(spec.computer_name.as_str())
    );
    assert_eq!(
        w.computer.dns_hostname.as_deref(),
        Some(spec.dns_hostname.as_str())
    );
    assert_eq!(
        w.computer.nv_hostname.as_deref(),
        Some(spec.dns_hostname.as_str())
    );
    if spec.real_security.is_none() {
        assert_eq!(
            w.computer.lsa_account_domain.as_deref(),
            Some(spec.computer_name.as_str())
        );
        assert_eq!(
            w.lsa_machine_sid.as_deref(),
            Some(spec.machine_sid.as_str())
        );
        match &spec.domain {
            Some(d) => {
                assert!(w.domain.joined);
                assert_eq!(w.domain.domain_sid.as_deref(), Some(d.sid.as_str()));
                assert_eq!(w.domain.name.as_deref(), Some(d.name.as_str()));
                assert_eq!(w.domain.dns_name.as_deref(), Some(d.dns_name.as_str()));
                assert!(codes(w).contains(&"domain_joined"));
            }
            None => {
                assert!(!w.domain.joined);
                assert_eq!(w.domain.name.as_deref(), Some(spec.workgroup.as_str()));
                assert!(!codes(w).contains(&"domain_joined"));
            }
        }
    }
    if spec.real_sam.is_none() {
        assert_eq!(
            w.sam_machine_sid.as_deref(),
            Some(spec.machine_sid.as_str())
        );
        assert_eq!(w.machine_sid.as_deref(), Some(spec.machine_sid.as_str()));
        assert_eq!(w.users.len(), spec.users.len());
        for u in &spec.users {
            let got = w
                .users
                .iter()
                .find(|x| x.rid == u.rid)
                .unwrap_or_else(|| panic!("user {}", u.name));
            assert_eq!(got.name, u.name);
            assert_eq!(got.full_name, u.full_name);
            assert_eq!(got.comment, u.comment);
            assert_eq!(got.disabled, !u.enabled, "{}", u.name);
            assert_eq!(got.last_logon, (u.last_logon != 0).then_some(u.last_logon));
            assert_eq!(got.logon_count, Some(u.logon_count));
            assert_eq!(got.names_rid, Some(u.rid));
            assert_eq!(
                got.sid.as_deref(),
                Some(format!("{}-{}", spec.machine_sid, u.rid).as_str())
            );
        }
        // Profiles: S-1-5-18 plus one per user with a profile; each has both hives.
        let with_profile: Vec<_> = spec.users.iter().filter(|u| u.profile).collect();
        assert_eq!(w.profiles.len(), with_profile.len() + 1, "{:?}", w.profiles);
        for u in with_profile {
            let sid = format!("{}-{}", spec.machine_sid, u.rid);
            let p = w.profiles.iter().find(|p| p.sid == sid).expect("profile");
            assert_eq!(
                p.folder.as_deref(),
                Some(format!("/Users/{}", u.name).as_str())
            );
            assert!(p.folder_exists && p.ntuser_dat && p.usrclass_dat, "{p:?}");
            assert_eq!(p.user.as_deref(), Some(u.name.as_str()));
            let d = w.dpapi.iter().find(|d| d.sid == sid).expect("dpapi folder");
            assert_eq!(d.files, 2);
        }
        assert_eq!(
            w.dpapi.len(),
            spec.users.iter().filter(|u| u.profile).count() + usize::from(spec.system_dpapi)
        );
        assert!(codes(w).contains(&"dpapi"));
    }
    assert!(!codes(w).contains(&"sid_mismatch"));
    assert_eq!(w.efs.count, spec.efs_files.len());
    assert!(!w.efs.truncated);
    for p in &spec.efs_files {
        assert!(w.efs.first.contains(&format!("/{p}")), "{:?}", w.efs);
    }
    assert_eq!(w.fast_startup_enabled, Some(spec.fast_startup));
    let v = w.volume.as_ref().expect("volume state");
    assert_eq!(v.dirty, spec.volume_dirty);
    assert_eq!(v.hibernated, spec.hibernated);
    assert_eq!(v.fast_startup, spec.fast_startup);
    for (flag, code) in [
        (spec.volume_dirty, "volume_dirty"),
        (spec.hibernated, "hibernated"),
        (spec.fast_startup, "fast_startup"),
        (spec.fast_startup, "fast_startup_enabled"),
        (spec.dirty_hive.is_some(), "hive_dirty"),
        (!spec.efs_files.is_empty(), "efs"),
    ] {
        assert_eq!(codes(w).contains(&code), flag, "{code}: {:?}", w.findings);
    }
}

/// Hives of the volume pass hivexsh and regipy.
fn check_hives_with_oracles(mount: &Path, spec: &WindowsSpec) {
    require_tool("hivexsh");
    let mut hives: Vec<std::path::PathBuf> = ["SYSTEM", "SOFTWARE", "SAM", "SECURITY", "DEFAULT"]
        .iter()
        .map(|h| mount.join("Windows/System32/config").join(h))
        .collect();
    for u in spec.users.iter().filter(|u| u.profile) {
        hives.push(mount.join(format!("Users/{}/NTUSER.DAT", u.name)));
        hives.push(mount.join(format!(
            "Users/{}/AppData/Local/Microsoft/Windows/UsrClass.dat",
            u.name
        )));
    }
    for h in &hives {
        let out = Command::new("hivexsh")
            .arg(h)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hivexsh {}: {}",
            h.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let out = Command::new("hivexregedit")
            .args(["--export", "--unsafe-printable-strings"])
            .arg(h)
            .arg("\\")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hivexregedit {}: {}",
            h.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // regipy: open, walk every key and value.
    let script = "import sys\nfrom regipy.registry import RegistryHive\nfor p in sys.argv[1:]:\n    h = RegistryHive(p)\n    n = sum(1 for _ in h.recurse_subkeys(as_json=False))\n    assert n > 0, p\n    print(p, n)\n";
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(&hives)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "regipy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // hivexsh sees the SAM quirk (Names value type = RID) and the UsrClass root name.
    if spec.real_sam.is_none() {
        let out = run(Command::new("hivexregedit")
            .args(["--export", "--prefix", "X"])
            .arg(&hives[2])
            .arg("\\SAM\\Domains\\Account\\Users\\Names"))
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        for u in &spec.users {
            assert!(text.contains(&format!("@=hex({:x}):", u.rid)), "{text}");
        }
        // hivex's view of Domains\Account\V: the machine SID is its last 24 bytes (where
        // NewSID and pypykatz-style tools look), and each user's V holds the name.
        let v = hivex_binary(&hives[2], "\\SAM\\Domains\\Account", "V");
        let sid: reseal_security::Sid = spec.machine_sid.parse().unwrap();
        assert_eq!(v[v.len() - 24..], sid.to_bytes()[..]);
        for u in &spec.users {
            let uv = hivex_binary(
                &hives[2],
                &format!("\\SAM\\Domains\\Account\\Users\\{:08X}", u.rid),
                "V",
            );
            let name: Vec<u8> = u
                .name
                .encode_utf16()
                .flat_map(|c| c.to_le_bytes())
                .collect();
            assert!(uv.windows(name.len()).any(|w| w == &name[..]), "{}", u.name);
            let uf = hivex_binary(
                &hives[2],
                &format!("\\SAM\\Domains\\Account\\Users\\{:08X}", u.rid),
                "F",
            );
            assert_eq!(uf[0x30..0x34], u.rid.to_le_bytes());
        }
    }
}

/// A REG_BINARY value as hivexregedit exports it.
fn hivex_binary(hive: &Path, key: &str, value: &str) -> Vec<u8> {
    let out = run(Command::new("hivexregedit")
        .args(["--export", "--prefix", "X"])
        .arg(hive)
        .arg(key))
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout)
        .replace("\\\n", "")
        .replace("\\\r\n", "");
    let section = format!("[X{key}]");
    let head = text
        .split("\n\n")
        .find(|b| b.trim_start().starts_with(&section))
        .unwrap_or_default()
        .to_string();
    let marker = format!("\"{value}\"=hex(3):");
    let line = head
        .lines()
        .find_map(|l| l.trim().strip_prefix(&marker).map(str::to_string))
        .unwrap_or_else(|| panic!("{value} not in {key}:\n{head}"));
    line.split(',')
        .map(|b| u8::from_str_radix(b.trim(), 16).unwrap())
        .collect()
}

#[test]
fn gpt_fixture_facts_and_independent_tools() {
    let dir = tempfile::tempdir().unwrap();
    let spec = variant("win-gpt");
    let raw = build(&spec, dir.path(), "win-gpt");
    let w = install_of(&raw);
    assert_facts(&spec, &w);
    // (The text `reseal inspect` prints from these facts is checked in the CLI's tests.)
    assert!(
        w.findings.iter().any(|f| f.code == "dpapi"),
        "{:?}",
        w.findings
    );
    // Containers: same facts through VHD and VHDX; qemu-img check passes on VHDX.
    for (fmt, ext) in [("vpc", "vhd"), ("vhdx", "vhdx")] {
        let p = dir.path().join(format!("win-gpt.{ext}"));
        convert(&raw, fmt, &p).unwrap();
        if ext == "vhdx" {
            run(Command::new("qemu-img")
                .args(["check", "-f", "vhdx"])
                .arg(&p))
            .unwrap();
        }
        let w2 = install_of(&p);
        assert_facts(&spec, &w2);
    }
    // Independent checks of the NTFS volume: extract it, mount with ntfs-3g, read every file,
    // compare every descriptor we set, ntfssecaudit -a.
    let vol = dir.path().join("vol.img");
    let (start, len) = {
        let img = Image::open(&raw, Access::ReadOnly).unwrap();
        let t = reseal_disk::partition::PartitionTable::read(&img).unwrap();
        let p = t.get(spec.windows_partition()).unwrap();
        (p.start, p.len)
    };
    run(Command::new("dd")
        .arg(format!("if={}", raw.display()))
        .arg(format!("of={}", vol.display()))
        .args(["bs=1M", "status=none", "conv=sparse"])
        .arg(format!("skip={}", start >> 20))
        .arg(format!("count={}", len >> 20)))
    .unwrap();
    // Per-structure error counts, not ntfssecaudit's closing line (printed even after errors).
    reseal_tests::ntfssecaudit_clean(&vol).unwrap();
    let m = NtfsMount::new(&vol, "ro").unwrap();
    let mut files = 0;
    let mut stack = vec![m.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else {
                std::fs::read(e.path())
                    .unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
                files += 1;
            }
        }
    }
    assert!(files > 20, "{files} files");
    for e in spec.entries().unwrap() {
        if let reseal_tests::Entry::Acl(p, sd) = e {
            let out = run(Command::new("getfattr")
                .args(["-n", "system.ntfs_acl", "-e", "hex", "--only-values"])
                .arg(m.path().join(&p)))
            .unwrap();
            assert_eq!(out.stdout, sd, "descriptor of {p}");
        }
    }
    // Task XML names a user SID; recycle bin folders are named after SIDs.
    let alice = format!("{}-1001", spec.machine_sid);
    assert!(m.path().join("$Recycle.Bin").join(&alice).is_dir());
    let xml = std::fs::read(m.path().join("Windows/System32/Tasks/ResealFixtureTask")).unwrap();
    let xml: Vec<u16> = xml[2..]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    assert!(String::from_utf16_lossy(&xml).contains(&format!("<UserId>{alice}</UserId>")));
    check_hives_with_oracles(m.path(), &spec);
    // SYSTEM\MountedDevices names the Windows partition by its GPT GUID.
    let md = hivex_binary(
        &m.path().join("Windows/System32/config/SYSTEM"),
        "\\MountedDevices",
        "\\\\DosDevices\\\\C:",
    );
    let img = Image::open(&raw, Access::ReadOnly).unwrap();
    let t = reseal_disk::partition::PartitionTable::read(&img).unwrap();
    let guid = t.get(spec.windows_partition()).unwrap().guid.unwrap();
    assert_eq!(
        guid.to_string().to_uppercase(),
        reseal_tests::windows::WINDOWS_PART_GUID
    );
    assert_eq!(&md[..8], b"DMIO:ID:");
    assert_eq!(
        md[8..],
        reseal_tests::windows::guid_bytes(&guid.to_string()).unwrap()
    );
    m.unmount().unwrap();
}

#[test]
fn mbr_with_control_set_002_domain_and_bare_volume() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["win-mbr", "win-domain", "bare-volume"] {
        let spec = if name == "bare-volume" {
            WindowsSpec {
                label: "none".into(),
                ..WindowsSpec::default()
            }
        } else {
            variant(name)
        };
        let raw = build(&spec, dir.path(), name);
        let w = install_of(&raw);
        assert_facts(&spec, &w);
        let vol = dir.path().join(format!("{name}.vol"));
        spec.extract_volume(&raw, &vol).unwrap();
        let m = NtfsMount::new(&vol, "ro").unwrap();
        check_hives_with_oracles(m.path(), &spec);
        m.unmount().unwrap();
        if spec.label == "dos" {
            let img = Image::open(&raw, Access::ReadOnly).unwrap();
            let t = reseal_disk::partition::PartitionTable::read(&img).unwrap();
            assert!(
                matches!(t.scheme, reseal_disk::partition::Scheme::Mbr { signature } if signature == reseal_tests::windows::MBR_DISK_ID),
                "{:?}",
                t.scheme
            );
        }
    }
}

#[test]
fn unsafe_state_variants() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["win-dirty-volume", "win-hibernated", "win-fast-startup"] {
        let spec = variant(name);
        let raw = build(&spec, dir.path(), name);
        let w = install_of(&raw);
        assert_facts(&spec, &w);
        assert_eq!(
            w.findings[0].severity,
            Severity::Blocker,
            "{name}: {:?}",
            w.findings
        );
    }
    let spec = variant("win-bitlocker");
    let raw = build(&spec, dir.path(), "win-bitlocker");
    let mut img = Image::open(&raw, Access::ReadOnly).unwrap();
    let s = scan(&mut img).unwrap();
    assert_eq!(s.installs.len(), 1);
    assert_facts(&spec, &s.installs[0]);
    let bl = s
        .skipped
        .iter()
        .find(|k| k.partition == 4)
        .expect("bitlocker partition reported");
    assert!(bl.reason.contains("BitLocker"), "{bl:?}");
    assert_eq!(bl.kind, reseal_windows::SkipKind::BitLocker, "{bl:?}");
}

#[test]
fn dirty_hive_replayed_from_log_and_efs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = WindowsSpec {
        txr_pending: true,
        ..variant("win-dirty-hive")
    };
    let raw = build(&spec, dir.path(), "win-dirty-hive");
    let w = install_of(&raw);
    // The primary SYSTEM holds "STALE-PRIMARY"; the spec's name only comes from the log.
    assert_facts(&spec, &w);
    // The lower-level entry point on a browse volume, with a tiny EFS walk budget.
    {
        let mut img = Image::open(&raw, Access::ReadOnly).unwrap();
        let t = reseal_disk::partition::PartitionTable::read(&img).unwrap();
        let p = t.get(spec.windows_partition()).unwrap().clone();
        let slice = reseal_disk::partition::Slice::partition(&mut img, &p).unwrap();
        let mut vol = reseal_ntfs::browse::Volume::open(slice).unwrap();
        let small = WindowsInstall::open_with_limit(&mut vol, p.number, 5).unwrap();
        assert!(
            small.efs.truncated && small.efs.visited == 5,
            "{:?}",
            small.efs
        );
        assert!(
            codes(&small).contains(&"efs_scan_truncated"),
            "{:?}",
            small.findings
        );
        assert_eq!(small.computer.netbios, w.computer.netbios);
    }
    // hivexsh still opens the dirty primary (it ignores logs) and sees the stale name.
    let m = {
        let img = Image::open(&raw, Access::ReadOnly).unwrap();
        let t = reseal_disk::partition::PartitionTable::read(&img).unwrap();
        let p = t.get(spec.windows_partition()).unwrap().clone();
        let vol = dir.path().join("vol.img");
        run(Command::new("dd")
            .arg(format!("if={}", raw.display()))
            .arg(format!("of={}", vol.display()))
            .args(["bs=1M", "status=none", "conv=sparse"])
            .arg(format!("skip={}", p.start >> 20))
            .arg(format!("count={}", p.len >> 20)))
        .unwrap();
        // ntfsinfo agrees the file is encrypted (ntfs-3g itself would not set the bit).
        let out = run(Command::new("ntfsinfo")
            .args(["-F", "/Users/alice/Documents/secret.efs"])
            .arg(&vol))
        .unwrap();
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("ENCRYPTED"),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        NtfsMount::new(&vol, "ro,efs_raw").unwrap()
    };
    let out = run(Command::new("hivexregedit")
        .args(["--export", "--prefix", "X"])
        .arg(m.path().join("Windows/System32/config/SYSTEM"))
        .arg("\\ControlSet001\\Control\\ComputerName\\ComputerName"))
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        text.contains("53,00,54,00,41,00,4c,00,45,00,2d,00,50,00"),
        "{text}"
    );
    // regipy (an independent implementation) replays our HvLE log and sees the spec's name.
    let cfg = m.path().join("Windows/System32/config");
    let sys = dir.path().join("SYSTEM");
    let log = dir.path().join("SYSTEM.LOG1");
    std::fs::copy(cfg.join("SYSTEM"), &sys).unwrap();
    std::fs::copy(cfg.join("SYSTEM.LOG1"), &log).unwrap();
    let script = "import sys\nfrom regipy.recovery import apply_transaction_logs\nfrom regipy.registry import RegistryHive\nout, n = apply_transaction_logs(sys.argv[1], sys.argv[2], restored_hive_path=sys.argv[3])\nassert n >= 1, n\nk = RegistryHive(out).get_key('\\\\ControlSet001\\\\Control\\\\ComputerName\\\\ComputerName')\nprint([v.value for v in k.iter_values() if v.name == 'ComputerName'][0])\n";
    let out = run(Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&sys)
        .arg(&log)
        .arg(dir.path().join("SYSTEM.recovered")))
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        spec.computer_name
    );
    m.unmount().unwrap();
}

/// (SAM, SECURITY, machine SID, account names, primary-domain SID) from MANIFEST.md.
type Case = (
    &'static str,
    Option<&'static str>,
    &'static str,
    &'static [&'static str],
    Option<&'static str>,
);

/// Real SAM/SECURITY pairs: the machine SID and accounts the corpus MANIFEST lists.
#[test]
fn real_corpus_sam_security_pairs() {
    let cases: [Case; 6] = [
        (
            "aiowinreg/nt/sam.reg",
            Some("aiowinreg/nt/security.reg"),
            "S-1-5-21-247810356-1021781772-2498087",
            &["Administrator", "Guest", "SERVER$", "test"],
            Some("S-1-5-21-247810356-1021781772-2498087"),
        ),
        (
            "aiowinreg/win2008_32/sam.reg",
            Some("aiowinreg/win2008_32/security.reg"),
            "S-1-5-21-589621100-4099512711-419229089",
            &["Administrator", "Guest"],
            Some("S-1-5-21-2275648644-3942841253-2971125818"),
        ),
        (
            "aiowinreg/win2008r2_64/sam.reg",
            Some("aiowinreg/win2008r2_64/security.reg"),
            "S-1-5-21-1245377938-162839305-2294755303",
            &["Administrator", "Guest"],
            Some("S-1-5-21-664776169-1866141539-3234210782"),
        ),
        (
            "aiowinreg/win2012_64/sam.reg",
            Some("aiowinreg/win2012_64/security.reg"),
            "S-1-5-21-2633610193-2350519190-1461333034",
            &["Administrator", "Guest"],
            Some("S-1-5-21-3242107621-661933761-745066312"),
        ),
        (
            "aiowinreg/win2016_64/sam.reg",
            Some("aiowinreg/win2016_64/security.reg"),
            "S-1-5-21-161349065-230161307-1850086198",
            &["Administrator", "DefaultAccount", "Guest"],
            Some("S-1-5-21-1455456205-2985946602-3455386300"),
        ),
        // regipy: a Windows 7 SAM with a (dirty, log-less) Windows 10 SECURITY of another machine.
        (
            "regipy/SAM.xz",
            Some("regipy/SECURITY.xz"),
            "S-1-5-21-1760460187-1592185332-161725925",
            &["Administrator", "Guest", "Preston"],
            None,
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (i, (sam, sec, machine, users, domain)) in cases.iter().enumerate() {
        let spec = WindowsSpec {
            real_sam: Some(sam.to_string()),
            real_security: sec.map(str::to_string),
            users: Vec::new(),
            label: if i % 2 == 0 {
                "gpt".into()
            } else {
                "dos".into()
            },
            system_dpapi: false,
            ..WindowsSpec::default()
        };
        let raw = build(&spec, dir.path(), &format!("real{i}"));
        let w = install_of(&raw);
        assert_eq!(w.sam_machine_sid.as_deref(), Some(*machine), "{sam}");
        assert_eq!(w.machine_sid.as_deref(), Some(*machine), "{sam}");
        let mut names: Vec<&str> = w.users.iter().map(|u| u.name.as_str()).collect();
        names.sort_unstable();
        assert_eq!(names, *users, "{sam}");
        for u in &w.users {
            assert_eq!(
                u.sid.as_deref(),
                Some(format!("{machine}-{}", u.rid).as_str())
            );
            assert_eq!(u.names_rid, Some(u.rid), "{sam}: Names\\{}", u.name);
            if u.name == "Administrator" {
                assert_eq!(u.rid, 500);
            }
            if u.name == "Guest" {
                assert_eq!(u.rid, 501);
                assert!(u.disabled, "{sam}: Guest should be disabled");
            }
        }
        if i < 5 {
            assert_eq!(w.lsa_machine_sid.as_deref(), Some(*machine), "{sec:?}");
            assert!(
                !w.findings.iter().any(|f| f.code == "sid_mismatch"),
                "{:?}",
                w.findings
            );
            assert_eq!(w.domain.domain_sid.as_deref(), *domain, "{sec:?}");
            assert!(w.domain.joined);
            assert_eq!(w.domain.domain_controller, i == 0, "{sec:?}");
        } else {
            assert_eq!(
                w.lsa_machine_sid.as_deref(),
                Some("S-1-5-21-1786693902-1815088602-2777321892")
            );
            assert!(w
                .findings
                .iter()
                .any(|f| f.code == "sid_mismatch" && f.severity == Severity::Blocker));
            let sec = w.hives.iter().find(|h| h.name == "SECURITY").unwrap();
            assert!(
                matches!(sec.state, HiveState::DirtyWithoutUsableLogs { .. }),
                "{:?}",
                sec.state
            );
            assert!(w.findings.iter().any(|f| f.code == "hive_dirty_no_logs"));
        }
    }
}

/// A spec from JSON with defaults.
#[test]
fn spec_from_json() {
    let s = WindowsSpec::from_json(
        r#"{"machine_sid": "S-1-5-21-1-2-3", "computer_name": "PC1", "users": [{"name": "x", "rid": 1005}]}"#,
    )
    .unwrap();
    assert_eq!(s.users.len(), 1);
    assert!(s.users[0].enabled && s.users[0].profile);
    assert_eq!(s.label, "gpt");
    assert!(serde_json::from_str::<WindowsSpec>(r#"{"bogus": 1}"#).is_err());
}

/// `build_all` (what `cargo xtask fixtures` calls) writes every variant and both containers,
/// and discovery finds one install in each.
#[test]
fn build_all_variants() {
    let dir = tempfile::tempdir().unwrap();
    let paths = reseal_tests::windows::build_all(dir.path()).unwrap();
    assert_eq!(paths.len(), variants().len() + 2);
    for p in &paths {
        let w = install_of(p);
        assert!(w.machine_sid.is_some(), "{}", p.display());
    }
}

/// Hostile hive bytes inside an image never make discovery panic or fail as a whole: random
/// bytes are written over the hive bins of every hive (in place in the raw image, restored
/// after each round) and `scan` must still return the install with located errors.
#[test]
fn corrupted_hives_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let spec = WindowsSpec {
        label: "none".into(),
        ntfs_mib: 24,
        ..WindowsSpec::default()
    };
    let raw = build(&spec, dir.path(), "hostile");
    let bytes = std::fs::read(&raw).unwrap();
    let hives = reseal_tests::find_hives(&bytes);
    assert!(hives.len() >= 9, "{} hives found", hives.len());
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&raw)
        .unwrap();
    let rnd = reseal_tests::pseudo_random(77, 64 * 1024);
    let mut errors_seen = 0;
    for round in 0..48usize {
        let saved =
            reseal_tests::scribble_hive(&f, hives[round % hives.len()], round, 24, &rnd).unwrap();
        let mut img = Image::open(&raw, Access::ReadOnly).unwrap();
        let s = scan(&mut img).expect("scan must not fail on hostile hives");
        assert_eq!(s.installs.len(), 1, "round {round}: {:?}", s.skipped);
        let w = &s.installs[0];
        if !w.errors.is_empty() || w.hives.iter().any(|h| h.state != HiveState::Clean) {
            errors_seen += 1;
        }
        drop(img);
        reseal_tests::restore_bytes(&f, saved).unwrap();
    }
    // Restored: the facts are back.
    assert_facts(&spec, &install_of(&raw));
    eprintln!("{errors_seen}/48 rounds produced located errors");
    assert!(errors_seen > 0, "no round produced a located error");
}

/// Real dirty hives with their logs (yarp corpus) placed as DEFAULT: new-format logs are
/// replayed (both named), an old-format log is replayed, and a bad log leaves the hive dirty
/// without usable logs (a blocker).
#[test]
fn real_dirty_hives_with_logs() {
    let dir = tempfile::tempdir().unwrap();
    let y = |p: &str| Some(format!("yarp/{p}"));
    let cases = [
        (
            RealHive {
                name: "DEFAULT".into(),
                hive: "yarp/NewDirtyHive1/NewDirtyHive.xz".into(),
                log1: y("NewDirtyHive1/NewDirtyHive.LOG1.xz"),
                log2: y("NewDirtyHive1/NewDirtyHive.LOG2.xz"),
            },
            Some(vec!["LOG1".to_string(), "LOG2".to_string()]),
        ),
        (
            RealHive {
                name: "DEFAULT".into(),
                hive: "yarp/OldDirtyHive/OldDirtyHive.xz".into(),
                log1: y("OldDirtyHive/OldDirtyHive.LOG1.xz"),
                log2: None,
            },
            Some(vec!["LOG1".to_string()]),
        ),
        (
            RealHive {
                name: "DEFAULT".into(),
                hive: "yarp/BadLogHive1/BadLogHive.xz".into(),
                log1: y("BadLogHive1/BadLogHive.LOG1.xz"),
                log2: None,
            },
            None,
        ),
    ];
    for (i, (real, want)) in cases.into_iter().enumerate() {
        let spec = WindowsSpec {
            label: "none".into(),
            ntfs_mib: 24,
            real_hives: vec![real.clone()],
            ..WindowsSpec::default()
        };
        let raw = build(&spec, dir.path(), &format!("yarp{i}"));
        let w = install_of(&raw);
        let h = w.hives.iter().find(|h| h.name == "DEFAULT").unwrap();
        match want {
            Some(logs) => {
                assert_eq!(h.state, HiveState::DirtyReplayed { logs }, "{}", real.hive);
                assert!(codes(&w).contains(&"hive_dirty"));
            }
            None => {
                assert!(
                    matches!(h.state, HiveState::DirtyWithoutUsableLogs { .. }),
                    "{}: {:?}",
                    real.hive,
                    h.state
                );
                assert_eq!(w.findings[0].severity, Severity::Blocker);
                assert!(codes(&w).contains(&"hive_dirty_no_logs"));
            }
        }
        // The other facts are unaffected.
        assert_eq!(
            w.computer.netbios.as_deref(),
            Some(spec.computer_name.as_str())
        );
        assert_eq!(w.machine_sid.as_deref(), Some(spec.machine_sid.as_str()));
    }
}

/// Windows-made volumes without a Windows install (corpus): no install, each volume skipped
/// with a reason, no error.
#[test]
fn corpus_volumes_without_windows() {
    let dir = tempfile::tempdir().unwrap();
    for rel in [
        "velociraptor/test.vhdx.xz",
        "velociraptor/test.ntfs.dd.raw.xz",
    ] {
        let p = reseal_tests::corpus_file(rel, dir.path()).unwrap();
        let mut img = Image::open(&p, Access::ReadOnly).unwrap();
        let s = scan(&mut img).unwrap();
        assert!(s.installs.is_empty(), "{rel}");
        assert!(!s.skipped.is_empty(), "{rel}");
        assert!(
            s.skipped
                .iter()
                .any(|k| k.reason.contains("without Windows")),
            "{rel}: {:?}",
            s.skipped
        );
    }
}
