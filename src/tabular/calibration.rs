//! What a model learns about its own errors from rows it did not train on (the
//! out-of-fold rows of a k-fold ensemble, or the validation rows of one network), stored in
//! the model file:
//!
//! - for classes, a **temperature** `T`: the probabilities are `softmax(z / T)` of each
//!   network's outputs `z`, averaged over the networks. `T` is the one number that
//!   minimises the log loss of the held-out rows' probabilities, so it undoes what label
//!   smoothing (or overfitting) did to them without changing any predicted class;
//! - for values, the held-out rows' **absolute residuals** `|y − ŷ|` in the target's
//!   units, sorted: a split-conformal interval at level `1 − α` is the prediction plus or
//!   minus the `⌈(n + 1)(1 − α)⌉`-th smallest of them (Vovk et al. 2005; Barber et al.
//!   2021 for the out-of-fold form).

use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

/// Smallest and largest temperature fitted: beyond them the held-out rows say nothing more
/// (all right with ever-growing confidence, or no better than a uniform guess).
pub const TEMPERATURE_RANGE: (f64, f64) = (0.01, 100.0);

/// Most residuals a model file keeps: above this, evenly spaced order statistics, so that
/// an interval's level is exact to `rows / KEPT_RESIDUALS` rows (see [`Residuals`]).
pub const KEPT_RESIDUALS: usize = 2000;

/// The class-probability calibration of a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    /// The temperature the networks' outputs are divided by before the softmax (1: none).
    pub temperature: f32,
    /// The held-out rows it was fitted on, and what it did to their log loss.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fitted: Option<Fitted>,
}

/// What fitting a temperature found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fitted {
    /// Held-out rows.
    pub rows: usize,
    /// Their mean log loss with the softmax as trained (temperature 1).
    pub log_loss_before: f64,
    /// Their mean log loss with the temperature.
    pub log_loss_after: f64,
}

impl Default for Calibration {
    fn default() -> Self {
        Calibration {
            temperature: 1.0,
            fitted: None,
        }
    }
}

impl Calibration {
    /// The temperature fitted on held-out `logits` (one network's outputs per row) and
    /// their true `classes` ([`fit_temperature`]), with the log loss before and after.
    pub fn fit(logits: ArrayView2<f32>, classes: &[usize]) -> Calibration {
        let temperature = fit_temperature(logits, classes);
        Calibration {
            temperature,
            fitted: Some(Fitted {
                rows: classes.len(),
                log_loss_before: log_loss(logits, classes, 1.0),
                log_loss_after: log_loss(logits, classes, temperature as f64),
            }),
        }
    }

    /// Whether this is the identity with nothing to record (files from before
    /// calibration, `--calibration none`, regression).
    pub fn is_identity(&self) -> bool {
        self.temperature == 1.0 && self.fitted.is_none()
    }
}

/// The temperature `T` that minimises the mean log loss of `softmax(logits / T)` against
/// `classes`, within [`TEMPERATURE_RANGE`].
///
/// The loss is convex in `β = 1/T`: `L(β) = Σᵢ logsumexp(β zᵢ) − β zᵢ[yᵢ]`, with
/// `L'(β) = Σᵢ E_p[zᵢ] − zᵢ[yᵢ]` and `L''(β) = Σᵢ Var_p(zᵢ) ≥ 0` (`p = softmax(β zᵢ)`).
/// So `L'` increases, and its root is found to machine precision by Newton steps kept
/// inside a shrinking bracket (a bisection when a step would leave it).
///
/// **Panics** if `classes` does not hold one class index per row of `logits`.
pub fn fit_temperature(logits: ArrayView2<f32>, classes: &[usize]) -> f32 {
    assert_eq!(logits.nrows(), classes.len(), "one class per row");
    let (mut lo, mut hi) = (1.0 / TEMPERATURE_RANGE.1, 1.0 / TEMPERATURE_RANGE.0);
    if logits.nrows() == 0 {
        return 1.0;
    }
    if slope(logits, classes, hi).0 <= 0.0 {
        return (1.0 / hi) as f32;
    }
    if slope(logits, classes, lo).0 >= 0.0 {
        return (1.0 / lo) as f32;
    }
    let mut beta = 1.0;
    for _ in 0..200 {
        let (d1, d2) = slope(logits, classes, beta);
        if d1 > 0.0 {
            hi = beta;
        } else {
            lo = beta;
        }
        let newton = beta - d1 / d2;
        let next = if d2 > 0.0 && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        let done = (next - beta).abs() <= 1e-12 * beta || hi - lo <= 1e-12 * beta;
        beta = next;
        if done {
            break;
        }
    }
    (1.0 / beta) as f32
}

