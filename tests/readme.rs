//! The README's examples, run in order as a new user would run them, in a fresh directory
//! holding the repository's `data/`: every `console` block's commands with `mlp` on the
//! `PATH`, their output (standard output and standard error together) and exit codes
//! checked against the README. So the README cannot drift from the program.
//!
//! In an expected output, a line holding only `…` (or `...`) stands for any number of
//! lines, and `[..]` inside a line for any text. A block the test cannot run (it needs
//! another build, a 1 GB file, MPI, Python packages) says why in an HTML comment before it,
//! `<!-- not run by tests/readme.rs: … -->`; a block whose command must fail says
//! `<!-- tests/readme.rs: exit 2 -->`. A `python` or `rust` block directly followed by a
//! `console` block that starts with output is a program and what it prints: Python runs if
//! `MLP_TEST_PYTHON` names an interpreter with onnxruntime and pandas, Rust with `rustc`.
//! `cargo run --release --example NAME` runs the example `cargo test` built.

use std::path::{Path, PathBuf};
use std::process::Command;

const MLP: &str = env!("CARGO_BIN_EXE_mlp");
const SKIP: &str = "<!-- not run by tests/readme.rs:";
const EXIT_2: &str = "<!-- tests/readme.rs: exit 2 -->";

/// One fenced block of the README.
#[derive(Debug)]
struct Block {
    /// The info string: `console`, `python`, `rust`.
    lang: String,
    lines: Vec<String>,
    /// The README line of the opening fence.
    line: usize,
    /// The fence's indentation (a block inside a list item), cut from every line.
    indent: usize,
    /// The HTML comment just before it, if any.
    marker: Option<String>,
}

fn blocks(readme: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut current: Option<Block> = None;
    let mut last_text: Option<String> = None;
    for (i, raw) in readme.lines().enumerate() {
        let trimmed = raw.trim();
        let indent = raw.len() - raw.trim_start().len();
        if let Some(block) = current.as_mut() {
            if trimmed == "```" {
                out.extend(current.take());
            } else {
                block
                    .lines
                    .push(raw[indent.min(block.indent)..].to_string());
            }
        } else if let Some(lang) = trimmed.strip_prefix("```") {
            current = Some(Block {
                lang: lang.to_string(),
                lines: Vec::new(),
                line: i + 1,
                indent,
                marker: last_text.take().filter(|t| t.starts_with("<!--")),
            });
        } else if !trimmed.is_empty() {
            last_text = Some(trimmed.to_string());
        }
    }
    out
}

/// A command and the output it must print.
#[derive(Debug)]
struct Step {
    command: String,
    expected: Vec<String>,
}

/// The `$ ` commands of a console block (a line ending in `\` goes on), each with the
/// lines after it; the lines before the first command.
fn steps(block: &Block) -> (Vec<String>, Vec<Step>) {
    let mut leading = Vec::new();
    let mut steps: Vec<Step> = Vec::new();
    let mut continued = false;
    for line in &block.lines {
        if continued {
            let step = steps.last_mut().unwrap();
            step.command.push('\n');
            step.command.push_str(line);
            continued = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step {
                command: command.to_string(),
                expected: Vec::new(),
            });
            continued = command.ends_with('\\');
        } else if let Some(step) = steps.last_mut() {
            step.expected.push(line.clone());
        } else {
            leading.push(line.clone());
        }
    }
    (leading, steps)
}

/// Whether `actual` matches the `expected` line (`[..]` matches any text), exactly, or
/// with every number within [`near`] of the README's: the text between the numbers must be
/// the same, but a loss or an accuracy may differ in its last digits on another processor
/// (matrix products take other vector widths there, and training amplifies the rounding).
fn line_matches(expected: &str, actual: &str) -> bool {
    text_matches(expected, actual) || {
        let (e, a) = (split_numbers(expected), split_numbers(actual));
        e.0.len() == a.0.len()
            && text_matches(&e.1, &a.1)
            && e.0.iter().zip(&a.0).all(|(&x, &y)| near(x, y))
    }
}

/// Whether two numbers printed by a run agree as well as runs on two processors do.
fn near(expected: f64, actual: f64) -> bool {
    (expected - actual).abs() <= 0.02 + 0.2 * expected.abs().max(actual.abs())
}

