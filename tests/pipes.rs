//! `mlp` inside a Unix pipeline: standard input (`-`), `--keep`, JSON lines, and the
//! conventions every command follows (`-h`/`--help`, completions, "wrote" lines on
//! standard error, `--quiet`), plus `mlp info`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const MLP: &str = env!("CARGO_BIN_EXE_mlp");

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

/// Runs `mlp args` in `dir` with `input` on standard input.
fn mlp_with_input(dir: &Path, args: &[&str], input: &[u8]) -> Output {
    let mut child = Command::new(MLP)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let mut stdin = child.stdin.take().expect("piped");
    let input = input.to_vec();
    // Written from another thread, so that a large input cannot fill the pipe while the
    // output fills the other.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("the binary ends");
    writer.join().unwrap();
    out
}

fn mlp(dir: &Path, args: &[&str]) -> Output {
    mlp_with_input(dir, args, b"")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Insists on exit code `code`; returns standard output and standard error.
fn expect(code: i32, out: Output, args: &[&str]) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(code),
        "mlp {args:?}:\n{stdout}\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    (stdout, stderr)
}

fn ok(dir: &Path, args: &[&str]) -> (String, String) {
    expect(0, mlp(dir, args), args)
}

fn ok_with_input(dir: &Path, args: &[&str], input: &[u8]) -> (String, String) {
    expect(0, mlp_with_input(dir, args, input), args)
}

/// A quick iris classifier (one network, 30 epochs, seed 1) as `model.json` in `dir`.
fn iris_model(dir: &Path) {
    let iris = data("data/iris.csv");
    let args = [
        "train",
        iris.to_str().unwrap(),
        "--folds",
        "0",
        "--epochs",
        "30",
        "--seed",
        "1",
        "-q",
    ];
    ok(dir, &args);
}

/// iris with an `id` column in front (`r2` … `r151`, after the line numbers) and the
/// rows repeated `times` times.
fn iris_with_ids(times: usize) -> String {
    let iris = std::fs::read_to_string(data("data/iris.csv")).unwrap();
    let mut lines = iris.lines();
    let mut out = format!("id,{}\n", lines.next().unwrap());
    let rows: Vec<&str> = lines.collect();
    for t in 0..times {
        for (i, row) in rows.iter().enumerate() {
            out.push_str(&format!("r{},{row}\n", t * rows.len() + i + 2));
        }
    }
    out
}

fn json(line: &str) -> Value {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

#[test]
fn predict_reads_standard_input_and_carries_ids_into_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    iris_model(d);
    let test = iris_with_ids(1);
    std::fs::write(d.join("test.csv"), &test).unwrap();
    // The command: `cat test.csv | mlp predict m.json - --keep id --format jsonl`.
    let args = [
        "predict",
        "model.json",
        "-",
        "--keep",
        "id",
        "--format",
        "jsonl",
    ];
    let (out, err) = ok_with_input(d, &args, test.as_bytes());
    assert_eq!(err, "");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 150);
    // The same predictions as the CSV path from the file.
    let (csv, _) = ok(d, &["predict", "model.json", "test.csv", "--proba"]);
    let csv: Vec<&str> = csv.lines().collect();
    assert_eq!(
        csv[0],
        "prediction,prob_setosa,prob_versicolor,prob_virginica"
    );
    for (i, (line, row)) in lines.iter().zip(&csv[1..]).enumerate() {
        let v = json(line);
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "prediction", "probabilities"], "{line}");
        assert_eq!(v["id"], format!("r{}", i + 2));
        let fields: Vec<&str> = row.split(',').collect();
        assert_eq!(v["prediction"], fields[0]);
        for (k, label) in ["setosa", "versicolor", "virginica"].iter().enumerate() {
            let p = v["probabilities"][label].as_f64().unwrap();
            assert_eq!(format!("{p:.6}"), fields[k + 1], "{line}");
        }
    }
    // Most of iris is predicted right, by a 30-epoch network.
    let right = lines
        .iter()
        .zip(test.lines().skip(1))
        .filter(|(l, row)| row.ends_with(json(l)["prediction"].as_str().unwrap()))
        .count();
    assert!(right >= 135, "{right}");
}

