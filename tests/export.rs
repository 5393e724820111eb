//! `mlp export` on real files: the ONNX graph run by onnxruntime and the Rust file compiled
//! by rustc must predict what `mlp predict` predicts, on every row.
//!
//! The ONNX test needs Python with `onnx`, `onnxruntime` and `numpy`: `MLP_TEST_PYTHON`
//! names the interpreter (`.ci/run` sets it), else the active virtualenv's or `python3`. Without them the test
//! says on stderr that it is skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MLP: &str = env!("CARGO_BIN_EXE_mlp");

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn mlp(args: &[&str]) -> Output {
    Command::new(MLP)
        .args(args)
        .current_dir(root())
        .env_remove("MLP_THREADS")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(args: &[&str]) -> String {
    let out = mlp(args);
    assert!(
        out.status.success(),
        "mlp {}\n{}",
        args.join(" "),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// A model to export: a name, the training file and flags.
struct Case {
    name: &'static str,
    data: &'static str,
    flags: &'static [&'static str],
    /// Columns emptied on every 25th row, so that missing text is imputed too.
    gaps: &'static [&'static str],
}

/// The file a case trains and predicts on: its data, every row, with the case's gaps
/// added. Missing cells are imputed (`--missing impute`, the default) in training, in
/// `mlp predict` and in the exports alike.
fn data_file(case: &Case, dir: &Path) -> PathBuf {
    let mut reader = csv::Reader::from_path(root().join(case.data)).unwrap();
    let headers = reader.headers().unwrap().clone();
    let gaps: Vec<usize> = (case.gaps.iter())
        .map(|g| headers.iter().position(|h| h == *g).unwrap())
        .collect();
    let path = dir.join(format!("{}.csv", case.name));
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(&headers).unwrap();
    let mut blanks = 0;
    for (row, record) in reader.records().enumerate() {
        let record = record.unwrap();
        let cells = record.iter().enumerate().map(|(i, cell)| {
            if row % 25 == 7 && gaps.contains(&i) {
                blanks += 1;
                ""
            } else {
                cell
            }
        });
        writer.write_record(cells.collect::<Vec<_>>()).unwrap();
    }
    writer.flush().unwrap();
    assert_eq!(blanks, 12 * gaps.len(), "{}: gaps", case.name);
    path
}

/// Text columns of the cases' files that [`with_unseen`] gives categories never seen.
const TEXT_COLUMNS: &[&str] = &["plan", "region", "neighborhood"];

/// `data` with every 9th row's text cells (of [`TEXT_COLUMNS`]) replaced by a category
/// the model never saw, or `None` if the file has no such column. `mlp predict` scores
/// them with none of the column's inputs on, and so must the exports.
fn with_unseen(data: &Path, dir: &Path) -> Option<PathBuf> {
    let mut reader = csv::Reader::from_path(data).unwrap();
    let headers = reader.headers().unwrap().clone();
    let text: Vec<usize> = (headers.iter().enumerate())
        .filter(|(_, h)| TEXT_COLUMNS.contains(h))
        .map(|(i, _)| i)
        .collect();
    if text.is_empty() {
        return None;
    }
    let name = data.file_stem().unwrap().to_string_lossy();
    let path = dir.join(format!("{name}-unseen.csv"));
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(&headers).unwrap();
    for (row, record) in reader.records().enumerate() {
        let record = record.unwrap();
        let cells = record.iter().enumerate().map(|(i, cell)| {
            if row % 9 == 4 && text.contains(&i) {
                "never-seen"
            } else {
                cell
            }
        });
        writer.write_record(cells.collect::<Vec<_>>()).unwrap();
    }
    writer.flush().unwrap();
    Some(path)
}

const CASES: &[Case] = &[
    // Numbers only, three classes.
    Case {
        name: "iris",
        data: "data/iris.csv",
        flags: &["--hidden", "16", "--epochs", "60", "--seed", "3"],
        gaps: &[],
    },
    // Text categories (three text columns) next to numbers, two classes, tanh.
    Case {
        name: "customers",
        data: "tests/data/customers.csv",
        flags: &[
            "--hidden",
            "12,8",
            "--activation",
            "tanh",
            "--epochs",
            "40",
            "--seed",
            "5",
        ],
        // customers.csv has missing numbers; these add missing texts.
        gaps: &["plan", "region"],
    },
    // Regression with a text column, sigmoid.
    Case {
        name: "houses",
        data: "data/houses.csv",
        flags: &[
            "--hidden",
            "8",
            "--activation",
            "sigmoid",
            "--epochs",
            "40",
            "--seed",
            "2",
        ],
        gaps: &[],
    },
    // A k-fold ensemble of three classifiers: the mean of their probabilities.
    Case {
        name: "iris-folds",
        data: "data/iris.csv",
        flags: &[
            "--hidden", "16", "--epochs", "40", "--seed", "4", "--folds", "3",
        ],
        gaps: &[],
    },
    // A k-fold ensemble of three regressors with a text column: the mean of their values.
    Case {
        name: "houses-folds",
        data: "data/houses.csv",
        flags: &[
            "--hidden",
            "8",
            "--activation",
            "sigmoid",
            "--epochs",
            "30",
            "--seed",
            "6",
            "--folds",
            "3",
        ],
        gaps: &[],
    },
    // Dates and date-times (offsets, seconds, a space or `T`), some missing: each becomes
    // its parts, scaled in quantile bins.
    Case {
        name: "visits",
        data: "data/visits.csv",
        flags: &["--hidden", "12", "--epochs", "40", "--seed", "9"],
        gaps: &["visit", "opened"],
    },
];

fn train(case: &Case, data: &Path, dir: &Path) -> PathBuf {
    let model = dir.join(format!("{}.json", case.name));
    let mut args = vec![
        "train",
        data.to_str().unwrap(),
        "-q",
        "--model",
        model.to_str().unwrap(),
    ];
    args.extend_from_slice(case.flags);
    ok(&args);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    // Every case has held-out rows: classifiers are calibrated (so the exports must apply
    // the temperature), regressions keep residuals (so they can export intervals).
    if json["task"] == "classification" {
        let t = json["calibration"]["temperature"].as_f64().unwrap();
        assert!(
            t > 0.0 && (t - 1.0).abs() > 1e-3,
            "{}: temperature {t}",
            case.name
        );
    } else {
        assert!(
            json["residuals"]["rows"].as_u64().unwrap() > 0,
            "{}",
            case.name
        );
    }
    if case.flags.contains(&"--folds") {
        // Three networks: the first in `layers`, two more in `ensemble`.
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
        assert_eq!(
            json["ensemble"].as_array().map(Vec::len),
            Some(2),
            "{}",
            case.name
        );
        // A regression keeps each network's residuals: its intervals are CV+, scaled to
        // the ensemble (so the exports must move the networks and scale the residuals).
        if json["task"] == "regression" {
            let folds = json["residuals"]["folds"].as_array().map(Vec::len);
            assert_eq!(folds, Some(3), "{}", case.name);
            let scale = &json["residuals"]["ensemble"];
            assert!(scale["residuals"].as_f64() < Some(1.0), "{}", case.name);
            assert_eq!(scale["spread"].as_f64(), Some(1.0 / 3f64.sqrt()));
        }
    }
    model
}

/// One prediction of `mlp predict --proba` (or `--interval`), or of an exported model.
#[derive(Debug)]
enum Prediction {
    Class {
        label: String,
        probabilities: Vec<f64>,
    },
    Value(f64),
    /// A value and its interval's lower and upper ends.
    Interval(f64, f64, f64),
}

/// The interval level the regression cases are exported and predicted with.
const LEVEL: &str = "0.9";

/// Reads prediction CSV: a label column then probabilities, or one value column.
fn read_predictions(csv_text: &str) -> Vec<Prediction> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(csv_text.as_bytes());
    let interval = reader.headers().unwrap().iter().any(|h| h == "lower");
    reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            let number = |s: &str| s.parse::<f64>().unwrap_or_else(|_| panic!("{s:?}"));
            if interval {
                Prediction::Interval(number(&r[0]), number(&r[1]), number(&r[2]))
            } else if r.len() == 1 {
                Prediction::Value(number(&r[0]))
            } else {
                Prediction::Class {
                    label: r[0].to_string(),
                    probabilities: r.iter().skip(1).map(number).collect(),
                }
            }
        })
        .collect()
}

