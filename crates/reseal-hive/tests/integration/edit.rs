//! Editing real hives (SAM, SECURITY, SYSTEM, NTUSER): the results stay readable by
//! hivexregedit, regipy and regfexport, `check` is clean, and reading back gives the edits.
use crate::common;

use reseal_hive::{Hive, REG_BINARY, REG_DWORD, REG_SZ};

fn first_key_with_subkeys(h: &Hive) -> String {
    let root = h.root().expect("root");
    for k in root.subkeys().expect("list") {
        let k = k.expect("key");
        if k.subkey_count() > 0 {
            return k.name();
        }
    }
    root.subkeys()
        .expect("list")
        .next()
        .expect("a subkey")
        .expect("key")
        .name()
}

fn generic_edits(label: &str, bytes: Vec<u8>) -> Vec<u8> {
    let mut h = Hive::from_bytes(bytes).expect("open");
    h.make_writable().expect("writable");
    let root = h.root_offset();
    // 1. rename a top-level key with subkeys (Latin-1 + non-Latin-1 characters)
    let victim = first_key_with_subkeys(&h);
    let before = h.open_path(&victim).expect("victim").subkey_count();
    let k = h.open_path(&victim).expect("victim").offset();
    let new_name = format!("{victim}_ReSeal-Äé✓");
    let k = h.rename_key(k, &new_name).expect("rename");
    assert_eq!(
        h.open_path(&new_name).expect("renamed").subkey_count(),
        before
    );
    // 2. security: replace the renamed key's descriptor by a modified copy
    let mut sd = h.security_of(k).expect("sd");
    let last = sd.len() - 1;
    sd[last] ^= 0x5A;
    h.set_security(k, &sd).expect("set security");
    assert_eq!(h.security_of(k).expect("sd"), sd);
    // 3. values of every size class on a new key with a Unicode name
    let nk = h.create_path("ReSeal\\Sub\\Ŧést ключ").expect("create");
    let big: Vec<u8> = (0..40_000u32).map(|i| (i * 7 % 251) as u8).collect();
    h.set_value(nk, "big", REG_BINARY, &big).expect("big");
    h.set_value(
        nk,
        "",
        REG_SZ,
        &reseal_hive::key_value::encode_sz("héllo wörld ✓"),
    )
    .expect("default");
    h.set_value(nk, "dw", REG_DWORD, &7u32.to_le_bytes())
        .expect("dword");
    h.set_value(nk, "small", 0x1234_5678, &[1, 2, 3])
        .expect("odd type");
    h.set_value(nk, "gone", REG_BINARY, &[9; 100])
        .expect("gone");
    assert!(h.delete_value(nk, "GONE").expect("delete"));
    h.set_class_name(nk, Some("ReSealClass")).expect("class");
    // 4. change an existing value of the root or first key with values
    h.set_value(root, "reseal-root", REG_BINARY, &[0xAB; 17])
        .expect("root value");
    h.commit().expect("commit");
    let out = h.into_bytes();
    let h = Hive::from_bytes(out.clone()).expect("reopen");
    let k = h
        .open_path("reseal\\SUB\\ŧÉST КЛЮЧ")
        .expect("case-insensitive path");
    assert_eq!(
        k.value("BIG")
            .expect("v")
            .expect("big")
            .data()
            .expect("data")
            .as_ref(),
        &big[..]
    );
    assert_eq!(
        k.value("")
            .expect("v")
            .expect("default")
            .as_string()
            .expect("s"),
        "héllo wörld ✓"
    );
    assert_eq!(
        k.value("dw")
            .expect("v")
            .expect("dw")
            .as_u32()
            .expect("u32"),
        Some(7)
    );
    assert_eq!(
        k.value("small").expect("v").expect("small").data_type(),
        0x1234_5678
    );
    assert!(k.value("gone").expect("v").is_none());
    assert_eq!(
        k.class_name().expect("class").as_deref(),
        Some("ReSealClass")
    );
    common::verify_with_oracles(label, &out);
    out
}

