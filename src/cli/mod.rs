//! Argument parsing and dispatch. Exit codes: 0 success, 2 bad input (flag, data or model
//! file) or an output that cannot be written, 130 interrupted.

mod completions;
mod eval;
mod explain;
mod export;
mod importance;
mod info;
mod lr_find;
pub mod out;
mod predict;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use out::outln;

/// What `-h` says after a command's flags: where the examples are.
const MORE: &str = "--help gives examples and details";

/// Exit code for anything the user can fix: a flag, a data file, a model file.
pub const EXIT_USER: u8 = 2;
/// Exit code after Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser, Debug)]
#[command(
    name = "mlp",
    version,
    about = "Train a multi-layer perceptron on a CSV file, then predict and evaluate with it",
    after_help = "`mlp --help` gives examples and details; `mlp COMMAND -h` a command's flags.",
    after_long_help = "Example:\n  mlp train data/iris.csv --target species\n  \
                  mlp eval model.json data/iris.csv\n  \
                  mlp predict model.json data/new_flowers.csv --proba --output predictions.csv\n  \
                  cat data/new_flowers.csv | mlp predict model.json - --format jsonl\n  \
                  mlp info model.json\n\n\
                  Data goes to standard output; notes, warnings, errors and the \"wrote …\" \
                  lines to standard error (-q leaves out the notes and \"wrote\" lines).\n\
                  Exit codes: 0 success, 2 bad flag, data or model file, 130 interrupted.",
    propagate_version = true
)]
struct Cli {
    /// Threads for matrix products and CSV parsing (default: MLP_THREADS, else all cores)
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    Train(train::TrainArgs),
    Predict(predict::PredictArgs),
    Eval(eval::EvalArgs),
    Explain(explain::ExplainArgs),
    Importance(importance::ImportanceArgs),
    Info(info::InfoArgs),
    LrFind(lr_find::LrFindArgs),
    Export(export::ExportArgs),
    Completions(completions::CompletionsArgs),
}

/// `--task`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum TaskArg {
    Auto,
    Classification,
    Regression,
}

/// `--unknown-category` of `predict` and `eval`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum UnknownArg {
    Error,
    Ignore,
}

impl From<UnknownArg> for mlp::tabular::encoding::UnknownCategory {
    fn from(arg: UnknownArg) -> Self {
        match arg {
            UnknownArg::Error => Self::Error,
            UnknownArg::Ignore => Self::Ignore,
        }
    }
}

/// What `predict` and `eval` made up for a file: missing cells filled in, unseen
/// categories let through. Nothing when neither happened.
fn made_up_note(scored: &mlp::pipeline::Scored) -> Vec<String> {
    made_up_note_counts(scored.filled, &scored.unseen)
}

/// [`made_up_note`] from the counts of filled cells and unseen categories.
fn made_up_note_counts(filled: usize, unseen: &mlp::tabular::encoding::Unseen) -> Vec<String> {
    let mut notes = Vec::new();
    if filled > 0 {
        notes.push(format!(
            "filled {} missing cells with the model's fill values (the training medians and \
             most frequent categories)",
            filled
        ));
    }
    notes.extend(unseen_note(unseen));
    notes
}

/// One line on the categories not seen in training that were scored with none of their
/// column's inputs on: rows, cells and columns. Nothing when there were none.
fn unseen_note(unseen: &mlp::tabular::encoding::Unseen) -> Option<String> {
    (unseen.cells > 0).then(|| {
        let columns: Vec<String> = (unseen.columns.iter())
            .map(|(name, n)| format!("{name} ({n})"))
            .collect();
        format!(
            "{} row{} ({} cell{}) had categories not seen in training, scored with no \
             category on: {} (--unknown-category error refuses them)",
            unseen.rows,
            if unseen.rows == 1 { "" } else { "s" },
            unseen.cells,
            if unseen.cells == 1 { "" } else { "s" },
            columns.join(", ")
        )
    })
}

/// The line on rows left out of an evaluation because their target is missing.
fn missing_target_note(rows: usize, target: &str) -> Option<String> {
    (rows > 0).then(|| {
        format!(
            "left out {rows} row{} whose target '{target}' is missing",
            if rows == 1 { "" } else { "s" }
        )
    })
}

/// Refuses an evaluation with no row left to score: every target missing, or no rows.
fn refuse_no_rows(data: &std::path::Path, rows: usize, missing: usize) -> Result<(), mlp::Error> {
    if rows > 0 {
        return Ok(());
    }
    let why = if missing > 0 {
        format!("every row ({missing}) has its target missing, so there is nothing to compare with")
    } else {
        "the file has no data rows, so there is nothing to compare with".to_string()
    };
    let location = mlp::error::Location {
        path: data.to_path_buf(),
        line: None,
        column: None,
    };
    Err(mlp::Error::data(
        location,
        why,
        "give it rows whose target is filled in",
    ))
}

