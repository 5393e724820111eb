//! From a CSV file to a trained [`Model`], and from a model and a CSV file to predictions
//! and metrics: what `mlp train`, `mlp predict` and `mlp eval` do, as library calls.
//!
//! ```no_run
//! use mlp::pipeline::{TrainRequest, prepare, train};
//!
//! let request = TrainRequest::new("data/iris.csv");
//! let prepared = prepare(&request)?;
//! let trained = train(&prepared, &request.config, None, &mut |_| {})?;
//! trained.model.save("iris-model.json".as_ref())?;
//! # Ok::<(), mlp::Error>(())
//! ```

pub mod calibrate;
pub mod memory;
pub mod predict;
pub mod prepare;
pub mod share;
pub mod stream;

pub use prepare::{MissingPolicy, Prepared, TrainRequest, prepare, prepare_bytes, sha256_hex};

use std::path::Path;
use std::sync::atomic::AtomicBool;

use ndarray::{Array2, Axis};

use crate::data::{ReadOptions, Table};
use crate::error::{Error, Hint, Result, Setting};
use crate::nn::loss::Loss;
use crate::nn::sequential::Sequential;
use crate::pipeline::memory::{format_size, scoring_estimate, scoring_factor};
use crate::tabular::encoding::{Encoding, Targets, Task, UnknownCategory, Unseen};
use crate::tabular::model::{
    FORMAT, Metrics, Model, ModelFile, Predictions, TrainingRecord, VERSION, layer_records,
};
use crate::train::comm::Communicator;
use crate::train::{
    Batch, Batches, EpochReport, FitOutcome, Hooks, Monitor, Observer, StopReason, TrainConfig,
    build_network, build_network_with_dropout, fit, fit_epochs, fold_rows, loss_for,
};
use prepare::{check_network_size, check_spread};
use stream::{Held, Scan, StreamEpochs};

/// A trained model and how training went.
pub struct Trained {
    /// The model with the best epoch's weights.
    pub model: Model,
    /// Curves, best epoch and why training stopped (of the first network of an ensemble).
    pub outcome: FitOutcome,
    /// In a k-fold ensemble, the best epoch of each network, in order (empty for one).
    pub fold_epochs: Vec<usize>,
}

impl Trained {
    /// One network (not an ensemble), saved with its model `file`.
    fn one(file: ModelFile, network: Sequential, outcome: FitOutcome) -> Trained {
        Trained {
            model: Model {
                file,
                network,
                ensemble: Vec::new(),
            },
            outcome,
            fold_epochs: Vec::new(),
        }
    }
}

/// Trains a network on `prepared` with `config`, the settings `prepared` was made with
/// (checked there).
///
/// `interrupt` is checked after every batch (Ctrl-C); `on_epoch` sees every epoch.
pub fn train(
    prepared: &Prepared,
    config: &TrainConfig,
    interrupt: Option<&AtomicBool>,
    on_epoch: &mut dyn FnMut(&EpochReport),
) -> Result<Trained> {
    train_observed(prepared, config, interrupt, on_epoch, None)
}

/// [`train`], with an [`Observer`] watching the model inside the training loop (not
/// during a `--refit` run, nor in a k-fold ensemble).
pub fn train_observed<'a>(
    prepared: &Prepared,
    config: &TrainConfig,
    interrupt: Option<&'a AtomicBool>,
    on_epoch: &'a mut dyn FnMut(&EpochReport),
    observer: Option<&'a mut dyn Observer>,
) -> Result<Trained> {
    train_with(
        prepared,
        config,
        Hooks {
            interrupt,
            on_epoch: Some(on_epoch),
            observer,
            comm: None,
        },
    )
}

/// [`train`] with every hook of [`fit`]: an [`Observer`] (which does not watch a `--refit`
/// run), and the processes to train together with (`hooks.comm`, data parallelism: every
/// process must call this with the same `prepared` and `config`, and ends with the same
/// model).
pub fn train_with(prepared: &Prepared, config: &TrainConfig, hooks: Hooks<'_>) -> Result<Trained> {
    let Hooks {
        interrupt,
        on_epoch,
        observer,
        comm,
    } = hooks;
    if config.folds >= 2 {
        return train_folds(prepared, config, interrupt, on_epoch, observer, comm);
    }
    let mut network = new_network(prepared, config, config.seed);
    let mut loss = loss_for(
        prepared.task,
        config,
        prepared.encoding.target.class_counts(),
    )?;
    let mut optimizer = config.build_optimizer()?;
    let train_data = Batch {
        x: prepared.x_train.view(),
        y: &prepared.y_train,
    };
    // Counted over every process, which must all take the same path.
    let validation = (prepared.validation_rows > 0).then(|| Batch {
        x: prepared.x_val.view(),
        y: &prepared.y_val,
    });
    let mut halves = validation.and_then(|v| halves_of(config, v, comm));
    let hooks = Hooks {
        interrupt,
        on_epoch,
        observer,
        comm,
    };
    let run = |hooks: Hooks<'_>| {
        let (loss, optimizer) = (loss.as_mut(), optimizer.as_mut());
        fit(
            &mut network,
            loss,
            optimizer,
            train_data,
            validation,
            config,
            hooks,
        )
    };
    let outcome = watched(hooks, halves.as_mut(), run)?;

    // Calibrated on the validation rows by the network that did not train on them (with
    // --refit, the first one: the refit network has seen them), for values each half's
    // from the epoch the other half chose; in a data-parallel run on every process's
    // validation rows, so that each holds the same model.
    let calibration = validation
        .is_some()
        .then(|| calibrate::on_validation(&mut network, prepared, config, (halves, comm)));
    // With --refit, a fresh network learns from every row for the chosen number of epochs
    // (the validation rows are too valuable to leave out of small data sets).
    let refit_epochs = refit_epochs(config, validation.is_some(), &outcome);
    if let Some(epochs) = refit_epochs {
        let hooks = Hooks {
            interrupt,
            on_epoch: None,
            observer: None,
            comm,
        };
        network = refit(prepared, config, loss.as_mut(), epochs, hooks)?;
    }
    let mut file = model_file(
        &Source::of(prepared),
        config,
        &mut network,
        &mut [],
        &outcome,
        refit_epochs,
    );
    if let Some((calibration, residuals)) = calibration {
        (file.calibration, file.residuals) = (calibration, residuals);
    }
    Ok(Trained::one(file, network, outcome))
}

