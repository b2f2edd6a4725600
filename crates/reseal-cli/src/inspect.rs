//! `reseal inspect`: container, partition table and file systems of an image.

use anyhow::{Context, Result};
use reseal_disk::partition::{PartitionTable, Scheme, Slice};
use reseal_disk::probe::{probe, FsInfo};
use reseal_disk::{Access, Device};
use reseal_ntfs::browse::Volume;
use serde_json::{json, Value};
use std::path::Path;

/// Facts about one NTFS volume that need the MFT (label, version, state).
fn ntfs_facts(dev: &mut dyn Device, start: u64, len: u64) -> Value {
    let slice = match Slice::new(dev, start, len) {
        Ok(s) => s,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let mut vol = match Volume::open(slice) {
        Ok(v) => v,
        Err(e) => return json!({ "error": e.to_string() }),
    };
    let label = vol.label().map_err(|e| e.to_string());
    let version = vol.version().map_err(|e| e.to_string());
    let flags = vol.volume_flags().map_err(|e| e.to_string());
    let state = crate::state::volume_state(&mut vol);
    let label_ok = label.as_ref().ok().cloned();
    let version_ok = version.as_ref().ok().map(|(a, b)| format!("{a}.{b}"));
    let flags_ok = flags.as_ref().ok().copied();
    let errors: Vec<String> = [label.err(), version.err(), flags.err()]
        .into_iter()
        .flatten()
        .collect();
    json!({
        "label": label_ok,
        "version": version_ok,
        "volume_flags": flags_ok,
        "state": state,
        "errors": errors,
    })
}

fn fs_json(info: &FsInfo) -> Value {
    match info {
        FsInfo::Ntfs(b) => json!({
            "type": "NTFS",
            "serial": format!("{:016X}", b.serial),
            "cluster_size": b.cluster_size,
            "record_size": b.record_size,
            "index_record_size": b.index_record_size,
            "bytes_per_sector": b.bytes_per_sector,
            "total_sectors": b.total_sectors,
        }),
        FsInfo::Fat {
            kind: _,
            label,
            serial,
        } => json!({
            "type": info.name(),
            "label": label,
            "serial": format!("{:04X}-{:04X}", serial >> 16, serial & 0xFFFF),
        }),
        other => json!({ "type": other.name() }),
    }
}

/// Gather everything as JSON (the text form is printed from the same value).
pub fn gather(image: &Path) -> Result<(Value, Option<reseal_windows::Scan>)> {
    let mut img = crate::open::open(image, Access::ReadOnly, false)?;
    let info = img.info();
    let container = json!({
        "path": image.display().to_string(),
        "format": info.format.to_string(),
        "virtual_size": info.virtual_size,
        "file_size": info.file_size,
        "sector_size": info.sector_size,
        "block_size": info.block_size,
        "parent_chain": info.parent_chain.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "warnings": info.warnings,
    });
    let table = PartitionTable::read(&img).context("reading the partition table")?;
    let scheme = match &table.scheme {
        Scheme::Mbr { signature } => {
            json!({ "scheme": "mbr", "signature": format!("{signature:08X}") })
        }
        Scheme::Gpt {
            disk_guid,
            backup_used,
            protective_mbr,
            ..
        } => json!({
            "scheme": "gpt",
            "disk_guid": disk_guid.to_string().to_uppercase(),
            "backup_header_used": backup_used,
            "mbr": format!("{protective_mbr:?}").to_lowercase(),
        }),
        _ => json!({ "scheme": "none" }),
    };
    let mut parts = Vec::new();
    if table.partitions.is_empty() {
        let fs = probe(&img)?;
        let mut v = json!({ "number": 0, "start": 0, "size": img.len(), "type": "whole disk", "filesystem": fs_json(&fs) });
        if let FsInfo::Ntfs(_) = fs {
            let len = img.len();
            v["ntfs"] = ntfs_facts(&mut img, 0, len);
        }
        parts.push(v);
    }
    for p in &table.partitions {
        let mut v = json!({
            "number": p.number,
            "start": p.start,
            "size": p.len,
            "type": p.kind.name(),
            "type_id": match p.kind {
                reseal_disk::partition::PartitionKind::Gpt(g) => g.to_string().to_uppercase(),
                reseal_disk::partition::PartitionKind::Mbr(b) => format!("0x{b:02X}"),
            },
            "name": p.name,
            "guid": p.guid.map(|g| g.to_string().to_uppercase()),
            "bootable": p.bootable,
        });
        if !p.kind.is_extended() {
            let fs = Slice::new(&mut img, p.start, p.len)
                .map_err(anyhow::Error::from)
                .and_then(|s| Ok(probe(&s)?));
            match fs {
                Ok(fs) => {
                    v["filesystem"] = fs_json(&fs);
                    if let FsInfo::Ntfs(_) = fs {
                        v["ntfs"] = ntfs_facts(&mut img, p.start, p.len);
                    }
                }
                Err(e) => v["filesystem"] = json!({ "error": format!("{e:#}") }),
            }
        }
        parts.push(v);
    }
    let mut t = scheme;
    t["sector_size"] = json!(table.sector_size);
    t["warnings"] = json!(table.warnings);
    t["partitions"] = Value::Array(parts);
    let (scan, windows) = match reseal_windows::scan(&mut img) {
        Ok(scan) => {
            let v = serde_json::to_value(&scan)?;
            (Some(scan), v)
        }
        Err(e) => (None, json!({ "error": e.to_string() })),
    };
    Ok((
        json!({ "container": container, "partition_table": t, "windows": windows }),
        scan,
    ))
}

fn human(n: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1024.0 && i < U.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", U[i])
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// Print the text form.
pub fn print_text(v: &Value) {
    let c = &v["container"];
    outln!("Container");
    outln!("  format        {}", s(&c["format"]));
    outln!(
        "  virtual size  {} ({} bytes)",
        human(c["virtual_size"].as_u64().unwrap_or(0)),
        s(&c["virtual_size"])
    );
    outln!(
        "  file size     {}",
        human(c["file_size"].as_u64().unwrap_or(0))
    );
    outln!("  sector size   {}", s(&c["sector_size"]));
    for p in c["parent_chain"].as_array().into_iter().flatten() {
        outln!("  parent        {}", s(p));
    }
    for w in c["warnings"].as_array().into_iter().flatten() {
        outln!("  warning       {}", s(w));
    }
    let t = &v["partition_table"];
    outln!("Partition table");
    outln!("  scheme        {}", s(&t["scheme"]));
    if t["scheme"] == "gpt" {
        outln!("  disk GUID     {}", s(&t["disk_guid"]));
        outln!("  MBR           {}", s(&t["mbr"]));
        if t["backup_header_used"] == true {
            outln!("  note          primary GPT unusable: backup header used");
        }
    } else if t["scheme"] == "mbr" {
        outln!("  signature     {}", s(&t["signature"]));
    }
    for w in t["warnings"].as_array().into_iter().flatten() {
        outln!("  warning       {}", s(w));
    }
    for p in t["partitions"].as_array().into_iter().flatten() {
        outln!(
            "  #{:<3} start {:>14}  size {:>10}  {}{}",
            s(&p["number"]),
            s(&p["start"]),
            human(p["size"].as_u64().unwrap_or(0)),
            s(&p["type"]),
            p["name"]
                .as_str()
                .map(|n| format!(" \"{n}\""))
                .unwrap_or_default()
        );
        let fs = &p["filesystem"];
        if fs.is_null() {
            continue;
        }
        if let Some(e) = fs.get("error") {
            outln!("       file system: error: {}", s(e));
            continue;
        }
        let mut line = format!("       {}", s(&fs["type"]));
        if let Some(l) = fs.get("label").filter(|l| !l.is_null()) {
            line.push_str(&format!(" label \"{}\"", s(l)));
        }
        if let Some(serial) = fs.get("serial") {
            line.push_str(&format!(" serial {}", s(serial)));
        }
        if let Some(cs) = fs.get("cluster_size") {
            line.push_str(&format!(
                " cluster {} record {}",
                s(cs),
                s(&fs["record_size"])
            ));
        }
        outln!("{line}");
        if let Some(n) = p.get("ntfs") {
            if let Some(e) = n.get("error") {
                outln!("       NTFS: error: {}", s(e));
                continue;
            }
            outln!(
                "       NTFS {} label \"{}\" state {}",
                s(&n["version"]),
                n["label"].as_str().unwrap_or(""),
                crate::state::describe(&n["state"])
            );
            for e in n["errors"].as_array().into_iter().flatten() {
                outln!("       error: {}", s(e));
            }
        }
    }
}

fn print_windows(scan: &Option<reseal_windows::Scan>, w: &Value) {
    match scan {
        Some(scan) => {
            if scan.installs.is_empty() {
                outln!("Windows\n  (no Windows install found)");
            }
            for i in &scan.installs {
                out!("{}", crate::windows_text::windows_text(i));
            }
            for sk in &scan.skipped {
                outln!("  (partition {}: {})", sk.partition, sk.reason);
            }
        }
        None => outln!("Windows\n  error: {}", s(&w["error"])),
    }
}

/// Rewrites every `last_logon` (a raw FILETIME in the library's report) as an RFC 3339 UTC time.
fn filetimes_to_rfc3339(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, x) in m.iter_mut() {
                if k == "last_logon" {
                    if let Some(ft) = x.as_u64() {
                        *x = json!(crate::fs::filetime_rfc3339(ft));
                    }
                } else {
                    filetimes_to_rfc3339(x);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(filetimes_to_rfc3339),
        _ => {}
    }
}

/// `reseal inspect`.
pub fn run(image: &Path, json_out: bool) -> Result<()> {
    let (mut v, scan) = gather(image)?;
    if json_out {
        v["schema_version"] = json!(1);
        filetimes_to_rfc3339(&mut v);
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        crate::out::buffered(|| print_text(&v));
        print_windows(&scan, &v["windows"]);
    }
    Ok(())
}
