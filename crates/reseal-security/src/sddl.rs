//! SDDL (Security Descriptor Definition Language) text, in and out.
//!
//! Output follows `ConvertSecurityDescriptorToStringSecurityDescriptor`:
//! * sections in the order `O:` `G:` `D:` `S:`, each only when present (`D:` also for a NULL
//!   DACL: `D:NO_ACCESS_CONTROL`);
//! * ACL flags `P` (protected), `AR` (auto-inherit requested), `AI` (auto-inherited), in that
//!   order;
//! * SIDs: the two-letter alias for well-known SIDs that are **not** domain-relative (`BA`,
//!   `SY`, `WD`, `AU`, `CO`, …; MS-DTYP 2.5.1.1 and the "SID strings" table of sddl.h).
//!   Windows emits the domain-relative aliases (`LA`, `LG`, `DA`, `DU`, `DG`, `DC`, `DD`, `CA`,
//!   `SA`, `EA`, `PA`, `RS`, `RO`, `CN`, `AP`, `KA`, `EK`) only for SIDs of the domain of the
//!   machine doing the conversion. Offline there is no such domain, so they are used only when a
//!   domain is passed (`*_with_domain`); otherwise such SIDs print in `S-1-5-21-…` form;
//! * access rights: the composite codes `FA FR FW FX KA KR KW KX` when the mask equals one
//!   exactly (Windows prints 0x20019 as `KR`), else one letter pair per bit in ascending bit
//!   order (`CC DC LC SW RP WP DT LO CR SD RC WD WO GA GX GW GR`; `NW NR NX` in mandatory-label
//!   ACEs), else — if some bit has no code, e.g. SYNCHRONIZE — the whole mask as `0x…` lower-case
//!   hex (Windows prints `0x1200a9`, `0x1301bf`). A zero mask prints as the empty string;
//! * ACE flags `OI CI NP IO ID SA FA` in bit order; flag bits without an SDDL code (0x20) make
//!   the flags print as `0x…` hex (an extension; Windows cannot express them).
//!
//! Conditional ACEs render their expression as described in [`crate::conditional`]; resource
//! attribute ACEs as `("name",TI,0x0,1,2)` with types `TI TU TS TD TB TX`.

use crate::ace::{AccessMask, Ace, AceFlags, BasicAce, ObjectAce, ResourceAttributeAce};
use crate::acl::Acl;
use crate::claim::{ClaimAttribute, ClaimValue};
use crate::conditional::ConditionalExpression;
use crate::descriptor::{Control, SecurityDescriptor};
use crate::error::{Error, Result};
use crate::guid::Guid;
use crate::sid::Sid;

/// Well-known, non-domain-relative aliases: (alias, SID string).
const WELL_KNOWN: &[(&str, &str)] = &[
    ("AA", "S-1-5-32-579"),
    ("AC", "S-1-15-2-1"),
    ("AN", "S-1-5-7"),
    ("AO", "S-1-5-32-548"),
    ("AS", "S-1-18-1"),
    ("AU", "S-1-5-11"),
    ("BA", "S-1-5-32-544"),
    ("BG", "S-1-5-32-546"),
    ("BO", "S-1-5-32-551"),
    ("BU", "S-1-5-32-545"),
    ("CD", "S-1-5-32-574"),
    ("CG", "S-1-3-1"),
    ("CO", "S-1-3-0"),
    ("CY", "S-1-5-32-569"),
    ("ED", "S-1-5-9"),
    ("ER", "S-1-5-32-573"),
    ("ES", "S-1-5-32-576"),
    ("HA", "S-1-5-32-578"),
    ("HI", "S-1-16-12288"),
    ("IS", "S-1-5-32-568"),
    ("IU", "S-1-5-4"),
    ("LS", "S-1-5-19"),
    ("LU", "S-1-5-32-559"),
    ("LW", "S-1-16-4096"),
    ("ME", "S-1-16-8192"),
    ("MP", "S-1-16-8448"),
    ("MS", "S-1-5-32-577"),
    ("MU", "S-1-5-32-558"),
    ("NO", "S-1-5-32-556"),
    ("NS", "S-1-5-20"),
    ("NU", "S-1-5-2"),
    ("OW", "S-1-3-4"),
    ("PO", "S-1-5-32-550"),
    ("PS", "S-1-5-10"),
    ("PU", "S-1-5-32-547"),
    ("RA", "S-1-5-32-575"),
    ("RC", "S-1-5-12"),
    ("RD", "S-1-5-32-555"),
    ("RE", "S-1-5-32-552"),
    ("RM", "S-1-5-32-580"),
    ("RU", "S-1-5-32-554"),
    ("SI", "S-1-16-16384"),
    ("SO", "S-1-5-32-549"),
    ("SS", "S-1-18-2"),
    ("SU", "S-1-5-6"),
    ("SY", "S-1-5-18"),
    ("UD", "S-1-5-84-0-0-0-0-0"),
    ("WD", "S-1-1-0"),
    ("WR", "S-1-5-33"),
];

