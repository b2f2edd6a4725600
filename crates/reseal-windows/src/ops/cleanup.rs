//! The cleanup operations: files a clone must not inherit, deleted through the NTFS engine with
//! their data overwritten by zeros first ([`wipe_and_remove`]), so the freed clusters do not keep
//! the old contents.
//!
//! * `event-logs`: every `Windows\System32\winevt\Logs\*.evtx` (Sysprep's generalize "deletes
//!   event logs").
//! * `swap-files`: `pagefile.sys`, `swapfile.sys`, `hiberfil.sys` in the volume root (Windows
//!   makes them again at boot as configured).
//! * `ssh-hostkeys`: `ProgramData\ssh\ssh_host_*` (the OpenSSH server service makes new keys
//!   when they are missing).
//! * `setup-logs`: the files below `Windows\Panther`, `Windows\Logs` and
//!   `ProgramData\Microsoft\Windows\WER\ReportArchive` (the folders themselves stay).

use reseal_disk::Device;
use reseal_ntfs::Volume;

use super::{Log, Operation};
use crate::generalize::{ntfs_err, Change};
use crate::Result;

/// Zeros are written in pieces of this size.
const CHUNK: usize = 1 << 20;

/// Overwrite the unnamed `$DATA` of `path` with zeros (every allocated cluster, slack
/// included, or the resident bytes), then delete the file. Compressed or
/// encrypted data cannot be overwritten by the engine: the file is then deleted with a warning.
/// A file the engine cannot delete (attribute list, hard links) stays, zeroed, with a warning.
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
    let mut ranges = Vec::new();
    if runs.is_empty() {
        if info.size > 0 {
            ranges.push((0, info.size));
        }
    } else {
        for r in runs {
            if r.lcn.is_none() {
                continue;
            }
            let start = r.vcn.saturating_mul(cs);
            // Whole clusters, past the file's size too: the slack of the last cluster and
            // clusters allocated beyond the size are zeroed as well (the write grows the file
            // within its allocation first; it is deleted right after).
            let end = r.vcn.saturating_add(r.len).saturating_mul(cs);
            if start < end {
                ranges.push((start, end));
            }
        }
    }
    let zeros = vec![0u8; CHUNK];
    let mut zeroed = 0u64;
    'ranges: for (start, end) in ranges {
        let mut at = start;
        while at < end {
            let n = usize::try_from((end - at).min(CHUNK as u64)).unwrap_or(CHUNK);
            match vol.write_at(path, at, &zeros[..n]) {
                Ok(()) => {}
                Err(reseal_ntfs::Error::Unsupported { what, .. }) => {
                    log.warnings.push(format!(
                        "/{path}: data not overwritten ({what}); the file is deleted but its \
                         freed clusters keep the old contents"
                    ));
                    break 'ranges;
                }
                Err(e) => return Err(ntfs_err(partition, path, e)),
            }
            at += n as u64;
            zeroed += n as u64;
        }
    }
    match vol.remove(path) {
        Ok(()) => {}
        Err(reseal_ntfs::Error::Unsupported { what, .. }) => {
            log.warnings.push(format!(
                "/{path}: not deleted ({what}); its data was overwritten with zeros"
            ));
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

/// The entries of `dir`, or none when it does not exist (a warning when it cannot be read).
fn entries<D: Device>(vol: &Volume<D>, dir: &str, log: &mut Log) -> Vec<reseal_ntfs::DirEntry> {
    match vol.read_dir(dir) {
        Ok(e) => e,
        Err(reseal_ntfs::Error::NotFound { .. }) => Vec::new(),
        Err(e) => {
            log.warnings.push(format!(
                "/{dir}: not readable ({e}); the files in it are not deleted"
            ));
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
        log.warnings.push(format!(
            "/{dir}: nested deeper than 64 folders; the files below it are not deleted"
        ));
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
    Ok(())
}
