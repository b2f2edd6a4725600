//! The named operations of [`crate::generalize`] (the model of virt-sysprep's `--operations`):
//! each has a name, a one-line description, whether it runs by default and the report section
//! its changes appear under. [`Operations::parse`] reads the `a,b,-c` list of the CLI.
//!
//! The code of each operation lives in its own module: [`machine_ids`], [`computer_name`],
//! [`rdp`] and [`cleanup`] (event logs, swap files, SSH host keys, setup logs, restore points). The machine SID
//! rewrite itself stays in `crate::generalize` (its `hives` and `volume` modules).
//! docs/OPERATIONS.md lists what each one changes and the sources for it.

pub(crate) mod cleanup;
pub(crate) mod computer_name;
pub(crate) mod machine_ids;
pub mod provision;
pub(crate) mod rdp;

use std::collections::BTreeSet;

use reseal_hive::Hive;
use serde::{Deserialize, Serialize};

use crate::generalize::{Change, Counts, Target};
use crate::{Error, Result};

/// One named operation of `generalize`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Operation {
    /// A new machine (account-domain) SID everywhere.
    MachineSid,
    /// A new computer name (only when one is given).
    ComputerName,
    /// New or removed per-machine identifiers (MachineGuid, WSUS, SQM, MDE, DHCPv6, SMB, MSDTC).
    MachineIds,
    /// The self-signed RDP certificate, its key file and its binding removed.
    RdpCertificate,
    /// OpenSSH server host keys removed.
    SshHostkeys,
    /// Event logs removed.
    EventLogs,
    /// Page, swap and hibernation files removed.
    SwapFiles,
    /// Setup, servicing and error-report logs removed.
    SetupLogs,
    /// System restore points (Volume Shadow Copies) removed.
    RestorePoints,
    /// The OOBE state, answer file, domain join blob and first-boot commands (only when
    /// `--oobe`, `--unattend`, `--djoin-blob` or `--firstboot*` are given).
    Provision,
}

impl Operation {
    /// Every operation, in the order they run and are listed.
    pub const ALL: [Operation; 10] = [
        Operation::MachineSid,
        Operation::ComputerName,
        Operation::MachineIds,
        Operation::RdpCertificate,
        Operation::SshHostkeys,
        Operation::EventLogs,
        Operation::SwapFiles,
        Operation::SetupLogs,
        Operation::RestorePoints,
        Operation::Provision,
    ];

    /// The name used by `--operations`.
    pub fn name(self) -> &'static str {
        match self {
            Operation::MachineSid => "machine-sid",
            Operation::ComputerName => "computer-name",
            Operation::MachineIds => "machine-ids",
            Operation::RdpCertificate => "rdp-certificate",
            Operation::SshHostkeys => "ssh-hostkeys",
            Operation::EventLogs => "event-logs",
            Operation::SwapFiles => "swap-files",
            Operation::SetupLogs => "setup-logs",
            Operation::RestorePoints => "restore-points",
            Operation::Provision => "provision",
        }
    }

    /// One line saying what it does.
    pub fn description(self) -> &'static str {
        match self {
            Operation::MachineSid => {
                "new machine SID in every hive, NTFS descriptor, $Quota, task and SID-named file"
            }
            Operation::ComputerName => {
                "new computer name (ComputerName, Tcpip Hostname, LSA, Winlogon DefaultDomainName); \
                 only when a name is given"
            }
            Operation::MachineIds => {
                "new MachineGuid (MachineKeys renamed), SMB server GUID and MSDTC CIDs; WSUS, SQM, \
                 Defender for Endpoint and DHCPv6 DUID ids removed"
            }
            Operation::RdpCertificate => {
                "remove the self-signed RDP certificate, its key file and SSLCertificateSHA1Hash"
            }
            Operation::SshHostkeys => "remove OpenSSH host keys (ProgramData\\ssh\\ssh_host_*)",
            Operation::EventLogs => "remove event logs (Windows\\System32\\winevt\\Logs\\*.evtx)",
            Operation::SwapFiles => "remove pagefile.sys, swapfile.sys and hiberfil.sys",
            Operation::SetupLogs => {
                "remove the contents of Windows\\Panther, Windows\\Logs and the WER report archive"
            }
            Operation::RestorePoints => {
                "remove system restore points (Volume Shadow Copy catalog and stores)"
            }
            Operation::Provision => {
                "OOBE state (--oobe), answer file (--unattend, --djoin-blob) and first-boot \
                 commands (--firstboot*); only when those are given"
            }
        }
    }

    /// Whether it runs when `--operations` is not given (all do; `computer-name` only does
    /// anything when a name is given).
    pub fn default_on(self) -> bool {
        true
    }

    /// Title of its report section.
    pub fn section(self) -> &'static str {
        match self {
            Operation::MachineSid => "machine SID",
            Operation::ComputerName => "computer name",
            Operation::MachineIds => "machine identifiers",
            Operation::RdpCertificate => "RDP certificate",
            Operation::SshHostkeys => "SSH host keys",
            Operation::EventLogs => "event logs",
            Operation::SwapFiles => "swap files",
            Operation::SetupLogs => "setup logs",
            Operation::RestorePoints => "restore points",
            Operation::Provision => "provisioning",
        }
    }

    /// The operation called `name` (ASCII case-insensitive).
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL
            .into_iter()
            .find(|o| o.name().eq_ignore_ascii_case(name))
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operations(BTreeSet<Operation>);

