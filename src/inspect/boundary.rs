//! Decision boundaries of models with exactly two input columns: the predicted class (or
//! value) over a grid covering the plane, with the training points on top, as a PNG
//! picture, or as an animated GIF with one frame per few epochs of training.
//!
//! Every frame is one forward pass over the grid, so watching training this way is cheap.

use std::path::Path;

use ndarray::{Array2, ArrayView2, Axis};
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;

use crate::error::Setting;
use crate::error::{Error, Hint, Result};
use crate::fsutil::write_output;
use crate::nn::sequential::Sequential;
use crate::tabular::encoding::{Encoding, Feature, TargetEncoding, Targets, bin_input};
use crate::tabular::model::{Model, Predictions};
use crate::train::metrics::argmax;
use crate::train::plot::{DrawResult, Frame, PALETTE, canvas, encode_png, write_png_with};
use crate::train::{EpochReport, Observer};

/// Grid cells along each axis.
pub const RESOLUTION: usize = 120;

/// The two input columns of a model and the part of their plane to draw, in the columns'
/// own units.
#[derive(Debug, Clone, PartialEq)]
pub struct Plane {
    /// The columns' names: horizontal, then vertical axis.
    pub names: [String; 2],
    mean: [f64; 2],
    std: [f64; 2],
    /// Each column's quantile bin edges ([`Feature::Piecewise`]; empty for none): after its
    /// standardised value, a column gives one network input per bin.
    edges: [Vec<f64>; 2],
    /// Horizontal range.
    pub x: (f64, f64),
    /// Vertical range.
    pub y: (f64, f64),
}

impl Plane {
    /// The plane of `encoding`'s two numeric features, spanning the `points` (standardised
    /// network inputs, two columns) with a margin of 10% on every side.
    ///
    /// Refuses a model with other than exactly two input columns, or with a categorical
    /// one, naming `setting` (the picture asked for).
    pub fn for_model(
        encoding: &Encoding,
        points: ArrayView2<f32>,
        setting: Setting,
    ) -> Result<Plane> {
        let numeric: Vec<(&str, f64, f64, &[f64])> = encoding
            .features
            .iter()
            .filter_map(|f| match f {
                Feature::Numeric {
                    name, mean, std, ..
                } => Some((name.as_str(), *mean, *std, &[][..])),
                Feature::Piecewise {
                    name,
                    mean,
                    std,
                    edges,
                    ..
                } => Some((name.as_str(), *mean, *std, edges.as_slice())),
                // Robust scaling is clipped, so the plane could not be mapped back.
                Feature::Categorical { .. } | Feature::Robust { .. } | Feature::Date { .. } => None,
            })
            .collect();
        if encoding.features.len() != 2 || numeric.len() != 2 {
            let names: Vec<&str> = encoding.features.iter().map(Feature::name).collect();
            return Err(Error::config(
                setting,
                "",
                format!(
                    "a decision boundary is drawn on a plane, so the model needs exactly two \
                     numeric input columns; this one has {} ({}){}",
                    names.len(),
                    names.join(", "),
                    if numeric.len() < encoding.features.len() {
                        ", some of them categorical or robustly scaled"
                    } else {
                        ""
                    }
                ),
                boundary_hint(names.len(), numeric.len()),
            ));
        }
        let mean = [numeric[0].1, numeric[1].1];
        let std = [numeric[0].2, numeric[1].2];
        let edges = [numeric[0].3.to_vec(), numeric[1].3.to_vec()];
        // Where each column's standardised value is among the inputs.
        let at = [0, encoding.features[0].width()];
        let range = |axis: usize| {
            let column = points.index_axis(Axis(1), at[axis]);
            let (lo, hi) = column
                .iter()
                .map(|&z| z as f64 * std[axis] + mean[axis])
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                });
            if !lo.is_finite() || hi <= lo {
                let c = if lo.is_finite() { lo } else { mean[axis] };
                return (c - std[axis], c + std[axis]);
            }
            let pad = (hi - lo) * 0.1;
            (lo - pad, hi + pad)
        };
        Ok(Plane {
            names: [numeric[0].0.to_string(), numeric[1].0.to_string()],
            x: range(0),
            y: range(1),
            mean,
            std,
            edges,
        })
    }

    /// A plane in the network's own input units (no standardisation): `names` label the
    /// axes, `x` and `y` are the ranges to draw.
    pub fn raw(names: [&str; 2], x: (f64, f64), y: (f64, f64)) -> Plane {
        Plane {
            names: names.map(str::to_string),
            mean: [0.0; 2],
            std: [1.0; 2],
            edges: [Vec::new(), Vec::new()],
            x,
            y,
        }
    }

    /// The centre of grid cell `(i, j)` (column `i` from the left, row `j` from the
    /// bottom) in the columns' units.
    pub fn cell_centre(&self, i: usize, j: usize, resolution: usize) -> (f64, f64) {
        let at =
            |(lo, hi): (f64, f64), k: usize| lo + (hi - lo) * (k as f64 + 0.5) / resolution as f64;
        (at(self.x, i), at(self.y, j))
    }

    /// Where the second column's standardised value is among the network inputs.
    fn second(&self) -> usize {
        self.edges[0].len().max(1)
    }

    /// The network inputs for every cell centre, row `j·resolution + i`: each column
    /// standardised, then its bins if it has any.
    fn grid_inputs(&self, resolution: usize) -> Array2<f32> {
        let width = self.second() + self.edges[1].len().max(1);
        let mut x = Array2::zeros((resolution * resolution, width));
        for j in 0..resolution {
            for i in 0..resolution {
                let (a, b) = self.cell_centre(i, j, resolution);
                let mut row = x.row_mut(j * resolution + i);
                for (axis, value, at) in [(0, a, 0), (1, b, self.second())] {
                    row[at] = ((value - self.mean[axis]) / self.std[axis]) as f32;
                    for (t, bin) in self.edges[axis].windows(2).enumerate() {
                        row[at + 1 + t] = bin_input(value, bin[0], bin[1]) as f32;
                    }
                }
            }
        }
        x
    }
}

