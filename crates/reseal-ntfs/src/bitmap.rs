//! Cluster allocation in `$Bitmap` and MFT record allocation in `$MFT:$BITMAP`.
//! Reference: FORMATS.md C.3 and C.8 (ntfs-3g lcnalloc.c, mft.c behaviour).

use reseal_disk::Device;
use zerocopy::little_endian::U32;
use zerocopy::IntoBytes;

use crate::attribute::{BITMAP, DATA};
use crate::error::{Error, Offset, Result};
use crate::record::{self, Record};
use crate::volume::{Grow, Volume, BITMAP_FILE, MFT};

/// ntfs-3g allocates user records from 64 upwards (16-23 reserved, 24+ `$Extend` children).
const FIRST_USER_RECORD: u64 = 64;

fn bit(b: &[u8], i: u64) -> bool {
    b.get((i / 8) as usize)
        .is_none_or(|x| x & (1 << (i % 8)) != 0)
}
fn set_bit(b: &mut [u8], i: u64, v: bool) {
    if let Some(x) = b.get_mut((i / 8) as usize) {
        if v {
            *x |= 1 << (i % 8);
        } else {
            *x &= !(1 << (i % 8));
        }
    }
}

impl<D: Device> Volume<D> {
    fn mft_zone(&self) -> (u64, u64) {
        let total = self.boot.total_clusters();
        let start = self.boot.mft_lcn;
        (start, (start + total / 8).min(total))
    }

