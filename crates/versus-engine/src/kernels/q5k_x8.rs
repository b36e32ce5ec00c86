//! Q5_K with eight rows interleaved: Q4_K's interleaved layout (`q4k_x8`) for the scales,
//! minimums and nibbles, followed by the fifth bits as byte masks, so that Q5_K matrices (most
//! of a Q5_K_M file) go through Q4_K's eight-row AVX-512 kernel.
//!
//! Why: the row-at-a-time kernel (`q5k.rs`) unpacks a block once per tile but multiplies it
//! with each activation row separately, and a prefill or a batch is bound by that compute. In
//! a side-by-side run on the 2-core development machine, versus prefilled a Q5_K_M file at
//! 0.45x llama.cpp's tokens/s, and sixteen Q5_K rows cost about 2.3x sixteen interleaved Q4_K
//! rows (kernels bench).
//!
//! A group block holds, for one block index, the eight rows' blocks: first `q4k_x8`'s group
//! block made of their `d`, `dmin`, packed scales and nibbles ([`q4k_x8::GROUP_BLOCK_BYTES`]
//! bytes), then [`FIFTH_BIT_BYTES`] of fifth bits. For each 32-byte chunk `c` of the nibbles
//! and each of its four 64-byte loads `i` (bytes `8i..8i+8` of chunk `c` of each row), two
//! 64-bit masks, one for the load's low nibbles (sub-block `2c`) and one for its high nibbles
//! (sub-block `2c + 1`): bit `8r + p` is the fifth bit of the weight whose nibble is the
//! load's byte `8r + p`, that is bit `2c` (or `2c + 1`) of row `r`'s `qh[8i + p]`. The group
//! block takes as many bytes as the eight blocks in the file (1408, 22 cache lines).
//!
//! Why masks: AVX-512 loads a mask register straight from memory and adds 16 under it in one
//! instruction, where the bits as the file stores them would take shifts and ands per load
//! and chunk. AVX2 has no mask registers, so on AVX2 machines Q5_K stays a row at a time.
//!
//! Exactness: each row's integer sums equal `q5k::block_sums_reference`'s on the row's own
//! block bit for bit, and its result equals the row-at-a-time reference within float rounding;
//! the tests check both, and that a row's result does not depend on its tile.

use super::q4k_x8;
use super::q5k::{self, BLOCK_BYTES};
use super::q8k::{BlockQ8K, QK_K};
use super::Isa;

/// Rows interleaved in a group.
pub const ROWS: usize = super::GROUP_ROWS;

/// Bytes of a group block's fifth bits: two 8-byte masks for each of a block's sixteen 64-byte
/// nibble loads.
pub const FIFTH_BIT_BYTES: usize = 4 * 4 * 2 * 8;

/// Bytes of a group's eight blocks at one block index.
pub const GROUP_BLOCK_BYTES: usize = q4k_x8::GROUP_BLOCK_BYTES + FIFTH_BIT_BYTES;

/// Where, in a group block, the masks of chunk `chunk`'s load `i` lie: the low nibbles' mask,
/// then the high nibbles'.
pub(super) const fn fifth_bit_masks(chunk: usize, i: usize) -> usize {
    q4k_x8::GROUP_BLOCK_BYTES + 64 * chunk + 16 * i
}

/// Where a Q5_K block keeps its `qh` and its nibbles (after `d`, `dmin` and the twelve packed
/// bytes of scales and minimums, which are Q4_K's).
const QH: usize = 16;
const QS: usize = 48;

/// Activation rows one pass takes: eight, where `q4k_x8` takes four. Q5_K's unpacking (a mask
/// load and a masked add per nibble register besides Q4_K's) is worth sharing with more rows:
/// prefilling the Q5_K_M benchmark file measured 363-376 tokens/s against 288-359 with four
/// (`--bench engine -- --gguf FILE --profile prefill`, interleaved runs).
pub fn tile(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 8,
        Isa::Avx2 | Isa::Portable => 1,
    }
}

