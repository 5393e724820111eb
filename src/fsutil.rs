//! Files in and out: outputs written so that a reader never sees half of one, device nodes
//! and pipes written through rather than replaced, inputs read within a memory budget.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::{Error, Result};

/// Temporary files being written right now, so that a process about to die (a second
/// Ctrl-C) can remove them: [`remove_temporary_files`].
static PENDING: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Removes the temporary files of writes still under way, and keeps any other write from
/// starting: for a signal handler that ends the process right after (the CLI's Ctrl-C or
/// SIGTERM). A write that has created its temporary file is done or removed; one that has
/// not waits for ever, so it cannot leave a file behind either. The files the writes were
/// to replace are untouched, whole.
pub fn remove_temporary_files() {
    // A poisoned lock still holds the list.
    let pending = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    for tmp in pending.iter() {
        let _ = fs::remove_file(tmp);
    }
    // Held until the process ends: no write registers (so creates) a file after this.
    std::mem::forget(pending);
}

/// Writes `bytes` to `path`, the way an output file should be written.
///
/// * A new path or a regular file (also through symbolic links) is written atomically with
///   [`write_atomic`]: an existing file is either fully replaced or left untouched.
/// * Anything else that exists — a character device such as `/dev/null`, a FIFO,
///   `/dev/stdout`, `/proc/self/fd/1` — is opened and written through: renaming a file over
///   it would replace the device node or the pipe with a regular file.
pub fn write_output(path: &Path, bytes: &[u8]) -> Result<()> {
    match fs::metadata(path) {
        Ok(m) if !m.is_file() && !m.is_dir() => write_through(path, bytes),
        _ => {
            // Replace the file a symbolic link points to, not the link.
            // (A link to nothing is replaced itself.)
            let target = match fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => {
                    fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
                }
                _ => path.to_path_buf(),
            };
            write_atomic(&target, bytes).map_err(|e| match e {
                Error::Write { source, .. } => Error::write(path, source, true),
                e => e,
            })
        }
    }
}

/// Whether `path` names an existing file that is neither a regular file nor a directory: a
/// device or a pipe, which [`write_output`] writes through.
pub fn is_device_or_pipe(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}

/// Writes `bytes` into the existing, non-regular file at `path` (a device or a pipe).
fn write_through(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| Error::write(path, e, false))?;
    f.write_all(bytes)
        .and_then(|()| f.flush())
        .map_err(|e| Error::write(path, e, false))
}

/// Checks, before any work is done, that an output can be written at `path`: it is not a
/// directory, and its directory exists. The error is the one the write would give.
pub fn check_output_path(path: &Path) -> Result<()> {
    use std::io::{Error as IoError, ErrorKind};
    if fs::metadata(path).is_ok_and(|m| m.is_dir()) {
        return Err(Error::write(
            path,
            IoError::new(ErrorKind::IsADirectory, "it is a directory"),
            false,
        ));
    }
    if path.as_os_str().as_encoded_bytes().ends_with(b"/") {
        return Err(Error::write(
            path,
            IoError::new(
                ErrorKind::IsADirectory,
                "a path ending in '/' names a directory",
            ),
            false,
        ));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    match fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(Error::write(
            path,
            IoError::new(
                ErrorKind::NotADirectory,
                format!("{} is a file, not a directory", dir.display()),
            ),
            false,
        )),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(Error::write(
            path,
            IoError::new(
                ErrorKind::NotFound,
                format!("the directory {} does not exist", dir.display()),
            ),
            false,
        )),
        Err(e) => Err(Error::write(path, e, false)),
    }
}

/// Writes `bytes` to `path` atomically: into a temporary file in the same directory, flushed
/// to disk, then renamed over `path`. An existing file at `path` is either fully replaced or
/// left untouched, never truncated; on failure the temporary file is removed and the error
/// names `path`. For outputs that may be devices or pipes use [`write_output`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path.file_name().ok_or_else(|| {
        Error::write(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"),
            true,
        )
    })?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}-{}",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let unregister = || {
        let mut list = PENDING.lock().unwrap_or_else(|e| e.into_inner());
        list.retain(|p| p != &tmp);
    };
    let result = (|| {
        // Created and registered under the lock, so that `remove_temporary_files` sees
        // every temporary file that exists. `create_new`: never write through a file (or
        // link) someone else put there.
        let mut f = {
            let mut list = PENDING.lock().unwrap_or_else(|e| e.into_inner());
            let f = fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&tmp)?;
            list.push(tmp.clone());
            f
        };
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        unregister();
        return Err(Error::write(path, e, true));
    }
    unregister();
    // Make the rename itself durable; a directory that cannot be synced is not an error.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// How much of an input may be read, and what to call the limit in messages.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimit {
    /// Most bytes to read.
    pub bytes: u64,
    /// What the file is, for the message: "a model file", "data".
    pub what: &'static str,
}

