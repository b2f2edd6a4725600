//! Transaction logs: dirty-hive detection and replay of new-format ("HvLE", Windows 8.1+)
//! and old-format ("DIRT") `.LOG`/`.LOG1`/`.LOG2` files.
//!
//! Rules (FORMATS.md B.5, msuhanov regf specification; checked against the Windows 10
//! and Windows 7 recovered hives in the yarp corpus):
//! * a hive is dirty when seq1 != seq2 or its base-block checksum is wrong; a clean hive
//!   ignores its logs;
//! * a log is usable only if its base block is valid (signature, checksum, log file type);
//! * new format: entries must have a valid signature, size, and both Marvin32 hashes
//!   (seed 0x82EF4D887A4E55C5); entries older than the log's base-block sequence number
//!   are stale and skipped; applied entries must be consecutive (N, N+1, ...); the log
//!   with the lower base-block sequence is replayed first and the other continues the
//!   sequence; replay stops at the first bad entry or gap;
//! * old format: the log's base-block timestamp must equal the primary's (when the
//!   primary base block is valid); dirty 512-byte pages listed by the DIRT bitmap are
//!   copied over the hive bins and the log's base block becomes the primary's;
//! * a primary with a broken base block is repaired from a usable log's base block.

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, IntoBytes};

use crate::base_block::{self, BaseBlock, BaseBlockHeader, BASE_BLOCK_SIZE};
use crate::error::{HiveError, Result};
use crate::hive::Hive;
use crate::layout::base_block::{
    FILE_TYPE_LOG_NEW, FILE_TYPE_LOG_OLD, FILE_TYPE_LOG_OLD_NT, FILE_TYPE_PRIMARY,
    HEADER_SIZE as BB_HEADER_SIZE,
};
use crate::layout::hbin;
use crate::layout::log::{
    DirtyPageRef, HvleHeader, DIRT_PAGE_SIZE, DIRT_SIGNATURE, ENTRIES_OFFSET, ENTRY_ALIGNMENT,
    HASH_2_COVERED, HEADER_SIZE, HVLE_SIGNATURE,
};

/// Marvin32 seed used by registry logs, as a 64-bit number (low half starts the first register).
pub const LOG_SEED: u64 = 0x82EF_4D88_7A4E_55C5;

/// Marvin32 hash as used by HvLE log entries.
pub fn marvin32(data: &[u8], seed: u64) -> u64 {
    let mut lo = seed as u32;
    let mut hi = (seed >> 32) as u32;
    fn block(lo: &mut u32, hi: &mut u32) {
        *hi ^= *lo;
        *lo = lo.rotate_left(20).wrapping_add(*hi);
        *hi = hi.rotate_left(9) ^ *lo;
        *lo = lo.rotate_left(27).wrapping_add(*hi);
        *hi = hi.rotate_left(19);
    }
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        lo = lo.wrapping_add(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
        block(&mut lo, &mut hi);
    }
    let rem = chunks.remainder();
    let mut last = 0x80u32 << (8 * rem.len());
    for (i, &b) in rem.iter().enumerate() {
        last |= (b as u32) << (8 * i);
    }
    lo = lo.wrapping_add(last);
    block(&mut lo, &mut hi);
    block(&mut lo, &mut hi);
    ((hi as u64) << 32) | lo as u64
}

/// Log format found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// No log was applied.
    #[default]
    None,
    /// Old "DIRT" format (NT 5.x .. Windows 8).
    Old,
    /// New "HvLE" format (Windows 8.1+).
    New,
}

/// What [`Hive::recover`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Whether the primary was dirty.
    pub was_dirty: bool,
    /// Format of the applied log(s).
    pub format: LogFormat,
    /// Entries (new format) or 1 (old format) applied from LOG1.
    pub applied_log1: usize,
    /// Entries applied from LOG2.
    pub applied_log2: usize,
    /// Sequence number of the last applied new-format entry.
    pub last_sequence: Option<u32>,
    /// Whether the primary's base block was replaced by a log's.
    pub base_block_repaired: bool,
    /// Why a log was ignored, per log.
    pub notes: Vec<String>,
}

struct LogEntry<'a> {
    seq: u32,
    hbins_size: u32,
    refs: &'a [DirtyPageRef],
    pages: &'a [u8],
}

