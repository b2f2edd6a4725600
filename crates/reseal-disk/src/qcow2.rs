//! qcow2 images (versions 2 and 3): on-disk structures and the container.
//!
//! # On-disk facts (all integers big-endian)
//! - Header at offset 0: `QFI\xfb`, version, backing file offset (u64) and size (u32),
//!   cluster_bits, virtual size, crypt_method, l1_size, l1_table_offset, refcount_table_offset,
//!   refcount_table_clusters (u32), nb_snapshots, snapshots_offset (72 bytes in version 2).
//!   Version 3 adds incompatible / compatible / autoclear feature bits (u64 each), refcount_order,
//!   header_length and (when header_length > 104) the compression type byte at 104.
//! - Header extensions follow the header (at header_length; 72 in version 2) up to the end of
//!   cluster 0: u32 type, u32 length, data padded to 8 bytes; type 0 ends the list. Known here:
//!   backing file format name (0xe2792aca) and the feature name table (0x6803f857).
//! - L1 table: `l1_size` u64 entries; bits 9..=55 the offset of an L2 table (0 = none), bit 63
//!   "copied" (refcount exactly 1). An L2 table is one cluster of u64 entries: bit 62 set means a
//!   compressed cluster (host byte offset in the low `62 - (cluster_bits - 8)` bits, then the
//!   number of additional 512-byte sectors); otherwise bits 9..=55 the host cluster (0 =
//!   unallocated: read from the backing file, or zeros), bit 0 (version 3) "reads as zeros",
//!   bit 63 "copied".
//! - Refcount table: u64 offsets of refcount blocks (0 = none); a refcount block is one cluster
//!   of `2^refcount_order`-bit entries (sub-byte widths least significant bits first, wider ones
//!   big-endian), one per host cluster.
//!
//! # What the container does
//! Reads everything above, zlib (raw deflate) and zstd compressed clusters included, with a
//! backing file attached by [`crate::image::Image`] ([`Qcow2::set_parent`]). Writes allocate
//! clusters at the end of the file with eager refcounts (no dirty bit is ever set): a write into
//! an unallocated, zero, compressed or shared cluster writes a whole new cluster (the old content
//! merged in) and releases the old one; missing L2 tables and refcount blocks are allocated and
//! the refcount table moves to a bigger place when it is full. Every write goes through the
//! device the container wraps (the journal). Unknown autoclear bits are cleared on the first
//! write, as the specification asks of a writer that does not maintain them.
//!
//! Refused: encryption, external data files, extended L2 entries, unknown incompatible
//! features, images marked dirty or corrupt, and writes to an image with internal snapshots or
//! persistent dirty bitmaps (reseal would leave them stale). Reads of such images work.

use std::io::Read;
use std::path::{Component, Path, PathBuf};

use zerocopy::big_endian::{U16, U32, U64};
use zerocopy::{FromBytes, FromZeros, IntoBytes};

pub use crate::layout::qcow2::MAGIC;
use crate::layout::qcow2::{
    be_array, be_array_mut, field_offset as at, FeatureNameEntry, HeaderExtension, QcowHeaderV2,
    QcowHeaderV3, COMPRESSION_TYPE_OFFSET,
};
use crate::raw::HostFile;
use crate::{check_bounds, Device, Error, Result};
/// Smallest and largest cluster_bits qemu accepts (512 B to 2 MiB clusters).
pub const MIN_CLUSTER_BITS: u32 = 9;
/// See [`MIN_CLUSTER_BITS`].
pub const MAX_CLUSTER_BITS: u32 = 21;
/// Cap on the L1 table (bytes), as qemu's.
pub const MAX_L1_BYTES: u64 = 32 << 20;
/// Cap on the refcount table (bytes), as qemu's.
pub const MAX_REFTABLE_BYTES: u64 = 8 << 20;
/// Longest backing file name qemu writes.
pub const MAX_BACKING_NAME: u32 = 1023;

/// Incompatible feature bit 0: refcounts may be stale (lazy refcounts, unclean shutdown).
pub const INCOMPAT_DIRTY: u64 = 1 << 0;
/// Incompatible feature bit 1: qemu found the image corrupt.
pub const INCOMPAT_CORRUPT: u64 = 1 << 1;
/// Incompatible feature bit 2: guest data lives in an external data file.
pub const INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// Incompatible feature bit 3: the compression type field is meaningful.
pub const INCOMPAT_COMPRESSION: u64 = 1 << 3;
/// Incompatible feature bit 4: extended L2 entries (subclusters).
pub const INCOMPAT_EXTL2: u64 = 1 << 4;

/// Header extension: backing file format name.
pub const EXT_BACKING_FORMAT: u32 = 0xe279_2aca;
/// Header extension: feature name table.
pub const EXT_FEATURE_NAMES: u32 = 0x6803_f857;

/// Offset bits of L1 entries and standard L2 entries (bits 9..=55).
pub const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
/// L1/L2 entry bit 63: refcount is exactly one.
pub const COPIED: u64 = 1 << 63;
/// L2 entry bit 62: compressed cluster.
pub const COMPRESSED: u64 = 1 << 62;
/// L2 entry bit 0 (version 3): the cluster reads as zeros.
pub const ZERO: u64 = 1;

const S: &str = "qcow2 header";

/// Compression of compressed clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Raw deflate (type 0, the default).
    Zlib,
    /// zstd (type 1).
    Zstd,
}

/// The qcow2 header (versions 2 and 3; version 2 reads as version 3 with no feature bits,
/// refcount_order 4 and a 72-byte header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// 2 or 3.
    pub version: u32,
    /// Offset of the backing file name (0 = none).
    pub backing_file_offset: u64,
    /// Length of the backing file name.
    pub backing_file_size: u32,
    /// log2 of the cluster size.
    pub cluster_bits: u32,
    /// Virtual disk size in bytes.
    pub size: u64,
    /// 0 none, 1 AES, 2 LUKS.
    pub crypt_method: u32,
    /// Entries of the active L1 table.
    pub l1_size: u32,
    /// Offset of the active L1 table.
    pub l1_table_offset: u64,
    /// Offset of the refcount table.
    pub refcount_table_offset: u64,
    /// Clusters of the refcount table.
    pub refcount_table_clusters: u32,
    /// Internal snapshots.
    pub nb_snapshots: u32,
    /// Offset of the snapshot table.
    pub snapshots_offset: u64,
    /// Incompatible feature bits.
    pub incompatible_features: u64,
    /// Compatible feature bits.
    pub compatible_features: u64,
    /// Autoclear feature bits.
    pub autoclear_features: u64,
    /// log2 of the refcount width in bits (0..=6).
    pub refcount_order: u32,
    /// Header length (72 in version 2).
    pub header_length: u32,
    /// Compression type byte (0 zlib, 1 zstd).
    pub compression_type: u8,
}

