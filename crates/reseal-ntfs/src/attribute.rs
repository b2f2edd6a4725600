//! Attribute headers inside MFT records (resident and non-resident), and builders for new ones.
//! Reference: FORMATS.md C.3.

use crate::data_run::{self, Run};
use crate::error::{Error, Offset, Result};
use crate::layout::attribute::{
    self as layout, AttributeHeader, NonResident, Resident, ALLOCATED_SIZE_OFFSET, COMPRESSED_LEN,
    NON_RESIDENT_LEN, RESIDENT_LEN,
};
use core::mem::offset_of;
use zerocopy::little_endian::{U16, U64};
use zerocopy::IntoBytes;

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
    let c = |o: usize, r: String| {
        Error::corrupt("attribute header", Some(num), Offset::Record(o as u64), r)
    };
    let Some(h) = rec.get(off..).and_then(layout::header) else {
        return Err(c(off, "truncated".into()));
    };
    let ty = h.type_code.get();
    let len = h.length.get() as usize;
    if len < RESIDENT_LEN || len % 8 != 0 || off.checked_add(len).is_none_or(|e| e > rec.len()) {
        return Err(c(
            off + offset_of!(AttributeHeader, length),
            format!("attribute 0x{ty:x} length {len}"),
        ));
    }
    let a = &rec[off..off + len];
    let nonres = h.non_resident != 0;
    let name = match layout::name(a, h) {
        Some(n) => n.iter().map(|u| u.get()).collect(),
        None => {
            return Err(c(
                off + offset_of!(AttributeHeader, name_offset),
                "name outside attribute".into(),
            ))
        }
    };
    let mut at = Attr {
        off,
        len,
        ty,
        nonres,
        name,
        flags: h.flags.get(),
        instance: h.instance.get(),
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
    if let (false, Some(r)) = (nonres, layout::resident(a)) {
        at.value_len = r.value_length.get() as usize;
        at.value_off = usize::from(r.value_offset.get());
        at.indexed = r.indexed_flag;
        if at
            .value_off
            .checked_add(at.value_len)
            .is_none_or(|e| e > len)
        {
            return Err(c(
                off + layout::HEADER_LEN,
                "resident value outside attribute".into(),
            ));
        }
        at.size = at.value_len as u64;
        at.init = at.size;
        at.alloc = at.size;
    } else {
        let Some(n) = layout::non_resident(a) else {
            return Err(c(
                off + offset_of!(AttributeHeader, length),
                "non-resident header too short".into(),
            ));
        };
        at.lowest_vcn = n.lowest_vcn.get();
        at.highest_vcn = n.highest_vcn.get();
        at.mp_off = usize::from(n.runlist_offset.get());
        at.compression_unit = n.compression_unit.get();
        at.alloc = n.allocated_size.get();
        at.size = n.data_size.get();
        at.init = n.initialized_size.get();
        if at.mp_off >= len || at.mp_off < NON_RESIDENT_LEN {
            return Err(c(
                off + layout::HEADER_LEN + offset_of!(NonResident, runlist_offset),
                "mapping pairs outside attribute".into(),
            ));
        }
        if at.lowest_vcn == 0 && (at.size > at.alloc || at.init > at.size) {
            return Err(c(
                off + ALLOCATED_SIZE_OFFSET,
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
                    Offset::Record(self.off as u64),
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
    let name_off = RESIDENT_LEN;
    let value_off = align8(name_off + 2 * name.len());
    let len = align8(value_off + value.len());
    let mut b = Vec::with_capacity(len);
    let h = AttributeHeader {
        type_code: ty.into(),
        length: (len as u32).into(),
        non_resident: 0,
        name_length: name.len() as u8,
        name_offset: (name_off as u16).into(),
        flags: 0.into(),
        instance: 0.into(),
    };
    let r = Resident {
        value_length: (value.len() as u32).into(),
        value_offset: (value_off as u16).into(),
        indexed_flag: indexed,
        reserved: 0,
    };
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(r.as_bytes());
    push_name(&mut b, name);
    b.resize(value_off, 0);
    b.extend_from_slice(value);
    b.resize(len, 0);
    b
}

fn push_name(b: &mut Vec<u8>, name: &[u16]) {
    for c in name {
        b.extend_from_slice(U16::new(*c).as_bytes());
    }
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
    let name_off = if s.compressed.is_some() {
        COMPRESSED_LEN
    } else {
        NON_RESIDENT_LEN
    };
    let mp_off = align8(name_off + 2 * name.len());
    let mp = data_run::encode(runs);
    let len = align8(mp_off + mp.len());
    let highest = runs.last().map(|r| r.vcn + r.len).unwrap_or(0);
    let h = AttributeHeader {
        type_code: ty.into(),
        length: (len as u32).into(),
        non_resident: 1,
        name_length: name.len() as u8,
        name_offset: (if name.is_empty() { mp_off } else { name_off } as u16).into(),
        flags: flags.into(),
        instance: 0.into(),
    };
    let n = NonResident {
        lowest_vcn: 0.into(),
        highest_vcn: highest.wrapping_sub(1).into(),
        runlist_offset: (mp_off as u16).into(),
        compression_unit: 0.into(),
        reserved: [0; 4],
        allocated_size: s.alloc.into(),
        data_size: s.size.into(),
        initialized_size: s.init.into(),
    };
    let mut b = Vec::with_capacity(len);
    b.extend_from_slice(h.as_bytes());
    b.extend_from_slice(n.as_bytes());
    if let Some(c) = s.compressed {
        b.extend_from_slice(U64::new(c).as_bytes());
    }
    push_name(&mut b, name);
    b.resize(mp_off, 0);
    b.extend_from_slice(&mp);
    b.resize(len, 0);
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: u32, nonres: bool) -> Vec<u8> {
        let mut b = vec![0u8; len as usize];
        let h = layout::header_mut(&mut b).unwrap();
        h.type_code = DATA.into();
        h.length = len.into();
        h.non_resident = u8::from(nonres);
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
        layout::header_mut(&mut r).unwrap().length = (!7u32).into();
        assert!(matches!(
            parse(&r, 0, 1),
            Err(Error::Corrupt {
                offset: Offset::Record(4),
                ..
            })
        ));
        // A resident value whose offset + length wraps.
        let mut r = rec.clone();
        let v = layout::resident_mut(&mut r).unwrap();
        v.value_length = u32::MAX.into();
        v.value_offset = u16::MAX.into();
        assert!(matches!(
            parse(&r, 0, 1),
            Err(Error::Corrupt {
                offset: Offset::Record(16),
                ..
            })
        ));
        // A name far outside the attribute.
        let mut r = rec.clone();
        let h = layout::header_mut(&mut r).unwrap();
        h.name_length = 255;
        h.name_offset = u16::MAX.into();
        assert!(matches!(
            parse(&r, 0, 1),
            Err(Error::Corrupt {
                offset: Offset::Record(10),
                ..
            })
        ));
        // A 12-byte tail is too short for a header.
        assert!(parse(&rec[..12], 0, 1).is_err());
    }

    #[test]
    fn runs_of_an_attr_outside_the_record_are_errors() {
        let mut rec = header(72, true);
        layout::non_resident_mut(&mut rec).unwrap().runlist_offset = 64.into();
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
