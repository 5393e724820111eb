//! `mlp train`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mlp::Error;
use mlp::error::{Hint, Setting, escape_controls};
use mlp::fsutil::{check_output_path, is_device_or_pipe, same_file};
use mlp::pipeline::memory::{format_size, parse_limit};
use mlp::pipeline::{MissingPolicy, TrainRequest, Trained};
use mlp::run::{DataSummary, Event, Mode, Output, Outputs, RunOptions, ScanFigures};
use mlp::tabular::encoding::{Encoding, Feature, Scaling, TargetEncoding, Task};
use mlp::train::comm::{Communicator, Solo};
use mlp::train::{
    Activation, CalibrationMethod, ClassWeight, DEFAULT_BATCH, DEFAULT_FOLDS, DEFAULT_HELD_ROWS,
    DEFAULT_SHUFFLE_WINDOW, IntervalMethod, Metric, OptimizerKind, StopReason, TrainConfig,
    format_loss,
};

use super::out::{self, errln, outln};
use super::{EXIT_INTERRUPTED, EXIT_USER, TaskArg, exit_for, plot_path_for};

const EXAMPLE: &str = "Examples:
  mlp train data/iris.csv --target species
      trains a classifier on every other column, holding out 20% to validate;
      writes model.json and its loss curve model.png
  mlp train houses.csv --target price --hidden 64,64 --epochs 500 --model houses.json
  mlp train survey.csv --target answer --categorical region,zip
      fills each missing cell (empty, NA, ?) with the column's median or most frequent
      category in the training rows, and keeps those values in the model, so that
      `mlp predict` and `mlp eval` fill new rows' missing cells the same way
  mlp train survey.csv --target answer --missing error
      refuses a file with missing cells instead, naming the first
  mpirun -n 4 mlp train big.csv --target y
      (built with --features mpi) four processes train one model; rank 0 writes it";

/// Train a network on a CSV file and write the model and its loss curve
#[derive(Args, Debug)]
#[command(after_help = super::MORE, after_long_help = EXAMPLE)]
pub struct TrainArgs {
    #[command(flatten)]
    settings: Settings,

    /// Where to write the model
    #[arg(long, value_name = "PATH", default_value = "model.json")]
    model: PathBuf,

    /// Where to write the loss-curve PNG (default: next to the model, as .png)
    #[arg(long, value_name = "PATH")]
    plot: Option<PathBuf>,

    /// Draw the decision boundary (predicted class or value over the plane, training
    /// points on top) to this PNG file; the model needs exactly two numeric input columns
    #[arg(long, value_name = "PATH")]
    boundary: Option<PathBuf>,

    /// Animate the decision boundary over the epochs of training into this GIF file
    #[arg(long, value_name = "PATH")]
    boundary_gif: Option<PathBuf>,

    /// Draw each layer's gradient norm over the epochs to this PNG file
    #[arg(long, value_name = "PATH")]
    health: Option<PathBuf>,

    /// Most memory to use, at least 16M, e.g. 256M or 2G (default: half the machine's memory); a file
    /// that would need more to be read into memory is streamed: read in chunks, every epoch
    #[arg(long, value_name = "SIZE", value_parser = parse_limit)]
    memory_limit: Option<u64>,

    /// Stream the file (read it in chunks every epoch) even if it fits in memory
    #[arg(long)]
    stream: bool,

    /// No progress bar and no summary
    #[arg(long, short)]
    quiet: bool,
}

/// The data and how to train on it: what `mlp train` and `mlp lr-find` share.
#[derive(Args, Debug)]
pub struct Settings {
    /// The training data: a CSV file with a header row
    #[arg(value_name = "DATA.csv")]
    data: PathBuf,

    /// Column to predict (default: the last column)
    #[arg(long, value_name = "COL")]
    target: Option<String>,

