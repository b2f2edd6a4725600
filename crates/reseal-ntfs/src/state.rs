//! Is it safe to write to this NTFS volume? The dirty flag, the `$LogFile` restart area, and
//! hibernation, decided the way ntfs-3g decides them (FORMATS.md C.9; ntfs-3g `logfile.c`,
//! `volume.c`), so that reseal refuses exactly where ntfs-3g would.
//!
//! - dirty: `$Volume:$VOLUME_INFORMATION` flag 0x0001;
//! - `$LogFile`: empty (all 0xFF), clean (no client in use, or the restart area's
//!   VOLUME_IS_CLEAN flag), unclean, or written by Windows 8+ in LFS version 2.0 (Fast Startup /
//!   hibernation: metadata still cached in Windows);
//! - hibernated: `\hiberfil.sys` begins with `hibr`/`HIBR` (a file shorter than 4096 bytes is
//!   treated as hibernated too, as ntfs-3g does).

use reseal_disk::Device;

use crate::browse::{BrowseError, Result, Volume};
use crate::layout::log_file::{RestartArea, RestartPageHeader, NO_CLIENT, RESTART_VOLUME_IS_CLEAN};
use zerocopy::FromBytes;

/// Size of the hibernation-file header ntfs-3g reads.
pub const HIBERFILE_HEADER: usize = 4096;

/// What the `$LogFile` restart area says.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogFileState {
    /// A restart area saying no client is in use or VOLUME_IS_CLEAN (LFS 1.1).
    Clean,
    /// Log records may need replaying: Windows did not shut the volume down cleanly.
    Unclean,
    /// The newest restart page is LFS 2.0: Windows 8+ Fast Startup or hibernation (ntfs-3g
    /// refuses such volumes: "metadata kept in Windows cache").
    FastStartup,
    /// The log is empty (all 0xFF, as ntfs-3g and mkntfs leave it): nothing to replay.
    Empty,
    /// The log could not be interpreted; the reason says why.
    Unknown(String),
}

impl LogFileState {
    /// The state as one stable snake_case word (`clean`, `unclean`, `fast_startup`, `empty`,
    /// `unknown`), for reports and JSON; the reason of `Unknown` is not part of it.
    pub fn code(&self) -> &'static str {
        match self {
            LogFileState::Clean => "clean",
            LogFileState::Unclean => "unclean",
            LogFileState::FastStartup => "fast_startup",
            LogFileState::Empty => "empty",
            LogFileState::Unknown(_) => "unknown",
        }
    }
}

/// Why a volume is unsafe to write, as data: what [`VolumeState::refusal`] says in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnsafeState {
    /// `hiberfil.sys` holds a hibernated session (its first four bytes, when there are four).
    Hibernated {
        /// The magic at the start of `hiberfil.sys`.
        magic: Option<[u8; 4]>,
    },
    /// The newest `$LogFile` restart page is LFS 2.0 (Fast Startup or hibernation).
    FastStartup,
    /// `$LogFile` has records to replay.
    Unclean,
    /// `$LogFile` could not be interpreted; the reason says why.
    LogUnreadable(String),
    /// The `$Volume` dirty flag (0x0001) is set.
    Dirty,
}

impl UnsafeState {
    /// The fact alone, without advice (`$LogFile has records to replay`, ...).
    pub fn detail(&self) -> String {
        match self {
            UnsafeState::Hibernated { magic } => {
                format!("hiberfil.sys starts with {}", magic_text(magic))
            }
            UnsafeState::FastStartup => "$LogFile restart page version 2.0".into(),
            UnsafeState::Unclean => "$LogFile has records to replay".into(),
            UnsafeState::LogUnreadable(why) => format!("$LogFile cannot be interpreted: {why}"),
            UnsafeState::Dirty => "$Volume dirty flag 0x0001 is set".into(),
        }
    }
}

/// The first bytes of `hiberfil.sys` as text.
pub fn magic_text(m: &Option<[u8; 4]>) -> String {
    m.map(|m| String::from_utf8_lossy(&m).into_owned())
        .unwrap_or_else(|| "a short header".into())
}