impl Default for Operations {
    fn default() -> Self {
        Operations::defaults()
    }
}

impl Operations {
    /// The operations that run by default.
    pub fn defaults() -> Operations {
        Operations(
            Operation::ALL
                .into_iter()
                .filter(|o| o.default_on())
                .collect(),
        )
    }

    /// No operation.
    pub fn none() -> Operations {
        Operations(BTreeSet::new())
    }

    /// Parse a comma list as virt-sysprep does: `a,b` runs only `a` and `b`; `-c` removes `c`;
    /// a list of removals only starts from the defaults (`-machine-sid` = all defaults but the
    /// SID change); `defaults` adds the defaults, `all` every operation.
    ///
    /// # Errors
    /// [`Error::Invalid`] for an unknown name (the message lists the valid ones) or an empty
    /// list.
    pub fn parse(list: &str) -> Result<Operations> {
        let items: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return Err(Error::Invalid {
                what: "--operations",
                reason: format!("empty list; valid operations: {}", valid_names()),
            });
        }
        let only_removals = items.iter().all(|s| s.starts_with('-'));
        let mut set = if only_removals {
            Operations::defaults().0
        } else {
            BTreeSet::new()
        };
        for item in items {
            let (remove, name) = match item.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, item.strip_prefix('+').unwrap_or(item)),
            };
            let ops: Vec<Operation> = if name.eq_ignore_ascii_case("defaults") {
                Operations::defaults().0.into_iter().collect()
            } else if name.eq_ignore_ascii_case("all") {
                Operation::ALL.to_vec()
            } else {
                vec![Operation::from_name(name).ok_or_else(|| Error::Invalid {
                    what: "--operations",
                    reason: format!(
                        "unknown operation {name:?}; valid operations: {}",
                        valid_names()
                    ),
                })?]
            };
            for o in ops {
                if remove {
                    set.remove(&o);
                } else {
                    set.insert(o);
                }
            }
        }
        Ok(Operations(set))
    }

    /// Is `op` in the set?
    pub fn contains(&self, op: Operation) -> bool {
        self.0.contains(&op)
    }

    /// Add `op`.
    pub fn insert(&mut self, op: Operation) {
        self.0.insert(op);
    }

    /// Remove `op`.
    pub fn remove(&mut self, op: Operation) {
        self.0.remove(&op);
    }

    /// The operations, in [`Operation::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = Operation> + '_ {
        self.0.iter().copied()
    }
}

impl Change {
    /// The operation the change belongs to (`None` for the hive write-backs and log
    /// invalidations every hive edit needs).
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Change::HiveDescriptor { .. }
            | Change::KeyRenamed { .. }
            | Change::Value { .. }
            | Change::ClassName { .. }
            | Change::NtfsDescriptor { .. }
            | Change::NtfsFileDescriptor { .. }
            | Change::Quota { .. }
            | Change::FileRenamed { .. }
            | Change::FileRewritten { .. } => Some(Operation::MachineSid),
            Change::ComputerName { .. } => Some(Operation::ComputerName),
            Change::ValueSet { operation, .. }
            | Change::ValueDeleted { operation, .. }
            | Change::KeyDeleted { operation, .. }
            | Change::KeyRenamedBy { operation, .. }
            | Change::FileMoved { operation, .. }
            | Change::FileDeleted { operation, .. }
            | Change::ShadowCopiesCleared { operation, .. }
            | Change::FileWritten { operation, .. }
            | Change::DirCreated { operation, .. } => Some(*operation),
            Change::HiveWritten { .. }
            | Change::LogInvalidated { .. }
            | Change::HiveScrubbed { .. } => None,
        }
    }
}

/// One operation's line in the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationSummary {
    /// The operation.
    pub name: Operation,
    /// Its report section title ([`Operation::section`]).
    pub section: String,
    /// Whether it ran.
    pub enabled: bool,
    /// How many changes it made.
    pub changes: usize,
}

