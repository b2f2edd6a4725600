//! Files and directories by path: lookup through `$I30`, read, overwrite, resize, create,
//! delete, rename/move. Reference: FORMATS.md C.7 and C.8.

use std::cmp::Ordering;

use reseal_disk::Device;

use crate::attribute::{self, DATA, FILE_NAME, INDEX_ROOT, STANDARD_INFORMATION};
use crate::error::{Error, Offset, Result};
use crate::layout::file_name::{self, FileName};
use crate::layout::index::{self as index_layout, IndexEntryHeader};
use crate::layout::record::FileRecordHeader;
use crate::layout::standard_information::{self as si_layout, StandardInformation};
use crate::record;
use crate::volume::{Grow, Volume, ROOT};
use zerocopy::IntoBytes;

/// `$I30` as UTF-16.
pub(crate) fn i30() -> Vec<u16> {
    "$I30".encode_utf16().collect()
}

/// `$FILE_NAME` namespace POSIX (case-sensitive; what ntfs-3g creates).
pub const NAMESPACE_POSIX: u8 = 0;
/// `$FILE_NAME` namespace DOS (8.3 short name only).
pub const NAMESPACE_DOS: u8 = 2;

/// FILE_NAME flag of a directory ("has $I30 index").
const FN_DIRECTORY: u32 = 0x1000_0000;
const FILE_ATTR_ARCHIVE: u32 = 0x20;

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The name.
    pub name: String,
    /// MFT record number.
    pub record: u64,
    /// Directory?
    pub is_dir: bool,
    /// Data size copy kept in the index (may lag on volumes written by Windows).
    pub size: u64,
}

/// Basic facts about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// MFT record number.
    pub record: u64,
    /// Directory?
    pub is_dir: bool,
    /// Size of the unnamed `$DATA` stream (0 for directories).
    pub size: u64,
    /// `$STANDARD_INFORMATION` security id (0 when none).
    pub security_id: u32,
}

fn split(path: &str) -> Vec<&str> {
    path.split(['/', '\\'])
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// The `$FILE_NAME` that names record `r`: a Win32 or POSIX one before a DOS alias; with hard
/// links, the first such.
fn primary_file_name(r: &record::Record) -> Result<Option<attribute::Attr>> {
    let fns: Vec<attribute::Attr> = r
        .attrs()?
        .into_iter()
        .filter(|a| a.ty == FILE_NAME && !a.nonres)
        .collect();
    Ok(fns
        .iter()
        .find(|a| FileName::view(r.value(a)).is_some_and(|h| h.file_name_type != NAMESPACE_DOS))
        .or(fns.first())
        .cloned())
}

/// The security id in record `r`'s `$STANDARD_INFORMATION` (0 when there is none or it is the
/// short NTFS 1.2 form).
pub(crate) fn si_security_id(r: &record::Record) -> Result<u32> {
    Ok(match r.find(STANDARD_INFORMATION, &[])? {
        Some(a) if !a.nonres && a.value_len >= si_layout::SECURITY_ID_END => {
            StandardInformation::read(r.value(&a)).security_id.get()
        }
        _ => 0,
    })
}

pub(crate) fn key_of(e: &[u8]) -> &[u8] {
    index_layout::key(e).unwrap_or(&[])
}

/// `SOURCE_DATE_EPOCH` (whole seconds since 1970, the reproducible-builds convention:
/// <https://reproducible-builds.org/specs/source-date-epoch/>) when set to a number, read once
/// per process: runs that make the same change then write the same bytes.
fn source_date_epoch() -> Option<std::time::Duration> {
    static T: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    T.get_or_init(|| std::env::var("SOURCE_DATE_EPOCH").ok()?.trim().parse().ok())
        .map(std::time::Duration::from_secs)
}

/// Current time as FILETIME (or [`source_date_epoch`]).
pub(crate) fn now_filetime() -> u64 {
    let d = source_date_epoch().unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    });
    116_444_736_000_000_000 + d.as_secs() * 10_000_000 + u64::from(d.subsec_nanos() / 100)
}

