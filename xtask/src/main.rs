//! `cargo xtask …`: the one entry point for the project's automation.
//!
//! - `test`      check/install the oracle tools, check the corpus and licences, run every test
//! - `tools`     check (and with `--install`, install) the independent oracle tools
//! - `licenses`  fail if a GPL/AGPL/LGPL crate is in the non-dev dependency graph of a library
//! - `fuzz`      run every cargo-fuzz target for a while (`--seconds N`, default 60)
//! - `bench`     benchmarks side by side with the peer tools (see `xtask/src/bench.rs`)
//! - `fixtures`  rebuild the committed fixture images (see `xtask/src/fixtures.rs`)
//! - `soak`      corrupted-image campaigns through the CLI (see `xtask/src/soak.rs`)

mod bench;
mod fixtures;
mod licenses;
mod soak;
mod tools;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, rest) = match args.split_first() {
        Some((c, r)) => (c.as_str(), r),
        None => ("help", &[][..]),
    };
    match cmd {
        "test" => test(rest),
        "tools" => tools::ensure(rest.iter().any(|a| a == "--install")),
        "licenses" | "licences" => licenses::check(&workspace_root()),
        "fuzz" => fuzz(rest),
        "bench" => bench::run(rest),
        "soak" => soak::run(rest),
        "static" => static_build(),
        "fixtures" => fixtures::run_fixtures(rest),
        "help" | "--help" | "-h" => {
            println!("{}", HELP);
            Ok(())
        }
        other => bail!("unknown task `{other}`\n{HELP}"),
    }
}

const HELP: &str = "usage: cargo xtask <task>
  test [--no-install] [-- <cargo test args>]   oracles + corpus + licences + every test
  tools [--install]                            check (or install) the oracle tools
  licenses                                     non-dev dependency licence check
  fuzz [--seconds N] [TARGET...]               run cargo-fuzz targets (default 60 s each)
  bench [hive|ntfs|convert|generalize|clone|put|hivewalk|regsid|volsid|scale]  benchmarks against the peer tools (ratios)
  fixtures                                     rebuild the committed fixture images
  soak corrupt [--runs N] [--seed S]           corrupted-image campaign (default 2000 runs)
  static                                       static release binary (x86_64-unknown-linux-musl), checked";

