//! Apply one `.reg` file to every hive of a Windows install it names, as one change.
//!
//! The semantics are those of `virt-win-reg --merge`: each section's key path is rooted where
//! Windows mounts a hive, and that root chooses the hive file:
//!
//! | `.reg` root | hive file |
//! |---|---|
//! | `HKEY_LOCAL_MACHINE\SYSTEM` (`HKLM\…`), `SOFTWARE`, `SAM`, `SECURITY`, `COMPONENTS`, `DRIVERS`, `ELAM`, `BBI` | `Windows\System32\config\<NAME>` |
//! | `HKEY_CLASSES_ROOT` (`HKCR`) | `SOFTWARE`, below `Classes` |
//! | `HKEY_USERS\.DEFAULT` | `config\DEFAULT` |
//! | `HKEY_USERS\<SID>` | the profile's `NTUSER.DAT` (through ProfileList) |
//! | `HKEY_USERS\<SID>_Classes` | the profile's `AppData\Local\Microsoft\Windows\UsrClass.dat` |
//! | `HKEY_CURRENT_USER` (`HKCU`) | the `NTUSER.DAT` of the user given in [`ImportOptions::user`] |
//!
//! `CurrentControlSet` directly below `HKLM\SYSTEM` is resolved through `Select\Current`, as
//! Windows does at boot.
//!
//! Everything is checked before the first write: every named hive must exist and be clean
//! (a dirty one is refused: replay its logs first), the volume must not be dirty, hibernated
//! or shut down with Fast Startup (unless forced), and every operation is applied in memory.
//! Only then are the touched byte ranges written through the NTFS engine into the image's
//! journal, with the logs of every written hive truncated (as [`crate::generalize`] does), so
//! one commit (one undo file) covers every hive; on error the caller discards the journal.

use reseal_disk::partition::Slice;
use reseal_disk::Image;
use reseal_hive::reg::{ImportStats, RegOp};
use reseal_hive::Hive;
use reseal_ntfs::state::VolumeState;
use serde::Serialize;

use crate::generalize::{invalidate_logs, ntfs_err, volume_refusal};
use crate::hive_location::HKLM_HIVES;
use crate::{scan, Error, Result, WindowsInstall};

/// Options of [`import`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct ImportOptions {
    /// Whose `NTUSER.DAT` `HKEY_CURRENT_USER` means: a local account's name or a SID.
    pub user: Option<String>,
    /// Partition of the Windows install (default: the only one).
    pub partition: Option<u32>,
    /// Write even when the volume is dirty, hibernated or was shut down with Fast Startup.
    pub force_volume_state: bool,
}

impl ImportOptions {
    /// Options with `HKEY_CURRENT_USER` meaning `user`'s hive.
    pub fn new(
        user: Option<String>,
        partition: Option<u32>,
        force_volume_state: bool,
    ) -> ImportOptions {
        ImportOptions {
            user,
            partition,
            force_volume_state,
        }
    }
}

/// What [`import`] did to one hive.
#[derive(Debug, Clone, Serialize)]
pub struct HiveImport {
    /// Where Windows mounts the hive (`HKEY_LOCAL_MACHINE\SOFTWARE`, `HKEY_USERS\S-1-…`).
    pub mount: String,
    /// Volume path of the hive file (`/Windows/System32/config/SOFTWARE`).
    pub path: String,
    /// Key sections processed.
    pub keys: usize,
    /// Keys deleted.
    pub keys_deleted: usize,
    /// Values set.
    pub values_set: usize,
    /// Values deleted.
    pub values_deleted: usize,
    /// Hive bytes written (0: the edit changed nothing).
    pub bytes: usize,
    /// Transaction logs truncated beside it.
    pub logs_invalidated: Vec<String>,
}

/// What [`import`] did.
#[derive(Debug, Clone, Serialize)]
pub struct ImportReport {
    /// Partition of the install (0: no partition table).
    pub partition: u32,
    /// One entry per hive the file names, in order of first mention.
    pub hives: Vec<HiveImport>,
    /// Forced refusals and the like.
    pub warnings: Vec<String>,
}

/// Which hive file a root names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HiveRef {
    /// `Windows/System32/config/<NAME>`.
    Config(String),
    /// A profile's `NTUSER.DAT` (`classes`: its `UsrClass.dat`).
    Profile { sid: String, classes: bool },
}

/// The HKLM hives of `Windows\System32\config` a `.reg` file can name (BCD lives on the boot
/// partition).
fn config_hives() -> Vec<&'static str> {
    HKLM_HIVES.into_iter().filter(|h| *h != "BCD").collect()
}

fn invalid(reason: String) -> Error {
    Error::Invalid {
        what: "reg file",
        reason,
    }
}

fn is_any(s: &str, names: &[&str]) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(s))
}

