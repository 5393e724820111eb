//! Element-wise work split over the [thread pool](crate::nn::linalg::threads).
//!
//! The passes between matrix products (activations and their derivatives, the optimizer's
//! update) are memory-bound and, for wide layers, take a few percent of a training step.
//! Long ones are cut into contiguous parts, one per thread, run with `rayon::join`; short
//! ones (all of a tiny network's) run on the calling thread, since waking a worker costs
//! more than they do. Every element is computed by the same operations wherever it lands, so
//! the split never changes a result.

/// Elements per thread below which splitting does not pay.
pub(crate) const MIN_PER_THREAD: usize = 1 << 16;

/// Equal-length slices cut at the same place: `&mut [T]`, `&[T]` and tuples of them.
pub(crate) trait Split: Sized + Send {
    /// The length every slice shares.
    fn len(&self) -> usize;
    /// The first `mid` elements of every slice, and the rest.
    fn split_at(self, mid: usize) -> (Self, Self);
}

impl<T: Send> Split for &mut [T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        self.split_at_mut(mid)
    }
}

impl<T: Sync> Split for &[T] {
    fn len(&self) -> usize {
        <[T]>::len(self)
    }
    fn split_at(self, mid: usize) -> (Self, Self) {
        <[T]>::split_at(self, mid)
    }
}

macro_rules! split_tuple {
    ($first:ident $($rest:ident)*) => {
        impl<$first: Split, $($rest: Split),*> Split for ($first, $($rest),*) {
            fn len(&self) -> usize {
                #[allow(non_snake_case)]
                let ($first, $($rest),*) = self;
                let len = $first.len();
                assert!($(len == $rest.len())&&*, "parallel: slices of different lengths");
                len
            }
            fn split_at(self, mid: usize) -> (Self, Self) {
                #[allow(non_snake_case)]
                let ($first, $($rest),*) = self;
                #[allow(non_snake_case)]
                let ($first, $($rest),*) = ($first.split_at(mid), $($rest.split_at(mid)),*);
                (($first.0, $($rest.0),*), ($first.1, $($rest.1),*))
            }
        }
    };
}
split_tuple!(A B);
split_tuple!(A B C);
split_tuple!(A B C D);

/// Calls `f` on matching parts of the slices in `data` (for example
/// `(&mut out[..], &input[..])`), covering every element once: one call with everything
/// when the slices are short or one thread is set, else one call per thread on the pool.
///
/// **Panics** if the slices' lengths differ, or if `f` panics (on any thread).
pub(crate) fn for_each_part<S: Split>(data: S, f: impl Fn(S) + Sync) {
    let parts = crate::nn::linalg::threads::num_threads()
        .min(data.len() / MIN_PER_THREAD)
        .max(1);
    if parts == 1 {
        f(data);
    } else {
        crate::nn::linalg::threads::pool().install(|| split(data, parts, &f));
    }
}

/// Cuts `data` into `parts` near-equal parts and runs `f` on them in parallel.
fn split<S: Split>(data: S, parts: usize, f: &(impl Fn(S) + Sync)) {
    if parts == 1 {
        return f(data);
    }
    let left = parts / 2;
    let mid = data.len() * left / parts;
    let (a, b) = data.split_at(mid);
    rayon::join(|| split(a, left, f), || split(b, parts - left, f));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_element_is_visited_once_at_any_thread_count() {
        for threads in [1, 2, 3] {
            crate::nn::linalg::threads::set_num_threads(threads);
            for len in [0, 1, 1000, 3 * MIN_PER_THREAD + 7] {
                let input: Vec<u32> = (0..len as u32).collect();
                let mut out = vec![0u32; len];
                for_each_part((&mut out[..], &input[..]), |(out, input)| {
                    for (o, &i) in out.iter_mut().zip(input) {
                        *o += i + 1;
                    }
                });
                assert!(out.iter().enumerate().all(|(k, &v)| v == k as u32 + 1));
                let mut sum = vec![0u32; len];
                let mut seen = vec![0u32; len];
                for_each_part(
                    (&mut sum[..], &input[..], &out[..], &mut seen[..]),
                    |(sum, a, b, seen)| {
                        for (((s, &a), &b), n) in sum.iter_mut().zip(a).zip(b).zip(seen) {
                            *s = a + b;
                            *n += 1;
                        }
                    },
                );
                assert!(sum.iter().enumerate().all(|(k, &v)| v == 2 * k as u32 + 1));
                assert!(seen.iter().all(|&n| n == 1));
            }
        }
        crate::nn::linalg::threads::set_num_threads(0);
    }

    #[test]
    fn a_panic_in_a_part_reaches_the_caller() {
        crate::nn::linalg::threads::set_num_threads(2);
        let mut out = vec![0f32; 4 * MIN_PER_THREAD];
        let start = out.as_ptr() as usize;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for_each_part(&mut out[..], |part| {
                // Only the second part panics, while the first runs on another thread.
                if part.as_ptr() as usize != start {
                    panic!("a part failed");
                }
                part.fill(1.0);
            });
        }));
        crate::nn::linalg::threads::set_num_threads(0);
        let err = result.expect_err("the panic must propagate, not hang or vanish");
        assert_eq!(err.downcast_ref::<&str>(), Some(&"a part failed"));
    }
}
