//! The promises beyond the hand-made corpus: no input makes the loaders panic or allocate
//! more than the input justifies; training never writes a model that cannot predict; Ctrl-C
//! saves the best model so far; writes are atomic; runs are reproducible.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use mlp::pipeline::{TrainRequest, prepare_bytes, score_bytes, train};
use mlp::tabular::model::Model;
use proptest::prelude::*;

const MLP: &str = env!("CARGO_BIN_EXE_mlp");

// ---------------------------------------------------------------------------------------
// Allocation accounting, per thread (tests run side by side).

struct Counting;

thread_local! {
    static LIVE: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

fn track(grow: usize, shrink: usize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get().wrapping_add(grow).wrapping_sub(shrink);
        live.set(now);
        let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
    });
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            track(layout.size(), 0);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        track(0, layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            track(new_size, layout.size());
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes it had allocated at once.
fn peak_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let value = f();
    let peak = PEAK.with(Cell::get);
    (value, peak.saturating_sub(start))
}

// ---------------------------------------------------------------------------------------
// Inputs.

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

fn valid_model() -> Vec<u8> {
    std::fs::read(corpus("models/valid.json")).unwrap()
}

fn fixture_head(lines: usize) -> Vec<u8> {
    let text = std::fs::read_to_string(corpus("fixture.csv")).unwrap();
    let mut head: String = text.lines().take(lines).collect::<Vec<_>>().join("\n");
    head.push('\n');
    head.into_bytes()
}

/// A byte edit: replace, insert or delete at a position (taken modulo the length), or cut
/// the input there.
#[derive(Debug, Clone)]
enum Edit {
    Replace(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let byte = prop_oneof![
        any::<u8>(),
        proptest::sample::select(b",;\t|\"\r\n 0123456789.-+eE{}[]:NaInf?\xEF\xBB\xBF".to_vec()),
    ];
    let edit = prop_oneof![
        4 => (any::<usize>(), byte.clone()).prop_map(|(p, b)| Edit::Replace(p, b)),
        4 => (any::<usize>(), byte).prop_map(|(p, b)| Edit::Insert(p, b)),
        3 => any::<usize>().prop_map(Edit::Delete),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ];
    proptest::collection::vec(edit, 1..6)
}

fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for edit in edits {
        let n = bytes.len();
        match *edit {
            Edit::Replace(p, b) if n > 0 => bytes[p % n] = b,
            Edit::Insert(p, b) => bytes.insert(p % (n + 1), b),
            Edit::Delete(p) if n > 0 => {
                bytes.remove(p % n);
            }
            Edit::Truncate(p) => bytes.truncate(p % (n + 1)),
            _ => {}
        }
    }
    bytes
}

/// Replaces the `k`-th number in a JSON text (modulo their count) with `with`.
fn replace_number(text: &str, k: usize, with: &str) -> String {
    let bytes = text.as_bytes();
    let mut spans = Vec::new();
    let mut i = 0;
    let mut in_string = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if b == b'\\' {
                i += 1;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
        } else if b == b'-' || b.is_ascii_digit() {
            let start = i;
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            spans.push((start, i));
        } else {
            i += 1;
        }
    }
    let (start, end) = spans[k % spans.len()];
    format!("{}{with}{}", &text[..start], &text[end..])
}

/// Numbers that break assumptions: sizes, overflow, precision, sign.
const AWKWARD_NUMBERS: &[&str] = &[
    "0",
    "-0",
    "-1",
    "1",
    "2",
    "7",
    "1e39",
    "-1e39",
    "3.4e38",
    "1e308",
    "1e-320",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "9223372036854775807",
    "99999999999",
    "0.5",
    "1.0",
];

// ---------------------------------------------------------------------------------------
// Property tests: modest case counts so that `cargo test` stays quick in debug builds.

