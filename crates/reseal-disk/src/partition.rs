//! Partition tables (MBR with extended/logical partitions, GPT with backup-header fallback) and
//! [`Slice`], the bounded device a partition is handed to a file system as.
//!
//! # Why these parsers are hand-written
//! The `gpt` (4.x) and `mbrman` (0.6) crates were evaluated; both read through `Read + Seek`
//! ([`DeviceIo`] adapts any [`Device`]), and the tests run them on the corpus as a second opinion
//! (they agree wherever they can read a table). They do not fit as the parsers of untrusted
//! images because:
//! - their errors carry no byte offset and do not say which structure failed (e.g. "partition
//!   table CRC mismatch"), while every reseal error names structure and offset;
//! - `gpt` must be told the logical block size: it does not find a 4096-byte-sector GPT on a
//!   device that reports 512-byte sectors (disk images carry no sector size), and it does not
//!   classify the MBR in front of it as protective or hybrid;
//! - `mbrman` needs the sector size too and knows nothing of GPT, so the caller would still have
//!   to decide between the two schemes (and tell a bare file-system boot sector, which also ends
//!   in 0x55AA, from an MBR);
//! - neither reports non-fatal oddities (a broken EBR link, a backup GPT header used) in a
//!   form `inspect` can show.
//!
//! The parsers here use checked arithmetic and bounded reads only and never panic on hostile
//! bytes; a structure that is present but wrong is an [`Error::Corrupt`] naming it and its
//! byte offset on the device.

use std::collections::HashSet;
use std::fmt;
use std::io::{Read, Seek, SeekFrom};

use uuid::Uuid;

use crate::{check_bounds, Device, Error, Result};

/// Most logical partitions followed in one extended partition (EBR chain depth limit).
pub const MAX_LOGICAL: usize = 128;
/// Largest GPT partition-entry array reseal reads, in bytes.
pub const MAX_GPT_ARRAY: u64 = 4 << 20;

/// How the partition table was found.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// A DOS/MBR partition table.
    Mbr {
        /// The 32-bit disk signature at byte 440.
        signature: u32,
    },
    /// A GUID partition table.
    Gpt {
        /// The disk GUID.
        disk_guid: Uuid,
        /// LBA of the header that was used (1 for the primary).
        header_lba: u64,
        /// True when the primary header or entry array was unusable and the backup was used.
        backup_used: bool,
        /// Whether the MBR in sector 0 is purely protective or a hybrid one.
        protective_mbr: ProtectiveKind,
        /// First LBA usable by partitions.
        first_usable_lba: u64,
        /// Last LBA usable by partitions.
        last_usable_lba: u64,
        /// LBA of the other header, as the used header records it.
        alternate_lba: u64,
    },
    /// No partition table: the device is a bare file system or unrecognised.
    None,
}

/// The kind of MBR in sector 0 of a GPT disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtectiveKind {
    /// Only 0xEE entries (the normal case).
    Protective,
    /// 0xEE entries plus other MBR partitions mirroring GPT ones (a hybrid MBR). GPT wins.
    Hybrid,
}

/// The type of a partition: an MBR type byte or a GPT type GUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartitionKind {
    /// MBR system-ID byte.
    Mbr(u8),
    /// GPT partition-type GUID.
    Gpt(Uuid),
}

/// EFI system partition type GUID.
pub const GPT_EFI_SYSTEM: Uuid = Uuid::from_u128(0xc12a7328_f81f_11d2_ba4b_00a0c93ec93b);
/// Microsoft basic data type GUID (NTFS, FAT, exFAT, BitLocker volumes).
pub const GPT_BASIC_DATA: Uuid = Uuid::from_u128(0xebd0a0a2_b9e5_4433_87c0_68b6b72699c7);
/// Microsoft reserved partition type GUID.
pub const GPT_MS_RESERVED: Uuid = Uuid::from_u128(0xe3c9e316_0b5c_4db8_817d_f92df00215ae);
/// Windows recovery environment type GUID.
pub const GPT_WIN_RECOVERY: Uuid = Uuid::from_u128(0xde94bba4_06d1_4d40_a16a_bfd50179d6ac);
/// Linux file system data type GUID.
pub const GPT_LINUX_FS: Uuid = Uuid::from_u128(0x0fc63daf_8483_4772_8e79_3d69d8477de4);

