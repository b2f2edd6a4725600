//! `ls`, `cat`, `convert`, `undo`: the image and file-system commands.

use anyhow::{bail, Context, Result};
use reseal_disk::convert::{convert_with as convert_image, ConvertOptions, TargetFormat};
use reseal_disk::partition::{PartitionTable, Slice};
use reseal_disk::probe::{probe, FsInfo};
use reseal_disk::{Access, Device, Image};
use reseal_ntfs::browse::{Entry, Volume};
use std::io::Write;
use std::path::Path;

use crate::progress::Progress;

/// Open `image` read-only and the NTFS volume selected by `partition` (default: the only one).
pub fn open_ntfs(image: &Path, partition: Option<u32>) -> Result<Volume<Slice<Image>>> {
    let mut img = crate::open::open(image, Access::ReadOnly, false)?;
    let (start, len) = select_ntfs(&mut img, partition)?;
    let slice = Slice::new(img, start, len)?;
    Ok(Volume::open(slice)?)
}

/// Find the byte range of the NTFS volume to use.
pub fn select_ntfs(img: &mut dyn Device, partition: Option<u32>) -> Result<(u64, u64)> {
    let table = PartitionTable::read(&*img).context("reading the partition table")?;
    if table.partitions.is_empty() {
        // A bare volume (no partition table).
        if partition.is_some_and(|n| n != 0) {
            bail!("the image has no partition table; use no -p or -p 0");
        }
        return match probe(&*img)? {
            FsInfo::Ntfs(_) => Ok((0, img.len())),
            other => bail!(
                "the image holds no partition table and no NTFS volume ({})",
                other.name()
            ),
        };
    }
    if let Some(n) = partition {
        let p = table
            .get(n)
            .with_context(|| format!("no partition {n}; the image has {}", numbers(&table)))?;
        let slice = Slice::new(&mut *img, p.start, p.len)?;
        match probe(&slice)? {
            FsInfo::Ntfs(_) => return Ok((p.start, p.len)),
            other => bail!("partition {n} holds {}, not NTFS", other.name()),
        }
    }
    let mut found = Vec::new();
    for p in &table.partitions {
        if p.kind.is_extended() {
            continue;
        }
        let slice = Slice::new(&mut *img, p.start, p.len)?;
        if let Ok(FsInfo::Ntfs(_)) = probe(&slice) {
            found.push(p.clone());
        }
    }
    match found.as_slice() {
        [p] => Ok((p.start, p.len)),
        [] => bail!(
            "the image has no NTFS volume (partitions: {})",
            numbers(&table)
        ),
        many => bail!(
            "the image has {} NTFS volumes; choose one with -p: {}",
            many.len(),
            many.iter()
                .map(|p| format!("{} ({} MiB)", p.number, p.len >> 20))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn numbers(t: &PartitionTable) -> String {
    if t.partitions.is_empty() {
        return "none".into();
    }
    t.partitions
        .iter()
        .map(|p| format!("{} ({})", p.number, p.kind.name()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Windows FILETIME (100 ns since 1601) as `YYYY-MM-DD hh:mm:ss` UTC.
pub fn filetime(ft: u64) -> String {
    let (y, m, d, hh, mm, ss) = filetime_utc(ft);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}")
}

/// A FILETIME as RFC 3339 UTC (`YYYY-MM-DDThh:mm:ssZ`), for JSON.
pub fn filetime_rfc3339(ft: u64) -> String {
    let (y, m, d, hh, mm, ss) = filetime_utc(ft);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

/// A FILETIME (100 ns ticks since 1601-01-01 UTC) as UTC (year, month, day, hour, minute,
/// second).
fn filetime_utc(ft: u64) -> (i64, u32, u32, i64, i64, i64) {
    const EPOCH_DIFF: i64 = 11_644_473_600;
    let secs = (ft / 10_000_000) as i64 - EPOCH_DIFF;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    (y, m, d, rem / 3600, rem / 60 % 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn attr_string(a: u32, is_dir: bool) -> String {
    let flag = |bit: u32, c: char| if a & bit != 0 { c } else { '-' };
    format!(
        "{}{}{}{}{}{}",
        if is_dir { 'd' } else { '-' },
        flag(0x01, 'r'),
        flag(0x02, 'h'),
        flag(0x04, 's'),
        flag(0x20, 'a'),
        flag(0x400, 'l'),
    )
}

fn print_entry(out: &mut dyn Write, e: &Entry, owner: Option<&str>) -> std::io::Result<()> {
    match owner {
        Some(owner) => {
            writeln!(
                out,
                "{} {:>12} {} {:>8} {:<14}  {}{}",
                attr_string(e.attributes, e.is_dir),
                e.size,
                filetime(e.modified),
                e.record,
                owner,
                e.name,
                if e.is_dir { "/" } else { "" }
            )?;
            for (name, size) in &e.streams {
                writeln!(
                    out,
                    "{:>6} {:>12} {:>19} {:>8} {:<14}  {}:{}",
                    "stream", size, "", "", "", e.name, name
                )?;
            }
            Ok(())
        }
        None => writeln!(out, "{}{}", e.name, if e.is_dir { "/" } else { "" }),
    }
}

/// `reseal ls`: with `-l`, attributes, size, modification time (UTC), MFT record number and
/// owner (SDDL alias or SID) of each entry, then its named streams.
pub fn ls(image: &Path, path: &str, long: bool, partition: Option<u32>) -> Result<()> {
    let mut vol = open_ntfs(image, partition)?;
    let st = vol.stat(path)?;
    let (dir, entries) = if st.is_dir {
        (path.to_string(), vol.list(path)?)
    } else {
        let trimmed = path.trim_end_matches(['/', '\\']);
        let cut = trimmed.rfind(['/', '\\']).unwrap_or(0);
        (trimmed[..cut].to_string(), vec![st])
    };
    let owners = if long {
        let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
        Some(crate::write::owners(image, &dir, &names, partition)?)
    } else {
        None
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (i, e) in entries.iter().enumerate() {
        print_entry(&mut out, e, owners.as_ref().map(|o| o[i].as_str()))?;
    }
    Ok(())
}

/// `reseal cat`.
pub fn cat(image: &Path, path: &str, partition: Option<u32>) -> Result<()> {
    let mut vol = open_ntfs(image, partition)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    vol.read(path, &mut out)?;
    out.flush()?;
    Ok(())
}

/// FILE_ATTRIBUTE_REPARSE_POINT: a symbolic link, junction or other reparse point.
const REPARSE_POINT: u32 = 0x400;

/// `reseal get IMAGE PATH LOCAL [-r]`: copy a file (with `recursive`, a directory tree) out of
/// the volume to `local`, which is the destination itself (not a folder to put it in). Named
/// streams are skipped and reparse points (symbolic links, junctions) not followed, each with a
/// note on standard error. An existing local file is refused unless `force` (then replaced;
/// existing directories are merged into).
pub fn get(
    image: &Path,
    path: &str,
    local: &Path,
    recursive: bool,
    partition: Option<u32>,
    force: bool,
) -> Result<()> {
    let mut vol = open_ntfs(image, partition)?;
    let st = vol.stat(path)?;
    if st.is_dir && !recursive {
        bail!("{path} is a directory; copy a tree with -r");
    }
    let mut counts = (0u64, 0u64, 0u64); // files, directories, bytes
    if st.is_dir {
        get_dir(&mut vol, path, &st, local, force, &mut counts)?;
    } else {
        get_file(&mut vol, path, &st, local, force, &mut counts)?;
    }
    eprintln!(
        "copied {} files ({} bytes) and {} directories to {}",
        counts.0,
        counts.2,
        counts.1,
        local.display()
    );
    Ok(())
}

fn note_streams(path: &str, e: &Entry) {
    for (name, size) in &e.streams {
        eprintln!(
            "note: skipped the named stream {path}:{name} ({size} bytes; `reseal cat` reads it)"
        );
    }
}

fn get_file<D: Device>(
    vol: &mut Volume<D>,
    path: &str,
    e: &Entry,
    local: &Path,
    force: bool,
    counts: &mut (u64, u64, u64),
) -> Result<()> {
    if e.attributes & REPARSE_POINT != 0 {
        eprintln!(
            "note: skipped {path}: a reparse point (symbolic link or the like), not followed"
        );
        return Ok(());
    }
    if let Ok(m) = std::fs::symlink_metadata(local) {
        if m.is_dir() {
            bail!(
                "{} is an existing directory (give the file's full path)",
                local.display()
            );
        }
        if !force {
            return Err(crate::out::Refused(format!(
                "{} exists; pass --force to replace it",
                local.display()
            ))
            .into());
        }
        // Replace rather than write through a symbolic link.
        std::fs::remove_file(local).with_context(|| format!("replacing {}", local.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(local)
        .with_context(|| format!("creating {}", local.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let n = vol.read(path, &mut out)?;
    out.flush()
        .with_context(|| format!("writing {}", local.display()))?;
    note_streams(path, e);
    counts.0 += 1;
    counts.2 += n;
    Ok(())
}

fn get_dir<D: Device>(
    vol: &mut Volume<D>,
    path: &str,
    e: &Entry,
    local: &Path,
    force: bool,
    counts: &mut (u64, u64, u64),
) -> Result<()> {
    if e.attributes & REPARSE_POINT != 0 {
        eprintln!(
            "note: skipped {path}: a reparse point (junction or directory link), not followed"
        );
        return Ok(());
    }
    match std::fs::symlink_metadata(local) {
        Ok(m) if m.is_dir() && force => {}
        Ok(_) if !force => {
            return Err(crate::out::Refused(format!(
                "{} exists; pass --force to copy into it (replacing files of the same name)",
                local.display()
            ))
            .into())
        }
        Ok(_) => bail!("{} exists and is not a directory", local.display()),
        Err(_) => {
            std::fs::create_dir(local).with_context(|| format!("creating {}", local.display()))?
        }
    }
    counts.1 += 1;
    note_streams(path, e);
    let base = path.trim_end_matches(['/', '\\']);
    for child in vol.list(path)? {
        let p = format!("{base}/{}", child.name);
        let l = local.join(&child.name);
        if child.is_dir {
            get_dir(vol, &p, &child, &l, force, counts)?;
        } else {
            get_file(vol, &p, &child, &l, force, counts)?;
        }
    }
    Ok(())
}

/// `reseal convert`: `progress` (`-p`) shows progress even when standard error is not a
/// terminal, as qemu-img's `-p`.
pub fn convert(
    input: &Path,
    output: &Path,
    target: TargetFormat,
    vhd_size: reseal_disk::vhd::VhdSize,
    progress: bool,
) -> Result<()> {
    // symlink_metadata: a dangling symlink is not followed into a new file either.
    if std::fs::symlink_metadata(output).is_ok() {
        bail!(
            "{} exists; reseal convert never overwrites",
            output.display()
        );
    }
    let img = crate::open::open(input, Access::ReadOnly, false)?;
    let bar = Progress::bytes_or_plain("converting", progress);
    let options = ConvertOptions {
        vhd_size,
        ..ConvertOptions::default()
    };
    let rep = convert_image(&img, output, target, options, &mut |done, total| {
        bar.update(done, total)
    })?;
    bar.finish();
    if rep.virtual_size != img.len() {
        eprintln!(
            "note: the VHD's size is rounded up from {} to {} bytes, what its CHS geometry covers \
             (as qemu-img does; the added tail reads as zeros); -o force_size keeps the exact size",
            img.len(),
            rep.virtual_size
        );
    }
    eprintln!(
        "wrote {}: {} bytes virtual, {} bytes of data ({} bytes unallocated skipped, {} zero bytes skipped)",
        rep.output.display(),
        rep.virtual_size,
        rep.bytes_written,
        rep.bytes_skipped_unallocated,
        rep.bytes_skipped_zero
    );
    Ok(())
}

/// `reseal undo`.
pub fn undo(image: &Path, list: bool, dry_run: bool, json: bool) -> Result<()> {
    use reseal_disk::journal;
    if list {
        let entries = journal::list_undo(image)?;
        if json {
            let items: Vec<serde_json::Value> = entries.iter().map(undo_json).collect();
            let doc = serde_json::json!({ "schema_version": 1, "operations": items });
            outln!("{}", serde_json::to_string_pretty(&doc)?);
        } else if entries.is_empty() {
            outln!("nothing to undo on {}", image.display());
        } else {
            for e in &entries {
                outln!("{}", describe_undo(e));
            }
        }
        return Ok(());
    }
    if dry_run {
        let e = journal::check_undo(image, crate::open::lock_timeout())?;
        outln!("would revert {}", describe_undo(&e));
        return Ok(());
    }
    // Read what it was before the undo removes the record of it.
    let last = journal::list_undo(image).ok().and_then(|mut v| v.pop());
    let undo = journal::undo_with_timeout(image, crate::open::lock_timeout())?;
    match last.filter(|e| e.path == undo) {
        Some(e) => eprintln!("reverted {}", describe_undo(&e)),
        None => eprintln!("reverted the operation recorded in {}", undo.display()),
    }
    Ok(())
}

fn undo_time(e: &reseal_disk::journal::UndoEntry) -> Option<String> {
    let secs = e
        .time?
        .duration_since(std::time::UNIX_EPOCH)
        .ok()?
        .as_secs();
    Some(filetime_rfc3339((secs + 11_644_473_600) * 10_000_000))
}

fn describe_undo(e: &reseal_disk::journal::UndoEntry) -> String {
    format!(
        "#{} {} {}: {} bytes in {} ranges",
        e.number,
        undo_time(e).unwrap_or_else(|| "?".into()),
        e.operation.as_deref().unwrap_or("(operation not recorded)"),
        e.bytes,
        e.ranges
    )
}

fn undo_json(e: &reseal_disk::journal::UndoEntry) -> serde_json::Value {
    serde_json::json!({
        "number": e.number,
        "undo_file": e.path,
        "time": undo_time(e),
        "operation": e.operation,
        "bytes": e.bytes,
        "ranges": e.ranges,
        "old_len": e.old_len,
        "new_len": e.new_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filetime_known_values() {
        assert_eq!(filetime(116_444_736_000_000_000), "1970-01-01 00:00:00");
        // 2021-03-04 05:06:07 UTC
        assert_eq!(filetime(132_593_079_670_000_000), "2021-03-04 05:06:07");
        assert_eq!(filetime(0), "1601-01-01 00:00:00");
        // 2024-02-29 12:34:56 UTC (a leap day).
        let t = (1_709_210_096 + 11_644_473_600) * 10_000_000;
        assert_eq!(filetime_rfc3339(t), "2024-02-29T12:34:56Z");
        assert_eq!(
            filetime_rfc3339(116_444_736_000_000_000),
            "1970-01-01T00:00:00Z"
        );
    }
}
