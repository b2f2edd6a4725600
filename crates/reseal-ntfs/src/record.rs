//! MFT records ("FILE") and multi-sector update-sequence fixups (also used by INDX blocks).
//! Reference: FORMATS.md C.2 and C.3.

use core::mem::offset_of;

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, IntoBytes};

use crate::attribute::{self, Attr};
use crate::error::{Error, Offset, Result};
use crate::layout;
use crate::layout::multi_sector::{self, MultiSectorHeader};
use crate::layout::record::{FileRecordHeader, END_MARKER};

/// Fixup stride: always 512 bytes, whatever the sector size.
pub const STRIDE: usize = 512;

/// Check and remove the update-sequence fixups of a multi-sector record in place.
///
/// # Errors
/// [`Error::Corrupt`] (structure `structure`) on a bad array or a torn write, located inside
/// the MFT record `record` when that is `Some`, else inside `buf`.
pub fn remove_fixups(buf: &mut [u8], structure: &'static str, record: Option<u64>) -> Result<()> {
    remove_fixups_at(buf, structure, record, Offset::inside(record, 0))
}

/// [`remove_fixups`] for a structure at `base` (e.g. an INDX block at its offset in
/// `$INDEX_ALLOCATION`): error offsets are `base` plus the offset in `buf`.
///
/// # Errors
/// As [`remove_fixups`].
pub fn remove_fixups_at(
    buf: &mut [u8],
    structure: &'static str,
    record: Option<u64>,
    base: Offset,
) -> Result<()> {
    let (usa, blocks) = usa(buf, structure, record, base)?;
    let usn = usa[0];
    for (i, (end, saved)) in blocks.zip(&usa[1..]).enumerate() {
        if *end != usn {
            return Err(Error::corrupt(
                structure,
                record,
                base.plus(((i + 1) * STRIDE - 2) as u64),
                "update sequence mismatch (torn write)",
            ));
        }
        *end = *saved;
    }
    Ok(())
}

/// The update sequence array (number, then one saved u16 per block) and the last u16 of every
/// 512-byte block, as views into `buf`.
fn usa<'a>(
    buf: &'a mut [u8],
    structure: &'static str,
    record: Option<u64>,
    base: Offset,
) -> Result<(&'a mut [U16], impl Iterator<Item = &'a mut U16>)> {
    let c = |o: u64, r: String| Error::corrupt(structure, record, base.plus(o), r);
    if buf.len() < STRIDE || buf.len() % STRIDE != 0 {
        return Err(c(0, "size is not a multiple of 512".into()));
    }
    let h = MultiSectorHeader::ref_from_prefix(&buf[..])
        .map_err(|_| c(0, "too short".into()))?
        .0;
    let ofs = usize::from(h.usa_offset.get());
    let count = usize::from(h.usa_count.get());
    if count != 1 + buf.len() / STRIDE {
        return Err(c(6, format!("update sequence count {count}")));
    }
    if ofs % 2 != 0 || ofs < multi_sector::LEN || ofs + 2 * count > STRIDE - 2 {
        return Err(c(4, format!("update sequence offset {ofs:#x}")));
    }
    // The array lies inside the first block, before its last u16: split there. Each later
    // chunk of the tail starts with the last u16 of a block.
    let (head, tail) = buf.split_at_mut(STRIDE - 2);
    let usa = <[U16]>::mut_from_prefix_with_elems(&mut head[ofs..], count)
        .map_err(|_| c(4, format!("update sequence offset {ofs:#x}")))?
        .0;
    let ends = tail
        .chunks_mut(STRIDE)
        .filter_map(|b| U16::mut_from_prefix(b).ok().map(|(e, _)| e));
    Ok((usa, ends))
}

/// The update sequence number (first entry of the update sequence array) of a multi-sector
/// structure, `None` when the array lies outside `buf`.
pub fn usn(buf: &[u8]) -> Option<u16> {
    let h = MultiSectorHeader::ref_from_prefix(buf).ok()?.0;
    let t = buf.get(usize::from(h.usa_offset.get())..)?;
    Some(U16::ref_from_prefix(t).ok()?.0.get())
}

