//! Fuzz the MBR / EBR-chain parser: the input is a whole (small) disk. The first byte picks the
//! logical sector size; the 0x55AA signature is forced so parsing always goes past it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_disk::partition::{PartitionTable, Slice};
use reseal_disk::{Device, MemDevice};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let ss = if sel & 1 == 0 { 512 } else { 4096 };
    let mut img = rest.to_vec();
    if img.len() >= 512 && sel & 2 == 0 {
        img[510] = 0x55;
        img[511] = 0xaa;
    }
    let mut dev = MemDevice::new(img).with_sector_size(ss);
    if let Ok(t) = PartitionTable::read(&dev) {
        for p in t.partitions.clone() {
            let _ = p.kind.name();
            if let Ok(s) = Slice::partition(&mut dev, &p) {
                let mut b = [0u8; 16];
                let _ = s.read_at(0, &mut b);
                let _ = reseal_disk::probe::probe(&s);
            }
        }
    }
});
