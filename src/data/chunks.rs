//! A CSV file read a slice of whole lines at a time, each slice with the header line in
//! front: the table reader then parses every slice exactly as it would the whole file
//! (delimiter, quoting, missing-value tokens, line endings), in bounded memory.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fsutil::{MAX_HEADER, MAX_LINE, size_text};

/// What a file looked like: its length and when it was last modified. A file read in
/// several passes (streamed training reads it once per epoch) must look the same at the
/// start and the end of every pass, or the passes would describe different data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStamp {
    /// Length in bytes.
    pub len: u64,
    /// Last modification, where the file system records it.
    pub modified: Option<std::time::SystemTime>,
}

impl FileStamp {
    /// The file at `path` as it is now.
    pub fn of(path: &Path) -> Result<FileStamp> {
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        Ok(FileStamp {
            len: meta.len(),
            modified: meta.modified().ok(),
        })
    }

    /// Refuses to go on when the file at `path` no longer looks as it did: grown, shrunk,
    /// rewritten or gone since the first pass began.
    pub fn check(&self, path: &Path) -> Result<()> {
        let now = FileStamp::of(path).map_err(|_| self.changed(path, "it is gone"))?;
        if now == *self {
            return Ok(());
        }
        let what = match now.len.cmp(&self.len) {
            std::cmp::Ordering::Greater => {
                format!("it grew from {} to {} bytes", self.len, now.len)
            }
            std::cmp::Ordering::Less => format!("it shrank from {} to {} bytes", self.len, now.len),
            std::cmp::Ordering::Equal => "it was modified (same size, newer time)".into(),
        };
        Err(self.changed(path, &what))
    }

    fn changed(&self, path: &Path, what: &str) -> Error {
        Error::data(
            crate::error::Location {
                path: path.to_path_buf(),
                line: None,
                column: None,
            },
            format!(
                "the file changed while it was being streamed ({what}): its statistics, \
                 split and rows would no longer agree, so training stopped"
            ),
            "streaming reads the file once per epoch: let whatever writes it finish, or \
             train on a copy that stays as it is",
        )
    }
}

/// Whole lines of a file, after its header line.
#[derive(Debug)]
pub struct Chunk {
    /// The header line, then the lines: a small CSV file.
    pub bytes: Vec<u8>,
    /// The file's line number (1-based, the header is line 1) of the chunk's first line
    /// after the header.
    pub first_line: usize,
}

impl Chunk {
    /// Converts a line number within [`bytes`](Chunk::bytes) (as the table reader reports
    /// it) into the file's line number.
    pub fn file_line(&self, line_in_chunk: usize) -> usize {
        if line_in_chunk <= 1 {
            line_in_chunk
        } else {
            line_in_chunk - 2 + self.first_line
        }
    }

    /// An error from reading this chunk, with its line number made the file's.
    pub fn locate(&self, error: Error) -> Error {
        match error {
            Error::Data {
                mut location,
                message,
                hint,
            } => {
                location.line = location.line.map(|l| self.file_line(l));
                Error::Data {
                    location,
                    message,
                    hint,
                }
            }
            other => other,
        }
    }
}

/// Reads a file in chunks of about `chunk_bytes` (a line longer than that makes a chunk of
/// its own).
pub struct Chunks {
    path: PathBuf,
    /// The file, limited to the end of the byte range read ([`Chunks::open_range`]).
    file: std::io::Take<File>,
    header: Vec<u8>,
    /// Bytes read past the last chunk handed out.
    pending: Vec<u8>,
    chunk_bytes: usize,
    next_line: usize,
    eof: bool,
    sha256: Sha256,
    bytes_read: u64,
}

/// How messages name standard input (`-` on the command line).
pub const STDIN_NAME: &str = "<stdin>";

/// Standard input as a [`File`] of its own (a duplicate of descriptor 0), read without
/// seeking.
#[cfg(unix)]
fn stdin_file(_path: &Path) -> Result<File> {
    use std::os::fd::AsFd;
    let fd = std::io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| Error::io(_path, e))?;
    Ok(File::from(fd))
}

/// Standard input is read through its descriptor, on Unix only.
#[cfg(not(unix))]
fn stdin_file(path: &Path) -> Result<File> {
    Err(Error::io(
        path,
        std::io::Error::other("reading standard input is supported on Unix only; give a file path"),
    ))
}

