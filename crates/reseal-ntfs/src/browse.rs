//! Read-only NTFS browsing through the `ntfs` crate (Colin Finck): list directories, stat files,
//! stream file contents and alternate data streams, walk the tree.
//!
//! Paths are case-insensitive with NTFS `$UpCase` semantics, use `/` or `\`, and may omit the
//! leading separator; the last component may name a stream as `file:stream` (or
//! `file:stream:$DATA`). Listing hides the NTFS metafiles (records 0..16: `$MFT`, `$LogFile`, ...,
//! and the root's `.` entry) and DOS-only 8.3 names, as `ntfsls -a` does; those files can still
//! be opened by name.

use std::io::{Seek, SeekFrom, Write};

use ntfs::indexes::NtfsFileNameIndex;
use ntfs::structured_values::{NtfsAttributeList, NtfsFileName, NtfsFileNamespace};
use ntfs::{Ntfs, NtfsAttributeFlags, NtfsAttributeType, NtfsError, NtfsFile, NtfsReadSeek};
use reseal_disk::partition::DeviceIo;
use reseal_disk::probe::NtfsBoot;
use reseal_disk::Device;

/// First MFT record that is not an NTFS metafile.
pub const FIRST_USER_RECORD: u64 = 16;
/// MFT record of `$Boot`.
pub const BOOT_RECORD: u64 = 7;
/// MFT record of the root directory.
pub const ROOT_RECORD: u64 = 5;

/// Errors of browsing: each names the path it concerns, and the byte offset where the `ntfs`
/// crate reports one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrowseError {
    /// No such file or directory.
    #[error("{path}: no such file or directory")]
    NotFound {
        /// The path as given.
        path: String,
    },
    /// A path component that must be a directory is a file.
    #[error("{path}: not a directory")]
    NotADirectory {
        /// The path up to the offending component.
        path: String,
    },
    /// File data was asked of a directory.
    #[error("{path}: is a directory")]
    IsADirectory {
        /// The path.
        path: String,
    },
    /// The file has no data stream of that name.
    #[error("{path}: no data stream named {stream:?}")]
    NoStream {
        /// The path.
        path: String,
        /// The stream name ("" for the unnamed stream).
        stream: String,
    },
    /// Data reseal cannot read (compressed or encrypted).
    #[error("{path}: unsupported: {reason}")]
    Unsupported {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// An NTFS structure did not parse.
    #[error("{path}: NTFS structure error{}: {source}", offset.map(|o| format!(" at byte {o:#x}")).unwrap_or_default())]
    Ntfs {
        /// The path (or "(volume)").
        path: String,
        /// Byte offset in the volume, when the `ntfs` crate reports one.
        offset: Option<u64>,
        /// The `ntfs` crate's error.
        #[source]
        source: NtfsError,
    },
    /// Writing the output failed.
    #[error("{path}: writing output: {source}")]
    Output {
        /// The path being read.
        path: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Errors of the device / disk layer.
    #[error(transparent)]
    Disk(#[from] reseal_disk::Error),
}

/// Result alias of this module.
pub type Result<T, E = BrowseError> = std::result::Result<T, E>;

/// Pull a `0x…` byte position out of an `ntfs` error's text (the crate's errors say "at byte
/// position 0x…" but do not expose one accessor for all variants).
fn ntfs_offset(e: &NtfsError) -> Option<u64> {
    let s = e.to_string();
    let i = s.find("position 0x")? + "position 0x".len();
    let hex: String = s[i..]
        .chars()
        .take_while(|c| c.is_ascii_hexdigit())
        .collect();
    u64::from_str_radix(&hex, 16).ok()
}

fn nerr(path: &str) -> impl FnOnce(NtfsError) -> BrowseError + '_ {
    move |source| BrowseError::Ntfs {
        path: path.to_string(),
        offset: ntfs_offset(&source),
        source,
    }
}

/// One directory entry / file's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// File name (Win32 or POSIX namespace; never the DOS 8.3 alias).
    pub name: String,
    /// True for directories.
    pub is_dir: bool,
    /// Length of the unnamed $DATA stream (0 for directories).
    pub size: u64,
    /// Bytes of disk space the unnamed $DATA stream occupies: its non-sparse clusters (0 when
    /// resident in the MFT record).
    pub allocated_size: u64,
    /// Creation time, FILETIME (100 ns since 1601), from $STANDARD_INFORMATION.
    pub created: u64,
    /// Last data modification time, FILETIME.
    pub modified: u64,
    /// Last MFT-record modification time, FILETIME.
    pub mft_modified: u64,
    /// Last access time, FILETIME.
    pub accessed: u64,
    /// File attribute flags (FILE_ATTRIBUTE_*), from $STANDARD_INFORMATION.
    pub attributes: u32,
    /// MFT record number.
    pub record: u64,
    /// Named data streams (alternate data streams): (name, length).
    pub streams: Vec<(String, u64)>,
}

