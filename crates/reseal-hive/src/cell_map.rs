//! What every byte of a hive file is: the base block, bin headers, free cells, and for each
//! allocated cell the structure that owns it (key node, value, data, class name, descriptor,
//! list, big-data segment) with the used length of the cell — the bytes after it are slack.
//!
//! One walk of the key tree from the root names the owner of every reachable cell; allocated
//! cells nothing reaches are "unreferenced". [`CellMap::locate`] answers for a file offset.
//! Used by `reseal audit` to say where a byte pattern lives, and by scrubbing to know what may
//! be zeroed.

use std::collections::{HashMap, HashSet};

use crate::base_block::{rd_u32, BASE_BLOCK_SIZE};
use crate::hive::{CellOffset, Hive};
use crate::Result;

/// Which part of a hive a byte belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Region {
    /// The 4 KiB base block.
    BaseBlock,
    /// A bin header (`hbin`, 32 bytes).
    BinHeader,
    /// A free cell (payload after its size field).
    FreeCell,
    /// After the last bin (file tail).
    Tail,
    /// Inside an allocated cell, within the bytes its owner uses.
    Used(Owner),
    /// Inside an allocated cell, after the bytes its owner uses.
    Slack(Owner),
}

/// The structure an allocated cell belongs to, with the key it hangs off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// A key node; `name` says whether the byte is in the key's name.
    KeyNode {
        /// Key path from the root key (`\`-separated, without the root's name).
        key: String,
        /// In the name part of the node.
        name: bool,
    },
    /// A value node; `name` says whether the byte is in the value's name.
    ValueNode {
        /// Key path.
        key: String,
        /// Value name.
        value: String,
        /// In the name part of the node.
        name: bool,
    },
    /// A value's data (a single data cell or one big-data segment).
    ValueData {
        /// Key path.
        key: String,
        /// Value name.
        value: String,
        /// Offset of the cell's first used byte within the value's data.
        data_offset: u64,
    },
    /// A key's class name.
    ClassName {
        /// Key path.
        key: String,
    },
    /// A security cell (`sk`) and its descriptor.
    Descriptor,
    /// A subkey list, value list, big-data header or segment list.
    List,
    /// An allocated cell no structure reachable from the root points to.
    Unreferenced,
}

#[derive(Debug, Clone)]
struct CellInfo {
    /// File offset of the size field.
    start: usize,
    /// Total size, size field included.
    size: usize,
    allocated: bool,
}

/// The map of one hive file (see the module docs).
#[derive(Debug)]
pub struct CellMap {
    len: usize,
    hbins_end: usize,
    bins: Vec<(usize, usize)>,
    cells: Vec<CellInfo>,
    owners: HashMap<usize, (Owner, usize)>,
}

const NK_NAME: usize = 0x4C;
const VK_NAME: usize = 0x18;
const BIG_DATA_SEGMENT: usize = 16344;

impl CellMap {
    /// Map `hive`. Malformed structures end the walk of their branch (their cells then show as
    /// unreferenced) rather than failing the map: the map must describe hostile hives too.
    ///
    /// # Errors
    /// Only when the root key cannot be read.
    pub fn new(hive: &Hive) -> Result<CellMap> {
        let data = hive.as_bytes();
        let hbins_end = hive.hbins_end().min(data.len());
        let mut bins = Vec::new();
        let mut cells = Vec::new();
        let mut at = BASE_BLOCK_SIZE;
        while at + 32 <= hbins_end {
            if &data[at..at + 4] != b"hbin" {
                break;
            }
            let size = rd_u32(data, at + 8).unwrap_or(0) as usize;
            if size < 4096 || size % 4096 != 0 || at + size > hbins_end {
                break;
            }
            bins.push((at, size));
            let mut c = at + 32;
            while c + 4 <= at + size {
                let raw = rd_u32(data, c).unwrap_or(0) as i32;
                let csize = raw.unsigned_abs() as usize;
                if csize < 8 || c + csize > at + size {
                    break;
                }
                cells.push(CellInfo {
                    start: c,
                    size: csize,
                    allocated: raw < 0,
                });
                c += csize;
            }
            at += size;
        }
        let mut m = CellMap {
            len: data.len(),
            hbins_end,
            bins,
            cells,
            owners: HashMap::new(),
        };
        m.walk(hive)?;
        Ok(m)
    }