/// How many epochs a `--refit` network trains: the best epoch of a run validated
/// (`validated`) that finished or stopped early; none without `--refit`.
fn refit_epochs(config: &TrainConfig, validated: bool, outcome: &FitOutcome) -> Option<usize> {
    let finished = matches!(
        outcome.stop,
        StopReason::Completed | StopReason::EarlyStopped
    );
    (config.refit && validated && finished).then_some(outcome.best_epoch)
}

/// The untrained network for `prepared`'s inputs and outputs, its weights (and dropout
/// masks) drawn from `seed`.
pub fn new_network(prepared: &Prepared, config: &TrainConfig, seed: u64) -> Sequential {
    build_network_with_dropout(
        (
            prepared.encoding.input_width(),
            &prepared.encoding.one_hot_inputs(),
        ),
        &config.hidden,
        prepared.encoding.target.width(),
        config.activation,
        config.dropout,
        seed,
    )
}

/// k-fold cross-fitting: one network per fold, each trained on the other folds and
/// early-stopped on its own, kept together as an ensemble. The validation figures are
/// out-of-fold: every row is scored by the network that did not train on it. The curves
/// shown (`outcome`) are the first fold's.
fn train_folds<'a>(
    prepared: &Prepared,
    config: &TrainConfig,
    interrupt: Option<&'a AtomicBool>,
    on_epoch: Option<&'a mut dyn FnMut(&EpochReport)>,
    observer: Option<&'a mut dyn Observer>,
    comm: Option<&'a dyn Communicator>,
) -> Result<Trained> {
    let k = config.folds;
    let (x, y) = (&prepared.x_train, &prepared.y_train);
    let rows = x.nrows();
    let classes = match y {
        Targets::Classes(c) => Some(c.as_slice()),
        Targets::Values(_) => None,
    };
    let fold = fold_rows(rows, classes, k, config.seed);
    let splits = (0..k)
        .map(|f| fold_split(&fold, f, k))
        .collect::<Result<Vec<_>>>()?;
    let hooks = Hooks {
        interrupt,
        on_epoch,
        observer,
        comm,
    };
    let mut networks = Vec::with_capacity(k);
    let mut best_epochs = Vec::with_capacity(k);
    let mut first_outcome = None;
    let mut out_of_fold = OutOfFold::new(rows, prepared.encoding.target.width());
    for ((mut network, outcome, honest), (_, val_rows)) in
        fit_folds(prepared, config, &splits, hooks)?
            .into_iter()
            .zip(&splits)
    {
        let (x_va, y_va) = (x.select(Axis(0), val_rows), select(y, val_rows));
        let validation = Batch {
            x: x_va.view(),
            y: &y_va,
        };
        out_of_fold.add(&mut network, validation, val_rows, honest)?;
        networks.push(network);
        best_epochs.push(outcome.best_epoch);
        first_outcome.get_or_insert(outcome);
    }
    let variance = match y {
        Targets::Values(_) => calibrate::spread(&mut networks, &prepared.encoding, x.view()),
        Targets::Classes(_) => 0.0,
    };
    let outcome = first_outcome.expect("at least one fold ran");
    let mut networks = networks.into_iter();
    let mut network = networks.next().expect("at least one fold ran");
    let mut ensemble: Vec<Sequential> = networks.collect();
    let source = Source::of(prepared);
    let mut file = model_file(&source, config, &mut network, &mut ensemble, &outcome, None);
    file.metrics = out_of_fold.metrics(y, prepared.task, &outcome);
    (file.calibration, file.residuals) =
        out_of_fold.calibration(config, &prepared.encoding, y, variance);
    // The figures' rows: every row, or (interrupted) those of the folds that were trained.
    file.training.validation_rows = out_of_fold.scored.len();
    Ok(Trained {
        model: Model {
            file,
            network,
            ensemble,
        },
        outcome,
        fold_epochs: best_epochs,
    })
}

/// Most bytes of training inputs for which the folds train at the same time: each fold
/// copies its rows, so concurrent folds hold more memory at once than the memory check of
/// an in-memory run counts (one fold's copy); up to 32 MiB (flights' 34,000 rows × 183
/// inputs are 25 MiB) that is at most 64 MiB more.
const CONCURRENT_BYTES: usize = 32 << 20;

