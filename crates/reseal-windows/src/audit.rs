//! `audit`: every place on an NTFS volume where a SID (by default the install's machine SID,
//! which covers its account SIDs) still lives, by category.
//!
//! The volume is read once, sequentially, in large chunks (cost linear in the volume size; no
//! per-file seeks), and every occurrence of the SID in binary form (`01 nn 00 00 00 00 00 05 15
//! 00 00 00 …`), as ASCII text and as UTF-16LE text (`S-1-5-21-…` or `s-1-5-21-…`, on whole-SID
//! boundaries, with the RID that follows when there is one) is found. Each hit is then named
//! through the volume's cluster-owner map ([`reseal_ntfs::extent_map`]): a stream of a file, a
//! directory index, `$Secure`, `$Quota`, `$LogFile`, an MFT record's attribute (file names,
//! legacy descriptors, resident data) or slack, cluster slack after a file's data, or a free
//! cluster. Hits in a registry hive (any file that starts with `regf`) are named down to the cell
//! ([`reseal_hive::CellMap`]): key or value name, value data, class name, descriptor, slack of an
//! allocated cell, free cell; hits in a hive's `.LOG1`/`.LOG2`/`.LOG` are log hits.

use std::collections::{BTreeMap, HashMap};

use reseal_disk::partition::{PartitionTable, Slice};
use reseal_disk::{Device, Image};
use reseal_hive::{CellMap, Hive, Owner, Region};
use reseal_ntfs::extent_map::{ExtentMap, RecordRegion, VolumeRegion};
use reseal_security::Sid;
use serde::{Deserialize, Serialize};

use crate::{Error, Refusal, Result};

/// Where a SID was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A registry key's name.
    HiveKeyName,
    /// A registry value's name.
    HiveValueName,
    /// A registry value's data.
    HiveValueData,
    /// A registry key's class name.
    HiveClassName,
    /// A registry security cell (`sk`).
    HiveDescriptor,
    /// The unused tail of an allocated hive cell.
    HiveSlack,
    /// A free hive cell.
    HiveFreeCell,
    /// Elsewhere in a hive file (base block, bin headers, unreferenced cells, unparsable hive).
    HiveOther,
    /// A hive's transaction log (`.LOG1`, `.LOG2`, `.LOG`).
    HiveLog,
    /// `$Secure:$SDS`, the volume's shared security descriptors.
    NtfsSecure,
    /// A legacy per-file `$SECURITY_DESCRIPTOR` attribute.
    NtfsLegacyDescriptor,
    /// `$Extend\$Quota` (`$Q`/`$O` indexes).
    NtfsQuota,
    /// `$LogFile`, NTFS's own journal.
    NtfsLogfile,
    /// Other NTFS metadata (attribute headers, `$BITMAP` attributes, other system files).
    NtfsMetadata,
    /// A file or folder name (`$FILE_NAME`, directory indexes).
    FileName,
    /// A file's contents (any stream).
    FileContent,
    /// Bytes after a file's data in its last cluster.
    FileSlack,
    /// Bytes after the used part of an MFT record.
    MftSlack,
    /// A cluster the bitmap marks free.
    Unallocated,
    /// A cluster the bitmap marks in use that no file owns.
    Unowned,
}

impl Category {
    /// Why reseal leaves a place of this category alone after `generalize`, when it does.
    pub fn residual_reason(self) -> Option<&'static str> {
        Some(match self {
            Category::NtfsLogfile => {
                "NTFS's journal: reseal does not rewrite $LogFile; Windows reuses it from the \
                 start at the next mount of a cleanly unmounted volume"
            }
            Category::FileContent => {
                "contents of files reseal does not own (text logs, application data); only \
                 hives and task files are rewritten"
            }
            Category::Unallocated | Category::Unowned => {
                "free clusters: old contents of files that were truncated or deleted before \
                 reseal ran, or freed by it"
            }
            Category::FileSlack | Category::MftSlack => {
                "slack after the data of a file or MFT record: no reader sees it"
            }
            _ => return None,
        })
    }
}

/// How the SID was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// The binary SID structure.
    Binary,
    /// ASCII / UTF-8 text.
    Ascii,
    /// UTF-16LE text.
    Utf16le,
}

/// One place a SID lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    /// What kind of place.
    pub category: Category,
    /// Path of the file (or hive) on the volume, `/`-separated from the root; `None` for free
    /// clusters and unowned ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Registry key (below the hive's root), for hive places.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Registry value name, for value places.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Byte offset in the file (hive file, stream) when there is one, else on the volume.
    pub offset: u64,
    /// Byte offset on the volume.
    pub volume_offset: u64,
    /// How it is written.
    pub encoding: Encoding,
    /// The SID found (with its RID when one follows).
    pub sid: String,
}

