//! Training as one library call: what `mlp train` does between parsing its flags and
//! printing.
//!
//! [`run`] decides how to read the data ([`Mode`]: into memory, streamed in chunks every
//! epoch, or shared over the processes of an MPI run) by the rules the command line uses,
//! trains with the training-health monitor and, if asked for, the decision-boundary
//! recorder watching, stops early when the interrupt flag is raised (keeping the best
//! epoch), and writes the model and its pictures. It tells each step as it happens to
//! [`RunOptions::on_event`] (what `mlp train` prints) and returns the whole of it as a
//! [`RunReport`].
//!
//! ```no_run
//! use mlp::train::comm::Solo;
//! use mlp::pipeline::TrainRequest;
//! use mlp::run::{Mode, Outputs, RunOptions, run};
//!
//! let mut request = TrainRequest::new("data/iris.csv");
//! request.target = Some("species".into());
//! let options = RunOptions {
//!     outputs: Outputs {
//!         model: Some("iris.json".into()),
//!         loss_curve: Some("iris.png".into()),
//!         ..Outputs::default()
//!     },
//!     ..RunOptions::default()
//! };
//! let report = run(request, options, &Solo)?;
//! assert_eq!(report.mode, Mode::Memory);
//! # Ok::<(), mlp::Error>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::error::{Error, Hint, Result, Setting};
use crate::inspect::boundary::{BoundaryPlot, BoundaryRecorder, Plane, RESOLUTION, model_surface};
use crate::pipeline::memory::{default_limit, format_size, training_estimate, training_factor};
use crate::pipeline::share::prepare_shared;
use crate::pipeline::stream::Scan;
use crate::pipeline::{
    Prepared, StreamBudget, Streamed, TrainRequest, Trained, prepare, prepare_streamed_shared,
    train_streamed, train_with,
};
use crate::tabular::encoding::{Encoding, TargetEncoding, Task};
use crate::tabular::model::Model;
use crate::train::comm::{Communicator, settle};
use crate::train::health::{HealthMonitor, LEARNED, activation_health, diagnose};
use crate::train::plot::LossCurve;
use crate::train::{Batch, EpochReport, FitOutcome, Hooks, Observer, StopReason, TrainConfig};

/// How a run reads its data, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Read whole into memory by one process.
    Memory,
    /// Each of `processes` processes (an MPI run) reads its share of the file into memory.
    Shared {
        /// How many processes train together.
        processes: usize,
    },
    /// Read in chunks every epoch (by each of `processes` processes its share, under MPI).
    Streamed {
        /// Why: asked for, or the file would not fit in the memory limit.
        reason: String,
        /// How many processes train together (1 outside MPI).
        processes: usize,
    },
}

/// The files a run writes; each is optional.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// The model, written atomically.
    pub model: Option<PathBuf>,
    /// The loss-curve PNG.
    pub loss_curve: Option<PathBuf>,
    /// The training-health PNG: each layer's gradient norm over the epochs.
    pub health: Option<PathBuf>,
    /// The decision-boundary PNG (a model of exactly two numeric input columns).
    pub boundary: Option<PathBuf>,
    /// The decision boundary over the epochs, as a GIF (two numeric input columns).
    pub boundary_gif: Option<PathBuf>,
}

/// How to run: the memory limit, the outputs, and the ways to stop and watch the run.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Most memory to use (default: [`default_limit`]); a file whose training would need
    /// more ([`training_estimate`]) is streamed.
    pub memory_limit: Option<u64>,
    /// Stream the file even if it fits in memory.
    pub stream: bool,
    /// Whether the request's `config.folds` was chosen by the user. If not, it is a
    /// default that holds in memory in one process only: streamed or shared runs train
    /// one network (`folds` 0). A chosen `folds` of 2 or more there is refused.
    pub folds_given: bool,
    /// Whether the request's `config.label_smoothing` was chosen by the user. If so, and
    /// not 0, a regression target (known once the data is read) refuses it, as it
    /// cannot take effect there; the default is left unused.
    pub label_smoothing_given: bool,
    /// What to write.
    pub outputs: Outputs,
    /// Checked after every batch: when raised, training stops, keeps the best epoch's
    /// weights and writes them ([`StopReason::Interrupted`]).
    pub interrupt: Option<&'a AtomicBool>,
    /// Told each step as it happens, on every process.
    pub on_event: Option<&'a mut dyn FnMut(&Event<'_>)>,
}

