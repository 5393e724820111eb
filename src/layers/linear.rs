//! [`Linear`]: `y = x·W + b`.

use ndarray::{Array1, Array2, ArrayView2};
use ndarray_rand::RandomExt;
use ndarray_rand::rand::Rng;
use ndarray_rand::rand_distr::{Normal, Uniform};

use crate::layer::{Layer, LayerSpec, Param, resize_rows, rows_of};
use crate::linalg::{matmul, matmul_bias};

/// How a [`Linear`] layer's weights start out. Biases always start at zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Glorot/Xavier uniform: `U(-a, a)` with `a = sqrt(6 / (inputs + outputs))`.
    /// Keeps the variance of activations and gradients level for sigmoid and tanh.
    Glorot,
    /// He/Kaiming normal: `N(0, sqrt(2 / inputs))`. Makes up for ReLU zeroing half its inputs.
    He,
    /// All zeros. Only for an output layer: the layers below must break the symmetry.
    Zeros,
}

/// A fully connected layer: `y = x·W + b`.
///
/// Weights are stored `(inputs, outputs)` so that with one sample per row the forward pass is
/// a single product `x·W` and no transpose is needed.
///
/// * forward: `y = x·W + b`
/// * backward: `dW = xᵀ·dy`, `db = Σ_rows dy`, `dx = dy·Wᵀ`
///
/// ```
/// use mlp::{Layer, Linear};
/// use ndarray::array;
///
/// let mut layer = Linear::from_weights(array![[1.0, 2.0], [3.0, 4.0]], array![0.5, -0.5]);
/// let y = layer.forward(array![[1.0, 1.0]].view()).to_owned();
/// assert_eq!(y, array![[4.5, 5.5]]);
/// let dx = layer.backward(array![[1.0, 0.0]].view()).to_owned();
/// assert_eq!(dx, array![[1.0, 3.0]]); // first column of W, as a row
/// ```
pub struct Linear {
    weight: Array2<f32>,      // (I, O)
    bias: Array1<f32>,        // (O)
    grad_weight: Array2<f32>, // (I, O)
    grad_bias: Array1<f32>,   // (O)
    input: Array2<f32>,       // (B, I) copy of the last forward's input: backward needs it for dW
    output: Array2<f32>,      // (B, O)
    grad_input: Array2<f32>,  // (B, I)
    rows: Option<usize>,      // B of the last forward; None until the first
}

impl Linear {
    /// A layer with `inputs → outputs` features, weights drawn by `init` from `rng`.
    pub fn new<R: Rng + ?Sized>(inputs: usize, outputs: usize, init: Init, rng: &mut R) -> Self {
        let weight = match init {
            Init::Glorot => {
                let a = (6.0 / (inputs + outputs) as f32).sqrt();
                let dist = Uniform::new_inclusive(-a, a).expect("a finite, non-empty range");
                Array2::random_using((inputs, outputs), dist, rng)
            }
            Init::He => {
                let std = (2.0 / inputs as f32).sqrt();
                let dist = Normal::new(0.0, std).expect("a finite, positive deviation");
                Array2::random_using((inputs, outputs), dist, rng)
            }
            Init::Zeros => Array2::zeros((inputs, outputs)),
        };
        Self::from_weights(weight, Array1::zeros(outputs))
    }

    /// A layer with the given weight `(inputs, outputs)` and bias `(outputs)`.
    ///
    /// **Panics** if `bias.len() != weight.ncols()`.
    pub fn from_weights(weight: Array2<f32>, bias: Array1<f32>) -> Self {
        assert_eq!(
            bias.len(),
            weight.ncols(),
            "Linear::from_weights: bias has {} entries but the weight has {} output columns",
            bias.len(),
            weight.ncols()
        );
        let (inputs, outputs) = weight.dim();
        Self {
            grad_weight: Array2::zeros((inputs, outputs)),
            grad_bias: Array1::zeros(outputs),
            weight: weight.as_standard_layout().into_owned(),
            bias,
            input: Array2::zeros((0, inputs)),
            output: Array2::zeros((0, outputs)),
            grad_input: Array2::zeros((0, inputs)),
            rows: None,
        }
    }

    /// Number of input features.
    pub fn inputs(&self) -> usize {
        self.weight.nrows()
    }

    /// Number of output features.
    pub fn outputs(&self) -> usize {
        self.weight.ncols()
    }

    /// The weight matrix `(inputs, outputs)`.
    pub fn weight(&self) -> &Array2<f32> {
        &self.weight
    }

    /// The bias `(outputs)`.
    pub fn bias(&self) -> &Array1<f32> {
        &self.bias
    }

    /// dL/dW from the last `backward`.
    pub fn grad_weight(&self) -> &Array2<f32> {
        &self.grad_weight
    }

