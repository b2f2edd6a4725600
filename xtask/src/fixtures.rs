//! `cargo xtask fixtures`: build the committed fixture images from scratch.
//!
//! Every file system in a fixture is written by an independent implementation (sfdisk for the
//! GPT, mkfs.fat for the ESP, mkntfs and an ntfs-3g mount for the NTFS volume); the container is
//! made by `qemu-img`. Rebuilding gives an equivalent image (mkntfs draws a new volume serial and
//! GUIDs, and times differ), so the committed copy is the reference for the README's quick start.

use anyhow::{Context, Result};
use reseal_tests::{gpt_type, run, DiskSpec, Entry, NtfsSpec, PartContent, PartSpec};
use std::path::Path;
use std::process::Command;

use crate::workspace_root;

/// The Windows-like folder skeleton of the quick-start fixture.
fn windows_tree() -> Vec<Entry> {
    let mut e = Vec::new();
    for d in [
        "Windows/System32/config",
        "Windows/System32/Tasks",
        "Windows/Temp",
        "Users/Public",
        "Users/Default",
        "ProgramData/Microsoft/Crypto/RSA/MachineKeys",
        "Program Files",
        "Program Files (x86)",
        "$Recycle.Bin",
    ] {
        e.push(Entry::Dir(d.into()));
    }
    e.push(Entry::File(
        "Windows/win.ini".into(),
        b"; for 16-bit app support\r\n[fonts]\r\n[extensions]\r\n".to_vec(),
    ));
    e.push(Entry::File(
        "README.txt".into(),
        b"reseal quick-start fixture: a GPT disk with an ESP, an MSR and an NTFS volume.\r\n"
            .to_vec(),
    ));
    e
}

pub fn run_fixtures(_args: &[String]) -> Result<()> {
    let out_dir = workspace_root().join("fixtures");
    std::fs::create_dir_all(&out_dir)?;
    let tmp = tempfile::tempdir()?;
    let raw = tmp.path().join("quickstart.raw");
    DiskSpec {
        label: "gpt".into(),
        tail: 1 << 20,
        parts: vec![
            PartSpec {
                kind: gpt_type::ESP.into(),
                name: "EFI system partition".into(),
                size: 33 << 20,
                content: PartContent::Fat32 {
                    label: "SYSTEM".into(),
                },
            },
            PartSpec {
                kind: gpt_type::MSR.into(),
                name: "Microsoft reserved partition".into(),
                size: 16 << 20,
                content: PartContent::Empty,
            },
            PartSpec {
                kind: gpt_type::BASIC_DATA.into(),
                name: "Basic data partition".into(),
                size: 48 << 20,
                content: PartContent::Ntfs(NtfsSpec {
                    size: 0,
                    cluster: 4096,
                    label: "Windows".into(),
                    entries: windows_tree(),
                }),
            },
        ],
    }
    .build(&raw)
    .context("building the quick-start disk")?;
    let out = out_dir.join("quickstart.vhdx");
    write_vhdx(&raw, &out)?;
    println!("xtask: wrote {}", out.display());
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
