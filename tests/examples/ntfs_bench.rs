//! Driver for `cargo xtask bench ntfs`: the reseal side of the NTFS benchmarks, as one process
//! per run so it is timed like the peer tools.
//!
//! - `ntfs_bench create IMAGE N`: create N small files in 100 directories, each with a security
//!   descriptor (N/10 distinct ones), and commit through the journal.
//! - `ntfs_bench rewrite IMAGE OLD NEW`: rewrite every descriptor of the volume, replacing the
//!   account domain OLD by NEW (same length), and commit.

use reseal_disk::partition::Slice;
use reseal_disk::{Access, Device, Image};
use reseal_security::sidmap::SidMap;
use reseal_security::SecurityDescriptor;

fn descriptor(i: usize) -> Vec<u8> {
    let sddl = format!(
        "O:S-1-5-21-1111111111-2222222222-3333333333-{}G:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)(A;;0x1200a9;;;S-1-5-21-1111111111-2222222222-3333333333-{})",
        1000 + i % 50,
        2000 + i
    );
    SecurityDescriptor::from_sddl(&sddl)
        .and_then(|d| d.to_canonical_bytes())
        .expect("valid SDDL")
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let image = std::path::Path::new(&args[1]);
    let mut img = Image::open(image, Access::ReadWrite).expect("open image");
    let len = img.len();
    let mut slice = Slice::new(&mut img, 0, len).expect("slice");
    match args[0].as_str() {
        "create" => {
            let n: usize = args[2].parse().expect("N");
            let mut vol = reseal_ntfs::Volume::open(&mut slice).expect("open volume");
            for d in 0..100 {
                vol.create_dir(&format!("/d{d:03}")).expect("mkdir");
            }
            for i in 0..n {
                let path = format!("/d{:03}/file-{i:06}.txt", i % 100);
                vol.write_file(&path, format!("content of file {i}\n").as_bytes())
                    .expect("write");
                vol.set_security(&path, &descriptor(i / 10)).expect("setsd");
            }
            vol.flush().expect("flush");
        }
        "rewrite" => {
            let map = SidMap::new(args[2].parse().expect("OLD"), args[3].parse().expect("NEW"))
                .expect("sid map");
            let mut vol = reseal_ntfs::Volume::open(&mut slice).expect("open volume");
            let n = vol
                .rewrite_descriptors(|_, sd| {
                    let mut b = sd.to_vec();
                    match map.rewrite_descriptor_bytes(&mut b) {
                        Ok(0) | Err(_) => None,
                        Ok(_) => Some(b),
                    }
                })
                .expect("rewrite");
            vol.flush().expect("flush");
            eprintln!("rewrote {n} descriptors");
        }
        other => panic!("unknown mode {other}"),
    }
    img.commit().expect("commit");
}
