//! The settings of a training run and their validation: what `mlp train`'s flags decide,
//! checked once where a request enters the library ([`crate::pipeline::prepare`]), and
//! stored in the model file.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Hint, Result, Setting};
use crate::nn::optim::{Adam, Momentum, Optimizer, Sgd};
#[cfg(doc)]
use crate::{Relu, Sigmoid, Tanh, nn::loss::SoftmaxCrossEntropy};

/// Most units a hidden layer may have (the flag check; buffers scale with it).
pub const MAX_LAYER_WIDTH: usize = 65_536;
/// Most parameters a network may have: 2²⁷, half a gigabyte of weights, which with
/// gradients, optimizer state and the best epoch's copy is a few gigabytes of memory.
pub const MAX_PARAMETERS: usize = 1 << 27;

/// The number of weights and biases of an `inputs → hidden… → outputs` network, or `None`
/// if it does not fit in `usize`.
pub fn parameter_count(inputs: usize, hidden: &[usize], outputs: usize) -> Option<usize> {
    let mut total = 0usize;
    let mut width = inputs;
    for &next in hidden.iter().chain([&outputs]) {
        total = total.checked_add(width.checked_add(1)?.checked_mul(next)?)?;
        width = next;
    }
    Some(total)
}

/// The hidden layers' activation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// [`Relu`], with He initialisation.
    Relu,
    /// [`Sigmoid`], with Glorot initialisation.
    Sigmoid,
    /// [`Tanh`], with Glorot initialisation.
    Tanh,
}

/// Which optimizer to train with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OptimizerKind {
    /// [`Adam`].
    Adam,
    /// [`Sgd`].
    Sgd,
    /// [`Momentum`].
    Momentum,
}

impl OptimizerKind {
    /// The learning rate used when none is given: 1e-3 for Adam, 0.01 for the SGDs.
    pub fn default_learning_rate(self) -> f32 {
        match self {
            OptimizerKind::Adam => 1e-3,
            OptimizerKind::Sgd | OptimizerKind::Momentum => 0.01,
        }
    }
}

/// How much each class weighs in the training loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassWeight {
    /// Every row weighs 1.
    #[default]
    None,
    /// scikit-learn's `"balanced"`: a row of class `c` weighs `n / (K · n_c)` over the
    /// training rows, so every class weighs as much in total (see
    /// [`balanced_class_weights`](crate::nn::loss::balanced_class_weights)). For
    /// classification only.
    Balanced,
}

/// What early stopping keeps the best epoch by, and the validation line shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// The validation loss, unsmoothed and unweighted: log loss for classes, mean squared
    /// error (of the standardised target) for values.
    #[default]
    Loss,
    /// Fraction of rows classified right (higher is better).
    Accuracy,
    /// Log loss of the class probabilities: the classification loss by name.
    LogLoss,
    /// Mean recall over the classes (higher is better).
    BalancedAccuracy,
    /// Mean F1 over the classes (higher is better).
    MacroF1,
    /// Area under the ROC curve; macro one-against-the-rest beyond two classes (higher is
    /// better).
    RocAuc,
    /// Coefficient of determination of the values (higher is better).
    R2,
    /// Mean absolute error of the standardised target (lower is better).
    Mae,
}

impl Metric {
    /// Whether the metric scores classifiers (`Some(true)`), regressors (`Some(false)`),
    /// or both (`None`).
    pub fn for_classes(self) -> Option<bool> {
        match self {
            Metric::Loss => None,
            Metric::Accuracy
            | Metric::LogLoss
            | Metric::BalancedAccuracy
            | Metric::MacroF1
            | Metric::RocAuc => Some(true),
            Metric::R2 | Metric::Mae => Some(false),
        }
    }

    /// Whether a larger value is better.
    pub fn higher_is_better(self) -> bool {
        !matches!(self, Metric::Loss | Metric::LogLoss | Metric::Mae)
    }

