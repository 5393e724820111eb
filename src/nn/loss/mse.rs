//! [`Mse`]: mean squared error.

use ndarray::{Array2, ArrayView2, Zip};

use super::{Loss, Target};
use crate::error::{Error, Result};
use crate::nn::layer::resized;

/// Mean squared error over every element: `L = mean((p − t)²)`, so
/// `dL/dp = 2·(p − t) / N` with `N = rows × columns`.
///
/// ```
/// use mlp::{Loss, Mse, Target};
/// use ndarray::array;
///
/// let mut mse = Mse::new();
/// let loss = mse.forward(array![[1.0], [3.0]].view(), Target::Dense(array![[0.0], [1.0]].view()));
/// assert_eq!(loss.unwrap(), 2.5); // (1 + 4) / 2
/// assert_eq!(mse.backward().to_owned(), array![[1.0], [2.0]]); // 2·(p − t) / 2
/// ```
pub struct Mse {
    grad: Array2<f32>, // (B, O)
    forwarded: bool,
}

impl Mse {
    /// A mean-squared-error loss.
    pub fn new() -> Self {
        Self {
            grad: Array2::zeros((0, 0)),
            forwarded: false,
        }
    }
}

impl Default for Mse {
    fn default() -> Self {
        Self::new()
    }
}

impl Loss for Mse {
    fn forward(&mut self, prediction: ArrayView2<f32>, target: Target<'_>) -> Result<f32> {
        let target = match target {
            Target::Dense(t) => t,
            Target::Classes(c) => {
                return Err(Error::Shape {
                    prediction: prediction.shape().to_vec(),
                    target: vec![c.len()],
                    message: "Mse compares values; give a dense target with one row per sample"
                        .into(),
                });
            }
        };
        if target.dim() != prediction.dim() {
            return Err(Error::Shape {
                prediction: prediction.shape().to_vec(),
                target: target.shape().to_vec(),
                message: "Mse needs a target of exactly the prediction's shape".into(),
            });
        }
        let (rows, cols) = prediction.dim();
        let n = (rows * cols) as f32;
        let scale = 2.0 / n;
        let mut grad = resized(&mut self.grad, rows, cols);
        let mut sum = 0.0f32;
        Zip::from(&mut grad)
            .and(&prediction)
            .and(&target)
            .for_each(|g, &p, &t| {
                let d = p - t;
                sum += d * d;
                *g = scale * d;
            });
        self.forwarded = true;
        Ok(sum / n)
    }

    fn backward(&self) -> ArrayView2<'_, f32> {
        assert!(self.forwarded, "Mse::backward called before forward");
        self.grad.view()
    }
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // reference values as NumPy/PyTorch printed them
mod tests {
    use super::*;
    use ndarray::array;

    // By hand: d = p − t = [[.5,0],[1,−2]]; mean(d²) = (.25+0+1+4)/4 = 1.3125;
    // dL/dp = 2d/4 = [[.25,0],[.5,−1]]
    #[test]
    fn loss_and_gradient_values() {
        let mut mse = Mse::new();
        let p = array![[0.5, 1.0], [2.0, -1.0]];
        let t = array![[0.0, 1.0], [1.0, 1.0]];
        assert_eq!(
            mse.forward(p.view(), Target::Dense(t.view())).unwrap(),
            1.3125
        );
        assert_eq!(mse.backward().to_owned(), array![[0.25, 0.0], [0.5, -1.0]]);
    }

    #[test]
    fn refuses_a_target_of_another_shape() {
        let mut mse = Mse::new();
        let p = array![[0.5, 1.0], [2.0, -1.0]];
        let t = array![[0.0], [1.0]];
        let err = mse.forward(p.view(), Target::Dense(t.view())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "target shape [2, 1] does not match prediction shape [2, 2]: \
             Mse needs a target of exactly the prediction's shape"
        );
        let err = mse.forward(p.view(), Target::Classes(&[0, 1])).unwrap_err();
        assert!(err.to_string().contains("give a dense target"), "{err}");
    }
}
