//! A model as one self-contained Rust source file: `const` weights, a typed input struct
//! named after the columns, and `predict` (plus `predict_proba` for classifiers); with text
//! columns, also `cell`, which reads a text cell as [`crate::data::cell`] does (generated
//! from its constants). The file needs no crate and compiles with
//! `rustc --crate-type lib -D warnings`.
//!
//! It computes what `mlp predict` computes, in the same order: standardisation in `f64`,
//! then the network in `f32`. The only functions it takes from `std` are `f32::exp` and
//! `f32::tanh`, each behind one small wrapper, so a `no_std` build swaps two lines for
//! `libm::expf` and `libm::tanhf` (and, with date columns, read by the generated `date`,
//! `f64::sin` and `f64::cos` for `libm::sin` and `libm::cos`). A date cell that is missing
//! or not a date (which `mlp predict` refuses) gives each part's fill, or NaN without one.

use std::collections::HashSet;
use std::fmt::Write;

use super::Interval;
use crate::data::cell;
use crate::tabular::calibration::Interval::{CvPlus, Split};
use crate::tabular::calibration::Residuals;
use crate::tabular::encoding::{DateInput, DatePart, Encoding, Feature, TargetEncoding};
use crate::tabular::model::{LayerRecord, ModelFile};

/// The Rust source for a validated model file.
pub fn to_rust(file: &ModelFile) -> String {
    to_rust_with(file, None)
}

/// [`to_rust`], a regression model's source with `predict_interval`, which gives the
/// `interval` around the prediction: `(lower, prediction, upper)`.
///
/// **Panics** if `interval` is given for a classifier.
pub fn to_rust_with(file: &ModelFile, interval: Option<Interval>) -> String {
    let encoding = &file.encoding;
    let fields = field_names(encoding.features.iter().map(Feature::name));
    let has_text = has_text(encoding);
    let input_type = if has_text { "Input<'_>" } else { "Input" };
    // Every network of a k-fold ensemble, the first one first.
    let networks: Vec<&[LayerRecord]> = std::iter::once(&file.layers[..])
        .chain(file.ensemble.iter().map(Vec::as_slice))
        .collect();

    let mut s = String::new();
    emit_header(&mut s, file);
    emit_input_struct(&mut s, encoding, &fields, has_text);
    emit_constants(&mut s, encoding, &networks);
    emit_encode(&mut s, encoding, &fields, input_type);
    let temperature = file.calibration.temperature;
    emit_networks(&mut s, &encoding.target, &networks, input_type, temperature);
    if let Some(interval) = interval {
        emit_interval(
            &mut s,
            &encoding.target,
            networks.len(),
            input_type,
            interval,
        );
    }
    emit_helpers(&mut s, &encoding.target, &networks);
    s
}

/// `predict_interval`: the prediction as `predict` computes it, in f64, and the interval's
/// ends (split-conformal around it, or CV+ from each network's value), each rounded to f32
/// (as `mlp predict --interval` does).
fn emit_interval(
    s: &mut String,
    target: &TargetEncoding,
    k: usize,
    input_type: &str,
    interval: Interval,
) {
    let TargetEncoding::Values { mean, std, .. } = target else {
        panic!("intervals are for regression");
    };
    // The mean of the networks' outputs, summed in order and divided in f32, as `predict`.
    let z = if k == 1 {
        "outputs(input)[0]".to_string()
    } else {
        format!(
            "{{\n        let mut z = 0.0f32;\n        \
             for out in outputs(input) {{\n            z += out[0];\n        }}\n        \
             z / {k}.0\n    }}"
        )
    };
    let _ = writeln!(
        s,
        "/// The level of `predict_interval`: the share of new rows whose value it holds.\n\
         pub const INTERVAL_LEVEL: f64 = {level};\n",
        level = f64_literal(interval.level),
    );
    let (std, mean) = (f64_literal(*std), f64_literal(*mean));
    match interval.interval {
        Split { half } => {
            let _ = writeln!(
                s,
                "/// The interval's half-width in the target's units: the conformal quantile of the\n\
                 /// held-out rows' absolute residuals at `INTERVAL_LEVEL`.\n\
                 pub const INTERVAL_HALF_WIDTH: f64 = {half};\n\n\
                 /// The prediction interval of a row at `INTERVAL_LEVEL`: `(lower, prediction, upper)`.\n\
                 pub fn predict_interval(input: &{input_type}) -> (f32, f32, f32) {{\n    \
                 let z = {z};\n    \
                 let v = z as f64 * {std} + {mean};\n    \
                 (\n        \
                 (v - INTERVAL_HALF_WIDTH) as f32,\n        \
                 v as f32,\n        \
                 (v + INTERVAL_HALF_WIDTH) as f32,\n    \
                 )\n}}\n",
                half = f64_literal(half),
            );
        }
        CvPlus {
            rank,
            folds,
            spread,
        } => emit_cv_plus(s, k, input_type, (&std, &mean), (rank, spread), &folds),
    }
}

