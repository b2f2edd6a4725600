//! Helpers shared by the CLI's end-to-end tests: run the `reseal` binary built for this test.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::process::{Command, Output};

/// Run `reseal` with `args`.
pub fn reseal(args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_reseal"))
        .args(args)
        .output()
        .expect("run reseal")
}

/// Run `reseal` and return its standard output; panic with its standard error on failure.
pub fn ok(args: &[&OsStr]) -> Vec<u8> {
    let o = reseal(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o.stdout
}

/// [`ok`] as text.
pub fn ok_text(args: &[&OsStr]) -> String {
    String::from_utf8(ok(args)).expect("UTF-8 output")
}

/// `.reg` text as regedit writes it: UTF-16LE with a BOM.
pub fn utf16_reg(text: &str) -> Vec<u8> {
    let mut b = vec![0xFF, 0xFE];
    for u in text.encode_utf16() {
        b.extend_from_slice(&u.to_le_bytes());
    }
    b
}

/// `a!("x", y)` → `&[&OsStr]` for [`reseal`] and [`ok`].
#[macro_export]
macro_rules! a {
    ($($x:expr),*) => { &[$(std::ffi::OsStr::new($x)),*] };
}
