//! Reading a user's CSV file into typed columns, with messages that say where a problem is.
//!
//! * The first line is the header; every column needs a distinct, non-empty name.
//! * The delimiter is `,` unless the header has none and has `;`, tab or `|` instead.
//! * A UTF-8 byte-order mark, `\r\n` or `\r` line ends, quoted fields and spaces around
//!   values are accepted.
//! * A cell that is empty, `NA`, `N/A`, `NaN`, `null` or `?` (any case) is *missing*.
//! * A column whose present cells are all numbers is [`Column::Numeric`]; one with no
//!   numbers at all (or named in [`ReadOptions::categorical`]) is [`Column::Text`]; one that
//!   is mostly numbers with a few other cells is [`Column::Invalid`], which reports the first
//!   bad cell when the column is used (a column nobody uses does not stop anything).
//!
//! Line numbers are as a text editor counts them: the header is line 1.
//!
//! Purely numeric files without quotes or missing cells take a byte-level fast path that
//! parses in parallel; anything else goes through the `csv` crate. Both give the same values:
//! every number is parsed as `f64` (correctly rounded) and then rounded to `f32`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use crate::error::{Error, Location, Result};

/// How to read a file.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// Columns to treat as categories even if they hold numbers (names not in the header
    /// are ignored).
    pub categorical: Vec<String>,
}

/// One column of a [`Table`].
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers; a missing cell is `NaN`.
    Numeric {
        /// Header name.
        name: String,
        /// One value per row.
        values: Vec<f32>,
        /// How many cells are missing.
        missing: usize,
    },
    /// Categories (text); a missing cell has code [`Column::MISSING`].
    Text {
        /// Header name.
        name: String,
        /// Index into `categories`, one per row.
        codes: Vec<u32>,
        /// The distinct values, in order of first appearance.
        categories: Vec<String>,
        /// How many cells are missing.
        missing: usize,
    },
    /// A column that cannot be used as it is: the first offending cell and why.
    Invalid {
        /// Header name.
        name: String,
        /// Row (0-based, data rows only) of the first bad cell.
        row: usize,
        /// The cell's text.
        value: String,
        /// What is wrong with it.
        reason: String,
        /// What to do about it.
        hint: String,
    },
}

impl Column {
    /// The code of a missing cell in [`Column::Text`].
    pub const MISSING: u32 = u32::MAX;

    /// The column's header name.
    pub fn name(&self) -> &str {
        match self {
            Column::Numeric { name, .. }
            | Column::Text { name, .. }
            | Column::Invalid { name, .. } => name,
        }
    }

    /// Whether row `row` is missing (false for [`Column::Invalid`]).
    pub fn is_missing(&self, row: usize) -> bool {
        match self {
            Column::Numeric { values, .. } => values[row].is_nan(),
            Column::Text { codes, .. } => codes[row] == Self::MISSING,
            Column::Invalid { .. } => false,
        }
    }

    /// Number of missing cells.
    pub fn missing(&self) -> usize {
        match self {
            Column::Numeric { missing, .. } | Column::Text { missing, .. } => *missing,
            Column::Invalid { .. } => 0,
        }
    }

    /// The first present cell of a [`Column::Text`], as (row, text): what to quote when a
    /// text column is used where numbers are needed. `None` for other columns.
    pub fn first_text(&self) -> Option<(usize, &str)> {
        match self {
            Column::Text {
                codes, categories, ..
            } => {
                let row = codes.iter().position(|&c| c != Column::MISSING)?;
                Some((row, categories[codes[row] as usize].as_str()))
            }
            _ => None,
        }
    }
}

/// A CSV file read into columns.
#[derive(Debug, Clone)]
pub struct Table {
    path: PathBuf,
    delimiter: u8,
    columns: Vec<Column>,
    lines: Vec<u32>,
    /// Columns read as categories because the caller asked ([`ReadOptions::categorical`]).
    forced: Vec<String>,
}

impl Table {
    /// Reads the CSV file at `path`.
    pub fn read(path: &Path, options: &ReadOptions) -> Result<Table> {
        let bytes = FileBytes::read(path)?;
        Table::from_bytes(path, &bytes, options)
    }

    /// Reads CSV text held in memory; `path` is used in messages only.
    pub fn from_bytes(path: &Path, bytes: &[u8], options: &ReadOptions) -> Result<Table> {
        let p = prologue(path, bytes)?;
        if !options.categorical.iter().any(|c| p.headers.contains(c))
            && header_is_first_line(p.text, p.header_end)
            && let Some(table) = fast_numeric(path, &p)
        {
            return Ok(table);
        }
        let text = check_text(path, bytes)?;
        read_general(path, text, p.delimiter, p.headers, options)
    }

    /// Whether column `name` was read as categories because the caller asked for it.
    pub fn forced_categorical(&self, name: &str) -> bool {
        self.forced.iter().any(|c| c == name)
    }

    /// The file the table came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The delimiter used (detected from the header).
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Number of data rows.
    pub fn rows(&self) -> usize {
        self.lines.len()
    }

    /// The columns, in file order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// Header names, in file order.
    pub fn headers(&self) -> Vec<&str> {
        self.columns.iter().map(|c| c.name()).collect()
    }

