//! Backpropagation by hand on a computational graph, with the two worked examples of the
//! study note this project grew from.
//!
//!     cargo run --example backprop
//!
//! Every calculation is a chain of multiplication and addition nodes
//! ([`mlp::nn::graph::MulNode`], [`mlp::nn::graph::AddNode`]). Going forward each node keeps its
//! inputs; going backward each node multiplies the upstream gradient by its local derivative:
//! a multiplication node hands each input the upstream gradient times the *other* input, an
//! addition node hands the upstream gradient through unchanged.

use mlp::nn::graph::{AddNode, MulNode};

/// A number as a person would write it: `3.3`, not `3.3000000000000003`.
fn n(x: f64) -> String {
    let rounded = (x * 1e9).round() / 1e9;
    if rounded == 0.0 {
        "0".into()
    } else {
        format!("{rounded}")
    }
}

fn snacks() {
    let (price, count, vat) = (1000.0, 3.0, 1.1);
    println!(
        "1. Buying {} snacks at {} won each, with 10% VAT",
        n(count),
        n(price)
    );
    println!();

    let mut cost = MulNode::new(); // price × count
    let mut tax = MulNode::new(); //  subtotal × VAT
    println!("   forward");
    let subtotal = cost.forward(price, count);
    println!(
        "     subtotal = price × count    = {} × {} = {}",
        n(price),
        n(count),
        n(subtotal)
    );
    let pay = tax.forward(subtotal, vat);
    println!(
        "     pay      = subtotal × VAT   = {} × {} = {}",
        n(subtotal),
        n(vat),
        n(pay)
    );
    println!();

    println!("   backward, starting from d(pay)/d(pay) = 1");
    let (d_subtotal, d_vat) = tax.backward(1.0);
    println!("     × node (subtotal × VAT): each input gets upstream × the other input");
    println!(
        "       d(pay)/d(subtotal) = 1 × {} = {}",
        n(vat),
        n(d_subtotal)
    );
    println!(
        "       d(pay)/d(VAT)      = 1 × {} = {}",
        n(subtotal),
        n(d_vat)
    );
    let (d_price, d_count) = cost.backward(d_subtotal);
    println!("     × node (price × count)");
    println!(
        "       d(pay)/d(price) = {} × {} = {}",
        n(d_subtotal),
        n(count),
        n(d_price)
    );
    println!(
        "       d(pay)/d(count) = {} × {} = {}",
        n(d_subtotal),
        n(price),
        n(d_count)
    );
    println!();
    println!(
        "   pay = {}; d/dprice = {}, d/dcount = {}, d/dVAT = {}",
        n(pay),
        n(d_price),
        n(d_count),
        n(d_vat)
    );
    println!();
}

/// The nodes of `L = (target − (x + y)·z)²`, built from additions and multiplications only:
/// `q = x + y`, `f = q·z`, `u = target + (−1)·f`, `L = u·u`.
#[derive(Default)]
struct Graph {
    add_xy: AddNode,
    mul_qz: MulNode,
    negate: MulNode,
    add_target: AddNode,
    square: MulNode,
}

impl Graph {
    /// Returns `(q, f, u, L)`.
    fn forward(&mut self, x: f64, y: f64, z: f64, target: f64) -> (f64, f64, f64, f64) {
        let q = self.add_xy.forward(x, y);
        let f = self.mul_qz.forward(q, z);
        let minus_f = self.negate.forward(-1.0, f);
        let u = self.add_target.forward(target, minus_f);
        let loss = self.square.forward(u, u);
        (q, f, u, loss)
    }
}

fn function_and_sgd() {
    let (mut x, mut y, mut z, target) = (-2.0, 5.0, -4.0, -10.0);
    let lr = 0.01;
    println!("2. f(x, y, z) = (x + y)·z and L = (target − f)²");
    println!(
        "   x = {}, y = {}, z = {}, target = {}",
        n(x),
        n(y),
        n(z),
        n(target)
    );
    println!();

    let mut g = Graph::default();
    println!("   forward");
    let (q, f, u, loss) = g.forward(x, y, z, target);
    println!("     q = x + y            = {} + {} = {}", n(x), n(y), n(q));
    println!("     f = q × z            = {} × {} = {}", n(q), n(z), n(f));
    println!(
        "     u = target + (−1)·f  = {} + {} = {}",
        n(target),
        n(-f),
        n(u)
    );
    println!(
        "     L = u × u            = {} × {} = {}",
        n(u),
        n(u),
        n(loss)
    );
    println!();

    println!("   backward, starting from dL/dL = 1");
    let (du_left, du_right) = g.square.backward(1.0);
    let du = du_left + du_right;
    println!("     × node (u × u): u feeds both inputs, so its two gradients add");
    println!("       dL/du = 1 × {} + 1 × {} = {}", n(u), n(u), n(du));
    let (d_target, d_minus_f) = g.add_target.backward(du);
    let _ = d_target; // the target is data, not a parameter
    let (_, df) = g.negate.backward(d_minus_f);
    println!(
        "     + node passes {} through; × node (−1 · f) multiplies by −1",
        n(du)
    );
    println!("       dL/df = {} × (−1) = {}", n(du), n(df));
    let (dq, dz) = g.mul_qz.backward(df);
    println!("     × node (q × z)");
    println!(
        "       dL/dq = {} × z = {} × {} = {}",
        n(df),
        n(df),
        n(z),
        n(dq)
    );
    println!(
        "       dL/dz = {} × q = {} × {} = {}",
        n(df),
        n(df),
        n(q),
        n(dz)
    );
    let (dx, dy) = g.add_xy.backward(dq);
    println!("     + node (x + y) passes {} through unchanged", n(dq));
    println!("       dL/dx = {}, dL/dy = {}", n(dx), n(dy));
    println!();

    // The note has x = −1.84 here, a slip: −2 − 0.01 × 16 is −2.16.
    println!("   one SGD step with lr = {}: w ← w − lr · dL/dw", n(lr));
    let (x0, y0, z0) = (x, y, z);
    x -= lr * dx;
    y -= lr * dy;
    z -= lr * dz;
    println!("     x = {} − {} × {} = {}", n(x0), n(lr), n(dx), n(x));
    println!("     y = {} − {} × {} = {}", n(y0), n(lr), n(dy), n(y));
    println!("     z = {} − {} × ({}) = {}", n(z0), n(lr), n(dz), n(z));
    let (_, f_new, _, loss_new) = g.forward(x, y, z, target);
    println!();
    println!(
        "   forward again: f = {}, L = {} (≈ {:.4}, down from {})",
        n(f_new),
        n(loss_new),
        loss_new,
        n(loss)
    );
}

fn main() {
    println!("Backpropagation on a computational graph");
    println!("× node: upstream gradient times the other input; + node: passed through as is");
    println!();
    snacks();
    function_and_sgd();
}