/// Set the update sequence number of a multi-sector structure (no-op when the array lies
/// outside `buf`).
pub fn set_usn(buf: &mut [u8], usn: u16) {
    let Ok((h, _)) = MultiSectorHeader::ref_from_prefix(buf) else {
        return;
    };
    let o = usize::from(h.usa_offset.get());
    if let Some(t) = buf.get_mut(o..) {
        let _ = U16::new(usn).write_to_prefix(t);
    }
}

/// Apply fixups for writing: bump the update sequence number (skipping 0 and 0xFFFF), save the
/// last u16 of every 512-byte block and put the USN there. `buf` is left in on-disk form.
///
/// # Errors
/// [`Error::Corrupt`] if the update sequence array is malformed.
pub fn apply_fixups(buf: &mut [u8], structure: &'static str, record: Option<u64>) -> Result<()> {
    let (usa, blocks) = usa(buf, structure, record, Offset::inside(record, 0))?;
    let mut usn = usa[0].get().wrapping_add(1);
    if usn == 0 || usn == 0xFFFF {
        usn = 1;
    }
    usa[0] = usn.into();
    for (end, saved) in blocks.zip(&mut usa[1..]) {
        *saved = *end;
        *end = usn.into();
    }
    Ok(())
}

/// Stand-in header for a hand-made record shorter than 48 bytes.
static ZERO_HEADER: FileRecordHeader = FileRecordHeader {
    multi_sector: MultiSectorHeader {
        signature: [0; 4],
        usa_offset: U16::ZERO,
        usa_count: U16::ZERO,
    },
    lsn: U64::ZERO,
    sequence_number: U16::ZERO,
    hard_link_count: U16::ZERO,
    first_attribute_offset: U16::ZERO,
    flags: U16::ZERO,
    bytes_in_use: U32::ZERO,
    bytes_allocated: U32::ZERO,
    base_record: U64::ZERO,
    next_attribute_id: U16::ZERO,
    reserved: U16::ZERO,
    record_number: U32::ZERO,
};

/// Record header flags.
pub const FLAG_IN_USE: u16 = 1;
/// The record is a directory (has `$I30`).
pub const FLAG_DIRECTORY: u16 = 2;

/// An MFT record in memory, fixups removed, header and attribute headers validated.
#[derive(Debug, Clone)]
pub struct Record {
    /// Record number.
    pub num: u64,
    /// The record bytes (without fixups).
    pub buf: Vec<u8>,
}

impl Record {
    /// Validate a record read from disk (fixups already removed).
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the header field or attribute at fault.
    pub fn parse(num: u64, buf: Vec<u8>) -> Result<Record> {
        let r = Record { num, buf };
        r.validate()?;
        Ok(r)
    }

    /// Check the header and walk every attribute header.
    ///
    /// # Errors
    /// As [`Record::parse`].
    pub fn validate(&self) -> Result<()> {
        let b = &self.buf;
        let c = |o: usize, r: String| {
            Error::corrupt(
                "MFT record header",
                Some(self.num),
                Offset::Record(o as u64),
                r,
            )
        };
        let h = match FileRecordHeader::view(b) {
            Some(h) if b.len() >= 64 => h,
            _ => return Err(c(0, "too short".into())),
        };
        if &h.multi_sector.signature != b"FILE" {
            return Err(c(0, "signature is not FILE".into()));
        }
        let used = h.bytes_in_use.get() as usize;
        let alloc = h.bytes_allocated.get() as usize;
        if alloc != b.len() {
            return Err(c(
                offset_of!(FileRecordHeader, bytes_allocated),
                format!("bytes allocated {alloc} != record size {}", b.len()),
            ));
        }
        if used > alloc || used < 0x38 {
            return Err(c(
                offset_of!(FileRecordHeader, bytes_in_use),
                format!("bytes in use {used}"),
            ));
        }
        let first = usize::from(h.first_attribute_offset.get());
        if first % 8 != 0 || first < 0x2A || first + 4 > used {
            return Err(c(
                offset_of!(FileRecordHeader, first_attribute_offset),
                format!("first attribute offset {first:#x}"),
            ));
        }
        self.attrs()?;
        Ok(())
    }

    /// The record header. A buffer shorter than the header (only possible for a `Record` built
    /// by hand, never for one from [`Record::parse`]) reads as all zeros.
    pub fn header(&self) -> &FileRecordHeader {
        FileRecordHeader::view(&self.buf).unwrap_or(&ZERO_HEADER)
    }

