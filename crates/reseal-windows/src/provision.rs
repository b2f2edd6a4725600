//! Provisioning inputs of `generalize --oobe`, checked before anything is written: the answer
//! file (parsed with quick-xml: well-formed, root `unattend` in the namespace
//! `urn:schemas-microsoft-com:unattend`, every `settings pass=` a known pass), the offline
//! domain join blob (`djoin /provision /savefile` or Samba `net offlinejoin provision`: base64
//! text, UTF-16 or UTF-8), its merge into the specialize pass as
//! `Microsoft-Windows-UnattendedJoin\Identification\Provisioning\AccountData`, and the first-boot
//! wrapper script. The writes themselves are in `ops/provision.rs`; the facts and their sources
//! are in docs/OPERATIONS.md ("Provisioning").

use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use quick_xml::name::{Namespace, ResolveResult};
use quick_xml::reader::NsReader;
use quick_xml::writer::Writer;

use crate::{Error, Result};

/// The namespace of answer files.
pub const UNATTEND_NS: &str = "urn:schemas-microsoft-com:unattend";
/// The configuration passes an answer file's `settings pass=` may name.
pub const PASSES: [&str; 7] = [
    "windowsPE",
    "offlineServicing",
    "generalize",
    "specialize",
    "auditSystem",
    "auditUser",
    "oobeSystem",
];
/// `xmlns:wcm` of the components Windows System Image Manager writes.
const WCM_NS: &str = "http://schemas.microsoft.com/WMIConfig/2002/State";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";
const JOIN_COMPONENT: &str = "Microsoft-Windows-UnattendedJoin";

/// A user's file: its name (for messages) and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputFile {
    /// The name shown in messages and the report (the path given on the command line).
    pub name: String,
    /// The content.
    pub data: Vec<u8>,
}

/// One first-boot item, in the order given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstBoot {
    /// A file copied into the image and run (by extension: `.cmd`/`.bat` with `call`, `.ps1`
    /// with PowerShell, `.exe`/`.com` directly, `.vbs`/`.js`/`.wsf` with cscript).
    File(InputFile),
    /// A `cmd.exe` command line.
    Command(String),
}

/// A checked answer file.
#[derive(Debug, Clone)]
pub struct AnswerFile {
    /// Its name (for messages).
    pub name: String,
    /// The bytes as given (placed unchanged unless a blob is merged in).
    pub original: Vec<u8>,
    /// The document as UTF-8 text.
    text: String,
}

