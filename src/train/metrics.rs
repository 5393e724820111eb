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
        .collect();
    ClassificationReport {
        accuracy: ratio(correct, truth.len()),
        classes,
        confusion,
    }
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
