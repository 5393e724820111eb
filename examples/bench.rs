//! The reference workloads of `../shared/bench/WORKLOADS.md` (W1–W5 and the sgemm limit L),
//! run on the library's real code paths, one result line per workload in the peers' format:
//!
//!     peer=mlp threads=1 workload=W3 median_s=… min_s=… reps=5 samples_per_s=… gflops=… extra=…
//!
//! Usage: `cargo run --release --example bench -- [--threads N] [--reps N] [W1 W2 W3 W4 W5 L]`
//! (default: all). Each workload runs once as a warm-up, then `--reps` times (default 5, or
//! the `REPS` environment variable); the median and minimum of the timed region are printed.
//! Inputs of W3, W4 and W5 are generated with fixed seeds (W5's CSV is written once under
//! `target/bench-data/`); W2 reads `data/digits.csv`.

use std::path::{Path, PathBuf};
use std::time::Instant;

use mlp::nn::loss::Target;
use mlp::train::{Batch, Batches, EpochEnd, evaluate, train_step};
use mlp::{Init, Linear, Mse, Relu, Sequential, Sgd, Sigmoid, SoftmaxCrossEntropy};
use ndarray::{Array2, s};
use ndarray_rand::RandomExt;
use ndarray_rand::rand::{Rng, SeedableRng, rngs::StdRng};
use ndarray_rand::rand_distr::StandardNormal;

/// Layer widths of each workload's network.
fn widths(workload: &str) -> &'static [usize] {
    match workload {
        "W1" => &[2, 4, 1],
        "W2" => &[64, 128, 64, 10],
        "W3" => &[784, 256, 128, 10],
        "W4" => &[784, 1024, 1024, 10],
        _ => unreachable!(),
    }
}

/// FLOPs of training on `samples` samples: (6·P − 2·P₁) per sample (WORKLOADS.md).
fn train_flops(workload: &str, samples: usize) -> f64 {
    let w = widths(workload);
    let p: usize = w.windows(2).map(|p| p[0] * p[1]).sum();
    ((6 * p - 2 * w[0] * w[1]) * samples) as f64
}

struct Timing {
    median: f64,
    min: f64,
}

/// One warm-up, then `reps` timed runs of `run` (which returns its own timed seconds).
fn bench(reps: usize, mut run: impl FnMut() -> f64) -> Timing {
    run();
    let mut t: Vec<f64> = (0..reps).map(|_| run()).collect();
    t.sort_by(f64::total_cmp);
    let median = if reps % 2 == 1 {
        t[reps / 2]
    } else {
        (t[reps / 2 - 1] + t[reps / 2]) / 2.0
    };
    Timing { median, min: t[0] }
}

fn emit(
    threads: usize,
    workload: &str,
    t: &Timing,
    reps: usize,
    samples: Option<f64>,
    flops: Option<f64>,
    extra: &[(&str, String)],
) {
    let sps = samples.map_or("-".into(), |s| format!("{:.6}", s / t.median));
    let gf = flops.map_or("-".into(), |f| format!("{:.4}", f / t.median / 1e9));
    let extra = if extra.is_empty() {
        "-".to_string()
    } else {
        extra
            .iter()
            .map(|(k, v)| format!("{k}:{v}"))
            .collect::<Vec<_>>()
            .join(",")
    };
    println!(
        "peer=mlp threads={threads} workload={workload} median_s={:.6} min_s={:.6} reps={reps} \
         samples_per_s={sps} gflops={gf} extra={extra}",
        t.median, t.min
    );
}

/// A ReLU network with He-initialised hidden layers, as the workloads define.
fn relu_net(w: &[usize], rng: &mut StdRng) -> Sequential {
    let mut model = Sequential::new();
    for (i, pair) in w.windows(2).enumerate() {
        model.push(Box::new(Linear::new(pair[0], pair[1], Init::He, rng)));
        if i + 2 < w.len() {
            model.push(Box::new(Relu::new()));
        }
    }
    model
}

/// W1: XOR, 2→4 sigmoid→1 sigmoid, MSE, full batch, SGD lr 1.0, 10,000 epochs.
fn w1(threads: usize, reps: usize) {
    const EPOCHS: usize = 10_000;
    let x = ndarray::array![[0.0f32, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]];
    let y = ndarray::array![[0.0f32], [1.0], [1.0], [0.0]];
    let mut final_loss = 0.0;
    let t = bench(reps, || {
        let mut rng = StdRng::seed_from_u64(1);
        let mut model = Sequential::new()
            .add(Linear::new(2, 4, Init::Glorot, &mut rng))
            .add(Sigmoid::new())
            .add(Linear::new(4, 1, Init::Glorot, &mut rng))
            .add(Sigmoid::new());
        let mut mse = Mse::new();
        let mut sgd = Sgd::new(1.0).unwrap();
        let start = Instant::now();
        for _ in 0..EPOCHS {
            final_loss = train_step(
                &mut model,
                &mut mse,
                &mut sgd,
                x.view(),
                Target::Dense(y.view()),
            )
            .unwrap();
        }
        start.elapsed().as_secs_f64()
    });
    let samples = 4 * EPOCHS;
    emit(
        threads,
        "W1",
        &t,
        reps,
        Some(samples as f64),
        Some(train_flops("W1", samples)),
        &[
            (
                "us_per_epoch",
                format!("{:.4}", t.median / EPOCHS as f64 * 1e6),
            ),
            ("final_loss", format!("{final_loss:.6}")),
        ],
    );
}

