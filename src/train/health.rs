//! The training-health report: is every layer of the network learning?
//!
//! While training, a [`HealthMonitor`] (an [`Observer`] of the training loop) records per
//! linear layer the gradient norm ‖dL/dW‖ (mean over every eighth step of the epoch), the
//! weight norm ‖W‖ at the end of each epoch, and the update-to-weight ratio ‖ΔW‖/‖W‖ of the
//! first step of each epoch. After training, [`activation_health`] runs the training rows through the
//! network once and counts, per activation layer, the ReLU units that are never positive
//! (dead: their gradient is zero for every row, so they never recover) and the sigmoid or
//! tanh units stuck on a flat end (saturated: derivative below 5% of its peak on at least
//! 95% of the rows). [`diagnose`] turns the numbers into named problems with hints:
//! **dead ReLU**, **saturated** units, **vanishing** and **exploding** gradients.

use std::path::Path;

use ndarray::{ArrayView2, Axis};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::nn::layer::LayerSpec;
use crate::nn::sequential::Sequential;
use crate::train::plot::{
    DrawResult, Frame, PALETTE, canvas, draw_legend, light_grid, render_png_with, write_png_with,
};
use crate::train::{EpochReport, Observer, TrainConfig};

/// A dead-ReLU or saturated fraction above this is reported as a problem.
pub const UNIT_PROBLEM_FRACTION: f32 = 0.25;
/// The first layer's per-weight gradient this many times smaller than the last layer's
/// means the gradient vanishes on its way down.
pub const VANISHING_RATIO: f32 = 1e-2;

/// A run whose best loss is below this fraction of its loss before training has learned
/// (a validation R² of 0.99 is 1% of the untrained network's loss on standardised targets).
pub const LEARNED: f32 = 1e-2;
/// An epoch's gradient norm this many times the layer's median means it exploded.
pub const EXPLODING_RATIO: f32 = 100.0;

/// The numbers of one linear layer over the epochs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearHealth {
    /// Position in the network.
    pub layer: usize,
    /// Such as `Linear(4 → 16)`.
    pub name: String,
    /// Number of weights (for per-weight comparisons between layers).
    pub weights: usize,
    /// ‖dL/dW‖ per epoch, the mean over every [`SAMPLE_EVERY`]-th step of the epoch.
    pub grad_norm: Vec<f32>,
    /// ‖W‖ at the end of each epoch.
    pub weight_norm: Vec<f32>,
    /// ‖ΔW‖/‖W‖ of the first step of each epoch (about 1e-3 is healthy).
    pub update_ratio: Vec<f32>,
}

/// The units of one activation layer on the training rows, after training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationHealth {
    /// Position in the network.
    pub layer: usize,
    /// `ReLU`, `Sigmoid` or `Tanh`.
    pub name: String,
    /// Units in the layer.
    pub units: usize,
    /// ReLU units with no positive output on any training row.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dead: Option<usize>,
    /// Sigmoid or tanh units on a flat end for at least 95% of the training rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saturated: Option<usize>,
}

/// A named problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// ReLU units that never fire.
    DeadRelu,
    /// Sigmoid or tanh units stuck on a flat end.
    Saturated,
    /// Gradients that shrink to nothing on the way to the first layer.
    Vanishing,
    /// Gradients that blow up.
    Exploding,
}

/// One problem found, in plain words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Problem {
    /// What kind.
    pub kind: ProblemKind,
    /// What was seen, with the numbers.
    pub message: String,
    /// What to do.
    pub hint: String,
}

/// The whole report; stored under `"health"` in the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Health {
    /// Per linear layer, first to last.
    pub linear: Vec<LinearHealth>,
    /// Per activation layer, first to last.
    pub activations: Vec<ActivationHealth>,
    /// Problems found (empty when training looks healthy).
    pub problems: Vec<Problem>,
}

