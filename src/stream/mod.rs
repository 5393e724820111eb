//! Training on a CSV file larger than memory: the file is read in chunks of whole lines,
//! each parsed by the same reader as a whole file ([`chunks`]).
//!
//! 1. A first pass ([`scan`]) learns what [`Encoding::fit`] learns from a table in memory
//!    (column kinds, categories, class labels, means and deviations of the training rows)
//!    from running sums, keeping no rows.
//! 2. A second pass keeps the rows the weights are judged on after every epoch in memory,
//!    at most `held_rows` of them ([`held_rows`]): the first validation rows, or without a
//!    validation split the first training rows.
//! 3. Every epoch reads the file again and trains on its training rows in windows of
//!    `shuffle_window` rows, each shuffled into mini-batches ([`StreamEpochs`], [`window`]).
//!
//! Neither the rows held nor the windows depend on the size of the chunks read, which
//! follows the memory limit: the same file, settings and seed give the same network on any
//! machine and under any `--memory-limit` that can hold a window and the held rows.
//!
//! Which rows validate is decided by a seeded hash of the line the row starts on
//! ([`is_validation_row`]), so every pass agrees without remembering, validation rows never
//! reach training, and the split does not depend on how the file is shared out.
//!
//! With `--missing impute`, the first pass also counts every column's categories in the
//! training rows (for the most frequent) and its numbers by the top bits of their keys, and
//! one more pass finds the exact medians ([`Medians`]): memory for counts, never for rows.
//! Quantile bin edges ([`Scaling::Piecewise`], the default) are found so too: the first
//! pass counts numbers by the top bits of their keys, and further passes find the exact
//! numbers of the quantiles' ranks ([`OrderStats`]), the edges one process finds in memory.
//!
//! In a data-parallel run each process streams only its share of the file
//! ([`crate::share`]): the passes' findings are combined over the processes, and every step
//! trains on one local batch from each process together ([`StreamEpochs`]).

pub mod chunks;
pub mod window;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use ndarray::Array2;

use crate::comm::{Communicator, Solo, settle};
use crate::data::{Column, ReadOptions, Table};
use crate::dataset::{
    BINS, Encoding, Feature, MAX_INTEGER_CLASSES, Scaling, TargetEncoding, Targets, Task,
    bin_ranks, distinct_edges, number_label,
};
use crate::error::{Error, Result, Setting};
use crate::loss::Loss;
use crate::median::{Medians, OrderStats};
use crate::optim::Optimizer;
use crate::pipeline::{MissingPolicy, TrainRequest};
use crate::sequential::Sequential;
use crate::share::Range;
use crate::train::{Batch, Batches, EpochEnd, Epochs, Observer, step_together};

use chunks::{Chunk, Chunks};
use window::Windows;

/// Whether the data row starting on line `row` of the file is held out for validation: a
/// seeded hash of the line number below `fraction`, so about that fraction of the rows
/// validate and every pass over the file (in one process or many) picks the same ones.
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
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum ColumnStats {
    Numbers {
        /// Over the training rows.
        moments: Moments,
        /// Over every row: whether all are integers, and up to 21 distinct values (for
        /// choosing the task).
        integer: bool,
        distinct: Vec<f32>,
        /// Missing cells in the rows kept.
        missing: u64,
    },
    Text {
        categories: HashSet<String>,
        present: u64,
        /// How often each category is in the training rows (for `--missing impute`).
        train_counts: BTreeMap<String, u64>,
        /// Missing cells in the rows kept.
        missing: u64,
    },
}

impl ColumnStats {
    /// Adds what another process learnt about the same column.
    fn merge(&mut self, other: ColumnStats) {
        match (self, other) {
            (
                ColumnStats::Numbers {
                    moments,
                    integer,
                    distinct,
                    missing,
                },
                ColumnStats::Numbers {
                    moments: m,
                    integer: i,
                    distinct: d,
                    missing: n,
                },
            ) => {
                moments.merge(m);
                *integer &= i;
                for v in d {
                    if distinct.len() <= MAX_INTEGER_CLASSES && !distinct.contains(&v) {
                        distinct.push(v);
                    }
                }
                *missing += n;
            }
            (
                ColumnStats::Text {
                    categories,
                    present,
                    train_counts,
                    missing,
                },
                ColumnStats::Text {
                    categories: c,
                    present: p,
                    train_counts: t,
                    missing: n,
                },
            ) => {
                categories.extend(c);
                *present += p;
                for (category, count) in t {
                    *train_counts.entry(category).or_default() += count;
                }
                *missing += n;
            }
            _ => unreachable!("every process reads a column as the same kind"),
        }
    }

