//! `generalize`: the named operations ([`Operation`], [`Options::operations`]; code in
//! [`crate::ops`], list and sources in docs/OPERATIONS.md) that give a Windows install a new
//! identity offline: a new machine SID (this module), a new computer name, new machine
//! identifiers, and the removal of files a clone must not inherit. Every write is staged in the
//! image's journal. The caller commits ([`reseal_disk::Image::commit`], with its undo file) or
//! discards (dry run).
//!
//! # What is rewritten
//! The old account domain `S-1-5-21-X-Y-Z` and every account SID under it map to the new domain
//! with the same RIDs ([`SidMap`](reseal_security::sidmap::SidMap)). Nothing else is mapped: in particular the SID of an Active
//! Directory domain the machine is joined to is never touched (a joined machine is refused unless
//! forced, and a domain controller, whose machine SID *is* the domain SID, always is).
//!
//! * **Hives** — SAM, SECURITY, SYSTEM, SOFTWARE, DEFAULT and every profile's `NTUSER.DAT` and
//!   `UsrClass.dat`; best effort (skipped with a warning when unusable) the other files of
//!   `config` without an extension (COMPONENTS, DRIVERS, BBI, ELAM, ...) and
//!   `Windows\ServiceProfiles\*\NTUSER.DAT`:
//!   - every sk descriptor, in place, same length ([`Hive::rewrite_security`](reseal_hive::Hive::rewrite_security); cells that become
//!     identical stay separate, refcounts unchanged);
//!   - every value's data: binary SIDs patched in place ([`SidMap::replace_binary`](reseal_security::sidmap::SidMap::replace_binary); covers SAM
//!     `Domains\Account\V`, users' `V` descriptors, alias `C` member lists, SECURITY `PolAcDmS`,
//!     `Policy\Accounts\*\Sid`, ProfileList `Sid`), then string SIDs in ASCII and UTF-16LE
//!     ([`SidMap::replace_text`](reseal_security::sidmap::SidMap::replace_text); REG_SZ/EXPAND_SZ/MULTI_SZ and any other type, length may
//!     change). Note: the text pass is applied to every value type, so a SID string embedded in
//!     a binary structure with its own length fields would be rewritten without adjusting them;
//!     no such value is known in the SID-keyed places of FORMATS.md A.3, and the report warns
//!     when it happens to a non-string value;
//!   - value names, key class names and key names containing a SID (delete + set for values, `rename_key` for
//!     keys, deepest keys first; the `<SID>_Classes` root of `UsrClass.dat` included).
//!
//!   Then, unless [`Options::no_scrub`], every hive that is written, and every hive whose free
//!   cells or slack hold the old domain, is scrubbed ([`Hive::scrub`](reseal_hive::Hive::scrub)): free cells, the slack
//!   after the used part of each cell (value data, names, lists, descriptors) and the bytes
//!   after the last hbin are zeroed, so no old SID survives in them.
//!
//!   Each changed hive is committed in memory ([`Hive::commit`](reseal_hive::Hive::commit): clean, sequence numbers above
//!   every log entry) and written back through the NTFS engine: only the dirty ranges of a clean
//!   hive (ranges less than [`reseal_hive::WRITE_GAP`] apart written as one, as `reg sid` and
//!   `reg import` do), the whole file of a hive recovered from its logs. The file grows when the hive grows.
//!   Its non-empty `.LOG1`/`.LOG2`/`.LOG` are then truncated to 0 bytes, as
//!   `reseal-hive/FORMAT-NOTES.md` ("logs after an offline edit") asks, in the same journalled
//!   change: nothing stale can be replayed and the old SIDs in the log bodies are no longer in
//!   any file.
//! * **NTFS** — every `$Secure` descriptor and legacy `$SECURITY_DESCRIPTOR`
//!   ([`reseal_ntfs::Volume::rewrite_descriptors`], `$SII`/`$SDH` kept consistent), `$Quota`
//!   SIDs, every file or directory whose *name* contains an old SID (e.g. `$Recycle.Bin\<SID>`,
//!   `…\Microsoft\Protect\<SID>`: the master keys in there are bound to the old SID anyway, so
//!   the rename orphans nothing the SID change does not), and the task XML files under
//!   `Windows\System32\Tasks` (`<UserId>` and any other SID string; UTF-16 text, the file may
//!   change length).
//! * **Computer name** (when asked) — SYSTEM `ControlSet00N\Control\ComputerName\ComputerName`
//!   `ComputerName` (upper case), `…\Services\Tcpip\Parameters` `Hostname` and `NV Hostname`
//!   (as given) in every control set, and SECURITY `Policy\PolAcDmN` (LSA `UNICODE_STRING`).
//!
//! # Refusals
//! Checked before anything is written and returned as [`Error::Refused`] carrying a typed
//! [`Refusal`](crate::Refusal) (whose message names the CLI option that overrides it). Each has a `force_*`
//! option where forcing makes sense:
//! a BitLocker-looking volume in the image (`force_bitlocker`), a dirty/hibernated/Fast-Startup
//! volume (`force_volume_state`), a dirty hive whose logs cannot be replayed
//! (`force_dirty_hive`: the primary is then rewritten as is and the logs invalidated), pending
//! TxR transactions (`force_txr`), a domain-joined machine (`force_domain_joined`), SAM and
//! SECURITY machine SIDs that disagree (never forced), a domain controller (never).
//! DPAPI master keys and EFS files only produce warnings.

