//! A model as an ONNX graph: the whole pipeline from CSV columns to labels, so that
//! onnxruntime (or any ONNX runtime with the `ai.onnx.ml` domain) predicts what
//! `mlp predict` does.
//!
//! ```text
//! inputs, one per feature column, named as in the CSV:
//!   numeric  float32 [N, 1]  (─ IsNaN ─ Where fill) (─ quantile bins, piecewise)
//!   text     string  [N, 1]  ─ RegexFullMatch per category (─ Or missing, for the fill)
//!                            ─ Concat ─ Cast f32                             [N, k]
//!   date     string  [N, 1]  ─ RegexFullMatch (a date?) ─ StringSplit, Cast f64 (fields)
//!                            ─ calendar arithmetic per part ─ Cast f32 ─ Where fill
//!                            (─ quantile bins, piecewise)                    [N, parts]
//! Concat (model's feature order)                         [N, I]
//! Cast f64 ─ Sub mean ─ Div std ─ Cast f32               (as mlp: in f64, then f32)
//! Gemm (x·W + b) and activations, per network            [N, O]
//! classification: (Div T) ─ Softmax → probabilities [N, C]; ArgMax ─ LabelEncoder → label [N]
//! regression:     Cast f64 ─ Mul std ─ Add mean ─ Cast f32 → prediction [N, 1]
//!                 (with an interval: ─ Sub/Add half-width ─ Cast f32 → lower, upper [N, 1])
//! ensemble of K:  every network on the same x; Softmax each, Sum, Div K → probabilities
//!                 (ArgMax of the mean), or Sum, Div K of the raw outputs → as above
//! ```
//!
//! A calibrated classifier divides every network's outputs by its temperature `T` before
//! the Softmax, as `mlp predict` does.
//!
//! Text goes in as the file has it: the graph reads a cell as [`crate::data::cell`] defines
//! (whitespace at its ends trimmed; empty, `NA`, `N/A`, `NaN`, `null` or `?` in any case is
//! missing), with patterns generated from the same constants. A missing number is NaN.
//! Missing cells become the feature's fill value where the model has one (`--missing
//! impute`), as in `mlp predict`. Text cells outside the model's categories encode as all
//! zeros (the runtime cannot refuse a cell the way `mlp predict` does), and so does a
//! missing text without a fill value; a missing number without one gives NaN. A date cell
//! that is missing or not a date (which `mlp predict` refuses) gives each part's fill, or
//! NaN without one. One difference remains: the graph splits a date from its padding at
//! ASCII whitespace only, so a date padded with other Unicode whitespace (a no-break
//! space) reads as not a date there.

use prost::Message;

use super::Interval;
use super::proto::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    StringStringEntryProto, TensorProto, TensorShapeProto, TensorTypeProto, TypeProto,
    ValueInfoProto, attribute_type, data_type,
};
use crate::data::cell;
use crate::tabular::calibration::{Interval as ConformalInterval, Residuals};
use crate::tabular::dates::YEAR_DAYS;
use crate::tabular::encoding::{DateInput, DatePart, Feature, TargetEncoding};
use crate::tabular::model::{LayerRecord, ModelFile};

/// IR version 9 (ONNX 1.15) and the opsets it pairs with: opset 20 is the first with
/// `RegexFullMatch`, which reads a text cell as `mlp` does (onnxruntime 1.17 and later).
const IR_VERSION: i64 = 9;
const OPSET_ONNX: i64 = 20;
const OPSET_ML: i64 = 3;
const ML: &str = "ai.onnx.ml";

/// The ONNX model (protobuf bytes) for a validated model file.
pub fn to_onnx(file: &ModelFile) -> Vec<u8> {
    to_onnx_with(file, None)
}

/// [`to_onnx`], a regression model's graph with two more outputs, `lower` and `upper`: the
/// prediction minus and plus the `interval`'s half-width (its level in the metadata,
/// `interval_level`).
///
/// **Panics** if `interval` is given for a classifier.
pub fn to_onnx_with(file: &ModelFile, interval: Option<Interval>) -> Vec<u8> {
    let mut g = GraphBuilder::default();
    let encoding = &file.encoding;
    let x = emit_features(&mut g, &encoding.features);
    let x = emit_standardise(&mut g, &encoding.features, &x);
    let networks: Vec<&[LayerRecord]> = std::iter::once(&file.layers[..])
        .chain(file.ensemble.iter().map(Vec::as_slice))
        .collect();
    let outs: Vec<String> = networks
        .iter()
        .map(|layers| network(&mut g, &x, layers))
        .collect();
    match &encoding.target {
        TargetEncoding::Classes { labels, .. } => {
            assert!(interval.is_none(), "intervals are for regression");
            let t = file.calibration.temperature;
            emit_classes(&mut g, &outs, labels, t)
        }
        TargetEncoding::Values { mean, std, .. } => emit_values(
            &mut g,
            &outs,
            (*mean, *std),
            interval.as_ref().map(|i| i.interval.clone()),
        ),
    }
    let mut model = model_proto(file, g);
    if let Some(interval) = interval {
        model.metadata_props.push(StringStringEntryProto {
            key: "interval_level".into(),
            value: interval.level.to_string(),
        });
    }
    model.encode_to_vec()
}

