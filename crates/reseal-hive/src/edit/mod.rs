//! Editing: cell allocator (reuse free cells, split, coalesce, append hbins) and the
//! key/value/security mutations, plus [`Hive::commit`].
//!
//! Offsets, never references, are held across allocations (the buffer may grow).
//!
//! Files: `alloc` (cells), `subkeys` (lists), `key`, `value`, `security` (sk cells); the
//! primitives they share and [`Hive::commit`] are here.
//!
//! Every write goes through the [`crate::layout`] views: new cells are built from their
//! headers' constructors, fields of existing cells change with `update_cell` (only the bytes
//! that change are recorded as dirty), other bytes with `write_cell_data`, which checks them
//! against the cell's size.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

use crate::base_block::{self, BaseBlockHeader, BASE_BLOCK_SIZE};
use crate::error::{HiveError, Result};
use crate::hive::{CellOffset, Hive, KeyOffset};
use crate::key_security::validate_descriptor;
use crate::layout::base_block::{FILE_FORMAT_DIRECT_MEMORY_LOAD, SIGNATURE as REGF};
use crate::layout::cell::{self, CellHeader};
use crate::layout::hbin::{self, HbinHeader};
use crate::layout::nk::{
    NkHeader, KEY_COMP_NAME, KEY_HIVE_ENTRY, KEY_NO_DELETE, LARGEST_SUBKEY_NAME_LENGTH_MASK,
};
use crate::layout::sk::SkHeader;
use crate::name::{encode_name, validate_key_name};

mod alloc;
mod key;
mod security;
mod subkeys;
mod value;

pub use alloc::Alloc;

/// The "largest ..." fields of a key node that [`Hive::bump_max`] raises.
#[derive(Debug, Clone, Copy)]
pub(super) enum Largest {
    /// `largest_subkey_name_length` (low 16 bits).
    SubkeyName,
    /// `largest_subkey_class_name_length`.
    SubkeyClassName,
    /// `largest_value_name_length`.
    ValueName,
    /// `largest_value_data_size`.
    ValueData,
}

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

