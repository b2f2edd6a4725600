//! `cargo xtask bench [NAME…]`: benchmarks of reseal side by side with the peer tools on the same
//! input, reported as ratios (peer time / reseal time; above 1 means reseal is faster).
//!
//! Each benchmark prepares its input under `target/bench/`, runs every command a few times after
//! one warm-up run, and reports the median wall time. Results go to standard output and to
//! `target/bench/results.txt`.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::workspace_root;

type Bench = fn(&mut Ctx) -> Result<()>;

struct Ctx {
    dir: PathBuf,
    reseal: PathBuf,
    runs: usize,
    report: Vec<String>,
}

pub fn run(args: &[String]) -> Result<()> {
    let root = workspace_root();
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["build", "--release", "-p", "reseal-cli"])
        .status()?;
    if !st.success() {
        bail!("release build failed");
    }
    let dir = root.join("target/bench");
    std::fs::create_dir_all(&dir)?;
    let mut ctx = Ctx {
        dir,
        reseal: root.join("target/release/reseal"),
        runs: 3,
        report: Vec::new(),
    };
    let all: &[(&str, Bench)] = &[("convert", bench_convert)];
    let wanted: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    for (name, f) in all {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            println!("== bench {name}");
            f(&mut ctx).with_context(|| format!("bench {name}"))?;
        }
    }
    let text = ctx.report.join("\n");
    std::fs::write(ctx.dir.join("results.txt"), &text)?;
    println!("\n{text}");
    Ok(())
}

fn time_cmd(
    ctx: &Ctx,
    label: &str,
    mk: &dyn Fn() -> Command,
    before: &dyn Fn(),
) -> Result<Duration> {
    let mut times = Vec::new();
    for i in 0..=ctx.runs {
        before();
        let mut cmd = mk();
        cmd.stdout(Stdio::null());
        let t = Instant::now();
        let st = cmd.status().with_context(|| format!("running {label}"))?;
        let el = t.elapsed();
        if !st.success() {
            bail!("{label} failed");
        }
        if i > 0 {
            times.push(el);
        }
    }
    times.sort();
    let med = times[times.len() / 2];
    println!(
        "  {label}: median {:.3} s over {} runs",
        med.as_secs_f64(),
        times.len()
    );
    Ok(med)
}

fn ratio(ctx: &mut Ctx, what: &str, ours: Duration, peer_name: &str, peer: Duration) {
    let r = peer.as_secs_f64() / ours.as_secs_f64().max(1e-9);
    ctx.report.push(format!(
        "{what}: reseal {:.3} s, {peer_name} {:.3} s, ratio {peer_name}/reseal = {r:.2}",
        ours.as_secs_f64(),
        peer.as_secs_f64()
    ));
}

/// A sparse raw image: 4 GiB virtual, ~1 GiB of pseudo-random data in 1 MiB extents spread over it.
fn sparse_input(ctx: &Ctx) -> Result<PathBuf> {
    let path = ctx.dir.join("sparse-4g.raw");
    if path.is_file() {
        return Ok(path);
    }
    let tmp = ctx.dir.join("sparse-4g.raw.tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)?;
    let virt: u64 = 4 << 30;
    f.set_len(virt)?;
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut chunk = vec![0u8; 1 << 20];
    // Every 4th MiB holds data: 1 GiB in all.
    for mib in (0..(virt >> 20)).step_by(4) {
        for w in chunk.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        f.seek(SeekFrom::Start(mib << 20))?;
        f.write_all(&chunk)?;
    }
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

fn drop_output(p: &Path) {
    let _ = std::fs::remove_file(p);
}

fn bench_convert(ctx: &mut Ctx) -> Result<()> {
    let input = sparse_input(ctx)?;
    for (ours_fmt, qemu_fmt, qemu_opts) in [
        ("vhdx", "vhdx", "subformat=dynamic"),
        ("vhd", "vpc", "subformat=dynamic"),
        ("raw", "raw", ""),
    ] {
        let out_ours = ctx.dir.join(format!("out-reseal.{ours_fmt}"));
        let out_qemu = ctx.dir.join(format!("out-qemu.{ours_fmt}"));
        let reseal = ctx.reseal.clone();
        let (i1, o1) = (input.clone(), out_ours.clone());
        let ours = time_cmd(
            ctx,
            &format!("reseal convert --format {ours_fmt}"),
            &|| {
                let mut c = Command::new(&reseal);
                c.arg("convert")
                    .arg(&i1)
                    .arg(&o1)
                    .args(["--format", ours_fmt]);
                c
            },
            &|| drop_output(&o1),
        )?;
        let (i2, o2) = (input.clone(), out_qemu.clone());
        let peer = time_cmd(
            ctx,
            &format!("qemu-img convert -O {qemu_fmt}"),
            &|| {
                let mut c = Command::new("qemu-img");
                c.args(["convert", "-f", "raw", "-O", qemu_fmt]);
                if !qemu_opts.is_empty() {
                    c.args(["-o", qemu_opts]);
                }
                c.arg(&i2).arg(&o2);
                c
            },
            &|| drop_output(&o2),
        )?;
        // Both outputs must hold the same disk.
        let st = Command::new("qemu-img")
            .args(["compare", "-q"])
            .arg(&out_ours)
            .arg(&out_qemu)
            .status()?;
        if !st.success() {
            bail!("reseal's {ours_fmt} output differs from qemu-img's");
        }
        ratio(
            ctx,
            &format!("convert 4 GiB sparse raw (1 GiB data) -> {ours_fmt}"),
            ours,
            "qemu-img",
            peer,
        );
        drop_output(&out_ours);
        drop_output(&out_qemu);
    }
    let _ = File::open(&input)?;
    Ok(())
}
