//! `mlp eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mlp::Error;
use mlp::pipeline::{Scored, Truth, score_within};
use mlp::tabular::calibration::{Coverage, coverage};
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
  mlp eval model.json test.csv --interval 0.9    regression: coverage of the intervals

Classification: accuracy, per-class precision, recall and F1, and a confusion matrix.
Regression: MSE, RMSE, MAE and R². The file needs the target column and the model's
feature columns (by name, in any order). Missing feature cells and unseen categories are
handled as by `mlp predict`: filled if the model was trained with --missing impute, and
with --unknown-category ignore encoded with none of their column's categories on.
  mlp eval model.json test.csv --unknown-category ignore";

/// Measure a model on a CSV file that has the true target values
#[derive(Args, Debug)]
#[command(after_help = EXAMPLE)]
pub struct EvalArgs {
    /// A model written by `mlp train`
    #[arg(value_name = "MODEL")]
    model: PathBuf,

    /// Rows with known targets: a CSV file with the target and feature columns
    #[arg(value_name = "DATA.csv")]
    data: PathBuf,

    /// Print one JSON object instead of a report
    #[arg(long)]
    json: bool,

    /// Regression: also report how many rows lie within the conformal prediction
    /// intervals at LEVEL (such as 0.9) that `mlp predict --interval` gives, and their
    /// mean width
    #[arg(long, value_name = "LEVEL", allow_negative_numbers = true)]
    interval: Option<f64>,

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
    let half_width = match args.interval {
        Some(level) => Some((level, model.interval_half_width(level)?)),
        None => None,
    };
    let scored = score_within(
        &mut model,
        &args.data,
        true,
        args.unknown_category.into(),
        args.memory_limit,
    )?;
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
            let interval =
                half_width.map(|(level, half)| (level, coverage(truth, predicted, half)));
            if args.json {
                print_values_json(&scored, &report, interval.as_ref());
            } else {
                print_values(&args, &scored, &report, name);
                if let Some((level, c)) = &interval {
                    outln!(
                        "interval {level}: coverage {:.4} ({}/{}), mean width {}",
                        c.coverage,
                        c.covered,
                        c.rows,
                        c.mean_width as f32
                    );
                }
            }
        }
        _ => unreachable!("the model's task, its predictions and the targets agree"),
    }
    Ok(ExitCode::SUCCESS)
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
        args.data.display()
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
fn print_values_json(scored: &Scored, r: &RegressionReport, interval: Option<&(f64, Coverage)>) {
    let mut object = json!({
            "task": "regression",
            "rows": scored.rows,
            "mse": r.mse,
            "rmse": r.rmse,
            "mae": r.mae,
            "r2": r.r2,
            "filled_cells": scored.filled,
            "unseen_categories": scored.unseen,
    });
    if let Some((level, c)) = interval {
        object["interval"] = json!({
            "level": level,
            "coverage": c.coverage,
            "covered": c.covered,
            "mean_width": c.mean_width,
        });
    }
    outln!("{object}");
}

/// The regression report: MSE, RMSE, MAE and R².
fn print_values(args: &EvalArgs, scored: &Scored, r: &RegressionReport, name: &str) {
    outln!(
        "{}: {} rows, regression of '{name}'",
        args.data.display(),
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