/// The text of a file that may be UTF-16 (with or without BOM) or UTF-8 (with or without BOM).
fn decode_text(name: &str, what: &'static str, b: &[u8]) -> Result<String> {
    let bad = |reason: String| Error::Invalid { what, reason };
    let utf16 = |b: &[u8], le: bool| -> Result<String> {
        if b.len() % 2 != 0 {
            return Err(bad(format!(
                "{name}: UTF-16 text of odd length ({} bytes)",
                b.len()
            )));
        }
        let u: Vec<u16> = b
            .chunks_exact(2)
            .map(|c| {
                if le {
                    u16::from_le_bytes([c[0], c[1]])
                } else {
                    u16::from_be_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&u).map_err(|e| bad(format!("{name}: bad UTF-16 text: {e}")))
    };
    if let Some(r) = b.strip_prefix(&[0xff, 0xfe]) {
        return utf16(r, true);
    }
    if let Some(r) = b.strip_prefix(&[0xfe, 0xff]) {
        return utf16(r, false);
    }
    let b = b.strip_prefix(&[0xef, 0xbb, 0xbf]).unwrap_or(b);
    // UTF-16LE without a BOM: ASCII text with a NUL after every character.
    if b.len() >= 4 && b.len() % 2 == 0 && b[1] == 0 && b[3] == 0 && b[0] != 0 {
        return utf16(b, true);
    }
    std::str::from_utf8(b)
        .map(str::to_string)
        .map_err(|e| bad(format!("{name}: not UTF-8 or UTF-16 text: {e}")))
}

/// `line L, column C` (1-based, columns in characters) of byte offset `at` of `text`.
fn line_col(text: &str, at: usize) -> String {
    let at = at.min(text.len());
    let mut cut = at;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let before = &text[..cut];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {col} (byte {at})")
}

fn is_unattend_ns(r: &ResolveResult) -> bool {
    matches!(r, ResolveResult::Bound(Namespace(n)) if *n == UNATTEND_NS.as_bytes())
}

fn ns_desc(r: &ResolveResult) -> String {
    match r {
        ResolveResult::Bound(Namespace(n)) => format!("\"{}\"", String::from_utf8_lossy(n)),
        _ => "none".into(),
    }
}

fn attr(e: &BytesStart, name: &str) -> std::result::Result<Option<String>, quick_xml::Error> {
    for a in e.attributes() {
        let a = a?;
        if a.key.as_ref() == name.as_bytes() {
            return Ok(Some(
                a.normalized_value(quick_xml::XmlVersion::Implicit1_0)?
                    .into_owned(),
            ));
        }
    }
    Ok(None)
}

/// Read an answer file and check it: well-formed XML (quick-xml, end tags matched, attributes
/// and references valid, one root), root `unattend` in [`UNATTEND_NS`], and every child
/// `settings` with a `pass` among [`PASSES`].
///
/// # Errors
/// [`Error::Invalid`] naming the file and the parse error with its line, column and byte.
pub fn parse_unattend(name: &str, data: &[u8]) -> Result<AnswerFile> {
    let text = decode_text(name, "answer file", data)?;
    let bad = |reason: String| Error::Invalid {
        what: "answer file",
        reason: format!("{name}: {reason}"),
    };
    let mut r = NsReader::from_str(&text);
    let mut depth = 0usize;
    let mut roots = 0usize;
    let mut open: Vec<String> = Vec::new();
    loop {
        let pos = r.buffer_position() as usize;
        let ev = r.read_resolved_event();
        let (in_ns, ns_text, ev) = match ev {
            Ok((ns, ev)) => (is_unattend_ns(&ns), ns_desc(&ns), ev),
            Err(e) => {
                let at = r.error_position() as usize;
                return Err(bad(format!(
                    "not well-formed XML at {}: {e}",
                    line_col(&text, at)
                )));
            }
        };
        let at = || line_col(&text, pos);
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                for a in e.attributes() {
                    if let Err(err) = a.map_err(quick_xml::Error::from).and_then(|a| {
                        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)?;
                        Ok(())
                    }) {
                        return Err(bad(format!("not well-formed XML at {}: {err}", at())));
                    }
                }
                let local = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if depth == 0 {
                    roots += 1;
                    if roots > 1 {
                        return Err(bad(format!(
                            "not well-formed XML at {}: a second root element <{local}>",
                            at()
                        )));
                    }
                    if local != "unattend" || !in_ns {
                        return Err(bad(format!(
                            "the root element is <{}> (namespace {}), not <unattend \
                             xmlns=\"{UNATTEND_NS}\">: not an answer file",
                            String::from_utf8_lossy(e.name().as_ref()),
                            ns_text
                        )));
                    }
                } else if depth == 1 && local == "settings" && in_ns {
                    let pass = attr(e, "pass")
                        .map_err(|err| bad(format!("not well-formed XML at {}: {err}", at())))?;
                    match pass {
                        Some(p) if PASSES.contains(&p.as_str()) => {}
                        Some(p) => {
                            return Err(bad(format!(
                                "<settings pass=\"{p}\"> at {}: unknown pass; valid passes: {}",
                                at(),
                                PASSES.join(", ")
                            )))
                        }
                        None => {
                            return Err(bad(format!(
                                "<settings> at {} has no pass attribute",
                                at()
                            )))
                        }
                    }
                }
                if matches!(ev, Event::Start(_)) {
                    depth += 1;
                    open.push(local);
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                open.pop();
            }
            Event::Text(ref t) => {
                let s = t
                    .decode()
                    .map_err(|e| bad(format!("bad text at {}: {e}", at())))?;
                if depth == 0 && !s.trim().is_empty() {
                    return Err(bad(format!(
                        "not well-formed XML at {}: text outside the root element",
                        at()
                    )));
                }
            }
            Event::GeneralRef(ref g) => {
                let ok = match g.resolve_char_ref() {
                    Ok(Some(_)) => true,
                    Ok(None) => matches!(
                        g.decode().as_deref(),
                        Ok("amp" | "lt" | "gt" | "apos" | "quot")
                    ),
                    Err(_) => false,
                };
                if !ok || depth == 0 {
                    return Err(bad(format!(
                        "not well-formed XML at {}: unknown or misplaced reference &{};",
                        at(),
                        String::from_utf8_lossy(g.as_ref())
                    )));
                }
            }
            Event::CData(_) if depth == 0 => {
                return Err(bad(format!(
                    "not well-formed XML at {}: CDATA outside the root element",
                    at()
                )))
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(e) = open.last() {
        return Err(bad(format!(
            "not well-formed XML at {}: <{e}> is not closed",
            line_col(&text, text.len())
        )));
    }
    if roots == 0 {
        return Err(bad("no root element: not an answer file".into()));
    }
    Ok(AnswerFile {
        name: name.to_string(),
        original: data.to_vec(),
        text,
    })
}

/// The answer file placed when a blob is given without one.
pub const MINIMAL_UNATTEND: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\r\n\
<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\r\n</unattend>\r\n";

/// Read an offline domain join blob and check that it is base64 (whitespace and NULs
/// dropped). Returns the base64 text to put in `AccountData`.
///
/// # Errors
/// [`Error::Invalid`] naming the file and where the text stops being base64.
pub fn parse_djoin_blob(name: &str, data: &[u8]) -> Result<String> {
    use base64::Engine;
    let text = decode_text(name, "--djoin-blob", data)?;
    let b64: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '\0')
        .collect();
    let bad = |reason: String| Error::Invalid {
        what: "--djoin-blob",
        reason: format!("{name}: {reason}"),
    };
    if b64.is_empty() {
        return Err(bad("empty: no provisioning data".into()));
    }
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    match engine.decode(b64.as_bytes()) {
        Ok(d) if d.is_empty() => Err(bad("decodes to no bytes".into())),
        Ok(_) => Ok(b64),
        Err(e) => Err(bad(format!(
            "not base64 (as `djoin /provision /savefile` or `net offlinejoin provision` \
             write it): {e} (offsets count the text without whitespace and NULs)"
        ))),
    }
}

/// The component attributes Windows answer files carry.
fn component_start(arch: &str, with_ns: bool) -> BytesStart<'static> {
    let mut c = BytesStart::new("component");
    if with_ns {
        c.push_attribute(("xmlns", UNATTEND_NS));
    }
    c.push_attribute(("name", JOIN_COMPONENT));
    c.push_attribute(("processorArchitecture", arch));
    c.push_attribute(("publicKeyToken", "31bf3856ad364e35"));
    c.push_attribute(("language", "neutral"));
    c.push_attribute(("versionScope", "nonSxS"));
    c.push_attribute(("xmlns:wcm", WCM_NS));
    c.push_attribute(("xmlns:xsi", XSI_NS));
    c
}

type W = Writer<Vec<u8>>;

fn io(e: std::io::Error) -> Error {
    Error::Invalid {
        what: "answer file",
        reason: format!("writing the merged answer file: {e}"),
    }
}

fn start(w: &mut W, name: &str, with_ns: bool) -> Result<()> {
    let mut s = BytesStart::new(name.to_string());
    if with_ns {
        s.push_attribute(("xmlns", UNATTEND_NS));
    }
    w.write_event(Event::Start(s)).map_err(io)
}

fn end(w: &mut W, name: &str) -> Result<()> {
    w.write_event(Event::End(BytesEnd::new(name.to_string())))
        .map_err(io)
}

fn write_provisioning(w: &mut W, blob: &str, with_ns: bool) -> Result<()> {
    start(w, "Provisioning", with_ns)?;
    start(w, "AccountData", false)?;
    w.write_event(Event::Text(BytesText::new(blob)))
        .map_err(io)?;
    end(w, "AccountData")?;
    end(w, "Provisioning")
}

fn write_identification(w: &mut W, blob: &str, with_ns: bool) -> Result<()> {
    start(w, "Identification", with_ns)?;
    write_provisioning(w, blob, false)?;
    end(w, "Identification")
}

fn write_component(w: &mut W, blob: &str, arch: &str, with_ns: bool) -> Result<()> {
    w.write_event(Event::Start(component_start(arch, with_ns)))
        .map_err(io)?;
    write_identification(w, blob, false)?;
    w.write_event(Event::End(BytesEnd::new("component")))
        .map_err(io)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Root,
    Specialize,
    Join,
    Identification,
    Other,
}

/// `answer` with `blob` as `Microsoft-Windows-UnattendedJoin\Identification\Provisioning\
/// AccountData` of its (first) specialize pass: an existing `Provisioning` there is replaced,
/// the component (attributes as Windows System Image Manager writes them, architecture `arch`)
/// and the settings pass are created when missing. Everything else is copied as it was; the
/// result is UTF-8 with an XML declaration saying so.
///
/// # Errors
/// [`Error::Invalid`] when the document does not parse (it was checked by
/// [`parse_unattend`], so only for text that was not).
pub fn merge_account_data(answer: &AnswerFile, blob: &str, arch: &str) -> Result<Vec<u8>> {
    let bad = |e: quick_xml::Error| Error::Invalid {
        what: "answer file",
        reason: format!("{}: {e}", answer.name),
    };
    let mut r = NsReader::from_str(&answer.text);
    r.config_mut().expand_empty_elements = true;
    let mut w = Writer::new(Vec::new());
    let mut stack: Vec<(Role, bool)> = Vec::new(); // role, element name had a prefix
    let mut done = false;
    let mut seen_specialize = false;
    let mut join_has_identification = false;
    let mut skip = 0usize;
    let mut wrote_decl = false;
    loop {
        let (in_ns, ev) = {
            let (ns, ev) = r.read_resolved_event().map_err(bad)?;
            (is_unattend_ns(&ns), ev)
        };
        if skip > 0 {
            match ev {
                Event::Start(_) => skip += 1,
                Event::End(_) => skip -= 1,
                Event::Eof => break,
                _ => {}
            }
            continue;
        }
        match ev {
            Event::Decl(_) => {
                w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
                    .map_err(io)?;
                wrote_decl = true;
            }
            Event::Start(e) => {
                if !wrote_decl {
                    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
                        .map_err(io)?;
                    w.write_event(Event::Text(BytesText::new("\r\n")))
                        .map_err(io)?;
                    wrote_decl = true;
                }
                let local = e.local_name();
                let local = local.as_ref();
                let prefixed = e.name().prefix().is_some();
                let parent = stack.last().map(|s| s.0);
                let role = match parent {
                    None => Role::Root,
                    Some(Role::Root)
                        if !done
                            && !seen_specialize
                            && in_ns
                            && local == b"settings"
                            && attr(&e, "pass").map_err(bad)?.as_deref() == Some("specialize") =>
                    {
                        seen_specialize = true;
                        Role::Specialize
                    }
                    Some(Role::Specialize)
                        if !done
                            && in_ns
                            && local == b"component"
                            && attr(&e, "name").map_err(bad)?.as_deref()
                                == Some(JOIN_COMPONENT) =>
                    {
                        Role::Join
                    }
                    Some(Role::Join) if !done && in_ns && local == b"Identification" => {
                        join_has_identification = true;
                        Role::Identification
                    }
                    Some(Role::Identification) if !done && in_ns && local == b"Provisioning" => {
                        // Replaced by the new one at </Identification>.
                        skip = 1;
                        continue;
                    }
                    _ => Role::Other,
                };
                stack.push((role, prefixed));
                w.write_event(Event::Start(e)).map_err(io)?;
            }
            Event::End(e) => {
                let (role, prefixed) = stack.pop().unwrap_or((Role::Other, false));
                if !done {
                    match role {
                        Role::Identification => {
                            write_provisioning(&mut w, blob, prefixed)?;
                            done = true;
                        }
                        Role::Join if !join_has_identification => {
                            write_identification(&mut w, blob, prefixed)?;
                            done = true;
                        }
                        Role::Specialize => {
                            write_component(&mut w, blob, arch, prefixed)?;
                            done = true;
                        }
                        Role::Root => {
                            let mut s = BytesStart::new("settings");
                            if prefixed {
                                s.push_attribute(("xmlns", UNATTEND_NS));
                            }
                            s.push_attribute(("pass", "specialize"));
                            w.write_event(Event::Start(s)).map_err(io)?;
                            write_component(&mut w, blob, arch, false)?;
                            end(&mut w, "settings")?;
                            w.write_event(Event::Text(BytesText::new("\r\n")))
                                .map_err(io)?;
                            done = true;
                        }
                        _ => {}
                    }
                }
                w.write_event(Event::End(e)).map_err(io)?;
            }
            Event::Eof => break,
            other => w.write_event(other).map_err(io)?,
        }
    }
    Ok(w.into_inner())
}

/// Where the wrapper keeps its items, below `Windows\Setup\Scripts`.
pub const ITEMS_DIR: &str = "reseal-firstboot";

/// The file name of item `i` (0-based): `NN-name`, the name reduced to characters every
/// Windows tool accepts.
pub fn item_name(i: usize, item: &FirstBoot) -> String {
    let base = match item {
        FirstBoot::File(f) => {
            let n = f.name.rsplit(['/', '\\']).next().unwrap_or(&f.name);
            n.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                        c
                    } else {
                        '_'
                    }
                })
                .collect::<String>()
        }
        FirstBoot::Command(_) => "command.cmd".to_string(),
    };
    format!("{:02}-{base}", i + 1)
}