    /// The metric's name, as the flag takes it.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Loss => "loss",
            Metric::Accuracy => "accuracy",
            Metric::LogLoss => "log_loss",
            Metric::BalancedAccuracy => "balanced_accuracy",
            Metric::MacroF1 => "macro_f1",
            Metric::RocAuc => "roc_auc",
            Metric::R2 => "r2",
            Metric::Mae => "mae",
        }
    }
}

/// Networks in a k-fold ensemble by default: on the quality suite 3 folds scored higher than
/// one network on 17 of 25 data sets (worse on 4), at about twice the fit time; 5 folds
/// added little more for a further 1.7 times the time (`QUALITY.md`).
pub const DEFAULT_FOLDS: usize = 3;

/// Training rows shuffled together when a file is streamed ([`TrainConfig::shuffle_window`]):
/// 1024 batches of 32, about 23 MiB encoded for 180 inputs.
pub const DEFAULT_SHUFFLE_WINDOW: usize = 32_768;
/// Most rows kept in memory to judge every epoch on when a file is streamed
/// ([`TrainConfig::held_rows`]): enough that the validation loss of a regression moves by
/// well under 1% between two draws, about 35 MiB encoded for 180 inputs.
pub const DEFAULT_HELD_ROWS: usize = 50_000;

fn default_shuffle_window() -> usize {
    DEFAULT_SHUFFLE_WINDOW
}

fn default_held_rows() -> usize {
    DEFAULT_HELD_ROWS
}

/// How a classifier's probabilities are calibrated after training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalibrationMethod {
    /// Temperature scaling fitted on the held-out rows (out-of-fold, or validation): one
    /// number dividing the networks' outputs before the softmax, chosen to minimise the
    /// held-out log loss. No predicted class changes.
    Temperature,
    /// The networks' softmax as trained (with label smoothing, less confident than the
    /// data warrant).
    None,
}

/// How a regression model's prediction intervals are made from its held-out residuals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntervalMethod {
    /// CV+ scaled to the ensemble (`EnsembleScale` in `tabular::calibration`): CV+ whose
    /// residuals and network spread are shrunk by what averaging the k networks removes
    /// from one network's error, measured on the training rows. With one network,
    /// split-conformal.
    #[default]
    Ensemble,
    /// CV+ (Barber et al. 2021) with k folds: each network's residuals around its own
    /// prediction, so the interval widens where the networks disagree. Its coverage is
    /// guaranteed (at least 1 − 2α), and it runs above 1 − α where the ensemble is much
    /// better than its networks. With one network, split-conformal.
    CvPlus,
    /// Split-conformal: the ensemble's prediction ± one quantile of every held-out
    /// residual, the same width for every row.
    Split,
}

impl IntervalMethod {
    /// The method as `--intervals` names it.
    pub fn name(self) -> &'static str {
        match self {
            IntervalMethod::Ensemble => "ensemble",
            IntervalMethod::CvPlus => "cv-plus",
            IntervalMethod::Split => "split",
        }
    }
}

/// Files from before calibration existed were not calibrated.
fn no_calibration() -> CalibrationMethod {
    CalibrationMethod::None
}

