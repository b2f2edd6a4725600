//! The Volume Shadow Copy (VSS) volume header: 128 bytes at volume offset 0x1E00, inside the
//! `$Boot` area, that points to the shadow-copy catalog. System restore points on Windows Vista
//! and later are VSS shadow copies; their data lives in `System Volume Information`, in the
//! catalog file `{3808876b-c176-4e48-b7ae-04046e6cc752}` and one store file
//! `{<store GUID>}{3808876b-c176-4e48-b7ae-04046e6cc752}` per shadow copy.
//!
//! Layout (libvshadow's "Volume Shadow Snapshot (VSS) format" document; checked against the
//! corpus: `dfir_ntfs/volume_start.bin` with shadow copies, `volume_start_nosc_10.bin` without,
//! `plaso/vsstest.qcow2` with two stores):
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0x00 | 16 | identifier `{3808876b-c176-4e48-b7ae-04046e6cc752}` (GUID bytes `6b 87 08 38 …`) |
//! | 0x10 | 4 | version (1) |
//! | 0x14 | 4 | record type (1 = volume header) |
//! | 0x18 | 8 | offset of this header (0x1E00) |
//! | 0x30 | 8 | catalog offset (volume bytes; **0 = no shadow copies**) |
//! | 0x38 | 8 | maximum size of the shadow storage |
//! | 0x40 | 16 | volume identifier |
//! | 0x50 | 16 | shadow storage volume identifier |
//!
//! A Windows 10 volume on which VSS never made a copy, or whose copies were all deleted, has
//! the header with catalog offset 0 (the `volume_start_nosc_10.bin` sample); libvshadow then
//! reports no stores.

use crate::error::{Error, Offset, Result};
use crate::layout::vss::VssVolumeHeader;
use crate::volume::Volume;
use core::mem::offset_of;
use reseal_disk::Device;
use zerocopy::FromBytes;

/// Volume offset of the VSS volume header.
pub const HEADER_OFFSET: u64 = 0x1E00;
/// Length of the header.
pub const HEADER_LEN: usize = crate::layout::vss::LEN;
/// The VSS identifier GUID as text (lower case), also the catalog file's name.
pub const VSS_GUID: &str = "3808876b-c176-4e48-b7ae-04046e6cc752";
/// The identifier's on-disk bytes (Windows GUID layout).
pub const VSS_IDENTIFIER: [u8; 16] = [
    0x6b, 0x87, 0x08, 0x38, 0x76, 0xc1, 0x48, 0x4e, 0xb7, 0xae, 0x04, 0x04, 0x6e, 0x6c, 0xc7, 0x52,
];

/// A parsed VSS volume header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VssHeader {
    /// Format version.
    pub version: u32,
    /// Volume offset of the catalog; 0 when the volume has no shadow copies.
    pub catalog_offset: u64,
    /// Maximum size of the shadow storage.
    pub max_size: u64,
}

impl VssHeader {
    /// Parse the 128 bytes at [`HEADER_OFFSET`]: `None` when they do not start with the VSS
    /// identifier (VSS was never used on the volume).
    ///
    /// # Errors
    /// [`Error::Corrupt`] (volume offset) for a header with the identifier but another record
    /// type or a misplaced self offset.
    pub fn parse(b: &[u8; HEADER_LEN]) -> Result<Option<VssHeader>> {
        let h = VssVolumeHeader::ref_from_bytes(&b[..]).map_err(|_| {
            Error::corrupt(
                "VSS volume header",
                None,
                Offset::Volume(HEADER_OFFSET),
                "not 128 bytes",
            )
        })?;
        if h.identifier != VSS_IDENTIFIER {
            return Ok(None);
        }
        let c = |o: usize, r: String| {
            Error::corrupt(
                "VSS volume header",
                None,
                Offset::Volume(HEADER_OFFSET + o as u64),
                r,
            )
        };
        if h.record_type.get() != 1 {
            return Err(c(
                offset_of!(VssVolumeHeader, record_type),
                format!("record type {} (1 expected)", h.record_type.get()),
            ));
        }
        if h.header_offset.get() != HEADER_OFFSET {
            return Err(c(
                offset_of!(VssVolumeHeader, header_offset),
                format!("self offset {:#x} (0x1e00 expected)", h.header_offset.get()),
            ));
        }
        Ok(Some(VssHeader {
            version: h.version.get(),
            catalog_offset: h.catalog_offset.get(),
            max_size: h.maximum_size.get(),
        }))
    }
}