/// An open NTFS volume on a device.
pub struct Volume<D: Device> {
    ntfs: Ntfs,
    io: DeviceIo<D>,
    boot: NtfsBoot,
}

impl<D: Device> std::fmt::Debug for Volume<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Volume")
            .field("boot", &self.boot)
            .finish_non_exhaustive()
    }
}

/// Split a path into components and an optional stream name on the last one.
fn split_path(path: &str) -> (Vec<&str>, Option<&str>) {
    let mut comps: Vec<&str> = path.split(['/', '\\']).filter(|c| !c.is_empty()).collect();
    let mut stream = None;
    if let Some(last) = comps.pop() {
        match last.split_once(':') {
            Some((file, s)) => {
                let s = s.strip_suffix(":$DATA").unwrap_or(s);
                stream = Some(s);
                if !file.is_empty() {
                    comps.push(file);
                }
            }
            None => comps.push(last),
        }
    }
    (comps, stream)
}

impl<D: Device> Volume<D> {
    /// Open the NTFS volume on `dev` (the boot sector is validated first, so geometry errors
    /// are located), and load its `$UpCase` table.
    ///
    /// # Errors
    /// [`BrowseError::Disk`] for a boot sector that is not NTFS or is invalid;
    /// [`BrowseError::Ntfs`] when the `ntfs` crate rejects the volume.
    pub fn open(dev: D) -> Result<Volume<D>> {
        let mut b = [0u8; 512];
        if dev.len() < 512 {
            return Err(reseal_disk::Error::corrupt(
                "NTFS boot sector",
                0,
                "device shorter than 512 bytes",
            )
            .into());
        }
        dev.read_at(0, &mut b)?;
        let boot = NtfsBoot::parse(&b, 0)?;
        let mut io = DeviceIo::new(dev);
        let mut ntfs = Ntfs::new(&mut io).map_err(nerr("(volume)"))?;
        ntfs.read_upcase_table(&mut io).map_err(nerr("$UpCase"))?;
        Ok(Volume { ntfs, io, boot })
    }

    /// The validated boot-sector geometry.
    pub fn boot(&self) -> &NtfsBoot {
        &self.boot
    }

    /// Volume label from `$Volume:$VOLUME_NAME` ("" when absent).
    ///
    /// # Errors
    /// [`BrowseError::Ntfs`] if `$Volume` is damaged.
    pub fn label(&mut self) -> Result<String> {
        match self.ntfs.volume_name(&mut self.io) {
            None => Ok(String::new()),
            Some(r) => Ok(r.map_err(nerr("$Volume"))?.name().to_string_lossy()),
        }
    }

    /// NTFS version (major, minor) from `$Volume:$VOLUME_INFORMATION`, e.g. (3, 1).
    ///
    /// # Errors
    /// [`BrowseError::Ntfs`] if `$Volume` is damaged.
    pub fn version(&mut self) -> Result<(u8, u8)> {
        let vi = self
            .ntfs
            .volume_info(&mut self.io)
            .map_err(nerr("$Volume"))?;
        Ok((vi.major_version(), vi.minor_version()))
    }

    /// `$VOLUME_INFORMATION` flags (0x0001 = dirty).
    ///
    /// # Errors
    /// [`BrowseError::Ntfs`] if `$Volume` is damaged.
    pub fn volume_flags(&mut self) -> Result<u16> {
        let vi = self
            .ntfs
            .volume_info(&mut self.io)
            .map_err(nerr("$Volume"))?;
        Ok(vi.flags().bits())
    }

    /// Volume serial number.
    pub fn serial(&self) -> u64 {
        self.ntfs.serial_number()
    }

    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u32 {
        self.ntfs.cluster_size()
    }

    /// The device.
    pub fn device(&self) -> &D {
        self.io.get_ref()
    }

    /// Give back the device.
    pub fn into_inner(self) -> D {
        self.io.into_inner()
    }

