//! `mlp predict` as a library call: a CSV file in, prediction CSV out.
//!
//! Plain files (no quotes, no blank lines, no missing cells, every value one the model
//! knows) are streamed: each line is split once, only the model's columns are parsed,
//! straight into a reused batch of network inputs, and each batch goes through the network
//! and out as CSV before the next is read. Nothing is allocated per row. Anything else
//! (and any row the model would refuse) sends the whole file to the general reader,
//! [`score_bytes`], which gives the same predictions or the located error message.

use std::io::Write;
use std::path::Path;

use ndarray::{Array2, ArrayViewMut2, s};

use crate::data::{ReadOptions, Table, cell::cell};
use crate::error::Result;
use crate::nn::loss::softmax_rows_tempered;
use crate::pipeline::{Scored, score_bytes};
use crate::tabular::encoding::{Encoding, Feature, TargetEncoding, bin_input};
use crate::tabular::model::{Model, Predictions};

/// Rows per batch through the network (as in [`Model::predict_encoded`], so that both
/// paths give the same bits).
const BATCH: usize = 512;

/// The prediction CSV for the CSV file `bytes` (`path` names it in messages), and the
/// number of rows. With `proba`, a classifier adds one `prob_<label>` column per class;
/// with an `interval` half-width ([`Model::interval_half_width`]), a regression adds
/// `lower` and `upper`: the prediction minus and plus it.
///
/// **Panics** if `proba` is set for a regression model, or `interval` for a classifier
/// (callers refuse those flags first).
pub fn predict_csv(
    model: &mut Model,
    path: &Path,
    bytes: &[u8],
    proba: bool,
    interval: Option<f64>,
) -> Result<(Vec<u8>, usize)> {
    match predict_streamed(model, path, bytes, proba, interval) {
        Some(done) => Ok(done),
        None => general(model, path, bytes, proba, interval),
    }
}

/// The general path: the whole file through [`score_bytes`], then out as CSV.
fn general(
    model: &mut Model,
    path: &Path,
    bytes: &[u8],
    proba: bool,
    interval: Option<f64>,
) -> Result<(Vec<u8>, usize)> {
    let scored = score_bytes(model, path, bytes, false)?;
    let out = write_predictions(&model.file.encoding.target, &scored, proba, interval);
    Ok((out, scored.rows))
}

/// The prediction CSV of scored rows, as the streamed path writes it.
///
/// **Panics** if `proba` is set for a regression model, or `interval` for a classifier.
pub fn write_predictions(
    target: &TargetEncoding,
    scored: &Scored,
    proba: bool,
    interval: Option<f64>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(scored.rows * 16);
    let writer = RowWriter::new(target, proba, interval, &mut out);
    match &scored.predictions {
        Predictions::Classes {
            classes,
            probabilities,
        } => {
            for (row, &class) in probabilities.rows().into_iter().zip(classes) {
                writer.class(class, row.as_slice().expect("standard layout"), &mut out);
            }
        }
        Predictions::Values(values) => {
            for &v in values {
                writer.value(v, &mut out);
            }
        }
    }
    out
}

/// Writes prediction rows: labels quoted once up front, numbers formatted straight into the
/// output.
struct RowWriter {
    labels: Vec<Vec<u8>>,
    proba: bool,
    interval: Option<f64>,
}

impl RowWriter {
    /// Writes the header line.
    fn new(
        target: &TargetEncoding,
        proba: bool,
        interval: Option<f64>,
        out: &mut Vec<u8>,
    ) -> RowWriter {
        match target {
            TargetEncoding::Classes { labels, .. } => {
                assert!(interval.is_none(), "intervals exist only for regression");
                let mut header = vec!["prediction".to_string()];
                if proba {
                    header.extend(labels.iter().map(|l| format!("prob_{l}")));
                }
                out.extend_from_slice(&csv_line(&header));
                let labels = labels
                    .iter()
                    .map(|l| {
                        let mut cell = csv_line(std::slice::from_ref(l));
                        cell.pop(); // the line end
                        cell
                    })
                    .collect();
                RowWriter {
                    labels,
                    proba,
                    interval: None,
                }
            }
            TargetEncoding::Values { .. } => {
                assert!(!proba, "probabilities exist only for classifiers");
                out.extend_from_slice(if interval.is_some() {
                    b"prediction,lower,upper\n".as_slice()
                } else {
                    b"prediction\n"
                });
                RowWriter {
                    labels: Vec::new(),
                    proba,
                    interval,
                }
            }
        }
    }

