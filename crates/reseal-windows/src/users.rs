//! Local accounts of an install's SAM: list, set or blank a password, enable, disable, unlock,
//! rename (docs/SAM.md). Operations work on `Hive` objects (the SAM made writable by the
//! caller, the SYSTEM for the boot key); the caller commits and writes the hive.
//!
//! Every write names its account by name (case-insensitive, as Windows compares them); an
//! unknown name is [`Error::UnknownUser`] and nothing is changed.

use reseal_hive::{Hive, KeyOffset};
use serde::Serialize;

use crate::layout::hash_entry::{HashEntryHeader, REVISION_RC4};
use crate::layout::sam_f::{self, UserF};
use crate::sam::{self, ACB_AUTOLOCKED, ACB_DISABLED, V_HISTORY, V_LM, V_NAME, V_NT};
use crate::sam_crypto::{self, HashKind, SamKey, Scheme};
use crate::{Error, Result};

const USERS: &str = "SAM\\Domains\\Account\\Users";

/// A local account as `reseal user list` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LocalUser {
    /// Account name.
    pub name: String,
    /// RID.
    pub rid: u32,
    /// SID (machine SID + RID), when the machine SID is readable.
    pub sid: Option<String>,
    /// ACB_DISABLED clear.
    pub enabled: bool,
    /// ACB_AUTOLOCKED set.
    pub locked: bool,
    /// The NT hash entry holds a hash (an empty entry is a blank password).
    pub password_set: bool,
    /// Scheme of the NT hash entry (`rc4`, `aes`), when it has one.
    pub hash_scheme: Option<Scheme>,
    /// Last logon, RFC 3339 UTC; `None` = never.
    pub last_logon: Option<String>,
    /// Password last set, RFC 3339 UTC; `None` = never.
    pub password_last_set: Option<String>,
    /// Bad-password count.
    pub bad_password_count: u16,
    /// Account-control bits.
    pub acb: u16,
    /// Full name.
    pub full_name: String,
}

/// The `F` view of an account ([`accounts`] keeps only values of at least
/// [`sam::USER_F_LEN`] bytes, so it is there).
fn f_view(f: &[u8]) -> Option<&UserF> {
    UserF::view(f)
}

/// The mutable `F` view of an account's `F` value.
fn f_view_mut(f: &mut [u8]) -> Result<&mut UserF> {
    let len = f.len();
    UserF::view_mut(f).ok_or(Error::Invalid {
        what: "SAM user F",
        reason: format!("F value of {len} bytes is shorter than {:#x}", sam_f::SIZE),
    })
}

/// A FILETIME as RFC 3339 UTC (`2023-09-24T03:33:20Z`); `None` for 0 and "never" (all ones).
pub fn filetime_rfc3339(ft: u64) -> Option<String> {
    if ft == 0 || ft >= 0x7fff_ffff_ffff_ffff {
        return None;
    }
    let secs = (ft / 10_000_000).checked_sub(11_644_473_600)?;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    Some(format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    ))
}

/// The current time as a FILETIME, or `SOURCE_DATE_EPOCH` when set: the hive engine's clock
/// ([`reseal_hive::edit::filetime_now`]), so SAM records and key timestamps agree.
pub fn filetime_now() -> u64 {
    reseal_hive::edit::filetime_now()
}

/// The account's key, `V` and `F`.
struct Account {
    key: KeyOffset,
    rid: u32,
    name: String,
    v: Vec<u8>,
    v_type: u32,
    f: Vec<u8>,
    f_type: u32,
}

fn hive_err(e: reseal_hive::HiveError) -> Error {
    Error::Hive {
        hive: "SAM".into(),
        source: e,
    }
}

fn accounts(samh: &Hive) -> Result<Vec<Account>> {
    let users = samh.open_path(USERS).map_err(hive_err)?;
    let mut out = Vec::new();
    for k in users.subkeys().map_err(hive_err)? {
        let k = k.map_err(hive_err)?;
        let Ok(rid) = u32::from_str_radix(&k.name(), 16) else {
            continue;
        };
        let get = |n: &str| -> Result<(Vec<u8>, u32)> {
            let v = k.value(n).map_err(hive_err)?.ok_or(Error::Invalid {
                what: "SAM user key",
                reason: format!("{USERS}\\{} has no {n} value", k.name()),
            })?;
            Ok((v.data().map_err(hive_err)?.into_owned(), v.data_type()))
        };
        let (v, v_type) = get("V")?;
        let (f, f_type) = get("F")?;
        let name = sam::parse_user_v(&v)?.name;
        if f.len() < sam::USER_F_LEN {
            return Err(Error::Invalid {
                what: "SAM user F",
                reason: format!(
                    "{USERS}\\{}\\F is {} bytes, shorter than {:#x}",
                    k.name(),
                    f.len(),
                    sam::USER_F_LEN
                ),
            });
        }
        out.push(Account {
            key: k.offset(),
            rid,
            name,
            v,
            v_type,
            f,
            f_type,
        });
    }
    Ok(out)
}

