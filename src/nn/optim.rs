//! Optimizers: how parameters move given their gradients.
//!
//! Every optimizer walks the model's parameters with
//! [`Sequential::visit_params`](crate::Sequential::visit_params) and updates each one in place
//! with a flat loop over `value[i]` and `grad[i]`. Per-parameter state (velocities, moments)
//! is sized on the first step and reused, so steps do not allocate.
//!
//! Weight decay is L2 regularisation added to the gradient of weights (not biases, as in
//! scikit-learn): `g ← g + weight_decay·w`.

use ndarray::{ArrayView1, ArrayViewMut1};

use crate::error::{Error, Hint, Result, Setting};
use crate::nn::linalg::parallel::for_each_part;
use crate::nn::sequential::Sequential;

/// Something that updates a model's parameters from their gradients.
pub trait Optimizer: Send {
    /// Updates every parameter of `model` using the gradients of its last backward pass.
    fn step(&mut self, model: &mut Sequential);

    /// The current learning rate.
    fn learning_rate(&self) -> f32;

    /// Changes the learning rate (for example to back off after divergence).
    fn set_learning_rate(&mut self, lr: f32);
}

fn check_lr(lr: f32) -> Result<()> {
    if lr.is_finite() && lr > 0.0 {
        Ok(())
    } else {
        Err(Error::config(
            Setting::LearningRate,
            lr,
            "must be a positive, finite number",
            Hint::text("for example ").setting(Setting::LearningRate, 0.01),
        ))
    }
}

fn check_decay(weight_decay: f32) -> Result<()> {
    if weight_decay.is_finite() && weight_decay >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(
            Setting::WeightDecay,
            weight_decay,
            "must be zero or a small positive number",
            Hint::text("for example ").setting(Setting::WeightDecay, 1e-4),
        ))
    }
}

/// Plain stochastic gradient descent: `w ← w − lr·g`.
///
/// ```
/// use mlp::{Linear, Layer, Optimizer, Sequential, Sgd};
/// use ndarray::array;
///
/// let mut model = Sequential::new().add(Linear::from_weights(array![[1.0]], array![0.0]));
/// model.forward(array![[2.0]].view());
/// model.backward(array![[1.0]].view()); // dW = x·dy = 2, db = 1
/// Sgd::new(0.1).unwrap().step(&mut model);
/// assert_eq!(model.param_values(), vec![0.8, -0.1]);
/// ```
#[derive(Debug, Clone)]
pub struct Sgd {
    lr: f32,
    weight_decay: f32,
}

impl Sgd {
    /// SGD with learning rate `lr`; refuses a rate that is not positive and finite.
    pub fn new(lr: f32) -> Result<Self> {
        check_lr(lr)?;
        Ok(Self {
            lr,
            weight_decay: 0.0,
        })
    }

    /// Adds L2 weight decay.
    pub fn with_weight_decay(mut self, weight_decay: f32) -> Result<Self> {
        check_decay(weight_decay)?;
        self.weight_decay = weight_decay;
        Ok(self)
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, model: &mut Sequential) {
        let (lr, wd) = (self.lr, self.weight_decay);
        model.visit_params(&mut |_, p| {
            // w − lr·(g + wd·w) = (1 − lr·wd)·w − lr·g
            let keep = if p.decay && wd > 0.0 {
                1.0 - lr * wd
            } else {
                1.0
            };
            for_each_part((p.value, &*p.grad), |(w, g)| {
                let mut w = ArrayViewMut1::from(w);
                if keep != 1.0 {
                    w *= keep;
                }
                w.scaled_add(-lr, &ArrayView1::from(g));
            });
        });
    }

    fn learning_rate(&self) -> f32 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }
}

/// Per-parameter buffers of an optimizer, sized on the first step.
#[derive(Debug, Clone, Default)]
struct State {
    buffers: Vec<Vec<f32>>,
}

impl State {
    /// The buffer for parameter number `index` of length `len`, zeroed when first made.
    fn get(&mut self, index: usize, len: usize) -> &mut Vec<f32> {
        if self.buffers.len() <= index {
            self.buffers.resize_with(index + 1, Vec::new);
        }
        let b = &mut self.buffers[index];
        if b.len() != len {
            *b = vec![0.0; len];
        }
        b
    }
}

/// SGD with momentum, as PyTorch defines it: `v ← μ·v + g`, then `w ← w − lr·v`, or with
/// Nesterov `w ← w − lr·(g + μ·v)`.
#[derive(Debug, Clone)]
pub struct Momentum {
    lr: f32,
    momentum: f32,
    nesterov: bool,
    weight_decay: f32,
    velocity: State,
}

