//! The `$FILE_NAME` attribute value (type 0x30), also the key of every `$I30` index entry.
//! Reference: FORMATS.md, NTFS `$FILE_NAME`. This is the one place it is parsed and built.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Fixed 66-byte header of a `$FILE_NAME` value; `file_name_length` UTF-16LE code units follow.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct FileName {
    /// MFT reference of the parent directory (48-bit record number, 16-bit sequence).
    pub parent_directory: U64,
    /// Creation time (FILETIME).
    pub creation_time: U64,
    /// Last data change time (FILETIME).
    pub last_data_change_time: U64,
    /// Last MFT change time (FILETIME).
    pub last_mft_change_time: U64,
    /// Last access time (FILETIME).
    pub last_access_time: U64,
    /// Allocated size of the unnamed `$DATA`.
    pub allocated_size: U64,
    /// Real size of the unnamed `$DATA`.
    pub data_size: U64,
    /// File attribute flags (0x1000_0000 = directory with `$I30`).
    pub file_attributes: U32,
    /// Reparse tag or EA size.
    pub reparse_or_ea: U32,
    /// Name length in UTF-16 code units.
    pub file_name_length: u8,
    /// Namespace: 0 POSIX, 1 Win32, 2 DOS, 3 Win32+DOS.
    pub file_name_type: u8,
}

/// Size of [`FileName`] (the offset of the name).
pub const HEADER_LEN: usize = 66;

const _: () = assert!(core::mem::size_of::<FileName>() == HEADER_LEN);

impl FileName {
    /// The header view of a `$FILE_NAME` value, `None` when shorter than 66 bytes.
    pub fn view(value: &[u8]) -> Option<&FileName> {
        FileName::ref_from_prefix(value).ok().map(|(h, _)| h)
    }

    /// The mutable header view of a `$FILE_NAME` value, `None` when shorter than 66 bytes.
    pub fn view_mut(value: &mut [u8]) -> Option<&mut FileName> {
        FileName::mut_from_prefix(value).ok().map(|(h, _)| h)
    }

    /// Parent directory record number (the low 48 bits of the reference).
    pub fn parent_record(&self) -> u64 {
        self.parent_directory.get() & 0xFFFF_FFFF_FFFF
    }
}

/// The name and namespace of a `$FILE_NAME` value; `None` when the header or the name runs past
/// the end of `value`.
pub fn name(value: &[u8]) -> Option<(Vec<u16>, u8)> {
    let (h, rest) = FileName::ref_from_prefix(value).ok()?;
    let units = <[U16]>::ref_from_prefix_with_elems(rest, usize::from(h.file_name_length))
        .ok()?
        .0;
    Some((units.iter().map(|u| u.get()).collect(), h.file_name_type))
}

/// Build a `$FILE_NAME` value with all four times set to `t`.
pub fn build(
    parent_ref: u64,
    t: u64,
    alloc: u64,
    size: u64,
    flags: u32,
    name: &[u16],
    ns: u8,
) -> Vec<u8> {
    let h = FileName {
        parent_directory: parent_ref.into(),
        creation_time: t.into(),
        last_data_change_time: t.into(),
        last_mft_change_time: t.into(),
        last_access_time: t.into(),
        allocated_size: alloc.into(),
        data_size: size.into(),
        file_attributes: flags.into(),
        reparse_or_ea: 0.into(),
        file_name_length: name.len() as u8,
        file_name_type: ns,
    };
    let mut v = Vec::with_capacity(HEADER_LEN + 2 * name.len());
    v.extend_from_slice(h.as_bytes());
    for c in name {
        v.extend_from_slice(&c.to_le_bytes());
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_short_input() {
        let n: Vec<u16> = "abc".encode_utf16().collect();
        let v = build(5 | (1 << 48), 7, 4096, 10, 0x20, &n, 1);
        assert_eq!(v.len(), HEADER_LEN + 6);
        assert_eq!(name(&v), Some((n, 1)));
        let h = FileName::view(&v).unwrap();
        assert_eq!(h.parent_record(), 5);
        assert_eq!(h.data_size.get(), 10);
        for len in 0..v.len() {
            assert!(name(&v[..len]).is_none());
        }
    }
}
