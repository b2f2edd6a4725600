//! The big data ("db") cell header (format 1.4+): data split into segments of at most
//! 16344 bytes listed in a separate cell of u32 cell offsets.
//!
//! Reference: FORMATS.md B.3.

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Signature of a big data cell.
pub const SIGNATURE: [u8; 2] = *b"db";

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

const _: () = assert!(core::mem::size_of::<DbHeader>() == 8);
