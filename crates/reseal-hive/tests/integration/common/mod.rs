//! Shared helpers for the integration tests: corpus access, oracle tools, models.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Command;

use reseal_hive::reg::{decode_reg_bytes, parse_reg, RegOp};
use reseal_hive::Hive;

/// Reads a corpus file, decompressing `.xz`. Panics (fails loudly) when the corpus or the file
/// is missing unless skipping is allowed (`RESEAL_ALLOW_SKIP=1`, see [`reseal_tests::env`]), in
/// which case returns None.
pub fn load(rel: &str) -> Option<Vec<u8>> {
    let p = reseal_tests::corpus_or_skip()?.join(rel);
    match std::fs::read(&p) {
        Ok(b) => {
            if rel.ends_with(".xz") {
                let mut out = Vec::new();
                xz2::read::XzDecoder::new(&b[..])
                    .read_to_end(&mut out)
                    .expect("xz decode");
                Some(out)
            } else {
                Some(b)
            }
        }
        Err(e) => {
            reseal_tests::skip_or_panic(
                &format!("corpus file {} missing ({e})", p.display()),
                "set RESEAL_CORPUS to a complete corpus",
            );
            None
        }
    }
}

/// Whether an oracle tool exists; panics when missing unless skipping is allowed.
pub fn need_tool(name: &str) -> bool {
    reseal_tests::have_tool(name)
}

/// Clean hives of the corpus (relative paths), for the export and no-op tests.
pub const CLEAN_HIVES: &[&str] = &[
    "regipy/BCD.xz",
    "regipy/NTUSER-WSL.DAT.xz",
    "regipy/NTUSER.DAT.xz",
    "regipy/SAM.xz",
    "regipy/SYSTEM.xz",
    "plaso/NTUSER.DAT",
    "plaso/regf/100_sub_keys.hiv",
    "plaso/regf/NTUSER.DAT",
    "plaso/regf/SAM",
    "plaso/regf/UsrClass.dat.xz",
    "plaso/winreg/win10-Amcache.hve",
    "aiowinreg/nt/sam.reg",
    "aiowinreg/nt/security.reg",
    "aiowinreg/nt/software.reg",
    "aiowinreg/nt/system.reg",
    "aiowinreg/win2008_32/sam.reg",
    "aiowinreg/win2008_32/security.reg",
    "aiowinreg/win2008r2_64/sam.reg",
    "aiowinreg/win2008r2_64/security.reg",
    "aiowinreg/win2012_64/sam.reg",
    "aiowinreg/win2012_64/security.reg",
    "aiowinreg/win2016_64/sam.reg",
    "aiowinreg/win2016_64/security.reg",
    "hivex/minimal",
    "hivex/special",
    "nt-hive/testhive",
    "yarp/BigDataHive.xz",
    "yarp/BogusKeyNamesHive.xz",
    "yarp/CompHive.xz",
    "yarp/DeletedDataHive.xz",
    "yarp/DeletedTreeHive.xz",
    "yarp/DupNameHive.xz",
    "yarp/DuplicateSubkeysHive.xz",
    "yarp/EmptyHive.xz",
    "yarp/ExtendedASCIIHive.xz",
    "yarp/HealedHive.xz",
    "yarp/InvalidParentHive.xz",
    "yarp/ManySubkeysHive.xz",
    "yarp/MultiSzHive.xz",
    "yarp/NewFlagsHive.xz",
    "yarp/OffHive.xz",
    "yarp/PairHive.xz",
    "yarp/RemnantsHive.xz",
    "yarp/SlackHive.xz",
    "yarp/StringValuesHive.xz",
    "yarp/TwoOwnersHive.xz",
    "yarp/UnicodeHive.xz",
    "yarp/UpcaseHive.xz",
    "yarp/ValuesOrderHive.xz",
    "yarp/WrongOrderHive.xz",
];

/// Keys -> (value name -> (type, data)), keyed by path relative to the root.
pub type Model = BTreeMap<String, BTreeMap<String, (u32, Vec<u8>)>>;

/// Builds a model from parsed .reg operations (paths with a leading `\` prefix).
pub fn model_from_ops(ops: &[RegOp]) -> Model {
    let mut m = Model::new();
    for op in ops {
        match op {
            RegOp::Key(p) => {
                m.entry(p.trim_start_matches('\\').to_string()).or_default();
            }
            RegOp::SetValue {
                key,
                name,
                data_type,
                data,
            } => {
                m.entry(key.trim_start_matches('\\').to_string())
                    .or_default()
                    .insert(name.clone(), (*data_type, data.clone()));
            }
            _ => {}
        }
    }
    m
}