#[test]
fn keep_copies_columns_as_the_file_has_them_on_both_paths() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    iris_model(d);
    // Plain (the streamed path), and with quoted cells and spaces (the general reader):
    // the same output, the kept cells unquoted and trimmed as the reader reads cells.
    let plain = "name,sepal_length,sepal_width,petal_length,petal_width,species\n\
                 007,5.1,3.5,1.4,0.2,setosa\n\
                 x y,6.4,3.2,4.5,1.5,versicolor\n";
    let quoted = "name,sepal_length,sepal_width,petal_length,petal_width,species\n\
                  \"007\", 5.1 ,3.5,1.4,0.2,setosa\n\
                  \" x y \",6.4,3.2,4.5,1.5,\"versicolor\"\n";
    let args = ["predict", "model.json", "-", "--keep", "species,name"];
    let (a, _) = ok_with_input(d, &args, plain.as_bytes());
    let (b, _) = ok_with_input(d, &args, quoted.as_bytes());
    assert_eq!(a, b);
    assert_eq!(
        a,
        "species,name,prediction\nsetosa,007,setosa\nversicolor,x y,versicolor\n"
    );
    // A cell holding a comma is quoted in the CSV output; JSON keeps numbers as strings.
    let comma = "name;sepal_length;sepal_width;petal_length;petal_width\n\
                 Smith, J;5.1;3.5;1.4;0.2\n";
    let (c, _) = ok_with_input(
        d,
        &["predict", "model.json", "-", "--keep", "name"],
        comma.as_bytes(),
    );
    assert_eq!(c, "name,prediction\n\"Smith, J\",setosa\n");
    let args = [
        "predict",
        "model.json",
        "-",
        "--keep",
        "name,sepal_length",
        "--format",
        "jsonl",
    ];
    let (j, _) = ok_with_input(d, &args, comma.as_bytes());
    let v = json(j.trim_end());
    assert_eq!(v["name"], "Smith, J");
    assert_eq!(v["sepal_length"], "5.1");
    // A column that is not there: exit 2, naming the columns that are.
    let args = ["predict", "model.json", "-", "--keep", "id"];
    let (_, err) = expect(2, mlp_with_input(d, &args, plain.as_bytes()), &args);
    assert_eq!(
        err,
        "error: invalid --keep id: <stdin> has no column 'id'\n  hint: its columns are: \
         name, sepal_length, sepal_width, petal_length, petal_width, species\n"
    );
    // Nor may a kept column take an output column's name.
    let renamed = plain.replacen("name", "prediction", 1);
    let args = ["predict", "model.json", "-", "--keep", "prediction"];
    let (_, err) = expect(2, mlp_with_input(d, &args, renamed.as_bytes()), &args);
    assert!(
        err.starts_with(
            "error: invalid --keep prediction: 'prediction' is the name of an output column"
        ),
        "{err}"
    );
}

#[test]
fn standard_input_is_read_in_chunks_with_lines_counted_over_the_whole_input() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    iris_model(d);
    // 40 copies of iris, about 1 MiB: more than one chunk at --memory-limit 16M.
    let big = iris_with_ids(40);
    std::fs::write(d.join("big.csv"), &big).unwrap();
    let (whole, _) = ok(d, &["predict", "model.json", "big.csv", "--keep", "id"]);
    let args = [
        "predict",
        "model.json",
        "-",
        "--keep",
        "id",
        "--memory-limit",
        "16M",
    ];
    let (chunked, _) = ok_with_input(d, &args, big.as_bytes());
    assert_eq!(chunked.lines().count(), 6001);
    assert!(chunked.lines().nth(6000).unwrap().starts_with("r6001,"));
    assert_eq!(chunked, whole);
    // eval from standard input gives the file's figures, and names `<stdin>`.
    let (from_file, _) = ok(d, &["eval", "model.json", "big.csv", "--json"]);
    let args = ["eval", "model.json", "-", "--json", "--memory-limit", "16M"];
    let (from_stdin, _) = ok_with_input(d, &args, big.as_bytes());
    assert_eq!(from_stdin, from_file);
    assert_eq!(json(&from_stdin)["rows"], 6000);
    let (report, _) = ok_with_input(d, &["eval", "model.json", "-"], big.as_bytes());
    assert!(
        report.starts_with("<stdin>: 6000 rows, classification of 'species'\n"),
        "{report}"
    );
    // A bad cell deep in the input: its line in the whole input, after several chunks.
    let bad = big.replacen("r5000,5.", "r5000,five", 1);
    for command in ["predict", "eval"] {
        let args = [command, "model.json", "-", "--memory-limit", "16M"];
        let (_, err) = expect(2, mlp_with_input(d, &args, bad.as_bytes()), &args);
        assert!(
            err.starts_with("error: <stdin>, line 5000, column 'sepal_length': 'five"),
            "{command}: {err}"
        );
    }
}

