//! The header of a hash field of a user `V` (LM hash, NT hash, the two histories): which
//! password-encryption key it uses and which scheme (revision 1: RC4, 2: AES).
//!
//! Reference: docs/SAM.md.

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Revision of an RC4-encrypted entry (16 bytes of hash after this 4-byte header).
pub const REVISION_RC4: u16 = 1;
/// Revision of an AES-encrypted entry (a 24-byte header, then the encrypted data).
pub const REVISION_AES: u16 = 2;

/// The first four bytes of a hash field.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct HashEntryHeader {
    /// Password-encryption key id.
    pub pek_id: U16,
    /// [`REVISION_RC4`] or [`REVISION_AES`].
    pub revision: U16,
}

impl HashEntryHeader {
    /// The view of the start of `entry`, `None` when it is shorter than 4 bytes.
    pub fn view(entry: &[u8]) -> Option<&HashEntryHeader> {
        HashEntryHeader::ref_from_prefix(entry).ok().map(|(h, _)| h)
    }
}

/// The header of a revision-2 (AES) hash field; the encrypted hash follows.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct AesHashEntryHeader {
    /// Common header (revision [`REVISION_AES`]).
    pub header: HashEntryHeader,
    /// Length of the encrypted hash (0 when there is none, else 16).
    pub data_length: U32,
    /// The CBC initialisation vector.
    pub salt: [u8; 16],
}

/// Size of [`AesHashEntryHeader`]: the encrypted hash starts here.
pub const AES_HEADER_SIZE: usize = core::mem::size_of::<AesHashEntryHeader>();
const _: () = assert!(AES_HEADER_SIZE == 24);
