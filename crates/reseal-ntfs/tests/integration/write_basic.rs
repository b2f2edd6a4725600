//! Write-engine basics against ntfs-3g: data overwrite (single and many pieces), resident ↔ non-resident growth and
//! shrink, sparse writes, create/delete/rename, checked by mounting with ntfs-3g.

use crate::ntfsw_common;

use ntfsw_common::*;
use reseal_ntfs::Volume;

fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u32).wrapping_mul(31).wrapping_add(u32::from(seed)) as u8)
        .collect()
}

#[test]
fn grow_shrink_read_back_512_and_4k() {
    if !have("mkntfs") || !have("ntfs-3g") {
        return;
    }
    for cluster in [512u32, 4096] {
        let td = tempfile::tempdir().unwrap();
        let img = mkvol(td.path(), 64, cluster);
        {
            let m = Mount::new(&img, &td.path().join("m"));
            std::fs::write(m.dir.join("small.txt"), b"hello").unwrap();
            std::fs::create_dir(m.dir.join("dir")).unwrap();
            std::fs::write(m.dir.join("dir/big.bin"), pattern(100_000, 1)).unwrap();
            // sparse file: 1 MiB hole then 10 bytes
            let f = std::fs::File::create(m.dir.join("sparse.bin")).unwrap();
            f.set_len(1 << 20).unwrap();
            use std::os::unix::fs::FileExt;
            f.write_all_at(b"tail-bytes", (1 << 20) - 10).unwrap();
        }
        let mut expect_small;
        let expect_big;
        let expect_sparse;
        {
            let mut v = Volume::open(file_dev(&img)).unwrap();
            assert_eq!(v.read_file("small.txt").unwrap(), b"hello");
            assert_eq!(v.read_file("DIR/Big.bin").unwrap(), pattern(100_000, 1));
            // grow resident -> multi-run non-resident
            expect_small = pattern(300_000, 7);
            v.write_at("small.txt", 0, &expect_small).unwrap();
            same("small", &v.read_file("small.txt").unwrap(), &expect_small);
            // overwrite in the middle of a non-resident file
            let mut big = pattern(100_000, 1);
            big[5000..6000].copy_from_slice(&[0xAB; 1000]);
            v.write_at("dir/big.bin", 5000, &[0xAB; 1000]).unwrap();
            big.resize(150_000, 0);
            v.set_len("dir/big.bin", 150_000).unwrap();
            big.resize(190_010, 0);
            big[190_000..190_010].copy_from_slice(b"0123456789");
            v.write_at("dir/big.bin", 190_000, b"0123456789").unwrap();
            // many pieces in one call, the last one growing the file
            let pieces: [(u64, &[u8]); 3] =
                [(10, b"ten"), (120_000, b"mid"), (190_005, b"ABCDEFGHIJKL")];
            v.write_ranges("dir/big.bin", &pieces).unwrap();
            big.resize(190_017, 0);
            for (off, data) in pieces {
                let o = off as usize;
                big[o..o + data.len()].copy_from_slice(data);
            }
            same("big pieces", &v.read_file("dir/big.bin").unwrap(), &big);
            expect_big = big;
            // write into the hole of the sparse file
            let mut sp = vec![0u8; 1 << 20];
            sp[(1 << 20) - 10..].copy_from_slice(b"tail-bytes");
            sp[300_000..300_005].copy_from_slice(b"HOLE!");
            v.write_at("sparse.bin", 300_000, b"HOLE!").unwrap();
            v.write_ranges("sparse.bin", &[(400_000, b"A"), (700_000, b"BB")])
                .unwrap();
            sp[400_000] = b'A';
            sp[700_000..700_002].copy_from_slice(b"BB");
            expect_sparse = sp;
            same(
                "sparse before",
                &v.read_file("sparse.bin").unwrap(),
                &expect_sparse,
            );
            // shrink back
            v.set_len("small.txt", 3).unwrap();
            expect_small.truncate(3);
            v.flush().unwrap();
        }
        ntfsfix_clean(&img);
        info_parses(&img);
        {
            let m = Mount::new(&img, &td.path().join("m"));
            same(
                "small.txt",
                &std::fs::read(m.dir.join("small.txt")).unwrap(),
                &expect_small,
            );
            same(
                "dir/big.bin",
                &std::fs::read(m.dir.join("dir/big.bin")).unwrap(),
                &expect_big,
            );
            same(
                "sparse.bin",
                &std::fs::read(m.dir.join("sparse.bin")).unwrap(),
                &expect_sparse,
            );
            assert_eq!(
                std::fs::metadata(m.dir.join("dir/big.bin")).unwrap().len(),
                190_017
            );
        }
    }
}

