//! `mlp lr-find`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mlp::Error;

use super::out::{errln, outln};
use mlp::error::{Hint, Setting};
use mlp::fsutil::check_output_path;
use mlp::inspect::lr_find::{RULE, Sweep, lr_find};
use mlp::pipeline::memory::{check_training_fits, default_limit, parse_limit};
use mlp::pipeline::prepare;
use mlp::train::{DEFAULT_HELD_ROWS, DEFAULT_SHUFFLE_WINDOW, TrainConfig};

use super::train::Settings;

const EXAMPLE: &str = "Examples:
  mlp lr-find data/iris.csv --plot lr.png
  mlp lr-find houses.csv --target price --optimizer sgd --batch-size 64

Trains a fresh network for 100 mini-batches on the training split while the learning
rate grows from 1e-7 to 10, records the loss, and suggests a learning rate (Smith 2015,
fastai's lr_find). Takes `mlp train`'s flags for the data, the network, the optimizer
and the batch size, and refuses those the sweep cannot use (--lr, --epochs, --patience,
--folds 2 or more, --metric, and the streaming --shuffle-window and --held-rows); writes no
model. The sweep holds the file in memory: it does not stream (--stream is refused), and a
file that would need more than --memory-limit (default: half the memory available) is
refused before it is read, with the way to take a sample.
Then:
  mlp train DATA.csv --lr SUGGESTED ...";

/// Find a learning rate: a short sweep of growing rates, the loss against each
#[derive(Args, Debug)]
#[command(after_help = super::MORE, after_long_help = EXAMPLE)]
pub struct LrFindArgs {
    #[command(flatten)]
    settings: Settings,

    /// Draw the loss against the learning rate (log axis) to this PNG file
    #[arg(long, value_name = "PATH")]
    plot: Option<PathBuf>,

    /// No "wrote" line on standard error (errors and warnings still)
    #[arg(long, short)]
    quiet: bool,

    /// Most memory to use, at least 16M, e.g. 256M or 2G (default: half the memory
    /// available); a file that would need more is refused before it is read
    #[arg(long, value_name = "SIZE", value_parser = parse_limit)]
    memory_limit: Option<u64>,

    /// Refused: the sweep holds the file in memory (here so that the refusal says why)
    #[arg(long)]
    stream: bool,
}

pub fn run(args: LrFindArgs) -> Result<ExitCode, Error> {
    let request = args.settings.request()?;
    refuse_what_the_sweep_ignores(&args.settings)?;
    if args.stream {
        return Err(Error::config(
            Setting::Stream,
            "",
            "lr-find holds the training rows in memory for its 100 mini-batches and does \
             not stream the file",
            "leave out --stream; for a file too large for memory, sweep on a sample (head \
             -n 100001 file.csv > sample.csv keeps the header and 100,000 rows)",
        ));
    }
    super::refuse_overwrite(args.plot.as_deref(), Setting::Plot, &[&request.data])?;
    if let Some(plot) = &args.plot {
        check_output_path(plot)?;
    }
    let limit = args.memory_limit.unwrap_or_else(default_limit);
    check_training_fits(&request, limit, args.memory_limit.is_some())?;
    let prepared = prepare(&request)?;
    let found = lr_find(&prepared, &request.config, Sweep::default())?;
    let optimizer = format!("{:?}", request.config.optimizer).to_lowercase();
    outln!(
        "swept {} learning rates from {:.0e} to {:.1e} on {} training rows ({optimizer}, \
         batches of {})",
        found.learning_rates.len(),
        found.learning_rates.first().copied().unwrap_or(0.0),
        found.learning_rates.last().copied().unwrap_or(0.0),
        prepared.x_train.nrows(),
        // As the sweep takes them: no batch is larger than the training rows.
        request.config.batch_size.min(prepared.x_train.nrows())
    );
    outln!("lowest smoothed loss at lr {:.2e}", found.lowest);
    outln!("suggested lr: {:.2e}", found.suggested);
    outln!("rule: {RULE}");
    if let Some(plot) = &args.plot {
        let name = request
            .data
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        found.write_png(
            &format!("{name}: learning-rate range test ({optimizer})"),
            plot,
        )?;
        if !args.quiet {
            errln!("wrote {}", plot.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Refuses a flag of `mlp train` that the sweep takes no notice of, so that a run with it
/// never prints the same numbers as one without it. A flag given at its default value
/// cannot be told apart from one left out, and changes nothing either.
fn refuse_what_the_sweep_ignores(settings: &Settings) -> Result<(), Error> {
    let defaults = TrainConfig::default();
    let ignored = [
        (
            settings.lr.map(|lr| lr.to_string()),
            Setting::LearningRate,
            "lr-find sweeps the learning rate itself, from 1e-7 to 10",
        ),
        (
            (settings.epochs != defaults.epochs).then(|| settings.epochs.to_string()),
            Setting::Epochs,
            "the sweep is 100 mini-batches, not a number of epochs",
        ),
        (
            (settings.patience != defaults.patience).then(|| settings.patience.to_string()),
            Setting::Patience,
            "the sweep does not stop early on a validation loss",
        ),
        (
            settings.folds.filter(|&k| k >= 2).map(|k| k.to_string()),
            Setting::Folds,
            "the sweep trains one network on every row; folds only divide the training",
        ),
        (
            (settings.shuffle_window != DEFAULT_SHUFFLE_WINDOW)
                .then(|| settings.shuffle_window.to_string()),
            Setting::ShuffleWindow,
            "lr-find reads the file into memory and does not stream it",
        ),
        (
            (settings.held_rows != DEFAULT_HELD_ROWS).then(|| settings.held_rows.to_string()),
            Setting::HeldRows,
            "lr-find reads the file into memory and does not stream it",
        ),
        (
            settings.metric_given().map(str::to_string),
            Setting::Metric,
            "the sweep judges by the training loss, not by a validation metric",
        ),
    ];
    match ignored.into_iter().find(|(given, ..)| given.is_some()) {
        Some((Some(value), setting, why)) => Err(Error::config(
            setting,
            value,
            format!("{why}, so the setting would change nothing"),
            Hint::text("leave out ")
                .name(setting)
                .then("; lr-find ignores it (use it with `mlp train`)"),
        )),
        _ => Ok(()),
    }
}
