//! The JSON Schemas of the CLI's `--json` documents (`docs/schema/<kind>.schema.json`, draft
//! 2020-12), and the one check every test that reads reseal's JSON output goes through:
//! [`parse_json`] / [`assert_json_schema`]. The schemas refer to each other by their `$id`
//! (`https://example.invalid/reseal/schema/<kind>.schema.json`); every file is registered under
//! its `$id`, so nothing is fetched. Formats (`date-time`) are checked too.

use jsonschema::{Draft, Registry, Resource, Validator};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::OnceLock;

/// Where the schemas are.
pub fn schema_dir() -> PathBuf {
    crate::workspace_root().join("docs/schema")
}

/// Every schema: kind (file name without `.schema.json`) → parsed schema.
///
/// # Panics
/// When a file is unreadable or not JSON (a test failure, with the file named).
pub fn schemas() -> &'static BTreeMap<String, Value> {
    static ALL: OnceLock<BTreeMap<String, Value>> = OnceLock::new();
    ALL.get_or_init(|| {
        let mut out = BTreeMap::new();
        let dir = schema_dir();
        let entries =
            std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        for e in entries {
            let path = e.expect("directory entry").path();
            let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
                continue;
            };
            let Some(kind) = name.strip_suffix(".schema.json") else {
                continue;
            };
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let v: Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            out.insert(kind.to_string(), v);
        }
        out
    })
}

fn registry() -> &'static Registry<'static> {
    static REG: OnceLock<Registry<'static>> = OnceLock::new();
    REG.get_or_init(|| {
        let pairs: Vec<(String, Resource)> = schemas()
            .iter()
            .map(|(kind, s)| {
                let id = s["$id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{kind}.schema.json has no $id"))
                    .to_string();
                (id, Resource::from_contents(s.clone()))
            })
            .collect();
        Registry::new()
            .draft(Draft::Draft202012)
            .extend(pairs)
            .and_then(|b| b.prepare())
            .unwrap_or_else(|e| panic!("registering docs/schema: {e}"))
    })
}

fn validator(kind: &str) -> &'static Validator {
    static VALIDATORS: OnceLock<BTreeMap<String, Validator>> = OnceLock::new();
    let all = VALIDATORS.get_or_init(|| {
        schemas()
            .iter()
            .map(|(k, s)| {
                let v = jsonschema::options()
                    .with_draft(Draft::Draft202012)
                    .should_validate_formats(true)
                    .with_registry(registry())
                    .build(s)
                    .unwrap_or_else(|e| panic!("{k}.schema.json: {e}"));
                (k.clone(), v)
            })
            .collect()
    });
    all.get(kind).unwrap_or_else(|| {
        panic!(
            "no docs/schema/{kind}.schema.json (kinds: {:?})",
            all.keys().collect::<Vec<_>>()
        )
    })
}

/// Panics, naming every violation with its JSON pointer, unless `doc` is valid against
/// `docs/schema/<kind>.schema.json`.
pub fn assert_json_schema(kind: &str, doc: &Value) {
    let errors: Vec<String> = validator(kind)
        .iter_errors(doc)
        .map(|e| format!("  at {}: {e}", e.instance_path()))
        .take(20)
        .collect();
    assert!(
        errors.is_empty(),
        "reseal's JSON does not match docs/schema/{kind}.schema.json:\n{}\ndocument: {}",
        errors.join("\n"),
        serde_json::to_string(doc)
            .unwrap_or_default()
            .chars()
            .take(4000)
            .collect::<String>()
    );
}

/// Parses reseal's `--json` output and checks it against the schema of `kind` (`error` when the
/// output is an error document, whatever `kind` says, so that a test which expects a failure
/// checks the error shape).
///
/// # Panics
/// When the output is not JSON or does not match.
pub fn parse_json(kind: &str, stdout: impl AsRef<[u8]>) -> Value {
    let bytes = stdout.as_ref();
    let v: Value = serde_json::from_slice(bytes).unwrap_or_else(|e| {
        panic!(
            "reseal --json output is not JSON ({e}): {}",
            String::from_utf8_lossy(bytes)
        )
    });
    let kind = if v.get("error").is_some_and(Value::is_object) {
        "error"
    } else {
        kind
    };
    assert_json_schema(kind, &v);
    v
}

/// Whether `schema` is itself valid against its meta-schema (draft 2020-12 here).
pub fn is_valid_schema(schema: &Value) -> bool {
    jsonschema::meta::is_valid(schema)
}
