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

use uuid::Uuid;

use zerocopy::{FromZeros, IntoBytes};

use crate::layout::mbr::{Mbr, BOOT_ACTIVE, ENTRIES_OFFSET};
use crate::{Device, Error, Result};

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

mod gpt;
mod mbr;
mod slice;

pub use gpt::gpt_copy;
use gpt::read_gpt;
use mbr::{looks_like_boot_sector, read_mbr};
pub use slice::{DeviceIo, Slice};

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
        let mut s0 = Mbr::new_zeroed();
        dev.read_at(0, s0.as_mut_bytes())?;
        if !s0.has_boot_signature() || looks_like_boot_sector(s0.as_bytes()) {
            return Ok(none(ss));
        }
        let entries = &s0.partition_record;
        for (i, e) in entries.iter().enumerate() {
            if e.boot_indicator != 0 && e.boot_indicator != BOOT_ACTIVE {
                return Err(Error::corrupt(
                    format!("MBR partition entry {}", i + 1),
                    (ENTRIES_OFFSET + 16 * i) as u64,
                    format!(
                        "boot indicator 0x{:02x} is neither 0x00 nor 0x80",
                        e.boot_indicator
                    ),
                ));
            }
        }
        let ee = entries.iter().filter(|e| e.os_type == 0xee).count();
        if ee > 0 {
            let others = entries.iter().any(|e| e.os_type != 0xee && e.os_type != 0);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemDevice;

    fn mbr(entries: &[(u8, u8, u32, u32)]) -> Vec<u8> {
        use crate::layout::mbr::BOOT_SIGNATURE;
        use zerocopy::little_endian::U32;
        let mut m = Mbr::new_zeroed();
        m.unique_mbr_disk_signature = U32::new(0x1234_5678);
        for (e, &(boot, kind, lba, count)) in m.partition_record.iter_mut().zip(entries) {
            e.boot_indicator = boot;
            e.os_type = kind;
            e.starting_lba = U32::new(lba);
            e.size_in_lba = U32::new(count);
        }
        m.signature = BOOT_SIGNATURE;
        m.as_bytes().to_vec()
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
