//! The model file: one self-describing, versioned JSON document with the network, the data
//! encoding and how it was trained.
//!
//! ```text
//! {
//!   "format": "mlp-model", "version": 1,
//!   "task": "classification",
//!   "encoding": { "features": [...], "target": {...} },
//!   "layers": [ {"type": "linear", "inputs": 4, "outputs": 128, "weight": [...], "bias": [...]},
//!               {"type": "relu"}, ... ],
//!   "training": { "data_file": "iris.csv", "data_sha256": "…", "rows": 150, "config": {...}, ... },
//!   "metrics": { "best_epoch": 57, ... }
//! }
//! ```
//!
//! Weights are stored row-major, `(inputs, outputs)`. Nothing in the file depends on the
//! clock or on where the data lived, so the same data, settings and seed give the same bytes.

use std::path::Path;

use ndarray::{Array1, Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::error::{Hint, Setting};
use crate::fsutil::{ReadLimit, read_limited, write_output};
use crate::nn::layer::{Layer, LayerSpec};
use crate::nn::layers::linear::Linear;
use crate::nn::loss::softmax_rows_tempered;
use crate::nn::sequential::Sequential;
use crate::tabular::calibration::{Calibration, Interval, NoInterval, Residuals};
use crate::tabular::encoding::{Encoding, Feature, TargetEncoding, Task};
use crate::train::outcome::{History, StopReason};
use crate::train::settings::TrainConfig;
use crate::{Dropout, Relu, Sigmoid, Tanh};

/// The `format` field of every model file.
pub const FORMAT: &str = "mlp-model";
/// The version this build writes and reads.
pub const VERSION: u32 = 1;

/// One layer as stored: its kind, and weights for `linear`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum LayerRecord {
    /// A [`Linear`] layer.
    Linear {
        /// Input features.
        inputs: usize,
        /// Output features.
        outputs: usize,
        /// `inputs × outputs` values, row-major.
        weight: Vec<f32>,
        /// `outputs` values.
        bias: Vec<f32>,
    },
    /// [`Relu`].
    Relu,
    /// [`Sigmoid`].
    Sigmoid,
    /// [`Tanh`].
    Tanh,
    /// [`Dropout`]: the identity at predict time; the rate records how it was trained.
    Dropout {
        /// The fraction of elements zeroed while training.
        rate: f32,
    },
}

/// How the model was trained: enough to reproduce it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingRecord {
    /// The training file's name (without its directory).
    pub data_file: String,
    /// SHA-256 of the training file's bytes, hex.
    pub data_sha256: String,
    /// Data rows used (after dropping rows with missing values).
    pub rows: usize,
    /// Rows dropped for missing values.
    pub dropped_rows: usize,
    /// Missing feature cells filled in (`--missing impute`).
    #[serde(default)]
    pub filled_cells: usize,
    /// Rows in the training split.
    pub train_rows: usize,
    /// Rows in the validation split; in a k-fold ensemble, the rows its out-of-fold
    /// figures were scored on (every row; fewer when training was interrupted before the
    /// last fold).
    pub validation_rows: usize,
    /// The settings, including the seed.
    #[serde(deserialize_with = "config_without_legacy_keys")]
    pub config: TrainConfig,
    /// Epochs that ran.
    pub epochs_run: usize,
    /// Why training ended.
    pub stop: StopReason,
    /// Loss and metric per epoch.
    pub history: History,
    /// With `--refit`: the epochs the saved network, trained on all rows, ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refit_epochs: Option<usize>,
}

