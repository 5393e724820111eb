//! Argument parsing and dispatch. Exit codes: 0 success, 2 bad input (flag, data or model
//! file), 130 interrupted.

mod eval;
mod predict;
mod train;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// Exit code for anything the user can fix: a flag, a data file, a model file.
pub const EXIT_USER: u8 = 2;
/// Exit code after Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

#[derive(Parser, Debug)]
#[command(
    name = "mlp",
    version,
    about = "Train a multi-layer perceptron on a CSV file, then predict and evaluate with it",
    after_help = "Example:\n  mlp train data/iris.csv --target species\n  \
                  mlp eval model.json data/iris.csv\n  \
                  mlp predict model.json new_flowers.csv --proba --output predictions.csv\n\n\
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
}

/// `--task`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum TaskArg {
    Auto,
    Classification,
    Regression,
}

/// Prints an error the way every command does: `error: …` on stderr.
fn report(e: &dyn std::fmt::Display) {
    eprintln!("error: {e}");
}

/// The exit code for a library error.
fn exit_for(e: &mlp::Error) -> ExitCode {
    match e {
        mlp::Error::Interrupted(_) => ExitCode::from(EXIT_INTERRUPTED),
        _ => ExitCode::from(EXIT_USER),
    }
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        if n == 0 {
            report(&"invalid --threads 0: use at least 1");
            return ExitCode::from(EXIT_USER);
        }
        mlp::threads::set_num_threads(n);
    }
    let result = match cli.command {
        Command::Train(args) => train::run(args),
        Command::Predict(args) => predict::run(args),
        Command::Eval(args) => eval::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            report(&e);
            exit_for(&e)
        }
    }
}

/// The default plot path next to a model: `model.json` → `model.png`.
fn plot_path_for(model: &std::path::Path) -> PathBuf {
    model.with_extension("png")
}
