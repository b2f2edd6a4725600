//! SAM and SECURITY value layouts (FORMATS.md A.1, A.2), as pure functions over value bytes.
//!
//! * `SAM\Domains\Account\V`: 4 descriptors `{u32 offset, u32 length, u32 qualifier}`, data
//!   area at 0x30; descriptor 1 is the account-domain (machine) SID.
//! * `SAM\Domains\Account\Users\<RID>\V`: 17 descriptors, data area at 0xCC; 1 = user name,
//!   2 = full name, 3 = comment (UTF-16LE), 13 = LM hash, 14 = NT hash, 15/16 = password
//!   histories (docs/SAM.md); [`replace_user_v_field`] rewrites one field and moves the rest.
//! * `...\Users\<RID>\F`: 0x08 last logon FILETIME, 0x18 password last set, 0x30 RID, 0x38
//!   account-control bits (ACB, 0x0001 = disabled, 0x0400 = locked out), 0x40 bad-password
//!   count, 0x42 logon count.
//! * SECURITY `Policy\PolAcDmN`/`PolPrDmN`: `u16 Length, u16 MaximumLength, u32 offset` then the
//!   UTF-16LE name.

use reseal_security::Sid;

use zerocopy::IntoBytes;

use crate::layout::hash_entry::HashEntryHeader;
use crate::layout::lsa_name::{self, LsaNameHeader};
use crate::layout::sam_f;
use crate::layout::sam_v::{self, DESCRIPTOR_SIZE};
use crate::{Error, Result};

/// Number of descriptors in the domain `V` value.
pub const DOMAIN_V_DESCRIPTORS: usize = 4;
/// Number of descriptors in a user `V` value.
pub const USER_V_DESCRIPTORS: usize = 17;
/// ACB bit: account disabled.
pub const ACB_DISABLED: u16 = 0x0001;

/// One `{offset, length}` descriptor of a SAM `V` value, resolved to an absolute range.
fn v_field(
    v: &[u8],
    count: usize,
    index: usize,
    what: &'static str,
) -> Result<std::ops::Range<usize>> {
    let base = count * DESCRIPTOR_SIZE;
    let Some(d) = sam_v::table(v, count).and_then(|t| t.get(index)) else {
        return Err(Error::Invalid {
            what,
            reason: format!(
                "V value of {} bytes is shorter than its descriptor table ({base} bytes)",
                v.len()
            ),
        });
    };
    let (off, len) = (d.offset.get(), d.length.get());
    let start = base.checked_add(off as usize);
    let end = start.and_then(|s| s.checked_add(len as usize));
    match (start, end) {
        (Some(s), Some(e)) if e <= v.len() => Ok(s..e),
        _ => Err(Error::Invalid {
            what,
            reason: format!(
                "descriptor {index} (offset {off:#x} + {base:#x}, length {len:#x}) runs past the end of the {}-byte V value",
                v.len()
            ),
        }),
    }
}

/// ACB bit: locked out by the bad-password policy.
pub const ACB_AUTOLOCKED: u16 = 0x0400;
/// Offset of the password-last-set FILETIME in a user `F` ([`sam_f::UserF::password_last_set`]).
pub const F_PASSWORD_LAST_SET: usize = core::mem::offset_of!(sam_f::UserF, password_last_set);
/// Offset of the ACB bits (u16) in a user `F` ([`sam_f::UserF::acb`]).
pub const F_ACB: usize = core::mem::offset_of!(sam_f::UserF, acb);
/// Offset of the bad-password count (u16) in a user `F` ([`sam_f::UserF::bad_password_count`]).
pub const F_BAD_PASSWORD_COUNT: usize = core::mem::offset_of!(sam_f::UserF, bad_password_count);

const _: () = assert!(F_PASSWORD_LAST_SET == 0x18 && F_ACB == 0x38 && F_BAD_PASSWORD_COUNT == 0x40);
/// `V` descriptor of the user name.
pub const V_NAME: usize = 1;
/// `V` descriptor of the LM hash.
pub const V_LM: usize = 13;
/// `V` descriptor of the NT hash.
pub const V_NT: usize = 14;
/// `V` descriptors of the two password histories.
pub const V_HISTORY: [usize; 2] = [15, 16];

/// One `{offset, length, qualifier}` descriptor of a user `V` (offset relative to 0xCC).
#[derive(Debug, Clone, Copy)]
struct Desc {
    off: usize,
    len: usize,
}