#[test]
fn edit_sam_security_system_ntuser() {
    for f in [
        "regipy/SAM.xz",
        "aiowinreg/win2016_64/security.reg",
        "regipy/NTUSER.DAT.xz",
        "plaso/regf/UsrClass.dat.xz",
        "aiowinreg/nt/system.reg",
    ] {
        let Some(b) = common::load(f) else { return };
        let orig_len = b.len();
        let out = generic_edits(f, b);
        eprintln!("{f}: {orig_len} -> {} bytes", out.len());
    }
}

/// The 12 MB Windows 7 SYSTEM hive (slow: regipy walks 30k keys in Python).
#[test]
#[ignore = "slow (about 90 s): run with --ignored"]
fn edit_big_system() {
    let Some(b) = common::load("regipy/SYSTEM.xz") else {
        return;
    };
    generic_edits("regipy/SYSTEM.xz", b);
}

/// The machine-SID style edit on SAM: rename the Members\<SID> key, patch V.
#[test]
fn sam_sid_rename() {
    let Some(b) = common::load("regipy/SAM.xz") else {
        return;
    };
    let mut h = Hive::from_bytes(b).expect("open");
    h.make_writable().expect("w");
    let members = h
        .open_path("SAM\\Domains\\Builtin\\Aliases\\Members")
        .expect("members");
    let sid_key = members
        .subkeys()
        .expect("l")
        .map(|k| k.expect("k"))
        .find(|k| k.name().starts_with("S-1-5-21-"))
        .expect("sid key");
    let (old_name, off) = (sid_key.name(), sid_key.offset());
    let rids: Vec<String> = sid_key
        .subkeys()
        .expect("l")
        .map(|k| k.expect("k").name())
        .collect();
    let new_name = "S-1-5-21-1111111111-2222222222-3333333333".to_string();
    h.rename_key(off, &new_name).expect("rename");
    let acct = h.open_path("SAM\\Domains\\Account").expect("acct").offset();
    let mut v = h
        .open_path("SAM\\Domains\\Account")
        .expect("a")
        .value("V")
        .expect("v")
        .expect("V")
        .data()
        .expect("d")
        .into_owned();
    let n = v.len();
    v[n - 12..].copy_from_slice(&[0x11; 12]);
    h.set_value(acct, "V", REG_BINARY, &v).expect("set V");
    h.commit().expect("commit");
    let out = h.into_bytes();
    let h2 = Hive::from_bytes(out.clone()).expect("reopen");
    assert!(h2
        .open_path(&format!(
            "SAM\\Domains\\Builtin\\Aliases\\Members\\{old_name}"
        ))
        .is_err());
    let k = h2
        .open_path(&format!(
            "SAM\\Domains\\Builtin\\Aliases\\Members\\{new_name}"
        ))
        .expect("new");
    let rids2: Vec<String> = k
        .subkeys()
        .expect("l")
        .map(|k| k.expect("k").name())
        .collect();
    assert_eq!(rids, rids2);
    common::verify_with_oracles("SAM sid rename", &out);
}

