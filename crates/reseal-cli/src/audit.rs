//! `reseal audit IMAGE`: every place a SID lives on the Windows volume (default: the install's
//! machine SID and so every account SID of it), by category, from one sequential read of the
//! volume. Read-only: a shared lock, never a write.

use anyhow::{Context, Result};
use reseal_disk::Access;
use reseal_security::Sid;
use reseal_windows::audit::{audit, AuditOptions, AuditReport};
use std::path::PathBuf;

/// Command-line options of `reseal audit`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// Disk image.
    pub image: PathBuf,
    /// SID to look for (repeatable; a domain SID finds every SID below it). Default: the
    /// install's machine SID.
    #[arg(long = "sid")]
    pub sids: Vec<String>,
    /// Partition (default: the Windows install, or the only volume when --sid is given).
    #[arg(short, long)]
    pub partition: Option<u32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Exit with status 1 when a place without a documented reason to stay is found (for CI
    /// after generalize).
    #[arg(long)]
    pub fail_on_unexplained: bool,
}

fn print_text(r: &AuditReport) {
    outln!(
        "partition {}: {} place(s) of {} in {} bytes",
        r.partition,
        r.places.len(),
        r.sids.join(", "),
        r.bytes_scanned
    );
    for (c, n) in &r.counts {
        let why = c
            .residual_reason()
            .map(|w| format!(" (left alone: {w})"))
            .unwrap_or_default();
        outln!(
            "  {n:6}  {}{why}",
            serde_json::to_value(c)
                .unwrap_or_default()
                .as_str()
                .unwrap_or("?")
        );
    }
    for p in &r.places {
        let mut s = format!(
            "{:<24} {:<8} {:#012x}",
            serde_json::to_value(p.category)
                .unwrap_or_default()
                .as_str()
                .unwrap_or("?"),
            serde_json::to_value(p.encoding)
                .unwrap_or_default()
                .as_str()
                .unwrap_or("?"),
            p.offset
        );
        if let Some(path) = &p.path {
            s.push_str(&format!(" {path}"));
        } else {
            s.push_str(&format!(" (volume offset {:#x})", p.volume_offset));
        }
        if let Some(k) = &p.key {
            s.push_str(&format!(" key {k}"));
        }
        if let Some(v) = &p.value {
            s.push_str(&format!(" value {v:?}"));
        }
        s.push_str(&format!(" {}", p.sid));
        outln!("{s}");
    }
}

/// `reseal audit`.
pub fn run(a: &AuditArgs) -> Result<()> {
    let sids = a
        .sids
        .iter()
        .map(|s| s.parse::<Sid>().with_context(|| format!("--sid {s:?}")))
        .collect::<Result<Vec<_>>>()?;
    let mut img = crate::open::open(&a.image, Access::ReadOnly, false)?;
    let bar = crate::progress::Progress::bytes("scanning");
    let opts = AuditOptions {
        sids,
        partition: a.partition,
    };
    let r = audit(&mut img, &opts, &mut |done, total| bar.update(done, total));
    bar.finish();
    let r = r.context("audit")?;
    if a.json {
        let mut doc = serde_json::to_value(&r)?;
        doc["schema_version"] = serde_json::json!(1);
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        crate::out::buffered(|| print_text(&r));
    }
    if a.fail_on_unexplained && r.unexplained().next().is_some() {
        std::process::exit(1);
    }
    Ok(())
}
