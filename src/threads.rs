//! How many threads the library may use.
//!
//! Set with [`set_num_threads`] (the CLI's `--threads`), else the `MLP_THREADS` environment
//! variable, else the machine's core count. Results never depend on it: work is split so
//! that every number is computed by the same sequence of operations at any thread count.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

static THREADS: AtomicUsize = AtomicUsize::new(0);

/// Fixes the thread count for the rest of the process (`0` restores the default).
pub fn set_num_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

/// The thread count in effect: [`set_num_threads`], else `MLP_THREADS`, else the core count.
///
/// The default is worked out once (reading the environment and the CPU affinity costs
/// system calls, and this is asked before every matrix product).
pub fn num_threads() -> usize {
    static DEFAULT: OnceLock<usize> = OnceLock::new();
    match THREADS.load(Ordering::Relaxed) {
        0 => *DEFAULT.get_or_init(|| {
            std::env::var("MLP_THREADS")
                .ok()
                .and_then(|s| s.trim().parse::<usize>().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        }),
        n => n,
    }
}
