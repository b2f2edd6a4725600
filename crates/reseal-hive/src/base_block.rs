//! Base block ("regf", first 4096 bytes of a primary file).
//!
//! Reference: FORMATS.md B.1 (msuhanov regf specification, libregf, hivex).

use crate::error::{HiveError, Result};

/// Size of the base block; hive bins start right after it.
pub const BASE_BLOCK_SIZE: usize = 4096;
/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = 508;
/// Offset of the primary sequence number.
pub const SEQ1_OFFSET: usize = 4;
/// Offset of the secondary sequence number.
pub const SEQ2_OFFSET: usize = 8;
/// Offset of the last-written FILETIME.
pub const TIMESTAMP_OFFSET: usize = 12;
/// Offset of the major version.
pub const MAJOR_OFFSET: usize = 20;
/// Offset of the minor version.
pub const MINOR_OFFSET: usize = 24;
/// Offset of the file type.
pub const FILE_TYPE_OFFSET: usize = 28;
/// Offset of the root cell offset.
pub const ROOT_OFFSET: usize = 36;
/// Offset of the hive bins data size.
pub const HBINS_SIZE_OFFSET: usize = 40;
/// Offset of the clustering factor.
pub const CLUSTERING_OFFSET: usize = 44;
/// Offset of the flags field (bit0: KTM locked / pending transactions).
pub const FLAGS_OFFSET: usize = 144;

pub(crate) fn rd_u32(b: &[u8], o: usize) -> Option<u32> {
    let s = b.get(o..o.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

pub(crate) fn rd_u64(b: &[u8], o: usize) -> Option<u64> {
    let s = b.get(o..o.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

/// Computes the base-block checksum over bytes 0..508: XOR of 127 LE u32 words, with
/// 0xFFFFFFFF mapped to 0xFFFFFFFE and 0 mapped to 1 (hivex omits that remap).
pub fn checksum(block: &[u8]) -> u32 {
    let mut x = 0u32;
    for i in 0..127 {
        x ^= rd_u32(block, i * 4).unwrap_or(0);
    }
    match x {
        0xFFFF_FFFF => 0xFFFF_FFFE,
        0 => 1,
        v => v,
    }
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
        if b.len() < 512 {
            return Err(bad("shorter than 512 bytes"));
        }
        if &b[0..4] != b"regf" {
            return Err(bad("signature is not \"regf\""));
        }
        let g = |o| rd_u32(b, o).unwrap_or(0);
        let stored = g(CHECKSUM_OFFSET);
        Ok(BaseBlock {
            seq1: g(SEQ1_OFFSET),
            seq2: g(SEQ2_OFFSET),
            last_written: rd_u64(b, TIMESTAMP_OFFSET).unwrap_or(0),
            major: g(MAJOR_OFFSET),
            minor: g(MINOR_OFFSET),
            file_type: g(FILE_TYPE_OFFSET),
            root: g(ROOT_OFFSET),
            hbins_size: g(HBINS_SIZE_OFFSET),
            clustering: g(CLUSTERING_OFFSET),
            flags: g(FLAGS_OFFSET),
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
