//! The catalog (one MFT pass) against the engine's own lookups and directory listings: on the
//! Windows-made corpus volumes and on a mkntfs volume that ntfs-3g gave hard links, a file with
//! many names (an attribute list with names in extension records) and set file attributes,
//! every path, every listed name and the `$Secure` users agree.

use crate::ntfsw_common::*;
use crate::write_corpus::unpack;

use std::collections::BTreeSet;

use reseal_ntfs::Volume;

/// Every (folder, name, record) the directory listings reachable from the root hold.
fn walk(v: &Volume<FileDev>) -> BTreeSet<(u64, String, u64)> {
    let mut out = BTreeSet::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec![(String::new(), 5u64)];
    while let Some((dir, num)) = stack.pop() {
        if !seen.insert(num) {
            continue;
        }
        let Ok(ents) = v.read_dir(&dir) else { continue };
        for e in ents {
            out.insert((num, e.name.clone(), e.record));
            if e.is_dir {
                let p = if dir.is_empty() {
                    e.name.clone()
                } else {
                    format!("{dir}/{}", e.name)
                };
                stack.push((p, e.record));
            }
        }
    }
    out
}

fn agrees(what: &str, v: &Volume<FileDev>) {
    let c = v.catalog();
    assert!(c.unreadable().is_empty(), "{what}: {:?}", c.unreadable());
    assert!(!c.is_empty(), "{what}: empty catalog");
    let mut paths = 0;
    for (num, _) in c.entries() {
        if let Ok(p) = v.path_of(num) {
            assert_eq!(
                c.path_of(num).as_deref(),
                Some(p.as_str()),
                "{what}: record {num}"
            );
            paths += 1;
        }
    }
    assert!(paths > 10, "{what}: only {paths} paths");
    assert_eq!(
        c.security_id_users(),
        v.security_id_users().unwrap(),
        "{what}: security id users"
    );
    let listed = walk(v);
    let dirs: BTreeSet<u64> = listed.iter().map(|(d, _, _)| *d).collect();
    let from_catalog: BTreeSet<(u64, String, u64)> = c
        .links()
        .filter(|l| dirs.contains(&l.parent) && l.record != 5)
        .map(|l| (l.parent, l.name.to_string(), l.record))
        .collect();
    assert_eq!(from_catalog, listed, "{what}: names listed vs catalog");
}

#[test]
fn catalog_agrees_with_lookups_on_windows_volumes() {
    let Some(c) = corpus() else { return };
    for which in ["velociraptor", "charlie", "ntfs_index"] {
        let td = tempfile::tempdir().unwrap();
        let img = unpack(&c, td.path(), which);
        let v = Volume::open(file_dev_ro(&img)).unwrap();
        agrees(which, &v);
    }
}

#[test]
fn catalog_follows_hard_links_and_attribute_lists() {
    if !tools(&["mkntfs", "ntfs-3g", "setfattr"]) {
        return;
    }
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 32, 4096);
    {
        let m = Mount::new(&img, &td.path().join("m"));
        let d = &m.dir;
        std::fs::create_dir_all(d.join("a/b/S-1-5-21-1-2-3-1001")).unwrap();
        std::fs::write(d.join("a/b/file.txt"), b"x").unwrap();
        std::fs::write(d.join("a/many"), b"y").unwrap();
        // Enough names that they no longer fit the base record.
        for i in 0..120 {
            std::fs::hard_link(
                d.join("a/many"),
                d.join(format!("a/b/a-rather-long-hard-link-name-number-{i:03}")),
            )
            .unwrap();
        }
        std::fs::write(d.join("enc"), b"z").unwrap();
        let (ok, o) = run(&format!(
            "setfattr -n system.ntfs_attrib_be -v 0x00000022 {}",
            d.join("enc").display()
        ));
        assert!(ok, "setfattr: {o}");
    }
    let v = Volume::open(file_dev_ro(&img)).unwrap();
    agrees("mkntfs", &v);
    let c = v.catalog();
    let many = c
        .links()
        .find(|l| l.name == "many")
        .map(|l| l.record)
        .unwrap();
    assert_eq!(c.links().filter(|l| l.record == many).count(), 121);
    let enc = c.links().find(|l| l.name == "enc").unwrap().record;
    // ntfs-3g does not set FILE_ATTRIBUTE_ENCRYPTED; the attributes come from the same field.
    assert_eq!(c.entry(enc).unwrap().attributes & 0x22, 0x22);
    assert_eq!(c.path_of(many).as_deref(), Some("a/many"));
}
