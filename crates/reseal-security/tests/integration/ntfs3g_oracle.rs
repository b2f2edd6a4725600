//! ntfs-3g as an independent oracle: descriptors built from SDDL are stored on a fresh
//! mkntfs volume through `setfattr system.ntfs_acl` (ntfs-3g validates them), read back
//! byte-identically with `getfattr`, and `ntfssecaudit -a` finds no errors. The descriptor
//! ntfs-3g itself creates for a new file has a known SDDL.

use crate::common;

use std::process::{Command, Stdio};

use common::require_or_skip;
use reseal_security::SecurityDescriptor;

const SDDL: &[&str] = &[
    "O:BAG:BAD:(A;OICI;FA;;;WD)",
    "O:SYG:SYD:PAI(A;OICIID;FA;;;SY)(A;OICIID;FA;;;BA)(A;OICIIOID;GA;;;CO)(A;;0x1200a9;;;BU)(D;;WD;;;S-1-5-21-1-2-3-1000)",
    "O:S-1-5-21-111-222-333-1000G:S-1-5-21-111-222-333-513D:(A;;FA;;;S-1-5-21-111-222-333-1000)S:(AU;SAFA;FA;;;WD)(ML;;NW;;;ME)",
    "O:BAG:BAD:(XA;;FX;;;WD;(@User.Title == \"PM\"))",
    "O:BAG:BAD:(OA;;RP;bf967aba-0de6-11d0-a285-00aa003049e2;;AU)",
    "O:BAG:BAS:(RA;;;;;WD;(\"Project\",TS,0x0,\"Windows\",\"SQL\"))",
    "O:BAG:BAD:NO_ACCESS_CONTROL",
];

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn getfattr(path: &std::path::Path) -> Vec<u8> {
    let out = Command::new("getfattr")
        .args(["-e", "hex", "-n", "system.ntfs_acl"])
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "getfattr {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let t = String::from_utf8_lossy(&out.stdout);
    let h = t
        .lines()
        .find_map(|l| l.strip_prefix("system.ntfs_acl=0x"))
        .expect("no system.ntfs_acl line");
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn ntfs3g_stores_and_validates_our_descriptors() {
    if let Ok(only) = std::env::var("SDDL_ONLY") {
        run(&[SDDL[only.parse::<usize>().unwrap()]]);
    } else {
        run(SDDL);
    }
}

fn run(list: &[&str]) {
    for t in [
        "mkntfs",
        "ntfs-3g",
        "setfattr",
        "getfattr",
        "ntfssecaudit",
        "fusermount",
    ] {
        if !require_or_skip(t) {
            return;
        }
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("vol.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let st = Command::new("mkntfs")
        .args(["-F", "-q", "-f"])
        .arg(&img)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success(), "mkntfs failed");
    let mnt = tmp.path().join("m");
    std::fs::create_dir(&mnt).unwrap();
    let st = Command::new("ntfs-3g")
        .arg(&img)
        .arg(&mnt)
        .status()
        .unwrap();
    if !st.success() {
        reseal_tests::skip_or_panic(
            "ntfs-3g mount failed",
            "make FUSE available (/dev/fuse; run the tests as root)",
        );
        return;
    }
    let result = std::panic::catch_unwind(|| {
        // ntfs-3g's own descriptor for a new file.
        let f = mnt.join("fresh");
        std::fs::write(&f, b"x").unwrap();
        let b = getfattr(&f);
        let sd = SecurityDescriptor::parse(&b).unwrap();
        assert_eq!(sd.to_bytes().unwrap(), b);
        assert_eq!(sd.to_sddl().unwrap(), "O:BAG:BAD:(A;OICI;FA;;;WD)");
        // ntfs-3g lays descriptors out as owner, group, DACL (not Windows' order).
        assert_ne!(sd.to_canonical_bytes().unwrap(), b);
        for (i, text) in list.iter().enumerate() {
            let sd = SecurityDescriptor::from_sddl(text).unwrap();
            let bytes = sd.to_bytes().unwrap();
            let f = mnt.join(format!("f{i}"));
            std::fs::write(&f, b"x").unwrap();
            let st = Command::new("setfattr")
                .args(["-n", "system.ntfs_acl", "-v"])
                .arg(format!("0x{}", hex(&bytes)))
                .arg(&f)
                .status()
                .unwrap();
            assert!(st.success(), "ntfs-3g rejected {text}");
            let back = getfattr(&f);
            assert_eq!(back, bytes, "{text}: ntfs-3g returned other bytes");
            assert_eq!(
                SecurityDescriptor::parse(&back).unwrap().to_sddl().unwrap(),
                *text
            );
        }
    });
    let _ = Command::new("fusermount").arg("-u").arg(&mnt).status();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    let out = Command::new("ntfssecaudit")
        .arg("-a")
        .arg(&img)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("No errors were found"),
        "ntfssecaudit -a:\n{text}"
    );
    // The primary $SDS copy and both indexes must be clean. ntfssecaudit 1.5.0 sometimes
    // reports "Security attribute is too long" past the last entry of the *mirror* block on
    // fresh mkntfs volumes; that happens just the same when only ntfs-3g-made bytes are set
    // (checked by hand: mask change on ntfs-3g's own default descriptor), so it is not
    // caused by these descriptors, and the tool's final verdict stays "No errors were found".
    for part in ["$SDS-1", "$SII", "$SDH"] {
        assert!(
            text.contains(&format!("0 errors in {part}")),
            "ntfssecaudit -a, {part}:\n{text}"
        );
    }
}
