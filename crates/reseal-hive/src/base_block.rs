//! Base block ("regf", first 4096 bytes of a primary file).
//!
//! Reference: FORMATS.md B.1 (msuhanov regf specification, libregf, hivex).

use crate::error::{HiveError, Result};

pub use crate::layout::base_block::{BaseBlockHeader, SIGNATURE};
use core::mem::offset_of;
use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, IntoBytes};

/// Size of the base block; hive bins start right after it.
pub const BASE_BLOCK_SIZE: usize = 4096;
/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = offset_of!(BaseBlockHeader, checksum);
/// Offset of the primary sequence number.
pub const SEQ1_OFFSET: usize = offset_of!(BaseBlockHeader, primary_sequence_number);
/// Offset of the secondary sequence number.
pub const SEQ2_OFFSET: usize = offset_of!(BaseBlockHeader, secondary_sequence_number);
/// Offset of the last-written FILETIME.
pub const TIMESTAMP_OFFSET: usize = offset_of!(BaseBlockHeader, last_written_timestamp);
/// Offset of the major version.
pub const MAJOR_OFFSET: usize = offset_of!(BaseBlockHeader, major_version);
/// Offset of the minor version.
pub const MINOR_OFFSET: usize = offset_of!(BaseBlockHeader, minor_version);
/// Offset of the file type.
pub const FILE_TYPE_OFFSET: usize = offset_of!(BaseBlockHeader, file_type);
/// Offset of the root cell offset.
pub const ROOT_OFFSET: usize = offset_of!(BaseBlockHeader, root_cell_offset);
/// Offset of the hive bins data size.
pub const HBINS_SIZE_OFFSET: usize = offset_of!(BaseBlockHeader, hive_bins_data_size);
/// Offset of the clustering factor.
pub const CLUSTERING_OFFSET: usize = offset_of!(BaseBlockHeader, clustering_factor);
/// Offset of the flags field (bit0: KTM locked / pending transactions).
pub const FLAGS_OFFSET: usize = offset_of!(BaseBlockHeader, flags);

/// Computes the base-block checksum over bytes 0..508: XOR of 127 LE u32 words, with
/// 0xFFFFFFFF mapped to 0xFFFFFFFE and 0 mapped to 1 (hivex omits that remap).
///
/// Bytes missing from a short `block` count as zero.
pub fn checksum(block: &[u8]) -> u32 {
    let covered = &block[..block.len().min(CHECKSUM_OFFSET)];
    let words =
        <[U32]>::ref_from_prefix_with_elems(covered, covered.len() / 4).map_or(&[][..], |(w, _)| w);
    let x = words.iter().fold(0u32, |x, w| x ^ w.get());
    match x {
        0xFFFF_FFFF => 0xFFFF_FFFE,
        0 => 1,
        v => v,
    }
}

/// Sets seq2 = seq1 and recomputes the checksum of a base block in place.
///
/// # Errors
/// [`HiveError::BadBaseBlock`] when `block` is shorter than 512 bytes.
pub fn mark_clean(block: &mut [u8]) -> Result<()> {
    let (h, _) = BaseBlockHeader::mut_from_prefix(block).map_err(|_| HiveError::BadBaseBlock {
        reason: "shorter than 512 bytes".into(),
    })?;
    h.secondary_sequence_number = h.primary_sequence_number;
    let sum = checksum(h.as_bytes());
    h.checksum = U32::new(sum);
    Ok(())
}

/// Parsed view of the fields of a base block that matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BaseBlock {
    /// Primary sequence number.
    pub seq1: u32,
    /// Secondary sequence number.
    pub seq2: u32,
    /// Last written FILETIME.
    pub last_written: u64,
    /// Major version (1).
    pub major: u32,
    /// Minor version (3..6).
    pub minor: u32,
    /// File type: 0 primary, 1/2 old log, 6 new log.
    pub file_type: u32,
    /// Root key cell offset.
    pub root: u32,
    /// Total size of the hive bins.
    pub hbins_size: u32,
    /// Clustering factor.
    pub clustering: u32,
    /// Flags (bit0 = KTM/TxR pending).
    pub flags: u32,
    /// Stored checksum.
    pub checksum: u32,
    /// Whether the stored checksum matches the computed one.
    pub checksum_ok: bool,
}

