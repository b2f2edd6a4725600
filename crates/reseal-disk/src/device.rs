//! The one I/O abstraction every layer of reseal stands on.
//!
//! A [`Device`] is a linear, byte-addressed store with positioned reads and writes: a raw file, a
//! virtual disk inside a VHD/VHDX container, a partition of either, or a [`crate::Journal`] staged
//! over any of them. Reads take `&self` so many views can share one device; writes take `&mut self`,
//! so mutation always needs an explicitly writable handle.

use crate::Result;

/// A positioned, bounded block of bytes.
///
/// Implementations must:
/// - return [`crate::Error::OutOfBounds`] for a read or write that extends past [`Device::len`]
///   (except where a type documents that writes may grow it, such as a host file under a journal);
/// - never panic on any offset or length (overflow included);
/// - make a successful `write_at` visible to every later `read_at` on the same value.
pub trait Device: Send {
    /// Length of the device in bytes.
    fn len(&self) -> u64;

    /// True if the device holds no bytes.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Logical sector size in bytes (512 or 4096). Partition tables and file systems use it.
    fn sector_size(&self) -> u32 {
        512
    }

    /// Fill `buf` with the bytes at `offset..offset + buf.len()`.
    ///
    /// # Errors
    /// [`crate::Error::OutOfBounds`] past the end; I/O or format errors of the backing store.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()>;

    /// Write `buf` at `offset`.
    ///
    /// # Errors
    /// [`crate::Error::ReadOnly`] on a read-only device, [`crate::Error::OutOfBounds`] past the
    /// end, I/O or format errors of the backing store.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()>;

    /// Make every completed write durable.
    ///
    /// # Errors
    /// I/O errors of the backing store.
    fn flush(&mut self) -> Result<()>;

    /// Change the length of a growable device (a host file, a journal over one).
    ///
    /// The default refuses: fixed-size devices (virtual disks, partitions) cannot be resized.
    ///
    /// # Errors
    /// [`crate::Error::Unsupported`] for fixed-size devices; I/O errors.
    fn set_len(&mut self, len: u64) -> Result<()> {
        Err(crate::Error::unsupported(
            "device",
            len,
            "this device cannot be resized",
        ))
    }

    /// Make sure that writing `ranges` cannot fail for lack of space, without changing a byte
    /// of the device (allocate the holes and the growth of a sparse host file). Called by the
    /// journal before it applies a commit, so a full disk is an error while the image is still
    /// untouched. The default does nothing (nothing to allocate, or no way to).
    ///
    /// # Errors
    /// I/O errors, `ENOSPC` among them.
    fn reserve(&mut self, ranges: &[std::ops::Range<u64>]) -> Result<()> {
        let _ = ranges;
        Ok(())
    }

    /// Open a savepoint if this device can take writes back: every later write is then undone
    /// by [`Device::rollback_savepoint`] or kept by [`Device::release_savepoint`]; savepoints
    /// nest. Returns `false` (and opens nothing) when the device cannot, as the default does.
    /// A [`crate::Journal`] can; so can views that only shift offsets over one (a partition,
    /// a raw image), and containers over one (VHD, VHDX, qcow2), which keep a copy of the block
    /// tables they hold in memory per savepoint and put it back on rollback. The NTFS writer
    /// uses it to stream a large file's data to the device while an operation can still fail.
    fn savepoint(&mut self) -> bool {
        false
    }

    /// Undo every write since the innermost open savepoint and close it.
    ///
    /// # Errors
    /// [`crate::Error::Unsupported`] when no savepoint is open (or the device has none).
    fn rollback_savepoint(&mut self) -> Result<()> {
        Err(crate::Error::unsupported(
            "device",
            0,
            "this device has no savepoints",
        ))
    }

    /// Keep the writes since the innermost open savepoint and close it.
    ///
    /// # Errors
    /// [`crate::Error::Unsupported`] when no savepoint is open (or the device has none).
    fn release_savepoint(&mut self) -> Result<()> {
        Err(crate::Error::unsupported(
            "device",
            0,
            "this device has no savepoints",
        ))
    }

    /// True if the range `offset..offset+len` is known to read as zeros without reading it
    /// (an unallocated block of a sparse container). `false` means "unknown", not "non-zero".
    /// Used by conversion to skip reading holes.
    fn known_zero(&self, offset: u64, len: u64) -> bool {
        let _ = (offset, len);
        false
    }
}

