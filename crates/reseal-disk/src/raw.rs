//! Host files and the raw container.
//!
//! [`HostFile`] is a [`Device`] over a file of the host file system (positioned I/O, never reads
//! the whole file; writes past the end grow it, leaving a sparse hole). [`RawDisk`] presents any
//! device as a virtual disk of fixed size: the raw "container" is the file itself.
//!
//! A [`HostFile`] may be a block device (`/dev/loop0`, `/dev/nbd0`, a disk): its size is where a
//! seek to the end lands (what `BLKGETSIZE64` reports, without an ioctl of our own), its logical
//! sector size comes from `BLKSSZGET`; it cannot grow, and [`Device::reserve`] does nothing on it.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::{check_bounds, Device, Error, Result};

/// A file of the host file system, as a growable [`Device`].
#[derive(Debug)]
pub struct HostFile {
    file: File,
    path: PathBuf,
    len: u64,
    writable: bool,
    block_device: bool,
    sector_size: u32,
}

impl HostFile {
    /// Open an existing file, read-only or read-write.
    ///
    /// # Errors
    /// I/O errors, naming the file.
    pub fn open(path: &Path, writable: bool) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(writable)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let meta = file.metadata().map_err(|e| Error::io(path, e))?;
        let block_device = {
            use std::os::unix::fs::FileTypeExt;
            meta.file_type().is_block_device()
        };
        let (len, sector_size) = if block_device {
            let len = rustix::fs::seek(&file, rustix::fs::SeekFrom::End(0))
                .map_err(|e| Error::io(path, std::io::Error::from(e)))?;
            let ss = rustix::fs::ioctl_blksszget(&file)
                .map_err(|e| Error::io(path, std::io::Error::from(e)))?;
            if !(512..=65536).contains(&ss) || !ss.is_power_of_two() {
                return Err(Error::unsupported(
                    "block device",
                    0,
                    format!("{}: logical sector size {ss}", path.display()),
                ));
            }
            (len, ss)
        } else {
            (meta.len(), 512)
        };
        Ok(Self {
            file,
            path: path.to_path_buf(),
            len,
            writable,
            block_device,
            sector_size,
        })
    }

    /// Create (or truncate) a file, opened read-write, of length 0.
    ///
    /// # Errors
    /// I/O errors, naming the file.
    pub fn create(path: &Path) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(Self {
            file,
            path: path.to_path_buf(),
            len: 0,
            writable: true,
            block_device: false,
            sector_size: 512,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True if opened for writing.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// True if the file is a block device.
    pub fn is_block_device(&self) -> bool {
        self.block_device
    }
}

impl Device for HostFile {
    fn len(&self) -> u64 {
        self.len
    }

    /// 512 for regular files; the device's logical sector size for block devices.
    fn sector_size(&self) -> u32 {
        self.sector_size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.len)?;
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Writes past the end grow a regular file; a block device has a fixed size.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly);
        }
        if self.block_device {
            check_bounds(offset, buf.len(), self.len)?;
        }
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or(Error::OutOfBounds {
                offset,
                len: buf.len() as u64,
                size: self.len,
            })?;
        self.file
            .write_all_at(buf, offset)
            .map_err(|e| Error::io(&self.path, e))?;
        self.len = self.len.max(end);
        Ok(())
    }

    /// `fsync` (data and metadata).
    fn flush(&mut self) -> Result<()> {
        if self.writable {
            self.file.sync_all().map_err(|e| Error::io(&self.path, e))?;
        }
        Ok(())
    }

    /// Uses `SEEK_DATA`: a range with no data extent in the file (a hole) reads as zeros.
    fn known_zero(&self, offset: u64, len: u64) -> bool {
        if len == 0 {
            return true;
        }
        if offset.checked_add(len).is_none_or(|e| e > self.len) {
            return false;
        }
        match rustix::fs::seek(&self.file, rustix::fs::SeekFrom::Data(offset)) {
            Ok(pos) => pos >= offset + len,
            Err(rustix::io::Errno::NXIO) => true,
            Err(_) => false,
        }
    }

    /// `fallocate(KEEP_SIZE)` over each range: holes and the space past the end are allocated,
    /// the length and the bytes stay as they are. File systems and block devices that cannot
    /// (EOPNOTSUPP) are left to fail, if at all, while writing.
    fn reserve(&mut self, ranges: &[std::ops::Range<u64>]) -> Result<()> {
        use rustix::fs::{fallocate, FallocateFlags};
        if !self.writable {
            return Err(Error::ReadOnly);
        }
        if self.block_device {
            return Ok(()); // every byte of a block device exists already
        }
        for r in ranges.iter().filter(|r| r.end > r.start) {
            match fallocate(
                &self.file,
                FallocateFlags::KEEP_SIZE,
                r.start,
                r.end - r.start,
            ) {
                Ok(()) => {}
                Err(rustix::io::Errno::OPNOTSUPP) | Err(rustix::io::Errno::NOSYS) => return Ok(()),
                Err(e) => return Err(Error::io(&self.path, std::io::Error::from(e))),
            }
        }
        Ok(())
    }

    fn set_len(&mut self, len: u64) -> Result<()> {
        if !self.writable {
            return Err(Error::ReadOnly);
        }
        if self.block_device {
            if len == self.len {
                return Ok(());
            }
            return Err(Error::unsupported(
                "block device",
                len,
                format!("{} cannot be resized", self.path.display()),
            ));
        }
        self.file
            .set_len(len)
            .map_err(|e| Error::io(&self.path, e))?;
        self.len = len;
        Ok(())
    }
}

