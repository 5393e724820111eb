//! From a [`Table`] to network inputs and targets: choosing the task, one-hot encoding
//! categories, standardising numbers, and the reverse for predictions.
//!
//! Everything learned here (feature order, categories, means and deviations, class labels)
//! is kept in an [`Encoding`] that travels inside the model file, so that `predict` and
//! `eval` transform new data exactly as training did.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use crate::data::cell::{DateTime, parse_date};
use crate::data::{Column, Table};
use crate::error::{Error, Hint, Location, Result, Setting};
pub use crate::tabular::dates::DatePart;
use crate::tabular::dates::{Weighted, parts_for};
use crate::tabular::stats::{Cells, ColumnStats, MAX_DISTINCT, Moments, Order, table_stats};
pub use crate::train::task::{Targets, Task};

/// Most distinct integer values a numeric target may have and still be taken as classes.
pub const MAX_INTEGER_CLASSES: usize = 20;

/// Most values (rows × network inputs) an encoded input matrix may hold: 2²⁸ `f32`s, one
/// gigabyte.
pub const MAX_INPUT_VALUES: usize = 1 << 28;

/// Whether `distinct` values in `present` cells are too many to be categories: more than
/// 20, and more than half the cells, so that most would be seen about once (an identifier,
/// a free-text field, or numbers written as text).
fn too_many_categories(distinct: usize, present: usize) -> bool {
    distinct > MAX_INTEGER_CLASSES && distinct * 2 > present
}

/// How one input column becomes network inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Feature {
    /// A number, standardised: `(x − mean) / std`. A constant column has `std = 1`, so it
    /// becomes zeros rather than `NaN`. Mean and deviation are those of the values present.
    Numeric {
        /// Column name.
        name: String,
        /// Mean over the training split.
        mean: f64,
        /// Standard deviation over the training split (1 for a constant column).
        std: f64,
        /// What a missing cell becomes (`--missing impute`): the median of the training
        /// split. Without it, a missing cell is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<f32>,
    },
    /// A number, robustly scaled and smoothly clipped as in RealMLP (Holzmüller et al.,
    /// 2024): `z = (x − median) / scale`, then [`smooth_clip`]`(z) = z / √(1 + (z/3)²)`,
    /// which is about `z` near zero and never beyond ±3. `scale` is the interquartile range
    /// (half the range if that is 0, and 1 for a constant column), so a skewed column with
    /// a long tail keeps its bulk spread out instead of squeezed next to one outlier.
    Robust {
        /// Column name.
        name: String,
        /// Median over the training split.
        median: f64,
        /// Interquartile range over the training split (see above for the fallbacks).
        scale: f64,
        /// What a missing cell becomes before scaling (`--missing impute`): the median of
        /// the training split. Without it, a missing cell is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<f32>,
    },
    /// A number, standardised as [`Feature::Numeric`] (the first input), then encoded
    /// piecewise-linearly (Gorishniy, Rubachev and Babenko, "On Embeddings for Numerical
    /// Features in Tabular Deep Learning", NeurIPS 2022): the training split's quantiles
    /// `e₀ < e₁ < … < e_T` cut the line into `T` bins, and bin `t` gives one more input,
    /// [`bin_input`]`(x, e_{t−1}, e_t)`: 0 below the bin, 1 above it, and how far into it
    /// `x` is in between. A network can then bend its answer at the quantiles, as a tree
    /// splits there, with one weight per bin.
    Piecewise {
        /// Column name.
        name: String,
        /// Mean over the training split.
        mean: f64,
        /// Standard deviation over the training split (1 for a constant column).
        std: f64,
        /// The bin edges: distinct quantiles of the training split, increasing. Empty
        /// when there would be fewer than two bins (a constant or two-valued column).
        edges: Vec<f64>,
        /// What a missing cell becomes (`--missing impute`): the median of the training
        /// split. Without it, a missing cell is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<f32>,
    },
    /// A date or date-time written in ISO 8601 (`2024-03-05`, `2024-03-05T14:30:00Z`),
    /// turned into numbers ([`DatePart`]: its trend, year, month, day of the year, weekday,
    /// and for date-times the hour), each then scaled as a number column is (its
    /// [`DateInput::scale`]). A missing cell fills each number with its median
    /// (`--missing impute`), or is refused.
    Date {
        /// Column name.
        name: String,
        /// The numbers, in input order.
        parts: Vec<DateInput>,
    },
    /// A category, one-hot encoded: one input per category, in this order.
    Categorical {
        /// Column name.
        name: String,
        /// The categories seen in the training file, sorted.
        categories: Vec<String>,
        /// What a missing cell becomes (`--missing impute`): the most frequent category of
        /// the training split. Without it, a missing cell is refused.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fill: Option<String>,
    },
}

/// One number of a [`Feature::Date`] and how it is scaled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DateInput {
    /// What is computed from the date.
    pub part: DatePart,
    /// How that number is scaled: a [`Feature::Numeric`], [`Feature::Robust`] or
    /// [`Feature::Piecewise`] named `column.part` (as `time_hour.month`).
    pub scale: Feature,
}

impl Feature {
    /// The column name.
    pub fn name(&self) -> &str {
        match self {
            Feature::Numeric { name, .. }
            | Feature::Robust { name, .. }
            | Feature::Piecewise { name, .. }
            | Feature::Date { name, .. }
            | Feature::Categorical { name, .. } => name,
        }
    }

    /// How many network inputs it takes.
    pub fn width(&self) -> usize {
        match self {
            Feature::Numeric { .. } | Feature::Robust { .. } => 1,
            Feature::Piecewise { edges, .. } => edges.len().max(1),
            Feature::Date { parts, .. } => parts.iter().map(|p| p.scale.width()).sum(),
            Feature::Categorical { categories, .. } => categories.len(),
        }
    }
}

/// How numeric feature columns are scaled: see [`Feature::Numeric`] and [`Feature::Robust`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// `(x − mean) / std`.
    #[default]
    Standard,
    /// `smooth_clip((x − median) / IQR)`.
    Robust,
    /// `(x − mean) / std`, then one input per quantile bin: see [`Feature::Piecewise`].
    Piecewise,
}

/// How many quantile bins [`Scaling::Piecewise`] cuts a numeric column into (fewer when
/// quantiles coincide).
pub const BINS: usize = 8;

/// Bin `[lo, hi]`'s piecewise-linear input for `x`: `(x − lo) / (hi − lo)`, clamped to
/// `[0, 1]`.
pub fn bin_input(x: f64, lo: f64, hi: f64) -> f64 {
    ((x - lo) / (hi - lo)).clamp(0.0, 1.0)
}

/// The edges of up to `bins` quantile bins of the values present (NaN is missing): the
/// distinct values among the quantiles 0, 1/bins, …, 1 (each the value of nearest rank).
/// Empty when that leaves fewer than two bins.
pub fn quantile_edges(values: impl Iterator<Item = f32>, bins: usize) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.filter(|v| !v.is_nan()).map(|v| v as f64).collect();
    sorted.sort_by(f64::total_cmp);
    let ranks = quantile_ranks(sorted.len() as u64, bins);
    distinct_edges(ranks.into_iter().map(|r| sorted[r as usize]))
}

/// The ranks (0 for the smallest) of the quantiles 0, 1/bins, …, 1 among `n` numbers,
/// each the nearest rank: `round(t/bins · (n − 1))`. None for no numbers.
pub fn quantile_ranks(n: u64, bins: usize) -> Vec<u64> {
    if n == 0 {
        return Vec::new();
    }
    // The nearest value of the column, not one interpolated between two: a bin then
    // always starts and ends where data is (a 0/1 column gets [0, 1], no bins inside).
    (0..=bins)
        .map(|t| (t as f64 / bins as f64 * (n - 1) as f64).round() as u64)
        .collect()
}

/// The ranks of [`quantile_ranks`] for [`BINS`] bins (in the streamed and shared
/// preparations, [`crate::tabular::median::OrderStats`] finds their numbers).
pub fn bin_ranks(n: u64) -> Vec<u64> {
    quantile_ranks(n, BINS)
}

/// Bin edges from the quantiles (in order): each distinct value once, none at all when
/// that leaves fewer than two bins.
pub fn distinct_edges(quantiles: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut edges: Vec<f64> = Vec::new();
    for q in quantiles {
        if edges.last().is_none_or(|&e| q > e) {
            edges.push(q);
        }
    }
    if edges.len() < 3 {
        edges.clear();
    }
    edges
}

/// `z / √(1 + (z/3)²)`: close to `z` for small `z`, bounded by ±3, smooth everywhere.
pub fn smooth_clip(z: f64) -> f64 {
    z / (1.0 + (z / 3.0).powi(2)).sqrt()
}

/// How the target column becomes what the network is trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum TargetEncoding {
    /// Class labels, as written in the file; the network's output `i` is `labels[i]`.
    Classes {
        /// Column name.
        name: String,
        /// Labels in output order (numbers sorted numerically, text alphabetically).
        labels: Vec<String>,
        /// Training rows of each class, in label order (empty in model files written
        /// before they were kept). Class weights and the majority-class baseline come
        /// from them.
        #[serde(default)]
        counts: Vec<u64>,
    },
    /// A number, standardised for training; predictions are mapped back.
    Values {
        /// Column name.
        name: String,
        /// Mean over the training split.
        mean: f64,
        /// Standard deviation over the training split (1 for a constant target).
        std: f64,
    },
}

impl TargetEncoding {
    /// The column name.
    pub fn name(&self) -> &str {
        match self {
            TargetEncoding::Classes { name, .. } | TargetEncoding::Values { name, .. } => name,
        }
    }

