//! `reseal_ntfs::browse` against independent oracles: NTFS volumes made by `mkntfs` and
//! populated through an ntfs-3g FUSE mount, and the Windows-made corpus volumes mounted read-only
//! by ntfs-3g. Every file's name, type, size and SHA-256 must agree; ADS contents too.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use reseal_disk::Device;
use reseal_ntfs::browse::{BrowseError, Volume};
use sha2::{Digest, Sha256};

use crate::ntfsw_common;
use ntfsw_common::{corpus, file_dev_ro as file_dev, tools, unmount};

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ntfs-3g FUSE mount, unmounted on drop.
struct Mount(PathBuf);
impl Mount {
    fn new(img: &Path, dir: &Path, opts: &str) -> Mount {
        std::fs::create_dir_all(dir).unwrap();
        run(Command::new("ntfs-3g")
            .arg("-o")
            .arg(opts)
            .arg(img)
            .arg(dir));
        Mount(dir.to_path_buf())
    }
}
impl Drop for Mount {
    fn drop(&mut self) {
        unmount(&self.0);
    }
}

fn sha(mut r: impl Read) -> String {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    format!("{:x}", h.finalize())
}

/// path -> (is_dir, size, sha256 of content or "")
type Tree = BTreeMap<String, (bool, u64, String)>;

fn walk_mount(root: &Path) -> Tree {
    let mut out = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = format!("/{}", p.strip_prefix(root).unwrap().to_string_lossy());
            let md = std::fs::symlink_metadata(&p).unwrap();
            if md.is_dir() {
                out.insert(rel, (true, 0, String::new()));
                stack.push(p);
            } else {
                out.insert(rel, (false, md.len(), sha(File::open(&p).unwrap())));
            }
        }
    }
    out
}

