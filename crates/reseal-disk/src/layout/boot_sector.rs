//! File-system boot sectors as far as probing reads them: the NTFS boot sector and the FAT BIOS
//! parameter block (common part, FAT12/16 and FAT32 extended parts); all little-endian.
//!
//! References: NTFS boot sector as in ntfs-3g `layout.h` `NTFS_BOOT_SECTOR` (FORMATS.md C.1);
//! FAT: Microsoft "FAT: General Overview of On-Disk Format" 1.03, section 3.1 "Boot Sector and
//! BPB" (common fields), 3.2 (FAT12/16 fields from offset 36) and 3.3 (FAT32 fields from
//! offset 36).

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// OEM ID of an NTFS volume.
pub const OEM_NTFS: [u8; 8] = *b"NTFS    ";
/// OEM ID of a BitLocker volume.
pub const OEM_BITLOCKER: [u8; 8] = *b"-FVE-FS-";
/// OEM ID of an exFAT volume.
pub const OEM_EXFAT: [u8; 8] = *b"EXFAT   ";

/// The 512-byte NTFS boot sector.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct NtfsBootSector {
    /// Jump to the boot code.
    pub jump: [u8; 3],
    /// "NTFS    " ([`OEM_NTFS`]).
    pub oem_id: [u8; 8],
    /// Bytes per sector (0x0B).
    pub bytes_per_sector: U16,
    /// Sectors per cluster (0x0D): 1..=128, or 0xF0..=0xFF meaning 2^(256 - v).
    pub sectors_per_cluster: u8,
    /// Reserved sectors (0).
    pub reserved_sectors: U16,
    /// FAT fields unused by NTFS (number of FATs, root entries, 16-bit sector count).
    pub unused1: [u8; 5],
    /// Media descriptor (0xF8).
    pub media_type: u8,
    /// FAT size, unused by NTFS.
    pub unused2: U16,
    /// Sectors per track.
    pub sectors_per_track: U16,
    /// Number of heads.
    pub heads: U16,
    /// Sectors before the volume.
    pub hidden_sectors: U32,
    /// 32-bit sector count, unused by NTFS.
    pub unused3: U32,
    /// Physical drive, current head, extended boot signature (0x80), reserved.
    pub unused4: [u8; 4],
    /// Sectors in the volume (0x28).
    pub number_of_sectors: U64,
    /// First cluster of $MFT (0x30).
    pub mft_lcn: U64,
    /// First cluster of $MFTMirr (0x38).
    pub mftmirr_lcn: U64,
    /// Clusters per MFT record (0x40; signed, negative -n = 2^n bytes).
    pub clusters_per_mft_record: u8,
    /// Reserved.
    pub reserved0: [u8; 3],
    /// Clusters per index block (0x44; signed as above).
    pub clusters_per_index_record: u8,
    /// Reserved.
    pub reserved1: [u8; 3],
    /// Volume serial number (0x48).
    pub volume_serial_number: U64,
    /// Checksum (unused).
    pub checksum: U32,
    /// Boot code.
    pub bootstrap: [u8; 426],
    /// 0x55, 0xAA.
    pub end_of_sector_marker: [u8; 2],
}

const _: () = assert!(size_of::<NtfsBootSector>() == 512);
const _: () = assert!(core::mem::offset_of!(NtfsBootSector, number_of_sectors) == 0x28);
const _: () = assert!(core::mem::offset_of!(NtfsBootSector, clusters_per_mft_record) == 0x40);
const _: () = assert!(core::mem::offset_of!(NtfsBootSector, volume_serial_number) == 0x48);

impl NtfsBootSector {
    /// The view of the first 512 bytes of `b`; `None` when it is shorter.
    pub fn view(b: &[u8]) -> Option<&NtfsBootSector> {
        NtfsBootSector::ref_from_prefix(b).ok().map(|(s, _)| s)
    }
}

/// Byte offset of field `f` of [`NtfsBootSector`], as `u64` for error offsets.
macro_rules! ntfs_offset {
    ($f:ident) => {
        core::mem::offset_of!($crate::layout::boot_sector::NtfsBootSector, $f) as u64
    };
}
pub(crate) use ntfs_offset;

/// The FAT BPB fields common to FAT12, FAT16 and FAT32 (bytes 0..36).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FatBpb {
    /// Jump to the boot code (0xEB xx 0x90 or 0xE9 xx xx).
    pub jmp_boot: [u8; 3],
    /// OEM name.
    pub oem_name: [u8; 8],
    /// Bytes per sector (512..=4096).
    pub bytes_per_sector: U16,
    /// Sectors per cluster (a power of two).
    pub sectors_per_cluster: u8,
    /// Reserved sectors before the first FAT.
    pub reserved_sector_count: U16,
    /// Number of FATs.
    pub num_fats: u8,
    /// Root directory entries (0 on FAT32).
    pub root_entry_count: U16,
    /// 16-bit sector count (0: see `total_sectors_32`).
    pub total_sectors_16: U16,
    /// Media descriptor.
    pub media: u8,
    /// Sectors per FAT on FAT12/16 (0 on FAT32).
    pub fat_size_16: U16,
    /// Sectors per track.
    pub sectors_per_track: U16,
    /// Number of heads.
    pub num_heads: U16,
    /// Sectors before the volume.
    pub hidden_sectors: U32,
    /// 32-bit sector count.
    pub total_sectors_32: U32,
}

