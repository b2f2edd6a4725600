//! MFT records ("FILE") and multi-sector update-sequence fixups (also used by INDX blocks).
//! Reference: FORMATS.md C.2 and C.3.

use crate::attribute::{self, Attr};
use crate::error::{Error, Result};

/// Fixup stride: always 512 bytes, whatever the sector size.
pub const STRIDE: usize = 512;

pub(crate) fn le16(b: &[u8], o: usize) -> u16 {
    u16::from_le_bytes([b[o], b[o + 1]])
}
pub(crate) fn le32(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}
pub(crate) fn le64(b: &[u8], o: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(a)
}
pub(crate) fn put16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn put32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
pub(crate) fn put64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

/// Check and remove the update-sequence fixups of a multi-sector record in place.
///
/// # Errors
/// [`Error::Corrupt`] (structure `structure`) on a bad array or a torn write.
pub fn remove_fixups(buf: &mut [u8], structure: &'static str, record: Option<u64>) -> Result<()> {
    let (ofs, count) = usa(buf, structure, record)?;
    let usn = le16(buf, ofs);
    for i in 1..count {
        let end = i * STRIDE - 2;
        if le16(buf, end) != usn {
            return Err(Error::corrupt(
                structure,
                record,
                end as u64,
                "update sequence mismatch (torn write)",
            ));
        }
        let saved = le16(buf, ofs + 2 * i);
        put16(buf, end, saved);
    }
    Ok(())
}

fn usa(buf: &[u8], structure: &'static str, record: Option<u64>) -> Result<(usize, usize)> {
    if buf.len() < STRIDE || buf.len() % STRIDE != 0 {
        return Err(Error::corrupt(
            structure,
            record,
            0,
            "size is not a multiple of 512",
        ));
    }
    let ofs = usize::from(le16(buf, 4));
    let count = usize::from(le16(buf, 6));
    if count != 1 + buf.len() / STRIDE {
        return Err(Error::corrupt(
            structure,
            record,
            6,
            format!("update sequence count {count}"),
        ));
    }
    if ofs % 2 != 0 || ofs < 8 || ofs + 2 * count > STRIDE - 2 {
        return Err(Error::corrupt(
            structure,
            record,
            4,
            format!("update sequence offset {ofs:#x}"),
        ));
    }
    Ok((ofs, count))
}

