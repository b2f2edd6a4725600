//! The VHDX file type identifier, header, region table, metadata table, file parameters and
//! parent locator; every field is little-endian, GUIDs are stored in their mixed-endian form.
//!
//! Reference: Microsoft "VHDX Format Specification" 1.0, section 2.2 "Header Section" (2.2.1
//! file type identifier, 2.2.2 headers, 2.2.3 region table), 2.5 "BAT" and 2.6 "Metadata
//! Region" (2.6.1 metadata table, 2.6.2.1 file parameters, 2.6.2.6 parent locator); FORMATS.md
//! E.2. The log (section 2.3) is not parsed: a non-empty log is refused before any use.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Signature of the file type identifier at offset 0.
pub const FILE_IDENTIFIER_SIGNATURE: [u8; 8] = *b"vhdxfile";
/// Signature of a header.
pub const HEADER_SIGNATURE: [u8; 4] = *b"head";
/// Signature of a region table.
pub const REGION_TABLE_SIGNATURE: [u8; 4] = *b"regi";
/// Signature of the metadata table.
pub const METADATA_TABLE_SIGNATURE: [u8; 8] = *b"metadata";
/// Byte offset of the `checksum` field of a header and of a region table header.
pub const CHECKSUM_OFFSET: usize = 4;
/// Byte offset of a header's `version`.
pub const HEADER_VERSION_OFFSET: usize = 66;
/// Byte offset of the region table's `entry_count`.
pub const REGION_ENTRY_COUNT_OFFSET: usize = 8;
/// Byte offset of the metadata table's `entry_count`.
pub const METADATA_ENTRY_COUNT_OFFSET: usize = 10;
/// Most entries of a region table or metadata table.
pub const MAX_TABLE_ENTRIES: usize = 2047;

/// Region table entry flag: the region is required (an unknown required region is an error).
pub const REGION_REQUIRED: u32 = 1;
/// Metadata table entry flag IsVirtualDisk (bit 1).
pub const METADATA_IS_VIRTUAL_DISK: u32 = 2;
/// Metadata table entry flag IsRequired (bit 2).
pub const METADATA_IS_REQUIRED: u32 = 4;
/// File parameters flag LeaveBlocksAllocated (bit 0).
pub const FILE_PARAMS_LEAVE_BLOCKS_ALLOCATED: u32 = 1;
/// File parameters flag HasParent (bit 1).
pub const FILE_PARAMS_HAS_PARENT: u32 = 2;

/// BAT entry (section 2.5.1, a little-endian u64): bits 0-2 the block state.
pub const BAT_STATE_MASK: u64 = 7;
/// BAT entry: bits 20-63 the file offset of the block in MiB, i.e. the offset in bytes with the
/// low 20 bits cleared.
pub const BAT_FILE_OFFSET_MASK: u64 = !((1 << 20) - 1);
/// Payload block state: every sector is in this file.
pub const PAYLOAD_BLOCK_FULLY_PRESENT: u64 = 6;
/// Payload block state: the chunk's sector bitmap says which sectors are in this file.
pub const PAYLOAD_BLOCK_PARTIALLY_PRESENT: u64 = 7;
/// Sector bitmap block state: present.
pub const SB_BLOCK_PRESENT: u64 = 6;

/// The state bits of BAT entry `e`.
pub fn bat_state(e: u64) -> u64 {
    e & BAT_STATE_MASK
}

/// The file offset in bytes of BAT entry `e` (also: a byte offset rounded down to 1 MiB).
pub fn bat_file_offset(e: u64) -> u64 {
    e & BAT_FILE_OFFSET_MASK
}

/// Region GUID of the BAT.
pub const BAT_GUID: u128 = 0x2DC2_7766_F623_4200_9D64_115E_9BFD_4A08;
/// Region GUID of the metadata region.
pub const METADATA_GUID: u128 = 0x8B7C_A206_4790_4B9A_B8FE_575F_050F_886E;
/// Metadata item: file parameters ([`FileParameters`]).
pub const FILE_PARAMS_GUID: u128 = 0xCAA1_6737_FA36_4D43_B3B6_33F0_AA44_E76B;
/// Metadata item: virtual disk size (u64).
pub const VDISK_SIZE_GUID: u128 = 0x2FA5_4224_CD1B_4876_B211_5DBE_D83B_F4B8;
/// Metadata item: page 83 data (the virtual disk id, a GUID).
pub const PAGE83_GUID: u128 = 0xBECA_12AB_B2E6_4523_93EF_C309_E000_C746;
/// Metadata item: logical sector size (u32).
pub const LOGICAL_SECTOR_GUID: u128 = 0x8141_BF1D_A96F_4709_BA47_F233_A8FA_AB5F;
/// Metadata item: physical sector size (u32).
pub const PHYSICAL_SECTOR_GUID: u128 = 0xCDA3_48C7_445D_4471_9CC9_E988_5251_C556;
/// Metadata item: parent locator ([`ParentLocatorHeader`] + entries + UTF-16LE strings).
pub const PARENT_LOCATOR_GUID: u128 = 0xA8D3_5F2D_B30B_454D_ABF7_D3D8_4834_AB0C;
/// Parent locator type of a VHDX parent.
pub const VHDX_LOCATOR_TYPE: u128 = 0xB04A_EFB7_D19E_4A81_B789_25B8_E944_5913;