const GPT_NAMES: &[(u128, &str)] = &[
    (0xc12a7328_f81f_11d2_ba4b_00a0c93ec93b, "EFI system"),
    (
        0xebd0a0a2_b9e5_4433_87c0_68b6b72699c7,
        "Microsoft basic data",
    ),
    (0xe3c9e316_0b5c_4db8_817d_f92df00215ae, "Microsoft reserved"),
    (0xde94bba4_06d1_4d40_a16a_bfd50179d6ac, "Windows recovery"),
    (
        0x5808c8aa_7e8f_42e0_85d2_e1e90434cfb3,
        "Microsoft LDM metadata",
    ),
    (0xaf9b60a0_1431_4f62_bc68_3311714a69ad, "Microsoft LDM data"),
    (
        0xe75caf8f_f680_4cee_afa3_b001e56efc2d,
        "Microsoft Storage Spaces",
    ),
    (0x0fc63daf_8483_4772_8e79_3d69d8477de4, "Linux"),
    (0x0657fd6d_a4ab_43c4_84e5_0933c84b4f4f, "Linux swap"),
    (0xe6d6d379_f507_44c2_a23c_238f2a3df928, "Linux LVM"),
    (0xa19d880f_05fc_4d3b_a006_743f0f84911e, "Linux RAID"),
    (
        0x4f68bce3_e8cd_4db1_96e7_fbcaf984b709,
        "Linux root (x86-64)",
    ),
    (0x933ac7e1_2eb4_4f13_b844_0e14e2aef915, "Linux home"),
    (0x21686148_6449_6e6f_744e_656564454649, "BIOS boot"),
    (0x48465300_0000_11aa_aa11_00306543ecac, "Apple HFS+"),
    (0x7c3457ef_0000_11aa_aa11_00306543ecac, "Apple APFS"),
    (0xaa31e02a_400f_11db_9590_000c2911d1b8, "VMware VMFS"),
    (0x9198effc_31c0_11db_8f78_000c2911d1b8, "VMware reserved"),
    (
        0x9d275380_40ad_11db_bf97_000c2911d1b8,
        "VMware kcore crash protection",
    ),
    (0x4eb2ea39_7855_4790_a79e_fae495e21f8d, "VMware ESXi OSDATA"),
    (0x516e7cb4_6ecf_11d6_8ff8_00022d09712b, "FreeBSD data"),
];

fn mbr_type_name(t: u8) -> &'static str {
    match t {
        0x00 => "Empty",
        0x01 => "FAT12",
        0x04 => "FAT16 <32M",
        0x05 => "Extended",
        0x06 => "FAT16",
        0x07 => "NTFS/exFAT",
        0x0b => "FAT32",
        0x0c => "FAT32 (LBA)",
        0x0e => "FAT16 (LBA)",
        0x0f => "Extended (LBA)",
        0x11 => "Hidden FAT12",
        0x12 => "Compaq diagnostics",
        0x14 => "Hidden FAT16 <32M",
        0x16 => "Hidden FAT16",
        0x17 => "Hidden NTFS/exFAT",
        0x1b => "Hidden FAT32",
        0x1c => "Hidden FAT32 (LBA)",
        0x1e => "Hidden FAT16 (LBA)",
        0x27 => "Windows recovery",
        0x42 => "Windows dynamic (LDM)",
        0x82 => "Linux swap",
        0x83 => "Linux",
        0x85 => "Linux extended",
        0x8e => "Linux LVM",
        0xa5 => "FreeBSD",
        0xa6 => "OpenBSD",
        0xa9 => "NetBSD",
        0xaf => "Apple HFS",
        0xee => "GPT protective",
        0xef => "EFI system",
        0xfb => "VMware VMFS",
        0xfd => "Linux RAID",
        _ => "Unknown",
    }
}

fn is_extended(t: u8) -> bool {
    matches!(t, 0x05 | 0x0f | 0x85)
}

