//! `restore-points` on a real Windows-made volume with Volume Shadow Copies (corpus
//! `plaso/vsstest.qcow2`: two stores), into which the Windows-like fixture tree is copied with
//! an ntfs-3g mount so that `generalize` finds an install. libvshadow's `vshadowinfo` is the
//! oracle: two stores before, none after; the catalog and store files are gone, the volume's
//! own files are unchanged, `ntfsfix -n` finds nothing to fix; with `-restore-points` the
//! shadow copies stay byte-identical.

use reseal_disk::{Access, Image};
use reseal_tests::windows::WindowsSpec;
use reseal_tests::{corpus_file, populate, require_tool, run, sha256_hex, NtfsMount};
use reseal_windows::generalize::{generalize, Change, Operations, Options};
use std::path::{Path, PathBuf};
use std::process::Command;

const CATALOG: &str = "{3808876b-c176-4e48-b7ae-04046e6cc752}";

/// The VSS volume as a raw file in `dir`, with the fixture's Windows tree added.
fn volume(dir: &Path) -> PathBuf {
    for t in [
        "qemu-img",
        "ntfs-3g",
        "vshadowinfo",
        "ntfsls",
        "ntfscat",
        "ntfsfix",
    ] {
        require_tool(t);
    }
    let q = corpus_file("plaso/vsstest.qcow2", dir).unwrap();
    let raw = dir.join("vss.raw");
    run(Command::new("qemu-img")
        .args(["convert", "-f", "qcow2", "-O", "raw"])
        .arg(&q)
        .arg(&raw))
    .unwrap();
    let mount = NtfsMount::new(&raw, "streams_interface=windows").unwrap();
    populate(mount.path(), &WindowsSpec::default().entries().unwrap()).unwrap();
    mount.unmount().unwrap();
    raw
}

fn stores(raw: &Path) -> usize {
    let out = run(Command::new("vshadowinfo").arg(raw)).unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    let line = out
        .lines()
        .find(|l| l.contains("Number of stores:"))
        .unwrap_or_else(|| panic!("vshadowinfo said: {out}"));
    line.rsplit(|c: char| c.is_whitespace())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn svi(raw: &Path) -> Vec<String> {
    let out = run(Command::new("ntfsls")
        .arg("-f")
        .arg(raw)
        .args(["-p", "/System Volume Information"]))
    .unwrap();
    let out = String::from_utf8_lossy(&out.stdout).into_owned();
    out.lines()
        .map(str::to_string)
        .filter(|l| l.contains(CATALOG))
        .collect()
}

fn file_hash(raw: &Path, path: &str) -> String {
    let out = Command::new("ntfscat")
        .arg("-f")
        .arg(raw)
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "ntfscat {path}");
    sha256_hex(&out.stdout)
}

fn generalize_with(raw: &Path, ops: &str) -> reseal_windows::generalize::Report {
    let mut o = Options::default();
    o.operations = Operations::parse(ops).unwrap();
    let mut img = Image::open(raw, Access::ReadWrite).unwrap();
    let r = generalize(&mut img, &o).unwrap();
    img.commit().unwrap();
    r
}

#[test]
fn restore_points_are_removed_and_the_rest_stays() {
    let dir = tempfile::tempdir().unwrap();
    let raw = volume(dir.path());
    assert_eq!(stores(&raw), 2, "the corpus volume has two shadow copies");
    assert_eq!(svi(&raw).len(), 3, "catalog + two store files");
    let own = ["/another_file", "/password.txt", "/syslog.gz"];
    let before: Vec<String> = own.iter().map(|p| file_hash(&raw, p)).collect();

    let rep = generalize_with(&raw, "restore-points");
    let deleted: Vec<&String> = rep
        .changes
        .iter()
        .filter_map(|c| match c {
            Change::FileDeleted { path, .. } => Some(path),
            _ => None,
        })
        .collect();
    assert_eq!(deleted.len(), 3, "{deleted:?}");
    assert!(rep.changes.iter().any(|c| matches!(
        c,
        Change::ShadowCopiesCleared {
            old_catalog_offset, ..
        } if *old_catalog_offset != 0
    )));

    assert_eq!(stores(&raw), 0, "vshadowinfo sees no shadow copy");
    assert!(svi(&raw).is_empty(), "{:?}", svi(&raw));
    let after: Vec<String> = own.iter().map(|p| file_hash(&raw, p)).collect();
    assert_eq!(before, after, "the volume's own files are unchanged");
    let fix = Command::new("ntfsfix")
        .arg("-n")
        .arg(&raw)
        .output()
        .unwrap();
    assert!(
        fix.status.success(),
        "ntfsfix -n: {}",
        String::from_utf8_lossy(&fix.stdout)
    );
    // A second run has nothing to do.
    let again = generalize_with(&raw, "restore-points");
    assert!(
        again.changes.iter().all(|c| c.operation().is_none()),
        "{:?}",
        again.changes
    );
}

#[test]
fn dropping_restore_points_keeps_the_shadow_copies() {
    let dir = tempfile::tempdir().unwrap();
    let raw = volume(dir.path());
    let header = |raw: &Path| {
        let b = std::fs::read(raw).unwrap();
        b[0x1E00..0x1E80].to_vec()
    };
    let h = header(&raw);
    let files: Vec<String> = svi(&raw)
        .iter()
        .map(|n| file_hash(&raw, &format!("/System Volume Information/{n}")))
        .collect();
    // Without machine-sid too: the ntfs-3g copy of the fixture tree moved `$Secure`'s `$SII`
    // root into an extension record, which the engine's descriptor rewrite does not edit
    // (refused as unsupported, nothing written).
    let rep = generalize_with(&raw, "-restore-points,-machine-sid,-swap-files");
    assert!(rep
        .operations
        .iter()
        .any(|s| s.name.name() == "restore-points" && !s.enabled && s.changes == 0));
    assert_eq!(stores(&raw), 2);
    assert_eq!(header(&raw), h, "VSS header byte-identical");
    let after: Vec<String> = svi(&raw)
        .iter()
        .map(|n| file_hash(&raw, &format!("/System Volume Information/{n}")))
        .collect();
    assert_eq!(files, after, "store files byte-identical");
}
