//! Discovery of Windows installs and the facts read from them.

use std::collections::BTreeMap;

use reseal_disk::partition::{PartitionTable, Slice};
use reseal_disk::probe::{probe, FsInfo};
use reseal_disk::{Device, Image};
use reseal_hive::Hive;
use reseal_ntfs::browse::{BrowseError, Volume};
use reseal_security::Sid;
use serde::Serialize;

use crate::sam;
use crate::{Error, Result};

/// The system hives looked for in `Windows\System32\config`.
pub const HIVE_NAMES: [&str; 5] = ["SYSTEM", "SOFTWARE", "SAM", "SECURITY", "DEFAULT"];

/// Most directory entries the EFS scan visits before it stops (the scan reports that it was
/// cut short). Keeps `inspect` fast on full system volumes.
pub const EFS_WALK_LIMIT: usize = 200_000;
/// How many encrypted paths are listed.
const EFS_LIST: usize = 10;
/// Bytes of each TxR file checked for content.
const TXR_PROBE: u64 = 64 * 1024;

const CONFIG: &str = "Windows/System32/config";

/// State of one hive file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum HiveState {
    /// Primary sequence numbers equal, checksum valid.
    Clean,
    /// The primary was dirty; its logs were replayed in memory (the facts come from the
    /// recovered hive). `logs` names the logs that contributed entries.
    DirtyReplayed {
        /// "LOG1", "LOG2" (new format) or "LOG" (old format).
        logs: Vec<String>,
    },
    /// The primary is dirty and no log could be applied; facts come from the primary as is
    /// and may be stale.
    DirtyWithoutUsableLogs {
        /// Why the logs were not used.
        reason: String,
    },
    /// No such file.
    Missing,
    /// The file exists but is not a usable hive.
    Unreadable {
        /// Why.
        reason: String,
    },
}

/// One hive of the install.
#[derive(Debug, Clone, Serialize)]
pub struct HiveInfo {
    /// SYSTEM, SOFTWARE, SAM, SECURITY or DEFAULT.
    pub name: String,
    /// Volume path of the primary file.
    pub path: String,
    /// Primary file size in bytes (0 when missing).
    pub size: u64,
    /// Log files present beside it (`LOG1`, `LOG2`, `LOG`).
    pub log_files: Vec<LogFile>,
    /// State.
    #[serde(flatten)]
    pub state: HiveState,
    /// Base-block flag bit 0 (the hive is locked by a pending KTM transaction).
    pub ktm_locked: bool,
}

/// A transaction log beside a hive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogFile {
    /// Extension: `LOG1`, `LOG2` or `LOG`.
    pub name: String,
    /// Size in bytes (0 = empty, as Windows leaves them after a clean flush).
    pub size: u64,
}

/// Transactional-registry (TxR) files of `config\TxR`.
///
/// Rule: a TxR file **has content** when its first 64 KiB hold a non-zero byte;
/// `pending` is true when any `*.TxR.blf` or `*.regtrans-ms` file has content or a system
/// hive has the KTM-locked base-block flag. Windows keeps these files across clean shutdowns,
/// so this errs on the side of reporting: a `pending` verdict means "could not prove there is
/// no pending transaction", never the reverse.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TxrInfo {
    /// TxR files with content (volume paths).
    pub files_with_content: Vec<String>,
    /// TxR files that are empty or all zeros.
    pub empty_files: Vec<String>,
    /// See the rule above.
    pub pending: bool,
}

/// Product facts from `SOFTWARE\Microsoft\Windows NT\CurrentVersion`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Product {
    /// ProductName.
    pub product_name: Option<String>,
    /// EditionID.
    pub edition_id: Option<String>,
    /// CurrentVersion ("6.3", ...).
    pub current_version: Option<String>,
    /// CurrentBuild (falls back to CurrentBuildNumber).
    pub build: Option<String>,
    /// CurrentBuildNumber.
    pub build_number: Option<String>,
    /// UBR (update build revision).
    pub ubr: Option<u32>,
    /// DisplayVersion ("23H2", ...).
    pub display_version: Option<String>,
    /// InstallationType ("Client", "Server", ...).
    pub installation_type: Option<String>,
}

/// The names of the computer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ComputerNames {
    /// NetBIOS name: `ControlSet00N\Control\ComputerName\ComputerName\ComputerName`.
    pub netbios: Option<String>,
    /// `...\ComputerName\ActiveComputerName\ComputerName` when present.
    pub active: Option<String>,
    /// DNS host name: `ControlSet00N\Services\Tcpip\Parameters\Hostname`.
    pub dns_hostname: Option<String>,
    /// `...\Tcpip\Parameters\NV Hostname` (the name that applies at next boot).
    pub nv_hostname: Option<String>,
    /// `...\Tcpip\Parameters\Domain` (primary DNS suffix).
    pub dns_domain: Option<String>,
    /// SECURITY `Policy\PolAcDmN` (account-domain name = NetBIOS computer name).
    pub lsa_account_domain: Option<String>,
}

