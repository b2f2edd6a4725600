//! Windows-like fixture images from a declarative description ([`WindowsSpec`], deserialisable
//! from JSON with defaults).
//!
//! The disk layout is written by sfdisk, the ESP by mkfs.fat, the NTFS volume by mkntfs and an
//! ntfs-3g mount (descriptors via the `system.ntfs_acl` extended attribute), so an independent
//! implementation writes the file system. The hives (`SAM`, `SECURITY`, `SYSTEM`, `SOFTWARE`,
//! `DEFAULT`, per-user `NTUSER.DAT` and `UsrClass.dat`) are written by `reseal-hive` starting
//! from `reseal_hive::Hive::new_empty`, shaped like real ones (FORMATS.md A), and
//! checked by hivex and regipy in the tests. Real SAM/SECURITY pairs (the aiowinreg corpus)
//! can replace the generated ones.
//!
//! Entry points: [`WindowsSpec::build`] (one raw image), [`convert`] (qemu-img to VHD/VHDX),
//! [`variants`] (the named variant set), [`build_all`] (every variant into a directory).

use crate::{gpt_type, pseudo_random, run, DiskSpec, Entry, NtfsSpec, PartContent, PartSpec};
use anyhow::{bail, Context, Result};
use reseal_hive::{
    Hive, KeyOffset, REG_BINARY, REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ, REG_NONE, REG_QWORD,
    REG_SZ,
};
use reseal_security::{SecurityDescriptor, Sid};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::process::Command;

const MIB: u64 = 1 << 20;

/// GPT partition GUID given to the Windows partition (so `MountedDevices` names it).
pub const WINDOWS_PART_GUID: &str = "4F7C9C2A-8B3E-4D1A-9E55-0123456789AB";
/// MBR disk signature of the `dos` fixtures (so `MountedDevices` names it).
pub const MBR_DISK_ID: u32 = 0x5E5E_A1ED;

/// A GUID string in the Windows binary layout (first three fields little-endian).
pub fn guid_bytes(s: &str) -> Result<[u8; 16]> {
    let hex: String = s.chars().filter(|c| *c != '-').collect();
    if hex.len() != 32 {
        bail!("GUID {s:?} is not 32 hex digits");
    }
    let mut b = [0u8; 16];
    for (i, x) in b.iter_mut().enumerate() {
        *x = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)?;
    }
    b[0..4].reverse();
    b[4..6].reverse();
    b[6..8].reverse();
    Ok(b)
}

/// A local account of the fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserSpec {
    /// Account name.
    pub name: String,
    /// RID (500 Administrator, 501 Guest, 1000+ users).
    pub rid: u32,
    /// Enabled (ACB disabled bit clear).
    pub enabled: bool,
    /// Full name.
    pub full_name: String,
    /// Comment.
    pub comment: String,
    /// Last logon FILETIME (0 = never).
    pub last_logon: u64,
    /// Logon count.
    pub logon_count: u16,
    /// Create a profile (folder, NTUSER.DAT, UsrClass.dat, ProfileList entry, recycle bin,
    /// DPAPI folder, a document with the user's descriptor).
    pub profile: bool,
    /// Password whose NT hash the SAM holds when the spec has [`WindowsSpec::sam_crypto`]
    /// (`None`: an empty hash entry, a blank password).
    pub password: Option<String>,
    /// Locked out: ACB_AUTOLOCKED (0x0400) set and a bad-password count of 3.
    pub locked: bool,
}

impl Default for UserSpec {
    fn default() -> Self {
        Self {
            name: "user".into(),
            rid: 1000,
            enabled: true,
            full_name: String::new(),
            comment: String::new(),
            last_logon: 0,
            logon_count: 0,
            profile: true,
            password: None,
            locked: false,
        }
    }
}

/// A real hive file (and its logs) from the corpus, placed as one of the system hives.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealHive {
    /// Which system hive it replaces: `SYSTEM`, `SOFTWARE`, `SAM`, `SECURITY` or `DEFAULT`.
    pub name: String,
    /// Corpus path of the primary file.
    pub hive: String,
    /// Corpus path written as `<name>.LOG1` (empty file when `None`).
    pub log1: Option<String>,
    /// Corpus path written as `<name>.LOG2` (empty file when `None`).
    pub log2: Option<String>,
}

/// Domain membership of the fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainSpec {
    /// NetBIOS domain name (`PolPrDmN`).
    pub name: String,
    /// DNS domain name (`PolDnDDN`, Tcpip `Domain`).
    pub dns_name: String,
    /// Domain SID (`PolPrDmS`).
    pub sid: String,
}

impl Default for DomainSpec {
    fn default() -> Self {
        Self {
            name: "CORP".into(),
            dns_name: "corp.example".into(),
            sid: "S-1-5-21-4000000001-4000000002-4000000003".into(),
        }
    }
}

/// Description of a Windows-like disk image.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowsSpec {
    /// Machine SID S-1-5-21-a-b-c.
    pub machine_sid: String,
    /// NetBIOS computer name.
    pub computer_name: String,
    /// DNS host name (Tcpip Hostname and NV Hostname).
    pub dns_hostname: String,
    /// Workgroup (`PolPrDmN` when not joined).
    pub workgroup: String,
    /// Domain membership.
    pub domain: Option<DomainSpec>,
    /// ProductName.
    pub product_name: String,
    /// EditionID.
    pub edition_id: String,
    /// CurrentBuild / CurrentBuildNumber.
    pub build: String,
    /// UBR.
    pub ubr: u32,
    /// DisplayVersion.
    pub display_version: String,
    /// `Select\Current` (ControlSet001 always exists; another current set is added with the
    /// facts, while ControlSet001 then holds stale names).
    pub current_control_set: u32,
    /// Local accounts.
    pub users: Vec<UserSpec>,
    /// `gpt` (ESP + MSR + NTFS), `dos` (one NTFS partition) or `none` (the image is the bare
    /// NTFS volume).
    pub label: String,
    /// NTFS size in MiB.
    pub ntfs_mib: u64,
    /// Set the NTFS dirty flag (ntfsfix).
    pub volume_dirty: bool,
    /// Write `hiberfil.sys` starting with `HIBR`.
    pub hibernated: bool,
    /// Put a Windows 10 LFS 2.0 restart area (corpus `dfir_ntfs/LogFile_10.bin`) in `$LogFile`.
    pub fast_startup: bool,
    /// Add a BitLocker-looking partition (`-FVE-FS-` boot sector).
    pub bitlocker_partition: bool,
    /// Make this hive (e.g. `SYSTEM`) dirty with a valid new-format `.LOG1` that holds the real
    /// content (the primary holds a stale computer name).
    pub dirty_hive: Option<String>,
    /// Corpus path of a real SAM to use instead of the generated one.
    pub real_sam: Option<String>,
    /// Corpus path of a real SECURITY to use instead of the generated one.
    pub real_security: Option<String>,
    /// Real hives (with logs) replacing generated ones (applied after `real_sam`/`real_security`).
    pub real_hives: Vec<RealHive>,
    /// Volume paths of files to mark FILE_ATTRIBUTE_ENCRYPTED (patched in `$STANDARD_INFORMATION`).
    pub efs_files: Vec<String>,
    /// Create `Windows\System32\Microsoft\Protect\S-1-5-18\User\<key>`.
    pub system_dpapi: bool,
    /// Give the TxR `.regtrans-ms` container non-zero content (a pending transaction by the
    /// discovery rule).
    pub txr_pending: bool,
    /// Bulk content for benchmarks (none by default).
    pub bulk: Option<BulkSpec>,
    /// The per-machine identifiers and files of [`ids`] (on by default).
    pub identity: bool,
    /// Encrypt the SAM like Windows: boot key in SYSTEM's `Control\Lsa` class names, SAM key in
    /// `Domains\Account\F`, users' hashes from [`UserSpec::password`]. `None`: placeholder
    /// hash bytes and no boot key.
    pub sam_crypto: Option<SamCryptoSpec>,
}