    fn own(&mut self, off: CellOffset, owner: Owner, used: usize) {
        if off.is_nil() {
            return;
        }
        let start = off.0 as usize + BASE_BLOCK_SIZE;
        self.owners.entry(start).or_insert((owner, used));
    }

    fn walk(&mut self, hive: &Hive) -> Result<()> {
        let root = hive.root()?;
        let mut seen = HashSet::new();
        let mut queue = vec![(root.offset(), String::new())];
        seen.insert(root.offset());
        while let Some((off, path)) = queue.pop() {
            let Ok(k) = hive.key(off) else { continue };
            let raw = k.raw();
            let name_len = usize::from(u16::from_le_bytes([
                raw.get(0x48).copied().unwrap_or(0),
                raw.get(0x49).copied().unwrap_or(0),
            ]));
            self.own(
                off,
                Owner::KeyNode {
                    key: path.clone(),
                    name: false,
                },
                4 + NK_NAME + name_len,
            );
            // Class name.
            let class_off = CellOffset(rd_u32(raw, 0x30).unwrap_or(u32::MAX));
            let class_len = usize::from(u16::from_le_bytes([
                raw.get(0x4A).copied().unwrap_or(0),
                raw.get(0x4B).copied().unwrap_or(0),
            ]));
            if !class_off.is_nil() && class_len > 0 {
                self.own(
                    class_off,
                    Owner::ClassName { key: path.clone() },
                    4 + class_len,
                );
            }
            // Security.
            let sk = k.security_offset();
            if !sk.is_nil() {
                if let Ok(cell) = hive.cell(sk, "sk") {
                    let sd_len = rd_u32(cell, 0x10).unwrap_or(0) as usize;
                    self.own(sk, Owner::Descriptor, 4 + 0x14 + sd_len);
                }
            }
            // Subkey lists (and ri's sub-lists).
            let sl = k.subkey_list_offset();
            self.own_list(hive, sl, 0);
            // Values.
            let vl = k.value_list_offset();
            if !vl.is_nil() {
                self.own(vl, Owner::List, 4 + 4 * k.value_count() as usize);
            }
            if let Ok(values) = k.values() {
                for v in values.flatten() {
                    let vname = v.name();
                    let vk = hive.cell(v.offset(), "vk").unwrap_or(&[]);
                    let vname_len = usize::from(u16::from_le_bytes([
                        vk.get(2).copied().unwrap_or(0),
                        vk.get(3).copied().unwrap_or(0),
                    ]));
                    self.own(
                        v.offset(),
                        Owner::ValueNode {
                            key: path.clone(),
                            value: vname.clone(),
                            name: false,
                        },
                        4 + VK_NAME + vname_len,
                    );
                    if v.is_inline() || v.data_len() == 0 {
                        continue;
                    }
                    let doff = CellOffset(v.raw_data_offset());
                    let len = v.data_len();
                    let Ok(cell) = hive.cell(doff, "value data") else {
                        continue;
                    };
                    if cell.len() >= 8 && &cell[0..2] == b"db" && len > BIG_DATA_SEGMENT {
                        self.own(doff, Owner::List, 4 + 8);
                        let n = usize::from(u16::from_le_bytes([cell[2], cell[3]]));
                        let list = CellOffset(rd_u32(cell, 4).unwrap_or(u32::MAX));
                        self.own(list, Owner::List, 4 + 4 * n);
                        let Ok(segs) = hive.cell(list, "big data list") else {
                            continue;
                        };
                        let mut done = 0usize;
                        for i in 0..n {
                            let s = CellOffset(rd_u32(segs, 4 * i).unwrap_or(u32::MAX));
                            let take = (len - done).min(BIG_DATA_SEGMENT);
                            self.own(
                                s,
                                Owner::ValueData {
                                    key: path.clone(),
                                    value: vname.clone(),
                                    data_offset: done as u64,
                                },
                                4 + take,
                            );
                            done += take;
                            if done >= len {
                                break;
                            }
                        }
                    } else {
                        self.own(
                            doff,
                            Owner::ValueData {
                                key: path.clone(),
                                value: vname.clone(),
                                data_offset: 0,
                            },
                            4 + len,
                        );
                    }
                }
            }
            if let Ok(subs) = k.subkeys() {
                for s in subs.flatten() {
                    if seen.insert(s.offset()) {
                        let p = if path.is_empty() {
                            s.name()
                        } else {
                            format!("{path}\\{}", s.name())
                        };
                        queue.push((s.offset(), p));
                    }
                }
            }
        }
        Ok(())
    }

