//! `reseal reg …`: registry hive files.
//!
//! Reads recover a dirty hive in memory from its `.LOG1`/`.LOG2` beside it. Writes refuse a dirty
//! hive (run `reseal reg replay` first) and go through the disk journal: only the byte ranges the
//! edit touched are written, after an undo file, so `--dry-run` and `reseal undo HIVE` work here
//! exactly as on images.

use anyhow::{bail, Context, Result};
use clap::{Subcommand, ValueEnum};
use reseal_hive::reg;
use reseal_hive::{
    Hive, RecoveryReport, Severity, Value, REG_BINARY, REG_DWORD, REG_EXPAND_SZ, REG_MULTI_SZ,
    REG_NONE, REG_QWORD, REG_SZ,
};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::hive_target::Target;

/// `reseal reg` subcommands.
#[derive(Debug, Subcommand)]
pub enum RegCmd {
    /// List the subkeys and values of a key.
    Ls {
        /// Hive file, or IMAGE:HIVE (SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT, a user name, or a path).
        hive: PathBuf,
        /// Key path: below the root (`ControlSet001\Control`), or as Windows mounts the hive
        /// (`HKLM\SYSTEM\CurrentControlSet\Control`, `HKCU\…`, `HKU\<SID>\…`); `/` works as
        /// the separator in a path without `\`. Default: the root.
        #[arg(default_value = "")]
        key: String,
        /// Print JSON: the key, its subkeys (name, last written, counts) and its values (type
        /// name, typed data, raw bytes as hex).
        #[arg(long)]
        json: bool,
    },
    /// Print values of a key (one value, or all), in `.reg` notation.
    Get {
        /// Hive file, or IMAGE:HIVE (SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT, a user name, or a path).
        hive: PathBuf,
        /// Key path.
        key: String,
        /// Value name (`@` or "" for the default value); all values when omitted.
        value: Option<String>,
        /// Print only the value's data, as hivexget does: strings as UTF-8 with one newline,
        /// each string of a multi-string on its own line (then an empty one), numbers in decimal, anything else
        /// as raw bytes. Needs a value name.
        #[arg(long, conflicts_with = "json")]
        data: bool,
        /// Print JSON: the value (or every value) with its type name, typed data and raw
        /// bytes as hex.
        #[arg(long)]
        json: bool,
    },
    /// Set a value (the key is created when missing).
    Set {
        /// Hive file, or IMAGE:HIVE (SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT, a user name, or a path).
        hive: PathBuf,
        /// Key path.
        key: String,
        /// Value name (`@` for the default value).
        value: String,
        /// Data: text for sz/expand-sz, numbers (decimal or 0x…) for dword/qword, hex bytes for
        /// binary/none/raw types, one argument per string for multi-sz.
        data: Vec<String>,
        /// Value type.
        #[arg(long = "type", short = 't', value_enum, default_value = "sz")]
        kind: RegType,
        /// Numeric type for `--type raw` (e.g. 0x00100000).
        #[arg(long)]
        raw_type: Option<String>,
        /// Report what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write even a hive file or image without write permission bits, or a volume that is
        /// dirty, hibernated or was shut down with Fast Startup.
        #[arg(long)]
        force: bool,
    },
    /// Delete a value, or a key (with `--recursive` when it has subkeys).
    Delete {
        /// Hive file, or IMAGE:HIVE (SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT, a user name, or a path).
        hive: PathBuf,
        /// Key path.
        key: String,
        /// Value name; when omitted the key itself is deleted.
        value: Option<String>,
        /// Delete a key with all its subkeys.
        #[arg(short, long)]
        recursive: bool,
        /// Report what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write even a hive file or image without write permission bits, or a volume that is
        /// dirty, hibernated or was shut down with Fast Startup.
        #[arg(long)]
        force: bool,
    },
    /// Export a key (default: the whole hive) in regedit's `.reg` format (version 5, UTF-16LE).
    Export {
        /// Hive file, or IMAGE:HIVE (SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT, a user name, or a path).
        hive: PathBuf,
        /// Key path (default: the root).
        #[arg(default_value = "")]
        key: String,
        /// Write to FILE instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Root prefix of the section names (default from the file name, e.g.
        /// `HKEY_LOCAL_MACHINE\SOFTWARE`).
        #[arg(long)]
        prefix: Option<String>,
        /// Write UTF-8 instead of UTF-16LE (always so on a terminal).
        #[arg(long)]
        utf8: bool,
    },
    /// Apply a `.reg` file, including `[-key]` and `"value"=-` deletions. Given a disk image
    /// instead of a hive, every hive the file names is edited (virt-win-reg --merge):
    /// `HKEY_LOCAL_MACHINE\SYSTEM` (`CurrentControlSet` through `Select\Current`), `\SOFTWARE`,
    /// `\SAM`, `\SECURITY`, `\COMPONENTS`…, `HKEY_CLASSES_ROOT`, `HKEY_USERS\.DEFAULT`,
    /// `HKEY_USERS\<SID>` and `<SID>_Classes`, `HKEY_CURRENT_USER` (with --user), all in one
    /// journalled change (one `reseal undo`).
    Import {
        /// Hive file, IMAGE:HIVE (SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT, a user name, or a
        /// path), or a disk image (every hive the file names).
        hive: PathBuf,
        /// The `.reg` file (UTF-16LE with BOM, UTF-8, or REGEDIT4).
        file: PathBuf,
        /// Root prefix stripped from the file's key paths (default from the hive's file name;
        /// not with a disk image, whose roots choose the hives).
        #[arg(long)]
        prefix: Option<String>,
        /// With a disk image: whose hive `HKEY_CURRENT_USER` is (a local account's name or a
        /// SID).
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// With a disk image: the partition of the Windows install (default: the only one).
        #[arg(short, long)]
        partition: Option<u32>,
        /// Report what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write even a hive file or image without write permission bits, or a volume that is
        /// dirty, hibernated or was shut down with Fast Startup.
        #[arg(long)]
        force: bool,
    },
    /// Report structural problems; exits 1 when there are errors.
    Check {
        /// Hive file, or IMAGE:HIVE (SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT, a user name, or a path).
        hive: PathBuf,
    },
    /// Rewrite one account domain (`S-1-5-21-X-Y-Z` and every account SID under it, RIDs kept)
    /// everywhere in a hive: security descriptors, key, value and class names, value data
    /// (binary SIDs and SID strings); then zero free cells and cell slack (Samba's
    /// `profiles -c OLD -n NEW`, for a whole domain and every place).
    Sid {
        /// Hive file, or IMAGE:HIVE (SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT, a user name, or a path).
        hive: PathBuf,
        /// The old domain SID `S-1-5-21-X-Y-Z`.
        #[arg(long)]
        from: String,
        /// The new domain SID `S-1-5-21-A-B-C`.
        #[arg(long)]
        to: String,
        /// Do not zero free cells and cell slack (old SIDs may survive there).
        #[arg(long)]
        no_scrub: bool,
        /// Report what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Replay the transaction logs (`HIVE.LOG1`, `HIVE.LOG2`) into the hive file.
    Replay {
        /// Hive file, or IMAGE:HIVE (SYSTEM, SOFTWARE, SAM, SECURITY, DEFAULT, a user name, or a path).
        hive: PathBuf,
        /// Report what would change and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Write even a hive file or image without write permission bits, or a volume that is
        /// dirty, hibernated or was shut down with Fast Startup.
        #[arg(long)]
        force: bool,
    },
}

impl RegCmd {
    /// True when the command was asked for JSON output.
    pub fn json(&self) -> bool {
        match self {
            RegCmd::Ls { json, .. } | RegCmd::Get { json, .. } => *json,
            _ => false,
        }
    }