fn parse_entries(log: &[u8]) -> (Vec<LogEntry<'_>>, Option<String>) {
    let mut out = Vec::new();
    let mut pos = ENTRIES_OFFSET;
    while let Some(e) = log.get(pos..) {
        let Ok((h, _)) = HvleHeader::ref_from_prefix(e) else {
            return (out, None);
        };
        if h.signature != HVLE_SIGNATURE {
            return (out, None);
        }
        let size = h.size.get() as usize;
        if size < HEADER_SIZE || size % ENTRY_ALIGNMENT != 0 || size > e.len() {
            return (out, Some(format!("entry at {pos:#x}: bad size {size:#x}")));
        }
        let e = &e[..size];
        if marvin32(&e[..HASH_2_COVERED], LOG_SEED) != h.hash_2.get()
            || marvin32(&e[HEADER_SIZE..], LOG_SEED) != h.hash_1.get()
        {
            return (
                out,
                Some(format!("entry at {pos:#x}: Marvin32 hash mismatch")),
            );
        }
        let seq = h.sequence_number.get();
        let hbins_size = h.hive_bins_data_size.get();
        let count = h.dirty_pages_count.get() as usize;
        if hbins_size == 0
            || hbins_size as usize % hbin::ALIGNMENT != 0
            || hbins_size as usize > crate::limits::MAX_HBINS
        {
            return (
                out,
                Some(format!(
                    "entry at {pos:#x}: hive bins size {hbins_size:#x} not a multiple of 4096"
                )),
            );
        }
        let Ok((refs, pages)) =
            <[DirtyPageRef]>::ref_from_prefix_with_elems(&e[HEADER_SIZE..], count)
        else {
            return (
                out,
                Some(format!("entry at {pos:#x}: {count} dirty pages do not fit")),
            );
        };
        let total: usize = refs.iter().map(|r| r.size.get() as usize).sum();
        if total > pages.len() {
            return (
                out,
                Some(format!("entry at {pos:#x}: page data runs past the entry")),
            );
        }
        out.push(LogEntry {
            seq,
            hbins_size,
            refs,
            pages,
        });
        pos += size;
    }
    (out, None)
}

struct LogInfo<'a> {
    name: &'static str,
    bytes: &'a [u8],
    bb: BaseBlock,
    new_format: bool,
}

fn usable_log<'a>(
    name: &'static str,
    bytes: &'a [u8],
    notes: &mut Vec<String>,
) -> Option<LogInfo<'a>> {
    let bb = match BaseBlock::parse(bytes) {
        Ok(b) => b,
        Err(e) => {
            notes.push(format!("{name}: {e}"));
            return None;
        }
    };
    if !bb.checksum_ok {
        notes.push(format!("{name}: base block checksum is wrong"));
        return None;
    }
    let sig = bytes
        .get(ENTRIES_OFFSET..)
        .and_then(|b| <[u8; 4]>::read_from_prefix(b).ok())
        .map(|(s, _)| s);
    let new_format = match (bb.file_type, sig) {
        (FILE_TYPE_LOG_NEW, _) | (_, Some(HVLE_SIGNATURE)) => true,
        (FILE_TYPE_LOG_OLD | FILE_TYPE_LOG_OLD_NT, Some(DIRT_SIGNATURE)) => false,
        (t, _) => {
            notes.push(format!(
                "{name}: not a usable log (file type {t}, no HvLE/DIRT at 512)"
            ));
            return None;
        }
    };
    Some(LogInfo {
        name,
        bytes,
        bb,
        new_format,
    })
}

/// Makes the base block at the start of `data` that of a clean primary after a replay: both
/// sequence numbers `seq`, hive bins size `hbins`, file type primary, checksum recomputed.
fn set_bb(data: &mut [u8], seq: u32, hbins: u32) -> Result<()> {
    let (h, _) = BaseBlockHeader::mut_from_prefix(data).map_err(|_| HiveError::BadBaseBlock {
        reason: "shorter than 512 bytes".into(),
    })?;
    h.primary_sequence_number = U32::new(seq);
    h.secondary_sequence_number = U32::new(seq);
    h.hive_bins_data_size = U32::new(hbins);
    h.file_type = U32::new(FILE_TYPE_PRIMARY);
    h.checksum = U32::new(base_block::checksum(h.as_bytes()));
    Ok(())
}

