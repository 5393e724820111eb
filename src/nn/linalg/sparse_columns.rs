//! Products whose left operand has some columns that are nearly all zeros: the one-hot
//! columns of a table's categories, where one column in a category's block is 1 and the
//! rest are 0. Multiplying those zeros is most of a first layer's work on such a table
//! (101 destination airports are 101 inputs, one of them on), so [`SparseColumns`] splits
//! the product in two:
//!
//! - the dense columns go through the ordinary product, gathered into a narrower matrix;
//! - each non-zero in the sparse columns adds its weight row, scaled, to its output row
//!   (forward) or its output row's gradient, scaled, to its weight row (backward).
//!
//! The sums are the same as the full product's, in another order, so results agree to
//! rounding (not bit for bit) with the dense product.

use std::ops::Range;

use ndarray::{Array2, ArrayView1, ArrayView2, ArrayViewMut2};

use crate::nn::layer::resized;
use crate::nn::linalg::{matmul, matmul_bias};

/// Fewest mostly-zero columns worth splitting a product for, and the least share of all
/// the columns they must make up: below either, gathering the dense columns costs about
/// what it saves.
pub const MIN_SPARSE: (usize, f64) = (16, 0.25);

/// A split of a product's input columns into dense and mostly-zero (sparse) ones, with the
/// buffers the split products work in (sized at the first batch, reused after).
#[derive(Debug, Clone)]
pub struct SparseColumns {
    /// The dense columns, as runs of neighbours.
    dense_runs: Vec<Range<usize>>,
    /// The mostly-zero columns, as runs of neighbours.
    sparse_runs: Vec<Range<usize>>,
    /// The last forward's dense columns `(B, D)`, kept for the weight gradient.
    x_dense: Array2<f32>,
    /// The weight rows of the dense columns `(D, O)`.
    w_dense: Array2<f32>,
    /// The weight gradient of the dense columns `(D, O)`.
    g_dense: Array2<f32>,
}

impl SparseColumns {
    /// The split of `inputs` columns with `sparse` the mostly-zero ones, if it is worth
    /// making ([`MIN_SPARSE`]); out-of-range and repeated columns are ignored.
    pub fn new(inputs: usize, sparse: &[usize]) -> Option<SparseColumns> {
        let mut is_sparse = vec![false; inputs];
        for &c in sparse.iter().filter(|&&c| c < inputs) {
            is_sparse[c] = true;
        }
        let (sparse, dense): (Vec<usize>, Vec<usize>) = (0..inputs).partition(|&c| is_sparse[c]);
        let (fewest, share) = MIN_SPARSE;
        (sparse.len() >= fewest && sparse.len() as f64 >= share * inputs as f64).then(|| {
            SparseColumns {
                dense_runs: runs(&dense),
                sparse_runs: runs(&sparse),
                x_dense: Array2::zeros((0, 0)),
                w_dense: Array2::zeros((0, 0)),
                g_dense: Array2::zeros((0, 0)),
            }
        })
    }

    /// The mostly-zero columns.
    pub fn sparse(&self) -> Vec<usize> {
        self.sparse_runs.iter().flat_map(Range::clone).collect()
    }

    /// How many columns are dense.
    fn dense(&self) -> usize {
        self.dense_runs.iter().map(ExactSizeIterator::len).sum()
    }

    /// `y = x·w + bias`: the dense columns' product, then for every non-zero `x[r, j]` of a
    /// sparse column, `y[r, ·] += x[r, j]·w[j, ·]`.
    ///
    /// # Shapes
    /// `x` (B, I), `w` (I, O), `bias` (O), `y` (B, O).
    pub fn forward(
        &mut self,
        x: ArrayView2<f32>,
        w: ArrayView2<f32>,
        bias: ArrayView1<f32>,
        mut y: ArrayViewMut2<f32>,
    ) {
        let (rows, outputs, d) = (x.nrows(), w.ncols(), self.dense());
        let (x, w) = (x.as_standard_layout(), w.as_standard_layout());
        let (xs, ws) = (flat(x.view()), flat(w.view()));
        let inputs = x.ncols();
        let x_dense = resized(&mut self.x_dense, rows, d);
        let to = x_dense.into_slice().expect("a new array is contiguous");
        for (to, from) in to.chunks_exact_mut(d.max(1)).zip(xs.chunks_exact(inputs)) {
            gather(&self.dense_runs, from, to, 1);
        }
        let w_dense = resized(&mut self.w_dense, d, outputs);
        let to = w_dense.into_slice().expect("a new array is contiguous");
        gather(&self.dense_runs, ws, to, outputs);
        matmul_bias(self.x_dense.view(), self.w_dense.view(), bias, y.view_mut());
        // Each row of y, plus its sparse inputs' weight rows.
        if let Some(ys) = y.as_slice_mut() {
            add_sparse_products(xs, &self.sparse_runs, ws, ys, inputs, outputs);
            return;
        }
        // Rows apart in memory (a view into a wider array): a row at a time.
        for (r, from) in xs.chunks_exact(inputs).enumerate() {
            let mut out = y.row_mut(r);
            let out = out.as_slice_mut().expect("output rows are contiguous");
            add_sparse_products(from, &self.sparse_runs, ws, out, inputs, outputs);
        }
    }

