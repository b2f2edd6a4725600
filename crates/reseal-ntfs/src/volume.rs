//! The writable volume handle: boot sector, `$MFT` runlist, record I/O with fixups and
//! `$MFTMirr`, attribute streams (read, overwrite, resize), and the per-operation staging overlay.
//!
//! # Atomicity
//! Every public mutating operation runs inside `Volume::tx`: all its writes go to an in-memory
//! overlay of 512-byte blocks that later reads see; only when the whole operation succeeded is
//! the overlay written to the device (in ascending offset order). A failed operation discards the
//! overlay, so no half-modified structure ever reaches the device. Durability, dry runs and undo
//! come from the journal below the [`Device`].

use std::collections::BTreeMap;

use reseal_disk::Device;
use zerocopy::FromBytes;

use crate::attribute::{self, Attr, NonResSizes, ATTRIBUTE_LIST, DATA, FILE_NAME};
use crate::boot_sector::BootSector;
use crate::data_run::{self, Run};
use crate::error::{Error, Offset, Result};
use crate::layout::attribute_list::{self, AttributeListEntry};
use crate::record::{self, Record};
use crate::upcase::UpCase;

const BLK: u64 = 512;
/// Records [`Volume::scan_records`] reads at once (256 KiB of 1 KiB records).
pub const SCAN_BATCH: u64 = 256;

/// Record numbers of system files.
pub(crate) const MFT: u64 = 0;
pub(crate) const LOGFILE: u64 = 2;
pub(crate) const ROOT: u64 = 5;
pub(crate) const BITMAP_FILE: u64 = 6;
#[allow(dead_code)]
pub(crate) const SECURE: u64 = 9;
pub(crate) const UPCASE: u64 = 10;

fn dev_offset(lcn: u64, dvcn: u64, cs: u64, pos: u64) -> Option<u64> {
    lcn.checked_add(dvcn)?
        .checked_mul(cs)?
        .checked_add(pos % cs)
}

/// One piece of a stream range as its runlist maps it: `len` bytes starting `at` bytes into the
/// range, on the device at byte `dev` (`None`: inside a sparse run).
#[derive(Debug, Clone, Copy)]
struct Piece {
    at: usize,
    len: usize,
    dev: Option<u64>,
}

/// The pieces of `len` bytes at stream offset `off` through `runs` (cluster size `cs`), in
/// order; a gap in the runlist or an LCN past the addressable range is an error naming `what`
/// in record `rec` at the stream offset.
struct Pieces<'a> {
    runs: &'a [Run],
    cs: u64,
    off: u64,
    len: usize,
    done: usize,
    what: &'static str,
    rec: u64,
}

impl<'a> Pieces<'a> {
    fn new(runs: &'a [Run], cs: u64, off: u64, len: usize, what: &'static str, rec: u64) -> Self {
        Pieces {
            runs,
            cs,
            off,
            len,
            done: 0,
            what,
            rec,
        }
    }
}

impl Iterator for Pieces<'_> {
    type Item = Result<Piece>;

    fn next(&mut self) -> Option<Result<Piece>> {
        if self.done >= self.len {
            return None;
        }
        let (cs, what, rec) = (self.cs, self.what, self.rec);
        let pos = self.off + self.done as u64;
        let vcn = pos / cs;
        let Some(run) = self
            .runs
            .iter()
            .find(|r| r.vcn <= vcn && vcn < r.vcn + r.len)
        else {
            self.done = self.len;
            return Some(Err(Error::corrupt(
                what,
                Some(rec),
                Offset::Stream(pos),
                "offset not mapped by the runlist",
            )));
        };
        let run_end = (run.vcn + run.len).saturating_mul(cs);
        let n = ((run_end - pos) as usize).min(self.len - self.done);
        let dev = match run.lcn {
            None => None,
            Some(l) => match dev_offset(l, vcn - run.vcn, cs, pos) {
                Some(d) => Some(d),
                None => {
                    self.done = self.len;
                    return Some(Err(Error::corrupt(
                        what,
                        Some(rec),
                        Offset::Stream(pos),
                        "LCN overflows the volume",
                    )));
                }
            },
        };
        let piece = Piece {
            at: self.done,
            len: n,
            dev,
        };
        self.done += n;
        Some(Ok(piece))
    }
}

/// Where an attribute's data lives, gathered across the base record and (read-only) extension
/// records named by an `$ATTRIBUTE_LIST`.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub base: u64,
    pub ty: u32,
    pub name: Vec<u16>,
    pub resident: bool,
    pub runs: Vec<Run>,
    pub size: u64,
    pub init: u64,
    pub alloc: u64,
    pub flags: u16,
    /// The attribute is one piece in the base record (so it may be rewritten).
    pub in_base: bool,
    /// Record holding the header with the sizes (lowest VCN 0).
    pub header_rec: u64,
    /// Compression unit exponent (0 = not compressed).
    pub compression_unit: u16,
}

/// One `$ATTRIBUTE_LIST` entry: which record holds (a piece of) which attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListEntry {
    pub ty: u32,
    pub name: Vec<u16>,
    pub lowest_vcn: u64,
    /// MFT record number (sequence bits cleared).
    pub record: u64,
}

/// How a stream may grow.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Grow {
    /// Write zeros over newly allocated clusters and mark them initialized.
    pub zero: bool,
    /// Allocation may use the MFT zone (for `$MFT` itself).
    pub mft_zone: bool,
}

/// A writable NTFS volume over a [`Device`] (a partition).
#[derive(Debug)]
pub struct Volume<D: Device> {
    pub(crate) dev: D,
    pub(crate) boot: BootSector,
    pub(crate) mft_runs: Vec<Run>,
    pub(crate) mft_size: u64,
    pub(crate) upcase: std::sync::Arc<UpCase>,
    overlay: BTreeMap<u64, Vec<u8>>,
    log_reset: bool,
    in_tx: bool,
    /// The current operation holds a device savepoint, so bulk data may go straight to the
    /// device ([`Volume::write_direct`]).
    direct: bool,
}

