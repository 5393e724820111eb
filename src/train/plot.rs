//! Loss curves as PNG pictures.
//!
//! Text is drawn with the DejaVu Sans font compiled into the library (`assets/`), so
//! plotting works on machines without system fonts or fontconfig.

use std::path::Path;
use std::sync::Once;

use plotters::chart::{DualCoordChartContext, MeshStyle};
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::coord::types::RangedCoordf32;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::{Error, Result};
use crate::fsutil::write_output;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const WIDTH: u32 = 1000;
const HEIGHT: u32 = 600;
const MAX_POINTS: usize = 300;
const TRAIN_COLOR: RGBColor = RGBColor(31, 119, 180);
const VALIDATION_COLOR: RGBColor = RGBColor(255, 127, 14);
const METRIC_COLOR: RGBColor = RGBColor(44, 160, 44);
const BEST_COLOR: RGBColor = RGBColor(214, 39, 40);

/// Ten distinguishable colours (matplotlib's tab10).
pub(crate) const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// Registers the bundled font as `sans-serif` (once per process).
fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        for style in [FontStyle::Normal, FontStyle::Bold] {
            // The font is compiled in and known to parse; failure would be a build defect.
            if plotters::style::register_font("sans-serif", style, FONT).is_err() {
                panic!("the bundled DejaVuSans.ttf did not load");
            }
        }
    });
}

/// The drawing area of an RGB picture.
pub(crate) type Canvas<'a> = DrawingArea<BitMapBackend<'a>, Shift>;

/// What drawing a chart can fail with.
pub(crate) type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// A white `size` canvas on the RGB buffer `rgb`, with the bundled font registered.
pub(crate) fn canvas(
    rgb: &mut [u8],
    size: (u32, u32),
) -> std::result::Result<Canvas<'_>, Box<dyn std::error::Error>> {
    register_font();
    let root = BitMapBackend::with_buffer(rgb, size).into_drawing_area();
    root.fill(&WHITE)?;
    Ok(root)
}

/// What every chart here sets before its axes: the title and its font size, the margin
/// around the chart, and the room for the axes' labels below, left and right (pixels).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Frame<'t> {
    pub title: &'t str,
    pub title_size: u32,
    pub margin: u32,
    pub x_labels: u32,
    pub y_labels: u32,
    pub right_labels: u32,
}

impl Frame<'_> {
    /// A chart builder on `root` in this frame; the caller gives it its axes.
    pub(crate) fn on<'a, 'b>(
        &self,
        root: &'a Canvas<'b>,
    ) -> ChartBuilder<'a, 'static, BitMapBackend<'b>> {
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(self.title, ("sans-serif", self.title_size))
            .margin(self.margin)
            .x_label_area_size(self.x_labels)
            .y_label_area_size(self.y_labels)
            .right_y_label_area_size(self.right_labels);
        builder
    }
}

/// The light grid and axis text of the line charts (loss, learning rate, gradient norms).
pub(crate) fn light_grid<'m, 'a, 'b, 'c, X: Ranged, Y: Ranged>(
    mesh: &'m mut MeshStyle<'a, 'b, X, Y, BitMapBackend<'c>>,
) -> &'m mut MeshStyle<'a, 'b, X, Y, BitMapBackend<'c>> {
    mesh.axis_desc_style(("sans-serif", 20))
        .label_style(("sans-serif", 16))
        .light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(200, 200, 200))
}

/// The legend of the line charts, at `position`.
pub(crate) fn draw_legend<'a, 'b: 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, BitMapBackend<'b>, CT>,
    position: SeriesLabelPosition,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(position)
        .label_font(("sans-serif", 18))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()?;
    Ok(())
}

/// What to draw: a training loss per epoch, optionally a validation loss, the best epoch and
/// a metric in [0, 1] (such as validation accuracy) on a second axis.
///
/// ```no_run
/// use mlp::train::plot::LossCurve;
///
/// let history = [0.9, 0.5, 0.2, 0.1];
/// LossCurve::new("XOR, 2-4-1 sigmoid", &history).write_png("loss.png".as_ref()).unwrap();
/// ```
#[derive(Debug, Clone)]
pub struct LossCurve<'a> {
    title: String,
    x_label: String,
    train_label: String,
    train: &'a [f32],
    validation: Option<&'a [f32]>,
    best_epoch: Option<usize>,
    metric: Option<(String, &'a [f32])>,
}

