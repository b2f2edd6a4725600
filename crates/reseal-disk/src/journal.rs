//! The write journal: a copy-on-write layer over a device, committed atomically through an undo
//! file.
//!
//! [`Journal`] stages every write (an extent map); reads see the staged bytes over the base.
//! Staged bytes are held in memory up to a bound ([`DEFAULT_SPILL_LIMIT`], 64 MiB, set with
//! [`Journal::with_spill_limit`]); beyond it they go to an anonymous spill file in the image's
//! journal directory, so staging a multi-gigabyte change needs bounded memory. Nothing reaches
//! the base until [`Journal::commit`], which:
//! 1. writes an *undo file* (original length, and for every changed range the original bytes and
//!    CRC-32C of the original and new bytes) to `NNNNNN.undo.tmp` in one pass through a 1 MiB
//!    buffer (a record's 32-byte header, which holds the checksum of its bytes, is filled in
//!    after them), fsyncs it, renames it to `NNNNNN.undo` and fsyncs the directory (so an
//!    `.undo` file is always complete);
//! 2. applies the writes to the base, grows it if needed, flushes (fsync);
//! 3. marks the undo file COMPLETE in place and fsyncs it.
//!
//! After a crash anywhere in this sequence, [`recover`] leaves the image wholly old (an
//! IN_PROGRESS undo is rolled back; a `.tmp` undo means the image was never touched) or wholly new
//! (the undo is COMPLETE). [`undo`] reverts the newest COMPLETE operation after checking that the
//! image still holds exactly the bytes that operation wrote.
//!
//! Undo files of an image live in the sidecar directory `<image>.reseal-journal/`, numbered
//! `000001.undo`, `000002.undo`, … (a stack: [`undo`] pops the newest).
//!
//! # Undo file format (little-endian)
//! - header (64 bytes): `RSLUNDO\x01`, u32 version = 1, u32 state (1 IN_PROGRESS, 2 COMPLETE,
//!   3 ROLLED_BACK, 4 REVERTING), u64 original length, u64 new length, u64 record count,
//!   u32 CRC-32C of bytes 0..12 and 16..40 (the state is excluded: it is updated in place), zeros;
//! - records: u64 offset, u64 length, u64 stored length (bytes of the range below the original
//!   end; the rest was past the end and is restored by truncation), u32 CRC-32C of the stored
//!   original bytes, u32 CRC-32C of the new bytes, then the stored original bytes;
//! - trailer (24 bytes): `RSLUEND\x01`, u64 record count, u32 CRC-32C of all record bytes, u32 0.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io::Write as _;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::raw::HostFile;
use crate::{check_bounds, Device, Error, Result};

const MAGIC: &[u8; 8] = b"RSLUNDO\x01";
const TRAILER_MAGIC: &[u8; 8] = b"RSLUEND\x01";
const HEADER_LEN: u64 = 64;
const RECORD_HEADER_LEN: u64 = 32;
const TRAILER_LEN: u64 = 24;
const STATE_OFFSET: u64 = 12;
const CHUNK: u64 = 1 << 20;

/// State of an undo file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UndoState {
    /// Written, the image may be partly updated: recovery rolls it back.
    InProgress,
    /// The operation completed; [`undo`] can revert it.
    Complete,
    /// Recovery restored the original bytes (the file is then deleted).
    RolledBack,
    /// [`undo`] started restoring the original bytes; recovery finishes it.
    Reverting,
}

impl UndoState {
    fn code(self) -> u32 {
        match self {
            UndoState::InProgress => 1,
            UndoState::Complete => 2,
            UndoState::RolledBack => 3,
            UndoState::Reverting => 4,
        }
    }
    fn from_code(c: u32) -> Option<Self> {
        Some(match c {
            1 => UndoState::InProgress,
            2 => UndoState::Complete,
            3 => UndoState::RolledBack,
            4 => UndoState::Reverting,
            _ => return None,
        })
    }
}

/// What a commit did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitReport {
    /// The undo file written (empty path if there was nothing to commit).
    pub undo_path: PathBuf,
    /// Number of changed ranges.
    pub ranges: usize,
    /// Number of changed bytes.
    pub bytes: u64,
    /// Base length before.
    pub old_len: u64,
    /// Base length after.
    pub new_len: u64,
    /// Number of durable steps (writes, fsyncs, renames) the commit performed; a fault-injection
    /// test crashes after each `k` in `0..steps`.
    pub steps: usize,
}

/// Counts durable steps and fails after a given number (crash simulation).
#[derive(Debug)]
struct Faults {
    fail_after: Option<usize>,
    done: usize,
}

impl Faults {
    /// Account one step; error if the crash point is reached (the step is not performed).
    fn step(&mut self) -> Result<()> {
        if let Some(k) = self.fail_after {
            if self.done >= k {
                return Err(Error::Io {
                    path: None,
                    source: std::io::Error::other(format!("injected fault after {k} steps")),
                });
            }
        }
        self.done += 1;
        Ok(())
    }
    /// True if the next step will fail.
    fn will_fail(&self) -> bool {
        self.fail_after.is_some_and(|k| self.done >= k)
    }
}

/// Default bound on the staged bytes a [`Journal`] keeps in memory (64 MiB); beyond it staged
/// data goes to a spill file ([`Journal::with_spill_limit`]).
pub const DEFAULT_SPILL_LIMIT: u64 = 64 << 20;

/// Where the bytes of one staged extent are.
#[derive(Debug)]
enum Bytes {
    /// In memory.
    Ram(Vec<u8>),
    /// In the spill file, from this file offset on.
    Spill(u64),
}

/// One staged write (or several merged): `len` bytes starting at its key in the extent map.
#[derive(Debug)]
struct Extent {
    len: u64,
    bytes: Bytes,
}

/// The spill file: an anonymous temporary file (unlinked as soon as it is created, so it has no
/// name a crash could leave behind and recovery could mistake for its own), appended to.
#[derive(Debug)]
struct Spill {
    file: File,
    /// Bytes written so far (the append position).
    len: u64,
    /// Where it was created (for error messages).
    dir: PathBuf,
}

impl Spill {
    fn read(&self, at: u64, buf: &mut [u8]) -> Result<()> {
        self.file
            .read_exact_at(buf, at)
            .map_err(|e| Error::io(self.dir.join("(reseal spill file)"), e))
    }
    fn write(&mut self, at: u64, buf: &[u8]) -> Result<()> {
        self.file
            .write_all_at(buf, at)
            .map_err(|e| Error::io(self.dir.join("(reseal spill file)"), e))?;
        self.len = self.len.max(at + buf.len() as u64);
        Ok(())
    }
}

