//! `mlp explain`, `importance`, `lr-find` and the pictures of `mlp train`, driven as a user
//! would, including the bad input each must refuse with exit code 2 and a located message.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const MLP: &str = env!("CARGO_BIN_EXE_mlp");

fn data(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn mlp(dir: &Path, args: &[&str]) -> Output {
    Command::new(MLP)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = mlp(dir, args);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "mlp {args:?}:\n{out}\n{err}");
    out
}

fn user_error(dir: &Path, args: &[&str]) -> String {
    let o = mlp(dir, args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(
        o.status.code(),
        Some(2),
        "mlp {args:?} should fail with 2:\n{err}"
    );
    assert!(
        err.starts_with("error: ") && !err.contains("panicked"),
        "{err}"
    );
    err
}

fn png(path: &Path) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    assert!(bytes.len() > 10_000, "{}: an empty canvas?", path.display());
}

/// A small iris model in `dir`, trained quickly: one network (`--folds 0`).
fn iris_model(dir: &Path) -> PathBuf {
    let model = dir.join("iris.json");
    let iris = data("data/iris.csv");
    ok(
        dir,
        &[
            "train",
            &iris,
            "--model",
            "iris.json",
            "--hidden",
            "16",
            "--epochs",
            "40",
            "--folds",
            "0",
            "-q",
        ],
    );
    model
}

#[test]
fn explain_prints_the_forward_and_backward_pass_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    iris_model(d);
    let iris = data("data/iris.csv");
    let out = ok(d, &["explain", "iris.json", &iris, "--row", "51"]);
    for want in [
        "row 51 (line 52), true target: versicolor",
        "Linear(35 → 16)  y = x·W + b",
        "ReLU",
        "softmax cross-entropy: L = −log softmax(z)[target] = ",
        "backward (from dL/dL = 1; at every node: downstream = local × upstream)",
        "dL/dz = softmax(z) − onehot(target)",
        "dL/dW = xᵀ·dy (16×3, norm ",
        "dL/db = dy = ",
        "downstream dL/dx = dy·Wᵀ = ",
        "local      relu′ = 1 if x > 0 else 0 = ",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
    let json: Value =
        serde_json::from_str(&ok(d, &["explain", "iris.json", &iris, "--json"])).expect("JSON");
    assert_eq!(json["row"], 1);
    assert_eq!(json["layers"].as_array().unwrap().len(), 3);
    assert_eq!(
        json["layers"][0]["local"]["grad_weight"]
            .as_array()
            .unwrap()
            .len(),
        35,
        "one row of dL/dW per input: 4 values and their 31 quantile bins"
    );
    assert_eq!(json["prediction"]["target"], "setosa");
    let p: f64 = json["prediction"]["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[1].as_f64().unwrap())
        .sum();
    assert!((p - 1.0).abs() < 1e-5, "{p}");
}

#[test]
fn explain_refuses_a_bad_row_and_a_missing_target_with_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    iris_model(d);
    let iris = data("data/iris.csv");
    let e = user_error(d, &["explain", "iris.json", &iris, "--row", "151"]);
    assert!(
        e.contains("iris.csv: there is no data row 151 (--row): the file has rows 1 to 150"),
        "{e}"
    );
    assert!(e.contains("hint: pass --row between 1 and 150"), "{e}");
    user_error(d, &["explain", "iris.json", &iris, "--row", "0"]);
    user_error(d, &["explain", "iris.json", &iris, "--row", "-3"]);
    let rows = "sepal_length,sepal_width,petal_length,petal_width,species\n\
                5.1,3.5,1.4,0.2,setosa\n6.0,2.9,4.5,1.5,\n";
    std::fs::write(d.join("gap.csv"), rows).unwrap();
    let e = user_error(d, &["explain", "iris.json", "gap.csv", "--row", "2"]);
    assert!(
        e.contains("gap.csv, line 3, column 'species': the target is missing in this row"),
        "{e}"
    );
    // Row 1 of the same file is fine.
    ok(d, &["explain", "iris.json", "gap.csv", "--row", "1"]);
    let e = user_error(d, &["explain", "iris.json", "nothing.csv"]);
    assert!(e.contains("nothing.csv"), "{e}");
    let e = user_error(d, &["explain", &iris, "iris.json"]);
    assert!(e.contains("looks like CSV data"), "{e}");
    std::fs::write(
        d.join("no_target.csv"),
        "sepal_length,sepal_width,petal_length,petal_width\n1,2,3,4\n",
    )
    .unwrap();
    let e = user_error(d, &["explain", "iris.json", "no_target.csv"]);
    assert!(
        e.contains("line 1: the target column 'species' is not in the header"),
        "{e}"
    );
}