/// A new name as UTF-16, after [`crate::name_rules::check`].
fn check_name(name: &str) -> Result<Vec<u16>> {
    crate::name_rules::check(name).map_err(|rule| Error::InvalidName {
        name: name.to_string(),
        rule,
    })?;
    Ok(name.encode_utf16().collect())
}

impl<D: Device> Volume<D> {
    /// Find `name` in directory record `dir`: an exact match first, else a case-insensitive one.
    pub(crate) fn find_in_dir(&self, dir: u64, name: &[u16]) -> Result<Option<u64>> {
        if let Some(n) = self.exact_in_dir(dir, name)? {
            return Ok(Some(n));
        }
        // Case-insensitive: equal-ignoring-case names are adjacent in collation order, so a
        // descent comparing upper-cased names only finds one of them.
        let key = file_name::build(0, 0, 0, 0, 0, name, NAMESPACE_POSIX);
        let up = self.upcase.clone();
        let cmp = move |a: &[u8], b: &[u8]| match (file_name::name(a), file_name::name(b)) {
            (Some((x, _)), Some((y, _))) => up.collate_ic(&x, &y),
            (x, y) => x.is_some().cmp(&y.is_some()),
        };
        Ok(self
            .index_find(dir, &i30(), &key, &cmp)?
            .as_deref()
            .and_then(IndexEntryHeader::view)
            .map(IndexEntryHeader::file_record))
    }

    /// Resolve a path (`/` or `\` separated, from the root) to an MFT record number.
    ///
    /// # Errors
    /// [`Error::NotFound`]; corruption errors from the indexes walked.
    pub fn lookup(&self, path: &str) -> Result<u64> {
        let mut cur = ROOT;
        for comp in split(path) {
            let name: Vec<u16> = comp.encode_utf16().collect();
            let r = self.read_record(cur)?;
            if r.find(INDEX_ROOT, &i30())?.is_none() {
                return Err(Error::NotFound {
                    path: path.to_string(),
                });
            }
            cur = self
                .find_in_dir(cur, &name)?
                .ok_or_else(|| Error::NotFound {
                    path: path.to_string(),
                })?;
        }
        Ok(cur)
    }

    /// The path (`/`-separated, from the root, no leading `/`) of MFT record `num`, following
    /// the parents of its `$FILE_NAME` (a Win32 or POSIX name before a DOS alias; with hard
    /// links, the first such name).
    ///
    /// # Errors
    /// [`Error::NotFound`] for a record not in use or without a name; corruption errors, and a
    /// parent chain longer than 1024 or not reaching the root.
    pub fn path_of(&self, num: u64) -> Result<String> {
        let mut parts: Vec<String> = Vec::new();
        let mut cur = num;
        for _ in 0..1024 {
            if cur == ROOT {
                parts.reverse();
                return Ok(parts.join("/"));
            }
            let r = self.read_record(cur)?;
            if !r.in_use() {
                return Err(Error::NotFound {
                    path: format!("record {cur}"),
                });
            }
            let best = primary_file_name(&r)?.ok_or_else(|| Error::NotFound {
                path: format!("record {cur} (no $FILE_NAME)"),
            })?;
            let best = r.value(&best);
            let (name, _) = file_name::name(best).ok_or_else(|| {
                Error::corrupt(
                    "$FILE_NAME",
                    Some(cur),
                    Offset::Whole,
                    "shorter than its header",
                )
            })?;
            parts.push(String::from_utf16_lossy(&name));
            cur = FileName::view(best).map_or(0, FileName::parent_record);
        }
        Err(Error::corrupt(
            "$FILE_NAME",
            Some(num),
            Offset::Whole,
            "parent chain does not reach the root",
        ))
    }