/// Records gradient norms, weight norms and update ratios of every linear layer while
/// training runs. Costs one pass over the gradients every [`SAMPLE_EVERY`] steps and one
/// copy of the weights per epoch.
#[derive(Debug, Default)]
pub struct HealthMonitor {
    layers: Vec<LinearHealth>,
    /// Per layer: sum of the step gradient norms this epoch.
    grad_sum: Vec<f64>,
    steps: usize,
    /// Steps since training started.
    total_steps: usize,
    /// Steps whose gradients were measured this epoch.
    sampled: usize,
    /// Weights at the end of the last epoch (or the start), to measure the next step.
    snapshot: Vec<f32>,
    first_step: bool,
    ratio: Vec<f32>,
}

impl HealthMonitor {
    /// A monitor; it learns the layers when training starts.
    pub fn new() -> Self {
        Self::default()
    }

    /// The linear layers' curves recorded so far.
    pub fn linear(&self) -> &[LinearHealth] {
        &self.layers
    }

    /// Which layer each weight tensor belongs to, in `visit_params` order.
    fn weights_of(model: &mut Sequential) -> Vec<(usize, Vec<f32>)> {
        let mut out = Vec::new();
        model.visit_params(&mut |i, p| {
            if p.name == "weight" {
                out.push((i, p.value.to_vec()));
            }
        });
        out
    }
}

/// Gradient norms are measured on every this-many-th step of an epoch (and its first):
/// a pass over every gradient at each step would cost several percent of training. The
/// first epoch is measured from its second step on: at the very first step the output
/// layer still has its zero initial weights, so every gradient below it is exactly zero,
/// which says nothing about how the gradients flow.
pub const SAMPLE_EVERY: usize = 8;

/// ‖values‖, summed in eight lanes so the compiler can vectorise it.
fn norm(values: &[f32]) -> f64 {
    let mut lanes = [0f32; 8];
    let chunks = values.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l += v * v;
        }
    }
    let tail: f32 = rest.iter().map(|v| v * v).sum();
    (lanes.iter().map(|&l| l as f64).sum::<f64>() + tail as f64).sqrt()
}

impl Observer for HealthMonitor {
    fn start(&mut self, model: &mut Sequential) {
        let specs = model.specs();
        let weights = Self::weights_of(model);
        self.layers = weights
            .iter()
            .map(|(i, w)| LinearHealth {
                layer: *i,
                name: specs[*i].to_string(),
                weights: w.len(),
                grad_norm: Vec::new(),
                weight_norm: Vec::new(),
                update_ratio: Vec::new(),
            })
            .collect();
        self.snapshot = weights.into_iter().flat_map(|(_, w)| w).collect();
        self.grad_sum = vec![0.0; self.layers.len()];
        self.ratio = vec![0.0; self.layers.len()];
        self.steps = 0;
        self.total_steps = 0;
        self.sampled = 0;
        self.first_step = true;
    }

    fn after_step(&mut self, model: &mut Sequential) {
        self.steps += 1;
        self.total_steps += 1;
        let first = if self.total_steps == self.steps { 2 } else { 1 };
        if self.steps < first || !(self.steps - first).is_multiple_of(SAMPLE_EVERY) {
            return;
        }
        self.sampled += 1;
        let (mut k, mut at) = (0, 0);
        let first = std::mem::take(&mut self.first_step);
        let (grad_sum, ratio, snapshot) = (&mut self.grad_sum, &mut self.ratio, &self.snapshot);
        model.visit_params(&mut |_, p| {
            if p.name != "weight" || k >= grad_sum.len() {
                return;
            }
            grad_sum[k] += norm(p.grad);
            if first {
                let before = &snapshot[at..at + p.value.len()];
                let change: f64 = p
                    .value
                    .iter()
                    .zip(before)
                    .map(|(&a, &b)| ((a - b) as f64).powi(2))
                    .sum::<f64>()
                    .sqrt();
                // Against the weights before the step; a layer that starts at zero (the
                // output layer) has none, so its first step is measured against the weights
                // after it: the whole weight is that update, a ratio of 1.
                let scale = match norm(before) {
                    0.0 => norm(p.value),
                    n => n,
                };
                ratio[k] = (change / scale.max(1e-12)) as f32;
            }
            at += p.value.len();
            k += 1;
        });
    }

