//! `reseal generalize IMAGE`: a new machine SID (and optionally computer name) everywhere in
//! the Windows install of an image, through `reseal_windows::generalize`. The writes are staged
//! in the image journal and committed atomically with an undo file (`reseal undo IMAGE`), or
//! discarded for `--dry-run`, which prints the same report. A spinner with the current stage is
//! shown while it runs when standard error is a terminal.

use anyhow::{bail, Context, Result};
use reseal_security::Sid;
use reseal_windows::generalize::{
    generalize_with_progress, Change, NewSid, Options, Progress, Report,
};
use std::io::IsTerminal;
use std::path::Path;

/// Command-line options of `reseal generalize`.
#[derive(Debug, Clone, clap::Args)]
pub struct GeneralizeArgs {
    /// Disk image (raw, VHD or VHDX).
    pub image: std::path::PathBuf,
    /// `random`, or the new account-domain SID `S-1-5-21-A-B-C`.
    #[arg(long, default_value = "random")]
    pub new_sid: String,
    /// New computer name (NetBIOS: at most 15 ASCII letters, digits or '-').
    #[arg(long)]
    pub computer_name: Option<String>,
    /// Partition of the Windows install (default: the only one).
    #[arg(short, long)]
    pub partition: Option<u32>,
    /// Print the report and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Go on although a volume of the image looks BitLocker-encrypted.
    #[arg(long)]
    pub force_bitlocker: bool,
    /// Go on although the volume is dirty, hibernated or left by Fast Startup.
    #[arg(long)]
    pub force_volume_state: bool,
    /// Go on although a hive is dirty and its logs are unusable.
    #[arg(long)]
    pub force_dirty_hive: bool,
    /// Go on although TxR holds pending registry transactions.
    #[arg(long)]
    pub force_txr: bool,
    /// Go on although the machine is domain-joined (the domain SID is never rewritten).
    #[arg(long)]
    pub force_domain_joined: bool,
    /// Write an image file that has no write permission bits (a protected golden image).
    #[arg(long)]
    pub force_write_protected: bool,
    /// Do not zero the free cells and cell slack of the hives (old SIDs may survive there).
    #[arg(long)]
    pub no_scrub: bool,
}

fn options(a: &GeneralizeArgs) -> Result<Options> {
    let mut o = Options::default();
    o.new_sid = if a.new_sid.eq_ignore_ascii_case("random") {
        NewSid::Random
    } else {
        let s: Sid = a
            .new_sid
            .parse()
            .with_context(|| format!("--new-sid {:?}", a.new_sid))?;
        if !s.is_account_domain() {
            bail!("--new-sid {s} is not an account-domain SID S-1-5-21-A-B-C");
        }
        NewSid::Given(s)
    };
    o.computer_name = a.computer_name.clone();
    o.partition = a.partition;
    o.dry_run = a.dry_run;
    o.force_bitlocker = a.force_bitlocker;
    o.force_volume_state = a.force_volume_state;
    o.force_dirty_hive = a.force_dirty_hive;
    o.force_txr = a.force_txr;
    o.force_domain_joined = a.force_domain_joined;
    o.no_scrub = a.no_scrub;
    Ok(o)
}

