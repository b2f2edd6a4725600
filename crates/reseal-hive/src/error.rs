//! Error type of the hive engine: every failure names the structure and where it is.

use crate::CellOffset;

/// Result alias used throughout the crate.
pub type Result<T, E = HiveError> = std::result::Result<T, E>;

/// Everything that can go wrong while reading, editing, recovering or (de)serialising a hive.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HiveError {
    /// A structure inside the hive bins is malformed.
    #[error("{structure} at cell offset {:#x} (file offset {:#x}): {reason}", cell.0, cell.file_offset())]
    Corrupt {
        /// Structure name ("nk", "vk", "lf", "value list", ...).
        structure: &'static str,
        /// Offset of the cell (relative to the start of the hive bins).
        cell: CellOffset,
        /// What is wrong.
        reason: String,
    },
    /// The base block (first 4096 bytes) is unusable.
    #[error("base block: {reason}")]
    BadBaseBlock {
        /// What is wrong.
        reason: String,
    },
    /// An hbin header is malformed.
    #[error("hbin at file offset {file_offset:#x}: {reason}")]
    BadHbin {
        /// File offset of the hbin.
        file_offset: usize,
        /// What is wrong.
        reason: String,
    },
    /// A hard limit (depth, count, size) was exceeded; protects against hostile hives.
    #[error("limit exceeded at cell offset {:#x}: {what}", cell.0)]
    Limit {
        /// Which limit.
        what: &'static str,
        /// Where.
        cell: CellOffset,
    },
    /// A key or value path does not exist.
    #[error("not found: {path}")]
    NotFound {
        /// The missing path or name.
        path: String,
    },
    /// A key with that name already exists (case-insensitively).
    #[error("already exists: {name}")]
    AlreadyExists {
        /// Name that collides.
        name: String,
    },
    /// A caller-supplied argument is invalid (bad name, empty descriptor, ...).
    #[error("invalid argument: {reason}")]
    InvalidArgument {
        /// Why.
        reason: String,
    },
    /// An edit was attempted on a hive opened read-only.
    #[error("hive is read-only: call Hive::make_writable first")]
    ReadOnly,
    /// The hive is dirty (sequence numbers differ): replay its logs before editing.
    #[error("hive is dirty (seq1 {seq1} != seq2 {seq2}): recover it from its logs first")]
    Dirty {
        /// Primary sequence number.
        seq1: u32,
        /// Secondary sequence number.
        seq2: u32,
    },
    /// Transaction log problem (refused or unusable log).
    #[error("transaction log {log}: {reason}")]
    Log {
        /// Which log ("LOG1", "LOG2", "primary").
        log: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// `.reg` parse error.
    #[error(".reg line {line}: {reason}")]
    RegSyntax {
        /// 1-based line number.
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A feature this crate does not implement.
    #[error("unsupported: {what}")]
    Unsupported {
        /// What.
        what: String,
    },
}

impl HiveError {
    pub(crate) fn corrupt(
        structure: &'static str,
        cell: CellOffset,
        reason: impl Into<String>,
    ) -> Self {
        HiveError::Corrupt {
            structure,
            cell,
            reason: reason.into(),
        }
    }
}