/// Domain-relative aliases: (alias, RID).
const DOMAIN_RELATIVE: &[(&str, u32)] = &[
    ("RO", 498),
    ("LA", 500),
    ("LG", 501),
    ("DA", 512),
    ("DU", 513),
    ("DG", 514),
    ("DC", 515),
    ("DD", 516),
    ("CA", 517),
    ("SA", 518),
    ("EA", 519),
    ("PA", 520),
    ("CN", 522),
    ("AP", 525),
    ("KA", 526),
    ("EK", 527),
    ("RS", 553),
];

/// SDDL form of a SID: alias when one applies (see the module docs), else `S-1-…`.
pub fn sid_to_sddl(sid: &Sid, domain: Option<&Sid>) -> String {
    let s = sid.to_string();
    if let Some((a, _)) = WELL_KNOWN.iter().find(|(_, v)| *v == s) {
        return (*a).to_string();
    }
    if let (Some(d), Some(rid)) = (domain, sid.rid()) {
        if sid.domain().as_ref() == Some(d) {
            if let Some((a, _)) = DOMAIN_RELATIVE.iter().find(|(_, r)| *r == rid) {
                return (*a).to_string();
            }
        }
    }
    s
}

/// Parse an SDDL SID (alias or `S-1-…`). `pos` is the character position for errors;
/// domain-relative aliases need `domain`.
pub fn sid_from_sddl(text: &str, pos: usize, domain: Option<&Sid>) -> Result<Sid> {
    let up = text.to_ascii_uppercase();
    if let Some((_, v)) = WELL_KNOWN.iter().find(|(a, _)| *a == up) {
        return v.parse();
    }
    if let Some((_, rid)) = DOMAIN_RELATIVE.iter().find(|(a, _)| *a == up) {
        let Some(d) = domain else {
            return Err(Error::Syntax {
                position: pos,
                reason: format!("alias {text} is domain-relative and no domain was given"),
            });
        };
        return d.with_rid(*rid);
    }
    text.parse::<Sid>().map_err(|e| match e {
        Error::Syntax { position, reason } => Error::Syntax {
            position: pos + position,
            reason,
        },
        e => e,
    })
}

const COMPOSITES: &[(&str, u32)] = &[
    ("FA", 0x001F_01FF),
    ("FR", 0x0012_0089),
    ("FW", 0x0012_0116),
    ("FX", 0x0012_00A0),
    ("KA", 0x000F_003F),
    ("KR", 0x0002_0019),
    ("KW", 0x0002_0006),
];
const KX: u32 = 0x0002_0019;

const BITS: &[(&str, u32)] = &[
    ("CC", 0x1),
    ("DC", 0x2),
    ("LC", 0x4),
    ("SW", 0x8),
    ("RP", 0x10),
    ("WP", 0x20),
    ("DT", 0x40),
    ("LO", 0x80),
    ("CR", 0x100),
    ("SD", 0x1_0000),
    ("RC", 0x2_0000),
    ("WD", 0x4_0000),
    ("WO", 0x8_0000),
    ("GA", 0x1000_0000),
    ("GX", 0x2000_0000),
    ("GW", 0x4000_0000),
    ("GR", 0x8000_0000),
];
const LABEL_BITS: &[(&str, u32)] = &[("NW", 0x1), ("NR", 0x2), ("NX", 0x4)];