/// The facts about a volume that decide whether reseal may write to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeState {
    /// `$VOLUME_INFORMATION` dirty flag (0x0001).
    pub dirty: bool,
    /// All `$VOLUME_INFORMATION` flags.
    pub volume_flags: u16,
    /// NTFS version (major, minor).
    pub version: (u8, u8),
    /// `$LogFile` restart-area state.
    pub logfile: LogFileState,
    /// LFS version (major, minor) of the restart page used, when one was found.
    pub logfile_version: Option<(i16, i16)>,
    /// `\hiberfil.sys` present and starting with hibr/HIBR (or shorter than its header).
    pub hibernated: bool,
    /// The first four bytes of `\hiberfil.sys`, when it exists.
    pub hiberfil_magic: Option<[u8; 4]>,
}

/// A parsed restart page: (current LSN, major, minor, client in-use list, restart flags).
struct Restart {
    lsn: u64,
    major: i16,
    minor: i16,
    in_use: u16,
    flags: u16,
}

/// Parse the restart page at `off` of `log` (undoing the update-sequence fixups); `Err` says why
/// it is not a usable restart page.
fn restart_page(log: &[u8], off: usize) -> std::result::Result<(Restart, u32), String> {
    let head = log.get(off..off + 512).ok_or("truncated")?;
    let (h, _) = RestartPageHeader::ref_from_prefix(head).map_err(|_| "truncated")?;
    let magic = &h.multi_sector.signature;
    if magic != b"RSTR" && magic != b"CHKD" {
        return Err(format!("magic {magic:02x?} is not RSTR/CHKD"));
    }
    let sys_page = h.system_page_size.get();
    if !sys_page.is_power_of_two() || !(512..=65536).contains(&sys_page) {
        return Err(format!("system page size {sys_page} invalid"));
    }
    let page = log
        .get(off..off + sys_page as usize)
        .ok_or("page truncated")?;
    let mut page = page.to_vec();
    // Update sequence array, stride 512 (FORMATS C.2).
    let usa_ofs = usize::from(h.multi_sector.usa_offset.get());
    let usa_count = usize::from(h.multi_sector.usa_count.get());
    if usa_count != sys_page as usize / 512 + 1 || usa_ofs % 2 != 0 || usa_ofs + 2 * usa_count > 510
    {
        return Err(format!(
            "update sequence array at {usa_ofs} with {usa_count} entries invalid"
        ));
    }
    let usn = [page[usa_ofs], page[usa_ofs + 1]];
    for i in 1..usa_count {
        let end = i * 512 - 2;
        if page[end..end + 2] != usn {
            return Err(format!(
                "torn write: sector {} does not end with the update sequence number",
                i - 1
            ));
        }
        let fix = usa_ofs + 2 * i;
        let (a, b) = (page[fix], page[fix + 1]);
        page[end] = a;
        page[end + 1] = b;
    }
    let ra = usize::from(h.restart_area_offset.get());
    let minor = h.minor_version.get();
    let major = h.major_version.get();
    if !((major == 1 && minor == 1) || (major == 2 && minor == 0)) {
        return Err(format!("LFS version {major}.{minor} is not 1.1 or 2.0"));
    }
    let area = page
        .get(ra..)
        .and_then(|b| RestartArea::ref_from_prefix(b).ok())
        .filter(|_| ra % 8 == 0)
        .ok_or_else(|| format!("restart area offset {ra} invalid"))?
        .0;
    let lsn = area.current_lsn.get();
    let in_use = area.client_in_use_list.get();
    let flags = area.flags.get();
    Ok((
        Restart {
            lsn,
            major,
            minor,
            in_use,
            flags,
        },
        sys_page,
    ))
}

