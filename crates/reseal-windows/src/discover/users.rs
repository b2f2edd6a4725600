//! The local accounts of discovery, read from the SAM (`Domains\Account\Users`).

use std::collections::BTreeMap;

use reseal_hive::Hive;
use reseal_security::Sid;

use super::UserAccount;
use crate::sam;

/// The SAM's local accounts, by RID; unreadable ones are named in `errors`.
pub(super) fn read_users(
    samh: &Hive,
    machine: Option<&str>,
    users: &mut Vec<UserAccount>,
    errors: &mut Vec<String>,
) {
    let base = "SAM\\Domains\\Account\\Users";
    let Ok(ukey) = samh.open_path(base) else {
        errors.push(format!("SAM: {base} is missing"));
        return;
    };
    let mut names_rid: BTreeMap<String, u32> = BTreeMap::new();
    if let Ok(Some(names)) = ukey.subkey("Names") {
        if let Ok(it) = names.subkeys() {
            for k in it.flatten() {
                if let Ok(Some(v)) = k.value("") {
                    names_rid.insert(k.name().to_lowercase(), v.data_type());
                }
            }
        }
    }
    let machine_sid: Option<Sid> = machine.and_then(|m| m.parse().ok());
    let Ok(it) = ukey.subkeys() else {
        errors.push(format!("SAM: {base}: subkey list unreadable"));
        return;
    };
    for k in it {
        let k = match k {
            Ok(k) => k,
            Err(e) => {
                errors.push(format!("SAM: {base}: {e}"));
                continue;
            }
        };
        let kn = k.name();
        let Ok(rid) = u32::from_str_radix(&kn, 16) else {
            continue;
        };
        let v = k
            .value("V")
            .ok()
            .flatten()
            .and_then(|v| v.data().ok().map(|d| d.into_owned()));
        let f = k
            .value("F")
            .ok()
            .flatten()
            .and_then(|v| v.data().ok().map(|d| d.into_owned()));
        let uv = match v.as_deref().map(sam::parse_user_v) {
            Some(Ok(u)) => u,
            Some(Err(e)) => {
                errors.push(format!("SAM: {base}\\{kn}: {e}"));
                continue;
            }
            None => {
                errors.push(format!("SAM: {base}\\{kn}\\V is missing"));
                continue;
            }
        };
        let uf = match f.as_deref().map(sam::parse_user_f) {
            Some(Ok(f)) => Some(f),
            Some(Err(e)) => {
                errors.push(format!("SAM: {base}\\{kn}: {e}"));
                None
            }
            None => None,
        };
        users.push(UserAccount {
            rid,
            sid: machine_sid
                .as_ref()
                .and_then(|m| m.with_rid(rid).ok())
                .map(|s| s.to_string()),
            disabled: uf.is_some_and(|f| f.acb & sam::ACB_DISABLED != 0),
            locked: uf.is_some_and(|f| f.acb & sam::ACB_AUTOLOCKED != 0),
            password_set: v
                .as_deref()
                .and_then(|v| sam::user_v_field(v, sam::V_NT).ok())
                .map(sam::hash_entry_set),
            acb: uf.map(|f| f.acb),
            last_logon: uf.map(|f| f.last_logon).filter(|&t| t != 0),
            logon_count: uf.map(|f| f.logon_count),
            names_rid: names_rid.get(&uv.name.to_lowercase()).copied(),
            name: uv.name,
            full_name: uv.full_name,
            comment: uv.comment,
        });
    }
    users.sort_by_key(|u| u.rid);
}
