//! [`Slice`], the bounded window of a device a partition is handed to a file system as, and
//! [`DeviceIo`], `Read + Seek + Write` over any [`Device`].

use std::io::{Read, Seek, SeekFrom};

use super::Partition;
use crate::{check_bounds, Device, Error, Result};

/// A bounded window `start..start+len` of a device, itself a [`Device`]: how a partition is
/// handed to a file system. Sector size passes through.
#[derive(Debug)]
pub struct Slice<D: Device> {
    inner: D,
    start: u64,
    len: u64,
}

impl<D: Device> Slice<D> {
    /// A window of `len` bytes at `start` of `dev`.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] when the window does not lie inside `dev`.
    pub fn new(dev: D, start: u64, len: u64) -> Result<Self> {
        match start.checked_add(len) {
            Some(end) if end <= dev.len() => Ok(Slice {
                inner: dev,
                start,
                len,
            }),
            _ => Err(Error::OutOfBounds {
                offset: start,
                len,
                size: dev.len(),
            }),
        }
    }
    /// The window of partition `p`.
    ///
    /// # Errors
    /// As [`Slice::new`]: a partition that extends past the device (e.g. a truncated image).
    pub fn partition(dev: D, p: &Partition) -> Result<Self> {
        Self::new(dev, p.start, p.len)
    }
    /// Offset of the window in the inner device.
    pub fn start(&self) -> u64 {
        self.start
    }
    /// The inner device.
    pub fn inner(&self) -> &D {
        &self.inner
    }
    /// The inner device, mutably (writes through it are not bounded by the slice).
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }
    /// Give back the inner device.
    pub fn into_inner(self) -> D {
        self.inner
    }
}

impl<D: Device> Device for Slice<D> {
    fn len(&self) -> u64 {
        self.len
    }
    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.len)?;
        self.inner.read_at(self.start + offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.len)?;
        self.inner.write_at(self.start + offset, buf)
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
}

/// `Read + Seek` (and `Write`) over a [`Device`], with a position: the adapter crates such as
/// `ntfs`, `gpt` and `mbrman` need. Reads past the end return fewer bytes (EOF), not errors.
#[derive(Debug)]
pub struct DeviceIo<D: Device> {
    dev: D,
    pos: u64,
}

impl<D: Device> DeviceIo<D> {
    /// Wrap `dev`, positioned at 0.
    pub fn new(dev: D) -> Self {
        DeviceIo { dev, pos: 0 }
    }
    /// The device.
    pub fn get_ref(&self) -> &D {
        &self.dev
    }
    /// The device, mutably.
    pub fn get_mut(&mut self) -> &mut D {
        &mut self.dev
    }
    /// Give back the device.
    pub fn into_inner(self) -> D {
        self.dev
    }
}

fn to_io(e: Error) -> std::io::Error {
    match e {
        Error::Io { source, .. } => source,
        other => std::io::Error::other(other),
    }
}

impl<D: Device> Read for DeviceIo<D> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.dev.len().saturating_sub(self.pos);
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.dev.read_at(self.pos, &mut buf[..n]).map_err(to_io)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<D: Device> std::io::Write for DeviceIo<D> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.dev.write_at(self.pos, buf).map_err(to_io)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.dev.flush().map_err(to_io)
    }
}

impl<D: Device> Seek for DeviceIo<D> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.dev.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start or overflow",
            )),
        }
    }
}
