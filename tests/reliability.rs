//! Situations outside the bad-input corpus that a Unix user meets within a week: closed
//! pipes and full disks on the output streams, devices and pipes as files, endless inputs,
//! control bytes in values, settings that cannot take effect, column names with commas,
//! clap's own errors, a second Ctrl-C, a file size limit, and outputs that cannot be
//! written. Each test here failed before the behaviour it checks existed.

#![cfg(unix)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const MLP: &str = env!("CARGO_BIN_EXE_mlp");

fn corpus(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(name)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn mlp(dir: &Path) -> Command {
    let mut c = Command::new(MLP);
    c.current_dir(dir).env_remove("MLP_THREADS");
    c
}

fn run(dir: &Path, args: &[&str]) -> Output {
    mlp(dir).args(args).output().unwrap()
}

/// A directory with `data.csv` (the corpus fixture) and `model.json` trained on it.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::copy(corpus("fixture.csv"), d.join("data.csv")).unwrap();
    // Rows to evaluate on that are not the training file (eval warns on that one): the
    // same rows in reverse order.
    let fixture = std::fs::read_to_string(corpus("fixture.csv")).unwrap();
    let mut lines: Vec<&str> = fixture.lines().collect();
    lines[1..].reverse();
    std::fs::write(d.join("test.csv"), lines.join("\n") + "\n").unwrap();
    let out = run(
        d,
        &["train", "data.csv", "--hidden", "4", "--epochs", "3", "-q"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    dir
}

/// One `error:` line and one `  hint:` line, nothing else, and the message starts with
/// `head`.
fn one_error(stream: &str, head: &str, context: &str) {
    let lines: Vec<&str> = stream.lines().collect();
    assert_eq!(
        lines.len(),
        2,
        "one error line and one hint line\n{context}"
    );
    assert!(
        lines[0].starts_with(&format!("error: {head}")),
        "expected `error: {head}`\n{context}"
    );
    assert!(lines[1].starts_with("  hint: "), "{context}");
}

fn make_fifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success());
}

/// Every command, with a flag list that succeeds, that fails on a bad file, and clap's own
/// paths (help, a bad flag).
fn commands() -> Vec<(&'static str, Vec<&'static str>)> {
    vec![
        (
            "train",
            vec![
                "train", "data.csv", "--hidden", "4", "--epochs", "2", "--model", "t.json",
            ],
        ),
        (
            "train -q",
            vec![
                "train", "data.csv", "-q", "--epochs", "1", "--model", "q.json",
            ],
        ),
        ("predict", vec!["predict", "model.json", "data.csv"]),
        ("eval", vec!["eval", "model.json", "test.csv"]),
        (
            "eval --json",
            vec!["eval", "model.json", "test.csv", "--json"],
        ),
        ("bad file", vec!["eval", "model.json", "missing.csv"]),
        ("help", vec!["train", "--help"]),
        ("bad flag", vec!["train", "data.csv", "--epochs", "many"]),
    ]
}

/// Situation 1: `> /dev/full`, `2> /dev/full` and a closed pipe, for every command. Never
/// a panic; a closed pipe is quiet and the files are still written; any other failure is
/// exit 2, reported on the stream that still works.
#[test]
fn stdout_and_stderr_failures_are_reported_never_panic() {
    let dir = workspace();
    let d = dir.path();
    let full = || {
        Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
    };
    for (name, args) in commands() {
        let fails = name == "bad file" || name == "bad flag";
        let prints = !matches!(name, "train -q");

        // Standard output on a full disk.
        let out = mlp(d).args(&args).stdout(full()).output().unwrap();
        let stderr = text(&out.stderr);
        let context = format!("{name} > /dev/full\n{stderr}");
        assert!(!stderr.contains("panicked"), "{context}");
        if fails || prints {
            assert_eq!(out.status.code(), Some(2), "{context}");
        } else {
            assert_eq!(out.status.code(), Some(0), "{context}");
        }
        if prints && !fails {
            // The "wrote" lines of the files written are on standard error too.
            let messages: String = (stderr.lines())
                .filter(|l| !l.starts_with("wrote "))
                .map(|l| format!("{l}\n"))
                .collect();
            one_error(
                &messages,
                "cannot write to standard output: No space left",
                &context,
            );
        }

        // Standard error on a full disk: an error goes to standard output instead.
        let out = mlp(d).args(&args).stderr(full()).output().unwrap();
        let stdout = text(&out.stdout);
        let context = format!("{name} 2> /dev/full\n{stdout}");
        assert!(!stdout.contains("panicked"), "{context}");
        if fails {
            assert_eq!(out.status.code(), Some(2), "{context}");
            let errors: Vec<&str> = stdout
                .lines()
                .filter(|l| l.starts_with("error: "))
                .collect();
            assert!(
                !errors.is_empty(),
                "the error is on standard output\n{context}"
            );
            assert!(stdout.contains("\n  hint: "), "{context}");
        } else if stdout.contains("error: cannot write to standard error") {
            // A warning (say, no epoch beat the untrained network), or train's "wrote"
            // lines, had nowhere to go.
            assert_eq!(out.status.code(), Some(2), "{context}");
            assert!(stdout.contains("\n  hint: "), "{context}");
        } else {
            // predict, eval and train -q print nothing on standard error when all goes
            // well (with no terminal, train shows no progress bar).
            assert_eq!(out.status.code(), Some(0), "{context}");
        }

        // Standard output closed before anything is written, then after one line.
        for keep_lines in [0, 1] {
            let _ = std::fs::remove_file(d.join("t.json"));
            let _ = std::fs::remove_file(d.join("t.png"));
            let mut child = mlp(d)
                .args(&args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            if keep_lines == 1 {
                let mut first = String::new();
                BufReader::new(stdout).read_line(&mut first).unwrap();
            } else {
                drop(stdout);
            }
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            let status = child.wait().unwrap();
            let context = format!("{name} | head -{keep_lines}\n{stderr}");
            assert!(!stderr.contains("panicked"), "{context}");
            assert_eq!(status.code(), Some(if fails { 2 } else { 0 }), "{context}");
            if !fails {
                // Quiet about the closed pipe; train's "wrote" lines are on standard error.
                let wrote = if name == "train" {
                    "wrote t.json\nwrote t.png\n"
                } else {
                    ""
                };
                assert_eq!(stderr, wrote, "quiet\n{context}");
            }
            if name == "train" {
                assert!(
                    d.join("t.json").exists() && d.join("t.png").exists(),
                    "{context}"
                );
            }
        }
    }
}

fn is_char_device(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_char_device())
}