#[test]
fn importance_ranks_the_deciding_column_first_as_table_json_and_chart() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `key` alone decides the class; `noise` and `shade` do not.
    let mut csv = String::from("noise,key,shade,class\n");
    for i in 0..200u32 {
        let key = (i * 37 % 200) as f32 / 100.0 - 1.0;
        let noise = (i * 91 % 200) as f32 / 100.0 - 1.0;
        let shade = ["dark", "light"][(i * 13 % 7 % 2) as usize];
        let class = if key > 0.0 { "on" } else { "off" };
        csv.push_str(&format!("{noise},{key},{shade},{class}\n"));
    }
    std::fs::write(d.join("key.csv"), csv).unwrap();
    ok(
        d,
        &[
            "train", "key.csv", "--model", "key.json", "--hidden", "16", "--epochs", "60", "-q",
        ],
    );
    let out = ok(
        d,
        &["importance", "key.json", "key.csv", "--plot", "imp.png"],
    );
    let first = out.lines().nth(2).unwrap_or_default();
    assert!(first.starts_with("key "), "{out}");
    png(&d.join("imp.png"));
    let json: Value = serde_json::from_str(&ok(
        d,
        &[
            "importance",
            "key.json",
            "key.csv",
            "--json",
            "--repeats",
            "3",
        ],
    ))
    .unwrap();
    let rows = json["importance"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{json}");
    assert_eq!(rows[0]["column"], "key");
    let top = rows[0]["mean"].as_f64().unwrap();
    assert!(top > 0.3, "{json}");
    for r in &rows[1..] {
        assert!(r["mean"].as_f64().unwrap() < top / 5.0, "{json}");
        assert!(r["std"].as_f64().unwrap() >= 0.0);
    }

    let e = user_error(d, &["importance", "key.json", "key.csv", "--repeats", "0"]);
    assert!(e.contains("invalid --repeats 0"), "{e}");
    let e = user_error(
        d,
        &["importance", "key.json", "key.csv", "--plot", "key.csv"],
    );
    assert!(e.contains("invalid --plot"), "{e}");
    std::fs::write(
        d.join("bad.csv"),
        "noise,key,shade,class\n0.1,oops,dark,on\n",
    )
    .unwrap();
    let e = user_error(d, &["importance", "key.json", "bad.csv"]);
    assert!(e.contains("bad.csv, line 2, column 'key'"), "{e}");
}

