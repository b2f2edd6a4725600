//! `provision`: what `--oobe`, `--unattend`, `--djoin-blob`, `--firstboot` and
//! `--firstboot-command` place in the image (the inputs are checked in [`crate::provision`]
//! before anything is written). docs/OPERATIONS.md ("Provisioning") has every value and file
//! with its source.
//!
//! * `--oobe`: SOFTWARE `Microsoft\Windows\CurrentVersion\Setup\State` `ImageState` and
//!   `Windows\Setup\State\State.ini` = `IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE`; SYSTEM `Setup`
//!   `CmdLine` = `oobe\windeploy.exe`, `SetupType` = 1, `SystemSetupInProgress` = 1,
//!   `Setup\Status\ChildCompletion` `setup.exe` = 1 (pending).
//! * an answer file (given, or made for a blob): `Windows\Panther\unattend.xml` and SYSTEM
//!   `Setup` `UnattendFile` naming it.
//! * first boot: the wrapper `Windows\Setup\Scripts\reseal-firstboot.cmd`, the items in
//!   `Windows\Setup\Scripts\reseal-firstboot\NN-name`, and the trigger: `SetupComplete.cmd`
//!   with `--oobe` (an existing one is kept as `SetupComplete-before-reseal.cmd` and called
//!   first), else SYSTEM `Setup` `SetupType` = 2 and `CmdLine` = `cmd.exe /c …` (the wrapper
//!   puts both back to 0 and "" at its end).

use reseal_disk::Device;
use reseal_ntfs::Volume;

use super::{config_hive, hive_err, read_value, shown, writable, Log, Operation};
use crate::generalize::{ntfs_err, Change, Target};
use crate::provision::{self, AnswerFile, FirstBoot, SYSTEM_DRIVE};
use crate::{Error, Result};

/// What the provisioning flags ask for (checked inputs).
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Leave the image as Sysprep `/generalize /oobe` does.
    pub oobe: bool,
    /// The answer file to place.
    pub unattend: Option<AnswerFile>,
    /// The base64 text of an offline domain join blob.
    pub djoin_blob: Option<String>,
    /// First-boot items in order.
    pub firstboot: Vec<FirstBoot>,
}

impl Request {
    /// Whether anything is asked.
    pub fn is_empty(&self) -> bool {
        !self.oobe
            && self.unattend.is_none()
            && self.djoin_blob.is_none()
            && self.firstboot.is_empty()
    }
}

/// The files to write after the hives, decided while the hives are edited.
#[derive(Debug, Default)]
pub(crate) struct Files {
    files: Vec<(String, Vec<u8>)>,
    oobe: bool,
}

const OP: Operation = Operation::Provision;
const OOBE_STATE: &str = "IMAGE_STATE_GENERALIZE_RESEAL_TO_OOBE";
const SCRIPTS: &str = "Windows/Setup/Scripts";
const BEFORE: &str = "SetupComplete-before-reseal.cmd";
const REG_SZ: u32 = 1;
const REG_DWORD: u32 = 4;

/// Set `key` [`value`] (creating the key), recording the old data or `(none)`.
fn set(t: &mut Target, key: &str, value: &str, ty: u32, data: &[u8], log: &mut Log) -> Result<()> {
    let old = read_value(t, key, value)?;
    if old
        .as_ref()
        .is_some_and(|(oty, od)| *oty == ty && od == data)
    {
        return Ok(());
    }
    writable(t)?;
    let off = t.hive.create_path(key).map_err(|s| hive_err(t, s))?;
    t.hive
        .set_value(off, value, ty, data)
        .map_err(|s| hive_err(t, s))?;
    log.counts.provisioned += 1;
    log.changes.push(Change::ValueSet {
        operation: OP,
        hive: format!("/{}", t.path),
        key: key.to_string(),
        value: value.to_string(),
        old: old.map_or_else(|| "(none)".to_string(), |(oty, od)| shown(oty, &od)),
        new: shown(ty, data),
    });
    Ok(())
}

fn sz(s: &str) -> Vec<u8> {
    reseal_hive::key_value::encode_sz(s)
}

fn dword(v: u32) -> Vec<u8> {
    v.to_le_bytes().to_vec()
}