/// A step of a run, in the order they come.
pub enum Event<'a> {
    /// How the data is to be read, decided before reading it.
    Mode(&'a Mode),
    /// The data, read (or, streaming, scanned once).
    Data(&'a DataSummary),
    /// Streaming: how the first pass went and how the epochs will read the file.
    Scanned(&'a ScanFigures),
    /// Training starts.
    TrainingStarts {
        /// Most epochs.
        epochs: usize,
        /// The task.
        task: Task,
        /// How many processes train together.
        processes: usize,
        /// Rows per mini-batch, over every process.
        batch_size: usize,
    },
    /// An epoch ended.
    Epoch(&'a EpochReport),
    /// Training ended, whether or not it succeeded.
    TrainingEnds,
    /// Streaming: how long the epochs took.
    StreamedEpochs(&'a EpochFigures),
    /// Training succeeded: `trained.model.file.health` holds the health report.
    Trained {
        /// The model and how training went.
        trained: &'a Trained,
        /// The data it trained on.
        data: &'a DataSummary,
    },
    /// A file was written (by the leader only).
    Wrote(&'a Written),
}

/// What a run found in its data.
#[derive(Debug, Clone)]
pub struct DataSummary {
    /// Rows kept.
    pub rows: usize,
    /// Rows dropped for missing values (or, imputing, for a missing target).
    pub dropped: usize,
    /// Missing feature cells filled in: (column, cells), in file order.
    pub filled: Vec<(String, usize)>,
    /// The delimiter found.
    pub delimiter: u8,
    /// Feature and target encoding.
    pub encoding: Encoding,
    /// The task.
    pub task: Task,
    /// Training rows (over every process).
    pub train_rows: usize,
    /// Validation rows (over every process).
    pub validation_rows: usize,
    /// Folds of a k-fold ensemble, each network validating on one; 0 or 1: one network.
    pub folds: usize,
    /// Numeric feature columns that look like row identifiers (see
    /// [`crate::pipeline::prepare::identifier_columns`]; found in memory only).
    pub identifiers: Vec<String>,
    /// Numeric columns whose values f32 rounded together (see
    /// [`crate::pipeline::prepare::coarse_columns`]; found in memory only).
    pub coarse: Vec<crate::pipeline::prepare::Coarse>,
}

impl DataSummary {
    fn of_prepared(p: &Prepared, folds: usize) -> Self {
        Self {
            rows: p.rows,
            dropped: p.dropped,
            filled: p.filled.clone(),
            delimiter: p.delimiter,
            encoding: p.encoding.clone(),
            task: p.task,
            train_rows: p.train_rows,
            validation_rows: p.validation_rows,
            folds,
            identifiers: p.identifiers.clone(),
            coarse: p.coarse.clone(),
        }
    }

    fn of_scan(s: &Scan, folds: usize) -> Self {
        Self {
            rows: s.rows,
            dropped: s.dropped,
            filled: s.filled.clone(),
            delimiter: s.delimiter,
            encoding: s.encoding.clone(),
            task: s.task,
            train_rows: s.train_rows,
            validation_rows: s.validation_rows,
            folds,
            identifiers: Vec::new(),
            coarse: Vec::new(),
        }
    }
}

/// Streaming: the first pass over the file, and how every epoch reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanFigures {
    /// Seconds the first pass took (reading and parsing alone).
    pub seconds: f64,
    /// Rows read per second in the first pass.
    pub rows_per_second: f64,
    /// Bytes of the file read at a time.
    pub chunk_bytes: usize,
    /// Training rows shuffled together.
    pub window: usize,
    /// Rows kept in memory to judge every epoch on, over every process.
    pub held_rows: usize,
    /// Rows they were taken from (the first `held_rows` of them).
    pub held_of: usize,
    /// Whether the held rows are validation rows (else training rows).
    pub held_validation: bool,
}

/// Streaming: the epochs' speed.
#[derive(Debug, Clone, PartialEq)]
pub struct EpochFigures {
    /// Epochs run.
    pub epochs: usize,
    /// Seconds they took (reading, training and judging).
    pub seconds: f64,
    /// Training rows per second.
    pub rows_per_second: f64,
}

/// A file a run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Which output.
    pub output: Output,
    /// Where.
    pub path: PathBuf,
}

/// The kinds of file a run writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// The model.
    Model,
    /// The loss-curve picture.
    LossCurve,
    /// The training-health picture.
    Health,
    /// The decision-boundary picture.
    Boundary,
    /// The decision-boundary animation, of this many frames.
    BoundaryGif {
        /// Frames in the animation.
        frames: usize,
    },
}

/// Everything a run did.
pub struct RunReport {
    /// How the data was read, and why.
    pub mode: Mode,
    /// The request as trained: `config.folds` after the defaults of the mode.
    pub request: TrainRequest,
    /// What was found in the data.
    pub data: DataSummary,
    /// Streaming: the first pass's figures.
    pub scan: Option<ScanFigures>,
    /// Streaming: the epochs' speed.
    pub streamed_epochs: Option<EpochFigures>,
    /// The model (its health report in `model.file.health`), the loss curves, why
    /// training stopped, and each fold's best epoch.
    pub trained: Trained,
    /// The files written, in order (none on processes other than the leader).
    pub written: Vec<Written>,
}

/// Trains as `request` says, reading the data in the [`Mode`] the rules below choose, and
/// writes `options.outputs`. Collective: with `comm` of several processes, every process
/// calls it; each reads and trains on its share, and the leader (rank 0) writes.
///
/// The mode: streamed if `options.stream`, or if reading the file into memory would take
/// more than the memory limit ([`why_stream`]); otherwise in memory, shared over the
/// processes of `comm` when there are several. A `config.folds` not given by the user
/// ([`RunOptions::folds_given`]) becomes 0 when streamed or shared.
///
/// An error on any process stops every process at the same point: the one that failed
/// returns its error, the others [`Error::Elsewhere`].
pub fn run(
    request: TrainRequest,
    mut options: RunOptions<'_>,
    comm: &dyn Communicator,
) -> Result<RunReport> {
    let mut quiet = |_: &Event<'_>| {};
    let emit: &mut dyn FnMut(&Event<'_>) = match options.on_event.take() {
        Some(on_event) => on_event,
        None => &mut quiet,
    };
    let limit = options.memory_limit.unwrap_or_else(default_limit);
    let (request, mode) = choose_mode(request, &options, comm, limit)?;
    emit(&Event::Mode(&mode));
    let mut cx = Context {
        request: &request,
        outputs: &options.outputs,
        interrupt: options.interrupt,
        label_smoothing_given: options.label_smoothing_given,
        comm,
        emit,
    };
    let (data, scan, finished) = match &mode {
        Mode::Streamed { .. } => streamed(&mut cx, limit)?,
        Mode::Memory | Mode::Shared { .. } => in_memory(&mut cx)?,
    };
    Ok(RunReport {
        mode,
        request,
        data,
        scan,
        streamed_epochs: finished.streamed_epochs,
        trained: finished.trained,
        written: finished.written,
    })
}

/// What every step of a run needs.
struct Context<'c> {
    request: &'c TrainRequest,
    outputs: &'c Outputs,
    interrupt: Option<&'c AtomicBool>,
    label_smoothing_given: bool,
    comm: &'c dyn Communicator,
    emit: &'c mut dyn FnMut(&Event<'_>),
}