/// Each network's residuals as a constant `RESIDUALS_{m}` (`scaled` to the ensemble).
fn emit_residuals(s: &mut String, folds: &[Residuals], scaled: bool) {
    let scaled = if scaled {
        " (scaled to the ensemble)"
    } else {
        ""
    };
    for (m, fold) in folds.iter().enumerate() {
        let values: Vec<String> = fold.absolute.iter().map(|&v| f64_literal(v)).collect();
        let _ = writeln!(
            s,
            "/// Network {m}'s held-out rows' absolute residuals{scaled}, sorted (kept value `i`\n\
             /// of `n` stands for the rows up to rank `⌈(i + 1)·rows / n⌉`).\n\
             const RESIDUALS_{m}: [f64; {}] = [{}];\n",
            values.len(),
            values.join(", "),
        );
    }
}

/// `predict_interval` with a CV+ interval ([`crate::tabular::calibration::Interval`]):
/// each network's residuals as constants, and the search `mlp` does, line for line.
fn emit_cv_plus(
    s: &mut String,
    k: usize,
    input_type: &str,
    (std, mean): (&str, &str),
    (rank, spread): (usize, f64),
    folds: &[Residuals],
) {
    assert_eq!(folds.len(), k, "one residual list per network");
    emit_residuals(s, folds, spread != 1.0);
    let rows: Vec<String> = folds.iter().map(|f| f.rows.to_string()).collect();
    let lists: Vec<String> = (0..k).map(|m| format!("&RESIDUALS_{m}")).collect();
    let _ = writeln!(
        s,
        "/// Each network's residuals, and the held-out rows they come from.\n\
         const FOLDS: [(&[f64], usize); {k}] = [{}];\n\n\
         /// CV+'s `t`: the lower end is the `t`-th smallest of `network(x) − residual`, the\n\
         /// upper end the `t`-th largest of `network(x) + residual`, over every held-out row\n\
         /// and the network that did not train on it.\n\
         const INTERVAL_RANK: usize = {rank};\n\n\
         /// The CV+ prediction interval of a row at `INTERVAL_LEVEL`:\n\
         /// `(lower, prediction, upper)`; it need not be symmetric around the prediction.\n\
         pub fn predict_interval(input: &{input_type}) -> (f32, f32, f32) {{\n    \
         let outs = outputs(input);\n    \
         let mut z = 0.0f32;\n    \
         let mut members = [0.0f64; {k}];\n    \
         for (m, out) in members.iter_mut().zip(outs) {{\n        \
         z += out[0];\n        \
         *m = out[0] as f64 * {std} + {mean};\n    \
         }}\n    \
         let v = (z / {k}.0) as f64 * {std} + {mean};\n    \
         {moved}\
         (\n        \
         (-cv_plus_end(&members, -1.0)) as f32,\n        \
         v as f32,\n        \
         cv_plus_end(&members, 1.0) as f32,\n    \
         )\n}}\n\n\
         /// The `INTERVAL_RANK`-th largest of `side·members[k] + r` over every residual `r`\n\
         /// of network `k`, each kept residual counting as the rows it stands for: for each\n\
         /// network, a binary search for its largest candidate with at least that many values\n\
         /// at or above it; the answer is the largest of those.\n\
         fn cv_plus_end(members: &[f64; {k}], side: f64) -> f64 {{\n    \
         let at_least = |c: f64| -> usize {{\n        \
         let mut count = 0;\n        \
         for (&(kept, rows), m) in FOLDS.iter().zip(members) {{\n            \
         let s = side * m;\n            \
         let first = kept.partition_point(|&r| s + r < c);\n            \
         count += rows - if first == 0 {{ 0 }} else {{ rank(first - 1, rows, kept.len()) }};\n        \
         }}\n        \
         count\n    \
         }};\n    \
         let mut best = f64::NEG_INFINITY;\n    \
         for (&(kept, _), m) in FOLDS.iter().zip(members) {{\n        \
         let s = side * m;\n        \
         let last = kept.partition_point(|&r| at_least(s + r) >= INTERVAL_RANK);\n        \
         if last > 0 {{\n            \
         best = best.max(s + kept[last - 1]);\n        \
         }}\n    \
         }}\n    \
         best\n}}\n\n\
         /// The rank (from 1) of kept residual `i` (from 0) of `kept` out of `rows`.\n\
         fn rank(i: usize, rows: usize, kept: usize) -> usize {{\n    \
         ((i as u128 + 1) * rows as u128).div_ceil(kept as u128) as usize\n}}\n",
        rows.iter()
            .zip(&lists)
            .map(|(r, l)| format!("({l}, {r})"))
            .collect::<Vec<_>>()
            .join(", "),
        moved = move_members(spread),
    );
}

/// The lines of `predict_interval` that move each network towards the prediction `v` by
/// `spread` (scaled to the ensemble); none for plain CV+ (`spread` 1).
fn move_members(spread: f64) -> String {
    if spread == 1.0 {
        return String::new();
    }
    format!(
        "// Scaled to the ensemble: each network moved towards the prediction.\n    \
         for m in members.iter_mut() {{\n        \
         *m = v + {} * (*m - v);\n    \
         }}\n    ",
        f64_literal(spread)
    )
}

/// Whether the model has a text feature (and the file `cell` and a lifetime on `Input`):
/// a category or a date.
fn has_text(encoding: &Encoding) -> bool {
    (encoding.features.iter())
        .any(|f| matches!(f, Feature::Categorical { .. } | Feature::Date { .. }))
}

/// Whether the model has a date feature (and the file `date`).
fn has_dates(encoding: &Encoding) -> bool {
    (encoding.features.iter()).any(|f| matches!(f, Feature::Date { .. }))
}