    /// `--force` of a write command.
    fn force(&self) -> bool {
        match self {
            RegCmd::Set { force, .. }
            | RegCmd::Delete { force, .. }
            | RegCmd::Import { force, .. }
            | RegCmd::Replay { force, .. } => *force,
            _ => false,
        }
    }
}

/// Value types accepted by `reg set`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RegType {
    /// REG_SZ.
    Sz,
    /// REG_EXPAND_SZ.
    ExpandSz,
    /// REG_MULTI_SZ.
    MultiSz,
    /// REG_DWORD.
    Dword,
    /// REG_QWORD.
    Qword,
    /// REG_BINARY.
    Binary,
    /// REG_NONE.
    None,
    /// Any type number (`--raw-type`), hex data.
    Raw,
}

/// The `.reg` root a hive is usually mounted under, from its file name.
fn default_prefix(hive: &Path) -> String {
    let name = hive
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_uppercase())
        .unwrap_or_default();
    match reseal_windows::hive_location::mount_of(&name) {
        Some((root, sub)) if sub.is_empty() => root.name().to_string(),
        Some((root, sub)) => format!("{}\\{sub}", root.name()),
        None => format!(
            "HKEY_LOCAL_MACHINE\\{}",
            name.split('.').next().unwrap_or("HIVE")
        ),
    }
}

