//! `mlp predict`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mlp::Error;
use mlp::error::Setting;
use mlp::fsutil::{check_output_path, read_data, same_file, write_output};
use mlp::pipeline::memory::scoring_estimate;
use mlp::pipeline::predict::{predict_streamed, write_predictions};
use mlp::pipeline::{score_bytes_with, score_within};
use mlp::tabular::encoding::TargetEncoding;
use mlp::tabular::model::Model;

use super::{UnknownArg, made_up_note};

use super::out::{errln, write_stdout, write_stdout_text};

const EXAMPLE: &str = "Examples:
  mlp predict model.json new.csv                  predictions to standard output
  mlp predict model.json new.csv --proba --output predictions.csv
  mlp predict model.json new.csv --interval 0.9   regression: add lower and upper

The output has one row per input row: a `prediction` column (the class label or the
value, in the target's units) and, with --proba, a `prob_<label>` column per class.
Feature columns are matched by name, in any order; other columns are ignored.
A missing cell gets the model's fill value if it was trained with --missing impute,
and is refused otherwise. A category the model never saw is encoded with none of its
column's categories on, and the rows and columns concerned are counted on standard error;
--unknown-category error refuses the file instead, naming the cell.
  mlp predict model.json new.csv --unknown-category error";

/// Predict the target for every row of a CSV file
#[derive(Args, Debug)]
#[command(after_help = EXAMPLE)]
pub struct PredictArgs {
    /// A model written by `mlp train`
    #[arg(value_name = "MODEL")]
    model: PathBuf,

    /// Rows to predict: a CSV file with the model's feature columns
    #[arg(value_name = "DATA.csv")]
    data: PathBuf,

    /// Write the predictions here instead of standard output
    #[arg(long, short, value_name = "PATH")]
    output: Option<PathBuf>,

    /// Add one probability column per class (classification models)
    #[arg(long)]
    proba: bool,

    /// Regression: add `lower` and `upper` columns, a conformal prediction interval that
    /// holds a new row's value with probability LEVEL (such as 0.9), made from the
    /// held-out residuals the model stored at training time
    #[arg(long, value_name = "LEVEL", allow_negative_numbers = true)]
    interval: Option<f64>,

    /// A category the model did not see in training: ignore it (encode it with none of its
    /// column's categories on, and count it), or refuse the file
    #[arg(long, value_enum, value_name = "WHAT", default_value = "ignore")]
    unknown_category: UnknownArg,

    /// Most memory to use, at least 16M, e.g. 256M or 2G (default: half the machine's memory); a larger
    /// file is read in chunks
    #[arg(long, value_name = "SIZE", value_parser = mlp::pipeline::memory::parse_limit)]
    memory_limit: Option<u64>,

    /// Print no notes (unseen categories, filled cells, rows left out) on standard error
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: PredictArgs) -> Result<ExitCode, Error> {
    if let Some(output) = &args.output
        && (same_file(output, &args.data) || same_file(output, &args.model))
    {
        return Err(Error::config(
            Setting::Output,
            output.display(),
            "this is an input file (the data or the model)",
            "choose another path for the predictions, such as predictions.csv",
        ));
    }
    if let Some(output) = &args.output {
        check_output_path(output)?;
    }
    let mut model = Model::load(&args.model)?;
    if args.proba && !matches!(model.file.encoding.target, TargetEncoding::Classes { .. }) {
        return Err(Error::config(
            Setting::Proba,
            "",
            "probabilities exist only for classification models; this model predicts numbers",
            "leave out --proba",
        ));
    }
    let interval = match args.interval {
        Some(level) => Some(model.interval_half_width(level)?),
        None => None,
    };
    let unknown = args.unknown_category.into();
    let limit = args
        .memory_limit
        .unwrap_or_else(mlp::pipeline::memory::default_limit);
    let too_big = std::fs::metadata(&args.data)
        .ok()
        .filter(|m| m.is_file())
        .is_some_and(|m| scoring_estimate(m.len(), &model.file.encoding) > limit);
    let (bytes, rows) = if too_big {
        // More than the memory limit allows to read at once: read in chunks.
        let scored = score_within(&mut model, &args.data, false, unknown, Some(limit))?;
        for note in made_up_note(&scored).iter().filter(|_| !args.quiet) {
            errln!("note: {note}");
        }
        let target = &model.file.encoding.target;
        let out = write_predictions(target, &scored, args.proba, interval);
        (out, scored.rows)
    } else {
        let data = read_data(&args.data)?;
        // Plain files stream; anything else (including cells to fill or unseen categories
        // to ignore, which the notes report) goes through the general reader.
        match predict_streamed(&mut model, &args.data, &data, args.proba, interval) {
            Some(done) => done,
            None => {
                let scored = score_bytes_with(&mut model, &args.data, &data, false, unknown)?;
                for note in made_up_note(&scored).iter().filter(|_| !args.quiet) {
                    errln!("note: {note}");
                }
                let target = &model.file.encoding.target;
                let out = write_predictions(target, &scored, args.proba, interval);
                (out, scored.rows)
            }
        }
    };
    match &args.output {
        Some(path) => {
            write_output(path, &bytes)?;
            errln!("wrote {rows} predictions to {}", path.display());
        }
        // A failure is the stream's: see `out`. Into a pipe or a file the CSV goes byte for
        // byte; onto a terminal, labels from the model file are not let drive it.
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            write_stdout_text(&String::from_utf8_lossy(&bytes));
        }
        None => {
            write_stdout(&bytes);
        }
    }
    Ok(ExitCode::SUCCESS)
}
