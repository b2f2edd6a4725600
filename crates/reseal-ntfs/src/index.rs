//! B-tree indexes (`$I30` directories and `$SII`/`$SDH`/`$O`/`$Q` views): read the whole tree
//! in order, and write a sorted entry list back as a balanced tree (root in `$INDEX_ROOT`, INDX
//! blocks in `$INDEX_ALLOCATION`, used blocks in `$BITMAP`).
//!
//! Writing lays the tree out again from the sorted entries (bottom-up, blocks filled greedily,
//! a separator entry per block pushed to the level above), reusing the existing INDX blocks in
//! order and growing `$INDEX_ALLOCATION` when more are needed. This covers node splits and
//! root-to-allocation promotion (and the reverse) with one code path. Blocks no longer used are
//! cleared in `$BITMAP` but stay allocated, as Windows does.
//! Reference: FORMATS.md C.7.

use std::collections::HashSet;

use reseal_disk::Device;

use crate::attribute::{self, Attr, BITMAP, INDEX_ALLOCATION, INDEX_ROOT};
use crate::error::{Error, Offset, Result};
use crate::layout::file_name::FileName;
use crate::layout::index::{
    self as layout, IndexBlockHeader, IndexEntryHeader, IndexHeader, IndexRoot, BLOCK_HEADER_LEN,
    BLOCK_USA_OFFSET, ENTRY_HEADER_LEN, NODE_HAS_SUBNODES, NODE_HEADER_LEN, ROOT_LEN,
};
use crate::layout::multi_sector::MultiSectorHeader;
use crate::record;
use crate::volume::{Grow, Volume};
use core::mem::offset_of;
use zerocopy::little_endian::U64;
use zerocopy::{FromBytes, IntoBytes};

pub use crate::layout::index::{ENTRY_END, ENTRY_SUBNODE};

const MAX_DEPTH: usize = 32;

/// Byte offset in `$INDEX_ALLOCATION` of the INDX block at `vcn` (VCNs count `unit`-byte
/// units), when the whole `bs`-byte block lies inside the stream's `size` bytes. Every step is
/// checked: a hostile sub-node VCN near `u64::MAX / unit` must not wrap around to a small
/// offset.
fn block_offset(vcn: u64, unit: u64, bs: u64, size: u64) -> Option<u64> {
    let off = vcn.checked_mul(unit)?;
    (off.checked_add(bs)? <= size).then_some(off)
}

/// The room an in-place insert may use in a node: the INDEX_HEADER's allocated size, but never
/// more than the node buffer holds after the header (a hostile block may claim more, and an
/// insert trusting it would push entries off the end of the block).
fn node_capacity(buf: &[u8], hdr: usize) -> usize {
    node_header(buf, hdr)
        .map_or(0, |h| h.allocated_size.get() as usize)
        .min(buf.len().saturating_sub(hdr))
}

/// The node header at `hdr` in `buf`.
fn node_header(buf: &[u8], hdr: usize) -> Option<&IndexHeader> {
    IndexHeader::ref_from_prefix(buf.get(hdr..)?)
        .ok()
        .map(|(h, _)| h)
}

/// Set a node's index length after an in-place change (the root's allocated size follows it;
/// an INDX block keeps its fixed allocated size).
fn set_index_length(node: &mut Node, len: usize) {
    let root = node.vcn.is_none();
    if let Some(h) = node
        .buf
        .get_mut(node.hdr..)
        .and_then(|b| IndexHeader::mut_from_prefix(b).ok())
    {
        h.0.index_length = (len as u32).into();
        if root {
            h.0.allocated_size = (len as u32).into();
        }
    }
}

/// An entry of a node in stripped form: without its sub-node VCN, node flags cleared.
fn stripped(entry: &[u8], flags: u16) -> Vec<u8> {
    let mut e = entry.to_vec();
    if flags & ENTRY_SUBNODE != 0 {
        e.truncate(entry.len().saturating_sub(8));
    }
    let len = e.len();
    if let Some(h) = IndexEntryHeader::view_mut(&mut e) {
        h.length = (len as u16).into();
        h.flags = 0.into();
    }
    e
}

/// Offset of the entries from an INDX block's node header: after the update sequence array.
fn block_entries_offset(bs: usize) -> usize {
    let usa_count = 1 + bs / record::STRIDE;
    ((BLOCK_USA_OFFSET + 2 * usa_count + 7) & !7) - BLOCK_HEADER_LEN
}

/// A complete INDX block (fixups not applied) of `bs` bytes holding `ents` then the END entry;
/// `None` when they do not fit.
fn build_block(
    bs: usize,
    vcn: u64,
    usn: u16,
    ents: &[(Vec<u8>, Option<u64>)],
    end_child: Option<u64>,
) -> Option<Vec<u8>> {
    let usa_count = 1 + bs / record::STRIDE;
    let entries_off = block_entries_offset(bs);
    let body = node_bytes(ents, end_child);
    let s0 = BLOCK_HEADER_LEN + entries_off;
    if s0 + body.len() > bs {
        return None;
    }
    let h = IndexBlockHeader {
        multi_sector: MultiSectorHeader {
            signature: *b"INDX",
            usa_offset: (BLOCK_USA_OFFSET as u16).into(),
            usa_count: (usa_count as u16).into(),
        },
        lsn: 0.into(),
        vcn: vcn.into(),
    };
    let n = IndexHeader {
        entries_offset: (entries_off as u32).into(),
        index_length: ((entries_off + body.len()) as u32).into(),
        allocated_size: ((bs - BLOCK_HEADER_LEN) as u32).into(),
        flags: if ents.iter().any(|e| e.1.is_some()) || end_child.is_some() {
            NODE_HAS_SUBNODES
        } else {
            0
        },
        reserved: [0; 3],
    };
    let mut b = vec![0u8; bs];
    b[..BLOCK_HEADER_LEN].copy_from_slice(h.as_bytes());
    b[BLOCK_HEADER_LEN..BLOCK_USA_OFFSET].copy_from_slice(n.as_bytes());
    record::set_usn(&mut b, usn);
    b[s0..s0 + body.len()].copy_from_slice(&body);
    Some(b)
}

/// Check an INDX block's signature (before fixups) ...
fn check_block_signature(blk: &[u8]) -> bool {
    MultiSectorHeader::ref_from_prefix(blk).is_ok_and(|(h, _)| &h.signature == b"INDX")
}

/// ... and its VCN field (after fixups).
fn block_vcn(blk: &[u8]) -> Option<u64> {
    IndexBlockHeader::ref_from_prefix(blk)
        .ok()
        .map(|(h, _)| h.vcn.get())
}

