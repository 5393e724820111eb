//! A training step allocates nothing on the heap once its buffers are sized for the batch.
//!
//! A counting global allocator wraps the system one; after warm-up steps (which size the
//! layers' buffers, the optimizers' state and the matrix product's packing buffers), further
//! steps must not allocate at all — on this thread or on the matrix product's workers.
//! This file holds a single test so that nothing else runs (and allocates) meanwhile.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use mlp::train::train_step;
use mlp::{
    Adam, Init, Linear, Loss, Momentum, Mse, Optimizer, Relu, Sequential, Sgd, Sigmoid,
    SoftmaxCrossEntropy, Tanh, Target,
};
use ndarray::{Array2, s};
use ndarray_rand::RandomExt;
use ndarray_rand::rand::{SeedableRng, rngs::StdRng};
use ndarray_rand::rand_distr::Uniform;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A three-layer network big enough that its products take the packed, multi-threaded path.
fn network(hidden: &str, rng: &mut StdRng) -> Sequential {
    let act = |name: &str| -> Box<dyn mlp::Layer> {
        match name {
            "relu" => Box::new(Relu::new()),
            "sigmoid" => Box::new(Sigmoid::new()),
            _ => Box::new(Tanh::new()),
        }
    };
    let mut m = Sequential::new();
    m.push(Box::new(Linear::new(200, 160, Init::He, rng)));
    m.push(act(hidden));
    m.push(Box::new(Linear::new(160, 128, Init::He, rng)));
    m.push(act(hidden));
    m.push(Box::new(Linear::new(128, 10, Init::Glorot, rng)));
    m
}

/// Allocations made by `steps` training steps after `warmup` steps, over batches of the
/// sizes in `batches` (cycled), for the given loss and optimizer.
fn allocations(
    model: &mut Sequential,
    loss: &mut dyn Loss,
    optimizer: &mut dyn Optimizer,
    classes: bool,
) -> usize {
    let mut rng = StdRng::seed_from_u64(9);
    let x = Array2::random_using((256, 200), Uniform::new(-1.0f32, 1.0).unwrap(), &mut rng);
    let dense = Array2::random_using((256, 10), Uniform::new(0.0f32, 1.0).unwrap(), &mut rng);
    let labels: Vec<usize> = (0..256).map(|i| i % 10).collect();
    // A full batch and a smaller last batch, as an epoch has.
    let batches = [(0, 128), (128, 256), (0, 100)];
    let mut run = |steps: usize| {
        for i in 0..steps {
            let (a, b) = batches[i % batches.len()];
            let target = if classes {
                Target::Classes(&labels[a..b])
            } else {
                Target::Dense(dense.slice(s![a..b, ..]))
            };
            let l = train_step(model, loss, optimizer, x.slice(s![a..b, ..]), target).unwrap();
            assert!(l.is_finite());
        }
    };
    run(3);
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    run(6);
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

#[test]
fn training_steps_do_not_allocate() {
    let mut failures = Vec::new();
    for (k, hidden) in ["relu", "sigmoid", "tanh"].into_iter().enumerate() {
        // Two threads (so the matrix product's workers are covered) and the default count
        // (so is working it out, which must not cost an allocation per product).
        mlp::threads::set_num_threads(if k % 2 == 0 { 2 } else { 0 });
        for optimizer in ["sgd", "momentum", "nesterov", "adam"] {
            for classes in [true, false] {
                let mut rng = StdRng::seed_from_u64(1);
                let mut model = network(hidden, &mut rng);
                let mut opt: Box<dyn Optimizer> = match optimizer {
                    "sgd" => Box::new(Sgd::new(0.01).unwrap().with_weight_decay(1e-4).unwrap()),
                    "momentum" => Box::new(Momentum::new(0.01, 0.9, false).unwrap()),
                    "nesterov" => Box::new(Momentum::new(0.01, 0.9, true).unwrap()),
                    _ => Box::new(Adam::new(1e-3).unwrap().with_weight_decay(1e-4).unwrap()),
                };
                let n = if classes {
                    let mut loss = SoftmaxCrossEntropy::new()
                        .with_label_smoothing(0.1)
                        .unwrap();
                    allocations(&mut model, &mut loss, opt.as_mut(), true)
                } else {
                    allocations(&mut model, &mut Mse::new(), opt.as_mut(), false)
                };
                if n != 0 {
                    failures.push(format!(
                        "{hidden}/{optimizer}/classes={classes}: {n} allocations"
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
