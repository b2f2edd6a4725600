//! Definitions layer: on-disk structures of partition tables, disk-image containers and boot
//! sectors as `zerocopy` views.
//!
//! Each structure is a `#[repr(C)]` struct of fixed-endian fields (little-endian for MBR, GPT,
//! VHDX and boot sectors; big-endian for VHD and qcow2) named after its specification, read
//! with `ref_from_prefix` / `read_from_prefix`, so short input is an `Err` or `None`, never a
//! panic; writers fill the same structs and copy them out with `as_bytes` / `write_to_prefix`.

pub mod boot_sector;
pub mod gpt;
pub mod mbr;
pub mod qcow2;
pub mod vhd;
pub mod vhdx;

#[cfg(test)]
mod tests {
    //! Every prefix of a valid structure given to the parsers built on these views is an error
    //! (or "not this format"), never a panic.

    #[test]
    fn every_prefix_of_a_valid_structure_is_handled() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("d.vhd");
        crate::vhd::create_dynamic(&p, 8 << 20, 2 << 20).unwrap();
        let vhd = std::fs::read(&p).unwrap();
        for n in 0..512 {
            assert!(crate::vhd::Footer::parse(&vhd[..n], 0).is_err());
        }
        assert!(crate::vhd::Footer::parse(&vhd[..512], 0).is_ok());

        let p = dir.path().join("d.vhdx");
        crate::vhdx::create_dynamic(&p, 8 << 20, 1 << 20).unwrap();
        let vhdx = std::fs::read(&p).unwrap();
        let h = &vhdx[64 * 1024..68 * 1024];
        for n in 0..4096 {
            assert!(crate::vhdx::Header::parse(&h[..n], 0).is_err());
        }
        assert!(crate::vhdx::Header::parse(h, 0).is_ok());

        let p = dir.path().join("d.qcow2");
        crate::qcow2::create(&p, 8 << 20, 65536).unwrap();
        let q = std::fs::read(&p).unwrap();
        for n in 0..=104 {
            assert!(crate::qcow2::Header::parse(&q[..n], q.len() as u64).is_err());
        }
        assert!(crate::qcow2::Header::parse(&q[..112], q.len() as u64).is_ok());
        for n in 0..512 {
            crate::qcow2::parse_extensions(&q[..n], 112, 65536).ok();
        }

        let mut ntfs = [0u8; 512];
        ntfs[3..11].copy_from_slice(b"NTFS    ");
        for n in 0..512 {
            assert!(crate::probe::NtfsBoot::parse(&ntfs[..n], 0).is_err());
            assert_eq!(
                crate::probe::probe_sector(&ntfs[..n]).unwrap(),
                crate::probe::FsInfo::Unknown
            );
        }
    }
}