/// W2: digits, 64→128→64→10 ReLU, softmax cross-entropy, batches of 32 reshuffled every
/// epoch, SGD lr 0.05, 30 epochs; first 1437 rows train, last 360 test.
fn w2(threads: usize, reps: usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/digits.csv");
    let (_, m) = mlp::data::read_matrix(&path).expect("data/digits.csv");
    let x = m.slice(s![.., ..64]).to_owned();
    let labels: Vec<usize> = m.column(64).iter().map(|&v| v as usize).collect();
    let (x_train, x_test) = (x.slice(s![..1437, ..]), x.slice(s![1437.., ..]));
    let y_train = mlp::tabular::encoding::Targets::Classes(labels[..1437].to_vec());
    let y_test = mlp::tabular::encoding::Targets::Classes(labels[1437..].to_vec());
    let (mut accuracy, mut final_loss) = (0.0, 0.0);
    let t = bench(reps, || {
        let mut model = relu_net(widths("W2"), &mut StdRng::seed_from_u64(2));
        let mut loss = SoftmaxCrossEntropy::new();
        let mut sgd = Sgd::new(0.05).unwrap();
        let train = Batch {
            x: x_train,
            y: &y_train,
        };
        // The epochs `fit` runs, without its per-epoch evaluation (W2 has no validation).
        let mut batches = Batches::new(train, 32, 2);
        let start = Instant::now();
        for _ in 0..30 {
            match batches
                .epoch(&mut model, &mut loss, &mut sgd, &|| false)
                .unwrap()
            {
                EpochEnd::Finished { mean_loss } => final_loss = mean_loss,
                other => panic!("W2 training ended with {other:?}"),
            }
        }
        let seconds = start.elapsed().as_secs_f64();
        let test = Batch {
            x: x_test,
            y: &y_test,
        };
        accuracy = evaluate(&mut model, test).unwrap().1;
        seconds
    });
    let samples = 1437 * 30;
    emit(
        threads,
        "W2",
        &t,
        reps,
        Some(samples as f64),
        Some(train_flops("W2", samples)),
        &[
            ("test_acc", format!("{accuracy:.4}")),
            ("final_loss", format!("{final_loss:.6}")),
        ],
    );
}

/// `rows` samples of N(0, 1) with 784 features and labels uniform in 0–9, from `seed`.
fn gaussian(rows: usize, seed: u64) -> (Array2<f32>, Vec<usize>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let x = Array2::random_using((rows, 784), StandardNormal, &mut rng);
    let y = (0..rows).map(|_| rng.random_range(0..10)).collect();
    (x, y)
}

/// W3 and W4: one epoch in order over Gaussian data, SGD lr 0.01, softmax cross-entropy.
fn w34(workload: &str, threads: usize, reps: usize) {
    let (rows, batch, seed) = match workload {
        "W3" => (60_000, 128, 3),
        _ => (16_384, 512, 4),
    };
    let (x, y) = gaussian(rows, seed);
    let mut final_loss = 0.0;
    let t = bench(reps, || {
        let mut model = relu_net(widths(workload), &mut StdRng::seed_from_u64(3));
        let mut loss = SoftmaxCrossEntropy::new();
        let mut sgd = Sgd::new(0.01).unwrap();
        let start = Instant::now();
        for begin in (0..rows).step_by(batch) {
            let end = (begin + batch).min(rows);
            final_loss = train_step(
                &mut model,
                &mut loss,
                &mut sgd,
                x.slice(s![begin..end, ..]),
                Target::Classes(&y[begin..end]),
            )
            .unwrap();
        }
        start.elapsed().as_secs_f64()
    });
    emit(
        threads,
        workload,
        &t,
        reps,
        Some(rows as f64),
        Some(train_flops(workload, rows)),
        &[("final_loss", format!("{final_loss:.6}"))],
    );
}

/// The W5 file: 100,000 rows × (50 features + a target), written once with a fixed seed in
/// the format NumPy's `savetxt(fmt="%.6f")` uses.
fn w5_file() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    let path = dir.join("w5.csv");
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = StdRng::seed_from_u64(5);
    let mut text = (0..50).map(|i| format!("f{i},")).collect::<String>() + "target\n";
    for _ in 0..100_000 {
        for _ in 0..50 {
            let v: f32 = rng.sample(StandardNormal);
            text.push_str(&format!("{v:.6},"));
        }
        text.push_str(&format!("{:.6}\n", rng.random_range(0..10) as f32));
    }
    let tmp = dir.join("w5.csv.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    path
}

