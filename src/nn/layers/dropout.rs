//! [`Dropout`]: zero each input at random while training, pass everything at predict time.

use ndarray::{Array2, ArrayView2};
use ndarray_rand::rand::{Rng, SeedableRng, rngs::StdRng};

use crate::nn::layer::{Layer, LayerSpec, resized};
use crate::nn::linalg::zip_map_into;

/// Inverted dropout with rate `p` (Srivastava et al., 2014).
///
/// While training, each element is kept with probability `1 − p` and scaled by `1 / (1 − p)`,
/// or zeroed:
///
/// ```text
/// mask = 1/(1−p) with probability 1−p, else 0      (drawn anew every forward)
/// y    = x ⊙ mask
/// dx   = dy ⊙ mask                                  (the derivative is the mask itself)
/// ```
///
/// The scaling keeps the expected output equal to the input, so at predict time the layer
/// is the identity (`y = x`, `dx = dy`) and nothing needs rescaling. A new layer is in
/// training mode; [`Layer::set_training`] switches it (the training loop does this around
/// every validation pass, and a loaded model predicts in predict mode).
///
/// ```
/// use mlp::{Dropout, Layer};
/// use ndarray::array;
///
/// let mut layer = Dropout::new(0.5, 7);
/// let y = layer.forward(array![[1.0, 2.0, 3.0, 4.0]].view()).to_owned();
/// // Each element is either dropped or doubled.
/// for (y, x) in y.iter().zip([1.0, 2.0, 3.0, 4.0]) {
///     assert!(*y == 0.0 || *y == 2.0 * x);
/// }
/// layer.set_training(false);
/// let y = layer.forward(array![[1.0, 2.0, 3.0, 4.0]].view()).to_owned();
/// assert_eq!(y, array![[1.0, 2.0, 3.0, 4.0]]);
/// ```
pub struct Dropout {
    rate: f32,
    rng: StdRng,
    training: bool,
    hold_mask: bool,
    mask: Array2<f32>,       // (B, N): 0 or 1/(1−p), kept for backward
    output: Array2<f32>,     // (B, N)
    grad_input: Array2<f32>, // (B, N)
    rows: Option<usize>,
}

impl Dropout {
    /// Dropout with rate `rate` (the fraction of elements zeroed), its masks drawn from
    /// `seed`. Starts in training mode.
    ///
    /// **Panics** if `rate` is not in `[0, 1)`.
    pub fn new(rate: f32, seed: u64) -> Self {
        assert!(
            (0.0..1.0).contains(&rate),
            "dropout rate must be in [0, 1), got {rate}"
        );
        Self {
            rate,
            rng: StdRng::seed_from_u64(seed ^ 0xD80F_0000_0000_0003),
            training: true,
            hold_mask: false,
            mask: Array2::zeros((0, 0)),
            output: Array2::zeros((0, 0)),
            grad_input: Array2::zeros((0, 0)),
            rows: None,
        }
    }

    /// The fraction of elements zeroed while training.
    pub fn rate(&self) -> f32 {
        self.rate
    }

    /// Whether the layer is in training mode (dropping) or predict mode (identity).
    pub fn is_training(&self) -> bool {
        self.training
    }

    /// With `true`, later forwards reuse the last mask instead of drawing a new one, so the
    /// layer is a fixed function of its input: what a finite-difference gradient check
    /// needs. The batch shape must stay the same.
    pub fn hold_mask(&mut self, hold: bool) {
        self.hold_mask = hold;
    }

    /// The mask of the last training forward (`0` or `1/(1−p)` per element).
    pub fn mask(&self) -> ArrayView2<'_, f32> {
        self.mask.view()
    }

    fn draw_mask(&mut self, rows: usize, cols: usize) {
        let keep = 1.0 - self.rate;
        let scale = 1.0 / keep;
        let rng = &mut self.rng;
        let mut mask = resized(&mut self.mask, rows, cols);
        mask.mapv_inplace(|_| {
            if rng.random::<f32>() < keep {
                scale
            } else {
                0.0
            }
        });
    }
}

impl Layer for Dropout {
    fn forward(&mut self, input: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        let (rows, cols) = input.dim();
        if self.training && !self.hold_mask {
            self.draw_mask(rows, cols);
        }
        if self.training && self.hold_mask {
            assert_eq!(
                (self.rows, self.mask.ncols()),
                (Some(rows), cols),
                "Dropout::forward with a held mask needs the batch shape it was drawn for"
            );
        }
        let mut output = resized(&mut self.output, rows, cols);
        if self.training {
            zip_map_into(input, self.mask.view(), output, |x, m| x * m);
        } else {
            output.assign(&input);
        }
        self.rows = Some(rows);
        self.output.view()
    }

