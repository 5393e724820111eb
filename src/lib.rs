//! # mlp
//!
//! A small multi-layer perceptron trainer on `ndarray`, written so that backpropagation can
//! be read: every layer's forward pass and derivative sit side by side.
//!
//! The folders are the layers of the design, bottom to top; each imports only the ones
//! above it in this table (a check in CI keeps it so: `tools/architecture.py`).
//!
//! | folder | what | start with |
//! |---|---|---|
//! | `nn/` | the learner: the [`Layer`] trait (`forward` caches, `backward` returns dL/d(input)), [`Linear`], [`Sigmoid`], [`Relu`], [`Tanh`], [`Dropout`], [`Mse`], [`SoftmaxCrossEntropy`], [`Sequential`], [`Sgd`], [`Momentum`], [`Adam`], the study note's computational graph ([`nn::graph`]), [`gradient_check`], matrix products ([`nn::linalg`]) | `nn/layer.rs`, `nn/layers/linear.rs` |
//! | `train/` | the training loop ([`train::fit`]), its settings, outcome and metrics, loss-curve pictures, the training-health monitor, data-parallel steps ([`train::comm`], MPI) | `train/mod.rs` |
//! | `data/` | CSV files read into columns ([`data::Table`]), the one definition of a cell, chunks of a file and each process's share of it | `data/mod.rs` |
//! | `tabular/` | column statistics that merge ([`tabular::stats`]), the one encoding fitted from them ([`tabular::encoding::Encoding`]), the model file | `tabular/encoding.rs` |
//! | `pipeline/` | a training request prepared in memory, streamed, or shared over processes, trained, and scored; predicting CSV files | `pipeline/mod.rs` |
//! | `inspect/` | one row through the network and back, importance, decision boundaries, the learning-rate range test | `inspect/explain.rs` |
//! | `run/` | training as one call ([`run::run`]): memory, streamed or shared (and why), the health monitor, the decision-boundary recorder, interruption, and the outputs written | `run/mod.rs` |
//! | `export/` | ONNX and Rust source | `export/mod.rs` |
//!
//! Below them all, [`error`] (one error type, whose messages name file, row and column) and
//! [`fsutil`] (bounded reads, atomic writes). The command line (`src/main.rs`, `src/cli/`)
//! parses flags, calls the library and prints.
//!
//! Arrays are `f32` with one row per sample: a batch is `(B, features)`.
#![warn(missing_docs)]

pub mod error;
pub mod fsutil;

pub mod nn;

pub mod train;

pub mod data;

pub mod tabular;

pub mod pipeline;

pub mod inspect;

pub mod run;

pub mod export;

pub use error::{Error, Result};
pub use nn::gradcheck::{GradCheck, LayerCheck, gradient_check};
pub use nn::layer::{Layer, LayerSpec, Param};
pub use nn::layers::dropout::Dropout;
pub use nn::layers::linear::{Init, Linear};
pub use nn::layers::relu::Relu;
pub use nn::layers::sigmoid::Sigmoid;
pub use nn::layers::tanh::Tanh;
pub use nn::loss::{Loss, Mse, SoftmaxCrossEntropy, Target};
pub use nn::optim::{Adam, Momentum, Optimizer, Sgd};
pub use nn::sequential::Sequential;
