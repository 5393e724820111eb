//! `mlp lr-find`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mlp::Error;

use super::out::outln;
use mlp::error::Setting;
use mlp::fsutil::check_output_path;
use mlp::inspect::lr_find::{RULE, Sweep, lr_find};
use mlp::pipeline::prepare;

use super::train::Settings;

const EXAMPLE: &str = "Examples:
  mlp lr-find data/iris.csv --plot lr.png
  mlp lr-find houses.csv --target price --optimizer sgd --batch-size 64

Trains a fresh network for 100 mini-batches on the training split while the learning
rate grows from 1e-7 to 10, records the loss, and suggests a learning rate (Smith 2015,
fastai's lr_find). Takes the same flags as `mlp train`; writes no model. Then:
  mlp train DATA.csv --lr SUGGESTED ...";

/// Find a learning rate: a short sweep of growing rates, the loss against each
#[derive(Args, Debug)]
#[command(after_help = EXAMPLE)]
pub struct LrFindArgs {
    #[command(flatten)]
    settings: Settings,

    /// Draw the loss against the learning rate (log axis) to this PNG file
    #[arg(long, value_name = "PATH")]
    plot: Option<PathBuf>,
}

pub fn run(args: LrFindArgs) -> Result<ExitCode, Error> {
    let request = args.settings.request()?;
    super::refuse_overwrite(args.plot.as_deref(), Setting::Plot, &[&request.data])?;
    if let Some(plot) = &args.plot {
        check_output_path(plot)?;
    }
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
        outln!("wrote {}", plot.display());
    }
    Ok(ExitCode::SUCCESS)
}