/// Every feature as a float block, in the model's input order, concatenated: the encoded
/// inputs before standardisation, `[N, I]`.
fn emit_features(g: &mut GraphBuilder, features: &[Feature]) -> String {
    let mut blocks: Vec<String> = features
        .iter()
        .map(|feature| match feature {
            Feature::Robust { .. } => unreachable!("refused by check_exportable"),
            Feature::Date { name, parts } => emit_date(g, name, parts),
            Feature::Numeric { .. } | Feature::Piecewise { .. } => emit_number(g, feature),
            Feature::Categorical {
                name,
                categories,
                fill,
            } => emit_text(g, name, categories, fill.as_deref()),
        })
        .collect();
    if blocks.len() == 1 {
        blocks.pop().expect("one block")
    } else {
        let refs: Vec<&str> = blocks.iter().map(String::as_str).collect();
        g.node("Concat", &refs, vec![int_attr("axis", 1)])
    }
}

/// A numeric feature's input and block: the value (NaN filled) and, for a piecewise
/// feature, its quantile bins.
fn emit_number(g: &mut GraphBuilder, feature: &Feature) -> String {
    let (Feature::Numeric { name, fill, .. } | Feature::Piecewise { name, fill, .. }) = feature
    else {
        unreachable!("called for numbers")
    };
    g.input(name, data_type::FLOAT, Some(1));
    let value = match fill {
        // A missing number (NaN) becomes the training median.
        Some(fill) => {
            let missing = g.node("IsNaN", &[name], vec![]);
            let fill = g.floats(&[1, 1], vec![*fill]);
            g.node("Where", &[&missing, &fill, name], vec![])
        }
        None => name.clone(),
    };
    emit_bins(g, feature, value)
}

/// The block of a number `value` scaled as `feature`: the value itself, and for a
/// piecewise feature its quantile bins after it.
fn emit_bins(g: &mut GraphBuilder, feature: &Feature, value: String) -> String {
    match feature {
        Feature::Piecewise { edges, .. } if !edges.is_empty() => {
            // The value, then one input per quantile bin [lo, hi]: in f64,
            // clamp((x − lo) / (hi − lo), 0, 1), as `Encoding::inputs` does.
            let bins = edges.len() as i64 - 1;
            let lo = g.doubles(&[1, bins], edges[..edges.len() - 1].to_vec());
            let size: Vec<f64> = edges.windows(2).map(|e| e[1] - e[0]).collect();
            let size = g.doubles(&[1, bins], size);
            let zero = g.doubles(&[], vec![0.0]);
            let one = g.doubles(&[], vec![1.0]);
            let double = int_attr("to", data_type::DOUBLE as i64);
            let v = g.node("Cast", &[&value], vec![double]);
            let v = g.node("Sub", &[&v, &lo], vec![]);
            let v = g.node("Div", &[&v, &size], vec![]);
            let v = g.node("Clip", &[&v, &zero, &one], vec![]);
            let float = int_attr("to", data_type::FLOAT as i64);
            let v = g.node("Cast", &[&v], vec![float]);
            g.node("Concat", &[&value, &v], vec![int_attr("axis", 1)])
        }
        _ => value,
    }
}

/// A text feature's input and its one-hot block `[N, k]`: input `i` is on where the cell
/// reads as category `i` ([`cell::category_pattern`]), or, with a fill value, where the cell
/// is missing ([`cell::missing_pattern`]) and category `i` is the fill. A cell that is
/// neither (an unseen category, or missing without a fill) gives zeros.
fn emit_text(
    g: &mut GraphBuilder,
    name: &str,
    categories: &[String],
    fill: Option<&str>,
) -> String {
    g.input(name, data_type::STRING, Some(1));
    let full_match = |g: &mut GraphBuilder, pattern: &str| {
        g.node(
            "RegexFullMatch",
            &[name],
            vec![string_attr("pattern", pattern)],
        )
    };
    let fill_at = fill.and_then(|f| categories.iter().position(|c| c == f));
    let missing = fill_at.map(|_| full_match(g, &cell::missing_pattern()));
    let hot: Vec<String> = (categories.iter().enumerate())
        .map(|(i, category)| {
            let is = match cell::category_pattern(category) {
                Some(pattern) => full_match(g, &pattern),
                // No cell reads as this category: never on.
                None => {
                    let any = full_match(g, "(?s).*");
                    g.node("Not", &[&any], vec![])
                }
            };
            match &missing {
                Some(missing) if fill_at == Some(i) => g.node("Or", &[&is, missing], vec![]),
                _ => is,
            }
        })
        .collect();
    // [N, 1] booleans, one per category → [N, k] floats.
    let hot = if hot.len() == 1 {
        hot[0].clone()
    } else {
        let refs: Vec<&str> = hot.iter().map(String::as_str).collect();
        g.node("Concat", &refs, vec![int_attr("axis", 1)])
    };
    g.node(
        "Cast",
        &[&hot],
        vec![int_attr("to", data_type::FLOAT as i64)],
    )
}

/// Appends the mean and deviation of a number scaled as `feature`'s inputs: the value
/// standardised, its bins (piecewise) passing unchanged.
fn scales(feature: &Feature, mean: &mut Vec<f64>, std: &mut Vec<f64>) {
    let (Feature::Numeric {
        mean: m, std: s, ..
    }
    | Feature::Piecewise {
        mean: m, std: s, ..
    }) = feature
    else {
        unreachable!("refused by check_exportable")
    };
    mean.push(*m);
    std.push(*s);
    let bins = feature.width() - 1;
    mean.extend(std::iter::repeat_n(0.0, bins));
    std.extend(std::iter::repeat_n(1.0, bins));
}

