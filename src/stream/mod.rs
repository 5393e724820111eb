//! Training on a CSV file larger than memory: the file is read in chunks of whole lines,
//! each parsed by the same reader as a whole file ([`chunks`]).
//!
//! 1. A first pass ([`scan`]) learns what [`Encoding::fit`] learns from a table in memory
//!    (column kinds, categories, class labels, means and deviations of the training rows)
//!    from running sums, keeping no rows.
//! 2. A second pass keeps the rows the weights are judged on after every epoch in memory,
//!    up to a share of the memory limit ([`held_rows`]): the validation rows, or without a
//!    validation split a sample of the training rows.
//! 3. Every epoch reads the file again and trains on each chunk's training rows in
//!    shuffled mini-batches ([`StreamEpochs`]).
//!
//! Which rows validate is decided by a seeded hash of the row number
//! ([`is_validation_row`]), so every pass agrees without remembering, and validation rows
//! never reach training.

pub mod chunks;

use std::collections::HashSet;
use std::path::Path;

use ndarray::Array2;

use crate::comm::Communicator;
use crate::data::{Column, ReadOptions, Table};
use crate::dataset::{
    Encoding, Feature, MAX_INTEGER_CLASSES, TargetEncoding, Targets, Task, number_label,
};
use crate::error::{Error, Result, Setting};
use crate::loss::Loss;
use crate::optim::Optimizer;
use crate::pipeline::{MissingPolicy, TrainRequest};
use crate::sequential::Sequential;
use crate::train::{Batch, Batches, EpochEnd, Epochs, Observer};

use chunks::{Chunk, Chunks};

/// Whether data row `row` (0-based, counting every row of the file) is held out for
/// validation: a seeded hash of the row number below `fraction`, so about that fraction
/// of the rows validate and every pass over the file picks the same ones.
pub fn is_validation_row(row: u64, fraction: f32, seed: u64) -> bool {
    if fraction <= 0.0 {
        return false;
    }
    // SplitMix64's finaliser: neighbouring rows get unrelated hashes.
    let mut z = row
        .wrapping_add(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x5EED_5911_7000_0003);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    ((z >> 11) as f64 / (1u64 << 53) as f64) < fraction as f64
}

/// Count, mean and sum of squared deviations of numbers seen so far, merged a chunk at a
/// time (Chan, Golub and LeVeque's pairwise update), in `f64`.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    pub(crate) fn of(values: impl Iterator<Item = f32> + Clone) -> Moments {
        let (mut n, mut sum) = (0u64, 0f64);
        for v in values.clone() {
            n += 1;
            sum += v as f64;
        }
        if n == 0 {
            return Moments::default();
        }
        let mean = sum / n as f64;
        let m2 = values.map(|v| (v as f64 - mean).powi(2)).sum();
        Moments { n, mean, m2 }
    }

    pub(crate) fn merge(&mut self, other: Moments) {
        if other.n == 0 {
            return;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        self.mean += delta * other.n as f64 / n as f64;
        self.m2 += other.m2 + delta * delta * self.n as f64 * other.n as f64 / n as f64;
        self.n = n;
    }

    /// Mean and (population) deviation as [`crate::dataset::mean_std`] gives them: a
    /// constant column gets deviation 1.
    pub(crate) fn mean_std(&self) -> (f64, f64) {
        if self.n == 0 {
            return (0.0, 1.0);
        }
        let std = (self.m2 / self.n as f64).sqrt();
        if std <= self.mean.abs() * 1e-12 || !std.is_finite() {
            (self.mean, 1.0)
        } else {
            (self.mean, std)
        }
    }
}

/// What the first pass learns about one column.
#[derive(Debug, Clone)]
enum ColumnStats {
    Numbers {
        /// Over the training rows.
        moments: Moments,
        /// Over every row: whether all are integers, and up to 21 distinct values (for
        /// choosing the task).
        integer: bool,
        distinct: Vec<f32>,
    },
    Text {
        categories: HashSet<String>,
        present: u64,
    },
}

/// Most distinct categories the first pass keeps per column before refusing it.
const MAX_CATEGORIES: usize = 1 << 20;

