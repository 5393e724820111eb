//! Micro-kernels: one `MR × NR` tile of `C = A·B + β·C` from packed panels.
//!
//! Packed layouts (made by `gemm.rs`): the A panel holds `MR` rows for each of `kc` steps,
//! `a[p·MR + i] = A[i, p]`; the B panel holds `NR` columns for each step,
//! `b[p·NR + j] = B[p, j]`. A kernel keeps the `MR × NR` sums in registers for all `kc`
//! steps (one broadcast of `A[i, p]` times one vector of `B[p, ·]` per row and step) and
//! touches `C` once at the end. `C`'s rows are `rsc` elements apart and contiguous. At the
//! edges of C only the first `rows × cols` of the tile are read and written (masked vector
//! stores), so edge tiles need no detour through a scratch tile.
//!
//! Three kernels, chosen at run time: AVX-512 (8 × 32), AVX2 + FMA (6 × 16), and a portable
//! one (4 × 8) that the compiler vectorises for the baseline target.

/// The signature every kernel has.
///
/// The tile becomes `acc + β·C + bias` where `bias` (if not null) holds one value per
/// column. Only the first `rows` rows and `cols` columns are touched.
///
/// # Safety
/// `a` must point to `MR·kc` floats, `b` to `NR·kc` floats, `c` to a `rows × cols` tile
/// with row stride `rsc` and unit column stride, and `bias` (unless null) to `cols` floats,
/// all valid for the call; `rows ≤ MR`, `cols ≤ NR`. With `beta == 0`, `C` is only written.
pub(crate) type KernelFn = unsafe fn(
    kc: usize,
    a: *const f32,
    b: *const f32,
    c: *mut f32,
    rsc: usize,
    beta: f32,
    bias: *const f32,
    rows: usize,
    cols: usize,
);

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
    /// The best this CPU supports (`MLP_GEMM_ISA=portable|avx2|avx512` can ask for less).
    pub(crate) fn detect() -> Isa {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            let best = best_supported();
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

fn best_supported() -> Isa {
    supported()[0]
}

mod portable {
    pub const MR: usize = 4;
    pub const NR: usize = 8;

    /// # Safety
    /// See [`KernelFn`](super::KernelFn).
    pub unsafe fn kernel(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rsc: usize,
        beta: f32,
        bias: *const f32,
        rows: usize,
        cols: usize,
    ) {
        let mut acc = [[0f32; NR]; MR];
        // SAFETY: the caller guarantees the panel sizes.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a, MR * kc),
                std::slice::from_raw_parts(b, NR * kc),
            )
        };
        for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            for i in 0..MR {
                for j in 0..NR {
                    // Not `mul_add`: without FMA in the target that is a library call.
                    acc[i][j] += ap[i] * bp[j];
                }
            }
        }
        if !bias.is_null() {
            // SAFETY: the caller guarantees `cols` bias values.
            let bias = unsafe { std::slice::from_raw_parts(bias, cols) };
            for row in acc.iter_mut() {
                for (v, &b) in row.iter_mut().zip(bias) {
                    *v += b;
                }
            }
        }
        for (i, row) in acc.iter().enumerate().take(rows) {
            // SAFETY: the caller guarantees a rows × cols tile at `c` with row stride `rsc`.
            let out = unsafe { std::slice::from_raw_parts_mut(c.add(i * rsc), cols) };
            if beta == 0.0 {
                out.copy_from_slice(&row[..cols]);
            } else {
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = beta * *o + v;
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    const MR: usize = 6;

    /// # Safety
    /// See [`KernelFn`](super::KernelFn); the CPU must support AVX2 and FMA.
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn kernel(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rsc: usize,
        beta: f32,
        bias: *const f32,
        rows: usize,
        cols: usize,
    ) {
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); 2]; MR];
            for p in 0..kc {
                let b0 = _mm256_loadu_ps(b.add(p * 16));
                let b1 = _mm256_loadu_ps(b.add(p * 16 + 8));
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = _mm256_broadcast_ss(&*a.add(p * MR + i));
                    row[0] = _mm256_fmadd_ps(ai, b0, row[0]);
                    row[1] = _mm256_fmadd_ps(ai, b1, row[1]);
                }
            }
            // Lane masks for the valid columns of each half: lane l is on when l < cols.
            let lanes = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
            let mask = [
                _mm256_cmpgt_epi32(_mm256_set1_epi32(cols.min(8) as i32), lanes),
                _mm256_cmpgt_epi32(_mm256_set1_epi32(cols.saturating_sub(8) as i32), lanes),
            ];
            let full = cols == 16;
            if !bias.is_null() {
                let bv = [
                    _mm256_maskload_ps(bias, mask[0]),
                    _mm256_maskload_ps(bias.add(8), mask[1]),
                ];
                for row in acc.iter_mut() {
                    row[0] = _mm256_add_ps(row[0], bv[0]);
                    row[1] = _mm256_add_ps(row[1], bv[1]);
                }
            }
            let vbeta = _mm256_set1_ps(beta);
            for (i, row) in acc.iter().enumerate().take(rows) {
                let out = c.add(i * rsc);
                for (h, &v) in row.iter().enumerate() {
                    let o = out.add(8 * h);
                    if full {
                        let v = if beta == 0.0 {
                            v
                        } else {
                            _mm256_fmadd_ps(vbeta, _mm256_loadu_ps(o), v)
                        };
                        _mm256_storeu_ps(o, v);
                    } else {
                        let v = if beta == 0.0 {
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
    use std::arch::x86_64::*;

    /// # Safety
    /// See [`KernelFn`](super::KernelFn); the CPU must support AVX-512F.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn kernel<const MR: usize>(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rsc: usize,
        beta: f32,
        bias: *const f32,
        rows: usize,
        cols: usize,
    ) {
        unsafe {
            // Start fetching the C tile now so that its misses overlap the k loop.
            for i in 0..rows {
                _mm_prefetch::<_MM_HINT_T0>(c.add(i * rsc) as *const i8);
                _mm_prefetch::<_MM_HINT_T0>(c.add(i * rsc + 16) as *const i8);
            }
            let mut acc = [[_mm512_setzero_ps(); 2]; MR];
            for p in 0..kc {
                let b0 = _mm512_loadu_ps(b.add(p * 32));
                let b1 = _mm512_loadu_ps(b.add(p * 32 + 16));
                for (i, row) in acc.iter_mut().enumerate() {
                    let ai = _mm512_set1_ps(*a.add(p * MR + i));
                    row[0] = _mm512_fmadd_ps(ai, b0, row[0]);
                    row[1] = _mm512_fmadd_ps(ai, b1, row[1]);
                }
            }
            // Column masks of the two 16-lane halves: bit l is on when column l is valid.
            let mask: [__mmask16; 2] = [
                ((1u32 << cols.min(16)) - 1) as __mmask16,
                ((1u32 << cols.saturating_sub(16).min(16)) - 1) as __mmask16,
            ];
            if !bias.is_null() {
                let bv = [
                    _mm512_maskz_loadu_ps(mask[0], bias),
                    _mm512_maskz_loadu_ps(mask[1], bias.add(16)),
                ];
                for row in acc.iter_mut() {
                    row[0] = _mm512_add_ps(row[0], bv[0]);
                    row[1] = _mm512_add_ps(row[1], bv[1]);
                }
            }
            let vbeta = _mm512_set1_ps(beta);
            for (i, row) in acc.iter().enumerate().take(rows) {
                let out = c.add(i * rsc);
                for (h, &v) in row.iter().enumerate() {
                    let o = out.add(16 * h);
                    let v = if beta == 0.0 {
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
