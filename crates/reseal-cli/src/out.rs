//! Standard output, exit codes and error presentation for every command.
//!
//! Every line a command prints goes through [`outln!`]/[`out!`] (or through a writer whose error
//! reaches `main`), so a reader that closes the pipe early (`reseal inspect IMG | head -1`) ends
//! the program quietly with status 0, the convention of Rust command-line tools such as ripgrep,
//! instead of the panic `println!` gives.
//!
//! Exit codes: 0 success, 1 error, 2 usage (clap), 3 refused (an unsafe state that a `--force…`
//! option overrides), 4 `reseal check` found problems. [`exit_code`] is the one place that decides.

use std::io::Write;

/// Exit code of `reseal check` when it found errors or leaks (qemu-img check uses 2 and 3,
/// which reseal already gives to usage errors and refusals).
pub const EXIT_PROBLEMS: i32 = 4;

/// Exit code of a refusal (an unsafe state a `--force…` option overrides).
pub const EXIT_REFUSED: i32 = 3;

/// Text for `--help`: the exit codes.
pub const EXIT_HELP: &str = "Exit status: 0 success (also when the reader of standard output \
closes it early), 1 error, 2 usage error, 3 refused: the image is in a state that is unsafe to \
write (hibernated, dirty, BitLocker, domain-joined, ...) and a --force... option would override \
it, 4 `reseal check` found problems (errors or leaks) in the image. With --json, errors are printed on standard output as {\"error\": {\"code\", \"message\"}}.";

/// Bytes a [`buffered`] scope collects before it writes them out.
const BUFFER_BYTES: usize = 64 << 10;

std::thread_local! {
    /// The open [`buffered`] scope's text not yet written, if a scope is open.
    static BUFFER: std::cell::RefCell<Option<Vec<u8>>> = const { std::cell::RefCell::new(None) };
}

/// Runs `f` with standard output collected in 64 KiB blocks instead of written line by line
/// (standard output is line-buffered, so a report of 100k changes was 100k `write` calls).
/// Everything `f` printed is written before this returns.
pub fn buffered<R>(f: impl FnOnce() -> R) -> R {
    let outer = BUFFER.with(|b| b.borrow_mut().replace(Vec::with_capacity(BUFFER_BYTES)));
    let r = f();
    let text = BUFFER.with(|b| std::mem::replace(&mut *b.borrow_mut(), outer));
    if let Some(text) = text {
        write_all(&text);
    }
    r
}

fn write_all(bytes: &[u8]) {
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    if let Err(e) = lock.write_all(bytes).and_then(|()| lock.flush()) {
        write_failed(&e)
    }
}

/// Prints formatted text on standard output; a closed pipe ends the program quietly.
pub fn print(args: std::fmt::Arguments) {
    // Some(full block) when a [`buffered`] scope is open, None when there is none.
    let in_scope = BUFFER.with(|b| {
        let mut b = b.borrow_mut();
        let buf = b.as_mut()?;
        // Writing into a Vec cannot fail.
        let _ = buf.write_fmt(args);
        Some(
            (buf.len() >= BUFFER_BYTES)
                .then(|| std::mem::replace(buf, Vec::with_capacity(BUFFER_BYTES))),
        )
    });
    match in_scope {
        Some(Some(block)) => write_all(&block),
        Some(None) => {}
        None => {
            let stdout = std::io::stdout();
            let mut lock = stdout.lock();
            if let Err(e) = lock.write_fmt(args) {
                write_failed(&e)
            }
        }
    }
}

/// Ends the program after a failed write to standard output: quietly with 0 on a broken pipe.
pub fn write_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0)
    }
    eprintln!("reseal: error: writing to standard output: {e}");
    std::process::exit(1)
}

/// `println!` that ends the program quietly when standard output is closed.
#[macro_export]
macro_rules! outln {
    () => { $crate::out::print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::out::print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// `print!` that ends the program quietly when standard output is closed.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => { $crate::out::print(format_args!($($arg)*)) };
}

/// A refusal decided in the CLI itself (a volume state a `--force` overrides).
#[derive(Debug)]
pub struct Refused(pub String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "refusing to write: {}", self.0)
    }
}

impl std::error::Error for Refused {}

/// Whether the error is a write to a closed pipe.
pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The process exit code for an error: 3 for a refusal, 1 otherwise.
pub fn exit_code(e: &anyhow::Error) -> i32 {
    if code(e) == "refused" {
        EXIT_REFUSED
    } else {
        1
    }
}

/// A stable snake_case code for the error (`refused`, `locked`, `io`, `unknown_user`,
/// `user_exists`, `wrong_boot_key`, `error`).
pub fn code(e: &anyhow::Error) -> &'static str {
    for c in e.chain() {
        if c.downcast_ref::<Refused>().is_some() {
            return "refused";
        }
        match c.downcast_ref::<reseal_windows::Error>() {
            Some(reseal_windows::Error::UnknownUser { .. }) => return "unknown_user",
            Some(reseal_windows::Error::UserExists { .. }) => return "user_exists",
            Some(reseal_windows::Error::WrongBootKey { .. }) => return "wrong_boot_key",
            _ => {}
        }
        if let Some(reseal_windows::Error::Refused(r)) = c.downcast_ref::<reseal_windows::Error>() {
            // Exit 3 only for unsafe states a `--force…` option overrides; "no install",
            // "choose a partition" and the like are plain errors.
            if r.override_flag().is_some_and(|f| f.starts_with("--force")) {
                return "refused";
            }
            return "error";
        }
        match c.downcast_ref::<reseal_disk::Error>() {
            // A protected golden image: `--force-write-protected` overrides.
            Some(reseal_disk::Error::WriteProtected { .. }) => return "refused",
            // Another process has the image: not an unsafe state of the image itself.
            Some(reseal_disk::Error::Locked { .. }) => return "locked",
            _ => {}
        }
    }
    if e.chain()
        .any(|c| c.downcast_ref::<std::io::Error>().is_some())
    {
        return "io";
    }
    "error"
}

/// The error chain as one line, each cause once: a cause whose text a wrapper already printed
/// (`X: X`) is not repeated.
pub fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for c in e.chain() {
        let part = c.to_string();
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Reports a failed command (text on standard error, or JSON on standard output) and exits.
pub fn fail(e: &anyhow::Error, json: bool) -> ! {
    if is_broken_pipe(e) {
        std::process::exit(0)
    }
    let status = exit_code(e);
    if json {
        let mut doc = serde_json::json!({
            "schema_version": 1,
            "error": {"code": code(e), "message": message(e), "exit_code": status},
        });
        // A refusal of the library also says which one and the option that overrides it.
        if let Some(r) = e
            .chain()
            .find_map(|c| match c.downcast_ref::<reseal_windows::Error>() {
                Some(reseal_windows::Error::Refused(r)) => Some(r),
                _ => None,
            })
        {
            doc["error"]["refusal"] = serde_json::json!(r.code().replace('-', "_"));
            doc["error"]["override"] = serde_json::json!(r.override_flag());
        }
        outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        eprintln!("reseal: error: {}", message(e));
    }
    std::process::exit(status)
}