/// The workspace root (the parent of this crate's directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("invariant: xtask lives one level below the workspace root")
        .to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR`, else `target` in the workspace.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// Build the release `reseal` binary (bench and soak measure it) and return its path.
pub fn release_reseal() -> Result<PathBuf> {
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(workspace_root())
        .args(["build", "--release", "-p", "reseal-cli"])
        .status()
        .context("running cargo build --release")?;
    if !st.success() {
        bail!("release build of reseal failed");
    }
    Ok(target_dir().join("release/reseal"))
}

/// The corpus directory: `RESEAL_CORPUS`, else `../shared/corpus` beside the workspace.
pub fn corpus_dir() -> PathBuf {
    reseal_tests::env::corpus_path()
}

fn check_corpus() -> Result<()> {
    let dir = corpus_dir();
    let sums = dir.join("SHA256SUMS");
    if !sums.is_file() {
        bail!(
            "the shared corpus is not at {} (set RESEAL_CORPUS to its path; it holds SHA256SUMS)",
            dir.display()
        );
    }
    let st = Command::new("sha256sum")
        .args(["--quiet", "-c", "SHA256SUMS"])
        .current_dir(&dir)
        .status()
        .context("running sha256sum")?;
    if !st.success() {
        bail!("corpus at {} does not match its SHA256SUMS", dir.display());
    }
    println!("xtask: corpus OK at {}", dir.display());
    Ok(())
}

fn test(args: &[String]) -> Result<()> {
    let install = !args.iter().any(|a| a == "--no-install");
    let passthrough: Vec<&String> = args
        .iter()
        .skip_while(|a| a.as_str() != "--")
        .skip(1)
        .collect();
    tools::ensure(install)?;
    check_corpus()?;
    licenses::check(&workspace_root())?;
    let root = workspace_root();
    let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root)
        .args(["test", "--workspace", "--all-targets"])
        .args(&passthrough)
        .env("RESEAL_CORPUS", corpus_dir())
        .env("PATH", tools::path_with_venv());
    let st = cmd.status().context("running cargo test")?;
    if !st.success() {
        bail!("cargo test failed");
    }
    // Doc tests are not part of --all-targets.
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args(["test", "--workspace", "--doc"])
        .status()
        .context("running cargo test --doc")?;
    if !st.success() {
        bail!("doc tests failed");
    }
    Ok(())
}

/// Build the static release binary for `x86_64-unknown-linux-musl` and check it: no dynamic
/// section (`ldd` says "not a dynamic executable" or "statically linked"), `--version` runs, and
/// the quick start's dry run on the committed fixture succeeds.
fn static_build() -> Result<()> {
    const TARGET: &str = "x86_64-unknown-linux-musl";
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let root = workspace_root();
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("running rustup target list")?;
    if !String::from_utf8_lossy(&installed.stdout).contains(TARGET) {
        bail!("the {TARGET} target is missing: run `rustup target add {TARGET}`");
    }
    if Command::new("musl-gcc").arg("--version").output().is_err() {
        bail!("musl-gcc is missing (zstd-sys builds C code): run `apt-get install -y musl-tools`");
    }
    let st = Command::new(&cargo)
        .current_dir(&root)
        .args(["build", "--release", "--target", TARGET, "-p", "reseal-cli"])
        .status()
        .context("running cargo build")?;
    if !st.success() {
        bail!("static build failed");
    }
    let bin = target_dir().join(TARGET).join("release/reseal");
    let ldd = Command::new("ldd")
        .arg(&bin)
        .output()
        .context("running ldd")?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ldd.stdout),
        String::from_utf8_lossy(&ldd.stderr)
    );
    if !(said.contains("statically linked") || said.contains("not a dynamic executable")) {
        bail!("{} is not static; ldd says: {said}", bin.display());
    }
    for args in [
        vec!["--version".to_string()],
        vec![
            "generalize".into(),
            root.join("fixtures/quickstart.vhdx").display().to_string(),
            "--computer-name".into(),
            "CLONE-0001".into(),
            "--dry-run".into(),
        ],
    ] {
        let out = Command::new(&bin).args(&args).output()?;
        if !out.status.success() {
            bail!(
                "{} {}: {}",
                bin.display(),
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    println!("xtask: static binary OK: {}", bin.display());
    Ok(())
}

fn fuzz(args: &[String]) -> Result<()> {
    let mut seconds = 60u64;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "--seconds" {
            seconds = it
                .next()
                .context("--seconds needs a number")?
                .parse()
                .context("--seconds needs a number")?;
        } else {
            targets.push(a.clone());
        }
    }
    let fuzz_dir = workspace_root().join("fuzz");
    if !fuzz_dir.join("Cargo.toml").is_file() {
        bail!("no fuzz crate at {}", fuzz_dir.display());
    }
    if Command::new("cargo")
        .args(["fuzz", "--version"])
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        bail!("cargo-fuzz is not installed: run `cargo install cargo-fuzz`");
    }
    // Seeds come from the shared corpus (fuzz/seeds is git-ignored).
    let seeds_script = fuzz_dir.join("make-seeds.sh");
    if seeds_script.is_file() {
        let st = Command::new("sh")
            .arg(&seeds_script)
            .env("RESEAL_CORPUS", corpus_dir())
            .status()
            .context("running fuzz/make-seeds.sh")?;
        if !st.success() {
            bail!("fuzz/make-seeds.sh failed");
        }
    }
    if targets.is_empty() {
        let out = Command::new("cargo")
            .args(["fuzz", "list"])
            .current_dir(&fuzz_dir)
            .env("RUSTC_BOOTSTRAP", "1")
            .output()?;
        targets = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect();
    }
    for t in &targets {
        let seeds = fuzz_dir.join("seeds").join(t);
        let corpus = fuzz_dir.join("corpus").join(t);
        std::fs::create_dir_all(&corpus)?;
        println!("xtask: fuzzing {t} for {seconds} s");
        let mut cmd = Command::new("cargo");
        // The machine has only a stable toolchain; cargo-fuzz needs -Z flags.
        cmd.env("RUSTC_BOOTSTRAP", "1")
            .current_dir(&fuzz_dir)
            .args(["fuzz", "run", t])
            .arg(&corpus);
        if seeds.is_dir() {
            cmd.arg(&seeds);
        }
        cmd.args([
            "--",
            &format!("-max_total_time={seconds}"),
            "-rss_limit_mb=4096",
        ]);
        let st = cmd.status()?;
        if !st.success() {
            bail!("fuzz target {t} failed (see fuzz/artifacts/{t})");
        }
    }
    Ok(())
}