impl<'a> LossCurve<'a> {
    /// A curve of `train` (one loss per epoch; epoch 1 first) under `title`.
    pub fn new(title: impl Into<String>, train: &'a [f32]) -> Self {
        Self {
            title: title.into(),
            x_label: "epoch".into(),
            train_label: "training loss".into(),
            train,
            validation: None,
            best_epoch: None,
            metric: None,
        }
    }

    /// Names the x axis (default `epoch`).
    pub fn x_label(mut self, label: impl Into<String>) -> Self {
        self.x_label = label.into();
        self
    }

    /// Names the training curve in the legend (default `training loss`).
    pub fn train_label(mut self, label: impl Into<String>) -> Self {
        self.train_label = label.into();
        self
    }

    /// Adds a validation loss per epoch.
    pub fn validation(mut self, validation: &'a [f32]) -> Self {
        self.validation = Some(validation);
        self
    }

    /// Marks the best epoch (1-based).
    pub fn best_epoch(mut self, epoch: usize) -> Self {
        self.best_epoch = Some(epoch);
        self
    }

    /// Adds a metric in [0, 1] per epoch on a second y axis, such as validation accuracy.
    pub fn metric(mut self, name: impl Into<String>, values: &'a [f32]) -> Self {
        self.metric = Some((name.into(), values));
        self
    }

