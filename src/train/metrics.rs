//! How good predictions are: classification and regression metrics.

use ndarray::{ArrayView1, ArrayView2, Axis};
use serde::Serialize;

/// Index of the largest value (the first on ties).
pub fn argmax(values: ArrayView1<f32>) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// Row-wise argmax of `logits` (rows, classes).
pub fn predict_classes(logits: ArrayView2<f32>) -> Vec<usize> {
    logits.axis_iter(Axis(0)).map(argmax).collect()
}

/// Precision, recall and F1 of one class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassScores {
    /// The class label.
    pub label: String,
    /// Of the rows predicted as this class, the fraction that are (0 if none predicted).
    pub precision: f64,
    /// Of the rows of this class, the fraction predicted as it (0 if none exist).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 if both are 0).
    pub f1: f64,
    /// Rows of this class.
    pub support: usize,
}

/// Classification results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassificationReport {
    /// Fraction of rows predicted correctly.
    pub accuracy: f64,
    /// Mean recall over the classes present in the truth (scikit-learn's
    /// `balanced_accuracy_score`): 0.5 for always answering the majority of two classes.
    pub balanced_accuracy: f64,
    /// Mean F1 over the classes present in the truth or the predictions (scikit-learn's
    /// `f1_score(average="macro")`).
    pub macro_f1: f64,
    /// Per-class scores, in label order.
    pub classes: Vec<ClassScores>,
    /// `confusion[true][predicted]` counts.
    pub confusion: Vec<Vec<usize>>,
}

/// Scores predicted class indices against true ones; `labels[i]` names class `i`.
///
/// **Panics** if the slices differ in length or an index is out of range for `labels`.
pub fn classification(
    truth: &[usize],
    predicted: &[usize],
    labels: &[String],
) -> ClassificationReport {
    assert_eq!(truth.len(), predicted.len(), "one prediction per row");
    let k = labels.len();
    let mut confusion = vec![vec![0usize; k]; k];
    for (&t, &p) in truth.iter().zip(predicted) {
        confusion[t][p] += 1;
    }
    from_confusion(confusion, labels)
}

/// [`classification`] from the counts `confusion[true][predicted]`, one row and column per
/// label.
///
/// **Panics** if `confusion` is not square with one row per label.
pub fn from_confusion(confusion: Vec<Vec<usize>>, labels: &[String]) -> ClassificationReport {
    let k = labels.len();
    assert!(
        confusion.len() == k && confusion.iter().all(|r| r.len() == k),
        "one confusion row and column per label"
    );
    let rows: usize = confusion.iter().flatten().sum();
    let correct: usize = (0..k).map(|i| confusion[i][i]).sum();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let classes = (0..k)
        .map(|i| {
            let support: usize = confusion[i].iter().sum();
            let predicted_as: usize = confusion.iter().map(|row| row[i]).sum();
            let precision = ratio(confusion[i][i], predicted_as);
            let recall = ratio(confusion[i][i], support);
            let f1 = if precision + recall == 0.0 {
                0.0
            } else {
                2.0 * precision * recall / (precision + recall)
            };
            ClassScores {
                label: labels[i].clone(),
                precision,
                recall,
                f1,
                support,
            }
        })
        .collect::<Vec<ClassScores>>();
    let predicted_as = |i: usize| confusion.iter().map(|row| row[i]).sum::<usize>();
    let mean = |values: Vec<f64>| values.iter().sum::<f64>() / values.len().max(1) as f64;
    let recalls = (classes.iter()).filter(|c| c.support > 0).map(|c| c.recall);
    let f1s = (classes.iter().enumerate())
        .filter(|(i, c)| c.support > 0 || predicted_as(*i) > 0)
        .map(|(_, c)| c.f1);
    ClassificationReport {
        accuracy: ratio(correct, rows),
        balanced_accuracy: mean(recalls.collect()),
        macro_f1: mean(f1s.collect()),
        classes,
        confusion,
    }
}

