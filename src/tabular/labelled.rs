//! A CSV file read for a model that already exists, with its target column: what
//! `explain` and `importance` start from.

use std::path::Path;

use ndarray::Array2;

use crate::data::{ReadOptions, Table};
use crate::error::{Error, Result};
use crate::tabular::encoding::{TargetEncoding, Targets, UnknownCategory, Unseen, number_label};
use crate::tabular::model::Model;

/// Reads `bytes` (the CSV at `path`) as `model` reads files: its categorical features and
/// any class labels that do not look like canonical numbers as text. Refuses a file
/// without every feature column or without the target column.
pub fn read_table(model: &Model, path: &Path, bytes: &[u8]) -> Result<Table> {
    let encoding = &model.file.encoding;
    let mut categorical = encoding.text_names();
    // Class labels written like numbers but not as this reader would print them ("01")
    // must be read as text to match.
    if let TargetEncoding::Classes { labels, .. } = &encoding.target {
        let canonical = |l: &String| l.parse::<f32>().is_ok_and(|v| number_label(v) == *l);
        if !labels.iter().all(canonical) {
            categorical.push(encoding.target.name().to_string());
        }
    }
    let table = Table::from_bytes(path, bytes, &ReadOptions { categorical })?;
    encoding.check_columns(&table)?;
    if table.column(encoding.target.name()).is_none() {
        let mut location = table.location(None, None);
        location.line = Some(1);
        return Err(Error::data(
            location,
            format!(
                "the target column '{}' is not in the header, so there is nothing to compare with",
                encoding.target.name()
            ),
            "this needs rows with the true values; use `mlp predict` for files without them",
        ));
    }
    Ok(table)
}

/// The rows of a labelled file that have a target, encoded for the model.
pub struct Labelled {
    /// The table (for locating rows in messages).
    pub table: Table,
    /// Network inputs, (rows, inputs).
    pub inputs: Array2<f32>,
    /// The true targets.
    pub targets: Targets,
    /// Rows left out because their target cell is missing.
    pub missing_targets: usize,
    /// Categories not seen in training, encoded with none of their column's inputs on.
    pub unseen: Unseen,
}

/// Reads the CSV at `path` and encodes for `model` every row whose target is present
/// (rows without one are left out and counted, as training leaves them out).
pub fn read_labelled(model: &Model, path: &Path) -> Result<Labelled> {
    let bytes = crate::fsutil::read_data(path)?;
    let table = read_table(model, path, &bytes)?;
    let encoding = &model.file.encoding;
    let rows = encoding.rows_with_target(&table)?;
    let encoded = encoding.encode(&table, &rows, UnknownCategory::default())?;
    let targets = encoding.targets(&table, &rows)?;
    Ok(Labelled {
        missing_targets: table.rows() - rows.len(),
        table,
        inputs: encoded.inputs,
        targets,
        unseen: encoded.unseen,
    })
}
