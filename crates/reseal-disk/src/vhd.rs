//! VHD (Virtual PC / Hyper-V v1) containers: fixed, dynamic and differencing; read and write.
//!
//! Layout (all fields big-endian; FORMATS.md E.1): a 512-byte footer at the end of the file
//! (dynamic and differencing disks keep a copy at offset 0), for sparse disks a 1024-byte dynamic
//! header and a BAT of u32 sector numbers; each allocated block is a sector bitmap followed by the
//! block's data.
//!
//! Checksums (one's complement of the byte sum) are verified on open. If the footer at the end
//! is bad but the copy at offset 0 is good, the copy is used. In *lenient* mode (used for
//! read-only opens) a bad checksum on an otherwise well-formed structure is accepted and reported
//! in [`Vhd::warnings`] — the dfvfs test images carry wrong checksums that other readers ignore.
//!
//! Writes allocate blocks as qemu does: the new block starts at the old footer position, its
//! bitmap is all ones (dynamic) or all zeros (differencing, bits then set per written sector), the
//! data is left zero (the file grows sparsely), the BAT entry is written and the footer is
//! rewritten at the new end.

use std::path::Path;

use zerocopy::big_endian::{U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use crate::layout::vhd::{
    ParentLocatorEntry, VhdDynamicHeader, VhdFooter, DISK_TYPE_DIFFERENCING, DISK_TYPE_DYNAMIC,
    DISK_TYPE_FIXED, FEATURES_RESERVED, FOOTER_CHECKSUM_OFFSET, FOOTER_COOKIE,
    FOOTER_CURRENT_SIZE_OFFSET, FOOTER_DISK_TYPE_OFFSET, HEADER_BLOCK_SIZE_OFFSET,
    HEADER_CHECKSUM_OFFSET, HEADER_COOKIE, HEADER_MAX_TABLE_ENTRIES_OFFSET,
    HEADER_PARENT_LOCATORS_OFFSET, VERSION_1_0,
};
use crate::raw::HostFile;
use crate::{check_bounds, Device, Error, Result};

/// Size of the footer.
pub const FOOTER_SIZE: u64 = 512;
const HEADER_SIZE: usize = size_of::<VhdDynamicHeader>();
const UNALLOCATED: u32 = 0xFFFF_FFFF;
/// Seconds from 1970-01-01 to 2000-01-01 (the VHD epoch).
const VHD_EPOCH: u64 = 946_684_800;
/// Creator application written by reseal.
const CREATOR: &[u8; 4] = b"rsl ";

/// VHD disk type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VhdType {
    /// Data followed by the footer.
    Fixed,
    /// Sparse, unallocated blocks read as zeros.
    Dynamic,
    /// Sparse, unallocated blocks and clear bitmap bits read from the parent.
    Differencing,
}

/// The VHD checksum: one's complement of the byte sum, with the 4-byte field at `field` taken as 0.
pub fn checksum(bytes: &[u8], field: usize) -> u32 {
    let mut sum: u32 = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if i < field || i >= field + 4 {
            sum = sum.wrapping_add(u32::from(b));
        }
    }
    !sum
}

/// A parsed footer.
#[derive(Debug, Clone)]
pub struct Footer {
    /// The 512 bytes as stored.
    pub raw: [u8; 512],
    /// Disk type.
    pub disk_type: VhdType,
    /// Offset of the dynamic header (sparse types).
    pub data_offset: u64,
    /// Current size field.
    pub current_size: u64,
    /// Creator application, e.g. `b"qemu"`, `b"win "`.
    pub creator_app: [u8; 4],
    /// Geometry (cylinders, heads, sectors per track).
    pub geometry: (u16, u8, u8),
    /// Unique id.
    pub uuid: [u8; 16],
    /// Timestamp (seconds since 2000-01-01 UTC).
    pub timestamp: u32,
    /// True if the stored checksum is right.
    pub checksum_ok: bool,
}

impl Footer {
    /// Parse a footer at file offset `offset` (for error messages).
    ///
    /// # Errors
    /// [`Error::Corrupt`] if the signature or type is wrong (checksum mismatches are reported in
    /// [`Footer::checksum_ok`]).
    pub fn parse(raw: &[u8], offset: u64) -> Result<Self> {
        let raw: [u8; 512] = raw
            .get(..512)
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| Error::corrupt("VHD footer", offset, "shorter than 512 bytes"))?;
        let v: &VhdFooter = zerocopy::transmute_ref!(&raw);
        if v.cookie != FOOTER_COOKIE {
            return Err(Error::corrupt(
                "VHD footer",
                offset,
                "no \"conectix\" signature",
            ));
        }
        let disk_type = match v.disk_type.get() {
            DISK_TYPE_FIXED => VhdType::Fixed,
            DISK_TYPE_DYNAMIC => VhdType::Dynamic,
            DISK_TYPE_DIFFERENCING => VhdType::Differencing,
            t => {
                return Err(Error::corrupt(
                    "VHD footer",
                    offset + FOOTER_DISK_TYPE_OFFSET as u64,
                    format!("unknown disk type {t}"),
                ))
            }
        };
        let checksum_ok = checksum(&raw, FOOTER_CHECKSUM_OFFSET) == v.checksum.get();
        Ok(Footer {
            disk_type,
            data_offset: v.data_offset.get(),
            current_size: v.current_size.get(),
            creator_app: v.creator_application,
            geometry: (v.cylinders.get(), v.heads, v.sectors_per_track),
            uuid: v.unique_id,
            timestamp: v.time_stamp.get(),
            checksum_ok,
            raw,
        })
    }

    /// The stored footer as a typed view.
    pub fn view(&self) -> &VhdFooter {
        zerocopy::transmute_ref!(&self.raw)
    }

    /// The virtual disk size as qemu computes it: from CHS geometry for images made by Virtual
    /// PC (`"vpc "`) and old qemu (`"qemu"`) unless the geometry is the maximum; from the
    /// current-size field otherwise.
    pub fn virtual_size(&self) -> u64 {
        let (c, h, s) = self.geometry;
        let chs_max = c == 65535 && h == 16 && s == 255;
        if (&self.creator_app == b"vpc " || &self.creator_app == b"qemu") && !chs_max {
            u64::from(c) * u64::from(h) * u64::from(s) * 512
        } else {
            self.current_size
        }
    }
}

