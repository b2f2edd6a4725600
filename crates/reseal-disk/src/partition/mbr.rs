//! MBR partition tables: the four primary entries of sector 0 and the EBR chain of logical
//! partitions inside an extended partition; telling an MBR from a file-system boot sector.

use zerocopy::{FromZeros, IntoBytes};

use super::*;
use crate::layout::boot_sector::{
    Fat16BootSector, Fat32BootSector, OEM_BITLOCKER, OEM_EXFAT, OEM_NTFS,
};
use crate::layout::mbr::{Mbr, BOOT_ACTIVE, ENTRIES_OFFSET};

/// True if sector 0 is a file-system boot sector (NTFS, BitLocker, exFAT, FAT) rather than an MBR.
pub(super) fn looks_like_boot_sector(s: &[u8]) -> bool {
    let (Some(f16), Some(f32)) = (Fat16BootSector::view(s), Fat32BootSector::view(s)) else {
        return false;
    };
    let oem = f16.bpb.oem_name;
    if oem == OEM_NTFS || oem == OEM_BITLOCKER || oem == OEM_EXFAT {
        return true;
    }
    // FAT: jump instruction plus file-system type string in the BPB.
    let jump = matches!(f16.bpb.jmp_boot[0], 0xeb | 0xe9);
    let fat16 = f16.ext.fs_type.starts_with(b"FAT");
    let fat32 = f32.ext.fs_type.starts_with(b"FAT32");
    jump && (fat16 || fat32)
}

pub(super) fn read_mbr(dev: &dyn Device, s0: &Mbr, ss: u32) -> Result<PartitionTable> {
    let ssz = u64::from(ss);
    let mut parts = Vec::new();
    let mut warnings = Vec::new();
    let mut next_logical = 5u32;
    let entries = &s0.partition_record;
    for (i, e) in entries.iter().enumerate() {
        let (lba, count) = (e.starting_lba.get(), e.size_in_lba.get());
        if e.os_type == 0 || count == 0 {
            continue;
        }
        let start = u64::from(lba) * ssz;
        let len = u64::from(count) * ssz;
        parts.push(Partition {
            number: i as u32 + 1,
            start,
            len,
            kind: PartitionKind::Mbr(e.os_type),
            name: None,
            guid: None,
            bootable: e.boot_indicator == BOOT_ACTIVE,
            attributes: u64::from(e.boot_indicator),
        });
    }
    for e in entries
        .iter()
        .filter(|e| is_extended(e.os_type) && e.size_in_lba.get() != 0)
    {
        read_ebr_chain(
            dev,
            ss,
            u64::from(e.starting_lba.get()),
            &mut parts,
            &mut warnings,
            &mut next_logical,
        )?;
    }
    Ok(PartitionTable {
        scheme: Scheme::Mbr {
            signature: s0.unique_mbr_disk_signature.get(),
        },
        sector_size: ss,
        partitions: parts,
        warnings,
    })
}

pub(super) fn read_ebr_chain(
    dev: &dyn Device,
    ss: u32,
    ext_lba: u64,
    parts: &mut Vec<Partition>,
    warnings: &mut Vec<String>,
    next_logical: &mut u32,
) -> Result<()> {
    let ssz = u64::from(ss);
    let mut seen = HashSet::new();
    let mut ebr_lba = ext_lba;
    for _ in 0..MAX_LOGICAL {
        let off = ebr_lba * ssz;
        if !seen.insert(ebr_lba) {
            warnings.push(format!("EBR at offset {off:#x}: chain loops back; stopped"));
            return Ok(());
        }
        if off.checked_add(512).is_none_or(|e| e > dev.len()) {
            warnings.push(format!(
                "EBR at offset {off:#x}: beyond the end of the device; chain stopped"
            ));
            return Ok(());
        }
        let mut s = Mbr::new_zeroed();
        dev.read_at(off, s.as_mut_bytes())?;
        if !s.has_boot_signature() {
            if ebr_lba != ext_lba {
                warnings.push(format!(
                    "EBR at offset {off:#x}: no 0x55AA signature; chain stopped"
                ));
            }
            return Ok(());
        }
        let mut next = None;
        for (i, e) in s.partition_record.iter().enumerate() {
            let eoff = off + (ENTRIES_OFFSET + 16 * i) as u64;
            let (lba, count) = (e.starting_lba.get(), e.size_in_lba.get());
            if e.boot_indicator != 0 && e.boot_indicator != BOOT_ACTIVE {
                return Err(Error::corrupt(
                    format!("EBR entry {}", i + 1),
                    eoff,
                    format!(
                        "boot indicator 0x{:02x} is neither 0x00 nor 0x80",
                        e.boot_indicator
                    ),
                ));
            }
            if e.os_type == 0 || count == 0 {
                continue;
            }
            if is_extended(e.os_type) {
                if next.is_none() {
                    next = Some(ext_lba.checked_add(u64::from(lba)).ok_or_else(|| {
                        Error::corrupt("EBR link", eoff, "next EBR LBA overflows")
                    })?);
                }
                continue;
            }
            let start = ebr_lba
                .checked_add(u64::from(lba))
                .and_then(|l| l.checked_mul(ssz));
            let Some(start) = start else {
                return Err(Error::corrupt("EBR entry", eoff, "start overflows"));
            };
            parts.push(Partition {
                number: *next_logical,
                start,
                len: u64::from(count) * ssz,
                kind: PartitionKind::Mbr(e.os_type),
                name: None,
                guid: None,
                bootable: e.boot_indicator == BOOT_ACTIVE,
                attributes: u64::from(e.boot_indicator),
            });
            *next_logical += 1;
        }
        match next {
            Some(n) => ebr_lba = n,
            None => return Ok(()),
        }
    }
    warnings.push(format!(
        "EBR chain in extended partition at LBA {ext_lba}: more than {MAX_LOGICAL} links; stopped"
    ));
    Ok(())
}