fn descriptors(v: &[u8]) -> Result<Vec<Desc>> {
    let base = USER_V_DESCRIPTORS * DESCRIPTOR_SIZE;
    let Some(table) = sam_v::table(v, USER_V_DESCRIPTORS) else {
        return Err(Error::Invalid {
            what: "SAM user V",
            reason: format!(
                "{} bytes, shorter than the {base:#x}-byte descriptor table",
                v.len()
            ),
        });
    };
    let mut out = Vec::with_capacity(USER_V_DESCRIPTORS);
    for (i, d) in table.iter().enumerate() {
        let at = i * DESCRIPTOR_SIZE;
        let off = d.offset.get() as usize;
        let len = d.length.get() as usize;
        match base.checked_add(off).and_then(|s| s.checked_add(len)) {
            Some(end) if end <= v.len() => out.push(Desc { off, len }),
            _ => {
                return Err(Error::Invalid {
                    what: "SAM user V",
                    reason: format!(
                        "descriptor {i} at byte {at:#x} (offset {off:#x}, length {len:#x}) runs past the {}-byte value",
                        v.len()
                    ),
                })
            }
        }
    }
    Ok(out)
}

/// The bytes of descriptor `i` of a user `V`.
///
/// # Errors
/// [`Error::Invalid`] when the table is truncated or a descriptor points outside the value.
pub fn user_v_field(v: &[u8], i: usize) -> Result<&[u8]> {
    let d = descriptors(v)?;
    let field = d.get(i).and_then(|d| {
        let s = USER_V_DESCRIPTORS * DESCRIPTOR_SIZE + d.off;
        v.get(s..s + d.len)
    });
    field.ok_or_else(|| Error::Invalid {
        what: "SAM user V",
        reason: format!("no descriptor {i} (the table has {USER_V_DESCRIPTORS})"),
    })
}

/// A user `V` with field `i` replaced by `data`: the bytes after it move by the difference
/// (fields stay 4-byte aligned) and every later descriptor's offset with them; every other byte
/// is kept.
///
/// # Errors
/// As [`user_v_field`].
pub fn replace_user_v_field(v: &[u8], i: usize, data: &[u8]) -> Result<Vec<u8>> {
    let base = USER_V_DESCRIPTORS * DESCRIPTOR_SIZE;
    let d = descriptors(v)?;
    if i >= d.len() {
        return Err(Error::Invalid {
            what: "SAM user V",
            reason: format!("no descriptor {i} (the table has {USER_V_DESCRIPTORS})"),
        });
    }
    let start = base + d[i].off;
    let old_end = start + d[i].len;
    // The old field's region runs to its 4-byte padding, unless another field starts first.
    let next = d
        .iter()
        .enumerate()
        .filter(|&(j, x)| j != i && base + x.off >= old_end && (base + x.off > start || j > i))
        .map(|(_, x)| base + x.off)
        .min()
        .unwrap_or(v.len());
    let region_end = (start + d[i].len.next_multiple_of(4))
        .min(next)
        .max(old_end);
    if let Some(j) = (0..d.len()).find(|&j| {
        let o = base + d[j].off;
        j != i && o > start && o < region_end
    }) {
        return Err(Error::Invalid {
            what: "SAM user V",
            reason: format!(
                "descriptor {j} starts inside descriptor {i}'s field at byte {start:#x}"
            ),
        });
    }
    let mut new_region = data.to_vec();
    if region_end < v.len() || region_end > old_end {
        new_region.resize(data.len().next_multiple_of(4), 0);
    }
    let delta = new_region.len() as i64 - (region_end - start) as i64;
    let mut out = Vec::with_capacity(v.len() + new_region.len());
    out.extend_from_slice(&v[..start]);
    out.extend_from_slice(&new_region);
    out.extend_from_slice(&v[region_end..]);
    // `out` keeps the table: the field starts after it.
    let table = sam_v::table_mut(&mut out, USER_V_DESCRIPTORS).ok_or(Error::Invalid {
        what: "SAM user V",
        reason: "the descriptor table does not fit the new value".into(),
    })?;
    for ((j, x), t) in d.iter().enumerate().zip(table.iter_mut()) {
        let after = j != i && (x.off + base > start || (x.off + base == start && j > i));
        let off = if after {
            (x.off as i64 + delta) as usize
        } else {
            x.off
        };
        let len = if j == i { data.len() } else { x.len };
        let off = u32::try_from(off).map_err(|_| Error::Invalid {
            what: "SAM user V",
            reason: "the value would exceed 4 GiB".into(),
        })?;
        t.offset.set(off);
        t.length.set(len as u32);
    }
    Ok(out)
}