    /// The task this encoding is for.
    pub fn task(&self) -> Task {
        match self {
            TargetEncoding::Classes { .. } => Task::Classification,
            TargetEncoding::Values { .. } => Task::Regression,
        }
    }

    /// Training rows per class in label order (empty for values, or a model file from
    /// before they were kept).
    pub fn class_counts(&self) -> &[u64] {
        match self {
            TargetEncoding::Classes { counts, .. } => counts,
            TargetEncoding::Values { .. } => &[],
        }
    }

    /// Network outputs needed: one per class, or one value.
    pub fn width(&self) -> usize {
        match self {
            TargetEncoding::Classes { labels, .. } => labels.len(),
            TargetEncoding::Values { .. } => 1,
        }
    }
}

/// What to do with a category the model did not see in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownCategory {
    /// Refuse the file, naming the cell and the categories the model knows.
    Error,
    /// Encode it with every one-hot input of the column off (all zeros), as scikit-learn's
    /// `OneHotEncoder(handle_unknown="ignore")` does: the default, so that every row is
    /// scored, as the reference models do.
    #[default]
    Ignore,
}

/// Categories not seen in training that were encoded as all zeros
/// ([`UnknownCategory::Ignore`]): how many cells, in how many rows, in which columns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Unseen {
    /// Cells holding an unseen category.
    pub cells: usize,
    /// Rows with at least one such cell.
    pub rows: usize,
    /// Columns with such cells and how many each, in the model's feature order.
    pub columns: Vec<(String, usize)>,
}

impl Unseen {
    /// Adds the counts of `more` (later rows of the same file).
    pub fn add(&mut self, more: &Unseen) {
        self.cells += more.cells;
        self.rows += more.rows;
        for (name, n) in &more.columns {
            match self.columns.iter_mut().find(|(c, _)| c == name) {
                Some((_, m)) => *m += n,
                None => self.columns.push((name.clone(), *n)),
            }
        }
    }
}

/// Network inputs, with what had to be made up for them.
#[derive(Debug, Clone, PartialEq)]
pub struct Encoded {
    /// (rows, input width).
    pub inputs: Array2<f32>,
    /// Missing cells replaced by the model's fill values.
    pub filled: usize,
    /// Unseen categories encoded as all zeros ([`UnknownCategory::Ignore`]).
    pub unseen: Unseen,
}

/// Everything needed to turn a table into network inputs and targets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Encoding {
    /// Input columns in network order.
    pub features: Vec<Feature>,
    /// The target column.
    pub target: TargetEncoding,
}

/// How the target column reads: numbers (all present cells) or text.
enum TargetColumn<'a> {
    Numbers(&'a [f32]),
    Text(&'a [u32], &'a [String]),
}

fn target_column<'a>(table: &'a Table, name: &str) -> Result<TargetColumn<'a>> {
    let column = table
        .column(name)
        .ok_or_else(|| missing_columns(table, &[name], "target"))?;
    Ok(match column {
        Column::Numeric { values, .. } => TargetColumn::Numbers(values),
        Column::Text {
            codes, categories, ..
        } => TargetColumn::Text(codes, categories),
        // Training checks every column before it gets here, so this is a file evaluated
        // against a model: the reader's hint (read it as categories) does not apply.
        Column::Invalid {
            row, value, reason, ..
        } => {
            return Err(Error::data(
                table.location(Some(*row), Some(name)),
                format!("'{value}' {reason}"),
                "the model predicts numbers for this column: fix the value, or leave the row \
                 out",
            ));
        }
    })
}

/// The text of a number as a class label: `3` for 3.0, `2.5` for 2.5.
pub fn number_label(v: f32) -> String {
    format!("{v}")
}

/// Chooses the task for the target column: classification when it holds text, or
/// integers with at most [`MAX_INTEGER_CLASSES`] distinct values; regression otherwise.
pub fn detect_task(table: &Table, target: &str) -> Result<Task> {
    target_column(table, target)?;
    let column = table.column(target).expect("checked above");
    let all: Vec<usize> = (0..table.rows()).collect();
    let mut stats = ColumnStats::new(column, true);
    stats.add(column, &all, &[], |r| table.line(r));
    Ok(task_of(&stats))
}

/// [`detect_task`] from the target column's statistics.
pub fn task_of(target: &ColumnStats) -> Task {
    match &target.cells {
        Cells::Text { .. } => Task::Classification,
        Cells::Numbers {
            integer, distinct, ..
        } => {
            let few = distinct
                .as_ref()
                .is_some_and(|d| d.len() <= MAX_INTEGER_CLASSES);
            if *integer && few {
                Task::Classification
            } else {
                Task::Regression
            }
        }
    }
}

/// The error for columns the encoding needs but the file lacks.
fn missing_columns(table: &Table, names: &[&str], role: &str) -> Error {
    let list = names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    let (noun, verb) = if names.len() == 1 {
        ("column", "is")
    } else {
        ("columns", "are")
    };
    let mut location = table.location(None, None);
    location.line = Some(1);
    Error::data(
        location,
        format!("the {role} {noun} {list} {verb} not in the header"),
        format!("the file's columns are: {}", table.headers().join(", ")),
    )
}

/// The error for a missing feature cell the model has no fill value for.
fn missing_feature(table: &Table, row: usize, name: &str) -> Error {
    Error::data(
        table.location(Some(row), Some(name)),
        "this cell is missing, and the model has no value to fill it with (it was not \
         trained to impute missing cells)",
        Hint::text("fill in the value or leave the row out, or retrain the model with ")
            .setting(Setting::Missing, "impute")
            .then(", which stores fill values in it"),
    )
}

/// Row `r`'s `value` of the numeric column `name`, or for a missing one (NaN) `fill`,
/// counted in `filled`; refused, naming the cell, without a fill value.
fn present_or_fill(
    table: &Table,
    name: &str,
    r: usize,
    value: f32,
    fill: Option<f32>,
    filled: &mut usize,
) -> Result<f32> {
    match (value, fill) {
        (v, _) if !v.is_nan() => Ok(v),
        (_, Some(fill)) => {
            *filled += 1;
            Ok(fill)
        }
        (_, None) => Err(missing_feature(table, r, name)),
    }
}

/// Writes `rows` of a numeric column, standardised with `(mean, std)`, into `out` (rows, 1);
/// a missing cell becomes `fill`, or is refused without one. Returns the cells filled.
fn standardise(
    table: &Table,
    name: &str,
    values: &[f32],
    (mean, std, fill): (f64, f64, Option<f32>),
    rows: &[usize],
    mut out: ArrayViewMut2<f32>,
) -> Result<usize> {
    let mut filled = 0;
    for (i, &r) in rows.iter().enumerate() {
        let v = present_or_fill(table, name, r, values[r], fill, &mut filled)?;
        let z = ((v as f64 - mean) / std) as f32;
        if !z.is_finite() {
            return Err(Error::data(
                table.location(Some(r), Some(name)),
                format!(
                    "{} is too far outside the values the model was trained on (mean {}, \
                     deviation {})",
                    number_text(v as f64),
                    number_text(mean),
                    number_text(std)
                ),
                "check the value and its units",
            ));
        }
        out[[i, 0]] = z;
    }
    Ok(filled)
}

/// Writes `rows` of a numeric column, robustly scaled with `(median, scale)` and smoothly
/// clipped, into `out` (rows, 1). The result is bounded by ±3 whatever the value. A missing
/// cell becomes `fill` first (then is scaled like any other), or is refused without one.
/// Returns the cells filled.
fn robust_scale(
    table: &Table,
    name: &str,
    values: &[f32],
    (median, scale, fill): (f64, f64, Option<f32>),
    rows: &[usize],
    mut out: ArrayViewMut2<f32>,
) -> Result<usize> {
    let mut filled = 0;
    for (i, &r) in rows.iter().enumerate() {
        let v = present_or_fill(table, name, r, values[r], fill, &mut filled)?;
        out[[i, 0]] = smooth_clip((v as f64 - median) / scale) as f32;
    }
    Ok(filled)
}

/// Writes `rows` of a text column (its codes and the file's categories `seen`) one-hot
/// over the model's `categories` into `out` (rows, categories). A missing cell becomes
/// `fill`, or is refused without one; a category the model does not know is refused, or
/// with [`UnknownCategory::Ignore`] left all zeros. Returns the cells filled and the
/// unknown categories let through.
fn one_hot(
    table: &Table,
    name: &str,
    (codes, seen): (&[u32], &[String]),
    (categories, fill): (&[String], Option<&str>),
    rows: &[usize],
    (unknown, hit): (UnknownCategory, &mut [bool]),
    mut out: ArrayViewMut2<f32>,
) -> Result<(usize, usize)> {
    // Map the file's codes to the model's one-hot positions.
    let position: HashMap<&str, usize> = categories
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();
    let map: Vec<Option<usize>> = seen
        .iter()
        .map(|c| position.get(c.as_str()).copied())
        .collect();
    let fill = fill.and_then(|f| position.get(f).copied());
    let (mut filled, mut unseen) = (0, 0);
    for (i, &r) in rows.iter().enumerate() {
        let code = codes[r];
        let k = if code == Column::MISSING {
            filled += 1;
            Some(fill.ok_or_else(|| missing_feature(table, r, name))?)
        } else {
            map[code as usize]
        };
        match (k, unknown) {
            (Some(k), _) => out[[i, k]] = 1.0,
            // All zeros: none of the column's inputs is on.
            (None, UnknownCategory::Ignore) => {
                unseen += 1;
                hit[i] = true;
            }
            (None, UnknownCategory::Error) => {
                return Err(Error::data(
                    table.location(Some(r), Some(name)),
                    format!(
                        "category '{}' was not seen in training",
                        seen[code as usize]
                    ),
                    Hint::text(format!(
                        "the model knows: {}; to predict anyway, with no category's input on, \
                         use ",
                        list(categories)
                    ))
                    .setting(Setting::UnknownCategory, "ignore"),
                ));
            }
        }
    }
    Ok((filled, unseen))
}

