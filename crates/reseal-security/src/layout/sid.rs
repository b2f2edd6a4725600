//! `SID` (MS-DTYP 2.4.2.2): an 8-byte header, then `sub_authority_count` little-endian u32s.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The only revision defined.
pub const REVISION: u8 = 1;
/// At most 15 sub-authorities (`SID_MAX_SUB_AUTHORITIES`).
pub const MAX_SUB_AUTHORITIES: usize = 15;

/// Fixed header of a SID.
#[derive(Debug, Clone, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SidHeader {
    /// Revision ([`REVISION`]).
    pub revision: u8,
    /// Number of sub-authorities that follow.
    pub sub_authority_count: u8,
    /// Identifier authority, a 48-bit **big-endian** number.
    pub identifier_authority: [u8; 6],
}

impl SidHeader {
    /// The identifier authority as a number.
    pub fn authority(&self) -> u64 {
        self.identifier_authority
            .iter()
            .fold(0u64, |a, &b| (a << 8) | u64::from(b))
    }

    /// A header for `count` sub-authorities and `authority` (low 48 bits kept).
    pub fn new(count: u8, authority: u64) -> Self {
        let mut identifier_authority = [0u8; 6];
        identifier_authority.copy_from_slice(&authority.to_be_bytes()[2..8]);
        SidHeader {
            revision: REVISION,
            sub_authority_count: count,
            identifier_authority,
        }
    }
}

/// Size of [`SidHeader`]: the sub-authorities start here.
pub const HEADER_SIZE: usize = core::mem::size_of::<SidHeader>();
const _: () = assert!(HEADER_SIZE == 8);
