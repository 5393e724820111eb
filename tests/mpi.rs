//! Data-parallel training over MPI: `mpirun -n 2 mlp train …` on loopback gives the model a
//! single process trains. Built only with `--features mpi`; needs Open MPI's `mpirun`
//! (`.ci/run` installs it).
#![cfg(feature = "mpi")]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const MLP: &str = env!("CARGO_BIN_EXE_mlp");

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `mpirun -n ranks mlp args…` (or plain `mlp args…` with `ranks == 0`) in `dir`.
fn run(dir: &Path, ranks: usize, args: &[&str]) -> Output {
    let mut command = if ranks == 0 {
        Command::new(MLP)
    } else {
        let mut c = Command::new("mpirun");
        c.args(["--allow-run-as-root", "--oversubscribe", "-n"])
            .arg(ranks.to_string())
            .arg(MLP);
        c
    };
    // Open MPI otherwise looks for network interfaces and may warn about them.
    command
        .env("OMPI_MCA_btl", "self,vader")
        .env("OMPI_MCA_btl_vader_single_copy_mechanism", "none")
        .env("MLP_THREADS", "1")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("mpirun runs (install Open MPI: apt-get install openmpi-bin libopenmpi-dev)")
}

fn ok(dir: &Path, ranks: usize, args: &[&str]) -> String {
    let o = run(dir, ranks, args);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{ranks} ranks, mlp {args:?}:\n{}\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

/// Parses `mlp predict --proba` output: (label, probabilities) per row.
fn predictions(csv: &str) -> Vec<(String, Vec<f64>)> {
    csv.lines()
        .skip(1)
        .map(|line| {
            let mut cells = line.split(',');
            let label = cells.next().unwrap().to_string();
            (label, cells.map(|c| c.parse().unwrap()).collect())
        })
        .collect()
}

#[test]
fn two_ranks_train_the_model_one_process_trains() {
    let dir = tempfile::tempdir().unwrap();
    let iris = data("data/iris.csv");
    let iris = iris.to_str().unwrap();
    // One process trains one network when asked to; under mpirun that is the default.
    let train = |ranks: usize, model: &str| {
        let mut args = vec![
            "train",
            iris,
            "--epochs",
            "40",
            "--batch-size",
            "16",
            "--seed",
            "3",
            "--model",
            model,
        ];
        if ranks == 0 {
            args.extend(["--folds", "0"]);
        }
        ok(dir.path(), ranks, &args)
    };
    let single = train(0, "single.json");
    let pair = train(2, "pair.json");
    // Only rank 0 prints.
    assert_eq!(pair.matches("read ").count(), 1, "{pair}");
    assert!(pair.contains("data parallel: 2 processes"), "{pair}");
    assert!(!single.contains("data parallel"), "{single}");
    let summary = |out: &str| {
        out.lines()
            .find(|l| l.starts_with("best epoch"))
            .map(String::from)
    };
    assert!(summary(&single).is_some(), "{single}");

    let proba = |model: &str| predictions(&ok(dir.path(), 0, &["predict", model, iris, "--proba"]));
    let same = |single: &str, pair: &str| {
        let (a, b) = (proba(single), proba(pair));
        assert_eq!(a.len(), 150);
        let mut worst = 0f64;
        for ((label_a, p_a), (label_b, p_b)) in a.iter().zip(&b) {
            assert_eq!(label_a, label_b);
            for (x, y) in p_a.iter().zip(p_b) {
                worst = worst.max((x - y).abs());
            }
        }
        assert!(worst <= 1e-3, "probabilities differ by {worst}");
    };
    same("single.json", "pair.json");
    // The temperature is fitted on both ranks' validation rows: the one process's.
    let temperature = |model: &str| {
        let text = std::fs::read_to_string(dir.path().join(model)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        json["calibration"]["temperature"].as_f64().unwrap()
    };
    let (t1, t2) = (temperature("single.json"), temperature("pair.json"));
    assert!((t1 - t2).abs() < 1e-4 && t1 != 1.0, "{t1} vs {t2}");

    // --refit trains again on the training rows, then the validation rows: each rank holds
    // its share of both, in that order.
    let refit = |ranks: usize, model: &str| {
        let args = [
            "train",
            iris,
            "--epochs",
            "30",
            "--batch-size",
            "16",
            "--seed",
            "3",
            "--refit",
            "--model",
            model,
        ];
        ok(dir.path(), ranks, &args)
    };
    let out = refit(0, "single-refit.json");
    assert!(
        out.contains("refit: trained a fresh network on all 150 rows"),
        "{out}"
    );
    refit(2, "pair-refit.json");
    same("single-refit.json", "pair-refit.json");
}

#[test]
fn two_ranks_store_the_residuals_one_process_stores() {
    // Ranks train one network (k-fold is refused over MPI), so its intervals are
    // split-conformal on the validation rows, gathered from every rank.
    let dir = tempfile::tempdir().unwrap();
    let houses = data("data/houses.csv");
    let houses = houses.to_str().unwrap();
    let train = |ranks: usize, model: &str| {
        let mut args = vec![
            "train",
            houses,
            "--target",
            "price",
            "--epochs",
            "20",
            "--batch-size",
            "16",
            "--seed",
            "3",
            "--model",
            model,
        ];
        if ranks == 0 {
            args.extend(["--folds", "0"]);
        }
        ok(dir.path(), ranks, &args)
    };
    train(0, "single.json");
    train(2, "pair.json");
    let residuals = |model: &str| {
        let text = std::fs::read_to_string(dir.path().join(model)).unwrap();
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let r = &json["residuals"];
        assert!(r.get("folds").is_none(), "{model}: one network, no folds");
        let values: Vec<f64> = (r["absolute"].as_array().unwrap().iter())
            .map(|v| v.as_f64().unwrap())
            .collect();
        (r["rows"].as_u64().unwrap(), values)
    };
    let (rows, one) = residuals("single.json");
    let (rows2, two) = residuals("pair.json");
    assert_eq!((rows, one.len()), (rows2, two.len()));
    assert_eq!(rows, 80, "the validation rows of 400");
    let scale = one.last().unwrap().max(1.0);
    for (a, b) in one.iter().zip(&two) {
        assert!((a - b).abs() <= 1e-3 * scale, "{a} vs {b}");
    }
}

#[test]
fn an_error_ends_every_rank_with_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,b,y\n1,2,0\n3,,1\n5,6,0\n").unwrap();
    let args = ["train", "bad.csv", "--val-split", "0", "--missing", "error"];
    let o = run(dir.path(), 2, &args);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(err.contains("bad.csv, line 3, column 'b'"), "{err}");
    assert!(!dir.path().join("model.json").exists());

    // A header without rows: no share holds a row, and the message is one process's.
    std::fs::write(dir.path().join("empty.csv"), "a,b,y\n").unwrap();
    let o = run(dir.path(), 2, &["train", "empty.csv"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(
        err.contains("empty.csv: the file has a header but no data rows"),
        "{err}"
    );
}

/// A classification file whose second half has a class, categories and missing cells the
/// first half lacks: rank 0 reads the first half, rank 1 the second.
fn uneven(rows: usize) -> String {
    let mut text = String::from("a,b,colour,y\n");
    for i in 0..rows {
        let late = i >= rows / 2;
        let a = ((i * 37) % 101) as f32 / 10.0 - 5.0;
        let b = ((i * 53) % 89) as f32 * 0.25 + if late { 3.0 } else { 0.0 };
        let colour = if late {
            ["red", "blue", "violet"][i % 3]
        } else {
            ["red", "green"][i % 2]
        };
        let y = if late && i % 4 == 0 {
            "maybe"
        } else if a + b > 8.0 || colour == "blue" {
            "yes"
        } else {
            "no"
        };
        let a = if late && i % 7 == 0 {
            String::new()
        } else {
            a.to_string()
        };
        let b = if late && i % 13 == 0 {
            "?".into()
        } else {
            b.to_string()
        };
        let colour = if late && i % 11 == 0 { "NA" } else { colour };
        text.push_str(&format!("{a},{b},{colour},{y}\n"));
    }
    text
}

#[test]
fn ranks_reading_halves_learn_the_preprocessing_of_the_whole_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("uneven.csv"), uneven(400)).unwrap();
    let train = |ranks: usize, model: &str| {
        let args = [
            "train",
            "uneven.csv",
            "--epochs",
            "15",
            "--seed",
            "2",
            "--folds",
            "0",
            "--model",
            model,
        ];
        ok(dir.path(), ranks, &args)
    };
    let single = train(0, "single.json");
    let pair = train(2, "pair.json");
    // The same rows, split and fills are reported.
    let lines = |out: &str, start: &str| {
        out.lines()
            .filter(|l| l.starts_with(start))
            .map(String::from)
            .collect::<Vec<_>>()
    };
    for start in ["read ", "missing: ", "task: ", "features: ", "split: "] {
        assert_eq!(lines(&single, start), lines(&pair, start), "{pair}");
    }
    assert!(pair.contains("into 3 classes: maybe, no, yes"), "{pair}");

    let model = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    let (a, b) = (model("single.json"), model("pair.json"));
    let features = |m: &serde_json::Value| m["encoding"]["features"].as_array().unwrap().clone();
    let (fa, fb) = (features(&a), features(&b));
    assert_eq!(fa.len(), 3);
    // Categories (all four, though each rank saw only some), fill values, bin edges, means
    // and deviations: the same encoding, to the last bit.
    assert_eq!(fa, fb);
    assert_eq!(
        fa[2]["categories"],
        serde_json::json!(["blue", "green", "red", "violet"])
    );
    for numeric in &fa[..2] {
        assert_eq!(
            numeric["edges"].as_array().map(Vec::len),
            Some(9),
            "{numeric}"
        );
    }
    assert_eq!(a["encoding"]["target"], b["encoding"]["target"]);
    for key in [
        "rows",
        "filled_cells",
        "train_rows",
        "validation_rows",
        "data_sha256",
    ] {
        assert_eq!(a["training"][key], b["training"][key], "{key}");
    }

    let data = dir.path().join("uneven.csv");
    let data = data.to_str().unwrap();
    let proba = |model: &str| predictions(&ok(dir.path(), 0, &["predict", model, data, "--proba"]));
    let (p, q) = (proba("single.json"), proba("pair.json"));
    assert_eq!(p.len(), 400);
    for ((label_a, p_a), (label_b, p_b)) in p.iter().zip(&q) {
        assert_eq!(label_a, label_b);
        for (x, y) in p_a.iter().zip(p_b) {
            assert!((x - y).abs() <= 1e-3, "{x} vs {y}");
        }
    }
}

#[test]
fn an_error_only_the_second_rank_reads_ends_both_with_one_message() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = uneven(200);
    csv.push_str("1.5,2x,red,yes\n");
    std::fs::write(dir.path().join("late.csv"), csv).unwrap();
    let o = run(dir.path(), 2, &["train", "late.csv"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(
        err.contains("late.csv, line 202, column 'b': '2x' is not a number"),
        "{err}"
    );
    assert_eq!(err.matches("hint:").count(), 1, "{err}");
    assert!(!dir.path().join("model.json").exists());
}

#[test]
fn robust_scaling_and_folds_over_ranks_are_refused_with_one_message() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("uneven.csv"), uneven(200)).unwrap();
    for stream in [false, true] {
        let how = if stream {
            "streamed"
        } else {
            "shared over processes"
        };
        // Robust quartiles, and a k-fold ensemble's networks with rows of their own, need
        // every row in one place.
        for (flag, value, message, hint) in [
            (
                "--scaling",
                "robust",
                format!("invalid --scaling robust: a file {how} is scaled"),
                "hint: use --scaling piecewise",
            ),
            (
                "--folds",
                "3",
                format!("invalid --folds 3: a file {how} trains one network"),
                "hint: use --folds 0",
            ),
        ] {
            let mut args = vec!["train", "uneven.csv", flag, value];
            if stream {
                args.push("--stream");
            }
            let o = run(dir.path(), 2, &args);
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{err}");
            assert_eq!(err.matches("error:").count(), 1, "{err}");
            assert!(err.contains(&message), "{err}");
            assert!(err.contains(hint), "{err}");
            assert!(!dir.path().join("model.json").exists());
        }
    }
}