/// Trains one network per fold of `splits` (training rows, held-out rows), fold `f` with
/// seed `config.seed + f`; the first fold's epochs go to `hooks`' `on_epoch` and
/// `observer`. The networks are those of the folds trained, in order: all of them, or
/// after an interruption those that had started.
///
/// With two threads or more, one process and inputs under [`CONCURRENT_BYTES`], the folds
/// train at the same time, the first on this thread (with the hooks) and the others on as
/// many more threads as there are threads beyond one. Each network's sums are the same as
/// when trained alone (products give the same bits on any thread), so the model file is
/// too.
fn fit_folds(
    prepared: &Prepared,
    config: &TrainConfig,
    splits: &[(Vec<usize>, Vec<usize>)],
    mut hooks: Hooks<'_>,
) -> Result<Vec<Fitted>> {
    let k = splits.len();
    let (interrupt, comm) = (hooks.interrupt, hooks.comm);
    let one = |f: usize, hooks: Hooks<'_>| -> Result<Fitted> {
        let mut loss = loss_for(
            prepared.task,
            config,
            prepared.encoding.target.class_counts(),
        )?;
        let (train_rows, val_rows) = &splits[f];
        let seed = config.seed.wrapping_add(f as u64);
        let rows = (train_rows.as_slice(), val_rows.as_slice());
        fit_fold(prepared, config, loss.as_mut(), rows, seed, hooks)
    };
    let quiet = |comm| Hooks {
        interrupt,
        on_epoch: None,
        observer: None,
        comm,
    };
    use crate::nn::linalg::threads::{num_threads, with_share};
    let threads = num_threads().min(k);
    // The folds at the same time split their products over their share of the threads.
    let share = num_threads() / threads.max(1);
    let bytes = prepared.x_train.len() * std::mem::size_of::<f32>();
    if threads < 2 || comm.is_some() || bytes > CONCURRENT_BYTES {
        let mut trained = Vec::with_capacity(k);
        for f in 0..k {
            let fold_hooks = match f {
                0 => std::mem::replace(&mut hooks, quiet(comm)),
                _ => quiet(comm),
            };
            let fitted = one(f, fold_hooks)?;
            let stopped = fitted.1.stop == StopReason::Interrupted;
            trained.push(fitted);
            if stopped {
                break;
            }
        }
        return Ok(trained);
    }
    // Folds 1.. are taken in order by whichever thread is free; none starts after an
    // interruption.
    let next = std::sync::atomic::AtomicUsize::new(1);
    type Slot = std::sync::Mutex<Option<Result<Fitted>>>;
    let results: Vec<Slot> = (0..k).map(|_| Slot::new(None)).collect();
    let take_folds = || {
        loop {
            let f = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if f >= k || interrupt.is_some_and(|i| i.load(std::sync::atomic::Ordering::SeqCst)) {
                break;
            }
            let result = with_share(share, || one(f, quiet(None)));
            *results[f].lock().unwrap_or_else(|e| e.into_inner()) = Some(result);
        }
    };
    std::thread::scope(|scope| {
        for _ in 1..threads {
            scope.spawn(take_folds);
        }
        *results[0].lock().unwrap_or_else(|e| e.into_inner()) =
            Some(with_share(share, || one(0, hooks)));
        take_folds();
    });
    let mut trained = Vec::with_capacity(k);
    for result in results {
        match result.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(result) => trained.push(result?),
            None => break,
        }
    }
    Ok(trained)
}

/// The rows (training, held out) of fold `f` of `k`, given each row's fold; refused when
/// either is empty (too few rows for `k` folds).
fn fold_split(fold: &[usize], f: usize, k: usize) -> Result<(Vec<usize>, Vec<usize>)> {
    let rows = fold.len();
    let train_rows: Vec<usize> = (0..rows).filter(|&r| fold[r] != f).collect();
    let val_rows: Vec<usize> = (0..rows).filter(|&r| fold[r] == f).collect();
    if train_rows.is_empty() || val_rows.is_empty() {
        return Err(Error::config(
            Setting::Folds,
            k,
            format!("{rows} rows are too few for {k} folds"),
            Hint::text("use fewer folds, or ").setting(Setting::Folds, 0),
        ));
    }
    Ok((train_rows, val_rows))
}

/// A fold's network, how its training went, and (for values) its held-out rows' outputs
/// from [`calibrate::HalfSelected`].
type Fitted = (Sequential, FitOutcome, Option<Array2<f32>>);

/// Trains a network of seed `seed` on the `rows` (training, held out) of `prepared`'s
/// training rows, early-stopping on the held-out ones; for values, also their outputs to
/// take residuals from, each half's from the epoch the other half judged best
/// ([`calibrate::HalfSelected`]).
fn fit_fold(
    prepared: &Prepared,
    config: &TrainConfig,
    loss: &mut dyn Loss,
    (train_rows, val_rows): (&[usize], &[usize]),
    seed: u64,
    hooks: Hooks<'_>,
) -> Result<Fitted> {
    let (x, y) = (&prepared.x_train, &prepared.y_train);
    let (x_tr, y_tr) = (x.select(Axis(0), train_rows), select(y, train_rows));
    let (x_va, y_va) = (x.select(Axis(0), val_rows), select(y, val_rows));
    let mut network = new_network(prepared, config, seed);
    let mut optimizer = config.build_optimizer()?;
    let fold_config = TrainConfig {
        seed,
        ..config.clone()
    };
    let training = Batch {
        x: x_tr.view(),
        y: &y_tr,
    };
    let validation = Batch {
        x: x_va.view(),
        y: &y_va,
    };
    let opt = optimizer.as_mut();
    let mut halves = halves_of(config, validation, None);
    let run = |hooks: Hooks<'_>| {
        let validation = Some(validation);
        fit(
            &mut network,
            loss,
            opt,
            training,
            validation,
            &fold_config,
            hooks,
        )
    };
    let outcome = watched(hooks, halves.as_mut(), run)?;
    let honest = halves.map(|h| h.into_outputs(&mut network));
    Ok((network, outcome, honest))
}

/// For values, a [`calibrate::HalfSelected`] watching the held-out rows `held_out` (and
/// those of the other processes of `comm`); none for classes.
fn halves_of<'a>(
    config: &TrainConfig,
    held_out: Batch<'a>,
    comm: Option<&'a dyn Communicator>,
) -> Option<calibrate::HalfSelected<'a>> {
    let Targets::Values(y) = held_out.y else {
        return None;
    };
    let absolute = config.metric == crate::train::Metric::Mae;
    Some(calibrate::HalfSelected::new(
        (held_out.x, y.view()),
        absolute,
        comm,
    ))
}

