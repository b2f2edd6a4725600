//! Key node ("nk") cells and the subkey lists they point to (lf/lh/li/ri).
//!
//! Reference: FORMATS.md B.3 (msuhanov regf specification; hivex; libregf).

use crate::base_block::rd_u32;
use crate::error::{HiveError, Result};
use crate::hive::{limits, CellOffset, Hive};
use crate::key_security::Sk;
use crate::key_value::Value;
use crate::name::{lh_hash_units, NameRef};

/// nk flag: root of the hive.
pub const KEY_HIVE_ENTRY: u16 = 0x0004;
/// nk flag: key cannot be deleted.
pub const KEY_NO_DELETE: u16 = 0x0008;
/// nk flag: symbolic link.
pub const KEY_SYM_LINK: u16 = 0x0010;
/// nk flag: the name is stored compressed (Latin-1).
pub const KEY_COMP_NAME: u16 = 0x0020;

pub(crate) const NK_FIXED: usize = 76;
/// Offsets of fields inside the nk cell data (after the size field).
#[allow(missing_docs)]
pub mod nk {
    pub const FLAGS: usize = 2;
    pub const TIMESTAMP: usize = 4;
    pub const PARENT: usize = 16;
    pub const SUBKEY_COUNT: usize = 20;
    pub const VOLATILE_COUNT: usize = 24;
    pub const SUBKEY_LIST: usize = 28;
    pub const VALUE_COUNT: usize = 36;
    pub const VALUE_LIST: usize = 40;
    pub const SECURITY: usize = 44;
    pub const CLASS: usize = 48;
    pub const MAX_SUBKEY_NAME: usize = 52;
    pub const MAX_CLASS: usize = 56;
    pub const MAX_VALUE_NAME: usize = 60;
    pub const MAX_VALUE_DATA: usize = 64;
    pub const NAME_LEN: usize = 72;
    pub const CLASS_LEN: usize = 74;
    pub const NAME: usize = 76;
}

/// A key node, borrowed from a [`Hive`].
#[derive(Debug, Clone, Copy)]
pub struct Key<'h> {
    hive: &'h Hive,
    off: CellOffset,
    nk: &'h [u8],
}

fn le32(b: &[u8], o: usize) -> u32 {
    rd_u32(b, o).unwrap_or(0)
}

impl<'h> Key<'h> {
    pub(crate) fn new(hive: &'h Hive, off: CellOffset) -> Result<Key<'h>> {
        let nk = hive.cell(off, "nk")?;
        if nk.len() < NK_FIXED || &nk[0..2] != b"nk" {
            return Err(HiveError::corrupt(
                "nk",
                off,
                "not a key node (signature or size)",
            ));
        }
        let nl = u16::from_le_bytes([nk[72], nk[73]]) as usize;
        if NK_FIXED + nl > nk.len() {
            return Err(HiveError::corrupt(
                "nk",
                off,
                format!("name length {nl} runs past the cell"),
            ));
        }
        Ok(Key { hive, off, nk })
    }

    /// The hive this key belongs to.
    pub fn hive(&self) -> &'h Hive {
        self.hive
    }

    /// Cell offset of the nk.
    pub fn offset(&self) -> CellOffset {
        self.off
    }

