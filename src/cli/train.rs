//! `mlp train`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use mlp::Error;
use mlp::error::{Hint, Setting};
use mlp::fsutil::{check_output_path, is_device_or_pipe, remove_temporary_files, same_file};
use mlp::inspect::boundary::{BoundaryPlot, BoundaryRecorder, Plane, RESOLUTION, model_surface};
use mlp::pipeline::memory::{format_size, parse_size, training_estimate, training_factor};
use mlp::pipeline::{
    MissingPolicy, Prepared, StreamBudget, Streamed, TrainRequest, Trained, prepare,
    prepare_streamed_shared, train_streamed, train_with,
};
use mlp::tabular::encoding::{Encoding, Feature, Scaling, TargetEncoding, Task};
use mlp::train::comm::{Communicator, Solo};
use mlp::train::health::{HealthMonitor, activation_health, diagnose};
use mlp::train::plot::LossCurve;
use mlp::train::{
    Activation, Batch, DEFAULT_FOLDS, DEFAULT_HELD_ROWS, DEFAULT_SHUFFLE_WINDOW, Hooks, Observer,
    OptimizerKind, StopReason, TrainConfig, format_loss,
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
#[command(after_help = EXAMPLE)]
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

    /// Most memory to use, e.g. 256M or 2G (default: half the machine's memory); a file
    /// that would need more to be read into memory is streamed: read in chunks, every epoch
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
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
    lr: Option<f32>,

    /// Momentum for --optimizer momentum
    #[arg(
        long,
        value_name = "F",
        default_value_t = 0.9,
        allow_negative_numbers = true
    )]
    momentum: f32,

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
    #[arg(
        long,
        value_name = "F",
        default_value_t = 0.1,
        allow_negative_numbers = true
    )]
    label_smoothing: f32,

    /// Most epochs to train
    #[arg(long, value_name = "N", default_value_t = 200)]
    epochs: usize,

    /// Rows per mini-batch
    #[arg(long, value_name = "N", default_value_t = 32)]
    batch_size: usize,

    /// Fraction of rows held out for validation and early stopping when one network
    /// trains (0: train on all) [default: 0.2; giving it trains one network, so not with
    /// --folds 2 or more]
    #[arg(long, value_name = "F", allow_negative_numbers = true)]
    val_split: Option<f32>,

    /// Stop after N epochs without a better validation loss (0: never stop early)
    #[arg(long, value_name = "N", default_value_t = 20)]
    patience: usize,

    /// One network: after early stopping picks the number of epochs, train again on all
    /// rows (training and validation) for that many and save that network, at twice the
    /// training time; the validation figures are those of the first run (not with --folds
    /// 2 or more, whose networks train on every row already)
    #[arg(long)]
    refit: bool,

    /// Train K networks by k-fold cross-fitting: each trains on all folds but one and
    /// early-stops on that one, and the model averages their predictions, so every row is
    /// trained on (0: one network, validated on --val-split) [default: 3 in memory; 0 when
    /// streaming, under mpirun, or with --val-split or --refit]
    #[arg(long, value_name = "K")]
    folds: Option<usize>,

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
    shuffle_window: usize,

    /// Streaming: judge every epoch on at most this many rows kept in memory (the file's
    /// first validation rows, or with --val-split 0 its first training rows)
    #[arg(long, value_name = "ROWS", default_value_t = DEFAULT_HELD_ROWS)]
    held_rows: usize,

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
enum MissingArg {
    Impute,
    Drop,
    Error,
}

/// Raised by Ctrl-C; the training loop checks it after every batch.
static INTERRUPT: AtomicBool = AtomicBool::new(false);

