//! Key node ("nk") cells and the subkey lists they point to (lf/lh/li/ri).
//!
//! Reference: FORMATS.md B.3 (msuhanov regf specification; hivex; libregf).

use zerocopy::little_endian::U32;
use zerocopy::FromBytes;

use crate::error::{HiveError, Result};
use crate::hive::{limits, CellOffset, Hive};
use crate::key_security::Sk;
use crate::key_value::Value;
use crate::layout::lists::{
    LfElement, LhElement, LiElement, ListHeader, RiElement, LF_SIGNATURE, LH_SIGNATURE,
    LI_SIGNATURE, RI_SIGNATURE,
};
use crate::layout::nk::{NkHeader, LARGEST_SUBKEY_NAME_LENGTH_MASK, SIGNATURE};
use crate::name::{lh_hash_units, NameRef};

pub use crate::layout::nk::{KEY_COMP_NAME, KEY_HIVE_ENTRY, KEY_NO_DELETE, KEY_SYM_LINK};

/// A key node, borrowed from a [`Hive`].
#[derive(Debug, Clone, Copy)]
pub struct Key<'h> {
    hive: &'h Hive,
    off: CellOffset,
    nk: &'h [u8],
    header: &'h NkHeader,
    name: &'h [u8],
}

impl<'h> Key<'h> {
    pub(crate) fn new(hive: &'h Hive, off: CellOffset) -> Result<Key<'h>> {
        let nk = hive.cell(off, "nk")?;
        let not_nk = || HiveError::corrupt("nk", off, "not a key node (signature or size)");
        let (header, rest) = NkHeader::ref_from_prefix(nk).map_err(|_| not_nk())?;
        if header.signature != SIGNATURE {
            return Err(not_nk());
        }
        let nl = header.key_name_length.get() as usize;
        let Some(name) = rest.get(..nl) else {
            return Err(HiveError::corrupt(
                "nk",
                off,
                format!("name length {nl} runs past the cell"),
            ));
        };
        Ok(Key {
            hive,
            off,
            nk,
            header,
            name,
        })
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

    /// The fixed part of the nk cell, field by field.
    pub fn header(&self) -> &'h NkHeader {
        self.header
    }

    /// nk flags (KEY_* constants).
    pub fn flags(&self) -> u16 {
        self.header.flags.get()
    }

    /// Borrowed name.
    pub fn name_ref(&self) -> NameRef<'h> {
        NameRef::new(self.name, self.flags() & KEY_COMP_NAME != 0)
    }

    /// Decoded name.
    pub fn name(&self) -> String {
        self.name_ref().to_string_lossy()
    }

    /// Last written time (FILETIME, 100 ns since 1601).
    pub fn last_written(&self) -> u64 {
        self.header.last_written_timestamp.get()
    }

    /// Parent key offset as stored.
    pub fn parent_offset(&self) -> CellOffset {
        CellOffset(self.header.parent.get())
    }

    /// Number of subkeys recorded in the nk.
    pub fn subkey_count(&self) -> u32 {
        self.header.number_of_subkeys.get()
    }

    /// Number of values recorded in the nk.
    pub fn value_count(&self) -> u32 {
        self.header.number_of_key_values.get()
    }

    /// Subkey list offset.
    pub fn subkey_list_offset(&self) -> CellOffset {
        CellOffset(self.header.subkeys_list_offset.get())
    }

    /// Value list offset.
    pub fn value_list_offset(&self) -> CellOffset {
        CellOffset(self.header.key_values_list_offset.get())
    }

    /// Security (sk) cell offset.
    pub fn security_offset(&self) -> CellOffset {
        CellOffset(self.header.key_security_offset.get())
    }

    /// Class name cell offset as stored (nil when the key has no class name).
    pub fn class_name_offset(&self) -> CellOffset {
        CellOffset(self.header.class_name_offset.get())
    }