    /// Raw nk cell data.
    pub fn raw(&self) -> &'h [u8] {
        self.nk
    }

    /// nk flags (KEY_* constants).
    pub fn flags(&self) -> u16 {
        u16::from_le_bytes([self.nk[2], self.nk[3]])
    }

    /// Borrowed name.
    pub fn name_ref(&self) -> NameRef<'h> {
        let nl = u16::from_le_bytes([self.nk[72], self.nk[73]]) as usize;
        NameRef::new(
            &self.nk[NK_FIXED..NK_FIXED + nl],
            self.flags() & KEY_COMP_NAME != 0,
        )
    }

    /// Decoded name.
    pub fn name(&self) -> String {
        self.name_ref().to_string_lossy()
    }

    /// Last written time (FILETIME, 100 ns since 1601).
    pub fn last_written(&self) -> u64 {
        crate::base_block::rd_u64(self.nk, nk::TIMESTAMP).unwrap_or(0)
    }

    /// Parent key offset as stored.
    pub fn parent_offset(&self) -> CellOffset {
        CellOffset(le32(self.nk, nk::PARENT))
    }

    /// Number of subkeys recorded in the nk.
    pub fn subkey_count(&self) -> u32 {
        le32(self.nk, nk::SUBKEY_COUNT)
    }

    /// Number of values recorded in the nk.
    pub fn value_count(&self) -> u32 {
        le32(self.nk, nk::VALUE_COUNT)
    }

    pub(crate) fn field(&self, o: usize) -> u32 {
        le32(self.nk, o)
    }

    /// Subkey list offset.
    pub fn subkey_list_offset(&self) -> CellOffset {
        CellOffset(le32(self.nk, nk::SUBKEY_LIST))
    }

    /// Value list offset.
    pub fn value_list_offset(&self) -> CellOffset {
        CellOffset(le32(self.nk, nk::VALUE_LIST))
    }

    /// Security (sk) cell offset.
    pub fn security_offset(&self) -> CellOffset {
        CellOffset(le32(self.nk, nk::SECURITY))
    }

    /// Raw class name bytes (UTF-16LE), if any.
    ///
    /// # Errors
    /// When the class cell is invalid or shorter than the recorded length.
    pub fn class_name_raw(&self) -> Result<Option<&'h [u8]>> {
        let off = CellOffset(le32(self.nk, nk::CLASS));
        let len = u16::from_le_bytes([self.nk[74], self.nk[75]]) as usize;
        if off.is_nil() || len == 0 {
            return Ok(None);
        }
        let c = self.hive.cell(off, "class name")?;
        match c.get(..len) {
            Some(s) => Ok(Some(s)),
            None => Err(HiveError::corrupt(
                "class name",
                off,
                format!("class length {len} exceeds the cell"),
            )),
        }
    }

    /// Decoded class name, if any.
    ///
    /// # Errors
    /// See [`Key::class_name_raw`].
    pub fn class_name(&self) -> Result<Option<String>> {
        Ok(self.class_name_raw()?.map(|b| {
            char::decode_utf16(b.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])))
                .map(|r| r.unwrap_or('\u{FFFD}'))
                .collect()
        }))
    }

    /// Iterates over the subkeys (lf/lh/li/ri lists), checking every offset.
    ///
    /// # Errors
    /// When the list cell itself is invalid; per-entry errors come from the iterator.
    pub fn subkeys(&self) -> Result<SubkeyIter<'h>> {
        SubkeyIter::new(self.hive, self.subkey_list_offset(), self.subkey_count())
    }

    /// Finds a subkey by name, case-insensitively (Windows upcase rules, see [`crate::name`]).
    ///
    /// # Errors
    /// Corruption in the list or the nk cells visited.
    pub fn subkey(&self, name: &str) -> Result<Option<Key<'h>>> {
        // The lh hash only prefilters ASCII names: for other characters the stored hash
        // comes from Windows' upcase table, which may differ from ours on rare letters.
        let hash = name.is_ascii().then(|| lh_hash_units(name.encode_utf16()));
        let mut it = self.subkeys()?;
        while let Some(e) = it.next_entry() {
            let (off, h) = e?;
            if let (Some(h), Some(hash)) = (h, hash) {
                if h != hash {
                    continue;
                }
            }
            let k = Key::new(self.hive, off)?;
            if k.name_ref().eq_ignore_case(name) {
                return Ok(Some(k));
            }
        }
        Ok(None)
    }

    /// Iterates over the values.
    ///
    /// # Errors
    /// When the value list cell is invalid.
    pub fn values(&self) -> Result<ValueIter<'h>> {
        let n = self.value_count() as usize;
        if n == 0 {
            return Ok(ValueIter {
                hive: self.hive,
                list: &[],
                idx: 0,
                list_off: CellOffset::NIL,
            });
        }
        if n > limits::MAX_LIST {
            return Err(HiveError::Limit {
                what: "value count",
                cell: self.off,
            });
        }
        let lo = self.value_list_offset();
        let cell = self.hive.cell(lo, "value list")?;
        match cell.get(..n * 4) {
            Some(list) => Ok(ValueIter {
                hive: self.hive,
                list,
                idx: 0,
                list_off: lo,
            }),
            None => Err(HiveError::corrupt(
                "value list",
                lo,
                format!("{n} values do not fit in the cell"),
            )),
        }
    }

    /// Finds a value by name, case-insensitively ("" = the default value).
    ///
    /// # Errors
    /// Corruption in the value list or vk cells.
    pub fn value(&self, name: &str) -> Result<Option<Value<'h>>> {
        for v in self.values()? {
            let v = v?;
            if v.name_ref().eq_ignore_case(name) {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// The key's security cell.
    ///
    /// # Errors
    /// When the sk cell is invalid.
    pub fn security(&self) -> Result<Sk<'h>> {
        Sk::new(self.hive, self.security_offset())
    }
}