    fn class(&self, class: usize, probabilities: &[f32], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.labels[class]);
        if self.proba {
            for p in probabilities {
                // Writing into a Vec cannot fail.
                let _ = write!(out, ",{p:.6}");
            }
        }
        out.push(b'\n');
    }

    fn value(&self, v: f64, out: &mut Vec<u8>) {
        // The shortest text that reads back as the same f32.
        let _ = match self.interval {
            Some(half) => writeln!(
                out,
                "{},{},{}",
                v as f32,
                (v - half) as f32,
                (v + half) as f32
            ),
            None => writeln!(out, "{}", v as f32),
        };
    }
}

/// One CSV line of `fields`, quoted where a field needs it.
fn csv_line(fields: &[String]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(fields)
        .and_then(|_| w.flush().map_err(csv::Error::from))
        .expect("writing CSV into memory cannot fail");
    w.into_inner().expect("flushed above")
}

/// What to do with one column of the file.
enum Slot {
    /// Not a feature.
    Skip,
    /// A number, into input `at` (standardised a batch at a time), and for a
    /// [`Feature::Piecewise`] its quantile bins (`edges`) into the inputs after it.
    Number { at: usize, edges: Vec<f64> },
    /// A category one-hot encoded into inputs `at..at + categories.len()`.
    Category { at: usize, categories: Vec<String> },
}

/// The streamed path: the prediction CSV and the number of rows, or `None` when the file
/// needs the general reader (quotes, blank lines, a missing cell to fill, a category the
/// model does not know, anything the general reader would refuse).
///
/// **Panics** if `proba` is set for a regression model, or `interval` for a classifier.
pub fn predict_streamed(
    model: &mut Model,
    path: &Path,
    bytes: &[u8],
    proba: bool,
    interval: Option<f64>,
) -> Option<(Vec<u8>, usize)> {
    // The general reader refuses what is not UTF-8; so must this path.
    let text = std::str::from_utf8(bytes).ok()?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text).as_bytes();
    let header_end = memchr::memchr(b'\n', text)?;
    let layout = Layout::of(&model.file.encoding, path, text, header_end)?;
    let target = model.file.encoding.target.clone();
    let mut x = Array2::<f32>::zeros((BATCH, layout.width));
    let mut buffers = Outputs::new(BATCH, target.width(), 1 + model.ensemble.len());
    let mut out = Vec::with_capacity(text.len() / 8);
    let writer = RowWriter::new(&target, proba, interval, &mut out);
    let (mut rows, mut filled) = (0, 0);
    let body = &text[header_end + 1..];
    if body.is_empty() {
        return None;
    }
    let mut i = 0;
    while i < body.len() {
        let inputs = x.row_mut(filled).into_slice().expect("standard layout");
        i = layout.read_row(body, i, inputs)?;
        filled += 1;
        if filled == BATCH || i >= body.len() {
            standardise(&mut x, filled, &layout.mean, &layout.std)?;
            run_batch(model, &x, filled, &mut buffers, &writer, &mut out)?;
            rows += filled;
            filled = 0;
        }
    }
    Some((out, rows))
}

/// Where each column of a file goes in the network's inputs, and every input's mean and
/// deviation: what the streamed path needs to encode a row as [`Encoding::encode`] does.
struct Layout {
    delimiter: u8,
    slots: Vec<Slot>,
    width: usize,
    mean: Vec<f64>,
    std: Vec<f64>,
}

impl Layout {
    /// The layout for `encoding` of the file `text` whose header ends at `header_end`, or
    /// `None` when the file or the model is for the general reader (a quoted header,
    /// robust scaling, a missing feature column).
    fn of(encoding: &Encoding, path: &Path, text: &[u8], header_end: usize) -> Option<Layout> {
        let header = &text[..header_end];
        let header = header.strip_suffix(b"\r").unwrap_or(header);
        if header.is_empty() || header.contains(&b'"') || header.contains(&b'\r') {
            return None;
        }
        // Robust scaling goes through the general reader.
        if (encoding.features.iter()).any(|f| matches!(f, Feature::Robust { .. })) {
            return None;
        }
        // The header and delimiter as the general reader sees them, from the first two lines.
        let second_end = memchr::memchr(b'\n', &text[header_end + 1..])
            .map_or(text.len(), |i| header_end + 1 + i);
        let options = ReadOptions {
            categorical: encoding.text_names(),
        };
        let head = Table::from_bytes(path, &text[..second_end], &options).ok()?;
        let delimiter = head.delimiter();
        let names: Vec<&str> = header
            .split(|&b| b == delimiter)
            .map(|n| std::str::from_utf8(n).map(str::trim))
            .collect::<std::result::Result<_, _>>()
            .ok()?;
        if names != head.headers() {
            return None;
        }
        let (slots, width) = Layout::slots(encoding, &names)?;
        let (mean, std) = Layout::scales(encoding, width);
        Some(Layout {
            delimiter,
            slots,
            width,
            mean,
            std,
        })
    }

