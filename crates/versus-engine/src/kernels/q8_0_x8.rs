//! Q8_0 with eight rows interleaved, as `q4k_x8` does for Q4_K, so that one AVX-512 VNNI
//! `dpbusd` multiplies 64 weights of eight rows with their activations. The interleaved copy is
//! made in the background ([`interleave`], see `matrix::Kernel` for why not on load); until it
//! exists, [`matmul_stored`] interleaves each group of the stored rows in registers as it goes,
//! with the same results bit for bit.
//!
//! Why: the row-at-a-time Q8_0 kernel unpacks a 34-byte block (an f16 scale and 32 weights) per
//! row and per tile of activations, and its sixteen-row batch took 7.4x one row's time; prefill
//! ran at 0.37x llama.cpp's. Interleaved, the scales of four blocks of eight rows fill one cache
//! line, the weights follow in 64-byte loads (8 bytes of each row), and the work per byte for
//! several activation rows is a quarter of the row kernel's.
//!
//! A group of eight rows holds, for each run of four blocks (128 weights), [`GROUP_BLOCK_BYTES`]
//! bytes: the four blocks' eight `d` (f16, `[block][row]`), then for each block and each 8 bytes
//! `i` of it, the eight rows' bytes `8i..8i+8`. `dpbusd` wants unsigned weights, so each weight
//! is stored plus 128 (its sign bit flipped), and what that adds to a lane's sum, 128 times the
//! activations it met, is computed once per activation block ([`ActivationBlock`]) and taken
//! off once per block. Moving each weight's sign onto the activations instead cost one more
//! instruction per `dpbusd` for every activation row, a third of a batch's work.
//!
//! Exactness: each row's integer sum per block equals `q8_0::block_sum_reference`'s, and each
//! row's result equals the row reference within float rounding; a row's result does not depend
//! on how many activation rows share the pass.

use half::f16;

use super::q8_0::{block_sum_reference, BlockQ8_0, BLOCK_BYTES, QK8_0};
use super::{Isa, GROUP_ROWS as ROWS};

/// Q8_0 blocks in a group block.
const BLOCKS: usize = 4;

const D: usize = 0;
const QS: usize = BLOCKS * ROWS * 2;

/// Bytes of a group's eight rows over four blocks: seventeen cache lines.
pub const GROUP_BLOCK_BYTES: usize = QS + BLOCKS * ROWS * QK8_0;

/// Weights a group block covers per row.
const WEIGHTS: usize = BLOCKS * QK8_0;

/// An activation block as the interleaved kernel takes it: the Q8_0 block, and what the weights'
/// offset of 128 adds to the kernel's lanes for it, 128 times the sum of the activations each
/// lane meets (bytes `8i..8i+4` of the block for the even lanes, `8i+4..8i+8` for the odd),
/// as one `[even, odd]` pair.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ActivationBlock {
    pub block: BlockQ8_0,
    offsets: [i32; 2],
}

impl ActivationBlock {
    pub fn new(block: BlockQ8_0) -> ActivationBlock {
        let mut offsets = [0i32; 2];
        for (i, &q) in block.qs.iter().enumerate() {
            offsets[(i % 8) / 4] += 128 * i32::from(q);
        }
        ActivationBlock { block, offsets }
    }
}

/// An activation row quantized to Q8_0 as llama.cpp quantizes it, in the kernel's form.
pub fn activations(xs: &[f32]) -> Vec<ActivationBlock> {
    super::q8_0::quantized(xs)
        .into_iter()
        .map(ActivationBlock::new)
        .collect()
}

/// Whether the interleaved kernel is the one for a `rows x cols` Q8_0 matrix on `isa`: with
/// AVX-512 VNNI, rows in whole groups and rows in whole group blocks (`VERSUS_INTERLEAVE=off`
/// keeps every matrix a row at a time).
pub fn applies(isa: Isa, rows: usize, cols: usize) -> bool {
    super::eight_rows_apply(isa == Isa::Avx512, rows, cols, WEIGHTS)
}

/// Activation rows one pass over an interleaved copy takes.
pub fn tile(isa: Isa) -> usize {
    if isa == Isa::Avx512 {
        4
    } else {
        1
    }
}

