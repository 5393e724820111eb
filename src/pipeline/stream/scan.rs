//! The first pass over a streamed file ([`scan`]): the columns' statistics from every
//! chunk (and every process's share), merged, then the passes the medians and quantiles
//! need, and the one [`Encoding::fit`]. It keeps no rows.

use std::path::Path;

use crate::data::chunks::{Chunk, Chunks, FileStamp};
use crate::data::{Column, ReadOptions, Table};
use crate::error::{Error, Hint, Result, Setting};
use crate::pipeline::prepare::{MissingPolicy, TrainRequest, fit_spec};
use crate::pipeline::share::Range;
use crate::tabular::encoding::{BINS, Encoding, Scaling, Task, bin_ranks, task_of};
use crate::tabular::median::{Medians, OrderStats};
use crate::tabular::stats::{Cells, ColumnStats, merge_all};
use crate::train::comm::{Communicator, Solo, settle};

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
    pub(super) text_columns: Vec<String>,
    /// The file as the first pass found it: every later pass checks that it still is.
    pub(super) stamp: FileStamp,
}

impl Scan {
    /// Opens the part of the file this process reads, in chunks of about `chunk_bytes`,
    /// once it is checked to be as the first pass found it.
    pub(super) fn open(&self, path: &Path, chunk_bytes: usize) -> Result<Chunks> {
        self.stamp.check(path)?;
        open_part(path, chunk_bytes, self.range)
    }

    /// Ends a pass: refuses a file that changed while it was read.
    pub(super) fn end_pass(&self, path: &Path) -> Result<()> {
        self.stamp.check(path)
    }
}

pub(super) fn open_part(path: &Path, chunk_bytes: usize, range: Option<Range>) -> Result<Chunks> {
    match range {
        None => Chunks::open(path, chunk_bytes),
        Some(r) => Chunks::open_range(path, chunk_bytes, (r.start, r.end), r.first_line),
    }
}

/// One chunk read and checked: its table, and the (chunk) rows that train and validate.
pub(super) struct ReadChunk {
    pub(super) chunk: Chunk,
    pub(super) table: Table,
    pub(super) train: Vec<usize>,
    pub(super) validation: Vec<usize>,
    pub(super) dropped: usize,
}

/// Reads `chunk` into a table with the request's columns, and sorts its rows into
/// training, validation and dropped (by the missing-value policy).
pub(super) fn read_chunk(
    request: &TrainRequest,
    text_columns: &[String],
    chunk: Chunk,
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
    // Taken before the first read: a file that changes from here on is refused.
    let stamp = settle(comm, FileStamp::of(&request.data))?;
    let part = loop {
        let part = scan_part(request, chunk_bytes, &text_columns, range);
        let part = settle(
            comm,
            part.and_then(|p| stamp.check(&request.data).map(|()| p)),
        )?;
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
    let passes = Passes {
        chunk_bytes,
        comm,
        range,
        stamp,
    };
    finish_scan(request, passes, text_columns, part)
}

/// How the passes after the first read the file: in chunks of `chunk_bytes`, this
/// process's share (`range`) of it, together with the other processes, and checking that
/// it still looks as it did (`stamp`).
struct Passes<'a> {
    chunk_bytes: usize,
    comm: &'a dyn Communicator,
    range: Option<Range>,
    stamp: FileStamp,
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

/// The first passes of the medians (`--missing impute`) and of the quantiles of the bin
/// edges ([`Scaling::Piecewise`]) over `columns` columns, sharing the memory for counts in
/// proportion to the ranks each wants.
fn order_counters(
    request: &TrainRequest,
    columns: usize,
    chunk_bytes: usize,
) -> (Option<Medians>, Option<OrderStats>) {
    let (impute, bin) = (
        request.missing == MissingPolicy::Impute,
        request.scaling == Scaling::Piecewise,
    );
    let ranks = 2 * impute as usize + (BINS + 1) * bin as usize;
    let bytes_per_rank = median_bytes(chunk_bytes) / ranks.max(1);
    let medians = impute.then(|| Medians::new(columns, 2 * bytes_per_rank));
    let quantiles = bin.then(|| {
        let bytes = (BINS + 1) * bytes_per_rank;
        OrderStats::new(columns, BINS + 1, bin_ranks, bytes)
    });
    (medians, quantiles)
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
    let (mut medians, mut quantiles) = order_counters(request, stats.len(), chunk_bytes);
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
    passes: Passes<'_>,
    text_columns: Vec<String>,
    part: PartScan,
) -> Result<Scan> {
    let comm = passes.comm;
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
        chunk_bytes: passes.chunk_bytes,
        comm,
        range: passes.range,
        text_columns: &text_columns,
        stamp: passes.stamp,
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
        range: passes.range,
        text_columns,
        stamp: passes.stamp,
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
    stamp: FileStamp,
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
        self.stamp.check(&self.request.data)?;
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
        self.stamp.check(&self.request.data)
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
        return Err(crate::pipeline::prepare::nothing_kept(
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
