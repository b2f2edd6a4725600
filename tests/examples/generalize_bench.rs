//! Driver for `cargo xtask bench generalize`: builds the large fixture and measures the
//! read-once baseline.
//!
//! - `generalize_bench build OUT FILES DESCRIPTORS SOFTWARE_KEYS NTUSER_KEYS NTFS_MIB
//!   [COMPONENTS_KEYS]`: a bare NTFS volume (no partition table, so ntfs-3g's tools open the
//!   same file) holding a Windows fixture with [`BulkSpec`] content (and a COMPONENTS hive when
//!   COMPONENTS_KEYS is given and not 0); the hive paths (volume-relative) go to `OUT.hives`,
//!   one per line.
//! - `generalize_bench data IMAGE COUNT MIB`: add COUNT files of MIB MiB each under `Data/`
//!   whose clusters are allocated in NTFS (non-resident runs, `$Bitmap`) by `ntfsfallocate`,
//!   which writes none of those bytes: they stay holes of the sparse image file, so file data
//!   costs no host disk.
//! - `generalize_bench hive OUT SOFTWARE_KEYS`: only the SOFTWARE hive of such a fixture.
//! - `generalize_bench read IMAGE RANGES`: read every `offset length` range listed in RANGES
//!   (merged, in offset order) once, as the floor any tool touching those bytes pays.

use reseal_disk::partition::Slice;
use reseal_disk::{Access, Device, Image};
use reseal_tests::windows::{BulkSpec, UserSpec, WindowsSpec};
use std::io::Write;
use std::os::unix::fs::FileExt;

/// The fixture: the default Windows spec with eight profiles (as a shared workstation has), the
/// bare volume as the image, and the bulk content.
fn spec(
    files: usize,
    descriptors: usize,
    software_keys: usize,
    ntuser_keys: usize,
    components_keys: usize,
) -> WindowsSpec {
    let mut users = WindowsSpec::default().users;
    for (i, name) in ["carol", "dave", "erin", "frank", "grace", "heidi"]
        .iter()
        .enumerate()
    {
        users.push(UserSpec {
            name: (*name).into(),
            rid: 1003 + i as u32,
            ..UserSpec::default()
        });
    }
    WindowsSpec {
        users,
        label: "none".into(),
        bulk: Some(BulkSpec {
            files,
            descriptors,
            software_keys,
            ntuser_keys,
            components_keys,
        }),
        ..WindowsSpec::default()
    }
}

fn num(a: &str) -> usize {
    a.parse().expect("a number")
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("build") => {
            let out = std::path::Path::new(&args[1]);
            let components = args.get(7).map_or(0, |a| num(a));
            let mut s = spec(
                num(&args[2]),
                num(&args[3]),
                num(&args[4]),
                num(&args[5]),
                components,
            );
            s.ntfs_mib = num(&args[6]) as u64;
            s.build(out)?;
            let mut hives: Vec<String> = reseal_windows::HIVE_NAMES
                .iter()
                .map(|h| format!("Windows/System32/config/{h}"))
                .collect();
            if components > 0 {
                hives.push("Windows/System32/config/COMPONENTS".into());
            }
            for u in s.users.iter().filter(|u| u.profile) {
                hives.push(format!("Users/{}/NTUSER.DAT", u.name));
                hives.push(format!(
                    "Users/{}/AppData/Local/Microsoft/Windows/UsrClass.dat",
                    u.name
                ));
            }
            let mut list = out.as_os_str().to_owned();
            list.push(".hives");
            std::fs::write(list, hives.join("\n") + "\n")?;
        }
        Some("stats") => {
            // What the fixture holds, read back through reseal's own readers.
            let hive_list = std::fs::read_to_string(format!("{}.hives", args[1]))?;
            let mut img = Image::open(std::path::Path::new(&args[1]), Access::ReadOnly)?;
            let mut browse = reseal_ntfs::browse::Volume::open(&mut img)?;
            let all = browse.walk()?;
            let files = all.iter().filter(|(_, e)| !e.is_dir).count();
            let data: u64 = all.iter().map(|(_, e)| e.size).sum();
            let mut hives = 0u64;
            for h in hive_list.lines() {
                if let Ok(e) = browse.stat(h) {
                    hives += e.size;
                }
            }
            drop(browse);
            let len = img.len();
            let mut slice = Slice::new(&mut img, 0, len)?;
            let mut vol = reseal_ntfs::Volume::open(&mut slice)?;
            let mut ids = std::collections::BTreeSet::new();
            vol.rewrite_descriptors(|at, _| {
                if let reseal_ntfs::DescriptorRef::Shared(id) = at {
                    ids.insert(id);
                }
                None
            })?;
            println!(
                "{files} files ({data} bytes of file data), {} distinct $Secure descriptors, {hives} bytes of hives",
                ids.len()
            );
        }
        Some("hive") => {
            let s = spec(0, 1, num(&args[2]), 0, 0);
            std::fs::write(&args[1], s.software()?)?;
        }
        Some("read") => {
            let f = std::fs::File::open(&args[1])?;
            let text = std::fs::read_to_string(&args[2])?;
            let mut ranges: Vec<(u64, u64)> = text
                .lines()
                .filter_map(|l| {
                    let mut it = l.split_whitespace();
                    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
                })
                .map(|(o, n): (u64, u64)| (o, o + n))
                .collect();
            ranges.sort_unstable();
            let mut merged: Vec<(u64, u64)> = Vec::new();
            for (s, e) in ranges {
                match merged.last_mut() {
                    Some(last) if s <= last.1 => last.1 = last.1.max(e),
                    _ => merged.push((s, e)),
                }
            }
            let mut buf = vec![0u8; 1 << 20];
            let (mut total, mut sum) = (0u64, 0u64);
            for (s, e) in &merged {
                let mut at = *s;
                while at < *e {
                    let n = ((*e - at) as usize).min(buf.len());
                    let got = f.read_at(&mut buf[..n], at)?;
                    if got == 0 {
                        break;
                    }
                    sum = sum.wrapping_add(u64::from(buf[got - 1]));
                    at += got as u64;
                    total += got as u64;
                }
            }
            writeln!(
                std::io::stdout(),
                "{total} bytes in {} ranges (check {sum})",
                merged.len()
            )?;
        }
        Some("data") => {
            let image = std::path::Path::new(&args[1]);
            let (count, mib) = (num(&args[2]), num(&args[3]) as u64);
            let names: Vec<String> = (0..count)
                .map(|i| format!("Data/blob-{i:04}.bin"))
                .collect();
            {
                let mount = reseal_tests::NtfsMount::new(image, "")?;
                std::fs::create_dir_all(mount.path().join("Data"))?;
                for n in &names {
                    std::fs::write(mount.path().join(n), b"blob")?;
                }
                mount.unmount()?;
            }
            for n in &names {
                let o = std::process::Command::new("ntfsfallocate")
                    .arg("-l")
                    .arg((mib << 20).to_string())
                    .arg(image)
                    .arg(n)
                    .output()?;
                if !o.status.success() {
                    anyhow::bail!(
                        "ntfsfallocate {n}: {}",
                        String::from_utf8_lossy(&o.stderr).trim()
                    );
                }
            }
        }
        _ => anyhow::bail!("usage: generalize_bench build|stats|hive|read|data ..."),
    }
    Ok(())
}