fn find(samh: &Hive, name: &str) -> Result<Account> {
    let all = accounts(samh)?;
    let known: Vec<String> = all.iter().map(|a| a.name.clone()).collect();
    all.into_iter()
        .find(|a| a.name.to_lowercase() == name.to_lowercase())
        .ok_or(Error::UnknownUser {
            name: name.to_string(),
            known,
        })
}

fn hash_scheme(entry: &[u8]) -> Option<Scheme> {
    if !sam::hash_entry_set(entry) {
        return None;
    }
    match HashEntryHeader::view(entry).map(|h| h.revision.get()) {
        Some(REVISION_RC4) => Some(Scheme::Rc4),
        _ => Some(Scheme::Aes),
    }
}

/// The local accounts, by RID (SIDs from the machine SID in `Domains\Account\V`).
///
/// # Errors
/// A missing `Users` key, a malformed `V` or `F`.
pub fn list(samh: &Hive) -> Result<Vec<LocalUser>> {
    let machine = samh
        .open_path("SAM\\Domains\\Account")
        .ok()
        .and_then(|k| k.value("V").ok().flatten())
        .and_then(|v| v.data().ok().map(|d| d.into_owned()))
        .and_then(|v| sam::domain_sid_from_v(&v).ok())
        .map(|(s, _)| s);
    let mut out = Vec::new();
    for a in accounts(samh)? {
        let f = f_view(&a.f);
        let acb = f.map_or(0, |f| f.acb.get());
        let uv = sam::parse_user_v(&a.v)?;
        let nt = sam::user_v_field(&a.v, V_NT)?;
        out.push(LocalUser {
            sid: machine
                .as_ref()
                .and_then(|m| m.with_rid(a.rid).ok())
                .map(|s| s.to_string()),
            rid: a.rid,
            enabled: acb & ACB_DISABLED == 0,
            locked: acb & ACB_AUTOLOCKED != 0,
            password_set: hash_scheme(nt).is_some(),
            hash_scheme: hash_scheme(nt),
            last_logon: f.and_then(|f| filetime_rfc3339(f.last_logon.get())),
            password_last_set: f.and_then(|f| filetime_rfc3339(f.password_last_set.get())),
            bad_password_count: f.map_or(0, |f| f.bad_password_count.get()),
            acb,
            full_name: uv.full_name,
            name: a.name,
        });
    }
    out.sort_by_key(|u| u.rid);
    Ok(out)
}

/// The SAM key of a SAM/SYSTEM pair.
///
/// # Errors
/// From [`sam_crypto::boot_key`] and [`sam_crypto::sam_key`].
pub fn sam_key(samh: &Hive, system: &Hive) -> Result<SamKey> {
    let boot = sam_crypto::boot_key(system)?;
    let f = samh
        .open_path("SAM\\Domains\\Account")
        .map_err(hive_err)?
        .value("F")
        .map_err(hive_err)?
        .ok_or(Error::Invalid {
            what: "SAM Domains\\Account\\F",
            reason: "missing".into(),
        })?
        .data()
        .map_err(hive_err)?
        .into_owned();
    sam_crypto::sam_key(&f, &boot)
}

/// One account's decrypted hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserHashes {
    /// Account name.
    pub name: String,
    /// RID.
    pub rid: u32,
    /// LM hash (hex), `None` when empty.
    pub lm: Option<String>,
    /// NT hash (hex), `None` when empty.
    pub nt: Option<String>,
}

