//! Scrubbing: zero the bytes of a hive that no structure uses, so that nothing a hive once held
//! (an old SID in a freed cell, the tail of a longer value that was overwritten in place by
//! Windows) survives in a file reseal writes.
//!
//! What counts as unused (file ranges, see [`Hive::unused_ranges`]):
//! * the payload of every **free cell** (everything after its 4-byte size field);
//! * the **slack** of every allocated cell reachable from the root: the bytes after the part
//!   its structure uses, which is
//!   - key node `nk`: 76 + name length; value `vk`: 20 + name length;
//!   - security `sk`: 20 + descriptor length (every cell of the sk list from the root's sk);
//!   - value list: 4 × value count; subkey lists `li`/`ri`: 4 + 4 × count, `lf`/`lh`:
//!     4 + 8 × count (for an `ri`, its leaves too);
//!   - class name: the key's class length;
//!   - value data in one cell: the value's data length; big data: `db` cell 8 bytes, its
//!     segment list 4 × segment count, each segment what [`crate::Value::data`] reads from it
//!     (16344 bytes, the last one the rest);
//! * the bytes of the file after the last hbin.
//!
//! Left alone: allocated cells not reachable from the root (leaked cells, whose type and used
//! length are unknown; [`ScrubReport::unreached_cells`] counts them), inline value data (inside
//! the vk), hbin headers and the base block. A cell reached twice counts with the larger used
//! length; a structure that does not parse leaves its cells alone (never zero what a reader
//! might use).

use std::collections::HashMap;
use std::ops::Range;

use crate::base_block::BASE_BLOCK_SIZE;
use crate::cell_map::Owner;
use crate::error::{HiveError, Result};
use crate::hive::{limits, CellOffset, Hive};
use crate::key_node::{parse_list, Key, ListEntries};
use crate::key_security::Sk;
use crate::key_value::{Value, BIG_DATA_SEGMENT};
use crate::layout::{cell, db, lists, nk, sk, vk};

/// What [`Hive::scrub`] zeroed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrubReport {
    /// Free cells whose payload held a non-zero byte.
    pub free_cells: usize,
    /// Allocated cells whose slack held a non-zero byte.
    pub slack_cells: usize,
    /// Bytes set to zero that were not zero.
    pub bytes: usize,
    /// Whether the bytes after the last hbin held a non-zero byte.
    pub after_bins: bool,
    /// Allocated cells not reachable from the root, left as they are.
    pub unreached_cells: usize,
}

/// Where a run of unused bytes is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnusedKind {
    /// The payload of a free cell.
    FreeCell,
    /// The slack of an allocated cell.
    Slack,
    /// After the last hbin.
    AfterBins,
}

/// One run of unused bytes (file offsets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unused {
    /// What it is.
    pub kind: UnusedKind,
    /// The cell (for free cells and slack).
    pub cell: Option<CellOffset>,
    /// File byte range.
    pub range: Range<usize>,
}

/// Used length (bytes after the size field) of each reachable cell, with the structure that
/// owns it (the first one found).
/// Without `owners` (what scrubbing needs) no owner is kept and no key path is built: naming
/// owners costs a string per cell, most of a large hive's scrub time. Then the lengths are
/// only appended, in walk order, and sorted once at the end ([`Used::lengths`]): a hash map
/// touched at a random place for each of a large hive's million cells was a fifth of
/// `generalize`'s time.
pub(crate) struct Used {
    /// With owners: used length and owner by cell offset.
    pub(crate) map: HashMap<u32, (usize, Owner)>,
    /// Without owners: (cell offset, used length), one entry per structure found.
    lens: Vec<(u32, u32)>,
    owners: bool,
}

impl Used {
    fn new(owners: bool) -> Used {
        Used {
            map: HashMap::new(),
            lens: Vec::new(),
            owners,
        }
    }

    fn set(&mut self, c: CellOffset, n: usize, owner: impl FnOnce() -> Owner) {
        if c.is_nil() {
            return;
        }
        if !self.owners {
            self.lens.push((c.0, u32::try_from(n).unwrap_or(u32::MAX)));
            return;
        }
        let e = self.map.entry(c.0).or_insert_with(|| (0, owner()));
        e.0 = e.0.max(n);
    }

    /// (cell offset, largest used length) of every cell found, sorted by offset.
    fn lengths(&mut self) -> Vec<(u32, u32)> {
        let mut v = if self.owners {
            self.map
                .iter()
                .map(|(&c, &(n, _))| (c, u32::try_from(n).unwrap_or(u32::MAX)))
                .collect()
        } else {
            std::mem::take(&mut self.lens)
        };
        v.sort_unstable();
        // A cell reached twice counts with its larger length (the last of its run).
        let mut out: Vec<(u32, u32)> = Vec::with_capacity(v.len());
        for (c, n) in v {
            match out.last_mut() {
                Some(last) if last.0 == c => last.1 = n,
                _ => out.push((c, n)),
            }
        }
        out
    }
}

