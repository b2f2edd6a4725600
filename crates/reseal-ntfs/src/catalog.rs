//! The catalog: one sequential pass over the MFT that keeps, for every file, what the
//! whole-volume questions of an offline generalize ask — its names and parents, whether it is a
//! folder, its file attributes (EFS), its `$Secure` id and whether it holds a legacy
//! `$SECURITY_DESCRIPTOR`. Paths, descriptor users, encrypted files and SID-named entries then
//! come from memory instead of a directory walk (a read of every folder's index and of every
//! entry's record) or another pass over the MFT each.
//!
//! What it holds is the volume at the time of the pass: a write made after it (a rename, a new
//! file) is not in it. It is compact — one 32-byte slot per MFT record and the names in one
//! string — so a 700k-record volume costs some 30 MB.

use std::collections::BTreeMap;

use crate::attribute::{FILE_NAME, SECURITY_DESCRIPTOR, STANDARD_INFORMATION};
use crate::error::{Error, Offset, Result};
use crate::layout::file_name::{self, FileName};
use crate::layout::standard_information::{self as si_layout, StandardInformation};
use crate::record::{Record, FLAG_DIRECTORY};
use crate::volume::{Volume, ROOT};
use reseal_disk::Device;

/// `FILE_ATTRIBUTE_ENCRYPTED` in `$STANDARD_INFORMATION`: the file's data is EFS-encrypted.
pub const ATTRIBUTE_ENCRYPTED: u32 = 0x4000;

/// Namespace of a `$FILE_NAME` that is only the DOS (8.3) alias of another name.
const NAMESPACE_DOS: u8 = 2;

/// Longest parent chain [`Catalog::path_of`] follows (as [`Volume::path_of`]).
const MAX_CHAIN: usize = 1024;

/// Low 48 bits of an MFT reference: the record number.
const RECORD_MASK: u64 = 0xFFFF_FFFF_FFFF;

const PRESENT: u8 = 1;
const DIRECTORY: u8 = 2;
const LEGACY: u8 = 4;
const NAMED: u8 = 8;
/// The slot's name is a DOS alias (the record has no other name): it makes paths, as in
/// [`Volume::path_of`], but is not listed by [`Catalog::links`] (directory listings skip it).
const DOS_NAME: u8 = 16;

/// A name in the arena: the parent folder and the byte range of the name.
#[derive(Debug, Clone, Copy, Default)]
struct NameRef {
    parent: u64,
    start: u32,
    len: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    name: NameRef,
    attributes: u32,
    security_id: u32,
    flags: u8,
}

/// What the catalog keeps of one file (an in-use base MFT record), apart from its names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// A folder (record flag 0x02).
    pub is_dir: bool,
    /// File attributes from `$STANDARD_INFORMATION` (0 when it has none).
    pub attributes: u32,
    /// Security id from `$STANDARD_INFORMATION` (0: none, or the short NTFS 1.2 form).
    pub security_id: u32,
    /// Holds a legacy (NTFS 1.x) `$SECURITY_DESCRIPTOR` attribute.
    pub legacy_descriptor: bool,
}

/// One name of a file, as a directory listing shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link<'a> {
    /// MFT record number of the file.
    pub record: u64,
    /// MFT record number of the folder the name is in.
    pub parent: u64,
    /// The name (POSIX or Win32 namespace; DOS aliases are not listed).
    pub name: &'a str,
}

/// Every in-use base record of a volume, from one pass over the MFT ([`Volume::catalog`]).
#[derive(Clone, Default)]
pub struct Catalog {
    /// By record number.
    slots: Vec<Slot>,
    names: String,
    /// Names beyond each record's first (hard links, names in extension records), by record.
    more: Vec<(u64, NameRef)>,
    unreadable: Vec<(u64, String)>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("files", &self.len())
            .field("name_bytes", &self.names.len())
            .field("more_names", &self.more.len())
            .field("unreadable", &self.unreadable.len())
            .finish()
    }
}

