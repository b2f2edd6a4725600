//! The key security ("sk") cell header; the self-relative security descriptor follows it.
//!
//! Reference: FORMATS.md B.3 ("sk": 0 "sk"; 2 reserved; 4 Flink; 8 Blink; 12 reference count;
//! 16 SD length; 20 SD).

use zerocopy::little_endian::{U16, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// Signature of a key security cell.
pub const SIGNATURE: [u8; 2] = *b"sk";

/// Fixed part of a key security cell (cell data, after the 4-byte size).
#[derive(Debug, Clone, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct SkHeader {
    /// "sk" ([`SIGNATURE`]).
    pub signature: [u8; 2],
    /// Reserved.
    pub reserved: U16,
    /// Next sk cell of the circular list.
    pub flink: U32,
    /// Previous sk cell of the circular list.
    pub blink: U32,
    /// Number of key nodes pointing to this cell.
    pub reference_count: U32,
    /// Length of the security descriptor that follows.
    pub security_descriptor_size: U32,
}

/// Size of [`SkHeader`]: the descriptor starts at this offset in the cell data.
pub const HEADER_SIZE: usize = core::mem::size_of::<SkHeader>();

const _: () = assert!(HEADER_SIZE == 20);

impl SkHeader {
    /// The header of a security cell linked to `flink`/`blink`, used by `reference_count` keys,
    /// for a descriptor of `descriptor_size` bytes.
    pub fn new(flink: u32, blink: u32, reference_count: u32, descriptor_size: u32) -> SkHeader {
        SkHeader {
            signature: SIGNATURE,
            reserved: U16::new(0),
            flink: U32::new(flink),
            blink: U32::new(blink),
            reference_count: U32::new(reference_count),
            security_descriptor_size: U32::new(descriptor_size),
        }
    }
}
