//! [`Linear`]: `y = x·W + b`.

use ndarray::{Array1, Array2, ArrayView2};
use ndarray_rand::RandomExt;
use ndarray_rand::rand::Rng;
use ndarray_rand::rand_distr::{Normal, Uniform};

use crate::nn::layer::{Layer, LayerSpec, Param, resized};
use crate::nn::linalg::sparse_columns::SparseColumns;
use crate::nn::linalg::{matmul, matmul_bias, sum_rows};

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
    input: Array2<f32>,       // (B, I) the last forward's input: backward needs it for dW
    output: Array2<f32>,      // (B, O)
    grad_input: Array2<f32>,  // (B, I)
    /// Input columns that are nearly all zeros (one-hot categories), whose zeros the
    /// products skip: the same sums in another order ([`Linear::with_sparse_inputs`]).
    sparse: Option<SparseColumns>,
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
            input: Array2::zeros((0, 0)),
            output: Array2::zeros((0, 0)),
            grad_input: Array2::zeros((0, 0)),
            sparse: None,
        }
    }

    /// The layer, told that its input columns `columns` are nearly all zeros (the one-hot
    /// columns of a table's categories): `x·W` and `xᵀ·dy` then multiply only the other
    /// columns and add a weight row for each non-zero of these
    /// ([`SparseColumns`](crate::nn::linalg::sparse_columns::SparseColumns)). A speed-up
    /// with no effect on the maths; ignored when too few columns are named to gain.
    pub fn with_sparse_inputs(mut self, columns: &[usize]) -> Self {
        self.sparse = SparseColumns::new(self.inputs(), columns);
        self
    }

    /// `dW = xᵀ·dy` for the last forward's input.
    fn weight_gradient(&mut self, grad_output: ArrayView2<f32>) {
        match &mut self.sparse {
            Some(split) => {
                split.grad_weight(self.input.view(), grad_output, self.grad_weight.view_mut())
            }
            None => matmul(self.input.t(), grad_output, self.grad_weight.view_mut()),
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

    /// **Panics** unless `grad_output` has the shape of the last forward's output.
    fn check(&self, grad_output: ArrayView2<f32>) {
        assert!(
            grad_output.dim() == self.output.dim(),
            "Linear::backward called before forward, or on another batch: grad_output is \
             {:?}, the last output {:?}",
            grad_output.dim(),
            self.output.dim()
        );
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
        resized(&mut self.input, rows, cols).assign(&input);
        let output = resized(&mut self.output, rows, self.weight.ncols());
        // y = x·W + b: (B, I)·(I, O) + (O) → (B, O)
        match &mut self.sparse {
            Some(split) => split.forward(input, self.weight.view(), self.bias.view(), output),
            None => matmul_bias(input, self.weight.view(), self.bias.view(), output),
        }
        self.output.view()
    }

    /// # Shapes
    /// `grad_output` (B, O) → grad_input (B, I).
    fn backward(&mut self, grad_output: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        self.check(grad_output);
        // dW = xᵀ·dy: (I, B)·(B, O) → (I, O); the transpose is a view, not a copy
        self.weight_gradient(grad_output);
        // db = Σ_rows dy: (O)
        sum_rows(grad_output, self.grad_bias.view_mut());
        // dx = dy·Wᵀ: (B, O)·(O, I) → (B, I)
        let grad_input = resized(
            &mut self.grad_input,
            grad_output.nrows(),
            self.weight.nrows(),
        );
        matmul(grad_output, self.weight.t(), grad_input);
        self.grad_input.view()
    }

    /// [`backward`](Layer::backward) without its last line, dx: a first layer's input
    /// gradient is never used, and for a wide input it is the step's largest product.
    fn backward_params_only(&mut self, grad_output: ArrayView2<f32>) {
        self.check(grad_output);
        self.weight_gradient(grad_output);
        sum_rows(grad_output, self.grad_bias.view_mut());
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
    fn sparse_inputs_change_no_value() {
        // 4 dense inputs, then two one-hot blocks of 10 (20 of 24 inputs: worth splitting).
        let mut rng = StdRng::seed_from_u64(3);
        let dense = Linear::new(24, 5, Init::He, &mut rng);
        let (w, b) = (dense.weight().clone(), dense.bias().clone());
        let mut dense = Linear::from_weights(w.clone(), b.clone());
        let one_hot: Vec<usize> = (4..24).collect();
        let mut split = Linear::from_weights(w, b).with_sparse_inputs(&one_hot);
        assert!(split.sparse.is_some());
        let x = Array2::from_shape_fn((6, 24), |(r, c)| match c {
            0..4 => (r as f32 - c as f32) / 3.0,
            4..14 => f32::from(c - 4 == r),
            _ => f32::from(c - 14 == (2 * r) % 10),
        });
        let dy = Array2::from_shape_fn((6, 5), |(r, o)| (r * 5 + o) as f32 / 10.0 - 1.0);
        let y = dense.forward(x.view()).to_owned();
        assert_abs_diff_eq!(split.forward(x.view()).to_owned(), y, epsilon = 1e-5);
        let dx = dense.backward(dy.view()).to_owned();
        assert_abs_diff_eq!(split.backward(dy.view()).to_owned(), dx, epsilon = 1e-5);
        assert_abs_diff_eq!(split.grad_weight(), dense.grad_weight(), epsilon = 1e-5);
        assert_abs_diff_eq!(split.grad_bias(), dense.grad_bias(), epsilon = 1e-5);
        // As a first layer: the parameter gradients alone, the same.
        split.grad_weight.fill(f32::NAN);
        split.forward(x.view());
        split.backward_params_only(dy.view());
        assert_abs_diff_eq!(split.grad_weight(), dense.grad_weight(), epsilon = 1e-5);
        // Too few one-hot inputs to gain: the plain products.
        assert!(
            Linear::new(24, 5, Init::He, &mut rng)
                .with_sparse_inputs(&[4, 5])
                .sparse
                .is_none()
        );
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
