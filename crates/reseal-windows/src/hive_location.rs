//! Where a hive named as users name it lives inside a disk image: `SYSTEM` (and the other
//! hives of `Windows\System32\config`), a path inside the Windows volume, or a local user's
//! name (that user's `NTUSER.DAT`, found through the SAM and ProfileList).
//!
//! Finding the Windows volume is a cheap look (an NTFS volume holding
//! `Windows\System32\config`); only a user name needs full discovery.

use reseal_disk::partition::{PartitionTable, Slice};
use reseal_disk::probe::{probe, FsInfo};
use reseal_disk::{Device, Image};

use crate::{Error, Result};

/// The hives of `Windows\System32\config` that can be named alone (`IMAGE:SYSTEM`).
pub const CONFIG_HIVES: [&str; 6] = [
    "SYSTEM",
    "SOFTWARE",
    "SAM",
    "SECURITY",
    "DEFAULT",
    "COMPONENTS",
];

/// The hive files Windows loads under `HKEY_LOCAL_MACHINE\<name>`, by file name (`BCD` is the
/// boot store's `BCD00000000`, loaded from the boot partition; the others live in
/// `Windows\System32\config`).
pub const HKLM_HIVES: [&str; 9] = [
    "SYSTEM",
    "SOFTWARE",
    "SAM",
    "SECURITY",
    "COMPONENTS",
    "BCD",
    "DRIVERS",
    "ELAM",
    "BBI",
];

/// A root key of the registry as Windows shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    /// `HKEY_LOCAL_MACHINE` (`HKLM`).
    LocalMachine,
    /// `HKEY_CURRENT_USER` (`HKCU`).
    CurrentUser,
    /// `HKEY_USERS` (`HKU`).
    Users,
}

impl Root {
    /// The long name (`HKEY_LOCAL_MACHINE`).
    pub fn name(self) -> &'static str {
        match self {
            Root::LocalMachine => "HKEY_LOCAL_MACHINE",
            Root::CurrentUser => "HKEY_CURRENT_USER",
            Root::Users => "HKEY_USERS",
        }
    }
}

/// Where Windows mounts a hive file, from its file name: the root and the key under it
/// (`SYSTEM` → `HKEY_LOCAL_MACHINE\SYSTEM`, `NTUSER.DAT` → `HKEY_CURRENT_USER`,
/// `UsrClass.dat` → `HKEY_CURRENT_USER\Software\Classes`, `DEFAULT` → `HKEY_USERS\.DEFAULT`).
/// `None` for a name Windows does not mount by itself.
pub fn mount_of(file_name: &str) -> Option<(Root, String)> {
    let up = file_name.to_ascii_uppercase();
    Some(match up.as_str() {
        "NTUSER.DAT" => (Root::CurrentUser, String::new()),
        "USRCLASS.DAT" => (Root::CurrentUser, "Software\\Classes".into()),
        "DEFAULT" => (Root::Users, ".DEFAULT".into()),
        _ if HKLM_HIVES.contains(&up.as_str()) => (Root::LocalMachine, up),
        _ => return None,
    })
}

/// Where a hive is: the partition of its volume and its path there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HiveLocation {
    /// Partition number of the Windows volume (0: no partition table).
    pub partition: u32,
    /// Path of the hive inside the volume, `/`-separated, from the root
    /// (`/Windows/System32/config/SYSTEM`).
    pub path: String,
}

fn invalid(reason: String) -> Error {
    Error::Invalid {
        what: "hive name",
        reason,
    }
}

/// The partitions (0: no partition table) whose NTFS volume holds `Windows\System32\config`.
///
/// # Errors
/// A partition table that cannot be read. Volumes that are not NTFS or cannot be opened are
/// not Windows volumes, not errors.
pub fn windows_partitions(img: &mut Image) -> Result<Vec<u32>> {
    let table = PartitionTable::read(&*img)?;
    let candidates: Vec<(u32, u64, u64)> = if table.partitions.is_empty() {
        vec![(0, 0, img.len())]
    } else {
        table
            .volumes()
            .map(|p| (p.number, p.start, p.len))
            .collect()
    };
    let mut found = Vec::new();
    for (number, start, len) in candidates {
        let Ok(slice) = Slice::new(&mut *img, start, len) else {
            continue;
        };
        if !matches!(probe(&slice), Ok(FsInfo::Ntfs(_))) {
            continue;
        }
        if let Ok(mut vol) = reseal_ntfs::browse::Volume::open(slice) {
            if vol.exists("/Windows/System32/config").unwrap_or(false) {
                found.push(number);
            }
        }
    }
    Ok(found)
}

/// The one Windows partition of `img`.
///
/// # Errors
/// No Windows volume, or more than one (choosing is not supported).
pub fn windows_partition(img: &mut Image) -> Result<u32> {
    match windows_partitions(img)?.as_slice() {
        [one] => Ok(*one),
        [] => Err(invalid("the image holds no Windows install".into())),
        many => Err(invalid(format!(
            "the image holds {} Windows installs (partitions {}); choosing one is not supported yet",
            many.len(),
            many.iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Locate the hive `hive` (a [`CONFIG_HIVES`] name in any case, a path with `/` or `\`, or a
/// local user's name) in the Windows install of `img`.
///
/// # Errors
/// No single Windows install; a name that is none of the three (the message lists the
/// well-known names and the local users); a user without a SID (the machine SID is unknown),
/// without a ProfileList entry, or whose profile is not on the Windows volume.
pub fn locate_hive(img: &mut Image, hive: &str) -> Result<HiveLocation> {
    let partition = windows_partition(img)?;
    let upper = hive.to_ascii_uppercase();
    if CONFIG_HIVES.contains(&upper.as_str()) {
        return Ok(HiveLocation {
            partition,
            path: format!("/Windows/System32/config/{upper}"),
        });
    }
    if hive.contains(['/', '\\']) {
        let path = format!(
            "/{}",
            hive.trim_start_matches(['/', '\\']).replace('\\', "/")
        );
        return Ok(HiveLocation { partition, path });
    }
    let installs = crate::discover(img)?;
    let install = installs
        .iter()
        .find(|i| i.partition == partition)
        .ok_or(Error::NotWindows { partition })?;
    let user = install
        .users
        .iter()
        .find(|u| u.name.eq_ignore_ascii_case(hive))
        .ok_or_else(|| {
            invalid(format!(
                "{hive:?} is not a well-known hive ({}), a path, or a local user ({})",
                CONFIG_HIVES.join(", "),
                install
                    .users
                    .iter()
                    .map(|u| u.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
    let sid = user.sid.clone().ok_or_else(|| {
        invalid(format!(
            "user {}: the machine SID is unknown, so the user's SID is too",
            user.name
        ))
    })?;
    let profile = install
        .profiles
        .iter()
        .find(|p| p.sid.eq_ignore_ascii_case(&sid))
        .ok_or_else(|| {
            invalid(format!(
                "user {} ({sid}) has no profile in ProfileList",
                user.name
            ))
        })?;
    let folder = profile.folder.clone().ok_or_else(|| {
        invalid(format!(
            "the profile of {} is not on the Windows volume",
            user.name
        ))
    })?;
    Ok(HiveLocation {
        partition,
        path: format!("{}/NTUSER.DAT", folder.trim_end_matches('/')),
    })
}
