//! Value ("vk") cells, their data (inline, normal cell, "db" big data) and type decoding.
//!
//! Reference: FORMATS.md B.3.

use std::borrow::Cow;

use crate::error::{HiveError, Result};
use crate::hive::{limits, CellOffset, Hive};
use crate::layout::db::{self, DbHeader};
use crate::layout::vk::{VkHeader, DATA_INLINE, MAX_INLINE_DATA, SIGNATURE};
use crate::name::NameRef;
use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, IntoBytes};

/// REG_NONE.
pub const REG_NONE: u32 = 0;
/// REG_SZ.
pub const REG_SZ: u32 = 1;
/// REG_EXPAND_SZ.
pub const REG_EXPAND_SZ: u32 = 2;
/// REG_BINARY.
pub const REG_BINARY: u32 = 3;
/// REG_DWORD (little-endian).
pub const REG_DWORD: u32 = 4;
/// REG_DWORD_BIG_ENDIAN.
pub const REG_DWORD_BIG_ENDIAN: u32 = 5;
/// REG_LINK.
pub const REG_LINK: u32 = 6;
/// REG_MULTI_SZ.
pub const REG_MULTI_SZ: u32 = 7;
/// REG_RESOURCE_LIST.
pub const REG_RESOURCE_LIST: u32 = 8;
/// REG_QWORD.
pub const REG_QWORD: u32 = 11;

pub use crate::layout::vk::VALUE_COMP_NAME;

/// Largest data stored in one cell before "db" big data is used (format 1.4+).
pub const BIG_DATA_SEGMENT: usize = db::MAX_SEGMENT_SIZE;

/// A value, borrowed from a [`Hive`].
#[derive(Debug, Clone, Copy)]
pub struct Value<'h> {
    hive: &'h Hive,
    off: CellOffset,
    header: &'h VkHeader,
    name: &'h [u8],
}

impl<'h> Value<'h> {
    pub(crate) fn new(hive: &'h Hive, off: CellOffset) -> Result<Value<'h>> {
        let vk = hive.cell(off, "vk")?;
        let not_vk = || HiveError::corrupt("vk", off, "not a value (signature or size)");
        let (header, rest) = VkHeader::ref_from_prefix(vk).map_err(|_| not_vk())?;
        if header.signature != SIGNATURE {
            return Err(not_vk());
        }
        let nl = header.name_length.get() as usize;
        let Some(name) = rest.get(..nl) else {
            return Err(HiveError::corrupt(
                "vk",
                off,
                format!("name length {nl} runs past the cell"),
            ));
        };
        Ok(Value {
            hive,
            off,
            header,
            name,
        })
    }

    /// Cell offset of the vk.
    pub fn offset(&self) -> CellOffset {
        self.off
    }

    /// The fixed part of the vk cell, field by field.
    pub fn header(&self) -> &'h VkHeader {
        self.header
    }

    /// vk flags.
    pub fn flags(&self) -> u16 {
        self.header.flags.get()
    }

