//! `mlp export`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mlp::Error;
use mlp::error::Setting;
use mlp::export::{Format, Interval, export_with};
use mlp::fsutil::{check_output_path, same_file, write_output};
use mlp::tabular::model::Model;

use super::out::errln;

const EXAMPLE: &str = "Examples:
  mlp export model.json --output model.onnx        for onnxruntime (Python, C#, JavaScript, ...)
  mlp export model.json --output model.rs          one Rust file, no dependencies
  mlp export model.json --output model.onnx --interval 0.9   regression: lower, upper too

The format comes from the output's extension (.onnx, .rs) unless --format says.
The ONNX graph takes one input per feature column, named as in the CSV: numbers as
float32 [N, 1], text as string [N, 1]. It gives `label` and `probabilities` for a
classifier (calibrated as `mlp predict --proba`), `prediction` for a regression model,
and with --interval also `lower` and `upper` (the Rust file: `predict_interval`).";

/// Write a model as ONNX or as a self-contained Rust source file
#[derive(Args, Debug)]
#[command(after_help = super::MORE, after_long_help = EXAMPLE)]
pub struct ExportArgs {
    /// A model written by `mlp train`
    #[arg(value_name = "MODEL")]
    model: PathBuf,

    /// `onnx` or `rust` (default: from the output's extension)
    #[arg(long, short, value_name = "FORMAT")]
    format: Option<String>,

    /// Where to write the exported model
    #[arg(long, short, value_name = "PATH")]
    output: PathBuf,

    /// Regression: also give the conformal prediction interval at LEVEL (such as 0.9), as
    /// `mlp predict --interval` does: ONNX outputs `lower` and `upper`, a Rust function
    /// `predict_interval`
    #[arg(long, value_name = "LEVEL", allow_negative_numbers = true)]
    interval: Option<f64>,

    /// No "wrote" line on standard error (errors and warnings still)
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: ExportArgs) -> Result<ExitCode, Error> {
    let extension = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let format = match (args.format.as_deref(), extension.as_deref()) {
        (Some("onnx"), _) | (None, Some("onnx")) => Format::Onnx,
        (Some("rust" | "rs"), _) | (None, Some("rs")) => Format::Rust,
        (Some(other), _) => {
            return Err(Error::config(
                Setting::Format,
                other,
                "mlp exports `onnx` and `rust`",
                "use --format onnx (for onnxruntime) or --format rust (one Rust source file)",
            ));
        }
        (None, _) => {
            return Err(Error::config(
                Setting::Format,
                "",
                format!("cannot tell the format from '{}'", args.output.display()),
                "pass --format onnx or --format rust, or name the output .onnx or .rs",
            ));
        }
    };
    if same_file(&args.output, &args.model) {
        return Err(Error::config(
            Setting::Output,
            args.output.display(),
            "this is the model file",
            "choose another path for the export, such as model.onnx",
        ));
    }
    check_output_path(&args.output)?;
    let model = Model::load(&args.model)?;
    mlp::export::check_exportable(&model.file, &args.model)?;
    let interval = match args.interval {
        Some(level) => Some(Interval {
            level,
            interval: model.interval(level)?,
        }),
        None => None,
    };
    write_output(&args.output, &export_with(&model.file, format, interval))?;
    let what = match format {
        Format::Onnx => "ONNX model",
        Format::Rust => "Rust source",
    };
    if !args.quiet {
        errln!("wrote {what} to {}", args.output.display());
    }
    Ok(ExitCode::SUCCESS)
}
