//! The identity operations of `generalize` on the Windows-like fixture (whose identifiers and
//! files are listed in `reseal_tests::windows::ids`), checked with hivexregedit exports and an
//! ntfs-3g mount: after the default operations every identifier is new or gone, the machine
//! keys carry the new MachineGuid, the cleaned files are gone and their contents are nowhere
//! in the image, and nothing else changed; two clones share no identifier; `-machine-sid`
//! keeps the SID; a dropped operation leaves its items byte-identical.

use reseal_disk::{Access, Image};
use reseal_tests::windows::{ids, WindowsSpec};
use reseal_tests::{require_tool, run, sha256_hex, NtfsMount};
use reseal_windows::generalize::{generalize, Change, Operation, Operations, Options, Report};
use reseal_windows::{discover, MachineIdentifiers};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// A hive export as (key, value name) -> data text, all lower case.
type Export = BTreeMap<(String, String), String>;

struct Seen {
    software: Export,
    system: Export,
    /// Path -> sha256 of every file.
    files: BTreeMap<String, String>,
}

fn export(h: &Path) -> Export {
    let out = run(Command::new("hivexregedit")
        .args(["--export", "--unsafe-printable-strings"])
        .arg(h)
        .arg("\\"))
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout)
        .replace(",\\\n  ", ",")
        .to_ascii_lowercase();
    let mut key = String::new();
    let mut m = Export::new();
    for l in text.lines() {
        if let Some(k) = l.strip_prefix('[').and_then(|k| k.strip_suffix(']')) {
            key = k.to_string();
            m.insert((key.clone(), String::new()), "(key)".into());
        } else if let Some((n, d)) = l.split_once("\"=").or_else(|| l.split_once("@=")) {
            let n = n.trim_start_matches('"').to_string();
            let n = if l.starts_with('@') { "@".into() } else { n };
            m.insert((key.clone(), n), d.to_string());
        }
    }
    m
}

fn look(spec: &WindowsSpec, raw: &Path, dir: &Path) -> Seen {
    let vol = dir.join("vol.img");
    spec.extract_volume(raw, &vol).unwrap();
    let m = NtfsMount::new(&vol, "ro").unwrap();
    let cfg = m.path().join("Windows/System32/config");
    let software = export(&cfg.join("SOFTWARE"));
    let system = export(&cfg.join("SYSTEM"));
    let mut files = BTreeMap::new();
    fn walk(root: &Path, d: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, sha256_hex(&std::fs::read(&p).unwrap()));
            }
        }
    }
    walk(m.path(), m.path(), &mut files);
    m.unmount().unwrap();
    Seen {
        software,
        system,
        files,
    }
}

fn build(dir: &Path) -> (WindowsSpec, PathBuf) {
    require_tool("hivexregedit");
    require_tool("ntfs-3g");
    let spec = WindowsSpec::default();
    let raw = dir.join("w.raw");
    spec.build(&raw).unwrap();
    (spec, raw)
}

fn run_ops(raw: &Path, ops: &str, name: Option<&str>) -> Report {
    let mut o = Options::default();
    o.operations = Operations::parse(ops).unwrap();
    o.computer_name = name.map(str::to_string);
    let mut img = Image::open(raw, Access::ReadWrite).unwrap();
    let r = generalize(&mut img, &o).unwrap();
    img.commit().unwrap();
    r
}