#[test]
fn standard_input_refuses_a_line_longer_than_64_mib_with_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    iris_model(d);
    let mut input = iris_with_ids(1).into_bytes();
    input.extend(std::iter::repeat_n(b'1', 65 << 20));
    input.push(b'\n');
    for command in ["predict", "eval"] {
        let args = [command, "model.json", "-"];
        let (_, err) = expect(2, mlp_with_input(d, &args, &input), &args);
        assert_eq!(
            err.lines().next().unwrap(),
            "error: <stdin>, line 152: this line is longer than 64 MiB",
            "{command}"
        );
    }
}

#[test]
fn json_lines_of_a_regression_model_give_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let houses = data("data/houses.csv");
    let head: String = std::fs::read_to_string(&houses)
        .unwrap()
        .lines()
        .take(6)
        .map(|l| format!("{l}\n"))
        .collect();
    let args = [
        "train",
        houses.to_str().unwrap(),
        "--folds",
        "0",
        "--epochs",
        "5",
        "-q",
    ];
    ok(d, &args);
    let (csv, _) = ok_with_input(d, &["predict", "model.json", "-"], head.as_bytes());
    let args = ["predict", "model.json", "-", "--format", "jsonl"];
    let (jsonl, _) = ok_with_input(d, &args, head.as_bytes());
    let values: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(values.len(), 5);
    for (line, value) in jsonl.lines().zip(values) {
        let v = json(line);
        assert_eq!(v.as_object().unwrap().len(), 1, "{line}");
        assert_eq!(
            v["prediction"].as_f64().unwrap() as f32,
            value.parse::<f32>().unwrap()
        );
    }
}

#[test]
fn info_prints_what_the_model_file_holds() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    iris_model(d);
    let (out, err) = ok(d, &["info", "model.json"]);
    assert_eq!(err, "");
    let lines: Vec<&str> = out.lines().collect();
    let expected_start = [
        "model.json: mlp-model version 1",
        "",
        "network:",
        "  #  layer             output     parameters",
        "  0  Linear(35 → 128)  (N, 128)         4608",
        "  1  ReLU              (N, 128)            0",
        "  2  Linear(128 → 64)  (N, 64)          8256",
        "  3  ReLU              (N, 64)             0",
        "  4  Linear(64 → 3)    (N, 3)            195",
        "  parameters: 13059 per network, 13059 in all",
        "",
        "features: 4 columns → 35 inputs",
        "  column        kind       inputs  encoding",
        "  sepal_length  piecewise       9  (x − 5.9067) / 0.8259, and 8 quantile bins cut at \
         4.3, 5, 5.2, 5.6, 5.8, 6.1, 6.5, 6.9, 7.9; missing → 5.8",
    ];
    assert_eq!(lines[..expected_start.len()], expected_start, "{out}");
    for line in [
        "target: 'species', classification of 3 classes: setosa, versicolor, virginica",
        "training data: iris.csv, SHA-256 \
         91eb642c3adbc7bad8e99c930c11fa3a5cc8a07262c7a753b4e6ecf405f2e05e",
        "  150 rows (120 training, 30 validation; 0 dropped for missing values, 0 missing \
         cells filled)",
        "  30 epochs run (completed)",
        "settings: activation relu, batch_size 32, calibration temperature, class_weight \
         none, dropout 0, epochs 30, folds 0, grow_batch true, held_rows 50000, hidden 128, 64, \
         intervals ensemble, label_smoothing 0.1, learning_rate 0.001, metric loss, momentum 0.9, nesterov false, \
         optimizer adam, patience 10, refit false, seed 1, shuffle_window 32768, val_split \
         0.2, weight_decay 1e-4",
    ] {
        assert!(lines.contains(&line), "missing {line:?} in:\n{out}");
    }
    assert!(out.contains("\nmetrics: best_epoch "), "{out}");
    // The SHA-256 is the training file's.
    use sha2::Digest;
    let sha = sha2::Sha256::digest(std::fs::read(data("data/iris.csv")).unwrap());
    let hex: String = sha.iter().map(|b| format!("{b:02x}")).collect();
    assert!(out.contains(&hex));
    // --json: the same facts as one object, numbers as numbers.
    let (j, _) = ok(d, &["info", "model.json", "--json"]);
    let v = json(j.trim_end());
    assert_eq!(v["version"], 1);
    assert_eq!(v["networks"], 1);
    assert_eq!(v["parameters"]["total"], 13059);
    assert_eq!(v["layers"][0]["parameters"], 4608);
    assert_eq!(v["features"][0]["kind"], "piecewise");
    assert_eq!(v["features"][0]["fill"], 5.8);
    assert_eq!(v["features"][1]["inputs"], 8);
    assert_eq!(v["target"]["labels"][2], "virginica");
    assert_eq!(v["training"]["data_sha256"], hex.as_str());
    assert_eq!(v["settings"]["seed"], 1);
    let model: Value = json(&std::fs::read_to_string(d.join("model.json")).unwrap());
    assert_eq!(v["metrics"], model["metrics"]);
    // A file that is not a model: the loader's message, exit 2.
    std::fs::write(d.join("x.json"), "{}").unwrap();
    let (_, err) = expect(2, mlp(d, &["info", "x.json"]), &["info"]);
    assert!(err.starts_with("error: x.json"), "{err}");
}