/// The hive's file name (`SYSTEM`, `NTUSER.DAT`, …), which says where Windows mounts it.
fn file_label(t: &Target) -> String {
    t.file_name()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn resolve_key(h: &Hive, t: &Target, key: &str) -> Result<String> {
    crate::key_path::resolve(h, &file_label(t), key)
}

/// A value's data as hivexget prints it.
fn data_only(v: &Value<'_>) -> Result<Vec<u8>> {
    Ok(match v.data_type() {
        REG_SZ | REG_EXPAND_SZ | 6 => {
            let mut s = v.as_string()?;
            s.push('\n');
            s.into_bytes()
        }
        REG_MULTI_SZ => {
            let mut s = String::new();
            for part in v.as_multi_string()? {
                s.push_str(&part);
                s.push('\n');
            }
            // hivexget ends a multi-string with an empty line; scripts written for it expect one.
            s.push('\n');
            s.into_bytes()
        }
        REG_DWORD | 5 => match v.as_u32()? {
            Some(n) => format!("{n}\n").into_bytes(),
            None => v.data()?.into_owned(),
        },
        REG_QWORD => match v.as_u64()? {
            Some(n) => format!("{n}\n").into_bytes(),
            None => v.data()?.into_owned(),
        },
        _ => v.data()?.into_owned(),
    })
}

/// Open a hive for reading; a dirty hive is recovered in memory from its logs. When its logs
/// are missing or unusable, the primary is read as it is, with a warning (what hivex and regipy
/// do); writes still refuse such a hive ([`open_write`]).
pub(crate) fn open_read(t: &Target) -> Result<Hive> {
    let bytes = t.read()?;
    let hive = Hive::from_bytes(bytes).with_context(|| format!("opening hive {}", t.describe()))?;
    if !hive.is_dirty() {
        return Ok(hive);
    }
    let primary = hive.into_bytes();
    let (hive, rep) = match recover_from_logs(t, primary.clone()) {
        Ok(r) => r,
        Err(e) => {
            eprintln!(
                "warning: {} is dirty and its logs cannot be replayed ({e:#}); reading the primary \
                 file as it is: changes that were only in the logs are missing",
                t.describe()
            );
            return Hive::from_bytes(primary)
                .with_context(|| format!("opening hive {}", t.describe()));
        }
    };
    eprintln!(
        "note: {} is dirty; read with its logs replayed in memory ({})",
        t.describe(),
        describe_recovery(&rep)
    );
    Ok(hive)
}

/// Replay the logs beside `t` over `bytes`, the primary already read.
fn recover_from_logs(t: &Target, bytes: Vec<u8>) -> Result<(Hive, RecoveryReport)> {
    let log1 = match t.read_sibling(".LOG1")? {
        Some(l) => Some(l),
        None => t.read_sibling(".LOG")?,
    };
    let log2 = t.read_sibling(".LOG2")?;
    Hive::recover(bytes, log1, log2)
        .with_context(|| format!("replaying the transaction logs of {}", t.describe()))
}

fn describe_recovery(r: &RecoveryReport) -> String {
    let mut s = format!(
        "{:?} format, {} entries from LOG1, {} from LOG2",
        r.format, r.applied_log1, r.applied_log2
    );
    if r.base_block_repaired {
        s.push_str(", base block repaired");
    }
    for n in &r.notes {
        s.push_str("; ");
        s.push_str(n);
    }
    s
}

/// Open a hive for writing: it must be clean. Returns the bytes the edit starts from too, so
/// that the write can check, under the writer's lock, that no one changed them meanwhile.
fn open_write(t: &Target) -> Result<(Hive, Vec<u8>)> {
    t.recover()?;
    let original = t.read()?;
    let mut hive = Hive::from_bytes(original.clone())
        .with_context(|| format!("opening hive {}", t.describe()))?;
    if hive.is_dirty() {
        bail!(
            "{} is dirty (its sequence numbers differ): run `reseal reg replay {}` first",
            t.describe(),
            t.describe()
        );
    }
    if hive.has_pending_transactions() {
        eprintln!(
            "warning: {} has the KTM-transaction flag set in its base block (a transaction may be pending)",
            t.describe()
        );
    }
    hive.make_writable()?;
    Ok((hive, original))
}

/// Open `t` for writing, apply `f`, write the result. When another process changed the hive
/// between the read and the write ([`crate::hive_target::ChangedMeanwhile`]), the edit is made
/// again from a fresh read (a few times), so concurrent edits of one hive all land.
pub(crate) fn edit(
    t: &Target,
    dry_run: bool,
    mut f: impl FnMut(&mut Hive) -> Result<()>,
) -> Result<()> {
    const ATTEMPTS: usize = 5;
    for attempt in 1..=ATTEMPTS {
        let (mut h, original) = open_write(t)?;
        f(&mut h)?;
        match save(t, &mut h, &original, dry_run) {
            Err(e)
                if attempt < ATTEMPTS
                    && e.downcast_ref::<crate::hive_target::ChangedMeanwhile>()
                        .is_some() => {}
            other => return other,
        }
    }
    unreachable!("the last attempt returns")
}

/// Commit the hive's edit and write the touched bytes through the journal (`original`: the
/// bytes the edit started from).
fn save(t: &Target, hive: &mut Hive, original: &[u8], dry_run: bool) -> Result<()> {
    if !hive.is_modified() {
        eprintln!("no change");
        return Ok(());
    }
    hive.commit()?;
    let ranges = hive.dirty_ranges_within(reseal_hive::WRITE_GAP);
    t.write_ranges(original, hive.as_bytes(), &ranges, dry_run)
}

fn value_name(v: &str) -> &str {
    if v == "@" {
        ""
    } else {
        v
    }
}

fn parse_num(s: &str) -> Result<u64> {
    let t = s.trim();
    let r = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        t.parse()
    };
    r.with_context(|| format!("{s:?} is not a number"))
}