/// Probabilities below this count as it in [`log_loss`] (scikit-learn's `eps` before 1.5),
/// so that one confident mistake costs about 34.5 rather than infinity.
pub const LOG_LOSS_FLOOR: f64 = 1e-15;

/// Mean negative natural log of the probability given to the true class (scikit-learn's
/// `log_loss`), probabilities clipped to [`LOG_LOSS_FLOOR`], 1 − [`LOG_LOSS_FLOOR`].
///
/// **Panics** if `probabilities` (rows, classes) has not one row per `truth` entry, or a
/// class index is out of range.
pub fn log_loss(truth: &[usize], probabilities: ArrayView2<f32>) -> f64 {
    assert_eq!(truth.len(), probabilities.nrows(), "one row per truth");
    let total: f64 = (truth.iter().zip(probabilities.rows()))
        .map(|(&t, p)| {
            -(p[t] as f64)
                .clamp(LOG_LOSS_FLOOR, 1.0 - LOG_LOSS_FLOOR)
                .ln()
        })
        .sum();
    total / truth.len().max(1) as f64
}

/// Area under the ROC curve of `scores` for telling rows with `positive` true from the
/// others, tied scores counting half (the Mann-Whitney U statistic over average ranks).
/// `None` when either group is empty.
fn binary_auc(scores: &[f64], positive: &[bool]) -> Option<f64> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut start) = (0.0, 0);
    while start < order.len() {
        let mut end = start;
        while end + 1 < order.len() && scores[order[end + 1]] == scores[order[start]] {
            end += 1;
        }
        // Ranks start..=end (1-based: start+1..=end+1) share their mean.
        let rank = (start + end) as f64 / 2.0 + 1.0;
        rank_sum += rank * order[start..=end].iter().filter(|&&r| positive[r]).count() as f64;
        start = end + 1;
    }
    let pos = positive.iter().filter(|&&p| p).count() as f64;
    let neg = positive.len() as f64 - pos;
    (pos > 0.0 && neg > 0.0).then(|| (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * neg))
}

/// ROC AUC of class probabilities (scikit-learn's `roc_auc_score`): with two classes, of the
/// second class's probability; with more, the unweighted mean of each class against the
/// rest (`multi_class="ovr"`, `average="macro"`) over the classes present in the truth.
/// `None` when the truth holds a single class (the area is undefined).
///
/// **Panics** if `probabilities` (rows, classes) has not one row per `truth` entry.
pub fn roc_auc(truth: &[usize], probabilities: ArrayView2<f32>) -> Option<f64> {
    assert_eq!(truth.len(), probabilities.nrows(), "one row per truth");
    let classes = probabilities.ncols();
    let column = |c: usize| -> (Vec<f64>, Vec<bool>) {
        let scores = probabilities.column(c).iter().map(|&p| p as f64).collect();
        (scores, truth.iter().map(|&t| t == c).collect())
    };
    if classes == 2 {
        let (scores, positive) = column(1);
        return binary_auc(&scores, &positive);
    }
    let areas: Vec<f64> = (0..classes)
        .filter_map(|c| {
            let (scores, positive) = column(c);
            binary_auc(&scores, &positive)
        })
        .collect();
    (areas.len() >= 2).then(|| areas.iter().sum::<f64>() / areas.len() as f64)
}

/// The share of `truth` rows holding the class that is most frequent in `counts` (the
/// training rows per class): the accuracy of always answering it. The class and the share;
/// `None` without counts.
pub fn majority_baseline(counts: &[u64], truth: &[usize]) -> Option<(usize, f64)> {
    let (class, _) = (counts.iter().enumerate())
        .rev()
        .max_by_key(|(_, n)| **n)
        .filter(|(_, n)| **n > 0)?;
    let hits = truth.iter().filter(|&&t| t == class).count();
    Some((class, hits as f64 / truth.len().max(1) as f64))
}

