//! NTFS write commands: `put`, `rm`, `mkdir`, `mv`, `setsd`, and the `getsd` read.
//!
//! Each opens the image writable, refuses a volume that is dirty, hibernated or shut down with
//! Fast Startup (unless `--force`), performs the operation through the NTFS write engine, whose
//! writes are staged in the image's journal, and then either reports the staged change
//! (`--dry-run`) or commits it atomically with an undo file.

use anyhow::{Context, Result};
use reseal_disk::partition::Slice;
use reseal_disk::{Access, Image};
use reseal_ntfs::{OpenWritableError, WritePolicy};
use std::path::Path;

use crate::fs::select_ntfs;

/// Options every write command shares.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct WriteOpts {
    /// Partition number (default: the only NTFS volume).
    #[arg(short, long)]
    pub partition: Option<u32>,
    /// Report what would change and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Write even to a volume that is dirty, hibernated or was shut down with Fast Startup, and
    /// to an image file without write permission.
    #[arg(long)]
    pub force: bool,
}

/// Run `op` on the writable NTFS volume of `image`, then commit or report.
pub fn with_volume<T>(
    image: &Path,
    opts: WriteOpts,
    what: &str,
    op: impl FnOnce(&mut reseal_ntfs::Volume<Slice<&mut Image>>) -> Result<T>,
) -> Result<T> {
    // A dry run stages its writes in the journal like a real run and then discards them: the
    // file is opened read-only, under a shared lock, so nothing can reach it.
    let mut img = crate::open::open(image, crate::open::write_access(opts.dry_run), opts.force)?;
    let (start, len) = select_ntfs(&mut img, opts.partition)?;
    let out = {
        let slice = Slice::new(&mut img, start, len)?;
        let policy = WritePolicy {
            force_unsafe_state: opts.force,
        };
        let writable = match reseal_ntfs::Volume::open_writable(slice, policy) {
            Ok(w) => w,
            Err(OpenWritableError::Refused { message, .. }) => {
                return Err(crate::out::Refused(message).into())
            }
            Err(e) => return Err(e.into()),
        };
        if writable.overridden.is_some() {
            if let Some(why) = writable.state.refusal() {
                eprintln!("warning: forced: {why}");
            }
        }
        let mut vol = writable.volume;
        let out = op(&mut vol).with_context(|| what.to_string())?;
        vol.flush()?;
        out
    };
    let changes = img.changes();
    let bytes: u64 = changes.iter().map(|r| r.end - r.start).sum();
    if opts.dry_run {
        eprintln!(
            "dry run: {what}: would write {bytes} bytes in {} ranges of {}",
            changes.len(),
            image.display()
        );
        return Ok(out);
    }
    let rep = img.commit()?;
    reseal_disk::journal::record_operation(&rep.undo_path, what)?;
    eprintln!(
        "{what}: wrote {} bytes in {} ranges; undo with `reseal undo {}`",
        rep.bytes,
        rep.ranges,
        image.display()
    );
    Ok(out)
}

/// `reseal put IMAGE LOCAL PATH`: the local file is streamed into the volume (read in 1 MiB
/// chunks as it is written), so memory stays bounded whatever its size.
pub fn put(image: &Path, local: &Path, path: &str, opts: WriteOpts) -> Result<()> {
    // Open the local file first: a missing or unreadable one stops the command before the
    // image is opened.
    let mut file = open_local(local)?;
    with_volume(image, opts, &format!("put {path}"), |v| {
        if v.metadata(path).is_ok_and(|m| m.is_dir) {
            anyhow::bail!("{path} is an existing directory (give the file's full path)");
        }
        stream_file(v, &mut file, local, path)
    })
}

/// Open a local file to copy in, with its length.
fn open_local(local: &Path) -> Result<(std::fs::File, u64)> {
    let f = std::fs::File::open(local).with_context(|| format!("reading {}", local.display()))?;
    let len = f
        .metadata()
        .with_context(|| format!("reading {}", local.display()))?
        .len();
    Ok((f, len))
}

/// Copy an opened local file into `path` through the streaming write.
fn stream_file(
    v: &mut reseal_ntfs::Volume<Slice<&mut Image>>,
    file: &mut (std::fs::File, u64),
    local: &Path,
    path: &str,
) -> Result<()> {
    let len = file.1;
    // `take` so a file that grows while it is copied cannot write past the length given.
    let mut reader = std::io::Read::take(&mut file.0, len);
    match v.write_file_from(path, &mut reader, len) {
        Err(e @ reseal_ntfs::Error::Source { .. }) => {
            Err(anyhow::Error::new(e).context(format!("reading {}", local.display())))
        }
        r => Ok(r?),
    }
}