/// The architecture of the install for answer-file components: SYSTEM
/// `ControlSet00N\Control\Session Manager\Environment` `PROCESSOR_ARCHITECTURE` of the
/// current control set (`AMD64`, `x86`, `ARM64`), `amd64` when it cannot be read.
fn architecture(t: &Target, log: &mut Log) -> Result<&'static str> {
    let cur = read_value(t, "Select", "Current")?
        .and_then(|(_, d)| {
            d.get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        })
        .unwrap_or(1);
    let key = format!("ControlSet{cur:03}\\Control\\Session Manager\\Environment");
    let arch = read_value(t, &key, "PROCESSOR_ARCHITECTURE")?.map(|(ty, d)| shown(ty, &d));
    Ok(
        match arch.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("amd64") => "amd64",
            Some("x86") => "x86",
            Some("arm64") => "arm64",
            other => {
                log.warnings.push(
                    crate::Warning::new(
                        crate::WarningCode::UnexpectedValue,
                        format!(
                            "SYSTEM {key} [PROCESSOR_ARCHITECTURE] is {}: the answer-file \
                             component is written for amd64",
                            other.map_or("absent".to_string(), |o| format!("{o:?}"))
                        ),
                    )
                    .at(format!("SYSTEM\\{key}")),
                );
                "amd64"
            }
        },
    )
}

/// The registry part, in memory with the other hive edits; returns the files to write.
pub(crate) fn apply_hives(targets: &mut [Target], req: &Request, log: &mut Log) -> Result<Files> {
    let mut out = Files {
        oobe: req.oobe,
        ..Files::default()
    };
    let sys = config_hive(targets, "SYSTEM").ok_or_else(|| Error::Invalid {
        what: "provisioning",
        reason: "the image has no SYSTEM hive".into(),
    })?;
    let panther = format!("{SYSTEM_DRIVE}\\Windows\\Panther\\unattend.xml");
    // The answer file: the user's (merged with the blob), or a minimal one for a blob.
    let answer: Option<Vec<u8>> = match (&req.unattend, &req.djoin_blob) {
        (Some(a), None) => Some(a.original.clone()),
        (a, Some(blob)) => {
            let arch = architecture(sys, log)?;
            let base = match a {
                Some(a) => a.clone(),
                None => provision::parse_unattend(
                    "(minimal answer file)",
                    provision::MINIMAL_UNATTEND.as_bytes(),
                )?,
            };
            Some(provision::merge_account_data(&base, blob, arch)?)
        }
        (None, None) => None,
    };
    if !req.oobe && !req.firstboot.is_empty() {
        // The non-generalized trigger takes over SetupType/CmdLine: refuse an image that is
        // already set to run setup at its next boot.
        let st = read_value(sys, "Setup", "SetupType")?
            .and_then(|(_, d)| {
                d.get(..4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            })
            .unwrap_or(0);
        if st != 0 {
            let cmd = read_value(sys, "Setup", "CmdLine")?
                .map(|(ty, d)| shown(ty, &d))
                .unwrap_or_default();
            return Err(Error::Invalid {
                what: "--firstboot",
                reason: format!(
                    "SYSTEM Setup has SetupType={st} (CmdLine {cmd:?}): the image already runs \
                     setup at its next boot; use --oobe so that SetupComplete.cmd runs the \
                     first-boot items"
                ),
            });
        }
    }
    if req.oobe {
        set(
            sys,
            "Setup",
            "CmdLine",
            REG_SZ,
            &sz("oobe\\windeploy.exe"),
            log,
        )?;
        set(sys, "Setup", "SetupType", REG_DWORD, &dword(1), log)?;
        set(
            sys,
            "Setup",
            "SystemSetupInProgress",
            REG_DWORD,
            &dword(1),
            log,
        )?;
        set(
            sys,
            "Setup\\Status\\ChildCompletion",
            "setup.exe",
            REG_DWORD,
            &dword(1),
            log,
        )?;
    } else if !req.firstboot.is_empty() {
        let cmd = format!(
            "cmd.exe /c {}\\reseal-firstboot.cmd",
            provision::scripts_dir_win()
        );
        set(sys, "Setup", "SetupType", REG_DWORD, &dword(2), log)?;
        set(sys, "Setup", "CmdLine", REG_SZ, &sz(&cmd), log)?;
    }
    if let Some(a) = answer {
        set(sys, "Setup", "UnattendFile", REG_SZ, &sz(&panther), log)?;
        out.files.push(("Windows/Panther/unattend.xml".into(), a));
    }
    if req.oobe {
        if let Some(sw) = config_hive(targets, "SOFTWARE") {
            set(
                sw,
                "Microsoft\\Windows\\CurrentVersion\\Setup\\State",
                "ImageState",
                REG_SZ,
                &sz(OOBE_STATE),
                log,
            )?;
        } else {
            log.warnings
                .push("no SOFTWARE hive: ImageState is only set in State.ini".into());
        }
        out.files.push((
            "Windows/Setup/State/State.ini".into(),
            provision::state_ini(OOBE_STATE),
        ));
    }
    if !req.firstboot.is_empty() {
        for (i, it) in req.firstboot.iter().enumerate() {
            let data = match it {
                FirstBoot::File(f) => f.data.clone(),
                FirstBoot::Command(c) => provision::command_file(c),
            };
            out.files.push((
                format!(
                    "{SCRIPTS}/{}/{}",
                    provision::ITEMS_DIR,
                    provision::item_name(i, it)
                ),
                data,
            ));
        }
        out.files.push((
            format!("{SCRIPTS}/reseal-firstboot.cmd"),
            provision::wrapper(&req.firstboot, !req.oobe),
        ));
    }
    Ok(out)
}

/// Every missing directory of `path`'s parent, recorded.
fn make_parents<D: Device>(
    vol: &mut Volume<D>,
    partition: u32,
    path: &str,
    log: &mut Log,
) -> Result<()> {
    let mut at = String::new();
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if !at.is_empty() {
            at.push('/');
        }
        at.push_str(part);
        match vol.metadata(&at) {
            Ok(m) if m.is_dir => {}
            Ok(_) => {
                return Err(Error::Invalid {
                    what: "provisioning",
                    reason: format!("/{at} exists and is not a folder"),
                })
            }
            Err(reseal_ntfs::Error::NotFound { .. }) => {
                vol.create_dir(&at)
                    .map_err(|e| ntfs_err(partition, &at, e))?;
                log.counts.provisioned += 1;
                log.changes.push(Change::DirCreated {
                    operation: OP,
                    path: format!("/{at}"),
                });
            }
            Err(e) => return Err(ntfs_err(partition, &at, e)),
        }
    }
    Ok(())
}

