//! What every byte of a hive file is: the base block, bin headers, free cells, and for each
//! allocated cell the structure that owns it (key node, value, data, class name, descriptor,
//! list, big-data segment) with the used length of the cell — the bytes after it are slack.
//!
//! The walk is the one [`Hive::scrub`] uses ([`Hive::unused_ranges`]): one pass over the key
//! tree from the root names the owner and used length of every reachable cell; allocated cells
//! nothing reaches are "unreferenced". [`CellMap::locate`] answers for a file offset; `reseal
//! audit` uses it to say where a byte pattern lives.

use std::collections::HashMap;

use crate::base_block::BASE_BLOCK_SIZE;
use crate::hive::Hive;
use crate::layout::{cell, nk, vk};
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

/// The map of one hive file (see the module docs).
#[derive(Debug)]
pub struct CellMap {
    len: usize,
    hbins_end: usize,
    /// (file offset, size, free) of every cell, in file order.
    cells: Vec<(usize, usize, bool)>,
    /// Used length (after the size field) and owner of every reachable cell, by cell offset.
    owners: HashMap<u32, (usize, Owner)>,
}

impl CellMap {
    /// Map `hive`, with the walk [`Hive::scrub`] uses (one definition of what each cell uses).
    ///
    /// # Errors
    /// Malformed hbins or cells, a root key that does not parse (as [`Hive::unused_ranges`]).
    pub fn new(hive: &Hive) -> Result<CellMap> {
        let layout = hive.layout(true)?;
        Ok(CellMap {
            len: hive.as_bytes().len(),
            hbins_end: hive.hbins_end().min(hive.as_bytes().len()),
            cells: layout.cells,
            owners: layout.used.map,
        })
    }

    /// What the byte at file offset `at` is.
    pub fn locate(&self, at: usize) -> Region {
        if at < BASE_BLOCK_SIZE {
            return Region::BaseBlock;
        }
        if at >= self.hbins_end || at >= self.len {
            return Region::Tail;
        }
        let i = self.cells.partition_point(|c| c.0 <= at);
        let Some(&(start, size, free)) = i.checked_sub(1).and_then(|i| self.cells.get(i)) else {
            return Region::BinHeader;
        };
        if at >= start + size {
            // Between the last cell of one bin and the first of the next: a bin header.
            return Region::BinHeader;
        }
        if free {
            return Region::FreeCell;
        }
        let cell = u32::try_from(start - BASE_BLOCK_SIZE).unwrap_or(u32::MAX);
        let Some((used, owner)) = self.owners.get(&cell) else {
            return Region::Used(Owner::Unreferenced);
        };
        let rel = at - start;
        let mut owner = owner.clone();
        match &mut owner {
            Owner::KeyNode { name, .. } => *name = rel >= cell::HEADER_SIZE + nk::HEADER_SIZE,
            Owner::ValueNode { name, .. } => *name = rel >= cell::HEADER_SIZE + vk::HEADER_SIZE,
            Owner::ValueData { data_offset, .. } => {
                *data_offset += rel.saturating_sub(cell::HEADER_SIZE) as u64
            }
            _ => {}
        }
        if rel >= cell::HEADER_SIZE + used {
            Region::Slack(owner)
        } else {
            Region::Used(owner)
        }
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
        h.set_value(k, "UniqueValueName", REG_BINARY, b"x").unwrap();
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
        let at = find(&bytes, b"UniqueValueName")[0];
        assert_eq!(
            m.locate(at),
            Region::Used(Owner::ValueNode {
                key: "Alpha\\Beta".into(),
                value: "UniqueValueName".into(),
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
            assert!(h
                .unused_ranges()
                .unwrap()
                .iter()
                .any(|u| u.range.contains(&at)));
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