    /// The column named `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.columns.iter().find(|c| c.name() == name)
    }

    /// The line (1-based, header = 1) on which data row `row` starts.
    ///
    /// **Panics** if `row` is not below [`Table::rows`].
    pub fn line(&self, row: usize) -> usize {
        self.lines[row] as usize
    }

    /// A [`Location`] for data row `row` (if any, and if it exists) and column `column`.
    pub fn location(&self, row: Option<usize>, column: Option<&str>) -> Location {
        Location {
            path: self.path.clone(),
            line: row.and_then(|r| self.lines.get(r)).map(|&l| l as usize),
            column: column.map(str::to_string),
        }
    }

    /// The error for using `column` if it is [`Column::Invalid`].
    pub fn check_usable(&self, column: &Column) -> Result<()> {
        match column {
            Column::Invalid {
                name,
                row,
                value,
                reason,
                hint,
            } => Err(Error::data(
                self.location(Some(*row), Some(name)),
                format!("'{value}' {reason}"),
                hint.clone(),
            )),
            _ => Ok(()),
        }
    }

    /// Removes the columns named in `names` (names not in the table are ignored).
    pub fn drop_columns(&mut self, names: &[String]) {
        self.columns
            .retain(|c| !names.iter().any(|n| n == c.name()));
    }

    /// Keeps only the rows for which `keep` is true.
    pub fn retain_rows(&mut self, keep: &[bool]) {
        fn filter<T: Copy>(v: &mut Vec<T>, keep: &[bool]) {
            let mut i = 0;
            v.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        let invalid_rows: Vec<usize> = keep
            .iter()
            .scan(0usize, |n, &k| {
                let r = *n;
                *n += k as usize;
                Some(r)
            })
            .collect();
        for column in &mut self.columns {
            match column {
                Column::Numeric {
                    values, missing, ..
                } => {
                    filter(values, keep);
                    *missing = values.iter().filter(|v| v.is_nan()).count();
                }
                Column::Text { codes, missing, .. } => {
                    filter(codes, keep);
                    *missing = codes.iter().filter(|&&c| c == Column::MISSING).count();
                }
                Column::Invalid { row, .. } => {
                    // The bad cell may have been dropped; keep pointing at a real row.
                    *row = invalid_rows[*row];
                }
            }
        }
        filter(&mut self.lines, keep);
    }
}

/// Whether a cell (already trimmed) means "no value".
pub fn is_missing_token(cell: &str) -> bool {
    matches!(cell.len(), 0..=4)
        && (cell.is_empty()
            || cell == "?"
            || cell.eq_ignore_ascii_case("na")
            || cell.eq_ignore_ascii_case("n/a")
            || cell.eq_ignore_ascii_case("nan")
            || cell.eq_ignore_ascii_case("null"))
}

/// What a cell holds.
enum Cell {
    Missing,
    Number(f32),
    /// A number, but not one a network can use (`inf`, or beyond ±3.4e38).
    BadNumber(&'static str),
    Text,
}

fn classify(cell: &str) -> Cell {
    if is_missing_token(cell) {
        return Cell::Missing;
    }
    match fast_float2::parse::<f64, _>(cell) {
        Ok(v) if v.is_finite() && v.abs() <= f32::MAX as f64 => Cell::Number(v as f32),
        Ok(v) if v.is_finite() => {
            Cell::BadNumber("is too large for 32-bit floats (beyond ±3.4e38)")
        }
        Ok(_) => Cell::BadNumber("is not a finite number"),
        Err(_) => Cell::Text,
    }
}

/// A file's bytes: memory-mapped when large (no copy), read into memory otherwise.
pub struct FileBytes {
    inner: FileBytesInner,
}

enum FileBytesInner {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl FileBytes {
    /// Files at least this large are mapped rather than copied.
    const MAP_AT: u64 = 4 << 20;

    /// The bytes of the file at `path`.
    pub fn read(path: &Path) -> Result<FileBytes> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        let len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        if len >= Self::MAP_AT {
            // SAFETY: the map is read-only and dropped before this call's caller returns;
            // the one hazard is another process truncating the file while it is being read,
            // which (as with any reader of a file being rewritten) ends the process with
            // SIGBUS instead of an error. Reading 50 MB this way is about 20 ms faster.
            if let Ok(map) = unsafe { memmap2::MmapOptions::new().populate().map(&file) } {
                return Ok(FileBytes {
                    inner: FileBytesInner::Mapped(map),
                });
            }
        }
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Ok(FileBytes {
            inner: FileBytesInner::Owned(bytes),
        })
    }
}

impl std::ops::Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.inner {
            FileBytesInner::Mapped(m) => m,
            FileBytesInner::Owned(v) => v,
        }
    }
}

/// What every reader needs first: the text without its byte-order mark, where the header
/// ends, the delimiter and the column names.
struct Prologue<'a> {
    text: &'a [u8],
    header_end: usize,
    delimiter: u8,
    headers: Vec<String>,
}

/// Reads the header. Only the header line is checked for UTF-8 here; the numeric fast path
/// accepts nothing but ASCII, and the general path checks the whole text.
fn prologue<'a>(path: &Path, bytes: &'a [u8]) -> Result<Prologue<'a>> {
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
fn check_text<'a>(path: &Path, bytes: &'a [u8]) -> Result<&'a [u8]> {
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
fn line_of(text: &[u8], pos: usize) -> usize {
    1 + (0..pos.min(text.len()))
        .filter(|&i| ends_line(text, i))
        .count()
}