/// A copy-on-write layer over `D`. See the module documentation.
///
/// Staged bytes are kept in memory up to a bound ([`DEFAULT_SPILL_LIMIT`],
/// [`Journal::with_spill_limit`]); staged data beyond it goes to a spill file created in the
/// spill directory ([`Journal::with_spill_dir`]; the system temporary directory if none was
/// set). The extent map itself (offset → memory buffer or spill-file offset) stays in memory.
#[derive(Debug)]
pub struct Journal<D: Device> {
    base: D,
    staged: BTreeMap<u64, Extent>,
    len: u64,
    /// Bytes held by `Bytes::Ram` extents.
    ram: u64,
    spill_limit: u64,
    spill_dir: Option<PathBuf>,
    spill: Option<Spill>,
    /// Open savepoints, outermost first (see [`Journal::savepoint`]).
    savepoints: Vec<SavepointLog>,
    /// Bytes held in memory by the savepoints' prior states (bounded with `ram`).
    log_ram: u64,
}

/// What a staged range held before a write made while a savepoint was open.
#[derive(Debug)]
struct Prior {
    start: u64,
    len: u64,
    /// The staged bytes it held, or `None` where nothing was staged (the base showed through).
    bytes: Option<Bytes>,
}

/// One open savepoint: the device length when it was opened and, in write order, the prior
/// state of every range written since.
#[derive(Debug)]
struct SavepointLog {
    len: u64,
    priors: Vec<Prior>,
}

impl<D: Device> Journal<D> {
    /// A journal with nothing staged.
    pub fn new(base: D) -> Self {
        let len = base.len();
        Self {
            base,
            staged: BTreeMap::new(),
            len,
            ram: 0,
            spill_limit: DEFAULT_SPILL_LIMIT,
            spill_dir: None,
            spill: None,
            savepoints: Vec::new(),
            log_ram: 0,
        }
    }

    /// Keep at most `bytes` of staged data in memory; the rest goes to the spill file.
    /// Applies to later writes.
    #[must_use]
    pub fn with_spill_limit(mut self, bytes: u64) -> Self {
        self.spill_limit = bytes;
        self
    }

    /// Create the spill file (when one is needed) in `dir`, made if missing: for an image, its
    /// sidecar journal directory ([`journal_dir`]), so the staged data is on the same file
    /// system as the image and its undo files. Without it, the system temporary directory
    /// ([`std::env::temp_dir`], `$TMPDIR`) is used. The file is anonymous (`O_TMPFILE`, or
    /// unlinked right after it is made), so it disappears with the journal, on commit, on
    /// [`Journal::discard`] and in a crash.
    #[must_use]
    pub fn with_spill_dir(mut self, dir: PathBuf) -> Self {
        self.spill_dir = Some(dir);
        self
    }

    /// The bound on staged bytes held in memory.
    pub fn spill_limit(&self) -> u64 {
        self.spill_limit
    }

    /// Staged bytes held in memory (with the prior bytes open savepoints keep), and bytes
    /// written to the spill file (overwritten spilled bytes included).
    pub fn staged_bytes(&self) -> (u64, u64) {
        (
            self.ram + self.log_ram,
            self.spill.as_ref().map_or(0, |s| s.len),
        )
    }

    /// The base device (without staged writes).
    pub fn base(&self) -> &D {
        &self.base
    }

    /// Unwrap, dropping staged writes.
    pub fn into_base(self) -> D {
        self.base
    }

    /// True if anything is staged.
    pub fn is_modified(&self) -> bool {
        !self.staged.is_empty() || self.len != self.base.len()
    }

    /// Drop every staged write (and the spill file).
    pub fn discard(&mut self) {
        self.staged.clear();
        self.savepoints.clear();
        self.log_ram = 0;
        self.ram = 0;
        self.spill = None;
        self.len = self.base.len();
    }

    /// The changed byte ranges, sorted and disjoint (growth of the device included).
    pub fn changes(&self) -> Vec<Range<u64>> {
        let mut out: Vec<Range<u64>> = Vec::new();
        let mut push = |r: Range<u64>| {
            if let Some(last) = out.last_mut() {
                if r.start <= last.end {
                    last.end = last.end.max(r.end);
                    return;
                }
            }
            out.push(r);
        };
        let base_len = self.base.len();
        let mut growth_done = self.len <= base_len;
        for (&s, e) in &self.staged {
            if !growth_done && base_len <= s {
                push(base_len..self.len);
                growth_done = true;
            }
            push(s..s + e.len);
        }
        if !growth_done {
            push(base_len..self.len);
        }
        out
    }

    fn spill_file(&mut self) -> Result<&mut Spill> {
        if let Some(s) = self.spill.take() {
            return Ok(self.spill.insert(s));
        }
        let dir = self.spill_dir.clone().unwrap_or_else(std::env::temp_dir);
        // The sidecar directory may not exist before the first commit.
        let made = fs::create_dir_all(&dir);
        let file = made
            .and_then(|()| tempfile::tempfile_in(&dir))
            .map_err(|e| {
                Error::io(
                    &dir,
                    std::io::Error::new(
                        e.kind(),
                        format!("creating the journal's spill file: {e}"),
                    ),
                )
            })?;
        Ok(self.spill.insert(Spill { file, len: 0, dir }))
    }