    /// Each of the file's columns (`names`) as a slot, and the number of inputs.
    fn slots(encoding: &Encoding, names: &[&str]) -> Option<(Vec<Slot>, usize)> {
        let mut slots: Vec<Slot> = names.iter().map(|_| Slot::Skip).collect();
        let mut at = 0;
        for feature in &encoding.features {
            let column = names.iter().position(|n| *n == feature.name())?;
            slots[column] = match feature {
                Feature::Numeric { .. } => Slot::Number { at, edges: vec![] },
                Feature::Piecewise { edges, .. } => Slot::Number {
                    at,
                    edges: edges.clone(),
                },
                Feature::Robust { .. } | Feature::Date { .. } => return None,
                Feature::Categorical { categories, .. } => Slot::Category {
                    at,
                    categories: categories.clone(),
                },
            };
            at += feature.width();
        }
        Some((slots, at))
    }

    /// Every input's mean and deviation: a number (a piecewise feature's first input) is
    /// standardised; one-hot and bin inputs pass through as (x − 0) / 1.
    fn scales(encoding: &Encoding, width: usize) -> (Vec<f64>, Vec<f64>) {
        let (mut mean, mut std) = (Vec::with_capacity(width), Vec::with_capacity(width));
        for feature in &encoding.features {
            let first = match feature {
                Feature::Numeric { mean, std, .. } | Feature::Piecewise { mean, std, .. } => {
                    Some((*mean, *std))
                }
                Feature::Categorical { .. } | Feature::Robust { .. } | Feature::Date { .. } => None,
            };
            let rest = feature.width() - usize::from(first.is_some());
            if let Some((m, s)) = first {
                mean.push(m);
                std.push(s);
            }
            mean.extend(std::iter::repeat_n(0.0, rest));
            std.extend(std::iter::repeat_n(1.0, rest));
        }
        (mean, std)
    }

    /// Reads the row starting at `body[i]` into `inputs` (numbers not yet standardised);
    /// the position after its line end. Each cell is read where it starts, and what follows
    /// it must be the delimiter or (after the last column) a line end. Blank lines, quotes,
    /// spaces around numbers, missing cells, a carriage return inside a line (an old Mac
    /// line end) and ragged rows all fail that (`None`), and are the general reader's
    /// business.
    fn read_row(&self, body: &[u8], mut i: usize, inputs: &mut [f32]) -> Option<usize> {
        inputs.fill(0.0);
        let columns = self.slots.len();
        for (column, slot) in self.slots.iter().enumerate() {
            i += self.read_cell(slot, &body[i..], inputs)?;
            let next = body.get(i).copied();
            if column + 1 < columns {
                if next != Some(self.delimiter) {
                    return None;
                }
                i += 1;
            } else {
                match (next, body.get(i + 1)) {
                    (None, _) => {}
                    (Some(b'\n'), _) => i += 1,
                    (Some(b'\r'), Some(b'\n')) => i += 2,
                    _ => return None,
                }
            }
        }
        Some(i)
    }

    /// Reads the cell at the start of `rest` into its `slot` of `inputs`; the bytes it took.
    fn read_cell(&self, slot: &Slot, rest: &[u8], inputs: &mut [f32]) -> Option<usize> {
        if let Slot::Number { at, edges } = slot {
            let (v, used) = parse_number(rest)?;
            // As the general reader: finite, within f32 (`nan`, a missing token, parses,
            // and is refused here).
            if !(v.is_finite() && v.abs() <= f32::MAX as f64) {
                return None;
            }
            inputs[*at] = v as f32;
            for (t, bin) in edges.windows(2).enumerate() {
                inputs[at + 1 + t] = bin_input(v as f32 as f64, bin[0], bin[1]) as f32;
            }
            return Some(used);
        }
        let delimiter = self.delimiter;
        let len = (rest.iter())
            .position(|&b| b == delimiter || b == b'\n' || b == b'\r' || b == b'"')
            .unwrap_or(rest.len());
        if let Slot::Category { at, categories } = slot {
            // Valid UTF-8 (checked above), cut at ASCII bytes, read as the general reader
            // reads a cell; a missing one (to fill) goes there.
            let text = cell(std::str::from_utf8(&rest[..len]).ok()?)?;
            let k = categories.iter().position(|c| c == text)?;
            inputs[at + k] = 1.0;
        }
        Some(len)
    }
}

