//! Image locks: shared for readers, exclusive for writers, compatible with qemu's image locking.
//!
//! qemu (since 2.10) locks images with open-file-description (OFD) byte-range locks, always
//! `F_RDLCK`, on single bytes of the image file: byte `100 + p` while it *uses* permission `p`,
//! byte `200 + p` while it *refuses to share* `p` with others. Before using `p` it checks that no
//! one else holds `200 + p`; before refusing to share `p` it checks that no one else holds
//! `100 + p`. The permission bits are 0 consistent read, 1 write, 2 write-unchanged, 3 resize.
//! Seen on this machine with qemu 10: `qemu-io` with a read-write image holds bytes 100–101 and
//! shares everything, `qemu-io -r` holds byte 100, and `qemu-img info` refuses an image whose
//! byte 101 is held ("Failed to get shared "write" lock").
//!
//! reseal takes the same locks, so reseal and qemu (a VM, `qemu-io`, `qemu-img`) see each other:
//!
//! | reseal open            | uses (holds 100+p) | refuses to share (holds 200+p) |
//! |------------------------|--------------------|--------------------------------|
//! | [`LockKind::Shared`]   | read               | write, resize                  |
//! | [`LockKind::Exclusive`]| read, write, resize| read, write, resize            |
//!
//! so any number of readers (read-only commands, `--dry-run`) share an image, a writer excludes
//! every reader and writer, and a VM or `qemu-io` writing the image excludes reseal (and reseal
//! writing excludes them). The journal directory beside the image, when it exists, is also
//! `flock`ed (shared or exclusive), so tools that only know `flock(1)` see the same rule.
//!
//! Locks are taken first, then checked (as qemu does), so of two processes racing at least one
//! sees the other; the loser releases, waits and retries until the timeout. OFD locks belong to
//! the open file description: they are released when the [`ImageLock`] is dropped, and two opens
//! of one image in the same process exclude each other like two processes would.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// How an image is locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// Readers: many at once, no writer.
    Shared,
    /// A writer: no one else.
    Exclusive,
}

/// Default time a writer or reader waits for a lock held by someone else.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

const PERM_BASE: i64 = 100;
const SHARED_BASE: i64 = 200;
const READ: i64 = 0;
const WRITE: i64 = 1;
const RESIZE: i64 = 3;

impl LockKind {
    /// Permission bits used.
    fn uses(self) -> &'static [i64] {
        match self {
            LockKind::Shared => &[READ],
            LockKind::Exclusive => &[READ, WRITE, RESIZE],
        }
    }
    /// Permission bits not shared with others.
    fn refuses(self) -> &'static [i64] {
        match self {
            LockKind::Shared => &[WRITE, RESIZE],
            LockKind::Exclusive => &[READ, WRITE, RESIZE],
        }
    }
}

fn perm_name(p: i64) -> &'static str {
    match p {
        READ => "consistent read",
        WRITE => "write",
        RESIZE => "resize",
        _ => "unknown",
    }
}

/// A held image lock; released on drop.
#[derive(Debug)]
pub struct ImageLock {
    _file: File,
    _journal_dir: Option<File>,
    kind: LockKind,
}

impl ImageLock {
    /// The kind of lock held.
    pub fn kind(&self) -> LockKind {
        self.kind
    }

    /// Lock `path` (and its journal directory when it exists), waiting up to `timeout` for
    /// others to release it.
    ///
    /// # Errors
    /// [`Error::Locked`] after the timeout, naming the conflicting permission and the processes
    /// that have the image open; I/O errors opening the file.
    pub fn acquire(path: &Path, kind: LockKind, timeout: Duration) -> Result<ImageLock> {
        let deadline = Instant::now() + timeout;
        let mut pause = Duration::from_millis(20);
        loop {
            match try_acquire(path, kind)? {
                Ok(lock) => return Ok(lock),
                Err(conflict) if Instant::now() >= deadline => {
                    return Err(locked(path, &conflict, timeout))
                }
                Err(_) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(200));
                }
            }
        }
    }
}

/// One try: `Err(why)` is a conflict with someone else (nothing of ours stays locked).
type Attempt<T> = std::result::Result<T, String>;

