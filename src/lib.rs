//! # mlp
//!
//! A small multi-layer perceptron trainer on `ndarray`, written so that backpropagation can
//! be read: every layer's forward pass and derivative sit side by side.
//!
//! | concept | where |
//! |---|---|
//! | [`Layer`] trait: `forward` caches, `backward` returns dL/d(input) | `layer.rs` |
//! | [`Linear`], [`Sigmoid`], [`Relu`], [`Tanh`], [`Dropout`] | `layers/` |
//! | [`Mse`], [`SoftmaxCrossEntropy`] | `loss/` |
//! | [`Sequential`] | `sequential.rs` |
//! | [`Sgd`], [`Momentum`], [`Adam`] | `optim.rs` |
//! | [`gradient_check`] | `gradcheck.rs` |
//! | loss-curve PNGs | `plot.rs` |
//! | the study note's computational graph | `graph.rs` |
//! | one row through the network and back ([`explain::explain`]) | `explain.rs` |
//! | permutation feature importance | `importance.rs` |
//! | decision boundaries of two-input models | `boundary.rs` |
//! | the training-health report | `health.rs` |
//! | the learning-rate range test | `lr_find.rs` |
//! | data-parallel training: [`comm::Communicator`] (and MPI with the `mpi` feature) | `comm.rs`, `mpi.rs` |
//! | each process's share of the file, and statistics combined over processes | `share.rs`, `median.rs` |
//! | training as one call: the mode (memory, streamed, shared), health, outputs ([`run::run`]) | `run.rs` |
//!
//! Arrays are `f32` with one row per sample: a batch is `(B, features)`.
#![warn(missing_docs)]

pub mod boundary;
pub mod comm;
pub mod data;
pub mod dataset;
pub mod error;
pub mod explain;
pub mod export;
pub mod fsutil;
pub mod gradcheck;
pub mod graph;
pub mod health;
pub mod importance;
pub mod labelled;
pub mod layer;
pub mod layers;
pub mod linalg;
pub mod loss;
pub mod lr_find;
pub mod median;
pub mod memory;
pub mod metrics;
pub mod model;
#[cfg(feature = "mpi")]
pub mod mpi;
pub mod optim;
pub mod outcome;
mod parallel;
pub mod pipeline;
pub mod plot;
pub mod predict;
pub mod run;
pub mod sequential;
pub mod settings;
pub mod share;
pub mod stats;
pub mod stream;
pub mod threads;
pub mod train;

pub use error::{Error, Result};
pub use gradcheck::{GradCheck, LayerCheck, gradient_check};
pub use layer::{Layer, LayerSpec, Param};
pub use layers::dropout::Dropout;
pub use layers::linear::{Init, Linear};
pub use layers::relu::Relu;
pub use layers::sigmoid::Sigmoid;
pub use layers::tanh::Tanh;
pub use loss::{Loss, Mse, SoftmaxCrossEntropy, Target};
pub use optim::{Adam, Momentum, Optimizer, Sgd};
pub use sequential::Sequential;
