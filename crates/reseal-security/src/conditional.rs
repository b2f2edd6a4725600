//! Conditional expressions of callback ACEs (MS-DTYP 2.4.4.17).
//!
//! Application data starting with `artx` (61 72 74 78) is a postfix token stream. Tokens:
//! integers 0x01-0x04 (`i64` value, sign byte 1 `+` / 2 `-` / 3 none, base byte 1 octal /
//! 2 decimal / 3 hex), Unicode string 0x10, octet string 0x18, composite 0x50, SID 0x51 (each
//! with a `u32` byte length), attribute names 0xF8 local / 0xF9 `@User.` / 0xFA `@Resource.` /
//! 0xFB `@Device.`, operators 0x80-0x93 and 0xA0-0xA2, padding 0x00.
//!
//! SDDL rendering puts every operator application in parentheses: `(@User.x == "y")`,
//! `(Member_of {SID(BA), SID(S-1-5-32-545)})`, `((a == 1) && (!(Exists b)))`.

use std::ops::Range;

use crate::error::{Error, Result};
use crate::layout::read;
use crate::sid::Sid;
use zerocopy::little_endian::{U32, U64};

/// The `artx` signature of conditional application data.
pub const SIGNATURE: &[u8; 4] = b"artx";

/// Kind of attribute reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttributeKind {
    /// 0xF8, written without prefix.
    Local,
    /// 0xF9, `@User.`
    User,
    /// 0xFA, `@Resource.`
    Resource,
    /// 0xFB, `@Device.`
    Device,
}

impl AttributeKind {
    fn code(self) -> u8 {
        match self {
            AttributeKind::Local => 0xF8,
            AttributeKind::User => 0xF9,
            AttributeKind::Resource => 0xFA,
            AttributeKind::Device => 0xFB,
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            AttributeKind::Local => "",
            AttributeKind::User => "@User.",
            AttributeKind::Resource => "@Resource.",
            AttributeKind::Device => "@Device.",
        }
    }
}

/// One token of a conditional expression.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Token {
    /// Integer literal (token code 0x01-0x04).
    Int {
        /// Token code (0x01 int8 .. 0x04 int64); SDDL input produces 0x04.
        code: u8,
        /// Value.
        value: i64,
        /// Sign byte: 1 `+`, 2 `-`, 3 none.
        sign: u8,
        /// Base byte: 1 octal, 2 decimal, 3 hex.
        base: u8,
    },
    /// Unicode string literal (0x10).
    String(String),
    /// Octet string literal (0x18).
    Octets(Vec<u8>),
    /// Composite `{...}` (0x50).
    Composite(Vec<Token>),
    /// SID literal (0x51).
    Sid(Sid),
    /// Attribute name.
    Attribute(AttributeKind, String),
    /// Operator byte (0x80-0x93, 0xA0-0xA2).
    Operator(u8),
}

/// Operator byte → (SDDL text, arity, is symbolic).
fn operator_info(op: u8) -> Option<(&'static str, u8)> {
    Some(match op {
        0x80 => ("==", 2),
        0x81 => ("!=", 2),
        0x82 => ("<", 2),
        0x83 => ("<=", 2),
        0x84 => (">", 2),
        0x85 => (">=", 2),
        0x86 => ("Contains", 2),
        0x87 => ("Exists", 1),
        0x88 => ("Any_of", 2),
        0x89 => ("Member_of", 1),
        0x8A => ("Device_Member_of", 1),
        0x8B => ("Member_of_Any", 1),
        0x8C => ("Device_Member_of_Any", 1),
        0x8D => ("Not_Exists", 1),
        0x8E => ("Not_Contains", 2),
        0x8F => ("Not_Any_of", 2),
        0x90 => ("Not_Member_of", 1),
        0x91 => ("Not_Device_Member_of", 1),
        0x92 => ("Not_Member_of_Any", 1),
        0x93 => ("Not_Device_Member_of_Any", 1),
        0xA0 => ("&&", 2),
        0xA1 => ("||", 2),
        0xA2 => ("!", 1),
        _ => return None,
    })
}

fn word_operator(w: &str) -> Option<u8> {
    (0x80u8..=0xA2).find(|&op| {
        operator_info(op).is_some_and(|(t, _)| {
            t.eq_ignore_ascii_case(w) && t.as_bytes()[0].is_ascii_alphabetic()
        })
    })
}