/// The mode of a run, and the request with the folds that mode defaults to.
fn choose_mode(
    mut request: TrainRequest,
    options: &RunOptions<'_>,
    comm: &dyn Communicator,
    limit: u64,
) -> Result<(TrainRequest, Mode)> {
    // k-fold ensembles train in memory in one process; elsewhere the default is one network
    // (and folds given there are refused, by the pipeline, naming the reason).
    let default_folds = !options.folds_given;
    let processes = comm.size();
    if default_folds && processes > 1 {
        request.config.folds = 0;
    }
    let streaming = settle(comm, why_stream(&request, options.stream, limit))?;
    if default_folds && streaming.is_some() {
        request.config.folds = 0;
    }
    let mode = match streaming {
        Some(reason) => Mode::Streamed { reason, processes },
        None if processes > 1 => Mode::Shared { processes },
        None => Mode::Memory,
    };
    Ok((request, mode))
}

/// Why the file `data` is to be streamed rather than read into memory, or `None` to read
/// it: `stream` asks for it, or training on it in memory with `config` would take more
/// than `limit` bytes ([`training_estimate`]). Pipes and devices are read into memory;
/// asking to stream one is refused.
pub fn why_stream(request: &TrainRequest, stream: bool, limit: u64) -> Result<Option<String>> {
    let data = &request.data;
    let meta = std::fs::metadata(data);
    let regular = meta.as_ref().is_ok_and(|m| m.is_file());
    if stream {
        if meta.is_ok() && !regular {
            return Err(Error::config(
                Setting::Stream,
                data.display(),
                "streaming reads the file once per epoch, which a pipe or device cannot give",
                "save the data to a file first",
            ));
        }
        return Ok(Some("asked for with --stream".into()));
    }
    let size = match meta {
        Ok(m) if regular => m.len(),
        // Pipes and devices are read into memory (the reader bounds them); a missing
        // file is reported by the reader.
        _ => return Ok(None),
    };
    let need = training_estimate(size, request);
    Ok((need > limit).then(|| {
        format!(
            "the file is {}, and reading it into memory would take about {}, more than the \
             memory limit of {} (--memory-limit)",
            format_size(size),
            format_size(need),
            format_size(limit)
        )
    }))
}

