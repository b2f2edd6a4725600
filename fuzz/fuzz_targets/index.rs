//! Fuzz INDX block parsing (fixups, node header, entries and sub-node pointers).
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_ntfs::index::parse_index_block;

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    buf.resize(4096, 0);
    if buf.len() >= 4 {
        buf[0..4].copy_from_slice(b"INDX");
    }
    let _ = parse_index_block(&mut buf);
});
