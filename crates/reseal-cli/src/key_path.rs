//! Registry key paths as users write them, turned into paths below a hive's root.
//!
//! Accepted forms, for a key of the hive in hand:
//! * relative to the hive's root: `ControlSet001\Control` (what hivexget takes; a leading `\` is
//!   allowed);
//! * rooted where Windows mounts the hive: `HKLM\SYSTEM\…`, `HKEY_LOCAL_MACHINE\SOFTWARE\…`,
//!   `HKCU\…`/`HKEY_CURRENT_USER\…` (a profile's `NTUSER.DAT`), `HKU\<SID>\…`/`HKEY_USERS\…`
//!   (`HKU\<SID>_Classes\…` for `UsrClass.dat`, `HKU\.DEFAULT\…` for `DEFAULT`);
//! * `CurrentControlSet` as the first component below SYSTEM's root, resolved through
//!   `Select\Current` as Windows does at boot;
//! * `/` as the separator, when the path holds no `\` at all. Key names may contain `/` (MIME
//!   types under `Content Type`, for one), so a path with any `\` keeps its `/` as part of names.

use anyhow::{bail, Result};
use reseal_hive::Hive;

use reseal_windows::hive_location::{mount_of, Root};

const HKLM: [&str; 2] = ["HKLM", "HKEY_LOCAL_MACHINE"];
const HKCU: [&str; 2] = ["HKCU", "HKEY_CURRENT_USER"];
const HKU: [&str; 2] = ["HKU", "HKEY_USERS"];

fn is_any(s: &str, names: &[&str]) -> bool {
    names.iter().any(|n| n.eq_ignore_ascii_case(s))
}

/// `key` (in any accepted form) as a `\`-separated path below the root of `hive`, whose file
/// is named `file_name` (`SYSTEM`, `NTUSER.DAT`, …; any other name disables the check that a
/// rooted path names this hive).
///
/// # Errors
/// A rooted path that names another hive; `CurrentControlSet` in a hive without
/// `Select\Current`.
pub fn resolve(hive: &Hive, file_name: &str, key: &str) -> Result<String> {
    let text = if key.contains('\\') {
        key.to_string()
    } else {
        key.replace('/', "\\")
    };
    let mut comps: Vec<&str> = text.split('\\').filter(|c| !c.is_empty()).collect();
    let mount = mount_of(file_name);
    if let Some(first) = comps.first().copied() {
        if is_any(first, &HKLM) {
            let Some(name) = comps.get(1).copied() else {
                bail!("{key:?} names HKEY_LOCAL_MACHINE itself, not a key of a hive");
            };
            if let Some((root, hname)) = &mount {
                if *root != Root::LocalMachine || !name.eq_ignore_ascii_case(hname) {
                    bail!(
                        "{key:?} is under HKEY_LOCAL_MACHINE\\{name}, but this hive ({file_name}) \
                         is mounted at {}",
                        mount_text(root, hname)
                    );
                }
            }
            comps.drain(..2);
        } else if is_any(first, &HKCU) {
            if let Some((root, hname)) = &mount {
                if *root != Root::CurrentUser {
                    bail!(
                        "{key:?} is under HKEY_CURRENT_USER, but this hive ({file_name}) is \
                         mounted at {}",
                        mount_text(root, hname)
                    );
                }
            }
            comps.remove(0);
            // UsrClass.dat is HKCU\Software\Classes.
            if let Some((_, sub)) = &mount {
                if !sub.is_empty() {
                    strip_components(&mut comps, sub, key, file_name)?;
                }
            }
        } else if is_any(first, &HKU) {
            let Some(user) = comps.get(1).copied() else {
                bail!("{key:?} names HKEY_USERS itself, not a key of a hive");
            };
            let classes = user.to_ascii_lowercase().ends_with("_classes");
            if let Some((root, hname)) = &mount {
                let fits = match (*root, hname.as_str()) {
                    (Root::Users, ".DEFAULT") => user.eq_ignore_ascii_case(".DEFAULT"),
                    (Root::CurrentUser, "") => !classes && !user.eq_ignore_ascii_case(".DEFAULT"),
                    (Root::CurrentUser, _) => classes,
                    _ => false,
                };
                if !fits {
                    bail!(
                        "{key:?} is under HKEY_USERS\\{user}, but this hive ({file_name}) is \
                         mounted at {}",
                        mount_text(root, hname)
                    );
                }
            }
            comps.drain(..2);
        }
    }
    let mut out: Vec<String> = comps.iter().map(|c| (*c).to_string()).collect();
    if let Some(first) = out.first_mut() {
        if first.eq_ignore_ascii_case("CurrentControlSet") {
            let current = hive
                .open_path("Select")
                .ok()
                .and_then(|k| k.value("Current").ok().flatten())
                .and_then(|v| v.as_u32().ok().flatten());
            let Some(n) = current else {
                bail!(
                    "{key:?}: CurrentControlSet needs Select\\Current, which this hive \
                     ({file_name}) does not have (CurrentControlSet exists in SYSTEM only)"
                );
            };
            *first = format!("ControlSet{n:03}");
        }
    }
    Ok(out.join("\\"))
}

