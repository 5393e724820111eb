//! Gradient checking: analytic gradients against central finite differences.

use std::fmt;

use ndarray::{Array2, ArrayView2};

use crate::error::Result;
use crate::loss::{Loss, Target};
use crate::sequential::Sequential;

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
        self.layers.iter().map(|l| l.max_error()).fold(0.0, f32::max)
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
/// nudged one onwards are re-run. Errors are [`relative_error`]s with a floor of `1e-3`.
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

    let floor = 1e-3;
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
