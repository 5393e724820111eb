//! Blocked matrix product `C = A·B + β·C` (the GotoBLAS/BLIS scheme).
//!
//! ```text
//! for each block of NC columns of C                   (B block stays in L3)
//!   for each block of KC steps of the inner dimension  (β applies on the first only)
//!     pack B[kc × nc] into NR-wide column panels
//!     for each block of MC rows                        (packed A block stays in L2)
//!       pack A[mc × kc] into MR-tall row panels
//!       for each NR panel of B, for each MR panel of A (micro-panels stream from L2)
//!         kernel: MR × NR tile of C += A panel · B panel
//! ```
//!
//! Packing copies each operand once per block into the exact order the kernel reads, with
//! zeros past the edges, so the kernel never branches and both operands may be transposed
//! views. Packing buffers are per thread and reused: after the first call of a given size,
//! a product allocates nothing.
//!
//! Every tile of `C` is computed by the same sequence of operations however the work is
//! split between threads (tiles are aligned to MR × NR from the origin, and the KC blocks
//! depend only on the inner dimension), so results are bit-identical at any thread count.

use std::cell::RefCell;
use std::ops::Range;

use super::kernels::{Kernel, Tile};

/// Most inner-dimension steps per block. Every block of the inner dimension is another
/// pass over all of C (read, add, write back), and in a training step C is seldom in
/// cache: on W4 going from 256 steps (a B micro-panel that fits the L1 cache) to 1024 (one
/// that streams from L2, as the A micro-panel does) makes the products about 10% faster,
/// though a product repeated on hot data (the 1024³ benchmark) is 3% slower.
const KC: usize = 1024;
/// Most rows per packed A block (MC × KC × 4 B = 1.5 MiB, inside a 2 MiB L2).
const MC: usize = 384;
/// Most columns per packed B block.
const NC: usize = 4096;

/// A matrix operand: element `(i, j)` is at `ptr + i·rs + j·cs`.
#[derive(Clone, Copy)]
pub(crate) struct Operand {
    pub ptr: *const f32,
    pub rs: isize,
    pub cs: isize,
}

/// One product to compute.
#[derive(Clone, Copy)]
pub(crate) struct Problem {
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub a: Operand,
    pub b: Operand,
    pub c: *mut f32,
    pub rsc: isize,
    pub csc: isize,
    pub beta: f32,
    /// `n` values added to every row of C (null: none).
    pub bias: *const f32,
}

// SAFETY: threads given disjoint row or column ranges of C write disjoint elements; A and B
// are only read.
unsafe impl Sync for Problem {}

/// A block size at most `max` (rounded up to a multiple of `align`) that splits `total`
/// into equal-ish blocks, so that no block is a sliver.
pub(crate) fn block_size(total: usize, max: usize, align: usize) -> usize {
    let blocks = total.div_ceil(max).max(1);
    total.div_ceil(blocks).div_ceil(align) * align
}

/// A growable buffer whose usable part starts on a 64-byte boundary (one cache line, and
/// the alignment of a 512-bit vector).
#[derive(Default)]
struct AlignedBuf {
    data: Vec<f32>,
}

impl AlignedBuf {
    fn get(&mut self, len: usize) -> *mut f32 {
        const ALIGN: usize = 16; // floats per 64 bytes
        if self.data.len() < len + ALIGN {
            self.data = vec![0.0; len + ALIGN];
        }
        let ptr = self.data.as_mut_ptr();
        let offset = ptr.align_offset(64);
        // SAFETY: offset < ALIGN and the buffer has len + ALIGN floats.
        unsafe { ptr.add(offset) }
    }
}

thread_local! {
    static PACKS: RefCell<(AlignedBuf, AlignedBuf)> = RefCell::default();
}

/// An A this small is read in place instead of packed: it stays in the L2 cache anyway,
/// and for small products packing costs a noticeable share of the time.
const DIRECT_BYTES: usize = 256 << 10;
/// B is read in place when it has at most this many rows …
const DIRECT_B_ROWS: usize = 64;
/// … or fits in the L1 cache whole.
const DIRECT_B_BYTES: usize = 32 << 10;

/// Tests set this to pack every operand, so both paths are checked on the same shapes.
#[cfg(test)]
pub(crate) static FORCE_PACKING: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