/// Per-machine identifiers other than the SID and the name (what two clones must not share;
/// `generalize`'s `machine-ids` and `rdp-certificate` operations renew or remove them). Hex for
/// binary values. Read from the current control set for SYSTEM values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct MachineIdentifiers {
    /// SOFTWARE `Microsoft\Cryptography` `MachineGuid`.
    pub machine_guid: Option<String>,
    /// SOFTWARE `…\WindowsUpdate` `SusClientId`.
    pub wsus_client_id: Option<String>,
    /// `…\WindowsUpdate` `SusClientIdValidation` (hex).
    pub wsus_client_id_validation: Option<String>,
    /// `…\WindowsUpdate` `PingID`.
    pub wsus_ping_id: Option<String>,
    /// `…\WindowsUpdate` `AccountDomainSid`.
    pub wsus_account_domain_sid: Option<String>,
    /// SOFTWARE `Microsoft\SQMClient` `MachineId`.
    pub sqm_machine_id: Option<String>,
    /// SOFTWARE `Microsoft\Windows Advanced Threat Protection` `senseGuid`.
    pub mde_sense_guid: Option<String>,
    /// SYSTEM `…\Services\Tcpip6\Parameters` `Dhcpv6DUID` (hex).
    pub dhcpv6_duid: Option<String>,
    /// SYSTEM `…\Services\LanmanServer\Parameters` `Guid`: a GUID (8-4-4-4-12) when it has
    /// 16 bytes, else hex.
    pub smb_server_guid: Option<String>,
    /// SOFTWARE `Classes\CID` and `CID.Local` keys of MSDTC (`description=guid`).
    pub msdtc_cids: Vec<String>,
    /// Thumbprints in SOFTWARE `Microsoft\SystemCertificates\Remote Desktop\Certificates`.
    pub rdp_certificates: Vec<String>,
    /// SYSTEM `…\WinStations\RDP-Tcp` `SSLCertificateSHA1Hash` (hex).
    pub rdp_certificate_hash: Option<String>,
    /// SOFTWARE `…\Winlogon` `DefaultDomainName`.
    pub default_domain_name: Option<String>,
}

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

/// Domain membership (SECURITY `Policy\PolPrDmS`/`PolPrDmN`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DomainMembership {
    /// True when `PolPrDmS` holds a SID.
    pub joined: bool,
    /// Domain SID when joined.
    pub domain_sid: Option<String>,
    /// `PolPrDmN`: domain name when joined, workgroup name otherwise.
    pub name: Option<String>,
    /// `PolDnDDN`: DNS domain name when present.
    pub dns_name: Option<String>,
    /// The primary-domain SID equals the account-domain SID (a domain controller).
    pub domain_controller: bool,
}

/// A local account from the SAM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserAccount {
    /// RID (the `Users\<RID hex>` key name).
    pub rid: u32,
    /// Account name (V).
    pub name: String,
    /// Full name (V).
    pub full_name: String,
    /// Comment (V).
    pub comment: String,
    /// Machine SID + RID, when the machine SID is known.
    pub sid: Option<String>,
    /// ACB bit 0x0001. Serialized as its opposite, `enabled`, the field `reseal user list`
    /// has ([`crate::users::LocalUser::enabled`]).
    #[serde(rename = "enabled", serialize_with = "serialize_not")]
    pub disabled: bool,
    /// ACB bit 0x0400 (locked out by bad passwords).
    pub locked: bool,
    /// The NT hash entry (V descriptor 14) holds a hash; `false` is a blank password; `None`
    /// when unreadable.
    pub password_set: Option<bool>,
    /// Account-control bits (F).
    pub acb: Option<u16>,
    /// Last logon FILETIME (F), `None` for never.
    pub last_logon: Option<u64>,
    /// Logon count (F).
    pub logon_count: Option<u16>,
    /// RID given by the value type of `Users\Names\<name>`, when that key exists.
    pub names_rid: Option<u32>,
}

fn serialize_not<S: serde::Serializer>(b: &bool, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_bool(!*b)
}

/// A profile from `ProfileList`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// The SID (key name).
    pub sid: String,
    /// ProfileImagePath as stored.
    pub profile_image_path: Option<String>,
    /// The folder as a volume path (`/Users/alice`), when it is on this volume.
    pub folder: Option<String>,
    /// The folder exists.
    pub folder_exists: bool,
    /// `NTUSER.DAT` exists in the folder.
    pub ntuser_dat: bool,
    /// `AppData\Local\Microsoft\Windows\UsrClass.dat` exists.
    pub usrclass_dat: bool,
    /// Local account of that SID, when one exists.
    pub user: Option<String>,
}