/// The name of network `m`'s linear layer `l`'s constants among `k` networks: `W{m}_{l}`
/// in an ensemble, plain `W{l}` for a single network.
fn layer_id(k: usize, m: usize, l: usize) -> String {
    if k == 1 {
        format!("{l}")
    } else {
        format!("{m}_{l}")
    }
}

/// The file's doc comment: what it predicts and how.
fn emit_header(s: &mut String, file: &ModelFile) {
    let encoding = &file.encoding;
    let task = match &encoding.target {
        TargetEncoding::Classes { labels, .. } => format!("{} classes", labels.len()),
        TargetEncoding::Values { .. } => "a number".to_string(),
    };
    // `writeln!` into a String cannot fail.
    let _ = writeln!(
        s,
        "//! Predicts '{target}' ({task}), exported by mlp {version} from a model trained on \
         {data}.\n//!\n\
         //! Generated code: no dependencies, weights in `const` arrays. It computes what \
         `mlp predict`\n//! computes (inputs standardised in f64, the network in f32). A \
         missing cell (`None`)\n//! becomes the column's fill value, as `mlp predict` fills it. \
         Text that is not one of a\n//! column's training categories encodes as all zeros.{cells}\n",
        target = escape_comment(encoding.target.name()),
        version = env!("CARGO_PKG_VERSION"),
        data = escape_comment(&file.training.data_file),
        cells = if has_text(encoding) {
            " Text cells are\n//! read as `mlp` reads them: see `cell`."
        } else {
            ""
        },
    );
}

/// The input struct: one field per feature column.
fn emit_input_struct(s: &mut String, encoding: &Encoding, fields: &[String], has_text: bool) {
    let lifetime = if has_text { "<'a>" } else { "" };
    let _ = writeln!(s, "/// One row: the feature columns of the training file.");
    let _ = writeln!(s, "#[derive(Debug, Clone, Copy, PartialEq)]");
    let _ = writeln!(s, "pub struct Input{lifetime} {{");
    for (feature, field) in encoding.features.iter().zip(fields) {
        let (kind, ty, fill) = match feature {
            Feature::Numeric { fill, .. }
            | Feature::Robust { fill, .. }
            | Feature::Piecewise { fill, .. } => ("number", "f32", fill.map(|f| format!("{f:?}"))),
            Feature::Categorical { fill, .. } => {
                ("text", "&'a str", fill.as_ref().map(|f| format!("{f:?}")))
            }
            Feature::Date { parts, .. } => (
                "a date",
                "&'a str",
                (parts.iter().any(|p| fill_of(&p.scale).is_some()))
                    .then(|| "the training medians of its parts".to_string()),
            ),
        };
        let blank = if kind == "number" {
            "NaN is a missing cell"
        } else if kind == "a date" {
            "a text `cell` reads as missing, or that `date` cannot read, is a missing cell"
        } else {
            "a text `cell` reads as missing is a missing cell"
        };
        let (ty, missing) = match fill {
            Some(fill) => (
                format!("Option<{ty}>"),
                format!("; `None` or {blank} and counts as {fill}"),
            ),
            None => (ty.to_string(), String::new()),
        };
        let _ = writeln!(
            s,
            "    /// Column `{}` ({kind}{}).\n    pub {field}: {ty},",
            escape_comment(feature.name()),
            escape_comment(&missing),
        );
    }
    let _ = writeln!(s, "}}\n");
}

/// `INPUTS`, every network's weights and biases, and (for a classifier) `CLASSES`.
fn emit_constants(s: &mut String, encoding: &Encoding, networks: &[&[LayerRecord]]) {
    let width = encoding.input_width();
    let _ = writeln!(
        s,
        "/// Network inputs after encoding.\npub const INPUTS: usize = {width};"
    );
    let k = networks.len();
    for (m, layers) in networks.iter().enumerate() {
        let mut linear = 0;
        let of = if k == 1 {
            String::new()
        } else {
            format!(" of network {m}")
        };
        for layer in layers.iter() {
            if let LayerRecord::Linear {
                inputs,
                outputs,
                weight,
                bias,
            } = layer
            {
                let id = layer_id(k, m, linear);
                let _ = writeln!(
                    s,
                    "\n/// Layer {linear}{of} weights, ({inputs} inputs, {outputs} outputs), row-major."
                );
                let _ = writeln!(
                    s,
                    "const W{id}: [f32; {}] = {};",
                    weight.len(),
                    f32s(weight)
                );
                let _ = writeln!(s, "/// Layer {linear}{of} biases.");
                let _ = writeln!(s, "const B{id}: [f32; {}] = {};", bias.len(), f32s(bias));
                linear += 1;
            }
        }
    }
    if let TargetEncoding::Classes { labels, .. } = &encoding.target {
        let quoted: Vec<String> = labels.iter().map(|l| format!("{l:?}")).collect();
        let _ = writeln!(
            s,
            "\n/// The classes, in the order of `predict_proba`.\npub const CLASSES: [&str; {}] = [{}];",
            labels.len(),
            quoted.join(", ")
        );
    }
}

