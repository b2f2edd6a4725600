//! Account-domain SID mapping for `reseal generalize`.
//!
//! A [`SidMap`] maps the old account domain `S-1-5-21-X-Y-Z` and every account SID
//! `S-1-5-21-X-Y-Z-RID` under it to the new domain with the same RID. Only SIDs with exactly
//! 4 (the domain) or 5 (an account) sub-authorities are in the domain; this holds for all forms:
//!
//! * **binary** (same length, patched in place, any alignment): the full 12-byte header
//!   `01 0N 00 00 00 00 00 05 15 00 00 00` (N = 4 or 5) must precede the 12 bytes of X,Y,Z, and
//!   for N = 5 the RID must fit in the buffer;
//! * **strings** (ASCII and UTF-16LE, `S`/`s` either case; may change length): `S-1-5-21-X-Y-Z`
//!   must not be preceded by an ASCII digit or `-` (anything else may precede it: `%5C` in
//!   URL-encoded MrtCache key names, `\??\`, `{`, `_`, a letter), must not be followed by another digit
//!   (so `…-Z1` is a different domain), and may be followed by `-RID`; after the RID another
//!   `-<digit>` means a longer SID, which is not mapped. Anything else after the SID
//!   (`_Classes`, `.bak`, `\`, `-MergedResources`, end of buffer) still matches. Only the
//!   `X-Y-Z` digits are rewritten, so the case of `S` and everything else is kept.

use crate::error::{Error, Result};
use crate::sid::Sid;
use memchr::memmem;

/// Maps one account domain to another, keeping RIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SidMap {
    old_domain: Sid,
    new_domain: Sid,
    old_xyz: [u8; 12],
    new_xyz: [u8; 12],
    old_text: String,
    new_text: String,
    find: Finders,
}

/// Substring searchers for the old domain's `X,Y,Z` part, built once per map.
#[derive(Debug, Clone)]
struct Finders {
    binary: memmem::Finder<'static>,
    ascii: memmem::Finder<'static>,
    utf16: memmem::Finder<'static>,
}

impl Finders {
    fn new(xyz: &[u8], text: &str) -> Self {
        let utf16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
        Finders {
            binary: memmem::Finder::new(xyz).into_owned(),
            ascii: memmem::Finder::new(text.as_bytes()).into_owned(),
            utf16: memmem::Finder::new(&utf16).into_owned(),
        }
    }
}

/// Built from the other fields, so equal maps have equal finders.
impl PartialEq for Finders {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Finders {}

fn xyz(s: &Sid) -> [u8; 12] {
    let mut out = [0u8; 12];
    for (i, v) in s.sub_authorities()[1..4].iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&v.to_le_bytes());
    }
    out
}

fn xyz_text(s: &Sid) -> String {
    let a = s.sub_authorities();
    format!("{}-{}-{}", a[1], a[2], a[3])
}

const HEADER_PREFIX: [u8; 12] = [1, 0, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0];

impl SidMap {
    /// Both SIDs must be account-domain SIDs `S-1-5-21-x-y-z`.
    pub fn new(old_domain: Sid, new_domain: Sid) -> Result<Self> {
        for (what, s) in [("old", &old_domain), ("new", &new_domain)] {
            if !s.is_account_domain() {
                return Err(Error::Unsupported(format!(
                    "{what} domain {s} is not of the form S-1-5-21-x-y-z"
                )));
            }
        }
        Ok(SidMap {
            old_xyz: xyz(&old_domain),
            new_xyz: xyz(&new_domain),
            old_text: xyz_text(&old_domain),
            new_text: xyz_text(&new_domain),
            find: Finders::new(&xyz(&old_domain), &xyz_text(&old_domain)),
            old_domain,
            new_domain,
        })
    }

    /// The old domain.
    pub fn old_domain(&self) -> &Sid {
        &self.old_domain
    }

    /// The new domain.
    pub fn new_domain(&self) -> &Sid {
        &self.new_domain
    }

    /// The mapped SID when `sid` is the old domain or an account in it; `None` otherwise.
    pub fn map_sid(&self, sid: &Sid) -> Option<Sid> {
        if *sid == self.old_domain {
            return Some(self.new_domain.clone());
        }
        if sid.domain().as_ref() == Some(&self.old_domain) {
            return self.new_domain.with_rid(sid.rid()?).ok();
        }
        None
    }

    /// Whether `buf` may hold the old domain in any form (binary, ASCII or UTF-16LE text): a
    /// fast test (substring search for the `X,Y,Z` part) that the exact scans build on, so data
    /// without the domain costs one pass.
    pub fn may_contain(&self, buf: &[u8]) -> bool {
        self.find.binary.find(buf).is_some() || self.may_contain_text(buf)
    }

