//! The VHD hard disk footer, the dynamic disk header and its parent locator entries; every field
//! is big-endian.
//!
//! Reference: Microsoft "Virtual Hard Disk Image Format Specification" 1.0, sections "Hard Disk
//! Footer Format" and "Dynamic Disk Header Format" (FORMATS.md E.1).

use zerocopy::big_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Cookie of the footer.
pub const FOOTER_COOKIE: [u8; 8] = *b"conectix";
/// Cookie of the dynamic disk header.
pub const HEADER_COOKIE: [u8; 8] = *b"cxsparse";
/// Features field: the "reserved" bit that must always be set.
pub const FEATURES_RESERVED: u32 = 2;
/// File format and header version 1.0.
pub const VERSION_1_0: u32 = 0x0001_0000;
/// Disk type of a fixed disk.
pub const DISK_TYPE_FIXED: u32 = 2;
/// Disk type of a dynamic disk.
pub const DISK_TYPE_DYNAMIC: u32 = 3;
/// Disk type of a differencing disk.
pub const DISK_TYPE_DIFFERENCING: u32 = 4;
/// Byte offset of the footer's `current_size`.
pub const FOOTER_CURRENT_SIZE_OFFSET: usize = 48;
/// Byte offset of the footer's `disk_type`.
pub const FOOTER_DISK_TYPE_OFFSET: usize = 60;
/// Byte offset of the footer's `checksum` (taken as zero when the checksum is computed).
pub const FOOTER_CHECKSUM_OFFSET: usize = 64;
/// Byte offset of the dynamic header's `max_table_entries`.
pub const HEADER_MAX_TABLE_ENTRIES_OFFSET: usize = 28;
/// Byte offset of the dynamic header's `block_size`.
pub const HEADER_BLOCK_SIZE_OFFSET: usize = 32;
/// Byte offset of the dynamic header's `checksum`.
pub const HEADER_CHECKSUM_OFFSET: usize = 36;
/// Byte offset of the dynamic header's first parent locator entry.
pub const HEADER_PARENT_LOCATORS_OFFSET: usize = 576;

/// The 512-byte hard disk footer (at the end of the file; sparse disks keep a copy at 0).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VhdFooter {
    /// "conectix" ([`FOOTER_COOKIE`]).
    pub cookie: [u8; 8],
    /// Feature bits (0x1 temporary, 0x2 reserved, always set).
    pub features: U32,
    /// File format version ([`VERSION_1_0`]).
    pub file_format_version: U32,
    /// File offset of the dynamic disk header; all ones for a fixed disk.
    pub data_offset: U64,
    /// Creation time, seconds since 2000-01-01 00:00 UTC.
    pub time_stamp: U32,
    /// Creator application ("vpc ", "win ", "qemu", ...).
    pub creator_application: [u8; 4],
    /// Creator version.
    pub creator_version: U32,
    /// Creator host OS ("Wi2k", "Mac ").
    pub creator_host_os: [u8; 4],
    /// Size at creation, in bytes.
    pub original_size: U64,
    /// Current virtual size, in bytes.
    pub current_size: U64,
    /// CHS geometry: cylinders.
    pub cylinders: U16,
    /// CHS geometry: heads.
    pub heads: u8,
    /// CHS geometry: sectors per track.
    pub sectors_per_track: u8,
    /// Disk type ([`DISK_TYPE_FIXED`], [`DISK_TYPE_DYNAMIC`], [`DISK_TYPE_DIFFERENCING`]).
    pub disk_type: U32,
    /// One's complement of the byte sum of the footer without this field.
    pub checksum: U32,
    /// Unique id of the disk (a differencing child records its parent's).
    pub unique_id: [u8; 16],
    /// Saved-state flag.
    pub saved_state: u8,
    /// Reserved, zero.
    pub reserved: [u8; 427],
}

const _: () = assert!(size_of::<VhdFooter>() == 512);
const _: () = assert!(core::mem::offset_of!(VhdFooter, current_size) == FOOTER_CURRENT_SIZE_OFFSET);
const _: () = assert!(core::mem::offset_of!(VhdFooter, disk_type) == FOOTER_DISK_TYPE_OFFSET);
const _: () = assert!(core::mem::offset_of!(VhdFooter, checksum) == FOOTER_CHECKSUM_OFFSET);

impl VhdFooter {
    /// The footer view of the first 512 bytes of `b`; `None` when it is shorter.
    pub fn view(b: &[u8]) -> Option<&VhdFooter> {
        VhdFooter::ref_from_prefix(b).ok().map(|(f, _)| f)
    }
}