/// Activation rows one pass over a matrix as stored takes: eight with AVX-512, so that a batch
/// of eight sequences interleaves each group once (the accumulators and the four registers of
/// weights fit in the thirty-two). Measured on the 2-core development machine, eight sequences
/// (`--bench engine -- --profile batch8`, interleaved runs): 107-114 tokens/s against 91-113
/// with four.
pub fn stored_tile(isa: Isa) -> usize {
    if isa == Isa::Avx512 {
        super::TILE
    } else {
        1
    }
}

/// `bytes` (a `rows x cols` Q8_0 matrix) interleaved as a whole, on the calling thread (it runs
/// in the background, see `matrix::Kernel`), or `None` when it does not fill whole groups and
/// group blocks or the system will not map the memory.
pub fn interleave(bytes: &[u8], rows: usize, cols: usize) -> Option<super::Interleaved> {
    if !rows.is_multiple_of(ROWS) || !cols.is_multiple_of(WEIGHTS) {
        return None;
    }
    let row_bytes = cols / QK8_0 * BLOCK_BYTES;
    if bytes.len() != rows.checked_mul(row_bytes)? {
        return None;
    }
    let mut out = super::Interleaved::zeroed(bytes.len())?;
    for (stored, group_out) in bytes
        .chunks_exact(ROWS * row_bytes)
        .zip(out.chunks_exact_mut(ROWS * row_bytes))
    {
        interleave_group_reference(stored, row_bytes, group_out);
    }
    Some(out)
}

/// A group of eight rows as the file stores them (`stored`, rows of `row_bytes` bytes one after
/// the other) written in the interleaved form into `out` (as many bytes), by plain indexing:
/// the form's definition.
pub fn interleave_group_reference(stored: &[u8], row_bytes: usize, out: &mut [u8]) {
    for (index, dst) in out.chunks_exact_mut(GROUP_BLOCK_BYTES).enumerate() {
        for r in 0..ROWS {
            for k in 0..BLOCKS {
                let start = r * row_bytes + (index * BLOCKS + k) * BLOCK_BYTES;
                let src = &stored[start..start + BLOCK_BYTES];
                dst[D + 2 * (ROWS * k + r)..D + 2 * (ROWS * k + r) + 2].copy_from_slice(&src[0..2]);
                for i in 0..4 {
                    let to = QS + 256 * k + 64 * i + 8 * r;
                    for (to, &weight) in dst[to..to + 8].iter_mut().zip(&src[2 + 8 * i..]) {
                        *to = weight ^ 0x80;
                    }
                }
            }
        }
    }
}

/// Row `r`'s block `k` of a group block in Q8_0's own form (34 bytes).
fn block_of(group_block: &[u8], r: usize, k: usize) -> [u8; BLOCK_BYTES] {
    let mut block = [0u8; BLOCK_BYTES];
    block[0..2].copy_from_slice(&group_block[D + 2 * (ROWS * k + r)..D + 2 * (ROWS * k + r) + 2]);
    for i in 0..4 {
        let from = QS + 256 * k + 64 * i + 8 * r;
        for (to, &stored) in block[2 + 8 * i..2 + 8 * i + 8]
            .iter_mut()
            .zip(&group_block[from..from + 8])
        {
            *to = stored ^ 0x80;
        }
    }
    block
}

/// A group's eight rows dotted with a Q8_0 row, by the scalar reference (the same sums in the
/// same order as `q8_0::dot_reference` on the original rows).
pub fn dot_group_reference(group: &[u8], ys: &[ActivationBlock]) -> [f32; ROWS] {
    let mut out = [0f32; ROWS];
    for (r, out) in out.iter_mut().enumerate() {
        *out = group
            .chunks_exact(GROUP_BLOCK_BYTES)
            .zip(ys.chunks_exact(BLOCKS))
            .flat_map(|(group_block, ys)| {
                (0..BLOCKS).map(move |k| {
                    let block = block_of(group_block, r, k);
                    let d = f16::from_le_bytes([block[0], block[1]]).to_f32();
                    let y = &ys[k].block;
                    d * y.d * block_sum_reference(&block, y) as f32
                })
            })
            .sum();
    }
    out
}

