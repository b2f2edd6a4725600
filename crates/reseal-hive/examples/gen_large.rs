//! Generates a large hive through the editing API (benchmark input for `cargo xtask bench`):
//! `cargo run --release -p reseal-hive --example gen_large -- BASE_HIVE OUT KEYS VALUES`.
//! BASE_HIVE is any small clean hive (e.g. the corpus' hivex/minimal); keys are spread
//! over a tree with fan-out 50, values round-robin over the keys with mixed types/sizes.

use reseal_hive::{Hive, REG_BINARY, REG_DWORD, REG_SZ};

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [base, out, keys, values] = &a[..] else {
        eprintln!("usage: gen_large BASE_HIVE OUT KEYS VALUES");
        std::process::exit(2);
    };
    let keys: usize = keys.parse().expect("KEYS");
    let values: usize = values.parse().expect("VALUES");
    let t = std::time::Instant::now();
    let mut h = Hive::from_bytes(std::fs::read(base).expect("read base")).expect("open");
    h.make_writable().expect("writable");
    let mut offs = vec![h.root_offset()];
    for i in 0..keys {
        let parent = offs[i / 50];
        let k = h.create_key(parent, &format!("Key{i:06}")).expect("create");
        offs.push(k);
    }
    for j in 0..values {
        let k = offs[1 + j % keys.max(1)];
        match j % 3 {
            0 => h.set_value(k, &format!("dw{j}"), REG_DWORD, &(j as u32).to_le_bytes()),
            1 => h.set_value(
                k,
                &format!("sz{j}"),
                REG_SZ,
                &reseal_hive::key_value::encode_sz(&format!("value number {j}")),
            ),
            _ => h.set_value(
                k,
                &format!("bin{j}"),
                REG_BINARY,
                &vec![(j % 251) as u8; 16 + j % 200],
            ),
        }
        .expect("set value");
    }
    h.commit().expect("commit");
    std::fs::write(out, h.as_bytes()).expect("write");
    eprintln!(
        "generated {keys} keys / {values} values ({} bytes) in {:?}",
        h.as_bytes().len(),
        t.elapsed()
    );
}
