//! Permutation feature importance (Breiman, 2001; scikit-learn's
//! `permutation_importance`): how much worse the model does when one column's values are
//! shuffled across the rows, breaking its link with the target while keeping its
//! distribution.
//!
//! A one-hot-encoded column is shuffled as one block, so it counts as one column, named as
//! in the CSV header. The score is accuracy for classes and R² for numbers; a column's
//! importance is the score on the intact rows minus the score with that column shuffled.

use std::path::Path;

use ndarray::{Array2, ArrayView2, s};
use ndarray_rand::rand::seq::SliceRandom;
use ndarray_rand::rand::{SeedableRng, rngs::StdRng};
use plotters::prelude::*;
use serde::Serialize;

use crate::error::{Error, Location, Result, escape_controls};
use crate::tabular::encoding::TargetEncoding;
use crate::tabular::encoding::{Targets, Task, Unseen};
use crate::tabular::model::{Model, Predictions};
use crate::train::plot::{Frame, canvas, render_png_with, write_png_with};
use crate::train::{Batch, evaluate};

/// The most shuffles per column a caller may ask for. The spread over repeats settles
/// within tens of shuffles (scikit-learn's default is 5), so 1000 is far past any use; and
/// each repeat scores the model once per column on every row, so an unbounded count is
/// unbounded work (10⁶ repeats ran for about 18 minutes on a small file) and an
/// allocation that cannot succeed (`repeats` drops are kept per column).
pub const MAX_REPEATS: usize = 1000;

/// The importance of one CSV column.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ColumnImportance {
    /// The column's name in the CSV header.
    pub column: String,
    /// Mean drop of the score over the repeats.
    pub mean: f64,
    /// Standard deviation of the drop over the repeats (population, as scikit-learn).
    pub std: f64,
}

/// Every column's importance, most important first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Importance {
    /// `accuracy` or `R²`.
    pub metric: &'static str,
    /// The score on the rows as they are.
    pub baseline: f64,
    /// Shuffles per column.
    pub repeats: usize,
    /// Columns sorted by mean importance, largest first (ties keep the file's order).
    pub importance: Vec<ColumnImportance>,
    /// Rows of the file left out because their target is missing.
    #[serde(skip)]
    pub missing_targets: usize,
    /// Categories not seen in training, scored with none of their column's inputs on.
    #[serde(skip)]
    pub unseen: Unseen,
}

/// Permutation importance of every feature column of `model` on encoded rows `x` with
/// targets `y`: each column is shuffled `repeats` times (from `seed`) and the model scored.
///
/// **Panics** if `repeats` is 0 or over [`MAX_REPEATS`], or `x` does not have the model's
/// input width.
pub fn permutation_importance(
    model: &mut Model,
    x: ArrayView2<f32>,
    y: &Targets,
    repeats: usize,
    seed: u64,
) -> Result<Importance> {
    assert!(
        (1..=MAX_REPEATS).contains(&repeats),
        "permutation_importance: between 1 and {MAX_REPEATS} repeats"
    );
    let score = |model: &mut Model, x: ArrayView2<f32>| -> Result<f64> {
        if model.ensemble.is_empty() {
            Ok(evaluate(&mut model.network, Batch { x, y })?.1 as f64)
        } else {
            Ok(ensemble_score(model, x, y))
        }
    };
    let baseline = score(model, x)?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut shuffled: Array2<f32> = x.to_owned();
    let mut order: Vec<usize> = (0..x.nrows()).collect();
    let features = model.file.encoding.features.clone();
    let mut importance = Vec::with_capacity(features.len());
    let mut offset = 0;
    for feature in &features {
        let block = offset..offset + feature.width();
        let mut drops = Vec::with_capacity(repeats);
        for _ in 0..repeats {
            order.shuffle(&mut rng);
            for (row, &from) in order.iter().enumerate() {
                let source = x.slice(s![from, block.clone()]);
                shuffled.slice_mut(s![row, block.clone()]).assign(&source);
            }
            drops.push(baseline - score(model, shuffled.view())?);
        }
        shuffled
            .slice_mut(s![.., block.clone()])
            .assign(&x.slice(s![.., block]));
        let mean = drops.iter().sum::<f64>() / repeats as f64;
        let var = drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / repeats as f64;
        importance.push(ColumnImportance {
            column: feature.name().to_string(),
            mean,
            std: var.sqrt(),
        });
        offset += feature.width();
    }
    importance.sort_by(|a, b| b.mean.total_cmp(&a.mean));
    Ok(Importance {
        metric: match model.file.task {
            Task::Classification => "accuracy",
            Task::Regression => "R²",
        },
        baseline,
        repeats,
        importance,
        missing_targets: 0,
        unseen: Unseen::default(),
    })
}

