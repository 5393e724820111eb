//! One row's journey through a trained network: the forward pass layer by layer, the loss,
//! and the backward pass from dL/dL = 1 in the study note's form: at every node,
//! *downstream gradient = local derivative × upstream gradient*.
//!
//! [`explain`] returns the numbers; its [`Display`](std::fmt::Display) prints them the way
//! `mlp explain` does. Every gradient is what the layers' own `backward` computed, so the
//! printout is the training code at work, not a re-derivation.

use std::fmt::{self, Write as _};
use std::path::Path;

use ndarray::{Array2, ArrayView2, Axis};
use serde::Serialize;

use crate::error::{Error, Result, escape_controls};
use crate::nn::layer::{Layer, LayerSpec};
use crate::nn::loss::{Loss, Mse, SoftmaxCrossEntropy, Target, softmax_rows};
use crate::tabular::encoding::{Feature, TargetEncoding, Targets, Task, UnknownCategory};
use crate::tabular::labelled::read_table;
use crate::tabular::model::{Model, Predictions};

/// How many values of a vector the text form shows.
const SHOW: usize = 6;

/// The gradient rule of one layer, with the numbers it produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Local {
    /// A [`Linear`](crate::Linear) layer: `dL/dW = xᵀ·dy`, `dL/db = dy`, `dL/dx = dy·Wᵀ`.
    Linear {
        /// dL/dW, `(inputs, outputs)`: for one row, the outer product of `x` and `dy`.
        grad_weight: Vec<Vec<f32>>,
        /// dL/db, `(outputs)`: equal to `dy`.
        grad_bias: Vec<f32>,
    },
    /// An element-wise activation: `dL/dx = f′ ⊙ dy`, one multiplication node per unit.
    Elementwise {
        /// The derivative's formula, such as `σ′ = y·(1 − y)`.
        rule: &'static str,
        /// `f′` at this row's values (the local derivative).
        derivative: Vec<f32>,
    },
}

/// One layer on the way in and on the way back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerTrace {
    /// Position in the network.
    pub index: usize,
    /// The layer, such as `Linear(4 → 16)`.
    pub layer: String,
    /// Its forward formula, such as `y = x·W + b`.
    pub formula: &'static str,
    /// What came in (x).
    pub input: Vec<f32>,
    /// What went out (y).
    pub output: Vec<f32>,
    /// The upstream gradient dL/dy.
    pub grad_output: Vec<f32>,
    /// The local derivative and, for a linear layer, the parameter gradients.
    pub local: Local,
    /// The downstream gradient dL/dx, passed to the layer below.
    pub grad_input: Vec<f32>,
}

/// The loss node: the first step of the backward pass.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LossTrace {
    /// Its name and formula.
    pub formula: &'static str,
    /// The loss for this row.
    pub value: f32,
    /// dL/d(network output): the rule, then the values.
    pub rule: &'static str,
    /// dL/d(network output).
    pub grad: Vec<f32>,
}

/// What the network predicts for the row, in the target's terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "task", rename_all = "snake_case")]
pub enum Prediction {
    /// A class.
    Classification {
        /// The true label.
        target: String,
        /// The most probable label.
        predicted: String,
        /// Every label with its softmax probability, in output order.
        probabilities: Vec<(String, f32)>,
    },
    /// A number, in the target's units.
    Regression {
        /// The true value.
        target: f64,
        /// The predicted value.
        predicted: f64,
    },
}

/// One row explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The data file.
    pub file: String,
    /// The data row (1 is the first row after the header).
    pub row: usize,
    /// The row's line in the file.
    pub line: usize,
    /// The name of every network input: a column, or `column=category` for one-hot inputs.
    pub input_names: Vec<String>,
    /// Layers, first to last.
    pub layers: Vec<LayerTrace>,
    /// The loss node.
    pub loss: LossTrace,
    /// The prediction of the network walked through.
    pub prediction: Prediction,
    /// For a k-fold ensemble: which network the walk is, and what the model predicts (the
    /// average over all its networks). Absent for a single network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ensemble: Option<EnsembleNote>,
    /// The row's missing cells, and the model's fill value each became (the network saw
    /// the fill, not the data). Empty when no cell was missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub filled: Vec<FilledCell>,
}