mod hives;
mod plan;
mod report;
mod volume;

use reseal_disk::partition::Slice;
use reseal_disk::{Device, Image};

pub use self::hives::rewrite_hive_sids;
pub(crate) use self::hives::{invalidate_logs, Target};
use self::hives::{rewrite_targets, scrub_hive, write_hives};
use self::plan::{check_options, choose_new_sid, new_sid_map, read_phase};
pub use self::plan::{prepare, validate_computer_name, NewSid, Options, Prepared};
use self::report::{operation_summaries, teller};
pub use self::report::{Change, Counts, Progress, Report};
use self::volume::sid_files;
pub(crate) use self::volume::{ntfs_err, volume_refusal};
use crate::ops::{self, cleanup, computer_name, machine_ids, rdp, Log};
pub use crate::ops::{Operation, OperationSummary, Operations};
pub use crate::warning::{Warning, WarningCode};
use crate::{Error, Result};

/// Give the Windows install of `image` a new machine SID (and computer name). Every write is
/// staged in `image`'s journal; the caller commits or discards it. Refusals happen before any
/// write; on any error after the first write the caller must discard the journal.
///
/// # Errors
/// [`Error::Refused`] for the refusals listed in the module documentation; [`Error::Invalid`]
/// for a bad computer name or SID; I/O, hive and NTFS errors.
pub fn generalize(image: &mut Image, opts: &Options) -> Result<Report> {
    generalize_with_progress(image, opts, &mut |_| {})
}

