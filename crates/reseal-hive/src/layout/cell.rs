//! The cell header: the signed 32-bit size in front of every cell of a hive bin.
//!
//! The size counts the header itself and is a multiple of 8; a **negative** size marks an
//! allocated cell, a positive one a free cell. Cell offsets (relative to the first bin) point
//! at this header; the cell's data (an nk, vk, sk, list or raw data) follows it.
//!
//! Reference: FORMATS.md B.3.

use zerocopy::little_endian::I32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Cell sizes (and cell offsets) are multiples of this.
pub const ALIGNMENT: usize = 8;
/// Smallest possible cell: the header and 4 bytes.
pub const MIN_SIZE: usize = 8;

/// The size field in front of a cell's data.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct CellHeader {
    /// Cell size in bytes including this field; negative = allocated, positive = free.
    pub size: I32,
}

/// Size of [`CellHeader`]: the cell's data starts at this offset in the cell.
pub const HEADER_SIZE: usize = core::mem::size_of::<CellHeader>();

const _: () = assert!(HEADER_SIZE == 4);

impl CellHeader {
    /// The header of an allocated cell of `size` bytes (stored negated).
    pub fn allocated(size: u32) -> CellHeader {
        CellHeader {
            size: I32::new((size as i32).wrapping_neg()),
        }
    }

    /// The header of a free cell of `size` bytes.
    pub fn free(size: u32) -> CellHeader {
        CellHeader {
            size: I32::new(size as i32),
        }
    }

    /// The raw signed size as stored.
    pub fn raw(&self) -> i32 {
        self.size.get()
    }

    /// The cell size in bytes (the absolute value of the stored size).
    pub fn len(&self) -> usize {
        self.size.get().unsigned_abs() as usize
    }

    /// Whether the stored size is zero (no cell at all).
    pub fn is_empty(&self) -> bool {
        self.size.get() == 0
    }

    /// Whether the cell is allocated (negative size).
    pub fn is_allocated(&self) -> bool {
        self.size.get() < 0
    }

    /// Whether the cell is free (positive size).
    pub fn is_free(&self) -> bool {
        self.size.get() > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    #[test]
    fn allocated_cells_store_a_negative_size() {
        let a = CellHeader::allocated(0x20);
        assert_eq!(a.as_bytes(), &(-0x20i32).to_le_bytes());
        assert!(a.is_allocated() && !a.is_free() && a.len() == 0x20);
        let f = CellHeader::free(0x18);
        assert_eq!(f.as_bytes(), &0x18u32.to_le_bytes());
        assert!(f.is_free() && !f.is_allocated() && f.len() == 0x18);
        assert!(CellHeader::free(0).is_empty());
    }
}
