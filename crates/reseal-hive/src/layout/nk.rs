//! The key node ("nk") cell header: the fixed 76 bytes of a key, followed by its name
//! (`key_name_length` bytes, Latin-1 when [`KEY_COMP_NAME`] is set, else UTF-16LE).
//!
//! A key points to its parent, its subkey list (see [`super::lists`]), its value list (a plain
//! array of u32 vk offsets), its security cell ([`super::sk`]) and its class name cell (UTF-16LE).
//! Offsets are cell offsets; 0xFFFFFFFF ([`NIL`]) means none.
//!
//! Reference: FORMATS.md B.3.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Signature of a key node.
pub const SIGNATURE: [u8; 2] = *b"nk";
/// The nil cell offset (no such cell).
pub const NIL: u32 = u32::MAX;

/// Flag: root key of the hive.
pub const KEY_HIVE_ENTRY: u16 = 0x0004;
/// Flag: the key cannot be deleted.
pub const KEY_NO_DELETE: u16 = 0x0008;
/// Flag: symbolic link (its target is in the "SymbolicLinkValue" value).
pub const KEY_SYM_LINK: u16 = 0x0010;
/// Flag: the name is stored compressed, one byte per character (Latin-1).
pub const KEY_COMP_NAME: u16 = 0x0020;
/// Flag: predefined handle.
pub const KEY_PREDEF_HANDLE: u16 = 0x0040;

/// Mask of `largest_subkey_name_length` holding the length; since Vista the upper 16 bits
/// carry virtualization-control, user and debug flags, which edits keep.
pub const LARGEST_SUBKEY_NAME_LENGTH_MASK: u32 = 0xFFFF;

/// Fixed part of a key node cell (cell data, after the 4-byte size).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct NkHeader {
    /// "nk" ([`SIGNATURE`]).
    pub signature: [u8; 2],
    /// Flags (`KEY_*`).
    pub flags: U16,
    /// Last written FILETIME.
    pub last_written_timestamp: U64,
    /// Access bits (0 for keys never opened by Windows 8+).
    pub access_bits: U32,
    /// Cell offset of the parent key node.
    pub parent: U32,
    /// Number of (stable) subkeys.
    pub number_of_subkeys: U32,
    /// Number of volatile subkeys (0 on disk).
    pub number_of_volatile_subkeys: U32,
    /// Cell offset of the subkey list (lf/lh/li/ri), [`NIL`] when there is none.
    pub subkeys_list_offset: U32,
    /// Volatile subkey list (no meaning on disk; [`NIL`] in new keys).
    pub volatile_subkeys_list_offset: U32,
    /// Number of values.
    pub number_of_key_values: U32,
    /// Cell offset of the value list, [`NIL`] when there is none.
    pub key_values_list_offset: U32,
    /// Cell offset of the key security ("sk") cell.
    pub key_security_offset: U32,
    /// Cell offset of the class name, [`NIL`] when there is none.
    pub class_name_offset: U32,
    /// Longest subkey name in bytes as UTF-16 (low 16 bits, see
    /// [`LARGEST_SUBKEY_NAME_LENGTH_MASK`]).
    pub largest_subkey_name_length: U32,
    /// Longest subkey class name in bytes.
    pub largest_subkey_class_name_length: U32,
    /// Longest value name in bytes as UTF-16.
    pub largest_value_name_length: U32,
    /// Largest value data size in bytes.
    pub largest_value_data_size: U32,
    /// WorkVar (cached index; 0 on disk).
    pub work_var: U32,
    /// Length of the key name in bytes.
    pub key_name_length: U16,
    /// Length of the class name in bytes.
    pub class_name_length: U16,
}

/// Size of [`NkHeader`]: the key name starts at this offset in the cell data.
pub const HEADER_SIZE: usize = core::mem::size_of::<NkHeader>();

const _: () = assert!(HEADER_SIZE == 76);

impl NkHeader {
    /// The header of a new key: `flags`, timestamp and parent as given, every list, the class
    /// and the security cell nil, all counts and maxima zero, `name_length` bytes of name.
    pub fn new(flags: u16, timestamp: u64, parent: u32, name_length: u16) -> NkHeader {
        let nil = U32::new(NIL);
        NkHeader {
            signature: SIGNATURE,
            flags: U16::new(flags),
            last_written_timestamp: U64::new(timestamp),
            access_bits: U32::new(0),
            parent: U32::new(parent),
            number_of_subkeys: U32::new(0),
            number_of_volatile_subkeys: U32::new(0),
            subkeys_list_offset: nil,
            volatile_subkeys_list_offset: nil,
            number_of_key_values: U32::new(0),
            key_values_list_offset: nil,
            key_security_offset: nil,
            class_name_offset: nil,
            largest_subkey_name_length: U32::new(0),
            largest_subkey_class_name_length: U32::new(0),
            largest_value_name_length: U32::new(0),
            largest_value_data_size: U32::new(0),
            work_var: U32::new(0),
            key_name_length: U16::new(name_length),
            class_name_length: U16::new(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::offset_of;

    #[test]
    fn offsets_match_the_specification() {
        assert_eq!(
            [
                offset_of!(NkHeader, flags),
                offset_of!(NkHeader, last_written_timestamp),
                offset_of!(NkHeader, access_bits),
                offset_of!(NkHeader, parent),
                offset_of!(NkHeader, number_of_subkeys),
                offset_of!(NkHeader, number_of_volatile_subkeys),
                offset_of!(NkHeader, subkeys_list_offset),
                offset_of!(NkHeader, volatile_subkeys_list_offset),
                offset_of!(NkHeader, number_of_key_values),
                offset_of!(NkHeader, key_values_list_offset),
                offset_of!(NkHeader, key_security_offset),
                offset_of!(NkHeader, class_name_offset),
            ],
            [2, 4, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48]
        );
        assert_eq!(
            [
                offset_of!(NkHeader, largest_subkey_name_length),
                offset_of!(NkHeader, largest_subkey_class_name_length),
                offset_of!(NkHeader, largest_value_name_length),
                offset_of!(NkHeader, largest_value_data_size),
                offset_of!(NkHeader, work_var),
                offset_of!(NkHeader, key_name_length),
                offset_of!(NkHeader, class_name_length),
            ],
            [52, 56, 60, 64, 68, 72, 74]
        );
    }

    #[test]
    fn short_input_is_an_error() {
        assert!(NkHeader::ref_from_prefix(&[0u8; HEADER_SIZE - 1][..]).is_err());
    }
}
