//! `mlp predict`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use mlp::Error;
use mlp::data::chunks::Chunks;
use mlp::error::Setting;
use mlp::fsutil::{check_output_path, read_data, same_file, write_output};
use mlp::pipeline::StreamBudget;
use mlp::pipeline::memory::{scoring_estimate, scoring_factor};
use mlp::pipeline::predict::{
    Format, Request, Written, predict_bytes, predict_chunks, predict_file_streamed,
};
use mlp::tabular::encoding::TargetEncoding;
use mlp::tabular::model::Model;

use super::{UnknownArg, made_up_note_counts};

use super::out::{errln, write_stdout, write_stdout_text};

const EXAMPLE: &str = "Examples:
  mlp predict model.json new.csv                  predictions to standard output
  mlp predict model.json new.csv --proba --output predictions.csv
  cat new.csv | mlp predict model.json - --keep id --format jsonl
  mlp predict model.json new.csv --interval 0.9   regression: add lower and upper

The output has one row per input row: a `prediction` column (the class label or the
value, in the target's units) and, with --proba, a `prob_<label>` column per class;
with --interval, a regression adds `lower` and `upper` (\"lower\"/\"upper\" in JSON lines).
--keep copies input columns (any, used by the model or not) as the file has them to the
front of each row. --format jsonl writes one JSON object per row instead:
  {\"id\":\"17\",\"prediction\":\"setosa\",\"probabilities\":{\"setosa\":0.946333,...}}
with kept cells as strings, and probabilities always for a classifier.
Feature columns are matched by name, in any order; other columns are ignored.
A missing cell gets the model's fill value if it was trained with --missing impute,
and is refused otherwise. A category the model never saw is encoded with none of its
column's categories on, and the rows and columns concerned are counted on standard error;
--unknown-category error refuses the file instead, naming the cell.
  mlp predict model.json new.csv --unknown-category error";

/// `--format` of `predict`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum FormatArg {
    /// CSV with a header line
    Csv,
    /// One JSON object per line
    Jsonl,
}

/// Predict the target for every row of a CSV file
#[derive(Args, Debug)]
#[command(after_help = super::MORE, after_long_help = EXAMPLE)]
pub struct PredictArgs {
    /// A model written by `mlp train`
    #[arg(value_name = "MODEL")]
    model: PathBuf,

    /// Rows to predict: a CSV file with the model's feature columns, or - for standard
    /// input
    #[arg(value_name = "DATA.csv")]
    data: PathBuf,

    /// Write the predictions here instead of standard output (- is standard output)
    #[arg(long, short, value_name = "PATH")]
    output: Option<PathBuf>,

    /// Add one probability column per class (classification models)
    #[arg(long)]
    proba: bool,

    /// Output format: csv, or jsonl (one JSON object per row)
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "csv")]
    format: FormatArg,

    /// Copy these input columns, as the file has them, to the front of each output row
    /// (CSV) or as keys (JSON lines), e.g. --keep id,name
    #[arg(long, value_name = "COLUMNS")]
    keep: Vec<String>,

    /// Regression: add `lower` and `upper` columns, a conformal prediction interval that
    /// holds a new row's value with probability LEVEL (such as 0.9), made from the
    /// held-out residuals the model stored at training time: CV+ for a k-fold model (from
    /// each network's prediction, so not always symmetric around the prediction),
    /// split-conformal (the prediction ± a half-width) for one network
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

    /// No notes and no "wrote" line on standard error (errors and warnings still)
    #[arg(long, short)]
    quiet: bool,
}

/// Whether `path` is `-`: standard input or output.
fn is_dash(path: &std::path::Path) -> bool {
    path.as_os_str() == "-"
}

pub fn run(args: PredictArgs) -> Result<ExitCode, Error> {
    let output = args.output.as_deref().filter(|o| !is_dash(o));
    if let Some(output) = output
        && ((!is_dash(&args.data) && same_file(output, &args.data))
            || same_file(output, &args.model))
    {
        return Err(Error::config(
            Setting::Output,
            output.display(),
            "this is an input file (the data or the model)",
            "choose another path for the predictions, such as predictions.csv",
        ));
    }
    if let Some(output) = output {
        check_output_path(output)?;
    }
    let mut model = Model::load(&args.model)?;
    let request = Request {
        format: match args.format {
            FormatArg::Csv => Format::Csv,
            FormatArg::Jsonl => Format::Jsonl,
        },
        proba: args.proba,
        keep: super::train::column_list(Setting::Keep, &args.keep)?,
        interval: match args.interval {
            Some(level) => Some(model.interval(level)?),
            None => None,
        },
    };
    if args.proba && !matches!(model.file.encoding.target, TargetEncoding::Classes { .. }) {
        return Err(Error::config(
            Setting::Proba,
            "",
            "probabilities exist only for classification models; this model predicts numbers",
            "leave out --proba",
        ));
    }
    let written = predict(&args, &mut model, &request)?;
    if !args.quiet {
        for note in made_up_note_counts(written.filled, &written.unseen) {
            errln!("note: {note}");
        }
    }
    match output {
        Some(path) => {
            write_output(path, &written.bytes)?;
            if !args.quiet {
                errln!("wrote {} predictions to {}", written.rows, path.display());
            }
        }
        // A failure is the stream's: see `out`. Into a pipe or a file the output goes byte
        // for byte; onto a terminal, labels from the model file are not let drive it.
        None if std::io::IsTerminal::is_terminal(&std::io::stdout()) => {
            write_stdout_text(&String::from_utf8_lossy(&written.bytes));
        }
        None => {
            write_stdout(&written.bytes);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The predictions: standard input and files larger than the memory limit allows to read
/// at once in chunks; plain rows of another regular file streamed from disk a piece at a
/// time; anything else read whole.
fn predict(args: &PredictArgs, model: &mut Model, request: &Request) -> Result<Written, Error> {
    let unknown = args.unknown_category.into();
    let limit = args
        .memory_limit
        .unwrap_or_else(mlp::pipeline::memory::default_limit);
    let chunk_bytes = StreamBudget::within(limit, scoring_factor(&model.file.encoding)).chunk_bytes;
    if is_dash(&args.data) {
        return predict_chunks(model, Chunks::stdin(chunk_bytes)?, request, unknown);
    }
    let too_big = std::fs::metadata(&args.data)
        .ok()
        .filter(|m| m.is_file())
        .is_some_and(|m| scoring_estimate(m.len(), &model.file.encoding) > limit);
    if too_big {
        return predict_chunks(
            model,
            Chunks::open(&args.data, chunk_bytes)?,
            request,
            unknown,
        );
    }
    // Plain rows of a regular file are streamed from disk; anything else is read whole.
    if let Some((bytes, rows)) = predict_file_streamed(model, &args.data, request, true) {
        return Ok(Written {
            bytes,
            rows,
            ..Written::default()
        });
    }
    let data = read_data(&args.data)?;
    predict_bytes(model, &args.data, &data, request, unknown, true)
}
