//! Drive a whole NTFS volume: open a (patched) copy of a real mkntfs-made volume, walk and read
//! it with the engine and with the browser, then apply a fuzzer-chosen sequence of writes
//! (create, write, truncate, mkdir, rename, remove, descriptor rewrite), flush, reopen and read
//! back. Never panic; a file the engine said it wrote reads back as written after reopening.
//!
//! Input: `[n_patches] (region, offset u16, byte)* ops…`. Patches land in the boot sector, the
//! first MFT records, or anywhere, so the fuzzer reaches the parsers with a valid volume around
//! them. The template comes from `fuzz/seeds/ntfs_volume.template` (made by make-seeds.sh with
//! mkntfs, or `RESEAL_FUZZ_NTFS` names another file); the engine adds a few files to it once.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use reseal_disk::MemDevice;
use reseal_ntfs::Volume;

fn template() -> &'static Option<(Vec<u8>, u64)> {
    static T: OnceLock<Option<(Vec<u8>, u64)>> = OnceLock::new();
    T.get_or_init(|| {
        let path = std::env::var_os("RESEAL_FUZZ_NTFS").map_or_else(
            || {
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("seeds/ntfs_volume.template")
            },
            std::path::PathBuf::from,
        );
        let raw = std::fs::read(&path).ok()?;
        let mut v = Volume::open(MemDevice::new(raw)).ok()?;
        v.create_dir("d").ok()?;
        v.create_dir("d/sub").ok()?;
        for i in 0..24u32 {
            let p = format!("d/f{i}");
            v.create_file(&p).ok()?;
            v.write_file(&p, &vec![i as u8; 300 * i as usize]).ok()?;
        }
        v.create_file("d/sub/big").ok()?;
        v.write_file("d/sub/big", &vec![7u8; 70_000]).ok()?;
        v.flush().ok()?;
        let mft = {
            let bs = v.boot_sector();
            bs.mft_lcn * u64::from(bs.cluster_size)
        };
        Some((v.into_inner().as_slice().to_vec(), mft))
    })
}

const NAMES: [&str; 8] = ["d/f1", "d/f5", "d/sub/big", "d/new", "d/sub", "x", "d/f23", "d"];

fn walk(v: &Volume<MemDevice>, dir: &str, depth: u32, budget: &mut u32) {
    if depth > 6 || *budget == 0 {
        return;
    }
    let Ok(ents) = v.read_dir(dir) else { return };
    for e in ents {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let p = if dir.is_empty() {
            e.name.clone()
        } else {
            format!("{dir}/{}", e.name)
        };
        if e.name.starts_with('$') {
            continue;
        }
        if e.is_dir {
            walk(v, &p, depth + 1, budget);
        } else {
            let mut buf = [0u8; 4096];
            let _ = v.read_file_at(&p, 0, &mut buf);
            let _ = v.metadata(&p);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((base, mft)) = template() else {
        return;
    };
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let n = usize::from(n % 32);
    if rest.len() < n * 4 {
        return;
    }
    let (patches, ops) = rest.split_at(n * 4);
    let mut img = base.clone();
    for p in patches.chunks_exact(4) {
        let off = usize::from(u16::from_le_bytes([p[1], p[2]]));
        let at = match p[0] % 4 {
            0 => off % 512,
            1 | 2 => (*mft as usize).saturating_add(off % (32 * 1024)),
            _ => off.wrapping_mul(97) % img.len(),
        };
        if let Some(b) = img.get_mut(at) {
            *b = p[3];
        }
    }
    // The browser (inspect's reader) on the same bytes.
    if let Ok(mut b) = reseal_ntfs::browse::Volume::open(MemDevice::new(img.clone())) {
        if let Ok(list) = b.list("d") {
            for e in list.iter().take(8) {
                let _ = b.stat(&format!("d/{}", e.name));
            }
        }
        let _ = b.list("");
    }
    let Ok(mut v) = Volume::open(MemDevice::new(img)) else {
        return;
    };
    let mut budget = 400;
    walk(&v, "", 0, &mut budget);
    let mut written: Vec<(String, Vec<u8>)> = Vec::new();
    for op in ops.chunks_exact(3).take(24) {
        let path = NAMES[usize::from(op[1]) % NAMES.len()];
        let size = usize::from(op[2]) * (1 + usize::from(op[1] >> 4) * 97);
        if op[0] % 8 == 1 {
            let bytes: Vec<u8> = (0..size).map(|i| (i as u8) ^ op[2]).collect();
            written.retain(|(p, _)| p != path);
            if v.write_file(path, &bytes).is_ok() {
                written.push((path.to_string(), bytes));
            }
            continue;
        }
        let ok = match op[0] % 8 {
            0 => v.create_file(path).is_ok(),
            2 => v.set_len(path, size as u64).is_ok(),
            3 => v.create_dir(path).is_ok(),
            4 => v
                .rename(path, NAMES[usize::from(op[2]) % NAMES.len()])
                .is_ok(),
            5 => v.remove(path).is_ok(),
            6 => v
                .rewrite_descriptors(|_, sd| {
                    let mut b = sd.to_vec();
                    if let Some(x) = b.last_mut() {
                        *x ^= op[2];
                    }
                    Some(b)
                })
                .is_ok(),
            _ => v.write_at(path, u64::from(op[2]) * 511, &[op[1]; 33]).is_ok(),
        };
        if ok {
            // Renames, removals and truncations change what a path holds: expect nothing.
            written.clear();
        }
    }
    if v.flush().is_err() {
        return;
    }
    let bytes = v.into_inner().as_slice().to_vec();
    let v = match Volume::open(MemDevice::new(bytes)) {
        Ok(v) => v,
        Err(e) => panic!("a volume the engine flushed no longer opens: {e}"),
    };
    for (p, want) in &written {
        match v.read_file(p) {
            Ok(got) => assert!(got == *want, "{p}: read back differs from what was written"),
            Err(e) => panic!("{p}: written, then unreadable after reopening: {e}"),
        }
    }
    let mut budget = 400;
    walk(&v, "", 0, &mut budget);
});
