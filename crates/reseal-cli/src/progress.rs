//! Progress: a bar on a terminal; on a pipe, qemu-img's `-p` line when asked for, else nothing.

use indicatif::{ProgressBar, ProgressStyle};
use std::cell::Cell;
use std::io::{IsTerminal, Write};

/// A byte-count progress display on standard error.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Plain-text mode (standard error is not a terminal, progress asked for): the last
    /// percentage printed, in hundredths (`None` before the first).
    plain: Option<Cell<Option<u64>>>,
}

impl Progress {
    /// A bar titled `what`, hidden when standard error is not a terminal.
    pub fn bytes(what: &str) -> Self {
        Self::bytes_or_plain(what, false)
    }

    /// As [`Progress::bytes`]; with `plain_when_piped`, when standard error is not a terminal,
    /// the percentage is printed as `qemu-img -p` does: `    (NN.NN/100%)` rewritten in place
    /// with a carriage return at every percent, and a newline at the end.
    pub fn bytes_or_plain(what: &str, plain_when_piped: bool) -> Self {
        let tty = std::io::stderr().is_terminal();
        let bar = tty.then(|| {
            let b = ProgressBar::new(0);
            b.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .expect("invariant: the template is valid")
                .progress_chars("=> "),
            );
            b.set_message(what.to_owned());
            b
        });
        let plain = (!tty && plain_when_piped).then(|| Cell::new(None));
        let p = Self { bar, plain };
        // qemu-img prints 0.00 before the work starts.
        p.update(0, 1);
        p
    }

    /// Report `done` of `total`.
    pub fn update(&self, done: u64, total: u64) {
        if let Some(b) = &self.bar {
            b.set_length(total);
            b.set_position(done);
        }
        if let Some(last) = &self.plain {
            let hundredths = if total == 0 {
                10_000
            } else {
                (u128::from(done.min(total)) * 10_000 / u128::from(total)) as u64
            };
            // Every whole percent, and the end.
            let due = match last.get() {
                None => true,
                Some(l) => hundredths >= l + 100 || (hundredths == 10_000 && l != 10_000),
            };
            if due {
                last.set(Some(hundredths));
                let mut e = std::io::stderr().lock();
                let _ = write!(
                    e,
                    "    ({}.{:02}/100%)\r",
                    hundredths / 100,
                    hundredths % 100
                );
                let _ = e.flush();
            }
        }
    }

    /// Remove the bar (end the plain line).
    pub fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
        if self.plain.as_ref().is_some_and(|l| l.get().is_some()) {
            eprintln!();
        }
    }
}