/// Our own model: export then parse.
pub fn our_model(h: &Hive) -> reseal_hive::Result<Model> {
    let text = reseal_hive::reg::export(h, "", "\\")?;
    Ok(model_from_ops(&parse_reg(&text)?))
}

/// Decodes hivexregedit's output: Perl prints each line as UTF-8 if it holds a wide
/// character and as Latin-1 otherwise, so decode line by line.
pub fn decode_perl_lines(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len());
    for line in b.split(|&c| c == b'\n') {
        match std::str::from_utf8(line) {
            Ok(s) => out.push_str(s),
            Err(_) => out.extend(line.iter().map(|&c| c as char)),
        }
        out.push('\n');
    }
    out
}

pub fn write_temp(bytes: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("tempfile");
    std::io::Write::write_all(&mut f, bytes).expect("write temp");
    f
}

/// hivexregedit --export model, or Err(stderr) when hivex refuses the hive.
pub fn hivex_model(bytes: &[u8]) -> Result<Model, String> {
    let f = write_temp(bytes);
    let o = Command::new("hivexregedit")
        .arg("--export")
        .arg(f.path())
        .arg("\\")
        .output()
        .expect("run hivexregedit");
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    let text = decode_perl_lines(&o.stdout);
    let ops = parse_reg(&text).map_err(|e| format!("parse hivex output: {e}"))?;
    Ok(model_from_ops(&ops))
}

/// regipy's view: path -> values, via a small python script. Err on failure.
pub fn regipy_model(bytes: &[u8]) -> Result<Model, String> {
    let f = write_temp(bytes);
    let script = r#"
import sys, json, binascii
from regipy.registry import RegistryHive
h = RegistryHive(sys.argv[1])
out = {}
def walk(k, path):
    vals = {}
    for v in k.iter_values(as_json=False, max_len=10**9):
        vals["" if v.name == "(default)" else v.name] = None
    out[path] = sorted(vals.keys())
    for s in k.iter_subkeys():
        walk(s, (path + "\\" if path else "") + s.name)
walk(h.root, "")
print(json.dumps(out))
"#;
    let o = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(f.path())
        .output()
        .expect("run python3");
    if !o.status.success() {
        return Err(String::from_utf8_lossy(&o.stderr).into_owned());
    }
    let v: BTreeMap<String, Vec<String>> = serde_json_lite(&String::from_utf8_lossy(&o.stdout))?;
    Ok(v.into_iter()
        .map(|(k, names)| {
            (
                k,
                names.into_iter().map(|n| (n, (0u32, Vec::new()))).collect(),
            )
        })
        .collect())
}