fn identifiers(raw: &Path) -> (Option<String>, MachineIdentifiers) {
    let mut img = Image::open(raw, Access::ReadOnly).unwrap();
    let w = discover(&mut img).unwrap().remove(0);
    (w.machine_sid, w.identifiers)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Keys (lower case, `\`-rooted) and values a run of every operation but `machine-sid` with
/// computer name NEWHOST may change; everything else must be identical.
fn documented(key: &str, value: &str) -> bool {
    let k = key;
    let v = value;
    let cs = |rest: &str| {
        k.strip_prefix("\\controlset")
            .and_then(|t| t.get(3..))
            .is_some_and(|t| t == rest)
    };
    (k == "\\microsoft\\cryptography" && v == "machineguid")
        || (k == "\\microsoft\\windows\\currentversion\\windowsupdate"
            && ["susclientid", "susclientidvalidation", "pingid"].contains(&v))
        || (k == "\\microsoft\\sqmclient" && v == "machineid")
        || (k == "\\microsoft\\windows advanced threat protection" && v == "senseguid")
        || k.starts_with(&format!(
            "\\classes\\cid\\{}",
            ids::MSDTC_CID.to_ascii_lowercase()
        ))
        || k.starts_with(&format!(
            "\\classes\\cid\\{}",
            ids::MSDTCUIS_CID.to_ascii_lowercase()
        ))
        || k.starts_with("\\microsoft\\systemcertificates\\remote desktop\\certificates\\0a1b2c3d")
        || (k == "\\microsoft\\windows nt\\currentversion\\winlogon"
            && ["defaultdomainname", "altdefaultdomainname"].contains(&v))
        || (cs("\\services\\tcpip6\\parameters") && v == "dhcpv6duid")
        || (cs("\\services\\lanmanserver\\parameters") && v == "guid")
        || (cs("\\control\\terminal server\\winstations\\rdp-tcp") && v == "sslcertificatesha1hash")
        || (cs("\\control\\computername\\computername") && v == "computername")
        || (cs("\\control\\computername\\activecomputername") && v == "computername")
        || (cs("\\services\\tcpip\\parameters") && ["hostname", "nv hostname"].contains(&v))
}

/// Every entry of `before` outside the documented changes is in `after` unchanged, and every
/// new entry of `after` is documented or a renamed MSDTC CID key.
fn assert_only_documented(before: &Export, after: &Export, what: &str) {
    for ((k, v), d) in before {
        if documented(k, v) {
            continue;
        }
        assert_eq!(
            after.get(&(k.clone(), v.clone())),
            Some(d),
            "{what}: {k} [{v}] changed or vanished"
        );
    }
    for (k, v) in after.keys() {
        if !before.contains_key(&(k.clone(), v.clone())) {
            assert!(
                documented(k, v) || k.starts_with("\\classes\\cid\\{"),
                "{what}: {k} [{v}] appeared"
            );
        }
    }
}

#[test]
fn default_operations_renew_every_identifier() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, raw) = build(dir.path());
    let before = look(&spec, &raw, dir.path());
    let (old_sid, old) = identifiers(&raw);
    assert_eq!(old.machine_guid.as_deref(), Some(ids::MACHINE_GUID));
    assert!(old.wsus_client_id.is_some() && old.dhcpv6_duid.is_some());
    // An event log whose last cluster's slack (past its size) holds the marker: written long,
    // then cut to 100 bytes.
    {
        let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
        let t = reseal_disk::partition::PartitionTable::read(&img).unwrap();
        let p = t.partitions.iter().find(|p| p.number == 3).unwrap().clone();
        let mut slice = reseal_disk::partition::Slice::new(&mut img, p.start, p.len).unwrap();
        let mut vol = reseal_ntfs::Volume::open(&mut slice).unwrap();
        let path = "Windows/System32/winevt/Logs/Slack.evtx";
        let mut data = vec![b'e'; 200];
        data.extend_from_slice(ids::SECRET);
        data.resize(3000, b'e');
        vol.write_file(path, &data).unwrap();
        vol.set_len(path, 100).unwrap();
        vol.flush().unwrap();
        drop(vol);
        img.commit().unwrap();
    }
    let raw_before = std::fs::read(&raw).unwrap();
    assert!(contains(&raw_before, ids::SECRET));

    let mut o = Options::default();
    o.computer_name = Some("NEWHOST".into());
    let mut img = Image::open(&raw, Access::ReadWrite).unwrap();
    let rep = generalize(&mut img, &o).unwrap();
    img.commit().unwrap();
    drop(img);
    assert!(
        // provision only runs with its flags (--oobe, --unattend, ...).
        rep.operations
            .iter()
            .all(|s| s.enabled == (s.name != reseal_windows::generalize::Operation::Provision)),
        "{:?}",
        rep.operations
    );
    // The fixture has no shadow copies (restore-points is tested on a Windows-made VSS volume
    // in restore_points.rs).
    for s in rep
        .operations
        .iter()
        .filter(|s| s.enabled && s.name != reseal_windows::generalize::Operation::RestorePoints)
    {
        assert!(s.changes > 0, "{} made no change", s.name);
    }
    let new_guid = rep.new_machine_guid.clone().unwrap();
    assert_eq!(rep.old_machine_guid.as_deref(), Some(ids::MACHINE_GUID));
    assert_eq!(new_guid, new_guid.to_ascii_lowercase());
    serde_json::to_string(&rep).unwrap();

    // Discovery: every identifier new or gone.
    let (new_sid, new) = identifiers(&raw);
    assert_ne!(new_sid, old_sid);
    assert_eq!(new.machine_guid.as_deref(), Some(new_guid.as_str()));
    assert_ne!(new.machine_guid, old.machine_guid);
    assert_eq!(new.wsus_client_id, None);
    assert_eq!(new.wsus_client_id_validation, None);
    assert_eq!(new.wsus_ping_id, None);
    assert_eq!(new.wsus_account_domain_sid, new_sid);
    assert_eq!(new.sqm_machine_id, None);
    assert_eq!(new.mde_sense_guid, None);
    assert_eq!(new.dhcpv6_duid, None);
    assert!(new.smb_server_guid.is_some());
    assert_ne!(new.smb_server_guid, old.smb_server_guid);
    assert_eq!(new.msdtc_cids.len(), 2);
    assert!(new.msdtc_cids.iter().all(|c| !old.msdtc_cids.contains(c)));
    assert!(new.rdp_certificates.is_empty() && new.rdp_certificate_hash.is_none());
    assert_eq!(new.default_domain_name.as_deref(), Some("NEWHOST"));

    let after = look(&spec, &raw, dir.path());
    // The other CID key stays; the winlogon values hold the new name.
    let other = format!("\\classes\\cid\\{}", ids::OTHER_CID.to_ascii_lowercase());
    assert!(after.software.contains_key(&(other, String::new())));
    let wl = "\\microsoft\\windows nt\\currentversion\\winlogon".to_string();
    let alt = &after.software[&(wl, "altdefaultdomainname".into())];
    assert_eq!(alt, "str(1):\"newhost\"");
    // Machine keys: renamed to the new GUID, same content; the RDP key gone.
    let mk = ids::MACHINE_KEYS;
    let old_key = format!("{mk}/{}_{}", ids::OTHER_KEY_HASH, ids::MACHINE_GUID);
    let new_key = format!("{mk}/{}_{}", ids::OTHER_KEY_HASH, new_guid);
    assert_eq!(after.files.get(&new_key), before.files.get(&old_key));
    assert!(!after.files.contains_key(&old_key));
    assert!(!after.files.keys().any(|f| f.contains(ids::RDP_KEY_HASH)));
    // Cleaned files gone, their neighbours kept; no byte of their contents is left.
    assert!(!after
        .files
        .contains_key("Windows/System32/winevt/Logs/Slack.evtx"));
    for (_, f) in ids::CLEANED {
        assert!(before.files.contains_key(f), "{f} not in the fixture");
        assert!(!after.files.contains_key(f), "{f} still there");
    }
    for f in ids::KEPT {
        assert_eq!(after.files.get(f), before.files.get(f), "{f}");
    }
    assert!(
        !contains(&std::fs::read(&raw).unwrap(), ids::SECRET),
        "a deleted file's content is still in the image"
    );
}

#[test]
fn keep_sid_changes_only_the_documented_rest() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, raw) = build(dir.path());
    let before = look(&spec, &raw, dir.path());
    let (old_sid, _) = identifiers(&raw);
    let rep = run_ops(&raw, "-machine-sid", Some("NEWHOST"));
    assert_eq!(rep.old_sid, rep.new_sid);
    assert!(!rep
        .changes
        .iter()
        .any(|c| c.operation() == Some(Operation::MachineSid)));
    let (sid, ids_after) = identifiers(&raw);
    assert_eq!(sid, old_sid, "-machine-sid changed the SID");
    assert_eq!(ids_after.wsus_account_domain_sid, old_sid);
    assert_ne!(ids_after.machine_guid.as_deref(), Some(ids::MACHINE_GUID));
    let after = look(&spec, &raw, dir.path());
    assert_only_documented(&before.software, &after.software, "SOFTWARE");
    assert_only_documented(&before.system, &after.system, "SYSTEM");
    // Files: only the cleaned ones and the machine keys differ.
    let cleaned: BTreeSet<&str> = ids::CLEANED.iter().map(|(_, f)| *f).collect();
    for (f, h) in &before.files {
        if cleaned.contains(f.as_str()) || f.starts_with(ids::MACHINE_KEYS) {
            continue;
        }
        let hive = f.starts_with("Windows/System32/config/");
        if !hive {
            assert_eq!(after.files.get(f), Some(h), "{f} changed");
        }
    }
}

#[test]
fn two_clones_share_no_identifier() {
    let dir = tempfile::tempdir().unwrap();
    let (_, raw) = build(dir.path());
    let b = dir.path().join("b.raw");
    std::fs::copy(&raw, &b).unwrap();
    run_ops(&raw, "defaults", Some("random"));
    run_ops(&b, "defaults", Some("random"));
    let (sa, a) = identifiers(&raw);
    let (sb, bi) = identifiers(&b);
    assert_ne!(sa, sb);
    assert_ne!(a.machine_guid, bi.machine_guid);
    assert_ne!(a.smb_server_guid, bi.smb_server_guid);
    assert!(a.msdtc_cids.iter().all(|c| !bi.msdtc_cids.contains(c)));
    for i in [&a, &bi] {
        assert!(i.wsus_client_id.is_none() && i.sqm_machine_id.is_none());
        assert!(i.mde_sense_guid.is_none() && i.dhcpv6_duid.is_none());
        let n = i.default_domain_name.clone().unwrap();
        assert!(n.starts_with("DESKTOP-") && n.len() == 15, "{n}");
    }
    assert_ne!(a.default_domain_name, bi.default_domain_name);
}

#[test]
fn a_dropped_operation_leaves_its_items_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (spec, raw) = build(dir.path());
    let before = look(&spec, &raw, dir.path());
    let pristine = dir.path().join("pristine.raw");
    std::fs::copy(&raw, &pristine).unwrap();
    for op in [
        "machine-ids",
        "rdp-certificate",
        "ssh-hostkeys",
        "event-logs",
        "swap-files",
        "setup-logs",
    ] {
        std::fs::copy(&pristine, &raw).unwrap();
        let rep = run_ops(&raw, &format!("-{op}"), None);
        let summary = rep.operations.iter().find(|s| s.name.name() == op).unwrap();
        assert!(
            !summary.enabled && summary.changes == 0,
            "{op}: {summary:?}"
        );
        assert!(!rep.changes.iter().any(|c| matches!(c,
            Change::ValueSet { operation, .. } | Change::ValueDeleted { operation, .. }
            | Change::FileDeleted { operation, .. } if operation.name() == op)));
        let after = look(&spec, &raw, dir.path());
        for (o, f) in ids::CLEANED {
            if o == op {
                assert_eq!(after.files.get(f), before.files.get(f), "-{op}: {f}");
            } else {
                assert!(!after.files.contains_key(f), "-{op}: {f} kept");
            }
        }
        let mk = ids::MACHINE_KEYS;
        let rdp_key = format!("{mk}/{}_{}", ids::RDP_KEY_HASH, ids::MACHINE_GUID);
        let (_, i) = identifiers(&raw);
        match op {
            "machine-ids" => {
                assert_eq!(i.machine_guid.as_deref(), Some(ids::MACHINE_GUID));
                assert_eq!(i.wsus_client_id.as_deref(), Some(ids::SUS_CLIENT_ID));
                assert_eq!(i.sqm_machine_id.as_deref(), Some(ids::SQM_MACHINE_ID));
                assert_eq!(i.mde_sense_guid.as_deref(), Some(ids::SENSE_GUID));
                assert!(i.dhcpv6_duid.is_some() && i.wsus_client_id_validation.is_some());
                let other = format!("{mk}/{}_{}", ids::OTHER_KEY_HASH, ids::MACHINE_GUID);
                assert_eq!(after.files.get(&other), before.files.get(&other));
                for k in [
                    "\\microsoft\\sqmclient",
                    "\\microsoft\\windows\\currentversion\\windowsupdate",
                    "\\microsoft\\cryptography",
                ] {
                    let pick = |e: &Export| -> Vec<(String, String)> {
                        e.iter()
                            .filter(|((kk, v), _)| kk == k && v != "accountdomainsid")
                            .map(|((_, v), d)| (v.clone(), d.clone()))
                            .collect()
                    };
                    assert_eq!(pick(&after.software), pick(&before.software), "{k}");
                }
            }
            "rdp-certificate" => {
                assert_eq!(i.rdp_certificates.len(), 1);
                assert!(i.rdp_certificate_hash.is_some());
                // The key file stays, renamed with the MachineGuid like every machine key.
                let g = i.machine_guid.clone().unwrap();
                let renamed = format!("{mk}/{}_{g}", ids::RDP_KEY_HASH);
                assert_eq!(after.files.get(&renamed), before.files.get(&rdp_key));
            }
            _ => {
                assert!(i.rdp_certificates.is_empty());
                assert!(!after.files.keys().any(|f| f.contains(ids::RDP_KEY_HASH)));
            }
        }
    }
}

/// dissect.target (an independent reader of the whole image: partitions, NTFS, hives) sees the
/// new name and SID after the default operations, and the old ones with `-machine-sid` and no
/// name.
#[test]
fn dissect_reads_the_new_hostname_and_machine_sid() {
    require_tool("target-query");
    let dir = tempfile::tempdir().unwrap();
    let (spec, raw) = build(dir.path());
    let query = |raw: &Path| {
        let h = run(Command::new("target-query")
            .args(["-q", "-f", "hostname"])
            .arg(raw))
        .unwrap();
        let s = run(Command::new("target-query")
            .args(["-q", "-s", "-f", "machine_sid"])
            .arg(raw))
        .unwrap();
        (
            String::from_utf8_lossy(&h.stdout).into_owned(),
            String::from_utf8_lossy(&s.stdout).into_owned(),
        )
    };
    let (h, s) = query(&raw);
    assert!(h.contains(&spec.computer_name), "{h}");
    assert!(s.contains(&spec.machine_sid), "{s}");
    let b = dir.path().join("b.raw");
    std::fs::copy(&raw, &b).unwrap();
    let rep = run_ops(&raw, "defaults", Some("CLONE-0001"));
    let (h, s) = query(&raw);
    assert!(h.contains("CLONE-0001"), "{h}");
    assert!(
        s.contains(&rep.new_sid) && !s.contains(&spec.machine_sid),
        "{s}"
    );
    run_ops(&b, "-machine-sid", None);
    let (h, s) = query(&b);
    assert!(h.contains(&spec.computer_name), "{h}");
    assert!(s.contains(&spec.machine_sid), "{s}");
}

/// A real Windows 7 SYSTEM hive (regipy corpus; two control sets, each with a DHCPv6 DUID and
/// an SMB server GUID) as the fixture's SYSTEM: the DUIDs are gone, the GUIDs new, the name set,
/// and every other key and value of the export is unchanged.
#[test]
fn real_system_hive_identifiers() {
    require_tool("hivexregedit");
    require_tool("ntfs-3g");
    let spec = WindowsSpec {
        ntfs_mib: 64,
        real_hives: vec![reseal_tests::windows::RealHive {
            name: "SYSTEM".into(),
            hive: "regipy/SYSTEM.xz".into(),
            log1: None,
            log2: None,
        }],
        ..WindowsSpec::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("w.raw");
    spec.build(&raw).unwrap();
    let before = look(&spec, &raw, dir.path());
    let duids = |e: &Export| {
        e.keys()
            .filter(|(k, v)| k.ends_with("\\services\\tcpip6\\parameters") && v == "dhcpv6duid")
            .count()
    };
    assert_eq!(duids(&before.system), 2, "the corpus hive has two DUIDs");
    let (_, old) = identifiers(&raw);
    let rep = run_ops(&raw, "-machine-sid", Some("NEWHOST"));
    assert!(
        rep.warnings.iter().all(|w| !w.contains("SYSTEM")),
        "{:?}",
        rep.warnings
    );
    let after = look(&spec, &raw, dir.path());
    assert_eq!(duids(&after.system), 0);
    assert_only_documented(&before.system, &after.system, "real SYSTEM");
    let (_, new) = identifiers(&raw);
    assert!(old.smb_server_guid.is_some());
    assert_ne!(new.smb_server_guid, old.smb_server_guid);
    let guids = |e: &Export| -> Vec<String> {
        e.iter()
            .filter(|((k, v), _)| {
                k.ends_with("\\services\\lanmanserver\\parameters") && v == "guid"
            })
            .map(|(_, d)| d.clone())
            .collect()
    };
    let (b, a) = (guids(&before.system), guids(&after.system));
    assert_eq!(a.len(), 2);
    assert!(
        a.iter().all(|g| !b.contains(g) && g.starts_with("hex(3):")),
        "{a:?}"
    );
    // The control sets held one GUID; they hold one new GUID.
    assert_eq!(b[0], b[1]);
    assert_eq!(a[0], a[1]);
}
