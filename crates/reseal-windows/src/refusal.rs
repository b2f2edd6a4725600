//! Why an operation refuses to write, as data: [`Refusal`] is carried by
//! [`Error::Refused`](crate::Error::Refused). Each refusal is decided before anything is written,
//! and its message names the `reseal generalize` option that overrides it (or says that nothing
//! does), so a caller never has to parse a message to know what happened.

use serde::Serialize;

/// One reason to refuse, with the facts that led to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "refusal", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Refusal {
    /// A volume of the image is BitLocker-encrypted (`-FVE-FS-`): its files keep the old SID.
    BitLocker {
        /// Partition number (0 = whole disk).
        partition: u32,
    },
    /// The volume is hibernated (`hiberfil.sys` holds a session).
    Hibernated {
        /// Partition number.
        partition: u32,
        /// The first four bytes of `hiberfil.sys`, as text.
        magic: String,
    },
    /// The volume was left by Windows Fast Startup (`$LogFile` restart page version 2.0).
    FastStartup {
        /// Partition number.
        partition: u32,
    },
    /// The volume was not shut down cleanly, is marked dirty, or its `$LogFile` cannot be read.
    Dirty {
        /// Partition number.
        partition: u32,
        /// What was found (`$LogFile has records to replay`, `$Volume dirty flag`, ...).
        detail: String,
    },
    /// A hive is dirty and its logs cannot be replayed.
    DirtyHive {
        /// Hive path on the volume.
        hive: String,
        /// Why the logs are unusable.
        reason: String,
    },
    /// A required hive exists but cannot be read.
    HiveUnreadable {
        /// Hive path on the volume.
        hive: String,
        /// Its state as discovery saw it.
        state: String,
    },
    /// TxR holds pending registry transactions.
    PendingTxR {
        /// TxR files with content.
        files: Vec<String>,
    },
    /// The machine is joined to a domain.
    DomainMember {
        /// Domain name, when known.
        domain: Option<String>,
        /// Domain SID, when known.
        domain_sid: Option<String>,
    },
    /// The machine is a domain controller: its machine SID is the domain SID.
    DomainController,
    /// SAM's and SECURITY's machine SIDs disagree.
    SidMismatch {
        /// SAM `Domains\Account\V` SID.
        sam: String,
        /// SECURITY `Policy\PolAcDmS` SID.
        security: String,
    },
    /// Neither SAM nor SECURITY holds a readable machine SID.
    NoMachineSid,
    /// No Windows install (on the selected partition).
    NoInstall,
    /// Several Windows installs and no partition chosen.
    ManyInstalls {
        /// Partitions holding an install.
        partitions: Vec<u32>,
    },
    /// The partition asked for (`--partition`) is not in the image.
    NoSuchPartition {
        /// The number asked for.
        partition: u32,
        /// The volumes the image has.
        partitions: Vec<u32>,
    },
    /// The partition of the install is gone from the partition table.
    NoPartition {
        /// Partition number.
        partition: u32,
    },
}

