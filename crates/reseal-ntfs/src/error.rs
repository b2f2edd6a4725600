//! Errors of the NTFS write engine. Every structural error names the structure, the MFT record
//! (when the structure lives in one) and the byte offset.

/// Result alias of the write engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

fn rec(r: &Option<u64>) -> String {
    match r {
        Some(n) => format!(" in MFT record {n}"),
        None => String::new(),
    }
}

/// Where the byte offset of an [`Error::Corrupt`] counts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offset {
    /// From the start of the MFT record the error names (`record` is `Some`).
    Record(u64),
    /// From the start of the volume.
    Volume(u64),
    /// From the start of the stream the structure lives in (`$SDS`, `$INDEX_ALLOCATION`,
    /// `$Bitmap`, the `$MFT` data, an `$ATTRIBUTE_LIST` value, a compressed stream), a stream of
    /// the file `record` when that is `Some`; for a structure parsed on its own (an INDX block
    /// given to [`crate::index::parse_index_block`]), from the start of that structure.
    Stream(u64),
    /// No byte to point at: the structure as a whole is missing or inconsistent.
    Whole,
}

impl Offset {
    /// The offset `d` bytes further in the same frame ([`Offset::Whole`] stays whole).
    pub fn plus(self, d: u64) -> Offset {
        match self {
            Offset::Record(o) => Offset::Record(o.saturating_add(d)),
            Offset::Volume(o) => Offset::Volume(o.saturating_add(d)),
            Offset::Stream(o) => Offset::Stream(o.saturating_add(d)),
            Offset::Whole => Offset::Whole,
        }
    }

    /// Inside the MFT record when `record` is `Some`, else inside the stream or structure
    /// parsed (for parsers that serve both).
    pub(crate) fn inside(record: Option<u64>, o: u64) -> Offset {
        match record {
            Some(_) => Offset::Record(o),
            None => Offset::Stream(o),
        }
    }

    /// The byte offset, whatever its frame; `None` for [`Offset::Whole`].
    pub fn value(self) -> Option<u64> {
        match self {
            Offset::Record(o) | Offset::Volume(o) | Offset::Stream(o) => Some(o),
            Offset::Whole => None,
        }
    }
}

/// The ` at ...` part of a corruption message (empty for [`Offset::Whole`]).
fn at(o: &Offset) -> String {
    match o {
        Offset::Record(o) => format!(" at offset {o:#x}"),
        Offset::Volume(o) => format!(" at volume offset {o:#x}"),
        Offset::Stream(o) => format!(" at stream offset {o:#x}"),
        Offset::Whole => String::new(),
    }
}

/// What went wrong while reading or changing an NTFS volume.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The device below failed (I/O, out of bounds, read-only).
    #[error("device error at volume offset {offset:#x}: {source}")]
    Disk {
        /// Volume byte offset of the request.
        offset: u64,
        /// The disk-layer error.
        #[source]
        source: reseal_disk::Error,
    },
    /// An on-disk structure is malformed. `offset` says where, and from where it counts.
    #[error("corrupt {structure}{}{}: {reason}", rec(.record), at(.offset))]
    Corrupt {
        /// The structure, e.g. "MFT record header", "attribute header", "INDX block".
        structure: &'static str,
        /// The MFT record it lives in, if any.
        record: Option<u64>,
        /// Where in the record, the volume or the stream.
        offset: Offset,
        /// What is wrong.
        reason: String,
    },
    /// A valid structure or requested change this engine does not handle (yet). Nothing was
    /// written.
    #[error("unsupported{}: {what}", rec(.record))]
    Unsupported {
        /// The MFT record concerned, if any.
        record: Option<u64>,
        /// What is not supported.
        what: String,
    },
    /// A path component does not exist.
    #[error("not found: {path}")]
    NotFound {
        /// The path looked up.
        path: String,
    },
    /// The target name already exists.
    #[error("already exists: {path}")]
    AlreadyExists {
        /// The path.
        path: String,
    },
    /// The volume has no room left for the change.
    #[error("no space left on the volume for {what}")]
    NoSpace {
        /// What needed the room.
        what: &'static str,
    },
    /// A security descriptor or SDDL string was rejected by `reseal-security`.
    #[error("security descriptor of {path}: {source}")]
    Security {
        /// The file concerned.
        path: String,
        /// The parse/serialize error.
        #[source]
        source: reseal_security::Error,
    },
    /// A new name Windows could not open; `rule` says why.
    #[error("invalid name {name:?}: {rule}")]
    InvalidName {
        /// The refused name (one path component).
        name: String,
        /// The rule it breaks.
        rule: crate::name_rules::NameRule,
    },
    /// The source of a file's new data (a local file, a reader) failed or ended early.
    #[error("reading the data for {path} at byte {offset}: {source}")]
    Source {
        /// The volume path being written.
        path: String,
        /// Byte offset in the data where reading failed.
        offset: u64,
        /// The reader's error (`UnexpectedEof` when it ended early).
        #[source]
        source: std::io::Error,
    },
    /// The caller asked for something invalid (bad name, not a directory, non-empty directory...).
    #[error("invalid request: {0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn corrupt(
        structure: &'static str,
        record: Option<u64>,
        offset: Offset,
        reason: impl Into<String>,
    ) -> Self {
        Error::Corrupt {
            structure,
            record,
            offset,
            reason: reason.into(),
        }
    }
    pub(crate) fn unsupported(record: Option<u64>, what: impl Into<String>) -> Self {
        Error::Unsupported {
            record,
            what: what.into(),
        }
    }
}