impl Header {
    /// Parse and check the header from the first bytes of the file (at least 72, up to the
    /// first cluster). `file_len` bounds the tables. Nothing here panics on any input.
    ///
    /// # Errors
    /// [`Error::Corrupt`] naming the field's byte offset; [`Error::Unsupported`] for features
    /// reseal does not handle.
    pub fn parse(raw: &[u8], file_len: u64) -> Result<Header> {
        let Ok((v2, rest)) = QcowHeaderV2::ref_from_prefix(raw) else {
            return Err(Error::corrupt(
                S,
                0,
                format!("file too short for a qcow2 header ({} bytes)", raw.len()),
            ));
        };
        if v2.magic != MAGIC {
            return Err(Error::corrupt(S, 0, "no QFI\\xfb magic"));
        }
        let version = v2.version.get();
        if version == 1 {
            return Err(Error::unsupported(
                S,
                at!(v2, version),
                "qcow version 1 (convert it: qemu-img convert -O qcow2 IN OUT)",
            ));
        }
        if version != 2 && version != 3 {
            return Err(Error::unsupported(
                S,
                at!(v2, version),
                format!("version {version}"),
            ));
        }
        let cluster_bits = v2.cluster_bits.get();
        if !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_bits) {
            return Err(Error::corrupt(
                S,
                at!(v2, cluster_bits),
                format!(
                    "cluster_bits {cluster_bits} outside {MIN_CLUSTER_BITS}..={MAX_CLUSTER_BITS}"
                ),
            ));
        }
        let cs = 1u64 << cluster_bits;
        let mut h = Header {
            version,
            backing_file_offset: v2.backing_file_offset.get(),
            backing_file_size: v2.backing_file_size.get(),
            cluster_bits,
            size: v2.size.get(),
            crypt_method: v2.crypt_method.get(),
            l1_size: v2.l1_size.get(),
            l1_table_offset: v2.l1_table_offset.get(),
            refcount_table_offset: v2.refcount_table_offset.get(),
            refcount_table_clusters: v2.refcount_table_clusters.get(),
            nb_snapshots: v2.nb_snapshots.get(),
            snapshots_offset: v2.snapshots_offset.get(),
            incompatible_features: 0,
            compatible_features: 0,
            autoclear_features: 0,
            refcount_order: 4,
            header_length: size_of::<QcowHeaderV2>() as u32,
            compression_type: 0,
        };
        if version == 3 {
            let Ok((v3, _)) = QcowHeaderV3::ref_from_prefix(rest) else {
                return Err(Error::corrupt(
                    S,
                    0,
                    format!(
                        "file too short for a version 3 header ({} bytes)",
                        raw.len()
                    ),
                ));
            };
            h.incompatible_features = v3.incompatible_features.get();
            h.compatible_features = v3.compatible_features.get();
            h.autoclear_features = v3.autoclear_features.get();
            h.refcount_order = v3.refcount_order.get();
            h.header_length = v3.header_length.get();
            let v3_end = COMPRESSION_TYPE_OFFSET as u32;
            if h.header_length < v3_end || u64::from(h.header_length) > cs {
                return Err(Error::corrupt(
                    S,
                    at!(v3, header_length),
                    format!(
                        "header_length {} outside 104..={cs} (the cluster size)",
                        h.header_length
                    ),
                ));
            }
            if h.header_length > v3_end {
                let Some(&t) = raw.get(COMPRESSION_TYPE_OFFSET) else {
                    return Err(Error::corrupt(
                        S,
                        COMPRESSION_TYPE_OFFSET as u64,
                        "header truncated",
                    ));
                };
                h.compression_type = t;
            }
        }
        if h.crypt_method != 0 {
            return Err(Error::unsupported(
                S,
                at!(v2, crypt_method),
                format!(
                    "encrypted image (crypt_method {}: {}); decrypt it first with qemu-img convert",
                    h.crypt_method,
                    match h.crypt_method {
                        1 => "AES",
                        2 => "LUKS",
                        _ => "unknown",
                    }
                ),
            ));
        }
        if h.refcount_order > 6 {
            return Err(Error::corrupt(
                S,
                at!(v3, refcount_order),
                format!("refcount_order {} above 6", h.refcount_order),
            ));
        }
        match (
            h.compression_type,
            h.incompatible_features & INCOMPAT_COMPRESSION != 0,
        ) {
            (0, _) | (1, true) => {}
            (1, false) => {
                return Err(Error::corrupt(
                    S,
                    COMPRESSION_TYPE_OFFSET as u64,
                    "compression type zstd without the compression-type incompatible bit",
                ))
            }
            (t, _) => {
                return Err(Error::unsupported(
                    S,
                    COMPRESSION_TYPE_OFFSET as u64,
                    format!("compression type {t}"),
                ))
            }
        }
        // Tables: aligned, inside the file, within qemu's caps.
        let l2_entries = cs / 8;
        let per_l1 = cs
            .checked_mul(l2_entries)
            .ok_or_else(|| Error::corrupt(S, at!(v2, cluster_bits), "cluster size overflow"))?;
        let need_l1 = h.size.div_ceil(per_l1);
        if u64::from(h.l1_size) < need_l1 {
            return Err(Error::corrupt(
                S,
                at!(v2, l1_size),
                format!(
                    "l1_size {} too small for a virtual size of {} bytes (needs {need_l1})",
                    h.l1_size, h.size
                ),
            ));
        }
        if u64::from(h.l1_size) * 8 > MAX_L1_BYTES {
            return Err(Error::unsupported(
                S,
                at!(v2, l1_size),
                format!(
                    "l1_size {} above the cap of {} entries",
                    h.l1_size,
                    MAX_L1_BYTES / 8
                ),
            ));
        }
        check_table(
            "L1 table",
            at!(v2, l1_table_offset),
            h.l1_table_offset,
            u64::from(h.l1_size) * 8,
            cs,
            file_len,
        )?;
        let rt_bytes = u64::from(h.refcount_table_clusters) * cs;
        if h.refcount_table_clusters == 0 || rt_bytes > MAX_REFTABLE_BYTES {
            return Err(Error::corrupt(
                S,
                at!(v2, refcount_table_clusters),
                format!(
                    "refcount_table_clusters {} (must be 1..={})",
                    h.refcount_table_clusters,
                    MAX_REFTABLE_BYTES / cs
                ),
            ));
        }
        check_table(
            "refcount table",
            at!(v2, refcount_table_offset),
            h.refcount_table_offset,
            rt_bytes,
            cs,
            file_len,
        )?;
        if h.backing_file_offset != 0 {
            if h.backing_file_size == 0 || h.backing_file_size > MAX_BACKING_NAME {
                return Err(Error::corrupt(
                    S,
                    at!(v2, backing_file_size),
                    format!(
                        "backing_file_size {} (must be 1..={MAX_BACKING_NAME})",
                        h.backing_file_size
                    ),
                ));
            }
            let end = h
                .backing_file_offset
                .checked_add(u64::from(h.backing_file_size));
            if end.is_none_or(|e| e > cs) || h.backing_file_offset < u64::from(h.header_length) {
                return Err(Error::corrupt(
                    S,
                    at!(v2, backing_file_offset),
                    format!(
                        "backing file name at {:#x} ({} bytes) is not inside the first cluster after the header",
                        h.backing_file_offset, h.backing_file_size
                    ),
                ));
            }
        }
        Ok(h)
    }

    /// Cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        1 << self.cluster_bits
    }

    /// Compression of compressed clusters.
    pub fn compression(&self) -> Compression {
        if self.compression_type == 1 {
            Compression::Zstd
        } else {
            Compression::Zlib
        }
    }

    /// The header bytes (header_length bytes: 72 for version 2, 104 or more for version 3).
    pub fn encode(&self) -> Vec<u8> {
        let len = if self.version == 2 {
            size_of::<QcowHeaderV2>()
        } else {
            (self.header_length as usize).max(COMPRESSION_TYPE_OFFSET)
        };
        let v2 = QcowHeaderV2 {
            magic: MAGIC,
            version: U32::new(self.version),
            backing_file_offset: U64::new(self.backing_file_offset),
            backing_file_size: U32::new(self.backing_file_size),
            cluster_bits: U32::new(self.cluster_bits),
            size: U64::new(self.size),
            crypt_method: U32::new(self.crypt_method),
            l1_size: U32::new(self.l1_size),
            l1_table_offset: U64::new(self.l1_table_offset),
            refcount_table_offset: U64::new(self.refcount_table_offset),
            refcount_table_clusters: U32::new(self.refcount_table_clusters),
            nb_snapshots: U32::new(self.nb_snapshots),
            snapshots_offset: U64::new(self.snapshots_offset),
        };
        let mut b = v2.as_bytes().to_vec();
        if self.version >= 3 {
            let v3 = QcowHeaderV3 {
                incompatible_features: U64::new(self.incompatible_features),
                compatible_features: U64::new(self.compatible_features),
                autoclear_features: U64::new(self.autoclear_features),
                refcount_order: U32::new(self.refcount_order),
                header_length: U32::new(len as u32),
            };
            b.extend_from_slice(v3.as_bytes());
            if len > COMPRESSION_TYPE_OFFSET {
                b.push(self.compression_type);
            }
        }
        b.resize(len, 0);
        b
    }
}

fn check_table(
    what: &str,
    field: u64,
    offset: u64,
    bytes: u64,
    cs: u64,
    file_len: u64,
) -> Result<()> {
    if offset == 0 && bytes == 0 {
        return Ok(());
    }
    if offset % cs != 0 || offset == 0 {
        return Err(Error::corrupt(
            S,
            field,
            format!("{what} offset {offset:#x} is not a non-zero multiple of the cluster size"),
        ));
    }
    if offset.checked_add(bytes).is_none_or(|e| e > file_len) {
        return Err(Error::corrupt(
            S,
            field,
            format!(
                "{what} at {offset:#x} ({bytes} bytes) extends past the end of the file ({file_len} bytes)"
            ),
        ));
    }
    Ok(())
}

/// One header extension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// Type code.
    pub kind: u32,
    /// Byte offset of the extension in the file.
    pub offset: u64,
    /// Data (without padding).
    pub data: Vec<u8>,
}

