//! VHDX (Hyper-V v2) containers: fixed, dynamic and differencing; read and write.
//!
//! Layout (little-endian; FORMATS.md E.2): file identifier at 0, two headers at 64 KiB and
//! 128 KiB (CRC-32C, the valid one with the higher sequence number is current), two region tables
//! at 192 KiB and 256 KiB locating the BAT and the metadata region; the BAT maps payload blocks
//! (state in bits 0-2, file offset in MiB in bits 20-63) with one sector-bitmap entry after every
//! chunk of `2^23 * logical sector size / block size` payload entries.
//!
//! Policy:
//! - A non-empty log (LogGuid ≠ 0) means the image was not closed cleanly. reseal does not replay
//!   logs: such an image is refused with [`Error::Unsupported`] naming the log.
//! - The first write of a session writes a header with a new FileWriteGuid and DataWriteGuid and
//!   sequence+1 into the non-current slot, then the same with sequence+2 into the other slot, so
//!   both headers stay valid and agree (as qemu does). Metadata updates (BAT entries) are written
//!   in place — atomicity comes from reseal's own journal, which stages every byte.
//! - New payload blocks are allocated at the end of the file, aligned to 1 MiB, and marked
//!   FULLY_PRESENT; unwritten parts of a new block are zero (the file grows sparsely).
//! - Differencing VHDX (HasParent): reads go to the parent for NOT_PRESENT blocks and, for
//!   PARTIALLY_PRESENT blocks (state 7), per sector through the chunk's sector bitmap (bit set =
//!   sector in this file, LSB first). Writes to a NOT_PRESENT block allocate a payload block in
//!   the PARTIALLY_PRESENT state and the chunk's sector bitmap block (state SB_BLOCK_PRESENT = 6,
//!   1 MiB, zero = all from the parent) when it is missing, write whole sectors (a partial
//!   sector is first read through the chain) and set their bits; a write covering a whole block
//!   makes it FULLY_PRESENT; a write of the bytes the parent already holds is skipped. The
//!   parent is attached by [`crate::image::Image`] from the parent locator (relative_path, then
//!   absolute_win32_path / volume_path file names next to the child) and must have the
//!   DataWriteGuid named by parent_linkage; it is never written. Children are made by
//!   [`crate::children`].

use std::path::Path;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

use crate::layout::vhdx::{
    guid_le, FileIdentifier, FileParameters, MetadataTableEntry, MetadataTableHeader,
    ParentLocatorEntry, ParentLocatorHeader, RegionTableEntry, RegionTableHeader, VhdxHeader,
    BAT_GUID, CHECKSUM_OFFSET, FILE_IDENTIFIER_SIGNATURE, FILE_PARAMS_GUID, FILE_PARAMS_HAS_PARENT,
    FILE_PARAMS_LEAVE_BLOCKS_ALLOCATED, HEADER_SIGNATURE, HEADER_VERSION_OFFSET,
    LOGICAL_SECTOR_GUID, MAX_TABLE_ENTRIES, METADATA_ENTRY_COUNT_OFFSET, METADATA_GUID,
    METADATA_IS_REQUIRED, METADATA_IS_VIRTUAL_DISK, METADATA_TABLE_SIGNATURE, PAGE83_GUID,
    PARENT_LOCATOR_GUID, PHYSICAL_SECTOR_GUID, REGION_ENTRY_COUNT_OFFSET, REGION_REQUIRED,
    REGION_TABLE_SIGNATURE, VDISK_SIZE_GUID, VHDX_LOCATOR_TYPE,
};
use crate::raw::HostFile;
use crate::{check_bounds, Device, Error, Result};

const MIB: u64 = 1 << 20;
const HEADER_OFFSETS: [u64; 2] = [64 * 1024, 128 * 1024];
const REGION_OFFSETS: [u64; 2] = [192 * 1024, 256 * 1024];
const HEADER_SIZE: usize = size_of::<VhdxHeader>();
const REGION_SIZE: usize = 64 * 1024;
/// Size of the file type identifier, the metadata table and the offset of the first item.
const TABLE_SIZE: usize = 64 * 1024;

use crate::layout::vhdx::{
    bat_file_offset, bat_state, PAYLOAD_BLOCK_FULLY_PRESENT, PAYLOAD_BLOCK_PARTIALLY_PRESENT,
    SB_BLOCK_PRESENT,
};

/// CRC-32C of `buf` with the 4-byte checksum field at `field` taken as zero.
pub fn crc_with_zeroed_field(buf: &[u8], field: usize) -> u32 {
    let c = crc32c::crc32c(&buf[..field]);
    let c = crc32c::crc32c_append(c, &[0; 4]);
    crc32c::crc32c_append(c, &buf[field + 4..])
}

/// A parsed VHDX header.
#[derive(Debug, Clone)]
pub struct Header {
    /// Sequence number.
    pub sequence: u64,
    /// FileWriteGuid (LE bytes).
    pub file_write_guid: [u8; 16],
    /// DataWriteGuid (LE bytes).
    pub data_write_guid: [u8; 16],
    /// LogGuid (LE bytes); zero when the log is empty.
    pub log_guid: [u8; 16],
    /// Log offset.
    pub log_offset: u64,
    /// Log length.
    pub log_length: u32,
    raw: Box<VhdxHeader>,
}

impl Header {
    /// Parse the header at `offset` (4 KiB).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a bad signature, checksum or version.
    pub fn parse(raw: &[u8], offset: u64) -> Result<Self> {
        let (h, _) = VhdxHeader::ref_from_prefix(raw)
            .map_err(|_| Error::corrupt("VHDX header", offset, "truncated"))?;
        if h.signature != HEADER_SIGNATURE {
            return Err(Error::corrupt(
                "VHDX header",
                offset,
                "no \"head\" signature",
            ));
        }
        let stored = h.checksum.get();
        let crc = crc_with_zeroed_field(h.as_bytes(), CHECKSUM_OFFSET);
        if stored != crc {
            return Err(Error::corrupt(
                "VHDX header",
                offset,
                format!("CRC-32C mismatch (stored {stored:#010x}, computed {crc:#010x})"),
            ));
        }
        let version = h.version.get();
        if version != 1 {
            return Err(Error::unsupported(
                "VHDX header",
                offset + HEADER_VERSION_OFFSET as u64,
                format!("version {version}"),
            ));
        }
        Ok(Header {
            sequence: h.sequence_number.get(),
            file_write_guid: h.file_write_guid,
            data_write_guid: h.data_write_guid,
            log_guid: h.log_guid,
            log_length: h.log_length.get(),
            log_offset: h.log_offset.get(),
            raw: Box::new(h.clone()),
        })
    }