/// A date feature's input and block: the cell checked against [`cell::date_pattern`],
/// cut into its fields by `StringSplit`, the fields `Cast` to numbers, and each part
/// computed from them in f64 as [`DatePart::value`] does; a cell that is missing or not a
/// date becomes each part's fill (NaN without one). Each part is then scaled as a number.
fn emit_date(g: &mut GraphBuilder, name: &str, parts: &[DateInput]) -> String {
    g.input(name, data_type::STRING, Some(1));
    let valid = g.node(
        "RegexFullMatch",
        &[name],
        vec![string_attr("pattern", &cell::date_pattern())],
    );
    // Every cell a date from here on, so that each split below has the pieces it takes.
    let epoch = g.strings(&[1, 1], &["1970-01-01"]);
    let text = g.node("Where", &[&valid, name, &epoch], vec![]);
    let fields = DateFields::emit(g, &text);
    let values = fields.parts(g);
    let blocks: Vec<String> = (parts.iter())
        .map(|DateInput { part, scale }| {
            let at = DatePart::ALL
                .iter()
                .position(|p| p == part)
                .expect("listed");
            let float = int_attr("to", data_type::FLOAT as i64);
            let v = g.node("Cast", &[&values[at]], vec![float]);
            let fill = match scale {
                Feature::Numeric { fill, .. } | Feature::Piecewise { fill, .. } => *fill,
                _ => unreachable!("refused by check_exportable"),
            };
            let fill = g.floats(&[1, 1], vec![fill.unwrap_or(f32::NAN)]);
            let v = g.node("Where", &[&valid, &v, &fill], vec![]);
            emit_bins(g, scale, v)
        })
        .collect();
    let refs: Vec<&str> = blocks.iter().map(String::as_str).collect();
    g.node("Concat", &refs, vec![int_attr("axis", 1)])
}

/// A date cell's fields as f64 tensors `[N, 1]`: year, month, day, seconds since local
/// midnight, and the offset in minutes.
struct DateFields {
    year: String,
    month: String,
    day: String,
    seconds: String,
    offset: String,
}

impl DateFields {
    /// The fields of `text`, every cell of which is a date (padded, perhaps).
    fn emit(g: &mut GraphBuilder, text: &str) -> DateFields {
        // Split at whitespace (which also drops padding); the " |" keeps a second piece.
        let text = g.suffix(text, " |");
        let date_time = g.piece(&text, None, 0);
        let after_space = g.piece(&text, None, 1);
        // "2024-03-05T10:00" or "2024-03-05": the date, then a time or "|".
        let t = g.suffix(&date_time, "T|");
        let date = g.piece(&t, Some("T"), 0);
        let after_t = g.piece(&t, Some("T"), 1);
        let bar = g.strings(&[1, 1], &["|"]);
        let no_t = g.node("Equal", &[&after_t, &bar], vec![]);
        let time = g.node("Where", &[&no_t, &after_space, &after_t], vec![]);
        let no_time = g.node("Equal", &[&time, &bar], vec![]);
        let midnight = g.strings(&[1, 1], &["00:00"]);
        let time = g.node("Where", &[&no_time, &midnight, &time], vec![]);
        // "10:00:07.5+01:00", "10:00Z", "10:00-05:00": the clock, then the offset.
        let time = g.piece(&time, Some("Z"), 0);
        let plus = g.suffix(&time, "+");
        let (time, ahead) = (g.piece(&plus, Some("+"), 0), g.piece(&plus, Some("+"), 1));
        let minus = g.suffix(&time, "-");
        let (clock, behind) = (g.piece(&minus, Some("-"), 0), g.piece(&minus, Some("-"), 1));
        let clock = g.suffix(&clock, ":0");
        let [hour, minute, second] = [0, 1, 2].map(|i| g.number(&clock, ":", i));
        let seconds = g.sum_of_products(&[(&hour, 3600.0), (&minute, 60.0), (&second, 1.0)]);
        let minutes = |g: &mut GraphBuilder, offset: &str| {
            let zero = g.strings(&[1, 1], &["0"]);
            let offset = g.node("StringConcat", &[&zero, offset], vec![]);
            let offset = g.suffix(&offset, ":0");
            let (h, m) = (g.number(&offset, ":", 0), g.number(&offset, ":", 1));
            g.sum_of_products(&[(&h, 60.0), (&m, 1.0)])
        };
        let (ahead, behind) = (minutes(g, &ahead), minutes(g, &behind));
        let offset = g.node("Sub", &[&ahead, &behind], vec![]);
        DateFields {
            year: g.number(&date, "-", 0),
            month: g.number(&date, "-", 1),
            day: g.number(&date, "-", 2),
            seconds,
            offset,
        }
    }

