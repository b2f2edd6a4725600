//! The NTFS boot sector (BIOS parameter block). Reference: FORMATS.md C.1 (ntfs-3g layout.h).

use crate::error::{Error, Result};

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

fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
fn le64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}

fn size_field(v: u8, cluster: u32, what: &'static str) -> Result<u32> {
    let s = v as i8;
    let size = if s < 0 {
        let sh = u32::from(s.unsigned_abs());
        if !(8..=16).contains(&sh) {
            return Err(Error::corrupt(
                "boot sector",
                None,
                0,
                format!("{what} exponent {sh}"),
            ));
        }
        1u32 << sh
    } else {
        cluster
            .checked_mul(u32::from(v))
            .ok_or_else(|| Error::corrupt("boot sector", None, 0, format!("{what} overflows")))?
    };
    if !size.is_power_of_two() || !(512..=65536).contains(&size) {
        return Err(Error::corrupt(
            "boot sector",
            None,
            if what == "MFT record size" {
                0x40
            } else {
                0x44
            },
            format!("{what} {size} is not a power of two in 512..=65536"),
        ));
    }
    Ok(size)
}

impl BootSector {
    /// Parse and validate the first sector of a volume (at least 512 bytes).
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the offending field offset.
    pub fn parse(b: &[u8]) -> Result<Self> {
        let c = |off: u64, r: String| Error::corrupt("boot sector", None, off, r);
        if b.len() < 512 {
            return Err(c(0, "shorter than 512 bytes".into()));
        }
        if &b[3..11] != b"NTFS    " {
            return Err(c(3, "OEM id is not \"NTFS    \"".into()));
        }
        if b[510] != 0x55 || b[511] != 0xAA {
            return Err(c(510, "missing 0x55AA signature".into()));
        }
        let bps = u32::from(le16(b, 0x0B));
        if !bps.is_power_of_two() || !(256..=4096).contains(&bps) {
            return Err(c(0x0B, format!("bytes per sector {bps}")));
        }
        let spc_raw = b[0x0D];
        let spc: u32 = if (240..=253).contains(&spc_raw) {
            1u32 << (256 - u32::from(spc_raw))
        } else if spc_raw.is_power_of_two() {
            u32::from(spc_raw)
        } else {
            return Err(c(0x0D, format!("sectors per cluster {spc_raw}")));
        };
        let cluster_size = bps
            .checked_mul(spc)
            .filter(|s| *s <= 2 * 1024 * 1024)
            .ok_or_else(|| c(0x0D, "cluster size too large".into()))?;
        let total_sectors = le64(b, 0x28);
        let mft_lcn = le64(b, 0x30);
        let mftmirr_lcn = le64(b, 0x38);
        let clusters = total_sectors / u64::from(spc);
        if clusters == 0 {
            return Err(c(0x28, "zero clusters".into()));
        }
        if mft_lcn >= clusters {
            return Err(c(
                0x30,
                format!("$MFT LCN {mft_lcn} beyond {clusters} clusters"),
            ));
        }
        if mftmirr_lcn >= clusters {
            return Err(c(
                0x38,
                format!("$MFTMirr LCN {mftmirr_lcn} beyond {clusters} clusters"),
            ));
        }
        let record_size = size_field(b[0x40], cluster_size, "MFT record size")?;
        let index_block_size = size_field(b[0x44], cluster_size, "index block size")?;
        Ok(BootSector {
            bytes_per_sector: bps,
            cluster_size,
            total_sectors,
            mft_lcn,
            mftmirr_lcn,
            record_size,
            index_block_size,
            serial: le64(b, 0x48),
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
}