/// The warning for figures measured on the very file the model was trained on.
fn in_sample_warning(model: &mlp::tabular::model::Model, data: &std::path::Path) -> Option<String> {
    mlp::pipeline::trained_on(model, data).then(|| {
        format!(
            "warning: {} is the file the model was trained on (same SHA-256): these figures \
             are in-sample and overstate how it does on new rows; use a held-out file",
            data.display()
        )
    })
}

/// Whether the thread count was chosen (`--threads` or `MLP_THREADS`).
static THREADS_SET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the thread count was chosen with `--threads` or `MLP_THREADS`.
#[cfg_attr(not(feature = "mpi"), allow(dead_code))]
fn threads_set() -> bool {
    THREADS_SET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Shows a library error the way every command does: `error: …` and `  hint: …` on stderr,
/// settings worded as flags.
fn report(e: &mlp::Error) {
    let (message, hint) = rendered(e);
    out::error(&message, &hint);
}

/// An error's message and hint, worded for the command line.
fn rendered(e: &mlp::Error) -> (String, String) {
    let hint = match (e.hint(), e) {
        (Some(h), _) => h.render(&out::words),
        (None, mlp::Error::Interrupted(_)) => {
            "nothing was written; run again, and let at least one epoch finish".into()
        }
        (None, _) => "this should not happen: please report it, with the command".into(),
    };
    (e.message(&out::words), hint)
}

/// The exit code for a library error.
fn exit_for(e: &mlp::Error) -> ExitCode {
    match e {
        mlp::Error::Interrupted(_) => ExitCode::from(EXIT_INTERRUPTED),
        _ => ExitCode::from(EXIT_USER),
    }
}

pub fn main() -> ExitCode {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to "ignore" before any other thread exists;
    // no handler code runs. With SIGXFSZ ignored, a write past `ulimit -f` fails with
    // EFBIG, which removes its temporary file and reports, instead of killing the process
    // and leaving the file behind.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    // A negative number is a flag's value (`--row -1`), refused by the flag's own check
    // with its own hint, not taken for an unknown flag.
    let parsed = command()
        .mut_subcommands(|sub| sub.allow_negative_numbers(true))
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let code = match parsed {
        Ok(cli) => run(cli),
        Err(e) => clap_error(&e),
    };
    out::finish(code)
}

/// The command line's definition, with short help for `-h`: every flag's first clause
/// (up to a semicolon, a full stop or a parenthesis giving the default or an example), its
/// whole text kept for `--help`.
fn command() -> clap::Command {
    short_help(Cli::command())
}

fn short_help(command: clap::Command) -> clap::Command {
    command
        .mut_args(|arg| {
            let Some(help) = arg.get_help().map(|h| h.to_string()) else {
                return arg;
            };
            let cut = first_clause(&help);
            // A cut inside brackets (`[default: …]`) would leave them open.
            let open = help[..cut].matches('[').count() != help[..cut].matches(']').count();
            if arg.get_long_help().is_some() || cut == help.len() || open {
                return arg;
            }
            arg.help(help[..cut].to_string()).long_help(help)
        })
        .mut_subcommands(short_help)
}

/// Where the first clause of a flag's help ends: at a semicolon, a full stop (not of
/// "e.g."), or a parenthesis giving the default; the whole text if none.
fn first_clause(help: &str) -> usize {
    let stop = (help.match_indices(". "))
        .map(|(i, _)| i)
        .find(|&i| !help[..i].ends_with("e.g") && !help[..i].ends_with("i.e"));
    ["; ", " (default"]
        .iter()
        .filter_map(|m| help.find(m))
        .chain(stop)
        .min()
        .unwrap_or(help.len())
}

fn run(cli: Cli) -> ExitCode {
    let threads = match cli.threads {
        Some(0) => Err(mlp::Error::config(
            mlp::error::Setting::Threads,
            0,
            "use at least 1",
            "for example --threads 4; without it, MLP_THREADS or else every core",
        )),
        Some(n) => Ok(Some(n)),
        None => mlp::nn::linalg::threads::from_env(),
    };
    let result = threads.and_then(|threads| {
        if let Some(n) = threads {
            mlp::nn::linalg::threads::set_num_threads(n);
            THREADS_SET.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if !matches!(cli.command, Command::Train(_)) {
            on_signals(None);
        }
        match cli.command {
            Command::Train(args) => train::run(args),
            Command::Predict(args) => predict::run(args),
            Command::Eval(args) => eval::run(args),
            Command::Explain(args) => explain::run(args),
            Command::Importance(args) => importance::run(args),
            Command::Info(args) => info::run(args),
            Command::LrFind(args) => lr_find::run(args),
            Command::Export(args) => export::run(args),
            Command::Completions(args) => completions::run(args),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            exit_for(&e)
        }
    }
}

/// What Ctrl-C, SIGTERM and SIGHUP do. With `stop` (`train`), the first raises it: the
/// command stops after the batch under way and saves what it has. Otherwise, and at the
/// next signal, the process leaves at once with exit code 130, first removing the temporary
/// file of any write under way: no output is left half-written, and no temporary file is
/// left behind.
pub fn on_signals(stop: Option<&'static std::sync::atomic::AtomicBool>) {
    let _ = ctrlc::set_handler(move || {
        if let Some(flag) = stop
            && !flag.swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            return;
        }
        mlp::fsutil::remove_temporary_files();
        std::process::exit(EXIT_INTERRUPTED as i32);
    });
}

/// Shows clap's message (help, version, or a refused command line) in the CLI's form: help
/// and version on standard output; an error as one `error:` line and one `hint:` line.
fn clap_error(e: &clap::Error) -> ExitCode {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let text = e.render().to_string();
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        outln!("{}", text.trim_end());
        return ExitCode::SUCCESS;
    }
    if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        out::error(
            "no command given",
            "use `mlp train`, `mlp predict` or `mlp eval`; `mlp --help` says more",
        );
        return ExitCode::from(EXIT_USER);
    }
    // clap's text: "error: …" with continuation lines, then "  tip: …" lines, "Usage: …",
    // and "For more information, try '--help'.".
    let mut message = Vec::new();
    let mut hints = Vec::new();
    let mut usage = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(m) = line.strip_prefix("error: ") {
            message.push(m.to_string());
        } else if let Some(tip) = line.strip_prefix("tip: ") {
            hints.push(tip.to_string());
        } else if let Some(u) = line.strip_prefix("Usage: ") {
            usage = Some(u.to_string());
        } else if let Some(values) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            hints.push(values.to_string());
        } else if !line.is_empty() && !line.starts_with("For more information") {
            message.push(line.to_string());
        }
    }
    if let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg)
        && matches!(
            e.kind(),
            ErrorKind::InvalidValue | ErrorKind::ValueValidation
        )
        && hints.is_empty()
    {
        let (flag, value_name) = arg.split_once(' ').unwrap_or((arg, ""));
        let takes = match value_name.trim_matches(['<', '>']) {
            "N" => "a whole number such as 10",
            "K" => "a whole number: 0, or 2 or more",
            "ROWS" => "a whole number of rows such as 10000",
            "F" => "a number such as 0.01",
            "SIZES" => "whole numbers separated by commas, such as 128,64",
            "SIZE" => "a size: bytes, or a number with K, M, G or T, such as 256M or 2G",
            "PATH" | "MODEL" => "a file path",
            "COL" => "a column name",
            _ => "",
        };
        hints.push(if takes.is_empty() {
            format!("`--help` says what {flag} takes")
        } else {
            format!("{flag} takes {takes}")
        });
    }
    if let Some(usage) = usage {
        let command = usage
            .split(' ')
            .take_while(|w| !w.starts_with(['[', '<', '-']))
            .collect::<Vec<_>>()
            .join(" ");
        hints.push(format!("usage: {usage}; `{command} --help` says more"));
    }
    if hints.is_empty() {
        hints.push("`mlp --help` says more".into());
    }
    let message = message.join(" ");
    let message = message.trim_end_matches('.');
    out::error(message, &hints.join("; "));
    ExitCode::from(EXIT_USER)
}

/// The default plot path next to a model: `model.json` → `model.png`.
fn plot_path_for(model: &std::path::Path) -> PathBuf {
    model.with_extension("png")
}

/// Refuses an output path that would replace one of the user's `inputs` (data or model).
fn refuse_overwrite(
    output: Option<&std::path::Path>,
    setting: mlp::error::Setting,
    inputs: &[&std::path::Path],
) -> Result<(), mlp::Error> {
    if let Some(out) = output
        && inputs.iter().any(|i| mlp::fsutil::same_file(out, i))
    {
        return Err(mlp::Error::config(
            setting,
            out.display(),
            "this would replace an input or another output (the data, the model, a picture)",
            "choose another path",
        ));
    }
    Ok(())
}
