//! Editing: cell allocator (reuse free cells, split, coalesce, append hbins) and the
//! key/value/security mutations, plus [`Hive::commit`].
//!
//! Offsets, never references, are held across allocations (the buffer may grow).

use std::collections::{BTreeMap, BTreeSet};

use crate::base_block::{self, BASE_BLOCK_SIZE};
use crate::error::{HiveError, Result};
use crate::hive::{limits, CellOffset, Hive, KeyOffset};
use crate::key_node::{nk, parse_list, Key, ListKind, KEY_COMP_NAME, NK_FIXED};
use crate::key_security::{validate_descriptor, Sk};
use crate::key_value::{Value, BIG_DATA_SEGMENT, VALUE_COMP_NAME, VK_FIXED};
use crate::name::{cmp_units, encode_name, validate_key_name, NameRef};

/// Most entries in one lf/lh/li leaf before an ri index is used (one 4 KiB page of lh).
pub const MAX_LEAF: usize = 507;

/// An ri list and its leaves (cell, kind).
type RiLayout = (CellOffset, Vec<(CellOffset, ListKind)>);

/// Free-cell index built when a hive is made writable.
#[derive(Debug, Clone, Default)]
pub struct Alloc {
    /// hbin file start -> file end.
    bins: BTreeMap<usize, usize>,
    /// free cell file offset -> size.
    by_off: BTreeMap<usize, usize>,
    /// (size, file offset).
    by_size: BTreeSet<(usize, usize)>,
}

impl Alloc {
    fn insert(&mut self, off: usize, size: usize) {
        self.by_off.insert(off, size);
        self.by_size.insert((size, off));
    }
    fn remove(&mut self, off: usize) -> Option<usize> {
        let s = self.by_off.remove(&off)?;
        self.by_size.remove(&(s, off));
        Some(s)
    }
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
pub(crate) fn filetime_now() -> u64 {
    let d = source_date_epoch().unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
    });
    d.as_secs() * 10_000_000 + u64::from(d.subsec_nanos() / 100) + 116_444_736_000_000_000
}

impl Hive {
    /// Switches to writable mode: indexes the hbins and free cells. Refuses a dirty hive
    /// (replay its logs with [`Hive::recover`] first) and malformed hbins.
    ///
    /// # Errors
    /// [`HiveError::Dirty`], [`HiveError::BadHbin`].
    pub fn make_writable(&mut self) -> Result<()> {
        if self.alloc.is_some() {
            return Ok(());
        }
        let bb = self.base_block();
        if bb.seq1 != bb.seq2 {
            return Err(HiveError::Dirty {
                seq1: bb.seq1,
                seq2: bb.seq2,
            });
        }
        let mut a = Alloc::default();
        let (bins, cells) = self.bins_and_cells()?;
        for (start, end) in bins {
            a.bins.insert(start, end);
        }
        for (c, len, free) in cells {
            if free {
                a.insert(c, len);
            }
        }
        self.alloc = Some(Box::new(a));
        Ok(())
    }

    fn alloc_mut(&mut self) -> Result<&mut Alloc> {
        self.alloc.as_deref_mut().ok_or(HiveError::ReadOnly)
    }

    pub(crate) fn write_bytes(&mut self, file: usize, b: &[u8]) {
        self.data[file..file + b.len()].copy_from_slice(b);
        self.dirty.push(file..file + b.len());
        self.modified = true;
    }

    pub(crate) fn write_u32(&mut self, file: usize, v: u32) {
        self.write_bytes(file, &v.to_le_bytes());
    }

    fn write_u16(&mut self, file: usize, v: u16) {
        self.write_bytes(file, &v.to_le_bytes());
    }

    /// Writes a u32 field of a cell (offset inside cell data).
    fn set_cell_u32(&mut self, cell: CellOffset, field: usize, v: u32) {
        self.write_u32(cell.0 as usize + BASE_BLOCK_SIZE + 4 + field, v);
    }

    fn cell_u32(&self, cell: CellOffset, field: usize) -> u32 {
        self.u32_at(cell.0 as usize + BASE_BLOCK_SIZE + 4 + field)
    }

    /// Allocates a cell with room for `len` data bytes; the data area is zeroed.
    pub(crate) fn alloc_cell(&mut self, len: usize) -> Result<CellOffset> {
        let need = (len + 4).div_ceil(8) * 8;
        if need > 0x7FFF_0000 {
            return Err(HiveError::InvalidArgument {
                reason: format!("cell of {len} bytes is too large"),
            });
        }
        let hit = self.alloc_mut()?.by_size.range((need, 0)..).next().copied();
        let file = match hit {
            Some((size, off)) => {
                self.alloc_mut()?.remove(off);
                if size - need >= 8 {
                    self.write_u32(off + need, (size - need) as u32);
                    self.alloc_mut()?.insert(off + need, size - need);
                    self.write_u32(off, (need as i32).wrapping_neg() as u32);
                } else {
                    self.write_u32(off, (size as i32).wrapping_neg() as u32);
                }
                off
            }
            None => {
                let bin_size = (need + 32).div_ceil(4096) * 4096;
                let start = self.hbins_end;
                let end = start + bin_size;
                if end - BASE_BLOCK_SIZE > u32::MAX as usize - 4096 {
                    return Err(HiveError::InvalidArgument {
                        reason: "hive would exceed 4 GiB".into(),
                    });
                }
                if self.data.len() < end {
                    self.data.resize(end, 0);
                }
                let mut hdr = [0u8; 32];
                hdr[0..4].copy_from_slice(b"hbin");
                hdr[4..8].copy_from_slice(&((start - BASE_BLOCK_SIZE) as u32).to_le_bytes());
                hdr[8..12].copy_from_slice(&(bin_size as u32).to_le_bytes());
                self.write_bytes(start, &hdr);
                // zero the whole new bin (slack after the last bin may hold junk)
                let zeros = vec![0u8; bin_size - 32];
                self.write_bytes(start + 32, &zeros);
                self.hbins_end = end;
                self.write_u32(
                    base_block::HBINS_SIZE_OFFSET,
                    (end - BASE_BLOCK_SIZE) as u32,
                );
                let a = self.alloc_mut()?;
                a.bins.insert(start, end);
                let off = start + 32;
                let rest = bin_size - 32 - need;
                if rest >= 8 {
                    self.write_u32(off + need, rest as u32);
                    self.alloc_mut()?.insert(off + need, rest);
                    self.write_u32(off, (need as i32).wrapping_neg() as u32);
                } else {
                    self.write_u32(off, ((need + rest) as i32).wrapping_neg() as u32);
                }
                off
            }
        };
        let size = (self.u32_at(file) as i32).unsigned_abs() as usize;
        let zeros = vec![0u8; size - 4];
        self.write_bytes(file + 4, &zeros);
        Ok(CellOffset((file - BASE_BLOCK_SIZE) as u32))
    }

