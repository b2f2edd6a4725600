//! Opening a disk image file: format detection from content, the container stack, commit.
//!
//! Stack: host file ([`HostFile`]) → [`Journal`] (every container write is staged, metadata
//! included) → container ([`RawDisk`], [`Vhd`], [`Vhdx`], [`Qcow2`]) presenting the virtual disk.
//!
//! Detection ([`Image::open`]): qcow2 magic, VHDX signature, VHD footer; formats reseal does not
//! read (VMDK, VDI, QED, Parallels, qcow version 1) are refused with [`Error::ForeignFormat`]
//! naming the `qemu-img convert` command; anything else is raw only if its first sector is blank
//! or carries the 0x55AA boot signature (a partition table or a volume boot sector), and refused
//! with [`Error::UnknownFormat`] otherwise. [`Image::open_as`] forces a format (qemu-img's `-f`).
//!
//! Locks ([`crate::lock`], qemu's convention): read-only opens, dry runs and every parent of a
//! differencing chain take a shared lock; a read-write open takes an exclusive lock, waiting up
//! to [`OpenOptions::lock_timeout`] for others. A writable open of a file with no write
//! permission bit (a protected golden image) is refused unless asked for.
//!
//! Policy on unfinished operations: a read-write open runs [`journal::recover`] first, under its
//! exclusive lock (so no one rolls back an operation still in flight); a read-only or dry-run
//! open of an image with an unfinished operation is refused with [`Error::Journal`] (its bytes
//! may be half old, half new), telling the user to run a write command to recover.
//!
//! Read-only opens are lenient about VHD checksum mismatches on otherwise well-formed structures
//! (reported in [`ImageInfo::warnings`]); read-write opens are strict.

use std::ops::Range;
use std::path::{Path, PathBuf};

use crate::journal::{self, CommitReport};
use crate::qcow2::Qcow2;
use crate::raw::{HostFile, RawDisk};
use crate::vhd::{Vhd, VhdType};
use crate::vhdx::Vhdx;
use crate::{Device, Error, Journal, Result};
use zerocopy::FromBytes;

/// How to open an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only; writes fail with [`Error::ReadOnly`]. The file is opened read-only under a
    /// shared lock.
    ReadOnly,
    /// Writes are staged in the journal until [`Image::commit`]. The file is opened read-write
    /// under an exclusive lock, after an unfinished operation is rolled back.
    ReadWrite,
    /// A dry run: writes are staged in the journal exactly as for [`Access::ReadWrite`], so
    /// [`Image::changes`] tells what a real run would write, but the file is opened read-only
    /// under a shared lock and [`Image::commit`] fails with [`Error::DryRun`]. Works on a
    /// write-protected file and for a user who may only read it.
    DryRun,
}

/// Everything that decides how [`Image::open_with`] opens an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Read-only, read-write or dry run.
    pub access: Access,
    /// How long to wait for a lock another process holds ([`crate::lock`]).
    pub lock_timeout: std::time::Duration,
    /// Write a file that has no write permission bit (refused otherwise with
    /// [`Error::WriteProtected`]).
    pub force_write_protected: bool,
    /// Staged bytes the journal keeps in memory ([`journal::DEFAULT_SPILL_LIMIT`], 64 MiB, by
    /// default); beyond it staged data goes to an anonymous spill file in the image's journal
    /// directory ([`journal::journal_dir`]; the system temporary directory for a dry run, whose
    /// user may not be allowed to write next to the image).
    pub spill_limit: u64,
}