impl ReadLimit {
    /// Model files: above any model `mlp train` can write
    /// ([`MAX_PARAMETERS`](crate::train::MAX_PARAMETERS) weights of at most 30 bytes of
    /// JSON each), refused before parsing.
    pub const MODEL: ReadLimit = ReadLimit {
        bytes: 4 << 30,
        what: "a model file",
    };
    /// Data read from a pipe or a device, whose size is not known in advance. Regular
    /// files are limited only by memory (their size is known before reading).
    pub const STREAM: ReadLimit = ReadLimit {
        bytes: 512 << 20,
        what: "data from a pipe or device",
    };
}

/// `n` bytes in the largest whole binary unit: "64 MiB".
pub fn size_text(n: u64) -> String {
    match n {
        n if n >= 1 << 30 && n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

fn too_large(path: &Path, limit: ReadLimit) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(format!(
            "more than {} to read; the limit for {} is {}",
            size_text(limit.bytes),
            limit.what,
            size_text(limit.bytes)
        )),
        hint: "check that this is the file you meant (an endless device such as /dev/zero \
               never ends)"
            .into(),
    }
}

/// Reads the file at `path`, refusing more than `limit` bytes. A regular file larger than
/// the limit is refused before anything is read; a pipe or device is read in pieces and
/// refused as soon as it passes the limit, so an endless one costs at most the limit in
/// memory. `check` sees the bytes read so far after every piece (with the offset where the
/// new ones start) and may refuse them, for example on a line that never ends.
pub fn read_limited(
    path: &Path,
    limit: ReadLimit,
    mut check: impl FnMut(&[u8], usize) -> Result<()>,
) -> Result<Vec<u8>> {
    let mut file = fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(Error::io(
            path,
            std::io::Error::new(std::io::ErrorKind::IsADirectory, "it is a directory"),
        ));
    }
    if meta.is_file() && meta.len() > limit.bytes {
        return Err(too_large(path, limit));
    }
    let mut bytes = Vec::with_capacity(if meta.is_file() {
        meta.len() as usize
    } else {
        0
    });
    const PIECE: usize = 1 << 20;
    loop {
        let start = bytes.len();
        if start as u64 > limit.bytes {
            return Err(too_large(path, limit));
        }
        let n = (&mut file)
            .take(PIECE as u64)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            return Ok(bytes);
        }
        check(&bytes, start)?;
    }
}

/// The longest line a data file may have, and the longest header.
pub const MAX_LINE: usize = 64 << 20;
/// The longest header line a data file may have.
pub const MAX_HEADER: usize = 16 << 20;

/// Follows the lines of a text read in pieces and refuses one longer than [`MAX_LINE`] (or
/// a header longer than [`MAX_HEADER`]) with its line number, as soon as it passes.
///
/// Only the line ends nearest the piece boundaries are looked for: a line that starts and
/// ends within one piece (1 MiB) is shorter than both limits.
#[derive(Debug, Default)]
struct LineLengths {
    /// Where the line not yet ended starts, in the whole text.
    line_start: usize,
}

impl LineLengths {
    const PIECE: usize = 1 << 20;

    /// Looks at `text[start..]`, the bytes read since the last call (`text` is everything
    /// read so far).
    fn feed(&mut self, path: &Path, text: &[u8], start: usize) -> Result<()> {
        let mut at = start;
        while at < text.len() {
            let end = (at + Self::PIECE).min(text.len());
            let piece = &text[at..end];
            if let Some(first) = memchr::memchr2(b'\n', b'\r', piece) {
                self.check(path, text, at + first)?;
                let last = memchr::memrchr2(b'\n', b'\r', piece).expect("one was found");
                self.line_start = at + last + 1;
            }
            self.check(path, text, end)?;
            at = end;
        }
        Ok(())
    }

    /// Refuses the current line if it is already too long at `end`.
    fn check(&self, path: &Path, text: &[u8], end: usize) -> Result<()> {
        let (limit, what) = if self.line_start == 0 {
            (MAX_HEADER, "the first line (the header)")
        } else {
            (MAX_LINE, "this line")
        };
        if end - self.line_start <= limit {
            return Ok(());
        }
        // Line ends as the CSV reader counts them: "\n", "\r\n" or a lone "\r".
        let before = &text[..self.line_start];
        let ended = before
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && before.get(i + 1) != Some(&b'\n')))
            .count();
        Err(Error::data(
            crate::error::Location {
                path: path.to_path_buf(),
                line: Some(ended + 1),
                column: None,
            },
            format!("{what} is longer than {}", size_text(limit as u64)),
            "check that this is the CSV file you meant: a line this long is not a table row \
             (a device such as /dev/zero, or a binary file?)",
        ))
    }
}