/// SDDL access-rights string for `mask` in an ACE of type `ace_type` (see module docs).
pub fn mask_to_sddl(mask: AccessMask, ace_type: u8) -> String {
    let m = mask.0;
    if m == 0 {
        return String::new();
    }
    let bits = if ace_type == 0x11 { LABEL_BITS } else { BITS };
    if ace_type != 0x11 {
        if let Some((c, _)) = COMPOSITES.iter().find(|(_, v)| *v == m) {
            return (*c).to_string();
        }
    }
    let covered: u32 = bits.iter().map(|(_, b)| b).fold(0, |a, b| a | b);
    if m & !covered != 0 {
        return format!("{m:#x}");
    }
    bits.iter()
        .filter(|(_, b)| m & b != 0)
        .map(|(c, _)| *c)
        .collect()
}

fn mask_from_sddl(text: &str, pos: usize, ace_type: u8) -> Result<u32> {
    let t = text.trim();
    if t.is_empty() {
        return Ok(0);
    }
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return u32::from_str_radix(h, 16).map_err(|_| Error::Syntax {
            position: pos,
            reason: format!("bad hex access mask {t}"),
        });
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| Error::Syntax {
            position: pos,
            reason: format!("bad access mask {t}"),
        });
    }
    let mut m = 0;
    let chars: Vec<char> = t.chars().collect();
    for (k, pair) in chars.chunks(2).enumerate() {
        let code: String = pair.iter().collect::<String>().to_ascii_uppercase();
        let v = if ace_type == 0x11 {
            LABEL_BITS.iter().find(|(c, _)| *c == code).map(|x| x.1)
        } else {
            None
        }
        .or_else(|| COMPOSITES.iter().find(|(c, _)| *c == code).map(|x| x.1))
        .or_else(|| (code == "KX").then_some(KX))
        .or_else(|| BITS.iter().find(|(c, _)| *c == code).map(|x| x.1))
        .or_else(|| LABEL_BITS.iter().find(|(c, _)| *c == code).map(|x| x.1));
        match v {
            Some(v) => m |= v,
            None => {
                return Err(Error::Syntax {
                    position: pos + 2 * k,
                    reason: format!("unknown access right {code}"),
                })
            }
        }
    }
    Ok(m)
}

const FLAG_CODES: &[(&str, u8)] = &[
    ("OI", AceFlags::OBJECT_INHERIT),
    ("CI", AceFlags::CONTAINER_INHERIT),
    ("NP", AceFlags::NO_PROPAGATE_INHERIT),
    ("IO", AceFlags::INHERIT_ONLY),
    ("ID", AceFlags::INHERITED),
    ("SA", AceFlags::SUCCESSFUL_ACCESS),
    ("FA", AceFlags::FAILED_ACCESS),
];

fn flags_to_sddl(f: AceFlags) -> String {
    if f.0 & AceFlags::CRITICAL != 0 {
        return format!("{:#x}", f.0);
    }
    FLAG_CODES
        .iter()
        .filter(|(_, b)| f.0 & b != 0)
        .map(|(c, _)| *c)
        .collect()
}

fn flags_from_sddl(t: &str, pos: usize) -> Result<u8> {
    let t = t.trim();
    if let Some(h) = t.strip_prefix("0x") {
        return u8::from_str_radix(h, 16).map_err(|_| Error::Syntax {
            position: pos,
            reason: "bad hex ACE flags".into(),
        });
    }
    let chars: Vec<char> = t.chars().collect();
    let mut f = 0;
    for (k, pair) in chars.chunks(2).enumerate() {
        let code: String = pair.iter().collect::<String>().to_ascii_uppercase();
        match FLAG_CODES.iter().find(|(c, _)| *c == code) {
            Some((_, b)) => f |= b,
            None => {
                return Err(Error::Syntax {
                    position: pos + 2 * k,
                    reason: format!("unknown ACE flag {code}"),
                })
            }
        }
    }
    Ok(f)
}

