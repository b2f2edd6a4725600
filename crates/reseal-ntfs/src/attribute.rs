//! Attribute headers inside MFT records (resident and non-resident), and builders for new ones.
//! Reference: FORMATS.md C.3.

use crate::data_run::{self, Run};
use crate::error::{Error, Result};
use crate::record::{le16, le32, le64, put16, put32, put64};

/// `$STANDARD_INFORMATION`.
pub const STANDARD_INFORMATION: u32 = 0x10;
/// `$ATTRIBUTE_LIST`.
pub const ATTRIBUTE_LIST: u32 = 0x20;
/// `$FILE_NAME`.
pub const FILE_NAME: u32 = 0x30;
/// `$SECURITY_DESCRIPTOR` (legacy, pre-NTFS 3.0).
pub const SECURITY_DESCRIPTOR: u32 = 0x50;
/// `$DATA`.
pub const DATA: u32 = 0x80;
/// `$INDEX_ROOT`.
pub const INDEX_ROOT: u32 = 0x90;
/// `$INDEX_ALLOCATION`.
pub const INDEX_ALLOCATION: u32 = 0xA0;
/// `$BITMAP`.
pub const BITMAP: u32 = 0xB0;

/// Attribute flag: compressed.
pub const FLAG_COMPRESSED: u16 = 0x0001;
/// Attribute flag: encrypted.
pub const FLAG_ENCRYPTED: u16 = 0x4000;
/// Attribute flag: sparse.
pub const FLAG_SPARSE: u16 = 0x8000;

/// A parsed attribute header (values copied out; `off` is its byte offset in the record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attr {
    /// Offset in the record.
    pub off: usize,
    /// Total length.
    pub len: usize,
    /// Attribute type code.
    pub ty: u32,
    /// Non-resident?
    pub nonres: bool,
    /// Name (UTF-16 code units).
    pub name: Vec<u16>,
    /// Flags (compressed/encrypted/sparse).
    pub flags: u16,
    /// Instance number.
    pub instance: u16,
    /// Resident: value offset (from attribute start).
    pub value_off: usize,
    /// Resident: value length.
    pub value_len: usize,
    /// Resident: indexed flag byte.
    pub indexed: u8,
    /// Non-resident: lowest VCN.
    pub lowest_vcn: u64,
    /// Non-resident: highest VCN.
    pub highest_vcn: u64,
    /// Non-resident: mapping pairs offset (from attribute start).
    pub mp_off: usize,
    /// Non-resident: compression unit exponent.
    pub compression_unit: u16,
    /// Non-resident: allocated size.
    pub alloc: u64,
    /// Data size (resident: value length).
    pub size: u64,
    /// Non-resident: initialized size.
    pub init: u64,
}

/// Parse the attribute header at `off` in `rec` (bytes up to bytes-in-use).
///
/// # Errors
/// [`Error::Corrupt`] when any field points outside the attribute or record.
pub fn parse(rec: &[u8], off: usize, num: u64) -> Result<Attr> {
    let c = |o: usize, r: String| Error::corrupt("attribute header", Some(num), o as u64, r);
    if off.checked_add(16).is_none_or(|e| e > rec.len()) {
        return Err(c(off, "truncated".into()));
    }
    let ty = le32(rec, off);
    let len = le32(rec, off + 4) as usize;
    if len < 24 || len % 8 != 0 || off.checked_add(len).is_none_or(|e| e > rec.len()) {
        return Err(c(off + 4, format!("attribute 0x{ty:x} length {len}")));
    }
    let a = &rec[off..off + len];
    let nonres = a[8] != 0;
    let nl = usize::from(a[9]);
    let no = usize::from(le16(a, 10));
    if nl > 0 && no + 2 * nl > len {
        return Err(c(off + 10, "name outside attribute".into()));
    }
    let name = (0..nl).map(|i| le16(a, no + 2 * i)).collect();
    let mut at = Attr {
        off,
        len,
        ty,
        nonres,
        name,
        flags: le16(a, 12),
        instance: le16(a, 14),
        value_off: 0,
        value_len: 0,
        indexed: 0,
        lowest_vcn: 0,
        highest_vcn: 0,
        mp_off: 0,
        compression_unit: 0,
        alloc: 0,
        size: 0,
        init: 0,
    };
    if !nonres {
        at.value_len = le32(a, 16) as usize;
        at.value_off = usize::from(le16(a, 20));
        at.indexed = a[22];
        if at
            .value_off
            .checked_add(at.value_len)
            .is_none_or(|e| e > len)
        {
            return Err(c(off + 16, "resident value outside attribute".into()));
        }
        at.size = at.value_len as u64;
        at.init = at.size;
        at.alloc = at.size;
    } else {
        if len < 64 {
            return Err(c(off + 4, "non-resident header too short".into()));
        }
        at.lowest_vcn = le64(a, 16);
        at.highest_vcn = le64(a, 24);
        at.mp_off = usize::from(le16(a, 32));
        at.compression_unit = le16(a, 34);
        at.alloc = le64(a, 40);
        at.size = le64(a, 48);
        at.init = le64(a, 56);
        if at.mp_off >= len || at.mp_off < 64 {
            return Err(c(off + 32, "mapping pairs outside attribute".into()));
        }
        if at.lowest_vcn == 0 && (at.size > at.alloc || at.init > at.size) {
            return Err(c(
                off + 40,
                "sizes inconsistent (allocated < data or data < initialized)".into(),
            ));
        }
    }
    Ok(at)
}

