//! Differencing VHDX: parent resolution, NOT_PRESENT / FULLY_PRESENT /
//! PARTIALLY_PRESENT blocks, checked against a model built from the spec (libvhdi's `vhdimount`
//! misreads NOT_PRESENT blocks of differencing VHDX, so it is only reported, not trusted).

use crate::containers_util;

use containers_util::*;
use reseal_disk::{Access, Device, Error, Image, ImageFormat};

const MIB: u64 = 1 << 20;

fn put_u64(file: &mut [u8], off: u64, v: u64) {
    file[off as usize..off as usize + 8].copy_from_slice(&v.to_le_bytes());
}

#[test]
fn differencing_vhdx_reads_through_parent() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let content = sample_disk(6 << 20, 21);
    std::fs::write(d.join("p.raw"), &content).unwrap();
    let parent = d.join("parent.vhdx");
    run(
        "qemu-img",
        &[
            "convert",
            "-f",
            "raw",
            "-O",
            "vhdx",
            "-o",
            "block_size=1048576",
            p(&d.join("p.raw")),
            p(&parent),
        ],
    );
    let child = d.join("child.vhdx");
    reseal_disk::vhdx::create_differencing(&child, &parent).unwrap();

    // Empty child: reads the parent.
    let img = Image::open(&child, Access::ReadOnly).unwrap();
    assert_eq!(img.format(), ImageFormat::VhdxDifferencing);
    assert_eq!(img.info().parent_chain, vec![parent.clone()]);
    assert!(read_all(&img) == content);
    // libvhdi 20210425 is not a usable oracle here: on this empty child it already differs from
    // the parent from sector 1 on (it returns the parent's sector 0 only). Report, don't assert.
    let theirs = if have("vhdimount") {
        vhdimount_read(&child, d)
    } else {
        Vec::new()
    };
    eprintln!(
        "libvhdi on the empty child: agrees with the parent: {}, first difference {:?}",
        theirs == content,
        theirs.iter().zip(&content).position(|(a, b)| a != b)
    );
    drop(img);

    // Hand-made blocks: block 1 FULLY_PRESENT, block 2 PARTIALLY_PRESENT (sector bitmap of
    // chunk 0 at BAT index chunk_ratio = 4096 for 1 MiB blocks and 512-byte sectors).
    let mut file = std::fs::read(&child).unwrap();
    let bat = 3 * MIB;
    let base = (file.len() as u64).div_ceil(MIB) * MIB;
    file.resize((base + 3 * MIB) as usize, 0);
    let full = pseudo_random(1, MIB as usize);
    let part = pseudo_random(2, MIB as usize);
    file[base as usize..(base + MIB) as usize].copy_from_slice(&full);
    file[(base + MIB) as usize..(base + 2 * MIB) as usize].copy_from_slice(&part);
    put_u64(&mut file, bat + 8, base | 6);
    put_u64(&mut file, bat + 16, (base + MIB) | 7);
    put_u64(&mut file, bat + 8 * 4096, (base + 2 * MIB) | 6);
    // Block 2 = sectors 4096..6144 of chunk 0; mark sectors 1, 2, 9 and 100..300 present.
    let bm = (base + 2 * MIB) as usize;
    let mut present = vec![false; 2048];
    for s in [1usize, 2, 9].into_iter().chain(100..300) {
        present[s] = true;
        let idx = 4096 + s;
        file[bm + idx / 8] |= 1 << (idx % 8);
    }
    // Block 3: ZERO state (reads zeros, not the parent).
    put_u64(&mut file, bat + 24, 2);
    std::fs::write(&child, &file).unwrap();

    let mut model = content.clone();
    model[MIB as usize..2 * MIB as usize].copy_from_slice(&full);
    for (s, &pr) in present.iter().enumerate() {
        if pr {
            let o = 2 * MIB as usize + s * 512;
            model[o..o + 512].copy_from_slice(&part[s * 512..s * 512 + 512]);
        }
    }
    model[3 * MIB as usize..4 * MIB as usize].fill(0);
    let img = Image::open(&child, Access::ReadOnly).unwrap();
    let ours = read_all(&img);
    let first = |a: &[u8], b: &[u8]| a.iter().zip(b).position(|(x, y)| x != y);
    assert!(
        ours == model,
        "model disagrees, first difference at {:?}",
        first(&ours, &model)
    );
    // Unaligned reads crossing bitmap runs.
    let mut b = vec![0u8; 5000];
    img.read_at(2 * MIB + 300, &mut b).unwrap();
    assert!(b[..] == model[2 * MIB as usize + 300..2 * MIB as usize + 5300]);
    drop(img);

    // Writes go to the child: into the hand-made PARTIALLY_PRESENT block (a partial sector
    // whose bit was clear, so its other bytes come from the parent) and a NOT_PRESENT block.
    let mut img = Image::open(&child, Access::ReadWrite).unwrap();
    for (o, d) in [
        (2 * MIB + 3 * 512 + 7, &b"xyz"[..]),
        (4 * MIB + 100, &b"abcdef"[..]),
    ] {
        img.write_at(o, d).unwrap();
        model[o as usize..o as usize + d.len()].copy_from_slice(d);
    }
    img.commit().unwrap();
    drop(img);
    let img = Image::open(&child, Access::ReadOnly).unwrap();
    assert!(read_all(&img) == model, "after writes to the child");
    drop(img);

    // A different parent (new DataWriteGuid) is refused; a missing one is reported.
    let mut w = Image::open(&parent, Access::ReadWrite).unwrap();
    w.write_at(0, b"changed").unwrap();
    w.commit().unwrap();
    drop(w);
    match Image::open(&child, Access::ReadOnly) {
        Err(Error::Corrupt { structure, .. }) => assert_eq!(structure, "VHDX parent locator"),
        other => panic!("expected a parent-linkage error, got {other:?}"),
    }
    std::fs::rename(&parent, d.join("elsewhere.vhdx")).unwrap();
    assert!(matches!(
        Image::open(&child, Access::ReadOnly),
        Err(Error::MissingParent { .. })
    ));
}
