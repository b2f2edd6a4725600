//! Create / delete / rename many files (index splits, root promotion, Unicode and
//! case-colliding names), checked through an ntfs-3g mount, ntfsfix and ntfsinfo.

use crate::ntfsw_common;

use std::collections::BTreeSet;

use ntfsw_common::*;
use reseal_ntfs::Volume;

fn names(n: usize) -> Vec<String> {
    let mut v = Vec::new();
    for i in 0..n {
        v.push(match i % 4 {
            0 => format!("file{i:04}.txt"),
            1 => format!("FILE{:04}.txt", i - 1), // case-collides with the previous one
            2 => format!("ünï-{i}-日本語"),
            _ => format!("long name number {i} {}", "x".repeat(i % 90)),
        });
    }
    v
}

#[test]
fn many_files_create_delete_rename() {
    if !have("mkntfs") || !have("ntfs-3g") {
        return;
    }
    for cluster in [512u32, 4096] {
        let td = tempfile::tempdir().unwrap();
        let img = mkvol(td.path(), 64, cluster);
        let all = names(700);
        let mut expect: BTreeSet<String> = BTreeSet::new();
        {
            let mut v = Volume::open(file_dev(&img)).unwrap();
            v.create_dir("big").unwrap();
            for (i, n) in all.iter().enumerate() {
                // create_file matches the name exactly (POSIX namespace), so case variants are
                // distinct files; write_at then fills them.
                v.create_file(&format!("big/{n}")).unwrap();
                v.write_at(&format!("big/{n}"), 0, format!("content {i}").as_bytes())
                    .unwrap();
                expect.insert(n.clone());
            }
            let listed: BTreeSet<String> = v
                .read_dir("big")
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect();
            let missing: Vec<_> = expect.difference(&listed).take(5).collect();
            assert_eq!(
                listed.len(),
                expect.len(),
                "missing after create: {missing:?}"
            );
            assert!(matches!(
                v.create_file("big/file0000.txt"),
                Err(reseal_ntfs::Error::AlreadyExists { .. })
            ));
            // delete every third
            for (i, n) in all.iter().enumerate() {
                if i % 3 == 0 {
                    v.remove(&format!("big/{n}")).unwrap();
                    expect.remove(n);
                }
            }
            let listed: BTreeSet<String> = v
                .read_dir("big")
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect();
            let missing: Vec<_> = expect.difference(&listed).take(5).collect();
            let extra: Vec<_> = listed.difference(&expect).take(5).collect();
            assert_eq!(
                listed, expect,
                "after delete: missing {missing:?} extra {extra:?}"
            );
            // rename a few, move one to root
            v.rename("big/file0004.txt", "big/renamed-4.txt").unwrap();
            expect.remove("file0004.txt");
            expect.insert("renamed-4.txt".into());
            v.rename("big/FILE0004.txt", "moved.txt").unwrap();
            expect.remove("FILE0004.txt");
            let listed: BTreeSet<String> = v
                .read_dir("big")
                .unwrap()
                .into_iter()
                .map(|e| e.name)
                .collect();
            assert_eq!(listed, expect);
            v.flush().unwrap();
        }
        ntfsfix_clean(&img);
        info_parses(&img);
        let m = Mount::new(&img, &td.path().join("m"));
        let got: BTreeSet<String> = std::fs::read_dir(m.dir.join("big"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(got, expect);
        for (i, n) in all.iter().enumerate() {
            if expect.contains(n) {
                assert_eq!(
                    std::fs::read(m.dir.join("big").join(n)).unwrap(),
                    format!("content {i}").as_bytes(),
                    "{n}"
                );
            }
        }
        assert_eq!(
            std::fs::read(m.dir.join("moved.txt")).unwrap(),
            b"content 5"
        );
        assert_eq!(
            std::fs::read(m.dir.join("big/renamed-4.txt")).unwrap(),
            b"content 4"
        );
        // ntfs-3g can still modify the directory we built.
        std::fs::write(m.dir.join("big/after-ntfs3g"), b"x").unwrap();
        std::fs::remove_file(m.dir.join("big/file0012.txt")).ok();
    }
}

/// Random insert/delete order over a large directory: leaf splits, in-place removals and
/// relayouts interleave; ntfs-3g must list exactly the survivors and read their contents.
#[test]
fn random_order_large_directory() {
    if !have("mkntfs") || !have("ntfs-3g") {
        return;
    }
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 64, 4096);
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut expect: BTreeSet<String> = BTreeSet::new();
    {
        let mut v = Volume::open(file_dev(&img)).unwrap();
        v.create_dir("r").unwrap();
        for step in 0..2500 {
            let n = format!("n{:x}-{}", rnd() % 1500, "é".repeat((step % 7) as usize));
            if expect.contains(&n) && rnd() % 3 == 0 {
                v.remove(&format!("r/{n}")).unwrap();
                expect.remove(&n);
            } else if !expect.contains(&n) {
                v.create_file(&format!("r/{n}")).unwrap();
                v.write_at(&format!("r/{n}"), 0, n.as_bytes()).unwrap();
                expect.insert(n);
            }
        }
        let listed: BTreeSet<String> = v
            .read_dir("r")
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(listed, expect);
        v.flush().unwrap();
    }
    ntfsfix_clean(&img);
    info_parses(&img);
    let (ok, out) = run(&format!("ntfsls -a {} -p /r", img.display()));
    assert!(ok, "ntfsls: {out}");
    let listed: BTreeSet<String> = out
        .lines()
        .map(str::to_string)
        .filter(|l| l != "." && l != "..")
        .collect();
    let extra: Vec<_> = listed.difference(&expect).collect();
    let missing: Vec<_> = expect.difference(&listed).collect();
    assert!(
        extra.is_empty() && missing.is_empty(),
        "ntfsls: extra {extra:?} missing {missing:?}"
    );
    let m = Mount::new(&img, &td.path().join("m"));
    let got: BTreeSet<String> = std::fs::read_dir(m.dir.join("r"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(got, expect);
    for n in &expect {
        assert_eq!(
            std::fs::read(m.dir.join("r").join(n)).unwrap(),
            n.as_bytes()
        );
    }
}
