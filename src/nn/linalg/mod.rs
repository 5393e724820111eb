//! The array operations every layer goes through: the matrix product, element-wise maps
//! and row sums.
//!
//! This is the one place that decides *how*; the layers say *what*. Products go through
//! the [`gemm`] crate (the pure-Rust product behind candle's and faer's CPU back ends, with
//! kernels for the CPU's widest vectors chosen at run time); XOR-sized ones run as plain
//! loops. Large products and long element-wise passes are split over the
//! [thread pool](crate::nn::linalg::threads). No split changes a result: every element is computed by
//! the same operations at any thread count (`gemm` splits the output, never the sum).

pub(crate) mod parallel;
pub mod sparse_columns;
pub mod threads;

use gemm::Parallelism;
use ndarray::{ArrayView1, ArrayView2, ArrayViewMut1, ArrayViewMut2, Zip};

use crate::nn::linalg::parallel::for_each_part;

/// Products with at most this many multiply-adds (`m·n·k`) run as plain loops: calling into
/// `gemm` costs more than they do.
const SMALL: usize = 4096;
/// Multiply-adds per thread below which splitting a product does not pay for waking a
/// worker (about 10 µs of work).
const PER_THREAD: usize = 1 << 20;

/// `c = a·b`.
///
/// `a` and `b` may be transposed views (`x.t()`): no copy is made. `c`'s old contents, even
/// NaN, do not matter.
///
/// # Shapes
/// `a` (m, k), `b` (k, n), `c` (m, n).
///
/// **Panics** if the shapes do not agree.
pub fn matmul(a: ArrayView2<f32>, b: ArrayView2<f32>, c: ArrayViewMut2<f32>) {
    product(a, b, None, c, crate::nn::linalg::threads::num_threads());
}

/// `c = a·b + bias`, the bias added to every row.
///
/// # Shapes
/// `a` (m, k), `b` (k, n), `bias` (n), `c` (m, n).
///
/// **Panics** if the shapes do not agree.
pub fn matmul_bias(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    bias: ArrayView1<f32>,
    c: ArrayViewMut2<f32>,
) {
    assert_eq!(bias.len(), b.ncols(), "matmul_bias: one bias per column");
    product(
        a,
        b,
        Some(bias),
        c,
        crate::nn::linalg::threads::num_threads(),
    );
}

/// `c = a·b (+ bias)` on up to `threads` threads.
fn product(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    bias: Option<ArrayView1<f32>>,
    mut c: ArrayViewMut2<f32>,
    threads: usize,
) {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(
        k == k2 && c.dim() == (m, n),
        "matmul: shapes {:?} · {:?} → {:?} do not agree",
        a.dim(),
        b.dim(),
        c.dim()
    );
    if m * n * k <= SMALL {
        return small_product(a, b, bias, c);
    }
    // The bias goes in first and the product is added to it: no second pass over `c`.
    if let Some(bias) = bias {
        for mut row in c.rows_mut() {
            row.assign(&bias);
        }
    }
    let parts = threads.min(m * n * k / PER_THREAD);
    if parts < 2 {
        gemm_call(a, b, bias.is_some(), c, Parallelism::None);
    } else {
        crate::nn::linalg::threads::pool()
            .install(|| gemm_call(a, b, bias.is_some(), c, Parallelism::Rayon(parts)));
    }
}

/// `c = a·b`, or `c += a·b` when `accumulate`, through `gemm`.
fn gemm_call(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    accumulate: bool,
    mut c: ArrayViewMut2<f32>,
    parallelism: Parallelism,
) {
    let ((m, k), (k2, n)) = (a.dim(), b.dim());
    assert!(k == k2 && c.dim() == (m, n), "gemm_call: shapes differ");
    let (sa, sb, sc) = (a.strides(), b.strides(), c.strides());
    let (a_rs, a_cs, b_rs, b_cs) = (sa[0], sa[1], sb[0], sb[1]);
    let (c_rs, c_cs) = (sc[0], sc[1]);
    // SAFETY: the shapes agree (checked just above), and every pointer comes with the
    // strides of the live ndarray view it was taken from, so each element gemm reads or
    // writes (row < m, column < n, depth < k) lies inside that view. `c` is a unique borrow,
    // so it overlaps neither `a` nor `b`, and it is not a broadcast view (a mutable view
    // cannot be), so no two of its elements share memory.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            c_cs,
            c_rs,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            if accumulate { 1.0 } else { 0.0 }, // c ← this·c …
            1.0,                                // … + this·a·b
            false,
            false,
            false,
            parallelism,
        )
    }
}

