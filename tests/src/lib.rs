//! Shared helpers of the end-to-end tests: where the corpus is, decompressed corpus files, oracle
//! tools, and a builder of disk images whose file systems are written by independent tools
//! (sfdisk, mkfs.fat, mkntfs and an ntfs-3g FUSE mount), so that our readers are checked against
//! data we did not write.

pub mod env;
pub mod schema;
pub mod windows;

use anyhow::{bail, Context, Result};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

pub use env::{
    allow_skip, corpus, corpus_or_skip, corpus_path, have_tool, have_tools, require_tool,
    skip_allowed, skip_or_panic, tool_installed,
};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("invariant: tests/ lives one level below the workspace root")
        .to_path_buf()
}

/// The bytes of a corpus file, decompressed when its name ends in .xz, .gz or .bz2.
///
/// # Errors
/// When the file cannot be read or decompressed.
pub fn corpus_bytes(rel: &str) -> Result<Vec<u8>> {
    let path = corpus().join(rel);
    let raw = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut out = Vec::new();
    if rel.ends_with(".xz") {
        xz2::read::XzDecoder::new(&raw[..]).read_to_end(&mut out)?;
    } else if rel.ends_with(".gz") {
        flate2::read::GzDecoder::new(&raw[..]).read_to_end(&mut out)?;
    } else if rel.ends_with(".bz2") {
        bzip2::read::BzDecoder::new(&raw[..]).read_to_end(&mut out)?;
    } else {
        out = raw;
    }
    Ok(out)
}

/// A corpus file as a plain file of its own in `dir` (decompressed when compressed, copied
/// otherwise): a test may write it without ever touching the shared corpus.
///
/// # Errors
/// When the file cannot be read or written.
pub fn corpus_file(rel: &str, dir: &Path) -> Result<PathBuf> {
    let compressed = [".xz", ".gz", ".bz2"].iter().any(|e| rel.ends_with(e));
    let p = Path::new(rel);
    let name = if compressed {
        p.file_stem()
    } else {
        p.file_name()
    }
    .context("corpus path has no file name")?;
    let out = dir.join(name);
    std::fs::write(&out, corpus_bytes(rel)?)?;
    Ok(out)
}

/// Run a command, failing with its stderr when it does not succeed.
///
/// # Errors
/// When the command cannot start or exits non-zero.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd.output().with_context(|| format!("starting {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// FUSE mounts are serialised across the tests of one process: some FUSE setups dislike many
/// concurrent mounts, and a failure is easier to read alone.
static MOUNT_LOCK: Mutex<()> = Mutex::new(());

/// An ntfs-3g FUSE mount that is unmounted when dropped.
pub struct NtfsMount {
    dir: tempfile::TempDir,
    _guard: std::sync::MutexGuard<'static, ()>,
    mounted: bool,
}

