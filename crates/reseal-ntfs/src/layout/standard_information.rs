//! The `$STANDARD_INFORMATION` value (type 0x10, always resident). Reference: FORMATS.md C.4.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, FromZeros, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `$STANDARD_INFORMATION` in the NTFS 3.x layout (72 bytes). NTFS 1.2 values (which ntfs-3g
/// still writes for the files it creates) stop after [`StandardInformation::class_id`], at
/// [`LEN_V1`] bytes.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct StandardInformation {
    /// Creation time (FILETIME).
    pub creation_time: U64,
    /// Last data change time (FILETIME).
    pub last_data_change_time: U64,
    /// Last MFT change time (FILETIME).
    pub last_mft_change_time: U64,
    /// Last access time (FILETIME).
    pub last_access_time: U64,
    /// File attribute flags (`FILE_ATTRIBUTE_*`: 0x20 archive, 0x4000 encrypted, ...).
    pub file_attributes: U32,
    /// Maximum number of versions (0).
    pub maximum_versions: U32,
    /// Version number (0).
    pub version_number: U32,
    /// Class id (0).
    pub class_id: U32,
    /// Owner id, the key into `$Extend\$Quota:$Q` (0 when quotas are off). NTFS 3.x only.
    pub owner_id: U32,
    /// Security id, the key into `$Secure:$SII` (0: none). NTFS 3.x only.
    pub security_id: U32,
    /// Bytes charged to the owner's quota. NTFS 3.x only.
    pub quota_charged: U64,
    /// Last update sequence number in `$Extend\$UsnJrnl`. NTFS 3.x only.
    pub usn: U64,
}

/// Size of [`StandardInformation`] (the NTFS 3.x value).
pub const LEN: usize = 72;
/// Size of the NTFS 1.2 value (up to and including `class_id`).
pub const LEN_V1: usize = 48;
const _: () = assert!(core::mem::size_of::<StandardInformation>() == LEN);
const _: () = assert!(core::mem::offset_of!(StandardInformation, owner_id) == LEN_V1);

/// Bytes a value needs to hold [`StandardInformation::file_attributes`].
pub const ATTRIBUTES_END: usize = core::mem::offset_of!(StandardInformation, maximum_versions);
/// Bytes a value needs to hold [`StandardInformation::security_id`].
pub const SECURITY_ID_END: usize = core::mem::offset_of!(StandardInformation, quota_charged);

impl StandardInformation {
    /// The view of a full (72-byte or longer) value, `None` when shorter.
    pub fn view(value: &[u8]) -> Option<&StandardInformation> {
        StandardInformation::ref_from_prefix(value)
            .ok()
            .map(|(h, _)| h)
    }

    /// The mutable view of a full value, `None` when shorter than 72 bytes.
    pub fn view_mut(value: &mut [u8]) -> Option<&mut StandardInformation> {
        StandardInformation::mut_from_prefix(value)
            .ok()
            .map(|(h, _)| h)
    }

    /// A copy of a value of any length, the fields past its end read as 0 (an NTFS 1.2 value
    /// has no owner or security id). A 72-byte copy, no allocation.
    pub fn read(value: &[u8]) -> StandardInformation {
        let mut si = StandardInformation::new_zeroed();
        let n = value.len().min(LEN);
        si.as_mut_bytes()[..n].copy_from_slice(&value[..n]);
        si
    }

    /// A new NTFS 3.x value with all four times `t`, attributes `file_attributes` and security
    /// id `security_id`, the rest 0.
    pub fn new(t: u64, file_attributes: u32, security_id: u32) -> StandardInformation {
        let mut si = StandardInformation::new_zeroed();
        si.creation_time = t.into();
        si.last_data_change_time = t.into();
        si.last_mft_change_time = t.into();
        si.last_access_time = t.into();
        si.file_attributes = file_attributes.into();
        si.security_id = security_id.into();
        si
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_short_input() {
        let si = StandardInformation::new(7, 0x20, 0x105);
        let b = si.as_bytes();
        assert_eq!(b.len(), LEN);
        assert_eq!(b[24], 7);
        assert_eq!(b[32], 0x20);
        assert_eq!(&b[52..54], &[5, 1]);
        let v = StandardInformation::view(b).unwrap();
        assert_eq!(v.security_id.get(), 0x105);
        assert!(StandardInformation::view(&b[..LEN - 1]).is_none());
        let short = StandardInformation::read(&b[..LEN_V1]);
        assert_eq!(
            (short.file_attributes.get(), short.security_id.get()),
            (0x20, 0)
        );
        assert_eq!(StandardInformation::read(&[]).creation_time.get(), 0);
        assert_eq!((ATTRIBUTES_END, SECURITY_ID_END), (36, 56));
    }
}