/// Loads a model (or fails cleanly), within an allocation budget proportional to the file;
/// a model that loads must predict finite values or refuse the rows.
fn load_and_use(bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = Path::new("mutated.json");
    let (loaded, peak) = peak_allocation(|| Model::from_json(path, bytes));
    let budget = 64 * bytes.len() + (1 << 20);
    prop_assert!(
        peak <= budget,
        "loading {} bytes allocated {peak} bytes at once",
        bytes.len()
    );
    match loaded {
        Err(e) => {
            let message = e.to_string();
            prop_assert!(message.starts_with("mutated.json: "), "{}", message);
            prop_assert!(message.contains("\n  hint: "), "{}", message);
        }
        Ok(mut model) => {
            let data = fixture_head(12);
            if let Ok(scored) = score_bytes(&mut model, Path::new("f.csv"), &data, false) {
                match scored.predictions {
                    mlp::tabular::model::Predictions::Classes { probabilities, .. } => {
                        prop_assert!(probabilities.iter().all(|p| p.is_finite()))
                    }
                    mlp::tabular::model::Predictions::Values(v) => {
                        prop_assert!(v.iter().all(|p| p.is_finite()))
                    }
                }
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn model_loader_survives_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        load_and_use(&bytes)?;
    }

    #[test]
    fn model_loader_survives_edited_model_files(edits in edits()) {
        load_and_use(&apply(valid_model(), &edits))?;
    }

    #[test]
    fn model_loader_survives_awkward_numbers(
        k in any::<usize>(),
        with in proptest::sample::select(AWKWARD_NUMBERS),
        k2 in any::<usize>(),
        with2 in proptest::sample::select(AWKWARD_NUMBERS),
    ) {
        let text = String::from_utf8(valid_model()).unwrap();
        let text = replace_number(&replace_number(&text, k, with), k2, with2);
        load_and_use(text.as_bytes())?;
    }
}

/// A small, fast training request.
fn tiny_request() -> TrainRequest {
    let mut request = TrainRequest::new("edited.csv");
    request.config.hidden = vec![3];
    request.config.epochs = 2;
    request.config.val_split = 0.25;
    request
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever an edited CSV does, preparing it fails with a located message or gives a
    /// model that trains, saves and loads back.
    #[test]
    fn training_survives_edited_csv_files(edits in edits(), drop in any::<bool>()) {
        let bytes = apply(fixture_head(24), &edits);
        let mut request = tiny_request();
        if drop {
            request.missing = mlp::pipeline::MissingPolicy::Drop;
        }
        match prepare_bytes(&request, &bytes) {
            Err(e) => {
                let message = e.to_string();
                prop_assert!(
                    message.starts_with("edited.csv") || message.starts_with("invalid "),
                    "{}", message
                );
            }
            Ok(prepared) => {
                if let Ok(trained) = train(&prepared, &request.config, None, &mut |_| {}) {
                    let json = serde_json::to_vec(&trained.model.file).unwrap();
                    let loaded = Model::from_json(Path::new("m.json"), &json);
                    prop_assert!(loaded.is_ok(), "{:?}", loaded.err().map(|e| e.to_string()));
                }
            }
        }
    }

    /// Edited CSV files given to a trained model: predictions, or a located refusal.
    #[test]
    fn prediction_survives_edited_csv_files(edits in edits()) {
        let mut model = Model::from_json(Path::new("m.json"), &valid_model()).unwrap();
        let bytes = apply(fixture_head(12), &edits);
        if let Err(e) = score_bytes(&mut model, Path::new("edited.csv"), &bytes, true) {
            prop_assert!(e.to_string().starts_with("edited.csv"), "{}", e);
        }
    }
}

#[test]
fn declared_dimensions_cost_nothing_until_checked() {
    // A 2^62 × 2^62 layer declared in a small file is refused without allocating for it.
    let text = String::from_utf8(valid_model()).unwrap();
    let huge = text.replacen("\"inputs\": 5", "\"inputs\": 4611686018427387904", 1);
    assert_ne!(huge, text);
    let (result, peak) = peak_allocation(|| Model::from_json(Path::new("h.json"), huge.as_bytes()));
    assert!(result.is_err());
    assert!(peak < 64 * huge.len() + (1 << 20), "{peak}");
}

#[test]
fn a_model_with_non_finite_weights_is_never_written() {
    let mut model = Model::from_json(Path::new("m.json"), &valid_model()).unwrap();
    if let mlp::tabular::model::LayerRecord::Linear { weight, .. } = &mut model.file.layers[0] {
        weight[0] = f32::NAN;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.json");
    let e = model.save(&path).unwrap_err().to_string();
    assert!(
        e.contains("not saved: layer 0 holds a non-finite number"),
        "{e}"
    );
    assert!(!path.exists());
}

// ---------------------------------------------------------------------------------------
// The binary.

fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(MLP);
    command
        .args(args)
        .current_dir(dir)
        .env_remove("MLP_THREADS");
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("the binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A classification CSV of `rows` rows and 8 numeric features, the same on every call.
fn synthetic_csv(rows: usize) -> String {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut csv = String::from("f0,f1,f2,f3,f4,f5,f6,f7,label\n");
    for _ in 0..rows {
        let x: Vec<f64> = (0..8).map(|_| next() * 10.0 - 5.0).collect();
        let label = if x[0] + 0.5 * x[1] - x[2] * x[3] / 5.0 > 0.0 {
            "up"
        } else {
            "down"
        };
        for v in &x {
            csv.push_str(&format!("{v:.4},"));
        }
        csv.push_str(label);
        csv.push('\n');
    }
    csv
}

#[test]
fn divergence_is_refused_with_a_hint_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv");
    std::fs::write(d.join("model.json"), "an older model\n").unwrap();
    let out = run(
        d,
        &[
            "train",
            iris.to_str().unwrap(),
            "--optimizer",
            "sgd",
            "--lr",
            "1e6",
        ],
        &[],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: training diverged: the loss or a weight became infinite or NaN"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: lower the learning rate (it is 1000000; the default for sgd is 0.01), and check the data for extreme or unscaled values"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("model.json")).unwrap(),
        "an older model\n"
    );
    assert!(!d.join("model.png").exists());
}

/// Ctrl-C during training: the best model so far and its plot are written, the run says so
/// and exits with 130, and the model works.
#[cfg(unix)]
#[test]
fn interrupt_saves_the_best_model_so_far() {
    use std::io::{BufRead, BufReader};

    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("big.csv"), synthetic_csv(3000)).unwrap();
    // Wait longer each try until at least one epoch had finished before the signal.
    for wait_ms in [1500u64, 4000, 10000, 30000] {
        let mut child = Command::new(MLP)
            .args([
                "train",
                "big.csv",
                "--epochs",
                "100000",
                "--patience",
                "0",
                "--model",
                "m.json",
            ])
            .current_dir(d)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Training starts after the split is reported.
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        while !seen.contains("split: ") {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "no split line: {seen}"
            );
            seen.push_str(&line);
        }
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        let kill = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let status = child.wait().unwrap();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        assert_eq!(status.code(), Some(130), "{seen}{rest}\n{stderr}");
        if stderr.contains("the first epoch had not finished") {
            assert!(!d.join("m.json").exists());
            continue;
        }
        assert!(
            stderr.contains("interrupted: saved the best model so far (epoch "),
            "{stderr}"
        );
        // The "wrote" lines are on standard error, as every command's.
        assert!(
            stderr.contains("wrote m.json") && stderr.contains("wrote m.png"),
            "{stderr}"
        );
        let model: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(d.join("m.json")).unwrap()).unwrap();
        assert_eq!(model["training"]["stop"]["reason"], "interrupted");
        assert_eq!(&std::fs::read(d.join("m.png")).unwrap()[..4], b"\x89PNG");
        let eval = run(d, &["eval", "m.json", "big.csv", "--json"], &[]);
        assert!(eval.status.success(), "{}", text(&eval.stderr));
        return;
    }
    panic!("no epoch finished within 30 s of training");
}

