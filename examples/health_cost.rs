//! What the training-health report costs: trains the same network on a CSV file with and
//! without the [`HealthMonitor`] observer (plus the final dead/saturated count), alternating
//! runs, and prints one line per run and the median ratio. On a shared, noisy machine the
//! wall-clock ratio wobbles, so each run also times the report's own work (every observer
//! call and the final count) against the whole run it was part of: that share is measured
//! in one run and is steady.
//!
//!     cargo run --release --example health_cost [-- DATA.csv [RUNS]]

use std::time::Instant;

use mlp::Sequential;
use mlp::pipeline::{TrainRequest, prepare, train, train_observed};
use mlp::train::health::{HealthMonitor, activation_health};
use mlp::train::{EpochReport, Observer};

/// Times every call into the monitor.
struct Timed {
    inner: HealthMonitor,
    spent: f64,
}

impl Observer for Timed {
    fn start(&mut self, model: &mut Sequential) {
        let t = Instant::now();
        self.inner.start(model);
        self.spent += t.elapsed().as_secs_f64();
    }
    fn after_step(&mut self, model: &mut Sequential) {
        let t = Instant::now();
        self.inner.after_step(model);
        self.spent += t.elapsed().as_secs_f64();
    }
    fn after_epoch(&mut self, report: &EpochReport, model: &mut Sequential) {
        let t = Instant::now();
        self.inner.after_epoch(report, model);
        self.spent += t.elapsed().as_secs_f64();
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data = args.next().unwrap_or_else(|| "data/digits.csv".into());
    let runs: usize = args.next().map_or(Ok(5), |r| r.parse())?;
    let mut request = TrainRequest::new(&data);
    // A fixed number of epochs, so both sides do the same work.
    request.config.epochs = 30;
    request.config.patience = 0;
    let prepared = prepare(&request)?;
    let mut ratios = Vec::new();
    let mut shares = Vec::new();
    for run in 1..=runs {
        let start = Instant::now();
        train(&prepared, &request.config, None, &mut |_| {})?;
        let plain = start.elapsed().as_secs_f64();

        let start = Instant::now();
        let mut monitor = Timed {
            inner: HealthMonitor::new(),
            spent: 0.0,
        };
        let mut trained = train_observed(
            &prepared,
            &request.config,
            None,
            &mut |_| {},
            Some(&mut monitor),
        )?;
        let t = Instant::now();
        activation_health(&mut trained.model.network, prepared.x_train.view());
        let spent = monitor.spent + t.elapsed().as_secs_f64();
        let observed = start.elapsed().as_secs_f64();
        let ratio = observed / plain;
        let share = spent / observed;
        ratios.push(ratio);
        shares.push(share);
        println!(
            "run {run}: {data}, 30 epochs: plain {plain:.3} s, with health {observed:.3} s, \
             ratio {ratio:.3}; the report's own work {:.1} ms = {:.2}% of its run",
            spent * 1e3,
            share * 100.0
        );
    }
    ratios.sort_by(f64::total_cmp);
    shares.sort_by(f64::total_cmp);
    println!(
        "median wall-clock ratio {:.3}; median share of the report's own work {:.2}%",
        ratios[ratios.len() / 2],
        shares[shares.len() / 2] * 100.0
    );
    Ok(())
}
