//! `reseal sid IMAGE --from DOMAIN --to DOMAIN`: replace one account domain in every NTFS
//! descriptor, `$Quota` and SID-named file of a data volume (no Windows install on it), as one
//! journalled change (`reseal undo IMAGE` reverts it).

use anyhow::{Context, Result};
use reseal_security::Sid;
use reseal_windows::volume_sid::change_volume_sid;
use std::path::PathBuf;

/// Command-line options of `reseal sid`.
#[derive(Debug, Clone, clap::Args)]
pub struct SidArgs {
    /// Disk image (or a bare NTFS volume).
    pub image: PathBuf,
    /// The account domain to replace, `S-1-5-21-A-B-C`.
    #[arg(long)]
    pub from: String,
    /// Its replacement, `S-1-5-21-X-Y-Z`.
    #[arg(long)]
    pub to: String,
    /// Partition (default: the only one).
    #[arg(short, long)]
    pub partition: Option<u32>,
    /// Report what would change and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write an image file without write permission bits.
    #[arg(long)]
    pub force: bool,
}

fn domain(flag: &str, s: &str) -> Result<Sid> {
    s.parse::<Sid>().with_context(|| format!("{flag} {s:?}"))
}

/// `reseal sid`.
pub fn run(a: &SidArgs) -> Result<()> {
    let from = domain("--from", &a.from)?;
    let to = domain("--to", &a.to)?;
    let mut img = crate::open::open(&a.image, crate::open::write_access(a.dry_run), a.force)?;
    let r = change_volume_sid(&mut img, &from, &to, a.partition).context("sid")?;
    if a.json {
        let mut doc = serde_json::to_value(&r)?;
        doc["schema_version"] = serde_json::json!(1);
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        outln!("partition {}: {} -> {}", r.partition, r.from, r.to);
        for w in &r.warnings {
            outln!("warning: {w}");
        }
        for r in &r.renamed {
            outln!("  renamed {} -> {}", r.old, r.new);
        }
        outln!(
            "{} descriptor(s), {} $Quota SID(s), {} name(s)",
            r.descriptors,
            r.quota_sids,
            r.renamed.len()
        );
    }
    let changes = img.changes();
    let bytes: u64 = changes.iter().map(|c| c.end - c.start).sum();
    if a.dry_run {
        eprintln!(
            "dry run: would write {bytes} bytes in {} ranges of {}",
            changes.len(),
            a.image.display()
        );
        return Ok(());
    }
    let rep = img.commit()?;
    reseal_disk::journal::record_operation(
        &rep.undo_path,
        &format!("sid: {} -> {}", r.from, r.to),
    )?;
    eprintln!(
        "sid: wrote {} bytes in {} ranges; undo with `reseal undo {}`",
        rep.bytes,
        rep.ranges,
        a.image.display()
    );
    Ok(())
}
