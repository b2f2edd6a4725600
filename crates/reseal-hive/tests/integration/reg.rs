//! `.reg` export format details and import (v5 UTF-16 and REGEDIT4), checked by hivexregedit.
use crate::common;

use reseal_hive::reg::{export, export_utf16, format_value, import, ImportStats};
use reseal_hive::Hive;

#[test]
fn value_lines_wrap_like_regedit() {
    let mut s = String::new();
    format_value("Data", 3, &[0xAB; 100], &mut s);
    let lines: Vec<&str> = s.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert!(lines.len() > 1);
    for l in &lines[..lines.len() - 1] {
        assert!(l.len() <= 80 && l.ends_with(",\\"), "{l:?}");
    }
    // regedit: first line `"Data"=hex:` + 22 bytes (77 chars) + `\`, then 25 bytes per line
    assert_eq!(lines[0].len(), 78, "{:?}", lines[0]);
    assert_eq!(lines[1], format!("  {}\\", "ab,".repeat(25)));
    for l in &lines[1..] {
        assert!(l.starts_with("  ") && !l.starts_with("   "), "{l:?}");
    }
    let mut s = String::new();
    format_value("", 1, &reseal_hive::key_value::encode_sz("a\"b\\c"), &mut s);
    assert_eq!(s, "@=\"a\\\"b\\\\c\"\r\n");
    let mut s = String::new();
    format_value("d", 4, &42u32.to_le_bytes(), &mut s);
    assert_eq!(s, "\"d\"=dword:0000002a\r\n");
    let mut s = String::new();
    format_value("m", 7, &[0x41, 0, 0, 0, 0, 0], &mut s);
    assert_eq!(s, "\"m\"=hex(7):41,00,00,00,00,00\r\n");
}

#[test]
fn export_utf16_has_bom_and_header() {
    let Some(b) = common::load("regipy/SAM.xz") else {
        return;
    };
    let h = Hive::from_bytes(b).expect("open");
    let u = export_utf16(&h, "SAM\\Domains", "HKEY_LOCAL_MACHINE\\SAM").expect("export");
    assert_eq!(&u[..2], &[0xFF, 0xFE]);
    let text = common::decode_reg(&u);
    assert!(text.starts_with("Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SAM\\SAM\\Domains]\r\n"), "{}", &text[..200]);
}

fn fresh() -> Hive {
    let mut h = Hive::from_bytes(common::load("hivex/minimal").expect("corpus")).expect("open");
    h.make_writable().expect("w");
    h
}

#[test]
fn import_v5_utf16_and_regedit4() {
    let mut h = fresh();
    let text = "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\ReSeal\\A]\r\n\"s\"=\"héllo ✓\"\r\n\"d\"=dword:00000010\r\n\"b\"=hex:01,02,\\\r\n  03\r\n\"x\"=hex(2):25,00,00,00\r\n@=\"def\"\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\ReSeal\\B\\C]\r\n\"gone\"=dword:00000001\r\n\"gone\"=-\r\n\r\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\ReSeal\\D]\r\n[-HKEY_LOCAL_MACHINE\\SOFTWARE\\ReSeal\\D]\r\n";
    let mut u: Vec<u8> = vec![0xFF, 0xFE];
    for c in text.encode_utf16() {
        u.extend(c.to_le_bytes());
    }
    let st = import(&mut h, &u, "HKEY_LOCAL_MACHINE\\SOFTWARE").expect("import");
    assert_eq!(
        st,
        ImportStats {
            keys: 3,
            keys_deleted: 1,
            values_set: 6,
            values_deleted: 1
        }
    );
    let r4 = "REGEDIT4\n\n[HKEY_LOCAL_MACHINE\\SOFTWARE\\ReSeal\\E]\n\"v\"=\"x\"\n";
    import(&mut h, r4.as_bytes(), "HKEY_LOCAL_MACHINE\\SOFTWARE\\").expect("regedit4");
    h.commit().expect("commit");
    let h = Hive::from_bytes(h.into_bytes()).expect("reopen");
    let a = h.open_path("ReSeal\\A").expect("A");
    assert_eq!(
        a.value("s").expect("v").expect("s").as_string().expect("s"),
        "héllo ✓"
    );
    assert_eq!(
        a.value("b")
            .expect("v")
            .expect("b")
            .data()
            .expect("d")
            .as_ref(),
        &[1, 2, 3]
    );
    assert_eq!(a.value("x").expect("v").expect("x").data_type(), 2);
    assert!(h
        .open_path("ReSeal\\B\\C")
        .expect("C")
        .value("gone")
        .expect("v")
        .is_none());
    assert!(h.open_path("ReSeal\\D").is_err());
    assert!(h.open_path("reseal\\e").is_ok());
    common::verify_with_oracles("import", h.as_bytes());
}