/// What the first pass over a file found: enough to train on it without holding it.
#[derive(Debug, Clone)]
pub struct Scan {
    /// The encoding [`Encoding::fit`] would learn from the whole file in memory.
    pub encoding: Encoding,
    /// The task.
    pub task: Task,
    /// The delimiter found.
    pub delimiter: u8,
    /// Rows kept.
    pub rows: usize,
    /// Rows dropped for missing values.
    pub dropped: usize,
    /// Kept rows that train.
    pub train_rows: usize,
    /// Kept rows held out for validation.
    pub validation_rows: usize,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, hex.
    pub sha256: String,
    /// Columns read as text (the user's `--categorical`, and any column found to hold
    /// text): later passes read them so too.
    text_columns: Vec<String>,
}

/// One chunk read and checked: its table, and the (chunk) rows that train and validate.
struct ReadChunk {
    chunk: Chunk,
    table: Table,
    train: Vec<usize>,
    validation: Vec<usize>,
    dropped: usize,
}

/// Reads `chunk` into a table with the request's columns, and sorts its rows into
/// training, validation and dropped. `first_row` is the file's index of its first row.
fn read_chunk(
    request: &TrainRequest,
    text_columns: &[String],
    chunk: Chunk,
    first_row: u64,
) -> Result<ReadChunk> {
    let path = &request.data;
    let options = ReadOptions {
        categorical: text_columns.to_vec(),
    };
    let mut table = Table::from_bytes(path, &chunk.bytes, &options).map_err(|e| chunk.locate(e))?;
    table.drop_columns(&request.ignore);
    for column in table.columns() {
        table.check_usable(column).map_err(|e| chunk.locate(e))?;
    }
    let (mut train, mut validation, mut dropped) = (Vec::new(), Vec::new(), 0);
    for r in 0..table.rows() {
        if let Some(column) = table.columns().iter().find(|c| c.is_missing(r)) {
            match request.missing {
                MissingPolicy::Drop => {}
                MissingPolicy::Error => {
                    return Err(chunk.locate(Error::data(
                        table.location(Some(r), Some(column.name())),
                        "this cell is missing",
                        "fill in the missing cells, or pass --missing drop to train without \
                         those rows",
                    )));
                }
                // Filling needs the medians of the whole file before the first row is
                // encoded: a pass this streaming path does not make yet.
                MissingPolicy::Impute => {
                    return Err(chunk.locate(Error::data(
                        table.location(Some(r), Some(column.name())),
                        "this cell is missing, and a streamed file cannot have its missing \
                         cells filled in yet",
                        "pass --missing drop to train without those rows, or fill them in",
                    )));
                }
            }
            dropped += 1;
            continue;
        }
        let seed = request.config.seed;
        if is_validation_row(first_row + r as u64, request.config.val_split, seed) {
            validation.push(r);
        } else {
            train.push(r);
        }
    }
    Ok(ReadChunk {
        chunk,
        table,
        train,
        validation,
        dropped,
    })
}

/// The header checks of the in-memory path, on the first chunk's table.
fn check_header(request: &TrainRequest, table: &Table, target: &str) -> Result<()> {
    let header_error = |message: String, hint: String| {
        let mut location = table.location(None, None);
        location.line = Some(1);
        Error::data(location, message, hint)
    };
    let columns = table.headers().join(", ");
    for (flag, names) in [
        ("--categorical", &request.categorical),
        ("--ignore", &request.ignore),
    ] {
        if let Some(name) = names.iter().find(|c| table.column(c).is_none()) {
            return Err(header_error(
                format!("{flag} names column '{name}', which is not in the header"),
                format!("the columns are: {columns}"),
            ));
        }
    }
    if request.ignore.iter().any(|c| c == target) {
        return Err(Error::config(
            Setting::Ignore,
            target,
            "this is the target column (--target, or else the last column)",
            "leave it out of --ignore, or choose another --target",
        ));
    }
    if table.column(target).is_none() {
        return Err(header_error(
            format!("there is no column '{target}' to use as the target"),
            format!("pass --target with one of: {columns}"),
        ));
    }
    if table.columns().len() - request.ignore.len() < 2 {
        return Err(header_error(
            "training needs at least one feature column besides the target".into(),
            "check the delimiter and --ignore".into(),
        ));
    }
    Ok(())
}