/// The number at the start of `text` and the bytes it takes, correctly rounded to `f64`
/// exactly as `fast_float2::parse_partial` (which the general reader uses) gives it.
///
/// Most cells are short decimals (`-12.375`): with at most 15 digits and no exponent, the
/// digits as an integer and the power of ten are both exact in `f64`, so one division is
/// the correctly rounded value (Clinger's fast path). Anything else goes to `fast_float2`.
#[inline]
fn parse_number(text: &[u8]) -> Option<(f64, usize)> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let negative = text.first() == Some(&b'-');
    let mut i = usize::from(negative);
    let (mut mantissa, mut digits, mut scale) = (0u64, 0usize, 0usize);
    while let Some(&b) = text.get(i)
        && b.is_ascii_digit()
    {
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        digits += 1;
        i += 1;
    }
    if text.get(i) == Some(&b'.') {
        i += 1;
        while let Some(&b) = text.get(i)
            && b.is_ascii_digit()
        {
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
            digits += 1;
            scale += 1;
            i += 1;
        }
    }
    if digits == 0 || digits > 15 || matches!(text.get(i), Some(b'e' | b'E')) {
        return fast_float2::parse_partial::<f64, _>(text).ok();
    }
    let v = mantissa as f64 / POW10[scale];
    Some((if negative { -v } else { v }, i))
}

/// Standardises the first `rows` rows of `x` in place as `Encoding::inputs` does (in f64,
/// then to f32), in one contiguous loop the compiler vectorises; `None` if a value does not
/// stay finite (the general path names it).
fn standardise(x: &mut Array2<f32>, rows: usize, mean: &[f64], std: &[f64]) -> Option<()> {
    let width = mean.len();
    let values = &mut x.as_slice_mut().expect("standard layout")[..rows * width];
    for row in values.chunks_exact_mut(width) {
        for ((v, m), s) in row.iter_mut().zip(mean).zip(std) {
            *v = ((*v as f64 - m) / s) as f32;
        }
    }
    values.iter().all(|v| v.is_finite()).then_some(())
}

/// Buffers for one batch's outputs, made once: the model's output per row (class
/// probabilities, or raw values) and, in a k-fold ensemble, each further network's.
struct Outputs {
    model: Array2<f32>,
    network: Array2<f32>,
}

impl Outputs {
    fn new(rows: usize, outputs: usize, networks: usize) -> Self {
        Self {
            model: Array2::zeros((rows, outputs)),
            network: Array2::zeros((if networks > 1 { rows } else { 0 }, outputs)),
        }
    }
}

