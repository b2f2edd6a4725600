//! Key security ("sk") cells: shared self-relative security descriptors in a circular list.
//!
//! The descriptor is opaque here (the security crate interprets it); we only check that it
//! is structurally plausible: revision 1, owner/group/SACL/DACL offsets inside the bytes.
//! Reference: FORMATS.md B.3, D.

use crate::error::{HiveError, Result};
use crate::hive::{CellOffset, Hive};
use crate::layout::sk::{SkHeader, SIGNATURE};
use zerocopy::little_endian::{U16, U32};
use zerocopy::FromBytes;

/// A security cell, borrowed from a [`Hive`].
#[derive(Debug, Clone, Copy)]
pub struct Sk<'h> {
    off: CellOffset,
    header: &'h SkHeader,
    descriptor: &'h [u8],
}

impl<'h> Sk<'h> {
    pub(crate) fn new(hive: &'h Hive, off: CellOffset) -> Result<Sk<'h>> {
        let sk = hive.cell(off, "sk")?;
        let not_sk = || HiveError::corrupt("sk", off, "not a security cell (signature or size)");
        let (header, rest) = SkHeader::ref_from_prefix(sk).map_err(|_| not_sk())?;
        if header.signature != SIGNATURE {
            return Err(not_sk());
        }
        let len = header.security_descriptor_size.get() as usize;
        let Some(descriptor) = rest.get(..len) else {
            return Err(HiveError::corrupt(
                "sk",
                off,
                format!("descriptor length {len} runs past the cell"),
            ));
        };
        Ok(Sk {
            off,
            header,
            descriptor,
        })
    }

    /// Cell offset.
    pub fn offset(&self) -> CellOffset {
        self.off
    }

    /// Next sk in the circular list.
    pub fn flink(&self) -> CellOffset {
        CellOffset(self.header.flink.get())
    }

    /// Previous sk in the circular list.
    pub fn blink(&self) -> CellOffset {
        CellOffset(self.header.blink.get())
    }

    /// Number of keys referencing this descriptor.
    pub fn refcount(&self) -> u32 {
        self.header.reference_count.get()
    }

    /// Self-relative security descriptor bytes.
    pub fn descriptor(&self) -> &'h [u8] {
        self.descriptor
    }
}

/// Minimal structural validation of a self-relative security descriptor.
///
/// # Errors
/// [`HiveError::InvalidArgument`] naming the failing check.
pub fn validate_descriptor(sd: &[u8]) -> Result<()> {
    let bad = |r: &str| {
        Err(HiveError::InvalidArgument {
            reason: format!("security descriptor: {r}"),
        })
    };
    if sd.len() < 20 {
        return bad("shorter than 20 bytes");
    }
    if sd[0] != 1 {
        return bad("revision is not 1");
    }
    let control = U16::read_from_prefix(&sd[2..]).map_or(0, |(v, _)| v.get());
    if control & 0x8000 == 0 {
        return bad("not self-relative (SE_SELF_RELATIVE missing)");
    }
    for (i, what) in [(4, "owner"), (8, "group"), (12, "SACL"), (16, "DACL")] {
        let o = U32::read_from_prefix(&sd[i..]).map_or(0, |(v, _)| v.get()) as usize;
        if o != 0 && (o < 20 || o + 4 > sd.len()) {
            return Err(HiveError::InvalidArgument {
                reason: format!("security descriptor: {what} offset {o:#x} outside the descriptor"),
            });
        }
    }
    Ok(())
}