    fn encode(&self) -> Vec<u8> {
        let mut r = self.raw.clone();
        r.sequence_number = U64::new(self.sequence);
        r.file_write_guid = self.file_write_guid;
        r.data_write_guid = self.data_write_guid;
        r.log_guid = self.log_guid;
        r.checksum = U32::new(crc_with_zeroed_field(r.as_bytes(), CHECKSUM_OFFSET));
        r.as_bytes().to_vec()
    }
}

/// True if `dev` starts with the VHDX file identifier.
pub fn detect(dev: &dyn Device) -> bool {
    let mut sig = [0u8; 8];
    dev.len() >= 8 && dev.read_at(0, &mut sig).is_ok() && sig == FILE_IDENTIFIER_SIGNATURE
}

/// Number of payload blocks per sector-bitmap block.
pub fn chunk_ratio(logical_sector_size: u64, block_size: u64) -> u64 {
    ((1u64 << 23) * logical_sector_size) / block_size
}

/// Index in the BAT of payload block `block`.
pub fn payload_bat_index(block: u64, chunk_ratio: u64) -> u64 {
    block + block / chunk_ratio
}

/// Number of BAT entries of a non-differencing disk with `data_blocks` payload blocks.
pub fn bat_entries(data_blocks: u64, chunk_ratio: u64) -> u64 {
    if data_blocks == 0 {
        0
    } else {
        data_blocks + (data_blocks - 1) / chunk_ratio
    }
}

/// The parent locator of a differencing VHDX: its key/value pairs (keys such as
/// `parent_linkage`, `relative_path`, `volume_path`, `absolute_win32_path`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParentLocator {
    /// Key/value pairs in file order.
    pub entries: Vec<(String, String)>,
}

impl ParentLocator {
    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn parse(b: &[u8], off: u64) -> Result<Self> {
        let s = "VHDX parent locator";
        let Ok((h, rest)) = ParentLocatorHeader::ref_from_prefix(b) else {
            return Err(Error::corrupt(s, off, "shorter than its header"));
        };
        if h.locator_type != guid_le(VHDX_LOCATOR_TYPE) {
            return Err(Error::unsupported(s, off, "unknown locator type"));
        }
        let count = usize::from(h.key_value_count.get());
        let avail = count.min(rest.len() / size_of::<ParentLocatorEntry>());
        let (kv, _) = <[ParentLocatorEntry]>::ref_from_prefix_with_elems(rest, avail)
            .map_err(|_| Error::corrupt(s, off, "entries outside the item"))?;
        let mut entries = Vec::new();
        for i in 0..count {
            let e = kv
                .get(i)
                .ok_or_else(|| Error::corrupt(s, off, format!("entry {i} outside the item")))?;
            let (ko, vo) = (e.key_offset.get() as usize, e.value_offset.get() as usize);
            let (kl, vl) = (
                usize::from(e.key_length.get()),
                usize::from(e.value_length.get()),
            );
            let text = |o: usize, l: usize| -> Result<String> {
                let units = o
                    .checked_add(l)
                    .and_then(|end| b.get(o..end))
                    .and_then(|raw| <[U16]>::ref_from_prefix_with_elems(raw, l / 2).ok())
                    .ok_or_else(|| {
                        Error::corrupt(s, off, format!("entry {i} text outside the item"))
                    })?
                    .0;
                let u: Vec<u16> = units.iter().map(|c| c.get()).collect();
                Ok(String::from_utf16_lossy(&u))
            };
            entries.push((text(ko, kl)?, text(vo, vl)?));
        }
        Ok(Self { entries })
    }
}

/// A VHDX container over `D`, presenting the virtual disk.
pub struct Vhdx<D: Device> {
    inner: D,
    size: u64,
    block_size: u64,
    logical_sector: u32,
    chunk_ratio: u64,
    bat_offset: u64,
    bat: Vec<u64>,
    header: Header,
    current_slot: usize,
    session_started: bool,
    fixed: bool,
    warnings: Vec<String>,
    parent_locator: Option<ParentLocator>,
    parent: Option<Box<dyn Device>>,
    /// The in-memory metadata at each open savepoint, outermost first (see [`VhdxState`]).
    savepoints: crate::device::SavedStates<VhdxState>,
}

/// What a [`Vhdx`] keeps in memory of metadata it writes through to the host device: a
/// rollback of the host device takes those writes back, and this puts the copy back with them.
#[derive(Debug, Clone)]
struct VhdxState {
    bat: Vec<u64>,
    header: Header,
    current_slot: usize,
    session_started: bool,
}

impl<D: Device> std::fmt::Debug for Vhdx<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vhdx")
            .field("size", &self.size)
            .field("block_size", &self.block_size)
            .field("fixed", &self.fixed)
            .field("parent_locator", &self.parent_locator)
            .finish_non_exhaustive()
    }
}