/// `L'(β)` and `L''(β)` of [`fit_temperature`]'s loss, summed over the rows.
fn slope(logits: ArrayView2<f32>, classes: &[usize], beta: f64) -> (f64, f64) {
    let (mut d1, mut d2) = (0.0, 0.0);
    for (z, &y) in logits.rows().into_iter().zip(classes) {
        let max = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let (mut sum, mut mean, mut square) = (0.0, 0.0, 0.0);
        for &v in z {
            let v = v as f64;
            let w = (beta * (v - max)).exp();
            sum += w;
            mean += w * v;
            square += w * v * v;
        }
        let (mean, square) = (mean / sum, square / sum);
        d1 += mean - z[y] as f64;
        d2 += (square - mean * mean).max(0.0);
    }
    (d1, d2)
}

/// The mean log loss of `softmax(logits / temperature)` against `classes`.
pub fn log_loss(logits: ArrayView2<f32>, classes: &[usize], temperature: f64) -> f64 {
    let mut total = 0.0;
    for (z, &y) in logits.rows().into_iter().zip(classes) {
        let max = z.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let sum: f64 = z
            .iter()
            .map(|&v| ((v as f64 - max) / temperature).exp())
            .sum();
        total += sum.ln() - (z[y] as f64 - max) / temperature;
    }
    total / classes.len().max(1) as f64
}

/// The held-out rows' absolute residuals in the target's units, sorted: all of them up to
/// [`KEPT_RESIDUALS`], else that many order statistics, value `i` (from 0) being the one of
/// rank `⌈(i + 1)·rows / KEPT_RESIDUALS⌉` (from 1), so the largest is always kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Residuals {
    /// Held-out rows the residuals come from.
    pub rows: usize,
    /// Sorted absolute residuals (order statistics, see above).
    pub absolute: Vec<f64>,
}

/// Why no interval can be given at a level.
#[derive(Debug, Clone, PartialEq)]
pub enum NoInterval {
    /// The level is not strictly between 0 and 1.
    Level,
    /// Too few held-out rows: this many are needed.
    TooFewRows(usize),
}

impl Residuals {
    /// The residuals `|y − ŷ|` of every held-out row, kept as described on [`Residuals`].
    /// Non-finite ones are left out.
    pub fn new(residuals: impl IntoIterator<Item = f64>) -> Residuals {
        let mut all: Vec<f64> = residuals
            .into_iter()
            .map(f64::abs)
            .filter(|r| r.is_finite())
            .collect();
        all.sort_by(f64::total_cmp);
        let rows = all.len();
        let kept = rows.min(KEPT_RESIDUALS);
        let absolute = (0..kept).map(|i| all[rank(i, rows, kept) - 1]).collect();
        Residuals { rows, absolute }
    }

    /// The half-width of the conformal interval at `level` (such as 0.9): the
    /// `⌈(rows + 1)·level⌉`-th smallest residual (or the next kept one above it).
    pub fn half_width(&self, level: f64) -> Result<f64, NoInterval> {
        if !(level > 0.0 && level < 1.0) {
            return Err(NoInterval::Level);
        }
        let k = needed_rank(self.rows, level);
        if k > self.rows {
            return Err(NoInterval::TooFewRows(rows_for(level)));
        }
        let kept = self.absolute.len();
        // The smallest i with rank(i) ≥ k.
        let i = ((k - 1) as u128 * kept as u128 / self.rows as u128) as usize;
        Ok(self.absolute[i])
    }

