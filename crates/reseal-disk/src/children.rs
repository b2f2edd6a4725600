//! Differencing children: a new, empty image whose parent is an existing one, so that writes
//! go to the child and the parent (a golden image) never changes.
//!
//! [`create_child`] opens BASE read-only under a shared lock ([`Image::open_with`] with
//! [`Access::ReadOnly`]; its own parents too), so the identity recorded in the child cannot
//! change while the child is made, and never writes it. The child is built in a hidden
//! temporary file beside OUT, made durable (fsync) and then renamed to OUT — without replacing
//! an existing file unless [`ChildOptions::overwrite`] is set — so OUT is never seen half
//! written. The result is re-opened read-only through the parent chain before it is reported.
//!
//! What a child records (FORMATS.md E.1, E.2; the VHD 1.0 and MS-VHDX specifications):
//! - **VHD** (parent: any VHD, fixed, dynamic or differencing): footer type 4 with the parent's
//!   virtual size and geometry; dynamic header with parent UUID = the parent footer's UUID,
//!   parent time stamp = the parent file's modification time (seconds since 2000), parent
//!   unicode name = its file name, locators `W2ru` (path relative to the child's folder,
//!   `.\base.vhd` or `..\dir\base.vhd`) and `W2ku` (the absolute host path), both UTF-16 LE; BAT
//!   all unallocated, block size = the parent's (2 MiB for a fixed parent).
//! - **VHDX** (parent: any VHDX): HasParent in the file parameters, the parent's virtual size,
//!   block size and logical sector size; a parent locator of type
//!   {B04AEFB7-D19E-4A81-B789-25B8E9445913} with `parent_linkage` = the parent's DataWriteGuid,
//!   `relative_path` (as for VHD) and `absolute_win32_path` = the absolute host path with `\`
//!   separators (a root-relative Win32 path: Windows falls back to `relative_path`, reseal maps
//!   it back to the host path; libvhdi takes its last component). `volume_path` is not written:
//!   a Linux host has no volume GUID to name. BAT all NOT_PRESENT (payload and sector-bitmap
//!   entries), both headers valid, the log empty.
//!
//! A VHD's parent must be a VHD and a VHDX's parent a VHDX (the locator formats name only their
//! own kind), so other bases are refused with a message saying what would work.
//!
//! Support in other tools, as found on this machine (qemu-img 10.0.2, libvhdi 20210425):
//! - qemu reads neither VHD nor VHDX differencing disks (`qemu-img create -b` says "Backing file
//!   not supported for file format 'vpc'" / "'vhdx'", and opening a child fails), so
//!   `qemu-img info` cannot show the base as a backing file and `qemu-img check`/`compare`
//!   cannot run on children; qemu still checks and reads the bases.
//! - libvhdi 20210425 (`vhdiinfo`, `vhdimount`) reads both kinds. `vhdiinfo` shows "Disk type:
//!   Differential", the parent identifier (the VHD parent UUID; for VHDX the parent_linkage GUID)
//!   and the parent file name (VHD: the parent unicode name; VHDX: absolute_win32_path).
//!   `vhdimount` ignores the locators' paths: it opens that file name in the child's folder
//!   only, so a child in another folder than its base needs the base (or a link) beside it. It
//!   reads VHD children correctly, and VHDX children's FULLY_PRESENT and PARTIALLY_PRESENT
//!   blocks (sector bitmaps included) correctly, but misreads NOT_PRESENT blocks of a
//!   differencing VHDX (an empty child already differs from its parent from byte 512 on). So
//!   libvhdi is the content oracle for VHD children, and for VHDX children once no block is
//!   NOT_PRESENT (`tests/integration/children.rs`).
//!
//! VHD children written by [`crate::vhd`] copy a block's parent content in on its first write
//! and set every bitmap bit (the spec allows either that or per-sector bits), because
//! `vhdimount` misreads a VHD block whose bitmap has a clear bit after a set one (checked: a
//! bitmap with sectors 1, 2, 9 set reads wrong from sector 3 on); that costs up to one block
//! (2 MiB by default) per touched block. VHDX children written by [`crate::vhdx`] use
//! per-sector bitmaps, which libvhdi reads correctly.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::image::{Access, Image, ImageFormat, OpenOptions};
use crate::{Device, Error, Result};

