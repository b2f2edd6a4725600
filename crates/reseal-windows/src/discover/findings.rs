//! What the facts of an install mean: [`Finding`]s for `inspect`, by severity.

use super::{Finding, HiveState, Severity, WindowsInstall};

/// The findings of `w`, most severe first.
pub(super) fn findings(w: &WindowsInstall) -> Vec<Finding> {
    let mut f = Vec::new();
    let mut add = |severity, code: &str, message: String| {
        f.push(Finding {
            severity,
            // snake_case, like every enum value of the JSON output.
            code: code.replace('-', "_"),
            message,
        })
    };
    for h in &w.hives {
        match &h.state {
            HiveState::Clean => {}
            HiveState::DirtyReplayed { logs } => add(
                Severity::Warning,
                "hive-dirty",
                format!(
                    "{} is dirty; {} replayed in memory (the file itself still needs recovery)",
                    h.name,
                    logs.join("+")
                ),
            ),
            HiveState::DirtyWithoutUsableLogs { reason } => add(
                Severity::Blocker,
                "hive-dirty-no-logs",
                format!(
                    "{} is dirty and no log could be replayed ({reason}); its facts may be stale",
                    h.name
                ),
            ),
            HiveState::Missing => add(
                Severity::Warning,
                "hive-missing",
                format!("{} is missing", h.name),
            ),
            HiveState::Unreadable { reason } => add(
                Severity::Blocker,
                "hive-unreadable",
                format!("{} is unreadable: {reason}", h.name),
            ),
        }
        if h.ktm_locked {
            add(
                Severity::Blocker,
                "hive-ktm-locked",
                format!("{} has a pending KTM transaction (base-block flag)", h.name),
            );
        }
    }
    if w.txr.pending {
        add(
            Severity::Warning,
            "txr-pending",
            format!(
                "transactional-registry files with content: {}",
                w.txr.files_with_content.join(", ")
            ),
        );
    }
    match (&w.sam_machine_sid, &w.lsa_machine_sid) {
        (Some(a), Some(b)) if a != b => add(
            Severity::Blocker,
            "sid-mismatch",
            format!("machine SID differs: SAM Domains\\Account\\V has {a}, SECURITY Policy\\PolAcDmS has {b}"),
        ),
        (None, None) => add(Severity::Warning, "sid-unknown", "machine SID could not be read".into()),
        _ => {}
    }
    if w.domain.domain_controller {
        add(
            Severity::Blocker,
            "domain-controller",
            "primary-domain SID equals the account-domain SID: this looks like a domain controller"
                .into(),
        );
    } else if w.domain.joined {
        add(
            Severity::Warning,
            "domain-joined",
            format!(
                "joined to domain {} ({}); a new machine SID or name breaks the domain trust",
                w.domain.name.as_deref().unwrap_or("?"),
                w.domain.domain_sid.as_deref().unwrap_or("?")
            ),
        );
    }
    if let (Some(n), Some(l)) = (&w.computer.netbios, &w.computer.lsa_account_domain) {
        if !n.eq_ignore_ascii_case(l) {
            add(
                Severity::Info,
                "name-mismatch",
                format!("ComputerName {n} differs from SECURITY PolAcDmN {l}"),
            );
        }
    }
    for u in &w.users {
        if let Some(r) = u.names_rid {
            if r != u.rid {
                add(
                    Severity::Warning,
                    "sam-names-rid",
                    format!(
                        "SAM Names\\{} has type {r:#x} but the account key is {:08X}",
                        u.name, u.rid
                    ),
                );
            }
        }
    }
    for p in &w.profiles {
        if p.folder.is_some() && !p.folder_exists {
            add(
                Severity::Info,
                "profile-folder-missing",
                format!("profile {} folder {:?} is missing", p.sid, p.folder),
            );
        }
    }
    if !w.dpapi.is_empty() {
        let list: Vec<String> = w
            .dpapi
            .iter()
            .map(|d| format!("{} ({} files)", d.path, d.files))
            .collect();
        add(
            Severity::Warning,
            "dpapi",
            format!(
                "DPAPI master-key folders that a SID change orphans: {}",
                list.join(", ")
            ),
        );
    }
    if w.efs.count > 0 {
        add(
            Severity::Warning,
            "efs",
            format!(
                "{} EFS-encrypted file(s){} become unreadable after a SID change: {}",
                w.efs.count,
                if w.efs.truncated {
                    " (walk cut short, more may exist)"
                } else {
                    ""
                },
                w.efs.first.join(", ")
            ),
        );
    } else if w.efs.truncated {
        add(
            Severity::Info,
            "efs-scan-truncated",
            format!("EFS scan stopped after {} entries", w.efs.visited),
        );
    }
    if w.fast_startup_enabled == Some(true) {
        add(
            Severity::Info,
            "fast-startup-enabled",
            "HiberbootEnabled = 1: Windows will hibernate its kernel session at shutdown (disable Fast Startup before imaging)".into(),
        );
    }
    if let Some(v) = &w.volume {
        if v.hibernated {
            add(
                Severity::Blocker,
                "hibernated",
                "hiberfil.sys says Windows is hibernated".into(),
            );
        }
        if v.fast_startup {
            add(
                Severity::Blocker,
                "fast-startup",
                "$LogFile is LFS 2.0: Windows Fast Startup left metadata cached".into(),
            );
        }
        if v.dirty {
            add(
                Severity::Blocker,
                "volume-dirty",
                "NTFS dirty flag is set (run chkdsk in Windows)".into(),
            );
        }
    }
    for e in &w.errors {
        add(Severity::Info, "read-error", e.clone());
    }
    f.sort_by_key(|x| std::cmp::Reverse(x.severity));
    f
}