    /// Borrowed name ("" = default value).
    pub fn name_ref(&self) -> NameRef<'h> {
        NameRef::new(self.name, self.flags() & VALUE_COMP_NAME != 0)
    }

    /// Decoded name ("" = default value).
    pub fn name(&self) -> String {
        self.name_ref().to_string_lossy()
    }

    /// Value type as stored (unknown types are kept, e.g. SAM's RID-as-type).
    pub fn data_type(&self) -> u32 {
        self.header.data_type.get()
    }

    /// Raw size field (bit 31 = inline).
    pub fn raw_size(&self) -> u32 {
        self.header.data_size.get()
    }

    /// Data length in bytes.
    pub fn data_len(&self) -> usize {
        (self.raw_size() & !DATA_INLINE) as usize
    }

    /// Whether the data is stored inline in the vk (size <= 4).
    pub fn is_inline(&self) -> bool {
        self.raw_size() & DATA_INLINE != 0
    }

    /// Raw data offset field (or inline data).
    pub fn raw_data_offset(&self) -> u32 {
        self.header.data_offset.get()
    }

    /// The data: borrowed for inline and single-cell data, owned when assembled from
    /// "db" big-data segments.
    ///
    /// # Errors
    /// When the data cell(s) are invalid or shorter than the recorded size.
    pub fn data(&self) -> Result<Cow<'h, [u8]>> {
        let len = self.data_len();
        if self.is_inline() {
            if len > MAX_INLINE_DATA {
                return Err(HiveError::corrupt(
                    "vk",
                    self.off,
                    format!("inline data length {len} > 4"),
                ));
            }
            return Ok(Cow::Borrowed(&self.header.data_offset.as_bytes()[..len]));
        }
        if len == 0 {
            return Ok(Cow::Borrowed(&[]));
        }
        if len > limits::MAX_VALUE {
            return Err(HiveError::Limit {
                what: "value data size",
                cell: self.off,
            });
        }
        let doff = CellOffset(self.raw_data_offset());
        let cell = self.hive.cell(doff, "value data")?;
        if self.is_big_data(cell) {
            return read_big_data(self.hive, doff, cell, len).map(Cow::Owned);
        }
        match cell.get(..len) {
            Some(d) => Ok(Cow::Borrowed(d)),
            None => Err(HiveError::corrupt(
                "value data",
                doff,
                format!("data size {len} exceeds the cell ({} bytes)", cell.len()),
            )),
        }
    }

    /// Whether `cell`, this value's data cell, is a "db" big data cell: the data is larger than
    /// one segment, the hive's format has big data and the cell carries the signature.
    fn is_big_data(&self, cell: &[u8]) -> bool {
        self.data_len() > BIG_DATA_SEGMENT
            && self.hive.minor >= db::MIN_MINOR_VERSION
            && DbHeader::ref_from_prefix(cell).is_ok_and(|(h, _)| h.signature == db::SIGNATURE)
    }

    /// Cell offsets owned by this value's data (data cell, or db + segment list + segments).
    pub(crate) fn data_cells(&self) -> Result<Vec<CellOffset>> {
        let len = self.data_len();
        if self.is_inline() || len == 0 {
            return Ok(Vec::new());
        }
        let doff = CellOffset(self.raw_data_offset());
        let cell = self.hive.cell(doff, "value data")?;
        if self.is_big_data(cell) {
            let (list, segs) = big_data_segments(self.hive, doff, cell)?;
            let mut v = vec![doff, list];
            v.extend(segs);
            return Ok(v);
        }
        Ok(vec![doff])
    }

    /// Decodes REG_SZ / REG_EXPAND_SZ / REG_LINK data (UTF-16LE, up to the first NUL).
    ///
    /// # Errors
    /// Data read errors.
    pub fn as_string(&self) -> Result<String> {
        Ok(decode_utf16z(&self.data()?))
    }

    /// Decodes REG_MULTI_SZ data (strings separated by NUL; the empty terminator is dropped).
    ///
    /// # Errors
    /// Data read errors.
    pub fn as_multi_string(&self) -> Result<Vec<String>> {
        Ok(decode_multi_sz(&self.data()?))
    }

    /// REG_DWORD (LE) or REG_DWORD_BIG_ENDIAN value; `None` if the data is not 4 bytes.
    ///
    /// # Errors
    /// Data read errors.
    pub fn as_u32(&self) -> Result<Option<u32>> {
        let d = self.data()?;
        let Ok(a) = <[u8; 4]>::try_from(&d[..]) else {
            return Ok(None);
        };
        Ok(Some(if self.data_type() == REG_DWORD_BIG_ENDIAN {
            u32::from_be_bytes(a)
        } else {
            u32::from_le_bytes(a)
        }))
    }

    /// REG_QWORD value; `None` if the data is not 8 bytes.
    ///
    /// # Errors
    /// Data read errors.
    pub fn as_u64(&self) -> Result<Option<u64>> {
        let d = self.data()?;
        Ok(<[u8; 8]>::try_from(&d[..]).ok().map(u64::from_le_bytes))
    }
}

/// Decodes UTF-16LE up to the first NUL (odd trailing byte ignored).
pub fn decode_utf16z(d: &[u8]) -> String {
    let units = d
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0);
    char::decode_utf16(units)
        .map(|r| r.unwrap_or('\u{FFFD}'))
        .collect()
}

/// Decodes REG_MULTI_SZ data.
pub fn decode_multi_sz(d: &[u8]) -> Vec<String> {
    let units: Vec<u16> = d
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let mut out: Vec<String> = units
        .split(|&u| u == 0)
        .map(|s| {
            char::decode_utf16(s.iter().copied())
                .map(|r| r.unwrap_or('\u{FFFD}'))
                .collect()
        })
        .collect();
    while out.last().is_some_and(|s: &String| s.is_empty()) {
        out.pop();
    }
    out
}

/// Encodes a string as UTF-16LE with a terminating NUL (REG_SZ data).
pub fn encode_sz(s: &str) -> Vec<u8> {
    s.encode_utf16()
        .chain(std::iter::once(0))
        .flat_map(|u| u.to_le_bytes())
        .collect()
}

/// Encodes REG_MULTI_SZ data (each string NUL-terminated, then an extra NUL).
pub fn encode_multi_sz(v: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in v {
        out.extend(encode_sz(s));
    }
    out.extend([0, 0]);
    out
}

fn big_data_segments(
    hive: &Hive,
    doff: CellOffset,
    db: &[u8],
) -> Result<(CellOffset, Vec<CellOffset>)> {
    let (h, _) = DbHeader::ref_from_prefix(db)
        .map_err(|_| HiveError::corrupt("db", doff, "big data cell shorter than 8 bytes"))?;
    let n = h.number_of_segments.get() as usize;
    let list = CellOffset(h.segment_list_offset.get());
    let lc = hive.cell(list, "db segment list")?;
    let Ok((segs, _)) = <[U32]>::ref_from_prefix_with_elems(lc, n) else {
        return Err(HiveError::corrupt(
            "db",
            doff,
            format!("{n} segments do not fit in the segment list"),
        ));
    };
    Ok((list, segs.iter().map(|s| CellOffset(s.get())).collect()))
}

fn read_big_data(hive: &Hive, doff: CellOffset, db: &[u8], len: usize) -> Result<Vec<u8>> {
    let (_, segs) = big_data_segments(hive, doff, db)?;
    let mut out = Vec::with_capacity(len);
    for s in segs {
        if out.len() >= len {
            break;
        }
        let c = hive.cell(s, "db segment")?;
        let take = (len - out.len()).min(BIG_DATA_SEGMENT).min(c.len());
        out.extend_from_slice(&c[..take]);
    }
    if out.len() != len {
        return Err(HiveError::corrupt(
            "db",
            doff,
            format!("segments hold {} of {len} bytes", out.len()),
        ));
    }
    Ok(out)
}
