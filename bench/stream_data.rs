//! Writes the streaming benchmark's regression CSV: ROWS rows of 20 features x ~ N(0, 1)
//! and y = x·w + tanh(x0·x1) + 0.1·noise, from a fixed seed per file. The weights w are
//! the same for every file, so a file with another SEED holds fresh rows from the same
//! generator. About 200 bytes a row: 5,000,000 rows make a file of about 1 GB.
//!
//!     rustc -O bench/stream_data.rs -o stream_data && ./stream_data OUT.csv ROWS SEED
//!
//! A standalone program (no dependencies): NumPy's `savetxt` takes half an hour for 1 GB.

use std::io::{BufWriter, Write};

const FEATURES: usize = 20;

/// SplitMix64: small, seedable and good enough for test data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, out, rows, seed] = &args[..] else {
        eprintln!("usage: stream_data OUT.csv ROWS SEED");
        std::process::exit(2);
    };
    let rows: usize = rows.parse().expect("ROWS is a number");
    let seed: u64 = seed.parse().expect("SEED is a number");
    let mut weights = Rng(0);
    let w: Vec<f64> = (0..FEATURES).map(|_| weights.normal()).collect();
    let mut rng = Rng(1000 + seed);
    let mut f = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let header: Vec<String> = (0..FEATURES).map(|i| format!("x{i}")).collect();
    writeln!(f, "{},y", header.join(","))?;
    let mut x = [0f64; FEATURES];
    for _ in 0..rows {
        let mut y = 0.0;
        for (xi, wi) in x.iter_mut().zip(&w) {
            *xi = rng.normal();
            y += *xi * wi;
            write!(f, "{:.6},", *xi)?;
        }
        y += (x[0] * x[1]).tanh() + 0.1 * rng.normal();
        writeln!(f, "{y:.6}")?;
    }
    f.flush()
}