fn may_read_in_place() -> bool {
    #[cfg(test)]
    {
        !FORCE_PACKING.load(std::sync::atomic::Ordering::Relaxed)
    }
    #[cfg(not(test))]
    true
}

/// Computes the rows `rows` and columns `cols` of `p.c` (both starting at multiples of the
/// kernel's MR and NR) on the calling thread.
pub(crate) fn gemm_part(p: &Problem, kernel: Kernel, rows: Range<usize>, cols: Range<usize>) {
    if rows.is_empty() || cols.is_empty() {
        return;
    }
    let (mr, nr) = (kernel.mr, kernel.nr);
    let kc_max = block_size(p.k, KC, 1);
    let mc_max = block_size(rows.len(), MC, mr);
    let nc_max = block_size(cols.len(), NC, nr);
    // Small operands in a layout the kernel can read (A with contiguous rows or columns,
    // B with contiguous rows) are used in place. Whether an operand is packed depends only
    // on the shapes, never on the thread split, so results stay the same at any count.
    let floats = std::mem::size_of::<f32>();
    let in_place = may_read_in_place();
    let direct_a = in_place && (p.a.cs == 1 || p.a.rs == 1) && p.m * p.k * floats <= DIRECT_BYTES;
    // B's micro-panel is kc rows of 32 floats, `rs` apart: in place, rows a power-of-two
    // distance apart crowd into a few cache sets and evict each other, so only short
    // panels (or a B that fits in L1 whole) are read in place.
    let direct_b =
        in_place && p.b.cs == 1 && (p.k <= DIRECT_B_ROWS || p.k * p.n * floats <= DIRECT_B_BYTES);
    PACKS.with(|packs| {
        let mut packs = packs.borrow_mut();
        let (a_buf, b_buf) = &mut *packs;
        let a_pack = if direct_a {
            std::ptr::null_mut()
        } else {
            a_buf.get(mc_max * kc_max)
        };
        let b_pack = if direct_b {
            std::ptr::null_mut()
        } else {
            b_buf.get(nc_max * kc_max)
        };
        let mut scratch = [0f32; 16 * 32];
        for jc in (cols.start..cols.end).step_by(nc_max) {
            let nc = nc_max.min(cols.end - jc);
            for pc in (0..p.k).step_by(kc_max) {
                let kc = kc_max.min(p.k - pc);
                // β and the bias apply once, with the first block of the inner dimension.
                let (beta, bias) = if pc == 0 {
                    (p.beta, p.bias)
                } else {
                    (1.0, std::ptr::null())
                };
                // B panel for columns jc + jr: (first element, step between rows, panel size).
                let b_block = if direct_b {
                    // SAFETY: (pc, jc) is inside B.
                    unsafe { p.b.ptr.offset(pc as isize * p.b.rs + jc as isize) }
                } else {
                    // SAFETY: the pack buffer holds nc_max × kc_max floats.
                    unsafe { pack::b(kernel.isa, p.b, pc, kc, jc, nc, nr, b_pack) };
                    b_pack
                };
                for ic in (rows.start..rows.end).step_by(mc_max) {
                    let mc = mc_max.min(rows.end - ic);
                    let a_block = if direct_a {
                        // SAFETY: (ic, pc) is inside A.
                        unsafe { p.a.ptr.offset(ic as isize * p.a.rs + pc as isize * p.a.cs) }
                    } else {
                        // SAFETY: the pack buffer holds mc_max × kc_max floats.
                        unsafe { pack::a(kernel.isa, p.a, ic, mc, pc, kc, mr, a_pack) };
                        a_pack
                    };
                    for jr in (0..nc).step_by(nr) {
                        let cols_here = nr.min(nc - jr);
                        // SAFETY: panel offsets stay inside B (or the packed block).
                        let (b_panel, b_ps) = unsafe {
                            if direct_b {
                                (b_block.add(jr), p.b.rs)
                            } else {
                                (b_block.add(jr * kc), nr as isize)
                            }
                        };
                        for ir in (0..mc).step_by(mr) {
                            let rows_here = mr.min(mc - ir);
                            let (a_panel, a_rs, a_ps) = unsafe {
                                if direct_a {
                                    (a_block.offset(ir as isize * p.a.rs), p.a.rs, p.a.cs)
                                } else {
                                    (a_block.add(ir * kc), 1, mr as isize)
                                }
                            };
                            let (i, j) = ((ic + ir) as isize, (jc + jr) as isize);
                            let mut tile = Tile {
                                kc,
                                a: a_panel,
                                a_rs,
                                a_ps,
                                b: b_panel,
                                b_ps,
                                // SAFETY: (i, j) is inside C; the problem's strides locate it.
                                c: unsafe { p.c.offset(i * p.rsc + j * p.csc) },
                                rsc: p.rsc,
                                beta,
                                // SAFETY: the bias has a value for every column of C.
                                bias: if bias.is_null() {
                                    bias
                                } else {
                                    unsafe { bias.add(jc + jr) }
                                },
                                rows: rows_here,
                                cols: cols_here,
                            };
                            if p.csc == 1 {
                                // SAFETY: the tile describes valid parts of A, B, C and bias.
                                unsafe { (kernel.run)(&tile) };
                            } else {
                                // C with other strides: compute into a scratch tile, then copy.
                                let c = tile.c;
                                tile.c = scratch.as_mut_ptr();
                                tile.rsc = nr as isize;
                                tile.beta = 0.0;
                                unsafe { (kernel.run)(&tile) };
                                for r in 0..rows_here {
                                    for s in 0..cols_here {
                                        let v = scratch[r * nr + s];
                                        // SAFETY: (r, s) is within the valid part of the tile.
                                        unsafe {
                                            let o =
                                                c.offset(r as isize * p.rsc + s as isize * p.csc);
                                            *o = if beta == 0.0 { v } else { beta * *o + v };
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    });
}

/// Packs rows `i0 .. i0 + mc` and steps `p0 .. p0 + kc` of A into panels of `mr` rows:
/// panel `q` holds `dst[q·mr·kc + p·mr + i] = A[i0 + q·mr + i, p0 + p]`, zero past the last row.
///
/// # Safety
/// `a` must be valid for those elements and `dst` for `round_up(mc, mr) × kc` floats.
#[inline(always)]
unsafe fn pack_a(a: Operand, i0: usize, mc: usize, p0: usize, kc: usize, mr: usize, dst: *mut f32) {
    unsafe {
        if a.rs == 1 && a.cs != 1 {
            // A transposed view: each step p is a contiguous run of A's rows.
            let src = a.ptr.offset(i0 as isize + p0 as isize * a.cs);
            pack_in_memory_order(src, a.cs, mc, kc, mr, dst);
            return;
        }
        for q in 0..mc.div_ceil(mr) {
            let panel = dst.add(q * mr * kc);
            let rows = mr.min(mc - q * mr);
            let base = a
                .ptr
                .offset((i0 + q * mr) as isize * a.rs + p0 as isize * a.cs);
            if a.cs == 1 && rows == 8 && mr == 8 && transpose::available() {
                // Rows are contiguous: turn 8 × 8 blocks of A into 8 × 8 blocks of the panel.
                let full = kc - kc % 8;
                for p in (0..full).step_by(8) {
                    transpose::block8(base.add(p), a.rs, panel.add(p * mr), mr as isize);
                }
                for i in 0..rows {
                    let row = base.offset(i as isize * a.rs);
                    for p in full..kc {
                        *panel.add(p * mr + i) = *row.add(p);
                    }
                }
            } else {
                // Edge panels, other kernels' panel heights, general strides.
                for p in 0..kc {
                    let col = base.offset(p as isize * a.cs);
                    for i in 0..rows {
                        *panel.add(p * mr + i) = *col.offset(i as isize * a.rs);
                    }
                }
            }
            for p in 0..kc {
                for i in rows..mr {
                    *panel.add(p * mr + i) = 0.0;
                }
            }
        }
    }
}

/// Packing compiled once per instruction set, so that its copies use the widest vectors
/// the CPU has (a plain build only assumes SSE2).
#[allow(clippy::too_many_arguments)]
mod pack {
    use super::{Operand, pack_a, pack_b};
    use crate::linalg::kernels::Isa;

    /// [`pack_a`] for `isa`.
    ///
    /// # Safety
    /// As for [`pack_a`]; `isa` must be supported by the CPU.
    pub(super) unsafe fn a(
        isa: Isa,
        a: Operand,
        i0: usize,
        mc: usize,
        p0: usize,
        kc: usize,
        mr: usize,
        dst: *mut f32,
    ) {
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 | Isa::Avx2 => a_avx2(a, i0, mc, p0, kc, mr, dst),
                _ => pack_a(a, i0, mc, p0, kc, mr, dst),
            }
        }
    }

    /// [`pack_b`] for `isa`.
    ///
    /// # Safety
    /// As for [`pack_b`]; `isa` must be supported by the CPU.
    pub(super) unsafe fn b(
        isa: Isa,
        b: Operand,
        p0: usize,
        kc: usize,
        j0: usize,
        nc: usize,
        nr: usize,
        dst: *mut f32,
    ) {
        unsafe {
            match isa {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 | Isa::Avx2 => b_avx2(b, p0, kc, j0, nc, nr, dst),
                _ => pack_b(b, p0, kc, j0, nc, nr, dst),
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn a_avx2(
        a: Operand,
        i0: usize,
        mc: usize,
        p0: usize,
        kc: usize,
        mr: usize,
        dst: *mut f32,
    ) {
        unsafe { pack_a(a, i0, mc, p0, kc, mr, dst) }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn b_avx2(
        b: Operand,
        p0: usize,
        kc: usize,
        j0: usize,
        nc: usize,
        nr: usize,
        dst: *mut f32,
    ) {
        unsafe { pack_b(b, p0, kc, j0, nc, nr, dst) }
    }
}

/// Packs `kc` runs of `len` contiguous floats, run `p` at `src + p·stride`, into panels of
/// `unit` floats: panel `q` holds `dst[q·unit·kc + p·unit + i] = src[p·stride + q·unit + i]`,
/// zero past `len`.
///
/// The runs are read in memory order, each handing every panel its `unit` values, so the
/// reads stream through memory; going panel by panel would jump a whole row of the
/// underlying matrix (often a page) per step, where the hardware prefetcher cannot follow.
///
/// # Safety
/// The runs must be readable and `dst` valid for `round_up(len, unit) × kc` floats.
unsafe fn pack_in_memory_order(
    src: *const f32,
    stride: isize,
    len: usize,
    kc: usize,
    unit: usize,
    dst: *mut f32,
) {
    unsafe {
        let panels = len.div_ceil(unit);
        for p in 0..kc {
            let run = src.offset(p as isize * stride);
            for q in 0..panels {
                let n = unit.min(len - q * unit);
                let out = dst.add(q * unit * kc + p * unit);
                copy_floats(run.add(q * unit), out, n);
                for i in n..unit {
                    *out.add(i) = 0.0;
                }
            }
        }
    }
}

/// Copies `n` floats. Panel rows are 8, 16 or 32 floats: those sizes become a few vector
/// moves instead of a call to `memcpy`, which dominates for copies this short.
///
/// # Safety
/// As for [`std::ptr::copy_nonoverlapping`].
#[inline(always)]
unsafe fn copy_floats(src: *const f32, dst: *mut f32, n: usize) {
    unsafe {
        match n {
            32 => *(dst as *mut [f32; 32]) = *(src as *const [f32; 32]),
            16 => *(dst as *mut [f32; 16]) = *(src as *const [f32; 16]),
            8 => *(dst as *mut [f32; 8]) = *(src as *const [f32; 8]),
            _ => std::ptr::copy_nonoverlapping(src, dst, n),
        }
    }
}

/// Packs steps `p0 .. p0 + kc` and columns `j0 .. j0 + nc` of B into panels of `nr`
/// columns: panel `q` holds `dst[q·nr·kc + p·nr + j] = B[p0 + p, j0 + q·nr + j]`, zero past
/// the last column.
///
/// # Safety
/// `b` must be valid for those elements and `dst` for `round_up(nc, nr) × kc` floats.
#[inline(always)]
unsafe fn pack_b(b: Operand, p0: usize, kc: usize, j0: usize, nc: usize, nr: usize, dst: *mut f32) {
    unsafe {
        if b.cs == 1 {
            // Rows of B are contiguous.
            let src = b.ptr.offset(p0 as isize * b.rs + j0 as isize);
            pack_in_memory_order(src, b.rs, nc, kc, nr, dst);
            return;
        }
        for q in 0..nc.div_ceil(nr) {
            let panel = dst.add(q * nr * kc);
            let cols = nr.min(nc - q * nr);
            let base = b
                .ptr
                .offset(p0 as isize * b.rs + (j0 + q * nr) as isize * b.cs);
            if b.rs == 1 && transpose::available() {
                // B is a transposed view, each column contiguous along p: 8 × 8 blocks.
                let (full_p, full_j) = (kc - kc % 8, cols - cols % 8);
                for j in (0..full_j).step_by(8) {
                    let src = base.offset(j as isize * b.cs);
                    for p in (0..full_p).step_by(8) {
                        transpose::block8(src.add(p), b.cs, panel.add(p * nr + j), nr as isize);
                    }
                }
                for j in 0..cols {
                    let src = base.offset(j as isize * b.cs);
                    let from = if j < full_j { full_p } else { 0 };
                    for p in from..kc {
                        *panel.add(p * nr + j) = *src.add(p);
                    }
                }
            } else {
                // General strides (or a transposed view without AVX for the transposes).
                for j in 0..cols {
                    let src = base.offset(j as isize * b.cs);
                    for p in 0..kc {
                        *panel.add(p * nr + j) = *src.offset(p as isize * b.rs);
                    }
                }
            }
            for p in 0..kc {
                for j in cols..nr {
                    *panel.add(p * nr + j) = 0.0;
                }
            }
        }
    }
}

/// 8 × 8 transposes for packing, with AVX where the CPU has it.
mod transpose {
    /// Whether [`block8`] can run (AVX).
    pub(super) fn available() -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            static AVX: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
            *AVX.get_or_init(|| std::is_x86_feature_detected!("avx"))
        }
        #[cfg(not(target_arch = "x86_64"))]
        false
    }

    /// Writes the transpose of the 8 × 8 block at `src` (rows `src_stride` apart) to `dst`
    /// (rows `dst_stride` apart): `dst[k][i] = src[i][k]`.
    ///
    /// # Safety
    /// Both blocks must be valid; [`available`] must be true.
    #[inline]
    pub(super) unsafe fn block8(
        src: *const f32,
        src_stride: isize,
        dst: *mut f32,
        dst_stride: isize,
    ) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as for this function.
        unsafe {
            avx(src, src_stride, dst, dst_stride)
        }
        #[cfg(not(target_arch = "x86_64"))]
        unsafe {
            for i in 0..8 {
                for k in 0..8 {
                    *dst.offset(k * dst_stride + i) = *src.offset(i * src_stride + k);
                }
            }
        }
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx")]
    unsafe fn avx(src: *const f32, ss: isize, dst: *mut f32, ds: isize) {
        use std::arch::x86_64::*;
        unsafe {
            let r: [__m256; 8] =
                std::array::from_fn(|i| _mm256_loadu_ps(src.offset(i as isize * ss)));
            let t0 = _mm256_unpacklo_ps(r[0], r[1]);
            let t1 = _mm256_unpackhi_ps(r[0], r[1]);
            let t2 = _mm256_unpacklo_ps(r[2], r[3]);
            let t3 = _mm256_unpackhi_ps(r[2], r[3]);
            let t4 = _mm256_unpacklo_ps(r[4], r[5]);
            let t5 = _mm256_unpackhi_ps(r[4], r[5]);
            let t6 = _mm256_unpacklo_ps(r[6], r[7]);
            let t7 = _mm256_unpackhi_ps(r[6], r[7]);
            let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
            let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
            let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
            let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
            let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
            let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
            let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
            let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
            let out = [
                _mm256_permute2f128_ps::<0x20>(u0, u4),
                _mm256_permute2f128_ps::<0x20>(u1, u5),
                _mm256_permute2f128_ps::<0x20>(u2, u6),
                _mm256_permute2f128_ps::<0x20>(u3, u7),
                _mm256_permute2f128_ps::<0x31>(u0, u4),
                _mm256_permute2f128_ps::<0x31>(u1, u5),
                _mm256_permute2f128_ps::<0x31>(u2, u6),
                _mm256_permute2f128_ps::<0x31>(u3, u7),
            ];
            for (k, v) in out.iter().enumerate() {
                _mm256_storeu_ps(dst.offset(k as isize * ds), *v);
            }
        }
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn transposes() {
            if !super::available() {
                return;
            }
            let src: Vec<f32> = (0..10 * 8).map(|v| v as f32).collect();
            let mut dst = vec![0f32; 8 * 12];
            unsafe { super::block8(src.as_ptr(), 10, dst.as_mut_ptr(), 12) };
            for i in 0..8 {
                for k in 0..8 {
                    assert_eq!(dst[k * 12 + i], src[i * 10 + k]);
                }
            }
        }
    }
}