/// The first pass: learns the encoding of the file of `request` in chunks of about
/// `chunk_bytes`, without keeping rows.
pub fn scan(request: &TrainRequest, chunk_bytes: usize) -> Result<Scan> {
    request.config.validate()?;
    let mut text_columns = request.categorical.clone();
    loop {
        match scan_once(request, chunk_bytes, &text_columns)? {
            Ok(scan) => return Ok(scan),
            // A column read as numbers in early chunks holds text further on: read it as
            // text from the start, as the in-memory reader would.
            Err(column) => text_columns.push(column),
        }
    }
}

fn scan_once(
    request: &TrainRequest,
    chunk_bytes: usize,
    text_columns: &[String],
) -> Result<std::result::Result<Scan, String>> {
    let path = &request.data;
    let mut chunks = Chunks::open(path, chunk_bytes)?;
    let mut target = request.target.clone().unwrap_or_default();
    let mut stats: Vec<(String, ColumnStats)> = Vec::new();
    let (mut rows, mut dropped, mut train_rows, mut validation_rows) = (0, 0, 0, 0);
    let mut first_row = 0u64;
    let mut delimiter = b',';
    let mut last_table: Option<(Chunk, Table)> = None;
    while let Some(chunk) = chunks.next_chunk()? {
        let first = first_row == 0 && stats.is_empty();
        if first {
            let options = ReadOptions {
                categorical: text_columns.to_vec(),
            };
            let table =
                Table::from_bytes(path, &chunk.bytes, &options).map_err(|e| chunk.locate(e))?;
            if request.target.is_none() {
                target = table
                    .headers()
                    .last()
                    .map_or(String::new(), |h| h.to_string());
            }
            check_header(request, &table, &target)?;
            delimiter = table.delimiter();
        }
        let read = read_chunk(request, text_columns, chunk, first_row)?;
        first_row += read.table.rows() as u64;
        dropped += read.dropped;
        train_rows += read.train.len();
        validation_rows += read.validation.len();
        rows += read.train.len() + read.validation.len();
        let kept: Vec<usize> = {
            let mut k: Vec<usize> = read.train.iter().chain(&read.validation).copied().collect();
            k.sort_unstable();
            k
        };
        if stats.is_empty() {
            stats = read
                .table
                .columns()
                .iter()
                .map(|c| {
                    let s = match c {
                        Column::Text { .. } => ColumnStats::Text {
                            categories: HashSet::new(),
                            present: 0,
                        },
                        _ => ColumnStats::Numbers {
                            moments: Moments::default(),
                            integer: true,
                            distinct: Vec::new(),
                        },
                    };
                    (c.name().to_string(), s)
                })
                .collect();
        }
        for (column, (name, s)) in read.table.columns().iter().zip(&mut stats) {
            match (column, s) {
                (
                    Column::Numeric { values, .. },
                    ColumnStats::Numbers {
                        moments,
                        integer,
                        distinct,
                    },
                ) => {
                    moments.merge(Moments::of(read.train.iter().map(|&r| values[r])));
                    for &r in &kept {
                        let v = values[r];
                        *integer &= v.fract() == 0.0;
                        if distinct.len() <= MAX_INTEGER_CLASSES && !distinct.contains(&v) {
                            distinct.push(v);
                        }
                    }
                }
                (
                    Column::Text {
                        codes, categories, ..
                    },
                    ColumnStats::Text {
                        categories: seen,
                        present,
                    },
                ) => {
                    let mut used = vec![false; categories.len()];
                    for &r in &kept {
                        used[codes[r] as usize] = true;
                    }
                    *present += kept.len() as u64;
                    for (c, _) in categories.iter().zip(used).filter(|(_, u)| *u) {
                        if !seen.contains(c) {
                            seen.insert(c.clone());
                        }
                    }
                    if seen.len() > MAX_CATEGORIES {
                        return Err(read.chunk.locate(Error::data(
                            read.table.location(None, Some(name)),
                            format!("more than {MAX_CATEGORIES} different values"),
                            format!("leave it out with --ignore {name}"),
                        )));
                    }
                }
                (Column::Text { .. }, ColumnStats::Numbers { .. }) => {
                    return Ok(Err(name.clone()));
                }
                _ => unreachable!("columns read as text stay text"),
            }
        }
        last_table = Some((read.chunk, read.table));
    }
    let Some((last_chunk, table)) = last_table else {
        let mut location = crate::error::Location {
            path: path.clone(),
            ..Default::default()
        };
        location.line = Some(1);
        return Err(Error::data(
            location,
            "there are no data rows after the header",
            "check that this is the right file",
        ));
    };
    let locate = |e: Error| last_chunk.locate(e);
    if rows == 0 {
        return Err(Error::data(
            crate::error::Location {
                path: path.clone(),
                ..Default::default()
            },
            format!("every one of the {dropped} rows has a missing value"),
            "fill in the missing cells",
        ));
    }
    if train_rows == 0 || (request.config.val_split > 0.0 && validation_rows == 0) {
        return Err(Error::data(
            table.location(None, None),
            format!(
                "only {rows} rows: too few to hold out {}% for validation",
                (request.config.val_split * 100.0).round()
            ),
            "add rows, or pass --val-split 0 to train on all of them",
        ));
    }

    let column_error = |name: &str, message: String, hint: String| {
        Error::data(
            crate::error::Location {
                path: path.clone(),
                line: None,
                column: Some(name.to_string()),
            },
            message,
            hint,
        )
    };
    let target_stats = &stats
        .iter()
        .find(|(n, _)| *n == target)
        .expect("the header check found the target")
        .1;
    let task = match (request.task, target_stats) {
        (Some(t), _) => t,
        (None, ColumnStats::Text { .. }) => Task::Classification,
        (
            None,
            ColumnStats::Numbers {
                integer, distinct, ..
            },
        ) => {
            if *integer && distinct.len() <= MAX_INTEGER_CLASSES {
                Task::Classification
            } else {
                Task::Regression
            }
        }
    };
    let target_encoding = match (task, target_stats) {
        (
            Task::Classification,
            ColumnStats::Text {
                categories,
                present,
            },
        ) => {
            let mut labels: Vec<String> = categories.iter().cloned().collect();
            labels.sort();
            if labels.len() > MAX_INTEGER_CLASSES && labels.len() as u64 * 2 > *present {
                return Err(column_error(
                    &target,
                    format!(
                        "the target has {} different values in {present} rows, too many to be \
                         classes",
                        labels.len()
                    ),
                    "check --target".into(),
                ));
            }
            TargetEncoding::Classes {
                name: target.clone(),
                labels,
            }
        }
        (Task::Classification, ColumnStats::Numbers { distinct, .. }) => {
            if distinct.len() > MAX_INTEGER_CLASSES {
                return Err(column_error(
                    &target,
                    format!(
                        "the target has more than {MAX_INTEGER_CLASSES} different numbers, too \
                         many to be classes when streaming"
                    ),
                    "use --task regression, or check --target".into(),
                ));
            }
            let mut d = distinct.clone();
            d.sort_by(f32::total_cmp);
            TargetEncoding::Classes {
                name: target.clone(),
                labels: d.into_iter().map(number_label).collect(),
            }
        }
        (Task::Regression, ColumnStats::Numbers { moments, .. }) => {
            let (mean, std) = moments.mean_std();
            TargetEncoding::Values {
                name: target.clone(),
                mean,
                std,
            }
        }
        (Task::Regression, ColumnStats::Text { .. }) => {
            return Err(column_error(
                &target,
                "regression needs a numeric target, but the column holds text".into(),
                "use --task classification, or pick a numeric --target".into(),
            ));
        }
    };
    if let TargetEncoding::Classes { labels, .. } = &target_encoding
        && labels.len() < 2
    {
        return Err(column_error(
            &target,
            format!(
                "classification needs at least two classes, but every row has {}",
                labels
                    .first()
                    .map_or("no label".to_string(), |l| format!("'{l}'"))
            ),
            "check --target names the column to predict".into(),
        ));
    }
    let mut features = Vec::new();
    for (name, s) in &stats {
        if *name == target {
            continue;
        }
        features.push(match s {
            ColumnStats::Numbers { moments, .. } => {
                let (mean, std) = moments.mean_std();
                Feature::Numeric {
                    name: name.clone(),
                    mean,
                    std,
                    fill: None,
                }
            }
            ColumnStats::Text {
                categories,
                present,
            } => {
                let forced = request.categorical.iter().any(|c| c == name);
                if !forced
                    && categories.len() > MAX_INTEGER_CLASSES
                    && categories.len() as u64 * 2 > *present
                {
                    return Err(locate(column_error(
                        name,
                        format!(
                            "{} different values in {present} rows: as categories, most would \
                             be seen about once, and new rows would bring unseen ones",
                            categories.len()
                        ),
                        format!(
                            "if this is an identifier or free text, leave it out with --ignore \
                             {name}; to keep it as categories anyway, pass --categorical {name}"
                        ),
                    )));
                }
                let mut categories: Vec<String> = categories.iter().cloned().collect();
                categories.sort();
                Feature::Categorical {
                    name: name.clone(),
                    categories,
                    fill: None,
                }
            }
        });
    }
    Ok(Ok(Scan {
        encoding: Encoding {
            features,
            target: target_encoding,
        },
        task,
        delimiter,
        rows,
        dropped,
        train_rows,
        validation_rows,
        bytes: chunks.bytes_read(),
        sha256: chunks.sha256_hex(),
        text_columns: text_columns.to_vec(),
    }))
}