/// A parsed conditional expression (postfix token list, without the `artx` prefix and padding).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ConditionalExpression {
    /// Tokens in stored (postfix) order.
    pub tokens: Vec<Token>,
}

fn utf16_string(b: &[u8], off: usize) -> Result<String> {
    if b.len() % 2 != 0 {
        return Err(Error::invalid(
            "conditional string",
            off,
            "odd UTF-16 byte length",
        ));
    }
    let units: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units)
        .map_err(|_| Error::invalid("conditional string", off, "invalid UTF-16"))
}

/// Maximum nesting of composites (binary) and parentheses/composites (SDDL); deeper input is
/// rejected instead of risking stack exhaustion on hostile data.
pub const MAX_DEPTH: usize = 64;

fn parse_tokens(
    b: &[u8],
    start: usize,
    end: usize,
    sids: &mut Vec<Range<usize>>,
    depth: usize,
) -> Result<Vec<Token>> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid(
            "conditional composite",
            start,
            "nested too deeply",
        ));
    }
    let mut pos = start;
    let mut out = Vec::new();
    while pos < end {
        let code = b[pos];
        let len_field = |pos: usize| -> Result<(usize, usize)> {
            let n = read::<U32>(b, pos + 1)
                .filter(|_| pos + 5 <= end)
                .ok_or_else(|| Error::truncated("conditional token length", pos, 5, end))?
                .get() as usize;
            let s = pos + 5;
            let e = s.checked_add(n).filter(|&e| e <= end).ok_or_else(|| {
                Error::truncated("conditional token", pos, n.saturating_add(5), end)
            })?;
            Ok((s, e))
        };
        match code {
            0x00 => pos += 1,
            0x01..=0x04 => {
                if pos + 11 > end {
                    return Err(Error::truncated("integer token", pos, 11, end));
                }
                let value = read::<U64>(b, pos + 1).map_or(0, |v| v.get()) as i64;
                out.push(Token::Int {
                    code,
                    value,
                    sign: b[pos + 9],
                    base: b[pos + 10],
                });
                pos += 11;
            }
            0x10 | 0xF8..=0xFB => {
                let (s, e) = len_field(pos)?;
                let text = utf16_string(&b[s..e], s)?;
                out.push(match code {
                    0x10 => Token::String(text),
                    0xF8 => Token::Attribute(AttributeKind::Local, text),
                    0xF9 => Token::Attribute(AttributeKind::User, text),
                    0xFA => Token::Attribute(AttributeKind::Resource, text),
                    _ => Token::Attribute(AttributeKind::Device, text),
                });
                pos = e;
            }
            0x18 => {
                let (s, e) = len_field(pos)?;
                out.push(Token::Octets(b[s..e].to_vec()));
                pos = e;
            }
            0x50 => {
                let (s, e) = len_field(pos)?;
                out.push(Token::Composite(parse_tokens(b, s, e, sids, depth + 1)?));
                pos = e;
            }
            0x51 => {
                let (s, e) = len_field(pos)?;
                let sid = Sid::from_bytes(&b[s..e]).map_err(|x| x.shifted(s))?;
                if sid.len() != e - s {
                    return Err(Error::invalid(
                        "SID token",
                        pos,
                        format!("length {} but SID is {} bytes", e - s, sid.len()),
                    ));
                }
                sids.push(s..e);
                out.push(Token::Sid(sid));
                pos = e;
            }
            op if operator_info(op).is_some() => {
                out.push(Token::Operator(op));
                pos += 1;
            }
            other => {
                return Err(Error::invalid(
                    "conditional token",
                    pos,
                    format!("unknown token byte {other:#04x}"),
                ))
            }
        }
    }
    Ok(out)
}

fn encode_tokens(tokens: &[Token], out: &mut Vec<u8>) {
    let with_len = |out: &mut Vec<u8>, code: u8, body: &[u8]| {
        out.push(code);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(body);
    };
    let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    for t in tokens {
        match t {
            Token::Int {
                code,
                value,
                sign,
                base,
            } => {
                out.push(*code);
                out.extend_from_slice(&value.to_le_bytes());
                out.push(*sign);
                out.push(*base);
            }
            Token::String(s) => with_len(out, 0x10, &utf16(s)),
            Token::Octets(b) => with_len(out, 0x18, b),
            Token::Composite(items) => {
                let mut inner = Vec::new();
                encode_tokens(items, &mut inner);
                with_len(out, 0x50, &inner);
            }
            Token::Sid(s) => with_len(out, 0x51, &s.to_bytes()),
            Token::Attribute(k, n) => with_len(out, k.code(), &utf16(n)),
            Token::Operator(op) => out.push(*op),
        }
    }
}