/// The per-machine identifiers and files the fixture carries when [`WindowsSpec::identity`]
/// is set, in the places Windows 10/11 keeps them (sources: /work/shared/docs/SYSPREP.md §1 and
/// docs/OPERATIONS.md). Values are made up; their shapes follow the real ones.
pub mod ids {
    /// SOFTWARE `Microsoft\Cryptography` `MachineGuid` (REG_SZ, lower case, no braces).
    pub const MACHINE_GUID: &str = "6f1c2a4e-3b5d-4c7e-9f10-2a3b4c5d6e7f";
    /// SOFTWARE `…\WindowsUpdate` `SusClientId` (REG_SZ GUID).
    pub const SUS_CLIENT_ID: &str = "0d5e1f2a-3b4c-4d5e-8f60-718293a4b5c6";
    /// SOFTWARE `Microsoft\SQMClient` `MachineId` (REG_SZ, braced upper-case GUID).
    pub const SQM_MACHINE_ID: &str = "{8A2C5E1B-7D3F-4B6A-9C0E-1F2A3B4C5D6E}";
    /// SOFTWARE `Microsoft\Windows Advanced Threat Protection` `senseGuid` (REG_SZ GUID).
    pub const SENSE_GUID: &str = "3c9d1e7f-5a2b-4c8d-9e0f-a1b2c3d4e5f6";
    /// SOFTWARE `Classes\CID\<key>` with `Description` = `MSDTC`.
    pub const MSDTC_CID: &str = "{5A1E2B3C-4D5E-4F60-8172-93A4B5C6D7E8}";
    /// `…\CID\<key>` with `Description` = `MSDTCUIS`.
    pub const MSDTCUIS_CID: &str = "{6B2F3C4D-5E6F-4071-8283-A4B5C6D7E8F9}";
    /// A CID key of another component (not MSDTC's; kept).
    pub const OTHER_CID: &str = "{7C304D5E-6F70-4182-9394-B5C6D7E8F90A}";
    /// Thumbprint of the self-signed RDP certificate (SHA-1, key name in the store).
    pub const RDP_THUMBPRINT: &str = "0A1B2C3D4E5F60718293A4B5C6D7E8F901234567";
    /// The RDP listener's key container hash (file `<hash>_<MachineGuid>` in MachineKeys).
    pub const RDP_KEY_HASH: &str = "f686aace6942fb7f7ceb231212eef4a4";
    /// Another machine key's container hash (renamed with the MachineGuid, content kept).
    pub const OTHER_KEY_HASH: &str = "c2319c42033a5ca7f44e731bfd3fa2b5";
    /// The machine-key folder.
    pub const MACHINE_KEYS: &str = "ProgramData/Microsoft/Crypto/RSA/MachineKeys";
    /// Marker written into every file a cleanup operation deletes (searched for in the raw
    /// image afterwards: the freed clusters must not keep it).
    pub const SECRET: &[u8] = b"RESEAL-FIXTURE-SECRET-CONTENT";
    /// Files the cleanup operations delete, with their operation.
    pub const CLEANED: [(&str, &str); 12] = [
        ("event-logs", "Windows/System32/winevt/Logs/System.evtx"),
        (
            "event-logs",
            "Windows/System32/winevt/Logs/Application.evtx",
        ),
        ("event-logs", "Windows/System32/winevt/Logs/Security.evtx"),
        ("swap-files", "pagefile.sys"),
        ("swap-files", "swapfile.sys"),
        ("ssh-hostkeys", "ProgramData/ssh/ssh_host_ed25519_key"),
        ("ssh-hostkeys", "ProgramData/ssh/ssh_host_ed25519_key.pub"),
        ("ssh-hostkeys", "ProgramData/ssh/ssh_host_rsa_key"),
        ("setup-logs", "Windows/Panther/setupact.log"),
        ("setup-logs", "Windows/Panther/UnattendGC/setupact.log"),
        ("setup-logs", "Windows/Logs/CBS/CBS.log"),
        (
            "setup-logs",
            "ProgramData/Microsoft/Windows/WER/ReportArchive/AppCrash_fixture/Report.wer",
        ),
    ];
    /// Files next to them that stay.
    pub const KEPT: [&str; 3] = [
        "ProgramData/ssh/sshd_config",
        "Windows/System32/winevt/Logs/readme.txt",
        "Windows/System32/drivers/etc/hosts",
    ];
}

/// The SAM encryption of a fixture.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SamCryptoSpec {
    /// `aes` (revision 2, Windows 10 1607+) or `rc4` (revision 1).
    pub scheme: String,
    /// Boot key, 32 hex digits.
    pub boot_key: String,
    /// SAM key (hashed boot key), 32 hex digits.
    pub sam_key: String,
}

impl Default for SamCryptoSpec {
    fn default() -> Self {
        Self {
            scheme: "aes".into(),
            boot_key: "00112233445566778899aabbccddeeff".into(),
            sam_key: "0f1e2d3c4b5a69788796a5b4c3d2e1f0".into(),
        }
    }
}

impl SamCryptoSpec {
    fn hex16(s: &str) -> Result<[u8; 16]> {
        if s.len() != 32 {
            bail!("{s:?} is not 32 hex digits");
        }
        let mut b = [0u8; 16];
        for (i, x) in b.iter_mut().enumerate() {
            *x = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)?;
        }
        Ok(b)
    }

    /// The scheme.
    pub fn scheme(&self) -> Result<reseal_windows::sam_crypto::Scheme> {
        match self.scheme.as_str() {
            "aes" => Ok(reseal_windows::sam_crypto::Scheme::Aes),
            "rc4" => Ok(reseal_windows::sam_crypto::Scheme::Rc4),
            o => bail!("sam_crypto.scheme {o:?}: aes or rc4"),
        }
    }

    /// The boot key bytes.
    pub fn boot_key(&self) -> Result<[u8; 16]> {
        Self::hex16(&self.boot_key)
    }

    /// The SAM key.
    pub fn sam_key(&self) -> Result<reseal_windows::sam_crypto::SamKey> {
        Ok(reseal_windows::sam_crypto::SamKey {
            key: Self::hex16(&self.sam_key)?,
            scheme: self.scheme()?,
        })
    }
}

/// Bulk content of a benchmark image: many files with their own descriptors and large hives,
/// all naming accounts of the machine domain.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkSpec {
    /// Files spread over the profiles (`Documents/Bulk/DirNNN/file-NNNNNN.txt`), each with a
    /// descriptor set through ntfs-3g.
    pub files: usize,
    /// Distinct descriptors among those files (each names its user and one more machine
    /// account).
    pub descriptors: usize,
    /// Keys added to SOFTWARE, about 1 KiB each: strings, a binary blob, every 8th key SID
    /// strings and a binary SID, every 16th key its own descriptor.
    pub software_keys: usize,
    /// Keys of the same shape added to every profile's NTUSER.DAT.
    pub ntuser_keys: usize,
    /// Keys of the same shape in a `config\COMPONENTS` hive (none, and no COMPONENTS file,
    /// when 0). Windows keeps the component store's catalogue there (tens of MB on a real
    /// install); generalize rewrites it best effort like every extensionless hive in `config`.
    pub components_keys: usize,
}

impl Default for BulkSpec {
    fn default() -> Self {
        Self {
            files: 1000,
            descriptors: 100,
            software_keys: 1000,
            ntuser_keys: 1000,
            components_keys: 0,
        }
    }
}

impl Default for WindowsSpec {
    fn default() -> Self {
        Self {
            machine_sid: "S-1-5-21-1111111111-2222222222-3333333333".into(),
            computer_name: "WIN-FIXTURE01".into(),
            dns_hostname: "win-fixture01".into(),
            workgroup: "WORKGROUP".into(),
            domain: None,
            product_name: "Windows 10 Pro".into(),
            edition_id: "Professional".into(),
            build: "19045".into(),
            ubr: 3803,
            display_version: "22H2".into(),
            current_control_set: 1,
            users: vec![
                UserSpec {
                    name: "Administrator".into(),
                    rid: 500,
                    enabled: false,
                    comment: "Built-in account for administering the computer/domain".into(),
                    profile: false,
                    ..UserSpec::default()
                },
                UserSpec {
                    name: "Guest".into(),
                    rid: 501,
                    enabled: false,
                    comment: "Built-in account for guest access to the computer/domain".into(),
                    profile: false,
                    ..UserSpec::default()
                },
                UserSpec {
                    name: "alice".into(),
                    rid: 1001,
                    full_name: "Alice Example".into(),
                    last_logon: 133_400_000_000_000_000,
                    logon_count: 7,
                    ..UserSpec::default()
                },
                UserSpec {
                    name: "bob".into(),
                    rid: 1002,
                    full_name: "Bob Example".into(),
                    ..UserSpec::default()
                },
            ],
            label: "gpt".into(),
            ntfs_mib: 40,
            volume_dirty: false,
            hibernated: false,
            fast_startup: false,
            bitlocker_partition: false,
            dirty_hive: None,
            real_sam: None,
            real_security: None,
            real_hives: Vec::new(),
            efs_files: Vec::new(),
            system_dpapi: true,
            txr_pending: false,
            bulk: None,
            identity: true,
            sam_crypto: None,
        }
    }
}

/// Bytes of a hex string (a thumbprint).
fn guid_free_hex(h: &str) -> Vec<u8> {
    (0..h.len() / 2)
        .filter_map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).ok())
        .collect()
}

fn sid(s: &str) -> Result<Sid> {
    s.parse::<Sid>()
        .map_err(|e| anyhow::anyhow!("SID {s:?}: {e}"))
}