/// Everything that decides how a network is trained. Stored in the model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Widths of the hidden layers.
    pub hidden: Vec<usize>,
    /// Activation after each hidden layer.
    pub activation: Activation,
    /// The optimizer.
    pub optimizer: OptimizerKind,
    /// Learning rate.
    pub learning_rate: f32,
    /// Momentum (for [`OptimizerKind::Momentum`]).
    pub momentum: f32,
    /// Nesterov momentum (for [`OptimizerKind::Momentum`]).
    pub nesterov: bool,
    /// L2 weight decay on weights (not biases).
    pub weight_decay: f32,
    /// Label smoothing for classification (see [`SoftmaxCrossEntropy`]).
    pub label_smoothing: f32,
    /// Most epochs to train.
    pub epochs: usize,
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// Fraction of rows held out for validation, in [0, 1).
    pub val_split: f32,
    /// Stop after this many epochs without a better validation loss (0: never stop early).
    pub patience: usize,
    /// Seed for initialisation, the split and the shuffles.
    pub seed: u64,
    /// After choosing the number of epochs on the validation split, train a fresh network
    /// on all rows (training and validation) for that many epochs and keep it.
    #[serde(default)]
    pub refit: bool,
    /// Dropout rate after each hidden layer's activation while training (0: none).
    #[serde(default)]
    pub dropout: f32,
    /// With 2 or more: k-fold cross-fitting. The rows are cut into this many folds; one
    /// network per fold trains on the others and early-stops on its own, and the model
    /// averages the networks' predictions. Every row is trained on, and the ensemble is
    /// steadier than one network. 0 or 1: one network and `val_split`. In memory and in
    /// one process only: streamed and data-parallel training refuse 2 or more.
    #[serde(default)]
    pub folds: usize,
    /// Streaming: the training rows are read in file order and shuffled in windows of this
    /// many (the last one smaller), freshly every epoch. Fixed, not derived from the memory
    /// limit, so that the same file, settings and seed train the same network on any
    /// machine. Not used in memory, where every epoch shuffles all the rows.
    #[serde(default = "default_shuffle_window")]
    pub shuffle_window: usize,
    /// Streaming: at most this many rows are kept in memory to judge every epoch on, the
    /// first validation rows of the file (or without a validation split, the first training
    /// rows); in a data-parallel run, shared out over the processes. Not used in memory,
    /// where every validation row judges.
    #[serde(default = "default_held_rows")]
    pub held_rows: usize,
    /// Classification: how the probabilities are calibrated on the held-out rows after
    /// training (the model file stores the result). Needs held-out rows: k folds, or a
    /// validation split.
    #[serde(default = "no_calibration")]
    pub calibration: CalibrationMethod,
    /// Weights of the classes in the training loss (classification only).
    #[serde(default)]
    pub class_weight: ClassWeight,
    /// What the best epoch is chosen by (early stopping) and the validation line shows.
    #[serde(default)]
    pub metric: Metric,
    /// Regression: how prediction intervals are made (stored with the residuals).
    #[serde(default)]
    pub intervals: IntervalMethod,
    /// Whether `--intervals` was given (not stored): a classifier refuses it even when it
    /// names the default method.
    #[serde(skip)]
    pub intervals_given: bool,
    /// Whether batches grow with the rows (see [`TrainConfig::for_rows`]). On by default;
    /// the command line turns it off when `--batch-size` or `--lr` is given.
    #[serde(default)]
    pub grow_batch: bool,
}

/// The default batch size, kept by networks that train on up to [`GROWTH_ROWS`] rows.
pub const DEFAULT_BATCH: usize = 32;
/// Training rows per network up to which the default batch is kept: the batch doubles at
/// every doubling beyond (see [`TrainConfig::for_rows`]).
pub const GROWTH_ROWS: usize = 5_000;
/// The most the default batch grows: to 8 × 32 = 256 rows.
pub const MOST_GROWTH: usize = 8;

