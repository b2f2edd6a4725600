//! `reseal user …` on fixture images whose SAM is encrypted like Windows' (boot key in SYSTEM,
//! AES revision 2 and RC4 revision 1), judged by independent readers: impacket's
//! `secretsdump.py` decrypts the hashes, impacket's MD4 gives the expected NT hash, hivex reads
//! the `F` bits and the `Names` key, ntfs-3g's `ntfscat` extracts the hives.

use crate::common;

use common::*;
use reseal_tests::schema::parse_json;
use reseal_tests::windows::{SamCryptoSpec, UserSpec, WindowsSpec};
use reseal_tests::*;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn spec(scheme: &str) -> WindowsSpec {
    let mut s = WindowsSpec {
        sam_crypto: Some(SamCryptoSpec {
            scheme: scheme.into(),
            ..SamCryptoSpec::default()
        }),
        ..WindowsSpec::default()
    };
    for u in &mut s.users {
        u.password = match u.name.as_str() {
            "Administrator" => Some("Adm1n-old".into()),
            "alice" => Some("alice-old".into()),
            _ => None,
        };
    }
    s.users.push(UserSpec {
        name: "carol".into(),
        rid: 1003,
        locked: true,
        password: Some("carol pw".into()),
        profile: false,
        ..UserSpec::default()
    });
    s
}

/// The NT hash of `password` computed by impacket.
fn impacket_nt_hash(password: &str) -> String {
    let out = run(Command::new("python3")
        .args([
            "-c",
            "import sys; from impacket.ntlm import compute_nthash; print(compute_nthash(sys.argv[1]).hex())",
        ])
        .arg(password))
    .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Extract SAM and SYSTEM with ntfs-3g and let secretsdump decrypt them: name → (rid, nt hash).
fn secretsdump(spec: &WindowsSpec, raw: &Path, dir: &Path) -> BTreeMap<String, (u32, String)> {
    let vol = dir.join("vol.raw");
    spec.extract_volume(raw, &vol).unwrap();
    for h in ["SAM", "SYSTEM"] {
        let out = run(Command::new("ntfscat")
            .arg(&vol)
            .arg(format!("/Windows/System32/config/{h}")))
        .unwrap();
        std::fs::write(dir.join(h), out.stdout).unwrap();
    }
    let out = run(Command::new("secretsdump.py")
        .arg("-sam")
        .arg(dir.join("SAM"))
        .arg("-system")
        .arg(dir.join("SYSTEM"))
        .arg("LOCAL"))
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 && line.ends_with(":::") {
            if let Ok(rid) = f[1].parse::<u32>() {
                m.insert(f[0].to_string(), (rid, f[3].to_string()));
            }
        }
    }
    assert!(!m.is_empty(), "secretsdump printed no hashes:\n{text}");
    m
}

/// `hivexget SAM 'SAM\Domains\Account\Users\<RID>' F` as bytes.
fn hivex_f(sam: &Path, rid: u32) -> Vec<u8> {
    let out = run(Command::new("hivexregedit")
        .arg("--export")
        .arg(sam)
        .arg(format!("\\SAM\\Domains\\Account\\Users\\{rid:08X}")))
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).replace("\\\n", "");
    let line = text
        .lines()
        .find(|l| l.starts_with("\"F\"=hex"))
        .unwrap_or_else(|| panic!("no F in {text}"));
    line.split_once(':')
        .unwrap()
        .1
        .split(',')
        .map(|h| u8::from_str_radix(h.trim(), 16).unwrap())
        .collect()
}

fn acb(f: &[u8]) -> u16 {
    u16::from_le_bytes([f[0x38], f[0x39]])
}

/// The first object in `v` whose `name` is `name` and that has a `rid`.
fn find_user(v: &serde_json::Value, name: &str) -> Option<serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => {
            if m.get("name").and_then(|n| n.as_str()) == Some(name) && m.contains_key("rid") {
                return Some(v.clone());
            }
            m.values().find_map(|x| find_user(x, name))
        }
        serde_json::Value::Array(a) => a.iter().find_map(|x| find_user(x, name)),
        _ => None,
    }
}

const EMPTY_NT: &str = "31d6cfe0d16ae931b73c59d7e0c089c0";

