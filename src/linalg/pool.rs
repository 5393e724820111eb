//! A small persistent thread pool for splitting one matrix product over the cores.
//!
//! `run(parts, f)` calls `f(0)` on the calling thread and `f(1) … f(parts − 1)` on workers,
//! and returns when all are done. A job allocates nothing: the closure stays on the
//! caller's stack and the workers borrow it through a pointer for the duration of `run`.
//!
//! A training loop calls `run` every few hundred microseconds, and waking a sleeping thread
//! costs tens of microseconds, so workers (and the caller, waiting for them) spin for a
//! short while before sleeping on a condition variable. An idle pool costs nothing.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How long a worker (or the caller) spins before going to sleep.
const SPIN: Duration = Duration::from_micros(100);

/// Spins until `done()` or [`SPIN`] has passed; returns whether `done()` became true.
fn spin_until(done: impl Fn() -> bool) -> bool {
    let start = Instant::now();
    loop {
        for _ in 0..64 {
            if done() {
                return true;
            }
            std::hint::spin_loop();
        }
        if start.elapsed() > SPIN {
            return done();
        }
    }
}

/// The job being run: a borrowed closure, valid until every part has finished.
#[derive(Clone, Copy)]
struct Job(*const (dyn Fn(usize) + Sync));

// SAFETY: the pointee is `Sync` and outlives every use (see `Pool::run`).
unsafe impl Send for Job {}

struct State {
    generation: u64,
    job: Option<Job>,
    parts: usize,
    remaining: usize,
    shutdown: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
    done: Condvar,
    /// Mirrors `State::generation`, readable without the lock (for spinning).
    published: AtomicU64,
    /// Mirrors `State::remaining`.
    remaining: AtomicUsize,
}

/// A pool of `workers` threads plus the caller.
pub(crate) struct Pool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // No code holding the lock can panic, but stay usable if one ever does.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    /// A pool that can run jobs of up to `threads` parts (`threads − 1` workers).
    pub(crate) fn new(threads: usize) -> Pool {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                generation: 0,
                job: None,
                parts: 0,
                remaining: 0,
                shutdown: false,
            }),
            work: Condvar::new(),
            done: Condvar::new(),
            published: AtomicU64::new(0),
            remaining: AtomicUsize::new(0),
        });
        let workers = (1..threads.max(1))
            .filter_map(|index| {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name(format!("mlp-worker-{index}"))
                    .spawn(move || worker(&shared, index))
                    .ok()
            })
            .collect();
        Pool { shared, workers }
    }

    /// Parts this pool can run at once.
    pub(crate) fn threads(&self) -> usize {
        self.workers.len() + 1
    }

    /// Runs `f(0) … f(parts − 1)` in parallel and waits for all of them.
    ///
    /// **Panics** if `parts` exceeds [`threads`](Pool::threads).
    pub(crate) fn run(&self, parts: usize, f: &(dyn Fn(usize) + Sync)) {
        assert!(parts <= self.threads(), "more parts than threads");
        if parts <= 1 {
            f(0);
            return;
        }
        // SAFETY (lifetime erasure): workers only dereference the job between this point
        // and `remaining` reaching zero, which this function waits for before returning,
        // so the borrow of `f` outlives every use.
        let job: *const (dyn Fn(usize) + Sync + '_) = f;
        let job = Job(unsafe {
            std::mem::transmute::<*const (dyn Fn(usize) + Sync + '_), *const (dyn Fn(usize) + Sync)>(
                job,
            )
        });
        let shared = &*self.shared;
        {
            let mut s = lock(&shared.state);
            s.generation = s.generation.wrapping_add(1);
            s.job = Some(job);
            s.parts = parts;
            s.remaining = parts - 1;
            shared.remaining.store(parts - 1, Ordering::Release);
            shared.published.store(s.generation, Ordering::Release);
        }
        shared.work.notify_all();
        f(0);
        if !spin_until(|| shared.remaining.load(Ordering::Acquire) == 0) {
            let mut s = lock(&shared.state);
            while s.remaining > 0 {
                s = shared.done.wait(s).unwrap_or_else(|e| e.into_inner());
            }
        }
        lock(&shared.state).job = None;
    }
}

fn worker(shared: &Shared, index: usize) {
    let mut seen = 0u64;
    loop {
        spin_until(|| shared.published.load(Ordering::Acquire) != seen);
        let job = {
            let mut s = lock(&shared.state);
            while s.generation == seen && !s.shutdown {
                s = shared.work.wait(s).unwrap_or_else(|e| e.into_inner());
            }
            if s.shutdown {
                return;
            }
            seen = s.generation;
            if index >= s.parts {
                continue;
            }
            s.job
        };
        if let Some(Job(f)) = job {
            // SAFETY: `run` keeps the closure alive until this part reports back below.
            unsafe { (*f)(index) };
        }
        let mut s = lock(&shared.state);
        s.remaining -= 1;
        shared.remaining.store(s.remaining, Ordering::Release);
        if s.remaining == 0 {
            shared.done.notify_one();
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        {
            let mut s = lock(&self.shared.state);
            s.shutdown = true;
            s.generation = s.generation.wrapping_add(1);
            self.shared.published.store(s.generation, Ordering::Release);
        }
        self.shared.work.notify_all();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

/// The process-wide pool, sized to [`num_threads`](crate::threads::num_threads).
static GLOBAL: Mutex<Option<Pool>> = Mutex::new(None);

/// Runs `f` over `parts` parts on the global pool. If another thread is using the pool,
/// the parts run one after another on this thread instead: the result is the same, since
/// callers split work so that it does not depend on how the parts are scheduled.
pub(crate) fn run(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    let mut guard = match GLOBAL.try_lock() {
        Ok(g) => g,
        Err(TryLockError::Poisoned(e)) => e.into_inner(),
        Err(TryLockError::WouldBlock) => {
            (0..parts).for_each(f);
            return;
        }
    };
    let threads = crate::threads::num_threads();
    if guard.as_ref().is_none_or(|p| p.threads() != threads) {
        *guard = None; // join the old workers before starting new ones
        *guard = Some(Pool::new(threads));
    }
    let pool = guard.as_ref().expect("just created");
    if parts <= pool.threads() {
        pool.run(parts, f);
    } else {
        (0..parts).for_each(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_every_part_once() {
        let pool = Pool::new(3);
        for round in 0..200 {
            let hits: Vec<AtomicUsize> = (0..3).map(|_| AtomicUsize::new(0)).collect();
            pool.run(3, &|i| {
                hits[i].fetch_add(1, Ordering::Relaxed);
            });
            assert!(hits.iter().all(|h| h.load(Ordering::Relaxed) == 1));
            if round % 50 == 0 {
                // Let the workers fall asleep, then wake them again.
                std::thread::sleep(SPIN * 3);
            }
        }
        let count = AtomicUsize::new(0);
        pool.run(2, &|_| {
            count.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(count.load(Ordering::Relaxed), 2);
    }
}
