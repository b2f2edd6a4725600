//! Fuzz the GPT parser (headers, CRCs, entry arrays, backup fallback, 512/4096 probing): the
//! input is the disk from LBA 1 on, behind a protective MBR (or a hybrid one when the first byte
//! says so), so every input reaches the GPT code.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_disk::partition::PartitionTable;
use reseal_disk::MemDevice;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mut img = vec![0u8; 512];
    img[446 + 4] = 0xee;
    img[446 + 8..446 + 12].copy_from_slice(&1u32.to_le_bytes());
    img[446 + 12..446 + 16].copy_from_slice(&u32::MAX.to_le_bytes());
    if sel & 1 == 1 {
        img[446 + 16 + 4] = 0x07;
        img[446 + 16 + 8..446 + 16 + 12].copy_from_slice(&2048u32.to_le_bytes());
        img[446 + 16 + 12..446 + 16 + 16].copy_from_slice(&4096u32.to_le_bytes());
    }
    img[510] = 0x55;
    img[511] = 0xaa;
    img.extend_from_slice(rest);
    let ss = if sel & 2 == 0 { 512 } else { 4096 };
    let _ = PartitionTable::read(&MemDevice::new(img).with_sector_size(ss));
});