    /// `g = xᵀ·dy` for the `x` of the last [`forward`](SparseColumns::forward): the dense
    /// columns' product into their rows of `g`, and each sparse column's row the sum of
    /// `x[r, j]·dy[r, ·]` over its non-zeros.
    ///
    /// # Shapes
    /// `x` (B, I), `dy` (B, O), `g` (I, O).
    pub fn grad_weight(&mut self, x: ArrayView2<f32>, dy: ArrayView2<f32>, g: ArrayViewMut2<f32>) {
        let (d, outputs) = (self.dense(), dy.ncols());
        let g_dense = resized(&mut self.g_dense, d, outputs);
        matmul(self.x_dense.t(), dy, g_dense);
        let mut g = g;
        let gs = g.as_slice_mut().expect("gradients are kept contiguous");
        // Back to the dense columns' rows, then the sparse ones' start at zero.
        let (from, mut at) = (flat(self.g_dense.view()), 0);
        for run in &self.dense_runs {
            let len = run.len() * outputs;
            gs[run.start * outputs..run.end * outputs].copy_from_slice(&from[at..at + len]);
            at += len;
        }
        for run in &self.sparse_runs {
            gs[run.start * outputs..run.end * outputs].fill(0.0);
        }
        let (x, dy) = (x.as_standard_layout(), dy.as_standard_layout());
        let inputs = x.ncols();
        // Each sparse input's weight row, plus its rows' output gradients.
        let (xs, dys) = (flat(x.view()), flat(dy.view()));
        add_sparse_gradients(xs, &self.sparse_runs, dys, gs, (inputs, outputs));
    }
}

/// `y[r, ·] += x[r, c]·w[c, ·]` for every non-zero `x[r, c]` of the sparse `runs`: the
/// forward's second half. Compiled for wider vectors too, chosen at run time
/// (`multiversion`): the same multiplications and additions in the same order (no fused
/// multiply-add), so the same bits on any processor.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "x86_64+avx"))]
fn add_sparse_products(
    xs: &[f32],
    runs: &[Range<usize>],
    ws: &[f32],
    ys: &mut [f32],
    inputs: usize,
    outputs: usize,
) {
    for (from, out) in xs.chunks_exact(inputs).zip(ys.chunks_exact_mut(outputs)) {
        for (c, v) in non_zeros(from, runs) {
            add_scaled(out, v, &ws[c * outputs..(c + 1) * outputs]);
        }
    }
}

/// `g[c, ·] += x[r, c]·dy[r, ·]` for every non-zero `x[r, c]` of the sparse `runs`: the
/// weight gradient's second half, compiled as [`add_sparse_products`] is.
#[multiversion::multiversion(targets("x86_64+avx512f", "x86_64+avx2", "x86_64+avx"))]
fn add_sparse_gradients(
    xs: &[f32],
    runs: &[Range<usize>],
    dys: &[f32],
    gs: &mut [f32],
    (inputs, outputs): (usize, usize),
) {
    for (from, grad) in xs.chunks_exact(inputs).zip(dys.chunks_exact(outputs)) {
        for (c, v) in non_zeros(from, runs) {
            add_scaled(&mut gs[c * outputs..(c + 1) * outputs], v, grad);
        }
    }
}

/// The blocks of `width` values of `from` at the `runs` (block `c` is `from[c·width..]`),
/// one after another into `to`.
fn gather(runs: &[Range<usize>], from: &[f32], to: &mut [f32], width: usize) {
    let mut at = 0;
    for run in runs {
        let len = run.len() * width;
        to[at..at + len].copy_from_slice(&from[run.start * width..run.end * width]);
        at += len;
    }
}

/// `columns` (sorted) as runs of neighbours: 0, 1, 2, 5, 6 → 0..3, 5..7.
fn runs(columns: &[usize]) -> Vec<Range<usize>> {
    let mut runs: Vec<Range<usize>> = Vec::new();
    for &c in columns {
        match runs.last_mut() {
            Some(run) if run.end == c => run.end += 1,
            _ => runs.push(c..c + 1),
        }
    }
    runs
}

