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
    let run = mlp(d, &["train", iris.to_str().unwrap(), "--target", "species"]);
    assert_eq!(run.status.code(), Some(0), "{}", stderr(&run));
    let out = stdout(&run);
    assert!(
        out.contains(
            "task: classification of 'species' into 3 classes: setosa, versicolor, virginica"
        ),
        "{out}"
    );
    // By default three networks, each validated on its own third of the rows.
    assert!(
        out.contains("split: 3 folds of about 50 rows; each network validates on one (seed 0)"),
        "{out}"
    );
    assert!(
        out.contains("ensemble: 3 networks, one per fold (best epochs "),
        "{out}"
    );
    // The report on standard output, the "wrote" lines on standard error.
    assert!(!out.contains("wrote"), "{out}");
    assert_eq!(stderr(&run), "wrote model.json\nwrote model.png\n");

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
    let houses = data("data/houses.csv");
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
        out.contains("features: 4 columns (3 numeric, 1 categorical) → 28 inputs, 21 of them quantile bins of the numbers"),
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
    let err = user_error(
        d,
        &["train", customers.to_str().unwrap(), "--missing", "error"],
    );
    assert!(
        err.contains("customers.csv, line 19, column 'age': this cell is missing, and 3 of the 300 rows have missing values"),
        "{err}"
    );
    assert!(err.contains("--missing drop"), "{err}");
    assert!(err.contains("--missing impute"), "{err}");
    let out = ok(
        d,
        &["train", customers.to_str().unwrap(), "--missing", "drop"],
    );
    assert!(
        out.contains("297 rows (dropped 3 with missing values)"),
        "{out}"
    );
    assert!(
        out.contains("features: 5 columns (2 numeric, 3 categorical) → 26 inputs, 16 of them quantile bins of the numbers"),
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

/// Rows of `tests/data/customers.csv`'s features with gaps, and the same rows with the fill
/// values of a model trained on the whole file written in (pandas: `age.median()` 47.0,
/// `income.median()` 33574.0, most frequent plan 'plus' (106 rows), region 'west' (82)).
const GAPS: &str = "age,income,plan,region,country\n\
                    ,20892,plus,west,NZ\n\
                    62,NA,pro,south,NZ\n\
                    41,30000,,east,?\n";
const FILLED: &str = "age,income,plan,region,country\n\
                      47,20892,plus,west,NZ\n\
                      62,33574,pro,south,NZ\n\
                      41,30000,plus,east,NZ\n";

#[test]
fn missing_values_round_trip_through_train_predict_and_eval() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let customers = data("tests/data/customers.csv");
    let customers = customers.to_str().unwrap();
    // All rows train (no validation split), so the fill values are the whole file's.
    let out = ok(
        d,
        &[
            "train",
            customers,
            "--missing",
            "impute",
            "--val-split",
            "0",
            "--epochs",
            "40",
        ],
    );
    assert!(out.contains("customers.csv: 300 rows\n"), "{out}");
    assert!(
        out.contains(
            "missing: filled 3 cells: age: 2 with the median 47, income: 1 with the median 33574\n"
        ),
        "{out}"
    );
    let m = model(&d.join("model.json"));
    let fills: Vec<Value> = m["encoding"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fill"].clone())
        .collect();
    assert_eq!(
        fills,
        serde_json::json!([47.0, 33574.0, "plus", "west", "NZ"])
            .as_array()
            .unwrap()
            .clone()
    );
    assert_eq!(m["training"]["filled_cells"], 3);

    // A row with a missing cell gets the prediction of the row with the fill value written in.
    std::fs::write(d.join("gaps.csv"), GAPS).unwrap();
    std::fs::write(d.join("filled.csv"), FILLED).unwrap();
    let gaps = mlp(d, &["predict", "model.json", "gaps.csv", "--proba"]);
    assert_eq!(gaps.status.code(), Some(0), "{}", stderr(&gaps));
    assert_eq!(
        stderr(&gaps),
        "note: filled 4 missing cells with the model's fill values (the training medians and \
         most frequent categories)\n"
    );
    let filled = ok(d, &["predict", "model.json", "filled.csv", "--proba"]);
    assert_eq!(stdout(&gaps), filled);
    assert_eq!(filled.lines().count(), 4, "{filled}");

    // eval on a file with missing cells: every row scored, the same predictions as predict.
    let report = json(&ok(d, &["eval", "model.json", customers, "--json"]));
    assert_eq!(report["rows"], 300);
    assert_eq!(report["filled_cells"], 3);
    let predicted = ok(d, &["predict", "model.json", customers]);
    let truth = std::fs::read_to_string(customers).unwrap();
    let correct = predicted
        .lines()
        .skip(1)
        .zip(truth.lines().skip(1))
        .filter(|(p, row)| row.ends_with(&format!(",{p}")))
        .count();
    assert_eq!(report["accuracy"], correct as f64 / 300.0);
    let o = mlp(d, &["eval", "model.json", customers]);
    assert!(
        stderr(&o).contains("note: filled 3 missing cells with the model's fill values"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_model_without_fill_values_refuses_a_missing_cell_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let customers = data("tests/data/customers.csv");
    let customers = customers.to_str().unwrap();
    ok(
        d,
        &[
            "train",
            customers,
            "--missing",
            "drop",
            "--epochs",
            "5",
            "-q",
        ],
    );
    let m = model(&d.join("model.json"));
    assert!(m["encoding"]["features"][0].get("fill").is_none(), "{m}");
    std::fs::write(d.join("gaps.csv"), GAPS).unwrap();
    let want = "error: gaps.csv, line 2, column 'age': this cell is missing, and the model has \
                no value to fill it with (it was not trained to impute missing cells)\n  \
                hint: fill in the value or leave the row out, or retrain the model with \
                --missing impute, which stores fill values in it\n";
    assert_eq!(user_error(d, &["predict", "model.json", "gaps.csv"]), want);
    let err = user_error(d, &["eval", "model.json", customers]);
    assert!(
        err.starts_with("error: ")
            && err.contains("customers.csv, line 19, column 'age': this cell is missing")
            && err.contains("--missing impute"),
        "{err}"
    );
}

#[test]
fn unseen_categories_are_scored_and_counted_unless_asked_to_refuse_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let customers = data("tests/data/customers.csv");
    let customers = customers.to_str().unwrap();
    ok(
        d,
        &[
            "train",
            customers,
            "--missing",
            "impute",
            "--epochs",
            "5",
            "-q",
        ],
    );
    std::fs::write(
        d.join("new.csv"),
        "age,income,plan,region,country,churned\n\
         40,30000,pro,east,NZ,no\n\
         40,30000,platinum,east,NZ,yes\n\
         41,30000,platinum,moon,NZ,yes\n\
         42,30000,basic,moon,NZ,no\n",
    )
    .unwrap();
    // By default every row is scored, and the rows, cells and columns are counted.
    let o = mlp(d, &["predict", "model.json", "new.csv"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 5, "{}", stdout(&o));
    assert_eq!(
        stderr(&o),
        "note: 3 rows (4 cells) had categories not seen in training, scored with no category \
         on: plan (2), region (2) (--unknown-category error refuses them)\n"
    );
    // The row with an unseen category is scored as the row with no category on: the same
    // prediction as through --unknown-category ignore given by name.
    let named = ok(
        d,
        &[
            "predict",
            "model.json",
            "new.csv",
            "--unknown-category",
            "ignore",
        ],
    );
    assert_eq!(named, stdout(&o));
    // -q keeps the note out.
    let quiet = mlp(d, &["predict", "model.json", "new.csv", "-q"]);
    assert_eq!(stderr(&quiet), "");
    // The strict behaviour on request, located.
    let err = user_error(
        d,
        &[
            "predict",
            "model.json",
            "new.csv",
            "--unknown-category",
            "error",
        ],
    );
    assert_eq!(
        err,
        "error: new.csv, line 3, column 'plan': category 'platinum' was not seen in training\n  \
         hint: the model knows: basic, plus, pro; to predict anyway, with no category's input \
         on, use --unknown-category ignore\n"
    );
    let o = mlp(d, &["eval", "model.json", "new.csv", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report = json(&stdout(&o));
    assert_eq!(report["unseen_categories"], 4);
    assert_eq!(report["unseen_rows"], 3);
    assert_eq!(report["unseen_columns"]["plan"], 2);
    assert_eq!(report["unseen_columns"]["region"], 2);
    assert_eq!(report["rows"], 4);
    assert!(
        stderr(&o).contains("note: 3 rows (4 cells)"),
        "{}",
        stderr(&o)
    );
    let help = ok(d, &["predict", "--help"]);
    assert!(help.contains("--unknown-category error"), "{help}");
}

/// The figures of `mlp eval` on a hand-made model file, checked against scikit-learn.
#[test]
fn eval_reports_the_metrics_that_matter_and_the_majority_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let customers = data("tests/data/customers.csv");
    let customers = customers.to_str().unwrap();
    ok(
        d,
        &[
            "train",
            customers,
            "--missing",
            "impute",
            "--epochs",
            "30",
            "-q",
        ],
    );
    // The figures recomputed from the predicted probabilities.
    let o = mlp(d, &["eval", "model.json", customers, "--json"]);
    let report = json(&stdout(&o));
    let probs = ok(d, &["predict", "model.json", customers, "--proba"]);
    let truth: Vec<usize> = std::fs::read_to_string(customers)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| usize::from(l.ends_with(",yes")))
        .collect();
    let p_yes: Vec<f64> = (probs.lines().skip(1))
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    let log_loss: f64 = (truth.iter().zip(&p_yes))
        .map(|(&t, &p)| -(if t == 1 { p } else { 1.0 - p }).max(1e-15).ln())
        .sum::<f64>()
        / truth.len() as f64;
    let got = report["log_loss"].as_f64().unwrap();
    assert!((got - log_loss).abs() < 1e-4, "{got} against {log_loss}");
    let auc = report["roc_auc"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&auc), "{auc}");
    // 'no' is the most frequent class of the training rows; the baseline is its share here.
    let no = truth.iter().filter(|&&t| t == 0).count() as f64 / truth.len() as f64;
    assert_eq!(report["majority_baseline"]["class"], "no");
    assert!((report["majority_baseline"]["accuracy"].as_f64().unwrap() - no).abs() < 1e-12);
    let recalls: Vec<f64> = (report["classes"].as_array().unwrap().iter())
        .map(|c| c["recall"].as_f64().unwrap())
        .collect();
    let balanced = report["balanced_accuracy"].as_f64().unwrap();
    assert!((balanced - (recalls[0] + recalls[1]) / 2.0).abs() < 1e-12);
    // The same file the model was trained on: the figures are in-sample, and it says so.
    assert_eq!(report["in_sample"], true);
    assert!(
        stderr(&o).contains("is the file the model was trained on (same SHA-256)"),
        "{}",
        stderr(&o)
    );
    let text = ok(d, &["eval", "model.json", customers]);
    assert!(text.contains("; always \"no\": "), "{text}");
    for line in [
        "balanced accuracy: ",
        "macro F1: ",
        "log loss: ",
        "ROC AUC: ",
    ] {
        assert!(text.contains(line), "{line} in {text}");
    }
    // A copy with another name is still the training file; a changed file is not.
    let changed = d.join("changed.csv");
    let mut bytes = std::fs::read(customers).unwrap();
    bytes.extend_from_slice(b"30,40000,pro,north,NZ,no\n");
    std::fs::write(&changed, bytes).unwrap();
    let o = mlp(d, &["eval", "model.json", "changed.csv", "--json"]);
    assert_eq!(json(&stdout(&o))["in_sample"], false);
    assert!(!stderr(&o).contains("trained on"), "{}", stderr(&o));
}

#[test]
fn eval_and_importance_leave_out_rows_without_a_target() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let customers = data("tests/data/customers.csv");
    let customers = customers.to_str().unwrap();
    ok(
        d,
        &[
            "train",
            customers,
            "--missing",
            "impute",
            "--epochs",
            "5",
            "-q",
        ],
    );
    std::fs::write(
        d.join("test.csv"),
        "age,income,plan,region,country,churned\n\
         40,30000,pro,east,NZ,no\n\
         40,30000,basic,east,NZ,\n\
         35,50000,plus,west,NZ,yes\n\
         52,20000,basic,north,NZ,\n",
    )
    .unwrap();
    let o = mlp(d, &["eval", "model.json", "test.csv", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let report = json(&stdout(&o));
    assert_eq!(report["rows"], 2);
    assert_eq!(report["missing_targets"], 2);
    assert_eq!(
        stderr(&o),
        "note: left out 2 rows whose target 'churned' is missing\n"
    );
    let o = mlp(
        d,
        &["importance", "model.json", "test.csv", "--repeats", "2"],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("accuracy without shuffling"),
        "{}",
        stdout(&o)
    );
    assert_eq!(
        stderr(&o),
        "note: left out 2 rows whose target 'churned' is missing\n"
    );
    std::fs::write(
        d.join("none.csv"),
        "age,income,plan,region,country,churned\n40,30000,pro,east,NZ,\n",
    )
    .unwrap();
    assert_eq!(
        user_error(d, &["eval", "model.json", "none.csv"]),
        "error: none.csv: every row (1) has its target missing, so there is nothing to compare \
         with\n  hint: give it rows whose target is filled in\n"
    );
    let err = user_error(d, &["importance", "model.json", "none.csv"]);
    assert!(
        err.contains("every row (1) has its target missing"),
        "{err}"
    );
}

#[test]
fn class_weights_and_metrics_are_recorded_and_refused_where_they_do_not_apply() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let customers = data("tests/data/customers.csv");
    let customers = customers.to_str().unwrap();
    let out = ok(
        d,
        &[
            "train",
            customers,
            "--missing",
            "impute",
            "--epochs",
            "5",
            "--class-weight",
            "balanced",
            "--metric",
            "balanced_accuracy",
        ],
    );
    // No --target: the line says which column was taken.
    assert!(
        out.contains("target: 'churned', the last column (no --target given)"),
        "{out}"
    );
    // The accuracy beside always answering the most frequent class.
    assert!(out.contains("(always \"no\": 0."), "{out}");
    let m = model(&d.join("model.json"));
    let config = &m["training"]["config"];
    assert_eq!(config["class_weight"], "balanced");
    assert_eq!(config["metric"], "balanced_accuracy");
    let counts = m["encoding"]["target"]["counts"].as_array().unwrap();
    assert_eq!(counts.len(), 2);
    let houses = data("data/houses.csv");
    let houses = houses.to_str().unwrap();
    let err = user_error(d, &["train", houses, "--class-weight", "balanced"]);
    assert_eq!(
        err,
        "error: invalid --class-weight balanced: class weights apply to classification, and \
         this target is a regression\n  hint: leave out --class-weight\n"
    );
    let err = user_error(d, &["train", houses, "--metric", "roc_auc"]);
    assert!(
        err.starts_with(
            "error: invalid --metric roc_auc: this metric does not apply to regression"
        ) && err.contains("--metric r2"),
        "{err}"
    );
    let err = user_error(d, &["train", customers, "--metric", "mae"]);
    assert!(err.contains("does not apply to classification"), "{err}");
    let err = user_error(d, &["train", customers, "--metric", "f1"]);
    assert!(err.contains("balanced_accuracy"), "{err}");
}

#[test]
fn a_row_number_column_is_named_with_the_ignore_hint() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = std::fs::read_to_string(data("data/iris.csv")).unwrap();
    let mut numbered = String::from("id,");
    for (i, line) in iris.lines().enumerate() {
        if i > 0 {
            numbered.push_str(&format!("{},", i + 100));
        }
        numbered.push_str(line);
        numbered.push('\n');
    }
    std::fs::write(d.join("iris.csv"), numbered).unwrap();
    let o = mlp(
        d,
        &[
            "train", "iris.csv", "--target", "species", "--epochs", "3", "-q",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        "warning: column 'id' looks like a row identifier (whole numbers, all different): it \
         predicts nothing about new rows, and in a file sorted by the target it passes for a \
         strong feature\n  hint: if it is an identifier, leave it out with --ignore id\n"
    );
    // Kept as a feature unless left out; with --ignore there is no warning.
    assert!(model(&d.join("model.json"))["encoding"]["features"][0]["name"] == "id");
    let o = mlp(
        d,
        &[
            "train", "iris.csv", "--target", "species", "--epochs", "3", "-q", "--ignore", "id",
        ],
    );
    assert_eq!(stderr(&o), "");
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

#[test]
fn a_validation_split_or_folds_0_trains_one_network_and_refit_refuses_folds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = data("data/iris.csv");
    let iris = iris.to_str().unwrap();
    for flags in [["--val-split", "0.2"], ["--folds", "0"]] {
        let out = ok(
            d,
            &["train", iris, flags[0], flags[1], "--model", "one.json"],
        );
        assert!(
            out.contains("split: 120 training rows, 30 validation rows (seed 0)"),
            "{out}"
        );
        assert!(!out.contains("ensemble:"), "{out}");
        let m = model(&d.join("one.json"));
        assert_eq!(m["training"]["validation_rows"].as_u64(), Some(30));
        assert!(m["ensemble"].as_array().is_none_or(|e| e.is_empty()), "{m}");
        assert_eq!(m["training"]["config"]["folds"].as_u64(), Some(0), "{m}");
    }
    // Asked for both, --folds 3 and --refit cannot both take effect.
    let err = user_error(d, &["train", iris, "--folds", "3", "--refit"]);
    assert!(
        err.contains("refitting retrains one network on every row") && err.contains("--folds 0"),
        "{err}"
    );
    // Nor can --folds 5 and --val-split (each network validates on its own fold).
    let err = user_error(d, &["train", iris, "--folds", "5", "--val-split", "0.3"]);
    assert!(
        err.contains("invalid --val-split 0.3: with --folds 5 each network validates on its own")
            && err.contains("--folds 0"),
        "{err}"
    );
}

#[test]
fn folds_dropout_and_robust_scaling_train_an_ensemble_that_loads_and_scores() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = data("data/iris.csv");
    let out = ok(
        d,
        &[
            "train",
            iris.to_str().unwrap(),
            "--folds",
            "3",
            "--dropout",
            "0.1",
            "--scaling",
            "robust",
            "--model",
            "f.json",
        ],
    );
    assert!(
        out.contains("split: 3 folds of about 50 rows; each network validates on one"),
        "{out}"
    );
    assert!(out.contains("ensemble: 3 networks, one per fold"), "{out}");
    let m = model(&d.join("f.json"));
    // Every row trains, and every row is scored out of fold; the other two networks are
    // stored beside the first.
    assert_eq!(m["training"]["train_rows"].as_u64(), Some(150));
    assert_eq!(m["training"]["validation_rows"].as_u64(), Some(150));
    assert_eq!(m["ensemble"].as_array().unwrap().len(), 2);
    let kinds: Vec<&str> = m["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "linear", "relu", "dropout", "linear", "relu", "dropout", "linear"
        ]
    );
    assert_eq!(m["encoding"]["features"][0]["kind"], "robust");
    // The out-of-fold accuracy covers every row.
    let oof = m["metrics"]["validation_accuracy"].as_f64().unwrap();
    assert!(oof >= 0.9, "{oof}");
    let eval = json(&ok(
        d,
        &["eval", "f.json", iris.to_str().unwrap(), "--json"],
    ));
    assert!(eval["accuracy"].as_f64().unwrap() >= 0.95, "{eval}");

    // A member shaped unlike the first network is refused, naming it.
    let mut bad = m.clone();
    bad["ensemble"][1].as_array_mut().unwrap().remove(2);
    std::fs::write(d.join("bad.json"), bad.to_string()).unwrap();
    let err = user_error(d, &["eval", "bad.json", iris.to_str().unwrap()]);
    assert!(
        err.contains("ensemble network 2 is not shaped like the first network"),
        "{err}"
    );
    // So is a dropout rate outside [0, 1).
    let mut bad = m;
    bad["layers"][2]["rate"] = serde_json::json!(1.5);
    std::fs::write(d.join("bad.json"), bad.to_string()).unwrap();
    let err = user_error(d, &["eval", "bad.json", iris.to_str().unwrap()]);
    assert!(err.contains("layer 2 is a dropout with rate 1.5"), "{err}");
}

