//! Fuzz boot-sector probing (NTFS geometry validation, FAT BPB, exFAT/BitLocker IDs). Half the
//! inputs get the "NTFS    " OEM ID forced so the NTFS field checks are always exercised.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_disk::probe::{probe_sector, NtfsBoot};

fuzz_target!(|data: &[u8]| {
    let _ = probe_sector(data);
    if data.len() >= 512 {
        let mut b = data.to_vec();
        b[3..11].copy_from_slice(b"NTFS    ");
        if let Ok(n) = NtfsBoot::parse(&b, 0) {
            assert!(n.cluster_size.is_power_of_two());
            assert!(n.record_size >= 256 && n.index_record_size >= 256);
            assert!(n.mft_lcn < n.total_sectors);
            let _ = n.volume_bytes();
        }
    }
});