#[test]
fn two_ranks_streaming_their_halves_learn_the_whole_files_statistics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("uneven.csv"), uneven(2_000)).unwrap();
    let train = |ranks: usize, model: &str| {
        let args = [
            "train",
            "uneven.csv",
            "--stream",
            "--memory-limit",
            "16M",
            "--epochs",
            "10",
            "--seed",
            "1",
            "--model",
            model,
        ];
        ok(dir.path(), ranks, &args)
    };
    let single = train(0, "single.json");
    let pair = train(2, "pair.json");
    for start in ["read ", "missing: ", "task: ", "split: "] {
        let line = |out: &str| out.lines().find(|l| l.starts_with(start)).map(String::from);
        assert!(line(&single).is_some(), "{single}");
        assert_eq!(line(&single), line(&pair), "{pair}");
    }
    let model = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.path().join(name)).unwrap()).unwrap()
    };
    let (a, b) = (model("single.json"), model("pair.json"));
    let features = |m: &serde_json::Value| m["encoding"]["features"].as_array().unwrap().clone();
    for (x, y) in features(&a).iter().zip(&features(&b)) {
        assert_eq!(x["categories"], y["categories"]);
        assert_eq!(x["fill"], y["fill"], "{x} {y}");
        assert!(!x["fill"].is_null());
        // Quantile bin edges exactly.
        assert_eq!(
            (&x["kind"], &x["edges"]),
            (&y["kind"], &y["edges"]),
            "{x} {y}"
        );
        if x["categories"].is_null() {
            assert_eq!(x["edges"].as_array().map(Vec::len), Some(9), "{x}");
        }
    }
    assert_eq!(a["encoding"], b["encoding"]);
    // Streamed batches come from each rank's own chunks, so the two runs see the rows in
    // other orders: the same accuracy within noise, not the same weights.
    let accuracy = |m: &serde_json::Value| m["metrics"]["validation_accuracy"].as_f64().unwrap();
    assert!(accuracy(&a) > 0.8, "{}", accuracy(&a));
    assert!(
        (accuracy(&a) - accuracy(&b)).abs() <= 0.05,
        "{} {}",
        accuracy(&a),
        accuracy(&b)
    );
}