fn scenario(scheme: &str) {
    require_tool("secretsdump.py");
    require_tool("ntfscat");
    require_tool("hivexregedit");
    require_tool("hivexsh");
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec(scheme);
    let raw = tmp.path().join("disk.raw");
    spec.build(&raw).unwrap();
    let img = raw.to_str().unwrap();

    // The fixture's encryption, as secretsdump reads it.
    let before = secretsdump(&spec, &raw, tmp.path());
    assert_eq!(before["alice"], (1001, impacket_nt_hash("alice-old")));
    assert_eq!(before["Administrator"].1, impacket_nt_hash("Adm1n-old"));
    assert_eq!(before["bob"].1, EMPTY_NT);

    // list.
    let doc = parse_json("user-list", ok_text(a!("user", "list", "--json", img)));
    assert_eq!(doc["schema_version"], 1);
    let users = doc["users"].as_array().unwrap();
    let u = |n: &str| users.iter().find(|u| u["name"] == n).unwrap().clone();
    assert_eq!(u("alice")["rid"], 1001);
    assert_eq!(u("alice")["enabled"], true);
    assert_eq!(u("alice")["password_set"], true);
    assert_eq!(u("alice")["hash_scheme"], scheme);
    assert_eq!(u("alice")["last_logon"], "2023-09-24T03:33:20Z");
    assert_eq!(
        u("alice")["sid"],
        "S-1-5-21-1111111111-2222222222-3333333333-1001"
    );
    assert_eq!(u("bob")["password_set"], false);
    assert_eq!(u("bob")["last_logon"], serde_json::Value::Null);
    assert_eq!(u("Guest")["enabled"], false);
    assert_eq!(u("carol")["locked"], true);
    // inspect reports the same lock and blank-password facts.
    let ins = parse_json("inspect", ok_text(a!("inspect", "--json", img)));
    let found = find_user(&ins, "carol").expect("carol in inspect --json");
    assert_eq!(found["locked"], true);
    assert_eq!(find_user(&ins, "bob").unwrap()["password_set"], false);
    assert_eq!(find_user(&ins, "alice").unwrap()["password_set"], true);
    let text = ok_text(a!("user", "list", img));
    assert!(
        text.contains("alice") && text.contains("2023-09-24T03:33:20Z"),
        "{text}"
    );

    // passwd: dry run writes nothing; then the real change.
    let pw = tmp.path().join("pw.txt");
    std::fs::write(&pw, "N3w Passw0rd! ü\n").unwrap();
    let pristine = std::fs::read(&raw).unwrap();
    ok(a!(
        "user",
        "passwd",
        img,
        "ALICE",
        "--password-file",
        pw.to_str().unwrap(),
        "--dry-run"
    ));
    assert!(std::fs::read(&raw).unwrap() == pristine, "--dry-run wrote");
    ok(a!(
        "user",
        "passwd",
        img,
        "alice",
        "--password-file",
        pw.to_str().unwrap()
    ));
    let after = secretsdump(&spec, &raw, tmp.path());
    assert_eq!(after["alice"].1, impacket_nt_hash("N3w Passw0rd! ü"));
    for n in ["Administrator", "Guest", "bob", "carol"] {
        assert_eq!(after[n], before[n], "{n} changed");
    }

    // --password-stdin and --blank.
    let mut child = Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(["user", "passwd", img, "bob", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"bob's new one\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    ok(a!("user", "passwd", img, "Administrator", "--blank"));
    let after = secretsdump(&spec, &raw, tmp.path());
    assert_eq!(after["bob"].1, impacket_nt_hash("bob's new one"));
    assert_eq!(after["Administrator"].1, EMPTY_NT);
    assert_eq!(after["alice"].1, impacket_nt_hash("N3w Passw0rd! ü"));

    // enable / disable / unlock, read by hivex.
    ok(a!("user", "disable", img, "alice"));
    ok(a!("user", "enable", img, "Guest"));
    ok(a!("user", "unlock", img, "carol"));
    secretsdump(&spec, &raw, tmp.path());
    let sam = tmp.path().join("SAM");
    assert_eq!(acb(&hivex_f(&sam, 1001)) & 0x0001, 0x0001);
    assert_eq!(acb(&hivex_f(&sam, 501)) & 0x0001, 0);
    let carol = hivex_f(&sam, 1003);
    assert_eq!(acb(&carol) & 0x0400, 0);
    assert_eq!(u16::from_le_bytes([carol[0x40], carol[0x41]]), 0);

    // rename, seen by hivexsh and secretsdump; the RID stays.
    ok(a!("user", "rename", img, "bob", "robert"));
    let after = secretsdump(&spec, &raw, tmp.path());
    assert_eq!(after["robert"], (1002, impacket_nt_hash("bob's new one")));
    assert!(!after.contains_key("bob"));
    let mut sh = Command::new("hivexsh")
        .arg(&sam)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    sh.stdin
        .take()
        .unwrap()
        .write_all(b"cd \\SAM\\Domains\\Account\\Users\\Names\nls\ncd robert\nlsval\n")
        .unwrap();
    let out = sh.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("robert") && !text.contains("\nbob\n"),
        "{text}"
    );
    // The default value's type is the RID (hivexsh prints it in decimal).
    assert!(text.contains("\"@\"=hex(1002):"), "{text}");

    // Unknown accounts are refused by name and change nothing.
    let before_bytes = std::fs::read(&raw).unwrap();
    let o = reseal(a!("user", "passwd", img, "nobody", "--blank"));
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("\"nobody\"") && err.contains("alice"), "{err}");
    let o = reseal(a!("user", "disable", img, "nobody", "--json"));
    let doc = parse_json("error", &o.stdout);
    assert_eq!(doc["error"]["code"], "unknown_user");
    let o = reseal(a!("user", "rename", img, "alice", "robert"));
    assert_eq!(o.status.code(), Some(1));
    assert!(std::fs::read(&raw).unwrap() == before_bytes);
}