    /// MFT record number of `comps` (a directory path), checking each step is a directory.
    fn resolve(&mut self, comps: &[&str], path: &str) -> Result<u64> {
        let mut rec = ROOT_RECORD;
        for (i, comp) in comps.iter().enumerate() {
            let here = comps[..=i].join("/");
            let file = self.ntfs.file(&mut self.io, rec).map_err(nerr(path))?;
            if !file.is_directory() {
                return Err(BrowseError::NotADirectory {
                    path: comps[..i].join("/"),
                });
            }
            let index = file.directory_index(&mut self.io).map_err(nerr(path))?;
            let mut finder = index.finder();
            let found = NtfsFileNameIndex::find(&mut finder, &self.ntfs, &mut self.io, comp);
            match found {
                None => {
                    return Err(BrowseError::NotFound {
                        path: format!("/{here}"),
                    })
                }
                Some(r) => rec = r.map_err(nerr(path))?.file_reference().file_record_number(),
            }
        }
        Ok(rec)
    }

    fn entry_for(&mut self, rec: u64, name: String, path: &str) -> Result<Entry> {
        let file = self.ntfs.file(&mut self.io, rec).map_err(nerr(path))?;
        entry_of(&file, &mut self.io, rec, name, path)
    }

    /// Facts about the file or directory at `path` ("" or "/" is the root).
    ///
    /// # Errors
    /// [`BrowseError::NotFound`], [`BrowseError::NotADirectory`], [`BrowseError::Ntfs`].
    pub fn stat(&mut self, path: &str) -> Result<Entry> {
        let (comps, _) = split_path(path);
        let rec = self.resolve(&comps, path)?;
        let name = comps.last().map(|s| s.to_string()).unwrap_or_default();
        let mut e = self.entry_for(rec, name, path)?;
        // Use the name as stored (its case), from the file's own $FILE_NAME.
        if rec != ROOT_RECORD {
            let file = self.ntfs.file(&mut self.io, rec).map_err(nerr(path))?;
            if let Some(Ok(n)) = file.name(&mut self.io, Some(NtfsFileNamespace::Win32), None) {
                e.name = n.name().to_string_lossy();
            } else if let Some(Ok(n)) =
                file.name(&mut self.io, Some(NtfsFileNamespace::Posix), None)
            {
                e.name = n.name().to_string_lossy();
            } else if let Some(Ok(n)) =
                file.name(&mut self.io, Some(NtfsFileNamespace::Win32AndDos), None)
            {
                e.name = n.name().to_string_lossy();
            }
        }
        Ok(e)
    }

