//! `cargo xtask bench [NAME…]`: benchmarks of reseal side by side with the peer tools on the same
//! input, reported as ratios (peer time / reseal time; above 1 means reseal is faster).
//!
//! Each benchmark prepares its input under `target/bench/`, runs every command a few times after
//! one warm-up run, and reports the median wall time. Results go to standard output and to
//! `target/bench/results.txt`.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::workspace_root;

mod goals;
mod scale;

type Bench = fn(&mut Ctx) -> Result<()>;

struct Ctx {
    dir: PathBuf,
    reseal: PathBuf,
    runs: usize,
    report: Vec<String>,
}

pub fn run(args: &[String]) -> Result<()> {
    crate::tools::ensure_with(crate::tools::BENCH_APT_TOOLS, true)?;
    // The Python peers (regipy) live in the oracle virtual environment.
    std::env::set_var("PATH", crate::tools::path_with_venv());
    let reseal = crate::release_reseal()?;
    let dir = crate::target_dir().join("bench");
    std::fs::create_dir_all(&dir)?;
    let mut ctx = Ctx {
        dir,
        reseal,
        runs: 3,
        report: Vec::new(),
    };
    let all: &[(&str, Bench)] = &[
        ("hive", bench_hive),
        ("ntfs", bench_ntfs),
        ("convert", bench_convert),
        ("generalize", bench_generalize),
        ("clone", bench_clone),
        ("put", bench_put),
        ("hivewalk", goals::bench_hivewalk),
        ("regsid", goals::bench_regsid),
        ("volsid", goals::bench_volsid),
        ("scale", scale::bench_scale),
    ];
    let wanted: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    for (name, f) in all {
        if wanted.is_empty() || wanted.iter().any(|w| w == name) {
            println!("== bench {name}");
            f(&mut ctx).with_context(|| format!("bench {name}"))?;
        }
    }
    let text = ctx.report.join("\n");
    std::fs::write(ctx.dir.join("results.txt"), &text)?;
    println!("\n{text}");
    Ok(())
}

fn time_cmd(
    ctx: &Ctx,
    label: &str,
    mk: &dyn Fn() -> Command,
    before: &dyn Fn(),
) -> Result<Duration> {
    time_runs(ctx.runs, true, label, mk, before)
}

/// Like [`time_cmd`] with `runs` timed runs, after one untimed warm-up when `warm_up`.
fn time_runs(
    runs: usize,
    warm_up: bool,
    label: &str,
    mk: &dyn Fn() -> Command,
    before: &dyn Fn(),
) -> Result<Duration> {
    let mut times = Vec::new();
    let first = usize::from(!warm_up);
    for i in first..=runs {
        before();
        let mut cmd = mk();
        cmd.stdout(Stdio::null());
        let t = Instant::now();
        let st = cmd.status().with_context(|| format!("running {label}"))?;
        let el = t.elapsed();
        if !st.success() {
            bail!("{label} failed");
        }
        if i > 0 {
            times.push(el);
        }
    }
    times.sort();
    let med = times[times.len() / 2];
    println!(
        "  {label}: median {:.3} s over {} runs",
        med.as_secs_f64(),
        times.len()
    );
    Ok(med)
}

fn ratio(ctx: &mut Ctx, what: &str, ours: Duration, peer_name: &str, peer: Duration) {
    let r = peer.as_secs_f64() / ours.as_secs_f64().max(1e-9);
    ctx.report.push(format!(
        "{what}: reseal {:.3} s, {peer_name} {:.3} s, ratio {peer_name}/reseal = {r:.2}",
        ours.as_secs_f64(),
        peer.as_secs_f64()
    ));
}

/// A sparse raw image: 4 GiB virtual, ~1 GiB of pseudo-random data in 1 MiB extents spread over it.
fn sparse_input(ctx: &Ctx) -> Result<PathBuf> {
    let path = ctx.dir.join("sparse-4g.raw");
    if path.is_file() {
        return Ok(path);
    }
    let tmp = ctx.dir.join("sparse-4g.raw.tmp");
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&tmp)?;
    let virt: u64 = 4 << 30;
    f.set_len(virt)?;
    let mut x: u64 = 0x1234_5678_9abc_def1;
    let mut chunk = vec![0u8; 1 << 20];
    // Every 4th MiB holds data: 1 GiB in all.
    for mib in (0..(virt >> 20)).step_by(4) {
        for w in chunk.chunks_exact_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes());
        }
        f.seek(SeekFrom::Start(mib << 20))?;
        f.write_all(&chunk)?;
    }
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

fn drop_output(p: &Path) {
    let _ = std::fs::remove_file(p);
}

