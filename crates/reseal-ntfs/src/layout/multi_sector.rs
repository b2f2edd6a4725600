//! The multi-sector header that opens every FILE record and INDX block: signature and the
//! position of the update sequence array. Reference: FORMATS.md C.2.

use zerocopy::little_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// First 8 bytes of a multi-sector protected structure.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct MultiSectorHeader {
    /// `FILE`, `INDX`, `RSTR`, `RCRD`...
    pub signature: [u8; 4],
    /// Byte offset of the update sequence array (the update sequence number, then one saved
    /// u16 per 512-byte block).
    pub usa_offset: U16,
    /// Entries in the update sequence array (1 + blocks).
    pub usa_count: U16,
}

/// Size of [`MultiSectorHeader`].
pub const LEN: usize = 8;

const _: () = assert!(core::mem::size_of::<MultiSectorHeader>() == LEN);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_and_short_input() {
        let b = *b"INDX\x28\x00\x09\x00";
        let (h, _) = MultiSectorHeader::ref_from_prefix(&b[..]).unwrap();
        assert_eq!(&h.signature, b"INDX");
        assert_eq!((h.usa_offset.get(), h.usa_count.get()), (0x28, 9));
        assert!(MultiSectorHeader::ref_from_prefix(&b[..7]).is_err());
    }
}
