//! The FILE record header at the start of every MFT record. Reference: FORMATS.md C.3.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::multi_sector::MultiSectorHeader;

/// Header of an MFT record (the NTFS 3.1 layout, 48 bytes; the update sequence array follows).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FileRecordHeader {
    /// Signature `FILE` and the update sequence array position.
    pub multi_sector: MultiSectorHeader,
    /// `$LogFile` sequence number of the last change.
    pub lsn: U64,
    /// Sequence number, bumped each time the record is freed (the high 16 bits of a reference).
    pub sequence_number: U16,
    /// Hard link count (number of `$FILE_NAME` attributes indexed in a directory).
    pub hard_link_count: U16,
    /// Byte offset of the first attribute (8-aligned).
    pub first_attribute_offset: U16,
    /// [`crate::record::FLAG_IN_USE`], [`crate::record::FLAG_DIRECTORY`], ...
    pub flags: U16,
    /// Bytes used, up to and including the 0xFFFFFFFF end marker (8-aligned).
    pub bytes_in_use: U32,
    /// Bytes allocated: the record size.
    pub bytes_allocated: U32,
    /// Reference of the base record (0 for a base record itself).
    pub base_record: U64,
    /// Instance number the next new attribute gets.
    pub next_attribute_id: U16,
    /// Alignment padding (NTFS 3.1).
    pub reserved: U16,
    /// Low 32 bits of this record's number (NTFS 3.1; older volumes put the array here).
    pub record_number: U32,
}

/// Size of [`FileRecordHeader`].
pub const LEN: usize = 0x30;

const _: () = assert!(core::mem::size_of::<FileRecordHeader>() == LEN);

/// Value of the 4-byte type field that ends the attribute sequence.
pub const END_MARKER: u32 = 0xFFFF_FFFF;

impl FileRecordHeader {
    /// The header view of a record, `None` when shorter than 48 bytes.
    pub fn view(rec: &[u8]) -> Option<&FileRecordHeader> {
        FileRecordHeader::ref_from_prefix(rec).ok().map(|(h, _)| h)
    }

    /// The mutable header view of a record, `None` when shorter than 48 bytes.
    pub fn view_mut(rec: &mut [u8]) -> Option<&mut FileRecordHeader> {
        FileRecordHeader::mut_from_prefix(rec).ok().map(|(h, _)| h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_short_input() {
        let mut b = [0u8; 0x30];
        b[0..4].copy_from_slice(b"FILE");
        b[4] = 0x30;
        b[16] = 3;
        b[20] = 0x38;
        b[22] = 1;
        b[24] = 0x98;
        b[29] = 4;
        b[44] = 70;
        let h = FileRecordHeader::view(&b).unwrap();
        assert_eq!(&h.multi_sector.signature, b"FILE");
        assert_eq!(h.multi_sector.usa_offset.get(), 0x30);
        assert_eq!(h.sequence_number.get(), 3);
        assert_eq!(h.first_attribute_offset.get(), 0x38);
        assert_eq!(h.flags.get(), 1);
        assert_eq!(h.bytes_in_use.get(), 0x98);
        assert_eq!(h.bytes_allocated.get(), 1024);
        assert_eq!(h.record_number.get(), 70);
        assert!(FileRecordHeader::view(&b[..0x2F]).is_none());
    }
}
