//! `reseal generalize IMAGE`: the named operations of `reseal_windows::generalize` (a new
//! machine SID everywhere, a new computer name, new machine identifiers, cleanup of files a
//! clone must not inherit; `--operations` picks them, `--list-operations` lists them) on the
//! Windows install of an image. The writes are staged
//! in the image journal and committed atomically with an undo file (`reseal undo IMAGE`), or
//! discarded for `--dry-run`, which prints the same report. A spinner with the current stage is
//! shown while it runs when standard error is a terminal.

use anyhow::{bail, Context, Result};
use reseal_security::Sid;
use reseal_windows::generalize::{
    generalize_with_progress, Change, NewSid, Operation, Operations, Options, Progress, Report,
};
use std::io::IsTerminal;
use std::path::Path;

/// Command-line options of `reseal generalize`.
#[derive(Debug, Clone, clap::Args)]
pub struct GeneralizeArgs {
    /// Disk image (raw, VHD or VHDX).
    #[arg(required_unless_present = "list_operations")]
    pub image: Option<std::path::PathBuf>,
    /// List the operations (with `--json`: as JSON) and exit.
    #[arg(long)]
    pub list_operations: bool,
    #[command(flatten)]
    pub change: ChangeArgs,
    /// Print the report and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write an image file that has no write permission bits (a protected golden image).
    #[arg(long)]
    pub force_write_protected: bool,
    /// After generalizing, set local account USER's password to the content of FILE (one
    /// trailing newline dropped), as `reseal user passwd` does; repeatable. Checked before
    /// anything is written; committed as its own step after the generalize (two `reseal undo`
    /// steps).
    #[arg(long, value_name = "USER:FILE")]
    pub password: Vec<String>,
    /// After the changes (staged, so with --dry-run too), audit the volume for the old machine
    /// SID and end the report with the places left (`reseal audit`), each with why it stays.
    #[arg(long)]
    pub audit: bool,
}

/// The options `reseal generalize` and `reseal clone` share: what to change and which unsafe
/// states to go on through.
#[derive(Debug, Clone, clap::Args)]
pub struct ChangeArgs {
    /// Operations to run, comma-separated: `a,b` runs only those, `-c` removes one from the
    /// defaults (`-machine-sid` keeps the SID), `defaults` and `all` add groups.
    #[arg(long, value_name = "LIST", allow_hyphen_values = true)]
    pub operations: Option<String>,
    /// `random`, or the new account-domain SID `S-1-5-21-A-B-C`.
    #[arg(long, default_value = "random")]
    pub new_sid: String,
    /// New computer name (NetBIOS: at most 15 ASCII letters, digits or '-'); `random` makes a
    /// Sysprep-style `DESKTOP-XXXXXXX`; for `clone`, `{n}` / `{n:03}` is the clone's number.
    #[arg(long)]
    pub computer_name: Option<String>,
    /// Partition of the Windows install (default: the only one).
    #[arg(short, long)]
    pub partition: Option<u32>,
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
    /// Do not zero the free cells and cell slack of the hives (old SIDs may survive there).
    #[arg(long)]
    pub no_scrub: bool,
    /// Leave the image as Sysprep /generalize /oobe does: ImageState
    /// IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE, SYSTEM\Setup set to run windeploy (specialize
    /// and OOBE) at the next boot.
    #[arg(long)]
    pub oobe: bool,
    /// Answer file for the next boot's specialize/OOBE passes, placed as
    /// Windows\Panther\unattend.xml and named by SYSTEM\Setup\UnattendFile; checked first.
    #[arg(long, value_name = "FILE")]
    pub unattend: Option<std::path::PathBuf>,
    /// Offline domain join blob (`djoin /provision /savefile`, Samba `net offlinejoin
    /// provision`), put into the answer file's specialize pass (UnattendedJoin AccountData).
    #[arg(long, value_name = "FILE", requires = "oobe")]
    pub djoin_blob: Option<std::path::PathBuf>,
    /// File run once as LocalSystem at the next boot (.cmd .bat .ps1 .exe .com .vbs .js
    /// .wsf); repeatable, in order with --firstboot-command.
    #[arg(long, value_name = "FILE")]
    pub firstboot: Vec<std::path::PathBuf>,
    /// cmd.exe command run once as LocalSystem at the next boot; repeatable, in order with
    /// --firstboot.
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub firstboot_command: Vec<String>,
    /// Positions of --firstboot and --firstboot-command on the command line (set from the
    /// parsed matches; without them the files go first).
    #[arg(skip)]
    pub firstboot_order: Option<(Vec<usize>, Vec<usize>)>,
}