/// Whether a user hash entry (`V` descriptor 13 or 14) holds a hash: revision 1 with 16 bytes
/// after its 4-byte header, or revision 2 with data after its 24-byte header.
pub fn hash_entry_set(entry: &[u8]) -> bool {
    use crate::layout::hash_entry::{REVISION_AES, REVISION_RC4};
    match (
        HashEntryHeader::view(entry).map(|h| h.revision.get()),
        entry.len(),
    ) {
        (Some(REVISION_RC4), n) => n >= 20,
        (Some(REVISION_AES), n) => n > 24,
        _ => false,
    }
}

/// The account-domain (machine) SID from `SAM\Domains\Account\V`, read through its
/// descriptor table (descriptor 1), and the byte range where it sits.
///
/// # Errors
/// [`Error::Invalid`] when the table is truncated, the field is not 24 bytes, or the SID is
/// not of the form S-1-5-21-X-Y-Z.
pub fn domain_sid_from_v(v: &[u8]) -> Result<(Sid, std::ops::Range<usize>)> {
    let what = "SAM Domains\\Account\\V";
    let r = v_field(v, DOMAIN_V_DESCRIPTORS, 1, what)?;
    let bytes = &v[r.clone()];
    let sid = Sid::from_bytes(bytes).map_err(|e| Error::Invalid {
        what,
        reason: format!("domain SID at byte {:#x}: {e}", r.start),
    })?;
    if !sid.is_account_domain() || sid.len() != bytes.len() {
        return Err(Error::Invalid {
            what,
            reason: format!(
                "{sid} at byte {:#x} is not an account-domain SID S-1-5-21-X-Y-Z",
                r.start
            ),
        });
    }
    Ok((sid, r))
}

fn utf16(b: &[u8]) -> String {
    let u: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&u)
        .trim_end_matches('\0')
        .to_string()
}

/// Name, full name and comment of a user `V` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserV {
    /// Account name.
    pub name: String,
    /// Full name.
    pub full_name: String,
    /// Comment (description).
    pub comment: String,
}

/// Parse a user `V` value.
///
/// # Errors
/// [`Error::Invalid`] when the descriptor table is truncated or points outside the value.
pub fn parse_user_v(v: &[u8]) -> Result<UserV> {
    let what = "SAM user V";
    let f = |i| v_field(v, USER_V_DESCRIPTORS, i, what).map(|r| utf16(&v[r]));
    Ok(UserV {
        name: f(1)?,
        full_name: f(2)?,
        comment: f(3)?,
    })
}

/// Facts of a user `F` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserF {
    /// Last logon FILETIME (0 = never).
    pub last_logon: u64,
    /// RID stored in F.
    pub rid: u32,
    /// Account-control bits.
    pub acb: u16,
    /// Logon count.
    pub logon_count: u16,
}

/// Size of a user `F` value on NT 4 .. Windows 11.
pub const USER_F_LEN: usize = 0x50;

/// Parse a user `F` value.
///
/// # Errors
/// [`Error::Invalid`] when it is shorter than 0x44 bytes.
pub fn parse_user_f(f: &[u8]) -> Result<UserF> {
    let view = sam_f::UserF::view(f).ok_or(Error::Invalid {
        what: "SAM user F",
        reason: format!(
            "F value of {} bytes is shorter than {:#x}",
            f.len(),
            sam_f::SIZE
        ),
    })?;
    Ok(UserF {
        last_logon: view.last_logon.get(),
        rid: view.rid.get(),
        acb: view.acb.get(),
        logon_count: view.logon_count.get(),
    })
}