fn bench_convert(ctx: &mut Ctx) -> Result<()> {
    let input = sparse_input(ctx)?;
    for (ours_fmt, qemu_fmt, qemu_opts) in [
        ("vhdx", "vhdx", "subformat=dynamic"),
        ("vhd", "vpc", "subformat=dynamic"),
        ("raw", "raw", ""),
    ] {
        let out_ours = ctx.dir.join(format!("out-reseal.{ours_fmt}"));
        let out_qemu = ctx.dir.join(format!("out-qemu.{ours_fmt}"));
        let reseal = ctx.reseal.clone();
        let (i1, o1) = (input.clone(), out_ours.clone());
        let ours = time_cmd(
            ctx,
            &format!("reseal convert --format {ours_fmt}"),
            &|| {
                let mut c = Command::new(&reseal);
                c.arg("convert")
                    .arg(&i1)
                    .arg(&o1)
                    .args(["--format", ours_fmt]);
                c
            },
            &|| drop_output(&o1),
        )?;
        let (i2, o2) = (input.clone(), out_qemu.clone());
        let peer = time_cmd(
            ctx,
            &format!("qemu-img convert -O {qemu_fmt}"),
            &|| {
                let mut c = Command::new("qemu-img");
                c.args(["convert", "-f", "raw", "-O", qemu_fmt]);
                if !qemu_opts.is_empty() {
                    c.args(["-o", qemu_opts]);
                }
                c.arg(&i2).arg(&o2);
                c
            },
            &|| drop_output(&o2),
        )?;
        // Both outputs must hold the same disk.
        let st = Command::new("qemu-img")
            .args(["compare", "-q"])
            .arg(&out_ours)
            .arg(&out_qemu)
            .status()?;
        if !st.success() {
            bail!("reseal's {ours_fmt} output differs from qemu-img's");
        }
        ratio(
            ctx,
            &format!("convert 4 GiB sparse raw (1 GiB data) -> {ours_fmt}"),
            ours,
            "qemu-img",
            peer,
        );
        // The same, timed until the data is on disk: `sync` before (untimed) and after (timed)
        // each run, so page-cache writeback is paid by the run that caused it.
        let synced = |prog: &Path, args: Vec<String>| {
            let prog = prog.to_path_buf();
            move || {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg("\"$0\" \"$@\" && sync")
                    .arg(&prog)
                    .args(&args);
                c
            }
        };
        let p = |x: &Path| x.display().to_string();
        let mk_ours = synced(
            &ctx.reseal,
            vec![
                "convert".into(),
                p(&input),
                p(&out_ours),
                "--format".into(),
                ours_fmt.into(),
            ],
        );
        let mut qargs: Vec<String> = vec!["convert".into(), "-f".into(), "raw".into()];
        qargs.extend(["-O".into(), qemu_fmt.into()]);
        if !qemu_opts.is_empty() {
            qargs.extend(["-o".into(), qemu_opts.into()]);
        }
        qargs.extend([p(&input), p(&out_qemu)]);
        let mk_peer = synced(Path::new("qemu-img"), qargs);
        let (o1, o2) = (out_ours.clone(), out_qemu.clone());
        let sync_now = || {
            let _ = Command::new("sync").status();
        };
        let ours = time_cmd(
            ctx,
            &format!("reseal convert --format {ours_fmt} + sync"),
            &mk_ours,
            &|| {
                drop_output(&o1);
                sync_now();
            },
        )?;
        let peer = time_cmd(
            ctx,
            &format!("qemu-img convert -O {qemu_fmt} + sync"),
            &mk_peer,
            &|| {
                drop_output(&o2);
                sync_now();
            },
        )?;
        ratio(
            ctx,
            &format!("convert 4 GiB sparse raw (1 GiB data) -> {ours_fmt}, to disk"),
            ours,
            "qemu-img",
            peer,
        );
        drop_output(&out_ours);
        drop_output(&out_qemu);
    }
    let _ = File::open(&input)?;
    Ok(())
}

/// Decompress a corpus file into the bench directory (once).
fn corpus_copy(ctx: &Ctx, rel: &str) -> Result<PathBuf> {
    let name = Path::new(rel)
        .file_name()
        .context("corpus path")?
        .to_string_lossy()
        .trim_end_matches(".xz")
        .to_string();
    let out = ctx.dir.join(format!("corpus-{name}"));
    if !out.is_file() {
        let bytes = reseal_tests::corpus_bytes(rel)?;
        std::fs::write(&out, bytes)?;
    }
    Ok(out)
}

/// A `.reg` file (UTF-16LE with BOM) with `keys` keys of `per_key` values each, under `prefix`.
fn make_reg(path: &Path, prefix: &str, keys: usize, per_key: usize) -> Result<()> {
    let mut text = String::from("Windows Registry Editor Version 5.00\r\n\r\n");
    for k in 0..keys {
        text.push_str(&format!(
            "[{prefix}\\ResealBench\\Group{:03}\\Key{k:06}]\r\n",
            k % 500
        ));
        for v in 0..per_key {
            match v % 4 {
                0 => text.push_str(&format!("\"Str{v}\"=\"value {k} {v} some text\"\r\n")),
                1 => text.push_str(&format!("\"Dw{v}\"=dword:{:08x}\r\n", k * 31 + v)),
                2 => text.push_str(&format!(
                    "\"Bin{v}\"=hex:{}\r\n",
                    (0..24)
                        .map(|i| format!("{:02x}", (k + v + i) & 0xff))
                        .collect::<Vec<_>>()
                        .join(",")
                )),
                _ => text.push_str(&format!(
                    "\"Multi{v}\"=hex(7):{}\r\n",
                    "a\0b\0\0"
                        .encode_utf16()
                        .flat_map(|u| u.to_le_bytes())
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(",")
                )),
            }
        }
        text.push_str("\r\n");
    }
    let mut bytes = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        bytes.extend_from_slice(&u.to_le_bytes());
    }
    std::fs::write(path, bytes)?;
    Ok(())
}

/// A large generated hive (once): the corpus SYSTEM plus 120k keys / 200k values imported by
/// reseal.
fn large_hive(ctx: &Ctx, system: &Path) -> Result<PathBuf> {
    // A large generated hive: the corpus SYSTEM plus 120k keys / 200k values imported by reseal.
    let large = ctx.dir.join("large-SYSTEM");
    if !large.is_file() {
        let reg = ctx.dir.join("large.reg");
        // 40k keys with 5 values and 80k keys without: ~120k keys, 200k values.
        make_reg(&reg, "HKEY_LOCAL_MACHINE\\SYSTEM", 40_000, 5)?;
        let reg2 = ctx.dir.join("large2.reg");
        make_reg(&reg2, "HKEY_LOCAL_MACHINE\\SYSTEM\\More", 80_000, 0)?;
        let tmp = ctx.dir.join("large-SYSTEM.tmp");
        std::fs::copy(system, &tmp)?;
        for r in [&reg, &reg2] {
            let st = Command::new(&ctx.reseal)
                .args(["reg", "import"])
                .arg(&tmp)
                .arg(r)
                .args(["--prefix", "HKEY_LOCAL_MACHINE\\SYSTEM"])
                .status()?;
            if !st.success() {
                bail!("building the large hive failed");
            }
        }
        let _ = std::fs::remove_dir_all(ctx.dir.join("large-SYSTEM.tmp.reseal-journal"));
        std::fs::rename(&tmp, &large)?;
    }
    Ok(large)
}

const REGIPY_WALK: &str = r#"
import sys
from regipy.registry import RegistryHive
h = RegistryHive(sys.argv[1])
keys = values = 0
for sk in h.recurse_subkeys(as_json=False):
    keys += 1
    values += len(sk.values or [])
print(keys, values)
"#;

