//! An entry of the `$ATTRIBUTE_LIST` value (type 0x20): where one attribute (or one extent of
//! it) of a file spread over several MFT records lives. Reference: FORMATS.md C.3.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Fixed 26-byte header of an attribute list entry; the name (`name_length` UTF-16 code units
/// at `name_offset`) follows, the entry is padded to 8 bytes.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct AttributeListEntry {
    /// Attribute type code.
    pub type_code: U32,
    /// Length of the whole entry.
    pub length: U16,
    /// Name length in UTF-16 code units.
    pub name_length: u8,
    /// Byte offset of the name from the entry start.
    pub name_offset: u8,
    /// First VCN of the extent (0 for a resident attribute).
    pub lowest_vcn: U64,
    /// MFT reference of the record holding the attribute (extent).
    pub segment_reference: U64,
    /// Instance of the attribute in that record.
    pub instance: U16,
}

/// Size of [`AttributeListEntry`].
pub const LEN: usize = 26;
const _: () = assert!(core::mem::size_of::<AttributeListEntry>() == LEN);

impl AttributeListEntry {
    /// The header of the entry starting at `entry`, `None` when shorter than 26 bytes.
    pub fn view(entry: &[u8]) -> Option<&AttributeListEntry> {
        AttributeListEntry::ref_from_prefix(entry)
            .ok()
            .map(|(h, _)| h)
    }

    /// Record number of the holding record (the low 48 bits of the reference).
    pub fn record(&self) -> u64 {
        self.segment_reference.get() & 0xFFFF_FFFF_FFFF
    }
}

/// The name of the entry `entry` (the whole entry), `None` when it runs past `entry`.
pub fn name(entry: &[u8]) -> Option<Vec<u16>> {
    let h = AttributeListEntry::view(entry)?;
    let rest = entry.get(usize::from(h.name_offset)..)?;
    let units = <[U16]>::ref_from_prefix_with_elems(rest, usize::from(h.name_length))
        .ok()?
        .0;
    Some(units.iter().map(|u| u.get()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_short_input() {
        let mut e = [0u8; 32];
        e[0] = 0x80;
        e[4] = 32;
        e[6] = 2;
        e[7] = 26;
        e[8] = 3;
        e[16] = 42;
        e[22] = 1;
        e[26] = b'A';
        e[28] = b'B';
        let h = AttributeListEntry::view(&e).unwrap();
        assert_eq!((h.type_code.get(), h.length.get()), (0x80, 32));
        assert_eq!((h.lowest_vcn.get(), h.record()), (3, 42));
        assert_eq!(name(&e), Some(vec![u16::from(b'A'), u16::from(b'B')]));
        assert!(name(&e[..29]).is_none());
        assert!(AttributeListEntry::view(&e[..25]).is_none());
    }
}