    fn backward(&mut self, grad_output: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        let rows = self.rows.expect("Dropout::backward called before forward");
        let cols = self.output.ncols();
        assert_eq!(
            grad_output.dim(),
            (rows, cols),
            "Dropout::backward: grad_output must have the shape of the last output"
        );
        let mut grad_input = resized(&mut self.grad_input, rows, cols);
        if self.training {
            zip_map_into(grad_output, self.mask.view(), grad_input, |dy, m| dy * m);
        } else {
            grad_input.assign(&grad_output);
        }
        self.grad_input.view()
    }

    fn set_training(&mut self, training: bool) {
        self.training = training;
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::Dropout { rate: self.rate }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::gradcheck::gradient_check;
    use crate::nn::layers::linear::{Init, Linear};
    use crate::nn::loss::{Mse, Target};
    use crate::nn::sequential::Sequential;
    use ndarray::array;

    // With rate 0.5 the kept elements are scaled by 2:
    //   x = [[1,-2,3,4],[5,6,-7,8]], mask m (0 or 2), y = x*m, dx = g*m.
    #[test]
    fn forward_and_backward_values() {
        let mut l = Dropout::new(0.5, 1);
        let x = array![[1.0, -2.0, 3.0, 4.0], [5.0, 6.0, -7.0, 8.0]];
        let y = l.forward(x.view()).to_owned();
        let m = l.mask().to_owned();
        assert!(m.iter().all(|&v| v == 0.0 || v == 2.0), "{m}");
        assert!(
            m.iter().any(|&v| v == 0.0) && m.iter().any(|&v| v == 2.0),
            "{m}"
        );
        assert_eq!(y, &x * &m);
        let g = array![[0.5, 1.0, 1.5, 2.0], [-1.0, -2.0, 3.0, 4.0]];
        let dx = l.backward(g.view()).to_owned();
        assert_eq!(dx, &g * &m);
        // The same seed draws the same masks.
        let mut again = Dropout::new(0.5, 1);
        again.forward(x.view());
        assert_eq!(again.mask(), m);
    }

    #[test]
    fn literal_mask_from_seed_0() {
        // Pinned from this implementation (StdRng, seed 0): rate 0.25 keeps 3 in 4 on
        // average and scales the kept ones by 4/3. A change here changes every dropout run.
        let mut l = Dropout::new(0.25, 0);
        let y = l
            .forward(array![[3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0]].view())
            .to_owned();
        assert_eq!(y, array![[4.0, 4.0, 4.0, 4.0, 4.0, 0.0, 4.0, 4.0]]);
    }

    #[test]
    fn predict_mode_is_the_identity() {
        let mut l = Dropout::new(0.9, 3);
        l.set_training(false);
        let x = array![[1.0, -2.0], [3.0, 4.5]];
        assert_eq!(l.forward(x.view()), x);
        let g = array![[0.1, 0.2], [0.3, 0.4]];
        assert_eq!(l.backward(g.view()), g);
    }

    #[test]
    fn rate_zero_keeps_everything() {
        let mut l = Dropout::new(0.0, 3);
        let x = array![[1.0, -2.0, 3.0]];
        assert_eq!(l.forward(x.view()), x);
    }

    #[test]
    fn keeps_about_one_minus_rate_and_the_mean() {
        let mut l = Dropout::new(0.3, 11);
        let x = Array2::<f32>::ones((100, 100));
        let y = l.forward(x.view()).to_owned();
        let kept = y.iter().filter(|&&v| v > 0.0).count() as f32 / 10_000.0;
        assert!((kept - 0.7).abs() < 0.02, "{kept}");
        assert!(
            (y.mean().unwrap() - 1.0).abs() < 0.03,
            "{}",
            y.mean().unwrap()
        );
    }

    #[test]
    fn gradient_check_with_a_held_mask() {
        let mut rng = StdRng::seed_from_u64(5);
        let x = array![[0.3, -0.8, 1.2], [0.5, 0.9, -1.1]];
        // Draw one mask for the (2, 6) hidden activations, then hold it, so the network
        // is a fixed function of its weights and input.
        let mut dropout = Dropout::new(0.4, 2);
        dropout.forward(Array2::zeros((2, 6)).view());
        dropout.hold_mask(true);
        let held = dropout.mask().to_owned();
        assert!(held.iter().any(|&m| m == 0.0), "{held}");
        let mut model = Sequential::new()
            .add(Linear::new(3, 6, Init::Glorot, &mut rng))
            .add(dropout)
            .add(Linear::new(6, 2, Init::Glorot, &mut rng));
        let y = array![[0.5, -1.0], [1.5, 0.25]];
        let check = gradient_check(
            &mut model,
            &mut Mse::new(),
            x.view(),
            Target::Dense(y.view()),
            1e-2,
        )
        .unwrap();
        assert!(check.max_error() < 1e-2, "{check}");
        assert_eq!(check.layers[1].layer, "Dropout(p = 0.4)");
    }
}
