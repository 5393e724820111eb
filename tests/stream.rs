//! Files larger than memory: `mlp train`, `predict` and `eval` read them in chunks
//! (`--memory-limit`, `--stream`), with the accuracy and the located errors of the
//! in-memory path.

use std::fmt::Write as _;
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

fn ok(dir: &Path, args: &[&str]) -> String {
    let o = mlp(dir, args);
    let (out, err) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert_eq!(o.status.code(), Some(0), "mlp {args:?}:\n{out}\n{err}");
    out.into_owned()
}

fn user_error(dir: &Path, args: &[&str]) -> String {
    let o = mlp(dir, args);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "mlp {args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    err
}

/// Writes the first `split` data rows of `source` to `train.csv` and the rest to
/// `test.csv` in `dir`.
fn split_file(dir: &Path, source: &Path, split: usize) {
    let text = std::fs::read_to_string(source).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    let rows: Vec<&str> = lines.collect();
    let write = |name: &str, rows: &[&str]| {
        let mut s = format!("{header}\n");
        for r in rows {
            s.push_str(r);
            s.push('\n');
        }
        std::fs::write(dir.join(name), s).unwrap();
    };
    write("train.csv", &rows[..split]);
    write("test.csv", &rows[split..]);
}

fn eval_json(dir: &Path, model: &str, extra: &[&str]) -> Value {
    let mut args = vec!["eval", model, "test.csv", "--json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&ok(dir, &args)).unwrap()
}

#[test]
fn streaming_a_file_that_fits_reaches_the_in_memory_accuracy() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // digits: 1437 rows to train, 360 to test (as workload W2).
    split_file(d, &data("data/digits.csv"), 1437);
    let train = |model: &str, extra: &[&str]| {
        let mut args = vec!["train", "train.csv", "--epochs", "40", "--model", model];
        args.extend_from_slice(extra);
        ok(d, &args)
    };
    // One network in memory too (the default there is a 3-fold ensemble): like for like.
    train("memory.json", &["--folds", "0"]);
    // The least limit (16M): the file streamed, read every epoch.
    let out = train("stream.json", &["--stream", "--memory-limit", "16M"]);
    assert!(
        out.contains("streaming train.csv: asked for with --stream"),
        "{out}"
    );
    // A streamed file trains one network, validated on a split, without being asked.
    assert!(
        out.contains("split: 1111 training rows, 326 validation rows"),
        "{out}"
    );
    assert!(!out.contains("ensemble:"), "{out}");
    assert!(out.contains("streaming: chunks of "), "{out}");
    let memory = eval_json(d, "memory.json", &[])["accuracy"]
        .as_f64()
        .unwrap();
    let streamed = eval_json(d, "stream.json", &[])["accuracy"]
        .as_f64()
        .unwrap();
    assert!(memory > 0.93, "in memory: {memory}");
    assert!(
        (streamed - memory).abs() <= 0.03,
        "streamed {streamed}, in memory {memory}"
    );
    // Evaluating under the least limit gives the same numbers as in memory.
    let chunked = eval_json(d, "stream.json", &["--memory-limit", "16M"]);
    assert_eq!(chunked, eval_json(d, "stream.json", &[]));

    // Regression, with a categorical column and quoted numbers.
    split_file(d, &data("data/houses.csv"), 300);
    train("memory.json", &["--target", "price", "--folds", "0"]);
    train(
        "stream.json",
        &["--target", "price", "--stream", "--memory-limit", "16M"],
    );
    let r2 = |m| eval_json(d, m, &[])["r2"].as_f64().unwrap();
    let (memory, streamed) = (r2("memory.json"), r2("stream.json"));
    assert!(memory > 0.8, "in memory: {memory}");
    assert!(
        (streamed - memory).abs() <= 0.05,
        "streamed R² {streamed}, in memory {memory}"
    );
}

