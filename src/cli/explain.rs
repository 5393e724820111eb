//! `mlp explain`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mlp::Error;

use super::out::{json_line, outln, write_stdout_text};
use mlp::inspect::explain::explain_file;
use mlp::tabular::model::Model;

const EXAMPLE: &str = "Examples:
  mlp explain model.json data/iris.csv
  mlp explain model.json data/iris.csv --row 51 --json

Shows one row's forward pass layer by layer (input, formula, output), the loss and the
prediction, then the backward pass from dL/dL = 1: at every layer the upstream gradient,
the local derivative, and their product, the downstream gradient. Wide vectors show their
first values; --json gives every number.";

/// Follow one row through the network and back: forward values and every gradient
#[derive(Args, Debug)]
#[command(after_help = super::MORE, after_long_help = EXAMPLE)]
pub struct ExplainArgs {
    /// A model written by `mlp train`
    #[arg(value_name = "MODEL")]
    model: PathBuf,

    /// A CSV file with the model's feature columns and the target column
    #[arg(value_name = "DATA.csv")]
    data: PathBuf,

    /// The data row to explain: 1 is the first row after the header
    #[arg(long, value_name = "N", default_value_t = 1)]
    row: usize,

    /// Print every number as one JSON object
    #[arg(long)]
    json: bool,
}

pub fn run(args: ExplainArgs) -> Result<ExitCode, Error> {
    let mut model = Model::load(&args.model)?;
    let limit = mlp::pipeline::memory::default_limit();
    mlp::pipeline::memory::check_scoring_fits(&args.data, &model.file.encoding, 0, limit)?;
    let explanation = explain_file(&mut model, &args.data, args.row)?;
    if args.json {
        outln!("{}", json_line(&explanation));
    } else {
        write_stdout_text(&explanation.to_string());
    }
    Ok(ExitCode::SUCCESS)
}
