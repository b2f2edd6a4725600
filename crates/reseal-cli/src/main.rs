//! `reseal`: generalize Windows disk images offline.
//!
//! The binary is thin: argument parsing (clap) and presentation; every capability lives in the
//! library crates.

#[macro_use]
mod out;
mod audit;
mod check;
mod clone;
mod fs;
mod generalize;
mod hive_target;
mod inspect;
mod key_path;
mod open;
mod progress;
mod reg;
mod sid;
mod state;
mod user;
mod windows_text;
mod write;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Generalize Windows disk images offline: new machine SID and computer name, no boot needed.
#[derive(Debug, Parser)]
#[command(
    name = "reseal",
    version,
    about,
    propagate_version = true,
    after_help = out::EXIT_HELP
)]
struct Cli {
    /// Seconds to wait for an image another process (reseal, qemu, a VM) has locked.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 5.0)]
    lock_timeout: f64,
    /// Container format of the image (raw, vpc/vhd, vhdx, qcow2) instead of detecting it from
    /// content, as qemu-img's `-f`: e.g. `-f raw` for a bare volume whose last sector happens
    /// to look like a VHD footer.
    #[arg(
        short = 'f',
        long = "image-format",
        global = true,
        value_name = "FORMAT"
    )]
    image_format: Option<String>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Show the container, partition table and file systems of an image.
    Inspect {
        /// Disk image (raw, VHD or VHDX; format detected from content).
        image: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check an image read-only, as `qemu-img check`: container (qcow2 refcounts), partition
    /// table (GPT CRCs, both copies, overlaps), NTFS volumes (boot backup, state, $MFTMirr,
    /// record fixups) and the hives of a Windows install. Exit 4 when problems are found.
    Check {
        /// Disk image.
        image: PathBuf,
        /// Output form (qemu-img's `--output`).
        #[arg(long, value_enum, default_value = "human")]
        output: check::Output,
        /// Same as `--output=json`.
        #[arg(long)]
        json: bool,
    },
    /// List a directory of an NTFS volume.
    Ls {
        /// Disk image.
        image: PathBuf,
        /// Directory or file (case-insensitive, `/` or `\`); default: the root.
        #[arg(default_value = "/")]
        path: String,
        /// Long listing: attributes, size, modification time, record number.
        #[arg(short, long)]
        long: bool,
        /// Partition number (default: the only NTFS volume).
        #[arg(short, long)]
        partition: Option<u32>,
    },
    /// Write a file (or `file:stream`) of an NTFS volume to standard output.
    Cat {
        /// Disk image.
        image: PathBuf,
        /// File path, optionally with `:stream`.
        path: String,
        /// Partition number (default: the only NTFS volume).
        #[arg(short, long)]
        partition: Option<u32>,
    },
    /// Copy a file (with -r a directory tree) out of an NTFS volume to LOCAL. Named streams are
    /// skipped and reparse points (symbolic links, junctions) not followed, each with a note.
    Get {
        /// Disk image.
        image: PathBuf,
        /// File or directory in the volume.
        path: String,
        /// Local destination: the file (or, with -r, the directory) to create.
        local: PathBuf,
        /// Copy a directory and everything below it, recreating its directories.
        #[arg(short, long)]
        recursive: bool,
        /// Partition number (default: the only NTFS volume).
        #[arg(short, long)]
        partition: Option<u32>,
        /// Replace existing local files (and copy into an existing directory).
        #[arg(long)]
        force: bool,
    },
    /// Convert an image to another container format (sparse-aware), as `qemu-img convert [-p]
    /// -O FORMAT INPUT OUTPUT` (the input's format: detected, or the global `-f FORMAT`).
    Convert {
        /// Source image.
        input: PathBuf,
        /// Output file (must not exist; reseal never overwrites it).
        output: PathBuf,
        /// Output format, with qemu-img's names: raw, vpc (dynamic VHD; `vhd` is an alias),
        /// vhdx (dynamic), qcow2, or vhd-fixed.
        #[arg(short = 'O', long = "format", value_enum, value_name = "FORMAT")]
        format: Format,
        /// Output options as qemu-img's `-o`, comma-separated: `subformat=fixed|dynamic` (vpc,
        /// vhdx); `force_size` (vpc): keep the exact size — by default a VHD is rounded up to
        /// what its CHS geometry covers, as qemu-img does; Azure wants whole MiB: use this.
        #[arg(short = 'o', value_name = "OPTIONS", value_parser = parse_convert_options)]
        options: Option<OutputOptions>,
        /// Show progress (`    (NN.NN/100%)` on standard error, as qemu-img -p, even when it
        /// is not a terminal; a terminal gets a bar without -p too).
        #[arg(short = 'p', long)]
        progress: bool,
    },
    /// Copy a local file into an NTFS volume (creating or replacing PATH). A new file gets the
    /// descriptor Windows would compute from its directory's inheritable ACEs (owner and group:
    /// the directory's).
    Put {
        /// Disk image.
        image: PathBuf,
        /// Local file to copy in.
        local: PathBuf,
        /// Destination path in the volume.
        path: String,
        /// Copy the directory tree LOCAL into PATH (directories created as `mkdir -p` does,
        /// files replaced as `put` does), all as one change (one `reseal undo`).
        #[arg(short, long)]
        recursive: bool,
        #[command(flatten)]
        opts: write::WriteOpts,
    },
    /// Delete a file, or an empty directory (with -r: a directory tree).
    Rm {
        /// Disk image.
        image: PathBuf,
        /// Path in the volume.
        path: String,
        /// Delete a directory and everything below it.
        #[arg(short, long)]
        recursive: bool,
        #[command(flatten)]
        opts: write::WriteOpts,
    },
    /// Create a directory (its descriptor inherited from the parent, as for `put`).
    Mkdir {
        /// Disk image.
        image: PathBuf,
        /// Path in the volume.
        path: String,
        /// Create missing parents too; an existing directory is not an error (mkdir -p; `-p`
        /// itself is the partition option in reseal).
        #[arg(long)]
        parents: bool,
        #[command(flatten)]
        opts: write::WriteOpts,
    },
    /// Rename or move a file or directory.
    Mv {
        /// Disk image.
        image: PathBuf,
        /// Current path.
        from: String,
        /// New path.
        to: String,
        #[command(flatten)]
        opts: write::WriteOpts,
    },
    /// Print a file's security descriptor as SDDL.
    Getsd {
        /// Disk image.
        image: PathBuf,
        /// Path in the volume.
        path: String,
        /// Print the self-relative bytes as hex instead.
        #[arg(long)]
        hex: bool,
        /// Partition number (default: the only NTFS volume).
        #[arg(short, long)]
        partition: Option<u32>,
    },
    /// Set a file's security descriptor from SDDL (shared through $Secure like Windows does).
    Setsd {
        /// Disk image.
        image: PathBuf,
        /// Path in the volume.
        path: String,
        /// The descriptor, e.g. `O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)`.
        sddl: String,
        /// Accept a descriptor without DACL (no `D:` part, or `D:NO_ACCESS_CONTROL`): a NULL
        /// DACL grants everyone full access.
        #[arg(long)]
        allow_null_dacl: bool,
        #[command(flatten)]
        opts: write::WriteOpts,
    },
    /// Registry hive files: ls, get, set, delete, export, import, check, replay.
    #[command(subcommand)]
    Reg(reg::RegCmd),
    /// Local accounts of the Windows install: list, passwd, enable, disable, unlock, rename.
    #[command(subcommand)]
    User(user::UserCmd),
    /// Give the Windows install a new machine SID (and computer name) everywhere, offline.
    Generalize(generalize::GeneralizeArgs),
    /// Mint unique machines: OUT as a differencing child of BASE, generalized (BASE unchanged).
    Clone(clone::CloneArgs),
    /// Replace one account domain in every NTFS descriptor, $Quota entry and SID-named file of
    /// a data volume (no Windows install on it).
    Sid(sid::SidArgs),
    /// Every place a SID lives on the volume (default: the machine SID), by category.
    Audit(audit::AuditArgs),
    /// Revert the last committed operation on an image (or hive file) from its undo file.
    Undo {
        /// Disk image or hive file.
        image: PathBuf,
        /// List the operations that can be undone (newest last) and change nothing.
        #[arg(long, conflicts_with = "dry_run")]
        list: bool,
        /// Say what would be reverted, check that it can be, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// With --list: print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Output container formats of `convert`, as qemu-img's `-O` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Sparse raw image.
    Raw,
    /// Dynamic VHD (qemu-img's `vpc`; `vhd` is accepted too).
    #[value(alias = "vhd")]
    Vpc,
    /// Fixed VHD (qemu-img: `-O vpc -o subformat=fixed`).
    VhdFixed,
    /// Dynamic VHDX (fixed with `-o subformat=fixed`).
    Vhdx,
    /// qcow2 version 3, 64 KiB clusters.
    Qcow2,
}

/// qemu-img's `subformat` output option (vpc, vhdx).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Subformat {
    Fixed,
    Dynamic,
}

