//! Security descriptors: `$Secure` (`$SDS` stream, `$SII` and `$SDH` indexes) and legacy
//! `$SECURITY_DESCRIPTOR` attributes. Descriptors are opaque self-relative byte buffers here;
//! SDDL lives in `reseal-security`. Reference: FORMATS.md C.5.

use std::collections::HashMap;

use reseal_disk::Device;

use crate::attribute::{self, SECURITY_DESCRIPTOR, STANDARD_INFORMATION};
use crate::error::{Error, Offset, Result};
use crate::layout::index::{IndexEntryHeader, ENTRY_HEADER_LEN};
use crate::layout::record::FileRecordHeader;
use crate::layout::secure::{SdhEntry, SdhKey, SdsEntryHeader, SiiEntry, SiiKey, SDS_HEADER_LEN};
use crate::layout::standard_information::{self as si_layout, StandardInformation};
use crate::record::FLAG_IN_USE;
use crate::volume::{Grow, Volume, SECURE};
use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, IntoBytes};

const BLOCK: u64 = 0x40000;

/// The NTFS security-descriptor hash: for each little-endian u32 word, `h = word + rol(h, 3)`.
pub fn sd_hash(sd: &[u8]) -> u32 {
    <[U32]>::ref_from_prefix_with_elems(sd, sd.len() / 4).map_or(0, |(words, _)| {
        words
            .iter()
            .fold(0u32, |h, w| w.get().wrapping_add(h.rotate_left(3)))
    })
}

