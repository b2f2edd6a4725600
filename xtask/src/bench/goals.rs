//! Issue 16's goals (a)–(c) as bench parts, each printing reseal's figure next to the peer's from
//! the same run:
//!
//! - `hivewalk` (a): full walk of every clean corpus hive and the generated 120k-key hive,
//!   `reseal reg export -o /dev/null` against `hivexml`; goal reseal/hivexml ≤ 0.5 per hive.
//! - `regsid` (b): `reseal reg sid HIVE --from OLD --to NEW` against Samba's
//!   `profiles -c OLD -n NEW` on copies of corpus NTUSER.DAT and SYSTEM hives; goal
//!   profiles/reseal ≥ 1000, and what each tool keeps (keys, values, walk bytes) compared with
//!   the original through `hivexml`.
//! - `volsid` (c): `reseal sid VOLUME --from --to` against the `ntfssecaudit -b` / edit /
//!   `ntfssecaudit -s` pipeline on the same bare volume (50k and 300k files); goal ≥ 40; both
//!   results pass `ntfssecaudit -a`.

use anyhow::{bail, Context, Result};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::{
    build_example, corpus_copy, cp_sparse, ctx_journal, large_hive, time_cmd, time_runs, Ctx,
    NEW_SID, OLD_SID, PY_REWRITE_BACKUP,
};

/// The first `n` bytes of a corpus file's content (`.xz` decompressed by `xz -dc`).
fn corpus_head(path: &Path, n: usize) -> Option<Vec<u8>> {
    let name = path.to_string_lossy();
    let bytes = if name.ends_with(".xz") {
        Command::new("xz")
            .arg("-dc")
            .arg(path)
            .stderr(Stdio::null())
            .output()
            .ok()?
            .stdout
    } else if name.ends_with(".gz")
        || name.ends_with(".bz2")
        || name.ends_with(".zip")
        || name.ends_with(".tgz")
    {
        // Disk images and NTFS pieces: no hive is stored with these compressions.
        return None;
    } else {
        let mut f = std::fs::File::open(path).ok()?;
        let mut b = vec![0u8; n];
        let got = std::io::Read::read(&mut f, &mut b).ok()?;
        b.truncate(got);
        b
    };
    Some(bytes.into_iter().take(n).collect())
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().expect("4 bytes"))
}

/// Every clean primary hive of the corpus (`regf`, file type 0, sequence numbers equal), as
/// corpus-relative paths, without the damaged and log-replay test sets (`yarp/`, names with
/// `corrupt`). Dirty primaries are listed separately (they are walked as they are, without
/// their logs, when both tools read them).
fn corpus_hives() -> Result<(Vec<String>, Vec<String>)> {
    let root = crate::corpus_dir();
    let mut clean = Vec::new();
    let mut dirty = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
            let p = e?.path();
            let rel = p.strip_prefix(&root)?.to_string_lossy().to_string();
            if rel.starts_with("yarp") || rel.to_lowercase().contains("corrupt") {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let Some(h) = corpus_head(&p, 4096) else {
                continue;
            };
            if h.len() < 512 || &h[..4] != b"regf" || u32_at(&h, 28) != 0 {
                continue;
            }
            if u32_at(&h, 4) == u32_at(&h, 8) {
                clean.push(rel);
            } else {
                dirty.push(rel);
            }
        }
    }
    clean.sort();
    dirty.sort();
    Ok((clean, dirty))
}

/// A corpus file decompressed into `target/bench/walk/`, named after its corpus path (several
/// corpus hives share a file name).
fn corpus_copy_rel(ctx: &Ctx, rel: &str) -> Result<PathBuf> {
    let dir = ctx.dir.join("walk");
    std::fs::create_dir_all(&dir)?;
    let out = dir.join(rel.trim_end_matches(".xz").replace('/', "__"));
    if !out.is_file() {
        std::fs::write(&out, reseal_tests::corpus_bytes(rel)?)?;
    }
    Ok(out)
}

