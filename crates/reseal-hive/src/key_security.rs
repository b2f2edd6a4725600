//! Key security ("sk") cells: shared self-relative security descriptors in a circular list.
//!
//! The descriptor is opaque here (the security crate interprets it); we only check that it
//! is structurally plausible: revision 1, owner/group/SACL/DACL offsets inside the bytes.
//! Reference: FORMATS.md B.3, D.

use crate::base_block::rd_u32;
use crate::error::{HiveError, Result};
use crate::hive::{CellOffset, Hive};

/// A security cell, borrowed from a [`Hive`].
#[derive(Debug, Clone, Copy)]
pub struct Sk<'h> {
    off: CellOffset,
    sk: &'h [u8],
}

impl<'h> Sk<'h> {
    pub(crate) fn new(hive: &'h Hive, off: CellOffset) -> Result<Sk<'h>> {
        let sk = hive.cell(off, "sk")?;
        if sk.len() < 20 || &sk[0..2] != b"sk" {
            return Err(HiveError::corrupt(
                "sk",
                off,
                "not a security cell (signature or size)",
            ));
        }
        let len = rd_u32(sk, 16).unwrap_or(0) as usize;
        if 20 + len > sk.len() {
            return Err(HiveError::corrupt(
                "sk",
                off,
                format!("descriptor length {len} runs past the cell"),
            ));
        }
        Ok(Sk { off, sk })
    }

    /// Cell offset.
    pub fn offset(&self) -> CellOffset {
        self.off
    }

    /// Next sk in the circular list.
    pub fn flink(&self) -> CellOffset {
        CellOffset(rd_u32(self.sk, 4).unwrap_or(u32::MAX))
    }

    /// Previous sk in the circular list.
    pub fn blink(&self) -> CellOffset {
        CellOffset(rd_u32(self.sk, 8).unwrap_or(u32::MAX))
    }

    /// Number of keys referencing this descriptor.
    pub fn refcount(&self) -> u32 {
        rd_u32(self.sk, 12).unwrap_or(0)
    }

    /// Self-relative security descriptor bytes.
    pub fn descriptor(&self) -> &'h [u8] {
        let len = rd_u32(self.sk, 16).unwrap_or(0) as usize;
        &self.sk[20..20 + len]
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
    let control = u16::from_le_bytes([sd[2], sd[3]]);
    if control & 0x8000 == 0 {
        return bad("not self-relative (SE_SELF_RELATIVE missing)");
    }
    for (i, what) in [(4, "owner"), (8, "group"), (12, "SACL"), (16, "DACL")] {
        let o = rd_u32(sd, i).unwrap_or(0) as usize;
        if o != 0 && (o < 20 || o + 4 > sd.len()) {
            return Err(HiveError::InvalidArgument {
                reason: format!("security descriptor: {what} offset {o:#x} outside the descriptor"),
            });
        }
    }
    Ok(())
}