/// Container format of a new child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChildFormat {
    /// Differencing VHD (parent: a VHD).
    Vhd,
    /// Differencing VHDX (parent: a VHDX).
    Vhdx,
    /// qcow2 v3 overlay whose backing file is the base (any format reseal reads: raw, VHD,
    /// VHDX, qcow2), named relative to the child's folder when possible.
    Qcow2,
}

impl ChildFormat {
    /// Short name: `vhd`, `vhdx`.
    pub fn name(self) -> &'static str {
        match self {
            ChildFormat::Vhd => "vhd",
            ChildFormat::Vhdx => "vhdx",
            ChildFormat::Qcow2 => "qcow2",
        }
    }
    /// The child format matching a base's container, if that container can have children here.
    pub fn for_base(base: ImageFormat) -> Option<ChildFormat> {
        match base {
            ImageFormat::VhdFixed | ImageFormat::VhdDynamic | ImageFormat::VhdDifferencing => {
                Some(ChildFormat::Vhd)
            }
            ImageFormat::VhdxFixed | ImageFormat::VhdxDynamic | ImageFormat::VhdxDifferencing => {
                Some(ChildFormat::Vhdx)
            }
            ImageFormat::Qcow2 | ImageFormat::Raw => Some(ChildFormat::Qcow2),
        }
    }
    /// True if a child of this format can have a parent of format `base`.
    pub fn accepts(self, base: ImageFormat) -> bool {
        self == ChildFormat::Qcow2 && qemu_format_name(base).is_some()
            || ChildFormat::for_base(base) == Some(self)
    }
}

impl std::fmt::Display for ChildFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for ChildFormat {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "vhd" | "vpc" => Ok(ChildFormat::Vhd),
            "vhdx" => Ok(ChildFormat::Vhdx),
            "qcow2" => Ok(ChildFormat::Qcow2),
            other => Err(format!(
                "unknown child format {other:?} (expected vhd, vhdx or qcow2)"
            )),
        }
    }
}

/// qemu's name of a container format, as a qcow2 backing-format extension names it.
fn qemu_format_name(f: ImageFormat) -> Option<&'static str> {
    Some(match f {
        ImageFormat::Raw => "raw",
        ImageFormat::Qcow2 => "qcow2",
        ImageFormat::VhdFixed | ImageFormat::VhdDynamic | ImageFormat::VhdDifferencing => "vpc",
        ImageFormat::VhdxFixed | ImageFormat::VhdxDynamic | ImageFormat::VhdxDifferencing => "vhdx",
    })
}

/// Choices of [`create_child_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildOptions {
    /// Replace an existing OUT (refused otherwise). OUT must not be BASE or one of its parents;
    /// an existing OUT is locked exclusively first (no one may have it open), and its undo
    /// history (`OUT.reseal-journal`) is removed with it.
    pub overwrite: bool,
    /// How long to wait for locks others hold (the base's shared lock, an old OUT's exclusive).
    pub lock_timeout: Duration,
}

impl Default for ChildOptions {
    fn default() -> Self {
        ChildOptions {
            overwrite: false,
            lock_timeout: crate::lock::DEFAULT_LOCK_TIMEOUT,
        }
    }
}

impl ChildOptions {
    /// Allow replacing an existing OUT.
    pub fn overwrite(mut self, yes: bool) -> Self {
        self.overwrite = yes;
        self
    }
    /// Set the lock timeout.
    pub fn lock_timeout(mut self, t: Duration) -> Self {
        self.lock_timeout = t;
        self
    }
}

