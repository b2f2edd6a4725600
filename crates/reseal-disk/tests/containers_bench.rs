//! Convert throughput against `qemu-img convert` (ignored: run with
//! `cargo test --release -p reseal-disk --test containers_bench -- --ignored --nocapture`).

mod containers_util;

use std::time::Instant;

use containers_util::*;
use reseal_disk::convert::{convert, TargetFormat};
use reseal_disk::{Access, Image};

#[test]
#[ignore = "benchmark: writes ~1 GiB"]
fn bench_convert_vs_qemu() {
    if !have("qemu-img") {
        return;
    }
    let gib: u64 = std::env::var("RESEAL_BENCH_GIB")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2);
    let dir =
        tempfile::tempdir_in(std::env::var("RESEAL_BENCH_DIR").unwrap_or_else(|_| "/tmp".into()))
            .unwrap();
    let src = dir.path().join("src.raw");
    {
        let mut f = reseal_disk::raw::HostFile::create(&src).unwrap();
        use reseal_disk::Device;
        f.set_len(gib << 30).unwrap();
        // A quarter of the disk holds data, in 1 MiB runs.
        let chunk = pseudo_random(9, 1 << 20);
        for i in 0..(gib << 10) {
            if i % 4 == 1 {
                f.write_at(i << 20, &chunk).unwrap();
            }
        }
        f.flush().unwrap();
    }
    for (ours, qemu, ext) in [
        (TargetFormat::VhdDynamic, "vpc", "vhd"),
        (TargetFormat::Vhdx, "vhdx", "vhdx"),
        (TargetFormat::Raw, "raw", "raw"),
    ] {
        if std::env::var("RESEAL_BENCH_FMT").is_ok_and(|f| f != ext) {
            continue;
        }
        let q_out = dir.path().join(format!("q.{ext}"));
        let _ = std::process::Command::new("sync").status();
        let t = Instant::now();
        run(
            "qemu-img",
            &["convert", "-f", "raw", "-O", qemu, p(&src), p(&q_out)],
        );
        // Both timed until the data is on disk: page-cache writeback otherwise makes the numbers
        // depend on which run happens to hit the dirty-page limit.
        let _ = std::process::Command::new("sync").status();
        let tq = t.elapsed().as_secs_f64();
        let r_out = dir.path().join(format!("r.{ext}"));
        let _ = std::process::Command::new("sync").status();
        let t = Instant::now();
        let img = Image::open(&src, Access::ReadOnly).unwrap();
        convert(&img, &r_out, ours, &mut |_, _| {}).unwrap();
        let _ = std::process::Command::new("sync").status();
        let tr = t.elapsed().as_secs_f64();
        run(
            "qemu-img",
            &[
                "compare",
                "-q",
                "-F",
                qemu,
                "-f",
                qemu,
                p(&q_out),
                p(&r_out),
            ],
        );
        eprintln!("{gib} GiB sparse raw -> {ext}: reseal {tr:.3} s, qemu-img {tq:.3} s, ratio qemu/reseal = {:.2}", tq / tr);
        eprintln!(
            "  output sizes: reseal {} bytes, qemu-img {} bytes",
            std::fs::metadata(&r_out).unwrap().len(),
            std::fs::metadata(&q_out).unwrap().len()
        );
        std::fs::remove_file(&q_out).unwrap();
        std::fs::remove_file(&r_out).unwrap();
    }
}
