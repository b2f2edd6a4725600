//! Where a hive lives: a plain file, or `IMAGE:HIVE` inside a disk image.
//!
//! `HIVE` is a well-known name (`SYSTEM`, `SOFTWARE`, `SAM`, `SECURITY`, `DEFAULT`,
//! `COMPONENTS`), a local user's name (that user's `NTUSER.DAT`, through ProfileList), or a path
//! inside the Windows volume. Writes to a hive in an image go through the NTFS write engine and
//! the image's journal (`reseal undo IMAGE` reverts them); writes to a file go through a journal
//! over the file (`reseal undo FILE`).

use anyhow::{bail, Context, Result};
use reseal_disk::journal::{next_undo_path, recover};
use reseal_disk::partition::Slice;
use reseal_disk::raw::HostFile;
use reseal_disk::{Access, Device, Image, Journal};
use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::fs::select_ntfs;
use crate::write::{with_volume, WriteOpts};

/// A hive's location.
#[derive(Debug, Clone)]
pub enum Target {
    /// A hive file on the host.
    File(PathBuf),
    /// A hive inside an image.
    InImage {
        /// The disk image.
        image: PathBuf,
        /// Partition number of the Windows volume (0: no partition table).
        partition: u32,
        /// Path of the hive inside the volume (`/`-separated).
        path: String,
    },
}

/// Transaction logs beside a hive.
const LOG_EXTS: &[&str] = &[".LOG1", ".LOG2", ".LOG"];

impl Target {
    /// Interpret a command-line argument: an existing file is a hive file; otherwise
    /// `IMAGE:HIVE` where IMAGE is an existing file.
    pub fn parse(arg: &Path) -> Result<Target> {
        if arg.is_file() {
            return Ok(Target::File(arg.to_path_buf()));
        }
        let text = arg.to_string_lossy();
        for (i, _) in text.match_indices(':') {
            let image = Path::new(&text[..i]);
            if image.is_file() {
                return resolve(image, &text[i + 1..]);
            }
        }
        bail!(
            "{} is neither a hive file nor IMAGE:HIVE with an existing image",
            arg.display()
        )
    }

    /// For messages.
    pub fn describe(&self) -> String {
        match self {
            Target::File(p) => p.display().to_string(),
            Target::InImage { image, path, .. } => format!("{}:{path}", image.display()),
        }
    }

    /// The hive's file name (for the default `.reg` prefix).
    pub fn file_name(&self) -> PathBuf {
        match self {
            Target::File(p) => p.clone(),
            Target::InImage { path, .. } => PathBuf::from(path.rsplit('/').next().unwrap_or(path)),
        }
    }

    /// The primary file's bytes.
    pub fn read(&self) -> Result<Vec<u8>> {
        self.read_named("").map(|o| o.unwrap_or_default())
    }

    /// A sibling's bytes (`ext` = ".LOG1" …), `None` when it does not exist.
    pub fn read_sibling(&self, ext: &str) -> Result<Option<Vec<u8>>> {
        self.read_named(ext)
    }

    fn read_named(&self, ext: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Target::File(p) => {
                let mut s = p.as_os_str().to_owned();
                s.push(ext);
                let p = PathBuf::from(s);
                match std::fs::read(&p) {
                    Ok(b) => Ok(Some(b)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && !ext.is_empty() => {
                        Ok(None)
                    }
                    Err(e) => Err(e).with_context(|| format!("reading {}", p.display())),
                }
            }
            Target::InImage {
                image,
                partition,
                path,
            } => {
                let mut vol = open_volume(image, *partition)?;
                let p = format!("{path}{ext}");
                if !ext.is_empty() && !vol.exists(&p)? {
                    return Ok(None);
                }
                Ok(Some(
                    vol.read_to_vec(&p)
                        .with_context(|| format!("reading {p}"))?,
                ))
            }
        }
    }

    /// Finish or roll back an interrupted operation before writing.
    pub fn recover(&self) -> Result<()> {
        let path = match self {
            Target::File(p) => p,
            Target::InImage { image, .. } => image,
        };
        let _lock = reseal_disk::lock::ImageLock::acquire(
            path,
            reseal_disk::lock::LockKind::Exclusive,
            crate::open::lock_timeout(),
        )?;
        for p in recover(path)?.rolled_back {
            eprintln!(
                "note: rolled back an interrupted operation ({})",
                p.display()
            );
        }
        Ok(())
    }