    /// Every [`DatePart`], in the order of [`DatePart::ALL`], as f64 `[N, 1]`.
    fn parts(&self, g: &mut GraphBuilder) -> Vec<String> {
        let c = |g: &mut GraphBuilder, v: f64| g.doubles(&[], vec![v]);
        let days = days_from_civil(g, &self.year, &self.month, &self.day);
        let one = c(g, 1.0);
        let new_year = days_from_civil(g, &self.year, &one, &one);
        let day_of_year = g.node("Sub", &[&days, &new_year], vec![]);
        let day_of_year = g.node("Add", &[&day_of_year, &one], vec![]);
        // (days + 3) mod 7, never negative: Mod takes the dividend's sign.
        let (three, seven) = (c(g, 3.0), c(g, 7.0));
        let weekday = g.node("Add", &[&days, &three], vec![]);
        let weekday = g.node("Mod", &[&weekday, &seven], vec![int_attr("fmod", 1)]);
        let weekday = g.node("Add", &[&weekday, &seven], vec![]);
        let weekday = g.node("Mod", &[&weekday, &seven], vec![int_attr("fmod", 1)]);
        let hour = g.with("Div", &self.seconds, 3600.0);
        // days + (seconds − offset·60) / 86400
        let shift = g.with("Mul", &self.offset, 60.0);
        let time = g.node("Sub", &[&self.seconds, &shift], vec![]);
        let time = g.with("Div", &time, 86_400.0);
        let time = g.node("Add", &[&days, &time], vec![]);
        let day_angle = g.node("Sub", &[&day_of_year, &one], vec![]);
        let circle = |g: &mut GraphBuilder, v: &str, period: f64| {
            let turn = c(g, std::f64::consts::TAU);
            let a = g.node("Mul", &[&turn, v], vec![]);
            let a = g.with("Div", &a, period);
            [g.node("Sin", &[&a], vec![]), g.node("Cos", &[&a], vec![])]
        };
        let [day_sin, day_cos] = circle(g, &day_angle, YEAR_DAYS);
        let [week_sin, week_cos] = circle(g, &weekday, 7.0);
        let [hour_sin, hour_cos] = circle(g, &hour, 24.0);
        let (year, month) = (self.year.clone(), self.month.clone());
        vec![
            time,
            year,
            month,
            day_of_year,
            weekday,
            hour,
            day_sin,
            day_cos,
            week_sin,
            week_cos,
            hour_sin,
            hour_cos,
        ]
    }
}

/// Days from 1970-01-01 as [`cell::days_from_civil`] counts them, in f64 `[N, 1]`.
fn days_from_civil(g: &mut GraphBuilder, year: &str, month: &str, day: &str) -> String {
    let floor_div = |g: &mut GraphBuilder, a: &str, b: f64| {
        let q = g.with("Div", a, b);
        g.node("Floor", &[&q], vec![])
    };
    // y = year − (month ≤ 2)
    let early = g.with("Less", month, 2.5);
    let early = g.node(
        "Cast",
        &[&early],
        vec![int_attr("to", data_type::DOUBLE as i64)],
    );
    let y = g.node("Sub", &[year, &early], vec![]);
    let era = floor_div(g, &y, 400.0);
    let yoe = g.sum_of_products(&[(&y, 1.0), (&era, -400.0)]);
    // March is 0: (month + 9) mod 12
    let mp = g.with("Add", month, 9.0);
    let mp = g.with_attr("Mod", &mp, 12.0, vec![int_attr("fmod", 1)]);
    let mp = g.sum_of_products(&[(&mp, 153.0)]);
    let mp = g.with("Add", &mp, 2.0);
    let doy = floor_div(g, &mp, 5.0);
    let doy = g.node("Add", &[&doy, day], vec![]);
    let doy = g.with("Sub", &doy, 1.0);
    let (by4, by100) = (floor_div(g, &yoe, 4.0), floor_div(g, &yoe, 100.0));
    let doe = g.sum_of_products(&[(&yoe, 365.0), (&by4, 1.0), (&by100, -1.0), (&doy, 1.0)]);
    let days = g.sum_of_products(&[(&era, 146_097.0), (&doe, 1.0)]);
    g.with("Sub", &days, 719_468.0)
}

/// Standardisation in f64, as `Encoding::inputs` does it; one-hot inputs pass unchanged.
fn emit_standardise(g: &mut GraphBuilder, features: &[Feature], x: &str) -> String {
    let (mut mean, mut std) = (Vec::new(), Vec::new());
    for feature in features {
        match feature {
            Feature::Numeric { .. } | Feature::Piecewise { .. } => {
                scales(feature, &mut mean, &mut std)
            }
            Feature::Robust { .. } => unreachable!("refused by check_exportable"),
            Feature::Date { parts, .. } => {
                for part in parts {
                    scales(&part.scale, &mut mean, &mut std);
                }
            }
            Feature::Categorical { categories, .. } => {
                mean.extend(std::iter::repeat_n(0.0, categories.len()));
                std.extend(std::iter::repeat_n(1.0, categories.len()));
            }
        }
    }
    let width = mean.len() as i64;
    let x = g.node("Cast", &[x], vec![int_attr("to", data_type::DOUBLE as i64)]);
    let mean = g.doubles(&[1, width], mean);
    let std = g.doubles(&[1, width], std);
    let x = g.node("Sub", &[&x, &mean], vec![]);
    let x = g.node("Div", &[&x, &std], vec![]);
    g.node("Cast", &[&x], vec![int_attr("to", data_type::FLOAT as i64)])
}

/// The mean of the networks' outputs `refs`: summed in the networks' order, as
/// `Model::predict_encoded` sums them.
fn ensemble_mean(g: &mut GraphBuilder, refs: &[&str]) -> String {
    let sum = g.node("Sum", refs, vec![]);
    let k = g.floats(&[], vec![refs.len() as f32]);
    g.node("Div", &[&sum, &k], vec![])
}