/// The numbers of the saved (best) epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// The epoch whose weights were saved (1-based).
    pub best_epoch: usize,
    /// Training loss in that epoch.
    pub train_loss: f32,
    /// Validation loss in that epoch (if there was a validation split).
    pub validation_loss: Option<f32>,
    /// Validation accuracy (classification) in that epoch.
    pub validation_accuracy: Option<f32>,
    /// Validation R² (regression) in that epoch.
    pub validation_r2: Option<f32>,
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelFile {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] for files this build writes.
    pub version: u32,
    /// What the model predicts.
    pub task: Task,
    /// Feature and target encoding.
    pub encoding: Encoding,
    /// The network, first layer first.
    pub layers: Vec<LayerRecord>,
    /// More networks of the same shape (from `--folds`): the model predicts the average of
    /// `layers`' and these networks' outputs (class probabilities, or values). Empty for a
    /// single network.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ensemble: Vec<Vec<LayerRecord>>,
    /// How it was trained.
    pub training: TrainingRecord,
    /// Metrics of the saved epoch.
    pub metrics: Metrics,
    /// The training-health report (files from before it existed have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<crate::train::health::Health>,
    /// Classification: the temperature the probabilities are calibrated with (files from
    /// before it, and `--calibration none`: 1, the softmax as trained).
    #[serde(default, skip_serializing_if = "Calibration::is_identity")]
    pub calibration: Calibration,
    /// Regression: the held-out rows' absolute residuals, for conformal prediction
    /// intervals (files from before them, and runs without held-out rows: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub residuals: Option<Residuals>,
}

/// Reads `training.config`, ignoring the one key older files of this project have there and
/// this build does not: `scaling`, which moved out of the training settings (the encoding
/// records how each feature is scaled). Any other unknown key is refused.
fn config_without_legacy_keys<'de, D>(deserializer: D) -> std::result::Result<TrainConfig, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let mut value = serde_json::Value::deserialize(deserializer)?;
    if let Some(keys) = value.as_object_mut() {
        keys.remove("scaling");
    }
    TrainConfig::deserialize(value).map_err(serde::de::Error::custom)
}

/// Just enough of a file to tell what it is before reading the rest.
#[derive(Deserialize)]
struct Header {
    format: Option<serde_json::Value>,
    version: Option<serde_json::Value>,
}

/// A trained model: the network plus everything needed to use it on a CSV file.
pub struct Model {
    /// The stored description (weights as of saving).
    pub file: ModelFile,
    /// The network, built from `file.layers`.
    pub network: Sequential,
    /// The ensemble's other networks, built from `file.ensemble`.
    pub ensemble: Vec<Sequential>,
}

/// What a model predicts for a batch of rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Predictions {
    /// Class indices (into the target's labels) and class probabilities (rows, classes).
    Classes {
        /// The most probable class per row.
        classes: Vec<usize>,
        /// Softmax probabilities.
        probabilities: Array2<f32>,
    },
    /// Values in the target's original units.
    Values(Vec<f64>),
}

/// Records for every layer of `network`.
pub fn layer_records(network: &mut Sequential) -> Vec<LayerRecord> {
    let specs = network.specs();
    let mut params: Vec<Vec<Vec<f32>>> = vec![Vec::new(); specs.len()];
    network.visit_params(&mut |i, p| params[i].push(p.value.to_vec()));
    specs
        .into_iter()
        .zip(params)
        .map(|(spec, mut p)| match spec {
            LayerSpec::Linear { inputs, outputs } => {
                let bias = p.pop().unwrap_or_default();
                let weight = p.pop().unwrap_or_default();
                LayerRecord::Linear {
                    inputs,
                    outputs,
                    weight,
                    bias,
                }
            }
            LayerSpec::Relu => LayerRecord::Relu,
            LayerSpec::Sigmoid => LayerRecord::Sigmoid,
            LayerSpec::Tanh => LayerRecord::Tanh,
            LayerSpec::Dropout { rate } => LayerRecord::Dropout { rate },
        })
        .collect()
}

impl Model {
    /// Serialises the model as pretty JSON and writes it atomically to `path`.
    ///
    /// Refuses (and writes nothing) if the model would not load again, for example because
    /// a weight is not finite.
    pub fn save(&self, path: &Path) -> Result<()> {
        validate(&self.file).map_err(|message| Error::Model {
            path: path.to_path_buf(),
            message: format!("not saved: {message}"),
            hint: "lower the learning rate, and check the data for extreme or unscaled values"
                .into(),
        })?;
        // Sized for the weights up front (a pretty-printed number takes about 20 bytes): a
        // growing buffer copied itself and faulted in fresh pages at every doubling.
        let numbers: usize = (self.file.layers.iter())
            .chain(self.file.ensemble.iter().flatten())
            .map(|layer| match layer {
                LayerRecord::Linear { weight, bias, .. } => weight.len() + bias.len(),
                _ => 0,
            })
            .sum();
        let mut json = Vec::with_capacity((64 << 10) + numbers * 24);
        serde_json::to_writer_pretty(&mut json, &self.file)
            .map_err(|e| Error::model(path, format!("cannot serialise the model: {e}")))?;
        json.push(b'\n');
        write_output(path, &json)
    }