/// Self-relative descriptor bytes (canonical layout) from SDDL.
pub fn sd_bytes(sddl: &str) -> Result<Vec<u8>> {
    let sd =
        SecurityDescriptor::from_sddl(sddl).map_err(|e| anyhow::anyhow!("SDDL {sddl:?}: {e}"))?;
    sd.to_canonical_bytes().map_err(|e| anyhow::anyhow!("{e}"))
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn sz(s: &str) -> Vec<u8> {
    let mut v = utf16(s);
    v.extend_from_slice(&[0, 0]);
    v
}

/// The root key descriptor of generated hives: SYSTEM and Administrators full control, Users read.
fn default_root_descriptor() -> Result<Vec<u8>> {
    Ok(
        SecurityDescriptor::from_sddl("O:BAG:SYD:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)(A;CI;KR;;;BU)")?
            .to_canonical_bytes()?,
    )
}

/// A small hive-writing helper over `reseal_hive::Hive`.
struct H(Hive);

impl H {
    fn new(root: &str) -> Result<H> {
        Self::with_sd(root, &default_root_descriptor()?)
    }
    fn with_sd(root: &str, sd: &[u8]) -> Result<H> {
        let mut h = Hive::new_empty(root, sd)?;
        h.make_writable()?;
        Ok(H(h))
    }
    fn key(&mut self, path: &str) -> Result<KeyOffset> {
        Ok(self.0.create_path(path)?)
    }
    fn set(&mut self, path: &str, name: &str, ty: u32, data: &[u8]) -> Result<()> {
        let k = self.key(path)?;
        self.0.set_value(k, name, ty, data)?;
        Ok(())
    }
    fn s(&mut self, path: &str, name: &str, v: &str) -> Result<()> {
        self.set(path, name, REG_SZ, &sz(v))
    }
    fn d(&mut self, path: &str, name: &str, v: u32) -> Result<()> {
        self.set(path, name, REG_DWORD, &v.to_le_bytes())
    }
    fn finish(mut self) -> Result<Vec<u8>> {
        self.0.commit()?;
        Ok(self.0.into_bytes())
    }
}

/// `n` keys of about 1 KiB each under `prefix\\VendorNNN\\ProductNNNNNN`, naming accounts of
/// `machine` the way real hives do: SID strings (REG_SZ, REG_MULTI_SZ), binary SIDs inside
/// REG_BINARY, and every 16th key its own descriptor (owner one of `owners`, an ACE for machine
/// account `3000 + i / 16`).
fn bulk_keys(
    h: &mut H,
    prefix: &str,
    n: usize,
    machine: &Sid,
    owners: &[Sid],
    seed: u64,
) -> Result<()> {
    let m = machine.to_string();
    for i in 0..n {
        let g = i % 256;
        let path = format!("{prefix}\\Vendor{g:03}\\Product{i:06}");
        let k = h.key(&path)?;
        h.0.set_value(
            k,
            "DisplayName",
            REG_SZ,
            &sz(&format!("Reseal bench product {i} by vendor {g}")),
        )?;
        h.0.set_value(
            k,
            "InstallLocation",
            REG_SZ,
            &sz(&format!("C:\\Program Files\\Vendor{g:03}\\Product{i:06}\\")),
        )?;
        h.0.set_value(
            k,
            "Settings",
            REG_BINARY,
            &pseudo_random(seed.wrapping_mul(1_000_003) ^ i as u64, 480),
        )?;
        let owner = &owners[i % owners.len().max(1)];
        if i % 8 == 0 {
            h.0.set_value(k, "LastUser", REG_SZ, &sz(&owner.to_string()))?;
            let mut multi = utf16(&format!("S-1-5-32-544\0{owner}\0{m}-{}\0", 3000 + i / 16));
            multi.extend_from_slice(&[0, 0, 0, 0]);
            h.0.set_value(k, "Members", REG_MULTI_SZ, &multi)?;
            let mut blob = vec![0u8; 8];
            blob.extend_from_slice(&owner.to_bytes());
            blob.extend_from_slice(&[0xAA; 8]);
            h.0.set_value(k, "OwnerSid", REG_BINARY, &blob)?;
        }
        if i % 16 == 0 {
            let sd = sd_bytes(&format!(
                "O:{owner}G:{m}-513D:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)(A;CI;KR;;;{m}-{})",
                3000 + i / 16
            ))?;
            h.0.set_security(k, &sd)?;
        }
    }
    Ok(())
}

/// SAM `V` value: `count` descriptors `{offset, length, qualifier}`, then the fields, each
/// padded to 4 bytes (offsets relative to the end of the descriptor table).
fn sam_v(count: usize, fields: &[(&[u8], u32)]) -> Vec<u8> {
    let mut table = vec![0u8; count * 12];
    let mut data = Vec::new();
    for i in 0..count {
        let (bytes, qual) = fields.get(i).copied().unwrap_or((&[][..], 0));
        let o = i * 12;
        table[o..o + 4].copy_from_slice(&(data.len() as u32).to_le_bytes());
        table[o + 4..o + 8].copy_from_slice(&(bytes.len() as u32).to_le_bytes());
        table[o + 8..o + 12].copy_from_slice(&qual.to_le_bytes());
        data.extend_from_slice(bytes);
        while data.len() & 3 != 0 {
            data.push(0);
        }
    }
    table.extend_from_slice(&data);
    table
}

/// User `F` value (0x50 bytes).
fn user_f(u: &UserSpec) -> Vec<u8> {
    let mut f = vec![0u8; 0x50];
    f[0..2].copy_from_slice(&2u16.to_le_bytes());
    f[2..4].copy_from_slice(&1u16.to_le_bytes());
    f[0x08..0x10].copy_from_slice(&u.last_logon.to_le_bytes());
    f[0x18..0x20].copy_from_slice(&133_300_000_000_000_000u64.to_le_bytes());
    f[0x20..0x28].copy_from_slice(&0x7fff_ffff_ffff_ffffu64.to_le_bytes());
    f[0x30..0x34].copy_from_slice(&u.rid.to_le_bytes());
    f[0x34..0x38].copy_from_slice(&513u32.to_le_bytes());
    let acb: u16 = 0x0210 | if u.enabled { 0 } else { 0x0001 } | if u.locked { 0x0400 } else { 0 };
    f[0x38..0x3a].copy_from_slice(&acb.to_le_bytes());
    if u.locked {
        f[0x40..0x42].copy_from_slice(&3u16.to_le_bytes());
    }
    f[0x42..0x44].copy_from_slice(&u.logon_count.to_le_bytes());
    f
}

impl WindowsSpec {
    /// Parse a spec from JSON (every field optional, defaults as [`WindowsSpec::default`]).
    ///
    /// # Errors
    /// On JSON syntax errors and unknown fields.
    pub fn from_json(text: &str) -> Result<WindowsSpec> {
        Ok(serde_json::from_str(text)?)
    }

    fn machine(&self) -> Result<Sid> {
        let m = sid(&self.machine_sid)?;
        if !m.is_account_domain() {
            bail!("machine SID {m} is not S-1-5-21-X-Y-Z");
        }
        Ok(m)
    }

    fn user_sid(&self, u: &UserSpec) -> Result<Sid> {
        self.machine()?
            .with_rid(u.rid)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }

    /// SAM hive bytes.
    pub fn sam(&self) -> Result<Vec<u8>> {
        let m = self.machine()?;
        let mut h = H::new("CMI-CreateHive{899121E8-11D8-44B6-ACEB-301713D5ED8C}")?;
        let acc = "SAM\\Domains\\Account";
        let dom_sd = sd_bytes("O:BAG:SYD:(A;;RC;;;WD)(A;;0xf07ff;;;BA)(A;;0x20031;;;AU)")?;
        let v = sam_v(4, &[(&dom_sd, 0x0001_0002), (&m.to_bytes(), 0)]);
        h.set(acc, "V", REG_BINARY, &v)?;
        let mut f = vec![0u8; 0x68];
        f[0..4].copy_from_slice(&[2, 0, 1, 0]);
        let next = self
            .users
            .iter()
            .map(|u| u.rid)
            .max()
            .unwrap_or(999)
            .max(999)
            + 1;
        f[0x48..0x4c].copy_from_slice(&next.to_le_bytes());
        if let Some(c) = &self.sam_crypto {
            let key = c.sam_key()?;
            let salt: [u8; 16] = pseudo_random(0x5a17, 16).try_into().unwrap_or_default();
            f.extend_from_slice(&reseal_windows::sam_crypto::encrypt_sam_key(
                key.scheme,
                &key.key,
                &c.boot_key()?,
                &salt,
            ));
        }
        h.set(acc, "F", REG_BINARY, &f)?;
        h.set(&format!("{acc}\\Users\\Names"), "", REG_NONE, &[])?;
        for u in &self.users {
            let us = self.user_sid(u)?;
            let usd = sd_bytes(&format!(
                "O:BAG:BAD:(A;;0x2035b;;;WD)(A;;0xf07ff;;;BA)(A;;0x20044;;;{us})"
            ))?;
            let (lm, nt, hist) = match &self.sam_crypto {
                None => {
                    let mut x = vec![0u8, 0, 1, 0];
                    x.extend_from_slice(&pseudo_random(u64::from(u.rid), 16));
                    (x.clone(), x, Vec::new())
                }
                Some(c) => {
                    use reseal_windows::sam_crypto::{encrypt_hashes, nt_hash, HashKind};
                    let key = c.sam_key()?;
                    let salt = |n: u64| -> [u8; 16] {
                        pseudo_random(u64::from(u.rid) * 8 + n, 16)
                            .try_into()
                            .unwrap_or_default()
                    };
                    let hashes: Vec<[u8; 16]> =
                        u.password.as_deref().map(nt_hash).into_iter().collect();
                    (
                        encrypt_hashes(&key, u.rid, HashKind::Lm, &[], 1, &salt(1)),
                        encrypt_hashes(&key, u.rid, HashKind::Nt, &hashes, 1, &salt(2)),
                        // An NT history holding the current hash, as Windows keeps it.
                        encrypt_hashes(&key, u.rid, HashKind::NtHistory, &hashes, 1, &salt(3)),
                    )
                }
            };
            let hours = [0xffu8; 21];
            let name = utf16(&u.name);
            let full = utf16(&u.full_name);
            let comment = utf16(&u.comment);
            let mut fields: Vec<(&[u8], u32)> =
                vec![(&usd, 0x0001_0002), (&name, 0), (&full, 0), (&comment, 0)];
            fields.resize(11, (&[][..], 0));
            fields.push((&hours, 0xa8));
            fields.push((&[][..], 0));
            fields.push((&lm, 0)); // LM
            fields.push((&nt, 0)); // NT
            if self.sam_crypto.is_some() {
                fields.push((&hist, 0)); // history
                fields.push((&lm, 0)); // history
            }
            let v = sam_v(17, &fields);
            let key = format!("{acc}\\Users\\{:08X}", u.rid);
            h.set(&key, "V", REG_BINARY, &v)?;
            h.set(&key, "F", REG_BINARY, &user_f(u))?;
            // Names\<name>: default value, empty data, type = RID (real SAM quirk).
            h.set(&format!("{acc}\\Users\\Names\\{}", u.name), "", u.rid, &[])?;
        }
        h.set(&format!("{acc}\\Aliases\\Members"), "", REG_NONE, &[])?;
        h.set(
            &format!("{acc}\\Groups\\00000201"),
            "C",
            REG_BINARY,
            &[2, 0, 1, 0, 1, 2, 0, 0],
        )?;
        // Builtin\Aliases\00000220 (Administrators): members are full binary SIDs.
        let admins: Vec<Sid> = self
            .users
            .iter()
            .filter(|u| u.rid == 500 || u.rid == 1001)
            .map(|u| self.user_sid(u))
            .collect::<Result<_>>()?;
        let name = utf16("Administrators");
        let mut members = Vec::new();
        for s in &admins {
            members.extend_from_slice(&s.to_bytes());
        }
        // C = u32 RID, then 4 descriptors {offset, length, qualifier} (relative to 52):
        // SD (qualifier 0x10003), name, comment, members (qualifier = member count) — the
        // layout of the real Server 2016 SAM's 00000220\C.
        let alias_sd = sd_bytes("O:BAG:SYD:(A;;0x2000c;;;WD)(A;;0xf001f;;;BA)")?;
        let comment =
            utf16("Administrators have complete and unrestricted access to the computer/domain");
        let mut c = 0x220u32.to_le_bytes().to_vec();
        c.extend_from_slice(&sam_v(
            4,
            &[
                (&alias_sd, 0x0001_0003),
                (&name, 0),
                (&comment, 0),
                (&members, admins.len() as u32),
            ],
        ));
        h.set(
            "SAM\\Domains\\Builtin\\Aliases\\00000220",
            "C",
            REG_BINARY,
            &c,
        )?;
        h.set(
            "SAM\\Domains\\Builtin\\Aliases\\Names\\Administrators",
            "",
            0x220,
            &[],
        )?;
        for s in &admins {
            let rid = s.rid().unwrap_or(0);
            h.set(
                &format!("SAM\\Domains\\Builtin\\Aliases\\Members\\{m}\\{rid:08X}"),
                "",
                1,
                &0x220u32.to_le_bytes(),
            )?;
        }
        h.finish()
    }

    /// SECURITY hive bytes.
    pub fn security(&self) -> Result<Vec<u8>> {
        let m = self.machine()?;
        let mut h = H::new("CMI-CreateHive{C4E7BA2B-68E8-499C-B1A1-371AC8D717C7}")?;
        h.set("Policy\\PolAcDmS", "", REG_NONE, &m.to_bytes())?;
        h.set(
            "Policy\\PolAcDmN",
            "",
            REG_NONE,
            &reseal_windows::sam::encode_lsa_name(&self.computer_name),
        )?;
        match &self.domain {
            Some(d) => {
                h.set("Policy\\PolPrDmS", "", REG_NONE, &sid(&d.sid)?.to_bytes())?;
                h.set(
                    "Policy\\PolPrDmN",
                    "",
                    REG_NONE,
                    &reseal_windows::sam::encode_lsa_name(&d.name),
                )?;
                h.set(
                    "Policy\\PolDnDDN",
                    "",
                    REG_NONE,
                    &reseal_windows::sam::encode_lsa_name(&d.dns_name),
                )?;
            }
            None => {
                h.set("Policy\\PolPrDmS", "", REG_NONE, &[])?;
                h.set(
                    "Policy\\PolPrDmN",
                    "",
                    REG_NONE,
                    &reseal_windows::sam::encode_lsa_name(&self.workgroup),
                )?;
            }
        }
        h.set("Policy\\PolMachineAccountS", "", REG_NONE, &[])?;
        h.set("Policy\\Secrets", "", REG_NONE, &[])?;
        let mut accounts = vec![sid("S-1-5-32-544")?, sid("S-1-5-32-545")?];
        for u in &self.users {
            accounts.push(self.user_sid(u)?);
        }
        for a in accounts {
            h.set(
                &format!("Policy\\Accounts\\{a}\\Sid"),
                "",
                REG_NONE,
                &a.to_bytes(),
            )?;
            h.set(
                &format!("Policy\\Accounts\\{a}\\ActSysAc"),
                "",
                REG_NONE,
                &1u32.to_le_bytes(),
            )?;
        }
        h.finish()
    }

    fn control_set(&self, h: &mut H, n: u32, name: &str, host: &str) -> Result<()> {
        let cs = format!("ControlSet{n:03}");
        let cn = format!("{cs}\\Control\\ComputerName");
        h.s(&format!("{cn}\\ComputerName"), "ComputerName", name)?;
        h.s(&format!("{cn}\\ActiveComputerName"), "ComputerName", name)?;
        let tcp = format!("{cs}\\Services\\Tcpip\\Parameters");
        h.s(&tcp, "Hostname", host)?;
        h.s(&tcp, "NV Hostname", host)?;
        let dom = self
            .domain
            .as_ref()
            .map(|d| d.dns_name.clone())
            .unwrap_or_default();
        h.s(&tcp, "Domain", &dom)?;
        h.s(&tcp, "NV Domain", &dom)?;
        h.d(
            &format!("{cs}\\Control\\Session Manager\\Power"),
            "HiberbootEnabled",
            u32::from(self.fast_startup),
        )?;
        h.s(&format!("{cs}\\Control\\Windows"), "CSDVersion", "")?;
        // What `provision` reads for answer-file components (AMD64, x86 or ARM64); ARM64 so a
        // test tells the detection from the amd64 fallback.
        h.s(
            &format!("{cs}\\Control\\Session Manager\\Environment"),
            "PROCESSOR_ARCHITECTURE",
            "ARM64",
        )?;
        if self.identity {
            // DHCPv6 DUID (DUID-LLT: type 1, hardware type 1, time, MAC; RFC 8415 11.2).
            let mut duid = vec![0, 1, 0, 1, 0x2b, 0x3c, 0x4d, 0x5e];
            duid.extend_from_slice(&[0x00, 0x15, 0x5d, 0x01, 0x02, 0x03]);
            let t6 = format!("{cs}\\Services\\Tcpip6\\Parameters");
            h.set(&t6, "Dhcpv6DUID", REG_BINARY, &duid)?;
            h.d(&t6, "DisabledComponents", 0)?;
            // SMB server GUID (16 bytes, REG_BINARY).
            let ls = format!("{cs}\\Services\\LanmanServer\\Parameters");
            h.set(
                &ls,
                "Guid",
                REG_BINARY,
                &pseudo_random(33 + u64::from(n), 16),
            )?;
            h.d(&ls, "AutoShareWks", 1)?;
            // The RDP listener's certificate binding (askpfeplat 2017-02-01).
            let rdp = format!("{cs}\\Control\\Terminal Server\\WinStations\\RDP-Tcp");
            h.set(
                &rdp,
                "SSLCertificateSHA1Hash",
                REG_BINARY,
                &guid_free_hex(ids::RDP_THUMBPRINT),
            )?;
            h.d(&rdp, "PortNumber", 3389)?;
        }
        Ok(())
    }

    /// SYSTEM hive bytes; `name_override` replaces the computer name (stale primaries).
    pub fn system(&self, name_override: Option<&str>) -> Result<Vec<u8>> {
        let mut h = H::new("ROOT")?;
        let cur = self.current_control_set.max(1);
        h.d("Select", "Current", cur)?;
        h.d("Select", "Default", cur)?;
        h.d("Select", "Failed", 0)?;
        h.d("Select", "LastKnownGood", cur)?;
        let name = name_override.unwrap_or(&self.computer_name);
        if cur != 1 {
            self.control_set(&mut h, 1, "STALE-CS001", "stale-cs001")?;
        }
        self.control_set(&mut h, cur, name, &self.dns_hostname)?;
        if let Some(c) = &self.sam_crypto {
            let names = reseal_windows::sam_crypto::class_names_from_boot_key(&c.boot_key()?);
            for (k, class) in reseal_windows::sam_crypto::LSA_KEYS.iter().zip(names) {
                let key = h.key(&format!("ControlSet{cur:03}\\Control\\Lsa\\{k}"))?;
                h.0.set_class_name(key, Some(&class))?;
            }
        }
        // MountedDevices: GPT form "DMIO:ID:" + the partition GUID (fixed with `sfdisk
        // --part-uuid` after the disk is built), MBR form disk signature + byte offset.
        let md = if self.label == "gpt" {
            let mut v = b"DMIO:ID:".to_vec();
            v.extend_from_slice(&guid_bytes(WINDOWS_PART_GUID)?);
            v
        } else {
            let mut v = MBR_DISK_ID.to_le_bytes().to_vec();
            v.extend_from_slice(&MIB.to_le_bytes());
            v
        };
        h.set("MountedDevices", "\\DosDevices\\C:", REG_BINARY, &md)?;
        h.finish()
    }

    fn profile_dir(u: &UserSpec) -> String {
        format!("Users/{}", u.name)
    }

    /// SOFTWARE hive bytes.
    pub fn software(&self) -> Result<Vec<u8>> {
        let m = self.machine()?;
        let mut h = H::new("ROOT")?;
        let cv = "Microsoft\\Windows NT\\CurrentVersion";
        h.s(cv, "ProductName", &self.product_name)?;
        h.s(cv, "EditionID", &self.edition_id)?;
        h.s(cv, "CurrentBuild", &self.build)?;
        h.s(cv, "CurrentBuildNumber", &self.build)?;
        h.d(cv, "UBR", self.ubr)?;
        h.s(cv, "DisplayVersion", &self.display_version)?;
        h.s(cv, "CurrentVersion", "6.3")?;
        h.s(cv, "InstallationType", "Client")?;
        h.s(cv, "SystemRoot", "C:\\Windows")?;
        h.s(cv, "RegisteredOwner", "reseal")?;
        let pl = format!("{cv}\\ProfileList");
        h.set(
            &pl,
            "ProfilesDirectory",
            REG_EXPAND_SZ,
            &sz("%SystemDrive%\\Users"),
        )?;
        let sys = format!("{pl}\\S-1-5-18");
        h.set(
            &sys,
            "ProfileImagePath",
            REG_EXPAND_SZ,
            &sz("%systemroot%\\system32\\config\\systemprofile"),
        )?;
        h.set(&sys, "Sid", REG_BINARY, &sid("S-1-5-18")?.to_bytes())?;
        h.d(&sys, "Flags", 12)?;
        for u in self.users.iter().filter(|u| u.profile) {
            let us = self.user_sid(u)?;
            let k = format!("{pl}\\{us}");
            h.set(
                &k,
                "ProfileImagePath",
                REG_EXPAND_SZ,
                &sz(&format!("%SystemDrive%\\Users\\{}", u.name)),
            )?;
            h.set(&k, "Sid", REG_BINARY, &us.to_bytes())?;
            h.d(&k, "Flags", 0)?;
            h.d(&k, "State", 0)?;
        }
        h.s("Microsoft\\Cryptography", "MachineGuid", ids::MACHINE_GUID)?;
        let wu = "Microsoft\\Windows\\CurrentVersion\\WindowsUpdate";
        h.s(wu, "AccountDomainSid", &m.to_string())?;
        h.s(wu, "SusClientId", ids::SUS_CLIENT_ID)?;
        h.set(wu, "PingID", REG_SZ, &sz("fixture"))?;
        if self.identity {
            // WSUS: SusClientIdValidation is REG_BINARY (technet dd939898, SYSPREP.md §1).
            h.set(
                wu,
                "SusClientIdValidation",
                REG_BINARY,
                &pseudo_random(31, 74),
            )?;
            h.s(wu, "LastWaitTimeout", "2023-01-01 00:00:00")?;
            // SQM/CEIP machine id, deleted by Sysprep generalize (jpwinsup blog 2023-01-11).
            h.s("Microsoft\\SQMClient", "MachineId", ids::SQM_MACHINE_ID)?;
            h.d("Microsoft\\SQMClient", "CEIPEnable", 0)?;
            // MDE device id, deleted by Generalize.xml (actions/runner-images#9659).
            let atp = "Microsoft\\Windows Advanced Threat Protection";
            h.s(atp, "senseGuid", ids::SENSE_GUID)?;
            h.s(atp, "OnboardedInfo", "fixture")?;
            // MSDTC contact ids: HKCR\\CID\\<GUID>\\Description (default) ([MS-CMOM] 2.2.3.5).
            for (cid, desc) in [
                (ids::MSDTC_CID, "MSDTC"),
                (ids::MSDTCUIS_CID, "MSDTCUIS"),
                (ids::OTHER_CID, "Fixture Component"),
            ] {
                let k = format!("Classes\\CID\\{cid}");
                h.s(&format!("{k}\\Description"), "", desc)?;
                h.s(&format!("{k}\\Type"), "", "LOCAL")?;
            }
            // The LocalMachine\\Remote Desktop store (askpfeplat 2017-02-01).
            let rd = format!(
                "Microsoft\\SystemCertificates\\Remote Desktop\\Certificates\\{}",
                ids::RDP_THUMBPRINT
            );
            h.set(&rd, "Blob", REG_BINARY, &pseudo_random(32, 800))?;
            h.set(
                "Microsoft\\SystemCertificates\\Remote Desktop\\CRLs",
                "",
                REG_NONE,
                &[],
            )?;
        }
        let wl = format!("{cv}\\Winlogon");
        if let Some(first) = self.users.iter().find(|u| u.profile) {
            h.s(&wl, "DefaultUserName", &first.name)?;
            h.s(&wl, "AutoLogonSID", &self.user_sid(first)?.to_string())?;
            h.s(
                "Microsoft\\Windows\\CurrentVersion\\Authentication\\LogonUI",
                "LastLoggedOnUserSID",
                &self.user_sid(first)?.to_string(),
            )?;
        }
        h.s(&wl, "DefaultDomainName", &self.computer_name)?;
        if self.identity {
            h.s(&wl, "AltDefaultDomainName", &self.computer_name)?;
        }
        h.s(&wl, "Shell", "explorer.exe")?;
        let tc = format!("{cv}\\Schedule\\TaskCache");
        let guid = "{5A1B2C3D-4E5F-4061-8172-93A4B5C6D7E8}";
        h.s(&format!("{tc}\\Tree\\ResealFixtureTask"), "Id", guid)?;
        h.s(
            &format!("{tc}\\Tasks\\{guid}"),
            "Path",
            "\\ResealFixtureTask",
        )?;
        h.set(
            &format!("{tc}\\Tasks\\{guid}"),
            "Hash",
            REG_BINARY,
            &pseudo_random(9, 32),
        )?;
        h.set(
            cv,
            "InstallTime",
            REG_QWORD,
            &133_000_000_000_000_000u64.to_le_bytes(),
        )?;
        if let Some(b) = &self.bulk {
            let owners: Vec<Sid> = self
                .users
                .iter()
                .map(|u| self.user_sid(u))
                .collect::<Result<_>>()?;
            bulk_keys(&mut h, "ResealBench", b.software_keys, &m, &owners, 1)?;
        }
        h.finish()
    }

    /// COMPONENTS hive bytes: `keys` bulk keys under `DerivedData\Components` (where Windows
    /// lists the component store's components).
    pub fn components(&self, keys: usize) -> Result<Vec<u8>> {
        let m = self.machine()?;
        let owners: Vec<Sid> = self
            .users
            .iter()
            .map(|u| self.user_sid(u))
            .collect::<Result<_>>()?;
        let mut h = H::new("COMPONENTS")?;
        h.d("CanonicalData\\Catalogs", "Version", 1)?;
        bulk_keys(&mut h, "DerivedData\\Components", keys, &m, &owners, 3)?;
        h.finish()
    }

    /// DEFAULT hive bytes.
    pub fn default_hive(&self) -> Result<Vec<u8>> {
        let mut h = H::new("CsiTool-CreateHive-{00000000-0000-0000-0000-000000000000}")?;
        h.s("Control Panel\\International", "LocaleName", "en-US")?;
        h.s("Environment", "TEMP", "%USERPROFILE%\\AppData\\Local\\Temp")?;
        h.finish()
    }

    fn user_sd(&self, u: &UserSpec) -> Result<Vec<u8>> {
        let us = self.user_sid(u)?;
        sd_bytes(&format!(
            "O:{us}G:{}-513D:P(A;CI;KA;;;{us})(A;CI;KA;;;SY)(A;CI;KA;;;BA)",
            self.machine_sid
        ))
    }

    /// NTUSER.DAT bytes of a user.
    pub fn ntuser(&self, u: &UserSpec) -> Result<Vec<u8>> {
        let us = self.user_sid(u)?;
        let mut h = H::with_sd(
            "CsiTool-CreateHive-{00000000-0000-0000-0000-000000000000}",
            &self.user_sd(u)?,
        )?;
        h.s("Environment", "TEMP", "%USERPROFILE%\\AppData\\Local\\Temp")?;
        h.s(
            "Software\\Microsoft\\Windows\\CurrentVersion\\Explorer",
            "ShellState",
            "fixture",
        )?;
        h.set(
            &format!("Software\\Microsoft\\Protected Storage System Provider\\{us}"),
            "",
            REG_NONE,
            &[],
        )?;
        if let Some(b) = &self.bulk {
            bulk_keys(
                &mut h,
                "Software\\ResealBench",
                b.ntuser_keys,
                &self.machine()?,
                std::slice::from_ref(&us),
                u64::from(u.rid),
            )?;
        }
        h.finish()
    }

    /// UsrClass.dat bytes of a user (root key `<SID>_Classes`).
    pub fn usrclass(&self, u: &UserSpec) -> Result<Vec<u8>> {
        let us = self.user_sid(u)?;
        let mut h = H::with_sd(&format!("{us}_Classes"), &self.user_sd(u)?)?;
        h.s(
            "Local Settings\\Software\\Microsoft\\Windows\\Shell",
            "Fixture",
            "1",
        )?;
        // An MrtCache key name as Windows 10/11 write them: the SID after a URL-encoded `\`.
        h.s(
            &format!(
                "Local Settings\\MrtCache\\C:%5CProgram Files%5CWindowsApps%5CMicrosoft.WindowsStore_12107.1001.15.0_x64__8wekyb3d8bbwe%5Cmicrosoft.system.package.metadata%5C{us}-MergedResources-1.pri"
            ),
            "Fixture",
            "1",
        )?;
        h.finish()
    }

    /// The NTFS entries of the system volume.
    pub fn entries(&self) -> Result<Vec<Entry>> {
        let m = self.machine()?;
        let mut e = vec![
            Entry::Dir("Windows/System32/config/TxR".into()),
            Entry::Dir("Windows/System32/config/RegBack".into()),
            Entry::Dir("Windows/System32/Tasks".into()),
            Entry::Dir("Windows/System32/config/systemprofile".into()),
            Entry::Dir("Users/Public".into()),
            Entry::Dir("$Recycle.Bin".into()),
        ];
        let cfg = "Windows/System32/config";
        let (sam, security) = (
            match &self.real_sam {
                Some(p) => crate::corpus_bytes(p)?,
                None => self.sam()?,
            },
            match &self.real_security {
                Some(p) => crate::corpus_bytes(p)?,
                None => self.security()?,
            },
        );
        let mut hives: Vec<(&str, Vec<u8>)> = vec![
            ("SYSTEM", self.system(None)?),
            ("SOFTWARE", self.software()?),
            ("SAM", sam),
            ("SECURITY", security),
            ("DEFAULT", self.default_hive()?),
        ];
        for (name, bytes) in &mut hives {
            let mut log1 = Vec::new();
            if self
                .dirty_hive
                .as_deref()
                .is_some_and(|d| d.eq_ignore_ascii_case(name))
            {
                let stale = if *name == "SYSTEM" {
                    self.system(Some("STALE-PRIMARY"))?
                } else {
                    bytes.clone()
                };
                let (primary, log) = dirty_with_log(&stale, bytes)?;
                *bytes = primary;
                log1 = log;
            }
            let mut log2 = Vec::new();
            if let Some(r) = self
                .real_hives
                .iter()
                .find(|r| r.name.eq_ignore_ascii_case(name))
            {
                *bytes = crate::corpus_bytes(&r.hive)?;
                log1 = r
                    .log1
                    .as_deref()
                    .map(crate::corpus_bytes)
                    .transpose()?
                    .unwrap_or_default();
                log2 = r
                    .log2
                    .as_deref()
                    .map(crate::corpus_bytes)
                    .transpose()?
                    .unwrap_or_default();
            }
            e.push(Entry::File(format!("{cfg}/{name}"), bytes.clone()));
            e.push(Entry::File(format!("{cfg}/{name}.LOG1"), log1));
            e.push(Entry::File(format!("{cfg}/{name}.LOG2"), log2));
        }
        if let Some(b) = self.bulk.as_ref().filter(|b| b.components_keys > 0) {
            e.push(Entry::File(
                format!("{cfg}/COMPONENTS"),
                self.components(b.components_keys)?,
            ));
            e.push(Entry::File(format!("{cfg}/COMPONENTS.LOG1"), Vec::new()));
            e.push(Entry::File(format!("{cfg}/COMPONENTS.LOG2"), Vec::new()));
        }
        // TxR: an all-zero base log (Windows keeps these; no content = nothing pending).
        e.push(Entry::File(
            format!("{cfg}/TxR/{{53b39e88-18c4-11ea-a811-000d3aa4692b}}.TxR.blf"),
            vec![0u8; 4096],
        ));
        if self.txr_pending {
            e.push(Entry::File(
                format!("{cfg}/TxR/{{53b39e88-18c4-11ea-a811-000d3aa4692b}}.TxR.0.regtrans-ms"),
                pseudo_random(5, 8192),
            ));
        }
        let sys_sd = sd_bytes("O:SYG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)")?;
        e.push(Entry::Acl(cfg.into(), sys_sd));
        let mut task_user = None;
        for u in &self.users {
            let us = self.user_sid(u)?;
            let rb = format!("$Recycle.Bin/{us}");
            e.push(Entry::File(
                format!("{rb}/desktop.ini"),
                b"[.ShellClassInfo]\r\n".to_vec(),
            ));
            let rb_sd = sd_bytes(&format!(
                "O:{us}G:{m}-513D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;{us})"
            ))?;
            e.push(Entry::Acl(rb, rb_sd));
            if !u.profile {
                continue;
            }
            task_user.get_or_insert(us.clone());
            let dir = Self::profile_dir(u);
            e.push(Entry::File(format!("{dir}/NTUSER.DAT"), self.ntuser(u)?));
            e.push(Entry::File(format!("{dir}/ntuser.dat.LOG1"), Vec::new()));
            let local = format!("{dir}/AppData/Local/Microsoft/Windows");
            e.push(Entry::File(
                format!("{local}/UsrClass.dat"),
                self.usrclass(u)?,
            ));
            let protect = format!("{dir}/AppData/Roaming/Microsoft/Protect/{us}");
            e.push(Entry::File(
                format!("{protect}/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"),
                pseudo_random(u64::from(u.rid) + 100, 468),
            ));
            e.push(Entry::File(
                format!("{protect}/Preferred"),
                pseudo_random(u64::from(u.rid) + 200, 24),
            ));
            let doc = format!("{dir}/Documents/notes-{}.txt", u.name);
            e.push(Entry::File(
                doc.clone(),
                format!("notes of {}\r\n", u.name).into_bytes(),
            ));
            let user_sd = sd_bytes(&format!(
                "O:{us}G:{m}-513D:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;{us})"
            ))?;
            e.push(Entry::Acl(dir.clone(), user_sd.clone()));
            let doc_sd = sd_bytes(&format!(
                "O:{us}G:{m}-513D:(A;;FA;;;{us})(A;;FA;;;SY)(A;;0x1200a9;;;BA)"
            ))?;
            e.push(Entry::Acl(doc, doc_sd));
        }
        if let Some(b) = &self.bulk {
            self.bulk_files(b, &mut e)?;
        }
        if self.system_dpapi {
            e.push(Entry::File(
                "Windows/System32/Microsoft/Protect/S-1-5-18/User/1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d".into(),
                pseudo_random(18, 468),
            ));
        }
        let who = task_user
            .map(|s| s.to_string())
            .unwrap_or_else(|| "S-1-5-18".into());
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-16\"?>\r\n<Task version=\"1.2\" xmlns=\"http://schemas.microsoft.com/windows/2004/02/mit/task\">\r\n  <Principals>\r\n    <Principal id=\"Author\">\r\n      <UserId>{who}</UserId>\r\n      <LogonType>InteractiveToken</LogonType>\r\n    </Principal>\r\n  </Principals>\r\n  <Actions Context=\"Author\">\r\n    <Exec><Command>notepad.exe</Command></Exec>\r\n  </Actions>\r\n</Task>\r\n"
        );
        let mut xml16 = vec![0xff, 0xfe];
        xml16.extend_from_slice(&utf16(&xml));
        e.push(Entry::File(
            "Windows/System32/Tasks/ResealFixtureTask".into(),
            xml16,
        ));
        e.push(Entry::File(
            "Windows/System32/drivers/etc/hosts".into(),
            b"127.0.0.1 localhost\r\n".to_vec(),
        ));
        if self.identity {
            self.identity_files(&mut e);
        }
        if self.hibernated {
            let mut h = b"HIBR".to_vec();
            h.resize(8192, 0);
            e.push(Entry::File("hiberfil.sys".into(), h));
        }
        for p in &self.efs_files {
            if !e.iter().any(|x| matches!(x, Entry::File(q, _) if q == p)) {
                e.push(Entry::File(p.clone(), pseudo_random(42, 512)));
            }
        }
        Ok(e)
    }

    /// The files of [`ids`]: machine keys named `<hash>_<MachineGuid>`, SSH host keys, event
    /// logs, swap files and setup logs (each deleted file holds [`ids::SECRET`]).
    fn identity_files(&self, e: &mut Vec<Entry>) {
        let secret = |seed: u64, len: usize| {
            let mut b = ids::SECRET.to_vec();
            b.extend_from_slice(&pseudo_random(seed, len));
            b.extend_from_slice(ids::SECRET);
            b
        };
        // Two machine keys only: ntfs-3g moves the index root of a folder with a third
        // 69-character name into an extension record (an attribute list), which the NTFS write
        // engine does not edit (real MachineKeys folders keep their index in
        // $INDEX_ALLOCATION).
        let mk = ids::MACHINE_KEYS;
        e.push(Entry::File(
            format!("{mk}/{}_{}", ids::RDP_KEY_HASH, ids::MACHINE_GUID),
            secret(40, 2000),
        ));
        e.push(Entry::File(
            format!("{mk}/{}_{}", ids::OTHER_KEY_HASH, ids::MACHINE_GUID),
            pseudo_random(41, 1700),
        ));
        for (i, (_, p)) in ids::CLEANED.iter().enumerate() {
            // Sizes: event logs 68 KiB (the evtx minimum is a 4 KiB header + one 64 KiB
            // chunk), the page file 512 KiB, small text for the rest (resident in the MFT).
            let len = match *p {
                "pagefile.sys" => 512 << 10,
                "swapfile.sys" => 256 << 10,
                q if q.ends_with(".evtx") => 68 << 10,
                _ => 300,
            };
            e.push(Entry::File((*p).into(), secret(50 + i as u64, len)));
        }
        e.push(Entry::File(
            "ProgramData/ssh/sshd_config".into(),
            b"# reseal fixture\r\nPort 22\r\n".to_vec(),
        ));
        e.push(Entry::File(
            "Windows/System32/winevt/Logs/readme.txt".into(),
            b"not an event log\r\n".to_vec(),
        ));
    }

    /// The bulk files: `b.files` small files over the profiles, `b.descriptors` distinct
    /// descriptors among them.
    fn bulk_files(&self, b: &BulkSpec, e: &mut Vec<Entry>) -> Result<()> {
        let m = self.machine()?;
        let users: Vec<(&UserSpec, Sid)> = self
            .users
            .iter()
            .filter(|u| u.profile)
            .map(|u| Ok((u, self.user_sid(u)?)))
            .collect::<Result<_>>()?;
        if users.is_empty() {
            bail!("bulk files need a user with a profile");
        }
        let mut sds: Vec<Option<Vec<u8>>> = vec![None; b.descriptors.max(1)];
        for i in 0..b.files {
            let (u, us) = &users[i % users.len()];
            let dir = format!(
                "{}/Documents/Bulk/Dir{:03}",
                Self::profile_dir(u),
                (i / users.len()) % 200
            );
            let path = format!("{dir}/file-{i:06}.txt");
            let line = format!("bulk file {i} of {}\r\n", u.name);
            e.push(Entry::File(
                path.clone(),
                line.repeat(1 + i % 64).into_bytes(),
            ));
            let j = i % sds.len();
            let sd = match &sds[j] {
                Some(sd) => sd.clone(),
                None => {
                    let sd = sd_bytes(&format!(
                        "O:{us}G:{m}-513D:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;;FA;;;{us})(A;;0x1200a9;;;{m}-{})",
                        3000 + j
                    ))?;
                    sds[j] = Some(sd.clone());
                    sd
                }
            };
            e.push(Entry::Acl(path, sd));
        }
        Ok(())
    }

    /// Build the raw disk image at `out`.
    ///
    /// # Errors
    /// When a tool or hive write fails.
    pub fn build(&self, out: &Path) -> Result<()> {
        let tmp = tempfile::tempdir()?;
        let vol = tmp.path().join("ntfs.img");
        let ntfs = NtfsSpec {
            size: self.ntfs_mib * MIB,
            cluster: 4096,
            label: "Windows".into(),
            entries: self.entries()?,
        };
        build_ntfs(&ntfs, &vol)?;
        for p in &self.efs_files {
            set_encrypted(&vol, p)?;
        }
        if self.fast_startup {
            let log = crate::corpus_bytes("dfir_ntfs/LogFile_10.bin")?;
            let at = logfile_offset(&vol)?;
            write_at(&vol, at, &log[..8192.min(log.len())])?;
        }
        if self.volume_dirty {
            run(Command::new("ntfsfix").arg(&vol))?;
        }
        if self.label == "none" {
            // The whole image is the NTFS volume (no partition table). `cp --sparse=always`
            // keeps the holes (a large, mostly empty benchmark volume stays small on disk).
            let _ = std::fs::remove_file(out);
            run(Command::new("cp").arg("--sparse=always").arg(&vol).arg(out))?;
            return Ok(());
        }
        let mut parts = Vec::new();
        if self.label == "gpt" {
            parts.push(PartSpec {
                kind: gpt_type::ESP.into(),
                name: "EFI system partition".into(),
                size: 36 * MIB,
                content: PartContent::Fat32 {
                    label: "SYSTEM".into(),
                },
            });
            parts.push(PartSpec {
                kind: gpt_type::MSR.into(),
                name: "Microsoft reserved partition".into(),
                size: 16 * MIB,
                content: PartContent::Empty,
            });
        }
        parts.push(PartSpec {
            kind: if self.label == "gpt" {
                gpt_type::BASIC_DATA.into()
            } else {
                "7".into()
            },
            name: "Basic data partition".into(),
            size: self.ntfs_mib * MIB,
            content: PartContent::File(vol.clone()),
        });
        if self.bitlocker_partition {
            let mut b = vec![0u8; 512];
            b[0..3].copy_from_slice(&[0xeb, 0x58, 0x90]);
            b[3..11].copy_from_slice(b"-FVE-FS-");
            b[11..13].copy_from_slice(&512u16.to_le_bytes());
            b[510] = 0x55;
            b[511] = 0xaa;
            parts.push(PartSpec {
                kind: if self.label == "gpt" {
                    gpt_type::BASIC_DATA.into()
                } else {
                    "7".into()
                },
                name: "Basic data partition".into(),
                size: 4 * MIB,
                content: PartContent::Bytes(b),
            });
        }
        DiskSpec {
            label: self.label.clone(),
            tail: MIB,
            parts,
        }
        .build(out)?;
        // Identify the disk the way SYSTEM\MountedDevices says.
        let mut c = Command::new("sfdisk");
        if self.label == "gpt" {
            c.arg("--part-uuid")
                .arg(out)
                .arg(self.windows_partition().to_string())
                .arg(WINDOWS_PART_GUID);
        } else {
            c.arg("--disk-id")
                .arg(out)
                .arg(format!("{MBR_DISK_ID:#010x}"));
        }
        run(&mut c)?;
        Ok(())
    }

    /// Copy the Windows volume of `raw` (an image built from this spec) to `out` as a bare,
    /// sparse volume file, for ntfs-3g and the other volume tools.
    ///
    /// # Errors
    /// When the partition table cannot be read or the copy fails.
    pub fn extract_volume(&self, raw: &Path, out: &Path) -> Result<()> {
        if self.windows_partition() == 0 {
            std::fs::copy(raw, out)?;
            return Ok(());
        }
        let img = reseal_disk::Image::open(raw, reseal_disk::Access::ReadOnly)?;
        let t = reseal_disk::partition::PartitionTable::read(&img)?;
        let p = t
            .get(self.windows_partition())
            .context("the Windows partition is missing")?;
        run(Command::new("dd")
            .arg(format!("if={}", raw.display()))
            .arg(format!("of={}", out.display()))
            .args(["bs=1M", "status=none", "conv=sparse"])
            .arg(format!("skip={}", p.start >> 20))
            .arg(format!("count={}", p.len >> 20)))?;
        Ok(())
    }

    /// Partition number of the Windows volume in the built image.
    pub fn windows_partition(&self) -> u32 {
        match self.label.as_str() {
            "gpt" => 3,
            "none" => 0,
            _ => 1,
        }
    }
}

