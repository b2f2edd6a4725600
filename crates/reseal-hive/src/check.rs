//! Structural check of a hive (`reseal reg check`): cell sizes, overlaps, list order,
//! counts, sk refcounts and links, dangling offsets, free-space accounting.

use std::collections::{HashMap, HashSet};

use crate::base_block::BASE_BLOCK_SIZE;
use crate::hive::{CellOffset, Hive};
use crate::key_node::{parse_list, Key, ListEntries};
use crate::layout::{cell, hbin};
use crate::name::NameRef;
use zerocopy::FromBytes;

/// How serious a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// Windows may misread or corrupt the hive.
    Error,
    /// Harmless inconsistency Windows itself produces (e.g. leaked cells).
    Warning,
}

/// One structural problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Severity.
    pub severity: Severity,
    /// Cell (or hbin) offset relative to the hive bins, if any.
    pub cell: Option<CellOffset>,
    /// Structure name.
    pub structure: &'static str,
    /// Description.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.cell {
            Some(c) => write!(f, "{} at cell {:#x}: {}", self.structure, c.0, self.message),
            None => write!(f, "{}: {}", self.structure, self.message),
        }
    }
}

struct Ctx<'h> {
    hive: &'h Hive,
    problems: Vec<Problem>,
    allocated: HashSet<u32>,
    used: HashSet<u32>,
    sk_users: HashMap<u32, u32>,
    visited: usize,
}

impl Ctx<'_> {
    fn p(&mut self, cell: Option<CellOffset>, structure: &'static str, message: impl Into<String>) {
        if self.problems.len() < 10_000 {
            let message: String = message.into();
            let severity = if structure == "free space" {
                Severity::Warning
            } else {
                Severity::Error
            };
            self.problems.push(Problem {
                severity,
                cell,
                structure,
                message,
            });
        }
    }
    fn use_cell(&mut self, c: CellOffset, what: &'static str) -> bool {
        if !self.allocated.contains(&c.0) {
            self.p(
                Some(c),
                what,
                "dangling offset: not the start of an allocated cell",
            );
            return false;
        }
        if !self.used.insert(c.0) && what != "sk" {
            self.p(Some(c), what, "cell referenced twice");
        }
        true
    }
}

/// Checks the whole hive and returns every problem found (empty = clean).
pub fn check(hive: &Hive) -> Vec<Problem> {
    let mut cx = Ctx {
        hive,
        problems: Vec::new(),
        allocated: HashSet::new(),
        used: HashSet::new(),
        sk_users: HashMap::new(),
        visited: 0,
    };
    let bb = hive.base_block();
    if bb.seq1 != bb.seq2 {
        cx.p(
            None,
            "base block",
            format!("dirty: seq1 {} != seq2 {}", bb.seq1, bb.seq2),
        );
    }
    // hbins and cells
    let mut pos = BASE_BLOCK_SIZE;
    while pos < hive.hbins_end {
        let rel = CellOffset((pos - BASE_BLOCK_SIZE) as u32);
        let Some(header) = hive.hbin_header(pos) else {
            cx.p(Some(rel), "hbin", "missing signature");
            break;
        };
        if header.offset.get() as usize != pos - BASE_BLOCK_SIZE {
            cx.p(
                Some(rel),
                "hbin",
                "offset field does not match its position",
            );
        }
        let size = header.size.get() as usize;
        if size == 0 || size % hbin::ALIGNMENT != 0 || pos + size > hive.hbins_end {
            cx.p(Some(rel), "hbin", format!("bad size {size:#x}"));
            break;
        }
        let end = pos + size;
        let mut c = pos + hbin::HEADER_SIZE;
        let mut prev_free = false;
        while c < end {
            let header = hive.cell_header(c);
            let len = header.len();
            let co = CellOffset((c - BASE_BLOCK_SIZE) as u32);
            if len < cell::MIN_SIZE || len % cell::ALIGNMENT != 0 || c + len > end {
                cx.p(
                    Some(co),
                    "cell",
                    format!(
                        "bad cell size {} (overlaps or crosses the hbin)",
                        header.raw()
                    ),
                );
                break;
            }
            if header.is_allocated() {
                cx.allocated.insert(co.0);
                prev_free = false;
            } else {
                if prev_free {
                    // Windows leaves adjacent free cells too; informational only.
                }
                prev_free = true;
            }
            c += len;
        }
        pos = end;
    }
    // tree
    match hive.root() {
        Ok(r) => {
            let ro = r.offset();
            cx.use_cell(ro, "nk");
            check_key(&mut cx, r, 0);
            check_sk_list(&mut cx, r.security_offset());
        }
        Err(e) => cx.p(Some(hive.root_offset()), "root", e.to_string()),
    }
    let leaked = cx.allocated.len().saturating_sub(cx.used.len());
    if leaked > 0 {
        cx.p(
            None,
            "free space",
            format!("{leaked} allocated cells are not reachable from the root"),
        );
    }
    cx.problems
}