fn mlp_predictions(model: &Path, data: &Path) -> Vec<Prediction> {
    let (model, data) = (model.to_str().unwrap(), data.to_str().unwrap());
    let classifier = std::fs::read_to_string(model)
        .unwrap()
        .contains("\"task\": \"classification\"");
    let mut args = vec!["predict", model, data];
    if classifier {
        args.push("--proba");
    } else {
        args.extend(["--interval", LEVEL]);
    }
    read_predictions(&ok(&args))
}

/// Labels identical, probabilities within 1e-5; values within 1e-5 relative.
fn assert_same(what: &str, expected: &[Prediction], actual: &[Prediction]) {
    assert!(expected.len() >= 100, "{what}: {} rows", expected.len());
    assert_eq!(expected.len(), actual.len(), "{what}: row count");
    for (row, (e, a)) in expected.iter().zip(actual).enumerate() {
        match (e, a) {
            (
                Prediction::Class {
                    label: le,
                    probabilities: pe,
                },
                Prediction::Class {
                    label: la,
                    probabilities: pa,
                },
            ) => {
                assert_eq!(le, la, "{what}: label of row {row}");
                assert_eq!(pe.len(), pa.len(), "{what}: classes");
                for (x, y) in pe.iter().zip(pa) {
                    // `mlp predict` prints six decimals.
                    assert!((x - y).abs() <= 1e-5, "{what}: row {row}: {pe:?} vs {pa:?}");
                }
            }
            (Prediction::Value(x), Prediction::Value(y)) => {
                assert!(
                    (x - y).abs() <= 1e-5 * x.abs().max(1.0),
                    "{what}: row {row}: {x} vs {y}",
                );
            }
            (Prediction::Interval(x, xl, xu), Prediction::Interval(y, yl, yu)) => {
                // Each end is a network's value ± a residual: its error is that value's.
                let scale = x.abs().max(xl.abs()).max(xu.abs()).max(1.0);
                for (x, y) in [(x, y), (xl, yl), (xu, yu)] {
                    assert!(
                        (x - y).abs() <= 1e-5 * scale,
                        "{what}: row {row}: {e:?} vs {a:?}",
                    );
                }
                // A real interval, some width (a CV+ interval need not hold the value, the
                // networks' mean, but these do).
                assert!(xl < x && x < xu, "{what}: row {row}: {e:?}");
            }
            _ => panic!("{what}: row {row}: {e:?} vs {a:?}"),
        }
    }
}

