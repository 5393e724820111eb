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
/// * Outputs are views into arrays the layer owns. They are sized on the first call and
///   reused while the batch shape stays the same.
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

    /// Switches between training (`true`) and predicting (`false`). Only layers that behave
    /// differently, like [`Dropout`](crate::Dropout), care; the default does nothing.
    fn set_training(&mut self, _training: bool) {}

    /// Number of trainable numbers in the layer.
    fn param_count(&self) -> usize {
        0
    }

    /// What the layer is, for summaries and model files.
    fn spec(&self) -> LayerSpec;
}

/// The kind and size of a layer: enough to rebuild it (its weights travel separately).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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
    /// [`Dropout`](crate::Dropout) zeroing a fraction `rate` of its inputs while training.
    Dropout {
        /// The fraction of elements zeroed while training.
        rate: f32,
    },
}

impl std::fmt::Display for LayerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayerSpec::Linear { inputs, outputs } => write!(f, "Linear({inputs} → {outputs})"),
            LayerSpec::Sigmoid => write!(f, "Sigmoid"),
            LayerSpec::Relu => write!(f, "ReLU"),
            LayerSpec::Tanh => write!(f, "Tanh"),
            LayerSpec::Dropout { rate } => write!(f, "Dropout(p = {rate})"),
        }
    }
}

/// `buf` as a `(rows, cols)` array, ready to be overwritten: its values are whatever the
/// last pass left there (zeros where it grew), and every caller writes all of them.
///
/// Layers and losses keep one array per cached value and call this at the top of every
/// pass. A new shape (an epoch's last, smaller batch, or the validation rows) reuses the
/// array's allocation, so that training, which goes through three shapes every epoch, asks
/// the heap for memory only when a shape outgrows every earlier one. (Freeing and
/// allocating again each time cost a sixth of a small fit in page faults, once the
/// allocator had handed the memory back to the system.)
pub(crate) fn resized(buf: &mut Array2<f32>, rows: usize, cols: usize) -> ArrayViewMut2<'_, f32> {
    if buf.dim() != (rows, cols) {
        let (mut values, _) = std::mem::take(buf).into_raw_vec_and_offset();
        values.resize(rows * cols, 0.0);
        *buf = Array2::from_shape_vec((rows, cols), values).expect("rows × cols values");
    }
    buf.view_mut()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resized_reuses_the_allocation() {
        let mut buf = Array2::<f32>::zeros((0, 0));
        assert!(resized(&mut buf, 4, 3).iter().all(|&v| v == 0.0));
        resized(&mut buf, 4, 3).fill(7.0);
        let at = buf.as_ptr();
        // The same shape is left as it was, to be overwritten.
        assert_eq!(resized(&mut buf, 4, 3)[[3, 2]], 7.0);
        // A smaller shape, then the first again: the same memory.
        assert_eq!(resized(&mut buf, 2, 5).dim(), (2, 5));
        assert_eq!(buf.as_ptr(), at);
        assert_eq!(resized(&mut buf, 4, 3).dim(), (4, 3));
        assert_eq!(buf.as_ptr(), at);
    }
}
