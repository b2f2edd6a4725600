//! The hives of discovery: [`open_hive`] (recovered in memory when dirty), value helpers,
//! and the facts read from SYSTEM, SOFTWARE, SAM and SECURITY.

use std::collections::BTreeMap;

use reseal_disk::Device;
use reseal_hive::Hive;
use reseal_ntfs::browse::Volume;
use reseal_security::Sid;

use super::{HiveInfo, HiveState, LogFile, MachineIdentifiers, Product, WindowsInstall};
use crate::sam;

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn subkeys_of(h: &Hive, key: &str) -> Vec<String> {
    let Ok(k) = h.open_path(key) else {
        return Vec::new();
    };
    let Ok(it) = k.subkeys() else {
        return Vec::new();
    };
    it.filter_map(|s| s.ok().map(|s| s.name())).collect()
}

impl MachineIdentifiers {
    fn read_software(&mut self, sw: &Hive) {
        self.machine_guid = value_string(sw, "Microsoft\\Cryptography", "MachineGuid");
        let wu = "Microsoft\\Windows\\CurrentVersion\\WindowsUpdate";
        self.wsus_client_id = value_string(sw, wu, "SusClientId");
        self.wsus_client_id_validation =
            value_bytes(sw, wu, "SusClientIdValidation").map(|b| hex(&b));
        self.wsus_ping_id = value_string(sw, wu, "PingID");
        self.wsus_account_domain_sid = value_string(sw, wu, "AccountDomainSid");
        self.sqm_machine_id = value_string(sw, "Microsoft\\SQMClient", "MachineId");
        self.mde_sense_guid = value_string(
            sw,
            "Microsoft\\Windows Advanced Threat Protection",
            "senseGuid",
        );
        for root in ["Classes\\CID", "Classes\\CID.Local"] {
            for n in subkeys_of(sw, root) {
                if let Some(d) = value_string(sw, &format!("{root}\\{n}\\Description"), "") {
                    if d.to_ascii_uppercase().starts_with("MSDTC") {
                        self.msdtc_cids.push(format!("{d}={n}"));
                    }
                }
            }
        }
        self.rdp_certificates = subkeys_of(
            sw,
            "Microsoft\\SystemCertificates\\Remote Desktop\\Certificates",
        );
        self.default_domain_name = value_string(
            sw,
            "Microsoft\\Windows NT\\CurrentVersion\\Winlogon",
            "DefaultDomainName",
        );
    }

    fn read_system(&mut self, sys: &Hive, cs: &str) {
        let b = |k: &str, v: &str| value_bytes(sys, &format!("{cs}\\{k}"), v).map(|b| hex(&b));
        self.dhcpv6_duid = b("Services\\Tcpip6\\Parameters", "Dhcpv6DUID");
        // A binary GUID (Windows layout): shown as a GUID; any other size as hex.
        self.smb_server_guid = value_bytes(
            sys,
            &format!("{cs}\\Services\\LanmanServer\\Parameters"),
            "Guid",
        )
        .map(|b| match <[u8; 16]>::try_from(&b[..]) {
            Ok(g) => crate::ops::guid_text(&g),
            Err(_) => hex(&b),
        });
        self.rdp_certificate_hash = b(
            "Control\\Terminal Server\\WinStations\\RDP-Tcp",
            "SSLCertificateSHA1Hash",
        );
    }
}

/// A hive opened for reading (recovered in memory when dirty).
pub(crate) struct Opened {
    pub(crate) info: HiveInfo,
    pub(crate) hive: Option<Hive>,
}

pub(super) fn file_size<D: Device>(vol: &mut Volume<D>, path: &str) -> Option<u64> {
    vol.stat(path).ok().filter(|e| !e.is_dir).map(|e| e.size)
}