/// A DPAPI master-key folder (orphaned by a SID change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DpapiFolder {
    /// The SID the folder is named after.
    pub sid: String,
    /// Volume path of the folder.
    pub path: String,
    /// Files directly inside it and in its subfolders (one level).
    pub files: usize,
}

/// EFS-encrypted files among the names of the volume (at most [`EFS_WALK_LIMIT`] looked at).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EfsSummary {
    /// Files with FILE_ATTRIBUTE_ENCRYPTED (0x4000) among the names looked at.
    pub count: usize,
    /// The first few of them.
    pub first: Vec<String>,
    /// Names looked at.
    pub visited: usize,
    /// The volume has more than [`EFS_WALK_LIMIT`] names: the rest were not looked at.
    pub truncated: bool,
}

/// Volume state (from `reseal_ntfs::state`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeSummary {
    /// `$Volume` dirty flag.
    pub dirty: bool,
    /// `hiberfil.sys` says hibernated.
    pub hibernated: bool,
    /// `$LogFile` written in LFS 2.0 (Fast Startup).
    pub fast_startup: bool,
    /// `$LogFile` state in words.
    pub logfile: String,
}

/// How serious a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Something a SID change or rename affects, or facts that may be stale.
    Warning,
    /// Offline editing is unsafe until it is resolved.
    Blocker,
}

/// Something the operator must know before changing this install.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// Severity.
    pub severity: Severity,
    /// Stable snake_case code (`hive_dirty`, `sid_mismatch`, `domain_joined`, ...).
    pub code: String,
    /// Human-readable text.
    pub message: String,
}

/// One Windows install and its facts.
#[derive(Debug, Clone, Serialize)]
pub struct WindowsInstall {
    /// Partition number (0 = the whole disk has no partition table).
    pub partition: u32,
    /// The system hives.
    pub hives: Vec<HiveInfo>,
    /// TxR state.
    pub txr: TxrInfo,
    /// `SYSTEM\Select\Current`.
    pub current_control_set: Option<u32>,
    /// `ControlSet00N\Control\Session Manager\Power\HiberbootEnabled` (Fast Startup is
    /// configured for the next shutdown).
    pub fast_startup_enabled: Option<bool>,
    /// Product and build.
    pub product: Product,
    /// Computer names.
    pub computer: ComputerNames,
    /// The machine SID (SAM when readable, else SECURITY).
    pub machine_sid: Option<String>,
    /// SAM `Domains\Account\V`.
    pub sam_machine_sid: Option<String>,
    /// SECURITY `Policy\PolAcDmS`.
    pub lsa_machine_sid: Option<String>,
    /// Domain membership.
    pub domain: DomainMembership,
    /// Per-machine identifiers (flattened into the JSON object: `machine_guid`, ...).
    #[serde(flatten)]
    pub identifiers: MachineIdentifiers,
    /// Local accounts, by RID.
    pub users: Vec<UserAccount>,
    /// Profiles.
    pub profiles: Vec<Profile>,
    /// DPAPI master-key folders.
    pub dpapi: Vec<DpapiFolder>,
    /// EFS-encrypted files.
    pub efs: EfsSummary,
    /// The volume's MFT in one pass, read when the install was opened (names, parents,
    /// attributes, `$Secure` ids), for operations that ask whole-volume questions.
    #[serde(skip)]
    pub(crate) catalog: Option<std::sync::Arc<reseal_ntfs::catalog::Catalog>>,
    /// Volume state, when it could be read.
    pub volume: Option<VolumeSummary>,
    /// Findings, most severe first.
    pub findings: Vec<Finding>,
    /// Facts that could not be read (each says what and why).
    pub errors: Vec<String>,
}

/// A volume discovery passed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedVolume {
    /// Partition number (0 = whole disk).
    pub partition: u32,
    /// What kind of volume it is (decisions use this, never the text of `reason`).
    pub kind: SkipKind,
    /// Why (BitLocker, not NTFS, unreadable, no Windows).
    pub reason: String,
}

/// Why a volume is not an install, as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SkipKind {
    /// A BitLocker-encrypted volume (`-FVE-FS-` OEM id).
    BitLocker,
    /// Another file system (FAT, exFAT, unknown).
    OtherFileSystem,
    /// The partition or its file system could not be read.
    Unreadable,
    /// An NTFS volume without a readable Windows install.
    NotWindows,
}

/// Result of [`scan`]: installs plus the volumes that were not installs.
#[derive(Debug, Clone, Serialize)]
pub struct Scan {
    /// Windows installs.
    pub installs: Vec<WindowsInstall>,
    /// Other volumes and why they were skipped.
    pub skipped: Vec<SkippedVolume>,
}

