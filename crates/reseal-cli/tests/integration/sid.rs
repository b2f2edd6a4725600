//! `reseal sid` on a bare NTFS data volume made by mkntfs + ntfs-3g: every `system.ntfs_acl`
//! ntfs-3g reads afterwards equals the original with the domain replaced, SID-named folders are
//! renamed, `ntfssecaudit -a` is clean, `--dry-run` changes no byte and `undo` restores it.

use reseal_security::SecurityDescriptor;
use reseal_tests::*;
use std::process::Command;

const FROM: &str = "S-1-5-21-1111111111-2222222222-3333333333";
const TO: &str = "S-1-5-21-444-555-666";

fn sd(sddl: &str) -> Vec<u8> {
    SecurityDescriptor::from_sddl(sddl)
        .unwrap()
        .to_bytes()
        .unwrap()
}

/// Every file's descriptor as ntfs-3g reads it, by path.
fn acls(vol: &std::path::Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let m = NtfsMount::new(vol, "ro").unwrap();
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![m.path().to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p
                .strip_prefix(m.path())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let acl = xattr::get(&p, "system.ntfs_acl")
                .unwrap()
                .unwrap_or_default();
            out.insert(rel, acl);
            if p.is_dir() {
                stack.push(p);
            }
        }
    }
    drop(m);
    out
}

#[test]
fn sid_rewrites_descriptors_and_names_of_a_data_volume() {
    require_tool("mkntfs");
    require_tool("ntfssecaudit");
    let tmp = tempfile::tempdir().unwrap();
    let vol = tmp.path().join("data.ntfs");
    let user = format!("{FROM}-1001");
    NtfsSpec {
        size: 32 << 20,
        cluster: 4096,
        label: "Data".into(),
        entries: vec![
            Entry::Dir("Shared".into()),
            Entry::Dir(format!("Profiles/{user}")),
            Entry::File("Shared/report.txt".into(), b"numbers".to_vec()),
            Entry::Acl(
                "Shared".into(),
                sd(&format!(
                    "O:{user}G:{FROM}-513D:P(A;OICI;FA;;;{user})(A;OICI;FA;;;BA)"
                )),
            ),
            Entry::Acl(
                "Shared/report.txt".into(),
                sd(&format!(
                    "O:{user}G:{FROM}-513D:(A;;FA;;;{user})(A;;FR;;;{FROM}-500)"
                )),
            ),
            Entry::Acl(
                format!("Profiles/{user}"),
                sd(&format!("O:BAG:SYD:(A;OICI;FA;;;{user})")),
            ),
        ],
    }
    .build(&vol)
    .unwrap();
    let before = acls(&vol);
    let original = std::fs::read(&vol).unwrap();
    let bin = env!("CARGO_BIN_EXE_reseal");
    let go = |args: &[&str]| {
        let o = Command::new(bin).args(args).arg(&vol).output().unwrap();
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8(o.stdout).unwrap()
    };
    let dry = go(&["sid", "--from", FROM, "--to", TO, "--dry-run", "--json"]);
    let v = reseal_tests::schema::parse_json("sid", &dry);
    assert!(v["descriptors"].as_u64().unwrap() >= 3, "{dry}");
    assert_eq!(std::fs::read(&vol).unwrap(), original, "--dry-run wrote");
    go(&["sid", "--from", FROM, "--to", TO]);

    let after = acls(&vol);
    let new_user = format!("{TO}-1001");
    // Same files, the SID-named folder renamed.
    let expect_paths: Vec<String> = before.keys().map(|k| k.replace(&user, &new_user)).collect();
    assert_eq!(after.keys().cloned().collect::<Vec<_>>(), {
        let mut e = expect_paths.clone();
        e.sort();
        e
    });
    // Every descriptor equal to the original with the domain's binary form replaced.
    let from: reseal_security::Sid = FROM.parse().unwrap();
    let to: reseal_security::Sid = TO.parse().unwrap();
    let (fb, tb) = (from.to_bytes(), to.to_bytes());
    // The domain's authority and sub-authorities (what follows revision and count).
    let (fd, td) = (&fb[2..], &tb[2..]);
    let swap = |acl: &[u8]| -> Vec<u8> {
        let mut out = acl.to_vec();
        let mut i = 0;
        while i + fd.len() <= out.len() {
            if &out[i..i + fd.len()] == fd {
                out[i..i + fd.len()].copy_from_slice(td);
                i += fd.len();
            } else {
                i += 1;
            }
        }
        out
    };
    for (path, acl) in &before {
        let new_path = path.replace(&user, &new_user);
        assert_eq!(after[&new_path], swap(acl), "{path}");
    }
    assert!(after
        .values()
        .all(|a| !a.windows(fd.len()).any(|w| w == fd)));
    ntfssecaudit_clean(&vol).unwrap();

    go(&["undo"]);
    assert_eq!(
        std::fs::read(&vol).unwrap(),
        original,
        "undo restores the volume"
    );
}
