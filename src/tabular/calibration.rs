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
//!   2021 for the out-of-fold form). A k-fold ensemble also keeps each network's own
//!   residuals, for the CV+ interval of [`Interval::CvPlus`] (Barber et al. 2021), which
//!   takes into account how the networks disagree at the row being predicted, and by
//!   default [`EnsembleScale`]: how much smaller the ensemble's errors are than one
//!   network's, so that the interval is sized for the ensemble's prediction.

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
///
/// A k-fold ensemble also keeps, in `folds`, the residuals of each network's own held-out
/// rows, kept the same way (each list on its own), in the order of the networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Residuals {
    /// Held-out rows the residuals come from.
    pub rows: usize,
    /// Sorted absolute residuals (order statistics, see above).
    pub absolute: Vec<f64>,
    /// Each network's held-out residuals, for CV+ intervals: empty for one network (and in
    /// files from before CV+, whose intervals stay split-conformal).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub folds: Vec<Residuals>,
    /// CV+ scaled to the ensemble (`None`: plain CV+, as in files from before it, or made
    /// with `--intervals cv-plus`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ensemble: Option<EnsembleScale>,
}

/// CV+ scaled to the ensemble of `K` networks whose mean is the prediction.
///
/// Each held-out residual `R_i` comes from one network, but the prediction is the mean of
/// `K`, whose errors are smaller by what averaging removes. Write a network's prediction
/// as the ensemble's plus its own deviation `d_k`; with `v` the variance of the `d_k`
/// across the networks (the mean over training rows of the `K` predictions' sample
/// variance), one network's mean squared error exceeds the ensemble's by `(1 − 1/K)·v`,
/// whatever the networks' correlation. So the interval is CV+ with
///
/// - each residual times `residuals = √(1 − (1 − 1/K)·v / mean(R²))` (at least ½), and
/// - each network's distance from the prediction times `spread = 1/√K`, the share of one
///   network's deviation that is left in a mean of `K` independent ones.
///
/// Both are 1 for plain CV+.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnsembleScale {
    /// What every residual is multiplied by.
    pub residuals: f64,
    /// What each network's distance from the prediction is multiplied by.
    pub spread: f64,
}

impl EnsembleScale {
    /// The scale for `networks` networks whose held-out residuals have the mean square
    /// `mean_square`, and whose predictions on the training rows vary by `variance` (the
    /// mean of their sample variance).
    pub fn new(networks: usize, mean_square: f64, variance: f64) -> EnsembleScale {
        let k = networks.max(1) as f64;
        let share = if mean_square > 0.0 && variance.is_finite() {
            1.0 - (1.0 - 1.0 / k) * variance / mean_square
        } else {
            1.0
        };
        EnsembleScale {
            residuals: share.clamp(0.25, 1.0).sqrt(),
            spread: 1.0 / k.sqrt(),
        }
    }
}

/// A conformal prediction interval at one level, ready to apply to rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Interval {
    /// Split-conformal: the prediction ± `half` (one network, or files from before CV+).
    Split {
        /// The half-width, in the target's units.
        half: f64,
    },
    /// CV+ (Barber et al. 2021) for a k-fold ensemble whose network `k` predicts `μ_k(x)`
    /// and was not trained on the rows `i` of fold `k` (residuals `R_i`): with `n` rows in
    /// all and `t = n + 1 − ⌈(n + 1)·level⌉`, the lower end is the `t`-th smallest of
    /// `{ μ_k(i)(x) − R_i }` and the upper end the `t`-th largest of `{ μ_k(i)(x) + R_i }`
    /// over every held-out row `i`. It need not be symmetric around the prediction (the
    /// networks' mean).
    ///
    /// Scaled to the ensemble ([`EnsembleScale`]), `R_i` are the scaled residuals and each
    /// `μ_k(x)` is first moved towards the prediction `ŷ`: `ŷ + spread·(μ_k(x) − ŷ)`.
    CvPlus {
        /// `t`, counted in rows.
        rank: usize,
        /// Each network's residuals, in the networks' order (times
        /// [`EnsembleScale::residuals`] when scaled).
        folds: Vec<Residuals>,
        /// [`EnsembleScale::spread`], 1 for plain CV+.
        spread: f64,
    },
}