fn bench_hive(ctx: &mut Ctx) -> Result<()> {
    let system = corpus_copy(ctx, "regipy/SYSTEM.xz")?;
    let software_like = corpus_copy(ctx, "regipy/NTUSER-WSL.DAT.xz")?;
    let large = large_hive(ctx, &system)?;
    let script = ctx.dir.join("regipy_walk.py");
    std::fs::write(&script, REGIPY_WALK)?;
    for (label, hive) in [
        ("SYSTEM (Win7, corpus)", &system),
        ("NTUSER-WSL.DAT (corpus)", &software_like),
        ("generated SYSTEM + 120k keys / 200k values", &large),
    ] {
        let size = std::fs::metadata(hive)?.len();
        let reseal = ctx.reseal.clone();
        let h = hive.clone();
        let ours = time_cmd(
            ctx,
            "reseal reg export",
            &|| {
                let mut c = Command::new(&reseal);
                c.args(["reg", "export"]).arg(&h).args(["-o", "/dev/null"]);
                c
            },
            &|| {},
        )?;
        let h2 = hive.clone();
        let hivexml = time_cmd(
            ctx,
            "hivexml",
            &|| {
                let mut c = Command::new("hivexml");
                c.arg(&h2);
                c
            },
            &|| {},
        )?;
        let (h3, s3) = (hive.clone(), script.clone());
        // regipy takes minutes on the large hives: one timed run, no warm-up.
        let regipy = time_runs(
            1,
            false,
            "regipy walk (1 run)",
            &|| {
                let mut c = Command::new("python3");
                c.arg(&s3).arg(&h3);
                c
            },
            &|| {},
        )?;
        let what = format!("full walk with values decoded: {label}, {} MiB", size >> 20);
        ratio(ctx, &what, ours, "hivexml", hivexml);
        ratio(ctx, &what, ours, "regipy", regipy);
    }

    // .reg import of 50k values: reseal reg import vs hivexregedit --merge, on copies of SYSTEM.
    let reg = ctx.dir.join("import-50k.reg");
    make_reg(&reg, "HKEY_LOCAL_MACHINE\\SYSTEM", 10_000, 5)?;
    let ours_copy = ctx.dir.join("import-reseal-SYSTEM");
    let peer_copy = ctx.dir.join("import-hivex-SYSTEM");
    let (sys1, o1, r1, reseal) = (
        system.clone(),
        ours_copy.clone(),
        reg.clone(),
        ctx.reseal.clone(),
    );
    let ours = time_cmd(
        ctx,
        "reseal reg import (50k values)",
        &|| {
            let mut c = Command::new(&reseal);
            c.args(["reg", "import"])
                .arg(&o1)
                .arg(&r1)
                .args(["--prefix", "HKEY_LOCAL_MACHINE\\SYSTEM"]);
            c.stderr(Stdio::null());
            c
        },
        &|| {
            let _ = std::fs::remove_dir_all(ctx_journal(&o1));
            let _ = std::fs::copy(&sys1, &o1);
        },
    )?;
    let (sys2, o2, r2) = (system.clone(), peer_copy.clone(), reg.clone());
    let peer = time_cmd(
        ctx,
        "hivexregedit --merge (50k values)",
        &|| {
            let mut c = Command::new("hivexregedit");
            c.args([
                "--merge",
                "--prefix",
                "HKEY_LOCAL_MACHINE\\SYSTEM",
                "--encoding",
                "utf-16le",
            ])
            .arg(&o2)
            .arg(&r2);
            c
        },
        &|| {
            let _ = std::fs::copy(&sys2, &o2);
        },
    )?;
    ratio(
        ctx,
        ".reg import of 50k values into SYSTEM",
        ours,
        "hivexregedit --merge",
        peer,
    );
    Ok(())
}

fn ctx_journal(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".reseal-journal");
    PathBuf::from(s)
}

const PY_CREATE: &str = r#"
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
def sid(rid):
    # S-1-5-21-1111111111-2222222222-3333333333-rid
    b = bytes([1, 5, 0, 0, 0, 0, 0, 5])
    for v in (21, 1111111111, 2222222222, 3333333333, rid):
        b += v.to_bytes(4, 'little')
    return b
def ace(mask, s):
    return bytes([0, 0]) + (8 + len(s)).to_bytes(2, 'little') + mask.to_bytes(4, 'little') + s
def sd(i):
    system = bytes([1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0])
    admins = bytes([1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0, 0x20, 2, 0, 0])
    aces = ace(0x1f01ff, system) + ace(0x1f01ff, admins) + ace(0x1200a9, sid(2000 + i))
    acl = bytes([2, 0]) + (8 + len(aces)).to_bytes(2, 'little') + (3).to_bytes(2, 'little') + bytes(2) + aces
    owner = sid(1000 + i % 50)
    off_dacl = 20
    off_owner = off_dacl + len(acl)
    off_group = off_owner + len(owner)
    hdr = bytes([1, 0]) + (0x9004).to_bytes(2, 'little') + off_owner.to_bytes(4, 'little') + off_group.to_bytes(4, 'little') + bytes(4) + off_dacl.to_bytes(4, 'little')
    return hdr + acl + owner + system
per_sd = int(sys.argv[3]) if len(sys.argv) > 3 else 10
for d in range(100):
    os.mkdir(os.path.join(root, 'd%03d' % d))
