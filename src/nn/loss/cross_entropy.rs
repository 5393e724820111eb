//! [`SoftmaxCrossEntropy`]: softmax and cross-entropy fused into one stable step.

use ndarray::{Array2, ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};

use super::{Loss, Target};
use crate::error::{Error, Hint, Result, Setting};
use crate::nn::layer::resized;

/// Softmax over the classes followed by cross-entropy, on raw scores (logits) `z`.
///
/// For one sample with target distribution `t` (one-hot for a class index `c`):
/// `L = −Σⱼ tⱼ·log softmax(z)ⱼ = Σⱼ tⱼ·(lse(z) − zⱼ)`, with
/// `lse(z) = m + log Σⱼ exp(zⱼ − m)`, `m = maxⱼ zⱼ` (log-sum-exp, so no `exp` overflows).
/// The batch loss is the mean over samples. The gradient needs no separate softmax layer:
/// `dL/dz = (softmax(z)·Σⱼtⱼ − t) / B`, which for a one-hot target is
/// `(softmax(z) − onehot(c)) / B`.
///
/// With label smoothing `ε` ([`with_label_smoothing`](Self::with_label_smoothing)) the
/// target is blended with the uniform distribution over the `K` classes first,
/// `t ← (1 − ε)·t + ε·Σⱼtⱼ/K`, as in PyTorch's `label_smoothing`: the network is never
/// pushed towards infinite confidence, which generalises better on small tabular data.
///
/// With class weights `w` ([`with_class_weights`](Self::with_class_weights)) each row's
/// loss and gradient are multiplied by the weight of its class (for a probability row,
/// by `Σⱼ wⱼtⱼ / Σⱼ tⱼ`), and the batch loss stays the mean over its `B` rows:
/// `L = (1/B)·Σᵢ w_{cᵢ}·Lᵢ`, as scikit-learn's `class_weight` weights samples.
///
/// ```
/// use mlp::{Loss, SoftmaxCrossEntropy, Target};
/// use ndarray::array;
///
/// let mut ce = SoftmaxCrossEntropy::new();
/// let loss = ce.forward(array![[0.0, 0.0]].view(), Target::Classes(&[1])).unwrap();
/// assert!((loss - 2f32.ln()).abs() < 1e-7); // softmax is (½, ½): −log ½
/// assert_eq!(ce.backward().to_owned(), array![[0.5, -0.5]]);
/// ```
pub struct SoftmaxCrossEntropy {
    grad: Array2<f32>, // (B, C)
    forwarded: bool,
    smoothing: f32,
    weights: Vec<f32>, // (C) or empty: every row weighs 1
}

impl SoftmaxCrossEntropy {
    /// A softmax cross-entropy loss.
    pub fn new() -> Self {
        Self {
            grad: Array2::zeros((0, 0)),
            forwarded: false,
            smoothing: 0.0,
            weights: Vec::new(),
        }
    }

    /// The same loss with each row weighted by its class's entry of `weights` (one per
    /// output column; see the type's documentation). Every weight must be finite and at
    /// least 0.
    ///
    /// **Panics** if a weight is negative or not finite (programmer misuse: the weights
    /// come from [`balanced_class_weights`] or the caller's own checks).
    pub fn with_class_weights(mut self, weights: Vec<f32>) -> Self {
        assert!(
            weights.iter().all(|w| w.is_finite() && *w >= 0.0),
            "class weights must be finite and at least 0"
        );
        self.weights = weights;
        self
    }

    /// The same loss with label smoothing `epsilon` in [0, 1).
    pub fn with_label_smoothing(mut self, epsilon: f32) -> Result<Self> {
        if !(0.0..1.0).contains(&epsilon) {
            return Err(Error::config(
                Setting::LabelSmoothing,
                epsilon,
                "must be at least 0 and below 1",
                Hint::text("for example ").setting(Setting::LabelSmoothing, 0.1),
            ));
        }
        self.smoothing = epsilon;
        Ok(self)
    }
}

