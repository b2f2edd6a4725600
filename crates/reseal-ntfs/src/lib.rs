//! NTFS for reseal: read-only browsing (through the `ntfs` crate), volume-state checks, and the
//! NTFS write engine (records, data, names, security) that writes through the disk journal.
#![deny(missing_docs)]

pub mod browse;
pub mod state;