/// Plain loops for tiny products. Every element of `c` is the sum over `k` in ascending
/// order, then the bias: `((0 + a₀b₀) + a₁b₁) + … + bias`. The loop runs over `k` outside,
/// so consecutive additions into one element are a whole pass of `c` apart and never wait
/// on each other (a dot product per element waits on every previous addition).
fn small_product(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    bias: Option<ArrayView1<f32>>,
    mut c: ArrayViewMut2<f32>,
) {
    let n = b.ncols();
    let Some(out) = c.as_slice_mut().filter(|_| n > 0 && n <= SMALL) else {
        return dot_product_per_element(a, b, bias, c);
    };
    // An output narrower than a vector (a network's last layer of 1 to 7 units): the
    // pass below would run one number at a time.
    match n {
        1 => return narrow_product::<1>(a, b, bias, out),
        2 => return narrow_product::<2>(a, b, bias, out),
        3 => return narrow_product::<3>(a, b, bias, out),
        4 => return narrow_product::<4>(a, b, bias, out),
        5 => return narrow_product::<5>(a, b, bias, out),
        6 => return narrow_product::<6>(a, b, bias, out),
        7 => return narrow_product::<7>(a, b, bias, out),
        _ => {}
    }
    out.fill(0.0);
    let mut b_row = [0.0f32; SMALL];
    for (k, a_column) in a.columns().into_iter().enumerate() {
        let b_row = &mut b_row[..n];
        for (slot, &y) in b_row.iter_mut().zip(b.row(k)) {
            *slot = y;
        }
        for (&x, c_row) in a_column.iter().zip(out.chunks_exact_mut(n)) {
            for (c, &y) in c_row.iter_mut().zip(b_row.iter()) {
                // Not `mul_add`: without FMA in the target that is a slow library call.
                *c += x * y;
            }
        }
    }
    if let Some(bias) = bias {
        for c_row in out.chunks_exact_mut(n) {
            for (c, &b) in c_row.iter_mut().zip(bias) {
                *c += b;
            }
        }
    }
}

/// [`small_product`] for `N` (fewer than 8) output columns: the dot products of four rows
/// at a time, the same additions in the same order as [`dot_product_per_element`], with the
/// `4·N` sums held in registers and independent of each other, so that they do not wait on
/// one another's additions.
fn narrow_product<const N: usize>(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    bias: Option<ArrayView1<f32>>,
    out: &mut [f32],
) {
    const ROWS: usize = 4;
    let (m, depth) = a.dim();
    // `b`'s row k, read N at a time for every row of `a` (no allocation: training steps
    // allocate nothing on this path).
    let b_row = |k: usize| -> [f32; N] { std::array::from_fn(|j| b[[k, j]]) };
    let bias: [f32; N] = std::array::from_fn(|j| bias.map_or(0.0, |bias| bias[j]));
    for (block, out) in out.chunks_mut(ROWS * N).enumerate() {
        let first = block * ROWS;
        let rows = (m - first).min(ROWS);
        let a_rows: [ArrayView1<f32>; ROWS] =
            std::array::from_fn(|r| a.row(first + r.min(rows - 1)));
        let mut sums = [[0.0f32; N]; ROWS];
        for k in 0..depth {
            let b_row = b_row(k);
            for (sum, a_row) in sums.iter_mut().zip(&a_rows) {
                let x = a_row[k];
                for (s, &y) in sum.iter_mut().zip(&b_row) {
                    *s += x * y;
                }
            }
        }
        for (c_row, sum) in out.chunks_exact_mut(N).zip(&sums) {
            for ((c, &s), &b) in c_row.iter_mut().zip(sum).zip(&bias) {
                *c = s + b;
            }
        }
    }
}

/// [`small_product`] for an output that is not one contiguous block: one dot product per
/// element, the same additions in the same order.
fn dot_product_per_element(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    bias: Option<ArrayView1<f32>>,
    mut c: ArrayViewMut2<f32>,
) {
    for (i, mut row) in c.rows_mut().into_iter().enumerate() {
        for (j, c) in row.iter_mut().enumerate() {
            let mut acc = 0.0;
            for (&x, &y) in a.row(i).iter().zip(b.column(j)) {
                acc += x * y;
            }
            *c = acc + bias.map_or(0.0, |bias| bias[j]);
        }
    }
}

