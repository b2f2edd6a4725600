//! Which file system a volume holds, from its boot sector: NTFS (parsed and validated), FAT12/16/32,
//! exFAT, BitLocker, or unknown.
//!
//! NTFS boot sector layout (ntfs-3g `layout.h`, FORMATS.md C.1): bytes/sector @0x0B, sectors per
//! cluster @0x0D (240..=255 mean 2^(256-v)), total sectors @0x28, $MFT LCN @0x30, $MFTMirr LCN
//! @0x38, clusters per MFT record @0x40 and per index block @0x44 (signed; negative -n means
//! 2^n bytes), serial @0x48.

use crate::layout::boot_sector::{
    ntfs_offset as at, Fat16BootSector, Fat32BootSector, NtfsBootSector, OEM_BITLOCKER, OEM_EXFAT,
    OEM_NTFS,
};
use crate::layout::mbr::BOOT_SIGNATURE;
use crate::{Device, Error, Result};

/// The file system found on a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FsInfo {
    /// NTFS, with its validated boot-sector geometry.
    Ntfs(NtfsBoot),
    /// FAT12/16/32 (e.g. an EFI system partition).
    Fat {
        /// FAT variant, from the cluster count.
        kind: FatKind,
        /// Volume label from the extended BPB, trimmed; `None` if absent or "NO NAME".
        label: Option<String>,
        /// Volume serial number from the extended BPB (0 if absent).
        serial: u32,
    },
    /// A BitLocker-encrypted volume (`-FVE-FS-` OEM ID).
    BitLocker,
    /// exFAT.
    ExFat,
    /// Anything else (including an all-zero sector).
    Unknown,
}

impl FsInfo {
    /// Short name: "NTFS", "FAT32", "BitLocker", "exFAT", "unknown".
    pub fn name(&self) -> &'static str {
        match self {
            FsInfo::Ntfs(_) => "NTFS",
            FsInfo::Fat {
                kind: FatKind::Fat12,
                ..
            } => "FAT12",
            FsInfo::Fat {
                kind: FatKind::Fat16,
                ..
            } => "FAT16",
            FsInfo::Fat {
                kind: FatKind::Fat32,
                ..
            } => "FAT32",
            FsInfo::BitLocker => "BitLocker",
            FsInfo::ExFat => "exFAT",
            FsInfo::Unknown => "unknown",
        }
    }
}

/// FAT variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FatKind {
    /// Fewer than 4085 clusters.
    Fat12,
    /// Fewer than 65525 clusters.
    Fat16,
    /// 65525 clusters or more.
    Fat32,
}

/// The geometry in an NTFS boot sector, validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtfsBoot {
    /// Volume serial number (u64 at 0x48).
    pub serial: u64,
    /// Bytes per cluster.
    pub cluster_size: u32,
    /// Bytes per MFT file record.
    pub record_size: u32,
    /// Bytes per index ($I30) block.
    pub index_record_size: u32,
    /// Bytes per sector.
    pub bytes_per_sector: u32,
    /// Sectors in the volume (the backup boot sector sits in the sector after the last one).
    pub total_sectors: u64,
    /// First cluster of $MFT.
    pub mft_lcn: u64,
    /// First cluster of $MFTMirr.
    pub mftmirr_lcn: u64,
}

/// Decode "clusters per record" (FORMATS C.1): positive = clusters, negative -n = 2^n bytes.
fn record_bytes(v: u8, cluster: u32, what: &str, off: u64) -> Result<u32> {
    let sv = v as i8;
    let bytes = if sv > 0 {
        u64::from(sv as u8) * u64::from(cluster)
    } else if sv < 0 {
        let n = u32::from(sv.unsigned_abs());
        if n > 31 {
            return Err(Error::corrupt(
                "NTFS boot sector",
                off,
                format!("{what} 2^{n} bytes is too large"),
            ));
        }
        1u64 << n
    } else {
        return Err(Error::corrupt(
            "NTFS boot sector",
            off,
            format!("{what} is 0"),
        ));
    };
    if !bytes.is_power_of_two() || !(256..=65536).contains(&bytes) {
        return Err(Error::corrupt(
            "NTFS boot sector",
            off,
            format!("{what} of {bytes} bytes is not a power of two in 256..=65536"),
        ));
    }
    Ok(bytes as u32)
}

