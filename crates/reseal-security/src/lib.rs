//! Windows security identifiers (SIDs) and self-relative security descriptors.
//!
//! Pure data code, no I/O. Used by the hive engine (sk cells), the NTFS engine (`$SDS`
//! entries, legacy `$SECURITY_DESCRIPTOR` attributes) and `reseal generalize` (SID rewriting).
//!
//! * [`Sid`]: binary and string forms of a SID.
//! * [`SecurityDescriptor`]: a parsed **self-relative** descriptor (the only form that exists on
//!   disk; the absolute in-memory form with pointers is never parsed). Parsing and
//!   [`SecurityDescriptor::to_bytes`] round-trip byte-identically, including component order,
//!   gaps, ACL slack and ACE padding. [`SecurityDescriptor::to_canonical_bytes`] produces the
//!   layout Windows writes (header, SACL, DACL, owner, group).
//! * [`Ace`]: every ACE type of MS-DTYP 2.4.4, with an [`Ace::Unknown`] fallback.
//! * [`conditional`]: conditional-expression ("artx") token streams of callback ACEs.
//! * [`claim`]: `CLAIM_SECURITY_ATTRIBUTE_RELATIVE_V1` of resource-attribute ACEs.
//! * [`sid_positions`]: byte ranges of every SID inside a descriptor, for in-place patching.
//! * [`sddl`]: SDDL text in and out.
//! * [`inherit`]: the descriptor a new file or directory inherits from its parent.
//! * [`sidmap`]: account-domain SID mapping over descriptors and arbitrary byte buffers.
//!
//! ```
//! use reseal_security::{sidmap::SidMap, SecurityDescriptor};
//!
//! let sd = SecurityDescriptor::from_sddl("O:BAG:SYD:PAI(A;OICI;FA;;;S-1-5-21-1-2-3-1000)(A;;0x1200a9;;;BU)")?;
//! let mut bytes = sd.to_bytes()?;
//! assert_eq!(SecurityDescriptor::parse(&bytes)?.to_bytes()?, bytes); // byte-exact
//!
//! let map = SidMap::new("S-1-5-21-1-2-3".parse()?, "S-1-5-21-7-8-9".parse()?)?;
//! assert_eq!(map.rewrite_descriptor_bytes(&mut bytes)?, 1); // in place, same length
//! assert_eq!(
//!     SecurityDescriptor::parse(&bytes)?.to_sddl()?,
//!     "O:BAG:SYD:PAI(A;OICI;FA;;;S-1-5-21-7-8-9-1000)(A;;0x1200a9;;;BU)"
//! );
//! # Ok::<(), reseal_security::Error>(())
//! ```
#![deny(missing_docs)]

mod ace;
mod acl;
pub mod claim;
pub mod conditional;
mod descriptor;
mod error;
mod guid;
pub mod inherit;
pub mod layout;
pub mod sddl;
mod sid;
pub mod sidmap;

pub use ace::{AccessMask, Ace, AceFlags, BasicAce, CompoundAce, ObjectAce, ResourceAttributeAce};
pub use acl::Acl;
pub use descriptor::{sid_positions, Control, SecurityDescriptor};
pub use error::{Error, Result};
pub use guid::Guid;
pub use sid::Sid;
