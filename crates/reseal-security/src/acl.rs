//! Access control lists.

use crate::ace::Ace;
use crate::error::{Error, Result};
use crate::rd::u16_at;

/// An ACL: 8-byte header `{u8 revision, u8 sbz1, u16 size, u16 count, u16 sbz2}` then ACEs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Acl {
    /// ACL revision: 2 (`ACL_REVISION`) or 4 (`ACL_REVISION_DS`, needed for object ACEs).
    pub revision: u8,
    /// Reserved byte after the revision (kept verbatim).
    pub sbz1: u8,
    /// Reserved trailing header word (kept verbatim).
    pub sbz2: u16,
    /// The ACEs, in order.
    pub aces: Vec<Ace>,
    /// Bytes between the end of the last ACE and the header's `AclSize` (kept verbatim; often
    /// present when an ACL was allocated larger than needed).
    pub slack: Vec<u8>,
}

impl Acl {
    /// A new ACL with the revision Windows would pick: 4 when any object ACE is present, else 2.
    pub fn new(aces: Vec<Ace>) -> Self {
        let revision = if aces
            .iter()
            .any(|a| matches!(a.ace_type(), 0x05..=0x08 | 0x0B | 0x0C | 0x0F | 0x10))
        {
            4
        } else {
            2
        };
        Acl {
            revision,
            sbz1: 0,
            sbz2: 0,
            aces,
            slack: Vec::new(),
        }
    }

    /// Encoded size (the header's `AclSize`).
    pub fn encoded_len(&self) -> usize {
        8 + self.aces.iter().map(Ace::encoded_len).sum::<usize>() + self.slack.len()
    }

    /// Parse an ACL at `offset` of `buf`. Error offsets are relative to `buf`.
    pub fn parse_at(buf: &[u8], offset: usize) -> Result<Acl> {
        let hdr = buf
            .get(offset..offset.saturating_add(8))
            .filter(|h| h.len() == 8)
            .ok_or_else(|| Error::truncated("ACL header", offset, 8, buf.len()))?;
        let revision = hdr[0];
        let sbz1 = hdr[1];
        let size = usize::from(u16_at(hdr, 2).unwrap_or(0));
        let count = usize::from(u16_at(hdr, 4).unwrap_or(0));
        let sbz2 = u16_at(hdr, 6).unwrap_or(0);
        if size < 8 {
            return Err(Error::invalid(
                "ACL size",
                offset + 2,
                format!("AclSize {size} < 8"),
            ));
        }
        let end = offset + size;
        if end > buf.len() {
            return Err(Error::truncated("ACL", offset, size, buf.len()));
        }
        let mut pos = offset + 8;
        let mut aces = Vec::with_capacity(count.min(size / 4));
        for i in 0..count {
            let ace_size = u16_at(buf, pos + 2)
                .filter(|_| pos + 4 <= end)
                .ok_or_else(|| Error::truncated("ACE header", pos, 4, end))?;
            let ace_size = usize::from(ace_size);
            if ace_size < 4 {
                return Err(Error::invalid(
                    "ACE size",
                    pos + 2,
                    format!("ACE {i}: AceSize {ace_size} < 4"),
                ));
            }
            if pos + ace_size > end {
                return Err(Error::invalid(
                    "ACE size",
                    pos + 2,
                    format!("ACE {i}: {ace_size} bytes run past the ACL end at {end}"),
                ));
            }
            let ace = Ace::parse(&buf[pos..pos + ace_size]).map_err(|e| e.shifted(pos))?;
            aces.push(ace);
            pos += ace_size;
        }
        Ok(Acl {
            revision,
            sbz1,
            sbz2,
            aces,
            slack: buf[pos..end].to_vec(),
        })
    }

    /// Append the binary form.
    pub fn write_to(&self, out: &mut Vec<u8>) -> Result<()> {
        let size = u16::try_from(self.encoded_len()).map_err(|_| {
            Error::Unsupported(format!("ACL of {} bytes exceeds 65535", self.encoded_len()))
        })?;
        let count = u16::try_from(self.aces.len())
            .map_err(|_| Error::Unsupported("more than 65535 ACEs".into()))?;
        out.push(self.revision);
        out.push(self.sbz1);
        out.extend_from_slice(&size.to_le_bytes());
        out.extend_from_slice(&count.to_le_bytes());
        out.extend_from_slice(&self.sbz2.to_le_bytes());
        for a in &self.aces {
            a.write_to(out)?;
        }
        out.extend_from_slice(&self.slack);
        Ok(())
    }

    /// Binary form.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(self.encoded_len());
        self.write_to(&mut v)?;
        Ok(v)
    }

    /// Byte ranges (relative to the ACL start) of every SID in the ACL.
    pub fn sid_ranges(&self) -> Vec<std::ops::Range<usize>> {
        let mut out = Vec::new();
        let mut pos = 8;
        for a in &self.aces {
            out.extend(
                a.sid_ranges()
                    .into_iter()
                    .map(|r| r.start + pos..r.end + pos),
            );
            pos += a.encoded_len();
        }
        out
    }
}
