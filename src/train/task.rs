//! What a network is trained to predict, and the targets a loss compares it with. The
//! tabular encoding decides both from a file's target column; the training loop only
//! needs to know them.

use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// What the network predicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// One of a fixed set of labels (softmax cross-entropy).
    Classification,
    /// A number (linear output, mean squared error).
    Regression,
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::Classification => "classification",
            Task::Regression => "regression",
        })
    }
}

/// Targets ready for a loss.
#[derive(Debug, Clone, PartialEq)]
pub enum Targets {
    /// Class indices into the class labels (in the model file, `TargetEncoding::Classes`).
    Classes(Vec<usize>),
    /// Standardised values, shape (rows, 1).
    Values(Array2<f32>),
}

impl Targets {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes(c) => c.len(),
            Targets::Values(v) => v.nrows(),
        }
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
