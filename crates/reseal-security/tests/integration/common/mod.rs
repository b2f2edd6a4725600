//! Shared helpers for the corpus tests.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};

use reseal_security::{sid_positions, SecurityDescriptor, Sid};

/// The shared corpus; `None` (skip) only when it is missing and skipping is allowed
/// (`RESEAL_ALLOW_SKIP=1`, see [`reseal_tests::env`]); otherwise panics.
pub fn corpus_dir() -> Option<PathBuf> {
    reseal_tests::corpus_or_skip()
}

/// `true` when oracle tool `tool` is installed; panics (naming its package) when missing unless
/// skipping is allowed.
pub fn require_or_skip(tool: &str) -> bool {
    reseal_tests::have_tool(tool)
}

/// Read a corpus file, decompressing `.xz`, `.gz`, `.bz2`.
pub fn decompress(p: &Path) -> Vec<u8> {
    let f = std::fs::File::open(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut out = Vec::new();
    let name = p.to_string_lossy();
    if name.ends_with(".xz") {
        xz2::read::XzDecoder::new(f).read_to_end(&mut out).unwrap();
    } else if name.ends_with(".gz") {
        flate2::read::GzDecoder::new(f)
            .read_to_end(&mut out)
            .unwrap();
    } else if name.ends_with(".bz2") {
        bzip2::read::BzDecoder::new(f)
            .read_to_end(&mut out)
            .unwrap();
    } else {
        std::io::BufReader::new(f).read_to_end(&mut out).unwrap();
    }
    out
}

/// The checks every corpus descriptor must pass:
/// * parse, and `to_bytes()` reproduces the input byte for byte;
/// * `sid_positions` points at parseable SIDs equal to the structural ones, and a no-op
///   `map_sids` / identity in-place patch changes nothing;
/// * SDDL out then in gives the normalized descriptor back (when SDDL can express it).
pub fn check_descriptor(bytes: &[u8], what: &str) {
    let sd = SecurityDescriptor::parse(bytes).unwrap_or_else(|e| panic!("{what}: parse: {e}"));
    let out = sd
        .to_bytes()
        .unwrap_or_else(|e| panic!("{what}: serialize: {e}"));
    assert_eq!(out, bytes, "{what}: round trip differs");
    // canonical bytes parse back to the same descriptor
    let canon = sd.to_canonical_bytes().unwrap();
    assert_eq!(
        SecurityDescriptor::parse(&canon).unwrap(),
        sd,
        "{what}: canonical form differs"
    );
    // SID positions
    let pos = sid_positions(bytes).unwrap_or_else(|e| panic!("{what}: sid_positions: {e}"));
    let mut structural = Vec::new();
    structural.extend(sd.owner.clone());
    structural.extend(sd.group.clone());
    for acl in [&sd.sacl, &sd.dacl].into_iter().flatten() {
        structural.extend(acl.aces.iter().filter_map(|a| a.sid().cloned()));
        for a in &acl.aces {
            if let reseal_security::Ace::AccessAllowedCompound(c) = a {
                structural.push(c.client.clone());
            }
        }
    }
    for r in &pos {
        let s = Sid::from_bytes(&bytes[r.clone()])
            .unwrap_or_else(|e| panic!("{what}: position {r:?}: {e}"));
        assert_eq!(s.len(), r.len(), "{what}: range {r:?}");
    }
    assert!(pos.len() <= structural.len() + 64, "{what}");
    for s in &structural {
        assert!(
            pos.iter()
                .any(|r| &bytes[r.clone()] == s.to_bytes().as_slice()),
            "{what}: SID {s} has no position"
        );
    }
    // Rewriting every SID to a same-length different SID and back restores the bytes.
    let mut m = sd.clone();
    let flip = |s: &Sid| -> Option<Sid> {
        let mut subs = s.sub_authorities().to_vec();
        if let Some(last) = subs.last_mut() {
            *last ^= 0x5A5A_5A5A;
        }
        Sid::new(s.authority(), &subs).ok()
    };
    m.map_sids(flip);
    let changed = m.to_bytes().unwrap();
    assert_eq!(
        changed.len(),
        bytes.len(),
        "{what}: same-length rewrite changed the size"
    );
    for (i, (a, b)) in changed.iter().zip(bytes).enumerate() {
        if a != b {
            assert!(
                pos.iter().any(|r| r.contains(&i)),
                "{what}: byte {i} changed outside a SID position"
            );
        }
    }
    m.map_sids(flip);
    assert_eq!(
        m.to_bytes().unwrap(),
        bytes,
        "{what}: rewrite and back differs"
    );
    // SDDL
    match sd.to_sddl() {
        Ok(text) => {
            let back = SecurityDescriptor::from_sddl(&text)
                .unwrap_or_else(|e| panic!("{what}: from_sddl({text}): {e}"));
            assert_eq!(back.normalized(), sd.normalized(), "{what}: SDDL {text}");
            assert_eq!(back.to_sddl().unwrap(), text, "{what}: SDDL not stable");
        }
        // Compound ACEs (type 0x04) have no SDDL form at all.
        Err(reseal_security::Error::Unsupported(m)) if m.contains("0x04") => {}
        Err(e) => panic!("{what}: to_sddl: {e}"),
    }
}
