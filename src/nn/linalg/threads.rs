//! How many threads the library may use, and the pool they run on.
//!
//! Set with [`set_num_threads`] (the CLI's `--threads`), else the `MLP_THREADS` environment
//! variable, else the machine's core count. Results never depend on it: work is split so
//! that every number is computed by the same sequence of operations at any thread count.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::{Error, Result, Setting};

static THREADS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// While this thread runs [`with_share`]'s work: its share of the threads (0: all).
    static SHARE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Runs `work` with [`num_threads`] at most `share` (at least 1) on this thread: for work
/// that runs beside other such work on other threads (k-fold networks trained at the same
/// time), so that together they split their products over about as many threads as the
/// process has, not each over all of them.
pub fn with_share<R>(share: usize, work: impl FnOnce() -> R) -> R {
    let before = SHARE.with(|s| s.replace(share.max(1)));
    let result = work();
    SHARE.with(|s| s.set(before));
    result
}

/// Fixes the thread count for the rest of the process (`0` restores the default).
///
/// The [`pool`]'s workers are started once, at the first parallel pass, with the count in
/// effect then; a later change still decides how many parts work is split into.
pub fn set_num_threads(n: usize) {
    THREADS.store(n, Ordering::Relaxed);
}

/// The `MLP_THREADS` environment variable: `None` when it is not set, an error naming it
/// when it is not a whole number of at least 1 (the default then ignores it).
pub fn from_env() -> Result<Option<usize>> {
    let Some(text) = std::env::var_os("MLP_THREADS") else {
        return Ok(None);
    };
    let text = text.to_string_lossy();
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(Some(n)),
        _ => Err(Error::config(
            Setting::ThreadsVariable,
            format!("'{text}'"),
            "the number of threads must be a whole number, at least 1",
            "set it to a number such as 4, or unset it to use every core",
        )),
    }
}

/// The thread count in effect: [`set_num_threads`], else `MLP_THREADS`, else the core count.
///
/// The default is worked out once (reading the environment and the CPU affinity costs
/// system calls, and this is asked before every matrix product).
pub fn num_threads() -> usize {
    match SHARE.with(std::cell::Cell::get) {
        0 => all_threads(),
        share => share.min(all_threads()),
    }
}

/// [`num_threads`] for the whole process, whatever [`with_share`] says on this thread.
fn all_threads() -> usize {
    static DEFAULT: OnceLock<usize> = OnceLock::new();
    match THREADS.load(Ordering::Relaxed) {
        0 => *DEFAULT.get_or_init(|| {
            from_env()
                .ok()
                .flatten()
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        }),
        n => n,
    }
}

/// The rayon pool that parallel passes and matrix products run on, started on first use
/// with [`num_threads`] workers. A panic in a task resumes in the caller, as rayon does.
pub(crate) fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(all_threads())
            .thread_name(|i| format!("mlp-worker-{i}"))
            .build()
            .expect("starting the worker threads")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This thread's share (0: none). The global count is left alone: other tests set it.
    fn share() -> usize {
        SHARE.with(std::cell::Cell::get)
    }

    #[test]
    fn a_share_limits_this_thread_only_and_ends_with_its_work() {
        assert_eq!(with_share(1, num_threads), 1);
        // Never below one.
        assert_eq!(with_share(0, num_threads), 1);
        // Nested shares: the inner one while it runs, then the outer one again.
        let (inner, outer) = with_share(3, || (with_share(1, num_threads), share()));
        assert_eq!((inner, outer), (1, 3));
        assert_eq!(share(), 0);
        // Another thread has no share.
        with_share(1, || {
            assert_eq!(std::thread::spawn(share).join().unwrap(), 0);
        });
        assert_eq!(share(), 0);
    }
}
