//! Subkey lists: the index leaves "li", "lf" and "lh", which list a key's subkeys, and the
//! index root "ri", which lists leaves when one leaf is not enough. Each is a 4-byte header
//! (signature, element count) followed by the elements. Leaves are sorted by upper-cased name
//! (jointly across the leaves of an ri); an ri never points to another ri.
//!
//! A key's value list is not here: it is a plain cell of u32 vk offsets (`[U32]`), with no
//! header, whose length is the key's value count.
//!
//! Reference: FORMATS.md B.3 ("Subkey lists", "Value list").

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Signature of an index leaf: key node offsets only.
pub const LI_SIGNATURE: [u8; 2] = *b"li";
/// Signature of a fast leaf: key node offsets with a 4-byte name hint (format 1.3+).
pub const LF_SIGNATURE: [u8; 2] = *b"lf";
/// Signature of a hash leaf: key node offsets with a name hash (format 1.5+).
pub const LH_SIGNATURE: [u8; 2] = *b"lh";
/// Signature of an index root: offsets of leaves.
pub const RI_SIGNATURE: [u8; 2] = *b"ri";

/// Header of every subkey list cell (cell data, after the 4-byte size).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ListHeader {
    /// "li", "lf", "lh" or "ri".
    pub signature: [u8; 2],
    /// Number of elements that follow.
    pub number_of_elements: U16,
}

/// Size of [`ListHeader`]: the elements start at this offset in the cell data.
pub const HEADER_SIZE: usize = core::mem::size_of::<ListHeader>();

const _: () = assert!(HEADER_SIZE == 4);

impl ListHeader {
    /// A header with `signature` and `count` elements.
    pub fn new(signature: [u8; 2], count: u16) -> ListHeader {
        ListHeader {
            signature,
            number_of_elements: U16::new(count),
        }
    }
}

/// Element of an "li" leaf.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct LiElement {
    /// Cell offset of the key node.
    pub key_node_offset: U32,
}

/// Element of an "lf" leaf.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct LfElement {
    /// Cell offset of the key node.
    pub key_node_offset: U32,
    /// The first 4 characters of the name as Latin-1, zero padded; a character above 0xFF
    /// gives 0.
    pub name_hint: [u8; 4],
}

/// Element of an "lh" leaf.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct LhElement {
    /// Cell offset of the key node.
    pub key_node_offset: U32,
    /// Hash of the upper-cased name: h = 37 * h + c over its UTF-16 code units, from 0.
    pub name_hash: U32,
}

/// Element of an "ri" root.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RiElement {
    /// Cell offset of an li/lf/lh leaf.
    pub subkeys_list_offset: U32,
}

const _: () = assert!(core::mem::size_of::<LiElement>() == 4);
const _: () = assert!(core::mem::size_of::<LfElement>() == 8);
const _: () = assert!(core::mem::size_of::<LhElement>() == 8);
const _: () = assert!(core::mem::size_of::<RiElement>() == 4);

/// Size of one element of a value list (a u32 vk offset).
pub const VALUE_LIST_ELEMENT_SIZE: usize = core::mem::size_of::<U32>();

#[cfg(test)]
mod tests {
    use super::*;
    use zerocopy::IntoBytes;

    #[test]
    fn elements_are_laid_out_as_specified() {
        let e = LhElement {
            key_node_offset: U32::new(0x120),
            name_hash: U32::new(0xAABB_CCDD),
        };
        assert_eq!(e.as_bytes(), &[0x20, 1, 0, 0, 0xDD, 0xCC, 0xBB, 0xAA]);
        assert_eq!(ListHeader::new(LF_SIGNATURE, 3).as_bytes(), b"lf\x03\0");
    }
}