/// A group's eight rows (interleaved) dotted with one to [`super::TILE`] activation rows:
/// `out[j][r]`. `ahead` (empty, or as many bytes as `group`) is asked into L2 as the pass goes,
/// a group block's worth per group block: the bytes of a group to come.
// Only the SIMD kernels prefetch `ahead`.
#[cfg_attr(not(target_arch = "x86_64"), allow(unused_variables))]
pub fn dot_group(
    isa: Isa,
    group: &[u8],
    ahead: &[u8],
    ys: &[&[ActivationBlock]],
    out: &mut [[f32; ROWS]],
) {
    debug_assert_eq!(ys.len(), out.len());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available()` offers `Avx512` only when the CPU has AVX-512 F, BW, VL and
        // VNNI besides AVX2, FMA and F16C; a short activation row panics at its bounds-checked
        // index, and `group` is whole group blocks (the caller's chunking).
        #[allow(unsafe_code)]
        Isa::Avx512 => unsafe {
            super::dispatch_tile!(ys, out, |tile| avx512::dot_group(tile, group, ahead))
        },
        _ => {
            for (out, y) in out.iter_mut().zip(ys) {
                *out = dot_group_reference(group, y);
            }
        }
    }
}

/// [`dot_group`] on a group of eight rows as the file stores them (`stored`, rows of
/// `row_bytes` bytes one after the other), interleaving it in registers on the way, and into
/// `into` (as many bytes) where given, for later passes to take to [`dot_group`]. The results
/// are bit for bit those of [`dot_group`] on the interleaved group.
pub fn dot_stored_group(
    isa: Isa,
    stored: &[u8],
    row_bytes: usize,
    into: Option<&mut [u8]>,
    ahead: &[u8],
    ys: &[&[ActivationBlock]],
    out: &mut [[f32; ROWS]],
) {
    assert_eq!(stored.len(), ROWS * row_bytes, "eight stored rows");
    assert!(
        row_bytes.is_multiple_of(BLOCKS * BLOCK_BYTES),
        "whole group blocks"
    );
    if let Some(into) = &into {
        assert_eq!(into.len(), stored.len(), "room for one interleaved group");
    }
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as `dot_group`'s; the lengths are asserted above.
        #[allow(unsafe_code)]
        Isa::Avx512 => unsafe {
            let into = into.map_or(std::ptr::null_mut(), <[u8]>::as_mut_ptr);
            super::dispatch_tile!(ys, out, |tile| avx512::dot_stored_group(
                tile, stored, row_bytes, into, ahead
            ))
        },
        _ => {
            let mut own = Vec::new();
            let into = match into {
                Some(into) => into,
                None => {
                    own.resize(stored.len(), 0);
                    &mut own
                }
            };
            interleave_group_reference(stored, row_bytes, into);
            dot_group(isa, into, ahead, ys, out);
        }
    }
}

/// `out (n x rows) = xs (n x cols) · Wᵀ` for an interleaved Q8_0 matrix ([`interleave`]).
pub fn matmul(interleaved: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
    products(super::Layout::Interleaved(interleaved), rows, cols, xs, out);
}

/// `out (n x rows) = xs (n x cols) · Wᵀ` for a Q8_0 matrix as the file stores it, each group of
/// eight rows interleaved as it is used; bit for bit what [`matmul`] gives on its interleaved
/// copy.
pub fn matmul_stored(stored: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
    products(super::Layout::Stored(stored), rows, cols, xs, out);
}

fn products(layout: super::Layout<'_>, rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
    assert!(cols.is_multiple_of(WEIGHTS) && rows.is_multiple_of(ROWS));
    let activations = super::activation_rows(xs, cols, activations);
    let views: Vec<&[ActivationBlock]> = activations.iter().map(Vec::as_slice).collect();
    let isa = super::isa();
    let row_bytes = cols / QK8_0 * BLOCK_BYTES;
    let tile_size = match layout {
        super::Layout::Interleaved(_) => tile(isa),
        super::Layout::Stored(_) => stored_tile(isa),
    };
    super::split_groups(
        layout,
        rows,
        ROWS * row_bytes,
        &views,
        tile_size,
        out,
        |group, ahead, tile_ys, tile_out| match group {
            super::Group::Interleaved(group) => dot_group(isa, group, ahead, tile_ys, tile_out),
            super::Group::Stored { stored, into } => {
                dot_stored_group(isa, stored, row_bytes, into, ahead, tile_ys, tile_out)
            }
        },
    );
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    //! AVX-512 VNNI: sixteen i32 lanes, two a row; weights stored plus 128, the offset taken
    //! off each block's sums.
    use std::arch::x86_64::*;

    use super::{ActivationBlock, BLOCKS, BLOCK_BYTES, D, GROUP_BLOCK_BYTES, QS, ROWS};

    /// One block's integer sums against `y`, the block's weights interleaved in `w` (64 bytes
    /// a register, as a group block holds them): sixteen lanes, row r in lanes 2r and 2r + 1.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn block_isum(w: &[__m512i; 4], y: &ActivationBlock) -> __m512i {
        // SAFETY: the caller guarantees the features; `i < 4` keeps the loads inside `y`'s
        // 32 bytes.
        unsafe {
            let mut isum = _mm512_setzero_si512();
            for (i, &w) in w.iter().enumerate() {
                let a = _mm512_set1_epi64(std::ptr::read_unaligned(
                    y.block.qs.as_ptr().add(8 * i) as *const i64
                ));
                isum = _mm512_dpbusd_epi32(isum, w, a);
            }
            // [even, odd] in every pair of lanes: the little-endian i64 of the two i32s.
            let offsets = (i64::from(y.offsets[1]) << 32) | i64::from(y.offsets[0] as u32);
            _mm512_sub_epi32(isum, _mm512_set1_epi64(offsets))
        }
    }

    /// Block `k`'s weights of the interleaved group block at `p`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
    unsafe fn interleaved_weights(p: *const u8, k: usize) -> [__m512i; 4] {
        // SAFETY: the caller guarantees the features and a whole group block at `p`.
        unsafe {
            std::array::from_fn(|i| {
                _mm512_loadu_si512(p.add(QS + 256 * k + 64 * i) as *const __m512i)
            })
        }
    }

    /// `N` activation rows against a group of eight rows: `out[j][r]`, asking for `ahead`
    /// (empty or as long as `group`) into L2 a group block's worth at a time. Why: with two or
    /// more activation rows a pass computes long enough that reading the next group has to
    /// overlap it, and left to the hardware it did not (see `q4k_x8`'s `PREFETCH_BLOCKS`).
    /// Asking for the group's own bytes 16 group blocks ahead, as this kernel first did, eight
    /// sequences decoded together measured 123-148 tokens/s against 100-106 without; asking for
    /// the next group's, as now, measured 112-140 against that version's 128-138
    /// (`--bench engine -- --gguf` Q8_0, interleaved runs), the same within this host's noise.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn dot_group<const N: usize>(
        ys: [&[ActivationBlock]; N],
        group: &[u8],
        ahead: &[u8],
    ) -> [[f32; ROWS]; N] {
        // SAFETY: the caller guarantees the features, that `group` is whole group blocks and
        // that each `ys[j]` has four blocks for each group block.
        unsafe {
            let pairs = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
            let mut acc = [_mm512_setzero_ps(); N];
            for (index, gb) in group.chunks_exact(GROUP_BLOCK_BYTES).enumerate() {
                let p = gb.as_ptr();
                if N > 1 {
                    prefetch_ahead(ahead, index);
                }
                let mut block = |k: usize, weights: &[__m512i; 4]| {
                    let d = _mm256_cvtph_ps(_mm_loadu_si128(p.add(D + 16 * k) as *const __m128i));
                    let d_pairs = _mm512_permutexvar_ps(pairs, _mm512_castps256_ps512(d));
                    for j in 0..N {
                        let y = &ys[j][BLOCKS * index + k];
                        let isum = block_isum(weights, y);
                        acc[j] = _mm512_fmadd_ps(
                            _mm512_cvtepi32_ps(isum),
                            _mm512_mul_ps(d_pairs, _mm512_set1_ps(y.block.d)),
                            acc[j],
                        );
                    }
                };
                if N == 1 {
                    // One row is bound by memory: the group block's weights read first, in
                    // address order. Left to the compiler, the loads came out in another
                    // order, block 3 first, and a decode step read 22.2-23.2 GB/s against
                    // 27.9-33.4 (kernels bench, Q8_0: the same kernel compiled before and
                    // after other code was added to the crate). For more rows the sixteen
                    // registers held at once spilled: a prefill fell from 315-344 to 210-215
                    // tokens/s.
                    let weights: [[__m512i; 4]; BLOCKS] =
                        std::array::from_fn(|k| interleaved_weights(p, k));
                    // Keeps the compiler from moving the loads in among the multiplies.
                    std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
                    for (k, weights) in weights.iter().enumerate() {
                        block(k, weights);
                    }
                } else {
                    for k in 0..BLOCKS {
                        block(k, &interleaved_weights(p, k));
                    }
                }
            }
            Accumulators { acc, pairs }.rows()
        }
    }

    /// [`dot_group`] on a group as stored: each block is interleaved in registers (see
    /// [`StoredBlocks`]) and, where `into` is not null, written to its place there for the
    /// passes after this one.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn dot_stored_group<const N: usize>(
        ys: [&[ActivationBlock]; N],
        stored: &[u8],
        row_bytes: usize,
        into: *mut u8,
        ahead: &[u8],
    ) -> [[f32; ROWS]; N] {
        // SAFETY: the caller guarantees the features, eight stored rows of `row_bytes` in
        // whole group blocks, null or as many bytes at `into`, and four activation blocks in
        // each `ys[j]` for each group block.
        unsafe {
            let blocks = row_bytes / (BLOCKS * BLOCK_BYTES);
            let transpose = StoredBlocks::new(row_bytes);
            let mut acc = Accumulators::<N>::new();
            let mut scales = [0u16; BLOCKS * ROWS];
            for index in 0..blocks {
                prefetch_ahead(ahead, index);
                let base = stored.as_ptr().add(index * BLOCKS * BLOCK_BYTES);
                transpose.scales(base, &mut scales);
                let dst = if into.is_null() {
                    None
                } else {
                    let dst = into.add(index * GROUP_BLOCK_BYTES);
                    std::ptr::copy_nonoverlapping(
                        scales.as_ptr() as *const u8,
                        dst.add(D),
                        2 * BLOCKS * ROWS,
                    );
                    Some(dst)
                };
                for k in 0..BLOCKS {
                    let w = transpose.weights(base, k);
                    if let Some(dst) = dst {
                        for (i, &w) in w.iter().enumerate() {
                            _mm512_storeu_si512(dst.add(QS + 256 * k + 64 * i) as *mut __m512i, w);
                        }
                    }
                    let d = _mm256_cvtph_ps(_mm_loadu_si128(
                        scales.as_ptr().add(ROWS * k) as *const __m128i
                    ));
                    acc.add(&ys, BLOCKS * index + k, d, &w);
                }
            }
            acc.rows()
        }
    }

    /// Asks for group block `index`'s share of `ahead` (a group's bytes, or nothing) into L2.
    #[inline]
    fn prefetch_ahead(ahead: &[u8], index: usize) {
        if let Some(ahead) = ahead.get(index * GROUP_BLOCK_BYTES..) {
            let len = ahead.len().min(GROUP_BLOCK_BYTES);
            super::super::x86::prefetch_l2(ahead.as_ptr(), len);
        }
    }

    /// The running sums of `N` activation rows against a group: sixteen lanes each, row r in
    /// lanes 2r and 2r + 1.
    struct Accumulators<const N: usize> {
        acc: [__m512; N],
        pairs: __m512i,
    }

    impl<const N: usize> Accumulators<N> {
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn new() -> Self {
            Accumulators {
                acc: [_mm512_setzero_ps(); N],
                pairs: _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0),
            }
        }

        /// Adds block `block` of each activation row times the weights `w`, whose eight rows'
        /// scales are `d`.
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
        unsafe fn add(
            &mut self,
            ys: &[&[ActivationBlock]; N],
            block: usize,
            d: __m256,
            w: &[__m512i; 4],
        ) {
            // SAFETY: the caller guarantees the features; `block` is read by bounds-checked
            // index.
            unsafe {
                let d_pairs = _mm512_permutexvar_ps(self.pairs, _mm512_castps256_ps512(d));
                for (acc, ys) in self.acc.iter_mut().zip(ys) {
                    let y = &ys[block];
                    *acc = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(block_isum(w, y)),
                        _mm512_mul_ps(d_pairs, _mm512_set1_ps(y.block.d)),
                        *acc,
                    );
                }
            }
        }

        /// Each activation row's eight sums, its two lanes a row added.
        #[inline]
        #[target_feature(enable = "avx512f,avx512vl")]
        fn rows(&self) -> [[f32; ROWS]; N] {
            let even = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 14, 12, 10, 8, 6, 4, 2, 0);
            let odd = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 15, 13, 11, 9, 7, 5, 3, 1);
            let mut out = [[0f32; ROWS]; N];
            for (out, &acc) in out.iter_mut().zip(&self.acc) {
                let rows = _mm256_add_ps(
                    _mm512_castps512_ps256(_mm512_permutexvar_ps(even, acc)),
                    _mm512_castps512_ps256(_mm512_permutexvar_ps(odd, acc)),
                );
                // SAFETY: eight f32 into an array of eight.
                unsafe { _mm256_storeu_ps(out.as_mut_ptr(), rows) };
            }
            out
        }
    }

    /// Interleaving a stored group's blocks in registers, as `interleave_group_reference`
    /// defines it: for each block, the eight rows' weights loaded two rows to a register and
    /// transposed in 8-byte pieces (two `vpermt2q` and two `vshufi64x2` per register of
    /// output), their sign bits flipped; the scales copied one by one (a gather of them
    /// measured slower on Zen 4).
    struct StoredBlocks {
        row_bytes: usize,
        flip: __m512i,
        first: __m512i,
        second: __m512i,
    }

    impl StoredBlocks {
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn new(row_bytes: usize) -> StoredBlocks {
            StoredBlocks {
                row_bytes,
                flip: _mm512_set1_epi8(-128),
                // Lanes from high to low: [r0 q0, r1 q0, r2 q0, r3 q0, r0 q1, r1 q1, r2 q1,
                // r3 q1] from two registers of two rows' four 8-byte pieces each; q2, q3 alike.
                first: _mm512_set_epi64(13, 9, 5, 1, 12, 8, 4, 0),
                second: _mm512_set_epi64(15, 11, 7, 3, 14, 10, 6, 2),
            }
        }

        /// The eight rows' scales of the four blocks at `base` (row 0's group block), `[k][r]`.
        #[inline]
        unsafe fn scales(&self, base: *const u8, out: &mut [u16; BLOCKS * ROWS]) {
            for k in 0..BLOCKS {
                for row in 0..ROWS {
                    // SAFETY: the caller guarantees eight rows of whole group blocks from
                    // `base`'s row start.
                    out[ROWS * k + row] = unsafe {
                        std::ptr::read_unaligned(
                            base.add(row * self.row_bytes + k * BLOCK_BYTES) as *const u16
                        )
                    };
                }
            }
        }

        /// Block `k`'s weights of the group block at `base`, interleaved and offset by 128.
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx2")]
        unsafe fn weights(&self, base: *const u8, k: usize) -> [__m512i; 4] {
            // SAFETY: the caller guarantees eight rows of whole group blocks from `base`'s row
            // start; each load reads a block's 32 weights, from its third byte.
            unsafe {
                let weights = |row: usize| {
                    _mm256_loadu_si256(
                        base.add(row * self.row_bytes + k * BLOCK_BYTES + 2) as *const __m256i
                    )
                };
                let two_rows = |row: usize| {
                    _mm512_inserti64x4::<1>(_mm512_castsi256_si512(weights(row)), weights(row + 1))
                };
                let (r01, r23, r45, r67) = (two_rows(0), two_rows(2), two_rows(4), two_rows(6));
                let low_a = _mm512_permutex2var_epi64(r01, self.first, r23);
                let high_a = _mm512_permutex2var_epi64(r01, self.second, r23);
                let low_b = _mm512_permutex2var_epi64(r45, self.first, r67);
                let high_b = _mm512_permutex2var_epi64(r45, self.second, r67);
                [
                    _mm512_shuffle_i64x2::<0x44>(low_a, low_b),
                    _mm512_shuffle_i64x2::<0xEE>(low_a, low_b),
                    _mm512_shuffle_i64x2::<0x44>(high_a, high_b),
                    _mm512_shuffle_i64x2::<0xEE>(high_a, high_b),
                ]
                .map(|piece| _mm512_xor_si512(piece, self.flip))
            }
        }
    }

    /// Each row's integer sum of block `k` of one group block, for the exactness tests.
    #[cfg(test)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn block_sums(
        group_block: &[u8],
        k: usize,
        y: &ActivationBlock,
    ) -> [i32; ROWS] {
        // SAFETY: the caller guarantees the features and a whole group block.
        unsafe {
            let mut lanes = [0i32; 16];
            _mm512_storeu_si512(
                lanes.as_mut_ptr() as *mut __m512i,
                block_isum(&interleaved_weights(group_block.as_ptr(), k), y),
            );
            let mut out = [0; ROWS];
            for (r, out) in out.iter_mut().enumerate() {
                *out = lanes[2 * r] + lanes[2 * r + 1];
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{random_activations, random_bytes};
    use super::super::{available, q8_0};
    use super::*;

    /// A random `rows x (blocks · 32)` Q8_0 matrix with finite scales and every weight byte,
    /// -128 included.
    fn random_matrix(seed: u64, rows: usize, blocks: usize) -> Vec<u8> {
        let mut bytes = random_bytes(seed, rows * blocks * BLOCK_BYTES);
        for block in bytes.chunks_exact_mut(BLOCK_BYTES) {
            let d = f16::from_f32(0.001 + f32::from(block[0]) / 65536.0);
            block[0..2].copy_from_slice(&d.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn interleaving_keeps_every_row_and_every_kernel_equals_the_reference() {
        for isa in available() {
            for seed in 1..20u64 {
                let (rows, blocks) = (
                    8 * (1 + seed as usize % 2),
                    BLOCKS * (1 + seed as usize % 5),
                );
                let cols = blocks * QK8_0;
                let matrix = random_matrix(seed, rows, blocks);
                let interleaved = interleave(&matrix, rows, cols).expect("whole groups");
                let group_bytes = cols / WEIGHTS * GROUP_BLOCK_BYTES;
                let row_bytes = blocks * BLOCK_BYTES;
                let xs: Vec<Vec<ActivationBlock>> = (0..6)
                    .map(|j| activations(&random_activations(seed * 17 + j, cols)))
                    .collect();
                let blocks_0: Vec<BlockQ8_0> = xs[0].iter().map(|y| y.block).collect();
                for g in 0..rows / ROWS {
                    let group = &interleaved[g * group_bytes..][..group_bytes];
                    let reference = dot_group_reference(group, &xs[0]);
                    let mut alone = [[0f32; ROWS]];
                    dot_group(isa, group, &[], &[&xs[0]], &mut alone);
                    for r in 0..ROWS {
                        let row = &matrix[(g * ROWS + r) * row_bytes..][..row_bytes];
                        assert_eq!(
                            reference[r].to_bits(),
                            q8_0::dot_reference(row, &blocks_0).to_bits(),
                            "seed {seed}, row {}",
                            g * ROWS + r
                        );
                        let magnitude: f32 = row
                            .chunks_exact(BLOCK_BYTES)
                            .zip(&blocks_0)
                            .map(|(b, y)| q8_0::dot_reference(b, std::slice::from_ref(y)).abs())
                            .sum();
                        assert!(
                            (alone[0][r] - reference[r]).abs() <= 1e-5 * magnitude.max(1e-3),
                            "{isa:?}, seed {seed}, row {r}: {} vs {}",
                            alone[0][r],
                            reference[r]
                        );
                    }
                    #[cfg(target_arch = "x86_64")]
                    if isa == Isa::Avx512 {
                        for (index, group_block) in
                            group.chunks_exact(GROUP_BLOCK_BYTES).enumerate()
                        {
                            for k in 0..BLOCKS {
                                let y = &xs[0][BLOCKS * index + k];
                                // SAFETY: `available()` listed AVX-512 with what it needs.
                                #[allow(unsafe_code)]
                                let simd = unsafe { avx512::block_sums(group_block, k, y) };
                                for (r, sum) in simd.iter().enumerate() {
                                    let block = block_of(group_block, r, k);
                                    assert_eq!(*sum, block_sum_reference(&block, &y.block));
                                }
                            }
                        }
                    }
                    let views: Vec<&[ActivationBlock]> = xs.iter().map(Vec::as_slice).collect();
                    for tile_views in views.chunks(tile(isa)) {
                        let mut together = vec![[0f32; ROWS]; tile_views.len()];
                        // Asking for bytes ahead reads nothing into the sums.
                        dot_group(isa, group, group, tile_views, &mut together);
                        for (j, view) in tile_views.iter().enumerate() {
                            let mut alone = [[0f32; ROWS]];
                            dot_group(isa, group, &[], std::slice::from_ref(view), &mut alone);
                            assert_eq!(
                                together[j], alone[0],
                                "{isa:?}, seed {seed}, activation {j}"
                            );
                        }
                    }
                }
            }
        }
        assert!(
            interleave(&random_matrix(1, 8, 3), 8, 3 * QK8_0).is_none(),
            "3 blocks"
        );
    }

    #[test]
    fn a_stored_group_is_interleaved_as_defined_and_dotted_as_the_interleaved_one() {
        for isa in available() {
            for seed in 1..12u64 {
                let blocks = BLOCKS * (1 + seed as usize % 6);
                let (cols, row_bytes) = (blocks * QK8_0, blocks * BLOCK_BYTES);
                let stored = random_matrix(seed, ROWS, blocks);
                let mut expected = vec![0u8; stored.len()];
                interleave_group_reference(&stored, row_bytes, &mut expected);
                let xs: Vec<Vec<ActivationBlock>> = (0..tile(isa) as u64)
                    .map(|j| activations(&random_activations(seed * 31 + j, cols)))
                    .collect();
                let views: Vec<&[ActivationBlock]> = xs.iter().map(Vec::as_slice).collect();
                for n in 1..=views.len() {
                    let mut interleaved_out = vec![[0f32; ROWS]; n];
                    dot_group(isa, &expected, &[], &views[..n], &mut interleaved_out);
                    for keep in [true, false] {
                        // Stale bytes in the buffer, as a reused scratch buffer has.
                        let mut into = random_bytes(seed + 100, stored.len());
                        let mut out = vec![[0f32; ROWS]; n];
                        let target = keep.then_some(&mut into[..]);
                        dot_stored_group(
                            isa,
                            &stored,
                            row_bytes,
                            target,
                            &[],
                            &views[..n],
                            &mut out,
                        );
                        assert!(
                            !keep || into == expected,
                            "{isa:?}, seed {seed}, {blocks} blocks"
                        );
                        assert_eq!(out, interleaved_out, "{isa:?}, seed {seed}, {n} rows");
                    }
                }
            }
        }
    }

    #[test]
    fn both_matmuls_dot_every_row_with_every_activation() {
        // Five groups: two pairs and one alone, over however many threads the pool has; more
        // activation rows than a tile, so that later passes read what the first interleaved.
        let (rows, blocks, n) = (40, 8, 19);
        let cols = blocks * QK8_0;
        let matrix = random_matrix(3, rows, blocks);
        let interleaved = interleave(&matrix, rows, cols).expect("whole groups");
        let xs = random_activations(9, n * cols);
        let mut stored_out = vec![0f32; rows * n];
        matmul_stored(&matrix, rows, cols, &xs, &mut stored_out);
        let mut copy_out = vec![0f32; rows * n];
        matmul(&interleaved, rows, cols, &xs, &mut copy_out);
        let group_bytes = cols / WEIGHTS * GROUP_BLOCK_BYTES;
        let isa = super::super::isa();
        for j in 0..n {
            let x = activations(&xs[j * cols..(j + 1) * cols]);
            for g in 0..rows / ROWS {
                let mut expected = [[0f32; ROWS]];
                dot_group(
                    isa,
                    &interleaved[g * group_bytes..][..group_bytes],
                    &[],
                    &[&x],
                    &mut expected,
                );
                for (r, &expected) in expected[0].iter().enumerate() {
                    let at = j * rows + g * ROWS + r;
                    assert_eq!(
                        stored_out[at], expected,
                        "as stored: activation {j}, row {r}"
                    );
                    assert_eq!(copy_out[at], expected, "the copy: activation {j}, row {r}");
                }
            }
        }
    }
}