#[test]
fn aes_sam_revision_2() {
    scenario("aes");
}

#[test]
fn rc4_sam_revision_1() {
    scenario("rc4");
}

/// A real Server 2016 SAM (AES) in a fixture whose SYSTEM is not its own: rename and disable
/// work on Windows-written `V`/`F` values (secretsdump, which does not verify the AES key, still
/// lists the renamed account with the same hash bytes as before), while `passwd` is refused
/// because the boot key does not decrypt this SAM, and changes no byte.
#[test]
fn real_server_2016_sam() {
    require_tool("secretsdump.py");
    require_tool("ntfscat");
    require_tool("hivexregedit");
    let tmp = tempfile::tempdir().unwrap();
    let spec = WindowsSpec {
        real_sam: Some("aiowinreg/win2016_64/sam.reg".into()),
        sam_crypto: Some(SamCryptoSpec::default()),
        ..WindowsSpec::default()
    };
    let raw = tmp.path().join("disk.raw");
    spec.build(&raw).unwrap();
    let img = raw.to_str().unwrap();
    let before = secretsdump(&spec, &raw, tmp.path());
    assert_eq!(before["Administrator"].0, 500);

    let doc = parse_json("user-list", ok_text(a!("user", "list", "--json", img)));
    let users = doc["users"].as_array().unwrap();
    let admin = users.iter().find(|u| u["rid"] == 500).unwrap();
    assert_eq!(admin["name"], "Administrator");
    assert_eq!(admin["hash_scheme"], "aes");
    assert_eq!(admin["password_set"], true);
    assert_eq!(admin["sid"], "S-1-5-21-161349065-230161307-1850086198-500");

    let pristine = std::fs::read(&raw).unwrap();
    let o = reseal(a!(
        "user",
        "passwd",
        img,
        "Administrator",
        "--blank",
        "--json"
    ));
    assert_eq!(o.status.code(), Some(1));
    let doc = parse_json("error", &o.stdout);
    assert_eq!(doc["error"]["code"], "wrong_boot_key", "{doc}");
    assert!(
        std::fs::read(&raw).unwrap() == pristine,
        "a refused passwd wrote"
    );

    ok(a!("user", "rename", img, "administrator", "Boss"));
    ok(a!("user", "disable", img, "Boss"));
    let after = secretsdump(&spec, &raw, tmp.path());
    assert_eq!(after["Boss"], before["Administrator"]);
    assert!(!after.contains_key("Administrator"));
    assert_eq!(after["Guest"], before["Guest"]);
    assert_eq!(acb(&hivex_f(&tmp.path().join("SAM"), 500)) & 1, 1);
}