/// A parent locator entry of the dynamic header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParentLocator {
    /// Platform code, e.g. `b"W2ru"`.
    pub code: [u8; 4],
    /// The decoded path (UTF-16 LE for W2ru/W2ku, UTF-8 for Mac codes).
    pub path: String,
}

/// Where a differencing disk says its parent is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParentInfo {
    /// Parent's unique id (must match the parent's footer).
    pub uuid: [u8; 16],
    /// Parent unicode name from the dynamic header.
    pub name: String,
    /// Locators, in header order.
    pub locators: Vec<ParentLocator>,
}

#[derive(Debug, Clone)]
struct Sparse {
    bat_offset: u64,
    bat: Vec<u32>,
    block_size: u64,
    bitmap_size: u64,
    next_free: u64,
    parent: ParentInfo,
}

/// A VHD container over `D` (the host file, usually through a [`crate::Journal`]), presenting the
/// virtual disk.
pub struct Vhd<D: Device> {
    inner: D,
    footer: Footer,
    size: u64,
    sparse: Option<Sparse>,
    parent: Option<Box<dyn Device>>,
    warnings: Vec<String>,
    /// The block table as it was at each open savepoint, outermost first (the table is written
    /// through to `inner` as blocks are allocated; a rollback of `inner` takes those writes back
    /// and this puts the in-memory copy back with them).
    savepoints: crate::device::SavedStates<Option<Sparse>>,
}

impl<D: Device> std::fmt::Debug for Vhd<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vhd")
            .field("type", &self.footer.disk_type)
            .field("size", &self.size)
            .field("has_parent", &self.parent.is_some())
            .finish_non_exhaustive()
    }
}

/// True if `dev` looks like a VHD: a "conectix" footer in its last 512 bytes, or (a sparse VHD
/// whose end was truncated or damaged) a footer copy of a dynamic/differencing disk at offset 0.
pub fn detect(dev: &dyn Device) -> bool {
    let len = dev.len();
    if len < FOOTER_SIZE {
        return false;
    }
    let mut sig = [0u8; 8];
    if dev.read_at(len - FOOTER_SIZE, &mut sig).is_ok() && sig == FOOTER_COOKIE {
        return true;
    }
    let mut head = [0u8; 512];
    dev.read_at(0, &mut head).is_ok()
        && Footer::parse(&head, 0).is_ok_and(|f| f.disk_type != VhdType::Fixed)
}

impl<D: Device> Vhd<D> {
    /// Open a VHD. With `lenient`, checksum mismatches are warnings instead of errors.
    ///
    /// A differencing disk needs its parent ([`Vhd::set_parent`]) before reading.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the structure and offset.
    pub fn open(inner: D, lenient: bool) -> Result<Self> {
        let len = inner.len();
        let mut warnings = Vec::new();
        if len < FOOTER_SIZE {
            return Err(Error::corrupt(
                "VHD footer",
                0,
                format!("file of {len} bytes is too short"),
            ));
        }
        let end_off = len - FOOTER_SIZE;
        let mut buf = [0u8; 512];
        inner.read_at(end_off, &mut buf)?;
        let end = Footer::parse(&buf, end_off);
        let mut head = None;
        if len >= 2 * FOOTER_SIZE {
            inner.read_at(0, &mut buf)?;
            head = Footer::parse(&buf, 0).ok();
        }
        let footer = match end {
            Ok(f) if f.checksum_ok => f,
            other => {
                if let Some(h) = head.filter(|h| h.checksum_ok && h.disk_type != VhdType::Fixed) {
                    warnings.push(format!(
                        "VHD footer at offset {end_off:#x} is damaged; using the copy at offset 0"
                    ));
                    h
                } else {
                    let f = other?;
                    let msg = format!(
                        "checksum mismatch (stored {:#010x}, computed {:#010x})",
                        f.view().checksum.get(),
                        checksum(&f.raw, FOOTER_CHECKSUM_OFFSET)
                    );
                    if !lenient {
                        return Err(Error::corrupt("VHD footer", end_off, msg));
                    }
                    warnings.push(format!("VHD footer at offset {end_off:#x}: {msg}"));
                    f
                }
            }
        };
        let size = footer.virtual_size();
        if size % 512 != 0 {
            return Err(Error::corrupt(
                "VHD footer",
                end_off + FOOTER_CURRENT_SIZE_OFFSET as u64,
                format!("size {size} is not a multiple of 512"),
            ));
        }
        let sparse = match footer.disk_type {
            VhdType::Fixed => {
                if size > end_off {
                    return Err(Error::corrupt(
                        "VHD footer",
                        end_off,
                        format!("fixed disk of {size} bytes does not fit in a {len}-byte file"),
                    ));
                }
                None
            }
            _ => Some(Self::open_sparse(
                &inner,
                &footer,
                size,
                lenient,
                &mut warnings,
            )?),
        };
        Ok(Self {
            inner,
            footer,
            size,
            sparse,
            parent: None,
            warnings,
            savepoints: Default::default(),
        })
    }

