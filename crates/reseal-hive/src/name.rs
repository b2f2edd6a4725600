//! Key and value names: compressed (Latin-1) or UTF-16LE, compared the way Windows does.
//!
//! Windows compares names by upper-casing every UTF-16 code unit through a 1:1 table
//! (RtlUpcaseUnicodeChar). We reproduce that with [`char::to_uppercase`] restricted to
//! single-character results inside the BMP: a character whose upper case is several
//! characters ('ß' -> "SS") or outside the BMP stays unchanged, surrogate halves stay
//! unchanged. Latin-1 (compressed) names are widened to UTF-16 first, so 'ä' (0xE4) sorts as 'Ä'.

use std::cmp::Ordering;

/// Upper-cases one UTF-16 code unit the way Windows' 1:1 table does (see module docs).
#[inline]
pub fn upcase_unit(u: u16) -> u16 {
    if u < 0x80 {
        return (u as u8).to_ascii_uppercase() as u16;
    }
    let Some(c) = char::from_u32(u as u32) else {
        return u;
    };
    let mut it = c.to_uppercase();
    match (it.next(), it.next()) {
        (Some(x), None) if (x as u32) < 0x10000 => x as u32 as u16,
        _ => u,
    }
}

/// A borrowed on-disk name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NameRef<'h> {
    bytes: &'h [u8],
    compressed: bool,
}

impl<'h> NameRef<'h> {
    pub(crate) fn new(bytes: &'h [u8], compressed: bool) -> Self {
        NameRef { bytes, compressed }
    }

    /// Raw stored bytes.
    pub fn raw(&self) -> &'h [u8] {
        self.bytes
    }

    /// Whether the name is stored compressed (1 byte per character, Latin-1).
    pub fn is_compressed(&self) -> bool {
        self.compressed
    }

    /// Number of UTF-16 code units.
    pub fn len_units(&self) -> usize {
        if self.compressed {
            self.bytes.len()
        } else {
            self.bytes.len() / 2
        }
    }

    /// Whether the name is empty.
    pub fn is_empty(&self) -> bool {
        self.len_units() == 0
    }

    /// UTF-16 code units of the name.
    pub fn units(&self) -> impl Iterator<Item = u16> + 'h {
        let b = self.bytes;
        let c = self.compressed;
        let n = if c { b.len() } else { b.len() / 2 };
        (0..n).map(move |i| {
            if c {
                b[i] as u16
            } else {
                u16::from_le_bytes([b[2 * i], b[2 * i + 1]])
            }
        })
    }

    /// Decodes the name (unpaired surrogates become U+FFFD).
    pub fn to_string_lossy(&self) -> String {
        if self.compressed {
            self.bytes.iter().map(|&b| b as char).collect()
        } else {
            char::decode_utf16(self.units())
                .map(|r| r.unwrap_or('\u{FFFD}'))
                .collect()
        }
    }

    /// Case-insensitive equality with a Rust string (Windows rules).
    pub fn eq_ignore_case(&self, other: &str) -> bool {
        let mut a = self.units();
        let mut b = other.encode_utf16();
        loop {
            match (a.next(), b.next()) {
                (None, None) => return true,
                (Some(x), Some(y)) => {
                    if x != y && upcase_unit(x) != upcase_unit(y) {
                        return false;
                    }
                }
                _ => return false,
            }
        }
    }

    /// Windows ordering of two names (upper-cased code units; a proper prefix sorts first).
    pub fn cmp_upcase(&self, other: &NameRef<'_>) -> Ordering {
        cmp_units(self.units(), other.units())
    }

    /// lh hash of the name (37*h + upcased unit).
    pub fn lh_hash(&self) -> u32 {
        lh_hash_units(self.units())
    }
}

/// Compares two code-unit sequences by their upper-cased values.
pub fn cmp_units(a: impl Iterator<Item = u16>, b: impl Iterator<Item = u16>) -> Ordering {
    let mut a = a;
    let mut b = b;
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let o = upcase_unit(x).cmp(&upcase_unit(y));
                if o != Ordering::Equal {
                    return o;
                }
            }
        }
    }
}

/// lh hash over UTF-16 units.
pub fn lh_hash_units(units: impl Iterator<Item = u16>) -> u32 {
    units.fold(0u32, |h, u| {
        h.wrapping_mul(37).wrapping_add(upcase_unit(u) as u32)
    })
}

/// Encodes a name for storage: compressed (Latin-1) when every character is <= U+00FF.
pub(crate) fn encode_name(name: &str) -> (Vec<u8>, bool) {
    if name.chars().all(|c| (c as u32) <= 0xFF) {
        (name.chars().map(|c| c as u32 as u8).collect(), true)
    } else {
        (
            name.encode_utf16().flat_map(|u| u.to_le_bytes()).collect(),
            false,
        )
    }
}

/// Validates a key name: 1..=255 UTF-16 units, no backslash.
pub(crate) fn validate_key_name(name: &str) -> crate::Result<()> {
    let n = name.encode_utf16().count();
    if n == 0 || n > 255 || name.contains('\\') {
        return Err(crate::HiveError::InvalidArgument {
            reason: format!("invalid key name {name:?} (1..=255 characters, no backslash)"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upcase_is_one_to_one() {
        assert_eq!(upcase_unit(b'a' as u16), b'A' as u16);
        assert_eq!(upcase_unit(0xE4), 0xC4); // ä -> Ä
        assert_eq!(upcase_unit(0xDF), 0xDF); // ß has no single upper case
        assert_eq!(upcase_unit(0xD800), 0xD800); // surrogate half unchanged
        assert_eq!(upcase_unit(0x01C6), 0x01C4); // ǆ -> Ǆ
    }

    #[test]
    fn ordering_and_hash() {
        let a = NameRef::new(b"abc", true);
        let b = NameRef::new(b"ABCD", true);
        assert_eq!(a.cmp_upcase(&b), Ordering::Less);
        assert!(NameRef::new(b"Key", true).eq_ignore_case("kEY"));
        // h = 37*h + c over "AB"
        assert_eq!(NameRef::new(b"ab", true).lh_hash(), 37 * 0x41 + 0x42);
        let (enc, comp) = encode_name("Ключ");
        assert!(!comp);
        assert!(NameRef::new(&enc, false).eq_ignore_case("КЛЮЧ"));
    }
}