/// `reseal rm [-r] IMAGE PATH`.
pub fn rm(image: &Path, path: &str, recursive: bool, opts: WriteOpts) -> Result<()> {
    with_volume(image, opts, &format!("rm {path}"), |v| {
        if recursive {
            Ok(v.remove_all(path)?)
        } else {
            Ok(v.remove(path)?)
        }
    })
}

/// `reseal mkdir -p IMAGE PATH`: every missing directory on the path, in one journalled change.
pub fn mkdir_parents(image: &Path, path: &str, opts: WriteOpts) -> Result<()> {
    with_volume(image, opts, &format!("mkdir -p {path}"), |v| {
        ensure_dirs(v, path)
    })
}

/// Create `path` and its missing parents; existing directories are fine (`mkdir -p`).
fn ensure_dirs(v: &mut reseal_ntfs::Volume<Slice<&mut Image>>, path: &str) -> Result<()> {
    let mut at = String::new();
    for part in path.split(['/', '\\']).filter(|p| !p.is_empty()) {
        at.push('/');
        at.push_str(part);
        match v.metadata(&at) {
            Ok(m) if m.is_dir => continue,
            Ok(_) => anyhow::bail!("{at} exists and is not a directory"),
            Err(reseal_ntfs::Error::NotFound { .. }) => {
                v.create_dir(&at)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// `reseal put -r IMAGE LOCALDIR PATH`: the tree below LOCALDIR becomes PATH (directories
/// created as `mkdir -p` does, existing files replaced as `put` does), as one change.
/// Symbolic links and other non-regular files are skipped with a note.
pub fn put_tree(image: &Path, local: &Path, path: &str, opts: WriteOpts) -> Result<()> {
    if !local.is_dir() {
        anyhow::bail!(
            "{} is not a directory (put without -r copies one file)",
            local.display()
        );
    }
    // Walk the local tree first: an unreadable directory stops the command before any write
    // (an unreadable file stops it later, before the commit: nothing is written either way).
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let root = path.trim_end_matches(['/', '\\']).to_string();
    let mut stack = vec![(local.to_path_buf(), root.clone())];
    while let Some((dir, dest)) = stack.pop() {
        dirs.push(dest.clone());
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .collect::<std::io::Result<_>>()
            .with_context(|| format!("reading {}", dir.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let name = e.file_name();
            let Some(name) = name.to_str() else {
                anyhow::bail!("{} is not a UTF-8 name", e.path().display());
            };
            let ty = e
                .file_type()
                .with_context(|| format!("reading {}", e.path().display()))?;
            let to = format!("{dest}/{name}");
            if ty.is_dir() {
                stack.push((e.path(), to));
            } else if ty.is_file() {
                files.push((e.path(), to));
            } else {
                eprintln!("note: skipped {} (not a regular file)", e.path().display());
            }
        }
    }
    let what = format!("put -r {path} ({} files)", files.len());
    with_volume(image, opts, &what, |v| {
        for d in &dirs {
            ensure_dirs(v, if d.is_empty() { "/" } else { d })?;
        }
        for (from, to) in &files {
            if v.metadata(to).is_ok_and(|m| m.is_dir) {
                anyhow::bail!(
                    "{to} is an existing directory; {} is a file",
                    from.display()
                );
            }
            let mut file = open_local(from)?;
            stream_file(v, &mut file, from, to)
                .with_context(|| format!("put {}", from.display()))?;
        }
        Ok(())
    })
}

/// `reseal mkdir IMAGE PATH`.
pub fn mkdir(image: &Path, path: &str, opts: WriteOpts) -> Result<()> {
    with_volume(image, opts, &format!("mkdir {path}"), |v| {
        v.create_dir(path)?;
        Ok(())
    })
}

/// `reseal mv IMAGE FROM TO`.
pub fn mv(image: &Path, from: &str, to: &str, opts: WriteOpts) -> Result<()> {
    with_volume(image, opts, &format!("mv {from} {to}"), |v| {
        Ok(v.rename(from, to)?)
    })
}

/// Open the NTFS volume of `image` read-only with the write engine (for descriptor reads).
fn open_engine_ro(
    image: &Path,
    partition: Option<u32>,
) -> Result<reseal_ntfs::Volume<Slice<Image>>> {
    let mut img = crate::open::open(image, Access::ReadOnly, false)?;
    let (start, len) = select_ntfs(&mut img, partition)?;
    Ok(reseal_ntfs::Volume::open(Slice::new(img, start, len)?)?)
}

/// Render a descriptor as SDDL, falling back to hex when SDDL cannot express it.
pub fn sd_text(sd: &[u8]) -> String {
    match reseal_security::SecurityDescriptor::parse(sd).and_then(|d| d.to_sddl()) {
        Ok(s) => s,
        Err(e) => format!(
            "(no SDDL form: {e}) hex:{}",
            sd.iter().map(|b| format!("{b:02x}")).collect::<String>()
        ),
    }
}

/// `reseal getsd IMAGE PATH`.
pub fn getsd(image: &Path, path: &str, partition: Option<u32>, hex: bool) -> Result<()> {
    let vol = open_engine_ro(image, partition)?;
    let sd = vol.security_descriptor(path)?;
    if hex {
        outln!(
            "{}",
            sd.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
    } else {
        outln!("{}", sd_text(&sd));
    }
    Ok(())
}

/// `reseal setsd IMAGE PATH SDDL`. A descriptor without DACL (a NULL DACL: everyone gets full
/// access) is refused unless `allow_null_dacl`.
pub fn setsd(
    image: &Path,
    path: &str,
    sddl: &str,
    allow_null_dacl: bool,
    opts: WriteOpts,
) -> Result<()> {
    let sd = match reseal_security::SecurityDescriptor::from_sddl(sddl) {
        Ok(sd) => sd,
        // `LA`, `LG`, `DU`… name accounts of the machine's own domain: the image's machine SID.
        Err(e) if e.to_string().contains("domain-relative") => {
            let domain = image_machine_sid(image, opts.partition)?.ok_or_else(|| {
                anyhow::anyhow!(
                    "parsing SDDL {sddl:?}: {e}; {} holds no Windows install with a machine SID                      to resolve it against: write the SID as S-1-5-21-…-RID",
                    image.display()
                )
            })?;
            reseal_security::SecurityDescriptor::from_sddl_with_domain(sddl, Some(&domain))
                .with_context(|| format!("parsing SDDL {sddl:?} (domain {domain})"))?
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("parsing SDDL {sddl:?}"))),
    };
    if sd.dacl.is_none() && !allow_null_dacl {
        anyhow::bail!(
            "SDDL {sddl:?} has no DACL (no `D:` part with access entries): that is a NULL DACL, \
             which gives everyone full access to {path}; pass --allow-null-dacl if that is meant"
        );
    }
    // The layout Windows writes: header, SACL, DACL, owner, group.
    let bytes = sd.to_canonical_bytes()?;
    with_volume(image, opts, &format!("setsd {path}"), |v| {
        v.set_security(path, &bytes)?;
        Ok(())
    })
}

/// The machine SID of the Windows install on `partition` (or the only one) of `image`.
fn image_machine_sid(image: &Path, partition: Option<u32>) -> Result<Option<reseal_security::Sid>> {
    let mut img = crate::open::open(image, Access::ReadOnly, false)?;
    let installs: Vec<_> = reseal_windows::scan(&mut img)?
        .installs
        .into_iter()
        .filter(|w| partition.is_none_or(|p| p == w.partition))
        .collect();
    match installs.as_slice() {
        [one] => one
            .machine_sid
            .as_deref()
            .map(|s| s.parse().context("the image's machine SID"))
            .transpose(),
        [] => Ok(None),
        _ => anyhow::bail!(
            "{} holds several Windows installs: give the partition (-p N) whose machine SID              the SDDL's domain-relative aliases mean",
            image.display()
        ),
    }
}

/// The owner of each named entry of a directory, as SDDL SID text (for `ls -l`).
pub fn owners(
    image: &Path,
    dir: &str,
    names: &[String],
    partition: Option<u32>,
) -> Result<Vec<String>> {
    let vol = open_engine_ro(image, partition)?;
    let base = dir.trim_end_matches(['/', '\\']);
    Ok(names
        .iter()
        .map(|n| {
            let p = if base.is_empty() {
                format!("/{n}")
            } else {
                format!("{base}/{n}")
            };
            vol.security_descriptor(&p)
                .ok()
                .and_then(|sd| reseal_security::SecurityDescriptor::parse(&sd).ok())
                .and_then(|d| d.owner)
                .map(|sid| reseal_security::sddl::sid_to_sddl(&sid, None))
                .unwrap_or_else(|| "-".into())
        })
        .collect())
}
