//! `cargo xtask fixtures [--all [DIR]]`: build the committed fixture images from scratch (and,
//! with `--all`, every Windows-like variant into DIR, default `target/fixtures`).
//!
//! The file systems are written by independent implementations (sfdisk for the GPT, mkfs.fat for
//! the ESP, mkntfs and an ntfs-3g mount for the NTFS volume, descriptors through
//! `system.ntfs_acl`); the hives by reseal-hive (checked by hivex and regipy in the tests); the
//! container by `qemu-img`. The description is `reseal_tests::windows::WindowsSpec`. Rebuilding
//! gives an equivalent image (mkntfs draws a new volume serial and GUIDs, times differ), so the
//! committed copy is the reference for the README's quick start.

use anyhow::{Context, Result};
use reseal_tests::run;
use reseal_tests::windows::{build_all, WindowsSpec};
use std::path::Path;
use std::process::Command;

use crate::workspace_root;

pub fn run_fixtures(args: &[String]) -> Result<()> {
    let out_dir = workspace_root().join("fixtures");
    std::fs::create_dir_all(&out_dir)?;
    let tmp = tempfile::tempdir()?;
    // The committed quick-start image: the default Windows-like spec (GPT with ESP, MSR and an
    // NTFS volume holding SAM/SECURITY/SYSTEM/SOFTWARE/DEFAULT, users, profiles, descriptors).
    let raw = tmp.path().join("quickstart.raw");
    WindowsSpec::default()
        .build(&raw)
        .context("building the quick-start disk")?;
    let out = out_dir.join("quickstart.vhdx");
    write_vhdx(&raw, &out)?;
    println!("xtask: wrote {}", out.display());
    // Every variant, when asked for (not committed: tests build what they need).
    if let Some(i) = args.iter().position(|a| a == "--all") {
        let dir = args
            .get(i + 1)
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target/fixtures"));
        for p in build_all(&dir)? {
            println!("xtask: wrote {}", p.display());
        }
    }
    Ok(())
}

fn write_vhdx(raw: &Path, out: &Path) -> Result<()> {
    let tmp = out.with_extension("vhdx.tmp");
    let _ = std::fs::remove_file(&tmp);
    run(Command::new("qemu-img")
        .args([
            "convert",
            "-f",
            "raw",
            "-O",
            "vhdx",
            "-o",
            "subformat=dynamic,block_size=1M",
        ])
        .arg(raw)
        .arg(&tmp))?;
    run(Command::new("qemu-img").args(["check", "-q"]).arg(&tmp))?;
    std::fs::rename(&tmp, out)?;
    Ok(())
}