fn valid_names() -> String {
    Operation::ALL
        .iter()
        .map(|o| o.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `n` bytes from the operating system's random source.
pub(crate) fn random_bytes<const N: usize>(what: &'static str) -> Result<[u8; N]> {
    use std::io::Read;
    let mut b = [0u8; N];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::Invalid {
            what,
            reason: format!("reading /dev/urandom: {e}"),
        })?;
    Ok(b)
}

/// A random (version 4, RFC 9562) GUID as 16 bytes in the Windows mixed-endian layout.
pub(crate) fn random_guid(what: &'static str) -> Result<[u8; 16]> {
    let mut b = random_bytes::<16>(what)?;
    // Version 4 in the high nibble of Data3 (little-endian u16 at 6..8), variant 10xx in byte 8.
    b[7] = (b[7] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(b)
}

/// The text form `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx` (lower case) of a Windows GUID.
pub(crate) fn guid_text(b: &[u8; 16]) -> String {
    let d1 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let d2 = u16::from_le_bytes([b[4], b[5]]);
    let d3 = u16::from_le_bytes([b[6], b[7]]);
    let tail: String = b[8..].iter().map(|x| format!("{x:02x}")).collect();
    format!("{d1:08x}-{d2:04x}-{d3:04x}-{}-{}", &tail[..4], &tail[4..])
}

/// A new random GUID in the same text style as `old`: braces kept, upper case kept.
pub(crate) fn random_guid_like(old: &str, what: &'static str) -> Result<String> {
    let g = guid_text(&random_guid(what)?);
    let braces = old.starts_with('{');
    let upper = old.chars().any(|c| c.is_ascii_uppercase());
    let g = if upper { g.to_ascii_uppercase() } else { g };
    Ok(if braces { format!("{{{g}}}") } else { g })
}

/// Does `s` look like a GUID (with or without braces)?
pub(crate) fn is_guid_text(s: &str) -> bool {
    let t = s.trim_start_matches('{').trim_end_matches('}');
    t.len() == 36
        && t.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

/// The recorded changes and warnings an operation adds to.
pub(crate) struct Log<'a> {
    pub changes: &'a mut Vec<Change>,
    pub counts: &'a mut Counts,
    pub warnings: &'a mut Vec<crate::warning::Warning>,
}

/// The config hive called `name` (SYSTEM, SOFTWARE, ...) among `targets`.
pub(crate) fn config_hive<'t>(targets: &'t mut [Target], name: &str) -> Option<&'t mut Target> {
    targets.iter_mut().find(|t| {
        t.path
            .strip_prefix("Windows/System32/config/")
            .is_some_and(|f| f.eq_ignore_ascii_case(name))
    })
}

/// Names of the `ControlSet00N` keys of a SYSTEM hive.
pub(crate) fn control_sets(t: &Target) -> Result<Vec<String>> {
    let e = |s| hive_err(t, s);
    let root = t.hive.root().map_err(e)?;
    let mut out = Vec::new();
    for k in root.subkeys().map_err(e)? {
        let n = k.map_err(e)?.name();
        if n.len() == 13 && n.to_ascii_lowercase().starts_with("controlset") {
            out.push(n);
        }
    }
    Ok(out)
}

pub(crate) fn hive_err(t: &Target, source: reseal_hive::HiveError) -> Error {
    Error::Hive {
        hive: format!("/{}", t.path),
        source,
    }
}

/// How a value's data is shown in the report: the string for string types, else hex.
pub(crate) fn shown(ty: u32, data: &[u8]) -> String {
    if matches!(ty, 1 | 2) && data.len() % 2 == 0 {
        let u: Vec<u16> = data
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .take_while(|&c| c != 0)
            .collect();
        return String::from_utf16_lossy(&u);
    }
    let mut s: String = data.iter().take(64).map(|x| format!("{x:02x}")).collect();
    if data.len() > 64 {
        s.push('…');
    }
    s
}

/// A value as it is now: (type, data), or `None` when the key or the value is absent.
pub(crate) fn read_value(t: &Target, key: &str, value: &str) -> Result<Option<(u32, Vec<u8>)>> {
    let e = |s| hive_err(t, s);
    let k = match t.hive.open_path(key) {
        Ok(k) => k,
        Err(reseal_hive::HiveError::NotFound { .. }) => return Ok(None),
        Err(err) => return Err(e(err)),
    };
    match k.value(value).map_err(e)? {
        Some(v) => Ok(Some((v.data_type(), v.data().map_err(e)?.into_owned()))),
        None => Ok(None),
    }
}

pub(crate) fn writable(t: &mut Target) -> Result<()> {
    let r = t.hive.make_writable();
    r.map_err(|s| hive_err(t, s))
}