/// What [`audit`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Partition audited (0: the whole disk is the volume).
    pub partition: u32,
    /// The SIDs looked for.
    pub sids: Vec<String>,
    /// Every place, in volume order.
    pub places: Vec<Place>,
    /// Places per category.
    pub counts: BTreeMap<Category, usize>,
    /// Bytes of the volume read.
    pub bytes_scanned: u64,
}

impl AuditReport {
    /// Places whose category has no documented reason to stay (see
    /// [`Category::residual_reason`]).
    pub fn unexplained(&self) -> impl Iterator<Item = &Place> {
        self.places
            .iter()
            .filter(|p| p.category.residual_reason().is_none())
    }
}

/// What to look for and where.
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    /// SIDs to find (a domain SID also finds every SID below it). Empty: the machine SID of
    /// the Windows install.
    pub sids: Vec<Sid>,
    /// Partition (default: the one Windows install, or the only NTFS volume when SIDs are given).
    pub partition: Option<u32>,
}

/// One pattern: the SID's fixed part in one encoding.
struct Needle {
    bytes: Vec<u8>,
    encoding: Encoding,
    sid: usize,
    /// Number of sub-authorities of the SID looked for.
    subs: usize,
}

fn needles(sids: &[Sid]) -> Vec<Needle> {
    let mut out = Vec::new();
    for (i, s) in sids.iter().enumerate() {
        let b = s.to_bytes();
        // Authority + sub-authorities; revision and count are checked at the hit.
        out.push(Needle {
            bytes: b[2..].to_vec(),
            encoding: Encoding::Binary,
            sid: i,
            subs: s.sub_authorities().len(),
        });
        let text = s.to_string();
        let tail = &text[1..]; // "-1-5-21-…": the `S` may be either case.
        out.push(Needle {
            bytes: tail.as_bytes().to_vec(),
            encoding: Encoding::Ascii,
            sid: i,
            subs: s.sub_authorities().len(),
        });
        out.push(Needle {
            bytes: tail.encode_utf16().flat_map(u16::to_le_bytes).collect(),
            encoding: Encoding::Utf16le,
            sid: i,
            subs: s.sub_authorities().len(),
        });
    }
    out
}

/// Checks a hit of `n` at `pos` in `buf` (the needle's start) and returns the SID's first byte
/// and its full text, or `None` when it is not this SID (text: the `S` before it, no digit
/// right after it, which would make it another domain). What precedes the `S` is not checked:
/// an audit reports every copy of the SID, and binary structures put any byte there (a 45-unit
/// `$FILE_NAME` length reads as `-` in UTF-16).
fn confirm(buf: &[u8], pos: usize, n: &Needle, base: &Sid) -> Option<(usize, String)> {
    let end = pos + n.bytes.len();
    match n.encoding {
        Encoding::Binary => {
            let start = pos.checked_sub(2)?;
            let (rev, count) = (buf[start], usize::from(buf[start + 1]));
            if rev != 1 || count < n.subs || count > 15 {
                return None;
            }
            let mut subs = base.sub_authorities().to_vec();
            for k in 0..count - n.subs {
                let o = end + 4 * k;
                let v = buf.get(o..o + 4)?;
                subs.push(u32::from_le_bytes([v[0], v[1], v[2], v[3]]));
            }
            let s = Sid::new(base.authority(), &subs).ok()?;
            Some((start, s.to_string()))
        }
        Encoding::Ascii => {
            let start = pos.checked_sub(1)?;
            if !matches!(buf[start], b'S' | b's') {
                return None;
            }
            let mut text = base.to_string();
            let mut at = end;
            if buf.get(at).is_some_and(u8::is_ascii_digit) {
                return None;
            }
            while buf.get(at) == Some(&b'-') && buf.get(at + 1).is_some_and(u8::is_ascii_digit) {
                let mut e = at + 1;
                while buf.get(e).is_some_and(u8::is_ascii_digit) {
                    e += 1;
                }
                text.push_str(std::str::from_utf8(&buf[at..e]).ok()?);
                at = e;
            }
            Some((start, text))
        }
        Encoding::Utf16le => {
            let start = pos.checked_sub(2)?;
            let unit = |o: usize| buf.get(o..o + 2).map(|u| u16::from_le_bytes([u[0], u[1]]));
            if !matches!(unit(start)?, 0x53 | 0x73) {
                return None;
            }
            let digit = |u: Option<u16>| u.is_some_and(|u| (0x30..=0x39).contains(&u));
            if digit(unit(end)) {
                return None;
            }
            let mut text = base.to_string();
            let mut at = end;
            while unit(at) == Some(0x2D) && digit(unit(at + 2)) {
                text.push('-');
                at += 2;
                while digit(unit(at)) {
                    text.push(char::from(buf[at]));
                    at += 2;
                }
            }
            Some((start, text))
        }
    }
}