    /// Reads and validates a model file.
    ///
    /// A regular file is refused unread above [`ReadLimit::MODEL`]; a pipe or device is read
    /// within [`ReadLimit::STREAM`], and refused as soon as it does not start like JSON.
    pub fn load(path: &Path) -> Result<Model> {
        let regular = std::fs::metadata(path).is_ok_and(|m| m.is_file());
        let limit = if regular {
            ReadLimit::MODEL
        } else {
            ReadLimit::STREAM
        };
        let bytes = read_limited(path, limit, |bytes, _| {
            match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(&b) if !regular && b != b'{' => Err(Error::model(
                    path,
                    if b.is_ascii_graphic() {
                        format!("not a model file: it starts with '{}', not '{{'", b as char)
                    } else {
                        format!("not a model file: it starts with the byte 0x{b:02x}, not '{{'")
                    },
                )),
                _ => Ok(()),
            }
        })?;
        Model::from_json(path, &bytes)
    }

    /// Validates and builds a model from JSON bytes; `path` is for messages.
    ///
    /// Refuses anything but a complete model of this version: not JSON, another format or
    /// version, missing or unknown fields, layer sizes that do not chain, weights whose count
    /// disagrees with the declared sizes, non-finite numbers, or an encoding that does not
    /// fit the network. Sizes are checked against the weights actually present before
    /// anything is allocated from them.
    pub fn from_json(path: &Path, bytes: &[u8]) -> Result<Model> {
        let bad = |message: String| Error::model(path, message);
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(bad("the file is empty".into()));
        }
        if bytes.trim_ascii_start().first() != Some(&b'{') {
            // Valid JSON of another shape, or not JSON at all: say which.
            serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
                .map_err(|e| json_error(path, bytes, e))?;
            return Err(bad(
                "not an mlp model file (it is JSON, but not an object with \"format\": \
                 \"mlp-model\")"
                    .into(),
            ));
        }
        let header: Header =
            serde_json::from_slice(bytes).map_err(|e| json_error(path, bytes, e))?;
        check_header(path, &header)?;
        let file: ModelFile = serde_json::from_slice(bytes)
            .map_err(|e| bad(format!("the model file is damaged: {e}")))?;
        validate(&file).map_err(bad)?;
        let one_hot = file.encoding.one_hot_inputs();
        let network = build(&file.layers, &one_hot);
        let ensemble = (file.ensemble.iter())
            .map(|layers| build(layers, &one_hot))
            .collect();
        Ok(Model {
            file,
            network,
            ensemble,
        })
    }

    /// The conformal prediction interval at `level` (such as 0.9): a new row's value lies
    /// within it with probability at least `level` (over rows like the held-out ones, see
    /// [`Residuals`]). CV+ for a k-fold ensemble, else the prediction ± a half-width.
    /// Refused for a classifier, a level outside (0, 1), a model without residuals, or too
    /// few held-out rows for the level.
    pub fn interval(&self, level: f64) -> Result<Interval> {
        let refuse = |message: String, hint: Hint| {
            Err(Error::config(Setting::Interval, level, message, hint))
        };
        if self.file.task == Task::Classification {
            return refuse(
                "prediction intervals are for regression models; this model predicts classes"
                    .into(),
                Hint::text("leave it out (for class probabilities use ")
                    .name(Setting::Proba)
                    .then(")"),
            );
        }
        let Some(residuals) = &self.file.residuals else {
            return refuse(
                "this model holds no held-out residuals to make intervals from (it was \
                 trained before intervals existed, or without held-out rows)"
                    .into(),
                Hint::text("retrain it with the default ")
                    .setting(Setting::Folds, 3)
                    .then(", or with a validation split"),
            );
        };
        match residuals.interval(level) {
            Ok(interval) => Ok(interval),
            Err(NoInterval::Level) => refuse(
                "the level is the share of rows an interval should hold, strictly between 0 \
                 and 1"
                    .into(),
                Hint::text("for example ").setting(Setting::Interval, 0.9),
            ),
            Err(NoInterval::TooFewRows(needed)) => {
                let most = most_level(residuals.rows);
                refuse(
                    format!(
                        "an interval at this level needs at least {needed} held-out rows; the \
                         model was trained with {}",
                        residuals.rows
                    ),
                    match most {
                        Some(most) => Hint::text("use a level of at most ")
                            .setting(Setting::Interval, most)
                            .then(", or retrain on more rows"),
                        None => Hint::text("retrain on more rows"),
                    },
                )
            }
        }
    }

    /// What the model predicts for `inputs` (already encoded), in chunks so that buffers
    /// stay small.
    pub fn predict_encoded(&mut self, inputs: ArrayView2<f32>) -> Predictions {
        self.predict_encoded_with_members(inputs, false).0
    }

    /// [`Model::predict_encoded`], and with `members` for a regression ensemble each
    /// network's value per row, `[rows, networks]` in the target's units (what a CV+
    /// interval is made of, [`Interval::bounds`]); `None` for one network or classes.
    pub fn predict_encoded_with_members(
        &mut self,
        inputs: ArrayView2<f32>,
        members: bool,
    ) -> (Predictions, Option<Array2<f64>>) {
        const CHUNK: usize = 512;
        let rows = inputs.nrows();
        let outputs = self.file.encoding.target.width();
        let classify = self.file.task == Task::Classification;
        let networks = 1 + self.ensemble.len();
        let mut each =
            (members && !classify && networks > 1).then(|| Array2::<f64>::zeros((rows, networks)));
        // Sum over the networks of their outputs: probabilities for classes, raw values
        // for regression; divided by their number at the end.
        let mut sum = Array2::<f32>::zeros((rows, outputs));
        let mut probabilities = Array2::<f32>::zeros((CHUNK.min(rows), outputs));
        let temperature = self.file.calibration.temperature;
        let networks_mut = std::iter::once(&mut self.network).chain(self.ensemble.iter_mut());
        for (k, network) in networks_mut.enumerate() {
            network.set_training(false);
            for start in (0..rows).step_by(CHUNK) {
                let end = (start + CHUNK).min(rows);
                let out = network.forward(inputs.slice(ndarray::s![start..end, ..]));
                let mut target = sum.slice_mut(ndarray::s![start..end, ..]);
                if classify {
                    let mut p = probabilities.slice_mut(ndarray::s![..end - start, ..]);
                    softmax_rows_tempered(out, temperature, p.view_mut());
                    target += &p;
                } else {
                    if let Some(each) = each.as_mut() {
                        let values = self.file.encoding.values_from_outputs(out.view());
                        let mut column = each.slice_mut(ndarray::s![start..end, k]);
                        column.assign(&ndarray::ArrayView1::from(&values));
                    }
                    target += &out;
                }
            }
        }
        sum /= networks as f32;
        let predictions = match self.file.task {
            Task::Classification => {
                // The argmax of the mean probabilities; for one network the same as the
                // argmax of its outputs.
                let classes = crate::train::metrics::predict_classes(sum.view());
                Predictions::Classes {
                    classes,
                    probabilities: sum,
                }
            }
            Task::Regression => {
                Predictions::Values(self.file.encoding.values_from_outputs(sum.view()))
            }
        };
        (predictions, each)
    }
}

