//! `reseal-hive`: read, recover, edit and write Windows registry hive files (regf).
//!
//! The hive lives in memory as one `Vec<u8>`; reading is zero-copy and bounds-checked
//! (a hostile hive yields a [`HiveError`] naming the structure and cell offset, never a
//! panic or an endless loop). Editing needs an explicit writable mode and records the
//! byte ranges it touched so an image layer can write only those.
//!
//! # Getting started
//! 1. [`Hive::from_bytes`] (or [`Hive::recover`] for a dirty hive with its logs).
//! 2. Read: [`Hive::root`], [`Hive::open_path`], [`Key::subkeys`], [`Key::values`],
//!    [`Hive::walk`]; export with [`reg::export`].
//! 3. Edit: [`Hive::make_writable`], then [`Hive::create_key`], [`Hive::set_value`],
//!    [`Hive::rename_key`], [`Hive::set_security`], [`reg::import`] ...
//! 4. Optionally [`Hive::scrub`] (zero free cells and slack), [`Hive::commit`], then write [`Hive::as_bytes`] (or only [`Hive::dirty_ranges`]).
//!
//! ```no_run
//! # fn main() -> Result<(), reseal_hive::HiveError> {
//! let bytes = std::fs::read("SYSTEM").expect("read");
//! let mut hive = reseal_hive::Hive::from_bytes(bytes)?;
//! let name = hive.open_path("ControlSet001\\Control\\ComputerName\\ComputerName")?
//!     .value("ComputerName")?.map(|v| v.as_string()).transpose()?;
//! hive.make_writable()?;
//! let k = hive.create_path("Software\\Example")?;
//! hive.set_value(k, "Answer", reseal_hive::REG_DWORD, &42u32.to_le_bytes())?;
//! hive.commit()?;
//! # let _ = name; Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod base_block;
pub mod cell_map;
pub mod check;
pub mod edit;
mod error;
mod hive;
pub mod key_node;
pub mod key_security;
pub mod key_value;
pub mod layout;
pub mod log;
pub mod name;
pub mod reg;
pub mod scrub;

pub use base_block::BaseBlock;
pub use cell_map::{CellMap, Owner, Region};
pub use check::{check, check_file, BaseBlockCheck, Problem, Severity};
pub use error::{HiveError, Result};
pub use hive::{limits, CellOffset, Hive, KeyOffset, WRITE_GAP};
pub use key_node::{Key, SubkeyIter, ValueIter, Visitor};
pub use key_security::{validate_descriptor, Sk};
pub use key_value::{
    Value, REG_BINARY, REG_DWORD, REG_DWORD_BIG_ENDIAN, REG_EXPAND_SZ, REG_LINK, REG_MULTI_SZ,
    REG_NONE, REG_QWORD, REG_RESOURCE_LIST, REG_SZ,
};
pub use log::{marvin32, RecoveryReport};
pub use scrub::ScrubReport;