/// What [`Encoding::fit`] needs besides the columns' statistics.
#[derive(Debug, Clone)]
pub struct FitSpec<'a> {
    /// The training file, for messages.
    pub path: &'a Path,
    /// The target column.
    pub target: &'a str,
    /// The task ([`task_of`] the target, unless the user chose).
    pub task: Task,
    /// How numeric features are scaled.
    pub scaling: Scaling,
    /// Whether missing feature cells are filled (`--missing impute`): every feature then
    /// gets a fill value.
    pub impute: bool,
    /// Columns the user asked to read as categories (`--categorical`).
    pub categorical: &'a [String],
    /// How many rows train (for messages).
    pub train_rows: usize,
}

impl FitSpec<'_> {
    /// Where a message about column `name` points: the file and the column.
    fn at(&self, name: &str, line: Option<usize>) -> Location {
        Location {
            path: self.path.to_path_buf(),
            line,
            column: Some(name.to_string()),
        }
    }

    /// The order statistics [`Encoding::fit`] reads from a numeric feature's
    /// [`Order`]: (median, quantiles, robust).
    pub fn needs(&self) -> (bool, bool, bool) {
        (
            self.impute,
            self.scaling == Scaling::Piecewise,
            self.scaling == Scaling::Robust,
        )
    }
}

/// The target's encoding from its statistics: its sorted class labels, or the mean and
/// deviation of its training values. Refuses a text target for regression, and classes
/// that are too many or too few.
fn fit_target(stats: &ColumnStats, spec: &FitSpec) -> Result<TargetEncoding> {
    let name = spec.target.to_string();
    let labels = match (spec.task, &stats.cells) {
        (
            Task::Classification,
            Cells::Text {
                categories,
                present,
                ..
            },
        ) => {
            if too_many_categories(categories.len(), *present as usize) {
                return Err(Error::data(
                    spec.at(&name, None),
                    format!(
                        "the target has {} different values in {present} rows, too many to \
                         be classes",
                        categories.len()
                    ),
                    Hint::text(
                        "if it holds numbers written with units or separators ($1,200), write \
                         them as plain numbers (1200); otherwise check ",
                    )
                    .name(Setting::Target),
                ));
            }
            categories.iter().map(|(l, &n)| (l.clone(), n)).unzip()
        }
        (Task::Classification, Cells::Numbers { distinct, .. }) => {
            let distinct = distinct.as_ref().expect("the target's numbers are kept");
            if distinct.len() > MAX_DISTINCT {
                return Err(Error::data(
                    spec.at(&name, None),
                    format!(
                        "the target has more than {MAX_DISTINCT} different numbers, too many \
                         to be classes"
                    ),
                    Hint::text("use ")
                        .setting(Setting::Task, "regression")
                        .then(", or check ")
                        .name(Setting::Target),
                ));
            }
            // Keys sort as the numbers do.
            (distinct.iter())
                .map(|(&k, &n)| (number_label(crate::tabular::median::from_key(k)), n))
                .unzip()
        }
        (Task::Regression, Cells::Numbers { moments, .. }) => {
            let (mean, std) = moments.mean_std();
            return Ok(TargetEncoding::Values { name, mean, std });
        }
        (Task::Regression, Cells::Text { first, .. }) => {
            let (line, value) = first.clone().unwrap_or_default();
            return Err(Error::data(
                spec.at(&name, first.as_ref().map(|_| line)),
                format!("regression needs a numeric target, but '{value}' is text"),
                Hint::text("use ")
                    .setting(Setting::Task, "classification")
                    .then(", or pick a numeric ")
                    .name(Setting::Target),
            ));
        }
    };
    let (labels, counts): (Vec<String>, Vec<u64>) = labels;
    if labels.len() < 2 {
        return Err(one_class(spec, &name, &labels));
    }
    Ok(TargetEncoding::Classes {
        name,
        labels,
        counts,
    })
}

/// The error for a classification target with fewer than two classes.
fn one_class(spec: &FitSpec, name: &str, labels: &[String]) -> Error {
    Error::data(
        spec.at(name, None),
        format!(
            "classification needs at least two classes, but every row has {}",
            labels
                .first()
                .map_or("no label".to_string(), |l| format!("'{l}'"))
        ),
        Hint::text("check that ")
            .name(Setting::Target)
            .then(" names the column to predict"),
    )
}

/// A numeric feature's encoding from its statistics: standardisation, robust scaling or
/// quantile bins, and with `--missing impute` its median as the fill.
fn fit_numeric(name: &str, moments: &Moments, order: &Order, spec: &FitSpec) -> Result<Feature> {
    let fill = if spec.impute {
        Some(order.median.ok_or_else(|| no_fill(name, spec))?)
    } else {
        None
    };
    let name = name.to_string();
    let (mean, std) = moments.mean_std();
    Ok(match spec.scaling {
        Scaling::Standard => Feature::Numeric {
            name,
            mean,
            std,
            fill,
        },
        Scaling::Piecewise => Feature::Piecewise {
            name,
            mean,
            std,
            edges: distinct_edges(order.quantiles.iter().map(|&q| q as f64)),
            fill,
        },
        Scaling::Robust => {
            let (median, scale) = order.robust.expect("robust scaling found its quartiles");
            Feature::Robust {
                name,
                median,
                scale,
                fill,
            }
        }
    })
}

/// A categorical feature's encoding from its category counts, with `--missing impute`
/// the most frequent category of the training rows as the fill (a tie goes to the one
/// that sorts first). Refuses a column with too many categories, unless the user asked
/// for it with `--categorical`.
fn fit_categorical(
    name: &str,
    categories: &BTreeMap<String, u64>,
    present: u64,
    spec: &FitSpec,
) -> Result<Feature> {
    let forced = spec.categorical.iter().any(|c| c == name);
    if too_many_categories(categories.len(), present as usize) && !forced {
        return Err(Error::data(
            spec.at(name, None),
            format!(
                "{} different values in {present} rows: as categories, most would be seen \
                 about once, and new rows would bring unseen ones",
                categories.len()
            ),
            Hint::text("if this is an identifier or free text, leave it out with ")
                .setting(Setting::Ignore, name)
                .then("; to keep it as categories anyway, use ")
                .setting(Setting::Categorical, name)
                .then("; if it should hold numbers, check how they are written"),
        ));
    }
    let fill = if spec.impute {
        Some(most_frequent(categories).ok_or_else(|| no_fill(name, spec))?)
    } else {
        None
    };
    Ok(Feature::Categorical {
        name: name.to_string(),
        categories: categories.keys().cloned().collect(),
        fill,
    })
}

/// A date column's encoding from its category counts (each date's text and how often the
/// training rows hold it): every [`DatePart`] it gets, each fitted as a number column
/// would be ([`fit_numeric`]) from its values over the training rows.
fn fit_date(name: &str, categories: &BTreeMap<String, u64>, spec: &FitSpec) -> Result<Feature> {
    let counts = || categories.iter().map(|(c, &n)| (c.as_str(), n));
    let has_time = (categories.keys()).any(|c| parse_date(c).is_some_and(|d| d.has_time));
    let (median, quantiles, robust) = spec.needs();
    let mut parts = Vec::new();
    for part in parts_for(has_time) {
        let values = Weighted::of(part, counts());
        if spec.impute && values.count() == 0 {
            return Err(no_fill(name, spec));
        }
        let ranks = quantiles.then(|| bin_ranks(values.count()));
        let order = values.order(median, ranks, robust);
        let inner = format!("{name}.{}", part.label());
        let scale = fit_numeric(&inner, &values.moments(), &order, spec)?;
        parts.push(DateInput { part, scale });
    }
    Ok(Feature::Date {
        name: name.to_string(),
        parts,
    })
}

/// The error for a column of mostly dates with some other text: as a column of mostly
/// numbers, it names the first cell that is not one.
fn not_all_dates(
    name: &str,
    dates: u64,
    present: u64,
    not_date: &Option<(usize, String)>,
    spec: &FitSpec,
) -> Error {
    let (line, value) = not_date.clone().unwrap_or_default();
    Error::data(
        spec.at(name, not_date.as_ref().map(|_| line)),
        format!("'{value}' is not a date, but {dates} of the {present} values in this column are"),
        Hint::text(format!(
            "write dates as {DATE_FORMS}, mark it as missing (an empty cell or NA), or use "
        ))
        .setting(Setting::Categorical, name)
        .then(" to read the column as categories"),
    )
}

/// How a date cell may be written, for messages.
pub const DATE_FORMS: &str =
    "YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS[.fff]] (a space for T, and Z or ±HH:MM after, allowed)";

/// The error for a feature to fill whose training rows are all missing.
fn no_fill(name: &str, spec: &FitSpec) -> Error {
    Error::data(
        spec.at(name, None),
        format!(
            "every one of the {} training rows is missing this column, so there is nothing \
             to fill its gaps with",
            spec.train_rows
        ),
        Hint::text("leave it out with ").setting(Setting::Ignore, name),
    )
}