/// The first `rows` rows of `x` through the model and out as CSV: every network of the
/// model, and the mean of their probabilities (classes; the class is its argmax, the first
/// of equal ones) or raw outputs (values), summed in the networks' order and divided by
/// their number, exactly as [`Model::predict_encoded`]. `None` if an output is not finite
/// (the general path names the row).
fn run_batch(
    model: &mut Model,
    x: &Array2<f32>,
    rows: usize,
    buffers: &mut Outputs,
    writer: &RowWriter,
    out: &mut Vec<u8>,
) -> Option<()> {
    let classify = matches!(model.file.encoding.target, TargetEncoding::Classes { .. });
    let networks = 1 + model.ensemble.len();
    let temperature = model.file.calibration.temperature;
    let mut mean = buffers.model.slice_mut(s![..rows, ..]);
    for (k, network) in std::iter::once(&mut model.network)
        .chain(model.ensemble.iter_mut())
        .enumerate()
    {
        network.set_training(false);
        let raw = network.forward(x.slice(s![..rows, ..]));
        let write = |mut to: ArrayViewMut2<f32>| {
            if classify {
                softmax_rows_tempered(raw, temperature, to);
            } else {
                to.assign(&raw);
            }
        };
        // The first network writes the model's output; the others add theirs to it.
        if k == 0 {
            write(mean.view_mut());
        } else {
            let mut own = buffers.network.slice_mut(s![..rows, ..]);
            write(own.view_mut());
            mean += &own;
        }
    }
    if networks > 1 {
        mean /= networks as f32;
    }
    match &model.file.encoding.target {
        TargetEncoding::Classes { .. } => {
            for p in mean.rows() {
                if p.iter().any(|v| !v.is_finite()) {
                    return None;
                }
                let best = crate::train::metrics::argmax(p);
                writer.class(best, p.as_slice().expect("standard layout"), out);
            }
        }
        TargetEncoding::Values { mean: m, std, .. } => {
            for z in mean.column(0) {
                let v = *z as f64 * std + m;
                if !(v.is_finite() && v.abs() <= f32::MAX as f64) {
                    return None;
                }
                writer.value(v, out);
            }
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tabular::encoding::Task;
    use crate::tabular::model::LayerRecord;

    /// The corpus's control model: numbers `x`, `age`, text `plan` (basic, plus, pro),
    /// classes `no`, `yes`.
    fn classifier() -> Model {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corpus/models/valid.json"
        );
        Model::load(path.as_ref()).unwrap()
    }

    /// The same network cut to one output, predicting a number.
    fn regressor() -> Model {
        let mut file = classifier().file;
        file.task = Task::Regression;
        file.encoding.target = TargetEncoding::Values {
            name: "churned".into(),
            mean: 10.0,
            std: 2.5,
        };
        if let Some(LayerRecord::Linear {
            outputs,
            weight,
            bias,
            ..
        }) = file.layers.last_mut()
        {
            *outputs = 1;
            *weight = vec![weight[0], weight[2]];
            bias.truncate(1);
        }
        let json = serde_json::to_vec(&file).unwrap();
        Model::from_json(Path::new("r.json"), &json).unwrap()
    }

    /// `rows` plain rows with all three categories and varied numbers.
    fn rows(n: usize, delimiter: char, line_end: &str) -> String {
        let d = delimiter;
        let mut text = format!("x{d}age{d}plan{d}churned{line_end}");
        for i in 0..n {
            let plan = ["basic", "plus", "pro"][i % 3];
            let x = (i as f32 * 0.37).sin();
            text.push_str(&format!("{x}{d}{}{d}{plan}{d}no{line_end}", 20 + i % 50));
        }
        text
    }

    /// Streams `text` (which must take the streamed path) and checks it against the
    /// general reader, byte for byte.
    fn same_as_general(model: &mut Model, text: &str, proba: bool) -> Vec<u8> {
        same_as_general_with(model, text, proba, None)
    }

    /// [`same_as_general`] with an interval's half-width for a regression.
    fn same_as_general_with(
        model: &mut Model,
        text: &str,
        proba: bool,
        interval: Option<f64>,
    ) -> Vec<u8> {
        let path = Path::new("t.csv");
        let streamed = predict_streamed(model, path, text.as_bytes(), proba, interval)
            .unwrap_or_else(|| panic!("not streamed: {text:?}"));
        let general = general(model, path, text.as_bytes(), proba, interval).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&streamed.0),
            String::from_utf8_lossy(&general.0)
        );
        assert_eq!(streamed.1, general.1);
        streamed.0
    }

    #[test]
    fn streamed_predictions_equal_the_general_readers() {
        let mut model = classifier();
        // Batches: fewer than one, exactly one, and several with a remainder.
        for n in [1, 3, 512, 1300] {
            same_as_general(&mut model, &rows(n, ',', "\n"), true);
            same_as_general(&mut model, &rows(n, ',', "\n"), false);
        }
        same_as_general(&mut model, &rows(40, ';', "\r\n"), true);
        same_as_general(&mut model, &rows(40, '\t', "\n"), true);
        // No final line end, a byte-order mark, spaces around cells, columns in another
        // order with an extra one.
        let text = rows(7, ',', "\n");
        same_as_general(&mut model, text.trim_end(), true);
        same_as_general(&mut model, &format!("\u{feff}{text}"), true);
        same_as_general(
            &mut model,
            "id , plan,age,x\n1, pro ,33,0.25\n2,basic,51,-1e-3\n",
            true,
        );
        let out = same_as_general(&mut regressor(), &rows(600, ',', "\n"), false);
        assert!(out.starts_with(b"prediction\n"));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 601);
    }

    /// `model` as an ensemble of three networks: itself and two copies with weights and
    /// biases perturbed differently.
    fn ensemble_of(model: Model) -> Model {
        let mut file = model.file;
        for member in 1..=2 {
            let mut layers = file.layers.clone();
            for layer in &mut layers {
                if let LayerRecord::Linear { weight, bias, .. } = layer {
                    for (i, w) in weight.iter_mut().chain(bias.iter_mut()).enumerate() {
                        *w += 0.3 * (i as f32 * 1.7 + member as f32).sin();
                    }
                }
            }
            file.ensemble.push(layers);
        }
        file.training.config.folds = 3;
        let json = serde_json::to_vec(&file).unwrap();
        Model::from_json(Path::new("e.json"), &json).unwrap()
    }

    #[test]
    fn streamed_ensemble_predictions_equal_the_general_readers() {
        let mut single = classifier();
        let mut model = ensemble_of(classifier());
        for n in [3, 512, 1300] {
            same_as_general(&mut model, &rows(n, ',', "\n"), true);
            same_as_general(&mut model, &rows(n, ',', "\n"), false);
        }
        // The members really differ: the ensemble's probabilities are not the first
        // network's.
        let text = rows(50, ',', "\n");
        assert_ne!(
            same_as_general(&mut model, &text, true),
            same_as_general(&mut single, &text, true)
        );
        let out = same_as_general(&mut ensemble_of(regressor()), &rows(600, ',', "\n"), false);
        assert!(out.starts_with(b"prediction\n"));
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 601);
        assert_ne!(
            out,
            same_as_general(&mut regressor(), &rows(600, ',', "\n"), false)
        );
    }

    #[test]
    fn streamed_piecewise_inputs_equal_the_general_readers() {
        // `age` (input 1) as a piecewise feature with 3 bins: 3 more inputs after it, each
        // with its own weights into the first layer.
        let mut file = classifier().file;
        let edges = vec![20.0, 31.5, 45.0, 69.0];
        if let Feature::Numeric {
            name, mean, std, ..
        } = &file.encoding.features[1]
        {
            file.encoding.features[1] = Feature::Piecewise {
                name: name.clone(),
                mean: *mean,
                std: *std,
                edges,
                fill: None,
            };
        }
        if let Some(LayerRecord::Linear {
            inputs,
            outputs,
            weight,
            ..
        }) = file.layers.first_mut()
        {
            let bins: Vec<f32> = (0..3 * *outputs).map(|i| (i as f32 * 0.7).cos()).collect();
            let at = 2 * *outputs;
            weight.splice(at..at, bins);
            *inputs += 3;
        }
        let json = serde_json::to_vec(&file).unwrap();
        let mut model = Model::from_json(Path::new("p.json"), &json).unwrap();
        for n in [3, 700] {
            same_as_general(&mut model, &rows(n, ',', "\n"), true);
        }
    }

    #[test]
    fn number_shortcut_agrees_with_fast_float() {
        let mut cases: Vec<String> = [
            "0",
            "-0",
            "5.",
            ".5",
            "-.5",
            "+1.5",
            "1e5",
            "1.5E-3",
            "-",
            ".",
            "",
            "x",
            "nan",
            "inf",
            "-inf",
            "1.5,2",
            "12.375\n",
            "0.1",
            "0.2",
            "0.3",
            "9007199254740993",
            "123456789012345",
            "1234567890123456",
            "0.000000000000001",
            "00000000000000001",
            "3.4028235e38",
            "1e39",
            "-0.0000",
            "7.",
            "1.2.3",
        ]
        .map(String::from)
        .to_vec();
        // Decimals of every length up to 18 digits, split everywhere, both signs.
        let mut seed = 0x2545f4914f6cdd1du64;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let digits = (seed % 18 + 1) as usize;
            let number = format!("{:018}", seed >> 4)[..digits].to_string();
            let point = (seed >> 60) as usize % (digits + 1);
            let sign = if seed & 1 == 1 { "-" } else { "" };
            cases.push(format!("{sign}{}.{}", &number[..point], &number[point..]));
            cases.push(format!("{sign}{number}"));
        }
        for c in &cases {
            let expected = fast_float2::parse_partial::<f64, _>(c.as_bytes()).ok();
            let got = parse_number(c.as_bytes());
            assert_eq!(
                got.map(|(v, n)| (v.to_bits(), n)),
                expected.map(|(v, n)| (v.to_bits(), n)),
                "{c:?}"
            );
        }
    }

    #[test]
    fn anything_unusual_goes_to_the_general_reader() {
        let mut model = classifier();
        let path = Path::new("t.csv");
        let cases = [
            // quotes, a blank line, a missing cell, an unseen category, a missing token
            // as category, a ragged row, an old Mac line end, text in a number column, a
            // number beyond f32, a missing column
            "x,age,plan\n\"0.5\",30,basic\n",
            "x,age,plan\n0.5,30,basic\n\n0.1,31,pro\n",
            "x,age,plan\n0.5,,basic\n",
            "x,age,plan\n0.5,30,gold\n",
            "x,age,plan\n0.5,30,NA\n",
            "x,age,plan\n0.5,30,basic,9\n",
            "x,age,plan\n0.5,30,basic\r0.1,31,pro\n",
            "x,age,plan\n0.5,thirty,basic\n",
            "x,age,plan\n0.5,1e39,basic\n",
            "x,plan\n0.5,basic\n",
            "x,age,plan\n",
        ];
        for text in cases {
            assert!(
                predict_streamed(&mut model, path, text.as_bytes(), false, None).is_none(),
                "{text:?}"
            );
        }
        // Where the general reader refuses, predict_csv gives its message.
        let e = predict_csv(&mut model, path, cases[7].as_bytes(), false, None).unwrap_err();
        assert!(
            e.to_string().starts_with("t.csv, line 2, column 'age': "),
            "{e}"
        );
        // An unseen category is scored by the general reader, with no category on.
        let (gold, rows) = predict_csv(&mut model, path, cases[3].as_bytes(), false, None).unwrap();
        assert_eq!(rows, 1);
        assert!(gold.starts_with(b"prediction\n"));
        // Where it accepts, the same predictions: quoted numbers, spaces around numbers.
        let plain =
            predict_csv(&mut model, path, b"x,age,plan\n0.5,30,basic\n", true, None).unwrap();
        let quoted = predict_csv(&mut model, path, cases[0].as_bytes(), true, None).unwrap();
        assert_eq!(quoted, plain);
        let spaced = b"x,age,plan\n0.5, 30 ,basic\n";
        assert!(predict_streamed(&mut model, path, spaced, true, None).is_none());
        assert_eq!(
            predict_csv(&mut model, path, spaced, true, None).unwrap(),
            plain
        );
        assert_eq!(plain.1, 1);
    }

    #[test]
    fn streamed_path_applies_the_temperature_and_the_interval() {
        // A temperature of 2 halves every logit: the probabilities are softer, on both paths.
        let text = rows(600, ',', "\n");
        let plain = same_as_general(&mut classifier(), &text, true);
        let mut tempered = classifier();
        tempered.file.calibration.temperature = 2.0;
        let soft = same_as_general(&mut tempered, &text, true);
        let first = |out: &[u8]| -> f32 {
            let line = String::from_utf8_lossy(out)
                .lines()
                .nth(1)
                .unwrap()
                .to_string();
            let cells: Vec<f32> = line
                .split(',')
                .skip(1)
                .map(|c| c.parse().unwrap())
                .collect();
            cells.iter().cloned().fold(0.0, f32::max)
        };
        assert!(
            first(&soft) < first(&plain),
            "{} {}",
            first(&soft),
            first(&plain)
        );
        assert!(first(&soft) > 0.5);
        // The classes are the same.
        let classes = |out: &[u8]| -> Vec<String> {
            let text = String::from_utf8_lossy(out).to_string();
            text.lines()
                .map(|l| l.split(',').next().unwrap().to_string())
                .collect()
        };
        assert_eq!(classes(&soft), classes(&plain));
        // An interval of ±1.5 around each value, on both paths.
        let out = same_as_general_with(&mut regressor(), &text, false, Some(1.5));
        let out = String::from_utf8(out).unwrap();
        assert!(out.starts_with("prediction,lower,upper\n"));
        for line in out.lines().skip(1) {
            let v: Vec<f32> = line.split(',').map(|c| c.parse().unwrap()).collect();
            assert!((v[0] - v[1] - 1.5).abs() < 1e-4 && (v[2] - v[0] - 1.5).abs() < 1e-4);
        }
    }
}
