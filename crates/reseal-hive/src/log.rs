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

use crate::base_block::{self, rd_u32, BaseBlock, BASE_BLOCK_SIZE};
use crate::error::{HiveError, Result};
use crate::hive::Hive;

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
    refs: &'a [u8],
    pages: &'a [u8],
    count: usize,
}

fn parse_entries(log: &[u8]) -> (Vec<LogEntry<'_>>, Option<String>) {
    let mut out = Vec::new();
    let mut pos = 512usize;
    while pos + 40 <= log.len() {
        let e = &log[pos..];
        if &e[0..4] != b"HvLE" {
            return (out, None);
        }
        let size = rd_u32(e, 4).unwrap_or(0) as usize;
        if size < 40 || size % 512 != 0 || size > e.len() {
            return (out, Some(format!("entry at {pos:#x}: bad size {size:#x}")));
        }
        let e = &e[..size];
        let h1 = crate::base_block::rd_u64(e, 24).unwrap_or(0);
        let h2 = crate::base_block::rd_u64(e, 32).unwrap_or(0);
        if marvin32(&e[..32], LOG_SEED) != h2 || marvin32(&e[40..], LOG_SEED) != h1 {
            return (
                out,
                Some(format!("entry at {pos:#x}: Marvin32 hash mismatch")),
            );
        }
        let seq = rd_u32(e, 12).unwrap_or(0);
        let hbins_size = rd_u32(e, 16).unwrap_or(0);
        let count = rd_u32(e, 20).unwrap_or(0) as usize;
        if hbins_size == 0
            || hbins_size % 4096 != 0
            || hbins_size as usize > crate::limits::MAX_HBINS
        {
            return (
                out,
                Some(format!(
                    "entry at {pos:#x}: hive bins size {hbins_size:#x} not a multiple of 4096"
                )),
            );
        }
        let refs_end = count.checked_mul(8).and_then(|n| n.checked_add(40));
        let Some(refs_end) = refs_end.filter(|&r| r <= size) else {
            return (
                out,
                Some(format!("entry at {pos:#x}: {count} dirty pages do not fit")),
            );
        };
        let refs = &e[40..refs_end];
        let total: usize = refs
            .chunks_exact(8)
            .map(|r| rd_u32(r, 4).unwrap_or(0) as usize)
            .sum();
        let pages_start = refs_end;
        if pages_start.checked_add(total).is_none_or(|t| t > size) {
            return (
                out,
                Some(format!("entry at {pos:#x}: page data runs past the entry")),
            );
        }
        out.push(LogEntry {
            seq,
            hbins_size,
            refs,
            pages: &e[pages_start..],
            count,
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
    let sig = bytes.get(512..516);
    let new_format = match (bb.file_type, sig) {
        (6, _) | (_, Some(b"HvLE")) => true,
        (1 | 2, Some(b"DIRT")) => false,
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

fn set_bb(data: &mut [u8], seq: u32, hbins: u32) {
    data[4..8].copy_from_slice(&seq.to_le_bytes());
    data[8..12].copy_from_slice(&seq.to_le_bytes());
    data[40..44].copy_from_slice(&hbins.to_le_bytes());
    data[28..32].copy_from_slice(&0u32.to_le_bytes());
    let c = base_block::checksum(&data[..512]);
    data[508..512].copy_from_slice(&c.to_le_bytes());
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
                data[..512].copy_from_slice(&src.bytes[..512]);
                report.base_block_repaired = true;
            }
            let mut last: Option<u32> = None;
            let primary_seq2 = pbb.map(|b| b.seq2).unwrap_or(0);
            let mut gap_noted = false;
            let mut hbins = rd_u32(&data, base_block::HBINS_SIZE_OFFSET).unwrap_or(0);
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
                    for r in e.refs.chunks_exact(8).take(e.count) {
                        let off = rd_u32(r, 0).unwrap_or(0) as usize;
                        let size = rd_u32(r, 4).unwrap_or(0) as usize;
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
            set_bb(&mut data, seq, hbins);
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
            let bits = hbins / 512;
            let bm_len = bits.div_ceil(8);
            let Some(bitmap) = l.bytes.get(516..516 + bm_len) else {
                return Err(HiveError::Log {
                    log: l.name,
                    reason: "DIRT bitmap truncated".into(),
                });
            };
            let mut src = (516 + bm_len).div_ceil(512) * 512;
            if data.len() < BASE_BLOCK_SIZE + hbins {
                data.resize(BASE_BLOCK_SIZE + hbins, 0);
            }
            for i in 0..bits {
                if bitmap[i / 8] & (1 << (i % 8)) == 0 {
                    continue;
                }
                let Some(page) = l.bytes.get(src..src + 512) else {
                    return Err(HiveError::Log {
                        log: l.name,
                        reason: format!("dirty page {i} missing from the log"),
                    });
                };
                let dst = BASE_BLOCK_SIZE + i * 512;
                data[dst..dst + 512].copy_from_slice(page);
                src += 512;
            }
            report.base_block_repaired = !primary_ok;
            data[..512].copy_from_slice(&l.bytes[..512]);
            let seq = l.bb.seq1.max(l.bb.seq2);
            set_bb(&mut data, seq, hbins as u32);
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