/// The hive a `.reg` key path names, its mount text and the components below the hive's root.
fn locate(path: &str, hkcu: Option<&str>) -> Result<(HiveRef, String, Vec<String>)> {
    let comps: Vec<&str> = path.split('\\').filter(|c| !c.is_empty()).collect();
    let Some(first) = comps.first().copied() else {
        return Err(invalid(format!("key [{path}] names no root key")));
    };
    let rest = |n: usize| {
        comps[n.min(comps.len())..]
            .iter()
            .map(|c| c.to_string())
            .collect()
    };
    if is_any(first, &["HKEY_LOCAL_MACHINE", "HKLM"]) {
        let Some(name) = comps.get(1) else {
            return Err(invalid(format!(
                "key [{path}] names HKEY_LOCAL_MACHINE itself, not a key of a hive"
            )));
        };
        let up = name.to_ascii_uppercase();
        if !config_hives().contains(&up.as_str()) {
            return Err(invalid(format!(
                "key [{path}]: HKEY_LOCAL_MACHINE\\{name} is not a hive file reseal can edit \
                 ({})",
                config_hives().join(", ")
            )));
        }
        return Ok((
            HiveRef::Config(up.clone()),
            format!("HKEY_LOCAL_MACHINE\\{up}"),
            rest(2),
        ));
    }
    if is_any(first, &["HKEY_CLASSES_ROOT", "HKCR"]) {
        let mut r = vec!["Classes".to_string()];
        r.extend(rest(1));
        return Ok((
            HiveRef::Config("SOFTWARE".into()),
            "HKEY_LOCAL_MACHINE\\SOFTWARE".into(),
            r,
        ));
    }
    if is_any(first, &["HKEY_USERS", "HKU"]) {
        let Some(user) = comps.get(1) else {
            return Err(invalid(format!(
                "key [{path}] names HKEY_USERS itself, not a key of a hive"
            )));
        };
        if user.eq_ignore_ascii_case(".DEFAULT") {
            return Ok((
                HiveRef::Config("DEFAULT".into()),
                "HKEY_USERS\\.DEFAULT".into(),
                rest(2),
            ));
        }
        let (sid, classes) = match user.len().checked_sub(8) {
            Some(n) if user.is_char_boundary(n) && user[n..].eq_ignore_ascii_case("_Classes") => {
                (&user[..n], true)
            }
            _ => (&user[..], false),
        };
        if !sid.to_ascii_uppercase().starts_with("S-1-") {
            return Err(invalid(format!(
                "key [{path}]: HKEY_USERS\\{user} is neither .DEFAULT nor a SID"
            )));
        }
        return Ok((
            HiveRef::Profile {
                sid: sid.to_ascii_uppercase(),
                classes,
            },
            format!("HKEY_USERS\\{user}"),
            rest(2),
        ));
    }
    if is_any(first, &["HKEY_CURRENT_USER", "HKCU"]) {
        let Some(sid) = hkcu else {
            return Err(invalid(format!(
                "key [{path}] is under HKEY_CURRENT_USER: say whose hive that is (the CLI's \
                 --user NAME)"
            )));
        };
        return Ok((
            HiveRef::Profile {
                sid: sid.to_ascii_uppercase(),
                classes: false,
            },
            "HKEY_CURRENT_USER".into(),
            rest(1),
        ));
    }
    Err(invalid(format!(
        "key [{path}]: {first} is not a root key reseal maps to a hive (HKEY_LOCAL_MACHINE, \
         HKEY_USERS, HKEY_CURRENT_USER, HKEY_CLASSES_ROOT)"
    )))
}

/// One hive the file names.
struct Planned {
    hive_ref: HiveRef,
    mount: String,
    path: String,
    ops: Vec<RegOp>,
}

