//! `bench scale` (issue 16 goal (d)): `reseal generalize` on real-scale images, against the time
//! to read once the bytes it reads, with its peak RSS.
//!
//! Three bare volumes of one layout (16 GiB NTFS, eight profiles, 10k distinct descriptors, a
//! ~100 MB SOFTWARE, a ~100 MB COMPONENTS (81,500 keys: larger than the 80 MB asked) and eight
//! ~2.5 MB NTUSER.DAT): 50k files, 400k files,
//! and the 400k one plus 10 GiB of file data whose clusters are allocated in NTFS but never
//! written (holes of the sparse image file: no host disk). Goals: reseal/floor ≤ 3, peak RSS ≤
//! 256 MiB; time linear in metadata (50k vs 400k) and flat in file data (400k vs 400k + 10 GiB).
//!
//! Building the fixtures takes long (cached under `target/bench/scale-*.img`); set
//! `RESEAL_BENCH_SCALE=0` to skip this part.

use super::{cp_sparse, peak_kib, time_runs, traced_ranges, Ctx, NEW_SID};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The volume size (MiB): room for 10 GiB of data next to the 400k files.
const NTFS_MIB: &str = "16384";
/// Distinct file descriptors.
const DESCRIPTORS: &str = "10000";
/// SOFTWARE keys (~100 MB hive), NTUSER.DAT keys (~2.5 MB each), COMPONENTS keys (~80 MB).
const SOFTWARE_KEYS: &str = "102000";
const NTUSER_KEYS: &str = "2500";
const COMPONENTS_KEYS: &str = "81500";
/// The file data of the third case: 40 files of 256 MiB.
const DATA_FILES: &str = "40";
const DATA_MIB: &str = "256";

/// One measured case.
struct Row {
    name: &'static str,
    stats: String,
    ours: Duration,
    floor: Duration,
    touched: String,
    rss_kib: u64,
}

/// Build (once) the fixture `scale-NAME.img` with `files` bulk files; with `data`, a sparse copy
/// of `base` with the data files added instead.
fn fixture(
    ctx: &Ctx,
    driver: &Path,
    name: &str,
    files: usize,
    data: Option<&Path>,
) -> Result<PathBuf> {
    let img = ctx.dir.join(format!("scale-{name}.img"));
    let hives = ctx.dir.join(format!("scale-{name}.img.hives"));
    if img.is_file() && hives.is_file() {
        return Ok(img);
    }
    println!("  building {} (once)", img.display());
    let tmp = ctx.dir.join(format!("scale-{name}.tmp"));
    let tmp_hives = ctx.dir.join(format!("scale-{name}.tmp.hives"));
    if let Some(base) = data {
        cp_sparse(base, &tmp);
        let mut b = base.as_os_str().to_owned();
        b.push(".hives");
        std::fs::copy(PathBuf::from(b), &tmp_hives)?;
        let st = Command::new(driver)
            .arg("data")
            .arg(&tmp)
            .args([DATA_FILES, DATA_MIB])
            .status()?;
        if !st.success() {
            bail!("adding the file data to {} failed", tmp.display());
        }
    } else {
        let st = Command::new(driver)
            .arg("build")
            .arg(&tmp)
            .arg(files.to_string())
            .args([
                DESCRIPTORS,
                SOFTWARE_KEYS,
                NTUSER_KEYS,
                NTFS_MIB,
                COMPONENTS_KEYS,
            ])
            .status()?;
        if !st.success() {
            bail!("building the {name} scale fixture failed");
        }
    }
    std::fs::rename(&tmp_hives, &hives)?;
    std::fs::rename(&tmp, &img)?;
    Ok(img)
}

/// Host disk blocks of a file, in MiB.
fn on_disk_mib(p: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).map_or(0, |m| (m.blocks() * 512) >> 20)
}