fn runs_ok(mut c: Command) -> bool {
    c.stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `bench hivewalk`: goal (a).
pub(super) fn bench_hivewalk(ctx: &mut Ctx) -> Result<()> {
    let (clean, dirty) = corpus_hives()?;
    let mut hives: Vec<(String, PathBuf)> = Vec::new();
    for rel in &clean {
        hives.push((rel.clone(), corpus_copy_rel(ctx, rel)?));
    }
    let system = corpus_copy(ctx, "regipy/SYSTEM.xz")?;
    let large = large_hive(ctx, &system)?;
    hives.push((
        "generated: Win7 SYSTEM + 120k keys / 200k values".into(),
        large,
    ));
    ctx.report.push(format!(
        "hivewalk: {} clean corpus hives (yarp/ and corrupt* left out; dirty primaries not \
         walked: {})",
        clean.len(),
        dirty.join(", ")
    ));
    ctx.report.push(
        "hivewalk | hive | size KiB | reseal reg export s | hivexml s | reseal/hivexml | goal <= 0.5"
            .into(),
    );
    let mut met = 0;
    let mut measured = 0;
    for (label, hive) in &hives {
        let size = std::fs::metadata(hive)?.len();
        // Both tools must read the hive at all (hivexml refuses some old or odd hives).
        let mut e = Command::new(&ctx.reseal);
        e.args(["reg", "export"])
            .arg(hive)
            .args(["-o", "/dev/null"]);
        let ours_ok = runs_ok(e);
        let mut x = Command::new("hivexml");
        x.arg(hive);
        let peer_ok = runs_ok(x);
        if !ours_ok || !peer_ok {
            ctx.report.push(format!(
                "hivewalk | {label} | {} | {} | {} | – | not measured",
                size >> 10,
                if ours_ok { "ok" } else { "fails" },
                if peer_ok { "ok" } else { "fails" },
            ));
            continue;
        }
        // Small hives take milliseconds: more runs for a stable median.
        let runs = if size < (4 << 20) { 21 } else { 5 };
        let (r, h) = (ctx.reseal.clone(), hive.clone());
        let ours = time_runs(
            runs,
            true,
            &format!("reseal reg export {label}"),
            &|| {
                let mut c = Command::new(&r);
                c.args(["reg", "export"]).arg(&h).args(["-o", "/dev/null"]);
                c
            },
            &|| {},
        )?;
        let h2 = hive.clone();
        let peer = time_runs(
            runs,
            true,
            &format!("hivexml {label}"),
            &|| {
                let mut c = Command::new("hivexml");
                c.arg(&h2);
                c
            },
            &|| {},
        )?;
        let q = ours.as_secs_f64() / peer.as_secs_f64().max(1e-9);
        measured += 1;
        if q <= 0.5 {
            met += 1;
        }
        ctx.report.push(format!(
            "hivewalk | {label} | {} | {:.4} | {:.4} | {q:.2} | {}",
            size >> 10,
            ours.as_secs_f64(),
            peer.as_secs_f64(),
            if q <= 0.5 { "met" } else { "NOT met" }
        ));
    }
    ctx.report.push(format!(
        "hivewalk: goal (a) met on {met} of {measured} hives measured"
    ));
    Ok(())
}

/// The account domain (`S-1-5-21-X-Y-Z`) most present in a hive's bytes: binary account SIDs
/// (revision 1, five sub-authorities) and binary domain SIDs (four), as descriptors and binary
/// values hold them.
fn most_present_domain(bytes: &[u8]) -> Option<(String, usize)> {
    let mut counts: HashMap<[u32; 3], usize> = HashMap::new();
    for n in [4u8, 5] {
        let pat = [1u8, n, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0];
        let mut i = 0;
        while let Some(p) = memfind(&bytes[i..], &pat) {
            let at = i + p + pat.len();
            if at + 12 <= bytes.len() {
                let d = [
                    u32_at(bytes, at),
                    u32_at(bytes, at + 4),
                    u32_at(bytes, at + 8),
                ];
                *counts.entry(d).or_default() += 1;
            }
            i += p + 1;
        }
    }
    let (d, c) = counts.into_iter().max_by_key(|(d, c)| (*c, *d))?;
    Some((format!("S-1-5-21-{}-{}-{}", d[0], d[1], d[2]), c))
}

fn memfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A domain SID with each sub-authority's first digit changed, so every SID string keeps its
/// length (the walks before and after compare byte counts).
fn same_length_domain(old: &str) -> String {
    let parts: Vec<&str> = old.split('-').collect();
    let mut out: Vec<String> = parts[..4].iter().map(|s| s.to_string()).collect();
    for p in &parts[4..] {
        let first = if p.starts_with('1') { '2' } else { '1' };
        let rest = &p[1..];
        out.push(if p.len() == 1 {
            first.to_string()
        } else {
            format!("{first}{rest}")
        });
    }
    out.join("-")
}

/// What a `hivexml` walk of a hive shows: keys, values, and the bytes of the XML without byte
/// runs and timestamps (names and value data as hivexml encodes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Walk {
    keys: usize,
    values: usize,
    bytes: usize,
}