/// [`generalize`], calling `progress` as it goes (for progress bars).
///
/// # Errors
/// As [`generalize`].
pub fn generalize_with_progress(
    image: &mut Image,
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report> {
    let (computer_name, provision) = check_options(opts)?;
    let mut prep = read_phase(image, opts, progress)?;
    let targets = std::mem::take(&mut prep.targets);
    let warnings = std::mem::take(&mut prep.warnings);
    write_phase(
        image,
        &prep,
        targets,
        warnings,
        opts,
        computer_name,
        provision,
        progress,
    )
}

/// [`generalize`] of `image` with the reads taken from `prep` instead of `image`: `image`
/// must hold the same virtual disk as the image `prep` was read from (checked: its size) and
/// `opts` the options `prep` was made with, apart from `new_sid` and `computer_name`.
///
/// # Errors
/// As [`generalize`]; [`Error::Invalid`] for an image of another size.
pub fn generalize_prepared(
    image: &mut Image,
    prep: &Prepared,
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report> {
    if image.len() != prep.image_len {
        return Err(Error::Invalid {
            what: "image",
            reason: format!(
                "{} bytes, but the plan was read from an image of {} bytes",
                image.len(),
                prep.image_len
            ),
        });
    }
    let (computer_name, provision) = check_options(opts)?;
    write_phase(
        image,
        prep,
        prep.targets.clone(),
        prep.warnings.clone(),
        opts,
        computer_name,
        provision,
        progress,
    )
}

/// Everything after the reads: the new SID, the rewrite in memory, the writes.
#[allow(clippy::too_many_arguments)]
fn write_phase(
    image: &mut Image,
    prep: &Prepared,
    mut targets: Vec<Target>,
    mut warnings: Vec<Warning>,
    opts: &Options,
    computer_name: Option<String>,
    provision: ops::provision::Request,
    progress: &mut dyn FnMut(Progress),
) -> Result<Report> {
    let mut tell = teller(progress);
    let ops = &opts.operations;
    let partition = prep.partition;
    let old_sid = &prep.old_sid;
    let (new_sid, map) = if ops.contains(Operation::MachineSid) {
        let new_sid = choose_new_sid(&opts.new_sid, old_sid)?;
        let map = new_sid_map(&prep.install, old_sid, &new_sid)?;
        (new_sid, Some(map))
    } else {
        (old_sid.clone(), None)
    };
    let mut slice = Slice::new(&mut *image, prep.start, prep.len)?;

    let mut changes = Vec::new();
    let mut counts = Counts::default();
    // Hives, in memory.
    rewrite_targets(
        &mut targets,
        map.as_ref(),
        &mut changes,
        &mut counts,
        &mut warnings,
        &mut tell,
    )?;
    let (guid, provision_files) = edit_hives(
        &mut targets,
        prep,
        opts,
        computer_name.as_deref(),
        &provision,
        &mut Log {
            changes: &mut changes,
            counts: &mut counts,
            warnings: &mut warnings,
        },
        &mut tell,
    )?;
    if !opts.no_scrub {
        for t in targets.iter_mut() {
            scrub_hive(t, map.as_ref(), &mut changes, &mut counts, &mut warnings);
        }
    }

    // Writes through the NTFS engine (staged in the image journal).
    let mut vol =
        reseal_ntfs::Volume::open(&mut slice).map_err(|e| ntfs_err(partition, "open", e))?;
    write_hives(
        &mut vol,
        partition,
        &mut targets,
        &mut changes,
        &mut counts,
        &mut tell,
    )?;
    if let Some(map) = &map {
        sid_files(
            &mut vol,
            partition,
            map,
            &prep.caches,
            &mut changes,
            &mut counts,
            &mut warnings,
            &mut tell,
        )?;
    }
    edit_files(
        &mut vol,
        partition,
        ops,
        &guid,
        &provision,
        provision_files.as_ref(),
        &mut Log {
            changes: &mut changes,
            counts: &mut counts,
            warnings: &mut warnings,
        },
        &mut tell,
    )?;
    vol.flush().map_err(|e| ntfs_err(partition, "flush", e))?;

    Ok(Report {
        partition,
        old_sid: old_sid.to_string(),
        new_sid: new_sid.to_string(),
        old_computer_name: prep.install.computer.netbios.clone(),
        new_computer_name: computer_name.clone(),
        dry_run: opts.dry_run,
        operations: operation_summaries(
            ops,
            computer_name.is_some(),
            !provision.is_empty(),
            &changes,
        ),
        old_machine_guid: guid.old,
        new_machine_guid: guid.new,
        changes,
        counts,
        warnings,
    })
}

/// The hive edits of the operations other than `machine-sid`, in memory: the computer name,
/// the machine identifiers, the RDP certificate, provisioning (which decides the files it
/// writes later).
fn edit_hives(
    targets: &mut [Target],
    prep: &Prepared,
    opts: &Options,
    computer_name: Option<&str>,
    provision: &ops::provision::Request,
    log: &mut Log,
    tell: &mut dyn FnMut(&'static str, usize, usize),
) -> Result<(machine_ids::GuidChange, Option<ops::provision::Files>)> {
    let ops = &opts.operations;
    let mut guid = machine_ids::GuidChange::default();
    let mut provision_files = None;
    if let Some(name) = computer_name {
        computer_name::apply(targets, name, prep.install.computer.netbios.as_deref(), log)?;
    }
    if ops.contains(Operation::MachineIds) {
        tell("machine-ids", 0, 0);
        guid = machine_ids::apply_hives(targets, log)?;
    }
    if ops.contains(Operation::RdpCertificate) {
        rdp::apply_hives(targets, log)?;
    }
    if !provision.is_empty() {
        provision_files = Some(ops::provision::apply_hives(targets, provision, log)?);
    }
    Ok((guid, provision_files))
}

/// The file edits of the operations other than `machine-sid`, after the hives are written:
/// the RDP key, the machine keys' renames, the cleanups, the provisioning files.
#[allow(clippy::too_many_arguments)]
fn edit_files<D: Device>(
    vol: &mut reseal_ntfs::Volume<D>,
    partition: u32,
    ops: &Operations,
    guid: &machine_ids::GuidChange,
    provision: &ops::provision::Request,
    provision_files: Option<&ops::provision::Files>,
    log: &mut Log,
    tell: &mut dyn FnMut(&'static str, usize, usize),
) -> Result<()> {
    // The RDP key file goes before the machine keys are renamed (it is found by the old
    // suffix as well as the new, but deleting first saves a rename).
    if ops.contains(Operation::RdpCertificate) {
        rdp::apply_files(vol, partition, log)?;
    }
    if ops.contains(Operation::MachineIds) {
        machine_ids::rename_machine_keys(vol, partition, guid, log)?;
    }
    for op in [
        Operation::SshHostkeys,
        Operation::EventLogs,
        Operation::SwapFiles,
        Operation::SetupLogs,
        Operation::RestorePoints,
    ] {
        if ops.contains(op) {
            tell(op.name(), 0, 0);
            cleanup::apply(vol, partition, op, log)?;
        }
    }
    // After setup-logs, which empties Windows\Panther.
    if let Some(files) = provision_files {
        tell("provision", 0, 0);
        ops::provision::apply_files(vol, partition, files, !provision.firstboot.is_empty(), log)?;
    }
    Ok(())
}
