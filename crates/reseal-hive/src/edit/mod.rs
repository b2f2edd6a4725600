//! Editing: cell allocator (reuse free cells, split, coalesce, append hbins) and the
//! key/value/security mutations, plus [`Hive::commit`].
//!
//! Offsets, never references, are held across allocations (the buffer may grow).
//!
//! Files: `alloc` (cells), `subkeys` (lists), `key`, `value`, `security` (sk cells); the
//! primitives they share and [`Hive::commit`] are here.

use crate::base_block::{self, BASE_BLOCK_SIZE};
use crate::error::{HiveError, Result};
use crate::hive::{CellOffset, Hive, KeyOffset};
use crate::key_node::{nk, KEY_COMP_NAME, NK_FIXED};
use crate::key_security::validate_descriptor;
use crate::name::{encode_name, validate_key_name};

mod alloc;
mod key;
mod security;
mod subkeys;
mod value;

pub use alloc::Alloc;

/// Most entries in one lf/lh/li leaf before an ri index is used (one 4 KiB page of lh).
pub const MAX_LEAF: usize = 507;

/// `SOURCE_DATE_EPOCH` (whole seconds since 1970, the reproducible-builds convention:
/// <https://reproducible-builds.org/specs/source-date-epoch/>) when set to a number, read once
/// per process: runs that make the same change then write the same bytes.
fn source_date_epoch() -> Option<std::time::Duration> {
    static T: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    T.get_or_init(|| std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok())
        .map(std::time::Duration::from_secs)
}

/// Current time as FILETIME (or [`source_date_epoch`]).
pub(crate) fn filetime_now() -> u64 {
    let d = source_date_epoch().unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    });
    d.as_secs() * 10_000_000 + u64::from(d.subsec_nanos() / 100) + 116_444_736_000_000_000
}

impl Hive {
    /// Switches to writable mode: indexes the hbins and free cells. Refuses a dirty hive
    /// (replay its logs with [`Hive::recover`] first) and malformed hbins.
    ///
    /// # Errors
    /// [`HiveError::Dirty`], [`HiveError::BadHbin`].
    pub fn make_writable(&mut self) -> Result<()> {
        if self.alloc.is_some() {
            return Ok(());
        }
        let bb = self.base_block();
        if bb.seq1 != bb.seq2 {
            return Err(HiveError::Dirty {
                seq1: bb.seq1,
                seq2: bb.seq2,
            });
        }
        let mut a = Alloc::default();
        let (bins, cells) = self.bins_and_cells()?;
        for (start, end) in bins {
            a.bins.insert(start, end);
        }
        for (c, len, free) in cells {
            if free {
                a.insert(c, len);
            }
        }
        self.alloc = Some(Box::new(a));
        Ok(())
    }

    pub(super) fn alloc_mut(&mut self) -> Result<&mut Alloc> {
        self.alloc.as_deref_mut().ok_or(HiveError::ReadOnly)
    }

    pub(crate) fn write_bytes(&mut self, file: usize, b: &[u8]) {
        self.data[file..file + b.len()].copy_from_slice(b);
        self.dirty.push(file..file + b.len());
        self.modified = true;
    }

    pub(crate) fn write_u32(&mut self, file: usize, v: u32) {
        self.write_bytes(file, &v.to_le_bytes());
    }

    pub(super) fn write_u16(&mut self, file: usize, v: u16) {
        self.write_bytes(file, &v.to_le_bytes());
    }

    /// Writes a u32 field of a cell (offset inside cell data).
    pub(super) fn set_cell_u32(&mut self, cell: CellOffset, field: usize, v: u32) {
        self.write_u32(cell.0 as usize + BASE_BLOCK_SIZE + 4 + field, v);
    }

    pub(super) fn cell_u32(&self, cell: CellOffset, field: usize) -> u32 {
        self.u32_at(cell.0 as usize + BASE_BLOCK_SIZE + 4 + field)
    }

    pub(super) fn nk_file(&self, key: KeyOffset) -> usize {
        key.0 as usize + BASE_BLOCK_SIZE + 4
    }

    pub(super) fn touch_key(&mut self, key: KeyOffset) {
        let f = self.nk_file(key) + nk::TIMESTAMP;
        self.write_bytes(f, &filetime_now().to_le_bytes());
    }

    pub(super) fn check_writable(&self) -> Result<()> {
        if self.alloc.is_none() {
            return Err(HiveError::ReadOnly);
        }
        Ok(())
    }

    pub(super) fn bump_max(&mut self, key: KeyOffset, field: usize, v: u32) {
        let f = self.nk_file(key) + field;
        let cur = self.u32_at(f);
        if field == nk::MAX_SUBKEY_NAME {
            if v > (cur & 0xFFFF) {
                self.write_u32(f, (cur & 0xFFFF_0000) | (v & 0xFFFF));
            }
        } else if v > cur {
            self.write_u32(f, v);
        }
    }