/// The volume path of a hive file.
fn hive_path(r: &HiveRef, install: &WindowsInstall) -> Result<String> {
    match r {
        HiveRef::Config(name) => Ok(format!("Windows/System32/config/{name}")),
        HiveRef::Profile { sid, classes } => {
            let p = install
                .profiles
                .iter()
                .find(|p| p.sid.eq_ignore_ascii_case(sid))
                .ok_or_else(|| {
                    invalid(format!(
                        "HKEY_USERS\\{sid}: no profile of that SID in ProfileList (profiles: {})",
                        install
                            .profiles
                            .iter()
                            .map(|p| p.sid.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            let folder = p.folder.as_deref().ok_or_else(|| {
                invalid(format!(
                    "HKEY_USERS\\{sid}: the profile folder is not on this volume"
                ))
            })?;
            let f = folder.trim_matches('/');
            Ok(if *classes {
                format!("{f}/AppData/Local/Microsoft/Windows/UsrClass.dat")
            } else {
                format!("{f}/NTUSER.DAT")
            })
        }
    }
}

/// The SID `user` (a local account's name or a SID) means.
fn user_sid(user: &str, install: &WindowsInstall) -> Result<String> {
    if user.to_ascii_uppercase().starts_with("S-1-") {
        return Ok(user.to_string());
    }
    let u = install
        .users
        .iter()
        .find(|u| u.name.eq_ignore_ascii_case(user))
        .ok_or_else(|| Error::UnknownUser {
            name: user.to_string(),
            known: install.users.iter().map(|u| u.name.clone()).collect(),
        })?;
    u.sid.clone().ok_or_else(|| {
        invalid(format!(
            "the machine SID is unknown, so the SID of user {} is too",
            u.name
        ))
    })
}

/// `CurrentControlSet` as the first component below SYSTEM's root → `ControlSet00N`.
fn resolve_ccs(hive: &Hive, rel: &mut [String], path: &str) -> Result<()> {
    let Some(first) = rel.first_mut() else {
        return Ok(());
    };
    if !first.eq_ignore_ascii_case("CurrentControlSet") {
        return Ok(());
    }
    let current = hive
        .open_path("Select")
        .ok()
        .and_then(|k| k.value("Current").ok().flatten())
        .and_then(|v| v.as_u32().ok().flatten())
        .ok_or_else(|| {
            invalid(format!(
                "key [{path}]: CurrentControlSet needs SYSTEM\\Select\\Current, which is missing"
            ))
        })?;
    *first = format!("ControlSet{current:03}");
    Ok(())
}

/// Apply `ops` (a parsed `.reg` file, [`reseal_hive::reg::parse_reg`]) to the hives of the
/// Windows install in `image` that its key paths name. Every write is staged in `image`'s
/// journal; the caller commits (one undo file for all hives) or discards. Nothing is staged
/// unless every hive exists, is clean and takes every operation.
///
/// # Errors
/// [`Error::Invalid`] (`what: "reg file"`) for a root reseal does not map, a hive not in the
/// image, a dirty hive; [`Error::Refused`] for an unsafe volume state; edit errors as
/// [`Error::Hive`]; [`Error::UnknownUser`] for an unknown `user`.
pub fn import(image: &mut Image, ops: &[RegOp], opts: &ImportOptions) -> Result<ImportReport> {
    let sc = scan(image)?;
    let install = sc
        .into_one_install(opts.partition)
        .map_err(Error::Refused)?;
    let partition = install.partition;
    let hkcu = opts
        .user
        .as_deref()
        .map(|u| user_sid(u, &install))
        .transpose()?;

    // Route every operation to its hive (values go where the last section went).
    let mut plans: Vec<Planned> = Vec::new();
    let mut rels: Vec<Vec<Vec<String>>> = Vec::new();
    let mut current: Option<usize> = None;
    for op in ops {
        let (path, delete) = match op {
            RegOp::Key(p) => (p, false),
            RegOp::DeleteKey(p) => (p, true),
            RegOp::SetValue { key, .. } | RegOp::DeleteValue { key, .. } => {
                let Some(i) = current else {
                    return Err(invalid(format!("value of [{key}] before any key section")));
                };
                plans[i].ops.push(op.clone());
                continue;
            }
        };
        let (r, mount, rel) = locate(path, hkcu.as_deref())?;
        let i = match plans.iter().position(|p| p.hive_ref == r) {
            Some(i) => i,
            None => {
                let hp = hive_path(&r, &install)?;
                plans.push(Planned {
                    hive_ref: r,
                    mount,
                    path: hp,
                    ops: Vec::new(),
                });
                rels.push(Vec::new());
                plans.len() - 1
            }
        };
        rels[i].push(rel);
        // The path is filled in once the hive is read (CurrentControlSet).
        plans[i].ops.push(if delete {
            RegOp::DeleteKey(path.clone())
        } else {
            RegOp::Key(path.clone())
        });
        current = Some(i);
    }

    let (start, len) = crate::partition_window(&*image, partition)?;
    let mut slice = Slice::new(&mut *image, start, len)?;
    let mut warnings = Vec::new();
    let mut hives: Vec<Hive> = Vec::new();
    {
        let mut browse = reseal_ntfs::browse::Volume::open(&mut slice)
            .map_err(|source| Error::Ntfs { partition, source })?;
        let state = VolumeState::from_volume(&mut browse)
            .map_err(|source| Error::Ntfs { partition, source })?;
        if let Some(r) = volume_refusal(&state, partition) {
            if opts.force_volume_state {
                warnings.push(format!("forced: {r}"));
            } else {
                return Err(Error::Refused(r));
            }
        }
        for p in &plans {
            let exists = browse
                .exists(&p.path)
                .map_err(|source| Error::Ntfs { partition, source })?;
            if !exists {
                return Err(invalid(format!(
                    "the file names {} but /{} is not in the image; nothing was written",
                    p.mount, p.path
                )));
            }
            let bytes = browse
                .read_to_vec(&p.path)
                .map_err(|source| Error::Ntfs { partition, source })?;
            let label = format!("/{}", p.path);
            let mut h = Hive::from_bytes(bytes).map_err(|source| Error::Hive {
                hive: label.clone(),
                source,
            })?;
            if h.is_dirty() {
                return Err(invalid(format!(
                    "{label} ({}) is dirty (its sequence numbers differ): replay its logs first \
                     (`reseal reg replay IMAGE:{}`); nothing was written",
                    p.mount, p.path
                )));
            }
            h.make_writable().map_err(|source| Error::Hive {
                hive: label.clone(),
                source,
            })?;
            hives.push(h);
        }
    }

    // Apply in memory.
    let mut report = ImportReport {
        partition,
        hives: Vec::new(),
        warnings,
    };
    for ((p, h), rel) in plans.iter_mut().zip(hives.iter_mut()).zip(rels) {
        let label = format!("/{}", p.path);
        let mut rel = rel.into_iter();
        for op in p.ops.iter_mut() {
            if let RegOp::Key(path) | RegOp::DeleteKey(path) = op {
                let mut r = rel.next().unwrap_or_default();
                if p.hive_ref == HiveRef::Config("SYSTEM".into()) {
                    resolve_ccs(h, &mut r, path)?;
                }
                *path = format!("\\{}", r.join("\\"));
            }
        }
        let st: ImportStats =
            reseal_hive::reg::apply(h, &p.ops, "").map_err(|source| Error::Hive {
                hive: format!("{label} ({})", p.mount),
                source,
            })?;
        report.hives.push(HiveImport {
            mount: p.mount.clone(),
            path: label,
            keys: st.keys,
            keys_deleted: st.keys_deleted,
            values_set: st.values_set,
            values_deleted: st.values_deleted,
            bytes: 0,
            logs_invalidated: Vec::new(),
        });
    }

    // Write, staged in the journal.
    let mut vol =
        reseal_ntfs::Volume::open(&mut slice).map_err(|e| ntfs_err(partition, "open", e))?;
    for ((p, h), out) in plans.iter().zip(hives.iter_mut()).zip(&mut report.hives) {
        if !h.is_modified() {
            continue;
        }
        h.commit().map_err(|source| Error::Hive {
            hive: out.path.clone(),
            source,
        })?;
        let data = h.as_bytes();
        let pieces: Vec<(u64, &[u8])> = h
            .dirty_ranges_within(reseal_hive::WRITE_GAP)
            .into_iter()
            .filter_map(|r| Some((r.start as u64, data.get(r)?)))
            .collect();
        vol.write_ranges(&p.path, &pieces)
            .map_err(|e| ntfs_err(partition, &p.path, e))?;
        out.bytes = pieces.iter().map(|(_, d)| d.len()).sum();
        out.logs_invalidated = invalidate_logs(&mut vol, partition, &p.path)?;
    }
    vol.flush().map_err(|e| ntfs_err(partition, "flush", e))?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_map_to_hives() {
        let (r, m, rel) = locate("HKEY_LOCAL_MACHINE\\Software\\A\\B", None).unwrap();
        assert_eq!(r, HiveRef::Config("SOFTWARE".into()));
        assert_eq!(m, "HKEY_LOCAL_MACHINE\\SOFTWARE");
        assert_eq!(rel, ["A", "B"]);
        let (r, _, rel) = locate("HKCR\\.txt", None).unwrap();
        assert_eq!(r, HiveRef::Config("SOFTWARE".into()));
        assert_eq!(rel, ["Classes", ".txt"]);
        let (r, _, _) = locate("HKU\\S-1-5-21-1-2-3-1001_Classes\\X", None).unwrap();
        assert_eq!(
            r,
            HiveRef::Profile {
                sid: "S-1-5-21-1-2-3-1001".into(),
                classes: true
            }
        );
        let (r, _, rel) = locate("HKEY_USERS\\.DEFAULT", None).unwrap();
        assert_eq!(r, HiveRef::Config("DEFAULT".into()));
        assert!(rel.is_empty());
        assert!(locate("HKCU\\Software", None).is_err());
        assert!(locate("HKLM\\HARDWARE\\X", None).is_err());
        assert!(locate("HKEY_CURRENT_CONFIG\\X", None).is_err());
        let (r, _, _) = locate("HKCU\\Software", Some("S-1-5-21-1-2-3-500")).unwrap();
        assert!(matches!(r, HiveRef::Profile { classes: false, .. }));
    }
}
