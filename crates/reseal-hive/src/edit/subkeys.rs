//! Subkey lists: lf/lh/li leaves and ri indexes, kept sorted by name as Windows expects;
//! leaves split into an ri index beyond [`super::MAX_LEAF`] entries.

use zerocopy::little_endian::U32;
use zerocopy::IntoBytes;

use super::MAX_LEAF;
use crate::error::{HiveError, Result};
use crate::hive::{CellOffset, Hive, KeyOffset};
use crate::key_node::{parse_list, Key, ListKind};
use crate::layout::lists::{
    LfElement, LhElement, LiElement, ListHeader, RiElement, HEADER_SIZE as LIST_HEADER_SIZE,
};
use crate::name::{cmp_units, NameRef};

/// An ri list and its leaves (cell, kind).
type RiLayout = (CellOffset, Vec<(CellOffset, ListKind)>);

impl Hive {
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
    pub(super) fn list_cells(&self, key: KeyOffset) -> Result<(Vec<CellOffset>, Option<ListKind>)> {
        let k = Key::new(self, key)?;
        let lo = k.subkey_list_offset();
        if k.subkey_count() == 0 || lo.is_nil() {
            return Ok((Vec::new(), None));
        }
        let entries = parse_list(self, lo)?;
        if entries.kind() != ListKind::Ri {
            return Ok((vec![lo], Some(entries.kind())));
        }
        let mut cells = vec![lo];
        let mut leaf_kind = None;
        for l in entries.offsets() {
            leaf_kind.get_or_insert(parse_list(self, l)?.kind());
            cells.push(l);
        }
        Ok((cells, leaf_kind))
    }

    pub(super) fn leaf_bytes(&self, kind: ListKind, children: &[CellOffset]) -> Result<Vec<u8>> {
        let mut b = Vec::with_capacity(LIST_HEADER_SIZE + children.len() * kind.stride());
        b.extend_from_slice(ListHeader::new(kind.signature(), children.len() as u16).as_bytes());
        for &c in children {
            let offset = U32::new(c.0);
            match kind {
                ListKind::Li => b.extend_from_slice(
                    LiElement {
                        key_node_offset: offset,
                    }
                    .as_bytes(),
                ),
                ListKind::Ri => b.extend_from_slice(
                    RiElement {
                        subkeys_list_offset: offset,
                    }
                    .as_bytes(),
                ),
                ListKind::Lh => b.extend_from_slice(
                    LhElement {
                        key_node_offset: offset,
                        name_hash: U32::new(Key::new(self, c)?.name_ref().lh_hash()),
                    }
                    .as_bytes(),
                ),
                ListKind::Lf => {
                    let mut name_hint = [0u8; 4];
                    for (i, u) in Key::new(self, c)?.name_ref().units().take(4).enumerate() {
                        name_hint[i] = if u <= 0xFF { u as u8 } else { 0 };
                    }
                    b.extend_from_slice(
                        LfElement {
                            key_node_offset: offset,
                            name_hint,
                        }
                        .as_bytes(),
                    );
                }
            }
        }
        Ok(b)
    }

    /// Rewrites a key's subkey list with `children` (already sorted), reusing the old
    /// leaf cell when it is a single leaf large enough.
    pub(super) fn set_children(&mut self, key: KeyOffset, children: &[CellOffset]) -> Result<()> {
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
        if children.is_empty() {
            for c in old_cells {
                self.free_cell(c)?;
            }
            return self.update_key(key, |h| {
                h.subkeys_list_offset = U32::new(u32::MAX);
                h.number_of_subkeys = U32::new(0);
            });
        }
        if children.len() <= MAX_LEAF {
            let bytes = self.leaf_bytes(kind, children)?;
            if old_cells.len() == 1 && self.cell_capacity(old_cells[0])? >= bytes.len() {
                self.write_cell_data(old_cells[0], "subkey list", 0, &bytes)?;
            } else {
                for c in old_cells {
                    self.free_cell(c)?;
                }
                let c = self.alloc_with(&bytes)?;
                self.update_key(key, |h| h.subkeys_list_offset = U32::new(c.0))?;
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
            self.update_key(key, |h| h.subkeys_list_offset = U32::new(c.0))?;
        }
        self.update_key(key, |h| {
            h.number_of_subkeys = U32::new(children.len() as u32)
        })
    }

    /// Leaves of an ri list: (ri cell, [(leaf cell, kind)]); None when not an ri.
    pub(super) fn ri_layout(&self, key: KeyOffset) -> Result<Option<RiLayout>> {
        let k = Key::new(self, key)?;
        let lo = k.subkey_list_offset();
        if k.subkey_count() == 0 || lo.is_nil() {
            return Ok(None);
        }
        let entries = parse_list(self, lo)?;
        if entries.kind() != ListKind::Ri {
            return Ok(None);
        }
        let mut leaves = Vec::new();
        for l in entries.offsets() {
            let lk = parse_list(self, l)?.kind();
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

    pub(super) fn leaf_entries(&self, leaf: CellOffset) -> Result<Vec<CellOffset>> {
        Ok(parse_list(self, leaf)?.offsets().collect())
    }

    /// Inserts `child` at position `pos` of the key's sorted subkey list. With an ri list
    /// only the leaf concerned is rewritten (split in two when it would exceed
    /// [`MAX_LEAF`]), so the edit touches few bytes.
    pub(super) fn insert_child(
        &mut self,
        key: KeyOffset,
        pos: usize,
        child: CellOffset,
    ) -> Result<()> {
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
            self.update_key(key, |h| h.subkeys_list_offset = U32::new(nri.0))?;
        }
        self.update_key(key, |h| {
            h.number_of_subkeys = U32::new(h.number_of_subkeys.get().wrapping_add(1))
        })
    }

    /// Removes the entry at `pos` of the key's subkey list (ri: only that leaf changes;
    /// an emptied leaf is dropped from the ri).
    pub(super) fn remove_child(&mut self, key: KeyOffset, pos: usize) -> Result<()> {
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
                if ents.is_empty() {
                    self.free_cell(leaf)?;
                    let rest: Vec<CellOffset> = leaves
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| *i != j)
                        .map(|(_, l)| l.0)
                        .collect();
                    let list = if rest.is_empty() {
                        self.free_cell(ri)?;
                        CellOffset::NIL
                    } else {
                        let bytes = self.leaf_bytes(ListKind::Ri, &rest)?;
                        self.rewrite_cell(ri, &bytes)?
                    };
                    self.update_key(key, |h| h.subkeys_list_offset = U32::new(list.0))?;
                } else {
                    let bytes = self.leaf_bytes(kind, &ents)?;
                    let nl = self.rewrite_cell(leaf, &bytes)?;
                    if nl != leaf {
                        let element = RiElement {
                            subkeys_list_offset: U32::new(nl.0),
                        };
                        let at = LIST_HEADER_SIZE + j * core::mem::size_of::<RiElement>();
                        self.write_cell_data(ri, "ri", at, element.as_bytes())?;
                    }
                }
                return self.update_key(key, |h| {
                    h.number_of_subkeys = U32::new(h.number_of_subkeys.get().saturating_sub(1))
                });
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
    pub(super) fn sorted_position(
        &self,
        children: &[CellOffset],
        name: &NameRef<'_>,
    ) -> Result<usize> {
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
}
