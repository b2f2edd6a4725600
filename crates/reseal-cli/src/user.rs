//! `reseal user …`: local accounts of the Windows install in an image (through
//! `reseal_windows::users`).
//!
//! The SAM and SYSTEM are located like `reseal reg IMAGE:SAM` does; reads recover a dirty hive in
//! memory, writes refuse a dirty SAM and go through the image journal (`--dry-run`, `reseal undo
//! IMAGE`, the image lock and `--lock-timeout` as for every write).

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use reseal_windows::users::{self, Control, UserChange};
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::hive_target::{resolve, Target};
use crate::reg::{edit, open_read};

/// `reseal user` subcommands.
#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// List the local accounts: name, RID, SID, enabled, locked, password set, last logon.
    List {
        /// Disk image.
        image: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Set (or blank) an account's password: the NT hash in the SAM's own encryption.
    #[command(group = clap::ArgGroup::new("pw").required(true).multiple(false))]
    Passwd {
        /// Disk image.
        image: PathBuf,
        /// Account name (case-insensitive).
        name: String,
        /// Read the password from this file (one trailing newline is dropped).
        #[arg(long, value_name = "FILE", group = "pw")]
        password_file: Option<PathBuf>,
        /// Read the password from standard input (one trailing newline is dropped).
        #[arg(long, group = "pw")]
        password_stdin: bool,
        /// Give the account an empty password.
        #[arg(long, group = "pw")]
        blank: bool,
        #[command(flatten)]
        w: WriteArgs,
    },
    /// Enable an account (clear ACB_DISABLED).
    Enable {
        /// Disk image.
        image: PathBuf,
        /// Account name.
        name: String,
        #[command(flatten)]
        w: WriteArgs,
    },
    /// Disable an account (set ACB_DISABLED).
    Disable {
        /// Disk image.
        image: PathBuf,
        /// Account name.
        name: String,
        #[command(flatten)]
        w: WriteArgs,
    },
    /// Unlock an account locked out by bad passwords.
    Unlock {
        /// Disk image.
        image: PathBuf,
        /// Account name.
        name: String,
        #[command(flatten)]
        w: WriteArgs,
    },
    /// Rename an account (the profile folder keeps its name, as in Windows).
    Rename {
        /// Disk image.
        image: PathBuf,
        /// Current name.
        old: String,
        /// New name.
        new: String,
        #[command(flatten)]
        w: WriteArgs,
    },
}

/// Options of the write subcommands.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct WriteArgs {
    /// Report what would change and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

impl UserCmd {
    /// True when JSON output was asked for.
    pub fn json(&self) -> bool {
        match self {
            UserCmd::List { json, .. } => *json,
            UserCmd::Passwd { w, .. }
            | UserCmd::Enable { w, .. }
            | UserCmd::Disable { w, .. }
            | UserCmd::Unlock { w, .. }
            | UserCmd::Rename { w, .. } => w.json,
        }
    }
}

fn sam_target(image: &Path) -> Result<Target> {
    resolve(image, "SAM")
}

fn system_hive(image: &Path) -> Result<reseal_hive::Hive> {
    open_read(&resolve(image, "SYSTEM")?)
}

/// Drop one trailing `\n` or `\r\n`.
fn strip_newline(mut s: String) -> String {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    s
}

pub(crate) fn read_password(file: Option<&Path>, stdin: bool) -> Result<String> {
    let text = if let Some(f) = file {
        let b = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        String::from_utf8(b).with_context(|| format!("{} is not UTF-8", f.display()))?
    } else if stdin {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("reading the password from standard input")?;
        s
    } else {
        bail!("give --password-file FILE, --password-stdin or --blank");
    };
    let p = strip_newline(text);
    if p.is_empty() {
        bail!("the password is empty: use --blank for an empty password");
    }
    Ok(p)
}

fn report(c: &UserChange, w: WriteArgs) -> Result<()> {
    if w.json {
        let mut doc = serde_json::to_value(c)?;
        doc["schema_version"] = serde_json::json!(1);
        doc["dry_run"] = serde_json::json!(w.dry_run);
        outln!("{}", serde_json::to_string_pretty(&doc)?);
    } else if c.changed {
        outln!("{} (RID {}): {}", c.name, c.rid, c.action);
    } else {
        outln!("{} (RID {}): already {}", c.name, c.rid, c.action);
    }
    Ok(())
}