fn check_key(cx: &mut Ctx<'_>, k: Key<'_>, depth: usize) {
    let off = k.offset();
    cx.visited += 1;
    if depth > crate::limits::MAX_DEPTH || cx.visited > cx.hive.hbins_end / 80 + 16 {
        cx.p(
            Some(off),
            "nk",
            "depth or key count limit exceeded (cycle?)",
        );
        return;
    }
    let sk = k.security_offset();
    if !sk.is_nil() {
        *cx.sk_users.entry(sk.0).or_insert(0) += 1;
    } else {
        cx.p(Some(off), "nk", "no security cell");
    }
    if let Ok(Some(_)) = k.class_name_raw() {
        cx.use_cell(k.class_name_offset(), "class name");
    } else if let Err(e) = k.class_name_raw() {
        cx.p(Some(off), "class name", e.to_string());
    }
    // values
    match k.values() {
        Ok(it) => {
            if k.value_count() > 0 {
                let lo = it.list_offset();
                cx.use_cell(lo, "value list");
            }
            let mut names: Vec<String> = Vec::new();
            for v in it {
                match v {
                    Ok(v) => {
                        cx.use_cell(v.offset(), "vk");
                        match v.data_cells() {
                            Ok(cells) => {
                                for c in cells {
                                    cx.use_cell(c, "value data");
                                }
                            }
                            Err(e) => cx.p(Some(v.offset()), "vk", e.to_string()),
                        }
                        if let Err(e) = v.data() {
                            cx.p(Some(v.offset()), "vk", e.to_string());
                        }
                        let up: String = v.name().to_uppercase();
                        if names.contains(&up) {
                            cx.p(
                                Some(v.offset()),
                                "vk",
                                format!("duplicate value name {:?}", v.name()),
                            );
                        }
                        names.push(up);
                    }
                    Err(e) => cx.p(Some(off), "value list", e.to_string()),
                }
            }
        }
        Err(e) => cx.p(Some(off), "value list", e.to_string()),
    }
    // subkey list cells
    let lo = k.subkey_list_offset();
    if k.subkey_count() > 0 {
        match parse_list(cx.hive, lo) {
            Ok(entries) => {
                cx.use_cell(lo, "subkey list");
                if let ListEntries::Ri(_) = entries {
                    for l in entries.offsets() {
                        cx.use_cell(l, "subkey leaf");
                    }
                }
            }
            Err(e) => {
                cx.p(Some(off), "subkey list", e.to_string());
                return;
            }
        }
    }
    let mut n = 0u32;
    let mut prev: Option<Key<'_>> = None;
    let mut children = Vec::new();
    match k.subkeys() {
        Ok(mut it) => {
            while let Some(e) = it.next_entry() {
                match e {
                    Ok((c, h)) => {
                        n += 1;
                        match Key::new(cx.hive, c) {
                            Ok(ck) => {
                                if let Some(h) = h {
                                    if h != ck.name_ref().lh_hash() {
                                        cx.p(
                                            Some(c),
                                            "lh",
                                            format!("wrong hash for {:?}", ck.name()),
                                        );
                                    }
                                }
                                if ck.parent_offset() != off {
                                    cx.p(
                                        Some(c),
                                        "nk",
                                        "parent field does not point to the parent",
                                    );
                                }
                                if let Some(p) = prev {
                                    let o = NameRef::cmp_upcase(&p.name_ref(), &ck.name_ref());
                                    if o != std::cmp::Ordering::Less {
                                        cx.p(
                                            Some(lo),
                                            "subkey list",
                                            format!(
                                                "not sorted at {:?} / {:?}",
                                                p.name(),
                                                ck.name()
                                            ),
                                        );
                                    }
                                }
                                let max = k.max_subkey_name_len();
                                if (ck.name_ref().len_units() as u32) * 2 > max {
                                    cx.p(Some(off), "nk", "max subkey name length too small");
                                }
                                prev = Some(ck);
                                if cx.use_cell(c, "nk") {
                                    children.push(ck);
                                }
                            }
                            Err(e) => cx.p(Some(c), "nk", e.to_string()),
                        }
                    }
                    Err(e) => {
                        cx.p(Some(lo), "subkey list", e.to_string());
                        break;
                    }
                }
            }
        }
        Err(e) => cx.p(Some(off), "subkey list", e.to_string()),
    }
    if n != k.subkey_count() {
        cx.p(
            Some(off),
            "nk",
            format!("subkey count {} but list holds {n}", k.subkey_count()),
        );
    }
    for c in children {
        check_key(cx, c, depth + 1);
    }
}

