//! The learning-rate range test (Smith, 2015, "Cyclical Learning Rates for Training Neural
//! Networks"; fastai's `lr_find`): train a fresh network for a short while with a learning
//! rate that grows exponentially at every step, record the loss, and read a good learning
//! rate off the curve. The network is thrown away afterwards.

use std::path::Path;

use ndarray::{Array2, ArrayView2, s};
use ndarray_rand::rand::seq::SliceRandom;
use ndarray_rand::rand::{SeedableRng, rngs::StdRng};
use plotters::prelude::*;

use crate::error::{Error, Hint, Location, Result, Setting};
use crate::nn::loss::Target;
use crate::pipeline::{Prepared, new_network};
use crate::tabular::encoding::Targets;
use crate::train::plot::{
    DrawResult, Frame, canvas, draw_legend, light_grid, render_png_with, write_png_with,
};
use crate::train::{TrainConfig, loss_for, train_step};

/// The sweep's settings: `steps` learning rates from `start` to `end`, spaced evenly on a
/// log scale (fastai's defaults: 100 steps from 1e-7 to 10).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sweep {
    /// The first learning rate.
    pub start: f32,
    /// The last learning rate.
    pub end: f32,
    /// Steps (one mini-batch each).
    pub steps: usize,
}

impl Default for Sweep {
    fn default() -> Self {
        Self {
            start: 1e-7,
            end: 10.0,
            steps: 100,
        }
    }
}

/// How the suggestion is read off the curve.
pub const RULE: &str = "the learning rate at the lowest smoothed loss, divided by 10 \
                        (fastai's lr_min / 10)";

/// The recorded sweep and the learning rate it suggests.
#[derive(Debug, Clone, PartialEq)]
pub struct LrFind {
    /// The learning rate of each step taken.
    pub learning_rates: Vec<f32>,
    /// The batch loss of each step.
    pub losses: Vec<f32>,
    /// The loss smoothed by an exponential moving average (β = 0.98, bias-corrected).
    pub smoothed: Vec<f32>,
    /// The suggested learning rate, by [`RULE`].
    pub suggested: f32,
    /// The learning rate where the smoothed loss was lowest.
    pub lowest: f32,
}

/// Runs the range test on the training split of `prepared` with the network (built as
/// training builds it, dropout included), optimizer and batch size of `config` (its
/// learning rate is ignored). Stops early once the smoothed loss is four times its minimum
/// or not finite, as fastai does.
///
/// A sweep has no answer, and returns an error saying why, when every training row has the
/// same target (nothing to learn) or when the smoothed loss never falls clearly below its
/// first value (the rule would point below the rates swept).
pub fn lr_find(prepared: &Prepared, config: &TrainConfig, sweep: Sweep) -> Result<LrFind> {
    config.validate()?;
    if let Some(why) = one_target(&prepared.y_train) {
        return Err(no_answer(prepared, why));
    }
    let mut network = new_network(prepared, config, config.seed);
    let mut loss = loss_for(
        prepared.task,
        config,
        prepared.encoding.target.class_counts(),
    )?;
    let mut optimizer = config.build_optimizer()?;
    let mut batches = SweepBatches::new(prepared, config.batch_size, config.seed);

    let steps = sweep.steps.max(2);
    let ratio = (sweep.end / sweep.start) as f64;
    let (mut learning_rates, mut losses, mut smoothed) = (Vec::new(), Vec::new(), Vec::new());
    let mut smoothing = Smoothing::default();
    for step in 0..steps {
        let lr = (sweep.start as f64 * ratio.powf(step as f64 / (steps - 1) as f64)) as f32;
        optimizer.set_learning_rate(lr);
        let (xv, target) = batches.next();
        let value = train_step(&mut network, loss.as_mut(), optimizer.as_mut(), xv, target)?;
        if !value.is_finite() {
            break;
        }
        let debiased = smoothing.add(step, value);
        learning_rates.push(lr);
        losses.push(value);
        smoothed.push(debiased as f32);
        if smoothing.blown_up(debiased) {
            break;
        }
    }
    let lowest = match lowest_after_a_fall(&smoothed) {
        Some(i) => learning_rates[i],
        None => {
            let why = format!(
                "the loss never fell as the learning rate grew from {:.0e}, so there is no \
                 rate to suggest",
                sweep.start
            );
            return Err(no_answer(prepared, why));
        }
    };
    Ok(LrFind {
        learning_rates,
        losses,
        smoothed,
        suggested: lowest / 10.0,
        lowest,
    })
}