/// Apply `op` to the image's SAM through the journal and report what it did.
fn write(
    image: &Path,
    w: WriteArgs,
    mut op: impl FnMut(&mut reseal_hive::Hive) -> Result<UserChange>,
) -> Result<()> {
    let target = sam_target(image)?;
    let mut change = None;
    edit(&target, w.dry_run, |h| {
        change = Some(op(h)?);
        Ok(())
    })?;
    match change {
        Some(c) => report(&c, w),
        None => bail!("the SAM edit did not run"),
    }
}

/// Check, writing nothing, that `name` is an account of the image's SAM and that its SYSTEM's
/// boot key decrypts the SAM: the account's name as stored and its RID.
pub(crate) fn check_password_target(image: &Path, name: &str) -> Result<(String, u32)> {
    let sam = open_read(&sam_target(image)?)?;
    let system = system_hive(image)?;
    users::sam_key(&sam, &system)?;
    let list = users::list(&sam)?;
    let u = list
        .iter()
        .find(|u| u.name.to_lowercase() == name.to_lowercase())
        .ok_or_else(|| reseal_windows::Error::UnknownUser {
            name: name.to_string(),
            known: list.iter().map(|u| u.name.clone()).collect(),
        })?;
    Ok((u.name.clone(), u.rid))
}

/// Set `name`'s password in the image (what `reseal user passwd` does), reporting on standard
/// error.
pub(crate) fn set_password(image: &Path, name: &str, password: &str, dry_run: bool) -> Result<()> {
    let system = system_hive(image)?;
    let target = sam_target(image)?;
    let mut change = None;
    edit(&target, dry_run, |h| {
        change = Some(users::set_password(h, &system, name, Some(password))?);
        Ok(())
    })?;
    if let Some(c) = change {
        eprintln!("{} (RID {}): {}", c.name, c.rid, c.action);
    }
    Ok(())
}

fn list(image: &Path, json: bool) -> Result<()> {
    let sam = open_read(&sam_target(image)?)?;
    let list = users::list(&sam)?;
    if json {
        let doc = serde_json::json!({"schema_version": 1, "users": list});
        outln!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    outln!(
        "{:<20} {:>6}  {:<8} {:<6} {:<8} {:<20} SID",
        "NAME",
        "RID",
        "STATE",
        "LOCKED",
        "PASSWORD",
        "LAST LOGON"
    );
    for u in &list {
        outln!(
            "{:<20} {:>6}  {:<8} {:<6} {:<8} {:<20} {}",
            u.name,
            u.rid,
            if u.enabled { "enabled" } else { "disabled" },
            if u.locked { "yes" } else { "no" },
            if u.password_set { "set" } else { "blank" },
            u.last_logon.as_deref().unwrap_or("never"),
            u.sid.as_deref().unwrap_or("-")
        );
    }
    Ok(())
}

/// Run one `reseal user` command.
pub fn run(cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::List { image, json } => list(&image, json),
        UserCmd::Passwd {
            image,
            name,
            password_file,
            password_stdin,
            blank,
            w,
        } => {
            let password = if blank {
                None
            } else {
                Some(read_password(password_file.as_deref(), password_stdin)?)
            };
            let system = system_hive(&image)?;
            write(&image, w, |h| {
                Ok(users::set_password(h, &system, &name, password.as_deref())?)
            })
        }
        UserCmd::Enable { image, name, w } => write(&image, w, |h| {
            Ok(users::control(h, &name, Control::Enable)?)
        }),
        UserCmd::Disable { image, name, w } => write(&image, w, |h| {
            Ok(users::control(h, &name, Control::Disable)?)
        }),
        UserCmd::Unlock { image, name, w } => write(&image, w, |h| {
            Ok(users::control(h, &name, Control::Unlock)?)
        }),
        UserCmd::Rename { image, old, new, w } => {
            write(&image, w, |h| Ok(users::rename(h, &old, &new)?))
        }
    }
}