/// Offset of [`IndexBlockHeader::vcn`].
const VCN_FIELD: u64 = offset_of!(IndexBlockHeader, vcn) as u64;

/// `blocks` INDX blocks of `bs` bytes, in bytes; `None` when that does not fit in a u64.
fn blocks_len(blocks: u64, bs: usize) -> Option<u64> {
    blocks.checked_mul(bs as u64)
}

/// Parameters from `$INDEX_ROOT`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RootInfo {
    pub indexed_type: u32,
    pub collation: u32,
    pub block_size: u32,
    pub clusters_per_block: u8,
}

impl<D: Device> Volume<D> {
    fn vcn_unit(&self, bs: u32) -> u64 {
        if self.cs() <= u64::from(bs) {
            self.cs()
        } else {
            512
        }
    }

    fn root_attr(&self, rec: u64, name: &[u16]) -> Result<(record::Record, Attr, RootInfo)> {
        let r = self.read_record(rec)?;
        let Some(a) = r.find(INDEX_ROOT, name)? else {
            // A valid volume may keep the root in an extension record (ntfs-3g moves `$Secure`'s
            // `$SII` root there when the base record fills up); the engine edits base records
            // only.
            if r.find(crate::attribute::ATTRIBUTE_LIST, &[])?.is_some() {
                return Err(Error::unsupported(
                    Some(rec),
                    format!(
                        "index root {} is not in the base record (the $ATTRIBUTE_LIST places it \
                         in an extension record, which the write engine does not edit)",
                        String::from_utf16_lossy(name)
                    ),
                ));
            }
            return Err(Error::corrupt(
                "$INDEX_ROOT",
                Some(rec),
                Offset::Whole,
                "missing index root",
            ));
        };
        if a.nonres || a.value_len < ROOT_LEN + NODE_HEADER_LEN {
            return Err(Error::corrupt(
                "$INDEX_ROOT",
                Some(rec),
                Offset::Record(a.off as u64),
                "not resident or too short",
            ));
        }
        let Ok((v, _)) = IndexRoot::ref_from_prefix(r.value(&a)) else {
            return Err(Error::corrupt(
                "$INDEX_ROOT",
                Some(rec),
                Offset::Record(a.off as u64),
                "not resident or too short",
            ));
        };
        let info = RootInfo {
            indexed_type: v.indexed_attribute_type.get(),
            collation: v.collation_rule.get(),
            block_size: v.index_block_size.get(),
            clusters_per_block: v.clusters_per_index_block,
        };
        if !info.block_size.is_power_of_two() || !(512..=65536).contains(&info.block_size) {
            return Err(Error::corrupt(
                "$INDEX_ROOT",
                Some(rec),
                Offset::Record(
                    (a.off + a.value_off + offset_of!(IndexRoot, index_block_size)) as u64,
                ),
                "bad index block size",
            ));
        }
        Ok((r, a, info))
    }

    /// All entries of an index, in collation order, each without its sub-node pointer and with
    /// the node flags cleared (the END entries are not included).
    pub(crate) fn read_index(&self, rec: u64, name: &[u16]) -> Result<(RootInfo, Vec<Vec<u8>>)> {
        let (r, a, info) = self.root_attr(rec, name)?;
        let v = r.value(&a).to_vec();
        let base = Offset::Record((a.off + a.value_off) as u64);
        let alloc = self.stream(rec, INDEX_ALLOCATION, name)?;
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        self.walk_node(
            rec,
            &v,
            ROOT_LEN,
            base,
            alloc.as_ref(),
            &info,
            0,
            &mut seen,
            &mut out,
        )?;
        Ok((info, out))
    }

    #[allow(clippy::too_many_arguments)]
    fn walk_node(
        &self,
        rec: u64,
        buf: &[u8],
        hdr: usize,
        base: Offset,
        alloc: Option<&crate::volume::Stream>,
        info: &RootInfo,
        depth: usize,
        seen: &mut HashSet<u64>,
        out: &mut Vec<Vec<u8>>,
    ) -> Result<()> {
        let c = |o: usize, r: &str| Error::corrupt("index node", Some(rec), base.plus(o as u64), r);
        if depth > MAX_DEPTH {
            return Err(c(hdr, "index tree too deep"));
        }
        for (p, len, flags, child) in node_entries_with(buf, hdr, &c)? {
            if let Some(vcn) = child {
                let alloc = alloc.ok_or_else(|| c(p, "sub-node without $INDEX_ALLOCATION"))?;
                if !seen.insert(vcn) {
                    return Err(c(p + len - 8, "index block referenced twice (loop)"));
                }
                let bs = info.block_size as usize;
                let unit = self.vcn_unit(info.block_size);
                let off = block_offset(vcn, unit, bs as u64, alloc.size).ok_or_else(|| {
                    c(
                        p + len - 8,
                        &format!(
                            "sub-node VCN {vcn:#x} outside $INDEX_ALLOCATION ({} bytes)",
                            alloc.size
                        ),
                    )
                })?;
                let mut blk = vec![0u8; bs];
                self.read_stream(alloc, off, &mut blk)?;
                let bc = |o: usize, r: &str| {
                    Error::corrupt("INDX block", Some(rec), Offset::Stream(off + o as u64), r)
                };
                if !check_block_signature(&blk) {
                    return Err(bc(0, "signature is not INDX"));
                }
                record::remove_fixups_at(&mut blk, "INDX block", Some(rec), Offset::Stream(off))?;
                if block_vcn(&blk) != Some(vcn) {
                    return Err(bc(VCN_FIELD as usize, "VCN field does not match"));
                }
                self.walk_node(
                    rec,
                    &blk,
                    BLOCK_HEADER_LEN,
                    Offset::Stream(off),
                    Some(alloc),
                    info,
                    depth + 1,
                    seen,
                    out,
                )?;
            }
            if flags & ENTRY_END != 0 {
                break;
            }
            out.push(stripped(&buf[p..p + len], flags));
        }
        Ok(())
    }