/// The column names in the values of a repeatable flag: each value one CSV record.
fn column_list(setting: Setting, values: &[String]) -> Result<Vec<String>, Error> {
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
    /// The library request these flags describe.
    pub fn request(&self) -> Result<TrainRequest, Error> {
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
        let optimizer = match self.optimizer {
            OptimizerArg::Adam => OptimizerKind::Adam,
            OptimizerArg::Sgd => OptimizerKind::Sgd,
            OptimizerArg::Momentum => OptimizerKind::Momentum,
        };
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
                momentum: self.momentum,
                nesterov: self.nesterov,
                weight_decay: self.weight_decay,
                label_smoothing: self.label_smoothing,
                epochs: self.epochs,
                batch_size: self.batch_size,
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
/// same points (after reading, after training, after writing), so no process is left
/// waiting for a failed one; rank 0 prints the first failure and every process exits
/// with its code.
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
    let mut request = agree(comm, args.settings.request())?;
    let leader = comm.is_leader();
    let say = |line: String| {
        if !args.quiet && leader {
            outln!("{line}");
        }
    };
    agree(comm, check_outputs(args))?;
    // Set before reading, so that a Ctrl-C while reading stops at the first batch.
    // First Ctrl-C: finish the batch, save the best model so far. Second: leave at once,
    // removing the temporary file of a write under way.
    let _ = ctrlc::set_handler(|| {
        if INTERRUPT.swap(true, Ordering::SeqCst) {
            remove_temporary_files();
            std::process::exit(EXIT_INTERRUPTED as i32);
        }
    });
    let limit = args
        .memory_limit
        .unwrap_or_else(mlp::pipeline::memory::default_limit);
    let mut prepared_slot = None;
    let mut streamed_slot = None;
    // The data, read whole or scanned for streaming, and the rows in memory that the
    // decision boundary and the activation health are drawn from: the training rows, or
    // when streaming the rows held to judge every epoch.
    // k-fold ensembles train in memory in one process; elsewhere the default is one network
    // (and --folds given there is refused, by the library, naming the reason).
    let default_folds = args.settings.folds.is_none();
    if default_folds && comm.size() > 1 {
        request.config.folds = 0;
    }
    let streaming = agree(comm, why_stream(args, &request, limit))?;
    if default_folds && streaming.is_some() {
        request.config.folds = 0;
    }
    let request = request;
    let config = &request.config;
    let (data, source, rows) = match streaming {
        None => {
            let prepared = if comm.size() > 1 {
                mlp::pipeline::share::prepare_shared(&request, comm)
            } else {
                prepare(&request)
            };
            let prepared: &Prepared = prepared_slot.insert(agree(comm, prepared)?);
            let data = DataSummary {
                rows: prepared.rows,
                dropped: prepared.dropped,
                filled: prepared.filled.clone(),
                delimiter: prepared.delimiter,
                encoding: prepared.encoding.clone(),
                task: prepared.task,
                train_rows: prepared.train_rows,
                validation_rows: prepared.validation_rows,
            };
            describe(args, &data, request.missing, config, &say);
            let rows = Batch {
                x: prepared.x_train.view(),
                y: &prepared.y_train,
            };
            (data, Source::Memory(prepared), rows)
        }
        Some(reason) => {
            say(format!(
                "streaming {}: {reason}",
                args.settings.data.display()
            ));
            let budget = StreamBudget::within(limit, training_factor(&request));
            let streamed: &Streamed = streamed_slot.insert(agree(
                comm,
                prepare_streamed_shared(&request, budget, comm),
            )?);
            let scan = &streamed.scan;
            let data = DataSummary {
                rows: scan.rows,
                dropped: scan.dropped,
                filled: scan.filled.clone(),
                delimiter: scan.delimiter,
                encoding: scan.encoding.clone(),
                task: scan.task,
                train_rows: scan.train_rows,
                validation_rows: scan.validation_rows,
            };
            describe(args, &data, request.missing, config, &say);
            let held = &streamed.held;
            // In a data-parallel run each process holds its own share of them.
            let held_rows: usize = comm.all_counts(held.x.nrows()).iter().sum();
            let rows_read = scan.rows + scan.dropped;
            say(format!(
                "streaming: first pass (reading and parsing alone) {:.1} s, {:.0} rows/s",
                streamed.scan_seconds,
                rows_read as f64 / streamed.scan_seconds.max(1e-9)
            ));
            say(format!(
                "streaming: chunks of {} read each epoch, the training rows shuffled in \
                 windows of {}; every epoch judged on {} {} rows{} kept in memory",
                format_size(budget.chunk_bytes as u64),
                config.shuffle_window.min(scan.train_rows),
                held_rows,
                if config.val_split > 0.0 {
                    "validation"
                } else {
                    "training"
                },
                if held_rows < held.of {
                    format!(" (the first of {})", held.of)
                } else {
                    String::new()
                }
            ));
            (data, Source::Streamed(streamed, budget), held.batch())
        }
    };

    // Refuse --boundary on a model that is not two-dimensional before training, not after.
    let boundary_flag = if args.boundary.is_some() {
        Setting::Boundary
    } else {
        Setting::BoundaryGif
    };
    let plane = if args.boundary.is_some() || args.boundary_gif.is_some() {
        Some(agree(
            comm,
            Plane::for_model(&data.encoding, rows.x, boundary_flag),
        )?)
    } else {
        None
    };
    let mut monitor = HealthMonitor::new();
    let mut recorder = match (&plane, &args.boundary_gif) {
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
    let trained = match source {
        Source::Memory(prepared) => {
            with_progress(args, comm, config, data.task, &mut observers, |hooks| {
                train_with(prepared, config, hooks)
            })
        }
        Source::Streamed(streamed, budget) => {
            let start = std::time::Instant::now();
            let trained = with_progress(args, comm, config, data.task, &mut observers, |hooks| {
                train_streamed(&request, streamed, budget, hooks)
            });
            if let Ok(trained) = &trained {
                let epochs = trained.outcome.history.train_loss.len();
                let seconds = start.elapsed().as_secs_f64();
                say(format!(
                    "streaming: {epochs} epochs in {seconds:.1} s, {:.0} training rows/s \
                     (reading, training and judging each epoch)",
                    (epochs * data.train_rows) as f64 / seconds.max(1e-9)
                ));
            }
            trained
        }
    };
    drop(observers);
    let mut trained = agree(comm, trained)?;
    let diverged = matches!(trained.outcome.stop, StopReason::Diverged { .. });
    let activations = activation_health(&mut trained.model.network, rows.x);
    let health = diagnose(monitor.linear().to_vec(), activations, config, diverged);
    trained.model.file.health = Some(health);
    let pictures = Pictures {
        plane: plane.as_ref(),
        recorder,
        rows,
    };
    report_and_write(args, comm, &request, &data, trained, pictures, &say)
}

/// Where the data of a run is: read into memory, or to be streamed.
enum Source<'a> {
    Memory(&'a Prepared),
    Streamed(&'a Streamed, StreamBudget),
}

/// What the decision-boundary pictures are drawn from.
struct Pictures<'a> {
    /// The plane, with `--boundary` or `--boundary-gif`.
    plane: Option<&'a Plane>,
    /// The frames recorded during training, with `--boundary-gif`.
    recorder: Option<BoundaryRecorder<'a>>,
    /// The points drawn on top.
    rows: Batch<'a>,
}

/// What `mlp train` says about the data it read.
struct DataSummary {
    rows: usize,
    dropped: usize,
    filled: Vec<(String, usize)>,
    delimiter: u8,
    encoding: mlp::tabular::encoding::Encoding,
    task: Task,
    train_rows: usize,
    validation_rows: usize,
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

/// Why the file is to be streamed rather than read into memory, or `None` to read it.
fn why_stream(
    args: &TrainArgs,
    request: &TrainRequest,
    limit: u64,
) -> Result<Option<String>, Error> {
    let meta = std::fs::metadata(&args.settings.data);
    let regular = meta.as_ref().is_ok_and(|m| m.is_file());
    if args.stream {
        if meta.is_ok() && !regular {
            return Err(Error::config(
                Setting::Stream,
                args.settings.data.display(),
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

/// The lines about the data, its task, features and split.
fn describe(
    args: &TrainArgs,
    data: &DataSummary,
    missing: MissingPolicy,
    config: &TrainConfig,
    say: &dyn Fn(String),
) {
    let (seed, folds) = (config.seed, config.folds);
    let delimiter = match data.delimiter {
        b',' => String::new(),
        b'\t' => ", tab-separated".into(),
        d => format!(", '{}'-separated", d as char),
    };
    say(format!(
        "read {}: {} rows{delimiter}{}",
        args.settings.data.display(),
        data.rows,
        match (data.dropped, missing) {
            (0, _) => String::new(),
            (n, MissingPolicy::Impute) => format!(" (dropped {n} without a target value)"),
            (n, _) => format!(" (dropped {n} with missing values)"),
        }
    ));
    if !data.filled.is_empty() {
        say(format!(
            "missing: filled {} cells: {}",
            data.filled.iter().map(|(_, n)| n).sum::<usize>(),
            fill_summary(&data.encoding, &data.filled)
        ));
    }
    let encoding = &data.encoding;
    say(match &encoding.target {
        TargetEncoding::Classes { name, labels } => format!(
            "task: classification of '{name}' into {} classes: {}",
            labels.len(),
            short_list(labels)
        ),
        TargetEncoding::Values { name, .. } => format!("task: regression of '{name}'"),
    });
    let categorical = encoding.categorical_names().len();
    let bins: usize = (encoding.features.iter())
        .map(|f| match f {
            Feature::Piecewise { edges, .. } => edges.len().saturating_sub(1),
            _ => 0,
        })
        .sum();
    say(format!(
        "features: {} columns ({} numeric, {categorical} categorical) → {} inputs{}",
        encoding.features.len(),
        encoding.features.len() - categorical,
        encoding.input_width(),
        if bins > 0 {
            format!(", {bins} of them quantile bins of the numbers")
        } else {
            String::new()
        }
    ));
    say(if folds >= 2 {
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

/// Runs `train` with a progress bar (on rank 0), the interrupt flag, `observer` and `comm`.
fn with_progress(
    args: &TrainArgs,
    comm: &dyn Communicator,
    config: &TrainConfig,
    task: Task,
    observer: &mut dyn Observer,
    train: impl FnOnce(Hooks<'_>) -> Result<Trained, Error>,
) -> Result<Trained, Error> {
    if comm.size() > 1 && comm.is_leader() && !args.quiet {
        outln!(
            "data parallel: {} processes, each computing gradients on its share of every \
             batch of {}",
            comm.size(),
            config.batch_size
        );
    }
    let bar = if args.quiet || !comm.is_leader() {
        ProgressBar::hidden()
    } else {
        ProgressBar::with_draw_target(Some(config.epochs as u64), ProgressDrawTarget::stderr())
    };
    bar.set_style(
        ProgressStyle::with_template("{bar:30} epoch {pos}/{len} {msg} ETA {eta}")
            .expect("a valid template"),
    );
    let metric_name = match task {
        Task::Classification => "val acc",
        Task::Regression => "val R²",
    };
    let mut on_epoch = |r: &mlp::train::EpochReport| {
        bar.set_position(r.epoch as u64);
        let mut msg = format!("train loss {:.4}", r.train_loss);
        if let (Some(l), Some(m)) = (r.val_loss, r.val_metric) {
            msg.push_str(&format!("  val loss {l:.4}  {metric_name} {m:.3}"));
        }
        bar.set_message(msg);
    };
    let hooks = Hooks {
        interrupt: Some(&INTERRUPT),
        on_epoch: Some(&mut on_epoch),
        observer: Some(observer),
        comm: (comm.size() > 1).then_some(comm),
    };
    let trained = train(hooks);
    bar.finish_and_clear();
    trained
}

/// Reports how training went, and (rank 0) writes the model and its picture.
fn report_and_write(
    args: &TrainArgs,
    comm: &dyn Communicator,
    request: &TrainRequest,
    data: &DataSummary,
    trained: Trained,
    pictures: Pictures<'_>,
    say: &dyn Fn(String),
) -> Result<ExitCode, Agreed> {
    let leader = comm.is_leader();
    let config = &request.config;
    let plot_path = args
        .plot
        .clone()
        .unwrap_or_else(|| plot_path_for(&args.model));
    let network = &trained.model.network;
    say(format!(
        "network: {}; {} parameters; {:?}, lr {}",
        network
            .specs()
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        network.param_count(),
        config.optimizer,
        config.learning_rate
    ));
    if !trained.model.ensemble.is_empty() {
        say(format!(
            "ensemble: {} networks, one per fold (best epochs {}); the loss curve, the \
             next line and the health report are the first network's, the validation figures \
             out-of-fold (each row scored by the network that did not train on it)",
            1 + trained.model.ensemble.len(),
            trained
                .fold_epochs
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let Trained {
        mut model, outcome, ..
    } = trained;
    let outcome = &outcome;
    let epochs_run = outcome.history.train_loss.len();
    say(match &outcome.stop {
        StopReason::Completed => format!("trained {epochs_run} epochs"),
        StopReason::EarlyStopped => format!(
            "stopped early after epoch {epochs_run}: no better validation loss for {} epochs",
            config.patience
        ),
        StopReason::Interrupted => format!("interrupted during epoch {}", epochs_run + 1),
        StopReason::Diverged { epoch } => format!(
            "training diverged in epoch {epoch} (the loss or a weight became infinite or NaN)"
        ),
    });
    let monitored = if data.validation_rows > 0 || config.folds >= 2 {
        "validation loss"
    } else {
        "training loss"
    };
    if !leader {
    } else if let StopReason::Diverged { .. } = outcome.stop {
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
    }
    if let Some(r2) = m.validation_r2 {
        summary.push_str(&format!(", validation R² {r2:.4}"));
    }
    say(summary);
    if let Some(epochs) = model.file.training.refit_epochs {
        say(format!(
            "refit: trained a fresh network on all {} rows for {epochs} epochs, and saved it",
            data.rows
        ));
    }

    if let Some(health) = &model.file.health {
        say(health.to_string().trim_end().to_string());
    }
    let mut write = || -> Result<(), Error> {
        model.save(&args.model)?;
        say(format!("wrote {}", args.model.display()));
        let title = title(data, &model);
        curve(data, config, title.clone(), outcome).write_png(&plot_path)?;
        say(format!("wrote {}", plot_path.display()));
        if let (Some(path), Some(health)) = (&args.health, &model.file.health) {
            health.write_png(&format!("{title}: gradient norm per layer"), path)?;
            say(format!("wrote {}", path.display()));
        }
        if let Some(plane) = pictures.plane {
            let target = &data.encoding.target;
            let points = BoundaryPlot {
                plane,
                target,
                points: pictures.rows.x,
                targets: pictures.rows.y,
                title: title.clone(),
            };
            if let Some(path) = &args.boundary {
                let s = model_surface(&mut model, plane, RESOLUTION);
                points.write_png(&s, path)?;
                say(format!("wrote {}", path.display()));
            }
            if let (Some(path), Some(recorder)) = (&args.boundary_gif, &pictures.recorder) {
                points.write_gif(&recorder.frames, path)?;
                say(format!(
                    "wrote {} ({} frames)",
                    path.display(),
                    recorder.frames.len()
                ));
            }
        }
        Ok(())
    };
    // Rank 0 writes; the others wait to hear whether it could.
    agree(comm, if leader { write() } else { Ok(()) })?;

    if outcome.stop == StopReason::Interrupted {
        if leader {
            errln!(
                "interrupted: saved the best model so far (epoch {})",
                outcome.best_epoch
            );
        }
        return Ok(ExitCode::from(EXIT_INTERRUPTED));
    }
    Ok(ExitCode::SUCCESS)
}

/// The title of a training run's pictures.
fn title(data: &DataSummary, model: &mlp::tabular::model::Model) -> String {
    let encoding = &data.encoding;
    format!(
        "{}: {}",
        model.file.training.data_file,
        match &encoding.target {
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
    outcome: &'a mlp::train::FitOutcome,
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
            }) => format!("the most frequent '{fill}'"),
            _ => continue,
        };
        parts.push(format!("{name}: {n} with {how}"));
    }
    let shown = parts.len().min(10);
    let mut text = parts[..shown].join(", ");
    if parts.len() > shown {
        text.push_str(&format!(", … ({} columns in all)", parts.len()));
    }
    text
}

fn short_list(items: &[String]) -> String {
    if items.len() <= 10 {
        items.join(", ")
    } else {
        format!("{}, … ({} in all)", items[..10].join(", "), items.len())
    }
}