const _: () = assert!(size_of::<FatBpb>() == 36);

/// The extended fields that share their layout in FAT12/16 and FAT32 (drive number through the
/// file-system type string).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FatExtendedBpb {
    /// BIOS drive number.
    pub drive_number: u8,
    /// Reserved.
    pub reserved1: u8,
    /// 0x29 (or 0x28): the next three fields are present.
    pub boot_signature: u8,
    /// Volume serial number.
    pub volume_id: U32,
    /// Volume label, space-padded.
    pub volume_label: [u8; 11],
    /// "FAT12   ", "FAT16   ", "FAT32   " (informational).
    pub fs_type: [u8; 8],
}

const _: () = assert!(size_of::<FatExtendedBpb>() == 26);

/// The FAT32-only fields from offset 36, before the [`FatExtendedBpb`] at offset 64.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Fat32Bpb {
    /// Sectors per FAT.
    pub fat_size_32: U32,
    /// Mirroring flags.
    pub ext_flags: U16,
    /// Version (0).
    pub fs_version: U16,
    /// First cluster of the root directory.
    pub root_cluster: U32,
    /// Sector of the FSInfo structure.
    pub fs_info: U16,
    /// Sector of the backup boot sector.
    pub backup_boot_sector: U16,
    /// Reserved.
    pub reserved: [u8; 12],
}

const _: () = assert!(size_of::<Fat32Bpb>() == 28);

/// A FAT12/16 boot sector: the extended BPB follows the common one at offset 36.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Fat16BootSector {
    /// The common BPB.
    pub bpb: FatBpb,
    /// The extended BPB at 36.
    pub ext: FatExtendedBpb,
    /// Boot code.
    pub boot_code: [u8; 448],
    /// 0x55, 0xAA.
    pub signature: [u8; 2],
}

const _: () = assert!(size_of::<Fat16BootSector>() == 512);

/// A FAT32 boot sector: FAT32 fields at 36, the extended BPB at 64.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Fat32BootSector {
    /// The common BPB.
    pub bpb: FatBpb,
    /// FAT32-only fields.
    pub fat32: Fat32Bpb,
    /// The extended BPB at 64.
    pub ext: FatExtendedBpb,
    /// Boot code.
    pub boot_code: [u8; 420],
    /// 0x55, 0xAA.
    pub signature: [u8; 2],
}

const _: () = assert!(size_of::<Fat32BootSector>() == 512);

impl Fat16BootSector {
    /// The view of the first 512 bytes of `b`; `None` when it is shorter.
    pub fn view(b: &[u8]) -> Option<&Fat16BootSector> {
        Fat16BootSector::ref_from_prefix(b).ok().map(|(s, _)| s)
    }
}

impl Fat32BootSector {
    /// The view of the first 512 bytes of `b`; `None` when it is shorter.
    pub fn view(b: &[u8]) -> Option<&Fat32BootSector> {
        Fat32BootSector::ref_from_prefix(b).ok().map(|(s, _)| s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_at_spec_offsets_and_short_input() {
        let mut b = [0u8; 512];
        b[3..11].copy_from_slice(&OEM_NTFS);
        b[0x0b] = 0;
        b[0x0c] = 2;
        b[0x30] = 4;
        b[0x40] = 0xf6;
        let n = NtfsBootSector::view(&b).unwrap();
        assert_eq!(n.oem_id, OEM_NTFS);
        assert_eq!(n.bytes_per_sector.get(), 512);
        assert_eq!(n.mft_lcn.get(), 4);
        assert_eq!(n.clusters_per_mft_record, 0xf6);
        assert_eq!(ntfs_offset!(mft_lcn), 0x30);
        assert!(NtfsBootSector::view(&b[..511]).is_none());

        let mut f = [0u8; 512];
        f[0x26] = 0x29;
        f[0x27] = 0x78;
        f[0x36..0x39].copy_from_slice(b"FAT");
        f[0x42] = 0x28;
        f[0x52..0x57].copy_from_slice(b"FAT32");
        let v = Fat16BootSector::view(&f).unwrap();
        assert_eq!(v.ext.boot_signature, 0x29);
        assert_eq!(v.ext.volume_id.get(), 0x78);
        assert_eq!(&v.ext.fs_type[..3], b"FAT");
        let v = Fat32BootSector::view(&f).unwrap();
        assert_eq!(v.ext.boot_signature, 0x28);
        assert_eq!(&v.ext.fs_type[..5], b"FAT32");
        assert!(Fat16BootSector::view(&f[..511]).is_none());
        assert!(Fat32BootSector::view(&f[..511]).is_none());
        assert!(FatBpb::ref_from_prefix(&f[..35]).is_err());
    }
}