/// A hit on the volume before it is named.
struct Hit {
    at: u64,
    encoding: Encoding,
    sid: String,
}

const CHUNK: usize = 4 << 20;

fn scan_volume(
    total: u64,
    read: &mut dyn FnMut(u64, &mut [u8]) -> Result<()>,
    sids: &[Sid],
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(Vec<Hit>, u64)> {
    let ns = needles(sids);
    let finders: Vec<memchr::memmem::Finder<'_>> = ns
        .iter()
        .map(|n| memchr::memmem::Finder::new(&n.bytes))
        .collect();
    // Enough overlap for the longest needle, its prefix and a long RID tail.
    let overlap = ns.iter().map(|n| n.bytes.len()).max().unwrap_or(0) + 96;
    let mut hits = Vec::new();
    let mut buf = vec![0u8; CHUNK + overlap];
    let mut pos = 0u64;
    while pos < total {
        let want = usize::try_from((total - pos).min((CHUNK + overlap) as u64)).unwrap_or(CHUNK);
        let b = &mut buf[..want];
        read(pos, b)?;
        // A hit is reported by the chunk its first byte lies in (the overlap only completes
        // hits that start near the end of the chunk's own part).
        let last = pos + want as u64 >= total;
        let own = if last { want } else { want.min(CHUNK) };
        for (n, f) in ns.iter().zip(&finders) {
            for p in f.find_iter(b) {
                if let Some((start, text)) = confirm(b, p, n, &sids[n.sid]) {
                    if start < own {
                        hits.push(Hit {
                            at: pos + start as u64,
                            encoding: n.encoding,
                            sid: text,
                        });
                    }
                }
            }
        }
        pos += own as u64;
        progress(pos.min(total), total);
    }
    hits.sort_by_key(|h| (h.at, h.encoding));
    hits.dedup_by_key(|h| (h.at, h.encoding));
    Ok((hits, total))
}

/// Length in bytes of a confirmed hit.
fn hit_len(encoding: Encoding, text: &str) -> usize {
    match encoding {
        Encoding::Binary => 8 + 4 * (text.matches('-').count().saturating_sub(2)),
        Encoding::Ascii => text.len(),
        Encoding::Utf16le => 2 * text.len(),
    }
}

/// MFT records and index blocks carry an update sequence: on disk, the last two bytes of each
/// 512-byte stride hold the sequence number and the real bytes sit in the record header, so a
/// SID across a stride end is not in the raw bytes. Every such unit is read, its fixups removed,
/// and scanned again; only hits that cross a stride end are kept (the others were found raw).
fn scan_fixup_units<D: Device>(
    vol: &reseal_ntfs::Volume<D>,
    map: &ExtentMap,
    sids: &[Sid],
    partition: u32,
) -> Result<Vec<Hit>> {
    let bs = vol.boot_sector();
    let cluster = u64::from(bs.cluster_size);
    let ns = needles(sids);
    let mut out = Vec::new();
    for e in map.extents() {
        let unit = match e.ty {
            reseal_ntfs::attribute::DATA if e.record == 0 && e.name.is_empty() => {
                u64::from(bs.record_size)
            }
            reseal_ntfs::attribute::INDEX_ALLOCATION => u64::from(bs.index_block_size),
            _ => continue,
        };
        if unit == 0 {
            continue;
        }
        // Run values come from the volume: checked, a hostile run is skipped, not a panic.
        let (Some(start), Some(bytes), Some(vbyte)) = (
            e.lcn.checked_mul(cluster),
            e.len.checked_mul(cluster),
            e.vcn.checked_mul(cluster),
        ) else {
            continue;
        };
        // Units start at multiples of the unit size in the stream.
        let Some(first) = vbyte.div_ceil(unit).checked_mul(unit).map(|f| f - vbyte) else {
            continue;
        };
        let mut off = first;
        let mut buf = vec![0u8; usize::try_from(unit).unwrap_or(4096)];
        while off + unit <= bytes {
            vol.read_device(start + off, &mut buf)
                .map_err(|source| Error::Volume {
                    partition,
                    what: "reading MFT records and index blocks",
                    source,
                })?;
            if reseal_ntfs::record::remove_fixups(&mut buf, "audit unit", None).is_ok() {
                for n in &ns {
                    for p in memchr::memmem::find_iter(&buf, &n.bytes) {
                        let Some((at, text)) = confirm(&buf, p, n, &sids[n.sid]) else {
                            continue;
                        };
                        let end = at + hit_len(n.encoding, &text);
                        let crosses = (at / 512..=end.saturating_sub(1) / 512).any(|k| {
                            let stride_end = k * 512 + 510;
                            at < stride_end + 2 && end > stride_end
                        });
                        if crosses {
                            out.push(Hit {
                                at: start + off + at as u64,
                                encoding: n.encoding,
                                sid: text,
                            });
                        }
                    }
                }
            }
            off += unit;
        }
    }
    Ok(out)
}

/// What a file is, for naming hits in it.
enum FileKind {
    Hive(Box<CellMap>),
    HiveUnparsable,
    HiveLog,
    Other,
}

struct Namer<'v, D: Device> {
    vol: &'v reseal_ntfs::Volume<D>,
    map: ExtentMap,
    paths: HashMap<u64, Option<String>>,
    kinds: HashMap<u64, FileKind>,
    quota: Option<u64>,
    record_size: u64,
}

