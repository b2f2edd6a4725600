//! The hives of [`super::generalize`]: the SID rewrite of one hive in memory
//! ([`rewrite_hive_sids`]), the key walk it uses, the scrub of unused bytes, and what is
//! written beside a hive (its logs invalidated).

use reseal_disk::Device;
use reseal_hive::{CellOffset, Hive};
use reseal_ntfs::browse::Volume as Browse;
use reseal_security::sidmap::SidMap;

use super::report::{Change, Counts};
use super::volume::ntfs_err;
use crate::discover::{open_hive, HiveState};
use crate::warning::{Warning, WarningCode};
use crate::{Error, Refusal, Result, WindowsInstall};

/// One hive to rewrite.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) path: String,
    pub(crate) hive: Hive,
    /// Whole file must be written (recovered from logs).
    whole: bool,
    old_len: u64,
}

pub(super) fn hive_err(hive: &str, source: reseal_hive::HiveError) -> Error {
    Error::Hive {
        hive: hive.to_string(),
        source,
    }
}

fn hex64(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(2 * b.len().min(64) + 3);
    for &x in b.iter().take(64) {
        s.push(char::from(DIGITS[usize::from(x >> 4)]));
        s.push(char::from(DIGITS[usize::from(x & 15)]));
    }
    if b.len() > 64 {
        s.push('…');
    }
    s
}