/// The numbers of `line`, and the line with each replaced by `#`.
fn split_numbers(line: &str) -> (Vec<f64>, String) {
    let (mut numbers, mut text) = (Vec::new(), String::new());
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        if bytes[i] == b'-' && i + 1 < bytes.len() && bytes[i + 1].is_ascii_digit() {
            i += 1;
        }
        if i < bytes.len() && bytes[i].is_ascii_digit() && !(start > 0 && is_word(bytes[start - 1]))
        {
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            if let Ok(v) = line[start..i].trim_end_matches('.').parse::<f64>() {
                numbers.push(v);
                text.push('#');
                if line[start..i].ends_with('.') {
                    text.push('.');
                }
                continue;
            }
        }
        i = start;
        let c = line[i..].chars().next().unwrap();
        text.push(c);
        i += c.len_utf8();
    }
    (numbers, text)
}

/// A letter or underscore: a digit after one is part of a name (`x1`, `sha256`).
fn is_word(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

/// Whether `actual` matches the `expected` line exactly, `[..]` matching any text.
fn text_matches(expected: &str, actual: &str) -> bool {
    let parts: Vec<&str> = expected.split("[..]").collect();
    if parts.len() == 1 {
        return expected == actual;
    }
    let Some(mut rest) = actual.strip_prefix(parts[0]) else {
        return false;
    };
    for (k, part) in parts.iter().enumerate().skip(1) {
        if k == parts.len() - 1 {
            return rest.ends_with(part);
        }
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

fn is_ellipsis(line: &str) -> bool {
    matches!(line.trim(), "…" | "...")
}

/// Whether the `actual` lines match the `expected` ones (`…` lines match any number).
fn lines_match(expected: &[String], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((e, rest)) if is_ellipsis(e) => {
            (0..=actual.len()).any(|skip| lines_match(rest, &actual[skip..]))
        }
        Some((e, rest)) => actual
            .split_first()
            .is_some_and(|(a, more)| line_matches(e, a) && lines_match(rest, more)),
    }
}

/// The README's working directory: a fresh one with the repository's `data/`, an empty
/// `docs/`, and `mlp` on the `PATH`.
struct Sandbox {
    dir: tempfile::TempDir,
    path: String,
}

impl Sandbox {
    fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::create_dir(dir.path().join("data")).unwrap();
        for entry in std::fs::read_dir(repo.join("data")).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(
                entry.path(),
                dir.path().join("data").join(entry.file_name()),
            )
            .unwrap();
        }
        std::fs::create_dir(dir.path().join("docs")).unwrap();
        let bin = dir.path().join(".bin");
        std::fs::create_dir(&bin).unwrap();
        std::os::unix::fs::symlink(MLP, bin.join("mlp")).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        Sandbox { dir, path }
    }

    /// Runs `command` with `sh` (standard error into standard output); output and exit code.
    fn run(&self, command: &str) -> (String, i32) {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("exec 2>&1\n{}", example_command(command)))
            .current_dir(self.dir.path())
            .env("PATH", &self.path)
            .env_remove("MLP_THREADS")
            .output()
            .expect("sh runs");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        (text, out.status.code().unwrap_or(-1))
    }
}

/// `cargo run --release --example NAME [-- ARGS]` as the example `cargo test` built.
fn example_command(command: &str) -> String {
    let Some(rest) = command.strip_prefix("cargo run --release --example ") else {
        return command.to_string();
    };
    let (name, args) = rest.split_once(' ').unwrap_or((rest, ""));
    let args = args.trim_start().strip_prefix("--").unwrap_or(args);
    format!("{} {args}", example_binary(name).display())
}

/// Where `cargo test` put the example `name`: `target/debug/examples/NAME`.
fn example_binary(name: &str) -> PathBuf {
    let mlp = Path::new(MLP);
    mlp.parent().unwrap().join("examples").join(name)
}

fn check(
    readme_line: usize,
    command: &str,
    expected: &[String],
    actual: &str,
    code: i32,
    want: i32,
) {
    let lines: Vec<&str> = actual.lines().collect();
    if code == want && lines_match(expected, &lines) {
        return;
    }
    let report = format!(
        "README.md line {readme_line}: `{command}` exited with {code} (the README expects \
         {want}) and printed:\n{actual}\nThe README shows:\n{}\n",
        expected.join("\n")
    );
    // MLP_README_REPORT=FILE: every difference written there, the run going on (to update
    // the README in one pass); otherwise the first one fails the test.
    match std::env::var("MLP_README_REPORT") {
        Ok(file) => {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(file)
                .unwrap();
            writeln!(f, "{report}\n==========").unwrap();
        }
        Err(_) => panic!("{report}"),
    }
}

