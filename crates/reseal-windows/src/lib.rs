//! `reseal-windows`: find Windows installs inside a disk image and read the facts reseal needs
//! before it changes an identity: hive states, current control set, product and build,
//! computer names, machine SID (SAM and SECURITY), domain membership, local users, profiles,
//! DPAPI master-key folders, EFS-encrypted files and volume state.
//!
//! # Getting started
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut img = reseal_disk::Image::open("disk.vhdx".as_ref(), reseal_disk::Access::ReadOnly)?;
//! for w in reseal_windows::discover(&mut img)? {
//!     println!("partition {}: {:?} {:?}", w.partition, w.computer.netbios, w.machine_sid);
//!     for f in &w.findings { println!("  {:?}: {}", f.severity, f.message); }
//! }
//! # Ok(()) }
//! ```
//!
//! Discovery is read-only; hives whose primary file is dirty are recovered **in memory**
//! from their `.LOG1`/`.LOG2` (nothing is written back). The operations that write are
//! [`generalize`] (a new machine SID) and [`users`] (local accounts, with the SAM cryptography
//! of [`sam_crypto`]).
#![deny(missing_docs)]

pub mod audit;
pub mod generalize;
mod install;
pub mod ops;
pub mod provision;
mod refusal;
pub mod sam;
pub mod sam_crypto;
pub mod users;
pub mod volume_sid;

pub use install::{
    discover, scan, ComputerNames, DomainMembership, DpapiFolder, EfsSummary, Finding, HiveInfo,
    HiveState, MachineIdentifiers, Product, Profile, Scan, Severity, SkipKind, SkippedVolume,
    TxrInfo, UserAccount, VolumeSummary, WindowsInstall, EFS_WALK_LIMIT, HIVE_NAMES,
};
pub use refusal::Refusal;

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