/// A classifier's outputs from the networks' raw outputs `outs`: `label` and
/// `probabilities` (an ensemble's mean probabilities).
fn emit_classes(g: &mut GraphBuilder, outs: &[String], labels: &[String], temperature: f32) {
    // A calibrated model's outputs divided by its temperature (which changes no argmax).
    let outs: Vec<String> = if temperature == 1.0 {
        outs.to_vec()
    } else {
        let t = g.floats(&[], vec![temperature]);
        outs.iter()
            .map(|z| g.node("Div", &[z, &t], vec![]))
            .collect()
    };
    let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    let c = labels.len() as i64;
    // mlp takes the first of equal values; so does ArgMax (select_last_index = 0).
    let argmax = vec![int_attr("axis", 1), int_attr("keepdims", 0)];
    let class = if refs.len() == 1 {
        g.node_named("Softmax", &refs, "probabilities", vec![int_attr("axis", 1)]);
        g.node("ArgMax", &refs, argmax)
    } else {
        let p: Vec<String> = refs
            .iter()
            .map(|z| g.node("Softmax", &[z], vec![int_attr("axis", 1)]))
            .collect();
        let p: Vec<&str> = p.iter().map(String::as_str).collect();
        let mean = ensemble_mean(g, &p);
        g.node_named("Identity", &[&mean], "probabilities", vec![]);
        g.node("ArgMax", &[&mean], argmax)
    };
    let keys: Vec<i64> = (0..c).collect();
    g.nodes.push(NodeProto {
        input: vec![class],
        output: vec!["label".into()],
        name: "label".into(),
        op_type: "LabelEncoder".into(),
        domain: ML.into(),
        attribute: vec![
            ints_attr("keys_int64s", keys),
            strings_attr("values_strings", labels),
            string_attr("default_string", ""),
        ],
    });
    // `label` first, as skl2onnx orders a classifier's outputs.
    g.output("label", data_type::STRING, None);
    g.output("probabilities", data_type::FLOAT, Some(c));
}

/// A regressor's output `prediction` from the networks' raw outputs `outs` (an
/// ensemble's mean), in the target's units: `z · std + mean` in f64; with an `interval`
/// half-width, also `lower` and `upper`, that value minus and plus it (in f64, as mlp).
fn emit_values(
    g: &mut GraphBuilder,
    outs: &[String],
    (mean, std): (f64, f64),
    interval: Option<ConformalInterval>,
) {
    let refs: Vec<&str> = outs.iter().map(String::as_str).collect();
    let x = if refs.len() == 1 {
        outs[0].clone()
    } else {
        ensemble_mean(g, &refs)
    };
    let std = g.doubles(&[1], vec![std]);
    let m = g.doubles(&[1], vec![mean]);
    // Raw outputs to f64 values in the target's units, as mlp computes them.
    let mut values = |z: &str| {
        let y = g.node("Cast", &[z], vec![int_attr("to", data_type::DOUBLE as i64)]);
        let y = g.node("Mul", &[&y, &std], vec![]);
        g.node("Add", &[&y, &m], vec![])
    };
    let y = values(&x);
    let mut members: Vec<String> = match &interval {
        Some(ConformalInterval::CvPlus { .. }) => outs.iter().map(|z| values(z)).collect(),
        _ => Vec::new(),
    };
    // Scaled to the ensemble: each network moved towards the prediction, y + spread·(μ − y).
    if let Some(ConformalInterval::CvPlus { spread, .. }) = &interval
        && *spread != 1.0
    {
        let spread = g.doubles(&[1], vec![*spread]);
        for mu in members.iter_mut() {
            let d = g.node("Sub", &[mu, &y], vec![]);
            let d = g.node("Mul", &[&d, &spread], vec![]);
            *mu = g.node("Add", &[&y, &d], vec![]);
        }
    }
    let float = || vec![int_attr("to", data_type::FLOAT as i64)];
    g.node_named("Cast", &[&y], "prediction", float());
    g.output("prediction", data_type::FLOAT, Some(1));
    let ends = match interval {
        None => return,
        Some(ConformalInterval::Split { half }) => {
            let half = g.doubles(&[1], vec![half]);
            [("Sub", "lower"), ("Add", "upper")].map(|(op, _)| g.node(op, &[&y, &half], vec![]))
        }
        Some(ConformalInterval::CvPlus { rank, folds, .. }) => {
            let lower = cv_plus_end(g, &members, &folds, rank, -1.0);
            let upper = cv_plus_end(g, &members, &folds, rank, 1.0);
            [g.node("Neg", &[&lower], vec![]), upper]
        }
    };
    for (end, name) in ends.iter().zip(["lower", "upper"]) {
        g.node_named("Cast", &[end], name, float());
        g.output(name, data_type::FLOAT, Some(1));
    }
}

/// The `rank`-th largest of `side·members[k] + r` over every residual `r` of `folds[k]`,
/// each kept residual counting as the rows it stands for (as
/// [`ConformalInterval::bounds`] finds it), `[N, 1]` f64:
///
/// ```text
/// side·μ_k ─ Add R_k [1, n_k] ─ Concat over k   [N, M]   (M kept residuals in all)
/// TopK (largest, sorted) of the first M' ─ Gather rows per value ─ CumSum   [N, M']
/// ArgMin (first) of CumSum < rank ─ GatherElements   [N, 1]
/// ```
///
/// `M'` is the fewest values that can hold `rank` rows; memory is `N · M` f64.
fn cv_plus_end(
    g: &mut GraphBuilder,
    members: &[String],
    folds: &[Residuals],
    rank: usize,
    side: f64,
) -> String {
    let shifted: Vec<String> = (members.iter().zip(folds))
        .map(|(mu, fold)| {
            let s = if side < 0.0 {
                g.node("Neg", &[mu], vec![])
            } else {
                mu.clone()
            };
            let r = g.doubles(&[1, fold.absolute.len() as i64], fold.absolute.clone());
            g.node("Add", &[&s, &r], vec![])
        })
        .collect();
    let refs: Vec<&str> = shifted.iter().map(String::as_str).collect();
    let all = g.node("Concat", &refs, vec![int_attr("axis", 1)]);
    let weights: Vec<usize> = folds.iter().flat_map(Residuals::weights).collect();
    let lightest = weights.iter().copied().min().unwrap_or(1).max(1);
    let first = rank.div_ceil(lightest).min(weights.len());
    let int64s = |g: &mut GraphBuilder, dims: &[i64], values: Vec<i64>| {
        g.constant(TensorProto {
            dims: dims.to_vec(),
            data_type: data_type::INT64,
            int64_data: values,
            ..Default::default()
        })
    };
    let k = int64s(g, &[1], vec![first as i64]);
    let (top, at) = g.node2(
        "TopK",
        &[&all, &k],
        vec![
            int_attr("axis", 1),
            int_attr("largest", 1),
            int_attr("sorted", 1),
        ],
    );
    let w = int64s(
        g,
        &[weights.len() as i64],
        weights.iter().map(|&w| w as i64).collect(),
    );
    let w = g.node("Gather", &[&w, &at], vec![int_attr("axis", 0)]);
    let axis = int64s(g, &[], vec![1]);
    let rows = g.node("CumSum", &[&w, &axis], vec![]);
    let rank = int64s(g, &[], vec![rank as i64]);
    let short = g.node("Less", &[&rows, &rank], vec![]);
    let short = g.node(
        "Cast",
        &[&short],
        vec![int_attr("to", data_type::FLOAT as i64)],
    );
    // The first value whose rows reach `rank` (ArgMin takes the first of equal ones).
    let index = g.node(
        "ArgMin",
        &[&short],
        vec![int_attr("axis", 1), int_attr("keepdims", 1)],
    );
    g.node("GatherElements", &[&top, &index], vec![int_attr("axis", 1)])
}

