//! [`Sequential`]: layers applied one after another.

use std::fmt;

use ndarray::ArrayView2;

use crate::nn::layer::{Layer, LayerSpec, Param};

/// A stack of layers: `forward` runs them in order, `backward` in reverse.
///
/// ```
/// use mlp::{Init, Linear, Sequential, Sigmoid};
/// use ndarray_rand::rand::{SeedableRng, rngs::StdRng};
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let model = Sequential::new()
///     .add(Linear::new(2, 4, Init::Glorot, &mut rng))
///     .add(Sigmoid::new())
///     .add(Linear::new(4, 1, Init::Glorot, &mut rng))
///     .add(Sigmoid::new());
/// assert_eq!(model.param_count(), 17);
/// assert_eq!(
///     model.to_string(),
///     "Sequential: 4 layers, 17 parameters\n  \
///      0  Linear(2 → 4)  12 parameters\n  \
///      1  Sigmoid\n  \
///      2  Linear(4 → 1)  5 parameters\n  \
///      3  Sigmoid\n"
/// );
/// ```
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Layer>>,
}

impl Sequential {
    /// An empty model.
    pub fn new() -> Self {
        Self { layers: Vec::new() }
    }

    /// Appends `layer` (builder style).
    #[allow(clippy::should_implement_trait)] // `add` reads best in a builder chain
    pub fn add(mut self, layer: impl Layer + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Appends an already boxed layer.
    pub fn push(&mut self, layer: Box<dyn Layer>) {
        self.layers.push(layer);
    }

    /// The layers, first to last.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// The layers, mutably.
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer>] {
        &mut self.layers
    }

    /// The spec of every layer, first to last.
    pub fn specs(&self) -> Vec<LayerSpec> {
        self.layers.iter().map(|l| l.spec()).collect()
    }

    /// Puts every layer in training (`true`) or predict (`false`) mode; see
    /// [`Layer::set_training`].
    pub fn set_training(&mut self, training: bool) {
        for layer in self.layers.iter_mut() {
            layer.set_training(training);
        }
    }

    /// Runs `input` (B, I) through every layer and returns the last layer's output.
    ///
    /// **Panics** if a layer receives an input of the wrong width.
    pub fn forward<'a>(&'a mut self, input: ArrayView2<'a, f32>) -> ArrayView2<'a, f32> {
        let mut x = input;
        for layer in self.layers.iter_mut() {
            x = layer.forward(x);
        }
        x
    }

    /// Back-propagates dL/d(output) through every layer, last to first, storing every
    /// parameter gradient, and returns dL/d(input).
    pub fn backward<'a>(&'a mut self, grad_output: ArrayView2<'a, f32>) -> ArrayView2<'a, f32> {
        let mut g = grad_output;
        for layer in self.layers.iter_mut().rev() {
            g = layer.backward(g);
        }
        g
    }

    /// Like [`backward`](Sequential::backward) but without dL/d(input) of the first layer,
    /// which training never needs (for a first `Linear` layer that saves one matrix product).
    pub fn backward_params_only(&mut self, grad_output: ArrayView2<f32>) {
        let Some((first, rest)) = self.layers.split_first_mut() else {
            return;
        };
        let mut g = grad_output;
        for layer in rest.iter_mut().rev() {
            g = layer.backward(g);
        }
        first.backward_params_only(g);
    }

    /// Calls `visit(layer_index, param)` on every parameter, in a stable order: layer by
    /// layer, and within a layer in the order the layer gives (weight, then bias).
    pub fn visit_params(&mut self, visit: &mut dyn FnMut(usize, Param<'_>)) {
        for (i, layer) in self.layers.iter_mut().enumerate() {
            layer.visit_params(&mut |p| visit(i, p));
        }
    }

    /// Number of trainable numbers in the model.
    pub fn param_count(&self) -> usize {
        self.layers.iter().map(|l| l.param_count()).sum()
    }

    /// Every parameter value, flattened in [`visit_params`](Sequential::visit_params) order.
    pub fn param_values(&mut self) -> Vec<f32> {
        let mut out = vec![0.0; self.param_count()];
        self.copy_param_values(&mut out);
        out
    }

    /// Copies every parameter value into `out`, in
    /// [`param_values`](Sequential::param_values) order, without allocating.
    ///
    /// **Panics** if `out.len() != self.param_count()`.
    pub fn copy_param_values(&mut self, out: &mut [f32]) {
        assert_eq!(
            out.len(),
            self.param_count(),
            "copy_param_values: wrong number of values"
        );
        let mut at = 0;
        self.visit_params(&mut |_, p| {
            out[at..at + p.value.len()].copy_from_slice(p.value);
            at += p.value.len();
        });
    }

    /// Every parameter gradient from the last backward pass, in the same order as
    /// [`param_values`](Sequential::param_values).
    pub fn param_grads(&mut self) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.param_count());
        self.visit_params(&mut |_, p| out.extend_from_slice(p.grad));
        out
    }

    /// Overwrites every parameter from `values`, in
    /// [`param_values`](Sequential::param_values) order.
    ///
    /// **Panics** if `values.len() != self.param_count()`.
    pub fn set_param_values(&mut self, values: &[f32]) {
        assert_eq!(
            values.len(),
            self.param_count(),
            "set_param_values: wrong number of values"
        );
        let mut at = 0;
        self.visit_params(&mut |_, p| {
            let n = p.value.len();
            p.value.copy_from_slice(&values[at..at + n]);
            at += n;
        });
    }
}

impl fmt::Display for Sequential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Sequential: {} layers, {} parameters",
            self.layers.len(),
            self.param_count()
        )?;
        for (i, layer) in self.layers.iter().enumerate() {
            match layer.param_count() {
                0 => writeln!(f, "  {i}  {}", layer.spec())?,
                n => writeln!(f, "  {i}  {}  {n} parameters", layer.spec())?,
            }
        }
        Ok(())
    }
}