/// The error for bytes that are not JSON: cut off, CSV data, or anything else.
fn json_error(path: &Path, bytes: &[u8], e: serde_json::Error) -> Error {
    // A file cut off inside a number or a word fails on its last bytes; a file with a
    // complete JSON value at its start was not cut off, whatever follows.
    let complete = serde_json::Deserializer::from_slice(bytes)
        .into_iter::<serde::de::IgnoredAny>()
        .next()
        .is_some_and(|r| r.is_ok());
    if !complete && (e.is_eof() || (e.is_syntax() && near_end(bytes, &e))) {
        return Error::model(path, format!("the file ends early (truncated?): {e}"));
    }
    // Two lines with the same, non-zero number of commas: a CSV header and a row.
    let mut lines = bytes.split(|&b| b == b'\n').take(2);
    let commas = |l: &[u8]| l.iter().filter(|&&b| b == b',').count();
    let (first, second) = (lines.next().unwrap_or_default(), lines.next());
    if std::str::from_utf8(first).is_ok()
        && commas(first) > 0
        && second.is_some_and(|l| commas(l) == commas(first))
    {
        return Error::Model {
            path: path.to_path_buf(),
            message: "not a model file: it looks like CSV data".into(),
            hint: "the model comes first: `mlp predict MODEL DATA.csv`, \
                   `mlp eval MODEL DATA.csv`"
                .into(),
        };
    }
    Error::model(path, format!("not a model file (not valid JSON: {e})"))
}

