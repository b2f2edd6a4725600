//! The NTFS side of [`super::generalize`]: the volume-state refusal, and the `machine-sid`
//! rewrite of the volume itself (descriptors, `$Quota`, task XML, SID-named entries).

use reseal_disk::Device;
use reseal_ntfs::catalog::Catalog;
use reseal_ntfs::state::VolumeState;
use reseal_ntfs::{DescriptorRef, Volume};
use reseal_security::sidmap::SidMap;

use super::plan::Caches;
use super::report::{Change, Counts};
use crate::ops::Log;
use crate::warning::{Warning, WarningCode};
use crate::{Error, Refusal, Result};

/// The typed refusal for a volume state that forbids writing ([`VolumeState::unsafe_state`]).
pub(crate) fn volume_refusal(state: &VolumeState, partition: u32) -> Option<Refusal> {
    use reseal_ntfs::state::{magic_text, UnsafeState};
    Some(match state.unsafe_state()? {
        UnsafeState::Hibernated { magic } => Refusal::Hibernated {
            partition,
            magic: magic_text(&magic),
        },
        UnsafeState::FastStartup => Refusal::FastStartup { partition },
        other => Refusal::Dirty {
            partition,
            detail: other.detail(),
        },
    })
}

pub(crate) fn ntfs_err(partition: u32, what: &str, e: reseal_ntfs::Error) -> Error {
    Error::Write {
        partition,
        what: what.to_string(),
        source: e,
    }
}