/// The model around the graph `g`: versions, producer, and what it was trained on.
fn model_proto(file: &ModelFile, g: GraphBuilder) -> ModelProto {
    let encoding = &file.encoding;
    ModelProto {
        ir_version: IR_VERSION,
        opset_import: vec![
            OperatorSetIdProto {
                domain: String::new(),
                version: OPSET_ONNX,
            },
            OperatorSetIdProto {
                domain: ML.into(),
                version: OPSET_ML,
            },
        ],
        producer_name: "mlp".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: format!(
            "{} of '{}' from {}",
            file.task,
            encoding.target.name(),
            file.training.data_file
        ),
        graph: Some(GraphProto {
            node: g.nodes,
            name: "mlp".into(),
            initializer: g.initializers,
            doc_string: String::new(),
            input: g.inputs,
            output: g.outputs,
        }),
        metadata_props: vec![
            StringStringEntryProto {
                key: "target".into(),
                value: encoding.target.name().into(),
            },
            StringStringEntryProto {
                key: "data_sha256".into(),
                value: file.training.data_sha256.clone(),
            },
        ],
    }
}

/// One network on the encoded inputs `x`: its raw outputs' name. Weights are stored
/// (inputs, outputs), so Gemm computes x·W + b.
fn network(g: &mut GraphBuilder, x: &str, layers: &[LayerRecord]) -> String {
    let mut x = x.to_string();
    for layer in layers {
        x = match layer {
            // The identity at predict time.
            LayerRecord::Dropout { .. } => x,
            LayerRecord::Linear {
                inputs,
                outputs,
                weight,
                bias,
            } => {
                let w = g.floats(&[*inputs as i64, *outputs as i64], weight.clone());
                let b = g.floats(&[*outputs as i64], bias.clone());
                g.node("Gemm", &[&x, &w, &b], vec![])
            }
            LayerRecord::Relu => g.node("Relu", &[&x], vec![]),
            LayerRecord::Sigmoid => g.node("Sigmoid", &[&x], vec![]),
            LayerRecord::Tanh => g.node("Tanh", &[&x], vec![]),
        };
    }
    x
}

/// Nodes, constants and graph inputs/outputs, with generated value names.
#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    inputs: Vec<ValueInfoProto>,
    outputs: Vec<ValueInfoProto>,
    count: usize,
}

impl GraphBuilder {
    fn fresh(&mut self, what: &str) -> String {
        self.count += 1;
        // Column names are free text; generated names carry a prefix no CSV header uses.
        format!("mlp::{what}_{}", self.count)
    }

    /// An `ai.onnx` node with one output; returns the output's name.
    fn node(&mut self, op: &str, inputs: &[&str], attribute: Vec<AttributeProto>) -> String {
        self.node_in("", op, inputs, attribute)
    }