const LOGFILE: u64 = 2;
const SECURE: u64 = 9;
const I30: [u16; 4] = [0x24, 0x49, 0x33, 0x30];

impl<D: Device> Namer<'_, D> {
    fn path(&mut self, record: u64) -> Option<String> {
        let vol = self.vol;
        self.paths
            .entry(record)
            .or_insert_with(|| vol.path_of(record).ok())
            .clone()
    }

    fn kind(&mut self, record: u64, path: &str) -> &FileKind {
        let vol = self.vol;
        self.kinds.entry(record).or_insert_with(|| {
            let up = path.to_ascii_uppercase();
            if up.ends_with(".LOG1") || up.ends_with(".LOG2") || up.ends_with(".LOG") {
                let stem = &path[..path.rfind('.').unwrap_or(path.len())];
                let mut head = [0u8; 4];
                if vol.read_file_at(stem, 0, &mut head).is_ok() && &head == b"regf" {
                    return FileKind::HiveLog;
                }
            }
            let mut head = [0u8; 4];
            if vol.read_file_at(path, 0, &mut head).is_err() || &head != b"regf" {
                return FileKind::Other;
            }
            match vol
                .read_file(path)
                .ok()
                .and_then(|b| Hive::from_bytes(b).ok())
                .and_then(|h| CellMap::new(&h).ok())
            {
                Some(m) => FileKind::Hive(Box::new(m)),
                None => FileKind::HiveUnparsable,
            }
        })
    }

    fn name(&mut self, hit: Hit) -> Place {
        let mut place = Place {
            category: Category::Unallocated,
            path: None,
            key: None,
            value: None,
            offset: hit.at,
            volume_offset: hit.at,
            encoding: hit.encoding,
            sid: hit.sid,
        };
        match self.map.locate(hit.at) {
            VolumeRegion::Free => place.category = Category::Unallocated,
            VolumeRegion::Unowned => place.category = Category::Unowned,
            VolumeRegion::Stream {
                extent,
                offset,
                slack,
            } => {
                place.offset = offset;
                if extent.record == 0 && extent.ty == reseal_ntfs::attribute::DATA {
                    self.name_in_mft(offset, &mut place);
                    return place;
                }
                place.path = self.path(extent.record).map(|p| format!("/{p}"));
                if slack {
                    place.category = Category::FileSlack;
                    return place;
                }
                place.category = match (extent.record, extent.ty) {
                    (LOGFILE, _) => Category::NtfsLogfile,
                    (SECURE, _) => Category::NtfsSecure,
                    (r, _) if Some(r) == self.quota => Category::NtfsQuota,
                    (_, reseal_ntfs::attribute::INDEX_ALLOCATION) if extent.name == I30 => {
                        Category::FileName
                    }
                    (r, reseal_ntfs::attribute::DATA) if r >= 16 || r == 5 => {
                        if !extent.name.is_empty() {
                            if let Some(p) = &mut place.path {
                                p.push(':');
                                p.push_str(&String::from_utf16_lossy(&extent.name));
                            }
                            Category::FileContent
                        } else {
                            let rel = place.path.clone().unwrap_or_default();
                            self.name_in_file(extent.record, &rel, offset, &mut place)
                        }
                    }
                    _ => Category::NtfsMetadata,
                };
            }
        }
        place
    }

    fn name_in_file(
        &mut self,
        record: u64,
        path: &str,
        offset: u64,
        place: &mut Place,
    ) -> Category {
        let rel = path.trim_start_matches('/').to_string();
        match self.kind(record, &rel) {
            FileKind::Other => Category::FileContent,
            FileKind::HiveLog => Category::HiveLog,
            FileKind::HiveUnparsable => Category::HiveOther,
            FileKind::Hive(m) => {
                let region = m.locate(usize::try_from(offset).unwrap_or(usize::MAX));
                let (cat, owner) = match region {
                    Region::FreeCell => (Category::HiveFreeCell, None),
                    Region::Slack(o) => (Category::HiveSlack, Some(o)),
                    Region::Used(o) => {
                        let c = match &o {
                            Owner::KeyNode { name: true, .. } => Category::HiveKeyName,
                            Owner::ValueNode { name: true, .. } => Category::HiveValueName,
                            Owner::ValueData { .. } => Category::HiveValueData,
                            Owner::ClassName { .. } => Category::HiveClassName,
                            Owner::Descriptor => Category::HiveDescriptor,
                            _ => Category::HiveOther,
                        };
                        (c, Some(o))
                    }
                    _ => (Category::HiveOther, None),
                };
                match owner {
                    Some(Owner::KeyNode { key, .. }) | Some(Owner::ClassName { key }) => {
                        place.key = Some(key);
                    }
                    Some(Owner::ValueNode { key, value, .. })
                    | Some(Owner::ValueData { key, value, .. }) => {
                        place.key = Some(key);
                        place.value = Some(value);
                    }
                    _ => {}
                }
                cat
            }
        }
    }

    fn name_in_mft(&mut self, offset: u64, place: &mut Place) {
        let num = offset / self.record_size;
        let rel = usize::try_from(offset % self.record_size).unwrap_or(0);
        let base = self
            .vol
            .read_record(num)
            .ok()
            .map(|r| match r.base_ref() & 0x0000_FFFF_FFFF_FFFF {
                0 => num,
                b => b,
            })
            .unwrap_or(num);
        place.path = self.path(base).map(|p| format!("/{p}"));
        place.category = match self.vol.record_region(num, rel) {
            Ok(RecordRegion::Slack) => Category::MftSlack,
            Ok(RecordRegion::Value { ty, name, offset }) => {
                if Some(base) == self.quota {
                    Category::NtfsQuota
                } else {
                    match ty {
                        reseal_ntfs::attribute::FILE_NAME | reseal_ntfs::attribute::INDEX_ROOT => {
                            Category::FileName
                        }
                        reseal_ntfs::attribute::SECURITY_DESCRIPTOR => {
                            Category::NtfsLegacyDescriptor
                        }
                        reseal_ntfs::attribute::DATA => {
                            place.offset = offset;
                            if !name.is_empty() {
                                if let Some(p) = &mut place.path {
                                    p.push(':');
                                    p.push_str(&String::from_utf16_lossy(&name));
                                }
                            }
                            Category::FileContent
                        }
                        _ => Category::NtfsMetadata,
                    }
                }
            }
            _ => Category::NtfsMetadata,
        };
    }
}