/// What the network predicts on every grid cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Surface {
    /// Cells along each axis.
    pub resolution: usize,
    /// Cell `(i, j)` is `values[j·resolution + i]`: a class index, or a value in the
    /// target's units.
    pub values: Vec<f32>,
}

/// One forward pass of `network` over a `resolution × resolution` grid of `plane`.
pub fn surface(
    network: &mut Sequential,
    plane: &Plane,
    target: &TargetEncoding,
    resolution: usize,
) -> Surface {
    let inputs = plane.grid_inputs(resolution);
    let mut values = Vec::with_capacity(inputs.nrows());
    for chunk in inputs.axis_chunks_iter(Axis(0), 4096) {
        let out = network.forward(chunk);
        match target {
            TargetEncoding::Classes { .. } => {
                values.extend(out.rows().into_iter().map(|r| argmax(r) as f32));
            }
            TargetEncoding::Values { mean, std, .. } => {
                values.extend(
                    out.column(0)
                        .iter()
                        .map(|&v| (v as f64 * std + mean) as f32),
                );
            }
        }
    }
    Surface { resolution, values }
}

/// What `model` predicts over a `resolution × resolution` grid of `plane`: for a k-fold
/// ensemble the average of its networks, as `mlp predict` gives (one network: [`surface`]).
pub fn model_surface(model: &mut Model, plane: &Plane, resolution: usize) -> Surface {
    let inputs = plane.grid_inputs(resolution);
    let values = match model.predict_encoded(inputs.view()) {
        Predictions::Classes { classes, .. } => classes.into_iter().map(|c| c as f32).collect(),
        Predictions::Values(v) => v.into_iter().map(|v| v as f32).collect(),
    };
    Surface { resolution, values }
}

