//! `mlp eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mlp::Error;
use mlp::data::chunks::{Chunks, STDIN_NAME};
use mlp::pipeline::{Scored, StreamBudget, Truth, score_chunks, score_within};
use mlp::tabular::encoding::TargetEncoding;
use mlp::tabular::model::{Model, Predictions};
use mlp::train::metrics::{ClassificationReport, RegressionReport, classification, regression};

use super::{UnknownArg, made_up_note};
use serde_json::json;

use super::out::{outln, write_stdout};

/// `print!` that never panics (see `out`).
macro_rules! outp {
    ($($arg:tt)*) => {
        write_stdout(format!($($arg)*).as_bytes())
    };
}

const EXAMPLE: &str = "Examples:
  mlp eval model.json test.csv
  mlp eval model.json test.csv --json
  zcat test.csv.gz | mlp eval model.json -

Classification: accuracy, per-class precision, recall and F1, and a confusion matrix.
Regression: MSE, RMSE, MAE and R². The file needs the target column and the model's
feature columns (by name, in any order). Missing feature cells and unseen categories are
handled as by `mlp predict`: filled if the model was trained with --missing impute, and
with --unknown-category ignore encoded with none of their column's categories on.
  mlp eval model.json test.csv --unknown-category ignore";

/// Measure a model on a CSV file that has the true target values
#[derive(Args, Debug)]
#[command(after_help = super::MORE, after_long_help = EXAMPLE)]
pub struct EvalArgs {
    /// A model written by `mlp train`
    #[arg(value_name = "MODEL")]
    model: PathBuf,

    /// Rows with known targets: a CSV file with the target and feature columns, or - for
    /// standard input
    #[arg(value_name = "DATA.csv")]
    data: PathBuf,

    /// Print one JSON object instead of a report
    #[arg(long)]
    json: bool,

    /// A category the model did not see in training: refuse the file, or ignore it
    /// (encode it with none of its column's categories on)
    #[arg(long, value_enum, value_name = "WHAT", default_value = "error")]
    unknown_category: UnknownArg,

    /// Most memory to use, at least 16M, e.g. 256M or 2G (default: half the machine's memory); a larger
    /// file is read in chunks
    #[arg(long, value_name = "SIZE", value_parser = mlp::pipeline::memory::parse_limit)]
    memory_limit: Option<u64>,
}

pub fn run(args: EvalArgs) -> Result<ExitCode, Error> {
    let mut model = Model::load(&args.model)?;
    let unknown = args.unknown_category.into();
    let scored = if args.data.as_os_str() == "-" {
        let limit = (args.memory_limit).unwrap_or_else(mlp::pipeline::memory::default_limit);
        let factor = mlp::pipeline::memory::scoring_factor(&model.file.encoding);
        let chunks = Chunks::stdin(StreamBudget::within(limit, factor).chunk_bytes)?;
        score_chunks(&mut model, chunks, true, unknown)?
    } else {
        score_within(&mut model, &args.data, true, unknown, args.memory_limit)?
    };
    match (
        &scored.predictions,
        scored.truth.as_ref(),
        &model.file.encoding.target,
    ) {
        (
            Predictions::Classes { classes, .. },
            Some(Truth::Classes(truth)),
            TargetEncoding::Classes { labels, name },
        ) => {
            let report = classification(truth, classes, labels);
            if args.json {
                print_classes_json(&scored, &report, labels);
            } else {
                print_classes(&args, &scored, &report, labels, name);
            }
        }
        (
            Predictions::Values(predicted),
            Some(Truth::Values(truth)),
            TargetEncoding::Values { name, .. },
        ) => {
            let report = regression(truth, predicted);
            if args.json {
                print_values_json(&scored, &report);
            } else {
                print_values(&args, &scored, &report, name);
            }
        }
        _ => unreachable!("the model's task, its predictions and the targets agree"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The data as messages name it: its path, or `<stdin>` for `-`.
fn data_name(args: &EvalArgs) -> String {
    if args.data.as_os_str() == "-" {
        STDIN_NAME.into()
    } else {
        args.data.display().to_string()
    }
}

/// The classification figures as one JSON object.
fn print_classes_json(scored: &Scored, r: &ClassificationReport, labels: &[String]) {
    outln!(
        "{}",
        json!({
            "task": "classification",
            "rows": scored.rows,
            "accuracy": r.accuracy,
            "filled_cells": scored.filled,
            "unseen_categories": scored.unseen,
            "classes": r.classes,
            "labels": labels,
            "confusion": r.confusion,
        })
    );
}

/// The classification report: accuracy, the per-class table and the confusion matrix.
fn print_classes(
    args: &EvalArgs,
    scored: &Scored,
    r: &ClassificationReport,
    labels: &[String],
    name: &str,
) {
    let rows = scored.rows;
    let correct = (r.accuracy * rows as f64).round() as usize;
    outln!(
        "{}: {rows} rows, classification of '{name}'",
        data_name(args)
    );
    for note in &made_up_note(scored) {
        outln!("{note}");
    }
    outln!("accuracy: {:.4} ({correct}/{rows})", r.accuracy);
    outln!();
    let w = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    outln!("{:<w$}  precision  recall  f1      support", "class");
    for c in &r.classes {
        outln!(
            "{:<w$}  {:<9.4}  {:<6.4}  {:<6.4}  {}",
            c.label,
            c.precision,
            c.recall,
            c.f1,
            c.support
        );
    }
    outln!();
    print_confusion(labels, &r.confusion, w);
}

/// The confusion matrix, its first column `w` wide.
fn print_confusion(labels: &[String], confusion: &[Vec<usize>], w: usize) {
    outln!("confusion matrix (rows: true class, columns: predicted)");
    let cw = labels
        .iter()
        .map(|l| l.chars().count())
        .chain(confusion.iter().flatten().map(|n| n.to_string().len()))
        .max()
        .unwrap_or(1);
    outp!("{:<w$}", "");
    for l in labels {
        outp!("  {l:>cw$}");
    }
    outln!();
    for (l, row) in labels.iter().zip(confusion) {
        outp!("{l:<w$}");
        for n in row {
            outp!("  {n:>cw$}");
        }
        outln!();
    }
}

/// The regression figures as one JSON object.
fn print_values_json(scored: &Scored, r: &RegressionReport) {
    outln!(
        "{}",
        json!({
            "task": "regression",
            "rows": scored.rows,
            "mse": r.mse,
            "rmse": r.rmse,
            "mae": r.mae,
            "r2": r.r2,
            "filled_cells": scored.filled,
            "unseen_categories": scored.unseen,
        })
    );
}

/// The regression report: MSE, RMSE, MAE and R².
fn print_values(args: &EvalArgs, scored: &Scored, r: &RegressionReport, name: &str) {
    outln!(
        "{}: {} rows, regression of '{name}'",
        data_name(args),
        scored.rows
    );
    for note in &made_up_note(scored) {
        outln!("{note}");
    }
    outln!("MSE:  {:.6}", r.mse);
    outln!("RMSE: {:.6}", r.rmse);
    outln!("MAE:  {:.6}", r.mae);
    outln!("R²:   {:.4}", r.r2);
}