/// Time generalize on `pristine`, trace a dry run for the floor, time the floor.
fn measure(
    ctx: &Ctx,
    driver: &Path,
    name: &'static str,
    pristine: &Path,
    runs: usize,
) -> Result<Row> {
    let stats = Command::new(driver).arg("stats").arg(pristine).output()?;
    let stats = String::from_utf8_lossy(&stats.stdout).trim().to_string();
    println!(
        "  {name}: {stats}; {} MiB on host disk",
        on_disk_mib(pristine)
    );
    let work = ctx.dir.join("scale-work.img");
    let mem = ctx.dir.join(format!("scale-mem-{name}.txt"));
    let _ = std::fs::remove_file(&mem);
    let (r, w, p, m) = (
        ctx.reseal.clone(),
        work.clone(),
        pristine.to_path_buf(),
        mem.clone(),
    );
    let ours = time_runs(
        runs,
        true,
        &format!("{name}: reseal generalize (commit with undo file)"),
        &|| {
            let mut c = Command::new("/usr/bin/time");
            c.args(["-f", "%M", "-a", "-o"])
                .arg(&m)
                .arg(&r)
                .arg("generalize")
                .arg(&w)
                .args(["--new-sid", NEW_SID, "--computer-name", "BENCH-0001"]);
            c.stderr(Stdio::null());
            c
        },
        &|| cp_sparse(&p, &w),
    )?;
    let o = Command::new(&ctx.reseal)
        .arg("inspect")
        .arg(&work)
        .output()?;
    let text = String::from_utf8_lossy(&o.stdout);
    if !text.contains(NEW_SID) || !text.contains("BENCH-0001") {
        bail!("{name}: inspect after generalize does not show the new SID and name");
    }

    // The floor, as bench_generalize computes it: the bytes a traced dry run reads, merged and
    // read once.
    cp_sparse(pristine, &work);
    let trace = ctx.dir.join("scale-strace.txt");
    let st = Command::new("strace")
        .args(["-e", "trace=openat,pread64,close", "-o"])
        .arg(&trace)
        .arg(&ctx.reseal)
        .arg("generalize")
        .arg(&work)
        .args([
            "--new-sid",
            NEW_SID,
            "--computer-name",
            "BENCH-0001",
            "--dry-run",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running strace (apt-get install strace)")?;
    if !st.success() {
        bail!("{name}: traced dry run failed");
    }
    let ranges = ctx.dir.join("scale-ranges.txt");
    let listed = traced_ranges(&trace, &work)?;
    let _ = std::fs::remove_file(&trace);
    if listed.is_empty() {
        bail!("the strace log names no read of {}", work.display());
    }
    std::fs::write(&ranges, listed)?;
    let touched = Command::new(driver)
        .arg("read")
        .arg(&work)
        .arg(&ranges)
        .output()?;
    let touched = String::from_utf8_lossy(&touched.stdout).trim().to_string();
    println!("  {name}: touched {touched}");
    let (d, w2, rg) = (driver.to_path_buf(), work.clone(), ranges.clone());
    let floor = time_runs(
        runs,
        true,
        &format!("{name}: read the touched bytes once"),
        &|| {
            let mut c = Command::new(&d);
            c.arg("read").arg(&w2).arg(&rg);
            c
        },
        &|| {},
    )?;
    let _ = std::fs::remove_file(&work);
    let _ = std::fs::remove_dir_all(super::ctx_journal(&work));
    Ok(Row {
        name,
        stats,
        ours,
        floor,
        touched,
        rss_kib: peak_kib(&mem),
    })
}

pub(super) fn bench_scale(ctx: &mut Ctx) -> Result<()> {
    if std::env::var("RESEAL_BENCH_SCALE").is_ok_and(|v| v == "0") {
        println!("  skipped (RESEAL_BENCH_SCALE=0)");
        return Ok(());
    }
    let driver = super::build_example("generalize_bench")?;
    let small = fixture(ctx, &driver, "50k", 50_000, None)?;
    let large = fixture(ctx, &driver, "400k", 400_000, None)?;
    let data = fixture(ctx, &driver, "400k-10g", 400_000, Some(&large))?;
    let runs = ctx.runs;
    let mut rows = Vec::new();
    for (name, img) in [("50k", &small), ("400k", &large), ("400k+10GiB", &data)] {
        rows.push(measure(ctx, &driver, name, img, runs)?);
    }
    for r in &rows {
        let ratio = r.ours.as_secs_f64() / r.floor.as_secs_f64().max(1e-9);
        let rss = r.rss_kib as f64 / 1024.0;
        ctx.report.push(format!(
            "generalize at scale, {}: {}; touched {}; reseal {:.3} s, read once {:.3} s, \
             reseal/floor = {ratio:.2} (goal <= 3: {}); peak RSS {rss:.1} MiB (goal <= 256: {})",
            r.name,
            r.stats,
            r.touched,
            r.ours.as_secs_f64(),
            r.floor.as_secs_f64(),
            if ratio <= 3.0 { "met" } else { "NOT met" },
            if rss <= 256.0 { "met" } else { "NOT met" },
        ));
    }
    let t = |i: usize| rows[i].ours.as_secs_f64();
    ctx.report.push(format!(
        "generalize at scale: 400k/50k time = {:.2} (8x the files), 400k+10GiB/400k time = {:.2} \
         (flat in file data when ~1)",
        t(1) / t(0).max(1e-9),
        t(2) / t(1).max(1e-9)
    ));
    Ok(())
}
