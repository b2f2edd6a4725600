//! Full traversal with every value decoded (benchmark helper for `cargo xtask bench`):
//! `cargo run --release -p reseal-hive --example walk -- HIVE [ITERATIONS]`.

use reseal_hive::{Hive, Key, Value, Visitor};

#[derive(Default)]
struct Count {
    keys: u64,
    values: u64,
    bytes: u64,
}

impl Visitor for Count {
    fn enter_key(&mut self, key: &Key<'_>, _path: &str) -> reseal_hive::Result<()> {
        self.keys += 1;
        self.bytes += key.name_ref().len_units() as u64;
        Ok(())
    }
    fn value(&mut self, _key: &Key<'_>, v: &Value<'_>) -> reseal_hive::Result<()> {
        self.values += 1;
        self.bytes += v.data()?.len() as u64 + v.name_ref().len_units() as u64;
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: walk HIVE [ITERATIONS]");
    let iters: u32 = args.next().map(|s| s.parse().expect("number")).unwrap_or(1);
    let bytes = std::fs::read(&path).expect("read hive");
    let t = std::time::Instant::now();
    let mut c = Count::default();
    for _ in 0..iters {
        let h = Hive::from_bytes(bytes.clone()).expect("open");
        c = Count::default();
        h.walk(&mut c).expect("walk");
    }
    let dt = t.elapsed() / iters;
    println!(
        "{path}: {} keys, {} values, {} bytes decoded in {:.3} ms",
        c.keys,
        c.values,
        c.bytes,
        dt.as_secs_f64() * 1e3
    );
}