/// A `python` or `rust` program block, and the output the console block after it shows.
fn run_program(sandbox: &Sandbox, program: &Block, output: &[String], console_line: usize) {
    let dir = sandbox.dir.path();
    let source = program.lines.join("\n") + "\n";
    let command = match program.lang.as_str() {
        "python" => {
            let Ok(python) = std::env::var("MLP_TEST_PYTHON") else {
                eprintln!(
                    "skipped the README's Python example (line {}): set MLP_TEST_PYTHON to a \
                     Python with onnxruntime and pandas",
                    program.line
                );
                return;
            };
            std::fs::write(dir.join("readme_example.py"), source).unwrap();
            format!("{python} readme_example.py")
        }
        "rust" => {
            if Command::new("rustc").arg("--version").output().is_err() {
                eprintln!(
                    "skipped the README's Rust example (line {}): no rustc",
                    program.line
                );
                return;
            }
            std::fs::write(dir.join("readme_example.rs"), source).unwrap();
            "rustc --edition 2021 -O -o readme_example readme_example.rs && ./readme_example"
                .to_string()
        }
        other => panic!("README.md line {}: no runner for {other}", program.line),
    };
    let (actual, code) = sandbox.run(&command);
    check(console_line, &command, output, &actual, code, 0);
}

#[test]
fn the_readme_examples_run_in_order_and_print_what_it_shows() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let blocks = blocks(&readme);
    let sandbox = Sandbox::new();
    let mut ran = 0;
    for (i, block) in blocks.iter().enumerate() {
        if block.lang != "console" {
            continue;
        }
        if let Some(marker) = &block.marker
            && let Some(reason) = marker.strip_prefix(SKIP)
        {
            assert!(
                reason.trim_end_matches("-->").trim().len() > 10,
                "README.md line {}: say why the block is not run",
                block.line
            );
            continue;
        }
        let want = if block.marker.as_deref() == Some(EXIT_2) {
            2
        } else {
            0
        };
        let (leading, steps) = steps(block);
        if !leading.is_empty() {
            let program = i
                .checked_sub(1)
                .map(|p| &blocks[p])
                .filter(|p| p.lang == "python" || p.lang == "rust")
                .unwrap_or_else(|| {
                    panic!(
                        "README.md line {}: output with no command or program before it",
                        block.line
                    )
                });
            run_program(&sandbox, program, &leading, block.line);
        }
        for step in &steps {
            if step.command.starts_with("cargo run --release --example ")
                && !example_binary(step.command[30..].split(' ').next().unwrap()).exists()
            {
                eprintln!("skipped `{}`: the example was not built", step.command);
                continue;
            }
            let (actual, code) = sandbox.run(&step.command);
            check(
                block.line,
                &step.command,
                &step.expected,
                &actual,
                code,
                want,
            );
            ran += 1;
        }
    }
    assert!(ran >= 10, "only {ran} README commands ran");
}

#[test]
fn numbers_may_differ_in_their_last_digits_and_text_not_at_all() {
    assert!(line_matches(
        "accuracy: 0.9867 (148/150)",
        "accuracy: 0.9800 (147/150)"
    ));
    assert!(line_matches(
        "best epoch 38: loss 0.1354",
        "best epoch 41: loss 0.1290"
    ));
    assert!(!line_matches(
        "best epoch 38: loss 0.1354",
        "best epoch 60: loss 0.1354"
    ));
    assert!(!line_matches("accuracy: 0.9867", "accuracy 0.9867"));
    assert!(!line_matches(
        "accuracy: 0.9867",
        "accuracy: 0.9867 (always 0.3333)"
    ));
    assert!(!line_matches("column x1 2", "column x2 2"));
    assert!(line_matches(
        "wrote 150 predictions",
        "wrote 150 predictions"
    ));
    assert!(!line_matches(
        "wrote 150 predictions",
        "wrote 15 predictions"
    ));
}