impl ChangeArgs {
    /// Remember where each --firstboot / --firstboot-command stood on the command line.
    pub fn record_firstboot_order(&mut self, m: &clap::ArgMatches) {
        let idx =
            |id: &str| -> Vec<usize> { m.indices_of(id).map(|i| i.collect()).unwrap_or_default() };
        self.firstboot_order = Some((idx("firstboot"), idx("firstboot_command")));
    }

    /// The first-boot items in command-line order, files read.
    fn firstboot_items(&self) -> Result<Vec<reseal_windows::provision::FirstBoot>> {
        use reseal_windows::provision::FirstBoot;
        let mut items: Vec<(usize, FirstBoot)> = Vec::new();
        let (fi, ci) = self.firstboot_order.clone().unwrap_or_default();
        for (n, p) in self.firstboot.iter().enumerate() {
            items.push((
                fi.get(n).copied().unwrap_or(n),
                FirstBoot::File(read_input(p, "--firstboot")?),
            ));
        }
        let base = if fi.is_empty() {
            self.firstboot.len()
        } else {
            0
        };
        for (n, c) in self.firstboot_command.iter().enumerate() {
            items.push((
                ci.get(n).copied().unwrap_or(base + n),
                FirstBoot::Command(c.clone()),
            ));
        }
        items.sort_by_key(|(i, _)| *i);
        Ok(items.into_iter().map(|(_, f)| f).collect())
    }

    /// Whether `--new-sid` asks for a random SID.
    pub fn random_sid(&self) -> bool {
        self.new_sid.eq_ignore_ascii_case("random")
    }

    /// The library options these flags ask for.
    ///
    /// # Errors
    /// A `--new-sid` that is not an account-domain SID; a bad `--operations` list.
    pub fn options(&self) -> Result<Options> {
        let mut o = Options::default();
        o.new_sid = if self.random_sid() {
            NewSid::Random
        } else {
            let s: Sid = self
                .new_sid
                .parse()
                .with_context(|| format!("--new-sid {:?}", self.new_sid))?;
            if !s.is_account_domain() {
                bail!("--new-sid {s} is not an account-domain SID S-1-5-21-A-B-C");
            }
            NewSid::Given(s)
        };
        o.computer_name = self.computer_name.clone();
        if let Some(list) = &self.operations {
            o.operations = Operations::parse(list)?;
        }
        o.partition = self.partition;
        o.force_bitlocker = self.force_bitlocker;
        o.force_volume_state = self.force_volume_state;
        o.force_dirty_hive = self.force_dirty_hive;
        o.force_txr = self.force_txr;
        o.force_domain_joined = self.force_domain_joined;
        o.no_scrub = self.no_scrub;
        o.oobe = self.oobe;
        if self.djoin_blob.is_some() && !self.oobe {
            bail!("--djoin-blob needs --oobe");
        }
        o.unattend = self
            .unattend
            .as_deref()
            .map(|p| read_input(p, "--unattend"))
            .transpose()?;
        o.djoin_blob = self
            .djoin_blob
            .as_deref()
            .map(|p| read_input(p, "--djoin-blob"))
            .transpose()?;
        o.firstboot = self.firstboot_items()?;
        Ok(o)
    }
}

/// A user's file for the provisioning flags.
fn read_input(p: &Path, flag: &str) -> Result<reseal_windows::provision::InputFile> {
    let data = std::fs::read(p).with_context(|| format!("{flag} {}", p.display()))?;
    Ok(reseal_windows::provision::InputFile {
        name: p.display().to_string(),
        data,
    })
}