impl<D: Device> Vhdx<D> {
    /// Open a VHDX.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the structure and offset; [`Error::Unsupported`] for a non-empty
    /// log or a differencing disk.
    pub fn open(inner: D) -> Result<Self> {
        let len = inner.len();
        let mut warnings = Vec::new();
        if !detect(&inner) {
            return Err(Error::corrupt(
                "VHDX file identifier",
                0,
                "no \"vhdxfile\" signature",
            ));
        }
        if len < 1024 * 1024 {
            return Err(Error::corrupt(
                "VHDX file",
                0,
                format!("file of {len} bytes is too short"),
            ));
        }
        // Headers.
        let mut best: Option<(usize, Header)> = None;
        let mut first_err = None;
        for (slot, &off) in HEADER_OFFSETS.iter().enumerate() {
            let mut raw = vec![0u8; HEADER_SIZE];
            inner.read_at(off, &mut raw)?;
            match Header::parse(&raw, off) {
                Ok(h) => {
                    if best.as_ref().is_none_or(|(_, b)| h.sequence > b.sequence) {
                        best = Some((slot, h));
                    }
                }
                Err(e) => {
                    warnings.push(e.to_string());
                    first_err.get_or_insert(e);
                }
            }
        }
        let Some((current_slot, header)) = best else {
            return Err(first_err.unwrap_or_else(|| {
                Error::corrupt("VHDX header", HEADER_OFFSETS[0], "no valid header")
            }));
        };
        if header.log_guid != [0; 16] {
            return Err(Error::unsupported(
                "VHDX log",
                header.log_offset,
                "the log is not empty (the image was not closed cleanly) and reseal does not replay \
                 VHDX logs; replay it first (attach and detach it in Windows, or `qemu-img check -r all`)",
            ));
        }
        // Region table.
        let mut regions = None;
        for &off in &REGION_OFFSETS {
            let mut raw = vec![0u8; REGION_SIZE];
            inner.read_at(off, &mut raw)?;
            match parse_region_table(&raw, off) {
                Ok(r) => {
                    regions = Some(r);
                    break;
                }
                Err(e) => {
                    warnings.push(e.to_string());
                    first_err.get_or_insert(e);
                }
            }
        }
        let Some((bat_region, meta_region)) = regions else {
            return Err(first_err.unwrap_or_else(|| {
                Error::corrupt("VHDX region table", REGION_OFFSETS[0], "no valid table")
            }));
        };
        for (name, (off, l)) in [
            ("VHDX BAT region", bat_region),
            ("VHDX metadata region", meta_region),
        ] {
            if off.checked_add(u64::from(l)).is_none_or(|e| e > len) || off < MIB {
                return Err(Error::corrupt(
                    name,
                    off,
                    format!("{l} bytes at {off:#x} lie outside a {len}-byte file"),
                ));
            }
        }
        let meta = Metadata::read(&inner, meta_region.0, meta_region.1)?;
        let block_size = u64::from(meta.block_size);
        let cr = chunk_ratio(u64::from(meta.logical_sector), block_size);
        if cr == 0 {
            return Err(Error::corrupt(
                "VHDX file parameters",
                meta_region.0,
                "block size larger than a chunk",
            ));
        }
        let data_blocks = meta.size.div_ceil(block_size);
        let n = if meta.has_parent {
            data_blocks.div_ceil(cr) * (cr + 1)
        } else {
            bat_entries(data_blocks, cr)
        };
        let (bat_offset, bat_len) = bat_region;
        if n.checked_mul(8).is_none_or(|b| b > u64::from(bat_len)) {
            return Err(Error::corrupt(
                "VHDX BAT region",
                bat_offset,
                format!("{bat_len} bytes cannot hold {n} entries"),
            ));
        }
        let mut raw = vec![U64::ZERO; n as usize];
        inner.read_at(bat_offset, raw.as_mut_bytes())?;
        let bat: Vec<u64> = raw.iter().map(|e| e.get()).collect();
        for k in 0..data_blocks {
            let i = payload_bat_index(k, cr);
            let e = bat[i as usize];
            let state = bat_state(e);
            match state {
                PAYLOAD_BLOCK_FULLY_PRESENT => {
                    let off = bat_file_offset(e);
                    let need = block_size.min(meta.size - k * block_size);
                    if off < MIB || off.checked_add(need).is_none_or(|x| x > len) {
                        return Err(Error::corrupt(
                            format!("VHDX BAT entry {i}"),
                            bat_offset + 8 * i,
                            format!("block at {off:#x} lies outside the {len}-byte file"),
                        ));
                    }
                }
                PAYLOAD_BLOCK_PARTIALLY_PRESENT if meta.has_parent => {
                    let bi = (k / cr) * (cr + 1) + cr;
                    let be = bat[bi as usize];
                    let boff = bat_file_offset(be);
                    if bat_state(be) != SB_BLOCK_PRESENT
                        || boff < MIB
                        || boff.checked_add(MIB).is_none_or(|x| x > len)
                    {
                        return Err(Error::corrupt(
                            format!("VHDX BAT entry {bi}"),
                            bat_offset + 8 * bi,
                            format!("sector bitmap of a PARTIALLY_PRESENT block is missing or outside the file (entry {be:#x})"),
                        ));
                    }
                }
                PAYLOAD_BLOCK_PARTIALLY_PRESENT => {
                    return Err(Error::corrupt(
                        format!("VHDX BAT entry {i}"),
                        bat_offset + 8 * i,
                        "PARTIALLY_PRESENT block in a disk without parent",
                    ))
                }
                0..=3 => {}
                s => {
                    return Err(Error::corrupt(
                        format!("VHDX BAT entry {i}"),
                        bat_offset + 8 * i,
                        format!("invalid block state {s}"),
                    ))
                }
            }
        }
        Ok(Self {
            inner,
            size: meta.size,
            block_size,
            logical_sector: meta.logical_sector,
            chunk_ratio: cr,
            bat_offset,
            bat,
            header,
            current_slot,
            session_started: false,
            // The type is the LeaveBlocksAllocated flag, as libvhdi reports it: qemu-img's
            // `subformat=fixed` sets it but still leaves all-zero blocks in the ZERO state.
            fixed: meta.leave_allocated && !meta.has_parent,
            warnings,
            parent_locator: meta.parent_locator,
            parent: None,
            savepoints: Default::default(),
        })
    }

    /// The parent locator of a differencing disk (None otherwise).
    pub fn parent_locator(&self) -> Option<&ParentLocator> {
        self.parent_locator.as_ref()
    }
    /// Attach the parent of a differencing disk (its virtual disk).
    pub fn set_parent(&mut self, parent: Box<dyn Device>) {
        self.parent = Some(parent);
    }

