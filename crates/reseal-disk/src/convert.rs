//! Converting a virtual disk into a new image file of another container format.
//!
//! Sparse-aware: the source is read in 1 MiB chunks; chunks the source knows to be unallocated
//! ([`Device::known_zero`]) are not read, and all-zero 64 KiB pieces of a chunk (one qcow2
//! cluster) are not written (so they stay unallocated in a sparse output, and are holes in a raw
//! or fixed output). The output is written
//! directly (a brand-new file needs no journal) under a temporary name next to `out` (fsynced if
//! [`ConvertOptions::sync`]) and
//! renamed into place at the end, so a failed conversion leaves nothing behind.

use std::path::{Path, PathBuf};

use crate::qcow2::Qcow2;
use crate::raw::{HostFile, RawDisk};
use crate::vhd::Vhd;
use crate::vhdx::Vhdx;
use crate::{Device, Error, Result};

/// Output container format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetFormat {
    /// Raw (sparse file).
    Raw,
    /// Dynamic VHD, 2 MiB blocks.
    VhdDynamic,
    /// Fixed VHD.
    VhdFixed,
    /// Dynamic VHDX, 2 MiB blocks (fine-grained sparseness, like VHD).
    Vhdx,
    /// Fixed VHDX (every block allocated; zero ranges stay holes in the host file).
    VhdxFixed,
    /// qcow2 version 3, 64 KiB clusters (qemu-img's default), no backing file.
    Qcow2,
}

impl TargetFormat {
    /// The format's name as qemu-img's `-O` spells it and, for fixed VHD/VHDX, the
    /// `subformat` option qemu-img takes for it: `("vpc", Some("fixed"))`.
    pub fn qemu_name(self) -> (&'static str, Option<&'static str>) {
        match self {
            TargetFormat::Raw => ("raw", None),
            TargetFormat::VhdDynamic => ("vpc", None),
            TargetFormat::VhdFixed => ("vpc", Some("fixed")),
            TargetFormat::Vhdx => ("vhdx", None),
            TargetFormat::VhdxFixed => ("vhdx", Some("fixed")),
            TargetFormat::Qcow2 => ("qcow2", None),
        }
    }
}

/// What a conversion did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvertReport {
    /// The output file.
    pub output: PathBuf,
    /// Virtual size of the disk.
    pub virtual_size: u64,
    /// Bytes of data written (non-zero chunks).
    pub bytes_written: u64,
    /// Bytes skipped because the source knew them unallocated (not even read).
    pub bytes_skipped_unallocated: u64,
    /// Bytes read but found zero (not written).
    pub bytes_skipped_zero: u64,
}

const CHUNK: usize = 1 << 20;
const VHD_BLOCK: u32 = 2 << 20;
const VHDX_BLOCK: u32 = 2 << 20;
/// qemu-img's default qcow2 cluster size; also the granularity at which zero data is skipped.
const QCOW2_CLUSTER: u32 = 64 << 10;
const GRAIN: usize = QCOW2_CLUSTER as usize;

fn is_zero(buf: &[u8]) -> bool {
    let mut it = buf.chunks_exact(16);
    let all = it
        .by_ref()
        .all(|c| u128::from_ne_bytes(c.try_into().expect("16 bytes")) == 0);
    all && it.remainder().iter().all(|&b| b == 0)
}

/// Options of [`convert_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConvertOptions {
    /// fsync the output before renaming it into place (durable across a power loss). Off by
    /// default, like `qemu-img convert` (whose default output cache mode does not flush).
    pub sync: bool,
    /// Size rule of a VHD output (default: rounded up to its geometry, as qemu-img; the
    /// output is then larger than the source by the zero tail).
    pub vhd_size: crate::vhd::VhdSize,
}