/// How the wrapper starts a file, by its extension (lower case), or `None` when unsupported.
fn runner(ext: &str) -> Option<&'static str> {
    Some(match ext {
        "cmd" | "bat" => "call",
        "ps1" => "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File",
        "exe" | "com" => "",
        "vbs" | "js" | "wsf" => "cscript.exe //NoLogo //B",
        _ => return None,
    })
}

fn ext_of(name: &str) -> String {
    name.rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default()
}

/// Check the first-boot items: a file needs a supported extension, a command must be one line.
///
/// # Errors
/// [`Error::Invalid`] naming the item.
pub fn check_firstboot(items: &[FirstBoot]) -> Result<()> {
    for it in items {
        match it {
            FirstBoot::File(f) => {
                if runner(&ext_of(&f.name)).is_none() {
                    return Err(Error::Invalid {
                        what: "--firstboot",
                        reason: format!(
                            "{}: unsupported extension; use .cmd, .bat, .ps1, .exe, .com, .vbs, \
                             .js or .wsf (or --firstboot-command)",
                            f.name
                        ),
                    });
                }
            }
            FirstBoot::Command(c) => {
                if c.trim().is_empty() || c.contains(['\r', '\n']) {
                    return Err(Error::Invalid {
                        what: "--firstboot-command",
                        reason: format!("{c:?}: a command must be one non-empty line"),
                    });
                }
            }
        }
    }
    Ok(())
}