/// `generalize --password USER:FILE`: checked before anything is written (an unknown account
/// changes no byte), then the new SID and the new password both land.
#[test]
fn generalize_with_password() {
    require_tool("secretsdump.py");
    require_tool("ntfscat");
    let tmp = tempfile::tempdir().unwrap();
    let spec = spec("aes");
    let raw = tmp.path().join("disk.raw");
    spec.build(&raw).unwrap();
    let img = raw.to_str().unwrap();
    let before = secretsdump(&spec, &raw, tmp.path());
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "clone-secret\n").unwrap();
    let arg = format!("nobody:{}", pw.display());
    let pristine = std::fs::read(&raw).unwrap();
    let o = reseal(a!("generalize", img, "--password", &arg));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("\"nobody\""));
    assert!(
        std::fs::read(&raw).unwrap() == pristine,
        "a refused generalize wrote"
    );

    let arg = format!("alice:{}", pw.display());
    let new_sid = "S-1-5-21-10-20-30";
    let doc = parse_json(
        "generalize",
        ok_text(a!(
            "generalize",
            img,
            "--new-sid",
            new_sid,
            "--password",
            &arg,
            "--json"
        )),
    );
    assert_eq!(doc["passwords"][0]["name"], "alice");
    let after = secretsdump(&spec, &raw, tmp.path());
    assert_eq!(after["alice"].1, impacket_nt_hash("clone-secret"));
    assert_eq!(after["bob"], before["bob"]);
    let list = parse_json("user-list", ok_text(a!("user", "list", "--json", img)));
    let alice = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "alice")
        .unwrap()
        .clone();
    assert_eq!(alice["sid"], format!("{new_sid}-1001"));

    // Two undo steps: the password, then the generalize.
    ok(a!("undo", img));
    let undone = secretsdump(&spec, &raw, tmp.path());
    assert_eq!(undone["alice"], before["alice"]);
    ok(a!("undo", img));
    assert!(
        std::fs::read(&raw).unwrap() == pristine,
        "two undos did not restore the image"
    );
}

/// A dirty SAM is refused for writes (its logs must be replayed first) and read through its
/// log; a dirty SYSTEM is read through its log for the boot key.
#[test]
fn dirty_hives() {
    require_tool("secretsdump.py");
    require_tool("ntfscat");
    let tmp = tempfile::tempdir().unwrap();
    let pw = tmp.path().join("pw");
    std::fs::write(&pw, "x-y-z").unwrap();
    for hive in ["SAM", "SYSTEM"] {
        let spec = WindowsSpec {
            dirty_hive: Some(hive.into()),
            ..spec("aes")
        };
        let raw = tmp.path().join(format!("{hive}.raw"));
        spec.build(&raw).unwrap();
        let img = raw.to_str().unwrap();
        let list = ok_text(a!("user", "list", img));
        assert!(list.contains("alice"), "{list}");
        let pristine = std::fs::read(&raw).unwrap();
        let o = reseal(a!(
            "user",
            "passwd",
            img,
            "alice",
            "--password-file",
            pw.to_str().unwrap()
        ));
        if hive == "SAM" {
            assert_eq!(o.status.code(), Some(1));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(err.contains("dirty") && err.contains("reg replay"), "{err}");
            assert!(std::fs::read(&raw).unwrap() == pristine);
        } else {
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            // secretsdump reads the primary SYSTEM, which holds the same boot key.
            let after = secretsdump(&spec, &raw, tmp.path());
            assert_eq!(after["alice"].1, impacket_nt_hash("x-y-z"));
        }
    }
}

/// generalize (every default operation, new SID and name) leaves the local accounts' hashes
/// as they were: secretsdump decrypts the same NT hashes before and after, for both schemes.
#[test]
fn generalize_keeps_every_local_account_hash() {
    require_tool("ntfscat");
    require_tool("secretsdump.py");
    for scheme in ["aes", "rc4"] {
        let tmp = tempfile::tempdir().unwrap();
        let s = spec(scheme);
        let raw = tmp.path().join("w.raw");
        s.build(&raw).unwrap();
        let before = secretsdump(&s, &raw, tmp.path());
        let o = Command::new(env!("CARGO_BIN_EXE_reseal"))
            .args(["generalize", "--computer-name", "AFTER-1"])
            .arg(&raw)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let after = secretsdump(&s, &raw, tmp.path());
        assert_eq!(before, after, "{scheme}: hashes changed");
        assert_eq!(after["alice"].1, impacket_nt_hash("alice-old"), "{scheme}");
    }
}