const COMMANDS: [&str; 9] = [
    "train",
    "predict",
    "eval",
    "explain",
    "importance",
    "info",
    "lr-find",
    "export",
    "completions",
];

#[test]
fn dash_h_is_short_and_dash_dash_help_long_on_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (short, _) = ok(d, &["-h"]);
    let (long, _) = ok(d, &["--help"]);
    assert!(
        long.contains("mlp train data/iris.csv --target species"),
        "{long}"
    );
    assert!(!short.contains("Example"), "{short}");
    for command in COMMANDS {
        assert!(
            short.contains(&format!("\n  {command} ")),
            "{command} missing:\n{short}"
        );
        let (short, _) = ok(d, &[command, "-h"]);
        let (long, _) = ok(d, &[command, "--help"]);
        assert!(short.len() < long.len(), "{command}:\n{short}\n{long}");
        assert!(
            short.ends_with("--help gives examples and details\n"),
            "{command}: {short}"
        );
        assert!(!short.contains("Examples:"), "{command}: {short}");
        assert!(long.contains("Examples:"), "{command}: {long}");
        assert!(
            long.contains(&format!("mlp {command} ")),
            "{command}: {long}"
        );
    }
}

#[test]
fn completions_are_printed_for_bash_zsh_and_fish() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (bash, err) = ok(d, &["completions", "bash"]);
    assert_eq!(err, "");
    assert!(bash.starts_with("_mlp() {"), "{bash}");
    assert!(bash.contains("complete -F _mlp"), "{bash}");
    for command in COMMANDS {
        let name = command.replace('-', "__subcmd__");
        assert!(bash.contains(&format!("mlp__subcmd__{name}")), "{command}");
    }
    for flag in ["--keep", "--format", "--proba", "--target", "--quiet"] {
        assert!(bash.contains(flag), "{flag}");
    }
    let (zsh, _) = ok(d, &["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef mlp"), "{zsh}");
    let (fish, _) = ok(d, &["completions", "fish"]);
    assert!(fish.contains("complete -c mlp"), "{fish}");
    // bash itself accepts the script, if it is there.
    if let Ok(out) = Command::new("bash").args(["-n", "-c", &bash]).output() {
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    let (_, err) = expect(2, mlp(d, &["completions", "tcsh"]), &["completions"]);
    assert!(err.starts_with("error: invalid value 'tcsh'"), "{err}");
}

#[test]
fn wrote_lines_go_to_standard_error_and_quiet_leaves_them_out() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = data("data/iris.csv");
    let iris = iris.to_str().unwrap();
    let runs: [&[&str]; 5] = [
        &["train", iris, "--folds", "0", "--epochs", "3"],
        &["predict", "model.json", iris, "--output", "p.csv"],
        &["export", "model.json", "--output", "model.onnx"],
        &[
            "importance",
            "model.json",
            iris,
            "--repeats",
            "1",
            "--plot",
            "i.png",
        ],
        &["lr-find", iris, "--plot", "lr.png"],
    ];
    let wrote = [
        "wrote model.json\nwrote model.png\n",
        "wrote 150 predictions to p.csv\n",
        "wrote ONNX model to model.onnx\n",
        "wrote i.png\n",
        "wrote lr.png\n",
    ];
    for (args, wrote) in runs.iter().zip(wrote) {
        let (out, err) = ok(d, args);
        assert!(!out.contains("wrote"), "{args:?}: {out}");
        assert!(err.ends_with(wrote), "{args:?}: {err}");
        let quiet: Vec<&str> = args.iter().copied().chain(["-q"]).collect();
        let (_, err) = ok(d, &quiet);
        // Warnings stay (importance on its own training file is in-sample); notes and
        // "wrote" lines go.
        let rest: Vec<&str> = (err.lines())
            .filter(|l| !l.starts_with("warning: ") || !l.contains("in-sample"))
            .collect();
        assert!(rest.is_empty(), "{args:?}: {err}");
    }
}
