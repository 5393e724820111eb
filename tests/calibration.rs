//! Calibrated probabilities and conformal prediction intervals, through the `mlp` binary on
//! real CSV files: `train` stores them, `predict`, `eval` apply them, bad levels are refused.

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
        .env_remove("MLP_THREADS")
        .output()
        .expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs and insists on exit code 0; returns stdout.
fn ok(dir: &Path, args: &[&str]) -> String {
    let o = mlp(dir, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "mlp {args:?}:\n{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// Runs and insists on exit code 2 with one message; returns stderr.
fn refused(dir: &Path, args: &[&str]) -> String {
    let o = mlp(dir, args);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "mlp {args:?}:\n{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    err
}

fn model(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The first `train` rows of houses.csv into train.csv, the rest into test.csv.
fn houses(dir: &Path, train: usize) -> (PathBuf, PathBuf) {
    let text = std::fs::read_to_string(data("data/houses.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let write = |name: &str, rows: &[&str]| {
        let path = dir.join(name);
        std::fs::write(&path, format!("{header}\n{}\n", rows.join("\n"))).unwrap();
        path
    };
    (
        write("train.csv", &rows[..train]),
        write("test.csv", &rows[train..]),
    )
}

/// Reads CSV text into rows of cells.
fn cells(csv: &str) -> Vec<Vec<String>> {
    csv.lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// Each network of the ensemble at `path` as a model file of its own (the residuals left
/// out), at `dir/network{k}.json`.
fn networks(path: &Path, dir: &Path) -> Vec<PathBuf> {
    let m = model(path);
    let mut all = vec![m["layers"].clone()];
    all.extend(m["ensemble"].as_array().unwrap().iter().cloned());
    (all.into_iter().enumerate())
        .map(|(k, layers)| {
            let mut one = m.clone();
            let object = one.as_object_mut().unwrap();
            object.insert("layers".into(), layers);
            object.remove("ensemble");
            object.remove("residuals");
            let path = dir.join(format!("network{k}.json"));
            std::fs::write(&path, one.to_string()).unwrap();
            path
        })
        .collect()
}

/// The values of the first column of `mlp predict` output.
fn first_column(csv: &str) -> Vec<f64> {
    cells(csv)[1..]
        .iter()
        .map(|r| r[0].parse().unwrap())
        .collect()
}

/// `predict --interval 0.9` of `model` on `test`: (prediction, lower, upper) per row.
fn interval_rows(d: &Path, model: &str, test: &str) -> Vec<[f64; 3]> {
    let rows = cells(&ok(d, &["predict", model, test, "--interval", "0.9"]));
    assert_eq!(rows[0], ["prediction", "lower", "upper"]);
    (rows[1..].iter())
        .map(|r| [0, 1, 2].map(|i| r[i].parse::<f64>().unwrap()))
        .collect()
}

/// CV+ at 0.9 by sorting, over 300 held-out rows: the ⌊0.1 · 301⌋ = 30th smallest of
/// { μ'_k(x) − s·R } and the ⌈0.9 · 301⌉ = 271st smallest of { μ'_k(x) + s·R }, where
/// μ'_k(x) = ŷ + spread·(μ_k(x) − ŷ); checks every row of `values` against it and returns
/// how many rows are not symmetric around their prediction.
fn check_cv_plus(
    values: &[[f64; 3]],
    folds: &[Vec<f64>],
    members: &[Vec<f64>],
    (s, spread): (f64, f64),
) -> usize {
    let mut asymmetric = 0;
    for (r, [v, lower, upper]) in values.iter().enumerate() {
        let (mut below, mut above) = (Vec::new(), Vec::new());
        for (fold, mu) in folds.iter().zip(members) {
            let moved = v + spread * (mu[r] - v);
            below.extend(fold.iter().map(|e| moved - s * e));
            above.extend(fold.iter().map(|e| moved + s * e));
        }
        below.sort_by(f64::total_cmp);
        above.sort_by(f64::total_cmp);
        assert_eq!(below.len(), 300);
        let scale = v.abs().max(1.0);
        assert!(
            (lower - below[29]).abs() <= 1e-5 * scale,
            "{lower} vs {}",
            below[29]
        );
        assert!(
            (upper - above[270]).abs() <= 1e-5 * scale,
            "{upper} vs {}",
            above[270]
        );
        let mean = members.iter().map(|m| m[r]).sum::<f64>() / 3.0;
        assert!((v - mean).abs() <= 1e-5 * scale, "{v} vs {mean}");
        if ((upper - v) - (v - lower)).abs() > 1e-3 * scale {
            asymmetric += 1;
        }
    }
    asymmetric
}

#[test]
fn regression_intervals_are_cv_plus_over_the_folds_networks() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (train, test) = houses(d, 300);
    let (train, test) = (train.to_str().unwrap(), test.to_str().unwrap());
    let printed = ok(d, &["train", train, "--target", "price", "--epochs", "40"]);
    assert!(
        printed.contains("intervals: 90% of new rows are expected within CV+ intervals sized for the networks' mean of about ±"),
        "{printed}"
    );
    // Three folds: every training row has an out-of-fold residual, kept with its network.
    let m = model(&d.join("model.json"));
    assert_eq!(m["residuals"]["rows"], 300);
    let numbers = |v: &Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect()
    };
    let residuals = numbers(&m["residuals"]["absolute"]);
    assert_eq!(residuals.len(), 300);
    assert!(residuals.windows(2).all(|w| w[0] <= w[1]));
    let folds: Vec<Vec<f64>> = (m["residuals"]["folds"].as_array().unwrap().iter())
        .map(|f| numbers(&f["absolute"]))
        .collect();
    assert_eq!(folds.len(), 3);
    assert!(
        folds.iter().all(|f| (99..=101).contains(&f.len())),
        "{folds:?}"
    );
    let mut union: Vec<f64> = folds.concat();
    union.sort_by(f64::total_cmp);
    assert_eq!(union, residuals);
    // Each network's prediction for each test row, from a model file of its own.
    let each = networks(&d.join("model.json"), d);
    let members: Vec<Vec<f64>> = (each.iter())
        .map(|p| first_column(&ok(d, &["predict", p.to_str().unwrap(), test])))
        .collect();
    // Scaled to the ensemble: the networks' spread by 1/√3, the residuals by
    // √(1 − (2/3)·v / mean(R²)), v the mean over the 300 training rows of the variance
    // of the three networks' predictions (computed here from each network's file).
    let scale = &m["residuals"]["ensemble"];
    let spread = scale["spread"].as_f64().unwrap();
    assert_eq!(spread, 1.0 / 3f64.sqrt());
    let on_train: Vec<Vec<f64>> = (each.iter())
        .map(|p| first_column(&ok(d, &["predict", p.to_str().unwrap(), train])))
        .collect();
    let v = (0..300)
        .map(|r| {
            let mean = on_train.iter().map(|m| m[r]).sum::<f64>() / 3.0;
            on_train.iter().map(|m| (m[r] - mean).powi(2)).sum::<f64>() / 2.0
        })
        .sum::<f64>()
        / 300.0;
    let mean_square = residuals.iter().map(|r| r * r).sum::<f64>() / 300.0;
    let s = scale["residuals"].as_f64().unwrap();
    let expected = (1.0 - 2.0 / 3.0 * v / mean_square).sqrt();
    assert!((s - expected).abs() < 1e-4, "{s} vs {expected}");
    assert!(s < 0.999 && s > 0.5, "{s}");
    let values = interval_rows(d, "model.json", test);
    assert_eq!(values.len(), 100);
    let asymmetric = check_cv_plus(&values, &folds, &members, (s, spread));
    // Plain CV+ (`--intervals cv-plus`, the same file without `ensemble`): the same
    // predictions, each network and residual as it is, and a wider interval.
    let mut plain = model(&d.join("model.json"));
    plain["residuals"]
        .as_object_mut()
        .unwrap()
        .remove("ensemble");
    std::fs::write(d.join("plain.json"), plain.to_string()).unwrap();
    let wider = interval_rows(d, "plain.json", test);
    check_cv_plus(&wider, &folds, &members, (1.0, 1.0));
    let width = |rows: &[[f64; 3]]| rows.iter().map(|[_, l, u]| u - l).sum::<f64>();
    assert!(width(&wider) > width(&values));
    // The networks disagree differently from row to row: the ends are not the split
    // interval's, the prediction ± one half-width.
    assert!(asymmetric > 50, "{asymmetric} of 100 rows asymmetric");
    // Without --interval, the same predictions.
    let plain = cells(&ok(d, &["predict", "model.json", test]));
    for (p, [v, ..]) in plain[1..].iter().zip(&values) {
        assert_eq!(p[0].parse::<f64>().unwrap(), *v);
    }
    // eval counts the test rows inside, as computed here from the true prices.
    let truth: Vec<f64> = (cells(&std::fs::read_to_string(test).unwrap())[1..].iter())
        .map(|r| r[4].parse().unwrap())
        .collect();
    let inside = (truth.iter().zip(&values))
        .filter(|(t, [_, lower, upper])| (*lower..=*upper).contains(*t))
        .count();
    let report: Value = serde_json::from_str(&ok(
        d,
        &["eval", "model.json", test, "--json", "--interval", "0.9"],
    ))
    .unwrap();
    let interval = &report["interval"];
    assert_eq!(interval["level"], 0.9);
    // One row may sit on an end that f32 rounding moves; all others must agree.
    let covered = interval["covered"].as_u64().unwrap() as usize;
    assert!(covered.abs_diff(inside) <= 1, "{covered} vs {inside}");
    assert!(covered >= 75, "{covered} of 100 inside a 90% interval");
    let width = values.iter().map(|[_, l, u]| u - l).sum::<f64>() / 100.0;
    let said_width = interval["mean_width"].as_f64().unwrap();
    assert!(
        (said_width - width).abs() < 1e-5 * width,
        "{said_width} vs {width}"
    );
    let said = ok(d, &["eval", "model.json", test, "--interval", "0.9"]);
    assert!(
        said.contains(&format!(
            "interval 0.9: coverage {:.4} ({covered}/100)",
            covered as f64 / 100.0
        )),
        "{said}"
    );
    // A wider level, a wider interval.
    let wide: Value = serde_json::from_str(&ok(
        d,
        &["eval", "model.json", test, "--json", "--interval", "0.95"],
    ))
    .unwrap();
    assert!(wide["interval"]["mean_width"].as_f64() > interval["mean_width"].as_f64());
    // A file from before CV+ (no `residuals.folds`) still loads, and is split-conformal:
    // the same prediction ± the ⌈301 · 0.9⌉ = 271st smallest residual.
    let mut old = model(&d.join("model.json"));
    old["residuals"].as_object_mut().unwrap().remove("folds");
    // An ensemble scale needs the networks' residuals.
    std::fs::write(d.join("old.json"), old.to_string()).unwrap();
    let err = refused(d, &["predict", "old.json", test, "--interval", "0.9"]);
    assert!(
        err.contains("`residuals.ensemble` needs two `folds` or more"),
        "{err}"
    );
    old["residuals"].as_object_mut().unwrap().remove("ensemble");
    std::fs::write(d.join("old.json"), old.to_string()).unwrap();
    let half = residuals[270];
    let split = cells(&ok(d, &["predict", "old.json", test, "--interval", "0.9"]));
    for (row, [v, ..]) in split[1..].iter().zip(&values) {
        let [p, lower, upper] = [0, 1, 2].map(|i| row[i].parse::<f64>().unwrap());
        assert_eq!(p, *v);
        assert!(
            (p - lower - half).abs() <= 1e-6 * p.abs().max(half),
            "{row:?}"
        );
        assert!(
            (upper - p - half).abs() <= 1e-6 * p.abs().max(half),
            "{row:?}"
        );
    }
    let report: Value = serde_json::from_str(&ok(
        d,
        &["eval", "old.json", test, "--json", "--interval", "0.9"],
    ))
    .unwrap();
    let width = report["interval"]["mean_width"].as_f64().unwrap();
    assert!(
        (width - 2.0 * half).abs() < 1e-9 * half,
        "{width} vs {half}"
    );
    // Residual lists that do not fit the networks are refused, naming what is wrong.
    let mut damaged = model(&d.join("model.json"));
    damaged["residuals"]["folds"].as_array_mut().unwrap().pop();
    std::fs::write(d.join("damaged.json"), damaged.to_string()).unwrap();
    let err = refused(d, &["predict", "damaged.json", test, "--interval", "0.9"]);
    assert!(
        err.contains("`residuals.folds` holds 2 lists for 3 networks"),
        "{err}"
    );
    let mut damaged = model(&d.join("model.json"));
    damaged["residuals"]["folds"][1]["rows"] = 7.into();
    std::fs::write(d.join("damaged.json"), damaged.to_string()).unwrap();
    let err = refused(d, &["eval", "damaged.json", test]);
    assert!(
        err.contains("network 1's residuals (`residuals.folds`): `residuals` holds"),
        "{err}"
    );
}

#[test]
fn bad_interval_levels_and_models_are_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (train, test) = houses(d, 300);
    let (train, test) = (train.to_str().unwrap(), test.to_str().unwrap());
    // One network: split-conformal on its 60 validation rows.
    ok(
        d,
        &[
            "train", train, "--target", "price", "--epochs", "20", "--folds", "0", "-q",
        ],
    );
    assert_eq!(model(&d.join("model.json"))["residuals"]["rows"], 60);
    assert!(
        model(&d.join("model.json"))["residuals"]
            .get("folds")
            .is_none()
    );
    for level in ["1.5", "0", "-0.2", "1"] {
        let err = refused(d, &["predict", "model.json", test, "--interval", level]);
        assert!(err.contains("strictly between 0 and 1"), "{err}");
        assert!(err.contains("--interval 0.9"), "{err}");
    }
    // ⌈61 · 0.99⌉ = 61 > 60 rows: 99 are needed; 0.98 is the most 60 rows give.
    let err = refused(d, &["eval", "model.json", test, "--interval", "0.99"]);
    assert!(err.contains("needs at least 99 held-out rows"), "{err}");
    assert!(err.contains("trained with 60"), "{err}");
    assert!(err.contains("--interval 0.98"), "{err}");
    ok(d, &["predict", "model.json", test, "--interval", "0.98"]);
    let err = refused(
        d,
        &[
            "export",
            "model.json",
            "--output",
            "m.onnx",
            "--interval",
            "2",
        ],
    );
    assert!(err.contains("strictly between 0 and 1"), "{err}");
    assert!(!d.join("m.onnx").exists());
    // A classifier has probabilities, not intervals.
    let iris = data("data/iris.csv");
    let iris = iris.to_str().unwrap();
    ok(
        d,
        &["train", iris, "--model", "iris.json", "--epochs", "5", "-q"],
    );
    for command in ["predict", "eval"] {
        let err = refused(d, &[command, "iris.json", iris, "--interval", "0.9"]);
        assert!(
            err.contains("prediction intervals are for regression models"),
            "{err}"
        );
        assert!(err.contains("--proba"), "{err}");
    }
    // A regression model from before intervals (no residuals): retrain.
    let mut old = model(&d.join("model.json"));
    old.as_object_mut().unwrap().remove("residuals");
    std::fs::write(d.join("old.json"), old.to_string()).unwrap();
    ok(d, &["predict", "old.json", test]);
    let err = refused(d, &["predict", "old.json", test, "--interval", "0.9"]);
    assert!(err.contains("holds no held-out residuals"), "{err}");
    assert!(err.contains("--folds 3"), "{err}");
}

/// The mean log loss of `mlp predict --proba` output against iris's species.
fn iris_log_loss(predictions: &str) -> f64 {
    let truth: Vec<String> = (cells(&std::fs::read_to_string(data("data/iris.csv")).unwrap())[1..]
        .iter())
    .map(|r| r[4].clone())
    .collect();
    let rows = cells(predictions);
    let header = &rows[0];
    let mut total = 0.0;
    for (row, t) in rows[1..].iter().zip(&truth) {
        let at = header
            .iter()
            .position(|h| *h == format!("prob_{t}"))
            .unwrap();
        total -= row[at].parse::<f64>().unwrap().max(1e-6).ln();
    }
    total / truth.len() as f64
}

#[test]
fn temperature_calibration_is_stored_applied_and_can_be_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = data("data/iris.csv");
    let iris = iris.to_str().unwrap();
    // Label smoothing (not the default) is what a temperature has most to undo.
    let said = ok(
        d,
        &[
            "train",
            iris,
            "--model",
            "t.json",
            "--epochs",
            "60",
            "--label-smoothing",
            "0.1",
        ],
    );
    let m = model(&d.join("t.json"));
    let t = m["calibration"]["temperature"].as_f64().unwrap();
    let fitted = &m["calibration"]["fitted"];
    assert_eq!(fitted["rows"], 150);
    // Label smoothing 0.1 keeps the networks' probabilities from the 0 and 1 the
    // out-of-fold rows warrant: the temperature sharpens them, and their log loss falls.
    assert!(t < 1.0, "{t}");
    let (before, after) = (
        fitted["log_loss_before"].as_f64().unwrap(),
        fitted["log_loss_after"].as_f64().unwrap(),
    );
    assert!(after < 0.8 * before, "{before} → {after}");
    assert!(
        said.contains(&format!(
            "calibration: temperature {t:.3}, fitted on 150 held-out rows (their log loss \
             {before:.4} → {after:.4})"
        )),
        "{said}"
    );
    assert_eq!(m["training"]["config"]["calibration"], "temperature");
    // The same networks without calibration.
    ok(
        d,
        &[
            "train",
            iris,
            "--model",
            "n.json",
            "--epochs",
            "60",
            "--label-smoothing",
            "0.1",
            "--calibration",
            "none",
            "-q",
        ],
    );
    let n = model(&d.join("n.json"));
    assert!(n.get("calibration").is_none());
    assert_eq!(n["training"]["config"]["calibration"], "none");
    assert_eq!(n["layers"], m["layers"]);
    let calibrated = ok(d, &["predict", "t.json", iris, "--proba"]);
    let plain = ok(d, &["predict", "n.json", iris, "--proba"]);
    // The same classes, sharper probabilities, lower log loss on the rows.
    let classes = |out: &str| {
        cells(out)
            .into_iter()
            .map(|r| r[0].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(classes(&calibrated), classes(&plain));
    let first = |out: &str| cells(out)[1][1].parse::<f64>().unwrap();
    assert!(
        first(&calibrated) > first(&plain),
        "{} {}",
        first(&calibrated),
        first(&plain)
    );
    assert!(iris_log_loss(&calibrated) < iris_log_loss(&plain));
    // Quiet runs print no calibration line; label smoothing and calibration are separate.
    let quiet = ok(
        d,
        &[
            "train",
            iris,
            "--model",
            "q.json",
            "--epochs",
            "20",
            "-q",
            "--label-smoothing",
            "0",
        ],
    );
    assert!(!quiet.contains("calibration"), "{quiet}");
    assert!(
        model(&d.join("q.json"))["calibration"]["temperature"]
            .as_f64()
            .is_some()
    );
}

#[test]
fn intervals_split_keeps_one_width_around_the_ensemble_and_is_for_regression_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (train, test) = houses(d, 300);
    let (train, test) = (train.to_str().unwrap(), test.to_str().unwrap());
    let printed = ok(
        d,
        &[
            "train",
            train,
            "--target",
            "price",
            "--epochs",
            "20",
            "--intervals",
            "split",
        ],
    );
    assert!(printed.contains("expected within ±"), "{printed}");
    let m = model(&d.join("model.json"));
    // Three networks, but no list per network: split-conformal over all 300 residuals.
    assert_eq!(m["ensemble"].as_array().unwrap().len(), 2);
    assert_eq!(m["residuals"]["rows"], 300);
    assert!(m["residuals"].get("folds").is_none(), "{}", m["residuals"]);
    assert_eq!(m["training"]["config"]["intervals"], "split");
    // The half-width is the ⌈301 · 0.9⌉ = 271st smallest residual, the same on every row.
    let half = m["residuals"]["absolute"][270].as_f64().unwrap();
    let out = ok(d, &["predict", "model.json", test, "--interval", "0.9"]);
    let rows = cells(&out);
    assert_eq!(rows[0], ["prediction", "lower", "upper"]);
    for row in &rows[1..] {
        let [p, lo, hi] = [0, 1, 2].map(|i| row[i].parse::<f64>().unwrap());
        assert!((p - lo - half).abs() < 1e-3 * half, "{row:?} ± {half}");
        assert!((hi - p - half).abs() < 1e-3 * half, "{row:?} ± {half}");
    }
    // The default is CV+ scaled to the ensemble: a list per network, and the scale;
    // `--intervals cv-plus` keeps the lists, the same networks, and no scale.
    for (file, method) in [("ens.json", None), ("cv.json", Some("cv-plus"))] {
        let mut args = vec![
            "train", train, "--target", "price", "--epochs", "20", "--model", file,
        ];
        args.extend(method.map(|m| ["--intervals", m]).into_iter().flatten());
        ok(d, &args);
        let m = model(&d.join(file));
        assert_eq!(m["residuals"]["folds"].as_array().unwrap().len(), 3);
        assert_eq!(m["residuals"].get("ensemble").is_some(), method.is_none());
        let said = ["ensemble", "cv_plus"][usize::from(method.is_some())];
        assert_eq!(m["training"]["config"]["intervals"], said);
    }
    let (ens, cv) = (model(&d.join("ens.json")), model(&d.join("cv.json")));
    assert_eq!(ens["layers"], cv["layers"]);
    assert_eq!(ens["residuals"]["absolute"], cv["residuals"]["absolute"]);
    // Classes have no intervals, not even the default method named.
    let iris = data("data/iris.csv");
    for method in ["split", "ensemble"] {
        let iris = iris.to_str().unwrap();
        let err = refused(d, &["train", iris, "--intervals", method, "--epochs", "1"]);
        let want = format!("invalid --intervals {method}: prediction intervals are for regression");
        assert!(err.contains(&want), "{err}");
        assert!(err.contains("hint: leave out --intervals"), "{err}");
    }
}