impl NtfsBoot {
    /// Parse an NTFS boot sector (at least 512 bytes; `base` is its device offset, used in errors).
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the field's offset when the OEM ID is not `NTFS    ` or a size
    /// is invalid.
    pub fn parse(b: &[u8], base: u64) -> Result<NtfsBoot> {
        let c = |o: u64, r: String| Error::corrupt("NTFS boot sector", base + o, r);
        let Some(v) = NtfsBootSector::view(b) else {
            return Err(c(0, format!("{} bytes, need 512", b.len())));
        };
        if v.oem_id != OEM_NTFS {
            return Err(c(at!(oem_id), "OEM ID is not \"NTFS    \"".into()));
        }
        let bps = u32::from(v.bytes_per_sector.get());
        if !bps.is_power_of_two() || !(256..=4096).contains(&bps) {
            return Err(c(
                at!(bytes_per_sector),
                format!("bytes per sector {bps} is not a power of two in 256..=4096"),
            ));
        }
        let spc_raw = v.sectors_per_cluster;
        // 1..=128 literally; 0xF0..=0xFF as 2^(256 - v) (Windows writes 0xF4 and below for
        // clusters above 64 KiB with 512-byte sectors); the 2 MiB cluster limit below then
        // rejects the exponents too large for the sector size.
        let spc: u32 = match spc_raw {
            1..=128 if spc_raw.is_power_of_two() => u32::from(spc_raw),
            240..=255 => 1u32 << (256 - u32::from(spc_raw)),
            v => {
                return Err(c(
                    at!(sectors_per_cluster),
                    format!("sectors per cluster byte {v:#04x} is invalid"),
                ))
            }
        };
        let cluster = u64::from(bps) * u64::from(spc);
        if cluster > 2 << 20 {
            return Err(c(
                at!(sectors_per_cluster),
                format!("cluster size {cluster} exceeds 2 MiB"),
            ));
        }
        let cluster = cluster as u32;
        let record_size = record_bytes(
            v.clusters_per_mft_record,
            cluster,
            "MFT record size",
            base + at!(clusters_per_mft_record),
        )?;
        let index_record_size = record_bytes(
            v.clusters_per_index_record,
            cluster,
            "index block size",
            base + at!(clusters_per_index_record),
        )?;
        let total_sectors = v.number_of_sectors.get();
        if total_sectors == 0 {
            return Err(c(at!(number_of_sectors), "total sectors is 0".into()));
        }
        let clusters = total_sectors / u64::from(spc);
        let mft_lcn = v.mft_lcn.get();
        let mftmirr_lcn = v.mftmirr_lcn.get();
        if mft_lcn >= clusters {
            return Err(c(
                at!(mft_lcn),
                format!("$MFT LCN {mft_lcn} is beyond the volume's {clusters} clusters"),
            ));
        }
        if mftmirr_lcn >= clusters {
            return Err(c(
                at!(mftmirr_lcn),
                format!("$MFTMirr LCN {mftmirr_lcn} is beyond the volume's {clusters} clusters"),
            ));
        }
        Ok(NtfsBoot {
            serial: v.volume_serial_number.get(),
            cluster_size: cluster,
            record_size,
            index_record_size,
            bytes_per_sector: bps,
            total_sectors,
            mft_lcn,
            mftmirr_lcn,
        })
    }

    /// Volume size in bytes as the boot sector states it.
    pub fn volume_bytes(&self) -> u64 {
        self.total_sectors
            .saturating_mul(u64::from(self.bytes_per_sector))
    }
}

