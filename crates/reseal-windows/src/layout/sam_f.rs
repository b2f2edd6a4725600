//! A user's `F` value (`SAM\Domains\Account\Users\<RID>\F`): fixed-size account facts.
//!
//! Reference: FORMATS.md A.1, docs/SAM.md. Windows writes 0x50 bytes
//! ([`crate::sam::USER_F_LEN`]); reseal reads the first [`SIZE`] and keeps the rest as is.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The fields of a user `F` reseal reads or writes (the value's first 0x44 bytes).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct UserF {
    /// Revision and reserved bytes (kept).
    pub header: [u8; 8],
    /// Last logon, FILETIME (0 = never).
    pub last_logon: U64,
    /// Last logoff, FILETIME (not maintained by Windows; kept).
    pub last_logoff: U64,
    /// Password last set, FILETIME.
    pub password_last_set: U64,
    /// Account expiry, FILETIME (kept).
    pub account_expires: U64,
    /// Last bad password, FILETIME (kept).
    pub last_bad_password: U64,
    /// The account's RID.
    pub rid: U32,
    /// Reserved (kept).
    pub reserved_34: U32,
    /// Account-control bits ([`crate::sam::ACB_DISABLED`], [`crate::sam::ACB_AUTOLOCKED`], ...).
    pub acb: U16,
    /// Reserved (kept).
    pub reserved_3a: [u8; 6],
    /// Bad-password count (reset by an unlock).
    pub bad_password_count: U16,
    /// Logon count.
    pub logon_count: U16,
}

/// Size of [`UserF`]: an `F` value shorter than this cannot be read.
pub const SIZE: usize = core::mem::size_of::<UserF>();

const _: () = assert!(SIZE == 0x44);

impl UserF {
    /// The view of the start of `f`, `None` when it is shorter than [`SIZE`].
    pub fn view(f: &[u8]) -> Option<&UserF> {
        UserF::ref_from_prefix(f).ok().map(|(h, _)| h)
    }

    /// The mutable view of the start of `f`, `None` when it is shorter than [`SIZE`].
    pub fn view_mut(f: &mut [u8]) -> Option<&mut UserF> {
        UserF::mut_from_prefix(f).ok().map(|(h, _)| h)
    }
}