    /// Renders the picture and writes it to `path` atomically.
    pub fn write_png(&self, path: &Path) -> Result<()> {
        let png = self.render_png().map_err(|message| Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(message),
            hint: "drawing the picture failed (a bug worth reporting); the model itself was \
                   written"
                .into(),
        })?;
        write_output(path, &png)
    }

    /// Renders the picture as PNG bytes.
    pub fn render_png(&self) -> std::result::Result<Vec<u8>, String> {
        render_png_with((WIDTH, HEIGHT), "the loss curve", |rgb| self.draw(rgb))
    }

    fn draw(&self, rgb: &mut [u8]) -> DrawResult {
        let root = canvas(rgb, (WIDTH, HEIGHT))?;

        let finite = self
            .train
            .iter()
            .chain(self.validation.unwrap_or(&[]))
            .copied()
            .filter(|v| v.is_finite());
        let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let epochs = self
            .train
            .len()
            .max(self.validation.map_or(0, |v| v.len()))
            .max(1);
        if !lo.is_finite() {
            // Nothing finite to draw: say so on the picture instead of failing.
            root.titled(&self.title, ("sans-serif", 28))?
                .draw(&Text::new(
                    "no finite loss values to plot",
                    (40, 60),
                    ("sans-serif", 22),
                ))?;
            root.present()?;
            return Ok(());
        }
        // Margins are computed in f64 and kept within f32: an axis ending at infinity
        // (a loss near f32::MAX times 1.5) would never finish drawing.
        let within = |v: f64| v.clamp(-f32::MAX as f64, f32::MAX as f64) as f32;
        let (lo64, hi64) = (lo as f64, hi as f64);
        // A log axis when the loss spans two decades or more (and is positive).
        if lo > 0.0 && hi64 / lo64 >= 100.0 {
            let y = within(lo64 / 1.5)..within(hi64 * 1.5);
            self.draw_on(&root, epochs, y.log_scale(), true)?;
        } else {
            let pad = ((hi64 - lo64) * 0.05).max(hi64.abs() * 0.05).max(1e-6);
            let bottom = if lo >= 0.0 {
                (lo64 - pad).max(0.0)
            } else {
                lo64 - pad
            };
            let (bottom, top) = (within(bottom), within(hi64 + pad));
            // A flat line at ±f32::MAX still needs an axis of non-zero height.
            let (bottom, top) = if top > bottom {
                (bottom, top)
            } else {
                (bottom - bottom.abs() * 0.1, top)
            };
            self.draw_on(&root, epochs, bottom..top, false)?;
        }
        root.present()?;
        Ok(())
    }

    fn draw_on<Y>(&self, root: &Canvas<'_>, epochs: usize, y: Y, log: bool) -> DrawResult
    where
        Y: AsRangedCoord<Value = f32>,
        Y::CoordDescType: ValueFormatter<f32>,
    {
        let x_max = epochs as f32 + if epochs == 1 { 1.0 } else { 0.0 };
        let frame = Frame {
            title: &self.title,
            title_size: 28,
            margin: 16,
            x_labels: 50,
            y_labels: 80,
            right_labels: if self.metric.is_some() { 70 } else { 0 },
        };
        let mut chart = frame
            .on(root)
            .build_cartesian_2d(1f32..x_max, y)?
            .set_secondary_coord(1f32..x_max, 0f32..1.05f32);

        let y_desc = if log { "loss (log scale)" } else { "loss" };
        light_grid(
            chart
                .configure_mesh()
                .x_desc(&self.x_label)
                .y_desc(y_desc)
                .x_label_formatter(&|v| format!("{}", v.round() as i64)),
        )
        .draw()?;

        // At most about one point per pixel column: thousands of epochs drawn with a thick
        // stroke would otherwise turn the line into a saw.
        let stride = epochs.div_ceil(MAX_POINTS).max(1);
        self.draw_losses(&mut chart, stride)?;
        self.draw_best(&mut chart, epochs)?;
        if let Some((name, values)) = &self.metric {
            draw_metric(&mut chart, name, values, stride)?;
        }
        // Losses fall from the top left and accuracy climbs to the top right: with a
        // metric, the free space is in the middle.
        let legend = if self.metric.is_some() {
            SeriesLabelPosition::MiddleRight
        } else {
            SeriesLabelPosition::UpperRight
        };
        draw_legend(&mut chart, legend)
    }

    /// The training and validation losses.
    fn draw_losses<Y: Ranged<ValueType = f32>>(
        &self,
        chart: &mut LossChart<'_, '_, Y>,
        stride: usize,
    ) -> DrawResult {
        chart
            .draw_series(LineSeries::new(
                thinned(self.train, stride),
                TRAIN_COLOR.stroke_width(2),
            ))?
            .label(self.train_label.as_str())
            .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], TRAIN_COLOR.stroke_width(2)));
        if let Some(validation) = self.validation {
            chart
                .draw_series(LineSeries::new(
                    thinned(validation, stride),
                    VALIDATION_COLOR.stroke_width(2),
                ))?
                .label("validation loss")
                .legend(|(x, y)| {
                    PathElement::new([(x, y), (x + 24, y)], VALIDATION_COLOR.stroke_width(2))
                });
        }
        Ok(())
    }

    /// A dot on the best epoch's loss (validation if there is one), if it is on the chart.
    fn draw_best<Y: Ranged<ValueType = f32>>(
        &self,
        chart: &mut LossChart<'_, '_, Y>,
        epochs: usize,
    ) -> DrawResult {
        if let Some(best) = self.best_epoch.filter(|&b| b >= 1 && b <= epochs) {
            let curve = self.validation.unwrap_or(self.train);
            if let Some(&v) = curve.get(best - 1).filter(|v| v.is_finite()) {
                chart
                    .draw_series([Circle::new((best as f32, v), 7, BEST_COLOR.filled())])?
                    .label(format!("best epoch ({best})"))
                    .legend(|(x, y)| Circle::new((x + 12, y), 6, BEST_COLOR.filled()));
            }
        }
        Ok(())
    }
}

/// The loss chart: epochs across, the loss up the left and a metric in [0, 1] up the right.
type LossChart<'a, 'b, Y> = DualCoordChartContext<
    'a,
    BitMapBackend<'b>,
    Cartesian2d<RangedCoordf32, Y>,
    Cartesian2d<RangedCoordf32, RangedCoordf32>,
>;

