//! What a CSV file is read into: a [`Table`] of typed [`Column`]s, and what the reader
//! counted about each column's cells ([`Tally`]). The reading itself is in the module
//! above.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Hint, Location, Result};

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
        hint: Hint,
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

/// What a column's present cells read as: the counts that decide its kind (see the
/// module's documentation). Summed over the parts of a file, they decide as the whole file
/// would ([`Table::from_part`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Cells that are numbers (including those too large for `f32`).
    pub numbers: u64,
    /// Numbers that are infinite or too large for `f32`.
    pub bad_numbers: u64,
    /// Cells that are text.
    pub texts: u64,
    /// Texts that look like numbers written with a decimal comma (`3,14`).
    pub decimal_commas: u64,
}

impl Tally {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Tally) {
        self.numbers += other.numbers;
        self.bad_numbers += other.bad_numbers;
        self.texts += other.texts;
        self.decimal_commas += other.decimal_commas;
    }

    /// Whether a column with these counts is read as text (categories), `forced` being
    /// whether the caller asked for categories.
    pub fn is_text(&self, forced: bool) -> bool {
        forced || (self.texts > 0 && self.numbers < self.texts && self.decimal_commas < self.texts)
    }
}

/// A CSV file read into columns.
#[derive(Debug, Clone)]
pub struct Table {
    pub(super) path: PathBuf,
    pub(super) delimiter: u8,
    pub(super) columns: Vec<Column>,
    pub(super) lines: Vec<u32>,
    /// Columns read as categories because the caller asked ([`ReadOptions::categorical`]).
    pub(super) forced: Vec<String>,
    /// What each column's cells read as, in column order.
    pub(super) tallies: Vec<Tally>,
}

impl Table {
    /// What each column's cells read as, in column order.
    pub fn tallies(&self) -> &[Tally] {
        &self.tallies
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
        let keep: Vec<bool> = (self.columns.iter())
            .map(|c| !names.iter().any(|n| n == c.name()))
            .collect();
        let mut i = 0;
        self.tallies.retain(|_| {
            i += 1;
            keep[i - 1]
        });
        let mut i = 0;
        self.columns.retain(|_| {
            i += 1;
            keep[i - 1]
        });
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