/// Whether the interleaved kernel is the one to use for a `rows x cols` Q5_K matrix on `isa`:
/// on AVX-512 VNNI machines (see the module's documentation for AVX2), when the rows fill
/// whole groups. `VERSUS_INTERLEAVE=off` keeps every matrix a row at a time.
pub fn applies(isa: Isa, rows: usize, cols: usize) -> bool {
    super::eight_rows_apply(isa == Isa::Avx512, rows, cols, QK_K)
}

/// `bytes` (a `rows x cols` Q5_K matrix, rows one after another) interleaved on `threads`
/// threads, or `None` when the rows do not fill whole groups, the bytes are not the matrix's or
/// the system will not map memory for the copy.
pub fn interleave(
    bytes: &[u8],
    rows: usize,
    cols: usize,
    threads: usize,
) -> Option<super::Interleaved> {
    let sizes = (BLOCK_BYTES, GROUP_BLOCK_BYTES);
    super::interleave_k_quant(bytes, (rows, cols), sizes, threads, put_row)
}

/// Puts row `r`'s block into a group block.
fn put_row(group_block: &mut [u8], r: usize, block: &[u8]) {
    q4k_x8::put_row(group_block, r, &block[..QH], &block[QS..]);
    let qh = &block[QH..QS];
    for chunk in 0..4 {
        for i in 0..4 {
            for half in 0..2 {
                let bit = 2 * chunk + half;
                // Byte r of the little-endian mask holds row r's eight bits.
                let byte = (0..8).fold(0u8, |byte, p| byte | (((qh[8 * i + p] >> bit) & 1) << p));
                group_block[fifth_bit_masks(chunk, i) + 8 * half + r] = byte;
            }
        }
    }
}

/// Row `r`'s own Q5_K block, taken back out of a group block.
pub fn original_block(group_block: &[u8], r: usize) -> [u8; BLOCK_BYTES] {
    let (head, qs) = q4k_x8::take_row(group_block, r);
    let mut block = [0u8; BLOCK_BYTES];
    block[..QH].copy_from_slice(&head);
    block[QS..].copy_from_slice(&qs);
    for chunk in 0..4 {
        for i in 0..4 {
            for half in 0..2 {
                let byte = group_block[fifth_bit_masks(chunk, i) + 8 * half + r];
                for p in 0..8 {
                    block[QH + 8 * i + p] |= ((byte >> p) & 1) << (2 * chunk + half);
                }
            }
        }
    }
    block
}

/// A group's eight rows dotted with a Q8_K row, by the scalar reference: each row's own blocks
/// through `q5k::dot_reference`.
pub fn dot_group_reference(group: &[u8], ys: &[BlockQ8K]) -> [f32; ROWS] {
    std::array::from_fn(|r| {
        let row: Vec<u8> = group
            .chunks_exact(GROUP_BLOCK_BYTES)
            .flat_map(|group_block| original_block(group_block, r))
            .collect();
        q5k::dot_reference(&row, ys)
    })
}