impl ConditionalExpression {
    /// Parse application data (must start with `artx`). Error offsets are relative to `data`.
    pub fn parse(data: &[u8]) -> Result<Self> {
        let mut sids = Vec::new();
        Self::parse_with_sids(data, &mut sids)
    }

    fn parse_with_sids(data: &[u8], sids: &mut Vec<Range<usize>>) -> Result<Self> {
        if !data.starts_with(SIGNATURE) {
            return Err(Error::invalid(
                "conditional expression",
                0,
                "missing artx signature",
            ));
        }
        Ok(ConditionalExpression {
            tokens: parse_tokens(data, 4, data.len(), sids, 0)?,
        })
    }

    /// Encode as application data: `artx`, tokens, zero padding to a multiple of 4 bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = SIGNATURE.to_vec();
        encode_tokens(&self.tokens, &mut out);
        while out.len() % 4 != 0 {
            out.push(0);
        }
        out
    }

    /// Render as SDDL infix text (with the outer parentheses). `domain` enables domain-relative
    /// SID aliases (see [`crate::sddl`]).
    pub fn to_sddl(&self, domain: Option<&Sid>) -> Result<String> {
        let mut stack: Vec<String> = Vec::new();
        for t in &self.tokens {
            match t {
                Token::Operator(op) => {
                    let (text, arity) = operator_info(*op).unwrap_or(("?", 0));
                    if arity == 2 {
                        let r = stack.pop();
                        let l = stack.pop();
                        let (Some(l), Some(r)) = (l, r) else {
                            return Err(Error::Unsupported(format!(
                                "operator {text} lacks operands"
                            )));
                        };
                        stack.push(format!("({l} {text} {r})"));
                    } else {
                        let Some(x) = stack.pop() else {
                            return Err(Error::Unsupported(format!(
                                "operator {text} lacks an operand"
                            )));
                        };
                        if *op == 0xA2 {
                            stack.push(format!("(!{x})"));
                        } else {
                            stack.push(format!("({text} {x})"));
                        }
                    }
                }
                other => stack.push(render_operand(other, domain)?),
            }
        }
        if stack.len() != 1 {
            return Err(Error::Unsupported(format!(
                "conditional expression leaves {} values",
                stack.len()
            )));
        }
        let s = stack.pop().unwrap_or_default();
        Ok(if s.starts_with('(') {
            s
        } else {
            format!("({s})")
        })
    }

    /// Parse SDDL infix text (e.g. `(@User.x == "y")`). Character positions in errors are
    /// offset by `base`.
    pub fn from_sddl(text: &str, base: usize, domain: Option<&Sid>) -> Result<Self> {
        let chars: Vec<char> = text.chars().collect();
        let mut p = CondParser {
            c: &chars,
            i: 0,
            base,
            domain,
            out: Vec::new(),
            depth: 0,
        };
        p.expr()?;
        p.ws();
        if p.i != chars.len() {
            return Err(p.err("trailing characters in conditional expression"));
        }
        Ok(ConditionalExpression { tokens: p.out })
    }
}

fn render_operand(t: &Token, domain: Option<&Sid>) -> Result<String> {
    Ok(match t {
        Token::Int {
            value, sign, base, ..
        } => {
            let mag = value.unsigned_abs();
            let digits = match base {
                1 => format!("0{mag:o}"),
                3 => format!("0x{mag:x}"),
                _ => mag.to_string(),
            };
            let s = if *value < 0 {
                "-"
            } else if *sign == 1 {
                "+"
            } else {
                ""
            };
            format!("{s}{digits}")
        }
        Token::String(s) => {
            if s.contains('"') {
                return Err(Error::Unsupported("string literal containing '\"'".into()));
            }
            format!("\"{s}\"")
        }
        Token::Octets(b) => {
            let mut s = String::from("#");
            for x in b {
                s.push_str(&format!("{x:02x}"));
            }
            s
        }
        Token::Composite(items) => {
            let parts: Result<Vec<String>> =
                items.iter().map(|i| render_operand(i, domain)).collect();
            format!("{{{}}}", parts?.join(", "))
        }
        Token::Sid(s) => format!("SID({})", crate::sddl::sid_to_sddl(s, domain)),
        Token::Attribute(k, n) => {
            let mut s = String::from(k.prefix());
            for ch in n.chars() {
                if ch.is_ascii_alphanumeric() || matches!(ch, ':' | '.' | '/' | '_') {
                    s.push(ch);
                } else {
                    for u in ch.encode_utf16(&mut [0u16; 2]) {
                        s.push_str(&format!("%{u:04x}"));
                    }
                }
            }
            s
        }
        Token::Operator(_) => return Err(Error::Unsupported("operator inside a composite".into())),
    })
}