/// A missing cell of the explained row, filled with the model's value for its column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilledCell {
    /// The column.
    pub column: String,
    /// The value it was filled with: the training median, or the most frequent category.
    pub value: String,
}

/// The missing feature cells of row `index` of `table`, with what the model fills them
/// with (a cell with no fill value is refused before this is asked).
fn filled_cells(features: &[Feature], table: &crate::data::Table, index: usize) -> Vec<FilledCell> {
    features
        .iter()
        .filter_map(|f| {
            let column = table.column(f.name())?;
            if !column.is_missing(index) {
                return None;
            }
            let value = fill_of(f)?;
            Some(FilledCell {
                column: f.name().to_string(),
                value,
            })
        })
        .collect()
}

/// What a missing cell of feature `f` is filled with, as text: a date's parts each get
/// their own median (`visit.month 6, visit.weekday 3, …`). `None` without fill values.
fn fill_of(f: &Feature) -> Option<String> {
    match f {
        Feature::Numeric { fill, .. }
        | Feature::Robust { fill, .. }
        | Feature::Piecewise { fill, .. } => fill.map(|v| v.to_string()),
        Feature::Categorical { fill, .. } => fill.clone(),
        Feature::Date { parts, .. } => {
            let parts: Option<Vec<String>> = (parts.iter())
                .map(|p| Some(format!("{} {}", p.scale.name(), fill_of(&p.scale)?)))
                .collect();
            Some(parts?.join(", "))
        }
    }
}

/// The walk of a k-fold ensemble's first network, next to the ensemble's prediction.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EnsembleNote {
    /// The network walked through (1-based): always 1, the model's `layers`.
    pub network: usize,
    /// Networks in the ensemble.
    pub networks: usize,
    /// What the model predicts: the mean of every network's probabilities (the class with
    /// the largest mean), or of their values.
    pub prediction: Prediction,
}

/// Explains data row `row` (1-based, the first row after the header) of the CSV at `path`.
///
/// Refuses a row that does not exist and a row whose target or a feature is missing, with
/// the file, line and column.
pub fn explain_file(model: &mut Model, path: &Path, row: usize) -> Result<Explanation> {
    let bytes = crate::fsutil::read_data(path)?;
    let table = read_table(model, path, &bytes)?;
    if row == 0 || row > table.rows() {
        return Err(Error::data(
            table.location(None, None),
            format!(
                "there is no data row {row} (--row): the file has rows 1 to {}",
                table.rows()
            ),
            format!(
                "pass --row between 1 and {} (row 1 is the first line after the header)",
                table.rows()
            ),
        ));
    }
    let index = row - 1;
    let encoding = &model.file.encoding;
    let x = encoding
        .encode(&table, &[index], UnknownCategory::default())?
        .inputs;
    let y = encoding.targets(&table, &[index])?;
    let mut explanation = explain(model, x.view(), &y);
    explanation.filled = filled_cells(&model.file.encoding.features, &table, index);
    explanation.file = path.display().to_string();
    explanation.row = row;
    explanation.line = table.line(index);
    Ok(explanation)
}

/// Explains one encoded row: `x` is `(1, inputs)`, `y` its one target.
///
/// For a k-fold ensemble the walk is through its first network, and
/// [`Explanation::ensemble`] holds the model's averaged prediction.
///
/// The loss is the one the model is judged by: plain softmax cross-entropy for classes
/// (no label smoothing), mean squared error on the standardised value for numbers.
///
/// **Panics** if `x` is not one row of the model's input width or `y` not one target.
pub fn explain(model: &mut Model, x: ArrayView2<f32>, y: &Targets) -> Explanation {
    assert_eq!(x.nrows(), 1, "explain: one row at a time");
    assert_eq!(y.len(), 1, "explain: one target");
    let specs = model.network.specs();
    let layers = model.network.layers_mut();
    let values = forward(layers, x);
    let output = values.last().expect("at least the input").clone();
    let loss = loss_trace(output.view(), y);
    let traces = backward(layers, &specs, &values, &loss.grad);
    let prediction = network_prediction(model, output.view(), y);
    let ensemble = (!model.ensemble.is_empty()).then(|| ensemble_note(model, x, &prediction));
    let encoding = &model.file.encoding;
    Explanation {
        file: String::new(),
        row: 0,
        line: 0,
        input_names: input_names(&encoding.features),
        layers: traces,
        loss,
        prediction,
        ensemble,
        filled: Vec::new(),
    }
}