const TYPE_CODES: &[(&str, u8)] = &[
    ("A", 0x00),
    ("D", 0x01),
    ("AU", 0x02),
    ("AL", 0x03),
    ("OA", 0x05),
    ("OD", 0x06),
    ("OU", 0x07),
    ("OL", 0x08),
    ("XA", 0x09),
    ("XD", 0x0A),
    ("ZA", 0x0B),
    ("XU", 0x0D),
    ("ML", 0x11),
    ("RA", 0x12),
    ("SP", 0x13),
    ("TL", 0x14),
    ("FL", 0x15),
];

fn claim_to_sddl(a: &ClaimAttribute, domain: Option<&Sid>) -> Result<String> {
    let t = match a.value_type {
        1 => "TI",
        2 => "TU",
        3 => "TS",
        5 => "TD",
        6 => "TB",
        0x10 => "TX",
        other => {
            return Err(Error::Unsupported(format!(
                "claim value type {other:#x} has no SDDL form"
            )))
        }
    };
    if a.name.contains('"') || a.reserved != 0 {
        return Err(Error::Unsupported(
            "claim attribute not expressible in SDDL".into(),
        ));
    }
    let mut s = format!("(\"{}\",{t},{:#x}", a.name, a.flags);
    for v in &a.values {
        s.push(',');
        match v {
            ClaimValue::Int64(x) => s.push_str(&x.to_string()),
            ClaimValue::Uint64(x) | ClaimValue::Boolean(x) => s.push_str(&x.to_string()),
            ClaimValue::String(x) => {
                if x.contains('"') {
                    return Err(Error::Unsupported("claim string containing '\"'".into()));
                }
                s.push_str(&format!("\"{x}\""));
            }
            ClaimValue::Sid(b) => match Sid::from_bytes(b) {
                Ok(sid) if sid.len() == b.len() => {
                    s.push_str(&format!("SID({})", sid_to_sddl(&sid, domain)))
                }
                _ => {
                    return Err(Error::Unsupported(
                        "claim SID value that is not a SID".into(),
                    ))
                }
            },
            ClaimValue::Octets(b) => {
                s.push('#');
                for x in b {
                    s.push_str(&format!("{x:02x}"));
                }
            }
            ClaimValue::Fqbn { .. } => {
                return Err(Error::Unsupported(
                    "FQBN claim values have no SDDL form".into(),
                ))
            }
        }
    }
    s.push(')');
    Ok(s)
}

/// Render one ACE.
pub fn ace_to_sddl(ace: &Ace, domain: Option<&Sid>) -> Result<String> {
    let t = ace.ace_type();
    let Some((code, _)) = TYPE_CODES.iter().find(|(_, c)| *c == t) else {
        return Err(Error::Unsupported(format!(
            "ACE type {t:#04x} has no SDDL form"
        )));
    };
    let (Some(mask), Some(sid)) = (ace.mask(), ace.sid()) else {
        return Err(Error::Unsupported(format!(
            "ACE type {t:#04x} has no SDDL form"
        )));
    };
    let (og, iog) = match ace.shape() {
        crate::ace::Shape::Object(o) => (
            o.object_type.map(|g| g.to_string()).unwrap_or_default(),
            o.inherited_object_type
                .map(|g| g.to_string())
                .unwrap_or_default(),
        ),
        _ => (String::new(), String::new()),
    };
    if let crate::ace::Shape::Object(o) = ace.shape() {
        if o.other_object_flags != 0 {
            return Err(Error::Unsupported(
                "object ACE flags beyond the GUID bits".into(),
            ));
        }
    }
    let mut s = format!(
        "({code};{};{};{og};{iog};{}",
        flags_to_sddl(ace.flags()),
        mask_to_sddl(mask, t),
        sid_to_sddl(sid, domain)
    );
    if let Some(data) = ace.application_data() {
        if !data.is_empty() {
            let e = ConditionalExpression::parse(data)?;
            s.push(';');
            s.push_str(&e.to_sddl(domain)?);
        }
    }
    if let Ace::SystemResourceAttribute(r) = ace {
        s.push(';');
        s.push_str(&claim_to_sddl(&r.attribute()?, domain)?);
    }
    s.push(')');
    Ok(s)
}