/// `Device` for a pointer to a device (`Box<D>`, `&mut D`): every method forwards to the
/// device pointed to, so the two impls cannot drift apart.
macro_rules! forward_device {
    ($ty:ty) => {
        impl<D: Device + ?Sized> Device for $ty {
            fn len(&self) -> u64 {
                (**self).len()
            }
            fn sector_size(&self) -> u32 {
                (**self).sector_size()
            }
            fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
                (**self).read_at(offset, buf)
            }
            fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
                (**self).write_at(offset, buf)
            }
            fn flush(&mut self) -> Result<()> {
                (**self).flush()
            }
            fn set_len(&mut self, len: u64) -> Result<()> {
                (**self).set_len(len)
            }
            fn savepoint(&mut self) -> bool {
                (**self).savepoint()
            }
            fn rollback_savepoint(&mut self) -> Result<()> {
                (**self).rollback_savepoint()
            }
            fn release_savepoint(&mut self) -> Result<()> {
                (**self).release_savepoint()
            }
            fn known_zero(&self, offset: u64, len: u64) -> bool {
                (**self).known_zero(offset, len)
            }
        }
    };
}

forward_device!(Box<D>);
forward_device!(&mut D);

/// Check that `offset..offset+len` lies inside `0..size`, without overflow.
///
/// # Errors
/// [`crate::Error::OutOfBounds`] naming the request and the device size.
pub fn check_bounds(offset: u64, len: usize, size: u64) -> Result<()> {
    let end = offset.checked_add(len as u64);
    match end {
        Some(end) if end <= size => Ok(()),
        _ => Err(crate::Error::OutOfBounds {
            offset,
            len: len as u64,
            size,
        }),
    }
}

/// An in-memory device, for tests and for staging small images.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemDevice {
    data: Vec<u8>,
    sector_size: u32,
}

impl MemDevice {
    /// A device holding `data`, with 512-byte sectors.
    pub fn new(data: Vec<u8>) -> Self {
        Self {
            data,
            sector_size: 512,
        }
    }
    /// A device of `len` zero bytes.
    pub fn zeroed(len: usize) -> Self {
        Self::new(vec![0; len])
    }
    /// Set the logical sector size reported by [`Device::sector_size`].
    pub fn with_sector_size(mut self, sector_size: u32) -> Self {
        self.sector_size = sector_size;
        self
    }
    /// The bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.data
    }
    /// The bytes, by value.
    pub fn into_inner(self) -> Vec<u8> {
        self.data
    }
}

impl Device for MemDevice {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn sector_size(&self) -> u32 {
        self.sector_size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.len())?;
        let start = offset as usize;
        buf.copy_from_slice(&self.data[start..start + buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.len())?;
        let start = offset as usize;
        self.data[start..start + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn set_len(&mut self, len: u64) -> Result<()> {
        let len = usize::try_from(len)
            .map_err(|_| crate::Error::unsupported("memory device", len, "too large"))?;
        self.data.resize(len, 0);
        Ok(())
    }
}

/// The savepoints of a container over a host device: the host device (a journal) takes the
/// container's writes back, and this keeps, per open savepoint, the metadata the container holds
/// in memory (`S`: its block tables), to be put back with them.
#[derive(Debug)]
pub(crate) struct SavedStates<S>(Vec<S>);

impl<S> Default for SavedStates<S> {
    fn default() -> Self {
        SavedStates(Vec::new())
    }
}

impl<S> SavedStates<S> {
    /// Open a savepoint of `inner`, keeping `state()`; false (nothing kept) when it has none.
    pub(crate) fn open(&mut self, inner: &mut dyn Device, state: impl FnOnce() -> S) -> bool {
        if !inner.savepoint() {
            return false;
        }
        self.0.push(state());
        true
    }

    /// Roll `inner` back to the innermost savepoint and return the state kept there.
    ///
    /// # Errors
    /// [`crate::Error::Unsupported`] naming `what` when no savepoint is open; `inner`'s errors.
    pub(crate) fn rollback(&mut self, inner: &mut dyn Device, what: &str) -> Result<S> {
        let st = self
            .0
            .pop()
            .ok_or_else(|| crate::Error::unsupported(what, 0, "rollback without a savepoint"))?;
        inner.rollback_savepoint()?;
        Ok(st)
    }

    /// Keep the writes since the innermost savepoint of `inner`, and drop its state.
    ///
    /// # Errors
    /// [`crate::Error::Unsupported`] naming `what` when no savepoint is open; `inner`'s errors.
    pub(crate) fn release(&mut self, inner: &mut dyn Device, what: &str) -> Result<()> {
        if self.0.pop().is_none() {
            return Err(crate::Error::unsupported(
                what,
                0,
                "release without a savepoint",
            ));
        }
        inner.release_savepoint()
    }
}
