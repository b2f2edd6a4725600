//! `reseal clone BASE OUT`: mint unique machines from one golden image. OUT is created as a
//! differencing child of BASE (or, with `--full`, a standalone copy) and `generalize` writes
//! its changes into OUT only: BASE and its parents are opened read-only under shared locks and
//! never change, so any number of `reseal clone` runs can share one base at once.
//!
//! `{n}` in OUT and in `--computer-name` is the clone's number, 1-based (`{n:03}` pads it to
//! three digits); `--count N` makes N clones in one run, each with its own random SID and name.
//! A clone that fails is removed; clones made before it stay.

use anyhow::{bail, Context, Result};
use reseal_disk::children::{create_child, ChildFormat};
use reseal_disk::convert::TargetFormat;
use reseal_disk::{Access, ImageFormat};
use reseal_windows::generalize::{generalize_prepared, prepare, Prepared, Report};
use std::path::{Path, PathBuf};

/// Child container formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CloneFormat {
    /// VHD differencing disk (parent VHD).
    Vhd,
    /// VHDX differencing disk (parent VHDX).
    Vhdx,
    /// qcow2 overlay (backing file: the base, in any format).
    Qcow2,
    /// Raw (sparse) file: only with `--full`.
    Raw,
}

/// Command-line options of `reseal clone`.
#[derive(Debug, Clone, clap::Args)]
pub struct CloneArgs {
    /// The golden image (never written).
    pub base: PathBuf,
    /// The clone to create; `{n}` / `{n:03}` is replaced by the clone's number.
    pub out: String,
    /// Container of the clone (default: the base's own: a VHD child for a VHD base, a VHDX
    /// child for a VHDX base, a qcow2 overlay for a qcow2 or raw base).
    #[arg(long, value_enum)]
    pub format: Option<CloneFormat>,
    /// Write each clone as a standalone copy of BASE (sparse-aware, like `reseal convert`)
    /// instead of a differencing child: `--format raw|vhd|vhdx|qcow2` (default: the base's
    /// own family, raw for qcow2 and raw bases).
    #[arg(long)]
    pub full: bool,
    /// How many clones to make (OUT must then contain `{n}`).
    #[arg(long, default_value_t = 1)]
    pub count: u32,
    /// Print one JSON report per clone (a JSON array).
    #[arg(long)]
    pub json: bool,
    /// What to change, as for `reseal generalize` (`--new-sid` other than `random` only with
    /// `--count 1`).
    #[command(flatten)]
    pub change: crate::generalize::ChangeArgs,
}

