//! Data runs (mapping pairs) of non-resident attributes: decode and encode.
//! Reference: FORMATS.md C.3 (header byte: low nibble = length bytes, high nibble = LCN-delta
//! bytes; deltas signed; a run without LCN bytes is sparse; terminated by 0x00).

use crate::error::{Error, Offset, Result};

/// One run: `len` clusters starting at virtual cluster `vcn`, stored at `lcn` (None = sparse).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First virtual cluster.
    pub vcn: u64,
    /// Length in clusters (never 0).
    pub len: u64,
    /// First logical cluster, or `None` for a sparse (unallocated, reads as zero) run.
    pub lcn: Option<u64>,
}

/// Decode mapping pairs starting at `lowest_vcn`. `record`/`base` locate errors.
///
/// # Errors
/// [`Error::Corrupt`] on truncated pairs, zero or negative lengths, or LCNs out of range.
pub fn decode(mp: &[u8], lowest_vcn: u64, record: Option<u64>, base: u64) -> Result<Vec<Run>> {
    let mut runs = Vec::new();
    let mut pos = 0usize;
    let mut vcn = lowest_vcn;
    let mut lcn: i64 = 0;
    let err = |p: usize, r: &str| {
        Error::corrupt(
            "mapping pairs",
            record,
            Offset::inside(record, base.saturating_add(p as u64)),
            r,
        )
    };
    loop {
        let Some(&h) = mp.get(pos) else {
            return Err(err(pos, "missing terminator"));
        };
        if h == 0 {
            break;
        }
        let ln = usize::from(h & 0x0F);
        let lo = usize::from(h >> 4);
        if ln == 0 || ln > 8 || lo > 8 {
            return Err(err(pos, "bad run header byte"));
        }
        let lb = mp
            .get(pos + 1..pos + 1 + ln)
            .ok_or_else(|| err(pos, "truncated run length"))?;
        let len = signed(lb);
        if len <= 0 {
            return Err(err(pos, "non-positive run length"));
        }
        let ob = mp
            .get(pos + 1 + ln..pos + 1 + ln + lo)
            .ok_or_else(|| err(pos, "truncated run offset"))?;
        let run_lcn = if lo == 0 {
            None
        } else {
            lcn = lcn
                .checked_add(signed(ob))
                .ok_or_else(|| err(pos, "LCN overflow"))?;
            if lcn < 0 {
                return Err(err(pos, "negative LCN"));
            }
            Some(lcn as u64)
        };
        runs.push(Run {
            vcn,
            len: len as u64,
            lcn: run_lcn,
        });
        vcn = vcn
            .checked_add(len as u64)
            .ok_or_else(|| err(pos, "VCN overflow"))?;
        pos += 1 + ln + lo;
        if runs.len() > 1 << 20 {
            return Err(err(pos, "too many runs"));
        }
    }
    Ok(runs)
}

fn signed(b: &[u8]) -> i64 {
    let mut v: i64 = 0;
    for (i, &x) in b.iter().enumerate() {
        v |= i64::from(x) << (8 * i);
    }
    let bits = 8 * b.len();
    if bits < 64 && b.last().is_some_and(|l| l & 0x80 != 0) {
        v -= 1i64 << bits;
    }
    v
}

fn signed_bytes(v: i64) -> Vec<u8> {
    let mut out = Vec::new();
    for n in 1..=8usize {
        let bits = 8 * n;
        let fits = if bits == 64 {
            true
        } else {
            let min = -(1i64 << (bits - 1));
            let max = (1i64 << (bits - 1)) - 1;
            v >= min && v <= max
        };
        if fits {
            for i in 0..n {
                out.push((v >> (8 * i)) as u8);
            }
            return out;
        }
    }
    out
}