    fn may_contain_text(&self, buf: &[u8]) -> bool {
        self.find.ascii.find(buf).is_some() || self.find.utf16.find(buf).is_some()
    }

    /// Offsets of binary SIDs of the old domain in `buf` (start of the SID header).
    pub fn binary_positions(&self, buf: &[u8]) -> Vec<usize> {
        let mut out = Vec::new();
        let mut from = 12;
        // Every match has X,Y,Z 12 bytes after its start: find those, then check the header.
        while from < buf.len() {
            let Some(k) = self.find.binary.find(&buf[from..]) else {
                break;
            };
            let i = from + k - 12;
            if buf[i] == 1
                && matches!(buf[i + 1], 4 | 5)
                && buf[i + 2..i + 12] == HEADER_PREFIX[2..12]
                && (buf[i + 1] == 4 || i + 28 <= buf.len())
            {
                out.push(i);
            }
            from += k + 1;
        }
        out
    }

    /// Rewrite binary SIDs of the old domain in place (length never changes). Returns the
    /// number of SIDs rewritten.
    pub fn replace_binary(&self, buf: &mut [u8]) -> usize {
        let pos = self.binary_positions(buf);
        for &p in &pos {
            buf[p + 12..p + 24].copy_from_slice(&self.new_xyz);
        }
        pos.len()
    }

    /// Find a string SID of the old domain starting at byte `i` with the given code-unit width
    /// (1 = ASCII, 2 = UTF-16LE). Returns the byte range of the `X-Y-Z` digits.
    fn text_match(&self, b: &[u8], i: usize, w: usize) -> Option<std::ops::Range<usize>> {
        let unit = |k: usize| -> Option<u16> {
            let at = i.checked_add(k.checked_mul(w)?)?;
            if w == 1 {
                b.get(at).map(|&x| u16::from(x))
            } else {
                let s = b.get(at..at + 2)?;
                Some(u16::from_le_bytes([s[0], s[1]]))
            }
        };
        let is_digit =
            |u: Option<u16>| u.is_some_and(|u| (u16::from(b'0')..=u16::from(b'9')).contains(&u));
        let first = unit(0)?;
        if first != u16::from(b'S') && first != u16::from(b's') {
            return None;
        }
        // Leading boundary.
        if i >= w {
            let prev = if w == 1 {
                u16::from(b[i - 1])
            } else {
                u16::from_le_bytes([b[i - 2], b[i - 1]])
            };
            // Only a digit or `-` before `S` would make this the tail of something longer
            // (`…1-S-1-…` is no SID form); letters, `%5C`, `\??\`, `{`, `_` are real prefixes.
            if prev < 0x80 && (prev as u8 == b'-' || (prev as u8).is_ascii_digit()) {
                return None;
            }
        }
        let pattern = "-1-5-21-";
        for (k, c) in pattern.bytes().enumerate() {
            if unit(k + 1)? != u16::from(c) {
                return None;
            }
        }
        let start_unit = 1 + pattern.len();
        for (k, c) in self.old_text.bytes().enumerate() {
            if unit(start_unit + k)? != u16::from(c) {
                return None;
            }
        }
        let end_unit = start_unit + self.old_text.len();
        let mut k = end_unit;
        if is_digit(unit(k)) {
            return None;
        }
        if unit(k) == Some(u16::from(b'-')) && is_digit(unit(k + 1)) {
            k += 1;
            while is_digit(unit(k)) {
                k += 1;
            }
            if unit(k) == Some(u16::from(b'-')) && is_digit(unit(k + 1)) {
                return None;
            }
        }
        Some(i + start_unit * w..i + end_unit * w)
    }

    /// Replace string SIDs of the old domain in `buf`, both ASCII and UTF-16LE (at either byte
    /// parity). Returns the new buffer and the number of replacements. Length may change.
    pub fn replace_text(&self, buf: &[u8]) -> (Vec<u8>, usize) {
        if !self.may_contain_text(buf) {
            return (buf.to_vec(), 0);
        }
        let new16: Vec<u8> = self
            .new_text
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        let mut out = Vec::with_capacity(buf.len());
        let mut n = 0;
        let mut i = 0;
        let mut copied = 0;
        while i < buf.len() {
            if buf[i] == b'S' || buf[i] == b's' {
                let hit = self
                    .text_match(buf, i, 1)
                    .map(|r| (r, 1))
                    .or_else(|| self.text_match(buf, i, 2).map(|r| (r, 2)));
                if let Some((r, w)) = hit {
                    out.extend_from_slice(&buf[copied..r.start]);
                    out.extend_from_slice(if w == 1 {
                        self.new_text.as_bytes()
                    } else {
                        &new16
                    });
                    copied = r.end;
                    i = r.end;
                    n += 1;
                    continue;
                }
            }
            i += 1;
        }
        out.extend_from_slice(&buf[copied..]);
        (out, n)
    }

