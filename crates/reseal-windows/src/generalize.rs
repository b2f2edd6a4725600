//! `generalize`: the named operations ([`Operation`], [`Options::operations`]; code in
//! [`crate::ops`], list and sources in docs/OPERATIONS.md) that give a Windows install a new
//! identity offline: a new machine SID (this module), a new computer name, new machine
//! identifiers, and the removal of files a clone must not inherit. Every write is staged in the
//! image's journal. The caller commits ([`reseal_disk::Image::commit`], with its undo file) or
//! discards (dry run).
//!
//! # What is rewritten
//! The old account domain `S-1-5-21-X-Y-Z` and every account SID under it map to the new domain
//! with the same RIDs ([`SidMap`]). Nothing else is mapped: in particular the SID of an Active
//! Directory domain the machine is joined to is never touched (a joined machine is refused unless
//! forced, and a domain controller, whose machine SID *is* the domain SID, always is).
//!
//! * **Hives** — SAM, SECURITY, SYSTEM, SOFTWARE, DEFAULT and every profile's `NTUSER.DAT` and
//!   `UsrClass.dat`; best effort (skipped with a warning when unusable) the other files of
//!   `config` without an extension (COMPONENTS, DRIVERS, BBI, ELAM, ...) and
//!   `Windows\ServiceProfiles\*\NTUSER.DAT`:
//!   - every sk descriptor, in place, same length ([`Hive::rewrite_security`]; cells that become
//!     identical stay separate, refcounts unchanged);
//!   - every value's data: binary SIDs patched in place ([`SidMap::replace_binary`]; covers SAM
//!     `Domains\Account\V`, users' `V` descriptors, alias `C` member lists, SECURITY `PolAcDmS`,
//!     `Policy\Accounts\*\Sid`, ProfileList `Sid`), then string SIDs in ASCII and UTF-16LE
//!     ([`SidMap::replace_text`]; REG_SZ/EXPAND_SZ/MULTI_SZ and any other type, length may
//!     change). Note: the text pass is applied to every value type, so a SID string embedded in
//!     a binary structure with its own length fields would be rewritten without adjusting them;
//!     no such value is known in the SID-keyed places of FORMATS.md A.3, and the report warns
//!     when it happens to a non-string value;
//!   - value names, key class names and key names containing a SID (delete + set for values, `rename_key` for
//!     keys, deepest keys first; the `<SID>_Classes` root of `UsrClass.dat` included).
//!
//!   Then, unless [`Options::no_scrub`], every hive that is written, and every hive whose free
//!   cells or slack hold the old domain, is scrubbed ([`Hive::scrub`]): free cells, the slack
//!   after the used part of each cell (value data, names, lists, descriptors) and the bytes
//!   after the last hbin are zeroed, so no old SID survives in them.
//!
//!   Each changed hive is committed in memory ([`Hive::commit`]: clean, sequence numbers above
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
//! [`Refusal`] (whose message names the CLI option that overrides it). Each has a `force_*`
//! option where forcing makes sense:
//! a BitLocker-looking volume in the image (`force_bitlocker`), a dirty/hibernated/Fast-Startup
//! volume (`force_volume_state`), a dirty hive whose logs cannot be replayed
//! (`force_dirty_hive`: the primary is then rewritten as is and the logs invalidated), pending
//! TxR transactions (`force_txr`), a domain-joined machine (`force_domain_joined`), SAM and
//! SECURITY machine SIDs that disagree (never forced), a domain controller (never).
//! DPAPI master keys and EFS files only produce warnings.

use reseal_disk::partition::{PartitionTable, Slice};
use reseal_disk::{Device, Image};
use reseal_hive::{CellOffset, Hive};
use reseal_ntfs::state::VolumeState;
use reseal_ntfs::DescriptorRef;
use reseal_security::sidmap::SidMap;
use reseal_security::Sid;
use serde::{Deserialize, Serialize};

use crate::install::{open_hive, HiveState};
use crate::ops::{self, cleanup, computer_name, machine_ids, rdp, Log};
pub use crate::ops::{Operation, OperationSummary, Operations};
pub use crate::warning::{Warning, WarningCode};
use crate::{scan, Error, Refusal, Result, SkipKind, WindowsInstall};

/// How the new machine SID is chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NewSid {
    /// Three random sub-authorities (from the operating system's random source) with the same
    /// numbers of decimal digits as the old ones, so that no SID string changes length.
    #[default]
    Random,
    /// This account-domain SID `S-1-5-21-A-B-C`.
    Given(Sid),
}

/// Options of [`generalize`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// The new machine SID.
    pub new_sid: NewSid,
    /// A new computer name (NetBIOS rules: 1–15 characters, see [`validate_computer_name`]);
    /// `random` makes a Sysprep-style `DESKTOP-XXXXXXX` ([`crate::ops::computer_name::random_name`]).
    pub computer_name: Option<String>,
    /// The operations to run (default: [`Operations::defaults`]). `computer-name` only runs
    /// when [`Options::computer_name`] is given.
    pub operations: Operations,
    /// Partition of the Windows install (default: the only install of the image).
    pub partition: Option<u32>,
    /// Go on although a volume of the image looks BitLocker-encrypted.
    pub force_bitlocker: bool,
    /// Go on although the volume is dirty, hibernated or was left by Fast Startup.
    pub force_volume_state: bool,
    /// Go on although a hive is dirty and its logs cannot be replayed.
    pub force_dirty_hive: bool,
    /// Go on although TxR holds pending registry transactions.
    pub force_txr: bool,
    /// Go on although the machine is joined to a domain (the domain SID is never rewritten).
    pub force_domain_joined: bool,
    /// Informational: the caller will discard the journal (recorded in the report).
    pub dry_run: bool,
    /// Do not scrub the hives ([`Hive::scrub`]): free cells and the slack of cells keep
    /// whatever they held, old SIDs included.
    pub no_scrub: bool,
    /// Leave the image in the state Sysprep `/generalize /oobe` leaves it in for its next
    /// boot (ImageState, `SYSTEM\Setup`; see [`crate::ops::provision`]).
    pub oobe: bool,
    /// An answer file to place (`Windows\Panther\unattend.xml` + `SYSTEM\Setup\UnattendFile`);
    /// checked with [`crate::provision::parse_unattend`] before anything is written.
    pub unattend: Option<crate::provision::InputFile>,
    /// An offline domain join blob for the specialize pass (needs [`Options::oobe`]).
    pub djoin_blob: Option<crate::provision::InputFile>,
    /// Commands and files run once as LocalSystem at the next boot, in this order.
    pub firstboot: Vec<crate::provision::FirstBoot>,
}

