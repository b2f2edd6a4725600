//! The NTFS boot sector (BIOS parameter block). Reference: FORMATS.md C.1 (ntfs-3g layout.h).

use crate::error::{Error, Offset, Result};
use reseal_disk::probe::NtfsBoot;

/// The geometry read from a validated NTFS boot sector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BootSector {
    /// Bytes per sector (256..=4096, power of two).
    pub bytes_per_sector: u32,
    /// Bytes per cluster.
    pub cluster_size: u32,
    /// Sectors in the volume (the backup boot sector is in the last one).
    pub total_sectors: u64,
    /// First cluster of `$MFT`.
    pub mft_lcn: u64,
    /// First cluster of `$MFTMirr`.
    pub mftmirr_lcn: u64,
    /// Bytes per MFT record.
    pub record_size: u32,
    /// Bytes per index (INDX) block.
    pub index_block_size: u32,
    /// Volume serial number.
    pub serial: u64,
}

impl BootSector {
    /// Parse and validate the first sector of a volume (at least 512 bytes) with the one NTFS
    /// boot-sector parser, [`reseal_disk::probe::NtfsBoot::parse`] (the rules probing uses, so a
    /// volume the probe calls NTFS is one the engine opens), then the engine's own limit:
    /// MFT records and index blocks of at least 512 bytes.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the offending field offset (volume-relative);
    /// [`Error::Unsupported`] for records or index blocks below 512 bytes.
    pub fn parse(b: &[u8]) -> Result<Self> {
        let boot = NtfsBoot::parse(b, 0).map_err(|e| match e {
            reseal_disk::Error::Corrupt { offset, reason, .. } => {
                Error::corrupt("boot sector", None, Offset::Volume(offset), reason)
            }
            other => Error::Disk {
                offset: 0,
                source: other,
            },
        })?;
        for (what, size) in [
            ("MFT record size", boot.record_size),
            ("index block size", boot.index_record_size),
        ] {
            if size < 512 {
                return Err(Error::unsupported(
                    None,
                    format!("boot sector: {what} of {size} bytes (the engine needs 512 or more)"),
                ));
            }
        }
        Ok(BootSector {
            bytes_per_sector: boot.bytes_per_sector,
            cluster_size: boot.cluster_size,
            total_sectors: boot.total_sectors,
            mft_lcn: boot.mft_lcn,
            mftmirr_lcn: boot.mftmirr_lcn,
            record_size: boot.record_size,
            index_block_size: boot.index_record_size,
            serial: boot.serial,
        })
    }

    /// Number of clusters on the volume.
    pub fn total_clusters(&self) -> u64 {
        self.total_sectors * u64::from(self.bytes_per_sector) / u64::from(self.cluster_size)
    }

    /// How many MFT records `$MFTMirr` holds (FORMATS C.3).
    pub fn mirror_records(&self) -> u64 {
        if self.cluster_size <= 4 * self.record_size {
            4
        } else {
            u64::from(self.cluster_size / self.record_size)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panic() {
        for i in 0..=255u8 {
            let mut b = vec![i; 512];
            b[3..11].copy_from_slice(b"NTFS    ");
            b[510] = 0x55;
            b[511] = 0xAA;
            let _ = BootSector::parse(&b);
        }
        assert!(BootSector::parse(&[0u8; 100]).is_err());
    }

    /// The engine and probing accept exactly the same sectors-per-cluster bytes (one parser).
    #[test]
    fn engine_and_probe_agree_on_every_cluster_byte() {
        for bps in [512u16, 4096] {
            for spc in 0..=255u8 {
                let mut b = vec![0u8; 512];
                b[3..11].copy_from_slice(b"NTFS    ");
                b[0x0B..0x0D].copy_from_slice(&bps.to_le_bytes());
                b[0x0D] = spc;
                b[0x28..0x30].copy_from_slice(&(1u64 << 24).to_le_bytes());
                b[0x30..0x38].copy_from_slice(&4u64.to_le_bytes());
                b[0x38..0x40].copy_from_slice(&8u64.to_le_bytes());
                b[0x40] = 0xF6; // 1024-byte records
                b[0x44] = 0xF4; // 4096-byte index blocks
                let probe = NtfsBoot::parse(&b, 0).is_ok();
                let engine = BootSector::parse(&b).is_ok();
                assert_eq!(probe, engine, "bps {bps} spc byte {spc:#04x}");
                if (0xF4..=0xF7).contains(&spc) && bps == 512 {
                    assert!(engine, "Windows' large-cluster encoding {spc:#04x}");
                }
            }
        }
    }
}