/// The NTFS part of `machine-sid`: descriptors, `$Quota`, task XML, SID-named entries.
#[allow(clippy::too_many_arguments)]
pub(super) fn sid_files<D: Device>(
    vol: &mut Volume<D>,
    partition: u32,
    map: &SidMap,
    caches: &Caches,
    changes: &mut Vec<Change>,
    counts: &mut Counts,
    warnings: &mut Vec<Warning>,
    tell: &mut dyn FnMut(&'static str, usize, usize),
) -> Result<()> {
    let mut log = Log {
        changes,
        counts,
        warnings,
    };
    tell("descriptors", 0, 0);
    let catalog = caches
        .catalog
        .get_or_init(|| std::sync::Arc::new(vol.catalog()));
    rewrite_descriptors(vol, partition, map, catalog, &mut log)?;
    tell("quota", 0, 0);
    rewrite_quota(vol, partition, map, &mut log)?;
    rewrite_tasks(vol, partition, map, &mut log, tell)?;
    tell("names", 0, 0);
    let (names, walk_warnings) = caches.sid_names.get_or_init(|| {
        let mut w = Vec::new();
        let found = crate::volume_names::sid_named_entries(catalog, map, &mut w);
        (found.into_iter().map(|(from, _)| from).collect(), w)
    });
    log.warnings.extend(walk_warnings.iter().cloned());
    rename_sid_names(vol, partition, map, names, &mut log)
}

/// Every `$Secure` and legacy per-file descriptor holding an old SID, rewritten in place;
/// each change names the files using it (from `catalog`). Descriptors the engine cannot
/// parse are skipped with a warning.
fn rewrite_descriptors<D: Device>(
    vol: &mut Volume<D>,
    partition: u32,
    map: &SidMap,
    catalog: &Catalog,
    log: &mut Log,
) -> Result<()> {
    let mut sd_changes = Vec::new();
    let mut skipped = Vec::new();
    let n = vol
        .rewrite_descriptors_from(
            catalog,
            |at, sd| {
                let mut b = sd.to_vec();
                let k = map.replace_binary(&mut b);
                (k > 0).then(|| {
                    sd_changes.push((at, k));
                    b
                })
            },
            |s| skipped.push(s),
        )
        .map_err(|e| ntfs_err(partition, "descriptors", e))?;
    log.counts.ntfs_descriptors = n;
    let users = if sd_changes.is_empty() {
        std::collections::BTreeMap::new()
    } else {
        catalog.security_id_users()
    };
    let path_of = |record: u64| catalog.path_of(record).map(|p| format!("/{p}"));
    for (at, sids) in sd_changes {
        log.changes.push(match at {
            DescriptorRef::Shared(id) => {
                let (files, first) = users.get(&id).copied().unwrap_or((0, 0));
                Change::NtfsDescriptor {
                    id,
                    sids,
                    files,
                    example: (files > 0).then(|| path_of(first)).flatten(),
                }
            }
            DescriptorRef::File(record) => Change::NtfsFileDescriptor {
                path: path_of(record).unwrap_or_else(|| format!("(record {record})")),
                record,
                sids,
            },
        });
    }
    skipped_warnings(partition, skipped, log);
    Ok(())
}

/// The structures the engine skipped, as warnings.
fn skipped_warnings<S: std::fmt::Display>(partition: u32, skipped: Vec<S>, log: &mut Log) {
    for s in skipped {
        log.warnings.push(Warning::new(
            WarningCode::NtfsSkipped,
            format!("partition {partition}: {s}"),
        ));
    }
}

/// The old SIDs of `$Quota`.
fn rewrite_quota<D: Device>(
    vol: &mut Volume<D>,
    partition: u32,
    map: &SidMap,
    log: &mut Log,
) -> Result<()> {
    let mut skipped = Vec::new();
    let q = vol
        .rewrite_quota_sids_with(
            |sid| {
                let mut b = sid.to_vec();
                (map.replace_binary(&mut b) > 0).then_some(b)
            },
            |s| skipped.push(s),
        )
        .map_err(|e| ntfs_err(partition, "$Quota", e))?;
    skipped_warnings(partition, skipped, log);
    if q > 0 {
        log.counts.quota_sids = q;
        log.changes.push(Change::Quota { count: q });
    }
    Ok(())
}

/// SID strings in the task XML files under `Windows\System32\Tasks` (a file may change
/// length); an unreadable task is named in a warning.
fn rewrite_tasks<D: Device>(
    vol: &mut Volume<D>,
    partition: u32,
    map: &SidMap,
    log: &mut Log,
    tell: &mut dyn FnMut(&'static str, usize, usize),
) -> Result<()> {
    let mut tasks = Vec::new();
    collect_files(vol, "Windows/System32/Tasks", &mut tasks, log.warnings, 0);
    let ntasks = tasks.len();
    for (i, path) in tasks.into_iter().enumerate() {
        tell("tasks", i, ntasks);
        let data = match vol.read_file(&path) {
            Ok(d) => d,
            Err(err) => {
                log.warnings.push(
                    Warning::new(
                        WarningCode::Unreadable,
                        format!(
                            "/{path}: task not readable ({err}); it keeps any old SID it holds"
                        ),
                    )
                    .at(format!("/{path}")),
                );
                continue;
            }
        };
        let (new, k) = map.replace_text(&data);
        if k == 0 {
            continue;
        }
        vol.write_file(&path, &new)
            .map_err(|e| ntfs_err(partition, &path, e))?;
        log.counts.files_rewritten += 1;
        log.changes.push(Change::FileRewritten {
            path: format!("/{path}"),
            sids: k,
            old_len: data.len(),
            new_len: new.len(),
        });
    }
    Ok(())
}

/// Rename the entries whose last component holds the old SID (deepest first, so that parent
/// paths stay valid).
fn rename_sid_names<D: Device>(
    vol: &mut Volume<D>,
    partition: u32,
    map: &SidMap,
    names: &[String],
    log: &mut Log,
) -> Result<()> {
    let mut renames: Vec<(String, String)> = names
        .iter()
        .map(|from| {
            let (dir, name) = from.rsplit_once('/').unwrap_or(("", from));
            (from.clone(), join(dir, &map.replace_str(name).0))
        })
        .collect();
    renames.sort_by_key(|(p, _)| std::cmp::Reverse(p.matches('/').count()));
    for (from, to) in renames {
        vol.rename(&from, &to)
            .map_err(|e| ntfs_err(partition, &from, e))?;
        log.counts.files_renamed += 1;
        log.changes.push(Change::FileRenamed {
            old: format!("/{from}"),
            new: format!("/{to}"),
        });
    }
    Ok(())
}

const MAX_DEPTH: usize = 64;

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

fn collect_files<D: Device>(
    vol: &Volume<D>,
    dir: &str,
    out: &mut Vec<String>,
    warnings: &mut Vec<Warning>,
    depth: usize,
) {
    if depth > MAX_DEPTH {
        warnings.push(
            Warning::new(
                WarningCode::TooDeep,
                format!(
                    "/{dir}: not walked (nested deeper than {MAX_DEPTH} folders); files below it \
                     keep any old SID they hold"
                ),
            )
            .at(format!("/{dir}")),
        );
        return;
    }
    let ents = match vol.read_dir(dir) {
        Ok(ents) => ents,
        Err(reseal_ntfs::Error::NotFound { .. }) if depth == 0 => return,
        Err(err) => {
            warnings.push(
                Warning::new(
                    WarningCode::Unreadable,
                    format!(
                        "/{dir}: folder not readable ({err}); files below it keep any old SID \
                         they hold"
                    ),
                )
                .at(format!("/{dir}")),
            );
            return;
        }
    };
    for e in ents {
        let p = join(dir, &e.name);
        if e.is_dir {
            collect_files(vol, &p, out, warnings, depth + 1);
        } else {
            out.push(p);
        }
    }
}
