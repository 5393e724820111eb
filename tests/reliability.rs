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
        ("eval", vec!["eval", "model.json", "data.csv"]),
        (
            "eval --json",
            vec!["eval", "model.json", "data.csv", "--json"],
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
        .chain((0..40).map(|i| format!("{i},5\n")))
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
    for i in 0..40 {
        csv.push_str(&format!("{i},{}.25\n", i * 3));
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
        .chain((0..40).map(|i| format!("{i},5\n")))
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