    fn open_sparse(
        inner: &D,
        footer: &Footer,
        size: u64,
        lenient: bool,
        warnings: &mut Vec<String>,
    ) -> Result<Sparse> {
        let len = inner.len();
        let ho = footer.data_offset;
        let hs = "VHD dynamic header";
        if ho
            .checked_add(HEADER_SIZE as u64)
            .is_none_or(|e| e > len - FOOTER_SIZE)
        {
            return Err(Error::corrupt(hs, ho, "offset outside the file"));
        }
        let mut h = VhdDynamicHeader::new_zeroed();
        inner.read_at(ho, h.as_mut_bytes())?;
        if h.cookie != HEADER_COOKIE {
            return Err(Error::corrupt(hs, ho, "no \"cxsparse\" signature"));
        }
        let computed = checksum(h.as_bytes(), HEADER_CHECKSUM_OFFSET);
        if computed != h.checksum.get() {
            let msg = format!(
                "checksum mismatch (stored {:#010x}, computed {computed:#010x})",
                h.checksum.get(),
            );
            if !lenient {
                return Err(Error::corrupt(hs, ho, msg));
            }
            warnings.push(format!("{hs} at offset {ho:#x}: {msg}"));
        }
        let bat_offset = h.table_offset.get();
        let entries = h.max_table_entries.get();
        let block_size = u64::from(h.block_size.get());
        if block_size < 512 || block_size % 512 != 0 || block_size > (1 << 28) {
            return Err(Error::corrupt(
                hs,
                ho + HEADER_BLOCK_SIZE_OFFSET as u64,
                format!("unsupported block size {block_size}"),
            ));
        }
        let needed = size.div_ceil(block_size);
        if u64::from(entries) < needed {
            return Err(Error::corrupt(
                hs,
                ho + HEADER_MAX_TABLE_ENTRIES_OFFSET as u64,
                format!(
                    "{entries} BAT entries cannot map {size} bytes of {block_size}-byte blocks"
                ),
            ));
        }
        let bat_bytes = u64::from(entries) * 4;
        if bat_offset.checked_add(bat_bytes).is_none_or(|e| e > len) {
            return Err(Error::corrupt(
                "VHD BAT",
                bat_offset,
                format!("{entries} entries extend past the end of the file"),
            ));
        }
        let mut raw = vec![U32::ZERO; entries as usize];
        inner.read_at(bat_offset, raw.as_mut_bytes())?;
        let bat: Vec<u32> = raw.iter().map(|e| e.get()).collect();
        let bitmap_size = (block_size / 512).div_ceil(8).div_ceil(512) * 512;
        let mut next_free = (bat_offset + bat_bytes).div_ceil(512) * 512;
        for (i, &e) in bat.iter().enumerate() {
            if e == UNALLOCATED {
                continue;
            }
            if i as u64 >= needed {
                continue;
            }
            let start = u64::from(e) * 512;
            let end = start + bitmap_size + block_size;
            if end > len - FOOTER_SIZE {
                return Err(Error::corrupt(
                    format!("VHD BAT entry {i}"),
                    bat_offset + 4 * i as u64,
                    format!(
                        "block at {start:#x}..{end:#x} extends past the footer at {:#x}",
                        len - FOOTER_SIZE
                    ),
                ));
            }
            next_free = next_free.max(end);
        }
        next_free = next_free.max((len - FOOTER_SIZE).div_ceil(512) * 512);
        let mut parent = ParentInfo::default();
        if footer.disk_type == VhdType::Differencing {
            parent.uuid = h.parent_unique_id;
            parent.name = h.parent_name();
            for (i, e) in h.parent_locator_entries.iter().enumerate() {
                let code = e.platform_code;
                if code == [0; 4] {
                    continue;
                }
                let dlen = u64::from(e.platform_data_length.get()).min(64 * 1024);
                let doff = e.platform_data_offset.get();
                if doff.checked_add(dlen).is_none_or(|x| x > len) {
                    warnings.push(format!(
                        "VHD parent locator {i} at {doff:#x} lies outside the file"
                    ));
                    continue;
                }
                let mut d = vec![0u8; dlen as usize];
                inner.read_at(doff, &mut d)?;
                let path = match &code {
                    b"W2ru" | b"W2ku" => {
                        let (u, _) = <[zerocopy::little_endian::U16]>::ref_from_prefix_with_elems(
                            &d,
                            d.len() / 2,
                        )
                        .map_err(|_| Error::corrupt("VHD parent locator", doff, "unreadable"))?;
                        let u: Vec<u16> = u.iter().map(|c| c.get()).collect();
                        String::from_utf16_lossy(&u)
                    }
                    _ => String::from_utf8_lossy(&d).into_owned(),
                };
                let path = path.trim_end_matches('\0').to_string();
                parent.locators.push(ParentLocator { code, path });
            }
        }
        Ok(Sparse {
            bat_offset,
            bat,
            block_size,
            bitmap_size,
            next_free,
            parent,
        })
    }