/// Situation 2: a FIFO, a character device and `/proc/self/fd/1` as outputs are written
/// through, not replaced by a regular file. The device is a node made in a temporary
/// directory, never one of the system's.
#[test]
fn outputs_that_are_not_regular_files_are_written_through() {
    let dir = workspace();
    let d = dir.path();
    assert!(is_char_device(Path::new("/dev/null")));

    // The loss curve into a FIFO: a reader gets the whole PNG, the FIFO stays one.
    let fifo = d.join("curve.fifo");
    make_fifo(&fifo);
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    let out = run(
        d,
        &[
            "train",
            "data.csv",
            "--hidden",
            "4",
            "--epochs",
            "2",
            "-q",
            "--model",
            "f.json",
            "--plot",
            "curve.fifo",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let png = reader.join().unwrap();
    assert_eq!(&png[..4], b"\x89PNG");
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    assert!(!d.join("curve.fifo.png").exists());

    // Predictions to `/proc/self/fd/1`: the process's own standard output.
    let out = run(
        d,
        &[
            "predict",
            "model.json",
            "data.csv",
            "--output",
            "/proc/self/fd/1",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("prediction\n"), "{stdout}");
    assert_eq!(stdout.lines().count(), 61, "{stdout}");

    // A character device like /dev/null, made here (needs root, or CAP_MKNOD).
    let null = d.join("null");
    let made = Command::new("mknod")
        .args([null.to_str().unwrap(), "c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if made {
        for args in [
            &[
                "train", "data.csv", "-q", "--epochs", "1", "--model", "null", "--plot", "null",
            ][..],
            &["predict", "model.json", "data.csv", "--output", "null"][..],
        ] {
            let out = run(d, args);
            assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
            assert!(
                is_char_device(&null),
                "{args:?}: the device node is still one"
            );
        }
    } else {
        eprintln!("skipped: mknod is not permitted here, so no device node was tried");
    }
    assert!(is_char_device(Path::new("/dev/null")));
}

/// Peak resident memory (kB) of a child that has exited, and its output.
// `wait4` below reaps the child, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_measured(mut command: Command) -> (Output, i64) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_end(&mut stderr)
        .unwrap();
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value, and `wait4` writes into the two
    // locals it is given for a child of this process that `Child` has not reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as i32, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as i32);
    let status = std::os::unix::process::ExitStatusExt::from_raw(status);
    (
        Output {
            status,
            stdout,
            stderr,
        },
        usage.ru_maxrss,
    )
}

/// Situation 3: endless and huge inputs end with a located error, in bounded memory.
#[test]
fn endless_and_huge_inputs_end_with_a_clean_error() {
    let dir = workspace();
    let d = dir.path();
    std::os::unix::fs::symlink("/dev/zero", d.join("zero.json")).unwrap();
    const GB: i64 = 1 << 20; // in kB
    for (args, head) in [
        (
            &["train", "/dev/zero"][..],
            "/dev/zero, line 1: the first line (the header) is longer than 16 MiB",
        ),
        (
            &["predict", "model.json", "/dev/zero"][..],
            "/dev/zero, line 1: the first line (the header) is longer than 16 MiB",
        ),
        (
            &["predict", "zero.json", "data.csv"][..],
            "zero.json: not a model file: it starts with the byte 0x00, not '{'",
        ),
    ] {
        let mut c = mlp(d);
        c.args(args);
        let (out, peak) = run_measured(c);
        let stderr = text(&out.stderr);
        let context = format!("mlp {}\n{stderr}", args.join(" "));
        assert_eq!(out.status.code(), Some(2), "{context}");
        one_error(&stderr, head, &context);
        assert!(peak < GB, "peak {peak} kB\n{context}");
    }

    // A pipe with endless short lines: refused at the stream limit.
    let fifo = d.join("endless.fifo");
    make_fifo(&fifo);
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            let block = "1,2\n".repeat(1 << 14);
            f.write_all(b"a,b\n").unwrap();
            while f.write_all(block.as_bytes()).is_ok() {}
        })
    };
    let mut c = mlp(d);
    c.args(["train", "endless.fifo"]);
    let (out, peak) = run_measured(c);
    writer.join().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    one_error(
        &stderr,
        "endless.fifo: more than 512 MiB to read; the limit for data from a pipe or device is \
         512 MiB",
        &stderr,
    );
    assert!(peak < GB, "peak {peak} kB\n{stderr}");

    // A pipe whose second line never ends.
    let writer = {
        let fifo = fifo.clone();
        std::thread::spawn(move || {
            let mut f = std::fs::OpenOptions::new().write(true).open(fifo).unwrap();
            f.write_all(b"a,b\r\n1,2\r\n").unwrap();
            let block = vec![b'7'; 1 << 16];
            while f.write_all(&block).is_ok() {}
        })
    };
    let out = run(d, &["train", "endless.fifo"]);
    writer.join().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    one_error(
        &stderr,
        "endless.fifo, line 3: this line is longer than 64 MiB",
        &stderr,
    );

    // A model file larger than any model: refused unread (a sparse file takes no disk).
    let big = std::fs::File::create(d.join("big.json")).unwrap();
    big.set_len(5 << 30).unwrap();
    let out = run(d, &["eval", "big.json", "data.csv"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    one_error(
        &stderr,
        "big.json: more than 4 GiB to read; the limit for a model file is 4 GiB",
        &stderr,
    );
}

/// Situation 5: an environment variable is checked like a flag.
#[test]
fn a_bad_mlp_threads_is_refused_naming_it() {
    let dir = workspace();
    let d = dir.path();
    for value in ["abc", "0", "-3", ""] {
        let out = mlp(d)
            .args(["eval", "model.json", "data.csv"])
            .env("MLP_THREADS", value)
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "MLP_THREADS={value}: {stderr}");
        one_error(
            &stderr,
            &format!("invalid MLP_THREADS '{value}': the number of threads must be a whole"),
            &stderr,
        );
    }
    // `--threads` wins over the variable, and a good value works.
    for (env, flag) in [("abc", Some("2")), ("3", None)] {
        let mut c = mlp(d);
        c.args(["eval", "model.json", "data.csv"])
            .env("MLP_THREADS", env);
        if let Some(n) = flag {
            c.args(["--threads", n]);
        }
        let out = c.output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
}

/// Situation 6: a column name with a comma can be named, and the flags can be repeated.
#[test]
fn column_lists_are_csv_records_and_flags_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("\"id,x\",size,zip,label\n");
    for i in 0..40 {
        csv.push_str(&format!(
            "\"k{i},{}\",{}.5,{},{}\n",
            i * 7,
            i % 9,
            10000 + i % 4,
            if i % 3 == 0 { "a" } else { "b" }
        ));
    }
    std::fs::write(d.join("commas.csv"), csv).unwrap();
    let out = run(
        d,
        &[
            "train",
            "commas.csv",
            "-q",
            "--epochs",
            "2",
            "--ignore",
            "\"id,x\"",
            "--categorical",
            "zip",
            "--categorical",
            "size",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("model.json")).unwrap()).unwrap();
    let features: Vec<(&str, &str)> = model["encoding"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["name"].as_str().unwrap(), f["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(features, [("size", "categorical"), ("zip", "categorical")]);

    // Unquoted, the name is two names, neither of them a column; the hint shows the quoting.
    let out = run(d, &["train", "commas.csv", "-q", "--ignore", "id,x"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    one_error(
        &stderr,
        "invalid --ignore 'id': commas.csv has no column of that name",
        &stderr,
    );
    assert!(
        stderr.contains("the columns are: id,x, size, zip, label"),
        "{stderr}"
    );
    // A hint that names a column with a comma quotes it the way the flag reads it.
    let out = run(d, &["train", "commas.csv", "-q"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--ignore '\"id,x\"'"), "{stderr}");
}

/// Situation 7: clap's own errors are in the same `error:` / `hint:` form.
#[test]
fn command_line_errors_have_a_hint() {
    let dir = workspace();
    let d = dir.path();
    for (args, head, hint) in [
        (
            &["train", "data.csv", "--epochs", "many"][..],
            "invalid value 'many' for '--epochs <N>': invalid digit found in string",
            "--epochs takes a whole number such as 10",
        ),
        (
            &["train", "data.csv", "--optimzer", "sgd"][..],
            "unexpected argument '--optimzer' found",
            "a similar argument exists: '--optimizer'",
        ),
        (
            &["train", "--target", "y"][..],
            "the following required arguments were not provided: <DATA.csv>",
            "usage: mlp train --target <COL> <DATA.csv>; `mlp train --help` says more",
        ),
        (
            &["train", "data.csv", "--activation", "gelu"][..],
            "invalid value 'gelu' for '--activation <ACTIVATION>'",
            "possible values: relu, sigmoid, tanh",
        ),
        (&["fly"][..], "unrecognized subcommand 'fly'", "usage: mlp"),
        (
            &[][..],
            "no command given",
            "`mlp train`, `mlp predict` or `mlp eval`",
        ),
        (
            &["train", "data.csv", "--target", "\u{1b}]0;pwned\u{7}"][..],
            "data.csv, line 1: there is no column '\\x1b]0;pwned\\x07' to use as the target",
            "name one of these with --target",
        ),
    ] {
        let out = run(d, args);
        let stderr = text(&out.stderr);
        let context = format!("mlp {args:?}\n{stderr}");
        assert_eq!(out.status.code(), Some(2), "{context}");
        one_error(&stderr, head, &context);
        assert!(stderr.lines().nth(1).unwrap().contains(hint), "{context}");
    }
    // Help and version still go to standard output.
    let out = run(d, &["--version"]);
    assert!(out.status.success());
    assert!(text(&out.stdout).starts_with("mlp "));
}

/// Situation 8: what the README promises when no epoch beats the untrained network is what
/// happens: with a constant target, the model is written, with a warning, and exit 0.
#[test]
fn a_constant_target_trains_with_a_warning_as_the_readme_says() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let csv: String = std::iter::once("x,y\n".to_string())
        .chain((0..40).map(|i| format!("{i}.5,5\n")))
        .collect();
    std::fs::write(d.join("flat.csv"), csv).unwrap();
    let out = run(
        d,
        &[
            "train",
            "flat.csv",
            "-q",
            "--epochs",
            "5",
            "--task",
            "regression",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.starts_with("warning: no epoch did better than the untrained network"),
        "{stderr}"
    );
    assert!(stderr.contains("\n  hint: "), "{stderr}");
    assert!(d.join("model.json").exists() && d.join("model.png").exists());
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(
        readme.contains(
            "If no epoch did better than the untrained network (a constant target, say), the \
             model is still written, with a warning"
        ),
        "the README says what the code does"
    );
}

/// Situation 9, SIGXFSZ: a write past `ulimit -f` (with the signal's default action, which
/// kills the process) removes its temporary file and reports.
#[test]
fn a_file_size_limit_leaves_no_temporary_file() {
    let dir = workspace();
    let d = dir.path();
    std::fs::write(d.join("old.json"), "the old model\n").unwrap();
    let before = names(d);
    let out = Command::new("sh")
        .arg("-c")
        .arg("trap - XFSZ; ulimit -f 32 && exec \"$0\" \"$@\"")
        .arg(MLP)
        .args([
            "train", "data.csv", "--hidden", "64,64", "--epochs", "2", "-q", "--model", "old.json",
        ])
        .current_dir(d)
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    one_error(&stderr, "cannot write old.json: File too large", &stderr);
    assert_eq!(
        std::fs::read_to_string(d.join("old.json")).unwrap(),
        "the old model\n"
    );
    assert_eq!(names(d), before, "no temporary file is left");
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Situation 9, a second Ctrl-C while a large model is being written: the temporary file is
/// removed on the way out. The first Ctrl-C stops the training and starts the write of the
/// best model so far; the second comes while its temporary file exists.
#[test]
fn a_second_ctrl_c_during_a_model_write_removes_the_temporary_file() {
    let dir = workspace();
    let d = dir.path();
    let interrupt = |child: &std::process::Child| {
        let kill = Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
    };
    // About 4 million weights: a model file of about 90 MB, which takes a moment to write.
    for wait_ms in [1000u64, 3000, 10000] {
        let before = names(d);
        let mut child = mlp(d)
            .args([
                "train",
                "data.csv",
                "--epochs",
                "100000",
                "--patience",
                "0",
                "--hidden",
                "2000,2000",
                "--model",
                "big.json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        while !seen.contains("split: ") {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "{seen}");
            seen.push_str(&line);
        }
        std::thread::sleep(std::time::Duration::from_millis(wait_ms));
        interrupt(&child);
        // The write of the best model so far starts: press Ctrl-C again once its temporary
        // file is there.
        let started = std::time::Instant::now();
        let mut caught = false;
        while started.elapsed() < std::time::Duration::from_secs(60) {
            if names(d).iter().any(|n| n.starts_with(".big.json.tmp-")) {
                interrupt(&child);
                caught = true;
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut stderr)
            .unwrap();
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert_eq!(status.code(), Some(130), "{stderr}");
        let left: Vec<String> = names(d)
            .into_iter()
            .filter(|n| !before.contains(n) && n != "big.json" && n != "big.png")
            .collect();
        assert_eq!(
            left,
            Vec::<String>::new(),
            "no temporary file is left: {stderr}"
        );
        if caught {
            return;
        }
        // The first epoch had not finished (nothing to write), or the write was too quick.
        eprintln!("waited {wait_ms} ms: no write caught; again\n{stderr}");
        let _ = std::fs::remove_file(d.join("big.json"));
        let _ = std::fs::remove_file(d.join("big.png"));
    }
    panic!("never caught a model write in progress");
}

/// Situation 10: outputs that cannot be written are found before training, with the cause.
#[test]
fn output_paths_are_checked_before_training() {
    let dir = workspace();
    let d = dir.path();
    std::fs::create_dir(d.join("existdir")).unwrap();
    for (args, head, hint) in [
        (
            &["train", "data.csv", "--model", "nodir/m.json"][..],
            "cannot write nodir/m.json: the directory nodir does not exist",
            "create the directory, or choose another location",
        ),
        (
            &["train", "data.csv", "--model", "existdir/"][..],
            "cannot write existdir/: it is a directory",
            "this is a directory; give the path of a file",
        ),
        (
            &["train", "data.csv", "--plot", "existdir"][..],
            "cannot write existdir: it is a directory",
            "this is a directory",
        ),
        (
            &[
                "predict",
                "model.json",
                "data.csv",
                "--output",
                "nodir/p.csv",
            ][..],
            "cannot write nodir/p.csv: the directory nodir does not exist",
            "create the directory",
        ),
    ] {
        let out = run(d, args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let context = format!("mlp {args:?}\n{stdout}\n{stderr}");
        assert_eq!(out.status.code(), Some(2), "{context}");
        one_error(&stderr, head, &context);
        assert!(stderr.contains(hint), "{context}");
        // Nothing was read, let alone trained.
        assert_eq!(stdout, "", "{context}");
    }
}

/// Situation 7: the messages that were wrong or had no hint.
#[test]
fn messages_found_wrong_or_without_a_hint_are_right() {
    let dir = workspace();
    let d = dir.path();
    // A regression model evaluated on a file with text in the target: nothing about
    // `--categorical`, which eval does not take.
    let mut csv = String::from("x,y\n");
    for i in 0..30 {
        csv.push_str(&format!("{i},{}.25\n", i * 3));
    }
    std::fs::write(d.join("reg.csv"), &csv).unwrap();
    let out = run(
        d,
        &[
            "train", "reg.csv", "-q", "--epochs", "2", "--model", "reg.json",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(
        d.join("reg_bad.csv"),
        csv.replace("\n3,9.25\n", "\n3,n/a?\n"),
    )
    .unwrap();
    std::os::unix::fs::symlink("loop.csv", d.join("loop.csv")).unwrap();
    for (args, head, hint) in [
        (
            &["eval", "reg.json", "reg_bad.csv"][..],
            "reg_bad.csv, line 5, column 'y': 'n/a?' is not a number",
            "the model predicts numbers for this column",
        ),
        (
            &["train", "loop.csv"][..],
            "loop.csv: Too many levels of symbolic links",
            "a loop of symbolic links",
        ),
        (
            &["predict", "model.json", "data.csv", "--output", "data.csv"][..],
            "invalid --output data.csv: this is an input file",
            "choose another path for the predictions",
        ),
        (
            &["predict", "reg.json", "reg.csv", "--proba"][..],
            "invalid --proba: probabilities exist only for classification models",
            "leave out --proba",
        ),
    ] {
        let out = run(d, args);
        let stderr = text(&out.stderr);
        let context = format!("mlp {args:?}\n{stderr}");
        assert_eq!(out.status.code(), Some(2), "{context}");
        one_error(&stderr, head, &context);
        assert!(stderr.contains(hint), "{context}");
        assert!(!stderr.contains("--categorical"), "{context}");
    }
}

/// Issue 20, item 9: settings that cannot take effect are refused before training, with
/// exit 2 and a hint.
#[test]
fn settings_that_cannot_take_effect_are_refused() {
    let dir = workspace();
    let d = dir.path();
    for (args, head, hint) in [
        (
            &["train", "data.csv", "--folds", "1"][..],
            "invalid --folds 1: cross-fitting needs at least 2 folds",
            "use --folds 0 to train one network, or 2 or more",
        ),
        (
            &["train", "data.csv", "--folds", "1", "--stream"][..],
            "invalid --folds 1",
            "--folds 0",
        ),
        (
            &["train", "data.csv", "--folds", "1", "--val-split", "0.3"][..],
            "invalid --folds 1",
            "--folds 0",
        ),
        (
            &["train", "data.csv", "--momentum", "0.5"][..],
            "invalid --momentum 0.5: momentum applies to the momentum optimizer, not to Adam",
            "use --optimizer momentum, or leave out --momentum",
        ),
        (
            &[
                "train",
                "data.csv",
                "--optimizer",
                "sgd",
                "--momentum",
                "0.9",
            ][..],
            "invalid --momentum 0.9: momentum applies to the momentum optimizer, not to Sgd",
            "leave out --momentum",
        ),
    ] {
        let out = run(d, args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let context = format!("mlp {args:?}\n{stdout}\n{stderr}");
        assert_eq!(out.status.code(), Some(2), "{context}");
        one_error(&stderr, head, &context);
        assert!(stderr.contains(hint), "{context}");
        assert!(!stderr.contains("wrote"), "{context}");
    }
}

/// Issue 20, item 9: a label smoothing given for a target found to be regression is refused
/// once the task is known (in memory and streamed); its default, and 0, train as before.
#[test]
fn label_smoothing_on_a_regression_target_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("x,y\n");
    // x in halves, so that it is not taken for a row number.
    for i in 0..40 {
        csv.push_str(&format!("{i}.5,{}.25\n", i * 3));
    }
    std::fs::write(d.join("reg.csv"), &csv).unwrap();
    let base = ["train", "reg.csv", "--epochs", "2", "--hidden", "4"];
    for extra in [
        &["--label-smoothing", "0.2"][..],
        &["--label-smoothing", "0.1", "--stream"],
    ] {
        let args: Vec<&str> = base.iter().chain(extra).copied().collect();
        let out = run(d, &args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let context = format!("mlp {args:?}\n{stdout}\n{stderr}");
        assert_eq!(out.status.code(), Some(2), "{context}");
        one_error(&stderr, "invalid --label-smoothing 0.", &context);
        assert!(
            stderr.contains(
                "label smoothing applies to classification, and 'y' is a regression target"
            ),
            "{context}"
        );
        assert!(
            stderr.contains("hint: leave out --label-smoothing"),
            "{context}"
        );
        assert!(!stderr.contains("wrote"), "{context}");
    }
    for extra in [&[][..], &["--label-smoothing", "0"]] {
        let args: Vec<&str> = base.iter().chain(extra).chain(&["-q"]).copied().collect();
        let out = run(d, &args);
        assert!(out.status.success(), "mlp {args:?}\n{}", text(&out.stderr));
    }
}

/// Issue 20, item 5: two outputs on one path (one of them would be lost) are refused before
/// training, naming both flags and the path; `./` and `dir/..` name the same file.
#[test]
fn two_outputs_on_one_path_are_refused_before_training() {
    let dir = workspace();
    let d = dir.path();
    std::fs::create_dir(d.join("sub")).unwrap();
    for (args, head) in [
        (
            &[
                "train",
                "data.csv",
                "--boundary",
                "p.png",
                "--health",
                "p.png",
            ][..],
            "invalid --health p.png: --boundary writes this file too",
        ),
        (
            &[
                "train",
                "data.csv",
                "--boundary",
                "./p.png",
                "--health",
                "p.png",
            ][..],
            "invalid --health p.png: --boundary writes this file too",
        ),
        (
            &[
                "train",
                "data.csv",
                "--plot",
                "c.png",
                "--boundary",
                "sub/../c.png",
            ][..],
            "invalid --boundary sub/../c.png: --plot writes this file too",
        ),
        (
            &["train", "data.csv", "--health", "model.png"][..],
            "invalid --health model.png: the loss curve (next to --model) writes this file too",
        ),
        (
            &[
                "train",
                "data.csv",
                "--boundary-gif",
                "b.gif",
                "--health",
                "b.gif",
            ][..],
            "invalid --health b.gif: --boundary-gif writes this file too",
        ),
        (
            &[
                "train",
                "data.csv",
                "--model",
                "m.json",
                "--boundary-gif",
                "m.json",
            ][..],
            "invalid --boundary-gif m.json: --model writes this file too",
        ),
    ] {
        let out = run(d, args);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        let context = format!("mlp {args:?}\n{stdout}\n{stderr}");
        assert_eq!(out.status.code(), Some(2), "{context}");
        one_error(&stderr, head, &context);
        assert!(stderr.contains("hint: give --"), "{context}");
        assert_eq!(stdout, "", "{context}");
    }
}

/// Issue 20, item 1: a count that cannot be met is refused up front, naming the flag and
/// the most it may be, instead of a panic (capacity overflow), an aborted allocation, or
/// hours of work.
#[test]
fn importance_refuses_more_repeats_than_it_can_do() {
    let dir = workspace();
    let d = dir.path();
    for repeats in ["1001", "4294967296", "18446744073709551615"] {
        let args = ["importance", "model.json", "data.csv", "--repeats", repeats];
        let out = run(d, &args);
        let stderr = text(&out.stderr);
        let context = format!("mlp {args:?}\n{stderr}");
        assert_eq!(out.status.code(), Some(2), "{context}");
        one_error(
            &stderr,
            &format!("invalid --repeats {repeats}: at most 1000"),
            &context,
        );
        let hint = stderr.lines().nth(1).unwrap();
        assert!(
            hint.contains("--repeats") && hint.contains("1000"),
            "{context}"
        );
    }
}

/// Issue 20, item 3 (part of 9): a flag of `mlp train` that the learning-rate sweep takes
/// no notice of is refused, naming it, instead of printing the same numbers as a run
/// without it. The flags that do reach the sweep still work.
#[test]
fn lr_find_refuses_train_flags_it_cannot_use() {
    let dir = workspace();
    let d = dir.path();
    let sweep = ["lr-find", "data.csv", "--hidden", "4"];
    for (flag, value) in [
        ("--lr", "0.5"),
        ("--epochs", "3"),
        ("--patience", "2"),
        ("--folds", "5"),
        ("--shuffle-window", "5"),
        ("--held-rows", "5"),
    ] {
        let args = [&sweep[..], &[flag, value]].concat();
        let out = run(d, &args);
        let stderr = text(&out.stderr);
        let context = format!("mlp {args:?}\n{stderr}");
        assert_eq!(out.status.code(), Some(2), "{context}");
        one_error(&stderr, &format!("invalid {flag} {value}: "), &context);
        let hint = stderr.lines().nth(1).unwrap();
        assert!(
            hint.contains(&format!("leave out {flag}")) && hint.contains("lr-find ignores it"),
            "{context}"
        );
        assert!(out.stdout.is_empty(), "{context}");
    }
    for extra in [
        &["--optimizer", "momentum", "--momentum", "0.5"][..],
        &["--folds", "0"][..],
        &["--batch-size", "8"][..],
    ] {
        let args = [&sweep[..], extra].concat();
        let out = run(d, &args);
        assert!(out.status.success(), "{args:?}\n{}", text(&out.stderr));
    }
}

/// Issue 20, item 2 (item 10): on data with no answer, `importance` and `lr-find` say so
/// and why (exit 2, with a hint) instead of printing meaningless numbers: a 0 for every
/// column, or a learning rate below the range swept.
#[test]
fn degenerate_data_gets_no_answer_and_a_reason() {
    let dir = workspace();
    let d = dir.path();
    let fixture = std::fs::read_to_string(d.join("data.csv")).unwrap();
    let mut lines = fixture.lines();
    let header = lines.next().unwrap();
    let first = lines.next().unwrap();
    std::fs::write(d.join("one.csv"), format!("{header}\n{first}\n")).unwrap();
    // Every row churned "no".
    let same: String = fixture
        .lines()
        .skip(1)
        .map(|l| format!("{},no\n", &l[..l.rfind(',').unwrap()]))
        .collect();
    std::fs::write(d.join("same.csv"), format!("{header}\n{same}")).unwrap();
    let flat: String = std::iter::once("x,y\n".to_string())
        .chain((0..40).map(|i| format!("{i}.5,5\n")))
        .collect();
    std::fs::write(d.join("flat.csv"), flat).unwrap();
    for (args, head) in [
        (
            &["importance", "model.json", "one.csv"][..],
            "one.csv: 1 row: shuffling a column needs at least two rows",
        ),
        (
            &["importance", "model.json", "same.csv"][..],
            "same.csv: every row has the same target",
        ),
        (
            &["lr-find", "flat.csv", "--task", "regression"][..],
            "flat.csv: every training row has the same target",
        ),
    ] {
        let out = run(d, args);
        let stderr = text(&out.stderr);
        let context = format!("mlp {args:?}\n{}\n{stderr}", text(&out.stdout));
        assert_eq!(out.status.code(), Some(2), "{context}");
        one_error(&stderr, head, &context);
        assert!(out.stdout.is_empty(), "{context}");
    }
}

/// Issue 20, item 6: escape sequences and line breaks in column names and labels (a
/// terminal title, a colour, a bidirectional override, a line break) are shown escaped by
/// every command that prints them, as errors already are, and its JSON stays valid JSON
/// holding the same strings.
#[test]
fn values_from_files_never_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let title = "\u{1b}]0;pwned\u{7}";
    let mut csv = format!("\"wid\nth\",\"size{title}\",\"kind\u{202e}\"\n");
    for i in 0..60 {
        let (label, w) = if i % 2 == 0 {
            ("\u{1b}[31mred", i % 7)
        } else {
            ("blue\u{9b}2J", i % 5 + 3)
        };
        csv.push_str(&format!("{w},{},{label}\n", i % 10));
    }
    std::fs::write(d.join("ctl.csv"), csv).unwrap();
    let raw = |bytes: &[u8]| {
        let t = text(bytes);
        t.contains(['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}']) || t.contains("wid\nth")
    };
    let commands: Vec<Vec<&str>> = vec![
        vec![
            "train",
            "ctl.csv",
            "--target",
            "kind\u{202e}",
            "--epochs",
            "3",
        ],
        vec!["eval", "model.json", "ctl.csv"],
        vec!["importance", "model.json", "ctl.csv", "--repeats", "1"],
        vec!["explain", "model.json", "ctl.csv", "--row", "2"],
        vec!["predict", "model.json", "ctl.csv", "--output", "p.csv"],
        vec!["lr-find", "ctl.csv", "--target", "kind\u{202e}"],
    ];
    for args in &commands {
        let out = run(d, args);
        let context = format!("mlp {args:?}\n{}\n{}", text(&out.stdout), text(&out.stderr));
        assert!(out.status.success(), "{context}");
        assert!(!raw(&out.stdout) && !raw(&out.stderr), "{context}");
    }
    // The values are there, escaped, where a reader looks for them.
    let train = text(&run(d, &commands[0][..]).stdout);
    assert!(
        train.contains(
            "task: classification of 'kind\\u{202e}' into 2 classes: \\x1b[31mred, blue\\u{9b}2J"
        ),
        "{train}"
    );
    let eval = text(&run(d, &commands[1][..]).stdout);
    assert!(eval.contains("\n\\x1b[31mred  "), "{eval}");
    let importance = text(&run(d, &commands[2][..]).stdout);
    assert!(importance.contains("\nwid\\nth  "), "{importance}");
    assert!(
        importance.contains("\nsize\\x1b]0;pwned\\x07  "),
        "{importance}"
    );
    let explain = text(&run(d, &commands[3][..]).stdout);
    assert!(explain.contains("x (standardised): wid\\nth "), "{explain}");
    assert!(
        explain.contains("true target: blue\\u{9b}2J\n"),
        "{explain}"
    );
    // JSON: no raw control either, and a JSON reader gets the strings back as they were.
    for args in [
        vec!["eval", "model.json", "ctl.csv", "--json"],
        vec![
            "importance",
            "model.json",
            "ctl.csv",
            "--repeats",
            "1",
            "--json",
        ],
        vec!["explain", "model.json", "ctl.csv", "--json"],
    ] {
        let out = run(d, &args);
        assert!(
            out.status.success() && !raw(&out.stdout),
            "{}",
            text(&out.stdout)
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let all = json.to_string();
        assert!(all.contains("\\u001b"), "{all}");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&run(d, &["eval", "model.json", "ctl.csv", "--json"]).stdout)
            .unwrap();
    assert_eq!(json["labels"][0], "\u{1b}[31mred");
    assert_eq!(json["labels"][1], "blue\u{9b}2J");
    // Predictions into a file are the data, byte for byte.
    let p = std::fs::read_to_string(d.join("p.csv")).unwrap();
    assert!(p.contains("\u{1b}[31mred"), "{p}");
}

/// Sends `signal` (`INT`, `TERM`) to `child`.
fn signal(child: &std::process::Child, signal: &str) {
    let kill = Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
}

/// Waits until a file whose name starts with `prefix` appears in `dir` (true), or `child`
/// ends first (false).
fn await_file(dir: &Path, prefix: &str, child: &mut std::process::Child) -> bool {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(120) {
        if names(dir).iter().any(|n| n.starts_with(prefix)) {
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
    false
}

/// Issue 20, item 8: SIGINT or SIGTERM while `export` writes, or SIGTERM while `train`
/// writes its model, leaves no temporary file, and the destination whole: the old file
/// untouched (export, which stops at once), or the new one complete (train, which finishes
/// the write it had started).
#[test]
fn a_signal_during_any_write_leaves_no_temporary_file() {
    let dir = workspace();
    let d = dir.path();
    // One network of about 1.3 million weights: a model file of about 30 MB.
    let big = [
        "train",
        "data.csv",
        "--hidden",
        "1000,1000",
        "--epochs",
        "1",
        "--folds",
        "0",
        "-q",
        "--model",
        "big.json",
    ];
    let out = run(d, &big);
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::write(d.join("big.rs"), "old").unwrap();
    let before = names(d);
    for sig in ["INT", "TERM"] {
        let mut caught = false;
        for _ in 0..5 {
            std::fs::write(d.join("big.rs"), "old").unwrap();
            let mut child = mlp(d)
                .args(["export", "big.json", "--output", "big.rs"])
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let during = await_file(d, ".big.rs.tmp-", &mut child);
            if during {
                signal(&child, sig);
            }
            let out = child.wait_with_output().unwrap();
            let stderr = text(&out.stderr);
            assert_eq!(names(d), before, "SIG{sig}: no temporary file\n{stderr}");
            let now = std::fs::read(d.join("big.rs")).unwrap();
            // Untouched, or (the rename came before the signal) the whole new file.
            let whole = now == b"old" || now.ends_with(b"\n}\n");
            assert!(whole, "SIG{sig}: {} bytes, not whole\n{stderr}", now.len());
            if during && out.status.code() == Some(130) {
                caught = now == b"old";
                if caught {
                    break;
                }
                continue;
            }
            // The write was over before the signal came.
            assert!(out.status.success(), "SIG{sig}\n{stderr}");
        }
        assert!(caught, "SIG{sig}: never caught an export write in progress");
    }
    // SIGTERM during train's model write: the write it started is finished, then it ends.
    let mut caught = false;
    for _ in 0..5 {
        let mut child = mlp(d).args(big).stderr(Stdio::piped()).spawn().unwrap();
        let during = await_file(d, ".big.json.tmp-", &mut child);
        if during {
            signal(&child, "TERM");
        }
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(names(d), before, "no temporary file\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        let model: serde_json::Value =
            serde_json::from_slice(&std::fs::read(d.join("big.json")).unwrap()).unwrap();
        assert_eq!(model["training"]["config"]["hidden"][0], 1000);
        if during {
            caught = true;
            break;
        }
    }
    assert!(caught, "never caught a model write in progress");
}

/// Issue 20, item 12: Ctrl-C during the first network of the default 3-fold training
/// saves that network with figures that describe it: out-of-fold over the 50 rows it did
/// not train on (it read 0.32, a third of the truth, over all 150), and says so. With two
/// threads the first two networks train at the same time: both are saved, each judged on
/// its own 50 rows.
#[test]
fn an_interrupted_k_fold_run_reports_the_rows_its_networks_were_judged_on() {
    for threads in [1, 2] {
        interrupted_k_fold_run(threads);
    }
}

fn interrupted_k_fold_run(threads: usize) {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let iris = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/iris.csv");
    // Patience 0: the first networks train until interrupted.
    let mut child = mlp(d)
        .args([
            "train",
            iris.to_str().unwrap(),
            "--epochs",
            "1000000",
            "--patience",
            "0",
            "--model",
            "f.json",
            "--threads",
            &threads.to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut seen = String::new();
    while !seen.contains("split: 3 folds") {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "{seen}");
        seen.push_str(&line);
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    signal(&child, "INT");
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("f.json")).unwrap()).unwrap();
    assert_eq!(
        model["ensemble"].as_array().map_or(0, Vec::len),
        threads - 1,
        "{threads} networks"
    );
    let judged = 50 * threads;
    assert_eq!(model["training"]["train_rows"], 150);
    assert_eq!(model["training"]["validation_rows"], judged);
    let accuracy = model["metrics"]["validation_accuracy"].as_f64().unwrap();
    // A whole number of rows right, and iris is learned within a second.
    let right = accuracy * judged as f64;
    assert!((right.round() - right).abs() < 1e-4, "{accuracy}");
    assert!(accuracy >= 0.85, "{accuracy}\n{rest}");
    assert!(
        rest.contains(&format!(
            "validation accuracy {accuracy:.4} (always \"setosa\": 0.3333) (out of fold on \
             {judged} of 150 rows: the folds trained until the interruption)"
        )),
        "{rest}"
    );
}

/// Issue 20, item 4: a streamed file that grows, shrinks or is rewritten between passes
/// stops the run with exit 2 and a message naming the file and what changed, rather than
/// judging on rows the split never had or training on made-up statistics.
#[test]
fn a_file_that_changes_while_it_is_streamed_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut csv = String::from("a,b,y\n");
    for i in 0..3000 {
        csv.push_str(&format!("{},{},{}\n", i % 17, i % 5, (i % 17) * 2 + i % 5));
    }
    for (change, what) in [
        ("grow", "it grew from"),
        ("truncate", "it shrank from"),
        ("rewrite", "it was modified (same size, newer time)"),
    ] {
        let path = d.join(format!("{change}.csv"));
        std::fs::write(&path, &csv).unwrap();
        let mut child = mlp(d)
            .args([
                "train",
                &format!("{change}.csv"),
                "--stream",
                "--epochs",
                "100000",
                "--patience",
                "0",
                "--hidden",
                "4",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut seen = String::new();
        while !seen.contains("streaming: first pass") {
            let mut line = String::new();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "{seen}");
            seen.push_str(&line);
        }
        match change {
            "grow" => {
                let mut f = std::fs::OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .unwrap();
                f.write_all(csv.split_once('\n').unwrap().1.as_bytes())
                    .unwrap();
            }
            "truncate" => {
                let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
                f.set_len(csv.len() as u64 / 2).unwrap();
            }
            _ => {
                std::thread::sleep(std::time::Duration::from_millis(20));
                std::fs::write(&path, csv.replace("\n3,", "\n4,")).unwrap();
            }
        }
        let out = child.wait_with_output().unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{change}: {stderr}");
        let head = format!("{change}.csv: the file changed while it was being streamed ({what}");
        one_error(&stderr, &head, &stderr);
        assert!(!d.join("model.json").exists(), "{change}: no model");
    }
}

/// Issue 20, item 11: hints that pointed the wrong way. Each now names something that
/// works for the case at hand.
#[test]
fn hints_fit_the_case_they_are_given_for() {
    let dir = workspace();
    let d = dir.path();
    std::fs::write(d.join("one.csv"), "x,y\n1,0\n2,1\n3,0\n4,1\n5,0\n6,1\n").unwrap();
    std::fs::write(
        d.join("cat.csv"),
        "x,c,y\n1,a,0\n2,b,1\n3,a,0\n4,b,1\n5,a,0\n6,b,1\n",
    )
    .unwrap();
    let hint_of = |args: &[&str]| -> String {
        let out = run(d, args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{stderr}");
        let hint = stderr.lines().find_map(|l| l.strip_prefix("  hint: "));
        hint.unwrap_or_else(|| panic!("{args:?}: no hint\n{stderr}"))
            .to_string()
    };
    // A negative number is the flag's value, refused as such (`-- -1` did not work).
    let h = hint_of(&["explain", "model.json", "data.csv", "--row", "-1"]);
    assert_eq!(h, "--row takes a whole number such as 10");
    // A bad size says what a size is, for every command that takes one.
    for command in ["train", "predict", "eval"] {
        let mut args = vec![command];
        if command != "train" {
            args.push("model.json");
        }
        args.extend(["data.csv", "--memory-limit", "12Q"]);
        let h = hint_of(&args);
        assert_eq!(
            h,
            "--memory-limit takes a size: bytes, or a number with K, M, G or T, such as 256M or 2G",
            "{command}"
        );
    }
    // A picture of a decision boundary: what to do depends on what the file lacks.
    let h = hint_of(&[
        "train",
        "one.csv",
        "--boundary",
        "b.png",
        "--val-split",
        "0",
    ]);
    assert_eq!(
        h,
        "train on a file with two numeric feature columns (besides the target)"
    );
    let h = hint_of(&[
        "train",
        "cat.csv",
        "--boundary",
        "b.png",
        "--val-split",
        "0",
    ]);
    assert!(
        h.starts_with(
            "retrain on two numeric columns, leaving the categorical ones out with --ignore"
        ),
        "{h}"
    );
    let h = hint_of(&["train", "data.csv", "--boundary", "b.png"]);
    assert_eq!(h, "retrain with the other columns left out with --ignore");
    // Export names the model file, not a flag it does not have.
    let out = run(
        d,
        &[
            "train",
            "data.csv",
            "--scaling",
            "robust",
            "--epochs",
            "1",
            "--model",
            "r.json",
            "-q",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(d, &["export", "r.json", "--output", "r.rs"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    one_error(&stderr, "r.json: feature '", &stderr);
    assert!(!stderr.contains("--model"), "{stderr}");
    assert!(
        stderr.contains("hint: retrain it with the standard --scaling"),
        "{stderr}"
    );
    // Early stopping without validation rows watches the training loss, and says so.
    let out = run(
        d,
        &[
            "train",
            "data.csv",
            "--val-split",
            "0",
            "--folds",
            "0",
            "--patience",
            "1",
            "--epochs",
            "200",
            "--model",
            "p.json",
        ],
    );
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        stdout.contains(": no better training loss for 1 epochs"),
        "{stdout}"
    );
}

/// Issue 20, item 3: under an address-space limit (`ulimit -v`), the commands end cleanly:
/// the default memory limit follows what the process may have, so `predict` and `eval`
/// read in chunks within it and succeed, and `importance` and `explain`, which hold the
/// file in memory, refuse it up front with exit 2 and what to do (they aborted with 134).
#[test]
fn commands_under_ulimit_v_end_cleanly() {
    let dir = workspace();
    let d = dir.path();
    let mut big = String::from("x,age,plan,churned\n");
    let plans = ["pro", "basic", "plus"];
    for i in 0..600_000u64 {
        let (x, age) = ((i * 7919 % 1000) as f64 / 1000.0, 18 + i * 31 % 60);
        let churned = if (i * 13 % 7) < 3 { "yes" } else { "no" };
        big.push_str(&format!(
            "{x},{age},{},{churned}\n",
            plans[(i % 3) as usize]
        ));
    }
    std::fs::write(d.join("big.csv"), big).unwrap();
    let limited = |args: &str| {
        Command::new("sh")
            .arg("-c")
            .arg(format!("ulimit -v 300000; exec {MLP} {args}"))
            .current_dir(d)
            .env_remove("MLP_THREADS")
            .output()
            .unwrap()
    };
    for args in [
        "predict model.json big.csv --output p.csv",
        "eval model.json big.csv",
    ] {
        let out = limited(args);
        assert!(
            out.status.success(),
            "{args}: {:?}\n{}",
            out.status,
            text(&out.stderr)
        );
    }
    assert_eq!(
        std::fs::read_to_string(d.join("p.csv"))
            .unwrap()
            .lines()
            .count(),
        600_001
    );
    let out = limited("importance model.json big.csv");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    one_error(&stderr, "big.csv: holding this file of ", &stderr);
    assert!(stderr.contains("this command may use"), "{stderr}");
    // lr-find trains in memory: it fits, or is refused so; it never aborts.
    let out = limited("lr-find big.csv");
    let stderr = text(&out.stderr);
    match out.status.code() {
        Some(0) => assert!(text(&out.stdout).contains("suggested lr: ")),
        Some(2) => one_error(&stderr, "big.csv: holding this file of ", &stderr),
        other => panic!("lr-find: {other:?}\n{stderr}"),
    }
    // Explain holds no shuffled copy: it fits, or is refused so; it never aborts.
    let out = limited("explain model.json big.csv");
    let stderr = text(&out.stderr);
    match out.status.code() {
        Some(0) => assert!(text(&out.stdout).contains("big.csv, row 1 (line 2)")),
        Some(2) => one_error(&stderr, "big.csv: holding this file of ", &stderr),
        other => panic!("{other:?}\n{stderr}"),
    }
}

/// Issue 20, item 16: `explain` on a row with missing cells says which were filled, and
/// with what (the network saw the fill values, not the data); `--json` lists them.
#[test]
fn explain_shows_the_cells_it_filled() {
    let dir = workspace();
    let d = dir.path();
    let model: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.join("model.json")).unwrap()).unwrap();
    let features = model["encoding"]["features"].as_array().unwrap();
    let fill = |name: &str| -> String {
        let f = features.iter().find(|f| f["name"] == name).unwrap();
        match &f["fill"] {
            serde_json::Value::String(s) => s.clone(),
            v => (v.as_f64().unwrap() as f32).to_string(),
        }
    };
    std::fs::write(
        d.join("miss.csv"),
        "x,age,plan,churned\n0.5,,,no\n0.2,30,pro,yes\n",
    )
    .unwrap();
    let out = run(d, &["explain", "model.json", "miss.csv"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let line = format!(
        "missing cells, filled with the model's values (the network sees these, not the \
         data): age = {}, plan = {}\n",
        fill("age"),
        fill("plan")
    );
    assert!(stdout.contains(&line), "{stdout}");
    let out = run(d, &["explain", "model.json", "miss.csv", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["filled"][0]["column"], "age");
    assert_eq!(json["filled"][0]["value"], fill("age"));
    assert_eq!(json["filled"][1]["column"], "plan");
    // A complete row has nothing filled, and says nothing of it.
    let out = run(d, &["explain", "model.json", "miss.csv", "--row", "2"]);
    assert!(!text(&out.stdout).contains("missing cells"));
    let out = run(
        d,
        &["explain", "model.json", "miss.csv", "--row", "2", "--json"],
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json.get("filled").is_none());
}

/// Item 15: Unix timestamps (1.7e9, seconds) are kept in f32 steps of 128; train says so,
/// naming the column, the step and what to do. Numbers f32 holds (seven significant digits)
/// and the same timestamps with the offset taken away pass without a word.
#[test]
fn values_that_f32_rounds_together_are_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut stamps = String::from("ts,small,y\n");
    let mut offset = String::from("ts,small,y\n");
    for i in 0..200 {
        let small = format!("{:.3}", 1000.0 + i as f64 * 0.123);
        stamps += &format!("{},{small},{}\n", 1_700_000_000 + i * 7, i % 2);
        offset += &format!("{},{small},{}\n", i * 7, i % 2);
    }
    std::fs::write(d.join("stamps.csv"), stamps).unwrap();
    std::fs::write(d.join("offset.csv"), offset).unwrap();
    let args = |file: &'static str| ["train", file, "--epochs", "1", "--model", "m.json"];
    let out = run(d, &args("stamps.csv"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("warning: column").count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "warning: column 'ts' has values finer than f32 (the network's number type) holds \
             at their size: near 1.700e9 it steps by 128, so values of the file that differ by \
             less became one number\n  hint: subtract an offset (say the first value) or change \
             the unit in the file; if it is an identifier or a code, leave it out with --ignore \
             ts or make it a category with --categorical ts\n"
        ),
        "{stderr}"
    );
    let out = run(d, &args("offset.csv"));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("finer than f32"),
        "{}",
        text(&out.stderr)
    );
}

/// Item 13: the boundary animation ends on what was saved. Early stopping trains past the
/// kept epoch; the frames of those epochs are left out, and the last frame is the saved
/// model (the average of the three fold networks, as the still picture).
#[test]
fn the_boundary_animation_ends_on_the_saved_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A noisy XOR of 120 rows: the first network stops a few epochs after its best.
    let mut csv = String::from("a,b,y\n");
    let mut state = 12345u64;
    let mut uniform = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    for _ in 0..120 {
        let (a, b) = (uniform() * 2.0 - 1.0, uniform() * 2.0 - 1.0);
        let flip = uniform() < 0.25;
        csv += &format!("{a:.4},{b:.4},{}\n", u8::from((a * b > 0.0) != flip));
    }
    std::fs::write(d.join("xor.csv"), csv).unwrap();
    let out = run(
        d,
        &[
            "train",
            "xor.csv",
            "--epochs",
            "60",
            "--patience",
            "3",
            "--boundary-gif",
            "g.gif",
        ],
    );
    let said = text(&out.stdout) + &text(&out.stderr);
    assert!(out.status.success(), "{said}");
    let number_after = |head: &str| -> usize {
        let at = said
            .find(head)
            .unwrap_or_else(|| panic!("no `{head}` in\n{said}"))
            + head.len();
        let digits: String = said[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().unwrap()
    };
    let (best, stopped) = (
        number_after("best epoch "),
        number_after("stopped early after epoch "),
    );
    assert!(stopped > best, "{said}");
    // One frame an epoch (60 epochs ask for at most 60 frames) up to the best, and the saved.
    let frames = best + 1;
    assert!(
        said.contains(&format!("wrote g.gif ({frames} frames)")),
        "{said}"
    );
    let mut options = gif::DecodeOptions::new();
    options.set_color_output(gif::ColorOutput::RGBA);
    let mut decoder = options
        .read_info(std::fs::File::open(d.join("g.gif")).unwrap())
        .unwrap();
    let mut delays = Vec::new();
    while let Some(frame) = decoder.read_next_frame().unwrap() {
        delays.push(frame.delay);
    }
    assert_eq!(delays.len(), frames);
    // The last frame (the saved model) stays on screen.
    assert_eq!(delays.last(), Some(&200));
}

/// Item 3: lr-find takes `--memory-limit` (a file whose sweep would need more is refused
/// before it is read, saying how much and what to do) and refuses `--stream` saying why;
/// both were "unexpected argument" though its help says it takes train's flags.
#[test]
fn lr_find_keeps_within_a_memory_limit_and_says_it_does_not_stream() {
    let dir = workspace();
    let d = dir.path();
    let mut csv = String::from("a,b,c,y\n");
    for i in 0..40_000u64 {
        let (a, b, c) = (i * 7919 % 1000, i * 31 % 977, i * 17 % 101);
        csv += &format!("{a},{b},{c},{}\n", u8::from(a + b > 900));
    }
    std::fs::write(d.join("rows.csv"), csv).unwrap();
    let out = run(d, &["lr-find", "rows.csv", "--memory-limit", "20M"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "{stderr}");
    one_error(&stderr, "rows.csv: holding this file of ", &stderr);
    assert!(
        stderr.contains("more than the 20 MiB that --memory-limit allows\n  hint: use a sample"),
        "{stderr}"
    );
    assert!(stderr.contains("or raise --memory-limit"), "{stderr}");
    let out = run(d, &["lr-find", "rows.csv", "--memory-limit", "1G"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("on 40000 training rows"),
        "{}",
        text(&out.stdout)
    );
    let out = run(d, &["lr-find", "rows.csv", "--stream"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    one_error(
        &stderr,
        "invalid --stream: lr-find holds the training rows in memory",
        &stderr,
    );
    assert!(stderr.contains("hint: leave out --stream"), "{stderr}");
    // The help says so.
    let help = text(&run(d, &["lr-find", "--help"]).stdout);
    assert!(
        help.contains("--memory-limit <SIZE>") && help.contains("--stream"),
        "{help}"
    );
    assert!(
        help.contains("it does not stream (--stream is refused)"),
        "{help}"
    );
}