/// Finds the order statistics `spec` needs ([`FitSpec::needs`]) of every numeric feature
/// of `table` from its `train` rows, by sorting them: what the streamed and shared
/// preparations find over passes.
pub fn order_in_memory(stats: &mut [ColumnStats], table: &Table, train: &[usize], spec: &FitSpec) {
    let (median_wanted, quantiles_wanted, robust_wanted) = spec.needs();
    for (column, stats) in table.columns().iter().zip(stats) {
        let (Column::Numeric { values, .. }, Cells::Numbers { order, .. }) =
            (column, &mut stats.cells)
        else {
            continue;
        };
        if column.name() == spec.target {
            continue;
        }
        let mut sorted: Vec<f32> = (train.iter().map(|&r| values[r]))
            .filter(|v| !v.is_nan())
            .collect();
        sorted.sort_unstable_by(f32::total_cmp);
        if median_wanted {
            order.median = median(sorted.iter().copied());
        }
        if quantiles_wanted {
            let ranks = bin_ranks(sorted.len() as u64);
            order.quantiles = ranks.into_iter().map(|r| sorted[r as usize]).collect();
        }
        if robust_wanted {
            order.robust = Some(median_scale(sorted.into_iter()));
        }
    }
}

/// Writes the bin inputs of [`Feature::Piecewise`] for `rows` of a numeric column into
/// `out` (rows, bins): a missing cell counts as `fill`, as [`standardise`] saw it.
fn bin_inputs(
    values: &[f32],
    fill: Option<f32>,
    edges: &[f64],
    rows: &[usize],
    mut out: ArrayViewMut2<f32>,
) {
    for (i, &r) in rows.iter().enumerate() {
        let v = match values[r] {
            v if v.is_nan() => fill.unwrap_or(f32::NAN),
            v => v,
        } as f64;
        for (t, pair) in edges.windows(2).enumerate() {
            out[[i, t]] = bin_input(v, pair[0], pair[1]) as f32;
        }
    }
}

/// The error for a numeric feature whose `column` in a file to encode holds text, or a
/// cell the reader could not read as a number.
fn not_a_number(table: &Table, column: &Column, name: &str) -> Error {
    match column {
        // The reader's hint is for training (--categorical); here the model decides.
        Column::Invalid {
            row, value, reason, ..
        } => Error::data(
            table.location(Some(*row), Some(name)),
            format!("'{value}' {reason}"),
            "the model needs a number here: fix the value, or leave the row out",
        ),
        _ => {
            let (row, value) = column.first_text().unwrap_or((0, ""));
            Error::data(
                table.location(Some(row), Some(name)),
                format!("'{value}' is not a number, but the model was trained on numbers here"),
                "check that this is the same kind of file the model was trained on",
            )
        }
    }
}

/// Writes `rows` of `column`, encoded as `feature`, into `out` (rows, the feature's
/// width). Returns the cells filled in and the unseen categories let through.
fn encode_feature(
    table: &Table,
    feature: &Feature,
    column: &Column,
    rows: &[usize],
    unknown: (UnknownCategory, &mut [bool]),
    mut out: ArrayViewMut2<f32>,
) -> Result<(usize, usize)> {
    let name = feature.name();
    let (mut filled, mut unseen) = (0, 0);
    if let Column::Invalid { .. } = column {
        return Err(not_a_number(table, column, name));
    }
    if let Feature::Date { parts, .. } = feature {
        filled += encode_date(table, name, column, parts, rows, out)?;
        return Ok((filled, unseen));
    }
    match (feature, column) {
        (
            Feature::Numeric {
                mean, std, fill, ..
            },
            Column::Numeric { values, .. },
        ) => {
            filled += standardise(table, name, values, (*mean, *std, *fill), rows, out)?;
        }
        (
            Feature::Categorical {
                categories, fill, ..
            },
            Column::Text {
                codes,
                categories: seen,
                ..
            },
        ) => {
            let fill = (categories.as_slice(), fill.as_deref());
            let (f, u) = one_hot(table, name, (codes, seen), fill, rows, unknown, out)?;
            filled += f;
            unseen += u;
        }
        (
            Feature::Robust {
                median,
                scale,
                fill,
                ..
            },
            Column::Numeric { values, .. },
        ) => {
            let stats = (*median, *scale, *fill);
            filled += robust_scale(table, name, values, stats, rows, out)?;
        }
        (
            Feature::Piecewise {
                mean,
                std,
                edges,
                fill,
                ..
            },
            Column::Numeric { values, .. },
        ) => {
            let (first, bins) = out.view_mut().split_at(ndarray::Axis(1), 1);
            filled += standardise(table, name, values, (*mean, *std, *fill), rows, first)?;
            bin_inputs(values, *fill, edges, rows, bins);
        }
        (
            Feature::Numeric { .. } | Feature::Robust { .. } | Feature::Piecewise { .. },
            Column::Text { .. },
        ) => {
            return Err(not_a_number(table, column, name));
        }
        (Feature::Categorical { .. } | Feature::Date { .. }, _) => {
            unreachable!("categorical features are read as text, dates encoded above")
        }
        (_, Column::Invalid { .. }) => unreachable!("checked above"),
    }
    Ok((filled, unseen))
}

/// The dates of `rows` of a date column: `None` for a missing cell. Refuses a cell that is
/// not a date, naming it. A column of numbers (one every cell of which is missing, in a
/// file read without the model's help) has no dates.
pub fn date_cells(
    table: &Table,
    name: &str,
    column: &Column,
    rows: &[usize],
) -> Result<Vec<Option<DateTime>>> {
    let not_a_date = |r: usize, value: &str| {
        Error::data(
            table.location(Some(r), Some(name)),
            format!("'{value}' is not a date, but the model was trained on dates here"),
            format!("write it as {DATE_FORMS}, or leave the row out"),
        )
    };
    match column {
        Column::Text {
            codes, categories, ..
        } => {
            let parsed: Vec<Option<DateTime>> = categories.iter().map(|c| parse_date(c)).collect();
            (rows.iter())
                .map(|&r| match codes[r] {
                    Column::MISSING => Ok(None),
                    c => match parsed[c as usize] {
                        Some(date) => Ok(Some(date)),
                        None => Err(not_a_date(r, &categories[c as usize])),
                    },
                })
                .collect()
        }
        Column::Numeric { values, .. } => (rows.iter())
            .map(|&r| match values[r] {
                v if v.is_nan() => Ok(None),
                v => Err(not_a_date(r, &number_label(v))),
            })
            .collect(),
        Column::Invalid { .. } => Err(not_a_number(table, column, name)),
    }
}

/// Writes `rows` of a date column, each of its `parts` computed and scaled as a number
/// column, into `out` (rows, the feature's width). A missing cell is each part's fill,
/// or refused without one. Returns the cells filled.
fn encode_date(
    table: &Table,
    name: &str,
    column: &Column,
    parts: &[DateInput],
    rows: &[usize],
    mut out: ArrayViewMut2<f32>,
) -> Result<usize> {
    let dates = date_cells(table, name, column, rows)?;
    let mut values = vec![f32::NAN; table.rows()];
    let (mut filled, mut offset) = (0, 0);
    for DateInput { part, scale } in parts {
        for (&r, date) in rows.iter().zip(&dates) {
            values[r] = date.as_ref().map_or(f32::NAN, |d| part.input(d));
        }
        let width = scale.width();
        let mut slot = out.slice_mut(ndarray::s![.., offset..offset + width]);
        let numbers = Column::Numeric {
            name: name.to_string(),
            values: std::mem::take(&mut values),
            missing: 0,
        };
        let part_filled = encode_feature(
            table,
            &renamed(scale, name),
            &numbers,
            rows,
            (UnknownCategory::Error, &mut []),
            slot.view_mut(),
        )?
        .0;
        let Column::Numeric { values: back, .. } = numbers else {
            unreachable!("made above")
        };
        values = back;
        // Each missing cell counts once, not once per part.
        if offset == 0 {
            filled = part_filled;
        }
        offset += width;
    }
    Ok(filled)
}

/// A date part's scale under the column's own name, so that its messages name the column.
fn renamed(scale: &Feature, column: &str) -> Feature {
    let mut scale = scale.clone();
    match &mut scale {
        Feature::Numeric { name, .. }
        | Feature::Robust { name, .. }
        | Feature::Piecewise { name, .. }
        | Feature::Date { name, .. }
        | Feature::Categorical { name, .. } => *name = column.to_string(),
    }
    scale
}

impl Encoding {
    /// Learns the encoding from every column's statistics (in file order, the target among
    /// them; see [`crate::tabular::stats`]), gathered from a table, a streamed file's chunks or the
    /// processes' shares, with the order statistics that `spec` needs filled in. Every mode
    /// of training calls this, so the same rows give the same encoding in each.
    ///
    /// Refuses a target unfit for the task, a column with too many categories, a feature
    /// to fill that has no training value, and a file with no feature besides the target.
    pub fn fit(stats: &[ColumnStats], spec: &FitSpec) -> Result<Encoding> {
        let target_stats = (stats.iter())
            .find(|s| s.name == spec.target)
            .expect("the target is one of the columns");
        let target = fit_target(target_stats, spec)?;
        let mut features = Vec::new();
        for column in stats.iter().filter(|s| s.name != spec.target) {
            features.push(match &column.cells {
                Cells::Numbers { moments, order, .. } => {
                    fit_numeric(&column.name, moments, order, spec)?
                }
                Cells::Text {
                    categories,
                    present,
                    dates,
                    not_date,
                    ..
                } => {
                    let forced = spec.categorical.iter().any(|c| c == &column.name);
                    if !forced && *present > 0 && dates == present {
                        fit_date(&column.name, categories, spec)?
                    } else if !forced && dates * 2 > *present {
                        return Err(not_all_dates(
                            &column.name,
                            *dates,
                            *present,
                            not_date,
                            spec,
                        ));
                    } else {
                        fit_categorical(&column.name, categories, *present, spec)?
                    }
                }
            });
        }
        if features.is_empty() {
            let mut location = spec.at(spec.target, None);
            location.column = None;
            return Err(Error::data(
                location,
                format!(
                    "there are no feature columns besides the target '{}'",
                    target.name()
                ),
                "a training file needs at least one input column next to the target",
            ));
        }
        Ok(Encoding { features, target })
    }