/// A decision-boundary picture: the plane, what to colour it with, and the points.
pub struct BoundaryPlot<'a> {
    /// The plane.
    pub plane: &'a Plane,
    /// Class labels, or the target's name for values.
    pub target: &'a TargetEncoding,
    /// The training points, standardised as the network saw them.
    pub points: ArrayView2<'a, f32>,
    /// Their targets.
    pub targets: &'a Targets,
    /// The title.
    pub title: String,
    /// Which of the points had a cell filled in (drawn hollow, at the fill value); empty
    /// when none had.
    pub filled: &'a [bool],
}

fn class_colour(class: usize) -> RGBColor {
    PALETTE[class % PALETTE.len()]
}

/// `colour` blended with white: `share` of the colour.
fn tint(colour: RGBColor, share: f64) -> RGBColor {
    let mix = |c: u8| (c as f64 * share + 255.0 * (1.0 - share)).round() as u8;
    RGBColor(mix(colour.0), mix(colour.1), mix(colour.2))
}

/// A dark-blue → teal → yellow scale (close to viridis) at `t` in [0, 1].
fn scale(t: f64) -> RGBColor {
    let stops = [
        (68.0, 1.0, 84.0),
        (33.0, 145.0, 140.0),
        (253.0, 231.0, 37.0),
    ];
    let t = t.clamp(0.0, 1.0) * 2.0;
    let k = (t.floor() as usize).min(1);
    let f = t - k as f64;
    let (a, b) = (stops[k], stops[k + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

impl BoundaryPlot<'_> {
    /// The picture of `surface` as PNG bytes, `width × height`.
    pub fn render_png(
        &self,
        surface: &Surface,
        size: (u32, u32),
    ) -> std::result::Result<Vec<u8>, String> {
        let rgb = self.render_rgb(surface, size)?;
        encode_png(&rgb, size.0, size.1)
    }

    /// Writes the picture of `surface` to `path` (PNG, 900 × 760).
    pub fn write_png(&self, surface: &Surface, path: &Path) -> Result<()> {
        write_png_with(path, || self.render_png(surface, (900, 760)))
    }

    /// Writes an animated GIF (560 × 480) with one frame per `(title, surface)`.
    pub fn write_gif(&self, frames: &[(String, Surface)], path: &Path) -> Result<()> {
        let size = (560u32, 480u32);
        let failed = |message: String| Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(message),
            hint: "drawing the animation failed (a bug worth reporting)".into(),
        };
        let mut bytes = Vec::new();
        {
            let mut encoder = gif::Encoder::new(&mut bytes, size.0 as u16, size.1 as u16, &[])
                .map_err(|e| failed(e.to_string()))?;
            encoder
                .set_repeat(gif::Repeat::Infinite)
                .map_err(|e| failed(e.to_string()))?;
            for (k, (title, surface)) in frames.iter().enumerate() {
                let plot = BoundaryPlot {
                    title: title.clone(),
                    ..*self
                };
                let rgb = plot.render_rgb(surface, size).map_err(failed)?;
                let mut frame = gif::Frame::from_rgb_speed(size.0 as u16, size.1 as u16, &rgb, 10);
                // 0.15 s per frame; the last one stays for 2 s before the loop restarts.
                frame.delay = if k + 1 == frames.len() { 200 } else { 15 };
                encoder
                    .write_frame(&frame)
                    .map_err(|e| failed(e.to_string()))?;
            }
        }
        write_output(path, &bytes)
    }

    fn render_rgb(
        &self,
        surface: &Surface,
        size: (u32, u32),
    ) -> std::result::Result<Vec<u8>, String> {
        let mut rgb = vec![255u8; (size.0 * size.1 * 3) as usize];
        self.draw(&mut rgb, size, surface)
            .map_err(|e| format!("drawing the decision boundary: {e}"))?;
        Ok(rgb)
    }

    fn draw(&self, rgb: &mut [u8], size: (u32, u32), surface: &Surface) -> DrawResult {
        let root = canvas(rgb, size)?;
        let plane = self.plane;
        let small = size.0 < 700;
        let frame = Frame {
            title: &self.title,
            title_size: font(small, 26).1,
            margin: 14,
            x_labels: if small { 40 } else { 50 },
            y_labels: if small { 62 } else { 82 },
            right_labels: 0,
        };
        let mut chart = frame
            .on(&root)
            .build_cartesian_2d(Axis1::new(plane.x), Axis1::new(plane.y))?;

        // Value range for a regression colour scale: the grid and the points together.
        let values: Vec<f64> = match self.targets {
            Targets::Values(v) => v.iter().map(|&z| self.target_value(z)).collect(),
            Targets::Classes(_) => Vec::new(),
        };
        let range = value_range(surface, &values);
        self.draw_cells(&mut chart, surface, range)?;
        chart
            .configure_mesh()
            .disable_mesh()
            .x_desc(&plane.names[0])
            .y_desc(&plane.names[1])
            .x_label_formatter(&|v| axis_label(*v, plane.x))
            .y_label_formatter(&|v| axis_label(*v, plane.y))
            .axis_desc_style(font(small, 20))
            .label_style(font(small, 16))
            .draw()?;

        // A handful of points (XOR's four) are drawn large.
        let radius = match (self.points.nrows(), small) {
            (0..=20, _) => 9,
            (_, true) => 4,
            _ => 5,
        };
        match (self.targets, self.target) {
            (Targets::Classes(classes), TargetEncoding::Classes { labels, .. }) => {
                self.draw_classes(&mut chart, classes, labels, radius, small)?;
            }
            (Targets::Values(_), TargetEncoding::Values { .. }) => {
                chart.draw_series(
                    values
                        .iter()
                        .enumerate()
                        .map(|(r, &v)| self.marker(r, radius, scale(unit(v, range)))),
                )?;
                let key = format!(
                    "{}: {} (dark) to {} (yellow)",
                    self.target.name(),
                    short(range.0),
                    short(range.1)
                );
                root.draw(&Text::new(key, (20, size.1 as i32 - 22), font(small, 15)))?;
            }
            _ => return Err("the targets do not match the model's task".into()),
        }
        if self.filled.contains(&true) {
            let key = "hollow: a cell was missing, drawn at its fill value";
            let x = size.0 as i32 - if small { 250 } else { 325 };
            root.draw(&Text::new(key, (x, size.1 as i32 - 22), font(small, 15)))?;
        }
        root.present()?;
        Ok(())
    }

    /// The grid's cells, tinted by class or by value (on the colour scale over `range`).
    fn draw_cells(
        &self,
        chart: &mut PlaneChart<'_, '_>,
        surface: &Surface,
        range: (f64, f64),
    ) -> DrawResult {
        let plane = self.plane;
        let cell_colour = |v: f32| match self.target {
            TargetEncoding::Classes { .. } => tint(class_colour(v as usize), 0.3),
            TargetEncoding::Values { .. } => tint(scale(unit(v as f64, range)), 0.55),
        };
        let n = surface.resolution;
        let (w, h) = (
            (plane.x.1 - plane.x.0) / n as f64,
            (plane.y.1 - plane.y.0) / n as f64,
        );
        chart.draw_series((0..n * n).map(|cell| {
            let (i, j) = (cell % n, cell / n);
            let (x0, y0) = (plane.x.0 + w * i as f64, plane.y.0 + h * j as f64);
            Rectangle::new(
                [(x0, y0), (x0 + w, y0 + h)],
                cell_colour(surface.values[cell]).filled(),
            )
        }))?;
        Ok(())
    }

    /// The training points in their classes' colours, with a legend of the labels.
    fn draw_classes<'a, 'b: 'a>(
        &self,
        chart: &mut PlaneChart<'a, 'b>,
        classes: &[usize],
        labels: &[String],
        radius: i32,
        small: bool,
    ) -> DrawResult {
        for (class, label) in labels.iter().enumerate() {
            let colour = class_colour(class);
            let rows = classes
                .iter()
                .enumerate()
                .filter(move |&(_, &c)| c == class)
                .map(|(r, _)| r);
            chart
                .draw_series(rows.map(|r| self.marker(r, radius, colour)))?
                .label(label.as_str())
                .legend(move |(x, y)| Circle::new((x + 8, y), 6, colour.filled()));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(font(small, 16))
            .background_style(WHITE.mix(0.85))
            .border_style(RGBColor(150, 150, 150))
            .draw()?;
        Ok(())
    }

    /// The marker of training point `row`: a disc of `colour` ringed in black, or for a
    /// point with a filled-in cell a white disc ringed in `colour` (hollow: its place is
    /// the fill value, not data).
    fn marker<'b>(&self, row: usize, radius: i32, colour: RGBColor) -> PointMarker<'b> {
        let (inside, ring) = if self.filled.get(row).copied().unwrap_or(false) {
            (WHITE.filled(), colour.stroke_width(2))
        } else {
            (colour.filled(), BLACK.stroke_width(1))
        };
        EmptyElement::at(self.point(row))
            + Circle::new((0, 0), radius, inside)
            + Circle::new((0, 0), radius, ring)
    }

    /// Training point `row` in the columns' own units.
    fn point(&self, row: usize) -> (f64, f64) {
        let plane = self.plane;
        let z = self.points.row(row);
        (
            z[0] as f64 * plane.std[0] + plane.mean[0],
            z[plane.second()] as f64 * plane.std[1] + plane.mean[1],
        )
    }

    /// A standardised target value in the target's units.
    fn target_value(&self, z: f32) -> f64 {
        match self.target {
            TargetEncoding::Values { mean, std, .. } => z as f64 * std + mean,
            TargetEncoding::Classes { .. } => z as f64,
        }
    }
}

/// The boundary chart: the plane in the columns' own units.
type PlaneChart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<Axis1, Axis1>>;

/// A training point's marker: two circles at the point.
type PointMarker<'b> =
    plotters::element::ComposedElement<(f64, f64), BitMapBackend<'b>, Ring, Ring>;

/// A circle around a point.
type Ring = Circle<(i32, i32), i32>;

/// One axis of the boundary chart: plotters' f64 axis with the ticks of [`ticks`].
struct Axis1 {
    inner: RangedCoordf64,
    ticks: Vec<f64>,
}

impl Axis1 {
    fn new((lo, hi): (f64, f64)) -> Self {
        Self {
            inner: (lo..hi).into(),
            ticks: ticks((lo, hi)),
        }
    }
}

impl Ranged for Axis1 {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        self.inner.map(value, limit)
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.inner.range()
    }
}