/// Encode runs (must be contiguous in VCN) into mapping pairs, terminator included.
pub fn encode(runs: &[Run]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev: i64 = 0;
    for r in runs {
        let lb = signed_bytes(r.len as i64);
        let ob = match r.lcn {
            Some(l) => {
                let d = signed_bytes(l as i64 - prev);
                prev = l as i64;
                d
            }
            None => Vec::new(),
        };
        out.push((lb.len() as u8) | ((ob.len() as u8) << 4));
        out.extend_from_slice(&lb);
        out.extend_from_slice(&ob);
    }
    out.push(0);
    out
}

/// Merge adjacent runs that continue each other (same sparseness, contiguous LCNs).
pub fn normalize(runs: &mut Vec<Run>) {
    let mut out: Vec<Run> = Vec::with_capacity(runs.len());
    for r in runs.drain(..) {
        if r.len == 0 {
            continue;
        }
        if let Some(last) = out.last_mut() {
            // Checked: runs built from hostile mapping pairs may sit near u64::MAX.
            let cont = match (last.lcn, r.lcn) {
                (None, None) => true,
                (Some(a), Some(b)) => a.checked_add(last.len) == Some(b),
                _ => false,
            };
            if cont && last.vcn.checked_add(last.len) == Some(r.vcn) {
                if let Some(len) = last.len.checked_add(r.len) {
                    last.len = len;
                    continue;
                }
            }
        }
        out.push(r);
    }
    *runs = out;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let runs = vec![
            Run {
                vcn: 0,
                len: 5,
                lcn: Some(1000),
            },
            Run {
                vcn: 5,
                len: 300,
                lcn: None,
            },
            Run {
                vcn: 305,
                len: 2,
                lcn: Some(10),
            },
            Run {
                vcn: 307,
                len: 70000,
                lcn: Some(1 << 33),
            },
        ];
        let e = encode(&runs);
        assert_eq!(decode(&e, 0, None, 0).unwrap(), runs);
    }

    #[test]
    fn hostile_values_are_errors() {
        // A hostile lowest VCN near the top: the next VCN overflows.
        let mp = [0x01, 10, 0];
        assert!(matches!(
            decode(&mp, u64::MAX - 5, Some(7), 0x40),
            Err(Error::Corrupt { offset: Offset::Record(0x40), ref reason, .. }) if reason == "VCN overflow"
        ));
        // LCN deltas that sum past i64::MAX.
        let mut mp = vec![0x81, 1];
        mp.extend_from_slice(&i64::MAX.to_le_bytes());
        mp.extend_from_slice(&[0x11, 1, 1, 0]);
        assert!(matches!(
            decode(&mp, 0, None, 0),
            Err(Error::Corrupt { offset: Offset::Stream(10), ref reason, .. }) if reason == "LCN overflow"
        ));
        // An error located at the very end of the address space does not wrap.
        assert!(matches!(
            decode(&[0x01], 0, None, u64::MAX),
            Err(Error::Corrupt {
                offset: Offset::Stream(u64::MAX),
                ..
            })
        ));
    }

    #[test]
    fn normalize_near_the_top_does_not_overflow() {
        let top = u64::MAX - 1;
        let mut runs = vec![
            Run {
                vcn: 0,
                len: top,
                lcn: Some(top),
            },
            Run {
                vcn: top,
                len: 1,
                lcn: Some(5),
            },
            Run {
                vcn: u64::MAX - 1,
                len: u64::MAX,
                lcn: None,
            },
            Run {
                vcn: 3,
                len: 1,
                lcn: None,
            },
        ];
        normalize(&mut runs);
        assert_eq!(runs.len(), 4, "nothing merged across an overflow");
    }

    #[test]
    fn garbage_never_panics() {
        for seed in 0..2000u32 {
            let b: Vec<u8> = (0..24)
                .map(|i| (seed.wrapping_mul(2654435761).wrapping_add(i * 77) >> 7) as u8)
                .collect();
            let _ = decode(&b, 0, None, 0);
        }
    }
}
