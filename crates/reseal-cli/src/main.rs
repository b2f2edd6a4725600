//! `reseal`: generalize Windows disk images offline.
//!
//! The binary is thin: argument parsing (clap) and presentation; every capability lives in the
//! library crates.

mod fs;
mod inspect;
mod progress;
mod reg;
mod state;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Generalize Windows disk images offline: new machine SID and computer name, no boot needed.
#[derive(Debug, Parser)]
#[command(name = "reseal", version, about, propagate_version = true)]
struct Cli {
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
    /// Convert an image to another container format (sparse-aware).
    Convert {
        /// Source image.
        input: PathBuf,
        /// Output file (must not exist).
        output: PathBuf,
        /// Output format.
        #[arg(long, value_enum)]
        format: Format,
    },
    /// Registry hive files: ls, get, set, delete, export, import, check, replay.
    #[command(subcommand)]
    Reg(reg::RegCmd),
    /// Revert the last committed operation on an image from its undo file.
    Undo {
        /// Disk image.
        image: PathBuf,
    },
}

/// Output container formats.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Format {
    /// Sparse raw image.
    Raw,
    /// Dynamic VHD.
    Vhd,
    /// Fixed VHD.
    VhdFixed,
    /// Dynamic VHDX.
    Vhdx,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = run(cli) {
        eprintln!("reseal: error: {e:#}");
        std::process::exit(1);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Cmd::Inspect { image, json } => inspect::run(&image, json),
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
        Cmd::Convert {
            input,
            output,
            format,
        } => fs::convert(&input, &output, format),
        Cmd::Undo { image } => fs::undo(&image),
        Cmd::Reg(cmd) => reg::run(cmd),
    }
}
