//! Read-only consistency checks below the file system, in the spirit of `qemu-img check`: the
//! container (what opening validates, plus qcow2 reference counts) and the partition table
//! (GPT header and entry-array CRCs of both copies, partitions out of range or overlapping).
//!
//! Nothing here writes; every problem names the structure and, when it has one, its byte offset.

use std::path::{Path, PathBuf};

use crate::partition::{PartitionTable, Scheme};
use crate::{ContainerKind, Device, Error, Image, ImageFormat, OpenOptions};

/// How serious a problem is (qemu-img check's classes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Corruption: data may be misread or lost.
    Error,
    /// Space allocated but not used (qcow2 leaked clusters): harmless, wastes space.
    Leak,
    /// An oddity other readers tolerate (a damaged redundant copy, a hybrid MBR).
    Warning,
}

/// One problem found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Severity.
    pub severity: Severity,
    /// The structure, e.g. "qcow2 refcount block", "GPT header".
    pub structure: String,
    /// Byte offset of the structure in the image file (container) or on the virtual disk.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl Problem {
    /// A problem from an error of this crate (its structure and offset when it has them).
    pub fn from_error(e: &Error, severity: Severity) -> Problem {
        match e {
            Error::Corrupt {
                structure,
                offset,
                reason,
            } => Problem {
                severity,
                structure: structure.clone(),
                offset: Some(*offset),
                message: reason.clone(),
            },
            Error::Unsupported {
                structure,
                offset,
                reason,
            } => Problem {
                severity,
                structure: structure.clone(),
                offset: Some(*offset),
                message: format!("unsupported: {reason}"),
            },
            other => Problem {
                severity,
                structure: "image".into(),
                offset: None,
                message: other.to_string(),
            },
        }
    }

    /// A problem from a warning text `"<structure> at offset 0x…: <reason>"` (the form the
    /// containers and the partition reader use); other texts keep `structure`.
    pub fn from_warning(text: &str, structure: &str, severity: Severity) -> Problem {
        if let Some((s, rest)) = text.split_once(" at offset 0x") {
            if let Some((hex, reason)) = rest.split_once(": ") {
                if let Ok(offset) = u64::from_str_radix(hex, 16) {
                    return Problem {
                        severity,
                        structure: s.to_string(),
                        offset: Some(offset),
                        message: reason.to_string(),
                    };
                }
            }
        }
        Problem {
            severity,
            structure: structure.to_string(),
            offset: None,
            message: text.to_string(),
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{} at offset {o:#x}: {}", self.structure, self.message),
            None => write!(f, "{}: {}", self.structure, self.message),
        }
    }
}

/// The container part of a check.
#[derive(Debug, Clone)]
pub struct ContainerCheck {
    /// The image file.
    pub path: PathBuf,
    /// Format, when the image opened.
    pub format: Option<ImageFormat>,
    /// Virtual disk size, when the image opened.
    pub virtual_size: Option<u64>,
    /// Size of the image file.
    pub file_size: Option<u64>,
    /// Backing / parent files, nearest first.
    pub backing_chain: Vec<PathBuf>,
    /// qcow2: clusters whose reference counts were compared (0 for other formats).
    pub clusters_checked: u64,
    /// Problems, in the order found.
    pub problems: Vec<Problem>,
}

/// Open `path` read-only (as `kind` when given) and check its container. Returns the image
/// when it opened, for the checks above it; an image that does not open is one problem (the
/// open error, with its structure and offset).
pub fn check_container(
    path: &Path,
    kind: Option<ContainerKind>,
    opts: &OpenOptions,
) -> (ContainerCheck, Option<Image>) {
    let mut c = ContainerCheck {
        path: path.to_path_buf(),
        format: None,
        virtual_size: None,
        file_size: std::fs::metadata(path).ok().map(|m| m.len()),
        backing_chain: Vec::new(),
        clusters_checked: 0,
        problems: Vec::new(),
    };
    let img = match Image::open_as(path, kind, opts) {
        Ok(i) => i,
        Err(e) => {
            c.problems.push(Problem::from_error(&e, Severity::Error));
            return (c, None);
        }
    };
    let info = img.info();
    c.format = Some(info.format);
    c.virtual_size = Some(info.virtual_size);
    c.file_size = Some(info.file_size);
    c.backing_chain = info.parent_chain.clone();
    for w in &info.warnings {
        c.problems
            .push(Problem::from_warning(w, "container", Severity::Warning));
    }
    let (checked, problems) = img.check_structures();
    c.clusters_checked = checked;
    c.problems.extend(problems);
    (c, Some(img))
}