/// The GUID `v` in the mixed-endian byte order VHDX stores.
pub fn guid_le(v: u128) -> [u8; 16] {
    uuid::Uuid::from_u128(v).to_bytes_le()
}

/// The defined start of the 64 KiB file type identifier.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FileIdentifier {
    /// "vhdxfile" ([`FILE_IDENTIFIER_SIGNATURE`]).
    pub signature: [u8; 8],
    /// Creator, UTF-16LE, NUL-padded (informational).
    pub creator: [U16; 256],
}

const _: () = assert!(size_of::<FileIdentifier>() == 520);

/// A 4 KiB header (two copies, at 64 KiB and 128 KiB).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VhdxHeader {
    /// "head" ([`HEADER_SIGNATURE`]).
    pub signature: [u8; 4],
    /// CRC-32C of the 4 KiB with this field zeroed.
    pub checksum: U32,
    /// Sequence number; the valid header with the higher one is current.
    pub sequence_number: U64,
    /// FileWriteGuid: changed on the first write of a session.
    pub file_write_guid: [u8; 16],
    /// DataWriteGuid: changed before the first change of user-visible data.
    pub data_write_guid: [u8; 16],
    /// LogGuid; zero when the log is empty.
    pub log_guid: [u8; 16],
    /// Log format version (0).
    pub log_version: U16,
    /// Format version (1).
    pub version: U16,
    /// Log length in bytes.
    pub log_length: U32,
    /// File offset of the log.
    pub log_offset: U64,
    /// Reserved, zero.
    pub reserved: [u8; 4016],
}

const _: () = assert!(size_of::<VhdxHeader>() == 4096);
const _: () = assert!(core::mem::offset_of!(VhdxHeader, checksum) == CHECKSUM_OFFSET);
const _: () = assert!(core::mem::offset_of!(VhdxHeader, version) == HEADER_VERSION_OFFSET);

/// The 16-byte header of a region table (two copies, at 192 KiB and 256 KiB, 64 KiB each).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RegionTableHeader {
    /// "regi" ([`REGION_TABLE_SIGNATURE`]).
    pub signature: [u8; 4],
    /// CRC-32C of the 64 KiB table with this field zeroed.
    pub checksum: U32,
    /// Number of entries (at most [`MAX_TABLE_ENTRIES`]).
    pub entry_count: U32,
    /// Reserved, zero.
    pub reserved: U32,
}

const _: () = assert!(size_of::<RegionTableHeader>() == 16);
const _: () = assert!(core::mem::offset_of!(RegionTableHeader, checksum) == CHECKSUM_OFFSET);
const _: () =
    assert!(core::mem::offset_of!(RegionTableHeader, entry_count) == REGION_ENTRY_COUNT_OFFSET);

/// One region table entry.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RegionTableEntry {
    /// Region GUID ([`BAT_GUID`], [`METADATA_GUID`]).
    pub guid: [u8; 16],
    /// File offset of the region (1 MiB aligned).
    pub file_offset: U64,
    /// Length in bytes (a multiple of 1 MiB).
    pub length: U32,
    /// Bit 0: [`REGION_REQUIRED`].
    pub required: U32,
}

const _: () = assert!(size_of::<RegionTableEntry>() == 32);

/// The 32-byte header of the metadata table at the start of the metadata region.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct MetadataTableHeader {
    /// "metadata" ([`METADATA_TABLE_SIGNATURE`]).
    pub signature: [u8; 8],
    /// Reserved, zero.
    pub reserved: U16,
    /// Number of entries (at most [`MAX_TABLE_ENTRIES`]).
    pub entry_count: U16,
    /// Reserved, zero.
    pub reserved2: [u8; 20],
}

const _: () = assert!(size_of::<MetadataTableHeader>() == 32);
const _: () =
    assert!(core::mem::offset_of!(MetadataTableHeader, entry_count) == METADATA_ENTRY_COUNT_OFFSET);

