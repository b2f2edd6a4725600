//! `$Quota` SID rewrite (`$O` keys re-sorted, `$Q` entry SIDs) checked with ntfsinfo's dump.

use crate::ntfsw_common;

use ntfsw_common::*;
use reseal_ntfs::Volume;

fn sid_lines(img: &std::path::Path) -> Vec<String> {
    let (ok, out) = run(&format!(
        "ntfsinfo -F '/$Extend/$Quota' -v {}",
        img.display()
    ));
    assert!(ok, "ntfsinfo: {out}");
    out.lines()
        .filter(|l| l.contains("SID") || l.contains("Owner id"))
        .map(|l| l.trim().to_string())
        .collect()
}

#[test]
fn quota_sids_rewritten() {
    if !have("mkntfs") || !have("ntfsinfo") {
        return;
    }
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 16, 4096);
    let before = sid_lines(&img);
    assert!(
        before.iter().any(|l| l.contains("S-1-5-32-544")),
        "mkntfs quota has no admin SID: {before:?}"
    );
    let admins = [1u8, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0];
    let users = [1u8, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x21, 2, 0, 0];
    {
        let mut v = Volume::open(file_dev(&img)).unwrap();
        let n = v
            .rewrite_quota_sids(|s| (s == admins).then(|| users.to_vec()))
            .unwrap();
        assert!(n >= 1, "no quota SID changed");
        v.flush().unwrap();
    }
    let after = sid_lines(&img);
    let want: Vec<String> = before
        .iter()
        .map(|l| l.replace("S-1-5-32-544", "S-1-5-32-545"))
        .collect();
    assert_eq!(after, want);
    ntfsfix_clean(&img);
}

#[test]
fn sddl_set_and_get_through_ntfs3g() {
    if !have("mkntfs") || !have("ntfs-3g") || !have("getfattr") {
        return;
    }
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 16, 4096);
    let sddl = "O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;BU)";
    let want = reseal_security::SecurityDescriptor::from_sddl(sddl)
        .unwrap()
        .to_bytes()
        .unwrap();
    {
        let mut v = Volume::open(file_dev(&img)).unwrap();
        v.write_file("unattend.xml", b"<unattend/>").unwrap();
        v.set_security_sddl("unattend.xml", sddl).unwrap();
        assert_eq!(v.security_descriptor("unattend.xml").unwrap(), want);
        let back = v.security_sddl("unattend.xml").unwrap();
        assert_eq!(
            reseal_security::SecurityDescriptor::from_sddl(&back)
                .unwrap()
                .to_bytes()
                .unwrap(),
            want
        );
        v.flush().unwrap();
    }
    let m = Mount::new(&img, &td.path().join("m"));
    let (ok, out) = run(&format!(
        "getfattr -n system.ntfs_acl -e hex {}",
        m.dir.join("unattend.xml").display()
    ));
    assert!(ok, "{out}");
    let hex: String = want.iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        out.contains(&format!("system.ntfs_acl=0x{hex}")),
        "ntfs-3g sees {out}"
    );
}