    /// The target's encoding alone (no features), from its statistics over the rows kept:
    /// enough to read the classes of the rows, to split them by class.
    pub fn fit_target(target: &ColumnStats, spec: &FitSpec) -> Result<Encoding> {
        Ok(Encoding {
            features: Vec::new(),
            target: fit_target(target, spec)?,
        })
    }

    /// [`Encoding::fit`] on a table in memory: its statistics over every row, `fit_rows`
    /// (the training split) giving the means, deviations, fills and bins. Refuses an
    /// unusable column (one the reader could read neither as numbers nor as text).
    pub fn fit_table(table: &Table, fit_rows: &[usize], spec: &FitSpec) -> Result<Encoding> {
        for column in table.columns() {
            table.check_usable(column)?;
        }
        target_column(table, spec.target)?;
        let all: Vec<usize> = (0..table.rows()).collect();
        let mut stats = table_stats(table, spec.target, &all, fit_rows, |r| table.line(r));
        order_in_memory(&mut stats, table, fit_rows, spec);
        Encoding::fit(&stats, spec)
    }

    /// Number of network inputs.
    pub fn input_width(&self) -> usize {
        self.features.iter().map(Feature::width).sum()
    }

    /// The network inputs that are one-hot categories (nearly all zeros), in order: the
    /// first layer's products can skip them
    /// ([`Linear::with_sparse_inputs`](crate::nn::layers::Linear::with_sparse_inputs)).
    pub fn one_hot_inputs(&self) -> Vec<usize> {
        let mut start = 0;
        let mut columns = Vec::new();
        for f in &self.features {
            if matches!(f, Feature::Categorical { .. }) {
                columns.extend(start..start + f.width());
            }
            start += f.width();
        }
        columns
    }

    /// Names of the columns a file must have for [`Encoding::inputs`].
    pub fn feature_names(&self) -> Vec<&str> {
        self.features.iter().map(Feature::name).collect()
    }

    /// Names of the categorical features (to read them as text in new files).
    pub fn categorical_names(&self) -> Vec<String> {
        self.features
            .iter()
            .filter(|f| matches!(f, Feature::Categorical { .. }))
            .map(|f| f.name().to_string())
            .collect()
    }

    /// Names of the features a new file must read as text: the categorical ones and the
    /// dates.
    pub fn text_names(&self) -> Vec<String> {
        self.features
            .iter()
            .filter(|f| matches!(f, Feature::Categorical { .. } | Feature::Date { .. }))
            .map(|f| f.name().to_string())
            .collect()
    }

    /// Refuses a table that lacks any feature column, naming all of them.
    pub fn check_columns(&self, table: &Table) -> Result<()> {
        let absent: Vec<&str> = self
            .feature_names()
            .into_iter()
            .filter(|n| table.column(n).is_none())
            .collect();
        if absent.is_empty() {
            Ok(())
        } else {
            Err(missing_columns(table, &absent, "feature"))
        }
    }

    /// The network inputs for `rows` of `table` (columns matched by name, in any order).
    ///
    /// Refuses missing cells the model has no fill value for, text in a numeric feature,
    /// and categories not seen in training, naming the line and column.
    pub fn inputs(&self, table: &Table, rows: &[usize]) -> Result<Array2<f32>> {
        Ok(self.encode(table, rows, UnknownCategory::Error)?.inputs)
    }

    /// [`Encoding::inputs`], with a choice for unseen categories, and counts of the cells
    /// filled in and of the unseen categories let through.
    pub fn encode(
        &self,
        table: &Table,
        rows: &[usize],
        unknown: UnknownCategory,
    ) -> Result<Encoded> {
        self.check_columns(table)?;
        let width = self.input_width();
        if rows
            .len()
            .checked_mul(width)
            .is_none_or(|n| n > MAX_INPUT_VALUES)
        {
            return Err(self.too_many_inputs(table, rows.len()));
        }
        let mut x = Array2::zeros((rows.len(), width));
        let (mut filled, mut unseen) = (0, Unseen::default());
        let mut hit = vec![false; rows.len()];
        let mut offset = 0;
        for feature in &self.features {
            let column = table.column(feature.name()).expect("checked above");
            let out = x.slice_mut(ndarray::s![.., offset..offset + feature.width()]);
            let (f, u) = encode_feature(table, feature, column, rows, (unknown, &mut hit), out)?;
            filled += f;
            if u > 0 {
                unseen.cells += u;
                unseen.columns.push((feature.name().to_string(), u));
            }
            offset += feature.width();
        }
        unseen.rows = hit.iter().filter(|&&h| h).count();
        Ok(Encoded {
            inputs: x,
            filled,
            unseen,
        })
    }

    /// The error for more inputs than fit in memory.
    fn too_many_inputs(&self, table: &Table, rows: usize) -> Error {
        let widest = self
            .features
            .iter()
            .max_by_key(|f| f.width())
            .map_or(String::new(), |f| {
                format!(
                    "; the widest column is '{}' with {} inputs",
                    f.name(),
                    f.width()
                )
            });
        Error::data(
            table.location(None, None),
            format!(
                "{rows} rows × {} network inputs is too much to hold in memory (more than \
                 {MAX_INPUT_VALUES} values){widest}",
                self.input_width()
            ),
            "use fewer rows or columns, or leave out columns with many categories",
        )
    }

    /// The rows of `table` whose target cell is present (in order), as training keeps
    /// them: `eval` and `importance` score only these. Refuses a table without the target
    /// column, or whose numeric target holds an unreadable cell.
    pub fn rows_with_target(&self, table: &Table) -> Result<Vec<usize>> {
        let rows = 0..table.rows();
        Ok(match target_column(table, self.target.name())? {
            TargetColumn::Numbers(values) => rows.filter(|&r| !values[r].is_nan()).collect(),
            TargetColumn::Text(codes, _) => rows.filter(|&r| codes[r] != Column::MISSING).collect(),
        })
    }

    /// The training targets for `rows` of `table`.
    ///
    /// Refuses missing cells and (for classification) labels the model does not know.
    pub fn targets(&self, table: &Table, rows: &[usize]) -> Result<Targets> {
        let name = self.target.name();
        let column = target_column(table, name)?;
        let missing_at = |row: usize| {
            Error::data(
                table.location(Some(row), Some(name)),
                "the target is missing in this row",
                "fill it in, or leave the row out",
            )
        };
        match &self.target {
            TargetEncoding::Classes { labels, .. } => {
                let position: HashMap<&str, usize> = labels
                    .iter()
                    .enumerate()
                    .map(|(i, l)| (l.as_str(), i))
                    .collect();
                let unknown = |row: usize, label: &str| {
                    Error::data(
                        table.location(Some(row), Some(name)),
                        format!("'{label}' is not one of the model's classes"),
                        format!("the model's classes are: {}", list(labels)),
                    )
                };
                let mut classes = Vec::with_capacity(rows.len());
                for &r in rows {
                    let label = match &column {
                        TargetColumn::Numbers(values) if values[r].is_nan() => {
                            return Err(missing_at(r));
                        }
                        TargetColumn::Numbers(values) => number_label(values[r]),
                        TargetColumn::Text(codes, _) if codes[r] == Column::MISSING => {
                            return Err(missing_at(r));
                        }
                        TargetColumn::Text(codes, categories) => {
                            categories[codes[r] as usize].clone()
                        }
                    };
                    classes.push(
                        *position
                            .get(label.as_str())
                            .ok_or_else(|| unknown(r, &label))?,
                    );
                }
                Ok(Targets::Classes(classes))
            }
            TargetEncoding::Values { mean, std, .. } => {
                let TargetColumn::Numbers(values) = column else {
                    return Err(Error::data(
                        table.location(None, Some(name)),
                        "the target column holds text, but the model predicts numbers",
                        "check that this is the same kind of file the model was trained on",
                    ));
                };
                let mut y = Array2::zeros((rows.len(), 1));
                for (i, &r) in rows.iter().enumerate() {
                    if values[r].is_nan() {
                        return Err(missing_at(r));
                    }
                    let z = ((values[r] as f64 - mean) / std) as f32;
                    if !z.is_finite() {
                        return Err(Error::data(
                            table.location(Some(r), Some(name)),
                            format!(
                                "{} is too far outside the values the model was trained on \
                                 (mean {}, deviation {})",
                                number_text(values[r] as f64),
                                number_text(*mean),
                                number_text(*std)
                            ),
                            "check the value and its units",
                        ));
                    }
                    y[[i, 0]] = z;
                }
                Ok(Targets::Values(y))
            }
        }
    }

    /// Maps standardised network outputs (rows, 1) back to the target's units.
    pub fn values_from_outputs(&self, outputs: ArrayView2<f32>) -> Vec<f64> {
        match &self.target {
            TargetEncoding::Values { mean, std, .. } => outputs
                .column(0)
                .iter()
                .map(|&v| v as f64 * std + mean)
                .collect(),
            TargetEncoding::Classes { .. } => panic!("values_from_outputs on a classifier"),
        }
    }
}