struct HashWriter(Sha256);
impl Write for HashWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.update(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn walk_reseal<D: Device>(v: &mut Volume<D>) -> Tree {
    let mut out = Tree::new();
    for (p, e) in v.walk().unwrap() {
        if e.is_dir {
            out.insert(p, (true, 0, String::new()));
        } else {
            let mut w = HashWriter(Sha256::new());
            let n = v
                .read(&p, &mut w)
                .unwrap_or_else(|err| panic!("{p}: {err}"));
            assert_eq!(n, e.size, "{p}: bytes streamed vs size");
            out.insert(p, (false, e.size, format!("{:x}", w.0.finalize())));
        }
    }
    out
}

fn assert_trees_equal(ours: &Tree, oracle: &Tree, what: &str) {
    let a: Vec<_> = ours.keys().collect();
    let b: Vec<_> = oracle.keys().collect();
    assert_eq!(a, b, "{what}: file names differ");
    for (k, v) in oracle {
        assert_eq!(&ours[k], v, "{what}: {k}");
    }
}

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Build and populate a volume through ntfs-3g; returns the oracle tree.
fn build_volume(dir: &Path, cluster: u32) -> (PathBuf, Tree, Vec<(String, Vec<u8>)>) {
    let img = dir.join(format!("vol{cluster}.img"));
    File::create(&img).unwrap().set_len(96 << 20).unwrap();
    run(Command::new("mkntfs")
        .args(["-F", "-q", "-L", "Reseal Test", "-c", &cluster.to_string()])
        .arg(&img));
    let mnt = dir.join(format!("mnt{cluster}"));
    let mut ads = Vec::new();
    let tree;
    {
        let m = Mount::new(&img, &mnt, "streams_interface=windows");
        let r = &m.0;
        std::fs::create_dir_all(r.join("Dir/Sub/Deeper")).unwrap();
        std::fs::create_dir_all(r.join("Ünïcødé ДИР/日本語")).unwrap();
        std::fs::write(r.join("Dir/Sub/a.txt"), b"hello from reseal\n").unwrap();
        std::fs::write(r.join("Dir/Sub/Deeper/MiXeD.Case.TXT"), b"case").unwrap();
        std::fs::write(
            r.join("Ünïcødé ДИР/日本語/ファイル 😀.bin"),
            pseudo_random(5000, 7),
        )
        .unwrap();
        std::fs::write(r.join("empty"), b"").unwrap();
        std::fs::write(r.join("big.bin"), pseudo_random(3 << 20 | 12345, 42)).unwrap();
        {
            let f = File::create(r.join("sparse.bin")).unwrap();
            f.set_len(6 << 20).unwrap();
            f.write_all_at(b"middle", 3 << 20).unwrap();
            f.write_all_at(b"end", (6 << 20) - 3).unwrap();
        }
        std::fs::create_dir(r.join("many")).unwrap();
        for i in 0..600 {
            std::fs::write(
                r.join(format!("many/file {i:04} with a long name.txt")),
                format!("{i}\n"),
            )
            .unwrap();
        }
        let a1 = b"alternate stream data".to_vec();
        let a2 = pseudo_random(70_000, 9);
        std::fs::write(r.join("Dir/Sub/a.txt:myads"), &a1).unwrap();
        std::fs::write(r.join("big.bin:Zone.Identifier"), &a2).unwrap();
        ads.push(("/Dir/Sub/a.txt:myads".to_string(), a1));
        ads.push(("/big.bin:Zone.Identifier".to_string(), a2));
        // Read back through the mount: the oracle.
        for (p, want) in &ads {
            assert_eq!(
                &std::fs::read(r.join(&p[1..])).unwrap(),
                want,
                "{p} via ntfs-3g"
            );
        }
        tree = walk_mount(r);
    }
    (img, tree, ads)
}

#[test]
fn mkntfs_volumes_agree_with_ntfs3g() {
    if !tools(&["mkntfs", "ntfs-3g"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for cluster in [512u32, 4096] {
        let (img, oracle, ads) = build_volume(tmp.path(), cluster);
        assert!(oracle.len() > 600, "{}", oracle.len());
        let mut v = Volume::open(file_dev(&img)).unwrap();
        assert_eq!(v.cluster_size(), cluster);
        assert_eq!(v.label().unwrap(), "Reseal Test");
        assert_eq!(v.version().unwrap(), (3, 1));
        let ours = walk_reseal(&mut v);
        assert_trees_equal(&ours, &oracle, &format!("mkntfs -c {cluster}"));

        // ADS: listed in the entry and readable as file:stream.
        for (p, want) in &ads {
            let mut got = Vec::new();
            v.read(p, &mut got).unwrap();
            assert_eq!(&got, want, "{p}");
            assert!(v.exists(p).unwrap());
        }
        let e = v.stat("/big.bin").unwrap();
        assert_eq!(e.streams, vec![("Zone.Identifier".to_string(), 70_000)]);
        assert_eq!(e.size, 3 << 20 | 12345);
        assert!(
            e.allocated_size >= e.size && e.allocated_size % u64::from(cluster) == 0,
            "{}",
            e.allocated_size
        );
        assert!(!v.exists("/big.bin:nope").unwrap());

        // Case-insensitive, either separator, optional leading separator.
        let e = v.stat("dir\\SUB\\deeper\\mixed.case.txt").unwrap();
        assert_eq!(e.name, "MiXeD.Case.TXT");
        assert_eq!(e.size, 4);
        assert_eq!(
            v.read_to_vec("/DIR/sub/A.TXT").unwrap(),
            b"hello from reseal\n"
        );
        assert_eq!(
            v.read_to_vec("ünïcødé дир/日本語/ファイル 😀.BIN").unwrap(),
            pseudo_random(5000, 7)
        );

        // Sparse file: holes read as zeros (hash compared above); allocation smaller than size.
        let e = v.stat("/sparse.bin").unwrap();
        assert_eq!(e.size, 6 << 20);
        assert!(
            e.allocated_size < e.size,
            "sparse allocated {}",
            e.allocated_size
        );
        let mut mid = Vec::new();
        v.read_range("/sparse.bin", 3 << 20, 6, &mut mid).unwrap();
        assert_eq!(mid, b"middle");

        // Many files: an index with $INDEX_ALLOCATION.
        let many = v.list("/many").unwrap();
        assert_eq!(many.len(), 600);
        assert!(
            many.iter().all(|e| !e.name.contains('~')),
            "no DOS 8.3 aliases"
        );

        // Errors name the path.
        let err = v.stat("/Dir/nothing/here").unwrap_err();
        assert!(
            matches!(&err, BrowseError::NotFound { path } if path == "/Dir/nothing"),
            "{err}"
        );
        let err = v.list("/big.bin").unwrap_err();
        assert!(matches!(err, BrowseError::NotADirectory { .. }), "{err}");
        let err = v.read("/Dir", &mut Vec::new()).unwrap_err();
        assert!(matches!(err, BrowseError::IsADirectory { .. }), "{err}");
        let err = v.read("/empty:nostream", &mut Vec::new()).unwrap_err();
        assert!(matches!(err, BrowseError::NoStream { .. }), "{err}");
        // Metafiles are hidden from listings but can be opened by name.
        assert!(v
            .list("/")
            .unwrap()
            .iter()
            .all(|e| !e.name.starts_with("$MFT")));
        assert!(v.list_all("/").unwrap().iter().any(|e| e.name == "$MFT"));
        assert!(v.stat("/$LogFile").unwrap().size > 0);

        // Serial and cluster size agree with ntfsinfo.
        let out = Command::new("ntfsinfo")
            .arg("-m")
            .arg(&img)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains(&format!("Cluster Size: {cluster}")), "{text}");
        assert!(text.contains("Volume Name: Reseal Test"));
    }
}

fn decompress(root: &Path, rel: &str, out: &Path) {
    let f = File::open(root.join(rel)).unwrap();
    let mut w = File::create(out).unwrap();
    if rel.ends_with(".bz2") {
        std::io::copy(&mut bzip2::read::BzDecoder::new(f), &mut w).unwrap();
    } else if rel.ends_with(".xz") {
        std::io::copy(&mut xz2::read::XzDecoder::new(f), &mut w).unwrap();
    } else if rel.ends_with(".gz") {
        std::io::copy(&mut flate2::read::GzDecoder::new(f), &mut w).unwrap();
    } else {
        std::io::copy(&mut { f }, &mut w).unwrap();
    }
}

/// Windows-made (and one mkntfs) corpus volumes: reseal's walk + read equals ntfs-3g's
/// read-only mount; ADS in charlie.dd (spread over several MFT records via $ATTRIBUTE_LIST)
/// read equal to ntfs-3g's streams interface.
#[test]
fn corpus_volumes_agree_with_ntfs3g() {
    let Some(root) = corpus() else { return };
    if !tools(&["ntfs-3g"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // (corpus item, byte offset of the volume, label)
    let items = [
        ("go-ntfs/charlie.dd.bz2", 0u64, "Charlie"),
        ("velociraptor/test.ntfs.dd.raw.xz", 0, "Test Volume"),
        ("dfir_ntfs/ntfs_index.raw.gz", 128 * 512, "Test index"),
    ];
    for (rel, off, label) in items {
        let whole = tmp.path().join("whole.img");
        decompress(&root, rel, &whole);
        let img = tmp.path().join("vol.img");
        if off == 0 {
            std::fs::rename(&whole, &img).unwrap();
        } else {
            // ntfs-3g cannot be given an offset: cut the partition out for the oracle.
            let data = std::fs::read(&whole).unwrap();
            std::fs::write(&img, &data[off as usize..]).unwrap();
        }
        let oracle;
        let mut ads_oracle = Vec::new();
        {
            let m = Mount::new(
                &img,
                &tmp.path().join("mnt"),
                "ro,streams_interface=windows",
            );
            oracle = walk_mount(&m.0);
            if rel.contains("charlie") {
                for s in ["111", "222", "333"] {
                    ads_oracle.push((s, std::fs::read(m.0.join(format!("Nine.txt:{s}"))).unwrap()));
                }
            }
        }
        let mut v = Volume::open(file_dev(&img)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        assert_eq!(v.label().unwrap(), label, "{rel}");
        let ours = walk_reseal(&mut v);
        assert_trees_equal(&ours, &oracle, rel);
        for (s, want) in &ads_oracle {
            let got = v.read_to_vec(&format!("/nine.TXT:{s}")).unwrap();
            assert!(&got == want, "{rel} Nine.txt:{s}: content differs");
        }
        if !ads_oracle.is_empty() {
            let e = v.stat("/Nine.txt").unwrap();
            let names: Vec<_> = e.streams.iter().map(|s| s.0.as_str()).collect();
            assert_eq!(names, ["111", "222", "333"], "{rel}");
        }
        std::fs::remove_file(&img).unwrap();
    }
}

#[test]
fn ntfscat_agrees_on_corpus_files() {
    let Some(root) = corpus() else { return };
    if !tools(&["ntfscat"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("t.img");
    decompress(&root, "velociraptor/test.ntfs.dd.raw.xz", &img);
    let mut v = Volume::open(file_dev(&img)).unwrap();
    for p in [
        "/ones.bin",
        "/Folder A/Folder B/Hello world text document.txt",
        "/$Volume",
        "/$Boot",
    ] {
        let out = Command::new("ntfscat").arg(&img).arg(p).output().unwrap();
        assert!(out.status.success(), "ntfscat {p}");
        let ours = v.read_to_vec(p).unwrap();
        assert_eq!(ours.len(), out.stdout.len(), "{p}: length");
        assert!(ours == out.stdout, "{p}: content differs from ntfscat");
    }
}

#[test]
fn hostile_volumes_error_not_panic() {
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("t.img");
    decompress(&root, "ntfs-rs/testfs1", &img);
    let good = std::fs::read(&img).unwrap();
    let mft = {
        let v = Volume::open(reseal_disk::MemDevice::new(good.clone())).unwrap();
        v.boot().mft_lcn * u64::from(v.boot().cluster_size)
    } as usize;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64;
    for round in 0..64 {
        let mut d = good.clone();
        for _ in 0..16 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Corrupt the first 40 MFT records and the boot sector.
            let at = if round % 8 == 0 {
                (rng % 512) as usize
            } else {
                mft + (rng % (40 * 1024)) as usize
            };
            d[at] ^= (rng >> 32) as u8 | 1;
        }
        if let Ok(mut v) = Volume::open(reseal_disk::MemDevice::new(d)) {
            let _ = v.label();
            if let Ok(list) = v.walk() {
                for (p, _) in list.into_iter().take(20) {
                    let _ = v.read(&p, &mut std::io::sink());
                }
            }
        }
    }
    // Truncated device.
    let e = Volume::open(reseal_disk::MemDevice::new(good[..100].to_vec())).unwrap_err();
    assert!(e.to_string().contains("NTFS boot sector"), "{e}");
}

/// Owner SID of a self-relative security descriptor, decoded here from the raw bytes (owner
/// offset at byte 4; SID = revision, sub-authority count, 48-bit big-endian authority,
/// little-endian sub-authorities; MS-DTYP 2.4.2.2 and 2.4.6), so both sides are read alike.
fn owner_sid(sd: &[u8]) -> Option<String> {
    let o = u32::from_le_bytes(sd.get(4..8)?.try_into().ok()?) as usize;
    let n = usize::from(*sd.get(o + 1)?);
    let auth = sd
        .get(o + 2..o + 8)?
        .iter()
        .fold(0u64, |a, b| a << 8 | u64::from(*b));
    let mut s = format!("S-{}-{auth}", sd.get(o)?);
    for i in 0..n {
        let p = o + 8 + 4 * i;
        s.push_str(&format!(
            "-{}",
            u32::from_le_bytes(sd.get(p..p + 4)?.try_into().ok()?)
        ));
    }
    Some(s)
}

fn getfattr(path: &Path, args: &[&str]) -> Vec<u8> {
    let out = Command::new("getfattr")
        .args(args)
        .arg("--")
        .arg(path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "getfattr {args:?} {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// On the Windows-made corpus volumes: every file's named streams (names and bytes) equal what
/// ntfs-3g exposes with `streams_interface=xattr` (`user.NAME`), and every file's owner equals
/// the owner SID of `system.ntfs_acl` on the same mount.
#[test]
fn corpus_streams_and_owners_agree_with_ntfs3g() {
    let Some(root) = corpus() else { return };
    if !tools(&["ntfs-3g", "getfattr"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let items = [
        ("go-ntfs/charlie.dd.bz2", 0u64),
        ("velociraptor/test.ntfs.dd.raw.xz", 0),
        ("dfir_ntfs/ntfs_index.raw.gz", 128 * 512),
    ];
    for (rel, off) in items {
        let whole = tmp.path().join("whole.img");
        decompress(&root, rel, &whole);
        let img = tmp.path().join("vol.img");
        let data = std::fs::read(&whole).unwrap();
        std::fs::write(&img, &data[off as usize..]).unwrap();
        let mut v = Volume::open(file_dev(&img)).unwrap_or_else(|e| panic!("{rel}: {e}"));
        let m = Mount::new(&img, &tmp.path().join("mx"), "ro,streams_interface=xattr");
        let (mut streams, mut owners) = (0, 0);
        for (p, e) in v.walk().unwrap() {
            let host = m.0.join(&p[1..]);
            // Named streams: the list and each one's bytes.
            if !e.is_dir {
                let listed = getfattr(&host, &["-m", "^user\\.", "--absolute-names"]);
                let mut theirs: Vec<String> = String::from_utf8_lossy(&listed)
                    .lines()
                    .filter_map(|l| l.strip_prefix("user.").map(str::to_string))
                    .collect();
                theirs.sort();
                let ours: Vec<String> = e.streams.iter().map(|s| s.0.clone()).collect();
                assert_eq!(ours, theirs, "{rel} {p}: stream names");
                for (name, len) in &e.streams {
                    let want = getfattr(&host, &["--only-values", "-n", &format!("user.{name}")]);
                    let got = v.read_to_vec(&format!("{p}:{name}")).unwrap();
                    assert_eq!(got.len() as u64, *len, "{rel} {p}:{name}: length");
                    assert!(got == want, "{rel} {p}:{name}: bytes differ from ntfs-3g");
                    streams += 1;
                }
            }
            // Owner.
            let acl = getfattr(&host, &["--only-values", "-n", "system.ntfs_acl"]);
            let sd = v.engine().security_descriptor(&p).unwrap();
            assert_eq!(owner_sid(&sd), owner_sid(&acl), "{rel} {p}: owner");
            assert!(owner_sid(&sd).is_some(), "{rel} {p}: no owner");
            owners += 1;
        }
        drop(m);
        assert!(owners > 0, "{rel}");
        if rel.contains("charlie") {
            assert!(streams >= 3, "{rel}: {streams} streams");
        }
        std::fs::remove_file(&img).unwrap();
    }
}

/// The `ntfs` crate (Colin Finck's independent reader, a dev-dependency kept as an oracle):
/// every user directory listing and every uncompressed file's unnamed data of the corpus
/// volumes equal what browse reads.
#[test]
fn corpus_volumes_agree_with_ntfs_crate() {
    use ntfs::structured_values::NtfsFileNamespace;
    use ntfs::{Ntfs, NtfsAttributeFlags, NtfsReadSeek};
    let Some(root) = corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (rel, off) in [
        ("go-ntfs/charlie.dd.bz2", 0u64),
        ("velociraptor/test.ntfs.dd.raw.xz", 0),
        ("dfir_ntfs/ntfs_index.raw.gz", 128 * 512),
    ] {
        let whole = tmp.path().join("whole.img");
        decompress(&root, rel, &whole);
        let img = tmp.path().join("vol.img");
        let data = std::fs::read(&whole).unwrap();
        std::fs::write(&img, &data[off as usize..]).unwrap();
        let mut f = File::open(&img).unwrap();
        let mut n = Ntfs::new(&mut f).unwrap();
        n.read_upcase_table(&mut f).unwrap();
        let mut theirs = Tree::new();
        let mut stack = vec![(String::new(), 5u64)];
        while let Some((dir, rec)) = stack.pop() {
            let file = n.file(&mut f, rec).unwrap();
            let index = file.directory_index(&mut f).unwrap();
            let mut it = index.entries();
            while let Some(ent) = it.next(&mut f) {
                let ent = ent.unwrap();
                let Some(key) = ent.key() else { continue };
                let key = key.unwrap();
                let r = ent.file_reference().file_record_number();
                if key.namespace() == NtfsFileNamespace::Dos || r < 16 {
                    continue;
                }
                let p = format!("{dir}/{}", key.name().to_string_lossy());
                let child = n.file(&mut f, r).unwrap();
                if child.is_directory() {
                    theirs.insert(p.clone(), (true, 0, String::new()));
                    stack.push((p, r));
                    continue;
                }
                let Some(item) = child.data(&mut f, "") else {
                    theirs.insert(p, (false, 0, sha(&[][..])));
                    continue;
                };
                let item = item.unwrap();
                let attr = item.to_attribute().unwrap();
                if attr.flags().contains(NtfsAttributeFlags::COMPRESSED) {
                    // The crate returns compressed data raw: compare the size only.
                    theirs.insert(p, (false, attr.value_length(), "compressed".into()));
                    continue;
                }
                let mut value = attr.value(&mut f).unwrap();
                let mut h = Sha256::new();
                let mut buf = vec![0u8; 1 << 16];
                loop {
                    let k = value.read(&mut f, &mut buf).unwrap();
                    if k == 0 {
                        break;
                    }
                    h.update(&buf[..k]);
                }
                theirs.insert(p, (false, value.len(), format!("{:x}", h.finalize())));
            }
        }
        let mut v = Volume::open(file_dev(&img)).unwrap();
        let mut ours = walk_reseal(&mut v);
        for (k, t) in &theirs {
            if t.2 == "compressed" {
                if let Some(o) = ours.get_mut(k) {
                    o.2 = "compressed".into();
                }
            }
        }
        assert_trees_equal(&ours, &theirs, &format!("{rel} vs the ntfs crate"));
        std::fs::remove_file(&img).unwrap();
    }
}
