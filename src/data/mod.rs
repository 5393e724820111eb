//! Reading a user's CSV file into typed columns, with messages that say where a problem is.
//!
//! * The first line is the header; every column needs a distinct, non-empty name.
//! * The delimiter is `,` unless the header has none and has `;`, tab or `|` instead.
//! * A UTF-8 byte-order mark, `\r\n` or `\r` line ends, quoted fields and spaces around
//!   values are accepted.
//! * A cell that is empty, `NA`, `N/A`, `NaN`, `null` or `?` (any case) is *missing*;
//!   [`cell`] defines what a cell reads as, for the exports too.
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
//!
//! The reader is three parts: `prologue` (what every file goes through first: encoding
//! checks, byte-order mark, delimiter, header), `fast` (the numeric fast path) and
//! `general` (everything else, through the `csv` crate).

pub mod cell;
pub mod chunks;
mod fast;
mod general;
mod prologue;
mod table;

use std::path::Path;

use ndarray::Array2;

use crate::error::{Error, Result};
use fast::{fast_numeric, parse_numeric_body, skip_line_end};
use general::read_general;
use prologue::{Prologue, check_text, header_is_first_line, prologue};

pub use cell::is_missing_token;
pub use fast::parse_decimal;
pub(crate) use fast::parse_number;
pub use table::{Column, ReadOptions, Table, Tally};

impl Table {
    /// Reads the CSV file at `path`.
    pub fn read(path: &Path, options: &ReadOptions) -> Result<Table> {
        let bytes = read_bytes(path)?;
        Table::from_bytes(path, &bytes, options)
    }

    /// Reads CSV text held in memory; `path` is used in messages only.
    pub fn from_bytes(path: &Path, bytes: &[u8], options: &ReadOptions) -> Result<Table> {
        Table::from_part(path, bytes, options, None)
    }

    /// [`Table::from_bytes`] for one part of a file (its header line, then some of its
    /// lines), whose columns are to be of the kinds the whole file gives them: `whole` holds
    /// the [`Tally`] of every column summed over all the parts (with `None`, this part is the
    /// whole file).
    ///
    /// A column the whole file makes text is read as text here too (but not as forced
    /// categories); a column whose bad cell lies in another part reads as numbers here, and
    /// only the part holding the first bad cell reports it, worded with the whole file's
    /// counts. A part without data rows gives a table without rows.
    pub fn from_part(
        path: &Path,
        bytes: &[u8],
        options: &ReadOptions,
        whole: Option<&[Tally]>,
    ) -> Result<Table> {
        let p = prologue(path, bytes)?;
        let text_anywhere = whole.is_some_and(|w| {
            w.iter()
                .zip(&p.headers)
                .any(|(t, name)| t.is_text(options.categorical.contains(name)))
        });
        if !options.categorical.iter().any(|c| p.headers.contains(c))
            && !text_anywhere
            && header_is_first_line(p.text, p.header_end)
            && let Some(table) = fast_numeric(path, &p)
        {
            return Ok(table);
        }
        let text = check_text(path, bytes)?;
        read_general(path, text, p.delimiter, p.headers, options, whole)
    }
}

/// The bytes of the file at `path`, within the limits of
/// [`read_data`](crate::fsutil::read_data).
fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    crate::fsutil::read_data(path)
}