/// What [`create_child`] made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChildInfo {
    /// The child (OUT as given).
    pub path: PathBuf,
    /// Its format.
    pub format: ChildFormat,
    /// The parent (BASE, canonical).
    pub parent: PathBuf,
    /// The parent's container format.
    pub parent_format: ImageFormat,
    /// The child's whole parent chain as reseal resolves it, nearest first.
    pub parent_chain: Vec<PathBuf>,
    /// What the child knows its parent by: the parent's VHD footer UUID, or its VHDX
    /// DataWriteGuid.
    pub parent_id: uuid::Uuid,
    /// The recorded parent locators: (`W2ru`/`W2ku`, path) for VHD, (key, value) for VHDX.
    pub locators: Vec<(String, String)>,
    /// Virtual disk size (the parent's).
    pub virtual_size: u64,
    /// Block size of the child.
    pub block_size: u64,
    /// Logical sector size.
    pub sector_size: u32,
    /// Size of the child file.
    pub file_size: u64,
}

/// Create an empty differencing disk OUT of format `format` whose parent is BASE; OUT must not
/// exist. See the module documentation for what is recorded.
///
/// # Errors
/// [`Error::Unsupported`] for a BASE that cannot be the parent of a `format` child;
/// an I/O error of kind `AlreadyExists` if OUT exists; errors of opening BASE
/// ([`Error::Locked`] if someone writes it); I/O errors.
pub fn create_child(base: &Path, out: &Path, format: ChildFormat) -> Result<ChildInfo> {
    create_child_with(base, out, format, &ChildOptions::default())
}

/// [`create_child`] with every choice spelled out.
///
/// # Errors
/// As [`create_child`]; with `opts.overwrite`, [`Error::Unsupported`] if OUT is BASE or one of
/// its parents, [`Error::Locked`] if someone has OUT open.
pub fn create_child_with(
    base: &Path,
    out: &Path,
    format: ChildFormat,
    opts: &ChildOptions,
) -> Result<ChildInfo> {
    let exists = std::fs::symlink_metadata(out).is_ok();
    if exists && !opts.overwrite {
        return Err(already_exists(out));
    }
    let open = OpenOptions::new(Access::ReadOnly).lock_timeout(opts.lock_timeout);
    let img = Image::open_with(base, &open)?;
    let base_format = img.format();
    if !format.accepts(base_format) {
        let hint = match ChildFormat::for_base(base_format) {
            Some(f) => format!("make a {f} child of it instead"),
            None => format!(
                "convert it first (`qemu-img convert -O {} BASE NEW`)",
                match format {
                    ChildFormat::Vhd => "vpc",
                    ChildFormat::Vhdx => "vhdx",
                    ChildFormat::Qcow2 => "qcow2",
                }
            ),
        };
        return Err(Error::unsupported(
            "differencing child",
            0,
            format!(
                "{} is {base_format}, which cannot be the parent of a {format} child (a \
                 {format}'s parent must be a {format}); {hint}",
                base.display()
            ),
        ));
    }
    let base_abs = std::fs::canonicalize(base).map_err(|e| Error::io(base, e))?;
    let name = out
        .file_name()
        .ok_or_else(|| bad_path(out, "has no file name"))?;
    let out_dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let out_dir = std::fs::canonicalize(out_dir).map_err(|e| Error::io(out_dir, e))?;
    let out_abs = out_dir.join(name);
    if exists {
        refuse_chain_member(out, &out_abs, &base_abs, &img)?;
    }
    let rel = relative_windows(&out_dir, &base_abs)?;
    let abs = base_abs
        .to_str()
        .ok_or_else(|| bad_path(&base_abs, "is not UTF-8"))?
        .to_string();

    let tmp = TempFile::new(&out_dir, name)?;
    let (parent_id, locators, block_size) = match format {
        ChildFormat::Vhd => {
            let v = img
                .as_vhd()
                .ok_or_else(|| Error::unsupported("differencing child", 0, "not a VHD"))?;
            let spec = crate::vhd::DifferencingSpec {
                parent_timestamp: crate::vhd::file_timestamp(&base_abs),
                parent_name: base_abs
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                locators: vec![(*b"W2ru", rel), (*b"W2ku", abs)],
                block_size: v.block_size().map_or(2 << 20, |b| b as u32),
            };
            crate::vhd::create_differencing_with(&tmp.0, v, &spec)?;
            let locs = spec
                .locators
                .iter()
                .map(|(c, p)| (String::from_utf8_lossy(c).into_owned(), p.clone()))
                .collect();
            let id = uuid::Uuid::from_bytes(v.footer().uuid);
            (id, locs, u64::from(spec.block_size))
        }
        ChildFormat::Vhdx => {
            let v = img
                .as_vhdx()
                .ok_or_else(|| Error::unsupported("differencing child", 0, "not a VHDX"))?;
            let id = uuid::Uuid::from_bytes_le(v.header().data_write_guid);
            let kv = vec![
                ("parent_linkage".to_string(), format!("{{{id}}}")),
                ("relative_path".to_string(), rel),
                ("absolute_win32_path".to_string(), abs.replace('/', "\\")),
            ];
            crate::vhdx::create_differencing_with(&tmp.0, v, &kv)?;
            (id, kv, v.block_size())
        }
        ChildFormat::Qcow2 => {
            let fmt = qemu_format_name(base_format).ok_or_else(|| {
                Error::unsupported("differencing child", 0, "no qcow2 backing format")
            })?;
            // qemu's default. A clone's changes are scattered small writes (hive cells,
            // descriptors) and every cluster a write touches is copied whole into the child:
            // 4 KiB clusters make the 50k-file bench image's children 76 MiB instead of 103 MiB,
            // but slow the VM that runs on the overlay (more L2 lookups), so the default stays.
            const CLUSTER: u32 = 64 << 10;
            crate::qcow2::create_overlay(&tmp.0, &base_abs, fmt, img.len(), CLUSTER)?;
            let kv = vec![
                ("backing_file".to_string(), abs.clone()),
                ("backing_format".to_string(), fmt.to_string()),
            ];
            (uuid::Uuid::nil(), kv, u64::from(CLUSTER))
        }
    };
    sync_file(&tmp.0)?;
    place(&tmp, &out_abs, exists, opts)?;
    tmp.disarm();
    sync_file(&out_dir)?;

    // Re-open through the chain: what we report is what a reader resolves.
    let child = Image::open_with(out, &open)?;
    let ci = child.info();
    Ok(ChildInfo {
        path: out.to_path_buf(),
        format,
        parent: base_abs,
        parent_format: base_format,
        parent_chain: ci.parent_chain,
        parent_id,
        locators,
        virtual_size: child.len(),
        block_size,
        sector_size: child.sector_size(),
        file_size: ci.file_size,
    })
}