impl OpenOptions {
    /// Defaults for `access`: [`crate::lock::DEFAULT_LOCK_TIMEOUT`], write protection honoured,
    /// [`journal::DEFAULT_SPILL_LIMIT`] of staged bytes in memory.
    pub fn new(access: Access) -> Self {
        OpenOptions {
            access,
            lock_timeout: crate::lock::DEFAULT_LOCK_TIMEOUT,
            force_write_protected: false,
            spill_limit: journal::DEFAULT_SPILL_LIMIT,
        }
    }
    /// Set the bound on staged bytes held in memory ([`OpenOptions::spill_limit`]).
    pub fn spill_limit(mut self, bytes: u64) -> Self {
        self.spill_limit = bytes;
        self
    }
    /// Set the lock timeout.
    pub fn lock_timeout(mut self, t: std::time::Duration) -> Self {
        self.lock_timeout = t;
        self
    }
    /// Allow writing a write-protected file.
    pub fn force_write_protected(mut self, yes: bool) -> Self {
        self.force_write_protected = yes;
        self
    }
}

/// Container format of an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// Raw disk image.
    Raw,
    /// Fixed VHD.
    VhdFixed,
    /// Dynamic VHD.
    VhdDynamic,
    /// Differencing VHD.
    VhdDifferencing,
    /// VHDX with every block present.
    VhdxFixed,
    /// Dynamic VHDX.
    VhdxDynamic,
    /// Differencing VHDX.
    VhdxDifferencing,
    /// qcow2 (version 2 or 3), with or without a backing file.
    Qcow2,
}

/// A container format to open an image as, overriding detection (qemu-img's `-f FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContainerKind {
    /// Raw: the file's bytes are the disk, whatever they hold.
    Raw,
    /// VHD (qemu's `vpc`).
    Vhd,
    /// VHDX.
    Vhdx,
    /// qcow2.
    Qcow2,
}

impl ContainerKind {
    /// The kind for a qemu format name (`raw`, `vpc` or `vhd`, `vhdx`, `qcow2`).
    pub fn from_qemu_name(name: &str) -> Option<ContainerKind> {
        Some(match name.to_ascii_lowercase().as_str() {
            "raw" => ContainerKind::Raw,
            "vpc" | "vhd" => ContainerKind::Vhd,
            "vhdx" => ContainerKind::Vhdx,
            "qcow2" => ContainerKind::Qcow2,
            _ => return None,
        })
    }
    /// qemu's name of the format.
    pub fn qemu_name(self) -> &'static str {
        match self {
            ContainerKind::Raw => "raw",
            ContainerKind::Vhd => "vpc",
            ContainerKind::Vhdx => "vhdx",
            ContainerKind::Qcow2 => "qcow2",
        }
    }
}

impl std::str::FromStr for ContainerKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ContainerKind::from_qemu_name(s)
            .ok_or_else(|| format!("unknown format {s:?} (raw, vpc, vhd, vhdx, qcow2)"))
    }
}

impl ImageFormat {
    /// The container kind of this format.
    pub fn kind(self) -> ContainerKind {
        match self {
            ImageFormat::Raw => ContainerKind::Raw,
            ImageFormat::VhdFixed | ImageFormat::VhdDynamic | ImageFormat::VhdDifferencing => {
                ContainerKind::Vhd
            }
            ImageFormat::VhdxFixed | ImageFormat::VhdxDynamic | ImageFormat::VhdxDifferencing => {
                ContainerKind::Vhdx
            }
            ImageFormat::Qcow2 => ContainerKind::Qcow2,
        }
    }
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImageFormat::Raw => "raw",
            ImageFormat::VhdFixed => "vhd (fixed)",
            ImageFormat::VhdDynamic => "vhd (dynamic)",
            ImageFormat::VhdDifferencing => "vhd (differencing)",
            ImageFormat::VhdxFixed => "vhdx (fixed)",
            ImageFormat::VhdxDynamic => "vhdx (dynamic)",
            ImageFormat::VhdxDifferencing => "vhdx (differencing)",
            ImageFormat::Qcow2 => "qcow2",
        })
    }
}

/// Facts about an open image.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    /// Container format.
    pub format: ImageFormat,
    /// Size of the virtual disk.
    pub virtual_size: u64,
    /// Size of the image file.
    pub file_size: u64,
    /// Parents of a differencing disk, nearest first.
    pub parent_chain: Vec<PathBuf>,
    /// Logical sector size of the virtual disk.
    pub sector_size: u32,
    /// Block size of sparse containers.
    pub block_size: Option<u64>,
    /// Problems tolerated on open (bad checksums in read-only mode, a damaged header copy).
    pub warnings: Vec<String>,
}