    /// Replace the whole content of an index by `entries` (sorted by the caller, stripped form
    /// as returned by [`Volume::read_index`]).
    pub(crate) fn write_index(
        &mut self,
        rec: u64,
        name: &[u16],
        entries: &[Vec<u8>],
    ) -> Result<()> {
        let (r, a, info) = self.root_attr(rec, name)?;
        let bs = info.block_size as usize;
        // Room for the root value: what the record can hold, minus a small reserve.
        let root_hdr_len = ((crate::layout::attribute::RESIDENT_LEN + 2 * name.len() + 7) & !7)
            + ROOT_LEN
            + NODE_HEADER_LEN;
        // Keep room for $INDEX_ALLOCATION/$BITMAP (created on promotion) and runlist growth.
        let reserve = if r.find(INDEX_ALLOCATION, name)?.is_some() {
            64
        } else {
            256
        };
        // ...but never less than what the root holds now (a same-size rewrite always fits).
        let avail = (r.free() + a.len)
            .saturating_sub(root_hdr_len + reserve)
            .max(a.value_len.saturating_sub(ROOT_LEN + NODE_HEADER_LEN));
        let block_cap = bs - BLOCK_HEADER_LEN - block_entries_offset(bs);

        type Level = Vec<(Vec<u8>, Option<u64>)>;
        let mut level: Level = entries.iter().map(|e| (e.clone(), None)).collect();
        let mut end_child: Option<u64> = None;
        let mut blocks: Vec<(Level, Option<u64>)> = Vec::new();
        let size_of = |lv: &Level, endc: Option<u64>| -> usize {
            lv.iter()
                .map(|(e, c)| e.len() + if c.is_some() { 8 } else { 0 })
                .sum::<usize>()
                + 16
                + if endc.is_some() { 8 } else { 0 }
        };
        loop {
            if size_of(&level, end_child) <= avail {
                break;
            }
            // Pack this level into blocks.
            let mut packed: Vec<(Level, Option<u64>)> = Vec::new();
            let mut seps: Vec<Vec<u8>> = Vec::new();
            let mut cur: Level = Vec::new();
            let mut cur_size = 16
                + if level.first().is_some_and(|x| x.1.is_some()) {
                    8
                } else {
                    0
                };
            let mut it = level.into_iter().peekable();
            while let Some((e, c)) = it.next() {
                let el = e.len() + if c.is_some() { 8 } else { 0 };
                if cur_size + el <= block_cap || cur.is_empty() {
                    if cur_size + el > block_cap {
                        return Err(Error::unsupported(
                            Some(rec),
                            "index entry larger than an index block",
                        ));
                    }
                    cur_size += el;
                    cur.push((e, c));
                } else {
                    // e becomes a separator; its child becomes the END child of the block.
                    packed.push((std::mem::take(&mut cur), c));
                    seps.push(e);
                    cur_size = 16 + if c.is_some() { 8 } else { 0 };
                    if it.peek().is_none() {
                        break;
                    }
                }
            }
            packed.push((cur, end_child));
            // Avoid an empty last block: pull the last separator down (see module docs).
            if packed.last().is_some_and(|b| b.0.is_empty()) && packed.len() >= 2 {
                let n = packed.len();
                let sep = seps.pop().unwrap_or_default();
                let prev = &mut packed[n - 2];
                let (x, xc) = prev
                    .0
                    .pop()
                    .ok_or_else(|| Error::unsupported(Some(rec), "index packing"))?;
                let sep_child = prev.1;
                prev.1 = xc;
                seps.push(x);
                packed[n - 1].0.push((sep, sep_child));
            }
            let first_vcn_index = blocks.len() as u64;
            let unit = self.vcn_unit(info.block_size);
            let per = bs as u64 / unit.min(bs as u64);
            let mut next: Level = Vec::new();
            let nb = packed.len();
            for (i, b) in packed.into_iter().enumerate() {
                let vcn = (first_vcn_index + i as u64) * per;
                if i < nb - 1 {
                    next.push((seps[i].clone(), Some(vcn)));
                } else {
                    end_child = Some(vcn);
                }
                blocks.push(b);
            }
            level = next;
            if blocks.len() > 1 << 22 {
                return Err(Error::unsupported(Some(rec), "index too large"));
            }
        }
        // Make room in $INDEX_ALLOCATION / $BITMAP.
        let nblocks = blocks.len() as u64;
        let alloc = self.stream(rec, INDEX_ALLOCATION, name)?;
        let have = alloc.as_ref().map(|s| s.size / bs as u64).unwrap_or(0);
        if nblocks > 0 && alloc.is_none() {
            self.create_index_allocation(rec, name)?;
        }
        if nblocks > have {
            let grow_to = nblocks.max(have.saturating_add(have / 4));
            let len = blocks_len(grow_to, bs).ok_or_else(|| {
                Error::corrupt(
                    "$INDEX_ALLOCATION",
                    Some(rec),
                    Offset::Whole,
                    format!("{grow_to} blocks of {bs} bytes overflow a stream length"),
                )
            })?;
            self.set_stream_len(rec, INDEX_ALLOCATION, name, len, Grow::default())?;
        }
        // Write blocks.
        if nblocks > 0 {
            let mut st = self.stream(rec, INDEX_ALLOCATION, name)?.ok_or_else(|| {
                Error::corrupt("$INDEX_ALLOCATION", Some(rec), Offset::Whole, "vanished")
            })?;
            let unit = self.vcn_unit(info.block_size);
            let per = bs as u64 / unit.min(bs as u64);
            for (i, (ents, endc)) in blocks.iter().enumerate() {
                let off = i as u64 * bs as u64;
                let mut old = vec![0u8; bs];
                let usn = if off + bs as u64 <= st.init {
                    self.read_stream(&st, off, &mut old)?;
                    match MultiSectorHeader::ref_from_prefix(&old[..]) {
                        Ok((h, _))
                            if &h.signature == b"INDX"
                                && usize::from(h.usa_offset.get()) == BLOCK_USA_OFFSET =>
                        {
                            record::usn(&old).unwrap_or(0)
                        }
                        _ => 0,
                    }
                } else {
                    0
                };
                let mut b = build_block(bs, i as u64 * per, usn, ents, *endc).ok_or_else(|| {
                    Error::unsupported(Some(rec), "index entries larger than an index block")
                })?;
                record::apply_fixups(&mut b, "INDX block", Some(rec))?;
                self.write_stream_data(&mut st, off, &b)?;
            }
        }
        // Bitmap.
        if let Some(bst) = self.stream(rec, BITMAP, name)? {
            let total_blocks = self
                .stream(rec, INDEX_ALLOCATION, name)?
                .map(|s| s.size / bs as u64)
                .unwrap_or(0);
            let need = total_blocks.div_ceil(64) * 8;
            if bst.size < need {
                self.set_stream_len(
                    rec,
                    BITMAP,
                    name,
                    need,
                    Grow {
                        zero: true,
                        mft_zone: false,
                    },
                )?;
            }
            let mut bst = self
                .stream(rec, BITMAP, name)?
                .ok_or_else(|| Error::corrupt("$BITMAP", Some(rec), Offset::Whole, "vanished"))?;
            if bst.size > 1 << 24 {
                return Err(Error::corrupt(
                    "$BITMAP",
                    Some(rec),
                    Offset::Whole,
                    "index bitmap larger than 16 MiB",
                ));
            }
            let mut bits = vec![0u8; bst.size as usize];
            for i in 0..nblocks {
                bits[(i / 8) as usize] |= 1 << (i % 8);
            }
            self.write_stream_data(&mut bst, 0, &bits)?;
        }
        let val = root_value(&info, &level, end_child);
        let mut r = self.read_record(rec)?;
        let a = r
            .find(INDEX_ROOT, name)?
            .ok_or_else(|| Error::corrupt("$INDEX_ROOT", Some(rec), Offset::Whole, "vanished"))?;
        let bytes = attribute::build_resident(INDEX_ROOT, name, &val, 0);
        r.replace_attr(&a, bytes)?;
        self.write_record(&mut r)
    }

