//! Discovery of Windows installs and the facts read from them: the facts' types, [`scan`] of
//! an image's volumes and [`WindowsInstall::open`] of one volume, from the hives
//! ([`hives`]), the SAM's accounts ([`users`]), the profile folders, DPAPI and TxR
//! ([`profiles`]), and what they mean ([`findings`]).

use std::collections::BTreeMap;

use reseal_disk::partition::{PartitionTable, Slice};
use reseal_disk::probe::{probe, FsInfo};
use reseal_disk::{Device, Image};
use reseal_ntfs::browse::{BrowseError, Volume};
use serde::Serialize;

use crate::{Error, Refusal, Result};

mod findings;
mod hives;
mod profiles;
mod users;

use self::findings::findings;
pub(crate) use self::hives::{open_hive, Opened};
use self::hives::{read_sam, read_security, read_software, read_system};
use self::profiles::{read_dpapi, read_profiles, read_txr};
use self::users::read_users;

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

impl Scan {
    /// The one install an operation works on: the install on `partition` when one is given,
    /// else the image's only install.
    ///
    /// # Errors
    /// [`Refusal::NoInstall`] when none matches; [`Refusal::ManyInstalls`] (naming every
    /// install's partition) when several do.
    pub fn into_one_install(
        self,
        partition: Option<u32>,
    ) -> std::result::Result<WindowsInstall, Refusal> {
        let partitions: Vec<u32> = self.installs.iter().map(|w| w.partition).collect();
        let mut c: Vec<WindowsInstall> = self
            .installs
            .into_iter()
            .filter(|w| partition.is_none_or(|p| p == w.partition))
            .collect();
        match c.len() {
            1 => Ok(c.remove(0)),
            0 => Err(Refusal::NoInstall),
            _ => Err(Refusal::ManyInstalls { partitions }),
        }
    }
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
        match volume.stat(CONFIG) {
            Ok(e) if e.is_dir => {}
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
        }
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
        if let Some(sys) = hive("SYSTEM") {
            read_system(&mut w, sys, &mut errors);
        }
        if let Some(sw) = hive("SOFTWARE") {
            read_software(&mut w, sw);
        }
        if let Some(samh) = hive("SAM") {
            read_sam(&mut w, samh, &mut errors);
        }
        if let Some(sec) = hive("SECURITY") {
            read_security(&mut w, sec, &mut errors);
        }
        w.machine_sid = w
            .sam_machine_sid
            .clone()
            .or_else(|| w.lsa_machine_sid.clone());
        w.domain.domain_controller = w.domain.joined
            && w.domain.domain_sid.is_some()
            && w.domain.domain_sid == w.lsa_machine_sid;
        if let Some(samh) = hive("SAM") {
            read_users(samh, w.machine_sid.as_deref(), &mut w.users, &mut errors);
        }
        if let Some(sw) = hive("SOFTWARE") {
            read_profiles(volume, sw, &w.users, &mut w.profiles, &mut errors);
        }
        read_dpapi(volume, &w.profiles, &mut w.dpapi);
        // One pass over the MFT: EFS here, SID-named entries and descriptor users in
        // generalize.
        let catalog = volume.engine().catalog();
        w.efs = crate::volume_names::encrypted_files(&catalog, efs_walk_limit, EFS_LIST);
        w.catalog = Some(std::sync::Arc::new(catalog));
        w.volume = read_volume_state(volume, &mut errors);
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

/// The volume's state, for the facts (an unreadable state is named in `errors`).
fn read_volume_state<D: Device>(
    volume: &mut Volume<D>,
    errors: &mut Vec<String>,
) -> Option<VolumeSummary> {
    match reseal_ntfs::state::VolumeState::from_volume(volume) {
        Ok(s) => Some(VolumeSummary {
            dirty: s.dirty,
            hibernated: s.hibernated,
            fast_startup: s.logfile == reseal_ntfs::state::LogFileState::FastStartup,
            logfile: s.logfile.code().to_string(),
        }),
        Err(e) => {
            errors.push(format!("volume state: {e}"));
            None
        }
    }
}