    fn parent_read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let Some(p) = &self.parent else {
            return Err(Error::unsupported(
                "VHDX differencing disk",
                offset,
                "the parent disk is not attached",
            ));
        };
        let avail = p.len().saturating_sub(offset).min(buf.len() as u64) as usize;
        if avail > 0 {
            p.read_at(offset, &mut buf[..avail])?;
        }
        buf[avail..].fill(0);
        Ok(())
    }

    /// Read `out` from block `k` (PARTIALLY_PRESENT) at `within`, per sector via the bitmap.
    fn read_partial(&self, k: u64, data_off: u64, within: u64, out: &mut [u8]) -> Result<()> {
        let lss = u64::from(self.logical_sector);
        let cr = self.chunk_ratio;
        let be = self
            .bat
            .get(((k / cr) * (cr + 1) + cr) as usize)
            .copied()
            .unwrap_or(0);
        let bm_off = bat_file_offset(be);
        let first_sector = (k % cr) * (self.block_size / lss);
        let n = out.len() as u64;
        let s0 = within / lss;
        let s1 = (within + n).div_ceil(lss);
        let b0 = (first_sector + s0) / 8;
        let b1 = (first_sector + s1 - 1) / 8;
        let mut bm = vec![0u8; (b1 - b0 + 1) as usize];
        self.inner.read_at(bm_off + b0, &mut bm)?;
        let bit = |sec: u64| {
            let idx = first_sector + sec - b0 * 8;
            bm[(idx / 8) as usize] & (1 << (idx % 8)) != 0
        };
        let mut i = 0u64;
        while i < n {
            let p = within + i;
            let sec = p / lss;
            let here = bit(sec);
            let mut e = sec + 1;
            while e < s1 && bit(e) == here {
                e += 1;
            }
            let stop = (e * lss - within).min(n);
            let dst = &mut out[i as usize..stop as usize];
            if here {
                self.inner.read_at(data_off + p, dst)?;
            } else {
                self.parent_read(k * self.block_size + p, dst)?;
            }
            i = stop;
        }
        Ok(())
    }

    /// Block size.
    pub fn block_size(&self) -> u64 {
        self.block_size
    }
    /// True for a fixed disk: LeaveBlocksAllocated set (blocks in the ZERO state may remain, as
    /// qemu-img leaves them), no parent.
    pub fn is_fixed(&self) -> bool {
        self.fixed
    }
    /// The current header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// Tolerated problems (e.g. one damaged header copy).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
    /// The host device.
    pub fn inner(&self) -> &D {
        &self.inner
    }
    /// The host device, mutably.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }
    /// Unwrap.
    pub fn into_inner(self) -> D {
        self.inner
    }

    fn block_entry(&self, k: u64) -> (u64, u64) {
        let i = payload_bat_index(k, self.chunk_ratio);
        let e = self.bat.get(i as usize).copied().unwrap_or(0);
        (i, e)
    }

    fn start_session(&mut self) -> Result<()> {
        if self.session_started {
            return Ok(());
        }
        let mut h = self.header.clone();
        h.file_write_guid = uuid::Uuid::new_v4().to_bytes_le();
        h.data_write_guid = uuid::Uuid::new_v4().to_bytes_le();
        h.log_guid = [0; 16];
        let other = 1 - self.current_slot;
        h.sequence = self.header.sequence + 1;
        self.inner.write_at(HEADER_OFFSETS[other], &h.encode())?;
        h.sequence += 1;
        self.inner
            .write_at(HEADER_OFFSETS[self.current_slot], &h.encode())?;
        self.header = h;
        self.session_started = true;
        Ok(())
    }

    /// Allocate `len` bytes at the end of the file, 1 MiB aligned, and point BAT entry `i` at
    /// them with `state`. The new space reads as zeros.
    fn allocate_at_end(&mut self, i: u64, len: u64, state: u64) -> Result<u64> {
        let off = self.inner.len().div_ceil(MIB) * MIB;
        let end = off + len;
        // Grow the file to cover the whole block. A one-byte write rather than a truncate:
        // extending ftruncate per block measured several times slower on ext4 during convert.
        self.inner.write_at(end - 1, &[0])?;
        let e = bat_file_offset(off) | state;
        self.inner
            .write_at(self.bat_offset + 8 * i, U64::new(e).as_bytes())?;
        self.bat[i as usize] = e;
        Ok(off)
    }

    fn allocate(&mut self, k: u64, state: u64) -> Result<u64> {
        let (i, _) = self.block_entry(k);
        self.allocate_at_end(i, self.block_size, state)
    }

    /// The sector bitmap block of the chunk holding payload block `k`, allocated (zero: every
    /// sector from the parent) if not present yet.
    fn sector_bitmap(&mut self, k: u64) -> Result<u64> {
        let cr = self.chunk_ratio;
        let bi = (k / cr) * (cr + 1) + cr;
        let be = self.bat.get(bi as usize).copied().ok_or_else(|| {
            Error::corrupt(
                format!("VHDX BAT entry {bi}"),
                self.bat_offset + 8 * bi,
                "sector bitmap entry missing",
            )
        })?;
        if bat_state(be) == SB_BLOCK_PRESENT {
            return Ok(bat_file_offset(be));
        }
        self.allocate_at_end(bi, MIB, SB_BLOCK_PRESENT)
    }

    /// Write `chunk` at `within` of payload block `k` of a differencing disk.
    ///
    /// A block written whole becomes FULLY_PRESENT. Otherwise a NOT_PRESENT block becomes
    /// PARTIALLY_PRESENT: the written sectors go into a new payload block and their bits are set
    /// in the chunk's sector bitmap (allocated when needed); the sectors' untouched bytes are
    /// read through the chain first (read-modify-write of partial sectors). ZERO and UNMAPPED
    /// blocks read as zeros, so they become FULLY_PRESENT (zero-filled) as in a dynamic disk.
    fn write_child_block(&mut self, k: u64, within: u64, chunk: &[u8]) -> Result<()> {
        let (i, e) = self.block_entry(k);
        let block_len = self.block_size.min(self.size - k * self.block_size);
        let whole = within == 0 && chunk.len() as u64 == block_len;
        match bat_state(e) {
            PAYLOAD_BLOCK_FULLY_PRESENT => {
                self.start_session()?;
                self.inner.write_at(bat_file_offset(e) + within, chunk)
            }
            PAYLOAD_BLOCK_PARTIALLY_PRESENT if whole => {
                // Every sector is now in this file: no need for the bitmap any more.
                self.start_session()?;
                let off = bat_file_offset(e);
                self.inner.write_at(off, chunk)?;
                let ne = off | PAYLOAD_BLOCK_FULLY_PRESENT;
                self.inner
                    .write_at(self.bat_offset + 8 * i, U64::new(ne).as_bytes())?;
                self.bat[i as usize] = ne;
                Ok(())
            }
            PAYLOAD_BLOCK_PARTIALLY_PRESENT => {
                self.start_session()?;
                self.write_sectors(k, bat_file_offset(e), within, chunk)
            }
            0 | 1 => {
                // NOT_PRESENT / UNDEFINED: the bytes come from the parent today. Writing what
                // is already there changes nothing, and keeps the child small.
                let mut cur = vec![0u8; chunk.len()];
                self.parent_read(k * self.block_size + within, &mut cur)?;
                if cur == chunk {
                    return Ok(());
                }
                self.start_session()?;
                if whole {
                    let off = self.allocate(k, PAYLOAD_BLOCK_FULLY_PRESENT)?;
                    return self.inner.write_at(off, chunk);
                }
                self.sector_bitmap(k)?;
                let off = self.allocate(k, PAYLOAD_BLOCK_PARTIALLY_PRESENT)?;
                self.write_sectors(k, off, within, chunk)
            }
            _ => {
                // ZERO / UNMAPPED (validated on open: no other state reaches here).
                if chunk.iter().all(|&b| b == 0) {
                    return Ok(());
                }
                self.start_session()?;
                let off = self.allocate(k, PAYLOAD_BLOCK_FULLY_PRESENT)?;
                self.inner.write_at(off + within, chunk)
            }
        }
    }

    /// Write `chunk` at `within` of the PARTIALLY_PRESENT block `k` (data at `data_off`), whole
    /// sectors at a time, and set the sectors' bits in the chunk's sector bitmap.
    fn write_sectors(&mut self, k: u64, data_off: u64, within: u64, chunk: &[u8]) -> Result<()> {
        let lss = u64::from(self.logical_sector);
        let n = chunk.len() as u64;
        let s0 = within / lss;
        let s1 = (within + n).div_ceil(lss);
        let vstart = k * self.block_size + s0 * lss;
        let data = if within % lss == 0 && n % lss == 0 {
            std::borrow::Cow::Borrowed(chunk)
        } else {
            let mut whole = vec![0u8; ((s1 - s0) * lss) as usize];
            // Only the first and last sectors can be partial: read just those.
            let last = ((s1 - s0 - 1) * lss) as usize;
            self.read_at(vstart, &mut whole[..lss as usize])?;
            if last > 0 {
                self.read_at(vstart + last as u64, &mut whole[last..])?;
            }
            let at = (within - s0 * lss) as usize;
            whole[at..at + chunk.len()].copy_from_slice(chunk);
            std::borrow::Cow::Owned(whole)
        };
        self.inner.write_at(data_off + s0 * lss, &data)?;
        let bm_off = self.sector_bitmap(k)?;
        let first = (k % self.chunk_ratio) * (self.block_size / lss);
        let (b0, b1) = ((first + s0) / 8, (first + s1 - 1) / 8);
        let mut bm = vec![0u8; (b1 - b0 + 1) as usize];
        self.inner.read_at(bm_off + b0, &mut bm)?;
        for sec in first + s0..first + s1 {
            bm[(sec / 8 - b0) as usize] |= 1 << (sec % 8);
        }
        self.inner.write_at(bm_off + b0, &bm)
    }
}

