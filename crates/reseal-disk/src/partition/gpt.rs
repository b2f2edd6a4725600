//! GPT: the header at LBA 1 (or the backup at the last LBA), its CRCs and the partition entry
//! array; 512- and 4096-byte sectors are both tried, as images carry no sector size.

use super::*;
use crate::layout::gpt;

pub(super) struct GptHeader {
    my_lba: u64,
    alternate_lba: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: Uuid,
    entries_lba: u64,
    num_entries: u32,
    entry_size: u32,
    entries_crc: u32,
}

/// Parse and validate a GPT header at `lba` (CRC, sizes, self-LBA). `None` if no signature.
pub(super) fn gpt_header_at(dev: &dyn Device, ss: u32, lba: u64) -> Result<Option<GptHeader>> {
    let ssz = u64::from(ss);
    let off = lba
        .checked_mul(ssz)
        .ok_or_else(|| Error::corrupt("GPT header", 0, "LBA overflows"))?;
    if off.checked_add(ssz).is_none_or(|e| e > dev.len()) {
        return Ok(None);
    }
    let s = read_vec(dev, off, ssz, "GPT header")?;
    let c = |r: &str| Error::corrupt("GPT header", off, r.to_string());
    let Some(v) = gpt::GptHeader::view(&s) else {
        return Err(c(&format!(
            "sector of {ss} bytes is shorter than a GPT header"
        )));
    };
    if v.signature != gpt::SIGNATURE {
        return Ok(None);
    }
    let hsize = v.header_size.get();
    if !(92..=ss).contains(&hsize) {
        return Err(c(&format!("header size {hsize} outside 92..={ss}")));
    }
    let want = v.header_crc32.get();
    let mut h = s[..hsize as usize].to_vec();
    h[gpt::HEADER_CRC_OFFSET..gpt::HEADER_CRC_OFFSET + 4].fill(0);
    let got = crc32fast::hash(&h);
    if got != want {
        return Err(c(&format!(
            "header CRC-32 {want:#010x} recorded but {got:#010x} computed"
        )));
    }
    let my_lba = v.my_lba.get();
    if my_lba != lba {
        return Err(c(&format!(
            "header says it is at LBA {my_lba} but was read from LBA {lba}"
        )));
    }
    let entry_size = v.size_of_partition_entry.get();
    if entry_size < 128 || entry_size % 8 != 0 || entry_size > 4096 {
        return Err(c(&format!("partition entry size {entry_size} invalid")));
    }
    let num_entries = v.number_of_partition_entries.get();
    if u64::from(num_entries) * u64::from(entry_size) > MAX_GPT_ARRAY {
        return Err(c(&format!(
            "{num_entries} entries of {entry_size} bytes exceed {MAX_GPT_ARRAY} bytes"
        )));
    }
    let first_usable = v.first_usable_lba.get();
    let last_usable = v.last_usable_lba.get();
    if first_usable > last_usable.saturating_add(1) {
        return Err(c(&format!(
            "first usable LBA {first_usable} > last usable LBA {last_usable}"
        )));
    }
    Ok(Some(GptHeader {
        my_lba,
        alternate_lba: v.alternate_lba.get(),
        first_usable,
        last_usable,
        disk_guid: v.disk_guid(),
        entries_lba: v.partition_entry_lba.get(),
        num_entries,
        entry_size,
        entries_crc: v.partition_entry_array_crc32.get(),
    }))
}

pub(super) fn gpt_entries(dev: &dyn Device, ss: u32, h: &GptHeader) -> Result<Vec<Partition>> {
    let ssz = u64::from(ss);
    let off = h
        .entries_lba
        .checked_mul(ssz)
        .ok_or_else(|| Error::corrupt("GPT partition entry array", 0, "LBA overflows"))?;
    let size = u64::from(h.num_entries) * u64::from(h.entry_size);
    let arr = read_vec(dev, off, size, "GPT partition entry array")?;
    let got = crc32fast::hash(&arr);
    if got != h.entries_crc {
        return Err(Error::corrupt(
            "GPT partition entry array",
            off,
            format!(
                "CRC-32 {:#010x} recorded but {got:#010x} computed",
                h.entries_crc
            ),
        ));
    }
    let mut out = Vec::new();
    for (i, raw) in arr.chunks_exact(h.entry_size as usize).enumerate() {
        let eoff = off + i as u64 * u64::from(h.entry_size);
        let Some(e) = gpt::GptPartitionEntry::view(raw) else {
            return Err(Error::corrupt(
                format!("GPT partition entry {}", i + 1),
                eoff,
                "entry shorter than 128 bytes",
            ));
        };
        let ty = e.type_guid();
        if ty.is_nil() {
            continue;
        }
        let first = e.starting_lba.get();
        let last = e.ending_lba.get();
        if first > last {
            return Err(Error::corrupt(
                format!("GPT partition entry {}", i + 1),
                eoff,
                format!("first LBA {first} > last LBA {last}"),
            ));
        }
        let start = first.checked_mul(ssz);
        let len = (last - first)
            .checked_add(1)
            .and_then(|n| n.checked_mul(ssz));
        let (Some(start), Some(len)) = (start, len) else {
            return Err(Error::corrupt(
                format!("GPT partition entry {}", i + 1),
                eoff,
                "extent overflows",
            ));
        };
        let attributes = e.attributes.get();
        out.push(Partition {
            number: i as u32 + 1,
            start,
            len,
            kind: PartitionKind::Gpt(ty),
            name: Some(e.name()),
            guid: Some(e.unique_guid()),
            bootable: attributes & gpt::ATTR_LEGACY_BIOS_BOOTABLE != 0,
            attributes,
        });
    }
    Ok(out)
}