    /// Longest subkey name recorded in the nk, in bytes as UTF-16 (the low 16 bits of the
    /// field; the upper bits hold flags).
    pub fn max_subkey_name_len(&self) -> u32 {
        self.header.largest_subkey_name_length.get() & LARGEST_SUBKEY_NAME_LENGTH_MASK
    }

    /// Raw class name bytes (UTF-16LE), if any.
    ///
    /// # Errors
    /// When the class cell is invalid or shorter than the recorded length.
    pub fn class_name_raw(&self) -> Result<Option<&'h [u8]>> {
        let off = self.class_name_offset();
        let len = self.header.class_name_length.get() as usize;
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
        match <[U32]>::ref_from_prefix_with_elems(cell, n) {
            Ok((list, _)) => Ok(ValueIter {
                hive: self.hive,
                list,
                idx: 0,
                list_off: lo,
            }),
            Err(_) => Err(HiveError::corrupt(
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
    list: &'h [U32],
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
        let off = self.list.get(self.idx)?;
        self.idx += 1;
        Some(Value::new(self.hive, CellOffset(off.get())))
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
    pub(crate) fn parse(sig: [u8; 2]) -> Option<ListKind> {
        match sig {
            LI_SIGNATURE => Some(ListKind::Li),
            LF_SIGNATURE => Some(ListKind::Lf),
            LH_SIGNATURE => Some(ListKind::Lh),
            RI_SIGNATURE => Some(ListKind::Ri),
            _ => None,
        }
    }
    /// Size in bytes of one element.
    pub(crate) fn stride(self) -> usize {
        match self {
            ListKind::Li => core::mem::size_of::<LiElement>(),
            ListKind::Ri => core::mem::size_of::<RiElement>(),
            ListKind::Lf => core::mem::size_of::<LfElement>(),
            ListKind::Lh => core::mem::size_of::<LhElement>(),
        }
    }
    pub(crate) fn signature(self) -> [u8; 2] {
        match self {
            ListKind::Li => LI_SIGNATURE,
            ListKind::Lf => LF_SIGNATURE,
            ListKind::Lh => LH_SIGNATURE,
            ListKind::Ri => RI_SIGNATURE,
        }
    }
}

/// The elements of a subkey list cell, typed by its kind.
#[derive(Debug, Clone, Copy)]
pub(crate) enum ListEntries<'h> {
    Li(&'h [LiElement]),
    Lf(&'h [LfElement]),
    Lh(&'h [LhElement]),
    Ri(&'h [RiElement]),
}

impl<'h> ListEntries<'h> {
    pub(crate) fn kind(&self) -> ListKind {
        match self {
            ListEntries::Li(_) => ListKind::Li,
            ListEntries::Lf(_) => ListKind::Lf,
            ListEntries::Lh(_) => ListKind::Lh,
            ListEntries::Ri(_) => ListKind::Ri,
        }
    }

    /// Number of elements.
    pub(crate) fn len(&self) -> usize {
        match self {
            ListEntries::Li(e) => e.len(),
            ListEntries::Lf(e) => e.len(),
            ListEntries::Lh(e) => e.len(),
            ListEntries::Ri(e) => e.len(),
        }
    }

    /// Bytes the elements take (the cell uses the list header and these).
    pub(crate) fn byte_len(&self) -> usize {
        self.len() * self.kind().stride()
    }

    /// The cell offset of element `i` (a key node, or a leaf for an ri), and for an lh leaf
    /// its name hash.
    pub(crate) fn get(&self, i: usize) -> Option<(CellOffset, Option<u32>)> {
        match self {
            ListEntries::Li(e) => e
                .get(i)
                .map(|e| (CellOffset(e.key_node_offset.get()), None)),
            ListEntries::Lf(e) => e
                .get(i)
                .map(|e| (CellOffset(e.key_node_offset.get()), None)),
            ListEntries::Lh(e) => e
                .get(i)
                .map(|e| (CellOffset(e.key_node_offset.get()), Some(e.name_hash.get()))),
            ListEntries::Ri(e) => e
                .get(i)
                .map(|e| (CellOffset(e.subkeys_list_offset.get()), None)),
        }
    }

    /// The cell offsets of all elements, in stored order.
    pub(crate) fn offsets(self) -> impl Iterator<Item = CellOffset> + 'h {
        (0..self.len()).filter_map(move |i| self.get(i).map(|(o, _)| o))
    }
}

/// Parses a subkey list cell into its typed elements.
pub(crate) fn parse_list(hive: &Hive, off: CellOffset) -> Result<ListEntries<'_>> {
    let c = hive.cell(off, "subkey list")?;
    let Ok((header, rest)) = ListHeader::ref_from_prefix(c) else {
        return Err(HiveError::corrupt("subkey list", off, "cell too small"));
    };
    let kind = ListKind::parse(header.signature).ok_or_else(|| {
        HiveError::corrupt(
            "subkey list",
            off,
            format!("unknown list signature {:02x?}", header.signature),
        )
    })?;
    let n = header.number_of_elements.get() as usize;
    let too_short = || {
        HiveError::corrupt(
            "subkey list",
            off,
            format!("{n} entries do not fit in the cell"),
        )
    };
    Ok(match kind {
        ListKind::Li => ListEntries::Li(
            <[LiElement]>::ref_from_prefix_with_elems(rest, n)
                .map_err(|_| too_short())?
                .0,
        ),
        ListKind::Lf => ListEntries::Lf(
            <[LfElement]>::ref_from_prefix_with_elems(rest, n)
                .map_err(|_| too_short())?
                .0,
        ),
        ListKind::Lh => ListEntries::Lh(
            <[LhElement]>::ref_from_prefix_with_elems(rest, n)
                .map_err(|_| too_short())?
                .0,
        ),
        ListKind::Ri => ListEntries::Ri(
            <[RiElement]>::ref_from_prefix_with_elems(rest, n)
                .map_err(|_| too_short())?
                .0,
        ),
    })
}

/// Iterator over subkeys, flattening ri lists (no allocation).
#[derive(Debug, Clone)]
pub struct SubkeyIter<'h> {
    hive: &'h Hive,
    ri: Option<(&'h [RiElement], usize)>,
    leaf: ListEntries<'h>,
    leaf_idx: usize,
    produced: usize,
    failed: bool,
}

impl<'h> SubkeyIter<'h> {
    pub(crate) fn new(hive: &'h Hive, list: CellOffset, count: u32) -> Result<Self> {
        let mut it = SubkeyIter {
            hive,
            ri: None,
            leaf: ListEntries::Li(&[]),
            leaf_idx: 0,
            produced: 0,
            failed: false,
        };
        if count == 0 {
            return Ok(it);
        }
        match parse_list(hive, list)? {
            ListEntries::Ri(ri) => it.ri = Some((ri, 0)),
            leaf => it.leaf = leaf,
        }
        Ok(it)
    }

    /// Next (offset, lh hash if the leaf is lh).
    pub(crate) fn next_entry(&mut self) -> Option<Result<(CellOffset, Option<u32>)>> {
        if self.failed {
            return None;
        }
        loop {
            if let Some((off, h)) = self.leaf.get(self.leaf_idx) {
                self.leaf_idx += 1;
                self.produced += 1;
                if self.produced > limits::MAX_LIST {
                    self.failed = true;
                    return Some(Err(HiveError::Limit {
                        what: "subkey count",
                        cell: off,
                    }));
                }
                return Some(Ok((off, h)));
            }
            let (ri, idx) = self.ri.as_mut()?;
            let leaf_off = CellOffset(ri.get(*idx)?.subkeys_list_offset.get());
            *idx += 1;
            match parse_list(self.hive, leaf_off) {
                Ok(ListEntries::Ri(_)) => {
                    self.failed = true;
                    return Some(Err(HiveError::corrupt(
                        "ri",
                        leaf_off,
                        "ri list nested inside ri",
                    )));
                }
                Ok(leaf) => {
                    self.leaf = leaf;
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