/// Runs `run` with `hooks`, and `halves` (if any) watching beside the hooks' own observer.
fn watched<T>(
    hooks: Hooks<'_>,
    halves: Option<&mut calibrate::HalfSelected<'_>>,
    run: impl FnOnce(Hooks<'_>) -> Result<T>,
) -> Result<T> {
    let Some(halves) = halves else {
        return run(hooks);
    };
    let Hooks {
        interrupt,
        mut on_epoch,
        mut observer,
        comm,
    } = hooks;
    let mut observers: Vec<&mut dyn Observer> = vec![halves];
    if let Some(o) = observer.as_mut() {
        observers.push(&mut **o);
    }
    run(Hooks {
        interrupt,
        on_epoch: match on_epoch.as_mut() {
            Some(f) => Some(&mut **f),
            None => None,
        },
        observer: Some(&mut observers),
        comm,
    })
}

/// Out-of-fold totals over the folds' held-out rows: loss, correct classes, and R²'s
/// residual sum of squares; which rows they cover (all of them once every fold is trained;
/// those of the folds trained before an interruption otherwise); and every held-out row's
/// raw outputs, from the network that did not train on it, to calibrate on.
struct OutOfFold {
    loss: f64,
    correct: usize,
    ss_res: f64,
    /// (rows, outputs): the rows of the folds that ran filled in.
    outputs: ndarray::Array2<f32>,
    /// The rows scored so far.
    scored: Vec<usize>,
    /// Each scored row's network (its fold), in the order they were added.
    network: Vec<usize>,
    /// Networks added so far.
    networks: usize,
}

impl OutOfFold {
    /// Nothing scored yet, of `rows` rows and `outputs` outputs.
    fn new(rows: usize, outputs: usize) -> OutOfFold {
        OutOfFold {
            loss: 0.0,
            correct: 0,
            ss_res: 0.0,
            outputs: ndarray::Array2::zeros((rows, outputs)),
            scored: Vec::with_capacity(rows),
            network: vec![0; rows],
            networks: 0,
        }
    }

    /// The temperature or residuals of the rows scored (an interrupted run scored only the
    /// folds that ran), whose targets are those rows of `y`; `variance`, the networks'
    /// [`calibrate::spread`].
    fn calibration(
        &mut self,
        config: &TrainConfig,
        encoding: &Encoding,
        y: &Targets,
        variance: f64,
    ) -> (
        crate::tabular::calibration::Calibration,
        Option<crate::tabular::calibration::Residuals>,
    ) {
        self.scored.sort_unstable();
        let outputs = self.outputs.select(Axis(0), &self.scored);
        let networks: Vec<usize> = self.scored.iter().map(|&r| self.network[r]).collect();
        let y = select(y, &self.scored);
        let networks = Some((networks.as_slice(), variance));
        calibrate::held_out(config, encoding, outputs.view(), &y, networks)
    }

    /// Adds how `network` does on its fold's held-out rows, rows `rows` of the training rows;
    /// `outputs`, if given, are the rows' outputs to calibrate on instead of the network's.
    fn add(
        &mut self,
        network: &mut Sequential,
        held_out: Batch,
        rows: &[usize],
        outputs: Option<Array2<f32>>,
    ) -> Result<()> {
        let outputs = outputs.unwrap_or_else(|| calibrate::raw_outputs(network, held_out.x));
        for (i, &r) in rows.iter().enumerate() {
            self.outputs.row_mut(r).assign(&outputs.row(i));
            self.network[r] = self.networks;
        }
        self.networks += 1;
        self.scored.extend_from_slice(rows);
        let n = held_out.x.nrows() as f64;
        let (l, m) = crate::train::evaluate(network, held_out)?;
        self.loss += l as f64 * n;
        match held_out.y {
            Targets::Classes(_) => self.correct += (m as f64 * n).round() as usize,
            // The MSE of standardised targets is the residual sum of squares per row.
            Targets::Values(_) => self.ss_res += l as f64 * n,
        }
        Ok(())
    }

    /// The model's figures: the first network's best epoch and training loss, and the
    /// out-of-fold loss and accuracy or R² over the rows scored, of the targets `y`.
    fn metrics(&self, y: &Targets, task: Task, outcome: &FitOutcome) -> Metrics {
        let rows = self.scored.len() as f64;
        let metric = match y {
            Targets::Classes(_) => self.correct as f64 / rows,
            Targets::Values(v) => {
                let scored = || {
                    (self.scored.iter())
                        .flat_map(|&r| v.row(r).to_vec())
                        .map(f64::from)
                };
                let mean = scored().sum::<f64>() / rows;
                let ss_tot: f64 = scored().map(|t| (t - mean).powi(2)).sum();
                if ss_tot > 0.0 {
                    1.0 - self.ss_res / ss_tot
                } else {
                    0.0
                }
            }
        } as f32;
        Metrics {
            best_epoch: outcome.best_epoch,
            train_loss: outcome.history.train_loss[outcome.best_epoch - 1],
            validation_loss: Some((self.loss / rows) as f32),
            validation_accuracy: (task == Task::Classification).then_some(metric),
            validation_r2: (task == Task::Regression).then_some(metric),
        }
    }
}

/// The rows `rows` of `targets`.
fn select(targets: &Targets, rows: &[usize]) -> Targets {
    match targets {
        Targets::Classes(c) => Targets::Classes(rows.iter().map(|&r| c[r]).collect()),
        Targets::Values(v) => Targets::Values(v.select(ndarray::Axis(0), rows)),
    }
}

/// A fresh network trained on the training and validation rows together for `epochs`
/// epochs.
fn refit(
    prepared: &Prepared,
    config: &TrainConfig,
    loss: &mut dyn Loss,
    epochs: usize,
    hooks: Hooks<'_>,
) -> Result<Sequential> {
    let x = ndarray::concatenate(
        ndarray::Axis(0),
        &[prepared.x_train.view(), prepared.x_val.view()],
    )
    .expect("training and validation rows have the same columns");
    let y = match (&prepared.y_train, &prepared.y_val) {
        (Targets::Classes(a), Targets::Classes(b)) => {
            Targets::Classes(a.iter().chain(b).copied().collect())
        }
        (Targets::Values(a), Targets::Values(b)) => Targets::Values(
            ndarray::concatenate(ndarray::Axis(0), &[a.view(), b.view()])
                .expect("one target column"),
        ),
        _ => unreachable!("both splits have the task's kind of target"),
    };
    let refit_config = TrainConfig {
        epochs,
        patience: 0,
        ..config.clone()
    };
    let mut network = new_network(prepared, config, config.seed);
    let mut optimizer = config.build_optimizer()?;
    let rows = Batch { x: x.view(), y: &y };
    let batches = Batches::new(rows, config.batch_size, config.seed);
    // In a data-parallel run, all training rows come before all validation rows, as here.
    let mut batches = match hooks.comm {
        Some(comm) => {
            let parts = [prepared.x_train.nrows(), prepared.x_val.nrows()];
            batches.shared_in_parts(comm, config.batch_size, &parts)
        }
        None => batches,
    };
    let monitor = Monitor::Training(rows);
    fit_epochs(
        &mut network,
        loss,
        optimizer.as_mut(),
        &mut batches,
        monitor,
        &refit_config,
        hooks,
    )?;
    Ok(network)
}

/// What a model file records about the data it was trained on.
struct Source<'a> {
    data: &'a Path,
    sha256: &'a str,
    task: Task,
    encoding: &'a Encoding,
    rows: usize,
    dropped: usize,
    filled: usize,
    train_rows: usize,
    validation_rows: usize,
}

