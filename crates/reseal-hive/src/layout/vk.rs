//! The key value ("vk") cell header; the value name follows it.
//!
//! Reference: FORMATS.md B.3.

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Signature of a key value cell.
pub const SIGNATURE: [u8; 2] = *b"vk";
/// `data_size` bit 31: the data (at most 4 bytes) is stored in `data_offset` itself.
pub const DATA_INLINE: u32 = 0x8000_0000;

/// Fixed part of a key value cell (cell data, after the 4-byte size).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VkHeader {
    /// "vk" ([`SIGNATURE`]).
    pub signature: [u8; 2],
    /// Length of the name in bytes (0 = the default value).
    pub name_length: U16,
    /// Data length; bit 31 = [`DATA_INLINE`].
    pub data_size: U32,
    /// Offset of the data cell, or the data itself when inline.
    pub data_offset: U32,
    /// Value type (REG_*; unknown types are kept).
    pub data_type: U32,
    /// Flags (bit 0 = name is Latin-1 "compressed").
    pub flags: U16,
    /// Spare.
    pub spare: U16,
}

/// Size of [`VkHeader`]: the name starts at this offset in the cell data.
pub const HEADER_SIZE: usize = core::mem::size_of::<VkHeader>();

const _: () = assert!(HEADER_SIZE == 20);