    /// Allocate `count` clusters, preferring one contiguous extent at or after `hint` and
    /// outside the MFT zone (unless `mft_zone`, for the MFT itself, which prefers the zone).
    pub(crate) fn alloc_clusters(
        &mut self,
        count: u64,
        hint: u64,
        mft_zone: bool,
    ) -> Result<Vec<(u64, u64)>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut bm = self.read_all(BITMAP_FILE, DATA, &[])?;
        let total = self.boot.total_clusters().min(bm.len() as u64 * 8);
        let (zs, ze) = self.mft_zone();
        // Free extents, as (start, len), outside/inside the zone.
        let mut free: Vec<(u64, u64)> = Vec::new();
        let mut i = 0u64;
        while i < total {
            if i % 8 == 0 && bm[(i / 8) as usize] == 0xFF {
                i += 8;
                continue;
            }
            if bit(&bm, i) {
                i += 1;
                continue;
            }
            let s = i;
            while i < total && !bit(&bm, i) {
                i += 1;
            }
            free.push((s, i - s));
        }
        let split = |ext: &[(u64, u64)], inside: bool| -> Vec<(u64, u64)> {
            let mut out = Vec::new();
            for &(s, l) in ext {
                let e = s + l;
                let (a, b) = (s.max(zs), e.min(ze));
                if inside {
                    if a < b {
                        out.push((a, b - a));
                    }
                } else if a < b {
                    if s < a {
                        out.push((s, a - s));
                    }
                    if b < e {
                        out.push((b, e - b));
                    }
                } else {
                    out.push((s, l));
                }
            }
            out
        };
        let outside = split(&free, false);
        let inside = split(&free, true);
        let (first, second) = if mft_zone {
            (inside, outside)
        } else {
            (outside, inside)
        };
        let order = |v: &[(u64, u64)]| -> Vec<(u64, u64)> {
            let mut a: Vec<_> = v.iter().copied().filter(|e| e.0 + e.1 > hint).collect();
            a.extend(v.iter().copied().filter(|e| e.0 + e.1 <= hint));
            a
        };
        let mut got: Vec<(u64, u64)> = Vec::new();
        'done: {
            for pool in [order(&first), order(&second)] {
                if let Some(&(s, l)) = pool.iter().find(|e| e.1 >= count) {
                    let s = if s < hint && hint < s + l && s + l - hint >= count {
                        hint
                    } else {
                        s
                    };
                    got = vec![(s, count)];
                    let _ = l;
                    break 'done;
                }
            }
            let mut need = count;
            for pool in [order(&first), order(&second)] {
                for (s, l) in pool {
                    let k = l.min(need);
                    got.push((s, k));
                    need -= k;
                    if need == 0 {
                        break 'done;
                    }
                }
            }
            return Err(Error::NoSpace { what: "clusters" });
        }
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for &(s, l) in &got {
            for c in s..s + l {
                set_bit(&mut bm, c, true);
            }
            lo = lo.min(s / 8);
            hi = hi.max((s + l).div_ceil(8));
        }
        let mut st = self
            .stream(BITMAP_FILE, DATA, &[])?
            .ok_or(Error::NoSpace { what: "$Bitmap" })?;
        self.write_stream_data(&mut st, lo, &bm[lo as usize..hi as usize])?;
        Ok(got)
    }

    /// Free clusters (mark them unused in `$Bitmap`).
    pub(crate) fn free_clusters(&mut self, ext: &[(u64, u64)]) -> Result<()> {
        if ext.is_empty() {
            return Ok(());
        }
        let mut bm = self.read_all(BITMAP_FILE, DATA, &[])?;
        let (mut lo, mut hi) = (u64::MAX, 0u64);
        for &(s, l) in ext {
            if (s + l).div_ceil(8) > bm.len() as u64 {
                return Err(Error::corrupt(
                    "$Bitmap",
                    Some(BITMAP_FILE),
                    Offset::Stream(s / 8),
                    "freeing clusters beyond the bitmap",
                ));
            }
            for c in s..s + l {
                set_bit(&mut bm, c, false);
            }
            lo = lo.min(s / 8);
            hi = hi.max((s + l).div_ceil(8));
        }
        // A freed cluster keeps whatever the file held (an old hive, a log, a name) for anyone
        // who reads free space: zero it before it is released.
        let cs = self.cs();
        let zeros = vec![0u8; 1 << 20];
        for &(s, l) in ext {
            let mut at = s * cs;
            let end = (s + l) * cs;
            while at < end {
                let n = (end - at).min(zeros.len() as u64) as usize;
                self.write_direct(at, &zeros[..n])?;
                at += n as u64;
            }
        }
        let mut st = self
            .stream(BITMAP_FILE, DATA, &[])?
            .ok_or(Error::NoSpace { what: "$Bitmap" })?;
        self.write_stream_data(&mut st, lo, &bm[lo as usize..hi as usize])
    }

    /// Allocate an MFT record: the first clear bit of `$MFT:$BITMAP` from 64, growing the MFT
    /// if needed. Returns a formatted, not-yet-written record marked in use (sequence kept).
    pub(crate) fn alloc_record(&mut self, flags: u16) -> Result<Record> {
        let rs = u64::from(self.boot.record_size);
        let mut bm = self.read_all(MFT, BITMAP, &[])?;
        let mut n = self.mft_records();
        let mut found = (FIRST_USER_RECORD..n).find(|&i| !bit(&bm, i) && (i / 8) < bm.len() as u64);
        if found.is_none() {
            // Grow $MFT by 64 records (whole clusters).
            let cs = self.cs();
            let new_size = ((n + 64) * rs).div_ceil(cs) * cs;
            self.set_stream_len(
                MFT,
                DATA,
                &[],
                new_size,
                Grow {
                    zero: false,
                    mft_zone: true,
                },
            )?;
            let new_n = new_size / rs;
            for i in n..new_n {
                let mut r = Record::format(i, rs as usize, 1, 1, 0);
                r.buf[22] = 0;
                self.write_record(&mut r)?;
            }
            let mut s = self
                .stream(MFT, DATA, &[])?
                .ok_or(Error::NoSpace { what: "$MFT" })?;
            s.init = s.size;
            self.set_nonres_sizes_pub(&s)?;
            let need = new_n.div_ceil(64) * 8;
            if (bm.len() as u64) < need {
                self.set_stream_len(
                    MFT,
                    BITMAP,
                    &[],
                    need,
                    Grow {
                        zero: true,
                        mft_zone: false,
                    },
                )?;
            }
            bm = self.read_all(MFT, BITMAP, &[])?;
            n = new_n;
            found = (FIRST_USER_RECORD..n).find(|&i| !bit(&bm, i));
        }
        let num = found.ok_or(Error::NoSpace {
            what: "MFT records",
        })?;
        // Keep the old sequence number and USN if the slot held a record.
        let (seq, usn) = match self.read_record(num) {
            Ok(old) => {
                let s = old.sequence();
                (
                    if s == 0 { 1 } else { s },
                    record::usn(&old.buf).unwrap_or(1),
                )
            }
            Err(_) => (1, 1),
        };
        let r = Record::format(num, rs as usize, seq, usn, flags | record::FLAG_IN_USE);
        set_bit(&mut bm, num, true);
        let mut st = self.stream(MFT, BITMAP, &[])?.ok_or(Error::NoSpace {
            what: "$MFT:$BITMAP",
        })?;
        self.write_stream_data(
            &mut st,
            num / 8,
            &bm[(num / 8) as usize..=(num / 8) as usize],
        )?;
        Ok(r)
    }

    /// Free an MFT record: clear in-use, bump the sequence number, drop its attributes (the
    /// file's names, descriptor and resident data do not stay in a free record), clear its
    /// bitmap bit.
    pub(crate) fn free_record(&mut self, mut r: Record) -> Result<()> {
        let mut seq = r.sequence().wrapping_add(1);
        if seq == 0 {
            seq = 1;
        }
        let h = r.header_mut()?;
        h.flags = (h.flags.get() & !record::FLAG_IN_USE).into();
        h.sequence_number = seq.into();
        let first = usize::from(h.first_attribute_offset.get());
        if let Some(end) = r.buf.get_mut(first..first + 8) {
            // End marker, then a zero length.
            let marker = [U32::new(crate::layout::record::END_MARKER), U32::ZERO];
            end.copy_from_slice(marker.as_bytes());
            r.header_mut()?.bytes_in_use = ((first + 8) as u32).into();
        }
        let num = r.num;
        self.write_record(&mut r)?;
        let mut bm = self.read_all(MFT, BITMAP, &[])?;
        set_bit(&mut bm, num, false);
        let mut st = self.stream(MFT, BITMAP, &[])?.ok_or(Error::NoSpace {
            what: "$MFT:$BITMAP",
        })?;
        self.write_stream_data(
            &mut st,
            num / 8,
            &bm[(num / 8) as usize..=(num / 8) as usize],
        )
    }
}
