//! Definitions layer: the binary security structures of MS-DTYP as `zerocopy` views.
//!
//! One module per structure, fields named after MS-DTYP 2.4, all little-endian except the SID's
//! big-endian identifier authority. Views are read with `read_from_prefix`, so short input is an
//! `Err` (or `None`), never a panic; the typed model (`Sid`, `Acl`, `Ace`, `SecurityDescriptor`,
//! claims) parses and writes through them. [`read`] is the one scalar reader for the token and
//! claim streams that have no fixed header.

pub mod ace;
pub mod acl;
pub mod claim;
pub mod descriptor;
pub mod guid;
pub mod sid;

use zerocopy::FromBytes;

/// The value of type `T` (a view or a `zerocopy::little_endian` scalar) at byte `offset` of
/// `bytes`, or `None` when fewer than `size_of::<T>()` bytes are there.
pub fn read<T: FromBytes>(bytes: &[u8], offset: usize) -> Option<T> {
    T::read_from_prefix(bytes.get(offset..)?)
        .ok()
        .map(|(v, _)| v)
}