impl Default for TrainConfig {
    /// Defaults chosen on the tabular quality suite of 25 public data sets (`QUALITY.md`,
    /// `bench/quality/`): numbers as their standardised value plus piecewise-linear quantile
    /// bins, two ReLU layers of 128 and 64, Adam at 1e-3, batches of 32 (growing beyond 5,000
    /// rows a network: [`TrainConfig::for_rows`]), up to 200 epochs
    /// with patience 10, weight decay 1e-4, label smoothing 0.1, no dropout, 3 networks by
    /// k-fold cross-fitting (each validated on its own third of the rows, `val_split` being
    /// for one network: `folds` 0), and probabilities calibrated by a temperature fitted on
    /// the out-of-fold rows. Label smoothing with the temperature against neither: mean log
    /// loss 0.3160 against 0.3337, the same accuracy; without smoothing the suite's mean
    /// accuracy is 0.0006 higher, but digits (10 classes, unseen writers) falls from 0.936 to
    /// 0.903. Patience 10 against 20: see `QUALITY.md`.
    fn default() -> Self {
        Self {
            hidden: vec![128, 64],
            activation: Activation::Relu,
            optimizer: OptimizerKind::Adam,
            learning_rate: OptimizerKind::Adam.default_learning_rate(),
            momentum: 0.9,
            nesterov: false,
            weight_decay: 1e-4,
            label_smoothing: 0.1,
            epochs: 200,
            batch_size: DEFAULT_BATCH,
            val_split: 0.2,
            patience: 10,
            seed: 0,
            refit: false,
            dropout: 0.0,
            folds: DEFAULT_FOLDS,
            shuffle_window: DEFAULT_SHUFFLE_WINDOW,
            held_rows: DEFAULT_HELD_ROWS,
            calibration: CalibrationMethod::Temperature,
            class_weight: ClassWeight::None,
            metric: Metric::Loss,
            intervals: IntervalMethod::Ensemble,
            intervals_given: false,
            grow_batch: true,
        }
    }
}

impl TrainConfig {
    /// The rows each network trains on when the training set holds `rows`: with k folds,
    /// the k − 1 folds that are not its own; otherwise all of them (the validation split is
    /// already out of `rows`).
    pub fn rows_per_network(&self, rows: usize) -> usize {
        if self.folds >= 2 {
            rows - rows / self.folds
        } else {
            rows
        }
    }

    /// The settings for networks that train on `rows` rows each. With [`grow_batch`]
    /// and the default batch and learning rate, the batch doubles for every doubling of
    /// the rows beyond [`GROWTH_ROWS`] (at most [`MOST_GROWTH`] times), and the learning
    /// rate grows with the square root of the batch, as it does for Adam's noise: 64 rows
    /// and 1.41 × the rate from 10,000 rows, 128 and 2 × from 20,000, 256 and 2.83 × from
    /// 40,000. An epoch of 100,000 rows then takes 390 steps instead of 3,125. Measured on
    /// one data set as it grows and on a second of 40,000 rows (`BENCHMARKS.md`, "Fit
    /// cost"): about the same accuracy and log loss, mostly at 0.65 to 0.85 of the CPU (one
    /// run on 50,000 rows took 1.1 times as long, with accuracy 0.0015 higher). Up to 5,000
    /// rows a network (the whole quality suite) nothing changes. Otherwise, or with a batch
    /// size or rate of one's own, the settings are returned unchanged.
    ///
    /// [`grow_batch`]: TrainConfig::grow_batch
    pub fn for_rows(&self, rows: usize) -> TrainConfig {
        let default_rate = self.optimizer.default_learning_rate();
        let growth = (rows / GROWTH_ROWS).clamp(1, MOST_GROWTH);
        // The largest power of two not above `growth`.
        let growth = 1 << growth.ilog2();
        if !self.grow_batch
            || self.batch_size != DEFAULT_BATCH
            || self.learning_rate != default_rate
            || growth == 1
        {
            return self.clone();
        }
        TrainConfig {
            batch_size: DEFAULT_BATCH * growth,
            learning_rate: default_rate * (growth as f32).sqrt(),
            ..self.clone()
        }
    }

    /// Refuses settings that do not apply to `task`: class weights and classification
    /// metrics for regression, regression metrics for classification.
    pub fn validate_for(&self, task: crate::train::task::Task) -> Result<()> {
        let classes = task == crate::train::task::Task::Classification;
        if !classes && self.class_weight != ClassWeight::None {
            return refuse(
                Setting::ClassWeight,
                &"balanced",
                "class weights apply to classification, and this target is a regression",
                Hint::text("leave out ").name(Setting::ClassWeight),
            );
        }
        if classes && (self.intervals_given || self.intervals != IntervalMethod::default()) {
            return refuse(
                Setting::Intervals,
                &self.intervals.name(),
                "prediction intervals are for regression, and this target holds classes",
                Hint::text("leave out ").name(Setting::Intervals),
            );
        }
        if self.metric.for_classes().is_some_and(|c| c != classes) {
            let (task, choices) = if classes {
                (
                    "classification",
                    "accuracy, log_loss, balanced_accuracy, macro_f1 or roc_auc",
                )
            } else {
                ("regression", "r2 or mae")
            };
            return refuse(
                Setting::Metric,
                &self.metric.name(),
                &format!("this metric does not apply to {task}"),
                Hint::text(format!("for {task} use loss, {choices}, e.g. ")).setting(
                    Setting::Metric,
                    if classes { "balanced_accuracy" } else { "r2" },
                ),
            );
        }
        Ok(())
    }