    fn after_epoch(&mut self, _report: &EpochReport, model: &mut Sequential) {
        let steps = self.sampled.max(1) as f64;
        // The weights are read where they are (no copy but the snapshot): this runs every
        // epoch.
        let (layers, snapshot) = (&mut self.layers, &mut self.snapshot);
        let (grad_sum, ratio) = (&self.grad_sum, &self.ratio);
        snapshot.clear();
        let mut k = 0;
        model.visit_params(&mut |_, p| {
            if p.name != "weight" || k >= layers.len() {
                return;
            }
            let layer = &mut layers[k];
            layer.grad_norm.push((grad_sum[k] / steps) as f32);
            layer.weight_norm.push(norm(p.value) as f32);
            layer.update_ratio.push(ratio[k]);
            snapshot.extend_from_slice(p.value);
            k += 1;
        });
        self.grad_sum.iter_mut().for_each(|g| *g = 0.0);
        self.steps = 0;
        self.sampled = 0;
        self.first_step = true;
    }
}

/// Dead and saturated units of every activation layer of `network` on the rows `x`
/// (standardised inputs), in chunks.
pub fn activation_health(network: &mut Sequential, x: ArrayView2<f32>) -> Vec<ActivationHealth> {
    let specs = network.specs();
    let width = |i: usize| {
        specs[..i]
            .iter()
            .rev()
            .find_map(|s| match s {
                LayerSpec::Linear { outputs, .. } => Some(*outputs),
                _ => None,
            })
            .unwrap_or(x.ncols())
    };
    // Per activation layer and unit: ever positive (ReLU) / rows on a flat end.
    let mut positive: Vec<Vec<bool>> = specs
        .iter()
        .enumerate()
        .map(|(i, _)| vec![false; width(i)])
        .collect();
    let mut flat: Vec<Vec<usize>> = specs
        .iter()
        .enumerate()
        .map(|(i, _)| vec![0; width(i)])
        .collect();
    for chunk in x.axis_chunks_iter(Axis(0), 512) {
        let mut values = chunk.to_owned();
        for (i, layer) in network.layers_mut().iter_mut().enumerate() {
            values = layer.forward(values.view()).to_owned();
            if let LayerSpec::Linear { .. } | LayerSpec::Dropout { .. } = specs[i] {
                continue;
            }
            for row in values.axis_iter(Axis(0)) {
                for (u, &y) in row.iter().enumerate() {
                    match specs[i] {
                        LayerSpec::Relu => positive[i][u] |= y > 0.0,
                        // Derivative below 5% of its peak: σ′ = y(1 − y) < 0.0125 of 0.25,
                        // tanh′ = 1 − y² < 0.05 of 1.
                        LayerSpec::Sigmoid => flat[i][u] += usize::from(y * (1.0 - y) < 0.0125),
                        LayerSpec::Tanh => flat[i][u] += usize::from(1.0 - y * y < 0.05),
                        LayerSpec::Linear { .. } | LayerSpec::Dropout { .. } => {}
                    }
                }
            }
        }
    }
    let rows = x.nrows().max(1);
    specs
        .iter()
        .enumerate()
        .filter(|(_, s)| !matches!(s, LayerSpec::Linear { .. } | LayerSpec::Dropout { .. }))
        .map(|(i, s)| ActivationHealth {
            layer: i,
            name: s.to_string(),
            units: width(i),
            dead: matches!(s, LayerSpec::Relu).then(|| positive[i].iter().filter(|p| !**p).count()),
            saturated: matches!(s, LayerSpec::Sigmoid | LayerSpec::Tanh)
                .then(|| flat[i].iter().filter(|&&n| n * 100 >= rows * 95).count()),
        })
        .collect()
}

