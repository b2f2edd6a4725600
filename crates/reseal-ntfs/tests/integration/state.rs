//! Volume-state detection (dirty, $LogFile, hibernation) checked against ntfs-3g itself: volumes
//! made by mkntfs and then made dirty (ntfsfix), hibernated (hiberfil.sys "HIBR" written through
//! an ntfs-3g mount), or given a real Windows restart area (from the corpus $LogFile extracts)
//! that is clean, unclean or LFS 2.0. ntfs-3g's own verdict (mount messages, ntfsinfo refusal)
//! must agree with ours.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::Command;

use reseal_ntfs::state::{logfile_state, LogFileState, VolumeState};

use crate::ntfsw_common;
use ntfsw_common::{corpus, file_dev_ro as file_dev, unmount};

/// The tools the state tests compare with.
fn tools() -> bool {
    ntfsw_common::tools(&["mkntfs", "ntfs-3g", "ntfsfix", "ntfsinfo", "fusermount"])
}

/// ntfs-3g's verdict on a volume: mount a throw-away copy read-write and classify its messages.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Fine,
    Hibernated,
    FastStartup,
    Unclean,
}

fn ntfs3g_verdict(img: &Path, dir: &Path) -> Verdict {
    let copy = dir.join("verdict.img");
    std::fs::copy(img, &copy).unwrap();
    let mnt = dir.join("verdict-mnt");
    std::fs::create_dir_all(&mnt).unwrap();
    let out = Command::new("ntfs-3g")
        .arg(&copy)
        .arg(&mnt)
        .output()
        .unwrap();
    assert!(unmount(&mnt), "unmount {}", mnt.display());
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    std::fs::remove_file(&copy).unwrap();
    if err.contains("Windows is hibernated") {
        Verdict::Hibernated
    } else if err.contains("Metadata kept in Windows cache") {
        Verdict::FastStartup
    } else if err.contains("unclean file system") {
        Verdict::Unclean
    } else {
        assert!(out.status.success(), "ntfs-3g failed: {err}");
        assert!(!err.contains("read-only"), "{err}");
        Verdict::Fine
    }
}

fn ours(st: &VolumeState) -> Verdict {
    if st.hibernated {
        Verdict::Hibernated
    } else if st.logfile == LogFileState::FastStartup {
        Verdict::FastStartup
    } else if st.logfile == LogFileState::Unclean {
        Verdict::Unclean
    } else {
        Verdict::Fine
    }
}

/// Does libntfs (ntfsinfo) refuse the volume as "scheduled for check" (dirty)?
fn ntfsinfo_says_dirty(img: &Path) -> bool {
    let out = Command::new("ntfsinfo")
        .arg("-m")
        .arg(img)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stderr).contains("scheduled for check")
}

/// Byte offset of $LogFile's data, from ntfsinfo's run list of inode 2.
fn logfile_offset(img: &Path, cluster: u64) -> u64 {
    let out = Command::new("ntfsinfo")
        .args(["-i", "2", "-v"])
        .arg(img)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let mut lines = text.lines().skip_while(|l| !l.contains("Runlist:"));
    lines.next();
    let run = lines.next().expect("run list");
    let lcn = run.split_whitespace().nth(1).unwrap();
    u64::from_str_radix(lcn.trim_start_matches("0x"), 16).unwrap() * cluster
}

fn corpus_log(root: &Path, name: &str) -> Vec<u8> {
    let mut v = Vec::new();
    File::open(root.join("dfir_ntfs").join(name))
        .unwrap()
        .read_to_end(&mut v)
        .unwrap();
    v
}

