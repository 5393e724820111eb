//! `mlp eval`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mlp::Error;
use mlp::data::chunks::{Chunks, STDIN_NAME};
use mlp::pipeline::predict::score_file_streamed;
use mlp::pipeline::{Scored, StreamBudget, Truth, score_chunks, score_within};
use mlp::tabular::calibration::{Coverage, coverage};
use mlp::tabular::encoding::TargetEncoding;
use mlp::tabular::model::{Model, Predictions};
use mlp::train::metrics::{
    ClassificationReport, RegressionReport, classification, log_loss, majority_baseline,
    regression, roc_auc,
};

use super::{UnknownArg, in_sample_warning, made_up_note, missing_target_note, refuse_no_rows};
use serde_json::json;

use super::out::{errln, json_line, outln, write_stdout_text};
use mlp::error::escape_controls;

/// `print!` that never panics nor lets a control character through (see `out`).
macro_rules! outp {
    ($($arg:tt)*) => {
        write_stdout_text(&format!($($arg)*))
    };
}

const EXAMPLE: &str = "Examples:
  mlp eval model.json test.csv
  mlp eval model.json test.csv --json
  mlp eval model.json test.csv --interval 0.9    regression: coverage of the intervals
  zcat test.csv.gz | mlp eval model.json -

Classification: accuracy (beside always answering the most frequent training class),
balanced accuracy, macro F1, log loss, ROC AUC, per-class precision, recall and F1, and a
confusion matrix. Regression: MSE, RMSE, MAE and R². The file needs the target column and
the model's feature columns (by name, in any order); rows whose target is missing are left
out and counted. Missing feature cells and unseen categories are handled as by
`mlp predict`: filled if the model was trained with --missing impute, and encoded with none
of their column's categories on (and counted) unless --unknown-category error.
  mlp eval model.json test.csv --unknown-category error";

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

    /// Regression: also report how many rows lie within the conformal prediction
    /// intervals at LEVEL (such as 0.9) that `mlp predict --interval` gives, and their
    /// mean width
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

