//! `.reg` files: export in regedit's version-5 format and import (version 5 or REGEDIT4).
//!
//! Export: "Windows Registry Editor Version 5.00", CRLF line ends, one `[key]` section per
//! key (depth first, stored order), `@=` for the default value, `"string"` for REG_SZ data
//! that round-trips exactly (UTF-16, one terminating NUL, no control characters),
//! `dword:` for 4-byte REG_DWORD, `hex:` for REG_BINARY and `hex(N):` for every other
//! type (N in lower-case hex), hex lines wrapped like regedit (break after the comma that
//! brings a line to 77 characters or more, trailing `\`, two-space indent: 25 bytes per
//! continuation line). [`export_utf16`] adds the UTF-16LE BOM encoding
//! regedit writes.

use crate::error::{HiveError, Result};
use crate::hive::Hive;
use crate::key_node::{Key, Visitor};
use crate::key_value::{decode_utf16z, encode_sz, Value, REG_BINARY, REG_DWORD, REG_SZ};

/// First line of a version-5 `.reg` file.
pub const HEADER_V5: &str = "Windows Registry Editor Version 5.00";
/// First line of a REGEDIT4 file.
pub const HEADER_V4: &str = "REGEDIT4";

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// Formats one value line (with wrapping) into `out`, CRLF-terminated.
pub fn format_value(name: &str, data_type: u32, data: &[u8], out: &mut String) {
    let start = out.len();
    if name.is_empty() {
        out.push('@');
    } else {
        out.push('"');
        escape(name, out);
        out.push('"');
    }
    out.push('=');
    if data_type == REG_SZ {
        let s = decode_utf16z(data);
        if encode_sz(&s) == data && !s.chars().any(|c| c.is_control()) {
            out.push('"');
            escape(&s, out);
            out.push_str("\"\r\n");
            return;
        }
    }
    if data_type == REG_DWORD && data.len() == 4 {
        let v = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
        out.push_str(&format!("dword:{v:08x}\r\n"));
        return;
    }
    if data_type == REG_BINARY {
        out.push_str("hex:");
    } else {
        out.push_str(&format!("hex({data_type:x}):"));
    }
    // regedit's rule: after each "xx," the line is broken (backslash, CRLF, two spaces) once it
    // holds 77 characters or more, so continuation lines carry 25 bytes.
    let mut line_len = out[start..].chars().count();
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, b) in data.iter().enumerate() {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
        if i + 1 == data.len() {
            break;
        }
        out.push(',');
        line_len += 3;
        if line_len >= 77 {
            out.push_str("\\\r\n  ");
            line_len = 2;
        }
    }
    out.push_str("\r\n");
}

struct Exporter<'a> {
    out: String,
    prefix: &'a str,
    err: Option<HiveError>,
}

fn join_path(prefix: &str, path: &str) -> String {
    if path.is_empty() {
        prefix.to_string()
    } else if prefix.is_empty() || prefix.ends_with('\\') {
        format!("{prefix}{path}")
    } else {
        format!("{prefix}\\{path}")
    }
}

impl Visitor for Exporter<'_> {
    fn enter_key(&mut self, _key: &Key<'_>, path: &str) -> Result<()> {
        self.out.push('[');
        self.out.push_str(&join_path(self.prefix, path));
        self.out.push_str("]\r\n");
        Ok(())
    }
    fn value(&mut self, _key: &Key<'_>, value: &Value<'_>) -> Result<()> {
        let d = value.data()?;
        format_value(&value.name(), value.data_type(), &d, &mut self.out);
        Ok(())
    }
    fn leave_key(&mut self, _key: &Key<'_>, _path: &str) -> Result<()> {
        Ok(())
    }
}

/// Exports the subtree at `key_path` (relative to the root, "" = whole hive) as `.reg`
/// text. Section names are `prefix` joined with the path (e.g. prefix
/// `HKEY_LOCAL_MACHINE\SOFTWARE`; prefix `\` gives hivexregedit's `[\]`, `[\Key]`).
///
/// # Errors
/// Key not found or corruption.
pub fn export(hive: &Hive, key_path: &str, prefix: &str) -> Result<String> {
    let key = hive.open_path(key_path)?;
    let mut e = Exporter {
        out: String::with_capacity(1 << 16),
        prefix,
        err: None,
    };
    e.out.push_str(HEADER_V5);
    e.out.push_str("\r\n\r\n");
    // section names use the stored case of each component, as regedit does
    let mut stored = Vec::new();
    let mut k = hive.root()?;
    for comp in key_path.split('\\').filter(|c| !c.is_empty()) {
        k = k.subkey(comp)?.ok_or_else(|| HiveError::NotFound {
            path: key_path.to_string(),
        })?;
        stored.push(k.name());
    }
    let path = stored.join("\\");
    let path = path.as_str();
    let mut wrapper = Sections(&mut e);
    hive.walk_from(key, path, &mut wrapper)?;
    if let Some(err) = e.err {
        return Err(err);
    }
    Ok(e.out)
}