/// Refuses a file of another format, or of a version this build does not read.
fn check_header(path: &Path, header: &Header) -> Result<()> {
    match &header.format {
        Some(serde_json::Value::String(f)) if f == FORMAT => {}
        other => {
            return Err(Error::model(
                path,
                format!(
                    "not an mlp model file (its \"format\" is {}, expected \"{FORMAT}\")",
                    other.as_ref().map_or("missing".to_string(), |f| {
                        let mut text = f.to_string();
                        if text.len() > 40 {
                            text = format!("{}…", text.chars().take(40).collect::<String>());
                        }
                        text
                    })
                ),
            ));
        }
    }
    match header.version.as_ref().and_then(|v| v.as_u64()) {
        Some(v) if v == VERSION as u64 => Ok(()),
        Some(v) => Err(Error::Model {
            path: path.to_path_buf(),
            message: format!(
                "model format version {v} is not supported (this mlp reads version {VERSION})"
            ),
            hint: "use the mlp release that wrote the file, or retrain the model".into(),
        }),
        None => {
            let found = match &header.version {
                None => "missing".to_string(),
                Some(v) if v.is_number() => {
                    format!("{v}, not a version number (written without a decimal point)")
                }
                Some(v) => {
                    let mut text = v.to_string();
                    if text.len() > 40 {
                        text = format!("{}…", text.chars().take(40).collect::<String>());
                    }
                    format!("{text}, not a number")
                }
            };
            Err(Error::model(
                path,
                format!("the \"version\" field is {found} (this mlp reads version {VERSION})"),
            ))
        }
    }
}

/// Whether a JSON error points at the file's last bytes (trailing whitespace aside).
fn near_end(bytes: &[u8], e: &serde_json::Error) -> bool {
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |p| p + 1);
    // serde_json counts lines from 1 and columns (bytes) from 1 within the line.
    let line_start = if e.line() <= 1 {
        Some(0)
    } else {
        bytes
            .iter()
            .enumerate()
            .filter(|&(_, &b)| b == b'\n')
            .nth(e.line() - 2)
            .map(|(i, _)| i + 1)
    };
    line_start.is_some_and(|start| start + e.column() + 1 >= end)
}

/// The highest level with two decimals that `rows` held-out residuals give an interval at.
fn most_level(rows: usize) -> Option<f64> {
    (1..100)
        .rev()
        .map(|p| p as f64 / 100.0)
        .find(|&level| crate::tabular::calibration::rows_for(level) <= rows)
}

/// Every rule a loaded file must satisfy; the message says which one failed.
fn validate(file: &ModelFile) -> std::result::Result<(), String> {
    if file.task != file.encoding.target.task() {
        return Err(format!(
            "the task is {} but the target encoding is for {}",
            file.task,
            file.encoding.target.task()
        ));
    }
    validate_encoding(&file.encoding)?;
    validate_training(file)?;
    validate_calibration(file)?;
    let (inputs, outputs) = validate_layers(&file.layers)?;
    for (m, member) in file.ensemble.iter().enumerate() {
        let shape = |layers: &[LayerRecord]| -> Vec<String> {
            layers
                .iter()
                .map(|l| match l {
                    LayerRecord::Linear {
                        inputs, outputs, ..
                    } => format!("linear {inputs} → {outputs}"),
                    other => format!("{other:?}"),
                })
                .collect()
        };
        validate_layers(member).map_err(|e| format!("ensemble network {}: {e}", m + 1))?;
        if shape(member) != shape(&file.layers) {
            return Err(format!(
                "ensemble network {} is not shaped like the first network",
                m + 1
            ));
        }
    }
    let encoding = &file.encoding;
    if encoding.input_width() != inputs {
        return Err(format!(
            "the features encode to {} inputs but the first layer takes {inputs}",
            encoding.input_width()
        ));
    }
    if encoding.target.width() != outputs {
        return Err(format!(
            "the target needs {} outputs but the last layer gives {outputs}",
            encoding.target.width()
        ));
    }
    Ok(())
}

