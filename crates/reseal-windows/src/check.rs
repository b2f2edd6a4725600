//! `reseal check`: a read-only consistency report of a whole image, in the spirit of
//! `qemu-img check`, composed from the checks of the layers below — the container and the
//! partition table ([`reseal_disk::check`]), each NTFS volume ([`reseal_ntfs::check`]) and the
//! system hives of a Windows install ([`reseal_hive::check_file`]). Nothing is written.
//!
//! Every problem names its structure and, when it has one, a byte offset, whose frame depends
//! on the section: the image file (container), the virtual disk (partition table), the volume
//! (NTFS) or the hive file (hives).

use std::path::Path;

use reseal_disk::check as dcheck;
use reseal_disk::partition::Slice;
use reseal_disk::probe::{probe, FsInfo};
use reseal_disk::{ContainerKind, Device, Image, OpenOptions};
use reseal_ntfs::browse::Volume;
use reseal_ntfs::check as ncheck;
use serde::Serialize;

use crate::discover::HIVE_NAMES;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckSeverity {
    /// Corruption.
    Error,
    /// Allocated but unused space (qcow2 leaked clusters).
    Leak,
    /// A state or oddity that is not damage.
    Warning,
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckProblem {
    /// Severity.
    pub severity: CheckSeverity,
    /// The structure, e.g. "GPT header", "MFT record 37", "base block".
    pub structure: String,
    /// Byte offset (in the section's frame: image file, disk, volume or hive file).
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for CheckProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(o) => write!(f, "{} at offset {o:#x}: {}", self.structure, self.message),
            None => write!(f, "{}: {}", self.structure, self.message),
        }
    }
}

fn from_disk(p: dcheck::Problem) -> CheckProblem {
    CheckProblem {
        severity: match p.severity {
            dcheck::Severity::Error => CheckSeverity::Error,
            dcheck::Severity::Leak => CheckSeverity::Leak,
            dcheck::Severity::Warning => CheckSeverity::Warning,
        },
        structure: p.structure,
        offset: p.offset,
        message: p.message,
    }
}

/// The container section.
#[derive(Debug, Clone, Serialize)]
pub struct ContainerReport {
    /// The image file.
    pub path: String,
    /// Format (`qcow2`, `vhdx (dynamic)`, …), when the image opened.
    pub format: Option<String>,
    /// Virtual disk size.
    pub virtual_size: Option<u64>,
    /// Image file size.
    pub file_size: Option<u64>,
    /// Backing / parent files, nearest first.
    pub backing_chain: Vec<String>,
    /// qcow2: clusters whose reference counts were compared.
    pub clusters_checked: u64,
    /// Problems (offsets in the image file).
    pub problems: Vec<CheckProblem>,
}

/// The partition-table section.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// `mbr`, `gpt`, `none`, or `unreadable`.
    pub scheme: String,
    /// Partitions found.
    pub partitions: usize,
    /// GPT: the backup header had to be used.
    pub backup_header_used: bool,
    /// Problems (offsets on the virtual disk).
    pub problems: Vec<CheckProblem>,
}

/// One NTFS volume's section.
#[derive(Debug, Clone, Serialize)]
pub struct NtfsReport {
    /// Partition number (0: the whole disk).
    pub partition: u32,
    /// Start on the disk.
    pub start: u64,
    /// Whether the `$VOLUME_INFORMATION` dirty flag is set.
    pub dirty: Option<bool>,
    /// `hiberfil.sys` holds a hibernated session.
    pub hibernated: Option<bool>,
    /// `$LogFile` state (`clean`, `unclean`, `fast_startup`, `empty`, `unknown`).
    pub logfile: Option<String>,
    /// Backup boot sector: `matches`, `differs`, `missing`.
    pub boot_backup: Option<String>,
    /// MFT records examined.
    pub records_checked: u64,
    /// Of them in use.
    pub records_in_use: u64,
    /// In-use records whose fixups fail.
    pub fixup_failures: u64,
    /// Volume offsets of the first failing sectors.
    pub fixup_failure_offsets: Vec<u64>,
    /// In-use records that do not parse.
    pub record_errors: u64,
    /// Records compared with `$MFTMirr`.
    pub mirror_records: u64,
    /// Records where `$MFTMirr` differs.
    pub mirror_mismatches: Vec<u64>,
    /// No error found.
    pub consistent: bool,
    /// Problems (offsets on the volume).
    pub problems: Vec<CheckProblem>,
}

/// A volume that is not NTFS or could not be checked.
#[derive(Debug, Clone, Serialize)]
pub struct OtherVolume {
    /// Partition number.
    pub partition: u32,
    /// What it is.
    pub filesystem: String,
    /// Problems (BitLocker: a warning that it was not checked).
    pub problems: Vec<CheckProblem>,
}