/// Like [`NtfsSpec::build`], but the final unmount is retried: right after many writes
/// `umount` sometimes reports "target is busy" while ntfs-3g finishes, and
/// `NtfsMount::unmount` gives up at once (and then leaves the mount behind).
fn build_ntfs(spec: &NtfsSpec, out: &Path) -> Result<()> {
    let empty = NtfsSpec {
        entries: Vec::new(),
        ..spec.clone()
    };
    empty.build(out)?;
    let mount = crate::NtfsMount::new(out, "streams_interface=windows")?;
    let root = mount.path().to_path_buf();
    crate::populate(&root, &spec.entries)?;
    if mount.unmount().is_ok() {
        return Ok(());
    }
    let mut last = String::new();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let o = Command::new("umount").arg(&root).output()?;
        if o.status.success() {
            return Ok(());
        }
        last = String::from_utf8_lossy(&o.stderr).to_string();
    }
    bail!("umount {} kept failing: {last}", root.display())
}

fn write_at(path: &Path, at: u64, data: &[u8]) -> Result<()> {
    use std::os::unix::fs::FileExt;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .write_all_at(data, at)?;
    Ok(())
}

fn read_at(path: &Path, at: u64, len: usize) -> Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut b = vec![0u8; len];
    std::fs::File::open(path)?.read_exact_at(&mut b, at)?;
    Ok(b)
}

