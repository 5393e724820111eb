//! The one matrix product every layer goes through.
//!
//! [`matmul`] computes `C = A·B + β·C` for views with any strides (so `x.t()` costs
//! nothing). Tiny products (XOR-sized) run as plain loops; everything else goes through a
//! blocked, packed product with a micro-kernel for the CPU's widest vectors (AVX-512,
//! AVX2 + FMA, or portable code), chosen at run time, and large products are split over
//! [`num_threads`](crate::threads::num_threads) threads. The split never changes a result:
//! every element is computed by the same operations at any thread count.
//!
//! Nothing here allocates once its per-thread packing buffers have grown to the largest
//! product seen.

mod gemm;
mod kernels;
mod pool;

use ndarray::{ArrayView1, ArrayView2, ArrayViewMut2};

use gemm::{Operand, Problem, gemm_part};
use kernels::Isa;

/// Products with at most this many multiply-adds (`m·n·k`) run as plain loops: packing
/// would cost more than it saves.
const SMALL: usize = 4096;
/// Multiply-adds per thread below which splitting a product does not pay for waking a
/// worker (about 10 µs of work).
const PER_THREAD: usize = 1 << 20;

/// `c = a·b + beta·c`.
///
/// `a` and `b` may be transposed views (`x.t()`): no copy is made. With `beta == 0`, `c` is
/// only written (its old contents, even NaN, do not matter).
///
/// # Shapes
/// `a` (m, k), `b` (k, n), `c` (m, n).
///
/// **Panics** if the shapes do not agree.
pub fn matmul(a: ArrayView2<f32>, b: ArrayView2<f32>, beta: f32, c: &mut ArrayViewMut2<f32>) {
    product(a, b, beta, None, c);
}

/// `c = a·b + bias`, the bias added to every row as the product is stored: no separate
/// pass over `c`.
///
/// # Shapes
/// `a` (m, k), `b` (k, n), `bias` (n), `c` (m, n).
///
/// **Panics** if the shapes do not agree.
pub fn matmul_bias(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    bias: ArrayView1<f32>,
    c: &mut ArrayViewMut2<f32>,
) {
    assert_eq!(bias.len(), b.ncols(), "matmul_bias: one bias per column");
    let bias = bias.as_standard_layout();
    product(a, b, 0.0, Some(bias.as_ptr()), c);
}

fn product(
    a: ArrayView2<f32>,
    b: ArrayView2<f32>,
    beta: f32,
    bias: Option<*const f32>,
    c: &mut ArrayViewMut2<f32>,
) {
    let (m, k) = a.dim();
    let (k2, n) = b.dim();
    assert!(
        k == k2 && c.dim() == (m, n),
        "matmul: shapes {:?} · {:?} → {:?} do not agree",
        a.dim(),
        b.dim(),
        c.dim()
    );
    let (sa, sb) = (a.strides(), b.strides());
    let (rsc, csc) = (c.strides()[0], c.strides()[1]);
    let p = Problem {
        m,
        n,
        k,
        a: Operand {
            ptr: a.as_ptr(),
            rs: sa[0],
            cs: sa[1],
        },
        b: Operand {
            ptr: b.as_ptr(),
            rs: sb[0],
            cs: sb[1],
        },
        c: c.as_mut_ptr(),
        rsc,
        csc,
        beta,
        bias: bias.unwrap_or(std::ptr::null()),
    };
    // SAFETY: the pointers and strides come from live views of the checked shapes, and `c`
    // is borrowed mutably for the whole call.
    unsafe { run(&p, Isa::detect()) }
}

