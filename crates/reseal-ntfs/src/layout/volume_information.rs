//! The `$VOLUME_INFORMATION` value (type 0x70) of `$Volume` (record 3): NTFS version and volume
//! flags. Reference: FORMATS.md C.9.

use zerocopy::little_endian::{U16, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `$VOLUME_INFORMATION` (12 bytes; Windows pads the value to 16).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct VolumeInformation {
    /// Reserved (0).
    pub reserved: U64,
    /// Major NTFS version (3 for NTFS 3.x).
    pub major_version: u8,
    /// Minor NTFS version (1 for XP and later).
    pub minor_version: u8,
    /// [`FLAG_DIRTY`] and the other `VOLUME_*` flags.
    pub flags: U16,
}

/// Size of [`VolumeInformation`].
pub const LEN: usize = 12;
const _: () = assert!(core::mem::size_of::<VolumeInformation>() == LEN);

/// Volume flag: dirty (chkdsk runs at the next Windows boot).
pub const FLAG_DIRTY: u16 = 0x0001;

impl VolumeInformation {
    /// The view of a `$VOLUME_INFORMATION` value, `None` when shorter than 12 bytes.
    pub fn view(value: &[u8]) -> Option<&VolumeInformation> {
        VolumeInformation::ref_from_prefix(value)
            .ok()
            .map(|(h, _)| h)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_short_input() {
        let mut v = [0u8; 16];
        v[8] = 3;
        v[9] = 1;
        v[10] = 1;
        let h = VolumeInformation::view(&v).unwrap();
        assert_eq!((h.major_version, h.minor_version), (3, 1));
        assert_eq!(h.flags.get() & FLAG_DIRTY, FLAG_DIRTY);
        assert!(VolumeInformation::view(&v[..11]).is_none());
    }
}