/// `encode`: a row's network inputs, feature by feature (after `cell`, for text).
fn emit_encode(s: &mut String, encoding: &Encoding, fields: &[String], input_type: &str) {
    if has_text(encoding) {
        emit_cell(s);
    }
    if has_dates(encoding) {
        s.push_str(DATE_SOURCE);
    }
    let _ = writeln!(
        s,
        "\n/// The network inputs for a row: numbers standardised, texts one-hot encoded.\n\
         pub fn encode(input: &{input_type}) -> [f32; INPUTS] {{\n    \
         let mut x = [0.0f32; INPUTS];"
    );
    let mut offset = 0;
    for (feature, field) in encoding.features.iter().zip(fields) {
        match feature {
            Feature::Numeric { .. } | Feature::Piecewise { .. } => {
                emit_encode_number(s, feature, field, offset)
            }
            Feature::Date { parts, .. } => emit_encode_date(s, parts, field, offset),
            Feature::Robust { .. } => unreachable!("refused by check_exportable"),
            Feature::Categorical {
                categories, fill, ..
            } => emit_encode_text(s, categories, fill.as_deref(), field, offset),
        }
        offset += feature.width();
    }
    let _ = writeln!(s, "    x\n}}\n");
}

/// `cell`, which reads a text cell as `mlp` does, from the constants of
/// [`crate::data::cell`].
fn emit_cell(s: &mut String) {
    // Eight a line, as `f32s` writes numbers.
    let mut whitespace = String::new();
    for (i, c) in cell::WHITESPACE.iter().enumerate() {
        whitespace.push_str(if i % 8 == 0 { "\n    " } else { " " });
        let _ = write!(whitespace, "'\\u{{{:x}}}',", *c as u32);
    }
    let tokens: Vec<String> = cell::MISSING_TOKENS
        .iter()
        .map(|t| format!("{t:?}"))
        .collect();
    let _ = writeln!(
        s,
        "\n/// What is trimmed from both ends of a cell: Unicode `White_Space`.\n\
         const WHITESPACE: [char; {}] = [{}\n];\n\
         /// What a cell is missing as, in any ASCII case, besides empty.\n\
         const MISSING: [&str; {}] = [{}];\n\n\
         /// A text cell as `mlp` reads it: without `WHITESPACE` at its ends, and `None` if it \
         is\n/// then empty or one of `MISSING` (in any ASCII case).\n\
         pub fn cell(text: &str) -> Option<&str> {{\n    \
         let text = text.trim_matches(WHITESPACE);\n    \
         let missing = text.is_empty() || MISSING.iter().any(|m| text.eq_ignore_ascii_case(m));\n    \
         (!missing).then_some(text)\n}}",
        cell::WHITESPACE.len(),
        whitespace,
        tokens.len(),
        tokens.join(", ")
    );
}

/// A number feature's fill value.
fn fill_of(feature: &Feature) -> Option<f32> {
    match feature {
        Feature::Numeric { fill, .. }
        | Feature::Robust { fill, .. }
        | Feature::Piecewise { fill, .. } => *fill,
        Feature::Date { .. } | Feature::Categorical { .. } => None,
    }
}

/// `date`, which reads a date cell as [`crate::data::cell::parse_date`] does and computes
/// every [`DatePart`] as [`DatePart::value`] does, in the order of [`DatePart::ALL`]
/// (`tests/export.rs` checks both against `mlp predict`).
const DATE_SOURCE: &str = r#"
/// The number that ASCII digits `b` write, or `None` if any byte is not a digit.
fn digits(b: &[u8]) -> Option<u32> {
    let mut n = 0;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        n = n * 10 + (c - b'0') as u32;
    }
    Some(n)
}

/// Days from 1970-01-01 to a date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = year - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
}

/// The numbers of a date cell as `mlp` computes them, or `None` if the cell (after `cell`)
/// is not `YYYY-MM-DD`, optionally followed by `T` or a space and `HH:MM[:SS[.fff]]`, then
/// optionally `Z` or `+HH:MM`/`-HH:MM`: days since 1970-01-01 UTC, year, month, day of the
/// year, weekday (Monday 0), hour, then sine and cosine of the day of the year, the
/// weekday and the hour.
pub fn date(text: &str) -> Option<[f64; 12]> {
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let year = digits(&b[0..4])? as i64;
    let (month, day) = (digits(&b[5..7])? as i64, digits(&b[8..10])? as i64);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let lengths = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&month) || day < 1 || day > lengths[month as usize - 1] {
        return None;
    }
    let (mut seconds, mut offset) = (0.0f64, 0i64);
    if b.len() > 10 {
        if b[10] != b'T' && b[10] != b' ' {
            return None;
        }
        let t = &b[11..];
        if t.len() < 5 || t[2] != b':' {
            return None;
        }
        let (hour, minute) = (digits(&t[0..2])?, digits(&t[3..5])?);
        if hour > 23 || minute > 59 {
            return None;
        }
        seconds = (hour * 3600 + minute * 60) as f64;
        let mut rest = &t[5..];
        if rest.len() >= 3 && rest[0] == b':' {
            let second = digits(&rest[1..3])?;
            if second > 59 {
                return None;
            }
            seconds += second as f64;
            rest = &rest[3..];
            if rest.first() == Some(&b'.') {
                let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if n == 0 {
                    return None;
                }
                let fraction: f64 = core::str::from_utf8(&rest[..=n]).ok()?.parse().ok()?;
                seconds += fraction;
                rest = &rest[n + 1..];
            }
        }
        offset = match rest {
            [] | [b'Z'] => 0,
            [sign, h1, h2, b':', m1, m2] if *sign == b'+' || *sign == b'-' => {
                let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
                if h > 23 || m > 59 {
                    return None;
                }
                let minutes = (h * 60 + m) as i64;
                if *sign == b'-' { -minutes } else { minutes }
            }
            _ => return None,
        };
    }
    let days = days_from_civil(year, month, day);
    let day_of_year = (days - days_from_civil(year, 1, 1) + 1) as f64;
    let weekday = (days + 3).rem_euclid(7) as f64;
    let hour = seconds / 3600.0;
    let turn = core::f64::consts::TAU;
    Some([
        days as f64 + (seconds - offset as f64 * 60.0) / 86_400.0,
        year as f64,
        month as f64,
        day_of_year,
        weekday,
        hour,
        sin(turn * (day_of_year - 1.0) / 365.25),
        cos(turn * (day_of_year - 1.0) / 365.25),
        sin(turn * weekday / 7.0),
        cos(turn * weekday / 7.0),
        sin(turn * hour / 24.0),
        cos(turn * hour / 24.0),
    ])
}