    fn own_list(&mut self, hive: &Hive, off: CellOffset, depth: u32) {
        if off.is_nil() || depth > 4 {
            return;
        }
        let Ok(cell) = hive.cell(off, "subkey list") else {
            return;
        };
        if cell.len() < 4 {
            return;
        }
        let n = usize::from(u16::from_le_bytes([cell[2], cell[3]]));
        match &cell[0..2] {
            b"lf" | b"lh" => self.own(off, Owner::List, 4 + 4 + 8 * n),
            b"li" => self.own(off, Owner::List, 4 + 4 + 4 * n),
            b"ri" => {
                self.own(off, Owner::List, 4 + 4 + 4 * n);
                for i in 0..n {
                    let sub = CellOffset(rd_u32(cell, 4 + 4 * i).unwrap_or(u32::MAX));
                    self.own_list(hive, sub, depth + 1);
                }
            }
            _ => {}
        }
    }

    /// What the byte at file offset `at` is.
    pub fn locate(&self, at: usize) -> Region {
        if at < BASE_BLOCK_SIZE {
            return Region::BaseBlock;
        }
        if at >= self.hbins_end || at >= self.len {
            return Region::Tail;
        }
        let bin = self.bins.partition_point(|b| b.0 <= at);
        if bin == 0 {
            return Region::Tail;
        }
        let (bstart, bsize) = self.bins[bin - 1];
        if at >= bstart + bsize {
            return Region::Tail;
        }
        if at < bstart + 32 {
            return Region::BinHeader;
        }
        let i = self.cells.partition_point(|c| c.start <= at);
        if i == 0 {
            return Region::Tail;
        }
        let c = &self.cells[i - 1];
        if at >= c.start + c.size {
            // Past the last parseable cell of a bin: treat as free space.
            return Region::FreeCell;
        }
        if !c.allocated {
            return Region::FreeCell;
        }
        let Some((owner, used)) = self.owners.get(&c.start) else {
            return Region::Used(Owner::Unreferenced);
        };
        let rel = at - c.start;
        let mut owner = owner.clone();
        match &mut owner {
            Owner::KeyNode { name, .. } => *name = rel >= 4 + NK_NAME,
            Owner::ValueNode { name, .. } => *name = rel >= 4 + VK_NAME,
            Owner::ValueData { data_offset, .. } => *data_offset += rel.saturating_sub(4) as u64,
            _ => {}
        }
        if rel >= *used {
            Region::Slack(owner)
        } else {
            Region::Used(owner)
        }
    }

