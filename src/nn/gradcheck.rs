//! Gradient checking: analytic gradients against central finite differences.

use std::fmt;

use ndarray::{Array2, ArrayView2};

use crate::error::Result;
use crate::nn::loss::{Loss, Target};
use crate::nn::sequential::Sequential;

/// The largest disagreement found in one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerCheck {
    /// Position of the layer in the model.
    pub index: usize,
    /// The layer, as [`LayerSpec`](crate::LayerSpec) prints it.
    pub layer: String,
    /// Largest relative error over the layer's parameters (`None` for a layer without).
    pub params: Option<f32>,
    /// Largest relative error of dL/d(input of this layer).
    pub input: f32,
    /// How many numbers were compared.
    pub checked: usize,
}

impl LayerCheck {
    /// The larger of the parameter and input errors.
    pub fn max_error(&self) -> f32 {
        self.params.unwrap_or(0.0).max(self.input)
    }
}

/// Per-layer result of [`gradient_check`].
#[derive(Debug, Clone, PartialEq)]
pub struct GradCheck {
    /// One entry per layer, first to last.
    pub layers: Vec<LayerCheck>,
}

impl GradCheck {
    /// The largest relative error anywhere in the model.
    pub fn max_error(&self) -> f32 {
        self.layers
            .iter()
            .map(|l| l.max_error())
            .fold(0.0, f32::max)
    }
}

impl fmt::Display for GradCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for l in &self.layers {
            let params = l.params.map_or("-".to_string(), |e| format!("{e:.2e}"));
            writeln!(
                f,
                "{:>2}  {:<18} params {:>9}  input {:.2e}  ({} values)",
                l.index, l.layer, params, l.input, l.checked
            )?;
        }
        Ok(())
    }
}