#[test]
fn train_draws_the_boundary_health_and_gif_and_refuses_boundary_on_four_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = data("data/iris.csv");
    let out = ok(
        d,
        &[
            "train",
            &iris,
            "--ignore",
            "sepal_length,sepal_width",
            "--hidden",
            "16",
            "--epochs",
            "30",
            "--boundary",
            "b.png",
            "--boundary-gif",
            "b.gif",
            "--health",
            "h.png",
        ],
    );
    assert!(out.contains("health:\n"), "{out}");
    assert!(out.contains("no problems found"), "{out}");
    png(&d.join("b.png"));
    png(&d.join("h.png"));
    let gif = std::fs::read(d.join("b.gif")).unwrap();
    assert_eq!(&gif[..6], b"GIF89a");
    // The "wrote" lines are on standard error, as every command's.
    let o = mlp(
        d,
        &[
            "train",
            &iris,
            "--ignore",
            "sepal_length,sepal_width",
            "--hidden",
            "16",
        ]
        .iter()
        .copied()
        .chain([
            "--epochs",
            "30",
            "--boundary-gif",
            "b.gif",
            "--model",
            "g.json",
        ])
        .collect::<Vec<_>>(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    // One frame an epoch up to the kept epoch 30, and the saved ensemble.
    assert!(err.contains("wrote b.gif (31 frames)\n"), "{err}");
    let model: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("model.json")).unwrap()).unwrap();
    let health = &model["health"];
    assert_eq!(health["linear"].as_array().unwrap().len(), 2, "{health}");
    assert_eq!(
        health["linear"][0]["grad_norm"].as_array().unwrap().len(),
        30
    );
    assert_eq!(health["problems"].as_array().unwrap().len(), 0);
    // The model with its health report still evaluates.
    ok(d, &["eval", "model.json", &iris]);

    let e = user_error(d, &["train", &iris, "--boundary", "x.png", "-q"]);
    assert!(
        e.contains(
            "invalid --boundary: a decision boundary is drawn on a plane, so the model \
                    needs exactly two numeric input columns; this one has 4"
        ),
        "{e}"
    );
    assert!(!d.join("x.png").exists());
    let e = user_error(d, &["train", &iris, "--health", &iris, "-q"]);
    assert!(e.contains("invalid --health"), "{e}");
}

#[test]
fn train_names_dead_relu_units_after_a_huge_learning_rate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = data("data/iris.csv");
    let out = ok(
        d,
        &[
            "train",
            &iris,
            "--folds",
            "0",
            "--optimizer",
            "sgd",
            "--lr",
            "3",
            "--hidden",
            "64,64",
            "--epochs",
            "30",
            "--patience",
            "0",
        ],
    );
    assert!(out.contains("  dead ReLU: "), "{out}");
    assert!(
        out.contains("hint: a learning rate too high knocks units dead"),
        "{out}"
    );
    let model: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("model.json")).unwrap()).unwrap();
    let kinds: Vec<&str> = model["health"]["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"dead_relu"), "{kinds:?}");
}

#[test]
fn lr_find_suggests_a_rate_draws_the_sweep_and_writes_no_model() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = data("data/iris.csv");
    let out = ok(d, &["lr-find", &iris, "--plot", "lr.png"]);
    let lr: f32 = out
        .lines()
        .find_map(|l| l.strip_prefix("suggested lr: "))
        .unwrap_or_else(|| panic!("{out}"))
        .parse()
        .unwrap();
    assert!(lr > 1e-5 && lr < 1.0, "{out}");
    assert!(out.contains("rule: the learning rate at the lowest smoothed loss, divided by 10"));
    png(&d.join("lr.png"));
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["lr.png"], "lr-find leaves only its plot");

    let e = user_error(d, &["lr-find", &iris, "--batch-size", "0"]);
    assert!(e.contains("invalid --batch-size 0"), "{e}");
    let e = user_error(d, &["lr-find", &iris, "--target", "colour"]);
    assert!(
        e.contains("iris.csv, line 1: there is no column 'colour'"),
        "{e}"
    );
    let e = user_error(d, &["lr-find", &iris, "--plot", &iris]);
    assert!(e.contains("invalid --plot"), "{e}");
}

