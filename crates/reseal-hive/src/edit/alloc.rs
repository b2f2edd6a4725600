//! The cell allocator: free cells indexed by offset and size, reused best-fit and split,
//! coalesced with free neighbours when freed; new hbins appended when nothing fits.

use std::collections::{BTreeMap, BTreeSet};

use zerocopy::little_endian::U32;
use zerocopy::IntoBytes;

use crate::base_block::BASE_BLOCK_SIZE;
use crate::error::{HiveError, Result};
use crate::hive::{CellOffset, Hive};
use crate::layout::cell::{self, CellHeader};
use crate::layout::hbin::{self, HbinHeader};

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
        let need = (len + cell::HEADER_SIZE).div_ceil(cell::ALIGNMENT) * cell::ALIGNMENT;
        if need > 0x7FFF_0000 {
            return Err(HiveError::InvalidArgument {
                reason: format!("cell of {len} bytes is too large"),
            });
        }
        let hit = self.alloc_mut()?.by_size.range((need, 0)..).next().copied();
        let file = match hit {
            Some((size, off)) => {
                self.alloc_mut()?.remove(off);
                if size - need >= cell::MIN_SIZE {
                    self.write_cell_header(off + need, CellHeader::free((size - need) as u32));
                    self.alloc_mut()?.insert(off + need, size - need);
                    self.write_cell_header(off, CellHeader::allocated(need as u32));
                } else {
                    self.write_cell_header(off, CellHeader::allocated(size as u32));
                }
                off
            }
            None => {
                let bin_size =
                    (need + hbin::HEADER_SIZE).div_ceil(hbin::ALIGNMENT) * hbin::ALIGNMENT;
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
                let hdr = HbinHeader::new((start - BASE_BLOCK_SIZE) as u32, bin_size as u32);
                self.write_bytes(start, hdr.as_bytes());
                // zero the whole new bin (slack after the last bin may hold junk)
                let zeros = vec![0u8; bin_size - hbin::HEADER_SIZE];
                self.write_bytes(start + hbin::HEADER_SIZE, &zeros);
                self.hbins_end = end;
                self.update_base_block(|b| {
                    b.hive_bins_data_size = U32::new((end - BASE_BLOCK_SIZE) as u32);
                });
                let a = self.alloc_mut()?;
                a.bins.insert(start, end);
                let off = start + hbin::HEADER_SIZE;
                let rest = bin_size - hbin::HEADER_SIZE - need;
                if rest >= cell::MIN_SIZE {
                    self.write_cell_header(off + need, CellHeader::free(rest as u32));
                    self.alloc_mut()?.insert(off + need, rest);
                    self.write_cell_header(off, CellHeader::allocated(need as u32));
                } else {
                    self.write_cell_header(off, CellHeader::allocated((need + rest) as u32));
                }
                off
            }
        };
        let size = self.cell_header(file).len();
        let zeros = vec![0u8; size - cell::HEADER_SIZE];
        self.write_bytes(file + cell::HEADER_SIZE, &zeros);
        Ok(CellOffset((file - BASE_BLOCK_SIZE) as u32))
    }

    /// Allocates a cell and fills it with `data`.
    pub(crate) fn alloc_with(&mut self, data: &[u8]) -> Result<CellOffset> {
        let c = self.alloc_cell(data.len())?;
        self.write_cell_data(c, "new cell", 0, data)?;
        Ok(c)
    }

    /// Frees an allocated cell: zeroes it, marks it free and coalesces with free
    /// neighbours in the same hbin.
    pub(crate) fn free_cell(&mut self, off: CellOffset) -> Result<()> {
        let (file, size) = self.cell_span(off, "cell to free")?;
        self.alloc_mut()?;
        let zeros = vec![0u8; size - cell::HEADER_SIZE];
        self.write_bytes(file + cell::HEADER_SIZE, &zeros);
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
                // no longer a cell of its own: clear its size header
                self.write_cell_header(next, CellHeader::free(0));
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
                self.write_cell_header(file, CellHeader::free(0));
            }
        }
        self.write_cell_header(start, CellHeader::free(total as u32));
        self.alloc_mut()?.insert(start, total);
        Ok(())
    }

    pub(super) fn cell_capacity(&self, off: CellOffset) -> Result<usize> {
        Ok(self.cell_span(off, "cell")?.1 - cell::HEADER_SIZE)
    }

    /// Writes list bytes into `old` when they fit, else into a new cell (freeing `old`).
    pub(super) fn rewrite_cell(&mut self, old: CellOffset, bytes: &[u8]) -> Result<CellOffset> {
        if self.cell_capacity(old)? >= bytes.len() {
            self.write_cell_data(old, "cell", 0, bytes)?;
            Ok(old)
        } else {
            let n = self.alloc_with(bytes)?;
            self.free_cell(old)?;
            Ok(n)
        }
    }
}