/// Adds the blank line regedit puts after each section.
struct Sections<'a, 'b>(&'a mut Exporter<'b>);
impl Visitor for Sections<'_, '_> {
    fn enter_key(&mut self, key: &Key<'_>, path: &str) -> Result<()> {
        if !self.0.out.ends_with("\r\n\r\n") {
            self.0.out.push_str("\r\n");
        }
        self.0.enter_key(key, path)
    }
    fn value(&mut self, key: &Key<'_>, value: &Value<'_>) -> Result<()> {
        self.0.value(key, value)
    }
}

/// [`export`] encoded as regedit writes it: UTF-16LE with a BOM.
///
/// # Errors
/// As [`export`].
pub fn export_utf16(hive: &Hive, key_path: &str, prefix: &str) -> Result<Vec<u8>> {
    let s = export(hive, key_path, prefix)?;
    let mut out = Vec::with_capacity(2 + s.len() * 2);
    out.extend_from_slice(&[0xFF, 0xFE]);
    for u in s.encode_utf16() {
        out.extend_from_slice(&u.to_le_bytes());
    }
    if !s.ends_with("\r\n\r\n") {
        out.extend_from_slice(&[b'\r', 0, b'\n', 0]);
    }
    Ok(out)
}

/// Writes [`export_utf16`] to a writer.
///
/// # Errors
/// Export errors; I/O errors are mapped to [`HiveError::Unsupported`] with the message.
pub fn export_to_writer<W: std::io::Write>(
    hive: &Hive,
    key_path: &str,
    prefix: &str,
    w: &mut W,
) -> Result<()> {
    let b = export_utf16(hive, key_path, prefix)?;
    w.write_all(&b).map_err(|e| HiveError::Unsupported {
        what: format!("write failed: {e}"),
    })
}

/// One operation of a parsed `.reg` file (key paths as written in the file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegOp {
    /// `[path]`: create the key if missing; following values go to it.
    Key(String),
    /// `[-path]`: delete the key and its subtree.
    DeleteKey(String),
    /// `"name"=...` (or `@=`): set a value of the current key.
    SetValue {
        /// Key path.
        key: String,
        /// Value name ("" = default).
        name: String,
        /// Type.
        data_type: u32,
        /// Raw data.
        data: Vec<u8>,
    },
    /// `"name"=-`: delete a value.
    DeleteValue {
        /// Key path.
        key: String,
        /// Value name.
        name: String,
    },
}

/// Decodes `.reg` bytes: UTF-16LE with BOM, UTF-8 (with or without BOM), else Latin-1.
pub fn decode_reg_bytes(b: &[u8]) -> String {
    if b.len() >= 2 && b[0] == 0xFF && b[1] == 0xFE {
        let units = b[2..]
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]));
        return char::decode_utf16(units)
            .map(|r| r.unwrap_or('\u{FFFD}'))
            .collect();
    }
    let b = b.strip_prefix(&[0xEF, 0xBB, 0xBF]).unwrap_or(b);
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|&c| c as char).collect(),
    }
}

fn parse_quoted(s: &str, line: usize) -> Result<(String, &str)> {
    let mut out = String::new();
    let mut it = s.char_indices();
    if it.next().map(|x| x.1) != Some('"') {
        return Err(HiveError::RegSyntax {
            line,
            reason: "expected '\"'".into(),
        });
    }
    while let Some((i, c)) = it.next() {
        match c {
            '\\' => match it.next() {
                Some((_, e)) => out.push(e),
                None => break,
            },
            '"' => return Ok((out, &s[i + 1..])),
            c => out.push(c),
        }
    }
    Err(HiveError::RegSyntax {
        line,
        reason: "unterminated string".into(),
    })
}