/// A raw disk image: the virtual disk is the backing device, byte for byte, with a fixed size.
#[derive(Debug)]
pub struct RawDisk<D: Device> {
    inner: D,
    size: u64,
}

impl<D: Device> RawDisk<D> {
    /// Present `inner` as a disk of its current length.
    pub fn new(inner: D) -> Self {
        let size = inner.len();
        Self { inner, size }
    }

    /// The backing device.
    pub fn inner(&self) -> &D {
        &self.inner
    }

    /// The backing device, mutably.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }

    /// Unwrap.
    pub fn into_inner(self) -> D {
        self.inner
    }
}

impl<D: Device> Device for RawDisk<D> {
    fn len(&self) -> u64 {
        self.size
    }
    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.size)?;
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.size)?;
        self.inner.write_at(offset, buf)
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    fn savepoint(&mut self) -> bool {
        self.inner.savepoint()
    }
    fn rollback_savepoint(&mut self) -> Result<()> {
        self.inner.rollback_savepoint()
    }
    fn release_savepoint(&mut self) -> Result<()> {
        self.inner.release_savepoint()
    }
    fn known_zero(&self, offset: u64, len: u64) -> bool {
        self.inner.known_zero(offset, len)
    }
}

/// Create a raw image of `size` bytes: a sparse file (no data written).
///
/// # Errors
/// I/O errors.
pub fn create(path: &Path, size: u64) -> Result<()> {
    let mut f = HostFile::create(path)?;
    f.set_len(size)?;
    drop(f); // not fsynced here: callers that need durability sync the file
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_file_grows_and_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.raw");
        create(&p, 1024).unwrap();
        let mut f = HostFile::open(&p, true).unwrap();
        assert_eq!(f.len(), 1024);
        f.write_at(2000, b"xyz").unwrap();
        assert_eq!(f.len(), 2003);
        let mut b = [1u8; 5];
        f.read_at(1998, &mut b).unwrap();
        assert_eq!(&b, b"\0\0xyz");
        assert!(f.read_at(2001, &mut b).is_err());
        let mut r = RawDisk::new(f);
        assert!(r.write_at(2003, b"a").is_err());
        assert!(r.read_at(u64::MAX, &mut b).is_err());
        let mut f = r.into_inner();
        f.set_len(16 << 20).unwrap();
        f.write_at(8 << 20, &[1]).unwrap();
        // Filesystems without SEEK_DATA report "unknown" (false), never a wrong "zero".
        assert!(!f.known_zero(8 << 20, 1));
        assert!(!f.known_zero(0, 16 << 20));
        let _ = f.known_zero(1 << 20, 1 << 20);
    }
}