/// Is `name` (a `System Volume Information` entry) the VSS catalog or a store file?
pub fn is_vss_file(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    let tail = format!("{{{VSS_GUID}}}");
    if n == tail {
        return true;
    }
    // `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` + tail.
    n.len() == 38 + tail.len()
        && n.ends_with(&tail)
        && n.starts_with('{')
        && n.as_bytes()[37] == b'}'
        && n[1..37].char_indices().all(|(i, ch)| {
            if [8, 13, 18, 23].contains(&i) {
                ch == '-'
            } else {
                ch.is_ascii_hexdigit()
            }
        })
}

impl<D: Device> Volume<D> {
    /// The VSS volume header, when the volume has one (see the module documentation).
    ///
    /// # Errors
    /// Disk errors; [`Error::Corrupt`] for a malformed header.
    pub fn vss_header(&self) -> Result<Option<VssHeader>> {
        if self.dev.len() < HEADER_OFFSET + HEADER_LEN as u64 {
            return Ok(None);
        }
        let mut b = [0u8; HEADER_LEN];
        self.read_raw(HEADER_OFFSET, &mut b)?;
        VssHeader::parse(&b)
    }

    /// Forget every shadow copy: set the header's catalog offset to 0, the state Windows leaves
    /// when no copy exists (the rest of the header stays). Returns the old catalog offset, or
    /// `None` when there was nothing to clear (no header, or catalog offset already 0). The
    /// catalog and store files are the caller's to delete ([`is_vss_file`]).
    ///
    /// # Errors
    /// Disk errors; [`Error::Corrupt`] for a malformed header.
    pub fn clear_vss_catalog(&mut self) -> Result<Option<u64>> {
        let Some(h) = self.vss_header()? else {
            return Ok(None);
        };
        if h.catalog_offset == 0 {
            return Ok(None);
        }
        let field = offset_of!(VssVolumeHeader, catalog_offset) as u64;
        self.tx(|v| v.write_raw(HEADER_OFFSET + field, &[0u8; 8]))?;
        Ok(Some(h.catalog_offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_vss_file("{3808876b-c176-4e48-b7ae-04046e6cc752}"));
        assert!(is_vss_file(
            "{600f0b69-5bdf-11e3-9d6c-005056c00008}{3808876b-c176-4e48-b7ae-04046e6cc752}"
        ));
        assert!(is_vss_file(
            "{600F0B69-5BDF-11E3-9D6C-005056C00008}{3808876B-C176-4E48-B7AE-04046E6CC752}"
        ));
        assert!(!is_vss_file("{600f0b69-5bdf-11e3-9d6c-005056c00008}"));
        assert!(!is_vss_file("tracking.log"));
        assert!(!is_vss_file(
            "{600f0b69-5bdf-11e3-9d6c-005056c0000g}{3808876b-c176-4e48-b7ae-04046e6cc752}"
        ));
    }

    #[test]
    fn header() {
        let mut b = [0u8; HEADER_LEN];
        assert_eq!(VssHeader::parse(&b).expect("no header"), None);
        b[..16].copy_from_slice(&VSS_IDENTIFIER);
        b[0x10] = 1;
        b[0x14] = 1;
        b[0x18..0x20].copy_from_slice(&HEADER_OFFSET.to_le_bytes());
        b[0x30..0x38].copy_from_slice(&0x4d8000u64.to_le_bytes());
        let h = VssHeader::parse(&b).expect("valid").expect("present");
        assert_eq!(h.catalog_offset, 0x4d8000);
        b[0x14] = 2;
        assert!(VssHeader::parse(&b).is_err());
    }
}