impl BaseBlock {
    /// Parses the first 512 bytes (the checked part) of a base block without validating it.
    ///
    /// # Errors
    /// Fails if fewer than 512 bytes are given or the signature is not "regf".
    pub fn parse(b: &[u8]) -> Result<BaseBlock> {
        let bad = |r: &str| HiveError::BadBaseBlock {
            reason: r.to_string(),
        };
        let (h, _) =
            BaseBlockHeader::ref_from_prefix(b).map_err(|_| bad("shorter than 512 bytes"))?;
        if h.signature != SIGNATURE {
            return Err(bad("signature is not \"regf\""));
        }
        let stored = h.checksum.get();
        Ok(BaseBlock {
            seq1: h.primary_sequence_number.get(),
            seq2: h.secondary_sequence_number.get(),
            last_written: h.last_written_timestamp.get(),
            major: h.major_version.get(),
            minor: h.minor_version.get(),
            file_type: h.file_type.get(),
            root: h.root_cell_offset.get(),
            hbins_size: h.hive_bins_data_size.get(),
            clustering: h.clustering_factor.get(),
            flags: h.flags.get(),
            checksum: stored,
            checksum_ok: stored == checksum(b),
        })
    }

    /// Validates what a primary file needs: checksum, version 1.x (x in 2..=6), hbins size a
    /// non-zero multiple of 4096 that fits in `file_len`.
    ///
    /// # Errors
    /// Describes the first failing check.
    pub fn validate_primary(&self, file_len: usize) -> Result<()> {
        let bad = |r: String| Err(HiveError::BadBaseBlock { reason: r });
        if !self.checksum_ok {
            return bad(format!("checksum {:#x} is wrong", self.checksum));
        }
        if self.major != 1 || !(2..=6).contains(&self.minor) {
            return bad(format!("unsupported version {}.{}", self.major, self.minor));
        }
        if self.hbins_size == 0 || self.hbins_size % 4096 != 0 {
            return bad(format!(
                "hive bins size {:#x} is not a non-zero multiple of 4096",
                self.hbins_size
            ));
        }
        let end = (self.hbins_size as usize).checked_add(BASE_BLOCK_SIZE);
        if end.is_none_or(|e| e > file_len) {
            return bad(format!(
                "hive bins size {:#x} runs past the end of the file ({:#x} bytes): truncated hive",
                self.hbins_size, file_len
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_match_the_specification() {
        assert_eq!(
            [
                SEQ1_OFFSET,
                SEQ2_OFFSET,
                TIMESTAMP_OFFSET,
                MAJOR_OFFSET,
                MINOR_OFFSET
            ],
            [4, 8, 12, 20, 24]
        );
        assert_eq!(
            [
                FILE_TYPE_OFFSET,
                ROOT_OFFSET,
                HBINS_SIZE_OFFSET,
                CLUSTERING_OFFSET
            ],
            [28, 36, 40, 44]
        );
        assert_eq!([FLAGS_OFFSET, CHECKSUM_OFFSET], [144, 508]);
    }

    #[test]
    fn short_input_is_an_error_not_a_panic() {
        let mut b = [0u8; 511];
        b[..4].copy_from_slice(b"regf");
        assert!(BaseBlock::parse(&b).is_err());
        assert!(mark_clean(&mut b).is_err());
        assert_eq!(checksum(&b[..3]), 1);
    }

    #[test]
    fn mark_clean_copies_seq1_and_fixes_the_checksum() {
        let mut b = vec![0u8; 512];
        b[..4].copy_from_slice(b"regf");
        b[SEQ1_OFFSET..SEQ1_OFFSET + 4].copy_from_slice(&7u32.to_le_bytes());
        b[SEQ2_OFFSET..SEQ2_OFFSET + 4].copy_from_slice(&5u32.to_le_bytes());
        mark_clean(&mut b).unwrap();
        let bb = BaseBlock::parse(&b).unwrap();
        assert_eq!((bb.seq1, bb.seq2, bb.checksum_ok), (7, 7, true));
    }
}