/// Refuses a label smoothing the user gave for a target found to be regression, where it
/// cannot take effect.
fn refuse_smoothing_for_regression(cx: &Context<'_>, data: &DataSummary) -> Result<()> {
    let smoothing = cx.request.config.label_smoothing;
    if !cx.label_smoothing_given || smoothing == 0.0 || data.task != Task::Regression {
        return Ok(());
    }
    let name = match &data.encoding.target {
        TargetEncoding::Classes { name, .. } | TargetEncoding::Values { name, .. } => name,
    };
    Err(Error::config(
        Setting::LabelSmoothing,
        smoothing,
        format!("label smoothing applies to classification, and '{name}' is a regression target"),
        Hint::text("leave out ")
            .name(Setting::LabelSmoothing)
            .then(", or use ")
            .setting(Setting::Task, "classification")
            .then(format!(" if '{name}' holds classes")),
    ))
}

/// How a run ended, after its outputs were written.
struct Finished {
    trained: Trained,
    written: Vec<Written>,
    streamed_epochs: Option<EpochFigures>,
}

/// Reads the file into memory (each process its share), trains and writes.
fn in_memory(cx: &mut Context<'_>) -> Result<(DataSummary, Option<ScanFigures>, Finished)> {
    let (request, comm) = (cx.request, cx.comm);
    let prepared = if comm.size() > 1 {
        prepare_shared(request, comm)
    } else {
        prepare(request)
    };
    let prepared = settle(comm, prepared)?;
    let data = DataSummary::of_prepared(&prepared, request.config.folds);
    (cx.emit)(&Event::Data(&data));
    refuse_smoothing_for_regression(cx, &data)?;
    // The decision boundary and the activation health are drawn from the training rows.
    let rows = Batch {
        x: prepared.x_train.view(),
        y: &prepared.y_train,
    };
    let source = Source::Memory(&prepared);
    let finished = train_and_write(cx, source, &data, rows, &prepared.filled_rows)?;
    Ok((data, None, finished))
}

