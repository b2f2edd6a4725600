//! The cell allocator: free cells indexed by offset and size, reused best-fit and split,
//! coalesced with free neighbours when freed; new hbins appended when nothing fits.

use std::collections::{BTreeMap, BTreeSet};

use crate::base_block::{self, BASE_BLOCK_SIZE};
use crate::error::{HiveError, Result};
use crate::hive::{CellOffset, Hive};

/// Free-cell index built when a hive is made writable.
#[derive(Debug, Clone, Default)]
pub struct Alloc {
    /// hbin file start -> file end.
    pub(super) bins: BTreeMap<usize, usize>,
    /// free cell file offset -> size.
    pub(super) by_off: BTreeMap<usize, usize>,
    /// (size, file offset).
    pub(super) by_size: BTreeSet<(usize, usize)>,
}

impl Alloc {
    pub(super) fn insert(&mut self, off: usize, size: usize) {
        self.by_off.insert(off, size);
        self.by_size.insert((size, off));
    }
    pub(super) fn remove(&mut self, off: usize) -> Option<usize> {
        let s = self.by_off.remove(&off)?;
        self.by_size.remove(&(s, off));
        Some(s)
    }
}

impl Hive {
    /// Allocates a cell with room for `len` data bytes; the data area is zeroed.
    pub(crate) fn alloc_cell(&mut self, len: usize) -> Result<CellOffset> {
        let need = (len + 4).div_ceil(8) * 8;
        if need > 0x7FFF_0000 {
            return Err(HiveError::InvalidArgument {
                reason: format!("cell of {len} bytes is too large"),
            });
        }
        let hit = self.alloc_mut()?.by_size.range((need, 0)..).next().copied();
        let file = match hit {
            Some((size, off)) => {
                self.alloc_mut()?.remove(off);
                if size - need >= 8 {
                    self.write_u32(off + need, (size - need) as u32);
                    self.alloc_mut()?.insert(off + need, size - need);
                    self.write_u32(off, (need as i32).wrapping_neg() as u32);
                } else {
                    self.write_u32(off, (size as i32).wrapping_neg() as u32);
                }
                off
            }
            None => {
                let bin_size = (need + 32).div_ceil(4096) * 4096;
                let start = self.hbins_end;
                let end = start + bin_size;
                if end - BASE_BLOCK_SIZE > u32::MAX as usize - 4096 {
                    return Err(HiveError::InvalidArgument {
                        reason: "hive would exceed 4 GiB".into(),
                    });
                }
                if self.data.len() < end {
                    self.data.resize(end, 0);
                }
                let mut hdr = [0u8; 32];
                hdr[0..4].copy_from_slice(b"hbin");
                hdr[4..8].copy_from_slice(&((start - BASE_BLOCK_SIZE) as u32).to_le_bytes());
                hdr[8..12].copy_from_slice(&(bin_size as u32).to_le_bytes());
                self.write_bytes(start, &hdr);
                // zero the whole new bin (slack after the last bin may hold junk)
                let zeros = vec![0u8; bin_size - 32];
                self.write_bytes(start + 32, &zeros);
                self.hbins_end = end;
                self.write_u32(
                    base_block::HBINS_SIZE_OFFSET,
                    (end - BASE_BLOCK_SIZE) as u32,
                );
                let a = self.alloc_mut()?;
                a.bins.insert(start, end);
                let off = start + 32;
                let rest = bin_size - 32 - need;
                if rest >= 8 {
                    self.write_u32(off + need, rest as u32);
                    self.alloc_mut()?.insert(off + need, rest);
                    self.write_u32(off, (need as i32).wrapping_neg() as u32);
                } else {
                    self.write_u32(off, ((need + rest) as i32).wrapping_neg() as u32);
                }
                off
            }
        };
        let size = (self.u32_at(file) as i32).unsigned_abs() as usize;
        let zeros = vec![0u8; size - 4];
        self.write_bytes(file + 4, &zeros);
        Ok(CellOffset((file - BASE_BLOCK_SIZE) as u32))
    }

    /// Allocates a cell and fills it with `data`.
    pub(crate) fn alloc_with(&mut self, data: &[u8]) -> Result<CellOffset> {
        let c = self.alloc_cell(data.len())?;
        self.write_bytes(c.0 as usize + BASE_BLOCK_SIZE + 4, data);
        Ok(c)
    }

    /// Frees an allocated cell: zeroes it, marks it free and coalesces with free
    /// neighbours in the same hbin.
    pub(crate) fn free_cell(&mut self, off: CellOffset) -> Result<()> {
        let (file, size) = self.cell_span(off, "cell to free")?;
        self.alloc_mut()?;
        let zeros = vec![0u8; size - 4];
        self.write_bytes(file + 4, &zeros);
        let a = self.alloc.as_deref().ok_or(HiveError::ReadOnly)?;
        let (&bstart, &bend) = a
            .bins
            .range(..=file)
            .next_back()
            .ok_or_else(|| HiveError::corrupt("cell to free", off, "not inside an hbin"))?;
        let mut start = file;
        let mut total = size;
        let next = file + size;
        if next < bend {
            if let Some(ns) = self.alloc_mut()?.remove(next) {
                total += ns;
                self.write_u32(next, 0);
            }
        }
        let prev = self
            .alloc
            .as_deref()
            .and_then(|a| a.by_off.range(..file).next_back().map(|(&p, &s)| (p, s)));
        if let Some((p, ps)) = prev {
            if p >= bstart && p + ps == file {
                self.alloc_mut()?.remove(p);
                start = p;
                total += ps;
                self.write_u32(file, 0);
            }
        }
        self.write_u32(start, total as u32);
        self.alloc_mut()?.insert(start, total);
        Ok(())
    }

    pub(super) fn cell_capacity(&self, off: CellOffset) -> Result<usize> {
        Ok(self.cell_span(off, "cell")?.1 - 4)
    }

    /// Writes list bytes into `old` when they fit, else into a new cell (freeing `old`).
    pub(super) fn rewrite_cell(&mut self, old: CellOffset, bytes: &[u8]) -> Result<CellOffset> {
        if self.cell_capacity(old)? >= bytes.len() {
            self.write_bytes(old.0 as usize + BASE_BLOCK_SIZE + 4, bytes);
            Ok(old)
        } else {
            let n = self.alloc_with(bytes)?;
            self.free_cell(old)?;
            Ok(n)
        }
    }
}