/// `y = f(x)`, element by element.
///
/// **Panics** if the shapes differ.
pub fn map_into(x: ArrayView2<f32>, mut y: ArrayViewMut2<f32>, f: impl Fn(f32) -> f32 + Sync) {
    assert_eq!(x.dim(), y.dim(), "map_into: shapes differ");
    match (x.as_slice(), y.as_slice_mut()) {
        (Some(x), Some(y)) => for_each_part((y, x), |(y, x)| {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = f(x);
            }
        }),
        _ => Zip::from(&mut y).and(&x).for_each(|y, &x| *y = f(x)),
    }
}

/// `out = f(a, b)`, element by element.
///
/// **Panics** if the shapes differ.
pub fn zip_map_into(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    mut out: ArrayViewMut2<f32>,
    f: impl Fn(f32, f32) -> f32 + Sync,
) {
    assert!(
        a.dim() == out.dim() && b.dim() == out.dim(),
        "zip_map_into: shapes differ"
    );
    match (a.as_slice(), b.as_slice(), out.as_slice_mut()) {
        (Some(a), Some(b), Some(out)) => for_each_part((out, a, b), |(out, a, b)| {
            for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
                *o = f(a, b);
            }
        }),
        _ => Zip::from(&mut out)
            .and(&a)
            .and(&b)
            .for_each(|o, &a, &b| *o = f(a, b)),
    }
}

