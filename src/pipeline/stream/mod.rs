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
//! ([`crate::pipeline::share`]): the passes' findings are combined over the processes, and every step
//! trains on one local batch from each process together ([`StreamEpochs`]).

pub mod window;

use std::path::Path;

use ndarray::Array2;

use crate::data::{Column, ReadOptions, Table};
use crate::error::{Error, Hint, Result, Setting};
use crate::nn::loss::Loss;
use crate::nn::optim::Optimizer;
use crate::nn::sequential::Sequential;
use crate::pipeline::share::Range;
use crate::pipeline::{MissingPolicy, TrainRequest, fit_spec};
use crate::tabular::encoding::{BINS, Encoding, Scaling, Targets, Task, bin_ranks, task_of};
use crate::tabular::median::{Medians, OrderStats};
use crate::tabular::stats::{Cells, ColumnStats, merge_all};
use crate::train::comm::{Communicator, Solo, settle};
use crate::train::{Batch, Batches, EpochEnd, Epochs, Observer, step_together};

use crate::data::chunks::{Chunk, Chunks};
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
/// ([`crate::pipeline::share::share_range`]); what they find is combined, so that every process ends
/// with the [`Scan`] of the whole file. Collective.
pub fn scan_shared(
    request: &TrainRequest,
    chunk_bytes: usize,
    comm: &dyn Communicator,
) -> Result<Scan> {
    settle(comm, request.config.validate())?;
    let range = if comm.size() > 1 {
        Some(crate::pipeline::share::share_range(&request.data, comm)?.0)
    } else {
        None
    };
    let mut text_columns = request.categorical.clone();
    let part = loop {
        let part = settle(comm, scan_part(request, chunk_bytes, &text_columns, range))?;
        // A column read as numbers in early chunks holds text further on (here or in
        // another share): read it as text from the start, as the in-memory reader would.
        let found = crate::pipeline::share::gather(comm, &part.as_ref().err().cloned());
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
    stats: Vec<ColumnStats>,
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
    let mut stats: Vec<ColumnStats> = (header.columns().iter())
        .map(|c| ColumnStats::new(c, c.name() == target))
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
        let line = |r: usize| read.chunk.file_line(read.table.line(r));
        for (i, (column, s)) in read.table.columns().iter().zip(&mut stats).enumerate() {
            if let (Column::Text { .. }, Cells::Numbers { .. }) = (column, &s.cells) {
                return Ok(Err(s.name.clone()));
            }
            s.add(column, &kept, &read.train, line);
            if let Column::Numeric { values, .. } = column {
                if let Some(m) = medians.as_mut() {
                    read.train.iter().for_each(|&r| m.add(i, values[r]));
                }
                if let Some(q) = quantiles.as_mut() {
                    read.train.iter().for_each(|&r| q.add(i, values[r]));
                }
            }
            if let Cells::Text { categories, .. } = &s.cells
                && categories.len() > MAX_CATEGORIES
            {
                let name = &s.name;
                return Err(read.chunk.locate(Error::data(
                    read.table.location(None, Some(name)),
                    format!("more than {MAX_CATEGORIES} different values"),
                    Hint::text("leave it out with ").setting(Setting::Ignore, name),
                )));
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
    let mut counts = PartCounts::default();
    let mut parts = Vec::new();
    for (s, c) in crate::pipeline::share::gather(comm, &(part_stats, part_counts)) {
        parts.push(s);
        counts.rows += c.rows;
        counts.dropped += c.dropped;
        counts.train_rows += c.train_rows;
        counts.validation_rows += c.validation_rows;
    }
    let mut stats = merge_all(parts);
    let (bytes, sha256) = if comm.size() > 1 {
        let len = std::fs::metadata(path).map_or(0, |m| m.len());
        (len, crate::pipeline::share::shared_sha256(path, comm)?)
    } else {
        (bytes_read, sha256)
    };
    let order = OrderPasses {
        request,
        chunk_bytes,
        comm,
        range,
        text_columns: &text_columns,
    };
    order.finish(&mut medians, &mut quantiles)?;
    for (i, s) in stats.iter_mut().enumerate() {
        if let Cells::Numbers { order, .. } = &mut s.cells {
            order.median = medians.as_ref().and_then(|m| m.medians()[i]);
            if let Some(q) = &quantiles {
                order.quantiles = q.values(i).unwrap_or_default();
            }
        }
    }
    check_counts(request, &table, &counts)?;
    let task = request.task.unwrap_or_else(|| {
        let target_stats = stats.iter().find(|s| s.name == target);
        task_of(target_stats.expect("the header check found the target"))
    });
    let spec = fit_spec(request, &target, task, counts.train_rows);
    let encoding = Encoding::fit(&stats, &spec)?;
    let filled = (stats.iter())
        .filter(|s| spec.impute && s.name != target && s.missing() > 0)
        .map(|s| (s.name.clone(), s.missing() as usize))
        .collect();
    Ok(Scan {
        encoding,
        task,
        delimiter: table.delimiter(),
        rows: counts.rows,
        dropped: counts.dropped,
        train_rows: counts.train_rows,
        validation_rows: counts.validation_rows,
        bytes,
        sha256,
        filled,
        range,
        text_columns,
    })
}

/// The further passes over this process's part of the file that the medians and
/// quantiles need, all processes together.
struct OrderPasses<'a> {
    request: &'a TrainRequest,
    chunk_bytes: usize,
    comm: &'a dyn Communicator,
    range: Option<Range>,
    text_columns: &'a [String],
}

impl OrderPasses<'_> {
    /// Ends the first pass, and makes passes over the training rows until the medians and
    /// quantiles are found. Every process is as far as the others: they end passes
    /// together. Collective.
    fn finish(
        &self,
        medians: &mut Option<Medians>,
        quantiles: &mut Option<OrderStats>,
    ) -> Result<()> {
        while self.end_pass(medians, quantiles) {
            let pass = self.pass(medians, quantiles);
            settle(self.comm, pass)?;
        }
        Ok(())
    }

    /// Ends a pass; whether another is needed.
    fn end_pass(&self, medians: &mut Option<Medians>, quantiles: &mut Option<OrderStats>) -> bool {
        if let Some(m) = medians.as_mut().filter(|m| !m.done()) {
            m.end_pass(self.comm);
        }
        if let Some(q) = quantiles.as_mut().filter(|q| !q.done()) {
            q.end_pass(self.comm);
        }
        medians.as_ref().is_some_and(|m| !m.done()) || quantiles.as_ref().is_some_and(|q| !q.done())
    }

    /// One pass over the training rows of this process's part.
    fn pass(
        &self,
        medians: &mut Option<Medians>,
        quantiles: &mut Option<OrderStats>,
    ) -> Result<()> {
        let mut chunks = open_part(&self.request.data, self.chunk_bytes, self.range)?;
        while let Some(chunk) = chunks.next_chunk()? {
            let read = read_chunk(self.request, self.text_columns, chunk)?;
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
    }
}

/// Refuses a file with no data rows, none kept, or too few to train and validate on.
fn check_counts(request: &TrainRequest, table: &Table, counts: &PartCounts) -> Result<()> {
    let path = &request.data;
    let PartCounts {
        rows,
        dropped,
        train_rows,
        validation_rows,
    } = *counts;
    if rows + dropped == 0 {
        let location = crate::error::Location {
            path: path.clone(),
            line: Some(1),
            column: None,
        };
        return Err(Error::data(
            location,
            "there are no data rows after the header",
            "check that this is the right file",
        ));
    }
    if rows == 0 {
        return Err(crate::pipeline::nothing_kept(
            table,
            dropped,
            request.missing,
        ));
    }
    if train_rows == 0 || (request.config.val_split > 0.0 && validation_rows == 0) {
        return Err(Error::data(
            table.location(None, None),
            format!(
                "only {rows} rows: too few to hold out {}% for validation",
                (request.config.val_split * 100.0).round()
            ),
            Hint::text("add rows, or use ")
                .setting(Setting::ValSplit, 0)
                .then(" to train on all of them"),
        ));
    }
    Ok(())
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
                            let rows = Some((xb.view(), crate::nn::loss::Target::Classes(&cb)));
                            step_together(model, loss, optimizer, comm, rows, &mut buffer, stop)
                        }
                        Targets::Values(v) => {
                            let vb = v.select(ndarray::Axis(0), picked);
                            let rows = Some((xb.view(), crate::nn::loss::Target::Dense(vb.view())));
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
}
