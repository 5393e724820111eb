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

pub mod scan;
pub mod window;

use std::path::Path;

use ndarray::Array2;

use crate::error::{Error, Result};
use crate::nn::loss::Loss;
use crate::nn::optim::Optimizer;
use crate::nn::sequential::Sequential;
use crate::pipeline::prepare::TrainRequest;
use crate::tabular::encoding::Targets;
use crate::train::comm::{Communicator, settle};
use crate::train::{Batch, Batches, EpochEnd, Epochs, Observer, step_together};

use window::Windows;

pub use scan::{Scan, is_validation_row, scan, scan_shared};

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
    /// The next window of this process's part (its targets, and the shuffled order its rows
    /// train in), `None` at the end of the part; `index` counts the windows.
    fn next_window(
        &self,
        windows: &mut Result<Windows>,
        index: &mut u64,
        rank: usize,
    ) -> Result<Option<(Targets, Vec<usize>)>> {
        let windows = match windows.as_mut() {
            Ok(windows) => windows,
            Err(e) => return Err(std::mem::replace(e, Error::Interrupted(String::new()))),
        };
        match windows.next_window()? {
            0 => Ok(None),
            n => {
                *index += 1;
                let seed = self.window_seed(*index, rank);
                Ok(Some((windows.targets(), shuffled(n, seed))))
            }
        }
    }

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
                at = 0;
                current = self
                    .next_window(&mut windows, &mut index, rank)
                    .unwrap_or_else(|e| {
                        failure = Some(e);
                        None
                    });
            }
            let stop = interrupted() || failure.is_some();
            let step = match (&current, windows.as_ref()) {
                (Some((y, order)), Ok(windows)) if at < order.len() => {
                    let picked = &order[at..(at + local_batch).min(order.len())];
                    at += picked.len();
                    let step = Step {
                        model: &mut *model,
                        loss: &mut *loss,
                        optimizer: &mut *optimizer,
                        comm,
                    };
                    step.on_rows(windows.x(), y, picked, &mut buffer, stop)
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

/// The numbers `0..n` in a seeded shuffled order.
fn shuffled(n: usize, seed: u64) -> Vec<usize> {
    use ndarray_rand::rand::SeedableRng;
    use ndarray_rand::rand::seq::SliceRandom;
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut ndarray_rand::rand::rngs::StdRng::seed_from_u64(seed));
    order
}

/// What one training step of a data-parallel streamed epoch works with.
struct Step<'a> {
    model: &'a mut Sequential,
    loss: &'a mut dyn Loss,
    optimizer: &'a mut dyn Optimizer,
    comm: &'a dyn Communicator,
}

impl Step<'_> {
    /// One step on the `picked` rows of a window (`x`, `y`), together with every process
    /// ([`step_together`]): the loss, the rows, and whether training was interrupted.
    fn on_rows(
        self,
        x: ndarray::ArrayView2<f32>,
        y: &Targets,
        picked: &[usize],
        buffer: &mut Vec<f32>,
        stop: bool,
    ) -> Result<(f32, usize, bool)> {
        let Step {
            model,
            loss,
            optimizer,
            comm,
        } = self;
        let xb = x.select(ndarray::Axis(0), picked);
        match y {
            Targets::Classes(c) => {
                let cb: Vec<usize> = picked.iter().map(|&r| c[r]).collect();
                let rows = Some((xb.view(), crate::nn::loss::Target::Classes(&cb)));
                step_together(model, loss, optimizer, comm, rows, buffer, stop)
            }
            Targets::Values(v) => {
                let vb = v.select(ndarray::Axis(0), picked);
                let rows = Some((xb.view(), crate::nn::loss::Target::Dense(vb.view())));
                step_together(model, loss, optimizer, comm, rows, buffer, stop)
            }
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