/// Key cells already walked: one bit per 8-byte cell slot of the hbins (a hash set probed at a
/// random place per key cost more than the walk itself).
struct Seen(Vec<u64>);

impl Seen {
    fn new(hbins: usize) -> Seen {
        Seen(vec![0; hbins / 8 / 64 + 1])
    }

    /// Marks `c`; false when it was marked already.
    fn insert(&mut self, c: CellOffset) -> bool {
        let slot = c.0 as usize / 8;
        let (word, bit) = (slot / 64, 1u64 << (slot % 64));
        match self.0.get_mut(word) {
            Some(w) if *w & bit != 0 => false,
            Some(w) => {
                *w |= bit;
                true
            }
            // Outside the hbins: Key::new refuses it anyway.
            None => true,
        }
    }
}

/// Every cell of the hbins and what the walk from the root found about each.
pub(crate) struct Layout {
    /// (file offset, size, free) of every cell, in file order.
    pub(crate) cells: Vec<(usize, usize, bool)>,
    /// Used length and owner of every reachable cell, by cell offset.
    pub(crate) used: Used,
}

fn list_used(hive: &Hive, off: CellOffset, used: &mut Used) -> Result<Vec<CellOffset>> {
    let entries = parse_list(hive, off)?;
    used.set(off, lists::HEADER_SIZE + entries.byte_len(), || Owner::List);
    let mut out = Vec::new();
    if let ListEntries::Ri(_) = entries {
        for leaf in entries.offsets() {
            let le = parse_list(hive, leaf)?;
            if let ListEntries::Ri(_) = le {
                return Err(HiveError::corrupt("subkey list", leaf, "ri inside ri"));
            }
            used.set(leaf, lists::HEADER_SIZE + le.byte_len(), || Owner::List);
            out.extend(le.offsets());
        }
    } else {
        out.extend(entries.offsets());
    }
    Ok(out)
}

fn value_used(hive: &Hive, key: &str, v: &Value<'_>, used: &mut Used) -> Result<()> {
    let cell_len = hive.cell(v.offset(), "vk")?.len();
    let nl = v.header().name_length.get() as usize;
    let owners = used.owners;
    let value = if owners { v.name() } else { String::new() };
    used.set(v.offset(), (vk::HEADER_SIZE + nl).min(cell_len), || {
        Owner::ValueNode {
            key: key.to_string(),
            value: value.clone(),
            name: false,
        }
    });
    let data = |data_offset: usize| Owner::ValueData {
        key: key.to_string(),
        value: value.clone(),
        data_offset: data_offset as u64,
    };
    let len = v.data_len();
    if v.is_inline() || len == 0 {
        return Ok(());
    }
    let cells = v.data_cells()?;
    // Check that the data reads before trusting the layout.
    v.data()?;
    if cells.len() == 1 {
        used.set(cells[0], len, || data(0));
        return Ok(());
    }
    // db, segment list, segments (as Value::data reads them).
    let segs = &cells[2..];
    used.set(cells[0], db::HEADER_SIZE, || Owner::List);
    used.set(
        cells[1],
        lists::VALUE_LIST_ELEMENT_SIZE * segs.len(),
        || Owner::List,
    );
    let mut left = len;
    for &s in segs {
        let cap = hive.cell(s, "db segment")?.len();
        let take = left.min(BIG_DATA_SEGMENT).min(cap);
        let at = len - left;
        used.set(s, take, || data(at));
        left -= take;
    }
    Ok(())
}

/// Records the used lengths of a key's cells and returns its subkeys. A part that does not
/// parse (class, sk, a value, the subkey list) is skipped: its cells stay unknown and are left
/// alone, the rest of the key still counts.
fn key_used(k: &Key<'_>, path: &str, used: &mut Used) -> Vec<CellOffset> {
    let hive = k.hive();
    let nl = k.header().key_name_length.get() as usize;
    used.set(k.offset(), nk::HEADER_SIZE + nl, || Owner::KeyNode {
        key: path.to_string(),
        name: false,
    });
    if let Ok(Some(c)) = k.class_name_raw() {
        used.set(k.class_name_offset(), c.len(), || Owner::ClassName {
            key: path.to_string(),
        });
    }
    if let Ok(s) = Sk::new(hive, k.security_offset()) {
        used.set(s.offset(), sk::HEADER_SIZE + s.descriptor().len(), || {
            Owner::Descriptor
        });
    }
    if k.value_count() > 0 {
        if let Ok(it) = k.values() {
            let n = k.value_count() as usize;
            used.set(it.list_offset(), lists::VALUE_LIST_ELEMENT_SIZE * n, || {
                Owner::List
            });
            for v in it.flatten() {
                // A value whose data does not read keeps its cells as they are.
                let _ = value_used(hive, path, &v, used);
            }
        }
    }
    if k.subkey_count() == 0 {
        return Vec::new();
    }
    list_used(hive, k.subkey_list_offset(), used).unwrap_or_default()
}

