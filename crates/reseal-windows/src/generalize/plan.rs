//! The plan of [`super::generalize`]: its options and their checks, the new machine SID, and
//! the read phase ([`prepare`]) that selects the install, applies the refusals and reads the
//! hives before anything is written.

use reseal_disk::partition::Slice;
use reseal_disk::{Device, Image};
use reseal_ntfs::state::VolumeState;
use reseal_security::sidmap::SidMap;
use reseal_security::Sid;

use super::hives::{hive_paths, read_targets, Target};
use super::report::{teller, Progress};
use super::volume::volume_refusal;
use crate::discover::HiveState;
use crate::ops::{self, computer_name, Operation, Operations};
use crate::warning::{Warning, WarningCode};
use crate::{scan, Error, Refusal, Result, SkipKind, WindowsInstall};

/// How the new machine SID is chosen.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum NewSid {
    /// Three random sub-authorities (from the operating system's random source) with the same
    /// numbers of decimal digits as the old ones, so that no SID string changes length.
    #[default]
    Random,
    /// This account-domain SID `S-1-5-21-A-B-C`.
    Given(Sid),
}

/// Options of [`generalize`](super::generalize).
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct Options {
    /// The new machine SID.
    pub new_sid: NewSid,
    /// A new computer name (NetBIOS rules: 1–15 characters, see [`validate_computer_name`]);
    /// `random` makes a Sysprep-style `DESKTOP-XXXXXXX` ([`crate::ops::computer_name::random_name`]).
    pub computer_name: Option<String>,
    /// The operations to run (default: [`Operations::defaults`]). `computer-name` only runs
    /// when [`Options::computer_name`] is given.
    pub operations: Operations,
    /// Partition of the Windows install (default: the only install of the image).
    pub partition: Option<u32>,
    /// Go on although a volume of the image looks BitLocker-encrypted.
    pub force_bitlocker: bool,
    /// Go on although the volume is dirty, hibernated or was left by Fast Startup.
    pub force_volume_state: bool,
    /// Go on although a hive is dirty and its logs cannot be replayed.
    pub force_dirty_hive: bool,
    /// Go on although TxR holds pending registry transactions.
    pub force_txr: bool,
    /// Go on although the machine is joined to a domain (the domain SID is never rewritten).
    pub force_domain_joined: bool,
    /// Informational: the caller will discard the journal (recorded in the report).
    pub dry_run: bool,
    /// Do not scrub the hives ([`Hive::scrub`](reseal_hive::Hive::scrub)): free cells and the slack of cells keep
    /// whatever they held, old SIDs included.
    pub no_scrub: bool,
    /// Leave the image in the state Sysprep `/generalize /oobe` leaves it in for its next
    /// boot (ImageState, `SYSTEM\Setup`; see [`crate::ops::provision`]).
    pub oobe: bool,
    /// An answer file to place (`Windows\Panther\unattend.xml` + `SYSTEM\Setup\UnattendFile`);
    /// checked with [`crate::provision::parse_unattend`] before anything is written.
    pub unattend: Option<crate::provision::InputFile>,
    /// An offline domain join blob for the specialize pass (needs [`Options::oobe`]).
    pub djoin_blob: Option<crate::provision::InputFile>,
    /// Commands and files run once as LocalSystem at the next boot, in this order.
    pub firstboot: Vec<crate::provision::FirstBoot>,
}

