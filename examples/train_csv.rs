//! Training on a CSV file from Rust: what `mlp train` and `mlp eval` do, as library calls.
//!
//!     cargo run --release --example train_csv [-- DATA.csv [TARGET]]
//!
//! Defaults to `data/iris.csv` and its `species` column. Writes `train_csv_model.json`.

use std::path::PathBuf;

use mlp::pipeline::{TrainRequest, Truth, prepare, score, train};
use mlp::tabular::encoding::TargetEncoding;
use mlp::tabular::model::{Model, Predictions};
use mlp::train::metrics::classification;

fn main() -> Result<(), mlp::Error> {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(args.next().unwrap_or_else(|| "data/iris.csv".into()));
    let mut request = TrainRequest::new(&data);
    request.target = Some(args.next().unwrap_or_else(|| "species".into()));
    request.config.epochs = 300;

    // Read, check, encode and split the file; then train with early stopping: by default
    // 3 networks, each validated on its own third of the rows (k-fold cross-fitting).
    let prepared = prepare(&request)?;
    if request.config.folds >= 2 {
        println!(
            "{} rows in {} folds, {} inputs",
            prepared.x_train.nrows(),
            request.config.folds,
            prepared.encoding.input_width()
        );
    } else {
        println!(
            "{} training rows, {} validation rows, {} inputs",
            prepared.x_train.nrows(),
            prepared.x_val.nrows(),
            prepared.encoding.input_width()
        );
    }
    let mut last_epoch = 0;
    let trained = train(&prepared, &request.config, None, &mut |report| {
        last_epoch = report.epoch;
    })?;
    print!("{}", trained.model.network);
    println!(
        "first network: ran {last_epoch} epochs; kept epoch {} ({:?})",
        trained.outcome.best_epoch, trained.outcome.stop
    );
    if !trained.fold_epochs.is_empty() {
        println!(
            "{} networks, best epochs {:?}; predictions average them",
            trained.fold_epochs.len(),
            trained.fold_epochs
        );
    }

    // The model file holds the network and the encoding; load it back and score the file.
    let path = PathBuf::from("train_csv_model.json");
    trained.model.save(&path)?;
    let mut model = Model::load(&path)?;
    let scored = score(&mut model, &data, true)?;
    match (
        &scored.predictions,
        &scored.truth,
        &model.file.encoding.target,
    ) {
        (
            Predictions::Classes { classes, .. },
            Some(Truth::Classes(truth)),
            TargetEncoding::Classes { labels, .. },
        ) => {
            let report = classification(truth, classes, labels);
            println!(
                "accuracy on all {} rows: {:.4}",
                scored.rows, report.accuracy
            );
        }
        (Predictions::Values(values), Some(Truth::Values(truth)), _) => {
            let report = mlp::train::metrics::regression(truth, values);
            println!("R² on all {} rows: {:.4}", scored.rows, report.r2);
        }
        _ => unreachable!("a model's predictions match its task"),
    }
    println!("wrote {}", path.display());
    Ok(())
}