/// `sums = Σ_rows x`, the column sums, each added up in row order.
///
/// # Shapes
/// `x` (m, n), `sums` (n).
///
/// **Panics** if the shapes do not agree.
pub fn sum_rows(x: ArrayView2<f32>, mut sums: ArrayViewMut1<f32>) {
    assert_eq!(x.ncols(), sums.len(), "sum_rows: one sum per column");
    sums.fill(0.0);
    for row in x.rows() {
        sums += &row;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, Array2, ShapeBuilder, array, s};
    use ndarray_rand::RandomExt;
    use ndarray_rand::rand::{SeedableRng, rngs::StdRng};
    use ndarray_rand::rand_distr::Uniform;

    fn random(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        Array2::random_using((rows, cols), Uniform::new(-1.0f32, 1.0).unwrap(), &mut rng)
    }

    /// `a·b + bias` in f64, through ndarray's own product.
    fn reference(a: ArrayView2<f32>, b: ArrayView2<f32>, bias: &Array1<f32>) -> Array2<f64> {
        a.mapv(f64::from).dot(&b.mapv(f64::from)) + bias.mapv(f64::from)
    }

    fn assert_close(got: ArrayView2<f32>, want: &Array2<f64>, k: usize, what: &str) {
        let tol = 1e-5 * (k as f64).sqrt().max(1.0) * 4.0;
        for ((i, j), &g) in got.indexed_iter() {
            let w = want[[i, j]];
            assert!(
                (g as f64 - w).abs() <= tol * (1.0 + w.abs()),
                "{what}: C[{i},{j}] = {g}, want {w}"
            );
        }
    }

    #[test]
    fn products_match_a_reference_on_awkward_shapes() {
        let shapes = [
            (1, 1, 1),
            (4, 2, 4),
            (3, 7, 5),
            (17, 33, 9),
            (32, 64, 128),
            (33, 65, 129),
            (100, 300, 70),
            (9, 520, 41),
            (513, 20, 10),
            (64, 700, 40),
            (5, 0, 3),
        ];
        for &(m, k, n) in &shapes {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a_store = if ta { random(k, m, 1) } else { random(m, k, 1) };
                let b_store = if tb { random(n, k, 2) } else { random(k, n, 2) };
                let a = if ta { a_store.t() } else { a_store.view() };
                let b = if tb { b_store.t() } else { b_store.view() };
                let what = format!("{m}x{k}x{n} ta={ta} tb={tb}");
                let mut c = Array2::from_elem((m, n), f32::NAN);
                matmul(a, b, c.view_mut());
                assert_close(c.view(), &reference(a, b, &Array1::zeros(n)), k, &what);
                let bias = random(1, n, 3).row(0).to_owned();
                matmul_bias(a, b, bias.view(), c.view_mut());
                assert_close(c.view(), &reference(a, b, &bias), k, &what);
            }
        }
    }

    #[test]
    fn small_products_equal_a_dot_product_per_element_to_the_bit() {
        for &(m, k, n) in &[
            (32, 64, 2),
            (64, 32, 2),
            (30, 40, 1),
            (7, 9, 3),
            (5, 100, 7),
            (2, 1000, 4),
            (32, 2, 64),
            (3, 7, 5),
            (1, 1, 1),
            (0, 3, 5000),
        ] {
            for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                let a_store = if ta { random(k, m, 4) } else { random(m, k, 4) };
                let b_store = if tb { random(n, k, 5) } else { random(k, n, 5) };
                let a = if ta { a_store.t() } else { a_store.view() };
                let b = if tb { b_store.t() } else { b_store.view() };
                let bias = random(1, n, 6).row(0).to_owned();
                for bias in [None, Some(bias.view())] {
                    let mut fast = Array2::from_elem((m, n), f32::NAN);
                    let mut slow = Array2::from_elem((m, n), f32::NAN);
                    small_product(a, b, bias, fast.view_mut());
                    dot_product_per_element(a, b, bias, slow.view_mut());
                    let bits = |c: &Array2<f32>| c.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&fast), bits(&slow), "{m}x{k}x{n} ta={ta} tb={tb}");
                }
            }
        }
    }

    // NumPy: [[1,2],[3,4]] @ [[5,6],[7,8]] + [10,20] -> [[29,42],[53,70]]
    #[test]
    fn literal_product_with_bias() {
        let mut c = Array2::zeros((2, 2));
        matmul_bias(
            array![[1.0, 2.0], [3.0, 4.0]].view(),
            array![[5.0, 6.0], [7.0, 8.0]].view(),
            array![10.0, 20.0].view(),
            c.view_mut(),
        );
        assert_eq!(c, array![[29.0, 42.0], [53.0, 70.0]]);
    }

    #[test]
    fn strided_and_column_major_outputs() {
        let a = random(30, 40, 1);
        let b = random(40, 50, 2);
        let want = reference(a.view(), b.view(), &Array1::zeros(50));
        let mut c = Array2::<f32>::zeros((30, 50).f());
        matmul(a.view(), b.view(), c.view_mut());
        assert_close(c.view(), &want, 40, "column-major C");
        let mut big = Array2::<f32>::zeros((60, 100));
        matmul(a.view(), b.view(), big.slice_mut(s![..;2, ..;2]));
        assert_close(big.slice(s![..;2, ..;2]), &want, 40, "strided C");
        let reversed = a.slice(s![..;-1, ..]);
        matmul(reversed, b.view(), c.view_mut());
        let want = reference(reversed, b.view(), &Array1::zeros(50));
        assert_close(c.view(), &want, 40, "negative strides");
    }

    /// The products of a training step on W3's and W4's layers (forward, dW = xᵀ·dy,
    /// dx = dy·Wᵀ), and a long inner dimension: the same bits at 1, 2, 3 and 8 threads.
    #[test]
    fn products_do_not_depend_on_the_thread_count() {
        for (batch, inputs, outputs) in [(128, 784, 256), (512, 1024, 1024), (64, 5000, 40)] {
            let x = random(batch, inputs, 1);
            let w = random(inputs, outputs, 2);
            let dy = random(batch, outputs, 3);
            let bias = random(1, outputs, 4).row(0).to_owned();
            let run = |threads| {
                let mut y = Array2::zeros((batch, outputs));
                product(x.view(), w.view(), Some(bias.view()), y.view_mut(), threads);
                let mut dw = Array2::zeros((inputs, outputs));
                product(x.t(), dy.view(), None, dw.view_mut(), threads);
                let mut dx = Array2::zeros((batch, inputs));
                product(dy.view(), w.t(), None, dx.view_mut(), threads);
                (y, dw, dx)
            };
            let one = run(1);
            for threads in [2, 3, 8] {
                assert!(
                    run(threads) == one,
                    "{batch}x{inputs}x{outputs}, {threads} threads"
                );
            }
        }
    }

    #[test]
    fn maps_and_row_sums() {
        let x = array![[1.0, -2.0], [3.0, 4.0], [0.5, 0.25]];
        let mut y = Array2::zeros((3, 2));
        map_into(x.view(), y.view_mut(), |v| 2.0 * v);
        assert_eq!(y, array![[2.0, -4.0], [6.0, 8.0], [1.0, 0.5]]);
        let mut z = Array2::zeros((3, 2));
        zip_map_into(x.view(), y.view(), z.view_mut(), |a, b| a * b);
        assert_eq!(z, array![[2.0, 8.0], [18.0, 32.0], [0.5, 0.125]]);
        let mut sums = Array1::from_elem(2, f32::NAN);
        sum_rows(x.view(), sums.view_mut());
        assert_eq!(sums, array![4.5, 2.25]);
        // Transposed (not contiguous) inputs take the general path.
        let mut yt = Array2::zeros((2, 3));
        map_into(x.t(), yt.view_mut(), |v| v + 1.0);
        assert_eq!(yt, array![[2.0, 4.0, 1.5], [-1.0, 5.0, 1.25]]);
    }
}