fn name(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

/// Entry data of a view index entry (empty when its header or data runs past `e`).
fn entry_data(e: &[u8]) -> &[u8] {
    IndexEntryHeader::view(e)
        .and_then(|h| {
            let (o, l) = h.data();
            e.get(o..o + l)
        })
        .unwrap_or(&[])
}

/// An `$SDS` entry header as found in `$SII`/`$SDH` data.
#[derive(Debug, Clone, Copy)]
struct SdsRef {
    hash: u32,
    id: u32,
    offset: u64,
    length: u32,
}

fn sds_ref(d: &[u8]) -> Option<SdsRef> {
    let (h, _) = SdsEntryHeader::ref_from_prefix(d).ok()?;
    Some(SdsRef {
        hash: h.hash.get(),
        id: h.security_id.get(),
        offset: h.offset.get(),
        length: h.length.get(),
    })
}

fn sds_header(r: &SdsRef) -> SdsEntryHeader {
    SdsEntryHeader {
        hash: r.hash.into(),
        security_id: r.id.into(),
        offset: r.offset.into(),
        length: r.length.into(),
    }
}

fn sii_entry(r: &SdsRef) -> Vec<u8> {
    SiiEntry::new(sds_header(r)).as_bytes().to_vec()
}

fn sdh_entry(r: &SdsRef) -> Vec<u8> {
    SdhEntry::new(sds_header(r)).as_bytes().to_vec()
}

/// (hash, id) of a `$SDH` entry, (0, 0) when it is too short to hold them.
fn sdh_key(e: &[u8]) -> (u32, u32) {
    match e.get(ENTRY_HEADER_LEN..).map(SdhKey::ref_from_prefix) {
        Some(Ok((k, _))) => (k.hash.get(), k.security_id.get()),
        _ => (0, 0),
    }
}

impl<D: Device> Volume<D> {
    fn sii(&self) -> Result<Vec<SdsRef>> {
        let (_, ents) = self.read_index(SECURE, &name("$SII"))?;
        ents.iter()
            .map(|e| {
                sds_ref(entry_data(e)).ok_or_else(|| {
                    Error::corrupt(
                        "$SII entry",
                        Some(SECURE),
                        Offset::Whole,
                        "data shorter than 20 bytes",
                    )
                })
            })
            .collect()
    }

    fn read_sds(&self, r: &SdsRef) -> Result<Vec<u8>> {
        let s = self
            .stream(SECURE, attribute::DATA, &name("$SDS"))?
            .ok_or_else(|| {
                Error::corrupt("$Secure", Some(SECURE), Offset::Whole, "no $SDS stream")
            })?;
        let len = u64::from(r.length);
        if len < 20 || r.offset.checked_add(len).is_none_or(|e| e > s.size) {
            return Err(Error::corrupt(
                "$SDS entry",
                Some(SECURE),
                Offset::Stream(r.offset),
                format!("length {len} outside $SDS"),
            ));
        }
        let mut b = vec![0u8; len as usize];
        self.read_stream(&s, r.offset, &mut b)?;
        let found = sds_ref(&b).map_or(0, |h| h.id);
        if found != r.id {
            return Err(Error::corrupt(
                "$SDS entry",
                Some(SECURE),
                Offset::Stream(r.offset + 4),
                format!("id {found} where $SII says {}", r.id),
            ));
        }
        Ok(b[SDS_HEADER_LEN..].to_vec())
    }

    /// The security descriptor (self-relative bytes) that applies to `path`: through
    /// `$STANDARD_INFORMATION` security_id and `$Secure`, else a legacy `$SECURITY_DESCRIPTOR`.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Corrupt`] for dangling ids or malformed `$Secure`.
    pub fn security_descriptor(&self, path: &str) -> Result<Vec<u8>> {
        let num = self.lookup(path)?;
        self.descriptor_of(num)?.ok_or_else(|| Error::NotFound {
            path: format!("{path} (security descriptor)"),
        })
    }

    /// The descriptor of record `num`, through its security id or a legacy attribute.
    pub(crate) fn descriptor_of(&self, num: u64) -> Result<Option<Vec<u8>>> {
        let info = self.info(num)?;
        if info.security_id != 0 {
            // One descent of the $SII B-tree (keyed by id), not a walk of the whole index: `ls -l`
            // and generalize ask this once per file.
            let id = info.security_id;
            let by_id = |a: &[u8], b: &[u8]| SiiKey::id_of(a).cmp(&SiiKey::id_of(b));
            let missing = || {
                Error::corrupt(
                    "$SII",
                    Some(SECURE),
                    Offset::Whole,
                    format!("no entry for security id {id}"),
                )
            };
            let e = self
                .index_find(SECURE, &name("$SII"), &id.to_le_bytes(), &by_id)?
                .ok_or_else(missing)?;
            let r = sds_ref(entry_data(&e))
                .filter(|r| r.id == id)
                .ok_or_else(missing)?;
            return Ok(Some(self.read_sds(&r)?));
        }
        if self.stream(num, SECURITY_DESCRIPTOR, &[])?.is_some() {
            return Ok(Some(self.read_all(num, SECURITY_DESCRIPTOR, &[])?));
        }
        Ok(None)
    }

    /// The descriptor of `path` as SDDL text.
    ///
    /// # Errors
    /// As [`Volume::security_descriptor`], plus [`Error::Security`] for descriptors SDDL
    /// cannot express.
    pub fn security_sddl(&self, path: &str) -> Result<String> {
        let sd = self.security_descriptor(path)?;
        let e = |source| Error::Security {
            path: path.to_string(),
            source,
        };
        reseal_security::SecurityDescriptor::parse(&sd)
            .map_err(e)?
            .to_sddl()
            .map_err(e)
    }

    /// Set the descriptor of `path` from SDDL text (see [`Volume::set_security`]).
    ///
    /// # Errors
    /// [`Error::Security`] for invalid SDDL; otherwise as [`Volume::set_security`].
    pub fn set_security_sddl(&mut self, path: &str, sddl: &str) -> Result<u32> {
        let e = |source| Error::Security {
            path: path.to_string(),
            source,
        };
        let sd = reseal_security::SecurityDescriptor::from_sddl(sddl)
            .map_err(e)?
            .to_bytes()
            .map_err(e)?;
        self.set_security(path, &sd)
    }

    /// Give `path` the descriptor `sd`: reuse an identical `$Secure` entry (found through
    /// `$SDH`) or append one (both `$SDS` copies, `$SII` and `$SDH` entries). Returns the
    /// security id. A legacy `$SECURITY_DESCRIPTOR` attribute on the file is removed.
    ///
    /// # Errors
    /// [`Error::Invalid`] for a descriptor shorter than 20 bytes; [`Error::Unsupported`] for a
    /// record with no room to extend a 48-byte `$STANDARD_INFORMATION`; others as usual.
    pub fn set_security(&mut self, path: &str, sd: &[u8]) -> Result<u32> {
        if sd.len() < 20 || sd[0] != 1 {
            return Err(Error::Invalid(
                "not a self-relative security descriptor".into(),
            ));
        }
        let num = self.lookup(path)?;
        self.tx(|v| {
            let id = v.find_or_add_sd(sd)?;
            let mut r = v.read_record(num)?;
            let si = r.find(STANDARD_INFORMATION, &[])?.ok_or_else(|| {
                Error::corrupt("$STANDARD_INFORMATION", Some(num), Offset::Whole, "missing")
            })?;
            if si.value_len < si_layout::LEN {
                // A 48-byte $STANDARD_INFORMATION (NTFS 1.x layout, which ntfs-3g still writes
                // for the files it creates): extend it to the NTFS 3.x layout (owner id,
                // security id, quota charged, USN; all zero but the security id).
                let start = si.off + si.value_off;
                let mut value = StandardInformation::read(&r.buf[start..start + si.value_len]);
                value.security_id = id.into();
                r.replace_attr(
                    &si,
                    attribute::build_resident(STANDARD_INFORMATION, &[], value.as_bytes(), 0),
                )?;
            } else {
                let at = si.off + si.value_off;
                let v = r
                    .buf
                    .get_mut(at..)
                    .and_then(StandardInformation::view_mut)
                    .ok_or_else(|| {
                        Error::corrupt(
                            "$STANDARD_INFORMATION",
                            Some(num),
                            Offset::Record(at as u64),
                            "value runs past the record",
                        )
                    })?;
                v.security_id = id.into();
            }
            if let Some(a) = r.find(SECURITY_DESCRIPTOR, &[])? {
                if a.nonres {
                    let mut ext = Vec::new();
                    for run in a.runs(&r.buf, num)? {
                        if let Some(l) = run.lcn {
                            ext.push((l, run.len));
                        }
                    }
                    v.free_clusters(&ext)?;
                }
                r.remove_attr(a.off, a.len)?;
            }
            v.write_record(&mut r)?;
            Ok(id)
        })
    }

    /// Find `sd` in `$Secure` through `$SDH`, or append it. Returns its security id.
    pub(crate) fn find_or_add_sd(&mut self, sd: &[u8]) -> Result<u32> {
        let h = sd_hash(sd);
        let sdh_name = name("$SDH");
        // Descend $SDH by hash only; on a hash hit whose bytes differ, scan that hash's entries.
        let mut probe = h.to_le_bytes().to_vec();
        probe.extend_from_slice(&0u32.to_le_bytes());
        let by_hash = |a: &[u8], b: &[u8]| SdhKey::fields_of(a).0.cmp(&SdhKey::fields_of(b).0);
        if let Some(e) = self.index_find(SECURE, &sdh_name, &probe, &by_hash)? {
            if let Some(r) = sds_ref(entry_data(&e)) {
                if self.read_sds(&r)? == sd {
                    return Ok(r.id);
                }
            }
            let (_, sdh) = self.read_index(SECURE, &sdh_name)?;
            for e in sdh.iter().filter(|e| sdh_key(e).0 == h) {
                if let Some(r) = sds_ref(entry_data(e)) {
                    if self.read_sds(&r)? == sd {
                        return Ok(r.id);
                    }
                }
            }
        }
        let last = match self.index_last(SECURE, &name("$SII"))? {
            Some(e) => Some(sds_ref(entry_data(&e)).ok_or_else(|| {
                Error::corrupt(
                    "$SII entry",
                    Some(SECURE),
                    Offset::Whole,
                    "data shorter than 20 bytes",
                )
            })?),
            None => None,
        };
        // Checked: the last $SII entry is volume data (a hostile id or offset must not wrap).
        let corrupt =
            |reason: String| Error::corrupt("$SII entry", Some(SECURE), Offset::Whole, reason);
        let id = match last {
            None => 0x100,
            Some(r) => {
                r.id.checked_add(1)
                    .ok_or_else(|| corrupt(format!("last security id {:#x}", r.id)))?
            }
        };
        let length = u32::try_from(sd.len())
            .ok()
            .and_then(|l| l.checked_add(20))
            .filter(|l| u64::from(*l) <= BLOCK)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "a descriptor of {} bytes does not fit $SDS",
                    sd.len()
                ))
            })?;
        let mut off = match last {
            None => 0,
            Some(r) => r
                .offset
                .checked_add(u64::from(r.length) + 15)
                .map(|e| e & !15)
                .ok_or_else(|| corrupt(format!("$SDS offset {:#x}", r.offset)))?,
        };
        if (off % BLOCK) + u64::from(length) > BLOCK || (off / BLOCK) % 2 == 1 {
            off = (off / (2 * BLOCK))
                .checked_add(1)
                .and_then(|b| b.checked_mul(2 * BLOCK))
                .ok_or_else(|| corrupt(format!("$SDS offset {off:#x}")))?;
        }
        if off.checked_add(BLOCK + u64::from(length)).is_none() {
            return Err(corrupt(format!("$SDS offset {off:#x}")));
        }
        let r = SdsRef {
            hash: h,
            id,
            offset: off,
            length,
        };
        let mut bytes = sds_header(&r).as_bytes().to_vec();
        bytes.extend_from_slice(sd);
        let sds_name = name("$SDS");
        let s = self
            .stream(SECURE, attribute::DATA, &sds_name)?
            .ok_or_else(|| {
                Error::corrupt("$Secure", Some(SECURE), Offset::Whole, "no $SDS stream")
            })?;
        // The stream ends exactly at the end of the mirror copy, as ntfs-3g leaves it. (After
        // such an append, ntfs-3g's or ours, `ntfssecaudit -a` 1.5.0 reports "Security attribute
        // is too long" in $SDS-2: it reads past the end of the stream. Verified by doing the same
        // append through an ntfs-3g mount: identical stream, identical report.)
        let end = off + BLOCK + u64::from(length);
        if s.size < end {
            self.set_stream_len(
                SECURE,
                attribute::DATA,
                &sds_name,
                end,
                Grow {
                    zero: true,
                    mft_zone: false,
                },
            )?;
        }
        let mut s = self
            .stream(SECURE, attribute::DATA, &sds_name)?
            .ok_or_else(|| {
                Error::corrupt("$Secure", Some(SECURE), Offset::Whole, "no $SDS stream")
            })?;
        self.write_stream_data(&mut s, off, &bytes)?;
        self.write_stream_data(&mut s, off + BLOCK, &bytes)?;
        let by_id = |a: &[u8], b: &[u8]| SiiKey::id_of(a).cmp(&SiiKey::id_of(b));
        let by_hash_id = |a: &[u8], b: &[u8]| SdhKey::fields_of(a).cmp(&SdhKey::fields_of(b));
        self.index_insert(SECURE, &name("$SII"), &sii_entry(&r), &by_id)?;
        self.index_insert(SECURE, &sdh_name, &sdh_entry(&r), &by_hash_id)?;
        Ok(id)
    }

    /// For every security id named by a file: how many base records name it in their
    /// `$STANDARD_INFORMATION`, and the lowest such record (one pass over the MFT).
    ///
    /// # Errors
    /// Corruption of the MFT itself (records that fail to read are skipped).
    pub fn security_id_users(&self) -> Result<std::collections::BTreeMap<u32, (usize, u64)>> {
        let mut out = std::collections::BTreeMap::new();
        let mut failed = None;
        self.scan_records(|num, r| {
            let Ok(r) = r else { return };
            if failed.is_some() || !r.in_use() || r.base_ref() != 0 {
                return;
            }
            match crate::file::si_security_id(&r) {
                Ok(0) => {}
                Ok(id) => {
                    out.entry(id)
                        .and_modify(|e: &mut (usize, u64)| e.0 += 1)
                        .or_insert((1, num));
                }
                Err(e) => failed = Some(e),
            }
        });
        match failed {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Rewrite descriptors in place. `f(where, sd)` returns a replacement of the same length (or
    /// `None` to keep it). Covers every `$Secure` entry (hash updated in both `$SDS` copies and
    /// `$SII`, `$SDH` entries re-keyed and re-sorted) and every legacy `$SECURITY_DESCRIPTOR`
    /// attribute. Returns how many were changed.
    /// All-or-nothing: a length change anywhere aborts before anything is written.
    ///
    /// # Errors
    /// [`Error::Unsupported`] if `f` changes a descriptor's length; corruption errors.
    pub fn rewrite_descriptors(
        &mut self,
        f: impl FnMut(DescriptorRef, &[u8]) -> Option<Vec<u8>>,
    ) -> Result<usize> {
        self.rewrite_descriptors_with(f, |_| {})
    }

    /// [`Volume::rewrite_descriptors`], telling `skipped` about every MFT record marked in use
    /// that could not be read (a legacy descriptor it may hold is not rewritten) instead of
    /// passing over it in silence.
    ///
    /// # Errors
    /// As [`Volume::rewrite_descriptors`].
    pub fn rewrite_descriptors_with(
        &mut self,
        f: impl FnMut(DescriptorRef, &[u8]) -> Option<Vec<u8>>,
        skipped: impl FnMut(Skipped),
    ) -> Result<usize> {
        self.rewrite_descriptors_in(None, f, skipped)
    }

    /// [`Volume::rewrite_descriptors_with`] with the records that hold a legacy
    /// `$SECURITY_DESCRIPTOR` (and the records that did not read) taken from `catalog` instead
    /// of another pass over the MFT. `catalog` must have been made from this volume with no
    /// record added, removed or given a legacy descriptor since.
    ///
    /// # Errors
    /// As [`Volume::rewrite_descriptors`].
    pub fn rewrite_descriptors_from(
        &mut self,
        catalog: &crate::catalog::Catalog,
        f: impl FnMut(DescriptorRef, &[u8]) -> Option<Vec<u8>>,
        skipped: impl FnMut(Skipped),
    ) -> Result<usize> {
        self.rewrite_descriptors_in(Some(catalog), f, skipped)
    }

    fn rewrite_descriptors_in(
        &mut self,
        catalog: Option<&crate::catalog::Catalog>,
        mut f: impl FnMut(DescriptorRef, &[u8]) -> Option<Vec<u8>>,
        mut skipped: impl FnMut(Skipped),
    ) -> Result<usize> {
        let not_rewritten = |e: &dyn std::fmt::Display| {
            format!("{e}; a legacy $SECURITY_DESCRIPTOR it may hold is not rewritten")
        };
        self.tx(|v| {
            let mut changed = 0usize;
            let sii = v.sii()?;
            let sds_name = name("$SDS");
            let mut new_hash: HashMap<u32, u32> = HashMap::new();
            let mut updated: Vec<SdsRef> = Vec::with_capacity(sii.len());
            for r in &sii {
                let sd = v.read_sds(r)?;
                let mut nr = *r;
                if let Some(n) = f(DescriptorRef::Shared(r.id), &sd) {
                    if n.len() != sd.len() {
                        return Err(Error::unsupported(
                            Some(SECURE),
                            format!("descriptor {} would change length ({} -> {}); only same-length rewrites are done in place", r.id, sd.len(), n.len()),
                        ));
                    }
                    if n != sd {
                        nr.hash = sd_hash(&n);
                        let mut bytes = sds_header(&nr).as_bytes().to_vec();
                        bytes.extend_from_slice(&n);
                        let mut s = v
                            .stream(SECURE, attribute::DATA, &sds_name)?
                            .ok_or_else(|| Error::corrupt("$Secure", Some(SECURE), Offset::Whole, "no $SDS stream"))?;
                        v.write_stream_data(&mut s, r.offset, &bytes)?;
                        if r
                            .offset
                            .checked_add(BLOCK + bytes.len() as u64)
                            .is_some_and(|e| e <= s.size)
                        {
                            v.write_stream_data(&mut s, r.offset + BLOCK, &bytes)?;
                        }
                        new_hash.insert(r.id, nr.hash);
                        changed += 1;
                    }
                }
                updated.push(nr);
            }
            if !new_hash.is_empty() {
                let sii_e: Vec<Vec<u8>> = updated.iter().map(sii_entry).collect();
                v.write_index(SECURE, &name("$SII"), &sii_e)?;
                let (_, sdh) = v.read_index(SECURE, &name("$SDH"))?;
                let by_id: HashMap<u32, SdsRef> = updated.iter().map(|r| (r.id, *r)).collect();
                let mut sdh_e: Vec<Vec<u8>> = sdh
                    .into_iter()
                    .map(|e| {
                        let (_, id) = sdh_key(&e);
                        match (new_hash.contains_key(&id), by_id.get(&id)) {
                            (true, Some(r)) => sdh_entry(r),
                            _ => e,
                        }
                    })
                    .collect();
                sdh_e.sort_by_key(|e| sdh_key(e));
                v.write_index(SECURE, &name("$SDH"), &sdh_e)?;
            }
            // Legacy per-file descriptors: find the records that hold one (in the catalog or
            // in one pass), then rewrite them.
            let mut legacy = Vec::new();
            let mut failed = None;
            if let Some(c) = catalog {
                for (num, e) in c.unreadable() {
                    skipped(Skipped {
                        structure: "MFT record",
                        record: Some(*num),
                        reason: not_rewritten(e),
                    });
                }
                legacy.extend(
                    c.entries()
                        .filter(|(_, e)| e.legacy_descriptor)
                        .map(|(num, _)| num),
                );
            } else {
                v.scan_records(|num, r| {
                let r = match r {
                    Ok(r) => r,
                    Err(e) => {
                        if v.record_claims_in_use(num) {
                            skipped(Skipped {
                                structure: "MFT record",
                                record: Some(num),
                                reason: not_rewritten(&e),
                            });
                        }
                        return;
                    }
                };
                if failed.is_some() || !r.in_use() || r.base_ref() != 0 {
                    return;
                }
                match r.find(SECURITY_DESCRIPTOR, &[]) {
                    Ok(Some(_)) => legacy.push(num),
                    Ok(None) => {}
                    Err(e) => failed = Some(e),
                }
            });
            }
            if let Some(e) = failed {
                return Err(e);
            }
            for num in legacy {
                let sd = v.read_all(num, SECURITY_DESCRIPTOR, &[])?;
                if let Some(n) = f(DescriptorRef::File(num), &sd) {
                    if n.len() != sd.len() {
                        return Err(Error::unsupported(Some(num), "legacy $SECURITY_DESCRIPTOR would change length"));
                    }
                    if n != sd {
                        let mut s = v
                            .stream(num, SECURITY_DESCRIPTOR, &[])?
                            .ok_or_else(|| Error::corrupt("$SECURITY_DESCRIPTOR", Some(num), Offset::Whole, "vanished"))?;
                        v.write_stream_data(&mut s, 0, &n)?;
                        changed += 1;
                    }
                }
            }
            Ok(changed)
        })
    }
}

impl<D: Device> Volume<D> {
    /// Whether the raw bytes of MFT record `num` (fixups not applied) carry the `FILE` magic
    /// and the in-use flag: a record that fails to parse but claims to be in use holds data a
    /// whole-volume rewrite cannot reach, where a never-used (zeroed) record holds none.
    pub(crate) fn record_claims_in_use(&self, num: u64) -> bool {
        let rs = u64::from(self.boot.record_size);
        let Some(off) = num.checked_mul(rs) else {
            return false;
        };
        let mut head = [0u8; crate::layout::record::LEN];
        if self
            .read_runs(
                &self.mft_runs,
                off,
                &mut head,
                "$MFT data",
                crate::volume::MFT,
            )
            .is_err()
        {
            return true;
        }
        FileRecordHeader::view(&head).is_some_and(|h| {
            &h.multi_sector.signature == b"FILE" && h.flags.get() & FLAG_IN_USE != 0
        })
    }
}

/// Something a whole-volume rewrite could not reach, reported instead of passed over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The structure, e.g. "MFT record", "$Q entry".
    pub structure: &'static str,
    /// The MFT record concerned, if any.
    pub record: Option<u64>,
    /// Why, and what stays unchanged.
    pub reason: String,
}

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.record {
            Some(r) => write!(f, "{} {r}: {}", self.structure, self.reason),
            None => write!(f, "{}: {}", self.structure, self.reason),
        }
    }
}

/// Where a descriptor passed to [`Volume::rewrite_descriptors`] lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DescriptorRef {
    /// A `$Secure` entry (security id), shared by every file whose `$STANDARD_INFORMATION`
    /// names it.
    Shared(u32),
    /// The legacy `$SECURITY_DESCRIPTOR` attribute of this MFT record.
    File(u64),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_definition() {
        assert_eq!(sd_hash(&[1, 0, 0, 0]), 1);
        assert_eq!(sd_hash(&[1, 0, 0, 0, 2, 0, 0, 0, 9]), 2 + (1u32 << 3));
    }
}