    /// Allocates a cell and fills it with `data`.
    pub(crate) fn alloc_with(&mut self, data: &[u8]) -> Result<CellOffset> {
        let c = self.alloc_cell(data.len())?;
        self.write_bytes(c.0 as usize + BASE_BLOCK_SIZE + 4, data);
        Ok(c)
    }

    /// Frees an allocated cell: zeroes it, marks it free and coalesces with free
    /// neighbours in the same hbin.
    pub(crate) fn free_cell(&mut self, off: CellOffset) -> Result<()> {
        let (file, size) = self.cell_span(off, "cell to free")?;
        self.alloc_mut()?;
        let zeros = vec![0u8; size - 4];
        self.write_bytes(file + 4, &zeros);
        let a = self.alloc.as_deref().expect("invariant: checked writable");
        let (&bstart, &bend) = a
            .bins
            .range(..=file)
            .next_back()
            .ok_or_else(|| HiveError::corrupt("cell to free", off, "not inside an hbin"))?;
        let mut start = file;
        let mut total = size;
        let next = file + size;
        if next < bend {
            if let Some(ns) = self.alloc_mut()?.remove(next) {
                total += ns;
                self.write_u32(next, 0);
            }
        }
        let prev = self
            .alloc
            .as_deref()
            .and_then(|a| a.by_off.range(..file).next_back().map(|(&p, &s)| (p, s)));
        if let Some((p, ps)) = prev {
            if p >= bstart && p + ps == file {
                self.alloc_mut()?.remove(p);
                start = p;
                total += ps;
                self.write_u32(file, 0);
            }
        }
        self.write_u32(start, total as u32);
        self.alloc_mut()?.insert(start, total);
        Ok(())
    }

    fn cell_capacity(&self, off: CellOffset) -> Result<usize> {
        Ok(self.cell_span(off, "cell")?.1 - 4)
    }

    fn nk_file(&self, key: KeyOffset) -> usize {
        key.0 as usize + BASE_BLOCK_SIZE + 4
    }

    fn touch_key(&mut self, key: KeyOffset) {
        let f = self.nk_file(key) + nk::TIMESTAMP;
        self.write_bytes(f, &filetime_now().to_le_bytes());
    }

    fn check_writable(&self) -> Result<()> {
        if self.alloc.is_none() {
            return Err(HiveError::ReadOnly);
        }
        Ok(())
    }

    /// All subkey offsets of a key, in stored order.
    pub(crate) fn child_offsets(&self, key: KeyOffset) -> Result<Vec<CellOffset>> {
        let k = Key::new(self, key)?;
        let mut it = k.subkeys()?;
        let mut v = Vec::with_capacity(k.subkey_count() as usize);
        while let Some(e) = it.next_entry() {
            v.push(e?.0);
        }
        Ok(v)
    }