/// Where one change happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Change {
    /// An sk descriptor of a hive.
    HiveDescriptor {
        /// Hive path on the volume.
        hive: String,
        /// sk cell offset.
        cell: u32,
        /// SIDs rewritten in it.
        sids: usize,
    },
    /// A key renamed.
    KeyRenamed {
        /// Hive path on the volume.
        hive: String,
        /// Old key path.
        old: String,
        /// New key name.
        new: String,
    },
    /// A value's data rewritten (or a value renamed).
    Value {
        /// Hive path on the volume.
        hive: String,
        /// Key path (new names).
        key: String,
        /// Old value name.
        value: String,
        /// New value name (same as `value` unless renamed).
        new_name: String,
        /// SIDs rewritten in the data (binary + text).
        sids: usize,
        /// Old data (hex, first 64 bytes) for the report.
        old: String,
        /// New data (hex, first 64 bytes).
        new: String,
    },
    /// A key's class name rewritten.
    ClassName {
        /// Hive path on the volume.
        hive: String,
        /// Key path.
        key: String,
        /// Old class name.
        old: String,
        /// New class name.
        new: String,
    },
    /// A shared (`$Secure`) NTFS descriptor rewritten in place.
    NtfsDescriptor {
        /// `$Secure` security id.
        id: u32,
        /// SIDs rewritten in it.
        sids: usize,
        /// Files and directories using it.
        files: usize,
        /// One of them (the lowest MFT record), when any.
        example: Option<String>,
    },
    /// A file's own (legacy `$SECURITY_DESCRIPTOR`) descriptor rewritten in place.
    NtfsFileDescriptor {
        /// The file.
        path: String,
        /// Its MFT record.
        record: u64,
        /// SIDs rewritten in it.
        sids: usize,
    },
    /// `$Quota` SIDs.
    Quota {
        /// How many SIDs changed.
        count: usize,
    },
    /// A file or directory renamed.
    FileRenamed {
        /// Old path.
        old: String,
        /// New path.
        new: String,
    },
    /// A file's content rewritten (task XML).
    FileRewritten {
        /// Path.
        path: String,
        /// SID strings replaced.
        sids: usize,
        /// Old length.
        old_len: usize,
        /// New length.
        new_len: usize,
    },
    /// A hive file written back.
    HiveWritten {
        /// Hive path on the volume (`hive`, as in every other hive change).
        hive: String,
        /// Bytes written.
        bytes: usize,
        /// Old length.
        old_len: u64,
        /// New length.
        new_len: usize,
    },
    /// Unused bytes of a hive zeroed ([`Hive::scrub`]): free cells, slack after the used part
    /// of cells, bytes after the last hbin.
    HiveScrubbed {
        /// Hive path on the volume.
        hive: String,
        /// Free cells that held non-zero bytes.
        free_cells: usize,
        /// Allocated cells whose slack held non-zero bytes.
        slack_cells: usize,
        /// Bytes zeroed (that were not zero).
        bytes: usize,
    },
    /// A transaction log invalidated (truncated to 0 bytes).
    LogInvalidated {
        /// Path.
        path: String,
    },
    /// A computer-name value set.
    ComputerName {
        /// Hive path.
        hive: String,
        /// Key path.
        key: String,
        /// Value name.
        value: String,
        /// Old name (when readable).
        old: Option<String>,
        /// New name.
        new: String,
    },
    /// A value set by an operation other than `machine-sid`.
    ValueSet {
        /// The operation.
        operation: Operation,
        /// Hive path.
        hive: String,
        /// Key path.
        key: String,
        /// Value name.
        value: String,
        /// Old data (text for strings, else hex).
        old: String,
        /// New data.
        new: String,
    },
    /// A value deleted.
    ValueDeleted {
        /// The operation.
        operation: Operation,
        /// Hive path.
        hive: String,
        /// Key path.
        key: String,
        /// Value name.
        value: String,
        /// Old data (text for strings, else hex).
        old: String,
    },
    /// A key deleted with its subtree.
    KeyDeleted {
        /// The operation.
        operation: Operation,
        /// Hive path.
        hive: String,
        /// Key path.
        key: String,
    },
    /// A key renamed by an operation other than `machine-sid` (a new identifier as key name).
    KeyRenamedBy {
        /// The operation.
        operation: Operation,
        /// Hive path.
        hive: String,
        /// Old key path.
        old: String,
        /// New key name.
        new: String,
    },
    /// A file renamed by an operation other than `machine-sid`.
    FileMoved {
        /// The operation.
        operation: Operation,
        /// Old path.
        old: String,
        /// New path.
        new: String,
    },
    /// A file written (created, or replaced when `replaced`) by an operation.
    FileWritten {
        /// The operation.
        operation: Operation,
        /// Path.
        path: String,
        /// Its new size.
        size: u64,
        /// It existed and was replaced.
        replaced: bool,
    },
    /// A folder created by an operation.
    DirCreated {
        /// The operation.
        operation: Operation,
        /// Path.
        path: String,
    },
    /// A file deleted, its data overwritten with zeros first.
    FileDeleted {
        /// The operation.
        operation: Operation,
        /// Path.
        path: String,
        /// Its size.
        size: u64,
        /// Bytes overwritten with zeros.
        zeroed: u64,
    },
    /// The Volume Shadow Copy header's catalog offset set to 0 (no shadow copies), after the
    /// catalog and store files were deleted.
    ShadowCopiesCleared {
        /// The operation.
        operation: Operation,
        /// The catalog offset it held (volume bytes).
        old_catalog_offset: u64,
    },
}