/// Inputs and targets of rows kept in memory.
#[derive(Debug, Clone)]
pub struct Held {
    /// Inputs, (rows, network inputs).
    pub x: Array2<f32>,
    /// Targets.
    pub y: Targets,
    /// Of how many rows of their kind these are the first.
    pub of: usize,
}

impl Held {
    /// The rows as a [`Batch`].
    pub fn batch(&self) -> Batch<'_> {
        Batch {
            x: self.x.view(),
            y: &self.y,
        }
    }
}

/// Reads the first rows (up to `max_bytes` of encoded inputs and targets) that validate
/// (`validation`) or train: the rows the weights are judged on after every epoch.
pub fn held_rows(
    request: &TrainRequest,
    scan: &Scan,
    chunk_bytes: usize,
    validation: bool,
    max_bytes: usize,
) -> Result<Held> {
    let width = scan.encoding.input_width();
    let max_rows = (max_bytes / (4 * (width + 1))).max(1);
    let mut x: Vec<f32> = Vec::new();
    let mut classes = Vec::new();
    let mut values = Vec::new();
    let mut n = 0;
    let mut chunks = Chunks::open(&request.data, chunk_bytes)?;
    let mut first_row = 0u64;
    while n < max_rows
        && let Some(chunk) = chunks.next_chunk()?
    {
        let read = read_chunk(request, &scan.text_columns, chunk, first_row)?;
        first_row += read.table.rows() as u64;
        let rows = if validation {
            &read.validation
        } else {
            &read.train
        };
        let rows = &rows[..rows.len().min(max_rows - n)];
        let locate = |e| read.chunk.locate(e);
        let inputs = scan.encoding.inputs(&read.table, rows).map_err(locate)?;
        x.extend(inputs.iter());
        match scan.encoding.targets(&read.table, rows).map_err(locate)? {
            Targets::Classes(c) => classes.extend(c),
            Targets::Values(v) => values.extend(v.iter()),
        }
        n += rows.len();
    }
    let y = match scan.task {
        Task::Classification => Targets::Classes(classes),
        Task::Regression => Targets::Values(Array2::from_shape_vec((n, 1), values).unwrap()),
    };
    Ok(Held {
        x: Array2::from_shape_vec((n, width), x).expect("width inputs per row"),
        y,
        of: if validation {
            scan.validation_rows
        } else {
            scan.train_rows
        },
    })
}