/// [`rewrite_hive_sids`] on every target with `map` (none: nothing to rewrite, the progress
/// stage still runs), telling the bytes done.
pub(super) fn rewrite_targets(
    targets: &mut [Target],
    map: Option<&SidMap>,
    changes: &mut Vec<Change>,
    counts: &mut Counts,
    warnings: &mut Vec<Warning>,
    tell: &mut dyn FnMut(&'static str, usize, usize),
) -> Result<()> {
    let hive_bytes: usize = targets.iter().map(|t| t.hive.as_bytes().len()).sum();
    let mut done = 0;
    tell("hives", 0, hive_bytes);
    for t in targets.iter_mut() {
        let len = t.hive.as_bytes().len();
        if let Some(map) = map {
            let label = format!("/{}", t.path);
            rewrite_hive_sids(&mut t.hive, &label, map, changes, counts, warnings)?;
        }
        done += len;
        tell("hives", done, hive_bytes);
    }
    Ok(())
}

/// Commit every modified hive in memory and write it back through the NTFS engine: the
/// dirty ranges of a clean hive, the whole file of one recovered from its logs (shortened
/// when it shrank); then its logs are invalidated ([`invalidate_logs`]). An unmodified hive
/// (one recovered from its logs included) stays as it is on disk, logs and all: Windows
/// replays them as before.
pub(super) fn write_hives<D: Device>(
    vol: &mut reseal_ntfs::Volume<D>,
    partition: u32,
    targets: &mut [Target],
    changes: &mut Vec<Change>,
    counts: &mut Counts,
    tell: &mut dyn FnMut(&'static str, usize, usize),
) -> Result<()> {
    let nt = targets.len();
    for (i, t) in targets.iter_mut().enumerate() {
        tell("write-hives", i, nt);
        if !t.hive.is_modified() {
            continue;
        }
        t.hive.commit().map_err(|e| hive_err(&t.path, e))?;
        let data = t.hive.as_bytes();
        let bytes = if t.whole {
            vol.write_at(&t.path, 0, data)
                .map_err(|e| ntfs_err(partition, &t.path, e))?;
            if (data.len() as u64) < t.old_len {
                vol.set_len(&t.path, data.len() as u64)
                    .map_err(|e| ntfs_err(partition, &t.path, e))?;
            }
            data.len()
        } else {
            let pieces: Vec<(u64, &[u8])> = t
                .hive
                .dirty_ranges_within(reseal_hive::WRITE_GAP)
                .into_iter()
                .filter_map(|r| Some((r.start as u64, data.get(r)?)))
                .collect();
            vol.write_ranges(&t.path, &pieces)
                .map_err(|e| ntfs_err(partition, &t.path, e))?;
            pieces.iter().map(|(_, d)| d.len()).sum()
        };
        counts.hives_written += 1;
        changes.push(Change::HiveWritten {
            hive: format!("/{}", t.path),
            bytes,
            old_len: t.old_len,
            new_len: data.len(),
        });
        for path in invalidate_logs(vol, partition, &t.path)? {
            changes.push(Change::LogInvalidated { path });
        }
    }
    Ok(())
}

/// The hives to rewrite, as `(folder, file)` volume paths, and how many of them come first
/// and are required: the system hives of `config` and every profile's `NTUSER.DAT` and
/// `UsrClass.dat`. Best effort after those: the rest of `config` (COMPONENTS, DRIVERS, BBI,
/// ELAM, ...) and the service profiles' `NTUSER.DAT`; a folder that cannot be listed is named
/// in `warnings`.
pub(super) fn hive_paths<D: Device>(
    browse: &mut Browse<D>,
    install: &WindowsInstall,
    warnings: &mut Vec<Warning>,
) -> HivePaths {
    let mut paths: Vec<(String, String)> = crate::HIVE_NAMES
        .iter()
        .map(|n| (CONFIG.to_string(), (*n).to_string()))
        .collect();
    for p in &install.profiles {
        let Some(folder) = &p.folder else { continue };
        let f = folder.trim_matches('/').to_string();
        if p.ntuser_dat {
            paths.push((f.clone(), "NTUSER.DAT".into()));
        }
        if p.usrclass_dat {
            paths.push((
                format!("{f}/AppData/Local/Microsoft/Windows"),
                "UsrClass.dat".into(),
            ));
        }
    }
    let required = paths.len();
    other_config_hives(browse, &mut paths, warnings);
    service_profile_hives(browse, &mut paths, warnings);
    HivePaths { paths, required }
}

/// [`hive_paths`]: the folder and file of each hive; the first `required` must be usable.
pub(super) struct HivePaths {
    paths: Vec<(String, String)>,
    required: usize,
}

const CONFIG: &str = "Windows/System32/config";

/// The files of `config` that look like hives (no extension, at least 4096 bytes) other than
/// the system hives.
fn other_config_hives<D: Device>(
    browse: &mut Browse<D>,
    paths: &mut Vec<(String, String)>,
    warnings: &mut Vec<Warning>,
) {
    let listed = browse.list(CONFIG).unwrap_or_else(|err| {
        warnings.push(
            Warning::new(
                WarningCode::Unreadable,
                format!(
                    "/{CONFIG}: not listed ({err}); hives other than the standard ones there \
                     are not rewritten"
                ),
            )
            .at(format!("/{CONFIG}")),
        );
        Vec::new()
    });
    for e in listed {
        let known = crate::HIVE_NAMES
            .iter()
            .any(|h| h.eq_ignore_ascii_case(&e.name));
        if !e.is_dir && !known && !e.name.contains('.') && e.size >= 4096 {
            paths.push((CONFIG.to_string(), e.name));
        }
    }
}

/// `Windows\ServiceProfiles\*\NTUSER.DAT`.
fn service_profile_hives<D: Device>(
    browse: &mut Browse<D>,
    paths: &mut Vec<(String, String)>,
    warnings: &mut Vec<Warning>,
) {
    let sp = "Windows/ServiceProfiles";
    let mut unreadable = |what: &str, err: &dyn std::fmt::Display| {
        warnings.push(
            Warning::new(
                WarningCode::Unreadable,
                format!("/{sp}: {what} ({err}); service profiles' NTUSER.DAT are not rewritten"),
            )
            .at(format!("/{sp}")),
        );
        Vec::new()
    };
    let listed = match browse.exists(sp) {
        Ok(false) => Vec::new(),
        Ok(true) => browse
            .list(sp)
            .unwrap_or_else(|err| unreadable("not listed", &err)),
        Err(err) => unreadable("not readable", &err),
    };
    for e in listed.into_iter().filter(|e| e.is_dir) {
        let d = format!("{sp}/{}", e.name);
        match browse.exists(&format!("{d}/NTUSER.DAT")) {
            Ok(true) => paths.push((d, "NTUSER.DAT".into())),
            Ok(false) => {}
            Err(err) => warnings.push(
                Warning::new(
                    WarningCode::Unreadable,
                    format!("/{d}/NTUSER.DAT: not readable ({err}); it keeps any old SID it holds"),
                )
                .at(format!("/{d}/NTUSER.DAT")),
            ),
        }
    }
}

/// Read and parse every hive of `hp` (recovered in memory when dirty). A required hive that
/// exists but cannot be used is refused; a best-effort one is skipped with a warning. With
/// `force_dirty_hive`, a dirty hive whose logs cannot be replayed is taken as is, marked
/// clean.
pub(super) fn read_targets<D: Device>(
    browse: &mut Browse<D>,
    hp: HivePaths,
    force_dirty_hive: bool,
    warnings: &mut Vec<Warning>,
    tell: &mut dyn FnMut(&'static str, usize, usize),
) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    let mut errors = Vec::new();
    let np = hp.paths.len();
    for (i, (dir, name)) in hp.paths.into_iter().enumerate() {
        tell("read-hives", i, np);
        let o = open_hive(browse, &dir, &name, &mut errors);
        if i >= hp.required {
            let usable = matches!(
                o.info.state,
                HiveState::Clean | HiveState::DirtyReplayed { .. }
            ) || (force_dirty_hive
                && matches!(o.info.state, HiveState::DirtyWithoutUsableLogs { .. }));
            if !usable || o.hive.is_none() {
                warnings.push(
                    Warning::new(
                        WarningCode::HiveSkipped,
                        format!(
                            "{}: skipped ({:?}); it keeps any old SID it holds",
                            o.info.path, o.info.state
                        ),
                    )
                    .at(o.info.path.clone()),
                );
                continue;
            }
        }
        let Some(hive) = o.hive else {
            if !matches!(o.info.state, HiveState::Missing) {
                return Err(Error::Refused(Refusal::HiveUnreadable {
                    hive: o.info.path.clone(),
                    state: format!("{:?}", o.info.state),
                }));
            }
            continue;
        };
        let hive = if matches!(o.info.state, HiveState::DirtyWithoutUsableLogs { .. }) {
            // Forced (checked before): the primary is taken as is, marked clean.
            hive.mark_clean().map_err(|e| hive_err(&o.info.path, e))?
        } else {
            hive
        };
        targets.push(Target {
            path: format!("{dir}/{name}"),
            whole: !matches!(o.info.state, HiveState::Clean),
            old_len: o.info.size,
            hive,
        });
    }
    Ok(targets)
}

/// Truncate the non-empty transaction logs (`.LOG1`, `.LOG2`, `.LOG`) beside the hive at the
/// volume path `hive` to 0 bytes, after its primary was written complete: a stale log would
/// otherwise be replayed over the new primary by the next reader. Gives the volume paths
/// (`/…`) of the logs truncated; missing and already empty logs are left alone.
pub(crate) fn invalidate_logs<D: reseal_disk::Device>(
    vol: &mut reseal_ntfs::Volume<D>,
    partition: u32,
    hive: &str,
) -> Result<Vec<String>> {
    let mut truncated = Vec::new();
    for ext in ["LOG1", "LOG2", "LOG"] {
        let lp = format!("{hive}.{ext}");
        let mut head = [0u8; 1];
        match vol.read_file_at(&lp, 0, &mut head) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(reseal_ntfs::Error::NotFound { .. }) => continue,
            Err(e) => return Err(ntfs_err(partition, &lp, e)),
        }
        vol.set_len(&lp, 0)
            .map_err(|e| ntfs_err(partition, &lp, e))?;
        truncated.push(format!("/{lp}"));
    }
    Ok(truncated)
}

/// Windows refuses to create keys nested deeper than this (512 levels below the root).
const MAX_KEY_DEPTH: usize = 512;

/// Every key of a hive with its path below the root (`""` for the root itself, `a\\b` below
/// it, as `Hive::open_path` takes and the audit reports), parents before children. Keys nested deeper than
/// [`MAX_KEY_DEPTH`] are not walked and named in `warnings`; a key reached twice (a cycle or a
/// shared subkey list, which Windows never writes) is an error, not an endless walk.
fn all_keys(
    h: &Hive,
    hive_path: &str,
    warnings: &mut Vec<Warning>,
) -> reseal_hive::Result<Vec<(CellOffset, String, usize)>> {
    let root = h.root()?;
    let mut seen = std::collections::HashSet::new();
    seen.insert(root.offset());
    let mut out = vec![(root.offset(), String::new(), 0usize)];
    let mut i = 0;
    while i < out.len() {
        let (off, path, depth) = out[i].clone();
        let key = h.key(off)?;
        if depth >= MAX_KEY_DEPTH {
            if key.subkey_count() > 0 {
                warnings.push(
                    Warning::new(
                        WarningCode::TooDeep,
                        format!(
                            "{hive_path}: {path}: {} subkey(s) nested deeper than \
                             {MAX_KEY_DEPTH} levels not walked; they keep any old SID they hold",
                            key.subkey_count()
                        ),
                    )
                    .at(format!("{hive_path}: {path}")),
                );
            }
        } else {
            for k in key.subkeys()? {
                let k = k?;
                if !seen.insert(k.offset()) {
                    return Err(reseal_hive::HiveError::Corrupt {
                        structure: "subkey list",
                        cell: off,
                        reason: format!(
                            "key {path}\\{} (cell {:#x}) below the root is reached twice: the key \
                             tree has a cycle",
                            k.name(),
                            k.offset().0
                        ),
                    });
                }
                let child = if path.is_empty() {
                    k.name()
                } else {
                    format!("{path}\\{}", k.name())
                };
                out.push((k.offset(), child, depth + 1));
            }
        }
        i += 1;
    }
    Ok(out)
}

/// REG_SZ, REG_EXPAND_SZ, REG_LINK, REG_MULTI_SZ.
const STRING_TYPES: [u32; 4] = [1, 2, 6, 7];

/// Rewrite one account domain in one hive, in memory: every sk descriptor (in place, same
/// length), every value's data (binary SIDs in place, then SID strings in ASCII and UTF-16LE),
/// value names, class names and key names (renamed deepest first, the `<SID>_Classes` root
/// included). What [`generalize`](super::generalize) does to each hive, and `reseal reg sid` to one hive file.
/// Makes the hive writable; the caller scrubs ([`Hive::scrub`](reseal_hive::Hive::scrub)) and commits. Changes are
/// appended to `changes` (hive named `label`), counted in `counts`; oddities go to `warnings`.
///
/// # Errors
/// [`Error::Hive`] naming `label` (a dirty hive, corruption, an edit that does not fit).
pub fn rewrite_hive_sids(
    hive: &mut Hive,
    label: &str,
    map: &SidMap,
    changes: &mut Vec<Change>,
    counts: &mut Counts,
    warnings: &mut Vec<Warning>,
) -> Result<()> {
    let hp = label.to_string();
    let e = |s| hive_err(&hp, s);
    hive.make_writable().map_err(e)?;
    let mut sk_changes = Vec::new();
    hive.rewrite_security(|cell, sd| {
        let mut b = sd.to_vec();
        let n = map.replace_binary(&mut b);
        (n > 0).then(|| {
            sk_changes.push((cell.0, n));
            b
        })
    })
    .map_err(e)?;
    for (cell, sids) in sk_changes {
        counts.hive_descriptors += 1;
        changes.push(Change::HiveDescriptor {
            hive: hp.clone(),
            cell,
            sids,
        });
    }
    let keys = all_keys(hive, &hp, warnings).map_err(e)?;
    for (off, path, _) in &keys {
        type Edit = (String, String, u32, Vec<u8>, Vec<u8>, usize);
        let mut edits: Vec<Edit> = Vec::new();
        for v in hive.key(*off).map_err(e)?.values().map_err(e)? {
            let v = v.map_err(e)?;
            let name = v.name();
            let (new_name, kn) = map.replace_str(&name);
            let data = v.data().map_err(e)?;
            if kn == 0 && !map.may_contain(&data) {
                continue;
            }
            let data = data.into_owned();
            let mut b = data.clone();
            let nb = map.replace_binary(&mut b);
            let (b, nt) = map.replace_text(&b);
            if nt > 0 && b.len() != data.len() && !STRING_TYPES.contains(&v.data_type()) {
                warnings.push(
                    Warning::new(
                        WarningCode::SidLengthChanged,
                        format!(
                            "{hp}: {path} [{name}] (type {}): a SID string inside non-string \
                             data changed its length ({} -> {} bytes)",
                            v.data_type(),
                            data.len(),
                            b.len()
                        ),
                    )
                    .at(format!("{hp}: {path}")),
                );
            }
            if kn + nb + nt > 0 {
                edits.push((name, new_name, v.data_type(), data, b, nb + nt + kn));
            }
        }
        for (name, new_name, ty, old, new, sids) in edits {
            if new_name != name {
                hive.delete_value(*off, &name).map_err(e)?;
            }
            hive.set_value(*off, &new_name, ty, &new).map_err(e)?;
            counts.values += 1;
            changes.push(Change::Value {
                hive: hp.clone(),
                key: path.clone(),
                value: name,
                new_name,
                sids,
                old: hex64(&old),
                new: hex64(&new),
            });
        }
    }
    // Class names.
    for (off, path, _) in &keys {
        let class = match hive.key(*off).map_err(e)?.class_name() {
            Ok(Some(c)) => c,
            Ok(None) => continue,
            Err(err) => {
                warnings.push(
                    Warning::new(
                        WarningCode::Unreadable,
                        format!(
                            "{hp}: {path}: class name not readable ({err}); it keeps any old SID \
                             it holds"
                        ),
                    )
                    .at(format!("{hp}: {path}")),
                );
                continue;
            }
        };
        let (new, k) = map.replace_str(&class);
        if k == 0 {
            continue;
        }
        hive.set_class_name(*off, Some(&new)).map_err(e)?;
        counts.values += 1;
        changes.push(Change::ClassName {
            hive: hp.clone(),
            key: path.clone(),
            old: class,
            new,
        });
    }
    // Renames, deepest first (a rename may move the key's cell; children are done by then).
    let mut order: Vec<&(CellOffset, String, usize)> = keys.iter().collect();
    order.sort_by_key(|k| std::cmp::Reverse(k.2));
    for (off, path, _) in order {
        let name = hive.key(*off).map_err(e)?.name();
        let (new, k) = map.replace_str(&name);
        if k == 0 {
            continue;
        }
        let was_root = *off == hive.root_offset();
        let moved = hive.rename_key(*off, &new).map_err(e)?;
        if was_root && moved != *off {
            warnings.push(
                Warning::new(
                    WarningCode::RootKeyMoved,
                    format!(
                        "{hp}: the root key {name:?} -> {new:?} did not fit its cell and moved: \
                         hivex, libregf and Windows follow the base block, but regipy expects \
                         the root in the first cell (a new SID whose text is not longer avoids \
                         this)"
                    ),
                )
                .at(hp.clone()),
            );
        }
        counts.keys_renamed += 1;
        changes.push(Change::KeyRenamed {
            hive: hp.clone(),
            old: path.clone(),
            new,
        });
    }
    Ok(())
}

/// Zero the unused bytes of a hive that is written anyway, or whose unused bytes hold the old
/// domain (which makes it written). A hive whose cells do not parse well enough is left as it
/// is, with a warning (it is still rewritten as far as it reads).
pub(super) fn scrub_hive(
    t: &mut Target,
    map: Option<&SidMap>,
    changes: &mut Vec<Change>,
    counts: &mut Counts,
    warnings: &mut Vec<Warning>,
) {
    let hp = format!("/{}", t.path);
    let needed = t.hive.is_modified()
        || match t.hive.unused_ranges() {
            Ok(runs) => runs
                .iter()
                .any(|u| map.is_some_and(|m| m.may_contain(&t.hive.as_bytes()[u.range.clone()]))),
            Err(e) => {
                warnings.push(
                    Warning::new(WarningCode::NotScrubbed, format!("{hp}: not scrubbed: {e}"))
                        .at(hp.clone()),
                );
                return;
            }
        };
    if !needed {
        return;
    }
    match t.hive.make_writable().and_then(|()| t.hive.scrub()) {
        Ok(r) if r.bytes > 0 => {
            counts.hives_scrubbed += 1;
            changes.push(Change::HiveScrubbed {
                hive: hp,
                free_cells: r.free_cells,
                slack_cells: r.slack_cells,
                bytes: r.bytes,
            });
        }
        Ok(_) => {}
        Err(e) => warnings.push(
            Warning::new(WarningCode::NotScrubbed, format!("{hp}: not scrubbed: {e}")).at(hp),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hive() -> Hive {
        let sd = reseal_security::SecurityDescriptor::from_sddl("O:BAG:SYD:(A;;KA;;;SY)")
            .expect("sddl")
            .to_bytes()
            .expect("bytes");
        Hive::new_empty("ROOT", &sd).expect("hive")
    }

    #[test]
    fn keys_below_the_depth_limit_are_named_not_skipped_in_silence() {
        let mut h = hive();
        let mut path = String::new();
        for i in 0..MAX_KEY_DEPTH + 2 {
            if i > 0 {
                path.push('\\');
            }
            path.push_str(&format!("k{i}"));
        }
        h.create_path(&path).expect("deep path");
        let mut warnings = Vec::new();
        let keys = all_keys(&h, "/HIVE", &mut warnings).expect("walk");
        assert_eq!(keys.len(), MAX_KEY_DEPTH + 1);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("nested deeper than 512"),
            "{}",
            warnings[0]
        );
        assert!(
            warnings[0].message.starts_with("/HIVE: k0\\k1"),
            "{}",
            warnings[0]
        );
    }

    #[test]
    fn a_shallow_tree_walks_without_warnings() {
        let mut h = hive();
        h.create_path("A\\B").expect("a");
        h.create_path("A\\C").expect("c");
        let mut warnings = Vec::new();
        let keys = all_keys(&h, "/HIVE", &mut warnings).expect("walk");
        let names: Vec<&str> = keys.iter().map(|k| k.1.as_str()).collect();
        assert_eq!(names, ["", "A", "A\\B", "A\\C"]);
        assert!(warnings.is_empty());
    }
}