    fn parent_and_name(&self, path: &str) -> Result<(u64, String)> {
        let mut comps = split(path);
        let name = comps
            .pop()
            .ok_or_else(|| Error::Invalid("the root has no parent".into()))?;
        let parent = self.lookup(&comps.join("/"))?;
        if self
            .read_record(parent)?
            .find(INDEX_ROOT, &i30())?
            .is_none()
        {
            return Err(Error::Invalid(format!(
                "{} is not a directory",
                comps.join("/")
            )));
        }
        Ok((parent, name.to_string()))
    }

    /// Facts about a path.
    ///
    /// # Errors
    /// [`Error::NotFound`]; corruption errors.
    pub fn metadata(&self, path: &str) -> Result<FileInfo> {
        let num = self.lookup(path)?;
        self.info(num)
    }

    pub(crate) fn info(&self, num: u64) -> Result<FileInfo> {
        let r = self.read_record(num)?;
        let is_dir = r.find(INDEX_ROOT, &i30())?.is_some();
        let size = match self.stream(num, DATA, &[])? {
            Some(s) => s.size,
            None => 0,
        };
        let security_id = si_security_id(&r)?;
        Ok(FileInfo {
            record: num,
            is_dir,
            size,
            security_id,
        })
    }

    /// List a directory (DOS-only short names and the root's `.` entry are skipped).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Invalid`] if not a directory; corruption errors.
    pub fn read_dir(&self, path: &str) -> Result<Vec<DirEntry>> {
        let num = self.lookup(path)?;
        if self.read_record(num)?.find(INDEX_ROOT, &i30())?.is_none() {
            return Err(Error::Invalid(format!("{path} is not a directory")));
        }
        let (_, ents) = self.read_index(num, &i30())?;
        let mut out = Vec::new();
        for e in ents {
            let k = key_of(&e);
            if let (Some((n, ns)), Some(h), Some(fe)) = (
                file_name::name(k),
                FileName::view(k),
                IndexEntryHeader::view(&e),
            ) {
                // DOS short names duplicate a Win32 name; the root's "." entry is itself.
                if ns == NAMESPACE_DOS || n == [u16::from(b'.')] {
                    continue;
                }
                out.push(DirEntry {
                    name: String::from_utf16_lossy(&n),
                    record: fe.file_record(),
                    is_dir: h.file_attributes.get() & FN_DIRECTORY != 0,
                    size: h.data_size.get(),
                });
            }
        }
        Ok(out)
    }

    /// Read a whole file's unnamed `$DATA`.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Unsupported`] for compressed/encrypted data; corruption.
    pub fn read_file(&self, path: &str) -> Result<Vec<u8>> {
        let num = self.lookup(path)?;
        self.read_all(num, DATA, &[])
    }

    /// Read up to `buf.len()` bytes at `offset`; returns how many were read (0 at end).
    ///
    /// # Errors
    /// As [`Volume::read_file`].
    pub fn read_file_at(&self, path: &str, offset: u64, buf: &mut [u8]) -> Result<usize> {
        let num = self.lookup(path)?;
        let s = self
            .stream(num, DATA, &[])?
            .ok_or_else(|| Error::Invalid(format!("{path} has no data")))?;
        if offset >= s.size {
            return Ok(0);
        }
        let n = ((s.size - offset) as usize).min(buf.len());
        self.read_stream(&s, offset, &mut buf[..n])?;
        Ok(n)
    }

    /// The extents of a file's unnamed `$DATA` (empty when the data is resident).
    ///
    /// # Errors
    /// [`Error::NotFound`]; corruption errors.
    pub fn data_runs(&self, path: &str) -> Result<Vec<crate::data_run::Run>> {
        let num = self.lookup(path)?;
        Ok(self
            .stream(num, DATA, &[])?
            .map(|s| s.runs)
            .unwrap_or_default())
    }

    /// Overwrite bytes of a file at `offset`, growing it first if the write extends past the end.
    /// Writes into sparse runs allocate clusters.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::NoSpace`], [`Error::Unsupported`] (compressed, or a change
    /// needing an attribute list); nothing is written on error.
    pub fn write_at(&mut self, path: &str, offset: u64, data: &[u8]) -> Result<()> {
        self.write_ranges(path, &[(offset, data)])
    }

