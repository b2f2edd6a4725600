//! What [`super::generalize`] reports: every [`Change`], the [`Counts`], the [`Report`] (the
//! `--json` data, `Serialize` and `Deserialize`) and the [`Progress`] events.

use serde::{Deserialize, Serialize};

use crate::ops::{Operation, OperationSummary, Operations};
use crate::warning::Warning;

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
    /// Unused bytes of a hive zeroed ([`Hive::scrub`](reseal_hive::Hive::scrub)): free cells, slack after the used part
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

/// What [`generalize`](super::generalize) did (or, for a dry run, would do).
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
    /// Dry run (as passed in [`Options::dry_run`](super::Options::dry_run)).
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

/// A progress event of [`generalize_with_progress`](super::generalize_with_progress). Stages come in this order, each starting
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
pub(super) fn teller<'a>(
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

/// Every operation, whether it ran and how many of `changes` it made. `computer-name` runs
/// only with a name, `provision` only with something to provision.
pub(super) fn operation_summaries(
    ops: &Operations,
    computer_name: bool,
    provision: bool,
    changes: &[Change],
) -> Vec<OperationSummary> {
    Operation::ALL
        .into_iter()
        .map(|op| OperationSummary {
            name: op,
            section: op.section().to_string(),
            enabled: ops.contains(op)
                && (op != Operation::ComputerName || computer_name)
                && (op != Operation::Provision || provision),
            changes: changes.iter().filter(|c| c.operation() == Some(op)).count(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::warning::WarningCode;

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
}