/// Iterator over value cells of a key.
#[derive(Debug, Clone)]
pub struct ValueIter<'h> {
    hive: &'h Hive,
    list: &'h [u8],
    idx: usize,
    list_off: CellOffset,
}

impl ValueIter<'_> {
    /// Cell offset of the value list (nil when the key has no values).
    pub fn list_offset(&self) -> CellOffset {
        self.list_off
    }
}

impl<'h> Iterator for ValueIter<'h> {
    type Item = Result<Value<'h>>;
    fn next(&mut self) -> Option<Self::Item> {
        let o = self.idx * 4;
        if o + 4 > self.list.len() {
            return None;
        }
        self.idx += 1;
        Some(Value::new(self.hive, CellOffset(le32(self.list, o))))
    }
}

/// Kind of a subkey list cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// "li": offsets only.
    Li,
    /// "lf": offset + 4-byte name hint.
    Lf,
    /// "lh": offset + name hash.
    Lh,
    /// "ri": offsets of leaf lists.
    Ri,
}

impl ListKind {
    pub(crate) fn parse(sig: &[u8]) -> Option<ListKind> {
        match sig {
            b"li" => Some(ListKind::Li),
            b"lf" => Some(ListKind::Lf),
            b"lh" => Some(ListKind::Lh),
            b"ri" => Some(ListKind::Ri),
            _ => None,
        }
    }
    pub(crate) fn stride(self) -> usize {
        match self {
            ListKind::Li | ListKind::Ri => 4,
            _ => 8,
        }
    }
    pub(crate) fn sig(self) -> &'static [u8; 2] {
        match self {
            ListKind::Li => b"li",
            ListKind::Lf => b"lf",
            ListKind::Lh => b"lh",
            ListKind::Ri => b"ri",
        }
    }
}

/// Parses a list cell: (kind, entries slice, count).
pub(crate) fn parse_list(hive: &Hive, off: CellOffset) -> Result<(ListKind, &[u8])> {
    let c = hive.cell(off, "subkey list")?;
    if c.len() < 4 {
        return Err(HiveError::corrupt("subkey list", off, "cell too small"));
    }
    let kind = ListKind::parse(&c[0..2]).ok_or_else(|| {
        HiveError::corrupt(
            "subkey list",
            off,
            format!("unknown list signature {:02x?}", &c[0..2]),
        )
    })?;
    let n = u16::from_le_bytes([c[2], c[3]]) as usize;
    let need = 4 + n * kind.stride();
    match c.get(4..need) {
        Some(e) => Ok((kind, e)),
        None => Err(HiveError::corrupt(
            "subkey list",
            off,
            format!("{n} entries do not fit in the cell"),
        )),
    }
}

/// Iterator over subkeys, flattening ri lists (no allocation).
#[derive(Debug, Clone)]
pub struct SubkeyIter<'h> {
    hive: &'h Hive,
    ri: Option<(&'h [u8], usize)>,
    leaf: &'h [u8],
    leaf_kind: ListKind,
    leaf_idx: usize,
    produced: usize,
    failed: bool,
}

impl<'h> SubkeyIter<'h> {
    pub(crate) fn new(hive: &'h Hive, list: CellOffset, count: u32) -> Result<Self> {
        let mut it = SubkeyIter {
            hive,
            ri: None,
            leaf: &[],
            leaf_kind: ListKind::Li,
            leaf_idx: 0,
            produced: 0,
            failed: false,
        };
        if count == 0 {
            return Ok(it);
        }
        let (kind, entries) = parse_list(hive, list)?;
        if kind == ListKind::Ri {
            it.ri = Some((entries, 0));
        } else {
            it.leaf = entries;
            it.leaf_kind = kind;
        }
        Ok(it)
    }