    fn stage(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        use std::ops::Bound::Excluded;
        if data.is_empty() {
            return Ok(());
        }
        let dlen = data.len() as u64;
        let end = offset.checked_add(dlen).ok_or(Error::OutOfBounds {
            offset,
            len: dlen,
            size: self.len,
        })?;
        if !self.savepoints.is_empty() {
            self.record_prior(offset, end)?;
        }
        // Common case: inside or appending to the one extent that starts at or before `offset`.
        let prev = self
            .staged
            .range(..=offset)
            .next_back()
            .map(|(k, e)| (*k, *k + e.len))
            .filter(|(_, e_end)| *e_end >= offset);
        if let Some((k, e_end)) = prev {
            let alone = self
                .staged
                .range((Excluded(k), Excluded(end)))
                .next()
                .is_none();
            let grow = end.saturating_sub(e_end);
            if alone {
                let (ram, limit) = (self.ram + self.log_ram, self.spill_limit);
                let spill_end = self.spill.as_ref().map_or(0, |s| s.len);
                let Some(ext) = self.staged.get_mut(&k) else {
                    return Err(inconsistent(k, "staged extent vanished"));
                };
                match &mut ext.bytes {
                    Bytes::Ram(v) if grow == 0 || ram + grow <= limit => {
                        let need = usize::try_from(end - k)
                            .map_err(|_| Error::unsupported("journal", offset, "too large"))?;
                        if v.capacity() < need {
                            // Grow geometrically (appends stay amortised O(1)), but never past
                            // what the bound still allows, so memory stays near `ram`.
                            let room = usize::try_from(limit.saturating_sub(ram + grow))
                                .unwrap_or(usize::MAX);
                            let extra = (need - v.len()).max(v.len().min(room));
                            v.reserve_exact(extra);
                        }
                        if v.len() < need {
                            v.resize(need, 0);
                        }
                        let at = (offset - k) as usize;
                        v[at..at + data.len()].copy_from_slice(data);
                        ext.len = ext.len.max(end - k);
                        self.ram += grow;
                        self.len = self.len.max(end);
                        return Ok(());
                    }
                    Bytes::Spill(at) if grow == 0 || *at + ext.len == spill_end => {
                        let pos = *at + (offset - k);
                        ext.len = ext.len.max(end - k);
                        self.spill
                            .as_mut()
                            .ok_or_else(|| inconsistent(k, NO_SPILL))?
                            .write(pos, data)?;
                        self.len = self.len.max(end);
                        return Ok(());
                    }
                    _ => {}
                }
            }
        }
        // General case: cut the overlapped parts out of the extents under the write, then add
        // the write as an extent of its own.
        self.cut(offset, end)?;
        let bytes = if self.ram + self.log_ram + dlen <= self.spill_limit {
            self.ram += dlen;
            Bytes::Ram(data.to_vec())
        } else {
            let s = self.spill_file()?;
            let at = s.len;
            s.write(at, data)?;
            Bytes::Spill(at)
        };
        self.staged.insert(offset, Extent { len: dlen, bytes });
        self.len = self.len.max(end);
        Ok(())
    }

