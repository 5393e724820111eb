//! What every element-wise activation does with its function `f` and derivative `df`:
//! forward `y = f(x)`, keeping `y`; backward `dx = dy ⊙ df(y)`.

use ndarray::{Array2, ArrayView2};

use crate::nn::layer::resized;
use crate::nn::linalg::{map_into, zip_map_into};

/// Output and input-gradient arrays of an activation whose derivative is a function of its
/// output, `dy/dx = df(y)`.
pub(crate) struct Elementwise {
    output: Array2<f32>,     // (B, N): y = f(x), kept for backward
    grad_input: Array2<f32>, // (B, N)
}

impl Elementwise {
    pub(crate) fn new() -> Self {
        Self {
            output: Array2::zeros((0, 0)),
            grad_input: Array2::zeros((0, 0)),
        }
    }

    /// `y = f(x)` element by element; keeps `y`.
    pub(crate) fn forward(
        &mut self,
        input: ArrayView2<f32>,
        f: impl Fn(f32) -> f32 + Sync,
    ) -> ArrayView2<'_, f32> {
        let (rows, cols) = input.dim();
        map_into(input, resized(&mut self.output, rows, cols), f);
        self.output.view()
    }

    /// `dx = dy ⊙ df(y)`, with `y` the output kept by `forward`.
    pub(crate) fn backward(
        &mut self,
        layer: &str,
        grad_output: ArrayView2<f32>,
        df: impl Fn(f32) -> f32 + Sync,
    ) -> ArrayView2<'_, f32> {
        let (rows, cols) = self.output.dim();
        assert!(
            grad_output.dim() == (rows, cols),
            "{layer}::backward called before forward, or on another batch: grad_output is \
             {:?}, the last output {:?}",
            grad_output.dim(),
            (rows, cols)
        );
        let grad_input = resized(&mut self.grad_input, rows, cols);
        zip_map_into(grad_output, self.output.view(), grad_input, |dy, y| {
            dy * df(y)
        });
        self.grad_input.view()
    }
}
