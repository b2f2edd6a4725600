//! Whole-volume questions answered from the [`Catalog`] (one pass over the MFT) instead of a
//! walk through every folder: which entries have an old SID in their name, which files are
//! EFS-encrypted.

use reseal_ntfs::catalog::{Catalog, ATTRIBUTE_ENCRYPTED};
use reseal_security::sidmap::SidMap;

use crate::discover::EfsSummary;
use crate::warning::{Warning, WarningCode};

/// A path below an NTFS metadata file of the root ([`reseal_ntfs::metafile::NAMES`]), or one
/// itself: never renamed, not searched.
fn in_metadata(path: &str) -> bool {
    let first = path.split('/').next().unwrap_or("");
    reseal_ntfs::metafile::is_metafile_name(first)
}

/// Sort key that puts paths in the order a depth-first walk of directory listings meets them
/// (component by component, case-insensitively as NTFS collates names, for ASCII).
fn walk_order(path: &str) -> Vec<String> {
    path.split('/').map(str::to_ascii_uppercase).collect()
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// Every entry reachable from the root (outside the NTFS metadata) whose name holds an SID
/// `map` replaces: its path (relative, `/`-separated) and its new path (the last component
/// renamed, parents not yet), a folder before what it holds. Every name of a file with hard
/// links is listed. Records that did not read become warnings: an entry they hold keeps its
/// name.
pub(crate) fn sid_named_entries(
    catalog: &Catalog,
    map: &SidMap,
    warnings: &mut Vec<Warning>,
) -> Vec<(String, String)> {
    let mut found: Vec<(Vec<String>, String, String)> = Vec::new();
    for link in catalog.links() {
        let (new, k) = map.replace_str(link.name);
        if k == 0 {
            continue;
        }
        let Some(dir) = catalog.path_of(link.parent) else {
            continue; // not reachable from the root: no listing shows it
        };
        let path = join(&dir, link.name);
        if in_metadata(&path) {
            continue;
        }
        found.push((walk_order(&path), path, join(&dir, &new)));
    }
    found.sort();
    for (record, err) in catalog.unreadable() {
        warnings.push(
            Warning::new(
                WarningCode::Unreadable,
                format!(
                    "MFT record {record} not readable ({err}); a SID-named entry it holds is not \
                     renamed"
                ),
            )
            .at(format!("record {record}")),
        );
    }
    found.into_iter().map(|(_, from, to)| (from, to)).collect()
}

/// EFS-encrypted files (FILE_ATTRIBUTE_ENCRYPTED) among the first `limit` names of `catalog`
/// (in MFT order) reachable from the root, outside the NTFS metadata; the first `list` of their
/// paths (`/`-prefixed) nearest the root first.
pub(crate) fn encrypted_files(catalog: &Catalog, limit: usize, list: usize) -> EfsSummary {
    let mut out = EfsSummary::default();
    let mut paths: Vec<(usize, Vec<String>, String)> = Vec::new();
    for link in catalog.links() {
        if link.record < 16 {
            continue; // NTFS metadata records, which listings leave out
        }
        if out.visited >= limit {
            out.truncated = true;
            break;
        }
        out.visited += 1;
        let Some(e) = catalog.entry(link.record) else {
            continue;
        };
        if e.attributes & ATTRIBUTE_ENCRYPTED == 0 {
            continue;
        }
        let Some(dir) = catalog.path_of(link.parent) else {
            continue;
        };
        let path = join(&dir, link.name);
        if in_metadata(&path) {
            continue;
        }
        paths.push((path.matches('/').count(), walk_order(&path), path));
    }
    paths.sort();
    out.count = paths.len();
    out.first = paths
        .into_iter()
        .take(list)
        .map(|(_, _, p)| format!("/{p}"))
        .collect();
    out
}