/// A usable temperature, and residuals for regression only.
fn validate_calibration(file: &ModelFile) -> std::result::Result<(), String> {
    let t = file.calibration.temperature;
    if !(t.is_finite() && t > 0.0) {
        return Err(format!(
            "`calibration.temperature` is {t}, not a positive finite number"
        ));
    }
    if file.task == Task::Regression && !file.calibration.is_identity() {
        return Err(
            "a regression model has no `calibration` (it is for class probabilities)".into(),
        );
    }
    match &file.residuals {
        Some(_) if file.task == Task::Classification => {
            Err("a classification model has no `residuals` (they are for regression)".into())
        }
        Some(r) if !r.folds.is_empty() && r.folds.len() != 1 + file.ensemble.len() => Err(format!(
            "`residuals.folds` holds {} lists for {} networks",
            r.folds.len(),
            1 + file.ensemble.len()
        )),
        Some(r) => r.validate(),
        None => Ok(()),
    }
}

/// The networks agree with `training.config.folds`, and the history and health sections
/// hold finite numbers in curves of consistent lengths.
fn validate_training(file: &ModelFile) -> std::result::Result<(), String> {
    let networks = 1 + file.ensemble.len();
    let folds = file.training.config.folds;
    // Fewer networks than folds is a run interrupted between folds; more is never written.
    if (folds < 2 && networks > 1) || (folds >= 2 && networks > folds) {
        return Err(format!(
            "the file holds {networks} networks but `training.config.folds` is {folds} \
             (an ensemble of K networks is trained with `folds` K)"
        ));
    }
    let history = &file.training.history;
    let epochs = history.train_loss.len();
    if !(history.val_loss.is_empty() || history.val_loss.len() == epochs)
        || history.val_metric.len() != history.val_loss.len()
    {
        return Err(format!(
            "`training.history` has curves of different lengths ({epochs} `train_loss`, \
             {} `val_loss`, {} `val_metric`)",
            history.val_loss.len(),
            history.val_metric.len()
        ));
    }
    let curves = [
        ("train_loss", &history.train_loss),
        ("val_loss", &history.val_loss),
        ("val_metric", &history.val_metric),
    ];
    finite_curves("training.history", &curves)?;
    for layer in file.health.iter().flat_map(|h| &h.linear) {
        let section = format!("health.linear (layer {})", layer.layer);
        let curves = [
            ("grad_norm", &layer.grad_norm),
            ("weight_norm", &layer.weight_norm),
            ("update_ratio", &layer.update_ratio),
        ];
        if curves.iter().any(|(_, c)| c.len() != layer.grad_norm.len()) {
            return Err(format!("`{section}` has curves of different lengths"));
        }
        finite_curves(&section, &curves)?;
    }
    Ok(())
}

/// Every number of the named curves of `section` is finite.
fn finite_curves(section: &str, curves: &[(&str, &Vec<f32>)]) -> std::result::Result<(), String> {
    for (name, curve) in curves {
        if let Some(e) = curve.iter().position(|v| !v.is_finite()) {
            return Err(format!(
                "`{section}.{name}` holds a number out of range at epoch {}",
                e + 1
            ));
        }
    }
    Ok(())
}

/// The encoding's rules: distinct features, usable statistics and categories, labels.
fn validate_encoding(encoding: &Encoding) -> std::result::Result<(), String> {
    let mut names = std::collections::HashSet::new();
    for f in &encoding.features {
        if !names.insert(f.name()) {
            return Err(format!("feature '{}' appears twice", f.name()));
        }
        if f.name() == encoding.target.name() {
            return Err(format!("'{}' is both a feature and the target", f.name()));
        }
        validate_feature(f)?;
    }
    validate_target(&encoding.target)
}