/// Delete `key` [`value`] when present, recording it under `op`.
pub(crate) fn delete_value(
    t: &mut Target,
    op: Operation,
    key: &str,
    value: &str,
    log: &mut Log,
) -> Result<()> {
    let Some((ty, old)) = read_value(t, key, value)? else {
        return Ok(());
    };
    writable(t)?;
    let off = t.hive.open_path(key).map_err(|s| hive_err(t, s))?.offset();
    t.hive
        .delete_value(off, value)
        .map_err(|s| hive_err(t, s))?;
    log.counts.identifiers += 1;
    log.changes.push(Change::ValueDeleted {
        operation: op,
        hive: format!("/{}", t.path),
        key: key.to_string(),
        value: value.to_string(),
        old: shown(ty, &old),
    });
    Ok(())
}

/// Replace the data of `key` [`value`] (type kept) when it exists, recording it under `op`.
/// Returns the old data when it was replaced.
pub(crate) fn replace_value(
    t: &mut Target,
    op: Operation,
    key: &str,
    value: &str,
    data: &[u8],
    log: &mut Log,
) -> Result<Option<Vec<u8>>> {
    let Some((ty, old)) = read_value(t, key, value)? else {
        return Ok(None);
    };
    writable(t)?;
    let off = t.hive.open_path(key).map_err(|s| hive_err(t, s))?.offset();
    t.hive
        .set_value(off, value, ty, data)
        .map_err(|s| hive_err(t, s))?;
    log.counts.identifiers += 1;
    log.changes.push(Change::ValueSet {
        operation: op,
        hive: format!("/{}", t.path),
        key: key.to_string(),
        value: value.to_string(),
        old: shown(ty, &old),
        new: shown(ty, data),
    });
    Ok(Some(old))
}

/// Names of the subkeys of `key` (empty when absent).
pub(crate) fn subkey_names(h: &Hive, key: &str) -> reseal_hive::Result<Vec<String>> {
    let k = match h.open_path(key) {
        Ok(k) => k,
        Err(reseal_hive::HiveError::NotFound { .. }) => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for s in k.subkeys()? {
        out.push(s?.name());
    }
    Ok(out)
}

/// Delete `key` with its subtree, recording it under `op`.
pub(crate) fn delete_key(t: &mut Target, op: Operation, key: &str, log: &mut Log) -> Result<()> {
    let off = match t.hive.open_path(key) {
        Ok(k) => k.offset(),
        Err(reseal_hive::HiveError::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(hive_err(t, e)),
    };
    writable(t)?;
    t.hive.delete_key(off, true).map_err(|s| hive_err(t, s))?;
    log.counts.identifiers += 1;
    log.changes.push(Change::KeyDeleted {
        operation: op,
        hive: format!("/{}", t.path),
        key: key.to_string(),
    });
    Ok(())
}

/// Rename `key` to `new` (last component), recording it under `op`.
pub(crate) fn rename_key(
    t: &mut Target,
    op: Operation,
    key: &str,
    new: &str,
    log: &mut Log,
) -> Result<()> {
    let off = t.hive.open_path(key).map_err(|s| hive_err(t, s))?.offset();
    writable(t)?;
    t.hive.rename_key(off, new).map_err(|s| hive_err(t, s))?;
    log.counts.identifiers += 1;
    log.changes.push(Change::KeyRenamedBy {
        operation: op,
        hive: format!("/{}", t.path),
        old: key.to_string(),
        new: new.to_string(),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lists() {
        let all = Operations::defaults();
        assert_eq!(Operations::parse("-machine-sid").unwrap(), {
            let mut s = all.clone();
            s.remove(Operation::MachineSid);
            s
        });
        let s = Operations::parse("machine-ids,event-logs").unwrap();
        assert_eq!(
            s.iter().collect::<Vec<_>>(),
            [Operation::MachineIds, Operation::EventLogs]
        );
        let s = Operations::parse("defaults,-swap-files,-setup-logs").unwrap();
        assert!(!s.contains(Operation::SwapFiles) && s.contains(Operation::MachineSid));
        let e = Operations::parse("machine-sid,bogus")
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"bogus\"") && e.contains("ssh-hostkeys"), "{e}");
        assert!(Operations::parse(" , ").is_err());
    }

    #[test]
    fn guids() {
        let g = guid_text(&random_guid("t").unwrap());
        assert!(is_guid_text(&g), "{g}");
        assert_eq!(&g[14..15], "4");
        let b = random_guid_like("{ABCDEF01-2345-6789-ABCD-EF0123456789}", "t").unwrap();
        assert!(b.starts_with('{') && b.ends_with('}') && b == b.to_ascii_uppercase());
        assert!(is_guid_text(&b));
        assert_eq!(
            guid_text(&[
                0x33, 0x22, 0x11, 0x00, 0x55, 0x44, 0x77, 0x66, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ]),
            "00112233-4455-6677-8899-aabbccddeeff"
        );
    }
}