    fn node_in(
        &mut self,
        domain: &str,
        op: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> String {
        let output = self.fresh(&op.to_lowercase());
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            name: output.clone(),
            op_type: op.into(),
            domain: domain.into(),
            attribute,
        });
        output
    }

    /// An `ai.onnx` node whose output is a graph output called `output`.
    fn node_named(
        &mut self,
        op: &str,
        inputs: &[&str],
        output: &str,
        attribute: Vec<AttributeProto>,
    ) {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            name: output.into(),
            op_type: op.into(),
            domain: String::new(),
            attribute,
        });
    }

    fn constant(&mut self, mut tensor: TensorProto) -> String {
        let name = self.fresh("const");
        tensor.name = name.clone();
        self.initializers.push(tensor);
        name
    }

    fn floats(&mut self, dims: &[i64], values: Vec<f32>) -> String {
        self.constant(TensorProto {
            dims: dims.to_vec(),
            data_type: data_type::FLOAT,
            float_data: values,
            ..Default::default()
        })
    }

    fn doubles(&mut self, dims: &[i64], values: Vec<f64>) -> String {
        self.constant(TensorProto {
            dims: dims.to_vec(),
            data_type: data_type::DOUBLE,
            double_data: values,
            ..Default::default()
        })
    }

    fn strings(&mut self, dims: &[i64], values: &[&str]) -> String {
        self.constant(TensorProto {
            dims: dims.to_vec(),
            data_type: data_type::STRING,
            string_data: values.iter().map(|v| v.as_bytes().to_vec()).collect(),
            ..Default::default()
        })
    }

    /// `op` of `a` and the f64 constant `v`.
    fn with(&mut self, op: &str, a: &str, v: f64) -> String {
        self.with_attr(op, a, v, vec![])
    }

    fn with_attr(&mut self, op: &str, a: &str, v: f64, attribute: Vec<AttributeProto>) -> String {
        let v = self.doubles(&[], vec![v]);
        self.node(op, &[a, &v], attribute)
    }

    /// `text` with `suffix` after each cell.
    fn suffix(&mut self, text: &str, suffix: &str) -> String {
        let suffix = self.strings(&[1, 1], &[suffix]);
        self.node("StringConcat", &[text, &suffix], vec![])
    }

    /// Piece `i` of each cell of `text` split at `delimiter` (at whitespace for `None`),
    /// `[N, 1]`.
    fn piece(&mut self, text: &str, delimiter: Option<&str>, i: i64) -> String {
        let attributes = delimiter.map_or(vec![], |d| vec![string_attr("delimiter", d)]);
        let (pieces, _) = self.node2("StringSplit", &[text], attributes);
        let i = self.constant(TensorProto {
            dims: vec![],
            data_type: data_type::INT64,
            int64_data: vec![i],
            ..Default::default()
        });
        self.node("Gather", &[&pieces, &i], vec![int_attr("axis", 2)])
    }

    /// Piece `i` of each cell of `text` split at `delimiter`, as an f64 number `[N, 1]`.
    fn number(&mut self, text: &str, delimiter: &str, i: i64) -> String {
        let piece = self.piece(text, Some(delimiter), i);
        let double = int_attr("to", data_type::DOUBLE as i64);
        self.node("Cast", &[&piece], vec![double])
    }

    /// `Σ value·factor` of f64 tensors (a factor of 1 is not multiplied).
    fn sum_of_products(&mut self, terms: &[(&str, f64)]) -> String {
        let mut sum: Option<String> = None;
        for &(value, factor) in terms {
            let term = if factor == 1.0 {
                value.to_string()
            } else {
                let factor = self.doubles(&[], vec![factor]);
                self.node("Mul", &[value, &factor], vec![])
            };
            sum = Some(match sum {
                None => term,
                Some(sum) => self.node("Add", &[&sum, &term], vec![]),
            });
        }
        sum.expect("at least one term")
    }

    /// An `ai.onnx` node with two outputs.
    fn node2(
        &mut self,
        op: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> (String, String) {
        let (a, b) = (
            self.fresh(&op.to_lowercase()),
            self.fresh(&op.to_lowercase()),
        );
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![a.clone(), b.clone()],
            name: a.clone(),
            op_type: op.into(),
            domain: String::new(),
            attribute,
        });
        (a, b)
    }

    /// A graph input `[N, width]`.
    fn input(&mut self, name: &str, elem_type: i32, width: Option<i64>) {
        self.inputs.push(value_info(name, elem_type, width));
    }

    /// A graph output `[N, width]`, or `[N]` without a width.
    fn output(&mut self, name: &str, elem_type: i32, width: Option<i64>) {
        self.outputs.push(value_info(name, elem_type, width));
    }
}

fn value_info(name: &str, elem_type: i32, width: Option<i64>) -> ValueInfoProto {
    let mut dim = vec![Dimension {
        dim_value: None,
        dim_param: Some("N".into()),
    }];
    if let Some(w) = width {
        dim.push(Dimension {
            dim_value: Some(w),
            dim_param: None,
        });
    }
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type,
                shape: Some(TensorShapeProto { dim }),
            }),
        }),
    }
}

fn int_attr(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INT,
        i,
        ..Default::default()
    }
}

fn ints_attr(name: &str, ints: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::INTS,
        ints,
        ..Default::default()
    }
}

