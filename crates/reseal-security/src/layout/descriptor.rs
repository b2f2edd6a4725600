//! `SECURITY_DESCRIPTOR_RELATIVE` header (MS-DTYP 2.4.6): the 20 bytes that start every
//! self-relative descriptor; the four offsets (0 = absent) are relative to the header's start.

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The only revision defined.
pub const REVISION: u8 = 1;

/// Fixed header of a self-relative security descriptor.
#[derive(Debug, Clone, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SecurityDescriptorRelative {
    /// Revision ([`REVISION`]).
    pub revision: u8,
    /// Resource-manager control bits when `SE_RM_CONTROL_VALID` is set, else reserved.
    pub sbz1: u8,
    /// `SECURITY_DESCRIPTOR_CONTROL` flags.
    pub control: U16,
    /// Offset of the owner SID.
    pub offset_owner: U32,
    /// Offset of the primary group SID.
    pub offset_group: U32,
    /// Offset of the SACL.
    pub offset_sacl: U32,
    /// Offset of the DACL.
    pub offset_dacl: U32,
}

impl SecurityDescriptorRelative {
    /// The four component offsets in header order: owner, group, SACL, DACL.
    pub fn offsets(&self) -> [u32; 4] {
        [
            self.offset_owner.get(),
            self.offset_group.get(),
            self.offset_sacl.get(),
            self.offset_dacl.get(),
        ]
    }

    /// Sets the four component offsets (owner, group, SACL, DACL).
    pub fn set_offsets(&mut self, o: [u32; 4]) {
        self.offset_owner.set(o[0]);
        self.offset_group.set(o[1]);
        self.offset_sacl.set(o[2]);
        self.offset_dacl.set(o[3]);
    }
}

/// Size of [`SecurityDescriptorRelative`].
pub const HEADER_SIZE: usize = core::mem::size_of::<SecurityDescriptorRelative>();
const _: () = assert!(HEADER_SIZE == 20);