impl Catalog {
    /// How many files (in-use base records) it holds.
    pub fn len(&self) -> usize {
        self.slots.iter().filter(|s| s.flags & PRESENT != 0).count()
    }

    /// It holds no file.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, num: u64) -> Option<&Slot> {
        let s = self.slots.get(usize::try_from(num).ok()?)?;
        (s.flags & PRESENT != 0).then_some(s)
    }

    fn name(&self, n: &NameRef) -> &str {
        let start = n.start as usize;
        &self.names[start..start + n.len as usize]
    }

    /// The entry of record `num`, if it is an in-use base record that parsed.
    pub fn entry(&self, num: u64) -> Option<Entry> {
        self.slot(num).map(|s| Entry {
            is_dir: s.flags & DIRECTORY != 0,
            attributes: s.attributes,
            security_id: s.security_id,
            legacy_descriptor: s.flags & LEGACY != 0,
        })
    }

    /// Every entry, by record number.
    pub fn entries(&self) -> impl Iterator<Item = (u64, Entry)> + '_ {
        (0..self.slots.len() as u64).filter_map(|n| self.entry(n).map(|e| (n, e)))
    }

    /// Every name of every file, as the directory listings of the volume hold them (DOS
    /// aliases and the root's own "." left out): by record number, each record's names in
    /// `$FILE_NAME` order.
    pub fn links(&self) -> impl Iterator<Item = Link<'_>> + '_ {
        let mut more = self.more.iter().peekable();
        (0..self.slots.len() as u64).flat_map(move |record| {
            let mut out = Vec::new();
            if let Some(s) = self.slot(record) {
                if s.flags & NAMED != 0 && s.flags & DOS_NAME == 0 && record != ROOT {
                    out.push(Link {
                        record,
                        parent: s.name.parent,
                        name: self.name(&s.name),
                    });
                }
            }
            while let Some((_, n)) = more.next_if(|(r, _)| *r == record) {
                out.push(Link {
                    record,
                    parent: n.parent,
                    name: self.name(n),
                });
            }
            out
        })
    }

    /// Records marked in use that did not read or parse, with the reason: what they hold is
    /// not in the catalog.
    pub fn unreadable(&self) -> &[(u64, String)] {
        &self.unreadable
    }

    /// The path (`/`-separated, from the root, no leading `/`) of record `num` through the
    /// first name of each record up the chain (a Win32 or POSIX name before a DOS alias);
    /// `None` when a record on the way is not in the catalog, has no name, or the chain does
    /// not reach the root within 1024 steps. The path [`Volume::path_of`] gives, without
    /// reading a record.
    pub fn path_of(&self, num: u64) -> Option<String> {
        let mut parts: Vec<&str> = Vec::new();
        let mut cur = num;
        for _ in 0..MAX_CHAIN {
            if cur == ROOT {
                parts.reverse();
                return Some(parts.join("/"));
            }
            let s = self.slot(cur)?;
            if s.flags & NAMED == 0 {
                return None;
            }
            parts.push(self.name(&s.name));
            cur = s.name.parent;
        }
        None
    }

    /// The path of the folder `parent` joined with `name` (`None` as [`Catalog::path_of`]).
    pub fn path_in(&self, parent: u64, name: &str) -> Option<String> {
        let dir = self.path_of(parent)?;
        Some(if dir.is_empty() {
            name.to_string()
        } else {
            format!("{dir}/{name}")
        })
    }

    /// For every security id files name: how many name it and the lowest such record (what
    /// [`Volume::security_id_users`] gives).
    pub fn security_id_users(&self) -> BTreeMap<u32, (usize, u64)> {
        let mut out = BTreeMap::new();
        for (num, e) in self.entries() {
            if e.security_id != 0 {
                out.entry(e.security_id)
                    .and_modify(|u: &mut (usize, u64)| u.0 += 1)
                    .or_insert((1, num));
            }
        }
        out
    }

    fn push_name(&mut self, parent: u64, units: &[u16]) -> NameRef {
        let start = self.names.len();
        self.names
            .extend(char::decode_utf16(units.iter().copied()).map(|c| c.unwrap_or('\u{FFFD}')));
        NameRef {
            parent,
            start: start as u32,
            len: (self.names.len() - start) as u32,
        }
    }

    /// Add what record `r` holds: a base record's slot, or an extension record's names.
    fn add(&mut self, r: &Record) -> Result<()> {
        if !r.in_use() {
            return Ok(());
        }
        let base = r.base_ref() & RECORD_MASK;
        let is_extension = r.base_ref() != 0;
        let mut slot = Slot {
            flags: PRESENT,
            ..Slot::default()
        };
        if r.flags() & FLAG_DIRECTORY != 0 {
            slot.flags |= DIRECTORY;
        }
        let mut dos = None;
        for a in r.attrs()? {
            match a.ty {
                STANDARD_INFORMATION if !a.nonres && !is_extension => {
                    let si = StandardInformation::read(r.value(&a));
                    slot.attributes = si.file_attributes.get();
                    if a.value_len >= si_layout::SECURITY_ID_END {
                        slot.security_id = si.security_id.get();
                    }
                }
                FILE_NAME if !a.nonres => {
                    let v = r.value(&a);
                    let (units, space) = file_name::name(v).ok_or_else(|| {
                        Error::corrupt(
                            "$FILE_NAME",
                            Some(r.num),
                            Offset::Whole,
                            "shorter than its header",
                        )
                    })?;
                    let parent = FileName::view(v).map_or(0, FileName::parent_record);
                    if space == NAMESPACE_DOS {
                        if dos.is_none() && !is_extension {
                            dos = Some(self.push_name(parent, &units));
                        }
                        continue;
                    }
                    let n = self.push_name(parent, &units);
                    if is_extension {
                        self.more.push((base, n));
                    } else if slot.flags & NAMED == 0 {
                        slot.name = n;
                        slot.flags |= NAMED;
                    } else {
                        self.more.push((r.num, n));
                    }
                }
                SECURITY_DESCRIPTOR if !is_extension => slot.flags |= LEGACY,
                _ => {}
            }
        }
        if is_extension {
            return Ok(());
        }
        if slot.flags & NAMED == 0 {
            if let Some(n) = dos {
                slot.name = n;
                slot.flags |= NAMED | DOS_NAME;
            }
        }
        let i = usize::try_from(r.num).map_err(|_| {
            Error::corrupt(
                "MFT record header",
                Some(r.num),
                Offset::Whole,
                "record number too large",
            )
        })?;
        if self.slots.len() <= i {
            self.slots.resize(i + 1, Slot::default());
        }
        self.slots[i] = slot;
        Ok(())
    }

    /// After the pass: names of extension records sorted under their base, names whose base
    /// is not a file dropped, and a base with no name of its own given its first such name.
    fn finish(&mut self) {
        let more = std::mem::take(&mut self.more);
        let mut kept: Vec<(u64, NameRef)> = more
            .into_iter()
            .filter(|(r, _)| self.slot(*r).is_some())
            .collect();
        kept.sort_by_key(|(r, _)| *r);
        let mut out = Vec::with_capacity(kept.len());
        for (r, n) in kept {
            let s = &mut self.slots[r as usize];
            if s.flags & DOS_NAME != 0 || s.flags & NAMED == 0 {
                s.name = n;
                s.flags = (s.flags | NAMED) & !DOS_NAME;
            } else {
                out.push((r, n));
            }
        }
        self.more = out;
    }
}

impl<D: Device> Volume<D> {
    /// One pass over the MFT ([`Volume::scan_records`]) into a [`Catalog`].
    ///
    /// Records that fail to read or parse are listed in [`Catalog::unreadable`] (when the MFT
    /// bitmap marks them in use) rather than failing the pass.
    pub fn catalog(&self) -> Catalog {
        let mut c = Catalog::default();
        self.scan_records(|num, r| {
            if let Err(e) = r.and_then(|r| c.add(&r)) {
                if self.record_claims_in_use(num) {
                    c.unreadable.push((num, e.to_string()));
                }
            }
        });
        c.finish();
        c
    }
}