/// Decode a `UNICODE_STRING`-style LSA name value (`PolAcDmN`, `PolPrDmN`, ...).
///
/// # Errors
/// [`Error::Invalid`] when the header is truncated or the string runs past the data.
pub fn parse_lsa_name(d: &[u8], what: &'static str) -> Result<String> {
    let Some(h) = LsaNameHeader::view(d) else {
        return Err(Error::Invalid {
            what,
            reason: format!(
                "{} bytes, shorter than the {}-byte header",
                d.len(),
                lsa_name::SIZE
            ),
        });
    };
    let (len, off) = (h.length.get(), h.offset.get() as usize);
    let s = off.checked_add(len as usize).and_then(|e| d.get(off..e));
    match s {
        Some(s) => Ok(utf16(s)),
        None => Err(Error::Invalid {
            what,
            reason: format!(
                "name of {len} bytes at offset {off} runs past the {}-byte value",
                d.len()
            ),
        }),
    }
}

/// Encode a `UNICODE_STRING`-style LSA name value (offset 8, terminating NUL included in the
/// data but not in `Length`, `MaximumLength = Length + 2`), as Windows stores `PolAcDmN`.
pub fn encode_lsa_name(name: &str) -> Vec<u8> {
    let units: Vec<u8> = name.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
    let len = units.len() as u16;
    let header = LsaNameHeader {
        length: len.into(),
        maximum_length: (len + 2).into(),
        offset: (lsa_name::SIZE as u32).into(),
    };
    let mut out = Vec::with_capacity(lsa_name::SIZE + 2 + units.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&units);
    out.extend_from_slice(&[0, 0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v_with(fields: &[&[u8]]) -> Vec<u8> {
        let mut table = vec![0u8; USER_V_DESCRIPTORS * 12];
        let mut data = Vec::new();
        for i in 0..USER_V_DESCRIPTORS {
            let f = fields.get(i).copied().unwrap_or(&[]);
            table[i * 12..i * 12 + 4].copy_from_slice(&(data.len() as u32).to_le_bytes());
            table[i * 12 + 4..i * 12 + 8].copy_from_slice(&(f.len() as u32).to_le_bytes());
            table[i * 12 + 8..i * 12 + 12].copy_from_slice(&(i as u32).to_le_bytes());
            data.extend_from_slice(f);
            while data.len() % 4 != 0 {
                data.push(0);
            }
        }
        table.extend(data);
        table
    }

    #[test]
    fn replace_keeps_other_fields() {
        let fields: Vec<Vec<u8>> = (0..USER_V_DESCRIPTORS)
            .map(|i| vec![i as u8 + 1; (i * 7) % 13])
            .collect();
        let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
        let v = v_with(&refs);
        for i in 0..USER_V_DESCRIPTORS {
            for new_len in [0usize, 1, 5, 16, 33] {
                let new = vec![0xEE; new_len];
                let out = replace_user_v_field(&v, i, &new).unwrap();
                for j in 0..USER_V_DESCRIPTORS {
                    let want = if j == i { &new[..] } else { &fields[j][..] };
                    assert_eq!(
                        user_v_field(&out, j).unwrap(),
                        want,
                        "field {j} after replacing {i}"
                    );
                    // Qualifiers are kept.
                    assert_eq!(out[j * 12 + 8], j as u8);
                }
                let back = replace_user_v_field(&out, i, &fields[i]).unwrap();
                assert_eq!(back, v, "round trip of field {i} via {new_len} bytes");
            }
        }
    }

    #[test]
    fn hostile_v_values_do_not_panic() {
        let mut x: u64 = 0x1234_5678;
        for n in [0usize, 10, 0xCC, 0xCD, 0x100, 0x200] {
            for _ in 0..200 {
                let v: Vec<u8> = (0..n)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        // Small numbers so that some descriptors are in range.
                        if x % 3 == 0 {
                            (x >> 8) as u8 & 0x3f
                        } else {
                            0
                        }
                    })
                    .collect();
                for i in 0..USER_V_DESCRIPTORS {
                    let _ = user_v_field(&v, i);
                    let _ = replace_user_v_field(&v, i, &[1, 2, 3, 4, 5]);
                    let _ = replace_user_v_field(&v, i, &[]);
                }
            }
        }
    }

    #[test]
    fn hostile_values_do_not_panic() {
        for n in 0..80 {
            let v = vec![0xffu8; n];
            let _ = domain_sid_from_v(&v);
            let _ = parse_user_v(&v);
            let _ = parse_user_f(&v);
            let _ = parse_lsa_name(&v, "x");
        }
    }

    #[test]
    fn lsa_name_round_trip() {
        let e = encode_lsa_name("DESKTOP-M964FJN");
        assert_eq!(parse_lsa_name(&e, "x").unwrap(), "DESKTOP-M964FJN");
    }
}
