//! `$UpCase` and the NTFS file-name collation. Reference: FORMATS.md C.7.

use std::cmp::Ordering;

use zerocopy::little_endian::U16;
use zerocopy::FromBytes;

/// The volume's upper-case table (65 536 UTF-16 code units).
#[derive(Debug, Clone)]
pub struct UpCase(Vec<u16>);

impl UpCase {
    /// From the raw `$UpCase:$DATA` bytes; missing entries map to themselves.
    pub fn from_bytes(b: &[u8]) -> UpCase {
        let mut t: Vec<u16> = (0..=0xFFFFu32).map(|c| c as u16).collect();
        let n = (b.len() / 2).min(t.len());
        if let Ok((units, _)) = <[U16]>::ref_from_prefix_with_elems(b, n) {
            for (d, u) in t.iter_mut().zip(units) {
                *d = u.get();
            }
        }
        UpCase(t)
    }
    /// Upper-case one code unit.
    pub fn up(&self, c: u16) -> u16 {
        self.0[usize::from(c)]
    }
    /// Case-insensitive equality.
    pub fn eq_ic(&self, a: &[u16], b: &[u16]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| self.up(*x) == self.up(*y))
    }
    /// Upper-cased comparison only (names equal ignoring case compare equal).
    pub fn collate_ic(&self, a: &[u16], b: &[u16]) -> Ordering {
        for (x, y) in a.iter().zip(b) {
            let (ux, uy) = (self.up(*x), self.up(*y));
            if ux != uy {
                return ux.cmp(&uy);
            }
        }
        a.len().cmp(&b.len())
    }

    /// COLLATION_FILE_NAME: upper-cased comparison, shorter first on equal prefix, then the raw
    /// code units as a tie-break (ntfs-3g full collation).
    pub fn collate(&self, a: &[u16], b: &[u16]) -> Ordering {
        for (x, y) in a.iter().zip(b) {
            let (ux, uy) = (self.up(*x), self.up(*y));
            if ux != uy {
                return ux.cmp(&uy);
            }
        }
        match a.len().cmp(&b.len()) {
            Ordering::Equal => a.cmp(b),
            o => o,
        }
    }
}
