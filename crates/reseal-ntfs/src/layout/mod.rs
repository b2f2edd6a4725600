//! Definitions layer: on-disk NTFS structures as typed, bounds-checked zerocopy views, one file
//! per structure (issue 11). Read and write paths (file.rs, index.rs, …) use these views instead
//! of hand-computed offsets.
//!
//! Present so far: [`file_name`] (the `$FILE_NAME` value). The boot sector's BPB lives in
//! `reseal_disk::probe::NtfsBoot` (one parser for probing and the engine).

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
