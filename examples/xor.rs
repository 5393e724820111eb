//! XOR, the classic problem no single-layer network can solve, learned by a 2-4-1 sigmoid
//! network with mean squared error and plain SGD.
//!
//!     cargo run --release --example xor [-- PATH]
//!
//! Prints the model, the four inputs with their predictions and the final loss, writes
//! the loss curve to PATH (default `xor_loss.png`) and, next to it, the network's output
//! over the plane with the four points on top (`xor_boundary.png`).

use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};
use mlp::inspect::boundary::{BoundaryPlot, Plane, RESOLUTION, surface};
use mlp::tabular::encoding::{TargetEncoding, Targets};
use mlp::train::plot::LossCurve;
use mlp::{Init, Linear, Loss, Mse, Optimizer, Sequential, Sgd, Sigmoid, Target};
use ndarray::array;
use ndarray_rand::rand::{SeedableRng, rngs::StdRng};

const EPOCHS: usize = 10_000;
const LEARNING_RATE: f32 = 1.0;
const SEED: u64 = 42;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map_or_else(|| PathBuf::from("xor_loss.png"), PathBuf::from);

    let x = array![[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    let y = array![[0.0], [1.0], [1.0], [0.0]];

    let mut rng = StdRng::seed_from_u64(SEED);
    let mut model = Sequential::new()
        .add(Linear::new(2, 4, Init::Glorot, &mut rng))
        .add(Sigmoid::new())
        .add(Linear::new(4, 1, Init::Glorot, &mut rng))
        .add(Sigmoid::new());
    let mut loss_fn = Mse::new();
    let mut sgd = Sgd::new(LEARNING_RATE)?;
    print!("{model}");
    println!("training {EPOCHS} epochs, SGD lr = {LEARNING_RATE}, seed {SEED}");

    let bar = ProgressBar::new(EPOCHS as u64).with_style(ProgressStyle::with_template(
        "{bar:40} {pos}/{len} epochs  loss {msg}",
    )?);
    let mut history = Vec::with_capacity(EPOCHS);
    for epoch in 0..EPOCHS {
        // One step of backpropagation on the whole (four-row) batch:
        let prediction = model.forward(x.view()); //   forward, caching what backward needs
        let loss = loss_fn.forward(prediction, Target::Dense(y.view()))?; // loss and dL/dp
        model.backward(loss_fn.backward()); //            chain rule, last layer to first
        sgd.step(&mut model); //                          w -= lr * dL/dw
        history.push(loss);
        if epoch % 100 == 0 {
            bar.set_position(epoch as u64);
            bar.set_message(format!("{loss:.6}"));
        }
    }
    bar.finish_and_clear();

    let prediction = model.forward(x.view()).to_owned();
    for (input, p) in x.rows().into_iter().zip(prediction.iter()) {
        println!("{} XOR {} -> {p:.4}", input[0], input[1]);
    }
    let final_loss = loss_fn.forward(prediction.view(), Target::Dense(y.view()))?;
    println!("final loss: {final_loss:.6}");

    LossCurve::new("XOR: 2-4-1 sigmoid network, MSE, SGD lr = 1.0", &history).write_png(&path)?;
    println!("wrote {}", path.display());

    // The decision boundary: the output for every point of the plane around the four.
    let plane = Plane::raw(["x₁", "x₂"], (-0.5, 1.5), (-0.5, 1.5));
    // The network outputs the value itself: no standardisation to undo.
    let target = TargetEncoding::Values {
        name: "output".into(),
        mean: 0.0,
        std: 1.0,
    };
    let grid = surface(&mut model, &plane, &target, RESOLUTION);
    let boundary = path.with_file_name("xor_boundary.png");
    BoundaryPlot {
        plane: &plane,
        target: &target,
        points: x.view(),
        targets: &Targets::Values(y),
        title: "XOR: the 2-4-1 network's output over the plane".into(),
        filled: &[],
    }
    .write_png(&grid, &boundary)?;
    println!("wrote {}", boundary.display());
    Ok(())
}