fn acl_to_sddl(
    out: &mut String,
    acl: Option<&Acl>,
    control: Control,
    sacl: bool,
    domain: Option<&Sid>,
) -> Result<()> {
    let (p, ar, ai) = if sacl {
        (
            Control::SACL_PROTECTED,
            Control::SACL_AUTO_INHERIT_REQ,
            Control::SACL_AUTO_INHERITED,
        )
    } else {
        (
            Control::DACL_PROTECTED,
            Control::DACL_AUTO_INHERIT_REQ,
            Control::DACL_AUTO_INHERITED,
        )
    };
    if control.has(p) {
        out.push('P');
    }
    if control.has(ar) {
        out.push_str("AR");
    }
    if control.has(ai) {
        out.push_str("AI");
    }
    match acl {
        None => out.push_str("NO_ACCESS_CONTROL"),
        Some(acl) => {
            for a in &acl.aces {
                out.push_str(&ace_to_sddl(a, domain)?);
            }
        }
    }
    Ok(())
}

impl SecurityDescriptor {
    /// SDDL text as Windows prints it (see [`crate::sddl`]), without domain-relative aliases.
    /// Fails with [`Error::Unsupported`] for content SDDL cannot express (unknown ACE types,
    /// callback ACE types without an SDDL code, non-conditional application data, …).
    pub fn to_sddl(&self) -> Result<String> {
        self.to_sddl_with_domain(None)
    }

    /// Like [`SecurityDescriptor::to_sddl`], using domain-relative aliases (`LA`, `DU`, …) for
    /// SIDs in `domain`.
    pub fn to_sddl_with_domain(&self, domain: Option<&Sid>) -> Result<String> {
        let mut s = String::new();
        if let Some(o) = &self.owner {
            s.push_str("O:");
            s.push_str(&sid_to_sddl(o, domain));
        }
        if let Some(g) = &self.group {
            s.push_str("G:");
            s.push_str(&sid_to_sddl(g, domain));
        }
        if self.dacl.is_some() || self.control.has(Control::DACL_PRESENT) {
            s.push_str("D:");
            acl_to_sddl(&mut s, self.dacl.as_ref(), self.control, false, domain)?;
        }
        if self.sacl.is_some() || self.control.has(Control::SACL_PRESENT) {
            s.push_str("S:");
            acl_to_sddl(&mut s, self.sacl.as_ref(), self.control, true, domain)?;
        }
        Ok(s)
    }

    /// Parse SDDL text. Errors carry the character position.
    pub fn from_sddl(text: &str) -> Result<Self> {
        Self::from_sddl_with_domain(text, None)
    }

