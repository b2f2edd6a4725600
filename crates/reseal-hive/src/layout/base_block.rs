//! The base block ("regf") header: the checked first 512 bytes of a primary or log file.
//!
//! Reference: FORMATS.md B.1.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Signature of a base block.
pub const SIGNATURE: [u8; 4] = *b"regf";
/// Number of bytes covered by the checksum (127 LE u32 words).
pub const CHECKSUM_COVERED: usize = 508;
/// Flags bit 0: KTM locked / pending transactions.
pub const FLAG_KTM_LOCKED: u32 = 1;
/// File type of a primary file.
pub const FILE_TYPE_PRIMARY: u32 = 0;
/// File type of an old-format transaction log.
pub const FILE_TYPE_LOG_OLD: u32 = 1;
/// File type of an old-format transaction log as written by NT 2000 and before.
pub const FILE_TYPE_LOG_OLD_NT: u32 = 2;
/// File type of a new-format ("HvLE") transaction log (Windows 8.1+).
pub const FILE_TYPE_LOG_NEW: u32 = 6;
/// File format 1: direct memory load.
pub const FILE_FORMAT_DIRECT_MEMORY_LOAD: u32 = 1;

/// The first 512 bytes of a base block (FORMATS.md B.1); the rest of the 4096 is unchecked.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BaseBlockHeader {
    /// "regf" ([`SIGNATURE`]).
    pub signature: [u8; 4],
    /// Primary sequence number (incremented before a write).
    pub primary_sequence_number: U32,
    /// Secondary sequence number (set equal to the primary after a write).
    pub secondary_sequence_number: U32,
    /// Last-written FILETIME.
    pub last_written_timestamp: U64,
    /// Major version (1).
    pub major_version: U32,
    /// Minor version (2..=6).
    pub minor_version: U32,
    /// File type: [`FILE_TYPE_PRIMARY`], [`FILE_TYPE_LOG_OLD`] / [`FILE_TYPE_LOG_OLD_NT`] or
    /// [`FILE_TYPE_LOG_NEW`].
    pub file_type: U32,
    /// File format ([`FILE_FORMAT_DIRECT_MEMORY_LOAD`]).
    pub file_format: U32,
    /// Offset of the root key node, relative to the first hive bin.
    pub root_cell_offset: U32,
    /// Total size of the hive bins in bytes.
    pub hive_bins_data_size: U32,
    /// Clustering factor (1).
    pub clustering_factor: U32,
    /// UTF-16LE file name tail (partial path).
    pub file_name: [u8; 64],
    /// Reserved (resource manager and log GUIDs on newer versions).
    pub reserved1: [u8; 32],
    /// Flags (bit 0 = [`FLAG_KTM_LOCKED`]).
    pub flags: U32,
    /// Reserved.
    pub reserved2: [u8; 360],
    /// XOR checksum of bytes 0..508 (see [`crate::base_block::checksum`]).
    pub checksum: U32,
}

/// Size of [`BaseBlockHeader`], the checked part of the base block.
pub const HEADER_SIZE: usize = core::mem::size_of::<BaseBlockHeader>();

const _: () = assert!(HEADER_SIZE == 512);