/// Parse the header extensions in `cluster0` (the first cluster, or the file if shorter),
/// from `start` up to `end`.
///
/// # Errors
/// [`Error::Corrupt`] for an extension that runs past `end`.
pub fn parse_extensions(cluster0: &[u8], start: usize, end: usize) -> Result<Vec<Extension>> {
    let end = end.min(cluster0.len());
    let mut out = Vec::new();
    let mut at = start;
    let hl = size_of::<HeaderExtension>();
    while at + hl <= end {
        let Ok((x, _)) = HeaderExtension::ref_from_prefix(&cluster0[at..end]) else {
            break;
        };
        let kind = x.ext_type.get();
        let len = x.length.get() as usize;
        if kind == 0 {
            break;
        }
        let data_end = (at + hl).checked_add(len).filter(|&e| e <= end);
        let Some(data_end) = data_end else {
            return Err(Error::corrupt(
                "qcow2 header extension",
                at as u64,
                format!("type {kind:#x} of {len} bytes runs past byte {end}"),
            ));
        };
        out.push(Extension {
            kind,
            offset: at as u64,
            data: cluster0[at + hl..data_end].to_vec(),
        });
        at = (at + hl + len.div_ceil(8) * 8).min(end.max(at + hl));
    }
    Ok(out)
}

/// A decoded L2 entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L2Entry {
    /// Not allocated: the backing file's bytes, or zeros.
    Unallocated,
    /// Reads as zeros (version 3); `host` is a preallocated cluster, if any.
    Zero {
        /// Preallocated host cluster.
        host: Option<u64>,
    },
    /// Data at a host cluster.
    Normal {
        /// Host offset (cluster-aligned).
        host: u64,
        /// Refcount is exactly one.
        copied: bool,
    },
    /// A compressed cluster.
    Compressed {
        /// Host byte offset of the compressed data.
        offset: u64,
        /// Additional 512-byte sectors (the data ends at the end of sector
        /// `offset / 512 + sectors`).
        sectors: u64,
    },
}

impl L2Entry {
    /// Decode a raw entry; `at` is its byte offset in the file (for errors).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for reserved bits, a misaligned offset, or the zero flag in version 2.
    pub fn decode(raw: u64, cluster_bits: u32, version: u32, at: u64) -> Result<L2Entry> {
        let st = "qcow2 L2 entry";
        if raw & COMPRESSED != 0 {
            let shift = 62 - (cluster_bits - 8);
            let offset = raw & ((1u64 << shift) - 1);
            let sectors = (raw >> shift) & ((1u64 << (cluster_bits - 8)) - 1);
            if raw & COPIED != 0 {
                return Err(Error::corrupt(
                    st,
                    at,
                    format!("compressed entry {raw:#018x} has the copied flag"),
                ));
            }
            return Ok(L2Entry::Compressed { offset, sectors });
        }
        let reserved = raw & !(OFFSET_MASK | COPIED | ZERO);
        if reserved != 0 {
            return Err(Error::corrupt(
                st,
                at,
                format!("entry {raw:#018x} has reserved bits set"),
            ));
        }
        let host = raw & OFFSET_MASK;
        if host % (1u64 << cluster_bits) != 0 {
            return Err(Error::corrupt(
                st,
                at,
                format!("host offset {host:#x} is not cluster-aligned"),
            ));
        }
        if raw & ZERO != 0 {
            if version < 3 {
                return Err(Error::corrupt(
                    st,
                    at,
                    "zero flag (bit 0) in a version 2 image",
                ));
            }
            return Ok(L2Entry::Zero {
                host: (host != 0).then_some(host),
            });
        }
        if host == 0 {
            return Ok(L2Entry::Unallocated);
        }
        Ok(L2Entry::Normal {
            host,
            copied: raw & COPIED != 0,
        })
    }
}

/// Decode an L1 entry: the L2 table offset and the copied flag, or `None` if unallocated.
///
/// # Errors
/// [`Error::Corrupt`] for reserved bits or a misaligned offset.
pub fn decode_l1(raw: u64, cluster_bits: u32, at: u64) -> Result<Option<(u64, bool)>> {
    let st = "qcow2 L1 entry";
    if raw & !(OFFSET_MASK | COPIED) != 0 {
        return Err(Error::corrupt(
            st,
            at,
            format!("entry {raw:#018x} has reserved bits set"),
        ));
    }
    let off = raw & OFFSET_MASK;
    if off == 0 {
        return Ok(None);
    }
    if off % (1u64 << cluster_bits) != 0 {
        return Err(Error::corrupt(
            st,
            at,
            format!("L2 table offset {off:#x} is not cluster-aligned"),
        ));
    }
    Ok(Some((off, raw & COPIED != 0)))
}

/// Read refcount `index` of a refcount block with `2^order`-bit entries.
pub fn refcount_get(block: &[u8], index: usize, order: u32) -> u64 {
    match order {
        0..=2 => {
            let bits = 1usize << order;
            let per = 8 / bits;
            let byte = block[index / per];
            u64::from((byte >> ((index % per) * bits)) & ((1u16 << bits) - 1) as u8)
        }
        3 => u64::from(block[index]),
        4 => u64::from(be_array::<U16>(block)[index].get()),
        5 => u64::from(be_array::<U32>(block)[index].get()),
        _ => be_array::<U64>(block)[index].get(),
    }
}

/// Write refcount `index` of a refcount block; returns the byte range changed.
pub fn refcount_set(block: &mut [u8], index: usize, order: u32, value: u64) -> (usize, usize) {
    match order {
        0..=2 => {
            let bits = 1usize << order;
            let per = 8 / bits;
            let mask = ((1u16 << bits) - 1) as u8;
            let shift = (index % per) * bits;
            let b = &mut block[index / per];
            *b = (*b & !(mask << shift)) | (((value as u8) & mask) << shift);
            (index / per, 1)
        }
        3 => {
            block[index] = value as u8;
            (index, 1)
        }
        4 => {
            be_array_mut::<U16>(block)[index] = U16::new(value as u16);
            (2 * index, 2)
        }
        5 => {
            be_array_mut::<U32>(block)[index] = U32::new(value as u32);
            (4 * index, 4)
        }
        _ => {
            be_array_mut::<U64>(block)[index] = U64::new(value);
            (8 * index, 8)
        }
    }
}

/// What the header says about the backing file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backing {
    /// The backing file name as stored (relative to the image's folder, or absolute).
    pub name: String,
    /// The backing format from the header extension (`qcow2`, `raw`, …), if given.
    pub format: Option<String>,
}

impl Backing {
    /// The path of the backing file of the image at `image`: absolute names as they are,
    /// relative names relative to the image's folder (qemu's rule).
    pub fn resolve(&self, image: &Path) -> PathBuf {
        let p = Path::new(&self.name);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            image
                .parent()
                .map(|d| d.join(p))
                .unwrap_or_else(|| p.to_path_buf())
        }
    }
}

/// A qcow2 image over a device (the image file, through the journal).
pub struct Qcow2<D: Device> {
    inner: D,
    header: Header,
    cs: u64,
    l1: Vec<u64>,
    reftable: Vec<u64>,
    next_free: u64,
    backing: Option<Backing>,
    parent: Option<Box<dyn Device>>,
    header_updated: bool,
    /// Recently decompressed clusters, by host offset of their compressed data (never written
    /// in place: a write moves the cluster, and freed space is not reused), newest last.
    inflated: std::sync::Mutex<Vec<(u64, std::sync::Arc<Vec<u8>>)>>,
    /// The in-memory metadata at each open savepoint, outermost first (see [`Qcow2State`]).
    savepoints: crate::device::SavedStates<Qcow2State>,
}

/// What a [`Qcow2`] keeps in memory of metadata it writes through to the image file (L2 tables
/// and refcount blocks are read from the file each time): a rollback of the file's device takes
/// those writes back, and this puts the copy back with them.
#[derive(Debug, Clone)]
struct Qcow2State {
    header: Header,
    l1: Vec<u64>,
    reftable: Vec<u64>,
    next_free: u64,
    header_updated: bool,
}

/// Bytes of decompressed clusters kept (at least 4 clusters).
const INFLATED_CACHE_BYTES: u64 = 8 << 20;

impl<D: Device> std::fmt::Debug for Qcow2<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Qcow2")
            .field("header", &self.header)
            .field("backing", &self.backing)
            .field("has_parent", &self.parent.is_some())
            .finish()
    }
}

/// True if the device starts with the qcow magic (any version).
pub fn detect(dev: &dyn Device) -> bool {
    let mut m = [0u8; 4];
    dev.len() >= 4 && dev.read_at(0, &mut m).is_ok() && m == MAGIC
}

fn read_be64s(dev: &dyn Device, at: u64, n: usize, what: &str) -> Result<Vec<u64>> {
    // The byte size must fit in usize before the table is allocated.
    n.checked_mul(8)
        .ok_or_else(|| Error::corrupt(what, at, "table too large"))?;
    let mut b = vec![U64::ZERO; n];
    dev.read_at(at, b.as_mut_bytes()).map_err(|e| match e {
        Error::OutOfBounds { .. } => Error::corrupt(what, at, "extends past the end of the file"),
        e => e,
    })?;
    Ok(b.iter().map(|v| v.get()).collect())
}

