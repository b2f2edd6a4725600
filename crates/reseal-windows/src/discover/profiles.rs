//! The profiles of discovery (SOFTWARE `ProfileList` and the folders it names), their DPAPI
//! master-key folders, and the TxR files of `config`.

use reseal_disk::Device;
use reseal_hive::Hive;
use reseal_ntfs::browse::Volume;

use super::hives::{file_size, value_string};
use super::{DpapiFolder, Profile, TxrInfo, UserAccount, CONFIG, TXR_PROBE};

fn expand_env(s: &str, system_root: &str) -> String {
    let mut out = s.to_string();
    for (var, val) in [
        ("%SystemDrive%", "C:"),
        ("%SystemRoot%", system_root),
        ("%windir%", system_root),
    ] {
        while let Some(i) = out.to_ascii_lowercase().find(&var.to_ascii_lowercase()) {
            out.replace_range(i..i + var.len(), val);
        }
    }
    out
}

/// `C:\Users\alice` -> `/Users/alice` (only for the system drive).
fn to_volume_path(win: &str) -> Option<String> {
    let b = win.as_bytes();
    let rest = if b.len() >= 2 && b[1] == b':' {
        if !b[0].eq_ignore_ascii_case(&b'C') {
            return None;
        }
        &win[2..]
    } else {
        win
    };
    let parts: Vec<&str> = rest.split(['\\', '/']).filter(|c| !c.is_empty()).collect();
    Some(format!("/{}", parts.join("/")))
}

/// The profiles of `ProfileList`, with their folders and hives on the volume.
pub(super) fn read_profiles<D: Device>(
    vol: &mut Volume<D>,
    sw: &Hive,
    users: &[UserAccount],
    out: &mut Vec<Profile>,
    errors: &mut Vec<String>,
) {
    let pl = "Microsoft\\Windows NT\\CurrentVersion\\ProfileList";
    let Ok(k) = sw.open_path(pl) else { return };
    let system_root = value_string(sw, "Microsoft\\Windows NT\\CurrentVersion", "SystemRoot")
        .unwrap_or_else(|| "C:\\Windows".to_string());
    let Ok(it) = k.subkeys() else {
        errors.push(format!("SOFTWARE: {pl}: subkey list unreadable"));
        return;
    };
    for p in it.flatten() {
        let sid = p.name();
        let raw = p
            .value("ProfileImagePath")
            .ok()
            .flatten()
            .and_then(|v| v.as_string().ok());
        let folder = raw
            .as_deref()
            .map(|r| expand_env(r, &system_root))
            .and_then(|e| to_volume_path(&e));
        let (mut exists, mut nt, mut uc) = (false, false, false);
        if let Some(f) = &folder {
            exists = vol.stat(f).map(|e| e.is_dir).unwrap_or(false);
            if exists {
                nt = file_size(vol, &format!("{f}/NTUSER.DAT")).is_some();
                uc = file_size(
                    vol,
                    &format!("{f}/AppData/Local/Microsoft/Windows/UsrClass.dat"),
                )
                .is_some();
            }
        }
        let user = users
            .iter()
            .find(|u| u.sid.as_deref() == Some(sid.as_str()))
            .map(|u| u.name.clone());
        out.push(Profile {
            sid,
            profile_image_path: raw,
            folder,
            folder_exists: exists,
            ntuser_dat: nt,
            usrclass_dat: uc,
            user,
        });
    }
}

fn count_files<D: Device>(vol: &mut Volume<D>, dir: &str) -> usize {
    let Ok(list) = vol.list(dir) else { return 0 };
    let mut n = 0;
    for e in list {
        if e.is_dir {
            n += vol
                .list(&format!("{dir}/{}", e.name))
                .map(|l| l.iter().filter(|x| !x.is_dir).count())
                .unwrap_or(0);
        } else {
            n += 1;
        }
    }
    n
}

/// The `Microsoft\Protect\<SID>` folders of the profiles and of the system.
pub(super) fn read_dpapi<D: Device>(
    vol: &mut Volume<D>,
    profiles: &[Profile],
    out: &mut Vec<DpapiFolder>,
) {
    let mut cands: Vec<(String, String)> = Vec::new();
    for p in profiles {
        if let (Some(f), true) = (&p.folder, p.folder_exists) {
            let protect = format!("{f}/AppData/Roaming/Microsoft/Protect");
            if let Ok(list) = vol.list(&protect) {
                for e in list
                    .into_iter()
                    .filter(|e| e.is_dir && e.name.starts_with("S-1-"))
                {
                    cands.push((e.name.clone(), format!("{protect}/{}", e.name)));
                }
            }
        }
    }
    let sys = "/Windows/System32/Microsoft/Protect";
    if let Ok(list) = vol.list(sys) {
        for e in list
            .into_iter()
            .filter(|e| e.is_dir && e.name.starts_with("S-1-"))
        {
            cands.push((e.name.clone(), format!("{sys}/{}", e.name)));
        }
    }
    for (sid, path) in cands {
        let files = count_files(vol, &path);
        out.push(DpapiFolder { sid, path, files });
    }
}

/// The TxR files of `config`: a file with content means pending transactions.
pub(super) fn read_txr<D: Device>(vol: &mut Volume<D>) -> TxrInfo {
    let mut t = TxrInfo::default();
    let dir = format!("{CONFIG}/TxR");
    let Ok(list) = vol.list(&dir) else { return t };
    for e in list.into_iter().filter(|e| !e.is_dir) {
        let lower = e.name.to_ascii_lowercase();
        if !(lower.ends_with(".txr.blf") || lower.ends_with(".regtrans-ms")) {
            continue;
        }
        let p = format!("/{dir}/{}", e.name);
        let mut buf = Vec::new();
        let content = e.size > 0
            && vol.read_range(&p, 0, TXR_PROBE, &mut buf).is_ok()
            && buf.iter().any(|&b| b != 0);
        if content {
            t.files_with_content.push(p);
        } else {
            t.empty_files.push(p);
        }
    }
    t.pending = !t.files_with_content.is_empty();
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(
            to_volume_path("C:\\Users\\alice").as_deref(),
            Some("/Users/alice")
        );
        assert_eq!(to_volume_path("D:\\x"), None);
        assert_eq!(
            expand_env("%SystemDrive%\\Users\\bob", "C:\\Windows"),
            "C:\\Users\\bob"
        );
        assert_eq!(
            expand_env(
                "%systemroot%\\System32\\config\\systemprofile",
                "C:\\Windows"
            ),
            "C:\\Windows\\System32\\config\\systemprofile"
        );
    }
}
