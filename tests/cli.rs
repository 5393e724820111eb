//! The `mlp` binary driven on real CSV files, as a user would run it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const MLP: &str = env!("CARGO_BIN_EXE_mlp");

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn mlp(dir: &Path, args: &[&str]) -> Output {
    Command::new(MLP)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs and insists on exit code 0.
fn ok(dir: &Path, args: &[&str]) -> String {
    let o = mlp(dir, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "mlp {args:?} failed:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    stdout(&o)
}

/// Runs and insists on exit code 2; returns stderr.
fn user_error(dir: &Path, args: &[&str]) -> String {
    let o = mlp(dir, args);
    assert_eq!(
        o.status.code(),
        Some(2),
        "mlp {args:?} should fail with 2:\n{}\n{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    stderr(&o)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

fn model(path: &Path) -> Value {
    json(&std::fs::read_to_string(path).unwrap())
}

#[test]
fn iris_with_text_labels_trains_predicts_and_evaluates() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = data("data/iris.csv");
    let out = ok(d, &["train", iris.to_str().unwrap(), "--target", "species"]);
    assert!(
        out.contains(
            "task: classification of 'species' into 3 classes: setosa, versicolor, virginica"
        ),
        "{out}"
    );
    assert!(
        out.contains("split: 120 training rows, 30 validation rows"),
        "{out}"
    );
    assert!(
        out.contains("wrote model.json") && out.contains("wrote model.png"),
        "{out}"
    );

    let m = model(&d.join("model.json"));
    assert_eq!(m["format"], "mlp-model");
    assert_eq!(m["version"], 1);
    let accuracy = m["metrics"]["validation_accuracy"].as_f64().unwrap();
    assert!(accuracy >= 0.93, "validation accuracy {accuracy}");
    assert_eq!(
        m["encoding"]["target"]["labels"],
        serde_json::json!(["setosa", "versicolor", "virginica"])
    );
    assert_eq!(m["training"]["data_file"], "iris.csv");
    let sha = mlp::pipeline::sha256_hex(&std::fs::read(&iris).unwrap());
    assert_eq!(m["training"]["data_sha256"], sha.as_str());
    let png = std::fs::read(d.join("model.png")).unwrap();
    assert_eq!(&png[..4], b"\x89PNG");

    let eval = json(&ok(
        d,
        &["eval", "model.json", iris.to_str().unwrap(), "--json"],
    ));
    assert_eq!(eval["task"], "classification");
    assert_eq!(eval["rows"], 150);
    assert!(eval["accuracy"].as_f64().unwrap() >= 0.95, "{eval}");

    let report = ok(d, &["eval", "model.json", iris.to_str().unwrap()]);
    for want in [
        "accuracy: ",
        "precision  recall  f1",
        "confusion matrix",
        "virginica",
    ] {
        assert!(report.contains(want), "{report}");
    }

    let predictions = ok(
        d,
        &["predict", "model.json", iris.to_str().unwrap(), "--proba"],
    );
    let mut lines = predictions.lines();
    assert_eq!(
        lines.next(),
        Some("prediction,prob_setosa,prob_versicolor,prob_virginica")
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 150);
    assert!(rows[0].starts_with("setosa,"), "{}", rows[0]);
    let p: f64 = rows[0]
        .split(',')
        .skip(1)
        .map(|v| v.parse::<f64>().unwrap())
        .sum();
    assert!((p - 1.0).abs() < 1e-4, "probabilities sum to {p}");
}

#[test]
fn digits_beats_the_quality_bar_on_unseen_writers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = std::fs::read_to_string(data("data/digits.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let header = lines[0];
    let train = format!("{header}\n{}\n", lines[1..1438].join("\n"));
    let test = format!("{header}\n{}\n", lines[1438..].join("\n"));
    std::fs::write(d.join("train.csv"), train).unwrap();
    std::fs::write(d.join("test.csv"), test).unwrap();
    ok(d, &["train", "train.csv", "--quiet"]);
    let eval = json(&ok(d, &["eval", "model.json", "test.csv", "--json"]));
    assert_eq!(eval["rows"], 360);
    let accuracy = eval["accuracy"].as_f64().unwrap();
    assert!(
        accuracy >= 0.93,
        "test accuracy on the last 360 digits: {accuracy}"
    );
}

#[test]
fn regression_with_a_categorical_feature_crlf_and_quoted_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let houses = data("tests/data/houses.csv");
    let out = ok(
        d,
        &[
            "train",
            houses.to_str().unwrap(),
            "--model",
            "houses.json",
            "--plot",
            "curve.png",
        ],
    );
    assert!(out.contains("task: regression of 'price'"), "{out}");
    assert!(
        out.contains("features: 4 columns (3 numeric, 1 categorical) → 7 inputs"),
        "{out}"
    );
    assert!(d.join("curve.png").exists() && !d.join("houses.png").exists());

    let m = model(&d.join("houses.json"));
    assert_eq!(m["task"], "regression");
    assert!(
        m["metrics"]["validation_r2"].as_f64().unwrap() > 0.95,
        "{}",
        m["metrics"]
    );
    assert_eq!(
        m["encoding"]["features"][3]["categories"],
        serde_json::json!(["docks", "hills", "old town", "riverside"])
    );

    let eval = json(&ok(
        d,
        &["eval", "houses.json", houses.to_str().unwrap(), "--json"],
    ));
    assert_eq!(eval["task"], "regression");
    for key in ["mse", "rmse", "mae", "r2"] {
        assert!(eval[key].is_number(), "{key} in {eval}");
    }
    assert!(eval["r2"].as_f64().unwrap() > 0.95, "{eval}");

    // Predictions come back in the target's units (prices in the hundreds of thousands),
    // for columns in another order and with the target absent.
    std::fs::write(
        d.join("new.csv"),
        "neighborhood,age,rooms,area,owner\nhills,10,4,120.5,ann\ndocks,80,1,45,bob\n",
    )
    .unwrap();
    ok(
        d,
        &[
            "predict",
            "houses.json",
            "new.csv",
            "--output",
            "prices.csv",
        ],
    );
    let prices = std::fs::read_to_string(d.join("prices.csv")).unwrap();
    let values: Vec<f64> = prices.lines().skip(1).map(|l| l.parse().unwrap()).collect();
    assert_eq!(values.len(), 2);
    assert!(values[0] > 200_000.0 && values[0] < 400_000.0, "{prices}");
    assert!(values[1] > 20_000.0 && values[1] < 120_000.0, "{prices}");
    let err = user_error(d, &["predict", "houses.json", "new.csv", "--proba"]);
    assert!(
        err.contains("probabilities exist only for classification models"),
        "{err}"
    );
}

#[test]
fn missing_values_are_refused_then_dropped_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let customers = data("tests/data/customers.csv");
    let err = user_error(d, &["train", customers.to_str().unwrap()]);
    assert!(
        err.contains("customers.csv, line 19, column 'age': this cell is missing, and 3 of the 300 rows have missing values"),
        "{err}"
    );
    assert!(err.contains("--missing drop"), "{err}");
    let out = ok(
        d,
        &["train", customers.to_str().unwrap(), "--missing", "drop"],
    );
    assert!(
        out.contains("297 rows (dropped 3 with missing values)"),
        "{out}"
    );
    assert!(
        out.contains("features: 5 columns (2 numeric, 3 categorical) → 10 inputs"),
        "{out}"
    );
    let m = model(&d.join("model.json"));
    assert_eq!(m["training"]["dropped_rows"], 3);
    assert_eq!(
        m["encoding"]["target"]["labels"],
        serde_json::json!(["no", "yes"])
    );

    // A file without some feature columns is refused with the list.
    std::fs::write(d.join("few.csv"), "age,plan\n30,pro\n").unwrap();
    let err = user_error(d, &["predict", "model.json", "few.csv"]);
    assert!(
        err.contains("few.csv, line 1: the feature columns 'income', 'region', 'country' are not in the header"),
        "{err}"
    );
}

#[test]
fn bad_flags_exit_with_2_and_name_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = data("data/iris.csv");
    let iris = iris.to_str().unwrap();
    let cases: [(&[&str], &str); 8] = [
        (&["--lr", "-0.1"], "invalid --lr -0.1"),
        (&["--lr", "0"], "invalid --lr 0"),
        (&["--epochs", "0"], "invalid --epochs 0"),
        (&["--hidden", "16,0"], "invalid --hidden 0"),
        (&["--val-split", "1.5"], "invalid --val-split 1.5"),
        (&["--batch-size", "0"], "invalid --batch-size 0"),
        (
            &["--target", "colour"],
            "there is no column 'colour' to use as the target",
        ),
        (
            &["--epochs", "ten"],
            "invalid value 'ten' for '--epochs <N>'",
        ),
    ];
    for (flags, want) in cases {
        let mut args = vec!["train", iris];
        args.extend_from_slice(flags);
        let err = user_error(d, &args);
        assert!(err.contains(want), "{flags:?}: {err}");
    }
    assert!(
        !d.join("model.json").exists(),
        "no model from a refused run"
    );
}

#[test]
fn help_has_worked_examples() {
    let dir = tempfile::tempdir().unwrap();
    let top = ok(dir.path(), &["--help"]);
    assert!(
        top.contains("mlp train data/iris.csv --target species"),
        "{top}"
    );
    for command in ["train", "predict", "eval"] {
        let help = ok(dir.path(), &[command, "--help"]);
        assert!(help.contains("Examples:"), "{command}: {help}");
        assert!(
            help.contains(&format!("mlp {command} ")),
            "{command}: {help}"
        );
    }
}

#[test]
fn refit_trains_again_on_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = data("data/iris.csv");
    let out = ok(
        d,
        &[
            "train",
            iris.to_str().unwrap(),
            "--refit",
            "--model",
            "r.json",
        ],
    );
    let m = model(&d.join("r.json"));
    let best = m["metrics"]["best_epoch"].as_u64().unwrap();
    assert_eq!(m["training"]["refit_epochs"].as_u64(), Some(best));
    assert!(
        out.contains(&format!(
            "refit: trained a fresh network on all 150 rows for {best} epochs"
        )),
        "{out}"
    );
    let eval = json(&ok(
        d,
        &["eval", "r.json", iris.to_str().unwrap(), "--json"],
    ));
    assert!(eval["accuracy"].as_f64().unwrap() >= 0.95, "{eval}");
}
