//! `CLAIM_SECURITY_ATTRIBUTE_RELATIVE_V1` (MS-DTYP 2.4.10.1), the body of
//! SYSTEM_RESOURCE_ATTRIBUTE_ACE.
//!
//! Layout: `u32 name offset, u16 value type, u16 reserved, u32 flags, u32 value count,
//! u32 value offsets[count]`; all offsets relative to the start of the structure. Values:
//! 0x0001 INT64 (`i64`), 0x0002 UINT64 (`u64`), 0x0003 STRING (offset of a NUL-terminated
//! UTF-16 string), 0x0004 FQBN (`{u64 version, u32 name offset}`), 0x0005 SID and 0x0010
//! OCTET_STRING (`{u32 length, bytes}`), 0x0006 BOOLEAN (`u64`).

use std::ops::Range;

use crate::error::{Error, Result};
use crate::layout::claim::{
    ClaimAttributeRelative, HEADER_SIZE, TYPE_BOOLEAN, TYPE_FQBN, TYPE_INT64, TYPE_OCTET_STRING,
    TYPE_SID, TYPE_STRING, TYPE_UINT64,
};
use crate::layout::read;
use crate::sid::Sid;
use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::IntoBytes;

/// One claim value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClaimValue {
    /// CLAIM_SECURITY_ATTRIBUTE_TYPE_INT64 (1), SDDL `TI`.
    Int64(i64),
    /// CLAIM_SECURITY_ATTRIBUTE_TYPE_UINT64 (2), SDDL `TU`.
    Uint64(u64),
    /// CLAIM_SECURITY_ATTRIBUTE_TYPE_STRING (3), SDDL `TS`.
    String(String),
    /// CLAIM_SECURITY_ATTRIBUTE_TYPE_FQBN (4) (no SDDL form).
    Fqbn {
        /// Version.
        version: u64,
        /// Name.
        name: String,
    },
    /// CLAIM_SECURITY_ATTRIBUTE_TYPE_SID (5), SDDL `TD`: octet string holding a binary SID.
    Sid(Vec<u8>),
    /// CLAIM_SECURITY_ATTRIBUTE_TYPE_BOOLEAN (6), SDDL `TB`.
    Boolean(u64),
    /// CLAIM_SECURITY_ATTRIBUTE_TYPE_OCTET_STRING (0x10), SDDL `TX`.
    Octets(Vec<u8>),
}

/// A decoded claim attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClaimAttribute {
    /// Attribute name.
    pub name: String,
    /// Value type code (1-6, 0x10).
    pub value_type: u16,
    /// Reserved word.
    pub reserved: u16,
    /// Flags (SDDL prints them as hex).
    pub flags: u32,
    /// Values, all of `value_type`.
    pub values: Vec<ClaimValue>,
}

fn cstr16(b: &[u8], off: usize) -> Result<String> {
    let mut units = Vec::new();
    let mut p = off;
    loop {
        let u = read::<U16>(b, p)
            .map(|u| u.get())
            .ok_or_else(|| Error::truncated("claim string", off, p + 2 - off, b.len()))?;
        if u == 0 {
            break;
        }
        units.push(u);
        p += 2;
    }
    String::from_utf16(&units).map_err(|_| Error::invalid("claim string", off, "invalid UTF-16"))
}

fn octets(b: &[u8], off: usize) -> Result<(Range<usize>, &[u8])> {
    let n = read::<U32>(b, off)
        .ok_or_else(|| Error::truncated("claim octet string", off, 4, b.len()))?
        .get() as usize;
    let r = off + 4
        ..(off + 4)
            .checked_add(n)
            .filter(|&e| e <= b.len())
            .ok_or_else(|| {
                Error::truncated("claim octet string", off, n.saturating_add(4), b.len())
            })?;
    let s = &b[r.clone()];
    Ok((r, s))
}

impl ClaimAttribute {
    /// Parse from `b` (offsets relative to `b`; trailing padding is ignored).
    pub fn parse(b: &[u8]) -> Result<Self> {
        Self::parse_inner(b, &mut Vec::new())
    }

