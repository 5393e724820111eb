//! The two output streams, and how messages appear on them.
//!
//! Every line the CLI prints goes through [`outln!`] (standard output) or [`errln!`]
//! (standard error), never `println!`/`eprintln!`, which panic when a write fails. A failed
//! write is remembered rather than raised, so that the command carries on and writes its
//! files (a model is not lost because `| head -1` closed the pipe); later lines to that
//! stream are dropped. At the end, [`finish`] turns what happened into the exit code:
//!
//! * standard output closed by its reader (`| head -1`): quiet, the command's own code;
//! * any other failure on either stream (`> /dev/full`, `2> /dev/full`): exit 2, with an
//!   `error:` line on whichever stream still works.
//!
//! Errors and warnings are written by [`error`] and [`warning`]: one `error:` (or
//! `warning:`) line and one `  hint:` line, with control characters in them escaped, so a
//! value from a file can neither split the message nor drive the terminal.
//!
//! Text for a reader never carries a control character from a file: `outln!` and `errln!`
//! escape every control character but the line break, a value that could hold a line break
//! is escaped with [`escape_controls`] where it is put into the text, and JSON is written
//! with [`json_line`]. Only data meant for a program (predictions into a pipe or a file)
//! goes out byte for byte, through [`write_stdout`].
//!
//! New commands: print with `outln!`/`errln!` (or [`write_stdout`] for bulk bytes), return
//! `mlp::Error` for failures, and word settings with [`words`].

use std::io::{self, Write};
use std::process::ExitCode;
use std::sync::Mutex;

use mlp::error::{Hint, Setting, escape_controls, escape_controls_but_lines, needs_escape};

use super::EXIT_USER;

/// What happened on one stream.
#[derive(Default)]
struct Stream {
    /// The reader went away (`EPIPE`): not an error for standard output.
    closed: bool,
    /// The first other write error.
    failed: Option<io::Error>,
}

impl Stream {
    fn usable(&self) -> bool {
        !self.closed && self.failed.is_none()
    }

    fn record(&mut self, e: io::Error) {
        if e.kind() == io::ErrorKind::BrokenPipe {
            self.closed = true;
        } else if self.failed.is_none() {
            self.failed = Some(e);
        }
    }
}

static STDOUT: Mutex<Stream> = Mutex::new(Stream {
    closed: false,
    failed: None,
});
static STDERR: Mutex<Stream> = Mutex::new(Stream {
    closed: false,
    failed: None,
});

fn state(stream: &'static Mutex<Stream>) -> std::sync::MutexGuard<'static, Stream> {
    stream.lock().unwrap_or_else(|e| e.into_inner())
}

/// Writes `bytes` to standard output and flushes, unless an earlier write failed. Returns
/// whether the bytes were written.
pub fn write_stdout(bytes: &[u8]) -> bool {
    let mut s = state(&STDOUT);
    if !s.usable() {
        return false;
    }
    let mut out = io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => true,
        Err(e) => {
            s.record(e);
            false
        }
    }
}

/// Writes `bytes` to standard error, unless an earlier write failed. Returns whether the
/// bytes were written.
pub fn write_stderr(bytes: &[u8]) -> bool {
    let mut s = state(&STDERR);
    if !s.usable() {
        return false;
    }
    let mut err = io::stderr().lock();
    match err.write_all(bytes).and_then(|()| err.flush()) {
        Ok(()) => true,
        Err(e) => {
            s.record(e);
            false
        }
    }
}

/// Writes text for a reader to standard output: control characters other than line breaks
/// are escaped ([`escape_controls_but_lines`]), so that nothing taken from a file can drive
/// the terminal, whatever line it reaches. Values that could hold a line break are escaped
/// where they are put in the text ([`escape_controls`]).
pub fn write_stdout_text(text: &str) -> bool {
    write_stdout(escape_controls_but_lines(text).as_bytes())
}

/// [`write_stdout_text`] for standard error.
pub fn write_stderr_text(text: &str) -> bool {
    write_stderr(escape_controls_but_lines(text).as_bytes())
}

