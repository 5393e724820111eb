//! Processes that train one model together: the seam for data-parallel training.
//!
//! Data parallelism as Horovod and PyTorch DDP do it: every process holds the same network,
//! computes gradients on its own part of each global batch, and the gradients are summed
//! over all processes before every optimizer step, so every process takes the same step
//! and the weights stay identical.
//!
//! [`Solo`] is the single process of an ordinary run: the training loop skips all sharing
//! for it. With the `mpi` cargo feature, `mlp::train::mpi::Mpi` runs the same loop over MPI
//! (`mpirun -n K mlp train …`).

/// A group of processes that sum numbers together.
///
/// Every process of the group must make the same calls in the same order with buffers of
/// the same length (as with MPI collectives); otherwise they wait for each other forever.
pub trait Communicator {
    /// This process's number, from 0 to `size() - 1`.
    fn rank(&self) -> usize;

    /// How many processes train together.
    fn size(&self) -> usize;

    /// Replaces `values` by their element-wise sum over every process.
    fn sum_f32(&self, values: &mut [f32]);

    /// Replaces `values` by their element-wise sum over every process.
    fn sum_f64(&self, values: &mut [f64]);

    /// Replaces `bytes` on every process by the bytes of process `root`.
    fn broadcast(&self, root: usize, bytes: &mut Vec<u8>);

    /// Whether this process is the one that prints and writes files (rank 0).
    fn is_leader(&self) -> bool {
        self.rank() == 0
    }

    /// Every process's `bytes`, in rank order, on every process.
    fn all_gather(&self, bytes: &[u8]) -> Vec<Vec<u8>> {
        (0..self.size())
            .map(|root| {
                let mut b = if root == self.rank() {
                    bytes.to_vec()
                } else {
                    Vec::new()
                };
                self.broadcast(root, &mut b);
                b
            })
            .collect()
    }

    /// Every process's count, in rank order, on every process.
    fn all_counts(&self, count: usize) -> Vec<usize> {
        let mut counts = vec![0f64; self.size()];
        counts[self.rank()] = count as f64;
        self.sum_f64(&mut counts);
        counts.into_iter().map(|c| c as usize).collect()
    }

    /// `local`, unless another process failed at this point: then
    /// [`Error::Elsewhere`](crate::Error::Elsewhere) naming the first that did, so that
    /// every process stops at the same point (and the failed one reports why).
    fn settle<T>(&self, local: crate::Result<T>) -> crate::Result<T>
    where
        Self: Sized,
    {
        settle(self, local)
    }

    /// The first failure over every process, the same on all of them: `(rank, message)`
    /// of the lowest-numbered process whose `local` is `Some`, or `None` if none failed.
    ///
    /// Every process calls this at the same point, failed or not, so that one failure ends
    /// every process instead of leaving the others waiting in the next sum.
    fn first_failure(&self, local: Option<String>) -> Option<(usize, String)> {
        let mut failed = vec![0f64; self.size()];
        failed[self.rank()] = f64::from(u8::from(local.is_some()));
        self.sum_f64(&mut failed);
        let root = failed.iter().position(|&f| f > 0.0)?;
        let mut bytes = local.map(String::into_bytes).unwrap_or_default();
        self.broadcast(root, &mut bytes);
        Some((root, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// [`Communicator::settle`] for a `dyn Communicator`.
pub fn settle<T>(comm: &(impl Communicator + ?Sized), local: crate::Result<T>) -> crate::Result<T> {
    if comm.size() == 1 {
        return local;
    }
    let mut failed = vec![0f64; comm.size()];
    failed[comm.rank()] = f64::from(u8::from(local.is_err()));
    comm.sum_f64(&mut failed);
    match failed.iter().position(|&f| f > 0.0) {
        Some(rank) if local.is_ok() => Err(crate::Error::Elsewhere { rank }),
        _ => local,
    }
}

/// The single process of an ordinary run.
#[derive(Debug, Clone, Copy, Default)]
pub struct Solo;

impl Communicator for Solo {
    fn rank(&self) -> usize {
        0
    }

    fn size(&self) -> usize {
        1
    }

    fn sum_f32(&self, _: &mut [f32]) {}

    fn sum_f64(&self, _: &mut [f64]) {}

    fn broadcast(&self, _: usize, _: &mut Vec<u8>) {}
}

/// Threads of one process standing in for the processes of a group: what the tests use to
/// check data-parallel training without MPI. Sums are taken in rank order, so they are
/// the same on every run.
/// Threads of one process standing in for the processes of a group: what the tests use to
/// check data-parallel training without MPI. Sums are taken in rank order, so they are
/// the same on every run.
#[doc(hidden)]
pub mod threads;

#[cfg(test)]
mod tests {
    use super::*;

    fn on_threads<T: Send + 'static>(
        size: usize,
        f: impl Fn(threads::ThreadRank) -> T + Send + Sync + Copy + 'static,
    ) -> Vec<T> {
        let handles: Vec<_> = threads::group(size)
            .into_iter()
            .map(|member| std::thread::spawn(move || f(member)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn sums_reach_every_rank() {
        let out = on_threads(3, |c| {
            let mut v = [c.rank() as f32, 1.0];
            c.sum_f32(&mut v);
            let mut w = [0.5f64 * c.rank() as f64];
            c.sum_f64(&mut w);
            (v, w)
        });
        for (v, w) in out {
            assert_eq!(v, [3.0, 3.0]);
            assert_eq!(w, [1.5]);
        }
    }

    #[test]
    fn the_lowest_failing_rank_speaks_for_all() {
        let out = on_threads(3, |c| {
            let local = (c.rank() >= 1).then(|| format!("rank {} failed", c.rank()));
            let first = c.first_failure(local);
            let none = c.first_failure(None);
            (first, none)
        });
        for (first, none) in out {
            assert_eq!(first, Some((1, "rank 1 failed".to_string())));
            assert_eq!(none, None);
        }
        assert_eq!(Solo.first_failure(Some("x".into())), Some((0, "x".into())));
        assert_eq!(Solo.first_failure(None), None);
    }

    #[test]
    fn every_rank_gathers_every_ranks_bytes_and_counts() {
        let out = on_threads(3, |c| {
            let bytes = c.all_gather(&vec![c.rank() as u8; c.rank()]);
            (bytes, c.all_counts(10 + c.rank()))
        });
        for (bytes, counts) in out {
            assert_eq!(bytes, [vec![], vec![1], vec![2, 2]]);
            assert_eq!(counts, [10, 11, 12]);
        }
    }

    #[test]
    fn a_failure_stops_every_rank_at_the_same_point() {
        let out = on_threads(3, |c| {
            let local: crate::Result<usize> = if c.rank() == 2 {
                Err(crate::Error::Interrupted("x".into()))
            } else {
                Ok(c.rank())
            };
            let settled = settle(&c, local).map_err(|e| e.to_string());
            (settled, settle(&c, Ok::<_, crate::Error>(1)).is_ok())
        });
        assert_eq!(out[0].0, Err("process 2 stopped the run".to_string()));
        assert_eq!(out[1].0, Err("process 2 stopped the run".to_string()));
        assert_eq!(out[2].0, Err("interrupted: x".to_string()));
        assert!(out.iter().all(|(_, ok)| *ok));
    }
}
