//! The examples are programs users run first: run them and check what they print.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Runs `cargo run --example NAME -- ARGS` and returns its standard output.
fn run_example(name: &str, args: &[&str]) -> String {
    run_example_in(Path::new(env!("CARGO_MANIFEST_DIR")), name, args)
}

/// Like [`run_example`] with the working directory `dir`.
fn run_example_in(dir: &Path, name: &str, args: &[&str]) -> String {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let out = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--manifest-path"])
        .arg(manifest)
        .args(["--example", name, "--"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "example {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn assert_has(out: &str, line: &str) {
    assert!(
        out.lines().any(|l| l.trim() == line),
        "missing line {line:?} in:\n{out}"
    );
}

#[test]
fn backprop_prints_the_study_notes_numbers() {
    let out = run_example("backprop", &[]);
    // Snack purchase: pay = 1000 × 3 × 1.1 and its gradients.
    assert_has(&out, "pay      = subtotal × VAT   = 3000 × 1.1 = 3300");
    assert_has(&out, "d(pay)/d(VAT)      = 1 × 3000 = 3000");
    assert_has(&out, "d(pay)/d(price) = 1.1 × 3 = 3.3");
    assert_has(&out, "d(pay)/d(count) = 1.1 × 1000 = 1100");
    assert_has(
        &out,
        "pay = 3300; d/dprice = 3.3, d/dcount = 1100, d/dVAT = 3000",
    );
    // f(x, y, z) = (x + y)·z, L = (target − f)².
    assert_has(&out, "f = q × z            = 3 × -4 = -12");
    assert_has(&out, "L = u × u            = 2 × 2 = 4");
    assert_has(&out, "dL/df = 4 × (−1) = -4");
    assert_has(&out, "dL/dz = -4 × q = -4 × 3 = -12");
    assert_has(&out, "dL/dx = 16, dL/dy = 16");
    // One SGD step with lr = 0.01.
    assert_has(&out, "x = -2 − 0.01 × 16 = -2.16");
    assert_has(&out, "y = 5 − 0.01 × 16 = 4.84");
    assert_has(&out, "z = -4 − 0.01 × (-12) = -3.88");
    assert_has(
        &out,
        "forward again: f = -10.3984, L = 0.15872256 (≈ 0.1587, down from 4)",
    );
}

#[test]
fn xor_learns_and_writes_its_loss_curve() {
    let dir = tempfile::tempdir().unwrap();
    let png: PathBuf = dir.path().join("curve.png");
    let out = run_example("xor", &[png.to_str().unwrap()]);
    let final_loss: f32 = out
        .lines()
        .find_map(|l| l.strip_prefix("final loss: "))
        .expect("a final loss line")
        .parse()
        .unwrap();
    assert!(final_loss < 0.01, "final loss {final_loss}");
    // Each prediction on the right side of 0.5.
    for (line, want_high) in [
        ("0 XOR 0 -> ", false),
        ("0 XOR 1 -> ", true),
        ("1 XOR 0 -> ", true),
        ("1 XOR 1 -> ", false),
    ] {
        let p: f32 = out
            .lines()
            .find_map(|l| l.strip_prefix(line))
            .unwrap_or_else(|| panic!("no line {line:?} in:\n{out}"))
            .parse()
            .unwrap();
        assert_eq!(p > 0.5, want_high, "{line}{p}");
    }
    assert_has(&out, &format!("wrote {}", png.display()));
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 10_000, "a real picture, not an empty canvas");
    let boundary = dir.path().join("xor_boundary.png");
    assert_has(&out, &format!("wrote {}", boundary.display()));
    let bytes = std::fs::read(&boundary).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert!(bytes.len() > 10_000, "a real picture, not an empty canvas");
}

#[test]
fn train_csv_trains_saves_and_scores_iris() {
    let dir = tempfile::tempdir().unwrap();
    let iris = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv");
    let out = run_example_in(
        dir.path(),
        "train_csv",
        &[iris.to_str().unwrap(), "species"],
    );
    assert!(out.contains("150 rows in 3 folds, 36 inputs"), "{out}");
    let accuracy: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("accuracy on all 150 rows: "))
        .expect("an accuracy line")
        .parse()
        .unwrap();
    assert!(out.contains("3 networks, best epochs ["), "{out}");
    assert!(accuracy > 0.95, "{out}");
    assert!(dir.path().join("train_csv_model.json").exists());
}
