//! Tables made network inputs: column statistics that merge, the one encoding fitted
//! from them, the order statistics found over passes and processes, and the model file
//! that carries the encoding with the network.

pub mod calibration;
pub mod dates;
pub mod encoding;
pub mod labelled;
pub mod median;
pub mod model;
pub mod stats;