impl<D: Device> Qcow2<D> {
    /// Open the qcow2 image on `inner`; `name` (the file) is used in messages.
    ///
    /// # Errors
    /// [`Error::Corrupt`] / [`Error::Unsupported`] naming the structure and byte offset; I/O.
    pub fn open(inner: D, name: &Path) -> Result<Self> {
        let file_len = inner.len();
        let mut first = vec![0u8; file_len.min(1 << MAX_CLUSTER_BITS) as usize];
        inner.read_at(0, &mut first)?;
        let header = Header::parse(&first, file_len)?;
        let cs = header.cluster_size();
        first.truncate(cs.min(file_len) as usize);
        let ext_end = if header.backing_file_offset != 0 {
            header.backing_file_offset as usize
        } else {
            cs as usize
        };
        let exts = parse_extensions(&first, header.header_length as usize, ext_end)?;
        let feature_name = |kind: u8, bit: u32| -> Option<String> {
            let t = exts.iter().find(|e| e.kind == EXT_FEATURE_NAMES)?;
            t.data.chunks_exact(48).find_map(|c| {
                (c[0] == kind && u32::from(c[1]) == bit).then(|| {
                    String::from_utf8_lossy(&c[2..])
                        .trim_end_matches('\0')
                        .to_string()
                })
            })
        };
        let inc = header.incompatible_features;
        if inc & INCOMPAT_DIRTY != 0 {
            return Err(Error::unsupported(
                S,
                72,
                format!(
                    "the image is marked dirty (incompatible bit 0: lazy refcounts not written back after an unclean shutdown); repair it first: qemu-img check -r all {}",
                    name.display()
                ),
            ));
        }
        if inc & INCOMPAT_CORRUPT != 0 {
            return Err(Error::unsupported(
                S,
                72,
                format!(
                    "the image is marked corrupt (incompatible bit 1: qemu found inconsistent metadata); check and repair it with qemu-img check -r all {}",
                    name.display()
                ),
            ));
        }
        if inc & INCOMPAT_DATA_FILE != 0 {
            return Err(Error::unsupported(
                S,
                72,
                "external data file (incompatible bit 2)",
            ));
        }
        if inc & INCOMPAT_EXTL2 != 0 {
            return Err(Error::unsupported(
                S,
                72,
                "extended L2 entries / subclusters (incompatible bit 4)",
            ));
        }
        let unknown = inc & !(INCOMPAT_COMPRESSION);
        if unknown != 0 {
            let bits: Vec<String> = (0..64)
                .filter(|b| unknown & (1u64 << b) != 0)
                .map(|b| match feature_name(0, b) {
                    Some(n) => format!("bit {b} ({n})"),
                    None => format!("bit {b}"),
                })
                .collect();
            return Err(Error::unsupported(
                S,
                72,
                format!("unknown incompatible features: {}", bits.join(", ")),
            ));
        }
        let backing = if header.backing_file_offset != 0 {
            let at = header.backing_file_offset as usize;
            let raw = first
                .get(at..at + header.backing_file_size as usize)
                .ok_or_else(|| {
                    Error::corrupt(S, 8, "backing file name past the end of the file")
                })?;
            let name = String::from_utf8(raw.to_vec()).map_err(|_| {
                Error::corrupt("qcow2 backing file name", at as u64, "not valid UTF-8")
            })?;
            let format = exts.iter().find(|e| e.kind == EXT_BACKING_FORMAT).map(|e| {
                String::from_utf8_lossy(&e.data)
                    .trim_end_matches('\0')
                    .to_string()
            });
            Some(Backing { name, format })
        } else {
            None
        };
        let l1 = read_be64s(
            &inner,
            header.l1_table_offset,
            header.l1_size as usize,
            "qcow2 L1 table",
        )?;
        for (i, &e) in l1.iter().enumerate() {
            let at = header.l1_table_offset + 8 * i as u64;
            if let Some((off, _)) = decode_l1(e, header.cluster_bits, at)? {
                if off.checked_add(cs).is_none_or(|end| end > file_len) {
                    return Err(Error::corrupt(
                        "qcow2 L1 entry",
                        at,
                        format!("L2 table at {off:#x} is past the end of the file"),
                    ));
                }
            }
        }
        let rt_entries = (u64::from(header.refcount_table_clusters) * cs / 8) as usize;
        let reftable = read_be64s(
            &inner,
            header.refcount_table_offset,
            rt_entries,
            "qcow2 refcount table",
        )?;
        for (i, &e) in reftable.iter().enumerate() {
            let at = header.refcount_table_offset + 8 * i as u64;
            if e & !OFFSET_MASK != 0 || e % cs != 0 {
                return Err(Error::corrupt(
                    "qcow2 refcount table entry",
                    at,
                    format!("entry {e:#018x} is not a cluster-aligned offset"),
                ));
            }
            if e != 0 && e.checked_add(cs).is_none_or(|end| end > file_len) {
                return Err(Error::corrupt(
                    "qcow2 refcount table entry",
                    at,
                    format!("refcount block at {e:#x} is past the end of the file"),
                ));
            }
        }
        let next_free = file_len.div_ceil(cs) * cs;
        Ok(Qcow2 {
            inner,
            header,
            cs,
            l1,
            reftable,
            next_free,
            backing,
            parent: None,
            header_updated: false,
            inflated: std::sync::Mutex::new(Vec::new()),
            savepoints: Default::default(),
        })
    }