/// Check a NetBIOS computer name: 1–15 characters, no spaces or `\ / : * ? " < > | , ~ ! @ # $
/// % ^ & ' . ( ) { } _`, not only digits, ASCII letters/digits/`-` only (reseal is stricter than
/// Windows, which also accepts some non-ASCII names, so that DNS and NetBIOS names agree).
///
/// # Errors
/// [`Error::Invalid`] naming the rule.
pub fn validate_computer_name(name: &str) -> Result<()> {
    let bad = |reason: String| {
        Err(Error::Invalid {
            what: "computer name",
            reason,
        })
    };
    if name.is_empty() {
        return bad("empty".into());
    }
    if name.chars().count() > 15 {
        return bad(format!(
            "{name:?} has {} characters; NetBIOS names have at most 15",
            name.chars().count()
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return bad(format!(
            "{name:?} contains {c:?}; use ASCII letters, digits and '-'"
        ));
    }
    if name.chars().all(|c| c.is_ascii_digit()) {
        return bad(format!("{name:?} is only digits"));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return bad(format!("{name:?} starts or ends with '-'"));
    }
    Ok(())
}

/// The provisioning options, checked (answer file parsed, blob decoded, first-boot items
/// named) before anything is read from the image or written.
fn provision_request(opts: &Options) -> Result<ops::provision::Request> {
    if opts.djoin_blob.is_some() && !opts.oobe {
        return Err(Error::Invalid {
            what: "--djoin-blob",
            reason: "needs --oobe (the blob is read by the specialize pass)".into(),
        });
    }
    let unattend = match &opts.unattend {
        Some(f) => Some(crate::provision::parse_unattend(&f.name, &f.data)?),
        None => None,
    };
    let djoin_blob = match &opts.djoin_blob {
        Some(f) => Some(crate::provision::parse_djoin_blob(&f.name, &f.data)?),
        None => None,
    };
    crate::provision::check_firstboot(&opts.firstboot)?;
    Ok(ops::provision::Request {
        oobe: opts.oobe,
        unattend,
        djoin_blob,
        firstboot: opts.firstboot.clone(),
    })
}

fn refused(r: Refusal) -> Error {
    Error::Refused(r)
}

/// A random account domain whose `X-Y-Z` have the same numbers of decimal digits as `old`'s, so
/// that every SID string keeps its length: string values, key names and task files do not
/// grow, and the root key of `UsrClass.dat` (`<SID>_Classes`) is renamed in place (tools such
/// as regipy find the root as the first cell of the first hbin, not through the base block).
fn random_sid(old: &Sid) -> Result<Sid> {
    use std::io::Read;
    let mut b = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| Error::Invalid {
            what: "random SID",
            reason: format!("reading /dev/urandom: {e}"),
        })?;
    let olds = old.sub_authorities();
    let mut sub = [21u32, 0, 0, 0];
    for i in 0..3 {
        let r = u64::from_le_bytes([
            b[8 * i],
            b[8 * i + 1],
            b[8 * i + 2],
            b[8 * i + 3],
            b[8 * i + 4],
            b[8 * i + 5],
            b[8 * i + 6],
            b[8 * i + 7],
        ]);
        let digits = olds.get(i + 1).map_or(10, |v| v.to_string().len()) as u32;
        let lo: u64 = if digits <= 1 {
            1
        } else {
            10u64.pow(digits - 1)
        };
        let hi: u64 = (10u64.pow(digits) - 1).min(u64::from(u32::MAX));
        let v = lo + r % (hi - lo + 1);
        sub[i + 1] = u32::try_from(v).unwrap_or(u32::MAX);
    }
    Sid::new(5, &sub).map_err(|e| Error::Invalid {
        what: "random SID",
        reason: e.to_string(),
    })
}

/// What [`generalize`](super::generalize) reads before it writes anything, for any new SID and computer name:
/// the install and its refusals (forced ones as warnings), the partition, and every hive to
/// rewrite, parsed. [`prepare`] makes it once; [`generalize_prepared`](super::generalize_prepared) then generalizes any
/// number of images whose virtual disk is byte-identical to the one it was read from (a
/// differencing child or a full copy made just before), each with its own SID and name, and
/// gives the same result as [`generalize`](super::generalize) on that image would: every later step, which reads
/// and writes the image itself, is the same code. The write phase's own reads that do not
/// depend on the new SID (see [`Caches`]) are kept here by the first image and reused.
#[derive(Debug)]
pub struct Prepared {
    pub(super) install: WindowsInstall,
    pub(super) old_sid: Sid,
    pub(super) partition: u32,
    pub(super) start: u64,
    pub(super) len: u64,
    /// The virtual size of the image read (a mismatch means another image).
    pub(super) image_len: u64,
    pub(super) targets: Vec<Target>,
    pub(super) warnings: Vec<Warning>,
    pub(super) caches: Caches,
}

/// Reads of the write phase that are the same for every new SID, kept by [`Prepared`] once
/// the first image made them. Each is made at a point where the write phase has changed
/// nothing it depends on, so the value read from any clone equals the value read from the
/// base: which files name which `$Secure` id (hive writes and descriptor rewrites keep every
/// id), file paths by record (nothing is renamed before the renames), and which names hold the
/// old SID (matched on the old SID alone).
#[derive(Debug, Default)]
pub(super) struct Caches {
    /// The volume's MFT in one pass ([`WindowsInstall`]'s, read before anything was written):
    /// which files name which `$Secure` id, and file paths by record.
    pub(super) catalog: std::sync::OnceLock<std::sync::Arc<reseal_ntfs::catalog::Catalog>>,
    /// Paths whose last component holds the old SID, and the warnings of the search.
    pub(super) sid_names: std::sync::OnceLock<(Vec<String>, Vec<Warning>)>,
}

impl Prepared {
    /// The machine SID every image generalized from this plan starts with.
    pub fn old_sid(&self) -> &Sid {
        &self.old_sid
    }
}

/// The read phase of [`generalize`](super::generalize) on `image` (refusals included; nothing is written).
/// `opts` is what every [`generalize_prepared`](super::generalize_prepared) call will take apart from `new_sid` (random
/// each time, or given) and `computer_name`; its other fields must not change in between.
///
/// # Errors
/// As [`generalize`](super::generalize) (options, refusals, reads).
pub fn prepare(
    image: &mut Image,
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Prepared> {
    check_options(opts)?;
    read_phase(image, opts, progress)
}

/// The options' own checks, before anything is read: the computer name (drawn when
/// `random`) and the provisioning request.
pub(super) fn check_options(opts: &Options) -> Result<(Option<String>, ops::provision::Request)> {
    let ops = &opts.operations;
    let computer_name = match &opts.computer_name {
        Some(n) if n.eq_ignore_ascii_case("random") => Some(computer_name::random_name()?),
        Some(n) => {
            validate_computer_name(n)?;
            Some(n.clone())
        }
        None => None,
    };
    let provision = provision_request(opts)?;
    if !provision.is_empty() && !ops.contains(Operation::Provision) {
        return Err(Error::Invalid {
            what: "operations",
            reason: "--oobe, --unattend, --djoin-blob or --firstboot* are given but the \
                     provision operation is not selected"
                .into(),
        });
    }
    if computer_name.is_some() && !ops.contains(Operation::ComputerName) {
        return Err(Error::Invalid {
            what: "operations",
            reason: "a computer name is given but the computer-name operation is not selected"
                .into(),
        });
    }
    Ok((computer_name, provision))
}

/// The new SID's checks against the install, and its map.
pub(super) fn new_sid_map(
    install: &WindowsInstall,
    old_sid: &Sid,
    new_sid: &Sid,
) -> Result<SidMap> {
    if new_sid == old_sid {
        return Err(Error::Invalid {
            what: "new SID",
            reason: format!("{new_sid} is the current machine SID"),
        });
    }
    if install
        .domain
        .domain_sid
        .as_deref()
        .is_some_and(|d| d.eq_ignore_ascii_case(&new_sid.to_string()))
    {
        return Err(Error::Invalid {
            what: "new SID",
            reason: format!("{new_sid} is the SID of the domain the machine is joined to"),
        });
    }
    SidMap::new(old_sid.clone(), new_sid.clone()).map_err(|e| Error::Invalid {
        what: "new SID",
        reason: e.to_string(),
    })
}

/// The new machine SID: the given one, or a random one other than `old`.
pub(super) fn choose_new_sid(new_sid: &NewSid, old: &Sid) -> Result<Sid> {
    Ok(match new_sid {
        NewSid::Random => {
            let mut s = random_sid(old)?;
            while s == *old {
                s = random_sid(old)?;
            }
            s
        }
        NewSid::Given(s) => s.clone(),
    })
}

/// The read phase: the install and its refusals, the partition, the volume state and every
/// hive to rewrite, read. Nothing is written.
pub(super) fn read_phase(
    image: &mut Image,
    opts: &Options,
    progress: &mut dyn FnMut(Progress),
) -> Result<Prepared> {
    let mut tell = teller(progress);
    let sid_op = opts.operations.contains(Operation::MachineSid);
    tell("scan", 0, 0);
    let mut warnings = Vec::new();
    let install = select_install(image, opts, &mut warnings)?;
    let partition = install.partition;
    let old_sid = machine_sid(&install)?;
    install_refusals(&install, opts, &mut warnings)?;
    install_warnings(&install, &mut warnings);
    // A given SID is checked before the reads, as before the plan was split off.
    if let (true, NewSid::Given(s)) = (sid_op, &opts.new_sid) {
        new_sid_map(&install, &old_sid, s)?;
    }

    let (start, len) = crate::partition_window(&*image, partition)?;
    let mut slice = Slice::new(&mut *image, start, len)?;
    // Volume state and hive reads (read-only view).
    let mut targets = {
        let mut browse = reseal_ntfs::browse::Volume::open(&mut slice)
            .map_err(|source| Error::Ntfs { partition, source })?;
        check_volume_state(&mut browse, partition, opts, &mut warnings)?;
        let paths = hive_paths(&mut browse, &install, &mut warnings);
        read_targets(
            &mut browse,
            paths,
            opts.force_dirty_hive,
            &mut warnings,
            &mut tell,
        )?
    };

    if sid_op {
        // The SID rewrite makes every hive writable first (indexing its free cells): done
        // here, once per plan. One that refuses stays read-only and fails there as before.
        for t in &mut targets {
            let _ = t.hive.make_writable();
        }
    }
    let catalog = install.catalog.clone();
    Ok(Prepared {
        install,
        old_sid,
        partition,
        start,
        len,
        image_len: image.len(),
        targets,
        warnings,
        caches: Caches {
            catalog: catalog.map(Into::into).unwrap_or_default(),
            sid_names: Default::default(),
        },
    })
}

/// `r` as a warning when `forced`, else as the error.
fn unless_forced(r: Refusal, forced: bool, warnings: &mut Vec<Warning>) -> Result<()> {
    if !forced {
        return Err(refused(r));
    }
    warnings.push(Warning::new(
        WarningCode::ForcedRefusal,
        format!("forced: {r}"),
    ));
    Ok(())
}

/// Scan `image` and pick the install to generalize: [`Options::partition`]'s, or the only
/// one. A BitLocker-looking volume anywhere in the image is refused unless forced.
fn select_install(
    image: &mut Image,
    opts: &Options,
    warnings: &mut Vec<Warning>,
) -> Result<WindowsInstall> {
    let sc = scan(image)?;
    for s in &sc.skipped {
        if s.kind == SkipKind::BitLocker {
            let r = Refusal::BitLocker {
                partition: s.partition,
            };
            unless_forced(r, opts.force_bitlocker, warnings)?;
        }
    }
    if let Some(p) = opts.partition {
        // Every volume of the image is either an install or a skipped volume.
        let mut have: Vec<u32> = sc
            .installs
            .iter()
            .map(|w| w.partition)
            .chain(sc.skipped.iter().map(|s| s.partition))
            .collect();
        have.sort_unstable();
        have.dedup();
        if !have.contains(&p) {
            return Err(refused(Refusal::NoSuchPartition {
                partition: p,
                partitions: have,
            }));
        }
    }
    sc.into_one_install(opts.partition).map_err(refused)
}

/// The install's machine SID: SAM's and SECURITY's must agree, and a domain controller (whose
/// machine SID is the domain's) is refused.
fn machine_sid(install: &WindowsInstall) -> Result<Sid> {
    let (sam_sid, lsa_sid) = (&install.sam_machine_sid, &install.lsa_machine_sid);
    let old_text = match (sam_sid, lsa_sid) {
        (Some(a), Some(b)) if !a.eq_ignore_ascii_case(b) => {
            return Err(refused(Refusal::SidMismatch {
                sam: a.clone(),
                security: b.clone(),
            }))
        }
        (Some(a), _) => a.clone(),
        (None, Some(b)) => b.clone(),
        (None, None) => return Err(refused(Refusal::NoMachineSid)),
    };
    let old_sid: Sid = old_text.parse().map_err(|e| Error::Invalid {
        what: "machine SID",
        reason: format!("{old_text}: {e}"),
    })?;
    if install.domain.domain_controller
        || install
            .domain
            .domain_sid
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case(&old_text))
    {
        return Err(refused(Refusal::DomainController));
    }
    Ok(old_sid)
}

/// The refusals read from the install's facts (domain membership, pending TxR, dirty hives
/// without usable logs), each a warning when forced.
fn install_refusals(
    install: &WindowsInstall,
    opts: &Options,
    warnings: &mut Vec<Warning>,
) -> Result<()> {
    if install.domain.joined {
        let r = Refusal::DomainMember {
            domain: install.domain.name.clone(),
            domain_sid: install.domain.domain_sid.clone(),
        };
        unless_forced(r, opts.force_domain_joined, warnings)?;
    }
    if install.txr.pending {
        let r = Refusal::PendingTxR {
            files: install.txr.files_with_content.clone(),
        };
        unless_forced(r, opts.force_txr, warnings)?;
    }
    for h in &install.hives {
        if let HiveState::DirtyWithoutUsableLogs { reason } = &h.state {
            let r = Refusal::DirtyHive {
                hive: h.path.clone(),
                reason: reason.clone(),
            };
            unless_forced(r, opts.force_dirty_hive, warnings)?;
        }
    }
    Ok(())
}

/// What the SID change breaks without refusing: DPAPI master keys and EFS files.
fn install_warnings(install: &WindowsInstall, warnings: &mut Vec<Warning>) {
    if !install.dpapi.is_empty() {
        warnings.push(Warning::new(
            WarningCode::DpapiMasterKeys,
            format!(
                "DPAPI master keys exist for {} account(s) ({}): secrets protected by them are \
                 bound to the old user SIDs and will no longer decrypt",
                install.dpapi.len(),
                install
                    .dpapi
                    .iter()
                    .map(|d| d.sid.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    if install.efs.count > 0 {
        warnings.push(Warning::new(
            WarningCode::EfsFiles,
            format!(
                "{} EFS-encrypted file(s) (e.g. {}): their keys are protected by DPAPI of the old \
             user SIDs",
                install.efs.count,
                install.efs.first.join(", ")
            ),
        ));
    }
}

/// The volume state's refusal ([`volume_refusal`]), a warning when forced.
fn check_volume_state<D: Device>(
    browse: &mut reseal_ntfs::browse::Volume<D>,
    partition: u32,
    opts: &Options,
    warnings: &mut Vec<Warning>,
) -> Result<()> {
    let state =
        VolumeState::from_volume(browse).map_err(|source| Error::Ntfs { partition, source })?;
    match volume_refusal(&state, partition) {
        Some(r) => unless_forced(r, opts.force_volume_state, warnings),
        None => Ok(()),
    }
}