    fn create_index_allocation(&mut self, rec: u64, name: &[u16]) -> Result<()> {
        let mut r = self.read_record(rec)?;
        let ia = attribute::build_nonresident(
            INDEX_ALLOCATION,
            name,
            0,
            &[],
            attribute::NonResSizes {
                alloc: 0,
                size: 0,
                init: 0,
                compressed: None,
            },
        );
        r.insert_attr(ia, None)?;
        if r.find(BITMAP, name)?.is_none() {
            let bm = attribute::build_resident(BITMAP, name, &[0u8; 8], 0);
            r.insert_attr(bm, None)?;
        }
        self.write_record(&mut r)
    }

    /// Update the size copies in the `$I30` entries of `parent` that point at `child`
    /// (`keys` = the child's `$FILE_NAME` values naming `parent`).
    pub(crate) fn patch_dir_entries(
        &mut self,
        parent: u64,
        keys: &[Vec<u8>],
        alloc: u64,
        size: u64,
    ) -> Result<()> {
        let up = self.upcase.clone();
        let cmp = move |a: &[u8], b: &[u8]| crate::file::fn_cmp(&up, a, b);
        for k in keys {
            self.index_update(parent, &crate::file::i30(), k, &cmp, |e| {
                // The key ($FILE_NAME) starts after the 16-byte index entry header.
                let key = e
                    .get_mut(ENTRY_HEADER_LEN..)
                    .and_then(|k| FileName::mut_from_prefix(k).ok());
                if let Some((h, _)) = key {
                    h.allocated_size = alloc.into();
                    h.data_size = size.into();
                }
            })?;
        }
        Ok(())
    }
}

/// The `$INDEX_ROOT` value with parameters `info` holding `ents` then the END entry (pointing
/// at `end_child` when the root is not a leaf).
pub(crate) fn root_value(
    info: &RootInfo,
    ents: &[(Vec<u8>, Option<u64>)],
    end_child: Option<u64>,
) -> Vec<u8> {
    let body = node_bytes(ents, end_child);
    let il = (NODE_HEADER_LEN + body.len()) as u32;
    let root = IndexRoot {
        indexed_attribute_type: info.indexed_type.into(),
        collation_rule: info.collation.into(),
        index_block_size: info.block_size.into(),
        clusters_per_index_block: info.clusters_per_block,
        reserved: [0; 3],
    };
    let node = IndexHeader {
        entries_offset: (NODE_HEADER_LEN as u32).into(),
        index_length: il.into(),
        allocated_size: il.into(),
        flags: if end_child.is_some() {
            NODE_HAS_SUBNODES
        } else {
            0
        },
        reserved: [0; 3],
    };
    let mut val = Vec::with_capacity(ROOT_LEN + il as usize);
    val.extend_from_slice(root.as_bytes());
    val.extend_from_slice(node.as_bytes());
    val.extend_from_slice(&body);
    val
}

/// Serialize a node's entries followed by its END entry.
fn node_bytes(ents: &[(Vec<u8>, Option<u64>)], end_child: Option<u64>) -> Vec<u8> {
    let mut out = Vec::new();
    for (e, c) in ents {
        let start = out.len();
        out.extend_from_slice(e);
        if let Some(v) = c {
            out.extend_from_slice(U64::new(*v).as_bytes());
        }
        let len = out.len() - start;
        if let Some(h) = IndexEntryHeader::view_mut(&mut out[start..]) {
            h.length = (len as u16).into();
            h.flags = if c.is_some() { ENTRY_SUBNODE } else { 0 }.into();
        }
    }
    let end = IndexEntryHeader {
        indexed: 0.into(),
        length: (ENTRY_HEADER_LEN as u16 + if end_child.is_some() { 8 } else { 0 }).into(),
        key_length: 0.into(),
        flags: if end_child.is_some() {
            ENTRY_END | ENTRY_SUBNODE
        } else {
            ENTRY_END
        }
        .into(),
        reserved: 0.into(),
    };
    out.extend_from_slice(end.as_bytes());
    if let Some(v) = end_child {
        out.extend_from_slice(U64::new(v).as_bytes());
    }
    out
}

/// Parse one INDX block on its own (fixups verified and removed in place): the entries of the
/// node in order, END entry excluded, each as `(entry bytes without sub-node VCN, sub-node VCN)`.
/// Used by the fuzz targets and diagnostics.
///
/// # Errors
/// [`Error::Corrupt`] located by byte offset inside the block.
pub fn parse_index_block(buf: &mut [u8]) -> Result<Vec<(Vec<u8>, Option<u64>)>> {
    if buf.len() < BLOCK_USA_OFFSET || !check_block_signature(buf) {
        return Err(Error::corrupt(
            "INDX block",
            None,
            Offset::Stream(0),
            "signature is not INDX",
        ));
    }
    record::remove_fixups(buf, "INDX block", None)?;
    let c = |o: usize, r: &str| Error::corrupt("INDX block", None, Offset::Stream(o as u64), r);
    let mut out = Vec::new();
    for (p, len, flags, child) in node_entries_with(buf, BLOCK_HEADER_LEN, &c)? {
        if flags & ENTRY_END != 0 {
            break;
        }
        let keep = if child.is_some() { len - 8 } else { len };
        out.push((buf[p..p + keep].to_vec(), child));
    }
    Ok(out)
}

/// One node on a search path: the root (`vcn == None`) or an INDX block.
struct Node {
    vcn: Option<u64>,
    /// Root: the `$INDEX_ROOT` value; block: the block bytes without fixups.
    buf: Vec<u8>,
    /// Offset of the INDEX_HEADER in `buf`.
    hdr: usize,
    /// Where `buf` starts, for errors: in the record (root) or in `$INDEX_ALLOCATION`.
    base: Offset,
}

