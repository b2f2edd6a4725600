//! `$Secure` against ntfs-3g and ntfssecaudit: read descriptors set through the FUSE mount,
//! set new ones, and rewrite every descriptor in place replacing a domain SID by another of the
//! same length.

use crate::ntfsw_common;

use ntfsw_common::*;
use reseal_ntfs::{DescriptorRef, Volume};

const OLD: [u32; 3] = [1_111_111_111, 2_222_222_222, 3_333_333_333];
const NEW: [u32; 3] = [4_000_000_001, 4_000_000_002, 4_000_000_003];

fn sid(dom: [u32; 3], rid: u32) -> Vec<u8> {
    let mut s = vec![1u8, 5, 0, 0, 0, 0, 0, 5];
    for x in [21, dom[0], dom[1], dom[2], rid] {
        s.extend_from_slice(&x.to_le_bytes());
    }
    s
}

/// Owner = domain account `rid`, group = Administrators, DACL: allow full to owner, read to
/// Users (RID-dependent mask so every descriptor is distinct).
fn sd(dom: [u32; 3], rid: u32) -> Vec<u8> {
    let owner = sid(dom, rid);
    let group = vec![1u8, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0];
    let mut ace = vec![0u8, 0, 0, 0];
    ace.extend_from_slice(&(0x001F_01FFu32).to_le_bytes());
    ace.extend_from_slice(&owner);
    let al = ace.len() as u16;
    ace[2..4].copy_from_slice(&al.to_le_bytes());
    let mut ace2 = vec![0u8, 0, 0, 0];
    ace2.extend_from_slice(&(0x0012_0089u32 | (rid & 0xF) << 16).to_le_bytes());
    ace2.extend_from_slice(&[1u8, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x21, 2, 0, 0]);
    let al2 = ace2.len() as u16;
    ace2[2..4].copy_from_slice(&al2.to_le_bytes());
    let acl_len = 8 + ace.len() + ace2.len();
    let mut acl = vec![2u8, 0];
    acl.extend_from_slice(&(acl_len as u16).to_le_bytes());
    acl.extend_from_slice(&2u16.to_le_bytes());
    acl.extend_from_slice(&[0, 0]);
    acl.extend_from_slice(&ace);
    acl.extend_from_slice(&ace2);
    let mut out = vec![1u8, 0];
    out.extend_from_slice(&0x8004u16.to_le_bytes());
    let o_off = 20u32;
    let g_off = o_off + owner.len() as u32;
    let d_off = g_off + group.len() as u32;
    for x in [o_off, g_off, 0, d_off] {
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.extend_from_slice(&owner);
    out.extend_from_slice(&group);
    out.extend_from_slice(&acl);
    out
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn getacl(path: &std::path::Path) -> Vec<u8> {
    let (ok, out) = run(&format!(
        "getfattr -n system.ntfs_acl -e hex '{}'",
        path.display()
    ));
    assert!(ok, "getfattr failed: {out}");
    let h = out
        .lines()
        .find_map(|l| l.strip_prefix("system.ntfs_acl=0x"))
        .unwrap_or_else(|| panic!("no ntfs_acl in {out}"))
        .trim();
    (0..h.len() / 2)
        .map(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn replace(sd: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
    let mut v = sd.to_vec();
    let mut i = 0;
    while i + from.len() <= v.len() {
        if &v[i..i + from.len()] == from {
            v[i..i + from.len()].copy_from_slice(to);
            i += from.len();
        } else {
            i += 1;
        }
    }
    v
}

fn audit_errors(img: &std::path::Path) -> String {
    let (_, out) = run(&format!(
        "ntfssecaudit -a {} 2>&1 | grep -iE 'error|bad|wrong|mismatch' | sort",
        img.display()
    ));
    out
}

#[test]
fn rewrite_every_descriptor_same_length() {
    if !have("mkntfs") || !have("ntfs-3g") || !have("setfattr") || !have("ntfssecaudit") {
        return;
    }
    let n = 300u32;
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 64, 4096);
    {
        let m = Mount::new(&img, &td.path().join("m"));
        std::fs::create_dir(m.dir.join("d")).unwrap();
        for i in 0..n {
            let p = m.dir.join(format!("d/f{i}"));
            std::fs::write(&p, b"x").unwrap();
            let (ok, out) = run(&format!(
                "setfattr -n system.ntfs_acl -v 0x{} '{}'",
                hex(&sd(OLD, 1000 + i)),
                p.display()
            ));
            assert!(ok, "setfattr: {out}");
        }
    }
    let audit_before = audit_errors(&img);
    let from = {
        let mut d = Vec::new();
        for x in [21, OLD[0], OLD[1], OLD[2]] {
            d.extend_from_slice(&x.to_le_bytes());
        }
        d
    };
    let to = {
        let mut d = Vec::new();
        for x in [21, NEW[0], NEW[1], NEW[2]] {
            d.extend_from_slice(&x.to_le_bytes());
        }
        d
    };
    {
        let mut v = Volume::open(file_dev(&img)).unwrap();
        for i in [0, 17, n - 1] {
            assert_eq!(
                v.security_descriptor(&format!("d/f{i}")).unwrap(),
                sd(OLD, 1000 + i),
                "read f{i}"
            );
        }
        // What the callback sees: every $Secure id, and mkntfs's legacy $SECURITY_DESCRIPTOR
        // attributes (the root, $Volume, $AttrDef, $Boot, ...) by record.
        let mut seen = Vec::new();
        v.rewrite_descriptors(|at, _| {
            seen.push(at);
            None
        })
        .unwrap();
        for rec in [3, 5] {
            assert!(seen.contains(&DescriptorRef::File(rec)), "{seen:?}");
        }
        // The same descriptors when the legacy ones come from a catalog, not a second pass.
        let mut from_catalog = Vec::new();
        let catalog = v.catalog();
        v.rewrite_descriptors_from(
            &catalog,
            |at, _| {
                from_catalog.push(at);
                None
            },
            |_| {},
        )
        .unwrap();
        assert_eq!(from_catalog, seen);
        assert!(
            seen.iter()
                .filter(|a| matches!(a, DescriptorRef::Shared(_)))
                .count()
                >= n as usize
        );
        assert_eq!(v.path_of(3).unwrap(), "$Volume");
        assert_eq!(v.path_of(5).unwrap(), "");
        let f17 = v.lookup("D/F17").unwrap();
        assert_eq!(v.path_of(f17).unwrap(), "d/f17");
        let users = v.security_id_users().unwrap();
        let id17 = v.metadata("d/f17").unwrap().security_id;
        assert_eq!(users.get(&id17).map(|u| u.0), Some(1));
        let changed = v
            .rewrite_descriptors(|_, sd| {
                let r = replace(sd, &from, &to);
                (r != sd).then_some(r)
            })
            .unwrap();
        assert_eq!(changed as u32, n);
        for i in [0, 17, n - 1] {
            assert_eq!(
                v.security_descriptor(&format!("d/f{i}")).unwrap(),
                sd(NEW, 1000 + i)
            );
        }
        // set_security: reuse an existing descriptor and add a brand-new one.
        let id_a = v.set_security("d/f0", &sd(NEW, 1005)).unwrap();
        assert_eq!(id_a, v.metadata("d/f5").unwrap().security_id);
        v.set_security("d/f1", &sd(NEW, 99_999)).unwrap();
        v.flush().unwrap();
    }
    ntfsfix_clean(&img);
    info_parses(&img);
    let audit_after = audit_errors(&img);
    assert_eq!(
        audit_before, audit_after,
        "ntfssecaudit -a reports new errors"
    );
    assert!(
        audit_after.contains("No errors were found"),
        "ntfssecaudit: {audit_after}"
    );
    let m = Mount::new(&img, &td.path().join("m"));
    for i in 0..n {
        let want = match i {
            0 => sd(NEW, 1005),
            1 => sd(NEW, 99_999),
            _ => sd(NEW, 1000 + i),
        };
        assert_eq!(
            getacl(&m.dir.join(format!("d/f{i}"))),
            want,
            "ACL of f{i} through ntfs-3g"
        );
    }
}