impl PartitionKind {
    /// A human name: "Microsoft basic data", "EFI system", "NTFS/exFAT (0x07)", "Extended (0x05)",
    /// or the GUID / type byte when unknown.
    pub fn name(&self) -> String {
        match self {
            PartitionKind::Mbr(t) => format!("{} (0x{t:02x})", mbr_type_name(*t)),
            PartitionKind::Gpt(g) => {
                let v = g.as_u128();
                GPT_NAMES
                    .iter()
                    .find(|(k, _)| *k == v)
                    .map(|(_, n)| (*n).to_string())
                    .unwrap_or_else(|| g.to_string())
            }
        }
    }
    /// True for an MBR extended-partition container (0x05, 0x0F, 0x85).
    pub fn is_extended(&self) -> bool {
        matches!(self, PartitionKind::Mbr(t) if is_extended(*t))
    }
    /// True for types that can hold a Windows data volume (NTFS/FAT/exFAT/BitLocker).
    pub fn may_hold_windows_volume(&self) -> bool {
        match self {
            PartitionKind::Mbr(t) => matches!(
                t,
                0x01 | 0x04 | 0x06 | 0x07 | 0x0b | 0x0c | 0x0e | 0x17 | 0x27
            ),
            PartitionKind::Gpt(g) => {
                *g == GPT_BASIC_DATA || *g == GPT_WIN_RECOVERY || *g == GPT_EFI_SYSTEM
            }
        }
    }
}

impl fmt::Display for PartitionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// One partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    /// 1-based number as Linux numbers it: MBR primaries 1-4 by slot, logicals from 5; GPT by
    /// entry slot.
    pub number: u32,
    /// Start in bytes from the start of the device.
    pub start: u64,
    /// Length in bytes.
    pub len: u64,
    /// Type.
    pub kind: PartitionKind,
    /// GPT partition name (UTF-16, up to the first NUL; invalid units replaced).
    pub name: Option<String>,
    /// GPT unique partition GUID.
    pub guid: Option<Uuid>,
    /// MBR active flag (0x80) or GPT "legacy BIOS bootable" attribute (bit 2).
    pub bootable: bool,
    /// GPT attribute bits; for MBR the boot-indicator byte.
    pub attributes: u64,
}

impl Partition {
    /// End (exclusive) in bytes, saturating.
    pub fn end(&self) -> u64 {
        self.start.saturating_add(self.len)
    }
}

/// A device's partition table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionTable {
    /// Which scheme, with its disk-level facts.
    pub scheme: Scheme,
    /// Logical sector size the table was interpreted with.
    pub sector_size: u32,
    /// Partitions in table order (MBR: primaries incl. the extended container, then logicals).
    pub partitions: Vec<Partition>,
    /// Non-fatal oddities (broken EBR link, backup GPT used, ...), for `inspect`.
    pub warnings: Vec<String>,
}