/// (offset, length, flags, sub-node VCN) of one entry of a node.
type EntryPos = (usize, usize, u16, Option<u64>);

/// Every entry of the node whose INDEX_HEADER is at `hdr` in `buf`, END included, validated;
/// `c(offset, reason)` builds the error for a problem at `offset` in `buf`.
fn node_entries_with(
    buf: &[u8],
    hdr: usize,
    c: &dyn Fn(usize, &str) -> Error,
) -> Result<Vec<EntryPos>> {
    let Some(h) = node_header(buf, hdr) else {
        return Err(c(hdr, "index header truncated"));
    };
    let start = hdr
        .checked_add(h.entries_offset.get() as usize)
        .ok_or_else(|| c(hdr, "entries offset overflow"))?;
    let end = hdr
        .checked_add(h.index_length.get() as usize)
        .ok_or_else(|| {
            c(
                hdr + offset_of!(IndexHeader, index_length),
                "index length overflow",
            )
        })?;
    if end > buf.len() || start > end {
        return Err(c(hdr, "entries outside node"));
    }
    let mut out = Vec::new();
    let mut p = start;
    loop {
        let Some(h) = buf.get(p..end).and_then(IndexEntryHeader::view) else {
            return Err(c(p, "entry truncated (no END entry)"));
        };
        let len = usize::from(h.length.get());
        let klen = usize::from(h.key_length.get());
        let flags = h.flags.get();
        const LENGTH: usize = offset_of!(IndexEntryHeader, length);
        if len < ENTRY_HEADER_LEN || len % 8 != 0 || p.checked_add(len).is_none_or(|e| e > end) {
            return Err(c(p + LENGTH, "bad entry length"));
        }
        if flags & ENTRY_END == 0 && klen.saturating_add(ENTRY_HEADER_LEN) > len {
            return Err(c(
                p + offset_of!(IndexEntryHeader, key_length),
                "key longer than entry",
            ));
        }
        let child = if flags & ENTRY_SUBNODE != 0 {
            if len < ENTRY_HEADER_LEN + 8 {
                return Err(c(p + LENGTH, "entry too short for a sub-node VCN"));
            }
            layout::sub_node_vcn(&buf[p..p + len])
        } else {
            None
        };
        out.push((p, len, flags, child));
        if flags & ENTRY_END != 0 {
            break;
        }
        p += len;
        if out.len() > 65536 {
            return Err(c(p, "too many entries"));
        }
    }
    Ok(out)
}

/// [`node_entries_with`] for `node` of record `rec`, errors located from `node.base`.
fn node_entries(node: &Node, rec: u64) -> Result<Vec<EntryPos>> {
    node_entries_with(&node.buf, node.hdr, &|o, r| {
        Error::corrupt("index node", Some(rec), node.base.plus(o as u64), r)
    })
}

/// Key bytes of an entry at `p`.
fn key_at(buf: &[u8], p: usize) -> &[u8] {
    buf.get(p..).and_then(layout::key).unwrap_or(&[])
}

type KeyCmp<'a> = &'a dyn Fn(&[u8], &[u8]) -> std::cmp::Ordering;

impl<D: Device> Volume<D> {
    /// Load the INDX block at `vcn`, named by the entry at byte `at` of `parent`.
    fn load_block(
        &self,
        rec: u64,
        name: &[u16],
        info: &RootInfo,
        parent: &Node,
        at: usize,
        vcn: u64,
    ) -> Result<Node> {
        // Where the sub-node VCN field is: in $INDEX_ROOT (offset in the value) or in the
        // parent INDX block (offset in $INDEX_ALLOCATION).
        let bs = info.block_size as usize;
        let unit = self.vcn_unit(info.block_size);
        let structure = match parent.vcn {
            None => "$INDEX_ROOT",
            Some(_) => "INDX block",
        };
        let field = parent.base.plus(at as u64);
        let err = |reason: String| Error::corrupt(structure, Some(rec), field, reason);
        let alloc = self
            .stream(rec, INDEX_ALLOCATION, name)?
            .ok_or_else(|| err(format!("sub-node VCN {vcn:#x} without $INDEX_ALLOCATION")))?;
        let off = block_offset(vcn, unit, bs as u64, alloc.size).ok_or_else(|| {
            err(format!(
                "sub-node VCN {vcn:#x} outside $INDEX_ALLOCATION ({} bytes)",
                alloc.size
            ))
        })?;
        let mut blk = vec![0u8; bs];
        self.read_stream(&alloc, off, &mut blk)?;
        if !check_block_signature(&blk) {
            return Err(Error::corrupt(
                "INDX block",
                Some(rec),
                Offset::Stream(off),
                "signature is not INDX",
            ));
        }
        record::remove_fixups_at(&mut blk, "INDX block", Some(rec), Offset::Stream(off))?;
        if block_vcn(&blk) != Some(vcn) {
            return Err(Error::corrupt(
                "INDX block",
                Some(rec),
                Offset::Stream(off + VCN_FIELD),
                "VCN field does not match",
            ));
        }
        Ok(Node {
            vcn: Some(vcn),
            buf: blk,
            hdr: BLOCK_HEADER_LEN,
            base: Offset::Stream(off),
        })
    }

    /// Descend towards `key`: the nodes visited, and whether the last one holds an equal key
    /// (with its entry offset).
    fn descend(
        &self,
        rec: u64,
        name: &[u16],
        key: &[u8],
        cmp: KeyCmp<'_>,
    ) -> Result<(RootInfo, Vec<Node>, Option<usize>)> {
        let (r, a, info) = self.root_attr(rec, name)?;
        let mut node = Node {
            vcn: None,
            buf: r.value(&a).to_vec(),
            hdr: ROOT_LEN,
            base: Offset::Record((a.off + a.value_off) as u64),
        };
        let mut path = Vec::new();
        for _ in 0..MAX_DEPTH {
            let ents = node_entries(&node, rec)?;
            let mut next = None;
            let mut found = None;
            for &(p, len, flags, child) in &ents {
                if flags & ENTRY_END != 0 {
                    next = child.map(|v| (p + len - 8, v));
                    break;
                }
                match cmp(key, key_at(&node.buf, p)) {
                    std::cmp::Ordering::Equal => {
                        found = Some(p);
                        break;
                    }
                    std::cmp::Ordering::Less => {
                        next = child.map(|v| (p + len - 8, v));
                        break;
                    }
                    std::cmp::Ordering::Greater => {}
                }
            }
            if found.is_some() {
                path.push(node);
                return Ok((info, path, found));
            }
            match next {
                Some((at, vcn)) => {
                    let child = self.load_block(rec, name, &info, &node, at, vcn)?;
                    path.push(node);
                    node = child;
                }
                None => {
                    path.push(node);
                    return Ok((info, path, None));
                }
            }
        }
        Err(Error::corrupt(
            "index node",
            Some(rec),
            Offset::Whole,
            "index tree too deep",
        ))
    }