impl<D: Device> Volume<D> {
    /// Open a volume: validate the boot sector, read `$MFT`'s runlist (following its attribute
    /// list if any) and `$UpCase`.
    ///
    /// # Errors
    /// [`Error::Corrupt`] (located) for a malformed boot sector or system record; disk errors.
    pub fn open(dev: D) -> Result<Self> {
        let mut bs = [0u8; 512];
        dev.read_at(0, &mut bs).map_err(|e| Error::Disk {
            offset: 0,
            source: e,
        })?;
        let boot = BootSector::parse(&bs)?;
        let vol_len = boot
            .total_sectors
            .saturating_mul(u64::from(boot.bytes_per_sector));
        if vol_len > dev.len() + u64::from(boot.bytes_per_sector) {
            return Err(Error::corrupt(
                "boot sector",
                None,
                Offset::Volume(0x28),
                format!("volume size {vol_len} exceeds device size {}", dev.len()),
            ));
        }
        let rs = u64::from(boot.record_size);
        let cs = u64::from(boot.cluster_size);
        // Bootstrap: record 0 is at the MFT's first cluster.
        let mft_off = boot.mft_lcn * cs;
        let clusters = rs.div_ceil(cs);
        let boot_runs = vec![Run {
            vcn: 0,
            len: clusters.max(1),
            lcn: Some(boot.mft_lcn),
        }];
        let mut v = Volume {
            dev,
            boot,
            mft_runs: boot_runs,
            mft_size: rs,
            upcase: std::sync::Arc::new(UpCase::from_bytes(&[])),
            overlay: BTreeMap::new(),
            log_reset: false,
            in_tx: false,
            direct: false,
        };
        let _ = mft_off;
        let r0 = v.read_record(MFT)?;
        let a = r0
            .find(DATA, &[])?
            .ok_or_else(|| Error::corrupt("$MFT", Some(0), Offset::Whole, "no $DATA attribute"))?;
        if !a.nonres || a.lowest_vcn != 0 {
            return Err(Error::corrupt(
                "$MFT",
                Some(0),
                Offset::Record(a.off as u64),
                "$DATA is not non-resident from VCN 0",
            ));
        }
        v.mft_runs = a.runs(&r0.buf, 0)?;
        v.mft_size = a.size;
        // Attribute list: gather further $DATA extents of the MFT from extension records.
        if r0.find(ATTRIBUTE_LIST, &[])?.is_some() {
            let s = v
                .stream(MFT, DATA, &[])?
                .ok_or_else(|| Error::corrupt("$MFT", Some(0), Offset::Whole, "no $DATA"))?;
            v.mft_runs = s.runs;
        }
        let up = v.read_all(UPCASE, DATA, &[])?;
        if up.len() < 2 * 65536 {
            return Err(Error::corrupt(
                "$UpCase",
                Some(UPCASE),
                Offset::Whole,
                format!("only {} bytes", up.len()),
            ));
        }
        v.upcase = std::sync::Arc::new(UpCase::from_bytes(&up));
        Ok(v)
    }

    /// The validated boot sector.
    pub fn boot_sector(&self) -> &BootSector {
        &self.boot
    }

    /// Give the device back.
    pub fn into_inner(self) -> D {
        self.dev
    }

    /// Volume byte offset of MFT byte `pos` (through `$MFT`'s runlist), if mapped.
    pub(crate) fn mft_offset(&self, pos: u64) -> Option<u64> {
        let cs = self.cs();
        let vcn = pos / cs;
        let run = self
            .mft_runs
            .iter()
            .find(|r| r.vcn <= vcn && vcn < r.vcn + r.len)?;
        dev_offset(run.lcn?, vcn - run.vcn, cs, pos)
    }

    /// Read raw MFT bytes (on-disk form, fixups in place) at MFT offset `off`.
    pub(crate) fn read_mft_raw(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        let runs = self.mft_runs.clone();
        self.read_runs(&runs, off, buf, "$MFT data", 0)
    }

    /// Number of MFT records (from `$MFT` data size).
    ///
    /// [`Volume::scan_records`] reads them in batches of [`SCAN_BATCH`].
    pub fn mft_records(&self) -> u64 {
        self.mft_size / u64::from(self.boot.record_size)
    }

    // ---------------------------------------------------------------- raw I/O with overlay

    pub(crate) fn read_raw(&self, off: u64, buf: &mut [u8]) -> Result<()> {
        self.dev.read_at(off, buf).map_err(|e| Error::Disk {
            offset: off,
            source: e,
        })?;
        if self.overlay.is_empty() || buf.is_empty() {
            return Ok(());
        }
        let end = off + buf.len() as u64;
        for (&b, data) in self.overlay.range(off / BLK..end.div_ceil(BLK)) {
            let bs = b * BLK;
            let s = bs.max(off);
            let e = (bs + BLK).min(end);
            buf[(s - off) as usize..(e - off) as usize]
                .copy_from_slice(&data[(s - bs) as usize..(e - bs) as usize]);
        }
        Ok(())
    }

    pub(crate) fn write_raw(&mut self, off: u64, data: &[u8]) -> Result<()> {
        let end = off
            .checked_add(data.len() as u64)
            .ok_or(Error::NoSpace { what: "write" })?;
        if end > self.dev.len() {
            return Err(Error::Disk {
                offset: off,
                source: reseal_disk::Error::OutOfBounds {
                    offset: off,
                    len: data.len() as u64,
                    size: self.dev.len(),
                },
            });
        }
        let mut b = off / BLK;
        while b * BLK < end {
            let bs = b * BLK;
            let s = bs.max(off);
            let e = (bs + BLK).min(end);
            if !self.overlay.contains_key(&b) {
                let mut blk = vec![0u8; BLK as usize];
                if s != bs || e != bs + BLK {
                    let l = BLK.min(self.dev.len() - bs) as usize;
                    self.dev
                        .read_at(bs, &mut blk[..l])
                        .map_err(|er| Error::Disk {
                            offset: bs,
                            source: er,
                        })?;
                }
                self.overlay.insert(b, blk);
            }
            if let Some(blk) = self.overlay.get_mut(&b) {
                blk[(s - bs) as usize..(e - bs) as usize]
                    .copy_from_slice(&data[(s - off) as usize..(e - off) as usize]);
            }
            b += 1;
        }
        Ok(())
    }