    /// Disk type.
    pub fn disk_type(&self) -> VhdType {
        self.footer.disk_type
    }
    /// The footer in use.
    pub fn footer(&self) -> &Footer {
        &self.footer
    }
    /// Block size of sparse disks.
    pub fn block_size(&self) -> Option<u64> {
        self.sparse.as_ref().map(|s| s.block_size)
    }
    /// Where a differencing disk's parent is (None for other types).
    pub fn parent_info(&self) -> Option<&ParentInfo> {
        match (&self.sparse, self.footer.disk_type) {
            (Some(s), VhdType::Differencing) => Some(&s.parent),
            _ => None,
        }
    }
    /// Attach the parent of a differencing disk (its virtual disk device).
    pub fn set_parent(&mut self, parent: Box<dyn Device>) {
        self.parent = Some(parent);
    }
    /// Problems tolerated on open (lenient mode).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// The host device.
    pub fn inner(&self) -> &D {
        &self.inner
    }
    /// The host device, mutably (writing to it directly bypasses the container).
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }
    /// Unwrap.
    pub fn into_inner(self) -> D {
        self.inner
    }

    fn parent_read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let Some(p) = &self.parent else {
            return Err(Error::unsupported(
                "VHD differencing disk",
                offset,
                "the parent disk is not attached",
            ));
        };
        let plen = p.len();
        let avail = plen.saturating_sub(offset).min(buf.len() as u64) as usize;
        if avail > 0 {
            p.read_at(offset, &mut buf[..avail])?;
        }
        buf[avail..].fill(0);
        Ok(())
    }

    fn read_bitmap(&self, s: &Sparse, entry: u32) -> Result<Vec<u8>> {
        let mut bm = vec![0u8; s.bitmap_size as usize];
        self.inner.read_at(u64::from(entry) * 512, &mut bm)?;
        Ok(bm)
    }

    fn read_sparse(&self, s: &Sparse, offset: u64, buf: &mut [u8]) -> Result<()> {
        let diff = self.footer.disk_type == VhdType::Differencing;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let blk = pos / s.block_size;
            let within = pos % s.block_size;
            let n = ((s.block_size - within) as usize).min(buf.len() - done);
            let out = &mut buf[done..done + n];
            let entry = s.bat.get(blk as usize).copied().unwrap_or(UNALLOCATED);
            if entry == UNALLOCATED {
                if diff {
                    self.parent_read(pos, out)?;
                } else {
                    out.fill(0);
                }
            } else {
                let data = u64::from(entry) * 512 + s.bitmap_size;
                if diff {
                    let bm = self.read_bitmap(s, entry)?;
                    let bit = |sec: u64| bm[(sec / 8) as usize] & (0x80 >> (sec % 8)) != 0;
                    let mut i = 0usize;
                    while i < n {
                        let p = within + i as u64;
                        let sec = p / 512;
                        let here = bit(sec);
                        // extend the run of sectors with the same bit
                        let mut sec_end = sec + 1;
                        while sec_end * 512 < within + n as u64 && bit(sec_end) == here {
                            sec_end += 1;
                        }
                        let stop = ((sec_end * 512 - within) as usize).min(n);
                        if here {
                            self.inner.read_at(data + p, &mut out[i..stop])?;
                        } else {
                            self.parent_read(blk * s.block_size + p, &mut out[i..stop])?;
                        }
                        i = stop;
                    }
                } else {
                    self.inner.read_at(data + within, out)?;
                }
            }
            done += n;
        }
        Ok(())
    }

    fn allocate(&mut self, blk: u64) -> Result<u32> {
        let diff = self.footer.disk_type == VhdType::Differencing;
        self.allocate_with(blk, if diff { 0 } else { 0xFF })
    }

    /// Allocate block `blk` at the old footer position with every bitmap byte = `fill`.
    fn allocate_with(&mut self, blk: u64, fill: u8) -> Result<u32> {
        let s = self.sparse.as_mut().expect("sparse disk");
        let pos = s.next_free;
        let sector = u32::try_from(pos / 512)
            .ok()
            .filter(|&x| x != UNALLOCATED)
            .ok_or_else(|| {
                Error::unsupported(
                    "VHD BAT",
                    s.bat_offset,
                    "file too large for 32-bit sector numbers",
                )
            })?;
        let bitmap = vec![fill; s.bitmap_size as usize];
        self.inner.write_at(pos, &bitmap)?;
        let new_end = pos + s.bitmap_size + s.block_size;
        // Footer at the new end; the data area in between stays zero (sparse growth).
        self.inner.write_at(new_end, &self.footer.raw)?;
        self.inner
            .write_at(s.bat_offset + 4 * blk, U32::new(sector).as_bytes())?;
        s.bat[blk as usize] = sector;
        s.next_free = new_end;
        Ok(sector)
    }

    fn write_sparse(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        let diff = self.footer.disk_type == VhdType::Differencing;
        let (block_size, bitmap_size) = {
            let s = self.sparse.as_ref().expect("sparse disk");
            (s.block_size, s.bitmap_size)
        };
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let blk = pos / block_size;
            let within = pos % block_size;
            let n = ((block_size - within) as usize).min(buf.len() - done);
            let chunk = &buf[done..done + n];
            let s = self.sparse.as_ref().expect("sparse disk");
            let mut entry = s.bat.get(blk as usize).copied().ok_or_else(|| {
                Error::corrupt("VHD BAT", s.bat_offset, format!("no entry for block {blk}"))
            })?;
            if !diff {
                if entry == UNALLOCATED {
                    if chunk.iter().all(|&b| b == 0) {
                        done += n;
                        continue;
                    }
                    entry = self.allocate(blk)?;
                }
                let data = u64::from(entry) * 512 + bitmap_size;
                self.inner.write_at(data + within, chunk)?;
            } else {
                if entry == UNALLOCATED {
                    // First write to this block in the child: copy the block's current content
                    // (from the parent chain) in and mark every sector present. Readers then never
                    // consult the parent for this block; libvhdi 20210425 misreads blocks whose
                    // bitmap has a clear bit after a set one, so sparse bitmaps are avoided.
                    let bstart = blk * block_size;
                    let blen = block_size.min(self.size - bstart) as usize;
                    let mut content = vec![0u8; blen];
                    self.read_at(bstart, &mut content)?;
                    content[within as usize..within as usize + n].copy_from_slice(chunk);
                    let entry = self.allocate_with(blk, 0xFF)?;
                    let data = u64::from(entry) * 512 + bitmap_size;
                    for (i, piece) in content.chunks(64 * 1024).enumerate() {
                        // The new block lies past the old end of file: it is already zero.
                        if piece.iter().any(|&b| b != 0) {
                            self.inner.write_at(data + (i * 64 * 1024) as u64, piece)?;
                        }
                    }
                    done += n;
                    continue;
                }
                // An existing block (possibly written by another tool with a sparse bitmap):
                // sector-granular, widening to whole sectors read through the chain.
                let s0 = within / 512;
                let s1 = (within + n as u64).div_ceil(512);
                let mut whole = vec![0u8; ((s1 - s0) * 512) as usize];
                self.read_at(blk * block_size + s0 * 512, &mut whole)?;
                let at = (within - s0 * 512) as usize;
                whole[at..at + n].copy_from_slice(chunk);
                let base = u64::from(entry) * 512;
                self.inner.write_at(base + bitmap_size + s0 * 512, &whole)?;
                let b0 = s0 / 8;
                let b1 = (s1 - 1) / 8;
                let mut bm = vec![0u8; (b1 - b0 + 1) as usize];
                self.inner.read_at(base + b0, &mut bm)?;
                for sec in s0..s1 {
                    bm[(sec / 8 - b0) as usize] |= 0x80 >> (sec % 8);
                }
                self.inner.write_at(base + b0, &bm)?;
            }
            done += n;
        }
        Ok(())
    }
}