    /// Cells making up a key's subkey list (ri + leaves, or the single leaf).
    fn list_cells(&self, key: KeyOffset) -> Result<(Vec<CellOffset>, Option<ListKind>)> {
        let k = Key::new(self, key)?;
        let lo = k.subkey_list_offset();
        if k.subkey_count() == 0 || lo.is_nil() {
            return Ok((Vec::new(), None));
        }
        let (kind, entries) = parse_list(self, lo)?;
        if kind != ListKind::Ri {
            return Ok((vec![lo], Some(kind)));
        }
        let mut cells = vec![lo];
        let mut leaf_kind = None;
        for c in entries.chunks_exact(4) {
            let l = CellOffset(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            let (lk, _) = parse_list(self, l)?;
            leaf_kind.get_or_insert(lk);
            cells.push(l);
        }
        Ok((cells, leaf_kind))
    }

    fn leaf_bytes(&self, kind: ListKind, children: &[CellOffset]) -> Result<Vec<u8>> {
        let mut b = Vec::with_capacity(4 + children.len() * kind.stride());
        b.extend_from_slice(kind.sig());
        b.extend_from_slice(&(children.len() as u16).to_le_bytes());
        for &c in children {
            b.extend_from_slice(&c.0.to_le_bytes());
            match kind {
                ListKind::Lh => {
                    b.extend_from_slice(&Key::new(self, c)?.name_ref().lh_hash().to_le_bytes())
                }
                ListKind::Lf => {
                    let mut hint = [0u8; 4];
                    for (i, u) in Key::new(self, c)?.name_ref().units().take(4).enumerate() {
                        hint[i] = if u <= 0xFF { u as u8 } else { 0 };
                    }
                    b.extend_from_slice(&hint);
                }
                _ => {}
            }
        }
        Ok(b)
    }

    /// Rewrites a key's subkey list with `children` (already sorted), reusing the old
    /// leaf cell when it is a single leaf large enough.
    fn set_children(&mut self, key: KeyOffset, children: &[CellOffset]) -> Result<()> {
        let (old_cells, old_kind) = self.list_cells(key)?;
        let kind = match old_kind {
            Some(ListKind::Ri) | None => {
                if self.minor >= 5 {
                    ListKind::Lh
                } else {
                    ListKind::Lf
                }
            }
            Some(k) => k,
        };
        let nkf = self.nk_file(key);
        if children.is_empty() {
            for c in old_cells {
                self.free_cell(c)?;
            }
            self.write_u32(nkf + nk::SUBKEY_LIST, u32::MAX);
            self.write_u32(nkf + nk::SUBKEY_COUNT, 0);
            return Ok(());
        }
        if children.len() <= MAX_LEAF {
            let bytes = self.leaf_bytes(kind, children)?;
            if old_cells.len() == 1 && self.cell_capacity(old_cells[0])? >= bytes.len() {
                let c = old_cells[0];
                let f = c.0 as usize + BASE_BLOCK_SIZE + 4;
                self.write_bytes(f, &bytes);
            } else {
                for c in old_cells {
                    self.free_cell(c)?;
                }
                let c = self.alloc_with(&bytes)?;
                self.write_u32(nkf + nk::SUBKEY_LIST, c.0);
            }
        } else {
            for c in old_cells {
                self.free_cell(c)?;
            }
            let nleaves = children.len().div_ceil(MAX_LEAF);
            let per = children.len().div_ceil(nleaves);
            let mut leaves = Vec::with_capacity(nleaves);
            for chunk in children.chunks(per) {
                let bytes = self.leaf_bytes(kind, chunk)?;
                leaves.push(self.alloc_with(&bytes)?);
            }
            let ri = self.leaf_bytes(ListKind::Ri, &leaves)?;
            let c = self.alloc_with(&ri)?;
            self.write_u32(nkf + nk::SUBKEY_LIST, c.0);
        }
        self.write_u32(nkf + nk::SUBKEY_COUNT, children.len() as u32);
        Ok(())
    }

    /// Leaves of an ri list: (ri cell, [(leaf cell, kind)]); None when not an ri.
    fn ri_layout(&self, key: KeyOffset) -> Result<Option<RiLayout>> {
        let k = Key::new(self, key)?;
        let lo = k.subkey_list_offset();
        if k.subkey_count() == 0 || lo.is_nil() {
            return Ok(None);
        }
        let (kind, entries) = parse_list(self, lo)?;
        if kind != ListKind::Ri {
            return Ok(None);
        }
        let mut leaves = Vec::new();
        for c in entries.chunks_exact(4) {
            let l = CellOffset(u32::from_le_bytes([c[0], c[1], c[2], c[3]]));
            let (lk, _) = parse_list(self, l)?;
            if lk == ListKind::Ri {
                return Err(HiveError::corrupt("ri", l, "ri list nested inside ri"));
            }
            leaves.push((l, lk));
        }
        if leaves.is_empty() {
            return Ok(None);
        }
        Ok(Some((lo, leaves)))
    }

    fn leaf_entries(&self, leaf: CellOffset) -> Result<Vec<CellOffset>> {
        let (kind, e) = parse_list(self, leaf)?;
        Ok(e.chunks_exact(kind.stride())
            .map(|c| CellOffset(u32::from_le_bytes([c[0], c[1], c[2], c[3]])))
            .collect())
    }

    /// Writes list bytes into `old` when they fit, else into a new cell (freeing `old`).
    fn rewrite_cell(&mut self, old: CellOffset, bytes: &[u8]) -> Result<CellOffset> {
        if self.cell_capacity(old)? >= bytes.len() {
            self.write_bytes(old.0 as usize + BASE_BLOCK_SIZE + 4, bytes);
            Ok(old)
        } else {
            let n = self.alloc_with(bytes)?;
            self.free_cell(old)?;
            Ok(n)
        }
    }

    /// Inserts `child` at position `pos` of the key's sorted subkey list. With an ri list
    /// only the leaf concerned is rewritten (split in two when it would exceed
    /// [`MAX_LEAF`]), so the edit touches few bytes.
    fn insert_child(&mut self, key: KeyOffset, pos: usize, child: CellOffset) -> Result<()> {
        let Some((ri, leaves)) = self.ri_layout(key)? else {
            let mut children = self.child_offsets(key)?;
            children.insert(pos.min(children.len()), child);
            return self.set_children(key, &children);
        };
        let mut start = 0usize;
        let mut j = leaves.len() - 1;
        let mut ents = Vec::new();
        for (i, &(l, _)) in leaves.iter().enumerate() {
            let e = self.leaf_entries(l)?;
            if pos <= start + e.len() || i == leaves.len() - 1 {
                j = i;
                ents = e;
                break;
            }
            start += e.len();
        }
        let (leaf, kind) = leaves[j];
        ents.insert(pos.saturating_sub(start).min(ents.len()), child);
        let mut new_leaves: Vec<CellOffset> = leaves.iter().map(|l| l.0).collect();
        if ents.len() <= MAX_LEAF {
            let bytes = self.leaf_bytes(kind, &ents)?;
            new_leaves[j] = self.rewrite_cell(leaf, &bytes)?;
        } else {
            let half = ents.len() / 2;
            let a = self.leaf_bytes(kind, &ents[..half])?;
            let b = self.leaf_bytes(kind, &ents[half..])?;
            new_leaves[j] = self.rewrite_cell(leaf, &a)?;
            let nb = self.alloc_with(&b)?;
            new_leaves.insert(j + 1, nb);
        }
        let changed = new_leaves.len() != leaves.len()
            || new_leaves.iter().zip(&leaves).any(|(a, b)| *a != b.0);
        if changed {
            let bytes = self.leaf_bytes(ListKind::Ri, &new_leaves)?;
            let nri = self.rewrite_cell(ri, &bytes)?;
            let nkf = self.nk_file(key);
            self.write_u32(nkf + nk::SUBKEY_LIST, nri.0);
        }
        let nkf = self.nk_file(key);
        let n = self.u32_at(nkf + nk::SUBKEY_COUNT);
        self.write_u32(nkf + nk::SUBKEY_COUNT, n + 1);
        Ok(())
    }

    /// Removes the entry at `pos` of the key's subkey list (ri: only that leaf changes;
    /// an emptied leaf is dropped from the ri).
    fn remove_child(&mut self, key: KeyOffset, pos: usize) -> Result<()> {
        let Some((ri, leaves)) = self.ri_layout(key)? else {
            let mut children = self.child_offsets(key)?;
            if pos < children.len() {
                children.remove(pos);
            }
            return self.set_children(key, &children);
        };
        let mut start = 0usize;
        for (j, &(leaf, kind)) in leaves.iter().enumerate() {
            let mut ents = self.leaf_entries(leaf)?;
            if pos < start + ents.len() {
                ents.remove(pos - start);
                let nkf = self.nk_file(key);
                let n = self.u32_at(nkf + nk::SUBKEY_COUNT).saturating_sub(1);
                if ents.is_empty() {
                    self.free_cell(leaf)?;
                    let rest: Vec<CellOffset> = leaves
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != j)
                        .map(|(_, l)| l.0)
                        .collect();
                    if rest.is_empty() {
                        self.free_cell(ri)?;
                        self.write_u32(nkf + nk::SUBKEY_LIST, u32::MAX);
                    } else {
                        let bytes = self.leaf_bytes(ListKind::Ri, &rest)?;
                        let nri = self.rewrite_cell(ri, &bytes)?;
                        self.write_u32(nkf + nk::SUBKEY_LIST, nri.0);
                    }
                } else {
                    let bytes = self.leaf_bytes(kind, &ents)?;
                    let nl = self.rewrite_cell(leaf, &bytes)?;
                    if nl != leaf {
                        self.write_u32(ri.0 as usize + BASE_BLOCK_SIZE + 4 + 4 + 4 * j, nl.0);
                    }
                }
                self.write_u32(nkf + nk::SUBKEY_COUNT, n);
                return Ok(());
            }
            start += ents.len();
        }
        Err(HiveError::corrupt(
            "subkey list",
            ri,
            format!("position {pos} outside the list"),
        ))
    }