    /// Write bulk bytes (file data, zeroing, the `$LogFile` reset): straight to the device when
    /// the operation holds a device savepoint (so a failure can still take them back), else
    /// into the overlay as [`Volume::write_raw`]. Overlay blocks under the write are patched, so
    /// later reads and the overlay's commit (which comes after) agree with it. Everything
    /// reaches the image only at the journal's commit, so the order of direct and overlay
    /// writes within an operation is invisible to a crash.
    pub(crate) fn write_direct(&mut self, off: u64, data: &[u8]) -> Result<()> {
        if !self.direct {
            return self.write_raw(off, data);
        }
        let end = off
            .checked_add(data.len() as u64)
            .ok_or(Error::NoSpace { what: "write" })?;
        self.dev.write_at(off, data).map_err(|e| Error::Disk {
            offset: off,
            source: e,
        })?;
        for (&b, blk) in self.overlay.range_mut(off / BLK..end.div_ceil(BLK)) {
            let bs = b * BLK;
            let s = bs.max(off);
            let e = (bs + BLK).min(end);
            blk[(s - bs) as usize..(e - bs) as usize]
                .copy_from_slice(&data[(s - off) as usize..(e - off) as usize]);
        }
        Ok(())
    }

    fn commit_overlay(&mut self) -> Result<()> {
        let ov = std::mem::take(&mut self.overlay);
        let mut run: Vec<u8> = Vec::new();
        let mut run_start = 0u64;
        let mut next = u64::MAX;
        let dev_len = self.dev.len();
        for (b, data) in ov {
            if b != next && !run.is_empty() {
                self.dev
                    .write_at(run_start, &run)
                    .map_err(|e| Error::Disk {
                        offset: run_start,
                        source: e,
                    })?;
                run.clear();
            }
            if run.is_empty() {
                run_start = b * BLK;
            }
            let l = BLK.min(dev_len - b * BLK) as usize;
            run.extend_from_slice(&data[..l]);
            next = b + 1;
            if run.len() >= 1 << 22 {
                self.dev
                    .write_at(run_start, &run)
                    .map_err(|e| Error::Disk {
                        offset: run_start,
                        source: e,
                    })?;
                run.clear();
                next = u64::MAX;
            }
        }
        if !run.is_empty() {
            self.dev
                .write_at(run_start, &run)
                .map_err(|e| Error::Disk {
                    offset: run_start,
                    source: e,
                })?;
        }
        Ok(())
    }

