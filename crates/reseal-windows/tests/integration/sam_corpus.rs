//! SAM cryptography on the corpus' real SAM and SYSTEM hives, with impacket's `secretsdump.py`
//! as the oracle.
//!
//! The corpus has no SAM with the SYSTEM of the same machine (its SAMs are from NT 4 and Server
//! 2008..2016; its SYSTEMs are NT 4 without a boot key, a Windows 7 and a Windows 10 one from
//! other machines), so no pair decrypts to real hashes. What is checked on every pairing:
//! * RC4 SAMs (revision 1: Server 2008, 2008 R2, 2012, the Windows 7 regipy SAM): secretsdump
//!   fails on the key checksum and reseal refuses with `WrongBootKey`;
//! * the AES SAM (revision 2: Server 2016): secretsdump does not verify and prints hashes
//!   derived from the wrong key; reseal's unverified decryption gives the same bytes for every
//!   account (the layouts and both cipher layers agree on real Windows data), while its
//!   verified decryption refuses (`WrongBootKey`: the AES padding does not check out);
//! * the NT 4 SYSTEM has no `Lsa\JD` class names: both fail.

use reseal_hive::Hive;
use reseal_tests::*;
use reseal_windows::sam_crypto::{self, HashKind};
use reseal_windows::Error;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

const SAMS: &[&str] = &[
    "aiowinreg/nt/sam.reg",
    "aiowinreg/win2008_32/sam.reg",
    "aiowinreg/win2008r2_64/sam.reg",
    "aiowinreg/win2012_64/sam.reg",
    "aiowinreg/win2016_64/sam.reg",
    "regipy/SAM.xz",
    "plaso/regf/SAM",
];
const SYSTEMS: &[&str] = &[
    "regipy/SYSTEM.xz",
    "regipy/SYSTEM_B.xz",
    "aiowinreg/nt/system.reg",
];

/// secretsdump's output: `Ok(rid → nt hash)` or `Err(its error line)`.
fn secretsdump(sam: &Path, system: &Path) -> Result<BTreeMap<u32, String>, String> {
    let out = Command::new("secretsdump.py")
        .arg("-sam")
        .arg(sam)
        .arg("-system")
        .arg(system)
        .arg("LOCAL")
        .output()
        .expect("run secretsdump.py");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if let Some(e) = text.lines().find(|l| l.starts_with("[-]")) {
        return Err(e.to_string());
    }
    let mut m = BTreeMap::new();
    for line in text.lines().filter(|l| l.ends_with(":::")) {
        let f: Vec<&str> = line.split(':').collect();
        m.insert(f[1].parse().unwrap(), f[3].to_string());
    }
    Ok(m)
}

fn users_key(sam: &Hive) -> Vec<(u32, Vec<u8>)> {
    let k = sam.open_path("SAM\\Domains\\Account\\Users").unwrap();
    let mut out = Vec::new();
    for sk in k.subkeys().unwrap() {
        let sk = sk.unwrap();
        if let Ok(rid) = u32::from_str_radix(&sk.name(), 16) {
            let v = sk.value("V").unwrap().unwrap().data().unwrap().into_owned();
            out.push((rid, v));
        }
    }
    out
}

#[test]
fn corpus_pairs_agree_with_secretsdump() {
    require_tool("secretsdump.py");
    let tmp = tempfile::tempdir().unwrap();
    let mut aes_compared = 0;
    for sys_rel in SYSTEMS {
        let sys_path = corpus_file(sys_rel, tmp.path()).unwrap();
        let system = Hive::from_bytes(std::fs::read(&sys_path).unwrap()).unwrap();
        let boot = sam_crypto::boot_key(&system);
        for sam_rel in SAMS {
            let sam_path = corpus_file(sam_rel, tmp.path()).unwrap();
            let sam = Hive::from_bytes(std::fs::read(&sam_path).unwrap()).unwrap();
            let oracle = secretsdump(&sam_path, &sys_path);
            let what = format!("{sam_rel} with {sys_rel}");
            let Ok(boot) = &boot else {
                assert!(
                    oracle.is_err(),
                    "{what}: secretsdump read a SYSTEM reseal cannot"
                );
                assert!(
                    matches!(boot, Err(Error::Invalid { .. })),
                    "{what}: {boot:?}"
                );
                continue;
            };
            let f = sam
                .open_path("SAM\\Domains\\Account")
                .unwrap()
                .value("F")
                .unwrap()
                .unwrap()
                .data()
                .unwrap()
                .into_owned();
            let rev = f.get(0x68).copied();
            let verified = sam_crypto::sam_key(&f, boot);
            match rev {
                Some(1) => {
                    let e = oracle.expect_err(&what);
                    assert!(e.contains("CheckSum failed"), "{what}: {e}");
                    assert!(
                        matches!(verified, Err(Error::WrongBootKey { .. })),
                        "{what}: {verified:?}"
                    );
                }
                Some(2) => {
                    assert!(
                        matches!(verified, Err(Error::WrongBootKey { .. })),
                        "{what}: {verified:?}"
                    );
                    let oracle = oracle.unwrap_or_else(|e| panic!("{what}: {e}"));
                    let key = sam_crypto::sam_key_unverified(&f, boot).unwrap();
                    for (rid, v) in users_key(&sam) {
                        let nt = reseal_windows::sam::user_v_field(&v, 14).unwrap();
                        let ours = sam_crypto::decrypt_hash_unverified(&key, rid, HashKind::Nt, nt)
                            .unwrap()
                            .map(|h| sam_crypto::hex(&h))
                            .unwrap_or_else(|| "31d6cfe0d16ae931b73c59d7e0c089c0".into());
                        assert_eq!(oracle.get(&rid), Some(&ours), "{what}: RID {rid}");
                        aes_compared += 1;
                    }
                }
                other => {
                    // NT 4's SAM has no key structure at 0x68 (no syskey).
                    assert!(oracle.is_err(), "{what}: revision {other:?}");
                    assert!(verified.is_err(), "{what}");
                }
            }
        }
    }
    assert!(aes_compared >= 6, "only {aes_compared} AES hashes compared");
}