/// The median of the values that are not `NaN`: the middle one, or for an even count the
/// mean of the two middle ones (computed in `f64`, then rounded to `f32`). `None` if every
/// value is `NaN`.
pub fn median(values: impl Iterator<Item = f32>) -> Option<f32> {
    let mut present: Vec<f32> = values.filter(|v| !v.is_nan()).collect();
    if present.is_empty() {
        return None;
    }
    present.sort_unstable_by(f32::total_cmp);
    let n = present.len();
    Some(if n % 2 == 1 {
        present[n / 2]
    } else {
        ((present[n / 2 - 1] as f64 + present[n / 2] as f64) / 2.0) as f32
    })
}

/// The category the training rows hold most often, from each category's count in them; a
/// tie goes to the one that sorts first (the map is sorted, so the result does not depend
/// on row order). `None` if no training row holds any.
pub fn most_frequent(counts: &BTreeMap<String, u64>) -> Option<String> {
    // `max_by_key` keeps the last of equal maxima; reversed, that is the first.
    let (best, &n) = counts.iter().rev().max_by_key(|(_, n)| **n)?;
    (n > 0).then(|| best.clone())
}

/// A number for a message: plain when moderate, scientific when huge or tiny.
fn number_text(v: f64) -> String {
    if v != 0.0 && !(1e-4..1e6).contains(&v.abs()) {
        format!("{v:.4e}")
    } else {
        format!("{}", (v * 1e4).round() / 1e4)
    }
}

fn list(items: &[String]) -> String {
    const SHOW: usize = 20;
    let mut s = items
        .iter()
        .take(SHOW)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if items.len() > SHOW {
        s.push_str(&format!(", … ({} in all)", items.len()));
    }
    s
}

