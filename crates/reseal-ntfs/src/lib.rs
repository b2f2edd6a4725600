//! NTFS for reseal: one engine that reads and writes (records, data, names, security; writes go
//! through the disk journal), read-only browsing as file handles over it ([`browse`]), and
//! volume-state checks.
//!
//! # Getting started with the write engine
//! 1. Wrap a partition [`reseal_disk::Device`] in [`Volume::open_writable`] (refuses unsafe
//!    volume states unless the [`WritePolicy`] overrides them) or [`Volume::open`] (no check).
//! 2. Call [`Volume::read_file`], [`Volume::write_at`], [`Volume::set_len`],
//!    [`Volume::create_file`], [`Volume::remove`], [`Volume::rename`],
//!    [`Volume::security_descriptor`], [`Volume::set_security`],
//!    [`Volume::rewrite_descriptors`]...
//! 3. Each call is all-or-nothing at the device level (see [`volume`]).
//!
//! # Behaviour of the write engine
//! - Lookups match a path component exactly first, then case-insensitively through `$UpCase`.
//!   New names are stored once, in the POSIX namespace (as ntfs-3g does), so case variants
//!   created with [`Volume::create_file`] are distinct files.
//! - New records come from `$MFT:$BITMAP` from record 64 upwards (as ntfs-3g); the MFT grows
//!   by 64 records in the MFT zone when full. Clusters come from `$Bitmap` outside the MFT zone,
//!   one contiguous extent near the existing data when possible.
//! - `$I30` and view indexes: lookups, inserts and removals work in place on the B-tree (leaf
//!   splits push the median up); when a change does not fit locally the whole index is laid out
//!   again from its sorted entries.
//! - New files and directories get the descriptor Windows computes from the parent's inheritable
//!   ACEs ([`reseal_security::inherit`]; owner and group are the parent's, there being no creator
//!   token), stored once in `$Secure` (an identical entry is found through `$SDH` and shared);
//!   where `$Secure` cannot grow (its record too full to promote `$SII`/`$SDH` to INDX blocks, or
//!   no `$SDS` at all) the descriptor goes into the new file's own `$SECURITY_DESCRIPTOR`.
//!   New names (creation, rename targets) must be names Windows can open ([`name_rules`]).
//! - `$FILE_NAME` size copies (record and parent index entry) follow `$DATA` size changes.
//!   `$STANDARD_INFORMATION` times are set on creation only.
//! - After the first successful change `$LogFile` is filled with 0xFF (as ntfs-3g does on a
//!   clean mount) so Windows re-initializes it instead of replaying stale records. The volume
//!   dirty flag is never set. Dirty, hibernated and Fast Startup volumes are refused when the
//!   volume is opened for writing ([`Volume::open_writable`] with a [`WritePolicy`]).
//! - Not supported (a clear [`Error::Unsupported`] before anything is written): creating an
//!   attribute list or extension record, resizing or allocating in attributes spread over an
//!   attribute list, writing compressed or encrypted data (compressed data is read), hard
//!   links in several directories, descriptor rewrites that change length.
#![deny(missing_docs)]

pub mod browse;
pub mod policy;
pub mod state;

pub mod attribute;
pub mod bitmap;
pub mod boot_sector;
pub mod catalog;
pub mod check;
pub mod compression;
pub mod data_run;
pub mod error;
pub mod extent_map;
pub mod file;
pub mod index;
pub mod layout;
pub mod metafile;
pub mod name_rules;
pub mod quota;
pub mod record;
pub mod secure;
pub mod upcase;
pub mod volume;
pub mod vss;

pub use boot_sector::BootSector;
pub use error::{Error, Offset, Result};
pub use file::{DirEntry, FileInfo};
pub use policy::{OpenWritableError, Writable, WritePolicy};
pub use secure::{DescriptorRef, Skipped};
pub use volume::Volume;
