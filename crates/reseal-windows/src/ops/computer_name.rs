//! `computer-name`: the new name in SYSTEM `ControlSet00N\Control\ComputerName\ComputerName`
//! and `…\ActiveComputerName` `ComputerName` (upper case; the latter only where present: on a
//! running system it is volatile), `…\Services\Tcpip\Parameters` `Hostname` and `NV Hostname`
//! (as given) in every control set, SECURITY `Policy\PolAcDmN` (LSA `UNICODE_STRING`), and
//! SOFTWARE `Microsoft\Windows NT\CurrentVersion\Winlogon` `DefaultDomainName` and
//! `AltDefaultDomainName` when they held the old name (a local logon's "domain" is the computer
//! name). `random` asks for a Sysprep-style name, [`random_name`].

use super::{config_hive, control_sets, hive_err, Log};
use crate::generalize::{Change, Target};
use crate::Result;

/// A random name the way Sysprep's specialize makes one when the answer file has none:
/// `DESKTOP-` and 7 upper-case letters and digits.
///
/// # Errors
/// When the random source cannot be read.
pub fn random_name() -> Result<String> {
    const ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut out = String::from("DESKTOP-");
    // Rejection sampling keeps every character equally likely (252 = 7 * 36).
    while out.len() < 15 {
        let b = super::random_bytes::<16>("random computer name")?;
        for x in b {
            if x < 252 && out.len() < 15 {
                out.push(char::from(ALPHABET[usize::from(x % 36)]));
            }
        }
    }
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn set_value_logged(
    t: &mut Target,
    key: &str,
    value: &str,
    ty: u32,
    data: &[u8],
    shown: &str,
    only_if_present: bool,
    log: &mut Log,
) -> Result<()> {
    let e = |t: &Target, s| hive_err(t, s);
    let k = match t.hive.open_path(key) {
        Ok(k) => k,
        Err(reseal_hive::HiveError::NotFound { .. }) => return Ok(()),
        Err(err) => return Err(e(t, err)),
    };
    let off = k.offset();
    let existing = k.value(value).ok().flatten();
    if only_if_present && existing.is_none() {
        return Ok(());
    }
    let ty = existing.as_ref().map_or(ty, |v| v.data_type());
    let old = existing.and_then(|v| {
        if value.is_empty() {
            let d = v.data().ok()?;
            crate::sam::parse_lsa_name(&d, "PolAcDmN").ok()
        } else {
            v.as_string().ok()
        }
    });
    let r = t.hive.make_writable();
    r.map_err(|s| e(t, s))?;
    let r = t.hive.set_value(off, value, ty, data);
    r.map_err(|s| e(t, s))?;
    log.counts.computer_name_values += 1;
    log.changes.push(Change::ComputerName {
        hive: format!("/{}", t.path),
        key: key.to_string(),
        value: value.to_string(),
        old,
        new: shown.to_string(),
    });
    Ok(())
}

/// Set the new name `name`; `old` is the NetBIOS name found by discovery.
pub(crate) fn apply(
    targets: &mut [Target],
    name: &str,
    old: Option<&str>,
    log: &mut Log,
) -> Result<()> {
    let upper = name.to_ascii_uppercase();
    let sz = |s: &str| reseal_hive::key_value::encode_sz(s);
    if let Some(t) = config_hive(targets, "SYSTEM") {
        for cs in control_sets(t)? {
            let cn = format!("{cs}\\Control\\ComputerName");
            let tcp = format!("{cs}\\Services\\Tcpip\\Parameters");
            for (key, value, v, present) in [
                (
                    format!("{cn}\\ComputerName"),
                    "ComputerName",
                    upper.as_str(),
                    false,
                ),
                (
                    format!("{cn}\\ActiveComputerName"),
                    "ComputerName",
                    upper.as_str(),
                    true,
                ),
                (tcp.clone(), "Hostname", name, false),
                (tcp.clone(), "NV Hostname", name, false),
            ] {
                set_value_logged(t, &key, value, 1, &sz(v), v, present, log)?;
            }
        }
    }
    if let Some(t) = config_hive(targets, "SECURITY") {
        let data = crate::sam::encode_lsa_name(&upper);
        set_value_logged(t, "Policy\\PolAcDmN", "", 0, &data, &upper, false, log)?;
    }
    if let (Some(t), Some(old)) = (config_hive(targets, "SOFTWARE"), old) {
        let wl = "Microsoft\\Windows NT\\CurrentVersion\\Winlogon";
        for value in ["DefaultDomainName", "AltDefaultDomainName"] {
            let held = super::read_value(t, wl, value)?
                .is_some_and(|(_, d)| super::shown(1, &d).eq_ignore_ascii_case(old));
            if held {
                set_value_logged(t, wl, value, 1, &sz(&upper), &upper, true, log)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_names_look_like_sysprep_ones() {
        let a = super::random_name().unwrap();
        let b = super::random_name().unwrap();
        assert_ne!(a, b);
        for n in [a, b] {
            assert_eq!(n.len(), 15, "{n}");
            assert!(n.starts_with("DESKTOP-"));
            assert!(n[8..]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
            crate::generalize::validate_computer_name(&n).unwrap();
        }
    }
}
