//! What every reader does first: refuse what is not CSV text (empty, binary, UTF-16, not
//! UTF-8, JSON), strip a byte-order mark, find the delimiter and read the header. Also the
//! line counting that makes every message name the line a text editor shows.

use std::path::Path;

use crate::error::{Error, Location, Result};

/// What every reader needs first: the text without its byte-order mark, where the header
/// ends, the delimiter and the column names.
pub(super) struct Prologue<'a> {
    pub(super) text: &'a [u8],
    pub(super) header_end: usize,
    pub(super) delimiter: u8,
    pub(super) headers: Vec<String>,
}

/// Reads the header. Only the header line is checked for UTF-8 here; the numeric fast path
/// accepts nothing but ASCII, and the general path checks the whole text.
pub(super) fn prologue<'a>(path: &Path, bytes: &'a [u8]) -> Result<Prologue<'a>> {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let header_end = memchr::memchr2(b'\n', b'\r', text).unwrap_or(text.len());
    let header = &text[..header_end];
    // Anything odd about the first line (blank, binary, not UTF-8, JSON): check the whole
    // text, which says precisely what is wrong.
    if header.iter().all(|b| b.is_ascii_whitespace())
        || header.trim_ascii_start().starts_with(b"{")
        || memchr::memchr(0, header).is_some()
        || std::str::from_utf8(header).is_err()
    {
        check_text(path, bytes)?;
    }
    let delimiter = detect_delimiter(header_line(text));
    let headers = read_headers(path, text, delimiter)?;
    Ok(Prologue {
        text,
        header_end,
        delimiter,
        headers,
    })
}

/// Refuses empty, binary and non-UTF-8 files; returns the text without a byte-order mark.
pub(super) fn check_text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a [u8]> {
    let at = |line: Option<usize>| Location {
        path: path.to_path_buf(),
        line,
        column: None,
    };
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if text.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(Error::data(
            at(None),
            "the file is empty",
            "a CSV file needs a header line with column names and at least one data row",
        ));
    }
    if text.trim_ascii_start().starts_with(b"{") {
        return Err(Error::data(
            at(Some(1)),
            "this looks like a JSON file (a model file?), not CSV",
            "pass the CSV data file; for `mlp predict` and `mlp eval` the model comes first",
        ));
    }
    // UTF-16, as some spreadsheets save "Unicode text": a byte-order mark, or ASCII with
    // every other byte NUL.
    let head = &text[..text.len().min(64)];
    let alternating =
        |start: usize| head.len() >= 4 && head.iter().skip(start).step_by(2).all(|&b| b == 0);
    if text.starts_with(b"\xFF\xFE")
        || text.starts_with(b"\xFE\xFF")
        || alternating(0)
        || alternating(1)
    {
        return Err(Error::data(
            at(None),
            "the file is UTF-16 text, not UTF-8",
            "save it as \"CSV UTF-8\" in the spreadsheet, or convert it with \
             `iconv -f utf-16 -t utf-8 in.csv > out.csv`",
        ));
    }
    if let Some(nul) = memchr::memchr(0, text) {
        return Err(Error::data(
            at(Some(line_of(text, nul))),
            "this is not a text CSV file (it contains NUL bytes)",
            "check that you passed the CSV file and not a spreadsheet, archive or model file; \
             export spreadsheets as CSV (UTF-8)",
        ));
    }
    if let Err(e) = std::str::from_utf8(text) {
        let pos = e.valid_up_to();
        let line = line_of(text, pos);
        let line_start = (0..pos)
            .rev()
            .find(|&i| ends_line(text, i))
            .map_or(0, |p| p + 1);
        return Err(Error::data(
            at(Some(line)),
            format!(
                "byte {} of this line (0x{:02X}) is not valid UTF-8",
                pos - line_start + 1,
                text[pos]
            ),
            "save the file as UTF-8 (for example \"CSV UTF-8\" in a spreadsheet, or \
             `iconv -f latin1 -t utf-8 in.csv > out.csv`)",
        ));
    }
    Ok(text)
}

/// Whether `text[i]` ends a line: `\n`, or a `\r` not followed by `\n`.
fn ends_line(text: &[u8], i: usize) -> bool {
    text[i] == b'\n' || (text[i] == b'\r' && text.get(i + 1) != Some(&b'\n'))
}

