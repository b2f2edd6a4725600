//! `$LogFile` restart pages: the page header (`RSTR`/`CHKD`) and the start of the restart area
//! it points to. Reference: FORMATS.md C.9.

use zerocopy::little_endian::{I16, U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

use super::multi_sector::MultiSectorHeader;

/// Header of a restart page (at 0 and at the system page size); the update sequence array
/// follows at 30.
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RestartPageHeader {
    /// Signature `RSTR` (or `CHKD` after chkdsk) and the update sequence array position.
    pub multi_sector: MultiSectorHeader,
    /// LSN of the last chkdsk.
    pub chkdsk_lsn: U64,
    /// System page size (the page's own size, a power of two).
    pub system_page_size: U32,
    /// Log page size.
    pub log_page_size: U32,
    /// Offset of the restart area from the page start (8-aligned).
    pub restart_area_offset: U16,
    /// LFS minor version (1 with major 1; 0 with major 2).
    pub minor_version: I16,
    /// LFS major version (1, or 2 for a Windows 8+ log).
    pub major_version: I16,
}

/// Size of [`RestartPageHeader`].
pub const PAGE_HEADER_LEN: usize = 30;
const _: () = assert!(core::mem::size_of::<RestartPageHeader>() == PAGE_HEADER_LEN);

/// First 16 bytes of the restart area: what the clean-state decision reads (the rest, sequence
/// number bits, lengths and client array, is not used here).
#[derive(FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct RestartArea {
    /// Current LSN (the page with the higher one is the newer).
    pub current_lsn: U64,
    /// Number of log clients.
    pub log_clients: U16,
    /// Head of the free client list.
    pub client_free_list: U16,
    /// Head of the in-use client list ([`NO_CLIENT`] when none is in use).
    pub client_in_use_list: U16,
    /// Restart area flags ([`RESTART_VOLUME_IS_CLEAN`]).
    pub flags: U16,
}

/// Size of [`RestartArea`].
pub const RESTART_AREA_LEN: usize = 16;
const _: () = assert!(core::mem::size_of::<RestartArea>() == RESTART_AREA_LEN);

/// Client list value: no client.
pub const NO_CLIENT: u16 = 0xFFFF;
/// Restart area flag: the volume was shut down cleanly.
pub const RESTART_VOLUME_IS_CLEAN: u16 = 0x0002;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_short_input() {
        let mut p = [0u8; 64];
        p[..4].copy_from_slice(b"RSTR");
        p[4] = 30;
        p[17] = 0x10;
        p[24] = 48;
        p[26] = 0xFF;
        p[27] = 0xFF;
        p[28] = 2;
        p[48] = 5;
        p[60] = 0xFF;
        p[61] = 0xFF;
        let (h, _) = RestartPageHeader::ref_from_prefix(&p[..]).unwrap();
        assert_eq!(h.system_page_size.get(), 4096);
        assert_eq!((h.major_version.get(), h.minor_version.get()), (2, -1));
        let at = usize::from(h.restart_area_offset.get());
        let (ra, _) = RestartArea::ref_from_prefix(&p[at..]).unwrap();
        assert_eq!(
            (ra.current_lsn.get(), ra.client_in_use_list.get()),
            (5, NO_CLIENT)
        );
        assert!(RestartPageHeader::ref_from_prefix(&p[..29]).is_err());
        assert!(RestartArea::ref_from_prefix(&p[49..]).is_err());
    }
}