/// Decide the state of a `$LogFile` from its first bytes (at least the two restart pages, e.g.
/// the first 64 KiB). Never panics.
pub fn logfile_state(log: &[u8]) -> (LogFileState, Option<(i16, i16)>) {
    let probe = &log[..log.len().min(8192)];
    if probe.is_empty() {
        return (
            LogFileState::Unknown("$LogFile is empty (0 bytes)".into()),
            None,
        );
    }
    if probe.iter().all(|&b| b == 0xff) {
        return (LogFileState::Empty, None);
    }
    let first = restart_page(log, 0);
    let second_off = match &first {
        Ok((_, sys)) => *sys as usize,
        Err(_) => 4096,
    };
    let second = restart_page(log, second_off);
    let best = match (first, second) {
        (Ok((a, _)), Ok((b, _))) => {
            if b.lsn > a.lsn {
                b
            } else {
                a
            }
        }
        (Ok((a, _)), Err(_)) | (Err(_), Ok((a, _))) => a,
        (Err(e1), Err(e2)) => {
            return (
                LogFileState::Unknown(format!(
                    "no valid restart page (page at 0: {e1}; page at {second_off}: {e2})"
                )),
                None,
            )
        }
    };
    let version = Some((best.major, best.minor));
    if best.major == 2 {
        return (LogFileState::FastStartup, version);
    }
    if best.in_use == NO_CLIENT || best.flags & RESTART_VOLUME_IS_CLEAN != 0 {
        (LogFileState::Clean, version)
    } else {
        (LogFileState::Unclean, version)
    }
}

/// True if a hibernation-file header says Windows is hibernated (ntfs-3g: "hibr"/"HIBR"; a
/// header shorter than 4096 bytes also counts).
pub fn hiberfile_says_hibernated(header: &[u8]) -> bool {
    header.len() < HIBERFILE_HEADER || header.starts_with(b"hibr") || header.starts_with(b"HIBR")
}

impl VolumeState {
    /// Read the state of the NTFS volume on `dev`.
    ///
    /// # Errors
    /// Those of [`Volume::open`] and of reading `$Volume` / `$LogFile`.
    pub fn read<D: Device>(dev: D) -> Result<VolumeState> {
        let mut v = Volume::open(dev)?;
        Self::from_volume(&mut v)
    }