impl Default for SoftmaxCrossEntropy {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes `softmax(z)` into `out` and returns `lse(z)`, the log of the softmax's denominator.
fn softmax_row(z: ndarray::ArrayView1<f32>, mut out: ArrayViewMut1<f32>) -> f32 {
    let max = z.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
    let mut sum = 0.0f32;
    Zip::from(&mut out).and(&z).for_each(|o, &v| {
        *o = (v - max).exp();
        sum += *o;
    });
    let inv = 1.0 / sum;
    out.mapv_inplace(|o| o * inv);
    max + sum.ln()
}

/// The weight of class `c` in `weights` (1 without weights).
fn weight_of(weights: &[f32], c: usize) -> f32 {
    weights.get(c).copied().unwrap_or(1.0)
}

/// Refuses class indices that are not one per row of `logits` (B, C), or out of range.
fn check_classes(logits: ArrayView2<f32>, labels: &[usize]) -> Result<()> {
    let (rows, classes) = logits.dim();
    if labels.len() != rows {
        return Err(Error::Shape {
            prediction: logits.shape().to_vec(),
            target: vec![labels.len()],
            message: "give one class index per prediction row".into(),
        });
    }
    if let Some(&bad) = labels.iter().find(|&&c| c >= classes) {
        return Err(Error::Shape {
            prediction: logits.shape().to_vec(),
            target: vec![labels.len()],
            message: format!("class index {bad} is out of range for {classes} output columns"),
        });
    }
    Ok(())
}

/// Row-wise softmax of `logits` (B, C) into `out` (B, C): class probabilities per sample.
///
/// **Panics** if the shapes differ.
pub fn softmax_rows(logits: ArrayView2<f32>, mut out: ArrayViewMut2<f32>) {
    assert_eq!(logits.dim(), out.dim(), "softmax_rows: shapes differ");
    for (z, o) in logits.rows().into_iter().zip(out.rows_mut()) {
        softmax_row(z, o);
    }
}

/// Row-wise softmax of `logits / temperature` (B, C) into `out` (B, C): probabilities made
/// softer (`temperature` > 1) or sharper (< 1), the class order unchanged. A temperature of
/// 1 gives exactly [`softmax_rows`].
///
/// **Panics** if the shapes differ.
pub fn softmax_rows_tempered(
    logits: ArrayView2<f32>,
    temperature: f32,
    mut out: ArrayViewMut2<f32>,
) {
    assert_eq!(
        logits.dim(),
        out.dim(),
        "softmax_rows_tempered: shapes differ"
    );
    if temperature == 1.0 {
        return softmax_rows(logits, out);
    }
    for (z, mut o) in logits.rows().into_iter().zip(out.rows_mut()) {
        let max = z.fold(f32::NEG_INFINITY, |m, &v| m.max(v));
        let mut sum = 0.0f32;
        Zip::from(&mut o).and(&z).for_each(|o, &v| {
            *o = ((v - max) / temperature).exp();
            sum += *o;
        });
        let inv = 1.0 / sum;
        o.mapv_inplace(|p| p * inv);
    }
}

impl Loss for SoftmaxCrossEntropy {
    fn forward(&mut self, logits: ArrayView2<f32>, target: Target<'_>) -> Result<f32> {
        let (rows, classes) = logits.dim();
        let weights = &self.weights;
        let mut grad = resized(&mut self.grad, rows, classes);
        let scale = 1.0 / rows as f32;
        let mut total = 0.0f32;
        match target {
            Target::Classes(labels) => {
                check_classes(logits, labels)?;
                assert!(
                    weights.is_empty() || weights.len() == classes,
                    "one class weight per output column"
                );
                // Smoothed target: (1 − ε) on the class, ε/K spread over all K classes.
                let spread = self.smoothing / classes as f32;
                let on_class = 1.0 - self.smoothing;
                for ((z, mut g), &c) in logits.rows().into_iter().zip(grad.rows_mut()).zip(labels) {
                    let lse = softmax_row(z, g.view_mut());
                    let weight = weight_of(weights, c);
                    let mut row = on_class * (lse - z[c]);
                    if spread > 0.0 {
                        row += spread * z.iter().map(|&zj| lse - zj).sum::<f32>();
                    }
                    total += weight * row;
                    g[c] -= on_class;
                    let row_scale = weight * scale;
                    g.mapv_inplace(|v| (v - spread) * row_scale);
                }
            }
            Target::Dense(t) => {
                if t.dim() != logits.dim() {
                    return Err(Error::Shape {
                        prediction: logits.shape().to_vec(),
                        target: t.shape().to_vec(),
                        message: "give one probability (or one-hot) row per prediction row".into(),
                    });
                }
                for ((z, mut g), t) in logits.rows().into_iter().zip(grad.rows_mut()).zip(t.rows())
                {
                    let lse = softmax_row(z, g.view_mut());
                    let mass = t.sum();
                    let keep = 1.0 - self.smoothing;
                    let spread = self.smoothing * mass / classes as f32;
                    let weight = if weights.is_empty() || mass == 0.0 {
                        1.0
                    } else {
                        let weighted = t
                            .iter()
                            .enumerate()
                            .map(|(j, &tj)| weight_of(weights, j) * tj);
                        weighted.sum::<f32>() / mass
                    };
                    let mut row = 0.0;
                    Zip::from(&z)
                        .and(&t)
                        .for_each(|&z, &t| row += (keep * t + spread) * (lse - z));
                    total += weight * row;
                    let row_scale = weight * scale;
                    Zip::from(&mut g)
                        .and(&t)
                        .for_each(|g, &t| *g = (*g * mass - (keep * t + spread)) * row_scale);
                }
            }
        }
        self.forwarded = true;
        Ok(total * scale)
    }