fn print_text(r: &Report) {
    outln!(
        "partition {}: machine SID {} -> {}",
        r.partition,
        r.old_sid,
        r.new_sid
    );
    if let Some(n) = &r.new_computer_name {
        outln!(
            "computer name {} -> {n}",
            r.old_computer_name.as_deref().unwrap_or("?")
        );
    }
    for w in &r.warnings {
        outln!("warning: {w}");
    }
    for c in &r.changes {
        match c {
            Change::HiveDescriptor { hive, cell, sids } => {
                outln!("  {hive}: sk {cell:#x}: {sids} SID(s)")
            }
            Change::KeyRenamed { hive, old, new } => outln!("  {hive}: key {old} -> {new}"),
            Change::Value {
                hive,
                key,
                value,
                new_name,
                sids,
                ..
            } => {
                if value == new_name {
                    outln!("  {hive}: {key} [{value}]: {sids} SID(s)")
                } else {
                    outln!("  {hive}: {key} [{value}] -> [{new_name}]: {sids} SID(s)")
                }
            }
            Change::NtfsDescriptor {
                id,
                sids,
                files,
                example,
            } => match example {
                Some(e) if *files > 1 => outln!(
                    "  NTFS $Secure id {id}: {sids} SID(s), used by {files} files ({e}, ...)"
                ),
                Some(e) => outln!("  NTFS $Secure id {id}: {sids} SID(s), used by {e}"),
                None => outln!("  NTFS $Secure id {id}: {sids} SID(s), used by no file"),
            },
            Change::NtfsFileDescriptor { path, record, sids } => {
                outln!("  NTFS descriptor of {path} (record {record}): {sids} SID(s)")
            }
            Change::Quota { count } => outln!("  NTFS $Quota: {count} SID(s)"),
            Change::FileRenamed { old, new } => outln!("  file {old} -> {new}"),
            Change::FileRewritten {
                path,
                sids,
                old_len,
                new_len,
            } => outln!("  file {path}: {sids} SID(s), {old_len} -> {new_len} bytes"),
            Change::HiveWritten {
                path,
                bytes,
                old_len,
                new_len,
            } => outln!("  hive {path}: {bytes} bytes written, {old_len} -> {new_len} bytes"),
            Change::ClassName {
                hive,
                key,
                old,
                new,
            } => outln!("  {hive}: {key} class {old:?} -> {new:?}"),
            Change::LogInvalidated { path } => outln!("  log {path} invalidated"),
            Change::HiveScrubbed {
                hive,
                free_cells,
                slack_cells,
                bytes,
            } => outln!(
                "  {hive}: scrubbed {bytes} byte(s) ({free_cells} free cell(s), {slack_cells} cell slack(s))"
            ),
            Change::ComputerName {
                hive,
                key,
                value,
                old,
                new,
            } => outln!(
                "  {hive}: {key} [{value}]: {} -> {new}",
                old.as_deref().unwrap_or("?")
            ),
            _ => outln!("  {c:?}"),
        }
    }
    let c = &r.counts;
    outln!(
        "{} hive descriptor(s), {} key(s) renamed, {} value(s), {} NTFS descriptor(s), {} $Quota \
         SID(s), {} file(s) renamed, {} file(s) rewritten, {} hive(s) written, {} computer-name \
         value(s)",
        c.hive_descriptors,
        c.keys_renamed,
        c.values,
        c.ntfs_descriptors,
        c.quota_sids,
        c.files_renamed,
        c.files_rewritten,
        c.hives_written,
        c.computer_name_values
    );
}

/// One bar on standard error (when it is a terminal), restyled at each stage: bytes for the
/// hive rewrite, items where the stage has a count, a spinner where it has none.
struct StageBar {
    bar: Option<indicatif::ProgressBar>,
    stage: std::cell::Cell<&'static str>,
}

impl StageBar {
    fn new() -> Self {
        Self {
            bar: std::io::stderr()
                .is_terminal()
                .then(indicatif::ProgressBar::hidden),
            stage: std::cell::Cell::new(""),
        }
    }

    fn update(&self, p: &Progress) {
        let Some(b) = &self.bar else { return };
        if self.stage.get() != p.stage {
            self.stage.set(p.stage);
            let template = if p.total == 0 {
                "{spinner} {msg}"
            } else if p.bytes {
                "{msg:18} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}"
            } else {
                "{msg:18} [{bar:40}] {pos}/{len}"
            };
            b.set_style(
                indicatif::ProgressStyle::with_template(template)
                    .expect("invariant: the templates are valid")
                    .progress_chars("=> "),
            );
            b.set_message(match p.stage {
                "scan" => "finding Windows",
                "read-hives" => "reading hives",
                "hives" => "rewriting hives",
                "write-hives" => "writing hives",
                "descriptors" => "NTFS descriptors",
                "quota" => "$Quota",
                "tasks" => "task files",
                "names" => "SID-named files",
                other => other,
            });
            b.reset();
            b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            if p.total == 0 {
                b.enable_steady_tick(std::time::Duration::from_millis(120));
            } else {
                b.disable_steady_tick();
            }
        }
        b.set_length(p.total);
        b.set_position(p.done);
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

/// `reseal generalize`.
pub fn run(a: &GeneralizeArgs) -> Result<()> {
    let o = options(a)?;
    let image: &Path = &a.image;
    let mut img = crate::open::open(
        image,
        crate::open::write_access(a.dry_run),
        a.force_write_protected,
    )?;
    let bar = StageBar::new();
    let result = generalize_with_progress(&mut img, &o, &mut |p: Progress| bar.update(&p));
    bar.finish();
    let report = match result {
        Ok(r) => r,
        Err(e) => {
            // Dropping the image drops the staged writes.
            drop(img);
            return Err(e).context("generalize");
        }
    };
    if a.json {
        let mut doc = serde_json::to_value(&report)?;
        doc["schema_version"] = serde_json::json!(1);
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_text(&report);
    }
    let changes = img.changes();
    let bytes: u64 = changes.iter().map(|r| r.end - r.start).sum();
    if a.dry_run {
        eprintln!(
            "dry run: would write {bytes} bytes in {} ranges of {}",
            changes.len(),
            image.display()
        );
        return Ok(());
    }
    let rep = img.commit()?;
    eprintln!(
        "generalize: wrote {} bytes in {} ranges; undo with `reseal undo {}`",
        rep.bytes,
        rep.ranges,
        image.display()
    );
    Ok(())
}