/// Where the last line end outside quotes is in `bytes` (the index just past it), if any.
/// `bytes` starts outside quotes; a line end is `\n`, or `\r` not followed by `\n`.
fn last_record_end(bytes: &[u8]) -> Option<usize> {
    let mut quoted = false;
    let mut last = None;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => last = Some(i + 1),
            // A `\r` at the very end may be the first half of `\r\n`: not an end yet.
            b'\r' if !quoted && i + 1 < bytes.len() && bytes[i + 1] != b'\n' => last = Some(i + 1),
            _ => {}
        }
    }
    last
}

/// Line ends in `bytes` (`\n`, or `\r` not followed by `\n`), as a text editor counts lines.
pub fn count_lines(bytes: &[u8]) -> usize {
    let newlines = memchr::memchr_iter(b'\n', bytes).count();
    let lone_cr = memchr::memchr_iter(b'\r', bytes)
        .filter(|&i| bytes.get(i + 1) != Some(&b'\n'))
        .count();
    newlines + lone_cr
}

impl Chunks {
    /// Opens `path` and reads its header line.
    pub fn open(path: &Path, chunk_bytes: usize) -> Result<Chunks> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Chunks::read(file, path, chunk_bytes)
    }

    /// Reads standard input (a pipe, a terminal or a redirected file, never sought in),
    /// named [`STDIN_NAME`] in messages.
    pub fn stdin(chunk_bytes: usize) -> Result<Chunks> {
        let path = Path::new(STDIN_NAME);
        Chunks::read(stdin_file(path)?, path, chunk_bytes)
    }

    /// Reads the header line of `file` (named `path` in messages).
    fn read(file: File, path: &Path, chunk_bytes: usize) -> Result<Chunks> {
        let file = file.take(u64::MAX);
        let mut chunks = Chunks {
            path: path.to_path_buf(),
            file,
            header: Vec::new(),
            pending: Vec::new(),
            chunk_bytes: chunk_bytes.max(1 << 12),
            next_line: 2,
            eof: false,
            sha256: Sha256::new(),
            bytes_read: 0,
        };
        // The header is the first record (it may hold quoted line breaks).
        let end = loop {
            if let Some(end) = first_record_end(&chunks.pending) {
                break end;
            }
            if chunks.eof {
                break chunks.pending.len();
            }
            if chunks.pending.len() > MAX_HEADER {
                return Err(chunks.too_long(1, "the first line (the header)", MAX_HEADER));
            }
            chunks.fill(chunks.pending.len() + (64 << 10))?;
        };
        chunks.header = chunks.pending.drain(..end).collect();
        chunks.next_line = 1 + count_lines(&chunks.header).max(1);
        Ok(chunks)
    }

    /// Opens `path`, reads its header line, and then reads only the bytes from `start` to
    /// `end` (whole lines after the header: see [`record_start`]), whose first line is line
    /// `first_line` of the file. The SHA-256 is then that of the bytes read.
    pub fn open_range(
        path: &Path,
        chunk_bytes: usize,
        (start, end): (u64, u64),
        first_line: usize,
    ) -> Result<Chunks> {
        let mut chunks = Chunks::open(path, chunk_bytes)?;
        chunks.pending.clear();
        chunks.eof = false;
        let file = chunks.file.get_mut();
        file.seek(SeekFrom::Start(start))
            .map_err(|e| Error::io(path, e))?;
        chunks.file.set_limit(end.saturating_sub(start));
        chunks.next_line = first_line;
        Ok(chunks)
    }

    /// The header line, as read (with its line end).
    pub fn header(&self) -> &[u8] {
        &self.header
    }

    /// The line number of the first line after the header.
    pub fn first_data_line(&self) -> usize {
        1 + count_lines(&self.header).max(1)
    }

    /// Reads until `pending` holds `want` bytes or the file ends.
    fn fill(&mut self, want: usize) -> Result<()> {
        let start = self.pending.len();
        if want <= start {
            return Ok(());
        }
        self.pending.resize(want, 0);
        let mut at = start;
        while at < want {
            match self.file.read(&mut self.pending[at..]) {
                Ok(0) => {
                    self.eof = true;
                    break;
                }
                Ok(n) => at += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io(&self.path, e)),
            }
        }
        self.pending.truncate(at);
        self.sha256.update(&self.pending[start..]);
        self.bytes_read += (at - start) as u64;
        Ok(())
    }

    /// The next chunk, or `None` at the end of the file.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>> {
        let mut want = self.chunk_bytes;
        let end = loop {
            self.fill(want)?;
            if self.eof && self.pending.len() <= want {
                break self.pending.len();
            }
            if let Some(end) = last_record_end(&self.pending[..want]) {
                break end;
            }
            // One record longer than a chunk: read on until it ends, up to the longest
            // line a data file may have (an endless one, `/dev/zero`, must not fill memory).
            if want > self.chunk_bytes + MAX_LINE {
                let line = self.next_line + count_lines(&self.pending);
                return Err(self.too_long(line, "this line", MAX_LINE));
            }
            want *= 2;
        };
        if end == 0 {
            return Ok(None);
        }
        let mut bytes = Vec::with_capacity(self.header.len() + end);
        bytes.extend_from_slice(&self.header);
        bytes.extend_from_slice(&self.pending[..end]);
        self.pending.drain(..end);
        let first_line = self.next_line;
        self.next_line += count_lines(&bytes[self.header.len()..]);
        Ok(Some(Chunk { bytes, first_line }))
    }

    /// The name of what is read, as messages give it.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A record longer than `limit` bytes, on `line`.
    fn too_long(&self, line: usize, what: &str, limit: usize) -> Error {
        Error::data(
            crate::error::Location {
                path: self.path.clone(),
                line: Some(line),
                column: None,
            },
            format!("{what} is longer than {}", size_text(limit as u64)),
            "check that this is the CSV data you meant: a line this long is not a table row",
        )
    }

    /// SHA-256 of the bytes read so far, hex (the whole file's, once every chunk is read).
    pub fn sha256_hex(&self) -> String {
        self.sha256
            .clone()
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }
}