/// `rows` rows of `a,b,colour,y` with missing cells in every column but `y` (about one in
/// nine), from a fixed pseudo-random sequence starting at `seed`.
fn gappy_file(path: &Path, rows: usize, seed: u64) {
    let mut state = seed;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as f64 / (1u64 << 31) as f64
    };
    let mut s = String::from("a,b,colour,y\n");
    for _ in 0..rows {
        let (a, b) = (next() * 4.0 - 2.0, next() * 10.0);
        let colour = ["red", "green", "blue"][(next() * 3.0) as usize % 3];
        let score = a + (b - 5.0) * 0.3 + if colour == "blue" { 1.0 } else { 0.0 };
        let y = if score + (next() - 0.5) * 0.5 > 0.3 {
            "yes"
        } else {
            "no"
        };
        let cell = |text: String, gap: f64| if gap < 0.11 { "NA".to_string() } else { text };
        let a = cell(format!("{a:.4}"), next());
        let b = cell(format!("{b:.3}"), next());
        let colour = cell(colour.to_string(), next());
        s.push_str(&format!("{a},{b},{colour},{y}\n"));
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn a_streamed_file_with_missing_cells_is_filled_as_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    gappy_file(&d.join("train.csv"), 6_000, 1);
    gappy_file(&d.join("test.csv"), 1_000, 2);
    // Without a validation split both paths fill from every row, so the medians and most
    // frequent categories must be the same.
    let train = |model: &str, extra: &[&str]| {
        let mut args = vec![
            "train",
            "train.csv",
            "--val-split",
            "0",
            "--epochs",
            "20",
            "--model",
            model,
        ];
        args.extend_from_slice(extra);
        ok(d, &args)
    };
    let memory = train("memory.json", &[]);
    // A 512 KiB limit reads 64 KiB at a time: three chunks of this 150 KiB file.
    let streamed = train("stream.json", &["--stream", "--memory-limit", "16M"]);
    let filled = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("missing: filled"))
            .map(String::from)
    };
    assert!(filled(&memory).is_some(), "{memory}");
    assert_eq!(filled(&streamed), filled(&memory), "{streamed}");
    let model = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(d.join(name)).unwrap()).unwrap()
    };
    let (a, b) = (model("memory.json"), model("stream.json"));
    let fills = |m: &Value| {
        (m["encoding"]["features"].as_array().unwrap().iter())
            .map(|f| f["fill"].clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(fills(&a), fills(&b));
    assert!(fills(&a).iter().all(|f| !f.is_null()));
    assert_eq!(a["training"]["filled_cells"], b["training"]["filled_cells"]);
    // Test rows with gaps are filled with those values, and score alike.
    let accuracy = |m| eval_json(d, m, &[])["accuracy"].as_f64().unwrap();
    let (memory, streamed) = (accuracy("memory.json"), accuracy("stream.json"));
    assert!(memory > 0.8, "in memory: {memory}");
    assert!(
        (streamed - memory).abs() <= 0.03,
        "streamed {streamed}, in memory {memory}"
    );
}

#[test]
fn a_streamed_file_gets_the_in_memory_bin_edges() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A continuous column with gaps, one of four integers (quantiles that coincide), and a
    // 0/1 column (no bins at all); about 100 KiB, two chunks of 64 KiB.
    let mut text = String::from("x,k,z,y\n");
    for i in 0..4_000u64 {
        let x = ((i * 7919) % 1009) as f64 * 0.0371 - 12.5 + (i % 7) as f64 * 1e-4;
        let x = if i % 17 == 3 {
            "NA".to_string()
        } else {
            format!("{x:.5}")
        };
        let (k, z) = ((i * 13) % 4, (i / 3) % 2);
        let y = if i % 5 < 2 { "yes" } else { "no" };
        writeln!(text, "{x},{k},{z},{y}").unwrap();
    }
    std::fs::write(d.join("train.csv"), &text).unwrap();
    // Without a validation split both paths bin every row.
    let train = |model: &str, extra: &[&str]| {
        let mut args = vec!["train", "train.csv", "--val-split", "0", "--epochs", "2"];
        args.extend_from_slice(&["--model", model]);
        args.extend_from_slice(extra);
        ok(d, &args)
    };
    train("memory.json", &[]);
    train("stream.json", &["--stream", "--memory-limit", "16M"]);
    let edges = |name: &str| -> Vec<Value> {
        let model: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(name)).unwrap()).unwrap();
        (model["encoding"]["features"].as_array().unwrap().iter())
            .map(|f| f["edges"].clone())
            .collect()
    };
    let (memory, streamed) = (edges("memory.json"), edges("stream.json"));
    assert_eq!(streamed, memory);
    let lengths: Vec<usize> = (memory.iter())
        .map(|e| e.as_array().map_or(usize::MAX, Vec::len))
        .collect();
    // x: nine distinct quantiles; k: 0, 1, 2, 3; z: none.
    assert_eq!(lengths, [9, 4, 0]);
    assert_eq!(memory[1], serde_json::json!([0.0, 1.0, 2.0, 3.0]));

    let err = user_error(
        d,
        &["train", "train.csv", "--stream", "--scaling", "robust"],
    );
    assert!(
        err.contains("invalid --scaling robust: a file streamed is scaled by mean"),
        "{err}"
    );
    assert!(err.contains("hint: use --scaling piecewise"), "{err}");
    // Nor does it train a k-fold ensemble: each network would need its own rows.
    let err = user_error(d, &["train", "train.csv", "--stream", "--folds", "3"]);
    assert!(
        err.contains("invalid --folds 3: a file streamed trains one network"),
        "{err}"
    );
    assert!(err.contains("hint: use --folds 0"), "{err}");
}

