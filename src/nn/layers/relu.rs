//! [`Relu`]: `max(0, x)`.

use ndarray::ArrayView2;

use super::elementwise::Elementwise;
use crate::nn::layer::{Layer, LayerSpec};

/// `relu(x) = max(0, x)`.
pub fn relu(x: f32) -> f32 {
    x.max(0.0)
}

/// `relu'(x) = 1 if x > 0 else 0`. Since `y > 0` exactly when `x > 0`, the output `y` tells
/// the same thing, so the layer keeps only its output (at `x = 0` the derivative is taken
/// as 0, as PyTorch does).
pub fn relu_derivative(y: f32) -> f32 {
    if y > 0.0 { 1.0 } else { 0.0 }
}

/// The rectified linear unit, element by element.
///
/// ```
/// use mlp::{Layer, Relu};
/// use ndarray::array;
///
/// let mut layer = Relu::new();
/// let y = layer.forward(array![[-2.0, 0.0, 3.0]].view()).to_owned();
/// assert_eq!(y, array![[0.0, 0.0, 3.0]]);
/// let dx = layer.backward(array![[5.0, 5.0, 5.0]].view()).to_owned();
/// assert_eq!(dx, array![[0.0, 0.0, 5.0]]);
/// ```
pub struct Relu {
    cache: Elementwise,
}

impl Relu {
    /// A ReLU layer (it has no parameters).
    pub fn new() -> Self {
        Self {
            cache: Elementwise::new(),
        }
    }
}

impl Default for Relu {
    fn default() -> Self {
        Self::new()
    }
}

impl Layer for Relu {
    fn forward(&mut self, input: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        self.cache.forward(input, relu)
    }

    fn backward(&mut self, grad_output: ArrayView2<f32>) -> ArrayView2<'_, f32> {
        self.cache.backward("Relu", grad_output, relu_derivative)
    }

    fn spec(&self) -> LayerSpec {
        LayerSpec::Relu
    }
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // reference values as NumPy/PyTorch printed them
mod tests {
    use super::*;
    use ndarray::array;

    // NumPy: x = [[-2,0,3],[.5,-.5,10]], g = [[1,2,3],[-1,.5,2]]
    //   max(x,0) -> [[0,0,3],[.5,0,10]];  g*(x>0) -> [[0,0,3],[-1,0,2]]
    #[test]
    fn forward_and_backward_values() {
        let mut l = Relu::new();
        let y = l
            .forward(array![[-2.0, 0.0, 3.0], [0.5, -0.5, 10.0]].view())
            .to_owned();
        assert_eq!(y, array![[0.0, 0.0, 3.0], [0.5, 0.0, 10.0]]);
        let dx = l
            .backward(array![[1.0, 2.0, 3.0], [-1.0, 0.5, 2.0]].view())
            .to_owned();
        assert_eq!(dx, array![[0.0, 0.0, 3.0], [-1.0, 0.0, 2.0]]);
    }
}
