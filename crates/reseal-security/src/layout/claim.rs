//! `CLAIM_SECURITY_ATTRIBUTE_RELATIVE_V1` header (MS-DTYP 2.4.10.1), the application data of a
//! resource-attribute ACE. `value_count` u32 value offsets follow the header; every offset
//! (name and values) is relative to the header's start.

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Value type `CLAIM_SECURITY_ATTRIBUTE_TYPE_INT64`.
pub const TYPE_INT64: u16 = 0x0001;
/// Value type `..._UINT64`.
pub const TYPE_UINT64: u16 = 0x0002;
/// Value type `..._STRING` (NUL-terminated UTF-16).
pub const TYPE_STRING: u16 = 0x0003;
/// Value type `..._FQBN` (u64 version, then the offset of a UTF-16 name).
pub const TYPE_FQBN: u16 = 0x0004;
/// Value type `..._SID` (u32 length, then the SID).
pub const TYPE_SID: u16 = 0x0005;
/// Value type `..._BOOLEAN` (u64).
pub const TYPE_BOOLEAN: u16 = 0x0006;
/// Value type `..._OCTET_STRING` (u32 length, then the bytes).
pub const TYPE_OCTET_STRING: u16 = 0x0010;

/// Fixed header of a relative claim attribute.
#[derive(Debug, Clone, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ClaimAttributeRelative {
    /// Offset of the NUL-terminated UTF-16 attribute name.
    pub name_offset: U32,
    /// One of the `TYPE_*` constants.
    pub value_type: U16,
    /// Reserved.
    pub reserved: U16,
    /// Attribute flags.
    pub flags: U32,
    /// Number of value offsets after the header.
    pub value_count: U32,
}

/// Size of [`ClaimAttributeRelative`]: the value offsets start here.
pub const HEADER_SIZE: usize = core::mem::size_of::<ClaimAttributeRelative>();
const _: () = assert!(HEADER_SIZE == 16);
