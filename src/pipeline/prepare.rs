//! A training file read into memory, checked, encoded and split: the settings enter the
//! library here. The streamed ([`super::stream`]) and shared ([`super::share`]) modes
//! reuse its checks and [`fit_spec`], so that every mode refuses and fits alike.

use std::path::PathBuf;

use ndarray::Array2;
use sha2::{Digest, Sha256};

use crate::data::{ReadOptions, Table};
use crate::error::{Error, Hint, Result, Setting};
use crate::tabular::encoding::{Encoding, FitSpec, Scaling, Targets, Task, task_of};
use crate::tabular::stats::ColumnStats;
use crate::train::{MAX_PARAMETERS, Split, TrainConfig, parameter_count, split_rows};

/// What to do with missing cells in the training file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MissingPolicy {
    /// Refuse the file, naming the first missing cell.
    Error,
    /// Leave out the rows that have one, and say how many.
    Drop,
    /// Fill a missing feature cell with the training split's median (numbers) or most
    /// frequent category (text), and store those fill values in the model so that
    /// `predict` and `eval` fill new rows the same way. Rows without a target are left out.
    ///
    /// The default: on eleven real files with gaps (`bench/missing.py`) it scored better
    /// than dropping rows, on the rows both could score, and it scores every row.
    #[default]
    Impute,
}

/// Everything `mlp train` is asked to do.
#[derive(Debug, Clone)]
pub struct TrainRequest {
    /// The training CSV.
    pub data: PathBuf,
    /// The target column (default: the last column).
    pub target: Option<String>,
    /// The task (default: detected from the target column).
    pub task: Option<Task>,
    /// Rows with missing values.
    pub missing: MissingPolicy,
    /// Columns to treat as categories even if they hold numbers.
    pub categorical: Vec<String>,
    /// Columns to leave out (identifiers, free text).
    pub ignore: Vec<String>,
    /// How numeric columns become inputs (default: standardised, with quantile bins).
    pub scaling: Scaling,
    /// Network and training settings.
    pub config: TrainConfig,
}

impl TrainRequest {
    /// Defaults for everything but the file.
    pub fn new(data: impl Into<PathBuf>) -> Self {
        Self {
            data: data.into(),
            target: None,
            task: None,
            missing: MissingPolicy::Impute,
            categorical: Vec::new(),
            ignore: Vec::new(),
            scaling: Scaling::Piecewise,
            config: TrainConfig::default(),
        }
    }
}

/// A training file read, checked, encoded and split, ready to train on.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The training file.
    pub data: PathBuf,
    /// SHA-256 of the file's bytes, hex.
    pub sha256: String,
    /// The delimiter found.
    pub delimiter: u8,
    /// Rows kept.
    pub rows: usize,
    /// Rows dropped for missing values (with [`MissingPolicy::Impute`]: for a missing
    /// target).
    pub dropped: usize,
    /// Missing feature cells filled in ([`MissingPolicy::Impute`]) in the rows kept: (column,
    /// cells) for each column that had any, in file order.
    pub filled: Vec<(String, usize)>,
    /// The task.
    pub task: Task,
    /// Feature and target encoding (statistics from the training split).
    pub encoding: Encoding,
    /// Training inputs.
    pub x_train: Array2<f32>,
    /// Training targets.
    pub y_train: Targets,
    /// Validation inputs (no rows when the split is 0).
    pub x_val: Array2<f32>,
    /// Validation targets.
    pub y_val: Targets,
    /// Training rows: those of `x_train`, or in a data-parallel run
    /// ([`crate::pipeline::share::prepare_shared`]) those of every process.
    pub train_rows: usize,
    /// Validation rows, of every process as `train_rows`.
    pub validation_rows: usize,
    /// Numeric feature columns that look like row identifiers ([`identifier_columns`]):
    /// kept as features, but worth a warning. Found in memory only (empty for a run over
    /// processes).
    pub identifiers: Vec<String>,
    /// Which training rows (of `x_train`, in order) had a feature cell filled in by
    /// imputation; empty when none had (and for a run over processes).
    pub filled_rows: Vec<bool>,
    /// Numeric columns whose values f32 rounded together ([`coarse_columns`]), worth a
    /// warning. Found in memory only, like `identifiers`.
    pub coarse: Vec<Coarse>,
}