fn options(a: &GeneralizeArgs) -> Result<Options> {
    let mut o = a.change.options()?;
    o.dry_run = a.dry_run;
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
    if let (Some(o), Some(n)) = (&r.old_machine_guid, &r.new_machine_guid) {
        outln!("MachineGuid {o} -> {n}");
    }
    for w in &r.warnings {
        outln!("warning: {w}");
    }
    let off: Vec<&str> = r
        .operations
        .iter()
        .filter(|o| !o.enabled)
        .map(|o| o.name.name())
        .collect();
    if !off.is_empty() {
        outln!("not run: {}", off.join(", "));
    }
    for o in r.operations.iter().filter(|o| o.enabled) {
        outln!("[{}] {}: {} change(s)", o.name, o.section, o.changes);
        for c in r.changes.iter().filter(|c| c.operation() == Some(o.name)) {
            print_change(c);
        }
    }
    let written: Vec<&Change> = r
        .changes
        .iter()
        .filter(|c| c.operation().is_none())
        .collect();
    if !written.is_empty() {
        outln!("[files] hives written and logs invalidated");
        for c in written {
            print_change(c);
        }
    }
    let c = &r.counts;
    outln!(
        "{} hive descriptor(s), {} key(s) renamed, {} value(s), {} NTFS descriptor(s), {} $Quota \
         SID(s), {} file(s) renamed, {} file(s) rewritten, {} hive(s) written, {} computer-name \
         value(s), {} identifier(s), {} file(s) deleted ({} bytes zeroed)",
        c.hive_descriptors,
        c.keys_renamed,
        c.values,
        c.ntfs_descriptors,
        c.quota_sids,
        c.files_renamed,
        c.files_rewritten,
        c.hives_written,
        c.computer_name_values,
        c.identifiers,
        c.files_deleted,
        c.bytes_zeroed
    );
    if r.operations
        .iter()
        .any(|o| o.name == Operation::Provision && o.enabled)
    {
        print_provision_notes(r);
    }
}

fn print_change(c: &Change) {
    {
        match c {
            Change::HiveDescriptor { hive, cell, sids } => {
                outln!("  {hive}: sk {cell:#x}: {sids} SID(s)")
            }
            Change::KeyRenamed { hive, old, new } if old.is_empty() => {
                outln!("  {hive}: root key -> {new}")
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
                hive,
                bytes,
                old_len,
                new_len,
            } => outln!("  hive {hive}: {bytes} bytes written, {old_len} -> {new_len} bytes"),
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
            Change::ValueSet {
                hive,
                key,
                value,
                old,
                new,
                ..
            } => outln!("  {hive}: {key} [{value}]: {old} -> {new}"),
            Change::ValueDeleted {
                hive,
                key,
                value,
                old,
                ..
            } => outln!("  {hive}: {key} [{value}] deleted (was {old})"),
            Change::KeyDeleted { hive, key, .. } => outln!("  {hive}: key {key} deleted"),
            Change::KeyRenamedBy { hive, old, new, .. } => {
                outln!("  {hive}: key {old} -> {new}")
            }
            Change::FileMoved { old, new, .. } => outln!("  file {old} -> {new}"),
            Change::FileDeleted {
                path, size, zeroed, ..
            } => outln!("  file {path} deleted ({size} bytes, {zeroed} zeroed)"),
            Change::ShadowCopiesCleared {
                old_catalog_offset, ..
            } => outln!(
                "  VSS volume header: catalog offset {old_catalog_offset:#x} -> 0 (no shadow copies)"
            ),
            Change::FileWritten {
                path,
                size,
                replaced,
                ..
            } => outln!(
                "  file {path} {} ({size} bytes)",
                if *replaced { "replaced" } else { "written" }
            ),
            Change::DirCreated { path, .. } => outln!("  folder {path} created"),
            _ => outln!("  {c:?}"),
        }
    }
}

/// The report as JSON, as `generalize --json` and each clone of `clone --json` print it: every
/// change names its operation (null for the hive write-backs).
pub fn report_json(report: &Report) -> Result<serde_json::Value> {
    let mut doc = serde_json::to_value(report)?;
    if let Some(list) = doc["changes"].as_array_mut() {
        for (v, c) in list.iter_mut().zip(&report.changes) {
            v["operation"] = serde_json::json!(c.operation().map(Operation::name));
        }
    }
    Ok(doc)
}

/// What the provisioning placed, and what it did not, in words.
fn print_provision_notes(r: &Report) {
    let placed = |p: &str| {
        r.changes
            .iter()
            .any(|c| matches!(c, Change::FileWritten { path, .. } if path.eq_ignore_ascii_case(p)))
    };
    if !placed("/Windows/Panther/unattend.xml") {
        outln!("provision: no answer file placed (no --unattend or --djoin-blob)");
    }
}