fn fat_info(b: &[u8]) -> Option<FsInfo> {
    let f16 = Fat16BootSector::view(b)?;
    let f32 = Fat32BootSector::view(b)?;
    let bpb = &f16.bpb;
    let jump = matches!(bpb.jmp_boot[0], 0xeb | 0xe9);
    if !jump || f16.signature != BOOT_SIGNATURE {
        return None;
    }
    let bps = u32::from(bpb.bytes_per_sector.get());
    let spc = u32::from(bpb.sectors_per_cluster);
    let reserved = u32::from(bpb.reserved_sector_count.get());
    let nfats = u32::from(bpb.num_fats);
    let root_entries = u32::from(bpb.root_entry_count.get());
    if !bps.is_power_of_two() || !(512..=4096).contains(&bps) || spc == 0 || !spc.is_power_of_two()
    {
        return None;
    }
    if reserved == 0 || nfats == 0 || nfats > 4 {
        return None;
    }
    let fatsz = match bpb.fat_size_16.get() {
        0 => f32.fat32.fat_size_32.get(),
        n => u32::from(n),
    };
    let total = match bpb.total_sectors_16.get() {
        0 => bpb.total_sectors_32.get(),
        n => u32::from(n),
    };
    let root_sectors = (root_entries * 32).div_ceil(bps);
    let meta = u64::from(reserved) + u64::from(nfats) * u64::from(fatsz) + u64::from(root_sectors);
    let data = u64::from(total).checked_sub(meta)?;
    let count = data / u64::from(spc);
    let kind = if count < 4085 {
        FatKind::Fat12
    } else if count < 65525 {
        FatKind::Fat16
    } else {
        FatKind::Fat32
    };
    let ext = if kind == FatKind::Fat32 {
        &f32.ext
    } else {
        &f16.ext
    };
    let (serial, label) = if ext.boot_signature == 0x29 || ext.boot_signature == 0x28 {
        let l = String::from_utf8_lossy(&ext.volume_label)
            .trim_end()
            .to_string();
        let label = if l.is_empty() || l == "NO NAME" {
            None
        } else {
            Some(l)
        };
        (ext.volume_id.get(), label)
    } else {
        (0, None)
    };
    Some(FsInfo::Fat {
        kind,
        label,
        serial,
    })
}

/// Identify the file system on `dev` from its first sector.
///
/// # Errors
/// [`Error::Corrupt`] (naming the boot-sector field and its offset) when the OEM ID says NTFS but
/// the geometry is invalid; I/O errors of the device. A short or unrecognised device is
/// [`FsInfo::Unknown`], not an error.
pub fn probe(dev: &dyn Device) -> Result<FsInfo> {
    if dev.len() < 512 {
        return Ok(FsInfo::Unknown);
    }
    let mut b = [0u8; 512];
    dev.read_at(0, &mut b)?;
    probe_sector(&b)
}

/// [`probe`] on the bytes of a first sector (at least 512 bytes).
///
/// # Errors
/// As [`probe`].
pub fn probe_sector(b: &[u8]) -> Result<FsInfo> {
    let Some(v) = NtfsBootSector::view(b) else {
        return Ok(FsInfo::Unknown);
    };
    match v.oem_id {
        OEM_NTFS => NtfsBoot::parse(b, 0).map(FsInfo::Ntfs),
        OEM_BITLOCKER => Ok(FsInfo::BitLocker),
        OEM_EXFAT => Ok(FsInfo::ExFat),
        _ => Ok(fat_info(b).unwrap_or(FsInfo::Unknown)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ntfs_sector() -> Vec<u8> {
        let mut b = vec![0u8; 512];
        b[0..3].copy_from_slice(&[0xeb, 0x52, 0x90]);
        b[3..11].copy_from_slice(b"NTFS    ");
        b[0x0b..0x0d].copy_from_slice(&512u16.to_le_bytes());
        b[0x0d] = 8;
        b[0x28..0x30].copy_from_slice(&100_000u64.to_le_bytes());
        b[0x30..0x38].copy_from_slice(&4u64.to_le_bytes());
        b[0x38..0x40].copy_from_slice(&2u64.to_le_bytes());
        b[0x40] = 0xf6;
        b[0x44] = 1;
        b[0x48..0x50].copy_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
        b[510] = 0x55;
        b[511] = 0xaa;
        b
    }

    #[test]
    fn ntfs_geometry() {
        let FsInfo::Ntfs(n) = probe_sector(&ntfs_sector()).unwrap() else {
            panic!()
        };
        assert_eq!(
            (n.cluster_size, n.record_size, n.index_record_size),
            (4096, 1024, 4096)
        );
        assert_eq!(n.serial, 0x1122_3344_5566_7788);
    }

    #[test]
    fn bad_fields_are_located() {
        let mut b = ntfs_sector();
        b[0x40] = 0;
        let e = probe_sector(&b).unwrap_err();
        assert!(matches!(e, Error::Corrupt { offset: 0x40, .. }), "{e}");
        let mut b = ntfs_sector();
        b[0x0d] = 3;
        assert!(matches!(
            probe_sector(&b).unwrap_err(),
            Error::Corrupt { offset: 0x0d, .. }
        ));
        let mut b = ntfs_sector();
        b[0x30..0x38].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            probe_sector(&b).unwrap_err(),
            Error::Corrupt { offset: 0x30, .. }
        ));
    }
}