    /// Write `ranges` of `data` (the whole new hive) through the journal, or report them.
    /// `original` is the hive the edit started from: under the writer's lock the hive must
    /// still be exactly that, or nothing is written (another process changed it since it was
    /// read; the edit would undo that change).
    pub fn write_ranges(
        &self,
        original: &[u8],
        data: &[u8],
        ranges: &[Range<usize>],
        dry_run: bool,
    ) -> Result<()> {
        let bytes: usize = ranges.iter().map(|r| r.len()).sum();
        match self {
            Target::File(path) => {
                let kind = if dry_run {
                    reseal_disk::lock::LockKind::Shared
                } else {
                    reseal_disk::lock::LockKind::Exclusive
                };
                if !dry_run {
                    crate::open::check_writable(path)?;
                }
                let _lock =
                    reseal_disk::lock::ImageLock::acquire(path, kind, crate::open::lock_timeout())?;
                let now =
                    std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                unchanged_since_read(&self.describe(), original, &now)?;
                let file = HostFile::open(path, !dry_run)?;
                let old_len = file.len();
                let mut j = Journal::new(file);
                for r in ranges {
                    j.write_at(r.start as u64, &data[r.clone()])?;
                }
                if dry_run {
                    eprintln!(
                        "dry run: would write {bytes} bytes in {} ranges of {} ({old_len} → {} bytes)",
                        ranges.len(),
                        path.display(),
                        data.len()
                    );
                    return Ok(());
                }
                let rep = j.commit(&next_undo_path(path)?)?;
                reseal_disk::journal::record_operation(
                    &rep.undo_path,
                    &format!("reg: edit of {}", path.display()),
                )?;
                eprintln!(
                    "wrote {} bytes in {} ranges of {}; undo with `reseal undo {}`",
                    rep.bytes,
                    rep.ranges,
                    path.display(),
                    path.display()
                );
                // The committed hive's sequence numbers are above every log entry, and the logs
                // are invalidated as well (their base block zeroed: a log without a valid base
                // block is never replayed), so nothing stale can be replayed over the edit. The
                // hive goes first: a crash in between leaves a clean hive and harmless old logs.
                for ext in LOG_EXTS {
                    let mut s = path.as_os_str().to_owned();
                    s.push(ext);
                    let log = PathBuf::from(s);
                    if !log.is_file() {
                        continue;
                    }
                    let file = HostFile::open(&log, true)?;
                    let n = file.len().min(512) as usize;
                    let mut head = vec![0u8; n];
                    file.read_at(0, &mut head)?;
                    if head.iter().all(|&b| b == 0) {
                        continue;
                    }
                    let mut j = Journal::new(file);
                    j.write_at(0, &vec![0u8; n])?;
                    j.commit(&next_undo_path(&log)?)?;
                    eprintln!(
                        "invalidated {} (undo with `reseal undo {}`)",
                        log.display(),
                        log.display()
                    );
                }
                Ok(())
            }
            Target::InImage {
                image,
                partition,
                path,
            } => {
                let opts = WriteOpts {
                    partition: Some(*partition),
                    dry_run,
                    force: crate::open::force_write_protected(),
                };
                with_volume(
                    image,
                    opts,
                    &format!("write {path} ({bytes} hive bytes)"),
                    |v| {
                        unchanged_since_read(&self.describe(), original, &v.read_file(path)?)?;
                        for r in ranges {
                            v.write_at(path, r.start as u64, &data[r.clone()])?;
                        }
                        Ok(())
                    },
                )
            }
        }
    }
}

/// The hive changed between the read an edit was made from and the write (another process
/// wrote it); nothing was written.
#[derive(Debug)]
pub struct ChangedMeanwhile(String);

impl std::fmt::Display for ChangedMeanwhile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} changed while it was being edited (another process wrote it); nothing was \
             written: run the command again",
            self.0
        )
    }
}

impl std::error::Error for ChangedMeanwhile {}

/// Fails with [`ChangedMeanwhile`] unless the hive still holds the bytes an edit was made from.
fn unchanged_since_read(what: &str, original: &[u8], now: &[u8]) -> Result<()> {
    if original != now {
        return Err(ChangedMeanwhile(what.to_string()).into());
    }
    Ok(())
}

fn open_volume(image: &Path, partition: u32) -> Result<reseal_ntfs::browse::Volume<Slice<Image>>> {
    let mut img = crate::open::open(image, Access::ReadOnly, false)?;
    let (start, len) = select_ntfs(&mut img, Some(partition))?;
    Ok(reseal_ntfs::browse::Volume::open(Slice::new(
        img, start, len,
    )?)?)
}

/// Resolve `HIVE` inside `image` ([`reseal_windows::hive_location::locate_hive`]: well-known
/// names and paths by a cheap look at the volumes, a user's name through discovery).
pub(crate) fn resolve(image: &Path, hive: &str) -> Result<Target> {
    let mut img = crate::open::open(image, Access::ReadOnly, false)?;
    let at = reseal_windows::hive_location::locate_hive(&mut img, hive)
        .with_context(|| image.display().to_string())?;
    Ok(Target::InImage {
        image: image.to_path_buf(),
        partition: at.partition,
        path: at.path,
    })
}