/// `--list-operations`.
fn list_operations(json: bool) -> Result<()> {
    if json {
        let v: Vec<serde_json::Value> = Operation::ALL
            .iter()
            .map(|o| {
                serde_json::json!({
                    "name": o.name(),
                    "description": o.description(),
                    "default": o.default_on(),
                    "section": o.section(),
                })
            })
            .collect();
        let doc = serde_json::json!({ "schema_version": 1, "operations": v });
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        for o in Operation::ALL {
            outln!(
                "{:16} {} {}",
                o.name(),
                if o.default_on() { "*" } else { " " },
                o.description()
            );
        }
        outln!("(* = on by default; computer-name runs only with --computer-name, provision only with --oobe, --unattend, --djoin-blob or --firstboot*)");
    }
    Ok(())
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
                "machine-ids" => "machine identifiers",
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

/// `--password USER:FILE` values, read and checked against the image before anything is
/// written: (account name as stored, RID, password).
fn passwords(a: &GeneralizeArgs, image: &Path) -> Result<Vec<(String, u32, String)>> {
    let mut out = Vec::new();
    for p in &a.password {
        let (user, file) = p
            .split_once(':')
            .with_context(|| format!("--password {p:?}: expected USER:FILE"))?;
        let pw = crate::user::read_password(Some(Path::new(file)), false)
            .with_context(|| format!("--password {user}:{file}"))?;
        let (name, rid) = crate::user::check_password_target(image, user)
            .with_context(|| format!("--password {user}:{file}"))?;
        out.push((name, rid, pw));
    }
    Ok(out)
}

/// `reseal generalize`.
pub fn run(a: &GeneralizeArgs) -> Result<()> {
    if a.list_operations {
        return list_operations(a.json);
    }
    let o = options(a)?;
    let Some(image) = a.image.as_deref() else {
        bail!("generalize needs an IMAGE");
    };
    let image: &Path = image;
    let pws = passwords(a, image)?;
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
    // The audit reads the image with the staged writes, i.e. as it is after the commit.
    let residual = if a.audit {
        let sid: Sid = report.old_sid.parse()?;
        let opts = reseal_windows::audit::AuditOptions {
            sids: vec![sid],
            partition: Some(report.partition),
        };
        Some(reseal_windows::audit::audit(&mut img, &opts, &mut |_, _| {}).context("audit")?)
    } else {
        None
    };
    if a.json {
        let mut doc = report_json(&report)?;
        doc["schema_version"] = serde_json::json!(1);
        if let Some(r) = &residual {
            doc["audit"] = serde_json::to_value(r)?;
        }
        doc["passwords"] = pws
            .iter()
            .map(|(name, rid, _)| serde_json::json!({"name": name, "rid": rid}))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        crate::out::buffered(|| print_text(&report));
        if let Some(r) = &residual {
            outln!(
                "audit: {} place(s) of the old SID {} left",
                r.places.len(),
                report.old_sid
            );
            for (c, n) in &r.counts {
                let name = serde_json::to_value(c)?;
                let why = c.residual_reason().unwrap_or("NOT EXPLAINED: report it");
                outln!("  {n:6}  {}: {why}", name.as_str().unwrap_or("?"));
            }
        }
    }
    let changes = img.changes();
    let bytes: u64 = changes.iter().map(|r| r.end - r.start).sum();
    if a.dry_run {
        eprintln!(
            "dry run: would write {bytes} bytes in {} ranges of {}",
            changes.len(),
            image.display()
        );
        drop(img);
        for (name, _, pw) in &pws {
            crate::user::set_password(image, name, pw, true)?;
        }
        return Ok(());
    }
    let rep = img.commit()?;
    reseal_disk::journal::record_operation(
        &rep.undo_path,
        &format!(
            "generalize: machine SID {} -> {}",
            report.old_sid, report.new_sid
        ),
    )?;
    eprintln!(
        "generalize: wrote {} bytes in {} ranges; undo with `reseal undo {}`",
        rep.bytes,
        rep.ranges,
        image.display()
    );
    drop(img);
    for (name, _, pw) in &pws {
        crate::user::set_password(image, name, pw, false)
            .with_context(|| format!("--password {name} (the generalize is committed)"))?;
    }
    Ok(())
}