/// Python with onnx, onnxruntime and numpy, if there is one.
fn python() -> Option<String> {
    let python = std::env::var("MLP_TEST_PYTHON")
        .or_else(|_| std::env::var("VIRTUAL_ENV").map(|v| format!("{v}/bin/python")))
        .unwrap_or_else(|_| "python3".into());
    let works = Command::new(&python)
        .args(["-c", "import onnx, onnxruntime, numpy"])
        .output()
        .is_ok_and(|o| o.status.success());
    works.then_some(python)
}

/// Written past the test harness's capture, so that a skip shows in `cargo test`.
fn say(message: &str) {
    let _ = writeln!(std::io::stderr(), "{message}");
}

#[test]
fn onnx_export_matches_mlp_predict_in_onnxruntime() {
    let Some(python) = python() else {
        say(
            "SKIPPED onnx_export_matches_mlp_predict_in_onnxruntime: no Python with onnx, \
             onnxruntime and numpy (set MLP_TEST_PYTHON to one)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for case in CASES {
        let data = data_file(case, dir.path());
        let model = train(case, &data, dir.path());
        let onnx = dir.path().join(format!("{}.onnx", case.name));
        ok(&export_args(&model, "onnx", &onnx));
        let actual = onnx_predictions(&python, &onnx, &data);
        assert_same(case.name, &mlp_predictions(&model, &data), &actual);
        if let Some(unseen) = with_unseen(&data, dir.path()) {
            let actual = onnx_predictions(&python, &onnx, &unseen);
            let what = format!("{} with unseen categories", case.name);
            assert_same(&what, &mlp_predictions(&model, &unseen), &actual);
        }
    }
}

/// `mlp export` of `model` as `format` to `output`; a regression model with its interval at
/// [`LEVEL`].
fn export_args<'a>(model: &'a Path, format: &'a str, output: &'a Path) -> Vec<&'a str> {
    let mut args = vec![
        "export",
        model.to_str().unwrap(),
        "--format",
        format,
        "--output",
        output.to_str().unwrap(),
    ];
    let text = std::fs::read_to_string(model).unwrap();
    if text.contains("\"task\": \"regression\"") {
        args.extend(["--interval", LEVEL]);
    }
    args
}

/// What the ONNX model at `onnx` predicts for `data` in onnxruntime, through
/// tests/export/onnx_predict.py (which runs `onnx.checker` first).
fn onnx_predictions(python: &str, onnx: &Path, data: &Path) -> Vec<Prediction> {
    let out_csv = onnx.with_extension("onnx.csv");
    let run = Command::new(python)
        .arg(root().join("tests/export/onnx_predict.py"))
        .args([onnx, data, &out_csv])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}: onnx check or run failed:\n{}",
        onnx.display(),
        text(&run.stderr)
    );
    read_predictions(&std::fs::read_to_string(&out_csv).unwrap())
}

