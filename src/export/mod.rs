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

/// Refuses what the exports do not reproduce yet: robustly scaled features ([`Feature::Robust`], also as a date's part). [`export`] expects a model that passed.
pub fn check_exportable(file: &ModelFile) -> Result<()> {
    let refuse = |what: String| {
        Err(Error::config(
            Setting::Model,
            "",
            format!("{what}, which export does not reproduce yet"),
            Hint::text("retrain with the standard ").name(Setting::Scaling),
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
    match format {
        Format::Onnx => onnx::to_onnx(file),
        Format::Rust => rust::to_rust(file).into_bytes(),
    }
}

/// Writes the exported model to `path` atomically: a file already there is replaced whole
/// or left as it was.
pub fn export_to(file: &ModelFile, format: Format, path: &Path) -> Result<()> {
    check_exportable(file)?;
    write_output(path, &export(file, format))
}
