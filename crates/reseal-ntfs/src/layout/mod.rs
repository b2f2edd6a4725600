//! Definitions layer: on-disk NTFS structures as typed, bounds-checked zerocopy views, one file
//! per structure, each named after the structure and pointing at its FORMATS.md section (issue
//! 11). Read and write paths (record.rs, attribute.rs, index.rs, file.rs, secure.rs, ...) read
//! fields through these views and build new structures from them, so no structure field is read
//! or written by a hand-computed offset elsewhere in the crate (the LZNT1 tokens decoded in
//! `compression.rs` are a codec, not a structure): a view of bytes that are too short is `None`
//! or `Err`, which the callers turn into an [`crate::Error::Corrupt`] naming the structure and
//! where it is ([`crate::Offset`]).
//!
//! - MFT records: [`record`] (FILE header), [`multi_sector`] (signature and update sequence
//!   array position, shared with INDX blocks and `$LogFile` pages), [`attribute`] (attribute
//!   headers), [`attribute_list`] (`$ATTRIBUTE_LIST` entries).
//! - Attribute values: [`standard_information`], [`file_name`], [`volume_information`],
//!   [`reparse`].
//! - Indexes: [`index`] (`$INDEX_ROOT`, node header, INDX block, entry header), and the view
//!   index payloads [`secure`] (`$SDS`, `$SII`, `$SDH`) and [`quota`] (`$Q`, `$O`).
//! - Outside the MFT: [`log_file`] (`$LogFile` restart pages) and [`vss`] (the shadow-copy
//!   volume header).
//!
//! The boot sector's BPB lives in `reseal_disk::probe::NtfsBoot` (one parser for probing and
//! the engine). Views are zero-copy (`ref_from_prefix`) on the hot paths (record parsing,
//! attribute iteration, index walks).

pub mod attribute;
pub mod attribute_list;
pub mod file_name;
pub mod index;
pub mod log_file;
pub mod multi_sector;
pub mod quota;
pub mod record;
pub mod reparse;
pub mod secure;
pub mod standard_information;
pub mod volume_information;
pub mod vss;
