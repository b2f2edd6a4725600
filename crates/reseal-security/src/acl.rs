//! Access control lists.

use crate::ace::Ace;
use crate::error::{Error, Result};
use crate::layout::ace::AceHeader;
use crate::layout::acl::{AclHeader, HEADER_SIZE, REVISION, REVISION_DS};
use crate::layout::read;
use zerocopy::IntoBytes;

/// An ACL: the 8-byte [`AclHeader`](crate::layout::acl::AclHeader), then its ACEs.
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
            REVISION_DS
        } else {
            REVISION
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
        HEADER_SIZE + self.aces.iter().map(Ace::encoded_len).sum::<usize>() + self.slack.len()
    }

    /// Parse an ACL at `offset` of `buf`. Error offsets are relative to `buf`.
    pub fn parse_at(buf: &[u8], offset: usize) -> Result<Acl> {
        let hdr: AclHeader = read(buf, offset)
            .ok_or_else(|| Error::truncated("ACL header", offset, HEADER_SIZE, buf.len()))?;
        let revision = hdr.acl_revision;
        let sbz1 = hdr.sbz1;
        let size = usize::from(hdr.acl_size.get());
        let count = usize::from(hdr.ace_count.get());
        let sbz2 = hdr.sbz2.get();
        if size < HEADER_SIZE {
            return Err(Error::invalid(
                "ACL size",
                offset + 2,
                format!("AclSize {size} < {HEADER_SIZE}"),
            ));
        }
        let end = offset + size;
        if end > buf.len() {
            return Err(Error::truncated("ACL", offset, size, buf.len()));
        }
        let mut pos = offset + HEADER_SIZE;
        let mut aces = Vec::with_capacity(count.min(size / 4));
        for i in 0..count {
            let ace_size = read::<AceHeader>(&buf[..end], pos)
                .ok_or_else(|| Error::truncated("ACE header", pos, 4, end))?
                .ace_size
                .get();
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
        let header = AclHeader {
            acl_revision: self.revision,
            sbz1: self.sbz1,
            acl_size: size.into(),
            ace_count: count.into(),
            sbz2: self.sbz2.into(),
        };
        out.extend_from_slice(header.as_bytes());
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
        let mut pos = HEADER_SIZE;
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