type J = Journal<HostFile>;

enum Container {
    Raw(RawDisk<J>),
    Vhd(Box<Vhd<J>>),
    Vhdx(Box<Vhdx<J>>),
    Qcow2(Box<Qcow2<J>>),
}

impl Container {
    fn dev(&self) -> &dyn Device {
        match self {
            Container::Raw(d) => d,
            Container::Vhd(d) => &**d,
            Container::Vhdx(d) => &**d,
            Container::Qcow2(d) => &**d,
        }
    }
    fn dev_mut(&mut self) -> &mut dyn Device {
        match self {
            Container::Raw(d) => d,
            Container::Vhd(d) => &mut **d,
            Container::Vhdx(d) => &mut **d,
            Container::Qcow2(d) => &mut **d,
        }
    }
    fn journal(&self) -> &J {
        match self {
            Container::Raw(d) => d.inner(),
            Container::Vhd(d) => d.inner(),
            Container::Vhdx(d) => d.inner(),
            Container::Qcow2(d) => d.inner(),
        }
    }
    fn journal_mut(&mut self) -> &mut J {
        match self {
            Container::Raw(d) => d.inner_mut(),
            Container::Vhd(d) => d.inner_mut(),
            Container::Vhdx(d) => d.inner_mut(),
            Container::Qcow2(d) => d.inner_mut(),
        }
    }
}

/// An open disk image. Implements [`Device`] as the virtual disk.
pub struct Image {
    path: PathBuf,
    opts: OpenOptions,
    forced: Option<ContainerKind>,
    container: Container,
    info: ImageInfo,
    // Declared last: released after the container (and its parents) are closed.
    _lock: Option<crate::lock::ImageLock>,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

const MAX_CHAIN: usize = 32;

impl Image {
    /// Open the image at `path`, detecting its format from its content: qcow2 if it starts with
    /// `QFI\xfb`, VHDX if it starts with "vhdxfile", VHD if its last 512 bytes start with
    /// "conectix", refused if it holds another format's magic ([`Error::ForeignFormat`]), raw if
    /// its first sector is blank or ends in 0x55AA, refused ([`Error::UnknownFormat`]) otherwise.
    ///
    /// # Errors
    /// I/O errors; [`Error::Corrupt`]/[`Error::Unsupported`] from the container;
    /// [`Error::Journal`] for an unfinished operation on a read-only open; [`Error::MissingParent`]
    /// when a differencing disk's parent cannot be found.
    pub fn open(path: &Path, access: Access) -> Result<Image> {
        Self::open_with(path, &OpenOptions::new(access))
    }

    /// [`Image::open`] with every choice spelled out: a shared lock for
    /// [`Access::ReadOnly`]/[`Access::DryRun`] and for every parent of a differencing chain, an
    /// exclusive lock for [`Access::ReadWrite`] (taken before an unfinished operation is rolled
    /// back), waiting up to `opts.lock_timeout`; a write-protected file is not opened for writing
    /// unless `opts.force_write_protected`.
    ///
    /// # Errors
    /// As [`Image::open`], plus [`Error::Locked`] and [`Error::WriteProtected`].
    pub fn open_with(path: &Path, opts: &OpenOptions) -> Result<Image> {
        Self::open_depth(path, opts, 0, None, None)
    }

    /// [`Image::open_with`] as the container `kind` when given (detection otherwise): a forced
    /// container format whose structures are not in the file is refused; a forced raw opens the
    /// bytes as they are, whatever magic they hold.
    ///
    /// # Errors
    /// As [`Image::open_with`]; [`Error::Corrupt`] when the content contradicts `kind`.
    pub fn open_as(path: &Path, kind: Option<ContainerKind>, opts: &OpenOptions) -> Result<Image> {
        Self::open_depth(path, opts, 0, None, kind)
    }