    /// Commits the edits into the buffer: seq1 = seq2 = max(seq1, seq2, any log sequence
    /// seen by [`Hive::recover`]) + 1, hive-bins size, last-written time, checksum.
    /// With no edit since open this does nothing (byte-identical output).
    ///
    /// Transaction logs: after a commit the primary is clean (seq1 == seq2, valid
    /// checksum), so Windows ignores the logs; the sequence number is also pushed above
    /// every log entry seen, and callers must truncate `.LOG1`/`.LOG2` to 0 bytes
    /// (see FORMAT-NOTES.md) so that no stale entry is replayed after a later crash.
    ///
    /// # Errors
    /// Never fails today; kept fallible for future checks.
    pub fn commit(&mut self) -> Result<()> {
        if !self.modified {
            return Ok(());
        }
        let bb = self.base_block();
        let seq = bb.seq1.max(bb.seq2).max(self.seq_floor).wrapping_add(1);
        let mut head = self.data[..512].to_vec();
        head[4..8].copy_from_slice(&seq.to_le_bytes());
        head[8..12].copy_from_slice(&seq.to_le_bytes());
        head[12..20].copy_from_slice(&filetime_now().to_le_bytes());
        head[40..44].copy_from_slice(&((self.hbins_end - BASE_BLOCK_SIZE) as u32).to_le_bytes());
        let c = base_block::checksum(&head);
        head[508..512].copy_from_slice(&c.to_le_bytes());
        self.write_bytes(0, &head);
        if self.data.len() > self.hbins_end {
            // hivex and Windows accept slack, but keep the file exactly the hbins size
            // only when we appended bins (slack was overwritten by them).
        }
        self.modified = false;
        Ok(())
    }
}

impl Hive {
    /// Creates an empty, writable hive (format 1.5: lh lists and big data) whose root key
    /// is `root_name` with security descriptor `descriptor` (self-relative).
    ///
    /// # Errors
    /// Invalid name or descriptor.
    pub fn new_empty(root_name: &str, descriptor: &[u8]) -> Result<Hive> {
        validate_key_name(root_name)?;
        validate_descriptor(descriptor)?;
        let mut data = vec![0u8; BASE_BLOCK_SIZE + 4096];
        data[0..4].copy_from_slice(b"regf");
        data[4..8].copy_from_slice(&1u32.to_le_bytes());
        data[8..12].copy_from_slice(&1u32.to_le_bytes());
        data[12..20].copy_from_slice(&filetime_now().to_le_bytes());
        data[20..24].copy_from_slice(&1u32.to_le_bytes());
        data[24..28].copy_from_slice(&5u32.to_le_bytes());
        data[32..36].copy_from_slice(&1u32.to_le_bytes());
        data[40..44].copy_from_slice(&4096u32.to_le_bytes());
        data[44..48].copy_from_slice(&1u32.to_le_bytes());
        let c = base_block::checksum(&data[..512]);
        data[508..512].copy_from_slice(&c.to_le_bytes());
        let b = BASE_BLOCK_SIZE;
        data[b..b + 4].copy_from_slice(b"hbin");
        data[b + 8..b + 12].copy_from_slice(&4096u32.to_le_bytes());
        data[b + 32..b + 36].copy_from_slice(&(4096u32 - 32).to_le_bytes());
        let mut h = Hive::from_bytes(data)?;
        h.make_writable()?;
        let (nb, comp) = encode_name(root_name);
        let mut cell = vec![0u8; NK_FIXED + nb.len()];
        cell[0..2].copy_from_slice(b"nk");
        let flags = 0x0004 | 0x0008 | if comp { KEY_COMP_NAME } else { 0 };
        cell[2..4].copy_from_slice(&flags.to_le_bytes());
        cell[4..12].copy_from_slice(&filetime_now().to_le_bytes());
        for f in [nk::PARENT, nk::SUBKEY_LIST, 32, nk::VALUE_LIST, nk::CLASS] {
            cell[f..f + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        }
        cell[72..74].copy_from_slice(&(nb.len() as u16).to_le_bytes());
        cell[76..].copy_from_slice(&nb);
        // the root nk comes first in the first hbin, as in Windows-made hives (regipy
        // even assumes it)
        let root = h.alloc_with(&cell)?;
        h.write_u32(base_block::ROOT_OFFSET, root.0);
        let mut sk = vec![0u8; 20];
        sk[0..2].copy_from_slice(b"sk");
        sk[12..16].copy_from_slice(&1u32.to_le_bytes());
        sk[16..20].copy_from_slice(&(descriptor.len() as u32).to_le_bytes());
        sk.extend_from_slice(descriptor);
        let sko = h.alloc_with(&sk)?;
        h.set_cell_u32(sko, 4, sko.0);
        h.set_cell_u32(sko, 8, sko.0);
        h.set_cell_u32(root, nk::SECURITY, sko.0);
        h.commit()?;
        Ok(h)
    }
}