/// One metadata table entry.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct MetadataTableEntry {
    /// Item GUID ([`FILE_PARAMS_GUID`], ...).
    pub item_id: [u8; 16],
    /// Offset of the item in the metadata region (at least 64 KiB).
    pub offset: U32,
    /// Length of the item in bytes.
    pub length: U32,
    /// Bits: 0 IsUser, 1 [`METADATA_IS_VIRTUAL_DISK`], 2 [`METADATA_IS_REQUIRED`].
    pub flags: U32,
    /// Reserved, zero.
    pub reserved: U32,
}

const _: () = assert!(size_of::<MetadataTableEntry>() == 32);

/// The file parameters metadata item.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FileParameters {
    /// Payload block size in bytes (a power of two, 1 MiB to 256 MiB).
    pub block_size: U32,
    /// [`FILE_PARAMS_LEAVE_BLOCKS_ALLOCATED`], [`FILE_PARAMS_HAS_PARENT`].
    pub flags: U32,
}

const _: () = assert!(size_of::<FileParameters>() == 8);

/// The 20-byte header of the parent locator metadata item.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ParentLocatorHeader {
    /// Locator type GUID ([`VHDX_LOCATOR_TYPE`]).
    pub locator_type: [u8; 16],
    /// Reserved, zero.
    pub reserved: U16,
    /// Number of key/value entries that follow.
    pub key_value_count: U16,
}

const _: () = assert!(size_of::<ParentLocatorHeader>() == 20);

/// One parent locator key/value entry; offsets are from the start of the item.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ParentLocatorEntry {
    /// Offset of the UTF-16LE key.
    pub key_offset: U32,
    /// Offset of the UTF-16LE value.
    pub value_offset: U32,
    /// Key length in bytes.
    pub key_length: U16,
    /// Value length in bytes.
    pub value_length: U16,
}

const _: () = assert!(size_of::<ParentLocatorEntry>() == 12);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_at_spec_offsets_and_short_input() {
        let mut h = [0u8; 4096];
        h[..4].copy_from_slice(&HEADER_SIGNATURE);
        h[8] = 7;
        h[66] = 1;
        h[72] = 0x10;
        let (v, _) = VhdxHeader::ref_from_prefix(&h).unwrap();
        assert_eq!(v.sequence_number.get(), 7);
        assert_eq!(v.version.get(), 1);
        assert_eq!(v.log_offset.get(), 0x10);
        assert!(VhdxHeader::ref_from_prefix(&h[..4095]).is_err());

        let mut r = [0u8; 48];
        r[..4].copy_from_slice(&REGION_TABLE_SIGNATURE);
        r[8] = 1;
        r[16..32].copy_from_slice(&guid_le(BAT_GUID));
        r[16 + 16 + 2] = 0x30;
        r[16 + 28] = 1;
        let (t, rest) = RegionTableHeader::ref_from_prefix(&r).unwrap();
        assert_eq!(t.entry_count.get(), 1);
        let (e, _) = RegionTableEntry::ref_from_prefix(rest).unwrap();
        assert_eq!(e.guid, guid_le(BAT_GUID));
        assert_eq!(e.file_offset.get(), 0x30_0000);
        assert_eq!(e.required.get(), REGION_REQUIRED);
        assert!(RegionTableEntry::ref_from_prefix(&rest[..31]).is_err());

        let mut m = [0u8; 64];
        m[..8].copy_from_slice(&METADATA_TABLE_SIGNATURE);
        m[10] = 5;
        m[32 + 16] = 0;
        m[32 + 18] = 1;
        let (t, rest) = MetadataTableHeader::ref_from_prefix(&m).unwrap();
        assert_eq!(t.entry_count.get(), 5);
        let (e, _) = MetadataTableEntry::ref_from_prefix(rest).unwrap();
        assert_eq!(e.offset.get(), 64 * 1024);
        assert!(MetadataTableHeader::ref_from_prefix(&m[..31]).is_err());

        assert!(FileParameters::read_from_prefix(&[0u8; 7][..]).is_err());
        assert!(ParentLocatorHeader::ref_from_prefix(&[0u8; 19][..]).is_err());
        assert!(ParentLocatorEntry::ref_from_prefix(&[0u8; 11][..]).is_err());
        assert!(FileIdentifier::ref_from_prefix(&[0u8; 519][..]).is_err());

        let e = (5u64 << 20) | 0x1234 | PAYLOAD_BLOCK_PARTIALLY_PRESENT;
        assert_eq!(bat_state(e), PAYLOAD_BLOCK_PARTIALLY_PRESENT);
        assert_eq!(bat_file_offset(e), 5 << 20);
    }
}
