//! Key security (`sk` cells): reference counts, a key's descriptor, replacing it (shared sk
//! cells reused), and rewriting every descriptor in place.

use zerocopy::little_endian::U32;
use zerocopy::IntoBytes;

use crate::error::{HiveError, Result};
use crate::hive::{limits, CellOffset, Hive, KeyOffset};
use crate::key_node::Key;
use crate::key_security::{validate_descriptor, Sk};
use crate::layout::sk::{SkHeader, HEADER_SIZE};

impl Hive {
    pub(super) fn sk_addref(&mut self, sk: CellOffset, delta: i32) -> Result<()> {
        let rc = Sk::new(self, sk)?.refcount();
        let n = if delta >= 0 {
            rc.saturating_add(delta as u32)
        } else {
            rc.saturating_sub(delta.unsigned_abs())
        };
        self.update_sk(sk, |h| h.reference_count = U32::new(n))?;
        if n == 0 {
            let s = Sk::new(self, sk)?;
            let (next, prev) = (s.flink(), s.blink());
            if next != sk {
                Sk::new(self, next)?;
                Sk::new(self, prev)?;
                self.update_sk(prev, |h| h.flink = U32::new(next.0))?;
                self.update_sk(next, |h| h.blink = U32::new(prev.0))?;
            }
            self.free_cell(sk)?;
        }
        Ok(())
    }

    /// Changes the fixed part of the security cell `sk` through `f`.
    fn update_sk(&mut self, sk: CellOffset, f: impl FnOnce(&mut SkHeader)) -> Result<()> {
        self.update_cell(sk, "sk", f)
    }

    /// The security descriptor bytes of a key (copy).
    ///
    /// # Errors
    /// Invalid sk cell.
    pub fn security_of(&self, key: KeyOffset) -> Result<Vec<u8>> {
        Ok(Key::new(self, key)?.security()?.descriptor().to_vec())
    }

    /// Replaces a key's security descriptor. Identical descriptors share one sk cell;
    /// refcounts and the circular flink/blink list are maintained; an sk whose refcount
    /// drops to 0 is unlinked and freed.
    ///
    /// # Errors
    /// Read-only, descriptor fails [`validate_descriptor`], corruption.
    pub fn set_security(&mut self, key: KeyOffset, descriptor: &[u8]) -> Result<()> {
        self.check_writable()?;
        validate_descriptor(descriptor)?;
        let k = Key::new(self, key)?;
        let old = k.security_offset();
        let anchor = if !old.is_nil() && Sk::new(self, old).is_ok() {
            old
        } else {
            self.root()?.security_offset()
        };
        if let Ok(s) = Sk::new(self, old) {
            if s.descriptor() == descriptor {
                return Ok(());
            }
        }
        // look for an identical descriptor along the list
        let mut found = None;
        if Sk::new(self, anchor).is_ok() {
            let mut cur = anchor;
            for _ in 0..limits::MAX_SK_CHAIN {
                let s = Sk::new(self, cur)?;
                if s.descriptor() == descriptor {
                    found = Some(cur);
                    break;
                }
                cur = s.flink();
                if cur == anchor {
                    break;
                }
            }
        }
        let new = match found {
            Some(s) => {
                self.sk_addref(s, 1)?;
                s
            }
            None => {
                let header = SkHeader::new(0, 0, 1, descriptor.len() as u32);
                let mut cell = header.as_bytes().to_vec();
                cell.extend_from_slice(descriptor);
                let n = self.alloc_with(&cell)?;
                if let Ok(a) = Sk::new(self, anchor) {
                    let next = a.flink();
                    if let Err(e) = Sk::new(self, next) {
                        self.free_cell(n)?;
                        return Err(e);
                    }
                    self.update_sk(n, |h| {
                        h.flink = U32::new(next.0);
                        h.blink = U32::new(anchor.0);
                    })?;
                    self.update_sk(anchor, |h| h.flink = U32::new(n.0))?;
                    self.update_sk(next, |h| h.blink = U32::new(n.0))?;
                } else {
                    self.update_sk(n, |h| {
                        h.flink = U32::new(n.0);
                        h.blink = U32::new(n.0);
                    })?;
                }
                n
            }
        };
        self.update_key(key, |h| h.key_security_offset = U32::new(new.0))?;
        if !old.is_nil() && Sk::new(self, old).is_ok() {
            self.sk_addref(old, -1)?;
        }
        Ok(())
    }