impl Interval {
    /// The interval's (lower, upper) ends for a row the model predicts `prediction` for,
    /// its networks `members` (in the networks' order; only CV+ reads them).
    ///
    /// **Panics** for CV+ if `members` does not hold one value per fold.
    pub fn bounds(&self, prediction: f64, members: &[f64]) -> (f64, f64) {
        match self {
            Interval::Split { half } => (prediction - half, prediction + half),
            Interval::CvPlus {
                rank,
                folds,
                spread,
            } => {
                assert_eq!(members.len(), folds.len(), "one prediction per network");
                let centre = (prediction, *spread);
                let lower = nth_of_union(folds, members, centre, -1.0, *rank);
                let upper = nth_of_union(folds, members, centre, 1.0, *rank);
                (lower, upper)
            }
        }
    }

    /// Whether the ends depend on each network's prediction (CV+), not just the mean.
    pub fn needs_members(&self) -> bool {
        matches!(self, Interval::CvPlus { .. })
    }
}

/// For `side` 1: the `t`-th largest of `{ members[k] + r }` over every residual `r` of
/// `folds[k]`, each kept residual counting as the rows it stands for (see [`Residuals`]);
/// for `side` −1, the `t`-th smallest of `{ members[k] − r }`. Each member is first moved
/// towards the prediction, `ŷ + spread·(μ_k − ŷ)`, with `centre` = `(ŷ, spread)` (left as
/// it is for spread 1, plain CV+).
///
/// Written as the `t`-th largest of `{ side·members[k] + r }` (times `side`), it is found
/// without merging the lists: a candidate `c = s_k + r` is at or beyond the answer when at
/// least `t` values are `≥ c`, a count that falls as `c` rises and takes one binary search
/// per list; so a binary search over each list finds its largest such candidate, and the
/// answer is the largest of those. `O(K² log² n)` per row for `K` lists of `n`.
fn nth_of_union(
    folds: &[Residuals],
    members: &[f64],
    (prediction, spread): (f64, f64),
    side: f64,
    t: usize,
) -> f64 {
    let moved = |m: f64| {
        if spread == 1.0 {
            m
        } else {
            prediction + spread * (m - prediction)
        }
    };
    let shifts = || members.iter().map(|&m| side * moved(m));
    // Values `≥ c`, counted in rows.
    let at_least = |c: f64| -> usize {
        (folds.iter().zip(shifts()))
            .map(|(fold, s)| fold.rows_at_least(|r| s + r >= c))
            .sum()
    };
    let mut best = f64::NEG_INFINITY;
    for (fold, s) in folds.iter().zip(shifts()) {
        let kept = &fold.absolute;
        // The candidates with at least `t` values ≥ them come first (the count falls).
        let last = kept.partition_point(|&r| at_least(s + r) >= t);
        if last > 0 {
            best = best.max(s + kept[last - 1]);
        }
    }
    side * best
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
        Residuals {
            rows,
            absolute,
            folds: Vec::new(),
            ensemble: None,
        }
    }

    /// The residuals of a k-fold ensemble's held-out rows, `folds[k]` those of network `k`:
    /// all of them as [`Residuals::new`] keeps them, and each network's on its own.
    pub fn of_folds(folds: Vec<Vec<f64>>) -> Residuals {
        let all = Residuals::new(folds.iter().flatten().copied());
        Residuals {
            folds: folds.into_iter().map(Residuals::new).collect(),
            ..all
        }
    }

    /// [`Residuals::of_folds`], scaled to the ensemble of those networks
    /// ([`EnsembleScale`]), whose predictions on the training rows vary by `variance`.
    pub fn of_ensemble(folds: Vec<Vec<f64>>, variance: f64) -> Residuals {
        let finite = || folds.iter().flatten().filter(|r| r.is_finite());
        let mean_square = finite().map(|r| r * r).sum::<f64>() / finite().count().max(1) as f64;
        let scale = EnsembleScale::new(folds.len(), mean_square, variance);
        Residuals {
            ensemble: Some(scale),
            ..Residuals::of_folds(folds)
        }
    }

    /// The rows each kept value stands for (all 1 when every residual is kept): kept value
    /// `i` for the ranks above the kept one before it, up to its own.
    pub fn weights(&self) -> Vec<usize> {
        let kept = self.absolute.len();
        (0..kept)
            .map(|i| {
                rank(i, self.rows, kept)
                    - if i == 0 {
                        0
                    } else {
                        rank(i - 1, self.rows, kept)
                    }
            })
            .collect()
    }

    /// How many rows' residuals `r` satisfy `at_least(r)`, which must hold for the largest
    /// residuals and fail for the smallest (`r ≥ c − s` for some `c` and `s`). A kept value
    /// stands for the rows ranked above the kept value before it, up to its own, whose
    /// residuals are at most it: counting them all at the kept value rounds each residual
    /// up, so an interval is never narrower than all the residuals would make it.
    fn rows_at_least(&self, at_least: impl Fn(f64) -> bool) -> usize {
        let kept = self.absolute.len();
        let first = self.absolute.partition_point(|&r| !at_least(r));
        if first == 0 {
            self.rows
        } else {
            self.rows - rank(first - 1, self.rows, kept)
        }
    }

    /// The conformal interval at `level` (such as 0.9): CV+ with each network's residuals,
    /// else split-conformal ([`Residuals::half_width`]).
    pub fn interval(&self, level: f64) -> Result<Interval, NoInterval> {
        let half = self.half_width(level)?;
        // One network's CV+ is split-conformal around its prediction.
        if self.folds.len() < 2 {
            return Ok(Interval::Split { half });
        }
        let scale = self.ensemble.unwrap_or(EnsembleScale {
            residuals: 1.0,
            spread: 1.0,
        });
        let folds = (self.folds.iter())
            .map(|fold| Residuals {
                absolute: fold.absolute.iter().map(|r| r * scale.residuals).collect(),
                ..fold.clone()
            })
            .collect();
        Ok(Interval::CvPlus {
            rank: self.rows + 1 - needed_rank(self.rows, level),
            folds,
            spread: scale.spread,
        })
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
        if let Some(scale) = self.ensemble {
            let factor = |v: f64| v > 0.0 && v <= 1.0;
            if !(factor(scale.residuals) && factor(scale.spread)) {
                return Err("`residuals.ensemble` factors must lie in (0, 1]".into());
            }
            if self.folds.len() < 2 {
                return Err("`residuals.ensemble` needs two `folds` or more".into());
            }
        }
        for (k, fold) in self.folds.iter().enumerate() {
            if !fold.folds.is_empty() || fold.ensemble.is_some() {
                return Err("`residuals.folds` hold no `folds` or `ensemble` of their own".into());
            }
            fold.validate()
                .map_err(|e| format!("network {k}'s residuals (`residuals.folds`): {e}"))?;
        }
        let rows: usize = self.folds.iter().map(|f| f.rows).sum();
        if !self.folds.is_empty() && rows != self.rows {
            return Err(format!(
                "`residuals.folds` hold {rows} rows, not the {} of `residuals.rows`",
                self.rows
            ));
        }
        Ok(())
    }
}