/// The uses of `std` for dates: under `no_std`, return `libm::sin(x)` and `libm::cos(x)`.
fn sin(x: f64) -> f64 {
    x.sin()
}
fn cos(x: f64) -> f64 {
    x.cos()
}
"#;

/// The statements of `encode` for a date feature at input `offset`: the cell read by
/// `date`, then each part, filled where the cell is missing (or not a date), scaled.
fn emit_encode_date(s: &mut String, parts: &[DateInput], field: &str, offset: usize) {
    let optional = parts.iter().any(|p| fill_of(&p.scale).is_some());
    let read = if optional {
        format!("input.{field}.and_then(cell)")
    } else {
        format!("cell(input.{field})")
    };
    let _ = writeln!(s, "    let d = {read}.and_then(date);");
    let mut at = offset;
    for DateInput { part, scale } in parts {
        let index = DatePart::ALL
            .iter()
            .position(|p| p == part)
            .expect("listed");
        let missing = fill_of(scale).map_or("f32::NAN".to_string(), |f| format!("{f:?}"));
        let _ = writeln!(
            s,
            "    let v = d.map_or({missing}, |d| d[{index}] as f32); // {}",
            part.label()
        );
        emit_scaled(s, scale, "v", at);
        at += scale.width();
    }
}

/// The statements of `encode` for a numeric feature at input `offset`: its fill, its
/// standardised value and (piecewise) its quantile bins.
fn emit_encode_number(s: &mut String, feature: &Feature, field: &str, offset: usize) {
    let (Feature::Numeric { fill, .. } | Feature::Piecewise { fill, .. }) = feature else {
        unreachable!("called for numbers")
    };
    let value = match fill {
        Some(fill) => {
            let _ = writeln!(
                s,
                "    let v = match input.{field} {{\n        \
                 Some(v) if !v.is_nan() => v,\n        _ => {fill:?},\n    }};"
            );
            "v".to_string()
        }
        None => format!("input.{field}"),
    };
    emit_scaled(s, feature, &value, offset);
}

/// The statements of `encode` that scale the number `value` as `feature` (a
/// [`Feature::Numeric`] or [`Feature::Piecewise`]) into input `offset` (and its bins after).
fn emit_scaled(s: &mut String, feature: &Feature, value: &str, offset: usize) {
    let (Feature::Numeric { mean, std, .. } | Feature::Piecewise { mean, std, .. }) = feature
    else {
        unreachable!("refused by check_exportable")
    };
    let _ = writeln!(
        s,
        "    x[{offset}] = (({value} as f64 - {}) / {}) as f32;",
        f64_literal(*mean),
        f64_literal(*std)
    );
    if let Feature::Piecewise { edges, .. } = feature
        && !edges.is_empty()
    {
        // One input per quantile bin: how far into [lo, hi] the value is.
        let edges: Vec<String> = edges.iter().map(|e| f64_literal(*e)).collect();
        let _ = writeln!(
            s,
            "    let edges = [{}];\n    \
             for (t, bin) in edges.windows(2).enumerate() {{\n        \
             x[{} + t] = (({value} as f64 - bin[0]) / (bin[1] - bin[0])).clamp(0.0, 1.0) as f32;\n    \
             }}",
            edges.join(", "),
            offset + 1
        );
    }
}

/// The statements of `encode` for a text feature at input `offset`: its fill, then one
/// arm per category.
fn emit_encode_text(
    s: &mut String,
    categories: &[String],
    fill: Option<&str>,
    field: &str,
    offset: usize,
) {
    // The cell as `cell` reads it, a missing one filled; without a fill, `None` (missing)
    // matches no category.
    let value = match fill {
        Some(fill) => {
            let _ = writeln!(
                s,
                "    let text = input.{field}.and_then(cell).unwrap_or({fill:?});"
            );
            "text".to_string()
        }
        None => format!("cell(input.{field})"),
    };
    let _ = writeln!(s, "    match {value} {{");
    for (i, c) in categories.iter().enumerate() {
        let arm = if fill.is_some() {
            format!("{c:?}")
        } else {
            format!("Some({c:?})")
        };
        let _ = writeln!(s, "        {arm} => x[{}] = 1.0,", offset + i);
    }
    let _ = writeln!(s, "        _ => {{}}\n    }}");
}