for i in range(n):
    p = os.path.join(root, 'd%03d' % (i % 100), 'file-%06d.txt' % i)
    with open(p, 'w') as f:
        f.write('content of file %d\n' % i)
    os.setxattr(p, 'system.ntfs_acl', sd(i // per_sd))
"#;

const PY_REWRITE_BACKUP: &str = r#"
# Replace the old account domain by the new one in every descriptor of an `ntfssecaudit -b`
# backup, and recompute each block's "Computed hash" (the $SDS hash over the dumped bytes), which
# `ntfssecaudit -s` verifies (the hash line follows its block).
import re, sys
old = b''.join(v.to_bytes(4, 'little') for v in (21, 1111111111, 2222222222, 3333333333)).hex()
new = b''.join(v.to_bytes(4, 'little') for v in (21, 1444444444, 2555555555, 3666666666)).hex()
line_re = re.compile(r'^(\s+)([0-9a-f]{6})  ((?:[0-9a-f]{8} ?)+)$')
out, block, indent, last = [], [], '        ', None
def sds_hash(b):
    h = 0
    for j in range(0, len(b) // 4 * 4, 4):
        h = (int.from_bytes(b[j:j + 4], 'little') + ((h << 3) | (h >> 29))) & 0xffffffff
    return h
def flush():
    global block, last
    if not block:
        return
    h = ''.join(block)
    i = h.find(old)
    while i >= 0:
        if i % 2 == 0:
            h = h[:i] + new + h[i + len(old):]
        i = h.find(old, i + 1)
    for off in range(0, len(h), 32):
        chunk = h[off:off + 32]
        words = ' '.join(chunk[j:j + 8] for j in range(0, len(chunk), 8))
        out.append('%s%06x  %s' % (indent, off // 2, words))
    last = sds_hash(bytes.fromhex(h))
    block = []
for line in open(sys.argv[1]):
    line = line.rstrip('\n')
    m = line_re.match(line)
    if m:
        indent = m.group(1)
        block.append(m.group(3).replace(' ', ''))
    else:
        flush()
        # The hash line follows the block it belongs to.
        if line.startswith('Computed hash') and last is not None:
            line = re.sub(r'0x[0-9a-f]+', '0x%08x' % last, line)
        out.append(line)
flush()
open(sys.argv[2], 'w').write('\n'.join(out) + '\n')
"#;

fn mkntfs(path: &Path, size: u64) -> Result<()> {
    let _ = std::fs::remove_file(path);
    let f = File::create(path)?;
    f.set_len(size)?;
    drop(f);
    let st = Command::new("mkntfs")
        .args(["-F", "-q", "-Q", "-c", "4096"])
        .arg(path)
        .stderr(Stdio::null())
        .stdout(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("mkntfs failed");
    }
    Ok(())
}

fn cp_sparse(from: &Path, to: &Path) {
    let _ = std::fs::remove_file(to);
    let _ = std::fs::remove_dir_all(ctx_journal(to));
    let _ = Command::new("cp")
        .arg("--sparse=always")
        .arg(from)
        .arg(to)
        .status();
}

fn fuse_populate(vol: &Path, mnt: &Path, script: &Path, n: usize, per_sd: usize) -> Result<()> {
    std::fs::create_dir_all(mnt)?;
    let st = Command::new("ntfs-3g").arg(vol).arg(mnt).status()?;
    if !st.success() {
        bail!("ntfs-3g mount failed");
    }
    let st = Command::new("python3")
        .arg(script)
        .arg(mnt)
        .arg(n.to_string())
        .arg(per_sd.to_string())
        .status()?;
    let um = Command::new("umount").arg(mnt).status()?;
    if !st.success() || !um.success() {
        bail!("populating through ntfs-3g failed");
    }
    Ok(())
}

fn bench_ntfs(ctx: &mut Ctx) -> Result<()> {
    let driver = build_example("ntfs_bench")?;
    let py_create = ctx.dir.join("ntfs_create.py");
    std::fs::write(&py_create, PY_CREATE)?;
    let py_rewrite = ctx.dir.join("ntfs_rewrite_backup.py");
    std::fs::write(&py_rewrite, PY_REWRITE_BACKUP)?;
    let mnt = ctx.dir.join("mnt");

    // 1. Create 10k small files with descriptors (1000 distinct).
    let pristine = ctx.dir.join("ntfs-empty.img");
    mkntfs(&pristine, 2 << 30)?;
    let work = ctx.dir.join("ntfs-work.img");
    let (d, w, p) = (driver.clone(), work.clone(), pristine.clone());
    let ours = time_cmd(
        ctx,
        "reseal: create 10k files + descriptors",
        &|| {
            let mut c = Command::new(&d);
            c.arg("create").arg(&w).arg("10000");
            c
        },
        &|| cp_sparse(&p, &w),
    )?;
    // Check the result with ntfs-3g's own auditor once.
    reseal_tests::ntfssecaudit_clean(&work).context("after reseal's create run")?;
    let (w2, p2, m2, s2) = (
        work.clone(),
        pristine.clone(),
        mnt.clone(),
        py_create.clone(),
    );
    let peer = time_cmd(
        ctx,
        "ntfs-3g mount: create 10k files + setxattr",
        &|| {
            // mount, populate, unmount in one shell so the whole pipeline is timed
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!(
                "mkdir -p '{m}' && ntfs-3g '{w}' '{m}' && python3 '{s}' '{m}' 10000 10; r=$?; umount '{m}'; exit $r",
                m = m2.display(),
                w = w2.display(),
                s = s2.display()
            ));
            c
        },
        &|| cp_sparse(&p2, &w2),
    )?;
    ratio(
        ctx,
        "NTFS: create 10k files with descriptors",
        ours,
        "ntfs-3g FUSE",
        peer,
    );

    // 2. Rewrite every descriptor: a volume with 3000 distinct descriptors made by ntfs-3g.
    let populated = ctx.dir.join("ntfs-3000sd.img");
    if !populated.is_file() {
        let tmp = ctx.dir.join("ntfs-3000sd.tmp");
        mkntfs(&tmp, 1 << 30)?;
        fuse_populate(&tmp, &mnt, &py_create, 3000, 1)?;
        std::fs::rename(&tmp, &populated)?;
    }
    let (d, w, p) = (driver.clone(), work.clone(), populated.clone());
    let ours = time_cmd(
        ctx,
        "reseal: rewrite every descriptor",
        &|| {
            let mut c = Command::new(&d);
            c.arg("rewrite")
                .arg(&w)
                .arg("S-1-5-21-1111111111-2222222222-3333333333")
                .arg("S-1-5-21-1444444444-2555555555-3666666666");
            c.stderr(Stdio::null());
            c
        },
        &|| cp_sparse(&p, &w),
    )?;
    reseal_tests::ntfssecaudit_clean(&work).context("after reseal's rewrite")?;
    let (w2, p2, s2) = (work.clone(), populated.clone(), py_rewrite.clone());
    let backup = ctx.dir.join("acl-backup.txt");
    let edited = ctx.dir.join("acl-edited.txt");
    let peer = time_cmd(
        ctx,
        "ntfssecaudit -b, edit, ntfssecaudit -s",
        &|| {
            let mut c = Command::new("sh");
            c.arg("-c").arg(format!(
                "ntfssecaudit -b '{w}' > '{b}' && python3 '{s}' '{b}' '{e}' && ntfssecaudit -s '{w}' '{e}' > /dev/null",
                w = w2.display(),
                b = backup.display(),
                s = s2.display(),
                e = edited.display()
            ));
            c
        },
        &|| cp_sparse(&p2, &w2),
    )?;
    ratio(
        ctx,
        "NTFS: rewrite every descriptor (3000 distinct)",
        ours,
        "ntfssecaudit pipeline",
        peer,
    );
    Ok(())
}

/// Build (release) an example of the `reseal-tests` crate and return its path.
fn build_example(name: &str) -> Result<PathBuf> {
    let root = workspace_root();
    let st = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "reseal-tests",
            "--example",
            name,
        ])
        .status()?;
    if !st.success() {
        bail!("building the {name} driver failed");
    }
    Ok(std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release/examples")
        .join(name))
}

/// The largest peak resident set size (KiB) in a file appended to by `/usr/bin/time -a -o FILE`
/// with a format ending in `%M`.
fn peak_kib(file: &Path) -> u64 {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().last()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0)
}

/// Seconds per step name in a file appended to by `/usr/bin/time -f "NAME %e %M"`, summed.
fn step_seconds(file: &Path) -> Vec<(String, f64)> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for l in std::fs::read_to_string(file).unwrap_or_default().lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        let [name, secs, _] = f[..] else { continue };
        let Ok(secs) = secs.parse::<f64>() else {
            continue;
        };
        match out.iter_mut().find(|(n, _)| n == name) {
            Some((_, t)) => *t += secs,
            None => out.push((name.to_string(), secs)),
        }
    }
    out
}