/// One feature's rules: a usable scale, ordered bin edges, a fill it can encode.
fn validate_feature(f: &Feature) -> std::result::Result<(), String> {
    match f {
        Feature::Numeric {
            name,
            mean,
            std,
            fill,
        }
        | Feature::Piecewise {
            name,
            mean,
            std,
            fill,
            ..
        } => {
            if let Feature::Piecewise { edges, .. } = f
                && ((1..3).contains(&edges.len())
                    || edges.iter().any(|e| !e.is_finite())
                    || edges.windows(2).any(|e| e[0] >= e[1]))
            {
                return Err(format!(
                    "feature '{name}' has bin edges that are not 3 or more finite, \
                     increasing numbers"
                ));
            }
            validate_standardised(name, *mean, *std, *fill)
        }
        Feature::Robust {
            name,
            median,
            scale,
            fill,
        } => {
            if !(median.is_finite() && scale.is_finite() && *scale > 0.0) {
                return Err(format!("feature '{name}' has an invalid median or scale"));
            }
            match fill {
                Some(fill) if !fill.is_finite() => Err(format!(
                    "feature '{name}' fills missing cells with {fill:?}, which is not a \
                     finite number"
                )),
                _ => Ok(()),
            }
        }
        Feature::Categorical {
            name,
            categories,
            fill,
        } => validate_categorical(name, categories, fill.as_ref()),
        Feature::Date { name, parts } => validate_date(name, parts),
    }
}

/// A date feature's rules: at least one part, each once, each scaled as a number.
fn validate_date(
    name: &str,
    parts: &[crate::tabular::encoding::DateInput],
) -> std::result::Result<(), String> {
    if parts.is_empty() {
        return Err(format!("date feature '{name}' has no parts"));
    }
    for (i, input) in parts.iter().enumerate() {
        if parts[..i].iter().any(|p| p.part == input.part) {
            return Err(format!(
                "date feature '{name}' lists its part '{}' twice",
                input.part.label()
            ));
        }
        match &input.scale {
            Feature::Numeric { .. } | Feature::Robust { .. } | Feature::Piecewise { .. } => {
                validate_feature(&input.scale)?
            }
            Feature::Categorical { .. } | Feature::Date { .. } => {
                return Err(format!(
                    "date feature '{name}' scales its part '{}' as something other than a number",
                    input.part.label()
                ));
            }
        }
    }
    Ok(())
}

/// A standardised column's rules: a finite mean, a positive deviation, and a finite fill
/// that stays finite once standardised.
fn validate_standardised(
    name: &str,
    mean: f64,
    std: f64,
    fill: Option<f32>,
) -> std::result::Result<(), String> {
    if !(mean.is_finite() && std.is_finite() && std > 0.0) {
        return Err(format!("feature '{name}' has an invalid mean or deviation"));
    }
    if let Some(fill) = fill {
        if !fill.is_finite() {
            return Err(format!(
                "feature '{name}' fills missing cells with {fill:?}, which is not a \
                 finite number"
            ));
        }
        if !(((fill as f64 - mean) / std) as f32).is_finite() {
            return Err(format!(
                "feature '{name}' fills missing cells with {fill:?}, too far from \
                 its mean and deviation to standardise"
            ));
        }
    }
    Ok(())
}

/// A categorical column's rules: categories, none twice, and a fill among them.
fn validate_categorical(
    name: &str,
    categories: &[String],
    fill: Option<&String>,
) -> std::result::Result<(), String> {
    if categories.is_empty() {
        return Err(format!("feature '{name}' has no categories"));
    }
    if let Some(c) = first_duplicate(categories) {
        return Err(format!("feature '{name}' lists category '{c}' twice"));
    }
    match fill {
        Some(fill) if !categories.contains(fill) => Err(format!(
            "feature '{name}' fills missing cells with '{fill}', which is not one \
             of its categories"
        )),
        _ => Ok(()),
    }
}