/// `outputs` and `predict` (and `predict_proba`): one network's, or every network's and
/// their average.
fn emit_networks(
    s: &mut String,
    target: &TargetEncoding,
    networks: &[&[LayerRecord]],
    input_type: &str,
    temperature: f32,
) {
    if temperature != 1.0 {
        let _ = writeln!(
            s,
            "/// The calibration temperature: every network's outputs are divided by it before\n\
             /// the softmax (fitted on the held-out rows; it changes no predicted class).\n\
             pub const TEMPERATURE: f32 = {};\n",
            f32_literal(temperature)
        );
    }
    let softmax_arg = if temperature != 1.0 {
        "(z - max) / TEMPERATURE"
    } else {
        "z - max"
    };
    let outputs = target.width();
    let k = networks.len();
    if k == 1 {
        let _ = writeln!(
            s,
            "/// The network's raw outputs for a row.\n\
             pub fn outputs(input: &{input_type}) -> [f32; {outputs}] {{\n    \
             let x = encode(input);"
        );
        network_body(s, networks[0], |l| layer_id(k, 0, l));
        single_predict(s, target, input_type, softmax_arg);
    } else {
        for (m, layers) in networks.iter().enumerate() {
            let _ = writeln!(
                s,
                "/// Network {m}'s raw outputs for encoded inputs.\n\
                 fn network{m}(x: [f32; INPUTS]) -> [f32; {outputs}] {{"
            );
            network_body(s, layers, |l| layer_id(k, m, l));
        }
        let calls: Vec<String> = (0..k).map(|m| format!("network{m}(x)")).collect();
        let _ = writeln!(
            s,
            "/// Every network's raw outputs for a row: the model is an ensemble of {k} networks\n\
             /// (one per fold), and predicts the average of their outputs.\n\
             pub fn outputs(input: &{input_type}) -> [[f32; {outputs}]; {k}] {{\n    \
             let x = encode(input);\n    [{}]\n}}\n",
            calls.join(", ")
        );
        ensemble_predict(s, target, input_type, k, softmax_arg);
    }
}

/// `linear`, and only those of `sigmoid`, `exp` and `tanh` the networks use, so that
/// `-D warnings` finds nothing unused.
fn emit_helpers(s: &mut String, target: &TargetEncoding, networks: &[&[LayerRecord]]) {
    let _ = writeln!(
        s,
        "/// `out = x·W + b` with `W` stored (inputs, outputs), row-major.\n\
         fn linear(x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {{\n    \
         out.copy_from_slice(b);\n    \
         for (xi, row) in x.iter().zip(w.chunks_exact(out.len())) {{\n        \
         for (o, &wij) in out.iter_mut().zip(row) {{\n            *o += xi * wij;\n        }}\n    }}\n}}"
    );
    let uses = |f: fn(&LayerRecord) -> bool| networks.iter().any(|n| n.iter().any(f));
    let needs_exp = matches!(target, TargetEncoding::Classes { .. })
        || uses(|l| matches!(l, LayerRecord::Sigmoid));
    if uses(|l| matches!(l, LayerRecord::Sigmoid)) {
        let _ = writeln!(
            s,
            "\n/// `1 / (1 + e^-x)`, written so that neither branch overflows.\n\
             fn sigmoid(x: f32) -> f32 {{\n    \
             if x >= 0.0 {{\n        1.0 / (1.0 + exp(-x))\n    }} else {{\n        \
             let e = exp(x);\n        e / (1.0 + e)\n    }}\n}}"
        );
    }
    if needs_exp {
        let _ = writeln!(
            s,
            "\n/// The one use of `std` for `exp`: under `no_std`, return `libm::expf(x)`.\n\
             fn exp(x: f32) -> f32 {{\n    x.exp()\n}}"
        );
    }
    if uses(|l| matches!(l, LayerRecord::Tanh)) {
        let _ = writeln!(
            s,
            "\n/// The one use of `std` for `tanh`: under `no_std`, return `libm::tanhf(x)`.\n\
             fn tanh(x: f32) -> f32 {{\n    x.tanh()\n}}"
        );
    }
}

/// The statements of one network's forward pass, from `x` (its encoded inputs) to the
/// returned outputs, and the closing brace; `name(l)` names linear layer l's constants.
fn network_body(s: &mut String, layers: &[LayerRecord], name: impl Fn(usize) -> String) {
    let (mut current, mut linear) = ("x".to_string(), 0);
    for layer in layers {
        match layer {
            LayerRecord::Linear { outputs, .. } => {
                let next = format!("h{linear}");
                let id = name(linear);
                let _ = writeln!(
                    s,
                    "    let mut {next} = [0.0f32; {outputs}];\n    \
                     linear(&{current}, &W{id}, &B{id}, &mut {next});"
                );
                current = next;
                linear += 1;
            }
            LayerRecord::Relu => {
                let _ = writeln!(s, "    {current}.iter_mut().for_each(|v| *v = v.max(0.0));");
            }
            // The identity at predict time.
            LayerRecord::Dropout { .. } => {}
            LayerRecord::Sigmoid => {
                let _ = writeln!(
                    s,
                    "    {current}.iter_mut().for_each(|v| *v = sigmoid(*v));"
                );
            }
            LayerRecord::Tanh => {
                let _ = writeln!(s, "    {current}.iter_mut().for_each(|v| *v = tanh(*v));");
            }
        }
    }
    let _ = writeln!(s, "    {current}\n}}\n");
}