/// One hive's section.
#[derive(Debug, Clone, Serialize)]
pub struct HiveReport {
    /// Partition of the install.
    pub partition: u32,
    /// SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT.
    pub name: String,
    /// Volume path.
    pub path: String,
    /// File size.
    pub size: u64,
    /// Base-block checksum is right.
    pub checksum_ok: Option<bool>,
    /// Primary sequence number.
    pub seq1: Option<u32>,
    /// Secondary sequence number.
    pub seq2: Option<u32>,
    /// Sequence numbers differ and a log file with content is beside the hive.
    pub logs_pending: bool,
    /// Problems (offsets in the hive file).
    pub problems: Vec<CheckProblem>,
}

/// Counts over every section.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct CheckSummary {
    /// Problems of severity error.
    pub errors: usize,
    /// Leaks.
    pub leaks: usize,
    /// Warnings.
    pub warnings: usize,
    /// No error and no leak.
    pub clean: bool,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The container.
    pub container: ContainerReport,
    /// The partition table (absent when the image did not open).
    pub partition_table: Option<TableReport>,
    /// NTFS volumes.
    pub ntfs: Vec<NtfsReport>,
    /// Other volumes.
    pub other_volumes: Vec<OtherVolume>,
    /// System hives of the Windows installs found.
    pub hives: Vec<HiveReport>,
    /// Counts.
    pub summary: CheckSummary,
}

impl CheckReport {
    fn all(&self) -> impl Iterator<Item = &CheckProblem> {
        self.container
            .problems
            .iter()
            .chain(self.partition_table.iter().flat_map(|t| &t.problems))
            .chain(self.ntfs.iter().flat_map(|v| &v.problems))
            .chain(self.other_volumes.iter().flat_map(|v| &v.problems))
            .chain(self.hives.iter().flat_map(|h| &h.problems))
    }
}

fn problem(
    sev: CheckSeverity,
    st: impl Into<String>,
    off: Option<u64>,
    m: impl Into<String>,
) -> CheckProblem {
    CheckProblem {
        severity: sev,
        structure: st.into(),
        offset: off,
        message: m.into(),
    }
}

/// Check the image at `path` (as container `kind` when given), read-only.
pub fn check_image(path: &Path, kind: Option<ContainerKind>, opts: &OpenOptions) -> CheckReport {
    let (c, img) = dcheck::check_container(path, kind, opts);
    let mut r = CheckReport {
        container: ContainerReport {
            path: c.path.display().to_string(),
            format: c.format.map(|f| f.to_string()),
            virtual_size: c.virtual_size,
            file_size: c.file_size,
            backing_chain: c
                .backing_chain
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            clusters_checked: c.clusters_checked,
            problems: c.problems.into_iter().map(from_disk).collect(),
        },
        partition_table: None,
        ntfs: Vec::new(),
        other_volumes: Vec::new(),
        hives: Vec::new(),
        summary: CheckSummary::default(),
    };
    if let Some(mut img) = img {
        check_disk(&mut img, &mut r);
    }
    let mut s = CheckSummary::default();
    for p in r.all() {
        match p.severity {
            CheckSeverity::Error => s.errors += 1,
            CheckSeverity::Leak => s.leaks += 1,
            CheckSeverity::Warning => s.warnings += 1,
        }
    }
    s.clean = s.errors == 0 && s.leaks == 0;
    r.summary = s;
    r
}