/// Calls `each` with the whole lines of bytes `start..end` of `file` (`start` a line start,
/// `end` one or the file's end), read `piece` bytes at a time into one buffer (at first: a
/// line longer than that doubles it, up to [`MAX_LINE`]), cut after the last `\n` of each
/// read. `None` as soon as `each` gives `None`, or when the file cannot be read, shrinks
/// while it is read or has a longer line: the caller then reads it another way.
///
/// Unlike [`Chunks`], nothing is hashed and the buffer is reused: this is the fast paths'
/// reader (`read_matrix`, `predict` and `eval` on plain rows).
#[cfg(unix)]
pub fn for_each_lines_at(
    file: &File,
    (start, end): (u64, u64),
    piece: usize,
    mut each: impl FnMut(&[u8]) -> Option<()>,
) -> Option<()> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; piece.clamp(1, usize::try_from(end - start).ok()?.max(1))];
    // `buf[..filled]` holds the bytes up to `at` not yet handed out.
    let (mut filled, mut at) = (0, start);
    while at < end {
        if filled == buf.len() {
            if buf.len() > MAX_LINE {
                return None;
            }
            buf.resize(buf.len() * 2, 0);
        }
        let want = (buf.len() - filled).min(usize::try_from(end - at).ok()?);
        let n = file.read_at(&mut buf[filled..filled + want], at).ok()?;
        if n == 0 {
            return None; // the file shrank while it was read
        }
        (filled, at) = (filled + n, at + n as u64);
        let cut = if at == end {
            filled
        } else {
            match memchr::memrchr(b'\n', &buf[..filled]) {
                Some(k) => k + 1,
                None => continue,
            }
        };
        each(&buf[..cut])?;
        buf.copy_within(cut..filled, 0);
        filled -= cut;
    }
    Some(())
}

/// Where the line starting at or after byte `at` of `file` starts: `at` itself if a line
/// ends just before it, else just past the next line end (`\n`, or `\r` not followed by
/// `\n`), or the file's length `len`. Quotes are not looked at (see [`quoted_record_starts`]).
pub fn line_start(file: &mut File, at: u64, len: u64) -> std::io::Result<u64> {
    if at == 0 || at >= len {
        return Ok(at.min(len));
    }
    // From the byte before `at`, to see whether a line ends just there.
    let mut pos = at - 1;
    file.seek(SeekFrom::Start(pos))?;
    let mut buffer = vec![0u8; 64 << 10];
    let mut carry_cr = false;
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            return Ok(len);
        }
        for (i, &b) in buffer[..n].iter().enumerate() {
            let here = pos + i as u64;
            if carry_cr {
                // The `\r` just before `here` ended a line unless this is its `\n`.
                if b != b'\n' {
                    return Ok(here);
                }
                carry_cr = false;
            }
            match b {
                b'\n' => return Ok(here + 1),
                b'\r' => carry_cr = true,
                _ => {}
            }
        }
        pos += n as u64;
    }
}