impl Attr {
    /// Decode this non-resident attribute's runs (`rec` = the record bytes).
    ///
    /// # Errors
    /// [`Error::Corrupt`] on malformed mapping pairs.
    pub fn runs(&self, rec: &[u8], num: u64) -> Result<Vec<Run>> {
        let start = self.off.checked_add(self.mp_off);
        let end = self.off.checked_add(self.len);
        let mp = start
            .zip(end)
            .and_then(|(s, e)| rec.get(s..e))
            .ok_or_else(|| {
                Error::corrupt(
                    "attribute header",
                    Some(num),
                    self.off as u64,
                    format!(
                        "mapping pairs at {:#x}+{:#x} outside the {}-byte record",
                        self.off,
                        self.mp_off,
                        rec.len()
                    ),
                )
            })?;
        data_run::decode(
            mp,
            self.lowest_vcn,
            Some(num),
            (self.off + self.mp_off) as u64,
        )
    }
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// Build a resident attribute (instance set later by the record).
pub fn build_resident(ty: u32, name: &[u16], value: &[u8], indexed: u8) -> Vec<u8> {
    let name_off = 0x18;
    let value_off = align8(name_off + 2 * name.len());
    let len = align8(value_off + value.len());
    let mut b = vec![0u8; len];
    put32(&mut b, 0, ty);
    put32(&mut b, 4, len as u32);
    b[8] = 0;
    b[9] = name.len() as u8;
    put16(&mut b, 10, name_off as u16);
    for (i, c) in name.iter().enumerate() {
        put16(&mut b, name_off + 2 * i, *c);
    }
    put32(&mut b, 16, value.len() as u32);
    put16(&mut b, 20, value_off as u16);
    b[22] = indexed;
    b[value_off..value_off + value.len()].copy_from_slice(value);
    b
}

/// Sizes of a non-resident attribute.
#[derive(Debug, Clone, Copy)]
pub struct NonResSizes {
    /// Allocated bytes.
    pub alloc: u64,
    /// Data size.
    pub size: u64,
    /// Initialized size.
    pub init: u64,
    /// Bytes actually allocated (sparse/compressed attributes only; header grows to 0x48).
    pub compressed: Option<u64>,
}

/// Build a non-resident attribute holding `runs` (starting at VCN 0).
pub fn build_nonresident(
    ty: u32,
    name: &[u16],
    flags: u16,
    runs: &[Run],
    s: NonResSizes,
) -> Vec<u8> {
    let name_off = if s.compressed.is_some() { 0x48 } else { 0x40 };
    let mp_off = align8(name_off + 2 * name.len());
    let mp = data_run::encode(runs);
    let len = align8(mp_off + mp.len());
    let mut b = vec![0u8; len];
    put32(&mut b, 0, ty);
    put32(&mut b, 4, len as u32);
    b[8] = 1;
    b[9] = name.len() as u8;
    put16(
        &mut b,
        10,
        if name.is_empty() {
            mp_off as u16
        } else {
            name_off as u16
        },
    );
    put16(&mut b, 12, flags);
    for (i, c) in name.iter().enumerate() {
        put16(&mut b, name_off + 2 * i, *c);
    }
    let highest = runs.last().map(|r| r.vcn + r.len).unwrap_or(0);
    put64(&mut b, 16, 0);
    put64(&mut b, 24, highest.wrapping_sub(1));
    put16(&mut b, 32, mp_off as u16);
    put64(&mut b, 40, s.alloc);
    put64(&mut b, 48, s.size);
    put64(&mut b, 56, s.init);
    if let Some(c) = s.compressed {
        put64(&mut b, 64, c);
    }
    b[mp_off..mp_off + mp.len()].copy_from_slice(&mp);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u32, nonres: bool) -> Vec<u8> {
        let mut b = vec![0u8; len as usize];
        put32(&mut b, 0, DATA);
        put32(&mut b, 4, len);
        b[8] = u8::from(nonres);
        b
    }

    #[test]
    fn hostile_offsets_and_lengths_are_errors() {
        let rec = header(72, false);
        // An attribute offset at the top of the address space.
        assert!(matches!(
            parse(&rec, usize::MAX - 3, 1),
            Err(Error::Corrupt {
                structure: "attribute header",
                ..
            })
        ));
        // A length that overflows off + len.
        let mut r = rec.clone();
        put32(&mut r, 4, !7u32);
        assert!(matches!(
            parse(&r, 0, 1),
            Err(Error::Corrupt { offset: 4, .. })
        ));
        // A resident value whose offset + length wraps.
        let mut r = rec.clone();
        put32(&mut r, 16, u32::MAX);
        put16(&mut r, 20, u16::MAX);
        assert!(matches!(
            parse(&r, 0, 1),
            Err(Error::Corrupt { offset: 16, .. })
        ));
        // A name far outside the attribute.
        let mut r = rec.clone();
        r[9] = 255;
        put16(&mut r, 10, u16::MAX);
        assert!(matches!(
            parse(&r, 0, 1),
            Err(Error::Corrupt { offset: 10, .. })
        ));
        // A 12-byte tail is too short for a header.
        assert!(parse(&rec[..12], 0, 1).is_err());
    }

    #[test]
    fn runs_of_an_attr_outside_the_record_are_errors() {
        let mut rec = header(72, true);
        put16(&mut rec, 32, 64);
        let a = parse(&rec, 0, 3).unwrap();
        // The same header applied to a shorter buffer, and with a hostile offset.
        assert!(a.runs(&rec[..40], 3).is_err());
        let far = Attr {
            off: usize::MAX - 8,
            ..a.clone()
        };
        assert!(matches!(
            far.runs(&rec, 3),
            Err(Error::Corrupt {
                record: Some(3),
                ..
            })
        ));
    }
}