fn parse_region_table(raw: &[u8], off: u64) -> Result<((u64, u32), (u64, u32))> {
    let s = "VHDX region table";
    let Ok((h, rest)) = RegionTableHeader::ref_from_prefix(raw) else {
        return Err(Error::corrupt(s, off, "truncated"));
    };
    if h.signature != REGION_TABLE_SIGNATURE {
        return Err(Error::corrupt(s, off, "no \"regi\" signature"));
    }
    let stored = h.checksum.get();
    let crc = crc_with_zeroed_field(raw, CHECKSUM_OFFSET);
    if stored != crc {
        return Err(Error::corrupt(
            s,
            off,
            format!("CRC-32C mismatch (stored {stored:#010x}, computed {crc:#010x})"),
        ));
    }
    let count = h.entry_count.get() as usize;
    let entries = <[RegionTableEntry]>::ref_from_prefix_with_elems(rest, count)
        .ok()
        .filter(|_| count <= MAX_TABLE_ENTRIES);
    let Some((entries, _)) = entries else {
        return Err(Error::corrupt(
            s,
            off + REGION_ENTRY_COUNT_OFFSET as u64,
            format!("{count} entries (at most {MAX_TABLE_ENTRIES})"),
        ));
    };
    let (mut bat, mut meta) = (None, None);
    for (i, e) in entries.iter().enumerate() {
        let r = (e.file_offset.get(), e.length.get());
        if e.guid == guid_le(BAT_GUID) {
            bat = Some(r);
        } else if e.guid == guid_le(METADATA_GUID) {
            meta = Some(r);
        } else if e.required.get() & REGION_REQUIRED != 0 {
            return Err(Error::unsupported(
                s,
                off + (size_of::<RegionTableHeader>() + size_of::<RegionTableEntry>() * i) as u64,
                format!(
                    "unknown required region {}",
                    uuid::Uuid::from_bytes_le(e.guid)
                ),
            ));
        }
    }
    match (bat, meta) {
        (Some(b), Some(m)) => Ok((b, m)),
        _ => Err(Error::corrupt(s, off, "BAT or metadata region missing")),
    }
}

struct Metadata {
    block_size: u32,
    parent_locator: Option<ParentLocator>,
    has_parent: bool,
    leave_allocated: bool,
    size: u64,
    logical_sector: u32,
}

impl Metadata {
    fn read(dev: &dyn Device, off: u64, len: u32) -> Result<Self> {
        let s = "VHDX metadata table";
        let mut t = vec![0u8; TABLE_SIZE];
        dev.read_at(off, &mut t)?;
        let Ok((h, rest)) = MetadataTableHeader::ref_from_prefix(&t) else {
            return Err(Error::corrupt(s, off, "truncated"));
        };
        if h.signature != METADATA_TABLE_SIGNATURE {
            return Err(Error::corrupt(s, off, "no \"metadata\" signature"));
        }
        let count = usize::from(h.entry_count.get());
        let entries = <[MetadataTableEntry]>::ref_from_prefix_with_elems(rest, count)
            .ok()
            .filter(|_| count <= MAX_TABLE_ENTRIES);
        let Some((entries, _)) = entries else {
            return Err(Error::corrupt(
                s,
                off + METADATA_ENTRY_COUNT_OFFSET as u64,
                format!("{count} entries (at most {MAX_TABLE_ENTRIES})"),
            ));
        };
        let item = |id: u128, want: usize| -> Result<Option<Vec<u8>>> {
            for (i, e) in entries.iter().enumerate() {
                if e.item_id == guid_le(id) {
                    let io = u64::from(e.offset.get());
                    let il = e.length.get() as usize;
                    if il < want || io < TABLE_SIZE as u64 || io + il as u64 > u64::from(len) {
                        return Err(Error::corrupt(
                            format!("VHDX metadata item {}", uuid::Uuid::from_u128(id)),
                            off + (size_of::<MetadataTableHeader>()
                                + size_of::<MetadataTableEntry>() * i)
                                as u64,
                            format!("{il} bytes at region offset {io:#x} are out of range"),
                        ));
                    }
                    let mut b = vec![0u8; if want == 0 { il.min(64 * 1024) } else { want }];
                    dev.read_at(off + io, &mut b)?;
                    return Ok(Some(b));
                }
            }
            Ok(None)
        };
        let missing = |what: &str| Error::corrupt(s, off, format!("required item {what} missing"));
        let short = |what: &str| Error::corrupt(s, off, format!("item {what} too short"));
        let fp = item(FILE_PARAMS_GUID, size_of::<FileParameters>())?
            .ok_or_else(|| missing("file parameters"))?;
        let fp = FileParameters::read_from_prefix(&fp)
            .map_err(|_| short("file parameters"))?
            .0;
        let block_size = fp.block_size.get();
        let has_parent = fp.flags.get() & FILE_PARAMS_HAS_PARENT != 0;
        let leave_allocated = fp.flags.get() & FILE_PARAMS_LEAVE_BLOCKS_ALLOCATED != 0;
        let size = item(VDISK_SIZE_GUID, 8)?.ok_or_else(|| missing("virtual disk size"))?;
        let size = U64::read_from_prefix(&size)
            .map_err(|_| short("virtual disk size"))?
            .0
            .get();
        let ls = item(LOGICAL_SECTOR_GUID, 4)?.ok_or_else(|| missing("logical sector size"))?;
        let logical_sector = U32::read_from_prefix(&ls)
            .map_err(|_| short("logical sector size"))?
            .0
            .get();
        if !(MIB..=256 * MIB).contains(&u64::from(block_size)) || !block_size.is_power_of_two() {
            return Err(Error::corrupt(
                "VHDX file parameters",
                off,
                format!("invalid block size {block_size}"),
            ));
        }
        if logical_sector != 512 && logical_sector != 4096 {
            return Err(Error::corrupt(
                "VHDX logical sector size",
                off,
                format!("invalid value {logical_sector}"),
            ));
        }
        if size == 0 || size > 64 * (1u64 << 40) || size % u64::from(logical_sector) != 0 {
            return Err(Error::corrupt(
                "VHDX virtual disk size",
                off,
                format!("invalid size {size}"),
            ));
        }
        let parent_locator = if has_parent {
            let b = item(PARENT_LOCATOR_GUID, 0)?.ok_or_else(|| missing("parent locator"))?;
            Some(ParentLocator::parse(&b, off)?)
        } else {
            None
        };
        Ok(Metadata {
            block_size,
            parent_locator,
            has_parent,
            leave_allocated,
            size,
            logical_sector,
        })
    }
}