/// Scans the file (each process its share), trains reading it every epoch, and writes.
fn streamed(
    cx: &mut Context<'_>,
    limit: u64,
) -> Result<(DataSummary, Option<ScanFigures>, Finished)> {
    let (request, comm) = (cx.request, cx.comm);
    let config = &request.config;
    let budget = StreamBudget::within(limit, training_factor(request));
    let streamed = settle(comm, prepare_streamed_shared(request, budget, comm))?;
    let scan = &streamed.scan;
    let data = DataSummary::of_scan(scan, config.folds);
    (cx.emit)(&Event::Data(&data));
    refuse_smoothing_for_regression(cx, &data)?;
    let held = &streamed.held;
    // In a data-parallel run each process holds its own share of them.
    let held_rows: usize = comm.all_counts(held.x.nrows()).iter().sum();
    let rows_read = scan.rows + scan.dropped;
    let figures = ScanFigures {
        seconds: streamed.scan_seconds,
        rows_per_second: rows_read as f64 / streamed.scan_seconds.max(1e-9),
        chunk_bytes: budget.chunk_bytes,
        window: config.shuffle_window.min(scan.train_rows),
        held_rows,
        held_of: held.of,
        held_validation: config.val_split > 0.0,
    };
    (cx.emit)(&Event::Scanned(&figures));
    // The decision boundary and the activation health are drawn from the held rows.
    let source = Source::Streamed(&streamed, budget);
    let finished = train_and_write(cx, source, &data, held.batch(), &[])?;
    Ok((data, Some(figures), finished))
}

/// Where the data of a run is: read into memory, or to be streamed.
#[derive(Clone, Copy)]
enum Source<'a> {
    Memory(&'a Prepared),
    Streamed(&'a Streamed, StreamBudget),
}

/// What the decision-boundary pictures are drawn from.
struct Pictures<'p, 'r> {
    /// The plane, when a boundary picture is asked for.
    plane: Option<&'p Plane>,
    /// The frames recorded during training, for the animation.
    recorder: Option<BoundaryRecorder<'p>>,
    /// The points drawn on top.
    rows: Batch<'r>,
    /// Which of them had a cell filled in.
    filled: &'r [bool],
}

/// Trains on `source` with the health monitor (and the boundary recorder) watching, adds
/// the health report to the model, and (the leader) writes the outputs.
fn train_and_write<'r>(
    cx: &mut Context<'_>,
    source: Source<'_>,
    data: &DataSummary,
    rows: Batch<'r>,
    filled: &'r [bool],
) -> Result<Finished> {
    let (comm, config) = (cx.comm, &cx.request.config);
    let plane = boundary_plane(cx.outputs, data, rows, comm)?;
    let mut monitor = HealthMonitor::new();
    let mut recorder = match (&plane, &cx.outputs.boundary_gif) {
        (Some(plane), Some(_)) => Some(BoundaryRecorder::new(
            plane,
            &data.encoding.target,
            config.epochs,
            60,
        )),
        _ => None,
    };
    let mut observers: Vec<&mut dyn Observer> = vec![&mut monitor];
    if let Some(r) = recorder.as_mut() {
        observers.push(r);
    }
    let trained = train_source(cx, source, data, &mut observers);
    drop(observers);
    let (mut trained, streamed_epochs) = settle(comm, trained)?;
    let diverged = matches!(trained.outcome.stop, StopReason::Diverged { .. });
    let activations = activation_health(&mut trained.model.network, rows.x);
    let outcome = &trained.outcome;
    let learned = outcome.best_loss < outcome.initial_loss * LEARNED;
    let health = diagnose(
        monitor.linear().to_vec(),
        activations,
        config,
        diverged,
        learned,
    );
    trained.model.file.health = Some(health);
    (cx.emit)(&Event::Trained {
        trained: &trained,
        data,
    });
    let pictures = Pictures {
        plane: plane.as_ref(),
        recorder,
        rows,
        filled,
    };
    // The leader writes; the others wait to hear whether it could.
    let written = if comm.is_leader() {
        write_outputs(cx, data, &mut trained, pictures)
    } else {
        Ok(Vec::new())
    };
    let written = settle(comm, written)?;
    Ok(Finished {
        trained,
        written,
        streamed_epochs,
    })
}