struct CondParser<'a> {
    c: &'a [char],
    i: usize,
    base: usize,
    domain: Option<&'a Sid>,
    out: Vec<Token>,
    depth: usize,
}

impl CondParser<'_> {
    fn err(&self, reason: impl Into<String>) -> Error {
        Error::Syntax {
            position: self.base + self.i,
            reason: reason.into(),
        }
    }
    fn ws(&mut self) {
        while self.c.get(self.i).is_some_and(|c| c.is_whitespace()) {
            self.i += 1;
        }
    }
    fn peek_str(&mut self, s: &str) -> bool {
        self.ws();
        let n = s.chars().count();
        self.c
            .get(self.i..self.i + n)
            .is_some_and(|w| w.iter().copied().eq(s.chars()))
    }
    fn eat(&mut self, s: &str) -> bool {
        if self.peek_str(s) {
            self.i += s.chars().count();
            true
        } else {
            false
        }
    }
    fn word(&mut self) -> String {
        self.ws();
        let st = self.i;
        while self
            .c
            .get(self.i)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '/' | '%'))
        {
            self.i += 1;
        }
        self.c[st..self.i].iter().collect()
    }
    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.err("conditional expression nested too deeply"));
        }
        Ok(())
    }
    fn expr(&mut self) -> Result<()> {
        self.enter()?;
        self.and()?;
        while self.eat("||") {
            self.and()?;
            self.out.push(Token::Operator(0xA1));
        }
        self.depth -= 1;
        Ok(())
    }
    fn and(&mut self) -> Result<()> {
        self.unary()?;
        while self.eat("&&") {
            self.unary()?;
            self.out.push(Token::Operator(0xA0));
        }
        Ok(())
    }
    fn unary(&mut self) -> Result<()> {
        if self.peek_str("!") && !self.peek_str("!=") {
            self.i += 1;
            self.enter()?;
            self.unary()?;
            self.depth -= 1;
            self.out.push(Token::Operator(0xA2));
            return Ok(());
        }
        self.primary()
    }
    fn primary(&mut self) -> Result<()> {
        if self.eat("(") {
            self.expr()?;
            if !self.eat(")") {
                return Err(self.err("expected ')'"));
            }
            return Ok(());
        }
        // Word operators (unary).
        let save = self.i;
        let w = self.word();
        if let Some(op) = word_operator(&w) {
            if operator_info(op).is_some_and(|(_, a)| a == 1) {
                let t = self.operand()?;
                self.out.push(t);
                self.out.push(Token::Operator(op));
                return Ok(());
            }
            return Err(self.err(format!("binary operator {w} without a left operand")));
        }
        self.i = save;
        let lhs = self.operand()?;
        self.out.push(lhs);
        self.ws();
        let ops = [
            ("==", 0x80),
            ("!=", 0x81),
            ("<=", 0x83),
            (">=", 0x85),
            ("<", 0x82),
            (">", 0x84),
        ];
        for (s, op) in ops {
            if self.eat(s) {
                let rhs = self.operand()?;
                self.out.push(rhs);
                self.out.push(Token::Operator(op));
                return Ok(());
            }
        }
        let save = self.i;
        let w = self.word();
        if let Some(op) = word_operator(&w) {
            if operator_info(op).is_some_and(|(_, a)| a == 2) {
                let rhs = self.operand()?;
                self.out.push(rhs);
                self.out.push(Token::Operator(op));
                return Ok(());
            }
        }
        self.i = save;
        Ok(())
    }
    fn operand(&mut self) -> Result<Token> {
        self.ws();
        let Some(&c) = self.c.get(self.i) else {
            return Err(self.err("expected an operand"));
        };
        if c == '{' {
            self.i += 1;
            self.enter()?;
            let mut items = Vec::new();
            if !self.eat("}") {
                loop {
                    items.push(self.operand()?);
                    if self.eat("}") {
                        break;
                    }
                    if !self.eat(",") {
                        return Err(self.err("expected ',' or '}'"));
                    }
                }
            }
            self.depth -= 1;
            return Ok(Token::Composite(items));
        }
        if c == '"' {
            let st = self.i + 1;
            let mut e = st;
            while self.c.get(e).is_some_and(|&c| c != '"') {
                e += 1;
            }
            if e >= self.c.len() {
                return Err(self.err("unterminated string"));
            }
            self.i = e + 1;
            return Ok(Token::String(self.c[st..e].iter().collect()));
        }
        if c == '#' {
            self.i += 1;
            let st = self.i;
            while self.c.get(self.i).is_some_and(|c| c.is_ascii_hexdigit()) {
                self.i += 1;
            }
            let hex: String = self.c[st..self.i].iter().collect();
            if hex.len() % 2 != 0 {
                return Err(self.err("odd number of hex digits in octet string"));
            }
            let bytes = (0..hex.len())
                .step_by(2)
                .map(|k| u8::from_str_radix(&hex[k..k + 2], 16).unwrap_or(0))
                .collect();
            return Ok(Token::Octets(bytes));
        }
        if c.is_ascii_digit()
            || ((c == '-' || c == '+')
                && self.c.get(self.i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let st = self.i;
            let sign = match c {
                '+' => 1,
                '-' => 2,
                _ => 3,
            };
            if sign != 3 {
                self.i += 1;
            }
            let (base, radix) = if self.peek_str("0x") || self.peek_str("0X") {
                self.i += 2;
                (3, 16)
            } else if self.c.get(self.i) == Some(&'0')
                && self.c.get(self.i + 1).is_some_and(|d| d.is_ascii_digit())
            {
                self.i += 1;
                (1, 8)
            } else {
                (2, 10)
            };
            let ds = self.i;
            while self.c.get(self.i).is_some_and(|d| d.is_digit(radix)) {
                self.i += 1;
            }
            let digits: String = self.c[ds..self.i].iter().collect();
            let mag = u64::from_str_radix(&digits, radix).map_err(|_| Error::Syntax {
                position: self.base + st,
                reason: "bad integer".into(),
            })?;
            let value = if sign == 2 {
                (mag as i64).wrapping_neg()
            } else {
                mag as i64
            };
            return Ok(Token::Int {
                code: 0x04,
                value,
                sign,
                base,
            });
        }
        if c == '@' {
            let st = self.i;
            let w = self.word_after_at();
            for kind in [
                AttributeKind::User,
                AttributeKind::Resource,
                AttributeKind::Device,
            ] {
                let p = &kind.prefix()[1..];
                if w.len() > p.len() && w[..p.len()].eq_ignore_ascii_case(p) {
                    return Ok(Token::Attribute(kind, unescape(&w[p.len()..])));
                }
            }
            return Err(Error::Syntax {
                position: self.base + st,
                reason: "unknown attribute prefix".into(),
            });
        }
        let st = self.i;
        let w = self.word();
        if w.eq_ignore_ascii_case("SID") && self.eat("(") {
            let st2 = self.i;
            let mut e = st2;
            while self.c.get(e).is_some_and(|&c| c != ')') {
                e += 1;
            }
            if e >= self.c.len() {
                return Err(Error::Syntax {
                    position: self.base + st,
                    reason: "unterminated SID(".into(),
                });
            }
            let text: String = self.c[st2..e].iter().collect();
            let sid = crate::sddl::sid_from_sddl(text.trim(), self.base + st2, self.domain)?;
            self.i = e + 1;
            return Ok(Token::Sid(sid));
        }
        if w.is_empty() {
            return Err(Error::Syntax {
                position: self.base + st,
                reason: "expected an operand".into(),
            });
        }
        Ok(Token::Attribute(AttributeKind::Local, unescape(&w)))
    }
    fn word_after_at(&mut self) -> String {
        self.i += 1;
        let st = self.i;
        while self
            .c
            .get(self.i)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '.' | '/' | '%'))
        {
            self.i += 1;
        }
        self.c[st..self.i].iter().collect()
    }
}

