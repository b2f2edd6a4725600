//! A new, empty hive file: base block + one 4 KiB hbin holding the root key (nk) and its
//! security cell (sk).
//!
//! `reseal-hive` has no constructor for an empty hive yet; this module is deliberately
//! self-contained so it can move into `reseal-hive` (as `Hive::new_empty`) unchanged.
//! Layout (FORMATS.md B, the regf specification): base block signature `regf`, equal
//! sequence numbers, version 1.5, file type 0 (primary), format 1, root cell at hbin offset
//! 0x20, hive-bins size 4096, clustering factor 1, checksum = XOR of the first 127 dwords;
//! the hbin header is 32 bytes; the root nk carries `KEY_HIVE_ENTRY | KEY_NO_DELETE |
//! KEY_COMP_NAME` (ASCII names) and points at one sk whose flink/blink point to itself.

use reseal_hive::base_block::{self, BASE_BLOCK_SIZE};

use crate::{Error, Result};

const HBIN_SIZE: usize = 4096;
const HBIN_HEADER: usize = 0x20;
const NK_FIXED: usize = 0x4C;
const SK_FIXED: usize = 0x14;

/// Default descriptor of a new hive's root key, `O:BAG:SYD:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)(A;CI;KR;;;BU)`,
/// in the canonical self-relative layout Windows writes.
pub fn default_root_descriptor() -> Vec<u8> {
    // Built through the security crate so the bytes are exactly what it parses back.
    reseal_security::SecurityDescriptor::from_sddl(
        "O:BAG:SYD:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)(A;CI;KR;;;BU)",
    )
    .and_then(|sd| sd.to_canonical_bytes())
    .unwrap_or_default()
}