    /// Next (offset, lh hash if the leaf is lh).
    pub(crate) fn next_entry(&mut self) -> Option<Result<(CellOffset, Option<u32>)>> {
        if self.failed {
            return None;
        }
        loop {
            let stride = self.leaf_kind.stride();
            let o = self.leaf_idx * stride;
            if o + stride <= self.leaf.len() {
                self.leaf_idx += 1;
                self.produced += 1;
                if self.produced > limits::MAX_LIST {
                    self.failed = true;
                    return Some(Err(HiveError::Limit {
                        what: "subkey count",
                        cell: CellOffset(le32(self.leaf, o)),
                    }));
                }
                let off = CellOffset(le32(self.leaf, o));
                let h = if self.leaf_kind == ListKind::Lh {
                    Some(le32(self.leaf, o + 4))
                } else {
                    None
                };
                return Some(Ok((off, h)));
            }
            let (ri, idx) = self.ri.as_mut()?;
            let ro = *idx * 4;
            if ro + 4 > ri.len() {
                return None;
            }
            *idx += 1;
            let leaf_off = CellOffset(le32(ri, ro));
            match parse_list(self.hive, leaf_off) {
                Ok((ListKind::Ri, _)) => {
                    self.failed = true;
                    return Some(Err(HiveError::corrupt(
                        "ri",
                        leaf_off,
                        "ri list nested inside ri",
                    )));
                }
                Ok((k, e)) => {
                    self.leaf = e;
                    self.leaf_kind = k;
                    self.leaf_idx = 0;
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}

impl<'h> Iterator for SubkeyIter<'h> {
    type Item = Result<Key<'h>>;
    fn next(&mut self) -> Option<Self::Item> {
        match self.next_entry()? {
            Ok((off, _)) => {
                let r = Key::new(self.hive, off);
                if r.is_err() {
                    self.failed = true;
                }
                Some(r)
            }
            Err(e) => Some(Err(e)),
        }
    }
}

/// Callbacks for [`Hive::walk`].
pub trait Visitor {
    /// Called when entering a key (before its values and subkeys). `path` is relative to
    /// the root, backslash-separated, "" for the root.
    ///
    /// # Errors
    /// An error aborts the walk.
    fn enter_key(&mut self, key: &Key<'_>, path: &str) -> Result<()>;
    /// Called for each value of the key just entered.
    ///
    /// # Errors
    /// An error aborts the walk.
    fn value(&mut self, key: &Key<'_>, value: &Value<'_>) -> Result<()>;
    /// Called after all subkeys were visited.
    ///
    /// # Errors
    /// An error aborts the walk.
    fn leave_key(&mut self, _key: &Key<'_>, _path: &str) -> Result<()> {
        Ok(())
    }
}

impl Hive {
    /// Depth-first walk of the whole tree, subkeys in stored (sorted) order.
    /// Limited to depth 512 and to as many keys as the hive bins could hold, so cycles
    /// and shared subtrees in a hostile hive end with [`HiveError::Limit`].
    ///
    /// # Errors
    /// Corruption, limits, or an error returned by the visitor.
    pub fn walk<V: Visitor>(&self, v: &mut V) -> Result<()> {
        let root = self.root()?;
        let mut budget = (self.hbins_end / 80) + 16;
        let mut path = String::new();
        self.walk_key(root, v, 0, &mut budget, &mut path)
    }

    /// Walks the subtree under `key`; `path` is what the visitor sees for it.
    ///
    /// # Errors
    /// As [`Hive::walk`].
    pub fn walk_from<V: Visitor>(&self, key: Key<'_>, path: &str, v: &mut V) -> Result<()> {
        let mut budget = (self.hbins_end / 80) + 16;
        let mut p = path.to_string();
        self.walk_key(key, v, 0, &mut budget, &mut p)
    }

    fn walk_key<V: Visitor>(
        &self,
        key: Key<'_>,
        v: &mut V,
        depth: usize,
        budget: &mut usize,
        path: &mut String,
    ) -> Result<()> {
        if depth > limits::MAX_DEPTH {
            return Err(HiveError::Limit {
                what: "key depth over 512 (cycle?)",
                cell: key.offset(),
            });
        }
        if *budget == 0 {
            return Err(HiveError::Limit {
                what: "more keys than the hive can hold (cycle or shared subtree)",
                cell: key.offset(),
            });
        }
        *budget -= 1;
        v.enter_key(&key, path)?;
        for val in key.values()? {
            let val = val?;
            v.value(&key, &val)?;
        }
        let plen = path.len();
        for sk in key.subkeys()? {
            let sk = sk?;
            if !path.is_empty() || depth > 0 {
                path.push('\\');
            }
            let n = sk.name_ref();
            if n.is_compressed() {
                path.extend(n.raw().iter().map(|&b| b as char));
            } else {
                path.push_str(&n.to_string_lossy());
            }
            self.walk_key(sk, v, depth + 1, budget, path)?;
            path.truncate(plen);
        }
        v.leave_key(&key, path)
    }
}