fn write<D: Device>(
    vol: &mut Volume<D>,
    partition: u32,
    path: &str,
    data: &[u8],
    log: &mut Log,
) -> Result<()> {
    make_parents(vol, partition, path, log)?;
    let replaced = match vol.metadata(path) {
        Ok(m) if m.is_dir => {
            return Err(Error::Invalid {
                what: "provisioning",
                reason: format!("/{path} is a folder"),
            })
        }
        Ok(_) => true,
        Err(reseal_ntfs::Error::NotFound { .. }) => false,
        Err(e) => return Err(ntfs_err(partition, path, e)),
    };
    vol.write_file(path, data)
        .map_err(|e| ntfs_err(partition, path, e))?;
    log.counts.provisioned += 1;
    log.changes.push(Change::FileWritten {
        operation: OP,
        path: format!("/{path}"),
        size: data.len() as u64,
        replaced,
    });
    Ok(())
}

/// The files, after the cleanup operations (which empty `Windows\Panther`).
pub(crate) fn apply_files<D: Device>(
    vol: &mut Volume<D>,
    partition: u32,
    files: &Files,
    firstboot: bool,
    log: &mut Log,
) -> Result<()> {
    for (p, d) in &files.files {
        write(vol, partition, p, d, log)?;
    }
    if firstboot && files.oobe {
        let sc = format!("{SCRIPTS}/SetupComplete.cmd");
        let before = format!("{SCRIPTS}/{BEFORE}");
        let existing = match vol.read_file(&sc) {
            Ok(d) => Some(d),
            Err(reseal_ntfs::Error::NotFound { .. }) => None,
            Err(e) => return Err(ntfs_err(partition, &sc, e)),
        };
        let keep = match &existing {
            Some(d) if !provision::is_ours(d) => {
                if vol.metadata(&before).is_ok() {
                    return Err(Error::Invalid {
                        what: "provisioning",
                        reason: format!(
                            "/{sc} exists and so does /{before}: the image's own \
                             SetupComplete.cmd cannot be kept under that name"
                        ),
                    });
                }
                vol.rename(&sc, &before)
                    .map_err(|e| ntfs_err(partition, &sc, e))?;
                log.counts.provisioned += 1;
                log.changes.push(Change::FileMoved {
                    operation: OP,
                    old: format!("/{sc}"),
                    new: format!("/{before}"),
                });
                true
            }
            // Ours from an earlier run: it calls the kept one when that exists.
            _ => vol.metadata(&before).is_ok(),
        };
        write(
            vol,
            partition,
            &sc,
            &provision::setup_complete(keep.then_some(BEFORE)),
            log,
        )?;
    }
    Ok(())
}
