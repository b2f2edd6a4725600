//! GUIDs as stored in object ACEs.

use std::fmt;
use std::str::FromStr;

use crate::layout::guid::{GuidFields, SIZE};
use zerocopy::{FromBytes, IntoBytes};

/// A GUID in its on-disk byte order (first three fields little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid(pub [u8; SIZE]);

impl fmt::Display for Guid {
    /// Lower-case `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as Windows prints GUIDs in SDDL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = GuidFields::read_from_bytes(&self.0).unwrap_or_default();
        let d = g.data4;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            g.data1.get(),
            g.data2.get(),
            g.data3.get(),
            d[0],
            d[1],
            d[2],
            d[3],
            d[4],
            d[5],
            d[6],
            d[7]
        )
    }
}

impl fmt::Debug for Guid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Guid({self})")
    }
}

/// Error from [`Guid::from_str`]: the text is not `8-4-4-4-12` hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuidParseError;

impl FromStr for Guid {
    type Err = GuidParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        if parts.len() != 5
            || parts
                .iter()
                .zip(lens)
                .any(|(p, l)| p.len() != l || !p.bytes().all(|c| c.is_ascii_hexdigit()))
        {
            return Err(GuidParseError);
        }
        let d1 = u32::from_str_radix(parts[0], 16).map_err(|_| GuidParseError)?;
        let d2 = u16::from_str_radix(parts[1], 16).map_err(|_| GuidParseError)?;
        let d3 = u16::from_str_radix(parts[2], 16).map_err(|_| GuidParseError)?;
        let rest = format!("{}{}", parts[3], parts[4]);
        let mut data4 = [0u8; 8];
        for (i, b) in data4.iter_mut().enumerate() {
            *b = u8::from_str_radix(&rest[2 * i..2 * i + 2], 16).map_err(|_| GuidParseError)?;
        }
        let g = GuidFields {
            data1: d1.into(),
            data2: d2.into(),
            data3: d3.into(),
            data4,
        };
        let mut out = [0u8; SIZE];
        out.copy_from_slice(g.as_bytes());
        Ok(Guid(out))
    }
}