/// Export a real hive, import it into an empty one, export again: same content.
#[test]
fn export_import_round_trip() {
    let Some(b) = common::load("aiowinreg/win2016_64/sam.reg") else {
        return;
    };
    let src = Hive::from_bytes(b).expect("open");
    let text = export(&src, "", "HKEY_LOCAL_MACHINE\\X").expect("export");
    let mut dst = fresh();
    import(&mut dst, text.as_bytes(), "HKEY_LOCAL_MACHINE\\X").expect("import");
    dst.commit().expect("commit");
    let a = common::our_model(&src).expect("model");
    let b = common::our_model(&dst).expect("model");
    // the fresh hive's root keeps its own (empty) root values
    let d = common::diff_models(&a, &b, 10);
    assert!(d.is_empty(), "{d:#?}");
    common::verify_with_oracles("round trip", dst.as_bytes());
}

#[test]
fn backslash_rooted_keys_are_relative_to_the_hive_root() {
    use reseal_hive::reg::strip_prefix;
    let p = "HKEY_LOCAL_MACHINE\\SAM";
    assert_eq!(strip_prefix("\\SAM\\Domains", p).unwrap(), "SAM\\Domains");
    assert_eq!(strip_prefix("\\", p).unwrap(), "");
    assert_eq!(
        strip_prefix("HKEY_LOCAL_MACHINE\\SAM\\SAM\\Domains", p).unwrap(),
        "SAM\\Domains"
    );
    assert!(strip_prefix("HKEY_LOCAL_MACHINE\\SOFTWARE\\X", p).is_err());
    assert!(strip_prefix("\\HKEY_LOCAL_MACHINE\\SOFTWARE\\X", p).is_err());
}

/// hivexregedit's own export of corpus hives (keys rooted at `\`, e.g. `[\SAM\Domains]`)
/// imports into a copy of the hive with no change: hivexregedit exports the copy the same.
#[test]
fn hivexregedit_export_imports_with_no_change() {
    if !common::need_tool("hivexregedit") {
        return;
    }
    for rel in [
        "regipy/SAM.xz",
        "plaso/regf/UsrClass.dat.xz",
        "regipy/NTUSER.DAT.xz",
    ] {
        let Some(bytes) = common::load(rel) else {
            continue;
        };
        let f = common::write_temp(&bytes);
        let o = std::process::Command::new("hivexregedit")
            .arg("--export")
            .arg(f.path())
            .arg("\\")
            .output()
            .expect("run hivexregedit");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let text = common::decode_perl_lines(&o.stdout);
        assert!(
            text.contains("[\\"),
            "{rel}: no \\-rooted key in hivex's export"
        );
        let mut h = Hive::from_bytes(bytes.clone()).unwrap();
        h.make_writable().unwrap();
        let st = import(&mut h, text.as_bytes(), "HKEY_LOCAL_MACHINE\\SAM").unwrap();
        assert!(st.keys > 0 && st.values_set > 0, "{rel}: {st:?}");
        h.commit().unwrap();
        let before = common::hivex_model(&bytes).unwrap();
        let after = common::hivex_model(h.as_bytes()).unwrap();
        let d = common::diff_models(&before, &after, 10);
        assert!(d.is_empty(), "{rel}: {d:#?}");
    }
}