    /// Overwrite many pieces of one file, `(offset, bytes)` each, as one operation: the path is
    /// resolved and the data attribute decoded once (patching a hive's dirty cells costs one
    /// lookup, not one per cell). The file grows first if a piece extends past its end.
    ///
    /// # Errors
    /// As [`Volume::write_at`]; nothing is written on error.
    pub fn write_ranges(&mut self, path: &str, pieces: &[(u64, &[u8])]) -> Result<()> {
        let num = self.lookup(path)?;
        self.tx(|v| v.write_pieces_rec(num, pieces))
    }

    fn write_pieces_rec(&mut self, num: u64, pieces: &[(u64, &[u8])]) -> Result<()> {
        let mut end = 0u64;
        for (off, data) in pieces {
            let e = off
                .checked_add(data.len() as u64)
                .ok_or_else(|| Error::Invalid("offset overflow".into()))?;
            end = end.max(e);
        }
        let s = self
            .stream(num, DATA, &[])?
            .ok_or_else(|| Error::Invalid(format!("record {num} has no data")))?;
        if end > s.size {
            self.set_stream_len(num, DATA, &[], end, Grow::default())?;
        }
        let mut s = self
            .stream(num, DATA, &[])?
            .ok_or_else(|| Error::Invalid(format!("record {num} has no data")))?;
        for (off, data) in pieces {
            self.write_stream_data(&mut s, *off, data)?;
        }
        Ok(())
    }

    /// Grow or shrink a file to `len` bytes (new bytes read as zero).
    ///
    /// # Errors
    /// As [`Volume::write_at`].
    pub fn set_len(&mut self, path: &str, len: u64) -> Result<()> {
        let num = self.lookup(path)?;
        self.tx(|v| v.set_stream_len(num, DATA, &[], len, Grow::default()))
    }

    /// Replace a file's contents (creating the file if it does not exist).
    ///
    /// # Errors
    /// As [`Volume::write_at`] and [`Volume::create_file`].
    pub fn write_file(&mut self, path: &str, data: &[u8]) -> Result<()> {
        self.tx(|v| {
            let num = match v.lookup(path) {
                Ok(n) => n,
                Err(Error::NotFound { .. }) => v.create(path, false)?,
                Err(e) => return Err(e),
            };
            v.set_stream_len(num, DATA, &[], data.len() as u64, Grow::default())?;
            let mut s = v
                .stream(num, DATA, &[])?
                .ok_or_else(|| Error::Invalid(format!("{path} has no data")))?;
            v.write_stream_data(&mut s, 0, data)
        })
    }

