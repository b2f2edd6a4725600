//! `$Extend\$Quota`: `$O` (SID → owner id) and `$Q` (owner id → quota entry with SID).
//! Reference: FORMATS.md C.6.

use std::cmp::Ordering;

use reseal_disk::Device;

use crate::error::{Error, Result};
use crate::layout::index::{self as index_layout, IndexEntryHeader, ENTRY_HEADER_LEN};
use crate::layout::quota::QUOTA_CONTROL_LEN;
use crate::volume::Volume;

fn name(s: &str) -> Vec<u16> {
    s.encode_utf16().collect()
}

fn sid_len(b: &[u8]) -> Option<usize> {
    let n = usize::from(*b.get(1)?);
    let l = 8 + 4 * n;
    (n <= 15 && b.len() >= l).then_some(l)
}

/// NTOFS_SID collation as implemented by Apple's ntfs_collate.c: binary compare, shorter first.
fn sid_cmp(a: &[u8], b: &[u8]) -> Ordering {
    let n = a.len().min(b.len());
    match a[..n].cmp(&b[..n]) {
        Ordering::Equal => a.len().cmp(&b.len()),
        o => o,
    }
}

impl<D: Device> Volume<D> {
    /// Rewrite the SIDs in `$Quota` (`$Q` entry SIDs in place; `$O` keys replaced and the index
    /// re-sorted). `f` returns a same-length replacement SID or `None`. Returns how many SIDs
    /// changed; 0 when the volume has no `$Extend\$Quota`.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for a length change; corruption errors.
    pub fn rewrite_quota_sids(&mut self, f: impl FnMut(&[u8]) -> Option<Vec<u8>>) -> Result<usize> {
        self.rewrite_quota_sids_with(f, |_| {})
    }

    /// [`Volume::rewrite_quota_sids`], telling `skipped` about every `$Q`/`$O` entry whose SID
    /// cannot be located (malformed entry) instead of passing over it in silence.
    ///
    /// # Errors
    /// As [`Volume::rewrite_quota_sids`].
    pub fn rewrite_quota_sids_with(
        &mut self,
        mut f: impl FnMut(&[u8]) -> Option<Vec<u8>>,
        mut skipped: impl FnMut(crate::Skipped),
    ) -> Result<usize> {
        let num = match self.lookup("$Extend/$Quota") {
            Ok(n) => n,
            Err(Error::NotFound { .. }) => return Ok(0),
            Err(e) => return Err(e),
        };
        self.tx(|v| {
            let mut changed = 0;
            let qn = name("$Q");
            let (_, mut q) = v.read_index(num, &qn)?;
            let mut qdirty = false;
            for e in &mut q {
                let Some((o, l)) = IndexEntryHeader::view(e).map(IndexEntryHeader::data) else {
                    continue;
                };
                if l <= QUOTA_CONTROL_LEN {
                    // The default-limits entry (id 1) has no SID.
                    continue;
                }
                let so = o + QUOTA_CONTROL_LEN;
                let Some(sl) = e.get(so..o + l).and_then(sid_len) else {
                    skipped(crate::Skipped {
                        structure: "$Q entry",
                        record: Some(num),
                        reason: format!(
                            "data at {o} (length {l}) holds no valid SID; not rewritten"
                        ),
                    });
                    continue;
                };
                if let Some(n) = f(&e[so..so + sl]) {
                    if n.len() != sl {
                        return Err(Error::unsupported(Some(num), "$Q SID would change length"));
                    }
                    if n != e[so..so + sl] {
                        e[so..so + sl].copy_from_slice(&n);
                        qdirty = true;
                        changed += 1;
                    }
                }
            }
            if qdirty {
                v.write_index(num, &qn, &q)?;
            }
            let on = name("$O");
            let (_, mut o) = v.read_index(num, &on)?;
            let mut odirty = false;
            for e in &mut o {
                let kl = IndexEntryHeader::view(e).map_or(0, |h| usize::from(h.key_length.get()));
                let Some(sl) = index_layout::key(e).and_then(sid_len) else {
                    skipped(crate::Skipped {
                        structure: "$O entry",
                        record: Some(num),
                        reason: format!("key (length {kl}) holds no valid SID; not rewritten"),
                    });
                    continue;
                };
                let sid = ENTRY_HEADER_LEN..ENTRY_HEADER_LEN + sl;
                if let Some(n) = f(&e[sid.clone()]) {
                    if n.len() != sl {
                        return Err(Error::unsupported(Some(num), "$O SID would change length"));
                    }
                    if n != e[sid.clone()] {
                        e[sid].copy_from_slice(&n);
                        odirty = true;
                        changed += 1;
                    }
                }
            }
            if odirty {
                o.sort_by(|a, b| {
                    let ka = index_layout::key(a).unwrap_or(&[]);
                    let kb = index_layout::key(b).unwrap_or(&[]);
                    sid_cmp(ka, kb)
                });
                v.write_index(num, &on, &o)?;
            }
            Ok(changed)
        })
    }
}