fn put_u16(b: &mut [u8], o: usize, v: u16) {
    b[o..o + 2].copy_from_slice(&v.to_le_bytes());
}
fn put_u32(b: &mut [u8], o: usize, v: u32) {
    b[o..o + 4].copy_from_slice(&v.to_le_bytes());
}
fn put_u64(b: &mut [u8], o: usize, v: u64) {
    b[o..o + 8].copy_from_slice(&v.to_le_bytes());
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// An empty hive whose root key is `root_name`, with [`default_root_descriptor`].
///
/// # Errors
/// As [`empty_hive_with_security`].
pub fn empty_hive(root_name: &str) -> Result<Vec<u8>> {
    empty_hive_with_security(root_name, &default_root_descriptor())
}

/// An empty hive whose root key is `root_name` and whose root security descriptor is
/// `descriptor` (self-relative). `timestamp` fields are left at 0 (FILETIME "never"), so the
/// output is deterministic.
///
/// # Errors
/// [`Error::Invalid`] when the name is empty, longer than 255 characters, contains a
/// backslash, or the name + descriptor do not fit in one 4 KiB hbin; or the descriptor is
/// rejected by `reseal_hive::validate_descriptor`.
pub fn empty_hive_with_security(root_name: &str, descriptor: &[u8]) -> Result<Vec<u8>> {
    let bad = |r: String| Error::Invalid {
        what: "new hive",
        reason: r,
    };
    if root_name.is_empty() || root_name.chars().count() > 255 || root_name.contains('\\') {
        return Err(bad(format!(
            "root key name {root_name:?} is not a valid key name"
        )));
    }
    reseal_hive::validate_descriptor(descriptor)
        .map_err(|e| bad(format!("root descriptor: {e}")))?;
    // Name: compressed (one byte per char) when every char is Latin-1, else UTF-16LE.
    let (name_bytes, comp): (Vec<u8>, bool) = if root_name.chars().all(|c| (c as u32) < 0x100) {
        (root_name.chars().map(|c| c as u8).collect(), true)
    } else {
        (
            root_name
                .encode_utf16()
                .flat_map(|u| u.to_le_bytes())
                .collect(),
            false,
        )
    };
    let nk_cell = align8(4 + NK_FIXED + name_bytes.len());
    let sk_cell = align8(4 + SK_FIXED + descriptor.len());
    let nk_off = HBIN_HEADER; // relative to the first hbin
    let sk_off = nk_off + nk_cell;
    let free_off = sk_off + sk_cell;
    if free_off + 8 > HBIN_SIZE {
        return Err(bad("root name and descriptor do not fit in one hbin".into()));
    }
    let mut f = vec![0u8; BASE_BLOCK_SIZE + HBIN_SIZE];
    // Base block.
    f[0..4].copy_from_slice(b"regf");
    put_u32(&mut f, base_block::SEQ1_OFFSET, 1);
    put_u32(&mut f, base_block::SEQ2_OFFSET, 1);
    put_u32(&mut f, base_block::MAJOR_OFFSET, 1);
    put_u32(&mut f, base_block::MINOR_OFFSET, 5);
    put_u32(&mut f, base_block::FILE_TYPE_OFFSET, 0);
    put_u32(&mut f, 32, 1); // file format: direct memory load
    put_u32(&mut f, base_block::ROOT_OFFSET, nk_off as u32);
    put_u32(&mut f, base_block::HBINS_SIZE_OFFSET, HBIN_SIZE as u32);
    put_u32(&mut f, base_block::CLUSTERING_OFFSET, 1);
    // File name (last 31 UTF-16 units of the root name, for tools that show it).
    let units: Vec<u16> = root_name.encode_utf16().collect();
    let tail = &units[units.len().saturating_sub(31)..];
    for (i, u) in tail.iter().enumerate() {
        put_u16(&mut f, 48 + 2 * i, *u);
    }
    let sum = base_block::checksum(&f[..512]);
    put_u32(&mut f, base_block::CHECKSUM_OFFSET, sum);
    // hbin header.
    let h = BASE_BLOCK_SIZE;
    f[h..h + 4].copy_from_slice(b"hbin");
    put_u32(&mut f, h + 4, 0);
    put_u32(&mut f, h + 8, HBIN_SIZE as u32);
    // Root nk.
    let n = h + nk_off;
    put_u32(&mut f, n, (nk_cell as i32).wrapping_neg() as u32);
    let k = n + 4;
    f[k..k + 2].copy_from_slice(b"nk");
    let flags: u16 = 0x0004 | 0x0008 | if comp { 0x0020 } else { 0 };
    put_u16(&mut f, k + 2, flags);
    put_u64(&mut f, k + 4, 0);
    put_u32(&mut f, k + 0x10, u32::MAX); // parent: none
    put_u32(&mut f, k + 0x1C, u32::MAX); // subkey list
    put_u32(&mut f, k + 0x20, u32::MAX); // volatile subkey list
    put_u32(&mut f, k + 0x28, u32::MAX); // value list
    put_u32(&mut f, k + 0x2C, sk_off as u32);
    put_u32(&mut f, k + 0x30, u32::MAX); // class name
    put_u16(&mut f, k + 0x48, name_bytes.len() as u16);
    f[k + NK_FIXED..k + NK_FIXED + name_bytes.len()].copy_from_slice(&name_bytes);
    // sk.
    let s = h + sk_off;
    put_u32(&mut f, s, (sk_cell as i32).wrapping_neg() as u32);
    let s4 = s + 4;
    f[s4..s4 + 2].copy_from_slice(b"sk");
    put_u32(&mut f, s4 + 4, sk_off as u32);
    put_u32(&mut f, s4 + 8, sk_off as u32);
    put_u32(&mut f, s4 + 12, 1);
    put_u32(&mut f, s4 + 16, descriptor.len() as u32);
    f[s4 + SK_FIXED..s4 + SK_FIXED + descriptor.len()].copy_from_slice(descriptor);
    // The rest of the hbin is one free cell.
    put_u32(&mut f, h + free_off, (HBIN_SIZE - free_off) as u32);
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_hive_opens_and_edits() {
        let bytes = empty_hive("S-1-5-21-1-2-3-1001_Classes").unwrap();
        let mut h = reseal_hive::Hive::from_bytes(bytes).unwrap();
        assert_eq!(h.root().unwrap().name(), "S-1-5-21-1-2-3-1001_Classes");
        assert!(reseal_hive::check(&h)
            .iter()
            .all(|p| p.severity != reseal_hive::Severity::Error));
        h.make_writable().unwrap();
        let k = h.create_path("A\\B").unwrap();
        h.set_value(k, "v", reseal_hive::REG_DWORD, &7u32.to_le_bytes())
            .unwrap();
        h.commit().unwrap();
        let h2 = reseal_hive::Hive::from_bytes(h.into_bytes()).unwrap();
        let v = h2.open_path("a\\b").unwrap().value("V").unwrap().unwrap();
        assert_eq!(v.as_u32().unwrap(), Some(7));
    }

    #[test]
    fn rejects_bad_names() {
        assert!(empty_hive("").is_err());
        assert!(empty_hive("a\\b").is_err());
    }
}
