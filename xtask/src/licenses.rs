//! Licence check: no GPL, AGPL or LGPL crate may be in the normal (non-dev) dependency graph of
//! the shipped crates, since the library ships under MIT OR Apache-2.0. A crate offered under a
//! choice of licences passes when at least one alternative is not copyleft.

use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::Command;

/// True when an SPDX expression offers no non-GPL-family alternative.
fn only_copyleft(expr: &str) -> bool {
    let norm = expr.replace('/', " OR ");
    norm.split(" OR ").all(|alt| {
        let alt = alt.trim_matches(|c: char| c == '(' || c == ')' || c.is_whitespace());
        alt.to_ascii_uppercase().contains("GPL")
    })
}

pub fn check(root: &Path) -> Result<()> {
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--locked"])
        .output()
        .context("running cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: Value = serde_json::from_slice(&out.stdout)?;
    let packages: HashMap<&str, &Value> = meta["packages"]
        .as_array()
        .context("metadata: packages")?
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .context("metadata: resolve")?
        .iter()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    // Roots: every workspace member that ships (the libraries and the CLI).
    let mut stack: Vec<&str> = meta["workspace_members"]
        .as_array()
        .context("metadata: workspace_members")?
        .iter()
        .filter_map(Value::as_str)
        .filter(|id| {
            packages
                .get(id)
                .and_then(|p| p["name"].as_str())
                .is_some_and(|n| n.starts_with("reseal-") && n != "reseal-tests")
        })
        .collect();
    let mut seen = BTreeSet::new();
    let mut bad = Vec::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        if let Some(p) = packages.get(id) {
            let lic = p["license"].as_str().unwrap_or("");
            if lic.is_empty() && p["source"].is_string() {
                bad.push(format!("{} {}: no licence field", p["name"], p["version"]));
            } else if !lic.is_empty() && only_copyleft(lic) {
                bad.push(format!("{} {}: {lic}", p["name"], p["version"]));
            }
        }
        if let Some(n) = nodes.get(id) {
            for dep in n["deps"].as_array().into_iter().flatten() {
                let normal_or_build = dep["dep_kinds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|k| matches!(k["kind"].as_str(), None | Some("build")));
                if normal_or_build {
                    if let Some(pkg) = dep["pkg"].as_str() {
                        stack.push(pkg);
                    }
                }
            }
        }
    }
    if !bad.is_empty() {
        bail!(
            "copyleft or unlicensed crates in the shipped dependency graph:\n  {}",
            bad.join("\n  ")
        );
    }
    println!(
        "xtask: licences OK ({} crates in the shipped graph)",
        seen.len()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::only_copyleft;

    #[test]
    fn spdx_alternatives() {
        assert!(only_copyleft("GPL-2.0-or-later"));
        assert!(only_copyleft("LGPL-2.1"));
        assert!(only_copyleft("AGPL-3.0-only"));
        assert!(!only_copyleft("MIT OR Apache-2.0"));
        assert!(!only_copyleft("LGPL-2.1-or-later OR MIT"));
        assert!(!only_copyleft("MIT/Apache-2.0"));
        assert!(!only_copyleft("Apache-2.0 WITH LLVM-exception"));
    }
}