    /// Read the state through an open [`Volume`].
    ///
    /// # Errors
    /// Errors reading `$Volume`, `$LogFile` or `hiberfil.sys`.
    pub fn from_volume<D: Device>(v: &mut Volume<D>) -> Result<VolumeState> {
        let volume_flags = v.volume_flags()?;
        let version = v.version()?;
        let mut log = Vec::new();
        v.read_range("/$LogFile", 0, 64 * 1024, &mut log)?;
        let (logfile, logfile_version) = logfile_state(&log);
        let mut hiberfil_magic = None;
        let mut hibernated = false;
        match v.stat("/hiberfil.sys") {
            Ok(e) if !e.is_dir => {
                let mut head = Vec::new();
                v.read_range("/hiberfil.sys", 0, HIBERFILE_HEADER as u64, &mut head)?;
                if head.len() >= 4 {
                    hiberfil_magic = Some([head[0], head[1], head[2], head[3]]);
                }
                hibernated = hiberfile_says_hibernated(&head);
            }
            Ok(_) | Err(BrowseError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(VolumeState {
            dirty: volume_flags & 0x0001 != 0,
            volume_flags,
            version,
            logfile,
            logfile_version,
            hibernated,
            hiberfil_magic,
        })
    }

    /// True if reseal may write without forcing: not dirty, not hibernated, log clean or empty.
    pub fn is_clean(&self) -> bool {
        self.refusal().is_none()
    }

    /// Why this volume is unsafe to write (None if it may be written), as data. Hibernation
    /// comes first, then the `$LogFile` state, then the dirty flag.
    pub fn unsafe_state(&self) -> Option<UnsafeState> {
        if self.hibernated {
            return Some(UnsafeState::Hibernated {
                magic: self.hiberfil_magic,
            });
        }
        match &self.logfile {
            LogFileState::FastStartup => return Some(UnsafeState::FastStartup),
            LogFileState::Unclean => return Some(UnsafeState::Unclean),
            LogFileState::Unknown(why) => return Some(UnsafeState::LogUnreadable(why.clone())),
            LogFileState::Clean | LogFileState::Empty => {}
        }
        self.dirty.then_some(UnsafeState::Dirty)
    }

    /// Why reseal refuses to write to this volume (None if it may), as a message for the user.
    pub fn refusal(&self) -> Option<String> {
        Some(match self.unsafe_state()? {
            UnsafeState::Hibernated { magic } => format!(
                "volume is hibernated (hiberfil.sys starts with {}): boot Windows and shut it down fully \
                 (shutdown /s /t 0, or disable Fast Startup), or use --force to write anyway and lose the \
                 hibernated session",
                magic_text(&magic)
            ),
            UnsafeState::FastStartup => {
                "volume was left by Windows Fast Startup or hibernation ($LogFile restart page version \
                 2.0: metadata is still cached in Windows): boot Windows and shut it down fully \
                 (shutdown /s /t 0), or use --force"
                    .into()
            }
            UnsafeState::Unclean => {
                "volume was not shut down cleanly ($LogFile has records to replay): boot Windows (or run \
                 chkdsk) and shut down cleanly, or use --force"
                    .into()
            }
            UnsafeState::LogUnreadable(why) => {
                format!("$LogFile cannot be interpreted ({why}): run chkdsk in Windows, or use --force")
            }
            UnsafeState::Dirty => {
                "volume is marked dirty ($Volume flag 0x0001; Windows will run chkdsk): run chkdsk /f in \
                 Windows first, or use --force"
                    .into()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(major: i16, minor: i16, in_use: u16, flags: u16, lsn: u64) -> Vec<u8> {
        let mut p = vec![0u8; 4096];
        p[..4].copy_from_slice(b"RSTR");
        p[4..6].copy_from_slice(&30u16.to_le_bytes());
        p[6..8].copy_from_slice(&9u16.to_le_bytes());
        p[16..20].copy_from_slice(&4096u32.to_le_bytes());
        p[20..24].copy_from_slice(&4096u32.to_le_bytes());
        p[24..26].copy_from_slice(&48u16.to_le_bytes());
        p[26..28].copy_from_slice(&minor.to_le_bytes());
        p[28..30].copy_from_slice(&major.to_le_bytes());
        p[48..56].copy_from_slice(&lsn.to_le_bytes());
        p[60..62].copy_from_slice(&in_use.to_le_bytes());
        p[62..64].copy_from_slice(&flags.to_le_bytes());
        // USN 1 at the end of every sector.
        p[30..32].copy_from_slice(&1u16.to_le_bytes());
        for i in 1..9 {
            p[i * 512 - 2..i * 512].copy_from_slice(&1u16.to_le_bytes());
        }
        p
    }

    #[test]
    fn decisions() {
        let both = |a: Vec<u8>, b: Vec<u8>| [a, b].concat();
        assert_eq!(
            logfile_state(&both(page(1, 1, 0xffff, 0, 5), page(1, 1, 0xffff, 0, 4))).0,
            LogFileState::Clean
        );
        assert_eq!(
            logfile_state(&both(page(1, 1, 0, 2, 5), page(1, 1, 0, 0, 4))).0,
            LogFileState::Clean
        );
        assert_eq!(
            logfile_state(&both(page(1, 1, 0, 2, 5), page(1, 1, 0, 0, 6))).0,
            LogFileState::Unclean
        );
        assert_eq!(
            logfile_state(&both(page(2, 0, 0, 2, 5), page(1, 1, 0, 2, 4))).0,
            LogFileState::FastStartup
        );
        assert_eq!(logfile_state(&[0xff; 65536]).0, LogFileState::Empty);
        let mut torn = page(1, 1, 0, 2, 5);
        torn[1022] = 7;
        assert!(matches!(
            logfile_state(&both(torn.clone(), torn)).0,
            LogFileState::Unknown(_)
        ));
        assert!(matches!(
            logfile_state(&[0u8; 100]).0,
            LogFileState::Unknown(_)
        ));
    }

    #[test]
    fn hiberfile() {
        let mut h = vec![0u8; 4096];
        assert!(!hiberfile_says_hibernated(&h));
        h[..4].copy_from_slice(b"HIBR");
        assert!(hiberfile_says_hibernated(&h));
        h[..4].copy_from_slice(b"hibr");
        assert!(hiberfile_says_hibernated(&h));
        assert!(hiberfile_says_hibernated(&[0u8; 10]));
    }
}
