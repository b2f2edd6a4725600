//! The cleanup operations: files a clone must not inherit, deleted through the NTFS engine
//! ([`wipe_and_remove`]), which zeroes what it frees, so the old contents do not stay on disk.
//!
//! * `event-logs`: every `Windows\System32\winevt\Logs\*.evtx` (Sysprep's generalize "deletes
//!   event logs").
//! * `swap-files`: `pagefile.sys`, `swapfile.sys`, `hiberfil.sys` in the volume root (Windows
//!   makes them again at boot as configured).
//! * `ssh-hostkeys`: `ProgramData\ssh\ssh_host_*` (the OpenSSH server service makes new keys
//!   when they are missing).
//! * `setup-logs`: the files below `Windows\Panther`, `Windows\Logs` and
//!   `ProgramData\Microsoft\Windows\WER\ReportArchive` (the folders themselves stay).
//! * `restore-points`: the Volume Shadow Copy catalog and store files in `System Volume
//!   Information` (restore points are shadow copies), then the catalog offset of the VSS volume
//!   header at 0x1E00 set to 0, the state of a volume without copies
//!   ([`reseal_ntfs::vss`]). Sysprep's generalize "clears any system restore points".

use reseal_disk::Device;
use reseal_ntfs::Volume;

use super::{Log, Operation};
use crate::generalize::{ntfs_err, Change};
use crate::warning::{Warning, WarningCode};
use crate::Result;

/// Zeros are written in pieces of this size.
const CHUNK: usize = 1 << 20;

/// Delete `path` through the NTFS engine, which zeroes every cluster it frees and drops the
/// freed record's attributes, so neither the file's data (any stream, slack included) nor its
/// resident bytes stay on the volume. A file the engine cannot delete (attribute list, hard
/// links) has its unnamed `$DATA` overwritten with zeros instead and stays, with a warning.
pub(crate) fn wipe_and_remove<D: Device>(
    vol: &mut Volume<D>,
    partition: u32,
    op: Operation,
    path: &str,
    log: &mut Log,
) -> Result<()> {
    let info = vol
        .metadata(path)
        .map_err(|e| ntfs_err(partition, path, e))?;
    let cs = u64::from(vol.boot_sector().cluster_size);
    let runs = vol
        .data_runs(path)
        .map_err(|e| ntfs_err(partition, path, e))?;
    // What is zeroed: every allocated cluster (past the size too), or the resident bytes.
    let ranges: Vec<(u64, u64)> = if runs.is_empty() {
        (info.size > 0)
            .then_some((0, info.size))
            .into_iter()
            .collect()
    } else {
        runs.iter()
            .filter(|r| r.lcn.is_some())
            .map(|r| {
                (
                    r.vcn.saturating_mul(cs),
                    r.vcn.saturating_add(r.len).saturating_mul(cs),
                )
            })
            .filter(|(s, e)| s < e)
            .collect()
    };
    let zeroed: u64 = ranges.iter().map(|(s, e)| e - s).sum();
    match vol.remove(path) {
        Ok(()) => {}
        Err(reseal_ntfs::Error::Unsupported { what, .. }) => {
            overwrite(vol, partition, path, &ranges, log)?;
            log.warnings.push(
                Warning::new(
                    WarningCode::NotDeleted,
                    format!("/{path}: not deleted ({what}); its data was overwritten with zeros"),
                )
                .at(format!("/{path}")),
            );
            return Ok(());
        }
        Err(e) => return Err(ntfs_err(partition, path, e)),
    }
    log.counts.files_deleted += 1;
    log.counts.bytes_zeroed += zeroed;
    log.changes.push(Change::FileDeleted {
        operation: op,
        path: format!("/{path}"),
        size: info.size,
        zeroed,
    });
    Ok(())
}

/// Zeros over `ranges` of the unnamed `$DATA` of a file the engine cannot delete.
fn overwrite<D: Device>(
    vol: &mut Volume<D>,
    partition: u32,
    path: &str,
    ranges: &[(u64, u64)],
    log: &mut Log,
) -> Result<()> {
    let zeros = vec![0u8; CHUNK];
    for &(start, end) in ranges {
        let mut at = start;
        while at < end {
            let n = usize::try_from((end - at).min(CHUNK as u64)).unwrap_or(CHUNK);
            match vol.write_at(path, at, &zeros[..n]) {
                Ok(()) => {}
                Err(reseal_ntfs::Error::Unsupported { what, .. }) => {
                    log.warnings.push(
                        Warning::new(
                            WarningCode::NotOverwritten,
                            format!(
                                "/{path}: data not overwritten ({what}); it keeps its old contents"
                            ),
                        )
                        .at(format!("/{path}")),
                    );
                    return Ok(());
                }
                Err(e) => return Err(ntfs_err(partition, path, e)),
            }
            at += n as u64;
        }
    }
    Ok(())
}