pub(crate) fn open_hive<D: Device>(
    vol: &mut Volume<D>,
    dir: &str,
    name: &str,
    errors: &mut Vec<String>,
) -> Opened {
    let path = format!("{dir}/{name}");
    let mut info = HiveInfo {
        name: name.to_string(),
        path: format!("/{path}"),
        size: 0,
        log_files: Vec::new(),
        state: HiveState::Missing,
        ktm_locked: false,
    };
    let Some(size) = file_size(vol, &path) else {
        return Opened { info, hive: None };
    };
    info.size = size;
    let primary = match vol.read_to_vec(&path) {
        Ok(b) => b,
        Err(e) => {
            info.state = HiveState::Unreadable {
                reason: e.to_string(),
            };
            return Opened { info, hive: None };
        }
    };
    let mut logs: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for ext in ["LOG1", "LOG2", "LOG"] {
        let lp = format!("{path}.{ext}");
        if let Some(sz) = file_size(vol, &lp) {
            info.log_files.push(LogFile {
                name: ext.to_string(),
                size: sz,
            });
            if sz > 0 {
                match vol.read_to_vec(&lp) {
                    Ok(b) => {
                        logs.insert(ext, b);
                    }
                    Err(e) => errors.push(format!("{name}.{ext}: {e}")),
                }
            }
        }
    }
    if let Ok(bb) = reseal_hive::BaseBlock::parse(&primary) {
        info.ktm_locked = bb.flags & 1 != 0;
    }
    let dirty = match reseal_hive::BaseBlock::parse(&primary) {
        Ok(bb) => bb.seq1 != bb.seq2 || !bb.checksum_ok,
        Err(_) => true,
    };
    if !dirty {
        match Hive::from_bytes(primary) {
            Ok(h) => {
                info.state = HiveState::Clean;
                return Opened {
                    info,
                    hive: Some(h),
                };
            }
            Err(e) => {
                info.state = HiveState::Unreadable {
                    reason: e.to_string(),
                };
                return Opened { info, hive: None };
            }
        }
    }
    // Dirty: replay. New-format logs are LOG1/LOG2; an old-format `.LOG` is tried as LOG1
    // when no LOG1 exists.
    let log1 = logs.get("LOG1").or_else(|| logs.get("LOG")).cloned();
    let log2 = logs.get("LOG2").cloned();
    let log1_name = if logs.contains_key("LOG1") {
        "LOG1"
    } else {
        "LOG"
    };
    match Hive::recover(primary.clone(), log1, log2) {
        Ok((h, report))
            if report.applied_log1 + report.applied_log2 > 0 || report.base_block_repaired =>
        {
            let mut used = Vec::new();
            if report.applied_log1 > 0 {
                used.push(log1_name.to_string());
            }
            if report.applied_log2 > 0 {
                used.push("LOG2".to_string());
            }
            info.state = HiveState::DirtyReplayed { logs: used };
            Opened {
                info,
                hive: Some(h),
            }
        }
        Ok((_, report)) => {
            info.state = HiveState::DirtyWithoutUsableLogs {
                reason: if report.notes.is_empty() {
                    "no log entry applied".into()
                } else {
                    report.notes.join("; ")
                },
            };
            Opened {
                info,
                hive: Hive::from_bytes(primary).ok(),
            }
        }
        Err(e) => {
            let reason = if logs.is_empty() {
                "no log files with content".to_string()
            } else {
                e.to_string()
            };
            let hive = Hive::from_bytes(primary);
            info.state = match &hive {
                Ok(_) => HiveState::DirtyWithoutUsableLogs { reason },
                Err(pe) => HiveState::Unreadable {
                    reason: format!("{pe}; logs: {reason}"),
                },
            };
            Opened {
                info,
                hive: hive.ok(),
            }
        }
    }
}

pub(super) fn value_string(h: &Hive, key: &str, value: &str) -> Option<String> {
    let k = h.open_path(key).ok()?;
    let v = k.value(value).ok()??;
    v.as_string().ok()
}

pub(super) fn value_u32(h: &Hive, key: &str, value: &str) -> Option<u32> {
    let k = h.open_path(key).ok()?;
    let v = k.value(value).ok()??;
    v.as_u32().ok()?
}

pub(super) fn value_bytes(h: &Hive, key: &str, value: &str) -> Option<Vec<u8>> {
    let k = h.open_path(key).ok()?;
    let v = k.value(value).ok()??;
    v.data().ok().map(|d| d.into_owned())
}

