//! The general reader: any CSV the `csv` crate accepts (quotes, missing cells, text, blank
//! lines, odd widths). Two passes over the text: the first classifies every cell and decides
//! each column's kind, the second fills the columns.

use std::collections::HashMap;
use std::path::Path;

use super::cell::cell;
use super::prologue::{LineCounter, csv_reader, line_of};
use super::table::{Column, ReadOptions, Table, Tally};
use crate::error::{Error, Hint, Location, Result, Setting};

/// What a cell holds.
enum Cell {
    Missing,
    Number(f32),
    /// A number, but not one a network can use (`inf`, or beyond ±3.4e38).
    BadNumber(&'static str),
    Text,
}

fn classify(raw: &str) -> Cell {
    let Some(text) = cell(raw) else {
        return Cell::Missing;
    };
    match fast_float2::parse::<f64, _>(text) {
        Ok(v) if v.is_finite() && v.abs() <= f32::MAX as f64 => Cell::Number(v as f32),
        Ok(v) if v.is_finite() => {
            Cell::BadNumber("is too large for 32-bit floats (beyond ±3.4e38)")
        }
        Ok(_) => Cell::BadNumber("is not a finite number"),
        Err(_) => Cell::Text,
    }
}

/// Reads `text` (checked UTF-8, without a byte-order mark) whose header is `headers`.
pub(super) fn read_general(
    path: &Path,
    text: &[u8],
    delimiter: u8,
    headers: Vec<String>,
    options: &ReadOptions,
    whole: Option<&[Tally]>,
) -> Result<Table> {
    let (stats, lines) = scan(path, text, delimiter, headers.len())?;
    if lines.is_empty() && whole.is_none() {
        return Err(no_rows(path));
    }
    let tallies: Vec<Tally> = stats.iter().map(|s| s.tally).collect();
    let mut columns: Vec<Column> = headers
        .iter()
        .zip(&stats)
        .enumerate()
        .map(|(i, (name, s))| {
            let forced = options.categorical.contains(name);
            let whole = whole.and_then(|w| w.get(i)).unwrap_or(&s.tally);
            empty_column(name, s, whole, forced, lines.len())
        })
        .collect();
    fill(text, delimiter, &mut columns);
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
        tallies,
    })
}