    fn missing(&self) -> u64 {
        match self {
            ColumnStats::Numbers { missing, .. } | ColumnStats::Text { missing, .. } => *missing,
        }
    }
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
    /// Missing feature cells filled in (`--missing impute`) in the rows kept: (column,
    /// cells) for each column that had any, in file order.
    pub filled: Vec<(String, usize)>,
    /// This process's share of the file in a data-parallel run (`None`: the whole file).
    pub range: Option<Range>,
    /// Columns read as text (the user's `--categorical`, and any column found to hold
    /// text): later passes read them so too.
    text_columns: Vec<String>,
}

impl Scan {
    /// Opens the part of the file this process reads, in chunks of about `chunk_bytes`.
    fn open(&self, path: &Path, chunk_bytes: usize) -> Result<Chunks> {
        open_part(path, chunk_bytes, self.range)
    }
}

fn open_part(path: &Path, chunk_bytes: usize, range: Option<Range>) -> Result<Chunks> {
    match range {
        None => Chunks::open(path, chunk_bytes),
        Some(r) => Chunks::open_range(path, chunk_bytes, (r.start, r.end), r.first_line),
    }
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
/// training, validation and dropped (by the missing-value policy).
fn read_chunk(request: &TrainRequest, text_columns: &[String], chunk: Chunk) -> Result<ReadChunk> {
    let path = &request.data;
    let options = ReadOptions {
        categorical: text_columns.to_vec(),
    };
    let mut table = Table::from_bytes(path, &chunk.bytes, &options).map_err(|e| chunk.locate(e))?;
    table.drop_columns(&request.ignore);
    for column in table.columns() {
        table.check_usable(column).map_err(|e| chunk.locate(e))?;
    }
    let target = request
        .target
        .clone()
        .or_else(|| table.headers().last().map(|h| h.to_string()))
        .unwrap_or_default();
    let (mut train, mut validation, mut dropped) = (Vec::new(), Vec::new(), 0);
    for r in 0..table.rows() {
        let missing = match request.missing {
            // Filled from the fill values: only a row without a target is left out.
            MissingPolicy::Impute => table.column(&target).filter(|c| c.is_missing(r)),
            MissingPolicy::Drop | MissingPolicy::Error => {
                table.columns().iter().find(|c| c.is_missing(r))
            }
        };
        if let Some(column) = missing {
            if request.missing == MissingPolicy::Error {
                return Err(chunk.locate(Error::data(
                    table.location(Some(r), Some(column.name())),
                    "this cell is missing",
                    "fill in the missing cells, or pass --missing impute to fill them or \
                     --missing drop to train without those rows",
                )));
            }
            dropped += 1;
            continue;
        }
        let line = chunk.file_line(table.line(r)) as u64;
        if is_validation_row(line, request.config.val_split, request.config.seed) {
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
    scan_shared(request, chunk_bytes, &Solo)
}

/// [`scan`] by every process of `comm`, each reading only its share of the file
/// ([`crate::share::share_range`]); what they find is combined, so that every process ends
/// with the [`Scan`] of the whole file. Collective.
pub fn scan_shared(
    request: &TrainRequest,
    chunk_bytes: usize,
    comm: &dyn Communicator,
) -> Result<Scan> {
    settle(comm, request.config.validate())?;
    let range = if comm.size() > 1 {
        Some(crate::share::share_range(&request.data, comm)?.0)
    } else {
        None
    };
    let mut text_columns = request.categorical.clone();
    let part = loop {
        let part = settle(comm, scan_part(request, chunk_bytes, &text_columns, range))?;
        // A column read as numbers in early chunks holds text further on (here or in
        // another share): read it as text from the start, as the in-memory reader would.
        let found = crate::share::gather(comm, &part.as_ref().err().cloned());
        let mut found: Vec<String> = found.into_iter().flatten().collect();
        found.sort();
        found.dedup();
        match part {
            Ok(part) if found.is_empty() => break part,
            _ => text_columns.extend(found),
        }
    };
    finish_scan(request, chunk_bytes, comm, range, text_columns, part)
}

/// What one process's pass over its part of the file found.
struct PartScan {
    /// The header, as a table without rows: names, delimiter, location of messages.
    header: Table,
    target: String,
    stats: Vec<(String, ColumnStats)>,
    counts: PartCounts,
    /// With `--missing impute`: the first pass of the medians.
    medians: Option<Medians>,
    /// With [`Scaling::Piecewise`]: the first pass of the quantiles of the bin edges.
    quantiles: Option<OrderStats>,
    bytes_read: u64,
    sha256: String,
}

/// Rows a process read, kept, dropped, trained and validated on.
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
struct PartCounts {
    rows: usize,
    dropped: usize,
    train_rows: usize,
    validation_rows: usize,
}

/// Memory for counting numbers by the bits of their keys (the medians and quantiles).
fn median_bytes(chunk_bytes: usize) -> usize {
    chunk_bytes.max(1 << 20)
}

/// One pass over this process's part of the file, or the name of a column found to hold
/// text that was read as numbers until then.
fn scan_part(
    request: &TrainRequest,
    chunk_bytes: usize,
    text_columns: &[String],
    range: Option<Range>,
) -> Result<std::result::Result<PartScan, String>> {
    let path = &request.data;
    let mut chunks = open_part(path, chunk_bytes, range)?;
    let options = ReadOptions {
        categorical: text_columns.to_vec(),
    };
    let mut header = Table::from_part(path, chunks.header(), &options, Some(&[]))?;
    let target = match &request.target {
        Some(t) => t.clone(),
        None => header
            .headers()
            .last()
            .map_or(String::new(), |h| h.to_string()),
    };
    check_header(request, &header, &target)?;
    header.drop_columns(&request.ignore);
    let mut stats: Vec<(String, ColumnStats)> = (header.columns().iter())
        .map(|c| {
            let s = match c {
                Column::Text { .. } => ColumnStats::Text {
                    categories: HashSet::new(),
                    present: 0,
                    train_counts: BTreeMap::new(),
                    missing: 0,
                },
                _ => ColumnStats::Numbers {
                    moments: Moments::default(),
                    integer: true,
                    distinct: Vec::new(),
                    missing: 0,
                },
            };
            (c.name().to_string(), s)
        })
        .collect();
    // The memory for counts, shared by the medians and quantiles as their ranks wanted.
    let (impute, bin) = (
        request.missing == MissingPolicy::Impute,
        request.config.scaling == Scaling::Piecewise,
    );
    let ranks = 2 * impute as usize + (BINS + 1) * bin as usize;
    let bytes_per_rank = median_bytes(chunk_bytes) / ranks.max(1);
    let mut medians = impute.then(|| Medians::new(stats.len(), 2 * bytes_per_rank));
    let mut quantiles = bin.then(|| {
        OrderStats::new(
            stats.len(),
            BINS + 1,
            bin_ranks,
            (BINS + 1) * bytes_per_rank,
        )
    });
    let mut counts = PartCounts::default();
    while let Some(chunk) = chunks.next_chunk()? {
        let read = read_chunk(request, text_columns, chunk)?;
        counts.dropped += read.dropped;
        counts.train_rows += read.train.len();
        counts.validation_rows += read.validation.len();
        counts.rows += read.train.len() + read.validation.len();
        let kept: Vec<usize> = {
            let mut k: Vec<usize> = read.train.iter().chain(&read.validation).copied().collect();
            k.sort_unstable();
            k
        };
        for (i, (column, (name, s))) in read.table.columns().iter().zip(&mut stats).enumerate() {
            match (column, s) {
                (
                    Column::Numeric { values, .. },
                    ColumnStats::Numbers {
                        moments,
                        integer,
                        distinct,
                        missing,
                    },
                ) => {
                    let present = read.train.iter().map(|&r| values[r]);
                    moments.merge(Moments::of(present.filter(|v| !v.is_nan())));
                    if let Some(m) = medians.as_mut() {
                        read.train.iter().for_each(|&r| m.add(i, values[r]));
                    }
                    if let Some(q) = quantiles.as_mut() {
                        read.train.iter().for_each(|&r| q.add(i, values[r]));
                    }
                    for &r in &kept {
                        let v = values[r];
                        if v.is_nan() {
                            *missing += 1;
                            continue;
                        }
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
                        train_counts,
                        missing,
                    },
                ) => {
                    let mut used = vec![false; categories.len()];
                    for &r in &kept {
                        match codes[r] {
                            Column::MISSING => *missing += 1,
                            c => {
                                used[c as usize] = true;
                                *present += 1;
                            }
                        }
                    }
                    let mut in_training = vec![0u64; categories.len()];
                    for &r in &read.train {
                        if codes[r] != Column::MISSING {
                            in_training[codes[r] as usize] += 1;
                        }
                    }
                    for ((c, u), n) in categories.iter().zip(used).zip(in_training) {
                        if u && !seen.contains(c) {
                            seen.insert(c.clone());
                        }
                        if n > 0 {
                            *train_counts.entry(c.clone()).or_default() += n;
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
    }
    Ok(Ok(PartScan {
        header,
        target,
        stats,
        counts,
        medians,
        quantiles,
        bytes_read: chunks.bytes_read(),
        sha256: chunks.sha256_hex(),
    }))
}

/// Combines every process's [`PartScan`] (one process: just its own) into the [`Scan`] of
/// the whole file, with the extra passes the medians and quantiles need. Collective.
fn finish_scan(
    request: &TrainRequest,
    chunk_bytes: usize,
    comm: &dyn Communicator,
    range: Option<Range>,
    text_columns: Vec<String>,
    part: PartScan,
) -> Result<Scan> {
    let path = &request.data;
    let PartScan {
        header: table,
        target,
        stats: part_stats,
        counts: part_counts,
        mut medians,
        mut quantiles,
        bytes_read,
        sha256,
    } = part;
    let mut stats: Vec<(String, ColumnStats)> = Vec::new();
    let mut counts = PartCounts::default();
    for (s, c) in crate::share::gather(comm, &(part_stats, part_counts)) {
        if stats.is_empty() {
            stats = s;
        } else {
            for ((_, mine), (_, other)) in stats.iter_mut().zip(s) {
                mine.merge(other);
            }
        }
        counts.rows += c.rows;
        counts.dropped += c.dropped;
        counts.train_rows += c.train_rows;
        counts.validation_rows += c.validation_rows;
    }
    let PartCounts {
        rows,
        dropped,
        train_rows,
        validation_rows,
    } = counts;
    let (bytes, sha256) = if comm.size() > 1 {
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        (len, crate::share::shared_sha256(path, comm)?)
    } else {
        (bytes_read, sha256)
    };
    // The further passes of the medians and quantiles, over the training rows of every
    // process's part. Every process is as far as the others: they end passes together.
    let end_pass = |medians: &mut Option<Medians>, quantiles: &mut Option<OrderStats>| {
        if let Some(m) = medians.as_mut().filter(|m| !m.done()) {
            m.end_pass(comm);
        }
        if let Some(q) = quantiles.as_mut().filter(|q| !q.done()) {
            q.end_pass(comm);
        }
        medians.as_ref().is_some_and(|m| !m.done()) || quantiles.as_ref().is_some_and(|q| !q.done())
    };
    while end_pass(&mut medians, &mut quantiles) {
        let pass = (|| {
            let mut chunks = open_part(path, chunk_bytes, range)?;
            while let Some(chunk) = chunks.next_chunk()? {
                let read = read_chunk(request, &text_columns, chunk)?;
                for (i, column) in read.table.columns().iter().enumerate() {
                    if let Column::Numeric { values, .. } = column {
                        for &r in &read.train {
                            if let Some(m) = medians.as_mut() {
                                m.add(i, values[r]);
                            }
                            if let Some(q) = quantiles.as_mut() {
                                q.add(i, values[r]);
                            }
                        }
                    }
                }
            }
            Ok(())
        })();
        settle(comm, pass)?;
    }
    let medians = medians.map(|m| m.medians());
    if rows + dropped == 0 {
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
    }
    let delimiter = table.delimiter();
    let locate = |e: Error| e;
    if rows == 0 {
        return Err(Error::data(
            crate::error::Location {
                path: path.clone(),
                ..Default::default()
            },
            match request.missing {
                MissingPolicy::Impute => {
                    format!("the target is missing in every one of the {dropped} rows")
                }
                _ => format!("every one of the {dropped} rows has a missing value"),
            },
            match request.missing {
                MissingPolicy::Impute => "fill in the target column, or check --target",
                _ => "fill in the missing cells, or pass --missing impute",
            },
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
                ..
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
    for (i, (name, s)) in stats.iter().enumerate() {
        if *name == target {
            continue;
        }
        let no_fill = || {
            column_error(
                name,
                format!(
                    "every one of the {train_rows} training rows is missing this column, so \
                     there is nothing to fill its gaps with"
                ),
                format!("leave it out with --ignore {name}"),
            )
        };
        features.push(match s {
            ColumnStats::Numbers { moments, .. } => {
                let (mean, std) = moments.mean_std();
                let fill = match &medians {
                    Some(m) => Some(m[i].ok_or_else(no_fill)?),
                    None => None,
                };
                match &quantiles {
                    Some(q) => Feature::Piecewise {
                        name: name.clone(),
                        mean,
                        std,
                        edges: distinct_edges(
                            q.values(i).unwrap_or_default().into_iter().map(f64::from),
                        ),
                        fill,
                    },
                    None => Feature::Numeric {
                        name: name.clone(),
                        mean,
                        std,
                        fill,
                    },
                }
            }
            ColumnStats::Text {
                categories,
                present,
                train_counts,
                ..
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
                // The most frequent in the training rows; a tie goes to the first in order.
                let fill = if medians.is_some() {
                    let best = (categories.iter())
                        .map(|c| (train_counts.get(c).copied().unwrap_or(0), c))
                        .rev()
                        .max_by_key(|(n, _)| *n);
                    Some(best.filter(|(n, _)| *n > 0).ok_or_else(no_fill)?.1.clone())
                } else {
                    None
                };
                Feature::Categorical {
                    name: name.clone(),
                    categories,
                    fill,
                }
            }
        });
    }
    let filled = (stats.iter())
        .filter(|(name, s)| *name != target && s.missing() > 0)
        .map(|(name, s)| (name.clone(), s.missing() as usize))
        .collect();
    Ok(Scan {
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
        bytes,
        sha256,
        filled: if medians.is_some() {
            filled
        } else {
            Vec::new()
        },
        range,
        text_columns,
    })
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

/// Reads the first `max_rows` rows of this process's part of the file that validate
/// (`validation`) or train: the rows the weights are judged on after every epoch. Which
/// rows they are does not depend on `chunk_bytes`.
pub fn held_rows(
    request: &TrainRequest,
    scan: &Scan,
    chunk_bytes: usize,
    validation: bool,
    max_rows: usize,
) -> Result<Held> {
    let (x, y) = window::first_rows(request, scan, chunk_bytes, validation, max_rows)?;
    Ok(Held {
        x,
        y,
        of: if validation {
            scan.validation_rows
        } else {
            scan.train_rows
        },
    })
}

/// Training epochs read from the file: its training rows in file order, in windows of
/// `shuffle_window` rows ([`Windows`]), each window's rows in shuffled mini-batches.
///
/// In a data-parallel run, each process reads its share of the file so, and every step
/// trains on one batch from each process together: the processes' batches (of about
/// `batch_size / processes` rows, so that the global batch is about `batch_size`) make one
/// global batch, whose gradient they sum ([`step_together`]). A process whose share ran
/// out takes part with no rows until every share has; the epoch ends there.
pub struct StreamEpochs<'a> {
    request: &'a TrainRequest,
    scan: &'a Scan,
    chunk_bytes: usize,
    comm: Option<&'a dyn Communicator>,
    epoch: u64,
    /// What the processes sum at every step (reused).
    buffer: Vec<f32>,
}

impl<'a> StreamEpochs<'a> {
    /// Epochs over the file of `request`, read in chunks of about `chunk_bytes` (which
    /// changes how the file is read, not what trains); with `comm`, trained together with
    /// the other processes, each reading its share (`scan` from [`scan_shared`]).
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
            buffer: Vec::new(),
        }
    }

    /// The seed of the `index`th window (from 1) of this epoch, read by process `rank`: a
    /// fresh order every epoch and window, the same on every run.
    fn window_seed(&self, index: u64, rank: usize) -> u64 {
        self.request.config.seed ^ (self.epoch << 32) ^ index ^ ((rank as u64) << 48)
    }

    /// One epoch of a single process: every window's batches in turn.
    fn epoch_alone(
        &mut self,
        model: &mut Sequential,
        loss: &mut dyn Loss,
        optimizer: &mut dyn Optimizer,
        interrupted: &dyn Fn() -> bool,
        mut observer: Option<&mut (dyn Observer + '_)>,
    ) -> Result<EpochEnd> {
        let config = &self.request.config;
        let mut windows = Windows::open(self.request, self.scan, self.chunk_bytes)?;
        let (mut total, mut rows, mut batches_run) = (0f64, 0usize, 0);
        let mut index = 0u64;
        loop {
            let n = windows.next_window()?;
            if n == 0 {
                break;
            }
            index += 1;
            let seed = self.window_seed(index, 0);
            let y = windows.targets();
            let data = Batch {
                x: windows.x(),
                y: &y,
            };
            let mut batches = Batches::new(data, config.batch_size, seed);
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

    /// One epoch of data-parallel training: a batch from every process at each step, each
    /// from its own current window.
    fn epoch_together(
        &mut self,
        comm: &dyn Communicator,
        model: &mut Sequential,
        loss: &mut dyn Loss,
        optimizer: &mut dyn Optimizer,
        interrupted: &dyn Fn() -> bool,
        mut observer: Option<&mut (dyn Observer + '_)>,
    ) -> Result<EpochEnd> {
        let config = &self.request.config;
        let (rank, size) = (comm.rank(), comm.size());
        // This process's part of each global batch.
        let local_batch =
            (config.batch_size / size + usize::from(rank < config.batch_size % size)).max(1);
        let mut windows = Windows::open(self.request, self.scan, self.chunk_bytes);
        let mut failure: Option<Error> = None;
        // The current window's targets, and the order its rows train in.
        let mut current: Option<(Targets, Vec<usize>)> = None;
        let mut at = 0;
        let mut index = 0u64;
        let (mut total, mut rows, mut steps) = (0f64, 0usize, 0usize);
        let mut buffer = std::mem::take(&mut self.buffer);
        let end = loop {
            // The next rows of this process's part, reading on when a window is used up.
            if failure.is_none() && current.as_ref().is_none_or(|(_, order)| at >= order.len()) {
                let next = match windows.as_mut() {
                    Ok(windows) => windows.next_window(),
                    Err(e) => Err(std::mem::replace(e, Error::Interrupted(String::new()))),
                };
                current = match (next, windows.as_ref()) {
                    (Ok(n @ 1..), Ok(windows)) => {
                        index += 1;
                        let seed = self.window_seed(index, rank);
                        let mut order: Vec<usize> = (0..n).collect();
                        use ndarray_rand::rand::SeedableRng;
                        use ndarray_rand::rand::seq::SliceRandom;
                        order.shuffle(&mut ndarray_rand::rand::rngs::StdRng::seed_from_u64(seed));
                        at = 0;
                        Some((windows.targets(), order))
                    }
                    (Ok(_), _) => None,
                    (Err(e), _) => {
                        failure = Some(e);
                        None
                    }
                };
            }
            let stop = interrupted() || failure.is_some();
            let step = match (&current, windows.as_ref()) {
                (Some((y, order)), Ok(windows)) if at < order.len() => {
                    let picked = &order[at..(at + local_batch).min(order.len())];
                    at += picked.len();
                    let xb = windows.x().select(ndarray::Axis(0), picked);
                    match y {
                        Targets::Classes(c) => {
                            let cb: Vec<usize> = picked.iter().map(|&r| c[r]).collect();
                            let rows = Some((xb.view(), crate::loss::Target::Classes(&cb)));
                            step_together(model, loss, optimizer, comm, rows, &mut buffer, stop)
                        }
                        Targets::Values(v) => {
                            let vb = v.select(ndarray::Axis(0), picked);
                            let rows = Some((xb.view(), crate::loss::Target::Dense(vb.view())));
                            step_together(model, loss, optimizer, comm, rows, &mut buffer, stop)
                        }
                    }
                }
                _ => step_together(model, loss, optimizer, comm, None, &mut buffer, stop),
            };
            let (value, n, stopped) = step?;
            if n == 0 {
                break EpochEnd::Finished {
                    mean_loss: (total / rows.max(1) as f64) as f32,
                };
            }
            steps += 1;
            if !value.is_finite() {
                break EpochEnd::Diverged { batch: steps };
            }
            if let Some(o) = observer.as_deref_mut() {
                o.after_step(model);
            }
            total += value as f64 * n as f64;
            rows += n;
            if stopped {
                break EpochEnd::Interrupted;
            }
        };
        self.buffer = buffer;
        // A process that could not read stops every process here, and says why.
        settle(comm, failure.map_or(Ok(()), Err))?;
        Ok(end)
    }
}

impl Epochs for StreamEpochs<'_> {
    fn epoch(
        &mut self,
        model: &mut Sequential,
        loss: &mut dyn Loss,
        optimizer: &mut dyn Optimizer,
        interrupted: &dyn Fn() -> bool,
        observer: Option<&mut (dyn Observer + '_)>,
    ) -> Result<EpochEnd> {
        self.epoch += 1;
        match self.comm {
            Some(comm) if comm.size() > 1 => {
                self.epoch_together(comm, model, loss, optimizer, interrupted, observer)
            }
            _ => self.epoch_alone(model, loss, optimizer, interrupted, observer),
        }
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