/// The metric `name` on the right axis.
fn draw_metric<Y: Ranged<ValueType = f32>>(
    chart: &mut LossChart<'_, '_, Y>,
    name: &str,
    values: &[f32],
    stride: usize,
) -> DrawResult {
    chart
        .configure_secondary_axes()
        .y_desc(name)
        .axis_desc_style(("sans-serif", 20))
        .label_style(("sans-serif", 16))
        .draw()?;
    // Kept on its axis: a point far outside would overflow the pixel arithmetic.
    chart
        .draw_secondary_series(LineSeries::new(
            thinned(values, stride).map(|(x, v)| (x, v.clamp(0.0, 1.05))),
            METRIC_COLOR.stroke_width(2),
        ))?
        .label(name)
        .legend(|(x, y)| PathElement::new([(x, y), (x + 24, y)], METRIC_COLOR.stroke_width(2)));
    Ok(())
}

/// The finite `values` as (epoch, value), every `stride`-th and the last.
fn thinned(values: &[f32], stride: usize) -> impl Iterator<Item = (f32, f32)> + '_ {
    let last = values.len().saturating_sub(1);
    values
        .iter()
        .enumerate()
        .filter(move |&(i, v)| v.is_finite() && (i % stride == 0 || i == last))
        .map(|(i, &v)| ((i + 1) as f32, v))
}

/// PNG bytes of a `width × height` picture that `draw` paints on an RGB buffer; `what` names
/// the picture in the message if drawing fails.
pub(crate) fn render_png_with(
    (width, height): (u32, u32),
    what: &str,
    draw: impl FnOnce(&mut [u8]) -> std::result::Result<(), Box<dyn std::error::Error>>,
) -> std::result::Result<Vec<u8>, String> {
    let mut rgb = vec![255u8; (width * height * 3) as usize];
    draw(&mut rgb).map_err(|e| format!("drawing {what}: {e}"))?;
    encode_png(&rgb, width, height)
}

/// PNG bytes of an 8-bit RGB picture `width × height`.
pub(crate) fn encode_png(
    rgb: &[u8],
    width: u32,
    height: u32,
) -> std::result::Result<Vec<u8>, String> {
    let mut png = Vec::new();
    let mut encoder = png::Encoder::new(&mut png, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    // The fast deflate (fdeflate) with a per-row filter choice: a 1000 × 600 chart of
    // about 140 KB in well under a millisecond. The best level made it 56 KB but cost 13%
    // of a default fit's CPU on a data set of 1,470 rows (BENCHMARKS.md, "Fit cost").
    encoder.set_compression(png::Compression::Fast);
    encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
    let mut writer = encoder.write_header().map_err(|e| e.to_string())?;
    writer.write_image_data(rgb).map_err(|e| e.to_string())?;
    writer.finish().map_err(|e| e.to_string())?;
    Ok(png)
}

/// Writes a picture drawn by `render` to `path` (atomically for a regular file), turning a drawing failure into
/// an error on that path.
pub(crate) fn write_png_with(
    path: &Path,
    render: impl FnOnce() -> std::result::Result<Vec<u8>, String>,
) -> Result<()> {
    let png = render().map_err(|message| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(message),
        hint: "drawing the picture failed (a bug worth reporting)".into(),
    })?;
    write_output(path, &png)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extreme_and_non_finite_losses_still_draw() {
        let curves: [&[f32]; 6] = [
            &[1.0, f32::MAX],
            &[f32::MIN_POSITIVE, 3e38],
            &[0.0, f32::MAX, 1.0],
            &[f32::NAN, f32::INFINITY],
            &[2.5],
            &[],
        ];
        // A metric far outside [0, 1] is kept on its axis.
        let wild = [1e37, -1e30, 0.5];
        for train in curves {
            let png = LossCurve::new("extreme", train)
                .validation(train)
                .best_epoch(1)
                .metric("accuracy", &wild)
                .render_png()
                .unwrap_or_else(|e| panic!("{train:?}: {e}"));
            assert_eq!(&png[..4], b"\x89PNG", "{train:?}");
        }
    }
}