    /// Parse SDDL text resolving domain-relative aliases against `domain`.
    pub fn from_sddl_with_domain(text: &str, domain: Option<&Sid>) -> Result<Self> {
        let c: Vec<char> = text.chars().collect();
        let mut sd = SecurityDescriptor::default();
        let mut i = 0;
        let is_section = |c: &[char], i: usize| -> bool {
            matches!(
                c.get(i).map(|x| x.to_ascii_uppercase()),
                Some('O' | 'G' | 'D' | 'S')
            ) && c.get(i + 1) == Some(&':')
        };
        let mut seen = [false; 4];
        while i < c.len() {
            if c[i].is_whitespace() {
                i += 1;
                continue;
            }
            if !is_section(&c, i) {
                return Err(Error::Syntax {
                    position: i,
                    reason: "expected O:, G:, D: or S:".into(),
                });
            }
            let which = c[i].to_ascii_uppercase();
            let idx = "OGDS".find(which).unwrap_or(0);
            if seen[idx] {
                return Err(Error::Syntax {
                    position: i,
                    reason: format!("duplicate {which}: section"),
                });
            }
            seen[idx] = true;
            i += 2;
            match which {
                'O' | 'G' => {
                    let st = i;
                    while i < c.len() && !is_section(&c, i) {
                        i += 1;
                    }
                    let t: String = c[st..i].iter().collect();
                    let sid = sid_from_sddl(t.trim(), st, domain)?;
                    if which == 'O' {
                        sd.owner = Some(sid);
                    } else {
                        sd.group = Some(sid);
                    }
                }
                _ => {
                    let sacl = which == 'S';
                    let (p, ar, ai, present) = if sacl {
                        (
                            Control::SACL_PROTECTED,
                            Control::SACL_AUTO_INHERIT_REQ,
                            Control::SACL_AUTO_INHERITED,
                            Control::SACL_PRESENT,
                        )
                    } else {
                        (
                            Control::DACL_PROTECTED,
                            Control::DACL_AUTO_INHERIT_REQ,
                            Control::DACL_AUTO_INHERITED,
                            Control::DACL_PRESENT,
                        )
                    };
                    sd.control.0 |= present;
                    let mut null = false;
                    // flags
                    loop {
                        let rest: String = c[i..].iter().take(17).collect();
                        if rest.starts_with("NO_ACCESS_CONTROL") {
                            null = true;
                            i += 17;
                        } else if rest.starts_with("AR") {
                            sd.control.0 |= ar;
                            i += 2;
                        } else if rest.starts_with("AI") {
                            sd.control.0 |= ai;
                            i += 2;
                        } else if rest.starts_with('P') {
                            sd.control.0 |= p;
                            i += 1;
                        } else {
                            break;
                        }
                    }
                    let mut aces = Vec::new();
                    loop {
                        while c.get(i).is_some_and(|x| x.is_whitespace()) {
                            i += 1;
                        }
                        if c.get(i) != Some(&'(') {
                            break;
                        }
                        // find matching ')', honouring quotes
                        let st = i;
                        let mut depth = 0i32;
                        let mut q = false;
                        let mut end = None;
                        for (k, &ch) in c.iter().enumerate().skip(i) {
                            if q {
                                if ch == '"' {
                                    q = false;
                                }
                                continue;
                            }
                            match ch {
                                '"' => q = true,
                                '(' => depth += 1,
                                ')' => {
                                    depth -= 1;
                                    if depth == 0 {
                                        end = Some(k);
                                        break;
                                    }
                                }
                                _ => {}
                            }
                        }
                        let Some(end) = end else {
                            return Err(Error::Syntax {
                                position: st,
                                reason: "unterminated ACE".into(),
                            });
                        };
                        aces.push(parse_ace(&c[st + 1..end], st + 1, domain)?);
                        i = end + 1;
                    }
                    if null && !aces.is_empty() {
                        return Err(Error::Syntax {
                            position: i,
                            reason: "NO_ACCESS_CONTROL with ACEs".into(),
                        });
                    }
                    let acl = (!null).then(|| Acl::new(aces));
                    if sacl {
                        sd.sacl = acl;
                    } else {
                        sd.dacl = acl;
                    }
                }
            }
        }
        Ok(sd)
    }
}

