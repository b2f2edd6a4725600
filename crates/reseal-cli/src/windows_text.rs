//! The text of `reseal inspect`'s `Windows` section, from the library's [`WindowsInstall`]
//! facts (presentation belongs in the CLI; `--json` prints the same facts as data).

use reseal_windows::{HiveState, Severity, WindowsInstall};

fn opt(s: &Option<String>) -> &str {
    s.as_deref().unwrap_or("-")
}

fn filetime_text(ft: u64) -> String {
    format!("{} UTC", crate::fs::filetime(ft))
}

/// The facts of one Windows install as indented text: the `Windows` section of `reseal inspect`.
pub fn windows_text(w: &WindowsInstall) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "Windows on partition {}", w.partition);
    let p = &w.product;
    let _ = writeln!(
        o,
        "  product:        {} ({}) build {}{}{}",
        opt(&p.product_name),
        opt(&p.edition_id),
        opt(&p.build),
        p.ubr.map(|u| format!(".{u}")).unwrap_or_default(),
        p.display_version
            .as_deref()
            .map(|d| format!(", {d}"))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "  control set:    {}",
        w.current_control_set
            .map(|n| format!("ControlSet{n:03} (Select\\Current)"))
            .unwrap_or_else(|| "-".into())
    );
    let c = &w.computer;
    let _ = writeln!(
        o,
        "  computer name:  {} (DNS host {}, NV {}, LSA {})",
        opt(&c.netbios),
        opt(&c.dns_hostname),
        opt(&c.nv_hostname),
        opt(&c.lsa_account_domain)
    );
    let _ = writeln!(
        o,
        "  machine SID:    {} (SAM {}, SECURITY {})",
        opt(&w.machine_sid),
        opt(&w.sam_machine_sid),
        opt(&w.lsa_machine_sid)
    );
    let i = &w.identifiers;
    let _ = writeln!(
        o,
        "  machine GUID:   {} (WSUS client {}, SQM {}, MDE {}, DHCPv6 DUID {})",
        opt(&i.machine_guid),
        opt(&i.wsus_client_id),
        opt(&i.sqm_machine_id),
        opt(&i.mde_sense_guid),
        opt(&i.dhcpv6_duid)
    );
    let d = &w.domain;
    if d.joined {
        let _ = writeln!(
            o,
            "  domain:         joined to {} ({}){}",
            opt(&d.name),
            opt(&d.domain_sid),
            d.dns_name
                .as_deref()
                .map(|n| format!(", DNS {n}"))
                .unwrap_or_default()
        );
    } else {
        let _ = writeln!(
            o,
            "  domain:         not joined (workgroup {})",
            opt(&d.name)
        );
    }
    let _ = writeln!(o, "  hives:");
    for h in &w.hives {
        let st = match &h.state {
            HiveState::Clean => "clean".to_string(),
            HiveState::DirtyReplayed { logs } => {
                format!("dirty, replayed in memory from {}", logs.join("+"))
            }
            HiveState::DirtyWithoutUsableLogs { reason } => {
                format!("dirty, no usable log ({reason})")
            }
            HiveState::Missing => "missing".to_string(),
            HiveState::Unreadable { reason } => format!("unreadable ({reason})"),
        };
        let _ = writeln!(o, "    {:<9} {:>10} bytes  {st}", h.name, h.size);
    }
    let _ = writeln!(
        o,
        "  TxR:            {}",
        if w.txr.pending {
            "pending (files with content)"
        } else {
            "nothing pending"
        }
    );
    let _ = writeln!(o, "  users:");
    for u in &w.users {
        let _ = writeln!(
            o,
            "    {:<5} {:<20} {:<8} {}{}{}",
            u.rid,
            u.name,
            if u.disabled { "disabled" } else { "enabled" },
            opt(&u.sid),
            if u.full_name.is_empty() {
                String::new()
            } else {
                format!("  \"{}\"", u.full_name)
            },
            u.last_logon
                .map(|t| format!("  last logon {}", filetime_text(t)))
                .unwrap_or_default()
        );
        if u.locked || u.password_set == Some(false) {
            let _ = writeln!(
                o,
                "          {}{}",
                if u.locked { "locked out " } else { "" },
                if u.password_set == Some(false) {
                    "blank password"
                } else {
                    ""
                }
            );
        }
    }
    let _ = writeln!(o, "  profiles:");
    for p in &w.profiles {
        let _ = writeln!(
            o,
            "    {} -> {} [{}{}{}]",
            p.sid,
            opt(&p.folder),
            if p.folder_exists {
                "folder"
            } else {
                "no folder"
            },
            if p.ntuser_dat { ", NTUSER.DAT" } else { "" },
            if p.usrclass_dat { ", UsrClass.dat" } else { "" }
        );
    }
    for dp in &w.dpapi {
        let _ = writeln!(o, "  DPAPI:          {} ({} files)", dp.path, dp.files);
    }
    let _ = writeln!(
        o,
        "  EFS:            {} encrypted file(s) in {} entries{}",
        w.efs.count,
        w.efs.visited,
        if w.efs.truncated {
            " (walk cut short)"
        } else {
            ""
        }
    );
    if let Some(v) = &w.volume {
        let _ = writeln!(
            o,
            "  volume:         dirty={} hibernated={} fast_startup={} $LogFile={}",
            v.dirty, v.hibernated, v.fast_startup, v.logfile
        );
    }
    if !w.findings.is_empty() {
        let _ = writeln!(o, "  findings:");
        for f in &w.findings {
            let sev = match f.severity {
                Severity::Blocker => "BLOCKER",
                Severity::Warning => "warning",
                Severity::Info => "info",
            };
            let _ = writeln!(o, "    [{sev}] {}: {}", f.code, f.message);
        }
    }
    o
}

#[cfg(test)]
mod tests {
    #[test]
    fn filetime() {
        assert_eq!(
            super::filetime_text(116_444_736_000_000_000),
            "1970-01-01 00:00:00 UTC"
        );
        assert_eq!(
            super::filetime_text(133_400_000_000_000_000),
            "2023-09-24 03:33:20 UTC"
        );
    }
}
