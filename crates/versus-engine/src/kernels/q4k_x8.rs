//! Q4_K with eight rows interleaved: the layout a Q4_K matrix is repacked into (as llama.cpp's
//! CPU backend repacks it; on AVX-512 by a background thread, on AVX2 on load, see
//! `matrix::Kernel`), so that one kernel pass computes eight rows' dot products with an
//! activation row at once.
//!
//! Why: the row-at-a-time kernel (`q4k.rs`) spends most of its instructions per block on
//! unpacking the twelve bytes of six-bit scales, broadcasting each sub-block's scale and adding
//! up lanes, all for one row; on two cores it stayed compute-bound at about 60% of the memory
//! bandwidth. Interleaved, the scales of eight rows are unpacked together (a few vector
//! instructions per block, shared by every activation row of a pass), one 64-byte load holds
//! eight bytes of each of eight rows, and each VNNI
//! `dpbusd` multiplies 64 weights with their activations and adds them into the rows' lanes:
//! about a third of the instructions per byte. Measured on the 2-core development machine (Phi-4
//! shapes, Q4_K GGUF, `cargo bench -p versus-engine --bench engine`, `VERSUS_INTERLEAVE=off` for
//! the other side): prefill 1.8x and 16 sequences decoded together 1.7x the row-at-a-time
//! kernel's tokens/s with AVX-512, 1.4x and 1.7x with AVX2 (`VERSUS_ISA=avx2`); one sequence's
//! decode is bound by memory, and there the two were within the machine's noise (0.8x to 1.1x
//! in interleaved runs).
//!
//! A group of eight rows holds, for each block index, [`GROUP_BLOCK_BYTES`] bytes, exactly the
//! bytes of the eight original blocks:
//! - the eight rows' `d` (f16), then their `dmin` (f16);
//! - the twelve bytes of packed six-bit scales and minimums of each row, as three 32-bit words,
//!   `[word][row]`, so that one 32-byte load holds a word of every row;
//! - the nibbles, for each 32-byte chunk `c` of a block and each 8 bytes `i` of it, the eight
//!   rows' bytes `8i..8i+8` of chunk `c` one after another: 64 bytes a load.
//!
//! Why not unpack the scales on load: an earlier layout did (eight bytes of scale and eight of
//! minimum per row, padded so the nibbles started on a cache line), and read 5.6% more bytes a
//! decode step, which is bound by memory; in a side-by-side run versus decoded the Q4_K file at
//! 0.94x llama.cpp's tokens/s, while reading bytes at the same rate as llama.cpp.
//!
//! Exactness: the integer sums of each row and block equal `q4k::block_sums_reference`'s bit for
//! bit, and each row's result equals the row-at-a-time reference within float rounding (the
//! float sums run in a different order); the tests check both, and that a row's result does not
//! depend on how many activation rows share the pass.

use half::f16;

use super::q4k::{self, scales_and_mins, BLOCK_BYTES};
use super::q8k::{BlockQ8K, QK_K};
use super::Isa;

/// Rows interleaved in a group.
pub const ROWS: usize = super::GROUP_ROWS;

const D: usize = 0;
const DMIN: usize = 16;
/// The packed scales and minimums, `[word][row]` (see the module's documentation).
const PACKED: usize = 32;
/// The nibbles start on a cache line: with the buffer and every group block aligned to 64
/// bytes, no 64-byte load straddles two lines.
const QS: usize = 128;

/// Bytes of a group's eight blocks at one block index: eighteen cache lines, as many bytes as
/// the eight blocks take in the file.
pub const GROUP_BLOCK_BYTES: usize = QS + ROWS * 128;

/// In a group block's unpacked [`Header`]: the scales, `[sub-block][row]`, as bytes.
#[cfg(target_arch = "x86_64")]
const SCALES: usize = 0;
/// In a group block's unpacked [`Header`]: the minimums, `[sub-block pair][row][2]`, as bytes.
#[cfg(target_arch = "x86_64")]
const MINS: usize = 64;

/// A group block's scales and minimums unpacked for the kernels (`avx2::unpack_header`).
#[cfg(target_arch = "x86_64")]
#[repr(C, align(64))]
struct Header([u8; 128]);

/// How far ahead (in group blocks, about 18 KB) a pass over two or more activation rows
/// asks for the weights, and into L2 (`prefetcht1`), not L1. At four rows and more the
/// kernel is no longer bound by memory alone, and without the prefetch its loads waited on
/// memory while the multiplies waited on the loads: a step took about the time of reading
/// the weights plus that of computing on them (the kernels bench's in-cache table), not the
/// larger of the two. Prefetching into L1 (`prefetcht0`) recovered part of it; into L2 much
/// more, presumably because an L1 prefetch holds one of L1's few miss buffers until its
/// line arrives, which caps the lines in flight, while L2 keeps many more. Measured on the
/// 2-core development machine, eight sequences decoded together (`--bench engine --
/// --profile batch8`, interleaved runs): 188-202 tokens/s into L2 (`t1` or `t2`), 126-160
/// into L1 at 16 or 64 blocks ahead, 146-151 with `prefetchnta`, 117-128 without; 8, 32
/// and 64 blocks ahead into L2 measured about the same. One row is bound by memory, and
/// there the prefetches only cost instructions (into L2: 39.9-47 against 42.3-65 tokens/s
/// for one sequence), so a single row's pass asks for nothing.
#[cfg(target_arch = "x86_64")]
pub(super) const PREFETCH_BLOCKS: usize = 16;

/// Activation rows one pass takes: each needs five registers of accumulators. A one-pass
/// kernel for eight (each 64-byte load unpacked once and met by all eight rows, two sub-block
/// sums a row live) measured no faster than two passes of four once the weights were
/// prefetched into L2 (kernels bench, eight rows: 28.4-29.3 ms against 25.5-27.3), so four it is.
pub fn tile(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 4,
        Isa::Avx2 => 2,
        Isa::Portable => 1,
    }
}

/// Whether the interleaved kernel is the one to use for a `rows x cols` Q4_K matrix on `isa`:
/// where it has a SIMD kernel (AVX-512 VNNI, AVX2) and the rows fill whole groups.
/// `VERSUS_INTERLEAVE=off` keeps every matrix a row at a time (for comparing the two kernels).
pub fn applies(isa: Isa, rows: usize, cols: usize) -> bool {
    super::eight_rows_apply(isa != Isa::Portable, rows, cols, QK_K)
}

/// `bytes` (a `rows x cols` Q4_K matrix, rows one after another) interleaved on `threads`
/// threads, or `None` when the rows do not fill whole groups, the bytes are not the matrix's or
/// the system will not map memory for the copy.
pub fn interleave(
    bytes: &[u8],
    rows: usize,
    cols: usize,
    threads: usize,
) -> Option<super::Interleaved> {
    let sizes = (BLOCK_BYTES, GROUP_BLOCK_BYTES);
    super::interleave_k_quant(bytes, (rows, cols), sizes, threads, |dst, r, block| {
        put_row(dst, r, &block[..16], &block[16..])
    })
}