/// A numeric file of `rows` rows, `a,b,y` with y = a − b, one cell replaced.
fn numeric_file(path: &Path, rows: usize, bad_row: usize, bad_cell: &str) {
    let mut s = String::from("a,b,y\n");
    for r in 0..rows {
        let (a, b) = ((r % 97) as f32 / 10.0, (r % 89) as f32 / 10.0);
        let b_text = if r == bad_row {
            bad_cell.to_string()
        } else {
            b.to_string()
        };
        writeln!(s, "{a},{b_text},{}", a - b).unwrap();
    }
    std::fs::write(path, s).unwrap();
}

#[test]
fn errors_deep_in_a_streamed_file_name_the_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Row 50,000 (from 0) is on line 50,002 (the header is line 1), about 740 KiB into the
    // file: past the first chunk (683 KiB under the least limit, 16M).
    numeric_file(&d.join("big.csv"), 60_000, 50_000, "");
    let args = [
        "train",
        "big.csv",
        "--memory-limit",
        "16M",
        "--missing",
        "error",
    ];
    let err = user_error(d, &args);
    assert!(
        err.contains("error: big.csv, line 50002, column 'b': this cell is missing"),
        "{err}"
    );
    assert!(err.contains("hint: "), "{err}");
    assert!(!d.join("model.json").exists());

    // Text where a number belongs: the column turns out to hold text, and as categories
    // it has far too many values for its rows.
    numeric_file(&d.join("big.csv"), 60_000, 50_000, "1.2.3");
    let err = user_error(
        d,
        &["train", "big.csv", "--stream", "--memory-limit", "16M"],
    );
    assert!(err.contains("column 'b'"), "{err}");

    // A model trained in memory, then predictions on a large file read in chunks.
    numeric_file(&d.join("small.csv"), 2_000, usize::MAX, "");
    ok(d, &["train", "small.csv", "--epochs", "3", "--quiet"]);
    numeric_file(&d.join("big.csv"), 60_000, 50_000, "x");
    let err = user_error(
        d,
        &["predict", "model.json", "big.csv", "--memory-limit", "16M"],
    );
    assert!(
        err.contains("big.csv, line 50002, column 'b': 'x' is not a number"),
        "{err}"
    );
    numeric_file(&d.join("big.csv"), 60_000, usize::MAX, "");
    let chunked = ok(
        d,
        &["predict", "model.json", "big.csv", "--memory-limit", "16M"],
    );
    let whole = ok(d, &["predict", "model.json", "big.csv"]);
    assert_eq!(chunked.lines().count(), 60_001);
    // The two paths send different batches through the network, and the `gemm` crate may
    // round a row's sums differently with the batch's size (plain loops for tiny products,
    // blocked kernels for the rest): the same predictions, up to the last bits of an f32.
    let (mut chunked, mut whole) = (chunked.lines(), whole.lines());
    assert_eq!(chunked.next(), whole.next(), "headers");
    for (row, (c, w)) in chunked.zip(whole).enumerate() {
        let (c, w): (f32, f32) = (c.parse().unwrap(), w.parse().unwrap());
        assert!(
            (c - w).abs() <= 1e-5 * w.abs().max(1.0),
            "row {row}: chunked {c} against whole {w}"
        );
    }
}

