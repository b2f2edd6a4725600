//! NTFS for reseal: read-only browsing (through the `ntfs` crate), volume-state checks, and the
//! NTFS write engine (records, data, names, security) that writes through the disk journal.
//!
//! # Getting started with the write engine
//! 1. Wrap a partition [`reseal_disk::Device`] in [`Volume::open`].
//! 2. Call [`Volume::read_file`], [`Volume::write_at`], [`Volume::set_len`],
//!    [`Volume::create_file`], [`Volume::remove`], [`Volume::rename`],
//!    [`Volume::security_descriptor`], [`Volume::set_security`],
//!    [`Volume::rewrite_descriptors`]...
//! 3. Each call is all-or-nothing at the device level (see [`volume`]).
#![deny(missing_docs)]

pub mod browse;
pub mod state;

pub mod attribute;
pub mod bitmap;
pub mod boot_sector;
pub mod compression;
pub mod data_run;
pub mod error;
pub mod file;
pub mod index;
pub mod quota;
pub mod record;
pub mod secure;
pub mod upcase;
pub mod volume;

pub use boot_sector::BootSector;
pub use error::{Error, Result};
pub use file::{DirEntry, FileInfo};
pub use volume::Volume;
