//! Descriptors whose SDDL and bytes are known from documentation or from Windows-made data.

use crate::common;

use reseal_security::{Ace, SecurityDescriptor, Sid};

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// MS-DTYP 2.5.1.4 "SDDL String to Binary Security Descriptor Examples": the SDDL string and
/// its self-relative encoding as printed in the specification.
#[test]
fn ms_dtyp_2_5_1_4_example() {
    let sddl = "O:BAG:BAD:P(A;CIOI;GRGX;;;BU)(A;CIOI;GA;;;BA)(A;CIOI;GA;;;SY)(A;CIOI;GA;;;CO)S:P(AU;FA;GR;;;WD)";
    let bytes = hex("01 00 14 b0 90 00 00 00 a0 00 00 00 14 00 00 00
         30 00 00 00 02 00 1c 00 01 00 00 00 02 80 14 00
         00 00 00 80 01 01 00 00 00 00 00 01 00 00 00 00
         02 00 60 00 04 00 00 00 00 03 18 00 00 00 00 a0
         01 02 00 00 00 00 00 05 20 00 00 00 21 02 00 00
         00 03 18 00 00 00 00 10 01 02 00 00 00 00 00 05
         20 00 00 00 20 02 00 00 00 03 14 00 00 00 00 10
         01 01 00 00 00 00 00 05 12 00 00 00 00 03 14 00
         00 00 00 10 01 01 00 00 00 00 00 03 00 00 00 00
         01 02 00 00 00 00 00 05 20 00 00 00 20 02 00 00
         01 02 00 00 00 00 00 05 20 00 00 00 20 02 00 00");
    let sd = SecurityDescriptor::from_sddl(sddl).unwrap();
    assert_eq!(
        sd.to_bytes().unwrap(),
        bytes,
        "SDDL -> bytes differs from MS-DTYP"
    );
    let parsed = SecurityDescriptor::parse(&bytes).unwrap();
    assert_eq!(parsed, sd);
    // Windows' output form: flags in bit order (OICI), rights in ascending bit order (GXGR).
    assert_eq!(
        parsed.to_sddl().unwrap(),
        "O:BAG:BAD:P(A;OICI;GXGR;;;BU)(A;OICI;GA;;;BA)(A;OICI;GA;;;SY)(A;OICI;GA;;;CO)S:P(AU;FA;GR;;;WD)"
    );
}

#[test]
fn domain_relative_aliases() {
    let dom: Sid = "S-1-5-21-1004336348-1177238915-682003330".parse().unwrap();
    let sd = SecurityDescriptor::from_sddl_with_domain(
        "O:LAG:DUD:(A;;FA;;;DA)(A;;FR;;;S-1-5-21-1-2-3-512)",
        Some(&dom),
    )
    .unwrap();
    assert_eq!(
        sd.owner.as_ref().unwrap().to_string(),
        "S-1-5-21-1004336348-1177238915-682003330-500"
    );
    // Without a domain the domain-relative SIDs print in full (what an offline tool can know).
    assert_eq!(
        sd.to_sddl().unwrap(),
        "O:S-1-5-21-1004336348-1177238915-682003330-500G:S-1-5-21-1004336348-1177238915-682003330-513\
         D:(A;;FA;;;S-1-5-21-1004336348-1177238915-682003330-512)(A;;FR;;;S-1-5-21-1-2-3-512)"
    );
    assert_eq!(
        sd.to_sddl_with_domain(Some(&dom)).unwrap(),
        "O:LAG:DUD:(A;;FA;;;DA)(A;;FR;;;S-1-5-21-1-2-3-512)"
    );
    assert!(matches!(
        SecurityDescriptor::from_sddl("O:LA"),
        Err(reseal_security::Error::Syntax { position: 2, .. })
    ));
}

#[test]
fn errors_name_character_positions() {
    for (text, pos) in [
        ("O:BAX", 2),
        ("O:BAG:BAD:(A;;QQ;;;WD)", 14),
        ("O:BAG:BAD:(A;;FA;;;WD", 10),
        ("X:BA", 0),
        ("D:(Z;;FA;;;WD)", 3),
    ] {
        match SecurityDescriptor::from_sddl(text) {
            Err(reseal_security::Error::Syntax { position, .. }) => {
                assert_eq!(position, pos, "{text}")
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

/// Windows-made `$SDS` entry 0x180 of dissect.ntfs sds_complex.bin: mandatory label and access
/// filter ACE with a conditional expression in the SACL; object, callback-object (with both
/// GUIDs and a conditional expression) and compound ACEs in the DACL.
#[test]
fn windows_complex_descriptor() {
    let Some(dir) = common::corpus_dir() else {
        return;
    };
    let data = common::decompress(&dir.join("dissect.ntfs/sds_complex.bin.gz"));
    let len = u32::from_le_bytes(data[0x190..0x194].try_into().unwrap()) as usize;
    let bytes = &data[0x180 + 20..0x180 + len];
    let mut sd = SecurityDescriptor::parse(bytes).unwrap();
    assert_eq!(sd.to_bytes().unwrap(), bytes);
    let dacl = sd.dacl.as_mut().unwrap();
    assert!(matches!(dacl.aces[0], Ace::AccessAllowedCompound(_)));
    dacl.aces.remove(0); // compound ACEs have no SDDL form
    let text = sd.to_sddl().unwrap();
    assert_eq!(
        text,
        "O:S-1-5-21-3090333131-159632407-777084872-1001G:S-1-5-21-3090333131-159632407-777084872-513\
         D:(OA;;FA;;;WD)\
         (ZA;;FA;01234567-89ab-cdef-1111-111111111111;22222222-2222-2222-0123-456789abcdef;BU;(APPID://PATH Contains \"%WINDIR%\\*\"))\
         S:AI(ML;;NWNRNX;;;LW)(FL;;0x1200a9;;;WD;(Exists TSA://ProcUnique))"
    );
    let back = SecurityDescriptor::from_sddl(&text).unwrap();
    assert_eq!(back.normalized(), sd.normalized());
}