fn mount_text(root: &Root, sub: &str) -> String {
    if sub.is_empty() {
        root.name().to_string()
    } else {
        format!("{}\\{sub}", root.name())
    }
}

fn strip_components(comps: &mut Vec<&str>, sub: &str, key: &str, file_name: &str) -> Result<()> {
    let want: Vec<&str> = sub.split('\\').collect();
    let ok = comps.len() >= want.len()
        && comps
            .iter()
            .zip(&want)
            .all(|(a, b)| a.eq_ignore_ascii_case(b));
    if !ok {
        bail!("{key:?} is not under HKEY_CURRENT_USER\\{sub}, where this hive ({file_name}) is mounted");
    }
    comps.drain(..want.len());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn system() -> Hive {
        let sd = reseal_security::SecurityDescriptor::from_sddl("O:BAG:SYD:(A;;KA;;;SY)")
            .unwrap()
            .to_bytes()
            .unwrap();
        let mut h = Hive::new_empty("ROOT", &sd).unwrap();
        let k = h.create_path("Select").unwrap();
        h.set_value(k, "Current", reseal_hive::REG_DWORD, &2u32.to_le_bytes())
            .unwrap();
        h
    }

    #[test]
    fn forms() {
        let h = system();
        let r = |k: &str| resolve(&h, "SYSTEM", k).unwrap();
        assert_eq!(r("ControlSet001\\Control"), "ControlSet001\\Control");
        assert_eq!(r("\\ControlSet001\\Control\\"), "ControlSet001\\Control");
        assert_eq!(r("HKLM\\SYSTEM\\ControlSet001"), "ControlSet001");
        assert_eq!(r("hkey_local_machine\\system\\Select"), "Select");
        assert_eq!(r("CurrentControlSet\\Control"), "ControlSet002\\Control");
        assert_eq!(r("HKLM\\SYSTEM\\CurrentControlSet"), "ControlSet002");
        assert_eq!(
            r("CurrentControlSet/Control/Lsa"),
            "ControlSet002\\Control\\Lsa"
        );
        // A `\` anywhere keeps `/` inside names.
        assert_eq!(r("A\\text/plain"), "A\\text/plain");
        assert_eq!(r(""), "");
    }

    #[test]
    fn wrong_hive_is_named() {
        let h = system();
        let e = resolve(&h, "SYSTEM", "HKLM\\SOFTWARE\\Microsoft").unwrap_err();
        assert!(
            e.to_string()
                .contains("mounted at HKEY_LOCAL_MACHINE\\SYSTEM"),
            "{e}"
        );
        let e = resolve(&h, "SYSTEM", "HKCU\\Software").unwrap_err();
        assert!(e.to_string().contains("HKEY_CURRENT_USER"), "{e}");
        let sd = reseal_security::SecurityDescriptor::from_sddl("O:BAG:SYD:(A;;KA;;;SY)")
            .unwrap()
            .to_bytes()
            .unwrap();
        let software = Hive::new_empty("ROOT", &sd).unwrap();
        let e = resolve(&software, "SOFTWARE", "CurrentControlSet").unwrap_err();
        assert!(e.to_string().contains("Select\\Current"), "{e}");
    }

    #[test]
    fn user_hives() {
        let h = system();
        let r = |f: &str, k: &str| resolve(&h, f, k);
        assert_eq!(r("NTUSER.DAT", "HKCU\\Software\\X").unwrap(), "Software\\X");
        assert_eq!(
            r("NTUSER.DAT", "HKU\\S-1-5-21-1-2-3-1001\\Software").unwrap(),
            "Software"
        );
        assert_eq!(
            r(
                "UsrClass.dat",
                "HKU\\S-1-5-21-1-2-3-1001_Classes\\Local Settings"
            )
            .unwrap(),
            "Local Settings"
        );
        assert_eq!(
            r("UsrClass.dat", "HKCU\\Software\\Classes\\CLSID").unwrap(),
            "CLSID"
        );
        assert_eq!(
            r("DEFAULT", "HKU\\.DEFAULT\\Control Panel").unwrap(),
            "Control Panel"
        );
        assert!(r("NTUSER.DAT", "HKU\\.DEFAULT\\X").is_err());
        assert!(r("UsrClass.dat", "HKCU\\Software\\X").is_err());
        // Unknown file names: rooted forms are stripped without a check.
        assert_eq!(r("hive.bin", "HKLM\\SYSTEM\\A").unwrap(), "A");
    }
}