    /// Whether the file's values hold together: sorted, finite, no more than `rows`.
    pub fn validate(&self) -> Result<(), String> {
        let kept = self.absolute.len();
        if kept != self.rows.min(KEPT_RESIDUALS) {
            return Err(format!(
                "`residuals` holds {kept} values for {} rows (expected {})",
                self.rows,
                self.rows.min(KEPT_RESIDUALS)
            ));
        }
        if self.absolute.iter().any(|r| !(r.is_finite() && *r >= 0.0))
            || self.absolute.windows(2).any(|w| w[0] > w[1])
        {
            return Err("`residuals.absolute` must be sorted, finite and not negative".into());
        }
        Ok(())
    }
}

/// How an interval of half-width `half` around each prediction did on rows with known
/// values.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    /// Rows whose true value lies within the interval (ends included).
    pub covered: usize,
    /// Rows.
    pub rows: usize,
    /// `covered / rows`.
    pub coverage: f64,
    /// The intervals' mean width, in the target's units.
    pub mean_width: f64,
}

/// How often `truth` lies within `predicted ± half`, row by row.
///
/// **Panics** if the two differ in length.
pub fn coverage(truth: &[f64], predicted: &[f64], half: f64) -> Coverage {
    assert_eq!(truth.len(), predicted.len(), "one prediction per value");
    let covered = truth
        .iter()
        .zip(predicted)
        .filter(|&(t, p)| (t - p).abs() <= half)
        .count();
    let rows = truth.len();
    Coverage {
        covered,
        rows,
        coverage: covered as f64 / rows.max(1) as f64,
        mean_width: 2.0 * half,
    }
}

/// The rank (from 1) of kept value `i` (from 0) of `kept` out of `rows`.
fn rank(i: usize, rows: usize, kept: usize) -> usize {
    ((i as u128 + 1) * rows as u128).div_ceil(kept as u128) as usize
}

/// `⌈(rows + 1)·level⌉`, with a margin for the rounding of `level` (0.9 is not exact).
fn needed_rank(rows: usize, level: f64) -> usize {
    ((rows as f64 + 1.0) * level - 1e-9).ceil().max(1.0) as usize
}