    /// Refuses settings that cannot train, or that could not take effect together, naming
    /// the setting.
    pub fn validate(&self) -> Result<()> {
        self.validate_hidden()?;
        self.validate_ranges()?;
        self.validate_combinations()
    }

    /// Every hidden layer has between one and [`MAX_LAYER_WIDTH`] units.
    fn validate_hidden(&self) -> Result<()> {
        if let Some(&w) = self.hidden.iter().find(|&&w| w == 0) {
            return refuse(
                Setting::Hidden,
                &w,
                "every hidden layer needs at least one unit",
                Hint::text("for example ").setting(Setting::Hidden, "64,32"),
            );
        }
        if let Some(&w) = self.hidden.iter().find(|&&w| w > MAX_LAYER_WIDTH) {
            return refuse(
                Setting::Hidden,
                &w,
                &format!("a hidden layer may have at most {MAX_LAYER_WIDTH} units"),
                Hint::text("for example ").setting(Setting::Hidden, "256,128"),
            );
        }
        Ok(())
    }

    /// Each number within its own range.
    fn validate_ranges(&self) -> Result<()> {
        if self.epochs == 0 {
            return refuse(
                Setting::Epochs,
                &0,
                "train for at least one epoch",
                Hint::text("for example ").setting(Setting::Epochs, 200),
            );
        }
        if self.batch_size == 0 {
            return refuse(
                Setting::BatchSize,
                &0,
                "a batch needs at least one row",
                Hint::text("for example ").setting(Setting::BatchSize, 32),
            );
        }
        let val_split = self.val_split;
        fraction(
            Setting::ValSplit,
            val_split,
            0.2,
            ", or 0 to train on every row",
        )?;
        if !(self.learning_rate.is_finite() && self.learning_rate > 0.0) {
            return refuse(
                Setting::LearningRate,
                &self.learning_rate,
                "must be a positive, finite number",
                Hint::text("for example ").setting(Setting::LearningRate, 0.001),
            );
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return refuse(
                Setting::WeightDecay,
                &self.weight_decay,
                "must be zero or a small positive number",
                Hint::text("for example ").setting(Setting::WeightDecay, 0.0001),
            );
        }
        let smoothing = self.label_smoothing;
        fraction(
            Setting::LabelSmoothing,
            smoothing,
            0.1,
            ", or 0 to turn it off",
        )?;
        self.validate_folds()?;
        fraction(Setting::Dropout, self.dropout, 0.1, ", or 0 to turn it off")?;
        fraction(Setting::Momentum, self.momentum, 0.9, "")?;
        if self.shuffle_window == 0 {
            return refuse(
                Setting::ShuffleWindow,
                &0,
                "a shuffle window needs at least one row",
                Hint::text("for example ").setting(Setting::ShuffleWindow, DEFAULT_SHUFFLE_WINDOW),
            );
        }
        if self.held_rows == 0 {
            return refuse(
                Setting::HeldRows,
                &0,
                "every epoch is judged on at least one row",
                Hint::text("for example ").setting(Setting::HeldRows, DEFAULT_HELD_ROWS),
            );
        }
        Ok(())
    }