    /// `qemu-img check` without repair: count the references the header, the L1 table, the
    /// refcount structures, the L2 tables and the data make to every host cluster, and compare
    /// them with the stored reference counts. A stored count below the references is
    /// corruption (a cluster could be reused while in use); above, with no reference, a leaked
    /// cluster. With internal snapshots or persistent bitmaps (tables this check does not walk)
    /// only counts that are too low are reported. Returns the clusters compared and the
    /// problems. Read-only.
    pub fn check(&self) -> (u64, Vec<crate::check::Problem>) {
        use crate::check::{Problem, Severity};
        let h = &self.header;
        let cs = self.cs;
        let file_len = self.inner.len();
        let mut problems: Vec<Problem> = Vec::new();
        let push = |problems: &mut Vec<Problem>, sev, st: &str, off: Option<u64>, m: String| {
            if problems.len() < 1000 {
                problems.push(Problem {
                    severity: sev,
                    structure: st.to_string(),
                    offset: off,
                    message: m,
                });
            }
        };
        let n_clusters = file_len.div_ceil(cs) as usize;
        let mut refs: Vec<u32> = vec![0; n_clusters];
        let mut beyond: u64 = 0;
        let mut add = |problems: &mut Vec<Problem>, off: u64, len: u64, what: &str, at: u64| {
            let first = off / cs;
            let last = (off + len.max(1) - 1) / cs;
            for c in first..=last {
                match refs.get_mut(c as usize) {
                    Some(r) => *r = r.saturating_add(1),
                    None => {
                        beyond += 1;
                        if beyond <= 20 {
                            push(
                                problems,
                                Severity::Error,
                                what,
                                Some(at),
                                format!("refers to cluster at {:#x}, past the end of the {file_len}-byte file", c * cs),
                            );
                        }
                    }
                }
            }
        };
        add(&mut problems, 0, cs, "qcow2 header", 0);
        add(
            &mut problems,
            h.l1_table_offset,
            u64::from(h.l1_size) * 8,
            "qcow2 L1 table",
            h.l1_table_offset,
        );
        add(
            &mut problems,
            h.refcount_table_offset,
            u64::from(h.refcount_table_clusters) * cs,
            "qcow2 refcount table",
            h.refcount_table_offset,
        );
        for (i, &rb) in self.reftable.iter().enumerate() {
            if rb != 0 {
                add(
                    &mut problems,
                    rb,
                    cs,
                    "qcow2 refcount table entry",
                    h.refcount_table_offset + 8 * i as u64,
                );
            }
        }
        if h.nb_snapshots > 0 {
            let at = h.snapshots_offset;
            // Only the table's first cluster: its length needs the entries parsed.
            add(&mut problems, at, cs, "qcow2 snapshot table", 40);
        }
        let mut l2 = vec![0u8; cs as usize];
        for (i, &e) in self.l1.iter().enumerate() {
            let at = h.l1_table_offset + 8 * i as u64;
            let Ok(Some((off, _))) = decode_l1(e, h.cluster_bits, at) else {
                continue;
            };
            add(&mut problems, off, cs, "qcow2 L1 entry", at);
            if let Err(e) = self.inner.read_at(off, &mut l2) {
                push(
                    &mut problems,
                    Severity::Error,
                    "qcow2 L2 table",
                    Some(off),
                    format!("unreadable: {e}"),
                );
                continue;
            }
            for (j, raw) in be_array::<U64>(&l2).iter().map(|c| c.get()).enumerate() {
                let eat = off + 8 * j as u64;
                match L2Entry::decode(raw, h.cluster_bits, h.version, eat) {
                    Ok(L2Entry::Normal { host, .. }) | Ok(L2Entry::Zero { host: Some(host) }) => {
                        add(&mut problems, host, cs, "qcow2 L2 entry", eat)
                    }
                    Ok(L2Entry::Compressed { offset, sectors }) => {
                        let end = (offset / 512 + sectors + 1) * 512;
                        add(&mut problems, offset, end - offset, "qcow2 L2 entry", eat)
                    }
                    Ok(_) => {}
                    Err(e) => problems.push(Problem::from_error(&e, Severity::Error)),
                }
            }
        }
        if beyond > 20 {
            push(
                &mut problems,
                Severity::Error,
                "qcow2 tables",
                None,
                format!("{beyond} references past the end of the file in all"),
            );
        }
        let walked_all = h.nb_snapshots == 0 && h.autoclear_features & 1 == 0;
        let order = h.refcount_order;
        let per_block = ((cs * 8) >> order) as usize;
        let mut block = vec![0u8; cs as usize];
        let (mut errors, mut leaks, mut checked) = (0u64, 0u64, 0u64);
        let mut covered = 0usize;
        for (i, &rb) in self.reftable.iter().enumerate() {
            let base = i * per_block;
            if base >= n_clusters.max(1) && rb == 0 {
                break;
            }
            let have_block = rb != 0 && self.inner.read_at(rb, &mut block).is_ok();
            for k in 0..per_block {
                let c = base + k;
                let want = u64::from(refs.get(c).copied().unwrap_or(0));
                let stored = if have_block {
                    refcount_get(&block, k, order)
                } else {
                    0
                };
                if c < n_clusters {
                    checked += 1;
                }
                if stored < want {
                    errors += 1;
                    if errors <= 20 {
                        push(
                            &mut problems,
                            Severity::Error,
                            "qcow2 refcount block",
                            Some(if rb != 0 {
                                rb
                            } else {
                                h.refcount_table_offset + 8 * i as u64
                            }),
                            format!(
                                "cluster at {:#x} has refcount {stored} but {want} references",
                                c as u64 * cs
                            ),
                        );
                    }
                } else if walked_all && stored > want && c < n_clusters {
                    leaks += 1;
                    if leaks <= 20 {
                        push(
                            &mut problems,
                            Severity::Leak,
                            "qcow2 refcount block",
                            Some(rb),
                            format!(
                                "leaked cluster at {:#x}: refcount {stored}, {want} references",
                                c as u64 * cs
                            ),
                        );
                    }
                }
            }
            covered = base + per_block;
        }
        for (c, &r) in refs.iter().enumerate().take(n_clusters).skip(covered) {
            if r > 0 {
                errors += 1;
                if errors <= 20 {
                    push(
                        &mut problems,
                        Severity::Error,
                        "qcow2 refcount table",
                        Some(h.refcount_table_offset),
                        format!(
                            "cluster at {:#x} is in use but has no refcount block",
                            c as u64 * cs
                        ),
                    );
                }
            }
        }
        if errors > 20 {
            push(
                &mut problems,
                Severity::Error,
                "qcow2 refcount block",
                None,
                format!("{errors} clusters with too low a refcount in all"),
            );
        }
        if leaks > 20 {
            push(
                &mut problems,
                Severity::Leak,
                "qcow2 refcount block",
                None,
                format!("{leaks} leaked clusters in all"),
            );
        }
        (checked, problems)
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }
    /// The backing file the header names.
    pub fn backing(&self) -> Option<&Backing> {
        self.backing.as_ref()
    }
    /// Attach the backing file (its virtual disk).
    pub fn set_parent(&mut self, parent: Box<dyn Device>) {
        self.parent = Some(parent);
    }
    /// Cluster size.
    pub fn cluster_size(&self) -> u64 {
        self.cs
    }
    /// The device the image is stored on.
    pub fn inner(&self) -> &D {
        &self.inner
    }
    /// The device the image is stored on, mutably.
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }
    /// Unwrap.
    pub fn into_inner(self) -> D {
        self.inner
    }

    fn l2_entries(&self) -> u64 {
        self.cs / 8
    }

    /// L2 table offset for L1 index `i` (None if unallocated) and its copied flag.
    fn l2_table(&self, i: u64) -> Result<Option<(u64, bool)>> {
        let at = self.header.l1_table_offset + 8 * i;
        let raw = *self
            .l1
            .get(i as usize)
            .ok_or_else(|| Error::corrupt("qcow2 L1 table", at, "index past l1_size"))?;
        decode_l1(raw, self.header.cluster_bits, at)
    }

    /// Raw L2 entries `first..first+n` of virtual clusters (all in one L2 table), with the file
    /// offset of each (0 when the table is unallocated).
    fn l2_run(&self, vcluster: u64, n: u64) -> Result<Vec<(u64, u64)>> {
        let per = self.l2_entries();
        let l1i = vcluster / per;
        let l2i = vcluster % per;
        match self.l2_table(l1i)? {
            None => Ok(vec![(0, 0); n as usize]),
            Some((t, _)) => {
                let at = t + 8 * l2i;
                let v = read_be64s(&self.inner, at, n as usize, "qcow2 L2 table")?;
                Ok(v.into_iter()
                    .enumerate()
                    .map(|(k, e)| (e, at + 8 * k as u64))
                    .collect())
            }
        }
    }

    fn parent_read(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        match &self.parent {
            None if self.backing.is_some() => Err(Error::unsupported(
                "qcow2 backing file",
                offset,
                "the backing file is not attached",
            )),
            None => {
                buf.fill(0);
                Ok(())
            }
            Some(p) => {
                let plen = p.len();
                let n = plen.saturating_sub(offset).min(buf.len() as u64) as usize;
                if n > 0 {
                    p.read_at(offset, &mut buf[..n])?;
                }
                buf[n..].fill(0);
                Ok(())
            }
        }
    }

    /// The decompressed cluster whose compressed data is at `offset`, from the cache or
    /// decompressed now.
    fn inflated(&self, offset: u64, sectors: u64, at: u64) -> Result<std::sync::Arc<Vec<u8>>> {
        let cached = |c: &Vec<(u64, std::sync::Arc<Vec<u8>>)>| {
            c.iter().find(|(o, _)| *o == offset).map(|(_, v)| v.clone())
        };
        if let Some(v) = self.inflated.lock().ok().and_then(|c| cached(&c)) {
            return Ok(v);
        }
        let mut out = vec![0u8; self.cs as usize];
        self.decompress(offset, sectors, at, &mut out)?;
        let v = std::sync::Arc::new(out);
        if let Ok(mut c) = self.inflated.lock() {
            let keep = (INFLATED_CACHE_BYTES / self.cs).max(4) as usize;
            if c.len() >= keep {
                c.remove(0);
            }
            c.push((offset, v.clone()));
        }
        Ok(v)
    }

    /// Decompress the compressed cluster into `out` (one cluster).
    fn read_compressed(&self, offset: u64, sectors: u64, at: u64, out: &mut [u8]) -> Result<()> {
        let v = self.inflated(offset, sectors, at)?;
        out.copy_from_slice(&v);
        Ok(())
    }

    fn decompress(&self, offset: u64, sectors: u64, at: u64, out: &mut [u8]) -> Result<()> {
        let st = "qcow2 compressed cluster";
        let nbytes = (sectors + 1) * 512 - (offset & 511);
        let flen = self.inner.len();
        if offset >= flen {
            return Err(Error::corrupt(
                st,
                at,
                format!("data at {offset:#x} is past the end of the file"),
            ));
        }
        let nbytes = nbytes.min(flen - offset);
        let mut src = vec![0u8; nbytes as usize];
        self.inner.read_at(offset, &mut src)?;
        match self.header.compression() {
            Compression::Zlib => {
                let mut d = flate2::Decompress::new(false);
                match d.decompress(&src, out, flate2::FlushDecompress::Finish) {
                    Ok(_) if d.total_out() == out.len() as u64 => Ok(()),
                    Ok(_) => Err(Error::corrupt(
                        st,
                        at,
                        format!(
                            "deflate data at {offset:#x} gave {} bytes, not a cluster",
                            d.total_out()
                        ),
                    )),
                    Err(e) => Err(Error::corrupt(
                        st,
                        at,
                        format!("deflate data at {offset:#x}: {e}"),
                    )),
                }
            }
            Compression::Zstd => {
                let r = zstd::stream::read::Decoder::with_buffer(&src[..])
                    .map(|d| d.single_frame())
                    .and_then(|mut d| d.read_exact(out));
                r.map_err(|e| Error::corrupt(st, at, format!("zstd data at {offset:#x}: {e}")))
            }
        }
    }

    /// Content of virtual cluster `vc` (whole cluster) given its decoded entry.
    fn cluster_content(&self, vc: u64, e: L2Entry, at: u64, out: &mut [u8]) -> Result<()> {
        match e {
            L2Entry::Unallocated => self.parent_read(vc * self.cs, out),
            L2Entry::Zero { .. } => {
                out.fill(0);
                Ok(())
            }
            L2Entry::Normal { host, .. } => self.read_host(host, out, at),
            L2Entry::Compressed { offset, sectors } => {
                self.read_compressed(offset, sectors, at, out)
            }
        }
    }

    fn read_host(&self, host: u64, out: &mut [u8], at: u64) -> Result<()> {
        if host
            .checked_add(out.len() as u64)
            .is_none_or(|e| e > self.inner.len())
        {
            // qemu may leave the last data cluster short of the end of the file: zero-fill.
            if host >= self.inner.len() {
                return Err(Error::corrupt(
                    "qcow2 L2 entry",
                    at,
                    format!("data cluster at {host:#x} is past the end of the file"),
                ));
            }
            let n = (self.inner.len() - host) as usize;
            self.inner.read_at(host, &mut out[..n])?;
            out[n..].fill(0);
            return Ok(());
        }
        self.inner.read_at(host, out)
    }

    // ---- writing -------------------------------------------------------------------------

    fn epb(&self) -> u64 {
        (self.cs * 8) >> self.header.refcount_order
    }

    fn refcount_max(&self) -> u64 {
        if self.header.refcount_order == 6 {
            u64::MAX
        } else {
            (1u64 << (1u32 << self.header.refcount_order)) - 1
        }
    }

    fn refcount(&self, cluster: u64) -> Result<u64> {
        let epb = self.epb();
        let ti = (cluster / epb) as usize;
        let Some(&b) = self.reftable.get(ti) else {
            return Ok(0);
        };
        if b == 0 {
            return Ok(0);
        }
        let (byte, idx) = self.refcount_pos(cluster % epb);
        let mut e = [0u8; 8];
        let n = self.refcount_bytes();
        self.inner.read_at(b + byte, &mut e[..n])?;
        Ok(refcount_get(&e, idx, self.header.refcount_order))
    }

    /// Bytes read and written for one refcount entry.
    fn refcount_bytes(&self) -> usize {
        (1usize << self.header.refcount_order).div_ceil(8)
    }

    /// Byte offset in the refcount block of the byte(s) holding entry `i`, and the index of the
    /// entry within them.
    fn refcount_pos(&self, i: u64) -> (u64, usize) {
        let order = self.header.refcount_order;
        if order < 3 {
            let per = 8u64 >> order;
            (i / per, (i % per) as usize)
        } else {
            (i << (order - 3), 0)
        }
    }

    fn write_reftable_entry(&mut self, i: usize) -> Result<()> {
        let at = self.header.refcount_table_offset + 8 * i as u64;
        let v = self.reftable[i];
        self.inner.write_at(at, U64::new(v).as_bytes())
    }

    fn set_refcount(&mut self, cluster: u64, value: u64) -> Result<()> {
        let epb = self.epb();
        let ti = (cluster / epb) as usize;
        if ti >= self.reftable.len() {
            if value == 0 {
                return Ok(());
            }
            self.grow_reftable(ti)?;
        }
        if self.reftable[ti] == 0 {
            if value == 0 {
                return Ok(());
            }
            let b = self.take_space(1)?;
            self.inner.write_at(b, &vec![0u8; self.cs as usize])?;
            self.reftable[ti] = b;
            self.write_reftable_entry(ti)?;
            self.set_refcount(b / self.cs, 1)?;
        }
        let b = self.reftable[ti];
        let (byte, idx) = self.refcount_pos(cluster % epb);
        let n = self.refcount_bytes();
        let mut e = [0u8; 8];
        self.inner.read_at(b + byte, &mut e[..n])?;
        refcount_set(&mut e, idx, self.header.refcount_order, value);
        self.inner.write_at(b + byte, &e[..n])
    }

    /// Move the refcount table to a bigger place at the end of the file, so that it has an
    /// entry `ti` and room for the blocks of the clusters allocated meanwhile.
    fn grow_reftable(&mut self, ti: usize) -> Result<()> {
        let cs = self.cs;
        let epb = self.epb();
        let old_off = self.header.refcount_table_offset;
        let old_clusters = u64::from(self.header.refcount_table_clusters);
        let mut clusters = old_clusters.max(1);
        loop {
            clusters = clusters.saturating_mul(2);
            let entries = clusters * cs / 8;
            // Clusters the file will have once the table is placed, with room for new blocks.
            let end = self.next_free / cs + clusters + entries / epb + 2;
            if entries as usize > ti + 1 && entries.saturating_mul(epb) > end * 2 {
                break;
            }
            if clusters * cs > MAX_REFTABLE_BYTES {
                return Err(Error::unsupported(
                    "qcow2 refcount table",
                    old_off,
                    "the image would need a refcount table above qemu's 8 MiB cap",
                ));
            }
        }
        if clusters * cs > MAX_REFTABLE_BYTES {
            return Err(Error::unsupported(
                "qcow2 refcount table",
                old_off,
                "the image would need a refcount table above qemu's 8 MiB cap",
            ));
        }
        let t = self.take_space(clusters)?;
        self.reftable.resize((clusters * cs / 8) as usize, 0);
        self.header.refcount_table_offset = t;
        self.header.refcount_table_clusters = clusters as u32;
        let table: Vec<U64> = self.reftable.iter().map(|&v| U64::new(v)).collect();
        self.inner.write_at(t, table.as_bytes())?;
        // refcount_table_offset and refcount_table_clusters are adjacent: one write.
        let mut hdr = U64::new(t).as_bytes().to_vec();
        hdr.extend_from_slice(U32::new(clusters as u32).as_bytes());
        const _: () =
            assert!(at!(v2, refcount_table_clusters) == at!(v2, refcount_table_offset) + 8);
        self.inner.write_at(at!(v2, refcount_table_offset), &hdr)?;
        for k in 0..clusters {
            self.set_refcount(t / cs + k, 1)?;
        }
        for k in 0..old_clusters {
            self.decref(old_off / cs + k, old_off)?;
        }
        Ok(())
    }

    /// Reserve `n` clusters at the end of the file (no refcount taken).
    fn take_space(&mut self, n: u64) -> Result<u64> {
        let off = self.next_free;
        let end = n
            .checked_mul(self.cs)
            .and_then(|b| off.checked_add(b))
            .filter(|&e| e <= OFFSET_MASK + 1)
            .ok_or_else(|| {
                Error::unsupported("qcow2 image", off, "the file would grow past 2^56 bytes")
            })?;
        self.next_free = end;
        Ok(off)
    }

    /// Allocate one cluster (refcount 1).
    fn alloc(&mut self) -> Result<u64> {
        let off = self.take_space(1)?;
        let c = off / self.cs;
        let rc = self.refcount(c)?;
        if rc != 0 {
            return Err(Error::corrupt(
                "qcow2 refcount block",
                off,
                format!("cluster {off:#x} past the end of the file has refcount {rc}"),
            ));
        }
        self.set_refcount(c, 1)?;
        Ok(off)
    }

    fn decref(&mut self, cluster: u64, at: u64) -> Result<()> {
        let rc = self.refcount(cluster)?;
        if rc == 0 {
            return Err(Error::corrupt(
                "qcow2 refcount block",
                at,
                format!(
                    "cluster {:#x} is in use but has refcount 0",
                    cluster * self.cs
                ),
            ));
        }
        if rc == self.refcount_max() {
            return Ok(()); // saturated: stays
        }
        self.set_refcount(cluster, rc - 1)
    }

    /// Release the host clusters an entry holds.
    fn release(&mut self, e: L2Entry, at: u64) -> Result<()> {
        match e {
            L2Entry::Unallocated | L2Entry::Zero { host: None } => Ok(()),
            L2Entry::Zero { host: Some(h) } | L2Entry::Normal { host: h, .. } => {
                self.decref(h / self.cs, at)
            }
            L2Entry::Compressed { offset, sectors } => {
                let start = offset & !511;
                let end = start + (sectors + 1) * 512;
                for c in start / self.cs..end.div_ceil(self.cs) {
                    self.decref(c, at)?;
                }
                Ok(())
            }
        }
    }

    fn before_write(&mut self, offset: u64) -> Result<()> {
        if self.header.nb_snapshots != 0 {
            return Err(Error::unsupported(
                "qcow2 snapshot table",
                self.header.snapshots_offset,
                format!(
                    "writing an image with {} internal snapshot(s)",
                    self.header.nb_snapshots
                ),
            ));
        }
        if self.backing.is_some() && self.parent.is_none() {
            return Err(Error::unsupported(
                "qcow2 backing file",
                offset,
                "the backing file is not attached",
            ));
        }
        if self.header.autoclear_features & 1 != 0 {
            return Err(Error::unsupported(
                S,
                88,
                "writing an image with persistent dirty bitmaps (autoclear bit 0), which reseal \
                 does not update; remove them first: qemu-img bitmap --remove IMAGE NAME",
            ));
        }
        if !self.header_updated {
            self.header_updated = true;
            if self.header.version >= 3 && self.header.autoclear_features != 0 {
                self.header.autoclear_features = 0;
                self.inner
                    .write_at(at!(v3, autoclear_features), U64::ZERO.as_bytes())?;
            }
        }
        Ok(())
    }

    /// The L2 table of L1 index `l1i`, allocated (or copied, if shared) for writing.
    fn l2_for_write(&mut self, l1i: u64) -> Result<u64> {
        let at = self.header.l1_table_offset + 8 * l1i;
        match self.l2_table(l1i)? {
            Some((t, true)) => Ok(t),
            old => {
                let new = self.alloc()?;
                let mut content = vec![0u8; self.cs as usize];
                if let Some((t, _)) = old {
                    self.inner.read_at(t, &mut content)?;
                }
                self.inner.write_at(new, &content)?;
                if let Some((t, _)) = old {
                    self.decref(t / self.cs, at)?;
                }
                let raw = new | COPIED;
                self.l1[l1i as usize] = raw;
                self.inner.write_at(at, U64::new(raw).as_bytes())?;
                Ok(new)
            }
        }
    }

    /// Write `data` at `within` of virtual cluster `vc` (one cluster at most).
    fn write_cluster(&mut self, vc: u64, within: u64, data: &[u8]) -> Result<()> {
        let per = self.l2_entries();
        let (l1i, l2i) = (vc / per, vc % per);
        let (raw, at) = self.l2_run(vc, 1)?[0];
        let e = if at == 0 {
            L2Entry::Unallocated
        } else {
            L2Entry::decode(raw, self.header.cluster_bits, self.header.version, at)?
        };
        if let L2Entry::Normal { host, copied: true } = e {
            if host
                .checked_add(self.cs)
                .is_none_or(|end| end > self.next_free)
            {
                return Err(Error::corrupt(
                    "qcow2 L2 entry",
                    at,
                    format!("data cluster at {host:#x} is past the end of the file"),
                ));
            }
            return self.inner.write_at(host + within, data);
        }
        // A new cluster: the old content (unless the write covers it all), then the data.
        let mut content = vec![0u8; self.cs as usize];
        if data.len() as u64 != self.cs {
            self.cluster_content(vc, e, at, &mut content)?;
        }
        content[within as usize..within as usize + data.len()].copy_from_slice(data);
        let table = self.l2_for_write(l1i)?;
        let entry_at = table + 8 * l2i;
        let host = match e {
            // A preallocated zero cluster is already ours: fill it in place.
            L2Entry::Zero { host: Some(h) } if self.refcount(h / self.cs)? == 1 => h,
            _ => {
                let h = self.alloc()?;
                self.release(e, entry_at)?;
                h
            }
        };
        self.inner.write_at(host, &content)?;
        self.inner
            .write_at(entry_at, U64::new(host | COPIED).as_bytes())
    }
}

