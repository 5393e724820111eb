//! Element-wise work split over the matrix product's thread pool.
//!
//! The passes between matrix products (activations and their derivatives, copies, the
//! optimizer's update) are memory-bound and, for wide layers, take a fifth of a training
//! step on one core. Large ones are split into contiguous ranges, one per thread; small ones
//! (most of a tiny network's) run on the calling thread, since waking a worker costs more
//! than they do. Every element is computed by the same operations wherever it lands, so the
//! split never changes a result.

use std::ops::Range;

/// Elements per thread below which splitting does not pay.
pub(crate) const MIN_PER_THREAD: usize = 1 << 16;

/// How many parts to split `len` elements into.
fn parts(len: usize) -> usize {
    crate::threads::num_threads()
        .min(len / MIN_PER_THREAD)
        .max(1)
}

/// Part `t` of `parts` equal-ish ranges covering `0..len`.
fn range(len: usize, parts: usize, t: usize) -> Range<usize> {
    len * t / parts..len * (t + 1) / parts
}

/// Calls `f(range)` on disjoint ranges covering `0..len`, in parallel when `len` is large.
pub(crate) fn for_ranges(len: usize, f: &(dyn Fn(Range<usize>) + Sync)) {
    for_ranges_weighted(len, len, f);
}

/// Like [`for_ranges`] when the whole job touches `work` elements (for example the
/// columns of a matrix, `len` of them, with `work = rows × len`).
pub(crate) fn for_ranges_weighted(len: usize, work: usize, f: &(dyn Fn(Range<usize>) + Sync)) {
    let parts = parts(work).min(len.max(1));
    if parts == 1 {
        f(0..len);
    } else {
        crate::linalg::run_parts(parts, &|t| f(range(len, parts, t)));
    }
}

/// A pointer that may cross threads: each thread touches a disjoint range.
pub(crate) struct Shared<T>(*mut T);
// SAFETY: used only to hand disjoint sub-slices of one slice to different threads.
unsafe impl<T> Send for Shared<T> {}
unsafe impl<T> Sync for Shared<T> {}

impl<T> Shared<T> {
    /// Shares `slice` for [`part`](Shared::part).
    pub(crate) fn new(slice: &mut [T]) -> Self {
        Shared(slice.as_mut_ptr())
    }

    /// The elements `range` of the slice this came from.
    ///
    /// # Safety
    /// The range must be inside the slice the pointer came from, and no other live
    /// reference may overlap it.
    #[allow(clippy::mut_from_ref)]
    pub(crate) unsafe fn part(&self, range: Range<usize>) -> &mut [T] {
        unsafe { std::slice::from_raw_parts_mut(self.0.add(range.start), range.len()) }
    }
}

/// Calls `f(offset, out_part, in_part)` on matching disjoint parts of `out` and `input`
/// (equal lengths), in parallel when they are long.
///
/// **Panics** if the lengths differ.
pub(crate) fn zip_mut<A: Sync, B: Send>(
    out: &mut [B],
    input: &[A],
    f: &(dyn Fn(&mut [B], &[A]) + Sync),
) {
    assert_eq!(out.len(), input.len(), "zip_mut: lengths differ");
    let len = out.len();
    let parts = parts(len);
    if parts == 1 {
        f(out, input);
        return;
    }
    let out_ptr = Shared(out.as_mut_ptr());
    crate::linalg::run_parts(parts, &|t| {
        let r = range(len, parts, t);
        // SAFETY: the ranges of different parts are disjoint and inside `out`.
        let out = unsafe { out_ptr.part(r.clone()) };
        f(out, &input[r]);
    });
}

/// A function over matching parts of one output and two inputs.
type Zip2<'f, A, B, C> = &'f (dyn Fn(&mut [C], &[A], &[B]) + Sync);

/// Like [`zip_mut`] with two inputs.
pub(crate) fn zip2_mut<A: Sync, B: Sync, C: Send>(
    out: &mut [C],
    a: &[A],
    b: &[B],
    f: Zip2<'_, A, B, C>,
) {
    assert!(
        out.len() == a.len() && out.len() == b.len(),
        "zip2_mut: lengths differ"
    );
    let len = out.len();
    let parts = parts(len);
    if parts == 1 {
        f(out, a, b);
        return;
    }
    let out_ptr = Shared(out.as_mut_ptr());
    crate::linalg::run_parts(parts, &|t| {
        let r = range(len, parts, t);
        // SAFETY: the ranges of different parts are disjoint and inside `out`.
        let out = unsafe { out_ptr.part(r.clone()) };
        f(out, &a[r.clone()], &b[r]);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_element_is_visited_once_at_any_thread_count() {
        for threads in [1, 2, 3] {
            crate::threads::set_num_threads(threads);
            for len in [0, 1, 1000, 3 * MIN_PER_THREAD + 7] {
                let input: Vec<u32> = (0..len as u32).collect();
                let mut out = vec![0u32; len];
                zip_mut(&mut out, &input, &|o, i| {
                    for (o, &i) in o.iter_mut().zip(i) {
                        *o += i + 1;
                    }
                });
                assert!(out.iter().enumerate().all(|(k, &v)| v == k as u32 + 1));
                let mut out2 = vec![0u32; len];
                zip2_mut(&mut out2, &input, &out, &|o, a, b| {
                    for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
                        *o = a + b;
                    }
                });
                assert!(out2.iter().enumerate().all(|(k, &v)| v == 2 * k as u32 + 1));
            }
        }
        crate::threads::set_num_threads(0);
    }
}