    /// Replace string SIDs of the old domain in a Rust string (key names, value strings).
    pub fn replace_str(&self, s: &str) -> (String, usize) {
        if self.find.ascii.find(s.as_bytes()).is_none() {
            return (s.to_string(), 0);
        }
        let mut out = String::with_capacity(s.len());
        let b = s.as_bytes();
        let mut n = 0;
        let mut copied = 0;
        let mut i = 0;
        while i < b.len() {
            if let Some(r) = (b[i] == b'S' || b[i] == b's')
                .then(|| self.text_match(b, i, 1))
                .flatten()
            {
                out.push_str(&s[copied..r.start]);
                out.push_str(&self.new_text);
                copied = r.end;
                i = r.end;
                n += 1;
                continue;
            }
            i += 1;
        }
        out.push_str(&s[copied..]);
        (out, n)
    }

    /// Rewrite, in place, every SID of the old domain inside the self-relative descriptor
    /// `sd_bytes` (at the positions [`crate::sid_positions`] reports: owner, group, ACE
    /// trustees, conditional-expression SID literals, resource-attribute SID values). Domain
    /// and account SIDs keep their length, so nothing else moves. Returns the number of SIDs
    /// rewritten; fails (writing nothing) when the descriptor does not parse.
    pub fn rewrite_descriptor_bytes(&self, sd_bytes: &mut [u8]) -> Result<usize> {
        let positions = crate::sid_positions(sd_bytes)?;
        let mut n = 0;
        for r in positions {
            let Ok(sid) = Sid::from_bytes(&sd_bytes[r.clone()]) else {
                continue;
            };
            if let Some(new) = self.map_sid(&sid) {
                let b = new.to_bytes();
                if b.len() == r.len() {
                    sd_bytes[r].copy_from_slice(&b);
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Map every SID of a descriptor (see [`crate::SecurityDescriptor::map_sids`]).
    pub fn map_descriptor(&self, sd: &mut crate::SecurityDescriptor) -> usize {
        sd.map_sids(|s| self.map_sid(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map() -> SidMap {
        SidMap::new(
            "S-1-5-21-111-222-333".parse().unwrap(),
            "S-1-5-21-4044444444-55-6".parse().unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn sids() {
        let m = map();
        assert_eq!(
            m.map_sid(&"S-1-5-21-111-222-333-1000".parse().unwrap())
                .unwrap()
                .to_string(),
            "S-1-5-21-4044444444-55-6-1000"
        );
        assert_eq!(
            m.map_sid(&"S-1-5-21-111-222-333".parse().unwrap())
                .unwrap()
                .to_string(),
            "S-1-5-21-4044444444-55-6"
        );
        assert!(m
            .map_sid(&"S-1-5-21-111-222-3333-1000".parse().unwrap())
            .is_none());
        assert!(m.map_sid(&"S-1-5-32-544".parse().unwrap()).is_none());
    }

    #[test]
    fn text_boundaries() {
        let m = map();
        let cases = [
            (
                "S-1-5-21-111-222-333-1000",
                "S-1-5-21-4044444444-55-6-1000",
                1,
            ),
            (
                "s-1-5-21-111-222-333_Classes",
                "s-1-5-21-4044444444-55-6_Classes",
                1,
            ),
            (
                "x\\S-1-5-21-111-222-333-500.bak\\y",
                "x\\S-1-5-21-4044444444-55-6-500.bak\\y",
                1,
            ),
            (
                "S-1-5-21-111-222-3334-1000",
                "S-1-5-21-111-222-3334-1000",
                0,
            ),
            (
                "S-1-5-21-111-222-333-1000-5",
                "S-1-5-21-111-222-333-1000-5",
                0,
            ),
            ("AS-1-5-21-111-222-333", "AS-1-5-21-4044444444-55-6", 1),
            ("1S-1-5-21-111-222-333", "1S-1-5-21-111-222-333", 0),
            ("-S-1-5-21-111-222-333-500", "-S-1-5-21-111-222-333-500", 0),
            ("S-1-5-21-111-222-333-", "S-1-5-21-4044444444-55-6-", 1),
            (
                "S-1-5-21-111-222-333-1001-MergedResources-0.pri",
                "S-1-5-21-4044444444-55-6-1001-MergedResources-0.pri",
                1,
            ),
            ("S-1-5-21-1111-222-333", "S-1-5-21-1111-222-333", 0),
            (
                "S-1-5-21-111-222-333\\S-1-5-21-111-222-333-1",
                "S-1-5-21-4044444444-55-6\\S-1-5-21-4044444444-55-6-1",
                2,
            ),
        ];
        for (a, b, n) in cases {
            assert_eq!(m.replace_str(a), (b.to_string(), n), "{a}");
            let (out, k) = m.replace_text(a.as_bytes());
            assert_eq!((String::from_utf8(out).unwrap(), k), (b.to_string(), n));
            let u16in: Vec<u8> = a.encode_utf16().flat_map(u16::to_le_bytes).collect();
            let u16out: Vec<u8> = b.encode_utf16().flat_map(u16::to_le_bytes).collect();
            assert_eq!(m.replace_text(&u16in), (u16out.clone(), n));
            // odd alignment
            let mut odd = vec![0xAA];
            odd.extend_from_slice(&u16in);
            let mut odd_out = vec![0xAA];
            odd_out.extend_from_slice(&u16out);
            assert_eq!(m.replace_text(&odd), (odd_out, n));
        }
    }

    /// The forms real hives and files hold (issue 15): URL-encoded MrtCache key names in
    /// UsrClass.dat, NT object paths, braces, underscores, the `_Classes` root.
    #[test]
    fn real_forms() {
        let m = map();
        let cases = [
            (
                r"C:%5CProgram Files%5CWindowsApps%5CMicrosoft.Windows.Photos_2019.19071.12548.0_x64__8wekyb3d8bbwe%5Cmicrosoft.system.package.metadata%5CS-1-5-21-111-222-333-1001-MergedResources-1.pri",
                r"C:%5CProgram Files%5CWindowsApps%5CMicrosoft.Windows.Photos_2019.19071.12548.0_x64__8wekyb3d8bbwe%5Cmicrosoft.system.package.metadata%5CS-1-5-21-4044444444-55-6-1001-MergedResources-1.pri",
            ),
            (
                r"\??\S-1-5-21-111-222-333-1001\Software",
                r"\??\S-1-5-21-4044444444-55-6-1001\Software",
            ),
            (
                "{S-1-5-21-111-222-333-500}",
                "{S-1-5-21-4044444444-55-6-500}",
            ),
            (
                "Task_S-1-5-21-111-222-333-1001",
                "Task_S-1-5-21-4044444444-55-6-1001",
            ),
            (
                "S-1-5-21-111-222-333-1001_Classes",
                "S-1-5-21-4044444444-55-6-1001_Classes",
            ),
            (
                "O:S-1-5-21-111-222-333-500G:S-1-5-21-111-222-333-513",
                "O:S-1-5-21-4044444444-55-6-500G:S-1-5-21-4044444444-55-6-513",
            ),
        ];
        for (a, b) in cases {
            let n = 1 + usize::from(a.contains("G:S"));
            assert_eq!(m.replace_str(a), (b.to_string(), n), "{a}");
            let u16in: Vec<u8> = a.encode_utf16().flat_map(u16::to_le_bytes).collect();
            let u16out: Vec<u8> = b.encode_utf16().flat_map(u16::to_le_bytes).collect();
            assert_eq!(m.replace_text(&u16in), (u16out, n), "{a}");
        }
    }

    #[test]
    fn binary() {
        let m = map();
        let old: Sid = "S-1-5-21-111-222-333-1000".parse().unwrap();
        let mut buf = vec![0xEE; 3];
        buf.extend(old.to_bytes());
        buf.extend(m.old_domain().to_bytes());
        // header-less occurrence of X,Y,Z must not match
        buf.extend(&m.old_xyz);
        let n = m.replace_binary(&mut buf);
        assert_eq!(n, 2);
        assert_eq!(
            Sid::from_bytes(&buf[3..]).unwrap().to_string(),
            "S-1-5-21-4044444444-55-6-1000"
        );
        assert_eq!(&buf[buf.len() - 12..], &m.old_xyz);
        // truncated account SID at the end: no match
        let mut t = old.to_bytes();
        t.truncate(26);
        assert_eq!(m.replace_binary(&mut t), 0);
    }

    #[test]
    fn descriptor_bytes_in_place() {
        let m = map();
        let sd = crate::SecurityDescriptor::from_sddl(
            "O:S-1-5-21-111-222-333-1000G:S-1-5-21-111-222-333-513D:(A;;FA;;;S-1-5-21-111-222-333-1000)\
             (XA;;FX;;;WD;(Member_of {SID(S-1-5-21-111-222-333-1001), SID(BA)}))\
             S:(RA;;;;;WD;(\"x\",TD,0x0,SID(S-1-5-21-111-222-333-1002)))",
        )
        .unwrap();
        let mut bytes = sd.to_bytes().unwrap();
        let before = bytes.clone();
        assert_eq!(m.rewrite_descriptor_bytes(&mut bytes).unwrap(), 5);
        assert_eq!(bytes.len(), before.len());
        let mut expect = sd.clone();
        assert_eq!(m.map_descriptor(&mut expect), 5);
        assert_eq!(expect.to_bytes().unwrap(), bytes);
        assert!(!expect.to_sddl().unwrap().contains("111-222-333"));
        // the generic binary scan finds the same SIDs
        let mut scan = before.clone();
        assert_eq!(m.replace_binary(&mut scan), 5);
        assert_eq!(scan, bytes);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]
        #[test]
        fn prop_rid_boundaries(rid in any::<u32>(), suffix in "[-_.\\\\a-zA-Z0-9]{0,6}", prefix in "[- _\\\\/.a-zA-Z0-9%{?]{0,4}") {
            let m = map();
            let text = format!("{prefix}S-1-5-21-111-222-333-{rid}{suffix}");
            let (out, n) = m.replace_str(&text);
            // Only a digit or `-` right before `S` makes it part of something longer.
            let prefix_blocks = prefix.chars().last().is_some_and(|c| c.is_ascii_digit() || c == '-');
            // Digits right after the RID just extend it; "-<digit>" after the RID makes a
            // longer SID, which is not in the domain.
            let rest = suffix.trim_start_matches(|c: char| c.is_ascii_digit());
            let suffix_blocks = rest.starts_with('-') && rest[1..].starts_with(|c: char| c.is_ascii_digit());
            if prefix_blocks || suffix_blocks {
                prop_assert_eq!(n, 0);
                prop_assert_eq!(out, text);
            } else {
                prop_assert_eq!(n, 1);
                prop_assert_eq!(out, format!("{prefix}S-1-5-21-4044444444-55-6-{rid}{suffix}"));
                // mapping back restores the original
                let back = SidMap::new(m.new_domain().clone(), m.old_domain().clone()).unwrap();
                prop_assert_eq!(back.replace_str(&format!("{prefix}S-1-5-21-4044444444-55-6-{rid}{suffix}")).0, text);
            }
        }

        #[test]
        fn prop_binary_positions_match_a_plain_scan(
            parts in proptest::collection::vec((0usize..3, proptest::collection::vec(any::<u8>(), 0..12), any::<u32>()), 0..8),
        ) {
            // Pieces of SIDs (domain, account, header-only) between noise, checked against the
            // definition tried at every offset.
            let m = map();
            let mut buf = Vec::new();
            for (kind, noise, rid) in parts {
                buf.extend(&noise);
                match kind {
                    0 => buf.extend(m.old_domain().to_bytes()),
                    1 => buf.extend(m.old_domain().with_rid(rid).unwrap().to_bytes()),
                    _ => buf.extend(&m.old_domain().to_bytes()[..12]),
                }
            }
            let plain: Vec<usize> = (0..buf.len())
                .filter(|&i| {
                    i + 24 <= buf.len()
                        && buf[i] == 1
                        && matches!(buf[i + 1], 4 | 5)
                        && buf[i + 2..i + 12] == HEADER_PREFIX[2..12]
                        && buf[i + 12..i + 24] == m.old_xyz
                        && (buf[i + 1] == 4 || i + 28 <= buf.len())
                })
                .collect();
            prop_assert_eq!(m.binary_positions(&buf), plain.clone());
            if !plain.is_empty() {
                prop_assert!(m.may_contain(&buf));
            }
        }

        #[test]
        fn prop_binary_any_alignment(pad in 0usize..7, rid in any::<u32>(), noise in proptest::collection::vec(any::<u8>(), 0..40)) {
            let m = map();
            let sid = m.old_domain().with_rid(rid).unwrap();
            let mut buf = vec![0u8; pad];
            buf.extend(sid.to_bytes());
            buf.extend(&noise);
            let n = m.replace_binary(&mut buf);
            prop_assert!(n >= 1);
            prop_assert_eq!(Sid::from_bytes(&buf[pad..]).unwrap(), m.new_domain().with_rid(rid).unwrap());
        }

        #[test]
        fn prop_text_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let m = map();
            let (_o, _n) = m.replace_text(&bytes);
            let mut b = bytes.clone();
            m.replace_binary(&mut b);
        }
    }
}