/// The step of the lowest smoothed loss, if it is at least 1% below the first: a minimum at
/// the first step (or a fall within noise) would suggest a rate below the sweep's range.
fn lowest_after_a_fall(smoothed: &[f32]) -> Option<usize> {
    let (i, &low) = smoothed
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))?;
    (i > 0 && low < 0.99 * smoothed[0]).then_some(i)
}

/// Why a sweep on these targets has no answer: every row has the same one.
fn one_target(targets: &Targets) -> Option<String> {
    let same = match targets {
        Targets::Classes(c) => c.windows(2).all(|w| w[0] == w[1]),
        Targets::Values(v) => {
            let first = v.iter().next();
            v.iter().all(|t| Some(t) == first)
        }
    };
    same.then(|| {
        "every training row has the same target, so there is nothing to learn and no \
         learning rate to suggest"
            .to_string()
    })
}

/// The error for a sweep without an answer on the file of `prepared`.
fn no_answer(prepared: &Prepared, why: String) -> Error {
    let location = Location {
        path: prepared.data.clone(),
        line: None,
        column: None,
    };
    Error::data(
        location,
        why,
        Hint::text("check that ")
            .name(Setting::Target)
            .then(" names the column to predict and that it varies; or try another ")
            .name(Setting::Optimizer)
            .then(" or ")
            .name(Setting::BatchSize),
    )
}

/// The loss's exponential moving average (β = 0.98, bias-corrected) and its lowest value.
struct Smoothing {
    average: f64,
    best: f64,
}

impl Default for Smoothing {
    fn default() -> Self {
        Self {
            average: 0.0,
            best: f64::INFINITY,
        }
    }
}

impl Smoothing {
    const BETA: f64 = 0.98;

    /// Adds the loss of step `step` (from 0); returns the bias-corrected average.
    fn add(&mut self, step: usize, value: f32) -> f64 {
        self.average = Self::BETA * self.average + (1.0 - Self::BETA) * value as f64;
        let debiased = self.average / (1.0 - Self::BETA.powi(step as i32 + 1));
        self.best = self.best.min(debiased);
        debiased
    }

    /// Whether the smoothed loss is four times its minimum: time to stop, as fastai does.
    fn blown_up(&self, debiased: f64) -> bool {
        debiased > 4.0 * self.best
    }
}

/// Mini-batches of the training split, drawn in a fresh shuffle each time the rows run out,
/// into buffers sized once.
struct SweepBatches<'a> {
    prepared: &'a Prepared,
    batch: usize,
    rng: StdRng,
    order: Vec<usize>,
    at: usize,
    xb: Array2<f32>,
    classes: Vec<usize>,
    values: Array2<f32>,
}

impl<'a> SweepBatches<'a> {
    fn new(prepared: &'a Prepared, batch_size: usize, seed: u64) -> Self {
        let x = &prepared.x_train;
        let rows = x.nrows();
        let batch = batch_size.clamp(1, rows.max(1));
        Self {
            prepared,
            batch,
            rng: StdRng::seed_from_u64(seed ^ 0x1F_F1ED),
            order: (0..rows).collect(),
            at: rows, // start with a shuffle
            xb: Array2::<f32>::zeros((batch, x.ncols())),
            classes: vec![0usize; batch],
            values: Array2::<f32>::zeros((batch, 1)),
        }
    }