fn try_acquire(path: &Path, kind: LockKind) -> Result<Attempt<ImageLock>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    if let Err(conflict) = try_lock(&file, path, kind)? {
        return Ok(Err(conflict));
    }
    Ok(lock_journal_dir(path, kind)?.map(|journal_dir| ImageLock {
        _file: file,
        _journal_dir: journal_dir,
        kind,
    }))
}

fn locked(path: &Path, conflict: &str, timeout: Duration) -> Error {
    Error::Locked {
        path: path.to_path_buf(),
        reason: conflict.to_string(),
        holders: holders(path),
        waited: timeout,
    }
}

fn flock_struct(byte: i64, ty: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: ty as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: byte,
        l_len: 1,
        l_pid: 0,
    }
}

/// Take our bytes, then check theirs. On a conflict our bytes are released with the file by the
/// caller.
fn try_lock(file: &File, path: &Path, kind: LockKind) -> Result<Attempt<()>> {
    use nix::fcntl::{fcntl, FcntlArg};
    let io = |e: nix::errno::Errno| Error::io(path, std::io::Error::from(e));
    let ours = kind
        .uses()
        .iter()
        .map(|p| PERM_BASE + p)
        .chain(kind.refuses().iter().map(|p| SHARED_BASE + p));
    for byte in ours {
        let fl = flock_struct(byte, libc::F_RDLCK);
        match fcntl(file, FcntlArg::F_OFD_SETLK(&fl)) {
            Ok(_) => {}
            // A conflicting write lock on the byte (not qemu's convention, but someone's).
            Err(nix::errno::Errno::EAGAIN) | Err(nix::errno::Errno::EACCES) => {
                return Ok(Err(format!("byte {byte} of the image is write-locked")));
            }
            // File systems without OFD locks (some FUSE and network file systems): no locking.
            Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOLCK) => return Ok(Ok(())),
            Err(e) => return Err(io(e)),
        }
    }
    let held = |byte: i64| -> Result<bool> {
        let mut fl = flock_struct(byte, libc::F_WRLCK);
        fcntl(file, FcntlArg::F_OFD_GETLK(&mut fl)).map_err(io)?;
        Ok(fl.l_type != libc::F_UNLCK as libc::c_short)
    };
    for p in kind.uses() {
        if held(SHARED_BASE + p)? {
            return Ok(Err(format!(
                "another process does not share the \"{}\" permission",
                perm_name(*p)
            )));
        }
    }
    for p in kind.refuses() {
        if held(PERM_BASE + p)? {
            return Ok(Err(format!(
                "another process has the image open with the \"{}\" permission",
                perm_name(*p)
            )));
        }
    }
    Ok(Ok(()))
}

/// `flock` the journal directory if it exists.
fn lock_journal_dir(image: &Path, kind: LockKind) -> Result<Attempt<Option<File>>> {
    use rustix::fs::{flock, FlockOperation};
    let dir = crate::journal::journal_dir(image);
    let f = match File::open(&dir) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Ok(None)),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let op = match kind {
        LockKind::Shared => FlockOperation::NonBlockingLockShared,
        LockKind::Exclusive => FlockOperation::NonBlockingLockExclusive,
    };
    match flock(&f, op) {
        Ok(()) => Ok(Ok(Some(f))),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(Err(
            "the journal directory is locked by another reseal".into(),
        )),
        // No flock on this file system: the image's byte locks still apply.
        Err(_) => Ok(Ok(None)),
    }
}

/// Other processes that have `path` open, as "name (pid N)", best effort from `/proc`.
pub fn holders(path: &Path) -> Vec<String> {
    let Ok(meta) = std::fs::metadata(path) else {
        return Vec::new();
    };
    let (dev, ino) = (meta.dev(), meta.ino());
    let me = std::process::id();
    let mut out = Vec::new();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        let open = fds
            .flatten()
            .any(|fd| std::fs::metadata(fd.path()).is_ok_and(|m| m.dev() == dev && m.ino() == ino));
        if open {
            let name = std::fs::read_to_string(p.path().join("comm"))
                .map(|s| s.trim().to_string())
                .unwrap_or_else(|_| "?".into());
            out.push(format!("{name} (pid {pid})"));
        }
    }
    out
}

/// "; open in a (pid 1), b (pid 2)" for messages, or nothing.
pub fn describe_holders(h: &[String]) -> String {
    if h.is_empty() {
        String::new()
    } else {
        format!("; open in {}", h.join(", "))
    }
}