/// Runs `mlp` under `ulimit -f` (file size limit, in 512-byte blocks), which makes writes
/// past the limit fail with EFBIG even for root, like a full disk.
#[cfg(unix)]
fn run_with_file_size_limit(dir: &Path, blocks: u32, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "trap '' XFSZ; ulimit -f {blocks} && exec \"$0\" \"$@\""
        ))
        .arg(MLP)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[cfg(unix)]
#[test]
fn a_failing_write_leaves_the_old_file_intact_and_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(corpus("fixture.csv"), d.join("data.csv")).unwrap();
    std::fs::write(d.join("model.json"), "the old model\n").unwrap();
    std::fs::write(d.join("model.png"), "the old plot\n").unwrap();
    let before = dir_names(d);

    // The model file (about 60 kB with these layers) does not fit under a 16 kB limit.
    let out = run_with_file_size_limit(
        d,
        32,
        &[
            "train", "data.csv", "--hidden", "64,64", "--epochs", "2", "-q",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: cannot write model.json: File too large"),
        "{stderr}"
    );
    assert!(
        stderr.contains("any file already there is unchanged"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("model.json")).unwrap(),
        "the old model\n"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("model.png")).unwrap(),
        "the old plot\n"
    );
    assert_eq!(dir_names(d), before, "no temporary file is left behind");

    // The same for predictions: train for real, then predict under the limit.
    let out = run(
        d,
        &["train", "data.csv", "--hidden", "4", "--epochs", "2", "-q"],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let mut big = std::fs::read_to_string(d.join("data.csv")).unwrap();
    let rows: String = big.lines().skip(1).map(|l| format!("{l}\n")).collect();
    for _ in 0..40 {
        big.push_str(&rows);
    }
    std::fs::write(d.join("many.csv"), big).unwrap();
    std::fs::write(d.join("predictions.csv"), "old predictions\n").unwrap();
    let out = run_with_file_size_limit(
        d,
        8,
        &[
            "predict",
            "model.json",
            "many.csv",
            "--output",
            "predictions.csv",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: cannot write predictions.csv: File too large"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("predictions.csv")).unwrap(),
        "old predictions\n"
    );

    // A directory that cannot exist (its parent is a file), for model, plot and output.
    std::fs::write(d.join("blocker"), "a file").unwrap();
    for (args, path) in [
        (
            &[
                "train",
                "data.csv",
                "-q",
                "--epochs",
                "1",
                "--model",
                "blocker/m.json",
            ][..],
            "blocker/m.json",
        ),
        (
            &[
                "train",
                "data.csv",
                "-q",
                "--epochs",
                "1",
                "--plot",
                "blocker/m.png",
            ][..],
            "blocker/m.png",
        ),
        (
            &[
                "predict",
                "model.json",
                "data.csv",
                "--output",
                "blocker/p.csv",
            ][..],
            "blocker/p.csv",
        ),
    ] {
        let out = run(d, args, &[]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: cannot write {path}: blocker is a file, not a directory"
            )),
            "{stderr}"
        );
        assert!(
            stderr.contains("hint: a part of this path is a file, not a directory"),
            "{stderr}"
        );
    }
}