    /// No folds (one network), or between 2 and 100: one fold would leave no rows to train
    /// on besides its own, so `--folds 1` trained one network as `--folds 0` does.
    fn validate_folds(&self) -> Result<()> {
        if self.folds == 1 {
            return refuse(
                Setting::Folds,
                &1,
                "cross-fitting needs at least 2 folds (each network validates on one and \
                 trains on the others)",
                Hint::text("use ")
                    .setting(Setting::Folds, 0)
                    .then(" to train one network, or 2 or more for an ensemble"),
            );
        }
        if self.folds > 100 {
            return refuse(
                Setting::Folds,
                &self.folds,
                "at most 100 folds (each trains a network)",
                Hint::text("for example ")
                    .setting(Setting::Folds, 5)
                    .then(", or 0 to train one network"),
            );
        }
        Ok(())
    }

    /// Settings that only take effect with others: Nesterov with momentum, refitting with
    /// one network and validation rows.
    fn validate_combinations(&self) -> Result<()> {
        if self.nesterov && self.optimizer != OptimizerKind::Momentum {
            return refuse(
                Setting::Nesterov,
                &"",
                &format!(
                    "Nesterov momentum applies to the momentum optimizer, not to {:?}",
                    self.optimizer
                ),
                Hint::text("use ")
                    .setting(Setting::Optimizer, "momentum")
                    .then(", or leave out ")
                    .name(Setting::Nesterov),
            );
        }
        if self.refit && self.folds >= 2 {
            return refuse(
                Setting::Refit,
                &"",
                &format!(
                    "refitting retrains one network on every row; the {} networks of a \
                     k-fold ensemble train on every row already",
                    self.folds
                ),
                Hint::text("use ")
                    .setting(Setting::Folds, 0)
                    .then(" with it, or leave out ")
                    .name(Setting::Refit),
            );
        }
        if self.refit && self.val_split == 0.0 {
            return refuse(
                Setting::Refit,
                &"",
                "refitting retrains on the validation rows, and there are none",
                Hint::text("hold out rows with ")
                    .setting(Setting::ValSplit, 0.2)
                    .then(", or leave out ")
                    .name(Setting::Refit),
            );
        }
        Ok(())
    }

    /// The optimizer these settings describe.
    pub fn build_optimizer(&self) -> Result<Box<dyn Optimizer>> {
        let lr = self.learning_rate;
        Ok(match self.optimizer {
            OptimizerKind::Adam => Box::new(Adam::new(lr)?.with_weight_decay(self.weight_decay)?),
            OptimizerKind::Sgd => Box::new(Sgd::new(lr)?.with_weight_decay(self.weight_decay)?),
            OptimizerKind::Momentum => Box::new(
                Momentum::new(lr, self.momentum, self.nesterov)?
                    .with_weight_decay(self.weight_decay)?,
            ),
        })
    }
}

/// The error for `setting` at `value`.
fn refuse(
    setting: Setting,
    value: &dyn std::fmt::Display,
    message: &str,
    hint: Hint,
) -> Result<()> {
    Err(Error::config(setting, value, message, hint))
}