/// `value` as one line of JSON in which no character drives a terminal: serde escapes the
/// C0 controls; DEL, the C1 controls and the marks that reorder text (all only ever inside
/// strings) are written as `\uXXXX` too, which JSON readers decode to the same string.
pub fn json_line(value: &impl serde::Serialize) -> String {
    let text = serde_json::to_string(value).expect("plain numbers and strings");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if needs_escape(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// `println!` that never panics and never lets a control character through: see the
/// module documentation and [`write_stdout_text`].
macro_rules! outln {
    () => {
        $crate::cli::out::write_stdout(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::cli::out::write_stdout_text(&format!("{}\n", format_args!($($arg)*)))
    };
}

/// `eprintln!` that never panics and never lets a control character through.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::out::write_stderr_text(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub(crate) use {errln, outln};

/// How the CLI words a setting: as its flag (`--missing drop`), or the environment
/// variable. Values that a shell or the flag's CSV reading would split are quoted.
pub fn words(setting: Setting, value: Option<&str>) -> String {
    let flag = match setting {
        Setting::Hidden => "--hidden",
        Setting::Epochs => "--epochs",
        Setting::BatchSize => "--batch-size",
        Setting::Patience => "--patience",
        Setting::ValSplit => "--val-split",
        Setting::LearningRate => "--lr",
        Setting::WeightDecay => "--weight-decay",
        Setting::LabelSmoothing => "--label-smoothing",
        Setting::ClassWeight => "--class-weight",
        Setting::Intervals => "--intervals",
        Setting::Metric => "--metric",
        Setting::Momentum => "--momentum",
        Setting::Nesterov => "--nesterov",
        Setting::Refit => "--refit",
        Setting::Optimizer => "--optimizer",
        Setting::Target => "--target",
        Setting::Task => "--task",
        Setting::Categorical => "--categorical",
        Setting::Ignore => "--ignore",
        Setting::Missing => "--missing",
        Setting::Model => "--model",
        Setting::Plot => "--plot",
        Setting::Output => "--output",
        Setting::Format => "--format",
        Setting::Proba => "--proba",
        Setting::Keep => "--keep",
        Setting::UnknownCategory => "--unknown-category",
        Setting::Row => "--row",
        Setting::Repeats => "--repeats",
        Setting::Boundary => "--boundary",
        Setting::BoundaryGif => "--boundary-gif",
        Setting::Health => "--health",
        Setting::Threads => "--threads",
        Setting::MemoryLimit => "--memory-limit",
        Setting::Stream => "--stream",
        Setting::Scaling => "--scaling",
        Setting::Folds => "--folds",
        Setting::Dropout => "--dropout",
        Setting::ShuffleWindow => "--shuffle-window",
        Setting::HeldRows => "--held-rows",
        Setting::Calibration => "--calibration",
        Setting::Interval => "--interval",
        Setting::ThreadsVariable => {
            return match value {
                Some(v) => format!("MLP_THREADS={}", shell_quoted(v)),
                None => "MLP_THREADS".into(),
            };
        }
    };
    match (setting, value) {
        (_, None) => flag.into(),
        // Column names: one CSV field each (see `column_list`).
        (Setting::Categorical | Setting::Ignore | Setting::Keep | Setting::Target, Some(v)) => {
            let field = if matches!(setting, Setting::Target) {
                v.to_string()
            } else {
                csv_field(v)
            };
            format!("{flag} {}", shell_quoted(&field))
        }
        (_, Some(v)) => format!("{flag} {}", shell_quoted(v)),
    }
}

/// A column name as one field of a CSV record: quoted when it holds a comma or a quote.
fn csv_field(name: &str) -> String {
    if name.contains([',', '"']) || name.trim() != name {
        format!("\"{}\"", name.replace('"', "\"\""))
    } else {
        name.to_string()
    }
}

/// `text` as one shell word: as it is when that is safe, else in single quotes.
fn shell_quoted(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_alphanumeric() || "_-.,/:=+@%".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// The lines of a message: `{label}: {message}` and `  hint: {hint}`, escaped.
fn lines(label: &str, message: &str, hint: &str) -> String {
    format!(
        "{label}: {}\n  hint: {}\n",
        escape_controls(message),
        escape_controls(hint)
    )
}

/// Shows an error on standard error, or on standard output when standard error fails.
pub fn error(message: &str, hint: &str) {
    let text = lines("error", message, hint);
    if !write_stderr(text.as_bytes()) {
        write_stdout(text.as_bytes());
    }
}

/// Shows a warning on standard error.
pub fn warning(message: &str, hint: &Hint) {
    write_stderr(lines("warning", message, &hint.render(&words)).as_bytes());
}

/// The exit code for a command that ended with `code`, after what happened on the streams;
/// reports a failed stream on the other one.
pub fn finish(code: ExitCode) -> ExitCode {
    let stdout_failed = state(&STDOUT).failed.take();
    let stderr_failed = state(&STDERR).failed.take();
    if stdout_failed.is_none() && stderr_failed.is_none() {
        return code;
    }
    if let Some(e) = stdout_failed {
        error(
            &format!("cannot write to standard output: {e}"),
            "check where the output goes (a full disk? a device that takes no data?); \
             any files the command writes were written",
        );
    }
    if let Some(e) = stderr_failed {
        error(
            &format!("cannot write to standard error: {e}"),
            "check where messages go (a full disk? a device that takes no data?)",
        );
    }
    if code == ExitCode::SUCCESS {
        ExitCode::from(EXIT_USER)
    } else {
        code
    }
}
