//! `GUID` (MS-DTYP 2.3.4.1) as stored: three little-endian fields, then eight bytes.

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The fields of a stored GUID.
#[derive(Debug, Clone, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct GuidFields {
    /// First field (`xxxxxxxx`).
    pub data1: U32,
    /// Second field.
    pub data2: U16,
    /// Third field.
    pub data3: U16,
    /// The last eight bytes, in printed order.
    pub data4: [u8; 8],
}

/// Size of a stored GUID.
pub const SIZE: usize = core::mem::size_of::<GuidFields>();
const _: () = assert!(SIZE == 16);
