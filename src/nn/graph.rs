//! Scalar computational-graph nodes, the way the backpropagation study note draws them.
//!
//! A computational graph splits a calculation into nodes. Going forward, each node keeps the
//! inputs it saw; going backward, each node multiplies the gradient arriving from above
//! (the *upstream* gradient) by its own local derivative and hands the products down:
//!
//! * a **multiplication node** `z = x·y` passes back the upstream gradient times the *other*
//!   input: `dz/dx = y`, `dz/dy = x`;
//! * an **addition node** `z = x + y` passes the upstream gradient through unchanged:
//!   `dz/dx = dz/dy = 1`.
//!
//! That is the chain rule applied one node at a time, and it is all `examples/backprop.rs`
//! needs. The network layers in [`crate::nn::layers`] are the same idea on whole matrices.
//!
//! ```
//! use mlp::nn::graph::MulNode;
//!
//! // 2 snacks at 100 won: pay = 100 × 2 = 200
//! let mut mul = MulNode::new();
//! assert_eq!(mul.forward(100.0, 2.0), 200.0);
//! let (d_price, d_count) = mul.backward(1.0);
//! assert_eq!((d_price, d_count), (2.0, 100.0)); // each gets the other input
//! ```

/// `z = x·y`. Keeps `x` and `y`, because each one's derivative is the other.
#[derive(Debug, Clone, Default)]
pub struct MulNode {
    x: f64,
    y: f64,
}

impl MulNode {
    /// A node that has not run yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// `x·y`, remembering both inputs.
    pub fn forward(&mut self, x: f64, y: f64) -> f64 {
        self.x = x;
        self.y = y;
        x * y
    }

    /// `(upstream·y, upstream·x)`: dL/dx and dL/dy.
    pub fn backward(&self, upstream: f64) -> (f64, f64) {
        (upstream * self.y, upstream * self.x)
    }
}

/// `z = x + y`. Keeps nothing: its local derivatives are always 1.
#[derive(Debug, Clone, Default)]
pub struct AddNode;

impl AddNode {
    /// A new addition node.
    pub fn new() -> Self {
        Self
    }

    /// `x + y`.
    pub fn forward(&mut self, x: f64, y: f64) -> f64 {
        x + y
    }

    /// `(upstream, upstream)`: the gradient passes through unchanged to both inputs.
    pub fn backward(&self, upstream: f64) -> (f64, f64) {
        (upstream, upstream)
    }
}