impl<'a> Source<'a> {
    /// What `prepared` says of the data it was made from.
    fn of(prepared: &'a Prepared) -> Source<'a> {
        Source {
            data: &prepared.data,
            sha256: &prepared.sha256,
            task: prepared.task,
            encoding: &prepared.encoding,
            rows: prepared.rows,
            dropped: prepared.dropped,
            filled: prepared.filled.iter().map(|(_, n)| n).sum(),
            train_rows: prepared.train_rows,
            validation_rows: prepared.validation_rows,
        }
    }
}

/// The model file for `network`, trained on `source` with `config`.
fn model_file(
    source: &Source<'_>,
    config: &TrainConfig,
    network: &mut Sequential,
    ensemble: &mut [Sequential],
    outcome: &FitOutcome,
    refit_epochs: Option<usize>,
) -> ModelFile {
    let best = outcome.best_epoch - 1;
    let history = &outcome.history;
    let metric = history.val_metric.get(best).copied();
    let metrics = Metrics {
        best_epoch: outcome.best_epoch,
        train_loss: history.train_loss[best],
        validation_loss: history.val_loss.get(best).copied(),
        validation_accuracy: metric.filter(|_| source.task == Task::Classification),
        validation_r2: metric.filter(|_| source.task == Task::Regression),
    };
    ModelFile {
        format: FORMAT.into(),
        version: VERSION,
        task: source.task,
        encoding: source.encoding.clone(),
        layers: layer_records(network),
        ensemble: ensemble.iter_mut().map(layer_records).collect(),
        training: TrainingRecord {
            data_file: source
                .data
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            data_sha256: source.sha256.to_string(),
            rows: source.rows,
            dropped_rows: source.dropped,
            filled_cells: source.filled,
            train_rows: source.train_rows,
            validation_rows: source.validation_rows,
            config: config.clone(),
            epochs_run: history.train_loss.len(),
            stop: outcome.stop.clone(),
            history: history.clone(),
            refit_epochs,
        },
        metrics,
        health: None,
        calibration: Default::default(),
        residuals: None,
    }
}

/// How much memory a streamed run gives each of its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamBudget {
    /// The memory limit it was made from, in bytes.
    pub limit: u64,
    /// Bytes of the file read at a time (a chunk is held twice: as read, and with the
    /// header in front for the reader). How the file is read, never what trains.
    pub chunk_bytes: usize,
    /// Bytes for encoded rows: the window of training rows shuffled together
    /// ([`TrainConfig::shuffle_window`]) and the rows kept to judge every epoch on
    /// ([`TrainConfig::held_rows`]). Settings that need more are refused
    /// ([`check_stream_memory`]), never cut to fit.
    pub rows_bytes: usize,
}

impl StreamBudget {
    /// Shares of `limit` for inputs `encoded` times the size of their text
    /// ([`crate::pipeline::memory::encoded_factor`]): a quarter for the encoded rows (the shuffle
    /// window and the held rows), and chunks small enough that a chunk's copies (twice as
    /// read, once parsed, `encoded` times encoded) take at most half, an eighth of the limit
    /// each with numbers standardised alone, a 24th with quantile bins; the rest is for the
    /// network and the program. (`predict` and `eval` encode a whole chunk; training
    /// encodes a few thousand rows at a time into the window, so there the chunks take
    /// less.) Below 16 MiB (less than the program itself takes) the smallest shares are
    /// kept: chunks of 64 KiB, and 4 MiB of rows.
    pub fn within(limit: u64, encoded: u64) -> StreamBudget {
        let bytes = usize::try_from(limit).unwrap_or(usize::MAX);
        let encoded = usize::try_from(encoded).unwrap_or(usize::MAX).max(1);
        StreamBudget {
            limit,
            chunk_bytes: (bytes / (4 + 4 * encoded)).clamp(64 << 10, 256 << 20),
            rows_bytes: (bytes / 4).max(4 << 20),
        }
    }
}