/// The forward pass of the row `x`, keeping every layer's input and output: the input,
/// then each layer's output.
fn forward(layers: &mut [Box<dyn Layer>], x: ArrayView2<f32>) -> Vec<Array2<f32>> {
    let mut values: Vec<Array2<f32>> = vec![x.to_owned()];
    for layer in layers.iter_mut() {
        let out = layer
            .forward(values.last().expect("the input").view())
            .to_owned();
        values.push(out);
    }
    values
}

/// The loss node that starts the backward pass: dL/dL = 1, times dL/d(output).
fn loss_trace(output: ArrayView2<f32>, y: &Targets) -> LossTrace {
    match y {
        Targets::Classes(c) => {
            let mut ce = SoftmaxCrossEntropy::new();
            let value = ce
                .forward(output, Target::Classes(c))
                .expect("one class index within the model's outputs");
            LossTrace {
                formula: "softmax cross-entropy: L = −log softmax(z)[target]",
                value,
                rule: "dL/dz = softmax(z) − onehot(target)",
                grad: ce.backward().iter().copied().collect(),
            }
        }
        Targets::Values(t) => {
            let mut mse = Mse::new();
            let value = mse
                .forward(output, Target::Dense(t.view()))
                .expect("one value");
            LossTrace {
                formula: "squared error on the standardised target: L = (p − t)²",
                value,
                rule: "dL/dp = 2·(p − t)",
                grad: mse.backward().iter().copied().collect(),
            }
        }
    }
}

/// The backward pass from the loss gradient `loss_grad`, last layer first (each layer
/// turns dL/dy into dL/dx); the traces come back first layer first. `values` are the
/// forward pass's.
fn backward(
    layers: &mut [Box<dyn Layer>],
    specs: &[LayerSpec],
    values: &[Array2<f32>],
    loss_grad: &[f32],
) -> Vec<LayerTrace> {
    let mut grad = Array2::from_shape_vec((1, loss_grad.len()), loss_grad.to_vec())
        .expect("one row of outputs");
    let mut traces = Vec::with_capacity(layers.len());
    for (index, layer) in layers.iter_mut().enumerate().rev() {
        let grad_input = layer.backward(grad.view()).to_owned();
        let (input, out) = (&values[index], &values[index + 1]);
        let spec = specs[index];
        traces.push(LayerTrace {
            index,
            layer: spec.to_string(),
            formula: formula(spec),
            input: input.iter().copied().collect(),
            output: out.iter().copied().collect(),
            grad_output: grad.iter().copied().collect(),
            local: local(layer.as_mut(), spec, input, out),
            grad_input: grad_input.iter().copied().collect(),
        });
        grad = grad_input;
    }
    traces.reverse();
    traces
}

/// A layer's local derivative at its `input` and output `out`, after its backward pass:
/// a linear layer's parameter gradients, or an activation's derivative.
fn local(layer: &mut dyn Layer, spec: LayerSpec, input: &Array2<f32>, out: &Array2<f32>) -> Local {
    match spec {
        LayerSpec::Linear { outputs, .. } => {
            let mut grads: Vec<Vec<f32>> = Vec::new();
            layer.visit_params(&mut |p| grads.push(p.grad.to_vec()));
            let grad_bias = grads.pop().expect("a bias");
            let grad_weight = grads.pop().expect("a weight");
            Local::Linear {
                grad_weight: grad_weight.chunks(outputs).map(<[f32]>::to_vec).collect(),
                grad_bias,
            }
        }
        LayerSpec::Relu => Local::Elementwise {
            rule: "relu′ = 1 if x > 0 else 0",
            derivative: input.iter().map(|&v| f32::from(v > 0.0)).collect(),
        },
        LayerSpec::Sigmoid => Local::Elementwise {
            rule: "σ′ = y·(1 − y)",
            derivative: out.iter().map(|&s| s * (1.0 - s)).collect(),
        },
        LayerSpec::Tanh => Local::Elementwise {
            rule: "tanh′ = 1 − y²",
            derivative: out.iter().map(|&t| 1.0 - t * t).collect(),
        },
        LayerSpec::Dropout { .. } => Local::Elementwise {
            rule: "dropout′ = 1 at predict time (the identity)",
            derivative: vec![1.0; input.len()],
        },
    }
}