/// The reference reading of a CSV of numbers: the `csv` crate and `str::parse::<f64>`,
/// rounded to `f32`, to check the fast path against.
fn reference_matrix(path: &Path) -> Array2<f32> {
    let mut reader = csv::Reader::from_path(path).unwrap();
    let cols = reader.headers().unwrap().len();
    let mut values = Vec::new();
    for record in reader.records() {
        for cell in record.unwrap().iter() {
            values.push(cell.parse::<f64>().unwrap() as f32);
        }
    }
    Array2::from_shape_vec((values.len() / cols, cols), values).unwrap()
}

/// W5: load the CSV into one f32 matrix with the library's reader. Reads the peers' file
/// (`$PEERS_WORK/data/w5.csv`, as `run_all.sh` sets it) when there is one, so that both
/// load the same bytes; `MLP_W5_DUMP=FILE` writes the matrix as raw little-endian f32 for
/// `bench/check_w5.py` to compare with pandas.
fn w5(threads: usize, reps: usize, path: Option<PathBuf>) {
    let peers = std::env::var_os("PEERS_WORK").map(|w| PathBuf::from(w).join("data/w5.csv"));
    let path = path
        .or(peers.filter(|p| p.exists()))
        .unwrap_or_else(w5_file);
    let mb = std::fs::metadata(&path).unwrap().len() as f64 / 1e6;
    let mut shape = (0, 0);
    let mut last = Array2::zeros((0, 0));
    let t = bench(reps, || {
        let start = Instant::now();
        let (_, m) = mlp::data::read_matrix(&path).unwrap();
        let seconds = start.elapsed().as_secs_f64();
        shape = m.dim();
        last = m;
        seconds
    });
    let same = last == reference_matrix(&path);
    if let Some(dump) = std::env::var_os("MLP_W5_DUMP") {
        let bytes: Vec<u8> = last.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(dump, bytes).unwrap();
    }
    emit(
        threads,
        "W5",
        &t,
        reps,
        Some(shape.0 as f64),
        None,
        &[
            ("shape", format!("{}x{}", shape.0, shape.1)),
            ("mb_per_s", format!("{:.1}", mb / t.median)),
            ("same_as_reference", same.to_string()),
        ],
    );
    assert!(
        same,
        "the fast reader's matrix differs from the reference reading"
    );
}

/// L: C = A·B for two random 1024×1024 matrices, through the library's matrix product.
fn sgemm(threads: usize, reps: usize) {
    const N: usize = 1024;
    const INNER: usize = 10;
    let mut rng = StdRng::seed_from_u64(0);
    let a = Array2::<f32>::random_using((N, N), StandardNormal, &mut rng);
    let b = Array2::<f32>::random_using((N, N), StandardNormal, &mut rng);
    let mut c = Array2::<f32>::zeros((N, N));
    let reps = reps.max(7);
    let t = bench(reps, || {
        let start = Instant::now();
        for _ in 0..INNER {
            mlp::nn::linalg::matmul(a.view(), b.view(), c.view_mut());
        }
        start.elapsed().as_secs_f64() / INNER as f64
    });
    emit(
        threads,
        "L",
        &t,
        reps,
        None,
        Some(2.0 * (N * N * N) as f64),
        &[("ms", format!("{:.3}", t.median * 1e3))],
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut reps: usize = std::env::var("REPS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(5);
    let mut w5_path = None;
    let mut workloads = Vec::new();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--threads" => {
                let n: usize = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--threads N");
                mlp::nn::linalg::threads::set_num_threads(n);
            }
            "--reps" => reps = args.next().and_then(|n| n.parse().ok()).expect("--reps N"),
            "--w5" => w5_path = args.next().map(PathBuf::from),
            w @ ("W1" | "W2" | "W3" | "W4" | "W5" | "L") => workloads.push(w.to_string()),
            other => panic!(
                "unknown argument {other}; expected --threads N, --reps N, --w5 PATH, W1..W5, L"
            ),
        }
    }
    if workloads.is_empty() {
        workloads = ["L", "W1", "W2", "W3", "W4", "W5"]
            .map(String::from)
            .to_vec();
    }
    let threads = mlp::nn::linalg::threads::num_threads();
    for w in &workloads {
        match w.as_str() {
            "W1" => w1(threads, reps),
            "W2" => w2(threads, reps),
            "W3" | "W4" => w34(w, threads, reps),
            "W5" => w5(threads, reps, w5_path.clone()),
            "L" => sgemm(threads, reps),
            _ => unreachable!(),
        }
    }
}