/// Refuses a streamed run of the file `scan` describes whose shuffle window and held rows
/// (`held` of them in this process), encoded, would not fit in `budget`'s share for rows,
/// rather than holding fewer rows and so training another network than the settings say.
pub fn check_stream_memory(
    config: &TrainConfig,
    budget: StreamBudget,
    scan: &Scan,
    held: usize,
) -> Result<()> {
    let inputs = scan.encoding.input_width();
    let row_bytes = stream::window::encoded_row_bytes(inputs, scan.task);
    let window = config.shuffle_window.min(scan.train_rows);
    let held = held.min(if config.val_split > 0.0 {
        scan.validation_rows
    } else {
        scan.train_rows
    });
    let need = (window + held).saturating_mul(row_bytes);
    if need <= budget.rows_bytes {
        return Ok(());
    }
    // What would fit: both cut in proportion, or a limit with a quarter that holds them.
    let fit = budget.rows_bytes / row_bytes;
    let scaled = |n: usize| (n as u128 * fit as u128 / (window + held) as u128).max(1);
    let need_limit = (need as u64).saturating_mul(4).div_ceil(1 << 20);
    Err(Error::config(
        Setting::MemoryLimit,
        limit_text(budget.limit),
        format!(
            "a streamed run keeps the shuffle window of {window} training rows and {held} \
             rows to judge every epoch on in memory, {inputs} inputs each: {} encoded, more \
             than the {} kept for them (a quarter of the limit, at least 4 MiB)",
            format_size(need as u64),
            format_size(budget.rows_bytes as u64),
        ),
        Hint::text("raise it to ")
            .setting(Setting::MemoryLimit, format!("{need_limit}M"))
            .then(", or hold fewer rows: ")
            .setting(Setting::ShuffleWindow, scaled(window))
            .then(" and ")
            .setting(Setting::HeldRows, scaled(held))
            .then(" (either changes the model)"),
    ))
}

/// `bytes` as `--memory-limit` takes it: `256M`, `1G`, or plain bytes.
fn limit_text(bytes: u64) -> String {
    match bytes {
        b if b % (1 << 30) == 0 => format!("{}G", b >> 30),
        b if b % (1 << 20) == 0 => format!("{}M", b >> 20),
        b if b % (1 << 10) == 0 => format!("{}K", b >> 10),
        b => b.to_string(),
    }
}

/// A file trained on by streaming: what [`stream::scan`] found and what was kept in
/// memory to judge the epochs on.
pub struct Streamed {
    /// The first pass's findings.
    pub scan: Scan,
    /// The rows kept to judge every epoch on: validation rows, or a sample of the
    /// training rows without a validation split.
    pub held: Held,
    /// Seconds the first pass took (reading and parsing the whole file, no training).
    pub scan_seconds: f64,
}

/// The first two passes of a streamed run: [`stream::scan`], then the rows to judge every
/// epoch on.
pub fn prepare_streamed(request: &TrainRequest, budget: StreamBudget) -> Result<Streamed> {
    prepare_streamed_shared(request, budget, &crate::train::comm::Solo)
}

/// [`prepare_streamed`] by every process of `comm`, each reading only its share of the file
/// ([`stream::scan_shared`]) and keeping its own rows to judge the epochs on. Collective.
pub fn prepare_streamed_shared(
    request: &TrainRequest,
    budget: StreamBudget,
    comm: &dyn crate::train::comm::Communicator,
) -> Result<Streamed> {
    if request.config.refit {
        return Err(Error::config(
            Setting::Refit,
            "true",
            "a streamed file trains once",
            "leave it out (with this many rows, the validation rows matter little)",
        ));
    }
    check_spread(request, "streamed")?;
    let config = &request.config;
    if config.shuffle_window < config.batch_size {
        return Err(Error::config(
            Setting::ShuffleWindow,
            config.shuffle_window,
            format!(
                "a shuffle window holds at least one batch ({} rows)",
                config.batch_size
            ),
            Hint::text("use ")
                .setting(Setting::ShuffleWindow, config.batch_size)
                .then(" or more, or a smaller ")
                .name(Setting::BatchSize),
        ));
    }
    let start = std::time::Instant::now();
    let scan = stream::scan_shared(request, budget.chunk_bytes, comm)?;
    let scan_seconds = start.elapsed().as_secs_f64();
    check_network_size(&scan.encoding, config)?;
    let validation = config.val_split > 0.0;
    // In a data-parallel run the held rows are shared out: each process holds its part.
    let (rank, size) = (comm.rank(), comm.size());
    let held_here = config.held_rows / size + usize::from(rank < config.held_rows % size);
    // Every process checks the largest part, so that all of them refuse or none.
    check_stream_memory(config, budget, &scan, config.held_rows.div_ceil(size))?;
    let held = stream::held_rows(request, &scan, budget.chunk_bytes, validation, held_here);
    let held = crate::train::comm::settle(comm, held)?;
    Ok(Streamed {
        scan,
        held,
        scan_seconds,
    })
}

