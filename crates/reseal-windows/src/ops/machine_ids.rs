//! `machine-ids`: the per-machine identifiers other than the SID and the name. Every place and
//! its source is in docs/OPERATIONS.md; in short:
//!
//! * SOFTWARE `Microsoft\Cryptography` `MachineGuid`: a new random GUID (lower case, as
//!   Windows writes it; Sysprep re-makes it in specialize, `capisp.dll,CryptoSysPrep_Specialize`)
//!   and every `ProgramData\Microsoft\Crypto\RSA\MachineKeys\<hash>_<MachineGuid>` file renamed
//!   to the new suffix ([`rename_machine_keys`]), so the machine keys stay found.
//! * SOFTWARE `Microsoft\Windows\CurrentVersion\WindowsUpdate` `SusClientId`,
//!   `SusClientIdValidation`, `PingID` removed (the Windows Update agent makes new ones;
//!   `AccountDomainSid` is a SID string and follows `machine-sid`).
//! * SOFTWARE `Microsoft\SQMClient` `MachineId` and `Microsoft\Windows Advanced Threat
//!   Protection` `senseGuid` removed, as Sysprep's generalize does.
//! * SYSTEM `ControlSet00N\Services\Tcpip6\Parameters` `Dhcpv6DUID` removed in every control
//!   set (Windows makes a new DUID).
//! * SYSTEM `ControlSet00N\Services\LanmanServer\Parameters` `Guid` (16 bytes): new random.
//! * SOFTWARE `Classes\CID\<GUID>` and `Classes\CID.Local\<GUID>` whose `Description` default
//!   value is one of MSDTC's (`MSDTC`, `MSDTCUIS`, `MSDTCXATM`, `MSDTCTIPGW`, [MS-CMOM]
//!   2.2.3.5): renamed to a new random GUID each.

use reseal_disk::Device;

use super::{
    config_hive, control_sets, delete_value, hive_err, is_guid_text, random_bytes, random_guid,
    random_guid_like, read_value, rename_key, replace_value, subkey_names, Log, Operation,
};
use crate::generalize::{Change, Target};
use crate::warning::{Warning, WarningCode};
use crate::Result;

const OP: Operation = Operation::MachineIds;

/// Where the machine keys live.
pub(crate) const MACHINE_KEYS: &str = "ProgramData/Microsoft/Crypto/RSA/MachineKeys";

/// The MSDTC contact-identifier descriptions of [MS-CMOM] 2.2.3.5.
const MSDTC_DESCRIPTIONS: [&str; 4] = ["MSDTC", "MSDTCUIS", "MSDTCXATM", "MSDTCTIPGW"];

/// The MachineGuid change made in the hives, for the file renames that follow.
#[derive(Debug, Clone, Default)]
pub(crate) struct GuidChange {
    pub old: Option<String>,
    pub new: Option<String>,
}

fn utf16z(s: &str) -> Vec<u8> {
    reseal_hive::key_value::encode_sz(s)
}

fn sz_text(data: &[u8]) -> String {
    super::shown(1, data)
}

