//! Security identifiers.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};
use crate::layout::sid::{SidHeader, HEADER_SIZE, MAX_SUB_AUTHORITIES, REVISION};
use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, IntoBytes};

/// A security identifier (revision 1).
///
/// Binary form: a [`SidHeader`] (revision 1, sub-authority count <= 15, 6-byte **big-endian**
/// identifier authority), then count little-endian `u32` sub-authorities.
/// Ordering is by (authority, sub-authorities), which groups SIDs of a domain together.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sid {
    authority: u64,
    sub_authorities: Vec<u32>,
}

impl Sid {
    /// Build a SID. Fails when `authority >= 2^48` or more than 15 sub-authorities are given.
    pub fn new(authority: u64, sub_authorities: &[u32]) -> Result<Self> {
        if authority >> 48 != 0 {
            return Err(Error::Unsupported(format!(
                "identifier authority {authority:#x} exceeds 48 bits"
            )));
        }
        if sub_authorities.len() > MAX_SUB_AUTHORITIES {
            return Err(Error::Unsupported(format!(
                "{} sub-authorities (max 15)",
                sub_authorities.len()
            )));
        }
        Ok(Sid {
            authority,
            sub_authorities: sub_authorities.to_vec(),
        })
    }

    /// Parse a binary SID at the start of `bytes` (trailing bytes are ignored; see [`Sid::len`]).
    /// Error offsets are relative to `bytes`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let (header, rest) = SidHeader::ref_from_prefix(bytes)
            .map_err(|_| Error::truncated("SID header", 0, HEADER_SIZE, bytes.len()))?;
        if header.revision != REVISION {
            return Err(Error::invalid(
                "SID revision",
                0,
                format!("revision {} (expected 1)", header.revision),
            ));
        }
        let count = usize::from(header.sub_authority_count);
        if count > MAX_SUB_AUTHORITIES {
            return Err(Error::invalid(
                "SID sub-authority count",
                1,
                format!("{count} > 15"),
            ));
        }
        let (subs, _) = <[U32]>::ref_from_prefix_with_elems(rest, count).map_err(|_| {
            Error::truncated(
                "SID sub-authorities",
                0,
                HEADER_SIZE + 4 * count,
                bytes.len(),
            )
        })?;
        let authority = header.authority();
        let sub_authorities = subs.iter().map(|v| v.get()).collect();
        Ok(Sid {
            authority,
            sub_authorities,
        })
    }

    /// Parse a binary SID at `offset` of `buf`; error offsets are relative to `buf`.
    pub(crate) fn parse_at(buf: &[u8], offset: usize) -> Result<Self> {
        let s = buf
            .get(offset..)
            .ok_or_else(|| Error::truncated("SID", offset, 8, buf.len()))?;
        Sid::from_bytes(s).map_err(|e| e.shifted(offset))
    }

    /// Binary form.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.len());
        self.write_to(&mut v);
        v
    }

    /// Append the binary form to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let header = SidHeader::new(self.sub_authorities.len() as u8, self.authority);
        out.extend_from_slice(header.as_bytes());
        for s in &self.sub_authorities {
            out.extend_from_slice(U32::new(*s).as_bytes());
        }
    }

    /// Length of the binary form: `8 + 4 * sub-authority count`.
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        HEADER_SIZE + 4 * self.sub_authorities.len()
    }

    /// The 48-bit identifier authority.
    pub fn authority(&self) -> u64 {
        self.authority
    }

    /// The sub-authorities.
    pub fn sub_authorities(&self) -> &[u32] {
        &self.sub_authorities
    }

    /// `true` for an account-domain (machine or domain) SID `S-1-5-21-x-y-z` (exactly 4
    /// sub-authorities).
    pub fn is_account_domain(&self) -> bool {
        self.authority == 5 && self.sub_authorities.len() == 4 && self.sub_authorities[0] == 21
    }

    /// `true` for an account SID `S-1-5-21-x-y-z-RID` (5 sub-authorities).
    pub fn is_domain_account(&self) -> bool {
        self.authority == 5 && self.sub_authorities.len() == 5 && self.sub_authorities[0] == 21
    }

    /// For `S-1-5-21-x-y-z-RID`: the domain `S-1-5-21-x-y-z`. `None` for other SIDs.
    pub fn domain(&self) -> Option<Sid> {
        self.is_domain_account().then(|| Sid {
            authority: 5,
            sub_authorities: self.sub_authorities[..4].to_vec(),
        })
    }

    /// For `S-1-5-21-x-y-z-RID`: the RID. `None` for other SIDs.
    pub fn rid(&self) -> Option<u32> {
        self.is_domain_account().then(|| self.sub_authorities[4])
    }

    /// `domain-RID`: append one sub-authority. Fails when the SID already has 15.
    pub fn with_rid(&self, rid: u32) -> Result<Sid> {
        let mut s = self.sub_authorities.clone();
        s.push(rid);
        Sid::new(self.authority, &s)
    }

    /// Parse the string form at the start of `s`, returning the SID and the number of bytes
    /// consumed (digits end at the first character that cannot continue the SID).
    pub(crate) fn parse_str_prefix(s: &str) -> std::result::Result<(Sid, usize), (usize, String)> {
        let b = s.as_bytes();
        if b.len() < 2 || !(b[0] == b'S' || b[0] == b's') || b[1] != b'-' {
            return Err((0, "SID string must start with S-".into()));
        }
        let mut pos = 2;
        let mut fields: Vec<u64> = Vec::new();
        loop {
            let start = pos;
            let hex = b.get(pos) == Some(&b'0') && matches!(b.get(pos + 1), Some(b'x' | b'X'));
            let digits_start = if hex { pos + 2 } else { pos };
            let mut end = digits_start;
            while end < b.len()
                && (if hex {
                    b[end].is_ascii_hexdigit()
                } else {
                    b[end].is_ascii_digit()
                })
            {
                end += 1;
            }
            if end == digits_start {
                return Err((start, "expected a number".into()));
            }
            let text = &s[digits_start..end];
            let v = u64::from_str_radix(text, if hex { 16 } else { 10 })
                .map_err(|_| (start, format!("number {text} out of range")))?;
            fields.push(v);
            pos = end;
            // Continue only on "-<digit>".
            if b.get(pos) == Some(&b'-') && b.get(pos + 1).is_some_and(|c| c.is_ascii_digit()) {
                pos += 1;
            } else {
                break;
            }
        }
        if fields.len() < 2 {
            return Err((
                pos,
                "SID needs a revision and an identifier authority".into(),
            ));
        }
        if fields[0] != 1 {
            return Err((2, format!("SID revision {} (expected 1)", fields[0])));
        }
        if fields[1] >> 48 != 0 {
            return Err((2, "identifier authority exceeds 48 bits".into()));
        }
        let subs = &fields[2..];
        if subs.len() > MAX_SUB_AUTHORITIES {
            return Err((pos, "more than 15 sub-authorities".into()));
        }
        let mut sub = Vec::with_capacity(subs.len());
        for &v in subs {
            sub.push(
                u32::try_from(v)
                    .map_err(|_| (pos, format!("sub-authority {v} exceeds 32 bits")))?,
            );
        }
        Ok((
            Sid {
                authority: fields[1],
                sub_authorities: sub,
            },
            pos,
        ))
    }
}

