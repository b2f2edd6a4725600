//! The descriptor table at the start of a SAM `V` value (`Domains\Account\V`: 4 entries;
//! `Users\<RID>\V`: 17). Each entry locates one field in the data area that follows the table.
//!
//! Reference: FORMATS.md A.1, docs/SAM.md.

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// One entry of the table.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct Descriptor {
    /// Offset of the field, relative to the end of the table (the data area).
    pub offset: U32,
    /// Length of the field in bytes.
    pub length: U32,
    /// Field-specific qualifier (kept as is).
    pub qualifier: U32,
}

/// Size of one [`Descriptor`].
pub const DESCRIPTOR_SIZE: usize = core::mem::size_of::<Descriptor>();

const _: () = assert!(DESCRIPTOR_SIZE == 12);

/// The first `count` descriptors of `v`, `None` when `v` is shorter than the table.
pub fn table(v: &[u8], count: usize) -> Option<&[Descriptor]> {
    <[Descriptor]>::ref_from_prefix_with_elems(v, count)
        .ok()
        .map(|(t, _)| t)
}

/// The first `count` descriptors of `v`, mutable; `None` when `v` is shorter than the table.
pub fn table_mut(v: &mut [u8], count: usize) -> Option<&mut [Descriptor]> {
    <[Descriptor]>::mut_from_prefix_with_elems(v, count)
        .ok()
        .map(|(t, _)| t)
}