/// Every Windows install on every NTFS volume of the image (every partition, or the whole disk
/// when there is no partition table).
///
/// # Errors
/// When the partition table cannot be read. Per-volume problems go to [`scan`]'s `skipped`.
pub fn discover(image: &mut Image) -> Result<Vec<WindowsInstall>> {
    Ok(scan(image)?.installs)
}

/// Like [`discover`], also listing the volumes that are not Windows installs and why
/// (BitLocker-encrypted volumes are reported here: they cannot be inspected).
///
/// # Errors
/// When the partition table cannot be read.
pub fn scan(image: &mut Image) -> Result<Scan> {
    let table = PartitionTable::read(&*image)?;
    let mut regions: Vec<(u32, u64, u64)> = Vec::new();
    if table.partitions.is_empty() {
        regions.push((0, 0, image.len()));
    } else {
        for p in &table.partitions {
            if !p.kind.is_extended() {
                regions.push((p.number, p.start, p.len));
            }
        }
    }
    let mut out = Scan {
        installs: Vec::new(),
        skipped: Vec::new(),
    };
    for (number, start, len) in regions {
        let skip = |kind: SkipKind, reason: String| SkippedVolume {
            partition: number,
            kind,
            reason,
        };
        let slice = match Slice::new(&mut *image, start, len) {
            Ok(s) => s,
            Err(e) => {
                out.skipped.push(skip(
                    SkipKind::Unreadable,
                    format!("cannot address the partition: {e}"),
                ));
                continue;
            }
        };
        match probe(&slice) {
            Ok(FsInfo::Ntfs(_)) => {}
            Ok(FsInfo::BitLocker) => {
                out.skipped.push(skip(
                    SkipKind::BitLocker,
                    "BitLocker-encrypted volume (-FVE-FS-): cannot be inspected offline".into(),
                ));
                continue;
            }
            Ok(other) => {
                out.skipped.push(skip(
                    SkipKind::OtherFileSystem,
                    format!("{} file system", other.name()),
                ));
                continue;
            }
            Err(e) => {
                out.skipped
                    .push(skip(SkipKind::Unreadable, format!("probe failed: {e}")));
                continue;
            }
        }
        let mut vol = match Volume::open(slice) {
            Ok(v) => v,
            Err(e) => {
                out.skipped.push(skip(
                    SkipKind::Unreadable,
                    format!("NTFS volume unreadable: {e}"),
                ));
                continue;
            }
        };
        match WindowsInstall::open(&mut vol, number) {
            Ok(w) => out.installs.push(w),
            Err(Error::NotWindows { .. }) => out.skipped.push(skip(
                SkipKind::NotWindows,
                "NTFS volume without Windows\\System32\\config".into(),
            )),
            Err(e) => out.skipped.push(skip(SkipKind::Unreadable, e.to_string())),
        }
    }
    Ok(out)
}

/// A hive opened for reading (recovered in memory when dirty).
pub(crate) struct Opened {
    pub(crate) info: HiveInfo,
    pub(crate) hive: Option<Hive>,
}