    /// Remove the staged bytes of `offset..end` (the extents under it are trimmed or split).
    fn cut(&mut self, offset: u64, end: u64) -> Result<()> {
        let prev = self
            .staged
            .range(..offset)
            .next_back()
            .map(|(k, e)| (*k, *k + e.len));
        let mut keys: Vec<u64> = self.staged.range(offset..end).map(|(k, _)| *k).collect();
        if let Some((k, e_end)) = prev {
            if k < offset && e_end > offset {
                keys.push(k);
            }
        }
        for k in keys {
            let ext = self
                .staged
                .remove(&k)
                .ok_or_else(|| inconsistent(k, "staged extent vanished"))?;
            let e_end = k + ext.len;
            let left = offset.saturating_sub(k).min(ext.len);
            let right = e_end.saturating_sub(end).min(ext.len);
            match ext.bytes {
                Bytes::Ram(mut v) => {
                    self.ram -= ext.len - left - right;
                    if right > 0 {
                        let r = v.split_off((ext.len - right) as usize);
                        self.staged.insert(
                            end,
                            Extent {
                                len: right,
                                bytes: Bytes::Ram(r),
                            },
                        );
                    }
                    if left > 0 {
                        v.truncate(left as usize);
                        v.shrink_to_fit();
                        self.staged.insert(
                            k,
                            Extent {
                                len: left,
                                bytes: Bytes::Ram(v),
                            },
                        );
                    }
                }
                Bytes::Spill(at) => {
                    if right > 0 {
                        self.staged.insert(
                            end,
                            Extent {
                                len: right,
                                bytes: Bytes::Spill(at + (ext.len - right)),
                            },
                        );
                    }
                    if left > 0 {
                        self.staged.insert(
                            k,
                            Extent {
                                len: left,
                                bytes: Bytes::Spill(at),
                            },
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Remember what `offset..end` holds now (staged bytes, or nothing staged), for the
    /// innermost open savepoint. Prior bytes are kept in memory within the spill bound, else
    /// appended to the spill file.
    fn record_prior(&mut self, offset: u64, end: u64) -> Result<()> {
        let mut spans: Vec<(u64, u64, bool)> = Vec::new();
        let mut pos = offset;
        let first = self
            .staged
            .range(..offset)
            .next_back()
            .map(|(k, e)| (*k, e.len))
            .filter(|(k, l)| k + l > offset);
        let rest = self.staged.range(offset..end).map(|(k, e)| (*k, e.len));
        for (k, l) in first.into_iter().chain(rest) {
            let lo = k.max(offset);
            let hi = (k + l).min(end);
            if lo >= hi {
                continue;
            }
            if pos < lo {
                spans.push((pos, lo - pos, false));
            }
            spans.push((lo, hi - lo, true));
            pos = hi;
        }
        if pos < end {
            spans.push((pos, end - pos, false));
        }
        let mut priors = Vec::with_capacity(spans.len());
        for (start, len, staged) in spans {
            let bytes = if !staged {
                None
            } else if self.ram + self.log_ram + len <= self.spill_limit {
                let n = usize::try_from(len)
                    .map_err(|_| Error::unsupported("journal", start, "too large"))?;
                let mut v = vec![0u8; n];
                self.read_at(start, &mut v)?;
                self.log_ram += len;
                Some(Bytes::Ram(v))
            } else {
                let at = self.spill_file()?.len;
                let mut buf = vec![0u8; CHUNK.min(len) as usize];
                let mut done = 0u64;
                while done < len {
                    let n = (len - done).min(CHUNK) as usize;
                    self.read_at(start + done, &mut buf[..n])?;
                    self.spill_file()?.write(at + done, &buf[..n])?;
                    done += n as u64;
                }
                Some(Bytes::Spill(at))
            };
            priors.push(Prior { start, len, bytes });
        }
        let Some(log) = self.savepoints.last_mut() else {
            return Ok(());
        };
        log.priors.extend(priors);
        Ok(())
    }

    /// Open a savepoint: every later write (and growth) can be taken back exactly with
    /// [`Journal::rollback_savepoint`], or kept with [`Journal::release_savepoint`]. Savepoints
    /// nest. While one is open, each write first records what the range held (staged bytes
    /// are copied, within the spill bound in memory, else to the spill file; an unstaged range
    /// costs only its bounds), so writing fresh ranges stays cheap. A commit or a discard drops
    /// every open savepoint.
    pub fn savepoint(&mut self) {
        self.savepoints.push(SavepointLog {
            len: self.len,
            priors: Vec::new(),
        });
    }

    /// Take back every write made since the innermost open savepoint, and close it.
    ///
    /// # Errors
    /// [`Error::Unsupported`] when no savepoint is open; a broken staging invariant.
    pub fn rollback_savepoint(&mut self) -> Result<()> {
        let log = self
            .savepoints
            .pop()
            .ok_or_else(|| Error::unsupported("journal", 0, "rollback without a savepoint"))?;
        for p in log.priors.into_iter().rev() {
            self.cut(p.start, p.start + p.len)?;
            if let Some(bytes) = p.bytes {
                if matches!(bytes, Bytes::Ram(_)) {
                    self.log_ram -= p.len;
                    self.ram += p.len;
                }
                self.staged.insert(p.start, Extent { len: p.len, bytes });
            }
        }
        self.len = log.len;
        Ok(())
    }

    /// Keep the writes made since the innermost open savepoint, and close it (an outer
    /// savepoint can still take them back).
    ///
    /// # Errors
    /// [`Error::Unsupported`] when no savepoint is open.
    pub fn release_savepoint(&mut self) -> Result<()> {
        let log = self
            .savepoints
            .pop()
            .ok_or_else(|| Error::unsupported("journal", 0, "release without a savepoint"))?;
        if let Some(outer) = self.savepoints.last_mut() {
            outer.priors.extend(log.priors);
        } else {
            for p in log.priors {
                if matches!(p.bytes, Some(Bytes::Ram(_))) {
                    self.log_ram -= p.len;
                }
            }
        }
        Ok(())
    }

    /// Number of open savepoints.
    pub fn savepoints(&self) -> usize {
        self.savepoints.len()
    }

    /// Copy the first `len` staged bytes of `ext` to the base at `off` (streamed through a
    /// bounded buffer for spilled extents).
    fn apply_extent(
        base: &mut D,
        spill: Option<&Spill>,
        off: u64,
        ext: &Extent,
        len: u64,
    ) -> Result<()> {
        match &ext.bytes {
            Bytes::Ram(v) => base.write_at(off, &v[..len as usize]),
            Bytes::Spill(at) => {
                let spill = spill.ok_or_else(|| inconsistent(off, NO_SPILL))?;
                let mut buf = vec![0u8; CHUNK.min(len) as usize];
                let mut pos = 0u64;
                while pos < len {
                    let n = (len - pos).min(CHUNK) as usize;
                    spill.read(at + pos, &mut buf[..n])?;
                    base.write_at(off + pos, &buf[..n])?;
                    pos += n as u64;
                }
                Ok(())
            }
        }
    }

    /// Compute the CRC-32C of `range` as this journal (base + staged) reads it.
    fn crc_of(&self, range: Range<u64>) -> Result<u32> {
        let mut crc = 0u32;
        let mut pos = range.start;
        let mut buf = vec![0u8; CHUNK.min(range.end - range.start) as usize];
        while pos < range.end {
            let n = (range.end - pos).min(CHUNK) as usize;
            self.read_at(pos, &mut buf[..n])?;
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            pos += n as u64;
        }
        Ok(crc)
    }

    /// Commit the staged writes to the base, writing the undo file `undo` first.
    ///
    /// # Errors
    /// I/O errors; the base is then partly updated and [`recover`] (run by the next writable
    /// [`crate::image::Image::open`]) restores it.
    pub fn commit(&mut self, undo: &Path) -> Result<CommitReport> {
        self.commit_with_faults(undo, None)
    }

    /// [`Journal::commit`], failing (as a crash would) before durable step number `fail_after`
    /// (`Some(0)` fails before the first). For crash-injection tests. On an injected failure the
    /// staged writes are kept.
    ///
    /// # Errors
    /// As [`Journal::commit`], plus the injected fault.
    pub fn commit_with_faults(
        &mut self,
        undo: &Path,
        fail_after: Option<usize>,
    ) -> Result<CommitReport> {
        let mut faults = Faults {
            fail_after,
            done: 0,
        };
        let ranges = self.changes();
        let old_len = self.base.len();
        let new_len = self.len;
        if ranges.is_empty() {
            // Nothing staged (perhaps after a rollback): spilled bytes are all dead.
            self.savepoints.clear();
            self.log_ram = 0;
            self.ram = 0;
            self.spill = None;
            return Ok(CommitReport {
                undo_path: PathBuf::new(),
                ranges: 0,
                bytes: 0,
                old_len,
                new_len,
                steps: 0,
            });
        }
        let bytes = ranges.iter().map(|r| r.end - r.start).sum();
        if let Err(e) = self.write_undo(undo, &ranges, old_len, new_len, &mut faults) {
            // Nothing was applied: leave no half-written undo file behind (a crash instead of an
            // error leaves a `.tmp`, which recovery removes).
            if !faults.will_fail() {
                let _ = fs::remove_file(tmp_path(undo));
            }
            return Err(journal_failed("writing the undo file", undo, e));
        }
        // Allocate first, so a full disk fails here, with the image untouched.
        if let Err(e) = self.base.reserve(&ranges) {
            fs::remove_file(undo).map_err(|e| Error::io(undo, e))?;
            sync_dir(undo)?;
            return Err(journal_failed("allocating space for the change", undo, e));
        }

        // Apply.
        let staged = std::mem::take(&mut self.staged);
        let applied = (|| -> Result<()> {
            for (&off, ext) in &staged {
                if faults.will_fail() {
                    // A torn write: the first half reaches the disk.
                    Self::apply_extent(&mut self.base, self.spill.as_ref(), off, ext, ext.len / 2)?;
                }
                faults.step()?;
                Self::apply_extent(&mut self.base, self.spill.as_ref(), off, ext, ext.len)?;
            }
            if self.base.len() != new_len {
                faults.step()?;
                self.base.set_len(new_len)?;
            }
            faults.step()?;
            self.base.flush()
        })();
        if let Err(e) = applied {
            self.staged = staged;
            return Err(e);
        }
        drop(staged);
        self.ram = 0;
        self.savepoints.clear();
        self.log_ram = 0;
        self.spill = None;
        self.len = self.base.len();
        set_state(undo, UndoState::Complete, &mut faults)?;
        Ok(CommitReport {
            undo_path: undo.to_path_buf(),
            ranges: ranges.len(),
            bytes,
            old_len,
            new_len,
            steps: faults.done,
        })
    }

    /// Write the undo file in bounded memory: the original bytes of each range are streamed
    /// from the base to the file in chunks, and the record header (which holds their checksum)
    /// is written in place afterwards.
    fn write_undo(
        &self,
        undo: &Path,
        ranges: &[Range<u64>],
        old_len: u64,
        new_len: u64,
        faults: &mut Faults,
    ) -> Result<()> {
        let tmp = tmp_path(undo);
        let f = File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
        // One sequential pass: header, then each record header followed by its original bytes,
        // then the trailer, through one buffer (a pair of positioned writes per range made the
        // undo file of a generalize with 50k ranges cost 100k system calls).
        let mut out = std::io::BufWriter::with_capacity(CHUNK as usize, f);
        let mut header = [0u8; HEADER_LEN as usize];
        header[0..8].copy_from_slice(MAGIC);
        header[8..12].copy_from_slice(&1u32.to_le_bytes());
        header[12..16].copy_from_slice(&UndoState::InProgress.code().to_le_bytes());
        header[16..24].copy_from_slice(&old_len.to_le_bytes());
        header[24..32].copy_from_slice(&new_len.to_le_bytes());
        header[32..40].copy_from_slice(&(ranges.len() as u64).to_le_bytes());
        let hcrc = header_crc(&header);
        header[40..44].copy_from_slice(&hcrc.to_le_bytes());
        faults.step()?;
        out.write_all(&header).map_err(|e| Error::io(&tmp, e))?;

        let mut records_crc = 0u32;
        let mut buf = Vec::new();
        for r in ranges {
            let stored = old_len.saturating_sub(r.start).min(r.end - r.start);
            let crc_new = self.crc_of(r.clone())?;
            faults.step()?;
            // The record header holds the original bytes' CRC, so it is known before they are
            // written: a range of one chunk (nearly all) is read once and kept; a longer one is
            // read twice (CRC, then copy) rather than held whole.
            let single = stored <= CHUNK;
            let mut crc_old = 0u32;
            let mut pos = 0u64;
            while pos < stored {
                let n = (stored - pos).min(CHUNK) as usize;
                buf.resize(n, 0);
                self.base.read_at(r.start + pos, &mut buf)?;
                crc_old = crc32c::crc32c_append(crc_old, &buf);
                pos += n as u64;
            }
            let mut rec = [0u8; RECORD_HEADER_LEN as usize];
            rec[0..8].copy_from_slice(&r.start.to_le_bytes());
            rec[8..16].copy_from_slice(&(r.end - r.start).to_le_bytes());
            rec[16..24].copy_from_slice(&stored.to_le_bytes());
            rec[24..28].copy_from_slice(&crc_old.to_le_bytes());
            rec[28..32].copy_from_slice(&crc_new.to_le_bytes());
            out.write_all(&rec).map_err(|e| Error::io(&tmp, e))?;
            records_crc = crc32c::crc32c_append(records_crc, &rec);
            if single {
                if stored > 0 {
                    out.write_all(&buf).map_err(|e| Error::io(&tmp, e))?;
                    records_crc = crc32c::crc32c_append(records_crc, &buf);
                }
            } else {
                let mut pos = 0u64;
                while pos < stored {
                    let n = (stored - pos).min(CHUNK) as usize;
                    buf.resize(n, 0);
                    self.base.read_at(r.start + pos, &mut buf)?;
                    out.write_all(&buf).map_err(|e| Error::io(&tmp, e))?;
                    records_crc = crc32c::crc32c_append(records_crc, &buf);
                    pos += n as u64;
                }
            }
        }
        let mut trailer = [0u8; TRAILER_LEN as usize];
        trailer[0..8].copy_from_slice(TRAILER_MAGIC);
        trailer[8..16].copy_from_slice(&(ranges.len() as u64).to_le_bytes());
        trailer[16..20].copy_from_slice(&records_crc.to_le_bytes());
        faults.step()?;
        out.write_all(&trailer).map_err(|e| Error::io(&tmp, e))?;
        let f = out
            .into_inner()
            .map_err(|e| Error::io(&tmp, e.into_error()))?;
        faults.step()?;
        f.sync_all().map_err(|e| Error::io(&tmp, e))?;
        drop(f);
        faults.step()?;
        fs::rename(&tmp, undo).map_err(|e| Error::io(undo, e))?;
        faults.step()?;
        sync_dir(undo)
    }
}

impl<D: Device> Device for Journal<D> {
    fn len(&self) -> u64 {
        self.len
    }
    fn sector_size(&self) -> u32 {
        self.base.sector_size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.len)?;
        let end = offset + buf.len() as u64;
        let base_len = self.base.len();
        let from_base = base_len.saturating_sub(offset).min(buf.len() as u64) as usize;
        if from_base > 0 {
            self.base.read_at(offset, &mut buf[..from_base])?;
        }
        buf[from_base..].fill(0);
        let first = self.staged.range(..offset).next_back().map(|(k, _)| *k);
        let iter = first
            .into_iter()
            .filter_map(|k| self.staged.get_key_value(&k))
            .chain(self.staged.range(offset..end));
        for (&s, ext) in iter {
            let e = s + ext.len;
            let lo = s.max(offset);
            let hi = e.min(end);
            if lo < hi {
                let dst = &mut buf[(lo - offset) as usize..(hi - offset) as usize];
                match &ext.bytes {
                    Bytes::Ram(v) => dst.copy_from_slice(&v[(lo - s) as usize..(hi - s) as usize]),
                    Bytes::Spill(at) => self
                        .spill
                        .as_ref()
                        .ok_or_else(|| inconsistent(s, NO_SPILL))?
                        .read(at + (lo - s), dst)?,
                }
            }
        }
        Ok(())
    }
    /// Stages the write; writes past the end grow the (staged) device.
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        self.stage(offset, buf)
    }
    /// Staged writes are not durable until [`Journal::commit`]; this does nothing.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    /// Grow the staged device (shrinking is not supported).
    fn set_len(&mut self, len: u64) -> Result<()> {
        if len < self.len {
            return Err(Error::unsupported(
                "journal",
                len,
                "shrinking a journaled device",
            ));
        }
        self.len = len;
        Ok(())
    }
    fn savepoint(&mut self) -> bool {
        Journal::savepoint(self);
        true
    }
    fn rollback_savepoint(&mut self) -> Result<()> {
        Journal::rollback_savepoint(self)
    }
    fn release_savepoint(&mut self) -> Result<()> {
        Journal::release_savepoint(self)
    }
    fn known_zero(&self, offset: u64, len: u64) -> bool {
        // Only the part of the base under no staged write can be vouched for by the base.
        let end = offset.saturating_add(len);
        let touched = self
            .staged
            .range(..end)
            .next_back()
            .is_some_and(|(s, e)| s + e.len > offset);
        !touched && end <= self.base.len() && self.base.known_zero(offset, len)
    }
}

/// An error of a commit that left the image unchanged, said so.
fn journal_failed(doing: &str, undo: &Path, e: Error) -> Error {
    match e {
        // Injected faults (tests) and errors that already say where they happened pass through.
        Error::Io {
            path: Some(path),
            source,
        } => Error::Journal {
            path,
            reason: format!(
                "{doing} for {}: {source}; the image was not changed",
                undo.display()
            ),
        },
        other => other,
    }
}

fn header_crc(header: &[u8]) -> u32 {
    let c = crc32c::crc32c(&header[0..12]);
    crc32c::crc32c_append(c, &header[16..40])
}

fn tmp_path(undo: &Path) -> PathBuf {
    let mut s = undo.as_os_str().to_owned();
    s.push(".tmp");
    PathBuf::from(s)
}

fn sync_dir(file: &Path) -> Result<()> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

fn set_state(undo: &Path, state: UndoState, faults: &mut Faults) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(undo)
        .map_err(|e| Error::io(undo, e))?;
    faults.step()?;
    f.write_all_at(&state.code().to_le_bytes(), STATE_OFFSET)
        .map_err(|e| Error::io(undo, e))?;
    faults.step()?;
    f.sync_all().map_err(|e| Error::io(undo, e))
}

/// The sidecar directory holding the undo files of `image`: `<image>.reseal-journal`.
pub fn journal_dir(image: &Path) -> PathBuf {
    let mut s = image.as_os_str().to_owned();
    s.push(".reseal-journal");
    PathBuf::from(s)
}

/// The undo files of `image`, oldest first, with their numbers.
fn undo_files(image: &Path) -> Result<Vec<(u64, PathBuf)>> {
    let dir = journal_dir(image);
    let mut out = Vec::new();
    let rd = match fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(Error::io(dir, e)),
    };
    for ent in rd {
        let ent = ent.map_err(|e| Error::io(&dir, e))?;
        let name = ent.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(num) = name.strip_suffix(".undo") {
            if let Ok(n) = num.parse::<u64>() {
                out.push((n, ent.path()));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Create the sidecar directory if needed and return the path of the next undo file.
///
/// # Errors
/// I/O errors.
pub fn next_undo_path(image: &Path) -> Result<PathBuf> {
    let dir = journal_dir(image);
    fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let n = undo_files(image)?.last().map_or(1, |(n, _)| n + 1);
    Ok(dir.join(format!("{n:06}.undo")))
}

/// A parsed undo file.
#[derive(Debug)]
struct UndoFile {
    path: PathBuf,
    state: UndoState,
    old_len: u64,
    new_len: u64,
    /// (range, stored length, crc_old, crc_new, file offset of stored bytes)
    records: Vec<UndoRecord>,
}

#[derive(Debug)]
struct UndoRecord {
    offset: u64,
    len: u64,
    stored: u64,
    crc_new: u32,
    data_at: u64,
}

fn jerr(path: &Path, reason: impl Into<String>) -> Error {
    Error::Journal {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn parse_undo(path: &Path) -> Result<UndoFile> {
    let f = File::open(path).map_err(|e| Error::io(path, e))?;
    let flen = f.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut header = [0u8; HEADER_LEN as usize];
    if flen < HEADER_LEN + TRAILER_LEN {
        return Err(jerr(path, "undo file truncated"));
    }
    f.read_exact_at(&mut header, 0)
        .map_err(|e| Error::io(path, e))?;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |b: &[u8], o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    if &header[0..8] != MAGIC || u32_at(&header, 8) != 1 {
        return Err(jerr(path, "not a reseal undo file (bad magic or version)"));
    }
    if header_crc(&header) != u32_at(&header, 40) {
        return Err(jerr(path, "undo header checksum mismatch"));
    }
    let state = UndoState::from_code(u32_at(&header, 12))
        .ok_or_else(|| jerr(path, format!("unknown undo state {}", u32_at(&header, 12))))?;
    let old_len = u64_at(&header, 16);
    let new_len = u64_at(&header, 24);
    let count = u64_at(&header, 32);
    let mut records = Vec::new();
    let mut pos = HEADER_LEN;
    let mut crc = 0u32;
    for i in 0..count {
        let mut rh = [0u8; RECORD_HEADER_LEN as usize];
        if pos.checked_add(RECORD_HEADER_LEN).is_none_or(|e| e > flen) {
            return Err(jerr(path, format!("undo record {i} truncated")));
        }
        f.read_exact_at(&mut rh, pos)
            .map_err(|e| Error::io(path, e))?;
        crc = crc32c::crc32c_append(crc, &rh);
        let rec = UndoRecord {
            offset: u64_at(&rh, 0),
            len: u64_at(&rh, 8),
            stored: u64_at(&rh, 16),
            crc_new: u32_at(&rh, 28),
            data_at: pos + RECORD_HEADER_LEN,
        };
        let crc_old = u32_at(&rh, 24);
        if rec.stored > rec.len || rec.offset.checked_add(rec.len).is_none() {
            return Err(jerr(path, format!("undo record {i} inconsistent")));
        }
        let end = rec.data_at.checked_add(rec.stored).filter(|e| *e <= flen);
        let Some(end) = end else {
            return Err(jerr(path, format!("undo record {i} truncated")));
        };
        let mut c = 0u32;
        let mut p = rec.data_at;
        let mut buf = vec![0u8; CHUNK.min(rec.stored) as usize];
        while p < end {
            let n = (end - p).min(CHUNK) as usize;
            f.read_exact_at(&mut buf[..n], p)
                .map_err(|e| Error::io(path, e))?;
            c = crc32c::crc32c_append(c, &buf[..n]);
            crc = crc32c::crc32c_append(crc, &buf[..n]);
            p += n as u64;
        }
        if c != crc_old {
            return Err(jerr(
                path,
                format!("undo record {i}: original-bytes checksum mismatch"),
            ));
        }
        pos = end;
        records.push(rec);
    }
    let mut trailer = [0u8; TRAILER_LEN as usize];
    if pos + TRAILER_LEN != flen {
        return Err(jerr(path, "undo file length does not match its records"));
    }
    f.read_exact_at(&mut trailer, pos)
        .map_err(|e| Error::io(path, e))?;
    if &trailer[0..8] != TRAILER_MAGIC
        || u64_at(&trailer, 8) != count
        || u32_at(&trailer, 16) != crc
    {
        return Err(jerr(path, "undo trailer missing or checksum mismatch"));
    }
    Ok(UndoFile {
        path: path.to_path_buf(),
        state,
        old_len,
        new_len,
        records,
    })
}

/// Write the original bytes of `u` back into `image` and restore its length (idempotent).
fn restore(image: &Path, u: &UndoFile, faults: &mut Faults) -> Result<()> {
    let mut dev = HostFile::open(image, true)?;
    let f = File::open(&u.path).map_err(|e| Error::io(&u.path, e))?;
    for r in &u.records {
        let mut pos = 0u64;
        let mut buf = vec![0u8; CHUNK.min(r.stored) as usize];
        while pos < r.stored {
            let n = (r.stored - pos).min(CHUNK) as usize;
            f.read_exact_at(&mut buf[..n], r.data_at + pos)
                .map_err(|e| Error::io(&u.path, e))?;
            faults.step()?;
            dev.write_at(r.offset + pos, &buf[..n])?;
            pos += n as u64;
        }
    }
    faults.step()?;
    dev.set_len(u.old_len)?;
    faults.step()?;
    dev.flush()
}

fn remove_undo(path: &Path, faults: &mut Faults) -> Result<()> {
    faults.step()?;
    fs::remove_file(path).map_err(|e| Error::io(path, e))?;
    // The operation's name, when one was recorded; losing it is harmless.
    let _ = fs::remove_file(operation_path(path));
    sync_dir(path)
}

/// The sidecar of an undo file that names its operation: `NNNNNN.undo.op`.
fn operation_path(undo: &Path) -> PathBuf {
    let mut s = undo.as_os_str().to_owned();
    s.push(".op");
    PathBuf::from(s)
}

/// Record what the operation behind `undo` (from [`CommitReport::undo_path`]) was, in one line
/// (`reseal undo --list` shows it). Nothing happens for an empty path (nothing was committed).
///
/// # Errors
/// I/O errors.
pub fn record_operation(undo: &Path, what: &str) -> Result<()> {
    if undo.as_os_str().is_empty() {
        return Ok(());
    }
    let p = operation_path(undo);
    let line: String = what.chars().filter(|c| *c != '\n' && *c != '\r').collect();
    fs::write(&p, format!("{line}\n")).map_err(|e| Error::io(&p, e))
}

/// A committed operation [`undo`] can revert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndoEntry {
    /// Its number (the undo file's name); [`undo`] reverts the highest first.
    pub number: u64,
    /// The undo file.
    pub path: PathBuf,
    /// When it was committed (the undo file's modification time).
    pub time: Option<std::time::SystemTime>,
    /// What it was, when the command recorded it ([`record_operation`]).
    pub operation: Option<String>,
    /// Changed ranges.
    pub ranges: usize,
    /// Changed bytes.
    pub bytes: u64,
    /// Image length before and after the operation.
    pub old_len: u64,
    /// See `old_len`.
    pub new_len: u64,
}

fn entry(number: u64, path: PathBuf) -> Result<UndoEntry> {
    let u = parse_undo(&path)?;
    let time = fs::metadata(&path).and_then(|m| m.modified()).ok();
    let operation = fs::read_to_string(operation_path(&path))
        .ok()
        .map(|s| s.trim_end().to_string());
    Ok(UndoEntry {
        number,
        time,
        operation,
        ranges: u.records.len(),
        bytes: u.records.iter().map(|r| r.len).sum(),
        old_len: u.old_len,
        new_len: u.new_len,
        path,
    })
}

/// The operations that can be undone, oldest first.
///
/// # Errors
/// I/O errors; a malformed undo file.
pub fn list_undo(image: &Path) -> Result<Vec<UndoEntry>> {
    undo_files(image)?
        .into_iter()
        .map(|(n, p)| entry(n, p))
        .collect()
}

/// What [`undo`] would revert, after checking that it can (the image still holds what the
/// operation wrote), under a shared lock; nothing is written.
///
/// # Errors
/// As [`undo`]: nothing to undo, the image changed since, [`Error::Locked`].
pub fn check_undo(image: &Path, lock_timeout: std::time::Duration) -> Result<UndoEntry> {
    let _lock =
        crate::lock::ImageLock::acquire(image, crate::lock::LockKind::Shared, lock_timeout)?;
    if let Some(p) = pending(image)? {
        return Err(jerr(
            &p,
            "an operation on this image did not finish; run `reseal undo` without --dry-run to \
             roll it back first",
        ));
    }
    let Some((n, p)) = undo_files(image)?.pop() else {
        return Err(jerr(&journal_dir(image), "nothing to undo"));
    };
    let u = parse_undo(&p)?;
    check_unchanged(image, &p, &u)?;
    entry(n, p)
}

fn check_unchanged(image: &Path, p: &Path, u: &UndoFile) -> Result<()> {
    let dev = HostFile::open(image, false)?;
    if dev.len() != u.new_len {
        return Err(jerr(
            p,
            format!(
                "the image changed since this operation (length {} instead of {})",
                dev.len(),
                u.new_len
            ),
        ));
    }
    let j = Journal::new(dev);
    for r in &u.records {
        let crc = j.crc_of(r.offset..r.offset + r.len)?;
        if crc != r.crc_new {
            return Err(jerr(
                p,
                format!(
                    "the image changed since this operation (bytes {:#x}..{:#x} differ)",
                    r.offset,
                    r.offset + r.len
                ),
            ));
        }
    }
    Ok(())
}

/// What [`recover`] did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoverReport {
    /// Undo files whose operation was rolled back (image restored to before it).
    pub rolled_back: Vec<PathBuf>,
    /// Undo reverts that had been interrupted and were finished.
    pub reverted: Vec<PathBuf>,
    /// Incomplete (`.tmp`) undo files removed; the image had not been touched.
    pub removed_incomplete: Vec<PathBuf>,
}

/// The undo file of an unfinished operation on `image`, if any (what [`recover`] would act on).
///
/// # Errors
/// I/O errors; a corrupt undo file.
pub fn pending(image: &Path) -> Result<Option<PathBuf>> {
    if let Some((_, p)) = undo_files(image)?.last() {
        let u = parse_undo(p)?;
        if u.state != UndoState::Complete {
            return Ok(Some(p.clone()));
        }
    }
    Ok(None)
}

/// Finish or roll back an interrupted commit or undo of `image`. Idempotent: safe to re-run after
/// a crash during recovery itself.
///
/// # Errors
/// I/O errors; a corrupt undo file (reported, never silently dropped).
pub fn recover(image: &Path) -> Result<RecoverReport> {
    recover_with_faults(image, None)
}

/// [`recover`], failing (as a crash would) before durable step number `fail_after`. For tests
/// that crash the recovery itself and check that re-running it still ends all-old.
///
/// # Errors
/// As [`recover`], plus the injected fault.
pub fn recover_with_faults(image: &Path, fail_after: Option<usize>) -> Result<RecoverReport> {
    let mut faults = Faults {
        fail_after,
        done: 0,
    };
    let mut rep = RecoverReport::default();
    let dir = journal_dir(image);
    if let Ok(rd) = fs::read_dir(&dir) {
        for ent in rd.flatten() {
            let p = ent.path();
            if p.extension().is_some_and(|e| e == "tmp") {
                fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                rep.removed_incomplete.push(p);
            }
        }
    }
    while let Some((_, p)) = undo_files(image)?.pop() {
        let u = parse_undo(&p)?;
        match u.state {
            UndoState::Complete => break,
            UndoState::InProgress => {
                restore(image, &u, &mut faults)?;
                set_state(&p, UndoState::RolledBack, &mut faults)?;
                remove_undo(&p, &mut faults)?;
                rep.rolled_back.push(p);
            }
            UndoState::RolledBack => {
                remove_undo(&p, &mut faults)?;
                rep.rolled_back.push(p);
            }
            UndoState::Reverting => {
                restore(image, &u, &mut faults)?;
                remove_undo(&p, &mut faults)?;
                rep.reverted.push(p);
            }
        }
    }
    Ok(rep)
}

/// Revert the newest committed operation on `image` from its undo file, then delete the file.
///
/// Refuses (with [`Error::Journal`]) if the image no longer holds exactly the bytes that
/// operation wrote (it was changed since), or if there is nothing to undo.
///
/// # Errors
/// As above; I/O errors.
pub fn undo(image: &Path) -> Result<PathBuf> {
    undo_with_timeout(image, crate::lock::DEFAULT_LOCK_TIMEOUT)
}

/// [`undo`] under an exclusive image lock ([`crate::lock`]) waited for up to `lock_timeout`.
///
/// # Errors
/// As [`undo`], plus [`Error::Locked`].
pub fn undo_with_timeout(image: &Path, lock_timeout: std::time::Duration) -> Result<PathBuf> {
    let _lock =
        crate::lock::ImageLock::acquire(image, crate::lock::LockKind::Exclusive, lock_timeout)?;
    recover(image)?;
    let Some((_, p)) = undo_files(image)?.pop() else {
        return Err(jerr(&journal_dir(image), "nothing to undo"));
    };
    let u = parse_undo(&p)?;
    check_unchanged(image, &p, &u)?;
    set_state(
        &p,
        UndoState::Reverting,
        &mut Faults {
            fail_after: None,
            done: 0,
        },
    )?;
    let mut none = Faults {
        fail_after: None,
        done: 0,
    };
    restore(image, &u, &mut none)?;
    remove_undo(&p, &mut none)?;
    Ok(p)
}

const NO_SPILL: &str = "a spilled extent but no spill file";

/// A broken invariant of the staged-write map, reported instead of a panic (offset: the
/// extent's image offset).
fn inconsistent(offset: u64, what: &str) -> Error {
    Error::unsupported(
        "journal staged writes",
        offset,
        format!("{what} (internal inconsistency: report it)"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemDevice;

    #[test]
    fn staging_merges_and_overlays() {
        let mut j = Journal::new(MemDevice::new((0..100u8).collect()));
        j.write_at(10, &[1; 5]).unwrap();
        j.write_at(20, &[2; 5]).unwrap();
        j.write_at(13, &[3; 9]).unwrap();
        assert_eq!(j.changes(), vec![10..25]);
        j.write_at(25, &[4; 2]).unwrap();
        j.write_at(5, &[5; 2]).unwrap();
        assert_eq!(j.changes(), vec![5..7, 10..27]);
        let mut b = [0u8; 30];
        j.read_at(0, &mut b).unwrap();
        assert_eq!(&b[5..7], &[5, 5]);
        assert_eq!(b[7], 7);
        assert_eq!(&b[10..13], &[1; 3]);
        assert_eq!(&b[13..22], &[3; 9]);
        assert_eq!(&b[22..25], &[2; 3]);
        assert_eq!(&b[25..27], &[4; 2]);
        assert_eq!(b[27], 27);
        j.write_at(120, &[9]).unwrap();
        assert_eq!(j.len(), 121);
        let mut b = [7u8; 22];
        j.read_at(99, &mut b).unwrap();
        assert_eq!(b[0], 99);
        assert!(b[1..21].iter().all(|&x| x == 0));
        assert_eq!(b[21], 9);
        assert_eq!(j.changes(), vec![5..7, 10..27, 100..121]);
        j.discard();
        assert!(!j.is_modified());
    }

    #[test]
    fn commit_recover_undo_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let img = dir.path().join("x.img");
        std::fs::write(&img, vec![0xAAu8; 4096]).unwrap();
        let mut j = Journal::new(HostFile::open(&img, true).unwrap());
        j.write_at(100, &[1; 50]).unwrap();
        j.write_at(5000, &[2; 10]).unwrap();
        let undo_path = next_undo_path(&img).unwrap();
        let rep = j.commit(&undo_path).unwrap();
        assert_eq!(rep.new_len, 5010);
        drop(j);
        let now = std::fs::read(&img).unwrap();
        assert_eq!(now.len(), 5010);
        assert_eq!(pending(&img).unwrap(), None);
        undo(&img).unwrap();
        assert_eq!(std::fs::read(&img).unwrap(), vec![0xAAu8; 4096]);
        assert!(undo(&img).is_err());
    }
}