fn parse_hex_bytes(s: &str, line: usize) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() / 3 + 1);
    for t in s.split(',') {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        out.push(u8::from_str_radix(t, 16).map_err(|_| HiveError::RegSyntax {
            line,
            reason: format!("bad hex byte {t:?}"),
        })?);
    }
    Ok(out)
}

/// Parses `.reg` text into operations.
///
/// # Errors
/// [`HiveError::RegSyntax`] with the line number.
pub fn parse_reg(text: &str) -> Result<Vec<RegOp>> {
    let mut ops = Vec::new();
    let mut lines = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .peekable();
    let mut header_seen = false;
    let mut cur: Option<String> = None;
    while let Some((idx, raw)) = lines.next() {
        let lineno = idx + 1;
        let mut line = raw.trim_start_matches('\u{feff}').trim().to_string();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        if !header_seen {
            if line == HEADER_V5 || line == HEADER_V4 {
                header_seen = true;
                continue;
            }
            return Err(HiveError::RegSyntax {
                line: lineno,
                reason: format!("missing header, found {line:?}"),
            });
        }
        if line.starts_with('[') {
            let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) else {
                return Err(HiveError::RegSyntax {
                    line: lineno,
                    reason: "unterminated [key]".into(),
                });
            };
            if let Some(del) = inner.strip_prefix('-') {
                ops.push(RegOp::DeleteKey(del.to_string()));
                cur = None;
            } else {
                ops.push(RegOp::Key(inner.to_string()));
                cur = Some(inner.to_string());
            }
            continue;
        }
        // continuation lines
        while line.ends_with('\\') && !line.ends_with("\"") {
            match lines.peek() {
                Some((_, next)) if !next.trim().starts_with('[') => {
                    line.pop();
                    let (_, n) = lines.next().expect("invariant: peeked");
                    line.push_str(n.trim());
                }
                _ => break,
            }
        }
        let Some(key) = cur.clone() else {
            return Err(HiveError::RegSyntax {
                line: lineno,
                reason: "value outside a key section".into(),
            });
        };
        let (name, rest) = if let Some(r) = line.strip_prefix('@') {
            (String::new(), r)
        } else {
            parse_quoted(&line, lineno)?
        };
        let Some(v) = rest.trim_start().strip_prefix('=') else {
            return Err(HiveError::RegSyntax {
                line: lineno,
                reason: "expected '='".into(),
            });
        };
        let v = v.trim();
        if v == "-" {
            ops.push(RegOp::DeleteValue { key, name });
            continue;
        }
        let (data_type, data) = parse_value_data_at(v, lineno)?;
        ops.push(RegOp::SetValue {
            key,
            name,
            data_type,
            data,
        });
    }
    if !header_seen {
        return Err(HiveError::RegSyntax {
            line: 1,
            reason: "empty file".into(),
        });
    }
    Ok(ops)
}

/// Parses the data part of a value line in `.reg` syntax: `"string"`, `dword:0000002a`,
/// `hex:01,02`, `hex(7):41,00,...` (what `reseal reg set` accepts). Returns (type, data).
///
/// # Errors
/// [`HiveError::RegSyntax`] (line 1) when the form is not recognised.
pub fn parse_value_data(spec: &str) -> Result<(u32, Vec<u8>)> {
    parse_value_data_at(spec.trim(), 1)
}

fn parse_value_data_at(v: &str, lineno: usize) -> Result<(u32, Vec<u8>)> {
    let r = if v.starts_with('"') {
        let (s, tail) = parse_quoted(v, lineno)?;
        if !tail.trim().is_empty() {
            return Err(HiveError::RegSyntax {
                line: lineno,
                reason: "text after string".into(),
            });
        }
        (REG_SZ, encode_sz(&s))
    } else if let Some(d) = v.strip_prefix("dword:") {
        let n = u32::from_str_radix(d.trim(), 16).map_err(|_| HiveError::RegSyntax {
            line: lineno,
            reason: format!("bad dword {d:?}"),
        })?;
        (REG_DWORD, n.to_le_bytes().to_vec())
    } else if let Some(h) = v.strip_prefix("hex:") {
        (REG_BINARY, parse_hex_bytes(h, lineno)?)
    } else if let Some(h) = v.strip_prefix("hex(") {
        let Some((t, rest)) = h.split_once("):") else {
            return Err(HiveError::RegSyntax {
                line: lineno,
                reason: "bad hex(N): form".into(),
            });
        };
        let t = u32::from_str_radix(t, 16).map_err(|_| HiveError::RegSyntax {
            line: lineno,
            reason: format!("bad type {t:?}"),
        })?;
        (t, parse_hex_bytes(rest, lineno)?)
    } else {
        return Err(HiveError::RegSyntax {
            line: lineno,
            reason: format!("unknown value form {v:?}"),
        });
    };
    Ok(r)
}

