//! The layers, one file each. Adding a layer means adding a file here, a `pub use` in
//! `lib.rs` and a [`LayerSpec`](crate::LayerSpec) variant so model files can name it.

pub mod dropout;
mod elementwise;
pub mod linear;
pub mod relu;
pub mod sigmoid;
pub mod tanh;
