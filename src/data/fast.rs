//! The numeric fast path: a file of plain numbers (no quotes, no missing cells, no blank
//! lines) read byte by byte, in parallel chunks for large files. Anything else makes it
//! give up, and the caller uses the general reader, which gives the same values: both parse
//! every number with `fast-float2` as a correctly rounded `f64`, then round it to `f32`.

use std::path::Path;

use ndarray::Array2;
use rayon::prelude::*;

use super::prologue::Prologue;
use super::table::{Column, Table};

/// Reads a plain numeric file into a [`Table`]; `None` on anything else.
pub(super) fn fast_numeric(path: &Path, p: &Prologue<'_>) -> Option<Table> {
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
        tallies: vec![
            super::table::Tally {
                numbers: rows as u64,
                ..Default::default()
            };
            width
        ],
    })
}

/// Reads a plain numeric file straight from disk into one row-major matrix: the header,
/// then the rows, each thread reading its own range of the file a piece (1 MiB) at a time
/// into one buffer it reuses. Returns the column names, the values and the row count, or
/// `None` when the file is anything else (not a regular file, an odd header, a cell that is
/// not a plain number, a file that changes while it is read): the caller then reads it
/// whole, with the general reader behind, which gives the same values and names whatever
/// is wrong.
///
/// Reading the whole file into memory first costs a page fault for every 4 KiB of it, on
/// one thread, and keeps all of it; this touches a piece per thread, and the ranges are
/// read in parallel as well as parsed.
pub(super) fn read_numeric_file(path: &Path) -> Option<(Vec<String>, Vec<f32>, usize)> {
    let split = Split {
        threads: crate::nn::linalg::threads::num_threads(),
        min_range: 1 << 20,
        piece: 1 << 20,
    };
    read_numeric_file_in(path, split)
}

/// How [`read_numeric_file`] divides the work.
#[derive(Clone, Copy)]
struct Split {
    /// At most this many ranges, read in parallel,
    threads: usize,
    /// of at least this many bytes each,
    min_range: u64,
    /// read this many bytes at a time (more for a longer line).
    piece: usize,
}

#[cfg(unix)]
fn read_numeric_file_in(path: &Path, split: Split) -> Option<(Vec<String>, Vec<f32>, usize)> {
    use std::os::unix::fs::FileExt;
    let mut file = std::fs::File::open(path).ok()?;
    let len = file.metadata().ok().filter(|m| m.is_file())?.len();
    // The header: the first 1 MiB must hold the whole first line.
    let mut head = vec![0; (1 << 20).min(usize::try_from(len).ok()?)];
    file.read_exact_at(&mut head, 0).ok()?;
    let p = super::prologue::prologue(path, &head).ok()?;
    if !super::prologue::header_is_first_line(p.text, p.header_end) || p.header_end == p.text.len()
    {
        return None;
    }
    let header_end = head.len() - p.text.len() + p.header_end;
    let body_at = (header_end + skip_line_end_len(&head[header_end..])) as u64;
    let (delimiter, width) = (p.delimiter, p.headers.len());
    let threads = (split.threads as u64)
        .min((len - body_at) / split.min_range.max(1))
        .max(1);
    // Split at line starts: each guess moves on to the next line's start.
    let mut starts = vec![body_at];
    for t in 1..threads {
        let guess = body_at + (len - body_at) * t / threads;
        let next = super::chunks::line_start(&mut file, guess.max(*starts.last()?), len).ok()?;
        starts.push(next);
    }
    starts.push(len);
    starts.dedup();
    let ranges: Vec<(u64, u64)> = starts.windows(2).map(|w| (w[0], w[1])).collect();
    let parts: Vec<Vec<f32>> = ranges
        .par_iter()
        .map(|&(start, end)| parse_range(&file, (start, end), delimiter, width, split.piece))
        .collect::<Option<_>>()?;
    let mut parts = parts.into_iter();
    let mut values = parts.next().unwrap_or_default();
    for part in parts {
        values.extend_from_slice(&part);
    }
    let rows = values.len() / width.max(1);
    (rows > 0).then_some((p.headers, values, rows))
}

