//! The MBR (and EBR) sector: bootstrap code, disk signature, four partition entries and the
//! 0x55AA boot signature.
//!
//! Reference: UEFI Specification 2.10, section 5.2.1 "Legacy Master Boot Record (MBR)", table
//! 5.1 (sector layout) and table 5.2 (partition record).

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The boot signature in the last two bytes of the sector (0x55, 0xAA).
pub const BOOT_SIGNATURE: [u8; 2] = [0x55, 0xaa];
/// Boot indicator of an active (bootable) partition.
pub const BOOT_ACTIVE: u8 = 0x80;
/// Byte offset of the 32-bit disk signature.
pub const DISK_SIGNATURE_OFFSET: usize = 440;
/// Byte offset of the first partition entry.
pub const ENTRIES_OFFSET: usize = 446;
/// Byte offset of the boot signature.
pub const BOOT_SIGNATURE_OFFSET: usize = 510;

/// One of the four 16-byte partition records.
#[derive(Debug, Clone, Copy, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct MbrPartitionEntry {
    /// 0x80 = active ([`BOOT_ACTIVE`]), 0x00 = inactive; anything else is invalid.
    pub boot_indicator: u8,
    /// CHS address of the first sector (unused by reseal).
    pub starting_chs: [u8; 3],
    /// Partition type (system ID) byte; 0 = empty slot.
    pub os_type: u8,
    /// CHS address of the last sector (unused by reseal).
    pub ending_chs: [u8; 3],
    /// First LBA (relative to the disk for the MBR, to the extended partition or EBR for EBRs).
    pub starting_lba: U32,
    /// Length in sectors.
    pub size_in_lba: U32,
}

const _: () = assert!(size_of::<MbrPartitionEntry>() == 16);

/// A whole 512-byte MBR or EBR sector.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Mbr {
    /// Bootstrap code (unused by reseal).
    pub boot_code: [u8; 440],
    /// Disk signature used by Windows to name the disk.
    pub unique_mbr_disk_signature: U32,
    /// Unknown / copy-protection marker.
    pub unknown: U16,
    /// The four partition records.
    pub partition_record: [MbrPartitionEntry; 4],
    /// 0x55, 0xAA ([`BOOT_SIGNATURE`]).
    pub signature: [u8; 2],
}

const _: () = assert!(size_of::<Mbr>() == 512);
const _: () =
    assert!(core::mem::offset_of!(Mbr, unique_mbr_disk_signature) == DISK_SIGNATURE_OFFSET);
const _: () = assert!(core::mem::offset_of!(Mbr, partition_record) == ENTRIES_OFFSET);
const _: () = assert!(core::mem::offset_of!(Mbr, signature) == BOOT_SIGNATURE_OFFSET);

impl Mbr {
    /// The MBR view of the first 512 bytes of `sector`; `None` when it is shorter.
    pub fn view(sector: &[u8]) -> Option<&Mbr> {
        Mbr::ref_from_prefix(sector).ok().map(|(m, _)| m)
    }

    /// True when the sector ends in the 0x55AA boot signature.
    pub fn has_boot_signature(&self) -> bool {
        self.signature == BOOT_SIGNATURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_at_spec_offsets_and_short_input() {
        let mut s = [0u8; 512];
        s[440..444].copy_from_slice(&[0x78, 0x56, 0x34, 0x12]);
        s[446 + 16] = 0x80;
        s[446 + 16 + 4] = 0x07;
        s[446 + 16 + 8] = 2;
        s[446 + 16 + 12] = 9;
        s[510] = 0x55;
        s[511] = 0xaa;
        let m = Mbr::view(&s).unwrap();
        assert_eq!(m.unique_mbr_disk_signature.get(), 0x1234_5678);
        let e = &m.partition_record[1];
        assert_eq!((e.boot_indicator, e.os_type), (0x80, 0x07));
        assert_eq!((e.starting_lba.get(), e.size_in_lba.get()), (2, 9));
        assert!(m.has_boot_signature());
        assert_eq!(m.as_bytes(), &s[..]);
        assert!(Mbr::view(&s[..511]).is_none());
        assert!(MbrPartitionEntry::read_from_prefix(&s[..15]).is_err());
    }
}