impl Momentum {
    /// Momentum SGD with rate `lr` and momentum `momentum` in `[0, 1)`.
    pub fn new(lr: f32, momentum: f32, nesterov: bool) -> Result<Self> {
        check_lr(lr)?;
        if !(0.0..1.0).contains(&momentum) {
            return Err(Error::config(
                Setting::Momentum,
                momentum,
                "must be at least 0 and below 1",
                Hint::text("for example ").setting(Setting::Momentum, 0.9),
            ));
        }
        Ok(Self {
            lr,
            momentum,
            nesterov,
            weight_decay: 0.0,
            velocity: State::default(),
        })
    }

    /// Adds L2 weight decay.
    pub fn with_weight_decay(mut self, weight_decay: f32) -> Result<Self> {
        check_decay(weight_decay)?;
        self.weight_decay = weight_decay;
        Ok(self)
    }
}

impl Optimizer for Momentum {
    fn step(&mut self, model: &mut Sequential) {
        let (lr, mu, nesterov) = (self.lr, self.momentum, self.nesterov);
        let velocity = &mut self.velocity;
        let mut index = 0;
        model.visit_params(&mut |_, p| {
            let wd = if p.decay { self.weight_decay } else { 0.0 };
            let v = velocity.get(index, p.value.len());
            index += 1;
            for_each_part((p.value, &*p.grad, &mut v[..]), |(value, grad, v)| {
                for ((w, &g), v) in value.iter_mut().zip(grad).zip(v) {
                    let g = g + wd * *w;
                    *v = mu * *v + g;
                    *w -= lr * if nesterov { g + mu * *v } else { *v };
                }
            });
        });
    }

    fn learning_rate(&self) -> f32 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }
}

/// A weight smaller than this adds nothing a network could notice (times an input of a
/// million it is still 1e-24): [`Adam`] sets it to 0 rather than let it sink to subnormal.
const NEGLIGIBLE: f32 = 1e-30;

/// `x`, or 0 if it is subnormal (below `f32::MIN_POSITIVE` in size): too small to matter,
/// and slow for the processor to compute with.
fn flush_subnormal(x: f32) -> f32 {
    if x.abs() < f32::MIN_POSITIVE { 0.0 } else { x }
}

/// One Adam step's constants (see [`adam_update`]).
struct AdamStep {
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    /// `lr / (1 − β₁ᵗ)`: the bias correction of `m` folded into the learning rate.
    lr_over_bias1: f32,
    /// `1 / (1 − β₂ᵗ)`: the bias correction of `v`.
    inv_bias2: f32,
}

/// Adam's update of one run of weights with their gradients and moments:
/// `g ← g + λw`, `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`, `w ← w − lr·m̂ / (√v̂ + ε)`.
///
/// Compiled for wider vectors too, chosen at run time (`multiversion`): the same IEEE
/// operations in the same order, so the same bits on any processor, several times faster
/// where the square roots and divisions of eight or sixteen weights go at once.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "x86_64+avx"))]
fn adam_update(s: &AdamStep, value: &mut [f32], grad: &[f32], m: &mut [f32], v: &mut [f32]) {
    for (((w, &g), m), v) in value.iter_mut().zip(grad).zip(m).zip(v) {
        let g = g + s.weight_decay * *w;
        *m = s.beta1 * *m + (1.0 - s.beta1) * g;
        *v = s.beta2 * *v + (1.0 - s.beta2) * g * g;
        let lr_m_hat = s.lr_over_bias1 * *m;
        let v_hat = *v * s.inv_bias2;
        *w -= lr_m_hat / (v_hat.sqrt() + s.eps);
        // A weight whose only gradient is its decay is pushed back and forth across 0 by
        // ever smaller steps. Left alone it ends subnormal, where every product it enters
        // (and its own update) runs tens of times slower: a negligible weight becomes 0,
        // and so do subnormal moments.
        *w = if w.abs() < NEGLIGIBLE { 0.0 } else { *w };
        *m = flush_subnormal(*m);
        *v = flush_subnormal(*v);
    }
}

/// Adam (Kingma & Ba, 2015), as PyTorch's `torch.optim.Adam` defines it:
/// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
/// `w ← w − lr·m̂ / (√v̂ + ε)` with `m̂ = m/(1−β₁ᵗ)`, `v̂ = v/(1−β₂ᵗ)`.
#[derive(Debug, Clone)]
pub struct Adam {
    lr: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    weight_decay: f32,
    t: i32,
    m: State,
    v: State,
}