/// About six round ticks (steps of 1, 2 or 5 times a power of ten) across `(lo, hi)`, at
/// any scale: plotters' own give a single tick on an axis narrower than f64's epsilon
/// (values near 1e-30).
fn ticks((lo, hi): (f64, f64)) -> Vec<f64> {
    let raw = (hi - lo) / 6.0;
    if !(raw > 0.0 && raw.is_finite()) {
        return vec![lo];
    }
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .map(|m| m * power)
        .into_iter()
        .find(|&s| s >= raw)
        .unwrap_or(10.0 * power);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    (first..=last).map(|k| k as f64 * step).collect()
}

/// The text style of size `big`, three quarters of it on a small picture.
fn font(small: bool, big: u32) -> (&'static str, u32) {
    ("sans-serif", if small { big * 3 / 4 } else { big })
}

/// The finite range of the grid's and the points' values together.
fn value_range(surface: &Surface, values: &[f64]) -> (f64, f64) {
    surface
        .values
        .iter()
        .map(|&v| v as f64)
        .chain(values.iter().copied())
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

/// `v` on [0, 1] across `(lo, hi)`; the middle when the range is empty.
fn unit(v: f64, (lo, hi): (f64, f64)) -> f64 {
    if hi > lo { (v - lo) / (hi - lo) } else { 0.5 }
}

/// The label of `v` on an axis spanning `(lo, hi)`: as a plain number (to 4 decimals,
/// without `-0.0`) for axes of ordinary size; in scientific notation for an axis beyond
/// 1e5 or within 1e-3 of zero, with just the digits that tell ticks a tenth of the axis
/// apart, so that labels near 1e30 or 1e-30 stay a few characters wide.
fn axis_label(v: f64, (lo, hi): (f64, f64)) -> String {
    let size = lo.abs().max(hi.abs());
    let step = (hi - lo) / 10.0;
    if (1e-3..1e5).contains(&size) || !(step > 0.0 && size.is_finite()) {
        let v = if v.abs() < 1e-9 { 0.0 } else { v };
        return format!("{}", (v * 1e4).round() / 1e4);
    }
    if v.abs() < step * 1e-6 {
        return "0".into();
    }
    let digits = (size.log10().floor() - step.log10().floor()).clamp(0.0, 9.0) as usize;
    format!("{v:.digits$e}")
}

fn short(v: f64) -> String {
    if v != 0.0 && !(1e-3..1e5).contains(&v.abs()) {
        format!("{v:.2e}")
    } else {
        format!("{}", (v * 1000.0).round() / 1000.0)
    }
}

/// An [`Observer`] that takes a picture of the surface every `every` epochs (and at the
/// first), for [`BoundaryPlot::write_gif`].
pub struct BoundaryRecorder<'a> {
    plane: &'a Plane,
    target: &'a TargetEncoding,
    every: usize,
    /// `(title, surface)` per recorded epoch.
    pub frames: Vec<(String, Surface)>,
    /// The epoch of each of `frames`.
    epochs: Vec<usize>,
}