/// The plane of the decision-boundary pictures, if any is asked for: refused before
/// training, not after, on a model that is not two-dimensional.
fn boundary_plane(
    outputs: &Outputs,
    data: &DataSummary,
    rows: Batch<'_>,
    comm: &dyn Communicator,
) -> Result<Option<Plane>> {
    if outputs.boundary.is_none() && outputs.boundary_gif.is_none() {
        return Ok(None);
    }
    let setting = if outputs.boundary.is_some() {
        Setting::Boundary
    } else {
        Setting::BoundaryGif
    };
    let plane = Plane::for_model(&data.encoding, rows.x, setting);
    Ok(Some(settle(comm, plane)?))
}

/// Trains on `source` with `observer` watching, telling the epochs as they end.
fn train_source(
    cx: &mut Context<'_>,
    source: Source<'_>,
    data: &DataSummary,
    observer: &mut dyn Observer,
) -> Result<(Trained, Option<EpochFigures>)> {
    let comm = cx.comm;
    // The batch and the learning rate as the rows each network trains on make them.
    let config = cx
        .request
        .config
        .for_rows(cx.request.config.rows_per_network(data.train_rows));
    let request = &TrainRequest {
        config,
        ..cx.request.clone()
    };
    let config = &request.config;
    (cx.emit)(&Event::TrainingStarts {
        epochs: config.epochs,
        task: data.task,
        processes: comm.size(),
        batch_size: config.batch_size,
    });
    let start = Instant::now();
    let mut on_epoch = |r: &EpochReport| (cx.emit)(&Event::Epoch(r));
    let hooks = Hooks {
        interrupt: cx.interrupt,
        on_epoch: Some(&mut on_epoch),
        observer: Some(observer),
        comm: (comm.size() > 1).then_some(comm),
    };
    let trained = match source {
        Source::Memory(prepared) => train_with(prepared, config, hooks),
        Source::Streamed(streamed, budget) => train_streamed(request, streamed, budget, hooks),
    };
    (cx.emit)(&Event::TrainingEnds);
    let trained = trained?;
    let figures = match source {
        Source::Memory(_) => None,
        Source::Streamed(..) => {
            let epochs = trained.outcome.history.train_loss.len();
            let seconds = start.elapsed().as_secs_f64();
            let figures = EpochFigures {
                epochs,
                seconds,
                rows_per_second: (epochs * data.train_rows) as f64 / seconds.max(1e-9),
            };
            (cx.emit)(&Event::StreamedEpochs(&figures));
            Some(figures)
        }
    };
    Ok((trained, figures))
}