    /// The next mini-batch: its inputs and targets.
    fn next(&mut self) -> (ArrayView2<'_, f32>, Target<'_>) {
        let (x, rows, batch) = (&self.prepared.x_train, self.order.len(), self.batch);
        if self.at + batch > rows {
            self.order.shuffle(&mut self.rng);
            self.at = 0;
        }
        let chunk = &self.order[self.at..(self.at + batch).min(rows)];
        self.at += batch;
        for (i, &r) in chunk.iter().enumerate() {
            self.xb.row_mut(i).assign(&x.row(r));
        }
        let n = chunk.len();
        let target = match &self.prepared.y_train {
            Targets::Classes(c) => {
                for (slot, &r) in self.classes.iter_mut().zip(chunk) {
                    *slot = c[r];
                }
                Target::Classes(&self.classes[..n])
            }
            Targets::Values(v) => {
                for (i, &r) in chunk.iter().enumerate() {
                    self.values[[i, 0]] = v[[r, 0]];
                }
                Target::Dense(self.values.slice(s![..n, ..]))
            }
        };
        (self.xb.slice(s![..n, ..]), target)
    }
}

impl LrFind {
    /// Writes loss against learning rate (log axis) to `path`, marking the suggestion.
    pub fn write_png(&self, title: &str, path: &Path) -> Result<()> {
        write_png_with(path, || self.render_png(title))
    }

    /// The plot as PNG bytes.
    pub fn render_png(&self, title: &str) -> std::result::Result<Vec<u8>, String> {
        let size = (1000, 600);
        render_png_with(size, "the learning-rate sweep", |rgb| {
            self.draw(rgb, size, title)
        })
    }

    fn draw(&self, rgb: &mut [u8], size: (u32, u32), title: &str) -> DrawResult {
        let root = canvas(rgb, size)?;
        let (first, last) = self.rate_axis();
        let (lo, hi) = self.loss_axis();
        let frame = Frame {
            title,
            title_size: 26,
            margin: 16,
            x_labels: 50,
            y_labels: 80,
            right_labels: 0,
        };
        let mut chart = frame
            .on(&root)
            .build_cartesian_2d((first..last).log_scale(), lo..hi)?;
        light_grid(
            chart
                .configure_mesh()
                .x_desc("learning rate (log scale)")
                .y_desc("training loss")
                .x_label_formatter(&|v| format!("{v:.0e}")),
        )
        .draw()?;
        let raw = RGBColor(170, 190, 215);
        let blue = RGBColor(31, 119, 180);
        let red = RGBColor(214, 39, 40);
        let clamped = |losses| clamped(&self.learning_rates, losses, (lo, hi));
        chart
            .draw_series(LineSeries::new(clamped(&self.losses), raw.stroke_width(1)))?
            .label("batch loss")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], raw.stroke_width(1)));
        chart
            .draw_series(LineSeries::new(
                clamped(&self.smoothed),
                blue.stroke_width(3),
            ))?
            .label("smoothed loss")
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], blue.stroke_width(3)));
        chart
            .draw_series([PathElement::new(
                [(self.suggested, lo), (self.suggested, hi)],
                red.stroke_width(2),
            )])?
            .label(format!(
                "suggested lr {:.1e} (lowest loss / 10)",
                self.suggested
            ))
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 24, y)], red.stroke_width(2)));
        draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)?;
        root.present()?;
        Ok(())
    }

    /// The learning-rate axis: the rates swept, at least a decade wide.
    fn rate_axis(&self) -> (f32, f32) {
        let first = self.learning_rates.first().copied().unwrap_or(1e-7);
        let last = self
            .learning_rates
            .last()
            .copied()
            .unwrap_or(10.0)
            .max(first * 10.0);
        (first, last)
    }

    /// The loss axis runs from the lowest loss seen to twice the starting loss: the
    /// blow-up at the end only needs to be seen leaving the chart.
    fn loss_axis(&self) -> (f32, f32) {
        let finite = |v: &f32| v.is_finite();
        let lowest = self
            .losses
            .iter()
            .chain(&self.smoothed)
            .copied()
            .filter(finite)
            .fold(f32::INFINITY, f32::min);
        let start = self.smoothed.first().copied().filter(finite);
        match start {
            Some(s) if lowest.is_finite() && s > lowest => {
                let top = 2.0 * s - lowest;
                (lowest - (top - lowest) * 0.05, top)
            }
            _ => (0.0, 1.0),
        }
    }
}