impl<D: Device> Device for Qcow2<D> {
    fn len(&self) -> u64 {
        self.header.size
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.header.size)?;
        let cs = self.cs;
        let per = self.l2_entries();
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let vc = pos / cs;
            // Entries up to the end of the request or of this L2 table.
            let last = (offset + buf.len() as u64 - 1) / cs;
            let n = (last - vc + 1).min(per - vc % per);
            let run = self.l2_run(vc, n)?;
            let mut k = 0usize;
            while k < run.len() {
                let pos = offset + done as u64;
                let within = pos % cs;
                let (raw, at) = run[k];
                let e = if at == 0 {
                    L2Entry::Unallocated
                } else {
                    L2Entry::decode(raw, self.header.cluster_bits, self.header.version, at)?
                };
                // Coalesce following clusters of the same kind (contiguous for data).
                let mut m = 1usize;
                while k + m < run.len() {
                    let (r2, a2) = run[k + m];
                    let e2 = if a2 == 0 {
                        L2Entry::Unallocated
                    } else {
                        L2Entry::decode(r2, self.header.cluster_bits, self.header.version, a2)?
                    };
                    let same = match (e, e2) {
                        (L2Entry::Unallocated, L2Entry::Unallocated) => true,
                        (L2Entry::Zero { .. }, L2Entry::Zero { .. }) => true,
                        (L2Entry::Normal { host: h1, .. }, L2Entry::Normal { host: h2, .. }) => {
                            h2 == h1 + cs * m as u64
                        }
                        _ => false,
                    };
                    if !same {
                        break;
                    }
                    m += 1;
                }
                let span = (m as u64 * cs - within).min((buf.len() - done) as u64) as usize;
                let dst = &mut buf[done..done + span];
                match e {
                    L2Entry::Unallocated => self.parent_read(pos, dst)?,
                    L2Entry::Zero { .. } => dst.fill(0),
                    L2Entry::Normal { host, .. } => self.read_host(host + within, dst, at)?,
                    L2Entry::Compressed {
                        offset: co,
                        sectors,
                    } => {
                        let v = self.inflated(co, sectors, at)?;
                        dst.copy_from_slice(&v[within as usize..within as usize + span]);
                    }
                }
                done += span;
                k += m;
            }
        }
        Ok(())
    }

    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        check_bounds(offset, buf.len(), self.header.size)?;
        if buf.is_empty() {
            return Ok(());
        }
        self.before_write(offset)?;
        let cs = self.cs;
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + done as u64;
            let within = pos % cs;
            let n = ((cs - within) as usize).min(buf.len() - done);
            self.write_cluster(pos / cs, within, &buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }

    /// A savepoint of the image file's device, with the header, L1 table, refcount table and
    /// allocation point kept for a rollback.
    fn savepoint(&mut self) -> bool {
        let st = Qcow2State {
            header: self.header.clone(),
            l1: self.l1.clone(),
            reftable: self.reftable.clone(),
            next_free: self.next_free,
            header_updated: self.header_updated,
        };
        self.savepoints.open(&mut self.inner, || st)
    }

    fn rollback_savepoint(&mut self) -> Result<()> {
        let st = self.savepoints.rollback(&mut self.inner, S)?;
        self.header = st.header;
        self.l1 = st.l1;
        self.reftable = st.reftable;
        self.next_free = st.next_free;
        self.header_updated = st.header_updated;
        Ok(())
    }

    fn release_savepoint(&mut self) -> Result<()> {
        self.savepoints.release(&mut self.inner, S)
    }

    /// Zero clusters, and unallocated ones over no backing file (or a backing file that knows
    /// them to be zero); walks one L2 table at a time, a missing table in one step.
    fn known_zero(&self, offset: u64, len: u64) -> bool {
        if offset.checked_add(len).is_none_or(|e| e > self.header.size) {
            return false;
        }
        let cs = self.cs;
        let per = self.l2_entries();
        let span = cs * per; // bytes one L2 table maps
        let unallocated_zero = |pos: u64, n: u64| match &self.parent {
            None => self.backing.is_none(),
            Some(p) => pos >= p.len() || p.known_zero(pos, n.min(p.len() - pos)),
        };
        let mut pos = offset;
        let end = offset + len;
        while pos < end {
            let table_end = (pos / span + 1).saturating_mul(span).min(end);
            let vc = pos / cs;
            let n_entries = (table_end - 1) / cs - vc + 1;
            match self.l2_table(vc / per) {
                Ok(None) => {
                    if !unallocated_zero(pos, table_end - pos) {
                        return false;
                    }
                }
                Ok(Some(_)) => {
                    let Ok(run) = self.l2_run(vc, n_entries) else {
                        return false;
                    };
                    let mut p = pos;
                    for (raw, at) in run {
                        let n = (cs - p % cs).min(table_end - p);
                        let zero = match L2Entry::decode(
                            raw,
                            self.header.cluster_bits,
                            self.header.version,
                            at,
                        ) {
                            Ok(L2Entry::Zero { .. }) => true,
                            Ok(L2Entry::Unallocated) => unallocated_zero(p, n),
                            _ => false,
                        };
                        if !zero {
                            return false;
                        }
                        p += n;
                    }
                }
                Err(_) => return false,
            }
            pos = table_end;
        }
        true
    }
}

