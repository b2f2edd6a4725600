//! Read-only consistency summary of an NTFS volume (`reseal check`): the boot sector against
//! its backup, the volume state ([`crate::state`]: dirty flag, `$LogFile`, hibernation / Fast
//! Startup), `$MFTMirr` against the first records of `$MFT`, and every MFT record's update
//! sequence fixups and header ([`crate::record`]). Nothing is written.

use reseal_disk::Device;

use crate::error::Offset;
use crate::layout::record::FileRecordHeader;
use crate::record::{self, Record};
use crate::state::VolumeState;
use crate::Volume;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Windows' chkdsk would repair it; data may be misread.
    Error,
    /// A state that is not damage (dirty flag, unclean log, hibernation) or a redundant copy.
    Warning,
}

/// One problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Severity.
    pub severity: Severity,
    /// The structure, e.g. "backup boot sector", "MFT record 37".
    pub structure: String,
    /// Byte offset on the volume, when known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.offset {
            Some(o) => write!(
                f,
                "{} at volume offset {o:#x}: {}",
                self.structure, self.message
            ),
            None => write!(f, "{}: {}", self.structure, self.message),
        }
    }
}

/// What the backup boot sector says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BootBackup {
    /// Identical to the boot sector.
    Matches,
    /// Present (an NTFS boot sector) but different.
    Differs,
    /// Not where NTFS keeps it (the sector after the volume, or the last one of the device).
    Missing,
}

/// How many offsets of failing records are kept.
pub const FIRST_OFFSETS: usize = 10;

/// The result of [`check`].
#[derive(Debug, Clone)]
pub struct VolumeCheck {
    /// The volume state, when `$Volume` and `$LogFile` could be read.
    pub state: Option<VolumeState>,
    /// The backup boot sector.
    pub boot_backup: Option<BootBackup>,
    /// MFT records examined (those with a `FILE` or `BAAD` signature).
    pub records_checked: u64,
    /// Of them, marked in use.
    pub records_in_use: u64,
    /// In-use records whose update sequence fixups do not verify (torn writes, `BAAD`).
    pub fixup_failures: u64,
    /// Volume byte offsets of the first failing sectors (at most [`FIRST_OFFSETS`]).
    pub fixup_failure_offsets: Vec<u64>,
    /// In-use records with verified fixups whose header or attributes do not parse.
    pub record_errors: u64,
    /// Records `$MFTMirr` holds.
    pub mirror_records: u64,
    /// Record numbers where `$MFTMirr` and `$MFT` differ.
    pub mirror_mismatches: Vec<u64>,
    /// Every problem, in the order found.
    pub problems: Vec<Problem>,
}

impl VolumeCheck {
    /// True when nothing of severity [`Severity::Error`] was found.
    pub fn is_consistent(&self) -> bool {
        self.problems.iter().all(|p| p.severity != Severity::Error)
    }
}

fn problem(
    sev: Severity,
    st: impl Into<String>,
    off: Option<u64>,
    m: impl Into<String>,
) -> Problem {
    Problem {
        severity: sev,
        structure: st.into(),
        offset: off,
        message: m.into(),
    }
}

/// Check the NTFS volume on `dev`. A volume that does not open is one problem naming the
/// structure that failed.
pub fn check<D: Device>(mut dev: D) -> VolumeCheck {
    let mut c = VolumeCheck {
        state: None,
        boot_backup: None,
        records_checked: 0,
        records_in_use: 0,
        fixup_failures: 0,
        fixup_failure_offsets: Vec::new(),
        record_errors: 0,
        mirror_records: 0,
        mirror_mismatches: Vec::new(),
        problems: Vec::new(),
    };
    match VolumeState::read(&mut dev) {
        Ok(st) => {
            if let Some(u) = st.unsafe_state() {
                c.problems
                    .push(problem(Severity::Warning, "volume state", None, u.detail()));
            } else if st.dirty {
                c.problems.push(problem(
                    Severity::Warning,
                    "$Volume",
                    None,
                    "dirty flag set",
                ));
            }
            c.state = Some(st);
        }
        Err(e) => c.problems.push(problem(
            Severity::Error,
            "volume state",
            None,
            format!("cannot be read: {e}"),
        )),
    }
    let vol = match Volume::open(&mut dev) {
        Ok(v) => v,
        Err(e) => {
            let (st, off) = match &e {
                crate::Error::Corrupt {
                    structure,
                    record: None,
                    offset,
                    ..
                } => (
                    structure.to_string(),
                    match offset {
                        Offset::Volume(o) => Some(*o),
                        _ => None,
                    },
                ),
                _ => ("NTFS volume".to_string(), None),
            };
            c.problems.push(problem(
                Severity::Error,
                st,
                off,
                format!("does not open: {e}"),
            ));
            return c;
        }
    };
    boot_backup(&vol, &mut c);
    records(&vol, &mut c);
    mirror(&vol, &mut c);
    c
}