    /// Look up an entry by key (descending the tree). Returns the entry bytes (stripped).
    pub(crate) fn index_find(
        &self,
        rec: u64,
        name: &[u16],
        key: &[u8],
        cmp: KeyCmp<'_>,
    ) -> Result<Option<Vec<u8>>> {
        let (_, path, found) = self.descend(rec, name, key, cmp)?;
        Ok(found.and_then(|p| {
            let n = path.last()?;
            let h = n.buf.get(p..).and_then(IndexEntryHeader::view)?;
            let e = n.buf.get(p..p + usize::from(h.length.get()))?;
            Some(stripped(e, h.flags.get()))
        }))
    }

    fn write_node(&mut self, rec: u64, name: &[u16], info: &RootInfo, node: &Node) -> Result<()> {
        match node.vcn {
            None => {
                let mut r = self.read_record(rec)?;
                let a = r.find(INDEX_ROOT, name)?.ok_or_else(|| {
                    Error::corrupt("$INDEX_ROOT", Some(rec), Offset::Whole, "vanished")
                })?;
                let bytes = attribute::build_resident(INDEX_ROOT, name, &node.buf, 0);
                r.replace_attr(&a, bytes)?;
                self.write_record(&mut r)
            }
            Some(vcn) => {
                let mut st = self.stream(rec, INDEX_ALLOCATION, name)?.ok_or_else(|| {
                    Error::corrupt("$INDEX_ALLOCATION", Some(rec), Offset::Whole, "vanished")
                })?;
                let mut b = node.buf.clone();
                record::apply_fixups(&mut b, "INDX block", Some(rec))?;
                let unit = self.vcn_unit(info.block_size);
                let off = block_offset(vcn, unit, b.len() as u64, st.size).ok_or_else(|| {
                    Error::corrupt(
                        "$INDEX_ALLOCATION",
                        Some(rec),
                        Offset::Whole,
                        format!(
                            "INDX block VCN {vcn:#x} outside the stream ({} bytes)",
                            st.size
                        ),
                    )
                })?;
                self.write_stream_data(&mut st, off, &b)
            }
        }
    }

    /// Insert an entry (stripped form) in place into its leaf when it fits; otherwise lay the
    /// whole index out again. Returns false if an equal key exists (nothing written).
    pub(crate) fn index_insert(
        &mut self,
        rec: u64,
        name: &[u16],
        entry: &[u8],
        cmp: KeyCmp<'_>,
    ) -> Result<bool> {
        let key = key_at(entry, 0).to_vec();
        let (info, mut path, found) = self.descend(rec, name, &key, cmp)?;
        if found.is_some() {
            return Ok(false);
        }
        let Some(mut leaf) = path.pop() else {
            return Ok(false);
        };
        let ents = node_entries(&leaf, rec)?;
        let is_leaf = ents.iter().all(|e| e.3.is_none());
        let pos = ents
            .iter()
            .find(|&&(p, _, flags, _)| {
                flags & ENTRY_END != 0
                    || cmp(&key, key_at(&leaf.buf, p)) == std::cmp::Ordering::Less
            })
            .map(|e| e.0);
        let il = node_header(&leaf.buf, leaf.hdr).map_or(0, |h| h.index_length.get() as usize);
        let fits = match leaf.vcn {
            Some(_) => il + entry.len() <= node_capacity(&leaf.buf, leaf.hdr),
            None => {
                let r = self.read_record(rec)?;
                let room = if r.find(INDEX_ALLOCATION, name)?.is_some() {
                    64
                } else {
                    256
                };
                r.free() >= entry.len() + room
            }
        };
        if let (true, true, Some(pos)) = (is_leaf, fits, pos) {
            let mut e = entry.to_vec();
            if let Some(h) = IndexEntryHeader::view_mut(&mut e) {
                h.flags = 0.into();
            }
            leaf.buf.splice(pos..pos, e);
            set_index_length(&mut leaf, il + entry.len());
            if leaf.vcn.is_some() {
                leaf.buf.truncate(info.block_size as usize);
            }
            self.write_node(rec, name, &info, &leaf)?;
            return Ok(true);
        }
        if is_leaf
            && leaf.vcn.is_some()
            && self.split_leaf(rec, name, &info, &leaf, path.last(), entry, &key, cmp)?
        {
            return Ok(true);
        }
        let (_, mut all) = self.read_index(rec, name)?;
        let at = all.partition_point(|x| cmp(key_at(x, 0), &key) == std::cmp::Ordering::Less);
        all.insert(at, entry.to_vec());
        self.write_index(rec, name, &all)?;
        Ok(true)
    }

    /// Remove the entry with key `key`: in place from a leaf that keeps at least one entry (or
    /// is the root), otherwise by laying the index out again. Returns false if absent.
    pub(crate) fn index_remove(
        &mut self,
        rec: u64,
        name: &[u16],
        key: &[u8],
        cmp: KeyCmp<'_>,
    ) -> Result<bool> {
        let (info, mut path, found) = self.descend(rec, name, key, cmp)?;
        let Some(p) = found else { return Ok(false) };
        let Some(mut node) = path.pop() else {
            return Ok(false);
        };
        let ents = node_entries(&node, rec)?;
        let is_leaf = ents.iter().all(|e| e.3.is_none());
        let real = ents.len() - 1;
        if is_leaf && (node.vcn.is_none() || real > 1) {
            let len = node
                .buf
                .get(p..)
                .and_then(IndexEntryHeader::view)
                .map_or(0, |h| usize::from(h.length.get()));
            let il = node_header(&node.buf, node.hdr).map_or(0, |h| h.index_length.get() as usize);
            let left = il.checked_sub(len).ok_or_else(|| {
                Error::corrupt(
                    "index node",
                    Some(rec),
                    node.base
                        .plus((node.hdr + offset_of!(IndexHeader, index_length)) as u64),
                    format!("index length {il} shorter than the {len}-byte entry at {p:#x}"),
                )
            })?;
            node.buf.drain(p..p + len);
            set_index_length(&mut node, left);
            if node.vcn.is_some() {
                node.buf.resize(info.block_size as usize, 0);
            }
            self.write_node(rec, name, &info, &node)?;
            return Ok(true);
        }
        let (_, mut all) = self.read_index(rec, name)?;
        let before = all.len();
        all.retain(|x| cmp(key_at(x, 0), key) != std::cmp::Ordering::Equal);
        if all.len() == before {
            return Ok(false);
        }
        self.write_index(rec, name, &all)?;
        Ok(true)
    }
}

