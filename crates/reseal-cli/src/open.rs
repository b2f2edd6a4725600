//! Opening images the way every command does: locks with the user's `--lock-timeout`, dry runs
//! read-only, write protection honoured unless forced.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};
use reseal_disk::{Access, ContainerKind, Image, OpenOptions};

static LOCK_TIMEOUT: OnceLock<Duration> = OnceLock::new();
static FORCE_WRITE_PROTECTED: AtomicBool = AtomicBool::new(false);
static IMAGE_FORMAT: OnceLock<ContainerKind> = OnceLock::new();

/// Set once from `-f FORMAT` at start-up: the container format of every image the command
/// opens, instead of detection (qemu-img's `-f`).
///
/// # Errors
/// A name that is not `raw`, `vpc`/`vhd`, `vhdx` or `qcow2`.
pub fn set_image_format(name: &str) -> Result<()> {
    let kind = ContainerKind::from_qemu_name(name)
        .with_context(|| format!("-f {name:?}: expected raw, vpc (or vhd), vhdx or qcow2"))?;
    let _ = IMAGE_FORMAT.set(kind);
    Ok(())
}

/// Set from a write command's `--force`: its writes may go to a file without write bits.
pub fn set_force_write_protected(yes: bool) {
    FORCE_WRITE_PROTECTED.store(yes, Ordering::Relaxed);
}

/// Whether `--force` allows writing a write-protected file.
pub fn force_write_protected() -> bool {
    FORCE_WRITE_PROTECTED.load(Ordering::Relaxed)
}

/// Refuses a write to a regular file without any write permission bit unless `--force` was
/// given (root could write it, but a golden image or hive made read-only is meant to stay so).
pub fn check_writable(path: &Path) -> Result<()> {
    if !force_write_protected() {
        reseal_disk::image::refuse_write_protected(path)?;
    }
    Ok(())
}

/// Set once from `--lock-timeout` at start-up.
pub fn set_lock_timeout(seconds: f64) {
    let d = Duration::try_from_secs_f64(seconds.max(0.0))
        .unwrap_or(reseal_disk::lock::DEFAULT_LOCK_TIMEOUT);
    let _ = LOCK_TIMEOUT.set(d);
}

/// The lock timeout in effect.
pub fn lock_timeout() -> Duration {
    *LOCK_TIMEOUT
        .get()
        .unwrap_or(&reseal_disk::lock::DEFAULT_LOCK_TIMEOUT)
}

/// Open `image` for a command: `ReadOnly` for reads, `DryRun` for `--dry-run`, `ReadWrite`
/// otherwise; `force_write_protected` lets a write command write a file without write bits.
pub fn open(image: &Path, access: Access, force_write_protected: bool) -> Result<Image> {
    let opts = OpenOptions::new(access)
        .lock_timeout(lock_timeout())
        .spill_limit(spill_limit()?)
        .force_write_protected(force_write_protected);
    Image::open_as(image, IMAGE_FORMAT.get().copied(), &opts)
        .with_context(|| format!("opening {}", image.display()))
}

/// How many bytes of staged writes the journal keeps in memory before it spills them to a
/// temporary file in the image's journal directory: `RESEAL_SPILL_LIMIT` (bytes, or with a
/// `K`/`M`/`G` suffix, powers of 1024), default 64 MiB.
pub fn spill_limit() -> Result<u64> {
    let Some(v) = std::env::var_os("RESEAL_SPILL_LIMIT") else {
        return Ok(reseal_disk::journal::DEFAULT_SPILL_LIMIT);
    };
    let text = v.to_string_lossy();
    let t = text.trim();
    let (digits, shift) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 10),
        Some((i, 'm' | 'M')) => (&t[..i], 20),
        Some((i, 'g' | 'G')) => (&t[..i], 30),
        _ => (t, 0),
    };
    digits
        .trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1u64 << shift))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "RESEAL_SPILL_LIMIT={text:?} is not a size (bytes, or a number with K, M or G)"
            )
        })
}

/// The access of a write command.
pub fn write_access(dry_run: bool) -> Access {
    if dry_run {
        Access::DryRun
    } else {
        Access::ReadWrite
    }
}

/// The container format forced with `-f`, if any.
pub fn image_format() -> Option<ContainerKind> {
    IMAGE_FORMAT.get().copied()
}