    fn open_depth(
        path: &Path,
        opts: &OpenOptions,
        depth: usize,
        lock: Option<crate::lock::ImageLock>,
        forced: Option<ContainerKind>,
    ) -> Result<Image> {
        use crate::lock::{ImageLock, LockKind};
        if depth > MAX_CHAIN {
            return Err(Error::unsupported(
                "backing / parent chain",
                0,
                format!("longer than {MAX_CHAIN}"),
            ));
        }
        let access = opts.access;
        let writable = access == Access::ReadWrite;
        if writable && !opts.force_write_protected {
            refuse_write_protected(path)?;
        }
        let kind = if writable {
            LockKind::Exclusive
        } else {
            LockKind::Shared
        };
        let lock = match lock {
            Some(l) if l.kind() == kind => l,
            _ => ImageLock::acquire(path, kind, opts.lock_timeout)?,
        };
        if writable {
            journal::recover(path)?;
        } else if let Some(p) = journal::pending(path)? {
            return Err(Error::Journal {
                path: p,
                reason: "an operation on this image did not finish; run any reseal write \
                         command on it (not a --dry-run) to roll it back"
                    .into(),
            });
        }
        let parent_opts = OpenOptions {
            access: Access::ReadOnly,
            ..*opts
        };
        let host = HostFile::open(path, writable)?;
        let file_size = host.len();
        let mut j = Journal::new(host).with_spill_limit(opts.spill_limit);
        if writable {
            j = j.with_spill_dir(journal::journal_dir(path));
        }
        let mut parent_chain = Vec::new();
        let kind = match forced {
            Some(k) => {
                let found = if crate::qcow2::detect(&j) {
                    Some(ContainerKind::Qcow2)
                } else if crate::vhdx::detect(&j) {
                    Some(ContainerKind::Vhdx)
                } else if crate::vhd::detect(&j) {
                    Some(ContainerKind::Vhd)
                } else {
                    None
                };
                if k != ContainerKind::Raw && found != Some(k) {
                    return Err(Error::corrupt(
                        "image",
                        0,
                        format!(
                            "{} was to be opened as {} but holds {}",
                            path.display(),
                            k.qemu_name(),
                            found.map_or("no such structure".to_string(), |f| format!(
                                "a {} image",
                                f.qemu_name()
                            ))
                        ),
                    ));
                }
                k
            }
            None => detect_kind(&j, path)?,
        };
        let (container, format, block_size, warnings) = if kind == ContainerKind::Qcow2 {
            let mut q = Qcow2::open(j, path)?;
            if let Some(b) = q.backing().cloned() {
                let ppath = b.resolve(path);
                if !ppath.is_file() && !is_block_device(&ppath) {
                    return Err(Error::MissingParent {
                        image: path.to_path_buf(),
                        parent: b.name.clone(),
                        tried: vec![ppath],
                    });
                }
                let same = |a: &Path, b: &Path| {
                    a.canonicalize()
                        .ok()
                        .is_some_and(|x| b.canonicalize().ok() == Some(x))
                };
                if same(&ppath, path) {
                    return Err(Error::corrupt(
                        "qcow2 backing file name",
                        q.header().backing_file_offset,
                        format!("{} names itself as its backing file", path.display()),
                    ));
                }
                let pkind = match b.format.as_deref() {
                    None | Some("") => None,
                    Some(f) => Some(ContainerKind::from_qemu_name(f).ok_or_else(|| {
                        Error::unsupported(
                            "qcow2 backing format extension",
                            0,
                            format!("backing format {f:?} (reseal reads qcow2, raw, vpc, vhdx)"),
                        )
                    })?),
                };
                let parent = Image::open_depth(&ppath, &parent_opts, depth + 1, None, pkind)?;
                parent_chain.push(ppath);
                parent_chain.extend(parent.info.parent_chain.iter().cloned());
                q.set_parent(Box::new(parent));
            }
            let bs = Some(q.cluster_size());
            (
                Container::Qcow2(Box::new(q)),
                ImageFormat::Qcow2,
                bs,
                Vec::new(),
            )
        } else if kind == ContainerKind::Vhdx {
            let mut v = Vhdx::open(j)?;
            let fmt = if v.parent_locator().is_some() {
                ImageFormat::VhdxDifferencing
            } else if v.is_fixed() {
                ImageFormat::VhdxFixed
            } else {
                ImageFormat::VhdxDynamic
            };
            if let Some(loc) = v.parent_locator().cloned() {
                let (ppath, parent) = open_vhdx_parent(path, &loc, &parent_opts, depth)?;
                let want: Vec<uuid::Uuid> = ["parent_linkage", "parent_linkage2"]
                    .iter()
                    .filter_map(|k| loc.get(k))
                    .filter_map(|g| {
                        uuid::Uuid::parse_str(g.trim_matches(|c| c == '{' || c == '}')).ok()
                    })
                    .collect();
                let have = match &parent.container {
                    Container::Vhdx(pv) => {
                        Some(uuid::Uuid::from_bytes_le(pv.header().data_write_guid))
                    }
                    _ => None,
                };
                if !have.is_some_and(|h| want.contains(&h)) {
                    return Err(Error::corrupt(
                        "VHDX parent locator",
                        0,
                        format!(
                            "parent {} has DataWriteGuid {:?} but the child expects {:?} (the parent changed after the child was made)",
                            ppath.display(),
                            have,
                            want
                        ),
                    ));
                }
                if parent.len() != v.len() {
                    return Err(Error::corrupt(
                        "VHDX virtual disk size",
                        0,
                        format!(
                            "parent {} has a different size than the child",
                            ppath.display()
                        ),
                    ));
                }
                parent_chain.push(ppath);
                parent_chain.extend(parent.info.parent_chain.iter().cloned());
                v.set_parent(Box::new(parent));
            }
            let bs = Some(v.block_size());
            let w = v.warnings().to_vec();
            (Container::Vhdx(Box::new(v)), fmt, bs, w)
        } else if kind == ContainerKind::Vhd {
            let mut v = Vhd::open(j, access == Access::ReadOnly)?;
            let fmt = match v.disk_type() {
                VhdType::Fixed => ImageFormat::VhdFixed,
                VhdType::Dynamic => ImageFormat::VhdDynamic,
                VhdType::Differencing => ImageFormat::VhdDifferencing,
            };
            if let Some(pi) = v.parent_info().cloned() {
                let (ppath, parent) = open_vhd_parent(path, &pi, &parent_opts, depth)?;
                let pu = match &parent.container {
                    Container::Vhd(pv) => pv.footer().uuid,
                    _ => [0; 16],
                };
                if pu != pi.uuid {
                    return Err(Error::corrupt(
                        "VHD dynamic header",
                        v.footer().data_offset + 40,
                        format!(
                            "parent {} has UUID {} but the child expects {}",
                            ppath.display(),
                            uuid::Uuid::from_bytes(pu),
                            uuid::Uuid::from_bytes(pi.uuid)
                        ),
                    ));
                }
                if parent.len() < v.len() {
                    return Err(Error::corrupt(
                        "VHD footer",
                        0,
                        format!("parent {} is smaller than the child", ppath.display()),
                    ));
                }
                parent_chain.push(ppath);
                parent_chain.extend(parent.info.parent_chain.iter().cloned());
                v.set_parent(Box::new(parent));
            }
            let bs = v.block_size();
            let w = v.warnings().to_vec();
            (Container::Vhd(Box::new(v)), fmt, bs, w)
        } else {
            (
                Container::Raw(RawDisk::new(j)),
                ImageFormat::Raw,
                None,
                Vec::new(),
            )
        };
        let dev = container.dev();
        let info = ImageInfo {
            format,
            virtual_size: dev.len(),
            file_size,
            parent_chain,
            sector_size: dev.sector_size(),
            block_size,
            warnings,
        };
        Ok(Image {
            path: path.to_path_buf(),
            opts: *opts,
            forced,
            container,
            info,
            _lock: Some(lock),
        })
    }