/// A `main` that builds an `Input` per row of `data` (as Rust literals) and prints what the
/// exported model predicts, one CSV line per row.
fn harness(model_rs: &str, data: &Path, fields: &[(&str, &str)]) -> String {
    let mut reader = csv::Reader::from_path(data).unwrap();
    let headers = reader.headers().unwrap().clone();
    let classifier = model_rs.contains("pub fn predict_proba");
    let interval = model_rs.contains("pub fn predict_interval");
    let mut rows = String::new();
    for record in reader.records() {
        let record = record.unwrap();
        let mut init = String::new();
        for (column, field) in fields {
            let at = headers.iter().position(|h| h == *column).unwrap();
            init.push_str(&format!(
                "{field}: {}, ",
                field_value(model_rs, field, &record[at])
            ));
        }
        rows.push_str(&format!("        model::Input {{ {init}}},\n"));
    }
    let body = if classifier {
        "let p = model::predict_proba(row);\n        \
         let probs: Vec<String> = p.iter().map(|v| v.to_string()).collect();\n        \
         println!(\"{},{}\", model::predict(row), probs.join(\",\"));"
    } else if interval {
        "let (lower, value, upper) = model::predict_interval(row);\n        \
         assert_eq!(value, model::predict(row));\n        \
         assert_eq!(model::INTERVAL_LEVEL, 0.9);\n        \
         println!(\"{value},{lower},{upper}\");"
    } else {
        "println!(\"{}\", model::predict(row));"
    };
    let header = if classifier {
        "label,probabilities"
    } else if interval {
        "prediction,lower,upper"
    } else {
        "prediction"
    };
    format!(
        "mod model;\n\nfn main() {{\n    let rows = [\n{rows}    ];\n    \
         println!(\"{header}\");\n    for row in &rows {{\n        {body}\n    }}\n}}\n"
    )
}

/// A cell of the file as a Rust expression for field `field` of the exported `Input`: text
/// as the file has it (the export reads it as `mlp` does), a number as a program would
/// parse it, `None` where it cannot.
fn field_value(model_rs: &str, field: &str, cell: &str) -> String {
    let optional = model_rs.contains(&format!("pub {field}: Option<"));
    let text = model_rs.contains(&format!("pub {field}: Option<&'a str>"))
        || model_rs.contains(&format!("pub {field}: &'a str"));
    let value = if text {
        format!("{cell:?}")
    } else {
        match cell.trim().parse::<f64>() {
            Ok(v) if v.is_nan() => "f32::NAN".to_string(),
            Ok(v) => format!("{:?}_f32", v as f32),
            Err(_) if optional => return "None".to_string(),
            Err(e) => panic!("{field}: {cell:?}: {e}"),
        }
    };
    if optional {
        format!("Some({value})")
    } else {
        value
    }
}

/// What the exported Rust source `model_rs` predicts for `data`: compiled with a
/// [`harness`] in `work`, and run.
fn rust_predictions(
    model_rs: &str,
    data: &Path,
    fields: &[(&str, &str)],
    work: &Path,
) -> Vec<Prediction> {
    std::fs::write(work.join("model.rs"), model_rs).unwrap();
    std::fs::write(work.join("main.rs"), harness(model_rs, data, fields)).unwrap();
    rustc(
        &[
            "--edition=2021",
            "-D",
            "warnings",
            "-O",
            "main.rs",
            "-o",
            "predict",
        ],
        work,
    );
    let run = Command::new(work.join("predict")).output().unwrap();
    assert!(run.status.success(), "{}", text(&run.stderr));
    read_predictions(&text(&run.stdout))
}

fn rustc(args: &[&str], dir: &Path) {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rustc {args:?} failed:\n{}",
        text(&out.stderr)
    );
}

