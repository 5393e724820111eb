//! The learner: layers with their forward pass and derivative side by side, losses,
//! `Sequential`, optimizers, the study note's computational graph, the gradient check,
//! and the matrix products underneath. Nothing here knows about files or tables.

pub mod gradcheck;
pub mod graph;
pub mod layer;
pub mod layers;
pub mod linalg;
pub mod loss;
pub mod optim;
pub mod sequential;