/// `convert -o`: the output options reseal knows, with qemu-img's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct OutputOptions {
    /// `subformat=fixed|dynamic` (vpc, vhdx).
    subformat: Option<Subformat>,
    /// `force_size[=on|off]` (vpc): keep the exact size instead of rounding it up to the CHS
    /// geometry.
    force_size: bool,
}

/// Parse `-o` of `convert`: comma-separated `key=value` (or a bare `force_size`).
fn parse_convert_options(s: &str) -> std::result::Result<OutputOptions, String> {
    let mut o = OutputOptions::default();
    let known = "the output options reseal knows are subformat=fixed|dynamic (vpc, vhdx) and force_size (vpc)";
    for opt in s.split(',').filter(|o| !o.is_empty()) {
        match opt.split_once('=').unwrap_or((opt, "")) {
            ("subformat", "fixed") => o.subformat = Some(Subformat::Fixed),
            ("subformat", "dynamic") => o.subformat = Some(Subformat::Dynamic),
            ("subformat", v) => return Err(format!("subformat={v}: expected fixed or dynamic")),
            ("force_size", "" | "on" | "true") => o.force_size = true,
            ("force_size", "off" | "false") => o.force_size = false,
            ("force_size", v) => return Err(format!("force_size={v}: expected on or off")),
            _ => return Err(format!("{opt}: {known}")),
        }
    }
    Ok(o)
}

