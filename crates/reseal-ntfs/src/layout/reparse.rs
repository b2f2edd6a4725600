//! The `$REPARSE_POINT` value (type 0xC0): the reparse point header before the tag's data.
//! Not in FORMATS.md (reseal does not follow reparse points); reference: MS-FSCC 2.1.2.1.

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Header of a reparse point; `reparse_data_length` bytes of tag-specific data follow (for a
/// non-Microsoft tag, a 16-byte GUID first).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ReparsePointHeader {
    /// Reparse tag (bit 31 = Microsoft tag; 0xA000000C symbolic link, 0xA0000003 mount point).
    pub reparse_tag: U32,
    /// Length of the data after this header.
    pub reparse_data_length: U16,
    /// Reserved.
    pub reserved: U16,
}

/// Size of [`ReparsePointHeader`].
pub const LEN: usize = 8;
const _: () = assert!(core::mem::size_of::<ReparsePointHeader>() == LEN);

/// Tag bit: a Microsoft tag (no GUID after the header).
pub const TAG_MICROSOFT: u32 = 0x8000_0000;

impl ReparsePointHeader {
    /// The header of a `$REPARSE_POINT` value, `None` when shorter than 8 bytes.
    pub fn view(value: &[u8]) -> Option<&ReparsePointHeader> {
        ReparsePointHeader::ref_from_prefix(value)
            .ok()
            .map(|(h, _)| h)
    }
}

/// The tag-specific data of `value`, `None` when its length runs past `value`.
pub fn data(value: &[u8]) -> Option<&[u8]> {
    let h = ReparsePointHeader::view(value)?;
    value
        .get(LEN..)?
        .get(..usize::from(h.reparse_data_length.get()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_short_input() {
        let mut v = [0u8; 12];
        v[..4].copy_from_slice(&0xA000_000Cu32.to_le_bytes());
        v[4] = 4;
        v[8..].copy_from_slice(b"data");
        let h = ReparsePointHeader::view(&v).unwrap();
        assert_eq!(h.reparse_tag.get() & TAG_MICROSOFT, TAG_MICROSOFT);
        assert_eq!(data(&v), Some(&b"data"[..]));
        assert!(data(&v[..11]).is_none());
        assert!(ReparsePointHeader::view(&v[..7]).is_none());
    }
}
