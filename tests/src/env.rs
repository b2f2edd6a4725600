//! The test environment, decided in one place for every crate's tests: where the corpus is,
//! whether an oracle tool is installed, and the one rule for skipping — a test may skip for a
//! missing corpus or tool only when `RESEAL_ALLOW_SKIP=1` exactly; otherwise it panics with the
//! fix (the env var to set, or the Debian package to install).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Oracle tools the tests run, with the Debian package providing each (`cargo xtask tools`
/// installs these).
pub const ORACLE_TOOLS: &[(&str, &str)] = &[
    ("ntfs-3g", "ntfs-3g"),
    ("mkntfs", "ntfs-3g"),
    ("ntfsls", "ntfs-3g"),
    ("ntfscat", "ntfs-3g"),
    ("ntfsinfo", "ntfs-3g"),
    ("ntfssecaudit", "ntfs-3g"),
    ("ntfsfix", "ntfs-3g"),
    ("hivexsh", "libhivex-bin"),
    ("hivexml", "libhivex-bin"),
    ("hivexget", "libhivex-bin"),
    ("hivexregedit", "libwin-hivex-perl"),
    ("regfexport", "libregf-utils"),
    ("fsntfsinfo", "libfsntfs-utils"),
    ("vhdiinfo", "libvhdi-utils"),
    ("vhdimount", "libvhdi-utils"),
    ("vshadowinfo", "libvshadow-utils"),
    ("qemu-img", "qemu-utils"),
    ("qemu-io", "qemu-utils"),
    ("getfattr", "attr"),
    ("setfattr", "attr"),
    ("sfdisk", "fdisk"),
    ("xz", "xz-utils"),
    ("mkfs.fat", "dosfstools"),
    ("python3", "python3"),
];

/// The skip rule on the value of `RESEAL_ALLOW_SKIP`: only exactly `"1"` allows skipping
/// (`"0"`, `""`, `"yes"` and unset do not).
pub fn skip_allowed(value: Option<&str>) -> bool {
    value == Some("1")
}

/// Whether a missing corpus or oracle tool may skip a test: `RESEAL_ALLOW_SKIP=1` exactly.
pub fn allow_skip() -> bool {
    skip_allowed(std::env::var("RESEAL_ALLOW_SKIP").ok().as_deref())
}

/// Skip (print `SKIP: why`, return) when [`allow_skip`]; otherwise panic with `why` and `fix`.
///
/// # Panics
/// Unless `RESEAL_ALLOW_SKIP=1`.
#[track_caller]
pub fn skip_or_panic(why: &str, fix: &str) {
    if allow_skip() {
        eprintln!("SKIP: {why} (RESEAL_ALLOW_SKIP=1)");
    } else {
        panic!("{why}: {fix} (or set RESEAL_ALLOW_SKIP=1 to skip)");
    }
}

/// Where the corpus should be: `RESEAL_CORPUS`, else `../shared/corpus` beside the workspace.
pub fn corpus_path() -> PathBuf {
    std::env::var_os("RESEAL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| crate::workspace_root().join("../shared/corpus"))
}

fn corpus_present(dir: &Path) -> bool {
    dir.join("MANIFEST.md").is_file()
}

/// The shared corpus directory (see [`corpus_path`]; it holds `MANIFEST.md`).
///
/// # Panics
/// When the corpus is not there, whatever `RESEAL_ALLOW_SKIP` says: for tests that cannot
/// skip. Tests that may skip use [`corpus_or_skip`].
#[track_caller]
pub fn corpus() -> PathBuf {
    let dir = corpus_path();
    assert!(
        corpus_present(&dir),
        "corpus not found at {}: set RESEAL_CORPUS to the corpus directory",
        dir.display()
    );
    dir
}

/// The shared corpus directory, or `None` when it is missing and [`allow_skip`].
///
/// # Panics
/// When it is missing and skipping is not allowed.
#[track_caller]
pub fn corpus_or_skip() -> Option<PathBuf> {
    let dir = corpus_path();
    if corpus_present(&dir) {
        return Some(dir);
    }
    skip_or_panic(
        &format!("corpus not found at {}", dir.display()),
        "set RESEAL_CORPUS to the corpus directory",
    );
    None
}

/// Whether `cmd` is on `PATH` (or, for a path, exists).
pub fn tool_installed(cmd: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v '{cmd}'"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How to get `cmd`: its Debian package when [`ORACLE_TOOLS`] knows it.
fn install_hint(cmd: &str) -> String {
    match ORACLE_TOOLS.iter().find(|(c, _)| *c == cmd) {
        Some((_, pkg)) => format!("apt-get install {pkg} (or `cargo xtask tools --install`)"),
        None => format!("install the package that provides `{cmd}`"),
    }
}

/// Panic with the package to install when an oracle tool is missing (never skips).
///
/// # Panics
/// When `cmd` is not installed.
#[track_caller]
pub fn require_tool(cmd: &str) {
    assert!(
        tool_installed(cmd),
        "oracle tool `{cmd}` is missing: {}",
        install_hint(cmd)
    );
}

/// Whether oracle tool `cmd` is installed; `false` (skip) only when [`allow_skip`].
///
/// # Panics
/// When `cmd` is missing and skipping is not allowed, naming the package to install.
#[track_caller]
pub fn have_tool(cmd: &str) -> bool {
    if tool_installed(cmd) {
        return true;
    }
    skip_or_panic(
        &format!("oracle tool `{cmd}` is missing"),
        &install_hint(cmd),
    );
    false
}

/// [`have_tool`] for each of `cmds` (stops at the first missing one).
#[track_caller]
pub fn have_tools(cmds: &[&str]) -> bool {
    cmds.iter().all(|c| have_tool(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exactly_one_allows_skipping() {
        assert!(skip_allowed(Some("1")));
        for v in [
            None,
            Some(""),
            Some("0"),
            Some("true"),
            Some("yes"),
            Some(" 1"),
            Some("01"),
        ] {
            assert!(!skip_allowed(v), "{v:?}");
        }
    }

    #[test]
    fn hints_name_the_package() {
        assert!(install_hint("hivexget").contains("apt-get install libhivex-bin"));
        assert!(install_hint("no-such-tool").contains("`no-such-tool`"));
    }

    #[test]
    fn installed_tools_are_found() {
        assert!(tool_installed("sh"));
        assert!(!tool_installed("reseal-no-such-tool"));
    }
}