    /// The mutable record header.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when the buffer is shorter than the header.
    pub fn header_mut(&mut self) -> Result<&mut FileRecordHeader> {
        let num = self.num;
        FileRecordHeader::view_mut(&mut self.buf).ok_or_else(|| {
            Error::corrupt("MFT record header", Some(num), Offset::Whole, "too short")
        })
    }

    /// Header flags (in use, directory...).
    pub fn flags(&self) -> u16 {
        self.header().flags.get()
    }
    /// True if the record is in use.
    pub fn in_use(&self) -> bool {
        self.flags() & FLAG_IN_USE != 0
    }
    /// Sequence number.
    pub fn sequence(&self) -> u16 {
        self.header().sequence_number.get()
    }
    /// Base record reference (0 for a base record).
    pub fn base_ref(&self) -> u64 {
        self.header().base_record.get()
    }
    /// Bytes in use.
    pub fn used(&self) -> usize {
        self.header().bytes_in_use.get() as usize
    }
    /// The MFT reference of this record (number + sequence).
    pub fn reference(&self) -> u64 {
        self.num | (u64::from(self.sequence()) << 48)
    }

    /// All attributes, in record order.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a malformed attribute header.
    pub fn attrs(&self) -> Result<Vec<Attr>> {
        let b = &self.buf;
        let used = self.used().min(b.len());
        let mut off = usize::from(self.header().first_attribute_offset.get());
        let mut out = Vec::new();
        loop {
            let Some(ty) = b[..used]
                .get(off..)
                .and_then(|t| U32::ref_from_prefix(t).ok())
            else {
                return Err(Error::corrupt(
                    "attribute header",
                    Some(self.num),
                    Offset::Record(off as u64),
                    "no end marker",
                ));
            };
            if ty.0.get() == END_MARKER {
                break;
            }
            let a = attribute::parse(&b[..used], off, self.num)?;
            off += a.len;
            out.push(a);
        }
        Ok(out)
    }

    /// The first attribute of `ty` named `name` (empty = unnamed).
    ///
    /// # Errors
    /// As [`Record::attrs`].
    pub fn find(&self, ty: u32, name: &[u16]) -> Result<Option<Attr>> {
        Ok(self
            .attrs()?
            .into_iter()
            .find(|a| a.ty == ty && a.name == name))
    }

    /// Resident value bytes of `a`.
    pub fn value(&self, a: &Attr) -> &[u8] {
        &self.buf[a.off + a.value_off..a.off + a.value_off + a.value_len]
    }

    /// The bytes of attribute `a` (as found by [`Record::attrs`]), for patching in place.
    ///
    /// # Errors
    /// [`Error::Corrupt`] when `a` lies outside the record (a stale or hostile [`Attr`]).
    pub fn attr_bytes_mut(&mut self, a: &Attr) -> Result<&mut [u8]> {
        let num = self.num;
        a.off
            .checked_add(a.len)
            .and_then(|e| self.buf.get_mut(a.off..e))
            .ok_or_else(|| {
                Error::corrupt(
                    "attribute header",
                    Some(num),
                    Offset::Record(a.off as u64),
                    format!("attribute of {} bytes outside the record", a.len),
                )
            })
    }

    /// Resident value bytes of `a`, for patching in place.
    ///
    /// # Errors
    /// As [`Record::attr_bytes_mut`].
    pub fn value_mut(&mut self, a: &Attr) -> Result<&mut [u8]> {
        let num = self.num;
        let (o, l) = (a.value_off, a.value_len);
        self.attr_bytes_mut(a)?
            .get_mut(o..)
            .and_then(|v| v.get_mut(..l))
            .ok_or_else(|| {
                Error::corrupt(
                    "attribute header",
                    Some(num),
                    Offset::Record((a.off + crate::layout::attribute::HEADER_LEN) as u64),
                    "resident value outside attribute",
                )
            })
    }

    fn end_marker_off(&self) -> Result<usize> {
        Ok(match self.attrs()?.last() {
            Some(a) => a.off + a.len,
            None => usize::from(self.header().first_attribute_offset.get()),
        })
    }