impl Hive {
    /// Opens a hive and, if it is dirty, replays its transaction logs the way Windows
    /// does (see the module docs of [`crate::log`]). A clean hive is returned unchanged
    /// (logs ignored) but the highest log sequence number is remembered so a later
    /// [`Hive::commit`] goes above it.
    ///
    /// # Errors
    /// [`HiveError::Log`] when the hive is dirty and no log can be applied (refused logs
    /// are named with the reason); base-block errors of the result.
    pub fn recover(
        primary: Vec<u8>,
        log1: Option<Vec<u8>>,
        log2: Option<Vec<u8>>,
    ) -> Result<(Hive, RecoveryReport)> {
        let mut report = RecoveryReport::default();
        let mut notes = Vec::new();
        let logs: Vec<LogInfo<'_>> = [("LOG1", log1.as_deref()), ("LOG2", log2.as_deref())]
            .into_iter()
            .filter_map(|(n, b)| b.and_then(|b| usable_log(n, b, &mut notes)))
            .collect();
        let mut floor = 0u32;
        for l in &logs {
            floor = floor.max(l.bb.seq1).max(l.bb.seq2);
            if l.new_format {
                for e in parse_entries(l.bytes).0 {
                    floor = floor.max(e.seq);
                }
            }
        }
        let pbb = BaseBlock::parse(&primary).ok();
        let primary_ok =
            pbb.is_some_and(|b| b.checksum_ok && b.validate_primary(usize::MAX).is_ok());
        let dirty = match pbb {
            Some(b) => b.seq1 != b.seq2 || !primary_ok,
            None => true,
        };
        report.was_dirty = dirty;
        if !dirty {
            let mut h = Hive::from_bytes(primary)?;
            h.seq_floor = floor;
            report.notes = notes;
            return Ok((h, report));
        }
        let mut data = primary;
        if data.len() < BASE_BLOCK_SIZE {
            data.resize(BASE_BLOCK_SIZE, 0);
        }
        let lname = |n: &'static str| if n == "LOG1" { 1 } else { 2 };
        let new_logs: Vec<&LogInfo<'_>> = logs.iter().filter(|l| l.new_format).collect();
        let old_logs: Vec<&LogInfo<'_>> = logs.iter().filter(|l| !l.new_format).collect();
        if !new_logs.is_empty() {
            let mut order = new_logs.clone();
            order.sort_by_key(|l| l.bb.seq1);
            // base block: keep the primary's when valid, else the newest log's
            if !primary_ok {
                let src = order.last().expect("invariant: non-empty");
                data[..BB_HEADER_SIZE].copy_from_slice(&src.bytes[..BB_HEADER_SIZE]);
                report.base_block_repaired = true;
            }
            let mut last: Option<u32> = None;
            let primary_seq2 = pbb.map(|b| b.seq2).unwrap_or(0);
            let mut gap_noted = false;
            let mut hbins = BaseBlockHeader::ref_from_prefix(&data)
                .map_or(0, |(h, _)| h.hive_bins_data_size.get());
            for l in &order {
                let (entries, err) = parse_entries(l.bytes);
                if let Some(e) = err {
                    notes.push(format!("{}: {e}", l.name));
                }
                let mut applied = 0usize;
                for e in entries {
                    match last {
                        None if e.seq < l.bb.seq1 || (primary_ok && e.seq < primary_seq2) => {
                            continue
                        }
                        None if primary_ok && e.seq != primary_seq2 && !gap_noted => {
                            gap_noted = true;
                            notes.push(format!(
                                "{}: log starts at sequence {} but the primary expects {primary_seq2} (entries missing)",
                                l.name, e.seq
                            ));
                        }
                        Some(n) if e.seq <= n => continue,
                        Some(n) if e.seq != n.wrapping_add(1) => {
                            notes.push(format!(
                                "{}: sequence gap after {n} (found {})",
                                l.name, e.seq
                            ));
                            break;
                        }
                        _ => {}
                    }
                    let need = BASE_BLOCK_SIZE + e.hbins_size as usize;
                    if data.len() < need {
                        data.resize(need, 0);
                    }
                    let mut p = 0usize;
                    for r in e.refs {
                        let off = r.offset.get() as usize;
                        let size = r.size.get() as usize;
                        let dst = BASE_BLOCK_SIZE + off;
                        if dst + size > need || p + size > e.pages.len() {
                            return Err(HiveError::Log {
                                log: l.name,
                                reason: format!(
                                    "entry {} writes a page outside the hive bins",
                                    e.seq
                                ),
                            });
                        }
                        data[dst..dst + size].copy_from_slice(&e.pages[p..p + size]);
                        p += size;
                    }
                    hbins = e.hbins_size;
                    last = Some(e.seq);
                    applied += 1;
                }
                if lname(l.name) == 1 {
                    report.applied_log1 += applied;
                } else {
                    report.applied_log2 += applied;
                }
            }
            let Some(last) = last else {
                notes.push("no applicable log entry".into());
                return Err(HiveError::Log {
                    log: "LOG1/LOG2",
                    reason: notes.join("; "),
                });
            };
            report.format = crate::log::LogFormat::New;
            report.last_sequence = Some(last);
            let seq = last.wrapping_add(1).max(floor);
            set_bb(&mut data, seq, hbins)?;
            data.truncate(BASE_BLOCK_SIZE + hbins as usize);
        } else if let Some(l) = old_logs
            .iter()
            .find(|l| pbb.is_none_or(|p| !primary_ok || p.last_written == l.bb.last_written))
        {
            let hbins = l.bb.hbins_size as usize;
            if hbins == 0 || hbins % 4096 != 0 || hbins > crate::limits::MAX_HBINS {
                return Err(HiveError::Log {
                    log: l.name,
                    reason: "bad hive bins size in the log base block".into(),
                });
            }
            let bits = hbins / DIRT_PAGE_SIZE;
            let bm_len = bits.div_ceil(8);
            let bm_start = ENTRIES_OFFSET + DIRT_SIGNATURE.len();
            let Some(bitmap) = l.bytes.get(bm_start..bm_start + bm_len) else {
                return Err(HiveError::Log {
                    log: l.name,
                    reason: "DIRT bitmap truncated".into(),
                });
            };
            // The pages start at the next 512-byte boundary after the bitmap.
            let mut src = (bm_start + bm_len).div_ceil(DIRT_PAGE_SIZE) * DIRT_PAGE_SIZE;
            if data.len() < BASE_BLOCK_SIZE + hbins {
                data.resize(BASE_BLOCK_SIZE + hbins, 0);
            }
            for i in 0..bits {
                if bitmap[i / 8] & (1 << (i % 8)) == 0 {
                    continue;
                }
                let Some(page) = l.bytes.get(src..src + DIRT_PAGE_SIZE) else {
                    return Err(HiveError::Log {
                        log: l.name,
                        reason: format!("dirty page {i} missing from the log"),
                    });
                };
                let dst = BASE_BLOCK_SIZE + i * DIRT_PAGE_SIZE;
                data[dst..dst + DIRT_PAGE_SIZE].copy_from_slice(page);
                src += DIRT_PAGE_SIZE;
            }
            report.base_block_repaired = !primary_ok;
            data[..BB_HEADER_SIZE].copy_from_slice(&l.bytes[..BB_HEADER_SIZE]);
            let seq = l.bb.seq1.max(l.bb.seq2);
            set_bb(&mut data, seq, hbins as u32)?;
            report.format = LogFormat::Old;
            if lname(l.name) == 1 {
                report.applied_log1 = 1;
            } else {
                report.applied_log2 = 1;
            }
        } else {
            if !old_logs.is_empty() {
                notes.push("old-format log timestamp differs from the primary's".into());
            }
            if notes.is_empty() {
                notes.push("no log given".into());
            }
            return Err(HiveError::Log {
                log: "LOG1/LOG2",
                reason: format!("dirty hive cannot be recovered: {}", notes.join("; ")),
            });
        }
        report.notes = notes;
        let mut h = Hive::from_bytes(data)?;
        h.seq_floor = floor;
        Ok((h, report))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn marvin_empty_is_stable() {
        assert_eq!(marvin32(b"", LOG_SEED), marvin32(b"", LOG_SEED));
        assert_ne!(marvin32(b"a", LOG_SEED), marvin32(b"b", LOG_SEED));
    }
}