    /// Hidden layer sizes, comma-separated
    #[arg(
        long,
        value_name = "SIZES",
        value_delimiter = ',',
        default_value = "128,64"
    )]
    hidden: Vec<usize>,

    /// Activation after each hidden layer
    #[arg(long, value_enum, default_value = "relu")]
    activation: ActivationArg,

    /// Classification or regression (auto: classification for text, or integers with at
    /// most 20 distinct values)
    #[arg(long, value_enum, default_value = "auto")]
    task: TaskArg,

    /// Optimizer
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerArg,

    /// Learning rate (default: 0.001 for adam, 0.01 for sgd and momentum)
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    pub(super) lr: Option<f32>,

    /// Momentum for --optimizer momentum [default: 0.9]
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    momentum: Option<f32>,

    /// Use Nesterov momentum (with --optimizer momentum)
    #[arg(long)]
    nesterov: bool,

    /// L2 weight decay on the weights
    #[arg(
        long,
        value_name = "F",
        default_value_t = 1e-4,
        allow_negative_numbers = true
    )]
    weight_decay: f32,

    /// Label smoothing for classification: train towards (1 − F) on the true class
    /// [default: 0.1]
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    label_smoothing: Option<f32>,

    /// Classification: calibrate the probabilities after training with a temperature
    /// fitted on the held-out rows (out-of-fold, or validation), which minimises their log
    /// loss and changes no predicted class; none keeps the softmax as trained
    #[arg(long, value_enum, value_name = "HOW", default_value = "temperature")]
    calibration: CalibrationArg,

    /// Regression: how `predict --interval` makes intervals from the held-out residuals.
    /// ensemble (the default, with k folds): CV+ sized for the networks' mean, its
    /// residuals and the networks' spread shrunk by what averaging removes from one
    /// network's error; cv-plus: each network's residuals around its own prediction, wider
    /// where the networks disagree, with a coverage guarantee; split: the prediction ± one
    /// quantile of all of them, the same width everywhere (over 10 random splits of 11 data
    /// sets at 0.9, mean coverage 0.905 for ensemble, 0.919 for cv-plus and 0.909 for
    /// split: see QUALITY.md)
    #[arg(long, value_enum, value_name = "HOW")]
    intervals: Option<IntervalsArg>,

    /// Weights of the classes in the loss: balanced weighs each class as much in total
    /// (scikit-learn's class_weight="balanced"), for a rare class that matters;
    /// classification only
    #[arg(long, value_enum, value_name = "HOW", default_value = "none")]
    class_weight: ClassWeightArg,

    /// What keeps the best epoch (early stopping) and the validation line shows: loss
    /// (log loss for classes, MSE for values); accuracy, log_loss, balanced_accuracy,
    /// macro_f1 or roc_auc for classes; r2 or mae for values
    #[arg(long, value_enum, value_name = "NAME", default_value = "loss")]
    metric: MetricArg,

    /// Most epochs to train
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub(super) epochs: usize,

    /// Rows per mini-batch [default: 32, doubling with every doubling of the rows a
    /// network trains on beyond 5,000, up to 256, with the default learning rate times the
    /// square root of the growth; giving --batch-size or --lr keeps both as given]
    #[arg(long, value_name = "N")]
    batch_size: Option<usize>,

    /// Fraction of rows held out for validation and early stopping when one network
    /// trains (0: train on all) [default: 0.2; giving it trains one network, so not with
    /// --folds 2 or more]
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    val_split: Option<f32>,

    /// Stop after N epochs without a better validation loss (0: never stop early)
    #[arg(long, value_name = "N", default_value_t = TrainConfig::default().patience)]
    pub(super) patience: usize,

    /// One network: after early stopping picks the number of epochs, train again on all
    /// rows (training and validation) for that many and save that network, at twice the
    /// training time; the validation figures are those of the first run (not with --folds
    /// 2 or more, whose networks train on every row already)
    #[arg(long)]
    pub(super) refit: bool,

    /// Train K networks by k-fold cross-fitting: each trains on all folds but one and
    /// early-stops on that one, and the model averages their predictions, so every row is
    /// trained on (0: one network, validated on --val-split) [default: 3 in memory; 0 when
    /// streaming, under mpirun, or with --val-split or --refit]
    #[arg(long, value_name = "K")]
    pub(super) folds: Option<usize>,

    /// Dropout rate after each hidden layer while training (0: none)
    #[arg(
        long,
        value_name = "F",
        default_value_t = 0.0,
        allow_negative_numbers = true
    )]
    dropout: f32,

    /// How numeric columns become inputs: piecewise ((x − mean) / std, plus one input per
    /// quantile bin, up to 8, saying how far into the bin x is; Gorishniy et al. 2022),
    /// standard ((x − mean) / std alone) or robust (median and interquartile range, then
    /// smoothly clipped to ±3, as RealMLP does)
    #[arg(long, value_enum, default_value = "piecewise")]
    scaling: ScalingArg,

    /// Seed for initial weights, the split and the shuffles
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,

    /// Streaming: shuffle the training rows in windows of this many, read in file order (at
    /// least --batch-size); fixed, so that the model does not depend on --memory-limit or
    /// the machine. The window and the held rows, encoded, must fit in a quarter of
    /// --memory-limit
    #[arg(long, value_name = "ROWS", default_value_t = DEFAULT_SHUFFLE_WINDOW)]
    pub(super) shuffle_window: usize,

    /// Streaming: judge every epoch on at most this many rows kept in memory (the file's
    /// first validation rows, or with --val-split 0 its first training rows)
    #[arg(long, value_name = "ROWS", default_value_t = DEFAULT_HELD_ROWS)]
    pub(super) held_rows: usize,

    /// Missing cells (empty, NA, NaN, null, ?): impute fills each with the training
    /// rows' median (numbers) or most frequent category (text), values the model keeps to
    /// fill new rows at predict and eval time (rows without a target are left out); drop
    /// trains without the rows that have any; error refuses the file
    #[arg(long, value_enum, default_value = "impute")]
    missing: MissingArg,

    /// Columns to treat as categories even if they hold numbers, comma-separated (read as
    /// one CSV record, so '"a,b"' names a column with a comma); may be repeated
    #[arg(long, value_name = "COL,...")]
    categorical: Vec<String>,

    /// Columns to leave out (identifiers, free text), comma-separated (read as one CSV
    /// record, so '"a,b"' names a column with a comma); may be repeated
    #[arg(long, value_name = "COL,...")]
    ignore: Vec<String>,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum IntervalsArg {
    Ensemble,
    CvPlus,
    Split,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum CalibrationArg {
    Temperature,
    None,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ActivationArg {
    Relu,
    Sigmoid,
    Tanh,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum OptimizerArg {
    Adam,
    Sgd,
    Momentum,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ScalingArg {
    Standard,
    Robust,
    Piecewise,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum ClassWeightArg {
    None,
    Balanced,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum MetricArg {
    Loss,
    Accuracy,
    #[value(name = "log_loss")]
    LogLoss,
    #[value(name = "balanced_accuracy")]
    BalancedAccuracy,
    #[value(name = "macro_f1")]
    MacroF1,
    #[value(name = "roc_auc")]
    RocAuc,
    R2,
    Mae,
}

impl Settings {
    /// The `--metric` given, unless it is the default.
    pub(super) fn metric_given(&self) -> Option<&'static str> {
        Some(Metric::from(self.metric).name()).filter(|&m| m != Metric::Loss.name())
    }
}

impl From<MetricArg> for Metric {
    fn from(arg: MetricArg) -> Metric {
        match arg {
            MetricArg::Loss => Metric::Loss,
            MetricArg::Accuracy => Metric::Accuracy,
            MetricArg::LogLoss => Metric::LogLoss,
            MetricArg::BalancedAccuracy => Metric::BalancedAccuracy,
            MetricArg::MacroF1 => Metric::MacroF1,
            MetricArg::RocAuc => Metric::RocAuc,
            MetricArg::R2 => Metric::R2,
            MetricArg::Mae => Metric::Mae,
        }
    }
}

#[derive(ValueEnum, Clone, Copy, Debug)]
enum MissingArg {
    Impute,
    Drop,
    Error,
}

/// Raised by Ctrl-C; the training loop checks it after every batch.
static INTERRUPT: AtomicBool = AtomicBool::new(false);

/// The column names in the values of a repeatable flag: each value one CSV record.
pub(super) fn column_list(setting: Setting, values: &[String]) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for value in values {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .trim(csv::Trim::All)
            .from_reader(value.as_bytes());
        let mut record = csv::StringRecord::new();
        match reader.read_record(&mut record) {
            Ok(true) if !record.iter().any(str::is_empty) => {
                names.extend(record.iter().map(String::from));
            }
            _ => {
                return Err(Error::config(
                    setting,
                    format!("'{value}'"),
                    "one of the column names is empty",
                    "name columns separated by commas, quoting a name that holds a comma: \
                     'id,\"city, state\"'",
                ));
            }
        }
    }
    Ok(names)
}

impl Settings {
    /// Refuses flags given where they cannot take effect.
    fn refuse_ineffective(&self, optimizer: OptimizerKind) -> Result<(), Error> {
        if let (Some(k @ 2..), Some(v)) = (self.folds, self.val_split) {
            return Err(Error::config(
                Setting::ValSplit,
                v,
                format!(
                    "with --folds {k} each network validates on its own fold, so no rows are \
                     held out besides"
                ),
                Hint::text("leave out ")
                    .name(Setting::ValSplit)
                    .then(", or use ")
                    .setting(Setting::Folds, 0)
                    .then(" to train one network validated on it"),
            ));
        }
        // Given with another optimizer, it would be recorded in the model and do nothing.
        if let Some(m) = self.momentum
            && optimizer != OptimizerKind::Momentum
        {
            return Err(Error::config(
                Setting::Momentum,
                m,
                format!("momentum applies to the momentum optimizer, not to {optimizer:?}"),
                Hint::text("use ")
                    .setting(Setting::Optimizer, "momentum")
                    .then(", or leave out ")
                    .name(Setting::Momentum),
            ));
        }
        Ok(())
    }

    /// The library request these flags describe.
    pub fn request(&self) -> Result<TrainRequest, Error> {
        let optimizer = match self.optimizer {
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Momentum => OptimizerKind::Momentum,
        };
        self.refuse_ineffective(optimizer)?;
        Ok(TrainRequest {
            data: self.data.clone(),
            target: self.target.clone(),
            task: match self.task {
                TaskArg::Auto => None,
                TaskArg::Classification => Some(Task::Classification),
                TaskArg::Regression => Some(Task::Regression),
            },
            missing: match self.missing {
                MissingArg::Error => MissingPolicy::Error,
                MissingArg::Drop => MissingPolicy::Drop,
                MissingArg::Impute => MissingPolicy::Impute,
            },
            categorical: column_list(Setting::Categorical, &self.categorical)?,
            ignore: column_list(Setting::Ignore, &self.ignore)?,
            scaling: match self.scaling {
                ScalingArg::Standard => Scaling::Standard,
                ScalingArg::Robust => Scaling::Robust,
                ScalingArg::Piecewise => Scaling::Piecewise,
            },
            config: TrainConfig {
                hidden: self.hidden.clone(),
                activation: match self.activation {
                    ActivationArg::Relu => Activation::Relu,
                    ActivationArg::Sigmoid => Activation::Sigmoid,
                    ActivationArg::Tanh => Activation::Tanh,
                },
                optimizer,
                learning_rate: self.lr.unwrap_or(optimizer.default_learning_rate()),
                momentum: self.momentum.unwrap_or(TrainConfig::default().momentum),
                nesterov: self.nesterov,
                weight_decay: self.weight_decay,
                label_smoothing: (self.label_smoothing)
                    .unwrap_or(TrainConfig::default().label_smoothing),
                epochs: self.epochs,
                batch_size: self.batch_size.unwrap_or(DEFAULT_BATCH),
                val_split: self.val_split.unwrap_or(TrainConfig::default().val_split),
                patience: self.patience,
                seed: self.seed,
                refit: self.refit,
                dropout: self.dropout,
                folds: self
                    .folds
                    .unwrap_or(if self.val_split.is_some() || self.refit {
                        0
                    } else {
                        DEFAULT_FOLDS
                    }),
                shuffle_window: self.shuffle_window,
                held_rows: self.held_rows,
                calibration: match self.calibration {
                    CalibrationArg::Temperature => CalibrationMethod::Temperature,
                    CalibrationArg::None => CalibrationMethod::None,
                },
                class_weight: match self.class_weight {
                    ClassWeightArg::None => ClassWeight::None,
                    ClassWeightArg::Balanced => ClassWeight::Balanced,
                },
                metric: self.metric.into(),
                intervals: match self.intervals {
                    Some(IntervalsArg::Ensemble) | None => IntervalMethod::Ensemble,
                    Some(IntervalsArg::CvPlus) => IntervalMethod::CvPlus,
                    Some(IntervalsArg::Split) => IntervalMethod::Split,
                },
                intervals_given: self.intervals.is_some(),
                grow_batch: self.batch_size.is_none() && self.lr.is_none(),
            },
        })
    }
}

/// Runs `mlp train`: in one process, or (built with the `mpi` feature, under `mpirun`) in
/// every process of the run, of which only rank 0 prints and writes files.
pub fn run(args: TrainArgs) -> Result<ExitCode, Error> {
    #[cfg(feature = "mpi")]
    {
        if let Some(mpi) = mlp::train::mpi::Mpi::start() {
            // Processes on one machine share its cores, unless the user said otherwise.
            let local = mlp::train::mpi::Mpi::local_size();
            if local > 1 && std::env::var_os("MLP_THREADS").is_none() && !super::threads_set() {
                mlp::nn::linalg::threads::set_num_threads(
                    (mlp::nn::linalg::threads::num_threads() / local).max(1),
                );
            }
            return run_in(&args, &mpi);
        }
    }
    run_in(&args, &Solo)
}

/// Ends every process when one of them failed at this point, with the message once.
///
/// A single process just returns its error. In a group, every process calls this at the
/// same points (after parsing, after checking the outputs, after the run, which stops
/// every process at the same point when one fails), so no process is left waiting for a
/// failed one; rank 0 prints the first failure and every process exits with its code.
fn agree<T>(comm: &dyn Communicator, result: Result<T, Error>) -> Result<T, Agreed> {
    if comm.size() == 1 {
        return result.map_err(Agreed::Error);
    }
    // A process stopped because another failed has nothing to say: the other says it.
    let local = result
        .as_ref()
        .err()
        .filter(|e| !matches!(e, Error::Elsewhere { .. }))
        .map(|e| {
            let code = exit_for(e);
            let code = if code == ExitCode::from(EXIT_INTERRUPTED) {
                EXIT_INTERRUPTED
            } else {
                EXIT_USER
            };
            let (message, hint) = super::rendered(e);
            format!("{}{message}\0{hint}", code as char)
        });
    match comm.first_failure(local) {
        None => result.map_err(|_| Agreed::Exit(ExitCode::from(EXIT_USER))),
        Some((rank, message)) => {
            let mut chars = message.chars();
            let code = chars.next().map_or(EXIT_USER, |c| c as u8);
            if comm.is_leader() {
                let from = if rank == 0 {
                    String::new()
                } else {
                    format!("(rank {rank} of {}) ", comm.size())
                };
                let text = chars.as_str();
                let (message, hint) = text.split_once('\0').unwrap_or((text, ""));
                out::error(&format!("{from}{message}"), hint);
            }
            Err(Agreed::Exit(ExitCode::from(code)))
        }
    }
}

/// How [`agree`] ends a run: with the error to report, or (in a group, already reported)
/// with just the exit code.
enum Agreed {
    Error(Error),
    Exit(ExitCode),
}

fn run_in(args: &TrainArgs, comm: &dyn Communicator) -> Result<ExitCode, Error> {
    match train_in(args, comm) {
        Ok(code) | Err(Agreed::Exit(code)) => Ok(code),
        Err(Agreed::Error(e)) => Err(e),
    }
}

fn train_in(args: &TrainArgs, comm: &dyn Communicator) -> Result<ExitCode, Agreed> {
    let request = agree(comm, args.settings.request())?;
    agree(comm, check_outputs(args))?;
    // Set before reading, so that a Ctrl-C while reading stops at the first batch.
    // First Ctrl-C (or SIGTERM): finish the batch, save the best model so far. Second:
    // leave at once, removing the temporary file of a write under way.
    super::on_signals(Some(&INTERRUPT));
    let mut printer = Printer {
        args,
        request: request.clone(),
        say: !args.quiet && comm.is_leader(),
        leader: comm.is_leader(),
        bar: None,
    };
    let mut on_event = |event: &Event<'_>| printer.event(event);
    let options = RunOptions {
        memory_limit: args.memory_limit,
        stream: args.stream,
        folds_given: args.settings.folds.is_some(),
        label_smoothing_given: args.settings.label_smoothing.is_some(),
        outputs: Outputs {
            model: Some(args.model.clone()),
            loss_curve: Some(
                args.plot
                    .clone()
                    .unwrap_or_else(|| plot_path_for(&args.model)),
            ),
            health: args.health.clone(),
            boundary: args.boundary.clone(),
            boundary_gif: args.boundary_gif.clone(),
        },
        interrupt: Some(&INTERRUPT),
        on_event: Some(&mut on_event),
    };
    let report = agree(comm, mlp::run::run(request, options, comm))?;
    let outcome = &report.trained.outcome;
    if outcome.stop == StopReason::Interrupted {
        if comm.is_leader() {
            errln!(
                "interrupted: saved the best model so far (epoch {})",
                outcome.best_epoch
            );
        }
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints what a run tells as it goes (on rank 0): the data, the progress bar, how
/// training went and the files written.
struct Printer<'a> {
    args: &'a TrainArgs,
    /// The request as the flags gave it (the run's folds are in [`DataSummary::folds`]).
    request: TrainRequest,
    /// Whether to print the summary: rank 0, not `--quiet`.
    say: bool,
    /// Whether this is rank 0, which prints warnings even with `--quiet`.
    leader: bool,
    /// The progress bar while training.
    bar: Option<(ProgressBar, &'static str)>,
}

impl Printer<'_> {
    fn say(&self, line: String) {
        if self.say {
            outln!("{line}");
        }
    }

    fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::Mode(Mode::Streamed { reason, .. }) => self.say(format!(
                "streaming {}: {reason}",
                self.args.settings.data.display()
            )),
            Event::Mode(_) => {}
            Event::Data(data) => self.describe(data),
            Event::Scanned(figures) => self.scanned(figures),
            Event::TrainingStarts {
                epochs,
                task,
                processes,
                batch_size,
            } => self.start(*epochs, *task, *processes, *batch_size),
            Event::Epoch(report) => self.epoch(report),
            Event::TrainingEnds => {
                if let Some((bar, _)) = self.bar.take() {
                    bar.finish_and_clear();
                }
            }
            Event::StreamedEpochs(f) => self.say(format!(
                "streaming: {} epochs in {:.1} s, {:.0} training rows/s \
                 (reading, training and judging each epoch)",
                f.epochs, f.seconds, f.rows_per_second
            )),
            Event::Trained { trained, data } => self.trained(trained, data),
            // On standard error, as every command's "wrote" lines: standard output is
            // the report.
            Event::Wrote(w) if self.say => {
                errln!(
                    "wrote {}{}",
                    w.path.display(),
                    match w.output {
                        Output::BoundaryGif { frames } => format!(" ({frames} frames)"),
                        _ => String::new(),
                    }
                );
            }
            Event::Wrote(_) => {}
        }
    }

    /// The lines about the data, its task, features and split.
    fn describe(&self, data: &DataSummary) {
        let (seed, folds, missing) = (self.request.config.seed, data.folds, self.request.missing);
        let delimiter = match data.delimiter {
            b',' => String::new(),
            b'\t' => ", tab-separated".into(),
            d => format!(", '{}'-separated", d as char),
        };
        self.say(format!(
            "read {}: {} rows{delimiter}{}",
            self.args.settings.data.display(),
            data.rows,
            match (data.dropped, missing) {
                (0, _) => String::new(),
                (n, MissingPolicy::Impute) => format!(" (dropped {n} without a target value)"),
                (n, _) => format!(" (dropped {n} with missing values)"),
            }
        ));
        if !data.filled.is_empty() {
            self.say(format!(
                "missing: filled {} cells: {}",
                data.filled.iter().map(|(_, n)| n).sum::<usize>(),
                fill_summary(&data.encoding, &data.filled)
            ));
        }
        let encoding = &data.encoding;
        self.columns_chosen(data);
        self.say(match &encoding.target {
            TargetEncoding::Classes { name, labels, .. } => format!(
                "task: classification of '{}' into {} classes: {}",
                escape_controls(name),
                labels.len(),
                short_list(labels)
            ),
            TargetEncoding::Values { name, .. } => {
                format!("task: regression of '{}'", escape_controls(name))
            }
        });
        let categorical = encoding.categorical_names().len();
        fn bins(f: &Feature) -> usize {
            match f {
                Feature::Piecewise { edges, .. } => edges.len().saturating_sub(1),
                Feature::Date { parts, .. } => parts.iter().map(|p| bins(&p.scale)).sum(),
                _ => 0,
            }
        }
        let bins: usize = encoding.features.iter().map(bins).sum();
        let dates = (encoding.features.iter())
            .filter(|f| matches!(f, Feature::Date { .. }))
            .count();
        self.say(format!(
            "features: {} columns ({} numeric, {categorical} categorical{}) → {} inputs{}",
            encoding.features.len(),
            encoding.features.len() - categorical - dates,
            if dates > 0 {
                format!(", {dates} dates")
            } else {
                String::new()
            },
            encoding.input_width(),
            if bins > 0 {
                format!(", {bins} of them quantile bins of the numbers")
            } else {
                String::new()
            }
        ));
        self.say(if folds >= 2 {
            format!(
                "split: {folds} folds of about {} rows; each network validates on one (seed {seed})",
                (data.train_rows + data.validation_rows) / folds,
            )
        } else {
            format!(
                "split: {} training rows, {} validation rows (seed {seed})",
                data.train_rows, data.validation_rows,
            )
        });
    }

    /// The target taken without `--target`, and warnings for columns that look like row
    /// identifiers or whose values f32 rounded together.
    fn columns_chosen(&self, data: &DataSummary) {
        let encoding = &data.encoding;
        if self.request.target.is_none() {
            self.say(format!(
                "target: '{}', the last column (no --target given)",
                encoding.target.name()
            ));
        }
        if self.leader {
            for name in &data.identifiers {
                out::warning(
                    &format!(
                        "column '{name}' looks like a row identifier (whole numbers, all \
                         different): it predicts nothing about new rows, and in a file sorted \
                         by the target it passes for a strong feature"
                    ),
                    &Hint::text("if it is an identifier, leave it out with ")
                        .setting(Setting::Ignore, name),
                );
            }
            for c in &data.coarse {
                out::warning(
                    &format!(
                        "column '{}' has values finer than f32 (the network's number type) \
                         holds at their size: near {:.3e} it steps by {}, so values of the \
                         file that differ by less became one number",
                        c.name, c.largest, c.step
                    ),
                    &Hint::text(
                        "subtract an offset (say the first value) or change the unit in the \
                         file; if it is an identifier or a code, leave it out with ",
                    )
                    .setting(Setting::Ignore, &c.name)
                    .then(" or make it a category with ")
                    .setting(Setting::Categorical, &c.name),
                );
            }
        }
    }

    /// The lines about the first pass of a streamed file.
    fn scanned(&self, f: &ScanFigures) {
        self.say(format!(
            "streaming: first pass (reading and parsing alone) {:.1} s, {:.0} rows/s",
            f.seconds, f.rows_per_second
        ));
        self.say(format!(
            "streaming: chunks of {} read each epoch, the training rows shuffled in \
             windows of {}; every epoch judged on {} {} rows{} kept in memory",
            format_size(f.chunk_bytes as u64),
            f.window,
            f.held_rows,
            if f.held_validation {
                "validation"
            } else {
                "training"
            },
            if f.held_rows < f.held_of {
                format!(" (the first of {})", f.held_of)
            } else {
                String::new()
            }
        ));
    }

    /// The data-parallel line, and the progress bar (on rank 0, not `--quiet`).
    fn start(&mut self, epochs: usize, task: Task, processes: usize, batch_size: usize) {
        if processes > 1 {
            self.say(format!(
                "data parallel: {processes} processes, each computing gradients on its share \
                 of every batch of {batch_size}"
            ));
        }
        let bar = if self.say {
            ProgressBar::with_draw_target(Some(epochs as u64), ProgressDrawTarget::stderr())
        } else {
            ProgressBar::hidden()
        };
        bar.set_style(
            ProgressStyle::with_template("{bar:30} epoch {pos}/{len} {msg} ETA {eta}")
                .expect("a valid template"),
        );
        let metric_name = match (self.request.config.metric, task) {
            (Metric::Loss | Metric::LogLoss, Task::Classification) => "val acc",
            (Metric::Loss, Task::Regression) => "val R²",
            (m, _) => m.name(),
        };
        self.bar = Some((bar, metric_name));
    }

    fn epoch(&self, r: &mlp::train::EpochReport) {
        let Some((bar, metric_name)) = &self.bar else {
            return;
        };
        bar.set_position(r.epoch as u64);
        let mut msg = format!("train loss {:.4}", r.train_loss);
        let judged = match self.request.config.metric {
            Metric::Loss | Metric::LogLoss => r.val_metric,
            _ => r.val_score,
        };
        if let (Some(l), Some(m)) = (r.val_loss, judged) {
            msg.push_str(&format!("  val loss {l:.4}  {metric_name} {m:.4}"));
        }
        bar.set_message(msg);
    }

    /// Reports how training went.
    fn trained(&self, trained: &Trained, data: &DataSummary) {
        // As trained: the batch and learning rate may have grown with the rows.
        let config = &trained.model.file.training.config;
        let network = &trained.model.network;
        let grown = (config.batch_size != self.request.config.batch_size).then(|| {
            format!(
                ", batches of {} (grown with the rows; --batch-size or --lr keeps the defaults)",
                config.batch_size
            )
        });
        self.say(format!(
            "network: {}; {} parameters; {:?}, lr {}{}",
            network
                .specs()
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            network.param_count(),
            config.optimizer,
            config.learning_rate,
            grown.unwrap_or_default()
        ));
        if !trained.model.ensemble.is_empty() {
            self.say(format!(
                "ensemble: {} networks, one per fold (best epochs {}); the loss curve, the \
                 next line and the health report are the first network's, the validation \
                 figures out-of-fold (each row scored by the network that did not train on it)",
                1 + trained.model.ensemble.len(),
                trained
                    .fold_epochs
                    .iter()
                    .map(usize::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let outcome = &trained.outcome;
        let epochs_run = outcome.history.train_loss.len();
        self.say(match &outcome.stop {
            StopReason::Completed => format!("trained {epochs_run} epochs"),
            StopReason::EarlyStopped => format!(
                "stopped early after epoch {epochs_run}: no better {} for {} epochs",
                if data.validation_rows > 0 || data.folds >= 2 {
                    "validation loss"
                } else {
                    "training loss"
                },
                config.patience
            ),
            StopReason::Interrupted => format!("interrupted during epoch {}", epochs_run + 1),
            StopReason::Diverged { epoch } => format!(
                "training diverged in epoch {epoch} (the loss or a weight became infinite or NaN)"
            ),
        });
        if self.leader {
            warn_outcome(outcome, data, config);
        }
        self.results(&trained.model, data);
    }

    /// The best epoch's figures, the refit and the health report.
    fn results(&self, model: &mlp::tabular::model::Model, data: &DataSummary) {
        let m = &model.file.metrics;
        let mut summary = format!(
            "best epoch {}: train loss {:.4}",
            m.best_epoch, m.train_loss
        );
        if let Some(l) = m.validation_loss {
            summary.push_str(&format!(", validation loss {l:.4}"));
        }
        if let Some(a) = m.validation_accuracy {
            summary.push_str(&format!(", validation accuracy {a:.4}"));
            let target = &model.file.encoding.target;
            if let Some((class, share)) = majority_share(target.class_counts()) {
                let label = match target {
                    TargetEncoding::Classes { labels, .. } => labels[class].as_str(),
                    TargetEncoding::Values { .. } => "",
                };
                let label = escape_controls(label);
                summary.push_str(&format!(" (always \"{label}\": {share:.4})"));
            }
        }
        if let Some(r2) = m.validation_r2 {
            summary.push_str(&format!(", validation R² {r2:.4}"));
        }
        let t = &model.file.training;
        if t.config.folds >= 2 && t.validation_rows < t.train_rows {
            summary.push_str(&format!(
                " (out of fold on {} of {} rows: the folds trained until the interruption)",
                t.validation_rows, t.train_rows
            ));
        }
        self.say(summary);
        if let Some(line) = calibration_line(model) {
            self.say(line);
        }
        if let Some(epochs) = model.file.training.refit_epochs {
            self.say(format!(
                "refit: trained a fresh network on all {} rows for {epochs} epochs, and saved it",
                data.rows
            ));
        }
        if let Some(health) = &model.file.health {
            self.say(health.to_string().trim_end().to_string());
        }
    }
}

/// The line about the calibration fitted on the held-out rows: the temperature and what it
/// did to their log loss, or the residuals' 90% interval.
fn calibration_line(model: &mlp::tabular::model::Model) -> Option<String> {
    let file = &model.file;
    if let Some(fitted) = &file.calibration.fitted {
        return Some(format!(
            "calibration: temperature {:.3}, fitted on {} held-out rows (their log loss {:.4} → {:.4})",
            file.calibration.temperature,
            fitted.rows,
            fitted.log_loss_before,
            fitted.log_loss_after
        ));
    }
    let residuals = file.residuals.as_ref()?;
    let half = residuals.half_width(0.9).ok()?;
    // CV+ where the networks agree is the split interval: ± the residuals' quantile.
    let within = if residuals.folds.len() >= 2 {
        let (half, sized) = match residuals.ensemble {
            Some(scale) => (half * scale.residuals, " sized for the networks' mean"),
            None => (half, ""),
        };
        format!(
            "CV+ intervals{sized} of about ±{} where the {} networks agree, wider where they differ",
            half as f32,
            residuals.folds.len()
        )
    } else {
        format!("±{} of their prediction", half as f32)
    };
    Some(format!(
        "intervals: 90% of new rows are expected within {within}, from {} held-out residuals \
         (mlp predict --interval 0.9)",
        residuals.rows
    ))
}

/// The most frequent class of the training rows and its share: the accuracy of always
/// answering it, beside which a validation accuracy means something. `None` without counts.
fn majority_share(counts: &[u64]) -> Option<(usize, f64)> {
    let rows: u64 = counts.iter().sum();
    let (class, &n) = counts.iter().enumerate().rev().max_by_key(|(_, n)| **n)?;
    (rows > 0).then(|| (class, n as f64 / rows as f64))
}

/// Warns of a run that diverged, or that did no better than the untrained network.
fn warn_outcome(outcome: &mlp::train::FitOutcome, data: &DataSummary, config: &TrainConfig) {
    let monitored = if data.validation_rows > 0 || data.folds >= 2 {
        "validation loss"
    } else {
        "training loss"
    };
    if let StopReason::Diverged { .. } = outcome.stop {
        out::warning(
            &format!(
                "kept the weights of epoch {}, the best before training diverged \
                 ({monitored} {}, {} before training)",
                outcome.best_epoch,
                format_loss(outcome.best_loss),
                format_loss(outcome.initial_loss),
            ),
            &Hint::text(format!(
                "lower the learning rate (it is {}), and check the data for extreme or \
                 unscaled values",
                config.learning_rate
            )),
        );
    } else if !outcome.improved() {
        out::warning(
            &format!(
                "no epoch did better than the untrained network ({monitored} {} before \
                 training, {} at best); the model predicts no better than a constant",
                format_loss(outcome.initial_loss),
                format_loss(outcome.best_loss),
            ),
            &Hint::text(format!(
                "lower the learning rate (it is {}), or check that the features relate to \
                 the target",
                config.learning_rate
            )),
        );
    }
}

/// Refuses outputs that would replace the data or each other, or cannot be written.
fn check_outputs(args: &TrainArgs) -> Result<(), Error> {
    let plot_path = args
        .plot
        .clone()
        .unwrap_or_else(|| plot_path_for(&args.model));
    // Never replace the user's data with a model or a picture, nor one output with the other.
    if same_file(&args.model, &args.settings.data) {
        return Err(Error::config(
            Setting::Model,
            args.model.display(),
            "this is the training data file",
            "choose another path for the model, such as model.json",
        ));
    }
    // Both into one device (`--model /dev/null --plot /dev/null`) replaces nothing.
    if same_file(&plot_path, &args.settings.data)
        || (same_file(&plot_path, &args.model) && !is_device_or_pipe(&plot_path))
    {
        let setting = if args.plot.is_some() {
            Setting::Plot
        } else {
            Setting::Model
        };
        return Err(Error::config(
            setting,
            plot_path.display(),
            "the loss-curve picture would replace the data or the model file",
            "give --model a .json name, or choose another --plot path",
        ));
    }
    refuse_shared_outputs(args, &plot_path)?;
    let inputs = [
        args.settings.data.as_path(),
        args.model.as_path(),
        plot_path.as_path(),
    ];
    for (setting, path) in [
        (Setting::Boundary, &args.boundary),
        (Setting::BoundaryGif, &args.boundary_gif),
        (Setting::Health, &args.health),
    ] {
        super::refuse_overwrite(path.as_deref(), setting, &inputs)?;
        if let Some(path) = path {
            check_output_path(path)?;
        }
    }
    // Found now rather than after the training: a missing directory, a directory in the way.
    check_output_path(&args.model)?;
    check_output_path(&plot_path)?;
    Ok(())
}

/// Refuses two outputs on one file (`--boundary p.png --health p.png`), of which one would
/// be lost, naming both flags; a device or pipe (`/dev/null`) may take several.
fn refuse_shared_outputs(args: &TrainArgs, plot_path: &Path) -> Result<(), Error> {
    let plot = if args.plot.is_some() {
        out::words(Setting::Plot, None)
    } else {
        format!(
            "the loss curve (next to {})",
            out::words(Setting::Model, None)
        )
    };
    let outputs = [
        (
            Setting::Model,
            out::words(Setting::Model, None),
            Some(args.model.as_path()),
        ),
        (Setting::Plot, plot, Some(plot_path)),
        (
            Setting::Boundary,
            out::words(Setting::Boundary, None),
            args.boundary.as_deref(),
        ),
        (
            Setting::BoundaryGif,
            out::words(Setting::BoundaryGif, None),
            args.boundary_gif.as_deref(),
        ),
        (
            Setting::Health,
            out::words(Setting::Health, None),
            args.health.as_deref(),
        ),
    ];
    let given: Vec<_> = (outputs.iter())
        .filter_map(|(setting, flag, path)| Some((*setting, flag, (*path)?)))
        .collect();
    for (i, &(setting, flag, path)) in given.iter().enumerate() {
        for &(_, earlier, other) in &given[..i] {
            if same_file(path, other) && !is_device_or_pipe(path) {
                return Err(Error::config(
                    setting,
                    path.display(),
                    format!(
                        "{earlier} writes this file too, and one picture or model would be lost"
                    ),
                    format!("give {flag} and {earlier} different paths"),
                ));
            }
        }
    }
    Ok(())
}

fn fill_summary(encoding: &Encoding, filled: &[(String, usize)]) -> String {
    let mut parts = Vec::new();
    for (name, n) in filled {
        let how = match encoding.features.iter().find(|f| f.name() == name) {
            Some(
                Feature::Numeric {
                    fill: Some(fill), ..
                }
                | Feature::Robust {
                    fill: Some(fill), ..
                }
                | Feature::Piecewise {
                    fill: Some(fill), ..
                },
            ) => format!("the median {fill}"),
            Some(Feature::Categorical {
                fill: Some(fill), ..
            }) => format!("the most frequent '{}'", escape_controls(fill)),
            _ => continue,
        };
        parts.push(format!("{}: {n} with {how}", escape_controls(name)));
    }
    let shown = parts.len().min(10);
    let mut text = parts[..shown].join(", ");
    if parts.len() > shown {
        text.push_str(&format!(", … ({} columns in all)", parts.len()));
    }
    text
}

/// Values from a file, escaped: the first ten, and how many there are.
fn short_list(items: &[String]) -> String {
    let shown: Vec<String> = items.iter().take(10).map(|i| escape_controls(i)).collect();
    if items.len() <= 10 {
        shown.join(", ")
    } else {
        format!("{}, … ({} in all)", shown.join(", "), items.len())
    }
}