/// Refuses `value` for `setting` unless it is at least 0 and below 1; the hint suggests
/// `example`, then `tail`.
fn fraction(setting: Setting, value: f32, example: f32, tail: &str) -> Result<()> {
    if (0.0..1.0).contains(&value) {
        return Ok(());
    }
    let hint = Hint::text("for example ").setting(setting, example);
    let hint = if tail.is_empty() {
        hint
    } else {
        hint.then(tail)
    };
    refuse(setting, &value, "must be at least 0 and below 1", hint)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_settings_name_the_setting() {
        type Change = fn(&mut TrainConfig);
        let cases: [(Change, &str); 14] = [
            (|c| c.shuffle_window = 0, "invalid `shuffle_window` 0"),
            (|c| c.held_rows = 0, "invalid `held_rows` 0"),
            (|c| c.learning_rate = -1.0, "invalid `learning_rate` -1"),
            (|c| c.learning_rate = 0.0, "invalid `learning_rate` 0"),
            (|c| c.epochs = 0, "invalid `epochs` 0"),
            (|c| c.hidden = vec![8, 0], "invalid `hidden` 0"),
            (|c| c.dropout = 1.0, "invalid `dropout` 1"),
            (|c| c.folds = 101, "invalid `folds` 101"),
            (
                |c| c.hidden = vec![99_999_999_999],
                "invalid `hidden` 99999999999",
            ),
            (|c| c.val_split = 1.0, "invalid `val_split` 1"),
            (|c| c.batch_size = 0, "invalid `batch_size` 0"),
            (
                |c| c.nesterov = true,
                "invalid `nesterov`: Nesterov momentum applies to the momentum optimizer, \
                 not to Adam\n  hint: use `optimizer = momentum`, or leave out `nesterov`",
            ),
            (
                |c| {
                    c.refit = true;
                    c.folds = 0;
                    c.val_split = 0.0
                },
                "invalid `refit`: refitting retrains on the validation rows, and there are none",
            ),
            (
                |c| c.refit = true,
                "invalid `refit`: refitting retrains one network on every row; the 3 networks \
                 of a k-fold ensemble train on every row already\n  hint: use `folds = 0` with \
                 it, or leave out `refit`",
            ),
        ];
        for (change, want) in cases {
            let mut c = TrainConfig::default();
            change(&mut c);
            let e = c.validate().unwrap_err().to_string();
            assert!(e.starts_with(want), "{e}");
        }
    }

    #[test]
    fn parameter_count_checks_overflow() {
        // 4·128 + 128 + 128·64 + 64 + 64·3 + 3
        assert_eq!(parameter_count(4, &[128, 64], 3), Some(9091));
        assert_eq!(parameter_count(usize::MAX, &[2], 1), None);
        assert_eq!(parameter_count(1 << 40, &[1 << 30], 1), None);
    }

    #[test]
    fn the_default_batch_and_rate_grow_with_the_rows_a_network_trains_on() {
        let d = TrainConfig::default();
        // (rows per network, batch, learning rate)
        let cases = [
            (100, 32, 1e-3),
            (9_999, 32, 1e-3),
            (10_000, 64, 1e-3 * std::f32::consts::SQRT_2),
            (19_999, 64, 1e-3 * std::f32::consts::SQRT_2),
            (20_000, 128, 2e-3),
            (39_999, 128, 2e-3),
            (40_000, 256, 1e-3 * 8f32.sqrt()),
            (10_000_000, 256, 1e-3 * 8f32.sqrt()),
        ];
        for (rows, batch, lr) in cases {
            let c = d.for_rows(rows);
            assert_eq!((c.batch_size, c.learning_rate), (batch, lr), "{rows} rows");
            // Growing what grew changes nothing.
            assert_eq!(c.for_rows(rows), c);
        }
        // Three folds of 30,000 rows: each network trains on 20,000.
        assert_eq!(d.rows_per_network(30_000), 20_000);
        assert_eq!(d.rows_per_network(30_001), 20_001);
        let one = TrainConfig {
            folds: 0,
            ..d.clone()
        };
        assert_eq!(one.rows_per_network(24_000), 24_000);
        // A batch size or a learning rate of one's own, or growth turned off: as given.
        for own in [
            TrainConfig {
                batch_size: 64,
                ..d.clone()
            },
            TrainConfig {
                learning_rate: 3e-3,
                ..d.clone()
            },
            TrainConfig {
                grow_batch: false,
                ..d.clone()
            },
        ] {
            assert_eq!(own.for_rows(100_000), own);
        }
        // SGD grows from its own default rate.
        let sgd = TrainConfig {
            optimizer: OptimizerKind::Sgd,
            learning_rate: OptimizerKind::Sgd.default_learning_rate(),
            ..d
        };
        let grown = sgd.for_rows(20_000);
        assert_eq!(grown.batch_size, 128);
        assert_eq!(
            grown.learning_rate,
            2.0 * OptimizerKind::Sgd.default_learning_rate()
        );
    }
}
