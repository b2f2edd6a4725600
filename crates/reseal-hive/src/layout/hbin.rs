//! The hive bin ("hbin") header: the first 32 bytes of every bin. Bins follow the base block
//! back to back, each a multiple of 4096 bytes, and cells fill each bin completely after its
//! header (the last cell of a bin is usually a free cell covering the rest). A cell never
//! crosses a bin boundary.
//!
//! Reference: FORMATS.md B.2.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Signature of a hive bin.
pub const SIGNATURE: [u8; 4] = *b"hbin";
/// Bin sizes are multiples of this (one page).
pub const ALIGNMENT: usize = 4096;

/// Header of a hive bin; the first cell starts right after it ([`HEADER_SIZE`]).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct HbinHeader {
    /// "hbin" ([`SIGNATURE`]).
    pub signature: [u8; 4],
    /// Offset of this bin relative to the first bin (file offset - 4096).
    pub offset: U32,
    /// Size of this bin in bytes, header included (a multiple of [`ALIGNMENT`]).
    pub size: U32,
    /// Reserved.
    pub reserved: [u8; 8],
    /// FILETIME; meaningful in the first bin only (a backup of the base block's timestamp).
    pub timestamp: U64,
    /// Spare (MemAlloc in memory; no meaning on disk).
    pub spare: U32,
}

/// Size of [`HbinHeader`]: the first cell of a bin starts at this offset in the bin.
pub const HEADER_SIZE: usize = core::mem::size_of::<HbinHeader>();

const _: () = assert!(HEADER_SIZE == 32);

impl HbinHeader {
    /// The header of a new bin at `offset` (relative to the first bin) of `size` bytes, with
    /// the reserved fields, timestamp and spare zero.
    pub fn new(offset: u32, size: u32) -> HbinHeader {
        HbinHeader {
            signature: SIGNATURE,
            offset: U32::new(offset),
            size: U32::new(size),
            reserved: [0; 8],
            timestamp: U64::new(0),
            spare: U32::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;
    use zerocopy::{FromBytes, IntoBytes};

    #[test]
    fn offsets_match_the_specification() {
        assert_eq!(
            [
                offset_of!(HbinHeader, offset),
                offset_of!(HbinHeader, size),
                offset_of!(HbinHeader, reserved),
                offset_of!(HbinHeader, timestamp),
                offset_of!(HbinHeader, spare),
            ],
            [4, 8, 12, 20, 28]
        );
        let h = HbinHeader::new(0x1000, 0x2000);
        assert_eq!(&h.as_bytes()[..12], b"hbin\0\x10\0\0\0\x20\0\0");
        assert!(HbinHeader::ref_from_prefix(&[0u8; HEADER_SIZE - 1][..]).is_err());
    }
}
