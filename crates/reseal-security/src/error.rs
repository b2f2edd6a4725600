//! Error type of the security crate.

/// Result alias using [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Errors from parsing or encoding SIDs, descriptors and SDDL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A structure extends past the end of its buffer.
    #[error("truncated {what} at byte offset {offset}: need {need} bytes, {have} available")]
    Truncated {
        /// Structure being read.
        what: &'static str,
        /// Byte offset (relative to the start of the parsed buffer) where it starts.
        offset: usize,
        /// Bytes needed.
        need: usize,
        /// Bytes available from `offset`.
        have: usize,
    },
    /// A field holds a value that is not allowed.
    #[error("invalid {what} at byte offset {offset}: {reason}")]
    Invalid {
        /// Structure or field.
        what: &'static str,
        /// Byte offset (relative to the start of the parsed buffer).
        offset: usize,
        /// Explanation.
        reason: String,
    },
    /// Malformed SDDL or SID string.
    #[error("bad SDDL at character {position}: {reason}")]
    Syntax {
        /// Character (not byte) position in the input string, 0-based.
        position: usize,
        /// Explanation.
        reason: String,
    },
    /// Valid input that this crate (or SDDL) cannot express.
    #[error("unsupported: {0}")]
    Unsupported(String),
}

impl Error {
    pub(crate) fn truncated(what: &'static str, offset: usize, need: usize, len: usize) -> Self {
        Error::Truncated {
            what,
            offset,
            need,
            have: len.saturating_sub(offset),
        }
    }
    pub(crate) fn invalid(what: &'static str, offset: usize, reason: impl Into<String>) -> Self {
        Error::Invalid {
            what,
            offset,
            reason: reason.into(),
        }
    }
    /// Shift the byte offset of a parse error by `base` (for nested structures).
    pub(crate) fn shifted(self, base: usize) -> Self {
        match self {
            Error::Truncated {
                what,
                offset,
                need,
                have,
            } => Error::Truncated {
                what,
                offset: offset.saturating_add(base),
                need,
                have,
            },
            Error::Invalid {
                what,
                offset,
                reason,
            } => Error::Invalid {
                what,
                offset: offset.saturating_add(base),
                reason,
            },
            e => e,
        }
    }
}
