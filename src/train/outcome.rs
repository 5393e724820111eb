//! What a training run did, as plain data: the training loop produces it and the model file
//! records it.

use serde::{Deserialize, Serialize};

/// Why training ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason", deny_unknown_fields)]
pub enum StopReason {
    /// All epochs ran.
    Completed,
    /// The validation loss had not improved for `patience` epochs.
    EarlyStopped,
    /// The interrupt flag was raised (Ctrl-C).
    Interrupted,
    /// The loss or a weight became non-finite in this epoch.
    Diverged {
        /// 1-based epoch.
        epoch: usize,
    },
}

/// Per-epoch curves.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct History {
    /// Mean training loss per epoch.
    pub train_loss: Vec<f32>,
    /// Validation loss per epoch (empty without validation).
    pub val_loss: Vec<f32>,
    /// Validation accuracy or R² per epoch (empty without validation).
    pub val_metric: Vec<f32>,
}
