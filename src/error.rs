//! The library's one error type.
//!
//! Everything a *user* can cause (a file, a CSV cell, a flag value, a model file, a target of
//! the wrong shape) comes back as an [`Error`] whose message says what is wrong, where (file,
//! line as a text editor counts them, column) and what to do. Programmer misuse inside the
//! library (calling `backward` before `forward`, wiring layers of mismatched widths) panics
//! with a message instead; those panics are documented on the functions that raise them.

use std::path::PathBuf;

/// Result with the library's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where in a text file something went wrong. Lines count from 1 as a text editor counts
/// them (the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Location {
    /// The file, as the user named it.
    pub path: PathBuf,
    /// 1-based line number, if the problem is on one line.
    pub line: Option<usize>,
    /// Column name (or 1-based number when there is no header), if the problem is in one cell.
    pub column: Option<String>,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column '{column}'")?;
        }
        Ok(())
    }
}

/// `text` with control characters written as escapes (`\x1b`, `\n`, `\u{202e}`), so that
/// a value from a file can neither split a message over lines nor drive the terminal.
/// Every value taken from a data or model file goes through it before it is shown.
pub fn escape_controls(text: &str) -> String {
    escape(text, false)
}

/// `text` with control characters escaped as by [`escape_controls`], except line breaks
/// (`\n`), which are kept: for whole lines of output already made of escaped values, as a
/// last guard that nothing in them drives the terminal.
pub fn escape_controls_but_lines(text: &str) -> String {
    escape(text, true)
}

fn escape(text: &str, keep_lines: bool) -> String {
    if !text.chars().any(needs_escape) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' if keep_lines => out.push('\n'),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 && c.is_control() => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Control characters (C0, DEL, C1), and the marks that reorder text (bidirectional
/// overrides and isolates).
pub fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A setting the user chose. The library names it; a front end words it (the CLI as a
/// flag such as `--lr`), so that no message here depends on one front end's spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// Hidden layer sizes ([`TrainConfig::hidden`](crate::train::TrainConfig::hidden)).
    Hidden,
    /// Most epochs to train.
    Epochs,
    /// Rows per mini-batch.
    BatchSize,
    /// Epochs without a better validation loss before training stops.
    Patience,
    /// Fraction of rows held out for validation.
    ValSplit,
    /// Learning rate.
    LearningRate,
    /// L2 weight decay.
    WeightDecay,
    /// Label smoothing.
    LabelSmoothing,
    /// Momentum of the momentum optimizer.
    Momentum,
    /// Nesterov momentum.
    Nesterov,
    /// Retrain on all rows after early stopping.
    Refit,
    /// The optimizer.
    Optimizer,
    /// The column to predict.
    Target,
    /// Classification or regression.
    Task,
    /// Columns read as categories.
    Categorical,
    /// Columns left out.
    Ignore,
    /// What to do with rows that have missing values.
    Missing,
    /// Where the model is written.
    Model,
    /// Where the loss-curve picture is written.
    Plot,
    /// Where predictions or an export are written.
    Output,
    /// What `mlp export` writes.
    Format,
    /// Class probabilities in the predictions.
    Proba,
    /// Input columns copied into the predictions.
    Keep,
    /// What predict and eval do with a category the model has not seen.
    UnknownCategory,
    /// The data row to explain.
    Row,
    /// Shuffles per column for permutation importance.
    Repeats,
    /// Where the decision-boundary picture is written.
    Boundary,
    /// Where the decision-boundary animation is written.
    BoundaryGif,
    /// Where the gradient-norm picture of the health report is written.
    Health,
    /// The number of threads.
    Threads,
    /// Most memory to use (streaming larger files).
    MemoryLimit,
    /// Streaming the training file even if it fits in memory.
    Stream,
    /// The number of threads, from the environment (`MLP_THREADS`).
    ThreadsVariable,
    /// How numeric columns are scaled.
    Scaling,
    /// Folds of the cross-fitted ensemble.
    Folds,
    /// Dropout rate of the hidden layers.
    Dropout,
    /// Training rows shuffled together when streaming.
    ShuffleWindow,
    /// Most rows kept in memory to judge every epoch on when streaming.
    HeldRows,
    /// How class probabilities are calibrated.
    Calibration,
    /// The level of prediction intervals.
    Interval,
    /// Weights of the classes in the training loss.
    ClassWeight,
    /// How regression prediction intervals are made.
    Intervals,
    /// What early stopping and the validation line judge by.
    Metric,
}

impl Setting {
    /// The setting's name in the library (the field of
    /// [`TrainConfig`](crate::train::TrainConfig) or
    /// [`TrainRequest`](crate::pipeline::TrainRequest) that holds it, where there is one).
    pub fn key(self) -> &'static str {
        match self {
            Setting::Hidden => "hidden",
            Setting::Epochs => "epochs",
            Setting::BatchSize => "batch_size",
            Setting::Patience => "patience",
            Setting::ValSplit => "val_split",
            Setting::LearningRate => "learning_rate",
            Setting::WeightDecay => "weight_decay",
            Setting::LabelSmoothing => "label_smoothing",
            Setting::ClassWeight => "class_weight",
            Setting::Intervals => "intervals",
            Setting::Metric => "metric",
            Setting::Momentum => "momentum",
            Setting::Nesterov => "nesterov",
            Setting::Refit => "refit",
            Setting::Optimizer => "optimizer",
            Setting::Target => "target",
            Setting::Task => "task",
            Setting::Categorical => "categorical",
            Setting::Ignore => "ignore",
            Setting::Missing => "missing",
            Setting::Model => "model",
            Setting::Plot => "plot",
            Setting::Output => "output",
            Setting::Format => "format",
            Setting::Proba => "proba",
            Setting::Keep => "keep",
            Setting::UnknownCategory => "unknown_category",
            Setting::Row => "row",
            Setting::Repeats => "repeats",
            Setting::Boundary => "boundary",
            Setting::BoundaryGif => "boundary_gif",
            Setting::Health => "health",
            Setting::Threads => "threads",
            Setting::MemoryLimit => "memory_limit",
            Setting::Stream => "stream",
            Setting::ThreadsVariable => "MLP_THREADS",
            Setting::Scaling => "scaling",
            Setting::Folds => "folds",
            Setting::Dropout => "dropout",
            Setting::ShuffleWindow => "shuffle_window",
            Setting::HeldRows => "held_rows",
            Setting::Calibration => "calibration",
            Setting::Interval => "interval",
        }
    }
}