/// The image ranges a command reads, from an `strace -e trace=openat,pread64,close` log:
/// `offset length` lines for every pread64 on a descriptor opened on `image`.
fn traced_ranges(log: &Path, image: &Path) -> Result<String> {
    let text = std::fs::read_to_string(log)?;
    let name = format!("\"{}\"", image.display());
    let mut fds = std::collections::HashSet::new();
    let mut out = String::new();
    for line in text.lines() {
        let Some((call, ret)) = line.rsplit_once(") = ") else {
            continue;
        };
        let ret = ret.split_whitespace().next().unwrap_or("");
        if call.contains("openat(") && call.contains(&name) {
            if let Ok(fd) = ret.parse::<i64>() {
                fds.insert(fd);
            }
        } else if let Some(rest) = call.split_once("close(").map(|(_, r)| r) {
            if let Ok(fd) = rest.trim().parse::<i64>() {
                fds.remove(&fd);
            }
        } else if let Some(rest) = call.split_once("pread64(").map(|(_, r)| r) {
            let fd: i64 = rest
                .split(',')
                .next()
                .and_then(|f| f.trim().parse().ok())
                .unwrap_or(-1);
            if !fds.contains(&fd) {
                continue;
            }
            let mut tail = call.rsplit(',').map(str::trim);
            let (Some(off), Some(_len)) = (tail.next(), tail.next()) else {
                continue;
            };
            if let (Ok(off), Ok(got)) = (off.parse::<u64>(), ret.parse::<u64>()) {
                out.push_str(&format!("{off} {got}\n"));
            }
        }
    }
    Ok(out)
}

/// The fixture's machine SID and the one both sides write.
const OLD_SID: &str = "S-1-5-21-1111111111-2222222222-3333333333";
const NEW_SID: &str = "S-1-5-21-1444444444-2555555555-3666666666";