    /// Run one mutating operation atomically (see the module docs).
    pub(crate) fn tx<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        if self.in_tx {
            return f(self);
        }
        let saved = (self.mft_runs.clone(), self.mft_size);
        self.in_tx = true;
        self.direct = self.dev.savepoint();
        let r = f(self).and_then(|t| {
            if !self.log_reset {
                self.reset_logfile()?;
            }
            Ok(t)
        });
        self.in_tx = false;
        let r = match r {
            Ok(t) => match self.commit_overlay() {
                Ok(()) => Ok(t),
                Err(e) if self.direct => {
                    // The savepoint takes back the part of the overlay already written too.
                    self.mft_runs = saved.0.clone();
                    self.mft_size = saved.1;
                    Err(e)
                }
                Err(e) => {
                    self.direct = false;
                    return Err(e);
                }
            },
            Err(e) => {
                self.overlay.clear();
                self.mft_runs = saved.0;
                self.mft_size = saved.1;
                Err(e)
            }
        };
        if std::mem::take(&mut self.direct) {
            self.end_savepoint(r.is_ok())?;
        }
        if r.is_ok() {
            self.log_reset = true;
        }
        r
    }

    /// Close the innermost device savepoint: kept when the step succeeded, rolled back when not.
    fn end_savepoint(&mut self, ok: bool) -> Result<()> {
        let end = if ok {
            self.dev.release_savepoint()
        } else {
            self.dev.rollback_savepoint()
        };
        end.map_err(|e| Error::Disk {
            offset: 0,
            source: e,
        })
    }

    /// Run `f` as a nested step of the current operation: when it fails, every write it staged
    /// is dropped (the operation goes on from the state before `f`), so the caller may try
    /// another way.
    pub(crate) fn attempt<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        let saved = (self.overlay.clone(), self.mft_runs.clone(), self.mft_size);
        // Writes that went straight to the device need a nested savepoint to be taken back.
        let nested = self.direct && self.dev.savepoint();
        let r = f(self);
        if r.is_err() {
            (self.overlay, self.mft_runs, self.mft_size) = saved;
        }
        if nested {
            self.end_savepoint(r.is_ok())?;
        } else if self.direct && r.is_err() {
            return Err(Error::unsupported(
                None,
                "taking back a failed step: the device lost its savepoint",
            ));
        }
        r
    }

    /// Flush the device.
    ///
    /// # Errors
    /// Disk errors.
    pub fn flush(&mut self) -> Result<()> {
        self.dev.flush().map_err(|e| Error::Disk {
            offset: 0,
            source: e,
        })
    }

    /// Fill `$LogFile` with 0xFF as ntfs-3g does on a clean mount, so Windows re-initializes the
    /// log instead of replaying stale records over our changes (FORMATS C.9).
    fn reset_logfile(&mut self) -> Result<()> {
        let Some(mut s) = self.stream(LOGFILE, DATA, &[])? else {
            return Ok(());
        };
        let chunk = vec![0xFFu8; 1 << 16];
        let mut off = 0u64;
        // Skip if already empty (all 0xFF at the start means nothing to replay).
        let mut head = [0u8; 8];
        if s.size >= 8 {
            self.read_stream(&s, 0, &mut head)?;
            if head == [0xFF; 8] {
                return Ok(());
            }
        }
        // A fully initialized, fully allocated log (what mkntfs and Windows make) is filled
        // through the bulk path, so its megabytes do not sit in the overlay.
        let plain = !s.resident
            && s.init == s.size
            && s.flags & (attribute::FLAG_COMPRESSED | attribute::FLAG_ENCRYPTED) == 0
            && s.runs.iter().all(|r| r.lcn.is_some());
        while off < s.size {
            let n = (s.size - off).min(chunk.len() as u64) as usize;
            if plain {
                let runs = s.runs.clone();
                self.write_runs_direct(&runs, off, &chunk[..n], LOGFILE)?;
            } else {
                self.write_stream_data(&mut s, off, &chunk[..n])?;
            }
            off += n as u64;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- runs

    pub(crate) fn cs(&self) -> u64 {
        u64::from(self.boot.cluster_size)
    }

    /// Read bytes at stream offset `off` through `runs` (sparse = zeros, no init handling).
    pub(crate) fn read_runs(
        &self,
        runs: &[Run],
        off: u64,
        buf: &mut [u8],
        what: &'static str,
        rec: u64,
    ) -> Result<()> {
        for p in Pieces::new(runs, self.cs(), off, buf.len(), what, rec) {
            let p = p?;
            let b = &mut buf[p.at..p.at + p.len];
            match p.dev {
                None => b.fill(0),
                Some(d) => self.read_raw(d, b)?,
            }
        }
        Ok(())
    }

    fn write_runs(
        &mut self,
        runs: &[Run],
        off: u64,
        data: &[u8],
        what: &'static str,
        rec: u64,
    ) -> Result<()> {
        for p in Pieces::new(runs, self.cs(), off, data.len(), what, rec) {
            let p = p?;
            let d = &data[p.at..p.at + p.len];
            match p.dev {
                None if d.iter().any(|b| *b != 0) => {
                    return Err(Error::unsupported(
                        Some(rec),
                        "write into a sparse run without allocation",
                    ))
                }
                None => {}
                Some(dev) => self.write_raw(dev, d)?,
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- records

    /// Read and validate MFT record `num` (fixups verified and removed).
    ///
    /// # Errors
    /// [`Error::Corrupt`] located in the record; disk errors.
    pub fn read_record(&self, num: u64) -> Result<Record> {
        let rs = u64::from(self.boot.record_size);
        let off = num.checked_mul(rs).ok_or_else(|| {
            Error::corrupt("MFT", Some(num), Offset::Whole, "record number overflow")
        })?;
        if num != 0 && off.checked_add(rs).is_none_or(|e| e > self.mft_size) {
            return Err(Error::corrupt(
                "MFT",
                Some(num),
                Offset::Stream(off),
                "record beyond the end of $MFT",
            ));
        }
        let mut buf = vec![0u8; rs as usize];
        self.read_runs(&self.mft_runs, off, &mut buf, "$MFT data", MFT)?;
        Self::record_from(num, buf)
    }

    /// Every MFT record in order, `f(number, record or the error reading it)`, read from
    /// `$MFT` in batches of [`SCAN_BATCH`] records: a whole-volume pass (descriptor owners,
    /// legacy descriptors, extents) was one small read through every device layer per record.
    /// A batch that does not read is retried record by record, so each record gets the error
    /// [`Volume::read_record`] gives.
    pub fn scan_records(&self, mut f: impl FnMut(u64, Result<Record>)) {
        let rs = u64::from(self.boot.record_size);
        let total = self.mft_records();
        let mut first = 0;
        let mut buf = Vec::new();
        while first < total {
            let n = SCAN_BATCH.min(total - first);
            buf.resize((n * rs) as usize, 0);
            if self
                .read_runs(&self.mft_runs, first * rs, &mut buf, "$MFT data", MFT)
                .is_err()
            {
                for num in first..first + n {
                    f(num, self.read_record(num));
                }
            } else {
                for (k, raw) in buf.chunks_exact(rs as usize).enumerate() {
                    let num = first + k as u64;
                    f(num, Self::record_from(num, raw.to_vec()));
                }
            }
            first += n;
        }
    }

    /// A record from its raw bytes: fixups removed, header parsed and checked.
    fn record_from(num: u64, mut buf: Vec<u8>) -> Result<Record> {
        record::remove_fixups(&mut buf, "MFT record", Some(num))?;
        let r = Record::parse(num, buf)?;
        let h = r.header();
        let stored = h.record_number.get();
        // Before NTFS 3.1 the update sequence array sits where the record number is.
        if usize::from(h.multi_sector.usa_offset.get()) >= crate::layout::record::LEN
            && u64::from(stored) != num & 0xFFFF_FFFF
            && r.in_use()
        {
            return Err(Error::corrupt(
                "MFT record header",
                Some(num),
                Offset::Record(core::mem::offset_of!(
                    crate::layout::record::FileRecordHeader,
                    record_number
                ) as u64),
                format!("record number field {stored}"),
            ));
        }
        Ok(r)
    }

    /// Write a record back (fixups re-applied with a new USN; records in `$MFTMirr` mirrored).
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the record header is malformed; disk errors.
    pub(crate) fn write_record(&mut self, rec: &mut Record) -> Result<()> {
        rec.validate()?;
        let rs = u64::from(self.boot.record_size);
        // Bytes past the used size are never read, but hold whatever a longer version of the
        // record had there (old names, old descriptors): zero them so no old identity stays.
        let used = rec.used().min(rec.buf.len());
        rec.buf[used..].fill(0);
        let mut b = rec.buf.clone();
        record::apply_fixups(&mut b, "MFT record", Some(rec.num))?;
        if let Some(usn) = record::usn(&b) {
            record::set_usn(&mut rec.buf, usn);
        }
        let runs = self.mft_runs.clone();
        self.write_runs(&runs, rec.num * rs, &b, "$MFT data", MFT)?;
        if rec.num < self.boot.mirror_records() {
            let off = self.boot.mftmirr_lcn * self.cs() + rec.num * rs;
            self.write_raw(off, &b)?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------- streams

    /// The entries of record `r`'s `$ATTRIBUTE_LIST` (empty when it has none), in list order.
    ///
    /// # Errors
    /// [`Error::Corrupt`] located in the list (offsets relative to the list's value) for an
    /// entry whose length or name lies outside it, or a list above 16 MiB.
    pub(crate) fn attribute_list(&self, r: &Record) -> Result<Vec<ListEntry>> {
        let base = r.num;
        let Some(al) = r.find(ATTRIBUTE_LIST, &[])? else {
            return Ok(Vec::new());
        };
        if al.size > 1 << 24 {
            return Err(Error::corrupt(
                "$ATTRIBUTE_LIST",
                Some(base),
                Offset::Record(al.off as u64),
                "larger than 16 MiB",
            ));
        }
        let list = if al.nonres {
            let runs = al.runs(&r.buf, base)?;
            let mut v = vec![0u8; al.size as usize];
            self.read_runs(&runs, 0, &mut v, "$ATTRIBUTE_LIST", base)?;
            v
        } else {
            r.value(&al).to_vec()
        };
        let mut out = Vec::new();
        let mut pos = 0usize;
        while let Some(h) = list.get(pos..).and_then(AttributeListEntry::view) {
            let elen = usize::from(h.length.get());
            if elen < attribute_list::LEN || pos + elen > list.len() {
                return Err(Error::corrupt(
                    "$ATTRIBUTE_LIST entry",
                    Some(base),
                    Offset::Stream(pos as u64),
                    "bad length",
                ));
            }
            let name = attribute_list::name(&list[pos..pos + elen]).ok_or_else(|| {
                Error::corrupt(
                    "$ATTRIBUTE_LIST entry",
                    Some(base),
                    Offset::Stream(pos as u64),
                    "name outside entry",
                )
            })?;
            out.push(ListEntry {
                ty: h.type_code.get(),
                name,
                lowest_vcn: h.lowest_vcn.get(),
                record: h.record(),
            });
            pos += elen;
        }
        Ok(out)
    }

    /// Locate attribute `ty`/`name` of base record `base`, following an attribute list.
    pub(crate) fn stream(&self, base: u64, ty: u32, name: &[u16]) -> Result<Option<Stream>> {
        let r = self.read_record(base)?;
        let mut pieces: Vec<(u64, Attr, Vec<u8>)> = Vec::new();
        if r.find(ATTRIBUTE_LIST, &[])?.is_some() {
            let mut seen = Vec::new();
            for e in self.attribute_list(&r)? {
                if e.ty == ty && e.name == name && !seen.contains(&e.record) {
                    seen.push(e.record);
                }
            }
            for m in seen {
                let rr = if m == base {
                    r.clone()
                } else {
                    self.read_record(m)?
                };
                for a in rr.attrs()? {
                    if a.ty == ty && a.name == name {
                        pieces.push((m, a, rr.buf.clone()));
                    }
                }
            }
        } else {
            for a in r.attrs()? {
                if a.ty == ty && a.name == name {
                    pieces.push((base, a, r.buf.clone()));
                    break;
                }
            }
        }
        if pieces.is_empty() {
            return Ok(None);
        }
        pieces.sort_by_key(|p| p.1.lowest_vcn);
        let (hrec, first, _) = &pieces[0];
        if !first.nonres {
            let v = pieces[0].2
                [first.off + first.value_off..first.off + first.value_off + first.value_len]
                .to_vec();
            let _ = v;
            return Ok(Some(Stream {
                base,
                ty,
                name: name.to_vec(),
                resident: true,
                runs: Vec::new(),
                size: first.size,
                init: first.size,
                alloc: first.size,
                flags: first.flags,
                in_base: *hrec == base,
                header_rec: *hrec,
                compression_unit: 0,
            }));
        }
        let mut runs = Vec::new();
        for (m, a, buf) in &pieces {
            if !a.nonres {
                return Err(Error::corrupt(
                    "attribute header",
                    Some(*m),
                    Offset::Record(a.off as u64),
                    "mixed resident/non-resident pieces",
                ));
            }
            let rr = a.runs(buf, *m)?;
            if let (Some(l), Some(f)) = (runs.last(), rr.first()) {
                let l: &Run = l;
                if l.vcn + l.len != f.vcn {
                    return Err(Error::corrupt(
                        "attribute header",
                        Some(*m),
                        Offset::Record(a.off as u64),
                        "runlist pieces are not contiguous",
                    ));
                }
            }
            runs.extend(rr);
        }
        let cs = self.cs();
        let mapped = runs.last().map(|r| r.vcn + r.len).unwrap_or(0);
        if first.compression_unit == 0 && mapped.saturating_mul(cs) < first.alloc {
            return Err(Error::corrupt(
                "attribute header",
                Some(*hrec),
                Offset::Record(first.off as u64),
                format!(
                    "runlist maps {} bytes, allocated size is {}",
                    mapped.saturating_mul(cs),
                    first.alloc
                ),
            ));
        }
        Ok(Some(Stream {
            base,
            ty,
            name: name.to_vec(),
            resident: false,
            runs,
            size: first.size,
            init: first.init,
            alloc: first.alloc,
            flags: first.flags,
            in_base: pieces.len() == 1 && *hrec == base,
            header_rec: *hrec,
            compression_unit: first.compression_unit,
        }))
    }

    /// Read stream bytes at `off` (zeros past the initialized size). `buf` must lie within size.
    pub(crate) fn read_stream(&self, s: &Stream, off: u64, buf: &mut [u8]) -> Result<()> {
        if off + buf.len() as u64 > s.size {
            return Err(Error::Invalid(format!(
                "read past end of stream ({} > {})",
                off + buf.len() as u64,
                s.size
            )));
        }
        if s.resident {
            let r = self.read_record(s.header_rec)?;
            let a = r.find(s.ty, &s.name)?.ok_or_else(|| {
                Error::corrupt(
                    "attribute header",
                    Some(s.header_rec),
                    Offset::Whole,
                    "attribute vanished",
                )
            })?;
            let v = r.value(&a);
            buf.copy_from_slice(&v[off as usize..off as usize + buf.len()]);
            return Ok(());
        }
        if s.flags & attribute::FLAG_ENCRYPTED != 0 {
            return Err(Error::unsupported(
                Some(s.base),
                "reading an encrypted stream",
            ));
        }
        if s.flags & attribute::FLAG_COMPRESSED != 0 {
            return self.read_compressed(s, off, buf);
        }
        let end = off + buf.len() as u64;
        let init_end = end.min(s.init);
        if off < init_end {
            let n = (init_end - off) as usize;
            self.read_runs(&s.runs, off, &mut buf[..n], "attribute data", s.base)?;
            buf[n..].fill(0);
        } else {
            buf.fill(0);
        }
        Ok(())
    }

    fn read_compressed(&self, s: &Stream, off: u64, buf: &mut [u8]) -> Result<()> {
        if s.compression_unit == 0 || s.compression_unit > 8 {
            return Err(Error::unsupported(
                Some(s.base),
                format!("compression unit {}", s.compression_unit),
            ));
        }
        let cs = self.cs();
        let cu = 1u64 << s.compression_unit;
        let unit = cu * cs;
        let end = off + buf.len() as u64;
        let mut u = off / unit;
        let mut ubuf = vec![0u8; unit as usize];
        while u * unit < end {
            let v0 = u * cu;
            let mut alloc = 0u64;
            for r in &s.runs {
                let a = r.vcn.max(v0);
                let b = (r.vcn + r.len).min(v0 + cu);
                if a < b && r.lcn.is_some() {
                    alloc += b - a;
                }
            }
            if alloc == 0 {
                ubuf.fill(0);
            } else if alloc >= cu {
                self.read_runs(&s.runs, u * unit, &mut ubuf, "compressed data", s.base)?;
            } else {
                let mut src = vec![0u8; (alloc * cs) as usize];
                self.read_runs(&s.runs, u * unit, &mut src, "compressed data", s.base)?;
                crate::compression::lznt1_decompress(&src, &mut ubuf, Some(s.base), u * unit)?;
            }
            let us = u * unit;
            let a = us.max(off);
            let b = (us + unit).min(end);
            buf[(a - off) as usize..(b - off) as usize]
                .copy_from_slice(&ubuf[(a - us) as usize..(b - us) as usize]);
            u += 1;
        }
        // Past the initialized size reads as zero.
        if s.init < end {
            let z = s.init.max(off);
            buf[(z - off) as usize..].fill(0);
        }
        Ok(())
    }

    /// Whole attribute value.
    pub(crate) fn read_all(&self, base: u64, ty: u32, name: &[u16]) -> Result<Vec<u8>> {
        let s = self.stream(base, ty, name)?.ok_or_else(|| {
            Error::corrupt(
                "attribute",
                Some(base),
                Offset::Whole,
                format!("missing attribute 0x{ty:x}"),
            )
        })?;
        if s.size > 1 << 32 {
            return Err(Error::unsupported(
                Some(base),
                "stream larger than 4 GiB read into memory",
            ));
        }
        let mut v = vec![0u8; s.size as usize];
        self.read_stream(&s, 0, &mut v)?;
        Ok(v)
    }

    /// Write bytes that lie within the allocated clusters of a non-resident stream, or within a
    /// resident value. Updates the initialized size (zero-filling the gap) and allocates
    /// clusters for sparse runs touched by the write.
    pub(crate) fn write_stream_data(
        &mut self,
        s_out: &mut Stream,
        off: u64,
        data: &[u8],
    ) -> Result<()> {
        let s: &Stream = s_out;
        let end = off + data.len() as u64;
        if end > s.size {
            return Err(Error::Invalid(format!(
                "write past end of stream ({end} > {})",
                s.size
            )));
        }
        if data.is_empty() {
            return Ok(());
        }
        if s.resident {
            let mut r = self.read_record(s.header_rec)?;
            let a = r.find(s.ty, &s.name)?.ok_or_else(|| {
                Error::corrupt(
                    "attribute header",
                    Some(s.header_rec),
                    Offset::Whole,
                    "attribute vanished",
                )
            })?;
            let vo = a.off + a.value_off + off as usize;
            r.buf[vo..vo + data.len()].copy_from_slice(data);
            return self.write_record(&mut r);
        }
        if s.flags & (attribute::FLAG_COMPRESSED | attribute::FLAG_ENCRYPTED) != 0 {
            return Err(Error::unsupported(
                Some(s.base),
                "writing a compressed or encrypted stream",
            ));
        }
        let cs = self.cs();
        let mut s = s.clone();
        let r = self.write_nonres_inner(&mut s, off, data, end, cs);
        *s_out = s;
        r
    }

    fn write_nonres_inner(
        &mut self,
        s: &mut Stream,
        off: u64,
        data: &[u8],
        end: u64,
        cs: u64,
    ) -> Result<()> {
        // Allocate sparse clusters touched by the write.
        let (c0, c1) = (off / cs, end.div_ceil(cs));
        if s.runs
            .iter()
            .any(|r| r.lcn.is_none() && r.vcn < c1 && r.vcn + r.len > c0)
        {
            if !s.in_base {
                return Err(Error::unsupported(
                    Some(s.base),
                    "allocating into a sparse stream described by an attribute list",
                ));
            }
            let mut new_runs = Vec::new();
            let hint = s
                .runs
                .iter()
                .filter_map(|r| r.lcn.map(|l| l + r.len))
                .next_back()
                .unwrap_or(0);
            for r in s.runs.clone() {
                if r.lcn.is_some() || r.vcn >= c1 || r.vcn + r.len <= c0 {
                    new_runs.push(r);
                    continue;
                }
                let a = r.vcn.max(c0);
                let b = (r.vcn + r.len).min(c1);
                if a > r.vcn {
                    new_runs.push(Run {
                        vcn: r.vcn,
                        len: a - r.vcn,
                        lcn: None,
                    });
                }
                let ext = self.alloc_clusters(b - a, hint, false)?;
                let mut v = a;
                for (l, n) in ext {
                    self.zero_clusters(l, n)?;
                    new_runs.push(Run {
                        vcn: v,
                        len: n,
                        lcn: Some(l),
                    });
                    v += n;
                }
                if b < r.vcn + r.len {
                    new_runs.push(Run {
                        vcn: b,
                        len: r.vcn + r.len - b,
                        lcn: None,
                    });
                }
            }
            data_run::normalize(&mut new_runs);
            s.runs = new_runs;
            self.rewrite_nonres(s)?;
        }
        // Zero-fill between the initialized size and the write.
        if off > s.init {
            let mut p = s.init;
            let z = vec![0u8; 1 << 16];
            while p < off {
                let n = (off - p).min(z.len() as u64) as usize;
                self.write_runs_skip_sparse(&s.runs, p, &z[..n], s.base)?;
                p += n as u64;
            }
        }
        let runs = s.runs.clone();
        self.write_runs(&runs, off, data, "attribute data", s.base)?;
        if end > s.init {
            s.init = end;
            self.set_nonres_sizes(s)?;
        }
        Ok(())
    }

    /// Fill a freshly sized, non-resident, fully allocated stream with `len` bytes from
    /// `reader`, 1 MiB at a time, through [`Volume::write_direct`]; the end of the last
    /// cluster is zeroed. Sets the initialized size to `len`. `Error::Source` errors carry an
    /// empty path (the caller names the file).
    pub(crate) fn stream_into_runs(
        &mut self,
        s: &mut Stream,
        reader: &mut dyn std::io::Read,
        len: u64,
    ) -> Result<()> {
        const CHUNK: usize = 1 << 20;
        let cs = self.cs();
        if s.size != len || s.alloc < len || s.runs.iter().any(|r| r.lcn.is_none()) {
            return Err(Error::Invalid(format!(
                "record {}: stream not sized and allocated for {len} bytes",
                s.base
            )));
        }
        let mut buf = vec![0u8; CHUNK];
        let mut pos = 0u64;
        let padded = len.div_ceil(cs) * cs;
        while pos < padded {
            let n = (padded - pos).min(CHUNK as u64) as usize;
            let data = (len.saturating_sub(pos) as usize).min(n);
            reader
                .read_exact(&mut buf[..data])
                .map_err(|e| Error::Source {
                    path: String::new(),
                    offset: pos,
                    source: e,
                })?;
            buf[data..n].fill(0);
            self.write_runs_direct(&s.runs, pos, &buf[..n], s.base)?;
            pos += n as u64;
        }
        s.init = len;
        self.set_nonres_sizes(s)
    }

    /// [`Volume::write_runs`] through [`Volume::write_direct`] (every run allocated).
    fn write_runs_direct(&mut self, runs: &[Run], off: u64, data: &[u8], rec: u64) -> Result<()> {
        for p in Pieces::new(runs, self.cs(), off, data.len(), "attribute data", rec) {
            let p = p?;
            let dev = p.dev.ok_or_else(|| {
                Error::unsupported(Some(rec), "write into a sparse run without allocation")
            })?;
            self.write_direct(dev, &data[p.at..p.at + p.len])?;
        }
        Ok(())
    }

    fn write_runs_skip_sparse(
        &mut self,
        runs: &[Run],
        off: u64,
        data: &[u8],
        rec: u64,
    ) -> Result<()> {
        // Zero data: sparse parts already read as zero.
        for p in Pieces::new(runs, self.cs(), off, data.len(), "attribute data", rec) {
            let p = p?;
            if let Some(dev) = p.dev {
                self.write_raw(dev, &data[p.at..p.at + p.len])?;
            }
        }
        Ok(())
    }

    pub(crate) fn zero_clusters(&mut self, lcn: u64, n: u64) -> Result<()> {
        let cs = self.cs();
        let z = vec![0u8; (cs * n.min(256)) as usize];
        let mut done = 0;
        while done < n {
            let k = (n - done).min(256);
            self.write_direct((lcn + done) * cs, &z[..(k * cs) as usize])?;
            done += k;
        }
        Ok(())
    }

    /// Update only the size fields of the header piece (lowest VCN 0).
    fn set_nonres_sizes(&mut self, s: &Stream) -> Result<()> {
        let mut r = self.read_record(s.header_rec)?;
        let a = r
            .attrs()?
            .into_iter()
            .find(|a| a.ty == s.ty && a.name == s.name && a.nonres && a.lowest_vcn == 0)
            .ok_or_else(|| {
                Error::corrupt(
                    "attribute header",
                    Some(s.header_rec),
                    Offset::Whole,
                    "attribute vanished",
                )
            })?;
        let num = r.num;
        let n =
            crate::layout::attribute::non_resident_mut(r.attr_bytes_mut(&a)?).ok_or_else(|| {
                Error::corrupt(
                    "attribute header",
                    Some(num),
                    Offset::Record(a.off as u64),
                    "non-resident header too short",
                )
            })?;
        n.allocated_size = s.alloc.into();
        n.data_size = s.size.into();
        n.initialized_size = s.init.into();
        self.write_record(&mut r)
    }

    pub(crate) fn set_nonres_sizes_pub(&mut self, s: &Stream) -> Result<()> {
        self.set_nonres_sizes(s)
    }

    /// Rewrite a single-piece non-resident attribute in the base record with `s`'s runs and sizes.
    pub(crate) fn rewrite_nonres(&mut self, s: &Stream) -> Result<()> {
        if !s.in_base {
            return Err(Error::unsupported(
                Some(s.base),
                "changing the runlist of an attribute spread over an attribute list",
            ));
        }
        let mut r = self.read_record(s.base)?;
        let a = r.find(s.ty, &s.name)?.ok_or_else(|| {
            Error::corrupt(
                "attribute header",
                Some(s.base),
                Offset::Whole,
                "attribute vanished",
            )
        })?;
        let cs = self.cs();
        let sparse = s.flags & attribute::FLAG_SPARSE != 0;
        let real: u64 = s
            .runs
            .iter()
            .filter(|r| r.lcn.is_some())
            .map(|r| r.len)
            .sum::<u64>()
            * cs;
        let bytes = attribute::build_nonresident(
            s.ty,
            &s.name,
            s.flags,
            &s.runs,
            NonResSizes {
                alloc: s.alloc,
                size: s.size,
                init: s.init,
                compressed: sparse.then_some(real),
            },
        );
        let _ = a.compression_unit;
        r.replace_attr(&a, bytes)?;
        self.write_record(&mut r)?;
        if s.base == MFT && s.ty == DATA && s.name.is_empty() {
            self.mft_runs = s.runs.clone();
            self.mft_size = s.size;
        }
        Ok(())
    }

    /// Resize an attribute's value to `n` bytes (grow or shrink; resident ↔ non-resident as
    /// needed). New bytes read as zero.
    pub(crate) fn set_stream_len(
        &mut self,
        base: u64,
        ty: u32,
        name: &[u16],
        n: u64,
        g: Grow,
    ) -> Result<()> {
        let s = self.stream(base, ty, name)?.ok_or_else(|| {
            Error::corrupt(
                "attribute",
                Some(base),
                Offset::Whole,
                format!("missing attribute 0x{ty:x}"),
            )
        })?;
        if s.size == n {
            return Ok(());
        }
        if s.flags & (attribute::FLAG_COMPRESSED | attribute::FLAG_ENCRYPTED) != 0 {
            return Err(Error::unsupported(
                Some(base),
                "resizing a compressed or encrypted stream",
            ));
        }
        let cs = self.cs();
        if s.resident {
            if !s.in_base {
                return Err(Error::unsupported(
                    Some(base),
                    "resizing an attribute held in an extension record",
                ));
            }
            let mut r = self.read_record(base)?;
            let a = r.find(ty, name)?.ok_or_else(|| {
                Error::corrupt("attribute", Some(base), Offset::Whole, "vanished")
            })?;
            // Decide before building the value: `n` may be gigabytes (a streamed file).
            let fits = n <= u64::from(self.boot.record_size) && {
                let newlen = (0x18 + 2 * name.len()).div_ceil(8) * 8 + (n as usize).div_ceil(8) * 8;
                r.used() - a.len + newlen <= r.buf.len()
            };
            if fits {
                let mut val = r.value(&a).to_vec();
                val.resize(n as usize, 0);
                let bytes = attribute::build_resident(ty, name, &val, a.indexed);
                r.replace_attr(&a, bytes)?;
                self.write_record(&mut r)?;
                return self.after_data_resize(base, ty, name);
            }
            // Convert to non-resident.
            let clusters = n.div_ceil(cs);
            let ext = self.alloc_clusters(clusters, 0, g.mft_zone)?;
            let mut runs = Vec::new();
            let mut v = 0;
            for (l, k) in ext {
                runs.push(Run {
                    vcn: v,
                    len: k,
                    lcn: Some(l),
                });
                v += k;
            }
            let old_len = a.value_len as u64;
            let mut init = old_len;
            // Write old value padded to a cluster boundary (so no stale bytes inside it).
            let mut first = r.value(&a).to_vec();
            first.resize(
                (old_len.div_ceil(cs).max(1) * cs).min(clusters * cs) as usize,
                0,
            );
            self.write_runs(&runs, 0, &first, "attribute data", base)?;
            if g.zero {
                let rest_start = first.len() as u64 / cs;
                for run in &runs {
                    let (s0, e0) = (run.vcn.max(rest_start), run.vcn + run.len);
                    if s0 < e0 {
                        self.zero_clusters(run.lcn.unwrap_or(0) + (s0 - run.vcn), e0 - s0)?;
                    }
                }
                init = n;
            }
            let bytes = attribute::build_nonresident(
                ty,
                name,
                a.flags & !(attribute::FLAG_SPARSE),
                &runs,
                NonResSizes {
                    alloc: clusters * cs,
                    size: n,
                    init,
                    compressed: None,
                },
            );
            r.replace_attr(&a, bytes)?;
            self.write_record(&mut r)?;
            return self.after_data_resize(base, ty, name);
        }
        let mut s = s;
        if n < s.size && s.in_base {
            // The last cluster the stream keeps holds old data after the new end: zero it, so
            // truncating a log or a hive leaves none of its old contents on the volume (the
            // clusters given up are zeroed when they are freed).
            let end = s.size.min(n.div_ceil(cs) * cs);
            if end > n {
                let zeros = vec![0u8; (end - n) as usize];
                self.write_stream_data(&mut s, n, &zeros)?;
            }
        }
        if !s.in_base {
            // Size-only change within the allocation is possible in the header record.
            if n <= s.alloc && n.div_ceil(cs) * cs == s.alloc.max(cs) && n >= s.init {
                s.size = n;
                self.set_nonres_sizes(&s)?;
                return self.after_data_resize(base, ty, name);
            }
            return Err(Error::unsupported(
                Some(base),
                "resizing a stream described by an attribute list",
            ));
        }
        let want = n.div_ceil(cs);
        let have = s.runs.last().map(|r| r.vcn + r.len).unwrap_or(0);
        if want > have {
            let hint = s
                .runs
                .iter()
                .filter_map(|r| r.lcn.map(|l| l + r.len))
                .next_back()
                .unwrap_or(0);
            let ext = self.alloc_clusters(want - have, hint, g.mft_zone)?;
            let mut v = have;
            for (l, k) in ext {
                if g.zero {
                    self.zero_clusters(l, k)?;
                }
                s.runs.push(Run {
                    vcn: v,
                    len: k,
                    lcn: Some(l),
                });
                v += k;
            }
            data_run::normalize(&mut s.runs);
            if g.zero && s.init == s.size {
                s.init = n;
            }
        } else if want < have {
            let mut keep = Vec::new();
            let mut free = Vec::new();
            for r in &s.runs {
                if r.vcn + r.len <= want {
                    keep.push(*r);
                } else if r.vcn >= want {
                    if let Some(l) = r.lcn {
                        free.push((l, r.len));
                    }
                } else {
                    let k = want - r.vcn;
                    keep.push(Run {
                        vcn: r.vcn,
                        len: k,
                        lcn: r.lcn,
                    });
                    if let Some(l) = r.lcn {
                        free.push((l + k, r.len - k));
                    }
                }
            }
            self.free_clusters(&free)?;
            s.runs = keep;
        }
        s.alloc = want * cs;
        s.size = n;
        s.init = s.init.min(n);
        self.rewrite_nonres(&s)?;
        self.after_data_resize(base, ty, name)
    }

    /// Keep the `$FILE_NAME` size copies (record and parent index) in step with unnamed `$DATA`.
    fn after_data_resize(&mut self, base: u64, ty: u32, name: &[u16]) -> Result<()> {
        if ty != DATA || !name.is_empty() || base < 16 {
            return Ok(());
        }
        let s = self
            .stream(base, DATA, &[])?
            .ok_or_else(|| Error::corrupt("attribute", Some(base), Offset::Whole, "vanished"))?;
        let alloc = if s.resident {
            (s.size + 7) & !7
        } else {
            s.alloc
        };
        self.update_file_name_sizes(base, alloc, s.size)
    }

    pub(crate) fn update_file_name_sizes(
        &mut self,
        base: u64,
        alloc: u64,
        size: u64,
    ) -> Result<()> {
        let mut r = self.read_record(base)?;
        let mut by_parent: BTreeMap<u64, Vec<Vec<u8>>> = BTreeMap::new();
        let mut changed = false;
        for a in r.attrs()? {
            if a.ty == FILE_NAME && !a.nonres && a.value_len >= 66 {
                let v = r.value_mut(&a)?;
                let Ok((f, _)) = crate::layout::file_name::FileName::mut_from_prefix(&mut *v)
                else {
                    continue;
                };
                f.allocated_size = alloc.into();
                f.data_size = size.into();
                let parent = f.parent_record();
                by_parent.entry(parent).or_default().push(v.to_vec());
                changed = true;
            }
        }
        if changed {
            self.write_record(&mut r)?;
        }
        for (p, keys) in by_parent {
            self.patch_dir_entries(p, &keys, alloc, size)?;
        }
        Ok(())
    }
}