#[cfg(not(unix))]
fn read_numeric_file_in(_path: &Path, _split: Split) -> Option<(Vec<String>, Vec<f32>, usize)> {
    None
}

/// Parses the whole lines of bytes `start..end` of `file` (`start` a line start, `end` one
/// or the end of the file), `piece` bytes at a time.
#[cfg(unix)]
fn parse_range(
    file: &std::fs::File,
    (start, end): (u64, u64),
    delimiter: u8,
    width: usize,
    piece: usize,
) -> Option<Vec<f32>> {
    let mut values = Vec::with_capacity(usize::try_from((end - start) / 4).ok()?);
    super::chunks::for_each_lines_at(file, (start, end), piece, |lines| {
        parse_chunk(lines, delimiter, width, &mut values).then_some(())
    })?;
    Some(values)
}

/// The length of the line end at the start of `rest` (`\n`, `\r\n`, `\r` or none).
fn skip_line_end_len(rest: &[u8]) -> usize {
    rest.len() - skip_line_end(rest, 0).len()
}

/// The text after the line end at `end` (`\n`, `\r\n` or `\r`).
pub(super) fn skip_line_end(text: &[u8], end: usize) -> &[u8] {
    let rest = &text[end.min(text.len())..];
    let rest = rest.strip_prefix(b"\r").unwrap_or(rest);
    rest.strip_prefix(b"\n").unwrap_or(rest)
}

/// Parses `body` (the lines after the header) as `width` plain numbers per line into a
/// row-major vector, in parallel for large inputs. `None` if any line is not plain numbers.
pub(super) fn parse_numeric_body(
    body: &[u8],
    delimiter: u8,
    width: usize,
) -> Option<(Vec<f32>, usize)> {
    // Chunks of at least this much text are worth a thread.
    const MIN_CHUNK: usize = 1 << 20;
    if width == 0 {
        return None;
    }
    let threads = crate::nn::linalg::threads::num_threads()
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
            .then(|| (values.len() / width, values))
            .map(|(rows, values)| (values, rows));
    }
    let chunks = split_at_lines(body, threads);
    // Every line is a row: count them to size the output and give each chunk its part.
    let counts: Vec<usize> = chunks.par_iter().map(|c| count_lines(c)).collect();
    let rows: usize = counts.iter().sum();
    let mut values = vec![0f32; rows.checked_mul(width)?];
    let mut parts = Vec::with_capacity(chunks.len());
    let mut rest = values.as_mut_slice();
    for &n in &counts {
        let (part, tail) = rest.split_at_mut(n * width);
        parts.push(part);
        rest = tail;
    }
    let ok = chunks.par_iter().zip(parts).all(|(chunk, part)| {
        let mut slots = part.iter_mut();
        parse_chunk(chunk, delimiter, width, &mut slots) && slots.next().is_none()
    });
    ok.then_some((values, rows))
}

/// Splits `body` into about `n` chunks of whole lines.
fn split_at_lines(body: &[u8], n: usize) -> Vec<&[u8]> {
    let mut chunks = Vec::with_capacity(n);
    let mut start = 0;
    for t in 1..=n {
        let mut end = body.len() * t / n;
        if t < n {
            end = match memchr::memchr(b'\n', &body[end..]) {
                Some(p) => end + p + 1,
                None => body.len(),
            };
        }
        if end > start {
            chunks.push(&body[start..end]);
        }
        start = end.max(start);
    }
    chunks
}

/// Number of lines in `chunk` (a last line without a line end counts).
fn count_lines(chunk: &[u8]) -> usize {
    let newlines = memchr::memchr_iter(b'\n', chunk).count();
    newlines + usize::from(chunk.last().is_some_and(|&b| b != b'\n'))
}

/// Where [`parse_chunk`] puts numbers: a growing vector, or the slots of a chunk's part of
/// the output.
trait Sink {
    /// Stores `value`; false when there is no room.
    fn put(&mut self, value: f32) -> bool;
}