/// Find every place the SIDs live on one NTFS volume of `image`. `progress(done, total)` gets
/// bytes read.
///
/// # Errors
/// No Windows install (when no SID is given) or no such partition; I/O and NTFS errors.
pub fn audit(
    image: &mut Image,
    opts: &AuditOptions,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<AuditReport> {
    let (partition, sids) = if opts.sids.is_empty() {
        let installs = crate::discover(image)?;
        let mut c: Vec<_> = installs
            .into_iter()
            .filter(|w| opts.partition.is_none_or(|p| p == w.partition))
            .collect();
        let w = match c.len() {
            1 => c.remove(0),
            0 => return Err(Error::Refused(Refusal::NoInstall)),
            _ => {
                return Err(Error::Refused(Refusal::ManyInstalls {
                    partitions: c.iter().map(|w| w.partition).collect(),
                }))
            }
        };
        let text = w
            .machine_sid
            .clone()
            .ok_or(Error::Refused(Refusal::NoMachineSid))?;
        let sid: Sid = text.parse().map_err(|e| Error::Invalid {
            what: "machine SID",
            reason: format!("{text}: {e}"),
        })?;
        (w.partition, vec![sid])
    } else {
        (opts.partition.unwrap_or(0), opts.sids.clone())
    };
    let (start, len) = if partition == 0 {
        match PartitionTable::read(&*image) {
            Ok(t) if !t.partitions.is_empty() && opts.partition.is_none() => {
                let ntfs: Vec<_> = t
                    .partitions
                    .iter()
                    .filter(|p| !p.kind.is_extended())
                    .collect();
                if ntfs.len() == 1 {
                    (ntfs[0].start, ntfs[0].len)
                } else {
                    return Err(Error::Invalid {
                        what: "partition",
                        reason: format!(
                            "the image has {} partitions: name one with --partition",
                            ntfs.len()
                        ),
                    });
                }
            }
            _ => (0, image.len()),
        }
    } else {
        crate::partition_window(&*image, partition)?
    };
    let slice = Slice::new(&mut *image, start, len)?;
    let vol = reseal_ntfs::Volume::open(slice).map_err(|source| Error::Volume {
        partition,
        what: "opening the volume",
        source,
    })?;
    let map = vol.extent_map().map_err(|source| Error::Volume {
        partition,
        what: "mapping clusters to files",
        source,
    })?;
    let quota = vol.lookup("$Extend/$Quota").ok();
    let record_size = u64::from(vol.boot_sector().record_size);
    let (hits, scanned) = scan_volume(
        vol.device_len(),
        &mut |pos, buf| {
            vol.read_device(pos, buf).map_err(|source| Error::Volume {
                partition,
                what: "reading the volume",
                source,
            })
        },
        &sids,
        progress,
    )?;
    let mut hits = hits;
    hits.extend(scan_fixup_units(&vol, &map, &sids, partition)?);
    hits.sort_by_key(|h| (h.at, h.encoding));
    hits.dedup_by_key(|h| (h.at, h.encoding));
    let mut namer = Namer {
        vol: &vol,
        map,
        paths: HashMap::new(),
        kinds: HashMap::new(),
        quota,
        record_size,
    };
    let places: Vec<Place> = hits.into_iter().map(|h| namer.name(h)).collect();
    let mut counts = BTreeMap::new();
    for p in &places {
        *counts.entry(p.category).or_insert(0) += 1;
    }
    Ok(AuditReport {
        partition,
        sids: sids.iter().map(ToString::to_string).collect(),
        places,
        counts,
        bytes_scanned: scanned,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid() -> Sid {
        "S-1-5-21-1111-2222-3333".parse().unwrap()
    }

    fn hits(buf: &[u8]) -> Vec<(usize, Encoding, String)> {
        let s = [sid()];
        let ns = needles(&s);
        let mut out = Vec::new();
        for n in &ns {
            for p in memchr::memmem::find_iter(buf, &n.bytes) {
                if let Some((at, t)) = confirm(buf, p, n, &s[0]) {
                    out.push((at, n.encoding, t));
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn text_forms_on_whole_sid_boundaries() {
        let b = b"x%5CS-1-5-21-1111-2222-3333-1001-MergedResources";
        assert_eq!(
            hits(b),
            [(
                4,
                Encoding::Ascii,
                "S-1-5-21-1111-2222-3333-1001".to_string()
            )]
        );
        assert_eq!(hits(b"s-1-5-21-1111-2222-3333").len(), 1);
        assert!(hits(b"1S-1-5-21-1111-2222-33334").is_empty());
        assert_eq!(hits(b"-S-1-5-21-1111-2222-3333").len(), 1);
        assert!(hits(b"S-1-5-21-1111-2222-33339").is_empty());
        let u: Vec<u8> = "{S-1-5-21-1111-2222-3333-500}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(
            hits(&u),
            [(
                2,
                Encoding::Utf16le,
                "S-1-5-21-1111-2222-3333-500".to_string()
            )]
        );
    }

    #[test]
    fn binary_form_with_rid() {
        let full = sid().with_rid(1001).unwrap().to_bytes();
        let mut b = vec![0xAA; 7];
        b.extend_from_slice(&full);
        assert_eq!(
            hits(&b),
            [(
                7,
                Encoding::Binary,
                "S-1-5-21-1111-2222-3333-1001".to_string()
            )]
        );
        let mut wrong = full.clone();
        wrong[0] = 2;
        assert!(hits(&wrong).is_empty());
    }
}
