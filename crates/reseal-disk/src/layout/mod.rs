//! Definitions layer: on-disk structures of partition tables, disk-image containers and boot
//! sectors as `zerocopy` views.
//!
//! Each structure is a `#[repr(C)]` struct of fixed-endian fields (little-endian for MBR, GPT,
//! VHDX and boot sectors; big-endian for VHD and qcow2) named after its specification, read
//! with `ref_from_prefix` / `read_from_prefix`, so short input is an `Err` or `None`, never a
//! panic; writers fill the same structs and copy them out with `as_bytes` / `write_to_prefix`.

pub mod boot_sector;
pub mod gpt;
pub mod mbr;
pub mod qcow2;
pub mod vhd;
pub mod vhdx;