#[test]
fn corpus_logfiles() {
    let Some(root) = corpus() else { return };
    // Windows 7: LFS 1.1, restart area flags VOLUME_IS_CLEAN.
    assert_eq!(
        logfile_state(&corpus_log(&root, "LogFile_7.bin")),
        (LogFileState::Clean, Some((1, 1)))
    );
    // Windows 10: LFS 2.0 on both restart pages (newest LSN 8413528 on page 0).
    assert_eq!(
        logfile_state(&corpus_log(&root, "LogFile_10.bin")),
        (LogFileState::FastStartup, Some((2, 0)))
    );
    assert_eq!(
        logfile_state(&corpus_log(&root, "LogFile_empty.bin")),
        (LogFileState::Empty, None)
    );
    // Truncations and corruptions of a real log never panic and never claim "clean".
    let l7 = corpus_log(&root, "LogFile_7.bin");
    for cut in [0usize, 1, 30, 511, 4095, 4096, 5000] {
        let st = logfile_state(&l7[..cut]).0;
        assert!(
            matches!(st, LogFileState::Unknown(_)) || cut >= 4096,
            "{cut}: {st:?}"
        );
    }
    let mut torn = l7.clone();
    torn[510] ^= 0xff;
    torn[4096 + 510] ^= 0xff;
    assert!(matches!(logfile_state(&torn).0, LogFileState::Unknown(_)));
}

#[test]
fn crafted_states_agree_with_ntfs3g() {
    let Some(root) = corpus() else { return };
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let base = dir.join("base.img");
    File::create(&base).unwrap().set_len(64 << 20).unwrap();
    let st = Command::new("mkntfs")
        .args(["-F", "-q", "-L", "state"])
        .arg(&base)
        .output()
        .unwrap();
    assert!(st.status.success());
    let log_at = logfile_offset(&base, 4096);

    // Fresh mkntfs volume: empty log, clean.
    let s = VolumeState::read(file_dev(&base)).unwrap();
    assert_eq!(s.logfile, LogFileState::Empty);
    assert!(!s.dirty && !s.hibernated && s.refusal().is_none(), "{s:?}");
    assert_eq!(s.version, (3, 1));
    assert_eq!(ntfs3g_verdict(&base, dir), Verdict::Fine);

    // Hibernated: hiberfil.sys written through ntfs-3g.
    let hib = dir.join("hib.img");
    std::fs::copy(&base, &hib).unwrap();
    let mnt = dir.join("m");
    std::fs::create_dir_all(&mnt).unwrap();
    assert!(Command::new("ntfs-3g")
        .arg(&hib)
        .arg(&mnt)
        .status()
        .unwrap()
        .success());
    let mut h = b"HIBR".to_vec();
    h.resize(16384, 0);
    std::fs::write(mnt.join("hiberfil.sys"), &h).unwrap();
    assert!(unmount(&mnt));
    let s = VolumeState::read(file_dev(&hib)).unwrap();
    assert!(s.hibernated && s.hiberfil_magic == Some(*b"HIBR"), "{s:?}");
    assert!(s
        .refusal()
        .unwrap()
        .contains("hibernated (hiberfil.sys starts with HIBR)"));
    assert_eq!(ntfs3g_verdict(&hib, dir), Verdict::Hibernated);
    // A zeroed header (Windows 8+ after a normal boot) is not hibernated.
    let zeroed = dir.join("zeroed.img");
    std::fs::copy(&base, &zeroed).unwrap();
    assert!(Command::new("ntfs-3g")
        .arg(&zeroed)
        .arg(&mnt)
        .status()
        .unwrap()
        .success());
    std::fs::write(mnt.join("hiberfil.sys"), vec![0u8; 16384]).unwrap();
    assert!(unmount(&mnt));
    let s = VolumeState::read(file_dev(&zeroed)).unwrap();
    assert!(!s.hibernated && s.refusal().is_none(), "{s:?}");
    assert_eq!(ntfs3g_verdict(&zeroed, dir), Verdict::Fine);

    // Dirty: ntfsfix marks the volume for chkdsk; libntfs then refuses it ("scheduled for check").
    let dirty = dir.join("dirty.img");
    std::fs::copy(&base, &dirty).unwrap();
    assert!(Command::new("ntfsfix")
        .arg(&dirty)
        .output()
        .unwrap()
        .status
        .success());
    let s = VolumeState::read(file_dev(&dirty)).unwrap();
    assert!(s.dirty && s.volume_flags & 1 == 1, "{s:?}");
    assert!(s.refusal().unwrap().contains("dirty"));
    assert!(ntfsinfo_says_dirty(&dirty));
    assert!(!ntfsinfo_says_dirty(&base));

    // Real Windows 7 restart area placed in the volume's $LogFile: clean / LFS 2.0 / unclean.
    let l7 = corpus_log(&root, "LogFile_7.bin")[..8192].to_vec();
    #[allow(clippy::type_complexity)]
    let variants: [(&str, Option<(i16, i16)>, Option<u16>, LogFileState, Verdict); 3] = [
        ("log-clean", None, None, LogFileState::Clean, Verdict::Fine),
        (
            "log-v2",
            Some((2, 0)),
            None,
            LogFileState::FastStartup,
            Verdict::FastStartup,
        ),
        (
            "log-unclean",
            None,
            Some(0),
            LogFileState::Unclean,
            Verdict::Unclean,
        ),
    ];
    for (name, version, flags, want, verdict) in variants {
        let img = dir.join(format!("{name}.img"));
        std::fs::copy(&base, &img).unwrap();
        let mut log = l7.clone();
        for page in [0usize, 4096] {
            if let Some((major, minor)) = version {
                log[page + 26..page + 28].copy_from_slice(&minor.to_le_bytes());
                log[page + 28..page + 30].copy_from_slice(&major.to_le_bytes());
            }
            if let Some(f) = flags {
                log[page + 48 + 14..page + 48 + 16].copy_from_slice(&f.to_le_bytes());
            }
        }
        std::fs::OpenOptions::new()
            .write(true)
            .open(&img)
            .unwrap()
            .write_all_at(&log, log_at)
            .unwrap();
        let s = VolumeState::read(file_dev(&img)).unwrap();
        assert_eq!(s.logfile, want, "{name}");
        assert_eq!(ours(&s), verdict, "{name}");
        assert_eq!(s.refusal().is_some(), want != LogFileState::Clean, "{name}");
        assert_eq!(
            ntfs3g_verdict(&img, dir),
            verdict,
            "{name}: ntfs-3g disagrees"
        );
    }
}

