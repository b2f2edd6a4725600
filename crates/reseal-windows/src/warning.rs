//! Typed warnings of the reports ([`crate::generalize::Report`],
//! [`crate::volume_sid::VolumeSidReport`]): a stable snake_case [`WarningCode`] for programs, the
//! human text, and where it happened when there is one place (a volume path, a hive path, a
//! key). The text form ([`std::fmt::Display`]) is the message alone, as the reports printed
//! before warnings were typed.
//!
//! New warnings name a code ([`Warning::new`], [`Warning::at`]); a plain `String` still converts
//! (`format!(..).into()`) with the code [`WarningCode::Other`].

use serde::{Deserialize, Serialize};

/// What a warning is about. Serialized in snake_case (`forced_refusal`, `unreadable`, ...);
/// new codes may be added, so readers should accept unknown ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum WarningCode {
    /// An unsafe state reseal went on through because a `--force…` option said so.
    ForcedRefusal,
    /// DPAPI master keys bound to the old user SIDs.
    DpapiMasterKeys,
    /// EFS-encrypted files whose keys DPAPI protects.
    EfsFiles,
    /// A folder, file, hive or class name that could not be read; what it holds is not changed.
    Unreadable,
    /// An optional hive skipped (unusable state); it keeps any old SID it holds.
    HiveSkipped,
    /// Folders or keys nested deeper than reseal walks.
    TooDeep,
    /// An NTFS descriptor or `$Quota` entry the engine skipped.
    NtfsSkipped,
    /// A SID string inside non-string registry data changed its length.
    SidLengthChanged,
    /// The root key of a hive moved to another cell when renamed.
    RootKeyMoved,
    /// A hive's unused bytes were not zeroed.
    NotScrubbed,
    /// A file that could not be deleted had its data overwritten with zeros instead.
    NotDeleted,
    /// A file's data could not be overwritten.
    NotOverwritten,
    /// A value had an unexpected size and was replaced anyway.
    UnexpectedValue,
    /// Anything else (warnings made from a plain `String`).
    Other,
}

impl WarningCode {
    /// The snake_case name, as in JSON.
    pub fn name(self) -> &'static str {
        match self {
            WarningCode::ForcedRefusal => "forced_refusal",
            WarningCode::DpapiMasterKeys => "dpapi_master_keys",
            WarningCode::EfsFiles => "efs_files",
            WarningCode::Unreadable => "unreadable",
            WarningCode::HiveSkipped => "hive_skipped",
            WarningCode::TooDeep => "too_deep",
            WarningCode::NtfsSkipped => "ntfs_skipped",
            WarningCode::SidLengthChanged => "sid_length_changed",
            WarningCode::RootKeyMoved => "root_key_moved",
            WarningCode::NotScrubbed => "not_scrubbed",
            WarningCode::NotDeleted => "not_deleted",
            WarningCode::NotOverwritten => "not_overwritten",
            WarningCode::UnexpectedValue => "unexpected_value",
            WarningCode::Other => "other",
        }
    }
}

impl std::fmt::Display for WarningCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One warning of a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// Stable code.
    pub code: WarningCode,
    /// Human-readable text (complete: it names the place too).
    pub message: String,
    /// Where, when there is one place: a `/`-rooted volume path (a file, a folder, a hive),
    /// optionally followed by `: ` and a key path below the hive's root.
    pub location: Option<String>,
}

impl Warning {
    /// A warning with no location.
    pub fn new(code: WarningCode, message: impl Into<String>) -> Warning {
        Warning {
            code,
            message: message.into(),
            location: None,
        }
    }

    /// The same warning located at `location`.
    #[must_use]
    pub fn at(mut self, location: impl Into<String>) -> Warning {
        self.location = Some(location.into());
        self
    }

    /// Whether the message contains `pat` (for tests and filters written for text warnings).
    pub fn contains(&self, pat: &str) -> bool {
        self.message.contains(pat)
    }
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for Warning {
    fn from(message: String) -> Warning {
        Warning::new(WarningCode::Other, message)
    }
}

impl From<&str> for Warning {
    fn from(message: &str) -> Warning {
        Warning::new(WarningCode::Other, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_serialize_as_their_names() {
        for c in [
            WarningCode::ForcedRefusal,
            WarningCode::DpapiMasterKeys,
            WarningCode::EfsFiles,
            WarningCode::Unreadable,
            WarningCode::HiveSkipped,
            WarningCode::TooDeep,
            WarningCode::NtfsSkipped,
            WarningCode::SidLengthChanged,
            WarningCode::RootKeyMoved,
            WarningCode::NotScrubbed,
            WarningCode::NotDeleted,
            WarningCode::NotOverwritten,
            WarningCode::UnexpectedValue,
            WarningCode::Other,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.name());
        }
    }

    #[test]
    fn text_is_the_message_and_strings_convert() {
        let path = "/x";
        let w: Warning = format!("{path}: not readable").into();
        assert_eq!(w.code, WarningCode::Other);
        assert_eq!(w.to_string(), "/x: not readable");
        let w = Warning::new(WarningCode::Unreadable, "m").at("/x");
        assert_eq!(w.location.as_deref(), Some("/x"));
        let back: Warning = serde_json::from_value(serde_json::to_value(&w).unwrap()).unwrap();
        assert_eq!(back, w);
    }
}
