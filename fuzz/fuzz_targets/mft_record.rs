//! Fuzz the MFT record parser: fixups, header, every attribute header and runlist; then the
//! write path's fixup re-application must round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_ntfs::record::{apply_fixups, remove_fixups, Record};

fuzz_target!(|data: &[u8]| {
    for size in [1024usize, 4096] {
        let mut buf = data.to_vec();
        buf.resize(size, 0);
        if remove_fixups(&mut buf, "MFT record", Some(0)).is_err() {
            continue;
        }
        let Ok(r) = Record::parse(0, buf.clone()) else {
            continue;
        };
        if let Ok(attrs) = r.attrs() {
            for a in attrs {
                if a.nonres {
                    let _ = a.runs(&r.buf, 0);
                } else {
                    let _ = r.value(&a);
                }
            }
        }
        let mut w = buf.clone();
        if apply_fixups(&mut w, "MFT record", Some(0)).is_ok() {
            remove_fixups(&mut w, "MFT record", Some(0)).expect("fixups round-trip");
            // Everything outside the update sequence array itself comes back unchanged.
            let ofs = usize::from(u16::from_le_bytes([buf[4], buf[5]]));
            let count = usize::from(u16::from_le_bytes([buf[6], buf[7]]));
            for (i, (x, y)) in w.iter().zip(&buf).enumerate() {
                if i < ofs || i >= ofs + 2 * count {
                    assert_eq!(x, y, "byte {i} changed by a fixup round trip");
                }
            }
        }
    }
});