/// The entries of `dir`, or none when it does not exist (a warning when it cannot be read).
fn entries<D: Device>(vol: &Volume<D>, dir: &str, log: &mut Log) -> Vec<reseal_ntfs::DirEntry> {
    match vol.read_dir(dir) {
        Ok(e) => e,
        Err(reseal_ntfs::Error::NotFound { .. }) => Vec::new(),
        Err(e) => {
            log.warnings.push(
                Warning::new(
                    WarningCode::Unreadable,
                    format!("/{dir}: not readable ({e}); the files in it are not deleted"),
                )
                .at(format!("/{dir}")),
            );
            Vec::new()
        }
    }
}

/// Every file below `dir` (folders walked, not listed), deepest first.
fn files_below<D: Device>(
    vol: &Volume<D>,
    dir: &str,
    out: &mut Vec<String>,
    log: &mut Log,
    depth: usize,
) {
    if depth > 64 {
        log.warnings.push(
            Warning::new(
                WarningCode::TooDeep,
                format!(
                    "/{dir}: nested deeper than 64 folders; the files below it are not deleted"
                ),
            )
            .at(format!("/{dir}")),
        );
        return;
    }
    for e in entries(vol, dir, log) {
        let p = format!("{dir}/{}", e.name);
        if e.is_dir {
            files_below(vol, &p, out, log, depth + 1);
        } else {
            out.push(p);
        }
    }
}

/// The files operation `op` deletes, when it is a cleanup operation.
pub(crate) fn files_of<D: Device>(vol: &Volume<D>, op: Operation, log: &mut Log) -> Vec<String> {
    let mut out = Vec::new();
    match op {
        Operation::EventLogs => {
            let dir = "Windows/System32/winevt/Logs";
            for e in entries(vol, dir, log) {
                if !e.is_dir && e.name.to_ascii_lowercase().ends_with(".evtx") {
                    out.push(format!("{dir}/{}", e.name));
                }
            }
        }
        Operation::SwapFiles => {
            for e in entries(vol, "", log) {
                let n = e.name.to_ascii_lowercase();
                if !e.is_dir
                    && ["pagefile.sys", "swapfile.sys", "hiberfil.sys"].contains(&n.as_str())
                {
                    out.push(e.name);
                }
            }
        }
        Operation::SshHostkeys => {
            let dir = "ProgramData/ssh";
            for e in entries(vol, dir, log) {
                if !e.is_dir && e.name.to_ascii_lowercase().starts_with("ssh_host_") {
                    out.push(format!("{dir}/{}", e.name));
                }
            }
        }
        Operation::SetupLogs => {
            for dir in [
                "Windows/Panther",
                "Windows/Logs",
                "ProgramData/Microsoft/Windows/WER/ReportArchive",
            ] {
                files_below(vol, dir, &mut out, log, 0);
            }
        }
        Operation::RestorePoints => {
            let dir = "System Volume Information";
            for e in entries(vol, dir, log) {
                if !e.is_dir && reseal_ntfs::vss::is_vss_file(&e.name) {
                    out.push(format!("{dir}/{}", e.name));
                }
            }
        }
        _ => {}
    }
    out
}

/// Run cleanup operation `op`.
pub(crate) fn apply<D: Device>(
    vol: &mut Volume<D>,
    partition: u32,
    op: Operation,
    log: &mut Log,
) -> Result<()> {
    for path in files_of(vol, op, log) {
        wipe_and_remove(vol, partition, op, &path, log)?;
    }
    if op == Operation::RestorePoints {
        let cleared = vol
            .clear_vss_catalog()
            .map_err(|e| ntfs_err(partition, "VSS volume header", e))?;
        if let Some(old) = cleared {
            log.changes.push(Change::ShadowCopiesCleared {
                operation: op,
                old_catalog_offset: old,
            });
        }
    }
    Ok(())
}
