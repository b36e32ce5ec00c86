//! Q8_0 with eight rows interleaved, as `q4k_x8` does for Q4_K: a Q8_0 matrix is repacked on
//! load so that one AVX-512 VNNI `dpbusd` multiplies 64 weights of eight rows with their
//! activations.
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
    super::interleaving_enabled()
        && isa == Isa::Avx512
        && rows.is_multiple_of(ROWS)
        && cols.is_multiple_of(WEIGHTS)
        && rows > 0
}

/// Activation rows one pass takes.
pub fn tile(isa: Isa) -> usize {
    if isa == Isa::Avx512 {
        4
    } else {
        1
    }
}

/// `bytes` (a `rows x cols` Q8_0 matrix) interleaved, or `None` when it does not fill whole
/// groups and group blocks.
pub fn interleave(bytes: &[u8], rows: usize, cols: usize) -> Option<super::Interleaved> {
    if !rows.is_multiple_of(ROWS) || !cols.is_multiple_of(WEIGHTS) {
        return None;
    }
    let row_bytes = cols / QK8_0 * BLOCK_BYTES;
    if bytes.len() != rows.checked_mul(row_bytes)? {
        return None;
    }
    let group_blocks = cols / WEIGHTS;
    let mut out = super::Interleaved::zeroed(rows / ROWS * group_blocks * GROUP_BLOCK_BYTES)?;
    super::fill_groups(
        &mut out,
        group_blocks * GROUP_BLOCK_BYTES,
        |group, group_out| {
            for (index, dst) in group_out.chunks_exact_mut(GROUP_BLOCK_BYTES).enumerate() {
                for r in 0..ROWS {
                    for k in 0..BLOCKS {
                        let start =
                            (group * ROWS + r) * row_bytes + (index * BLOCKS + k) * BLOCK_BYTES;
                        let src = &bytes[start..start + BLOCK_BYTES];
                        dst[D + 2 * (ROWS * k + r)..D + 2 * (ROWS * k + r) + 2]
                            .copy_from_slice(&src[0..2]);
                        for i in 0..4 {
                            let to = QS + 256 * k + 64 * i + 8 * r;
                            for (to, &weight) in dst[to..to + 8].iter_mut().zip(&src[2 + 8 * i..]) {
                                *to = weight ^ 0x80;
                            }
                        }
                    }
                }
            }
        },
    );
    Some(out)
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

/// A group's eight rows dotted with one to four activation rows: `out[j][r]`.
pub fn dot_group(isa: Isa, group: &[u8], ys: &[&[ActivationBlock]], out: &mut [[f32; ROWS]]) {
    debug_assert_eq!(ys.len(), out.len());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available()` offers `Avx512` only when the CPU has AVX-512 F, BW, VL and
        // VNNI besides AVX2, FMA and F16C; a short activation row panics at its bounds-checked
        // index, and `group` is whole group blocks (the caller's chunking).
        #[allow(unsafe_code)]
        Isa::Avx512 => unsafe {
            super::dispatch_tile!(ys, out, |tile| avx512::dot_group(tile, group))
        },
        _ => {
            for (out, y) in out.iter_mut().zip(ys) {
                *out = dot_group_reference(group, y);
            }
        }
    }
}

/// `out (n x rows) = xs (n x cols) · Wᵀ` for an interleaved Q8_0 matrix.
pub fn matmul(interleaved: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
    assert!(cols.is_multiple_of(WEIGHTS) && rows.is_multiple_of(ROWS));
    let activations: Vec<Vec<ActivationBlock>> = xs.chunks_exact(cols).map(activations).collect();
    let views: Vec<&[ActivationBlock]> = activations.iter().map(Vec::as_slice).collect();
    let isa = super::isa();
    super::split_groups(
        interleaved,
        rows,
        cols / WEIGHTS * GROUP_BLOCK_BYTES,
        &views,
        tile(isa),
        out,
        |group, tile_ys, tile_out| dot_group(isa, group, tile_ys, tile_out),
    );
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    //! AVX-512 VNNI: sixteen i32 lanes, two a row; weights stored plus 128, the offset taken
    //! off each block's sums.
    use std::arch::x86_64::*;

    use super::{ActivationBlock, BLOCKS, D, GROUP_BLOCK_BYTES, QS, ROWS};

    /// One block's (`k` of the group block at `p`) integer sums against `y`: sixteen lanes,
    /// row r in lanes 2r and 2r + 1.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn block_isum(p: *const u8, k: usize, y: &ActivationBlock) -> __m512i {
        // SAFETY: the caller guarantees the features and a whole group block at `p`; `k < 4`
        // keeps the loads inside it, and `i < 4` inside `y`'s 32 bytes.
        unsafe {
            let mut isum = _mm512_setzero_si512();
            for i in 0..4 {
                let w = _mm512_loadu_si512(p.add(QS + 256 * k + 64 * i) as *const __m512i);
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

    /// How far ahead (in group blocks, about 17 KB) a pass over two or more activation rows
    /// asks for the weights, into L2 (`prefetcht1`), as the Q4_K kernel does (see its
    /// `PREFETCH_BLOCKS` for why L2 and not L1). Measured on the 2-core development machine,
    /// eight sequences decoded together (`--bench engine -- --profile batch8`, interleaved
    /// runs): 123-148 tokens/s against 100-106 without; 32 and 64 blocks ahead measured the
    /// same. One row is bound by memory and asks for nothing.
    const PREFETCH_BLOCKS: usize = 16;

    /// `N` activation rows against a group of eight rows: `out[j][r]`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn dot_group<const N: usize>(
        ys: [&[ActivationBlock]; N],
        group: &[u8],
    ) -> [[f32; ROWS]; N] {
        // SAFETY: the caller guarantees the features, that `group` is whole group blocks and
        // that each `ys[j]` has four blocks for each group block.
        unsafe {
            let pairs = _mm512_set_epi32(7, 7, 6, 6, 5, 5, 4, 4, 3, 3, 2, 2, 1, 1, 0, 0);
            let mut acc = [_mm512_setzero_ps(); N];
            for (index, gb) in group.chunks_exact(GROUP_BLOCK_BYTES).enumerate() {
                let p = gb.as_ptr();
                // Past the matrix's end this asks for nothing that matters.
                if N > 1 {
                    let ahead = p.wrapping_add(PREFETCH_BLOCKS * GROUP_BLOCK_BYTES);
                    super::super::x86::prefetch_l2(ahead, GROUP_BLOCK_BYTES);
                }
                for k in 0..BLOCKS {
                    let d = _mm256_cvtph_ps(_mm_loadu_si128(p.add(D + 16 * k) as *const __m128i));
                    let d_pairs = _mm512_permutexvar_ps(pairs, _mm512_castps256_ps512(d));
                    for j in 0..N {
                        let y = &ys[j][BLOCKS * index + k];
                        let isum = block_isum(p, k, y);
                        acc[j] = _mm512_fmadd_ps(
                            _mm512_cvtepi32_ps(isum),
                            _mm512_mul_ps(d_pairs, _mm512_set1_ps(y.block.d)),
                            acc[j],
                        );
                    }
                }
            }
            let even = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 14, 12, 10, 8, 6, 4, 2, 0);
            let odd = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 15, 13, 11, 9, 7, 5, 3, 1);
            let mut out = [[0f32; ROWS]; N];
            for j in 0..N {
                let rows = _mm256_add_ps(
                    _mm512_castps512_ps256(_mm512_permutexvar_ps(even, acc[j])),
                    _mm512_castps512_ps256(_mm512_permutexvar_ps(odd, acc[j])),
                );
                _mm256_storeu_ps(out[j].as_mut_ptr(), rows);
            }
            out
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
                block_isum(group_block.as_ptr(), k, y),
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
                    dot_group(isa, group, &[&xs[0]], &mut alone);
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
                        dot_group(isa, group, tile_views, &mut together);
                        for (j, view) in tile_views.iter().enumerate() {
                            let mut alone = [[0f32; ROWS]];
                            dot_group(isa, group, std::slice::from_ref(view), &mut alone);
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
    fn the_matmul_dots_every_row_with_every_activation() {
        let (rows, blocks, n) = (16, 8, 5);
        let cols = blocks * QK8_0;
        let matrix = random_matrix(3, rows, blocks);
        let interleaved = interleave(&matrix, rows, cols).expect("whole groups");
        let xs = random_activations(9, n * cols);
        let mut out = vec![0f32; rows * n];
        matmul(&interleaved, rows, cols, &xs, &mut out);
        let group_bytes = cols / WEIGHTS * GROUP_BLOCK_BYTES;
        let isa = super::super::isa();
        for j in 0..n {
            let x = activations(&xs[j * cols..(j + 1) * cols]);
            for g in 0..rows / ROWS {
                let mut expected = [[0f32; ROWS]];
                dot_group(
                    isa,
                    &interleaved[g * group_bytes..][..group_bytes],
                    &[&x],
                    &mut expected,
                );
                for r in 0..ROWS {
                    assert_eq!(
                        out[j * rows + g * ROWS + r],
                        expected[0][r],
                        "activation {j}, row {r}"
                    );
                }
            }
        }
    }
}
