//! `rdp-certificate`: the Remote Desktop listener's self-signed certificate carries the old
//! computer name and one private key shared by every clone. Removed (Windows makes a new one
//! when the Remote Desktop service starts and finds none):
//!
//! * SOFTWARE `Microsoft\SystemCertificates\Remote Desktop\Certificates\<thumbprint>` (the
//!   `LocalMachine\Remote Desktop` store), every certificate key;
//! * its private key, `ProgramData\Microsoft\Crypto\RSA\MachineKeys\
//!   f686aace6942fb7f7ceb231212eef4a4_<MachineGuid>` (the key container of the RDP listener),
//!   zeroed then deleted;
//! * SYSTEM `ControlSet00N\Control\Terminal Server\WinStations\RDP-Tcp`
//!   `SSLCertificateSHA1Hash` (the binding to the certificate), in every control set.

use reseal_disk::Device;

use super::machine_ids::MACHINE_KEYS;
use super::Operation;
use super::{config_hive, control_sets, delete_key, delete_value, hive_err, subkey_names, Log};
use crate::generalize::Target;
use crate::warning::{Warning, WarningCode};
use crate::Result;

const OP: Operation = Operation::RdpCertificate;

/// The MD5 part of the RDP listener's key-container file name.
pub(crate) const RDP_KEY_HASH: &str = "f686aace6942fb7f7ceb231212eef4a4";

/// The hive part.
pub(crate) fn apply_hives(targets: &mut [Target], log: &mut Log) -> Result<()> {
    if let Some(t) = config_hive(targets, "SOFTWARE") {
        let store = "Microsoft\\SystemCertificates\\Remote Desktop\\Certificates";
        let names = subkey_names(&t.hive, store).map_err(|s| hive_err(t, s))?;
        for n in names {
            delete_key(t, OP, &format!("{store}\\{n}"), log)?;
        }
    }
    if let Some(t) = config_hive(targets, "SYSTEM") {
        for cs in control_sets(t)? {
            delete_value(
                t,
                OP,
                &format!("{cs}\\Control\\Terminal Server\\WinStations\\RDP-Tcp"),
                "SSLCertificateSHA1Hash",
                log,
            )?;
        }
    }
    Ok(())
}

/// The key file(s) of the RDP listener, zeroed and deleted.
pub(crate) fn apply_files<D: Device>(
    vol: &mut reseal_ntfs::Volume<D>,
    partition: u32,
    log: &mut Log,
) -> Result<()> {
    let ents = match vol.read_dir(MACHINE_KEYS) {
        Ok(e) => e,
        Err(reseal_ntfs::Error::NotFound { .. }) => return Ok(()),
        Err(e) => {
            log.warnings.push(
                Warning::new(
                    WarningCode::Unreadable,
                    format!("/{MACHINE_KEYS}: not readable ({e}); the RDP key file is not deleted"),
                )
                .at(format!("/{MACHINE_KEYS}")),
            );
            return Ok(());
        }
    };
    let prefix = format!("{RDP_KEY_HASH}_");
    for e in ents {
        if !e.is_dir && e.name.to_ascii_lowercase().starts_with(&prefix) {
            let p = format!("{MACHINE_KEYS}/{}", e.name);
            super::cleanup::wipe_and_remove(vol, partition, OP, &p, log)?;
        }
    }
    Ok(())
}
