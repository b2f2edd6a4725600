//! Timing probes (ignored by default): many small files with descriptors, and a full
//! descriptor rewrite. Run with `cargo test --release -- --ignored --nocapture`.

use crate::ntfsw_common;

use std::time::Instant;

use ntfsw_common::*;
use reseal_ntfs::Volume;

fn sd(rid: u32) -> Vec<u8> {
    let mut s = vec![
        1u8, 0, 0x00, 0x80, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    s.extend_from_slice(&[1, 5, 0, 0, 0, 0, 0, 5]);
    for x in [21u32, 11, 22, 33, rid] {
        s.extend_from_slice(&x.to_le_bytes());
    }
    s
}

#[test]
#[ignore = "timing probe"]
fn bench_create_files_with_descriptors() {
    if !have("mkntfs") {
        return;
    }
    let n: u32 = std::env::var("RESEAL_BENCH_FILES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2000);
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 256, 4096);
    let mut v = Volume::open(file_dev(&img)).unwrap();
    let t = Instant::now();
    v.create_dir("d").unwrap();
    for i in 0..n {
        let p = format!("d/file-{i:05}.txt");
        v.write_file(&p, b"small").unwrap();
        v.set_security(&p, &sd(1000 + i % 500)).unwrap();
        if (i + 1) % 2000 == 0 {
            eprintln!("{} files: {:?}", i + 1, t.elapsed());
        }
    }
    let create = t.elapsed();
    let t = Instant::now();
    let changed = v
        .rewrite_descriptors(|_, s| {
            let mut s = s.to_vec();
            if s.len() >= 44 && s[40] == 33 {
                s[40] = 44;
                Some(s)
            } else {
                None
            }
        })
        .unwrap();
    let rewrite = t.elapsed();
    eprintln!(
        "create {n} files with descriptors: {create:?}; rewrite {changed} descriptors: {rewrite:?}"
    );
    drop(v);
    ntfsfix_clean(&img);
}