#[test]
fn the_matcher_elides_lines_and_text_and_nothing_else() {
    let e = |lines: &[&str]| lines.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    assert!(lines_match(&e(&["a", "…", "d"]), &["a", "b", "c", "d"]));
    assert!(lines_match(&e(&["a", "…", "b"]), &["a", "b"]));
    assert!(!lines_match(&e(&["a", "…", "d"]), &["a", "b", "c"]));
    assert!(lines_match(
        &e(&["took [..] s, [..] rows"]),
        &["took 1.5 s, 300 rows"]
    ));
    assert!(!lines_match(&e(&["took [..] s"]), &["took 1.5 ms!"]));
    assert!(!lines_match(&e(&["a"]), &["a", "b"]));
    // Numbers within run-to-run noise of another processor match; other text never does.
    assert!(lines_match(
        &e(&["accuracy: 0.9867"]),
        &["accuracy: 0.9866"]
    ));
    assert!(!lines_match(
        &e(&["accuracy: 0.9867"]),
        &["accuracy: 0.5000"]
    ));
    assert!(!lines_match(
        &e(&["accuracy: 0.9867"]),
        &["accuracy= 0.9867"]
    ));
}

#[test]
fn rust_version_is_stated_and_the_toolchain_meets_it() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml")).unwrap();
    let version = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = \""))
        .and_then(|l| l.strip_suffix('"'))
        .expect("Cargo.toml states rust-version");
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("Rust {version} or later")),
        "the README states the minimum Rust version, {version}"
    );
    assert!(readme.contains("cargo install --path ."));
    // The toolchain building this test is at least that version.
    let rustc = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .arg("--version")
        .output()
        .expect("rustc runs");
    let have = String::from_utf8_lossy(&rustc.stdout).into_owned();
    let number = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    let have_version = have
        .split_whitespace()
        .nth(1)
        .unwrap()
        .split('-')
        .next()
        .unwrap();
    assert!(
        number(have_version) >= number(version),
        "{have} < {version}"
    );
}

/// The README's Python snippet on a frame like penguins: three text columns, numbers, a
/// missing number and a padded category, and the target column present. It must give the
/// labels `mlp predict` gives.
#[test]
fn the_readme_onnx_snippet_takes_text_columns_and_ignores_the_target() {
    let Ok(python) = std::env::var("MLP_TEST_PYTHON") else {
        eprintln!("skipped: set MLP_TEST_PYTHON to a Python with onnxruntime and pandas");
        return;
    };
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let snippet = blocks(&readme)
        .into_iter()
        .find(|b| b.lang == "python")
        .expect("the README has a Python snippet")
        .lines
        .join("\n");
    assert!(snippet.contains("\"data/new_flowers.csv\""), "{snippet}");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let customers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/customers.csv");
    let mut text = std::fs::read_to_string(&customers).unwrap();
    // A missing age and a category with spaces around it, on the first data rows.
    text = text.replacen("\n46,56390,pro,", "\nNA,56390, pro ,", 1);
    assert!(text.contains("NA,56390, pro ,"));
    std::fs::write(d.join("customers.csv"), &text).unwrap();
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program)
            .args(args)
            .current_dir(d)
            .output()
            .expect("runs");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        assert!(
            out.status.success(),
            "{program} {args:?}:\n{stdout}\n{stderr}"
        );
        stdout
    };
    run(
        MLP,
        &[
            "train",
            "customers.csv",
            "--folds",
            "0",
            "--epochs",
            "5",
            "-q",
        ],
    );
    run(
        MLP,
        &["export", "model.json", "--output", "model.onnx", "-q"],
    );
    let predicted = run(MLP, &["predict", "model.json", "customers.csv"]);
    let expected: Vec<&str> = predicted.lines().skip(1).collect();
    let script = snippet.replace("\"data/new_flowers.csv\"", "\"customers.csv\"")
        + "\nprint(\"LABELS\", \" \".join(map(str, label)))\n";
    std::fs::write(d.join("snippet.py"), script).unwrap();
    let out = run(&python, &["snippet.py"]);
    let labels = out
        .lines()
        .find_map(|l| l.strip_prefix("LABELS "))
        .unwrap_or_else(|| panic!("{out}"));
    let labels: Vec<&str> = labels.split(' ').collect();
    assert_eq!(labels.len(), 300);
    assert_eq!(labels, expected);
}
