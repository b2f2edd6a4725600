//! B-tree index structures: the `$INDEX_ROOT` value, the node header (INDEX_HEADER) shared by
//! the root and INDX blocks, the INDX block header, and the index entry header.
//! Reference: FORMATS.md C.7.

use zerocopy::little_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::multi_sector::MultiSectorHeader;

/// Start of the `$INDEX_ROOT` value; the root's node header follows at byte 16.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct IndexRoot {
    /// Type of the indexed attribute (0x30 for `$I30`, 0 for view indexes).
    pub indexed_attribute_type: U32,
    /// Collation rule (1 file name, 0x10 unsigned long, 0x11 SID, 0x12 security hash, 0x13
    /// unsigned longs).
    pub collation_rule: U32,
    /// Size of an INDX block in bytes.
    pub index_block_size: U32,
    /// Clusters per INDX block (or, when the cluster is larger than a block, log2 of blocks).
    pub clusters_per_index_block: u8,
    /// Padding.
    pub reserved: [u8; 3],
}

/// Size of [`IndexRoot`] (the offset of the root's node header in the value).
pub const ROOT_LEN: usize = 16;
const _: () = assert!(core::mem::size_of::<IndexRoot>() == ROOT_LEN);

/// Node header (INDEX_HEADER): where a node's entries are. Offsets count from the header.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct IndexHeader {
    /// Offset of the first entry from this header.
    pub entries_offset: U32,
    /// Offset of the end of the last entry (END included) from this header.
    pub index_length: U32,
    /// Bytes available for entries from this header (root: equal to `index_length`).
    pub allocated_size: U32,
    /// [`NODE_HAS_SUBNODES`] when the entries point at sub-nodes.
    pub flags: u8,
    /// Padding.
    pub reserved: [u8; 3],
}

/// Size of [`IndexHeader`].
pub const NODE_HEADER_LEN: usize = 16;
const _: () = assert!(core::mem::size_of::<IndexHeader>() == NODE_HEADER_LEN);

/// Node header flag: the node is not a leaf.
pub const NODE_HAS_SUBNODES: u8 = 1;

/// Header of an INDX block (one node in `$INDEX_ALLOCATION`); its node header follows at 0x18.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct IndexBlockHeader {
    /// Signature `INDX` and the update sequence array position.
    pub multi_sector: MultiSectorHeader,
    /// `$LogFile` sequence number of the last change.
    pub lsn: U64,
    /// VCN of this block in `$INDEX_ALLOCATION`.
    pub vcn: U64,
}

/// Size of [`IndexBlockHeader`] (the offset of the block's node header).
pub const BLOCK_HEADER_LEN: usize = 0x18;
const _: () = assert!(core::mem::size_of::<IndexBlockHeader>() == BLOCK_HEADER_LEN);

/// Offset of the update sequence array in an INDX block (right after both headers).
pub const BLOCK_USA_OFFSET: usize = BLOCK_HEADER_LEN + NODE_HEADER_LEN;

/// Header of an index entry; the key (`key_length` bytes) follows, and when
/// [`ENTRY_SUBNODE`] is set the entry ends with the sub-node VCN (u64).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct IndexEntryHeader {
    /// `$I30`: MFT reference of the file. View indexes: data offset (u16, from the entry
    /// start), data length (u16), then 4 reserved bytes; see [`IndexEntryHeader::data`].
    pub indexed: U64,
    /// Length of the whole entry (8-aligned).
    pub length: U16,
    /// Length of the key.
    pub key_length: U16,
    /// [`ENTRY_SUBNODE`], [`ENTRY_END`].
    pub flags: U16,
    /// Padding.
    pub reserved: U16,
}

/// Size of [`IndexEntryHeader`] (the offset of the key).
pub const ENTRY_HEADER_LEN: usize = 16;
const _: () = assert!(core::mem::size_of::<IndexEntryHeader>() == ENTRY_HEADER_LEN);

/// Entry flag: has a sub-node VCN in its last 8 bytes.
pub const ENTRY_SUBNODE: u16 = 1;
/// Entry flag: last (END) entry of a node, no key.
pub const ENTRY_END: u16 = 2;

impl IndexEntryHeader {
    /// The header of the entry starting at `entry`, `None` when shorter than 16 bytes.
    pub fn view(entry: &[u8]) -> Option<&IndexEntryHeader> {
        IndexEntryHeader::ref_from_prefix(entry)
            .ok()
            .map(|(h, _)| h)
    }

    /// The mutable header of the entry starting at `entry`.
    pub fn view_mut(entry: &mut [u8]) -> Option<&mut IndexEntryHeader> {
        IndexEntryHeader::mut_from_prefix(entry)
            .ok()
            .map(|(h, _)| h)
    }

    /// Record number of an `$I30` entry (the low 48 bits of the reference).
    pub fn file_record(&self) -> u64 {
        self.indexed.get() & 0xFFFF_FFFF_FFFF
    }

    /// View index entries: (data offset from the entry start, data length).
    pub fn data(&self) -> (usize, usize) {
        let v = self.indexed.get();
        (usize::from(v as u16), usize::from((v >> 16) as u16))
    }

    /// The `indexed` field of a view index entry whose data is at `offset`, `length` bytes.
    pub fn data_field(offset: u16, length: u16) -> U64 {
        (u64::from(offset) | (u64::from(length) << 16)).into()
    }
}

/// The key of the entry at the start of `entry`, `None` when it runs past `entry`.
pub fn key(entry: &[u8]) -> Option<&[u8]> {
    let h = IndexEntryHeader::view(entry)?;
    entry
        .get(ENTRY_HEADER_LEN..)?
        .get(..usize::from(h.key_length.get()))
}

/// The sub-node VCN stored in the last 8 bytes of `entry` (the whole entry, `length` bytes).
pub fn sub_node_vcn(entry: &[u8]) -> Option<u64> {
    let t = entry.len().checked_sub(8)?;
    Some(U64::read_from_bytes(&entry[t..]).ok()?.get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_and_short_input() {
        let mut e = [0u8; 32];
        e[0] = 5;
        e[8] = 32;
        e[10] = 4;
        e[12] = ENTRY_SUBNODE as u8;
        e[16..20].copy_from_slice(b"keys");
        e[24] = 7;
        let h = IndexEntryHeader::view(&e).unwrap();
        assert_eq!((h.file_record(), h.length.get(), h.flags.get()), (5, 32, 1));
        assert_eq!(key(&e), Some(&b"keys"[..]));
        assert_eq!(sub_node_vcn(&e), Some(7));
        assert!(key(&e[..19]).is_none());
        assert!(IndexEntryHeader::view(&e[..15]).is_none());
        assert!(sub_node_vcn(&e[..7]).is_none());
        let h = IndexEntryHeader {
            indexed: IndexEntryHeader::data_field(20, 20),
            length: 40.into(),
            key_length: 4.into(),
            flags: 0.into(),
            reserved: 0.into(),
        };
        assert_eq!(h.data(), (20, 20));
        let mut b = [0u8; 0x28];
        b[0..4].copy_from_slice(b"INDX");
        b[16] = 9;
        b[0x18] = 0x28;
        let (bh, rest) = IndexBlockHeader::ref_from_prefix(&b[..]).unwrap();
        assert_eq!(bh.vcn.get(), 9);
        let (nh, _) = IndexHeader::ref_from_prefix(rest).unwrap();
        assert_eq!(nh.entries_offset.get(), 0x28);
        assert!(IndexHeader::ref_from_prefix(&rest[..15]).is_err());
        assert!(IndexRoot::ref_from_prefix(&b[..15]).is_err());
    }
}