/// Computes `p` with the kernel for `isa`.
///
/// # Safety
/// `p` must describe valid, non-overlapping A, B and C; `isa` must be supported by the CPU.
unsafe fn run(p: &Problem, isa: Isa) {
    if p.m == 0 || p.n == 0 {
        return;
    }
    let work = p.m * p.n * p.k;
    if p.k == 0 || work <= SMALL {
        // SAFETY: as for this function.
        unsafe { small(p) };
        return;
    }
    let kernel = isa.kernel();
    let (mr, nr) = (kernel.mr, kernel.nr);
    let parts = crate::threads::num_threads().min(work / PER_THREAD).max(1);
    if parts == 1 {
        gemm_part(p, kernel, 0..p.m, 0..p.n);
        return;
    }
    // Split into `parts` ranges of whole tiles. Each part packs all of the operand it
    // shares: splitting columns repeats A's packing (m·k), splitting rows repeats B's (k·n),
    // so split the columns when A is the smaller, if there are enough column tiles.
    let (row_tiles, col_tiles) = (p.m.div_ceil(mr), p.n.div_ceil(nr));
    let by_columns = if p.m <= p.n {
        col_tiles >= parts || col_tiles >= row_tiles
    } else {
        row_tiles < parts && col_tiles > row_tiles
    };
    let tiles = if by_columns { col_tiles } else { row_tiles };
    let parts = parts.min(tiles);
    let range = |t: usize| {
        let (unit, len) = if by_columns { (nr, p.n) } else { (mr, p.m) };
        (tiles * t / parts * unit).min(len)..(tiles * (t + 1) / parts * unit).min(len)
    };
    pool::run(parts, &|t| {
        if by_columns {
            gemm_part(p, kernel, 0..p.m, range(t));
        } else {
            gemm_part(p, kernel, range(t), 0..p.n);
        }
    });
}

/// Plain loops for tiny products: one dot product per element of C.
///
/// # Safety
/// As for [`run`].
unsafe fn small(p: &Problem) {
    unsafe {
        for i in 0..p.m {
            for j in 0..p.n {
                let mut acc = 0f32;
                let a = p.a.ptr.offset(i as isize * p.a.rs);
                let b = p.b.ptr.offset(j as isize * p.b.cs);
                for q in 0..p.k as isize {
                    // Not `mul_add`: without FMA in the target that is a slow library call.
                    acc += *a.offset(q * p.a.cs) * *b.offset(q * p.b.rs);
                }
                if !p.bias.is_null() {
                    acc += *p.bias.add(j);
                }
                let c = p.c.offset(i as isize * p.rsc + j as isize * p.csc);
                *c = if p.beta == 0.0 {
                    acc
                } else {
                    p.beta * *c + acc
                };
            }
        }
    }
}

/// Runs `f(0) … f(parts − 1)` on the shared thread pool (for other element-wise work).
pub(crate) fn run_parts(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    pool::run(parts, f);
}