    /// Replace a file's contents (creating the file if it does not exist) with `len` bytes read
    /// from `reader`, in bounded memory: the data is read and written in 1 MiB chunks.
    ///
    /// Data too large to stay resident goes into freshly allocated clusters (the file's old
    /// clusters are freed first, and zeroed as every freed cluster is). When the device has
    /// savepoints (a journal, and every reseal image or partition over one) the chunks are written straight
    /// to it, so memory is bounded by the chunk, the journal's spill bound and the metadata;
    /// only the MFT record, the index and `$Bitmap` go through the operation's overlay. The
    /// operation stays all-or-nothing: on any error (the reader's included) the savepoint takes
    /// the data back and the overlay is dropped. Without savepoints the data is staged in the
    /// overlay as [`Volume::write_file`] does.
    ///
    /// # Errors
    /// [`Error::Source`] when `reader` fails or ends before `len` bytes; as
    /// [`Volume::write_file`] otherwise. Nothing is written on error.
    pub fn write_file_from(
        &mut self,
        path: &str,
        reader: &mut dyn std::io::Read,
        len: u64,
    ) -> Result<()> {
        self.tx(|v| {
            let num = match v.lookup(path) {
                Ok(n) => n,
                Err(Error::NotFound { .. }) => v.create(path, false)?,
                Err(e) => return Err(e),
            };
            if v.read_record(num)?.find(INDEX_ROOT, &i30())?.is_some() {
                return Err(Error::Invalid(format!("{path} is a directory")));
            }
            // Start from an empty stream: the new data gets clusters of its own (no sparse or
            // shared runs to respect), the old ones are freed.
            v.set_stream_len(num, DATA, &[], 0, Grow::default())?;
            v.set_stream_len(num, DATA, &[], len, Grow::default())?;
            let mut s = v
                .stream(num, DATA, &[])?
                .ok_or_else(|| Error::Invalid(format!("{path} has no data")))?;
            let src = |off: u64, source| Error::Source {
                path: path.to_string(),
                offset: off,
                source,
            };
            if s.resident {
                let n = usize::try_from(len)
                    .map_err(|_| Error::Invalid(format!("{path}: {len} bytes")))?;
                let mut buf = vec![0u8; n];
                reader.read_exact(&mut buf).map_err(|e| src(0, e))?;
                return v.write_stream_data(&mut s, 0, &buf);
            }
            v.stream_into_runs(&mut s, reader, len)
                .map_err(|e| match e {
                    Error::Source { offset, source, .. } => src(offset, source),
                    e => e,
                })
        })
    }

    /// Create an empty file. Returns its record number.
    ///
    /// # Errors
    /// [`Error::AlreadyExists`], [`Error::NotFound`] (parent), [`Error::InvalidName`] (a name Windows cannot open, see [`crate::name_rules`]),
    /// [`Error::NoSpace`], [`Error::Unsupported`].
    pub fn create_file(&mut self, path: &str) -> Result<u64> {
        self.tx(|v| v.create(path, false))
    }

    /// Create an empty directory. Returns its record number.
    ///
    /// # Errors
    /// As [`Volume::create_file`].
    pub fn create_dir(&mut self, path: &str) -> Result<u64> {
        self.tx(|v| v.create(path, true))
    }

    /// Where the descriptor a new entry in directory `parent` gets is kept: the one Windows
    /// computes from the parent's inheritable ACEs ([`reseal_security::inherit`]), shared in
    /// `$Secure` with an identical existing entry (found through `$SDH`) or appended there. A
    /// parent without descriptor inherits from an empty one (owner BUILTIN\Administrators, group
    /// SYSTEM, the default DACL). When `$Secure` cannot take a new entry (no `$SDS` on an NTFS
    /// 1.x volume, or a `$Secure` record too full for its indexes to grow, which would need an
    /// attribute list) the descriptor goes into the new file's own legacy
    /// `$SECURITY_DESCRIPTOR` attribute instead, which Windows and ntfs-3g read when the
    /// security id is 0.
    fn inherited_security(&mut self, parent: u64, path: &str, dir: bool) -> Result<NewSecurity> {
        let e = |source| Error::Security {
            path: format!("the parent directory of {path}"),
            source,
        };
        let parent_sd = match self.descriptor_of(parent)? {
            Some(b) => reseal_security::SecurityDescriptor::parse(&b).map_err(e)?,
            None => reseal_security::SecurityDescriptor::default(),
        };
        let child = reseal_security::inherit::inherit(&parent_sd, dir)
            .to_canonical_bytes()
            .map_err(e)?;
        let sds: Vec<u16> = "$SDS".encode_utf16().collect();
        if self.stream(crate::volume::SECURE, DATA, &sds)?.is_none() {
            return Ok(NewSecurity::Legacy(child));
        }
        match self.attempt(|v| v.find_or_add_sd(&child)) {
            Ok(id) => Ok(NewSecurity::Shared(id)),
            Err(Error::Unsupported { .. }) => Ok(NewSecurity::Legacy(child)),
            Err(e) => Err(e),
        }
    }