fn median(values: &[f32]) -> f32 {
    let mut v: Vec<f32> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return f32::NAN;
    }
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// The report, with the problems named. `diverged` says whether training stopped on a
/// non-finite loss or weight; `learned`, whether its loss fell below [`LEARNED`] of where
/// it started, in which case small gradients in the first layers are those of a network
/// that fits, not of one whose first layers cannot learn (no "vanishing gradients").
pub fn diagnose(
    linear: Vec<LinearHealth>,
    activations: Vec<ActivationHealth>,
    config: &TrainConfig,
    diverged: bool,
    learned: bool,
) -> Health {
    let lr = config.learning_rate;
    let mut problems: Vec<Problem> = activations
        .iter()
        .flat_map(|a| unit_problems(a, lr))
        .collect();
    if !learned {
        problems.extend(vanishing(&linear, config));
    }
    problems.extend(exploding(&linear, diverged, lr));
    Health {
        linear,
        activations,
        problems,
    }
}

/// Too many dead (ReLU) or saturated (sigmoid, tanh) units in the activation layer `a`;
/// `lr` is the learning rate trained with.
fn unit_problems(a: &ActivationHealth, lr: f32) -> Vec<Problem> {
    let mut problems = Vec::new();
    let share = |n: usize| n as f32 / a.units.max(1) as f32;
    if let Some(dead) = a.dead.filter(|&d| share(d) > UNIT_PROBLEM_FRACTION) {
        problems.push(Problem {
            kind: ProblemKind::DeadRelu,
            message: format!(
                "dead ReLU: {dead} of the {} units of layer {} ({:.0}%) never output a \
                 positive value on the training rows, so they get no gradient and never \
                 recover",
                a.units,
                a.layer,
                share(dead) * 100.0
            ),
            hint: format!(
                "a learning rate too high knocks units dead: lower --lr (it is {lr}; try \
                 {}), or use --activation tanh",
                lr / 10.0
            ),
        });
    }
    if let Some(sat) = a.saturated.filter(|&s| share(s) > UNIT_PROBLEM_FRACTION) {
        problems.push(Problem {
            kind: ProblemKind::Saturated,
            message: format!(
                "saturated units: {sat} of the {} {} units of layer {} ({:.0}%) sit on a \
                 flat end of the curve for nearly every training row, where the gradient \
                 is almost zero",
                a.units,
                a.name,
                a.layer,
                share(sat) * 100.0
            ),
            hint: "use --activation relu, or lower --lr so the weights stay small".into(),
        });
    }
    problems
}

/// Vanishing gradients: the per-weight gradient size (RMS) of the first linear layer far
/// below the last's, epoch by epoch; the median ratio ignores the first epochs, when the
/// output layer starts at zero and passes no gradient down.
fn vanishing(linear: &[LinearHealth], config: &TrainConfig) -> Option<Problem> {
    let (first, last) = (linear.first()?, linear.last()?);
    if linear.len() < 2 {
        return None;
    }
    let rms = |l: &LinearHealth, e: usize| l.grad_norm[e] / (l.weights.max(1) as f32).sqrt();
    let epochs = first.grad_norm.len().min(last.grad_norm.len());
    let ratios: Vec<f32> = (epochs / 2..epochs)
        .map(|e| rms(first, e) / rms(last, e))
        .collect();
    let ratio = median(&ratios);
    if ratio >= VANISHING_RATIO || ratio.is_nan() {
        return None;
    }
    let activation = format!("{:?}", config.activation).to_lowercase();
    let optimizer = format!("{:?}", config.optimizer).to_lowercase();
    Some(Problem {
        kind: ProblemKind::Vanishing,
        message: format!(
            "vanishing gradients: per weight, the first layer's gradient is {} times \
             smaller than the last layer's ({} layers of {activation}), so the first \
             layers barely learn",
            format_ratio(1.0 / ratio),
            config.hidden.len()
        ),
        hint: match (config.activation, config.optimizer) {
            (crate::train::Activation::Relu, crate::train::OptimizerKind::Adam) => {
                "use fewer or wider layers".to_string()
            }
            (crate::train::Activation::Relu, _) => {
                "use fewer or wider layers, or --optimizer adam".to_string()
            }
            (_, crate::train::OptimizerKind::Adam) => format!(
                "use --activation relu ({activation} multiplies the gradient by at \
                 most {} per layer), or fewer layers",
                if activation == "sigmoid" { "0.25" } else { "1" }
            ),
            _ => format!(
                "use --activation relu, or --optimizer adam (which rescales small \
                 gradients) instead of {optimizer}, or fewer layers"
            ),
        },
    })
}