impl<D: Device> Device for Vhdx<D> {
    fn len(&self) -> u64 {
        self.size
    }
    fn sector_size(&self) -> u32 {
        self.logical_sector
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.size)?;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let k = pos / self.block_size;
            let within = pos % self.block_size;
            let n = ((self.block_size - within) as usize).min(buf.len() - done);
            let out = &mut buf[done..done + n];
            let (_, e) = self.block_entry(k);
            match bat_state(e) {
                PAYLOAD_BLOCK_FULLY_PRESENT => {
                    self.inner.read_at(bat_file_offset(e) + within, out)?
                }
                PAYLOAD_BLOCK_PARTIALLY_PRESENT => {
                    self.read_partial(k, bat_file_offset(e), within, out)?
                }
                0 | 1 if self.parent_locator.is_some() => self.parent_read(pos, out)?,
                _ => out.fill(0),
            }
            done += n;
        }
        Ok(())
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.size)?;
        let child = self.parent_locator.is_some();
        if child && self.parent.is_none() {
            return Err(Error::unsupported(
                "VHDX differencing disk",
                offset,
                "the parent disk is not attached",
            ));
        }
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let k = pos / self.block_size;
            let within = pos % self.block_size;
            let n = ((self.block_size - within) as usize).min(buf.len() - done);
            let chunk = &buf[done..done + n];
            if child {
                self.write_child_block(k, within, chunk)?;
                done += n;
                continue;
            }
            let (_, e) = self.block_entry(k);
            let base = if bat_state(e) == PAYLOAD_BLOCK_FULLY_PRESENT {
                Some(bat_file_offset(e))
            } else if chunk.iter().all(|&b| b == 0) {
                None // reads as zeros already
            } else {
                self.start_session()?;
                Some(self.allocate(k, PAYLOAD_BLOCK_FULLY_PRESENT)?)
            };
            if let Some(base) = base {
                self.start_session()?;
                self.inner.write_at(base + within, chunk)?;
            }
            done += n;
        }
        Ok(())
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    /// A savepoint of the host device, with the BAT and header state kept for a rollback.
    fn savepoint(&mut self) -> bool {
        let st = VhdxState {
            bat: self.bat.clone(),
            header: self.header.clone(),
            current_slot: self.current_slot,
            session_started: self.session_started,
        };
        self.savepoints.open(&mut self.inner, || st)
    }
    fn rollback_savepoint(&mut self) -> Result<()> {
        let st = self.savepoints.rollback(&mut self.inner, "VHDX")?;
        self.bat = st.bat;
        self.header = st.header;
        self.current_slot = st.current_slot;
        self.session_started = st.session_started;
        Ok(())
    }
    fn release_savepoint(&mut self) -> Result<()> {
        self.savepoints.release(&mut self.inner, "VHDX")
    }
    fn known_zero(&self, offset: u64, len: u64) -> bool {
        if offset.checked_add(len).is_none_or(|e| e > self.size) {
            return false;
        }
        let mut pos = offset;
        let end = offset + len;
        while pos < end {
            let k = pos / self.block_size;
            let within = pos % self.block_size;
            let n = (self.block_size - within).min(end - pos);
            let (_, e) = self.block_entry(k);
            let zero = match bat_state(e) {
                PAYLOAD_BLOCK_FULLY_PRESENT => {
                    self.inner.known_zero(bat_file_offset(e) + within, n)
                }
                PAYLOAD_BLOCK_PARTIALLY_PRESENT => false,
                0 | 1 if self.parent_locator.is_some() => {
                    self.parent.as_ref().is_some_and(|p| p.known_zero(pos, n))
                }
                _ => true,
            };
            if !zero {
                return false;
            }
            pos += n;
        }
        true
    }
}

/// Create a dynamic VHDX of `size` bytes (rounded up to 512) with `block_size`-byte blocks
/// (a power of two from 1 MiB to 256 MiB).
///
/// # Errors
/// I/O errors; bad sizes.
pub fn create_dynamic(path: &Path, size: u64, block_size: u32) -> Result<()> {
    create(path, size, block_size, 512, false, None)
}

/// Create an empty differencing VHDX at `path` whose parent is the VHDX at `parent` (same size,
/// block size and sector size; locator: `parent_linkage` = the parent's DataWriteGuid,
/// `relative_path` = `.\<file name>`, `absolute_win32_path` = `C:\<file name>`, so the parent must
/// stay next to the child). reseal reads
/// such disks but does not write them.
///
/// # Errors
/// I/O errors; a parent that is not a VHDX.
pub fn create_differencing(path: &Path, parent: &Path) -> Result<()> {
    let pv = Vhdx::open(HostFile::open(parent, false)?)?;
    let linkage = format!(
        "{{{}}}",
        uuid::Uuid::from_bytes_le(pv.header().data_write_guid)
    );
    let name = parent
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // libvhdi takes the parent's file name from absolute_win32_path and looks for it next to
    // the child; a host (Linux) path there is misread, so a Windows-style path is written.
    let kv = vec![
        ("parent_linkage".to_string(), linkage),
        ("relative_path".to_string(), format!(".\\{name}")),
        ("absolute_win32_path".to_string(), format!("C:\\{name}")),
    ];
    create_differencing_with(path, &pv, &kv)
}

/// Create an empty differencing VHDX at `path` (created or truncated) whose parent is `parent`:
/// the parent's virtual size, block size and logical sector size, HasParent set, a parent
/// locator of type {B04AEFB7-D19E-4A81-B789-25B8E9445913} holding `locator` (the caller puts
/// `parent_linkage` = the parent's DataWriteGuid and at least one path in it), every BAT entry
/// NOT_PRESENT (payload and sector bitmap), an empty log.
///
/// # Errors
/// I/O errors; a locator without `parent_linkage` or larger than the metadata region allows.
pub fn create_differencing_with<P: Device>(
    path: &Path,
    parent: &Vhdx<P>,
    locator: &[(String, String)],
) -> Result<()> {
    if !locator.iter().any(|(k, _)| k == "parent_linkage") {
        return Err(Error::unsupported(
            "VHDX parent locator",
            0,
            "no parent_linkage entry",
        ));
    }
    let bytes: usize = locator
        .iter()
        .map(|(k, v)| 12 + 2 * (k.encode_utf16().count() + v.encode_utf16().count()))
        .sum();
    if locator.len() > 1000 || bytes > 32 * 1024 {
        return Err(Error::unsupported(
            "VHDX parent locator",
            0,
            format!("{} entries of {bytes} bytes are too large", locator.len()),
        ));
    }
    create(
        path,
        parent.len(),
        parent.block_size() as u32,
        parent.sector_size(),
        false,
        Some(locator.to_vec()),
    )
}