    /// Structural checks of the container beyond what opening validates (qcow2: every
    /// reference count against the references the tables make, as `qemu-img check` does).
    /// Returns the clusters compared and the problems found. Read-only.
    pub fn check_structures(&self) -> (u64, Vec<crate::check::Problem>) {
        match &self.container {
            Container::Qcow2(q) => q.check(),
            _ => (0, Vec::new()),
        }
    }

    /// The image file.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Container format.
    pub fn format(&self) -> ImageFormat {
        self.info.format
    }
    /// Facts about the image.
    pub fn info(&self) -> ImageInfo {
        let mut i = self.info.clone();
        i.file_size = self.container.journal().len();
        i
    }
    /// The VHD container, if the image is one (a child records its footer's UUID).
    pub(crate) fn as_vhd(&self) -> Option<&Vhd<J>> {
        match &self.container {
            Container::Vhd(v) => Some(v),
            _ => None,
        }
    }
    /// The VHDX container, if the image is one (a child records its DataWriteGuid).
    pub(crate) fn as_vhdx(&self) -> Option<&Vhdx<J>> {
        match &self.container {
            Container::Vhdx(v) => Some(v),
            _ => None,
        }
    }
    /// Byte ranges of the image *file* changed by staged writes.
    pub fn changes(&self) -> Vec<Range<u64>> {
        self.container.journal().changes()
    }
    /// True if writes are staged.
    pub fn is_modified(&self) -> bool {
        self.container.journal().is_modified()
    }
    /// Drop the staged writes (re-reads the container metadata).
    ///
    /// # Errors
    /// Errors of re-opening the image.
    pub fn discard(&mut self) -> Result<()> {
        // Keep holding the lock while re-opening: no one may slip in between.
        let lock = self._lock.take();
        *self = Image::open_depth(&self.path, &self.opts, 0, lock, self.forced)?;
        Ok(())
    }
    /// How the image was opened.
    pub fn access(&self) -> Access {
        self.opts.access
    }
    /// Commit the staged writes atomically; the undo file goes into the sidecar directory.
    ///
    /// # Errors
    /// I/O errors (the next writable open recovers); [`Error::ReadOnly`].
    pub fn commit(&mut self) -> Result<CommitReport> {
        self.commit_with_faults(None)
    }
    /// [`Image::commit`] with a crash injected before durable step `fail_after` (tests).
    ///
    /// # Errors
    /// As [`Image::commit`], plus the injected fault.
    pub fn commit_with_faults(&mut self, fail_after: Option<usize>) -> Result<CommitReport> {
        match self.opts.access {
            Access::ReadOnly => return Err(Error::ReadOnly),
            Access::DryRun => return Err(Error::DryRun),
            Access::ReadWrite => {}
        }
        if !self.is_modified() {
            return self
                .container
                .journal_mut()
                .commit_with_faults(Path::new(""), fail_after);
        }
        let undo = journal::next_undo_path(&self.path)?;
        self.container
            .journal_mut()
            .commit_with_faults(&undo, fail_after)
    }
}

/// Refuses a regular file without any write permission bit ([`Error::WriteProtected`]): a
/// golden image (or hive) made read-only is never written, not even by root, unless the caller
/// was told to force it. Block devices are protected by their own permissions and by
/// `blockdev --setro`.
///
/// # Errors
/// [`Error::WriteProtected`]; I/O errors reading the file's metadata.
pub fn refuse_write_protected(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let mode = meta.permissions().mode();
    if meta.is_file() && mode & 0o222 == 0 {
        return Err(Error::WriteProtected {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    Ok(())
}

/// Candidate paths of a VHD parent, in the order tried: relative locators (W2ru), absolute
/// locators (W2ku, also as a file name next to the child), then the parent name from the header
/// next to the child.
pub fn vhd_parent_candidates(child: &Path, pi: &crate::vhd::ParentInfo) -> Vec<PathBuf> {
    let dir = child.parent().map(Path::to_path_buf).unwrap_or_default();
    let norm = |s: &str| s.replace('\\', "/");
    let mut out: Vec<PathBuf> = Vec::new();
    let mut push = |p: PathBuf| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    for code in [b"W2ru", b"W2ku"] {
        for l in pi.locators.iter().filter(|l| &l.code == code) {
            let s = norm(&l.path);
            let is_windows_abs = s.len() >= 2 && s.as_bytes()[1] == b':';
            if code == b"W2ru" || !s.starts_with('/') || is_windows_abs {
                let rel = s.trim_start_matches("./");
                if !is_windows_abs && !rel.starts_with('/') {
                    push(dir.join(rel));
                }
            }
            if s.starts_with('/') {
                push(PathBuf::from(&s));
            }
            if let Some(name) = s.rsplit('/').next().filter(|n| !n.is_empty()) {
                push(dir.join(name));
            }
        }
    }
    let name = norm(&pi.name);
    if let Some(name) = name.rsplit('/').next().filter(|n| !n.is_empty()) {
        push(dir.join(name));
    }
    out
}

/// Candidate paths of a VHDX parent: `relative_path` (relative to the child's folder), then the
/// file names of `absolute_win32_path` and `volume_path` next to the child, then an absolute
/// `absolute_win32_path` as is (Linux-style paths).
pub fn vhdx_parent_candidates(child: &Path, loc: &crate::vhdx::ParentLocator) -> Vec<PathBuf> {
    let dir = child.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut out: Vec<PathBuf> = Vec::new();
    let mut push = |p: PathBuf| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    if let Some(r) = loc.get("relative_path") {
        let r = r.replace('\\', "/");
        let r = r.trim_start_matches("./");
        if !r.starts_with('/') && (r.len() < 2 || r.as_bytes()[1] != b':') {
            push(dir.join(r));
        }
    }
    for key in ["absolute_win32_path", "volume_path"] {
        if let Some(a) = loc.get(key) {
            let a = a.replace('\\', "/");
            if let Some(name) = a.rsplit('/').next().filter(|n| !n.is_empty()) {
                push(dir.join(name));
            }
            if a.starts_with('/') {
                push(PathBuf::from(&a));
            }
        }
    }
    out
}

/// The first of `candidates` that is a file, opened as a parent image one level deeper.
fn open_first_file(
    candidates: &[PathBuf],
    opts: &OpenOptions,
    depth: usize,
) -> Option<Result<(PathBuf, Image)>> {
    let p = candidates.iter().find(|p| p.is_file())?;
    Some(Image::open_depth(p, opts, depth + 1, None, None).map(|img| (p.clone(), img)))
}

fn open_vhdx_parent(
    child: &Path,
    loc: &crate::vhdx::ParentLocator,
    opts: &OpenOptions,
    depth: usize,
) -> Result<(PathBuf, Image)> {
    let tried = vhdx_parent_candidates(child, loc);
    if let Some(found) = open_first_file(&tried, opts, depth) {
        return found;
    }
    let named = loc
        .entries
        .iter()
        .filter(|(k, _)| k.contains("path"))
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::MissingParent {
        image: child.to_path_buf(),
        parent: named,
        tried,
    })
}

fn open_vhd_parent(
    child: &Path,
    pi: &crate::vhd::ParentInfo,
    opts: &OpenOptions,
    depth: usize,
) -> Result<(PathBuf, Image)> {
    let tried = vhd_parent_candidates(child, pi);
    if let Some(found) = open_first_file(&tried, opts, depth) {
        return found;
    }
    let named = pi
        .locators
        .iter()
        .map(|l| l.path.clone())
        .chain(std::iter::once(pi.name.clone()))
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    Err(Error::MissingParent {
        image: child.to_path_buf(),
        parent: named,
        tried,
    })
}

impl Device for Image {
    fn len(&self) -> u64 {
        self.container.dev().len()
    }
    fn sector_size(&self) -> u32 {
        self.container.dev().sector_size()
    }
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.container.dev().read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, buf: &[u8]) -> Result<()> {
        if self.opts.access == Access::ReadOnly {
            return Err(Error::ReadOnly);
        }
        self.container.dev_mut().write_at(offset, buf)
    }
    /// Staged writes become durable only through [`Image::commit`]; this does nothing.
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    /// Savepoints of the image's journal; VHD, VHDX and qcow2 also keep the block tables they
    /// hold in memory, to put back with a rollback.
    fn savepoint(&mut self) -> bool {
        if self.opts.access == Access::ReadOnly {
            return false;
        }
        self.container.dev_mut().savepoint()
    }
    fn rollback_savepoint(&mut self) -> Result<()> {
        self.container.dev_mut().rollback_savepoint()
    }
    fn release_savepoint(&mut self) -> Result<()> {
        self.container.dev_mut().release_savepoint()
    }
    fn known_zero(&self, offset: u64, len: u64) -> bool {
        self.container.dev().known_zero(offset, len)
    }
}

fn is_block_device(p: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(p).is_ok_and(|m| m.file_type().is_block_device())
}

/// `qemu-img convert -O qcow2 IN OUT` for a file reseal does not read.
fn convert_command(path: &Path) -> String {
    let out = path.with_extension("qcow2");
    let q = |p: &Path| {
        let s = p.display().to_string();
        if s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@".contains(c))
        {
            s
        } else {
            format!("'{}'", s.replace('\'', "'\\''"))
        }
    };
    format!("qemu-img convert -O qcow2 {} {}", q(path), q(&out))
}

/// The container of an image from its content (see [`Image::open`]).
fn detect_kind(dev: &dyn Device, path: &Path) -> Result<ContainerKind> {
    let mut head = [0u8; 512];
    let n = dev.len().min(512) as usize;
    dev.read_at(0, &mut head[..n])?;
    let head = &head[..n];
    if crate::qcow2::detect(dev) {
        let at = core::mem::offset_of!(crate::layout::qcow2::QcowHeaderV2, version);
        let version = head
            .get(at..)
            .and_then(|v| zerocopy::big_endian::U32::read_from_prefix(v).ok())
            .map(|(v, _)| v.get());
        if version == Some(1) {
            return Err(Error::ForeignFormat {
                path: path.to_path_buf(),
                format: "qcow (version 1)".into(),
                command: convert_command(path),
            });
        }
        return Ok(ContainerKind::Qcow2);
    }
    if crate::vhdx::detect(dev) {
        return Ok(ContainerKind::Vhdx);
    }
    if crate::vhd::detect(dev) {
        return Ok(ContainerKind::Vhd);
    }
    let foreign = if head.starts_with(b"KDMV") {
        Some("VMDK (sparse extent)")
    } else if head.starts_with(b"COWD") {
        Some("VMDK (ESX sparse extent)")
    } else if head.starts_with(b"# Disk DescriptorFile") {
        Some("VMDK (text descriptor)")
    } else if head.starts_with(b"<<< ")
        && head.get(64..68) == Some(&0xbeda_107fu32.to_le_bytes()[..])
    {
        Some("VDI")
    } else if head.starts_with(b"QED\0") {
        Some("QED")
    } else if head.starts_with(b"WithoutFreeSpace") || head.starts_with(b"WithouFreSpacExt") {
        Some("Parallels")
    } else {
        None
    };
    if let Some(f) = foreign {
        return Err(Error::ForeignFormat {
            path: path.to_path_buf(),
            format: f.into(),
            command: convert_command(path),
        });
    }
    let blank = head.iter().all(|&b| b == 0);
    let boot_signature = head.len() == 512
        && crate::layout::mbr::Mbr::view(head).is_some_and(|m| m.has_boot_signature());
    if blank || boot_signature {
        Ok(ContainerKind::Raw)
    } else {
        Err(Error::UnknownFormat {
            path: path.to_path_buf(),
        })
    }
}