/// Minimal parser for {"path": ["name", ...], ...} JSON (keeps the test deps small).
fn serde_json_lite(s: &str) -> Result<BTreeMap<String, Vec<String>>, String> {
    let mut chars = s.trim().chars().peekable();
    let mut out = BTreeMap::new();
    fn string(it: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Result<String, String> {
        while it.peek().is_some_and(|c| c.is_whitespace()) {
            it.next();
        }
        if it.next() != Some('"') {
            return Err("expected string".into());
        }
        let mut s = String::new();
        let mut pending_high: Option<u32> = None;
        while let Some(c) = it.next() {
            match c {
                '"' => return Ok(s),
                '\\' => match it.next() {
                    Some('u') => {
                        let h: String = (0..4).filter_map(|_| it.next()).collect();
                        let u = u32::from_str_radix(&h, 16).map_err(|e| e.to_string())?;
                        if (0xD800..0xDC00).contains(&u) {
                            pending_high = Some(u);
                        } else if (0xDC00..0xE000).contains(&u) {
                            if let Some(hi) = pending_high.take() {
                                let cp = 0x10000 + ((hi - 0xD800) << 10) + (u - 0xDC00);
                                s.push(char::from_u32(cp).unwrap_or('\u{FFFD}'));
                            } else {
                                s.push('\u{FFFD}');
                            }
                        } else {
                            s.push(char::from_u32(u).unwrap_or('\u{FFFD}'));
                        }
                    }
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    Some('r') => s.push('\r'),
                    Some('b') => s.push('\u{8}'),
                    Some('f') => s.push('\u{c}'),
                    Some(o) => s.push(o),
                    None => break,
                },
                c => s.push(c),
            }
        }
        Err("unterminated string".into())
    }
    let skip =
        |it: &mut std::iter::Peekable<std::str::Chars<'_>>, want: char| -> Result<(), String> {
            while it.peek().is_some_and(|c| c.is_whitespace()) {
                it.next();
            }
            if it.next() == Some(want) {
                Ok(())
            } else {
                Err(format!("expected {want}"))
            }
        };
    skip(&mut chars, '{')?;
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        if chars.peek() == Some(&'}') {
            break;
        }
        let k = string(&mut chars)?;
        skip(&mut chars, ':')?;
        skip(&mut chars, '[')?;
        let mut v = Vec::new();
        loop {
            while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
                chars.next();
            }
            if chars.peek() == Some(&']') {
                chars.next();
                break;
            }
            v.push(string(&mut chars)?);
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// Compares two models and lists differences (at most `max`).
pub fn diff_models(a: &Model, b: &Model, max: usize) -> Vec<String> {
    let mut d = Vec::new();
    for (k, va) in a {
        match b.get(k) {
            None => d.push(format!("key {k:?} only in left")),
            Some(vb) => {
                for (n, x) in va {
                    match vb.get(n) {
                        None => d.push(format!("value {k:?}/{n:?} only in left")),
                        Some(y) if x != y => d.push(format!(
                            "value {k:?}/{n:?}: {:?} vs {:?}",
                            short(x),
                            short(y)
                        )),
                        _ => {}
                    }
                }
                for n in vb.keys() {
                    if !va.contains_key(n) {
                        d.push(format!("value {k:?}/{n:?} only in right"));
                    }
                }
            }
        }
        if d.len() >= max {
            return d;
        }
    }
    for k in b.keys() {
        if !a.contains_key(k) {
            d.push(format!("key {k:?} only in right"));
        }
        if d.len() >= max {
            break;
        }
    }
    d
}

fn short(x: &(u32, Vec<u8>)) -> String {
    let n = x.1.len().min(24);
    format!("type {} len {} {:02x?}", x.0, x.1.len(), &x.1[..n])
}

pub fn decode_reg(b: &[u8]) -> String {
    decode_reg_bytes(b)
}

/// Runs every oracle on hive bytes and compares with our reader:
/// hivexregedit (full parsed content), regipy (key paths + value names), regfexport
/// (exit status + key count), and `check` must be clean.
pub fn verify_with_oracles(label: &str, bytes: &[u8]) {
    let h = Hive::from_bytes(bytes.to_vec()).unwrap_or_else(|e| panic!("{label}: reopen: {e}"));
    let problems: Vec<_> = reseal_hive::check(&h)
        .into_iter()
        .filter(|p| p.severity == reseal_hive::Severity::Error)
        .collect();
    assert!(
        problems.is_empty(),
        "{label}: check: {:#?}",
        &problems[..problems.len().min(10)]
    );
    let ours = our_model(&h).unwrap_or_else(|e| panic!("{label}: our export: {e}"));
    if need_tool("hivexregedit") {
        let hx = hivex_model(bytes).unwrap_or_else(|e| panic!("{label}: hivexregedit: {e}"));
        let d = diff_models(&ours, &hx, 10);
        assert!(d.is_empty(), "{label}: ours vs hivexregedit: {d:#?}");
    }
    if need_tool("python3") {
        let rp = regipy_model(bytes).unwrap_or_else(|e| panic!("{label}: regipy: {e}"));
        // regipy decodes compressed (Latin-1) names as UTF-8 with replacement characters
        // (demonstrably wrong for bytes >= 0x80), so compare the keys and values whose
        // full path and name are ASCII (non-ASCII names are covered by hivexregedit).
        let norm = |m: &Model| -> Model {
            m.iter()
                .filter(|(k, _)| k.is_ascii())
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.keys()
                            .filter(|n| n.is_ascii())
                            .map(|n| (n.clone(), (0u32, Vec::new())))
                            .collect(),
                    )
                })
                .collect()
        };
        let d = diff_models(&norm(&ours), &norm(&rp), 10);
        assert!(d.is_empty(), "{label}: ours vs regipy: {d:#?}");
    }
    if need_tool("regfexport") {
        let f = write_temp(bytes);
        let o = Command::new("regfexport")
            .arg(f.path())
            .output()
            .expect("run regfexport");
        assert!(
            o.status.success(),
            "{label}: regfexport failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let n = o
            .stdout
            .split(|&c| c == b'\n')
            .filter(|l| l.starts_with(b"Key path:"))
            .count();
        assert_eq!(n, ours.len(), "{label}: regfexport key count");
    }
}