/// One of the eight 24-byte parent locator entries of a differencing disk's dynamic header.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ParentLocatorEntry {
    /// Platform code ("W2ru" relative, "W2ku" absolute UTF-16LE path; zero = unused entry).
    pub platform_code: [u8; 4],
    /// Sectors reserved for the locator data.
    pub platform_data_space: U32,
    /// Length of the locator data in bytes.
    pub platform_data_length: U32,
    /// Reserved, zero.
    pub reserved: U32,
    /// File offset of the locator data.
    pub platform_data_offset: U64,
}

const _: () = assert!(size_of::<ParentLocatorEntry>() == 24);

/// The 1024-byte dynamic disk header of dynamic and differencing disks.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VhdDynamicHeader {
    /// "cxsparse" ([`HEADER_COOKIE`]).
    pub cookie: [u8; 8],
    /// Offset of the next structure; unused, all ones.
    pub data_offset: U64,
    /// File offset of the block allocation table (BAT).
    pub table_offset: U64,
    /// Header version ([`VERSION_1_0`]).
    pub header_version: U32,
    /// Number of BAT entries.
    pub max_table_entries: U32,
    /// Size of a data block in bytes (a power of two, 2 MiB by default).
    pub block_size: U32,
    /// One's complement of the byte sum of the header without this field.
    pub checksum: U32,
    /// Footer unique id of the parent (differencing disks).
    pub parent_unique_id: [u8; 16],
    /// Parent modification time, seconds since 2000-01-01 00:00 UTC.
    pub parent_time_stamp: U32,
    /// Reserved, zero.
    pub reserved1: U32,
    /// Parent file name, UTF-16 big-endian, NUL-padded.
    pub parent_unicode_name: [U16; 256],
    /// Parent locator entries.
    pub parent_locator_entries: [ParentLocatorEntry; 8],
    /// Reserved, zero.
    pub reserved2: [u8; 256],
}

const _: () = assert!(size_of::<VhdDynamicHeader>() == 1024);
const _: () = assert!(
    core::mem::offset_of!(VhdDynamicHeader, max_table_entries) == HEADER_MAX_TABLE_ENTRIES_OFFSET
);
const _: () =
    assert!(core::mem::offset_of!(VhdDynamicHeader, block_size) == HEADER_BLOCK_SIZE_OFFSET);
const _: () = assert!(core::mem::offset_of!(VhdDynamicHeader, checksum) == HEADER_CHECKSUM_OFFSET);
const _: () = assert!(
    core::mem::offset_of!(VhdDynamicHeader, parent_locator_entries)
        == HEADER_PARENT_LOCATORS_OFFSET
);

impl VhdDynamicHeader {
    /// The header view of the first 1024 bytes of `b`; `None` when it is shorter.
    pub fn view(b: &[u8]) -> Option<&VhdDynamicHeader> {
        VhdDynamicHeader::ref_from_prefix(b).ok().map(|(h, _)| h)
    }

    /// The parent name up to the first NUL (invalid UTF-16 replaced).
    pub fn parent_name(&self) -> String {
        let units: Vec<u16> = self.parent_unicode_name.iter().map(|u| u.get()).collect();
        String::from_utf16_lossy(&units)
            .trim_end_matches('\0')
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_at_spec_offsets_and_short_input() {
        let mut f = [0u8; 512];
        f[..8].copy_from_slice(&FOOTER_COOKIE);
        f[48..56].copy_from_slice(&(8u64 << 20).to_be_bytes());
        f[56..60].copy_from_slice(&[0x01, 0x02, 4, 17]);
        f[63] = 3;
        let v = VhdFooter::view(&f).unwrap();
        assert_eq!(v.current_size.get(), 8 << 20);
        assert_eq!(
            (v.cylinders.get(), v.heads, v.sectors_per_track),
            (0x0102, 4, 17)
        );
        assert_eq!(v.disk_type.get(), DISK_TYPE_DYNAMIC);
        assert!(VhdFooter::view(&f[..511]).is_none());

        let mut h = [0u8; 1024];
        h[..8].copy_from_slice(&HEADER_COOKIE);
        h[33] = 0x20;
        h[64..68].copy_from_slice(&[0, b'p', 0, b'x']);
        h[576..580].copy_from_slice(b"W2ru");
        h[576 + 23] = 9;
        let v = VhdDynamicHeader::view(&h).unwrap();
        assert_eq!(v.block_size.get(), 2 << 20);
        assert_eq!(v.parent_name(), "px");
        let e = &v.parent_locator_entries[0];
        assert_eq!(
            (&e.platform_code, e.platform_data_offset.get()),
            (b"W2ru", 9)
        );
        assert!(VhdDynamicHeader::view(&h[..1023]).is_none());
        assert!(ParentLocatorEntry::read_from_prefix(&h[..23]).is_err());
    }
}