/// `predict` (and `predict_proba`) of a single network.
fn single_predict(s: &mut String, target: &TargetEncoding, input_type: &str, softmax_arg: &str) {
    match target {
        TargetEncoding::Classes { labels, .. } => {
            let c = labels.len();
            let _ = writeln!(
                s,
                "/// The most probable class of a row.\n\
                 pub fn predict(input: &{input_type}) -> &'static str {{\n    \
                 let z = outputs(input);\n    \
                 let mut best = 0;\n    \
                 for (i, &v) in z.iter().enumerate() {{\n        \
                 if v > z[best] {{\n            best = i;\n        }}\n    }}\n    \
                 CLASSES[best]\n}}\n\n\
                 /// The probability of each class (in the order of `CLASSES`) for a row.\n\
                 pub fn predict_proba(input: &{input_type}) -> [f32; {c}] {{\n    \
                 let z = outputs(input);\n    \
                 let max = z.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));\n    \
                 let mut p = [0.0f32; {c}];\n    \
                 let mut sum = 0.0f32;\n    \
                 for (p, &z) in p.iter_mut().zip(&z) {{\n        \
                 *p = exp({softmax_arg});\n        sum += *p;\n    }}\n    \
                 let inv = 1.0 / sum;\n    \
                 p.iter_mut().for_each(|p| *p *= inv);\n    \
                 p\n}}\n"
            );
        }
        TargetEncoding::Values { mean, std, .. } => {
            let _ = writeln!(
                s,
                "/// The predicted value of a row, in the target's units.\n\
                 pub fn predict(input: &{input_type}) -> f32 {{\n    \
                 (outputs(input)[0] as f64 * {} + {}) as f32\n}}\n",
                f64_literal(*std),
                f64_literal(*mean)
            );
        }
    }
}

/// `predict` (and `predict_proba`) of an ensemble of `k` networks: the mean of their
/// softmax probabilities (the class is its argmax), or of their raw outputs.
fn ensemble_predict(
    s: &mut String,
    target: &TargetEncoding,
    input_type: &str,
    k: usize,
    softmax_arg: &str,
) {
    match target {
        TargetEncoding::Classes { labels, .. } => {
            let c = labels.len();
            let _ = writeln!(
                s,
                "/// The most probable class of a row: the largest mean probability.\n\
                 pub fn predict(input: &{input_type}) -> &'static str {{\n    \
                 let p = predict_proba(input);\n    \
                 let mut best = 0;\n    \
                 for (i, &v) in p.iter().enumerate() {{\n        \
                 if v > p[best] {{\n            best = i;\n        }}\n    }}\n    \
                 CLASSES[best]\n}}\n\n\
                 /// The probability of each class (in the order of `CLASSES`) for a row: the\n\
                 /// mean over the networks of their softmax probabilities.\n\
                 pub fn predict_proba(input: &{input_type}) -> [f32; {c}] {{\n    \
                 let mut mean = [0.0f32; {c}];\n    \
                 for z in outputs(input) {{\n        \
                 let max = z.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v));\n        \
                 let mut p = [0.0f32; {c}];\n        \
                 let mut sum = 0.0f32;\n        \
                 for (p, &z) in p.iter_mut().zip(&z) {{\n            \
                 *p = exp({softmax_arg});\n            sum += *p;\n        }}\n        \
                 let inv = 1.0 / sum;\n        \
                 for (m, p) in mean.iter_mut().zip(p) {{\n            \
                 *m += p * inv;\n        }}\n    }}\n    \
                 mean.iter_mut().for_each(|m| *m /= {k}.0);\n    \
                 mean\n}}\n"
            );
        }
        TargetEncoding::Values { mean, std, .. } => {
            let _ = writeln!(
                s,
                "/// The predicted value of a row, in the target's units: the mean of the\n\
                 /// networks' outputs.\n\
                 pub fn predict(input: &{input_type}) -> f32 {{\n    \
                 let mut z = 0.0f32;\n    \
                 for out in outputs(input) {{\n        z += out[0];\n    }}\n    \
                 ((z / {k}.0) as f64 * {} + {}) as f32\n}}\n",
                f64_literal(*std),
                f64_literal(*mean)
            );
        }
    }
}

/// Rust field names for column names: lower snake case, never a keyword, never two alike.
///
/// `"Sepal Length (cm)"` → `sepal_length_cm`, `"2nd"` → `c_2nd`, `"type"` → `type_`.
pub fn field_names<'a>(columns: impl Iterator<Item = &'a str>) -> Vec<String> {
    const KEYWORDS: &[&str] = &[
        "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
        "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
        "move", "mut", "pub", "ref", "return", "self", "static", "struct", "super", "trait",
        "true", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do",
        "final", "macro", "override", "priv", "try", "typeof", "unsized", "virtual", "yield",
    ];
    let mut used = HashSet::new();
    columns
        .map(|column| {
            let mut name = String::new();
            for c in column.chars() {
                if c.is_ascii_alphanumeric() {
                    // An upper-case letter after a lower-case one starts a word: camelCase.
                    if c.is_ascii_uppercase()
                        && name.chars().last().is_some_and(|p| p.is_ascii_lowercase())
                    {
                        name.push('_');
                    }
                    name.push(c.to_ascii_lowercase());
                } else if !name.is_empty() && !name.ends_with('_') {
                    name.push('_');
                }
            }
            while name.ends_with('_') {
                name.pop();
            }
            if name.is_empty() {
                name = "column".into();
            } else if name.starts_with(|c: char| c.is_ascii_digit()) {
                name.insert_str(0, "c_");
            }
            // `type_` for `type`: a raw identifier (`r#type`) would do for most keywords, but
            // not for `self`, `Self`, `super` or `crate`.
            let keyword = KEYWORDS.contains(&name.as_str());
            let base = name.clone();
            if keyword {
                name.push('_');
            }
            // `type_2`, not `type__2`: a double underscore is not snake case to rustc.
            let mut n = 2;
            while !used.insert(name.clone()) {
                name = format!("{base}_{n}");
                n += 1;
            }
            name
        })
        .collect()
}

