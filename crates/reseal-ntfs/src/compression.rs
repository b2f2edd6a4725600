//! LZNT1 decompression of compressed non-resident streams (read-only; writing compressed data
//! is unsupported). A compression unit of `2^n` clusters is stored raw when fully allocated,
//! LZNT1-compressed when partly allocated (the tail is sparse) and zero when fully sparse.

use crate::error::{Error, Offset, Result};

/// Decompress one LZNT1 compression unit into `out` (whose length is the unit size).
///
/// # Errors
/// [`Error::Corrupt`] on malformed chunks, located in the stream: `base` is the unit's offset
/// in the stream of file `record`.
pub fn lznt1_decompress(src: &[u8], out: &mut [u8], record: Option<u64>, base: u64) -> Result<()> {
    let c = |o: usize, r: &str| {
        Error::corrupt(
            "LZNT1 data",
            record,
            Offset::Stream(base.saturating_add(o as u64)),
            r,
        )
    };
    let mut sp = 0usize;
    let mut op = 0usize;
    while sp + 2 <= src.len() && op < out.len() {
        let h = u16::from_le_bytes([src[sp], src[sp + 1]]);
        if h == 0 {
            break;
        }
        let size = usize::from(h & 0x0FFF) + 1;
        let start = sp + 2;
        let end = start + size;
        if end > src.len() {
            return Err(c(sp, "chunk past the end of the unit"));
        }
        let chunk_out = op;
        let chunk_end = (op + 4096).min(out.len());
        if h & 0x8000 == 0 {
            let n = size.min(chunk_end - op);
            out[op..op + n].copy_from_slice(&src[start..start + n]);
            op = chunk_end;
        } else {
            let mut p = start;
            'chunk: while p < end {
                let flags = src[p];
                p += 1;
                for bit in 0..8 {
                    if p >= end || op >= chunk_end {
                        break 'chunk;
                    }
                    if flags & (1 << bit) == 0 {
                        out[op] = src[p];
                        op += 1;
                        p += 1;
                    } else {
                        if p + 2 > end {
                            return Err(c(p, "truncated back-reference"));
                        }
                        let t = usize::from(u16::from_le_bytes([src[p], src[p + 1]]));
                        p += 2;
                        let pos = op - chunk_out;
                        let mut bits = 4;
                        while (1usize << bits) < pos {
                            bits += 1;
                        }
                        let len_bits = 16 - bits;
                        let back = (t >> len_bits) + 1;
                        let len = (t & ((1 << len_bits) - 1)) + 3;
                        if back > pos {
                            return Err(c(p - 2, "back-reference before the chunk start"));
                        }
                        for _ in 0..len {
                            if op >= chunk_end {
                                break;
                            }
                            out[op] = out[op - back];
                            op += 1;
                        }
                    }
                }
            }
            // A compressed chunk shorter than 4096 bytes is followed by zeros only if it is
            // the last one; otherwise the next chunk continues at the next 4 KiB boundary.
            op = chunk_end.min(op.max(chunk_out)).max(op);
            if op < chunk_end {
                out[op..chunk_end].fill(0);
                op = chunk_end;
            }
        }
        sp = end;
    }
    if op < out.len() {
        out[op..].fill(0);
    }
    Ok(())
}
