//! A failing operation leaves the device byte-identical (all writes are staged until the whole
//! operation succeeded).

use crate::ntfsw_common;

use ntfsw_common::*;
use reseal_disk::MemDevice;
use reseal_ntfs::{Error, Volume};

#[test]
fn failed_operations_write_nothing() {
    if !have("mkntfs") || !have("ntfs-3g") {
        return;
    }
    let td = tempfile::tempdir().unwrap();
    let img = mkvol(td.path(), 16, 4096);
    {
        let m = Mount::new(&img, &td.path().join("m"));
        for i in 0..20 {
            std::fs::write(m.dir.join(format!("f{i}")), vec![7u8; 5000]).unwrap();
        }
    }
    let bytes = std::fs::read(&img).unwrap();
    let mut v = Volume::open(MemDevice::new(bytes.clone())).unwrap();
    // Late failure: every descriptor rewritten, then the last one changes length.
    let mut seen = 0;
    let total = {
        let mut n = 0;
        let _ = v.rewrite_descriptors(|_, _| {
            n += 1;
            None
        });
        n
    };
    let r = v.rewrite_descriptors(|_, sd| {
        seen += 1;
        let mut s = sd.to_vec();
        if seen == total {
            s.extend_from_slice(&[0, 0, 0, 0]);
        } else if s.len() > 20 {
            let l = s.len();
            s[l - 1] ^= 0x01;
        }
        Some(s)
    });
    assert!(matches!(r, Err(Error::Unsupported { .. })), "{r:?}");
    // Volume full: a huge growth fails after nothing reached the device.
    let r = v.set_len("f3", 1 << 40);
    assert!(matches!(r, Err(Error::NoSpace { .. })), "{r:?}");
    // A name that exists.
    assert!(matches!(
        v.create_file("f4"),
        Err(Error::AlreadyExists { .. })
    ));
    let after = v.into_inner().into_inner();
    assert!(after == bytes, "a failed operation changed the device");
}