impl Hive {
    /// Every run of bytes no structure uses (see the [module documentation](self)), sorted by
    /// offset. Read-only; a run may be all zeros already.
    ///
    /// # Errors
    /// Malformed hbins or cells ([`HiveError::BadHbin`]), a root key that does not parse.
    pub fn unused_ranges(&self) -> Result<Vec<Unused>> {
        Ok(self.unused_with_report()?.0)
    }

    /// Every cell of the hbins, and the used length and owner of every cell reachable from
    /// the root (key paths relative to the root key, `\`-separated); with `owners` false,
    /// used lengths only (every owner [`Owner::Unreferenced`]).
    ///
    /// # Errors
    /// As [`Hive::unused_ranges`].
    pub(crate) fn layout(&self, owners: bool) -> Result<Layout> {
        let (_, cells) = self.bins_and_cells()?;
        // Used lengths along the tree.
        let mut used = Used::new(owners);
        let root = self.root()?;
        let mut seen = Seen::new(self.hbins_end);
        let mut stack = vec![(root.offset(), 0usize, None::<String>)];
        while let Some((off, depth, parent)) = stack.pop() {
            if depth > limits::MAX_DEPTH || !seen.insert(off) {
                continue;
            }
            let Ok(k) = Key::new(self, off) else { continue };
            let path = match parent {
                _ if !owners => String::new(),
                None => String::new(),
                Some(p) if p.is_empty() => k.name(),
                Some(p) => format!("{p}\\{}", k.name()),
            };
            for c in key_used(&k, &path, &mut used) {
                stack.push((c, depth + 1, Some(path.clone())));
            }
        }
        // The whole sk list (an sk no key uses still holds a descriptor).
        let anchor = root.security_offset();
        if Sk::new(self, anchor).is_ok() {
            let mut cur = anchor;
            for _ in 0..limits::MAX_SK_CHAIN {
                let Ok(s) = Sk::new(self, cur) else { break };
                used.set(cur, sk::HEADER_SIZE + s.descriptor().len(), || {
                    Owner::Descriptor
                });
                cur = s.flink();
                if cur == anchor {
                    break;
                }
            }
        }
        Ok(Layout { cells, used })
    }

    fn unused_with_report(&self) -> Result<(Vec<Unused>, usize)> {
        let Layout { cells, mut used } = self.layout(false)?;
        let lengths = used.lengths();
        let mut found = lengths.iter().peekable();
        let mut out = Vec::new();
        let mut unreached = 0;
        for (start, len, free) in cells {
            let at = (start - BASE_BLOCK_SIZE) as u32;
            // Both lists are in offset order: skip what the walk found inside no cell start.
            while found.next_if(|&&(c, _)| c < at).is_some() {}
            let reached = found.next_if(|&&(c, _)| c == at).map(|&(_, n)| n as usize);
            let cell = Some(CellOffset((start - BASE_BLOCK_SIZE) as u32));
            if free {
                if len > cell::HEADER_SIZE {
                    out.push(Unused {
                        kind: UnusedKind::FreeCell,
                        cell,
                        range: start + cell::HEADER_SIZE..start + len,
                    });
                }
                continue;
            }
            match reached {
                Some(u) if cell::HEADER_SIZE + u < len => out.push(Unused {
                    kind: UnusedKind::Slack,
                    cell,
                    range: start + cell::HEADER_SIZE + u..start + len,
                }),
                Some(_) => {}
                None => unreached += 1,
            }
        }
        if self.data.len() > self.hbins_end {
            out.push(Unused {
                kind: UnusedKind::AfterBins,
                cell: None,
                range: self.hbins_end..self.data.len(),
            });
        }
        Ok((out, unreached))
    }

    /// Zeroes every run of [`Hive::unused_ranges`] that holds a non-zero byte (writable mode;
    /// then [`Hive::commit`]). What every reader sees (keys, values, classes, descriptors) is
    /// unchanged; a hive with nothing to zero stays unmodified.
    ///
    /// # Errors
    /// Read-only ([`HiveError::ReadOnly`]), and as [`Hive::unused_ranges`] (nothing written).
    pub fn scrub(&mut self) -> Result<ScrubReport> {
        if self.alloc.is_none() {
            return Err(HiveError::ReadOnly);
        }
        let (runs, unreached) = self.unused_with_report()?;
        let mut rep = ScrubReport {
            unreached_cells: unreached,
            ..ScrubReport::default()
        };
        for u in runs {
            let nonzero = self.data[u.range.clone()]
                .iter()
                .filter(|&&b| b != 0)
                .count();
            if nonzero == 0 {
                continue;
            }
            rep.bytes += nonzero;
            match u.kind {
                UnusedKind::FreeCell => rep.free_cells += 1,
                UnusedKind::Slack => rep.slack_cells += 1,
                UnusedKind::AfterBins => rep.after_bins = true,
            }
            let zeros = vec![0u8; u.range.len()];
            self.write_bytes(u.range.start, &zeros);
        }
        Ok(rep)
    }
}
