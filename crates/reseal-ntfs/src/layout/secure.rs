//! `$Secure` structures: the `$SDS` entry header, and the keys and entries of the `$SII` (by
//! security id) and `$SDH` (by hash) view indexes. Reference: FORMATS.md C.5.

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::index::IndexEntryHeader;

/// Header of an `$SDS` entry, followed by the self-relative security descriptor; also the data
/// of every `$SII` and `$SDH` entry.
#[derive(Debug, Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SdsEntryHeader {
    /// Hash of the descriptor ([`crate::secure::sd_hash`]).
    pub hash: U32,
    /// Security id (the first is 0x100).
    pub security_id: U32,
    /// Offset of this entry in `$SDS` (the primary copy; the mirror is 256 KiB further).
    pub offset: U64,
    /// Length of the entry: this header plus the descriptor, no padding.
    pub length: U32,
}

/// Size of [`SdsEntryHeader`].
pub const SDS_HEADER_LEN: usize = 20;
const _: () = assert!(core::mem::size_of::<SdsEntryHeader>() == SDS_HEADER_LEN);

/// Key of a `$SII` entry (collation NTOFS_ULONG).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SiiKey {
    /// Security id.
    pub security_id: U32,
}

/// Key of a `$SDH` entry (collation NTOFS_SECURITY_HASH: hash first, then id).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SdhKey {
    /// Hash of the descriptor.
    pub hash: U32,
    /// Security id.
    pub security_id: U32,
}

const _: () = assert!(core::mem::size_of::<SiiKey>() == 4);
const _: () = assert!(core::mem::size_of::<SdhKey>() == 8);

/// A whole `$SII` entry (40 bytes): data offset 20, data length 20, key length 4.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SiiEntry {
    /// View index entry header.
    pub header: IndexEntryHeader,
    /// The key.
    pub key: SiiKey,
    /// The data: the `$SDS` header of the descriptor.
    pub data: SdsEntryHeader,
}

/// A whole `$SDH` entry (48 bytes): data offset 24, data length 20, key length 8, then 4 bytes
/// of padding "I\0I\0" not counted in the data length.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SdhEntry {
    /// View index entry header.
    pub header: IndexEntryHeader,
    /// The key.
    pub key: SdhKey,
    /// The data: the `$SDS` header of the descriptor.
    pub data: SdsEntryHeader,
    /// Padding, [`SDH_PADDING`].
    pub padding: [u8; 4],
}

/// Size of [`SiiEntry`].
pub const SII_ENTRY_LEN: usize = 40;
/// Size of [`SdhEntry`].
pub const SDH_ENTRY_LEN: usize = 48;
const _: () = assert!(core::mem::size_of::<SiiEntry>() == SII_ENTRY_LEN);
const _: () = assert!(core::mem::size_of::<SdhEntry>() == SDH_ENTRY_LEN);

/// The padding Windows writes after `$SDH` data.
pub const SDH_PADDING: [u8; 4] = [b'I', 0, b'I', 0];

impl SiiKey {
    /// The leading u32 of `key` (the id of a `$SII` key, the hash of a `$SDH` key), 0 when
    /// shorter: hostile keys compare, never panic.
    pub fn id_of(key: &[u8]) -> u32 {
        SiiKey::ref_from_prefix(key).map_or(0, |(k, _)| k.security_id.get())
    }
}

impl SdhKey {
    /// (hash, id) of `key`; a key shorter than 8 bytes reads as ([`SiiKey::id_of`], 0).
    pub fn fields_of(key: &[u8]) -> (u32, u32) {
        match SdhKey::ref_from_prefix(key) {
            Ok((k, _)) => (k.hash.get(), k.security_id.get()),
            Err(_) => (SiiKey::id_of(key), 0),
        }
    }
}

fn entry_header(data_offset: usize, entry_len: usize, key_len: usize) -> IndexEntryHeader {
    IndexEntryHeader {
        indexed: IndexEntryHeader::data_field(data_offset as u16, SDS_HEADER_LEN as u16),
        length: (entry_len as u16).into(),
        key_length: (key_len as u16).into(),
        flags: 0.into(),
        reserved: 0.into(),
    }
}

impl SiiEntry {
    /// The `$SII` entry of descriptor `data`.
    pub fn new(data: SdsEntryHeader) -> SiiEntry {
        SiiEntry {
            header: entry_header(
                core::mem::offset_of!(SiiEntry, data),
                SII_ENTRY_LEN,
                core::mem::size_of::<SiiKey>(),
            ),
            key: SiiKey {
                security_id: data.security_id,
            },
            data,
        }
    }
}

impl SdhEntry {
    /// The `$SDH` entry of descriptor `data`.
    pub fn new(data: SdsEntryHeader) -> SdhEntry {
        SdhEntry {
            header: entry_header(
                core::mem::offset_of!(SdhEntry, data),
                SDH_ENTRY_LEN,
                core::mem::size_of::<SdhKey>(),
            ),
            key: SdhKey {
                hash: data.hash,
                security_id: data.security_id,
            },
            data,
            padding: SDH_PADDING,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> SdsEntryHeader {
        SdsEntryHeader {
            hash: 0xAABB_CCDD.into(),
            security_id: 0x101.into(),
            offset: 0x80.into(),
            length: 0x7C.into(),
        }
    }

    #[test]
    fn entries_and_short_input() {
        let sii = SiiEntry::new(header());
        let b = sii.as_bytes();
        assert_eq!(&b[..4], &[20, 0, 20, 0]);
        assert_eq!((b[8], b[10], b[16], b[17]), (40, 4, 1, 1));
        assert_eq!(&b[20..24], &0xAABB_CCDDu32.to_le_bytes());
        let sdh = SdhEntry::new(header());
        let b = sdh.as_bytes();
        assert_eq!(&b[..4], &[24, 0, 20, 0]);
        assert_eq!((b[8], b[10]), (48, 8));
        assert_eq!(SdhKey::fields_of(&b[16..24]), (0xAABB_CCDD, 0x101));
        assert_eq!(&b[44..], b"I\0I\0");
        let (h, _) = SdsEntryHeader::ref_from_prefix(&b[24..]).unwrap();
        assert_eq!((h.offset.get(), h.length.get()), (0x80, 0x7C));
        assert!(SdsEntryHeader::ref_from_prefix(&b[24..43]).is_err());
        assert_eq!(SdhKey::fields_of(&b[16..20]), (0xAABB_CCDD, 0));
        assert_eq!(SiiKey::id_of(&b[16..19]), 0);
    }
}