/// Regression results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RegressionReport {
    /// Mean squared error.
    pub mse: f64,
    /// Root mean squared error.
    pub rmse: f64,
    /// Mean absolute error.
    pub mae: f64,
    /// Coefficient of determination, `1 − SS_res / SS_tot` (0 when the truth is constant).
    pub r2: f64,
}

/// Scores predicted values against true ones.
///
/// **Panics** if the slices differ in length.
pub fn regression(truth: &[f64], predicted: &[f64]) -> RegressionReport {
    assert_eq!(truth.len(), predicted.len(), "one prediction per row");
    let n = truth.len().max(1) as f64;
    let mean = truth.iter().sum::<f64>() / n;
    let (mut se, mut ae, mut tot) = (0.0, 0.0, 0.0);
    for (&t, &p) in truth.iter().zip(predicted) {
        se += (t - p) * (t - p);
        ae += (t - p).abs();
        tot += (t - mean) * (t - mean);
    }
    let mse = se / n;
    RegressionReport {
        mse,
        rmse: mse.sqrt(),
        mae: ae / n,
        r2: if tot > 0.0 { 1.0 - se / tot } else { 0.0 },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // scikit-learn 1.9:
    //   y = [0,0,1,1,2,2]; p = [0,1,1,1,2,0]
    //   accuracy_score -> 0.6666666666666666
    //   precision_recall_fscore_support(y, p) ->
    //     precision [0.5, 0.6667, 1.0], recall [0.5, 1.0, 0.5], f1 [0.5, 0.8, 0.6667]
    #[test]
    fn classification_matches_scikit_learn() {
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let r = classification(&[0, 0, 1, 1, 2, 2], &[0, 1, 1, 1, 2, 0], &labels);
        assert!((r.accuracy - 2.0 / 3.0).abs() < 1e-12);
        let p: Vec<f64> = r.classes.iter().map(|c| c.precision).collect();
        let rec: Vec<f64> = r.classes.iter().map(|c| c.recall).collect();
        let f1: Vec<f64> = r.classes.iter().map(|c| c.f1).collect();
        assert_eq!(p, vec![0.5, 2.0 / 3.0, 1.0]);
        assert_eq!(rec, vec![0.5, 1.0, 0.5]);
        assert!((f1[1] - 0.8).abs() < 1e-12 && (f1[2] - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(
            r.confusion,
            vec![vec![1, 1, 0], vec![0, 2, 0], vec![1, 0, 1]]
        );
    }

    // scikit-learn 1.9.1:
    //   y = [0,0,1,1,0,1,0]; p1 = [0.1,0.4,0.35,0.8,0.4,0.4,0.9]; P = c_[1-p1, p1]
    //   log_loss(y, P) -> 0.802693323410128
    //   roc_auc_score(y, p1) -> 0.5 (ties between classes at 0.4 count half)
    //   pred = P.argmax(1) = [0,0,0,1,0,0,1]
    //   balanced_accuracy_score(y, pred) -> 0.5416666666666666
    //   f1_score(y, pred, average="macro") -> 0.5333333333333333
    #[test]
    fn binary_metrics_match_scikit_learn() {
        let y = [0, 0, 1, 1, 0, 1, 0];
        let p1 = [0.1f32, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9];
        let p = ndarray::Array2::from_shape_fn(
            (7, 2),
            |(r, c)| {
                if c == 1 { p1[r] } else { 1.0 - p1[r] }
            },
        );
        assert!((log_loss(&y, p.view()) - 0.802693323410128).abs() < 1e-6);
        assert_eq!(roc_auc(&y, p.view()), Some(0.5));
        let labels: Vec<String> = ["no", "yes"].iter().map(|s| s.to_string()).collect();
        let r = classification(&y, &predict_classes(p.view()), &labels);
        assert!((r.balanced_accuracy - 0.5416666666666666).abs() < 1e-12);
        assert!((r.macro_f1 - 0.5333333333333333).abs() < 1e-12);
        // Always "no" on three "no" and one "yes": scikit-learn gives 0.5 and
        // 0.42857142857142855 (the "yes" F1 of 0 counts, its class being in the truth).
        let r = classification(&[0, 0, 0, 1], &[0, 0, 0, 0], &labels);
        assert_eq!(r.balanced_accuracy, 0.5);
        assert!((r.macro_f1 - 0.42857142857142855).abs() < 1e-12);
    }

    // scikit-learn 1.9.1:
    //   y = [0,0,1,1,2,2]
    //   P = [[.7,.2,.1],[.3,.4,.3],[.2,.5,.3],[.1,.8,.1],[.2,.2,.6],[.5,.2,.3]]
    //   log_loss(y, P) -> 0.6986228180384583
    //   roc_auc_score(y, P, multi_class="ovr", average="macro") -> 0.9166666666666666
    //   pred = [0,1,1,1,2,0]: balanced_accuracy_score -> 0.6666666666666666,
    //   f1_score(average="macro") -> 0.6555555555555556
    #[test]
    fn multiclass_metrics_match_scikit_learn() {
        let y = [0, 0, 1, 1, 2, 2];
        let p = ndarray::array![
            [0.7f32, 0.2, 0.1],
            [0.3, 0.4, 0.3],
            [0.2, 0.5, 0.3],
            [0.1, 0.8, 0.1],
            [0.2, 0.2, 0.6],
            [0.5, 0.2, 0.3]
        ];
        assert!((log_loss(&y, p.view()) - 0.6986228180384583).abs() < 1e-6);
        let auc = roc_auc(&y, p.view()).unwrap();
        assert!((auc - 0.9166666666666666).abs() < 1e-12, "{auc}");
        let labels: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let r = classification(&y, &[0, 1, 1, 1, 2, 0], &labels);
        assert!((r.balanced_accuracy - 2.0 / 3.0).abs() < 1e-12);
        assert!((r.macro_f1 - 0.6555555555555556).abs() < 1e-12);
        // One class only: no area.
        assert_eq!(roc_auc(&[1, 1], p.slice(ndarray::s![..2, ..])), None);
    }

    // scikit-learn before 1.5 (eps=1e-15): log_loss([0,1], [[0,1],[0,1]]) ->
    // 17.269388197455342, i.e. -ln(1e-15)/2; a certain right answer costs nothing.
    #[test]
    fn log_loss_clips_certain_mistakes() {
        let wrong = ndarray::array![[0.0f32, 1.0], [0.0, 1.0]];
        assert!((log_loss(&[0, 1], wrong.view()) - 17.269388197455342).abs() < 1e-9);
        let right = ndarray::array![[1.0f32, 0.0], [0.0, 1.0]];
        assert!(log_loss(&[0, 1], right.view()) < 1e-14);
    }

    #[test]
    fn majority_baseline_is_the_training_majority_on_these_rows() {
        // Class 1 is the most frequent in training; 2 of these 4 rows hold it.
        assert_eq!(majority_baseline(&[3, 9, 1], &[1, 0, 1, 2]), Some((1, 0.5)));
        // Ties go to the first class, as argmax does.
        assert_eq!(majority_baseline(&[5, 5], &[1, 1]), Some((0, 0.0)));
        assert_eq!(majority_baseline(&[], &[0]), None);
    }

    // scikit-learn: mean_squared_error([3,-0.5,2,7],[2.5,0,2,8]) -> 0.375;
    // mean_absolute_error -> 0.5; r2_score -> 0.9486081370449679
    #[test]
    fn regression_matches_scikit_learn() {
        let r = regression(&[3.0, -0.5, 2.0, 7.0], &[2.5, 0.0, 2.0, 8.0]);
        assert_eq!(r.mse, 0.375);
        assert_eq!(r.mae, 0.5);
        assert!((r.r2 - 0.9486081370449679).abs() < 1e-12);
        assert!((r.rmse - 0.375f64.sqrt()).abs() < 1e-15);
    }
}