impl fmt::Display for Sid {
    /// `S-1-<authority>-<sub>...`; an authority of 2^32 or more is printed as `0x` and 12
    /// lower-case hex digits, as `ConvertSidToStringSid` does.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.authority >> 32 != 0 {
            write!(f, "S-1-0x{:012x}", self.authority)?;
        } else {
            write!(f, "S-1-{}", self.authority)?;
        }
        for s in &self.sub_authorities {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sid({self})")
    }
}

impl FromStr for Sid {
    type Err = Error;
    /// Parse `S-1-5-21-...` (case-insensitive `S`; numbers decimal or `0x` hex). The whole
    /// string must be consumed. Errors carry the character position.
    fn from_str(s: &str) -> Result<Self> {
        let (sid, used) = Sid::parse_str_prefix(s)
            .map_err(|(position, reason)| Error::Syntax { position, reason })?;
        if used != s.len() {
            return Err(Error::Syntax {
                position: s[..used].chars().count(),
                reason: "trailing characters after SID".into(),
            });
        }
        Ok(sid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_display() {
        let s: Sid = "S-1-5-21-1004336348-1177238915-682003330-512"
            .parse()
            .unwrap();
        assert!(s.domain().unwrap().is_account_domain());
        assert_eq!(s.rid(), Some(512));
        let b = s.to_bytes();
        assert_eq!(&b[..12], &[1, 5, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0]);
        assert_eq!(Sid::from_bytes(&b).unwrap(), s);
        assert_eq!(
            s.to_string(),
            "S-1-5-21-1004336348-1177238915-682003330-512"
        );
        let big = Sid::new(0x1_0000_0000, &[1]).unwrap();
        assert_eq!(big.to_string(), "S-1-0x000100000000-1");
        assert_eq!(big.to_string().parse::<Sid>().unwrap(), big);
        assert_eq!("s-1-1-0".parse::<Sid>().unwrap().to_string(), "S-1-1-0");
    }

    #[test]
    fn errors_name_offsets() {
        assert!(matches!(
            Sid::from_bytes(&[2, 0, 0, 0, 0, 0, 0, 0]),
            Err(Error::Invalid { offset: 0, .. })
        ));
        assert!(matches!(
            Sid::from_bytes(&[1, 16, 0, 0, 0, 0, 0, 0]),
            Err(Error::Invalid { offset: 1, .. })
        ));
        assert!(matches!(
            Sid::from_bytes(&[1, 1, 0, 0, 0, 0, 0, 5]),
            Err(Error::Truncated { .. })
        ));
        assert!(matches!(
            "S-1-5-x".parse::<Sid>(),
            Err(Error::Syntax { position: 5, .. })
        ));
    }
}