/// (learning rate, loss) pairs, the loss kept within `(lo, hi)`.
fn clamped<'a>(
    learning_rates: &'a [f32],
    losses: &'a [f32],
    (lo, hi): (f32, f32),
) -> impl Iterator<Item = (f32, f32)> + 'a {
    learning_rates
        .iter()
        .zip(losses)
        .map(move |(&l, &v)| (l, v.clamp(lo, hi)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{TrainRequest, prepare, train};
    use crate::train::evaluate;

    /// Validation accuracy of a network trained with `config`.
    fn accuracy(prepared: &Prepared, config: &TrainConfig) -> f32 {
        let mut model = train(prepared, config, None, &mut |_| {}).unwrap().model;
        let batch = crate::train::Batch {
            x: prepared.x_val.view(),
            y: &prepared.y_val,
        };
        evaluate(&mut model.network, batch).unwrap().1
    }

    /// Training at the suggested rate does as well as the default rate, within noise: one
    /// validation row of 30 on iris, 2% of 360 on digits.
    #[test]
    fn the_suggested_rate_trains_as_well_as_the_default() {
        for (file, noise) in [("iris.csv", 1.0 / 30.0 + 1e-4), ("digits.csv", 0.02)] {
            let path = format!("{}/data/{file}", env!("CARGO_MANIFEST_DIR"));
            let request = TrainRequest::new(path);
            let prepared = prepare(&request).unwrap();
            let found = lr_find(&prepared, &request.config, Sweep::default()).unwrap();
            assert!(
                found.suggested > 1e-5 && found.suggested < 1.0,
                "{file}: {found:?}"
            );
            assert_eq!(found.suggested, found.lowest / 10.0);
            let default = accuracy(&prepared, &request.config);
            let suggested = accuracy(
                &prepared,
                &TrainConfig {
                    learning_rate: found.suggested,
                    ..request.config.clone()
                },
            );
            assert!(
                suggested >= default - noise,
                "{file}: lr {} reached {suggested}, the default {default}",
                found.suggested
            );
        }
    }

    /// A minimum at the first step, or a fall within 1%, would put the suggestion below
    /// the rates swept: no answer.
    #[test]
    fn a_loss_that_never_falls_has_no_lowest_point() {
        assert_eq!(lowest_after_a_fall(&[1.0, 1.0, 1.0]), None);
        assert_eq!(lowest_after_a_fall(&[1.0, 1.2, 4.5]), None);
        assert_eq!(lowest_after_a_fall(&[1.0, 0.995, 1.3]), None);
        assert_eq!(lowest_after_a_fall(&[]), None);
        assert_eq!(lowest_after_a_fall(&[1.0, 0.9, 0.5, 2.0]), Some(2));
    }

    #[test]
    fn the_sweep_grows_exponentially_and_stops_when_the_loss_blows_up() {
        let path = format!("{}/data/iris.csv", env!("CARGO_MANIFEST_DIR"));
        let request = TrainRequest::new(path);
        let prepared = prepare(&request).unwrap();
        let found = lr_find(&prepared, &request.config, Sweep::default()).unwrap();
        let lrs = &found.learning_rates;
        assert_eq!(lrs[0], 1e-7);
        // Each step multiplies the rate by (10 / 1e-7)^(1/99) = 10^(8/99).
        let factor = 10f32.powf(8.0 / 99.0);
        for pair in lrs.windows(2) {
            assert!((pair[1] / pair[0] - factor).abs() < 1e-3, "{lrs:?}");
        }
        assert!(lrs.len() <= 100);
        let png = found.render_png("iris").unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
    }
}
