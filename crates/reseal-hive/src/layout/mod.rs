//! Definitions layer: on-disk structures of the regf format as `zerocopy` views.
//!
//! Each structure is a `#[repr(C)]` struct of little-endian fields named after the
//! specification (FORMATS.md part B), read with `ref_from_prefix` / `read_from_prefix`, so
//! short input is an `Err`, never a panic. Read and write paths build on these views.
//!
//! A primary file is a [`base_block`] followed by hive bins ([`hbin`]); every bin holds cells,
//! each a [`cell`] size header followed by one structure: a key node ([`nk`]), a value
//! ([`vk`]), a security cell ([`sk`]), a subkey list ([`lists`]), big data ([`db`]) or raw data.
//! Transaction logs ([`log`]) carry a base block and dirty pages.

pub mod base_block;
pub mod cell;
pub mod db;
pub mod hbin;
pub mod lists;
pub mod log;
pub mod nk;
pub mod sk;
pub mod vk;
