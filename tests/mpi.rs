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
    let train = |ranks: usize, model: &str| {
        ok(
            dir.path(),
            ranks,
            &[
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
            ],
        )
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
    let (a, b) = (proba("single.json"), proba("pair.json"));
    assert_eq!(a.len(), 150);
    let mut worst = 0f64;
    for ((label_a, p_a), (label_b, p_b)) in a.iter().zip(&b) {
        assert_eq!(label_a, label_b);
        for (x, y) in p_a.iter().zip(p_b) {
            worst = worst.max((x - y).abs());
        }
    }
    assert!(worst <= 1e-3, "probabilities differ by {worst}");
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
}