/// Counters of the report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// sk cells rewritten.
    pub hive_descriptors: usize,
    /// Keys renamed.
    pub keys_renamed: usize,
    /// Values rewritten or renamed, and key class names rewritten.
    pub values: usize,
    /// NTFS descriptors rewritten.
    pub ntfs_descriptors: usize,
    /// `$Quota` SIDs rewritten.
    pub quota_sids: usize,
    /// Files or directories renamed.
    pub files_renamed: usize,
    /// Files rewritten.
    pub files_rewritten: usize,
    /// Hive files written.
    pub hives_written: usize,
    /// Computer-name values set.
    pub computer_name_values: usize,
    /// Identifier values and keys set, renamed or deleted (`machine-ids`, `rdp-certificate`).
    pub identifiers: usize,
    /// Files deleted by the cleanup operations.
    pub files_deleted: usize,
    /// Bytes overwritten with zeros before those deletions.
    pub bytes_zeroed: u64,
    /// Hives whose unused bytes were zeroed.
    pub hives_scrubbed: usize,
    /// Values set, folders made and files written or moved by `provision`.
    pub provisioned: usize,
}

/// What [`generalize`] did (or, for a dry run, would do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// Partition of the install.
    pub partition: u32,
    /// The old machine SID.
    pub old_sid: String,
    /// The new machine SID.
    pub new_sid: String,
    /// Old computer name (NetBIOS) when known.
    pub old_computer_name: Option<String>,
    /// New computer name, when one was asked for.
    pub new_computer_name: Option<String>,
    /// Dry run (as passed in [`Options::dry_run`]).
    pub dry_run: bool,
    /// Every operation, whether it ran and how many changes it made.
    pub operations: Vec<OperationSummary>,
    /// The old `MachineGuid`, when `machine-ids` replaced it.
    pub old_machine_guid: Option<String>,
    /// The new `MachineGuid`.
    pub new_machine_guid: Option<String>,
    /// Every change.
    pub changes: Vec<Change>,
    /// Counters.
    pub counts: Counts,
    /// Warnings (DPAPI, EFS, forced refusals, places not rewritten).
    pub warnings: Vec<Warning>,
}