fn bench_generalize(ctx: &mut Ctx) -> Result<()> {
    // The fixture: 50k files (2.5k distinct descriptors) over eight profiles, and 100+ MB of
    // hives in ten hives of ~10 MB (SOFTWARE and eight NTUSER.DAT). Samba's `profiles` needs
    // time and memory that grow faster than linearly with a hive's size (5k keys: 12.9 s and
    // 363 MB; 10k keys: 66.8 s and 1.3 GB), so one 100 MB hive would not finish here.
    let driver = build_example("generalize_bench")?;
    let pristine = ctx.dir.join("generalize-large.img");
    let hive_list = ctx.dir.join("generalize-large.img.hives");
    if !pristine.is_file() || !hive_list.is_file() {
        println!(
            "  building the fixture (once; cached as {})",
            pristine.display()
        );
        let tmp = ctx.dir.join("generalize-large.tmp");
        let st = Command::new(&driver)
            .arg("build")
            .arg(&tmp)
            .args(["50000", "2500", "12000", "11500", "1024"])
            .status()?;
        if !st.success() {
            bail!("building the generalize fixture failed");
        }
        let mut l = tmp.as_os_str().to_owned();
        l.push(".hives");
        std::fs::rename(PathBuf::from(l), &hive_list)?;
        std::fs::rename(&tmp, &pristine)?;
    }
    let stats = Command::new(&driver).arg("stats").arg(&pristine).output()?;
    let stats = String::from_utf8_lossy(&stats.stdout).trim().to_string();
    println!("  fixture: {stats}");
    ctx.report.push(format!("generalize fixture: {stats}"));

    let work = ctx.dir.join("generalize-work.img");
    let mem_ours = ctx.dir.join("generalize-mem-reseal.txt");
    let _ = std::fs::remove_file(&mem_ours);
    let (r, w, p, m) = (
        ctx.reseal.clone(),
        work.clone(),
        pristine.clone(),
        mem_ours.clone(),
    );
    let ours = time_cmd(
        ctx,
        "reseal generalize (new SID + computer name, commit with undo file)",
        &|| {
            let mut c = Command::new("/usr/bin/time");
            c.args(["-f", "%M", "-a", "-o"])
                .arg(&m)
                .arg(&r)
                .arg("generalize")
                .arg(&w)
                .args(["--new-sid", NEW_SID, "--computer-name", "BENCH-0001"]);
            c.stderr(Stdio::null());
            c
        },
        &|| cp_sparse(&p, &w),
    )?;
    // The result, checked once: ntfs-3g's auditor and the new identity.
    reseal_tests::ntfssecaudit_clean(&work).context("after reseal generalize")?;
    let o = Command::new(&ctx.reseal)
        .arg("inspect")
        .arg(&work)
        .output()?;
    let text = String::from_utf8_lossy(&o.stdout);
    if !text.contains(NEW_SID) || !text.contains("BENCH-0001") {
        bail!("inspect after generalize does not show the new SID and name");
    }

    // The floor: read once every byte generalize reads (traced with strace), merged.
    cp_sparse(&pristine, &work);
    let trace = ctx.dir.join("generalize-strace.txt");
    let st = Command::new("strace")
        .args(["-e", "trace=openat,pread64,close", "-o"])
        .arg(&trace)
        .arg(&ctx.reseal)
        .arg("generalize")
        .arg(&work)
        .args([
            "--new-sid",
            NEW_SID,
            "--computer-name",
            "BENCH-0001",
            "--dry-run",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("running strace (apt-get install strace)")?;
    if !st.success() {
        bail!("traced dry run failed");
    }
    let ranges = ctx.dir.join("generalize-ranges.txt");
    let listed = traced_ranges(&trace, &work)?;
    if listed.is_empty() {
        bail!("the strace log names no read of {}", work.display());
    }
    std::fs::write(&ranges, listed)?;
    let summary = Command::new(&driver)
        .arg("read")
        .arg(&work)
        .arg(&ranges)
        .output()?;
    let summary = String::from_utf8_lossy(&summary.stdout).trim().to_string();
    println!("  touched: {summary}");
    let (d, w2, rg) = (driver.clone(), work.clone(), ranges.clone());
    let floor = time_cmd(
        ctx,
        "read the touched bytes once",
        &|| {
            let mut c = Command::new(&d);
            c.arg("read").arg(&w2).arg(&rg);
            c
        },
        &|| {},
    )?;

    // The peer pipeline: ntfs-3g mount, Samba `profiles` on a copy of each hive (outside FUSE,
    // which only helps it), copy back, unmount; then ntfssecaudit backup, edit, restore.
    let py_rewrite = ctx.dir.join("ntfs_rewrite_backup.py");
    std::fs::write(&py_rewrite, PY_REWRITE_BACKUP)?;
    let mnt = ctx.dir.join("mnt");
    std::fs::create_dir_all(&mnt)?;
    let scratch = ctx.dir.join("generalize-peer");
    std::fs::create_dir_all(&scratch)?;
    let mem_peer = ctx.dir.join("generalize-mem-peer.txt");
    let script = format!(
        r#"set -e
W='{w}'; M='{m}'; T='{t}'; MEM='{mem}'
rm -f "$MEM"
ntfs-3g "$W" "$M"
while read -r h; do
  [ -f "$M/$h" ] || continue
  cp "$M/$h" "$T/hive"
  /usr/bin/time -f 'profiles %e %M' -a -o "$MEM" profiles -c {old} -n {new} "$T/hive" > /dev/null 2>&1
  cp "$T/hive.new" "$M/$h"
  rm -f "$T/hive" "$T/hive.new"
done < '{list}'
umount "$M"
/usr/bin/time -f 'ntfssecaudit-b %e %M' -a -o "$MEM" ntfssecaudit -b "$W" > "$T/backup.txt"
/usr/bin/time -f 'edit %e %M' -a -o "$MEM" python3 '{py}' "$T/backup.txt" "$T/edited.txt"
/usr/bin/time -f 'ntfssecaudit-s %e %M' -a -o "$MEM" ntfssecaudit -s "$W" "$T/edited.txt" > /dev/null
"#,
        w = work.display(),
        m = mnt.display(),
        t = scratch.display(),
        mem = mem_peer.display(),
        list = hive_list.display(),
        py = py_rewrite.display(),
        old = OLD_SID,
        new = NEW_SID,
    );
    let script_path = ctx.dir.join("generalize-peer.sh");
    std::fs::write(&script_path, script)?;
    let (sp, w3, p3) = (script_path.clone(), work.clone(), pristine.clone());
    // The peer needs about a quarter of an hour: one timed run, no warm-up.
    let peer = time_runs(
        1,
        false,
        "peer: ntfs-3g mount + Samba profiles per hive + ntfssecaudit -b/edit/-s",
        &|| {
            let mut c = Command::new("sh");
            c.arg(&sp);
            c
        },
        &|| cp_sparse(&p3, &w3),
    )?;
    let (mo, mp) = (peak_kib(&mem_ours), peak_kib(&mem_peer));
    ratio(
        ctx,
        "generalize (50k files, 2.5k descriptors, 100+ MB hives)",
        ours,
        "profiles + ntfssecaudit pipeline",
        peer,
    );
    ctx.report.push(format!(
        "generalize vs the read-once floor ({summary}): reseal {:.3} s, read once {:.3} s, \
         reseal/floor = {:.2}",
        ours.as_secs_f64(),
        floor.as_secs_f64(),
        ours.as_secs_f64() / floor.as_secs_f64().max(1e-9)
    ));
    let steps = step_seconds(&mem_peer)
        .iter()
        .map(|(n, t)| format!("{n} {t:.1} s"))
        .collect::<Vec<_>>()
        .join(", ");
    ctx.report.push(format!("generalize peer steps: {steps}"));
    ctx.report.push(format!(
        "generalize peak memory: reseal {:.1} MiB, peer pipeline (largest step) {:.1} MiB",
        mo as f64 / 1024.0,
        mp as f64 / 1024.0
    ));
    Ok(())
}

/// `bench clone`: minting clones of one golden image. `reseal clone --count N` (children, one
/// process) against (a) `cp --reflink=never` + in-place `reseal generalize` per clone (what a
/// user without children does) and (b) `qemu-img create -b` per clone (no identity change: the
/// lower bound of any tool). Inputs: the committed quick-start fixture (100 clones) and, when
/// `bench generalize` has built it, the 50k-file bench image (`RESEAL_BENCH_CLONES`, default 10,
/// as a qcow2 overlay of the raw image). Reports wall time, bytes per child and peak RSS.
fn bench_clone(ctx: &mut Ctx) -> Result<()> {
    let fixture = workspace_root().join("fixtures/quickstart.vhdx");
    clone_case(ctx, "fixture", &fixture, "vhdx", 100)?;
    let large = ctx.dir.join("generalize-large.img");
    if large.is_file() {
        let n = std::env::var("RESEAL_BENCH_CLONES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10);
        clone_case(ctx, "50k-file bench image", &large, "qcow2", n)?;
    } else {
        println!("  (run `cargo xtask bench generalize` first for the 50k-file image)");
    }
    Ok(())
}

fn clone_case(ctx: &mut Ctx, name: &str, base: &Path, format: &str, count: usize) -> Result<()> {
    let dir = ctx.dir.join(format!("clone-{}", name.replace(' ', "-")));
    let reset = |d: &Path| {
        let _ = std::fs::remove_dir_all(d);
        std::fs::create_dir_all(d).expect("bench dir");
    };
    reset(&dir);
    let golden = dir.join(format!(
        "golden.{}",
        base.extension().and_then(|e| e.to_str()).unwrap_or("img")
    ));
    std::fs::copy(base, &golden)?;
    let mem = dir.join("rss.txt");
    // reseal clone --count N.
    let out_dir = dir.join("out");
    reset(&out_dir);
    let t = Instant::now();
    let st = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&mem)
        .arg(&ctx.reseal)
        .arg("clone")
        .arg(&golden)
        .arg(out_dir.join(format!("w{{n:03}}.{format}")))
        .args(["--format", format, "--count", &count.to_string()])
        .args(["--computer-name", "BENCH-{n:04}"])
        .stdout(Stdio::null())
        .status()?;
    let ours = t.elapsed();
    if !st.success() {
        bail!("reseal clone failed");
    }
    let bytes: u64 = std::fs::read_dir(&out_dir)?
        .filter_map(|e| e.ok()?.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| {
            use std::os::unix::fs::MetadataExt;
            m.blocks() * 512
        })
        .sum();
    let rss = peak_kib(&mem);
    println!(
        "  reseal clone x{count} ({name}): {:.2} s, {:.1} MiB allocated per child, peak RSS {} MiB",
        ours.as_secs_f64(),
        bytes as f64 / count as f64 / 1048576.0,
        rss / 1024
    );
    ctx.report.push(format!(
        "clone x{count} of the {name}: reseal {:.2} s ({:.3} s per clone), {:.1} MiB allocated per child, peak RSS {} MiB",
        ours.as_secs_f64(),
        ours.as_secs_f64() / count as f64,
        bytes as f64 / count as f64 / 1048576.0,
        rss / 1024
    ));
    // (a) full copy + in-place generalize, per clone (a sample of up to 10, scaled).
    reset(&out_dir);
    let sample = count.min(10);
    let t = Instant::now();
    for i in 0..sample {
        let c = out_dir.join(format!("full{i}"));
        let st = Command::new("cp")
            .args(["--reflink=never", "--sparse=always"])
            .arg(&golden)
            .arg(&c)
            .status()?;
        if !st.success() {
            bail!("cp failed");
        }
        let st = Command::new(&ctx.reseal)
            .arg("generalize")
            .arg(&c)
            .args(["--computer-name", &format!("BENCH-{i:04}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?;
        if !st.success() {
            bail!("in-place generalize failed");
        }
        let _ = std::fs::remove_file(&c);
        let mut j = c.as_os_str().to_owned();
        j.push(".reseal-journal");
        let _ = std::fs::remove_dir_all(PathBuf::from(j));
    }
    let full = t.elapsed().mul_f64(count as f64 / sample as f64);
    ratio(
        ctx,
        &format!("clone x{count} of the {name} (peer sampled on {sample}, scaled)"),
        ours,
        "cp --reflink=never + generalize",
        full,
    );
    // (b) qemu-img create -b per clone: children without any identity change.
    reset(&out_dir);
    let bfmt = match golden.extension().and_then(|e| e.to_str()) {
        Some("vhdx") => "vhdx",
        Some("qcow2") => "qcow2",
        _ => "raw",
    };
    let t = Instant::now();
    for i in 0..count {
        let st = Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-F", bfmt, "-b"])
            .arg(&golden)
            .arg(out_dir.join(format!("q{i}.qcow2")))
            .status()?;
        if !st.success() {
            bail!("qemu-img create -b failed");
        }
    }
    let lower = t.elapsed();
    ratio(
        ctx,
        &format!("clone x{count} of the {name} vs children without identity change"),
        ours,
        "qemu-img create -b",
        lower,
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// `bench put`: `reseal put` of one large pseudo-random file into a fresh bare NTFS volume, and
/// ntfs-3g's `ntfscp` into a copy of the same volume: wall time and peak RSS of each (one run:
/// the file is as large as the page cache allows to be warm). Size: `RESEAL_BENCH_PUT_GIB`
/// (default 1; 4 for the issue's figure) or, for a quick check, `RESEAL_BENCH_PUT_MIB`. reseal's
/// figure includes its commit (the undo file holds the original bytes of every changed range,
/// so about as many bytes again are written) under the default 64 MiB spill bound.
fn bench_put(ctx: &mut Ctx) -> Result<()> {
    let env_u64 = |k: &str| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
    };
    let bytes = match env_u64("RESEAL_BENCH_PUT_MIB") {
        Some(m) => m << 20,
        None => env_u64("RESEAL_BENCH_PUT_GIB").unwrap_or(1) << 30,
    };
    let dir = ctx.dir.join("put");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let template = dir.join("template.ntfs");
    mkntfs(&template, bytes + bytes / 8 + (256 << 20))?;
    let local = dir.join("big.bin");
    {
        // Pseudo-random (xorshift), so neither side can skip zeros.
        let mut f = std::io::BufWriter::new(File::create(&local)?);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut buf = vec![0u8; 1 << 20];
        let mut done = 0u64;
        while done < bytes {
            for c in buf.chunks_exact_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                c.copy_from_slice(&x.to_le_bytes());
            }
            let n = (bytes - done).min(buf.len() as u64) as usize;
            f.write_all(&buf[..n])?;
            done += n as u64;
        }
        f.flush()?;
    }
    let mib = bytes >> 20;
    // One timed run on a fresh copy of the volume.
    let run_on = |label: &str, cmd: &mut Command, vol: &Path| -> Result<Duration> {
        cp_sparse(&template, vol);
        let t = Instant::now();
        let st = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .with_context(|| format!("running {label}"))?;
        let el = t.elapsed();
        if !st.success() {
            bail!("{label} failed");
        }
        Ok(el)
    };
    let vol_ours = dir.join("ours.ntfs");
    let mem_ours = dir.join("ours.rss");
    let ours = run_on(
        "reseal put",
        Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o"])
            .arg(&mem_ours)
            .arg(&ctx.reseal)
            .arg("put")
            .arg(&vol_ours)
            .arg(&local)
            .arg("/big.bin"),
        &vol_ours,
    )?;
    let rss_ours = peak_kib(&mem_ours);
    println!(
        "  reseal put {mib} MiB: {:.2} s, peak RSS {} MiB",
        ours.as_secs_f64(),
        rss_ours / 1024
    );
    let _ = std::fs::remove_file(&vol_ours);
    let _ = std::fs::remove_dir_all(ctx_journal(&vol_ours));
    let vol_peer = dir.join("peer.ntfs");
    let mem_peer = dir.join("peer.rss");
    let peer = run_on(
        "ntfscp",
        Command::new("/usr/bin/time")
            .args(["-f", "%M", "-o"])
            .arg(&mem_peer)
            .arg("ntfscp")
            .arg("-f")
            .arg(&vol_peer)
            .arg(&local)
            .arg("/big.bin"),
        &vol_peer,
    )?;
    let rss_peer = peak_kib(&mem_peer);
    println!(
        "  ntfscp {mib} MiB: {:.2} s, peak RSS {} MiB",
        peer.as_secs_f64(),
        rss_peer / 1024
    );
    ctx.report.push(format!(
        "put of a {mib} MiB file: reseal {:.2} s, peak RSS {} MiB (commit and undo file included); ntfscp {:.2} s, peak RSS {} MiB; ratio ntfscp/reseal = {:.2}",
        ours.as_secs_f64(),
        rss_ours / 1024,
        peer.as_secs_f64(),
        rss_peer / 1024,
        peer.as_secs_f64() / ours.as_secs_f64().max(1e-9)
    ));

    // The same put into a qcow2 image of the same volume (the containers' savepoints let the
    // data stream there too).
    let qcow = dir.join("ours.qcow2");
    let mem_q = dir.join("qcow.rss");
    cp_sparse(&template, &vol_ours);
    let st = Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "qcow2"])
        .arg(&vol_ours)
        .arg(&qcow)
        .status()?;
    let _ = std::fs::remove_file(&vol_ours);
    if !st.success() {
        bail!("qemu-img convert of the put volume failed");
    }
    let t = Instant::now();
    let st = Command::new("/usr/bin/time")
        .args(["-f", "%M", "-o"])
        .arg(&mem_q)
        .arg(&ctx.reseal)
        .arg("put")
        .arg(&qcow)
        .arg(&local)
        .arg("/big.bin")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let q_time = t.elapsed();
    if !st.success() {
        bail!("reseal put into qcow2 failed");
    }
    let rss_q = peak_kib(&mem_q);
    println!(
        "  reseal put {mib} MiB into qcow2: {:.2} s, peak RSS {} MiB",
        q_time.as_secs_f64(),
        rss_q / 1024
    );
    ctx.report.push(format!(
        "put of a {mib} MiB file into a qcow2 image: reseal {:.2} s, peak RSS {} MiB",
        q_time.as_secs_f64(),
        rss_q / 1024
    ));
    let _ = std::fs::remove_file(&qcow);
    let _ = std::fs::remove_dir_all(ctx_journal(&qcow));
    full_clone_memory(ctx, &local)?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Goal (e) for clones: `reseal clone --full` of a Windows-like volume (10,000 files, from the
/// generalize bench's generator) to raw and to qcow2, once as built and once holding the
/// pseudo-random file `data` (put into it first): peak RSS must not grow with file data.
fn full_clone_memory(ctx: &mut Ctx, data: &Path) -> Result<()> {
    let driver = build_example("generalize_bench")?;
    let dir = ctx.dir.join("fullclone");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let data_mib = std::fs::metadata(data)?.len() >> 20;
    let size_mib = (data_mib + 1024).to_string();
    let plain = dir.join("win.img");
    let st = Command::new(&driver)
        .arg("build")
        .arg(&plain)
        .args(["10000", "500", "12000", "11500", &size_mib])
        .stdout(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("building the full-clone volume failed");
    }
    let with_data = dir.join("win-data.img");
    cp_sparse(&plain, &with_data);
    let st = Command::new(&ctx.reseal)
        .arg("put")
        .arg(&with_data)
        .arg(data)
        .arg("/big.bin")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    let _ = std::fs::remove_dir_all(ctx_journal(&with_data));
    if !st.success() {
        bail!("reseal put into the full-clone volume failed");
    }
    let mut rows = Vec::new();
    for (label, base) in [("as built", &plain), ("with the data file", &with_data)] {
        for format in ["raw", "qcow2"] {
            let out = dir.join(format!("clone.{format}"));
            let mem = dir.join("clone.rss");
            let _ = std::fs::remove_file(&out);
            let _ = std::fs::remove_file(&mem);
            let t = Instant::now();
            let st = Command::new("/usr/bin/time")
                .args(["-f", "%M", "-o"])
                .arg(&mem)
                .arg(&ctx.reseal)
                .arg("clone")
                .arg(base)
                .arg(&out)
                .args(["--full", "--format", format, "--computer-name", "FULL-1"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()?;
            let el = t.elapsed();
            if !st.success() {
                bail!("reseal clone --full --format {format} ({label}) failed");
            }
            let kib = peak_kib(&mem);
            println!(
                "  clone --full --format {format}, volume {label}: {:.2} s, peak RSS {} MiB",
                el.as_secs_f64(),
                kib / 1024
            );
            rows.push(format!("{format} {label}: {} MiB", kib / 1024));
            let _ = std::fs::remove_file(&out);
            let _ = std::fs::remove_dir_all(ctx_journal(&out));
        }
    }
    ctx.report.push(format!(
        "clone --full of a 10,000-file Windows-like volume, without and with a {data_mib} MiB file: peak RSS {}",
        rows.join(", ")
    ));
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