fn already_exists(out: &Path) -> Error {
    Error::io(
        out,
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "already exists; refusing to overwrite it (ask for overwrite to replace it)",
        ),
    )
}

fn bad_path(p: &Path, why: &str) -> Error {
    Error::unsupported(
        "differencing child",
        0,
        format!("path {} {why}", p.display()),
    )
}

/// Refuse to replace OUT when it is BASE or one of BASE's parents (by path or by file identity).
fn refuse_chain_member(out: &Path, out_abs: &Path, base_abs: &Path, img: &Image) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    let out_real = std::fs::canonicalize(out).unwrap_or_else(|_| out_abs.to_path_buf());
    let out_id = id(out);
    let chain = std::iter::once(base_abs.to_path_buf()).chain(img.info().parent_chain);
    for p in chain {
        let same_path = std::fs::canonicalize(&p).is_ok_and(|c| c == out_real);
        if same_path || (out_id.is_some() && id(&p) == out_id) {
            return Err(Error::unsupported(
                "differencing child",
                0,
                format!(
                    "{} is {} (the base or one of its parents); refusing to overwrite it",
                    out.display(),
                    p.display()
                ),
            ));
        }
    }
    Ok(())
}

/// The path of `to` relative to the folder `from` (both absolute), Windows style:
/// `.\name`, `..\dir\name`.
fn relative_windows(from: &Path, to: &Path) -> Result<String> {
    let f: Vec<Component> = from.components().collect();
    let t: Vec<Component> = to.components().collect();
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = Vec::new();
    if common == f.len() {
        parts.push(".".into());
    }
    for _ in common..f.len() {
        parts.push("..".into());
    }
    for c in &t[common..] {
        let s = c
            .as_os_str()
            .to_str()
            .ok_or_else(|| bad_path(to, "is not UTF-8"))?;
        if s.contains('\\') {
            return Err(bad_path(
                to,
                "has a backslash in a name (locators use it as the separator)",
            ));
        }
        parts.push(s.to_string());
    }
    Ok(parts.join("\\"))
}