/// What the walked network's `output` predicts, next to the true target `y`.
fn network_prediction(model: &Model, output: ArrayView2<f32>, y: &Targets) -> Prediction {
    let encoding = &model.file.encoding;
    match (&encoding.target, y) {
        (TargetEncoding::Classes { labels, .. }, Targets::Classes(c)) => {
            let mut p = Array2::zeros(output.dim());
            softmax_rows(output, p.view_mut());
            let best = crate::train::metrics::argmax(p.index_axis(Axis(0), 0));
            Prediction::Classification {
                target: labels[c[0]].clone(),
                predicted: labels[best].clone(),
                probabilities: labels.iter().cloned().zip(p.iter().copied()).collect(),
            }
        }
        (TargetEncoding::Values { .. }, Targets::Values(t)) => Prediction::Regression {
            target: encoding.values_from_outputs(t.view())[0],
            predicted: encoding.values_from_outputs(output)[0],
        },
        _ => panic!("explain: the target's kind does not match the model's task"),
    }
}

/// The ensemble's prediction for the row `x`, with the labels and target of the network's
/// `prediction`.
fn ensemble_note(model: &mut Model, x: ArrayView2<f32>, prediction: &Prediction) -> EnsembleNote {
    let prediction = match (model.predict_encoded(x), prediction) {
        (
            Predictions::Classes {
                classes,
                probabilities,
            },
            Prediction::Classification {
                target,
                probabilities: labelled,
                ..
            },
        ) => Prediction::Classification {
            target: target.clone(),
            predicted: labelled[classes[0]].0.clone(),
            probabilities: (labelled.iter().map(|(l, _)| l.clone()))
                .zip(probabilities.iter().copied())
                .collect(),
        },
        (Predictions::Values(v), Prediction::Regression { target, .. }) => Prediction::Regression {
            target: *target,
            predicted: v[0],
        },
        _ => unreachable!("the same task"),
    };
    EnsembleNote {
        network: 1,
        networks: 1 + model.ensemble.len(),
        prediction,
    }
}

/// The forward formula of a layer, as the study note writes it.
fn formula(spec: LayerSpec) -> &'static str {
    match spec {
        LayerSpec::Linear { .. } => "y = x·W + b",
        LayerSpec::Relu => "y = max(0, x)",
        LayerSpec::Sigmoid => "y = σ(x) = 1 / (1 + e^−x)",
        LayerSpec::Tanh => "y = tanh(x)",
        LayerSpec::Dropout { .. } => "y = x at predict time (while training, y = x·m / (1 − p))",
    }
}

/// A prediction as `explain` prints it: the class and its probabilities, or the value.
fn prediction_text(prediction: &Prediction) -> String {
    match prediction {
        Prediction::Classification {
            predicted,
            probabilities,
            ..
        } => {
            let p: Vec<String> = probabilities
                .iter()
                .map(|(l, p)| format!("{} {p:.4}", escape_controls(l)))
                .collect();
            format!(
                "{}; probabilities: {}",
                escape_controls(predicted),
                p.join(", ")
            )
        }
        Prediction::Regression { predicted, .. } => predicted.to_string(),
    }
}

/// One name per network input.
fn input_names(features: &[Feature]) -> Vec<String> {
    features
        .iter()
        .flat_map(|f| match f {
            Feature::Numeric { name, .. } | Feature::Robust { name, .. } => vec![name.clone()],
            Feature::Piecewise { name, edges, .. } => std::iter::once(name.clone())
                .chain(
                    edges
                        .windows(2)
                        // Edges are values of the column (f32), shown as such: 4.3, not
                        // 4.300000190734863.
                        .map(|e| format!("{name} in [{}, {}]", e[0] as f32, e[1] as f32)),
                )
                .collect(),
            Feature::Categorical {
                name, categories, ..
            } => categories.iter().map(|c| format!("{name}={c}")).collect(),
            // Each part under its own name: `time_hour.month`.
            Feature::Date { parts, .. } => parts
                .iter()
                .flat_map(|p| input_names(std::slice::from_ref(&p.scale)))
                .collect(),
        })
        .collect()
}