/// Puts row `r` of a group into a group block: `head`, its block's first sixteen bytes (`d`,
/// `dmin` and the twelve packed bytes of scales and minimums), and `qs`, its 128 nibble
/// bytes, where the layout (see the module's documentation) wants them. Q5_K's interleaving
/// (`q5k_x8`) calls it too: its blocks are these bytes with `qh` between the two.
pub(super) fn put_row(group_block: &mut [u8], r: usize, head: &[u8], qs: &[u8]) {
    group_block[D + 2 * r..D + 2 * r + 2].copy_from_slice(&head[0..2]);
    group_block[DMIN + 2 * r..DMIN + 2 * r + 2].copy_from_slice(&head[2..4]);
    for word in 0..3 {
        let to = PACKED + 4 * ROWS * word + 4 * r;
        group_block[to..to + 4].copy_from_slice(&head[4 + 4 * word..8 + 4 * word]);
    }
    for chunk in 0..4 {
        for i in 0..4 {
            let to = QS + 256 * chunk + 64 * i + 8 * r;
            let from = 32 * chunk + 8 * i;
            group_block[to..to + 8].copy_from_slice(&qs[from..from + 8]);
        }
    }
}

/// Row `r` of a group block as [`put_row`] took it: its block's first sixteen bytes and its
/// 128 nibble bytes.
pub(super) fn take_row(group_block: &[u8], r: usize) -> ([u8; 16], [u8; 128]) {
    let mut head = [0u8; 16];
    head[0..2].copy_from_slice(&group_block[D + 2 * r..D + 2 * r + 2]);
    head[2..4].copy_from_slice(&group_block[DMIN + 2 * r..DMIN + 2 * r + 2]);
    for word in 0..3 {
        let from = PACKED + 4 * ROWS * word + 4 * r;
        head[4 + 4 * word..8 + 4 * word].copy_from_slice(&group_block[from..from + 4]);
    }
    let mut qs = [0u8; 128];
    for chunk in 0..4 {
        for i in 0..4 {
            let from = QS + 256 * chunk + 64 * i + 8 * r;
            qs[32 * chunk + 8 * i..32 * chunk + 8 * i + 8]
                .copy_from_slice(&group_block[from..from + 8]);
        }
    }
    (head, qs)
}

/// Row `r` (of the group) of a group block, in Q4_K's own form except for the packed scales,
/// which it unpacks:
/// `(d, dmin, scales, mins, the 128 nibble bytes)`.
fn row_of(group_block: &[u8], r: usize) -> (f32, f32, [u8; 8], [u8; 8], [u8; 128]) {
    let (head, qs) = take_row(group_block, r);
    let half = |at: usize| f16::from_le_bytes([head[at], head[at + 1]]).to_f32();
    let packed: [u8; 12] = std::array::from_fn(|i| head[4 + i]);
    let (scales, mins) = scales_and_mins(&packed);
    (half(0), half(2), scales, mins, qs)
}

/// Row `r`'s two integer sums for one group block against a Q8_K block, by the scalar
/// reference: what `q4k::block_sums_reference` gives for the row's original block.
pub fn block_sums_reference(group_block: &[u8], r: usize, y: &BlockQ8K) -> (i32, i32) {
    let (_, _, scales, mins, qs) = row_of(group_block, r);
    let mut sumi = 0i32;
    for chunk in 0..4 {
        let q4 = &qs[32 * chunk..32 * chunk + 32];
        let q8 = &y.qs[64 * chunk..64 * chunk + 64];
        let low: i32 = (0..32)
            .map(|l| i32::from(q4[l] & 0x0f) * i32::from(q8[l]))
            .sum();
        let high: i32 = (0..32)
            .map(|l| i32::from(q4[l] >> 4) * i32::from(q8[32 + l]))
            .sum();
        sumi += i32::from(scales[2 * chunk]) * low + i32::from(scales[2 * chunk + 1]) * high;
    }
    let summs: i32 = (0..8)
        .map(|s| i32::from(mins[s]) * (i32::from(y.bsums[2 * s]) + i32::from(y.bsums[2 * s + 1])))
        .sum();
    (sumi, summs)
}

/// A group's eight rows dotted with a Q8_K row, by the scalar reference (the same sums in the
/// same order as `q4k::dot_reference` on the original rows).
pub fn dot_group_reference(group: &[u8], ys: &[BlockQ8K]) -> [f32; ROWS] {
    let mut out = [0f32; ROWS];
    for (r, out) in out.iter_mut().enumerate() {
        *out = group
            .chunks_exact(GROUP_BLOCK_BYTES)
            .zip(ys)
            .map(|(group_block, y)| {
                let (d, dmin, ..) = row_of(group_block, r);
                let (sumi, summs) = block_sums_reference(group_block, r, y);
                d * y.d * sumi as f32 - dmin * y.d * summs as f32
            })
            .sum();
    }
    out
}

/// Row `r` of a group dequantized to f32 (an embedding lookup of an interleaved table).
pub fn dequantize_row(group: &[u8], r: usize, out: &mut Vec<f32>) {
    for group_block in group.chunks_exact(GROUP_BLOCK_BYTES) {
        let (d, dmin, scales, mins, qs) = row_of(group_block, r);
        for chunk in 0..4 {
            for (half, shift) in [(0usize, 0u8), (1, 4)] {
                let s = 2 * chunk + half;
                let scale = d * f32::from(scales[s]);
                let min = dmin * f32::from(mins[s]);
                out.extend(
                    qs[32 * chunk..32 * chunk + 32]
                        .iter()
                        .map(|&q| scale * f32::from((q >> shift) & 0x0f) - min),
                );
            }
        }
    }
}