/// The hive part of `machine-ids`.
pub(crate) fn apply_hives(targets: &mut [Target], log: &mut Log) -> Result<GuidChange> {
    let mut guid = GuidChange::default();
    if let Some(t) = config_hive(targets, "SOFTWARE") {
        let crypto = "Microsoft\\Cryptography";
        if read_value(t, crypto, "MachineGuid")?.is_some() {
            let new = super::guid_text(&random_guid("MachineGuid")?);
            if let Some(old) = replace_value(t, OP, crypto, "MachineGuid", &utf16z(&new), log)? {
                guid.old = Some(sz_text(&old));
                guid.new = Some(new);
            }
        }
        let wu = "Microsoft\\Windows\\CurrentVersion\\WindowsUpdate";
        for v in ["SusClientId", "SusClientIdValidation", "PingID"] {
            delete_value(t, OP, wu, v, log)?;
        }
        delete_value(t, OP, "Microsoft\\SQMClient", "MachineId", log)?;
        delete_value(
            t,
            OP,
            "Microsoft\\Windows Advanced Threat Protection",
            "senseGuid",
            log,
        )?;
        for root in ["Classes\\CID", "Classes\\CID.Local"] {
            let names = subkey_names(&t.hive, root).map_err(|s| hive_err(t, s))?;
            for n in names.into_iter().filter(|n| is_guid_text(n)) {
                let key = format!("{root}\\{n}");
                let desc = read_value(t, &format!("{key}\\Description"), "")?
                    .map(|(_, d)| sz_text(&d))
                    .unwrap_or_default();
                if MSDTC_DESCRIPTIONS
                    .iter()
                    .any(|d| d.eq_ignore_ascii_case(desc.trim()))
                {
                    let new = random_guid_like(&n, "MSDTC CID")?;
                    rename_key(t, OP, &key, &new, log)?;
                }
            }
        }
    }
    if let Some(t) = config_hive(targets, "SYSTEM") {
        // Control sets that held one GUID get one new GUID (they are copies of each other).
        let mut renewed: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for cs in control_sets(t)? {
            delete_value(
                t,
                OP,
                &format!("{cs}\\Services\\Tcpip6\\Parameters"),
                "Dhcpv6DUID",
                log,
            )?;
            let lanman = format!("{cs}\\Services\\LanmanServer\\Parameters");
            if let Some((_, old)) = read_value(t, &lanman, "Guid")? {
                let known = renewed
                    .iter()
                    .find(|(o, _)| *o == old)
                    .map(|(_, n)| n.clone());
                let new = if let Some(n) = known {
                    n
                } else if old.len() == 16 {
                    random_guid("LanmanServer Guid")?.to_vec()
                } else {
                    log.warnings.push(
                        Warning::new(
                            WarningCode::UnexpectedValue,
                            format!(
                                "/{}: {lanman} [Guid] has {} bytes, not 16: replaced by 16 random \
                                 bytes",
                                t.path,
                                old.len()
                            ),
                        )
                        .at(format!("/{}: {lanman}", t.path)),
                    );
                    random_bytes::<16>("LanmanServer Guid")?.to_vec()
                };
                replace_value(t, OP, &lanman, "Guid", &new, log)?;
                renewed.push((old, new));
            }
        }
    }
    Ok(guid)
}

/// Rename every `MachineKeys\<hash>_<old>` to `<hash>_<new>` (the same key, found under the new
/// MachineGuid).
pub(crate) fn rename_machine_keys<D: Device>(
    vol: &mut reseal_ntfs::Volume<D>,
    partition: u32,
    guid: &GuidChange,
    log: &mut Log,
) -> Result<()> {
    let (Some(old), Some(new)) = (&guid.old, &guid.new) else {
        return Ok(());
    };
    let ents = match vol.read_dir(MACHINE_KEYS) {
        Ok(e) => e,
        Err(reseal_ntfs::Error::NotFound { .. }) => return Ok(()),
        Err(e) => {
            // A new MachineGuid without renamed key files breaks every machine key: refuse
            // (nothing is written; the caller discards the journal).
            return Err(crate::Error::Invalid {
                what: "machine keys",
                reason: format!(
                    "/{MACHINE_KEYS}: not readable ({e}); the key files could not follow a new \
                     MachineGuid (run without this operation: --operations -machine-ids)"
                ),
            });
        }
    };
    let suffix = format!("_{}", old.to_ascii_lowercase());
    for e in ents.into_iter().filter(|e| !e.is_dir) {
        let lower = e.name.to_ascii_lowercase();
        let Some(hash) = lower.strip_suffix(&suffix) else {
            continue;
        };
        let hash = &e.name[..hash.len()];
        let from = format!("{MACHINE_KEYS}/{}", e.name);
        let to = format!("{MACHINE_KEYS}/{hash}_{new}");
        vol.rename(&from, &to)
            .map_err(|err| crate::generalize::ntfs_err(partition, &from, err))?;
        log.counts.files_renamed += 1;
        log.changes.push(Change::FileMoved {
            operation: OP,
            old: format!("/{from}"),
            new: format!("/{to}"),
        });
    }
    Ok(())
}
