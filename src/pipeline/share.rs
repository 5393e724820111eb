//! Each process's share of the training file in a data-parallel run ([`crate::train::comm`]).
//!
//! The file is cut into as many byte ranges as there are processes, each of whole lines:
//! process `r` of `K` reads the lines from the first line start at or after byte
//! `h + (len − h)·r/K` to the one at or after `h + (len − h)·(r+1)/K` (`h` is where the
//! header ends; every process reads the header). When a cut falls inside a quoted field
//! that holds a line break (the quotes before it are odd in number), the cuts are found
//! again by following the quotes from the header on ([`quoted_record_starts`]).
//!
//! Every process parses only its lines, and then learns with the others what one process
//! learns from the whole file ([`prepare_shared`]), so that the prepared data are those of
//! [`crate::pipeline::prepare`], shared out:
//!
//! * column kinds from the counts of numbers and texts summed over every share
//!   ([`Table::from_part`]);
//! * the missing-value policy on counts of every share;
//! * the task, class labels and categories from the union of every share's (sorted, as in
//!   one process);
//! * the stratified split from every row's class (a few bytes per row), so that every
//!   process draws the split one process draws;
//! * means and deviations from every share's count, mean and sum of squares;
//! * quantile bin edges ([`Scaling::Piecewise`]): the exact numbers of the quantiles' ranks
//!   by radix selection over every share ([`OrderStats`]);
//! * fill values for `--missing impute`: exact medians by radix selection over every
//!   share ([`Medians`]), and the most frequent category from summed counts.
//!
//! Rank 0 holds the first training rows, rank 1 the next ones, and so on, in file order:
//! the order [`crate::train::Batches::shared`] expects.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::data::chunks::{Chunk, Chunks, count_lines, line_start, quoted_record_starts};
use crate::data::{Column, ReadOptions, Table, Tally};
use crate::error::{Error, Result};
use crate::pipeline::prepare::{
    MissingPolicy, Prepared, TrainRequest, check_network_size, check_spread, check_table,
    checked_split, fit_spec, missing_error, nothing_kept, rows_to_keep,
};
use crate::tabular::encoding::{BINS, Encoding, FitSpec, Targets, Task, bin_ranks, task_of};
use crate::tabular::median::{Medians, OrderStats};
use crate::tabular::stats::{Cells, ColumnStats, Order, merge_all, table_stats};
use crate::train::Split;
use crate::train::comm::{Communicator, settle};

/// The bytes of one process's lines of a file, and where they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// The first byte.
    pub start: u64,
    /// Just past the last byte.
    pub end: u64,
    /// The file's line number of the first line.
    pub first_line: usize,
}

/// Where every process's lines of the file at `path` are: this process's [`Range`], and
/// the header line. Collective.
pub fn share_range(path: &Path, comm: &dyn Communicator) -> Result<(Range, Vec<u8>)> {
    let located = settle(comm, locate(path, comm.rank(), comm.size(), None));
    let (mut start, mut end, header, first_data_line) = located?;
    let (quotes, mut lines) = settle(comm, count_in(path, start, end))?;
    // A cut inside quotes (an odd number of them before it): find the cuts again,
    // following the quotes from the start.
    let before: usize = comm.all_counts(quotes % 2)[..comm.rank()].iter().sum();
    let odd = comm.all_counts(before % 2).iter().any(|&p| p > 0);
    if odd {
        let cuts = settle(
            comm,
            locate(path, comm.rank(), comm.size(), Some(header.len() as u64)),
        );
        (start, end, _, _) = cuts?;
        (_, lines) = settle(comm, count_in(path, start, end))?;
    }
    let first_line = first_data_line + comm.all_counts(lines)[..comm.rank()].iter().sum::<usize>();
    Ok((
        Range {
            start,
            end,
            first_line,
        },
        header,
    ))
}