/// (cluster size, MFT byte offset, record size) from an NTFS boot sector.
fn geometry(vol: &Path) -> Result<(u64, u64, u64)> {
    let b = read_at(vol, 0, 512)?;
    let bps = u64::from(u16::from_le_bytes([b[11], b[12]]));
    let cluster = bps * u64::from(b[13]);
    let mft = u64::from_le_bytes(b[0x30..0x38].try_into()?) * cluster;
    let c = b[0x40] as i8;
    let rec = if c < 0 {
        1u64 << (-i32::from(c))
    } else {
        c as u64 * cluster
    };
    Ok((cluster, mft, rec))
}

/// Byte offset of `$LogFile` data (MFT record 2, first data run).
fn logfile_offset(vol: &Path) -> Result<u64> {
    let (cluster, mft, rec) = geometry(vol)?;
    let r = read_at(vol, mft + 2 * rec, rec as usize)?;
    let mut a = usize::from(u16::from_le_bytes([r[0x14], r[0x15]]));
    while a + 8 < r.len() {
        let ty = u32::from_le_bytes(r[a..a + 4].try_into()?);
        let len = u32::from_le_bytes(r[a + 4..a + 8].try_into()?) as usize;
        if ty == 0xffff_ffff || len == 0 {
            break;
        }
        if ty == 0x80 && r[a + 8] == 1 {
            let runs = a + usize::from(u16::from_le_bytes([r[a + 0x20], r[a + 0x21]]));
            let h = r[runs];
            let (ln, lo) = ((h & 0xf) as usize, (h >> 4) as usize);
            let mut lcn = 0u64;
            for i in 0..lo {
                lcn |= u64::from(r[runs + 1 + ln + i]) << (8 * i);
            }
            return Ok(lcn * cluster);
        }
        a += len;
    }
    bail!("no non-resident $DATA in $LogFile's record")
}