    fn backward(&self) -> ArrayView2<'_, f32> {
        assert!(
            self.forwarded,
            "SoftmaxCrossEntropy::backward called before forward"
        );
        self.grad.view()
    }
}

/// scikit-learn's `class_weight="balanced"` from the training rows per class:
/// `w_c = n / (K · n_c)` for `n` rows and `K` classes, so that every class weighs as much in
/// total and the weights average 1 over the rows. A class with no rows gets 0 (it cannot
/// be the target of a training row); classes whose counts are all 0 give an empty list.
pub fn balanced_class_weights(counts: &[u64]) -> Vec<f32> {
    let rows: u64 = counts.iter().sum();
    if rows == 0 {
        return Vec::new();
    }
    let k = counts.len() as f64;
    (counts.iter())
        .map(|&n| {
            if n == 0 {
                0.0
            } else {
                (rows as f64 / (k * n as f64)) as f32
            }
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::excessive_precision)] // reference values as NumPy/PyTorch printed them
mod tests {
    use super::*;
    use approx::assert_abs_diff_eq;
    use ndarray::array;

    // PyTorch 2 (float32):
    //   z = tensor([[1.,2.,3.],[1.,1.,1.],[-1.,0.,5.]], requires_grad=True)
    //   L = F.cross_entropy(z, tensor([2,0,1])); L.backward()
    //   L -> 2.171797513961792
    //   z.grad -> [[ .03001019, .08157617,-.11158633],
    //              [-.22222224, .11111110, .11111110],
    //              [ .00081871,-.33110788, .33028919]]
    //   With soft targets tt = [[.2,.3,.5],[1,0,0],[0,.5,.5]]: F.cross_entropy(z, tt)
    //   L -> 1.571797490119934
    //   z.grad -> [[-.03665647,-.01842383, .05508035],
    //              [-.22222224, .11111110, .11111110],
    //              [ .00081871,-.16444120, .16362250]]
    fn logits() -> ndarray::Array2<f32> {
        array![[1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [-1.0, 0.0, 5.0]]
    }

    #[test]
    fn class_index_targets() {
        let mut ce = SoftmaxCrossEntropy::new();
        let loss = ce
            .forward(logits().view(), Target::Classes(&[2, 0, 1]))
            .unwrap();
        assert_abs_diff_eq!(loss, 2.1717975, epsilon = 1e-6);
        assert_abs_diff_eq!(
            ce.backward().to_owned(),
            array![
                [0.03001019, 0.08157617, -0.11158633],
                [-0.22222224, 0.11111110, 0.11111110],
                [0.00081871, -0.33110788, 0.33028919]
            ],
            epsilon = 1e-6
        );
    }

    #[test]
    fn one_hot_targets_equal_class_indices() {
        let mut a = SoftmaxCrossEntropy::new();
        let mut b = SoftmaxCrossEntropy::new();
        let onehot = array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let la = a
            .forward(logits().view(), Target::Classes(&[2, 0, 1]))
            .unwrap();
        let lb = b
            .forward(logits().view(), Target::Dense(onehot.view()))
            .unwrap();
        assert_abs_diff_eq!(la, lb, epsilon = 1e-6);
        assert_abs_diff_eq!(
            a.backward().to_owned(),
            b.backward().to_owned(),
            epsilon = 1e-7
        );
    }

    #[test]
    fn probability_targets() {
        let mut ce = SoftmaxCrossEntropy::new();
        let t = array![[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]];
        let loss = ce
            .forward(logits().view(), Target::Dense(t.view()))
            .unwrap();
        assert_abs_diff_eq!(loss, 1.5717975, epsilon = 1e-6);
        assert_abs_diff_eq!(
            ce.backward().to_owned(),
            array![
                [-0.03665647, -0.01842383, 0.05508035],
                [-0.22222224, 0.11111110, 0.11111110],
                [0.00081871, -0.16444120, 0.16362250]
            ],
            epsilon = 1e-6
        );
    }

    // PyTorch: F.cross_entropy(tensor([[1000.,0.,-1000.]]), tensor([1])) -> 1000.0,
    // grad [[1,-1,0]]
    #[test]
    fn huge_logits_stay_finite() {
        let mut ce = SoftmaxCrossEntropy::new();
        let loss = ce
            .forward(array![[1000.0, 0.0, -1000.0]].view(), Target::Classes(&[1]))
            .unwrap();
        assert_eq!(loss, 1000.0);
        assert_eq!(ce.backward().to_owned(), array![[1.0, -1.0, 0.0]]);
    }

    #[test]
    fn refuses_mismatched_targets() {
        let mut ce = SoftmaxCrossEntropy::new();
        let err = ce
            .forward(logits().view(), Target::Classes(&[0, 1]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "target shape [2] does not match prediction shape [3, 3]: \
             give one class index per prediction row"
        );
        let err = ce
            .forward(logits().view(), Target::Classes(&[0, 1, 3]))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("class index 3 is out of range for 3"),
            "{err}"
        );
        let t = array![[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]];
        let err = ce
            .forward(logits().view(), Target::Dense(t.view()))
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("target shape [3, 2] does not match prediction shape [3, 3]")
        );
    }

    // PyTorch: F.cross_entropy(z, tensor([2,0,1]), label_smoothing=0.1) -> 2.160686492919922
    //   z.grad -> [[ .01889908, .07046505,-.08936410],
    //              [-.19999999, .09999999, .09999999],
    //              [-.01029241,-.30888563, .31917804]]
    //   with the soft targets tt above: -> 1.6206865310668945
    //   z.grad -> [[-.04110092,-.01953495, .06063589],
    //              [-.20000002, .09999999, .09999999],
    //              [-.01029241,-.15888564, .16917805]]
    #[test]
    fn label_smoothing_matches_pytorch() {
        let mut ce = SoftmaxCrossEntropy::new()
            .with_label_smoothing(0.1)
            .unwrap();
        let loss = ce
            .forward(logits().view(), Target::Classes(&[2, 0, 1]))
            .unwrap();
        assert_abs_diff_eq!(loss, 2.1606865, epsilon = 1e-6);
        assert_abs_diff_eq!(
            ce.backward().to_owned(),
            array![
                [0.01889908, 0.07046505, -0.08936410],
                [-0.19999999, 0.09999999, 0.09999999],
                [-0.01029241, -0.30888563, 0.31917804]
            ],
            epsilon = 1e-6
        );
        let t = array![[0.2, 0.3, 0.5], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]];
        let loss = ce
            .forward(logits().view(), Target::Dense(t.view()))
            .unwrap();
        assert_abs_diff_eq!(loss, 1.6206865, epsilon = 1e-6);
        assert_abs_diff_eq!(
            ce.backward().to_owned(),
            array![
                [-0.04110092, -0.01953495, 0.06063589],
                [-0.20000002, 0.09999999, 0.09999999],
                [-0.01029241, -0.15888564, 0.16917805]
            ],
            epsilon = 1e-6
        );
        assert!(
            SoftmaxCrossEntropy::new()
                .with_label_smoothing(1.0)
                .is_err()
        );
    }

    // PyTorch 2 (float32), w = tensor([0.5, 2.0, 1.5]), y = tensor([2,0,1]), z as above:
    //   L = (F.cross_entropy(z, y, reduction="none") * w[y]).mean() -> 3.7263545989990234
    //   z.grad -> [[ .04501529, .12236425,-.16737950],
    //              [-.11111112, .05555555, .05555555],
    //              [ .00163741,-.66221577, .66057837]]
    //   with label_smoothing=0.1 -> 3.6874656677246094
    //   z.grad -> [[ .02834862, .10569758,-.13404617],
    //              [-.10000001, .05000000, .05000000],
    //              [-.02058481,-.61777133, .63835615]]
    #[test]
    fn class_weights_match_pytorch() {
        let mut ce = SoftmaxCrossEntropy::new().with_class_weights(vec![0.5, 2.0, 1.5]);
        let loss = ce
            .forward(logits().view(), Target::Classes(&[2, 0, 1]))
            .unwrap();
        assert_abs_diff_eq!(loss, 3.7263546, epsilon = 1e-5);
        assert_abs_diff_eq!(
            ce.backward().to_owned(),
            array![
                [0.04501529, 0.12236425, -0.16737950],
                [-0.11111112, 0.05555555, 0.05555555],
                [0.00163741, -0.66221577, 0.66057837]
            ],
            epsilon = 1e-6
        );
        let mut ce = SoftmaxCrossEntropy::new()
            .with_label_smoothing(0.1)
            .unwrap()
            .with_class_weights(vec![0.5, 2.0, 1.5]);
        let loss = ce
            .forward(logits().view(), Target::Classes(&[2, 0, 1]))
            .unwrap();
        assert_abs_diff_eq!(loss, 3.6874657, epsilon = 1e-5);
        assert_abs_diff_eq!(
            ce.backward().to_owned(),
            array![
                [0.02834862, 0.10569758, -0.13404617],
                [-0.10000001, 0.05000000, 0.05000000],
                [-0.02058481, -0.61777133, 0.63835615]
            ],
            epsilon = 1e-6
        );
        // One-hot rows weigh as their class does.
        let onehot = array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]];
        let mut dense = SoftmaxCrossEntropy::new().with_class_weights(vec![0.5, 2.0, 1.5]);
        let loss = dense
            .forward(logits().view(), Target::Dense(onehot.view()))
            .unwrap();
        assert_abs_diff_eq!(loss, 3.7263546, epsilon = 1e-5);
    }

    /// Central differences of the weighted, smoothed loss in each logit against its
    /// backward pass.
    #[test]
    fn class_weighted_gradient_matches_finite_differences() {
        let labels = [2, 0, 1, 1];
        let z = array![
            [0.3, -1.2, 0.8],
            [1.5, 0.2, -0.4],
            [-0.7, 0.9, 0.1],
            [0.0, 2.0, -1.0]
        ];
        let new = || {
            SoftmaxCrossEntropy::new()
                .with_label_smoothing(0.05)
                .unwrap()
                .with_class_weights(vec![0.4, 1.7, 2.9])
        };
        let mut ce = new();
        ce.forward(z.view(), Target::Classes(&labels)).unwrap();
        let analytic = ce.backward().to_owned();
        let h = 1e-2f32;
        for ((r, c), &want) in analytic.indexed_iter() {
            let at = |d: f32| {
                let mut moved = z.clone();
                moved[[r, c]] += d;
                new()
                    .forward(moved.view(), Target::Classes(&labels))
                    .unwrap()
            };
            let numeric = (at(h) - at(-h)) / (2.0 * h);
            assert_abs_diff_eq!(numeric, want, epsilon = 2e-4);
        }
    }

    // scikit-learn: compute_class_weight("balanced", classes=[0,1,2], y=[0]*6+[1]*3+[2])
    //   -> [0.5555555555555556, 1.1111111111111112, 3.3333333333333335]
    #[test]
    fn balanced_weights_match_scikit_learn() {
        let w = balanced_class_weights(&[6, 3, 1]);
        assert_abs_diff_eq!(
            ndarray::Array1::from(w),
            array![
                0.5555555555555556f32,
                1.1111111111111112,
                3.3333333333333335
            ],
            epsilon = 1e-6
        );
        assert_eq!(balanced_class_weights(&[4, 0]), vec![0.5, 0.0]);
        assert!(balanced_class_weights(&[0, 0]).is_empty());
    }

    #[test]
    fn softmax_rows_sum_to_one() {
        let mut p = ndarray::Array2::zeros((3, 3));
        softmax_rows(logits().view(), p.view_mut());
        for row in p.rows() {
            assert_abs_diff_eq!(row.sum(), 1.0, epsilon = 1e-6);
        }
        assert_abs_diff_eq!(p[[1, 0]], 1.0 / 3.0, epsilon = 1e-7);
    }
}