/// The score of a k-fold ensemble's predictions (the networks' average, as
/// [`Model::predict_encoded`] gives them) on `x` with targets `y`: accuracy, or R² of the
/// values (standardised targets and predictions alike, as [`evaluate`] scores one network).
fn ensemble_score(model: &mut Model, x: ArrayView2<f32>, y: &Targets) -> f64 {
    match (model.predict_encoded(x), y) {
        (Predictions::Classes { classes, .. }, Targets::Classes(want)) => {
            let right = classes.iter().zip(want).filter(|(c, w)| c == w).count();
            right as f64 / want.len().max(1) as f64
        }
        (Predictions::Values(values), Targets::Values(want)) => {
            let (mean, std) = match &model.file.encoding.target {
                TargetEncoding::Values { mean, std, .. } => (*mean, *std),
                TargetEncoding::Classes { .. } => unreachable!("values from a regressor"),
            };
            let want: Vec<f64> = want.iter().map(|&t| t as f64).collect();
            let centre = want.iter().sum::<f64>() / want.len().max(1) as f64;
            let (mut ss_res, mut ss_tot) = (0.0, 0.0);
            for (&v, &t) in values.iter().zip(&want) {
                ss_res += ((v - mean) / std - t).powi(2);
                ss_tot += (t - centre).powi(2);
            }
            if ss_tot > 0.0 {
                1.0 - ss_res / ss_tot
            } else {
                0.0
            }
        }
        _ => unreachable!("targets read for the model's task"),
    }
}

/// [`permutation_importance`] on every row of the CSV at `path` (which needs the target
/// column). Fewer than two rows, or rows that all have the same target, have no answer (a
/// shuffle changes nothing, or no column can explain a target that does not vary): an
/// error says so rather than a 0 for every column.
pub fn importance_file(
    model: &mut Model,
    path: &Path,
    repeats: usize,
    seed: u64,
) -> Result<Importance> {
    let rows = crate::tabular::labelled::read_labelled(model, path)?;
    if let Some((why, hint)) = no_answer(&rows.targets, rows.missing_targets) {
        let location = Location {
            path: path.to_path_buf(),
            line: None,
            column: None,
        };
        return Err(Error::data(location, why, hint));
    }
    let mut importance =
        permutation_importance(model, rows.inputs.view(), &rows.targets, repeats, seed)?;
    importance.missing_targets = rows.missing_targets;
    importance.unseen = rows.unseen;
    Ok(importance)
}

/// Why permutation importance means nothing on rows with these targets, if it does not,
/// and what to do instead.
fn no_answer(targets: &Targets, missing_targets: usize) -> Option<(String, &'static str)> {
    let (rows, same) = match targets {
        Targets::Classes(c) => (c.len(), c.windows(2).all(|w| w[0] == w[1])),
        Targets::Values(v) => {
            let first = v.iter().next();
            (v.nrows(), v.iter().all(|t| Some(t) == first))
        }
    };
    if rows == 0 && missing_targets > 0 {
        let why = format!(
            "every row ({missing_targets}) has its target missing, so there is nothing to \
             compare with"
        );
        Some((why, "give it rows whose target is filled in"))
    } else if rows < 2 {
        let why = format!(
            "{rows} row{}: shuffling a column needs at least two rows to change anything, so \
             every importance would be 0",
            if rows == 1 { "" } else { "s" }
        );
        let hint = "give it more rows with known targets, ideally ones the model did not \
                    train on";
        Some((why, hint))
    } else if same {
        let why = "every row has the same target, so no column can explain it and every \
                   importance would be 0";
        Some((why.to_string(), "give it rows whose targets vary"))
    } else {
        None
    }
}

impl std::fmt::Display for Importance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Column names come from the file: shown escaped, and measured so.
        let names: Vec<String> = (self.importance.iter())
            .map(|c| escape_controls(&c.column))
            .collect();
        let width = names
            .iter()
            .map(|n| n.chars().count())
            .max()
            .unwrap_or(6)
            .max(6);
        writeln!(
            f,
            "{} without shuffling: {:.4}; drop when a column is shuffled ({} repeats):",
            self.metric, self.baseline, self.repeats
        )?;
        writeln!(f, "{:<width$}  {:>8}  {:>7}", "column", "mean", "std")?;
        for (c, name) in self.importance.iter().zip(&names) {
            writeln!(f, "{name:<width$}  {:>8.4}  {:>7.4}", c.mean, c.std)?;
        }
        Ok(())
    }
}

const BAR: RGBColor = RGBColor(31, 119, 180);

impl Importance {
    /// Writes a horizontal bar chart (mean drop, with ± one deviation) to `path` atomically.
    pub fn write_png(&self, title: &str, path: &Path) -> Result<()> {
        write_png_with(path, || self.render_png(title))
    }

    /// The bar chart as PNG bytes: at most the 30 most important columns.
    pub fn render_png(&self, title: &str) -> std::result::Result<Vec<u8>, String> {
        let shown = &self.importance[..self.importance.len().min(30)];
        let (width, height) = (900u32, 140 + 34 * shown.len().max(1) as u32);
        render_png_with((width, height), "the importance chart", |rgb| {
            draw_bars(rgb, (width, height), title, self.metric, shown)
        })
    }
}