/// Line numbers of records from their byte offsets. The csv crate's own line count skips
/// blank lines and `\r` line ends; its byte offsets are exact. Records come in order, so
/// the count carries on from the last one.
struct LineCounter<'a> {
    text: &'a [u8],
    at: usize,
    line: usize,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a [u8]) -> Self {
        Self {
            text,
            at: 0,
            line: 1,
        }
    }

    /// The line on which a record the csv crate places at `byte` starts: the first byte
    /// from there that is not a line end (it places a record before the blank lines that
    /// precede it).
    fn line(&mut self, byte: u64) -> usize {
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
fn header_is_first_line(text: &[u8], header_end: usize) -> bool {
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

fn csv_reader(text: &[u8], delimiter: u8) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
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

fn no_rows(path: &Path) -> Error {
    Error::data(
        Location {
            path: path.to_path_buf(),
            line: None,
            column: None,
        },
        "the file has a header but no data rows",
        "add data rows below the header line",
    )
}

/// Looks like a number written with a decimal comma (`3,14`).
fn decimal_comma(value: &str) -> bool {
    let mut parts = value.splitn(2, ',');
    let (a, b) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    !a.is_empty()
        && !b.is_empty()
        && a.trim_start_matches('-')
            .bytes()
            .all(|c| c.is_ascii_digit())
        && b.bytes().all(|c| c.is_ascii_digit())
}

/// The general reader: the `csv` crate, two passes (classify columns, then fill them).
fn read_general(
    path: &Path,
    text: &[u8],
    delimiter: u8,
    headers: Vec<String>,
    options: &ReadOptions,
) -> Result<Table> {
    let width = headers.len();

    #[derive(Default, Clone)]
    struct Stats {
        numbers: usize,
        texts: usize,
        /// Texts that look like numbers written with a decimal comma (`3,14`).
        decimal_commas: usize,
        first_text: Option<(usize, String)>,
        first_bad: Option<(usize, String, &'static str)>,
    }
    let mut stats = vec![Stats::default(); width];
    let mut lines = Vec::new();
    let mut reader = csv_reader(text, delimiter);
    let mut record = csv::StringRecord::new();
    let mut first = true;
    let mut counter = LineCounter::new(text);
    loop {
        let more = reader.read_record(&mut record).map_err(|e| {
            let line = e.position().map(|p| line_of(text, p.byte() as usize));
            Error::data(
                Location {
                    path: path.to_path_buf(),
                    line,
                    column: None,
                },
                format!("cannot read this line: {e}"),
                "check the quoting on this line",
            )
        })?;
        if !more {
            break;
        }
        let line = record.position().map_or(0, |p| counter.line(p.byte()));
        if std::mem::take(&mut first) {
            continue; // the header
        }
        // A line holding only delimiters or spaces is blank: no row, whatever its width.
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != width {
            return Err(Error::data(
                Location {
                    path: path.to_path_buf(),
                    line: Some(line),
                    column: None,
                },
                format!(
                    "this row has {} fields but the header has {width} columns",
                    record.len()
                ),
                if record.iter().any(|f| f.contains(['\n', '\r'])) {
                    "a quoted field starting on this line runs over several lines: check for \
                     a quote (\") that is never closed"
                } else if delimiter == b',' {
                    "check for a missing or extra comma; put quotes around values that \
                     contain commas"
                } else {
                    "check for a missing or extra delimiter on this line"
                },
            ));
        }
        let row = lines.len();
        lines.push(line as u32);
        for (s, cell) in stats.iter_mut().zip(record.iter()) {
            match classify(cell) {
                Cell::Missing => {}
                Cell::Number(_) => s.numbers += 1,
                Cell::BadNumber(why) => {
                    s.numbers += 1;
                    if s.first_bad.is_none() {
                        s.first_bad = Some((row, cell.to_string(), why));
                    }
                }
                Cell::Text => {
                    s.texts += 1;
                    s.decimal_commas += usize::from(decimal_comma(cell));
                    if s.first_text.is_none() {
                        s.first_text = Some((row, cell.to_string()));
                    }
                }
            }
        }
    }
    if lines.is_empty() {
        return Err(no_rows(path));
    }

    // Decide each column's kind.
    #[derive(Clone, Copy, PartialEq)]
    enum Kind {
        Numeric,
        Text,
        Invalid,
    }
    let mut columns: Vec<Column> = Vec::with_capacity(width);
    let mut kinds = Vec::with_capacity(width);
    for (name, s) in headers.iter().zip(&stats) {
        let forced = options.categorical.contains(name);
        let kind = if !forced && s.texts > 0 && s.decimal_commas == s.texts {
            // Every text is a number with a decimal comma: not categories.
            let (row, value) = s.first_text.clone().unwrap_or_default();
            columns.push(Column::Invalid {
                name: name.clone(),
                row,
                value,
                reason: "is a number written with a decimal comma".into(),
                hint: "write decimals with a point (3.14), not a comma".into(),
            });
            Kind::Invalid
        } else if forced || (s.texts > 0 && s.numbers < s.texts) {
            Kind::Text
        } else if let Some((row, value, why)) = s.first_bad.clone() {
            columns.push(Column::Invalid {
                name: name.clone(),
                row,
                value,
                reason: why.to_string(),
                hint: "fix the value, or mark it as missing (an empty cell or NA)".into(),
            });
            Kind::Invalid
        } else if let Some((row, value)) = s.first_text.clone() {
            let hint = if decimal_comma(&value) {
                "write decimals with a point (3.14), not a comma".to_string()
            } else {
                format!(
                    "fix the value, mark it as missing (an empty cell or NA), or pass \
                     --categorical {name} if the column holds categories"
                )
            };
            columns.push(Column::Invalid {
                name: name.clone(),
                row,
                value,
                reason: format!(
                    "is not a number, but {} of the {} values in this column are",
                    s.numbers,
                    s.numbers + s.texts
                ),
                hint,
            });
            Kind::Invalid
        } else {
            Kind::Numeric
        };
        if kind == Kind::Numeric {
            columns.push(Column::Numeric {
                name: name.clone(),
                values: Vec::with_capacity(lines.len()),
                missing: 0,
            });
        } else if kind == Kind::Text {
            columns.push(Column::Text {
                name: name.clone(),
                codes: Vec::with_capacity(lines.len()),
                categories: Vec::new(),
                missing: 0,
            });
        }
        kinds.push(kind);
    }

    // Second pass: fill numeric and text columns.
    let mut index: Vec<HashMap<String, u32>> = vec![HashMap::new(); width];
    let mut reader = csv_reader(text, delimiter);
    let mut first = true;
    while reader.read_record(&mut record).unwrap_or(false) {
        if std::mem::take(&mut first) || record.iter().all(str::is_empty) {
            continue; // header, or a blank line skipped in the first pass
        }
        for ((column, cell), index) in columns.iter_mut().zip(record.iter()).zip(&mut index) {
            match column {
                Column::Numeric {
                    values, missing, ..
                } => match classify(cell) {
                    Cell::Number(v) => values.push(v),
                    _ => {
                        values.push(f32::NAN);
                        *missing += 1;
                    }
                },
                Column::Text {
                    codes,
                    categories,
                    missing,
                    ..
                } => {
                    if is_missing_token(cell) {
                        codes.push(Column::MISSING);
                        *missing += 1;
                    } else {
                        let next = categories.len() as u32;
                        let code = *index.entry(cell.to_string()).or_insert_with(|| {
                            categories.push(cell.to_string());
                            next
                        });
                        codes.push(code);
                    }
                }
                Column::Invalid { .. } => {}
            }
        }
    }
    let forced = options
        .categorical
        .iter()
        .filter(|c| columns.iter().any(|col| col.name() == c.as_str()))
        .cloned()
        .collect();
    Ok(Table {
        path: path.to_path_buf(),
        delimiter,
        columns,
        lines,
        forced,
    })
}

/// The byte-level path for files of plain numbers: no quotes, no missing cells, no blank
/// lines. Returns `None` (and the caller uses the general reader) on anything else.
fn fast_numeric(path: &Path, p: &Prologue<'_>) -> Option<Table> {
    let (delimiter, headers) = (p.delimiter, &p.headers);
    let width = headers.len();
    let body = skip_line_end(p.text, p.header_end);
    let (values, rows) = parse_numeric_body(body, delimiter, width)?;
    if rows == 0 {
        return None;
    }
    let matrix = Array2::from_shape_vec((rows, width), values).ok()?;
    let columns = headers
        .iter()
        .zip(matrix.columns())
        .map(|(name, col)| Column::Numeric {
            name: name.clone(),
            values: col.to_vec(),
            missing: 0,
        })
        .collect();
    Some(Table {
        path: path.to_path_buf(),
        delimiter,
        columns,
        lines: (0..rows as u32).map(|r| r + 2).collect(),
        forced: Vec::new(),
    })
}

/// The text after the line end at `end` (`\n`, `\r\n` or `\r`).
fn skip_line_end(text: &[u8], end: usize) -> &[u8] {
    let rest = &text[end.min(text.len())..];
    let rest = rest.strip_prefix(b"\r").unwrap_or(rest);
    rest.strip_prefix(b"\n").unwrap_or(rest)
}

/// Reads a CSV file of numbers with a header into one row-major matrix.
///
/// Uses the byte-level fast path (split over [`num_threads`](crate::threads::num_threads)
/// threads for large files) when the file is plain numbers; otherwise reads it with the
/// general reader and refuses missing or non-numeric cells with their location.
pub fn read_matrix(path: &Path) -> Result<(Vec<String>, Array2<f32>)> {
    let bytes = FileBytes::read(path)?;
    let Prologue {
        text,
        header_end,
        delimiter,
        headers,
    } = prologue(path, &bytes)?;
    let body = skip_line_end(text, header_end);
    if header_is_first_line(text, header_end)
        && let Some((values, rows)) = parse_numeric_body(body, delimiter, headers.len())
        && rows > 0
    {
        let m = Array2::from_shape_vec((rows, headers.len()), values).expect("rows × width values");
        return Ok((headers, m));
    }
    let text = check_text(path, &bytes)?;
    let table = read_general(
        path,
        text,
        delimiter,
        headers.clone(),
        &ReadOptions::default(),
    )?;
    let mut m = Array2::zeros((table.rows(), headers.len()));
    for (j, column) in table.columns().iter().enumerate() {
        table.check_usable(column)?;
        match column {
            Column::Numeric { values, .. } => {
                if let Some(row) = values.iter().position(|v| v.is_nan()) {
                    return Err(Error::data(
                        table.location(Some(row), Some(column.name())),
                        "this cell is missing",
                        "fill in the value",
                    ));
                }
                m.column_mut(j).assign(&ndarray::ArrayView1::from(values));
            }
            Column::Text { .. } => {
                let (row, value) = column.first_text().unwrap_or((0, ""));
                return Err(Error::data(
                    table.location(Some(row), Some(column.name())),
                    format!("'{value}' is not a number"),
                    "this reader needs numbers in every column",
                ));
            }
            Column::Invalid { .. } => unreachable!("checked above"),
        }
    }
    Ok((headers, m))
}

/// Parses `body` (the lines after the header) as `width` plain numbers per line into a
/// row-major vector, in parallel for large inputs. `None` if any line is not plain numbers.
fn parse_numeric_body(body: &[u8], delimiter: u8, width: usize) -> Option<(Vec<f32>, usize)> {
    // Split into chunks at line ends, one per thread; small inputs are one chunk.
    const MIN_CHUNK: usize = 1 << 20;
    let threads = crate::threads::num_threads()
        .min(body.len() / MIN_CHUNK)
        .max(1);
    if threads == 1 {
        // One pass, growing the output: no line count needed. The first line's length gives
        // a size estimate that avoids regrowing for evenly formatted files.
        let first = memchr::memchr(b'\n', body)
            .map_or(body.len(), |p| p + 1)
            .max(1);
        let rows = body.len() / first + 1;
        let mut values = Vec::with_capacity((rows + rows / 8).saturating_mul(width));
        return parse_chunk(body, delimiter, width, &mut values)
            .then(|| (values.len() / width.max(1), values))
            .map(|(rows, values)| (values, rows));
    }
    let mut chunks = Vec::with_capacity(threads);
    let mut start = 0;
    for t in 1..=threads {
        let mut end = body.len() * t / threads;
        if t < threads {
            end = match memchr::memchr(b'\n', &body[end..]) {
                Some(p) => end + p + 1,
                None => body.len(),
            };
        }
        if end > start {
            chunks.push(&body[start..end.max(start)]);
        }
        start = end.max(start);
    }
    // Every line is a row: count them to size the output and give each chunk its part.
    let counts: Vec<usize> = chunks.iter().map(|c| count_lines(c)).collect();
    let rows: usize = counts.iter().sum();
    let mut values = vec![0f32; rows.checked_mul(width)?];
    let mut parts = Vec::with_capacity(chunks.len());
    let mut rest = values.as_mut_slice();
    for &n in &counts {
        let (part, tail) = rest.split_at_mut(n * width);
        parts.push(part);
        rest = tail;
    }
    let ok = std::thread::scope(|s| {
        let handles: Vec<_> = chunks
            .iter()
            .zip(parts)
            .map(|(chunk, part)| {
                s.spawn(move || {
                    let mut sink = SliceSink {
                        out: part,
                        filled: 0,
                    };
                    parse_chunk(chunk, delimiter, width, &mut sink) && sink.filled == sink.out.len()
                })
            })
            .collect();
        handles.into_iter().all(|h| h.join().unwrap_or(false))
    });
    ok.then_some((values, rows))
}

/// Number of lines in `chunk` (a last line without a line end counts).
fn count_lines(chunk: &[u8]) -> usize {
    let newlines = memchr::memchr_iter(b'\n', chunk).count();
    newlines + usize::from(chunk.last().is_some_and(|&b| b != b'\n'))
}

/// Exact powers of ten as `f64` (10²² is the largest that is).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// Parses a decimal number at `p`: `[+-]digits[.digits][(e|E)[+-]digits]`. Returns the
/// value correctly rounded to `f64` and the bytes used, or `None` when `p` does not start
/// with a number.
///
/// Most CSV numbers have at most 19 digits and a small exponent; then the mantissa and the
/// power of ten are both exact in `f64` and one division or multiplication rounds correctly
/// (Clinger's fast path). Anything else goes to `fast-float2`, which is correct for every
/// input, so the result never depends on which branch ran.
///
/// # Safety
/// A byte that cannot continue a number (a line end, say) must follow within the readable
/// memory at `p`: the parser reads up to it without bounds checks.
#[inline(always)]
unsafe fn parse_number(p: *const u8) -> Option<(f64, usize)> {
    unsafe {
        let at = |i: usize| *p.add(i);
        let first = at(0);
        let negative = first == b'-';
        let mut i = usize::from(first == b'-' || first == b'+');
        let mut mantissa: u64 = 0;
        let int_start = i;
        i = digit_run(p, i, &mut mantissa);
        let mut digits = i - int_start;
        let mut exponent: i64 = 0;
        if at(i) == b'.' {
            let frac_start = i + 1;
            i = digit_run(p, frac_start, &mut mantissa);
            digits += i - frac_start;
            exponent = -((i - frac_start) as i64);
        }
        if digits == 0 {
            return None;
        }
        if matches!(at(i), b'e' | b'E') {
            let mut j = i + 1;
            let negative_exp = at(j) == b'-';
            j += usize::from(matches!(at(j), b'-' | b'+'));
            let start = j;
            let mut e: i64 = 0;
            loop {
                let d = at(j).wrapping_sub(b'0');
                if d > 9 {
                    break;
                }
                e = (e * 10 + d as i64).min(1 << 20);
                j += 1;
            }
            if j == start {
                return None; // "1e" or "1e+": not a number this parser accepts
            }
            exponent += if negative_exp { -e } else { e };
            i = j;
        }
        // Up to 19 digits fit in a u64 without wrapping (leading zeros count, so a long
        // run of them merely takes the slower path).
        if digits <= 19 && mantissa <= 1 << 53 && (-22..=22).contains(&exponent) {
            let m = mantissa as f64;
            let v = if exponent < 0 {
                m / POW10[(-exponent) as usize]
            } else {
                m * POW10[exponent as usize]
            };
            // The sign bit is set, not branched on: signs in data are a coin toss for the
            // branch predictor.
            return Some((f64::from_bits(v.to_bits() | (u64::from(negative) << 63)), i));
        }
        let v: f64 = fast_float2::parse(std::slice::from_raw_parts(p, i)).ok()?;
        Some((v, i))
    }
}

/// Reads the run of ASCII digits starting at `p + i` into `mantissa` (wrapping: only to be
/// trusted for at most 19 digits) and returns the index after the run.
///
/// # Safety
/// As for [`parse_number`].
#[inline(always)]
unsafe fn digit_run(p: *const u8, mut i: usize, mantissa: &mut u64) -> usize {
    loop {
        // SAFETY: a non-digit follows within readable memory.
        let d = unsafe { *p.add(i) }.wrapping_sub(b'0');
        if d > 9 {
            return i;
        }
        *mantissa = mantissa.wrapping_mul(10).wrapping_add(d as u64);
        i += 1;
    }
}

/// Where [`parse_chunk`] puts numbers, a line (`width` values) at a time.
trait Sink {
    /// Room for `n` more values, or `None`.
    fn reserve_line(&mut self, n: usize) -> Option<*mut f32>;
    /// The `n` values written through the last [`reserve_line`](Sink::reserve_line) count.
    fn commit(&mut self, n: usize);
}

impl Sink for Vec<f32> {
    #[inline]
    fn reserve_line(&mut self, n: usize) -> Option<*mut f32> {
        self.reserve(n);
        Some(self.spare_capacity_mut().as_mut_ptr().cast())
    }
    #[inline]
    fn commit(&mut self, n: usize) {
        // SAFETY: `reserve_line` made room and the caller wrote the n values.
        unsafe { self.set_len(self.len() + n) };
    }
}

/// A slice filled from the front.
struct SliceSink<'a> {
    out: &'a mut [f32],
    filled: usize,
}

impl Sink for SliceSink<'_> {
    #[inline]
    fn reserve_line(&mut self, n: usize) -> Option<*mut f32> {
        (self.filled + n <= self.out.len()).then(|| self.out[self.filled..].as_mut_ptr())
    }
    #[inline]
    fn commit(&mut self, n: usize) {
        self.filled += n;
    }
}

/// Parses lines of exactly `width` plain numbers into `out`; false on anything else.
fn parse_chunk(chunk: &[u8], delimiter: u8, width: usize, out: &mut impl Sink) -> bool {
    // Everything up to the last `\n` is parsed without bounds checks: a number stops at the
    // first byte that cannot continue it, and a line end is such a byte. A last line without
    // one is parsed from a copy that has it.
    let end = memchr::memrchr(b'\n', chunk).map_or(0, |p| p + 1);
    // SAFETY: `chunk[..end]` ends with `\n`.
    if !unsafe { parse_lines(&chunk[..end], delimiter, width, out) } {
        return false;
    }
    if end == chunk.len() {
        return true;
    }
    let mut last = chunk[end..].to_vec();
    last.push(b'\n');
    // SAFETY: `last` ends with `\n`.
    unsafe { parse_lines(&last, delimiter, width, out) }
}

/// [`parse_chunk`] for text that ends with `\n`.
///
/// # Safety
/// `text` must be empty or end with `\n`.
unsafe fn parse_lines(text: &[u8], delimiter: u8, width: usize, out: &mut impl Sink) -> bool {
    let p = text.as_ptr();
    let n = text.len();
    let mut i = 0;
    while i < n {
        let Some(line) = out.reserve_line(width) else {
            return false;
        };
        for col in 0..width {
            // SAFETY: i < n and the text ends with a line end.
            let Some((v, used)) = (unsafe { parse_number(p.add(i)) }) else {
                return false;
            };
            // A value the general reader would treat differently: `inf`, too large.
            if !v.is_finite() || v.abs() > f32::MAX as f64 {
                return false;
            }
            // SAFETY: `reserve_line` made room for `width` values.
            unsafe { *line.add(col) = v as f32 };
            i += used;
            // SAFETY: a number is followed by at least the final line end.
            let next = unsafe { *p.add(i) };
            if col + 1 < width {
                if next != delimiter {
                    return false;
                }
                i += 1;
            } else {
                match next {
                    b'\n' => i += 1,
                    // SAFETY: `\r` is not the last byte (the text ends with `\n`).
                    b'\r' if unsafe { *p.add(i + 1) } == b'\n' => i += 2,
                    _ => return false,
                }
            }
        }
        out.commit(width);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Table> {
        Table::from_bytes(Path::new("t.csv"), text.as_bytes(), &ReadOptions::default())
    }

    fn numbers(t: &Table, name: &str) -> Vec<f32> {
        match t.column(name).unwrap() {
            Column::Numeric { values, .. } => values.clone(),
            other => panic!("{name} is {other:?}"),
        }
    }

    #[test]
    fn numeric_file_fast_and_general_paths_agree() {
        let plain = "a,b\n1,2.5\n-3,4e2\n";
        let quoted = "a,b\n\"1\",2.5\n-3,\"4e2\"\n";
        for text in [plain, quoted] {
            let t = read(text).unwrap();
            assert_eq!(numbers(&t, "a"), vec![1.0, -3.0]);
            assert_eq!(numbers(&t, "b"), vec![2.5, 400.0]);
            assert_eq!((t.line(0), t.line(1)), (2, 3));
        }
    }

    #[test]
    fn bom_crlf_cr_and_spaces_are_accepted() {
        for text in [
            "\u{feff}x,y\r\n1,2\r\n3,4\r\n",
            "x,y\r1,2\r3,4",
            "x , y\n 1 , 2\n3,4\n\n",
        ] {
            let t = read(text).unwrap();
            assert_eq!(t.headers(), vec!["x", "y"], "{text:?}");
            assert_eq!(numbers(&t, "y"), vec![2.0, 4.0], "{text:?}");
        }
    }

    #[test]
    fn text_columns_become_categories_and_missing_cells_are_counted() {
        let t = read("size,color,label\n1,red,a\nNA,blue,b\n3,,a\n?,red,c\n").unwrap();
        let size = t.column("size").unwrap();
        assert_eq!(size.missing(), 2);
        assert!(size.is_missing(1) && !size.is_missing(2));
        match t.column("color").unwrap() {
            Column::Text {
                codes,
                categories,
                missing,
                ..
            } => {
                assert_eq!(categories, &["red", "blue"]);
                assert_eq!(codes, &[0, 1, Column::MISSING, 0]);
                assert_eq!(*missing, 1);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn mostly_numeric_column_reports_its_first_bad_cell() {
        let t = read("a,b\n1,2\n2,x\n3,4\n4,5\n").unwrap();
        let err = t
            .check_usable(t.column("b").unwrap())
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "t.csv, line 3, column 'b': 'x' is not a number, but 3 of the 4 values in this \
             column are\n  hint: fix the value, mark it as missing (an empty cell or NA), or \
             pass --categorical b if the column holds categories"
        );
    }

    #[test]
    fn infinite_and_huge_values_are_reported() {
        let t = read("a,b\n1,2\ninf,3\n4,1e39\n").unwrap();
        let err = t
            .check_usable(t.column("a").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("t.csv, line 3, column 'a': 'inf' is not a finite number"),
            "{err}"
        );
        let err = t
            .check_usable(t.column("b").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 4, column 'b': '1e39' is too large"),
            "{err}"
        );
        // 1e30 fits in f32 and is kept.
        let t = read("a\n1e30\n-1e30\n").unwrap();
        assert_eq!(numbers(&t, "a"), vec![1e30, -1e30]);
    }

    #[test]
    fn forced_categorical_keeps_number_text() {
        let options = ReadOptions {
            categorical: vec!["zip".into()],
        };
        let t = Table::from_bytes(
            Path::new("t.csv"),
            b"zip,y\n10001,1\n94110,2\n10001,3\n",
            &options,
        )
        .unwrap();
        match t.column("zip").unwrap() {
            Column::Text { categories, .. } => assert_eq!(categories, &["10001", "94110"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn structural_problems_name_the_line() {
        let cases = [
            ("", "t.csv: the file is empty"),
            ("a,b\n", "t.csv: the file has a header but no data rows"),
            (
                "a,b\n1,2\n3\n",
                "t.csv, line 3: this row has 1 fields but the header has 2 columns",
            ),
            (
                "a,a\n1,2\n",
                "t.csv, line 1, column 'a': columns 1 and 2 are both named 'a'",
            ),
            (
                "a,,c\n1,2,3\n",
                "t.csv, line 1: column 2 has no name in the header",
            ),
        ];
        for (text, want) in cases {
            let err = read(text).unwrap_err().to_string();
            assert!(err.starts_with(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn binary_and_non_utf8_files_are_refused() {
        let err = Table::from_bytes(
            Path::new("t.csv"),
            b"a,b\n1,\x002\n",
            &ReadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("t.csv, line 2: this is not a text CSV file"),
            "{err}"
        );
        let err = Table::from_bytes(
            Path::new("t.csv"),
            b"a,b\n1,2\ncaf\xe9,3\n",
            &ReadOptions::default(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("t.csv, line 3: byte 4 of this line (0xE9) is not valid UTF-8"),
            "{err}"
        );
    }

    #[test]
    fn other_delimiters_are_detected() {
        for text in ["a;b\n1;2\n", "a\tb\n1\t2\n", "a|b\n1|2\n"] {
            let t = read(text).unwrap();
            assert_eq!(numbers(&t, "b"), vec![2.0], "{text:?}");
        }
        // Decimal commas get their own hint.
        let t = read("a;b\n1,5;2\n2,5;3\n3;4\n4;5\n").unwrap();
        let err = t
            .check_usable(t.column("a").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("write decimals with a point"), "{err}");
    }

    #[test]
    fn line_numbers_count_every_line_end_and_blank_line() {
        // The csv crate's own count would say 2, 3, 3, 1 and 4 here.
        for (text, line) in [
            ("a,b,c\r\n1,2,3\r\n4,5\r\n", 3),
            ("a,b,c\n1,2,3\n\n4,5\n", 4),
            ("a,b,c\r\n1,2,3\r\n\r\n4,5\r\n", 4),
            ("a,b,c\r1,2,3\r\r4,5\r", 4),
            ("a,b,c\n\n1,\"2\n2\",3\n\n\n4,5\n", 7),
        ] {
            let err = read(text).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("t.csv, line {line}: this row has 2 fields")),
                "{text:?}: {err}"
            );
        }
        let t = read("x,y\r\n1,2\r\n\r\n3,oops\r\n4,5\r\n6,7\r\n").unwrap();
        assert_eq!((t.line(0), t.line(1), t.line(2)), (2, 4, 5));
    }

    #[test]
    fn spreadsheet_quirks_are_read_or_named() {
        // Rows of only delimiters are blank, whatever their width.
        let t = read("a,b\n1,2\n,\n\n3,4\n").unwrap();
        assert_eq!((t.rows(), t.line(1)), (2, 5));
        // A header after blank lines is not data, even when it looks like numbers.
        let t = read("\n\n1,2\n3,4\n").unwrap();
        assert_eq!((t.headers(), t.rows(), t.line(0)), (vec!["1", "2"], 1, 4));
        // ... and the delimiter is found on it.
        let t = read("\na;b\n1;2\n").unwrap();
        assert_eq!(t.headers(), vec!["a", "b"]);
        // A column of decimal commas only is not a column of categories.
        let t = read("a;b\n1,5;x\n2,25;y\n").unwrap();
        let err = t
            .check_usable(t.column("a").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(
                "t.csv, line 2, column 'a': '1,5' is a number written with a \
                             decimal comma"
            ),
            "{err}"
        );
        for (text, want) in [
            (
                &b"\xFF\xFEa\x00,\x00b\x00"[..],
                "t.csv: the file is UTF-16 text",
            ),
            (
                b"a\x00,\x00b\x00\n\x001\x00",
                "t.csv: the file is UTF-16 text",
            ),
            (
                b"{\"format\": 1}",
                "t.csv, line 1: this looks like a JSON file",
            ),
            (b"a,b,\n1,2,\n", "t.csv, line 1: column 3 has no name"),
        ] {
            let err = Table::from_bytes(Path::new("t.csv"), text, &ReadOptions::default())
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(want), "{err}");
        }
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]

            /// The byte-level fast path and the csv-crate reader agree on every plain numeric
            /// file, line numbers included.
            #[test]
            fn fast_and_general_readers_agree(
                cells in proptest::collection::vec(
                    proptest::collection::vec(
                        proptest::prop_oneof![
                            (-1e6f64..1e6).prop_map(|v| format!("{v}")),
                            (-1e30f64..1e30).prop_map(|v| format!("{v:e}")),
                            (-1000i64..1000).prop_map(|v| v.to_string()),
                        ],
                        3,
                    ),
                    1..40,
                ),
                crlf in proptest::bool::ANY,
                final_newline in proptest::bool::ANY,
            ) {
                let eol = if crlf { "\r\n" } else { "\n" };
                let mut text = format!("a,b,c{eol}");
                for (i, row) in cells.iter().enumerate() {
                    text.push_str(&row.join(","));
                    if i + 1 < cells.len() || final_newline {
                        text.push_str(eol);
                    }
                }
                let bytes = text.as_bytes();
                let headers: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
                let p = prologue(Path::new("t.csv"), bytes).unwrap();
                prop_assert_eq!(&p.headers, &headers);
                let fast = fast_numeric(Path::new("t.csv"), &p);
                prop_assert!(fast.is_some(), "plain numbers take the fast path: {text:?}");
                let fast = fast.unwrap();
                let general = read_general(
                    Path::new("t.csv"),
                    bytes,
                    b',',
                    headers,
                    &ReadOptions::default(),
                )
                .unwrap();
                prop_assert_eq!(&fast.columns, &general.columns);
                prop_assert_eq!(&fast.lines, &general.lines);
            }

            /// Any bytes at all: an error or a consistent table, never a panic.
            #[test]
            fn any_bytes_read_or_fail_cleanly(
                bytes in proptest::collection::vec(proptest::prop_oneof![
                    proptest::num::u8::ANY,
                    proptest::sample::select(b",;\t|\"\r\n 0123456789.-eENA?".to_vec()),
                ], 0..400),
            ) {
                if let Ok(t) = Table::from_bytes(Path::new("t.csv"), &bytes, &ReadOptions::default()) {
                    prop_assert!(t.rows() > 0);
                    prop_assert!(t.lines.windows(2).all(|w| w[0] < w[1]), "{:?}", t.lines);
                    for column in t.columns() {
                        match column {
                            Column::Numeric { values, .. } => prop_assert_eq!(values.len(), t.rows()),
                            Column::Text { codes, .. } => prop_assert_eq!(codes.len(), t.rows()),
                            Column::Invalid { row, .. } => prop_assert!(*row < t.rows()),
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn parallel_fast_path_matches_single_chunk() {
        // Large enough for several chunks.
        let mut text = String::from("a,b,c\n");
        for i in 0..120_000 {
            text.push_str(&format!("{}.25,{},-{}e-3\n", i, i % 7, i));
        }
        let (values, rows) = parse_numeric_body(&text.as_bytes()[6..], b',', 3).unwrap();
        assert_eq!(rows, 120_000);
        let mut single = Vec::new();
        assert!(parse_chunk(&text.as_bytes()[6..], b',', 3, &mut single));
        assert_eq!(values, single);
        assert_eq!(values[3 * 1000..3 * 1001], [1000.25, 6.0, -1.0]);
    }

    #[test]
    fn number_parser_agrees_with_the_standard_library() {
        /// Parses `text` followed by a line end, as the reader always has one.
        fn parse(text: &str) -> Option<(f64, usize)> {
            let terminated = format!("{text}\n");
            unsafe { parse_number(terminated.as_ptr()) }
        }
        let cases = [
            "0",
            "-0",
            "+1",
            "1.5",
            "-0.497693",
            "3.14159265358979323846",
            "1e30",
            "-1E-30",
            "123456789012345678901234",
            "0.000000000000000000000000123",
            "9007199254740993",
            "1.7976931348623157e308",
            "4.9e-324",
            "2.5e-5",
            ".5",
            "5.",
            "00012.50",
            "1e+5",
        ];
        for c in cases {
            let (v, used) = parse(c).unwrap_or_else(|| panic!("{c}"));
            assert_eq!(used, c.len(), "{c}");
            assert_eq!(v.to_bits(), c.parse::<f64>().unwrap().to_bits(), "{c}");
        }
        for c in ["", "-", ".", "e5", "nan", "inf", "x1"] {
            assert!(parse(c).is_none(), "{c}");
        }
        assert_eq!(parse("1.5,2"), Some((1.5, 3)));
        assert_eq!(parse("1e,"), None);
        // Every length of digit run, short and beyond the 19-digit fast path.
        for len in 1..=40 {
            for text in [
                "7".repeat(len),
                format!("0.{}", "3".repeat(len)),
                format!("-{}.25e-3", "9".repeat(len)),
                format!("{}1", "0".repeat(len)),
            ] {
                let (v, used) = parse(&text).unwrap();
                assert_eq!(used, text.len(), "{text}");
                assert_eq!(
                    v.to_bits(),
                    text.parse::<f64>().unwrap().to_bits(),
                    "{text}"
                );
            }
        }
    }

    #[test]
    fn read_matrix_refuses_missing_cells() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.csv");
        std::fs::write(&p, "a,b\n1,2\n3,\n").unwrap();
        let err = read_matrix(&p).unwrap_err().to_string();
        assert!(
            err.ends_with(
                "m.csv, line 3, column 'b': this cell is missing\n  hint: fill in the value"
            ),
            "{err}"
        );
        std::fs::write(&p, "a,b\n1,2\n3,4\n").unwrap();
        let (h, m) = read_matrix(&p).unwrap();
        assert_eq!(h, vec!["a", "b"]);
        assert_eq!(m, ndarray::array![[1.0, 2.0], [3.0, 4.0]]);
    }
}