/// How an interval did on rows with known values.
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

/// How often `truth` lies within `interval` around `predicted`, row by row; `members`
/// holds each network's value per row (`[rows, networks]`, [`Interval::bounds`]), for a
/// CV+ interval.
///
/// **Panics** if the lengths differ, or a CV+ interval has no `members`.
pub fn coverage(
    truth: &[f64],
    predicted: &[f64],
    interval: &Interval,
    members: Option<ArrayView2<f64>>,
) -> Coverage {
    assert_eq!(truth.len(), predicted.len(), "one prediction per value");
    let (mut covered, mut width) = (0, 0.0);
    for (r, (t, &p)) in truth.iter().zip(predicted).enumerate() {
        let row = members
            .as_ref()
            .map(|m| m.row(r).to_vec())
            .unwrap_or_default();
        let (lower, upper) = interval.bounds(p, &row);
        covered += usize::from((lower..=upper).contains(t));
        width += upper - lower;
    }
    let rows = truth.len();
    Coverage {
        covered,
        rows,
        coverage: covered as f64 / rows.max(1) as f64,
        mean_width: width / rows.max(1) as f64,
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
        let split = Interval::Split { half: 1.0 };
        let c = coverage(&[1.0, 2.0, 3.0, 10.0], &[1.5, 2.0, 4.0, 5.0], &split, None);
        assert_eq!((c.covered, c.rows), (3, 4));
        assert_eq!(c.coverage, 0.75);
        assert_eq!(c.mean_width, 2.0);
        // CV+ of the hand-made case below at 0.6 (t = 2): (9, 24) around networks at 10
        // and 20; around networks at 0 and 10, { μ − R } = −1, −3, 8, 6, 4 and
        // { μ + R } = 1, 3, 12, 14, 16 give (−1, 14).
        let cv = Residuals::of_folds(vec![vec![1.0, 3.0], vec![2.0, 4.0, 6.0]])
            .interval(0.6)
            .unwrap();
        let members = ndarray::array![[10.0, 20.0], [0.0, 10.0]];
        let c = coverage(&[9.0, 14.5], &[15.0, 5.0], &cv, Some(members.view()));
        assert_eq!((c.covered, c.rows), (1, 2));
        assert_eq!(c.mean_width, 15.0);
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
mod cv_plus_tests {
    use super::*;

    #[test]
    fn cv_plus_ends_on_a_hand_made_case() {
        // Network A (predicts 10) held out rows with residuals 1, 3; network B (20): 2, 4, 6.
        let r = Residuals::of_folds(vec![vec![1.0, -3.0], vec![2.0, 4.0, -6.0]]);
        assert_eq!(
            (r.rows, r.absolute.clone()),
            (5, vec![1.0, 2.0, 3.0, 4.0, 6.0])
        );
        assert!(r.validate().is_ok());
        // At 0.5: ⌈6·0.5⌉ = 3, t = 6 − 3 = 3. { μ + R } = 11, 13, 22, 24, 26: the 3rd
        // largest is 22; { μ − R } = 9, 7, 18, 16, 14: the 3rd smallest is 14.
        let interval = r.interval(0.5).unwrap();
        assert_eq!(interval.bounds(15.0, &[10.0, 20.0]), (14.0, 22.0));
        // At 0.6: ⌈3.6⌉ = 4, t = 2: 24 and 9. Not symmetric around the mean, 15.
        let interval = r.interval(0.6).unwrap();
        assert_eq!(interval.bounds(15.0, &[10.0, 20.0]), (9.0, 24.0));
        // Networks that agree: the split-conformal interval around them.
        let split = r.half_width(0.6).unwrap();
        assert_eq!(split, 4.0);
        assert_eq!(interval.bounds(7.0, &[7.0, 7.0]), (7.0 - 4.0, 7.0 + 4.0));
        // Without the folds (files from before CV+): split-conformal.
        let old = Residuals::new([1.0, 2.0, 3.0, 4.0, 6.0]);
        assert_eq!(old.interval(0.6), Ok(Interval::Split { half: 4.0 }));
        assert_eq!(
            old.interval(0.6).unwrap().bounds(15.0, &[10.0, 20.0]),
            (11.0, 19.0)
        );
        assert_eq!(r.interval(0.9), Err(NoInterval::TooFewRows(9)));
    }

    #[test]
    fn ensemble_scale_on_hand_made_cases() {
        // Three networks, mean squared residual 9, their predictions' variance 4.5:
        // the ensemble keeps 1 − (2/3)·4.5/9 = 2/3 of one network's squared error.
        let s = EnsembleScale::new(3, 9.0, 4.5);
        assert!((s.residuals - (2.0f64 / 3.0).sqrt()).abs() < 1e-15, "{s:?}");
        assert_eq!(s.spread, 1.0 / 3f64.sqrt());
        // Networks that agree remove nothing; more variance than error is held at ½.
        assert_eq!(EnsembleScale::new(3, 9.0, 0.0).residuals, 1.0);
        assert_eq!(EnsembleScale::new(3, 9.0, 100.0).residuals, 0.5);
        assert_eq!(EnsembleScale::new(2, 0.0, 1.0).residuals, 1.0);
        assert_eq!(EnsembleScale::new(1, 9.0, 4.5).spread, 1.0);
        // The hand-made CV+ case above, scaled: mean square (1 + 9 + 4 + 16 + 36)/5 = 13.2,
        // variance 9.504, two networks: residuals × √(1 − 9.504/26.4) = 0.8, networks
        // moved to 15 ± 5/√2. At 0.5 (t = 3) the ends are 15 + 5/√2 − 0.8·6 and
        // 15 + 5/√2 + 0.8·2.
        let r = Residuals::of_ensemble(vec![vec![1.0, -3.0], vec![2.0, 4.0, -6.0]], 9.504);
        assert!(r.validate().is_ok());
        let scale = r.ensemble.unwrap();
        assert!((scale.residuals - 0.8).abs() < 1e-12, "{scale:?}");
        assert_eq!(scale.spread, 1.0 / 2f64.sqrt());
        let (lower, upper) = r.interval(0.5).unwrap().bounds(15.0, &[10.0, 20.0]);
        let moved = 15.0 + 5.0 / 2f64.sqrt();
        assert!((lower - (moved - 4.8)).abs() < 1e-9, "{lower}");
        assert!((upper - (moved + 1.6)).abs() < 1e-9, "{upper}");
        // Networks that agree: ± 0.8 times the split half-width.
        let (lower, upper) = r.interval(0.6).unwrap().bounds(7.0, &[7.0, 7.0]);
        assert!((lower - (7.0 - 3.2)).abs() < 1e-9 && (upper - 10.2).abs() < 1e-9);
        // A factor outside (0, 1] is refused.
        let mut bad = r.clone();
        bad.ensemble = Some(EnsembleScale {
            residuals: 1.5,
            spread: 0.5,
        });
        assert!(bad.validate().unwrap_err().contains("(0, 1]"));
    }

    /// Every row's residual as the kept values stand for it: kept value `i` for the ranks
    /// above the one before it.
    fn expanded(fold: &Residuals) -> Vec<f64> {
        let mut all = Vec::new();
        for (&v, w) in fold.absolute.iter().zip(fold.weights()) {
            all.extend(std::iter::repeat_n(v, w));
        }
        assert_eq!(all.len(), fold.rows);
        all
    }

    #[test]
    fn cv_plus_matches_sorting_the_union() {
        // A small linear congruential generator: the same lists on every run.
        let mut state = 12345u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64
        };
        // Small lists with ties, and lists above KEPT_RESIDUALS (kept as order statistics).
        for sizes in [
            vec![1, 2, 3],
            vec![7, 7],
            vec![2500, 3001, 40],
            vec![4100, 4099],
        ] {
            let folds: Vec<Vec<f64>> = (sizes.iter())
                .map(|&n| (0..n).map(|_| (next() * 8.0).round() / 2.0).collect())
                .collect();
            let r = Residuals::of_folds(folds);
            assert!(r.validate().is_ok());
            for level in [0.3, 0.5, 0.8, 0.9, 0.95] {
                let Ok(interval) = r.interval(level) else {
                    continue;
                };
                let members: Vec<f64> = sizes.iter().map(|_| next() * 4.0 - 2.0).collect();
                let (mut lower, mut upper) = (Vec::new(), Vec::new());
                for (fold, m) in r.folds.iter().zip(&members) {
                    lower.extend(expanded(fold).iter().map(|v| m - v));
                    upper.extend(expanded(fold).iter().map(|v| m + v));
                }
                lower.sort_by(f64::total_cmp);
                upper.sort_by(f64::total_cmp);
                let n = r.rows;
                // The ⌊α(n + 1)⌋-th smallest and the ⌈(1 − α)(n + 1)⌉-th smallest.
                let k = ((n + 1) as f64 * level - 1e-9).ceil() as usize;
                let expected = (lower[n - k], upper[k - 1]);
                assert_eq!(
                    interval.bounds(0.0, &members),
                    expected,
                    "{sizes:?} {level}"
                );
            }
        }
    }

    #[test]
    fn folds_that_do_not_add_up_are_refused() {
        let mut r = Residuals::of_folds(vec![vec![1.0, 2.0], vec![3.0]]);
        r.folds[1] = Residuals::new([3.0, 4.0]);
        assert!(r.validate().unwrap_err().contains("hold 4 rows, not the 3"));
        let mut r = Residuals::of_folds(vec![vec![1.0, 2.0], vec![3.0]]);
        r.folds[0].absolute = vec![2.0, 1.0];
        assert!(r.validate().unwrap_err().contains("sorted"));
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