/// A numeric column whose values are finer than f32 (the network's number type) holds at
/// their size, so that distinct values in the file became one number ([`coarse_columns`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Coarse {
    /// The column's name.
    pub name: String,
    /// The largest magnitude among its values.
    pub largest: f32,
    /// The step between neighbouring f32 numbers at that magnitude.
    pub step: f32,
}

/// Rows that [`coarse_columns`] looks at.
pub const COARSE_SAMPLE: usize = 100_000;

/// The numeric columns of `table` whose values lost distinctness in f32. The file's text
/// is gone by now, so this is judged from the values kept: sorted, a column whose distinct
/// values sit on neighbouring f32 numbers (no f32 between them) in at least one pair of
/// every hundred, and at least once, was finer in the file than f32 can say there: Unix
/// timestamps in seconds (1.7e9, in steps of 128) or numbers with eight or more significant
/// digits. Numbers of seven significant digits or fewer never land on neighbouring f32s, so
/// ordinary data passes. Judged on the first [`COARSE_SAMPLE`] rows, so that a large file
/// is not sorted once more.
pub fn coarse_columns(table: &Table) -> Vec<Coarse> {
    let coarse = |name: &str, values: &[f32]| {
        let values = &values[..values.len().min(COARSE_SAMPLE)];
        let mut sorted: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
        sorted.sort_by(f32::total_cmp);
        sorted.dedup();
        let touching = (sorted.windows(2))
            .filter(|w| w[0] != 0.0 && w[1] != 0.0 && w[0].next_up() == w[1])
            .count();
        if touching == 0 || touching * 100 < sorted.len() {
            return None;
        }
        let largest = sorted[0].abs().max(sorted[sorted.len() - 1].abs());
        Some(Coarse {
            name: name.to_string(),
            largest,
            step: largest.next_up() - largest,
        })
    };
    (table.columns().iter())
        .filter_map(|c| match c {
            crate::data::Column::Numeric { name, values, .. } => coarse(name, values),
            _ => None,
        })
        .collect()
}

/// Fewest rows for [`identifier_columns`] to judge a column: in a smaller file any column
/// of whole numbers can easily be all different.
pub const IDENTIFIER_MIN_ROWS: usize = 20;

/// The numeric feature columns of `table` (besides `target`) that look like row
/// identifiers rather than measurements: every cell present, a whole number, and
/// different from every other (which a row number, counted from any offset, also is). A
/// row number predicts nothing about new rows, and in a file sorted by the target it
/// passes as a strong feature. Nothing in a table of fewer than [`IDENTIFIER_MIN_ROWS`]
/// rows.
pub fn identifier_columns(table: &Table, target: &str) -> Vec<String> {
    if table.rows() < IDENTIFIER_MIN_ROWS {
        return Vec::new();
    }
    let identifier = |values: &[f32]| {
        if values.iter().any(|v| v.is_nan() || v.fract() != 0.0) {
            return false;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f32::total_cmp);
        sorted.windows(2).all(|w| w[0] != w[1])
    };
    (table.columns().iter())
        .filter(|c| c.name() != target)
        .filter(|c| match c {
            crate::data::Column::Numeric { values, .. } => identifier(values),
            _ => false,
        })
        .map(|c| c.name().to_string())
        .collect()
}