/// How a front end words a setting, with the value it would take (`None`: the setting
/// alone). The library's own wording is [`library_words`].
pub type Words<'a> = &'a dyn Fn(Setting, Option<&str>) -> String;

/// The library's wording of a setting: `` `learning_rate` ``, `` `missing = drop` ``.
pub fn library_words(setting: Setting, value: Option<&str>) -> String {
    match value {
        Some(v) => format!("`{} = {v}`", setting.key()),
        None => format!("`{}`", setting.key()),
    }
}

/// What the user can do about an error: text with settings in it, kept apart so that each
/// front end can word them ([`Hint::render`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hint {
    parts: Vec<HintPart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HintPart {
    Text(String),
    Setting(Setting, Option<String>),
}

impl Hint {
    /// A hint that starts with `text`.
    pub fn text(text: impl Into<String>) -> Self {
        Hint::default().then(text)
    }

    /// Appends `text`.
    pub fn then(mut self, text: impl Into<String>) -> Self {
        self.parts.push(HintPart::Text(text.into()));
        self
    }

    /// Appends a setting with the value to give it.
    pub fn setting(mut self, setting: Setting, value: impl std::fmt::Display) -> Self {
        self.parts
            .push(HintPart::Setting(setting, Some(value.to_string())));
        self
    }

    /// Appends a setting, without a value.
    pub fn name(mut self, setting: Setting) -> Self {
        self.parts.push(HintPart::Setting(setting, None));
        self
    }