/// Reads a data file: a regular file whole (its size is known), a pipe or device within
/// [`ReadLimit::STREAM`]; either way a line longer than [`MAX_LINE`] or a header longer
/// than [`MAX_HEADER`] is refused with its line number as soon as it has been read.
pub fn read_data(path: &Path) -> Result<Vec<u8>> {
    let regular = fs::metadata(path).is_ok_and(|m| m.is_file());
    let limit = if regular {
        ReadLimit {
            bytes: u64::MAX,
            what: "data",
        }
    } else {
        ReadLimit::STREAM
    };
    let mut lines = LineLengths::default();
    read_limited(path, limit, |bytes, start| lines.feed(path, bytes, start))
}

/// Checks the line lengths of data already in memory (see [`read_data`]).
pub fn check_line_lengths(path: &Path, bytes: &[u8]) -> Result<()> {
    LineLengths::default().feed(path, bytes, 0)
}

/// Whether `a` and `b` name the same file: the same existing file (through any links or
/// relative paths), or, when `a` does not exist yet, the same name in the same directory.
pub fn same_file(a: &Path, b: &Path) -> bool {
    let canonical = |p: &Path| -> Option<PathBuf> {
        if let Ok(c) = fs::canonicalize(p) {
            return Some(c);
        }
        let name = p.file_name()?;
        let parent = match p.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        Some(fs::canonicalize(parent).ok()?.join(name))
    };
    match (canonical(a), canonical(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_whole_files_and_leaves_them_alone_on_failure() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.json");
        std::fs::write(&path, "old").unwrap();
        write_atomic(&path, b"new contents").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");

        // A destination whose directory is a file: the error names the path, nothing leaks.
        let blocker = dir.path().join("not-a-dir");
        std::fs::write(&blocker, "x").unwrap();
        let e = write_atomic(&blocker.join("m.json"), b"data").unwrap_err();
        let text = e.to_string();
        assert!(
            text.starts_with(&format!(
                "cannot write {}",
                blocker.join("m.json").display()
            )),
            "{text}"
        );
        assert!(
            text.contains("a part of this path is a file, not a directory"),
            "{text}"
        );

        // Renaming over a directory fails after the temporary file was written: it is
        // removed again.
        let sub = dir.path().join("sub.json");
        std::fs::create_dir(&sub).unwrap();
        std::fs::write(sub.join("keep"), "k").unwrap();
        assert!(write_atomic(&sub, b"data").is_err());
        let mut names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["model.json", "not-a-dir", "sub.json"]);
        assert_eq!(std::fs::read(&path).unwrap(), b"new contents");
    }

    #[test]
    fn long_lines_are_refused_with_their_number_however_the_text_arrives() {
        let path = Path::new("d.csv");
        let mut text = b"a,b\r\n1,2\r\n3,4\r5,6\n".to_vec();
        text.resize(text.len() + MAX_LINE + 1, b'7');
        let whole = check_line_lengths(path, &text).unwrap_err().to_string();
        assert!(
            whole.starts_with("d.csv, line 5: this line is longer than 64 MiB\n  hint: "),
            "{whole}"
        );
        // The same text in pieces, one of them splitting the "\r\n" after the header.
        let mut lines = LineLengths::default();
        let mut result = Ok(());
        let cuts = [0, 4, 5, 300, text.len()];
        for w in cuts.windows(2) {
            result = lines.feed(path, &text[..w[1]], w[0]);
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result.unwrap_err().to_string(), whole);
        // A header is allowed less; a line at the limit is allowed.
        let header = vec![b'h'; MAX_HEADER + 1];
        let e = check_line_lengths(path, &header).unwrap_err().to_string();
        assert!(
            e.starts_with("d.csv, line 1: the first line (the header) is longer than 16 MiB"),
            "{e}"
        );
        let mut fine = b"a\n".to_vec();
        fine.resize(2 + MAX_LINE, b'7');
        assert!(check_line_lengths(path, &fine).is_ok());
    }

    #[test]
    fn same_file_sees_through_relative_paths() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.csv");
        std::fs::write(&a, "x").unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        assert!(same_file(&a, &sub.join("..").join("a.csv")));
        assert!(same_file(
            &dir.path().join("new.json"),
            &sub.join("../new.json")
        ));
        assert!(!same_file(&a, &dir.path().join("b.csv")));
    }
}