    pub(crate) fn create(&mut self, path: &str, dir: bool) -> Result<u64> {
        let (parent, name) = self.parent_and_name(path)?;
        let uname = check_name(&name)?;
        if self.exact_in_dir(parent, &uname)?.is_some() {
            return Err(Error::AlreadyExists {
                path: path.to_string(),
            });
        }
        let security = self.inherited_security(parent, path, dir)?;
        let sec = match security {
            NewSecurity::Shared(id) => id,
            NewSecurity::Legacy(_) => 0,
        };
        let parent_ref = self.read_record(parent)?.reference();
        let mut r = self.alloc_record(if dir { record::FLAG_DIRECTORY } else { 0 })?;
        let t = now_filetime();
        let si = StandardInformation::new(t, if dir { 0 } else { FILE_ATTR_ARCHIVE }, sec);
        r.insert_attr(
            attribute::build_resident(STANDARD_INFORMATION, &[], si.as_bytes(), 0),
            None,
        )?;
        let fnv = file_name::build(
            parent_ref,
            t,
            0,
            0,
            if dir { FN_DIRECTORY } else { FILE_ATTR_ARCHIVE },
            &uname,
            NAMESPACE_POSIX,
        );
        r.insert_attr(attribute::build_resident(FILE_NAME, &[], &fnv, 1), None)?;
        if let NewSecurity::Legacy(sd) = &security {
            r.insert_attr(
                attribute::build_resident(attribute::SECURITY_DESCRIPTOR, &[], sd, 0),
                None,
            )?;
        }
        if dir {
            let bs = self.boot.index_block_size;
            let cpb = if self.cs() <= u64::from(bs) {
                bs / self.boot.cluster_size
            } else {
                bs / 512
            };
            let info = crate::index::RootInfo {
                indexed_type: FILE_NAME,
                collation: 1, // COLLATION_FILE_NAME
                block_size: bs,
                clusters_per_block: cpb as u8,
            };
            let root = crate::index::root_value(&info, &[], None);
            r.insert_attr(
                attribute::build_resident(INDEX_ROOT, &i30(), &root, 0),
                None,
            )?;
        } else {
            r.insert_attr(attribute::build_resident(DATA, &[], &[], 0), None)?;
        }
        let num = r.num;
        let fref = r.reference();
        self.write_record(&mut r)?;
        self.index_insert_name(parent, fref, &fnv)?;
        Ok(num)
    }

    fn exact_in_dir(&self, dir: u64, name: &[u16]) -> Result<Option<u64>> {
        let key = file_name::build(0, 0, 0, 0, 0, name, NAMESPACE_POSIX);
        let up = self.upcase.clone();
        let cmp = move |a: &[u8], b: &[u8]| fn_cmp(&up, a, b);
        Ok(self
            .index_find(dir, &i30(), &key, &cmp)?
            .as_deref()
            .and_then(IndexEntryHeader::view)
            .map(IndexEntryHeader::file_record))
    }

    fn index_insert_name(&mut self, dir: u64, fref: u64, fnv: &[u8]) -> Result<()> {
        let len = (index_layout::ENTRY_HEADER_LEN + fnv.len() + 7) & !7;
        let h = IndexEntryHeader {
            indexed: fref.into(),
            length: (len as u16).into(),
            key_length: (fnv.len() as u16).into(),
            flags: 0.into(),
            reserved: 0.into(),
        };
        let mut e = Vec::with_capacity(len);
        e.extend_from_slice(h.as_bytes());
        e.extend_from_slice(fnv);
        e.resize(len, 0);
        let up = self.upcase.clone();
        let cmp = move |a: &[u8], b: &[u8]| fn_cmp(&up, a, b);
        if !self.index_insert(dir, &i30(), &e, &cmp)? {
            return Err(Error::AlreadyExists {
                path: String::from_utf16_lossy(&file_name::name(fnv).unwrap_or_default().0),
            });
        }
        Ok(())
    }