impl<'a> BoundaryRecorder<'a> {
    /// Records about `frames` pictures over `epochs` epochs of training.
    pub fn new(plane: &'a Plane, target: &'a TargetEncoding, epochs: usize, frames: usize) -> Self {
        Self {
            plane,
            target,
            every: epochs.div_ceil(frames.max(1)).max(1),
            frames: Vec::new(),
            epochs: Vec::new(),
        }
    }

    /// Makes the animation end on what was saved: drops the frames after `best_epoch` (the
    /// epochs that training went on to without keeping) and adds `saved`, the saved
    /// model's surface (for an ensemble the average of its networks, as the still picture
    /// shows), titled `title`.
    pub fn end_on_saved(&mut self, best_epoch: usize, saved: Surface, title: String) {
        let kept = self.epochs.iter().take_while(|&&e| e <= best_epoch).count();
        self.frames.truncate(kept);
        self.epochs.truncate(kept);
        self.frames.push((title, saved));
        self.epochs.push(best_epoch);
    }
}

impl Observer for BoundaryRecorder<'_> {
    fn after_epoch(&mut self, report: &EpochReport, model: &mut Sequential) {
        if report.epoch == 1 || report.epoch.is_multiple_of(self.every) {
            // Half the still picture's resolution: frames are small and there are many.
            let s = surface(model, self.plane, self.target, RESOLUTION / 2);
            self.frames.push((format!("epoch {}", report.epoch), s));
            self.epochs.push(report.epoch);
        }
    }
}

