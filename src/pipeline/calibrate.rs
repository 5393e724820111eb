//! After training, what the held-out rows say about the model's errors (see
//! [`crate::tabular::calibration`]): every row of a k-fold ensemble is scored by the network
//! that did not train on it; one network is scored on its validation rows.
//!
//! For classes the temperature is fitted on each held-out row's *own network's* outputs,
//! and the model applies it the same way: it divides every network's outputs by `T` and
//! averages the networks' softmax probabilities (`predict`, `eval`, the ONNX and Rust
//! exports alike). For values, the residuals are the held-out predictions' `|y − ŷ|` in the
//! target's units, and an interval is the model's (ensemble's) prediction ± their conformal
//! quantile.

use ndarray::{Array2, ArrayView2, s};

use crate::nn::sequential::Sequential;
use crate::tabular::calibration::{Calibration, Residuals};
use crate::tabular::encoding::{Encoding, Targets};
use crate::train::{CalibrationMethod, TrainConfig};

/// Rows through a network at a time.
const CHUNK: usize = 512;

/// The raw outputs of `network` (in inference mode) for every row of `x`: (rows, outputs).
pub fn raw_outputs(network: &mut Sequential, x: ArrayView2<f32>) -> Array2<f32> {
    network.set_training(false);
    let rows = x.nrows();
    let mut out: Option<Array2<f32>> = None;
    for start in (0..rows).step_by(CHUNK) {
        let end = (start + CHUNK).min(rows);
        let part = network.forward(x.slice(s![start..end, ..]));
        let all = out.get_or_insert_with(|| Array2::zeros((rows, part.ncols())));
        all.slice_mut(s![start..end, ..]).assign(&part);
    }
    out.unwrap_or_else(|| Array2::zeros((0, 0)))
}

/// What the model file keeps of the held-out rows: the networks' raw `outputs` for them
/// (each row's from a network that did not train on it) and their targets `y`.
/// Classes get a temperature (with [`CalibrationMethod::Temperature`]); values, their
/// residuals.
pub fn held_out(
    config: &TrainConfig,
    encoding: &Encoding,
    outputs: ArrayView2<f32>,
    y: &Targets,
) -> (Calibration, Option<Residuals>) {
    match y {
        Targets::Classes(classes) => {
            let calibration = match config.calibration {
                CalibrationMethod::Temperature if !classes.is_empty() => {
                    Calibration::fit(outputs, classes)
                }
                _ => Calibration::default(),
            };
            (calibration, None)
        }
        Targets::Values(v) if v.nrows() > 0 => {
            let predicted = encoding.values_from_outputs(outputs);
            let truth = encoding.values_from_outputs(v.view());
            let residuals = predicted.iter().zip(&truth).map(|(p, t)| t - p);
            (Calibration::default(), Some(Residuals::new(residuals)))
        }
        Targets::Values(_) => (Calibration::default(), None),
    }
}
