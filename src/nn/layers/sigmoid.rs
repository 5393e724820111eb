//! [`Sigmoid`]: `σ(x) = 1 / (1 + e⁻ˣ)`.

use ndarray::ArrayView2;

use super::elementwise::Elementwise;
use crate::nn::layer::{Layer, LayerSpec};

/// `σ(x) = 1 / (1 + e⁻ˣ)`, written so that neither branch can overflow: for `x < 0` it is
/// computed as `eˣ / (1 + eˣ)`, so `σ(-1000) = 0` and `σ(1000) = 1` with no `inf` on the way.
pub fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// `σ'(x) = σ(x)·(1 − σ(x)) = y·(1 − y)`: the derivative needs only the output `y`.
pub fn sigmoid_derivative(y: f32) -> f32 {
    y * (1.0 - y)
}

/// The logistic sigmoid, element by element. Caches its output, because
/// `σ'(x) = y·(1 − y)`.
///
/// ```
/// use mlp::{Layer, Sigmoid};
/// use ndarray::array;
///
/// let mut layer = Sigmoid::new();
/// let y = layer.forward(array![[0.0, 1000.0, -1000.0]].view()).to_owned();
/// assert_eq!(y, array![[0.5, 1.0, 0.0]]);
/// let dx = layer.backward(array![[1.0, 1.0, 1.0]].view()).to_owned();
/// assert_eq!(dx, array![[0.25, 0.0, 0.0]]);
/// ```
pub struct Sigmoid {
    cache: Elementwise,
}

impl Sigmoid {
    /// A sigmoid layer (it has no parameters).
    pub fn new() -> Self {
        Self {
            cache: Elementwise::new(),
        }
    }
}

impl Default for Sigmoid {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for Sigmoid {
    fn forward(&mut self, input: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        self.cache.forward(input, sigmoid)
    }

    fn backward(&mut self, grad_output: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        self.cache
            .backward("Sigmoid", grad_output, sigmoid_derivative)
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::Sigmoid
    }
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // reference values as NumPy/PyTorch printed them
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    // NumPy (float32): x = [[-2,0,3],[.5,-.5,10]], g = [[1,2,3],[-1,.5,2]]
    //   s = 1/(1+exp(-x)) -> [[.11920293,.5,.95257413],[.62245935,.37754068,.9999546]]
    //   g*s*(1-s)        -> [[.104993597,.5,.13552995],[-.23500371,.117501855,9.08333532e-05]]
    #[test]
    fn forward_and_backward_values() {
        let mut l = Sigmoid::new();
        let y = l
            .forward(array![[-2.0, 0.0, 3.0], [0.5, -0.5, 10.0]].view())
            .to_owned();
        assert_abs_diff_eq!(
            y,
            array![
                [0.11920293, 0.5, 0.95257413],
                [0.62245935, 0.37754068, 0.9999546]
            ],
            epsilon = 1e-6
        );
        let dx = l
            .backward(array![[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]].view())
            .to_owned();
        assert_abs_diff_eq!(
            dx,
            array![
                [0.104993597, 0.5, 0.13552995],
                [-0.23500371, 0.117501855, 9.0833353e-5]
            ],
            epsilon = 1e-6
        );
    }

    #[test]
    fn stable_for_large_magnitudes() {
        for x in [-1e30f32, -1000.0, -88.0, -20.0, 20.0, 88.0, 1000.0, 1e30] {
            let y = sigmoid(x);
            assert!(
                y.is_finite() && (0.0..=1.0).contains(&y),
                "sigmoid({x}) = {y}"
            );
        }
        assert_eq!(sigmoid(-1000.0), 0.0);
        assert_eq!(sigmoid(1000.0), 1.0);
        // e^-20 / (1 + e^-20) keeps its precision instead of rounding 1 − σ(20).
        assert!((sigmoid(-20.0) - 2.0611537e-9).abs() < 1e-15);
    }
}