#[test]
fn rust_export_compiles_warning_free_and_matches_mlp_predict() {
    // Columns and the field names the export gives them.
    let fields: &[(&str, &[(&str, &str)])] = &[
        (
            "iris",
            &[
                ("sepal_length", "sepal_length"),
                ("sepal_width", "sepal_width"),
                ("petal_length", "petal_length"),
                ("petal_width", "petal_width"),
            ],
        ),
        (
            "customers",
            &[
                ("age", "age"),
                ("income", "income"),
                ("plan", "plan"),
                ("region", "region"),
                ("country", "country"),
            ],
        ),
        (
            "houses",
            &[
                ("area", "area"),
                ("rooms", "rooms"),
                ("age", "age"),
                ("neighborhood", "neighborhood"),
            ],
        ),
        (
            "iris-folds",
            &[
                ("sepal_length", "sepal_length"),
                ("sepal_width", "sepal_width"),
                ("petal_length", "petal_length"),
                ("petal_width", "petal_width"),
            ],
        ),
        (
            "houses-folds",
            &[
                ("area", "area"),
                ("rooms", "rooms"),
                ("age", "age"),
                ("neighborhood", "neighborhood"),
            ],
        ),
        (
            "visits",
            &[
                ("visit", "visit"),
                ("opened", "opened"),
                ("size", "size"),
                ("channel", "channel"),
            ],
        ),
    ];
    assert_eq!(fields.len(), CASES.len());
    let dir = tempfile::tempdir().unwrap();
    for (case, (name, fields)) in CASES.iter().zip(fields) {
        assert_eq!(case.name, *name);
        let data = data_file(case, dir.path());
        let model = train(case, &data, dir.path());
        let work = dir.path().join(case.name);
        std::fs::create_dir(&work).unwrap();
        let model_rs = work.join("model.rs");
        ok(&export_args(&model, "rust", &model_rs));
        // As the README promises: a library on its own, no warnings.
        rustc(
            &[
                "--edition=2021",
                "--crate-type=lib",
                "-D",
                "warnings",
                "model.rs",
            ],
            &work,
        );
        let source = std::fs::read_to_string(&model_rs).unwrap();
        // As the README says for embedded targets: `#![no_std]`, and `exp`/`tanh` (and
        // for dates `sin`/`cos`) from `libm` (a stand-in module here) instead of `std`.
        let no_std = format!(
            "#![no_std]\n{}\n#[allow(dead_code)]\nmod libm {{\n    \
             pub fn expf(x: f32) -> f32 {{ x }}\n    pub fn tanhf(x: f32) -> f32 {{ x }}\n    \
             pub fn sin(x: f64) -> f64 {{ x }}\n    pub fn cos(x: f64) -> f64 {{ x }}\n}}\n",
            source
                .replace("    x.exp()", "    libm::expf(x)")
                .replace("    x.tanh()", "    libm::tanhf(x)")
                .replace("    x.sin()", "    libm::sin(x)")
                .replace("    x.cos()", "    libm::cos(x)")
        );
        std::fs::write(work.join("no_std.rs"), no_std).unwrap();
        rustc(
            &[
                "--edition=2021",
                "--crate-type=lib",
                "-D",
                "warnings",
                "no_std.rs",
            ],
            &work,
        );
        let actual = rust_predictions(&source, &data, fields, &work);
        assert_same(case.name, &mlp_predictions(&model, &data), &actual);
        if let Some(unseen) = with_unseen(&data, dir.path()) {
            let actual = rust_predictions(&source, &unseen, fields, &work);
            let what = format!("{} with unseen categories", case.name);
            assert_same(&what, &mlp_predictions(&model, &unseen), &actual);
        }
    }
}

/// Every text `mlp` reads as missing, in the case variants it accepts, padded or not.
const MISSING_CELLS: &[&str] = &[
    "",
    " ",
    "NA",
    "na",
    "Na",
    "nA",
    " NA ",
    "N/A",
    "n/a",
    "N/a",
    "NaN",
    "nan",
    "NAN",
    "nAn",
    "null",
    "NULL",
    "Null",
    "nulL",
    "?",
    "\tnull",
    " ?\u{a0}",
    "n/A\u{3000}",
];

/// What a cell is padded with: spaces, tabs, a no-break space, an ideographic space and
/// a line break inside quotes.
const PADDINGS: &[(&str, &str)] = &[
    (" ", " "),
    ("\t", ""),
    ("", "  "),
    ("\u{a0}", "\u{3000}"),
    ("\n ", "\r\n"),
];

/// `data` with its feature cells made untidy, as files from spreadsheets and other
/// programs are: about one in seven missing in one of the [`MISSING_CELLS`] forms, about
/// one in five padded with [`PADDINGS`]. The target (the last column) stays as it is.
fn untidy_file(data: &str, name: &str, dir: &Path) -> PathBuf {
    let mut reader = csv::Reader::from_path(root().join(data)).unwrap();
    let headers = reader.headers().unwrap().clone();
    let path = dir.join(format!("{name}.csv"));
    let mut writer = csv::Writer::from_path(&path).unwrap();
    writer.write_record(&headers).unwrap();
    let (mut missing, mut padded) = (0, 0);
    for (r, record) in reader.records().enumerate() {
        let record = record.unwrap();
        let last = record.len() - 1;
        let cells: Vec<String> = (record.iter().enumerate())
            .map(|(j, cell)| {
                if j < last && (r + j) % 7 == 3 {
                    missing += 1;
                    MISSING_CELLS[(r * 5 + j) % MISSING_CELLS.len()].to_string()
                } else if j < last && (r + 2 * j) % 5 == 1 {
                    padded += 1;
                    let (before, after) = PADDINGS[(r + j) % PADDINGS.len()];
                    format!("{before}{cell}{after}")
                } else {
                    cell.to_string()
                }
            })
            .collect();
        writer.write_record(&cells).unwrap();
    }
    writer.flush().unwrap();
    assert!(missing > 100 && padded > 100, "{name}: {missing} {padded}");
    path
}