/// Relative error `|a − n| / max(|a|, |n|, floor)`. The floor keeps gradients that are zero
/// up to rounding (both sides ~1e-9) from reading as 100% errors; above it the measure is
/// scale-free.
pub fn relative_error(analytic: f32, numeric: f32, floor: f32) -> f32 {
    (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(floor)
}

/// Compares every analytic gradient of `model` under `loss` on (`input`, `target`) with the
/// central difference `(L(θ + ε) − L(θ − ε)) / 2ε`: each parameter of each layer, and each
/// element of each layer's input (so parameter-free layers are checked too).
///
/// Parameters and activations are nudged one at a time and only the layers from the
/// nudged one onwards are re-run. Errors are [`relative_error`]s with a floor of `1e-2`:
/// in `f32` the central difference carries an absolute rounding error of about
/// `ulp(L) / 2ε` ≈ 1e-5, which would dominate the relative error of gradients much smaller
/// than 1e-2; above the floor the error is relative, below it absolute.
///
/// With `f32`, `ε = 1e-2` is a good choice for smooth layers: the truncation error is
/// `O(ε²)` ≈ 1e-4 relative and the rounding error of the loss difference about
/// `1e-7 / 2ε` ≈ 5e-6. Inputs to ReLU should stay further than `ε` from zero, where the
/// derivative jumps.
///
/// The model is left as after a forward pass on its last perturbed input; call `forward`
/// again before using its caches.
pub fn gradient_check(
    model: &mut Sequential,
    loss: &mut dyn Loss,
    input: ArrayView2<f32>,
    target: Target<'_>,
    eps: f32,
) -> Result<GradCheck> {
    // Forward, keeping the input of every layer.
    let n = model.layers().len();
    let mut acts: Vec<Array2<f32>> = vec![input.to_owned()];
    for i in 0..n {
        let out = model.layers_mut()[i].forward(acts[i].view()).to_owned();
        acts.push(out);
    }
    loss.forward(acts[n].view(), target)?;

    // Backward, keeping dL/d(input) and the parameter gradients of every layer.
    let mut grad = loss.backward().to_owned();
    let mut input_grads = vec![Array2::zeros((0, 0)); n];
    let mut param_grads: Vec<Vec<Vec<f32>>> = vec![Vec::new(); n];
    for i in (0..n).rev() {
        let layer = &mut model.layers_mut()[i];
        grad = layer.backward(grad.view()).to_owned();
        layer.visit_params(&mut |p| param_grads[i].push(p.grad.to_vec()));
        input_grads[i] = grad.clone();
    }

    let floor = 1e-2;
    let mut layers = Vec::with_capacity(n);
    for i in 0..n {
        let mut checked = 0;
        // Parameters.
        let mut params = None;
        for (pi, analytic) in param_grads[i].iter().enumerate() {
            for (j, &a) in analytic.iter().enumerate() {
                let plus = loss_after_nudge(model, loss, i, &acts[i], target, pi, j, eps)?;
                let minus = loss_after_nudge(model, loss, i, &acts[i], target, pi, j, -eps)?;
                let numeric = (plus - minus) / (2.0 * eps);
                let e = relative_error(a, numeric, floor);
                params = Some(params.unwrap_or(0.0f32).max(e));
                checked += 1;
            }
        }
        // The layer's input.
        let mut input_error = 0.0f32;
        let mut x = acts[i].clone();
        for idx in 0..x.len() {
            let (r, c) = (idx / x.ncols(), idx % x.ncols());
            let original = x[[r, c]];
            x[[r, c]] = original + eps;
            let plus = loss_from(model, loss, i, x.view(), target)?;
            x[[r, c]] = original - eps;
            let minus = loss_from(model, loss, i, x.view(), target)?;
            x[[r, c]] = original;
            let numeric = (plus - minus) / (2.0 * eps);
            input_error = input_error.max(relative_error(input_grads[i][[r, c]], numeric, floor));
            checked += 1;
        }
        layers.push(LayerCheck {
            index: i,
            layer: model.layers()[i].spec().to_string(),
            params,
            input: input_error,
            checked,
        });
    }
    Ok(GradCheck { layers })
}

/// The loss when layers `from..` are run on `x`.
fn loss_from(
    model: &mut Sequential,
    loss: &mut dyn Loss,
    from: usize,
    x: ArrayView2<f32>,
    target: Target<'_>,
) -> Result<f32> {
    let mut out = x.to_owned();
    for layer in &mut model.layers_mut()[from..] {
        out = layer.forward(out.view()).to_owned();
    }
    loss.forward(out.view(), target)
}

/// The loss with element `j` of parameter `param` of layer `layer` moved by `delta`;
/// the parameter is restored exactly afterwards.
#[allow(clippy::too_many_arguments)]
fn loss_after_nudge(
    model: &mut Sequential,
    loss: &mut dyn Loss,
    layer: usize,
    layer_input: &Array2<f32>,
    target: Target<'_>,
    param: usize,
    j: usize,
    delta: f32,
) -> Result<f32> {
    let original = with_param(model, layer, param, |v| {
        let original = v[j];
        v[j] += delta;
        original
    });
    let l = loss_from(model, loss, layer, layer_input.view(), target);
    with_param(model, layer, param, |v| v[j] = original);
    l
}

/// Runs `f` on the values of parameter number `param` of layer `layer`.
fn with_param<R>(
    model: &mut Sequential,
    layer: usize,
    param: usize,
    f: impl FnOnce(&mut [f32]) -> R,
) -> R {
    let mut f = Some(f);
    let mut result = None;
    let mut k = 0;
    model.layers_mut()[layer].visit_params(&mut |p| {
        if k == param {
            result = f.take().map(|f| f(p.value));
        }
        k += 1;
    });
    result.expect("the parameter index comes from the same layer's visit")
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // reference values as NumPy/PyTorch printed them
mod tests {
    use super::*;
    use crate::nn::layer::{Layer, LayerSpec};
    use crate::nn::loss::{Mse, SoftmaxCrossEntropy};
    use crate::{Init, Linear, Relu, Sigmoid, Tanh};
    use ndarray::{Array2, ArrayView2, array};
    use ndarray_rand::RandomExt;
    use ndarray_rand::rand::{SeedableRng, rngs::StdRng};
    use ndarray_rand::rand_distr::Uniform;

    /// The tolerance every check below must meet. Measured errors with ε = 1e-2 are at most
    /// 1.3e-3 (`cargo test gradcheck -- --nocapture` prints them), so 1e-2 leaves a margin of
    /// 8× for other platforms' rounding; a derivative off by only 5%
    /// ([`catches_a_five_percent_error`]) shows up as 4.8e-2, five times the tolerance.
    const TOL: f32 = 1e-2;
    const EPS: f32 = 1e-2;

    fn data(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        Array2::random_using((rows, cols), Uniform::new(-1.0f32, 1.0).unwrap(), &mut rng)
    }

    fn check(
        mut model: Sequential,
        loss: &mut dyn Loss,
        x: &Array2<f32>,
        t: Target<'_>,
    ) -> GradCheck {
        let report = gradient_check(&mut model, loss, x.view(), t, EPS).unwrap();
        println!("{report}");
        assert!(report.max_error() < TOL, "gradient check failed:\n{report}");
        report
    }

    #[test]
    fn linear_with_mse() {
        let mut rng = StdRng::seed_from_u64(1);
        let model = Sequential::new().add(Linear::new(3, 2, Init::Glorot, &mut rng));
        let r = check(
            model,
            &mut Mse::new(),
            &data(4, 3, 2),
            Target::Dense(data(4, 2, 3).view()),
        );
        assert_eq!(r.layers[0].checked, 6 + 2 + 12);
    }

    #[test]
    fn sigmoid_with_mse() {
        let model = Sequential::new().add(Sigmoid::new());
        check(
            model,
            &mut Mse::new(),
            &(data(4, 3, 2) * 3.0),
            Target::Dense(data(4, 3, 3).view()),
        );
    }

    #[test]
    fn tanh_with_mse() {
        let model = Sequential::new().add(Tanh::new());
        check(
            model,
            &mut Mse::new(),
            &(data(4, 3, 2) * 2.0),
            Target::Dense(data(4, 3, 3).view()),
        );
    }

    #[test]
    fn relu_with_mse() {
        // Keep every input at least 0.1 from the kink at 0, well beyond ε.
        let x = data(4, 3, 2).mapv(|v| if v >= 0.0 { v + 0.1 } else { v - 0.1 });
        let model = Sequential::new().add(Relu::new());
        check(
            model,
            &mut Mse::new(),
            &x,
            Target::Dense(data(4, 3, 3).view()),
        );
    }

    #[test]
    fn linear_with_softmax_cross_entropy_on_class_indices() {
        let mut rng = StdRng::seed_from_u64(4);
        let model = Sequential::new().add(Linear::new(3, 4, Init::Glorot, &mut rng));
        check(
            model,
            &mut SoftmaxCrossEntropy::new(),
            &data(5, 3, 5),
            Target::Classes(&[0, 3, 1, 2, 3]),
        );
    }

    #[test]
    fn linear_with_label_smoothed_cross_entropy() {
        let mut rng = StdRng::seed_from_u64(4);
        let model = Sequential::new().add(Linear::new(3, 4, Init::Glorot, &mut rng));
        let mut loss = SoftmaxCrossEntropy::new()
            .with_label_smoothing(0.1)
            .unwrap();
        check(
            model,
            &mut loss,
            &data(5, 3, 5),
            Target::Classes(&[0, 3, 1, 2, 3]),
        );
    }

    #[test]
    fn linear_with_softmax_cross_entropy_on_probabilities() {
        let mut rng = StdRng::seed_from_u64(4);
        let model = Sequential::new().add(Linear::new(3, 3, Init::Glorot, &mut rng));
        let t = array![
            [0.2, 0.3, 0.5],
            [1.0, 0.0, 0.0],
            [0.0, 0.5, 0.5],
            [0.1, 0.1, 0.8]
        ];
        check(
            model,
            &mut SoftmaxCrossEntropy::new(),
            &data(4, 3, 5),
            Target::Dense(t.view()),
        );
    }

    #[test]
    fn three_layer_tanh_sigmoid_stack_with_cross_entropy() {
        let mut rng = StdRng::seed_from_u64(6);
        let model = Sequential::new()
            .add(Linear::new(4, 5, Init::Glorot, &mut rng))
            .add(Tanh::new())
            .add(Linear::new(5, 4, Init::Glorot, &mut rng))
            .add(Sigmoid::new())
            .add(Linear::new(4, 3, Init::Glorot, &mut rng));
        let r = check(
            model,
            &mut SoftmaxCrossEntropy::new(),
            &data(6, 4, 7),
            Target::Classes(&[0, 1, 2, 2, 1, 0]),
        );
        assert_eq!(r.layers.len(), 5);
        assert!(r.layers[1].params.is_none() && r.layers[0].params.is_some());
    }

    #[test]
    fn three_layer_relu_stack_with_mse() {
        // The first seed whose pre-activations all stay further than 3ε from the ReLU kink,
        // where a finite difference straddling 0 would measure neither side's slope.
        let (model, x) = (0..100)
            .map(|seed| {
                let mut rng = StdRng::seed_from_u64(seed);
                let model = Sequential::new()
                    .add(Linear::new(4, 6, Init::He, &mut rng))
                    .add(Relu::new())
                    .add(Linear::new(6, 5, Init::He, &mut rng))
                    .add(Relu::new())
                    .add(Linear::new(5, 2, Init::He, &mut rng));
                (model, data(5, 4, seed + 1000))
            })
            .find_map(|(mut model, x)| away_from_kinks(&mut model, &x).then_some((model, x)))
            .expect("a seed among the first 100");
        check(
            model,
            &mut Mse::new(),
            &x,
            Target::Dense(data(5, 2, 10).view()),
        );
    }

    /// Whether every ReLU input of `model` on `x` is further than 3ε from 0.
    fn away_from_kinks(model: &mut Sequential, x: &Array2<f32>) -> bool {
        let mut h = x.clone();
        let mut ok = true;
        for layer in model.layers_mut() {
            if layer.spec() == LayerSpec::Relu {
                ok &= h.iter().all(|v| v.abs() > 3.0 * EPS);
            }
            h = layer.forward(h.view()).to_owned();
        }
        ok
    }

    /// A sigmoid whose derivative is 5% too large: the kind of slip a check must catch.
    struct SlightlyWrongSigmoid(Sigmoid);

    impl Layer for SlightlyWrongSigmoid {
        fn forward(&mut self, input: ArrayView2<f32>) -> ArrayView2<'_, f32> {
            self.0.forward(input)
        }
        fn backward(&mut self, grad_output: ArrayView2<f32>) -> ArrayView2<'_, f32> {
            let scaled = grad_output.mapv(|g| g * 1.05);
            self.0.backward(scaled.view())
        }
        fn spec(&self) -> LayerSpec {
            LayerSpec::Sigmoid
        }
    }

    #[test]
    fn catches_a_five_percent_error() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut model = Sequential::new()
            .add(Linear::new(3, 4, Init::Glorot, &mut rng))
            .add(SlightlyWrongSigmoid(Sigmoid::new()))
            .add(Linear::new(4, 2, Init::Glorot, &mut rng));
        let (x, t) = (data(4, 3, 2), data(4, 2, 3));
        let report = gradient_check(
            &mut model,
            &mut Mse::new(),
            x.view(),
            Target::Dense(t.view()),
            EPS,
        )
        .unwrap();
        println!("{report}");
        // The layer above the bug is right; the bug and everything below it are not.
        assert!(report.layers[2].max_error() < TOL);
        assert!(report.layers[1].input > 4e-2, "{report}");
        assert!(report.layers[0].params.unwrap() > 4e-2, "{report}");
    }
}