/// Writes the outputs asked for, telling each as it is written.
fn write_outputs(
    cx: &mut Context<'_>,
    data: &DataSummary,
    trained: &mut Trained,
    pictures: Pictures<'_, '_>,
) -> Result<Vec<Written>> {
    let (outputs, config) = (cx.outputs, &cx.request.config);
    let Trained { model, outcome, .. } = trained;
    let mut written = Vec::new();
    let mut wrote = |output: Output, path: &Path| {
        let w = Written {
            output,
            path: path.to_path_buf(),
        };
        (cx.emit)(&Event::Wrote(&w));
        written.push(w);
    };
    if let Some(path) = &outputs.model {
        model.save(path)?;
        wrote(Output::Model, path);
    }
    let title = title(data, model);
    if let Some(path) = &outputs.loss_curve {
        curve(data, config, title.clone(), outcome).write_png(path)?;
        wrote(Output::LossCurve, path);
    }
    if let (Some(path), Some(health)) = (&outputs.health, &model.file.health) {
        health.write_png(&format!("{title}: gradient norm per layer"), path)?;
        wrote(Output::Health, path);
    }
    if let Some(plane) = pictures.plane {
        let points = BoundaryPlot {
            plane,
            target: &data.encoding.target,
            points: pictures.rows.x,
            targets: pictures.rows.y,
            title,
            filled: pictures.filled,
        };
        if let Some(path) = &outputs.boundary {
            let s = model_surface(model, plane, RESOLUTION);
            points.write_png(&s, path)?;
            wrote(Output::Boundary, path);
        }
        if let (Some(path), Some(mut recorder)) = (&outputs.boundary_gif, pictures.recorder) {
            let saved = model_surface(model, plane, RESOLUTION / 2);
            let networks = 1 + model.file.ensemble.len();
            let best = outcome.best_epoch;
            recorder.end_on_saved(best, saved, saved_title(best, networks));
            points.write_gif(&recorder.frames, path)?;
            let frames = recorder.frames.len();
            wrote(Output::BoundaryGif { frames }, path);
        }
    }
    Ok(written)
}

/// The title of the boundary animation's last frame, the saved model.
fn saved_title(best_epoch: usize, networks: usize) -> String {
    if networks > 1 {
        format!("saved: epoch {best_epoch} of network 1, average of {networks} networks")
    } else {
        format!("saved: epoch {best_epoch}")
    }
}

/// The title of a training run's pictures.
fn title(data: &DataSummary, model: &Model) -> String {
    format!(
        "{}: {}",
        model.file.training.data_file,
        match &data.encoding.target {
            TargetEncoding::Classes { name, .. } => format!("classifying '{name}'"),
            TargetEncoding::Values { name, .. } => format!("predicting '{name}'"),
        }
    )
}