fn le16(b: &[u8], o: usize) -> u16 {
    b.get(o..o + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .unwrap_or(0)
}
fn le32(b: &[u8], o: usize) -> u32 {
    b.get(o..o + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .unwrap_or(0)
}
fn le64(b: &[u8], o: usize) -> u64 {
    b.get(o..o + 8)
        .map(|s| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_le_bytes(a)
        })
        .unwrap_or(0)
}
fn guid_at(b: &[u8], o: usize) -> Uuid {
    let mut a = [0u8; 16];
    if let Some(s) = b.get(o..o + 16) {
        a.copy_from_slice(s);
    }
    Uuid::from_bytes_le(a)
}

fn read_vec(dev: &dyn Device, offset: u64, len: u64, structure: &str) -> Result<Vec<u8>> {
    let n = usize::try_from(len)
        .map_err(|_| Error::corrupt(structure, offset, "size does not fit in memory"))?;
    if offset.checked_add(len).is_none_or(|end| end > dev.len()) {
        return Err(Error::corrupt(
            structure,
            offset,
            format!(
                "{len} bytes needed but the device is only {} bytes long",
                dev.len()
            ),
        ));
    }
    let mut v = vec![0u8; n];
    dev.read_at(offset, &mut v)?;
    Ok(v)
}

/// True if sector 0 is a file-system boot sector (NTFS, BitLocker, exFAT, FAT) rather than an MBR.
fn looks_like_boot_sector(s: &[u8]) -> bool {
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
struct MbrEntry {
    boot: u8,
    kind: u8,
    lba: u32,
    count: u32,
}

fn mbr_entries(sector: &[u8]) -> [MbrEntry; 4] {
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

impl PartitionTable {
    /// Read the partition table of `dev`.
    ///
    /// Returns [`Scheme::None`] (no partitions) when sector 0 has no 0x55AA signature or is a
    /// file-system boot sector (a bare volume). A GPT is looked for with the device's sector
    /// size and then with the other of 512/4096.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the structure and offset when a table is present but invalid
    /// (bad boot indicator, both GPT headers unusable, ...); I/O errors of the device.
    pub fn read(dev: &dyn Device) -> Result<PartitionTable> {
        let none = |ss| PartitionTable {
            scheme: Scheme::None,
            sector_size: ss,
            partitions: vec![],
            warnings: vec![],
        };
        let ss = match dev.sector_size() {
            s @ (512 | 1024 | 2048 | 4096) => s,
            s => {
                return Err(Error::unsupported(
                    "device",
                    0,
                    format!("logical sector size {s}"),
                ))
            }
        };
        if dev.len() < 512 {
            return Ok(none(ss));
        }
        let mut s0 = [0u8; 512];
        dev.read_at(0, &mut s0)?;
        if s0[510] != 0x55 || s0[511] != 0xaa || looks_like_boot_sector(&s0) {
            return Ok(none(ss));
        }
        let entries = mbr_entries(&s0);
        for (i, e) in entries.iter().enumerate() {
            if e.boot != 0 && e.boot != 0x80 {
                return Err(Error::corrupt(
                    format!("MBR partition entry {}", i + 1),
                    446 + 16 * i as u64,
                    format!("boot indicator 0x{:02x} is neither 0x00 nor 0x80", e.boot),
                ));
            }
        }
        let ee = entries.iter().filter(|e| e.kind == 0xee).count();
        if ee > 0 {
            let others = entries.iter().any(|e| e.kind != 0xee && e.kind != 0);
            let kind = if others {
                ProtectiveKind::Hybrid
            } else {
                ProtectiveKind::Protective
            };
            return read_gpt(dev, ss, kind);
        }
        read_mbr(dev, &s0, ss)
    }

    /// The partitions that can hold a file system (everything except extended containers).
    pub fn volumes(&self) -> impl Iterator<Item = &Partition> {
        self.partitions.iter().filter(|p| !p.kind.is_extended())
    }

    /// The partition with Linux number `n`.
    pub fn get(&self, n: u32) -> Option<&Partition> {
        self.partitions.iter().find(|p| p.number == n)
    }
}

fn read_mbr(dev: &dyn Device, s0: &[u8], ss: u32) -> Result<PartitionTable> {
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

fn read_ebr_chain(
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

struct GptHeader {
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
fn gpt_header_at(dev: &dyn Device, ss: u32, lba: u64) -> Result<Option<GptHeader>> {
    let ssz = u64::from(ss);
    let off = lba
        .checked_mul(ssz)
        .ok_or_else(|| Error::corrupt("GPT header", 0, "LBA overflows"))?;
    if off.checked_add(ssz).is_none_or(|e| e > dev.len()) {
        return Ok(None);
    }
    let s = read_vec(dev, off, ssz, "GPT header")?;
    if s.get(0..8) != Some(b"EFI PART") {
        return Ok(None);
    }
    let c = |r: &str| Error::corrupt("GPT header", off, r.to_string());
    let hsize = le32(&s, 12);
    if !(92..=ss).contains(&hsize) {
        return Err(c(&format!("header size {hsize} outside 92..={ss}")));
    }
    let mut h = s[..hsize as usize].to_vec();
    let want = le32(&h, 16);
    h[16..20].fill(0);
    let got = crc32fast::hash(&h);
    if got != want {
        return Err(c(&format!(
            "header CRC-32 {want:#010x} recorded but {got:#010x} computed"
        )));
    }
    let my_lba = le64(&s, 24);
    if my_lba != lba {
        return Err(c(&format!(
            "header says it is at LBA {my_lba} but was read from LBA {lba}"
        )));
    }
    let entry_size = le32(&s, 84);
    if entry_size < 128 || entry_size % 8 != 0 || entry_size > 4096 {
        return Err(c(&format!("partition entry size {entry_size} invalid")));
    }
    let num_entries = le32(&s, 80);
    if u64::from(num_entries) * u64::from(entry_size) > MAX_GPT_ARRAY {
        return Err(c(&format!(
            "{num_entries} entries of {entry_size} bytes exceed {MAX_GPT_ARRAY} bytes"
        )));
    }
    let first_usable = le64(&s, 40);
    let last_usable = le64(&s, 48);
    if first_usable > last_usable.saturating_add(1) {
        return Err(c(&format!(
            "first usable LBA {first_usable} > last usable LBA {last_usable}"
        )));
    }
    Ok(Some(GptHeader {
        my_lba,
        alternate_lba: le64(&s, 32),
        first_usable,
        last_usable,
        disk_guid: guid_at(&s, 56),
        entries_lba: le64(&s, 72),
        num_entries,
        entry_size,
        entries_crc: le32(&s, 88),
    }))
}

fn gpt_entries(dev: &dyn Device, ss: u32, h: &GptHeader) -> Result<Vec<Partition>> {
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
    for (i, e) in arr.chunks_exact(h.entry_size as usize).enumerate() {
        let ty = guid_at(e, 0);
        if ty.is_nil() {
            continue;
        }
        let eoff = off + i as u64 * u64::from(h.entry_size);
        let first = le64(e, 32);
        let last = le64(e, 40);
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
        let units: Vec<u16> = (0..36)
            .map(|k| le16(e, 56 + 2 * k))
            .take_while(|&u| u != 0)
            .collect();
        let name = String::from_utf16_lossy(&units);
        let attributes = le64(e, 48);
        out.push(Partition {
            number: i as u32 + 1,
            start,
            len,
            kind: PartitionKind::Gpt(ty),
            name: Some(name),
            guid: Some(guid_at(e, 16)),
            bootable: attributes & 4 != 0,
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
type GptFound = (GptHeader, Vec<Partition>, bool, Option<Error>);

/// Try the primary header at LBA 1, then the backup (alternate LBA from the primary if it was
/// readable, else the last LBA). Returns the first fully valid header + entries.
fn gpt_with_sector(dev: &dyn Device, ss: u32) -> Result<Option<GptFound>> {
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

fn read_gpt(dev: &dyn Device, ss: u32, kind: ProtectiveKind) -> Result<PartitionTable> {
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

/// A bounded window `start..start+len` of a device, itself a [`Device`]: how a partition is
/// handed to a file system. Sector size passes through.
#[derive(Debug)]
pub struct Slice<D: Device> {
    inner: D,
    start: u64,
    len: u64,
}

impl<D: Device> Slice<D> {
    /// A window of `len` bytes at `start` of `dev`.
    ///
    /// # Errors
    /// [`Error::OutOfBounds`] when the window does not lie inside `dev`.
    pub fn new(dev: D, start: u64, len: u64) -> Result<Self> {
        match start.checked_add(len) {
            Some(end) if end <= dev.len() => Ok(Slice {
                inner: dev,
                start,
                len,
            }),
            _ => Err(Error::OutOfBounds {
                offset: start,
                len,
                size: dev.len(),
            }),
        }
    }
    /// The window of partition `p`.
    ///
    /// # Errors
    /// As [`Slice::new`]: a partition that extends past the device (e.g. a truncated image).
    pub fn partition(dev: D, p: &Partition) -> Result<Self> {
        Self::new(dev, p.start, p.len)
    }
    /// Offset of the window in the inner device.
    pub fn start(&self) -> u64 {
        self.start
    }
    /// The inner device.
    pub fn inner(&self) -> &D {
        &self.inner
    }
    /// The inner device, mutably (writes through it are not bounded by the slice).
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }
    /// Give back the inner device.
    pub fn into_inner(self) -> D {
        self.inner
    }
}

impl<D: Device> Device for Slice<D> {
    fn len(&self) -> u64 {
        self.len
    }
    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.len)?;
        self.inner.read_at(self.start + offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.len)?;
        self.inner.write_at(self.start + offset, buf)
    }
    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }
    fn savepoint(&mut self) -> bool {
        self.inner.savepoint()
    }
    fn rollback_savepoint(&mut self) -> Result<()> {
        self.inner.rollback_savepoint()
    }
    fn release_savepoint(&mut self) -> Result<()> {
        self.inner.release_savepoint()
    }
}

/// `Read + Seek` (and `Write`) over a [`Device`], with a position: the adapter crates such as
/// `ntfs`, `gpt` and `mbrman` need. Reads past the end return fewer bytes (EOF), not errors.
#[derive(Debug)]
pub struct DeviceIo<D: Device> {
    dev: D,
    pos: u64,
}

impl<D: Device> DeviceIo<D> {
    /// Wrap `dev`, positioned at 0.
    pub fn new(dev: D) -> Self {
        DeviceIo { dev, pos: 0 }
    }
    /// The device.
    pub fn get_ref(&self) -> &D {
        &self.dev
    }
    /// The device, mutably.
    pub fn get_mut(&mut self) -> &mut D {
        &mut self.dev
    }
    /// Give back the device.
    pub fn into_inner(self) -> D {
        self.dev
    }
}

fn to_io(e: Error) -> std::io::Error {
    match e {
        Error::Io { source, .. } => source,
        other => std::io::Error::other(other),
    }
}

impl<D: Device> Read for DeviceIo<D> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.dev.len().saturating_sub(self.pos);
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.dev.read_at(self.pos, &mut buf[..n]).map_err(to_io)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl<D: Device> std::io::Write for DeviceIo<D> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.dev.write_at(self.pos, buf).map_err(to_io)?;
        self.pos += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.dev.flush().map_err(to_io)
    }
}

impl<D: Device> Seek for DeviceIo<D> {
    fn seek(&mut self, pos: SeekFrom) -> std::io::Result<u64> {
        let new = match pos {
            SeekFrom::Start(p) => Some(p),
            SeekFrom::End(d) => self.dev.len().checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        match new {
            Some(p) => {
                self.pos = p;
                Ok(p)
            }
            None => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "seek before the start or overflow",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemDevice;

    fn mbr(entries: &[(u8, u8, u32, u32)]) -> Vec<u8> {
        let mut s = vec![0u8; 512];
        s[440..444].copy_from_slice(&0x1234_5678u32.to_le_bytes());
        for (i, &(boot, kind, lba, count)) in entries.iter().enumerate() {
            let o = 446 + 16 * i;
            s[o] = boot;
            s[o + 4] = kind;
            s[o + 8..o + 12].copy_from_slice(&lba.to_le_bytes());
            s[o + 12..o + 16].copy_from_slice(&count.to_le_bytes());
        }
        s[510] = 0x55;
        s[511] = 0xaa;
        s
    }

    #[test]
    fn mbr_with_looping_ebr_chain_stops() {
        let mut d = vec![0u8; 64 * 512];
        d[..512].copy_from_slice(&mbr(&[(0x80, 0x07, 2, 4), (0, 0x05, 10, 50)]));
        // EBR at 10: logical at +1 len 2, next EBR at ext+0 (itself) -> loop.
        d[10 * 512..11 * 512].copy_from_slice(&mbr(&[(0, 0x83, 1, 2), (0, 0x05, 0, 5)]));
        let t = PartitionTable::read(&MemDevice::new(d)).unwrap();
        assert_eq!(
            t.scheme,
            Scheme::Mbr {
                signature: 0x1234_5678
            }
        );
        let nums: Vec<u32> = t.partitions.iter().map(|p| p.number).collect();
        assert_eq!(nums, [1, 2, 5]);
        assert_eq!(t.partitions[2].start, 11 * 512);
        assert!(t.partitions[0].bootable);
        assert!(
            t.warnings.iter().any(|w| w.contains("loops")),
            "{:?}",
            t.warnings
        );
    }

    #[test]
    fn bad_boot_flag_is_located() {
        let d = mbr(&[(0x12, 0x07, 2, 4)]);
        let e = PartitionTable::read(&MemDevice::new(d)).unwrap_err();
        assert!(matches!(e, Error::Corrupt { offset: 446, .. }), "{e}");
    }

    #[test]
    fn ntfs_boot_sector_is_not_an_mbr() {
        let mut d = vec![0u8; 1024];
        d[3..11].copy_from_slice(b"NTFS    ");
        d[510] = 0x55;
        d[511] = 0xaa;
        assert_eq!(
            PartitionTable::read(&MemDevice::new(d)).unwrap().scheme,
            Scheme::None
        );
    }

    #[test]
    fn slice_bounds() {
        let d = MemDevice::new((0..=255).collect());
        assert!(Slice::new(MemDevice::zeroed(10), 5, 6).is_err());
        let mut s = Slice::new(d, 16, 32).unwrap();
        let mut b = [0u8; 4];
        s.read_at(28, &mut b).unwrap();
        assert_eq!(b, [44, 45, 46, 47]);
        assert!(matches!(
            s.read_at(30, &mut b),
            Err(Error::OutOfBounds { .. })
        ));
        assert!(matches!(
            s.write_at(u64::MAX, &b),
            Err(Error::OutOfBounds { .. })
        ));
        s.write_at(0, &[9]).unwrap();
        assert_eq!(s.into_inner().as_slice()[16], 9);
    }
}