impl<D: Device> Device for Vhd<D> {
    fn len(&self) -> u64 {
        self.size
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.size)?;
        match &self.sparse {
            None => self.inner.read_at(offset, buf),
            Some(s) => self.read_sparse(s, offset, buf),
        }
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.size)?;
        if self.footer.disk_type == VhdType::Differencing && self.parent.is_none() {
            return Err(Error::unsupported(
                "VHD differencing disk",
                offset,
                "the parent disk is not attached",
            ));
        }
        match self.sparse {
            None => self.inner.write_at(offset, buf),
            Some(_) => self.write_sparse(offset, buf),
        }
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    /// A savepoint of the host device, with the block table kept to be put back on rollback.
    fn savepoint(&mut self) -> bool {
        let sparse = &self.sparse;
        self.savepoints.open(&mut self.inner, || sparse.clone())
    }
    fn rollback_savepoint(&mut self) -> Result<()> {
        self.sparse = self.savepoints.rollback(&mut self.inner, "VHD")?;
        Ok(())
    }
    fn release_savepoint(&mut self) -> Result<()> {
        self.savepoints.release(&mut self.inner, "VHD")
    }
    fn known_zero(&self, offset: u64, len: u64) -> bool {
        let Some(s) = &self.sparse else {
            return self.inner.known_zero(offset, len);
        };
        if offset.checked_add(len).is_none_or(|e| e > self.size) {
            return false;
        }
        let diff = self.footer.disk_type == VhdType::Differencing;
        let mut pos = offset;
        let end = offset + len;
        while pos < end {
            let blk = pos / s.block_size;
            let within = pos % s.block_size;
            let n = (s.block_size - within).min(end - pos);
            let entry = s.bat.get(blk as usize).copied().unwrap_or(UNALLOCATED);
            let zero = if entry == UNALLOCATED {
                !diff || self.parent.as_ref().is_some_and(|p| p.known_zero(pos, n))
            } else {
                !diff
                    && self
                        .inner
                        .known_zero(u64::from(entry) * 512 + s.bitmap_size + within, n)
            };
            if !zero {
                return false;
            }
            pos += n;
        }
        true
    }
}

/// CHS geometry for a disk of `sectors` sectors (VHD specification appendix).
pub fn geometry(sectors: u64) -> (u16, u8, u8) {
    let ts = sectors.min(65535 * 16 * 255);
    let (spt, heads, cth);
    if ts >= 65535 * 16 * 63 {
        spt = 255;
        heads = 16;
        cth = ts / spt;
    } else {
        let mut s = 17;
        let mut c = ts / s;
        let mut h = c.div_ceil(1024).max(4);
        if c >= h * 1024 || h > 16 {
            s = 31;
            h = 16;
            c = ts / s;
        }
        if c >= h * 1024 {
            s = 63;
            h = 16;
            c = ts / s;
        }
        spt = s;
        heads = h;
        cth = c;
    }
    ((cth / heads) as u16, heads as u8, spt as u8)
}

fn now_vhd() -> u32 {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    secs.saturating_sub(VHD_EPOCH) as u32
}

/// Build a footer.
fn build_footer(
    size: u64,
    kind: VhdType,
    data_offset: u64,
    geometry_of: (u16, u8, u8),
) -> [u8; 512] {
    let mut f = VhdFooter::new_zeroed();
    f.cookie = FOOTER_COOKIE;
    f.features = U32::new(FEATURES_RESERVED);
    f.file_format_version = U32::new(VERSION_1_0);
    f.data_offset = U64::new(data_offset);
    f.time_stamp = U32::new(now_vhd());
    f.creator_application = *CREATOR;
    f.creator_version = U32::new(VERSION_1_0);
    f.creator_host_os = *b"Wi2k";
    f.original_size = U64::new(size);
    f.current_size = U64::new(size);
    f.cylinders = U16::new(geometry_of.0);
    f.heads = geometry_of.1;
    f.sectors_per_track = geometry_of.2;
    f.disk_type = U32::new(match kind {
        VhdType::Fixed => DISK_TYPE_FIXED,
        VhdType::Dynamic => DISK_TYPE_DYNAMIC,
        VhdType::Differencing => DISK_TYPE_DIFFERENCING,
    });
    f.unique_id = *uuid::Uuid::new_v4().as_bytes();
    f.checksum = U32::new(checksum(f.as_bytes(), FOOTER_CHECKSUM_OFFSET));
    zerocopy::transmute!(f)
}