/// Set FILE_ATTRIBUTE_ENCRYPTED in the `$STANDARD_INFORMATION` of `path` (ntfs-3g refuses to
/// set it). The MFT record number comes from ntfs-3g's inode number; the record must lie in the
/// MFT's first run (true for the small fixture volumes, and checked by reading it back).
fn set_encrypted(vol: &Path, path: &str) -> Result<()> {
    let mount = crate::NtfsMount::new(vol, "ro")?;
    let ino = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(mount.path().join(path))
            .with_context(|| format!("stat {path}"))?
            .ino()
    };
    mount.unmount()?;
    let (_, mft, rec) = geometry(vol)?;
    let at = mft + ino * rec;
    let r = read_at(vol, at, 512)?;
    if &r[0..4] != b"FILE" {
        bail!("record {ino} of {path} is not at {at:#x}");
    }
    let a = usize::from(u16::from_le_bytes([r[0x14], r[0x15]]));
    if u32::from_le_bytes(r[a..a + 4].try_into()?) != 0x10 {
        bail!("first attribute of record {ino} is not $STANDARD_INFORMATION");
    }
    let content = a + usize::from(u16::from_le_bytes([r[a + 0x14], r[a + 0x15]]));
    let fa = content + 0x20;
    if fa + 4 > 508 {
        bail!("file attributes of record {ino} cross the first sector's update-sequence slot");
    }
    let mut v = u32::from_le_bytes(r[fa..fa + 4].try_into()?);
    v |= 0x4000;
    write_at(vol, at + fa as u64, &v.to_le_bytes())
}