fn boot_backup<D: Device>(vol: &Volume<D>, c: &mut VolumeCheck) {
    let b = vol.boot_sector();
    let bps = u64::from(b.bytes_per_sector);
    let mut primary = vec![0u8; 512];
    if vol.read_raw(0, &mut primary).is_err() {
        return;
    }
    let dev_len = vol.device_len();
    // mkntfs and Windows put it in the sector after the volume; ntfs-3g also looks at the
    // last sector of the device.
    let mut candidates = vec![b.total_sectors * bps];
    if dev_len >= bps {
        candidates.push((dev_len / bps - 1) * bps);
    }
    let mut found = None;
    for at in candidates {
        let mut s = vec![0u8; 512];
        if at + 512 > dev_len || vol.read_raw(at, &mut s).is_err() {
            continue;
        }
        if s == primary {
            found = Some((BootBackup::Matches, at));
            break;
        }
        if &s[3..11] == b"NTFS    " && found.is_none() {
            found = Some((BootBackup::Differs, at));
        }
    }
    match found {
        Some((BootBackup::Differs, at)) => {
            c.boot_backup = Some(BootBackup::Differs);
            c.problems.push(problem(
                Severity::Warning,
                "backup boot sector",
                Some(at),
                "differs from the boot sector",
            ));
        }
        Some((k, _)) => c.boot_backup = Some(k),
        None => {
            c.boot_backup = Some(BootBackup::Missing);
            c.problems.push(problem(
                Severity::Warning,
                "backup boot sector",
                Some(b.total_sectors * bps),
                "no NTFS boot sector after the volume or in the device's last sector",
            ));
        }
    }
}

fn records<D: Device>(vol: &Volume<D>, c: &mut VolumeCheck) {
    let rs = u64::from(vol.boot_sector().record_size);
    let total = vol.mft_records();
    const BATCH: u64 = 256;
    let mut buf = Vec::new();
    let mut first = 0;
    while first < total {
        let n = BATCH.min(total - first);
        buf.resize((n * rs) as usize, 0);
        if let Err(e) = vol.read_mft_raw(first * rs, &mut buf) {
            c.problems.push(problem(
                Severity::Error,
                "$MFT data",
                vol.mft_offset(first * rs),
                format!("records {first}..{}: unreadable: {e}", first + n),
            ));
            first += n;
            continue;
        }
        for (k, raw) in buf.chunks_exact(rs as usize).enumerate() {
            let num = first + k as u64;
            let Some(h) = FileRecordHeader::view(raw) else {
                continue;
            };
            let magic = &h.multi_sector.signature;
            if magic != b"FILE" && magic != b"BAAD" {
                continue;
            }
            c.records_checked += 1;
            let in_use = h.flags.get() & record::FLAG_IN_USE != 0;
            if !in_use {
                continue;
            }
            c.records_in_use += 1;
            let rec_off = vol.mft_offset(num * rs);
            let mut fixed = raw.to_vec();
            let fix = if magic == b"BAAD" {
                Err(crate::Error::corrupt(
                    "MFT record",
                    Some(num),
                    Offset::Record(0),
                    "BAAD signature (a multi-sector transfer failed)",
                ))
            } else {
                record::remove_fixups(&mut fixed, "MFT record", Some(num))
            };
            match fix {
                Err(e) => {
                    c.fixup_failures += 1;
                    let within = match &e {
                        crate::Error::Corrupt {
                            offset: Offset::Record(o),
                            ..
                        } => *o,
                        _ => 0,
                    };
                    let at = rec_off.map(|o| o + within);
                    if c.fixup_failure_offsets.len() < FIRST_OFFSETS {
                        if let Some(a) = at {
                            c.fixup_failure_offsets.push(a);
                        }
                        c.problems.push(problem(
                            Severity::Error,
                            format!("MFT record {num}"),
                            at,
                            format!("update sequence fixups do not verify: {e}"),
                        ));
                    }
                }
                Ok(()) => {
                    if let Err(e) = Record::parse(num, fixed) {
                        c.record_errors += 1;
                        if c.record_errors <= FIRST_OFFSETS as u64 {
                            c.problems.push(problem(
                                Severity::Error,
                                format!("MFT record {num}"),
                                rec_off,
                                e.to_string(),
                            ));
                        }
                    }
                }
            }
        }
        first += n;
    }
    if c.fixup_failures > FIRST_OFFSETS as u64 {
        c.problems.push(problem(
            Severity::Error,
            "$MFT",
            None,
            format!(
                "{} in-use records fail their fixups in all",
                c.fixup_failures
            ),
        ));
    }
    if c.record_errors > FIRST_OFFSETS as u64 {
        c.problems.push(problem(
            Severity::Error,
            "$MFT",
            None,
            format!("{} in-use records do not parse in all", c.record_errors),
        ));
    }
}

fn mirror<D: Device>(vol: &Volume<D>, c: &mut VolumeCheck) {
    let b = vol.boot_sector();
    let rs = u64::from(b.record_size);
    let n = b.mirror_records();
    c.mirror_records = n;
    let mirr_off = b.mftmirr_lcn * u64::from(b.cluster_size);
    for num in 0..n {
        let mut m = vec![0u8; rs as usize];
        let mut r = vec![0u8; rs as usize];
        let at = mirr_off + num * rs;
        if vol.read_raw(at, &mut m).is_err() || vol.read_mft_raw(num * rs, &mut r).is_err() {
            c.problems.push(problem(
                Severity::Error,
                "$MFTMirr",
                Some(at),
                format!("record {num} unreadable"),
            ));
            continue;
        }
        // Compared with fixups removed, as ntfs-3g does when it mounts.
        let a = record::remove_fixups(&mut m, "$MFTMirr record", Some(num));
        let bb = record::remove_fixups(&mut r, "MFT record", Some(num));
        let used = |x: &[u8]| {
            FileRecordHeader::view(x).map_or(0, |h| (h.bytes_in_use.get() as usize).min(x.len()))
        };
        let same = a.is_ok() && bb.is_ok() && m[..used(&m)] == r[..used(&r)];
        if !same {
            c.mirror_mismatches.push(num);
            c.problems.push(problem(
                Severity::Error,
                "$MFTMirr",
                Some(at),
                format!("record {num} differs from $MFT's"),
            ));
        }
    }
}