    /// Whether there is nothing to say.
    pub fn is_empty(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(p, HintPart::Text(t) if t.is_empty()))
    }

    /// The hint with its settings worded by `words`.
    pub fn render(&self, words: Words<'_>) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                HintPart::Text(t) => t.clone(),
                HintPart::Setting(s, v) => words(*s, v.as_deref()),
            })
            .collect()
    }
}

impl From<&str> for Hint {
    fn from(text: &str) -> Self {
        Hint::text(text)
    }
}

impl From<String> for Hint {
    fn from(text: String) -> Self {
        Hint::text(text)
    }
}

impl std::fmt::Display for Hint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(&library_words))
    }
}

/// Every error the library reports.
///
/// `Display` gives the message, then `\n  hint: ` and the hint when there is one, with
/// settings in the library's words; [`Error::message`] and [`Error::hint`] give the parts
/// for a front end to word its own way.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}{}", path.display(), hint_suffix(hint))]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
        /// What the user can do about it.
        hint: Hint,
    },

    /// A file could not be written. Writes of regular files are atomic, so a file already
    /// at `path` is unchanged.
    #[error("cannot write {}: {source}{}", path.display(), hint_suffix(hint))]
    Write {
        /// The file that was to be written.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
        /// What the user can do about it.
        hint: Hint,
    },

    /// The contents of a data file are not usable.
    #[error("{location}: {message}{}", hint_suffix(hint))]
    Data {
        /// File, line and column of the problem.
        location: Location,
        /// What is wrong.
        message: String,
        /// What the user can do about it.
        hint: Hint,
    },

    /// A model file is damaged, from another version, or does not describe a usable model.
    #[error("{}: {message}{}", path.display(), hint_suffix(hint))]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// What the user can do about it.
        hint: Hint,
    },

    /// A setting (learning rate, layer size, ...) is out of range, or cannot take effect.
    #[error("{}{}", config_message(*setting, value, message, &library_words), hint_suffix(hint))]
    Config {
        /// The setting.
        setting: Setting,
        /// The value given (may be empty).
        value: String,
        /// Why it is refused.
        message: String,
        /// What would be accepted.
        hint: Hint,
    },

    /// A target whose shape does not match the prediction it is compared with.
    #[error("target shape {target:?} does not match prediction shape {prediction:?}: {message}")]
    Shape {
        /// Shape of the network's output, `[rows, columns]`.
        prediction: Vec<usize>,
        /// Shape of the target given.
        target: Vec<usize>,
        /// Which rule was broken.
        message: String,
    },

    /// Training was interrupted before anything worth keeping existed.
    #[error("interrupted: {0}")]
    Interrupted(String),

    /// Another process of a data-parallel run failed (it reports why), so this one stops
    /// too ([`crate::train::comm::Communicator::settle`]).
    #[error("process {rank} stopped the run")]
    Elsewhere {
        /// The rank of the process that failed.
        rank: usize,
    },

    /// Training produced a non-finite loss or weight and no usable model exists.
    #[error("training diverged: {message}{}", hint_suffix(hint))]
    Diverged {
        /// What became non-finite, and when.
        message: String,
        /// What the user can do about it.
        hint: Hint,
    },
}

/// ELOOP (`ErrorKind::FilesystemLoop` is not stable yet).
fn is_link_loop(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    return e.raw_os_error() == Some(libc::ELOOP);
    #[cfg(not(unix))]
    return false;
}

fn hint_suffix(hint: &Hint) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!("\n  hint: {hint}")
    }
}

fn config_message(setting: Setting, value: &str, message: &str, words: Words<'_>) -> String {
    let value = if value.is_empty() {
        String::new()
    } else {
        format!(" {value}")
    };
    format!("invalid {}{value}: {message}", words(setting, None))
}