/// The SYSTEM facts: current control set, computer names, identifiers, Fast Startup.
pub(super) fn read_system(w: &mut WindowsInstall, sys: &Hive, errors: &mut Vec<String>) {
    w.current_control_set = value_u32(sys, "Select", "Current");
    let Some(n) = w.current_control_set else {
        errors.push("SYSTEM: Select\\Current is missing or not a DWORD".into());
        return;
    };
    let cs = format!("ControlSet{n:03}");
    if sys.open_path(&cs).is_err() {
        errors.push(format!(
            "SYSTEM: Select\\Current = {n} but {cs} does not exist"
        ));
    }
    let cn = format!("{cs}\\Control\\ComputerName");
    w.computer.netbios = value_string(sys, &format!("{cn}\\ComputerName"), "ComputerName");
    w.computer.active = value_string(sys, &format!("{cn}\\ActiveComputerName"), "ComputerName");
    let tcp = format!("{cs}\\Services\\Tcpip\\Parameters");
    w.computer.dns_hostname = value_string(sys, &tcp, "Hostname");
    w.computer.nv_hostname = value_string(sys, &tcp, "NV Hostname");
    w.computer.dns_domain = value_string(sys, &tcp, "Domain");
    w.identifiers.read_system(sys, &cs);
    w.fast_startup_enabled = value_u32(
        sys,
        &format!("{cs}\\Control\\Session Manager\\Power"),
        "HiberbootEnabled",
    )
    .map(|v| v != 0);
}

/// The SOFTWARE facts: identifiers and the product.
pub(super) fn read_software(w: &mut WindowsInstall, sw: &Hive) {
    let cv = "Microsoft\\Windows NT\\CurrentVersion";
    w.identifiers.read_software(sw);
    let s = |v: &str| value_string(sw, cv, v);
    w.product = Product {
        product_name: s("ProductName"),
        edition_id: s("EditionID"),
        current_version: s("CurrentVersion"),
        build: s("CurrentBuild").or_else(|| s("CurrentBuildNumber")),
        build_number: s("CurrentBuildNumber"),
        ubr: value_u32(sw, cv, "UBR"),
        display_version: s("DisplayVersion"),
        installation_type: s("InstallationType"),
    };
}

/// The SAM's machine SID (`Domains\Account` `V`).
pub(super) fn read_sam(w: &mut WindowsInstall, samh: &Hive, errors: &mut Vec<String>) {
    match value_bytes(samh, "SAM\\Domains\\Account", "V") {
        Some(v) => match sam::domain_sid_from_v(&v) {
            Ok((sid, _)) => w.sam_machine_sid = Some(sid.to_string()),
            Err(e) => errors.push(format!("SAM: {e}")),
        },
        None => errors.push("SAM: SAM\\Domains\\Account\\V is missing".into()),
    }
}

/// The SECURITY facts: the LSA's machine SID and account domain name, the domain joined.
pub(super) fn read_security(w: &mut WindowsInstall, sec: &Hive, errors: &mut Vec<String>) {
    if let Some(d) = value_bytes(sec, "Policy\\PolAcDmS", "") {
        match Sid::from_bytes(&d) {
            Ok(s) => w.lsa_machine_sid = Some(s.to_string()),
            Err(e) if !d.is_empty() => errors.push(format!("SECURITY: Policy\\PolAcDmS: {e}")),
            Err(_) => {}
        }
    }
    if let Some(d) = value_bytes(sec, "Policy\\PolAcDmN", "") {
        match sam::parse_lsa_name(&d, "SECURITY Policy\\PolAcDmN") {
            Ok(n) => w.computer.lsa_account_domain = Some(n),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if let Some(d) = value_bytes(sec, "Policy\\PolPrDmS", "") {
        if !d.is_empty() {
            match Sid::from_bytes(&d) {
                Ok(s) => {
                    w.domain.joined = true;
                    w.domain.domain_sid = Some(s.to_string());
                }
                Err(e) => errors.push(format!("SECURITY: Policy\\PolPrDmS: {e}")),
            }
        }
    }
    if let Some(d) = value_bytes(sec, "Policy\\PolPrDmN", "") {
        match sam::parse_lsa_name(&d, "SECURITY Policy\\PolPrDmN") {
            Ok(n) if !n.is_empty() => w.domain.name = Some(n),
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    if let Some(d) = value_bytes(sec, "Policy\\PolDnDDN", "") {
        if let Ok(n) = sam::parse_lsa_name(&d, "SECURITY Policy\\PolDnDDN") {
            if !n.is_empty() {
                w.domain.dns_name = Some(n);
            }
        }
    }
}
