//! Criterion benchmarks for finding regressions: the forward pass, the backward pass and a
//! whole training step of each reference workload's network (WORKLOADS.md), the 1024³
//! matrix product, and CSV loading. `examples/bench.rs` times the complete workloads in the
//! peers' format; these time their parts.
//!
//!     cargo bench --bench workloads [-- FILTER]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mlp::train::train_step;
use mlp::{
    Init, Layer, Linear, Loss, Mse, Relu, Sequential, Sgd, Sigmoid, SoftmaxCrossEntropy, Target,
};
use ndarray::{Array2, s};
use ndarray_rand::RandomExt;
use ndarray_rand::rand::{SeedableRng, rngs::StdRng};
use ndarray_rand::rand_distr::StandardNormal;

/// (name, layer widths, batch, sigmoid net with MSE?)
const NETS: [(&str, &[usize], usize, bool); 4] = [
    ("W1", &[2, 4, 1], 4, true),
    ("W2", &[64, 128, 64, 10], 32, false),
    ("W3", &[784, 256, 128, 10], 128, false),
    ("W4", &[784, 1024, 1024, 10], 512, false),
];

fn network(widths: &[usize], sigmoid: bool) -> Sequential {
    let mut rng = StdRng::seed_from_u64(1);
    let mut model = Sequential::new();
    for (i, pair) in widths.windows(2).enumerate() {
        let last = i + 2 == widths.len();
        let init = if sigmoid { Init::Glorot } else { Init::He };
        model.push(Box::new(Linear::new(pair[0], pair[1], init, &mut rng)));
        if sigmoid {
            model.push(Box::new(Sigmoid::new()));
        } else if !last {
            model.push(Box::new(Relu::new()));
        }
    }
    model
}

fn steps(c: &mut Criterion) {
    let mut group = c.benchmark_group("network");
    for (name, widths, batch, sigmoid) in NETS {
        let mut rng = StdRng::seed_from_u64(2);
        let x = Array2::<f32>::random_using((batch, widths[0]), StandardNormal, &mut rng);
        let classes: Vec<usize> = (0..batch).map(|i| i % widths[widths.len() - 1]).collect();
        let dense = Array2::<f32>::zeros((batch, widths[widths.len() - 1]));
        let target = || {
            if sigmoid {
                Target::Dense(dense.view())
            } else {
                Target::Classes(&classes)
            }
        };
        let mut loss: Box<dyn Loss> = if sigmoid {
            Box::new(Mse::new())
        } else {
            Box::new(SoftmaxCrossEntropy::new())
        };
        let mut model = network(widths, sigmoid);
        let mut sgd = Sgd::new(0.01).unwrap();

        group.bench_function(BenchmarkId::new("forward", name), |b| {
            b.iter(|| {
                black_box(model.forward(x.view()));
            })
        });
        let prediction = model.forward(x.view()).to_owned();
        loss.forward(prediction.view(), target()).unwrap();
        let grad = loss.backward().to_owned();
        group.bench_function(BenchmarkId::new("backward", name), |b| {
            b.iter(|| {
                model.forward(x.view());
                model.backward_params_only(grad.view());
            })
        });
        group.bench_function(BenchmarkId::new("step", name), |b| {
            b.iter(|| {
                black_box(
                    train_step(&mut model, loss.as_mut(), &mut sgd, x.view(), target()).unwrap(),
                )
            })
        });
    }
    group.finish();
}

fn layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("layer");
    let mut rng = StdRng::seed_from_u64(3);
    let x = Array2::<f32>::random_using((512, 1024), StandardNormal, &mut rng);
    let mut linear = Linear::new(1024, 1024, Init::He, &mut rng);
    let mut relu = Relu::new();
    group.bench_function("linear_forward_512x1024x1024", |b| {
        b.iter(|| {
            black_box(linear.forward(x.view()));
        })
    });
    group.bench_function("linear_backward_512x1024x1024", |b| {
        linear.forward(x.view());
        b.iter(|| {
            black_box(linear.backward(x.view()));
        })
    });
    group.bench_function("relu_forward_backward_512x1024", |b| {
        b.iter(|| {
            relu.forward(x.view());
            black_box(relu.backward(x.view()));
        })
    });
    group.finish();
}

fn gemm(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(4);
    let a = Array2::<f32>::random_using((1024, 1024), StandardNormal, &mut rng);
    let b = Array2::<f32>::random_using((1024, 1024), StandardNormal, &mut rng);
    let mut out = Array2::<f32>::zeros((1024, 1024));
    c.bench_function("matmul_1024", |bench| {
        bench.iter(|| mlp::nn::linalg::matmul(a.view(), b.view(), out.view_mut()))
    });
}

fn csv(c: &mut Criterion) {
    // 20,000 rows of the W5 format, written once.
    let dir = std::env::temp_dir().join("mlp-bench-csv");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("w5-small.csv");
    if !path.exists() {
        let mut rng = StdRng::seed_from_u64(5);
        let m = Array2::<f32>::random_using((20_000, 51), StandardNormal, &mut rng);
        let mut text = (0..50).map(|i| format!("f{i},")).collect::<String>() + "target\n";
        for row in m.rows() {
            let cells: Vec<String> = row.iter().map(|v| format!("{v:.6}")).collect();
            text.push_str(&cells.join(","));
            text.push('\n');
        }
        std::fs::write(&path, text).unwrap();
    }
    c.bench_function("read_matrix_20000x51", |b| {
        b.iter(|| black_box(mlp::data::read_matrix(&path).unwrap()))
    });
    let (_, m) = mlp::data::read_matrix(&path).unwrap();
    black_box(m.slice(s![..1, ..]).sum());
}

criterion_group!(benches, steps, layers, gemm, csv);
criterion_main!(benches);