/// The fewest held-out rows that give an interval at `level`.
pub fn rows_for(level: f64) -> usize {
    let mut rows = (level / (1.0 - level)).floor().max(1.0) as usize;
    while needed_rank(rows, level) > rows {
        rows += 1;
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn temperature_matches_numpy() {
        // numpy, once (golden section in log t, 200 steps):
        //   z = np.array([[2.,0,-1],[1.5,.5,0],[0,3,0],[-1,0,2.5],[1,1,0],[0,.2,.1]])
        //   y = [0,1,1,2,1,2]
        //   def f(t): a = z/t; m = a.max(1, keepdims=True)
        //             return np.mean(m[:,0] + np.log(np.exp(a-m).sum(1)) - a[range(6),y])
        //   -> t = 0.8122635285416606
        let z = array![
            [2.0f32, 0.0, -1.0],
            [1.5, 0.5, 0.0],
            [0.0, 3.0, 0.0],
            [-1.0, 0.0, 2.5],
            [1.0, 1.0, 0.0],
            [0.0, 0.2, 0.1]
        ];
        let y = [0, 1, 1, 2, 1, 2];
        let t = fit_temperature(z.view(), &y);
        assert!((t - TEMPERATURE_NUMPY).abs() < 1e-5, "{t}");
        // The minimum: both neighbours lose more.
        let at = |t: f64| log_loss(z.view(), &y, t);
        assert!(at(t as f64) < at(t as f64 * 1.01) && at(t as f64) < at(t as f64 / 1.01));
    }
    const TEMPERATURE_NUMPY: f32 = 0.812_263_5;

    #[test]
    fn temperature_stays_in_range_when_every_row_is_right() {
        // Every row right: ever sharper is ever better, up to the range's end.
        let z = array![[3.0f32, 0.0], [0.0, 2.0]];
        assert_eq!(fit_temperature(z.view(), &[0, 1]), 0.01);
        // Every row wrong: softer is better, up to the range's other end.
        assert_eq!(fit_temperature(z.view(), &[1, 0]), 100.0);
    }

    #[test]
    fn conformal_quantile_is_the_right_order_statistic() {
        // Residuals 1..=19 (signs do not matter): at 0.9, ⌈20·0.9⌉ = 18th smallest.
        let r = Residuals::new((1..=19).map(|v| if v % 2 == 0 { -v as f64 } else { v as f64 }));
        assert_eq!(r.rows, 19);
        assert_eq!(r.half_width(0.9), Ok(18.0));
        assert_eq!(r.half_width(0.5), Ok(10.0));
        assert_eq!(r.half_width(0.95), Ok(19.0));
        // ⌈20·0.96⌉ = 20 > 19 rows: 24 rows needed for 0.96.
        assert_eq!(r.half_width(0.96), Err(NoInterval::TooFewRows(24)));
        assert_eq!(rows_for(0.9), 9);
        assert_eq!(rows_for(0.99), 99);
        assert_eq!(r.half_width(1.0), Err(NoInterval::Level));
        assert_eq!(r.half_width(0.0), Err(NoInterval::Level));
        assert_eq!(r.half_width(f64::NAN), Err(NoInterval::Level));
    }

    #[test]
    fn coverage_counts_rows_within_the_interval() {
        let c = coverage(&[1.0, 2.0, 3.0, 10.0], &[1.5, 2.0, 4.0, 5.0], 1.0);
        assert_eq!((c.covered, c.rows), (3, 4));
        assert_eq!(c.coverage, 0.75);
        assert_eq!(c.mean_width, 2.0);
    }

    #[test]
    fn many_residuals_keep_order_statistics_conservatively() {
        // 10 000 residuals 1..=10000: 2000 kept, every 5th rank.
        let r = Residuals::new((1..=10_000).map(f64::from));
        assert_eq!(r.absolute.len(), KEPT_RESIDUALS);
        assert_eq!(r.absolute[0], 5.0);
        assert_eq!(*r.absolute.last().unwrap(), 10_000.0);
        // ⌈10001·0.9⌉ = 9001: the next kept rank is 9005.
        assert_eq!(r.half_width(0.9), Ok(9005.0));
        // ⌈10001·0.5⌉ = 5001 -> 5005.
        assert_eq!(r.half_width(0.5), Ok(5005.0));
        assert!(r.validate().is_ok());
    }
}

#[cfg(test)]
mod model_tests {
    use crate::tabular::model::{Model, Predictions};

    /// The corpus's control model, from before calibration existed.
    fn valid() -> Model {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corpus/models/valid.json"
        );
        Model::load(path.as_ref()).unwrap()
    }

    fn probabilities(model: &mut Model) -> Vec<f32> {
        let inputs = ndarray::array![[0.5f32, -1.0, 1.0, 0.0, 0.0], [-0.3, 0.8, 0.0, 0.0, 1.0]];
        match model.predict_encoded(inputs.view()) {
            Predictions::Classes { probabilities, .. } => probabilities.iter().copied().collect(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn old_models_load_uncalibrated_and_the_temperature_round_trips() {
        let mut old = valid();
        assert_eq!(old.file.calibration.temperature, 1.0);
        assert!(old.file.residuals.is_none());
        let plain = probabilities(&mut old);
        // softmax(z / 2) of the same networks: softer, the classes kept.
        old.file.calibration.temperature = 2.0;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        old.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"temperature\": 2.0"), "{text}");
        let mut loaded = Model::load(&path).unwrap();
        assert_eq!(loaded.file, old.file);
        let soft = probabilities(&mut loaded);
        for (p, s) in plain.chunks(2).zip(soft.chunks(2)) {
            assert_eq!(p[0] > p[1], s[0] > s[1]);
            assert!((s[0] - 0.5).abs() < (p[0] - 0.5).abs(), "{p:?} {s:?}");
        }
        // Two classes: p = sigmoid(d) becomes sigmoid(d / 2), exactly.
        let d = (plain[0] / plain[1]).ln();
        let expected = 1.0 / (1.0 + (-d / 2.0).exp());
        assert!(
            (soft[0] - expected).abs() < 1e-5,
            "{} vs {expected}",
            soft[0]
        );
        // An uncalibrated model writes no calibration field.
        let uncalibrated = dir.path().join("u.json");
        valid().save(&uncalibrated).unwrap();
        let text = std::fs::read_to_string(&uncalibrated).unwrap();
        assert!(!text.contains("calibration\": {"), "{text}");
    }
}
