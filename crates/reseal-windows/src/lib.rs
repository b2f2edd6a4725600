//! `reseal-windows`: find Windows installs inside a disk image and read the facts reseal needs
//! before it changes an identity: hive states, current control set, product and build,
//! computer names, machine SID (SAM and SECURITY), domain membership, local users, profiles,
//! DPAPI master-key folders, EFS-encrypted files and volume state.
//!
//! # Getting started
//! The examples use the committed fixture `fixtures/quickstart.vhdx` (a GPT disk with an NTFS
//! volume holding a Windows-like install; machine SID `S-1-5-21-1111111111-2222222222-3333333333`,
//! computer `WIN-FIXTURE01`). `docs/LIBRARY.md` walks through them.
//!
//! Find the install and read its identity (read-only):
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use reseal_disk::{Access, Image};
//! let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/quickstart.vhdx");
//! let mut img = Image::open(fixture.as_ref(), Access::ReadOnly)?;
//! let installs = reseal_windows::discover(&mut img)?;
//! let w = &installs[0];
//! assert_eq!(w.computer.netbios.as_deref(), Some("WIN-FIXTURE01"));
//! assert_eq!(w.machine_sid.as_deref(), Some("S-1-5-21-1111111111-2222222222-3333333333"));
//! for f in &w.findings {
//!     println!("{:?}: {}", f.severity, f.message);
//! }
//! # Ok(()) }
//! ```
//!
//! Read a hive out of the volume and a value out of the hive:
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use reseal_disk::partition::Slice;
//! use reseal_disk::{Access, Image};
//! let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/quickstart.vhdx");
//! let mut img = Image::open(fixture.as_ref(), Access::ReadOnly)?;
//! let partition = reseal_windows::discover(&mut img)?[0].partition;
//! let table = reseal_disk::partition::PartitionTable::read(&img)?;
//! let p = table.get(partition).expect("the install's partition");
//! let volume = reseal_ntfs::Volume::open(Slice::new(&mut img, p.start, p.len)?)?;
//! let bytes = volume.read_file("Windows/System32/config/SYSTEM")?;
//! let system = reseal_hive::Hive::from_bytes(bytes)?;
//! let key = system.open_path("ControlSet001\\Control\\ComputerName\\ComputerName")?;
//! let name = key.value("ComputerName")?.expect("value").as_string()?;
//! assert_eq!(name, "WIN-FIXTURE01");
//! # Ok(()) }
//! ```
//!
//! Generalize a copy in place: every write is staged in the image's journal and lands in one
//! [`reseal_disk::Image::commit`], which first writes the undo file `reseal undo` reads:
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use reseal_disk::{Access, Image};
//! use reseal_windows::generalize::{generalize, NewSid, Options};
//! let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/quickstart.vhdx");
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("machine.vhdx");
//! std::fs::copy(fixture, &path)?;
//!
//! let mut img = Image::open(&path, Access::ReadWrite)?;
//! let mut opts = Options::default();
//! opts.new_sid = NewSid::Given("S-1-5-21-10-20-30".parse()?);
//! opts.computer_name = Some("CLONE-0001".into());
//! let report = generalize(&mut img, &opts)?; // staged: nothing written yet
//! assert_eq!(report.old_sid, "S-1-5-21-1111111111-2222222222-3333333333");
//! println!("{} changes, {} warnings", report.changes.len(), report.warnings.len());
//! img.commit()?;
//! drop(img);
//!
//! let mut img = Image::open(&path, Access::ReadOnly)?;
//! let w = &reseal_windows::discover(&mut img)?[0];
//! assert_eq!(w.machine_sid.as_deref(), Some("S-1-5-21-10-20-30"));
//! assert_eq!(w.computer.netbios.as_deref(), Some("CLONE-0001"));
//! # Ok(()) }
//! ```
//!
//! Mint a clone without touching the golden image: create a differencing child and generalize
//! the child (the base is only read):
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use reseal_disk::children::{create_child, ChildFormat};
//! use reseal_disk::{Access, Image};
//! use reseal_windows::generalize::{generalize, Options};
//! let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/quickstart.vhdx");
//! let dir = tempfile::tempdir()?;
//! let base = dir.path().join("golden.vhdx");
//! std::fs::copy(fixture, &base)?;
//! let before = std::fs::read(&base)?;
//!
//! let child = dir.path().join("clone-1.qcow2");
//! create_child(&base, &child, ChildFormat::Qcow2)?; // backing file: golden.vhdx
//! let mut img = Image::open(&child, Access::ReadWrite)?;
//! let mut opts = Options::default(); // a random machine SID
//! opts.computer_name = Some("CLONE-1".into());
//! let report = generalize(&mut img, &opts)?;
//! img.commit()?;
//! drop(img);
//!
//! assert_ne!(report.new_sid, report.old_sid);
//! assert_eq!(std::fs::read(&base)?, before, "the base never changes");
//! # Ok(()) }
//! ```
//!
//! Discovery is read-only; hives whose primary file is dirty are recovered **in memory**
//! from their `.LOG1`/`.LOG2` (nothing is written back). The operations that write are
//! [`generalize`] (a new machine SID) and [`users`] (local accounts, with the SAM cryptography
//! of [`sam_crypto`]).
#![deny(missing_docs)]

