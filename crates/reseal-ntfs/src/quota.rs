//! `$Extend\$Quota`: `$O` (SID → owner id) and `$Q` (owner id → quota entry with SID).
//! Reference: FORMATS.md C.6.

use std::cmp::Ordering;

use reseal_disk::Device;

use crate::error::{Error, Result};
use crate::record::le16;
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
                let o = usize::from(le16(e, 0));
                let l = usize::from(le16(e, 2));
                if l <= 48 {
                    // The default-limits entry (id 1) has no SID.
                    continue;
                }
                let so = o + 48;
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
                let kl = usize::from(le16(e, 10));
                let Some(sl) = e.get(16..16 + kl).and_then(sid_len) else {
                    skipped(crate::Skipped {
                        structure: "$O entry",
                        record: Some(num),
                        reason: format!("key (length {kl}) holds no valid SID; not rewritten"),
                    });
                    continue;
                };
                if let Some(n) = f(&e[16..16 + sl]) {
                    if n.len() != sl {
                        return Err(Error::unsupported(Some(num), "$O SID would change length"));
                    }
                    if n != e[16..16 + sl] {
                        e[16..16 + sl].copy_from_slice(&n);
                        odirty = true;
                        changed += 1;
                    }
                }
            }
            if odirty {
                o.sort_by(|a, b| {
                    let ka = &a[16..16 + usize::from(le16(a, 10))];
                    let kb = &b[16..16 + usize::from(le16(b, 10))];
                    sid_cmp(ka, kb)
                });
                v.write_index(num, &on, &o)?;
            }
            Ok(changed)
        })
    }
}
