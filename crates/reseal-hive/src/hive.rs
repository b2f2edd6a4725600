//! The in-memory hive: a `Vec<u8>` holding the whole primary file, with bounds-checked cell access.

use std::ops::Range;

use zerocopy::FromBytes;

use crate::base_block::{self, BaseBlock, BaseBlockHeader, BASE_BLOCK_SIZE};
use crate::edit::Alloc;
use crate::error::{HiveError, Result};
use crate::key_node::Key;
use crate::layout::base_block::{FILE_TYPE_PRIMARY, FLAG_KTM_LOCKED};
use crate::layout::cell::{self, CellHeader};
use crate::layout::hbin::{self, HbinHeader};

/// Offset of a cell relative to the start of the hive bins (file offset 4096).
///
/// Never mix with file offsets: use [`CellOffset::file_offset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CellOffset(pub u32);

/// Offset of a key node ("nk") cell; returned by editing calls.
pub type KeyOffset = CellOffset;

impl CellOffset {
    /// The nil offset (0xFFFFFFFF).
    pub const NIL: CellOffset = CellOffset(u32::MAX);

    /// Whether this is the nil offset.
    pub fn is_nil(self) -> bool {
        self.0 == u32::MAX
    }

    /// File offset of the cell's size field.
    pub fn file_offset(self) -> u64 {
        self.0 as u64 + BASE_BLOCK_SIZE as u64
    }
}

/// The bins `(start, end)` and cells `(start, size, free)` of [`Hive::bins_and_cells`].
pub(crate) type BinsAndCells = (Vec<(usize, usize)>, Vec<(usize, usize, bool)>);

/// Hard limits that protect against hostile hives.
pub mod limits {
    /// Maximum key depth (Windows: 512).
    pub const MAX_DEPTH: usize = 512;
    /// Maximum entries in one subkey list or value list.
    pub const MAX_LIST: usize = 1 << 20;
    /// Maximum number of sk cells followed along the sk list.
    pub const MAX_SK_CHAIN: usize = 1 << 22;
    /// Largest hive-bins size accepted from a log (a hostile log cannot make us allocate more).
    pub const MAX_HBINS: usize = 1 << 30;
    /// Maximum size of one value's data.
    pub const MAX_VALUE: usize = 256 << 20;
}

/// Dirty ranges less than this many bytes apart are written as one by the callers that write a
/// hive back (see [`Hive::dirty_ranges_within`]): one 4 KiB page.
pub const WRITE_GAP: usize = 4096;

/// A registry hive held in memory.
///
/// Reading is zero-copy over the buffer; editing needs [`Hive::make_writable`] first
/// (an explicit writable mode, like hivex's `HIVEX_OPEN_WRITE`).
#[derive(Debug, Clone)]
pub struct Hive {
    pub(crate) data: Vec<u8>,
    pub(crate) hbins_end: usize,
    pub(crate) minor: u32,
    pub(crate) alloc: Option<Box<Alloc>>,
    pub(crate) dirty: Vec<Range<usize>>,
    pub(crate) modified: bool,
    /// Highest sequence number seen in logs (commit goes above it).
    pub(crate) seq_floor: u32,
}

impl Hive {
    /// Opens a hive from its bytes. Validates the base block (signature, checksum,
    /// version, hive-bins size) and nothing else: everything else is checked on access.
    ///
    /// A dirty hive (seq1 != seq2) opens for reading (it shows the state of the primary
    /// file only); use [`Hive::recover`] to replay logs.
    ///
    /// # Errors
    /// [`HiveError::BadBaseBlock`] when the base block is unusable.
    pub fn from_bytes(data: Vec<u8>) -> Result<Hive> {
        let bb = BaseBlock::parse(&data)?;
        if data.len() < BASE_BLOCK_SIZE {
            return Err(HiveError::BadBaseBlock {
                reason: "file shorter than 4096 bytes".into(),
            });
        }
        bb.validate_primary(data.len())?;
        if bb.file_type != FILE_TYPE_PRIMARY {
            return Err(HiveError::BadBaseBlock {
                reason: format!(
                    "file type {} is not a primary hive (is this a log?)",
                    bb.file_type
                ),
            });
        }
        Ok(Hive {
            hbins_end: BASE_BLOCK_SIZE + bb.hbins_size as usize,
            minor: bb.minor,
            data,
            alloc: None,
            dirty: Vec::new(),
            modified: false,
            seq_floor: 0,
        })
    }

