//! The one matrix product every layer goes through, so the backend can be chosen in one place.

use ndarray::{ArrayView2, ArrayViewMut2, linalg::general_mat_mul};

/// `c = a·b + beta·c`.
///
/// `a` and `b` may be transposed views (`x.t()`): no copy is made.
///
/// # Shapes
/// `a` (m, k), `b` (k, n), `c` (m, n).
///
/// **Panics** if the shapes do not agree.
pub fn matmul(a: ArrayView2<f32>, b: ArrayView2<f32>, beta: f32, c: &mut ArrayViewMut2<f32>) {
    general_mat_mul(1.0, &a, &b, beta, c);
}