#[test]
fn a_file_above_the_memory_limit_streams_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    numeric_file(&d.join("big.csv"), 20_000, usize::MAX, "");
    let out = ok(
        d,
        &["train", "big.csv", "--epochs", "2", "--memory-limit", "16M"],
    );
    assert!(
        out.contains(
            "streaming big.csv: the file is 295 KiB, and reading it into memory would take \
             about 35.5 MiB, more than the memory limit of 16 MiB (--memory-limit)"
        ),
        "{out}"
    );
    assert!(out.contains("read big.csv: 20000 rows"), "{out}");
    let model: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("model.json")).unwrap()).unwrap();
    let training = &model["training"];
    assert_eq!(training["rows"], 20_000);
    let (train, val) = (
        training["train_rows"].as_u64().unwrap(),
        training["validation_rows"].as_u64().unwrap(),
    );
    assert_eq!(train + val, 20_000);
    assert!((3_800..4_200).contains(&val), "{val} validation rows");
    // The same seed picks the same validation rows.
    ok(
        d,
        &[
            "train",
            "big.csv",
            "--epochs",
            "1",
            "--memory-limit",
            "16M",
            "--model",
            "m2.json",
        ],
    );
    let again: Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("m2.json")).unwrap()).unwrap();
    assert_eq!(
        again["training"]["validation_rows"],
        training["validation_rows"]
    );
    // A file that fits is read into memory as before.
    let out = ok(d, &["train", "big.csv", "--epochs", "1"]);
    assert!(!out.contains("streaming"), "{out}");
}

#[test]
fn malformed_memory_limits_exit_2_with_the_accepted_forms() {
    let dir = tempfile::tempdir().unwrap();
    for bad in ["lots", "12X", "0", "-1G", "1", "100", "1K", "15M"] {
        let o = mlp(
            dir.path(),
            &["train", "x.csv", &format!("--memory-limit={bad}")],
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("--memory-limit"), "{err}");
        assert!(err.contains("e.g. 256M or 2G"), "{err}");
    }
}