pub fn run(args: EvalArgs) -> Result<ExitCode, Error> {
    let mut model = Model::load(&args.model)?;
    let interval = match args.interval {
        Some(level) => Some((level, model.interval(level)?)),
        None => None,
    };
    let scored = score(&args, &mut model)?;
    refuse_no_rows(&args.data, scored.rows, scored.missing_targets)?;
    let in_sample = (args.data.as_os_str() != "-")
        .then(|| in_sample_warning(&model, &args.data))
        .flatten();
    say_notes(&args, &model, &scored, in_sample.as_deref());
    let notes = Notes {
        scored: &scored,
        in_sample: in_sample.is_some(),
    };
    match (
        &scored.predictions,
        scored.truth.as_ref(),
        &model.file.encoding.target,
    ) {
        (
            Predictions::Classes {
                classes,
                probabilities,
            },
            Some(Truth::Classes(truth)),
            TargetEncoding::Classes {
                labels,
                name,
                counts,
            },
        ) => {
            let figures = Figures {
                report: classification(truth, classes, labels),
                log_loss: log_loss(truth, probabilities.view()),
                roc_auc: roc_auc(truth, probabilities.view()),
                baseline: majority_baseline(counts, truth),
            };
            if args.json {
                print_classes_json(&notes, &figures, labels);
            } else {
                print_classes(&args, &scored, &figures, labels, name);
            }
        }
        (
            Predictions::Values(predicted),
            Some(Truth::Values(truth)),
            TargetEncoding::Values { name, .. },
        ) => {
            let report = regression(truth, predicted);
            let members = scored.members.as_ref().map(|m| m.view());
            let interval = (interval.as_ref())
                .map(|(level, i)| (*level, coverage(truth, predicted, i, members)));
            if args.json {
                print_values_json(&notes, &report, interval.as_ref());
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

/// The data as messages name it: its path, or `<stdin>` for `-`.
fn data_name(args: &EvalArgs) -> String {
    if args.data.as_os_str() == "-" {
        STDIN_NAME.into()
    } else {
        args.data.display().to_string()
    }
}

/// The model's predictions for the rows of `args.data` (`-`: standard input, read in
/// chunks), with their targets.
fn score(args: &EvalArgs, model: &mut Model) -> Result<Scored, Error> {
    let unknown = args.unknown_category.into();
    if args.data.as_os_str() == "-" {
        let limit = (args.memory_limit).unwrap_or_else(mlp::pipeline::memory::default_limit);
        let factor = mlp::pipeline::memory::scoring_factor(&model.file.encoding);
        let chunks = Chunks::stdin(StreamBudget::within(limit, factor).chunk_bytes)?;
        Ok(score_chunks(model, chunks, true, unknown)?)
    } else {
        // Plain rows of a regular file (each with a target the model knows) are streamed
        // from disk, as `predict` streams them; anything else takes the general reader.
        if let Some(scored) = score_file_streamed(model, &args.data) {
            return Ok(scored);
        }
        Ok(score_within(
            model,
            &args.data,
            true,
            unknown,
            args.memory_limit,
        )?)
    }
}

/// The notes on standard error (cells filled, unseen categories, rows without a target;
/// not with `--quiet`) and the in-sample warning (always: it says the figures cannot be
/// trusted as they look).
fn say_notes(args: &EvalArgs, model: &Model, scored: &Scored, in_sample: Option<&str>) {
    if !args.quiet {
        let target = model.file.encoding.target.name();
        let notes = (made_up_note(scored).into_iter())
            .chain(missing_target_note(scored.missing_targets, target));
        for note in notes {
            errln!("note: {note}");
        }
    }
    if let Some(warning) = in_sample {
        errln!("{warning}");
    }
}

/// What the JSON output says about the rows besides the figures.
struct Notes<'a> {
    scored: &'a Scored,
    in_sample: bool,
}

impl Notes<'_> {
    /// The fields every JSON report carries.
    fn fields(&self) -> serde_json::Map<String, serde_json::Value> {
        let s = self.scored;
        let columns: serde_json::Map<String, serde_json::Value> = (s.unseen.columns.iter())
            .map(|(name, n)| (name.clone(), json!(n)))
            .collect();
        let fields = json!({
            "rows": s.rows,
            "missing_targets": s.missing_targets,
            "filled_cells": s.filled,
            "unseen_categories": s.unseen.cells,
            "unseen_rows": s.unseen.rows,
            "unseen_columns": columns,
            "in_sample": self.in_sample,
        });
        match fields {
            serde_json::Value::Object(map) => map,
            _ => unreachable!("an object"),
        }
    }
}

/// A classifier's figures on the rows.
struct Figures {
    report: ClassificationReport,
    log_loss: f64,
    /// `None` when the rows hold a single class.
    roc_auc: Option<f64>,
    /// The class most frequent in training, and the accuracy of always answering it here.
    baseline: Option<(usize, f64)>,
}

/// The classification figures as one JSON object.
fn print_classes_json(notes: &Notes, f: &Figures, labels: &[String]) {
    let r = &f.report;
    let mut out = json!({
        "task": "classification",
        "accuracy": r.accuracy,
        "balanced_accuracy": r.balanced_accuracy,
        "macro_f1": r.macro_f1,
        "log_loss": f.log_loss,
        "roc_auc": f.roc_auc,
        "majority_baseline": f.baseline.map(|(c, a)| json!({"class": labels[c], "accuracy": a})),
        "classes": r.classes,
        "labels": labels,
        "confusion": r.confusion,
    });
    if let serde_json::Value::Object(map) = &mut out {
        map.extend(notes.fields());
    }
    outln!("{}", json_line(&out));
}

/// The classification report: accuracy beside the majority-class baseline, the other
/// figures, the per-class table and the confusion matrix.
fn print_classes(args: &EvalArgs, scored: &Scored, f: &Figures, labels: &[String], name: &str) {
    let (r, rows) = (&f.report, scored.rows);
    let correct = (r.accuracy * rows as f64).round() as usize;
    // Labels and the target's name come from files: shown escaped, widths measured so.
    let labels: Vec<String> = labels.iter().map(|l| escape_controls(l)).collect();
    outln!(
        "{}: {rows} rows, classification of '{}'",
        data_name(args),
        escape_controls(name)
    );
    let baseline = f.baseline.map_or(String::new(), |(c, a)| {
        format!("; always \"{}\": {a:.4}", labels[c])
    });
    outln!(
        "accuracy:          {:.4} ({correct}/{rows}{baseline})",
        r.accuracy
    );
    outln!("balanced accuracy: {:.4}", r.balanced_accuracy);
    outln!("macro F1:          {:.4}", r.macro_f1);
    outln!("log loss:          {:.4}", f.log_loss);
    let auc = match f.roc_auc {
        Some(auc) if labels.len() == 2 => format!("{auc:.4} (of '{}')", labels[1]),
        Some(auc) => format!("{auc:.4} (macro, each class against the rest)"),
        None => "- (the rows hold one class)".to_string(),
    };
    outln!("ROC AUC:           {auc}");
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
            escape_controls(&c.label),
            c.precision,
            c.recall,
            c.f1,
            c.support
        );
    }
    outln!();
    print_confusion(&labels, &r.confusion, w);
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
fn print_values_json(notes: &Notes, r: &RegressionReport, interval: Option<&(f64, Coverage)>) {
    let mut out = json!({
        "task": "regression",
        "mse": r.mse,
        "rmse": r.rmse,
        "mae": r.mae,
        "r2": r.r2,
    });
    if let Some((level, c)) = interval {
        out["interval"] = json!({
            "level": level,
            "coverage": c.coverage,
            "covered": c.covered,
            "mean_width": c.mean_width,
        });
    }
    if let serde_json::Value::Object(map) = &mut out {
        map.extend(notes.fields());
    }
    outln!("{}", json_line(&out));
}

/// The regression report: MSE, RMSE, MAE and R².
fn print_values(args: &EvalArgs, scored: &Scored, r: &RegressionReport, name: &str) {
    outln!(
        "{}: {} rows, regression of '{}'",
        data_name(args),
        scored.rows,
        escape_controls(name)
    );
    outln!("MSE:  {:.6}", r.mse);
    outln!("RMSE: {:.6}", r.rmse);
    outln!("MAE:  {:.6}", r.mae);
    outln!("R²:   {:.4}", r.r2);
}