/// Training epochs read from the file: each chunk's training rows in shuffled
/// mini-batches (the shuffle buffer is the chunk).
pub struct StreamEpochs<'a> {
    request: &'a TrainRequest,
    scan: &'a Scan,
    chunk_bytes: usize,
    comm: Option<&'a dyn Communicator>,
    epoch: u64,
}

impl<'a> StreamEpochs<'a> {
    /// Epochs over the file of `request`, read in chunks of about `chunk_bytes`; with
    /// `comm`, trained together with the other processes (each reads the whole file).
    pub fn new(
        request: &'a TrainRequest,
        scan: &'a Scan,
        chunk_bytes: usize,
        comm: Option<&'a dyn Communicator>,
    ) -> Self {
        Self {
            request,
            scan,
            chunk_bytes,
            comm,
            epoch: 0,
        }
    }
}

impl Epochs for StreamEpochs<'_> {
    fn epoch(
        &mut self,
        model: &mut Sequential,
        loss: &mut dyn Loss,
        optimizer: &mut dyn Optimizer,
        interrupted: &dyn Fn() -> bool,
        mut observer: Option<&mut (dyn Observer + '_)>,
    ) -> Result<EpochEnd> {
        self.epoch += 1;
        let config = &self.request.config;
        let mut chunks = Chunks::open(&self.request.data, self.chunk_bytes)?;
        let (mut first_row, mut total, mut rows, mut batches_run) = (0u64, 0f64, 0usize, 0);
        let mut index = 0u64;
        while let Some(chunk) = chunks.next_chunk()? {
            let read = read_chunk(self.request, &self.scan.text_columns, chunk, first_row)?;
            first_row += read.table.rows() as u64;
            if read.train.is_empty() {
                continue;
            }
            let locate = |e| read.chunk.locate(e);
            let x = self
                .scan
                .encoding
                .inputs(&read.table, &read.train)
                .map_err(locate)?;
            let y = self
                .scan
                .encoding
                .targets(&read.table, &read.train)
                .map_err(locate)?;
            let n = read.train.len();
            drop(read);
            // A seed per epoch and chunk: a fresh order every time, the same on every run.
            index += 1;
            let seed = config.seed ^ (self.epoch << 32) ^ index;
            let mut batches = Batches::new(Batch { x: x.view(), y: &y }, config.batch_size, seed);
            if let Some(comm) = self.comm {
                batches = batches.shared(comm, config.batch_size);
            }
            let observer = observer.as_deref_mut();
            match batches.epoch_observed(model, loss, optimizer, interrupted, observer)? {
                EpochEnd::Finished { mean_loss } => {
                    total += mean_loss as f64 * n as f64;
                    rows += n;
                    batches_run += n.div_ceil(config.batch_size);
                }
                EpochEnd::Diverged { batch } => {
                    return Ok(EpochEnd::Diverged {
                        batch: batches_run + batch,
                    });
                }
                EpochEnd::Interrupted => return Ok(EpochEnd::Interrupted),
            }
        }
        Ok(EpochEnd::Finished {
            mean_loss: (total / rows.max(1) as f64) as f32,
        })
    }
}