/// The largest geometry a VHD footer can hold; from it on, readers take the footer's size.
const CHS_MAX: (u16, u8, u8) = (65535, 16, 255);

/// The size and geometry reseal gives a new VHD of at least `sectors` sectors: the smallest
/// size whose CHS geometry covers it exactly, as `qemu-img create -f vpc` rounds. Readers that
/// take the size from the geometry (Virtual PC, qemu before 8.0 for creators it does not know)
/// and readers that take the footer's current size then agree; a size given as exact bytes grows
/// by at most a few cylinders (well under 1 MiB below 127 GiB). From the maximum geometry on
/// (about 127 GiB) the size is kept and the geometry is the maximum, which every reader takes as
/// "use the current size".
pub fn covering_geometry(sectors: u64) -> (u64, (u16, u8, u8)) {
    let max = u64::from(CHS_MAX.0) * u64::from(CHS_MAX.1) * u64::from(CHS_MAX.2);
    if sectors >= max {
        return (sectors, CHS_MAX);
    }
    let mut at = sectors;
    loop {
        let g = geometry(at);
        let covered = u64::from(g.0) * u64::from(g.1) * u64::from(g.2);
        if covered >= sectors {
            return (covered, g);
        }
        at += 1;
    }
}

/// How a new VHD's size relates to the size asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum VhdSize {
    /// Rounded up to what the CHS geometry covers ([`covering_geometry`]), as `qemu-img create
    /// -f vpc` does by default: every reader sees the same size.
    #[default]
    Geometry,
    /// Exactly the size asked for (rounded to 512), as qemu-img's `-o force_size`: what Azure
    /// needs (whole MiB). The geometry then covers a little less; readers that take the size
    /// from the geometry for a creator they do not know (qemu 7.2, Debian 12's) see that
    /// smaller size, readers that take the footer's size (Hyper-V, qemu 10) see this one.
    Exact,
}

/// Check a requested size and give the size and geometry the new VHD gets.
fn check_size(size: u64, mode: VhdSize) -> Result<(u64, (u16, u8, u8))> {
    if size == 0 || size > 2040 * (1 << 30) {
        return Err(Error::unsupported(
            "VHD",
            0,
            format!("virtual size {size} (VHD allows up to 2040 GiB)"),
        ));
    }
    let sectors = size.div_ceil(512);
    Ok(match mode {
        VhdSize::Geometry => {
            let (sectors, g) = covering_geometry(sectors);
            (sectors * 512, g)
        }
        VhdSize::Exact => (sectors * 512, geometry(sectors)),
    })
}

/// Create a fixed VHD of at least `size` bytes: sparse zero data, then the footer. The size is
/// rounded up to what its CHS geometry covers ([`covering_geometry`]); the new disk's size is
/// the footer's (`Vhd::open(path)?.size()`).
///
/// # Errors
/// I/O errors; sizes over 2040 GiB.
pub fn create_fixed(path: &Path, size: u64) -> Result<()> {
    create_fixed_sized(path, size, VhdSize::Geometry)
}

/// [`create_fixed`] with the size rule given.
///
/// # Errors
/// As [`create_fixed`].
pub fn create_fixed_sized(path: &Path, size: u64, mode: VhdSize) -> Result<()> {
    let (size, chs) = check_size(size, mode)?;
    let mut f = HostFile::create(path)?;
    let footer = build_footer(size, VhdType::Fixed, u64::MAX, chs);
    f.write_at(size, &footer)?;
    drop(f); // not fsynced here: callers that need durability sync the file
    Ok(())
}

fn build_header(bat_offset: u64, entries: u32, block_size: u32) -> VhdDynamicHeader {
    let mut h = VhdDynamicHeader::new_zeroed();
    h.cookie = HEADER_COOKIE;
    h.data_offset = U64::new(u64::MAX);
    h.table_offset = U64::new(bat_offset);
    h.header_version = U32::new(VERSION_1_0);
    h.max_table_entries = U32::new(entries);
    h.block_size = U32::new(block_size);
    h
}

fn finish_header(h: &mut VhdDynamicHeader) {
    h.checksum = U32::new(0);
    h.checksum = U32::new(checksum(h.as_bytes(), HEADER_CHECKSUM_OFFSET));
}

/// Create a dynamic VHD of at least `size` bytes with `block_size`-byte blocks (2 MiB is the
/// usual); the size is rounded up as for [`create_fixed`].
///
/// # Errors
/// I/O errors; bad sizes.
pub fn create_dynamic(path: &Path, size: u64, block_size: u32) -> Result<()> {
    create_dynamic_sized(path, size, block_size, VhdSize::Geometry)
}

/// [`create_dynamic`] with the size rule given.
///
/// # Errors
/// As [`create_dynamic`].
pub fn create_dynamic_sized(path: &Path, size: u64, block_size: u32, mode: VhdSize) -> Result<()> {
    let (size, chs) = check_size(size, mode)?;
    if block_size < 512 || !block_size.is_power_of_two() {
        return Err(Error::unsupported(
            "VHD dynamic header",
            0,
            format!("block size {block_size}"),
        ));
    }
    let entries = u32::try_from(size.div_ceil(u64::from(block_size)))
        .map_err(|_| Error::unsupported("VHD BAT", 0, "too many blocks"))?;
    let footer = build_footer(size, VhdType::Dynamic, 512, chs);
    let bat_offset = 1536u64;
    let mut h = build_header(bat_offset, entries, block_size);
    finish_header(&mut h);
    let bat_bytes = (u64::from(entries) * 4).div_ceil(512) * 512;
    let mut f = HostFile::create(path)?;
    f.write_at(0, &footer)?;
    f.write_at(512, h.as_bytes())?;
    f.write_at(bat_offset, &vec![0xFF; bat_bytes as usize])?;
    f.write_at(bat_offset + bat_bytes, &footer)?;
    drop(f); // not fsynced here: callers that need durability sync the file
    Ok(())
}

