//! `reseal check IMAGE`: render the read-only consistency report of
//! [`reseal_windows::check::check_image`] (container, partition table, NTFS volumes, hives).
//! Exit status 0 when clean, [`crate::out::EXIT_PROBLEMS`] when errors or leaks were found.

use anyhow::{bail, Result};
use reseal_disk::{Access, OpenOptions};
use reseal_windows::check::{CheckProblem, CheckReport};
use std::path::Path;

/// Output forms, as qemu-img check's `--output`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Text.
    Human,
    /// JSON (schema docs/schema/check.schema.json).
    Json,
}

fn problems(indent: &str, ps: &[CheckProblem]) {
    for p in ps {
        let sev = match p.severity {
            reseal_windows::check::CheckSeverity::Error => "ERROR",
            reseal_windows::check::CheckSeverity::Leak => "LEAK",
            reseal_windows::check::CheckSeverity::Warning => "warning",
        };
        outln!("{indent}{sev}: {p}");
    }
}

fn print_text(r: &CheckReport) {
    let c = &r.container;
    outln!("Container {}", c.path);
    outln!("  format        {}", c.format.as_deref().unwrap_or("-"));
    if let Some(v) = c.virtual_size {
        outln!("  virtual size  {v} bytes");
    }
    for b in &c.backing_chain {
        outln!("  backing file  {b}");
    }
    if c.clusters_checked > 0 {
        outln!("  refcounts     {} clusters compared", c.clusters_checked);
    }
    problems("  ", &c.problems);
    if let Some(t) = &r.partition_table {
        outln!("Partition table");
        outln!("  scheme        {} ({} partitions)", t.scheme, t.partitions);
        problems("  ", &t.problems);
    }
    for v in &r.ntfs {
        outln!("NTFS volume (partition {})", v.partition);
        outln!(
            "  state         dirty {} hibernated {} $LogFile {}",
            v.dirty.map_or("-".into(), |d| d.to_string()),
            v.hibernated.map_or("-".into(), |d| d.to_string()),
            v.logfile.as_deref().unwrap_or("-")
        );
        outln!(
            "  boot backup   {}",
            v.boot_backup.as_deref().unwrap_or("-")
        );
        outln!(
            "  MFT           {} records checked, {} in use, {} fixup failures, {} unparsable; $MFTMirr {} records, {} differ",
            v.records_checked,
            v.records_in_use,
            v.fixup_failures,
            v.record_errors,
            v.mirror_records,
            v.mirror_mismatches.len()
        );
        outln!(
            "  summary       {}",
            if v.consistent {
                "consistent"
            } else {
                "INCONSISTENT"
            }
        );
        problems("  ", &v.problems);
    }
    for o in &r.other_volumes {
        outln!("Partition {}: {}", o.partition, o.filesystem);
        problems("  ", &o.problems);
    }
    if !r.hives.is_empty() {
        outln!("Hives");
    }
    for h in &r.hives {
        outln!(
            "  {:<10} {:>9} bytes  checksum {}  seq {}/{}{}",
            h.name,
            h.size,
            match h.checksum_ok {
                Some(true) => "ok",
                Some(false) => "BAD",
                None => "-",
            },
            h.seq1.map_or("-".into(), |s| s.to_string()),
            h.seq2.map_or("-".into(), |s| s.to_string()),
            if h.logs_pending {
                "  (logs pending)"
            } else {
                ""
            }
        );
        problems("    ", &h.problems);
    }
    let s = &r.summary;
    if s.clean {
        outln!(
            "No errors were found on the image ({} warnings).",
            s.warnings
        );
    } else {
        outln!(
            "{} errors and {} leaks were found on the image ({} warnings).",
            s.errors,
            s.leaks,
            s.warnings
        );
    }
}

/// `reseal check`. Returns whether the image is clean.
pub fn run(image: &Path, output: Output) -> Result<bool> {
    if !image.exists() {
        bail!("opening {}: no such file", image.display());
    }
    let opts = OpenOptions::new(Access::ReadOnly).lock_timeout(crate::open::lock_timeout());
    let r = reseal_windows::check::check_image(image, crate::open::image_format(), &opts);
    match output {
        Output::Json => {
            let mut v = serde_json::to_value(&r)?;
            v["schema_version"] = serde_json::json!(1);
            outln!("{}", serde_json::to_string_pretty(&v)?);
        }
        Output::Human => crate::out::buffered(|| print_text(&r)),
    }
    Ok(r.summary.clean)
}