#[test]
fn batches_grow_with_the_rows_unless_a_batch_or_rate_is_given() {
    let dir = tempfile::tempdir().unwrap();
    // 15,000 rows: three folds of 10,000 training rows each, or one network on 12,000
    // with the validation fifth held out. Either way, batches of 64.
    let mut csv = String::from("a,b,y\n");
    for i in 0..15_000u32 {
        let (a, b) = ((i % 97) as f32 / 97.0, (i % 89) as f32 / 89.0);
        csv.push_str(&format!("{a},{b},{}\n", 2.0 * a - b));
    }
    std::fs::write(dir.path().join("big.csv"), csv).unwrap();
    let settings = |m: &str| model(&dir.path().join(m))["training"]["config"].clone();
    let lr = 1e-3 * std::f64::consts::SQRT_2;
    for (name, extra) in [("folds.json", &[][..]), ("stream.json", &["--stream"][..])] {
        let mut args = vec!["train", "big.csv", "--target", "y", "--epochs", "1"];
        args.extend(["--model", name, "--plot", "m.png"]);
        args.extend(extra);
        let out = ok(dir.path(), &args);
        assert!(
            out.contains("lr 0.0014142136, batches of 64 (grown with the rows; --batch-size or --lr keeps the defaults)"),
            "{out}"
        );
        let config = settings(name);
        assert_eq!(config["batch_size"], 64, "{name}");
        assert!((config["learning_rate"].as_f64().unwrap() - lr).abs() < 1e-7);
    }
    // Given either, both are kept as they are.
    for (name, flag, value) in [
        ("b.json", "--batch-size", "32"),
        ("lr.json", "--lr", "0.001"),
    ] {
        let args = [
            "train", "big.csv", "--target", "y", "--epochs", "1", flag, value,
        ];
        let out = ok(
            dir.path(),
            &[&args[..], &["--model", name, "--plot", "m.png"]].concat(),
        );
        assert!(out.contains("Adam, lr 0.001\n"), "{out}");
        let config = settings(name);
        assert_eq!(
            (
                config["batch_size"].as_u64(),
                config["learning_rate"].as_f64()
            ),
            (Some(32), Some(0.001))
        );
        assert_eq!(config["grow_batch"], false);
    }
}