/// Create a differencing VHD at `path` whose parent is the VHD at `parent`. The locators record
/// the parent as `.\<file name>` (W2ru) and as its absolute path (W2ku).
///
/// # Errors
/// I/O errors; a parent that is not a VHD.
pub fn create_differencing(path: &Path, parent: &Path) -> Result<()> {
    let pv = Vhd::open(HostFile::open(parent, false)?, false)?;
    let pname = parent
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let abs = std::fs::canonicalize(parent).map_err(|e| Error::io(parent, e))?;
    let spec = DifferencingSpec {
        parent_timestamp: file_timestamp(parent),
        parent_name: pname.clone(),
        locators: vec![
            (*b"W2ru", format!(".\\{pname}")),
            (*b"W2ku", abs.to_string_lossy().into_owned()),
        ],
        block_size: pv.block_size().map_or(2 << 20, |b| b as u32),
    };
    create_differencing_with(path, &pv, &spec)
}

/// The modification time of `path` in VHD time stamp form (seconds since 2000-01-01 UTC), as
/// recorded in a child's parent time stamp field; 0 when unknown.
pub fn file_timestamp(path: &Path) -> u32 {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs().saturating_sub(VHD_EPOCH) as u32)
}

/// What a new differencing VHD records about its parent besides the parent's footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DifferencingSpec {
    /// Parent time stamp (seconds since 2000-01-01 UTC; the parent file's modification time).
    pub parent_timestamp: u32,
    /// Parent unicode name (the parent's file name; at most 256 UTF-16 units are kept).
    pub parent_name: String,
    /// Parent locators (platform code, path), at most 8: `W2ru` relative and `W2ku` absolute
    /// paths, stored UTF-16 LE.
    pub locators: Vec<([u8; 4], String)>,
    /// Block size of the child (a power of two, at least 512).
    pub block_size: u32,
}

