//! Who owns each cluster of a volume: one pass over the MFT collecting every non-resident
//! attribute's runs, plus the cluster bitmap, so that a byte found anywhere on the volume can
//! be named — the file and stream it belongs to and its offset there, the slack after a
//! stream's data, an MFT record's attribute, or a free cluster.

use std::collections::HashMap;

use reseal_disk::Device;

use crate::attribute::{self, DATA};
use crate::error::Result;
use crate::volume::Volume;

/// One run of clusters of one attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extent {
    /// First logical cluster.
    pub lcn: u64,
    /// Clusters.
    pub len: u64,
    /// First virtual cluster of the run within the attribute.
    pub vcn: u64,
    /// Base MFT record of the file.
    pub record: u64,
    /// Attribute type.
    pub ty: u32,
    /// Attribute name (UTF-16 code units; empty: unnamed).
    pub name: Vec<u16>,
}

/// What a volume byte offset is (see [`ExtentMap::locate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeRegion {
    /// Inside a non-resident attribute's data: `offset` is the byte offset in the stream.
    Stream {
        /// The extent that holds it.
        extent: Extent,
        /// Byte offset within the attribute's data.
        offset: u64,
        /// Whether the byte is past the attribute's data size (cluster slack).
        slack: bool,
    },
    /// A cluster no attribute owns that the bitmap marks free.
    Free,
    /// A cluster the bitmap marks in use that no attribute owns (the boot sector's cluster,
    /// or lost clusters).
    Unowned,
}

/// The owner map of a volume's clusters.
#[derive(Debug, Clone)]
pub struct ExtentMap {
    cluster: u64,
    extents: Vec<Extent>,
    sizes: HashMap<(u64, u32, Vec<u16>), u64>,
    bitmap: Vec<u8>,
}

impl ExtentMap {
    /// The extents, sorted by LCN.
    pub fn extents(&self) -> &[Extent] {
        &self.extents
    }

    /// Data size of an attribute (`None`: not non-resident or unknown).
    pub fn data_size(&self, record: u64, ty: u32, name: &[u16]) -> Option<u64> {
        self.sizes.get(&(record, ty, name.to_vec())).copied()
    }

    /// Whether the bitmap marks cluster `lcn` in use.
    pub fn in_use(&self, lcn: u64) -> bool {
        let byte = usize::try_from(lcn / 8).unwrap_or(usize::MAX);
        self.bitmap
            .get(byte)
            .is_some_and(|b| b & (1 << (lcn % 8)) != 0)
    }

    /// What the byte at volume offset `at` is.
    pub fn locate(&self, at: u64) -> VolumeRegion {
        let lcn = at / self.cluster;
        let i = self.extents.partition_point(|e| e.lcn <= lcn);
        if i > 0 {
            let e = &self.extents[i - 1];
            if lcn < e.lcn.saturating_add(e.len) {
                let offset = e
                    .vcn
                    .saturating_add(lcn - e.lcn)
                    .saturating_mul(self.cluster)
                    .saturating_add(at % self.cluster);
                let slack = self
                    .data_size(e.record, e.ty, &e.name)
                    .is_some_and(|s| offset >= s);
                return VolumeRegion::Stream {
                    extent: e.clone(),
                    offset,
                    slack,
                };
            }
        }
        if self.in_use(lcn) {
            VolumeRegion::Unowned
        } else {
            VolumeRegion::Free
        }
    }
}

/// What a byte inside an MFT record is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordRegion {
    /// The record header or an attribute header.
    Header,
    /// An attribute's resident value: `offset` is the byte offset in the value.
    Value {
        /// Attribute type.
        ty: u32,
        /// Attribute name.
        name: Vec<u16>,
        /// Offset in the value.
        offset: u64,
    },
    /// Bytes past the record's used size (old contents of a longer record).
    Slack,
}