fn main() {
    use clap::{CommandFactory, FromArgMatches};
    let matches = Cli::command().get_matches();
    let mut cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // --firstboot and --firstboot-command run in the order given across both flags, which
    // only the matches know.
    if let Some((_, sub)) = matches.subcommand() {
        match &mut cli.command {
            Cmd::Generalize(a) => a.change.record_firstboot_order(sub),
            Cmd::Clone(a) => a.change.record_firstboot_order(sub),
            _ => {}
        }
    }
    // Every `--json` document, errors included, goes to standard output.
    let json = cli.command.json();
    if let Err(e) = run(cli) {
        out::fail(&e, json);
    }
}

impl Cmd {
    /// True when the command was asked for JSON output.
    fn json(&self) -> bool {
        match self {
            Cmd::Inspect { json, .. } => *json,
            Cmd::Check { json, output, .. } => *json || *output == check::Output::Json,
            Cmd::Generalize(a) => a.json,
            Cmd::Audit(a) => a.json,
            Cmd::Sid(a) => a.json,
            Cmd::Clone(a) => a.json,
            Cmd::Undo { json, .. } => *json,
            Cmd::User(u) => u.json(),
            Cmd::Reg(r) => r.json(),
            _ => false,
        }
    }
}

/// The library's output format for `-O FORMAT [-o subformat=…]`; a subformat the format does
/// not have is a usage error (exit 2).
fn convert_target(
    format: Format,
    sub: Option<Subformat>,
) -> Result<reseal_disk::convert::TargetFormat> {
    use reseal_disk::convert::TargetFormat as T;
    Ok(match (format, sub) {
        (Format::Raw, None) => T::Raw,
        (Format::Qcow2, None) => T::Qcow2,
        (Format::Vpc, None | Some(Subformat::Dynamic)) => T::VhdDynamic,
        (Format::Vpc | Format::VhdFixed, Some(Subformat::Fixed)) | (Format::VhdFixed, None) => {
            T::VhdFixed
        }
        (Format::Vhdx, None | Some(Subformat::Dynamic)) => T::Vhdx,
        (Format::Vhdx, Some(Subformat::Fixed)) => T::VhdxFixed,
        (f, Some(_)) => {
            use clap::CommandFactory;
            let name = f.to_possible_value().map(|v| v.get_name().to_owned());
            Cli::command()
                .error(
                    clap::error::ErrorKind::ArgumentConflict,
                    format!(
                        "-o subformat is an option of vpc and vhdx only, not of -O {}",
                        name.unwrap_or_default()
                    ),
                )
                .exit()
        }
    })
}