fn draw_bars(
    rgb: &mut [u8],
    size: (u32, u32),
    title: &str,
    metric: &str,
    columns: &[ColumnImportance],
) -> std::result::Result<(), Box<dyn std::error::Error>> {
    let root = canvas(rgb, size)?;
    let n = columns.len();
    let lo = columns.iter().map(|c| c.mean - c.std).fold(0f64, f64::min);
    let hi = columns.iter().map(|c| c.mean + c.std).fold(0f64, f64::max);
    let pad = ((hi - lo) * 0.05).max(1e-3);
    let label_width = columns
        .iter()
        .map(|c| c.column.chars().count())
        .max()
        .unwrap_or(4) as u32
        * 9
        + 20;
    let frame = Frame {
        title,
        title_size: 24,
        margin: 16,
        x_labels: 50,
        y_labels: label_width.clamp(60, 320),
        right_labels: 0,
    };
    let mut chart = frame.on(&root).build_cartesian_2d(
        lo - pad..hi + pad,
        // A segmented 0..k has k + 1 bands: n − 1 gives one band per column.
        (0..n.max(2) - 1).into_segmented(),
    )?;
    // Most important at the top.
    let name = |v: &SegmentValue<usize>| match v {
        SegmentValue::CenterOf(i) if *i < n => columns[n - 1 - i].column.clone(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(format!("drop in {metric} when the column is shuffled"))
        .axis_desc_style(("sans-serif", 18))
        .label_style(("sans-serif", 16))
        .y_labels(n)
        .y_label_formatter(&name)
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(200, 200, 200))
        .draw()?;
    chart.draw_series(columns.iter().enumerate().map(|(k, c)| {
        let i = n - 1 - k;
        let (a, b) = (c.mean.min(0.0), c.mean.max(0.0));
        let mut bar = Rectangle::new(
            [(a, SegmentValue::Exact(i)), (b, SegmentValue::Exact(i + 1))],
            BAR.filled(),
        );
        bar.set_margin(6, 6, 0, 0);
        bar
    }))?;
    // ± one standard deviation, through the middle of each bar.
    chart.draw_series(columns.iter().enumerate().map(|(k, c)| {
        let i = n - 1 - k;
        PathElement::new(
            [
                (c.mean - c.std, SegmentValue::CenterOf(i)),
                (c.mean + c.std, SegmentValue::CenterOf(i)),
            ],
            BLACK.stroke_width(2),
        )
    }))?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{TrainRequest, prepare_bytes, train};
    use crate::train::TrainConfig;

    /// 400 rows: `signal` alone decides the class (positive → "yes"); `noise`, `other`
    /// and the categorical `colour` are independent of it.
    pub(crate) fn one_informative_column() -> String {
        let mut rng = StdRng::seed_from_u64(11);
        let mut csv = String::from("noise,signal,colour,other,label\n");
        let colours = ["red", "green", "blue"];
        use ndarray_rand::rand::Rng;
        for _ in 0..400 {
            let signal: f32 = rng.random_range(-1.0..1.0);
            let noise: f32 = rng.random_range(-1.0..1.0);
            let other: f32 = rng.random_range(0.0..10.0);
            let colour = colours[rng.random_range(0..3)];
            let label = if signal > 0.0 { "yes" } else { "no" };
            csv.push_str(&format!(
                "{noise:.3},{signal:.3},{colour},{other:.3},{label}\n"
            ));
        }
        csv
    }

    #[test]
    fn the_one_informative_column_ranks_first_by_a_wide_margin() {
        let csv = one_informative_column();
        let request = TrainRequest {
            config: TrainConfig {
                hidden: vec![16],
                epochs: 60,
                folds: 0, // one network, scored on its validation rows
                ..TrainConfig::default()
            },
            ..TrainRequest::new("signal.csv")
        };
        let prepared = prepare_bytes(&request, csv.as_bytes()).unwrap();
        let mut model = train(&prepared, &request.config, None, &mut |_| {})
            .unwrap()
            .model;
        let x = prepared.x_val.clone();
        let imp = permutation_importance(&mut model, x.view(), &prepared.y_val, 5, 0).unwrap();
        assert_eq!(imp.metric, "accuracy");
        assert!(imp.baseline > 0.9, "{imp}");
        let names: Vec<&str> = imp.importance.iter().map(|c| c.column.as_str()).collect();
        assert_eq!(names[0], "signal", "{imp}");
        // One entry per CSV column: the one-hot colour counts once.
        assert_eq!(names.len(), 4, "{imp}");
        let first = imp.importance[0].mean;
        // Shuffling the deciding column leaves a coin toss: accuracy drops by about 0.4.
        assert!(first > 0.3, "{imp}");
        for other in &imp.importance[1..] {
            assert!(other.mean < 0.05 && first > 8.0 * other.mean.abs(), "{imp}");
        }
        // Seeded: the same numbers again.
        let again = permutation_importance(&mut model, x.view(), &prepared.y_val, 5, 0).unwrap();
        assert_eq!(imp, again);
    }
}