/// A group's eight rows dotted with one to [`tile`] activation rows (`ys`): `out[j][r]`.
/// Every activation row gets the same operations whatever the tile holds.
pub fn dot_group(isa: Isa, group: &[u8], ys: &[&[BlockQ8K]], out: &mut [[f32; ROWS]]) {
    debug_assert_eq!(ys.len(), out.len());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available()` offers `Avx512` only when the CPU has AVX-512 F, BW, VL and
        // VNNI besides AVX2, FMA and F16C; a short activation row panics at its bounds-checked
        // index, and `group` is whole Q5_K group blocks (checked by the caller's chunking).
        #[allow(unsafe_code)]
        Isa::Avx512 => unsafe {
            super::dispatch_tile!(ys, out, |tile| q4k_x8::avx512::dot_q5k_group(tile, group))
        },
        _ => {
            for (out, y) in out.iter_mut().zip(ys) {
                *out = dot_group_reference(group, y);
            }
        }
    }
}

/// `out (n x rows) = xs (n x cols) · Wᵀ` for an interleaved Q5_K matrix: groups of rows split
/// over the kernel pool, each group's bytes read once for every tile of activation rows; a
/// prefill's long batch through `panel` instead, with the same results (`k_quant_matmul`).
pub fn matmul(interleaved: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
    super::k_quant_matmul::<{ super::panel::Q5K }>(
        interleaved,
        (rows, cols),
        GROUP_BLOCK_BYTES,
        tile,
        (xs, out),
        dot_group,
    );
}

/// Whether [`matmul_stored`] gives, bit for bit, what [`matmul`] gives on the interleaved
/// copy with `isa`: then the copy can be made in the background while the matrix is read as
/// stored. On AVX-512, whose eight-row kernel adds each row's sums in an order a row kernel
/// can follow (`q5k::dot_tile_in_x8_order`). Q5_K has no eight-row kernel elsewhere.
pub fn reads_stored(isa: Isa) -> bool {
    isa == Isa::Avx512
}

/// `out (n x rows) = xs (n x cols) · Wᵀ` for a Q5_K matrix as the file stores it, a row at a
/// time in the eight-row kernel's float order: where [`reads_stored`], bit for bit what
/// [`matmul`] gives on the interleaved copy; elsewhere the reference's results.
pub fn matmul_stored(stored: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
    super::k_quant_rows_in_x8_order(
        stored,
        (rows, cols),
        BLOCK_BYTES,
        (xs, out),
        q5k::dot_tile_in_x8_order,
    );
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        check_group_tiles, check_stored_matches_copy, random_activations, random_bytes,
    };
    use super::super::{available, q8k};
    use super::*;
    use half::f16;

    /// A random `rows x blocks` Q5_K matrix with finite, small scales.
    fn random_matrix(seed: u64, rows: usize, blocks: usize) -> Vec<u8> {
        let mut bytes = random_bytes(seed, rows * blocks * BLOCK_BYTES);
        for block in bytes.chunks_exact_mut(BLOCK_BYTES) {
            let (d, dmin) = (
                f16::from_f32(0.01 + f32::from(block[0]) / 4096.0),
                f16::from_f32(f32::from(block[2]) / 8192.0),
            );
            block[0..2].copy_from_slice(&d.to_le_bytes());
            block[2..4].copy_from_slice(&dmin.to_le_bytes());
        }
        bytes
    }

    /// Each row's two integer sums of one group block, by the kernel `isa` runs, or `None`
    /// where it has no SIMD kernel of its own.
    fn kernel_block_sums(isa: Isa, group_block: &[u8], y: &BlockQ8K) -> Option<[(i32, i32); 8]> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `available()` listed AVX-512 with everything its kernel needs, and the
            // callers pass whole Q5_K group blocks.
            #[allow(unsafe_code)]
            Isa::Avx512 => Some(unsafe { q4k_x8::avx512::block_sums::<true>(group_block, y) }),
            _ => {
                let _ = (group_block, y);
                None
            }
        }
    }

    #[test]
    fn interleaving_keeps_every_block_and_the_kernels_sum_it_exactly() {
        for seed in 1..12u64 {
            let (rows, blocks) = (8 * (1 + seed as usize % 3), 1 + seed as usize % 5);
            let matrix = random_matrix(seed, rows, blocks);
            let interleaved = interleave(&matrix, rows, blocks * QK_K, 1 + seed as usize % 2)
                .expect("whole groups");
            let group_bytes = blocks * GROUP_BLOCK_BYTES;
            let row_bytes = blocks * BLOCK_BYTES;
            let xs = q8k::quantized(&random_activations(seed, blocks * QK_K));
            for r in 0..rows {
                let group = &interleaved[r / ROWS * group_bytes..][..group_bytes];
                let row = &matrix[r * row_bytes..(r + 1) * row_bytes];
                for b in 0..blocks {
                    let group_block = &group[b * GROUP_BLOCK_BYTES..][..GROUP_BLOCK_BYTES];
                    let block = &row[b * BLOCK_BYTES..][..BLOCK_BYTES];
                    assert_eq!(
                        original_block(group_block, r % ROWS),
                        block,
                        "seed {seed}, row {r}, block {b}"
                    );
                    for isa in available() {
                        if let Some(sums) = kernel_block_sums(isa, group_block, &xs[b]) {
                            assert_eq!(
                                sums[r % ROWS],
                                q5k::block_sums_reference(block, &xs[b]),
                                "{isa:?}, seed {seed}, row {r}, block {b}"
                            );
                        }
                    }
                }
            }
        }
        assert!(
            interleave(&random_matrix(1, 7, 1), 7, QK_K, 2).is_none(),
            "7 rows"
        );
        assert!(
            interleave(&random_matrix(1, 8, 1)[1..], 8, QK_K, 2).is_none(),
            "a byte short"
        );
    }

    /// The largest sums a sub-block's lanes can reach (every weight 31, every activation -128
    /// or 127, every scale and minimum 63) come out of every kernel exact: the AVX-512 kernel
    /// packs two loads' sums into i16 words, which must not saturate.
    #[test]
    fn extreme_blocks_sum_exactly_in_every_kernel() {
        let mut block = [0xffu8; BLOCK_BYTES];
        block[0..2].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
        block[2..4].copy_from_slice(&f16::from_f32(0.25).to_le_bytes());
        let matrix: Vec<u8> = (0..ROWS).flat_map(|_| block).collect();
        let group = interleave(&matrix, ROWS, QK_K, 2).expect("one group");
        for activation in [-128i8, 127] {
            let y = BlockQ8K {
                d: 0.125,
                qs: [activation; QK_K],
                bsums: [16 * i16::from(activation); QK_K / 16],
            };
            let expected = q5k::block_sums_reference(&block, &y);
            for isa in available() {
                if let Some(sums) = kernel_block_sums(isa, &group, &y) {
                    assert_eq!(sums, [expected; ROWS], "{isa:?}, activations {activation}");
                }
                let mut out = [[0f32; ROWS]];
                dot_group(isa, &group, &[std::slice::from_ref(&y)], &mut out);
                let expected = q5k::dot_reference(&block, std::slice::from_ref(&y));
                for value in out[0] {
                    assert!((value - expected).abs() <= 1e-6 * expected.abs(), "{isa:?}");
                }
            }
        }
    }

    #[test]
    fn every_kernel_equals_the_reference_whatever_its_tile() {
        for isa in available() {
            for seed in 1..24u64 {
                let blocks = 1 + seed as usize % 20;
                let matrix = random_matrix(seed, ROWS, blocks);
                let group = interleave(&matrix, ROWS, blocks * QK_K, 2).expect("one group");
                let xs: Vec<Vec<BlockQ8K>> = (0..super::super::TILE as u64)
                    .map(|j| q8k::quantized(&random_activations(seed * 31 + j, blocks * QK_K)))
                    .collect();
                let row_bytes = blocks * BLOCK_BYTES;
                let magnitude: [f32; ROWS] = std::array::from_fn(|r| {
                    matrix[r * row_bytes..(r + 1) * row_bytes]
                        .chunks_exact(BLOCK_BYTES)
                        .zip(&xs[0])
                        .map(|(block, y)| q5k::dot_reference(block, std::slice::from_ref(y)).abs())
                        .sum()
                });
                let reference = (dot_group_reference(&group, &xs[0]), magnitude);
                check_group_tiles(isa, &group, &xs, tile(isa), reference, dot_group);
            }
        }
    }

    #[test]
    fn the_matmul_dots_every_row_with_every_activation() {
        let (rows, blocks, n) = (24, 3, 6);
        let cols = blocks * QK_K;
        let matrix = random_matrix(7, rows, blocks);
        let interleaved = interleave(&matrix, rows, cols, 2).expect("whole groups");
        let xs = random_activations(3, n * cols);
        let mut out = vec![0f32; rows * n];
        matmul(&interleaved, rows, cols, &xs, &mut out);
        let group_bytes = blocks * GROUP_BLOCK_BYTES;
        let isa = super::super::isa();
        for j in 0..n {
            let x = q8k::quantized(&xs[j * cols..(j + 1) * cols]);
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
                        "activation {j}, row {}",
                        g * ROWS + r
                    );
                }
            }
        }
    }

    #[test]
    fn the_stored_matmul_gives_the_copys_results_bit_for_bit() {
        let (rows, blocks) = (24, 3);
        let cols = blocks * QK_K;
        let matrix = random_matrix(5, rows, blocks);
        let copy = interleave(&matrix, rows, cols, 2).expect("whole groups");
        // Where the kernel does not apply both are the reference, row by row: the same bits
        // too.
        check_stored_matches_copy((&matrix, &copy), (rows, cols), true, matmul, matmul_stored);
    }
}
