//! The GPT header and the GPT partition entry.
//!
//! Reference: UEFI Specification 2.10, section 5.3.2 "GPT Header" (table 5.5) and section
//! 5.3.3 "GPT Partition Entry Array" (table 5.6).

use uuid::Uuid;
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Signature of a GPT header.
pub const SIGNATURE: [u8; 8] = *b"EFI PART";
/// Partition attribute bit 2: legacy BIOS bootable.
pub const ATTR_LEGACY_BIOS_BOOTABLE: u64 = 1 << 2;
/// Byte offset of `header_crc32` inside the header (zeroed while the CRC is computed).
pub const HEADER_CRC_OFFSET: usize = 16;

/// The defined 92 bytes of a GPT header; the rest of its sector is reserved (zero).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct GptHeader {
    /// "EFI PART" ([`SIGNATURE`]).
    pub signature: [u8; 8],
    /// Revision (0x00010000 for 1.0).
    pub revision: U32,
    /// Header size in bytes covered by `header_crc32` (92 up to the sector size).
    pub header_size: U32,
    /// CRC-32 of the first `header_size` bytes with this field zeroed.
    pub header_crc32: U32,
    /// Reserved, zero.
    pub reserved: U32,
    /// LBA that contains this header.
    pub my_lba: U64,
    /// LBA of the other header copy.
    pub alternate_lba: U64,
    /// First LBA usable by partitions.
    pub first_usable_lba: U64,
    /// Last LBA usable by partitions.
    pub last_usable_lba: U64,
    /// Disk GUID (mixed-endian as GPT stores GUIDs).
    pub disk_guid: [u8; 16],
    /// First LBA of the partition entry array.
    pub partition_entry_lba: U64,
    /// Number of entries in the array.
    pub number_of_partition_entries: U32,
    /// Size of one entry in bytes (128 × 2^n).
    pub size_of_partition_entry: U32,
    /// CRC-32 of the whole entry array.
    pub partition_entry_array_crc32: U32,
}

const _: () = assert!(size_of::<GptHeader>() == 92);
const _: () = assert!(core::mem::offset_of!(GptHeader, header_crc32) == HEADER_CRC_OFFSET);

impl GptHeader {
    /// The header view at the start of `sector`; `None` when it is shorter than 92 bytes.
    pub fn view(sector: &[u8]) -> Option<&GptHeader> {
        GptHeader::ref_from_prefix(sector).ok().map(|(h, _)| h)
    }

    /// The disk GUID.
    pub fn disk_guid(&self) -> Uuid {
        Uuid::from_bytes_le(self.disk_guid)
    }
}

/// The defined 128 bytes of a partition entry (larger entry sizes pad with reserved bytes).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct GptPartitionEntry {
    /// Partition type GUID; all zero = unused entry.
    pub partition_type_guid: [u8; 16],
    /// Unique partition GUID.
    pub unique_partition_guid: [u8; 16],
    /// First LBA of the partition.
    pub starting_lba: U64,
    /// Last LBA of the partition (inclusive).
    pub ending_lba: U64,
    /// Attribute bits (bit 2 = [`ATTR_LEGACY_BIOS_BOOTABLE`]).
    pub attributes: U64,
    /// Partition name, UTF-16LE, NUL-padded.
    pub partition_name: [U16; 36],
}

const _: () = assert!(size_of::<GptPartitionEntry>() == 128);

impl GptPartitionEntry {
    /// The entry view at the start of `entry`; `None` when it is shorter than 128 bytes.
    pub fn view(entry: &[u8]) -> Option<&GptPartitionEntry> {
        GptPartitionEntry::ref_from_prefix(entry)
            .ok()
            .map(|(e, _)| e)
    }

    /// The partition type GUID.
    pub fn type_guid(&self) -> Uuid {
        Uuid::from_bytes_le(self.partition_type_guid)
    }

    /// The unique partition GUID.
    pub fn unique_guid(&self) -> Uuid {
        Uuid::from_bytes_le(self.unique_partition_guid)
    }

    /// The name up to the first NUL (invalid UTF-16 replaced).
    pub fn name(&self) -> String {
        let units: Vec<u16> = self
            .partition_name
            .iter()
            .map(|u| u.get())
            .take_while(|&u| u != 0)
            .collect();
        String::from_utf16_lossy(&units)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_at_spec_offsets_and_short_input() {
        let mut h = [0u8; 92];
        h[..8].copy_from_slice(&SIGNATURE);
        h[24] = 1;
        h[80] = 128;
        let v = GptHeader::view(&h).unwrap();
        assert_eq!(v.my_lba.get(), 1);
        assert_eq!(v.number_of_partition_entries.get(), 128);
        assert!(GptHeader::view(&h[..91]).is_none());

        let mut e = [0u8; 128];
        e[32] = 34;
        e[56] = b'E';
        e[58] = b'F';
        let v = GptPartitionEntry::view(&e).unwrap();
        assert_eq!(v.starting_lba.get(), 34);
        assert_eq!(v.name(), "EF");
        assert!(GptPartitionEntry::view(&e[..127]).is_none());
    }
}