    /// True if `path` names an existing file or directory (and, with `:stream`, that stream).
    ///
    /// # Errors
    /// Only structure errors; "not found" is `Ok(false)`.
    pub fn exists(&mut self, path: &str) -> Result<bool> {
        let (comps, stream) = split_path(path);
        match self.resolve(&comps, path) {
            Ok(rec) => match stream {
                None => Ok(true),
                Some(s) => {
                    let file = self.ntfs.file(&mut self.io, rec).map_err(nerr(path))?;
                    let r = file.data(&mut self.io, s).transpose().map_err(nerr(path))?;
                    Ok(r.is_some())
                }
            },
            Err(BrowseError::NotFound { .. } | BrowseError::NotADirectory { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Entries of the directory at `path`, in index (upcase) order, without metafiles, `.` and
    /// DOS-only names.
    ///
    /// # Errors
    /// [`BrowseError::NotFound`], [`BrowseError::NotADirectory`], [`BrowseError::Ntfs`].
    pub fn list(&mut self, path: &str) -> Result<Vec<Entry>> {
        self.list_filtered(path, false)
    }

    /// Like [`Volume::list`] but including the NTFS metafiles (`$MFT`, `$LogFile`, ...), as
    /// `ntfsls -s` shows them.
    ///
    /// # Errors
    /// As [`Volume::list`].
    pub fn list_all(&mut self, path: &str) -> Result<Vec<Entry>> {
        self.list_filtered(path, true)
    }

    fn list_filtered(&mut self, path: &str, system: bool) -> Result<Vec<Entry>> {
        let (mut comps, stream) = split_path(path);
        if let Some(s) = stream {
            // "dir:" is not meaningful; treat a stream suffix as part of the name lookup failing.
            comps.push(s);
        }
        let rec = self.resolve(&comps, path)?;
        let names: Vec<(u64, String)> = {
            let file = self.ntfs.file(&mut self.io, rec).map_err(nerr(path))?;
            if !file.is_directory() {
                return Err(BrowseError::NotADirectory {
                    path: path.to_string(),
                });
            }
            let index = file.directory_index(&mut self.io).map_err(nerr(path))?;
            let mut it = index.entries();
            let mut names = Vec::new();
            while let Some(entry) = it.next(&mut self.io) {
                let entry = entry.map_err(nerr(path))?;
                let Some(key) = entry.key() else { continue };
                let key: NtfsFileName = key.map_err(nerr(path))?;
                if key.namespace() == NtfsFileNamespace::Dos {
                    continue;
                }
                let r = entry.file_reference().file_record_number();
                if r < FIRST_USER_RECORD && !(system && r != ROOT_RECORD) {
                    continue;
                }
                names.push((r, key.name().to_string_lossy()));
            }
            names
        };
        let mut out = Vec::with_capacity(names.len());
        for (r, name) in names {
            let p = format!("{}/{}", path.trim_end_matches(['/', '\\']), name);
            out.push(self.entry_for(r, name, &p)?);
        }
        Ok(out)
    }

    /// Every file and directory below the root, depth first, as ("/dir/name", entry); metafiles
    /// and DOS names are skipped as in [`Volume::list`]. Directories are followed once (hard
    /// links or index loops cannot make it cycle).
    ///
    /// # Errors
    /// The first error met.
    pub fn walk(&mut self) -> Result<Vec<(String, Entry)>> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        let mut stack = vec![String::new()];
        seen.insert(ROOT_RECORD);
        while let Some(dir) = stack.pop() {
            let entries = self.list(if dir.is_empty() { "/" } else { &dir })?;
            for e in entries.into_iter().rev() {
                let p = format!("{dir}/{}", e.name);
                if e.is_dir && seen.insert(e.record) {
                    stack.push(p.clone());
                }
                out.push((p, e));
            }
        }
        Ok(out)
    }

    /// Stream the data of `path` (`file` or `file:stream`) into `out`; returns the byte count.
    /// Reads in 64 KiB pieces; sparse ranges read as zeros.
    ///
    /// # Errors
    /// [`BrowseError::IsADirectory`], [`BrowseError::NoStream`], [`BrowseError::Unsupported`]
    /// for compressed or encrypted data, [`BrowseError::Output`] if `out` fails, and lookup errors.
    pub fn read(&mut self, path: &str, out: &mut dyn Write) -> Result<u64> {
        self.read_range(path, 0, u64::MAX, out)
    }

    /// Stream up to `len` bytes from `offset` of `path`'s data (clamped to the stream's end).
    ///
    /// # Errors
    /// As [`Volume::read`].
    pub fn read_range(
        &mut self,
        path: &str,
        offset: u64,
        len: u64,
        out: &mut dyn Write,
    ) -> Result<u64> {
        let (comps, stream) = split_path(path);
        let stream = stream.unwrap_or("");
        let rec = self.resolve(&comps, path)?;
        let file = self.ntfs.file(&mut self.io, rec).map_err(nerr(path))?;
        if file.is_directory() && stream.is_empty() {
            return Err(BrowseError::IsADirectory {
                path: path.to_string(),
            });
        }
        if let Some(item) = file.data(&mut self.io, stream) {
            let item = item.map_err(nerr(path))?;
            let attr = item.to_attribute().map_err(nerr(path))?;
            if rec == BOOT_RECORD && stream.is_empty() {
                // $Boot starts at LCN 0, which ntfs 0.4 mistakes for a sparse run (its
                // positions are NonZeroU64): read it straight from the device.
                let total = attr.value_length().min(self.io.get_ref().len());
                return copy_device(self.io.get_ref(), offset, len, total, out, path);
            }
            return copy_value(&file, &attr, &mut self.io, offset, len, out, path);
        }
        // Work around the ntfs crate merging same-instance attributes of different records.
        if !stream.is_empty() {
            let want = stream.to_uppercase();
            for (name, ext_rec) in listed_streams(&file, &mut self.io, path)? {
                if name.to_uppercase() != want {
                    continue;
                }
                let ext = self.ntfs.file(&mut self.io, ext_rec).map_err(nerr(path))?;
                for attr in ext.attributes_raw() {
                    let attr = attr.map_err(nerr(path))?;
                    if attr.ty().map_err(nerr(path))? == NtfsAttributeType::Data
                        && attr.name().map_err(nerr(path))?.to_string_lossy() == name
                    {
                        return copy_value(&ext, &attr, &mut self.io, offset, len, out, path);
                    }
                }
            }
        }
        Err(BrowseError::NoStream {
            path: path.to_string(),
            stream: stream.to_string(),
        })
    }

    /// Read all of a (small) stream into memory. Prefer [`Volume::read`] for file contents.
    ///
    /// # Errors
    /// As [`Volume::read`].
    pub fn read_to_vec(&mut self, path: &str) -> Result<Vec<u8>> {
        let mut v = Vec::new();
        self.read(path, &mut v)?;
        Ok(v)
    }
}

/// Copy `len` bytes from `offset` of the first `total` bytes of the device to `out`.
fn copy_device<D: Device>(
    dev: &D,
    offset: u64,
    len: u64,
    total: u64,
    out: &mut dyn Write,
    path: &str,
) -> Result<u64> {
    if offset >= total {
        return Ok(0);
    }
    let end = offset.saturating_add(len).min(total);
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = offset;
    while pos < end {
        let n = usize::try_from(end - pos)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        dev.read_at(pos, &mut buf[..n])?;
        out.write_all(&buf[..n])
            .map_err(|source| BrowseError::Output {
                path: path.to_string(),
                source,
            })?;
        pos += n as u64;
    }
    Ok(end - offset)
}

/// Copy `len` bytes from `offset` of an attribute's value to `out`.
fn copy_value<T: std::io::Read + Seek>(
    file: &NtfsFile<'_>,
    attr: &ntfs::NtfsAttribute<'_, '_>,
    io: &mut T,
    offset: u64,
    len: u64,
    out: &mut dyn Write,
    path: &str,
) -> Result<u64> {
    let flags = attr.flags();
    if flags.contains(NtfsAttributeFlags::COMPRESSED) && !attr.is_resident() {
        return copy_compressed(file, attr, io, offset, len, out, path);
    }
    if flags.contains(NtfsAttributeFlags::ENCRYPTED) {
        return Err(BrowseError::Unsupported {
            path: path.to_string(),
            reason: "EFS-encrypted data".into(),
        });
    }
    let mut value = attr.value(io).map_err(nerr(path))?;
    let total = value.len();
    if offset >= total {
        return Ok(0);
    }
    let mut left = len.min(total - offset);
    if offset > 0 {
        value
            .seek(io, SeekFrom::Start(offset))
            .map_err(nerr(path))?;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut done = 0u64;
    while left > 0 {
        let want = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        let n = value.read(io, &mut buf[..want]).map_err(nerr(path))?;
        if n == 0 {
            return Err(BrowseError::Ntfs {
                path: path.to_string(),
                offset: value.data_position().value().map(|v| v.get()),
                source: NtfsError::InvalidStructuredValueSize {
                    position: value.data_position(),
                    ty: NtfsAttributeType::Data,
                    expected: total,
                    actual: offset + done,
                },
            });
        }
        out.write_all(&buf[..n])
            .map_err(|source| BrowseError::Output {
                path: path.to_string(),
                source,
            })?;
        done += n as u64;
        left -= n as u64;
    }
    Ok(done)
}

/// Read an LZNT1-compressed non-resident attribute (the `ntfs` crate reads such data raw, so
/// reseal decompresses it): compression units of 16 clusters are either all allocated (stored
/// uncompressed), all sparse (zeros), or partly allocated (LZNT1 chunks in the allocated part).
fn copy_compressed<T: std::io::Read + Seek>(
    file: &NtfsFile<'_>,
    attr: &ntfs::NtfsAttribute<'_, '_>,
    io: &mut T,
    offset: u64,
    len: u64,
    out: &mut dyn Write,
    path: &str,
) -> Result<u64> {
    let unsupported = |reason: String| BrowseError::Unsupported {
        path: path.to_string(),
        reason,
    };
    let corrupt = |at: Option<u64>, reason: String| {
        BrowseError::Disk(reseal_disk::Error::corrupt(
            format!("compressed data of {path}"),
            at.unwrap_or(0),
            reason,
        ))
    };
    // Compression-unit exponent, byte 34 of the non-resident attribute header.
    let hdr = attr.position().value().map(|p| p.get());
    if let Some(h) = hdr {
        let mut b = [0u8; 1];
        io.seek(SeekFrom::Start(h + 34))
            .and_then(|_| io.read_exact(&mut b))
            .map_err(|e| BrowseError::Output {
                path: path.to_string(),
                source: e,
            })?;
        if b[0] != 4 {
            return Err(unsupported(format!(
                "compression unit 2^{} clusters (only 16 is supported)",
                b[0]
            )));
        }
    }
    let cluster = u64::from(file.ntfs().cluster_size());
    if cluster > 4096 {
        return Err(unsupported(format!(
            "compressed data with {cluster}-byte clusters"
        )));
    }
    let value = attr.value(io).map_err(nerr(path))?;
    let total = value.len();
    // Runs: (first VCN, clusters, byte position or None when sparse).
    let mut runs = Vec::new();
    match value {
        ntfs::attribute_value::NtfsAttributeValue::NonResident(v) => {
            push_runs(&v, 0, cluster, &mut runs, path)?
        }
        _ => {
            let name = attr.name().map_err(nerr(path))?.to_string_lossy();
            extent_runs(file, io, &name, cluster, &mut runs, path)?;
        }
    }
    let unit_clusters = 16u64;
    let unit_bytes = unit_clusters * cluster;
    if offset >= total {
        return Ok(0);
    }
    let end = offset.saturating_add(len).min(total);
    let mut done = 0u64;
    let mut ri = 0usize;
    let mut unit = offset / unit_bytes;
    let mut raw = Vec::with_capacity(unit_bytes as usize);
    let mut plain = vec![0u8; unit_bytes as usize];
    while unit * unit_bytes < end {
        let (u0, u1) = (unit * unit_clusters, (unit + 1) * unit_clusters);
        raw.clear();
        let mut allocated = 0u64;
        while ri < runs.len() && runs[ri].0 + runs[ri].1 <= u0 {
            ri += 1;
        }
        let mut k = ri;
        while k < runs.len() && runs[k].0 < u1 {
            let (rv, rn, pos) = runs[k];
            let a = rv.max(u0);
            let b = (rv + rn).min(u1);
            if let Some(pos) = pos {
                let from = pos + (a - rv) * cluster;
                let n = ((b - a) * cluster) as usize;
                let at = raw.len();
                raw.resize(at + n, 0);
                io.seek(SeekFrom::Start(from))
                    .and_then(|_| io.read_exact(&mut raw[at..]))
                    .map_err(|e| corrupt(Some(from), format!("reading clusters: {e}")))?;
                allocated += b - a;
            }
            k += 1;
        }
        if allocated == unit_clusters {
            plain.copy_from_slice(&raw);
        } else if allocated == 0 {
            plain.fill(0);
        } else {
            plain.fill(0);
            lznt1::decompress(&raw, &mut plain).map_err(|(at, why)| {
                corrupt(
                    None,
                    format!("LZNT1 in compression unit {unit}, input byte {at}: {why}"),
                )
            })?;
        }
        let ustart = unit * unit_bytes;
        let a = offset.max(ustart) - ustart;
        let b = end.min(ustart + unit_bytes) - ustart;
        out.write_all(&plain[a as usize..b as usize])
            .map_err(|source| BrowseError::Output {
                path: path.to_string(),
                source,
            })?;
        done += b - a;
        unit += 1;
    }
    Ok(done)
}

fn push_runs(
    v: &ntfs::attribute_value::NtfsNonResidentAttributeValue<'_, '_>,
    first_vcn: u64,
    cluster: u64,
    runs: &mut Vec<(u64, u64, Option<u64>)>,
    path: &str,
) -> Result<()> {
    let mut vcn = first_vcn;
    for r in v.data_runs() {
        let r = r.map_err(nerr(path))?;
        let n = r.allocated_size() / cluster;
        runs.push((vcn, n, r.data_position().value().map(|p| p.get())));
        vcn = vcn.saturating_add(n);
    }
    Ok(())
}

/// Data runs of a $DATA attribute whose extents the $ATTRIBUTE_LIST spreads over several
/// records, in VCN order.
fn extent_runs<T: std::io::Read + Seek>(
    file: &NtfsFile<'_>,
    io: &mut T,
    name: &str,
    cluster: u64,
    runs: &mut Vec<(u64, u64, Option<u64>)>,
    path: &str,
) -> Result<()> {
    let mut extents = Vec::new();
    for attr in file.attributes_raw() {
        let attr = attr.map_err(nerr(path))?;
        if attr.ty().map_err(nerr(path))? != NtfsAttributeType::AttributeList {
            continue;
        }
        let list: NtfsAttributeList<'_, '_> = attr.structured_value(io).map_err(nerr(path))?;
        let mut it = list.entries();
        while let Some(e) = it.next(io) {
            let e = e.map_err(nerr(path))?;
            if e.ty().map_err(nerr(path))? == NtfsAttributeType::Data
                && e.name().to_string_lossy() == name
            {
                let vcn = u64::try_from(e.lowest_vcn().value()).unwrap_or(0);
                extents.push((
                    vcn,
                    e.base_file_reference().file_record_number(),
                    e.instance(),
                ));
            }
        }
    }
    extents.sort_unstable();
    extents.dedup();
    for (vcn, rec, instance) in extents {
        let ext = file.ntfs().file(io, rec).map_err(nerr(path))?;
        for attr in ext.attributes_raw() {
            let attr = attr.map_err(nerr(path))?;
            if attr.ty().map_err(nerr(path))? == NtfsAttributeType::Data
                && attr.instance() == instance
            {
                if let ntfs::attribute_value::NtfsAttributeValue::NonResident(v) =
                    attr.value(io).map_err(nerr(path))?
                {
                    push_runs(&v, vcn, cluster, runs, path)?;
                }
                break;
            }
        }
    }
    Ok(())
}

/// LZNT1 (MS-XCA 2.5) decompression.
mod lznt1 {
    /// Decompress `src` (a sequence of chunks) into `dst`; stops at a zero header, the end of
    /// the input or when `dst` is full. Errors give the input offset and the reason.
    pub fn decompress(src: &[u8], dst: &mut [u8]) -> Result<usize, (usize, &'static str)> {
        let mut ip = 0usize;
        let mut op = 0usize;
        while ip + 2 <= src.len() && op < dst.len() {
            let h = u16::from_le_bytes([src[ip], src[ip + 1]]);
            if h == 0 {
                break;
            }
            let size = usize::from(h & 0x0fff) + 1;
            let compressed = h & 0x8000 != 0;
            let start = ip + 2;
            let end = start
                .checked_add(size)
                .filter(|&e| e <= src.len())
                .ok_or((ip, "chunk runs past the data"))?;
            let chunk_out = op;
            let chunk_end = (chunk_out + 4096).min(dst.len());
            if !compressed {
                let n = size.min(chunk_end - op);
                dst[op..op + n].copy_from_slice(&src[start..start + n]);
                op += n;
            } else {
                let mut p = start;
                while p < end && op < chunk_end {
                    let flags = src[p];
                    p += 1;
                    for bit in 0..8 {
                        if p >= end || op >= chunk_end {
                            break;
                        }
                        if flags & (1 << bit) == 0 {
                            dst[op] = src[p];
                            op += 1;
                            p += 1;
                        } else {
                            if p + 2 > end {
                                return Err((p, "truncated back-reference"));
                            }
                            let t = u16::from_le_bytes([src[p], src[p + 1]]);
                            p += 2;
                            let pos = op - chunk_out;
                            if pos == 0 {
                                return Err((p - 2, "back-reference at the start of a chunk"));
                            }
                            let mut shift = 12u32;
                            let mut q = pos - 1;
                            while q >= 0x10 {
                                q >>= 1;
                                shift -= 1;
                            }
                            let length = usize::from(t & ((1u16 << shift) - 1)) + 3;
                            let back = usize::from(t >> shift) + 1;
                            if back > pos {
                                return Err((p - 2, "back-reference before the chunk start"));
                            }
                            for _ in 0..length {
                                if op >= chunk_end {
                                    break;
                                }
                                dst[op] = dst[op - back];
                                op += 1;
                            }
                        }
                    }
                }
            }
            // Each chunk holds 4096 bytes of output except possibly the last.
            if op < chunk_end && end < src.len() {
                op = chunk_end;
            }
            ip = end;
        }
        Ok(op)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn literal_and_backref() {
            // "abcabcabc": literals a b c, then back-reference offset 3 length 6.
            // pos=3 -> shift 12, token = ((3-1) << 12) | (6-3).
            let t: u16 = (2 << 12) | 3;
            let mut src = vec![0u8, 0u8, 0b0000_1000, b'a', b'b', b'c'];
            src.extend_from_slice(&t.to_le_bytes());
            let size = (src.len() - 2 - 1) as u16;
            src[0..2].copy_from_slice(&(0xb000 | size).to_le_bytes());
            let mut dst = [0u8; 9];
            assert_eq!(super::decompress(&src, &mut dst), Ok(9));
            assert_eq!(&dst, b"abcabcabc");
        }

        #[test]
        fn hostile_never_panics() {
            let mut x = 1u64;
            for _ in 0..2000 {
                let src: Vec<u8> = (0..64)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        x as u8
                    })
                    .collect();
                let mut dst = [0u8; 8192];
                let _ = super::decompress(&src, &mut dst);
            }
        }
    }
}

/// Named $DATA streams whose first extent the base record's $ATTRIBUTE_LIST places in some
/// record: (name, record number). Used to work around ntfs 0.4 treating two different
/// attributes of the same type and instance number (in different records) as one.
fn listed_streams<T: std::io::Read + Seek>(
    file: &NtfsFile<'_>,
    io: &mut T,
    path: &str,
) -> Result<Vec<(String, u64)>> {
    let mut out = Vec::new();
    for attr in file.attributes_raw() {
        let attr = attr.map_err(nerr(path))?;
        if attr.ty().map_err(nerr(path))? != NtfsAttributeType::AttributeList {
            continue;
        }
        let list: NtfsAttributeList<'_, '_> = attr.structured_value(io).map_err(nerr(path))?;
        let mut it = list.entries();
        while let Some(e) = it.next(io) {
            let e = e.map_err(nerr(path))?;
            if e.ty().map_err(nerr(path))? == NtfsAttributeType::Data
                && e.lowest_vcn().value() == 0
                && e.name_length() > 0
            {
                out.push((
                    e.name().to_string_lossy(),
                    e.base_file_reference().file_record_number(),
                ));
            }
        }
    }
    Ok(out)
}

fn entry_of<T: std::io::Read + Seek>(
    file: &NtfsFile<'_>,
    io: &mut T,
    rec: u64,
    name: String,
    path: &str,
) -> Result<Entry> {
    let info = file.info().map_err(nerr(path))?;
    let mut e = Entry {
        name,
        is_dir: file.is_directory(),
        size: 0,
        allocated_size: 0,
        created: info.creation_time().nt_timestamp(),
        modified: info.modification_time().nt_timestamp(),
        mft_modified: info.mft_record_modification_time().nt_timestamp(),
        accessed: info.access_time().nt_timestamp(),
        attributes: info.file_attributes().bits(),
        record: rec,
        streams: Vec::new(),
    };
    let mut attrs = file.attributes();
    while let Some(item) = attrs.next(io) {
        let item = item.map_err(nerr(path))?;
        let attr = item.to_attribute().map_err(nerr(path))?;
        if attr.ty().map_err(nerr(path))? != NtfsAttributeType::Data {
            continue;
        }
        let sname = attr.name().map_err(nerr(path))?.to_string_lossy();
        let len = attr.value_length();
        if sname.is_empty() {
            e.size = len;
            if !attr.is_resident() {
                e.allocated_size = allocated(&attr, io).unwrap_or(len);
            }
        } else {
            e.streams.push((sname, len));
        }
    }
    for (name, ext_rec) in listed_streams(file, io, path)? {
        if e.streams.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let ext = file.ntfs().file(io, ext_rec).map_err(nerr(path))?;
        for attr in ext.attributes_raw() {
            let attr = attr.map_err(nerr(path))?;
            if attr.ty().map_err(nerr(path))? == NtfsAttributeType::Data
                && attr.name().map_err(nerr(path))?.to_string_lossy() == name
            {
                e.streams.push((name.clone(), attr.value_length()));
                break;
            }
        }
    }
    e.streams.sort();
    e.streams.dedup_by(|a, b| a.0 == b.0);
    if e.is_dir {
        e.size = 0;
    }
    Ok(e)
}

/// Allocated bytes of a non-resident attribute: the sum of its non-sparse data runs (the space it
/// really occupies; sparse runs are holes).
fn allocated<T: std::io::Read + Seek>(
    attr: &ntfs::NtfsAttribute<'_, '_>,
    io: &mut T,
) -> Option<u64> {
    match attr.value(io).ok()? {
        ntfs::attribute_value::NtfsAttributeValue::NonResident(v) => {
            let mut sum = 0u64;
            for run in v.data_runs() {
                let run = run.ok()?;
                if run.data_position().value().is_some() {
                    sum = sum.checked_add(run.allocated_size())?;
                }
            }
            Some(sum)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::split_path;

    #[test]
    fn paths() {
        assert_eq!(split_path("/a/b"), (vec!["a", "b"], None));
        assert_eq!(split_path("a\\b\\"), (vec!["a", "b"], None));
        assert_eq!(
            split_path("\\a\\f.txt:ads"),
            (vec!["a", "f.txt"], Some("ads"))
        );
        assert_eq!(split_path("f:ads:$DATA"), (vec!["f"], Some("ads")));
        assert_eq!(split_path("/"), (vec![], None));
        assert_eq!(split_path(""), (vec![], None));
    }
}
