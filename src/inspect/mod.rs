//! Looking inside a model: what its file holds, one row through the network and back,
//! permutation importance, decision boundaries, and the learning-rate range test.

pub mod boundary;
pub mod explain;
pub mod importance;
pub mod lr_find;
pub mod summary;