    /// Remove the attribute at byte offset `off` (as found by [`Record::attrs`]).
    ///
    /// # Errors
    /// [`Error::Corrupt`] when `off..off + len` is not inside the record's bytes in use (a
    /// stale or hostile [`Attr`]); nothing is changed then.
    pub fn remove_attr(&mut self, off: usize, len: usize) -> Result<()> {
        let used = self.used();
        let end = off
            .checked_add(len)
            .filter(|&e| e <= used && used <= self.buf.len());
        let Some(end) = end else {
            return Err(Error::corrupt(
                "attribute header",
                Some(self.num),
                Offset::Record(off as u64),
                format!("attribute of {len} bytes outside the {used} bytes in use"),
            ));
        };
        self.buf.copy_within(end..used, off);
        for x in &mut self.buf[used - len..used] {
            *x = 0;
        }
        self.header_mut()?.bytes_in_use = ((used - len) as u32).into();
        Ok(())
    }

    /// Insert an attribute (complete bytes; instance field is set here) at its sorted position.
    /// Returns its offset.
    ///
    /// # Errors
    /// [`Error::Unsupported`] if it does not fit in the record (would need an extension record).
    pub fn insert_attr(&mut self, mut bytes: Vec<u8>, instance: Option<u16>) -> Result<usize> {
        let used = self.used();
        if bytes.len() < 24 {
            return Err(Error::Invalid(format!(
                "an attribute of {} bytes is shorter than its header",
                bytes.len()
            )));
        }
        if used
            .checked_add(bytes.len())
            .is_none_or(|e| e > self.buf.len())
        {
            return Err(Error::unsupported(
                Some(self.num),
                format!(
                    "attribute of {} bytes does not fit in the MFT record ({} of {} bytes used); an attribute list / extension record would be needed",
                    bytes.len(),
                    used,
                    self.buf.len()
                ),
            ));
        }
        let (ty, name): (u32, Vec<u16>) = match layout::attribute::header(&bytes)
            .and_then(|h| Some((h.type_code.get(), layout::attribute::name(&bytes, h)?)))
        {
            Some((ty, n)) => (ty, n.iter().map(|u| u.get()).collect()),
            None => {
                return Err(Error::Invalid(
                    "a new attribute's name lies outside its bytes".into(),
                ))
            }
        };
        let inst = match instance {
            Some(i) => i,
            None => {
                let h = self.header_mut()?;
                let i = h.next_attribute_id.get();
                h.next_attribute_id = i.wrapping_add(1).into();
                i
            }
        };
        if let Some(h) = layout::attribute::header_mut(&mut bytes) {
            h.instance = inst.into();
        }
        let mut pos = self.end_marker_off()?;
        for a in self.attrs()? {
            if a.ty > ty || (a.ty == ty && a.name > name) {
                pos = a.off;
                break;
            }
        }
        let n = bytes.len();
        self.buf.copy_within(pos..used, pos + n);
        self.buf[pos..pos + n].copy_from_slice(&bytes);
        self.header_mut()?.bytes_in_use = ((used + n) as u32).into();
        Ok(pos)
    }

    /// Replace the attribute `a` by `bytes`, keeping its instance number.
    ///
    /// # Errors
    /// [`Error::Unsupported`] if the record would overflow (the record is left unchanged).
    pub fn replace_attr(&mut self, a: &Attr, bytes: Vec<u8>) -> Result<usize> {
        let after = self
            .used()
            .checked_sub(a.len)
            .and_then(|u| u.checked_add(bytes.len()));
        let Some(after) = after else {
            return Err(Error::corrupt(
                "attribute header",
                Some(self.num),
                Offset::Record(a.off as u64),
                format!(
                    "attribute of {} bytes longer than the {} bytes in use",
                    a.len,
                    self.used()
                ),
            ));
        };
        if after > self.buf.len() {
            return Err(Error::unsupported(
                Some(self.num),
                format!(
                    "attribute 0x{:x} would grow to {} bytes and overflow the MFT record; an attribute list / extension record would be needed",
                    a.ty,
                    bytes.len()
                ),
            ));
        }
        self.remove_attr(a.off, a.len)?;
        self.insert_attr(bytes, Some(a.instance))
    }

    /// Free bytes left in the record.
    pub fn free(&self) -> usize {
        self.buf.len().saturating_sub(self.used())
    }