/// Reads a CSV file of numbers with a header into one row-major matrix.
///
/// A regular file of plain numbers is read straight from disk by the byte-level fast path,
/// each of [`num_threads`](crate::nn::linalg::threads::num_threads) threads reading and
/// parsing its own range of a large file a piece at a time. Anything else is read whole:
/// plain numbers by the same parser, the rest by the general reader, which refuses missing
/// or non-numeric cells with their location.
pub fn read_matrix(path: &Path) -> Result<(Vec<String>, Array2<f32>)> {
    if let Some((headers, values, rows)) = fast::read_numeric_file(path) {
        let m = Array2::from_shape_vec((rows, headers.len()), values).expect("rows × width values");
        return Ok((headers, m));
    }
    let bytes = read_bytes(path)?;
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
        None,
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

/// The column names of the CSV text `bytes` (`path` names it in messages).
pub fn header_names(path: &Path, bytes: &[u8]) -> Result<Vec<String>> {
    Ok(prologue(path, bytes)?.headers)
}

/// The cells of the columns `names` in every data row of the CSV text `bytes`, as the
/// reader reads a cell (unquoted, spaces at the ends trimmed) but never parsed: row by row,
/// `names.len()` cells a row, in the rows [`Table::from_bytes`] gives (blank lines are no
/// rows). Every name must be a column (see [`header_names`]).
pub fn column_cells(path: &Path, bytes: &[u8], names: &[String]) -> Result<Vec<String>> {
    let p = prologue(path, bytes)?;
    let at: Vec<usize> = names
        .iter()
        .map(|n| p.headers.iter().position(|h| h == n))
        .collect::<Option<_>>()
        .expect("names checked against the header");
    let text = check_text(path, bytes)?;
    let mut reader = prologue::csv_reader(text, p.delimiter);
    let mut record = csv::StringRecord::new();
    let mut cells = Vec::new();
    let mut first = true;
    while reader
        .read_record(&mut record)
        .map_err(|e| Error::data(table_location(path), e.to_string(), "check the quoting"))?
    {
        // The header, and blank lines, as the table reader skips them.
        if std::mem::take(&mut first) || record.iter().all(str::is_empty) {
            continue;
        }
        cells.extend(at.iter().map(|&i| record.get(i).unwrap_or("").to_string()));
    }
    Ok(cells)
}

/// The whole file, for a message about it.
fn table_location(path: &Path) -> crate::error::Location {
    crate::error::Location {
        path: path.to_path_buf(),
        line: None,
        column: None,
    }
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
    fn the_reader_trims_and_reads_missing_cells_as_cell_defines() {
        // Every whitespace character of `cell::WHITESPACE` at both ends of a quoted cell.
        let mut text = String::from("c,n\n");
        for w in cell::WHITESPACE {
            text.push_str(&format!(
                "\"{w}a{w}\",\"{w}1{w}\"\n\"{w}Null{w}\",\"{w}n/A{w}\"\n"
            ));
        }
        text.push_str("\"\u{200B}a\",?\n");
        let t = read(&text).unwrap();
        let rows = 2 * cell::WHITESPACE.len();
        match t.column("c").unwrap() {
            Column::Text {
                codes, categories, ..
            } => {
                assert_eq!(categories, &["a", "\u{200B}a"]);
                let expected = (0..rows).map(|r| if r % 2 == 0 { 0 } else { Column::MISSING });
                assert_eq!(codes[..rows], expected.collect::<Vec<_>>());
            }
            other => panic!("{other:?}"),
        }
        let n = numbers(&t, "n");
        assert!((0..rows).all(|r| if r % 2 == 0 {
            n[r] == 1.0
        } else {
            n[r].is_nan()
        }));
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
             use `categorical = b` if the column holds categories"
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
    fn parts_of_a_file_take_the_kinds_the_whole_file_gives() {
        let path = Path::new("t.csv");
        let options = ReadOptions::default();
        // The whole file: `b` holds five numbers and eight texts (text), `c` twelve numbers
        // and one text (a bad cell, in the second part).
        let first = b"b,c\n1,1\nx,2\nw,3\nv,4\nu,5\nt,6\n";
        let second = b"b,c\ny,7\nz,8\nq,9\n10,oops\n11,11\n12,12\n13,13\n";
        let parts = [first.as_slice(), second.as_slice()];
        let mut whole = vec![Tally::default(); 2];
        for bytes in parts {
            let table = Table::from_part(path, bytes, &options, Some(&[])).unwrap();
            for (w, t) in whole.iter_mut().zip(table.tallies()) {
                w.add(t);
            }
        }
        assert_eq!(
            whole[1],
            Tally {
                numbers: 12,
                texts: 1,
                ..Tally::default()
            }
        );
        let first = Table::from_part(path, first, &options, Some(&whole)).unwrap();
        let second = Table::from_part(path, second, &options, Some(&whole)).unwrap();
        // `b` is mostly numbers in the second part (alone, a column with a bad cell), but
        // text in the whole file.
        for t in [&first, &second] {
            assert!(matches!(t.column("b").unwrap(), Column::Text { .. }));
        }
        match first.column("b").unwrap() {
            Column::Text { categories, .. } => assert_eq!(categories[..3], ["1", "x", "w"]),
            _ => unreachable!(),
        }
        // The first part has no bad cell in `c`; the second reports it, with the whole
        // file's counts.
        assert!(matches!(first.column("c").unwrap(), Column::Numeric { .. }));
        let err = second
            .check_usable(second.column("c").unwrap())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 5, column 'c': 'oops' is not a number, but 12 of the 13 values"),
            "{err}"
        );
        // A part without rows is a table without rows.
        let empty = Table::from_part(path, b"b,c\n", &options, Some(&whole)).unwrap();
        assert_eq!(empty.rows(), 0);
        assert!(Table::from_bytes(path, b"b,c\n", &options).is_err());
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
                    None,
                )
                .unwrap();
                prop_assert_eq!(&fast.columns, &general.columns);
                prop_assert_eq!(&fast.lines, &general.lines);
                prop_assert_eq!(&fast.tallies, &general.tallies);
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