/// Apply fixups for writing: bump the update sequence number (skipping 0 and 0xFFFF), save the
/// last u16 of every 512-byte block and put the USN there. `buf` is left in on-disk form.
///
/// # Errors
/// [`Error::Corrupt`] if the update sequence array is malformed.
pub fn apply_fixups(buf: &mut [u8], structure: &'static str, record: Option<u64>) -> Result<()> {
    let (ofs, count) = usa(buf, structure, record)?;
    let mut usn = le16(buf, ofs).wrapping_add(1);
    if usn == 0 || usn == 0xFFFF {
        usn = 1;
    }
    put16(buf, ofs, usn);
    for i in 1..count {
        let end = i * STRIDE - 2;
        let v = le16(buf, end);
        put16(buf, ofs + 2 * i, v);
        put16(buf, end, usn);
    }
    Ok(())
}

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
        let c = |o: u64, r: String| Error::corrupt("MFT record header", Some(self.num), o, r);
        if b.len() < 64 {
            return Err(c(0, "too short".into()));
        }
        if &b[0..4] != b"FILE" {
            return Err(c(0, "signature is not FILE".into()));
        }
        let used = le32(b, 24) as usize;
        let alloc = le32(b, 28) as usize;
        if alloc != b.len() {
            return Err(c(
                28,
                format!("bytes allocated {alloc} != record size {}", b.len()),
            ));
        }
        if used > alloc || used < 0x38 {
            return Err(c(24, format!("bytes in use {used}")));
        }
        let first = usize::from(le16(b, 20));
        if first % 8 != 0 || first < 0x2A || first + 4 > used {
            return Err(c(20, format!("first attribute offset {first:#x}")));
        }
        self.attrs()?;
        Ok(())
    }

    /// Header flags (in use, directory...).
    pub fn flags(&self) -> u16 {
        le16(&self.buf, 22)
    }
    /// True if the record is in use.
    pub fn in_use(&self) -> bool {
        self.flags() & FLAG_IN_USE != 0
    }
    /// Sequence number.
    pub fn sequence(&self) -> u16 {
        le16(&self.buf, 16)
    }
    /// Base record reference (0 for a base record).
    pub fn base_ref(&self) -> u64 {
        le64(&self.buf, 32)
    }
    /// Bytes in use.
    pub fn used(&self) -> usize {
        le32(&self.buf, 24) as usize
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
        let mut off = usize::from(le16(b, 20));
        let mut out = Vec::new();
        loop {
            if off + 4 > used {
                return Err(Error::corrupt(
                    "attribute header",
                    Some(self.num),
                    off as u64,
                    "no end marker",
                ));
            }
            if le32(b, off) == 0xFFFF_FFFF {
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

    fn end_marker_off(&self) -> Result<usize> {
        Ok(match self.attrs()?.last() {
            Some(a) => a.off + a.len,
            None => usize::from(le16(&self.buf, 20)),
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
                off as u64,
                format!("attribute of {len} bytes outside the {used} bytes in use"),
            ));
        };
        self.buf.copy_within(end..used, off);
        for x in &mut self.buf[used - len..used] {
            *x = 0;
        }
        put32(&mut self.buf, 24, (used - len) as u32);
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
        let ty = le32(&bytes, 0);
        let nl = usize::from(bytes[9]);
        let no = usize::from(le16(&bytes, 10));
        let name: Vec<u16> = (0..nl).map(|i| le16(&bytes, no + 2 * i)).collect();
        let inst = match instance {
            Some(i) => i,
            None => {
                let i = le16(&self.buf, 40);
                put16(&mut self.buf, 40, i.wrapping_add(1));
                i
            }
        };
        put16(&mut bytes, 14, inst);
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
        put32(&mut self.buf, 24, (used + n) as u32);
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
                a.off as u64,
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
        b[0..4].copy_from_slice(b"FILE");
        let count = 1 + size / STRIDE;
        put16(&mut b, 4, 0x30);
        put16(&mut b, 6, count as u16);
        put16(&mut b, 0x30, usn);
        put16(&mut b, 16, seq);
        put16(&mut b, 18, 1);
        let first = (0x30 + 2 * count + 7) & !7;
        put16(&mut b, 20, first as u16);
        put16(&mut b, 22, flags);
        put32(&mut b, 24, (first + 8) as u32);
        put32(&mut b, 28, size as u32);
        put32(&mut b, 44, num as u32);
        put32(&mut b, first, 0xFFFF_FFFF);
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
        for (off, v) in [(24usize, u32::MAX), (24, 0), (28, u32::MAX)] {
            let mut r = rec();
            put32(&mut r.buf, off, v);
            assert!(matches!(
                r.validate(),
                Err(Error::Corrupt { offset, .. }) if offset == off as u64
            ));
        }
        let mut r = rec();
        put16(&mut r.buf, 20, 0xFFF8);
        assert!(matches!(
            r.validate(),
            Err(Error::Corrupt { offset: 20, .. })
        ));
        // Update sequence array: offset and count at their maximum.
        for (off, v) in [(4usize, 0xFFFEu16), (6, 0xFFFF)] {
            let mut b = rec().buf;
            put16(&mut b, off, v);
            assert!(matches!(
                remove_fixups(&mut b, "MFT record", Some(70)),
                Err(Error::Corrupt { offset, .. }) if offset == off as u64
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
        put32(&mut r.buf, 24, 5000);
        assert_eq!(r.free(), 0);
        assert!(r
            .insert_attr(attribute::build_resident(0x40, &[], b"x", 0), None)
            .is_err());
    }
}