/// A dirty primary (`stale` with seq1 = seq2 + 1) and a new-format `.LOG1` whose one HvLE
/// entry holds every page of `current`: replaying it yields `current`'s hive bins.
///
/// # Errors
/// When the hives are malformed.
pub fn dirty_with_log(stale: &[u8], current: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let cur_bb = &current[..512];
    let seq = u32::from_le_bytes(cur_bb[4..8].try_into()?)
        .max(u32::from_le_bytes(stale[4..8].try_into()?))
        + 1;
    let mut primary = stale.to_vec();
    primary[4..8].copy_from_slice(&(seq + 1).to_le_bytes());
    primary[8..12].copy_from_slice(&seq.to_le_bytes());
    let c = reseal_hive::base_block::checksum(&primary[..512]);
    primary[508..512].copy_from_slice(&c.to_le_bytes());
    // Log base block: the current base block, file type 6 (new log), seq1 = seq2 = seq.
    let mut log = current[..512].to_vec();
    log[4..8].copy_from_slice(&seq.to_le_bytes());
    log[8..12].copy_from_slice(&seq.to_le_bytes());
    log[28..32].copy_from_slice(&6u32.to_le_bytes());
    let c = reseal_hive::base_block::checksum(&log);
    log[508..512].copy_from_slice(&c.to_le_bytes());
    let hbins = &current[4096..];
    let hbins_size = u32::from_le_bytes(current[40..44].try_into()?) as usize;
    let hbins = &hbins[..hbins_size];
    let pages = hbins_size / 4096;
    let mut body = Vec::new();
    for i in 0..pages {
        body.extend_from_slice(&((i * 4096) as u32).to_le_bytes());
        body.extend_from_slice(&4096u32.to_le_bytes());
    }
    // Header (40 bytes), dirty-page references, then the pages right after them.
    let mut entry = vec![0u8; 40];
    entry.extend_from_slice(&body);
    entry.extend_from_slice(hbins);
    while entry.len() & 511 != 0 {
        entry.push(0);
    }
    let size = entry.len() as u32;
    entry[0..4].copy_from_slice(b"HvLE");
    entry[4..8].copy_from_slice(&size.to_le_bytes());
    entry[12..16].copy_from_slice(&seq.to_le_bytes());
    entry[16..20].copy_from_slice(&(hbins_size as u32).to_le_bytes());
    entry[20..24].copy_from_slice(&(pages as u32).to_le_bytes());
    let h1 = reseal_hive::marvin32(&entry[40..], 0x82EF_4D88_7A4E_55C5);
    entry[24..32].copy_from_slice(&h1.to_le_bytes());
    let h2 = reseal_hive::marvin32(&entry[..32], 0x82EF_4D88_7A4E_55C5);
    entry[32..40].copy_from_slice(&h2.to_le_bytes());
    log.extend_from_slice(&entry);
    Ok((primary, log))
}