/// Every account's LM and NT hash (what secretsdump prints), by RID.
///
/// # Errors
/// As [`sam_key`]; a malformed entry.
pub fn hashes(samh: &Hive, system: &Hive) -> Result<Vec<UserHashes>> {
    let key = sam_key(samh, system)?;
    let mut out = Vec::new();
    for a in accounts(samh)? {
        let d = |i, kind| -> Result<Option<String>> {
            Ok(
                sam_crypto::decrypt_hash(&key, a.rid, kind, sam::user_v_field(&a.v, i)?)?
                    .map(|h| sam_crypto::hex(&h)),
            )
        };
        out.push(UserHashes {
            lm: d(V_LM, HashKind::Lm)?,
            nt: d(V_NT, HashKind::Nt)?,
            name: a.name,
            rid: a.rid,
        });
    }
    out.sort_by_key(|u| u.rid);
    Ok(out)
}

/// What a write changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserChange {
    /// Account name (the new one after a rename).
    pub name: String,
    /// RID.
    pub rid: u32,
    /// What was done, in words.
    pub action: String,
    /// False when the account already was in the requested state (nothing written).
    pub changed: bool,
}

fn random_salt() -> Result<[u8; 16]> {
    use std::io::Read;
    let mut s = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut s))
        .map_err(|e| Error::Invalid {
            what: "random salt",
            reason: format!("reading /dev/urandom: {e}"),
        })?;
    Ok(s)
}

/// Set (`Some`) or blank (`None`) the password of `name`: the NT hash becomes MD4(UTF-16LE
/// (password)) encrypted in the scheme of the SAM key (AES when `F` is revision 2), the LM
/// hash and both password histories become empty entries, and password-last-set becomes now.
/// `samh` must be writable.
///
/// # Errors
/// [`Error::UnknownUser`]; [`Error::WrongBootKey`] when SYSTEM does not decrypt this SAM (then
/// nothing is written: a hash under the wrong key would lock the account out); a malformed
/// value; hive errors.
pub fn set_password(
    samh: &mut Hive,
    system: &Hive,
    name: &str,
    password: Option<&str>,
) -> Result<UserChange> {
    let key = sam_key(samh, system)?;
    let a = find(samh, name)?;
    // The old hash must decrypt under this key too: proof the key is this SAM's.
    let old_nt = sam::user_v_field(&a.v, V_NT)?;
    sam_crypto::decrypt_hash(&key, a.rid, HashKind::Nt, old_nt)?;
    let pek = HashEntryHeader::view(old_nt).map_or(1, |h| h.pek_id.get());
    let pek = if pek == 0 { 1 } else { pek };
    let nt: Vec<[u8; 16]> = password.map(sam_crypto::nt_hash).into_iter().collect();
    let mut v = a.v.clone();
    v = sam::replace_user_v_field(
        &v,
        V_NT,
        &sam_crypto::encrypt_hashes(&key, a.rid, HashKind::Nt, &nt, pek, &random_salt()?),
    )?;
    v = sam::replace_user_v_field(
        &v,
        V_LM,
        &sam_crypto::encrypt_hashes(&key, a.rid, HashKind::Lm, &[], pek, &random_salt()?),
    )?;
    for (i, kind) in V_HISTORY
        .into_iter()
        .zip([HashKind::LmHistory, HashKind::NtHistory])
    {
        v = sam::replace_user_v_field(
            &v,
            i,
            &sam_crypto::encrypt_hashes(&key, a.rid, kind, &[], pek, &random_salt()?),
        )?;
    }
    let mut f = a.f.clone();
    f_view_mut(&mut f)?.password_last_set.set(filetime_now());
    samh.set_value(a.key, "V", a.v_type, &v).map_err(hive_err)?;
    samh.set_value(a.key, "F", a.f_type, &f).map_err(hive_err)?;
    Ok(UserChange {
        action: if password.is_some() {
            format!(
                "password set (NT hash, {} scheme; LM hash and password history cleared)",
                match key.scheme {
                    Scheme::Rc4 => "RC4",
                    Scheme::Aes => "AES",
                }
            )
        } else {
            "password blanked (empty NT and LM hashes, history cleared)".into()
        },
        name: a.name,
        rid: a.rid,
        changed: true,
    })
}

/// The three `F` edits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Clear ACB_DISABLED.
    Enable,
    /// Set ACB_DISABLED.
    Disable,
    /// Clear ACB_AUTOLOCKED and the bad-password count.
    Unlock,
}