fn file_size<D: Device>(vol: &mut Volume<D>, path: &str) -> Option<u64> {
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

fn value_string(h: &Hive, key: &str, value: &str) -> Option<String> {
    let k = h.open_path(key).ok()?;
    let v = k.value(value).ok()??;
    v.as_string().ok()
}

fn value_u32(h: &Hive, key: &str, value: &str) -> Option<u32> {
    let k = h.open_path(key).ok()?;
    let v = k.value(value).ok()??;
    v.as_u32().ok()?
}

fn value_bytes(h: &Hive, key: &str, value: &str) -> Option<Vec<u8>> {
    let k = h.open_path(key).ok()?;
    let v = k.value(value).ok()??;
    v.data().ok().map(|d| d.into_owned())
}

fn expand_env(s: &str, system_root: &str) -> String {
    let mut out = s.to_string();
    for (var, val) in [
        ("%SystemDrive%", "C:"),
        ("%SystemRoot%", system_root),
        ("%windir%", system_root),
    ] {
        while let Some(i) = out.to_ascii_lowercase().find(&var.to_ascii_lowercase()) {
            out.replace_range(i..i + var.len(), val);
        }
    }
    out
}

/// `C:\Users\alice` -> `/Users/alice` (only for the system drive).
fn to_volume_path(win: &str) -> Option<String> {
    let b = win.as_bytes();
    let rest = if b.len() >= 2 && b[1] == b':' {
        if !b[0].eq_ignore_ascii_case(&b'C') {
            return None;
        }
        &win[2..]
    } else {
        win
    };
    let parts: Vec<&str> = rest.split(['\\', '/']).filter(|c| !c.is_empty()).collect();
    Some(format!("/{}", parts.join("/")))
}

impl WindowsInstall {
    /// Read the facts of the Windows install on `volume`. `partition_number` is only recorded.
    ///
    /// # Errors
    /// [`Error::NotWindows`] when `Windows\System32\config` is missing; [`Error::Ntfs`] when the
    /// volume cannot be listed. Unreadable individual facts go to `errors`, not to `Err`.
    pub fn open<D: Device>(
        volume: &mut Volume<D>,
        partition_number: u32,
    ) -> Result<WindowsInstall> {
        Self::open_with_limit(volume, partition_number, EFS_WALK_LIMIT)
    }

    /// [`WindowsInstall::open`] with the EFS walk stopped after `efs_walk_limit` entries.
    ///
    /// # Errors
    /// As [`WindowsInstall::open`].
    pub fn open_with_limit<D: Device>(
        volume: &mut Volume<D>,
        partition_number: u32,
        efs_walk_limit: usize,
    ) -> Result<WindowsInstall> {
        let config = match volume.stat(CONFIG) {
            Ok(e) if e.is_dir => e,
            Ok(_) | Err(BrowseError::NotFound { .. }) | Err(BrowseError::NotADirectory { .. }) => {
                return Err(Error::NotWindows {
                    partition: partition_number,
                });
            }
            Err(source) => {
                return Err(Error::Ntfs {
                    partition: partition_number,
                    source,
                })
            }
        };
        let _ = config;
        let mut errors = Vec::new();
        let mut opened: BTreeMap<&str, Opened> = BTreeMap::new();
        for name in HIVE_NAMES {
            opened.insert(name, open_hive(volume, CONFIG, name, &mut errors));
        }
        let hive = |n: &str| opened.get(n).and_then(|o| o.hive.as_ref());
        let mut w = WindowsInstall {
            partition: partition_number,
            hives: Vec::new(),
            txr: read_txr(volume),
            current_control_set: None,
            fast_startup_enabled: None,
            product: Product::default(),
            computer: ComputerNames::default(),
            machine_sid: None,
            sam_machine_sid: None,
            lsa_machine_sid: None,
            domain: DomainMembership::default(),
            identifiers: MachineIdentifiers::default(),
            users: Vec::new(),
            profiles: Vec::new(),
            dpapi: Vec::new(),
            efs: EfsSummary::default(),
            catalog: None,
            volume: None,
            findings: Vec::new(),
            errors: Vec::new(),
        };
        // SYSTEM.
        if let Some(sys) = hive("SYSTEM") {
            w.current_control_set = value_u32(sys, "Select", "Current");
            match w.current_control_set {
                Some(n) => {
                    let cs = format!("ControlSet{n:03}");
                    if sys.open_path(&cs).is_err() {
                        errors.push(format!(
                            "SYSTEM: Select\\Current = {n} but {cs} does not exist"
                        ));
                    }
                    let cn = format!("{cs}\\Control\\ComputerName");
                    w.computer.netbios =
                        value_string(sys, &format!("{cn}\\ComputerName"), "ComputerName");
                    w.computer.active =
                        value_string(sys, &format!("{cn}\\ActiveComputerName"), "ComputerName");
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
                None => errors.push("SYSTEM: Select\\Current is missing or not a DWORD".into()),
            }
        }
        // SOFTWARE.
        let cv = "Microsoft\\Windows NT\\CurrentVersion";
        if let Some(sw) = hive("SOFTWARE") {
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
        // SAM.
        if let Some(samh) = hive("SAM") {
            match value_bytes(samh, "SAM\\Domains\\Account", "V") {
                Some(v) => match sam::domain_sid_from_v(&v) {
                    Ok((sid, _)) => w.sam_machine_sid = Some(sid.to_string()),
                    Err(e) => errors.push(format!("SAM: {e}")),
                },
                None => errors.push("SAM: SAM\\Domains\\Account\\V is missing".into()),
            }
        }
        // SECURITY.
        if let Some(sec) = hive("SECURITY") {
            if let Some(d) = value_bytes(sec, "Policy\\PolAcDmS", "") {
                match Sid::from_bytes(&d) {
                    Ok(s) => w.lsa_machine_sid = Some(s.to_string()),
                    Err(e) if !d.is_empty() => {
                        errors.push(format!("SECURITY: Policy\\PolAcDmS: {e}"))
                    }
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
        w.machine_sid = w
            .sam_machine_sid
            .clone()
            .or_else(|| w.lsa_machine_sid.clone());
        w.domain.domain_controller = w.domain.joined
            && w.domain.domain_sid.is_some()
            && w.domain.domain_sid == w.lsa_machine_sid;
        // Users.
        if let Some(samh) = hive("SAM") {
            read_users(samh, w.machine_sid.as_deref(), &mut w.users, &mut errors);
        }
        // Profiles.
        if let Some(sw) = hive("SOFTWARE") {
            read_profiles(volume, sw, &w.users, &mut w.profiles, &mut errors);
        }
        // DPAPI.
        read_dpapi(volume, &w.profiles, &mut w.dpapi);
        // One pass over the MFT: EFS here, SID-named entries and descriptor users in
        // generalize.
        let catalog = volume.engine().catalog();
        w.efs = crate::volume_names::encrypted_files(&catalog, efs_walk_limit, EFS_LIST);
        w.catalog = Some(std::sync::Arc::new(catalog));
        // Volume state.
        match reseal_ntfs::state::VolumeState::from_volume(volume) {
            Ok(s) => {
                w.volume = Some(VolumeSummary {
                    dirty: s.dirty,
                    hibernated: s.hibernated,
                    fast_startup: s.logfile == reseal_ntfs::state::LogFileState::FastStartup,
                    logfile: s.logfile.code().to_string(),
                })
            }
            Err(e) => errors.push(format!("volume state: {e}")),
        }
        w.hives = HIVE_NAMES
            .iter()
            .filter_map(|n| opened.remove(n))
            .map(|o| o.info)
            .collect();
        w.errors = errors;
        w.findings = findings(&w);
        Ok(w)
    }
}

fn read_users(
    samh: &Hive,
    machine: Option<&str>,
    users: &mut Vec<UserAccount>,
    errors: &mut Vec<String>,
) {
    let base = "SAM\\Domains\\Account\\Users";
    let Ok(ukey) = samh.open_path(base) else {
        errors.push(format!("SAM: {base} is missing"));
        return;
    };
    let mut names_rid: BTreeMap<String, u32> = BTreeMap::new();
    if let Ok(Some(names)) = ukey.subkey("Names") {
        if let Ok(it) = names.subkeys() {
            for k in it.flatten() {
                if let Ok(Some(v)) = k.value("") {
                    names_rid.insert(k.name().to_lowercase(), v.data_type());
                }
            }
        }
    }
    let machine_sid: Option<Sid> = machine.and_then(|m| m.parse().ok());
    let Ok(it) = ukey.subkeys() else {
        errors.push(format!("SAM: {base}: subkey list unreadable"));
        return;
    };
    for k in it {
        let k = match k {
            Ok(k) => k,
            Err(e) => {
                errors.push(format!("SAM: {base}: {e}"));
                continue;
            }
        };
        let kn = k.name();
        let Ok(rid) = u32::from_str_radix(&kn, 16) else {
            continue;
        };
        let v = k
            .value("V")
            .ok()
            .flatten()
            .and_then(|v| v.data().ok().map(|d| d.into_owned()));
        let f = k
            .value("F")
            .ok()
            .flatten()
            .and_then(|v| v.data().ok().map(|d| d.into_owned()));
        let uv = match v.as_deref().map(sam::parse_user_v) {
            Some(Ok(u)) => u,
            Some(Err(e)) => {
                errors.push(format!("SAM: {base}\\{kn}: {e}"));
                continue;
            }
            None => {
                errors.push(format!("SAM: {base}\\{kn}\\V is missing"));
                continue;
            }
        };
        let uf = match f.as_deref().map(sam::parse_user_f) {
            Some(Ok(f)) => Some(f),
            Some(Err(e)) => {
                errors.push(format!("SAM: {base}\\{kn}: {e}"));
                None
            }
            None => None,
        };
        users.push(UserAccount {
            rid,
            sid: machine_sid
                .as_ref()
                .and_then(|m| m.with_rid(rid).ok())
                .map(|s| s.to_string()),
            disabled: uf.is_some_and(|f| f.acb & sam::ACB_DISABLED != 0),
            locked: uf.is_some_and(|f| f.acb & sam::ACB_AUTOLOCKED != 0),
            password_set: v
                .as_deref()
                .and_then(|v| sam::user_v_field(v, sam::V_NT).ok())
                .map(sam::hash_entry_set),
            acb: uf.map(|f| f.acb),
            last_logon: uf.map(|f| f.last_logon).filter(|&t| t != 0),
            logon_count: uf.map(|f| f.logon_count),
            names_rid: names_rid.get(&uv.name.to_lowercase()).copied(),
            name: uv.name,
            full_name: uv.full_name,
            comment: uv.comment,
        });
    }
    users.sort_by_key(|u| u.rid);
}

fn read_profiles<D: Device>(
    vol: &mut Volume<D>,
    sw: &Hive,
    users: &[UserAccount],
    out: &mut Vec<Profile>,
    errors: &mut Vec<String>,
) {
    let pl = "Microsoft\\Windows NT\\CurrentVersion\\ProfileList";
    let Ok(k) = sw.open_path(pl) else { return };
    let system_root = value_string(sw, "Microsoft\\Windows NT\\CurrentVersion", "SystemRoot")
        .unwrap_or_else(|| "C:\\Windows".to_string());
    let Ok(it) = k.subkeys() else {
        errors.push(format!("SOFTWARE: {pl}: subkey list unreadable"));
        return;
    };
    for p in it.flatten() {
        let sid = p.name();
        let raw = p
            .value("ProfileImagePath")
            .ok()
            .flatten()
            .and_then(|v| v.as_string().ok());
        let folder = raw
            .as_deref()
            .map(|r| expand_env(r, &system_root))
            .and_then(|e| to_volume_path(&e));
        let (mut exists, mut nt, mut uc) = (false, false, false);
        if let Some(f) = &folder {
            exists = vol.stat(f).map(|e| e.is_dir).unwrap_or(false);
            if exists {
                nt = file_size(vol, &format!("{f}/NTUSER.DAT")).is_some();
                uc = file_size(
                    vol,
                    &format!("{f}/AppData/Local/Microsoft/Windows/UsrClass.dat"),
                )
                .is_some();
            }
        }
        let user = users
            .iter()
            .find(|u| u.sid.as_deref() == Some(sid.as_str()))
            .map(|u| u.name.clone());
        out.push(Profile {
            sid,
            profile_image_path: raw,
            folder,
            folder_exists: exists,
            ntuser_dat: nt,
            usrclass_dat: uc,
            user,
        });
    }
}

fn count_files<D: Device>(vol: &mut Volume<D>, dir: &str) -> usize {
    let Ok(list) = vol.list(dir) else { return 0 };
    let mut n = 0;
    for e in list {
        if e.is_dir {
            n += vol
                .list(&format!("{dir}/{}", e.name))
                .map(|l| l.iter().filter(|x| !x.is_dir).count())
                .unwrap_or(0);
        } else {
            n += 1;
        }
    }
    n
}

fn read_dpapi<D: Device>(vol: &mut Volume<D>, profiles: &[Profile], out: &mut Vec<DpapiFolder>) {
    let mut cands: Vec<(String, String)> = Vec::new();
    for p in profiles {
        if let (Some(f), true) = (&p.folder, p.folder_exists) {
            let protect = format!("{f}/AppData/Roaming/Microsoft/Protect");
            if let Ok(list) = vol.list(&protect) {
                for e in list
                    .into_iter()
                    .filter(|e| e.is_dir && e.name.starts_with("S-1-"))
                {
                    cands.push((e.name.clone(), format!("{protect}/{}", e.name)));
                }
            }
        }
    }
    let sys = "/Windows/System32/Microsoft/Protect";
    if let Ok(list) = vol.list(sys) {
        for e in list
            .into_iter()
            .filter(|e| e.is_dir && e.name.starts_with("S-1-"))
        {
            cands.push((e.name.clone(), format!("{sys}/{}", e.name)));
        }
    }
    for (sid, path) in cands {
        let files = count_files(vol, &path);
        out.push(DpapiFolder { sid, path, files });
    }
}

fn read_txr<D: Device>(vol: &mut Volume<D>) -> TxrInfo {
    let mut t = TxrInfo::default();
    let dir = format!("{CONFIG}/TxR");
    let Ok(list) = vol.list(&dir) else { return t };
    for e in list.into_iter().filter(|e| !e.is_dir) {
        let lower = e.name.to_ascii_lowercase();
        if !(lower.ends_with(".txr.blf") || lower.ends_with(".regtrans-ms")) {
            continue;
        }
        let p = format!("/{dir}/{}", e.name);
        let mut buf = Vec::new();
        let content = e.size > 0
            && vol.read_range(&p, 0, TXR_PROBE, &mut buf).is_ok()
            && buf.iter().any(|&b| b != 0);
        if content {
            t.files_with_content.push(p);
        } else {
            t.empty_files.push(p);
        }
    }
    t.pending = !t.files_with_content.is_empty();
    t
}

fn findings(w: &WindowsInstall) -> Vec<Finding> {
    let mut f = Vec::new();
    let mut add = |severity, code: &str, message: String| {
        f.push(Finding {
            severity,
            // snake_case, like every enum value of the JSON output.
            code: code.replace('-', "_"),
            message,
        })
    };
    for h in &w.hives {
        match &h.state {
            HiveState::Clean => {}
            HiveState::DirtyReplayed { logs } => add(
                Severity::Warning,
                "hive-dirty",
                format!(
                    "{} is dirty; {} replayed in memory (the file itself still needs recovery)",
                    h.name,
                    logs.join("+")
                ),
            ),
            HiveState::DirtyWithoutUsableLogs { reason } => add(
                Severity::Blocker,
                "hive-dirty-no-logs",
                format!(
                    "{} is dirty and no log could be replayed ({reason}); its facts may be stale",
                    h.name
                ),
            ),
            HiveState::Missing => add(
                Severity::Warning,
                "hive-missing",
                format!("{} is missing", h.name),
            ),
            HiveState::Unreadable { reason } => add(
                Severity::Blocker,
                "hive-unreadable",
                format!("{} is unreadable: {reason}", h.name),
            ),
        }
        if h.ktm_locked {
            add(
                Severity::Blocker,
                "hive-ktm-locked",
                format!("{} has a pending KTM transaction (base-block flag)", h.name),
            );
        }
    }
    if w.txr.pending {
        add(
            Severity::Warning,
            "txr-pending",
            format!(
                "transactional-registry files with content: {}",
                w.txr.files_with_content.join(", ")
            ),
        );
    }
    match (&w.sam_machine_sid, &w.lsa_machine_sid) {
        (Some(a), Some(b)) if a != b => add(
            Severity::Blocker,
            "sid-mismatch",
            format!("machine SID differs: SAM Domains\\Account\\V has {a}, SECURITY Policy\\PolAcDmS has {b}"),
        ),
        (None, None) => add(Severity::Warning, "sid-unknown", "machine SID could not be read".into()),
        _ => {}
    }
    if w.domain.domain_controller {
        add(
            Severity::Blocker,
            "domain-controller",
            "primary-domain SID equals the account-domain SID: this looks like a domain controller"
                .into(),
        );
    } else if w.domain.joined {
        add(
            Severity::Warning,
            "domain-joined",
            format!(
                "joined to domain {} ({}); a new machine SID or name breaks the domain trust",
                w.domain.name.as_deref().unwrap_or("?"),
                w.domain.domain_sid.as_deref().unwrap_or("?")
            ),
        );
    }
    if let (Some(n), Some(l)) = (&w.computer.netbios, &w.computer.lsa_account_domain) {
        if !n.eq_ignore_ascii_case(l) {
            add(
                Severity::Info,
                "name-mismatch",
                format!("ComputerName {n} differs from SECURITY PolAcDmN {l}"),
            );
        }
    }
    for u in &w.users {
        if let Some(r) = u.names_rid {
            if r != u.rid {
                add(
                    Severity::Warning,
                    "sam-names-rid",
                    format!(
                        "SAM Names\\{} has type {r:#x} but the account key is {:08X}",
                        u.name, u.rid
                    ),
                );
            }
        }
    }
    for p in &w.profiles {
        if p.folder.is_some() && !p.folder_exists {
            add(
                Severity::Info,
                "profile-folder-missing",
                format!("profile {} folder {:?} is missing", p.sid, p.folder),
            );
        }
    }
    if !w.dpapi.is_empty() {
        let list: Vec<String> = w
            .dpapi
            .iter()
            .map(|d| format!("{} ({} files)", d.path, d.files))
            .collect();
        add(
            Severity::Warning,
            "dpapi",
            format!(
                "DPAPI master-key folders that a SID change orphans: {}",
                list.join(", ")
            ),
        );
    }
    if w.efs.count > 0 {
        add(
            Severity::Warning,
            "efs",
            format!(
                "{} EFS-encrypted file(s){} become unreadable after a SID change: {}",
                w.efs.count,
                if w.efs.truncated {
                    " (walk cut short, more may exist)"
                } else {
                    ""
                },
                w.efs.first.join(", ")
            ),
        );
    } else if w.efs.truncated {
        add(
            Severity::Info,
            "efs-scan-truncated",
            format!("EFS scan stopped after {} entries", w.efs.visited),
        );
    }
    if w.fast_startup_enabled == Some(true) {
        add(
            Severity::Info,
            "fast-startup-enabled",
            "HiberbootEnabled = 1: Windows will hibernate its kernel session at shutdown (disable Fast Startup before imaging)".into(),
        );
    }
    if let Some(v) = &w.volume {
        if v.hibernated {
            add(
                Severity::Blocker,
                "hibernated",
                "hiberfil.sys says Windows is hibernated".into(),
            );
        }
        if v.fast_startup {
            add(
                Severity::Blocker,
                "fast-startup",
                "$LogFile is LFS 2.0: Windows Fast Startup left metadata cached".into(),
            );
        }
        if v.dirty {
            add(
                Severity::Blocker,
                "volume-dirty",
                "NTFS dirty flag is set (run chkdsk in Windows)".into(),
            );
        }
    }
    for e in &w.errors {
        add(Severity::Info, "read-error", e.clone());
    }
    f.sort_by_key(|x| std::cmp::Reverse(x.severity));
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            to_volume_path("C:\\Users\\alice").as_deref(),
            Some("/Users/alice")
        );
        assert_eq!(to_volume_path("D:\\x"), None);
        assert_eq!(
            expand_env("%SystemDrive%\\Users\\bob", "C:\\Windows"),
            "C:\\Users\\bob"
        );
        assert_eq!(
            expand_env(
                "%systemroot%\\System32\\config\\systemprofile",
                "C:\\Windows"
            ),
            "C:\\Windows\\System32\\config\\systemprofile"
        );
    }
}