/// `target` relative to the folder `from` when both are under a common root (`../base.qcow2`),
/// from their canonical forms; `None` if either cannot be canonicalised.
pub fn relative_path(from: &Path, target: &Path) -> Option<PathBuf> {
    let from = from.canonicalize().ok()?;
    let target = target.canonicalize().ok()?;
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = target.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    if common == 0 {
        return None;
    }
    let mut out = PathBuf::new();
    for _ in common..f.len() {
        out.push("..");
    }
    for c in &t[common..] {
        out.push(c.as_os_str());
    }
    Some(out)
}

/// Write a new, empty qcow2 version 3 image at `out` whose backing file is `backing` (format
/// `backing_format`, e.g. `qcow2`, `raw`, `vpc`, `vhdx`), of `virtual_size` bytes with
/// `cluster_size`-byte clusters (a power of two, 512 B to 2 MiB). The backing file is named
/// relative to `out`'s folder when possible, absolute otherwise.
///
/// # Errors
/// Bad sizes ([`Error::Unsupported`]), a backing name too long, I/O errors.
pub fn create_overlay(
    out: &Path,
    backing: &Path,
    backing_format: &str,
    virtual_size: u64,
    cluster_size: u32,
) -> Result<()> {
    create_image(
        out,
        Some((backing, backing_format)),
        virtual_size,
        cluster_size,
    )
}

