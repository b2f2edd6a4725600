//! Definitions layer: on-disk structures of the regf format as `zerocopy` views.
//!
//! Each structure is a `#[repr(C)]` struct of little-endian fields named after the
//! specification (FORMATS.md part B), read with `ref_from_prefix` / `read_from_prefix`, so
//! short input is an `Err`, never a panic. Read and write paths build on these views.

pub mod base_block;
pub mod db;
pub mod sk;
pub mod vk;