/// Trains on a file read in chunks every epoch (see [`stream`]).
pub fn train_streamed(
    request: &TrainRequest,
    streamed: &Streamed,
    budget: StreamBudget,
    hooks: Hooks<'_>,
) -> Result<Trained> {
    let config = &request.config;
    let scan = &streamed.scan;
    let encoding = &scan.encoding;
    let mut network = build_network(
        encoding.input_width(),
        &config.hidden,
        encoding.target.width(),
        config.activation,
        config.seed,
    );
    let mut loss = loss_for(scan.task, config, encoding.target.class_counts())?;
    let mut optimizer = config.build_optimizer()?;
    let comm = hooks.comm;
    let mut epochs = StreamEpochs::new(request, scan, budget.chunk_bytes, hooks.comm);
    let validation = config.val_split > 0.0;
    let monitor = if validation {
        Monitor::Validation(streamed.held.batch())
    } else {
        Monitor::Training(streamed.held.batch())
    };
    let held = streamed.held.batch();
    let mut halves = validation.then(|| halves_of(config, held, comm)).flatten();
    let run = |hooks: Hooks<'_>| {
        let (loss, optimizer) = (loss.as_mut(), optimizer.as_mut());
        fit_epochs(
            &mut network,
            loss,
            optimizer,
            &mut epochs,
            monitor,
            config,
            hooks,
        )
    };
    let outcome = watched(hooks, halves.as_mut(), run)?;
    let source = Source {
        data: &request.data,
        sha256: &scan.sha256,
        task: scan.task,
        encoding,
        rows: scan.rows,
        dropped: scan.dropped,
        filled: scan.filled.iter().map(|(_, n)| n).sum(),
        train_rows: scan.train_rows,
        validation_rows: scan.validation_rows,
    };
    let mut file = model_file(&source, config, &mut network, &mut [], &outcome, None);
    // The held validation rows calibrate, as in memory; in a data-parallel run, every
    // process's share of them.
    if validation {
        let outputs = match halves {
            Some(halves) => halves.into_outputs(&mut network),
            None => calibrate::raw_outputs(&mut network, held.x),
        };
        (file.calibration, file.residuals) =
            calibrate::held_out_over(config, encoding, outputs, held.y, comm);
    }
    Ok(Trained::one(file, network, outcome))
}

/// Whether the file at `path` is, byte for byte, the one `model` was trained on (its
/// SHA-256 is the one the model file records): figures measured on it are in-sample.
/// A file that cannot be read, or a model without the record, is taken as another file.
pub fn trained_on(model: &Model, path: &Path) -> bool {
    let recorded = &model.file.training.data_sha256;
    !recorded.is_empty() && share::file_sha256(path).is_ok_and(|hex| hex == *recorded)
}

/// The true targets of scored rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Truth {
    /// Class indices into the model's labels.
    Classes(Vec<usize>),
    /// Values in the target's units.
    Values(Vec<f64>),
}

/// A CSV file read for a model: its feature columns as the model's inputs, and the target
/// column if present.
pub struct Scored {
    /// What the model predicts, one per row.
    pub predictions: Predictions,
    /// A regression ensemble's networks' values, `[rows, networks]` (what a CV+ interval
    /// is made of); `None` for one network or classes.
    pub members: Option<ndarray::Array2<f64>>,
    /// The true targets (class indices, or values in the file's units), when asked for.
    pub truth: Option<Truth>,
    /// Rows scored.
    pub rows: usize,
    /// Rows left out because their target cell is missing (only when the target is needed).
    pub missing_targets: usize,
    /// Missing cells filled with the model's fill values.
    pub filled: usize,
    /// Unseen categories encoded as all zeros (with [`UnknownCategory::Ignore`]).
    pub unseen: Unseen,
}

/// Runs `model` on every row of the CSV at `path`. Feature columns are matched by name in
/// any order; other columns are ignored. With `need_target`, the target column must be
/// there too (for `eval`), and rows whose target cell is missing are left out (counted in
/// [`Scored::missing_targets`]).
///
/// A missing cell gets the model's fill value (`--missing impute`) or is refused; a category
/// the model has not seen is encoded with none of its column's inputs on, and counted (see
/// [`score_with`] for the strict choice).
pub fn score(model: &mut Model, path: &Path, need_target: bool) -> Result<Scored> {
    score_with(model, path, need_target, UnknownCategory::default())
}

/// [`score`], with a choice for categories the model has not seen.
pub fn score_with(
    model: &mut Model,
    path: &Path,
    need_target: bool,
    unknown: UnknownCategory,
) -> Result<Scored> {
    let bytes = crate::fsutil::read_data(path)?;
    score_bytes_with(model, path, &bytes, need_target, unknown)
}

/// [`score`] within `memory_limit` bytes (default [`crate::pipeline::memory::default_limit`]): a
/// regular file that would need more in memory is read in chunks ([`score_streamed`]).
pub fn score_within(
    model: &mut Model,
    path: &Path,
    need_target: bool,
    unknown: UnknownCategory,
    memory_limit: Option<u64>,
) -> Result<Scored> {
    let limit = memory_limit.unwrap_or_else(crate::pipeline::memory::default_limit);
    let size = std::fs::metadata(path)
        .ok()
        .filter(|m| m.is_file())
        .map(|m| m.len());
    match size {
        Some(size) if scoring_estimate(size, &model.file.encoding) > limit => score_streamed(
            model,
            path,
            need_target,
            unknown,
            StreamBudget::within(limit, scoring_factor(&model.file.encoding)).chunk_bytes,
        ),
        _ => score_with(model, path, need_target, unknown),
    }
}

/// [`score`] for a CSV file too large to hold: read in chunks of about `chunk_bytes`, so
/// memory holds one chunk and the predictions (a few numbers per row), never the file.
/// Errors name the line in the whole file.
pub fn score_streamed(
    model: &mut Model,
    path: &Path,
    need_target: bool,
    unknown: UnknownCategory,
    chunk_bytes: usize,
) -> Result<Scored> {
    let chunks = crate::data::chunks::Chunks::open(path, chunk_bytes)?;
    score_chunks(model, chunks, need_target, unknown)
}

