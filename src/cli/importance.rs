//! `mlp importance`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mlp::Error;

use super::out::{errln, json_line, outln, write_stdout_text};
use mlp::error::{Hint, Setting};
use mlp::fsutil::check_output_path;
use mlp::inspect::importance::{MAX_REPEATS, importance_file};
use mlp::tabular::model::Model;

const EXAMPLE: &str = "Examples:
  mlp importance model.json test.csv
  mlp importance model.json test.csv --repeats 10 --plot importance.png
  mlp importance model.json test.csv --json

Shuffles one column at a time across the rows and measures how much the accuracy (or R²)
drops: a large drop means the model relies on that column. A one-hot-encoded column is
shuffled as one. Use rows the model did not train on for an honest picture.";

/// Rank the columns by how much the model relies on them (permutation importance)
#[derive(Args, Debug)]
#[command(after_help = super::MORE, after_long_help = EXAMPLE)]
pub struct ImportanceArgs {
    /// A model written by `mlp train`
    #[arg(value_name = "MODEL")]
    model: PathBuf,

    /// Rows with known targets: a CSV file with the target and feature columns
    #[arg(value_name = "DATA.csv")]
    data: PathBuf,

    /// Shuffles per column (the spread over them is reported)
    #[arg(long, value_name = "N", default_value_t = 5)]
    repeats: usize,

    /// Seed for the shuffles
    #[arg(long, value_name = "N", default_value_t = 0)]
    seed: u64,

    /// Print {"importance": [{"column", "mean", "std"}, ...]} instead of a table
    #[arg(long)]
    json: bool,

    /// Also draw a bar chart to this PNG file
    #[arg(long, value_name = "PATH")]
    plot: Option<PathBuf>,

    /// No "wrote" line on standard error (errors and warnings still)
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: ImportanceArgs) -> Result<ExitCode, Error> {
    if args.repeats == 0 {
        return Err(Error::config(
            Setting::Repeats,
            0,
            "each column must be shuffled at least once",
            Hint::text("for example ").setting(Setting::Repeats, 5),
        ));
    }
    if args.repeats > MAX_REPEATS {
        return Err(Error::config(
            Setting::Repeats,
            args.repeats,
            format!(
                "at most {MAX_REPEATS} shuffles per column: the spread settles within tens, \
                 and each repeat scores the model once per column"
            ),
            Hint::text("for example ")
                .setting(Setting::Repeats, 5)
                .then(format!("; the most is {MAX_REPEATS}")),
        ));
    }
    super::refuse_overwrite(
        args.plot.as_deref(),
        Setting::Plot,
        &[&args.model, &args.data],
    )?;
    if let Some(plot) = &args.plot {
        check_output_path(plot)?;
    }
    let mut model = Model::load(&args.model)?;
    // The file is held in memory, with a shuffled copy of its inputs.
    let limit = mlp::pipeline::memory::default_limit();
    mlp::pipeline::memory::check_scoring_fits(&args.data, &model.file.encoding, 1, limit)?;
    let importance = importance_file(&mut model, &args.data, args.repeats, args.seed)?;
    let target = model.file.encoding.target.name();
    let notes = (super::unseen_note(&importance.unseen).into_iter()).chain(
        super::missing_target_note(importance.missing_targets, target),
    );
    for note in notes {
        errln!("note: {note}");
    }
    if let Some(warning) = super::in_sample_warning(&model, &args.data) {
        errln!("{warning}");
    }
    if args.json {
        let json = serde_json::json!({
            "metric": importance.metric,
            "baseline": importance.baseline,
            "repeats": importance.repeats,
            "importance": importance.importance,
        });
        outln!("{}", json_line(&json));
    } else {
        write_stdout_text(&importance.to_string());
    }
    if let Some(plot) = &args.plot {
        let name = args
            .data
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        importance.write_png(&format!("{name}: permutation importance"), plot)?;
        if !args.quiet {
            errln!("wrote {}", plot.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