/// Share `rank` of `size` of the file: (start, end, header, line after the header). With
/// `quoted` (where the header ends), the cuts follow the quotes from the header on.
fn locate(
    path: &Path,
    rank: usize,
    size: usize,
    quoted: Option<u64>,
) -> Result<(u64, u64, Vec<u8>, usize)> {
    let chunks = Chunks::open(path, 1 << 16)?;
    let header = chunks.header().to_vec();
    let first_data_line = chunks.first_data_line();
    let io = |e| Error::io(path, e);
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let h = (header.len() as u64).min(len);
    let target = |r: usize| h + ((len - h) as u128 * r as u128 / size as u128) as u64;
    let (start, end) = match quoted {
        None => {
            let cut = |r: usize, file: &mut File| -> std::io::Result<u64> {
                match r {
                    0 => Ok(h),
                    r if r == size => Ok(len),
                    r => line_start(file, target(r), len),
                }
            };
            (
                cut(rank, &mut file).map_err(io)?,
                cut(rank + 1, &mut file).map_err(io)?,
            )
        }
        Some(header_end) => {
            let targets: Vec<u64> = (1..size).map(target).collect();
            let mut cuts = vec![h];
            cuts.extend(quoted_record_starts(&mut file, header_end, &targets).map_err(io)?);
            cuts.push(len);
            (cuts[rank], cuts[rank + 1])
        }
    };
    Ok((start, end.max(start), header, first_data_line))
}

/// Quotes and lines (as [`count_lines`] counts them) in bytes `start..end` of the file.
fn count_in(path: &Path, start: u64, end: u64) -> Result<(usize, usize)> {
    let bytes = read_range(path, start, end)?;
    Ok((
        memchr::memchr_iter(b'"', &bytes).count(),
        count_lines(&bytes),
    ))
}

/// Bytes `start..end` of the file at `path`.
fn read_range(path: &Path, start: u64, end: u64) -> Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let io = |e| Error::io(path, e);
    let mut file = File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(start)).map_err(io)?;
    let mut bytes = Vec::with_capacity((end - start) as usize);
    file.take(end - start).read_to_end(&mut bytes).map_err(io)?;
    Ok(bytes)
}

/// Refuses what cannot be read in shares: a pipe or device (only one process could read
/// it, once). A missing file is left to the reader to report.
fn shareable(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() => Err(Error::data(
            crate::error::Location {
                path: path.to_path_buf(),
                ..Default::default()
            },
            "in a data-parallel run every process reads its own share of the file, which a \
             pipe or device cannot give",
            "save the data to a file first",
        )),
        _ => Ok(()),
    }
}

/// This process's lines of the file, after the header, as a [`Chunk`]. Collective.
pub fn read_share(path: &Path, comm: &dyn Communicator) -> Result<Chunk> {
    let (range, header) = share_range(path, comm)?;
    let lines = settle(comm, read_range(path, range.start, range.end))?;
    let mut bytes = header;
    bytes.extend_from_slice(&lines);
    Ok(Chunk {
        bytes,
        first_line: range.first_line,
    })
}