#[test]
fn a_streamed_model_does_not_depend_on_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // About 885 KiB: a 16 MiB limit reads it in chunks of 683 KiB (two of them), a 64 MiB
    // limit in one of 2.7 MiB.
    numeric_file(&d.join("big.csv"), 60_000, usize::MAX, "");
    let train = |limit: &str, model: &str| {
        let args = [
            "train",
            "big.csv",
            "--stream",
            "--epochs",
            "2",
            "--batch-size",
            "64",
            "--seed",
            "7",
            "--memory-limit",
            limit,
            "--model",
            model,
        ];
        ok(d, &args)
    };
    let small_out = train("16M", "small.json");
    let large_out = train("64M", "large.json");
    let chunks = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("streaming: chunks of"))
            .map(|l| l.split(" read ").next().unwrap().to_string())
    };
    assert_eq!(
        chunks(&small_out).as_deref(),
        Some("streaming: chunks of 683 KiB")
    );
    assert_eq!(
        chunks(&large_out).as_deref(),
        Some("streaming: chunks of 2.7 MiB")
    );
    let model = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(d.join(name)).unwrap()).unwrap()
    };
    let (small, large) = (model("small.json"), model("large.json"));
    // The weights, bit for bit (JSON keeps every bit of an f32), and what they scored.
    assert!(small["layers"] == large["layers"], "the networks differ");
    assert_eq!(small["metrics"], large["metrics"]);
    assert_eq!(small["training"], large["training"]);
    // What decides the order and the judging is in the model file.
    let config = &small["training"]["config"];
    assert_eq!(config["shuffle_window"], 32_768);
    assert_eq!(config["held_rows"], 50_000);
    assert!(
        small_out.contains("the training rows shuffled in windows of 32768;"),
        "{small_out}"
    );
}

#[test]
fn a_window_or_held_rows_the_memory_limit_cannot_hold_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    numeric_file(&d.join("big.csv"), 60_000, usize::MAX, "");
    // About 48,000 training rows of 18 inputs (88 bytes encoded): a window of all of them
    // and the 12,000 validation rows take 5 MiB, more than the 4 MiB a 16 MiB limit keeps.
    let err = user_error(
        d,
        &[
            "train",
            "big.csv",
            "--stream",
            "--memory-limit",
            "16M",
            "--shuffle-window",
            "60000",
        ],
    );
    assert!(
        err.contains("error: invalid --memory-limit 16M: a streamed run keeps the shuffle window"),
        "{err}"
    );
    assert!(
        err.contains("5.0 MiB encoded, more than the 4 MiB kept for them"),
        "{err}"
    );
    assert!(err.contains("hint: raise it to --memory-limit 2"), "{err}");
    assert!(
        err.contains(", or hold fewer rows: --shuffle-window "),
        "{err}"
    );
    assert!(!d.join("model.json").exists());
    // A window smaller than a batch would change the batch size: refused before reading.
    let err = user_error(
        d,
        &["train", "big.csv", "--stream", "--shuffle-window", "16"],
    );
    assert!(
        err.contains("invalid --shuffle-window 16: a shuffle window holds at least one batch"),
        "{err}"
    );
    assert!(
        err.contains("hint: use --shuffle-window 32 or more"),
        "{err}"
    );
    let err = user_error(d, &["train", "big.csv", "--held-rows", "0"]);
    assert!(err.contains("invalid --held-rows 0"), "{err}");
}

/// `--class-weight balanced` streams: the class counts come from the first pass's
/// statistics of the training rows, as in memory they come from the training split.
#[test]
fn class_weights_count_the_training_rows_when_streamed() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    split_file(d, &data("tests/data/customers.csv"), 240);
    for (model, extra) in [
        ("stream.json", &["--stream", "--memory-limit", "16M"][..]),
        ("memory.json", &["--folds", "0"][..]),
    ] {
        let mut args = vec![
            "train",
            "train.csv",
            "--epochs",
            "5",
            "--class-weight",
            "balanced",
            "--model",
            model,
            "-q",
        ];
        args.extend_from_slice(extra);
        ok(d, &args);
        let file: Value =
            serde_json::from_str(&std::fs::read_to_string(d.join(model)).unwrap()).unwrap();
        assert_eq!(file["training"]["config"]["class_weight"], "balanced");
        let counts: Vec<u64> = (file["encoding"]["target"]["counts"].as_array().unwrap())
            .iter()
            .map(|c| c.as_u64().unwrap())
            .collect();
        assert_eq!(counts.len(), 2, "{model}");
        assert_eq!(
            counts.iter().sum::<u64>(),
            file["training"]["train_rows"].as_u64().unwrap(),
            "{model}"
        );
        assert!(eval_json(d, model, &[])["balanced_accuracy"].is_f64());
    }
}