impl<D: Device> Volume<D> {
    /// The entry with the greatest key (stripped form), if any.
    pub(crate) fn index_last(&self, rec: u64, name: &[u16]) -> Result<Option<Vec<u8>>> {
        let (r, a, info) = self.root_attr(rec, name)?;
        let mut node = Node {
            vcn: None,
            buf: r.value(&a).to_vec(),
            hdr: ROOT_LEN,
            base: Offset::Record((a.off + a.value_off) as u64),
        };
        let mut best: Option<Vec<u8>> = None;
        for _ in 0..MAX_DEPTH {
            let ents = node_entries(&node, rec)?;
            if let Some(&(p, len, flags, _)) = ents.iter().rev().find(|e| e.2 & ENTRY_END == 0) {
                best = Some(stripped(&node.buf[p..p + len], flags));
            }
            match ents.last().and_then(|e| e.3.map(|v| (e.0 + e.1 - 8, v))) {
                Some((at, vcn)) => node = self.load_block(rec, name, &info, &node, at, vcn)?,
                None => return Ok(best),
            }
        }
        Err(Error::corrupt(
            "index node",
            Some(rec),
            Offset::Whole,
            "index tree too deep",
        ))
    }
}

impl<D: Device> Volume<D> {
    /// Change an entry's bytes in place (same length, same key order): `f` gets the entry
    /// (header + key + data, without the sub-node VCN). Returns false if the key is absent.
    pub(crate) fn index_update(
        &mut self,
        rec: u64,
        name: &[u16],
        key: &[u8],
        cmp: KeyCmp<'_>,
        f: impl FnOnce(&mut [u8]),
    ) -> Result<bool> {
        let (info, mut path, found) = self.descend(rec, name, key, cmp)?;
        let (Some(p), Some(mut node)) = (found, path.pop()) else {
            return Ok(false);
        };
        let Some(h) = node.buf.get(p..).and_then(IndexEntryHeader::view) else {
            return Ok(false);
        };
        let len = usize::from(h.length.get());
        let body = if h.flags.get() & ENTRY_SUBNODE != 0 {
            len.saturating_sub(8)
        } else {
            len
        };
        let before = node.buf[p..p + body].to_vec();
        f(&mut node.buf[p..p + body]);
        if node.buf[p..p + body] != before[..] {
            self.write_node(rec, name, &info, &node)?;
        }
        Ok(true)
    }
}

impl<D: Device> Volume<D> {
    /// Split a full leaf block around its median: the lower half goes to a new block, the
    /// median moves up into the parent (pointing at the new block), the upper half stays in
    /// the old block (so the parent's existing pointer stays right). Returns false, having
    /// written nothing, when the parent has no room (the caller then lays the index out again).
    #[allow(clippy::too_many_arguments)]
    fn split_leaf(
        &mut self,
        rec: u64,
        name: &[u16],
        info: &RootInfo,
        leaf: &Node,
        parent: Option<&Node>,
        entry: &[u8],
        key: &[u8],
        cmp: KeyCmp<'_>,
    ) -> Result<bool> {
        let (Some(parent), Some(leaf_vcn)) = (parent, leaf.vcn) else {
            return Ok(false);
        };
        let bs = info.block_size as usize;
        // Entries of the leaf plus the new one, in order.
        let mut ents: Vec<Vec<u8>> = Vec::new();
        for &(p, len, flags, _) in &node_entries(leaf, rec)? {
            if flags & ENTRY_END == 0 {
                ents.push(leaf.buf[p..p + len].to_vec());
            }
        }
        let at = ents.partition_point(|x| cmp(key_at(x, 0), key) == std::cmp::Ordering::Less);
        ents.insert(at, entry.to_vec());
        if ents.len() < 3 {
            return Ok(false);
        }
        let total: usize = ents.iter().map(Vec::len).sum();
        let mut acc = 0;
        let mut m = 0;
        while m < ents.len() - 2 && acc + ents[m].len() < total / 2 {
            acc += ents[m].len();
            m += 1;
        }
        let m = m.max(1);
        let median = ents[m].clone();
        // Parent position: the entry whose child is this leaf.
        let pents = node_entries(parent, rec)?;
        let Some(&(ppos, _, _, _)) = pents.iter().find(|e| e.3 == Some(leaf_vcn)) else {
            return Ok(false);
        };
        let pil = node_header(&parent.buf, parent.hdr).map_or(0, |h| h.index_length.get() as usize);
        let add = median.len() + 8;
        let fits = match parent.vcn {
            Some(_) => pil + add <= node_capacity(&parent.buf, parent.hdr),
            None => self.read_record(rec)?.free() >= add + 64,
        };
        if !fits {
            return Ok(false);
        }
        // A free block: first clear bit of $BITMAP, growing the allocation if needed.
        let alloc = self.stream(rec, INDEX_ALLOCATION, name)?.ok_or_else(|| {
            Error::corrupt("$INDEX_ALLOCATION", Some(rec), Offset::Whole, "vanished")
        })?;
        let nblocks = alloc.size / bs as u64;
        let bits = match self.stream(rec, BITMAP, name)? {
            Some(b) => {
                if b.size > 1 << 24 {
                    return Err(Error::corrupt(
                        "$BITMAP",
                        Some(rec),
                        Offset::Whole,
                        "index bitmap larger than 16 MiB",
                    ));
                }
                let mut v = vec![0u8; b.size as usize];
                self.read_stream(&b, 0, &mut v)?;
                v
            }
            None => return Ok(false),
        };
        let free = (0..nblocks).find(|i| {
            bits.get((i / 8) as usize)
                .is_some_and(|b| b & (1 << (i % 8)) == 0)
        });
        let newb = match free {
            Some(i) => i,
            None => {
                let grow_to = nblocks.saturating_add((nblocks / 4).max(1));
                let len = blocks_len(grow_to, bs).ok_or_else(|| {
                    Error::corrupt(
                        "$INDEX_ALLOCATION",
                        Some(rec),
                        Offset::Whole,
                        format!("{grow_to} blocks of {bs} bytes overflow a stream length"),
                    )
                })?;
                self.set_stream_len(rec, INDEX_ALLOCATION, name, len, Grow::default())?;
                let need = grow_to.div_ceil(64) * 8;
                let bst = self.stream(rec, BITMAP, name)?.ok_or_else(|| {
                    Error::corrupt("$BITMAP", Some(rec), Offset::Whole, "vanished")
                })?;
                if bst.size < need {
                    self.set_stream_len(
                        rec,
                        BITMAP,
                        name,
                        need,
                        Grow {
                            zero: true,
                            mft_zone: false,
                        },
                    )?;
                }
                nblocks
            }
        };
        let unit = self.vcn_unit(info.block_size);
        let per = bs as u64 / unit.min(bs as u64);
        let new_vcn = newb * per;
        let left: Vec<(Vec<u8>, Option<u64>)> =
            ents[..m].iter().map(|e| (e.clone(), None)).collect();
        let right: Vec<(Vec<u8>, Option<u64>)> =
            ents[m + 1..].iter().map(|e| (e.clone(), None)).collect();
        let usn_old = record::usn(&leaf.buf).unwrap_or(0);
        self.write_block(rec, name, info, new_vcn, &left, None, 0)?;
        self.write_block(rec, name, info, leaf_vcn, &right, None, usn_old)?;
        // Mark the new block used.
        let mut bst = self
            .stream(rec, BITMAP, name)?
            .ok_or_else(|| Error::corrupt("$BITMAP", Some(rec), Offset::Whole, "vanished"))?;
        let mut byte = [0u8; 1];
        self.read_stream(&bst, newb / 8, &mut byte)?;
        byte[0] |= 1 << (newb % 8);
        self.write_stream_data(&mut bst, newb / 8, &byte)?;
        // Median into the parent, before the entry that points at the old leaf.
        let mut pnode = Node {
            vcn: parent.vcn,
            buf: parent.buf.clone(),
            hdr: parent.hdr,
            base: parent.base,
        };
        let me = node_bytes(&[(median, Some(new_vcn))], None);
        let me = &me[..me.len() - ENTRY_HEADER_LEN];
        pnode.buf.splice(ppos..ppos, me.iter().copied());
        set_index_length(&mut pnode, pil + add);
        if pnode.vcn.is_some() {
            pnode.buf.truncate(bs);
        }
        self.write_node(rec, name, info, &pnode)?;
        Ok(true)
    }