#[test]
fn same_data_flags_and_seed_give_the_same_bytes_at_any_thread_count() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Over 2 MiB, so that two threads split the parsing.
    let csv = synthetic_csv(36_000);
    assert!(csv.len() > 2 << 20, "{}", csv.len());
    std::fs::create_dir(d.join("a")).unwrap();
    std::fs::create_dir(d.join("b")).unwrap();
    std::fs::write(d.join("a/data.csv"), &csv).unwrap();
    std::fs::write(d.join("b/data.csv"), &csv).unwrap();
    // Wide enough layers and batches that the matrix products and the element-wise passes
    // are split over the threads (8 × 512 inputs · 512 units, 256 × 512 activations).
    let args = |data: &str, model: &str, seed: &str| -> Vec<String> {
        [
            "train",
            data,
            "--hidden",
            "512,512",
            "--epochs",
            "3",
            "--batch-size",
            "256",
            "--seed",
            seed,
            "--model",
            model,
            "-q",
        ]
        .map(String::from)
        .to_vec()
    };
    let train = |args: Vec<String>, threads: Option<&str>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let env: Vec<(&str, &str)> = threads.map(|t| ("MLP_THREADS", t)).into_iter().collect();
        let out = run(d, &args, &env);
        assert!(out.status.success(), "{}", text(&out.stderr));
        (
            std::fs::read(d.join(args[args.len() - 2])).unwrap(),
            std::fs::read(d.join(args[args.len() - 2]).with_extension("png")).unwrap(),
        )
    };
    let abs_b = d.join("b/data.csv");
    let runs = [
        train(args("a/data.csv", "one.json", "7"), Some("1")),
        train(args("a/data.csv", "two.json", "7"), Some("2")),
        train(args("a/data.csv", "default.json", "7"), None),
        // Another copy of the data, named by its absolute path: still the same bytes.
        train(args(abs_b.to_str().unwrap(), "b.json", "7"), Some("2")),
    ];
    for (i, r) in runs.iter().enumerate().skip(1) {
        assert!(r.0 == runs[0].0, "model of run {i} differs from run 0");
        assert!(r.1 == runs[0].1, "plot of run {i} differs from run 0");
    }
    let model: serde_json::Value = serde_json::from_slice(&runs[0].0).unwrap();
    assert_eq!(
        model["training"]["history"]["train_loss"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    let text = String::from_utf8(runs[0].0.clone()).unwrap();
    assert!(
        !text.contains(d.to_str().unwrap()),
        "no absolute paths in the model"
    );
    // The seed matters, so the comparison above can fail.
    let other = train(args("a/data.csv", "seed8.json", "8"), Some("1"));
    assert!(other.0 != runs[0].0);
}