/// Check a NetBIOS computer name: 1–15 characters, no spaces or `\ / : * ? " < > | , ~ ! @ # $
/// % ^ & ' . ( ) { } _`, not only digits, ASCII letters/digits/`-` only (reseal is stricter than
/// Windows, which also accepts some non-ASCII names, so that DNS and NetBIOS names agree).
///
/// # Errors
/// [`Error::Invalid`] naming the rule.
pub fn validate_computer_name(name: &str) -> Result<()> {
    let bad = |reason: String| {
        Err(Error::Invalid {
            what: "computer name",
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty".into());
    }
    if name.chars().count() > 15 {
        return bad(format!(
            "{name:?} has {} characters; NetBIOS names have at most 15",
            name.chars().count()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return bad(format!(
            "{name:?} contains {c:?}; use ASCII letters, digits and '-'"
        ));
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return bad(format!("{name:?} is only digits"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return bad(format!("{name:?} starts or ends with '-'"));
    }
    Ok(())
}

/// The provisioning options, checked (answer file parsed, blob decoded, first-boot items
/// named) before anything is read from the image or written.
fn provision_request(opts: &Options) -> Result<ops::provision::Request> {
    if opts.djoin_blob.is_some() && !opts.oobe {
        return Err(Error::Invalid {
            what: "--djoin-blob",
            reason: "needs --oobe (the blob is read by the specialize pass)".into(),
        });
    }
    let unattend = match &opts.unattend {
        Some(f) => Some(crate::provision::parse_unattend(&f.name, &f.data)?),
        None => None,
    };
    let djoin_blob = match &opts.djoin_blob {
        Some(f) => Some(crate::provision::parse_djoin_blob(&f.name, &f.data)?),
        None => None,
    };
    crate::provision::check_firstboot(&opts.firstboot)?;
    Ok(ops::provision::Request {
        oobe: opts.oobe,
        unattend,
        djoin_blob,
        firstboot: opts.firstboot.clone(),
    })
}

fn refused(r: Refusal) -> Error {
    Error::Refused(r)
}

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

/// A random account domain whose `X-Y-Z` have the same numbers of decimal digits as `old`'s, so
/// that every SID string keeps its length: string values, key names and task files do not
/// grow, and the root key of `UsrClass.dat` (`<SID>_Classes`) is renamed in place (tools such
/// as regipy find the root as the first cell of the first hbin, not through the base block).
fn random_sid(old: &Sid) -> Result<Sid> {
    use std::io::Read;
    let mut b = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::Invalid {
            what: "random SID",
            reason: format!("reading /dev/urandom: {e}"),
        })?;
    let olds = old.sub_authorities();
    let mut sub = [21u32, 0, 0, 0];
    for i in 0..3 {
        let r = u64::from_le_bytes([
            b[8 * i],
            b[8 * i + 1],
            b[8 * i + 2],
            b[8 * i + 3],
            b[8 * i + 4],
            b[8 * i + 5],
            b[8 * i + 6],
            b[8 * i + 7],
        ]);
        let digits = olds.get(i + 1).map_or(10, |v| v.to_string().len()) as u32;
        let lo: u64 = if digits <= 1 {
            1
        } else {
            10u64.pow(digits - 1)
        };
        let hi: u64 = (10u64.pow(digits) - 1).min(u64::from(u32::MAX));
        let v = lo + r % (hi - lo + 1);
        sub[i + 1] = u32::try_from(v).unwrap_or(u32::MAX);
    }
    Sid::new(5, &sub).map_err(|e| Error::Invalid {
        what: "random SID",
        reason: e.to_string(),
    })
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

pub(crate) fn ntfs_err(partition: u32, what: &str, e: reseal_ntfs::Error) -> Error {
    Error::Write {
        partition,
        what: what.to_string(),
        source: e,
    }
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

fn hive_err(hive: &str, source: reseal_hive::HiveError) -> Error {
    Error::Hive {
        hive: hive.to_string(),
        source,
    }
}

/// One hive to rewrite.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) path: String,
    pub(crate) hive: Hive,
    /// Whole file must be written (recovered from logs).
    whole: bool,
    old_len: u64,
}

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

/// A progress event of [`generalize_with_progress`]. Stages come in this order, each starting
/// with `done == 0`: `scan` (discovery, no total), `read-hives` (hives), `hives` (bytes of hive
/// rewritten in memory), `machine-ids` (no total), `write-hives` (hives), `descriptors`,
/// `quota` (no total), `tasks` (task files), `names` (no total), then one stage per cleanup
/// operation that runs, named after it (`ssh-hostkeys`, `event-logs`, `swap-files`,
/// `setup-logs`, `restore-points`; no total). The SID stages are skipped without `machine-sid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The stage.
    pub stage: &'static str,
    /// Units done in this stage.
    pub done: u64,
    /// Units in this stage (0 when unknown).
    pub total: u64,
    /// The units are bytes (else items).
    pub bytes: bool,
}

/// `tell(stage, done, total)` for a [`Progress`] callback (the `hives` stage counts bytes).
fn teller<'a>(
    progress: &'a mut dyn FnMut(Progress),
) -> impl FnMut(&'static str, usize, usize) + 'a {
    move |stage, done, total| {
        progress(Progress {
            stage,
            done: done as u64,
            total: total as u64,
            bytes: stage == "hives",
        })
    }
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

/// What [`generalize`] reads before it writes anything, for any new SID and computer name:
/// the install and its refusals (forced ones as warnings), the partition, and every hive to
/// rewrite, parsed. [`prepare`] makes it once; [`generalize_prepared`] then generalizes any
/// number of images whose virtual disk is byte-identical to the one it was read from (a
/// differencing child or a full copy made just before), each with its own SID and name, and
/// gives the same result as [`generalize`] on that image would: every later step, which reads
/// and writes the image itself, is the same code. The write phase's own reads that do not
/// depend on the new SID (see [`Caches`]) are kept here by the first image and reused.
#[derive(Debug)]
pub struct Prepared {
    install: WindowsInstall,
    old_sid: Sid,
    partition: u32,
    start: u64,
    len: u64,
    /// The virtual size of the image read (a mismatch means another image).
    image_len: u64,
    targets: Vec<Target>,
    warnings: Vec<Warning>,
    caches: Caches,
}

/// Reads of the write phase that are the same for every new SID, kept by [`Prepared`] once
/// the first image made them. Each is made at a point where the write phase has changed
/// nothing it depends on, so the value read from any clone equals the value read from the
/// base: which files name which `$Secure` id (hive writes and descriptor rewrites keep every
/// id), file paths by record (nothing is renamed before the renames), and which names hold the
/// old SID (matched on the old SID alone).
#[derive(Debug, Default)]
struct Caches {
    /// The volume's MFT in one pass ([`WindowsInstall`]'s, read before anything was written):
    /// which files name which `$Secure` id, and file paths by record.
    catalog: std::sync::OnceLock<std::sync::Arc<reseal_ntfs::catalog::Catalog>>,
    /// Paths whose last component holds the old SID, and the warnings of the search.
    sid_names: std::sync::OnceLock<(Vec<String>, Vec<Warning>)>,
}

impl Prepared {
    /// The machine SID every image generalized from this plan starts with.
    pub fn old_sid(&self) -> &Sid {
        &self.old_sid
    }
}

/// The read phase of [`generalize`] on `image` (refusals included; nothing is written).
/// `opts` is what every [`generalize_prepared`] call will take apart from `new_sid` (random
/// each time, or given) and `computer_name`; its other fields must not change in between.
///
/// # Errors
/// As [`generalize`] (options, refusals, reads).
pub fn prepare(
    image: &mut Image,
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Prepared> {
    check_options(opts)?;
    read_phase(image, opts, progress)
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

/// The options' own checks, before anything is read: the computer name (drawn when
/// `random`) and the provisioning request.
fn check_options(opts: &Options) -> Result<(Option<String>, ops::provision::Request)> {
    let ops = &opts.operations;
    let computer_name = match &opts.computer_name {
        Some(n) if n.eq_ignore_ascii_case("random") => Some(computer_name::random_name()?),
        Some(n) => {
            validate_computer_name(n)?;
            Some(n.clone())
        }
        None => None,
    };
    let provision = provision_request(opts)?;
    if !provision.is_empty() && !ops.contains(Operation::Provision) {
        return Err(Error::Invalid {
            what: "operations",
            reason: "--oobe, --unattend, --djoin-blob or --firstboot* are given but the \
                     provision operation is not selected"
                .into(),
        });
    }
    if computer_name.is_some() && !ops.contains(Operation::ComputerName) {
        return Err(Error::Invalid {
            what: "operations",
            reason: "a computer name is given but the computer-name operation is not selected"
                .into(),
        });
    }
    Ok((computer_name, provision))
}

/// The new SID's checks against the install, and its map.
fn new_sid_map(install: &WindowsInstall, old_sid: &Sid, new_sid: &Sid) -> Result<SidMap> {
    if new_sid == old_sid {
        return Err(Error::Invalid {
            what: "new SID",
            reason: format!("{new_sid} is the current machine SID"),
        });
    }
    if install
        .domain
        .domain_sid
        .as_deref()
        .is_some_and(|d| d.eq_ignore_ascii_case(&new_sid.to_string()))
    {
        return Err(Error::Invalid {
            what: "new SID",
            reason: format!("{new_sid} is the SID of the domain the machine is joined to"),
        });
    }
    SidMap::new(old_sid.clone(), new_sid.clone()).map_err(|e| Error::Invalid {
        what: "new SID",
        reason: e.to_string(),
    })
}

fn read_phase(
    image: &mut Image,
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Prepared> {
    let mut tell = teller(progress);
    let sid_op = opts.operations.contains(Operation::MachineSid);
    tell("scan", 0, 0);
    let sc = scan(image)?;
    let mut warnings = Vec::new();
    for s in &sc.skipped {
        if s.kind == SkipKind::BitLocker {
            let r = Refusal::BitLocker {
                partition: s.partition,
            };
            if opts.force_bitlocker {
                warnings.push(Warning::new(
                    WarningCode::ForcedRefusal,
                    format!("forced: {r}"),
                ));
            } else {
                return Err(refused(r));
            }
        }
    }
    if let Some(p) = opts.partition {
        // Every volume of the image is either an install or a skipped volume.
        let mut have: Vec<u32> = sc
            .installs
            .iter()
            .map(|w| w.partition)
            .chain(sc.skipped.iter().map(|s| s.partition))
            .collect();
        have.sort_unstable();
        have.dedup();
        if !have.contains(&p) {
            return Err(refused(Refusal::NoSuchPartition {
                partition: p,
                partitions: have,
            }));
        }
    }
    let install: WindowsInstall = {
        let partitions: Vec<u32> = sc.installs.iter().map(|w| w.partition).collect();
        let mut c: Vec<WindowsInstall> = sc
            .installs
            .into_iter()
            .filter(|w| opts.partition.is_none_or(|p| p == w.partition))
            .collect();
        match c.len() {
            1 => c.remove(0),
            0 => return Err(refused(Refusal::NoInstall)),
            _ => return Err(refused(Refusal::ManyInstalls { partitions })),
        }
    };
    let partition = install.partition;
    // Machine SID and agreement.
    let (sam_sid, lsa_sid) = (&install.sam_machine_sid, &install.lsa_machine_sid);
    let old_text = match (sam_sid, lsa_sid) {
        (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b) => {
            return Err(refused(Refusal::SidMismatch {
                sam: a.clone(),
                security: b.clone(),
            }))
        }
        (Some(a), _) => a.clone(),
        (None, Some(b)) => b.clone(),
        (None, None) => return Err(refused(Refusal::NoMachineSid)),
    };
    let old_sid: Sid = old_text.parse().map_err(|e| Error::Invalid {
        what: "machine SID",
        reason: format!("{old_text}: {e}"),
    })?;
    if install.domain.domain_controller
        || install
            .domain
            .domain_sid
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(&old_text))
    {
        return Err(refused(Refusal::DomainController));
    }
    if install.domain.joined {
        let r = Refusal::DomainMember {
            domain: install.domain.name.clone(),
            domain_sid: install.domain.domain_sid.clone(),
        };
        if opts.force_domain_joined {
            warnings.push(Warning::new(
                WarningCode::ForcedRefusal,
                format!("forced: {r}"),
            ));
        } else {
            return Err(refused(r));
        }
    }
    if install.txr.pending {
        let r = Refusal::PendingTxR {
            files: install.txr.files_with_content.clone(),
        };
        if opts.force_txr {
            warnings.push(Warning::new(
                WarningCode::ForcedRefusal,
                format!("forced: {r}"),
            ));
        } else {
            return Err(refused(r));
        }
    }
    for h in &install.hives {
        if let HiveState::DirtyWithoutUsableLogs { reason } = &h.state {
            let r = Refusal::DirtyHive {
                hive: h.path.clone(),
                reason: reason.clone(),
            };
            if opts.force_dirty_hive {
                warnings.push(Warning::new(
                    WarningCode::ForcedRefusal,
                    format!("forced: {r}"),
                ));
            } else {
                return Err(refused(r));
            }
        }
    }
    if !install.dpapi.is_empty() {
        warnings.push(Warning::new(
            WarningCode::DpapiMasterKeys,
            format!(
            "DPAPI master keys exist for {} account(s) ({}): secrets protected by them are bound \
             to the old user SIDs and will no longer decrypt",
            install.dpapi.len(),
            install
                .dpapi
                .iter()
                .map(|d| d.sid.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        ));
    }
    if install.efs.count > 0 {
        warnings.push(Warning::new(
            WarningCode::EfsFiles,
            format!(
                "{} EFS-encrypted file(s) (e.g. {}): their keys are protected by DPAPI of the old \
             user SIDs",
                install.efs.count,
                install.efs.first.join(", ")
            ),
        ));
    }
    // A given SID is checked before the reads, as before the plan was split off.
    if let (true, NewSid::Given(s)) = (sid_op, &opts.new_sid) {
        new_sid_map(&install, &old_sid, s)?;
    }

    // Locate the partition.
    let (start, len) = if partition == 0 {
        (0, image.len())
    } else {
        let t = PartitionTable::read(&*image)?;
        let p = t
            .partitions
            .iter()
            .find(|p| p.number == partition)
            .ok_or_else(|| refused(Refusal::NoPartition { partition }))?;
        (p.start, p.len)
    };
    let mut slice = Slice::new(&mut *image, start, len)?;

    // Volume state and hive reads (read-only view).
    let mut targets: Vec<Target> = Vec::new();
    {
        let mut browse = reseal_ntfs::browse::Volume::open(&mut slice)
            .map_err(|source| Error::Ntfs { partition, source })?;
        let state = VolumeState::from_volume(&mut browse)
            .map_err(|source| Error::Ntfs { partition, source })?;
        if let Some(r) = volume_refusal(&state, partition) {
            if opts.force_volume_state {
                warnings.push(Warning::new(
                    WarningCode::ForcedRefusal,
                    format!("forced: {r}"),
                ));
            } else {
                return Err(refused(r));
            }
        }
        let mut paths: Vec<(String, String)> = crate::HIVE_NAMES
            .iter()
            .map(|n| ("Windows/System32/config".to_string(), (*n).to_string()))
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
        // Other hives: the rest of `config` (COMPONENTS, DRIVERS, BBI, ELAM, ...) and the
        // service profiles' NTUSER.DAT. Best effort: one that cannot be used is skipped with a
        // warning instead of refusing.
        let config = "Windows/System32/config";
        let listed = browse.list(config).unwrap_or_else(|err| {
            warnings.push(
                Warning::new(
                    WarningCode::Unreadable,
                    format!(
                        "/{config}: not listed ({err}); hives other than the standard ones there \
                         are not rewritten"
                    ),
                )
                .at(format!("/{config}")),
            );
            Vec::new()
        });
        {
            for e in listed {
                let known = crate::HIVE_NAMES
                    .iter()
                    .any(|h| h.eq_ignore_ascii_case(&e.name));
                if !e.is_dir && !known && !e.name.contains('.') && e.size >= 4096 {
                    paths.push((config.to_string(), e.name));
                }
            }
        }
        let sp = "Windows/ServiceProfiles";
        let mut unreadable = |what: &str, err: &dyn std::fmt::Display| {
            warnings.push(
                Warning::new(
                    WarningCode::Unreadable,
                    format!(
                        "/{sp}: {what} ({err}); service profiles' NTUSER.DAT are not rewritten"
                    ),
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
                        format!(
                            "/{d}/NTUSER.DAT: not readable ({err}); it keeps any old SID it holds"
                        ),
                    )
                    .at(format!("/{d}/NTUSER.DAT")),
                ),
            }
        }
        let mut errors = Vec::new();
        let np = paths.len();
        for (i, (dir, name)) in paths.into_iter().enumerate() {
            tell("read-hives", i, np);
            let o = open_hive(&mut browse, &dir, &name, &mut errors);
            if i >= required {
                let usable = matches!(
                    o.info.state,
                    HiveState::Clean | HiveState::DirtyReplayed { .. }
                ) || (opts.force_dirty_hive
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
                    return Err(refused(Refusal::HiveUnreadable {
                        hive: o.info.path.clone(),
                        state: format!("{:?}", o.info.state),
                    }));
                }
                continue;
            };
            let hive = if matches!(o.info.state, HiveState::DirtyWithoutUsableLogs { .. }) {
                // Forced (checked above): the primary is taken as is, marked clean.
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
    }

    if sid_op {
        // The SID rewrite makes every hive writable first (indexing its free cells): done
        // here, once per plan. One that refuses stays read-only and fails there as before.
        for t in &mut targets {
            let _ = t.hive.make_writable();
        }
    }
    let catalog = install.catalog.clone();
    Ok(Prepared {
        install,
        old_sid,
        partition,
        start,
        len,
        image_len: image.len(),
        targets,
        warnings,
        caches: Caches {
            catalog: catalog.map(Into::into).unwrap_or_default(),
            sid_names: Default::default(),
        },
    })
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
    let sid_op = ops.contains(Operation::MachineSid);
    let Prepared {
        install,
        old_sid,
        partition,
        start,
        len,
        ..
    } = prep;
    let partition = *partition;
    let (start, len) = (*start, *len);
    let new_sid = match &opts.new_sid {
        _ if !sid_op => old_sid.clone(),
        NewSid::Random => {
            let mut s = random_sid(old_sid)?;
            while s == *old_sid {
                s = random_sid(old_sid)?;
            }
            s
        }
        NewSid::Given(s) => s.clone(),
    };
    let map = if sid_op {
        Some(new_sid_map(install, old_sid, &new_sid)?)
    } else {
        None
    };
    let mut slice = Slice::new(&mut *image, start, len)?;

    let mut changes = Vec::new();
    let mut counts = Counts::default();
    // Hives, in memory.
    let nt = targets.len();
    let hive_bytes: usize = targets.iter().map(|t| t.hive.as_bytes().len()).sum();
    let mut done = 0;
    tell("hives", 0, hive_bytes);
    for t in targets.iter_mut() {
        let len = t.hive.as_bytes().len();
        if let Some(map) = &map {
            let label = format!("/{}", t.path);
            rewrite_hive_sids(
                &mut t.hive,
                &label,
                map,
                &mut changes,
                &mut counts,
                &mut warnings,
            )?;
        }
        done += len;
        tell("hives", done, hive_bytes);
    }
    let mut guid = machine_ids::GuidChange::default();
    let mut provision_files = None;
    {
        let mut log = Log {
            changes: &mut changes,
            counts: &mut counts,
            warnings: &mut warnings,
        };
        if let Some(name) = &computer_name {
            computer_name::apply(
                &mut targets,
                name,
                install.computer.netbios.as_deref(),
                &mut log,
            )?;
        }
        if ops.contains(Operation::MachineIds) {
            tell("machine-ids", 0, 0);
            guid = machine_ids::apply_hives(&mut targets, &mut log)?;
        }
        if ops.contains(Operation::RdpCertificate) {
            rdp::apply_hives(&mut targets, &mut log)?;
        }
        if !provision.is_empty() {
            provision_files = Some(ops::provision::apply_hives(
                &mut targets,
                &provision,
                &mut log,
            )?);
        }
    }
    if !opts.no_scrub {
        for t in targets.iter_mut() {
            scrub_hive(t, map.as_ref(), &mut changes, &mut counts, &mut warnings);
        }
    }

    // Writes through the NTFS engine (staged in the image journal).
    let mut vol =
        reseal_ntfs::Volume::open(&mut slice).map_err(|e| ntfs_err(partition, "open", e))?;
    for (i, t) in targets.iter_mut().enumerate() {
        tell("write-hives", i, nt);
        if !t.hive.is_modified() {
            // Nothing to change (a hive recovered from its logs stays as it is on disk, logs
            // included: Windows replays them as before).
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
        for path in invalidate_logs(&mut vol, partition, &t.path)? {
            changes.push(Change::LogInvalidated { path });
        }
    }

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
    {
        let mut log = Log {
            changes: &mut changes,
            counts: &mut counts,
            warnings: &mut warnings,
        };
        // The RDP key file goes before the machine keys are renamed (it is found by the old
        // suffix as well as the new, but deleting first saves a rename).
        if ops.contains(Operation::RdpCertificate) {
            rdp::apply_files(&mut vol, partition, &mut log)?;
        }
        if ops.contains(Operation::MachineIds) {
            machine_ids::rename_machine_keys(&mut vol, partition, &guid, &mut log)?;
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
                cleanup::apply(&mut vol, partition, op, &mut log)?;
            }
        }
        // After setup-logs, which empties Windows\Panther.
        if let Some(files) = &provision_files {
            tell("provision", 0, 0);
            ops::provision::apply_files(
                &mut vol,
                partition,
                files,
                !provision.firstboot.is_empty(),
                &mut log,
            )?;
        }
    }
    vol.flush().map_err(|e| ntfs_err(partition, "flush", e))?;

    Ok(Report {
        partition,
        old_sid: old_sid.to_string(),
        new_sid: new_sid.to_string(),
        old_computer_name: install.computer.netbios.clone(),
        new_computer_name: computer_name.clone(),
        dry_run: opts.dry_run,
        operations: Operation::ALL
            .into_iter()
            .map(|op| OperationSummary {
                name: op,
                section: op.section().to_string(),
                enabled: ops.contains(op)
                    && (op != Operation::ComputerName || computer_name.is_some())
                    && (op != Operation::Provision || !provision.is_empty()),
                changes: changes.iter().filter(|c| c.operation() == Some(op)).count(),
            })
            .collect(),
        old_machine_guid: guid.old,
        new_machine_guid: guid.new,
        changes,
        counts,
        warnings,
    })
}

/// The NTFS part of `machine-sid`: descriptors, `$Quota`, task XML, SID-named entries.
#[allow(clippy::too_many_arguments)]
fn sid_files<D: reseal_disk::Device>(
    vol: &mut reseal_ntfs::Volume<D>,
    partition: u32,
    map: &SidMap,
    caches: &Caches,
    changes: &mut Vec<Change>,
    counts: &mut Counts,
    warnings: &mut Vec<Warning>,
    tell: &mut dyn FnMut(&'static str, usize, usize),
) -> Result<()> {
    // NTFS descriptors.
    tell("descriptors", 0, 0);
    let mut sd_changes = Vec::new();
    let catalog = caches
        .catalog
        .get_or_init(|| std::sync::Arc::new(vol.catalog()));
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
    counts.ntfs_descriptors = n;
    let users = if sd_changes.is_empty() {
        std::collections::BTreeMap::new()
    } else {
        catalog.security_id_users()
    };
    let path_of = |record: u64| catalog.path_of(record).map(|p| format!("/{p}"));
    for (at, sids) in sd_changes {
        changes.push(match at {
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
    tell("quota", 0, 0);
    let q = vol
        .rewrite_quota_sids_with(
            |sid| {
                let mut b = sid.to_vec();
                (map.replace_binary(&mut b) > 0).then_some(b)
            },
            |s| skipped.push(s),
        )
        .map_err(|e| ntfs_err(partition, "$Quota", e))?;
    for s in skipped {
        warnings.push(Warning::new(
            WarningCode::NtfsSkipped,
            format!("partition {partition}: {s}"),
        ));
    }
    if q > 0 {
        counts.quota_sids = q;
        changes.push(Change::Quota { count: q });
    }

    // Task XML.
    let mut tasks = Vec::new();
    collect_files(vol, "Windows/System32/Tasks", &mut tasks, warnings, 0);
    let ntasks = tasks.len();
    for (i, path) in tasks.into_iter().enumerate() {
        tell("tasks", i, ntasks);
        let data = match vol.read_file(&path) {
            Ok(d) => d,
            Err(err) => {
                warnings.push(
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
        counts.files_rewritten += 1;
        changes.push(Change::FileRewritten {
            path: format!("/{path}"),
            sids: k,
            old_len: data.len(),
            new_len: new.len(),
        });
    }

    // Names containing the old SID (deepest first so parent paths stay valid).
    tell("names", 0, 0);
    let (names, walk_warnings) = caches.sid_names.get_or_init(|| {
        let mut w = Vec::new();
        let found = crate::volume_names::sid_named_entries(catalog, map, &mut w);
        (found.into_iter().map(|(from, _)| from).collect(), w)
    });
    warnings.extend(walk_warnings.iter().cloned());
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
        counts.files_renamed += 1;
        changes.push(Change::FileRenamed {
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
    vol: &reseal_ntfs::Volume<D>,
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
/// included). What [`generalize`] does to each hive, and `reseal reg sid` to one hive file.
/// Makes the hive writable; the caller scrubs ([`Hive::scrub`]) and commits. Changes are
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
fn scrub_hive(
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

    /// A report with one change of every kind (and a warning of each shape) goes through JSON
    /// and comes back equal: `Report` is `Deserialize` for programs that read `--json`.
    #[test]
    fn report_round_trips_through_json() {
        let s = |x: &str| x.to_string();
        let op = Operation::MachineIds;
        let changes = vec![
            Change::HiveDescriptor {
                hive: s("/h"),
                cell: 0x20,
                sids: 2,
            },
            Change::KeyRenamed {
                hive: s("/h"),
                old: s("a\\b"),
                new: s("c"),
            },
            Change::Value {
                hive: s("/h"),
                key: s("k"),
                value: s("v"),
                new_name: s("w"),
                sids: 1,
                old: s("00"),
                new: s("01"),
            },
            Change::ClassName {
                hive: s("/h"),
                key: s("k"),
                old: s("o"),
                new: s("n"),
            },
            Change::NtfsDescriptor {
                id: 256,
                sids: 1,
                files: 3,
                example: Some(s("/x")),
            },
            Change::NtfsFileDescriptor {
                path: s("/f"),
                record: 40,
                sids: 1,
            },
            Change::Quota { count: 2 },
            Change::FileRenamed {
                old: s("/a"),
                new: s("/b"),
            },
            Change::FileRewritten {
                path: s("/t"),
                sids: 1,
                old_len: 10,
                new_len: 12,
            },
            Change::HiveWritten {
                hive: s("/h"),
                bytes: 4096,
                old_len: 8192,
                new_len: 8192,
            },
            Change::HiveScrubbed {
                hive: s("/h"),
                free_cells: 1,
                slack_cells: 2,
                bytes: 3,
            },
            Change::LogInvalidated { path: s("/h.LOG1") },
            Change::ComputerName {
                hive: s("/h"),
                key: s("k"),
                value: s("v"),
                old: None,
                new: s("N"),
            },
            Change::ValueSet {
                operation: op,
                hive: s("/h"),
                key: s("k"),
                value: s("v"),
                old: s("o"),
                new: s("n"),
            },
            Change::ValueDeleted {
                operation: op,
                hive: s("/h"),
                key: s("k"),
                value: s("v"),
                old: s("o"),
            },
            Change::KeyDeleted {
                operation: op,
                hive: s("/h"),
                key: s("k"),
            },
            Change::KeyRenamedBy {
                operation: op,
                hive: s("/h"),
                old: s("k"),
                new: s("n"),
            },
            Change::FileMoved {
                operation: op,
                old: s("/a"),
                new: s("/b"),
            },
            Change::FileDeleted {
                operation: Operation::EventLogs,
                path: s("/e"),
                size: 9,
                zeroed: 9,
            },
        ];
        let r = Report {
            partition: 2,
            old_sid: s("S-1-5-21-1-2-3"),
            new_sid: s("S-1-5-21-4-5-6"),
            old_computer_name: Some(s("OLD")),
            new_computer_name: None,
            dry_run: true,
            operations: Operation::ALL
                .into_iter()
                .map(|o| OperationSummary {
                    name: o,
                    section: o.section().to_string(),
                    enabled: true,
                    changes: 1,
                })
                .collect(),
            old_machine_guid: Some(s("0a1b2c3d-0000-4000-8000-000000000000")),
            new_machine_guid: None,
            changes,
            counts: Counts {
                hive_descriptors: 1,
                bytes_zeroed: 9,
                ..Counts::default()
            },
            warnings: vec![
                Warning::new(WarningCode::DpapiMasterKeys, "dpapi"),
                Warning::new(WarningCode::Unreadable, "/x: not readable").at("/x"),
                s("plain").into(),
            ],
        };
        let text = serde_json::to_string(&r).expect("serialize");
        let back: Report = serde_json::from_str(&text).expect("deserialize");
        assert_eq!(back, r);
        // The wire names: snake_case kinds and codes, kebab-case operation names (the
        // `--operations` names).
        let v = serde_json::to_value(&r).expect("value");
        assert_eq!(v["changes"][0]["kind"], "hive_descriptor");
        assert_eq!(v["changes"][13]["operation"], "machine-ids");
        assert_eq!(v["warnings"][1]["code"], "unreadable");
        assert_eq!(v["warnings"][1]["location"], "/x");
        assert_eq!(v["warnings"][2]["code"], "other");
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
