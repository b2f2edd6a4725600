//! The qcow2 header (the version 2 part and the fields version 3 adds), the header extension
//! header and the feature name table entry; every integer is big-endian. L1, L2 and refcount
//! tables are plain arrays of big-endian integers, viewed as `[U64]` (or `[U16]`, `[U32]` for
//! refcount blocks) with [`be_array`] / [`be_array_mut`].
//!
//! Reference: QEMU `docs/interop/qcow2.txt`, sections "Header" (bytes 0-71, and 72-103 plus the
//! compression type byte 104 for version 3), "Header extensions" and "Feature name table".

use zerocopy::big_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `QFI\xfb`.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";
/// Byte offset of the version 3 compression type byte (present when header_length > 104).
pub const COMPRESSION_TYPE_OFFSET: usize = 104;

/// Bytes 0..72 of the header, common to versions 2 and 3.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct QcowHeaderV2 {
    /// `QFI\xfb` ([`MAGIC`]).
    pub magic: [u8; 4],
    /// 2 or 3.
    pub version: U32,
    /// Offset of the backing file name (0 = none).
    pub backing_file_offset: U64,
    /// Length of the backing file name, not NUL-terminated.
    pub backing_file_size: U32,
    /// log2 of the cluster size.
    pub cluster_bits: U32,
    /// Virtual disk size in bytes.
    pub size: U64,
    /// 0 none, 1 AES, 2 LUKS.
    pub crypt_method: U32,
    /// Entries of the active L1 table.
    pub l1_size: U32,
    /// Offset of the active L1 table.
    pub l1_table_offset: U64,
    /// Offset of the refcount table.
    pub refcount_table_offset: U64,
    /// Clusters occupied by the refcount table.
    pub refcount_table_clusters: U32,
    /// Number of internal snapshots.
    pub nb_snapshots: U32,
    /// Offset of the snapshot table.
    pub snapshots_offset: U64,
}

const _: () = assert!(size_of::<QcowHeaderV2>() == 72);

/// Bytes 72..104 of a version 3 header.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct QcowHeaderV3 {
    /// Incompatible feature bits.
    pub incompatible_features: U64,
    /// Compatible feature bits.
    pub compatible_features: U64,
    /// Autoclear feature bits.
    pub autoclear_features: U64,
    /// log2 of the refcount width in bits (0..=6).
    pub refcount_order: U32,
    /// Length of the header structure (104 or more, up to the cluster size).
    pub header_length: U32,
}

const _: () = assert!(size_of::<QcowHeaderV3>() == 32);
const _: () = assert!(size_of::<QcowHeaderV2>() + size_of::<QcowHeaderV3>() == 104);

/// Byte offset in the file of field `f` of [`QcowHeaderV2`] (`v2`) or [`QcowHeaderV3`] (`v3`).
macro_rules! field_offset {
    (v2, $f:ident) => {
        core::mem::offset_of!($crate::layout::qcow2::QcowHeaderV2, $f) as u64
    };
    (v3, $f:ident) => {
        (size_of::<$crate::layout::qcow2::QcowHeaderV2>()
            + core::mem::offset_of!($crate::layout::qcow2::QcowHeaderV3, $f)) as u64
    };
}
pub(crate) use field_offset;

/// The 8-byte header of one header extension; `length` data bytes follow, padded to 8.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct HeaderExtension {
    /// Extension type (0 = end of the list).
    pub ext_type: U32,
    /// Length of the data in bytes.
    pub length: U32,
}

const _: () = assert!(size_of::<HeaderExtension>() == 8);

/// One 48-byte entry of the feature name table extension.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FeatureNameEntry {
    /// 0 incompatible, 1 compatible, 2 autoclear.
    pub feature_type: u8,
    /// Bit number in the feature field.
    pub bit_number: u8,
    /// Name, NUL-padded ASCII.
    pub feature_name: [u8; 46],
}

const _: () = assert!(size_of::<FeatureNameEntry>() == 48);

/// The whole elements of `T` at the start of `b` (a trailing partial element is left out).
pub fn be_array<T: FromBytes + KnownLayout + Immutable + Unaligned>(b: &[u8]) -> &[T] {
    <[T]>::ref_from_prefix_with_elems(b, b.len() / size_of::<T>()).map_or(&[], |(t, _)| t)
}

/// [`be_array`], mutable.
pub fn be_array_mut<T: FromBytes + IntoBytes + KnownLayout + Unaligned>(b: &mut [u8]) -> &mut [T] {
    let n = b.len() / size_of::<T>();
    <[T]>::mut_from_prefix_with_elems(b, n).map_or(&mut [], |(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_at_spec_offsets_and_short_input() {
        let mut h = [0u8; 104];
        h[..4].copy_from_slice(&MAGIC);
        h[7] = 3;
        h[23] = 16;
        h[103] = 112;
        let (v2, rest) = QcowHeaderV2::ref_from_prefix(&h).unwrap();
        assert_eq!((v2.version.get(), v2.cluster_bits.get()), (3, 16));
        let (v3, _) = QcowHeaderV3::ref_from_prefix(rest).unwrap();
        assert_eq!(v3.header_length.get(), 112);
        assert_eq!(field_offset!(v2, cluster_bits), 20);
        assert_eq!(field_offset!(v3, header_length), 100);
        assert!(QcowHeaderV2::ref_from_prefix(&h[..71]).is_err());
        assert!(QcowHeaderV3::ref_from_prefix(&h[72..103]).is_err());
        assert!(HeaderExtension::ref_from_prefix(&h[..7]).is_err());
        assert!(FeatureNameEntry::ref_from_prefix(&h[..47]).is_err());
        let t: &[U64] = be_array(&h[..20]);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].get(), 0x5146_49fb_0000_0003);
    }
}