    /// Build a fresh empty base record (no attributes), keeping `seq`/`usn` of the old one.
    pub fn format(num: u64, size: usize, seq: u16, usn: u16, flags: u16) -> Record {
        let mut b = vec![0u8; size];
        let count = 1 + size / STRIDE;
        let usa_offset = layout::record::LEN;
        let first = (usa_offset + 2 * count + 7) & !7;
        let h = FileRecordHeader {
            multi_sector: MultiSectorHeader {
                signature: *b"FILE",
                usa_offset: (usa_offset as u16).into(),
                usa_count: (count as u16).into(),
            },
            lsn: 0.into(),
            sequence_number: seq.into(),
            hard_link_count: 1.into(),
            first_attribute_offset: (first as u16).into(),
            flags: flags.into(),
            bytes_in_use: ((first + 8) as u32).into(),
            bytes_allocated: (size as u32).into(),
            base_record: 0.into(),
            next_attribute_id: 0.into(),
            reserved: 0.into(),
            record_number: (num as u32).into(),
        };
        // A size too small for the header and the end marker gives a record that fails
        // validation (as before, minus the panic).
        let _ = h.write_to_prefix(&mut b);
        if let Some(t) = b.get_mut(usa_offset..) {
            let _ = U16::new(usn).write_to_prefix(t);
        }
        if let Some(t) = b.get_mut(first..) {
            let _ = U32::new(END_MARKER).write_to_prefix(t);
        }
        Record { num, buf: b }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec() -> Record {
        let mut r = Record::format(70, 1024, 1, 1, FLAG_IN_USE);
        r.insert_attr(
            attribute::build_resident(attribute::DATA, &[], b"hello", 0),
            None,
        )
        .unwrap();
        r
    }

    #[test]
    fn hostile_header_fields_are_errors() {
        let in_use = offset_of!(FileRecordHeader, bytes_in_use);
        let alloc = offset_of!(FileRecordHeader, bytes_allocated);
        for (off, v) in [(in_use, u32::MAX), (in_use, 0), (alloc, u32::MAX)] {
            let mut r = rec();
            let h = r.header_mut().unwrap();
            if off == in_use {
                h.bytes_in_use = v.into();
            } else {
                h.bytes_allocated = v.into();
            }
            assert!(matches!(
                r.validate(),
                Err(Error::Corrupt { offset, .. }) if offset == Offset::Record(off as u64)
            ));
        }
        let mut r = rec();
        r.header_mut().unwrap().first_attribute_offset = 0xFFF8.into();
        assert!(matches!(
            r.validate(),
            Err(Error::Corrupt {
                offset: Offset::Record(20),
                ..
            })
        ));
        // Update sequence array: offset and count at their maximum.
        for (off, v) in [(4usize, 0xFFFEu16), (6, 0xFFFF)] {
            let mut b = rec().buf;
            let h = MultiSectorHeader::mut_from_prefix(&mut b).unwrap().0;
            if off == 4 {
                h.usa_offset = v.into();
            } else {
                h.usa_count = v.into();
            }
            assert!(matches!(
                remove_fixups(&mut b, "MFT record", Some(70)),
                Err(Error::Corrupt { offset, .. }) if offset == Offset::Record(off as u64)
            ));
        }
    }

    #[test]
    fn stale_or_hostile_attrs_are_errors() {
        let mut r = rec();
        let a = r.find(attribute::DATA, &[]).unwrap().unwrap();
        let before = r.buf.clone();
        // Past the bytes in use, wrapping around, longer than the record.
        for (off, len) in [(a.off, 4096), (usize::MAX - 4, 16), (a.off, usize::MAX)] {
            assert!(matches!(
                r.remove_attr(off, len),
                Err(Error::Corrupt {
                    record: Some(70),
                    ..
                })
            ));
        }
        let huge = Attr {
            len: usize::MAX,
            ..a.clone()
        };
        assert!(r.replace_attr(&huge, vec![0u8; 24]).is_err());
        assert!(r.insert_attr(vec![0u8; 8], None).is_err());
        assert_eq!(r.buf, before, "a refused change left the record as it was");
        // A record whose bytes-in-use field exceeds its buffer has no free room (no underflow).
        let mut r = rec();
        r.header_mut().unwrap().bytes_in_use = 5000.into();
        assert_eq!(r.free(), 0);
        assert!(r
            .insert_attr(attribute::build_resident(0x40, &[], b"x", 0), None)
            .is_err());
    }
}