/// Which of `rows` have a missing cell outside the `target` column (empty unless
/// `imputed`: without imputation no cell was filled).
fn filled_rows(table: &Table, target: &str, rows: &[usize], imputed: bool) -> Vec<bool> {
    if !imputed {
        return Vec::new();
    }
    let features: Vec<_> = (table.columns().iter())
        .filter(|c| c.name() != target && c.missing() > 0)
        .collect();
    (rows.iter())
        .map(|&r| features.iter().any(|c| c.is_missing(r)))
        .collect()
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads, checks, encodes and splits the training file of `request`.
///
/// This is where the settings enter the library: `request.config` is checked here, once
/// ([`TrainConfig::validate`]), before the file is read.
pub fn prepare(request: &TrainRequest) -> Result<Prepared> {
    request.config.validate()?;
    let path = &request.data;
    let bytes = crate::fsutil::read_data(path)?;
    prepare_checked(request, &bytes)
}

/// [`prepare`] for a training file already in memory (`request.data` names it in messages).
pub fn prepare_bytes(request: &TrainRequest, bytes: &[u8]) -> Result<Prepared> {
    request.config.validate()?;
    prepare_checked(request, bytes)
}

/// [`prepare_bytes`] for settings already validated.
fn prepare_checked(request: &TrainRequest, bytes: &[u8]) -> Result<Prepared> {
    let (mut table, target) = read_table(request, bytes)?;
    let total = table.rows();
    let dropped = drop_missing(&mut table, &target, request.missing)?;
    let rows = table.rows();
    if rows == 0 {
        return Err(nothing_kept(&table, total, request.missing));
    }
    // The target over every row kept: the task, and the classes to split by.
    let column = table.column(&target).expect("the target was checked");
    let all: Vec<usize> = (0..rows).collect();
    let mut target_stats = ColumnStats::new(column, true);
    target_stats.add(column, &all, &[], |r| table.line(r));
    let task = request.task.unwrap_or_else(|| task_of(&target_stats));
    let spec = fit_spec(request, &target, task, 0);
    let labels = Encoding::fit_target(&target_stats, &spec)?;
    let split = split_table(&table, &labels, &request.config)?;
    let spec = FitSpec {
        train_rows: split.train.len(),
        ..spec
    };
    let encoding = Encoding::fit_table(&table, &split.train, &spec)?;
    let mut filled = Vec::new();
    if request.missing == MissingPolicy::Impute {
        filled = (table.columns().iter())
            .filter(|c| c.name() != target && c.missing() > 0)
            .map(|c| (c.name().to_string(), c.missing()))
            .collect();
    }
    check_network_size(&encoding, &request.config)?;
    let filled_rows = filled_rows(&table, &target, &split.train, !filled.is_empty());
    Ok(Prepared {
        filled_rows,
        data: request.data.clone(),
        sha256: sha256_hex(bytes),
        delimiter: table.delimiter(),
        rows,
        dropped,
        filled,
        task,
        x_train: encoding.inputs(&table, &split.train)?,
        y_train: encoding.targets(&table, &split.train)?,
        x_val: encoding.inputs(&table, &split.validation)?,
        y_val: encoding.targets(&table, &split.validation)?,
        train_rows: split.train.len(),
        validation_rows: split.validation.len(),
        identifiers: identifier_columns(&table, &target),
        coarse: coarse_columns(&table),
        encoding,
    })
}

/// The error for a file of `total` rows of which `policy` keeps none.
pub(crate) fn nothing_kept(table: &Table, total: usize, policy: MissingPolicy) -> Error {
    let (message, hint) = match policy {
        MissingPolicy::Impute => (
            format!("the target is missing in every one of the {total} rows"),
            Hint::text("fill in the target column, or check ").name(Setting::Target),
        ),
        MissingPolicy::Error | MissingPolicy::Drop => (
            format!("every one of the {total} rows has a missing value"),
            Hint::text("fill in the missing cells, or use ").setting(Setting::Missing, "impute"),
        ),
    };
    Error::data(table.location(None, None), message, hint)
}

/// Reads the table, checks the columns `request` names, leaves out the ignored ones and
/// refuses unusable columns. Returns the table and the target column's name.
fn read_table(request: &TrainRequest, bytes: &[u8]) -> Result<(Table, String)> {
    let options = ReadOptions {
        categorical: request.categorical.clone(),
    };
    let table = Table::from_bytes(&request.data, bytes, &options)?;
    check_table(request, table)
}

/// The checks of [`read_table`] on a table read.
pub(crate) fn check_table(request: &TrainRequest, mut table: Table) -> Result<(Table, String)> {
    let header_error = |table: &Table, message: String, hint: Hint| {
        let mut location = table.location(None, None);
        location.line = Some(1);
        Error::data(location, message, hint)
    };
    for (setting, names) in [
        (Setting::Categorical, &request.categorical),
        (Setting::Ignore, &request.ignore),
    ] {
        if let Some(name) = names.iter().find(|c| table.column(c).is_none()) {
            return Err(Error::config(
                setting,
                format!("'{name}'"),
                format!("{} has no column of that name", request.data.display()),
                format!("the columns are: {}", table.headers().join(", ")),
            ));
        }
    }
    let target = match &request.target {
        Some(t) => t.clone(),
        None => table
            .headers()
            .last()
            .expect("a table has columns")
            .to_string(),
    };
    if request.ignore.contains(&target) {
        return Err(Error::config(
            Setting::Ignore,
            format!("'{target}'"),
            "this is the target column; it cannot be left out",
            Hint::text("name the column to predict with ")
                .name(Setting::Target)
                .then(" (without it, the last column is the target)"),
        ));
    }
    let columns_before = table.columns().len();
    table.drop_columns(&request.ignore);
    if table.column(&target).is_none() {
        return Err(header_error(
            &table,
            format!("there is no column '{target}' to use as the target"),
            Hint::text("name one of these with ")
                .name(Setting::Target)
                .then(format!(": {}", table.headers().join(", "))),
        ));
    }
    if table.columns().len() < 2 && columns_before > 1 {
        return Err(Error::config(
            Setting::Ignore,
            request.ignore.join(","),
            "this leaves no feature column, only the target",
            format!(
                "leave out fewer columns: training needs at least one feature besides the \
                 target '{target}'"
            ),
        ));
    }
    if table.columns().len() < 2 {
        return Err(one_column(&table));
    }
    for column in table.columns() {
        table.check_usable(column)?;
    }
    Ok((table, target))
}

/// The error for a table with a single column (often a file with another delimiter).
fn one_column(table: &Table) -> Error {
    let header = table.headers()[0].to_string();
    let spaced = header.split_whitespace().count() > 1;
    let mut location = table.location(None, None);
    location.line = Some(1);
    Error::data(
        location,
        format!(
            "the header has only one column, '{header}'; training needs at least one \
             feature and a target"
        ),
        if spaced {
            "the header looks space-separated; mlp reads ',', ';', tab or '|' as \
             delimiters: convert the file, e.g. to commas"
        } else {
            "check the delimiter: mlp reads ',' (or ';', tab or '|' when the header has \
             no commas)"
        },
    )
}

/// Applies `policy` to the rows with missing values; returns how many were dropped.
/// Imputing fills features only: a row without a target teaches nothing, and is dropped.
fn drop_missing(table: &mut Table, target: &str, policy: MissingPolicy) -> Result<usize> {
    let total = table.rows();
    let keep = rows_to_keep(table, target, policy);
    let dropped = keep.iter().filter(|k| !**k).count();
    if dropped > 0 {
        match policy {
            MissingPolicy::Error => {
                return Err(missing_error(table, &keep, target, dropped, total));
            }
            MissingPolicy::Drop | MissingPolicy::Impute => table.retain_rows(&keep),
        }
    }
    Ok(dropped)
}

/// Which rows of `table` `policy` keeps: with [`MissingPolicy::Impute`] those with a
/// target, otherwise those without a missing cell.
pub(crate) fn rows_to_keep(table: &Table, target: &str, policy: MissingPolicy) -> Vec<bool> {
    (0..table.rows())
        .map(|r| match policy {
            MissingPolicy::Impute => !table.column(target).is_some_and(|c| c.is_missing(r)),
            MissingPolicy::Error | MissingPolicy::Drop => {
                table.columns().iter().all(|c| !c.is_missing(r))
            }
        })
        .collect()
}

/// The error of [`MissingPolicy::Error`] for the first row of `table` that `keep` leaves
/// out; `dropped` of the file's `total` rows have missing cells.
pub(crate) fn missing_error(
    table: &Table,
    keep: &[bool],
    target: &str,
    dropped: usize,
    total: usize,
) -> Error {
    let row = keep.iter().position(|k| !k).expect("a row is missing");
    let column = table
        .columns()
        .iter()
        .find(|c| c.is_missing(row))
        .expect("a cell is missing")
        .name()
        .to_string();
    let hint = if column == target {
        Hint::text("a target cannot be made up: fill it in, or use ")
            .setting(Setting::Missing, "drop")
            .then(" (or ")
            .setting(Setting::Missing, "impute")
            .then(
                ", which also fills missing feature cells) to train without the \
                   rows that lack it",
            )
    } else {
        Hint::text("use ")
            .setting(Setting::Missing, "impute")
            .then(
                " to fill them (the column's median, or its most frequent \
                   category), ",
            )
            .setting(Setting::Missing, "drop")
            .then(" to train without those rows, or fill them in")
    };
    Error::data(
        table.location(Some(row), Some(&column)),
        format!(
            "this cell is missing, and {dropped} of the {total} rows {} missing \
             values",
            if dropped == 1 { "has" } else { "have" }
        ),
        hint,
    )
}

/// What [`Encoding::fit`] needs from `request`, for its `target` and `task`.
pub(crate) fn fit_spec<'a>(
    request: &'a TrainRequest,
    target: &'a str,
    task: Task,
    train_rows: usize,
) -> FitSpec<'a> {
    FitSpec {
        path: &request.data,
        target,
        task,
        scaling: request.scaling,
        impute: request.missing == MissingPolicy::Impute,
        categorical: &request.categorical,
        train_rows,
    }
}

