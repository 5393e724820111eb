//! `mlp`: train a multi-layer perceptron on a CSV file, then predict and evaluate with it.
//!
//! This file and `cli/` only parse arguments, call the library and print; the work is in
//! the `mlp` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
