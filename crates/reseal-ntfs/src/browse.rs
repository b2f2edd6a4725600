//! Read-only NTFS browsing on the engine's own reader ([`crate::Volume`]): list directories,
//! stat files, stream file contents and alternate data streams, walk the tree. There is one
//! NTFS model: the records (fixups), attribute lists, runs, `$I30` B+ trees (with `$UpCase`
//! collation), resident, sparse and LZNT1-compressed data read here are the ones the write
//! engine parses before it changes anything.
//!
//! Paths are case-insensitive with NTFS `$UpCase` semantics, use `/` or `\`, and may omit the
//! leading separator; the last component may name a stream as `file:stream` (or
//! `file:stream:$DATA`). Listing hides the NTFS metafiles (records 0..16: `$MFT`, `$LogFile`, ...,
//! and the root's `.` entry) and DOS-only 8.3 names, as `ntfsls -a` does; those files can still
//! be opened by name.

use std::io::Write;

use reseal_disk::probe::NtfsBoot;
use reseal_disk::Device;

use crate::attribute::{ATTRIBUTE_LIST, DATA, FILE_NAME, FLAG_ENCRYPTED, STANDARD_INFORMATION};
use crate::error::{Error, Offset};
use crate::file::{i30, key_of, NAMESPACE_DOS};
use crate::layout::file_name;
use crate::layout::index::IndexEntryHeader;
use crate::layout::standard_information::{self as si_layout, StandardInformation};
use crate::layout::volume_information::{self as vi_layout, VolumeInformation};
use crate::record::{Record, FLAG_DIRECTORY};
use zerocopy::little_endian::U16;
use zerocopy::FromBytes;

/// First MFT record that is not an NTFS metafile.
pub const FIRST_USER_RECORD: u64 = 16;
/// MFT record of `$Boot`.
pub const BOOT_RECORD: u64 = 7;
/// MFT record of the root directory.
pub const ROOT_RECORD: u64 = 5;
/// MFT record of `$Volume`.
const VOLUME_RECORD: u64 = 3;
/// `$VOLUME_NAME`.
const VOLUME_NAME: u32 = 0x60;
/// `$VOLUME_INFORMATION`.
const VOLUME_INFORMATION: u32 = 0x70;
/// Bytes copied per read of file data.
const CHUNK: usize = 256 * 1024;
/// The largest stream [`Volume::read_to_vec`] reads (4 GiB: a registry hive's limit), so that a
/// hostile stream size is an error, not an allocation of that size.
const MAX_IN_MEMORY: u64 = 4 << 30;

