//! `ACE_HEADER` and the fixed fields after it (MS-DTYP 2.4.4.1–2.4.4.17).
//!
//! Every ACE starts with [`AceHeader`]. Basic, callback, label, scoped-policy, trust-label,
//! access-filter and resource-attribute ACEs continue with [`BasicAceBody`] and the trustee SID;
//! object ACEs with [`ObjectAceBody`], the GUIDs its flags announce, then the SID; the compound
//! ACE with [`CompoundAceBody`] and two SIDs (server, client).

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `ACE_OBJECT_TYPE_PRESENT`: an object-type GUID follows the object flags.
pub const OBJECT_TYPE_PRESENT: u32 = 0x1;
/// `ACE_INHERITED_OBJECT_TYPE_PRESENT`: an inherited-object-type GUID follows.
pub const INHERITED_OBJECT_TYPE_PRESENT: u32 = 0x2;

/// Header of every ACE.
#[derive(Debug, Clone, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct AceHeader {
    /// ACE type (0x00–0x15 defined).
    pub ace_type: u8,
    /// Inheritance and audit flags.
    pub ace_flags: u8,
    /// Size of the ACE in bytes, header included.
    pub ace_size: U16,
}

/// Size of [`AceHeader`].
pub const HEADER_SIZE: usize = core::mem::size_of::<AceHeader>();
const _: () = assert!(HEADER_SIZE == 4);

/// Fields after the header of a basic-shaped ACE; the trustee SID follows.
#[derive(Debug, Clone, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BasicAceBody {
    /// Access mask.
    pub mask: U32,
}

/// Offset of the trustee SID in a basic-shaped ACE.
pub const BASIC_SID_OFFSET: usize = HEADER_SIZE + core::mem::size_of::<BasicAceBody>();
const _: () = assert!(BASIC_SID_OFFSET == 8);

/// Fields after the header of an object ACE; optional GUIDs and the SID follow.
#[derive(Debug, Clone, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct ObjectAceBody {
    /// Access mask.
    pub mask: U32,
    /// [`OBJECT_TYPE_PRESENT`] | [`INHERITED_OBJECT_TYPE_PRESENT`] (other bits kept).
    pub flags: U32,
}

/// Offset of the first optional GUID in an object ACE.
pub const OBJECT_GUIDS_OFFSET: usize = HEADER_SIZE + core::mem::size_of::<ObjectAceBody>();
const _: () = assert!(OBJECT_GUIDS_OFFSET == 12);

/// Fields after the header of `ACCESS_ALLOWED_COMPOUND_ACE`; server and client SIDs follow.
#[derive(Debug, Clone, Default, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct CompoundAceBody {
    /// Access mask.
    pub mask: U32,
    /// `COMPOUND_ACE_IMPERSONATION` (1) is the only type defined.
    pub compound_ace_type: U16,
    /// Reserved.
    pub reserved: U16,
}

/// Offset of the server SID in a compound ACE.
pub const COMPOUND_SID_OFFSET: usize = HEADER_SIZE + core::mem::size_of::<CompoundAceBody>();
const _: () = assert!(COMPOUND_SID_OFFSET == 12);