/// Untidy files: a classifier (a k-fold ensemble of three) and a regressor, each with text
/// and numbers, trained on the untidy file and asked about it.
const UNTIDY: &[(&str, &str, &[&str])] = &[
    (
        "customers-untidy",
        "tests/data/customers.csv",
        &[
            "--hidden", "8", "--epochs", "20", "--seed", "7", "--folds", "3",
        ],
    ),
    (
        "houses-untidy",
        "data/houses.csv",
        &["--hidden", "8", "--epochs", "30", "--seed", "8"],
    ),
];

/// The untidy file and the model trained on it.
fn untidy_model(name: &str, data: &str, flags: &[&str], dir: &Path) -> (PathBuf, PathBuf) {
    let data = untidy_file(data, name, dir);
    let model = dir.join(format!("{name}.json"));
    let mut args = vec!["train", data.to_str().unwrap(), "-q", "--model"];
    args.push(model.to_str().unwrap());
    args.extend_from_slice(flags);
    ok(&args);
    (data, model)
}

#[test]
fn onnx_export_reads_padded_and_missing_cells_as_mlp_predict_does() {
    let Some(python) = python() else {
        say(
            "SKIPPED onnx_export_reads_padded_and_missing_cells_as_mlp_predict_does: no \
             Python with onnx, onnxruntime and numpy (set MLP_TEST_PYTHON to one)",
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for (name, data, flags) in UNTIDY {
        let (data, model) = untidy_model(name, data, flags, dir.path());
        let onnx = dir.path().join(format!("{name}.onnx"));
        let model = model.to_str().unwrap();
        ok(&export_args(model.as_ref(), "onnx", &onnx));
        let actual = onnx_predictions(&python, &onnx, &data);
        assert_same(name, &mlp_predictions(model.as_ref(), &data), &actual);
    }
}

#[test]
fn rust_export_reads_padded_and_missing_cells_as_mlp_predict_does() {
    let dir = tempfile::tempdir().unwrap();
    for (name, data, flags) in UNTIDY {
        let (data, model) = untidy_model(name, data, flags, dir.path());
        let model_rs = dir.path().join(format!("{name}.rs"));
        let model = model.to_str().unwrap();
        ok(&export_args(model.as_ref(), "rust", &model_rs));
        let headers = csv::Reader::from_path(&data)
            .unwrap()
            .headers()
            .unwrap()
            .clone();
        // Every column but the target, named as the export names it (already snake case).
        let fields: Vec<(&str, &str)> = (headers.iter().take(headers.len() - 1))
            .map(|h| (h, h))
            .collect();
        let work = dir.path().join(name);
        std::fs::create_dir(&work).unwrap();
        let source = std::fs::read_to_string(&model_rs).unwrap();
        let actual = rust_predictions(&source, &data, &fields, &work);
        assert_same(name, &mlp_predictions(model.as_ref(), &data), &actual);
    }
}

/// Insists on exit code 2, one `error: {head}…` message, and no file at `output`.
fn refused(args: &[&str], head: &str, output: &Path) -> String {
    let out = mlp(args);
    let stderr = text(&out.stderr);
    let context = format!("mlp {}\n{stderr}", args.join(" "));
    assert_eq!(out.status.code(), Some(2), "{context}");
    assert!(stderr.starts_with(&format!("error: {head}")), "{context}");
    assert_eq!(stderr.matches("error:").count(), 1, "{context}");
    assert!(!stderr.contains("panicked"), "{context}");
    assert!(
        !output.exists(),
        "{context}: {} was written",
        output.display()
    );
    stderr
}

#[test]
fn damaged_model_files_are_refused_as_predict_refuses_them() {
    let corpus = root().join("tests/corpus");
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out.onnx");
    let mut names: Vec<String> = std::fs::read_dir(corpus.join("models"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "valid.json")
        .collect();
    names.sort();
    assert!(names.len() >= 30, "the corpus of damaged models: {names:?}");
    for name in &names {
        let model = format!("tests/corpus/models/{name}");
        // `mlp predict` on the same file says what is wrong (tests/corpus.rs checks that).
        let predict = mlp(&["predict", &model, "tests/corpus/fixture.csv"]);
        assert_eq!(predict.status.code(), Some(2), "{name}");
        let expected = text(&predict.stderr);
        let head = expected
            .lines()
            .next()
            .unwrap()
            .trim_start_matches("error: ");
        let stderr = refused(
            &["export", &model, "--output", output.to_str().unwrap()],
            head,
            &output,
        );
        assert_eq!(stderr, expected, "{name}");
        assert!(stderr.contains("\n  hint: "), "{name}: {stderr}");
    }
    // The control exports.
    ok(&[
        "export",
        "tests/corpus/models/valid.json",
        "--output",
        output.to_str().unwrap(),
    ]);
    assert!(std::fs::metadata(&output).unwrap().len() > 100);
}

#[test]
fn bad_formats_and_outputs_are_refused_and_nothing_is_half_written() {
    let dir = tempfile::tempdir().unwrap();
    let model = "tests/corpus/models/valid.json";
    let at = |name: &str| dir.path().join(name);
    let path = |p: &Path| p.to_str().unwrap().to_string();

    let out = at("model.pmml");
    let stderr = refused(
        &["export", model, "--format", "pmml", "--output", &path(&out)],
        "invalid --format pmml: mlp exports `onnx` and `rust`",
        &out,
    );
    assert!(
        stderr.contains("\n  hint: use --format onnx (for onnxruntime) or --format rust"),
        "{stderr}"
    );
    let out = at("model.bin");
    let stderr = refused(
        &["export", model, "--output", &path(&out)],
        &format!(
            "invalid --format: cannot tell the format from '{}'",
            out.display()
        ),
        &out,
    );
    assert!(
        stderr.contains("\n  hint: pass --format onnx or --format rust"),
        "{stderr}"
    );

    // A directory that does not exist.
    let out = at("no/such/dir/model.onnx");
    let stderr = refused(
        &["export", model, "--output", &path(&out)],
        &format!("cannot write {}", out.display()),
        &out,
    );
    assert!(stderr.contains("hint: create the directory"), "{stderr}",);

    // A refused export leaves the directory as it was: here the output is a directory,
    // next to an older export.
    let old = at("old.onnx");
    std::fs::write(&old, "previous export").unwrap();
    let blocked = at("blocked.onnx");
    std::fs::create_dir(&blocked).unwrap();
    let out = mlp(&["export", model, "--output", &path(&blocked)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).starts_with(&format!("error: cannot write {}", blocked.display())),
        "{}",
        text(&out.stderr)
    );
    assert!(blocked.is_dir());
    assert_eq!(std::fs::read_to_string(&old).unwrap(), "previous export");
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        ["blocked.onnx", "old.onnx"],
        "no temporary files left"
    );

    // The model itself is never the output.
    let copy = at("m.rs");
    std::fs::copy(root().join(model), &copy).unwrap();
    let before = std::fs::read(&copy).unwrap();
    let out = mlp(&[
        "export",
        &path(&copy),
        "--format",
        "rust",
        "--output",
        &path(&copy),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("this is the model file\n  hint: choose another path"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read(&copy).unwrap(), before);
}

/// Column names no Rust field can have as they are: keywords (`self`, `Self`, `super` and
/// `crate` cannot even be raw identifiers), a keyword's escape taken by another column,
/// a leading digit, non-ASCII letters, names differing only by case or punctuation, bare
/// underscores and a text-direction control. The last column is the target.
const NASTY_COLUMNS: &[&str] = &[
    "type",
    "type_",
    "type_2",
    "self",
    "Self",
    "super",
    "crate",
    "1st",
    "c_1st",
    "Ünïcode",
    "ünïcode",
    "a-b",
    "a_b",
    "A B",
    "aB",
    "_",
    "__",
    "gen",
    "x\u{202e}y",
    "target",
];

/// The fields of an exported `Input`, each with the column its doc comment names.
fn exported_fields(source: &str) -> Vec<(String, String)> {
    let lines: Vec<&str> = source.lines().collect();
    (lines.windows(2))
        .filter_map(|pair| {
            let column = pair[0].strip_prefix("    /// Column `")?;
            let column = &column[..column.rfind("` (")?];
            let field = pair[1].strip_prefix("    pub ")?;
            Some((column.to_string(), field[..field.find(':')?].to_string()))
        })
        .collect()
}

#[test]
fn rust_export_of_nasty_column_names_compiles_warning_free_with_distinct_fields() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nasty.csv");
    let mut writer = csv::Writer::from_path(&data).unwrap();
    writer.write_record(NASTY_COLUMNS).unwrap();
    for r in 0..120 {
        let row: Vec<String> = (0..NASTY_COLUMNS.len())
            .map(|j| match j {
                // A text column, so that the export also writes a `cell` reader.
                1 => ["red", "green"][r % 2].to_string(),
                j if j == NASTY_COLUMNS.len() - 1 => ["yes", "no"][r % 2].to_string(),
                j => format!("{}", (r * (j + 3)) % 11),
            })
            .collect();
        writer.write_record(&row).unwrap();
    }
    writer.flush().unwrap();
    let model = dir.path().join("nasty.json");
    let (data_arg, model_arg) = (data.to_str().unwrap(), model.to_str().unwrap());
    ok(&[
        "train", data_arg, "-q", "--model", model_arg, "--epochs", "3",
    ]);
    let model_rs = dir.path().join("model.rs");
    ok(&["export", model_arg, "--output", model_rs.to_str().unwrap()]);
    let source = std::fs::read_to_string(&model_rs).unwrap();
    rustc(
        &[
            "--edition=2021",
            "--crate-type=lib",
            "-D",
            "warnings",
            "model.rs",
        ],
        dir.path(),
    );
    let fields = exported_fields(&source);
    assert_eq!(fields.len(), NASTY_COLUMNS.len() - 1, "{source}");
    let distinct: std::collections::HashSet<&str> =
        fields.iter().map(|(_, f)| f.as_str()).collect();
    assert_eq!(distinct.len(), fields.len(), "{fields:?}");
    // And the fields are the columns: the compiled model predicts what `mlp predict` does.
    let fields: Vec<(&str, &str)> = (NASTY_COLUMNS.iter().zip(&fields))
        .map(|(column, (_, field))| (*column, field.as_str()))
        .collect();
    let work = dir.path().join("run");
    std::fs::create_dir(&work).unwrap();
    let actual = rust_predictions(&source, &data, &fields, &work);
    assert_same("nasty", &mlp_predictions(&model, &data), &actual);
}

#[test]
fn exports_give_mlp_predicts_cv_plus_ends_when_each_folds_residuals_are_compressed() {
    // Above 2000 held-out rows a network's residuals are kept as order statistics, each
    // standing for one or two rows here: the exports must weigh them as `mlp` does.
    let case = CASES.iter().find(|c| c.name == "houses-folds").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = data_file(case, dir.path());
    let model = train(case, &data, dir.path());
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&model).unwrap()).unwrap();
    let fold = |k: usize| -> Vec<f64> {
        let own = json["residuals"]["folds"][k]["absolute"]
            .as_array()
            .unwrap();
        let own: Vec<f64> = own.iter().map(|v| v.as_f64().unwrap()).collect();
        // 2500, 3001 and 2203 rows: the network's own residuals, scaled a little each time.
        let rows = [2500, 3001, 2203][k];
        (0..rows)
            .map(|i| own[i % own.len()] * (1.0 + i as f64 / rows as f64))
            .collect()
    };
    // Scaled to the ensemble as if the networks' variance were 0.6 of the mean squared
    // residual: the residuals × √(1 − (2/3)·0.6) = √0.6.
    let folds: Vec<Vec<f64>> = (0..3).map(fold).collect();
    let all = || folds.iter().flatten();
    let mean_square = all().map(|r| r * r).sum::<f64>() / all().count() as f64;
    let residuals =
        mlp::tabular::calibration::Residuals::of_ensemble(folds.clone(), 0.6 * mean_square);
    let scale = residuals.ensemble.unwrap();
    assert!((scale.residuals - 0.6f64.sqrt()).abs() < 1e-12, "{scale:?}");
    assert_eq!(residuals.folds[2].absolute.len(), 2000);
    assert!(residuals.folds[2].weights().contains(&2));
    json["residuals"] = serde_json::to_value(&residuals).unwrap();
    std::fs::write(&model, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let expected = mlp_predictions(&model, &data);
    let work = dir.path().join("rust");
    std::fs::create_dir_all(&work).unwrap();
    let model_rs = work.join("model.rs");
    ok(&export_args(&model, "rust", &model_rs));
    let fields = [
        ("area", "area"),
        ("rooms", "rooms"),
        ("age", "age"),
        ("neighborhood", "neighborhood"),
    ];
    let source = std::fs::read_to_string(&model_rs).unwrap();
    // 7704 rows: t = 7705 − ⌈7705 · 0.9⌉ = 770.
    assert!(source.contains("const INTERVAL_RANK: usize = 770;"));
    let actual = rust_predictions(&source, &data, &fields, &work);
    assert_same("rust, compressed residuals", &expected, &actual);
    let Some(python) = python() else {
        say("SKIPPED the ONNX half of this test: no Python with onnx, onnxruntime and numpy");
        return;
    };
    let onnx = dir.path().join("m.onnx");
    ok(&export_args(&model, "onnx", &onnx));
    let actual = onnx_predictions(&python, &onnx, &data);
    assert_same("onnx, compressed residuals", &expected, &actual);
}