/// The loss-curve picture of a training run.
fn curve<'a>(
    data: &DataSummary,
    config: &TrainConfig,
    title: String,
    outcome: &'a FitOutcome,
) -> LossCurve<'a> {
    let h = &outcome.history;
    let mut curve = LossCurve::new(title, &h.train_loss).best_epoch(outcome.best_epoch);
    if data.task == Task::Classification && config.label_smoothing > 0.0 {
        curve = curve.train_label("training loss (smoothed labels)");
    }
    if !h.val_loss.is_empty() {
        curve = curve.validation(&h.val_loss);
        if data.task == Task::Classification {
            curve = curve.metric("validation accuracy", &h.val_metric);
        }
    }
    curve
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::comm::Solo;

    fn iris() -> TrainRequest {
        let mut request = TrainRequest::new(concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv"));
        request.target = Some("species".into());
        request
    }

    /// A short name for each event, to check their order.
    fn name(event: &Event<'_>) -> &'static str {
        match event {
            Event::Mode(_) => "mode",
            Event::Data(_) => "data",
            Event::Scanned(_) => "scanned",
            Event::TrainingStarts { .. } => "starts",
            Event::Epoch(_) => "epoch",
            Event::TrainingEnds => "ends",
            Event::StreamedEpochs(_) => "streamed epochs",
            Event::Trained { .. } => "trained",
            Event::Wrote(_) => "wrote",
        }
    }

    #[test]
    fn trains_iris_in_memory_and_writes_the_model_and_its_pictures() {
        let dir = tempfile::tempdir().unwrap();
        let outputs = Outputs {
            model: Some(dir.path().join("iris.json")),
            loss_curve: Some(dir.path().join("iris.png")),
            health: Some(dir.path().join("health.png")),
            ..Outputs::default()
        };
        let mut events = Vec::new();
        let mut on_event = |e: &Event<'_>| events.push(name(e));
        let options = RunOptions {
            outputs: outputs.clone(),
            on_event: Some(&mut on_event),
            ..RunOptions::default()
        };
        let report = run(iris(), options, &Solo).unwrap();

        assert_eq!(report.mode, Mode::Memory);
        assert!(report.scan.is_none() && report.streamed_epochs.is_none());
        // The default of 3 folds holds in memory: an ensemble of 3.
        assert_eq!(report.request.config.folds, 3);
        assert_eq!(report.data.folds, 3);
        assert_eq!(report.trained.fold_epochs.len(), 3);
        assert_eq!(report.data.rows, 150);
        let written: Vec<Output> = report.written.iter().map(|w| w.output).collect();
        assert_eq!(written, [Output::Model, Output::LossCurve, Output::Health]);
        for path in [&outputs.model, &outputs.loss_curve, &outputs.health] {
            assert!(path.as_ref().unwrap().is_file(), "{path:?}");
        }
        let model = Model::load(outputs.model.as_ref().unwrap()).unwrap();
        let accuracy = model.file.metrics.validation_accuracy.unwrap();
        assert!(accuracy > 0.9, "validation accuracy {accuracy}");
        assert!(model.file.health.is_some());

        let epochs = report.trained.outcome.history.train_loss.len();
        let mut expected = vec!["mode", "data", "starts"];
        // Each network of the ensemble tells its epochs.
        assert!(events.iter().filter(|&&e| e == "epoch").count() >= epochs);
        events.retain(|&e| e != "epoch");
        expected.extend(["ends", "trained", "wrote", "wrote", "wrote"]);
        assert_eq!(events, expected);
    }

    #[test]
    fn streams_when_asked_and_says_why() {
        let mut request = iris();
        request.config.epochs = 5;
        let options = RunOptions {
            stream: true,
            ..RunOptions::default()
        };
        let report = run(request, options, &Solo).unwrap();
        assert_eq!(
            report.mode,
            Mode::Streamed {
                reason: "asked for with --stream".into(),
                processes: 1
            }
        );
        // The default folds give way to one network when streaming.
        assert_eq!(report.request.config.folds, 0);
        // Every epoch is judged on all 38 validation rows (the streamed split is by line).
        let scan = report.scan.unwrap();
        assert_eq!(report.data.validation_rows, 38);
        assert_eq!(
            (scan.held_rows, scan.held_of, scan.held_validation),
            (38, 38, true)
        );
        assert_eq!(report.streamed_epochs.unwrap().epochs, 5);
        assert!(report.written.is_empty());
    }

    #[test]
    fn streams_a_file_over_the_memory_limit_and_refuses_folds_given_there() {
        let mut request = iris();
        request.config.epochs = 2;
        let options = RunOptions {
            memory_limit: Some(1024),
            ..RunOptions::default()
        };
        let report = run(request.clone(), options, &Solo).unwrap();
        let Mode::Streamed { reason, .. } = report.mode else {
            panic!("{:?}", report.mode);
        };
        assert!(
            reason.contains("more than the memory limit of 1 KiB"),
            "{reason}"
        );

        let options = RunOptions {
            stream: true,
            folds_given: true,
            ..RunOptions::default()
        };
        let e = run(request, options, &Solo).err().unwrap();
        assert!(matches!(e, Error::Config { .. }), "{e}");
    }

    #[test]
    fn a_raised_interrupt_before_the_first_epoch_keeps_nothing() {
        let interrupt = AtomicBool::new(true);
        let options = RunOptions {
            interrupt: Some(&interrupt),
            ..RunOptions::default()
        };
        let e = run(iris(), options, &Solo).err().unwrap();
        assert!(matches!(e, Error::Interrupted(_)), "{e}");
    }
}