/// Write a new, empty standalone qcow2 version 3 image at `out` of `virtual_size` bytes with
/// `cluster_size`-byte clusters (a power of two, 512 B to 2 MiB).
///
/// # Errors
/// Bad sizes ([`Error::Unsupported`]), I/O errors.
pub fn create(out: &Path, virtual_size: u64, cluster_size: u32) -> Result<()> {
    create_image(out, None, virtual_size, cluster_size)
}

fn create_image(
    out: &Path,
    backing: Option<(&Path, &str)>,
    virtual_size: u64,
    cluster_size: u32,
) -> Result<()> {
    let st = "qcow2 image";
    if !cluster_size.is_power_of_two()
        || !(MIN_CLUSTER_BITS..=MAX_CLUSTER_BITS).contains(&cluster_size.trailing_zeros())
    {
        return Err(Error::unsupported(
            st,
            0,
            format!("cluster size {cluster_size} (a power of two from 512 to 2 MiB)"),
        ));
    }
    let cluster_bits = cluster_size.trailing_zeros();
    let cs = u64::from(cluster_size);
    let out_dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = match backing {
        None => String::new(),
        Some((b, _)) => match relative_path(&out_dir, b) {
            Some(r) => r,
            None => std::path::absolute(b).map_err(|e| Error::io(b, e))?,
        }
        .to_string_lossy()
        .into_owned(),
    };
    if (backing.is_some() && name.is_empty()) || name.len() > MAX_BACKING_NAME as usize {
        return Err(Error::unsupported(
            st,
            0,
            format!("backing file name of {} bytes", name.len()),
        ));
    }
    let per_l1 = cs * (cs / 8);
    let l1_size = virtual_size.div_ceil(per_l1).max(1);
    if l1_size * 8 > MAX_L1_BYTES {
        return Err(Error::unsupported(
            st,
            0,
            format!("virtual size {virtual_size} too large for {cluster_size}-byte clusters"),
        ));
    }
    let l1_clusters = (l1_size * 8).div_ceil(cs);
    // Layout: header cluster, refcount table, refcount blocks, L1 table.
    let epb = cs * 8 / 16;
    let (mut rt_clusters, mut rb) = (1u64, 1u64);
    loop {
        let total = 1 + rt_clusters + rb + l1_clusters;
        let need_rb = total.div_ceil(epb);
        let need_rt = (need_rb * 8).div_ceil(cs);
        if need_rb == rb && need_rt == rt_clusters {
            break;
        }
        rb = need_rb;
        rt_clusters = need_rt;
    }
    let rt_off = cs;
    let rb_off = rt_off + rt_clusters * cs;
    let l1_off = rb_off + rb * cs;
    let total = 1 + rt_clusters + rb + l1_clusters;
    let mut ext = Vec::new();
    let push_ext = |ext: &mut Vec<u8>, kind: u32, data: &[u8]| {
        let x = HeaderExtension {
            ext_type: U32::new(kind),
            length: U32::new(data.len() as u32),
        };
        ext.extend_from_slice(x.as_bytes());
        ext.extend_from_slice(data);
        ext.resize(ext.len().div_ceil(8) * 8, 0);
    };
    if let Some((_, format)) = backing {
        push_ext(&mut ext, EXT_BACKING_FORMAT, format.as_bytes());
    }
    let mut names = Vec::new();
    for (kind, bit, n) in [
        (0u8, 0u8, "dirty bit"),
        (0, 1, "corrupt bit"),
        (0, 2, "external data file"),
        (0, 3, "compression type"),
        (0, 4, "extended L2 entries"),
        (1, 0, "lazy refcounts"),
        (2, 0, "bitmaps"),
        (2, 1, "raw external data"),
    ] {
        let mut e = FeatureNameEntry::new_zeroed();
        e.feature_type = kind;
        e.bit_number = bit;
        for (d, c) in e.feature_name.iter_mut().zip(n.bytes()) {
            *d = c;
        }
        names.extend_from_slice(e.as_bytes());
    }
    let header_length = 112u32;
    // The feature name table (informative) only where it leaves room for the backing name.
    if u64::from(header_length) + ext.len() as u64 + 8 + names.len() as u64 + 8 + name.len() as u64
        <= cs
    {
        push_ext(&mut ext, EXT_FEATURE_NAMES, &names);
    }
    ext.extend_from_slice(HeaderExtension::new_zeroed().as_bytes()); // end of extensions
    let backing_off = u64::from(header_length) + ext.len() as u64;
    if backing_off + name.len() as u64 > cs {
        return Err(Error::unsupported(
            st,
            0,
            "the backing file name does not fit in the first cluster",
        ));
    }
    let h = Header {
        version: 3,
        backing_file_offset: if backing.is_some() { backing_off } else { 0 },
        backing_file_size: name.len() as u32,
        cluster_bits,
        size: virtual_size,
        crypt_method: 0,
        l1_size: l1_size as u32,
        l1_table_offset: l1_off,
        refcount_table_offset: rt_off,
        refcount_table_clusters: rt_clusters as u32,
        nb_snapshots: 0,
        snapshots_offset: 0,
        incompatible_features: 0,
        compatible_features: 0,
        autoclear_features: 0,
        refcount_order: 4,
        header_length,
        compression_type: 0,
    };
    let mut first = h.encode();
    first.extend_from_slice(&ext);
    first.extend_from_slice(name.as_bytes());
    first.resize(cs as usize, 0);
    let mut rt = vec![U64::ZERO; (rt_clusters * cs / 8) as usize];
    for (i, e) in rt.iter_mut().take(rb as usize).enumerate() {
        *e = U64::new(rb_off + i as u64 * cs);
    }
    let mut rbs = vec![0u8; (rb * cs) as usize];
    for c in 0..total {
        let blk = (c / epb) as usize;
        let b = &mut rbs[blk * cs as usize..(blk + 1) * cs as usize];
        refcount_set(b, (c % epb) as usize, 4, 1);
    }
    let mut f = HostFile::create(out)?;
    f.write_at(0, &first)?;
    f.write_at(rt_off, rt.as_bytes())?;
    f.write_at(rb_off, &rbs)?;
    f.set_len(total * cs)?;
    f.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refcount_widths_round_trip() {
        for order in 0..=6u32 {
            let mut b = vec![0u8; 64];
            let max = if order == 6 {
                u64::MAX
            } else {
                (1u64 << (1 << order)) - 1
            };
            let n = (64 * 8) >> order;
            for i in 0..n {
                refcount_set(&mut b, i, order, (i as u64 * 7) & max);
            }
            for i in 0..n {
                assert_eq!(
                    refcount_get(&b, i, order),
                    (i as u64 * 7) & max,
                    "order {order}"
                );
            }
        }
    }

    #[test]
    fn hostile_headers_error() {
        let mut h = vec![0u8; 512];
        h[0..4].copy_from_slice(&MAGIC);
        h[7] = 3;
        assert!(Header::parse(&h[..50], 512).is_err());
        h[23] = 40; // cluster_bits 40
        assert!(Header::parse(&h, 512).is_err());
        h[23] = 16;
        h[36..40].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(Header::parse(&h, 512).is_err());
    }

    #[test]
    fn l2_decoding() {
        assert_eq!(L2Entry::decode(0, 16, 3, 0).unwrap(), L2Entry::Unallocated);
        assert_eq!(
            L2Entry::decode(1, 16, 3, 0).unwrap(),
            L2Entry::Zero { host: None }
        );
        assert!(L2Entry::decode(1, 16, 2, 0).is_err());
        assert!(L2Entry::decode(0x1_0200, 16, 3, 0).is_err());
        assert_eq!(
            L2Entry::decode(COPIED | 0x3_0000, 16, 3, 0).unwrap(),
            L2Entry::Normal {
                host: 0x3_0000,
                copied: true
            }
        );
    }
}
