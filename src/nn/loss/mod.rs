//! Losses: a number for how wrong a batch of predictions is, and its gradient.
//!
//! Kept apart from the layers: a loss compares the network's output with a target and
//! starts the backward pass with dL/d(prediction).

mod cross_entropy;
mod mse;

pub use cross_entropy::{
    SoftmaxCrossEntropy, balanced_class_weights, softmax_rows, softmax_rows_tempered,
};
pub use mse::Mse;

use ndarray::ArrayView2;

use crate::error::Result;

/// What a prediction is compared with.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// One row per sample, same shape as the prediction (regression values, or one-hot /
    /// probability rows for [`SoftmaxCrossEntropy`]).
    Dense(ArrayView2<'a, f32>),
    /// One class index per sample (only for [`SoftmaxCrossEntropy`]).
    Classes(&'a [usize]),
}

impl<'a> From<ArrayView2<'a, f32>> for Target<'a> {
    fn from(values: ArrayView2<'a, f32>) -> Self {
        Target::Dense(values)
    }
}

impl<'a> From<&'a [usize]> for Target<'a> {
    fn from(classes: &'a [usize]) -> Self {
        Target::Classes(classes)
    }
}

/// A loss function.
///
/// [`forward`](Loss::forward) returns the loss (the mean over the batch) and keeps
/// dL/d(prediction); [`backward`](Loss::backward) returns it. The gradient buffer is reused,
/// so neither call touches the heap once sized for a batch.
pub trait Loss: Send {
    /// The loss of `prediction` (B, O) against `target`.
    ///
    /// A target whose shape differs from the prediction's is refused with
    /// [`Error::Shape`](crate::Error::Shape), never broadcast.
    fn forward(&mut self, prediction: ArrayView2<f32>, target: Target<'_>) -> Result<f32>;

    /// dL/d(prediction) from the last [`forward`](Loss::forward), shape (B, O).
    ///
    /// **Panics** if called before `forward`.
    fn backward(&self) -> ArrayView2<'_, f32>;
}