/// 1-based line of byte offset `pos`, counting `\n`, `\r\n` and `\r` line ends.
pub(super) fn line_of(text: &[u8], pos: usize) -> usize {
    1 + (0..pos.min(text.len()))
        .filter(|&i| ends_line(text, i))
        .count()
}

/// Line numbers of records from their byte offsets. The csv crate's own line count skips
/// blank lines and `\r` line ends; its byte offsets are exact. Records come in order, so
/// the count carries on from the last one.
pub(super) struct LineCounter<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    pub(super) fn new(text: &'a [u8]) -> Self {
        Self {
            text,
            at: 0,
            line: 1,
        }
    }

    /// The line on which a record the csv crate places at `byte` starts: the first byte
    /// from there that is not a line end (it places a record before the blank lines that
    /// precede it).
    pub(super) fn line(&mut self, byte: u64) -> usize {
        let text = self.text;
        let mut start = usize::try_from(byte).map_or(text.len(), |b| b.min(text.len()));
        while start < text.len() && matches!(text[start], b'\n' | b'\r') {
            start += 1;
        }
        if start < self.at {
            (self.at, self.line) = (0, 1);
        }
        self.line += (self.at..start).filter(|&i| ends_line(text, i)).count();
        self.at = start;
        self.line
    }
}

/// Whether the header is exactly the first line, as the fast path assumes: not after blank
/// lines, and without quotes (a quoted name may span lines).
pub(super) fn header_is_first_line(text: &[u8], header_end: usize) -> bool {
    header_end > 0 && !text[..header_end].contains(&b'"')
}

/// The first line that is not blank (the CSV reader skips blank lines before the header).
fn header_line(text: &[u8]) -> &[u8] {
    text.split(|&b| b == b'\n' || b == b'\r')
        .find(|line| !line.is_empty())
        .unwrap_or(&[])
}

fn detect_delimiter(header: &[u8]) -> u8 {
    let count = |d: u8| header.iter().filter(|&&b| b == d).count();
    if count(b',') > 0 {
        return b',';
    }
    [b';', b'\t', b'|']
        .into_iter()
        .map(|d| (count(d), d))
        .filter(|&(n, _)| n > 0)
        .max_by_key(|&(n, _)| n)
        .map_or(b',', |(_, d)| d)
}

pub(super) fn csv_reader(text: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        // `str::trim`, which removes what `cell::trim` does (its tests check that).
        .trim(csv::Trim::All)
        .from_reader(text)
}

fn read_headers(path: &Path, text: &[u8], delimiter: u8) -> Result<Vec<String>> {
    // Blank lines before the header are skipped, so it is not always line 1.
    let header_line = LineCounter::new(text).line(0);
    let header_at = |column: Option<String>| Location {
        path: path.to_path_buf(),
        line: Some(header_line),
        column,
    };
    let mut reader = csv_reader(text, delimiter);
    let mut record = csv::StringRecord::new();
    reader
        .read_record(&mut record)
        .map_err(|e| Error::data(header_at(None), format!("cannot read the header: {e}"), ""))?;
    let headers: Vec<String> = record.iter().map(str::to_string).collect();
    for (i, name) in headers.iter().enumerate() {
        if name.is_empty() {
            let named = headers.iter().filter(|h| !h.is_empty()).count();
            let trailing = headers[i..].iter().all(String::is_empty);
            let hint = if named == 0 {
                "the first line must be the header: the column names, separated by commas"
            } else if trailing {
                "the header ends with a delimiter (spreadsheets add one for an empty column): \
                 remove the trailing delimiters, or name the column"
            } else {
                "give every column a name in the first line; if it is a row number or index \
                 column, remove it"
            };
            return Err(Error::data(
                header_at(None),
                format!("column {} has no name in the header", i + 1),
                hint,
            ));
        }
        if let Some(j) = headers[..i].iter().position(|h| h == name) {
            return Err(Error::data(
                header_at(Some(name.clone())),
                format!("columns {} and {} are both named '{name}'", j + 1, i + 1),
                "rename one of them so every column name is distinct",
            ));
        }
    }
    Ok(headers)
}