impl Sink for Vec<f32> {
    #[inline]
    fn put(&mut self, value: f32) -> bool {
        self.push(value);
        true
    }
}

impl Sink for std::slice::IterMut<'_, f32> {
    #[inline]
    fn put(&mut self, value: f32) -> bool {
        self.next().map(|slot| *slot = value).is_some()
    }
}

/// Parses lines of exactly `width` plain numbers into `out`; false on anything else. A line
/// ends with `\n` or `\r\n`; the last may have no line end.
///
/// Kept out of line: inlined into the piece reader's closure, W5 ran 4% slower.
#[inline(never)]
fn parse_chunk(chunk: &[u8], delimiter: u8, width: usize, out: &mut impl Sink) -> bool {
    let mut i = 0;
    while i < chunk.len() {
        for col in 0..width {
            let Some((v, used)) = parse_number(&chunk[i..]) else {
                return false;
            };
            if !out.put(v) {
                return false;
            }
            i += used;
            let next = chunk.get(i).copied();
            if col + 1 < width {
                if next != Some(delimiter) {
                    return false;
                }
                i += 1;
            } else {
                match (next, chunk.get(i + 1)) {
                    (None, _) => {}
                    (Some(b'\n'), _) => i += 1,
                    (Some(b'\r'), Some(b'\n')) => i += 2,
                    _ => return false,
                }
            }
        }
    }
    true
}

/// The number at the start of `text` and the bytes it takes, correctly rounded to `f64`
/// exactly as `fast_float2::parse_partial` (which the general reader uses) gives it: the
/// shortcut of the fast paths (plain numeric files, and `predict`'s streamed rows).
///
/// Most cells are short decimals (`-12.375`): with at most 15 digits and no exponent, the
/// digits as an integer and the power of ten are both exact in `f64`, so one division is
/// the correctly rounded value (Clinger's fast path). Anything else goes to `fast_float2`.
#[inline]
pub fn parse_decimal(text: &[u8]) -> Option<(f64, usize)> {
    short_decimal(text).or_else(|| fast_float2::parse_partial::<f64, _>(text).ok())
}

/// Parses the number at the start of `text` as the general reader would: correctly rounded
/// to `f64`, then to `f32`. Returns it and the bytes used, or `None` when `text` does not
/// start with a number or the number is one the general reader treats differently (`inf`,
/// `nan`, beyond ±3.4e38).
#[inline(always)]
pub(crate) fn parse_number(text: &[u8]) -> Option<(f32, usize)> {
    match short_decimal(text) {
        // Below 10^15: finite, and within f32.
        Some((v, used)) => Some((v as f32, used)),
        None => parse_number_slowly(text),
    }
}

/// [`parse_number`] for what the shortcut does not take, out of line.
#[inline(never)]
fn parse_number_slowly(text: &[u8]) -> Option<(f32, usize)> {
    let (v, used) = fast_float2::parse_partial::<f64, _>(text).ok()?;
    (v.is_finite() && v.abs() <= f32::MAX as f64).then_some((v as f32, used))
}