/// Enable, disable or unlock `name` (`F` 0x38 ACB bits, 0x40 bad-password count).
///
/// # Errors
/// [`Error::UnknownUser`]; hive errors.
pub fn control(samh: &mut Hive, name: &str, op: Control) -> Result<UserChange> {
    let a = find(samh, name)?;
    let mut f = a.f.clone();
    let view = f_view_mut(&mut f)?;
    let acb = view.acb.get();
    let new_acb = match op {
        Control::Enable => acb & !ACB_DISABLED,
        Control::Disable => acb | ACB_DISABLED,
        Control::Unlock => acb & !ACB_AUTOLOCKED,
    };
    view.acb.set(new_acb);
    if op == Control::Unlock {
        view.bad_password_count.set(0);
    }
    let changed = f != a.f;
    if changed {
        samh.set_value(a.key, "F", a.f_type, &f).map_err(hive_err)?;
    }
    Ok(UserChange {
        action: match op {
            Control::Enable => "enabled",
            Control::Disable => "disabled",
            Control::Unlock => "unlocked (lockout bit and bad-password count cleared)",
        }
        .into(),
        name: a.name,
        rid: a.rid,
        changed,
    })
}

/// Characters Windows refuses in a local account name.
const BAD_NAME_CHARS: &[char] = &[
    '"', '/', '\\', '[', ']', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>', '@',
];

fn check_name(name: &str) -> Result<()> {
    let bad = |reason: String| Error::InvalidUserName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || name.chars().count() > 20 {
        return Err(bad("an account name has 1 to 20 characters".into()));
    }
    if let Some(c) = name
        .chars()
        .find(|c| BAD_NAME_CHARS.contains(c) || c.is_control())
    {
        return Err(bad(format!("{c:?} is not allowed in an account name")));
    }
    if name.chars().all(|c| c == '.' || c == ' ') {
        return Err(bad("a name of only dots and spaces is not allowed".into()));
    }
    Ok(())
}

/// Rename `old` to `new`: the `Users\Names\<old>` key (its default value's type, the RID, is
/// kept) and the name in `V` (descriptor 1, later fields move). The profile folder and its
/// ProfileList entry are left as they are (Windows keeps them on a rename too).
///
/// # Errors
/// [`Error::UnknownUser`]; [`Error::UserExists`] when another account or a `Names` key has the
/// new name; [`Error::InvalidUserName`]; hive errors.
pub fn rename(samh: &mut Hive, old: &str, new: &str) -> Result<UserChange> {
    check_name(new)?;
    let a = find(samh, old)?;
    if let Some(other) = accounts(samh)?
        .into_iter()
        .find(|x| x.rid != a.rid && x.name.to_lowercase() == new.to_lowercase())
    {
        return Err(Error::UserExists { name: other.name });
    }
    let names_path = format!("{USERS}\\Names");
    let names = samh.open_path(&names_path).map_err(hive_err)?;
    let mut old_key = None;
    for k in names.subkeys().map_err(hive_err)? {
        let k = k.map_err(hive_err)?;
        let n = k.name();
        if n.to_lowercase() == a.name.to_lowercase() {
            old_key = Some(k.offset());
        } else if n.to_lowercase() == new.to_lowercase() {
            return Err(Error::UserExists { name: n });
        }
    }
    let old_key = old_key.ok_or(Error::Invalid {
        what: "SAM Users\\Names",
        reason: format!("{names_path} has no key {}", a.name),
    })?;
    let units: Vec<u8> = new.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let v = sam::replace_user_v_field(&a.v, V_NAME, &units)?;
    samh.rename_key(old_key, new).map_err(hive_err)?;
    samh.set_value(a.key, "V", a.v_type, &v).map_err(hive_err)?;
    Ok(UserChange {
        action: format!("renamed from {}", a.name),
        name: new.to_string(),
        rid: a.rid,
        changed: a.name != new,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339() {
        assert_eq!(
            filetime_rfc3339(133_400_000_000_000_000).unwrap(),
            "2023-09-24T03:33:20Z"
        );
        assert_eq!(filetime_rfc3339(0), None);
        assert_eq!(filetime_rfc3339(0x7fff_ffff_ffff_ffff), None);
    }

    #[test]
    fn names() {
        assert!(check_name("alice2").is_ok());
        assert!(check_name("a/b").is_err());
        assert!(check_name("").is_err());
        assert!(check_name("123456789012345678901").is_err());
        assert!(check_name("...").is_err());
    }
}