/// The system drive of the installed Windows (Windows gives its boot volume C:).
pub const SYSTEM_DRIVE: &str = "C:";
/// `Windows\Setup\Scripts` as Windows sees it.
pub fn scripts_dir_win() -> String {
    format!("{SYSTEM_DRIVE}\\Windows\\Setup\\Scripts")
}

/// Text with CRLF line ends (cmd.exe scripts).
fn crlf(lines: &[String]) -> Vec<u8> {
    let mut s = lines.join("\r\n");
    s.push_str("\r\n");
    s.into_bytes()
}

/// The file written for a `--firstboot-command` item.
pub fn command_file(cmd: &str) -> Vec<u8> {
    crlf(&[
        "@echo off".into(),
        "rem written by reseal: one --firstboot-command".into(),
        cmd.to_string(),
    ])
}

/// The wrapper `Windows\Setup\Scripts\reseal-firstboot.cmd`: runs every item once, in order,
/// appending each one's output and exit code to `reseal-firstboot.log`; a `.done` marker keeps
/// it from running twice; `reset_setup` (the non-generalized trigger) sets
/// `HKLM\SYSTEM\Setup` `SetupType` = 0 and `CmdLine` = "" at the end.
pub fn wrapper(items: &[FirstBoot], reset_setup: bool) -> Vec<u8> {
    let dir = scripts_dir_win();
    let log = format!("{dir}\\reseal-firstboot.log");
    let done = format!("{dir}\\reseal-firstboot.done");
    let mut l: Vec<String> = vec![
        "@echo off".into(),
        "rem Written by reseal: the first-boot items, run once as LocalSystem before logon.".into(),
        "rem Output and exit code of each item go to reseal-firstboot.log beside this file.".into(),
        "setlocal".into(),
        format!("if exist \"{done}\" goto :end"),
        format!(">>\"{log}\" echo [%DATE% %TIME%] reseal first boot: start"),
    ];
    for (i, it) in items.iter().enumerate() {
        let name = item_name(i, it);
        let path = format!("{dir}\\{ITEMS_DIR}\\{name}");
        let run = match it {
            FirstBoot::Command(_) => "call",
            FirstBoot::File(f) => runner(&ext_of(&f.name)).unwrap_or("call"),
        };
        let line = if run.is_empty() {
            format!("\"{path}\"")
        } else {
            format!("{run} \"{path}\"")
        };
        l.push(format!(">>\"{log}\" echo [%DATE% %TIME%] {name}: start"));
        l.push(format!("{line} >>\"{log}\" 2>&1"));
        l.push(format!(
            ">>\"{log}\" echo [%DATE% %TIME%] {name}: exit code %ERRORLEVEL%"
        ));
    }
    // Redirections first: `echo … exit code 1>>log` would redirect handle 1.
    l.push(format!(">\"{done}\" echo done"));
    l.push(format!(
        ">>\"{log}\" echo [%DATE% %TIME%] reseal first boot: end"
    ));
    l.push(":end".into());
    if reset_setup {
        l.push("reg.exe add HKLM\\SYSTEM\\Setup /v SetupType /t REG_DWORD /d 0 /f >nul".into());
        l.push("reg.exe add HKLM\\SYSTEM\\Setup /v CmdLine /t REG_SZ /d \"\" /f >nul".into());
    }
    l.push("exit /b 0".into());
    crlf(&l)
}