/// One file prepared four ways (in memory, streamed, and by two processes each reading half,
/// in memory and streamed) gives one encoding, to the last bit of every mean and deviation.
#[test]
fn memory_streaming_and_two_ranks_fit_the_same_encoding() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("uneven.csv"), uneven(1_200)).unwrap();
    let encoding = |ranks: usize, stream: bool, model: &str| -> serde_json::Value {
        // Every row trains: the streamed split is by line, the in-memory one by shuffle.
        let mut args = vec!["train", "uneven.csv", "--epochs", "1", "--val-split", "0"];
        args.extend(["--folds", "0", "--model", model]);
        if stream {
            args.extend(["--stream", "--memory-limit", "16M"]);
        }
        ok(dir.path(), ranks, &args);
        let text = std::fs::read_to_string(dir.path().join(model)).unwrap();
        let model: serde_json::Value = serde_json::from_str(&text).unwrap();
        model["encoding"].clone()
    };
    let memory = encoding(0, false, "memory.json");
    assert_eq!(memory["features"].as_array().map(Vec::len), Some(3));
    assert_eq!(encoding(0, true, "streamed.json"), memory);
    assert_eq!(encoding(2, false, "shared.json"), memory);
    assert_eq!(encoding(2, true, "shared_streamed.json"), memory);
}

