//! The buffers every element-wise activation needs: its output (which is also what its
//! derivative is computed from) and the gradient it hands down.

use ndarray::{Array2, ArrayView2, Zip};

use crate::layer::{resize_rows, rows_of};

/// Output and input-gradient buffers of an activation whose derivative is a function of its
/// output, `dy/dx = df(y)`.
pub(crate) struct Elementwise {
    output: Array2<f32>,     // (B, N): y = f(x), kept for backward
    grad_input: Array2<f32>, // (B, N)
    rows: Option<usize>,
}

impl Elementwise {
    pub(crate) fn new() -> Self {
        Self {
            output: Array2::zeros((0, 0)),
            grad_input: Array2::zeros((0, 0)),
            rows: None,
        }
    }

    /// `y = f(x)` element by element; keeps `y`.
    pub(crate) fn forward(
        &mut self,
        input: ArrayView2<f32>,
        f: impl Fn(f32) -> f32 + Sync,
    ) -> ArrayView2<'_, f32> {
        let (rows, cols) = input.dim();
        let mut output = resize_rows(&mut self.output, rows, cols);
        match (output.as_slice_mut(), input.as_slice()) {
            (Some(y), Some(x)) => crate::parallel::zip_mut(y, x, &|y, x| {
                for (y, &x) in y.iter_mut().zip(x) {
                    *y = f(x);
                }
            }),
            _ => Zip::from(&mut output)
                .and(&input)
                .for_each(|y, &x| *y = f(x)),
        }
        self.rows = Some(rows);
        rows_of(&self.output, rows)
    }

    /// `dx = dy ⊙ df(y)`, with `y` the output kept by `forward`.
    pub(crate) fn backward(
        &mut self,
        layer: &str,
        grad_output: ArrayView2<f32>,
        df: impl Fn(f32) -> f32 + Sync,
    ) -> ArrayView2<'_, f32> {
        let rows = self
            .rows
            .unwrap_or_else(|| panic!("{layer}::backward called before forward"));
        let output = rows_of(&self.output, rows);
        assert_eq!(
            grad_output.dim(),
            output.dim(),
            "{layer}::backward: grad_output shape differs from the last output's"
        );
        let mut grad_input = resize_rows(&mut self.grad_input, rows, output.ncols());
        match (
            grad_input.as_slice_mut(),
            grad_output.as_slice(),
            output.as_slice(),
        ) {
            (Some(dx), Some(dy), Some(y)) => crate::parallel::zip2_mut(dx, dy, y, &|dx, dy, y| {
                for ((dx, &dy), &y) in dx.iter_mut().zip(dy).zip(y) {
                    *dx = dy * df(y);
                }
            }),
            _ => Zip::from(&mut grad_input)
                .and(&grad_output)
                .and(&output)
                .for_each(|dx, &dy, &y| *dx = dy * df(y)),
        }
        rows_of(&self.grad_input, rows)
    }
}
