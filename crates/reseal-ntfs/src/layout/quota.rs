//! `$Extend\$Quota` view index data: the fixed part of a `$Q` entry's data (QUOTA_CONTROL_ENTRY,
//! followed by the owner's SID) and the `$O` entry's data. Reference: FORMATS.md C.6.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Fixed 48 bytes of a `$Q` entry's data (key: the u32 owner id); the owner's SID follows,
/// absent in the default-limits entry (owner id 1).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct QuotaControlEntry {
    /// Version (2).
    pub version: U32,
    /// Quota flags.
    pub flags: U32,
    /// Bytes charged to the owner.
    pub bytes_used: U64,
    /// Last change time (FILETIME).
    pub change_time: U64,
    /// Warning threshold.
    pub threshold: U64,
    /// Hard limit.
    pub limit: U64,
    /// When the threshold was exceeded (FILETIME).
    pub exceeded_time: U64,
}

/// Size of [`QuotaControlEntry`] (the offset of the SID in the data).
pub const QUOTA_CONTROL_LEN: usize = 48;
const _: () = assert!(core::mem::size_of::<QuotaControlEntry>() == QUOTA_CONTROL_LEN);

/// Data of a `$O` entry (key: the owner's SID).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct OwnerIdData {
    /// Owner id, the key of the owner's `$Q` entry.
    pub owner_id: U32,
}

const _: () = assert!(core::mem::size_of::<OwnerIdData>() == 4);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_short_input() {
        let mut d = [0u8; 60];
        d[0] = 2;
        d[8] = 0x10;
        d[48] = 1;
        let (q, sid) = QuotaControlEntry::ref_from_prefix(&d[..]).unwrap();
        assert_eq!((q.version.get(), q.bytes_used.get()), (2, 0x10));
        assert_eq!(sid[0], 1);
        assert!(QuotaControlEntry::ref_from_prefix(&d[..47]).is_err());
        assert!(OwnerIdData::ref_from_prefix(&d[..3]).is_err());
    }
}