impl Error {
    /// An I/O error on `path` with a hint for the user.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        use std::io::ErrorKind;
        let hint = match source.kind() {
            ErrorKind::NotFound => "check the path and that the file exists",
            ErrorKind::PermissionDenied => {
                "check the file's permissions, or choose another location"
            }
            ErrorKind::IsADirectory => "this is a directory; give the path of a file",
            ErrorKind::NotADirectory => "a part of this path is a file, not a directory",
            _ if is_link_loop(&source) => {
                "the path goes round a loop of symbolic links; point to the file itself"
            }
            ErrorKind::InvalidFilename => "the path or a name in it is too long",
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
                "free some disk space, or choose another location"
            }
            _ => "check that the file is readable, and try again",
        };
        Error::Io {
            path: path.into(),
            source,
            hint: hint.into(),
        }
    }

    /// A failed write of `path`. `replaced` says whether the write went to a temporary
    /// file first (so that any existing file at `path` is unchanged), which the hint says.
    pub fn write(path: impl Into<PathBuf>, source: std::io::Error, replaced: bool) -> Self {
        use std::io::ErrorKind;
        let what = match source.kind() {
            ErrorKind::NotFound => "create the directory, or choose another location".into(),
            ErrorKind::NotADirectory => "a part of this path is a file, not a directory".into(),
            ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
                if replaced {
                    "the directory is not writable (a file is written next to its target, then \
                     renamed over it); choose another location"
                        .into()
                } else {
                    "this file is not writable; check its permissions, or choose another \
                     location"
                        .into()
                }
            }
            ErrorKind::StorageFull | ErrorKind::FileTooLarge | ErrorKind::QuotaExceeded => {
                "free some disk space, or choose another location".into()
            }
            ErrorKind::IsADirectory => "this is a directory; give the path of a file".into(),
            _ if is_link_loop(&source) => {
                "the path goes round a loop of symbolic links; choose another location".into()
            }
            ErrorKind::BrokenPipe => "nothing reads from this pipe any more".into(),
            _ => "choose another location".to_string(),
        };
        let what = if replaced {
            format!("{what}; any file already there is unchanged")
        } else {
            what
        };
        Error::Write {
            path: path.into(),
            source,
            hint: what.into(),
        }
    }

    /// A data error at `location`.
    pub fn data(location: Location, message: impl Into<String>, hint: impl Into<Hint>) -> Self {
        Error::Data {
            location,
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A model-file error.
    pub fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            message: message.into(),
            hint: "retrain with `mlp train`, or point to the model file that `mlp train` wrote"
                .into(),
        }
    }

    /// A model-file error with its own hint.
    pub fn model_with_hint(
        path: impl Into<PathBuf>,
        message: impl Into<String>,
        hint: impl Into<Hint>,
    ) -> Self {
        Error::Model {
            path: path.into(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A bad setting: `value` refused because of `message`; `hint` says what would do.
    pub fn config(
        setting: Setting,
        value: impl std::fmt::Display,
        message: impl Into<String>,
        hint: impl Into<Hint>,
    ) -> Self {
        Error::Config {
            setting,
            value: value.to_string(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// The message without its hint, with settings worded by `words`.
    pub fn message(&self, words: Words<'_>) -> String {
        match self {
            Error::Config {
                setting,
                value,
                message,
                ..
            } => config_message(*setting, value, message, words),
            Error::Io { path, source, .. } => format!("{}: {source}", path.display()),
            Error::Write { path, source, .. } => {
                format!("cannot write {}: {source}", path.display())
            }
            Error::Data {
                location, message, ..
            } => format!("{location}: {message}"),
            Error::Model { path, message, .. } => format!("{}: {message}", path.display()),
            Error::Diverged { message, .. } => format!("training diverged: {message}"),
            Error::Shape { .. } | Error::Interrupted(_) | Error::Elsewhere { .. } => {
                self.to_string()
            }
        }
    }

    /// What the user can do about it, when the library knows.
    pub fn hint(&self) -> Option<&Hint> {
        match self {
            Error::Io { hint, .. }
            | Error::Write { hint, .. }
            | Error::Data { hint, .. }
            | Error::Model { hint, .. }
            | Error::Config { hint, .. }
            | Error::Diverged { hint, .. } => Some(hint).filter(|h| !h.is_empty()),
            Error::Shape { .. } | Error::Interrupted(_) | Error::Elsewhere { .. } => None,
        }
    }
}