impl<D: Device> Volume<D> {
    /// Build the [`ExtentMap`]: every in-use MFT record is read once. Records that fail to
    /// read are skipped (their clusters then show as [`VolumeRegion::Unowned`]).
    ///
    /// # Errors
    /// The cluster bitmap cannot be read.
    pub fn extent_map(&self) -> Result<ExtentMap> {
        let mut extents = Vec::new();
        let mut sizes = HashMap::new();
        self.scan_records(|num, r| {
            let Ok(r) = r else { return };
            if !r.in_use() {
                return;
            }
            let base = match r.base_ref() & 0x0000_FFFF_FFFF_FFFF {
                0 => num,
                b => b,
            };
            let Ok(attrs) = r.attrs() else { return };
            for a in attrs.iter().filter(|a| a.nonres) {
                if a.lowest_vcn == 0 {
                    sizes.insert((base, a.ty, a.name.clone()), a.size);
                }
                let Ok(runs) = a.runs(&r.buf, num) else {
                    continue;
                };
                for run in runs {
                    if let Some(lcn) = run.lcn {
                        extents.push(Extent {
                            lcn,
                            len: run.len,
                            vcn: run.vcn,
                            record: base,
                            ty: a.ty,
                            name: a.name.clone(),
                        });
                    }
                }
            }
        });
        extents.sort_by_key(|e| e.lcn);
        let bitmap = self.read_all(crate::volume::BITMAP_FILE, DATA, &[])?;
        Ok(ExtentMap {
            cluster: u64::from(self.boot.cluster_size),
            extents,
            sizes,
            bitmap,
        })
    }

    /// Size in bytes of the device under the volume.
    pub fn device_len(&self) -> u64 {
        self.dev.len()
    }

    /// Read raw bytes of the device under the volume (staged writes included), for scans
    /// that walk the whole volume sequentially.
    ///
    /// # Errors
    /// Device errors.
    pub fn read_device(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.dev
            .read_at(offset, buf)
            .map_err(|source| crate::Error::Disk { offset, source })
    }

    /// What byte `offset` of MFT record `num` is (fixups applied).
    ///
    /// # Errors
    /// The record cannot be read or parsed.
    pub fn record_region(&self, num: u64, offset: usize) -> Result<RecordRegion> {
        let r = self.read_record(num)?;
        if offset >= r.used() {
            return Ok(RecordRegion::Slack);
        }
        for a in r.attrs()? {
            if offset < a.off || offset >= a.off + a.len {
                continue;
            }
            if !a.nonres
                && offset >= a.off + a.value_off
                && offset < a.off + a.value_off + a.value_len
            {
                return Ok(RecordRegion::Value {
                    ty: a.ty,
                    name: a.name,
                    offset: (offset - a.off - a.value_off) as u64,
                });
            }
            return Ok(RecordRegion::Header);
        }
        Ok(RecordRegion::Header)
    }
}

/// A readable name for an attribute type.
pub fn attribute_type_name(ty: u32) -> &'static str {
    match ty {
        attribute::STANDARD_INFORMATION => "$STANDARD_INFORMATION",
        attribute::ATTRIBUTE_LIST => "$ATTRIBUTE_LIST",
        attribute::FILE_NAME => "$FILE_NAME",
        attribute::SECURITY_DESCRIPTOR => "$SECURITY_DESCRIPTOR",
        attribute::DATA => "$DATA",
        attribute::INDEX_ROOT => "$INDEX_ROOT",
        attribute::INDEX_ALLOCATION => "$INDEX_ALLOCATION",
        attribute::BITMAP => "$BITMAP",
        0x40 => "$OBJECT_ID",
        0x60 => "$VOLUME_NAME",
        0x70 => "$VOLUME_INFORMATION",
        0xC0 => "$REPARSE_POINT",
        0xD0 => "$EA_INFORMATION",
        0xE0 => "$EA",
        0x100 => "$LOGGED_UTILITY_STREAM",
        _ => "attribute",
    }
}