/// `[a, b, c, … (n values)]`, with at most [`SHOW`] values.
fn vector(values: &[f32]) -> String {
    let shown: Vec<String> = values.iter().take(SHOW).map(|&v| number(v)).collect();
    if values.len() > SHOW {
        format!("[{}, … ({} values)]", shown.join(", "), values.len())
    } else {
        format!("[{}]", shown.join(", "))
    }
}

fn number(v: f32) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if v != 0.0 && !(1e-3..1e4).contains(&v.abs()) {
        format!("{v:.2e}")
    } else {
        format!("{v:.4}")
    }
}

fn norm(values: impl IntoIterator<Item = f32>) -> f32 {
    values.into_iter().map(|v| v * v).sum::<f32>().sqrt()
}

impl Explanation {
    /// The task of the explained model.
    pub fn task(&self) -> Task {
        match self.prediction {
            Prediction::Classification { .. } => Task::Classification,
            Prediction::Regression { .. } => Task::Regression,
        }
    }
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_header(&mut s);
        let _ = writeln!(s);
        self.write_forward(&mut s);
        let _ = writeln!(s);
        self.write_backward(&mut s);
        f.write_str(&s)
    }
}

impl Explanation {
    /// The row, its true target and, for an ensemble, which network is walked.
    fn write_header(&self, s: &mut String) {
        let truth = match &self.prediction {
            Prediction::Classification { target, .. } => escape_controls(target),
            Prediction::Regression { target, .. } => format!("{target}"),
        };
        let _ = writeln!(
            s,
            "{}, row {} (line {}), true target: {truth}",
            escape_controls(&self.file),
            self.row,
            self.line
        );
        if !self.filled.is_empty() {
            let cells: Vec<String> = (self.filled.iter())
                .map(|c| {
                    let (column, value) = (escape_controls(&c.column), escape_controls(&c.value));
                    format!("{column} = {value}")
                })
                .collect();
            let _ = writeln!(
                s,
                "missing cells, filled with the model's values (the network sees these, not \
                 the data): {}",
                cells.join(", ")
            );
        }
        if let Some(e) = &self.ensemble {
            let _ = writeln!(
                s,
                "network 1 of {k}: the model is an ensemble of {k} networks (one per fold), and \
                 its prediction averages all {k}; below is network 1 alone",
                k = e.networks
            );
        }
    }

    /// The named inputs, every layer's output, the loss and the prediction.
    fn write_forward(&self, s: &mut String) {
        let _ = writeln!(s, "forward");
        let input = self.layers.first().map_or(&[][..], |l| &l.input[..]);
        let named: Vec<String> = self
            .input_names
            .iter()
            .zip(input)
            .take(SHOW)
            .map(|(n, &v)| format!("{} {}", escape_controls(n), number(v)))
            .collect();
        let more = if input.len() > SHOW {
            format!(", … ({} inputs)", input.len())
        } else {
            String::new()
        };
        let _ = writeln!(s, "  x (standardised): {}{more}", named.join(", "));
        let width = self.layers.iter().map(|l| l.layer.chars().count()).max();
        let width = width.unwrap_or(0);
        for l in &self.layers {
            let _ = writeln!(
                s,
                "  {:>2}  {:<width$}  {:<26} y = {}",
                l.index,
                l.layer,
                l.formula,
                vector(&l.output)
            );
        }
        let _ = writeln!(
            s,
            "  loss  {} = {}",
            self.loss.formula,
            number(self.loss.value)
        );
        let _ = writeln!(s, "  prediction: {}", prediction_text(&self.prediction));
        if let Some(e) = &self.ensemble {
            let _ = writeln!(
                s,
                "  the model's prediction (mean of {} networks): {}",
                e.networks,
                prediction_text(&e.prediction)
            );
        }
    }

    /// The loss gradient, then every layer's gradients, last layer first.
    fn write_backward(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "backward (from dL/dL = 1; at every node: downstream = local × upstream)"
        );
        let _ = writeln!(
            s,
            "  loss  {}\n        = {}",
            self.loss.rule,
            vector(&self.loss.grad)
        );
        for l in self.layers.iter().rev() {
            let _ = writeln!(s, "  {:>2}  {}", l.index, l.layer);
            let _ = writeln!(s, "        upstream   dL/dy = {}", vector(&l.grad_output));
            write_local(s, l);
        }
    }
}