/// What the first pass learns about one column.
#[derive(Default, Clone)]
struct Stats {
    tally: Tally,
    first_text: Option<(usize, String)>,
    first_bad: Option<(usize, String, &'static str)>,
}

impl Stats {
    fn count(&mut self, row: usize, cell: &str) {
        match classify(cell) {
            Cell::Missing => {}
            Cell::Number(_) => self.tally.numbers += 1,
            Cell::BadNumber(why) => {
                self.tally.numbers += 1;
                self.tally.bad_numbers += 1;
                if self.first_bad.is_none() {
                    self.first_bad = Some((row, cell.to_string(), why));
                }
            }
            Cell::Text => {
                self.tally.texts += 1;
                self.tally.decimal_commas += u64::from(decimal_comma(cell));
                if self.first_text.is_none() {
                    self.first_text = Some((row, cell.to_string()));
                }
            }
        }
    }
}

/// The first pass: checks every row's width and classifies every cell. Returns the
/// per-column statistics and the line on which each data row starts.
fn scan(path: &Path, text: &[u8], delimiter: u8, width: usize) -> Result<(Vec<Stats>, Vec<u32>)> {
    let mut stats = vec![Stats::default(); width];
    let mut lines = Vec::new();
    let mut reader = csv_reader(text, delimiter);
    let mut record = csv::StringRecord::new();
    let mut first = true;
    let mut counter = LineCounter::new(text);
    while reader
        .read_record(&mut record)
        .map_err(|e| unreadable(path, text, &e))?
    {
        let line = record.position().map_or(0, |p| counter.line(p.byte()));
        if std::mem::take(&mut first) {
            continue; // the header
        }
        // A line holding only delimiters or spaces is blank: no row, whatever its width.
        if record.iter().all(str::is_empty) {
            continue;
        }
        if record.len() != width {
            return Err(wrong_width(path, line, &record, width, delimiter));
        }
        let row = lines.len();
        lines.push(line as u32);
        for (s, cell) in stats.iter_mut().zip(record.iter()) {
            s.count(row, cell);
        }
    }
    Ok((stats, lines))
}

/// A line the `csv` crate cannot read (broken quoting).
fn unreadable(path: &Path, text: &[u8], e: &csv::Error) -> Error {
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
}

/// A row whose number of fields differs from the header's.
fn wrong_width(
    path: &Path,
    line: usize,
    record: &csv::StringRecord,
    width: usize,
    delimiter: u8,
) -> Error {
    Error::data(
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
    )
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

/// Decides a column's kind from what the first pass saw (`s`, and `whole`: the counts of
/// the whole file, which this text may be a part of): an empty [`Column::Numeric`] or
/// [`Column::Text`] with room for `rows` values, or a [`Column::Invalid`] naming the first
/// bad cell. A column made invalid by cells in another part of the file reads as numbers
/// here: the part holding the bad cell reports it.
fn empty_column(name: &str, s: &Stats, whole: &Tally, forced: bool, rows: usize) -> Column {
    let invalid = |(row, value): (usize, String), reason: String, hint: Hint| Column::Invalid {
        name: name.to_string(),
        row,
        value,
        reason,
        hint,
    };
    let numeric = || Column::Numeric {
        name: name.to_string(),
        values: Vec::with_capacity(rows),
        missing: 0,
    };
    if whole.is_text(forced) {
        Column::Text {
            name: name.to_string(),
            codes: Vec::with_capacity(rows),
            categories: Vec::new(),
            missing: 0,
        }
    } else if whole.texts > 0 && whole.decimal_commas == whole.texts {
        // Every text is a number with a decimal comma: not categories.
        match s.first_text.clone() {
            Some(cell) => invalid(
                cell,
                "is a number written with a decimal comma".into(),
                "write decimals with a point (3.14), not a comma".into(),
            ),
            None => numeric(),
        }
    } else if whole.bad_numbers > 0 {
        match s.first_bad.clone() {
            Some((row, value, why)) => invalid(
                (row, value),
                why.to_string(),
                "fix the value, or mark it as missing (an empty cell or NA)".into(),
            ),
            None => numeric(),
        }
    } else if let Some((row, value)) = s.first_text.clone() {
        let hint = if decimal_comma(&value) {
            "write decimals with a point (3.14), not a comma".into()
        } else {
            Hint::text("fix the value, mark it as missing (an empty cell or NA), or use ")
                .setting(Setting::Categorical, name)
                .then(" if the column holds categories")
        };
        let reason = format!(
            "is not a number, but {} of the {} values in this column are",
            whole.numbers,
            whole.numbers + whole.texts
        );
        invalid((row, value), reason, hint)
    } else {
        numeric()
    }
}

/// The second pass: fills the numeric and text columns (the first pass has checked every
/// row, so nothing here can fail).
fn fill(text: &[u8], delimiter: u8, columns: &mut [Column]) {
    let mut index: Vec<HashMap<String, u32>> = vec![HashMap::new(); columns.len()];
    let mut reader = csv_reader(text, delimiter);
    let mut record = csv::StringRecord::new();
    let mut first = true;
    while reader.read_record(&mut record).unwrap_or(false) {
        if std::mem::take(&mut first) || record.iter().all(str::is_empty) {
            continue; // header, or a blank line skipped in the first pass
        }
        for ((column, cell), index) in columns.iter_mut().zip(record.iter()).zip(&mut index) {
            push_cell(column, cell, index);
        }
    }
}

/// Appends one cell to its column; `index` maps a text column's categories to their codes.
fn push_cell(column: &mut Column, raw: &str, index: &mut HashMap<String, u32>) {
    match column {
        Column::Numeric {
            values, missing, ..
        } => match classify(raw) {
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
            if let Some(text) = cell(raw) {
                let next = categories.len() as u32;
                let code = *index.entry(text.to_string()).or_insert_with(|| {
                    categories.push(text.to_string());
                    next
                });
                codes.push(code);
            } else {
                codes.push(Column::MISSING);
                *missing += 1;
            }
        }
        Column::Invalid { .. } => {}
    }
}