/// The name of the micro-kernel in use (for benchmark reports).
pub fn kernel_name() -> &'static str {
    Isa::detect().kernel().name
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{Array2, ShapeBuilder, s};
    use ndarray_rand::RandomExt;
    use ndarray_rand::rand::{SeedableRng, rngs::StdRng};
    use ndarray_rand::rand_distr::Uniform;

    fn random(rows: usize, cols: usize, seed: u64) -> Array2<f32> {
        let mut rng = StdRng::seed_from_u64(seed);
        Array2::random_using((rows, cols), Uniform::new(-1.0f32, 1.0).unwrap(), &mut rng)
    }

    /// The product in f64, element by element.
    fn reference(a: ArrayView2<f32>, b: ArrayView2<f32>) -> Array2<f64> {
        let a = a.mapv(|v| v as f64);
        let b = b.mapv(|v| v as f64);
        a.dot(&b)
    }

    fn check(
        isa: Isa,
        m: usize,
        k: usize,
        n: usize,
        transpose_a: bool,
        transpose_b: bool,
        beta: f32,
    ) {
        let a_store = if transpose_a {
            random(k, m, 1)
        } else {
            random(m, k, 1)
        };
        let b_store = if transpose_b {
            random(n, k, 2)
        } else {
            random(k, n, 2)
        };
        let a = if transpose_a {
            a_store.t()
        } else {
            a_store.view()
        };
        let b = if transpose_b {
            b_store.t()
        } else {
            b_store.view()
        };
        let c0 = random(m, n, 3);
        let mut c = c0.clone();
        let p = Problem {
            m,
            n,
            k,
            a: Operand {
                ptr: a.as_ptr(),
                rs: a.strides()[0],
                cs: a.strides()[1],
            },
            b: Operand {
                ptr: b.as_ptr(),
                rs: b.strides()[0],
                cs: b.strides()[1],
            },
            c: c.as_mut_ptr(),
            rsc: n as isize,
            csc: 1,
            beta,
            bias: std::ptr::null(),
        };
        unsafe { run(&p, isa) };
        let want = reference(a, b) + c0.mapv(|v| v as f64 * beta as f64);
        let tol = 1e-5 * (k as f64).sqrt().max(1.0) * 4.0;
        for ((i, j), &got) in c.indexed_iter() {
            let w = want[[i, j]];
            assert!(
                (got as f64 - w).abs() <= tol * (1.0 + w.abs()),
                "{isa:?} {m}x{k}x{n} ta={transpose_a} tb={transpose_b} beta={beta}: \
                 C[{i},{j}] = {got}, want {w}"
            );
        }
    }

    #[test]
    fn every_kernel_matches_a_reference_on_awkward_shapes() {
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
        ];
        for (isa, pack) in kernels::supported()
            .into_iter()
            .flat_map(|i| [(i, false), (i, true)])
        {
            gemm::FORCE_PACKING.store(pack, std::sync::atomic::Ordering::Relaxed);
            for &(m, k, n) in &shapes {
                for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
                    for beta in [0.0, 1.0, 0.5] {
                        check(isa, m, k, n, ta, tb, beta);
                    }
                }
            }
        }
        gemm::FORCE_PACKING.store(false, std::sync::atomic::Ordering::Relaxed);
    }

    #[test]
    fn bias_is_added_to_every_row() {
        for (m, k, n) in [(3, 4, 5), (40, 50, 70), (130, 90, 33)] {
            let a = random(m, k, 1);
            let b = random(k, n, 2);
            let bias = random(1, n, 3).row(0).to_owned();
            let mut c = Array2::from_elem((m, n), f32::NAN);
            matmul_bias(a.view(), b.view(), bias.view(), &mut c.view_mut());
            let want = a.dot(&b) + &bias;
            assert!(
                c.iter().zip(want.iter()).all(|(x, y)| (x - y).abs() < 1e-4),
                "{m}x{k}x{n}"
            );
        }
    }

    #[test]
    fn beta_zero_ignores_nan_in_c() {
        let a = random(40, 50, 1);
        let b = random(50, 60, 2);
        let mut c = Array2::from_elem((40, 60), f32::NAN);
        matmul(a.view(), b.view(), 0.0, &mut c.view_mut());
        assert!(c.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn strided_and_column_major_outputs() {
        let a = random(30, 40, 1);
        let b = random(40, 50, 2);
        let want = a.dot(&b);
        // C as a column-major array and as a strided slice of a bigger one.
        let mut c = Array2::<f32>::zeros((30, 50).f());
        matmul(a.view(), b.view(), 0.0, &mut c.view_mut());
        assert!(c.iter().zip(want.iter()).all(|(x, y)| (x - y).abs() < 1e-4));
        let mut big = Array2::<f32>::zeros((60, 100));
        let mut view = big.slice_mut(s![..;2, ..;2]);
        matmul(a.view(), b.view(), 0.0, &mut view);
        assert!(
            view.iter()
                .zip(want.iter())
                .all(|(x, y)| (x - y).abs() < 1e-4)
        );
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        let a = random(256, 300, 1);
        let b = random(300, 520, 2);
        let bt = random(520, 300, 3);
        let mut outs = Vec::new();
        for threads in [1, 2, 3] {
            crate::threads::set_num_threads(threads);
            let mut c = Array2::zeros((256, 520));
            matmul(a.view(), b.view(), 0.0, &mut c.view_mut());
            let mut d = Array2::zeros((300, 300));
            matmul(a.t(), a.view(), 0.0, &mut d.view_mut());
            let mut e = Array2::zeros((256, 520));
            matmul(a.view(), bt.t(), 0.0, &mut e.view_mut());
            outs.push((c, d, e));
        }
        crate::threads::set_num_threads(0);
        assert!(outs.windows(2).all(|w| w[0] == w[1]));
    }
}
