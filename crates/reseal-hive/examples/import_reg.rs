//! Applies a `.reg` file to a hive (benchmark helper for `cargo xtask bench`, the
//! counterpart of `hivexregedit --merge`):
//! `cargo run --release -p reseal-hive --example import_reg -- HIVE OUT FILE.reg PREFIX`.

use reseal_hive::Hive;

fn main() {
    let a: Vec<String> = std::env::args().skip(1).collect();
    let [hive, out, reg, prefix] = &a[..] else {
        eprintln!("usage: import_reg HIVE OUT FILE.reg PREFIX");
        std::process::exit(2);
    };
    let t = std::time::Instant::now();
    let mut h = Hive::from_bytes(std::fs::read(hive).expect("read hive")).expect("open");
    h.make_writable().expect("writable");
    let st = reseal_hive::reg::import(&mut h, &std::fs::read(reg).expect("read .reg"), prefix)
        .expect("import");
    h.commit().expect("commit");
    std::fs::write(out, h.as_bytes()).expect("write");
    eprintln!("{st:?} in {:?}", t.elapsed());
}
