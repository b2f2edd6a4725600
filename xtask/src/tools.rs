//! The independent oracle tools the tests compare against, and how to install them on Debian.

use anyhow::{bail, Context, Result};
use std::process::{Command, Stdio};

/// (command, Debian package providing it): the table the tests name packages from.
const APT_TOOLS: &[(&str, &str)] = reseal_tests::env::ORACLE_TOOLS;

/// Python modules the tests import, with their PyPI names.
/// What `cargo xtask bench` needs beyond the oracle tools: the peer of `generalize` (Samba's
/// `profiles`), peak-memory measurement and the read trace of the floor.
pub const BENCH_APT_TOOLS: &[(&str, &str)] = &[
    ("profiles", "samba"),
    ("/usr/bin/time", "time"),
    ("strace", "strace"),
];

/// Python modules the tests import (module, PyPI name). They live in a virtual environment the
/// test command creates ([`venv_dir`]): current Debian refuses system-wide pip (PEP 668).
const PIP_TOOLS: &[(&str, &str)] = &[
    ("regipy", "regipy"),
    ("impacket", "impacket"),
    ("dissect.target", "dissect.target"),
];

/// The virtual environment holding the Python oracles: `RESEAL_VENV`, else
/// `target/oracle-venv` in the workspace.
pub fn venv_dir() -> std::path::PathBuf {
    std::env::var_os("RESEAL_VENV")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("target").join("oracle-venv"))
}

/// `PATH` with the virtual environment's `bin` first, so tests that run `python3`,
/// `secretsdump.py` or `target-query` get the oracles installed there.
pub fn path_with_venv() -> std::ffi::OsString {
    let mut parts = vec![venv_dir().join("bin")];
    if let Some(p) = std::env::var_os("PATH") {
        parts.extend(std::env::split_paths(&p));
    }
    std::env::join_paths(parts).unwrap_or_default()
}

fn venv_python() -> std::path::PathBuf {
    venv_dir().join("bin").join("python3")
}

fn have(cmd: &str) -> bool {
    reseal_tests::tool_installed(cmd)
}

fn have_py(module: &str) -> bool {
    Command::new(venv_python())
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Does the oracle venv exist with a working pip?
fn venv_has_pip() -> bool {
    venv_python().is_file()
        && Command::new(venv_python())
            .args(["-m", "pip", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
}

/// Can the system python3 create a virtual environment with pip (`ensurepip` importable)?
fn can_make_venv() -> bool {
    Command::new("python3")
        .args(["-c", "import ensurepip, venv"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn missing(extra: &[(&'static str, &'static str)]) -> (Vec<&'static str>, Vec<&'static str>) {
    let mut apt: Vec<&str> = APT_TOOLS
        .iter()
        .chain(extra)
        .filter(|(c, _)| !have(c))
        .map(|(_, p)| *p)
        .collect();
    let pip: Vec<&str> = PIP_TOOLS
        .iter()
        .filter(|(m, _)| !have_py(m))
        .map(|(_, p)| *p)
        .collect();
    // Debian's python3 makes virtual environments only with python3-venv (ensurepip), which a
    // fresh system lacks.
    if !pip.is_empty() && !venv_has_pip() && !can_make_venv() {
        apt.push("python3-venv");
    }
    apt.sort_unstable();
    apt.dedup();
    (apt, pip)
}

fn commands(apt: &[&str], pip: &[&str]) -> Vec<String> {
    let mut v = Vec::new();
    if !apt.is_empty() {
        v.push("apt-get update".to_string());
        v.push(format!(
            "DEBIAN_FRONTEND=noninteractive apt-get install -y {}",
            apt.join(" ")
        ));
    }
    if !pip.is_empty() {
        let venv = venv_dir();
        if !venv_has_pip() {
            // --clear: a venv made before python3-venv was installed has no pip; remake it.
            v.push(format!("python3 -m venv --clear {}", venv.display()));
        }
        v.push(format!(
            "{} -m pip install --quiet {}",
            venv_python().display(),
            pip.join(" ")
        ));
    }
    v
}

/// Check that every oracle tool is present; install the missing ones when `install` is set and
/// we are root, else fail with the exact commands to run.
pub fn ensure(install: bool) -> Result<()> {
    ensure_with(&[], install)
}

/// [`ensure`] for the oracle tools and `extra` (command, Debian package) pairs.
pub fn ensure_with(extra: &[(&'static str, &'static str)], install: bool) -> Result<()> {
    let (apt, pip) = missing(extra);
    if apt.is_empty() && pip.is_empty() {
        println!("xtask: oracle tools OK");
        return Ok(());
    }
    let cmds = commands(&apt, &pip);
    if !install || !is_root() {
        bail!(
            "oracle tools are missing; run (as root):\n  {}",
            cmds.join("\n  ")
        );
    }
    for c in &cmds {
        println!("xtask: {c}");
        let st = Command::new("sh")
            .args(["-c", c])
            .status()
            .with_context(|| format!("running {c}"))?;
        if !st.success() {
            bail!("`{c}` failed; run it by hand and retry");
        }
    }
    let (apt, pip) = missing(extra);
    if !apt.is_empty() || !pip.is_empty() {
        bail!(
            "oracle tools still missing after installing; run:\n  {}",
            commands(&apt, &pip).join("\n  ")
        );
    }
    println!("xtask: oracle tools installed");
    Ok(())
}