#[test]
fn explain_walks_network_1_of_an_ensemble_and_shows_the_models_mean() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = data("data/iris.csv");
    ok(
        d,
        &[
            "train",
            &iris,
            "--model",
            "folds.json",
            "--hidden",
            "16",
            "--epochs",
            "30",
            "--folds",
            "3",
            "-q",
        ],
    );
    let out = ok(d, &["explain", "folds.json", &iris, "--row", "51"]);
    for want in [
        "network 1 of 3: the model is an ensemble of 3 networks (one per fold), and its \
         prediction averages all 3",
        " → 16)  y = x·W + b",
        "  the model's prediction (mean of 3 networks): ",
        "backward (from dL/dL = 1",
    ] {
        assert!(out.contains(want), "no {want:?} in:\n{out}");
    }
    let json: Value = serde_json::from_str(&ok(
        d,
        &["explain", "folds.json", &iris, "--row", "51", "--json"],
    ))
    .expect("JSON");
    assert_eq!(json["ensemble"]["network"], 1, "{json}");
    assert_eq!(json["ensemble"]["networks"], 3, "{json}");
    // The ensemble's prediction is what `mlp predict` says for row 51.
    let predicted = ok(d, &["predict", "folds.json", &iris, "--proba"]);
    let line: Vec<&str> = predicted.lines().nth(51).unwrap().split(',').collect();
    let mean = &json["ensemble"]["prediction"];
    assert_eq!(mean["predicted"], line[0], "{json}\n{predicted}");
    let p: Vec<f64> = mean["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[1].as_f64().unwrap())
        .collect();
    assert_eq!(p.len(), 3);
    for (got, want) in p.iter().zip(&line[1..]) {
        let want: f64 = want.parse().unwrap();
        assert!((got - want).abs() <= 1e-5, "{p:?} vs {line:?}");
    }
    // Network 1's own probabilities are another thing: the mean of three differs.
    let first: Vec<f64> = json["prediction"]["probabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[1].as_f64().unwrap())
        .collect();
    assert_ne!(first, p, "{json}");
    // A single network's explanation has no ensemble note.
    iris_model(d);
    let single: Value =
        serde_json::from_str(&ok(d, &["explain", "iris.json", &iris, "--json"])).unwrap();
    assert!(single.get("ensemble").is_none(), "{single}");
    let text = ok(d, &["explain", "iris.json", &iris]);
    assert!(!text.contains("network 1 of"), "{text}");
}

#[test]
fn importance_of_an_ensemble_scores_its_averaged_predictions() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `key` alone decides the class; `noise` and `shade` do not.
    let mut csv = String::from("noise,key,shade,class\n");
    for i in 0..200u32 {
        let key = (i * 37 % 200) as f32 / 100.0 - 1.0;
        let noise = (i * 91 % 200) as f32 / 100.0 - 1.0;
        let shade = ["dark", "light"][(i * 13 % 7 % 2) as usize];
        let class = if key > 0.0 { "on" } else { "off" };
        csv.push_str(&format!("{noise},{key},{shade},{class}\n"));
    }
    std::fs::write(d.join("key.csv"), csv).unwrap();
    ok(
        d,
        &[
            "train", "key.csv", "--model", "key.json", "--hidden", "16", "--epochs", "60",
            "--folds", "3", "-q",
        ],
    );
    let json: Value = serde_json::from_str(&ok(
        d,
        &[
            "importance",
            "key.json",
            "key.csv",
            "--json",
            "--repeats",
            "3",
        ],
    ))
    .unwrap();
    // The baseline is the ensemble's accuracy, as `mlp predict` labels the rows.
    let predicted = ok(d, &["predict", "key.json", "key.csv"]);
    let right = predicted
        .lines()
        .skip(1)
        .zip(
            std::fs::read_to_string(d.join("key.csv"))
                .unwrap()
                .lines()
                .skip(1),
        )
        .filter(|(p, row)| row.ends_with(&format!(",{p}")))
        .count();
    let baseline = json["baseline"].as_f64().unwrap();
    assert!((baseline - right as f64 / 200.0).abs() < 1e-9, "{json}");
    assert!(baseline > 0.9, "{json}");
    let rows = json["importance"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{json}");
    assert_eq!(rows[0]["column"], "key");
    let top = rows[0]["mean"].as_f64().unwrap();
    assert!(top > 0.3, "{json}");
    for r in &rows[1..] {
        assert!(r["mean"].as_f64().unwrap() < top / 5.0, "{json}");
    }
}