    /// dL/db from the last `backward`.
    pub fn grad_bias(&self) -> &Array1<f32> {
        &self.grad_bias
    }

    /// dW and db for `grad_output`; returns the batch size of the last forward.
    fn param_grads(&mut self, grad_output: ArrayView2<f32>) -> usize {
        let rows = self.rows.expect("Linear::backward called before forward");
        assert_eq!(
            grad_output.dim(),
            (rows, self.outputs()),
            "Linear::backward: grad_output shape differs from the last output's"
        );
        let input = rows_of(&self.input, rows);
        // (I, O) = (I, B)·(B, O); the transpose is a strided view, not a copy.
        matmul(
            input.t(),
            grad_output,
            0.0,
            &mut self.grad_weight.view_mut(),
        );
        // db = Σ_rows dy, one row at a time (contiguous rows: plain slices, no per-row
        // iterator set-up, which costs more than the sum for small layers).
        let db = self.grad_bias.as_slice_mut().expect("contiguous");
        match grad_output.as_slice() {
            Some(all) if !db.is_empty() => {
                // Threads take ranges of columns; each column is summed over the rows in
                // order, so the split does not change the sums.
                let cols = db.len();
                let shared = crate::parallel::Shared::new(db);
                crate::parallel::for_ranges_weighted(cols, all.len(), &|range| {
                    // SAFETY: the ranges are disjoint parts of `db`.
                    let db = unsafe { shared.part(range.clone()) };
                    db.fill(0.0);
                    for row in all.chunks_exact(cols) {
                        for (d, &g) in db.iter_mut().zip(&row[range.clone()]) {
                            *d += g;
                        }
                    }
                });
            }
            _ => {
                db.fill(0.0);
                for row in grad_output.rows() {
                    for (d, &g) in db.iter_mut().zip(row) {
                        *d += g;
                    }
                }
            }
        }
        rows
    }
}

impl Layer for Linear {
    /// # Shapes
    /// `input` (B, I) → output (B, O).
    ///
    /// **Panics** if `input` does not have `inputs()` columns.
    fn forward(&mut self, input: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        let (rows, cols) = input.dim();
        assert_eq!(
            cols,
            self.inputs(),
            "Linear({} → {}) got an input with {cols} columns",
            self.inputs(),
            self.outputs()
        );
        let mut cache = resize_rows(&mut self.input, rows, cols);
        match (cache.as_slice_mut(), input.as_slice()) {
            (Some(to), Some(from)) => {
                crate::parallel::zip_mut(to, from, &|to, from| to.copy_from_slice(from))
            }
            _ => cache.assign(&input),
        }
        let outputs = self.outputs();
        let mut output = resize_rows(&mut self.output, rows, outputs);
        // The bias is added as the product is stored: one pass over the output.
        matmul_bias(input, self.weight.view(), self.bias.view(), &mut output);
        self.rows = Some(rows);
        rows_of(&self.output, rows)
    }

    /// # Shapes
    /// `grad_output` (B, O) → grad_input (B, I).
    fn backward(&mut self, grad_output: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        let rows = self.param_grads(grad_output);
        let inputs = self.inputs();
        let mut grad_input = resize_rows(&mut self.grad_input, rows, inputs);
        // (B, I) = (B, O)·(O, I)
        matmul(grad_output, self.weight.t(), 0.0, &mut grad_input);
        rows_of(&self.grad_input, rows)
    }

    fn backward_params_only(&mut self, grad_output: ArrayView2<f32>) {
        self.param_grads(grad_output);
    }

