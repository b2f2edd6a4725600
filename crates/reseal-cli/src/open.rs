//! Opening images the way every command does: locks with the user's `--lock-timeout`, dry runs
//! read-only, write protection honoured unless forced.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{Context, Result};
use reseal_disk::{Access, Image, OpenOptions};

static LOCK_TIMEOUT: OnceLock<Duration> = OnceLock::new();

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
        .force_write_protected(force_write_protected);
    Image::open_with(image, &opts).with_context(|| format!("opening {}", image.display()))
}

/// The access of a write command.
pub fn write_access(dry_run: bool) -> Access {
    if dry_run {
        Access::DryRun
    } else {
        Access::ReadWrite
    }
}