/// Splits the rows for training and validation (stratified by class for classification).
/// `labels` is the target's encoding alone: class labels do not depend on the split, so
/// the stratification can use them.
fn split_table(table: &Table, labels: &Encoding, config: &TrainConfig) -> Result<Split> {
    let rows = table.rows();
    let all: Vec<usize> = (0..rows).collect();
    let classes = match labels.targets(table, &all)? {
        Targets::Classes(c) => Some(c),
        Targets::Values(_) => None,
    };
    checked_split(table, rows, classes.as_deref(), config)
}

/// [`split_rows`], refusing a split that leaves nothing to train or validate on.
pub(crate) fn checked_split(
    table: &Table,
    rows: usize,
    classes: Option<&[usize]>,
    config: &TrainConfig,
) -> Result<Split> {
    // With folds, every row trains (each network holds out its own fold, of 2 rows or more).
    let folds = config.folds;
    if folds >= 2 && rows < 2 * folds {
        return Err(Error::data(
            table.location(None, None),
            format!("only {rows} rows: too few for {folds} folds of 2 rows or more"),
            Hint::text("add rows, or use ")
                .setting(Setting::Folds, 0)
                .then(" ")
                .setting(Setting::ValSplit, 0)
                .then(" to train one network on all of them"),
        ));
    }
    let fraction = if folds >= 2 { 0.0 } else { config.val_split };
    let split = split_rows(rows, classes, fraction, config.seed);
    if split.train.is_empty() || (fraction > 0.0 && split.validation.is_empty()) {
        return Err(Error::data(
            table.location(None, None),
            format!(
                "only {rows} rows: too few to hold out {}% for validation",
                (fraction * 100.0).round()
            ),
            Hint::text("add rows, or use ")
                .setting(Setting::ValSplit, 0)
                .then(" to train on all of them"),
        ));
    }
    Ok(split)
}