fn check_sk_list(cx: &mut Ctx<'_>, start: CellOffset) {
    let hive = cx.hive;
    let Ok(first) = crate::Sk::new(hive, start) else {
        cx.p(Some(start), "sk", "root security cell invalid");
        return;
    };
    let mut cur = first;
    let mut seen = HashSet::new();
    loop {
        let o = cur.offset();
        if !seen.insert(o.0) {
            cx.p(
                Some(o),
                "sk",
                "sk list loops without returning to the start",
            );
            break;
        }
        if cx.allocated.contains(&o.0) {
            cx.used.insert(o.0);
        }
        let users = cx.sk_users.get(&o.0).copied().unwrap_or(0);
        if users != cur.refcount() {
            cx.p(
                Some(o),
                "sk",
                format!("refcount {} but {users} keys use it", cur.refcount()),
            );
        }
        if let Err(e) = crate::validate_descriptor(cur.descriptor()) {
            cx.p(Some(o), "sk", e.to_string());
        }
        let next = match crate::Sk::new(hive, cur.flink()) {
            Ok(n) => n,
            Err(e) => {
                cx.p(Some(o), "sk", format!("broken flink: {e}"));
                break;
            }
        };
        if next.blink() != o {
            cx.p(
                Some(next.offset()),
                "sk",
                "blink does not point back to the previous sk",
            );
        }
        if next.offset() == first.offset() {
            break;
        }
        if seen.len() > crate::limits::MAX_SK_CHAIN {
            break;
        }
        cur = next;
    }
    for (&s, _) in cx.sk_users.clone().iter() {
        if !seen.contains(&s) {
            cx.p(
                Some(CellOffset(s)),
                "sk",
                "used by a key but not in the sk list",
            );
        }
    }
}

/// What [`check_file`] found in a primary file's base block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseBlockCheck {
    /// The parsed base block (`None`: no "regf" signature or shorter than 512 bytes).
    pub base_block: Option<crate::BaseBlock>,
    /// Checksum computed over bytes 0..508.
    pub computed_checksum: Option<u32>,
    /// Problems, each with the byte offset of the field in the file.
    pub problems: Vec<(usize, String)>,
}

/// Check a primary hive file as stored: its base block (signature, checksum, sequence numbers:
/// unequal means the last write did not finish and the logs hold changes to replay), then,
/// when the file opens, every bin and cell ([`check`]). Returns the base-block findings and the
/// structural problems. Never panics.
pub fn check_file(data: &[u8]) -> (BaseBlockCheck, Vec<Problem>) {
    use crate::base_block::{checksum, CHECKSUM_OFFSET, SEQ2_OFFSET};
    let mut bb = BaseBlockCheck {
        base_block: None,
        computed_checksum: None,
        problems: Vec::new(),
    };
    match crate::BaseBlock::parse(data) {
        Err(e) => {
            bb.problems.push((0, e.to_string()));
            return (bb, Vec::new());
        }
        Ok(b) => {
            let computed = checksum(data);
            bb.computed_checksum = Some(computed);
            if !b.checksum_ok {
                bb.problems.push((
                    CHECKSUM_OFFSET,
                    format!(
                        "checksum {:#010x} stored but {computed:#010x} computed over bytes 0..508",
                        b.checksum
                    ),
                ));
            }
            if b.seq1 != b.seq2 {
                bb.problems.push((
                    SEQ2_OFFSET,
                    format!(
                        "sequence numbers differ ({} and {}): the last write did not finish; the transaction logs hold changes to replay",
                        b.seq1, b.seq2
                    ),
                ));
            }
            bb.base_block = Some(b);
        }
    }
    // The bins are walked even under a wrong checksum (reported above): in a copy whose
    // checksum is made right.
    let mut copy = data.to_vec();
    if let (Some(c), Ok((h, _))) = (
        bb.computed_checksum,
        crate::base_block::BaseBlockHeader::mut_from_prefix(&mut copy),
    ) {
        h.checksum = zerocopy::little_endian::U32::new(c);
    }
    match Hive::from_bytes(copy) {
        Ok(h) => {
            // The sequence numbers are reported above, with their offset.
            let problems = check(&h)
                .into_iter()
                .filter(|p| !(p.structure == "base block" && p.message.starts_with("dirty")))
                .collect();
            (bb, problems)
        }
        Err(e) => {
            if bb.problems.is_empty() {
                bb.problems.push((0, format!("does not open: {e}")));
            }
            (bb, Vec::new())
        }
    }
}
