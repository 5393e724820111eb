//! Micro-kernels: one `MR × NR` tile of `C = A·B + β·C`.
//!
//! A kernel keeps the `MR × NR` sums in registers for all `kc` steps of the inner
//! dimension (per step: one vector of `B[p, ·]`, and per row one broadcast of `A[i, p]`
//! times it) and touches `C` once at the end.
//!
//! Operands are described by strides, so that the same kernel reads packed panels (the
//! usual case, made by `gemm.rs`) or, for small products, the matrices in place:
//! `A[i, p]` is at `a + i·a_rs + p·a_ps` (a packed panel has `a_rs = 1, a_ps = MR`), and
//! `B[p, j]` at `b + p·b_ps + j` (a packed panel has `b_ps = NR`; B's columns are always
//! contiguous). At the edges of C only the first `rows × cols` of the tile are read and
//! written, and no row of A past `rows` nor column of B past `cols` is read.
//!
//! Three kernels, chosen at run time: AVX-512 (8 × 32), AVX2 + FMA (6 × 16), and a portable
//! one (4 × 8) that the compiler vectorises for the baseline target.

/// The operands of one tile.
#[derive(Clone, Copy)]
pub(crate) struct Tile {
    /// Inner-dimension steps.
    pub kc: usize,
    /// `A[i, p]` is at `a + i·a_rs + p·a_ps`.
    pub a: *const f32,
    pub a_rs: isize,
    pub a_ps: isize,
    /// `B[p, j]` is at `b + p·b_ps + j`.
    pub b: *const f32,
    pub b_ps: isize,
    /// `C[i, j]` is at `c + i·rsc + j`.
    pub c: *mut f32,
    pub rsc: isize,
    /// `C ← A·B + β·C + bias`.
    pub beta: f32,
    /// One value per column, or null.
    pub bias: *const f32,
    /// The valid part of the tile.
    pub rows: usize,
    pub cols: usize,
}

/// The signature every kernel has.
///
/// # Safety
/// Every element the [`Tile`] describes (`rows` rows of A and `cols` columns of B over
/// `kc` steps, the `rows × cols` part of C, `cols` bias values) must be valid; `1 ≤ rows ≤
/// MR`, `1 ≤ cols ≤ NR`. With `beta == 0`, C is only written.
pub(crate) type KernelFn = unsafe fn(t: &Tile);

/// A kernel and its tile shape.
#[derive(Clone, Copy)]
pub(crate) struct Kernel {
    pub isa: Isa,
    pub mr: usize,
    pub nr: usize,
    pub run: KernelFn,
    pub name: &'static str,
}

/// The instruction sets a kernel exists for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    Avx512,
    Avx2,
    Portable,
}

impl Isa {
    /// The best this CPU supports (`MLP_GEMM_ISA=portable|avx2` can ask for less).
    pub(crate) fn detect() -> Isa {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            let best = supported()[0];
            match std::env::var("MLP_GEMM_ISA").as_deref() {
                Ok("portable") => Isa::Portable,
                Ok("avx2") if best != Isa::Portable => Isa::Avx2,
                _ => best,
            }
        })
    }

    pub(crate) fn kernel(self) -> Kernel {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => Kernel {
                isa: self,
                mr: 8,
                nr: 32,
                run: avx512::kernel::<8>,
                name: "avx512 8x32",
            },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => Kernel {
                isa: self,
                mr: 6,
                nr: 16,
                run: avx2::kernel,
                name: "avx2+fma 6x16",
            },
            _ => Kernel {
                isa: Isa::Portable,
                mr: portable::MR,
                nr: portable::NR,
                run: portable::kernel,
                name: "portable 4x8",
            },
        }
    }
}

/// Every ISA this CPU can run, best first.
pub(crate) fn supported() -> Vec<Isa> {
    let mut all = vec![Isa::Portable];
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            all.insert(0, Isa::Avx2);
        }
        if std::is_x86_feature_detected!("avx512f") {
            all.insert(0, Isa::Avx512);
        }
    }
    all
}