/// Where the records starting at or after each byte of `targets` (ascending, after the
/// header, which ends at byte `header_end`) start, reading the file from the header on and
/// following its quotes, so that a line break inside a quoted field is not taken for a
/// record's end.
pub fn quoted_record_starts(
    file: &mut File,
    header_end: u64,
    targets: &[u64],
) -> std::io::Result<Vec<u64>> {
    file.seek(SeekFrom::Start(header_end))?;
    let mut out = Vec::with_capacity(targets.len());
    let mut buffer = vec![0u8; 1 << 20];
    let (mut pos, mut quoted, mut carry_cr) = (header_end, false, false);
    // The record start found last: every byte from there on begins a record there or later.
    let mut last_start = header_end;
    loop {
        while out.len() < targets.len() && targets[out.len()] <= last_start {
            out.push(last_start);
        }
        if out.len() == targets.len() {
            return Ok(out);
        }
        let n = file.read(&mut buffer)?;
        if n == 0 {
            out.resize(targets.len(), pos);
            return Ok(out);
        }
        for (i, &b) in buffer[..n].iter().enumerate() {
            let here = pos + i as u64;
            if carry_cr {
                carry_cr = false;
                if b != b'\n' {
                    last_start = here;
                    while out.len() < targets.len() && targets[out.len()] <= last_start {
                        out.push(last_start);
                    }
                }
            }
            match b {
                b'"' => quoted = !quoted,
                b'\n' if !quoted => {
                    last_start = here + 1;
                    while out.len() < targets.len() && targets[out.len()] <= last_start {
                        out.push(last_start);
                    }
                }
                b'\r' if !quoted => carry_cr = true,
                _ => {}
            }
        }
        pos += n as u64;
    }
}

/// Where the first line end outside quotes is in `bytes` (just past it), if any.
fn first_record_end(bytes: &[u8]) -> Option<usize> {
    let mut quoted = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' if !quoted => return Some(i + 1),
            b'\r' if !quoted => {
                return match bytes.get(i + 1) {
                    Some(b'\n') => Some(i + 2),
                    Some(_) => Some(i + 1),
                    None => None,
                };
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks_of(text: &str, chunk_bytes: usize) -> (Vec<(String, usize)>, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        let mut chunks = Chunks::open(&path, chunk_bytes).unwrap();
        chunks.chunk_bytes = chunk_bytes; // below the floor, to cut small files
        let mut out = Vec::new();
        while let Some(c) = chunks.next_chunk().unwrap() {
            out.push((String::from_utf8(c.bytes).unwrap(), c.first_line));
        }
        (out, chunks.sha256_hex())
    }

    #[test]
    fn chunks_are_whole_lines_after_the_header() {
        let text = "a,b\n1,2\n3,4\n5,6\n";
        let (chunks, sha) = chunks_of(text, 6);
        assert_eq!(
            chunks,
            [
                ("a,b\n1,2\n".to_string(), 2),
                ("a,b\n3,4\n".to_string(), 3),
                ("a,b\n5,6\n".to_string(), 4)
            ]
        );
        assert_eq!(sha, crate::pipeline::sha256_hex(text.as_bytes()));
        let (one, _) = chunks_of(text, 1 << 20);
        assert_eq!(one, [(text.to_string(), 2)]);
    }

    #[test]
    fn quoted_line_breaks_and_odd_line_endings_stay_inside_a_chunk() {
        let (chunks, _) = chunks_of("\"a\nb\",c\r\n\"x\ny\",1\r\n2,3", 9);
        assert_eq!(
            chunks,
            [
                ("\"a\nb\",c\r\n\"x\ny\",1\r\n".to_string(), 3),
                ("\"a\nb\",c\r\n2,3".to_string(), 5)
            ]
        );
        let (chunks, _) = chunks_of("a,b\r1,2\r3,4\r", 5);
        assert_eq!(chunks[0], ("a,b\r1,2\r".to_string(), 2));
        assert_eq!(chunks[1], ("a,b\r3,4\r".to_string(), 3));
    }

    #[test]
    fn lines_in_a_chunk_map_to_lines_in_the_file() {
        let chunk = Chunk {
            bytes: Vec::new(),
            first_line: 1000,
        };
        assert_eq!(chunk.file_line(1), 1, "the header");
        assert_eq!(chunk.file_line(2), 1000);
        assert_eq!(chunk.file_line(7), 1005);
    }
}