/// SHA-256 of the file at `path`, read by rank 0 alone (without parsing it) and sent to
/// every process. Collective.
pub fn shared_sha256(path: &Path, comm: &dyn Communicator) -> Result<String> {
    let local = if comm.is_leader() {
        file_sha256(path)
    } else {
        Ok(String::new())
    };
    let hex = settle(comm, local)?;
    let mut bytes = hex.into_bytes();
    comm.broadcast(0, &mut bytes);
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// The SHA-256 of the file at `path` in hex, read a megabyte at a time.
pub fn file_sha256(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let io = |e| Error::io(path, e);
    let mut file = File::open(path).map_err(io)?;
    let mut hash = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => hash.update(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io(e)),
        }
    }
    Ok(hash.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// Every process's value, gathered on every process (as JSON). Collective.
pub(crate) fn gather<T: Serialize + for<'a> Deserialize<'a>>(
    comm: &dyn Communicator,
    value: &T,
) -> Vec<T> {
    let bytes = serde_json::to_vec(value).expect("plain data serialises");
    comm.all_gather(&bytes)
        .iter()
        .map(|b| serde_json::from_slice(b).expect("what another process serialised"))
        .collect()
}

/// The [`Tally`] of every column summed over every process. Collective.
fn whole_tallies(comm: &dyn Communicator, local: &[Tally]) -> Vec<Tally> {
    let mut sums: Vec<f64> = local
        .iter()
        .flat_map(|t| [t.numbers, t.bad_numbers, t.texts, t.decimal_commas])
        .map(|n| n as f64)
        .collect();
    comm.sum_f64(&mut sums);
    sums.chunks(4)
        .map(|s| Tally {
            numbers: s[0] as u64,
            bad_numbers: s[1] as u64,
            texts: s[2] as u64,
            decimal_commas: s[3] as u64,
        })
        .collect()
}

/// The first rank whose count is not zero.
fn first_with(counts: &[usize]) -> usize {
    counts.iter().position(|&n| n > 0).unwrap_or(0)
}

/// [`crate::pipeline::prepare`] in a data-parallel run: every process of `comm` reads its
/// share of the file and ends with its share of the training and validation rows, encoded
/// as one process encodes the whole file. `train_rows`, `validation_rows`, `rows`,
/// `dropped` and `filled` count every process's rows. Collective.
///
/// An error in any process's share stops every process: the one that found it returns it,
/// the others [`Error::Elsewhere`].
pub fn prepare_shared(request: &TrainRequest, comm: &dyn Communicator) -> Result<Prepared> {
    settle(comm, request.config.validate())?;
    settle(comm, check_spread(request, "shared over processes"))?;
    let (chunk, table, target) = read_shared(request, comm)?;
    let locate = |e| chunk.locate(e);
    let (table, kept) = keep_shared(request, comm, &chunk, table, &target)?;
    let mine: Vec<usize> = (0..table.rows()).collect();
    let line = |r: usize| chunk.file_line(table.line(r));

    // The task and the class labels, from every process's target cells.
    let target_column = table.column(&target).expect("checked");
    let mut target_stats = ColumnStats::new(target_column, true);
    target_stats.add(target_column, &mine, &[], line);
    let target_stats = merge_all(gather(comm, &vec![target_stats])).remove(0);
    let task = request.task.unwrap_or_else(|| task_of(&target_stats));
    let spec = fit_spec(request, &target, task, 0);
    let labels = Encoding::fit_target(&target_stats, &spec)?;
    let (split, train, validation) = split_shared(request, comm, &table, &labels, &kept, locate)?;

    // Every column's statistics, combined, and the one fit.
    let spec = FitSpec {
        train_rows: split.train.len(),
        ..spec
    };
    let parts = table_stats(&table, &target, &mine, &train, line);
    let mut stats = merge_all(gather(comm, &parts));
    order_shared(&mut stats, &table, &train, &spec, comm);
    let encoding = Encoding::fit(&stats, &spec)?;
    let filled = (stats.iter())
        .filter(|s| spec.impute && s.name != target && s.missing() > 0)
        .map(|s| (s.name.clone(), s.missing() as usize))
        .collect();
    check_network_size(&encoding, &request.config)?;
    let encoded = (|| {
        Ok((
            encoding.inputs(&table, &train)?,
            encoding.targets(&table, &train)?,
            encoding.inputs(&table, &validation)?,
            encoding.targets(&table, &validation)?,
        ))
    })();
    let (x_train, y_train, x_val, y_val) = settle(comm, encoded.map_err(locate))?;
    Ok(Prepared {
        data: request.data.clone(),
        sha256: shared_sha256(&request.data, comm)?,
        delimiter: table.delimiter(),
        rows: kept.rows,
        dropped: kept.dropped,
        filled,
        task,
        encoding,
        x_train,
        y_train,
        x_val,
        y_val,
        train_rows: split.train.len(),
        validation_rows: split.validation.len(),
        identifiers: Vec::new(),
        coarse: Vec::new(),
        filled_rows: Vec::new(),
    })
}

/// Reads this process's share of the file into a table whose columns have the kinds the
/// whole file gives them, checked as [`check_table`] checks one file. Returns the share,
/// the table and the target's name. Collective.
fn read_shared(request: &TrainRequest, comm: &dyn Communicator) -> Result<(Chunk, Table, String)> {
    let path = &request.data;
    settle(comm, shareable(path))?;
    let chunk = read_share(path, comm)?;
    let locate = |e| chunk.locate(e);
    // The in-memory reader's guard against endless lines, on this share.
    settle(
        comm,
        crate::fsutil::check_line_lengths(path, &chunk.bytes).map_err(locate),
    )?;
    let options = ReadOptions {
        categorical: request.categorical.clone(),
    };
    // Column kinds as the whole file gives them: read again if they differ here.
    let local = settle(
        comm,
        Table::from_part(path, &chunk.bytes, &options, Some(&[])).map_err(locate),
    )?;
    let whole = whole_tallies(comm, local.tallies());
    let differs = local.columns().iter().zip(&whole).any(|(column, tally)| {
        let forced = options.categorical.iter().any(|c| c == column.name());
        match column {
            Column::Invalid { .. } => true,
            Column::Text { .. } => !tally.is_text(forced),
            Column::Numeric { .. } => {
                tally.is_text(forced) || tally.texts > 0 || tally.bad_numbers > 0
            }
        }
    });
    let table = if differs {
        Table::from_part(path, &chunk.bytes, &options, Some(&whole)).map_err(locate)
    } else {
        Ok(local)
    };
    let table = settle(comm, table)?;
    // One process reports the first unusable column (in column order, then file order),
    // as one process reading the whole file would.
    let unusable = (table.columns().iter())
        .filter(|c| !request.ignore.iter().any(|i| i == c.name()))
        .position(|c| matches!(c, Column::Invalid { .. }));
    const NONE: usize = usize::MAX >> 12; // exact in the f64 sums of `all_counts`
    let first_each = comm.all_counts(unusable.unwrap_or(NONE));
    let first = first_each.iter().copied().min().unwrap_or(NONE);
    let checked = check_table(request, table).map_err(locate);
    let checked = match first_each.iter().position(|&i| i == first) {
        Some(reporter) if first != NONE && comm.rank() != reporter => {
            Err(Error::Elsewhere { rank: reporter })
        }
        _ => checked,
    };
    let (table, target) = settle(comm, checked)?;
    Ok((chunk, table, target))
}

/// The rows every process keeps under the missing-value policy.
struct Kept {
    /// Rows kept, over every process.
    rows: usize,
    /// Rows dropped, over every process.
    dropped: usize,
    /// The first row of this process's share among all rows kept.
    offset: usize,
}

/// Applies the missing-value policy to this process's `table`, on every process's counts.
/// Collective.
fn keep_shared(
    request: &TrainRequest,
    comm: &dyn Communicator,
    chunk: &Chunk,
    mut table: Table,
    target: &str,
) -> Result<(Table, Kept)> {
    let keep = rows_to_keep(&table, target, request.missing);
    let dropped_each = comm.all_counts(keep.iter().filter(|k| !**k).count());
    let total_each = comm.all_counts(table.rows());
    let (dropped, total) = (dropped_each.iter().sum(), total_each.iter().sum());
    if total == 0 {
        return Err(Error::data(
            table.location(None, None),
            "the file has a header but no data rows",
            "add data rows below the header line",
        ));
    }
    if dropped > 0 && request.missing == MissingPolicy::Error {
        let first = first_with(&dropped_each);
        return Err(if comm.rank() == first {
            chunk.locate(missing_error(&table, &keep, target, dropped, total))
        } else {
            Error::Elsewhere { rank: first }
        });
    }
    table.retain_rows(&keep);
    let kept_each = comm.all_counts(table.rows());
    let rows: usize = kept_each.iter().sum();
    if rows == 0 {
        return Err(nothing_kept(&table, total, request.missing));
    }
    let offset: usize = kept_each[..comm.rank()].iter().sum();
    Ok((
        table,
        Kept {
            rows,
            dropped,
            offset,
        },
    ))
}

/// The split one process draws, from every row's class (`labels`: the target's
/// encoding), and this process's training and validation rows in it. Collective.
fn split_shared(
    request: &TrainRequest,
    comm: &dyn Communicator,
    table: &Table,
    labels: &Encoding,
    kept: &Kept,
    locate: impl Fn(Error) -> Error,
) -> Result<(Split, Vec<usize>, Vec<usize>)> {
    let mine: Vec<usize> = (0..table.rows()).collect();
    let split = match labels.target.task() {
        Task::Classification => {
            let local = match settle(comm, labels.targets(table, &mine).map_err(locate))? {
                Targets::Classes(c) => c,
                Targets::Values(_) => unreachable!("classes for classification"),
            };
            let bytes: Vec<u8> = local
                .iter()
                .flat_map(|&c| (c as u32).to_le_bytes())
                .collect();
            let classes: Vec<usize> = comm
                .all_gather(&bytes)
                .iter()
                .flat_map(|b| b.chunks(4))
                .map(|c| u32::from_le_bytes(c.try_into().expect("4 bytes")) as usize)
                .collect();
            checked_split(table, kept.rows, Some(&classes), &request.config)?
        }
        Task::Regression => checked_split(table, kept.rows, None, &request.config)?,
    };
    let held = kept.offset..kept.offset + table.rows();
    let local_rows = |global: &[usize]| -> Vec<usize> {
        (global.iter())
            .filter(|r| held.contains(r))
            .map(|r| r - kept.offset)
            .collect()
    };
    let (train, validation) = (local_rows(&split.train), local_rows(&split.validation));
    Ok((split, train, validation))
}

/// The order statistics `spec` needs of every numeric feature, over every process's
/// training rows (`train` here): the exact medians and quantiles that sorting all of them
/// would give ([`crate::tabular::encoding::order_in_memory`]). Collective.
fn order_shared(
    stats: &mut [ColumnStats],
    table: &Table,
    train: &[usize],
    spec: &FitSpec,
    comm: &dyn Communicator,
) {
    let (median_wanted, quantiles_wanted, _) = spec.needs();
    let numeric: Vec<usize> = (table.columns().iter().enumerate())
        .filter(|(_, c)| matches!(c, Column::Numeric { .. }) && c.name() != spec.target)
        .map(|(i, _)| i)
        .collect();
    // Every process makes the same passes over its own training values.
    let passes = |add: &mut dyn FnMut(usize, f32)| {
        for (i, &c) in numeric.iter().enumerate() {
            if let Column::Numeric { values, .. } = &table.columns()[c] {
                train.iter().for_each(|&r| add(i, values[r]));
            }
        }
    };
    let mut orders: Vec<Order> = vec![Order::default(); numeric.len()];
    if median_wanted {
        let mut medians = Medians::new(numeric.len(), 8 << 20);
        while !medians.done() {
            passes(&mut |i, v| medians.add(i, v));
            medians.end_pass(comm);
        }
        for (order, median) in orders.iter_mut().zip(medians.medians()) {
            order.median = median;
        }
    }
    if quantiles_wanted {
        let mut quantiles = OrderStats::new(numeric.len(), BINS + 1, bin_ranks, 8 << 20);
        while !quantiles.done() {
            passes(&mut |i, v| quantiles.add(i, v));
            quantiles.end_pass(comm);
        }
        for (i, order) in orders.iter_mut().enumerate() {
            order.quantiles = quantiles.values(i).unwrap_or_default();
        }
    }
    for (&c, found) in numeric.iter().zip(orders) {
        if let Cells::Numbers { order, .. } = &mut stats[c].cells {
            *order = found;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::prepare;
    use crate::tabular::encoding::{Feature, Scaling};
    use crate::train::comm::threads::{ThreadRank, group};

    /// `f` run by every member of a group of `size` threads standing in for processes.
    fn on_ranks<T: Send + 'static>(
        size: usize,
        f: impl Fn(ThreadRank) -> T + Send + Sync + Clone + 'static,
    ) -> Vec<T> {
        let handles: Vec<_> = group(size)
            .into_iter()
            .map(|member| {
                let f = f.clone();
                std::thread::spawn(move || f(member))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    /// A file whose second half has categories, classes and missing cells the first half
    /// lacks: what every share sees differs, what they learn together must not.
    /// `text` with a date column `when` after the others: date-times at several offsets,
    /// some missing, a few dates alone.
    fn with_dates(text: &str) -> String {
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            let (head, target) = line.rsplit_once(',').unwrap();
            let when = match i {
                0 => "when".to_string(),
                _ if i % 17 == 0 => "NA".into(),
                _ if i % 29 == 0 => format!("20{:02}-0{}-1{}", i % 30, 1 + i % 9, i % 10),
                _ => format!(
                    "2023-{:02}-{:02}T{:02}:{:02}:00{}",
                    1 + (i * 7) % 12,
                    1 + (i * 11) % 28,
                    (i * 5) % 24,
                    (i * 13) % 60,
                    ["Z", "+02:00", "-05:30", ""][i % 4]
                ),
            };
            out.push_str(&format!("{head},{when},{target}\n"));
        }
        out
    }

    fn uneven(rows: usize, regression: bool) -> String {
        let mut text = String::from("a,b,colour,y\n");
        for i in 0..rows {
            let late = i >= rows / 2;
            let a = ((i * 37) % 101) as f32 / 10.0 - 5.0;
            let b = ((i * 53) % 89) as f32 * 0.25 + if late { 3.0 } else { 0.0 };
            let colour = if late {
                ["red", "blue", "violet"][i % 3]
            } else {
                ["red", "green"][i % 2]
            };
            let y = if regression {
                format!("{:.3}", a * 2.0 - b + (i % 5) as f32)
            } else if late && i % 4 == 0 {
                "maybe".into()
            } else if a + b > 8.0 {
                "yes".into()
            } else {
                "no".into()
            };
            let a = if late && i % 7 == 0 {
                String::new()
            } else {
                a.to_string()
            };
            let b = if late && i % 13 == 0 {
                "?".into()
            } else {
                b.to_string()
            };
            let colour = if late && i % 11 == 0 { "NA" } else { colour };
            text.push_str(&format!("{a},{b},{colour},{y}\n"));
        }
        text
    }

    /// Class indices or values, as numbers.
    fn numbers(targets: &Targets) -> Vec<f64> {
        match targets {
            Targets::Classes(c) => c.iter().map(|&c| c as f64).collect(),
            Targets::Values(v) => v.iter().map(|&v| v as f64).collect(),
        }
    }

    #[test]
    fn shares_are_whole_records_that_cover_the_file_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        // A quoted field with a line break across the middle, where the cut of two shares
        // falls; \r\n line ends.
        let mut text = String::from("a,b\r\n");
        for i in 0..20 {
            text.push_str(&format!("{i},x\r\n"));
        }
        text.push_str(&format!(
            "20,\"{}\nstill the same field\"\r\n",
            "q".repeat(200)
        ));
        for i in 21..40 {
            text.push_str(&format!("{i},y\r\n"));
        }
        std::fs::write(&path, &text).unwrap();
        let one = Table::from_bytes(&path, text.as_bytes(), &ReadOptions::default()).unwrap();
        for size in 1..=4 {
            let p = path.clone();
            let shares = on_ranks(size, move |c| read_share(&p, &c).unwrap());
            let mut firsts = Vec::new();
            for share in &shares {
                let table = Table::from_part(&path, &share.bytes, &Default::default(), Some(&[]))
                    .unwrap_or_else(|e| panic!("{size} shares: {e}"));
                if let Column::Numeric { values, .. } = &table.columns()[0] {
                    firsts.extend(values.iter().copied());
                }
                if table.rows() > 0 {
                    // The share's first row is on the line the whole file puts it on.
                    let row = firsts.len() - table.rows();
                    assert_eq!(share.file_line(table.line(0)), one.line(row));
                }
            }
            let want: Vec<f32> = (0..40).map(|i| i as f32).collect();
            assert_eq!(firsts, want, "{size} shares");
        }
    }

    #[test]
    fn shared_preparation_equals_one_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut piecewise = 0;
        for (regression, missing, scaling) in [
            (false, MissingPolicy::Impute, Scaling::Piecewise),
            (true, MissingPolicy::Impute, Scaling::Piecewise),
            (false, MissingPolicy::Drop, Scaling::Piecewise),
            (false, MissingPolicy::Impute, Scaling::Standard),
        ] {
            let path = dir.path().join("uneven.csv");
            std::fs::write(&path, uneven(301, regression)).unwrap();
            let mut request = TrainRequest::new(&path);
            request.missing = missing;
            request.config.folds = 0; // shared over processes: one network
            request.config.seed = 4;
            request.scaling = scaling;
            let one = prepare(&request).unwrap();
            let numeric = (one.encoding.features.iter())
                .filter(|f| !matches!(f, Feature::Categorical { .. }))
                .collect::<Vec<_>>();
            assert_eq!(numeric.len(), 2);
            assert!(numeric.iter().all(|f| match scaling {
                Scaling::Piecewise => matches!(f, Feature::Piecewise { .. }),
                _ => matches!(f, Feature::Numeric { .. }),
            }));
            for size in [2, 3] {
                let r = request.clone();
                let parts = on_ranks(size, move |c| prepare_shared(&r, &c).unwrap());
                let case =
                    format!("{size} ranks, regression {regression}, {missing:?}, {scaling:?}");
                for part in &parts {
                    assert_eq!(
                        (part.rows, part.dropped, &part.filled, part.task),
                        (one.rows, one.dropped, &one.filled, one.task),
                        "{case}"
                    );
                    assert_eq!(
                        (part.train_rows, part.validation_rows, &part.sha256),
                        (one.train_rows, one.validation_rows, &one.sha256)
                    );
                    // The same encoding, to the last bit of every mean and deviation.
                    assert_eq!(part.encoding, one.encoding, "{case}");
                    piecewise += (part.encoding.features.iter())
                        .filter(
                            |f| matches!(f, Feature::Piecewise { edges, .. } if edges.len() >= 3),
                        )
                        .count();
                }
                // The shares' rows, in rank order, are the rows of one process.
                let stack = |f: &dyn Fn(&Prepared) -> ndarray::ArrayView2<f32>| {
                    let views: Vec<_> = parts.iter().map(f).collect();
                    ndarray::concatenate(ndarray::Axis(0), &views).unwrap()
                };
                for (got, want) in [
                    (stack(&|p| p.x_train.view()), &one.x_train),
                    (stack(&|p| p.x_val.view()), &one.x_val),
                ] {
                    assert_eq!(&got, want, "{case}");
                }
                for f in [
                    |p: &Prepared| p.y_train.clone(),
                    |p: &Prepared| p.y_val.clone(),
                ] {
                    let got: Vec<f64> = parts.iter().flat_map(|p| numbers(&f(p))).collect();
                    assert_eq!(got, numbers(&f(&one)), "{case}");
                }
            }
        }
        // Two numeric columns, on every rank of 2 and 3, in three cases.
        assert_eq!(piecewise, 2 * (2 + 3) * 3);
    }

    /// In memory, streamed in small chunks (one process and two), and shared over two
    /// processes: one file gives one encoding, to the last bit.
    #[test]
    fn every_mode_fits_the_same_encoding_to_the_bit() {
        use crate::pipeline::{StreamBudget, prepare_streamed_shared};
        let dir = tempfile::tempdir().unwrap();
        for (regression, scaling) in [
            (false, Scaling::Standard),
            (true, Scaling::Standard),
            (true, Scaling::Piecewise),
        ] {
            let path = dir.path().join("uneven.csv");
            std::fs::write(&path, with_dates(&uneven(1500, regression))).unwrap();
            let mut request = TrainRequest::new(&path);
            request.missing = MissingPolicy::Impute;
            request.scaling = scaling;
            // Every row trains: the streamed split is by line, the in-memory one by shuffle.
            request.config.folds = 0;
            request.config.val_split = 0.0;
            let one = prepare(&request).unwrap().encoding;
            assert_eq!(one.features.len(), 4);
            assert!(matches!(&one.features[3], Feature::Date { parts, .. } if parts.len() == 12));
            let budget = StreamBudget {
                chunk_bytes: 1 << 10,
                ..StreamBudget::within(64 << 20, 5)
            };
            let streamed = prepare_streamed_shared(&request, budget, &crate::train::comm::Solo);
            assert_eq!(streamed.unwrap().scan.encoding, one, "streamed");
            for shared in [false, true] {
                let r = request.clone();
                let parts = on_ranks(2, move |c| match shared {
                    true => prepare_shared(&r, &c).unwrap().encoding,
                    false => {
                        prepare_streamed_shared(&r, budget, &c)
                            .unwrap()
                            .scan
                            .encoding
                    }
                });
                for part in parts {
                    assert_eq!(
                        part, one,
                        "2 ranks, shared {shared}, regression {regression}"
                    );
                }
            }
        }
    }

    #[test]
    fn robust_scaling_is_refused_when_shared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("uneven.csv");
        std::fs::write(&path, uneven(40, false)).unwrap();
        let mut request = TrainRequest::new(&path);
        request.config.folds = 0;
        request.scaling = Scaling::Robust;
        let out = on_ranks(2, move |c| {
            prepare_shared(&request, &c).err().unwrap().to_string()
        });
        for message in out {
            assert!(
                message.starts_with("invalid `scaling` robust: a file shared over processes"),
                "{message}"
            );
        }
    }

    #[test]
    fn an_error_in_one_share_stops_every_rank_and_names_the_files_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("late.csv");
        let mut text = uneven(101, false);
        text.push_str("1,oops,red,yes\n");
        std::fs::write(&path, &text).unwrap();
        let mut request = TrainRequest::new(&path);
        request.config.folds = 0;
        let one = prepare(&request).err().unwrap().to_string();
        assert!(one.contains("line 103, column 'b': 'oops'"), "{one}");
        let r = request.clone();
        let out = on_ranks(2, move |c| {
            prepare_shared(&r, &c).err().unwrap().to_string()
        });
        assert_eq!(out[0], "process 1 stopped the run");
        assert_eq!(out[1], one);

        // Bad cells in both halves, the second half's in an earlier column: the message
        // of one process, which checks the columns in order.
        let mut text = String::from("a,b,c,y\n");
        for i in 0..100 {
            let b = if i == 70 {
                "oops".to_string()
            } else {
                i.to_string()
            };
            let c = if i == 10 {
                "bad".to_string()
            } else {
                (i * 2).to_string()
            };
            text.push_str(&format!("{i},{b},{c},{}\n", i % 2));
        }
        std::fs::write(&path, &text).unwrap();
        let one = prepare(&request).err().unwrap().to_string();
        assert!(one.contains("line 72, column 'b': 'oops'"), "{one}");
        let r = request.clone();
        let out = on_ranks(2, move |c| {
            prepare_shared(&r, &c).err().unwrap().to_string()
        });
        assert_eq!(out, ["process 1 stopped the run".to_string(), one]);
    }
}
