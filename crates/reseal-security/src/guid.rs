//! GUIDs as stored in object ACEs.

use std::fmt;
use std::str::FromStr;

/// A GUID in its on-disk byte order (first three fields little-endian).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Guid(pub [u8; 16]);

impl fmt::Display for Guid {
    /// Lower-case `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as Windows prints GUIDs in SDDL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:08x}-{:04x}-{:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
            u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            u16::from_le_bytes([b[4], b[5]]),
            u16::from_le_bytes([b[6], b[7]]),
            b[8],
            b[9],
            b[10],
            b[11],
            b[12],
            b[13],
            b[14],
            b[15]
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
        let mut out = [0u8; 16];
        out[0..4].copy_from_slice(&d1.to_le_bytes());
        out[4..6].copy_from_slice(&d2.to_le_bytes());
        out[6..8].copy_from_slice(&d3.to_le_bytes());
        for i in 0..8 {
            out[8 + i] =
                u8::from_str_radix(&rest[2 * i..2 * i + 2], 16).map_err(|_| GuidParseError)?;
        }
        Ok(Guid(out))
    }
}