fn string_attr(name: &str, s: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRING,
        s: s.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn strings_attr(name: &str, strings: &[String]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attribute_type::STRINGS,
        strings: strings.iter().map(|s| s.as_bytes().to_vec()).collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tabular::model::Model;

    /// The corpus's control model: numbers `x`, `age`, text `plan` (3 categories),
    /// 5 → 2 ReLU → 2, classes `no`, `yes`.
    fn valid() -> ModelFile {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corpus/models/valid.json"
        );
        Model::load(path.as_ref()).unwrap().file
    }

    /// A value's name, element type and dimensions (`None` for the free batch size).
    type Described<'a> = (&'a str, (i32, Vec<Option<i64>>));

    fn shape(v: &ValueInfoProto) -> (i32, Vec<Option<i64>>) {
        let t = v.r#type.as_ref().unwrap().tensor_type.as_ref().unwrap();
        let dims = t.shape.as_ref().unwrap().dim.iter();
        (t.elem_type, dims.map(|d| d.dim_value).collect())
    }

    #[test]
    fn graph_has_one_input_per_column_and_the_classifier_outputs() {
        let file = valid();
        let model = ModelProto::decode(to_onnx(&file).as_slice()).unwrap();
        assert_eq!(model.ir_version, 9);
        let opsets: Vec<(&str, i64)> = model
            .opset_import
            .iter()
            .map(|o| (o.domain.as_str(), o.version))
            .collect();
        assert_eq!(opsets, [("", 20), ("ai.onnx.ml", 3)]);
        let graph = model.graph.unwrap();
        let inputs: Vec<Described> = graph
            .input
            .iter()
            .map(|v| (v.name.as_str(), shape(v)))
            .collect();
        assert_eq!(
            inputs,
            [
                ("x", (data_type::FLOAT, vec![None, Some(1)])),
                ("age", (data_type::FLOAT, vec![None, Some(1)])),
                ("plan", (data_type::STRING, vec![None, Some(1)])),
            ]
        );
        let outputs: Vec<Described> = graph
            .output
            .iter()
            .map(|v| (v.name.as_str(), shape(v)))
            .collect();
        assert_eq!(
            outputs,
            [
                ("label", (data_type::STRING, vec![None])),
                ("probabilities", (data_type::FLOAT, vec![None, Some(2)])),
            ]
        );
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        assert_eq!(
            ops,
            [
                "RegexFullMatch",
                "RegexFullMatch",
                "RegexFullMatch",
                "Concat",
                "Cast",
                "Concat",
                "Cast",
                "Sub",
                "Div",
                "Cast",
                "Gemm",
                "Relu",
                "Gemm",
                "Softmax",
                "ArgMax",
                "LabelEncoder"
            ]
        );
        // Each category's input: whether `plan` reads as it.
        for (node, category) in graph.node[..3].iter().zip(["basic", "plus", "pro"]) {
            assert_eq!(node.input, ["plan"]);
            let pattern = crate::data::cell::category_pattern(category).unwrap();
            assert_eq!(node.attribute, [string_attr("pattern", &pattern)]);
        }
        // The standardisation constants: the numeric features' mean and deviation, then 0
        // and 1 for the three one-hot inputs.
        let mean = graph
            .initializer
            .iter()
            .find(|t| t.name == graph.node[7].input[1])
            .unwrap();
        assert_eq!(mean.dims, [1, 5]);
        assert_eq!(mean.double_data, [0.46279166493332013, 47.0, 0.0, 0.0, 0.0]);
        // The first layer's weights as stored: (inputs, outputs).
        let w = graph
            .initializer
            .iter()
            .find(|t| t.name == graph.node[10].input[1])
            .unwrap();
        assert_eq!(w.dims, [5, 2]);
        let LayerRecord::Linear { weight, .. } = &file.layers[0] else {
            panic!("layer 0 is linear")
        };
        assert_eq!(&w.float_data, weight);
    }

    #[test]
    fn fill_values_replace_nan_and_empty_text_before_encoding() {
        let mut file = valid();
        for feature in &mut file.encoding.features {
            match feature {
                Feature::Numeric { name, fill, .. } if name == "age" => *fill = Some(45.5),
                Feature::Categorical { fill, .. } => *fill = Some("pro".into()),
                _ => {}
            }
        }
        let graph = ModelProto::decode(to_onnx(&file).as_slice())
            .unwrap()
            .graph
            .unwrap();
        let ops: Vec<&str> = graph.node.iter().map(|n| n.op_type.as_str()).collect();
        // `x` has no fill value and goes straight in; `age` and `plan` are filled.
        assert_eq!(
            ops[..10],
            [
                "IsNaN",
                "Where",
                "RegexFullMatch",
                "RegexFullMatch",
                "RegexFullMatch",
                "RegexFullMatch",
                "Or",
                "Concat",
                "Cast",
                "Concat"
            ]
        );
        let (is_nan, choose) = (&graph.node[0], &graph.node[1]);
        assert_eq!(is_nan.input, ["age"]);
        assert_eq!(choose.input[0], is_nan.output[0]);
        assert_eq!(choose.input[2], "age");
        let fill = graph
            .initializer
            .iter()
            .find(|t| t.name == choose.input[1])
            .unwrap();
        assert_eq!(
            (fill.dims.as_slice(), fill.float_data.as_slice()),
            (&[1, 1][..], &[45.5f32][..])
        );
        let concat = &graph.node[9];
        assert_eq!(
            concat.input[..3],
            [
                "x".to_string(),
                choose.output[0].clone(),
                graph.node[8].output[0].clone()
            ]
        );

        // A missing `plan` turns on the fill's input, `pro` (the third): the third
        // category's match or the missing one.
        let missing = &graph.node[2];
        let pattern = crate::data::cell::missing_pattern();
        assert_eq!(missing.attribute, [string_attr("pattern", &pattern)]);
        let or = &graph.node[6];
        assert_eq!(
            or.input,
            [graph.node[5].output[0].as_str(), &missing.output[0]]
        );
        let one_hot = &graph.node[7];
        let columns = [3, 4, 6].map(|i| graph.node[i].output[0].clone());
        assert_eq!(one_hot.input, columns);
        assert_eq!(graph.node[8].input, one_hot.output);
    }

    #[test]
    fn regression_graph_maps_back_to_target_units() {
        let mut file = valid();
        file.task = crate::tabular::encoding::Task::Regression;
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
            weight.truncate(2);
            bias.truncate(1);
        }
        let graph = ModelProto::decode(to_onnx(&file).as_slice())
            .unwrap()
            .graph
            .unwrap();
        let tail: Vec<&str> = graph
            .node
            .iter()
            .rev()
            .take(4)
            .map(|n| n.op_type.as_str())
            .collect();
        assert_eq!(tail, ["Cast", "Add", "Mul", "Cast"]);
        assert_eq!(graph.node.last().unwrap().output, ["prediction"]);
        let constant = |name: &str| {
            graph
                .initializer
                .iter()
                .find(|t| t.name == name)
                .unwrap()
                .double_data
                .clone()
        };
        let n = graph.node.len();
        assert_eq!(constant(&graph.node[n - 3].input[1]), [2.5]);
        assert_eq!(constant(&graph.node[n - 2].input[1]), [10.0]);
    }
}