/// A layer's local gradients and the downstream gradient they give.
fn write_local(s: &mut String, l: &LayerTrace) {
    match &l.local {
        Local::Linear {
            grad_weight,
            grad_bias,
        } => {
            let rows = grad_weight.len();
            let cols = grad_bias.len();
            let flat: Vec<f32> = grad_weight.iter().flatten().copied().collect();
            let _ = writeln!(
                s,
                "        dL/dW = xᵀ·dy ({rows}×{cols}, norm {}): first row {}",
                number(norm(flat)),
                vector(grad_weight.first().map_or(&[][..], |r| &r[..]))
            );
            let _ = writeln!(s, "        dL/db = dy = {}", vector(grad_bias));
            let _ = writeln!(
                s,
                "        downstream dL/dx = dy·Wᵀ = {} (norm {})",
                vector(&l.grad_input),
                number(norm(l.grad_input.iter().copied()))
            );
        }
        Local::Elementwise { rule, derivative } => {
            let _ = writeln!(s, "        local      {rule} = {}", vector(derivative));
            let _ = writeln!(
                s,
                "        downstream dL/dx = local ⊙ upstream = {}",
                vector(&l.grad_input)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tabular::encoding::{Encoding, Feature, TargetEncoding};
    use crate::tabular::model::{
        FORMAT, Metrics, ModelFile, TrainingRecord, VERSION, layer_records,
    };
    use crate::train::{Activation, History, StopReason, TrainConfig, build_network};
    use ndarray::array;

    /// A small model with random weights everywhere (also the output layer, which
    /// `build_network` starts at zero) for any activation and task.
    pub(crate) fn random_model(activation: Activation, task: Task) -> Model {
        let mut network = build_network(3, &[5, 4], 3, activation, 7);
        let values = network.param_values();
        let noise: Vec<f32> = (0..values.len())
            .map(|i| ((i * 7919 % 101) as f32 / 101.0 - 0.5) * 1.2)
            .collect();
        network.set_param_values(&noise);
        let (target, outputs) = match task {
            Task::Classification => (
                TargetEncoding::Classes {
                    name: "kind".into(),
                    labels: vec!["a".into(), "b".into(), "c".into()],
                    counts: vec![5, 3, 2],
                },
                3,
            ),
            Task::Regression => (
                TargetEncoding::Values {
                    name: "price".into(),
                    mean: 10.0,
                    std: 2.0,
                },
                1,
            ),
        };
        if outputs == 1 {
            network = build_network(3, &[5, 4], 1, activation, 7);
            let n = network.param_count();
            network.set_param_values(&noise[..n]);
        }
        let config = TrainConfig::default();
        let file = ModelFile {
            format: FORMAT.into(),
            version: VERSION,
            task,
            encoding: Encoding {
                features: vec![
                    Feature::Numeric {
                        name: "u".into(),
                        mean: 0.0,
                        std: 1.0,
                        fill: None,
                    },
                    Feature::Categorical {
                        name: "colour".into(),
                        categories: vec!["red".into(), "blue".into()],
                        fill: None,
                    },
                ],
                target,
            },
            layers: layer_records(&mut network),
            ensemble: Vec::new(),
            training: TrainingRecord {
                data_file: "t.csv".into(),
                data_sha256: String::new(),
                rows: 1,
                dropped_rows: 0,
                filled_cells: 0,
                train_rows: 1,
                validation_rows: 0,
                config,
                epochs_run: 1,
                stop: StopReason::Completed,
                history: History::default(),
                refit_epochs: None,
            },
            metrics: Metrics {
                best_epoch: 1,
                train_loss: 0.0,
                validation_loss: None,
                validation_accuracy: None,
                validation_r2: None,
            },
            health: None,
            calibration: Default::default(),
            residuals: None,
        };
        Model {
            file,
            network,
            ensemble: Vec::new(),
        }
    }

    /// The loss of the row with the network's parameters replaced by `params`.
    fn loss_at(model: &mut Model, params: &[f32], x: ArrayView2<f32>, y: &Targets) -> f64 {
        model.network.set_param_values(params);
        explain(model, x, y).loss.value as f64
    }

    /// Every printed gradient, dL/dW, dL/db of each linear layer and dL/dx of the input,
    /// equals the central finite difference of the row's loss.
    #[test]
    fn gradients_equal_finite_differences_of_the_rows_loss() {
        for (activation, task) in [
            (Activation::Relu, Task::Classification),
            (Activation::Sigmoid, Task::Classification),
            (Activation::Tanh, Task::Regression),
        ] {
            let mut model = random_model(activation, task);
            let x = array![[0.7, 1.0, 0.0]];
            let y = match task {
                Task::Classification => Targets::Classes(vec![2]),
                Task::Regression => Targets::Values(array![[0.8]]),
            };
            let e = explain(&mut model, x.view(), &y);
            // The parameter gradients as explain reports them, in param_values order.
            let mut analytic: Vec<f32> = Vec::new();
            for l in &e.layers {
                if let Local::Linear {
                    grad_weight,
                    grad_bias,
                } = &l.local
                {
                    analytic.extend(grad_weight.iter().flatten());
                    analytic.extend(grad_bias);
                }
            }
            let params = model.network.param_values();
            assert_eq!(analytic.len(), params.len());
            let eps = 1e-2f32;
            for (i, &a) in analytic.iter().enumerate() {
                let mut p = params.clone();
                p[i] += eps;
                let up = loss_at(&mut model, &p, x.view(), &y);
                p[i] -= 2.0 * eps;
                let down = loss_at(&mut model, &p, x.view(), &y);
                let numeric = (up - down) / (2.0 * eps as f64);
                assert!(
                    (a as f64 - numeric).abs() < 2e-3 + 2e-2 * numeric.abs(),
                    "{activation:?} param {i}: explain {a}, finite difference {numeric}"
                );
            }
            model.network.set_param_values(&params);
            // dL/dx of the first layer: nudge the inputs.
            for j in 0..3 {
                let mut xp = x.clone();
                xp[[0, j]] += eps;
                let up = explain(&mut model, xp.view(), &y).loss.value as f64;
                xp[[0, j]] -= 2.0 * eps;
                let down = explain(&mut model, xp.view(), &y).loss.value as f64;
                let numeric = (up - down) / (2.0 * eps as f64);
                let a = e.layers[0].grad_input[j] as f64;
                assert!(
                    (a - numeric).abs() < 2e-3 + 2e-2 * numeric.abs(),
                    "{activation:?} input {j}: explain {a}, finite difference {numeric}"
                );
            }
        }
    }

    /// The study note's nodes: an activation's downstream gradient is its local derivative
    /// times the upstream one, and a linear layer's dL/db is dy and dL/dW is the outer
    /// product xᵀ·dy; the loss gradient is softmax − onehot.
    #[test]
    fn every_node_is_local_times_upstream() {
        let mut model = random_model(Activation::Sigmoid, Task::Classification);
        let x = array![[-0.3, 0.0, 1.0]];
        let e = explain(&mut model, x.view(), &Targets::Classes(vec![0]));
        for l in &e.layers {
            match &l.local {
                Local::Elementwise { derivative, .. } => {
                    for ((d, u), g) in derivative.iter().zip(&l.grad_output).zip(&l.grad_input) {
                        assert!((d * u - g).abs() <= 1e-7, "{}: {d}·{u} ≠ {g}", l.layer);
                    }
                }
                Local::Linear {
                    grad_weight,
                    grad_bias,
                } => {
                    assert_eq!(grad_bias, &l.grad_output);
                    for (i, row) in grad_weight.iter().enumerate() {
                        for (j, &g) in row.iter().enumerate() {
                            let outer = l.input[i] * l.grad_output[j];
                            assert!((g - outer).abs() <= 1e-6, "{}: dW[{i},{j}]", l.layer);
                        }
                    }
                }
            }
        }
        // Each layer's upstream gradient is the downstream one of the layer above.
        for pair in e.layers.windows(2) {
            assert_eq!(pair[0].grad_output, pair[1].grad_input);
        }
        let Prediction::Classification { probabilities, .. } = &e.prediction else {
            panic!("a classifier");
        };
        for (k, (_, p)) in probabilities.iter().enumerate() {
            let onehot = if k == 0 { 1.0 } else { 0.0 };
            assert!((e.loss.grad[k] - (p - onehot)).abs() < 1e-6);
        }
        assert!((e.loss.value + probabilities[0].1.ln()).abs() < 1e-5);
        assert_eq!(e.input_names, ["u", "colour=red", "colour=blue"]);
    }
}