/// What to do about a model that has not exactly two numeric input columns (`columns`
/// of them, `numeric` numeric and not robustly scaled).
fn boundary_hint(columns: usize, numeric: usize) -> Hint {
    if numeric < 2 {
        let why = if columns < 2 {
            "train on a file with two numeric feature columns"
        } else {
            "retrain on two numeric columns, leaving the categorical ones out with "
        };
        let hint = Hint::text(why);
        if columns < 2 {
            return hint.then(" (besides the target)");
        }
        return hint
            .name(Setting::Ignore)
            .then(", and without robust ")
            .name(Setting::Scaling);
    }
    Hint::text("retrain with the other columns left out with ").name(Setting::Ignore)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{TrainRequest, prepare_bytes, train};
    use crate::train::TrainConfig;
    use ndarray_rand::rand::{Rng, SeedableRng, rngs::StdRng};

    /// 300 points in [0, 10]²: class "above" when y > x + 1, "below" otherwise; the line
    /// y = x + 1 is the known boundary.
    fn separable() -> String {
        let mut rng = StdRng::seed_from_u64(5);
        let mut csv = String::from("x,y,side\n");
        let mut n = 0;
        while n < 300 {
            let (x, y): (f32, f32) = (rng.random_range(0.0..10.0), rng.random_range(0.0..10.0));
            // A clear margin around the line, so the line is the only sensible boundary.
            if (y - x - 1.0).abs() < 0.5 {
                continue;
            }
            let side = if y > x + 1.0 { "above" } else { "below" };
            csv.push_str(&format!("{x:.3},{y:.3},{side}\n"));
            n += 1;
        }
        csv
    }

    #[test]
    fn the_grid_classes_lie_on_either_side_of_the_known_line() {
        let request = TrainRequest {
            config: TrainConfig {
                hidden: vec![16],
                epochs: 100,
                val_split: 0.0,
                ..TrainConfig::default()
            },
            ..TrainRequest::new("separable.csv")
        };
        let prepared = prepare_bytes(&request, separable().as_bytes()).unwrap();
        let mut model = train(&prepared, &request.config, None, &mut |_| {})
            .unwrap()
            .model;
        let encoding = &model.file.encoding.clone();
        let plane = Plane::for_model(encoding, prepared.x_train.view(), Setting::Boundary).unwrap();
        assert!(plane.x.0 < 0.0 && plane.x.1 > 10.0, "{plane:?}");
        let TargetEncoding::Classes { labels, .. } = &encoding.target else {
            panic!("classes");
        };
        let above = labels.iter().position(|l| l == "above").unwrap() as f32;
        let s = model_surface(&mut model, &plane, 60);
        let (mut checked, mut wrong) = (0, 0);
        for j in 0..60 {
            for i in 0..60 {
                let (x, y) = plane.cell_centre(i, j, 60);
                // Inside the data's square and away from the line.
                if !(0.0..=10.0).contains(&x) || !(0.0..=10.0).contains(&y) {
                    continue;
                }
                if (y - x - 1.0).abs() < 1.0 {
                    continue;
                }
                checked += 1;
                let want = y > x + 1.0;
                wrong += usize::from((s.values[j * 60 + i] == above) != want);
            }
        }
        assert!(checked > 1500, "{checked}");
        assert!(
            wrong * 100 <= checked,
            "{wrong} of {checked} cells on the wrong side"
        );

        // The picture: both class tints cover a good share of it.
        let plot = BoundaryPlot {
            plane: &plane,
            target: &encoding.target,
            points: prepared.x_train.view(),
            targets: &prepared.y_train,
            title: "separable".into(),
            filled: &[],
        };
        let png = plot.render_png(&s, (600, 500)).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        reader.next_frame(&mut buf).unwrap();
        for class in 0..2 {
            let t = tint(class_colour(class), 0.3);
            let count = buf.chunks(3).filter(|p| p == &[t.0, t.1, t.2]).count();
            assert!(count > 600 * 500 / 8, "class {class}: {count} pixels");
        }
    }

    #[test]
    fn points_with_a_filled_cell_are_drawn_hollow() {
        // 40 rows; rows 3, 13, 23, 33 lack `x` and row 7 lacks `y`, filled by imputation.
        let mut csv = String::from("x,y,side\n");
        for r in 0..40 {
            let (x, y) = (r as f32 / 4.0, (r * 7 % 40) as f32 / 4.0);
            let x = if r % 10 == 3 {
                String::new()
            } else {
                x.to_string()
            };
            let y = if r == 7 { String::new() } else { y.to_string() };
            csv.push_str(&format!("{x},{y},{}\n", if r % 2 == 0 { "a" } else { "b" }));
        }
        let request = TrainRequest {
            config: TrainConfig {
                val_split: 0.0,
                ..TrainConfig::default()
            },
            ..TrainRequest::new("holes.csv")
        };
        let prepared = prepare_bytes(&request, csv.as_bytes()).unwrap();
        let filled: Vec<bool> = prepared.filled_rows.clone();
        assert_eq!(filled.len(), 40);
        assert_eq!(filled.iter().filter(|&&f| f).count(), 5);
        let encoding = &prepared.encoding;
        let plane = Plane::for_model(encoding, prepared.x_train.view(), Setting::Boundary).unwrap();
        let grid = Surface {
            resolution: 4,
            values: vec![0.0; 16],
        };
        // White pixels (the margins, and the inside of hollow markers).
        let white = |filled: &[bool]| {
            let plot = BoundaryPlot {
                plane: &plane,
                target: &encoding.target,
                points: prepared.x_train.view(),
                targets: &prepared.y_train,
                title: "holes".into(),
                filled,
            };
            let png = plot.render_png(&grid, (600, 500)).unwrap();
            let mut reader = png::Decoder::new(std::io::Cursor::new(png))
                .read_info()
                .unwrap();
            let mut buf = vec![0; reader.output_buffer_size()];
            reader.next_frame(&mut buf).unwrap();
            buf.chunks(3).filter(|p| p == &[255, 255, 255]).count()
        };
        let (solid, five, all) = (white(&[]), white(&filled), white(&[true; 40]));
        // Each hollow marker (radius 4 on a picture this small) is white inside; the key
        // under the plane (drawn on white) comes with the first.
        assert!(all >= five + 35 * 10, "{all} {five}");
        assert!(five < solid, "{five} {solid}");
    }

    #[test]
    fn axis_labels_stay_short_at_any_scale() {
        let big = (0.8e30, 3.2e30);
        let labels: Vec<String> = [1e30, 1.5e30, 3e30].map(|v| axis_label(v, big)).into();
        assert_eq!(labels, ["1.0e30", "1.5e30", "3.0e30"]);
        let tiny = (0.8e-30, 3.2e-30);
        assert_eq!(axis_label(2.25e-30, tiny), "2.2e-30");
        // Ticks close together far from zero keep the digits that tell them apart.
        assert_eq!(axis_label(1.0000002e9, (1e9, 1.000001e9)), "1.0000002e9");
        assert_eq!(axis_label(0.0, (-2e30, 2e30)), "0");
        // Ordinary axes read as before.
        assert_eq!(axis_label(2.5, (0.0, 10.0)), "2.5");
        assert_eq!(axis_label(-1e-12, (-1.0, 1.0)), "0");
        // Ticks exist at every scale (plotters gave one on an axis 2.4e-30 wide).
        assert_eq!(ticks((0.0, 10.0)), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]);
        let labels: Vec<String> = (ticks(tiny).iter()).map(|&v| axis_label(v, tiny)).collect();
        assert_eq!(
            labels,
            ["1.0e-30", "1.5e-30", "2.0e-30", "2.5e-30", "3.0e-30"]
        );
    }

    #[test]
    fn more_than_two_columns_is_refused_with_the_flag() {
        let csv = "a,b,c,k\n1,2,3,x\n2,3,1,y\n3,1,2,x\n4,4,4,y\n5,5,1,x\n";
        let request = TrainRequest {
            config: TrainConfig {
                val_split: 0.0,
                folds: 0,
                ..TrainConfig::default()
            },
            ..TrainRequest::new("three.csv")
        };
        let prepared = prepare_bytes(&request, csv.as_bytes()).unwrap();
        let e = Plane::for_model(
            &prepared.encoding,
            prepared.x_train.view(),
            Setting::Boundary,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with(
                "invalid `boundary`: a decision boundary is drawn on a plane, so the \
                           model needs exactly two numeric input columns; this one has 3 (a, b, c)"
            ),
            "{e}"
        );
    }
}
