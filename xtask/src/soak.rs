//! `cargo xtask soak corrupt [--runs N] [--seed S]`: corrupted-image campaigns.
//!
//! Random byte mutations of a Windows-like image (the committed quick-start fixture, as raw)
//! and of real Windows-made NTFS volumes from the corpus, each run through `inspect`,
//! `ls -l /`, `cat` of a file the original has, and `generalize --dry-run`, with the release
//! binary. A run that exits 101 (a Rust panic), dies of a signal or outlives the timeout (a
//! hang) is a finding: the mutated input is kept in `target/soak/findings/` and the campaign
//! fails. Mutations hit the non-zero sectors of the input (its metadata and data), never the
//! long runs of zeros where a flip would be harmless.

use anyhow::{bail, Context, Result};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use crate::{corpus_dir, workspace_root};

struct Input {
    name: String,
    bytes: Vec<u8>,
    /// Offsets of non-zero 512-byte sectors.
    hot: Vec<usize>,
    /// A file `cat` reads.
    file: String,
    windows: bool,
}

/// xorshift64*: reproducible from `--seed`, no dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn hot_sectors(b: &[u8]) -> Vec<usize> {
    b.chunks(512)
        .enumerate()
        .filter(|(_, c)| c.iter().any(|&x| x != 0))
        .map(|(i, _)| i * 512)
        .collect()
}

fn run_one(reseal: &Path, timeout_s: u32, args: &[&str], image: &Path) -> Result<Option<String>> {
    let mut c = Command::new("timeout");
    c.args(["-s", "KILL", &timeout_s.to_string()])
        .arg(reseal)
        .arg("--lock-timeout")
        .arg("0")
        .args(&args[..1])
        .arg(image)
        .args(&args[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let o = c.output().context("running timeout(1)")?;
    let err = String::from_utf8_lossy(&o.stderr);
    Ok(match o.status.code() {
        Some(101) => Some(format!(
            "panic: {}",
            err.lines()
                .find(|l| l.contains("panicked"))
                .unwrap_or("(no message)")
        )),
        Some(137) | None => Some(format!("hang or signal (over {timeout_s} s or killed)")),
        _ if err.contains("panicked at") => Some(format!("panic: {err}")),
        _ => None,
    })
}

/// Entry point.
pub fn run(args: &[String]) -> Result<()> {
    let mut runs = 2000usize;
    let mut seed = 0x5eed_u64;
    let mut it = args.iter();
    let what = it.next().map(String::as_str).unwrap_or("corrupt");
    if what != "corrupt" {
        bail!("unknown soak `{what}` (known: corrupt)");
    }
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().context("--runs N")?.parse()?,
            "--seed" => seed = it.next().context("--seed S")?.parse()?,
            other => bail!("unknown option {other}"),
        }
    }
    let root = workspace_root();
    let reseal = crate::release_reseal()?;
    let dir = crate::target_dir().join("soak");
    let findings = dir.join("findings");
    std::fs::create_dir_all(&findings)?;

    let mut inputs = Vec::new();
    let fixture_raw = dir.join("quickstart.raw");
    let _ = std::fs::remove_file(&fixture_raw);
    let st = Command::new(&reseal)
        .arg("convert")
        .arg(root.join("fixtures/quickstart.vhdx"))
        .arg(&fixture_raw)
        .args(["--format", "raw"])
        .status()?;
    if !st.success() {
        bail!("converting the fixture to raw failed");
    }
    let b = std::fs::read(&fixture_raw)?;
    inputs.push(Input {
        name: "quickstart.raw".into(),
        hot: hot_sectors(&b),
        bytes: b,
        file: "/Windows/System32/config/SYSTEM".into(),
        windows: true,
    });
    for (rel, file) in [
        ("go-ntfs/charlie.dd.bz2", "/"),
        ("velociraptor/test.ntfs.dd.raw.xz", "/"),
        ("dfir_ntfs/ntfs_index.raw.gz", "/"),
    ] {
        if !corpus_dir().join(rel).is_file() {
            println!("soak: {rel} not in the corpus, skipped");
            continue;
        }
        let out = reseal_tests::corpus_file(rel, &dir)?;
        let b = std::fs::read(&out)?;
        if b.iter().all(|&x| x == 0) {
            println!("soak: {rel} is all zeros, skipped");
            continue;
        }
        // The first regular file the original lists, for `cat`.
        let ls = Command::new(&reseal)
            .arg("ls")
            .arg(&out)
            .arg(file)
            .output()?;
        let first = String::from_utf8_lossy(&ls.stdout)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.ends_with('/') && !l.starts_with('$'))
            .map(|l| format!("/{l}"))
            .unwrap_or_else(|| "/$Volume".into());
        inputs.push(Input {
            name: rel.into(),
            hot: hot_sectors(&b),
            bytes: b,
            file: first,
            windows: false,
        });
    }
    let mut rng = Rng(seed | 1);
    let work = dir.join("work.img");
    let started = Instant::now();
    let mut found = Vec::new();
    let mut per_input = vec![0usize; inputs.len()];
    for run in 0..runs {
        let i = run % inputs.len();
        let inp = &inputs[i];
        per_input[i] += 1;
        let mut b = inp.bytes.clone();
        let flips = 1 + rng.below(16);
        for _ in 0..flips {
            let sector = inp.hot[rng.below(inp.hot.len())];
            let at = (sector + rng.below(512)).min(b.len() - 1);
            b[at] = (rng.next() & 0xff) as u8;
        }
        std::fs::write(&work, &b)?;
        let _ = std::fs::remove_dir_all(dir.join("work.img.reseal-journal"));
        let mut cmds: Vec<Vec<&str>> = vec![
            vec!["inspect"],
            vec!["ls", "/", "-l"],
            vec!["cat", inp.file.as_str()],
        ];
        if inp.windows {
            cmds.push(vec!["generalize", "--dry-run"]);
        }
        for c in &cmds {
            if let Some(why) = run_one(&reseal, 30, c, &work)? {
                let keep = findings.join(format!("{run:05}-{}.img", inp.name.replace('/', "_")));
                std::fs::write(&keep, &b)?;
                println!(
                    "soak: run {run} ({}) `{}`: {why}; kept {}",
                    inp.name,
                    c.join(" "),
                    keep.display()
                );
                found.push((run, c.join(" "), why));
            }
        }
        if (run + 1) % 100 == 0 {
            println!(
                "soak: {} runs, {} findings, {:.0} s",
                run + 1,
                found.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let summary = format!(
        "corrupted-image campaign: {runs} runs (seed {seed}) over {} inputs ({}), each through {}; {} findings; {:.0} s",
        inputs.len(),
        inputs
            .iter()
            .zip(&per_input)
            .map(|(i, n)| format!("{} ×{n}", i.name))
            .collect::<Vec<_>>()
            .join(", "),
        "inspect, ls -l /, cat, generalize --dry-run (Windows input)",
        found.len(),
        started.elapsed().as_secs_f64()
    );
    println!("{summary}");
    std::fs::write(dir.join("report.txt"), format!("{summary}\n"))?;
    if !found.is_empty() {
        bail!(
            "{} findings (inputs in {})",
            found.len(),
            findings.display()
        );
    }
    Ok(())
}
