//! The key value ("vk") cell header; the value name follows it.
//!
//! Reference: FORMATS.md B.3.

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Signature of a key value cell.
pub const SIGNATURE: [u8; 2] = *b"vk";
/// `data_size` bit 31: the data (at most 4 bytes) is stored in `data_offset` itself.
pub const DATA_INLINE: u32 = 0x8000_0000;
/// Largest data stored inline (in `data_offset`).
pub const MAX_INLINE_DATA: usize = 4;
/// `flags` bit 0: the name is stored compressed, one byte per character (Latin-1).
pub const VALUE_COMP_NAME: u16 = 0x0001;
/// `flags` bit 1: tombstone value (layered keys).
pub const VALUE_TOMBSTONE: u16 = 0x0002;

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
    /// Flags ([`VALUE_COMP_NAME`], [`VALUE_TOMBSTONE`]).
    pub flags: U16,
    /// Spare.
    pub spare: U16,
}

/// Size of [`VkHeader`]: the name starts at this offset in the cell data.
pub const HEADER_SIZE: usize = core::mem::size_of::<VkHeader>();

const _: () = assert!(HEADER_SIZE == 20);

impl VkHeader {
    /// The header of a value: name length and flags, data size field (with [`DATA_INLINE`]
    /// when inline), data offset field and type.
    pub fn new(
        name_length: u16,
        flags: u16,
        data_size: u32,
        data_offset: u32,
        data_type: u32,
    ) -> VkHeader {
        VkHeader {
            signature: SIGNATURE,
            name_length: U16::new(name_length),
            data_size: U32::new(data_size),
            data_offset: U32::new(data_offset),
            data_type: U32::new(data_type),
            flags: U16::new(flags),
            spare: U16::new(0),
        }
    }
}
