//! SAM and SECURITY value layouts (FORMATS.md A.1, A.2), as pure functions over value bytes.
//!
//! * `SAM\Domains\Account\V`: 4 descriptors `{u32 offset, u32 length, u32 qualifier}`, data
//!   area at 0x30; descriptor 1 is the account-domain (machine) SID.
//! * `SAM\Domains\Account\Users\<RID>\V`: 17 descriptors, data area at 0xCC; 1 = user name,
//!   2 = full name, 3 = comment (UTF-16LE).
//! * `...\Users\<RID>\F`: 0x08 last logon FILETIME, 0x30 RID, 0x38 account-control bits (ACB,
//!   0x0001 = disabled), 0x40 bad-password count, 0x42 logon count.
//! * SECURITY `Policy\PolAcDmN`/`PolPrDmN`: `u16 Length, u16 MaximumLength, u32 offset` then the
//!   UTF-16LE name.

use reseal_security::Sid;

use crate::{Error, Result};

fn u16_at(b: &[u8], o: usize) -> Option<u16> {
    let s = b.get(o..o.checked_add(2)?)?;
    Some(u16::from_le_bytes([s[0], s[1]]))
}
fn u32_at(b: &[u8], o: usize) -> Option<u32> {
    let s = b.get(o..o.checked_add(4)?)?;
    Some(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}
fn u64_at(b: &[u8], o: usize) -> Option<u64> {
    let s = b.get(o..o.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(s);
    Some(u64::from_le_bytes(a))
}

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
    let base = count * 12;
    let at = index * 12;
    let (Some(off), Some(len)) = (u32_at(v, at), u32_at(v, at + 4)) else {
        return Err(Error::Invalid {
            what,
            reason: format!(
                "V value of {} bytes is shorter than its descriptor table ({base} bytes)",
                v.len()
            ),
        });
    };
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
    let get = || -> Option<UserF> {
        Some(UserF {
            last_logon: u64_at(f, 0x08)?,
            rid: u32_at(f, 0x30)?,
            acb: u16_at(f, 0x38)?,
            logon_count: u16_at(f, 0x42)?,
        })
    };
    get().ok_or(Error::Invalid {
        what: "SAM user F",
        reason: format!("F value of {} bytes is shorter than 0x44", f.len()),
    })
}

/// Decode a `UNICODE_STRING`-style LSA name value (`PolAcDmN`, `PolPrDmN`, ...).
///
/// # Errors
/// [`Error::Invalid`] when the header is truncated or the string runs past the data.
pub fn parse_lsa_name(d: &[u8], what: &'static str) -> Result<String> {
    let (Some(len), Some(off)) = (u16_at(d, 0), u32_at(d, 4)) else {
        return Err(Error::Invalid {
            what,
            reason: format!("{} bytes, shorter than the 8-byte header", d.len()),
        });
    };
    let off = off as usize;
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
    let mut out = Vec::with_capacity(10 + units.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(len + 2).to_le_bytes());
    out.extend_from_slice(&8u32.to_le_bytes());
    out.extend_from_slice(&units);
    out.extend_from_slice(&[0, 0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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
