//! Browsing through the whole stack on a Windows-made virtual disk: `Image` (VHDX) →
//! `PartitionTable` (GPT) → `Slice` → `probe` → `Volume`. The oracle is the same partition
//! extracted by `qemu-img convert -O raw` and mounted read-only by ntfs-3g.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;

use reseal_disk::partition::{
    PartitionKind, PartitionTable, ProtectiveKind, Scheme, Slice, GPT_BASIC_DATA,
};
use reseal_disk::probe::{probe, FsInfo};
use reseal_disk::{Access, Device, Image};
use reseal_ntfs::browse::Volume;
use reseal_ntfs::state::VolumeState;
use sha2::{Digest, Sha256};

use crate::ntfsw_common;
use ntfsw_common::{corpus, tools, unmount};

struct Hasher(Sha256);
impl Write for Hasher {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

type Tree = BTreeMap<String, (bool, u64, String)>;

fn walk_mount(root: &Path) -> Tree {
    let mut out = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = format!("/{}", p.strip_prefix(root).unwrap().to_string_lossy());
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                out.insert(rel, (true, 0, String::new()));
                stack.push(p);
            } else {
                let mut h = Hasher(Sha256::new());
                std::io::copy(&mut File::open(&p).unwrap(), &mut h).unwrap();
                out.insert(rel, (false, md.len(), format!("{:x}", h.0.finalize())));
            }
        }
    }
    out
}

#[test]
fn windows_vhdx_gpt_ntfs_agrees_with_qemu_img_and_ntfs3g() {
    let Some(root) = corpus() else { return };
    if !tools(&["qemu-img", "ntfs-3g", "fusermount"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let vhdx = tmp.path().join("test.vhdx");
    let mut data = Vec::new();
    xz2::read::XzDecoder::new(File::open(root.join("velociraptor/test.vhdx.xz")).unwrap())
        .read_to_end(&mut data)
        .unwrap();
    std::fs::write(&vhdx, &data).unwrap();

    let mut img = Image::open(&vhdx, Access::ReadOnly).unwrap();
    let t = PartitionTable::read(&img).unwrap();
    let Scheme::Gpt {
        disk_guid,
        protective_mbr,
        backup_used,
        ..
    } = t.scheme
    else {
        panic!("{:?}", t.scheme)
    };
    assert_eq!(
        disk_guid.to_string(),
        "8bd3467c-b6de-42c5-9e1b-a566643aa910"
    );
    assert_eq!(protective_mbr, ProtectiveKind::Protective);
    assert!(!backup_used);
    assert_eq!(t.partitions.len(), 1);
    let p = t.partitions[0].clone();
    assert_eq!(
        (p.number, p.start, p.len),
        (1, 128 * 512, (6271 - 128 + 1) * 512)
    );
    assert_eq!(p.kind, PartitionKind::Gpt(GPT_BASIC_DATA));
    assert_eq!(p.name.as_deref(), Some("Basic data partition"));

    let slice = Slice::partition(&mut img, &p).unwrap();
    let FsInfo::Ntfs(boot) = probe(&slice).unwrap() else {
        panic!("not NTFS")
    };
    assert_eq!(boot.cluster_size, 4096);
    let mut v = Volume::open(slice).unwrap();
    assert_eq!(v.label().unwrap(), "Test Volume");
    let state = VolumeState::from_volume(&mut v).unwrap();

    // Oracle: qemu-img's raw conversion of the same image, partition cut out, ntfs-3g mount.
    let raw = tmp.path().join("disk.raw");
    let st = Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(&vhdx)
        .arg(&raw)
        .status()
        .unwrap();
    assert!(st.success());
    let disk = std::fs::read(&raw).unwrap();
    let part = tmp.path().join("part.img");
    std::fs::write(&part, &disk[p.start as usize..(p.start + p.len) as usize]).unwrap();
    // Every byte of the partition read through Image + Slice equals qemu-img's.
    let mut ours = vec![0u8; p.len as usize];
    v.device().read_at(0, &mut ours).unwrap();
    assert!(
        ours == disk[p.start as usize..(p.start + p.len) as usize],
        "partition bytes differ from qemu-img"
    );

    let mnt = tmp.path().join("m");
    std::fs::create_dir_all(&mnt).unwrap();
    let out = Command::new("ntfs-3g")
        .arg("-o")
        .arg("ro")
        .arg(&part)
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let oracle = walk_mount(&mnt);
    assert!(unmount(&mnt));

    let mut mine = Tree::new();
    for (path, e) in v.walk().unwrap() {
        if e.is_dir {
            mine.insert(path, (true, 0, String::new()));
        } else {
            let mut h = Hasher(Sha256::new());
            assert_eq!(v.read(&path, &mut h).unwrap(), e.size);
            mine.insert(path, (false, e.size, format!("{:x}", h.0.finalize())));
        }
    }
    assert_eq!(mine, oracle);
    assert!(!state.hibernated, "{state:?}");
}