fn unescape(s: &str) -> String {
    let mut units: Vec<u16> = Vec::new();
    let b: Vec<char> = s.chars().collect();
    let mut i = 0;
    while i < b.len() {
        if b[i] == '%' && i + 5 <= b.len() {
            let hex: String = b[i + 1..i + 5].iter().collect();
            if let Ok(u) = u16::from_str_radix(&hex, 16) {
                units.push(u);
                i += 5;
                continue;
            }
        }
        let mut buf = [0u16; 2];
        units.extend_from_slice(b[i].encode_utf16(&mut buf));
        i += 1;
    }
    String::from_utf16_lossy(&units)
}

/// Byte ranges of the SID literal tokens (the SID bytes, after the length) in `data`.
/// `Ok(empty)` when `data` is not a conditional expression.
pub fn sid_ranges(data: &[u8]) -> Result<Vec<Range<usize>>> {
    if !data.starts_with(SIGNATURE) {
        return Ok(Vec::new());
    }
    let mut sids = Vec::new();
    ConditionalExpression::parse_with_sids(data, &mut sids)?;
    Ok(sids)
}

fn collect_sids_mut<'a>(tokens: &'a mut [Token], out: &mut Vec<&'a mut Sid>) {
    for t in tokens {
        match t {
            Token::Sid(s) => out.push(s),
            Token::Composite(items) => collect_sids_mut(items, out),
            _ => {}
        }
    }
}