impl NtfsMount {
    /// Mount `image` (a bare NTFS volume file) with ntfs-3g and the given extra options.
    ///
    /// # Errors
    /// When ntfs-3g refuses.
    pub fn new(image: &Path, options: &str) -> Result<Self> {
        require_tool("ntfs-3g");
        let guard = MOUNT_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        let dir = tempfile::tempdir()?;
        let mut cmd = Command::new("ntfs-3g");
        if !options.is_empty() {
            cmd.args(["-o", options]);
        }
        run(cmd.arg(image).arg(dir.path()))?;
        Ok(Self {
            dir,
            _guard: guard,
            mounted: true,
        })
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Unmount now (also done on drop).
    ///
    /// # Errors
    /// When the unmount fails.
    pub fn unmount(mut self) -> Result<()> {
        self.do_unmount()
    }

    fn do_unmount(&mut self) -> Result<()> {
        if !self.mounted {
            return Ok(());
        }
        // ntfs-3g writes back asynchronously; `umount` waits for the FUSE daemon to finish, but
        // right after heavy writes it can report the target busy for a moment: retry.
        let mut last = None;
        for attempt in 0..20 {
            match run(Command::new("umount").arg(self.dir.path())) {
                Ok(_) => {
                    self.mounted = false;
                    return Ok(());
                }
                Err(e) => {
                    last = Some(e);
                    std::thread::sleep(std::time::Duration::from_millis(100 * (attempt + 1)));
                }
            }
        }
        Err(last.expect("invariant: at least one attempt failed"))
    }
}

impl Drop for NtfsMount {
    fn drop(&mut self) {
        if let Err(e) = self.do_unmount() {
            eprintln!(
                "warning: unmount of {} failed: {e:#}",
                self.dir.path().display()
            );
        }
    }
}

/// One entry to create in an NTFS volume through ntfs-3g.
#[derive(Debug, Clone)]
pub enum Entry {
    /// A directory (parents are created as needed).
    Dir(String),
    /// A regular file with content.
    File(String, Vec<u8>),
    /// A sparse file of the given length with `data` written at `offset`.
    Sparse {
        /// Path inside the volume, `/`-separated.
        path: String,
        /// Logical length.
        len: u64,
        /// Where the data goes.
        offset: u64,
        /// Data.
        data: Vec<u8>,
    },
    /// An alternate data stream on an existing file.
    Stream {
        /// The file.
        path: String,
        /// Stream name.
        stream: String,
        /// Content.
        data: Vec<u8>,
    },
    /// A self-relative security descriptor set through the `system.ntfs_acl` extended attribute.
    Acl(String, Vec<u8>),
}

/// An NTFS volume made by mkntfs and populated through an ntfs-3g mount.
#[derive(Debug, Clone)]
pub struct NtfsSpec {
    /// Volume size in bytes.
    pub size: u64,
    /// Cluster size in bytes.
    pub cluster: u32,
    /// Volume label.
    pub label: String,
    /// What to create, in order.
    pub entries: Vec<Entry>,
}

impl NtfsSpec {
    /// Build the volume as a sparse file at `out`.
    ///
    /// # Errors
    /// When mkntfs, the mount or a file operation fails.
    pub fn build(&self, out: &Path) -> Result<()> {
        require_tool("mkntfs");
        let f = File::create(out)?;
        f.set_len(self.size)?;
        drop(f);
        run(Command::new("mkntfs")
            .args([
                "-F",
                "-q",
                "-Q",
                "-c",
                &self.cluster.to_string(),
                "-L",
                &self.label,
            ])
            .arg(out))?;
        if self.entries.is_empty() {
            return Ok(());
        }
        let mount = NtfsMount::new(out, "streams_interface=windows")?;
        populate(mount.path(), &self.entries)?;
        mount.unmount()
    }
}

/// Create `entries` under `root` (a mounted NTFS volume), in order.
///
/// # Errors
/// When a file operation fails.
pub fn populate(root: &Path, entries: &[Entry]) -> Result<()> {
    for e in entries {
        match e {
            Entry::Dir(p) => std::fs::create_dir_all(root.join(p))?,
            Entry::File(p, data) => {
                let path = root.join(p);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(path, data)?;
            }
            Entry::Sparse {
                path,
                len,
                offset,
                data,
            } => {
                let path = root.join(path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                let mut f = File::create(path)?;
                f.set_len(*len)?;
                f.seek(SeekFrom::Start(*offset))?;
                f.write_all(data)?;
            }
            Entry::Stream { path, stream, data } => {
                let target = format!("{}:{stream}", root.join(path).display());
                std::fs::write(target, data)?;
            }
            Entry::Acl(p, sd) => {
                let path = root.join(p);
                xattr::set(&path, "system.ntfs_acl", sd)
                    .with_context(|| format!("setting system.ntfs_acl on {}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Every hive in a raw image: (offset, hive-bins size) of each `regf` base block on a 4 KiB
/// boundary of `bytes`.
pub fn find_hives(bytes: &[u8]) -> Vec<(usize, usize)> {
    (0..bytes.len().saturating_sub(44))
        .step_by(4096)
        .filter(|&o| bytes[o..].starts_with(b"regf"))
        .map(|o| {
            let size =
                u32::from_le_bytes([bytes[o + 40], bytes[o + 41], bytes[o + 42], bytes[o + 43]]);
            (o, size as usize)
        })
        .collect()
}

/// Write `count` hostile 4-byte values at places inside the bins of `hive` (from
/// [`find_hives`]) in the image file `f`, chosen by `round` from `rnd`; returns the original bytes
/// for [`restore_bytes`].
///
/// # Errors
/// I/O errors.
pub fn scribble_hive(
    f: &File,
    hive: (usize, usize),
    round: usize,
    count: usize,
    rnd: &[u8],
) -> Result<Vec<(u64, [u8; 4])>> {
    use std::os::unix::fs::FileExt;
    let (o, size) = hive;
    let mut saved = Vec::new();
    for k in 0..count {
        let r = usize::from(rnd[(round * 97 + k * 13) % rnd.len()]) << 8
            | usize::from(rnd[(round * 31 + k * 7 + 1) % rnd.len()]);
        let at = (o + 4096 + (r * 2654435761usize) % size.max(1)) as u64;
        let mut old = [0u8; 4];
        f.read_exact_at(&mut old, at)?;
        saved.push((at, old));
        let new = [
            rnd[(round + k) % rnd.len()],
            rnd[(round + k + 5) % rnd.len()],
            0xff,
            0x7f | (k as u8 & 0x80),
        ];
        f.write_all_at(&new, at)?;
    }
    Ok(saved)
}

/// Undo [`scribble_hive`].
///
/// # Errors
/// I/O errors.
pub fn restore_bytes(f: &File, saved: Vec<(u64, [u8; 4])>) -> Result<()> {
    use std::os::unix::fs::FileExt;
    for (at, old) in saved.into_iter().rev() {
        f.write_all_at(&old, at)?;
    }
    Ok(())
}

/// A partition of a [`DiskSpec`].
#[derive(Debug, Clone)]
pub struct PartSpec {
    /// sfdisk type: GUID for GPT (or alias such as `U`), hex byte for MBR.
    pub kind: String,
    /// GPT name (ignored for MBR).
    pub name: String,
    /// Size in bytes (a multiple of 1 MiB).
    pub size: u64,
    /// Content.
    pub content: PartContent,
}

/// What a partition holds.
#[derive(Debug, Clone)]
pub enum PartContent {
    /// Nothing (zeros).
    Empty,
    /// A FAT32 file system made by mkfs.fat.
    Fat32 {
        /// Label.
        label: String,
    },
    /// An NTFS volume.
    Ntfs(NtfsSpec),
    /// Raw bytes written at the partition start.
    Bytes(Vec<u8>),
    /// A prepared file (e.g. an NTFS volume built beforehand) copied in sparsely.
    File(PathBuf),
}

/// GPT type GUIDs used by Windows disks.
pub mod gpt_type {
    /// EFI system partition.
    pub const ESP: &str = "C12A7328-F81F-11D2-BA4B-00A0C93EC93B";
    /// Microsoft reserved partition.
    pub const MSR: &str = "E3C9E316-0B5C-4DB8-817D-F92DF00215AE";
    /// Microsoft basic data.
    pub const BASIC_DATA: &str = "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7";
}

/// A whole disk: partition table plus partitions, laid out from 1 MiB on.
#[derive(Debug, Clone)]
pub struct DiskSpec {
    /// `gpt` or `dos`.
    pub label: String,
    /// Extra room after the last partition (GPT needs 33 sectors for its backup).
    pub tail: u64,
    /// Partitions in order.
    pub parts: Vec<PartSpec>,
}

/// Where each partition of a built disk landed.
#[derive(Debug, Clone)]
pub struct BuiltPart {
    /// Byte offset.
    pub start: u64,
    /// Byte length.
    pub size: u64,
}

const MIB: u64 = 1 << 20;

impl DiskSpec {
    /// Preset: a GPT disk with one basic-data partition of `size` bytes holding an NTFS volume
    /// (4 KiB clusters) labelled `label` with `entries`.
    pub fn gpt_ntfs(size: u64, label: &str, entries: Vec<Entry>) -> DiskSpec {
        DiskSpec {
            label: "gpt".into(),
            tail: MIB,
            parts: vec![PartSpec {
                kind: gpt_type::BASIC_DATA.into(),
                name: "Basic data partition".into(),
                size,
                content: PartContent::Ntfs(NtfsSpec {
                    size: 0,
                    cluster: 4096,
                    label: label.into(),
                    entries,
                }),
            }],
        }
    }

    /// Preset: a Windows UEFI layout — an EFI system partition (FAT32, 33 MiB), a Microsoft
    /// reserved partition (16 MiB) and a basic-data partition of `size` bytes holding
    /// `windows` (its third partition).
    pub fn gpt_windows(size: u64, windows: PartContent) -> DiskSpec {
        DiskSpec {
            label: "gpt".into(),
            tail: MIB,
            parts: vec![
                PartSpec {
                    kind: gpt_type::ESP.into(),
                    name: "EFI system partition".into(),
                    size: 33 * MIB,
                    content: PartContent::Fat32 {
                        label: "SYSTEM".into(),
                    },
                },
                PartSpec {
                    kind: gpt_type::MSR.into(),
                    name: "Microsoft reserved partition".into(),
                    size: 16 * MIB,
                    content: PartContent::Empty,
                },
                PartSpec {
                    kind: gpt_type::BASIC_DATA.into(),
                    name: "Basic data partition".into(),
                    size,
                    content: windows,
                },
            ],
        }
    }

    /// Build a raw disk image at `out` (sparse). Returns where each partition is.
    ///
    /// # Errors
    /// When a tool fails.
    pub fn build(&self, out: &Path) -> Result<Vec<BuiltPart>> {
        require_tool("sfdisk");
        let total: u64 = MIB + self.parts.iter().map(|p| p.size).sum::<u64>() + self.tail.max(MIB);
        let f = File::create(out)?;
        f.set_len(total)?;
        drop(f);
        let mut script = format!("label: {}\nunit: sectors\n", self.label);
        let mut built = Vec::new();
        let mut at = MIB;
        for p in &self.parts {
            let mut line = format!("start={}, size={}, type={}", at / 512, p.size / 512, p.kind);
            if self.label == "gpt" && !p.name.is_empty() {
                line.push_str(&format!(", name=\"{}\"", p.name));
            }
            script.push_str(&line);
            script.push('\n');
            built.push(BuiltPart {
                start: at,
                size: p.size,
            });
            at += p.size;
        }
        let mut child = Command::new("sfdisk")
            .args(["--no-reread", "--no-tell-kernel", "-q"])
            .arg(out)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        child
            .stdin
            .take()
            .context("sfdisk stdin")?
            .write_all(script.as_bytes())?;
        let o = child.wait_with_output()?;
        if !o.status.success() {
            bail!("sfdisk failed: {}", String::from_utf8_lossy(&o.stderr));
        }
        let tmp = tempfile::tempdir()?;
        for (i, (p, b)) in self.parts.iter().zip(&built).enumerate() {
            let part_file = tmp.path().join(format!("p{i}"));
            match &p.content {
                PartContent::Empty => continue,
                PartContent::File(path) => {
                    copy_sparse(path, out, b.start)?;
                    continue;
                }
                PartContent::Bytes(bytes) => std::fs::write(&part_file, bytes)?,
                PartContent::Fat32 { label } => {
                    require_tool("mkfs.fat");
                    let f = File::create(&part_file)?;
                    f.set_len(p.size)?;
                    drop(f);
                    run(Command::new("mkfs.fat")
                        .args(["-F", "32", "-n", label])
                        .arg(&part_file))?;
                }
                PartContent::Ntfs(spec) => {
                    let mut spec = spec.clone();
                    spec.size = p.size;
                    spec.build(&part_file)?;
                }
            }
            copy_sparse(&part_file, out, b.start)?;
        }
        Ok(built)
    }
}

/// Copy `src` into `dst` at `offset`, skipping all-zero 64 KiB chunks so the output stays sparse.
///
/// # Errors
/// On I/O errors.
pub fn copy_sparse(src: &Path, dst: &Path, offset: u64) -> Result<()> {
    let mut s = File::open(src)?;
    let mut d = OpenOptions::new().write(true).open(dst)?;
    let mut buf = vec![0u8; 64 * 1024];
    let mut pos = 0u64;
    loop {
        let n = read_full(&mut s, &mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().any(|&b| b != 0) {
            d.seek(SeekFrom::Start(offset + pos))?;
            d.write_all(&buf[..n])?;
        }
        pos += n as u64;
    }
    Ok(())
}

fn read_full(f: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Deterministic pseudo-random bytes (xorshift), so fixtures are reproducible.
pub fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut v = Vec::with_capacity(len);
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// Run `ntfssecaudit -a` on a bare NTFS volume and check that it finds no error.
///
/// ntfssecaudit 1.5.0 prints "No errors were found" even after reporting errors, so the
/// per-structure counts are checked instead. One report is tolerated: after `$SDS` has grown
/// by an append it reads past the end of the stream and says "Security attribute is too long" in
/// `$SDS-2`; an append through an ntfs-3g mount gives the identical stream and the same report.
/// It is accepted only when the mirror holds exactly as many valid entries as the primary.
///
/// # Errors
/// The audit text, when it shows a problem.
pub fn ntfssecaudit_clean(volume: &Path) -> Result<()> {
    require_tool("ntfssecaudit");
    let out = Command::new("ntfssecaudit")
        .arg("-a")
        .arg(volume)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let count = |section: &str| {
        text.lines()
            .find(|l| l.ends_with(&format!("entries in {section}")))
            .and_then(|l| l.split_whitespace().next().map(str::to_owned))
    };
    let quirk = text.contains("** Security attribute is too long")
        && text.contains("1 errors in $SDS-2")
        && count("$SDS-1").is_some()
        && count("$SDS-1") == count("$SDS-2");
    for section in ["$SDS-1", "$SDS-2", "$SII", "$SDH"] {
        let zero = format!("0 errors in {section}");
        let ok = text.lines().any(|l| l == zero) || (quirk && section == "$SDS-2");
        if !ok {
            bail!("ntfssecaudit -a finds errors in {section}:\n{text}");
        }
    }
    Ok(())
}

/// A file of a bare NTFS volume as ntfs-3g's `ntfscat` reads it; `None` when ntfscat fails
/// (no such file).
pub fn ntfscat(volume: &Path, path: &str) -> Option<Vec<u8>> {
    let o = Command::new("ntfscat")
        .arg(volume)
        .arg(path)
        .output()
        .ok()?;
    o.status.success().then_some(o.stdout)
}

/// A registry value as `hivexget HIVE KEY VALUE` prints it (trailing newline removed), of the
/// hive at volume path `hive` of a bare NTFS volume read with `ntfscat`; `None` when hivexget
/// finds no such key or value.
///
/// # Panics
/// When ntfscat cannot read the hive, or hivexget cannot be run.
pub fn hivexget_in_volume(volume: &Path, hive: &str, key: &str, value: &str) -> Option<String> {
    let data = ntfscat(volume, hive).unwrap_or_else(|| panic!("ntfscat {hive}"));
    let tmp = tempfile::NamedTempFile::new().expect("temporary file");
    std::fs::write(tmp.path(), data).expect("writing the hive");
    let o = Command::new("hivexget")
        .arg(tmp.path())
        .arg(key)
        .arg(value)
        .output()
        .expect("running hivexget");
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).trim_end().to_string())
}