/// [`parse_decimal`]'s shortcut: `[-]digits[.digits]` with 1 to 15 digits and no exponent,
/// or `None`.
#[inline(always)]
fn short_decimal(text: &[u8]) -> Option<(f64, usize)> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let negative = text.first() == Some(&b'-');
    let mut i = usize::from(negative);
    let (mut mantissa, mut digits, mut scale) = (0u64, 0usize, 0usize);
    while let Some(&b) = text.get(i)
        && b.is_ascii_digit()
    {
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        digits += 1;
        i += 1;
    }
    if text.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&b) = text.get(i)
            && b.is_ascii_digit()
        {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
            digits += 1;
            scale += 1;
            i += 1;
        }
    }
    if digits == 0 || digits > 15 || matches!(text.get(i), Some(b'e' | b'E')) {
        return None;
    }
    // Below 2^53, so the signed conversion (one instruction) is exact.
    let v = mantissa as i64 as f64 / POW10[scale];
    Some((if negative { -v } else { v }, i))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_shortcut_agrees_with_fast_float() {
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "5.",
            ".5",
            "-.5",
            "+1.5",
            "1e5",
            "1.5E-3",
            "-",
            ".",
            "",
            "x",
            "nan",
            "inf",
            "-inf",
            "1.5,2",
            "12.375\n",
            "0.1",
            "0.2",
            "0.3",
            "9007199254740993",
            "123456789012345",
            "1234567890123456",
            "0.000000000000001",
            "00000000000000001",
            "3.4028235e38",
            "1e39",
            "-0.0000",
            "7.",
            "1.2.3",
        ]
        .map(String::from)
        .to_vec();
        // Decimals of every length up to 18 digits, split everywhere, both signs.
        let mut seed = 0x2545f4914f6cdd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let digits = (seed % 18 + 1) as usize;
            let number = format!("{:018}", seed >> 4)[..digits].to_string();
            let point = (seed >> 60) as usize % (digits + 1);
            let sign = if seed & 1 == 1 { "-" } else { "" };
            cases.push(format!("{sign}{}.{}", &number[..point], &number[point..]));
            cases.push(format!("{sign}{number}"));
        }
        for c in &cases {
            let expected = fast_float2::parse_partial::<f64, _>(c.as_bytes()).ok();
            let got = parse_decimal(c.as_bytes());
            assert_eq!(
                got.map(|(v, n)| (v.to_bits(), n)),
                expected.map(|(v, n)| (v.to_bits(), n)),
                "{c:?}"
            );
        }
    }

    #[test]
    fn parallel_fast_path_matches_single_chunk() {
        // Large enough for several chunks.
        let mut text = String::from("a,b,c\n");
        for i in 0..120_000 {
            text.push_str(&format!("{}.25,{},-{}e-3\n", i, i % 7, i));
        }
        let body = &text.as_bytes()[6..];
        assert!(split_at_lines(body, 3).len() == 3);
        let (values, rows) = parse_numeric_body(body, b',', 3).unwrap();
        assert_eq!(rows, 120_000);
        let mut single = Vec::new();
        assert!(parse_chunk(body, b',', 3, &mut single));
        assert_eq!(values, single);
        assert_eq!(values[3 * 1000..3 * 1001], [1000.25, 6.0, -1.0]);
        // The chunks of a split cover the text exactly, each ending at a line end.
        let chunks = split_at_lines(body, 3);
        assert_eq!(chunks.concat(), body);
        assert!(chunks.iter().all(|c| c.ends_with(b"\n")));
    }

    /// Values and rows.
    type Read = (Vec<f32>, usize);

    /// The file reader against the whole-text fast path, for `text` written to a file, with
    /// ranges and pieces as small as they go.
    #[cfg(unix)]
    fn read_both_ways(text: &[u8]) -> (Option<Read>, Option<Read>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, text).unwrap();
        let whole = super::super::prologue::prologue(&path, text)
            .ok()
            .and_then(|p| {
                let body = skip_line_end(p.text, p.header_end);
                parse_numeric_body(body, p.delimiter, p.headers.len()).filter(|(_, rows)| *rows > 0)
            });
        let mut from_file = None;
        for (threads, piece) in [(1, 1 << 20), (1, 1), (3, 5), (4, 64)] {
            let split = Split {
                threads,
                min_range: 1,
                piece,
            };
            let got = read_numeric_file_in(&path, split).map(|(_, v, rows)| (v, rows));
            if let Some(first) = &from_file {
                assert_eq!(&got, first, "threads {threads}, piece {piece}");
            }
            from_file = Some(got);
        }
        (whole, from_file.unwrap())
    }

    #[cfg(unix)]
    #[test]
    fn file_reader_reads_what_the_whole_text_path_reads() {
        let mut big = String::from("\u{feff}x;y\r\n");
        for i in 0..500 {
            big.push_str(&format!("{i}.5;-{}\r\n", i * 3));
        }
        for text in [
            "a,b,c\n1,2,3\n4.5,-6,7e2\n",
            "a,b,c\n1,2,3\n4.5,-6,7e2",
            "a\n1\n2\n3\n",
            "a\tb\n1\t2\n",
            big.as_str(),
        ] {
            let (whole, from_file) = read_both_ways(text.as_bytes());
            assert!(whole.is_some(), "{text:?}");
            assert_eq!(from_file, whole, "{text:?}");
        }
        let (_, big) = read_both_ways(big.as_bytes());
        assert_eq!(
            big.as_ref().map(|(v, rows)| (v[2 * 499..].to_vec(), *rows)),
            Some((vec![499.5, -1497.0], 500))
        );
        // Anything else is left to the caller's reader: header only, a missing cell, text,
        // a blank line, a quoted header, an empty file.
        for text in [
            "a,b\n",
            "a,b\n1,\n",
            "a,b\n1,x\n",
            "a,b\n1,2\n\n3,4\n",
            "\"a\",b\n1,2\n",
            "",
        ] {
            assert_eq!(read_both_ways(text.as_bytes()).1, None, "{text:?}");
        }
        // Not a regular file.
        let dir = tempfile::tempdir().unwrap();
        assert!(read_numeric_file(dir.path()).is_none());
    }

    #[test]
    fn number_parser_agrees_with_the_standard_library() {
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
            "2.5e-5",
            "4.9e-324",
            ".5",
            "5.",
            "00012.50",
            "1e+5",
        ];
        let expected = |c: &str| c.parse::<f64>().unwrap() as f32;
        for c in cases {
            let (v, used) = parse_number(c.as_bytes()).unwrap_or_else(|| panic!("{c}"));
            assert_eq!(used, c.len(), "{c}");
            assert_eq!(v.to_bits(), expected(c).to_bits(), "{c}");
        }
        // Not numbers, or not numbers a network can use: the general reader decides.
        for c in [
            "",
            "-",
            ".",
            "e5",
            "nan",
            "inf",
            "x1",
            "1e39",
            "1.7976931348623157e308",
        ] {
            assert!(parse_number(c.as_bytes()).is_none(), "{c}");
        }
        assert_eq!(parse_number(b"1.5,2"), Some((1.5, 3)));
        // "1e" is the number 1 followed by a letter: the line is then refused.
        let mut out = Vec::new();
        assert!(!parse_chunk(b"1e,2\n", b',', 2, &mut out));
        // Every length of digit run, short and beyond 19 digits (up to 38: 7·10³⁹ is beyond
        // f32, and refused as above).
        for len in 1..=38 {
            for text in [
                "7".repeat(len),
                format!("0.{}", "3".repeat(len)),
                format!("-{}.25e-3", "9".repeat(len)),
                format!("-{}.25e-3", "9".repeat(len + 2)),
                format!("{}1", "0".repeat(len)),
            ] {
                let (v, used) = parse_number(text.as_bytes()).unwrap();
                assert_eq!(used, text.len(), "{text}");
                assert_eq!(v.to_bits(), expected(&text).to_bits(), "{text}");
            }
        }
    }

    #[test]
    fn lines_must_be_whole_rows_of_plain_numbers() {
        let parse = |text: &[u8]| {
            let mut out = Vec::new();
            parse_chunk(text, b',', 2, &mut out).then_some(out)
        };
        assert_eq!(parse(b"1,2\r\n3,4"), Some(vec![1.0, 2.0, 3.0, 4.0]));
        assert_eq!(parse(b""), Some(vec![]));
        for bad in [
            &b"1,2\n\n3,4\n"[..], // blank line
            b"1,2\r3,4\n",        // lone \r
            b"1,2,3\n",           // too wide
            b"1\n",               // too narrow
            b"1, 2\n",            // a space
            b"\"1\",2\n",         // quotes
            b"1,\n",              // missing cell
        ] {
            assert_eq!(parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
        // A chunk's output part must be filled exactly.
        let mut part = [0f32; 3];
        assert!(!parse_chunk(b"1,2\n3,4\n", b',', 2, &mut part.iter_mut()));
    }
}