/// A temporary file beside OUT, removed on drop unless disarmed.
struct TempFile(PathBuf);

impl TempFile {
    fn new(dir: &Path, name: &std::ffi::OsStr) -> Result<TempFile> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut n = std::ffi::OsString::from(".");
        n.push(name);
        n.push(format!(
            ".reseal-new-{}-{nanos:09}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let p = dir.join(n);
        // Claim the name (create_new): no one else's file is ever truncated.
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&p)
            .map_err(|e| Error::io(&p, e))?;
        Ok(TempFile(p))
    }
    fn disarm(mut self) {
        self.0 = PathBuf::new();
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.0.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

fn sync_file(p: &Path) -> Result<()> {
    std::fs::File::open(p)
        .and_then(|f| f.sync_all())
        .map_err(|e| Error::io(p, e))
}

/// Move the finished child to OUT.
fn place(tmp: &TempFile, out: &Path, exists: bool, opts: &ChildOptions) -> Result<()> {
    let jdir = crate::journal::journal_dir(out);
    if exists {
        // No one may have the old OUT open while it is replaced; its undo history goes with it
        // (before the rename, so a later open of the new OUT never rolls back the old one).
        let _lock = crate::lock::ImageLock::acquire(
            out,
            crate::lock::LockKind::Exclusive,
            opts.lock_timeout,
        )?;
        if jdir.exists() {
            std::fs::remove_dir_all(&jdir).map_err(|e| Error::io(&jdir, e))?;
        }
        return std::fs::rename(&tmp.0, out).map_err(|e| Error::io(out, e));
    }
    if jdir.exists() {
        return Err(Error::Journal {
            path: jdir,
            reason: format!(
                "left by an earlier image named {}; its undo files would be applied to the new \
                 child, so remove the directory first (or ask for overwrite)",
                out.display()
            ),
        });
    }
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    match renameat_with(CWD, &tmp.0, CWD, out, RenameFlags::NOREPLACE) {
        Ok(()) => Ok(()),
        Err(rustix::io::Errno::EXIST) => Err(already_exists(out)),
        Err(rustix::io::Errno::INVAL | rustix::io::Errno::NOSYS) => {
            // A file system without RENAME_NOREPLACE: a hard link fails just as atomically.
            std::fs::hard_link(&tmp.0, out).map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    already_exists(out)
                } else {
                    Error::io(out, e)
                }
            })?;
            std::fs::remove_file(&tmp.0).map_err(|e| Error::io(&tmp.0, e))
        }
        Err(e) => Err(Error::io(out, std::io::Error::from(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        let r = |a: &str, b: &str| relative_windows(Path::new(a), Path::new(b)).unwrap();
        assert_eq!(r("/a/b", "/a/b/base.vhd"), ".\\base.vhd");
        assert_eq!(r("/a/b", "/a/b/g/base.vhd"), ".\\g\\base.vhd");
        assert_eq!(r("/a/b/c", "/a/g/base.vhd"), "..\\..\\g\\base.vhd");
        assert_eq!(r("/", "/base.vhd"), ".\\base.vhd");
        assert!(relative_windows(Path::new("/a"), Path::new("/a/x\\y")).is_err());
    }

    #[test]
    fn formats() {
        assert_eq!("VHDX".parse::<ChildFormat>(), Ok(ChildFormat::Vhdx));
        assert_eq!("vpc".parse::<ChildFormat>(), Ok(ChildFormat::Vhd));
        assert!("qcow3".parse::<ChildFormat>().is_err());
        assert!(ChildFormat::Vhd.accepts(ImageFormat::VhdDifferencing));
        assert!(!ChildFormat::Vhdx.accepts(ImageFormat::VhdDynamic));
        assert!(!ChildFormat::Vhdx.accepts(ImageFormat::Raw));
    }
}