/// Offsets of the `MR` rows of A, with rows past the valid ones reading the last valid row
/// (their results are computed but never stored).
#[inline(always)]
fn row_offsets<const MR: usize>(t: &Tile) -> [isize; MR] {
    std::array::from_fn(|i| i.min(t.rows - 1) as isize * t.a_rs)
}

mod portable {
    use super::Tile;

    pub const MR: usize = 4;
    pub const NR: usize = 8;

    /// # Safety
    /// See [`KernelFn`](super::KernelFn).
    pub unsafe fn kernel(t: &Tile) {
        let rows = super::row_offsets::<MR>(t);
        let mut acc = [[0f32; NR]; MR];
        unsafe {
            for p in 0..t.kc as isize {
                let a = t.a.offset(p * t.a_ps);
                let b = t.b.offset(p * t.b_ps);
                let mut bp = [0f32; NR];
                for (j, v) in bp.iter_mut().enumerate().take(t.cols) {
                    *v = *b.add(j);
                }
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = *a.offset(rows[i]);
                    for (v, &bj) in row.iter_mut().zip(&bp) {
                        // Not `mul_add`: without FMA in the target that is a library call.
                        *v += ai * bj;
                    }
                }
            }
            for (i, row) in acc.iter().enumerate().take(t.rows) {
                let out = t.c.offset(i as isize * t.rsc);
                for (j, &v) in row.iter().enumerate().take(t.cols) {
                    let bias = if t.bias.is_null() {
                        0.0
                    } else {
                        *t.bias.add(j)
                    };
                    let o = out.add(j);
                    *o = if t.beta == 0.0 {
                        v + bias
                    } else {
                        t.beta * *o + v + bias
                    };
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::Tile;
    use std::arch::x86_64::*;

    const MR: usize = 6;

    /// # Safety
    /// See [`KernelFn`](super::KernelFn); the CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn kernel(t: &Tile) {
        unsafe {
            let rows = super::row_offsets::<MR>(t);
            // Lane masks for the valid columns of each half: lane l is on when l < cols.
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = [
                _mm256_cmpgt_epi32(_mm256_set1_epi32(t.cols.min(8) as i32), lanes),
                _mm256_cmpgt_epi32(_mm256_set1_epi32(t.cols.saturating_sub(8) as i32), lanes),
            ];
            let full = t.cols == 16;
            let mut acc = [[_mm256_setzero_ps(); 2]; MR];
            let (mut a, mut b) = (t.a, t.b);
            for _ in 0..t.kc {
                let (b0, b1) = if full {
                    (_mm256_loadu_ps(b), _mm256_loadu_ps(b.add(8)))
                } else {
                    (
                        _mm256_maskload_ps(b, mask[0]),
                        _mm256_maskload_ps(b.add(8), mask[1]),
                    )
                };
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = _mm256_broadcast_ss(&*a.offset(rows[i]));
                    row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
                }
                a = a.offset(t.a_ps);
                b = b.offset(t.b_ps);
            }
            if !t.bias.is_null() {
                let bv = [
                    _mm256_maskload_ps(t.bias, mask[0]),
                    _mm256_maskload_ps(t.bias.add(8), mask[1]),
                ];
                for row in acc.iter_mut() {
                    row[0] = _mm256_add_ps(row[0], bv[0]);
                    row[1] = _mm256_add_ps(row[1], bv[1]);
                }
            }
            let vbeta = _mm256_set1_ps(t.beta);
            for (i, row) in acc.iter().enumerate().take(t.rows) {
                let out = t.c.offset(i as isize * t.rsc);
                for (h, &v) in row.iter().enumerate() {
                    let o = out.add(8 * h);
                    if full {
                        let v = if t.beta == 0.0 {
                            v
                        } else {
                            _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(o), v)
                        };
                        _mm256_storeu_ps(o, v);
                    } else {
                        let v = if t.beta == 0.0 {
                            v
                        } else {
                            _mm256_fmadd_ps(vbeta, _mm256_maskload_ps(o, mask[h]), v)
                        };
                        _mm256_maskstore_ps(o, mask[h], v);
                    }
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::Tile;
    use std::arch::x86_64::*;

    /// # Safety
    /// See [`KernelFn`](super::KernelFn); the CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel<const MR: usize>(t: &Tile) {
        unsafe {
            // Start fetching the C tile now so that its misses overlap the k loop.
            for i in 0..t.rows as isize {
                _mm_prefetch::<_MM_HINT_T0>(t.c.offset(i * t.rsc) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(t.c.offset(i * t.rsc + 16) as *const i8);
            }
            // Column masks of the two 16-lane halves: bit l is on when column l is valid.
            let mask: [__mmask16; 2] = [
                ((1u32 << t.cols.min(16)) - 1) as __mmask16,
                ((1u32 << t.cols.saturating_sub(16).min(16)) - 1) as __mmask16,
            ];
            // A packed panel (rows one float apart, all rows present) lets the row offsets
            // be constants folded into the loads, which frees registers.
            let packed = t.a_rs == 1 && t.a_ps == MR as isize && t.rows == MR;
            let acc = match (t.cols == 32, packed) {
                (true, true) => tile_loop::<MR, false, true>(t, mask),
                (true, false) => tile_loop::<MR, false, false>(t, mask),
                (false, true) => tile_loop::<MR, true, true>(t, mask),
                (false, false) => tile_loop::<MR, true, false>(t, mask),
            };
            store::<MR>(t, &acc, mask);
        }
    }

    /// The k loop, with full-width loads of B or (at C's right edge) masked ones.
    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn tile_loop<const MR: usize, const MASKED: bool, const PACKED: bool>(
        t: &Tile,
        mask: [__mmask16; 2],
    ) -> [[__m512; 2]; MR] {
        unsafe {
            let rows = super::row_offsets::<MR>(t);
            let mut acc = [[_mm512_setzero_ps(); 2]; MR];
            let (mut a, mut b) = (t.a, t.b);
            for _ in 0..t.kc {
                let (b0, b1) = if MASKED {
                    (
                        _mm512_maskz_loadu_ps(mask[0], b),
                        _mm512_maskz_loadu_ps(mask[1], b.add(16)),
                    )
                } else {
                    (_mm512_loadu_ps(b), _mm512_loadu_ps(b.add(16)))
                };
                for (i, row) in acc.iter_mut().enumerate() {
                    let offset = if PACKED { i as isize } else { rows[i] };
                    let ai = _mm512_set1_ps(*a.offset(offset));
                    row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
                }
                a = a.offset(if PACKED { MR as isize } else { t.a_ps });
                b = b.offset(t.b_ps);
            }
            acc
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    unsafe fn store<const MR: usize>(t: &Tile, acc: &[[__m512; 2]; MR], mask: [__mmask16; 2]) {
        unsafe {
            let mut acc = *acc;
            if !t.bias.is_null() {
                let bv = [
                    _mm512_maskz_loadu_ps(mask[0], t.bias),
                    _mm512_maskz_loadu_ps(mask[1], t.bias.add(16)),
                ];
                for row in acc.iter_mut() {
                    row[0] = _mm512_add_ps(row[0], bv[0]);
                    row[1] = _mm512_add_ps(row[1], bv[1]);
                }
            }
            let vbeta = _mm512_set1_ps(t.beta);
            for (i, row) in acc.iter().enumerate().take(t.rows) {
                let out = t.c.offset(i as isize * t.rsc);
                for (h, &v) in row.iter().enumerate() {
                    let o = out.add(16 * h);
                    let v = if t.beta == 0.0 {
                        v
                    } else {
                        _mm512_fmadd_ps(vbeta, _mm512_maskz_loadu_ps(mask[h], o), v)
                    };
                    _mm512_mask_storeu_ps(o, mask[h], v);
                }
            }
        }
    }
}
