//! Disk layer of reseal: disk-image containers (raw, VHD, VHDX, qcow2) and differencing children
//! of them, partition tables (MBR, GPT), bounded partition devices, and the write journal through
//! which every change to an image goes.
//!
//! # Getting started
//! 1. Open an image with [`Image::open`] (format detected from content).
//! 2. Read its partition table with [`partition::PartitionTable::read`].
//! 3. Take a [`partition::Slice`] of a partition and hand it to a file system.
//! 4. Writes are staged in the image's [`Journal`] and applied atomically by [`Image::commit`].
//!
//! ```
//! use reseal_disk::partition::{PartitionTable, Slice};
//! use reseal_disk::probe::{probe, FsInfo};
//! use reseal_disk::{Access, Image, ImageFormat};
//!
//! // The committed fixture: a dynamic VHDX holding a GPT disk (ESP, MSR, NTFS "Windows").
//! let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/quickstart.vhdx");
//! let mut img = Image::open(path.as_ref(), Access::ReadOnly)?;
//! assert_eq!(img.format(), ImageFormat::VhdxDynamic);
//! let table = PartitionTable::read(&img)?;
//! let mut ntfs = Vec::new();
//! for p in table.volumes() {
//!     let part = Slice::new(&mut img, p.start, p.len)?;
//!     if let FsInfo::Ntfs(_) = probe(&part)? {
//!         ntfs.push(p.number);
//!     }
//! }
//! assert_eq!(ntfs.len(), 1, "one NTFS volume");
//! # Ok::<(), reseal_disk::Error>(())
//! ```
#![deny(missing_docs)]

mod device;
mod error;

pub use device::{check_bounds, Device, MemDevice};
pub use error::{Error, Result};

pub mod check;
// Containers and the journal (owned by the disk-containers work).
pub mod children;
pub mod convert;
pub mod image;
pub mod journal;
pub mod layout;
pub mod lock;
pub mod qcow2;
pub mod raw;
pub mod vhd;
pub mod vhdx;
// Partition tables and file-system probing (owned by the partitions work).
pub mod partition;
pub mod probe;

pub use image::{Access, ContainerKind, Image, ImageFormat, ImageInfo, OpenOptions};
pub use journal::Journal;
