//! The Volume Shadow Copy volume header (128 bytes at volume offset 0x1E00). Reference: the
//! table in `crate::vss` (libvshadow's format document; not in FORMATS.md).

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The VSS volume header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VssVolumeHeader {
    /// The VSS identifier GUID (`crate::vss::VSS_IDENTIFIER`).
    pub identifier: [u8; 16],
    /// Format version (1).
    pub version: U32,
    /// Record type (1 = volume header).
    pub record_type: U32,
    /// Volume offset of this header (0x1E00).
    pub header_offset: U64,
    /// Unknown.
    pub unknown: [u8; 16],
    /// Volume offset of the catalog; 0 when the volume has no shadow copies.
    pub catalog_offset: U64,
    /// Maximum size of the shadow storage.
    pub maximum_size: U64,
    /// Volume identifier.
    pub volume_identifier: [u8; 16],
    /// Shadow storage volume identifier.
    pub storage_volume_identifier: [u8; 16],
    /// Unused.
    pub reserved: [u8; 32],
}

/// Size of [`VssVolumeHeader`].
pub const LEN: usize = 128;
const _: () = assert!(core::mem::size_of::<VssVolumeHeader>() == LEN);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_short_input() {
        let mut b = [0u8; LEN];
        b[0x14] = 1;
        b[0x19] = 0x1E;
        b[0x30] = 7;
        let h = VssVolumeHeader::ref_from_bytes(&b[..]).unwrap();
        assert_eq!(h.record_type.get(), 1);
        assert_eq!(h.header_offset.get(), 0x1E00);
        assert_eq!(h.catalog_offset.get(), 7);
        assert!(VssVolumeHeader::ref_from_bytes(&b[..LEN - 1]).is_err());
    }
}
