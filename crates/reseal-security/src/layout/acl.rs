//! `ACL` header (MS-DTYP 2.4.5): 8 bytes, then `ace_count` ACEs within `acl_size` bytes.

use zerocopy::little_endian::U16;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `ACL_REVISION`: basic ACEs only.
pub const REVISION: u8 = 2;
/// `ACL_REVISION_DS`: needed when any object ACE is present.
pub const REVISION_DS: u8 = 4;

/// Fixed header of an ACL.
#[derive(Debug, Clone, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct AclHeader {
    /// [`REVISION`] or [`REVISION_DS`].
    pub acl_revision: u8,
    /// Reserved.
    pub sbz1: u8,
    /// Size of the ACL in bytes, header and ACEs (and any slack) included.
    pub acl_size: U16,
    /// Number of ACEs.
    pub ace_count: U16,
    /// Reserved.
    pub sbz2: U16,
}

/// Size of [`AclHeader`].
pub const HEADER_SIZE: usize = core::mem::size_of::<AclHeader>();
const _: () = assert!(HEADER_SIZE == 8);