/// Create an empty differencing VHD at `path` (created or truncated) whose parent is `parent`:
/// parent UUID = the parent's footer UUID, size and geometry = the parent's (the virtual size as
/// readers see it), every BAT entry unallocated, locator data after the BAT.
///
/// # Errors
/// I/O errors; bad block sizes; more than 8 locators or a locator longer than 64 KiB.
pub fn create_differencing_with<P: Device>(
    path: &Path,
    parent: &Vhd<P>,
    spec: &DifferencingSpec,
) -> Result<()> {
    let pf = parent.footer();
    let size = parent.len();
    let block_size = spec.block_size;
    if block_size < 512 || !block_size.is_power_of_two() {
        return Err(Error::unsupported(
            "VHD dynamic header",
            512 + HEADER_BLOCK_SIZE_OFFSET as u64,
            format!("block size {block_size}"),
        ));
    }
    if spec.locators.len() > 8 {
        return Err(Error::unsupported(
            "VHD parent locators",
            512 + HEADER_PARENT_LOCATORS_OFFSET as u64,
            format!("{} locators (at most 8)", spec.locators.len()),
        ));
    }
    let entries = u32::try_from(size.div_ceil(u64::from(block_size)))
        .map_err(|_| Error::unsupported("VHD BAT", 0, "too many blocks"))?;
    let footer = build_footer(size, VhdType::Differencing, 512, pf.geometry);
    let bat_offset = 1536u64;
    let bat_bytes = (u64::from(entries) * 4).div_ceil(512) * 512;
    let mut h = build_header(bat_offset, entries, block_size);
    h.parent_unique_id = pf.uuid;
    h.parent_time_stamp = U32::new(spec.parent_timestamp);
    for (d, u) in h
        .parent_unicode_name
        .iter_mut()
        .zip(spec.parent_name.encode_utf16())
    {
        *d = U16::new(u);
    }
    let mut next = bat_offset + bat_bytes;
    let mut loc_data = Vec::new();
    for (i, (code, p)) in spec.locators.iter().enumerate() {
        let bytes: Vec<u8> = p.encode_utf16().flat_map(u16::to_le_bytes).collect();
        if bytes.len() > 64 * 1024 {
            return Err(Error::unsupported(
                "VHD parent locator",
                (512 + HEADER_PARENT_LOCATORS_OFFSET + 24 * i) as u64,
                "path longer than 64 KiB",
            ));
        }
        let space = (bytes.len() as u64).div_ceil(512).max(1) * 512;
        h.parent_locator_entries[i] = ParentLocatorEntry {
            platform_code: *code,
            platform_data_space: U32::new((space / 512) as u32),
            platform_data_length: U32::new(bytes.len() as u32),
            reserved: U32::new(0),
            platform_data_offset: U64::new(next),
        };
        loc_data.push((next, bytes));
        next += space;
    }
    finish_header(&mut h);
    let mut f = HostFile::create(path)?;
    f.write_at(0, &footer)?;
    f.write_at(512, h.as_bytes())?;
    f.write_at(bat_offset, &vec![0xFF; bat_bytes as usize])?;
    for (off, bytes) in &loc_data {
        f.write_at(*off, bytes)?;
    }
    f.write_at(next, &footer)?;
    drop(f); // not fsynced here: callers that need durability sync the file
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemDevice;

    #[test]
    fn checksum_matches_definition() {
        let mut f = build_footer(8 << 20, VhdType::Dynamic, 512, geometry(16384));
        let stored = |f: &[u8; 512]| VhdFooter::view(f).unwrap().checksum.get();
        assert_eq!(checksum(&f, FOOTER_CHECKSUM_OFFSET), stored(&f));
        f[100] ^= 1;
        assert_ne!(checksum(&f, FOOTER_CHECKSUM_OFFSET), stored(&f));
    }

    #[test]
    fn geometry_of_known_sizes() {
        // 4 MiB: qemu/Windows give 120/4/17 for 8192 sectors (120*4*17 = 8160).
        assert_eq!(geometry(8192), (120, 4, 17));
        assert_eq!(geometry(u64::MAX), (65535, 16, 255));
    }

    #[test]
    fn new_sizes_round_up_to_their_geometry_as_qemu_img_create_does() {
        // Virtual sizes `qemu-img create -f vpc` (10.0) gives for 4M, 5M, 64M, 1G and 3000M.
        for (asked, qemu) in [
            (4u64 << 20, 4_212_736u64),
            (5 << 20, 5_257_216),
            (64 << 20, 67_125_248),
            (1 << 30, 1_073_995_776),
            (3000 << 20, 3_146_121_216),
        ] {
            let (sectors, (c, h, s)) = covering_geometry(asked / 512);
            assert_eq!(sectors * 512, qemu, "{asked}");
            assert_eq!(u64::from(c) * u64::from(h) * u64::from(s), sectors);
        }
        // From the maximum geometry on, the size is kept.
        let big = 200u64 << 21;
        assert_eq!(covering_geometry(big), (big, (65535, 16, 255)));
    }

    #[test]
    fn dynamic_write_allocates_at_footer() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.vhd");
        create_dynamic(&p, 5 << 20, 1 << 20).unwrap();
        let data = std::fs::read(&p).unwrap();
        let old_len = data.len() as u64;
        let mut v = Vhd::open(crate::Journal::new(MemDevice::new(data)), false).unwrap();
        assert_eq!(v.len(), 5_257_216, "5 MiB rounded up to its geometry");
        v.write_at((1 << 20) - 3, &[7u8; 6]).unwrap();
        let mut b = [0u8; 8];
        v.read_at((1 << 20) - 4, &mut b).unwrap();
        assert_eq!(b, [0, 7, 7, 7, 7, 7, 7, 0]);
        let inner = v.into_inner();
        // two blocks allocated: 2 * (512 + 1 MiB) added
        assert_eq!(inner.len(), old_len + 2 * (512 + (1 << 20)));
        let v = Vhd::open(inner, false).unwrap();
        v.read_at((1 << 20) - 4, &mut b).unwrap();
        assert_eq!(b, [0, 7, 7, 7, 7, 7, 7, 0]);
    }

    #[test]
    fn differencing_sparse_bitmap_reads_and_writes() {
        let dir = tempfile::tempdir().unwrap();
        let pp = dir.path().join("p.vhd");
        let cp = dir.path().join("c.vhd");
        create_dynamic(&pp, 4 << 20, 1 << 20).unwrap();
        let pattern: Vec<u8> = (0..4u32 << 20).map(|i| (i % 251) as u8 + 1).collect();
        {
            let mut p = Vhd::open(HostFile::open(&pp, true).unwrap(), false).unwrap();
            p.write_at(0, &pattern).unwrap();
        }
        create_differencing(&cp, &pp).unwrap();
        let parent = || -> Box<dyn Device> {
            Box::new(Vhd::open(HostFile::open(&pp, false).unwrap(), false).unwrap())
        };
        {
            let mut c = Vhd::open(HostFile::open(&cp, true).unwrap(), false).unwrap();
            c.set_parent(parent());
            c.write_at((1 << 20) + 700, &[0xEE; 100]).unwrap();
        }
        // Clear every bitmap bit but sector 1 of block 1, as a sparse-bitmap writer would leave it.
        let data = std::fs::read(&cp).unwrap();
        let mut c = Vhd::open(crate::Journal::new(MemDevice::new(data)), false).unwrap();
        let s = c.sparse.clone().unwrap();
        let base = u64::from(s.bat[1]) * 512;
        let mut bm = vec![0u8; s.bitmap_size as usize];
        bm[0] = 0x40;
        c.inner_mut().write_at(base, &bm).unwrap();
        c.set_parent(parent());
        let mut model = pattern.clone();
        model[(1 << 20) + 700..(1 << 20) + 800].fill(0xEE);
        let mut got = vec![0u8; 4 << 20];
        c.read_at(0, &mut got).unwrap();
        assert!(got == model);
        // Sector-granular write into the existing block: partial sectors 3 and 5 keep parent bytes.
        c.write_at((1 << 20) + 3 * 512 + 10, &[0x11; 1100]).unwrap();
        model[(1 << 20) + 3 * 512 + 10..(1 << 20) + 3 * 512 + 1110].fill(0x11);
        c.read_at(0, &mut got).unwrap();
        assert!(got == model);
    }

    #[test]
    fn hostile_headers_do_not_panic() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.vhd");
        create_dynamic(&p, 5 << 20, 1 << 20).unwrap();
        let data = std::fs::read(&p).unwrap();
        for i in 0..data.len().min(2048) {
            for v in [0u8, 0xFF, 0x80] {
                let mut d = data.clone();
                d[i] = v;
                let n = d.len();
                d[n - 512..].copy_from_slice(&data[n - 512..]);
                if let Ok(vhd) = Vhd::open(MemDevice::new(d), true) {
                    let mut b = vec![0u8; 4096];
                    let _ = vhd.read_at(0, &mut b);
                }
            }
        }
    }
}
