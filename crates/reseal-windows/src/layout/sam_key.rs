//! The SAM key structure at 0x68 of `SAM\Domains\Account\F`: the SAM ("password encryption")
//! key, encrypted under the boot key. Revision 1 ([`SamKeyData`]) is RC4 with an MD5 check;
//! revision 2 ([`SamKeyDataAes`]) is AES-128-CBC, its encrypted key and checksum following
//! the header.
//!
//! Reference: docs/SAM.md (checked against impacket's secretsdump and real SAM hives).

use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Offset of the structure in the domain `F` value.
pub const OFFSET: usize = 0x68;
/// Revision of the RC4 structure.
pub const REVISION_RC4: u32 = 1;
/// Revision of the AES structure.
pub const REVISION_AES: u32 = 2;

/// Revision 1: RC4 key structure (0x38 bytes; Windows leaves 8 zero bytes after it).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SamKeyData {
    /// [`REVISION_RC4`].
    pub revision: U32,
    /// Length of the structure (0x38).
    pub length: U32,
    /// Salt of the RC4 key derivation (MD5 of salt, QWERTY, boot key, DIGITS).
    pub salt: [u8; 16],
    /// The RC4-encrypted SAM key.
    pub key: [u8; 16],
    /// The RC4-encrypted MD5 check of the key.
    pub checksum: [u8; 16],
}

/// Size of [`SamKeyData`].
pub const RC4_SIZE: usize = core::mem::size_of::<SamKeyData>();
const _: () = assert!(RC4_SIZE == 0x38);

/// Revision 2: header of the AES key structure; `data_length` bytes of encrypted key, then
/// `checksum_length` bytes of encrypted checksum follow.
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SamKeyDataAes {
    /// [`REVISION_AES`].
    pub revision: U32,
    /// Length of the whole structure (0x70 as Windows writes it).
    pub length: U32,
    /// Length of the encrypted checksum.
    pub checksum_length: U32,
    /// Length of the encrypted key (a multiple of 16).
    pub data_length: U32,
    /// The CBC initialisation vector.
    pub salt: [u8; 16],
}

/// Size of [`SamKeyDataAes`]: the encrypted key starts here.
pub const AES_HEADER_SIZE: usize = core::mem::size_of::<SamKeyDataAes>();
const _: () = assert!(AES_HEADER_SIZE == 0x20);
