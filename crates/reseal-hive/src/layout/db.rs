//! The big data ("db") cell header (format 1.4+): data split into segments of at most
//! 16344 bytes listed in a separate cell of u32 cell offsets.
//!
//! Reference: FORMATS.md B.3.

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Signature of a big data cell.
pub const SIGNATURE: [u8; 2] = *b"db";
/// Largest segment (and largest value data kept in one cell when big data is available):
/// every segment but the last holds exactly this many bytes.
pub const MAX_SEGMENT_SIZE: usize = 16344;
/// Minor version from which big data cells are used.
pub const MIN_MINOR_VERSION: u32 = 4;

/// A big data cell (cell data, after the 4-byte size).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct DbHeader {
    /// "db" ([`SIGNATURE`]).
    pub signature: [u8; 2],
    /// Number of data segments.
    pub number_of_segments: U16,
    /// Cell offset of the segment list (an array of `number_of_segments` u32 cell offsets).
    pub segment_list_offset: U32,
}

/// Size of [`DbHeader`].
pub const HEADER_SIZE: usize = core::mem::size_of::<DbHeader>();

const _: () = assert!(HEADER_SIZE == 8);

impl DbHeader {
    /// The header of a big data cell with `segments` segments listed at `segment_list_offset`.
    pub fn new(segments: u16, segment_list_offset: u32) -> DbHeader {
        DbHeader {
            signature: SIGNATURE,
            number_of_segments: U16::new(segments),
            segment_list_offset: U32::new(segment_list_offset),
        }
    }
}