#[test]
fn interleaved_growth_makes_multi_run_files_and_shrink_frees() {
    if !have("mkntfs") || !have("ntfs-3g") {
        return;
    }
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 32, 512);
    let (mut a, mut b) = (b"resident".to_vec(), Vec::new());
    {
        let mut v = Volume::open(file_dev(&img)).unwrap();
        v.write_file("a.bin", &a).unwrap();
        v.write_file("b.bin", b"").unwrap();
        for i in 0..12u8 {
            let chunk = pattern(4096 + 100 * usize::from(i), i);
            v.write_at("a.bin", a.len() as u64, &chunk).unwrap();
            a.extend_from_slice(&chunk);
            v.write_at("b.bin", b.len() as u64, &chunk).unwrap();
            b.extend_from_slice(&chunk);
        }
        let runs = v.data_runs("a.bin").unwrap();
        assert!(runs.len() > 3, "expected a fragmented file, got {runs:?}");
        same("a ours", &v.read_file("a.bin").unwrap(), &a);
        v.flush().unwrap();
    }
    ntfsfix_clean(&img);
    {
        let m = Mount::new(&img, &td.path().join("m"));
        same(
            "a via ntfs-3g",
            &std::fs::read(m.dir.join("a.bin")).unwrap(),
            &a,
        );
        same(
            "b via ntfs-3g",
            &std::fs::read(m.dir.join("b.bin")).unwrap(),
            &b,
        );
    }
    let free_before = free_clusters(&img);
    {
        let mut v = Volume::open(file_dev(&img)).unwrap();
        v.set_len("a.bin", 100).unwrap();
        a.truncate(100);
        v.remove("b.bin").unwrap();
        v.flush().unwrap();
    }
    let free_after = free_clusters(&img);
    assert!(
        free_after > free_before + 100,
        "clusters not freed: {free_before} -> {free_after}"
    );
    ntfsfix_clean(&img);
    info_parses(&img);
    let m = Mount::new(&img, &td.path().join("m"));
    same("a shrunk", &std::fs::read(m.dir.join("a.bin")).unwrap(), &a);
    assert!(!m.dir.join("b.bin").exists());
}

/// Free bytes as ntfs-3g computes them from `$Bitmap` (statfs on a mount).
fn free_clusters(img: &std::path::Path) -> u64 {
    let at = img.with_extension("df");
    let m = Mount::new(img, &at);
    let (_, out) = run(&format!("stat -f -c '%f %S' {}", m.dir.display()));
    let v: Vec<u64> = out
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    v[0] * v[1] / 512
}

/// Clusters a file gives up (removed, truncated) are zeroed before they are released, so the
/// old contents cannot be read from free space.
#[test]
fn freed_clusters_are_zeroed() {
    if !have("mkntfs") {
        return;
    }
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 8, 4096);
    let mut v =
        reseal_ntfs::Volume::open(reseal_disk::MemDevice::new(std::fs::read(&img).unwrap()))
            .unwrap();
    let marker = b"OLD-IDENTITY-S-1-5-21-9-9-9";
    let data: Vec<u8> = marker.iter().copied().cycle().take(200_000).collect();
    v.create_file("gone").unwrap();
    v.write_file("gone", &data).unwrap();
    v.create_file("short").unwrap();
    v.write_file("short", &data).unwrap();
    v.flush().unwrap();
    let find = |b: &[u8]| b.windows(marker.len()).filter(|w| *w == marker).count();
    assert!(find(v.into_inner().as_slice()) > 0);
    let mut v =
        reseal_ntfs::Volume::open(reseal_disk::MemDevice::new(std::fs::read(&img).unwrap()))
            .unwrap();
    v.create_file("gone").unwrap();
    v.write_file("gone", &data).unwrap();
    v.create_file("short").unwrap();
    v.write_file("short", &data).unwrap();
    // A resident file: its bytes live in its MFT record, which the removal frees.
    v.create_file("OLD-IDENTITY-name").unwrap();
    v.write_file("OLD-IDENTITY-name", &data[..200]).unwrap();
    v.flush().unwrap();
    v.remove("gone").unwrap();
    v.set_len("short", 10).unwrap();
    v.remove("OLD-IDENTITY-name").unwrap();
    v.flush().unwrap();
    let bytes = v.into_inner().as_slice().to_vec();
    // What is left: the 10 bytes "short" keeps (no whole marker) — nothing else, and not the
    // removed file's name either (UTF-16 in its freed record and in the root index).
    assert_eq!(find(&bytes), 0);
    let name: Vec<u8> = "OLD-IDENTITY-name"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let in_record = bytes
        .windows(name.len())
        .filter(|w| *w == name.as_slice())
        .count();
    // ntfs-3g agrees the volume is consistent, and its view has only "short" left.
    std::fs::write(&img, &bytes).unwrap();
    let o = std::process::Command::new("ntfsfix")
        .arg("-n")
        .arg(&img)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    let o = std::process::Command::new("ntfsls")
        .arg(&img)
        .output()
        .unwrap();
    let ls = String::from_utf8_lossy(&o.stdout);
    assert!(
        ls.contains("short") && !ls.contains("gone") && !ls.contains("OLD-IDENTITY"),
        "{ls}"
    );
    assert_eq!(
        in_record, 0,
        "the removed file's name stays in a freed record or index"
    );
}