fn parse_ace(c: &[char], base: usize, domain: Option<&Sid>) -> Result<Ace> {
    // Split the first 6 fields on ';'; the 7th (condition / attribute) is the rest.
    let mut fields: Vec<(usize, String)> = Vec::new();
    let mut st = 0;
    for (k, &ch) in c.iter().enumerate() {
        if ch == ';' && fields.len() < 6 {
            fields.push((st, c[st..k].iter().collect()));
            st = k + 1;
        }
    }
    fields.push((st, c[st..].iter().collect()));
    if fields.len() < 6 {
        return Err(Error::Syntax {
            position: base,
            reason: format!("ACE has {} fields, expected 6 or 7", fields.len()),
        });
    }
    let (tp, tcode) = (&fields[0].0, fields[0].1.trim().to_ascii_uppercase());
    let Some(&(_, t)) = TYPE_CODES.iter().find(|(code, _)| *code == tcode) else {
        return Err(Error::Syntax {
            position: base + tp,
            reason: format!("unknown ACE type {tcode}"),
        });
    };
    let flags = AceFlags(flags_from_sddl(&fields[1].1, base + fields[1].0)?);
    let mask = AccessMask(mask_from_sddl(&fields[2].1, base + fields[2].0, t)?);
    let guid = |k: usize| -> Result<Option<Guid>> {
        let s = fields[k].1.trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse::<Guid>().map(Some).map_err(|_| Error::Syntax {
            position: base + fields[k].0,
            reason: format!("bad GUID {s}"),
        })
    };
    let og = guid(3)?;
    let iog = guid(4)?;
    let sid = sid_from_sddl(fields[5].1.trim(), base + fields[5].0, domain)?;
    let seventh = fields.get(6);
    let is_object = matches!(t, 0x05..=0x08 | 0x0B);
    if !is_object && (og.is_some() || iog.is_some()) {
        return Err(Error::Syntax {
            position: base + fields[3].0,
            reason: "GUIDs on a non-object ACE".into(),
        });
    }
    let app = matches!(t, 0x09..=0x10 | 0x15);
    let extra = match (seventh, app, t) {
        (Some((p, text)), true, _) => {
            ConditionalExpression::from_sddl(text.trim(), base + p, domain)?.encode()
        }
        (None, _, _) => Vec::new(),
        (Some(_), false, 0x12) => Vec::new(),
        (Some((p, _)), false, _) => {
            return Err(Error::Syntax {
                position: base + p,
                reason: "extra field on an ACE type that takes none".into(),
            });
        }
    };
    let basic = BasicAce {
        flags,
        mask,
        sid: sid.clone(),
        extra: extra.clone(),
    };
    let object = ObjectAce {
        flags,
        mask,
        other_object_flags: 0,
        object_type: og,
        inherited_object_type: iog,
        sid: sid.clone(),
        extra,
    };
    Ok(match t {
        0x00 => Ace::AccessAllowed(basic),
        0x01 => Ace::AccessDenied(basic),
        0x02 => Ace::SystemAudit(basic),
        0x03 => Ace::SystemAlarm(basic),
        0x05 => Ace::AccessAllowedObject(object),
        0x06 => Ace::AccessDeniedObject(object),
        0x07 => Ace::SystemAuditObject(object),
        0x08 => Ace::SystemAlarmObject(object),
        0x09 => Ace::AccessAllowedCallback(basic),
        0x0A => Ace::AccessDeniedCallback(basic),
        0x0B => Ace::AccessAllowedCallbackObject(object),
        0x0D => Ace::SystemAuditCallback(basic),
        0x11 => Ace::SystemMandatoryLabel(basic),
        0x12 => {
            let Some((p, text)) = seventh else {
                return Err(Error::Syntax {
                    position: base,
                    reason: "RA ACE needs an attribute".into(),
                });
            };
            let attr = claim_from_sddl(text.trim(), base + p, domain)?;
            Ace::SystemResourceAttribute(ResourceAttributeAce {
                flags,
                mask,
                sid,
                data: attr.encode(),
            })
        }
        0x13 => Ace::SystemScopedPolicyId(basic),
        0x14 => Ace::SystemProcessTrustLabel(basic),
        _ => Ace::SystemAccessFilter(basic),
    })
}

/// Split on ',' outside quotes and parentheses.
fn split_commas(c: &[char]) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let (mut q, mut depth, mut st) = (false, 0, 0);
    for (k, &ch) in c.iter().enumerate() {
        match ch {
            '"' => q = !q,
            '(' if !q => depth += 1,
            ')' if !q => depth -= 1,
            ',' if !q && depth == 0 => {
                out.push((st, c[st..k].iter().collect()));
                st = k + 1;
            }
            _ => {}
        }
    }
    out.push((st, c[st..].iter().collect()));
    out
}