    /// Remove the `$I30` entries of `dir` for record `r` (keys from its `$FILE_NAME`s).
    fn index_remove_record(&mut self, dir: u64, r: &record::Record) -> Result<()> {
        let up = self.upcase.clone();
        let cmp = move |a: &[u8], b: &[u8]| fn_cmp(&up, a, b);
        let mut removed = false;
        for a in r.attrs()? {
            if a.ty == FILE_NAME
                && !a.nonres
                && FileName::view(r.value(&a)).is_some_and(|h| h.parent_record() == dir)
            {
                let key = r.value(&a).to_vec();
                removed |= self.index_remove(dir, &i30(), &key, &cmp)?;
            }
        }
        if removed {
            return Ok(());
        }
        // Fall back to a scan by record number.
        let num = r.num;
        let (_, mut ents) = self.read_index(dir, &i30())?;
        let before = ents.len();
        ents.retain(|e| IndexEntryHeader::view(e).is_none_or(|h| h.file_record() != num));
        if ents.len() == before {
            return Err(Error::corrupt(
                "$I30 index",
                Some(dir),
                Offset::Whole,
                format!("no entry for record {num}"),
            ));
        }
        self.write_index(dir, &i30(), &ents)
    }

    /// Delete a file or an empty directory: remove its names from the parent index, free its
    /// clusters and its MFT record (sequence number bumped).
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Invalid`] for a non-empty directory or the root;
    /// [`Error::Unsupported`] for files with an attribute list or hard links in several
    /// directories.
    pub fn remove(&mut self, path: &str) -> Result<()> {
        self.tx(|v| {
            let num = v.lookup(path)?;
            if num < 24 {
                return Err(Error::Invalid(format!(
                    "refusing to delete system record {num}"
                )));
            }
            let r = v.read_record(num)?;
            if r.find(attribute::ATTRIBUTE_LIST, &[])?.is_some() {
                return Err(Error::unsupported(
                    Some(num),
                    "deleting a file with an attribute list",
                ));
            }
            if r.find(INDEX_ROOT, &i30())?.is_some() && !v.read_index(num, &i30())?.1.is_empty() {
                return Err(Error::Invalid(format!("directory {path} is not empty")));
            }
            let parents = file_name_parents(&r)?;
            if parents.len() != 1 {
                return Err(Error::unsupported(
                    Some(num),
                    "deleting a file with hard links in several directories",
                ));
            }
            v.index_remove_record(parents[0], &r)?;
            let mut ext = Vec::new();
            for a in r.attrs()? {
                if a.nonres {
                    for run in a.runs(&r.buf, num)? {
                        if let Some(l) = run.lcn {
                            ext.push((l, run.len));
                        }
                    }
                }
            }
            v.free_clusters(&ext)?;
            v.free_record(r)
        })
    }

    /// Remove every file and directory under `path` (deepest first), then `path` itself.
    ///
    /// # Errors
    /// As [`Volume::remove`].
    pub fn remove_all(&mut self, path: &str) -> Result<()> {
        self.tx(|v| {
            let num = v.lookup(path)?;
            if v.read_record(num)?.find(INDEX_ROOT, &i30())?.is_some() {
                for e in v.read_dir(path)? {
                    let child = format!("{}/{}", path.trim_end_matches(['/', '\\']), e.name);
                    v.remove_all(&child)?;
                }
            }
            v.remove(path)
        })
    }

    /// Rename and/or move a file or directory. The target must not exist. The new name is
    /// stored in the POSIX namespace (a DOS short name, if any, is dropped).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::AlreadyExists`], [`Error::InvalidName`] (see
    /// [`crate::name_rules`]), [`Error::Invalid`] (moving a directory
    /// into itself), [`Error::Unsupported`] (attribute list, hard links).
    pub fn rename(&mut self, from: &str, to: &str) -> Result<()> {
        self.tx(|v| {
            let num = v.lookup(from)?;
            if num < 24 {
                return Err(Error::Invalid(format!(
                    "refusing to rename system record {num}"
                )));
            }
            let (new_parent, name) = v.parent_and_name(to)?;
            let uname = check_name(&name)?;
            if let Some(x) = v.exact_in_dir(new_parent, &uname)? {
                if x != num {
                    return Err(Error::AlreadyExists {
                        path: to.to_string(),
                    });
                }
            }
            // A directory must not move below itself.
            let mut p = new_parent;
            for _ in 0..1024 {
                if p == num {
                    return Err(Error::Invalid(format!("cannot move {from} into itself")));
                }
                if p == ROOT {
                    break;
                }
                let pr = v.read_record(p)?;
                p = *file_name_parents(&pr)?.first().unwrap_or(&ROOT);
            }
            let mut r = v.read_record(num)?;
            if r.find(attribute::ATTRIBUTE_LIST, &[])?.is_some() {
                return Err(Error::unsupported(
                    Some(num),
                    "renaming a file with an attribute list",
                ));
            }
            let parents = file_name_parents(&r)?;
            if parents.len() != 1 {
                return Err(Error::unsupported(
                    Some(num),
                    "renaming a file with hard links in several directories",
                ));
            }
            v.index_remove_record(parents[0], &r)?;
            let keep = primary_file_name(&r)?.ok_or_else(|| {
                Error::corrupt("$FILE_NAME", Some(num), Offset::Whole, "no file name")
            })?;
            let fns: Vec<_> = r
                .attrs()?
                .into_iter()
                .filter(|a| a.ty == FILE_NAME)
                .collect();
            let old = FileName::view(r.value(&keep)).ok_or_else(|| {
                Error::corrupt(
                    "$FILE_NAME",
                    Some(num),
                    Offset::Record(keep.off as u64),
                    "shorter than its header",
                )
            })?;
            let newp_ref = v.read_record(new_parent)?.reference();
            let mut fnv = file_name::build(
                newp_ref,
                old.creation_time.get(),
                old.allocated_size.get(),
                old.data_size.get(),
                old.file_attributes.get(),
                &uname,
                NAMESPACE_POSIX,
            );
            if let Some(h) = FileName::view_mut(&mut fnv) {
                h.last_data_change_time = old.last_data_change_time;
                h.last_mft_change_time = old.last_mft_change_time;
                h.last_access_time = old.last_access_time;
            }
            for a in fns.iter().rev() {
                r.remove_attr(a.off, a.len)?;
            }
            r.insert_attr(
                attribute::build_resident(FILE_NAME, &[], &fnv, 1),
                Some(keep.instance),
            )?;
            if let Some(h) = FileRecordHeader::view_mut(&mut r.buf) {
                h.hard_link_count = 1.into();
            }
            v.write_record(&mut r)?;
            v.index_insert_name(new_parent, r.reference(), &fnv)
        })
    }
}

/// Where a new entry's descriptor goes (see `Volume::inherited_security`).
enum NewSecurity {
    /// This `$Secure` id.
    Shared(u32),
    /// These bytes, in the entry's own `$SECURITY_DESCRIPTOR` attribute.
    Legacy(Vec<u8>),
}

fn file_name_parents(r: &record::Record) -> Result<Vec<u64>> {
    let mut ps = Vec::new();
    for a in r.attrs()? {
        if a.ty != FILE_NAME || a.nonres {
            continue;
        }
        if let Some(h) = FileName::view(r.value(&a)) {
            let p = h.parent_record();
            if !ps.contains(&p) {
                ps.push(p);
            }
        }
    }
    Ok(ps)
}

/// COLLATION_FILE_NAME over two `$FILE_NAME` keys.
pub(crate) fn fn_cmp(up: &crate::upcase::UpCase, a: &[u8], b: &[u8]) -> Ordering {
    match (file_name::name(a), file_name::name(b)) {
        (Some((x, _)), Some((y, _))) => up.collate(&x, &y),
        (x, y) => x.is_some().cmp(&y.is_some()),
    }
}