    fn visit_params(&mut self, visit: &mut dyn FnMut(Param<'_>)) {
        visit(Param {
            name: "weight",
            value: self
                .weight
                .as_slice_mut()
                .expect("weights are kept contiguous"),
            grad: self
                .grad_weight
                .as_slice_mut()
                .expect("gradients are kept contiguous"),
            decay: true,
        });
        visit(Param {
            name: "bias",
            value: self
                .bias
                .as_slice_mut()
                .expect("biases are kept contiguous"),
            grad: self
                .grad_bias
                .as_slice_mut()
                .expect("gradients are kept contiguous"),
            decay: false,
        });
    }

    fn param_count(&self) -> usize {
        self.weight.len() + self.bias.len()
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::Linear {
            inputs: self.inputs(),
            outputs: self.outputs(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // reference values as NumPy/PyTorch printed them
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::array;
    use ndarray_rand::rand::{SeedableRng, rngs::StdRng};

    // NumPy (float32):
    //   W = [[.1,-.2,.3],[.4,.5,-.6]]; b = [.01,.02,.03]; x = [[1,2],[-1,.5]]
    //   g = [[1,0,-1],[.5,2,0]]
    //   x@W+b -> [[.91,.82,-.87],[.11,.47,-.57]]
    //   x.T@g -> [[.5,-2,-1],[2.25,1,-2]];  g.sum(0) -> [1.5,2,-1];  g@W.T -> [[-.2,1],[-.35,1.2]]
    fn layer() -> Linear {
        Linear::from_weights(
            array![[0.1, -0.2, 0.3], [0.4, 0.5, -0.6]],
            array![0.01, 0.02, 0.03],
        )
    }

    #[test]
    fn forward_is_x_w_plus_b() {
        let mut l = layer();
        let y = l.forward(array![[1.0, 2.0], [-1.0, 0.5]].view()).to_owned();
        assert_abs_diff_eq!(
            y,
            array![[0.91, 0.82, -0.87], [0.11, 0.47, -0.57]],
            epsilon = 1e-6
        );
    }

    #[test]
    fn backward_gives_weight_bias_and_input_gradients() {
        let mut l = layer();
        l.forward(array![[1.0, 2.0], [-1.0, 0.5]].view());
        let dx = l
            .backward(array![[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]].view())
            .to_owned();
        assert_abs_diff_eq!(dx, array![[-0.2, 1.0], [-0.35, 1.2]], epsilon = 1e-6);
        assert_abs_diff_eq!(
            *l.grad_weight(),
            array![[0.5, -2.0, -1.0], [2.25, 1.0, -2.0]],
            epsilon = 1e-6
        );
        assert_abs_diff_eq!(*l.grad_bias(), array![1.5, 2.0, -1.0], epsilon = 1e-6);
    }

    #[test]
    fn backward_assigns_rather_than_accumulates() {
        let mut l = layer();
        let x = array![[1.0, 2.0], [-1.0, 0.5]];
        let g = array![[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]];
        for _ in 0..3 {
            l.forward(x.view());
            l.backward(g.view());
        }
        assert_abs_diff_eq!(*l.grad_bias(), array![1.5, 2.0, -1.0], epsilon = 1e-6);
    }

    #[test]
    fn backward_params_only_matches_backward() {
        let (mut a, mut b) = (layer(), layer());
        let x = array![[1.0, 2.0], [-1.0, 0.5]];
        let g = array![[1.0, 0.0, -1.0], [0.5, 2.0, 0.0]];
        a.forward(x.view());
        a.backward(g.view());
        b.forward(x.view());
        b.backward_params_only(g.view());
        assert_eq!(a.grad_weight(), b.grad_weight());
        assert_eq!(a.grad_bias(), b.grad_bias());
    }

    #[test]
    fn smaller_batch_after_larger_uses_only_its_rows() {
        let mut l = layer();
        l.forward(array![[9.0, 9.0], [9.0, 9.0], [9.0, 9.0]].view());
        let y = l.forward(array![[1.0, 2.0]].view()).to_owned();
        assert_abs_diff_eq!(y, array![[0.91, 0.82, -0.87]], epsilon = 1e-6);
        let dx = l.backward(array![[1.0, 0.0, -1.0]].view()).to_owned();
        assert_abs_diff_eq!(dx, array![[-0.2, 1.0]], epsilon = 1e-6);
        assert_abs_diff_eq!(
            *l.grad_weight(),
            array![[1.0, 0.0, -1.0], [2.0, 0.0, -2.0]],
            epsilon = 1e-6
        );
    }

    #[test]
    fn glorot_init_is_bounded_and_seeded() {
        let mut rng = StdRng::seed_from_u64(7);
        let l = Linear::new(30, 20, Init::Glorot, &mut rng);
        let a = (6.0f32 / 50.0).sqrt();
        assert!(l.weight().iter().all(|w| w.abs() <= a));
        // Spread: the variance of U(-a, a) is a²/3.
        let var = l.weight().mapv(|w| w * w).mean().unwrap();
        assert!(
            (var - a * a / 3.0).abs() < 0.1 * a * a / 3.0,
            "variance {var}"
        );
        assert!(l.bias().iter().all(|&b| b == 0.0));
        let again = Linear::new(30, 20, Init::Glorot, &mut StdRng::seed_from_u64(7));
        assert_eq!(l.weight(), again.weight());
    }

    #[test]
    fn he_init_has_the_right_spread() {
        let mut rng = StdRng::seed_from_u64(7);
        let l = Linear::new(200, 100, Init::He, &mut rng);
        let var = l.weight().mapv(|w| w * w).mean().unwrap();
        assert!(
            (var - 2.0 / 200.0).abs() < 0.05 * 2.0 / 200.0,
            "variance {var}"
        );
    }

    #[test]
    #[should_panic(expected = "got an input with 3 columns")]
    fn wrong_width_panics_with_a_clear_message() {
        layer().forward(array![[1.0, 2.0, 3.0]].view());
    }

    #[test]
    #[should_panic(expected = "backward called before forward")]
    fn backward_before_forward_panics() {
        layer().backward(array![[1.0, 0.0, -1.0]].view());
    }
}
