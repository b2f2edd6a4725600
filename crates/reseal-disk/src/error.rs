//! Errors of the disk layer. Every format error names the structure and the byte offset.

use std::path::PathBuf;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong below the file system.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system I/O error, with the file it concerned when known.
    #[error("I/O error{}: {source}", path.as_ref().map(|p| format!(" on {}", p.display())).unwrap_or_default())]
    Io {
        /// The file, if known.
        path: Option<PathBuf>,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A request outside the device.
    #[error("access of {len} bytes at offset {offset:#x} is past the end of a {size}-byte device")]
    OutOfBounds {
        /// Requested offset.
        offset: u64,
        /// Requested length.
        len: u64,
        /// Device size.
        size: u64,
    },
    /// A write to a device opened read-only.
    #[error("the device is read-only")]
    ReadOnly,
    /// A structure did not parse.
    #[error("{structure} at offset {offset:#x}: {reason}")]
    Corrupt {
        /// The structure, e.g. "VHD footer", "GPT header", "VHDX BAT entry 12".
        structure: String,
        /// Byte offset of the structure (in the file or device it was read from).
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// A valid structure that reseal does not handle.
    #[error("{structure} at offset {offset:#x}: unsupported: {reason}")]
    Unsupported {
        /// The structure.
        structure: String,
        /// Byte offset.
        offset: u64,
        /// What is not supported.
        reason: String,
    },
    /// The parent of a differencing disk could not be found.
    #[error("parent of {} not found (it names: {parent}; tried: {})", image.display(), tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "))]
    MissingParent {
        /// The child image.
        image: PathBuf,
        /// What the child says its parent is (locators, name).
        parent: String,
        /// Paths tried.
        tried: Vec<PathBuf>,
    },
    /// Another process holds a lock that conflicts with this open (see [`crate::lock`]).
    #[error("{} is in use: {reason}{}; gave up after {} s (--lock-timeout SECONDS waits longer)", path.display(), crate::lock::describe_holders(holders), waited.as_secs_f64())]
    Locked {
        /// The image file.
        path: PathBuf,
        /// Which permission conflicted.
        reason: String,
        /// Processes that have the file open ("qemu-io (pid 123)"), best effort.
        holders: Vec<String>,
        /// How long we waited.
        waited: std::time::Duration,
    },
    /// A writable open of a file without any write permission bit (a protected golden image).
    #[error("{} is write-protected (mode {mode:o}): refusing to write it (--force writes it anyway; for generalize: --force-write-protected)", path.display())]
    WriteProtected {
        /// The image file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// [`crate::Image::commit`] of an image opened for a dry run.
    #[error("a dry run cannot be committed")]
    DryRun,
    /// The file holds a disk-image format reseal does not read (VMDK, VDI, QED, …).
    #[error("{} is a {format} image, which reseal does not read; convert it first: {command}", path.display())]
    ForeignFormat {
        /// The image file.
        path: PathBuf,
        /// The format found ("VMDK (sparse)", "VDI", "QED", …).
        format: String,
        /// The qemu-img command that converts it to qcow2.
        command: String,
    },
    /// No container magic, and the content does not look like a raw disk either.
    #[error("{} is not a disk image reseal recognises: no qcow2, VHD or VHDX structure, and its first sector is neither blank nor ends in the 0x55AA boot signature of a partition table or boot sector; if it really is a raw disk, say so (-f raw)", path.display())]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// Journal / undo-file problems.
    #[error("journal {}: {reason}", path.display())]
    Journal {
        /// The undo file or journal directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

impl Error {
    /// Build a [`Error::Corrupt`].
    pub fn corrupt(structure: impl Into<String>, offset: u64, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            structure: structure.into(),
            offset,
            reason: reason.into(),
        }
    }
    /// Build an [`Error::Unsupported`].
    pub fn unsupported(
        structure: impl Into<String>,
        offset: u64,
        reason: impl Into<String>,
    ) -> Self {
        Error::Unsupported {
            structure: structure.into(),
            offset,
            reason: reason.into(),
        }
    }
    /// Wrap an I/O error with its file.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: Some(path.into()),
            source,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(source: std::io::Error) -> Self {
        Error::Io { path: None, source }
    }
}
