//! MBR partition tables: the four primary entries of sector 0 and the EBR chain of logical
//! partitions inside an extended partition; telling an MBR from a file-system boot sector.

use super::*;

/// True if sector 0 is a file-system boot sector (NTFS, BitLocker, exFAT, FAT) rather than an MBR.
pub(super) fn looks_like_boot_sector(s: &[u8]) -> bool {
    let oem = s.get(3..11).unwrap_or(&[]);
    if oem == b"NTFS    " || oem == b"-FVE-FS-" || oem == b"EXFAT   " {
        return true;
    }
    // FAT: jump instruction plus file-system type string in the BPB.
    let jump = matches!(s.first(), Some(0xeb) | Some(0xe9));
    let fat16 = s.get(0x36..0x39) == Some(b"FAT");
    let fat32 = s.get(0x52..0x57) == Some(b"FAT32");
    jump && (fat16 || fat32)
}

#[derive(Clone, Copy)]
pub(super) struct MbrEntry {
    pub(super) boot: u8,
    pub(super) kind: u8,
    pub(super) lba: u32,
    pub(super) count: u32,
}

pub(super) fn mbr_entries(sector: &[u8]) -> [MbrEntry; 4] {
    let mut out = [MbrEntry {
        boot: 0,
        kind: 0,
        lba: 0,
        count: 0,
    }; 4];
    for (i, e) in out.iter_mut().enumerate() {
        let o = 446 + 16 * i;
        *e = MbrEntry {
            boot: sector.get(o).copied().unwrap_or(0),
            kind: sector.get(o + 4).copied().unwrap_or(0),
            lba: le32(sector, o + 8),
            count: le32(sector, o + 12),
        };
    }
    out
}

pub(super) fn read_mbr(dev: &dyn Device, s0: &[u8], ss: u32) -> Result<PartitionTable> {
    let ssz = u64::from(ss);
    let mut parts = Vec::new();
    let mut warnings = Vec::new();
    let mut next_logical = 5u32;
    let entries = mbr_entries(s0);
    for (i, e) in entries.iter().enumerate() {
        if e.kind == 0 || e.count == 0 {
            continue;
        }
        let start = u64::from(e.lba) * ssz;
        let len = u64::from(e.count) * ssz;
        parts.push(Partition {
            number: i as u32 + 1,
            start,
            len,
            kind: PartitionKind::Mbr(e.kind),
            name: None,
            guid: None,
            bootable: e.boot == 0x80,
            attributes: u64::from(e.boot),
        });
    }
    for e in entries
        .iter()
        .filter(|e| is_extended(e.kind) && e.count != 0)
    {
        read_ebr_chain(
            dev,
            ss,
            u64::from(e.lba),
            &mut parts,
            &mut warnings,
            &mut next_logical,
        )?;
    }
    Ok(PartitionTable {
        scheme: Scheme::Mbr {
            signature: le32(s0, 440),
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
        let mut s = [0u8; 512];
        dev.read_at(off, &mut s)?;
        if s[510] != 0x55 || s[511] != 0xaa {
            if ebr_lba != ext_lba {
                warnings.push(format!(
                    "EBR at offset {off:#x}: no 0x55AA signature; chain stopped"
                ));
            }
            return Ok(());
        }
        let es = mbr_entries(&s);
        let mut next = None;
        for (i, e) in es.iter().enumerate() {
            if e.boot != 0 && e.boot != 0x80 {
                return Err(Error::corrupt(
                    format!("EBR entry {}", i + 1),
                    off + 446 + 16 * i as u64,
                    format!("boot indicator 0x{:02x} is neither 0x00 nor 0x80", e.boot),
                ));
            }
            if e.kind == 0 || e.count == 0 {
                continue;
            }
            if is_extended(e.kind) {
                if next.is_none() {
                    next = Some(ext_lba.checked_add(u64::from(e.lba)).ok_or_else(|| {
                        Error::corrupt(
                            "EBR link",
                            off + 446 + 16 * i as u64,
                            "next EBR LBA overflows",
                        )
                    })?);
                }
                continue;
            }
            let start = ebr_lba
                .checked_add(u64::from(e.lba))
                .and_then(|l| l.checked_mul(ssz));
            let Some(start) = start else {
                return Err(Error::corrupt(
                    "EBR entry",
                    off + 446 + 16 * i as u64,
                    "start overflows",
                ));
            };
            parts.push(Partition {
                number: *next_logical,
                start,
                len: u64::from(e.count) * ssz,
                kind: PartitionKind::Mbr(e.kind),
                name: None,
                guid: None,
                bootable: e.boot == 0x80,
                attributes: u64::from(e.boot),
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
