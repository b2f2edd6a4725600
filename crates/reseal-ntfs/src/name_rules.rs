//! Which new names are refused: names NTFS stores but Windows cannot open through the Win32
//! API. Lookups of existing names never apply these rules (a volume written by ntfs-3g or Linux
//! may hold any of them); only names the engine creates (new files and directories, rename
//! targets) are checked.

use std::fmt;

/// The rule a refused name breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NameRule {
    /// The empty name.
    Empty,
    /// `.` or `..`.
    DotOrDotDot,
    /// More than 255 UTF-16 code units (the `$FILE_NAME` length is one byte).
    TooLong,
    /// A control character (below U+0020); the character.
    ControlCharacter(char),
    /// One of `"` `*` `/` `:` `<` `>` `?` `\` `|`; the character.
    ReservedCharacter(char),
    /// Ends with a dot (Win32 strips it, so the file could not be opened by its name).
    TrailingDot,
    /// Ends with a space (likewise stripped).
    TrailingSpace,
    /// A DOS device name (CON, PRN, AUX, NUL, COM1-9, LPT1-9, COM¹²³, LPT¹²³), in any case,
    /// alone or before an extension; the device.
    ReservedDeviceName(&'static str),
}

impl fmt::Display for NameRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameRule::Empty => write!(f, "a name must not be empty"),
            NameRule::DotOrDotDot => write!(f, "`.` and `..` are not names"),
            NameRule::TooLong => write!(f, "longer than 255 UTF-16 code units"),
            NameRule::ControlCharacter(c) => {
                write!(
                    f,
                    "control character U+{:04X} is not allowed",
                    u32::from(*c)
                )
            }
            NameRule::ReservedCharacter(c) => {
                write!(f, "character {c:?} is not allowed in Windows names")
            }
            NameRule::TrailingDot => write!(f, "Windows names must not end with a dot"),
            NameRule::TrailingSpace => write!(f, "Windows names must not end with a space"),
            NameRule::ReservedDeviceName(d) => {
                write!(f, "{d} is a reserved device name (also with an extension)")
            }
        }
    }
}

const DEVICES: [&str; 28] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9", "COM¹", "COM²",
    "COM³", "LPT¹", "LPT²", "LPT³",
];

/// Check a new name (one path component). Returns the first rule it breaks.
pub fn check(name: &str) -> Result<(), NameRule> {
    if name.is_empty() {
        return Err(NameRule::Empty);
    }
    if name == "." || name == ".." {
        return Err(NameRule::DotOrDotDot);
    }
    if name.encode_utf16().count() > 255 {
        return Err(NameRule::TooLong);
    }
    if let Some(c) = name.chars().find(|c| u32::from(*c) < 0x20) {
        return Err(NameRule::ControlCharacter(c));
    }
    if let Some(c) = name.chars().find(|c| "\"*/:<>?\\|".contains(*c)) {
        return Err(NameRule::ReservedCharacter(c));
    }
    if name.ends_with('.') {
        return Err(NameRule::TrailingDot);
    }
    if name.ends_with(' ') {
        return Err(NameRule::TrailingSpace);
    }
    // The device part: up to the first dot, with the spaces before that dot ignored
    // ("NUL .txt" opens the device too).
    let stem = name.split('.').next().unwrap_or(name).trim_end_matches(' ');
    if let Some(d) = DEVICES.iter().find(|d| eq_ignore_case(stem, d)) {
        return Err(NameRule::ReservedDeviceName(d));
    }
    Ok(())
}

fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars().count() == b.chars().count()
        && a.chars()
            .zip(b.chars())
            .all(|(x, y)| x.to_ascii_uppercase() == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted() {
        for n in [
            "a",
            "file.txt",
            ".hidden",
            "CONSOLE",
            "con1",
            "COM10",
            "LPT0x",
            "NULL.txt",
            "a b",
            "ünï 日本語",
            "x.y.z",
            "COM⁴",
            "~$tmp",
        ] {
            assert_eq!(check(n), Ok(()), "{n}");
        }
        assert_eq!(check(&"é".repeat(255)), Ok(()));
    }

    #[test]
    fn refused_with_the_rule() {
        use NameRule::*;
        for (n, rule) in [
            ("", Empty),
            (".", DotOrDotDot),
            ("..", DotOrDotDot),
            ("a\u{1}b", ControlCharacter('\u{1}')),
            ("tab\there", ControlCharacter('\t')),
            ("a:b", ReservedCharacter(':')),
            ("a*b", ReservedCharacter('*')),
            ("a?b", ReservedCharacter('?')),
            ("a\"b", ReservedCharacter('"')),
            ("a<b", ReservedCharacter('<')),
            ("a>b", ReservedCharacter('>')),
            ("a|b", ReservedCharacter('|')),
            ("a/b", ReservedCharacter('/')),
            ("a\\b", ReservedCharacter('\\')),
            ("name.", TrailingDot),
            ("name ", TrailingSpace),
            ("CON", ReservedDeviceName("CON")),
            ("con", ReservedDeviceName("CON")),
            ("Nul.txt", ReservedDeviceName("NUL")),
            ("aux.tar.gz", ReservedDeviceName("AUX")),
            ("PRN .log", ReservedDeviceName("PRN")),
            ("com7", ReservedDeviceName("COM7")),
            ("LPT9.x", ReservedDeviceName("LPT9")),
            ("com²", ReservedDeviceName("COM²")),
            ("LPT³.txt", ReservedDeviceName("LPT³")),
        ] {
            assert_eq!(check(n), Err(rule), "{n:?}");
        }
        assert_eq!(check(&"x".repeat(256)), Err(TooLong));
        // 128 characters outside the BMP are 256 UTF-16 units.
        assert_eq!(check(&"😀".repeat(128)), Err(TooLong));
    }
}
