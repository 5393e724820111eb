//! `mlp completions`.

use std::process::ExitCode;

use clap::{Args, ValueEnum};
use mlp::Error;

use super::out::write_stdout;

const EXAMPLE: &str = "Examples:
  mlp completions bash > ~/.local/share/bash-completion/completions/mlp
  mlp completions zsh > ~/.zfunc/_mlp        (with fpath+=~/.zfunc before compinit)
  mlp completions fish > ~/.config/fish/completions/mlp.fish";

/// A shell that completions are written for.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

/// Print a shell's completion script for mlp's commands and flags
#[derive(Args, Debug)]
#[command(after_help = super::MORE, after_long_help = EXAMPLE)]
pub struct CompletionsArgs {
    /// The shell: bash, zsh or fish
    #[arg(value_enum)]
    shell: Shell,
}

pub fn run(args: CompletionsArgs) -> Result<ExitCode, Error> {
    let mut command = super::command();
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "mlp", &mut script);
    // A failure is the stream's: see `out`.
    write_stdout(&script);
    Ok(ExitCode::SUCCESS)
}
