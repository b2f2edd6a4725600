//! The header of an LSA name value (SECURITY `Policy\PolAcDmN`, `PolPrDmN`, `PolDnDDN`), in
//! the shape of a `UNICODE_STRING`: the UTF-16LE name follows at `offset`.
//!
//! Reference: FORMATS.md A.2.

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The 8-byte header.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct LsaNameHeader {
    /// Length of the name in bytes.
    pub length: U16,
    /// Capacity in bytes (the length with its terminating NUL, as Windows writes it).
    pub maximum_length: U16,
    /// Offset of the name from the start of the value.
    pub offset: U32,
}

/// Size of [`LsaNameHeader`].
pub const SIZE: usize = core::mem::size_of::<LsaNameHeader>();

const _: () = assert!(SIZE == 8);

impl LsaNameHeader {
    /// The view of the start of `d`, `None` when it is shorter than [`SIZE`].
    pub fn view(d: &[u8]) -> Option<&LsaNameHeader> {
        LsaNameHeader::ref_from_prefix(d).ok().map(|(h, _)| h)
    }
}