    /// The parsed base block.
    pub fn base_block(&self) -> BaseBlock {
        BaseBlock::parse(&self.data).expect("invariant: validated at open")
    }

    /// Minor format version (3 = lf lists, 5 = lh lists and big data).
    pub fn minor_version(&self) -> u32 {
        self.minor
    }

    /// The whole file as bytes (call [`Hive::commit`] first after edits).
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Copy of the whole file (call [`Hive::commit`] first after edits).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.data.clone()
    }

    /// Consumes the hive and returns its bytes (call [`Hive::commit`] first after edits).
    pub fn into_bytes(self) -> Vec<u8> {
        self.data
    }

    /// Marks a dirty primary clean as it stands (seq2 = seq1, checksum recomputed) and
    /// reopens it, for a primary taken as is because its logs are unusable. Edits not yet
    /// committed are dropped.
    ///
    /// # Errors
    /// [`HiveError::BadBaseBlock`] when the result does not open as a primary.
    pub fn mark_clean(self) -> Result<Hive> {
        let mut data = self.data;
        base_block::mark_clean(&mut data)?;
        Hive::from_bytes(data)
    }

    /// Whether the primary file is dirty: seq1 != seq2 or wrong checksum (then the logs
    /// hold newer data and [`Hive::recover`] should be used).
    pub fn is_dirty(&self) -> bool {
        let bb = self.base_block();
        bb.seq1 != bb.seq2 || !bb.checksum_ok
    }

    /// Whether base-block flag bit 0 is set: the kernel transaction manager had pending
    /// transactions (TxR logs in `config\\TxR`). What Windows does with them after an
    /// offline edit is not documented; callers should warn (see FORMAT-NOTES.md).
    pub fn has_pending_transactions(&self) -> bool {
        self.base_block().flags & FLAG_KTM_LOCKED != 0
    }

    /// Whether there are uncommitted edits.
    pub fn is_modified(&self) -> bool {
        self.modified
    }

    /// Root key cell offset from the base block.
    pub fn root_offset(&self) -> CellOffset {
        CellOffset(
            BaseBlockHeader::ref_from_prefix(&self.data)
                .map_or(u32::MAX, |(h, _)| h.root_cell_offset.get()),
        )
    }

    /// The root key.
    ///
    /// # Errors
    /// When the root cell is not a valid nk.
    pub fn root(&self) -> Result<Key<'_>> {
        Key::new(self, self.root_offset())
    }

    /// Opens a key by cell offset.
    ///
    /// # Errors
    /// When the cell is not a valid nk.
    pub fn key(&self, off: CellOffset) -> Result<Key<'_>> {
        Key::new(self, off)
    }

    /// Opens a key by backslash-separated path relative to the root ("" = root).
    /// Components compare case-insensitively; empty components are ignored.
    ///
    /// # Errors
    /// [`HiveError::NotFound`] when a component is missing, or a corruption error.
    pub fn open_path(&self, path: &str) -> Result<Key<'_>> {
        let mut k = self.root()?;
        for comp in path.split('\\').filter(|c| !c.is_empty()) {
            k = match k.subkey(comp)? {
                Some(s) => s,
                None => {
                    return Err(HiveError::NotFound {
                        path: path.to_string(),
                    })
                }
            };
        }
        Ok(k)
    }

    /// Returns the data of an allocated cell (after its 4-byte size field).
    ///
    /// # Errors
    /// When the offset is nil, misaligned, outside the hive bins, the cell is free or its
    /// size runs past the bins.
    pub fn cell(&self, off: CellOffset, structure: &'static str) -> Result<&[u8]> {
        let (start, len) = self.cell_span(off, structure)?;
        Ok(&self.data[start + cell::HEADER_SIZE..start + len])
    }

    /// (file offset, total size) of an allocated cell.
    pub(crate) fn cell_span(
        &self,
        off: CellOffset,
        structure: &'static str,
    ) -> Result<(usize, usize)> {
        if off.is_nil() {
            return Err(HiveError::corrupt(structure, off, "nil offset"));
        }
        if off.0 as usize % cell::ALIGNMENT != 0 {
            return Err(HiveError::corrupt(
                structure,
                off,
                "cell offset not 8-aligned",
            ));
        }
        let start = off.0 as usize + BASE_BLOCK_SIZE;
        if start + cell::HEADER_SIZE > self.hbins_end {
            return Err(HiveError::corrupt(
                structure,
                off,
                "offset outside the hive bins",
            ));
        }
        let header = self.cell_header(start);
        if !header.is_allocated() {
            return Err(HiveError::corrupt(
                structure,
                off,
                format!("cell is free (size {})", header.raw()),
            ));
        }
        let len = header.len();
        if len < cell::MIN_SIZE {
            return Err(HiveError::corrupt(
                structure,
                off,
                format!("cell size {len} too small"),
            ));
        }
        if start + len > self.hbins_end {
            return Err(HiveError::corrupt(
                structure,
                off,
                format!("cell size {len:#x} runs past the hive bins"),
            ));
        }
        Ok((start, len))
    }

    /// The hbins as `(file offset, end)` and every cell in them as `(file offset, size, free)`,
    /// in file order: the one walk of the bins that editing and scrubbing share.
    ///
    /// # Errors
    /// [`HiveError::BadHbin`] naming the file offset of a bad signature, bin size or cell size.
    pub(crate) fn bins_and_cells(&self) -> Result<BinsAndCells> {
        let mut bins = Vec::new();
        let mut cells = Vec::new();
        let mut pos = BASE_BLOCK_SIZE;
        while pos < self.hbins_end {
            let bad = |r: String| HiveError::BadHbin {
                file_offset: pos,
                reason: r,
            };
            let Some(header) = self.hbin_header(pos) else {
                return Err(bad("missing \"hbin\" signature".into()));
            };
            let size = header.size.get() as usize;
            if size == 0 || size % hbin::ALIGNMENT != 0 || pos + size > self.hbins_end {
                return Err(bad(format!("bad hbin size {size:#x}")));
            }
            let end = pos + size;
            bins.push((pos, end));
            let mut c = pos + hbin::HEADER_SIZE;
            while c < end {
                let header = self.cell_header(c);
                let len = header.len();
                if len < cell::MIN_SIZE || len % cell::ALIGNMENT != 0 || c + len > end {
                    return Err(bad(format!(
                        "bad cell size {} at file offset {c:#x}",
                        header.raw()
                    )));
                }
                cells.push((c, len, header.is_free()));
                c += len;
            }
            pos = end;
        }
        Ok((bins, cells))
    }

    /// File offset of the end of the hive bins.
    pub(crate) fn hbins_end(&self) -> usize {
        self.hbins_end
    }

    /// The bin header at file offset `file`, if the bytes there hold one (signature "hbin").
    pub(crate) fn hbin_header(&self, file: usize) -> Option<&HbinHeader> {
        let (h, _) = HbinHeader::ref_from_prefix(self.data.get(file..)?).ok()?;
        (h.signature == hbin::SIGNATURE).then_some(h)
    }

    /// The cell size header at file offset `file` (size 0 past the end of the buffer).
    pub(crate) fn cell_header(&self, file: usize) -> CellHeader {
        self.data
            .get(file..)
            .and_then(|b| CellHeader::read_from_prefix(b).ok())
            .map_or(CellHeader::free(0), |(h, _)| h)
    }

    /// Byte ranges of the file changed since open (merged, sorted). Includes the base
    /// block after a commit. The image layer writes only these.
    pub fn dirty_ranges(&self) -> Vec<Range<usize>> {
        self.dirty_ranges_within(0)
    }

    /// [`Hive::dirty_ranges`], with ranges less than `gap` bytes apart written as one: the bytes
    /// between them are unchanged, so writing them back is harmless and costs less than another
    /// write (a scrub dirties thousands of small ranges, a few bytes apart:
    /// [`WRITE_GAP`] turns 2,482 ranges of a 768 KiB NTUSER.DAT into far fewer).
    pub fn dirty_ranges_within(&self, gap: usize) -> Vec<Range<usize>> {
        let mut v = self.dirty.clone();
        v.sort_by_key(|r| r.start);
        let mut out: Vec<Range<usize>> = Vec::with_capacity(v.len());
        for r in v {
            if let Some(last) = out.last_mut() {
                if r.start <= last.end.saturating_add(gap) {
                    last.end = last.end.max(r.end);
                    continue;
                }
            }
            out.push(r);
        }
        out
    }
}