/// Errors of browsing: each names the path it concerns.
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
    /// Data reseal cannot read (encrypted, or a compression unit the engine does not decode).
    #[error("{path}: unsupported: {reason}")]
    Unsupported {
        /// The path.
        path: String,
        /// Why.
        reason: String,
    },
    /// An NTFS structure did not parse (the engine's [`Error`]).
    #[error("{path}: NTFS structure error{}: {source}", offset.map(|o| format!(" at volume byte {o:#x}")).unwrap_or_default())]
    Ntfs {
        /// The path (or "(volume)").
        path: String,
        /// Byte offset **in the volume** (from its first byte, the boot sector) of the faulty
        /// bytes, when the engine locates them: a record-relative offset is mapped through
        /// `$MFT`'s runlist, a device error keeps its request offset; `None` otherwise.
        offset: Option<u64>,
        /// The engine's error (boxed: it is large and errors are rare).
        #[source]
        source: Box<Error>,
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

/// An open NTFS volume on a device: read-only file handles over the engine's [`crate::Volume`].
pub struct Volume<D: Device> {
    vol: crate::Volume<D>,
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

fn utf16(b: &[u8]) -> Vec<u16> {
    <[U16]>::ref_from_prefix_with_elems(b, b.len() / 2)
        .map(|(units, _)| units.iter().map(|u| u.get()).collect())
        .unwrap_or_default()
}

fn is_dir(r: &Record) -> bool {
    r.flags() & FLAG_DIRECTORY != 0
}

impl<D: Device> Volume<D> {
    /// Open the NTFS volume on `dev`: the boot sector is validated first (so geometry errors are
    /// located), then the engine reads `$MFT`'s runlist and `$UpCase`.
    ///
    /// # Errors
    /// [`BrowseError::Disk`] for a boot sector that is not NTFS or is invalid;
    /// [`BrowseError::Ntfs`] when the engine rejects the volume.
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
        let vol = crate::Volume::open(dev).map_err(|source| BrowseError::Ntfs {
            path: "(volume)".into(),
            offset: match &source {
                Error::Disk { offset, .. } => Some(*offset),
                _ => None,
            },
            source: Box::new(source),
        })?;
        Ok(Volume { vol, boot })
    }

    /// The engine volume these handles read through (for engine reads such as descriptors).
    pub fn engine(&self) -> &crate::Volume<D> {
        &self.vol
    }

    /// Give back the engine volume, e.g. to write after reading through the handles.
    pub fn into_engine(self) -> crate::Volume<D> {
        self.vol
    }

    /// The engine error `e` met while reading `path`, located in the volume: a volume offset as
    /// is, an offset in an MFT record (or a record as a whole) through the `$MFT` runlist; an
    /// offset inside some other stream is not located.
    fn err(&self, path: &str, e: Error) -> BrowseError {
        let in_record = |r: u64, o: u64| {
            r.checked_mul(u64::from(self.boot.record_size))
                .and_then(|p| p.checked_add(o))
                .and_then(|p| self.vol.mft_offset(p))
        };
        let offset = match &e {
            Error::Disk { offset, .. } => Some(*offset),
            Error::Corrupt { offset, record, .. } => match (*offset, *record) {
                (Offset::Volume(o), _) => Some(o),
                (Offset::Record(o), Some(r)) => in_record(r, o),
                (Offset::Whole, Some(r)) => in_record(r, 0),
                _ => None,
            },
            _ => None,
        };
        BrowseError::Ntfs {
            path: path.to_string(),
            offset,
            source: Box::new(e),
        }
    }

    fn record(&self, num: u64, path: &str) -> Result<Record> {
        self.vol.read_record(num).map_err(|e| self.err(path, e))
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
        let p = "$Volume";
        match self
            .vol
            .stream(VOLUME_RECORD, VOLUME_NAME, &[])
            .map_err(|e| self.err(p, e))?
        {
            None => Ok(String::new()),
            Some(_) => {
                let v = self
                    .vol
                    .read_all(VOLUME_RECORD, VOLUME_NAME, &[])
                    .map_err(|e| self.err(p, e))?;
                Ok(String::from_utf16_lossy(&utf16(&v)))
            }
        }
    }

    fn volume_information(&self) -> Result<Vec<u8>> {
        let p = "$Volume";
        let v = self
            .vol
            .read_all(VOLUME_RECORD, VOLUME_INFORMATION, &[])
            .map_err(|e| self.err(p, e))?;
        if v.len() < vi_layout::LEN {
            return Err(self.short_volume_information(&v));
        }
        Ok(v)
    }

    fn short_volume_information(&self, v: &[u8]) -> BrowseError {
        self.err(
            "$Volume",
            Error::corrupt(
                "$VOLUME_INFORMATION",
                Some(VOLUME_RECORD),
                Offset::Whole,
                format!("{} bytes, {} expected", v.len(), vi_layout::LEN),
            ),
        )
    }

    /// NTFS version (major, minor) from `$Volume:$VOLUME_INFORMATION`, e.g. (3, 1).
    ///
    /// # Errors
    /// [`BrowseError::Ntfs`] if `$Volume` is damaged.
    pub fn version(&mut self) -> Result<(u8, u8)> {
        let v = self.volume_information()?;
        let vi = VolumeInformation::view(&v).ok_or_else(|| self.short_volume_information(&v))?;
        Ok((vi.major_version, vi.minor_version))
    }

    /// `$VOLUME_INFORMATION` flags (0x0001 = dirty).
    ///
    /// # Errors
    /// [`BrowseError::Ntfs`] if `$Volume` is damaged.
    pub fn volume_flags(&mut self) -> Result<u16> {
        let v = self.volume_information()?;
        let vi = VolumeInformation::view(&v).ok_or_else(|| self.short_volume_information(&v))?;
        Ok(vi.flags.get())
    }

    /// Volume serial number.
    pub fn serial(&self) -> u64 {
        self.boot.serial
    }

    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u32 {
        self.boot.cluster_size
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.vol.dev
    }

    /// Give back the device.
    pub fn into_inner(self) -> D {
        self.vol.into_inner()
    }

    /// MFT record number of `comps` (a directory path), checking each step is a directory.
    /// Names match exactly first, then case-insensitively through `$UpCase` (the engine's
    /// lookup).
    fn resolve(&self, comps: &[&str], path: &str) -> Result<u64> {
        let mut rec = ROOT_RECORD;
        for (i, comp) in comps.iter().enumerate() {
            let r = self.record(rec, path)?;
            if !is_dir(&r) {
                return Err(BrowseError::NotADirectory {
                    path: comps[..i].join("/"),
                });
            }
            let name: Vec<u16> = comp.encode_utf16().collect();
            match self
                .vol
                .find_in_dir(rec, &name)
                .map_err(|e| self.err(path, e))?
            {
                None => {
                    return Err(BrowseError::NotFound {
                        path: format!("/{}", comps[..=i].join("/")),
                    })
                }
                Some(n) => rec = n,
            }
        }
        Ok(rec)
    }

    /// Names of the `$DATA` attributes of record `r` (its own and those its `$ATTRIBUTE_LIST`
    /// places in extension records), unnamed first, each once.
    fn data_names(&self, r: &Record, path: &str) -> Result<Vec<Vec<u16>>> {
        let mut names: Vec<Vec<u16>> = Vec::new();
        for a in r.attrs().map_err(|e| self.err(path, e))? {
            if a.ty == DATA && !names.contains(&a.name) {
                names.push(a.name);
            }
        }
        if r.find(ATTRIBUTE_LIST, &[])
            .map_err(|e| self.err(path, e))?
            .is_some()
        {
            for e in self.vol.attribute_list(r).map_err(|e| self.err(path, e))? {
                if e.ty == DATA && !names.contains(&e.name) {
                    names.push(e.name);
                }
            }
        }
        names.sort_by_key(|n| !n.is_empty());
        Ok(names)
    }

    fn entry_for(&self, rec: u64, name: String, path: &str) -> Result<Entry> {
        let r = self.record(rec, path)?;
        self.entry_of(&r, name, path)
    }

    fn entry_of(&self, r: &Record, name: String, path: &str) -> Result<Entry> {
        let si = r
            .find(STANDARD_INFORMATION, &[])
            .map_err(|e| self.err(path, e))?
            .filter(|a| !a.nonres && a.value_len >= si_layout::ATTRIBUTES_END)
            .ok_or_else(|| {
                self.err(
                    path,
                    Error::corrupt(
                        "$STANDARD_INFORMATION",
                        Some(r.num),
                        Offset::Whole,
                        "missing or shorter than 36 bytes",
                    ),
                )
            })?;
        let v = StandardInformation::read(r.value(&si));
        let mut e = Entry {
            name,
            is_dir: is_dir(r),
            size: 0,
            allocated_size: 0,
            created: v.creation_time.get(),
            modified: v.last_data_change_time.get(),
            mft_modified: v.last_mft_change_time.get(),
            accessed: v.last_access_time.get(),
            attributes: v.file_attributes.get(),
            record: r.num,
            streams: Vec::new(),
        };
        let cs = u64::from(self.boot.cluster_size);
        for n in self.data_names(r, path)? {
            let Some(s) = self
                .vol
                .stream(r.num, DATA, &n)
                .map_err(|e| self.err(path, e))?
            else {
                continue;
            };
            if n.is_empty() {
                e.size = s.size;
                if !s.resident {
                    e.allocated_size = s
                        .runs
                        .iter()
                        .filter(|run| run.lcn.is_some())
                        .fold(0u64, |acc, run| {
                            acc.saturating_add(run.len.saturating_mul(cs))
                        });
                }
            } else {
                e.streams.push((String::from_utf16_lossy(&n), s.size));
            }
        }
        e.streams.sort();
        e.streams.dedup_by(|a, b| a.0 == b.0);
        if e.is_dir {
            e.size = 0;
        }
        Ok(e)
    }

    /// The name record `r` is stored under: its Win32 `$FILE_NAME`, else its POSIX one, else
    /// its Win32-and-DOS one.
    fn stored_name(&self, r: &Record, path: &str) -> Result<Option<String>> {
        let mut best: Option<(u8, Vec<u16>)> = None;
        for a in r.attrs().map_err(|e| self.err(path, e))? {
            if a.ty != FILE_NAME || a.nonres {
                continue;
            }
            let Some((n, ns)) = file_name::name(r.value(&a)) else {
                continue;
            };
            let rank = match ns {
                1 => 0,
                0 => 1,
                3 => 2,
                _ => continue,
            };
            if best.as_ref().is_none_or(|(b, _)| rank < *b) {
                best = Some((rank, n));
            }
        }
        Ok(best.map(|(_, n)| String::from_utf16_lossy(&n)))
    }

    /// Facts about the file or directory at `path` ("" or "/" is the root).
    ///
    /// # Errors
    /// [`BrowseError::NotFound`], [`BrowseError::NotADirectory`], [`BrowseError::Ntfs`].
    pub fn stat(&mut self, path: &str) -> Result<Entry> {
        let (comps, _) = split_path(path);
        let rec = self.resolve(&comps, path)?;
        let name = comps.last().map(|s| s.to_string()).unwrap_or_default();
        let r = self.record(rec, path)?;
        let mut e = self.entry_of(&r, name, path)?;
        // Use the name as stored (its case), from the file's own $FILE_NAME.
        if rec != ROOT_RECORD {
            if let Some(n) = self.stored_name(&r, path)? {
                e.name = n;
            }
        }
        Ok(e)
    }

    /// The `$DATA` stream `stream` ("" = unnamed) of record `r`: the exact name, else one equal
    /// ignoring case through `$UpCase` (stream names are case-insensitive on Windows).
    fn find_stream(
        &self,
        r: &Record,
        stream: &str,
        path: &str,
    ) -> Result<Option<crate::volume::Stream>> {
        let want: Vec<u16> = stream.encode_utf16().collect();
        if let Some(s) = self
            .vol
            .stream(r.num, DATA, &want)
            .map_err(|e| self.err(path, e))?
        {
            return Ok(Some(s));
        }
        if want.is_empty() {
            return Ok(None);
        }
        for n in self.data_names(r, path)? {
            if self.vol.upcase.eq_ic(&n, &want) {
                return self
                    .vol
                    .stream(r.num, DATA, &n)
                    .map_err(|e| self.err(path, e));
            }
        }
        Ok(None)
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
                    let r = self.record(rec, path)?;
                    Ok(self.find_stream(&r, s, path)?.is_some())
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
        if !is_dir(&self.record(rec, path)?) {
            return Err(BrowseError::NotADirectory {
                path: path.to_string(),
            });
        }
        let (_, ents) = self
            .vol
            .read_index(rec, &i30())
            .map_err(|e| self.err(path, e))?;
        let mut out = Vec::with_capacity(ents.len());
        for ent in ents {
            let Some((n, ns)) = file_name::name(key_of(&ent)) else {
                continue;
            };
            if ns == NAMESPACE_DOS {
                continue;
            }
            let Some(r) = IndexEntryHeader::view(&ent).map(IndexEntryHeader::file_record) else {
                continue;
            };
            if r < FIRST_USER_RECORD && !(system && r != ROOT_RECORD) {
                continue;
            }
            let name = String::from_utf16_lossy(&n);
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
    /// Sparse ranges and bytes past the initialized size read as zeros; compressed data is
    /// decompressed (LZNT1).
    ///
    /// # Errors
    /// [`BrowseError::IsADirectory`], [`BrowseError::NoStream`], [`BrowseError::Unsupported`]
    /// for encrypted data, [`BrowseError::Output`] if `out` fails, and lookup errors.
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
        let s = self.data_stream(path)?;
        if offset >= s.size {
            return Ok(0);
        }
        let end = offset.saturating_add(len).min(s.size);
        let mut buf = vec![0u8; usize::try_from(end - offset).unwrap_or(CHUNK).min(CHUNK)];
        let mut pos = offset;
        while pos < end {
            let n = usize::try_from(end - pos).unwrap_or(CHUNK).min(buf.len());
            self.read_stream(&s, pos, &mut buf[..n], path)?;
            out.write_all(&buf[..n])
                .map_err(|source| BrowseError::Output {
                    path: path.to_string(),
                    source,
                })?;
            pos += n as u64;
        }
        Ok(end - offset)
    }

    /// Read all of a (small) stream into memory. Prefer [`Volume::read`] for file contents.
    ///
    /// # Errors
    /// As [`Volume::read`].
    pub fn read_to_vec(&mut self, path: &str) -> Result<Vec<u8>> {
        let s = self.data_stream(path)?;
        // Read in place: a hive of 100 MB went through a chunk buffer and a growing Vec, two
        // copies and a dozen reallocations.
        let mut v = Vec::new();
        let len = usize::try_from(s.size)
            .ok()
            .filter(|&n| n as u64 <= MAX_IN_MEMORY && v.try_reserve_exact(n).is_ok())
            .ok_or_else(|| BrowseError::Unsupported {
                path: path.to_string(),
                reason: format!(
                    "a stream of {} bytes is too large to read into memory (at most {} bytes)",
                    s.size, MAX_IN_MEMORY
                ),
            })?;
        v.resize(len, 0);
        self.read_stream(&s, 0, &mut v, path)?;
        Ok(v)
    }

    /// The data stream `path` names (`file` or `file:stream`), refusing directories and
    /// encrypted data.
    fn data_stream(&mut self, path: &str) -> Result<crate::volume::Stream> {
        let (comps, stream) = split_path(path);
        let stream = stream.unwrap_or("");
        let rec = self.resolve(&comps, path)?;
        let r = self.record(rec, path)?;
        if is_dir(&r) && stream.is_empty() {
            return Err(BrowseError::IsADirectory {
                path: path.to_string(),
            });
        }
        let Some(s) = self.find_stream(&r, stream, path)? else {
            return Err(BrowseError::NoStream {
                path: path.to_string(),
                stream: stream.to_string(),
            });
        };
        if !s.resident && s.flags & FLAG_ENCRYPTED != 0 {
            return Err(BrowseError::Unsupported {
                path: path.to_string(),
                reason: "EFS-encrypted data".into(),
            });
        }
        Ok(s)
    }

    fn read_stream(
        &mut self,
        s: &crate::volume::Stream,
        pos: u64,
        buf: &mut [u8],
        path: &str,
    ) -> Result<()> {
        self.vol.read_stream(s, pos, buf).map_err(|e| match e {
            Error::Unsupported { what, .. } => BrowseError::Unsupported {
                path: path.to_string(),
                reason: what,
            },
            e => self.err(path, e),
        })
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