    /// Rewrites every sk cell's descriptor in place, walking the circular sk list from the
    /// root key's sk. `f(cell, descriptor)` returns a replacement of the **same length** (or
    /// `None` to keep it); each replacement must pass [`validate_descriptor`]. Returns how many
    /// sk cells changed.
    ///
    /// Refcounts, flink/blink and every key's sk pointer are unchanged. Two sk cells that become
    /// byte-identical after the rewrite stay separate cells: the format does not require
    /// uniqueness (Windows merges only when it assigns a descriptor), and hivex, regipy and
    /// this crate's checker accept duplicates. All-or-nothing: every replacement is checked
    /// before anything is written.
    ///
    /// # Errors
    /// Read-only, a length change, a replacement that fails validation, a corrupt sk list.
    pub fn rewrite_security(
        &mut self,
        mut f: impl FnMut(CellOffset, &[u8]) -> Option<Vec<u8>>,
    ) -> Result<usize> {
        self.check_writable()?;
        let anchor = self.root()?.security_offset();
        let mut planned: Vec<(CellOffset, Vec<u8>)> = Vec::new();
        if !anchor.is_nil() {
            let mut cur = anchor;
            for _ in 0..limits::MAX_SK_CHAIN {
                let s = Sk::new(self, cur)?;
                let old = s.descriptor();
                if let Some(new) = f(cur, old) {
                    if new.len() != old.len() {
                        return Err(HiveError::InvalidArgument {
                            reason: format!(
                                "sk cell {:#x}: descriptor would change length ({} -> {})",
                                cur.0,
                                old.len(),
                                new.len()
                            ),
                        });
                    }
                    if new != old {
                        if let Err(e) = validate_descriptor(&new) {
                            let reason = match e {
                                HiveError::InvalidArgument { reason } => reason,
                                other => other.to_string(),
                            };
                            // A stored descriptor that was already invalid is corruption of
                            // this cell; otherwise the caller's replacement is at fault.
                            return Err(if validate_descriptor(old).is_err() {
                                HiveError::Corrupt {
                                    structure: "sk",
                                    cell: cur,
                                    reason,
                                }
                            } else {
                                HiveError::InvalidArgument {
                                    reason: format!("sk cell {:#x}: replacement {reason}", cur.0),
                                }
                            });
                        }
                        planned.push((cur, new));
                    }
                }
                cur = s.flink();
                if cur == anchor {
                    break;
                }
            }
        }
        let n = planned.len();
        for (cell, bytes) in planned {
            self.write_cell_data(cell, "sk", HEADER_SIZE, &bytes)?;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod rewrite_security_tests {
    use super::*;

    /// O:BA G:BA D:(A;;GA;;;<sid>) with a 5-sub-authority SID of domain 1-2-3 and `rid`.
    fn sd(rid: u32) -> Vec<u8> {
        let mut sid = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
        for v in [21u32, 1, 2, 3, rid] {
            sid.extend_from_slice(&v.to_le_bytes());
        }
        let ba: [u8; 16] = [1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 32, 2, 0, 0];
        let ace_len = 8 + sid.len();
        let acl_len = 8 + ace_len;
        let mut d = vec![1u8, 0, 0x04, 0x80];
        let owner = 20u32;
        let group = owner + 16;
        let dacl = group + 16;
        d.extend_from_slice(&owner.to_le_bytes());
        d.extend_from_slice(&group.to_le_bytes());
        d.extend_from_slice(&0u32.to_le_bytes());
        d.extend_from_slice(&dacl.to_le_bytes());
        d.extend_from_slice(&ba);
        d.extend_from_slice(&ba);
        d.extend_from_slice(&[2, 0]);
        d.extend_from_slice(&(acl_len as u16).to_le_bytes());
        d.extend_from_slice(&[1, 0, 0, 0]);
        d.extend_from_slice(&[0, 0]);
        d.extend_from_slice(&(ace_len as u16).to_le_bytes());
        d.extend_from_slice(&0x1000_0000u32.to_le_bytes());
        d.extend_from_slice(&sid);
        d
    }

    #[test]
    fn rewrites_every_sk_in_place_and_keeps_refcounts() {
        let mut h = Hive::new_empty("ROOT", &sd(500)).unwrap();
        let root = h.root_offset();
        let a = h.create_key(root, "a").unwrap();
        let b = h.create_key(root, "b").unwrap();
        let c = h.create_key(root, "c").unwrap();
        h.set_security(a, &sd(1000)).unwrap();
        h.set_security(b, &sd(1000)).unwrap();
        h.set_security(c, &sd(1001)).unwrap();
        let refs = |h: &Hive, k| Key::new(h, k).unwrap().security().unwrap().refcount();
        let before: Vec<u32> = [root, a, c].iter().map(|&k| refs(&h, k)).collect();
        let len = h.as_bytes().len();
        // Replace domain 1-2-3 by 7-8-9 (same length).
        let n = h
            .rewrite_security(|_, d| {
                let mut v = d.to_vec();
                let old: Vec<u8> = [1u32, 2, 3].iter().flat_map(|x| x.to_le_bytes()).collect();
                let new: Vec<u8> = [7u32, 8, 9].iter().flat_map(|x| x.to_le_bytes()).collect();
                let p = v.windows(12).position(|w| w == old.as_slice())?;
                v[p..p + 12].copy_from_slice(&new);
                Some(v)
            })
            .unwrap();
        assert_eq!(n, 3, "three distinct sk cells");
        assert_eq!(h.as_bytes().len(), len, "nothing allocated");
        let mut want = sd(1000);
        let p = want.len() - 16;
        want[p..p + 12].copy_from_slice(
            &[7u32, 8, 9]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect::<Vec<u8>>(),
        );
        assert_eq!(h.security_of(a).unwrap(), want);
        assert_eq!(h.security_of(b).unwrap(), want);
        let after: Vec<u32> = [root, a, c].iter().map(|&k| refs(&h, k)).collect();
        assert_eq!(before, after);
        // A length change is refused and writes nothing.
        let snapshot = h.as_bytes().to_vec();
        assert!(h
            .rewrite_security(|_, d| Some(d[..d.len() - 4].to_vec()))
            .is_err());
        assert_eq!(h.as_bytes(), snapshot.as_slice());
        h.commit().unwrap();
        let reopened = Hive::from_bytes(h.to_bytes()).unwrap();
        assert!(crate::check(&reopened)
            .iter()
            .all(|p| p.severity != crate::Severity::Error));
    }
}