/// A `[f32; N]` literal, eight numbers a line; `{:?}` prints the shortest text that reads
/// back as the same `f32`.
fn f32s(values: &[f32]) -> String {
    let mut s = String::from("[");
    for (i, v) in values.iter().enumerate() {
        s.push_str(if i % 8 == 0 { "\n    " } else { " " });
        let _ = write!(s, "{v:?},");
    }
    s.push_str("\n]");
    s
}

fn f64_literal(v: f64) -> String {
    format!("{v:?}")
}

/// `v` as a Rust literal that reads back as the same `f32`.
fn f32_literal(v: f32) -> String {
    format!("{v:?}")
}

/// Column names go into doc comments; a newline there would end the comment, and rustc
/// refuses text-direction controls (U+202A-202E, U+2066-2069) in comments.
fn escape_comment(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\n' | '\r' => ' ',
            '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => '?',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_are_snake_case_identifiers() {
        let columns = [
            "Sepal Length (cm)",
            "2nd",
            "type",
            "petalWidth",
            "a-b",
            "A_B",
            "",
            "€",
            "self",
            "type_",
            "Self",
            "super",
            "type_2",
        ];
        assert_eq!(
            field_names(columns.into_iter()),
            [
                "sepal_length_cm",
                "c_2nd",
                "type_",
                "petal_width",
                "a_b",
                "a_b_2",
                "column",
                "column_2",
                "self_",
                "type_2",
                "self_2",
                "super_",
                "type_2_2",
            ]
        );
    }

    #[test]
    fn columns_with_fill_values_are_options_filled_in_encode() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corpus/models/valid.json"
        );
        let mut file = crate::tabular::model::Model::load(path.as_ref())
            .unwrap()
            .file;
        for feature in &mut file.encoding.features {
            match feature {
                Feature::Numeric { name, fill, .. } if name == "age" => *fill = Some(45.5),
                Feature::Categorical { fill, .. } => *fill = Some("pro".into()),
                _ => {}
            }
        }
        let source = to_rust(&file);
        // `x` has no fill value: a plain number, used as it is.
        assert!(source.contains("    pub x: f32,\n"), "{source}");
        assert!(
            source.contains("    x[0] = ((input.x as f64 - "),
            "{source}"
        );
        assert!(
            source.contains(
                "    /// Column `age` (number; `None` or NaN is a missing cell and counts as \
                 45.5).\n    pub age: Option<f32>,\n"
            ),
            "{source}"
        );
        assert!(
            source.contains(
                "    let v = match input.age {\n        Some(v) if !v.is_nan() => v,\n        \
                 _ => 45.5,\n    };\n    x[1] = ((v as f64 - 47.0) / "
            ),
            "{source}"
        );
        assert!(
            source.contains("    pub plan: Option<&'a str>,\n"),
            "{source}"
        );
        assert!(
            source.contains(
                "    let text = input.plan.and_then(cell).unwrap_or(\"pro\");\n    \
                 match text {\n        \"basic\" => x[2] = 1.0,"
            ),
            "{source}"
        );
    }

    #[test]
    fn text_is_read_with_a_cell_function_made_from_the_readers_constants() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/corpus/models/valid.json"
        );
        // No fill values: a missing `plan` matches no category.
        let file = crate::tabular::model::Model::load(path.as_ref())
            .unwrap()
            .file;
        let source = to_rust(&file);
        assert!(
            source.contains(
                "    match cell(input.plan) {\n        Some(\"basic\") => x[2] = 1.0,\n        \
                 Some(\"plus\") => x[3] = 1.0,\n        Some(\"pro\") => x[4] = 1.0,\n        \
                 _ => {}\n    }\n"
            ),
            "{source}"
        );
        assert!(
            source.contains(
                "const WHITESPACE: [char; 25] = [\n    \
                 '\\u{9}', '\\u{a}', '\\u{b}', '\\u{c}', '\\u{d}', '\\u{20}', '\\u{85}', '\\u{a0}',\n    \
                 '\\u{1680}', '\\u{2000}', "
            ),
            "{source}"
        );
        assert!(
            source.contains(
                "const MISSING: [&str; 5] = [\"?\", \"NA\", \"N/A\", \"NaN\", \"null\"];\n"
            ),
            "{source}"
        );
        assert!(
            source.contains(
                "pub fn cell(text: &str) -> Option<&str> {\n    \
                 let text = text.trim_matches(WHITESPACE);\n"
            ),
            "{source}"
        );
    }

    #[test]
    fn float_literals_read_back_exactly() {
        assert_eq!(
            f32s(&[0.1, -1e-7, 3.0, f32::MAX]),
            "[\n    0.1, -1e-7, 3.0, 3.4028235e38,\n]"
        );
    }
}