/// Whether `path` is a regular file of more than `bytes` (what decides streaming).
pub fn larger_than(path: &Path, bytes: u64) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_rows_are_a_seeded_fraction() {
        let picked = |seed| {
            (0..10_000u64)
                .filter(|&r| is_validation_row(r, 0.2, seed))
                .collect::<Vec<_>>()
        };
        let a = picked(0);
        assert!((1900..2100).contains(&a.len()), "{}", a.len());
        assert_eq!(a, picked(0));
        assert_ne!(a, picked(1));
        assert!(!(0..1000).any(|r| is_validation_row(r, 0.0, 0)));
    }

    #[test]
    fn moments_merge_as_if_seen_at_once() {
        let all = [1.0f32, 2.0, 4.0, 8.0, 16.0, -3.0];
        let mut merged = Moments::of(all[..2].iter().copied());
        merged.merge(Moments::of(all[2..].iter().copied()));
        merged.merge(Moments::of([].into_iter()));
        let (mean, std) = merged.mean_std();
        let (want_mean, want_std) = crate::dataset::mean_std(all.iter().copied());
        assert!((mean - want_mean).abs() < 1e-12 && (std - want_std).abs() < 1e-12);
        assert_eq!(
            Moments::of([5.0f32, 5.0].into_iter()).mean_std(),
            (5.0, 1.0)
        );
    }
}