/// The target's rules: two or more distinct class labels, or a usable mean and deviation.
fn validate_target(target: &TargetEncoding) -> std::result::Result<(), String> {
    match target {
        TargetEncoding::Classes { labels, .. } if labels.len() < 2 => {
            Err("a classifier needs at least two class labels".into())
        }
        TargetEncoding::Classes { labels, .. } if labels.iter().any(String::is_empty) => {
            Err("a class label in `encoding.target.labels` is empty".into())
        }
        TargetEncoding::Classes { labels, .. } if first_duplicate(labels).is_some() => {
            Err(format!(
                "the class label '{}' appears twice",
                first_duplicate(labels).unwrap_or_default()
            ))
        }
        TargetEncoding::Values { mean, std, .. }
            if !(mean.is_finite() && std.is_finite() && *std > 0.0) =>
        {
            Err("the target has an invalid mean or deviation".into())
        }
        _ => Ok(()),
    }
}

/// The layers' rules: sizes that chain, weights that match them, all finite, a linear layer
/// last. Returns the network's input and output widths.
fn validate_layers(layers: &[LayerRecord]) -> std::result::Result<(usize, usize), String> {
    if layers.is_empty() {
        return Err("the network has no layers".into());
    }
    let mut width: Option<usize> = None;
    let mut first_inputs = None;
    for (i, layer) in layers.iter().enumerate() {
        if let LayerRecord::Linear {
            inputs,
            outputs,
            weight,
            bias,
        } = layer
        {
            if *inputs == 0 || *outputs == 0 {
                return Err(format!("layer {i} has a zero size ({inputs} → {outputs})"));
            }
            if let Some(w) = width
                && w != *inputs
            {
                return Err(format!(
                    "layer {i} takes {inputs} inputs but the layer before gives {w}"
                ));
            }
            let expected = inputs.checked_mul(*outputs);
            if expected != Some(weight.len()) {
                return Err(format!(
                    "layer {i} declares {inputs} × {outputs} weights but holds {}",
                    weight.len()
                ));
            }
            if bias.len() != *outputs {
                return Err(format!(
                    "layer {i} declares {outputs} outputs but holds {} biases",
                    bias.len()
                ));
            }
            if let Some(j) = weight.iter().chain(bias).position(|v| !v.is_finite()) {
                return Err(format!("layer {i} holds a non-finite number (value {j})"));
            }
            first_inputs.get_or_insert(*inputs);
            width = Some(*outputs);
        }
        if let LayerRecord::Dropout { rate } = layer
            && !(0.0..1.0).contains(rate)
        {
            return Err(format!(
                "layer {i} is a dropout with rate {rate}, outside [0, 1)"
            ));
        }
    }
    let (Some(inputs), Some(outputs)) = (first_inputs, width) else {
        return Err("the network has no linear layer".into());
    };
    if matches!(layers.last(), Some(l) if !matches!(l, LayerRecord::Linear { .. })) {
        return Err("the last layer must be linear (the loss takes raw outputs)".into());
    }
    Ok((inputs, outputs))
}

/// The first item that appears twice.
fn first_duplicate(items: &[String]) -> Option<&str> {
    let mut seen = std::collections::HashSet::new();
    items
        .iter()
        .find(|i| !seen.insert(i.as_str()))
        .map(String::as_str)
}

/// The network described by validated records, its first layer told which inputs are
/// one-hot (`one_hot`) so that its product skips their zeros.
fn build(layers: &[LayerRecord], one_hot: &[usize]) -> Sequential {
    let mut network = Sequential::new();
    for (i, layer) in layers.iter().enumerate() {
        let boxed: Box<dyn Layer> = match layer {
            LayerRecord::Linear {
                inputs,
                outputs,
                weight,
                bias,
            } => Box::new(
                Linear::from_weights(
                    Array2::from_shape_vec((*inputs, *outputs), weight.clone())
                        .expect("validated: inputs × outputs weights"),
                    Array1::from(bias.clone()),
                )
                .with_sparse_inputs(if i == 0 { one_hot } else { &[] }),
            ),
            LayerRecord::Relu => Box::new(Relu::new()),
            LayerRecord::Sigmoid => Box::new(Sigmoid::new()),
            LayerRecord::Tanh => Box::new(Tanh::new()),
            LayerRecord::Dropout { rate } => {
                let mut dropout = Dropout::new(*rate, 0);
                dropout.set_training(false);
                Box::new(dropout)
            }
        };
        network.push(boxed);
    }
    network
}
