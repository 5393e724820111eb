//! [`Tanh`]: the hyperbolic tangent.

use ndarray::ArrayView2;

use super::elementwise::Elementwise;
use crate::nn::layer::{Layer, LayerSpec};

/// `tanh(x) = (eˣ − e⁻ˣ) / (eˣ + e⁻ˣ)` (the standard library's, which saturates to ±1
/// instead of overflowing).
pub fn tanh(x: f32) -> f32 {
    x.tanh()
}

/// `tanh'(x) = 1 − tanh²(x) = 1 − y²`: the derivative needs only the output `y`.
pub fn tanh_derivative(y: f32) -> f32 {
    1.0 - y * y
}

/// The hyperbolic tangent, element by element. Caches its output, because
/// `tanh'(x) = 1 − y²`.
///
/// ```
/// use mlp::{Layer, Tanh};
/// use ndarray::array;
///
/// let mut layer = Tanh::new();
/// let y = layer.forward(array![[0.0, 50.0]].view()).to_owned();
/// assert_eq!(y, array![[0.0, 1.0]]);
/// let dx = layer.backward(array![[2.0, 2.0]].view()).to_owned();
/// assert_eq!(dx, array![[2.0, 0.0]]);
/// ```
pub struct Tanh {
    cache: Elementwise,
}

impl Tanh {
    /// A tanh layer (it has no parameters).
    pub fn new() -> Self {
        Self {
            cache: Elementwise::new(),
        }
    }
}

impl Default for Tanh {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for Tanh {
    fn forward(&mut self, input: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        self.cache.forward(input, tanh)
    }

    fn backward(&mut self, grad_output: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        self.cache.backward("Tanh", grad_output, tanh_derivative)
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::Tanh
    }
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // reference values as NumPy/PyTorch printed them
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    // NumPy (float32): x = [[-2,0,3],[.5,-.5,10]], g = [[1,2,3],[-1,.5,2]]
    //   t = tanh(x)   -> [[-.9640276,0,.9950548],[.4621172,-.4621172,1]]
    //   g*(1-t*t)     -> [[.07065082,2,.029598],[-.7864477,.39322385,0]]
    #[test]
    fn forward_and_backward_values() {
        let mut l = Tanh::new();
        let y = l
            .forward(array![[-2.0, 0.0, 3.0], [0.5, -0.5, 10.0]].view())
            .to_owned();
        assert_abs_diff_eq!(
            y,
            array![[-0.9640276, 0.0, 0.9950548], [0.4621172, -0.4621172, 1.0]],
            epsilon = 1e-6
        );
        let dx = l
            .backward(array![[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]].view())
            .to_owned();
        assert_abs_diff_eq!(
            dx,
            array![[0.07065082, 2.0, 0.029598], [-0.7864477, 0.39322385, 0.0]],
            epsilon = 1e-5
        );
    }
}