/// Counts of what [`import`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImportStats {
    /// Key sections processed (created or already present).
    pub keys: usize,
    /// Keys deleted by `[-key]`.
    pub keys_deleted: usize,
    /// Values set.
    pub values_set: usize,
    /// Values deleted by `"v"=-`.
    pub values_deleted: usize,
}

/// Strips `prefix` (case-insensitive, e.g. `HKEY_LOCAL_MACHINE\SOFTWARE`) from a key path
/// written in a `.reg` file and returns the path relative to the hive root. A path that starts
/// with `\` and is not under the prefix is already relative to the hive root: hivexregedit
/// writes `[\]` for the root and `[\SAM\Domains]` below it.
///
/// # Errors
/// [`HiveError::InvalidArgument`] when the path is neither under the prefix nor `\`-rooted.
pub fn strip_prefix(path: &str, prefix: &str) -> Result<String> {
    let p = prefix.trim_end_matches('\\');
    let path_t = path.trim_start_matches('\\');
    let pre_t = p.trim_start_matches('\\');
    if pre_t.is_empty() {
        return Ok(path_t.to_string());
    }
    let head = path_t.get(..pre_t.len());
    if head.is_some_and(|h| h.eq_ignore_ascii_case(pre_t)) {
        let rest = &path_t[pre_t.len()..];
        if rest.is_empty() || rest.starts_with('\\') {
            return Ok(rest.trim_start_matches('\\').to_string());
        }
    }
    // A `\`-rooted path naming another root key (`\HKEY_…`) is a mistake, not a subkey.
    let foreign_root = path_t
        .get(..5)
        .is_some_and(|h| h.eq_ignore_ascii_case("HKEY_"));
    if path.starts_with('\\') && !foreign_root {
        return Ok(path_t.to_string());
    }
    Err(HiveError::InvalidArgument {
        reason: format!("key {path:?} is not under {prefix:?}"),
    })
}

/// Applies a `.reg` file (bytes in any supported encoding) to a writable hive. Key paths
/// are made relative to the root with [`strip_prefix`].
///
/// # Errors
/// Syntax errors (nothing applied), paths outside the prefix, edit errors.
pub fn import(hive: &mut Hive, reg: &[u8], prefix: &str) -> Result<ImportStats> {
    let ops = parse_reg(&decode_reg_bytes(reg))?;
    apply(hive, &ops, prefix)
}

/// Applies parsed operations (see [`import`]).
///
/// # Errors
/// As [`import`].
pub fn apply(hive: &mut Hive, ops: &[RegOp], prefix: &str) -> Result<ImportStats> {
    let mut st = ImportStats::default();
    let mut cur_path: Option<String> = None;
    let mut cur_key = hive.root_offset();
    for op in ops {
        match op {
            RegOp::Key(p) => {
                let rel = strip_prefix(p, prefix)?;
                cur_key = hive.create_path(&rel)?;
                cur_path = Some(rel);
                st.keys += 1;
            }
            RegOp::DeleteKey(p) => {
                let rel = strip_prefix(p, prefix)?;
                let found = match hive.open_path(&rel) {
                    Ok(k) => Some(k.offset()),
                    Err(HiveError::NotFound { .. }) => None,
                    Err(e) => return Err(e),
                };
                if let Some(k) = found {
                    hive.delete_key(k, true)?;
                    st.keys_deleted += 1;
                }
                cur_path = None;
            }
            RegOp::SetValue {
                name,
                data_type,
                data,
                ..
            } => {
                if cur_path.is_none() {
                    return Err(HiveError::InvalidArgument {
                        reason: "value without key".into(),
                    });
                }
                hive.set_value(cur_key, name, *data_type, data)?;
                st.values_set += 1;
            }
            RegOp::DeleteValue { name, .. } => {
                if hive.delete_value(cur_key, name)? {
                    st.values_deleted += 1;
                }
            }
        }
    }
    Ok(st)
}