/// Median and interquartile range (quantiles interpolated linearly, as NumPy's default) in
/// `f64`. An IQR of 0 falls back to half the range, and a constant column gets scale 1.
pub fn median_scale(values: impl Iterator<Item = f32>) -> (f64, f64) {
    let mut sorted: Vec<f64> = values.filter(|v| !v.is_nan()).map(|v| v as f64).collect();
    if sorted.is_empty() {
        return (0.0, 1.0);
    }
    sorted.sort_by(f64::total_cmp);
    let quantile = |q: f64| {
        let at = q * (sorted.len() - 1) as f64;
        let (lo, frac) = (at.floor() as usize, at.fract());
        let hi = (lo + 1).min(sorted.len() - 1);
        sorted[lo] + (sorted[hi] - sorted[lo]) * frac
    };
    let median = quantile(0.5);
    let iqr = quantile(0.75) - quantile(0.25);
    let half_range = 0.5 * (sorted[sorted.len() - 1] - sorted[0]);
    let scale = [iqr, half_range]
        .into_iter()
        .find(|s| *s > 0.0 && s.is_finite())
        .unwrap_or(1.0);
    (median, scale)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::ReadOptions;
    use std::path::Path;

    /// The in-memory fit of `table` on its `rows`.
    fn fit(
        t: &Table,
        target: &str,
        task: Task,
        rows: &[usize],
        scaling: Scaling,
        impute: bool,
    ) -> Result<Encoding> {
        let spec = FitSpec {
            path: Path::new("t.csv"),
            target,
            task,
            scaling,
            impute,
            categorical: &[],
            train_rows: rows.len(),
        };
        Encoding::fit_table(t, rows, &spec)
    }

    fn table(text: &str) -> Table {
        Table::from_bytes(Path::new("t.csv"), text.as_bytes(), &ReadOptions::default()).unwrap()
    }

    #[test]
    fn task_detection() {
        let t = table("x,label,small,value,name\n1,0,1,0.5,a\n2,1,2,1.5,b\n3,2,3,2.5,a\n");
        assert_eq!(detect_task(&t, "label").unwrap(), Task::Classification);
        assert_eq!(detect_task(&t, "value").unwrap(), Task::Regression);
        assert_eq!(detect_task(&t, "name").unwrap(), Task::Classification);
        let many: String = (0..30).map(|i| format!("{i},{i}\n")).collect();
        let t = table(&format!("x,y\n{many}"));
        assert_eq!(detect_task(&t, "y").unwrap(), Task::Regression);
    }

    #[test]
    fn standardises_one_hot_encodes_and_keeps_labels() {
        let t = table("size,color,const,label\n1,red,5,b\n2,blue,5,a\n3,red,5,b\n6,green,5,c\n");
        let all = [0, 1, 2, 3];
        let enc = fit(
            &t,
            "label",
            Task::Classification,
            &all,
            Scaling::Standard,
            false,
        )
        .unwrap();
        assert_eq!(enc.input_width(), 1 + 3 + 1);
        let x = enc.inputs(&t, &all).unwrap();
        // size: mean 3, population std sqrt(3.5)
        let s = 3.5f64.sqrt();
        assert!((x[[0, 0]] as f64 - (1.0 - 3.0) / s).abs() < 1e-6);
        // colors sorted: blue, green, red
        assert_eq!(x.row(0).to_vec()[1..4], [0.0, 0.0, 1.0]);
        assert_eq!(x.row(1).to_vec()[1..4], [1.0, 0.0, 0.0]);
        // a constant column becomes zeros, not NaN
        assert!(x.column(4).iter().all(|&v| v == 0.0));
        assert_eq!(
            enc.targets(&t, &all).unwrap(),
            Targets::Classes(vec![1, 0, 1, 2])
        );
        match &enc.target {
            TargetEncoding::Classes { labels, .. } => assert_eq!(labels, &["a", "b", "c"]),
            other => panic!("{other:?}"),
        }
    }

    // NumPy: x = [1, 2, 3, 4, 100]; np.median(x) = 3; np.percentile(x, [25, 75]) = [2, 4]
    //   z = (x − 3) / 2 = [-1, -0.5, 0, 0.5, 48.5]; z / sqrt(1 + (z/3)**2)
    //   = [-0.9486833, -0.4931970, 0, 0.4931970, 2.9942771]
    #[test]
    #[allow(clippy::excessive_precision)]
    fn robust_scaling_uses_median_and_iqr_then_clips_smoothly() {
        let t = table("x,c,y\n1,5,a\n2,5,b\n3,5,a\n4,5,b\n100,5,a\n");
        let all = [0, 1, 2, 3, 4];
        let enc = fit(&t, "y", Task::Classification, &all, Scaling::Robust, false).unwrap();
        assert_eq!(
            enc.features[0],
            Feature::Robust {
                name: "x".into(),
                median: 3.0,
                scale: 2.0,
                fill: None,
            }
        );
        // A constant column: scale 1, inputs 0.
        assert!(matches!(enc.features[1], Feature::Robust { scale, .. } if scale == 1.0));
        let x = enc.inputs(&t, &all).unwrap();
        let want = [-0.9486833, -0.4931970, 0.0, 0.4931970, 2.9942771];
        for (got, want) in x.column(0).iter().zip(want) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
        assert!(x.column(1).iter().all(|&v| v == 0.0));
        // Far outliers at predict time stay below 3 instead of overflowing.
        let far = table("x,c,y\n1e30,5,a\n");
        let z = enc.inputs(&far, &[0]).unwrap();
        assert!(z[[0, 0]] > 2.99 && z[[0, 0]] <= 3.0, "{}", z[[0, 0]]);
    }

    #[test]
    fn quantile_edges_are_distinct_quantiles() {
        // Quantiles 0, 1/4, …, 1 of 0..=16: every fourth value.
        let values = (0..=16).map(|v| v as f32);
        assert_eq!(quantile_edges(values, 4), vec![0.0, 4.0, 8.0, 12.0, 16.0]);
        // Each edge is a value of the column (nearest rank), never one in between.
        assert_eq!(
            quantile_edges([20.0f32, 0.0, 10.0].into_iter(), 4),
            vec![0.0, 10.0, 20.0]
        );
        // Repeated quantiles are kept once; NaN (missing) is left out.
        assert_eq!(
            quantile_edges([1.0f32, 1.0, 1.0, 2.0, 3.0, f32::NAN].into_iter(), 4),
            vec![1.0, 2.0, 3.0]
        );
        // Fewer than two bins (a constant or two-valued column): none.
        assert!(quantile_edges([0.0f32, 1.0, 0.0, 1.0].into_iter(), 8).is_empty());
        assert!(quantile_edges([5.0f32; 4].into_iter(), 8).is_empty());
        assert_eq!(bin_input(2.5, 2.0, 4.0), 0.25);
        assert_eq!(
            (bin_input(-7.0, 2.0, 4.0), bin_input(9.0, 2.0, 4.0)),
            (0.0, 1.0)
        );
    }

    #[test]
    fn piecewise_inputs_are_the_standardised_value_then_one_per_bin() {
        // x = 0, 2, 4, …, 16: mean 8, population deviation √(240/9) = 5.1639778, and
        // the BINS = 8 quantile bins [0, 2], [2, 4], …, [14, 16].
        let mut text = String::from("x,y\n");
        for i in 0..9 {
            text.push_str(&format!("{},{}\n", 2 * i, i % 2));
        }
        let t = table(&text);
        let all: Vec<usize> = (0..9).collect();
        let enc = fit(
            &t,
            "y",
            Task::Classification,
            &all,
            Scaling::Piecewise,
            false,
        )
        .unwrap();
        assert_eq!(enc.input_width(), 9);
        let new = table("x,y\n5,0\n-3,1\n40,0\n");
        let x = enc.inputs(&new, &[0, 1, 2]).unwrap();
        let z = |v: f64| ((v - 8.0) / 5.163977794943222) as f32;
        // 5 is past [0, 2] and [2, 4], halfway into [4, 6], and below the rest.
        assert_eq!(
            x.row(0).to_vec(),
            vec![z(5.0), 1.0, 1.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0]
        );
        // Beyond the training range the bins saturate at 0 or 1; the value itself does not.
        assert_eq!(x.row(1).to_vec(), [vec![z(-3.0)], vec![0.0; 8]].concat());
        assert_eq!(x.row(2).to_vec(), [vec![z(40.0)], vec![1.0; 8]].concat());
    }

    #[test]
    fn median_scale_falls_back_to_half_the_range() {
        // IQR of [0, 0, 0, 0, 10] is 0: half the range, 5, instead.
        assert_eq!(
            median_scale([0.0f32, 0.0, 0.0, 0.0, 10.0].into_iter()),
            (0.0, 5.0)
        );
        assert_eq!(median_scale([4.0f32; 3].into_iter()), (4.0, 1.0));
        assert_eq!(smooth_clip(0.0), 0.0);
        assert!((smooth_clip(3.0) - 3.0 / 2f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn numeric_labels_sort_numerically() {
        let t = table("x,y\n1,10\n2,2\n3,2\n4,3\n");
        let enc = fit(
            &t,
            "y",
            Task::Classification,
            &[0, 1, 2, 3],
            Scaling::Standard,
            false,
        )
        .unwrap();
        match &enc.target {
            TargetEncoding::Classes { labels, .. } => assert_eq!(labels, &["2", "3", "10"]),
            other => panic!("{other:?}"),
        }
    }

    /// The class counts (for class weights and the majority baseline) are of the fit rows
    /// alone, in label order, for number and text labels alike; a class seen only outside
    /// the fit rows counts 0.
    #[test]
    fn class_counts_are_the_fit_rows_per_class() {
        let t = table("x,y\n1,10\n2,2\n3,2\n4,3\n5,2\n6,10\n");
        let enc = fit(
            &t,
            "y",
            Task::Classification,
            &[0, 1, 2, 3, 4],
            Scaling::Standard,
            false,
        )
        .unwrap();
        assert_eq!(enc.target.class_counts(), &[3, 1, 1]);
        let t = table("x,y\n1,b\n2,a\n3,b\n4,c\n");
        let enc = fit(
            &t,
            "y",
            Task::Classification,
            &[0, 1, 2],
            Scaling::Standard,
            false,
        )
        .unwrap();
        assert_eq!(enc.target.class_counts(), &[1, 2, 0]);
    }

    #[test]
    fn statistics_come_from_the_fit_rows_only() {
        let t = table("x,y\n0,1.5\n2,2.5\n100,3.5\n");
        let enc = fit(&t, "y", Task::Regression, &[0, 1], Scaling::Standard, false).unwrap();
        match &enc.features[0] {
            Feature::Numeric { mean, std, .. } => assert_eq!((*mean, *std), (1.0, 1.0)),
            other => panic!("{other:?}"),
        }
        let y = enc.targets(&t, &[2]).unwrap();
        assert_eq!(y, Targets::Values(ndarray::array![[3.0]])); // (3.5 − 2) / 0.5
        assert_eq!(
            enc.values_from_outputs(ndarray::array![[3.0]].view()),
            vec![3.5]
        );
    }

    #[test]
    fn huge_values_standardise_without_overflow() {
        let mean_std = |v: &[f32]| Moments::of(v.iter().copied()).mean_std();
        let (mean, std) = mean_std(&[1e30f32, -1e30, 3e30, 0.0]);
        assert!(
            mean.is_finite() && std.is_finite() && std > 1e29,
            "{mean} {std}"
        );
        let (_, std) = mean_std(&[3.3e38f32, -3.3e38, 3.3e38, -3.3e38]);
        assert!((std - 3.3e38).abs() < 1e33, "{std}");
        assert_eq!(mean_std(&[7.0f32; 5]), (7.0, 1.0));
    }

    #[test]
    fn median_of_an_even_count_is_the_mean_of_the_middle_two() {
        // numpy.nanmedian([4, 1, nan, 3, 2]) == 2.5; numpy.median([5, 1, 3]) == 3.0
        assert_eq!(
            median([4.0, 1.0, f32::NAN, 3.0, 2.0].into_iter()),
            Some(2.5)
        );
        assert_eq!(median([5.0, 1.0, 3.0].into_iter()), Some(3.0));
        assert_eq!(median([-7.5].into_iter()), Some(-7.5));
        // 0.1 and 0.2 as f32, averaged in f64, rounded to f32.
        assert_eq!(median([0.2f32, 0.1].into_iter()), Some(0.15));
        assert_eq!(median([f32::NAN, f32::NAN].into_iter()), None);
        assert_eq!(median(std::iter::empty()), None);
    }

    #[test]
    fn most_frequent_category_ties_go_to_the_first_in_sorted_order() {
        let mode = |values: &[&'static str]| {
            let mut counts: BTreeMap<String, u64> =
                ["blue", "green", "red"].map(|c| (c.to_string(), 0)).into();
            values
                .iter()
                .for_each(|v| *counts.get_mut(*v).unwrap() += 1);
            most_frequent(&counts)
        };
        assert_eq!(mode(&["red", "green", "red"]), Some("red".into()));
        // Two each of red and blue, in either order: blue sorts first.
        assert_eq!(
            mode(&["red", "blue", "red", "blue", "green"]),
            Some("blue".into())
        );
        assert_eq!(
            mode(&["blue", "red", "green", "red", "blue"]),
            Some("blue".into())
        );
        assert_eq!(mode(&["green"]), Some("green".into()));
        assert_eq!(mode(&[]), None);
    }

    // NumPy: x = [4, 1, 2, 10] (row 2 missing) → median 3, percentile 25/75 = 1.75/5.5,
    //   IQR 3.75. The missing cell is filled with 3 first, then scaled: (3 − 3) / 3.75 = 0.
    //   x = 10: z = 7 / 3.75 = 1.8666667; z / sqrt(1 + (z/3)**2) = 1.5849057
    #[test]
    #[allow(clippy::excessive_precision)]
    fn robust_scaling_fills_missing_cells_before_scaling() {
        let t = table(
            "x,y
4,a
1,b
NA,a
2,b
10,a
",
        );
        let train = [0, 1, 2, 3, 4];
        let enc = fit(&t, "y", Task::Classification, &train, Scaling::Robust, true).unwrap();
        assert_eq!(
            enc.features[0],
            Feature::Robust {
                name: "x".into(),
                median: 3.0,
                scale: 3.75,
                fill: Some(3.0),
            }
        );
        let encoded = enc.encode(&t, &[2, 4], UnknownCategory::Error).unwrap();
        assert_eq!(encoded.filled, 1);
        assert_eq!(encoded.inputs[[0, 0]], 0.0);
        assert!((encoded.inputs[[1, 0]] - 1.5849057).abs() < 1e-6);
        // Without a fill value, the missing cell is refused.
        let enc = fit(
            &t,
            "y",
            Task::Classification,
            &train,
            Scaling::Robust,
            false,
        )
        .unwrap();
        assert!(enc.encode(&t, &[2], UnknownCategory::Error).is_err());
    }

    #[test]
    fn fill_values_come_from_the_training_rows_and_fill_new_rows() {
        // Rows 0..=4 train; row 5 (x = 100, c = red) is validation and must not count.
        let t = table("x,c,y\n4,red,a\n1,blue,b\nNA,red,a\n3,,b\n2,blue,a\n100,red,b\n");
        let train = [0, 1, 2, 3, 4];
        let enc = fit(
            &t,
            "y",
            Task::Classification,
            &train,
            Scaling::Standard,
            true,
        )
        .unwrap();
        match &enc.features[..] {
            [
                Feature::Numeric {
                    mean, std, fill, ..
                },
                Feature::Categorical { fill: mode, .. },
            ] => {
                // numpy: x = [4, 1, 3, 2] → median 2.5, mean 2.5, std sqrt(1.25)
                assert_eq!(*fill, Some(2.5));
                assert_eq!(*mean, 2.5);
                assert!((*std - 1.25f64.sqrt()).abs() < 1e-12, "{std}");
                // blue 2, red 2 among rows 0..=4: a tie, blue sorts first.
                assert_eq!(mode.as_deref(), Some("blue"));
            }
            other => panic!("{other:?}"),
        }
        let encoded = enc.encode(&t, &[2, 3], UnknownCategory::Error).unwrap();
        assert_eq!(encoded.filled, 2);
        // Row 2: x filled with 2.5, standardised to 0; red. Row 3: x = 3; c filled: blue.
        let Feature::Numeric { std, .. } = &enc.features[0] else {
            unreachable!()
        };
        let z = (0.5 / std) as f32;
        assert_eq!(
            encoded.inputs,
            ndarray::array![[0.0, 0.0, 1.0], [z, 1.0, 0.0]]
        );
        let written = table("x,c,y\n2.5,red,a\n3,blue,b\n");
        assert_eq!(enc.inputs(&written, &[0, 1]).unwrap(), encoded.inputs);
    }

    #[test]
    fn a_feature_without_any_value_in_the_training_rows_cannot_be_filled() {
        let t = table("x,z,y\n1,NA,a\n2,NA,b\n3,5,a\n");
        let err = fit(
            &t,
            "y",
            Task::Classification,
            &[0, 1],
            Scaling::Standard,
            true,
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "t.csv, column 'z': every one of the 2 training rows is missing this column, so \
             there is nothing to fill its gaps with\n  hint: leave it out with `ignore = z`"
        );
    }

    #[test]
    fn a_missing_cell_without_a_fill_value_is_refused_naming_the_option() {
        let t = table("x,c,y\n1,red,a\n2,blue,b\n");
        let enc = fit(
            &t,
            "y",
            Task::Classification,
            &[0, 1],
            Scaling::Standard,
            false,
        )
        .unwrap();
        let new = table("x,c\n1,red\n,blue\n");
        let err = enc.inputs(&new, &[0, 1]).unwrap_err().to_string();
        assert_eq!(
            err,
            "t.csv, line 3, column 'x': this cell is missing, and the model has no value to \
             fill it with (it was not trained to impute missing cells)\n  hint: fill in the \
             value or leave the row out, or retrain the model with `missing = impute`, which \
             stores fill values in it"
        );
    }

    #[test]
    fn unseen_categories_are_refused_or_encoded_as_all_zeros() {
        let t = table("x,c,y\n1,red,a\n2,blue,b\n");
        let enc = fit(
            &t,
            "y",
            Task::Classification,
            &[0, 1],
            Scaling::Standard,
            false,
        )
        .unwrap();
        let new = Table::from_bytes(
            Path::new("new.csv"),
            b"c,x\npurple,1\nred,2\n",
            &ReadOptions {
                categorical: enc.categorical_names(),
            },
        )
        .unwrap();
        let err = enc.inputs(&new, &[0, 1]).unwrap_err().to_string();
        assert!(err.ends_with("use `unknown_category = ignore`"), "{err}");
        let encoded = enc.encode(&new, &[0, 1], UnknownCategory::Ignore).unwrap();
        assert_eq!(
            (encoded.filled, encoded.unseen.cells, encoded.unseen.rows),
            (0, 1, 1)
        );
        // x: mean 1.5, std 0.5; c: blue, red.
        assert_eq!(
            encoded.inputs,
            ndarray::array![[-1.0, 0.0, 0.0], [1.0, 0.0, 1.0]]
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let t = table("x,y\n1,a\n2,a\n");
        let err = fit(
            &t,
            "y",
            Task::Classification,
            &[0, 1],
            Scaling::Standard,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("classification needs at least two classes, but every row has 'a'"),
            "{err}"
        );
        let err = fit(
            &t,
            "nope",
            Task::Classification,
            &[0, 1],
            Scaling::Standard,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("the target column 'nope' is not in the header"),
            "{err}"
        );
        let err = fit(&t, "y", Task::Regression, &[0, 1], Scaling::Standard, false)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 2, column 'y': regression needs a numeric target"),
            "{err}"
        );

        let train = table("x,c,y\n1,red,a\n2,blue,b\n");
        let enc = fit(
            &train,
            "y",
            Task::Classification,
            &[0, 1],
            Scaling::Standard,
            false,
        )
        .unwrap();
        let new = Table::from_bytes(
            Path::new("new.csv"),
            b"c,x\nred,1\npurple,2\n",
            &ReadOptions {
                categorical: enc.categorical_names(),
            },
        )
        .unwrap();
        let err = enc.inputs(&new, &[0, 1]).unwrap_err().to_string();
        assert_eq!(
            err,
            "new.csv, line 3, column 'c': category 'purple' was not seen in training\n  \
             hint: the model knows: blue, red; to predict anyway, with no category's input \
             on, use `unknown_category = ignore`"
        );
        let new = table("z\n1\n");
        let err = enc.inputs(&new, &[0]).unwrap_err().to_string();
        assert!(
            err.contains("the feature columns 'x', 'c' are not in the header"),
            "{err}"
        );
    }

    fn date_encoding(text: &str, impute: bool, categorical: &[String]) -> Result<Encoding> {
        let t = table(text);
        let rows: Vec<usize> = (0..t.rows()).collect();
        let spec = FitSpec {
            path: Path::new("t.csv"),
            target: "y",
            task: Task::Regression,
            scaling: Scaling::Standard,
            impute,
            categorical,
            train_rows: rows.len(),
        };
        Encoding::fit_table(&t, &rows, &spec)
    }

    #[test]
    fn a_date_column_becomes_its_parts_each_standardised() {
        // Months 3 and 5 of 2024: the month's mean 4 and deviation 1 standardise them to
        // −1 and 1; 2024-03-05 is a Tuesday (1), 2024-05-04 a Saturday (5).
        let text = "d,y\n2024-03-05,1\n 2024-05-04 ,2\n";
        let enc = date_encoding(text, false, &[]).unwrap();
        let Feature::Date { name, parts } = &enc.features[0] else {
            panic!("{:?}", enc.features[0])
        };
        assert_eq!(name, "d");
        let labels: Vec<&str> = parts.iter().map(|p| p.part.label()).collect();
        assert_eq!(
            labels[..5],
            ["time", "year", "month", "day_of_year", "weekday"]
        );
        assert_eq!(parts.len(), 9); // no time of day
        let scale = |part: DatePart| {
            let p = parts.iter().find(|p| p.part == part).unwrap();
            match &p.scale {
                Feature::Numeric {
                    name, mean, std, ..
                } => (name.clone(), *mean, *std),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(scale(DatePart::Month), ("d.month".into(), 4.0, 1.0));
        assert_eq!(scale(DatePart::Weekday), ("d.weekday".into(), 3.0, 2.0));
        // 2024-03-05 is day 19787 of the epoch and day 65 of 2024; 2024-05-04 is 60 later.
        assert_eq!(scale(DatePart::Time), ("d.time".into(), 19_817.0, 30.0));
        assert_eq!(scale(DatePart::DayOfYear).1, 95.0);
        // A constant year: deviation 1, input 0.
        assert_eq!(
            scale(DatePart::Year).1..=scale(DatePart::Year).2,
            2024.0..=1.0
        );
        let x = enc.inputs(&table(text), &[0, 1]).unwrap();
        assert_eq!(x.row(0).to_vec()[..5], [-1.0, 0.0, -1.0, -1.0, -1.0]);
        assert_eq!(x.row(1).to_vec()[..5], [1.0, 0.0, 1.0, 1.0, 1.0]);
        // Dates the model never saw encode all the same: the trend goes on.
        let later = table("d\n2024-07-03\n");
        let x = enc.inputs(&later, &[0]).unwrap();
        assert_eq!(x[[0, 0]], 3.0); // 120 days after the mean of 19817, deviation 30
        assert_eq!(x[[0, 2]], 3.0); // July: month 7
    }

    #[test]
    fn date_times_add_the_hour_and_missing_dates_follow_the_missing_policy() {
        let text = "d,y\n2024-03-05T06:00:00Z,1\n2024-03-05 18:00+01:00,2\nNA,3\n";
        let enc = date_encoding(text, true, &[]).unwrap();
        let Feature::Date { parts, .. } = &enc.features[0] else {
            panic!("{:?}", enc.features[0])
        };
        assert_eq!(parts.len(), 12);
        let hour = parts.iter().find(|p| p.part == DatePart::Hour).unwrap();
        // Hours 6 and 18 as written: median 12 fills the missing cell.
        assert_eq!(
            hour.scale,
            Feature::Numeric {
                name: "d.hour".into(),
                mean: 12.0,
                std: 6.0,
                fill: Some(12.0)
            }
        );
        let encoded = enc
            .encode(&table(text), &[2], UnknownCategory::Error)
            .unwrap();
        assert_eq!(encoded.filled, 1);
        let at = parts.iter().position(|p| p.part == DatePart::Hour).unwrap();
        assert_eq!(encoded.inputs[[0, at]], 0.0);
        // Without imputation a missing date is refused, naming the cell.
        let enc = date_encoding(&text.replace("NA,3\n", ""), false, &[]).unwrap();
        let err = enc.inputs(&table(text), &[2]).unwrap_err().to_string();
        assert!(
            err.starts_with("t.csv, line 4, column 'd': this cell is missing"),
            "{err}"
        );
        // A cell that is not a date, at predict time.
        let err = (enc.inputs(&table("d\n2024-02-30\n"), &[0]).unwrap_err()).to_string();
        assert!(
            err.starts_with(
                "t.csv, line 2, column 'd': '2024-02-30' is not a date, but the model was \
                 trained on dates here\n  hint: write it as YYYY-MM-DD"
            ),
            "{err}"
        );
    }

    #[test]
    fn detection_needs_every_cell_a_date_and_categorical_overrides() {
        // One bad cell among dates is refused, as one among numbers is.
        let text = "d,y\n2024-03-05,1\n2024-03-06,2\n2024-02-30,3\n2024-03-07,4\n";
        let err = date_encoding(text, false, &[]).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "t.csv, line 4, column 'd': '2024-02-30' is not a date, but 3 of the 4 values \
                 in this column are\n  hint: write dates as {DATE_FORMS}, mark it as missing \
                 (an empty cell or NA), or use `categorical = d` to read the column as \
                 categories"
            )
        );
        // `--categorical` reads it as categories, bad cell and all.
        let forced = ["d".to_string()];
        let enc = date_encoding(text, false, &forced).unwrap();
        assert!(
            matches!(&enc.features[0], Feature::Categorical { categories, .. } if categories.len() == 4)
        );
        let enc = date_encoding(&text.replace("2024-02-30", "2024-02-29"), false, &forced).unwrap();
        assert!(matches!(enc.features[0], Feature::Categorical { .. }));
        // Text with a few dates in it stays text.
        let enc = date_encoding("d,y\nsoon,1\nlater,2\n2024-01-01,3\n", false, &[]).unwrap();
        assert!(matches!(enc.features[0], Feature::Categorical { .. }));
        // Dates in another form are not ISO dates: categories.
        let enc = date_encoding("d,y\n05/03/2024,1\n06/03/2024,2\n", false, &[]).unwrap();
        assert!(matches!(enc.features[0], Feature::Categorical { .. }));
        // A model file's date feature reads its column as text in new files.
        let enc = date_encoding("d,c,y\n2024-01-01,a,1\n2024-01-02,b,2\n", false, &[]).unwrap();
        assert_eq!(enc.text_names(), ["d", "c"]);
        assert_eq!(enc.categorical_names(), ["c"]);
    }
}