/// Refuses a network too large to train (the hidden widths are checked by
/// [`TrainConfig::validate`]; the input and output widths only now).
pub(crate) fn check_network_size(encoding: &Encoding, config: &TrainConfig) -> Result<()> {
    let inputs = encoding.input_width();
    let outputs = encoding.target.width();
    if parameter_count(inputs, &config.hidden, outputs).is_some_and(|n| n <= MAX_PARAMETERS) {
        return Ok(());
    }
    let hidden = config
        .hidden
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",");
    Err(Error::config(
        Setting::Hidden,
        hidden,
        format!(
            "with {inputs} inputs and {outputs} outputs the network would have more than \
             {MAX_PARAMETERS} parameters"
        ),
        Hint::text("use smaller hidden layers, or leave out columns with many categories (")
            .name(Setting::Ignore)
            .then(")"),
    ))
}

/// Refuses, for a file whose rows are never all in one place (`how`: "streamed", "shared
/// over processes"), `--scaling robust` (the other scalings are found there exactly as in
/// memory, the robust one's interpolated quartiles are not) and a k-fold ensemble (its
/// networks each train on their own rows, which one pass over a file cannot give them).
pub(crate) fn check_spread(request: &TrainRequest, how: &str) -> Result<()> {
    let config = &request.config;
    if config.folds >= 2 {
        return Err(Error::config(
            Setting::Folds,
            config.folds,
            format!(
                "a file {how} trains one network: k-fold ensembles are trained in memory, \
                 in one process"
            ),
            Hint::text("use ")
                .setting(Setting::Folds, 0)
                .then(" (one network, validated on ")
                .name(Setting::ValSplit)
                .then(")"),
        ));
    }
    if request.scaling == Scaling::Robust {
        return Err(Error::config(
            Setting::Scaling,
            "robust",
            format!(
                "a file {how} is scaled by mean and deviation, with or without quantile bins, \
                 not by median and quartiles"
            ),
            Hint::text("use ")
                .setting(Setting::Scaling, "piecewise")
                .then(" (the default) or ")
                .setting(Setting::Scaling, "standard"),
        ));
    }
    Ok(())
}