/// The partitions of the GPT copy whose header is at `lba` (header and entry-array CRCs
/// verified), `None` when no "EFI PART" header is there: how a check looks at the copy that
/// reading did not use.
///
/// # Errors
/// [`Error::Corrupt`] naming the header or entry array and its offset.
pub fn gpt_copy(dev: &dyn Device, ss: u32, lba: u64) -> Result<Option<Vec<Partition>>> {
    match gpt_header_at(dev, ss, lba)? {
        Some(h) => Ok(Some(gpt_entries(dev, ss, &h)?)),
        None => Ok(None),
    }
}

/// A usable GPT: header, partitions, whether the backup was used, why the primary was not.
pub(super) type GptFound = (GptHeader, Vec<Partition>, bool, Option<Error>);

/// Try the primary header at LBA 1, then the backup (alternate LBA from the primary if it was
/// readable, else the last LBA). Returns the first fully valid header + entries.
pub(super) fn gpt_with_sector(dev: &dyn Device, ss: u32) -> Result<Option<GptFound>> {
    let primary = gpt_header_at(dev, ss, 1);
    let mut primary_err = None;
    let mut alt_hint = None;
    match primary {
        Ok(None) => {}
        Ok(Some(h)) => {
            alt_hint = Some(h.alternate_lba);
            match gpt_entries(dev, ss, &h) {
                Ok(p) => return Ok(Some((h, p, false, None))),
                Err(e) => primary_err = Some(e),
            }
        }
        Err(e) => primary_err = Some(e),
    }
    let last = (dev.len() / u64::from(ss)).checked_sub(1);
    let mut candidates: Vec<u64> = alt_hint
        .into_iter()
        .chain(last)
        .filter(|&l| l > 1)
        .collect();
    candidates.dedup();
    let mut backup_err = None;
    for lba in candidates {
        match gpt_header_at(dev, ss, lba) {
            Ok(Some(h)) => match gpt_entries(dev, ss, &h) {
                Ok(p) => return Ok(Some((h, p, true, primary_err))),
                Err(e) => backup_err = Some(e),
            },
            Ok(None) => {}
            Err(e) => backup_err = Some(e),
        }
    }
    match primary_err.or(backup_err) {
        Some(e) => Err(e),
        None => Ok(None),
    }
}

pub(super) fn read_gpt(dev: &dyn Device, ss: u32, kind: ProtectiveKind) -> Result<PartitionTable> {
    let mut sizes = vec![ss];
    for alt in [512u32, 4096] {
        if !sizes.contains(&alt) {
            sizes.push(alt);
        }
    }
    let mut first_err = None;
    for s in sizes {
        match gpt_with_sector(dev, s) {
            Ok(Some((h, partitions, backup_used, perr))) => {
                let mut warnings = Vec::new();
                if let Some(e) = perr {
                    warnings.push(format!(
                        "primary GPT unusable ({e}); backup header at LBA {} used",
                        h.my_lba
                    ));
                }
                if kind == ProtectiveKind::Hybrid {
                    warnings.push(
                        "hybrid MBR: the GPT is used, the MBR's other entries are ignored".into(),
                    );
                }
                return Ok(PartitionTable {
                    scheme: Scheme::Gpt {
                        disk_guid: h.disk_guid,
                        header_lba: h.my_lba,
                        backup_used,
                        protective_mbr: kind,
                        first_usable_lba: h.first_usable,
                        last_usable_lba: h.last_usable,
                        alternate_lba: h.alternate_lba,
                    },
                    sector_size: s,
                    partitions,
                    warnings,
                });
            }
            Ok(None) => {}
            Err(e) => {
                if first_err.is_none() {
                    first_err = Some(e);
                }
            }
        }
    }
    Err(first_err.unwrap_or_else(|| {
        Error::corrupt(
            "GPT header",
            u64::from(ss),
            "protective MBR (type 0xEE) present but no \"EFI PART\" header at LBA 1 or the last LBA (512- or 4096-byte sectors)",
        )
    }))
}