/// Create a fixed VHDX of `size` bytes: every block present (the file is sparse).
///
/// # Errors
/// I/O errors; bad sizes.
pub fn create_fixed(path: &Path, size: u64) -> Result<()> {
    create(path, size, 32 << 20, 512, true, None)
}

fn encode_locator(kv: &[(String, String)]) -> Vec<u8> {
    let h = ParentLocatorHeader {
        locator_type: guid_le(VHDX_LOCATOR_TYPE),
        reserved: U16::ZERO,
        key_value_count: U16::new(kv.len() as u16),
    };
    let mut entries = Vec::with_capacity(kv.len());
    let mut text = Vec::new();
    let base = size_of::<ParentLocatorHeader>() + size_of::<ParentLocatorEntry>() * kv.len();
    for (k, v) in kv {
        let kb: Vec<U16> = k.encode_utf16().map(U16::new).collect();
        let vb: Vec<U16> = v.encode_utf16().map(U16::new).collect();
        let ko = (base + text.len()) as u32;
        text.extend_from_slice(kb.as_bytes());
        let vo = (base + text.len()) as u32;
        text.extend_from_slice(vb.as_bytes());
        entries.push(ParentLocatorEntry {
            key_offset: U32::new(ko),
            value_offset: U32::new(vo),
            key_length: U16::new(kb.as_bytes().len() as u16),
            value_length: U16::new(vb.as_bytes().len() as u16),
        });
    }
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(entries.as_bytes());
    out.extend_from_slice(&text);
    out
}