/// Map SID literals inside conditional application data. Same-length replacements are patched
/// in place; if any length changes the expression is re-encoded. Non-conditional or malformed
/// data is left alone. Returns the number of replacements.
pub(crate) fn map_sids_in_data(
    data: &mut Vec<u8>,
    f: &mut dyn FnMut(&Sid) -> Option<Sid>,
) -> usize {
    let mut ranges = Vec::new();
    let Ok(mut expr) = ConditionalExpression::parse_with_sids(data, &mut ranges) else {
        return 0;
    };
    let mut sids = Vec::new();
    collect_sids_mut(&mut expr.tokens, &mut sids);
    let mut n = 0;
    let mut reencode = false;
    for (sid, r) in sids.into_iter().zip(ranges) {
        if let Some(new) = f(sid) {
            if new != *sid {
                n += 1;
                if new.len() == r.len() {
                    data[r].copy_from_slice(&new.to_bytes());
                } else {
                    reencode = true;
                }
                *sid = new;
            }
        }
    }
    if reencode {
        *data = expr.encode();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sddl_round_trip() {
        for text in [
            "(@User.Title == \"PM\")",
            "((@User.Title == \"PM\") && ((@User.Division == \"Finance\") || (@User.Division == \" Sales\")))",
            "(Member_of {SID(BA), SID(S-1-5-21-1-2-3-1000)})",
            "(!(Exists @Device.x))",
            "(@Resource.Project Any_of @User.Project)",
            "(x >= -0x10)",
            "(@User.Smart == #00ff)",
        ] {
            let e = ConditionalExpression::from_sddl(text, 0, None).unwrap();
            let bytes = e.encode();
            assert_eq!(bytes.len() % 4, 0);
            let back = ConditionalExpression::parse(&bytes).unwrap();
            assert_eq!(back, e);
            let again = back.to_sddl(None).unwrap();
            assert_eq!(ConditionalExpression::from_sddl(&again, 0, None).unwrap(), e, "{text} -> {again}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let mut data = SIGNATURE.to_vec();
        for k in 0..10_000u32 {
            data.push(0x50);
            data.extend_from_slice(&((10_000 - k - 1) * 5).to_le_bytes());
        }
        assert!(ConditionalExpression::parse(&data).is_err());
        let text = format!("{}x{}", "(".repeat(10_000), ")".repeat(10_000));
        assert!(ConditionalExpression::from_sddl(&text, 0, None).is_err());
        let text = format!(
            "(Member_of {}SID(BA){})",
            "{".repeat(10_000),
            "}".repeat(10_000)
        );
        assert!(ConditionalExpression::from_sddl(&text, 0, None).is_err());
        let text = format!("({}(x == 1))", "!".repeat(10_000));
        assert!(ConditionalExpression::from_sddl(&text, 0, None).is_err());
    }

    #[test]
    fn sid_positions_in_tokens() {
        let e = ConditionalExpression::from_sddl(
            "(Member_of {SID(S-1-5-21-1-2-3-1000), SID(WD)})",
            0,
            None,
        )
        .unwrap();
        let b = e.encode();
        let r = sid_ranges(&b).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(
            Sid::from_bytes(&b[r[0].clone()]).unwrap().to_string(),
            "S-1-5-21-1-2-3-1000"
        );
    }
}