fn strip(mut s: &str, open: &str, close: &str) -> String {
    let mut out = String::with_capacity(s.len());
    while let Some(i) = s.find(open) {
        out.push_str(&s[..i]);
        match s[i..].find(close) {
            Some(j) => s = &s[i + j + close.len()..],
            None => {
                s = "";
            }
        }
    }
    out.push_str(s);
    out
}

fn hivexml_walk(hive: &Path) -> Result<Walk> {
    let o = Command::new("hivexml")
        .arg(hive)
        .stderr(Stdio::null())
        .output()?;
    if !o.status.success() {
        bail!("hivexml {} failed", hive.display());
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let text = strip(&text, "<byte_runs>", "</byte_runs>");
    let text = strip(&text, "<mtime>", "</mtime>");
    Ok(Walk {
        keys: text.matches("<node ").count(),
        values: text.matches("<value ").count(),
        bytes: text.len(),
    })
}

fn describe_loss(orig: Walk, after: Walk) -> String {
    if orig == after {
        return "nothing lost (same keys, values and walk bytes)".into();
    }
    format!(
        "keys {:+}, values {:+}, walk bytes {:+}",
        after.keys as i64 - orig.keys as i64,
        after.values as i64 - orig.values as i64,
        after.bytes as i64 - orig.bytes as i64
    )
}

/// `bench regsid`: goal (b).
pub(super) fn bench_regsid(ctx: &mut Ctx) -> Result<()> {
    // profiles' time grows faster than linearly with a hive's size: each run is bounded.
    let limit: u64 = std::env::var("RESEAL_BENCH_PROFILES_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(900);
    let mut list = vec![
        "regipy/NTUSER.DAT.xz",
        "plaso/regf/NTUSER.DAT",
        "regipy/SYSTEM.xz",
    ];
    if std::env::var_os("RESEAL_BENCH_SYSTEM_B").is_some() {
        list.push("regipy/SYSTEM_B.xz");
    }
    ctx.report.push(format!(
        "regsid | hive | KiB | OLD domain (binary SIDs) | reseal s | profiles s | profiles/reseal | goal >= 1000 | reseal result | profiles result (profiles run bounded at {limit} s)"
    ));
    for rel in list {
        let orig = corpus_copy_rel(ctx, rel)?;
        let bytes = std::fs::read(&orig)?;
        let Some((old, n)) = most_present_domain(&bytes) else {
            ctx.report.push(format!(
                "regsid | {rel} | no account domain SID in the hive"
            ));
            continue;
        };
        let new = same_length_domain(&old);
        let base = orig.walk_name();
        let ours_path = ctx.dir.join(format!("regsid-reseal-{base}"));
        let peer_path = ctx.dir.join(format!("regsid-profiles-{base}"));
        let (r, o1, w1, from, to) = (
            ctx.reseal.clone(),
            orig.clone(),
            ours_path.clone(),
            old.clone(),
            new.clone(),
        );
        let ours = time_cmd(
            ctx,
            &format!("reseal reg sid {rel}"),
            &|| {
                let mut c = Command::new(&r);
                c.args(["reg", "sid"])
                    .arg(&w1)
                    .args(["--from", &from, "--to", &to]);
                c.stderr(Stdio::null());
                c
            },
            &|| {
                let _ = std::fs::remove_dir_all(ctx_journal(&w1));
                let _ = std::fs::copy(&o1, &w1);
            },
        )?;
        // What reseal said it changed (one more run, untimed).
        let _ = std::fs::remove_dir_all(ctx_journal(&ours_path));
        std::fs::copy(&orig, &ours_path)?;
        let said = Command::new(&ctx.reseal)
            .args(["reg", "sid"])
            .arg(&ours_path)
            .args(["--from", &old, "--to", &new])
            .output()?;
        let said = String::from_utf8_lossy(&said.stderr)
            .lines()
            .filter(|l| l.contains("descriptor(s)"))
            .collect::<Vec<_>>()
            .join("; ");
        let _ = std::fs::remove_dir_all(ctx_journal(&ours_path));
        println!("  reseal: {said}");

        // profiles writes HIVE.new next to its input.
        std::fs::copy(&orig, &peer_path)?;
        let mut peer_new = peer_path.as_os_str().to_owned();
        peer_new.push(".new");
        let peer_new = PathBuf::from(peer_new);
        let (p2, pn, from, to) = (
            peer_path.clone(),
            peer_new.clone(),
            old.clone(),
            new.clone(),
        );
        let runs = if bytes.len() > (4 << 20) { 1 } else { 3 };
        let peer = time_runs(
            runs,
            runs > 1,
            &format!("profiles {rel}"),
            &|| {
                let mut c = Command::new("timeout");
                c.arg(limit.to_string())
                    .args(["profiles", "-c", &from, "-n", &to])
                    .arg(&p2);
                c.stderr(Stdio::null());
                c
            },
            &|| {
                let _ = std::fs::remove_file(&pn);
            },
        );
        let orig_walk = hivexml_walk(&orig)?;
        let ours_walk = hivexml_walk(&ours_path)?;
        let ours_left = residual(ctx, &ours_path, &old)?;
        let ours_res = format!(
            "{}; {ours_left} descriptor(s)/value(s) still name {old} (dry run)",
            describe_loss(orig_walk, ours_walk)
        );
        let (peer_s, q, peer_res) = match peer {
            Ok(t) => {
                let size = std::fs::metadata(&peer_new).map(|m| m.len()).unwrap_or(0);
                let res = match hivexml_walk(&peer_new) {
                    Ok(w) => format!(
                        "{}; file {} -> {} KiB; {} still naming {old}",
                        describe_loss(orig_walk, w),
                        bytes.len() >> 10,
                        size >> 10,
                        residual(ctx, &peer_new, &old)
                            .map_or_else(|e| format!("? ({e})"), |n| n.to_string())
                    ),
                    Err(e) => format!("its output does not walk: {e}"),
                };
                (
                    format!("{:.3}", t.as_secs_f64()),
                    format!("{:.0}", t.as_secs_f64() / ours.as_secs_f64().max(1e-9)),
                    res,
                )
            }
            Err(e) => (
                format!("> {limit} (or failed: {e})"),
                format!(">= {:.0}", limit as f64 / ours.as_secs_f64().max(1e-9)),
                "not finished".into(),
            ),
        };
        let met = q
            .trim_start_matches(">= ")
            .parse::<f64>()
            .is_ok_and(|v| v >= 1000.0);
        ctx.report.push(format!(
            "regsid | {rel} | {} | {old} ({n}) -> {new} | {:.4} | {peer_s} | {q} | {} | {ours_res} | {peer_res}",
            bytes.len() >> 10,
            ours.as_secs_f64(),
            if met { "met" } else { "NOT met" },
        ));
        let _ = std::fs::remove_file(&peer_new);
    }
    Ok(())
}

/// How many places of `hive` still name `old`, from `reseal reg sid --dry-run`'s summary (the
/// sum of its descriptor, key and value counts).
fn residual(ctx: &Ctx, hive: &Path, old: &str) -> Result<usize> {
    let o = Command::new(&ctx.reseal)
        .args(["reg", "sid"])
        .arg(hive)
        .args(["--from", old, "--to", NEW_SID, "--dry-run", "--no-scrub"])
        .output()?;
    let text = String::from_utf8_lossy(&o.stderr);
    let Some(line) = text.lines().find(|l| l.contains("descriptor(s)")) else {
        // reseal refused the hive (profiles' output can hold malformed cells): say why.
        bail!(
            "reseal cannot read it: {}",
            text.lines().last().unwrap_or("no output").trim()
        );
    };
    let mut total = 0;
    for w in line.split(',') {
        if let Some(n) = w
            .split_whitespace()
            .next()
            .and_then(|n| n.parse::<usize>().ok())
        {
            total += n;
        }
    }
    Ok(total)
}

trait WalkName {
    fn walk_name(&self) -> String;
}

impl WalkName for PathBuf {
    fn walk_name(&self) -> String {
        self.file_name()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default()
    }
}

/// A bare volume for `bench volsid` (cached): the Windows fixture of the generator with `files`
/// bulk files, its `SAM` moved aside so that `reseal sid` treats it as a data volume (it refuses
/// a volume with a Windows install, which `generalize` is for). `reuse` is an already built
/// image with the same parameters (bench generalize's), copied sparse when present.
fn volsid_volume(
    ctx: &Ctx,
    name: &str,
    params: &[&str],
    reuse: Option<PathBuf>,
) -> Result<PathBuf> {
    let out = ctx.dir.join(format!("volsid-{name}.img"));
    if out.is_file() {
        return Ok(out);
    }
    let tmp = ctx.dir.join(format!("volsid-{name}.tmp"));
    match reuse.filter(|p| p.is_file()) {
        Some(p) => cp_sparse(&p, &tmp),
        None => {
            let driver = build_example("generalize_bench")?;
            println!(
                "  building the {name} volume (once; cached as {})",
                out.display()
            );
            let st = Command::new(&driver)
                .arg("build")
                .arg(&tmp)
                .args(params)
                .status()?;
            if !st.success() {
                bail!("building the {name} volume failed");
            }
            let mut l = tmp.as_os_str().to_owned();
            l.push(".hives");
            let _ = std::fs::remove_file(PathBuf::from(l));
        }
    }
    let st = Command::new(&ctx.reseal)
        .arg("mv")
        .arg(&tmp)
        .args([
            "Windows/System32/config/SAM",
            "Windows/System32/config/SAM.bench-moved",
        ])
        .stdout(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("moving SAM aside on the {name} volume failed");
    }
    let _ = std::fs::remove_dir_all(ctx_journal(&tmp));
    std::fs::rename(&tmp, &out)?;
    Ok(out)
}

/// `bench volsid`: goal (c). `RESEAL_BENCH_VOLSID=50k` runs only the 50k-file volume.
pub(super) fn bench_volsid(ctx: &mut Ctx) -> Result<()> {
    let py_rewrite = ctx.dir.join("ntfs_rewrite_backup.py");
    std::fs::write(&py_rewrite, PY_REWRITE_BACKUP)?;
    let only = std::env::var("RESEAL_BENCH_VOLSID").unwrap_or_default();
    let mut cases: Vec<(&str, Vec<&str>, Option<PathBuf>)> = vec![(
        "50k",
        // bench generalize's fixture parameters.
        vec!["50000", "2500", "12000", "11500", "1024"],
        Some(ctx.dir.join("generalize-large.img")),
    )];
    if only != "50k" {
        // 300k files, 15k descriptors (the same share), small hives.
        cases.push(("300k", vec!["300000", "15000", "100", "100", "4096"], None));
    }
    ctx.report.push(
        "volsid | volume | reseal sid s | ntfssecaudit -b/edit/-s s | pipeline/reseal | goal >= 40 | reseal report"
            .into(),
    );
    for (name, params, reuse) in cases {
        let pristine = volsid_volume(ctx, name, &params, reuse)?;
        let work = ctx.dir.join(format!("volsid-{name}-work.img"));
        let (r, w, p) = (ctx.reseal.clone(), work.clone(), pristine.clone());
        let runs = if name == "50k" { 3 } else { 1 };
        let ours = time_runs(
            runs,
            true,
            &format!("reseal sid ({name})"),
            &|| {
                let mut c = Command::new(&r);
                c.arg("sid")
                    .arg(&w)
                    .args(["--from", OLD_SID, "--to", NEW_SID]);
                c
            },
            &|| cp_sparse(&p, &w),
        )?;
        reseal_tests::ntfssecaudit_clean(&work)
            .with_context(|| format!("after reseal sid on the {name} volume"))?;
        let said = Command::new(&ctx.reseal)
            .arg("sid")
            .arg(&work)
            .args(["--from", NEW_SID, "--to", OLD_SID, "--dry-run"])
            .output()?;
        let said = String::from_utf8_lossy(&said.stdout)
            .lines()
            .filter(|l| l.contains("descriptor(s)"))
            .collect::<Vec<_>>()
            .join("; ");
        let backup = ctx.dir.join(format!("volsid-{name}-backup.txt"));
        let edited = ctx.dir.join(format!("volsid-{name}-edited.txt"));
        let (w2, p2, s2) = (work.clone(), pristine.clone(), py_rewrite.clone());
        let peer = time_runs(
            runs,
            true,
            &format!("ntfssecaudit -b, edit, ntfssecaudit -s ({name})"),
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
        reseal_tests::ntfssecaudit_clean(&work)
            .with_context(|| format!("after the ntfssecaudit pipeline on the {name} volume"))?;
        // What the pipeline left naming the old domain (reseal's dry run on its result).
        let left = Command::new(&ctx.reseal)
            .arg("sid")
            .arg(&work)
            .args(["--from", OLD_SID, "--to", NEW_SID, "--dry-run"])
            .output()?;
        let left = String::from_utf8_lossy(&left.stdout)
            .lines()
            .filter(|l| l.contains("descriptor(s)"))
            .collect::<Vec<_>>()
            .join("; ");
        let q = peer.as_secs_f64() / ours.as_secs_f64().max(1e-9);
        ctx.report.push(format!(
            "volsid | {name} ({} files) | {:.3} | {:.3} | {q:.1} | {} | after reseal, a reverse dry run finds: {said}; after the pipeline, reseal's dry run still finds: {left}",
            params[0],
            ours.as_secs_f64(),
            peer.as_secs_f64(),
            if q >= 40.0 { "met" } else { "NOT met" }
        ));
        let _ = std::fs::remove_file(&backup);
        let _ = std::fs::remove_file(&edited);
        let _ = std::fs::remove_file(&work);
        let _ = std::fs::remove_dir_all(ctx_journal(&work));
    }
    Ok(())
}