/// Exploding gradients: a layer's gradient not finite or far above its median, or training
/// that `diverged`; `lr` is the learning rate trained with.
fn exploding(linear: &[LinearHealth], diverged: bool, lr: f32) -> Option<Problem> {
    let exploded = linear.iter().find_map(|l| {
        let m = median(&l.grad_norm);
        l.grad_norm
            .iter()
            .position(|&g| !g.is_finite() || (m > 0.0 && g > EXPLODING_RATIO * m))
            .map(|e| (l, e, m))
    });
    if !diverged && exploded.is_none() {
        return None;
    }
    let message = match exploded {
        Some((l, e, m)) => format!(
            "exploding gradients: in epoch {} the gradient of layer {} ({}) reached {}, \
             {} times its median",
            e + 1,
            l.layer,
            l.name,
            format_ratio(l.grad_norm[e] as f64 as f32),
            format_ratio(l.grad_norm[e] / m)
        ),
        None => "exploding gradients: training diverged (the loss or a weight became \
                 infinite or NaN)"
            .to_string(),
    };
    Some(Problem {
        kind: ProblemKind::Exploding,
        message,
        hint: format!(
            "lower --lr (it is {lr}; try {}), and check the data for extreme or unscaled \
             values",
            lr / 10.0
        ),
    })
}

fn format_ratio(v: f32) -> String {
    if !v.is_finite() {
        "infinite".into()
    } else if v >= 1e4 || (v != 0.0 && v.abs() < 1e-2) {
        format!("{v:.1e}")
    } else if v >= 10.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

fn sci(v: f32) -> String {
    if v != 0.0 && !(1e-2..1e3).contains(&v.abs()) {
        format!("{v:.1e}")
    } else {
        format!("{v:.3}")
    }
}

impl std::fmt::Display for Health {
    /// The `health:` section `mlp train` prints.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "health:")?;
        // One line per layer, in network order.
        let mut lines: Vec<(usize, String)> = Vec::new();
        for l in &self.linear {
            let (first, last) = (l.grad_norm.first(), l.grad_norm.last());
            let (Some(&g0), Some(&g1)) = (first, last) else {
                continue;
            };
            lines.push((
                l.layer,
                format!(
                    "gradient norm {} → {}, weight norm {}, update/weight {}",
                    sci(g0),
                    sci(g1),
                    sci(*l.weight_norm.last().unwrap_or(&0.0)),
                    sci(median(&l.update_ratio)),
                ),
            ));
        }
        for a in &self.activations {
            let what = match (a.dead, a.saturated) {
                (Some(d), _) => format!("{d} of {} units dead", a.units),
                (_, Some(s)) => format!("{s} of {} units saturated", a.units),
                _ => continue,
            };
            lines.push((a.layer, what));
        }
        lines.sort_by_key(|(layer, _)| *layer);
        let names: std::collections::HashMap<usize, &str> = self
            .linear
            .iter()
            .map(|l| (l.layer, l.name.as_str()))
            .chain(self.activations.iter().map(|a| (a.layer, a.name.as_str())))
            .collect();
        for (layer, line) in lines {
            let name = names.get(&layer).copied().unwrap_or("");
            writeln!(f, "  {layer:>2} {name:<18} {line}")?;
        }
        if self.problems.is_empty() {
            writeln!(
                f,
                "  no problems found (no layer with over {:.0}% of its units dead or saturated, \
                 no vanishing or exploding gradients)",
                UNIT_PROBLEM_FRACTION * 100.0
            )?;
        }
        for p in &self.problems {
            writeln!(f, "  {}\n    hint: {}", p.message, p.hint)?;
        }
        Ok(())
    }
}