/// Issue 20, item 2: more processes than rows. Some processes then have no rows at all;
/// every rank count gives the model one process trains (in memory and streamed), or the
/// error one process gives, instead of dying inside MPI (an empty buffer taken for the same
/// send and receive buffer: MPI_ERR_ARG, exit 13, no message).
#[test]
fn more_processes_than_rows_give_the_result_of_one() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("two.csv"), "x,y\n1,2\n3,4\n").unwrap();
    let layers = |name: &str| -> serde_json::Value {
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join(name)).unwrap()).unwrap();
        m["layers"].clone()
    };
    for stream in [false, true] {
        let mut args = vec![
            "train",
            "two.csv",
            "--val-split",
            "0",
            "--epochs",
            "2",
            "-q",
        ];
        if stream {
            args.push("--stream");
        }
        let model = |ranks: usize| format!("m{ranks}-{stream}.json");
        for ranks in [0, 3, 4] {
            let name = model(ranks);
            ok(d, ranks, &[&args[..], &["--model", &name]].concat());
        }
        let one = layers(&model(0));
        assert!(one.as_array().is_some_and(|l| !l.is_empty()));
        for ranks in [3, 4] {
            assert_eq!(layers(&model(ranks)), one, "{ranks} ranks, stream {stream}");
        }
    }
    // Too few rows to validate on: the error of one process, once.
    let args = ["train", "two.csv", "--folds", "0", "--epochs", "2", "-q"];
    let alone = run(d, 0, &args);
    let three = run(d, 3, &args);
    assert_eq!(alone.status.code(), Some(2));
    assert_eq!(three.status.code(), Some(2));
    let message = text(&alone.stderr);
    assert!(
        message.starts_with("error: two.csv: only 2 rows"),
        "{message}"
    );
    assert!(
        text(&three.stderr).starts_with(&message),
        "{}",
        text(&three.stderr)
    );
}