fn claim_from_sddl(text: &str, base: usize, domain: Option<&Sid>) -> Result<ClaimAttribute> {
    let inner = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or(Error::Syntax {
            position: base,
            reason: "resource attribute must be (\"name\",type,flags,values…)".into(),
        })?;
    let chars: Vec<char> = inner.chars().collect();
    let parts = split_commas(&chars);
    if parts.len() < 3 {
        return Err(Error::Syntax {
            position: base,
            reason: "resource attribute needs name, type, flags".into(),
        });
    }
    let err = |p: usize, r: &str| Error::Syntax {
        position: base + 1 + p,
        reason: r.to_string(),
    };
    let unquote = |p: usize, s: &str| -> Result<String> {
        let s = s.trim();
        s.strip_prefix('"')
            .and_then(|x| x.strip_suffix('"'))
            .map(str::to_string)
            .ok_or_else(|| err(p, "expected a quoted string"))
    };
    let name = unquote(parts[0].0, &parts[0].1)?;
    let tcode = parts[1].1.trim().to_ascii_uppercase();
    let value_type = match tcode.as_str() {
        "TI" => 1,
        "TU" => 2,
        "TS" => 3,
        "TD" => 5,
        "TB" => 6,
        "TX" => 0x10,
        _ => return Err(err(parts[1].0, "unknown claim type")),
    };
    let num = |p: usize, s: &str| -> Result<i128> {
        let s = s.trim();
        let (neg, s) = match s.strip_prefix('-') {
            Some(r) => (true, r),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let v = if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
            i128::from_str_radix(h, 16)
        } else {
            s.parse::<i128>()
        }
        .map_err(|_| err(p, "bad number"))?;
        Ok(if neg { -v } else { v })
    };
    let flags = u32::try_from(num(parts[2].0, &parts[2].1)?)
        .map_err(|_| err(parts[2].0, "flags out of range"))?;
    let mut values = Vec::new();
    for (p, v) in &parts[3..] {
        let vt = v.trim();
        values.push(match value_type {
            1 => {
                ClaimValue::Int64(i64::try_from(num(*p, vt)?).map_err(|_| err(*p, "out of range"))?)
            }
            2 => ClaimValue::Uint64(
                u64::try_from(num(*p, vt)?).map_err(|_| err(*p, "out of range"))?,
            ),
            6 => ClaimValue::Boolean(
                u64::try_from(num(*p, vt)?).map_err(|_| err(*p, "out of range"))?,
            ),
            3 => ClaimValue::String(unquote(*p, vt)?),
            5 => {
                let inner = vt
                    .strip_prefix("SID(")
                    .or_else(|| vt.strip_prefix("sid("))
                    .and_then(|x| x.strip_suffix(')'))
                    .ok_or_else(|| err(*p, "expected SID(...)"))?;
                ClaimValue::Sid(sid_from_sddl(inner.trim(), base + 1 + p + 4, domain)?.to_bytes())
            }
            _ => {
                let h = vt.strip_prefix('#').unwrap_or(vt);
                if h.len() % 2 != 0 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(err(*p, "bad octet string"));
                }
                ClaimValue::Octets(
                    (0..h.len())
                        .step_by(2)
                        .map(|k| u8::from_str_radix(&h[k..k + 2], 16).unwrap_or(0))
                        .collect(),
                )
            }
        });
    }
    Ok(ClaimAttribute {
        name,
        value_type,
        reserved: 0,
        flags,
        values,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_to_sddl(AccessMask(0x1F01FF), 0), "FA");
        assert_eq!(mask_to_sddl(AccessMask(0x1200A9), 0), "0x1200a9");
        assert_eq!(mask_to_sddl(AccessMask(0x20019), 0), "KR");
        assert_eq!(mask_to_sddl(AccessMask(0xA000_0000), 0), "GXGR");
        assert_eq!(mask_to_sddl(AccessMask(0x1), 0x11), "NW");
        assert_eq!(
            mask_to_sddl(AccessMask(0xF01FF), 0),
            "CCDCLCSWRPWPDTLOCRSDRCWDWO"
        );
        assert_eq!(
            mask_from_sddl("CCDCLCSWRPWPDTLOCRSDRCWDWO", 0, 0).unwrap(),
            0xF01FF
        );
    }
}