/// The partition-table part of a check.
#[derive(Debug, Clone)]
pub struct TableCheck {
    /// The table, when it could be read.
    pub table: Option<PartitionTable>,
    /// Problems.
    pub problems: Vec<Problem>,
}

/// Check the partition table of `dev`: what reading it validates (MBR boot indicators, GPT
/// header and entry-array CRCs), the other GPT copy, and partitions that leave the disk, the
/// GPT's usable area, or overlap one another.
pub fn check_partition_table(dev: &dyn Device) -> TableCheck {
    let table = match PartitionTable::read(dev) {
        Ok(t) => t,
        Err(e) => {
            return TableCheck {
                table: None,
                problems: vec![Problem::from_error(&e, Severity::Error)],
            }
        }
    };
    let mut problems = Vec::new();
    for w in &table.warnings {
        // "primary GPT unusable (<error>); backup used": the primary copy is damaged.
        let sev = if w.starts_with("primary GPT unusable") {
            Severity::Error
        } else {
            Severity::Warning
        };
        let p = match w
            .strip_prefix("primary GPT unusable (")
            .and_then(|r| r.split_once("); backup"))
        {
            Some((inner, _)) => {
                let mut p = Problem::from_warning(inner, "GPT header", sev);
                p.message = format!("{} (the backup GPT was used)", p.message);
                p
            }
            None => Problem::from_warning(w, "partition table", sev),
        };
        problems.push(p);
    }
    let ss = u64::from(table.sector_size);
    if let Scheme::Gpt {
        backup_used,
        header_lba,
        alternate_lba,
        first_usable_lba,
        last_usable_lba,
        ..
    } = &table.scheme
    {
        // The copy that was not used must be valid and agree.
        let other = if *backup_used { 1 } else { *alternate_lba };
        match crate::partition::gpt_copy(dev, table.sector_size, other) {
            Ok(Some(parts)) => {
                if parts != table.partitions {
                    problems.push(Problem {
                        severity: Severity::Error,
                        structure: "GPT partition entry array".into(),
                        offset: Some(other * ss),
                        message: format!(
                            "the copy of header LBA {other} lists other partitions than the one of LBA {header_lba}"
                        ),
                    });
                }
            }
            Ok(None) => problems.push(Problem {
                severity: Severity::Error,
                structure: "GPT header".into(),
                offset: Some(other.saturating_mul(ss)),
                message: format!("no \"EFI PART\" header at LBA {other} (the other GPT copy)"),
            }),
            Err(e) if !*backup_used => problems.push(Problem::from_error(&e, Severity::Error)),
            Err(_) => {} // the primary's error is already reported above
        }
        for p in &table.partitions {
            let first = p.start / ss;
            let last = p.end().div_ceil(ss).saturating_sub(1);
            if first < *first_usable_lba || last > *last_usable_lba {
                problems.push(Problem {
                    severity: Severity::Error,
                    structure: format!("GPT partition entry {}", p.number),
                    offset: None,
                    message: format!(
                        "LBAs {first}..={last} outside the usable area {first_usable_lba}..={last_usable_lba}"
                    ),
                });
            }
        }
    }
    for p in &table.partitions {
        if p.end() > dev.len() {
            problems.push(Problem {
                severity: Severity::Error,
                structure: format!("partition {}", p.number),
                offset: Some(p.start),
                message: format!(
                    "ends at byte {} past the end of the {}-byte disk",
                    p.end(),
                    dev.len()
                ),
            });
        }
    }
    let vols: Vec<_> = table.volumes().collect();
    for (i, a) in vols.iter().enumerate() {
        for b in &vols[i + 1..] {
            if a.start < b.end() && b.start < a.end() {
                problems.push(Problem {
                    severity: Severity::Error,
                    structure: format!("partition {}", b.number),
                    offset: Some(b.start),
                    message: format!(
                        "overlaps partition {} (bytes {:#x}..{:#x} and {:#x}..{:#x})",
                        a.number,
                        a.start,
                        a.end(),
                        b.start,
                        b.end()
                    ),
                });
            }
        }
    }
    TableCheck {
        table: Some(table),
        problems,
    }
}