/// A group's eight rows dotted with one to [`tile`] activation rows (`ys`):
/// `out[j][r]`. Every activation row gets the same operations whatever the tile holds.
pub fn dot_group(isa: Isa, group: &[u8], ys: &[&[BlockQ8K]], out: &mut [[f32; ROWS]]) {
    debug_assert_eq!(ys.len(), out.len());
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available()` offers `Avx512` only when the CPU has AVX-512 F, BW, VL and
        // VNNI besides AVX2, FMA and F16C; a short activation row panics at its bounds-checked
        // index, and `group` is whole group blocks (checked by the caller's chunking).
        #[allow(unsafe_code)]
        Isa::Avx512 => unsafe {
            super::dispatch_tile!(ys, out, |tile| avx512::dot_group(tile, group))
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `available()` offers `Avx2` only when the CPU has AVX2, FMA and F16C; as
        // above for the bounds.
        #[allow(unsafe_code)]
        Isa::Avx2 => unsafe { super::dispatch_tile!(ys, out, |tile| avx2::dot_group(tile, group)) },
        _ => {
            for (out, y) in out.iter_mut().zip(ys) {
                *out = dot_group_reference(group, y);
            }
        }
    }
}

/// `out (n x rows) = xs (n x cols) · Wᵀ` for an interleaved Q4_K matrix: groups of rows split
/// over the kernel pool, each group's bytes read once for every tile of activation rows; a
/// prefill's long batch through `panel` instead, with the same results (`k_quant_matmul`).
pub fn matmul(interleaved: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
    super::k_quant_matmul::<{ super::panel::Q4K }>(
        interleaved,
        (rows, cols),
        GROUP_BLOCK_BYTES,
        tile,
        (xs, out),
        dot_group,
    );
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(super) mod avx512 {
    //! AVX-512 VNNI: sixteen i32 lanes of `dpbusd`, two a row (its bytes `8i..8i+4` and
    //! `8i+4..8i+8` of a chunk), the activation's matching eight bytes broadcast to every pair
    //! of lanes; the sub-blocks' sums are then packed, scaled and added by `dpwssd` into lanes
    //! in another order ([`LANE_ROWS`]).
    //!
    //! Q5_K's interleaved groups (`q5k_x8`) go through the same kernel with `FIFTH_BIT`: their
    //! group blocks are this layout followed by the fifth bits as byte masks, which add 16 to
    //! the nibbles they mark.
    use std::arch::x86_64::*;

    use super::super::q5k_x8;

    use super::{BlockQ8K, D, DMIN, GROUP_BLOCK_BYTES, MINS, PREFETCH_BLOCKS, QS, ROWS, SCALES};

    /// One 32-byte chunk of a group block unpacked: the nibbles of its four 64-byte loads (low:
    /// sub-block 2·chunk, high: 2·chunk + 1) and those sub-blocks' scales as i16 words, laid
    /// out as `chunk_isum` packs its sums (see there).
    struct Chunk {
        low: [__m512i; 4],
        high: [__m512i; 4],
        scales: __m512i,
    }

    /// For each word of a packed chunk sum, which of the chunk's sixteen scales
    /// (`[sub-block][row]`) multiplies it: in each 128-bit lane `l`, words 0-3 are the low
    /// sub-block's lanes `4l..4l+4` (rows 2l, 2l, 2l+1, 2l+1) and words 4-7 the high one's.
    const SCALE_WORDS: [i16; 32] = [
        0, 0, 1, 1, 8, 8, 9, 9, 2, 2, 3, 3, 10, 10, 11, 11, 4, 4, 5, 5, 12, 12, 13, 13, 6, 6, 7, 7,
        14, 14, 15, 15,
    ];

    /// Which row each i32 lane of a block's sum belongs to: lane `4l + m` is row `2l + m % 2`.
    const LANE_ROWS: [i32; 16] = [0, 1, 0, 1, 2, 3, 2, 3, 4, 5, 4, 5, 6, 7, 6, 7];

    /// Bytes from one group block to the next: Q4_K's, or with `FIFTH_BIT` Q5_K's.
    const fn stride<const FIFTH_BIT: bool>() -> usize {
        if FIFTH_BIT {
            q5k_x8::GROUP_BLOCK_BYTES
        } else {
            GROUP_BLOCK_BYTES
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn unpack_chunk<const FIFTH_BIT: bool>(
        p: *const u8,
        h: *const u8,
        chunk: usize,
    ) -> Chunk {
        // SAFETY: the caller guarantees the features, a whole group block at `p` (Q5_K's with
        // `FIFTH_BIT`) and its unpacked header at `h`; `chunk < 4` keeps the loads inside them.
        unsafe {
            let low4 = _mm512_set1_epi8(0x0f);
            let sixteen = _mm512_set1_epi8(16);
            let scales = _mm256_cvtepu8_epi16(_mm_loadu_si128(
                h.add(SCALES + 2 * ROWS * chunk) as *const __m128i
            ));
            let mut unpacked = Chunk {
                low: [_mm512_setzero_si512(); 4],
                high: [_mm512_setzero_si512(); 4],
                scales: _mm512_permutexvar_epi16(
                    _mm512_loadu_si512(SCALE_WORDS.as_ptr() as *const __m512i),
                    _mm512_castsi256_si512(scales),
                ),
            };
            for i in 0..4 {
                let bits = _mm512_loadu_si512(p.add(QS + 256 * chunk + 64 * i) as *const __m512i);
                unpacked.low[i] = _mm512_and_si512(bits, low4);
                unpacked.high[i] = _mm512_and_si512(_mm512_srli_epi16(bits, 4), low4);
                if FIFTH_BIT {
                    // One bit a byte of the load: a mask register straight from memory, and a
                    // masked add (an or: the nibbles are below 16).
                    let masks = p.add(q5k_x8::fifth_bit_masks(chunk, i));
                    let low_mask = std::ptr::read_unaligned(masks as *const u64);
                    let high_mask = std::ptr::read_unaligned(masks.add(8) as *const u64);
                    unpacked.low[i] =
                        _mm512_mask_add_epi8(unpacked.low[i], low_mask, unpacked.low[i], sixteen);
                    unpacked.high[i] = _mm512_mask_add_epi8(
                        unpacked.high[i],
                        high_mask,
                        unpacked.high[i],
                        sixteen,
                    );
                }
            }
            unpacked
        }
    }

    /// `isum` plus an unpacked chunk's scaled integer sums against a Q8_K block: sixteen lanes,
    /// lane `4l + m` row `2l + m % 2` ([`LANE_ROWS`]).
    ///
    /// Each sub-block's `dpbusd` lanes hold sixteen products of a nibble (at most 15) and an
    /// activation (at least -128): at most 30,720 in size, so they pack into i16 words without
    /// saturating, and one `dpwssd` multiplies them by their scales and adds them up. That
    /// replaced two `vpmulld` and an add per chunk and activation row, an eighth of a batch's
    /// samples; the sums are the same integers. Measured in interleaved runs on the 2-core
    /// development machine: prefill 438-476 against 371-432 tokens/s, eight sequences 136-141
    /// against 126-145 (medians 140 and 134), one sequence unchanged.
    ///
    /// With `FIFTH_BIT` a weight reaches 31, and four loads' products (63,488) no longer fit
    /// a word: each sub-block's lanes are summed over two loads at a time (at most 31,744),
    /// packed and scaled twice.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn chunk_isum<const FIFTH_BIT: bool>(
        isum: __m512i,
        x: &Chunk,
        chunk: usize,
        y: &BlockQ8K,
    ) -> __m512i {
        // SAFETY: the caller guarantees the features; `chunk < 4` and `i < 4` keep the 8-byte
        // reads inside the block's 256 q8.
        unsafe {
            let q8 = y.qs.as_ptr();
            let mut sub_low = [_mm512_setzero_si512(); 2];
            let mut sub_high = [_mm512_setzero_si512(); 2];
            for i in 0..4 {
                let part = if FIFTH_BIT { i / 2 } else { 0 };
                let a_low = _mm512_set1_epi64(std::ptr::read_unaligned(
                    q8.add(64 * chunk + 8 * i) as *const i64
                ));
                let a_high = _mm512_set1_epi64(std::ptr::read_unaligned(
                    q8.add(64 * chunk + 32 + 8 * i) as *const i64,
                ));
                // u8 nibbles x i8 activations, four products a lane, in i32.
                sub_low[part] = _mm512_dpbusd_epi32(sub_low[part], x.low[i], a_low);
                sub_high[part] = _mm512_dpbusd_epi32(sub_high[part], x.high[i], a_high);
            }
            // Per 128-bit lane: the low sub-block's four lanes, then the high one's.
            let isum =
                _mm512_dpwssd_epi32(isum, _mm512_packs_epi32(sub_low[0], sub_high[0]), x.scales);
            if FIFTH_BIT {
                _mm512_dpwssd_epi32(isum, _mm512_packs_epi32(sub_low[1], sub_high[1]), x.scales)
            } else {
                isum
            }
        }
    }

    /// `N` activation rows against a Q4_K group of eight rows: `out[j][r]`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn dot_group<const N: usize>(
        ys: [&[BlockQ8K]; N],
        group: &[u8],
    ) -> [[f32; ROWS]; N] {
        // SAFETY: as `dot_group_of`.
        unsafe { dot_group_of::<N, false>(ys, group) }
    }

    /// `N` activation rows against a Q5_K group of eight rows (`q5k_x8`): `out[j][r]`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(in super::super) unsafe fn dot_q5k_group<const N: usize>(
        ys: [&[BlockQ8K]; N],
        group: &[u8],
    ) -> [[f32; ROWS]; N] {
        // SAFETY: as `dot_group_of`.
        unsafe { dot_group_of::<N, true>(ys, group) }
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn dot_group_of<const N: usize, const FIFTH_BIT: bool>(
        ys: [&[BlockQ8K]; N],
        group: &[u8],
    ) -> [[f32; ROWS]; N] {
        // SAFETY: the caller guarantees the features, that `group` is whole group blocks
        // (Q5_K's with `FIFTH_BIT`) and that each `ys[j]` has a block for each.
        unsafe {
            let lane_rows = _mm512_loadu_si512(LANE_ROWS.as_ptr() as *const __m512i);
            let mut acc = [_mm512_setzero_ps(); N];
            let mut acc_mins = [_mm256_setzero_ps(); N];
            let stride = stride::<FIFTH_BIT>();
            for (block, gb) in group.chunks_exact(stride).enumerate() {
                let p = gb.as_ptr();
                // Past the matrix's end this asks for nothing that matters.
                if N > 1 {
                    let ahead = p.wrapping_add(PREFETCH_BLOCKS * stride);
                    super::super::x86::prefetch_l2(ahead, stride);
                }
                let d = _mm256_cvtph_ps(_mm_loadu_si128(p.add(D) as *const __m128i));
                let dmin = _mm256_cvtph_ps(_mm_loadu_si128(p.add(DMIN) as *const __m128i));
                let d_lanes = _mm512_permutexvar_ps(lane_rows, _mm512_castps256_ps512(d));
                let mut isum = [_mm512_setzero_si512(); N];
                // The scales and minimums, and each chunk's nibbles, unpacked once for every
                // activation row of the tile.
                let header = super::avx2::unpack_header(p);
                let h = header.0.as_ptr();
                for chunk in 0..4 {
                    let unpacked = unpack_chunk::<FIFTH_BIT>(p, h, chunk);
                    for j in 0..N {
                        isum[j] = chunk_isum::<FIFTH_BIT>(isum[j], &unpacked, chunk, &ys[j][block]);
                    }
                }
                for j in 0..N {
                    let y = &ys[j][block];
                    let scale = _mm512_set1_ps(y.d);
                    acc[j] = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(isum[j]),
                        _mm512_mul_ps(d_lanes, scale),
                        acc[j],
                    );
                    acc_mins[j] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(super::avx2::block_summs(h, y)),
                        _mm256_mul_ps(dmin, _mm512_castps512_ps256(scale)),
                        acc_mins[j],
                    );
                }
            }
            // Row r = 2l + e: its two lanes, 4l + e and 4l + e + 2, added, less its minimums'
            // share.
            let first = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 13, 12, 9, 8, 5, 4, 1, 0);
            let second = _mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 15, 14, 11, 10, 7, 6, 3, 2);
            let mut out = [[0f32; ROWS]; N];
            for j in 0..N {
                let rows = _mm256_add_ps(
                    _mm512_castps512_ps256(_mm512_permutexvar_ps(first, acc[j])),
                    _mm512_castps512_ps256(_mm512_permutexvar_ps(second, acc[j])),
                );
                _mm256_storeu_ps(out[j].as_mut_ptr(), _mm256_sub_ps(rows, acc_mins[j]));
            }
            out
        }
    }

    /// Two groups' blocks at one block index (`a` and `b`: whole group blocks, Q5_K's with
    /// `FIFTH_BIT`; `b` may be `a` when a matrix ends on one group) unpacked for
    /// [`super::super::panel`], rows 0-7 of `a` in lanes 0-7 and those of `b` in lanes 8-15:
    /// `weights` the 64 registers of weights as bytes, register `kg` holding weights `4 kg`
    /// to `4 kg + 3` of each row (element `k` of sub-block `s` is weight `32 s + k`);
    /// `scales` eight registers of i32, one a sub-block; `mins` four registers, each lane the
    /// minimums of sub-blocks `2p` and `2p + 1` as two i16; `d` and `dmin` as f32.
    ///
    /// # Safety
    /// The features; `a` and `b` whole group blocks of the kind; `weights` 64 writable
    /// registers, `scales` eight, `mins` four.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(in super::super) unsafe fn unpack_group_pair<const FIFTH_BIT: bool>(
        a: *const u8,
        b: *const u8,
        weights: *mut __m512i,
        scales: *mut __m512i,
        mins: *mut __m512i,
    ) -> (__m512, __m512) {
        // SAFETY: as the caller promises; every read is inside a group block or its unpacked
        // header, every write inside the registers promised.
        unsafe {
            let header_a = super::avx2::unpack_header(a);
            let header_b = super::avx2::unpack_header(b);
            let (ha, hb) = (header_a.0.as_ptr(), header_b.0.as_ptr());
            for chunk in 0..4 {
                let from_a = unpack_chunk::<FIFTH_BIT>(a, ha, chunk);
                let from_b = unpack_chunk::<FIFTH_BIT>(b, hb, chunk);
                for i in 0..4 {
                    // Load i of the chunk holds weights 8i..8i+8 of sub-blocks 2·chunk (low
                    // nibbles) and 2·chunk + 1 (high).
                    let low = 16 * chunk + 2 * i;
                    let high = low + 8;
                    for (half, index) in HALF_LANES.iter().enumerate() {
                        let index = _mm512_loadu_si512(index.as_ptr() as *const __m512i);
                        let merge = |from_a: __m512i, from_b: __m512i| {
                            _mm512_permutex2var_epi32(from_a, index, from_b)
                        };
                        *weights.add(low + half) = merge(from_a.low[i], from_b.low[i]);
                        *weights.add(high + half) = merge(from_a.high[i], from_b.high[i]);
                    }
                }
            }
            header_pair(a, b, (ha, hb), scales, mins)
        }
    }

    /// Which dword of a load of `a` (0-15) or of `b` (16-31) each lane of a band's register
    /// takes: each row's eight bytes of a load are two dwords (lanes 2r and 2r + 1), so its
    /// first four bytes of `a`'s rows then `b`'s, and its second four.
    const HALF_LANES: [[i32; 16]; 2] = [
        [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30],
        [1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31],
    ];

    /// The scales, minimums, `d` and `dmin` of two groups' blocks (`a` and `b`, their unpacked
    /// headers `ha` and `hb`), rows 0-7 of `a` in lanes 0-7 and those of `b` in lanes 8-15, as
    /// [`unpack_group_pair`] describes them.
    ///
    /// # Safety
    /// The features; `a` and `b` whole group blocks and `ha`, `hb` their unpacked headers;
    /// `scales` eight writable registers, `mins` four.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn header_pair(
        a: *const u8,
        b: *const u8,
        (ha, hb): (*const u8, *const u8),
        scales: *mut __m512i,
        mins: *mut __m512i,
    ) -> (__m512, __m512) {
        // SAFETY: as the caller promises.
        unsafe {
            let join = |low: __m256i, high: __m256i| {
                _mm512_inserti64x4::<1>(_mm512_castsi256_si512(low), high)
            };
            for s in 0..8 {
                let of = |h: *const u8| {
                    _mm256_cvtepu8_epi32(
                        _mm_loadl_epi64(h.add(SCALES + ROWS * s) as *const __m128i),
                    )
                };
                *scales.add(s) = join(of(ha), of(hb));
            }
            for pair in 0..4 {
                let of = |h: *const u8| {
                    _mm256_cvtepu8_epi16(_mm_loadu_si128(
                        h.add(MINS + 2 * ROWS * pair) as *const __m128i
                    ))
                };
                *mins.add(pair) = join(of(ha), of(hb));
            }
            let halves = |at: usize| {
                let of =
                    |p: *const u8| _mm256_cvtph_ps(_mm_loadu_si128(p.add(at) as *const __m128i));
                _mm512_castpd_ps(_mm512_insertf64x4::<1>(
                    _mm512_castpd256_pd512(_mm256_castps_pd(of(a))),
                    _mm256_castps_pd(of(b)),
                ))
            };
            (halves(D), halves(DMIN))
        }
    }

    /// One sub-block of a band's block for `N` activation rows: the chunk's four loads of
    /// each group (`at` and `bt`) merged into eight registers of four weights a row (the low
    /// nibbles, sub-block `2 · chunk`, or with `HIGH` the high ones, `2 · chunk + 1`), each met
    /// by every row's four activation bytes (`q8[j]`, the chunk's 64 bytes) in one `dpbusd`
    /// chain a row.
    ///
    /// # Safety
    /// The features; 256 bytes of nibbles at `at` and at `bt`, 64 at each `q8[j]`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn band_sub_block<const N: usize, const HIGH: bool>(
        (at, bt): (*const u8, *const u8),
        half_lanes: [__m512i; 2],
        q8: &[*const u8; N],
    ) -> [__m512i; N] {
        // SAFETY: as the caller promises.
        unsafe {
            let low4 = _mm512_set1_epi8(0x0f);
            let mut sub = [_mm512_setzero_si512(); N];
            for i in 0..4 {
                let from_a = _mm512_loadu_si512(at.add(64 * i) as *const __m512i);
                let from_b = _mm512_loadu_si512(bt.add(64 * i) as *const __m512i);
                for (half, index) in half_lanes.iter().enumerate() {
                    let merged = _mm512_permutex2var_epi32(from_a, *index, from_b);
                    let w = if HIGH {
                        _mm512_and_si512(_mm512_srli_epi16(merged, 4), low4)
                    } else {
                        _mm512_and_si512(merged, low4)
                    };
                    let offset = 32 * usize::from(HIGH) + 8 * i + 4 * half;
                    for j in 0..N {
                        let four = std::ptr::read_unaligned(q8[j].add(offset) as *const i32);
                        sub[j] = _mm512_dpbusd_epi32(sub[j], w, _mm512_set1_epi32(four));
                    }
                }
            }
            sub
        }
    }

    /// `N` activation rows (`ys`, with each block's `pair_sums` for the minimums) against a
    /// band of two Q4_K groups, `a` and `b` (whole groups of as many group blocks as each
    /// activation row has blocks; `b` may be `a`; the next band's groups `next_band` bytes
    /// on): `out[j]` the band's sixteen rows, those of `a` first. [`super::super::panel`]'s results bit for bit (the same integers and float
    /// steps) without a panel: each load of the two groups merged (one `vpermt2d`) into
    /// registers of one lane a row, whose nibbles meet every activation row's four bytes
    /// while in a register; for a few activation rows (batched decode), where unpacking into
    /// a panel is not paid back (see there).
    ///
    /// # Safety
    /// The features; `a` and `b` whole Q4_K groups of the same length, and each `ys[j]` and
    /// `pair_sums[j]` a block for each of their group blocks.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(in super::super) unsafe fn dot_band<const N: usize>(
        a: &[u8],
        b: &[u8],
        next_band: usize,
        ys: [&[BlockQ8K]; N],
        pair_sums: [&[[i32; 16]]; N],
    ) -> [[f32; 2 * ROWS]; N] {
        // SAFETY: as the caller promises: every load is inside a group block of `a` or `b`
        // (`blocks` of them), every activation read inside block `block` of a row.
        unsafe {
            let half_lanes =
                HALF_LANES.map(|index| _mm512_loadu_si512(index.as_ptr() as *const __m512i));
            let mut chains = [[_mm512_setzero_ps(); 3]; N];
            let mut scales = [_mm512_setzero_si512(); 8];
            let mut mins = [_mm512_setzero_si512(); 4];
            let blocks = a.len() / GROUP_BLOCK_BYTES;
            for block in 0..blocks {
                let pa = a.as_ptr().add(block * GROUP_BLOCK_BYTES);
                let pb = b.as_ptr().add(block * GROUP_BLOCK_BYTES);
                // As `dot_group_of`, a batch asks for the blocks ahead into L2: the band's
                // own, and near its end the next band's (`next_band` bytes on), as a pass
                // over one group after another would. Past the matrix's end this asks for
                // nothing that matters.
                if N > 1 {
                    let (band, ahead) = if block + PREFETCH_BLOCKS < blocks {
                        (0, block + PREFETCH_BLOCKS)
                    } else {
                        (next_band, block + PREFETCH_BLOCKS - blocks)
                    };
                    for group in [a, b] {
                        let at = group
                            .as_ptr()
                            .wrapping_add(band + ahead * GROUP_BLOCK_BYTES);
                        super::super::x86::prefetch_l2(at, GROUP_BLOCK_BYTES);
                    }
                }
                let header_a = super::avx2::unpack_header(pa);
                let header_b = super::avx2::unpack_header(pb);
                let (d, dmin) = header_pair(
                    pa,
                    pb,
                    (header_a.0.as_ptr(), header_b.0.as_ptr()),
                    scales.as_mut_ptr(),
                    mins.as_mut_ptr(),
                );
                let y: [&BlockQ8K; N] = std::array::from_fn(|j| &ys[j][block]);
                let q8: [*const u8; N] = std::array::from_fn(|j| y[j].qs.as_ptr() as *const u8);
                let mut even_sum = [_mm512_setzero_si512(); N];
                let mut odd_sum = [_mm512_setzero_si512(); N];
                for chunk in 0..4 {
                    let at = pa.add(QS + 256 * chunk);
                    let bt = pb.add(QS + 256 * chunk);
                    let q8 = q8.map(|q| q.add(64 * chunk));
                    let even = band_sub_block::<N, false>((at, bt), half_lanes, &q8);
                    let scale = scales[2 * chunk];
                    for j in 0..N {
                        even_sum[j] =
                            _mm512_add_epi32(even_sum[j], _mm512_mullo_epi32(even[j], scale));
                    }
                    let odd = band_sub_block::<N, true>((at, bt), half_lanes, &q8);
                    let scale = scales[2 * chunk + 1];
                    for j in 0..N {
                        odd_sum[j] =
                            _mm512_add_epi32(odd_sum[j], _mm512_mullo_epi32(odd[j], scale));
                    }
                }
                for j in 0..N {
                    let mut mins_sum = _mm512_setzero_si512();
                    for (pair, mins) in mins.iter().enumerate() {
                        let sums = _mm512_set1_epi32(pair_sums[j][block][pair]);
                        mins_sum = _mm512_dpwssd_epi32(mins_sum, *mins, sums);
                    }
                    // The panel tile's float steps (see `panel`), in the same order.
                    let scale = _mm512_set1_ps(y[j].d);
                    let d_scale = _mm512_mul_ps(d, scale);
                    let [even, odd, minimums] = &mut chains[j];
                    *even = _mm512_fmadd_ps(_mm512_cvtepi32_ps(even_sum[j]), d_scale, *even);
                    *odd = _mm512_fmadd_ps(_mm512_cvtepi32_ps(odd_sum[j]), d_scale, *odd);
                    *minimums = _mm512_fmadd_ps(
                        _mm512_cvtepi32_ps(mins_sum),
                        _mm512_mul_ps(dmin, scale),
                        *minimums,
                    );
                }
            }
            let mut out = [[0f32; 2 * ROWS]; N];
            for (out, [even, odd, minimums]) in out.iter_mut().zip(chains) {
                let rows = _mm512_sub_ps(_mm512_add_ps(even, odd), minimums);
                _mm512_storeu_ps(out.as_mut_ptr(), rows);
            }
            out
        }
    }

    /// Each row's two integer sums of one group block, for the exactness tests: the kernel's
    /// own helpers, added up (Q5_K's group block with `FIFTH_BIT`).
    #[cfg(test)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(in super::super) unsafe fn block_sums<const FIFTH_BIT: bool>(
        group_block: &[u8],
        y: &BlockQ8K,
    ) -> [(i32, i32); ROWS] {
        assert_eq!(group_block.len(), stride::<FIFTH_BIT>(), "one group block");
        // SAFETY: as `dot_group_of`, on one group block (checked above).
        unsafe {
            let p = group_block.as_ptr();
            let header = super::avx2::unpack_header(p);
            let h = header.0.as_ptr();
            let mut isum = _mm512_setzero_si512();
            for chunk in 0..4 {
                let unpacked = unpack_chunk::<FIFTH_BIT>(p, h, chunk);
                isum = chunk_isum::<FIFTH_BIT>(isum, &unpacked, chunk, y);
            }
            let mut lanes = [0i32; 16];
            _mm512_storeu_si512(lanes.as_mut_ptr() as *mut __m512i, isum);
            let mut summs = [0i32; 8];
            _mm256_storeu_si256(
                summs.as_mut_ptr() as *mut __m256i,
                super::avx2::block_summs(h, y),
            );
            let mut out = [(0, 0); ROWS];
            for (r, out) in out.iter_mut().enumerate() {
                let first = 4 * (r / 2) + r % 2;
                *out = (lanes[first] + lanes[first + 2], summs[r]);
            }
            out
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    //! AVX2: each 64-byte load of a chunk split in two halves of four rows; `maddubs` multiplies
    //! nibbles and activations into i16 pairs and `madd` applies the sub-block's scale (as i16,
    //! four lanes a row) and widens into i32, two lanes a row.
    use std::arch::x86_64::*;

    use super::{
        BlockQ8K, Header, D, DMIN, GROUP_BLOCK_BYTES, MINS, PACKED, PREFETCH_BLOCKS, QS, ROWS,
        SCALES,
    };

    /// A group block's packed scales and minimums (three words of each of eight rows at
    /// `PACKED`) unpacked into the kernels' [`Header`]: llama.cpp's six-bit unpacking, on eight
    /// rows at once, then each row's bytes transposed so that a sub-block's (or a pair's)
    /// values for the eight rows lie together.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn unpack_header(p: *const u8) -> Header {
        // SAFETY: the caller guarantees AVX2 and a whole group block at `p`; the three 32-byte
        // loads are its packed words, and the stores fill the 128 bytes of `header`.
        unsafe {
            let words: [__m256i; 3] = std::array::from_fn(|w| {
                _mm256_loadu_si256(p.add(PACKED + 4 * ROWS * w) as *const __m256i)
            });
            let six = _mm256_set1_epi8(0x3f);
            let four = _mm256_set1_epi8(0x0f);
            let two = _mm256_set1_epi8(0x03);
            // Each row's four bytes: sub-blocks 0-3 (low) and 4-7 (high). The 32-bit shifts
            // move bits across bytes, and the masks keep only each byte's own.
            let scales_low = _mm256_and_si256(words[0], six);
            let mins_low = _mm256_and_si256(words[1], six);
            let scales_high = _mm256_or_si256(
                _mm256_and_si256(words[2], four),
                _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(words[0], 6), two), 4),
            );
            let mins_high = _mm256_or_si256(
                _mm256_and_si256(_mm256_srli_epi32(words[2], 4), four),
                _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(words[1], 6), two), 4),
            );
            // Scales: [row][sub-block] bytes to [sub-block][row] (within each 128-bit lane,
            // then the lanes' dwords merged).
            let by_byte = _mm256_setr_epi8(
                0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15, 0, 4, 8, 12, 1, 5, 9, 13, 2,
                6, 10, 14, 3, 7, 11, 15,
            );
            let merge_dwords = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
            // Minimums: [row][pair] 16-bit words to [pair][row] (then the lanes' qwords merged).
            let by_word = _mm256_setr_epi8(
                0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12, 13, 2,
                3, 6, 7, 10, 11, 14, 15,
            );
            let scales = |v: __m256i| {
                _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(v, by_byte), merge_dwords)
            };
            let mins = |v: __m256i| {
                _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_shuffle_epi8(v, by_word))
            };
            let mut header = Header([0; 128]);
            let h = header.0.as_mut_ptr();
            _mm256_storeu_si256(h.add(SCALES) as *mut __m256i, scales(scales_low));
            _mm256_storeu_si256(h.add(SCALES + 32) as *mut __m256i, scales(scales_high));
            _mm256_storeu_si256(h.add(MINS) as *mut __m256i, mins(mins_low));
            _mm256_storeu_si256(h.add(MINS + 32) as *mut __m256i, mins(mins_high));
            header
        }
    }

    /// One group block's integer sums against one Q8_K block: for each half of the rows (0-3,
    /// 4-7), eight i32 lanes, row `4·half + r` in lanes `2r` and `2r + 1`.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn block_isums(p: *const u8, h: *const u8, y: &BlockQ8K) -> [__m256i; 2] {
        // SAFETY: the caller guarantees AVX2, that `p` starts a whole group block and `h` its
        // unpacked header; the loads stay inside them and inside `y`'s 256 bytes of q8.
        unsafe {
            let low4 = _mm256_set1_epi8(0x0f);
            // Bytes 4·half + r (r < 4) each repeated four times, for the low sub-block's scales
            // (first eight bytes) and the high one's (next eight).
            let spread = |first: i8| {
                _mm_setr_epi8(
                    first,
                    first,
                    first,
                    first,
                    first + 1,
                    first + 1,
                    first + 1,
                    first + 1,
                    first + 2,
                    first + 2,
                    first + 2,
                    first + 2,
                    first + 3,
                    first + 3,
                    first + 3,
                    first + 3,
                )
            };
            let patterns = [[spread(0), spread(8)], [spread(4), spread(12)]];
            let q8 = y.qs.as_ptr();
            let mut isum = [_mm256_setzero_si256(); 2];
            for chunk in 0..4 {
                let scales = _mm_loadu_si128(h.add(SCALES + 2 * ROWS * chunk) as *const __m128i);
                for (half, isum) in isum.iter_mut().enumerate() {
                    let scale_low =
                        _mm256_cvtepu8_epi16(_mm_shuffle_epi8(scales, patterns[half][0]));
                    let scale_high =
                        _mm256_cvtepu8_epi16(_mm_shuffle_epi8(scales, patterns[half][1]));
                    for i in 0..4 {
                        let bits = _mm256_loadu_si256(
                            p.add(QS + 256 * chunk + 64 * i + 32 * half) as *const __m256i
                        );
                        let a_low = _mm256_set1_epi64x(std::ptr::read_unaligned(
                            q8.add(64 * chunk + 8 * i) as *const i64,
                        ));
                        let a_high = _mm256_set1_epi64x(std::ptr::read_unaligned(
                            q8.add(64 * chunk + 32 + 8 * i) as *const i64,
                        ));
                        // u8 (< 16) x i8 pairs into i16 (no saturation), then times the scale
                        // and into i32.
                        let low = _mm256_madd_epi16(
                            _mm256_maddubs_epi16(_mm256_and_si256(bits, low4), a_low),
                            scale_low,
                        );
                        let high = _mm256_madd_epi16(
                            _mm256_maddubs_epi16(
                                _mm256_and_si256(_mm256_srli_epi16(bits, 4), low4),
                                a_high,
                            ),
                            scale_high,
                        );
                        *isum = _mm256_add_epi32(*isum, _mm256_add_epi32(low, high));
                    }
                }
            }
            isum
        }
    }

    /// One group block's minimums against one Q8_K block: eight i32 lanes, row r in lane r
    /// (the AVX-512 kernel uses it too).
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn block_summs(h: *const u8, y: &BlockQ8K) -> __m256i {
        // SAFETY: the caller guarantees AVX2 and a group block's unpacked header at `h`; the
        // bsums are 16 i16.
        unsafe {
            let bsums = _mm256_loadu_si256(y.bsums.as_ptr() as *const __m256i);
            let pair_sums = _mm_hadd_epi16(
                _mm256_castsi256_si128(bsums),
                _mm256_extracti128_si256(bsums, 1),
            );
            let mut mins = [_mm256_setzero_si256(); 4];
            for (pair, mins) in mins.iter_mut().enumerate() {
                *mins = _mm256_cvtepu8_epi16(_mm_loadu_si128(
                    h.add(MINS + 2 * ROWS * pair) as *const __m128i
                ));
            }
            let mut summs = _mm256_madd_epi16(mins[0], _mm256_broadcastd_epi32(pair_sums));
            summs = _mm256_add_epi32(
                summs,
                _mm256_madd_epi16(
                    mins[1],
                    _mm256_broadcastd_epi32(_mm_srli_si128(pair_sums, 4)),
                ),
            );
            summs = _mm256_add_epi32(
                summs,
                _mm256_madd_epi16(
                    mins[2],
                    _mm256_broadcastd_epi32(_mm_srli_si128(pair_sums, 8)),
                ),
            );
            _mm256_add_epi32(
                summs,
                _mm256_madd_epi16(
                    mins[3],
                    _mm256_broadcastd_epi32(_mm_srli_si128(pair_sums, 12)),
                ),
            )
        }
    }

    /// `N` activation rows against a group of eight rows: `out[j][r]`.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_group<const N: usize>(
        ys: [&[BlockQ8K]; N],
        group: &[u8],
    ) -> [[f32; ROWS]; N] {
        // SAFETY: the caller guarantees the features, that `group` is whole group blocks and
        // that each `ys[j]` has a block for each.
        unsafe {
            // Lanes 2r and 2r + 1 take row 4·half + r's `d`.
            let pairs = [
                _mm256_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3),
                _mm256_setr_epi32(4, 4, 5, 5, 6, 6, 7, 7),
            ];
            let mut acc = [[_mm256_setzero_ps(); 2]; N];
            let mut acc_mins = [_mm256_setzero_ps(); N];
            for (block, gb) in group.chunks_exact(GROUP_BLOCK_BYTES).enumerate() {
                let p = gb.as_ptr();
                // As the AVX-512 kernel (see `PREFETCH_BLOCKS`); with `VERSUS_ISA=avx2` on the
                // development machine, eight sequences decoded together: 77-90 tokens/s
                // against 68-79 without.
                if N > 1 {
                    let ahead = p.wrapping_add(PREFETCH_BLOCKS * GROUP_BLOCK_BYTES);
                    super::super::x86::prefetch_l2(ahead, GROUP_BLOCK_BYTES);
                }
                let d = _mm256_cvtph_ps(_mm_loadu_si128(p.add(D) as *const __m128i));
                let dmin = _mm256_cvtph_ps(_mm_loadu_si128(p.add(DMIN) as *const __m128i));
                let header = unpack_header(p);
                let h = header.0.as_ptr();
                for j in 0..N {
                    let y = &ys[j][block];
                    let isum = block_isums(p, h, y);
                    let scale = _mm256_set1_ps(y.d);
                    for half in 0..2 {
                        let d_pairs = _mm256_permutevar8x32_ps(d, pairs[half]);
                        acc[j][half] = _mm256_fmadd_ps(
                            _mm256_cvtepi32_ps(isum[half]),
                            _mm256_mul_ps(d_pairs, scale),
                            acc[j][half],
                        );
                    }
                    acc_mins[j] = _mm256_fmadd_ps(
                        _mm256_cvtepi32_ps(block_summs(h, y)),
                        _mm256_mul_ps(dmin, scale),
                        acc_mins[j],
                    );
                }
            }
            let mut out = [[0f32; ROWS]; N];
            for j in 0..N {
                let mut lanes = [[0f32; 8]; 2];
                _mm256_storeu_ps(lanes[0].as_mut_ptr(), acc[j][0]);
                _mm256_storeu_ps(lanes[1].as_mut_ptr(), acc[j][1]);
                let mut mins = [0f32; 8];
                _mm256_storeu_ps(mins.as_mut_ptr(), acc_mins[j]);
                for r in 0..ROWS {
                    let lane = &lanes[r / 4];
                    out[j][r] = (lane[2 * (r % 4)] + lane[2 * (r % 4) + 1]) - mins[r];
                }
            }
            out
        }
    }

    /// Each row's two integer sums of one group block, for the exactness tests.
    #[cfg(test)]
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn block_sums(group_block: &[u8], y: &BlockQ8K) -> [(i32, i32); ROWS] {
        // SAFETY: the caller guarantees the features and a whole group block.
        unsafe {
            let p = group_block.as_ptr();
            let header = unpack_header(p);
            let h = header.0.as_ptr();
            let isum = block_isums(p, h, y);
            let mut lanes = [[0i32; 8]; 2];
            _mm256_storeu_si256(lanes[0].as_mut_ptr() as *mut __m256i, isum[0]);
            _mm256_storeu_si256(lanes[1].as_mut_ptr() as *mut __m256i, isum[1]);
            let mut summs = [0i32; 8];
            _mm256_storeu_si256(summs.as_mut_ptr() as *mut __m256i, block_summs(h, y));
            let mut out = [(0, 0); ROWS];
            for (r, out) in out.iter_mut().enumerate() {
                let lane = &lanes[r / 4];
                *out = (lane[2 * (r % 4)] + lane[2 * (r % 4) + 1], summs[r]);
            }
            out
        }
    }
}

/// Whether [`matmul_stored`] gives, bit for bit, what [`matmul`] gives on the interleaved
/// copy with `isa`: then the copy can be made in the background while the matrix is read as
/// stored. On AVX-512, whose eight-row kernel adds each row's sums in an order a row kernel
/// can follow (`q4k::dot_tile_in_x8_order`). AVX2's eight-row kernel splits
/// each row's sums over its lanes by byte position, which a row kernel does not follow, so there
/// a Q4_K matrix is interleaved on load.
pub fn reads_stored(isa: Isa) -> bool {
    isa == Isa::Avx512
}

/// `out (n x rows) = xs (n x cols) · Wᵀ` for a Q4_K matrix as the file stores it, a row at a
/// time in the eight-row kernel's float order: where [`reads_stored`], bit for bit what
/// [`matmul`] gives on the interleaved copy; elsewhere the reference's results.
pub fn matmul_stored(stored: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
    super::k_quant_rows_in_x8_order(
        stored,
        (rows, cols),
        BLOCK_BYTES,
        (xs, out),
        q4k::dot_tile_in_x8_order,
    );
}

#[cfg(test)]
mod tests {
    use super::super::tests::{check_stored_matches_copy, random_activations, random_bytes};
    use super::super::{available, q8k};
    use super::*;

    /// A random `rows x blocks` Q4_K matrix with finite, small scales.
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

    #[test]
    fn interleaving_keeps_every_row_and_its_integer_sums() {
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
                    assert_eq!(
                        block_sums_reference(group_block, r % ROWS, &xs[b]),
                        q4k::block_sums_reference(&row[b * BLOCK_BYTES..][..BLOCK_BYTES], &xs[b]),
                        "seed {seed}, row {r}, block {b}"
                    );
                }
                assert_eq!(
                    dot_group_reference(group, &xs)[r % ROWS].to_bits(),
                    q4k::dot_reference(row, &xs).to_bits(),
                    "seed {seed}, row {r}"
                );
                let mut dequantized = Vec::new();
                dequantize_row(group, r % ROWS, &mut dequantized);
                let candle = candle_core::quantized::ggml_file::qtensor_from_ggml(
                    candle_core::quantized::GgmlDType::Q4K,
                    row,
                    vec![blocks * QK_K],
                    &candle_core::Device::Cpu,
                )
                .and_then(|t| t.dequantize(&candle_core::Device::Cpu))
                .and_then(|t| t.to_vec1::<f32>())
                .expect("candle dequantizes Q4_K");
                assert_eq!(dequantized, candle, "seed {seed}, row {r}");
            }
        }
        assert!(
            interleave(&random_matrix(1, 7, 1), 7, QK_K, 2).is_none(),
            "7 rows"
        );
    }

    /// The largest sums a sub-block's lanes can reach (every nibble 15, every activation -128
    /// or 127, every scale and minimum 63) come out of every kernel exact: the AVX-512 kernel
    /// packs them into i16 words, which must not saturate.
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
            for r in 0..ROWS {
                assert_eq!(
                    block_sums_reference(&group, r, &y),
                    q4k::block_sums_reference(&block, &y),
                    "row {r}, activations {activation}"
                );
            }
            #[cfg(target_arch = "x86_64")]
            for isa in available() {
                // SAFETY: `available()` listed this instruction set with everything its kernel
                // needs.
                #[allow(unsafe_code)]
                let simd = unsafe {
                    match isa {
                        Isa::Avx512 => avx512::block_sums::<false>(&group, &y),
                        Isa::Avx2 => avx2::block_sums(&group, &y),
                        Isa::Portable => continue,
                    }
                };
                for (r, sums) in simd.iter().enumerate() {
                    assert_eq!(
                        *sums,
                        block_sums_reference(&group, r, &y),
                        "{isa:?}, row {r}, activations {activation}"
                    );
                }
            }
            let mut out = [[0f32; ROWS]];
            for isa in available() {
                dot_group(isa, &group, &[std::slice::from_ref(&y)], &mut out);
                let expected = q4k::dot_reference(&block, std::slice::from_ref(&y));
                for value in out[0] {
                    assert!((value - expected).abs() <= 1e-6 * expected.abs(), "{isa:?}");
                }
            }
        }
    }

    #[test]
    fn every_kernel_equals_the_reference() {
        for isa in available() {
            for seed in 1..30u64 {
                let blocks = 1 + seed as usize % 20;
                let matrix = random_matrix(seed, ROWS, blocks);
                let group = interleave(&matrix, ROWS, blocks * QK_K, 2).expect("one group");
                let xs: Vec<Vec<BlockQ8K>> = (0..7)
                    .map(|j| q8k::quantized(&random_activations(seed * 31 + j, blocks * QK_K)))
                    .collect();
                #[cfg(target_arch = "x86_64")]
                if isa != Isa::Portable {
                    for b in 0..blocks {
                        let group_block = &group[b * GROUP_BLOCK_BYTES..][..GROUP_BLOCK_BYTES];
                        // SAFETY: `available()` listed this instruction set with everything its
                        // kernel needs.
                        #[allow(unsafe_code)]
                        let simd = unsafe {
                            if isa == Isa::Avx512 {
                                avx512::block_sums::<false>(group_block, &xs[0][b])
                            } else {
                                avx2::block_sums(group_block, &xs[0][b])
                            }
                        };
                        for (r, sums) in simd.iter().enumerate() {
                            assert_eq!(*sums, block_sums_reference(group_block, r, &xs[0][b]));
                        }
                    }
                }
                let reference = dot_group_reference(&group, &xs[0]);
                let mut alone = [[0f32; ROWS]];
                dot_group(isa, &group, &[&xs[0]], &mut alone);
                let row_bytes = blocks * BLOCK_BYTES;
                for r in 0..ROWS {
                    let magnitude: f32 = matrix[r * row_bytes..(r + 1) * row_bytes]
                        .chunks_exact(BLOCK_BYTES)
                        .zip(&xs[0])
                        .map(|(block, y)| q4k::dot_reference(block, std::slice::from_ref(y)).abs())
                        .sum();
                    assert!(
                        (alone[0][r] - reference[r]).abs() <= 1e-5 * magnitude.max(1e-3),
                        "{isa:?}, seed {seed}, row {r}: {} vs {}",
                        alone[0][r],
                        reference[r]
                    );
                }
                let views: Vec<&[BlockQ8K]> = xs.iter().map(Vec::as_slice).collect();
                // Every tile size the kernel takes, each row as alone.
                for size in 1..=tile(isa) {
                    let tile_views = &views[..size];
                    let mut together = vec![[0f32; ROWS]; size];
                    dot_group(isa, &group, tile_views, &mut together);
                    for (j, view) in tile_views.iter().enumerate() {
                        let mut alone = [[0f32; ROWS]];
                        dot_group(isa, &group, std::slice::from_ref(view), &mut alone);
                        assert_eq!(
                            together[j], alone[0],
                            "{isa:?}, seed {seed}, activation {j}"
                        );
                    }
                }
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
    fn the_stored_matmul_gives_the_copys_results_bit_for_bit_where_it_reads_stored() {
        let (rows, blocks) = (24, 3);
        let cols = blocks * QK_K;
        let matrix = random_matrix(5, rows, blocks);
        let copy = interleave(&matrix, rows, cols, 2).expect("whole groups");
        let bit_exact = reads_stored(super::super::isa());
        check_stored_matches_copy(
            (&matrix, &copy),
            (rows, cols),
            bit_exact,
            matmul,
            matmul_stored,
        );
    }

    /// Where the matrix can be read as stored, a row in the eight-row kernel's order
    /// (`q4k::dot_tile_in_x8_order`, whatever its tile) gives that kernel's bits.
    #[test]
    fn the_rows_in_the_kernels_order_give_its_bits() {
        let blocks = 5;
        let matrix = random_matrix(9, ROWS, blocks);
        let group = interleave(&matrix, ROWS, blocks * QK_K, 1).expect("one group");
        let xs: Vec<Vec<BlockQ8K>> = (0..super::super::TILE as u64)
            .map(|j| q8k::quantized(&random_activations(j + 40, blocks * QK_K)))
            .collect();
        let views: Vec<&[BlockQ8K]> = xs.iter().map(Vec::as_slice).collect();
        let row_bytes = blocks * BLOCK_BYTES;
        for isa in available().into_iter().filter(|&isa| reads_stored(isa)) {
            let by_kernel: Vec<[f32; ROWS]> = views
                .iter()
                .map(|view| {
                    let mut out = [[0f32; ROWS]];
                    dot_group(isa, &group, std::slice::from_ref(view), &mut out);
                    out[0]
                })
                .collect();
            for size in 1..=views.len() {
                for r in 0..ROWS {
                    let mut by_rows = vec![0f32; size];
                    let row = &matrix[r * row_bytes..(r + 1) * row_bytes];
                    q4k::dot_tile_in_x8_order(isa, row, &views[..size], &mut by_rows);
                    for (j, value) in by_rows.iter().enumerate() {
                        assert_eq!(
                            value.to_bits(),
                            by_kernel[j][r].to_bits(),
                            "{isa:?}, tile {size}, activation {j}, row {r}"
                        );
                    }
                }
            }
        }
    }
}