/// `text` with every `{n}` / `{n:W}` / `{n:0W}` replaced by `n` (padded with zeros to W).
///
/// # Errors
/// An unterminated or malformed `{n…}`.
pub fn expand(text: &str, n: u32) -> Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{n") {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 2..];
        let Some(end) = tail.find('}') else {
            bail!("{text:?}: `{{n` without `}}`");
        };
        let spec = &tail[..end];
        let width = match spec.strip_prefix(':') {
            None if spec.is_empty() => 0,
            Some(w) => w
                .trim_start_matches('0')
                .parse::<usize>()
                .ok()
                .filter(|w| *w <= 12)
                .with_context(|| format!("{text:?}: bad width in {{n{spec}}}"))?,
            None => bail!("{text:?}: write {{n}} or {{n:03}}, not {{n{spec}}}"),
        };
        out.push_str(&format!("{n:0width$}"));
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn child_format(base: ImageFormat, asked: Option<CloneFormat>) -> Result<ChildFormat> {
    Ok(match asked {
        Some(CloneFormat::Vhd) => ChildFormat::Vhd,
        Some(CloneFormat::Vhdx) => ChildFormat::Vhdx,
        Some(CloneFormat::Qcow2) => ChildFormat::Qcow2,
        Some(CloneFormat::Raw) => bail!("--format raw makes standalone copies: add --full"),
        None => ChildFormat::for_base(base).with_context(|| {
            format!(
                "a {base:?} base cannot have a differencing child here: convert it first \
                 (`reseal convert BASE golden.vhdx --format vhdx`)"
            )
        })?,
    })
}

fn full_format(base: ImageFormat, asked: Option<CloneFormat>) -> Result<TargetFormat> {
    Ok(match asked {
        Some(CloneFormat::Raw) => TargetFormat::Raw,
        Some(CloneFormat::Vhd) => TargetFormat::VhdDynamic,
        Some(CloneFormat::Vhdx) => TargetFormat::Vhdx,
        Some(CloneFormat::Qcow2) => TargetFormat::Qcow2,
        None => match base {
            ImageFormat::VhdFixed | ImageFormat::VhdDynamic | ImageFormat::VhdDifferencing => {
                TargetFormat::VhdDynamic
            }
            ImageFormat::VhdxFixed | ImageFormat::VhdxDynamic | ImageFormat::VhdxDifferencing => {
                TargetFormat::Vhdx
            }
            ImageFormat::Raw | ImageFormat::Qcow2 => TargetFormat::Raw,
        },
    })
}

/// Remove a clone that failed (the file and its journal directory); it did not exist before.
fn remove_clone(out: &Path) {
    let _ = std::fs::remove_file(out);
    let _ = std::fs::remove_dir_all(reseal_disk::journal::journal_dir(out));
}

fn make_one(
    a: &CloneArgs,
    plan: &Prepared,
    n: u32,
    format: ChildFormat,
    full: Option<TargetFormat>,
) -> Result<(PathBuf, Report)> {
    let out = PathBuf::from(expand(&a.out, n)?);
    match full {
        Some(target) => {
            if out.exists() {
                bail!("{} exists; reseal clone never overwrites", out.display());
            }
            let base = crate::open::open(&a.base, Access::ReadOnly, false)?;
            let copied = reseal_disk::convert::convert(&base, &out, target, &mut |_, _| {});
            copied.with_context(|| format!("copying {} to {}", a.base.display(), out.display()))?;
        }
        None => {
            create_child(&a.base, &out, format).with_context(|| {
                format!(
                    "creating {} as a child of {}",
                    out.display(),
                    a.base.display()
                )
            })?;
        }
    }
    let result = (|| -> Result<Report> {
        let mut o = a.change.options()?;
        o.computer_name = a
            .change
            .computer_name
            .as_deref()
            .map(|c| expand(c, n))
            .transpose()?;
        let mut img = crate::open::open(&out, Access::ReadWrite, false)?;
        let report = generalize_prepared(&mut img, plan, &o, &mut |_| {}).context("generalize")?;
        img.commit()?;
        drop(img);
        // The clone did not exist before this run: undoing it means deleting it, so its undo
        // history (copies of the base's bytes) is not kept.
        let _ = std::fs::remove_dir_all(reseal_disk::journal::journal_dir(&out));
        Ok(report)
    })();
    match result {
        Ok(r) => Ok((out, r)),
        Err(e) => {
            remove_clone(&out);
            Err(e.context(format!("clone {n} ({})", out.display())))
        }
    }
}

/// `reseal clone`.
pub fn run(a: &CloneArgs) -> Result<()> {
    if a.count == 0 {
        bail!("--count must be at least 1");
    }
    if a.count > 1 && !a.out.contains("{n") {
        bail!(
            "--count {} needs {{n}} in OUT so that every clone gets its own file",
            a.count
        );
    }
    if a.count > 1 && a.change.djoin_blob.is_some() {
        bail!(
            "--djoin-blob with --count {}: every clone would join with the same machine account",
            a.count
        );
    }
    if a.count > 1 && !a.change.random_sid() {
        bail!(
            "--new-sid with --count {}: clones would share one SID",
            a.count
        );
    }
    if a.count > 1
        && a.change
            .computer_name
            .as_deref()
            .is_some_and(|c| !c.contains("{n") && !c.eq_ignore_ascii_case("random"))
    {
        bail!(
            "--count {} needs {{n}} in --computer-name so that every clone gets its own name",
            a.count
        );
    }
    // Read and plan once: every clone starts as the base's virtual disk, so the install, its
    // refusals and the parsed hives are the same for all of them (only the SID and the name
    // differ); each clone then runs the rest of `generalize` on its own image.
    let (base_format, plan) = {
        let mut img = crate::open::open(&a.base, Access::ReadOnly, false)?;
        let mut o = a.change.options()?;
        o.computer_name = None; // per clone (a template here)
        let plan = prepare(&mut img, &o, &mut |_| {})
            .with_context(|| format!("reading {}", a.base.display()))?;
        (img.format(), plan)
    };
    let full = a
        .full
        .then(|| full_format(base_format, a.format))
        .transpose()?;
    let format = if full.is_some() {
        ChildFormat::Vhdx // unused for standalone copies
    } else {
        child_format(base_format, a.format)?
    };
    let mut docs = Vec::new();
    for n in 1..=a.count {
        let (out, r) = make_one(a, &plan, n, format, full)?;
        if a.json {
            let mut doc = crate::generalize::report_json(&r)?;
            doc["clone"] = serde_json::json!(n);
            doc["output"] = serde_json::json!(out);
            doc["base"] = serde_json::json!(a.base);
            // The container of the clone; `standalone`: a full copy (--full), else a
            // differencing child of BASE.
            doc["format"] = serde_json::json!(match full {
                Some(TargetFormat::Raw) => "raw",
                Some(TargetFormat::VhdDynamic | TargetFormat::VhdFixed) => "vhd",
                Some(TargetFormat::Vhdx | TargetFormat::VhdxFixed) => "vhdx",
                Some(TargetFormat::Qcow2) => "qcow2",
                None => format.name(),
            });
            doc["standalone"] = serde_json::json!(full.is_some());
            docs.push(doc);
        } else {
            outln!(
                "clone {n}: {} ({} {}): machine SID {} -> {}{}",
                out.display(),
                if full.is_some() {
                    "copy of"
                } else {
                    "child of"
                },
                a.base.display(),
                r.old_sid,
                r.new_sid,
                r.new_computer_name
                    .as_deref()
                    .map(|c| format!(", computer name {c}"))
                    .unwrap_or_default()
            );
            for w in &r.warnings {
                outln!("  warning: {w}");
            }
        }
    }
    if a.json {
        let doc = serde_json::json!({ "schema_version": 1, "clones": docs });
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::expand;

    #[test]
    fn templates() {
        assert_eq!(expand("w{n}.vhdx", 7).unwrap(), "w7.vhdx");
        assert_eq!(expand("w{n:03}.vhdx", 7).unwrap(), "w007.vhdx");
        assert_eq!(expand("w{n:3}", 12).unwrap(), "w012");
        assert_eq!(expand("PC-{n:02}-{n}", 5).unwrap(), "PC-05-5");
        assert_eq!(expand("plain", 5).unwrap(), "plain");
        assert!(expand("w{n", 1).is_err());
        assert!(expand("w{nx}", 1).is_err());
    }
}
