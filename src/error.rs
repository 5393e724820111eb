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

/// Every error the library reports.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{}: {source}{}", path.display(), hint_suffix(hint))]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
        /// What the user can do about it (may be empty).
        hint: String,
    },

    /// A file could not be written. Writes are atomic, so a file already at `path` is
    /// unchanged.
    #[error(
        "cannot write {}: {source}\n  hint: {hint}; any file already there is unchanged",
        path.display()
    )]
    Write {
        /// The file that was to be written.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
        /// What the user can do about it.
        hint: String,
    },

    /// The contents of a data file are not usable.
    #[error("{location}: {message}{}", hint_suffix(hint))]
    Data {
        /// File, line and column of the problem.
        location: Location,
        /// What is wrong.
        message: String,
        /// What the user can do about it (may be empty).
        hint: String,
    },

    /// A model file is damaged, from another version, or does not describe a usable model.
    #[error("{}: {message}{}", path.display(), hint_suffix(hint))]
    Model {
        /// The model file.
        path: PathBuf,
        /// What is wrong.
        message: String,
        /// What the user can do about it (may be empty).
        hint: String,
    },

    /// A setting (learning rate, layer size, ...) is out of range.
    #[error("invalid {name}{}: {message}", if value.is_empty() { String::new() } else { format!(" {value}") })]
    Config {
        /// The setting, as the user knows it (for example `--lr`).
        name: String,
        /// The value given.
        value: String,
        /// Why it is refused and what would be accepted.
        message: String,
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

    /// Training produced a non-finite loss or weight and no usable model exists.
    #[error("training diverged: {message}{}", hint_suffix(hint))]
    Diverged {
        /// What became non-finite, and when.
        message: String,
        /// What the user can do about it.
        hint: String,
    },
}

fn hint_suffix(hint: &str) -> String {
    if hint.is_empty() {
        String::new()
    } else {
        format!("\n  hint: {hint}")
    }
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
            _ => "",
        };
        Error::Io {
            path: path.into(),
            source,
            hint: hint.to_string(),
        }
    }

    /// A failed write of `path` that left any existing file there unchanged.
    pub fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        use std::io::ErrorKind;
        let what = match source.kind() {
            ErrorKind::NotFound | ErrorKind::NotADirectory => "check that the directory exists",
            ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem => {
                "check that the directory is writable, or choose another location"
            }
            ErrorKind::StorageFull | ErrorKind::FileTooLarge | ErrorKind::QuotaExceeded => {
                "free some disk space, or choose another location"
            }
            ErrorKind::IsADirectory => "this is a directory; give the path of a file",
            _ => "choose another location",
        };
        Error::Write {
            path: path.into(),
            source,
            hint: what.to_string(),
        }
    }

    /// A data error at `location`.
    pub fn data(location: Location, message: impl Into<String>, hint: impl Into<String>) -> Self {
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
                .to_string(),
        }
    }

    /// A bad setting.
    pub fn config(
        name: impl Into<String>,
        value: impl std::fmt::Display,
        message: impl Into<String>,
    ) -> Self {
        Error::Config {
            name: name.into(),
            value: value.to_string(),
            message: message.into(),
        }
    }
}