    /// Byte ranges (file offsets) that hold nothing a reader uses: free cells' payloads and
    /// the slack after the used part of every owned allocated cell.
    pub fn unused_ranges(&self) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        for c in &self.cells {
            if !c.allocated {
                out.push(c.start + 4..c.start + c.size);
            } else if let Some((_, used)) = self.owners.get(&c.start) {
                if *used < c.size {
                    out.push(c.start + used..c.start + c.size);
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{REG_BINARY, REG_SZ};

    fn sd() -> Vec<u8> {
        // O:BA G:SY D:(A;;KA;;;SY), self-relative.
        let mut d = vec![
            1u8, 0, 0x04, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        let sid_sy = [1u8, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
        let sid_ba = [1u8, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 32, 2, 0, 0];
        let owner = d.len() as u32;
        d.extend_from_slice(&sid_ba);
        let group = d.len() as u32;
        d.extend_from_slice(&sid_sy);
        let dacl = d.len() as u32;
        let ace_len = 8 + sid_sy.len();
        let acl_len = 8 + ace_len;
        d.extend_from_slice(&[2, 0]);
        d.extend_from_slice(&(acl_len as u16).to_le_bytes());
        d.extend_from_slice(&[1, 0, 0, 0]);
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(&(ace_len as u16).to_le_bytes());
        d.extend_from_slice(&0x000F_003Fu32.to_le_bytes());
        d.extend_from_slice(&sid_sy);
        d[4..8].copy_from_slice(&owner.to_le_bytes());
        d[8..12].copy_from_slice(&group.to_le_bytes());
        d[16..20].copy_from_slice(&dacl.to_le_bytes());
        d
    }

    fn find(h: &[u8], pat: &[u8]) -> Vec<usize> {
        h.windows(pat.len())
            .enumerate()
            .filter(|(_, w)| *w == pat)
            .map(|(i, _)| i)
            .collect()
    }

    #[test]
    fn owners_slack_and_free_cells() {
        let mut h = Hive::new_empty("ROOT", &sd()).unwrap();
        let k = h.create_path("Alpha\\Beta").unwrap();
        h.set_class_name(k, Some("CLASSNAME")).unwrap();
        let long: Vec<u8> = b"OLDSID-".iter().copied().cycle().take(700).collect();
        h.set_value(k, "data", REG_BINARY, &long).unwrap();
        // Shrink in place: the tail of the old data stays in the cell as slack (or the cell is
        // freed); either way, it is not "used".
        h.set_value(k, "data", REG_BINARY, b"short").unwrap();
        h.set_value(
            k,
            "name",
            REG_SZ,
            &crate::key_value::encode_sz("VALUE-TEXT"),
        )
        .unwrap();
        let big = vec![0xABu8; 40_000];
        h.set_value(k, "big", REG_BINARY, &big).unwrap();
        h.commit().unwrap();
        let bytes = h.as_bytes().to_vec();
        let h = Hive::from_bytes(bytes.clone()).unwrap();
        let m = CellMap::new(&h).unwrap();
        assert_eq!(m.locate(0), Region::BaseBlock);
        let at = find(&bytes, b"Beta")[0];
        assert_eq!(
            m.locate(at),
            Region::Used(Owner::KeyNode {
                key: "Alpha\\Beta".into(),
                name: true
            })
        );
        let cls: Vec<u8> = "CLASSNAME"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let at = find(&bytes, &cls)[0];
        assert_eq!(
            m.locate(at),
            Region::Used(Owner::ClassName {
                key: "Alpha\\Beta".into()
            })
        );
        let txt: Vec<u8> = "VALUE-TEXT"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let at = find(&bytes, &txt)[0];
        assert!(matches!(
            m.locate(at),
            Region::Used(Owner::ValueData { ref value, data_offset: 0, .. }) if value == "name"
        ));
        // Every leftover of the 700-byte value is unused: slack or free.
        for at in find(&bytes, b"OLDSID-") {
            let r = m.locate(at);
            assert!(
                matches!(r, Region::FreeCell | Region::Slack(_)),
                "offset {at:#x}: {r:?}"
            );
            assert!(m.unused_ranges().iter().any(|u| u.contains(&at)));
        }
        // Big data: the segments are value data, with their offset in the value.
        let at = find(&bytes, &[0xAB; 64])[0];
        assert!(matches!(
            m.locate(at),
            Region::Used(Owner::ValueData { ref value, .. }) if value == "big"
        ));
        let at2 = at + 20_000;
        match m.locate(at2) {
            Region::Used(Owner::ValueData { data_offset, .. }) => assert!(data_offset > 16_000),
            other => panic!("{other:?}"),
        }
    }
}
