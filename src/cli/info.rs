//! `mlp info`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mlp::Error;
use mlp::inspect::summary::summary;
use mlp::tabular::model::Model;
use serde_json::Value;

use super::out::outln;

const EXAMPLE: &str = "Examples:
  mlp info model.json
  mlp info model.json --json | jq .metrics

Prints the network layer by layer with its parameters, every feature column with how it
is encoded (scaling, quantile bins, categories, the fill value for a missing cell), the
target's classes or units, the training file's name and SHA-256, its rows, the settings
and seed, the metrics of the saved epoch, and the file's format version.";

/// Show what a model file holds: network, features, target, training data, settings
#[derive(Args, Debug)]
#[command(after_help = super::MORE, after_long_help = EXAMPLE)]
pub struct InfoArgs {
    /// A model written by `mlp train`
    #[arg(value_name = "MODEL")]
    model: PathBuf,

    /// Print one JSON object instead of the tables
    #[arg(long)]
    json: bool,
}

pub fn run(args: InfoArgs) -> Result<ExitCode, Error> {
    let model = Model::load(&args.model)?;
    let s = summary(&model.file);
    if args.json {
        outln!("{s}");
        return Ok(ExitCode::SUCCESS);
    }
    outln!(
        "{}: {} version {}",
        args.model.display(),
        text(&s["format"]),
        s["version"]
    );
    print_network(&s);
    print_features(&s);
    print_target(&s);
    print_training(&s);
    Ok(ExitCode::SUCCESS)
}

/// A JSON value as plain text: a string without quotes, an array as `a, b, c`.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(text).collect::<Vec<_>>().join(", "),
        Value::Null => "none".into(),
        other => other.to_string(),
    }
}

/// A number with at most four decimals: `5.9067`, `0.001`, `128`.
fn number(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x.fract() == 0.0 && x.abs() < 1e15 => format!("{x}"),
        Some(x) if x.abs() >= 1e-3 && x.abs() < 1e6 => {
            let t = format!("{x:.4}");
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        }
        Some(x) => format!("{x:e}"),
        None => text(v),
    }
}

/// The network as Keras's summary shows it: one row per layer.
fn print_network(s: &Value) {
    let networks = s["networks"].as_u64().unwrap_or(1);
    outln!();
    if networks > 1 {
        outln!(
            "network: {networks} of this shape, one per fold (a k-fold ensemble; it predicts \
             their average)"
        );
    } else {
        outln!("network:");
    }
    let layers = s["layers"].as_array().map_or(&[][..], Vec::as_slice);
    let w = (layers.iter())
        .map(|l| text(&l["layer"]).chars().count())
        .max()
        .unwrap_or(5)
        .max(5);
    outln!("  #  {:<w$}  output     parameters", "layer");
    for (i, l) in layers.iter().enumerate() {
        let output = format!("(N, {})", l["outputs"]);
        outln!(
            "{i:>3}  {:<w$}  {output:<9}  {:>10}",
            text(&l["layer"]),
            l["parameters"].to_string()
        );
    }
    let p = &s["parameters"];
    outln!(
        "  parameters: {} per network, {} in all",
        p["per_network"],
        p["total"]
    );
}

/// One row per feature column: its kind, inputs and encoding.
fn print_features(s: &Value) {
    let features = s["features"].as_array().map_or(&[][..], Vec::as_slice);
    outln!();
    outln!(
        "features: {} columns → {} inputs",
        features.len(),
        s["inputs"]
    );
    let name_w = (features.iter())
        .map(|f| text(&f["name"]).chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let kind_w = (features.iter())
        .map(|f| text(&f["kind"]).len())
        .max()
        .unwrap_or(4)
        .max(4);
    outln!(
        "  {:<name_w$}  {:<kind_w$}  inputs  encoding",
        "column",
        "kind"
    );
    for f in features {
        outln!(
            "  {:<name_w$}  {:<kind_w$}  {:>6}  {}",
            text(&f["name"]),
            text(&f["kind"]),
            f["inputs"].to_string(),
            encoding(f)
        );
    }
}

/// How one feature becomes inputs, in words, and what a missing cell becomes.
fn encoding(f: &Value) -> String {
    let how = match f["kind"].as_str().unwrap_or("") {
        "numeric" => format!("(x − {}) / {}", number(&f["mean"]), number(&f["std"])),
        "piecewise" => {
            let edges = f["edges"].as_array().map_or(&[][..], Vec::as_slice);
            let bins = edges.len().saturating_sub(1);
            let edges: Vec<String> = edges.iter().map(short).collect();
            format!(
                "(x − {}) / {}, and {bins} quantile bins cut at {}",
                number(&f["mean"]),
                number(&f["std"]),
                edges.join(", ")
            )
        }
        "robust" => format!(
            "smooth clip of (x − {}) / {}",
            number(&f["median"]),
            number(&f["scale"])
        ),
        "categorical" => format!("one-hot: {}", text(&f["categories"])),
        // A kind this printer does not know: its record as it is.
        _ => {
            let fields = f.as_object().into_iter().flatten();
            let fields =
                fields.filter(|(k, _)| !["kind", "name", "inputs", "fill"].contains(&k.as_str()));
            fields
                .map(|(k, v)| format!("{k} {}", text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let fill = match &f["fill"] {
        Value::Null => "refused".to_string(),
        v @ Value::Number(_) => short(v),
        v => text(v),
    };
    format!("{how}; missing → {fill}")
}

/// A number stored as f64 from an f32 (a bin edge, a fill value) in its shortest f32 form:
/// `4.3`, not `4.300000190734863`.
fn short(v: &Value) -> String {
    match v.as_f64() {
        Some(x) => format!("{}", x as f32),
        None => text(v),
    }
}

/// The target: its classes, or its units.
fn print_target(s: &Value) {
    let t = &s["target"];
    outln!();
    match t["kind"].as_str() {
        Some("classes") => {
            let labels = t["labels"].as_array().map_or(0, Vec::len);
            outln!(
                "target: '{}', {} of {labels} classes: {}",
                text(&t["name"]),
                text(&s["task"]),
                text(&t["labels"])
            );
        }
        _ => {
            outln!(
                "target: '{}', {} in the column's units (trained as (y − {}) / {})",
                text(&t["name"]),
                text(&s["task"]),
                number(&t["mean"]),
                number(&t["std"])
            );
        }
    }
}

/// The training data, the run, the settings and the metrics.
fn print_training(s: &Value) {
    let t = &s["training"];
    outln!();
    outln!(
        "training data: {}, SHA-256 {}",
        text(&t["data_file"]),
        text(&t["data_sha256"])
    );
    outln!(
        "  {} rows ({} training, {} validation; {} dropped for missing values, {} missing cells filled)",
        t["rows"],
        t["train_rows"],
        t["validation_rows"],
        t["dropped_rows"],
        t["filled_cells"]
    );
    let stop = t["stop"]["reason"].as_str().unwrap_or("");
    outln!(
        "  {} epochs run ({})",
        t["epochs_run"],
        stop.replace('_', " ")
    );
    if let Some(refit) = t["refit_epochs"].as_u64() {
        outln!("  refit on every row for {refit} epochs");
    }
    outln!("settings: {}", pairs(&s["settings"]));
    outln!("metrics: {}", pairs(&s["metrics"]));
}

/// An object's fields as `key value, key value`, leaving out empty ones.
fn pairs(v: &Value) -> String {
    let fields = v.as_object().into_iter().flatten();
    fields
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| {
            let value = match v {
                Value::Number(_) if !v.is_u64() => number(v),
                _ => text(v),
            };
            format!("{k} {value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}
