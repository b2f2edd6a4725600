//! Drive the hive editor with a fuzzer-chosen sequence of edits (create, delete, rename keys;
//! set and delete values of fuzzed sizes; class names; security descriptors), on an empty hive
//! or on the fuzz input's own hive, then commit, re-parse and check. Never panic; a value just
//! written reads back as written, and a committed hive parses again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use reseal_hive::{Hive, KeyOffset};

/// A valid self-relative descriptor, one of a few (through the project's SDDL encoder).
fn descriptor(pick: u8) -> Vec<u8> {
    const SDDL: [&str; 4] = [
        "O:BAG:SYD:(A;;GA;;;WD)",
        "O:BAG:SYD:P(A;CI;KA;;;SY)(A;CI;KA;;;BA)(A;CI;KR;;;BU)",
        "O:SYG:SYD:(A;OICI;KA;;;SY)",
        "O:BAG:BAD:",
    ];
    reseal_security::SecurityDescriptor::from_sddl(SDDL[pick as usize % SDDL.len()])
        .and_then(|sd| sd.to_bytes())
        .expect("the fixed SDDL strings encode")
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    // Ops come first, then (when sel is odd) the rest is a hive to edit.
    let n_ops = (rest.len().min(256)) / 4;
    let (ops, tail) = rest.split_at(n_ops * 4);
    let mut h = if sel & 1 == 1 && tail.len() >= 4096 {
        let mut b = tail.to_vec();
        let c = reseal_hive::base_block::checksum(&b[..512]);
        b[508..512].copy_from_slice(&c.to_le_bytes());
        match Hive::from_bytes(b) {
            Ok(h) => h,
            Err(_) => return,
        }
    } else {
        match Hive::new_empty("ROOT", &descriptor(0)) {
            Ok(h) => h,
            Err(_) => return,
        }
    };
    if h.make_writable().is_err() {
        return;
    }
    let mut keys: Vec<KeyOffset> = vec![h.root_offset()];
    for op in ops.chunks_exact(4) {
        let k = keys[op[1] as usize % keys.len()];
        let name = format!("k{}", op[2] % 16);
        match op[0] % 8 {
            0 => {
                if let Ok(n) = h.create_key(k, &name) {
                    keys.push(n);
                }
            }
            1 => {
                let size = (op[3] as usize) * (1 + (op[2] as usize % 4) * 200);
                let bytes: Vec<u8> = (0..size).map(|i| (i as u8) ^ op[3]).collect();
                let vname = format!("v{}", op[2] % 8);
                if h.set_value(k, &vname, 3, &bytes).is_ok() {
                    let back = h
                        .key(k)
                        .and_then(|key| key.value(&vname))
                        .expect("the key just written opens")
                        .expect("the value just written exists")
                        .data()
                        .expect("the value just written reads");
                    assert_eq!(back, bytes, "value read back differs");
                }
            }
            2 => {
                let vname = format!("v{}", op[2] % 8);
                let _ = h.delete_value(k, &vname);
            }
            3 => {
                if k != h.root_offset() {
                    if let Ok(n) = h.rename_key(k, &format!("r{}", op[2])) {
                        let i = keys.iter().position(|x| *x == k).unwrap_or(0);
                        keys[i] = n;
                    }
                }
            }
            4 => {
                if k != h.root_offset() && h.delete_key(k, true).is_ok() {
                    // Deleted keys (and their subkeys) are gone: keep only the root.
                    keys.truncate(1);
                }
            }
            5 => {
                let class = (op[3] % 2 == 0).then(|| format!("class{}", op[2]));
                let _ = h.set_class_name(k, class.as_deref());
            }
            6 => {
                let _ = h.set_security(k, &descriptor(op[3]));
            }
            _ => {
                let _ = h.security_of(k);
            }
        }
    }
    if h.commit().is_err() {
        return;
    }
    let bytes = h.into_bytes();
    let h2 = Hive::from_bytes(bytes).expect("a committed hive parses again");
    let _ = reseal_hive::check(&h2);
    let _ = reseal_hive::reg::export(&h2, "", "\\");
});