/// [`score_streamed`] for any [`Chunks`](crate::data::chunks::Chunks), standard input too:
/// one chunk in memory at a time, errors located in the whole input.
pub fn score_chunks(
    model: &mut Model,
    mut chunks: crate::data::chunks::Chunks,
    need_target: bool,
    unknown: UnknownCategory,
) -> Result<Scored> {
    let path = chunks.path().to_path_buf();
    let mut all: Option<Scored> = None;
    while let Some(chunk) = chunks.next_chunk()? {
        // As a file read whole: no line longer than the reader's limit.
        crate::fsutil::check_line_lengths(&path, &chunk.bytes).map_err(|e| chunk.locate(e))?;
        let part = score_bytes_with(model, &path, &chunk.bytes, need_target, unknown)
            .map_err(|e| chunk.locate(e))?;
        match all.as_mut() {
            None => all = Some(part),
            Some(all) => all.append(part),
        }
    }
    match all {
        Some(all) => Ok(all),
        // No data rows: what the in-memory path says about the header alone.
        None => score_bytes_with(model, &path, chunks.header(), need_target, unknown),
    }
}

impl Scored {
    /// Adds the rows of `more` after these.
    fn append(&mut self, more: Scored) {
        self.rows += more.rows;
        self.missing_targets += more.missing_targets;
        self.filled += more.filled;
        self.unseen.add(&more.unseen);
        match (&mut self.predictions, more.predictions) {
            (
                Predictions::Classes {
                    classes,
                    probabilities,
                },
                Predictions::Classes {
                    classes: c,
                    probabilities: p,
                },
            ) => {
                classes.extend(c);
                probabilities
                    .append(ndarray::Axis(0), p.view())
                    .expect("one column per class");
            }
            (Predictions::Values(v), Predictions::Values(w)) => v.extend(w),
            _ => unreachable!("one model predicts one kind"),
        }
        if let (Some(members), Some(more)) = (&mut self.members, more.members) {
            members
                .append(ndarray::Axis(0), more.view())
                .expect("one column per network");
        }
        match (&mut self.truth, more.truth) {
            (Some(Truth::Classes(a)), Some(Truth::Classes(b))) => a.extend(b),
            (Some(Truth::Values(a)), Some(Truth::Values(b))) => a.extend(b),
            _ => {}
        }
    }
}

/// [`score`] for a CSV file already in memory (`path` names it in messages).
pub fn score_bytes(
    model: &mut Model,
    path: &Path,
    bytes: &[u8],
    need_target: bool,
) -> Result<Scored> {
    score_bytes_with(model, path, bytes, need_target, UnknownCategory::default())
}

/// [`score_with`] for a CSV file already in memory (`path` names it in messages).
pub fn score_bytes_with(
    model: &mut Model,
    path: &Path,
    bytes: &[u8],
    need_target: bool,
    unknown: UnknownCategory,
) -> Result<Scored> {
    let encoding = &model.file.encoding;
    let mut categorical = encoding.text_names();
    // Class labels written like numbers but not as this reader would print them ("01")
    // must be read as text to match.
    if let crate::tabular::encoding::TargetEncoding::Classes { labels, .. } = &encoding.target {
        let canonical = |l: &String| {
            l.parse::<f32>()
                .is_ok_and(|v| crate::tabular::encoding::number_label(v) == *l)
        };
        if !labels.iter().all(canonical) {
            categorical.push(encoding.target.name().to_string());
        }
    }
    let table = Table::from_bytes(path, bytes, &ReadOptions { categorical })?;
    encoding.check_columns(&table)?;
    let has_target = table.column(encoding.target.name()).is_some();
    if need_target && !has_target {
        let mut location = table.location(None, None);
        location.line = Some(1);
        return Err(Error::data(
            location,
            format!(
                "the target column '{}' is not in the header, so there is nothing to compare with",
                encoding.target.name()
            ),
            "eval needs the true values; use `mlp predict` for files without them",
        ));
    }
    // Rows without a target are left out of an evaluation, as training leaves them out.
    let rows: Vec<usize> = if need_target {
        encoding.rows_with_target(&table)?
    } else {
        (0..table.rows()).collect()
    };
    let encoded = encoding.encode(&table, &rows, unknown)?;
    let inputs = encoded.inputs;
    let truth = if need_target {
        Some(match encoding.targets(&table, &rows)? {
            Targets::Classes(c) => Truth::Classes(c),
            Targets::Values(y) => Truth::Values(encoding.values_from_outputs(y.view())),
        })
    } else {
        None
    };
    let (predictions, members) = model.predict_encoded_with_members(inputs.view(), true);
    // Finite weights and inputs can still overflow on the way through the network.
    let bad_row = match &predictions {
        Predictions::Classes { probabilities, .. } => probabilities
            .rows()
            .into_iter()
            .position(|r| r.iter().any(|p| !p.is_finite())),
        Predictions::Values(values) => values
            .iter()
            .position(|v| !(v.is_finite() && v.abs() <= f32::MAX as f64)),
    };
    if let Some(row) = bad_row {
        return Err(Error::data(
            table.location(Some(rows[row]), None),
            "the model's output for this row is not a finite number",
            "the row's values are probably far outside those the model was trained on; \
             check them and their units",
        ));
    }
    Ok(Scored {
        predictions,
        members,
        truth,
        rows: rows.len(),
        missing_targets: table.rows() - rows.len(),
        filled: encoded.filled,
        unseen: encoded.unseen,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_chunks_shrink_with_the_encoding() {
        let limit = 256u64 << 20;
        // Numbers standardised alone: an eighth of the limit per chunk.
        assert_eq!(StreamBudget::within(limit, 1).chunk_bytes, 32 << 20);
        // Quantile bins (inputs about 5 times the text): a 24th.
        assert_eq!(StreamBudget::within(limit, 5).chunk_bytes, (256 << 20) / 24);
        // The encoded rows keep a quarter either way; tiny limits keep the smallest chunk.
        assert_eq!(StreamBudget::within(limit, 5).rows_bytes, 64 << 20);
        assert_eq!(StreamBudget::within(1 << 20, 5).rows_bytes, 4 << 20);
        assert_eq!(StreamBudget::within(1 << 20, 5).chunk_bytes, 64 << 10);
    }
}
