//! `reseal sid IMAGE --from DOMAIN --to DOMAIN`: one account domain replaced by another in
//! every NTFS security descriptor (`$Secure` and legacy per-file ones), in `$Quota`, and in the
//! names of files and folders, on a volume without a Windows install — the data disks a cloned
//! machine brings along, whose ACLs name the golden machine's accounts.
//!
//! Descriptors and quota SIDs are rewritten in place (a domain SID has one binary length), so
//! `$SII`/`$SDH` stay consistent through [`reseal_ntfs::Volume::rewrite_descriptors_from`];
//! names are renamed deepest first. All writes go through the image journal: the caller
//! commits (one undo file) or discards them (`--dry-run`).

use reseal_disk::partition::{PartitionTable, Slice};
use reseal_disk::{Device, Image};
use reseal_security::sidmap::SidMap;
use reseal_security::Sid;
use serde::{Deserialize, Serialize};

use crate::warning::{Warning, WarningCode};
use crate::{Error, Refusal, Result};

/// One file or folder renamed by [`change_volume_sid`] (the `old`/`new` of generalize's
/// `file_renamed` change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Renamed {
    /// Old path, `/`-rooted.
    pub old: String,
    /// New path, `/`-rooted.
    pub new: String,
}

/// What [`change_volume_sid`] changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSidReport {
    /// Partition (0: the whole disk is the volume).
    pub partition: u32,
    /// The domain replaced.
    pub from: String,
    /// Its replacement.
    pub to: String,
    /// Descriptors rewritten (`$Secure` entries and legacy attributes).
    pub descriptors: usize,
    /// `$Quota` SIDs rewritten.
    pub quota_sids: usize,
    /// Files and folders renamed, `/`-rooted paths.
    pub renamed: Vec<Renamed>,
    /// Places not rewritten, with why.
    pub warnings: Vec<Warning>,
}

fn volume_range(image: &Image, partition: Option<u32>) -> Result<(u32, u64, u64)> {
    let t = PartitionTable::read(image)?;
    if t.partitions.is_empty() {
        return match partition {
            None | Some(0) => Ok((0, 0, image.len())),
            Some(p) => Err(Error::Refused(Refusal::NoPartition { partition: p })),
        };
    }
    let parts: Vec<_> = t
        .partitions
        .iter()
        .filter(|p| !p.kind.is_extended())
        .collect();
    let p = match partition {
        Some(n) => parts
            .iter()
            .find(|p| p.number == n)
            .ok_or(Error::Refused(Refusal::NoPartition { partition: n }))?,
        None if parts.len() == 1 => &parts[0],
        None => {
            return Err(Error::Invalid {
                what: "partition",
                reason: format!(
                    "the image has {} partitions: name one with --partition",
                    parts.len()
                ),
            })
        }
    };
    Ok((p.number, p.start, p.len))
}

/// Replace the account domain `from` by `to` on one NTFS volume of `image` (see the module
/// docs). The writes are staged in the image's journal.
///
/// # Errors
/// `from`/`to` not of the form `S-1-5-21-x-y-z`; the volume holds a Windows install (use
/// generalize, which also rewrites the hives); NTFS errors.
pub fn change_volume_sid(
    image: &mut Image,
    from: &Sid,
    to: &Sid,
    partition: Option<u32>,
) -> Result<VolumeSidReport> {
    let map = SidMap::new(from.clone(), to.clone()).map_err(|e| Error::Invalid {
        what: "SID",
        reason: e.to_string(),
    })?;
    if from == to {
        return Err(Error::Invalid {
            what: "SID",
            reason: format!("--from and --to are both {from}"),
        });
    }
    let (partition, start, len) = volume_range(image, partition)?;
    let slice = Slice::new(&mut *image, start, len)?;
    let mut vol = reseal_ntfs::Volume::open(slice).map_err(|source| Error::Volume {
        partition,
        what: "opening the volume",
        source,
    })?;
    if vol.lookup("Windows/System32/config/SAM").is_ok() {
        return Err(Error::Invalid {
            what: "volume",
            reason: format!(
                "partition {partition} holds a Windows install: use `reseal generalize`, which \
                 rewrites its hives too"
            ),
        });
    }
    let werr = |what: &str, source| Error::Write {
        partition,
        what: what.to_string(),
        source,
    };
    // One pass over the MFT for the legacy descriptors and the SID-named entries (the
    // in-place rewrites below change neither).
    let catalog = vol.catalog();
    let mut skipped = Vec::new();
    let descriptors = vol
        .rewrite_descriptors_from(
            &catalog,
            |_, sd| {
                let mut b = sd.to_vec();
                (map.replace_binary(&mut b) > 0).then_some(b)
            },
            |s| skipped.push(s),
        )
        .map_err(|e| werr("descriptors", e))?;
    let quota_sids = vol
        .rewrite_quota_sids_with(
            |sid| {
                let mut b = sid.to_vec();
                (map.replace_binary(&mut b) > 0).then_some(b)
            },
            |s| skipped.push(s),
        )
        .map_err(|e| werr("$Quota", e))?;
    let mut warnings: Vec<Warning> = skipped
        .into_iter()
        .map(|s| {
            Warning::new(
                WarningCode::NtfsSkipped,
                format!("partition {partition}: {s}"),
            )
        })
        .collect();
    let mut renames = crate::volume_names::sid_named_entries(&catalog, &map, &mut warnings);
    renames.sort_by_key(|(p, _)| std::cmp::Reverse(p.matches('/').count()));
    let mut renamed = Vec::new();
    for (old, new) in renames {
        vol.rename(&old, &new).map_err(|e| werr(&old, e))?;
        renamed.push(Renamed {
            old: format!("/{old}"),
            new: format!("/{new}"),
        });
    }
    vol.flush().map_err(|e| werr("flush", e))?;
    Ok(VolumeSidReport {
        partition,
        from: from.to_string(),
        to: to.to_string(),
        descriptors,
        quota_sids,
        renamed,
        warnings,
    })
}
