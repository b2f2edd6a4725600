//! Transaction log structures (`.LOG1`/`.LOG2`, and the older `.LOG`). A log starts with a
//! copy of the base block ([`super::base_block`], file type 1/2 old or 6 new) padded to 512
//! bytes, then either
//! * the **new format** (Windows 8.1+): log entries from offset 512, each an [`HvleHeader`],
//!   `dirty_pages_count` [`DirtyPageRef`]s, then the page data in the same order; or
//! * the **old format**: [`DIRT_SIGNATURE`] at 512, a bitmap with one bit per 512-byte page of
//!   the hive bins (least significant bit first), and the dirty pages from the next sector on.
//!
//! Reference: FORMATS.md B.5.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Offset of the first log entry (new format) or of the "DIRT" signature (old format).
pub const ENTRIES_OFFSET: usize = 512;
/// Signature of a new-format log entry.
pub const HVLE_SIGNATURE: [u8; 4] = *b"HvLE";
/// Signature of the old-format dirty-page vector.
pub const DIRT_SIGNATURE: [u8; 4] = *b"DIRT";
/// Log entry sizes are multiples of this.
pub const ENTRY_ALIGNMENT: usize = 512;
/// Old format: each bitmap bit stands for a page of this many bytes.
pub const DIRT_PAGE_SIZE: usize = 512;

/// Header of a new-format log entry.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct HvleHeader {
    /// "HvLE" ([`HVLE_SIGNATURE`]).
    pub signature: [u8; 4],
    /// Size of the whole entry in bytes (a multiple of [`ENTRY_ALIGNMENT`]).
    pub size: U32,
    /// Copy of the base block's flags (bit 0).
    pub flags: U32,
    /// Sequence number of the entry.
    pub sequence_number: U32,
    /// Hive bins data size after this entry is applied.
    pub hive_bins_data_size: U32,
    /// Number of dirty pages (and of [`DirtyPageRef`]s after this header).
    pub dirty_pages_count: U32,
    /// Hash-1: Marvin32 over the entry bytes from [`HEADER_SIZE`] to its end.
    pub hash_1: U64,
    /// Hash-2: Marvin32 over the first [`HASH_2_COVERED`] bytes of the entry.
    pub hash_2: U64,
}

/// Size of [`HvleHeader`]: the dirty page references start here.
pub const HEADER_SIZE: usize = core::mem::size_of::<HvleHeader>();
/// Bytes of an entry covered by Hash-2: everything before it, Hash-1 included.
pub const HASH_2_COVERED: usize = core::mem::offset_of!(HvleHeader, hash_2);

const _: () = assert!(HEADER_SIZE == 40);
const _: () = assert!(HASH_2_COVERED == 32);

/// Where one dirty page of a log entry goes.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DirtyPageRef {
    /// Offset of the page relative to the first hive bin.
    pub offset: U32,
    /// Size of the page in bytes.
    pub size: U32,
}

const _: () = assert!(core::mem::size_of::<DirtyPageRef>() == 8);

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn offsets_match_the_specification() {
        assert_eq!(
            [
                offset_of!(HvleHeader, size),
                offset_of!(HvleHeader, flags),
                offset_of!(HvleHeader, sequence_number),
                offset_of!(HvleHeader, hive_bins_data_size),
                offset_of!(HvleHeader, dirty_pages_count),
                offset_of!(HvleHeader, hash_1),
                offset_of!(HvleHeader, hash_2),
            ],
            [4, 8, 12, 16, 20, 24, 32]
        );
        assert_eq!(offset_of!(DirtyPageRef, size), 4);
    }
}