/// The Windows-made corpus volumes: our verdict equals ntfs-3g's.
#[test]
fn corpus_volumes_state_agrees_with_ntfs3g() {
    let Some(root) = corpus() else { return };
    if !tools() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for (rel, off) in [
        ("go-ntfs/charlie.dd.bz2", 0usize),
        ("velociraptor/test.ntfs.dd.raw.xz", 0),
        ("dfir_ntfs/ntfs_index.raw.gz", 128 * 512),
    ] {
        let f = File::open(root.join(rel)).unwrap();
        let mut data = Vec::new();
        if rel.ends_with(".bz2") {
            bzip2::read::BzDecoder::new(f)
                .read_to_end(&mut data)
                .unwrap();
        } else if rel.ends_with(".xz") {
            xz2::read::XzDecoder::new(f).read_to_end(&mut data).unwrap();
        } else {
            flate2::read::GzDecoder::new(f)
                .read_to_end(&mut data)
                .unwrap();
        }
        let img = tmp.path().join("vol.img");
        std::fs::write(&img, &data[off..]).unwrap();
        let s = VolumeState::read(file_dev(&img)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(ours(&s), ntfs3g_verdict(&img, tmp.path()), "{rel}: {s:?}");
        assert_eq!(s.dirty, ntfsinfo_says_dirty(&img), "{rel}: dirty flag");
    }
}

mod hostile {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Random restart pages (magic forced, version and sizes sometimes valid) never panic and
        /// are never called clean unless they parse as a clean LFS 1.1 restart area.
        #[test]
        fn random_logfiles_never_panic(mut v in proptest::collection::vec(any::<u8>(), 0..12000), major in 0i16..3, sys in prop_oneof![Just(4096u32), any::<u32>()]) {
            if v.len() >= 32 {
                v[..4].copy_from_slice(b"RSTR");
                v[16..20].copy_from_slice(&sys.to_le_bytes());
                v[28..30].copy_from_slice(&major.to_le_bytes());
            }
            let (st, ver) = logfile_state(&v);
            if st == LogFileState::Clean {
                prop_assert_eq!(ver, Some((1, 1)));
            }
        }
    }
}