impl Adam {
    /// Adam with rate `lr` and the usual β₁ = 0.9, β₂ = 0.999, ε = 1e-8.
    pub fn new(lr: f32) -> Result<Self> {
        check_lr(lr)?;
        Ok(Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            t: 0,
            m: State::default(),
            v: State::default(),
        })
    }

    /// Adds L2 weight decay (added to the gradient, as in PyTorch's `Adam`, not `AdamW`).
    pub fn with_weight_decay(mut self, weight_decay: f32) -> Result<Self> {
        check_decay(weight_decay)?;
        self.weight_decay = weight_decay;
        Ok(self)
    }
}

impl Optimizer for Adam {
    fn step(&mut self, model: &mut Sequential) {
        self.t = self.t.saturating_add(1);
        let (lr, beta1, beta2, eps) = (self.lr, self.beta1, self.beta2, self.eps);
        // The bias corrections m̂ = m / bias1 and v̂ = v / bias2 become two factors out of the
        // loop: 1 / bias1 folded into the learning rate (m̂ enters only as lr·m̂), and
        // 1 / bias2.
        let bias1 = 1.0 - beta1.powi(self.t);
        let bias2 = 1.0 - beta2.powi(self.t);
        let (lr_over_bias1, inv_bias2) = (lr / bias1, 1.0 / bias2);
        let (ms, vs) = (&mut self.m, &mut self.v);
        let mut index = 0;
        model.visit_params(&mut |_, p| {
            let wd = if p.decay { self.weight_decay } else { 0.0 };
            let n = p.value.len();
            let (m, v) = (ms.get(index, n), vs.get(index, n));
            index += 1;
            let step = AdamStep {
                beta1,
                beta2,
                eps,
                weight_decay: wd,
                lr_over_bias1,
                inv_bias2,
            };
            for_each_part(
                (p.value, &*p.grad, &mut m[..], &mut v[..]),
                |(value, grad, m, v)| adam_update(&step, value, grad, m, v),
            );
        });
    }

    fn learning_rate(&self) -> f32 {
        self.lr
    }

    fn set_learning_rate(&mut self, lr: f32) {
        self.lr = lr;
    }
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // reference values as NumPy/PyTorch printed them
mod tests {
    use super::*;
    use crate::nn::loss::{Loss, Mse, Target};
    use crate::{Linear, Sigmoid};
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    // Reference: PyTorch 2, float32, the XOR net below with these exact weights, MSE, and
    // weight decay on the weights only (biases in a param group with weight_decay=0):
    //
    //   W1 = tensor([[.5,-.3,.8,.1],[-.6,.4,.2,-.9]]); b1 = tensor([.1,-.1,0,.2])
    //   W2 = tensor([[.7],[-.5],[.3],[.9]]);           b2 = tensor([.05])
    //   opt = torch.optim.SGD([{'params':[W1,W2],'weight_decay':wd},
    //                          {'params':[b1,b2],'weight_decay':0}], lr=...)
    //   for _ in range(6):
    //       opt.zero_grad(); h = sigmoid(x@W1+b1); p = sigmoid(h@W2+b2)
    //       L = ((p-y)**2).mean(); L.backward(); opt.step()
    fn xor_net() -> Sequential {
        Sequential::new()
            .add(Linear::from_weights(
                array![[0.5, -0.3, 0.8, 0.1], [-0.6, 0.4, 0.2, -0.9]],
                array![0.1, -0.1, 0.0, 0.2],
            ))
            .add(Sigmoid::new())
            .add(Linear::from_weights(
                array![[0.7], [-0.5], [0.3], [0.9]],
                array![0.05],
            ))
            .add(Sigmoid::new())
    }