/// Convert a raw image with qemu-img: `fmt` is `vpc` (VHD, dynamic), `vpc-fixed`, `vhdx`.
///
/// # Errors
/// When qemu-img fails.
pub fn convert(raw: &Path, fmt: &str, out: &Path) -> Result<()> {
    crate::require_tool("qemu-img");
    let mut c = Command::new("qemu-img");
    c.args(["convert", "-f", "raw", "-O"]);
    match fmt {
        "vpc" => c.arg("vpc"),
        "vpc-fixed" => c.args(["vpc", "-o", "subformat=fixed,force_size=on"]),
        "vhdx" => c.arg("vhdx"),
        other => bail!("unknown container {other}"),
    };
    run(c.arg(raw).arg(out))?;
    Ok(())
}

/// The named fixture variants.
pub fn variants() -> Vec<(&'static str, WindowsSpec)> {
    let base = WindowsSpec::default;
    vec![
        ("win-gpt", base()),
        (
            "win-mbr",
            WindowsSpec {
                label: "dos".into(),
                computer_name: "WIN-MBR".into(),
                dns_hostname: "win-mbr".into(),
                current_control_set: 2,
                machine_sid: "S-1-5-21-10-20-4294967295".into(),
                ..base()
            },
        ),
        (
            "win-domain",
            WindowsSpec {
                domain: Some(DomainSpec::default()),
                computer_name: "WS-0042".into(),
                ..base()
            },
        ),
        (
            "win-dirty-volume",
            WindowsSpec {
                volume_dirty: true,
                ..base()
            },
        ),
        (
            "win-hibernated",
            WindowsSpec {
                hibernated: true,
                ..base()
            },
        ),
        (
            "win-fast-startup",
            WindowsSpec {
                fast_startup: true,
                ..base()
            },
        ),
        (
            "win-bitlocker",
            WindowsSpec {
                bitlocker_partition: true,
                ..base()
            },
        ),
        (
            "win-dirty-hive",
            WindowsSpec {
                dirty_hive: Some("SYSTEM".into()),
                txr_pending: true,
                efs_files: vec!["Users/alice/Documents/secret.efs".into()],
                ..base()
            },
        ),
    ]
}

/// Build every variant as `<name>.raw` into `out_dir`, plus `win-gpt.vhd` and `win-gpt.vhdx`.
/// Returns the paths written.
///
/// # Errors
/// When a build fails.
pub fn build_all(out_dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir)?;
    let mut out = Vec::new();
    for (name, spec) in variants() {
        let p = out_dir.join(format!("{name}.raw"));
        spec.build(&p).with_context(|| format!("building {name}"))?;
        out.push(p);
    }
    let raw = out_dir.join("win-gpt.raw");
    for (fmt, ext) in [("vpc", "vhd"), ("vhdx", "vhdx")] {
        let p = out_dir.join(format!("win-gpt.{ext}"));
        convert(&raw, fmt, &p)?;
        out.push(p);
    }
    Ok(out)
}