    /// Position where a name goes in a sorted child list.
    fn sorted_position(&self, children: &[CellOffset], name: &NameRef<'_>) -> Result<usize> {
        // binary search (lists are sorted on disk)
        let (mut lo, mut hi) = (0usize, children.len());
        while lo < hi {
            let mid = (lo + hi) / 2;
            let k = Key::new(self, children[mid])?;
            if cmp_units(k.name_ref().units(), name.units()) == std::cmp::Ordering::Less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    }

    fn bump_max(&mut self, key: KeyOffset, field: usize, v: u32) {
        let f = self.nk_file(key) + field;
        let cur = self.u32_at(f);
        if field == nk::MAX_SUBKEY_NAME {
            if v > (cur & 0xFFFF) {
                self.write_u32(f, (cur & 0xFFFF_0000) | (v & 0xFFFF));
            }
        } else if v > cur {
            self.write_u32(f, v);
        }
    }

    fn sk_addref(&mut self, sk: CellOffset, delta: i32) -> Result<()> {
        Sk::new(self, sk)?;
        let rc = self.cell_u32(sk, 12);
        let n = if delta >= 0 {
            rc.saturating_add(delta as u32)
        } else {
            rc.saturating_sub(delta.unsigned_abs())
        };
        self.set_cell_u32(sk, 12, n);
        if n == 0 {
            let s = Sk::new(self, sk)?;
            let (next, prev) = (s.flink(), s.blink());
            if next != sk {
                Sk::new(self, next)?;
                Sk::new(self, prev)?;
                self.set_cell_u32(prev, 4, next.0);
                self.set_cell_u32(next, 8, prev.0);
            }
            self.free_cell(sk)?;
        }
        Ok(())
    }

    /// Creates a subkey (or returns the existing one with that name, case-insensitively).
    /// The new key inherits the parent's security cell.
    ///
    /// # Errors
    /// Read-only hive, invalid name, corruption.
    pub fn create_key(&mut self, parent: KeyOffset, name: &str) -> Result<KeyOffset> {
        self.check_writable()?;
        validate_key_name(name)?;
        let p = Key::new(self, parent)?;
        if let Some(k) = p.subkey(name)? {
            return Ok(k.offset());
        }
        let sk = p.security_offset();
        let (nb, comp) = encode_name(name);
        let mut cell = vec![0u8; NK_FIXED + nb.len()];
        cell[0..2].copy_from_slice(b"nk");
        cell[2..4].copy_from_slice(&(if comp { KEY_COMP_NAME } else { 0 }).to_le_bytes());
        cell[4..12].copy_from_slice(&filetime_now().to_le_bytes());
        cell[16..20].copy_from_slice(&parent.0.to_le_bytes());
        for f in [nk::SUBKEY_LIST, 32, nk::VALUE_LIST, nk::CLASS] {
            cell[f..f + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        }
        cell[44..48].copy_from_slice(&sk.0.to_le_bytes());
        cell[72..74].copy_from_slice(&(nb.len() as u16).to_le_bytes());
        cell[76..].copy_from_slice(&nb);
        let off = self.alloc_with(&cell)?;
        if !sk.is_nil() {
            self.sk_addref(sk, 1)?;
        }
        let children = self.child_offsets(parent)?;
        let pos = self.sorted_position(&children, &Key::new(self, off)?.name_ref())?;
        self.insert_child(parent, pos, off)?;
        self.bump_max(
            parent,
            nk::MAX_SUBKEY_NAME,
            2 * name.encode_utf16().count() as u32,
        );
        self.touch_key(parent);
        Ok(off)
    }

    /// Creates every missing key along a backslash-separated path from the root.
    ///
    /// # Errors
    /// As [`Hive::create_key`].
    pub fn create_path(&mut self, path: &str) -> Result<KeyOffset> {
        let mut k = self.root_offset();
        for comp in path.split('\\').filter(|c| !c.is_empty()) {
            k = self.create_key(k, comp)?;
        }
        Ok(k)
    }

    /// Frees everything a key owns (values, class, list cells, sk reference, nk),
    /// recursing into subkeys. Does not touch the parent.
    fn free_key_tree(&mut self, key: KeyOffset, depth: usize) -> Result<()> {
        if depth > limits::MAX_DEPTH {
            return Err(HiveError::Limit {
                what: "key depth over 512 (cycle?)",
                cell: key,
            });
        }
        for c in self.child_offsets(key)? {
            self.free_key_tree(c, depth + 1)?;
        }
        let (cells, _) = self.list_cells(key)?;
        for c in cells {
            self.free_cell(c)?;
        }
        let k = Key::new(self, key)?;
        let mut vcells = Vec::new();
        let vl = k.value_list_offset();
        for v in k.values()? {
            let v = v?;
            vcells.extend(v.data_cells()?);
            vcells.push(v.offset());
        }
        if k.value_count() > 0 && !vl.is_nil() {
            vcells.push(vl);
        }
        let class = CellOffset(k.field(nk::CLASS));
        if !class.is_nil() {
            vcells.push(class);
        }
        let sk = k.security_offset();
        for c in vcells {
            self.free_cell(c)?;
        }
        if !sk.is_nil() {
            self.sk_addref(sk, -1)?;
        }
        self.free_cell(key)
    }

    /// Deletes a key; with `recursive` also its whole subtree, otherwise a key with
    /// subkeys is refused. The root cannot be deleted.
    ///
    /// # Errors
    /// Read-only, root, has subkeys (non-recursive), corruption.
    pub fn delete_key(&mut self, key: KeyOffset, recursive: bool) -> Result<()> {
        self.check_writable()?;
        if key == self.root_offset() {
            return Err(HiveError::InvalidArgument {
                reason: "cannot delete the root key".into(),
            });
        }
        let k = Key::new(self, key)?;
        if k.subkey_count() > 0 && !recursive {
            return Err(HiveError::InvalidArgument {
                reason: format!("key {} has subkeys", k.name()),
            });
        }
        let parent = k.parent_offset();
        let children = self.child_offsets(parent)?;
        let Some(pos) = children.iter().position(|&c| c == key) else {
            return Err(HiveError::corrupt(
                "nk",
                key,
                "key is not in its parent's subkey list",
            ));
        };
        self.free_key_tree(key, 0)?;
        self.remove_child(parent, pos)?;
        self.touch_key(parent);
        Ok(())
    }

    /// Renames a key, keeping everything else; re-sorts the parent's list and recomputes
    /// hashes/hints. Changing only the case is allowed.
    ///
    /// # Errors
    /// Invalid name, a sibling already has that name, corruption.
    pub fn rename_key(&mut self, key: KeyOffset, new_name: &str) -> Result<KeyOffset> {
        self.check_writable()?;
        validate_key_name(new_name)?;
        let k = Key::new(self, key)?;
        let is_root = key == self.root_offset();
        let parent = k.parent_offset();
        if !is_root {
            if let Some(s) = Key::new(self, parent)?.subkey(new_name)? {
                if s.offset() != key {
                    return Err(HiveError::AlreadyExists {
                        name: new_name.to_string(),
                    });
                }
            }
        }
        let (nb, comp) = encode_name(new_name);
        let mut cell = k.raw()[..NK_FIXED].to_vec();
        let flags = (k.flags() & !KEY_COMP_NAME) | if comp { KEY_COMP_NAME } else { 0 };
        cell[2..4].copy_from_slice(&flags.to_le_bytes());
        cell[4..12].copy_from_slice(&filetime_now().to_le_bytes());
        cell[72..74].copy_from_slice(&(nb.len() as u16).to_le_bytes());
        cell.extend_from_slice(&nb);
        let new_off = if self.cell_capacity(key)? >= cell.len() {
            let f = self.nk_file(key);
            self.write_bytes(f, &cell);
            key
        } else {
            let children = self.child_offsets(key)?;
            for &c in &children {
                Key::new(self, c)?;
            }
            let n = self.alloc_with(&cell)?;
            self.free_cell(key)?;
            for c in children {
                self.set_cell_u32(c, nk::PARENT, n.0);
            }
            if is_root {
                self.write_u32(base_block::ROOT_OFFSET, n.0);
            }
            n
        };
        if !is_root {
            let old_pos = self
                .child_offsets(parent)?
                .iter()
                .position(|&c| c == key)
                .ok_or_else(|| {
                    HiveError::corrupt("nk", key, "key is not in its parent's subkey list")
                })?;
            self.remove_child(parent, old_pos)?;
            let children = self.child_offsets(parent)?;
            let pos = self.sorted_position(&children, &Key::new(self, new_off)?.name_ref())?;
            self.insert_child(parent, pos, new_off)?;
            self.bump_max(
                parent,
                nk::MAX_SUBKEY_NAME,
                2 * new_name.encode_utf16().count() as u32,
            );
            self.touch_key(parent);
        }
        Ok(new_off)
    }

    /// Stores value data; returns (size field, offset field).
    fn store_data(&mut self, data: &[u8]) -> Result<(u32, u32)> {
        if data.len() > limits::MAX_VALUE {
            return Err(HiveError::InvalidArgument {
                reason: "value data too large".into(),
            });
        }
        if data.len() <= 4 {
            let mut b = [0u8; 4];
            b[..data.len()].copy_from_slice(data);
            return Ok((data.len() as u32 | 0x8000_0000, u32::from_le_bytes(b)));
        }
        if data.len() <= BIG_DATA_SEGMENT || self.minor < 4 {
            let c = self.alloc_with(data)?;
            return Ok((data.len() as u32, c.0));
        }
        let mut segs = Vec::new();
        for chunk in data.chunks(BIG_DATA_SEGMENT) {
            let c = self.alloc_cell(BIG_DATA_SEGMENT)?;
            self.write_bytes(c.0 as usize + BASE_BLOCK_SIZE + 4, chunk);
            segs.push(c);
        }
        let list: Vec<u8> = segs.iter().flat_map(|c| c.0.to_le_bytes()).collect();
        let l = self.alloc_with(&list)?;
        let mut db = Vec::with_capacity(8);
        db.extend_from_slice(b"db");
        db.extend_from_slice(&(segs.len() as u16).to_le_bytes());
        db.extend_from_slice(&l.0.to_le_bytes());
        let d = self.alloc_with(&db)?;
        Ok((data.len() as u32, d.0))
    }

    fn find_value(&self, key: KeyOffset, name: &str) -> Result<Option<(usize, CellOffset)>> {
        let k = Key::new(self, key)?;
        for (i, v) in k.values()?.enumerate() {
            let v = v?;
            if v.name_ref().eq_ignore_case(name) {
                return Ok(Some((i, v.offset())));
            }
        }
        Ok(None)
    }

    /// Sets (creates or replaces) a value. Data of up to 4 bytes is stored inline, up to
    /// 16344 bytes in one cell, larger as "db" big data (format 1.4+; one cell in 1.3).
    ///
    /// # Errors
    /// Read-only, name over 16383 characters, corruption.
    pub fn set_value(
        &mut self,
        key: KeyOffset,
        name: &str,
        data_type: u32,
        data: &[u8],
    ) -> Result<()> {
        self.check_writable()?;
        let nunits = name.encode_utf16().count();
        if nunits > 16383 {
            return Err(HiveError::InvalidArgument {
                reason: "value name over 16383 characters".into(),
            });
        }
        Key::new(self, key)?;
        let existing = self.find_value(key, name)?;
        let (size, doff) = self.store_data(data)?;
        if let Some((_, voff)) = existing {
            let old = Value::new(self, voff)?.data_cells()?;
            for c in old {
                self.free_cell(c)?;
            }
            self.set_cell_u32(voff, 4, size);
            self.set_cell_u32(voff, 8, doff);
            self.set_cell_u32(voff, 12, data_type);
        } else {
            let (nb, comp) = encode_name(name);
            let mut vk = vec![0u8; VK_FIXED + nb.len()];
            vk[0..2].copy_from_slice(b"vk");
            vk[2..4].copy_from_slice(&(nb.len() as u16).to_le_bytes());
            vk[4..8].copy_from_slice(&size.to_le_bytes());
            vk[8..12].copy_from_slice(&doff.to_le_bytes());
            vk[12..16].copy_from_slice(&data_type.to_le_bytes());
            vk[16..18].copy_from_slice(
                &(if comp && !nb.is_empty() {
                    VALUE_COMP_NAME
                } else {
                    0
                })
                .to_le_bytes(),
            );
            vk[20..].copy_from_slice(&nb);
            let voff = self.alloc_with(&vk)?;
            let k = Key::new(self, key)?;
            let n = k.value_count() as usize;
            let lo = k.value_list_offset();
            let nkf = self.nk_file(key);
            if n > 0 && self.cell_capacity(lo)? >= (n + 1) * 4 {
                self.write_u32(lo.0 as usize + BASE_BLOCK_SIZE + 4 + n * 4, voff.0);
            } else {
                let mut list: Vec<u8> = if n > 0 {
                    self.cell(lo, "value list")?[..n * 4].to_vec()
                } else {
                    Vec::new()
                };
                list.extend_from_slice(&voff.0.to_le_bytes());
                let nl = self.alloc_with(&list)?;
                if n > 0 {
                    self.free_cell(lo)?;
                }
                self.write_u32(nkf + nk::VALUE_LIST, nl.0);
            }
            self.write_u32(nkf + nk::VALUE_COUNT, (n + 1) as u32);
            self.bump_max(key, nk::MAX_VALUE_NAME, 2 * nunits as u32);
        }
        self.bump_max(key, nk::MAX_VALUE_DATA, data.len() as u32);
        self.touch_key(key);
        Ok(())
    }

    /// Deletes a value; returns whether it existed.
    ///
    /// # Errors
    /// Read-only, corruption.
    pub fn delete_value(&mut self, key: KeyOffset, name: &str) -> Result<bool> {
        self.check_writable()?;
        let Some((idx, voff)) = self.find_value(key, name)? else {
            return Ok(false);
        };
        let k = Key::new(self, key)?;
        let n = k.value_count() as usize;
        let lo = k.value_list_offset();
        let mut list: Vec<u8> = self.cell(lo, "value list")?[..n * 4].to_vec();
        list.drain(idx * 4..idx * 4 + 4);
        let cells = Value::new(self, voff)?.data_cells()?;
        for c in cells {
            self.free_cell(c)?;
        }
        self.free_cell(voff)?;
        let nkf = self.nk_file(key);
        if n == 1 {
            self.free_cell(lo)?;
            self.write_u32(nkf + nk::VALUE_LIST, u32::MAX);
        } else {
            let f = lo.0 as usize + BASE_BLOCK_SIZE + 4;
            list.extend_from_slice(&[0, 0, 0, 0]);
            self.write_bytes(f, &list);
        }
        self.write_u32(nkf + nk::VALUE_COUNT, (n - 1) as u32);
        self.touch_key(key);
        Ok(true)
    }

    /// Sets or removes (None) a key's class name.
    ///
    /// # Errors
    /// Read-only, class over 65535 bytes, corruption.
    pub fn set_class_name(&mut self, key: KeyOffset, class: Option<&str>) -> Result<()> {
        self.check_writable()?;
        let k = Key::new(self, key)?;
        let old = CellOffset(k.field(nk::CLASS));
        let parent = k.parent_offset();
        let is_root = key == self.root_offset();
        let nkf = self.nk_file(key);
        let (off, len) = match class {
            Some(c) => {
                let b: Vec<u8> = c.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
                if b.len() > 0xFFFF {
                    return Err(HiveError::InvalidArgument {
                        reason: "class name too long".into(),
                    });
                }
                (self.alloc_with(&b)?.0, b.len())
            }
            None => (u32::MAX, 0),
        };
        if !old.is_nil() && self.cell_span(old, "class").is_ok() {
            self.free_cell(old)?;
        }
        self.write_u32(nkf + nk::CLASS, off);
        self.write_u16(nkf + nk::CLASS_LEN, len as u16);
        if !is_root && Key::new(self, parent).is_ok() {
            self.bump_max(parent, nk::MAX_CLASS, len as u32);
        }
        self.touch_key(key);
        Ok(())
    }

    /// The security descriptor bytes of a key (copy).
    ///
    /// # Errors
    /// Invalid sk cell.
    pub fn security_of(&self, key: KeyOffset) -> Result<Vec<u8>> {
        Ok(Key::new(self, key)?.security()?.descriptor().to_vec())
    }

    /// Replaces a key's security descriptor. Identical descriptors share one sk cell;
    /// refcounts and the circular flink/blink list are maintained; an sk whose refcount
    /// drops to 0 is unlinked and freed.
    ///
    /// # Errors
    /// Read-only, descriptor fails [`validate_descriptor`], corruption.
    pub fn set_security(&mut self, key: KeyOffset, descriptor: &[u8]) -> Result<()> {
        self.check_writable()?;
        validate_descriptor(descriptor)?;
        let k = Key::new(self, key)?;
        let old = k.security_offset();
        let anchor = if !old.is_nil() && Sk::new(self, old).is_ok() {
            old
        } else {
            self.root()?.security_offset()
        };
        if let Ok(s) = Sk::new(self, old) {
            if s.descriptor() == descriptor {
                return Ok(());
            }
        }
        // look for an identical descriptor along the list
        let mut found = None;
        if Sk::new(self, anchor).is_ok() {
            let mut cur = anchor;
            for _ in 0..limits::MAX_SK_CHAIN {
                let s = Sk::new(self, cur)?;
                if s.descriptor() == descriptor {
                    found = Some(cur);
                    break;
                }
                cur = s.flink();
                if cur == anchor {
                    break;
                }
            }
        }
        let new = match found {
            Some(s) => {
                self.sk_addref(s, 1)?;
                s
            }
            None => {
                let mut cell = vec![0u8; 20];
                cell[0..2].copy_from_slice(b"sk");
                cell[12..16].copy_from_slice(&1u32.to_le_bytes());
                cell[16..20].copy_from_slice(&(descriptor.len() as u32).to_le_bytes());
                cell.extend_from_slice(descriptor);
                let n = self.alloc_with(&cell)?;
                if let Ok(a) = Sk::new(self, anchor) {
                    let next = a.flink();
                    if let Err(e) = Sk::new(self, next) {
                        self.free_cell(n)?;
                        return Err(e);
                    }
                    self.set_cell_u32(n, 4, next.0);
                    self.set_cell_u32(n, 8, anchor.0);
                    self.set_cell_u32(anchor, 4, n.0);
                    self.set_cell_u32(next, 8, n.0);
                } else {
                    self.set_cell_u32(n, 4, n.0);
                    self.set_cell_u32(n, 8, n.0);
                }
                n
            }
        };
        let nkf = self.nk_file(key);
        self.write_u32(nkf + nk::SECURITY, new.0);
        if !old.is_nil() && Sk::new(self, old).is_ok() {
            self.sk_addref(old, -1)?;
        }
        Ok(())
    }

    /// Rewrites every sk cell's descriptor in place, walking the circular sk list from the
    /// root key's sk. `f(cell, descriptor)` returns a replacement of the **same length** (or
    /// `None` to keep it); each replacement must pass [`validate_descriptor`]. Returns how many
    /// sk cells changed.
    ///
    /// Refcounts, flink/blink and every key's sk pointer are unchanged. Two sk cells that become
    /// byte-identical after the rewrite stay separate cells: the format does not require
    /// uniqueness (Windows merges only when it assigns a descriptor), and hivex, regipy and
    /// this crate's checker accept duplicates. All-or-nothing: every replacement is checked
    /// before anything is written.
    ///
    /// # Errors
    /// Read-only, a length change, a replacement that fails validation, a corrupt sk list.
    pub fn rewrite_security(
        &mut self,
        mut f: impl FnMut(CellOffset, &[u8]) -> Option<Vec<u8>>,
    ) -> Result<usize> {
        self.check_writable()?;
        let anchor = self.root()?.security_offset();
        let mut planned: Vec<(usize, Vec<u8>)> = Vec::new();
        if !anchor.is_nil() {
            let mut cur = anchor;
            for _ in 0..limits::MAX_SK_CHAIN {
                let s = Sk::new(self, cur)?;
                let old = s.descriptor();
                if let Some(new) = f(cur, old) {
                    if new.len() != old.len() {
                        return Err(HiveError::InvalidArgument {
                            reason: format!(
                                "sk cell {:#x}: descriptor would change length ({} -> {})",
                                cur.0,
                                old.len(),
                                new.len()
                            ),
                        });
                    }
                    if new != old {
                        if let Err(e) = validate_descriptor(&new) {
                            let reason = match e {
                                HiveError::InvalidArgument { reason } => reason,
                                other => other.to_string(),
                            };
                            // A stored descriptor that was already invalid is corruption of
                            // this cell; otherwise the caller's replacement is at fault.
                            return Err(if validate_descriptor(old).is_err() {
                                HiveError::Corrupt {
                                    structure: "sk",
                                    cell: cur,
                                    reason,
                                }
                            } else {
                                HiveError::InvalidArgument {
                                    reason: format!("sk cell {:#x}: replacement {reason}", cur.0),
                                }
                            });
                        }
                        planned.push((cur.0 as usize + BASE_BLOCK_SIZE + 4 + 20, new));
                    }
                }
                cur = s.flink();
                if cur == anchor {
                    break;
                }
            }
        }
        let n = planned.len();
        for (file, bytes) in planned {
            self.write_bytes(file, &bytes);
        }
        Ok(n)
    }

    /// Commits the edits into the buffer: seq1 = seq2 = max(seq1, seq2, any log sequence
    /// seen by [`Hive::recover`]) + 1, hive-bins size, last-written time, checksum.
    /// With no edit since open this does nothing (byte-identical output).
    ///
    /// Transaction logs: after a commit the primary is clean (seq1 == seq2, valid
    /// checksum), so Windows ignores the logs; the sequence number is also pushed above
    /// every log entry seen, and callers must truncate `.LOG1`/`.LOG2` to 0 bytes
    /// (see FORMAT-NOTES.md) so that no stale entry is replayed after a later crash.
    ///
    /// # Errors
    /// Never fails today; kept fallible for future checks.
    pub fn commit(&mut self) -> Result<()> {
        if !self.modified {
            return Ok(());
        }
        let bb = self.base_block();
        let seq = bb.seq1.max(bb.seq2).max(self.seq_floor).wrapping_add(1);
        let mut head = self.data[..512].to_vec();
        head[4..8].copy_from_slice(&seq.to_le_bytes());
        head[8..12].copy_from_slice(&seq.to_le_bytes());
        head[12..20].copy_from_slice(&filetime_now().to_le_bytes());
        head[40..44].copy_from_slice(&((self.hbins_end - BASE_BLOCK_SIZE) as u32).to_le_bytes());
        let c = base_block::checksum(&head);
        head[508..512].copy_from_slice(&c.to_le_bytes());
        self.write_bytes(0, &head);
        if self.data.len() > self.hbins_end {
            // hivex and Windows accept slack, but keep the file exactly the hbins size
            // only when we appended bins (slack was overwritten by them).
        }
        self.modified = false;
        Ok(())
    }
}

impl Hive {
    /// Creates an empty, writable hive (format 1.5: lh lists and big data) whose root key
    /// is `root_name` with security descriptor `descriptor` (self-relative).
    ///
    /// # Errors
    /// Invalid name or descriptor.
    pub fn new_empty(root_name: &str, descriptor: &[u8]) -> Result<Hive> {
        validate_key_name(root_name)?;
        validate_descriptor(descriptor)?;
        let mut data = vec![0u8; BASE_BLOCK_SIZE + 4096];
        data[0..4].copy_from_slice(b"regf");
        data[4..8].copy_from_slice(&1u32.to_le_bytes());
        data[8..12].copy_from_slice(&1u32.to_le_bytes());
        data[12..20].copy_from_slice(&filetime_now().to_le_bytes());
        data[20..24].copy_from_slice(&1u32.to_le_bytes());
        data[24..28].copy_from_slice(&5u32.to_le_bytes());
        data[32..36].copy_from_slice(&1u32.to_le_bytes());
        data[40..44].copy_from_slice(&4096u32.to_le_bytes());
        data[44..48].copy_from_slice(&1u32.to_le_bytes());
        let c = base_block::checksum(&data[..512]);
        data[508..512].copy_from_slice(&c.to_le_bytes());
        let b = BASE_BLOCK_SIZE;
        data[b..b + 4].copy_from_slice(b"hbin");
        data[b + 8..b + 12].copy_from_slice(&4096u32.to_le_bytes());
        data[b + 32..b + 36].copy_from_slice(&(4096u32 - 32).to_le_bytes());
        let mut h = Hive::from_bytes(data)?;
        h.make_writable()?;
        let (nb, comp) = encode_name(root_name);
        let mut cell = vec![0u8; NK_FIXED + nb.len()];
        cell[0..2].copy_from_slice(b"nk");
        let flags = 0x0004 | 0x0008 | if comp { KEY_COMP_NAME } else { 0 };
        cell[2..4].copy_from_slice(&flags.to_le_bytes());
        cell[4..12].copy_from_slice(&filetime_now().to_le_bytes());
        for f in [nk::PARENT, nk::SUBKEY_LIST, 32, nk::VALUE_LIST, nk::CLASS] {
            cell[f..f + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        }
        cell[72..74].copy_from_slice(&(nb.len() as u16).to_le_bytes());
        cell[76..].copy_from_slice(&nb);
        // the root nk comes first in the first hbin, as in Windows-made hives (regipy
        // even assumes it)
        let root = h.alloc_with(&cell)?;
        h.write_u32(base_block::ROOT_OFFSET, root.0);
        let mut sk = vec![0u8; 20];
        sk[0..2].copy_from_slice(b"sk");
        sk[12..16].copy_from_slice(&1u32.to_le_bytes());
        sk[16..20].copy_from_slice(&(descriptor.len() as u32).to_le_bytes());
        sk.extend_from_slice(descriptor);
        let sko = h.alloc_with(&sk)?;
        h.set_cell_u32(sko, 4, sko.0);
        h.set_cell_u32(sko, 8, sko.0);
        h.set_cell_u32(root, nk::SECURITY, sko.0);
        h.commit()?;
        Ok(h)
    }
}

#[cfg(test)]
mod rewrite_security_tests {
    use super::*;

    /// O:BA G:BA D:(A;;GA;;;<sid>) with a 5-sub-authority SID of domain 1-2-3 and `rid`.
    fn sd(rid: u32) -> Vec<u8> {
        let mut sid = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for v in [21u32, 1, 2, 3, rid] {
            sid.extend_from_slice(&v.to_le_bytes());
        }
        let ba: [u8; 16] = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 32, 2, 0, 0];
        let ace_len = 8 + sid.len();
        let acl_len = 8 + ace_len;
        let mut d = vec![1u8, 0, 0x04, 0x80];
        let owner = 20u32;
        let group = owner + 16;
        let dacl = group + 16;
        d.extend_from_slice(&owner.to_le_bytes());
        d.extend_from_slice(&group.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&dacl.to_le_bytes());
        d.extend_from_slice(&ba);
        d.extend_from_slice(&ba);
        d.extend_from_slice(&[2, 0]);
        d.extend_from_slice(&(acl_len as u16).to_le_bytes());
        d.extend_from_slice(&[1, 0, 0, 0]);
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(&(ace_len as u16).to_le_bytes());
        d.extend_from_slice(&0x1000_0000u32.to_le_bytes());
        d.extend_from_slice(&sid);
        d
    }

    #[test]
    fn rewrites_every_sk_in_place_and_keeps_refcounts() {
        let mut h = Hive::new_empty("ROOT", &sd(500)).unwrap();
        let root = h.root_offset();
        let a = h.create_key(root, "a").unwrap();
        let b = h.create_key(root, "b").unwrap();
        let c = h.create_key(root, "c").unwrap();
        h.set_security(a, &sd(1000)).unwrap();
        h.set_security(b, &sd(1000)).unwrap();
        h.set_security(c, &sd(1001)).unwrap();
        let refs = |h: &Hive, k| Key::new(h, k).unwrap().security().unwrap().refcount();
        let before: Vec<u32> = [root, a, c].iter().map(|&k| refs(&h, k)).collect();
        let len = h.as_bytes().len();
        // Replace domain 1-2-3 by 7-8-9 (same length).
        let n = h
            .rewrite_security(|_, d| {
                let mut v = d.to_vec();
                let old: Vec<u8> = [1u32, 2, 3].iter().flat_map(|x| x.to_le_bytes()).collect();
                let new: Vec<u8> = [7u32, 8, 9].iter().flat_map(|x| x.to_le_bytes()).collect();
                let p = v.windows(12).position(|w| w == old.as_slice())?;
                v[p..p + 12].copy_from_slice(&new);
                Some(v)
            })
            .unwrap();
        assert_eq!(n, 3, "three distinct sk cells");
        assert_eq!(h.as_bytes().len(), len, "nothing allocated");
        let mut want = sd(1000);
        let p = want.len() - 16;
        want[p..p + 12].copy_from_slice(
            &[7u32, 8, 9]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>(),
        );
        assert_eq!(h.security_of(a).unwrap(), want);
        assert_eq!(h.security_of(b).unwrap(), want);
        let after: Vec<u32> = [root, a, c].iter().map(|&k| refs(&h, k)).collect();
        assert_eq!(before, after);
        // A length change is refused and writes nothing.
        let snapshot = h.as_bytes().to_vec();
        assert!(h
            .rewrite_security(|_, d| Some(d[..d.len() - 4].to_vec()))
            .is_err());
        assert_eq!(h.as_bytes(), snapshot.as_slice());
        h.commit().unwrap();
        let reopened = Hive::from_bytes(h.to_bytes()).unwrap();
        assert!(crate::check(&reopened)
            .iter()
            .all(|p| p.severity != crate::Severity::Error));
    }
}