fn check_disk(img: &mut Image, r: &mut CheckReport) {
    let t = dcheck::check_partition_table(&*img);
    let mut regions: Vec<(u32, u64, u64)> = Vec::new();
    let (scheme, n, backup) = match &t.table {
        None => ("unreadable".to_string(), 0, false),
        Some(table) => {
            if table.partitions.is_empty() {
                regions.push((0, 0, img.len()));
            }
            for p in table.volumes() {
                regions.push((
                    p.number,
                    p.start,
                    p.len.min(img.len().saturating_sub(p.start)),
                ));
            }
            match &table.scheme {
                reseal_disk::partition::Scheme::Mbr { .. } => {
                    ("mbr".into(), table.partitions.len(), false)
                }
                reseal_disk::partition::Scheme::Gpt { backup_used, .. } => {
                    ("gpt".into(), table.partitions.len(), *backup_used)
                }
                _ => ("none".into(), 0, false),
            }
        }
    };
    r.partition_table = Some(TableReport {
        scheme,
        partitions: n,
        backup_header_used: backup,
        problems: t.problems.into_iter().map(from_disk).collect(),
    });
    for (number, start, len) in regions {
        let Ok(slice) = Slice::new(&mut *img, start, len) else {
            continue;
        };
        match probe(&slice) {
            Ok(FsInfo::Ntfs(_)) => {}
            Ok(FsInfo::BitLocker) => {
                r.other_volumes.push(OtherVolume {
                    partition: number,
                    filesystem: "BitLocker".into(),
                    problems: vec![problem(
                        CheckSeverity::Warning,
                        "BitLocker volume",
                        Some(start),
                        "encrypted (-FVE-FS-): its file system cannot be checked offline",
                    )],
                });
                continue;
            }
            Ok(other) => {
                r.other_volumes.push(OtherVolume {
                    partition: number,
                    filesystem: other.name().to_string(),
                    problems: Vec::new(),
                });
                continue;
            }
            Err(e) => {
                r.other_volumes.push(OtherVolume {
                    partition: number,
                    filesystem: "unknown".into(),
                    problems: vec![from_disk(dcheck::Problem::from_error(
                        &e,
                        dcheck::Severity::Error,
                    ))],
                });
                continue;
            }
        }
        let mut slice = slice;
        let v = ncheck::check(&mut slice);
        let state = v.state.as_ref();
        r.ntfs.push(NtfsReport {
            partition: number,
            start,
            dirty: state.map(|s| s.dirty),
            hibernated: state.map(|s| s.hibernated),
            logfile: state.map(|s| s.logfile.code().to_string()),
            boot_backup: v.boot_backup.map(|b| match b {
                ncheck::BootBackup::Matches => "matches".to_string(),
                ncheck::BootBackup::Differs => "differs".to_string(),
                ncheck::BootBackup::Missing => "missing".to_string(),
            }),
            records_checked: v.records_checked,
            records_in_use: v.records_in_use,
            fixup_failures: v.fixup_failures,
            fixup_failure_offsets: v.fixup_failure_offsets.clone(),
            record_errors: v.record_errors,
            mirror_records: v.mirror_records,
            mirror_mismatches: v.mirror_mismatches.clone(),
            consistent: v.is_consistent(),
            problems: v
                .problems
                .iter()
                .map(|p| CheckProblem {
                    severity: match p.severity {
                        ncheck::Severity::Error => CheckSeverity::Error,
                        ncheck::Severity::Warning => CheckSeverity::Warning,
                    },
                    structure: p.structure.clone(),
                    offset: p.offset,
                    message: p.message.clone(),
                })
                .collect(),
        });
        if let Ok(mut vol) = Volume::open(&mut slice) {
            check_hives(&mut vol, number, r);
        }
    }
}

const CONFIG: &str = "Windows/System32/config";

fn check_hives<D: reseal_disk::Device>(vol: &mut Volume<D>, partition: u32, r: &mut CheckReport) {
    if !vol.stat(CONFIG).is_ok_and(|e| e.is_dir) {
        return;
    }
    for name in HIVE_NAMES {
        let path = format!("/{CONFIG}/{name}");
        let Ok(entry) = vol.stat(&path) else { continue };
        if entry.is_dir {
            continue;
        }
        let mut h = HiveReport {
            partition,
            name: name.to_string(),
            path: path.clone(),
            size: entry.size,
            checksum_ok: None,
            seq1: None,
            seq2: None,
            logs_pending: false,
            problems: Vec::new(),
        };
        let data = match vol.read_to_vec(&path) {
            Ok(d) => d,
            Err(e) => {
                h.problems.push(problem(
                    CheckSeverity::Error,
                    "hive file",
                    None,
                    format!("unreadable: {e}"),
                ));
                r.hives.push(h);
                continue;
            }
        };
        let (bb, cells) = reseal_hive::check_file(&data);
        if let Some(b) = &bb.base_block {
            h.checksum_ok = Some(b.checksum_ok);
            h.seq1 = Some(b.seq1);
            h.seq2 = Some(b.seq2);
            if b.seq1 != b.seq2 {
                h.logs_pending = ["LOG1", "LOG2", "LOG"].iter().any(|e| {
                    vol.stat(&format!("{path}.{e}"))
                        .is_ok_and(|x| !x.is_dir && x.size > 0)
                });
            }
        }
        for (off, m) in bb.problems {
            // Unequal sequence numbers with logs to replay are how Windows leaves a hive it
            // was writing; without logs the last write is lost.
            let sev = if m.starts_with("sequence numbers") && h.logs_pending {
                CheckSeverity::Warning
            } else {
                CheckSeverity::Error
            };
            h.problems
                .push(problem(sev, "base block", Some(off as u64), m));
        }
        for p in cells {
            h.problems.push(CheckProblem {
                severity: match p.severity {
                    reseal_hive::Severity::Error => CheckSeverity::Error,
                    reseal_hive::Severity::Warning => CheckSeverity::Warning,
                },
                structure: p.structure.to_string(),
                offset: p.cell.map(|c| 4096 + u64::from(c.0)),
                message: p.message,
            });
        }
        r.hives.push(h);
    }
}