/// Current time as FILETIME (or [`source_date_epoch`]): the time every edit stamps on what it
/// writes. Crates above the hive engine (SAM `F` records) use this one clock.
pub fn filetime_now() -> u64 {
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

    /// Writes the size header of a cell (allocated or free) at file offset `file`.
    pub(super) fn write_cell_header(&mut self, file: usize, header: CellHeader) {
        self.write_bytes(file, header.as_bytes());
    }

    /// Writes `bytes` at offset `at` of the data of the allocated cell `cell`, checked against
    /// the cell's size.
    ///
    /// # Errors
    /// When `cell` is not an allocated cell or the bytes run past it.
    pub(crate) fn write_cell_data(
        &mut self,
        cell: CellOffset,
        structure: &'static str,
        at: usize,
        bytes: &[u8],
    ) -> Result<()> {
        let (start, len) = self.cell_span(cell, structure)?;
        let data = start + cell::HEADER_SIZE;
        if at
            .checked_add(bytes.len())
            .is_none_or(|end| data + end > start + len)
        {
            return Err(HiveError::corrupt(
                structure,
                cell,
                format!("{} bytes at {at} do not fit in the cell", bytes.len()),
            ));
        }
        self.write_bytes(data + at, bytes);
        Ok(())
    }

    /// Changes the fixed part `T` (a [`crate::layout`] view) of the allocated cell `cell`
    /// through `f`; the bytes that changed are recorded as dirty.
    ///
    /// # Errors
    /// When `cell` is not an allocated cell or is smaller than `T`.
    pub(crate) fn update_cell<T>(
        &mut self,
        cell: CellOffset,
        structure: &'static str,
        f: impl FnOnce(&mut T),
    ) -> Result<()>
    where
        T: FromBytes + IntoBytes + KnownLayout + Immutable + Unaligned,
    {
        let (start, len) = self.cell_span(cell, structure)?;
        let data = start + cell::HEADER_SIZE;
        let Ok((view, _)) = T::mut_from_prefix(&mut self.data[data..start + len]) else {
            return Err(HiveError::corrupt(structure, cell, "cell too small"));
        };
        if let Some(changed) = Self::update_view(view, f) {
            self.dirty.push(data + changed.start..data + changed.end);
        }
        self.modified = true;
        Ok(())
    }

    /// Changes the base block through `f`; the bytes that changed are recorded as dirty.
    pub(super) fn update_base_block(&mut self, f: impl FnOnce(&mut BaseBlockHeader)) {
        // The base block was validated at open: the file holds at least 4096 bytes.
        if let Ok((view, _)) = BaseBlockHeader::mut_from_prefix(&mut self.data) {
            if let Some(changed) = Self::update_view(view, f) {
                self.dirty.push(changed);
            }
            self.modified = true;
        }
    }

    /// Applies `f` to `view` and returns the range of its bytes that changed, if any.
    fn update_view<T>(view: &mut T, f: impl FnOnce(&mut T)) -> Option<std::ops::Range<usize>>
    where
        T: FromBytes + IntoBytes + KnownLayout + Immutable + Unaligned,
    {
        let before = T::read_from_bytes(view.as_bytes()).ok();
        f(view);
        let Some(before) = before else {
            return Some(0..view.as_bytes().len());
        };
        let (old, new) = (before.as_bytes(), view.as_bytes());
        let first = old.iter().zip(new).position(|(a, b)| a != b)?;
        let last = old.iter().zip(new).rposition(|(a, b)| a != b)?;
        Some(first..last + 1)
    }

    /// Changes the fixed part of the key node `key` through `f`.
    ///
    /// # Errors
    /// When `key` is not an allocated cell of at least 76 bytes.
    pub(super) fn update_key(
        &mut self,
        key: KeyOffset,
        f: impl FnOnce(&mut NkHeader),
    ) -> Result<()> {
        self.update_cell(key, "nk", f)
    }

    pub(super) fn touch_key(&mut self, key: KeyOffset) -> Result<()> {
        let now = filetime_now();
        self.update_key(key, |h| h.last_written_timestamp = U64::new(now))
    }

    pub(super) fn check_writable(&self) -> Result<()> {
        if self.alloc.is_none() {
            return Err(HiveError::ReadOnly);
        }
        Ok(())
    }

    /// Raises a "largest ..." field of a key node to `v` if it is smaller; for the subkey name
    /// length only the low 16 bits count and the flags above them are kept.
    pub(super) fn bump_max(&mut self, key: KeyOffset, which: Largest, v: u32) -> Result<()> {
        self.update_key(key, |h| {
            let mask = match which {
                Largest::SubkeyName => LARGEST_SUBKEY_NAME_LENGTH_MASK,
                _ => u32::MAX,
            };
            let field = match which {
                Largest::SubkeyName => &mut h.largest_subkey_name_length,
                Largest::SubkeyClassName => &mut h.largest_subkey_class_name_length,
                Largest::ValueName => &mut h.largest_value_name_length,
                Largest::ValueData => &mut h.largest_value_data_size,
            };
            let cur = field.get();
            if v > (cur & mask) {
                *field = U32::new((cur & !mask) | (v & mask));
            }
        })
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
    /// [`HiveError::BadBaseBlock`] if the buffer no longer holds a base block (not reachable
    /// for a hive that opened).
    pub fn commit(&mut self) -> Result<()> {
        if !self.modified {
            return Ok(());
        }
        let bb = self.base_block();
        let seq = bb.seq1.max(bb.seq2).max(self.seq_floor).wrapping_add(1);
        let (mut head, _) =
            BaseBlockHeader::read_from_prefix(&self.data).map_err(|_| HiveError::BadBaseBlock {
                reason: "shorter than 512 bytes".into(),
            })?;
        head.primary_sequence_number = U32::new(seq);
        head.secondary_sequence_number = U32::new(seq);
        head.last_written_timestamp = U64::new(filetime_now());
        head.hive_bins_data_size = U32::new((self.hbins_end - BASE_BLOCK_SIZE) as u32);
        head.checksum = U32::new(base_block::checksum(head.as_bytes()));
        self.write_bytes(0, head.as_bytes());
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
        let mut data = vec![0u8; BASE_BLOCK_SIZE + hbin::ALIGNMENT];
        let mut bb = BaseBlockHeader::new_zeroed();
        bb.signature = REGF;
        bb.primary_sequence_number = U32::new(1);
        bb.secondary_sequence_number = U32::new(1);
        bb.last_written_timestamp = U64::new(filetime_now());
        bb.major_version = U32::new(1);
        bb.minor_version = U32::new(5);
        bb.file_format = U32::new(FILE_FORMAT_DIRECT_MEMORY_LOAD);
        bb.hive_bins_data_size = U32::new(hbin::ALIGNMENT as u32);
        bb.clustering_factor = U32::new(1);
        bb.checksum = U32::new(base_block::checksum(bb.as_bytes()));
        let bin = HbinHeader::new(0, hbin::ALIGNMENT as u32);
        let free = CellHeader::free((hbin::ALIGNMENT - hbin::HEADER_SIZE) as u32);
        let b = BASE_BLOCK_SIZE;
        for (at, bytes) in [
            (0, bb.as_bytes()),
            (b, bin.as_bytes()),
            (b + hbin::HEADER_SIZE, free.as_bytes()),
        ] {
            data[at..at + bytes.len()].copy_from_slice(bytes);
        }
        let mut h = Hive::from_bytes(data)?;
        h.make_writable()?;
        let (nb, comp) = encode_name(root_name);
        let flags = KEY_HIVE_ENTRY | KEY_NO_DELETE | if comp { KEY_COMP_NAME } else { 0 };
        let nk = NkHeader::new(flags, filetime_now(), u32::MAX, nb.len() as u16);
        let mut cell = nk.as_bytes().to_vec();
        cell.extend_from_slice(&nb);
        // the root nk comes first in the first hbin, as in Windows-made hives (regipy
        // even assumes it)
        let root = h.alloc_with(&cell)?;
        h.update_base_block(|b| b.root_cell_offset = U32::new(root.0));
        let mut sk = SkHeader::new(0, 0, 1, descriptor.len() as u32)
            .as_bytes()
            .to_vec();
        sk.extend_from_slice(descriptor);
        let sko = h.alloc_with(&sk)?;
        h.update_cell::<SkHeader>(sko, "sk", |s| {
            s.flink = U32::new(sko.0);
            s.blink = U32::new(sko.0);
        })?;
        h.update_key(root, |k| k.key_security_offset = U32::new(sko.0))?;
        h.commit()?;
        Ok(h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sd() -> Vec<u8> {
        // O:SY G:SY, no ACLs, self-relative.
        let mut d = vec![
            1u8, 0, 0x04, 0x80, 20, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        d.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0]);
        d
    }

    #[test]
    fn update_cell_records_only_the_bytes_that_change() {
        let mut h = Hive::new_empty("ROOT", &sd()).unwrap();
        let root = h.root_offset();
        h.dirty.clear();
        h.modified = false;
        h.update_key(root, |k| k.work_var = U32::new(0)).unwrap();
        assert!(h.dirty.is_empty(), "nothing changed: {:?}", h.dirty);
        assert!(h.is_modified());
        h.update_key(root, |k| k.work_var = U32::new(0x0100))
            .unwrap();
        let at = root.file_offset() as usize
            + cell::HEADER_SIZE
            + core::mem::offset_of!(NkHeader, work_var);
        assert_eq!(h.dirty, vec![at + 1..at + 2]);
        assert_eq!(h.key(root).unwrap().header().work_var.get(), 0x0100);
    }

    #[test]
    fn writes_outside_a_cell_are_errors() {
        let mut h = Hive::new_empty("ROOT", &sd()).unwrap();
        let root = h.root_offset();
        let cap = h.cell_capacity(root).unwrap();
        assert!(h.write_cell_data(root, "nk", cap - 1, &[0, 0]).is_err());
        assert!(h.write_cell_data(root, "nk", usize::MAX, &[0]).is_err());
        // An offset inside the free rest of the first bin is not a cell to write through.
        let free = CellOffset(h.hbins_end() as u32 - BASE_BLOCK_SIZE as u32 - 8);
        assert!(h.update_key(free, |k| k.parent = U32::new(0)).is_err());
        assert!(crate::check(&h).is_empty());
    }
}