/// The `SetupComplete.cmd` that calls the wrapper, after `previous` (the image's own
/// SetupComplete.cmd, kept under that name) when there was one.
pub fn setup_complete(previous: Option<&str>) -> Vec<u8> {
    let dir = scripts_dir_win();
    let mut l: Vec<String> = vec![
        "@echo off".into(),
        "rem Written by reseal: run by Windows Setup as LocalSystem after setup, before logon."
            .into(),
    ];
    if let Some(p) = previous {
        l.push("rem The SetupComplete.cmd the image had before reseal:".into());
        l.push(format!("call \"{dir}\\{p}\""));
    }
    l.push(format!("call \"{dir}\\reseal-firstboot.cmd\""));
    crlf(&l)
}

/// Whether a SetupComplete.cmd is the one reseal writes (so a second run replaces it).
pub fn is_ours(setup_complete: &[u8]) -> bool {
    String::from_utf8_lossy(setup_complete).contains("reseal-firstboot.cmd")
}

/// `State.ini` with `[State] ImageState=state`, CRLF, as Windows keeps it.
pub fn state_ini(state: &str) -> Vec<u8> {
    crlf(&["[State]".into(), format!("ImageState={state}")])
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n";

    fn merged(doc: &str) -> String {
        let a = parse_unattend("t.xml", doc.as_bytes()).unwrap();
        let out = merge_account_data(&a, "QUJD", "arm64").unwrap();
        let s = String::from_utf8(out).unwrap();
        // The result parses again as an answer file.
        parse_unattend("merged", s.as_bytes()).unwrap();
        s
    }

    #[test]
    fn merge_without_specialize_adds_the_pass() {
        let s = merged(&format!(
            "{HEAD}<settings pass=\"oobeSystem\"><component name=\"X\"/></settings>\n</unattend>"
        ));
        assert!(
            s.contains(
                "<settings pass=\"oobeSystem\"><component name=\"X\"></component></settings>"
            ),
            "{s}"
        );
        assert!(s.contains("<settings pass=\"specialize\"><component name=\"Microsoft-Windows-UnattendedJoin\" processorArchitecture=\"arm64\" publicKeyToken=\"31bf3856ad364e35\" language=\"neutral\" versionScope=\"nonSxS\""), "{s}");
        assert!(s.contains("<Identification><Provisioning><AccountData>QUJD</AccountData></Provisioning></Identification></component></settings>"), "{s}");
        assert_eq!(s.matches("AccountData>QUJD").count(), 1);
    }

    #[test]
    fn merge_into_an_existing_specialize_pass() {
        let s = merged(&format!(
            "{HEAD}<settings pass=\"specialize\">\n<component name=\"Microsoft-Windows-Shell-Setup\"><ComputerName>PC1</ComputerName></component>\n</settings>\n</unattend>"
        ));
        assert!(s.contains("<ComputerName>PC1</ComputerName></component>\n<component name=\"Microsoft-Windows-UnattendedJoin\""), "{s}");
        assert_eq!(s.matches("<settings pass=\"specialize\">").count(), 1);
    }

    #[test]
    fn merge_into_an_existing_component_replaces_provisioning() {
        let s = merged(&format!(
            "{HEAD}<settings pass=\"specialize\"><component name=\"Microsoft-Windows-UnattendedJoin\" processorArchitecture=\"amd64\"><Identification><JoinDomain>x</JoinDomain><Provisioning><AccountData>OLD</AccountData></Provisioning></Identification></component></settings></unattend>"
        ));
        assert!(!s.contains("OLD"), "{s}");
        assert!(s.contains("<Identification><JoinDomain>x</JoinDomain><Provisioning><AccountData>QUJD</AccountData></Provisioning></Identification>"), "{s}");
        // The user's component keeps its attributes; no second component.
        assert_eq!(s.matches("Microsoft-Windows-UnattendedJoin").count(), 1);
        assert!(s.contains("processorArchitecture=\"amd64\""));
        // A component without Identification gets one.
        let s = merged(&format!(
            "{HEAD}<settings pass=\"specialize\"><component name=\"Microsoft-Windows-UnattendedJoin\"/></settings></unattend>"
        ));
        assert!(s.contains("<component name=\"Microsoft-Windows-UnattendedJoin\"><Identification><Provisioning><AccountData>QUJD"), "{s}");
    }

    #[test]
    fn merge_into_the_minimal_file_and_utf16() {
        let s = merged(MINIMAL_UNATTEND);
        assert!(s.contains("<settings pass=\"specialize\">"), "{s}");
        let mut u = vec![0xff, 0xfe];
        for c in format!("{HEAD}</unattend>")
            .replace("utf-8", "utf-16")
            .encode_utf16()
        {
            u.extend_from_slice(&c.to_le_bytes());
        }
        let a = parse_unattend("u16.xml", &u).unwrap();
        let out = String::from_utf8(merge_account_data(&a, "QUJD", "amd64").unwrap()).unwrap();
        assert!(
            out.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
            "{out}"
        );
    }

    #[test]
    fn refusals_name_the_file_and_place() {
        for (doc, want) in [
            ("<unattend xmlns=\"urn:schemas-microsoft-com:unattend\"><settings pass=\"specialize\"></unattend>", "line 1"),
            ("<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n<settings pass=\"x\"/></unattend>", "unknown pass"),
            ("<unattend xmlns=\"urn:other\"/>", "not an answer file"),
            ("<foo/>", "not an answer file"),
            ("<unattend xmlns=\"urn:schemas-microsoft-com:unattend\"><a b=\"1\" b=\"2\"/></unattend>", "line 1"),
            ("<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">&bogus;</unattend>", "reference"),
            ("<unattend xmlns=\"urn:schemas-microsoft-com:unattend\">\n<settings pass=\"specialize\">", "not closed"),
            ("", "no root"),
        ] {
            let e = parse_unattend("bad.xml", doc.as_bytes()).unwrap_err().to_string();
            assert!(e.contains("bad.xml") && e.contains(want), "{doc}: {e}");
        }
    }

    #[test]
    fn blobs() {
        assert_eq!(
            parse_djoin_blob("b", b"QUJD\r\nREVG\n").unwrap(),
            "QUJDREVG"
        );
        let mut u = vec![0xff, 0xfe];
        for c in "QUJDREVG\0".encode_utf16() {
            u.extend_from_slice(&c.to_le_bytes());
        }
        assert_eq!(parse_djoin_blob("b", &u).unwrap(), "QUJDREVG");
        let e = parse_djoin_blob("blob.txt", b"QUJD*REVG")
            .unwrap_err()
            .to_string();
        assert!(e.contains("blob.txt") && e.contains("base64"), "{e}");
        assert!(parse_djoin_blob("b", b"  \n").is_err());
    }

    #[test]
    fn scripts_are_crlf_and_in_order() {
        let items = vec![
            FirstBoot::Command("echo one".into()),
            FirstBoot::File(InputFile {
                name: "/tmp/setup me.ps1".into(),
                data: vec![],
            }),
        ];
        check_firstboot(&items).unwrap();
        let w = String::from_utf8(wrapper(&items, true)).unwrap();
        assert!(!w.replace("\r\n", "").contains('\n'));
        let a = w.find("01-command.cmd").unwrap();
        let b = w.find("powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -File \"C:\\Windows\\Setup\\Scripts\\reseal-firstboot\\02-setup_me.ps1\"").unwrap();
        assert!(a < b);
        assert!(w.contains("/v SetupType /t REG_DWORD /d 0"));
        assert!(!String::from_utf8(wrapper(&items, false))
            .unwrap()
            .contains("SetupType"));
        assert!(check_firstboot(&[FirstBoot::Command("a\nb".into())]).is_err());
        assert!(check_firstboot(&[FirstBoot::File(InputFile {
            name: "x.txt".into(),
            data: vec![]
        })])
        .is_err());
    }
}