impl Health {
    /// Writes the per-layer gradient norms over the epochs (log scale) to `path`.
    pub fn write_png(&self, title: &str, path: &Path) -> crate::error::Result<()> {
        write_png_with(path, || self.render_png(title))
    }

    /// The gradient-norm chart as PNG bytes.
    pub fn render_png(&self, title: &str) -> std::result::Result<Vec<u8>, String> {
        let size = (1000, 600);
        render_png_with(size, "the gradient norms", |rgb| {
            self.draw(rgb, size, title)
        })
    }

    fn draw(&self, rgb: &mut [u8], size: (u32, u32), title: &str) -> DrawResult {
        let root = canvas(rgb, size)?;
        let values = self
            .linear
            .iter()
            .flat_map(|l| l.grad_norm.iter().copied())
            .filter(|v| v.is_finite() && *v > 0.0);
        let (lo, hi) = values.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let epochs = self
            .linear
            .iter()
            .map(|l| l.grad_norm.len())
            .max()
            .unwrap_or(1)
            .max(2);
        // Room above the curves for the legend.
        let (lo, hi) = if lo.is_finite() {
            (lo / 2.0, hi * 30.0)
        } else {
            (1e-6, 1.0)
        };
        let frame = Frame {
            title,
            title_size: 26,
            margin: 16,
            x_labels: 50,
            y_labels: 90,
            right_labels: 0,
        };
        let mut chart = frame
            .on(&root)
            .build_cartesian_2d(1f32..epochs as f32, (lo..hi).log_scale())?;
        light_grid(
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("gradient norm ‖dL/dW‖ (log scale)")
                .y_label_formatter(&|v| format!("{v:.0e}"))
                .x_label_formatter(&|v| format!("{}", v.round() as i64)),
        )
        .draw()?;
        for (k, l) in self.linear.iter().enumerate() {
            let colour = PALETTE[k % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    l.grad_norm
                        .iter()
                        .enumerate()
                        .filter(|(_, g)| g.is_finite() && **g > 0.0)
                        .map(|(e, &g)| ((e + 1) as f32, g)),
                    colour.stroke_width(2),
                ))?
                .label(format!("layer {} {}", l.layer, l.name))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], colour.stroke_width(2))
                });
        }
        draw_legend(&mut chart, SeriesLabelPosition::UpperRight)?;
        root.present()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{TrainRequest, prepare, train_observed};
    use crate::train::{Activation, OptimizerKind, StopReason};

    fn trained_health(config: TrainConfig) -> Health {
        let data = concat!(env!("CARGO_MANIFEST_DIR"), "/data/iris.csv");
        let request = TrainRequest {
            config,
            ..TrainRequest::new(data)
        };
        let prepared = prepare(&request).unwrap();
        let mut monitor = HealthMonitor::new();
        let trained = train_observed(
            &prepared,
            &request.config,
            None,
            &mut |_| {},
            Some(&mut monitor),
        )
        .unwrap();
        let mut network = trained.model.network;
        let activations = activation_health(&mut network, prepared.x_train.view());
        let diverged = matches!(trained.outcome.stop, StopReason::Diverged { .. });
        diagnose(
            monitor.linear().to_vec(),
            activations,
            &request.config,
            diverged,
            false,
        )
    }

    fn kinds(h: &Health) -> Vec<ProblemKind> {
        h.problems.iter().map(|p| p.kind).collect()
    }

    #[test]
    fn a_deep_sigmoid_net_on_plain_sgd_has_vanishing_gradients() {
        let h = trained_health(TrainConfig {
            hidden: vec![16; 6],
            activation: Activation::Sigmoid,
            optimizer: OptimizerKind::Sgd,
            learning_rate: 0.01,
            epochs: 30,
            patience: 0,
            ..TrainConfig::default()
        });
        assert!(kinds(&h).contains(&ProblemKind::Vanishing), "{h}");
        let p = h
            .problems
            .iter()
            .find(|p| p.kind == ProblemKind::Vanishing)
            .unwrap();
        assert!(p.message.starts_with("vanishing gradients: "), "{h}");
        assert!(
            p.hint.contains("--activation relu") && p.hint.contains("--optimizer adam"),
            "{h}"
        );
        assert_eq!(h.linear.len(), 7);
        assert!(h.linear.iter().all(|l| l.grad_norm.len() == 30));
    }

    /// Issue 20, item 11: the vanishing-gradient hint never tells a run on Adam to use
    /// Adam, and a run that learned (its loss under 1% of the start) is not called
    /// vanishing, whatever the ratio of its gradients.
    #[test]
    fn the_vanishing_hint_fits_the_run() {
        // The first layer's gradient per weight 1000 times below the last's.
        let layer = |layer: usize, grad: f32| LinearHealth {
            layer,
            name: format!("Linear({layer})"),
            weights: 100,
            grad_norm: vec![grad; 10],
            weight_norm: vec![1.0; 10],
            update_ratio: vec![1e-3; 10],
        };
        let linear = vec![layer(0, 1e-3), layer(2, 1.0)];
        let hint = |optimizer: OptimizerKind, learned: bool| {
            let config = TrainConfig {
                hidden: vec![8],
                optimizer,
                ..TrainConfig::default()
            };
            let h = diagnose(linear.clone(), vec![], &config, false, learned);
            h.problems
                .iter()
                .find(|p| p.kind == ProblemKind::Vanishing)
                .map(|p| p.hint.clone())
        };
        assert_eq!(
            hint(OptimizerKind::Adam, false).as_deref(),
            Some("use fewer or wider layers")
        );
        assert_eq!(
            hint(OptimizerKind::Sgd, false).as_deref(),
            Some("use fewer or wider layers, or --optimizer adam")
        );
        assert_eq!(hint(OptimizerKind::Sgd, true), None);
    }

    #[test]
    fn a_relu_net_pushed_with_a_huge_learning_rate_has_dead_units() {
        let h = trained_health(TrainConfig {
            hidden: vec![64, 64],
            optimizer: OptimizerKind::Sgd,
            learning_rate: 3.0,
            epochs: 30,
            patience: 0,
            folds: 0,
            ..TrainConfig::default()
        });
        let p = h.problems.iter().find(|p| p.kind == ProblemKind::DeadRelu);
        let p = p.unwrap_or_else(|| panic!("no dead ReLU found:\n{h}"));
        assert!(p.message.starts_with("dead ReLU: "), "{h}");
        assert!(p.hint.contains("lower --lr (it is 3"), "{h}");
    }

    #[test]
    fn the_default_network_on_iris_is_healthy() {
        let h = trained_health(TrainConfig {
            epochs: 60,
            ..TrainConfig::default()
        });
        assert_eq!(kinds(&h), [], "{h}");
        // The first epoch's gradients are measured after the zero-initialised output layer
        // has moved, so none below it reads an exact zero.
        assert!(h.linear.iter().all(|l| l.grad_norm[0] > 0.0), "{h}");
        // The output layer starts at zero: its first update is the whole of its weights.
        let output = h.linear.last().unwrap();
        assert!((output.update_ratio[0] - 1.0).abs() < 1e-6, "{h}");
        // Adam's steps at 1e-3 move the weights by a small fraction of their size.
        for l in &h.linear {
            let r = median(&l.update_ratio);
            assert!(r > 1e-5 && r < 0.1, "{h}");
        }
    }
}