    fn parse_inner(b: &[u8], sids: &mut Vec<Range<usize>>) -> Result<Self> {
        let header: ClaimAttributeRelative = read(b, 0)
            .ok_or_else(|| Error::truncated("claim attribute", 0, HEADER_SIZE, b.len()))?;
        let name_off = header.name_offset.get() as usize;
        let value_type = header.value_type.get();
        let reserved = header.reserved.get();
        let flags = header.flags.get();
        let count = header.value_count.get() as usize;
        if count > b.len() / 4 {
            return Err(Error::invalid(
                "claim value count",
                12,
                format!("{count} values cannot fit"),
            ));
        }
        let name = cstr16(b, name_off)?;
        let mut values = Vec::with_capacity(count);
        for i in 0..count {
            let at = HEADER_SIZE + 4 * i;
            let off = read::<U32>(b, at)
                .ok_or_else(|| Error::truncated("claim value offset", at, 4, b.len()))?
                .get() as usize;
            let trunc = || Error::truncated("claim value", off, 8, b.len());
            let u64_at = |o: usize| read::<U64>(b, o).map(|v| v.get()).ok_or_else(trunc);
            values.push(match value_type {
                TYPE_INT64 => ClaimValue::Int64(u64_at(off)? as i64),
                TYPE_UINT64 => ClaimValue::Uint64(u64_at(off)?),
                TYPE_STRING => ClaimValue::String(cstr16(b, off)?),
                TYPE_FQBN => {
                    let version = u64_at(off)?;
                    let n = read::<U32>(b, off + 8).ok_or_else(trunc)?.get() as usize;
                    ClaimValue::Fqbn {
                        version,
                        name: cstr16(b, n)?,
                    }
                }
                TYPE_SID => {
                    let (r, s) = octets(b, off)?;
                    if Sid::from_bytes(s).is_ok_and(|sid| sid.len() == s.len()) {
                        sids.push(r);
                    }
                    ClaimValue::Sid(s.to_vec())
                }
                TYPE_BOOLEAN => ClaimValue::Boolean(u64_at(off)?),
                TYPE_OCTET_STRING => ClaimValue::Octets(octets(b, off)?.1.to_vec()),
                t => {
                    return Err(Error::invalid(
                        "claim value type",
                        4,
                        format!("unknown type {t:#x}"),
                    ))
                }
            });
        }
        Ok(ClaimAttribute {
            name,
            value_type,
            reserved,
            flags,
            values,
        })
    }

    /// Encode: header, value offsets, name, then the values; zero-padded to a multiple of 4.
    pub fn encode(&self) -> Vec<u8> {
        let utf16z = |s: &str| -> Vec<u8> {
            s.encode_utf16()
                .chain([0])
                .flat_map(u16::to_le_bytes)
                .collect()
        };
        let head = HEADER_SIZE + 4 * self.values.len();
        let mut out = vec![0u8; head];
        let name_off = out.len() as u32;
        out.extend(utf16z(&self.name));
        let mut offs = Vec::new();
        for v in &self.values {
            offs.push(out.len() as u32);
            match v {
                ClaimValue::Int64(x) => out.extend_from_slice(&x.to_le_bytes()),
                ClaimValue::Uint64(x) | ClaimValue::Boolean(x) => {
                    out.extend_from_slice(&x.to_le_bytes())
                }
                ClaimValue::String(s) => out.extend(utf16z(s)),
                ClaimValue::Fqbn { version, name } => {
                    let at = out.len();
                    out.extend_from_slice(&version.to_le_bytes());
                    let n = (at + 12) as u32;
                    out.extend_from_slice(&n.to_le_bytes());
                    out.extend(utf16z(name));
                }
                ClaimValue::Sid(b) | ClaimValue::Octets(b) => {
                    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
                    out.extend_from_slice(b);
                }
            }
        }
        let header = ClaimAttributeRelative {
            name_offset: name_off.into(),
            value_type: self.value_type.into(),
            reserved: self.reserved.into(),
            flags: self.flags.into(),
            value_count: (self.values.len() as u32).into(),
        };
        out[..HEADER_SIZE].copy_from_slice(header.as_bytes());
        for (i, o) in offs.iter().enumerate() {
            let at = HEADER_SIZE + 4 * i;
            out[at..at + 4].copy_from_slice(U32::new(*o).as_bytes());
        }
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }
}

/// Byte ranges (relative to `data`) of SID-typed values that hold a well-formed binary SID.
pub fn sid_ranges(data: &[u8]) -> Result<Vec<Range<usize>>> {
    let mut sids = Vec::new();
    ClaimAttribute::parse_inner(data, &mut sids)?;
    Ok(sids)
}

/// Map SID values in place (same length) or by re-encoding. Malformed data is left alone.
pub(crate) fn map_sids_in_data(
    data: &mut Vec<u8>,
    f: &mut dyn FnMut(&Sid) -> Option<Sid>,
) -> usize {
    let mut ranges = Vec::new();
    let Ok(mut attr) = ClaimAttribute::parse_inner(data, &mut ranges) else {
        return 0;
    };
    let mut n = 0;
    let mut reencode = false;
    let mut ri = ranges.into_iter();
    for v in &mut attr.values {
        let ClaimValue::Sid(bytes) = v else { continue };
        let Ok(sid) = Sid::from_bytes(bytes) else {
            continue;
        };
        if sid.len() != bytes.len() {
            continue;
        }
        let Some(r) = ri.next() else { break };
        if let Some(new) = f(&sid) {
            if new != sid {
                n += 1;
                let nb = new.to_bytes();
                if nb.len() == r.len() {
                    data[r].copy_from_slice(&nb);
                } else {
                    reencode = true;
                }
                *bytes = nb;
            }
        }
    }
    if reencode {
        *data = attr.encode();
    }
    n
}