fn run(cli: Cli) -> Result<()> {
    open::set_lock_timeout(cli.lock_timeout);
    if let Some(f) = &cli.image_format {
        open::set_image_format(f)?;
    }
    match cli.command {
        Cmd::Inspect { image, json } => inspect::run(&image, json),
        Cmd::Check {
            image,
            output,
            json,
        } => {
            let output = if json { check::Output::Json } else { output };
            if !check::run(&image, output)? {
                std::process::exit(out::EXIT_PROBLEMS);
            }
            Ok(())
        }
        Cmd::Ls {
            image,
            path,
            long,
            partition,
        } => fs::ls(&image, &path, long, partition),
        Cmd::Cat {
            image,
            path,
            partition,
        } => fs::cat(&image, &path, partition),
        Cmd::Get {
            image,
            path,
            local,
            recursive,
            partition,
            force,
        } => fs::get(&image, &path, &local, recursive, partition, force),
        Cmd::Convert {
            input,
            output,
            format,
            options,
            progress,
        } => {
            let options = options.unwrap_or_default();
            let target = convert_target(format, options.subformat)?;
            if options.force_size && !matches!(format, Format::Vpc | Format::VhdFixed) {
                use clap::CommandFactory;
                Cli::command()
                    .error(
                        clap::error::ErrorKind::ArgumentConflict,
                        "-o force_size is an option of vpc (VHD) only",
                    )
                    .exit()
            }
            let vhd_size = if options.force_size {
                reseal_disk::vhd::VhdSize::Exact
            } else {
                reseal_disk::vhd::VhdSize::Geometry
            };
            fs::convert(&input, &output, target, vhd_size, progress)
        }
        Cmd::Undo {
            image,
            list,
            dry_run,
            json,
        } => fs::undo(&image, list, dry_run, json),
        Cmd::Generalize(a) => generalize::run(&a),
        Cmd::Audit(a) => audit::run(&a),
        Cmd::Sid(a) => sid::run(&a),
        Cmd::Clone(a) => clone::run(&a),
        Cmd::Reg(cmd) => reg::run(cmd),
        Cmd::User(cmd) => user::run(cmd),
        Cmd::Put {
            image,
            local,
            path,
            recursive,
            opts,
        } => {
            if recursive {
                write::put_tree(&image, &local, &path, opts)
            } else {
                write::put(&image, &local, &path, opts)
            }
        }
        Cmd::Rm {
            image,
            path,
            recursive,
            opts,
        } => write::rm(&image, &path, recursive, opts),
        Cmd::Mkdir {
            image,
            path,
            parents,
            opts,
        } => {
            if parents {
                write::mkdir_parents(&image, &path, opts)
            } else {
                write::mkdir(&image, &path, opts)
            }
        }
        Cmd::Mv {
            image,
            from,
            to,
            opts,
        } => write::mv(&image, &from, &to, opts),
        Cmd::Getsd {
            image,
            path,
            hex,
            partition,
        } => write::getsd(&image, &path, partition, hex),
        Cmd::Setsd {
            image,
            path,
            sddl,
            allow_null_dacl,
            opts,
        } => write::setsd(&image, &path, &sddl, allow_null_dacl, opts),
    }
}