impl Refusal {
    /// A stable short code (`bitlocker`, `volume-state`, `hive-dirty`, `txr-pending`,
    /// `domain-joined`, `domain-controller`, `sid-mismatch`, ...), for scripts and exit codes.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::BitLocker { .. } => "bitlocker",
            Refusal::Hibernated { .. } | Refusal::FastStartup { .. } | Refusal::Dirty { .. } => {
                "volume-state"
            }
            Refusal::DirtyHive { .. } => "hive-dirty",
            Refusal::HiveUnreadable { .. } => "hive-unreadable",
            Refusal::PendingTxR { .. } => "txr-pending",
            Refusal::DomainMember { .. } => "domain-joined",
            Refusal::DomainController => "domain-controller",
            Refusal::SidMismatch { .. } => "sid-mismatch",
            Refusal::NoMachineSid => "no-machine-sid",
            Refusal::NoInstall => "no-install",
            Refusal::ManyInstalls { .. } => "many-installs",
            Refusal::NoPartition { .. } => "no-partition",
            Refusal::NoSuchPartition { .. } => "no-such-partition",
        }
    }

    /// The `reseal generalize` option that overrides this refusal, if any.
    pub fn override_flag(&self) -> Option<&'static str> {
        match self {
            Refusal::BitLocker { .. } => Some("--force-bitlocker"),
            Refusal::Hibernated { .. } | Refusal::FastStartup { .. } | Refusal::Dirty { .. } => {
                Some("--force-volume-state")
            }
            Refusal::DirtyHive { .. } => Some("--force-dirty-hive"),
            Refusal::PendingTxR { .. } => Some("--force-txr"),
            Refusal::DomainMember { .. } => Some("--force-domain-joined"),
            Refusal::ManyInstalls { .. } => Some("--partition"),
            Refusal::NoInstall => Some("--partition"),
            Refusal::HiveUnreadable { .. }
            | Refusal::DomainController
            | Refusal::SidMismatch { .. }
            | Refusal::NoMachineSid
            | Refusal::NoPartition { .. }
            | Refusal::NoSuchPartition { .. } => None,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::BitLocker { partition } => write!(
                f,
                "partition {partition} is BitLocker-encrypted (-FVE-FS-): its files would keep \
                 the old SID; --force-bitlocker goes on without it"
            ),
            Refusal::Hibernated { partition, magic } => write!(
                f,
                "partition {partition} is hibernated (hiberfil.sys starts with {magic:?}): boot \
                 Windows and shut it down fully (shutdown /s /t 0), or pass --force-volume-state \
                 and lose the hibernated session"
            ),
            Refusal::FastStartup { partition } => write!(
                f,
                "partition {partition} was left by Windows Fast Startup ($LogFile restart page \
                 2.0, metadata still cached in Windows): shut Windows down fully \
                 (shutdown /s /t 0), or pass --force-volume-state"
            ),
            Refusal::Dirty { partition, detail } => write!(
                f,
                "partition {partition} was not shut down cleanly ({detail}): run chkdsk /f in \
                 Windows, or pass --force-volume-state"
            ),
            Refusal::DirtyHive { hive, reason } => write!(
                f,
                "hive {hive} is dirty and its logs are unusable ({reason}); --force-dirty-hive \
                 rewrites the primary as it is"
            ),
            Refusal::HiveUnreadable { hive, state } => write!(
                f,
                "hive {hive} cannot be read ({state}); no option overrides this"
            ),
            Refusal::PendingTxR { files } => write!(
                f,
                "pending registry transactions in TxR ({}); --force-txr goes on",
                files.join(", ")
            ),
            Refusal::DomainMember { domain, domain_sid } => write!(
                f,
                "the machine is joined to domain {} ({}): its computer account and trust are \
                 bound to the old identity; --force-domain-joined goes on (the domain SID is \
                 never rewritten)",
                domain.as_deref().unwrap_or("(name unknown)"),
                domain_sid.as_deref().unwrap_or("SID unknown")
            ),
            Refusal::DomainController => write!(
                f,
                "this is a domain controller (its machine SID is the domain SID): never \
                 rewritten, no option overrides this"
            ),
            Refusal::SidMismatch { sam, security } => write!(
                f,
                "SAM machine SID {sam} and SECURITY PolAcDmS {security} disagree; no option \
                 overrides this"
            ),
            Refusal::NoMachineSid => write!(
                f,
                "the machine SID could not be read from SAM or SECURITY; no option overrides this"
            ),
            Refusal::NoInstall => write!(
                f,
                "no Windows install found (on the selected partition; --partition chooses one)"
            ),
            Refusal::ManyInstalls { partitions } => write!(
                f,
                "{} Windows installs (partitions {}): choose one with --partition",
                partitions.len(),
                partitions
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Refusal::NoPartition { partition } => write!(
                f,
                "partition {partition} vanished from the partition table; no option overrides this"
            ),
            Refusal::NoSuchPartition {
                partition,
                partitions,
            } => write!(
                f,
                "no partition {partition} (the image has partitions: {})",
                if partitions.is_empty() {
                    "none".to_string()
                } else {
                    partitions
                        .iter()
                        .map(u32::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        }
    }
}