/// The non-zero values of `row` in the columns `runs`, with their columns. Eight values
/// at a time are first tested together (an OR of their bits, which the compiler does in one
/// vector), since most are zero.
fn non_zeros<'a>(
    row: &'a [f32],
    runs: &'a [Range<usize>],
) -> impl Iterator<Item = (usize, f32)> + 'a {
    runs.iter().flat_map(move |run| {
        let values = &row[run.clone()];
        (values.chunks(8).enumerate())
            .filter(|(_, chunk)| chunk.iter().fold(0, |any, v| any | (v.to_bits() << 1)) != 0)
            .flat_map(move |(k, chunk)| {
                let first = run.start + 8 * k;
                (chunk.iter().enumerate())
                    .filter(|(_, v)| **v != 0.0)
                    .map(move |(i, &v)| (first + i, v))
            })
    })
}

/// A standard-layout array's elements, row after row.
fn flat(a: ArrayView2<'_, f32>) -> &[f32] {
    a.to_slice().expect("a standard-layout array is contiguous")
}

/// `to += v·from`, element by element.
#[inline]
fn add_scaled(to: &mut [f32], v: f32, from: &[f32]) {
    for (t, f) in to.iter_mut().zip(from) {
        *t += v * f;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array1, array};

    /// 40 columns: 0..10 dense, 10..40 three one-hot blocks of 10, one of them sometimes
    /// all zero (an unseen category), with a 0.5 in one row (not only ones).
    fn inputs(rows: usize) -> Array2<f32> {
        let mut x = Array2::zeros((rows, 40));
        for r in 0..rows {
            for c in 0..10 {
                x[[r, c]] = ((r * 7 + c * 3) % 11) as f32 / 5.0 - 1.0;
            }
            x[[r, 10 + r % 10]] = 1.0;
            x[[r, 20 + (r * 3) % 10]] = if r == 2 { 0.5 } else { 1.0 };
            if r % 4 != 0 {
                x[[r, 30 + (r * 7) % 10]] = 1.0;
            }
        }
        x
    }

    fn weights() -> (Array2<f32>, Array1<f32>) {
        let w = Array2::from_shape_fn((40, 6), |(i, o)| ((i * 13 + o * 5) % 17) as f32 / 8.0 - 1.0);
        let b = Array1::from_shape_fn(6, |o| o as f32 / 10.0);
        (w, b)
    }

    #[test]
    fn split_product_and_gradient_match_the_dense_ones() {
        let sparse: Vec<usize> = (10..40).collect();
        let mut split = SparseColumns::new(40, &sparse).unwrap();
        let (w, b) = weights();
        for rows in [1, 9, 33] {
            let x = inputs(rows);
            let mut y = Array2::zeros((rows, 6));
            split.forward(x.view(), w.view(), b.view(), y.view_mut());
            let expected = x.dot(&w) + &b;
            for (a, e) in y.iter().zip(&expected) {
                assert!((a - e).abs() < 1e-5, "{a} vs {e}");
            }
            let dy = Array2::from_shape_fn((rows, 6), |(r, o)| (r as f32 - o as f32) / 7.0);
            let mut g = Array2::from_elem((40, 6), f32::NAN);
            split.grad_weight(x.view(), dy.view(), g.view_mut());
            let expected = x.t().dot(&dy);
            for (a, e) in g.iter().zip(&expected) {
                assert!((a - e).abs() < 1e-5, "{a} vs {e}");
            }
        }
    }

    #[test]
    fn wide_vector_versions_give_the_scalar_loops_bits() {
        // Whichever version runs here (AVX-512, AVX2, AVX or the baseline), the sums are
        // those of the plain loops, bit for bit: 37 outputs (vectors and a remainder).
        let (rows, inputs, outputs) = (9, 20, 37);
        let runs = [2..12, 15..20];
        let value = |k: usize| ((k * 7919 % 1009) as f32 - 504.0) / 97.0;
        let x = Array2::from_shape_fn((rows, inputs), |(r, c)| {
            let on = runs.iter().any(|run| run.contains(&c)) && (r + c) % 5 == 0;
            if c < 2 || (12..15).contains(&c) || on {
                value(r * inputs + c)
            } else {
                0.0
            }
        });
        let w = Array2::from_shape_fn((inputs, outputs), |(i, o)| value(i * outputs + o + 3));
        let dy = Array2::from_shape_fn((rows, outputs), |(r, o)| value(r * outputs + o + 11));
        let (xs, ws, dys) = (flat(x.view()), flat(w.view()), flat(dy.view()));
        let mut y = Array2::from_shape_fn((rows, outputs), |(r, o)| value(r + o));
        let mut expected = y.clone();
        add_sparse_products(xs, &runs, ws, y.as_slice_mut().unwrap(), inputs, outputs);
        let mut g = Array2::from_shape_fn((inputs, outputs), |(i, o)| value(i + 2 * o));
        let mut expected_g = g.clone();
        add_sparse_gradients(xs, &runs, dys, g.as_slice_mut().unwrap(), (inputs, outputs));
        for r in 0..rows {
            for c in runs
                .iter()
                .flat_map(Range::clone)
                .filter(|&c| x[[r, c]] != 0.0)
            {
                for o in 0..outputs {
                    expected[[r, o]] += x[[r, c]] * w[[c, o]];
                    expected_g[[c, o]] += x[[r, c]] * dy[[r, o]];
                }
            }
        }
        let bits = |a: &Array2<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&y), bits(&expected));
        assert_eq!(bits(&g), bits(&expected_g));
    }

    #[test]
    fn a_hand_made_case() {
        // 16 one-hot columns after 2 dense ones: y = x·W + b by hand.
        let sparse: Vec<usize> = (2..18).collect();
        let mut split = SparseColumns::new(18, &sparse).unwrap();
        let mut w = Array2::zeros((18, 2));
        w.row_mut(0).assign(&array![1.0, 2.0]);
        w.row_mut(1).assign(&array![-1.0, 0.5]);
        w.row_mut(5).assign(&array![10.0, 20.0]);
        w.row_mut(9).assign(&array![-3.0, 4.0]);
        let mut x = Array2::zeros((2, 18));
        x.row_mut(0)
            .slice_mut(ndarray::s![..2])
            .assign(&array![1.0, 2.0]);
        x[[0, 5]] = 1.0;
        x.row_mut(1)
            .slice_mut(ndarray::s![..2])
            .assign(&array![0.5, -1.0]);
        x[[1, 9]] = 2.0;
        let b = array![0.25, -0.25];
        let mut y = Array2::zeros((2, 2));
        split.forward(x.view(), w.view(), b.view(), y.view_mut());
        // Row 0: (1·1 + 2·−1 + 10, 1·2 + 2·0.5 + 20) + b; row 1: (0.5 + 1 − 6, 1 − 0.5 + 8) + b.
        assert_eq!(y, array![[9.25, 22.75], [-4.25, 8.25]]);
        // The same into two columns of a wider array (rows apart in memory).
        let mut wide = Array2::from_elem((2, 5), 7.0);
        let view = wide.slice_mut(ndarray::s![.., 1..3]);
        split.forward(x.view(), w.view(), b.view(), view);
        assert_eq!(
            wide,
            array![[7.0, 9.25, 22.75, 7.0, 7.0], [7.0, -4.25, 8.25, 7.0, 7.0]]
        );
        let dy = array![[1.0, 0.0], [0.0, 1.0]];
        let mut g = Array2::from_elem((18, 2), f32::NAN);
        split.grad_weight(x.view(), dy.view(), g.view_mut());
        assert_eq!(g.row(0), array![1.0, 0.5]);
        assert_eq!(g.row(1), array![2.0, -1.0]);
        assert_eq!(g.row(5), array![1.0, 0.0]);
        assert_eq!(g.row(9), array![0.0, 2.0]);
        assert_eq!(g.row(3), array![0.0, 0.0]);
    }

    #[test]
    fn too_few_sparse_columns_are_not_split() {
        assert!(SparseColumns::new(40, &(25..40).collect::<Vec<_>>()).is_none());
        // 16 of 80: too small a share.
        assert!(SparseColumns::new(80, &(0..16).collect::<Vec<_>>()).is_none());
        let split = SparseColumns::new(40, &(0..16).chain([16, 99]).collect::<Vec<_>>());
        assert_eq!(split.unwrap().sparse(), (0..17).collect::<Vec<_>>());
        assert_eq!(runs(&[0, 1, 2, 5, 6, 9]), [0..3, 5..7, 9..10]);
        // Zeros of either sign are skipped; a run's chunks of 8 and its tail are all seen.
        let row: Vec<f32> = (0..30)
            .map(|c| if c % 7 == 3 { c as f32 } else { -0.0 })
            .collect();
        let found: Vec<(usize, f32)> = non_zeros(&row, &[1..12, 16..30]).collect();
        assert_eq!(found, [(3, 3.0), (10, 10.0), (17, 17.0), (24, 24.0)]);
    }
}