    /// Six steps; returns the losses and the second layer's weights afterwards.
    fn trajectory(opt: &mut dyn Optimizer) -> (Vec<f32>, Vec<f32>) {
        let x = array![[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
        let y = array![[0.0], [1.0], [1.0], [0.0]];
        let mut model = xor_net();
        let mut mse = Mse::new();
        let mut losses = Vec::new();
        for _ in 0..6 {
            let p = model.forward(x.view());
            losses.push(mse.forward(p, Target::Dense(y.view())).unwrap());
            model.backward_params_only(mse.backward());
            opt.step(&mut model);
        }
        (losses, model.param_values()[12..16].to_vec())
    }

    fn assert_trajectory(opt: &mut dyn Optimizer, losses: [f32; 6], w2: [f32; 4]) {
        let (l, w) = trajectory(opt);
        assert_abs_diff_eq!(l.as_slice(), losses.as_slice(), epsilon = 2e-6);
        assert_abs_diff_eq!(w.as_slice(), w2.as_slice(), epsilon = 1e-5);
    }

    #[test]
    fn sgd_golden_trajectory() {
        assert_trajectory(
            &mut Sgd::new(1.0).unwrap(),
            [
                0.28506806, 0.27242196, 0.26384243, 0.25850433, 0.25537634, 0.25360954,
            ],
            [0.54212910, -0.63051748, 0.12224758, 0.76040125],
        );
    }

    #[test]
    fn sgd_with_weight_decay_golden_trajectory() {
        assert_trajectory(
            &mut Sgd::new(1.0).unwrap().with_weight_decay(0.1).unwrap(),
            [
                0.28506806, 0.26770073, 0.25807536, 0.25342298, 0.25136709, 0.25052011,
            ],
            [0.28567970, -0.33985656, 0.06310656, 0.40015712],
        );
    }

    #[test]
    fn momentum_golden_trajectory() {
        // torch.optim.SGD(..., lr=0.5, momentum=0.9)
        assert_trajectory(
            &mut Momentum::new(0.5, 0.9, false).unwrap(),
            [
                0.28506806, 0.27845728, 0.26794392, 0.25774723, 0.25204229, 0.25242597,
            ],
            [0.43387154, -0.72135019, -0.00143211, 0.66496158],
        );
    }

    #[test]
    fn nesterov_with_weight_decay_golden_trajectory() {
        // torch.optim.SGD(..., lr=0.5, momentum=0.9, nesterov=True), weight_decay=0.01
        assert_trajectory(
            &mut Momentum::new(0.5, 0.9, true)
                .unwrap()
                .with_weight_decay(0.01)
                .unwrap(),
            [
                0.28506806, 0.27252319, 0.26033625, 0.25289512, 0.25127169, 0.25320008,
            ],
            [0.38309819, -0.64210725, -0.00127380, 0.58876288],
        );
    }

    #[test]
    fn adam_golden_trajectory() {
        // torch.optim.Adam(..., lr=0.1)
        assert_trajectory(
            &mut Adam::new(0.1).unwrap(),
            [
                0.28506806, 0.25951061, 0.25199696, 0.25672352, 0.26151335, 0.26174712,
            ],
            [0.37056872, -0.74114573, -0.00278065, 0.54889947],
        );
    }

    #[test]
    fn adam_with_weight_decay_golden_trajectory() {
        // torch.optim.Adam(..., lr=0.1), weight_decay=0.01
        assert_trajectory(
            &mut Adam::new(0.1).unwrap().with_weight_decay(0.01).unwrap(),
            [
                0.28506806, 0.26083297, 0.25095055, 0.25312752, 0.25790545, 0.25943777,
            ],
            [0.30619124, -0.70989472, -0.05363352, 0.47667411],
        );
    }

    #[test]
    fn refuses_bad_settings() {
        for lr in [0.0, -0.1, f32::NAN, f32::INFINITY] {
            assert!(Sgd::new(lr).is_err(), "lr {lr}");
            assert!(Adam::new(lr).is_err(), "lr {lr}");
        }
        assert!(Momentum::new(0.1, 1.0, false).is_err());
        assert!(Sgd::new(0.1).unwrap().with_weight_decay(-1.0).is_err());
        let e = Sgd::new(-0.1).unwrap_err().to_string();
        assert_eq!(
            e,
            "invalid `learning_rate` -0.1: must be a positive, finite number\n  hint: for example \
             `learning_rate = 0.01`"
        );
    }

    #[test]
    fn adam_keeps_decayed_weights_out_of_the_subnormal_range() {
        // A weight whose input is always 0 gets only its decay as gradient. Adam scales that
        // to steps of about lr, and near 0 the ε term makes it overshoot back and forth:
        // without the flush, this weight is subnormal (about −2e-40) after 5,000 steps.
        let mut model = Sequential::new().add(Linear::from_weights(array![[0.5]], array![0.0]));
        let mut adam = Adam::new(1e-3).unwrap().with_weight_decay(1e-4).unwrap();
        let x = array![[0.0]];
        let mut mse = Mse::new();
        for _ in 0..5000 {
            let p = model.forward(x.view());
            mse.forward(p, Target::Dense(array![[0.0]].view())).unwrap();
            model.backward_params_only(mse.backward());
            adam.step(&mut model);
            let w = model.param_values()[0];
            assert!(
                w == 0.0 || w.abs() >= f32::MIN_POSITIVE,
                "subnormal weight {w:e}"
            );
        }
        assert_eq!(model.param_values()[0], 0.0);
        assert_eq!(flush_subnormal(1e-39), 0.0);
        assert_eq!(flush_subnormal(-2e-38), -2e-38);
    }
}
