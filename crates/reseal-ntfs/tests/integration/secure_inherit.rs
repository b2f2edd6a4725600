//! New files and directories get the descriptor inherited from their parent
//! (`reseal_security::inherit`), stored once in `$Secure` and shared through `$SDH`; checked by
//! ntfssecaudit and through an ntfs-3g mount.

use crate::ntfsw_common;

use ntfsw_common::*;
use reseal_ntfs::Volume;
use reseal_security::{inherit, SecurityDescriptor};

/// `ntfssecaudit -a` error counts, sorted. ntfssecaudit 1.5.0 reads past the end of `$SDS`
/// after the last mirror entry once the stream has grown by appends and, depending on what its
/// buffer held, reports "Security attribute is too long" in `$SDS-2` (the raw bytes after the
/// stream end are zero; see also write_corpus.rs). That one report is dropped only when the
/// mirror holds exactly as many valid entries as the primary, so a real mirror problem shows.
fn audit_errors(img: &std::path::Path) -> String {
    let full = run(&format!("ntfssecaudit -a {} 2>&1", img.display())).1;
    let count = |section: &str| {
        full.lines()
            .find(|l| l.ends_with(&format!("entries in {section}")))
            .map(str::to_owned)
            .map(|l| l.replace(section, ""))
    };
    let quirk = full.contains("** Security attribute is too long")
        && count("$SDS-1").is_some()
        && count("$SDS-1") == count("$SDS-2");
    let mut lines: Vec<String> = full
        .lines()
        .filter(|l| l.contains("errors in"))
        .map(|l| {
            if quirk && l == "1 errors in $SDS-2" {
                "0 errors in $SDS-2".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    lines.sort();
    lines.join("\n")
}

#[test]
fn created_entries_inherit_and_share_one_entry() {
    if !tools(&["mkntfs", "ntfs-3g", "getfattr", "ntfssecaudit"]) {
        return;
    }
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 32, 4096);
    let audit_before = audit_errors(&img);
    assert_eq!(
        audit_before,
        "0 errors in $SDH\n0 errors in $SDS-1\n0 errors in $SDS-2\n0 errors in $SII"
    );
    let parent_sddl = "O:SYG:SYD:PAI(A;OICIIO;GA;;;CO)(A;OICI;FA;;;SY)(A;CI;0x1200a9;;;BU)\
                       (A;OIIO;GR;;;WD)S:AI(AU;OICIFA;GA;;;WD)";
    let parent = SecurityDescriptor::from_sddl(parent_sddl).unwrap();
    let n = 50;
    let (file_id, dir_id, root_child);
    {
        let mut v = Volume::open(file_dev(&img)).unwrap();
        // Under mkntfs's root: whatever the root passes on, the entry gets a descriptor.
        v.create_file("top.txt").unwrap();
        root_child = v.security_descriptor("top.txt").unwrap();
        let root = SecurityDescriptor::parse(&v.security_descriptor("").unwrap()).unwrap();
        assert_eq!(
            SecurityDescriptor::parse(&root_child).unwrap(),
            inherit::inherit(&root, false)
        );
        v.create_dir("Users").unwrap();
        v.set_security_sddl("Users", parent_sddl).unwrap();
        let before = v.security_id_users().unwrap().len();
        for i in 0..n {
            v.write_file(&format!("Users/f{i}"), b"x").unwrap();
            v.create_dir(&format!("Users/d{i}")).unwrap();
        }
        file_id = v.metadata("Users/f0").unwrap().security_id;
        dir_id = v.metadata("Users/d0").unwrap().security_id;
        assert_ne!(file_id, 0);
        assert_ne!(dir_id, 0);
        assert_ne!(file_id, dir_id);
        for i in 0..n {
            assert_eq!(
                v.metadata(&format!("Users/f{i}")).unwrap().security_id,
                file_id
            );
            assert_eq!(
                v.metadata(&format!("Users/d{i}")).unwrap().security_id,
                dir_id
            );
        }
        // One new $Secure entry for the files and one for the directories.
        assert_eq!(v.security_id_users().unwrap().len(), before + 2);
        assert_eq!(
            v.security_sddl("Users/f3").unwrap(),
            "O:SYG:SYD:AI(A;ID;FA;;;SY)(A;ID;FA;;;SY)(A;ID;FR;;;WD)S:AI(AU;IDFA;FA;;;WD)"
        );
        assert_eq!(
            v.security_sddl("Users/d3").unwrap(),
            "O:SYG:SYD:AI(A;ID;FA;;;SY)(A;OICIIOID;GA;;;CO)(A;OICIID;FA;;;SY)\
             (A;CIID;0x1200a9;;;BU)(A;OIIOID;GR;;;WD)S:AI(AU;IDFA;FA;;;WD)(AU;OICIIOIDFA;GA;;;WD)"
        );
        assert_eq!(
            SecurityDescriptor::parse(&v.security_descriptor("Users/d3").unwrap()).unwrap(),
            inherit::inherit(&parent, true)
        );
        v.flush().unwrap();
    }
    ntfsfix_clean(&img);
    assert_eq!(
        audit_errors(&img),
        audit_before,
        "ntfssecaudit -a reports new errors"
    );
    let m = Mount::new(&img, &td.path().join("m"));
    for (p, want) in [("Users/f7", file_id), ("Users/d7", dir_id)] {
        let (ok, _) = run(&format!(
            "getfattr -n system.ntfs_acl -e hex --only-values {} > {}",
            m.dir.join(p).display(),
            td.path().join("acl").display()
        ));
        assert!(ok, "getfattr {p}");
        let got = std::fs::read(td.path().join("acl")).unwrap();
        let sd = SecurityDescriptor::parse(&got).unwrap();
        assert_eq!(
            sd,
            inherit::inherit(&parent, p.contains("/d")),
            "{p} (id {want}) as ntfs-3g reads it"
        );
    }
    let (ok, _) = run(&format!(
        "getfattr -n system.ntfs_acl -e hex --only-values {} > {}",
        m.dir.join("top.txt").display(),
        td.path().join("acl").display()
    ));
    assert!(ok);
    assert_eq!(std::fs::read(td.path().join("acl")).unwrap(), root_child);
}