fn create(
    path: &Path,
    size: u64,
    block_size: u32,
    logical_sector: u32,
    fixed: bool,
    parent: Option<Vec<(String, String)>>,
) -> Result<()> {
    let bs = u64::from(block_size);
    if logical_sector != 512 && logical_sector != 4096 {
        return Err(Error::unsupported(
            "VHDX logical sector size",
            0,
            format!("{logical_sector} bytes"),
        ));
    }
    if !(MIB..=256 * MIB).contains(&bs) || !block_size.is_power_of_two() {
        return Err(Error::unsupported(
            "VHDX file parameters",
            0,
            format!("block size {block_size}"),
        ));
    }
    let lss = u64::from(logical_sector);
    let size = size.div_ceil(lss) * lss;
    if size == 0 || size > 64 * (1u64 << 40) {
        return Err(Error::unsupported(
            "VHDX",
            0,
            format!("virtual size {size}"),
        ));
    }
    let cr = chunk_ratio(lss, bs);
    let data_blocks = size.div_ceil(bs);
    let entries = if parent.is_some() {
        data_blocks.div_ceil(cr) * (cr + 1)
    } else {
        bat_entries(data_blocks, cr)
    };
    let log_offset = MIB;
    let log_len = MIB;
    let meta_offset = 2 * MIB;
    let meta_len = MIB;
    let bat_offset = 3 * MIB;
    let bat_len = (entries * 8).div_ceil(MIB).max(1) * MIB;
    let payload = bat_offset + bat_len;
    let bat_len32 = u32::try_from(bat_len)
        .map_err(|_| Error::unsupported("VHDX BAT region", bat_offset, "too large"))?;

    let mut f = HostFile::create(path)?;
    // File identifier.
    let mut fid = FileIdentifier::new_zeroed();
    fid.signature = FILE_IDENTIFIER_SIGNATURE;
    for (d, u) in fid.creator.iter_mut().zip("reseal".encode_utf16()) {
        *d = U16::new(u);
    }
    let mut id = fid.as_bytes().to_vec();
    id.resize(TABLE_SIZE, 0);
    f.write_at(0, &id)?;
    // Headers.
    let mut raw = Box::new(VhdxHeader::new_zeroed());
    raw.signature = HEADER_SIGNATURE;
    raw.version = U16::new(1);
    raw.log_length = U32::new(log_len as u32);
    raw.log_offset = U64::new(log_offset);
    let mut h = Header {
        sequence: 1,
        file_write_guid: uuid::Uuid::new_v4().to_bytes_le(),
        data_write_guid: uuid::Uuid::new_v4().to_bytes_le(),
        log_guid: [0; 16],
        log_offset,
        log_length: log_len as u32,
        raw,
    };
    f.write_at(HEADER_OFFSETS[0], &h.encode())?;
    h.sequence = 2;
    f.write_at(HEADER_OFFSETS[1], &h.encode())?;
    // Region tables.
    let region = |guid: u128, off: u64, len: u32| RegionTableEntry {
        guid: guid_le(guid),
        file_offset: U64::new(off),
        length: U32::new(len),
        required: U32::new(REGION_REQUIRED),
    };
    let regions = [
        region(BAT_GUID, bat_offset, bat_len32),
        region(METADATA_GUID, meta_offset, meta_len as u32),
    ];
    let mut rh = RegionTableHeader {
        signature: REGION_TABLE_SIGNATURE,
        checksum: U32::ZERO,
        entry_count: U32::new(regions.len() as u32),
        reserved: U32::ZERO,
    };
    let mut rt = rh.as_bytes().to_vec();
    rt.extend_from_slice(regions.as_bytes());
    rt.resize(REGION_SIZE, 0);
    rh.checksum = U32::new(crc_with_zeroed_field(&rt, CHECKSUM_OFFSET));
    rt[..size_of::<RegionTableHeader>()].copy_from_slice(rh.as_bytes());
    f.write_at(REGION_OFFSETS[0], &rt)?;
    f.write_at(REGION_OFFSETS[1], &rt)?;
    // Log area (empty).
    f.set_len(log_offset + log_len)?;
    // Metadata.
    let locator = parent.as_deref().map(encode_locator);
    let required = METADATA_IS_REQUIRED;
    let disk_required = METADATA_IS_VIRTUAL_DISK | METADATA_IS_REQUIRED;
    let mut items: Vec<(u128, u32, u32)> = vec![
        (
            FILE_PARAMS_GUID,
            size_of::<FileParameters>() as u32,
            required,
        ),
        (VDISK_SIZE_GUID, 8, disk_required),
        (PAGE83_GUID, 16, disk_required),
        (LOGICAL_SECTOR_GUID, 4, disk_required),
        (PHYSICAL_SECTOR_GUID, 4, disk_required),
    ];
    if let Some(l) = &locator {
        items.push((PARENT_LOCATOR_GUID, l.len() as u32, required));
    }
    let mut data_off = TABLE_SIZE as u32;
    let table: Vec<MetadataTableEntry> = items
        .iter()
        .map(|&(guid, len, flags)| {
            let e = MetadataTableEntry {
                item_id: guid_le(guid),
                offset: U32::new(data_off),
                length: U32::new(len),
                flags: U32::new(flags),
                reserved: U32::ZERO,
            };
            data_off += len;
            e
        })
        .collect();
    let mut mh = MetadataTableHeader::new_zeroed();
    mh.signature = METADATA_TABLE_SIGNATURE;
    mh.entry_count = U16::new(items.len() as u16);
    let mut m = mh.as_bytes().to_vec();
    m.extend_from_slice(table.as_bytes());
    m.resize(TABLE_SIZE, 0);
    let flags = if fixed {
        FILE_PARAMS_LEAVE_BLOCKS_ALLOCATED
    } else {
        0
    } | if parent.is_some() {
        FILE_PARAMS_HAS_PARENT
    } else {
        0
    };
    let fp = FileParameters {
        block_size: U32::new(block_size),
        flags: U32::new(flags),
    };
    m.extend_from_slice(fp.as_bytes());
    m.extend_from_slice(U64::new(size).as_bytes());
    m.extend_from_slice(&uuid::Uuid::new_v4().to_bytes_le());
    m.extend_from_slice(U32::new(logical_sector).as_bytes());
    m.extend_from_slice(U32::new(4096).as_bytes());
    match &locator {
        Some(l) => m.extend_from_slice(l),
        // No more items: the region's next bytes are zero.
        None => m.resize(TABLE_SIZE + 64, 0),
    }
    f.write_at(meta_offset, &m)?;
    // BAT.
    let mut bat = vec![U64::ZERO; entries as usize];
    if fixed {
        for k in 0..data_blocks {
            let i = payload_bat_index(k, cr) as usize;
            bat[i] = U64::new((payload + k * bs) | PAYLOAD_BLOCK_FULLY_PRESENT);
        }
    }
    f.write_at(bat_offset, bat.as_bytes())?;
    let end = if fixed {
        payload + data_blocks * bs
    } else {
        payload
    };
    f.set_len(end)?;
    drop(f); // not fsynced here: callers that need durability sync the file
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Journal, MemDevice};

    #[test]
    fn bat_math() {
        assert_eq!(chunk_ratio(512, 32 << 20), 128);
        assert_eq!(chunk_ratio(512, 1 << 20), 4096);
        assert_eq!(payload_bat_index(0, 128), 0);
        assert_eq!(payload_bat_index(127, 128), 127);
        assert_eq!(payload_bat_index(128, 128), 129);
        assert_eq!(bat_entries(1, 128), 1);
        assert_eq!(bat_entries(128, 128), 128);
        assert_eq!(bat_entries(129, 128), 130);
    }

    #[test]
    fn crc32c_known_value() {
        // RFC 3720 test vector: 32 bytes of zeros.
        assert_eq!(crc32c::crc32c(&[0u8; 32]), 0x8A91_36AA);
        let mut b = [0xFFu8; 12];
        b[4..8].copy_from_slice(&[1, 2, 3, 4]);
        let mut z = b;
        z[4..8].fill(0);
        assert_eq!(crc_with_zeroed_field(&b, 4), crc32c::crc32c(&z));
    }

    #[test]
    fn create_write_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.vhdx");
        create_dynamic(&p, 10 << 20, 1 << 20).unwrap();
        let data = std::fs::read(&p).unwrap();
        let mut v = Vhdx::open(Journal::new(MemDevice::new(data))).unwrap();
        let seq = v.header().sequence;
        v.write_at((1 << 20) - 2, &[5; 4]).unwrap();
        let mut b = [9u8; 6];
        v.read_at((1 << 20) - 3, &mut b).unwrap();
        assert_eq!(b, [0, 5, 5, 5, 5, 0]);
        let j = v.into_inner();
        let mut bytes = vec![0u8; j.len() as usize];
        j.read_at(0, &mut bytes).unwrap();
        let v = Vhdx::open(MemDevice::new(bytes)).unwrap();
        assert_eq!(v.header().sequence, seq + 2);
        v.read_at((1 << 20) - 3, &mut b).unwrap();
        assert_eq!(b, [0, 5, 5, 5, 5, 0]);
    }

    #[test]
    fn child_with_4k_sectors_writes_partial_sectors() {
        let dir = tempfile::tempdir().unwrap();
        let pp = dir.path().join("p.vhdx");
        let cp = dir.path().join("c.vhdx");
        create(&pp, 4 << 20, 1 << 20, 4096, false, None).unwrap();
        let mut pv = Vhdx::open(HostFile::open(&pp, true).unwrap()).unwrap();
        assert_eq!(pv.sector_size(), 4096);
        let pattern: Vec<u8> = (0..4u32 << 20).map(|i| (i % 253) as u8 + 1).collect();
        pv.write_at(0, &pattern).unwrap();
        let linkage = format!(
            "{{{}}}",
            uuid::Uuid::from_bytes_le(pv.header().data_write_guid)
        );
        let kv = [("parent_linkage".to_string(), linkage)];
        create_differencing_with(&cp, &pv, &kv).unwrap();
        let mut c = Vhdx::open(Journal::new(MemDevice::new(std::fs::read(&cp).unwrap()))).unwrap();
        assert_eq!(c.sector_size(), 4096);
        c.set_parent(Box::new(pv));
        let mut model = pattern.clone();
        for (o, l, v) in [
            (100usize, 10usize, 0xA1u8),
            (4096 * 3 + 5, 9000, 0xB2),
            ((1 << 20) - 3, 10, 0xC3),
            (2 << 20, 1 << 20, 0xD4),
            (4096 * 3 + 7000, 2, 0xE5),
        ] {
            c.write_at(o as u64, &vec![v; l]).unwrap();
            model[o..o + l].fill(v);
        }
        let mut got = vec![0u8; 4 << 20];
        c.read_at(0, &mut got).unwrap();
        assert!(got == model);
        // Block 0 partially present with sectors 0, 3, 4, 5 set; block 2 fully present.
        let cr = c.chunk_ratio;
        assert_eq!(cr, 32768);
        assert_eq!(bat_state(c.bat[0]), PAYLOAD_BLOCK_PARTIALLY_PRESENT);
        assert_eq!(bat_state(c.bat[2]), PAYLOAD_BLOCK_FULLY_PRESENT);
        let sb = bat_file_offset(c.bat[cr as usize]);
        let mut bm = [0u8; 1];
        c.inner().read_at(sb, &mut bm).unwrap();
        assert_eq!(bm[0], 0b0011_1001);
    }
}