/// Convert the virtual disk `src` into a new image at `out` (default options: no fsync);
/// `progress(done, total)` is called after every chunk.
///
/// # Errors
/// Read errors of the source, I/O errors of the output (the temporary file is removed).
pub fn convert(
    src: &dyn Device,
    out: &Path,
    format: TargetFormat,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ConvertReport> {
    convert_with(src, out, format, ConvertOptions::default(), progress)
}

/// [`convert`] with options.
///
/// # Errors
/// As [`convert`].
pub fn convert_with(
    src: &dyn Device,
    out: &Path,
    format: TargetFormat,
    options: ConvertOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ConvertReport> {
    let mut tmp = out.as_os_str().to_owned();
    tmp.push(".reseal-tmp");
    let tmp = PathBuf::from(tmp);
    let r = convert_into(src, &tmp, format, options, progress);
    match r {
        Ok(mut rep) => {
            std::fs::rename(&tmp, out).map_err(|e| Error::io(out, e))?;
            if options.sync {
                let dir = out
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| Error::io(dir, e))?;
            }
            rep.output = out.to_path_buf();
            Ok(rep)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(e)
        }
    }
}

fn convert_into(
    src: &dyn Device,
    tmp: &Path,
    format: TargetFormat,
    options: ConvertOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ConvertReport> {
    let size = src.len();
    let mut dst: Box<dyn Device> = match format {
        TargetFormat::Raw => {
            crate::raw::create(tmp, size)?;
            Box::new(RawDisk::new(HostFile::open(tmp, true)?))
        }
        TargetFormat::VhdDynamic => {
            crate::vhd::create_dynamic_sized(tmp, size, VHD_BLOCK, options.vhd_size)?;
            Box::new(Vhd::open(HostFile::open(tmp, true)?, false)?)
        }
        TargetFormat::VhdFixed => {
            crate::vhd::create_fixed_sized(tmp, size, options.vhd_size)?;
            Box::new(Vhd::open(HostFile::open(tmp, true)?, false)?)
        }
        TargetFormat::Vhdx => {
            crate::vhdx::create_dynamic(tmp, size, VHDX_BLOCK)?;
            Box::new(Vhdx::open(HostFile::open(tmp, true)?)?)
        }
        TargetFormat::VhdxFixed => {
            crate::vhdx::create_fixed(tmp, size)?;
            Box::new(Vhdx::open(HostFile::open(tmp, true)?)?)
        }
        TargetFormat::Qcow2 => {
            crate::qcow2::create(tmp, size, QCOW2_CLUSTER)?;
            Box::new(Qcow2::open(HostFile::open(tmp, true)?, tmp)?)
        }
    };
    let mut rep = ConvertReport {
        output: tmp.to_path_buf(),
        virtual_size: dst.len(),
        bytes_written: 0,
        bytes_skipped_unallocated: 0,
        bytes_skipped_zero: 0,
    };
    let mut buf = vec![0u8; CHUNK];
    let mut pos = 0u64;
    while pos < size {
        let n = (size - pos).min(CHUNK as u64) as usize;
        if src.known_zero(pos, n as u64) {
            rep.bytes_skipped_unallocated += n as u64;
        } else {
            let b = &mut buf[..n];
            src.read_at(pos, b)?;
            // Write the runs of non-zero pieces; zero pieces stay unallocated (or holes).
            let mut k = 0usize;
            while k < n {
                let piece = |k: usize| &b[k..(k + GRAIN).min(n)];
                if is_zero(piece(k)) {
                    rep.bytes_skipped_zero += piece(k).len() as u64;
                    k += GRAIN;
                    continue;
                }
                let from = k;
                while k < n && !is_zero(piece(k)) {
                    k = (k + GRAIN).min(n);
                }
                dst.write_at(pos + from as u64, &b[from..k])?;
                rep.bytes_written += (k - from) as u64;
            }
        }
        pos += n as u64;
        progress(pos, size);
    }
    if options.sync {
        dst.flush()?;
    }
    Ok(rep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection() {
        let mut b = vec![0u8; 1000];
        assert!(is_zero(&b));
        b[999] = 1;
        assert!(!is_zero(&b));
        b[999] = 0;
        b[3] = 1;
        assert!(!is_zero(&b));
    }
}