/// Lists that grow past one leaf become ri indexes; renames and deletes inside ri lists
/// keep them sorted (yarp ManySubkeysHive has 5000 subkeys under one key).
#[test]
fn ri_lists_grow_split_and_shrink() {
    let Some(b) = common::load("yarp/ManySubkeysHive.xz") else {
        return;
    };
    let mut h = Hive::from_bytes(b).expect("open");
    h.make_writable().expect("w");
    let big = h.open_path("key_with_many_subkeys").expect("key").offset();
    for i in 0..300 {
        h.create_key(big, &format!("new-{i:04}")).expect("create");
    }
    let k = h
        .open_path("key_with_many_subkeys\\1234")
        .expect("k")
        .offset();
    h.rename_key(k, "zzzz-renamed").expect("rename");
    for i in 0..200 {
        let k = h
            .open_path(&format!("key_with_many_subkeys\\{}", i * 7 + 1))
            .expect("k")
            .offset();
        h.delete_key(k, true).expect("delete");
    }
    // a fresh key growing from 0 to 1200 children: lh leaf, then ri of leaves
    let root = h.root_offset();
    let fresh = h.create_key(root, "fresh").expect("fresh");
    for i in (0..1200).rev() {
        h.create_key(fresh, &format!("K{i:05}")).expect("create");
    }
    h.commit().expect("commit");
    let out = h.into_bytes();
    let h = Hive::from_bytes(out.clone()).expect("reopen");
    assert_eq!(
        h.open_path("key_with_many_subkeys")
            .expect("k")
            .subkey_count(),
        5000 + 300 - 200
    );
    assert_eq!(h.open_path("fresh").expect("k").subkey_count(), 1200);
    let list = h.open_path("fresh").expect("k").subkey_list_offset();
    assert_eq!(&h.cell(list, "list").expect("cell")[..2], b"ri");
    common::verify_with_oracles("ManySubkeysHive edited", &out);
    // one more key in a 5100-entry ri list rewrites one leaf, not the whole list
    let mut h = Hive::from_bytes(out).expect("reopen");
    h.make_writable().expect("w");
    let big = h.open_path("key_with_many_subkeys").expect("key").offset();
    h.create_key(big, "2500x").expect("create");
    h.commit().expect("commit");
    let total: usize = h.dirty_ranges().iter().map(|r| r.len()).sum();
    assert!(
        total < 9000,
        "{total} dirty bytes for one key in an ri list"
    );
    common::verify_with_oracles("ManySubkeysHive one more key", h.as_bytes());
}

/// An edit touches few bytes: dirty ranges stay small and cover every changed byte.
#[test]
fn dirty_ranges_cover_exactly_the_changes() {
    let Some(b) = common::load("regipy/NTUSER.DAT.xz") else {
        return;
    };
    let mut h = Hive::from_bytes(b.clone()).expect("open");
    h.make_writable().expect("w");
    let k = h.open_path("Software").expect("k").offset();
    h.set_value(k, "ReSeal", REG_DWORD, &1u32.to_le_bytes())
        .expect("set");
    h.commit().expect("commit");
    let ranges = h.dirty_ranges();
    let total: usize = ranges.iter().map(|r| r.len()).sum();
    assert!(
        total < 4096,
        "{total} dirty bytes for one value: {ranges:?}"
    );
    let out = h.as_bytes();
    assert_eq!(out.len(), b.len());
    for (i, (x, y)) in b.iter().zip(out).enumerate() {
        if x != y {
            assert!(
                ranges.iter().any(|r| r.contains(&i)),
                "byte {i:#x} changed outside dirty ranges"
            );
        }
    }
}

/// A hive built from nothing is accepted by every oracle.
#[test]
fn new_empty_hive_is_valid() {
    let Some(b) = common::load("regipy/SAM.xz") else {
        return;
    };
    let sd = Hive::from_bytes(b)
        .expect("sam")
        .security_of(CellOffsetRoot::root())
        .expect("sd");
    let mut h = Hive::new_empty("ReSealRoot", &sd).expect("new");
    let k = h.create_path("A\\B").expect("create");
    h.set_value(k, "v", REG_SZ, &reseal_hive::key_value::encode_sz("x"))
        .expect("set");
    h.set_value(k, "big", REG_BINARY, &vec![7u8; 50_000])
        .expect("big");
    h.commit().expect("commit");
    assert_eq!(h.root().expect("root").name(), "ReSealRoot");
    if let Ok(p) = std::env::var("RESEAL_DUMP_NEW") {
        std::fs::write(p, h.as_bytes()).expect("dump");
    }
    common::verify_with_oracles("new_empty", h.as_bytes());
}

struct CellOffsetRoot;
impl CellOffsetRoot {
    fn root() -> reseal_hive::CellOffset {
        let b = common::load("regipy/SAM.xz").expect("sam");
        Hive::from_bytes(b).expect("sam").root_offset()
    }
}