fn parse_hex(args: &[String]) -> Result<Vec<u8>> {
    let joined: String = args
        .join("")
        .chars()
        .filter(|c| !matches!(c, ',' | ' ' | ':' | '\\' | '\n' | '\r'))
        .collect();
    if joined.len() % 2 != 0 {
        bail!("hex data has an odd number of digits");
    }
    (0..joined.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&joined[i..i + 2], 16).with_context(|| "bad hex digit"))
        .collect()
}

fn encode(kind: RegType, raw_type: Option<&str>, data: &[String]) -> Result<(u32, Vec<u8>)> {
    let one = || -> Result<&String> {
        match data {
            [d] => Ok(d),
            _ => bail!("this type takes exactly one data argument"),
        }
    };
    Ok(match kind {
        RegType::Sz => (REG_SZ, reseal_hive::key_value::encode_sz(one()?)),
        RegType::ExpandSz => (REG_EXPAND_SZ, reseal_hive::key_value::encode_sz(one()?)),
        RegType::MultiSz => {
            let v: Vec<&str> = data.iter().map(String::as_str).collect();
            (REG_MULTI_SZ, reseal_hive::key_value::encode_multi_sz(&v))
        }
        RegType::Dword => {
            let n = parse_num(one()?)?;
            let n = u32::try_from(n).context("a dword is at most 0xFFFFFFFF")?;
            (REG_DWORD, n.to_le_bytes().to_vec())
        }
        RegType::Qword => (REG_QWORD, parse_num(one()?)?.to_le_bytes().to_vec()),
        RegType::Binary => (REG_BINARY, parse_hex(data)?),
        RegType::None => (REG_NONE, parse_hex(data)?),
        RegType::Raw => {
            let t = raw_type.context("--type raw needs --raw-type N")?;
            let t = u32::try_from(parse_num(t)?).context("--raw-type is a 32-bit number")?;
            (t, parse_hex(data)?)
        }
    })
}

