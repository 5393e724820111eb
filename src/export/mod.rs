//! Taking a model out of `mlp`: an ONNX graph of the whole pipeline for onnxruntime and
//! friends, or one dependency-free Rust source file.
//!
//! Both start from a loaded (so validated) [`ModelFile`] and reproduce what
//! `mlp predict` computes: the same reading of a cell ([`crate::data::cell`]),
//! standardisation, one-hot encoding, network and outputs.

pub mod onnx;
mod proto;
pub mod rust;

use std::path::Path;

use crate::error::{Error, Hint, Result, Setting};
use crate::fsutil::write_output;
use crate::tabular::encoding::Feature;
use crate::tabular::model::ModelFile;

/// What to export a model as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// An ONNX model (`.onnx`): opset 20 plus `ai.onnx.ml` 3 (onnxruntime 1.17 or later).
    Onnx,
    /// One self-contained Rust source file (`.rs`).
    Rust,
}

/// A conformal prediction interval to export with a regression model: `lower` and `upper`
/// outputs, as [`crate::tabular::calibration::Interval::bounds`] computes them.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// The share of new rows whose value the interval should hold, such as 0.9.
    pub level: f64,
    /// The interval at `level` ([`crate::tabular::model::Model::interval`]).
    pub interval: crate::tabular::calibration::Interval,
}

/// Refuses what the exports do not reproduce yet: robustly scaled features ([`Feature::Robust`], also as a date's part). [`export`] expects a model that passed.
/// The error names the model file, `model`.
pub fn check_exportable(file: &ModelFile, model: &Path) -> Result<()> {
    let refuse = |what: String| {
        Err(Error::model_with_hint(
            model,
            format!("{what}, which export does not reproduce yet"),
            Hint::text("retrain it with the standard ")
                .name(Setting::Scaling)
                .then(" (leave out --scaling robust)"),
        ))
    };
    if let Some(f) = (file.encoding.features.iter()).find(|f| matches!(f, Feature::Robust { .. })) {
        return refuse(format!("feature '{}' is robustly scaled", f.name()));
    }
    let robust_date = |f: &&Feature| match f {
        Feature::Date { parts, .. } => {
            (parts.iter()).any(|p| matches!(p.scale, Feature::Robust { .. }))
        }
        _ => false,
    };
    if let Some(f) = file.encoding.features.iter().find(robust_date) {
        return refuse(format!("date feature '{}' is robustly scaled", f.name()));
    }

    Ok(())
}

/// The exported model's bytes, for a model that passed [`check_exportable`].
pub fn export(file: &ModelFile, format: Format) -> Vec<u8> {
    export_with(file, format, None)
}

/// [`export`], a regression model with its prediction `interval`.
///
/// **Panics** if `interval` is given for a classifier.
pub fn export_with(file: &ModelFile, format: Format, interval: Option<Interval>) -> Vec<u8> {
    match format {
        Format::Onnx => onnx::to_onnx_with(file, interval),
        Format::Rust => rust::to_rust_with(file, interval).into_bytes(),
    }
}

/// Writes the exported model of the model file `model` to `path` atomically: a file already
/// there is replaced whole or left as it was.
pub fn export_to(file: &ModelFile, model: &Path, format: Format, path: &Path) -> Result<()> {
    check_exportable(file, model)?;
    write_output(path, &export(file, format))
}