pub mod audit;
pub mod check;
mod discover;
pub mod generalize;
pub mod hive_location;
pub mod layout;
pub mod ops;
pub mod provision;
mod refusal;
pub mod reg_import;
pub mod sam;
pub mod sam_crypto;
pub mod users;
mod volume_names;
pub mod volume_sid;
pub mod warning;

pub use discover::{
    discover, scan, ComputerNames, DomainMembership, DpapiFolder, EfsSummary, Finding, HiveInfo,
    HiveState, MachineIdentifiers, Product, Profile, Scan, Severity, SkipKind, SkippedVolume,
    TxrInfo, UserAccount, VolumeSummary, WindowsInstall, EFS_WALK_LIMIT, HIVE_NAMES,
};
pub use refusal::Refusal;
pub use warning::{Warning, WarningCode};

/// Errors of Windows discovery. Each names what it concerns (partition, hive, value).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The disk layer failed (container, partition table, I/O).
    #[error(transparent)]
    Disk(#[from] reseal_disk::Error),
    /// The NTFS volume could not be read.
    #[error("partition {partition}: {source}")]
    Ntfs {
        /// Partition number (0 = whole disk).
        partition: u32,
        /// Cause.
        #[source]
        source: reseal_ntfs::browse::BrowseError,
    },
    /// A hive could not be opened or read.
    #[error("hive {hive}: {source}")]
    Hive {
        /// Hive name (SAM, SYSTEM, ...) or path.
        hive: String,
        /// Cause.
        #[source]
        source: reseal_hive::HiveError,
    },
    /// The volume has no `Windows\System32\config` directory.
    #[error("partition {partition}: no Windows\\System32\\config directory")]
    NotWindows {
        /// Partition number (0 = whole disk).
        partition: u32,
    },
    /// An operation refused to write (see [`Refusal`] for the cases); nothing was written.
    /// The message names the option that overrides it, when one does.
    #[error("refused ({code}): {0}", code = .0.code())]
    Refused(Refusal),
    /// Reading the NTFS volume through the engine failed.
    #[error("partition {partition}: {what}: {source}")]
    Volume {
        /// Partition number (0 = whole disk).
        partition: u32,
        /// What was being read.
        what: &'static str,
        /// Cause.
        #[source]
        source: reseal_ntfs::Error,
    },
    /// The NTFS write engine failed.
    #[error("partition {partition}: {what}: {source}")]
    Write {
        /// Partition number (0 = whole disk).
        partition: u32,
        /// What was being written.
        what: String,
        /// Cause.
        #[source]
        source: reseal_ntfs::Error,
    },
    /// The SYSTEM hive's boot key does not decrypt the SAM (another machine's SYSTEM, or a
    /// syskey startup password); nothing was written.
    #[error("the boot key from SYSTEM does not decrypt this SAM: {reason}")]
    WrongBootKey {
        /// Which check failed.
        reason: String,
    },
    /// No local account has that name.
    #[error("no local account named {name:?} (accounts: {})", known.join(", "))]
    UnknownUser {
        /// The name asked for.
        name: String,
        /// The accounts that exist.
        known: Vec<String>,
    },
    /// Another local account already has that name.
    #[error("a local account named {name:?} already exists")]
    UserExists {
        /// The existing account's name.
        name: String,
    },
    /// The new account name is not one Windows accepts.
    #[error("{name:?} is not a valid account name: {reason}")]
    InvalidUserName {
        /// The name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A value or structure has an unexpected layout.
    #[error("{what}: {reason}")]
    Invalid {
        /// The structure ("SAM Domains\\Account\\V", ...).
        what: &'static str,
        /// Why.
        reason: String,
    },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where partition `partition` lies on `image` as `(start, len)` in bytes: the whole disk for
/// 0 (a volume without a partition table), else the entry of that number.
///
/// # Errors
/// [`Refusal::NoPartition`] when the table has no such entry; the table's read errors.
pub(crate) fn partition_window<D: reseal_disk::Device>(
    image: &D,
    partition: u32,
) -> Result<(u64, u64)> {
    if partition == 0 {
        return Ok((0, image.len()));
    }
    let t = reseal_disk::partition::PartitionTable::read(image)?;
    let p = t
        .get(partition)
        .ok_or(Error::Refused(Refusal::NoPartition { partition }))?;
    Ok((p.start, p.len))
}