fn print_value(out: &mut String, v: &Value<'_>) -> Result<()> {
    let data = v.data()?;
    reg::format_value(&v.name(), v.data_type(), &data, out);
    Ok(())
}

/// The `REG_*` name of a value type (`None` for a number without one).
fn type_name(t: u32) -> Option<&'static str> {
    Some(match t {
        0 => "REG_NONE",
        1 => "REG_SZ",
        2 => "REG_EXPAND_SZ",
        3 => "REG_BINARY",
        4 => "REG_DWORD",
        5 => "REG_DWORD_BIG_ENDIAN",
        6 => "REG_LINK",
        7 => "REG_MULTI_SZ",
        8 => "REG_RESOURCE_LIST",
        9 => "REG_FULL_RESOURCE_DESCRIPTOR",
        10 => "REG_RESOURCE_REQUIREMENTS_LIST",
        11 => "REG_QWORD",
        _ => return None,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A FILETIME as RFC 3339, `None` for 0 (never written).
fn last_written(ft: u64) -> Option<String> {
    (ft != 0).then(|| crate::fs::filetime_rfc3339(ft))
}

/// A value as JSON: `type` is the `REG_*` name (`unknown` for other numbers, `type_code` has
/// the number), `data` typed (a string for REG_SZ/EXPAND_SZ/LINK, an array of strings for
/// REG_MULTI_SZ, a number for a REG_DWORD/REG_DWORD_BIG_ENDIAN/REG_QWORD of the right size,
/// else the bytes as lower-case hex), `raw` the bytes as hex.
fn value_json(v: &Value<'_>) -> Result<serde_json::Value> {
    let raw = v.data()?;
    let t = v.data_type();
    let number = |n: Option<u64>| n.map_or_else(|| serde_json::json!(hex(&raw)), |n| n.into());
    let data = match t {
        REG_SZ | REG_EXPAND_SZ | 6 => serde_json::json!(v.as_string()?),
        REG_MULTI_SZ => serde_json::json!(v.as_multi_string()?),
        REG_DWORD | 5 => number(v.as_u32()?.map(u64::from)),
        REG_QWORD => number(v.as_u64()?),
        _ => serde_json::json!(hex(&raw)),
    };
    Ok(serde_json::json!({
        "name": v.name(),
        "type": type_name(t).unwrap_or("unknown"),
        "type_code": t,
        "data": data,
        "raw": hex(&raw),
    }))
}

/// A key as JSON: name, last written (RFC 3339), subkey and value counts.
fn key_json(k: &reseal_hive::Key<'_>) -> serde_json::Value {
    serde_json::json!({
        "name": k.name(),
        "last_written": last_written(k.last_written()),
        "subkey_count": k.subkey_count(),
        "value_count": k.value_count(),
    })
}

fn print_json(doc: &serde_json::Value) -> Result<()> {
    outln!("{}", serde_json::to_string_pretty(doc)?);
    Ok(())
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    lock.write_all(bytes)?;
    lock.flush()?;
    Ok(())
}

/// Run one `reseal reg` command.
pub fn run(cmd: RegCmd) -> Result<()> {
    crate::open::set_force_write_protected(cmd.force());
    match cmd {
        RegCmd::Ls { hive, key, json } => {
            let target = Target::parse(&hive)?;
            let h = open_read(&target)?;
            let key = resolve_key(&h, &target, &key)?;
            let k = h.open_path(&key)?;
            if json {
                let subkeys = k
                    .subkeys()?
                    .map(|sk| Ok(key_json(&sk?)))
                    .collect::<Result<Vec<_>>>()?;
                let values = k
                    .values()?
                    .map(|v| value_json(&v?))
                    .collect::<Result<Vec<_>>>()?;
                return print_json(&serde_json::json!({
                    "schema_version": 1,
                    "hive": target.describe(),
                    "key": key,
                    "last_written": last_written(k.last_written()),
                    "subkeys": subkeys,
                    "values": values,
                }));
            }
            let mut out = String::new();
            for sk in k.subkeys()? {
                out.push_str(&sk?.name());
                out.push_str("\\\n");
            }
            for v in k.values()? {
                print_value(&mut out, &v?)?;
            }
            write_stdout(out.replace("\r\n", "\n").as_bytes())
        }
        RegCmd::Get {
            hive,
            key,
            value,
            data,
            json,
        } => {
            let target = Target::parse(&hive)?;
            let h = open_read(&target)?;
            let key = resolve_key(&h, &target, &key)?;
            let k = h.open_path(&key)?;
            if json {
                let values = match &value {
                    Some(name) => vec![value_json(
                        &k.value(value_name(name))?
                            .with_context(|| format!("no value {name:?} in key {key:?}"))?,
                    )?],
                    None => k
                        .values()?
                        .map(|v| value_json(&v?))
                        .collect::<Result<Vec<_>>>()?,
                };
                return print_json(&serde_json::json!({
                    "schema_version": 1,
                    "hive": target.describe(),
                    "key": key,
                    "values": values,
                }));
            }
            if data {
                let Some(name) = value else {
                    bail!("--data needs a value name (`@` for the default value)");
                };
                let v = k
                    .value(value_name(&name))?
                    .with_context(|| format!("no value {name:?} in key {key:?}"))?;
                return write_stdout(&data_only(&v)?);
            }
            let mut out = String::new();
            match value {
                Some(name) => {
                    let v = k
                        .value(value_name(&name))?
                        .with_context(|| format!("no value {name:?} in key {key:?}"))?;
                    print_value(&mut out, &v)?;
                }
                None => {
                    for v in k.values()? {
                        print_value(&mut out, &v?)?;
                    }
                }
            }
            write_stdout(out.replace("\r\n", "\n").as_bytes())
        }
        RegCmd::Set {
            hive,
            key,
            value,
            data,
            kind,
            raw_type,
            dry_run,
            ..
        } => {
            let (t, bytes) = encode(kind, raw_type.as_deref(), &data)?;
            let target = Target::parse(&hive)?;
            let file = file_label(&target);
            edit(&target, dry_run, |h| {
                let key = crate::key_path::resolve(h, &file, &key)?;
                let k = h.create_path(&key)?;
                Ok(h.set_value(k, value_name(&value), t, &bytes)?)
            })
        }
        RegCmd::Delete {
            hive,
            key,
            value,
            recursive,
            dry_run,
            ..
        } => {
            let target = Target::parse(&hive)?;
            let file = file_label(&target);
            edit(&target, dry_run, |h| {
                let key = crate::key_path::resolve(h, &file, &key)?;
                let k = h.open_path(&key)?.offset();
                match &value {
                    Some(name) => {
                        if !h.delete_value(k, value_name(name))? {
                            bail!("no value {name:?} in key {key:?}");
                        }
                    }
                    None => {
                        if key.trim_matches('\\').is_empty() {
                            bail!("the root key cannot be deleted");
                        }
                        h.delete_key(k, recursive)?;
                    }
                }
                Ok(())
            })
        }
        RegCmd::Export {
            hive,
            key,
            output,
            prefix,
            utf8,
        } => {
            let target = Target::parse(&hive)?;
            let h = open_read(&target)?;
            let key = resolve_key(&h, &target, &key)?;
            let prefix = prefix.unwrap_or_else(|| default_prefix(&target.file_name()));
            let text_mode = utf8 || (output.is_none() && std::io::stdout().is_terminal());
            let bytes = if text_mode {
                reg::export(&h, &key, &prefix)?.into_bytes()
            } else {
                reg::export_utf16(&h, &key, &prefix)?
            };
            match output {
                Some(p) => {
                    std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
                }
                None => write_stdout(&bytes),
            }
        }
        RegCmd::Import {
            hive,
            file,
            prefix,
            user,
            partition,
            dry_run,
            force,
        } => {
            let text =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            if is_disk_image(&hive)? {
                if prefix.is_some() {
                    bail!(
                        "--prefix is for one hive; in a disk image the file's root keys choose the hives"
                    );
                }
                return import_image(&hive, &text, user, partition, dry_run, force);
            }
            if user.is_some() || partition.is_some() {
                bail!(
                    "--user and --partition are for a disk image; {} is a hive (IMAGE:HIVE names a hive in an image)",
                    hive.display()
                );
            }
            let target = Target::parse(&hive)?;
            let prefix = prefix.unwrap_or_else(|| default_prefix(&target.file_name()));
            edit(&target, dry_run, |h| {
                let st = reg::import(h, &text, &prefix)?;
                eprintln!(
                    "{} keys, {} keys deleted, {} values set, {} values deleted",
                    st.keys, st.keys_deleted, st.values_set, st.values_deleted
                );
                Ok(())
            })
        }
        RegCmd::Check { hive } => {
            let h = open_read(&Target::parse(&hive)?)?;
            let problems = reseal_hive::check(&h);
            let errors = problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .count();
            for p in &problems {
                outln!("{:?}: {p}", p.severity);
            }
            outln!("{} problems ({errors} errors)", problems.len());
            if errors > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        RegCmd::Sid {
            hive,
            from,
            to,
            no_scrub,
            dry_run,
        } => {
            let parse = |what: &str, s: &str| -> Result<reseal_security::Sid> {
                s.parse()
                    .map_err(|e| anyhow::anyhow!("--{what} {s:?}: {e}"))
            };
            let map =
                reseal_security::sidmap::SidMap::new(parse("from", &from)?, parse("to", &to)?)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
            let target = Target::parse(&hive)?;
            let label = target.describe();
            edit(&target, dry_run, |h| {
                let mut changes = Vec::new();
                let mut counts = reseal_windows::generalize::Counts::default();
                let mut warnings = Vec::new();
                reseal_windows::generalize::rewrite_hive_sids(
                    h,
                    &label,
                    &map,
                    &mut changes,
                    &mut counts,
                    &mut warnings,
                )?;
                for w in &warnings {
                    eprintln!("warning: {w}");
                }
                let scrubbed = if no_scrub { None } else { Some(h.scrub()?) };
                eprintln!(
                    "{} descriptor(s), {} key(s) renamed, {} value(s)/class name(s) rewritten{}",
                    counts.hive_descriptors,
                    counts.keys_renamed,
                    counts.values,
                    scrubbed.map_or(String::new(), |r| format!(
                        "; scrubbed {} byte(s) in {} free cell(s) and {} cell slack(s)",
                        r.bytes, r.free_cells, r.slack_cells
                    ))
                );
                Ok(())
            })
        }
        RegCmd::Replay { hive, dry_run, .. } => {
            let target = Target::parse(&hive)?;
            target.recover()?;
            let original = target.read()?;
            let h = Hive::from_bytes(original.clone())?;
            if !h.is_dirty() {
                eprintln!("{} is clean: nothing to replay", target.describe());
                return Ok(());
            }
            let (mut h, rep) = recover_from_logs(&target, h.into_bytes())?;
            eprintln!("replayed: {}", describe_recovery(&rep));
            h.make_writable()?;
            save_full(&target, &mut h, &original, dry_run)
        }
    }
}

/// Write a recovered hive (log replay may have changed any page): only the 4 KiB pages that
/// differ from the file, so the undo file stays small.
fn save_full(t: &Target, hive: &mut Hive, old: &[u8], dry_run: bool) -> Result<()> {
    hive.commit()?;
    let data = hive.as_bytes();
    let mut ranges = Vec::new();
    for (i, page) in data.chunks(4096).enumerate() {
        let off = i * 4096;
        if old.get(off..off + page.len()) != Some(page) {
            ranges.push(off..off + page.len());
        }
    }
    t.write_ranges(old, data, &ranges, dry_run)
}

/// A plain file that is not a hive (no `regf` signature) is taken for a disk image.
fn is_disk_image(arg: &Path) -> Result<bool> {
    if !arg.is_file() {
        return Ok(false);
    }
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(arg).with_context(|| format!("opening {}", arg.display()))?;
    let n = std::io::Read::read(&mut f, &mut magic)
        .with_context(|| format!("reading {}", arg.display()))?;
    Ok(!(n == 4 && &magic == b"regf"))
}

/// `reseal reg import IMAGE FILE`: every hive the file names, one journalled change.
fn import_image(
    image: &Path,
    text: &[u8],
    user: Option<String>,
    partition: Option<u32>,
    dry_run: bool,
    force: bool,
) -> Result<()> {
    let ops = reg::parse_reg(&reg::decode_reg_bytes(text))?;
    let mut img = crate::open::open(image, crate::open::write_access(dry_run), force)?;
    let opts = reseal_windows::reg_import::ImportOptions::new(user, partition, force);
    let rep = reseal_windows::reg_import::import(&mut img, &ops, &opts)?;
    for w in &rep.warnings {
        eprintln!("warning: {w}");
    }
    for h in &rep.hives {
        eprintln!(
            "{} ({}): {} keys, {} keys deleted, {} values set, {} values deleted, {} bytes{}",
            h.mount,
            h.path,
            h.keys,
            h.keys_deleted,
            h.values_set,
            h.values_deleted,
            h.bytes,
            if h.logs_invalidated.is_empty() {
                String::new()
            } else {
                format!("; logs emptied: {}", h.logs_invalidated.join(", "))
            }
        );
    }
    let changes = img.changes();
    let bytes: u64 = changes.iter().map(|r| r.end - r.start).sum();
    if dry_run {
        eprintln!(
            "dry run: would write {bytes} bytes in {} ranges of {}",
            changes.len(),
            image.display()
        );
        return Ok(());
    }
    if changes.is_empty() {
        eprintln!("no change");
        return Ok(());
    }
    let rep_c = img.commit()?;
    let mounts: Vec<&str> = rep.hives.iter().map(|h| h.mount.as_str()).collect();
    reseal_disk::journal::record_operation(
        &rep_c.undo_path,
        &format!("reg import: {}", mounts.join(", ")),
    )?;
    eprintln!(
        "reg import: wrote {} bytes in {} ranges; undo with `reseal undo {}`",
        rep_c.bytes,
        rep_c.ranges,
        image.display()
    );
    Ok(())
}
