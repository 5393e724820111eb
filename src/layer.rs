//! The [`Layer`] trait: one step of a network, with its forward pass and its derivative.

use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

/// One parameter tensor of a layer and its gradient, as an optimizer sees them.
///
/// `value` and `grad` have the same length and element order, so an optimizer is one flat
/// loop over `value[i]` and `grad[i]`.
pub struct Param<'a> {
    /// `"weight"` or `"bias"`.
    pub name: &'static str,
    /// The parameter's values, row-major.
    pub value: &'a mut [f32],
    /// dL/d(value) from the last `backward`, same layout as `value`. Mutable so that a step
    /// between `backward` and the optimizer can change it (data-parallel training sums it
    /// over processes; see `train::Batches`).
    pub grad: &'a mut [f32],
    /// Whether L2 weight decay applies (weights yes, biases no, as in scikit-learn).
    pub decay: bool,
}

/// A layer of a network.
///
/// # Contract
/// * [`forward`](Layer::forward) computes the output for a batch and caches exactly what
///   `backward` needs (a copy of the input for [`Linear`](crate::Linear), the output for
///   [`Sigmoid`](crate::Sigmoid)).
/// * [`backward`](Layer::backward) takes dL/d(output) for the batch of the last `forward`,
///   **assigns** (does not accumulate) the gradients of the layer's parameters, and returns
///   dL/d(input) for the layer below. There is no `zero_grad`: every `backward` overwrites.
/// * Outputs are views into buffers the layer owns. They are sized on the first call and
///   reused, so a training step at a fixed batch size does not touch the heap.
///
/// # Shapes
/// `B` rows (one per sample), `I` input features, `O` output features:
/// `forward: (B, I) → (B, O)`, `backward: (B, O) → (B, I)`.
pub trait Layer: Send {
    /// Computes the layer's output for `input` and remembers what `backward` needs.
    fn forward(&mut self, input: ArrayView2<f32>) -> ArrayView2<'_, f32>;

    /// Given dL/d(output), stores the parameter gradients and returns dL/d(input).
    ///
    /// **Panics** if called before `forward`, or with a shape other than the last output's.
    fn backward(&mut self, grad_output: ArrayView2<f32>) -> ArrayView2<'_, f32>;

    /// Like [`backward`](Layer::backward) for the first layer of a model, whose dL/d(input)
    /// nobody needs: layers for which that product is expensive skip it.
    fn backward_params_only(&mut self, grad_output: ArrayView2<f32>) {
        self.backward(grad_output);
    }

    /// Calls `visit` on each parameter with its gradient, always in the same order.
    fn visit_params(&mut self, _visit: &mut dyn FnMut(Param<'_>)) {}

    /// Number of trainable numbers in the layer.
    fn param_count(&self) -> usize {
        0
    }

    /// What the layer is, for summaries and model files.
    fn spec(&self) -> LayerSpec;
}

/// The kind and size of a layer: enough to rebuild it (its weights travel separately).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LayerSpec {
    /// [`Linear`](crate::Linear) with `inputs` → `outputs` features.
    Linear {
        /// Input features.
        inputs: usize,
        /// Output features.
        outputs: usize,
    },
    /// [`Sigmoid`](crate::Sigmoid).
    Sigmoid,
    /// [`Relu`](crate::Relu).
    Relu,
    /// [`Tanh`](crate::Tanh).
    Tanh,
}

impl std::fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerSpec::Linear { inputs, outputs } => write!(f, "Linear({inputs} → {outputs})"),
            LayerSpec::Sigmoid => write!(f, "Sigmoid"),
            LayerSpec::Relu => write!(f, "ReLU"),
            LayerSpec::Tanh => write!(f, "Tanh"),
        }
    }
}

/// A `(rows, cols)` view of `buf`, reallocating only when `buf` is too small.
///
/// Layers keep one buffer per cached array and call this at the top of every pass, so the
/// heap is touched only when the batch grows (or the width changes).
pub(crate) fn resize_rows(
    buf: &mut Array2<f32>,
    rows: usize,
    cols: usize,
) -> ArrayViewMut2<'_, f32> {
    if buf.nrows() < rows || buf.ncols() != cols {
        *buf = Array2::zeros((rows, cols));
    }
    // The first rows of a standard-layout buffer are a prefix of its storage; taking them
    // as a slice is much cheaper than ndarray's general slicing (it matters for tiny nets).
    let data = buf
        .as_slice_mut()
        .expect("layer buffers are standard layout");
    ArrayViewMut2::from_shape((rows, cols), &mut data[..rows * cols]).expect("a prefix of rows")
}

/// The first `rows` rows of `buf`.
pub(crate) fn rows_of(buf: &Array2<f32>, rows: usize) -> ArrayView2<'_, f32> {
    let cols = buf.ncols();
    let data = buf.as_slice().expect("layer buffers are standard layout");
    ArrayView2::from_shape((rows, cols), &data[..rows * cols]).expect("a prefix of rows")
}
