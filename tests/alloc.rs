//! What a training step allocates once its buffers are sized for the batch.
//!
//! A counting global allocator wraps the system one. After warm-up steps at a fixed batch
//! size (which size the layers' arrays and the optimizers' state):
//! * a network whose products are XOR-sized (the plain-loop path) allocates nothing at all;
//! * a larger network allocates only the `gemm` crate's packing scratch, which it takes
//!   afresh on every call: at most three allocations per matrix product (18 per step of
//!   this file's network, 8 products, when measured), whatever the activation, loss or
//!   optimizer: no per-row or per-element allocation;
//! * an epoch's three shapes (full batches, the last smaller batch, the validation rows)
//!   reuse the layers' arrays once each has been seen.
//!
//! This file holds a single test so that nothing else runs (and allocates) meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use mlp::train::train_step;
use mlp::{
    Adam, Init, Linear, Loss, Momentum, Mse, Optimizer, Relu, Sequential, Sgd, Sigmoid,
    SoftmaxCrossEntropy, Tanh, Target,
};
use ndarray::Array2;
use ndarray_rand::RandomExt;
use ndarray_rand::rand::{SeedableRng, rngs::StdRng};
use ndarray_rand::rand_distr::Uniform;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// Allocations made by this thread alone. Rayon's workers start (and allocate) in their
    /// own time, so a count over all threads can pick up a worker's start-up in the middle
    /// of a measured window; the tiny network's steps run entirely on the calling thread.
    static HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn count() {
    ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
    // `try_with`: a thread being torn down has no thread-locals left, and must still allocate.
    let _ = HERE.try_with(|n| n.set(n.get() + 1));
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A three-layer network big enough that its products go through gemm, on two threads.
fn network(hidden: &str, rng: &mut StdRng) -> Sequential {
    let mut m = Sequential::new();
    m.push(Box::new(Linear::new(200, 160, Init::He, rng)));
    m.push(act(hidden));
    m.push(Box::new(Linear::new(160, 128, Init::He, rng)));
    m.push(act(hidden));
    m.push(Box::new(Linear::new(128, 10, Init::Glorot, rng)));
    m
}

/// Allocations made by six training steps on batches of `rows` rows (after three to warm
/// up), for the given loss and optimizer.
fn allocations(
    model: &mut Sequential,
    inputs: usize,
    rows: usize,
    loss: &mut dyn Loss,
    optimizer: &mut dyn Optimizer,
    classes: bool,
    this_thread_only: bool,
) -> usize {
    let mut rng = StdRng::seed_from_u64(9);
    let x = Array2::random_using(
        (rows, inputs),
        Uniform::new(-1.0f32, 1.0).unwrap(),
        &mut rng,
    );
    let outputs = model.specs().iter().rev().find_map(|s| match s {
        mlp::LayerSpec::Linear { outputs, .. } => Some(*outputs),
        _ => None,
    });
    let outputs = outputs.expect("a Linear layer");
    let dense = Array2::random_using(
        (rows, outputs),
        Uniform::new(0.0f32, 1.0).unwrap(),
        &mut rng,
    );
    let labels: Vec<usize> = (0..rows).map(|i| i % outputs).collect();
    let mut run = |steps: usize| {
        for _ in 0..steps {
            let target = if classes {
                Target::Classes(&labels)
            } else {
                Target::Dense(dense.view())
            };
            let l = train_step(model, loss, optimizer, x.view(), target).unwrap();
            assert!(l.is_finite());
        }
    };
    run(3);
    let (all, here) = (ALLOCATIONS.load(Ordering::SeqCst), HERE.with(|n| n.get()));
    run(STEPS);
    if this_thread_only {
        HERE.with(|n| n.get()) - here
    } else {
        ALLOCATIONS.load(Ordering::SeqCst) - all
    }
}

const STEPS: usize = 6;

fn optimizers() -> Vec<(&'static str, Box<dyn Optimizer>)> {
    vec![
        (
            "sgd",
            Box::new(Sgd::new(0.01).unwrap().with_weight_decay(1e-4).unwrap()),
        ),
        (
            "momentum",
            Box::new(Momentum::new(0.01, 0.9, false).unwrap()),
        ),
        (
            "nesterov",
            Box::new(Momentum::new(0.01, 0.9, true).unwrap()),
        ),
        (
            "adam",
            Box::new(Adam::new(1e-3).unwrap().with_weight_decay(1e-4).unwrap()),
        ),
    ]
}

/// Runs every activation × optimizer × loss on the network `build` makes and returns the
/// cases whose allocations over [`STEPS`] steps exceed `limit`.
fn check(
    build: &dyn Fn(&str, &mut StdRng) -> Sequential,
    inputs: usize,
    rows: usize,
    limit: usize,
    this_thread_only: bool,
) -> Vec<String> {
    let mut failures = Vec::new();
    for (k, hidden) in ["relu", "sigmoid", "tanh"].into_iter().enumerate() {
        // Two threads (so the pool's workers are covered) and the default count (so is
        // working it out, which must not cost an allocation per product).
        mlp::nn::linalg::threads::set_num_threads(if k % 2 == 0 { 2 } else { 0 });
        for (name, mut opt) in optimizers() {
            for classes in [true, false] {
                let mut model = build(hidden, &mut StdRng::seed_from_u64(1));
                let n = if classes {
                    let mut loss = SoftmaxCrossEntropy::new()
                        .with_label_smoothing(0.1)
                        .unwrap();
                    allocations(
                        &mut model,
                        inputs,
                        rows,
                        &mut loss,
                        opt.as_mut(),
                        true,
                        this_thread_only,
                    )
                } else {
                    allocations(
                        &mut model,
                        inputs,
                        rows,
                        &mut Mse::new(),
                        opt.as_mut(),
                        false,
                        this_thread_only,
                    )
                };
                if n > limit {
                    failures.push(format!(
                        "{hidden}/{name}/classes={classes}: {n} allocations in {STEPS} steps"
                    ));
                }
            }
        }
    }
    mlp::nn::linalg::threads::set_num_threads(0);
    failures
}

fn act(name: &str) -> Box<dyn mlp::Layer> {
    match name {
        "relu" => Box::new(Relu::new()),
        "sigmoid" => Box::new(Sigmoid::new()),
        _ => Box::new(Tanh::new()),
    }
}

#[test]
fn training_steps_allocate_only_the_products_scratch() {
    // XOR-sized: 2-4-4-1 on 4 rows, every product on the plain-loop path.
    let tiny = |hidden: &str, rng: &mut StdRng| {
        let mut m = Sequential::new();
        m.push(Box::new(Linear::new(2, 4, Init::Glorot, rng)));
        m.push(act(hidden));
        m.push(Box::new(Linear::new(4, 4, Init::Glorot, rng)));
        m.push(act(hidden));
        m.push(Box::new(Linear::new(4, 2, Init::Glorot, rng)));
        m
    };
    // Its steps run on the calling thread alone: count that thread's allocations.
    let failures = check(&tiny, 2, 4, 0, true);
    assert!(failures.is_empty(), "tiny network: {failures:#?}");

    // An epoch goes through three shapes: full batches, a last smaller one, and the
    // validation rows. Once each has been seen, the layers reuse their arrays for all of
    // them.
    let mut model = tiny("relu", &mut StdRng::seed_from_u64(1));
    let mut opt = Adam::new(1e-3).unwrap();
    let mut rng = StdRng::seed_from_u64(4);
    let mut rows =
        |n: usize| Array2::random_using((n, 2), Uniform::new(-1.0f32, 1.0).unwrap(), &mut rng);
    let (batch, last, validation) = (rows(4), rows(3), rows(9));
    let labels: Vec<usize> = (0..4).map(|i| i % 2).collect();
    let mut loss = SoftmaxCrossEntropy::new();
    let mut epoch = |model: &mut Sequential| {
        for x in [&batch, &batch, &last] {
            let target = Target::Classes(&labels[..x.nrows()]);
            train_step(model, &mut loss, &mut opt, x.view(), target).unwrap();
        }
        model.set_training(false);
        assert!(
            model
                .forward(validation.view())
                .iter()
                .all(|v| v.is_finite())
        );
        model.set_training(true);
    };
    epoch(&mut model);
    let here = HERE.with(|n| n.get());
    for _ in 0..3 {
        epoch(&mut model);
    }
    assert_eq!(
        HERE.with(|n| n.get()) - here,
        0,
        "allocations in three epochs"
    );

    // Products large enough for gemm and for two threads: 8 per step (3 forward, 5
    // backward: dW for each layer, dx for all but the first).
    let failures = check(&network, 200, 128, 3 * 8 * STEPS, false);
    assert!(failures.is_empty(), "larger network: {failures:#?}");

    // The same with a first layer told that half its inputs are one-hot columns: the split
    // products keep their buffers from step to step.
    let split = |hidden: &str, rng: &mut StdRng| {
        let mut m = network(hidden, rng);
        let one_hot: Vec<usize> = (100..200).collect();
        m.layers_mut()[0] =
            Box::new(Linear::new(200, 160, Init::He, rng).with_sparse_inputs(&one_hot));
        m
    };
    let failures = check(&split, 200, 128, 3 * 8 * STEPS, false);
    assert!(
        failures.is_empty(),
        "network with one-hot inputs: {failures:#?}"
    );
}