    #[allow(clippy::too_many_arguments)]
    fn write_block(
        &mut self,
        rec: u64,
        name: &[u16],
        info: &RootInfo,
        vcn: u64,
        ents: &[(Vec<u8>, Option<u64>)],
        end_child: Option<u64>,
        usn: u16,
    ) -> Result<()> {
        let bs = info.block_size as usize;
        let b = build_block(bs, vcn, usn, ents, end_child)
            .ok_or_else(|| Error::unsupported(Some(rec), "index block overflow while splitting"))?;
        let node = Node {
            vcn: Some(vcn),
            buf: b,
            hdr: BLOCK_HEADER_LEN,
            base: Offset::Stream(vcn.saturating_mul(self.vcn_unit(info.block_size))),
        };
        self.write_node(rec, name, info, &node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(b: &mut [u8], hdr: usize) -> &mut IndexHeader {
        IndexHeader::mut_from_prefix(&mut b[hdr..]).unwrap().0
    }

    fn entry(b: &mut [u8], p: usize) -> &mut IndexEntryHeader {
        IndexEntryHeader::view_mut(&mut b[p..]).unwrap()
    }

    #[test]
    fn block_offset_never_wraps() {
        let size = 64 * 4096;
        assert_eq!(block_offset(3, 4096, 4096, size), Some(3 * 4096));
        assert_eq!(block_offset(63, 4096, 4096, size), Some(63 * 4096));
        assert_eq!(block_offset(64, 4096, 4096, size), None);
        // The multiply fits, the add of the block size overflows: before, `off + bs` panicked
        // in debug builds (and wrapped to a small offset in release).
        let vcn = u64::MAX / 4096;
        assert!(vcn.checked_mul(4096).is_some());
        assert_eq!(block_offset(vcn, 4096, 4096, u64::MAX), None);
        assert_eq!(block_offset(u64::MAX, 512, 4096, u64::MAX), None);
        assert_eq!(blocks_len(u64::MAX / 2, 4096), None);
    }

    #[test]
    fn node_capacity_is_bounded_by_the_buffer() {
        let mut blk = vec![0u8; 4096];
        node(&mut blk, 0x18).allocated_size = u32::MAX.into();
        assert_eq!(node_capacity(&blk, 0x18), 4096 - 0x18);
        node(&mut blk, 0x18).allocated_size = 100.into();
        assert_eq!(node_capacity(&blk, 0x18), 100);
    }

    #[test]
    fn hostile_node_headers_are_errors() {
        let c = |o: usize, r: &str| Error::corrupt("index node", None, Offset::Stream(o as u64), r);
        let mut b = vec![0u8; 64];
        // Entries offset and index length at u32::MAX.
        node(&mut b, 0).entries_offset = u32::MAX.into();
        node(&mut b, 0).index_length = u32::MAX.into();
        assert!(node_entries_with(&b, 0, &c).is_err());
        // An entry length that runs past the node; a key longer than the entry.
        let mut b = vec![0u8; 64];
        node(&mut b, 0).entries_offset = 16.into();
        node(&mut b, 0).index_length = 64.into();
        entry(&mut b, 16).length = 0xFFF8.into();
        assert!(matches!(
            node_entries_with(&b, 0, &c),
            Err(Error::Corrupt {
                offset: Offset::Stream(24),
                ..
            })
        ));
        entry(&mut b, 16).length = 24.into();
        entry(&mut b, 16).key_length = u16::MAX.into();
        assert!(matches!(
            node_entries_with(&b, 0, &c),
            Err(Error::Corrupt {
                offset: Offset::Stream(26),
                ..
            })
        ));
        // Built nodes parse back: two entries, one with a sub-node, and the END entry.
        let e = stripped(&[0u8; 24], 0);
        let body = node_bytes(&[(e.clone(), None), (e, Some(9))], Some(11));
        let mut b = vec![0u8; 16];
        node(&mut b, 0).entries_offset = 16.into();
        node(&mut b, 0).index_length = ((16 + body.len()) as u32).into();
        b.extend_from_slice(&body);
        let ents = node_entries_with(&b, 0, &c).unwrap();
        let got: Vec<_> = ents.iter().map(|e| (e.1, e.2, e.3)).collect();
        assert_eq!(
            got,
            [
                (24, 0, None),
                (32, ENTRY_SUBNODE, Some(9)),
                (24, 3, Some(11))
            ]
        );
        // A header at the very end of the buffer.
        assert!(node_entries_with(&b, usize::MAX - 8, &c).is_err());
    }
}
