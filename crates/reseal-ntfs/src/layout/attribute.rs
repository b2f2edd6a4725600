//! The attribute header inside MFT records: the common part, then the resident or the
//! non-resident part. Reference: FORMATS.md C.3.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Common first 16 bytes of every attribute header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct AttributeHeader {
    /// Attribute type code (0x10 `$STANDARD_INFORMATION` ... 0xFFFFFFFF end marker).
    pub type_code: U32,
    /// Length of the whole attribute (header, name, value or runlist), 8-aligned.
    pub length: U32,
    /// 0 resident, 1 non-resident.
    pub non_resident: u8,
    /// Name length in UTF-16 code units.
    pub name_length: u8,
    /// Byte offset of the name from the attribute start.
    pub name_offset: U16,
    /// Compressed 0x0001, encrypted 0x4000, sparse 0x8000.
    pub flags: U16,
    /// Instance number, unique within the record.
    pub instance: U16,
}

/// Size of [`AttributeHeader`].
pub const HEADER_LEN: usize = 16;
const _: () = assert!(core::mem::size_of::<AttributeHeader>() == HEADER_LEN);

/// Resident part of the header (bytes 16..24).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Resident {
    /// Value length in bytes.
    pub value_length: U32,
    /// Byte offset of the value from the attribute start.
    pub value_offset: U16,
    /// 1 when the attribute is indexed (a `$FILE_NAME` in a directory).
    pub indexed_flag: u8,
    /// Padding.
    pub reserved: u8,
}

/// Size of the common header plus [`Resident`].
pub const RESIDENT_LEN: usize = 24;
const _: () = assert!(core::mem::size_of::<Resident>() == RESIDENT_LEN - HEADER_LEN);

/// Non-resident part of the header (bytes 16..64); a compressed or sparse attribute has one more
/// u64 (compressed size) at 64.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct NonResident {
    /// First VCN this extent maps.
    pub lowest_vcn: U64,
    /// Last VCN this extent maps (-1 for an empty attribute).
    pub highest_vcn: U64,
    /// Byte offset of the runlist (mapping pairs) from the attribute start.
    pub runlist_offset: U16,
    /// Compression unit as a power of two of clusters (0 = not compressed).
    pub compression_unit: U16,
    /// Padding.
    pub reserved: [u8; 4],
    /// Allocated bytes (valid in the extent with lowest VCN 0).
    pub allocated_size: U64,
    /// Data size in bytes (idem).
    pub data_size: U64,
    /// Initialized bytes (idem).
    pub initialized_size: U64,
}

/// Size of the common header plus [`NonResident`].
pub const NON_RESIDENT_LEN: usize = 64;
/// Size of a compressed or sparse non-resident header (with the compressed size).
pub const COMPRESSED_LEN: usize = 72;
const _: () = assert!(core::mem::size_of::<NonResident>() == NON_RESIDENT_LEN - HEADER_LEN);

/// Byte offset of [`NonResident::allocated_size`] from the attribute start.
pub const ALLOCATED_SIZE_OFFSET: usize =
    HEADER_LEN + core::mem::offset_of!(NonResident, allocated_size);

/// The common header at the start of `attr`, `None` when shorter than 16 bytes.
pub fn header(attr: &[u8]) -> Option<&AttributeHeader> {
    AttributeHeader::ref_from_prefix(attr).ok().map(|(h, _)| h)
}

/// The mutable common header at the start of `attr`.
pub fn header_mut(attr: &mut [u8]) -> Option<&mut AttributeHeader> {
    AttributeHeader::mut_from_prefix(attr).ok().map(|(h, _)| h)
}

/// The resident part of the attribute starting at `attr`.
pub fn resident(attr: &[u8]) -> Option<&Resident> {
    Resident::ref_from_prefix(attr.get(HEADER_LEN..)?)
        .ok()
        .map(|(h, _)| h)
}

/// The mutable resident part of the attribute starting at `attr`.
pub fn resident_mut(attr: &mut [u8]) -> Option<&mut Resident> {
    Resident::mut_from_prefix(attr.get_mut(HEADER_LEN..)?)
        .ok()
        .map(|(h, _)| h)
}

/// The non-resident part of the attribute starting at `attr`.
pub fn non_resident(attr: &[u8]) -> Option<&NonResident> {
    NonResident::ref_from_prefix(attr.get(HEADER_LEN..)?)
        .ok()
        .map(|(h, _)| h)
}

/// The mutable non-resident part of the attribute starting at `attr`.
pub fn non_resident_mut(attr: &mut [u8]) -> Option<&mut NonResident> {
    NonResident::mut_from_prefix(attr.get_mut(HEADER_LEN..)?)
        .ok()
        .map(|(h, _)| h)
}

/// The name of the attribute starting at `attr` (whose header is `h`), `None` when it runs past
/// `attr` (an empty name is never out of bounds, whatever its offset).
pub fn name<'a>(attr: &'a [u8], h: &AttributeHeader) -> Option<&'a [U16]> {
    if h.name_length == 0 {
        return Some(&[]);
    }
    let rest = attr.get(usize::from(h.name_offset.get())..)?;
    <[U16]>::ref_from_prefix_with_elems(rest, usize::from(h.name_length))
        .ok()
        .map(|(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_and_short_input() {
        let mut b = [0u8; 72];
        b[0] = 0x80;
        b[4] = 72;
        b[8] = 1;
        b[9] = 1;
        b[10] = 64;
        b[16 + 16] = 66;
        b[16 + 24] = 0x10;
        b[64] = b'X';
        let h = header(&b).unwrap();
        assert_eq!(
            (h.type_code.get(), h.length.get(), h.non_resident),
            (0x80, 72, 1)
        );
        let nr = non_resident(&b).unwrap();
        assert_eq!(nr.runlist_offset.get(), 66);
        assert_eq!(nr.allocated_size.get(), 0x10);
        assert_eq!(ALLOCATED_SIZE_OFFSET, 40);
        let n = name(&b, h).unwrap();
        assert_eq!(n[0].get(), u16::from(b'X'));
        assert!(name(&b[..65], h).is_none());
        assert!(header(&b[..15]).is_none());
        assert!(resident(&b[..23]).is_none());
        assert!(resident(&b[..24]).is_some());
        assert!(non_resident(&b[..63]).is_none());
    }
}
