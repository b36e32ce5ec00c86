//! Q6_K with eight rows interleaved, for an eight-row AVX-512 VNNI kernel: the output matrix and
//! half the down projections of Q4_K_M and Q5_K_M files, which the row-at-a-time kernel
//! (`q6k.rs`) left bound by compute in a batch (the kernels bench's compute alone: sixteen
//! Q6_K rows 114 ms a decode step's five projections, against 76 for interleaved Q5_K).
//!
//! A group block holds the eight rows' blocks at one block index, in as many bytes as the file
//! gives them (1680), in the order the kernel reads them:
//! - the eight `d` (f16);
//! - the scales, 128 bytes: for each quad `q` of sub-blocks, the eight rows' four scales
//!   (`[q][row][s % 4]`), so that one sign-extending load gives every row's four as i16 words;
//! - then for each half `n` of the block: its `qh`, 256 bytes, for each 8 bytes `i` the eight
//!   rows' `qh[32n + 8i..+8]` one after another (64 bytes a load); and its two 32-byte pieces
//!   `c` of `ql` (piece `cc = 2n + c` of the block), 256 bytes each, for each 8 bytes `i` the
//!   eight rows' bytes: 64 bytes a load, whose low nibbles are weights `128n + 32c + 8i..+8` of
//!   each row and whose high nibbles are weights `128n + 32(c + 2) + 8i..+8`, and which pairs
//!   with the `qh` load at the same `n` and `i`.
//!
//! Why in reading order: with the scales at the end (the file's order) one activation row
//! read the weights at 11.9 GB/s against the row kernel's 29.8 (kernels bench), presumably
//! because the hardware prefetcher follows a stream that moves forward.
//!
//! The group blocks take 26.25 cache lines, so most of them do not start on one. Padded to 27
//! (the halves starting on a line, every load aligned), a decode step would read 2.9% more
//! bytes, and one activation row measured no faster: 0.86 and 0.87 of the row kernel's rate in
//! the same rounds, against 0.93 and 1.02 unpadded (kernels bench, interleaved runs).
//!
//! The kernel: one `dpbusd` multiplies a load's 64 weights (six bits, unsigned) with the
//! matching activation bytes into two i32 lanes a row. A sub-block is two loads, whose sums
//! (at most 4·63·128 = 32,256 a lane) are packed into i16 words and scaled and added by one
//! `dpwssd`. The `−32` of each weight is taken off once per block from the activations' sums
//! per sixteen (Q8_K's `bsums`): `Σ_s scale[s]·bsum[s]`, four `dpwssd` over the rows' scale
//! words. Each row's block then comes down to one integer, `sumi − 32·summs`, added into f32
//! with one FMA (`d·y.d`) in block order; the row kernel reads a matrix as stored with the same
//! steps (`q6k::dot_tile_in_x8_order`), which is what lets this copy be made in the background.
//!
//! Exactness: each row's block integer equals `q6k::block_sums_reference`'s `sumi − 32·summs`
//! bit for bit, and its result equals the row-at-a-time reference within float rounding; the
//! tests check both, that a row's result does not depend on its tile, and that the stored path
//! gives the copy's results bit for bit.

use super::q6k::{self, BLOCK_BYTES};
use super::q8k::{BlockQ8K, QK_K};
use super::Isa;

/// Rows interleaved in a group.
pub const ROWS: usize = super::GROUP_ROWS;

const D: usize = 0;
const SCALES: usize = 16;
/// Where half `n`'s `qh` and `ql` start.
const HALVES: usize = 144;
/// Bytes of a half's `qh` and its two pieces of `ql`.
const HALF_BYTES: usize = 768;

/// Where load `i` of half `n`'s `qh` lies in a group block.
const fn qh_at(n: usize, i: usize) -> usize {
    HALVES + HALF_BYTES * n + 64 * i
}

/// Where load `i` of piece `cc` of `ql` lies in a group block.
const fn ql_at(cc: usize, i: usize) -> usize {
    HALVES + HALF_BYTES * (cc / 2) + 256 * (1 + cc % 2) + 64 * i
}

/// Bytes of a group's eight blocks at one block index.
pub const GROUP_BLOCK_BYTES: usize = HALVES + 2 * HALF_BYTES;

/// Activation rows one pass takes: eight, each an accumulator register beside a piece's eight
/// weight and four scale registers. Measured against four (kernels bench, `-- q6k`, four
/// interleaved runs each), a decode step's five projections for eight rows took 39.5-57.1 ms
/// (median 42.7) against 46.5-54.5 (48.2), for sixteen 77.9-114 (85.5) against 89.5-105.7
/// (92.8).
pub fn tile(isa: Isa) -> usize {
    match isa {
        Isa::Avx512 => 8,
        Isa::Avx2 | Isa::Portable => 1,
    }
}

/// Whether the interleaved kernel is the one to use for a `rows x cols` Q6_K matrix on `isa`:
/// on AVX-512 VNNI machines, when the rows fill whole groups. `VERSUS_INTERLEAVE=off` keeps
/// every matrix a row at a time.
pub fn applies(isa: Isa, rows: usize, cols: usize) -> bool {
    super::eight_rows_apply(isa == Isa::Avx512, rows, cols, QK_K)
}

/// Whether [`matmul_stored`] gives, bit for bit, what [`matmul`] gives on the interleaved copy
/// with `isa` (so that the copy can be made in the background): where the kernel applies.
pub fn reads_stored(isa: Isa) -> bool {
    isa == Isa::Avx512
}

/// `bytes` (a `rows x cols` Q6_K matrix, rows one after another) interleaved on `threads`
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

/// Where each of a block's bytes goes in a group block, for row `r`: `(block offset, group
/// block offset, length)`. One table for both directions, so that interleaving and taking a
/// row back out cannot disagree.
fn row_places(r: usize) -> impl Iterator<Item = (usize, usize, usize)> {
    let ql =
        (0..4).flat_map(move |cc| (0..4).map(move |i| (32 * cc + 8 * i, ql_at(cc, i) + 8 * r, 8)));
    let qh = (0..2)
        .flat_map(move |n| (0..4).map(move |i| (128 + 32 * n + 8 * i, qh_at(n, i) + 8 * r, 8)));
    let scales = (0..16).map(move |s| (192 + s, SCALES + 32 * (s / 4) + 4 * r + s % 4, 1));
    let d = std::iter::once((208, D + 2 * r, 2));
    ql.chain(qh).chain(scales).chain(d)
}

/// Puts row `r`'s block into a group block.
fn put_row(group_block: &mut [u8], r: usize, block: &[u8]) {
    for (from, to, len) in row_places(r) {
        group_block[to..to + len].copy_from_slice(&block[from..from + len]);
    }
}

/// Row `r`'s own Q6_K block, taken back out of a group block.
pub fn original_block(group_block: &[u8], r: usize) -> [u8; BLOCK_BYTES] {
    let mut block = [0u8; BLOCK_BYTES];
    for (to, from, len) in row_places(r) {
        block[to..to + len].copy_from_slice(&group_block[from..from + len]);
    }
    block
}

/// A group's eight rows dotted with a Q8_K row, by the scalar reference: each row's own blocks
/// through `q6k::dot_reference`.
pub fn dot_group_reference(group: &[u8], ys: &[BlockQ8K]) -> [f32; ROWS] {
    std::array::from_fn(|r| {
        let row: Vec<u8> = group
            .chunks_exact(GROUP_BLOCK_BYTES)
            .flat_map(|group_block| original_block(group_block, r))
            .collect();
        q6k::dot_reference(&row, ys)
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
        // index, and `group` is whole group blocks (checked by the caller's chunking).
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

/// `out (n x rows) = xs (n x cols) · Wᵀ` for an interleaved Q6_K matrix: groups of rows split
/// over the kernel pool, each group's bytes read once for every tile of activation rows; a
/// prefill's long batch through `panel` instead, with the same results (`k_quant_matmul`).
pub fn matmul(interleaved: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
    super::k_quant_matmul::<{ super::panel::Q6K }>(
        interleaved,
        (rows, cols),
        GROUP_BLOCK_BYTES,
        tile,
        (xs, out),
        dot_group,
    );
}

/// `out (n x rows) = xs (n x cols) · Wᵀ` for a Q6_K matrix as the file stores it, a row at a
/// time in the eight-row kernel's float order: where [`reads_stored`], bit for bit what
/// [`matmul`] gives on the interleaved copy; elsewhere the reference's results.
pub fn matmul_stored(stored: &[u8], rows: usize, cols: usize, xs: &[f32], out: &mut [f32]) {
    super::k_quant_rows_in_x8_order(
        stored,
        (rows, cols),
        BLOCK_BYTES,
        (xs, out),
        q6k::dot_tile_in_x8_order,
    );
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
pub(super) mod avx512 {
    //! AVX-512 VNNI: sixteen i32 lanes of `dpbusd`, two a row (its bytes `8i..8i+4` and
    //! `8i+4..8i+8` of a piece), the activation's matching eight bytes broadcast to every pair
    //! of lanes; a sub-block's two loads packed into i16 words and scaled by `dpwssd` into
    //! lanes `4l + e` and `4l + e + 2` of row `2l + e`.
    use std::arch::x86_64::*;

    use super::{qh_at, ql_at, BlockQ8K, D, GROUP_BLOCK_BYTES, ROWS, SCALES};

    /// For a sub-block at position `position` (`s % 4`) of its quad, which of the quad's 32
    /// scale words (`[row][s % 4]`) each word of a packed pair of loads' sums takes: in
    /// 128-bit lane `l`, words `0-3` are the first load's lanes `4l..4l+4` (rows `2l, 2l,
    /// 2l+1, 2l+1`) and words `4-7` the second's.
    const fn scale_index(position: usize) -> [i16; 32] {
        let mut index = [0i16; 32];
        let mut word = 0;
        while word < 32 {
            let row = 2 * (word / 8) + (word % 4) / 2;
            index[word] = (4 * row + position) as i16;
            word += 1;
        }
        index
    }

    const SCALE_INDEX: [[i16; 32]; 4] = [
        scale_index(0),
        scale_index(1),
        scale_index(2),
        scale_index(3),
    ];

    /// Where the folded sums lie (see `row_totals`): rows' sub-block sums at lanes `4l + e`
    /// (`e < 2`), then their `bsum` sums at lanes `2r` of the second register.
    const GATHER_ROWS: [i32; 16] = [0, 1, 4, 5, 8, 9, 12, 13, 16, 18, 20, 22, 24, 26, 28, 30];

    /// `(a & c) | b` for `vpternlogd`.
    const A_AND_C_OR_B: i32 = 0xec;

    /// One 32-byte piece `cc` of a group block's `ql` with its high bits: the six-bit weights of
    /// its four loads' low nibbles and of their high nibbles.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn unpack_piece(p: *const u8, cc: usize) -> ([__m512i; 4], [__m512i; 4]) {
        // SAFETY: the caller guarantees the features and a whole group block at `p`; `cc < 4`
        // and `i < 4` keep the loads inside its `ql` and `qh`.
        unsafe {
            let (n, c) = (cc / 2, cc % 2);
            let nibble = _mm512_set1_epi8(0x0f);
            let two_bits = _mm512_set1_epi8(0x30);
            let mut low = [_mm512_setzero_si512(); 4];
            let mut high = [_mm512_setzero_si512(); 4];
            for i in 0..4 {
                let ql = _mm512_loadu_si512(p.add(ql_at(cc, i)) as *const __m512i);
                let qh = _mm512_loadu_si512(p.add(qh_at(n, i)) as *const __m512i);
                // Weights of piece c take qh bits 2c, 2c+1 (low nibbles) and 2c+4, 2c+5 (high
                // nibbles), moved to bits 4 and 5; the mask after the 16-bit shift drops what
                // crossed from the neighbouring byte.
                let (low_bits, high_bits) = if c == 0 {
                    (_mm512_slli_epi16::<4>(qh), qh)
                } else {
                    (_mm512_slli_epi16::<2>(qh), _mm512_srli_epi16::<2>(qh))
                };
                low[i] = _mm512_ternarylogic_epi32::<A_AND_C_OR_B>(
                    ql,
                    _mm512_and_si512(low_bits, two_bits),
                    nibble,
                );
                high[i] = _mm512_ternarylogic_epi32::<A_AND_C_OR_B>(
                    _mm512_srli_epi16::<4>(ql),
                    _mm512_and_si512(high_bits, two_bits),
                    nibble,
                );
            }
            (low, high)
        }
    }

    /// `isum` plus piece `cc`'s scaled sums against a Q8_K block: `scales` are the words of its
    /// four sub-blocks (low nibbles' first and second, high nibbles' first and second).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn piece_isum(
        isum: __m512i,
        weights: &([__m512i; 4], [__m512i; 4]),
        scales: &[__m512i; 4],
        cc: usize,
        y: &BlockQ8K,
    ) -> __m512i {
        // SAFETY: the caller guarantees the features; `cc < 4` and `i < 4` keep the 8-byte
        // reads inside the block's 256 q8.
        unsafe {
            let (n, c) = (cc / 2, cc % 2);
            let q8 = y.qs.as_ptr();
            let zero = _mm512_setzero_si512();
            let sums = |weights: &[__m512i; 4], first: usize| -> [__m512i; 4] {
                std::array::from_fn(|i| {
                    let a = _mm512_set1_epi64(std::ptr::read_unaligned(
                        q8.add(first + 8 * i) as *const i64
                    ));
                    _mm512_dpbusd_epi32(zero, weights[i], a)
                })
            };
            let low = sums(&weights.0, 128 * n + 32 * c);
            let high = sums(&weights.1, 128 * n + 32 * c + 64);
            let mut isum = isum;
            isum = _mm512_dpwssd_epi32(isum, _mm512_packs_epi32(low[0], low[1]), scales[0]);
            isum = _mm512_dpwssd_epi32(isum, _mm512_packs_epi32(low[2], low[3]), scales[1]);
            isum = _mm512_dpwssd_epi32(isum, _mm512_packs_epi32(high[0], high[1]), scales[2]);
            _mm512_dpwssd_epi32(isum, _mm512_packs_epi32(high[2], high[3]), scales[3])
        }
    }

    /// Each row's block integer `sumi − 32·summs`, rows in lanes 0-7, from the sub-block sums
    /// (row `2l + e` in lanes `4l + e` and `4l + e + 2`) and the scaled `bsum` sums (row `r`
    /// in lanes `2r` and `2r + 1`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn row_totals(isum: __m512i, summ: __m512i) -> __m256i {
        // SAFETY: register operations and a 64-byte read of a constant; the caller guarantees
        // the features.
        unsafe {
            let isum = _mm512_add_epi32(isum, _mm512_shuffle_epi32::<0b01_00_11_10>(isum));
            let summ = _mm512_add_epi32(summ, _mm512_shuffle_epi32::<0b10_11_00_01>(summ));
            let gather = _mm512_loadu_si512(GATHER_ROWS.as_ptr() as *const __m512i);
            let both = _mm512_permutex2var_epi32(isum, gather, summ);
            _mm256_sub_epi32(
                _mm512_castsi512_si256(both),
                _mm256_slli_epi32::<5>(_mm512_extracti64x4_epi64::<1>(both)),
            )
        }
    }

    /// The rows' integers of one group block against `N` activation blocks.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn block_totals<const N: usize>(p: *const u8, ys: [&BlockQ8K; N]) -> [__m256i; N] {
        // SAFETY: the caller guarantees the features and a whole group block at `p`; the
        // scale loads are its 128 bytes of scales, the bsum reads inside each y's 16.
        unsafe {
            let quads: [__m512i; 4] = std::array::from_fn(|q| {
                _mm512_cvtepi8_epi16(_mm256_loadu_si256(p.add(SCALES + 32 * q) as *const __m256i))
            });
            let index: [__m512i; 4] = std::array::from_fn(|position| {
                _mm512_loadu_si512(SCALE_INDEX[position].as_ptr() as *const __m512i)
            });
            let mut isum = [_mm512_setzero_si512(); N];
            for cc in 0..4 {
                let (n, c) = (cc / 2, cc % 2);
                let weights = unpack_piece(p, cc);
                let scales = [
                    _mm512_permutexvar_epi16(index[2 * c], quads[2 * n]),
                    _mm512_permutexvar_epi16(index[2 * c + 1], quads[2 * n]),
                    _mm512_permutexvar_epi16(index[2 * c], quads[2 * n + 1]),
                    _mm512_permutexvar_epi16(index[2 * c + 1], quads[2 * n + 1]),
                ];
                for j in 0..N {
                    isum[j] = piece_isum(isum[j], &weights, &scales, cc, ys[j]);
                }
            }
            std::array::from_fn(|j| {
                let bsums = ys[j].bsums.as_ptr();
                let mut summ = _mm512_setzero_si512();
                for (q, quad) in quads.iter().enumerate() {
                    // The quad's four bsums beside each row's four scales.
                    let four =
                        _mm512_set1_epi64(std::ptr::read_unaligned(bsums.add(4 * q) as *const i64));
                    summ = _mm512_dpwssd_epi32(summ, *quad, four);
                }
                row_totals(isum[j], summ)
            })
        }
    }

    /// `N` activation rows against a group of eight rows: `out[j][r]`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn dot_group<const N: usize>(
        ys: [&[BlockQ8K]; N],
        group: &[u8],
    ) -> [[f32; ROWS]; N] {
        // SAFETY: the caller guarantees the features, that `group` is whole group blocks and
        // that each `ys[j]` has a block for each.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); N];
            for (block, gb) in group.chunks_exact(GROUP_BLOCK_BYTES).enumerate() {
                let p = gb.as_ptr();
                // See `q4k_x8`'s `PREFETCH_BLOCKS`; past the matrix's end this asks for
                // nothing that matters.
                if N > 1 {
                    let ahead =
                        p.wrapping_add(super::super::q4k_x8::PREFETCH_BLOCKS * GROUP_BLOCK_BYTES);
                    super::super::x86::prefetch_l2(ahead, GROUP_BLOCK_BYTES);
                }
                let d = _mm256_cvtph_ps(_mm_loadu_si128(p.add(D) as *const __m128i));
                let totals: [__m256i; N] = block_totals(p, std::array::from_fn(|j| &ys[j][block]));
                for j in 0..N {
                    // As `q6k::dot_tile_in_x8_order`: one FMA of the block's integer a row.
                    let scale = _mm256_mul_ps(d, _mm256_set1_ps(ys[j][block].d));
                    acc[j] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(totals[j]), scale, acc[j]);
                }
            }
            let mut out = [[0f32; ROWS]; N];
            for j in 0..N {
                _mm256_storeu_ps(out[j].as_mut_ptr(), acc[j]);
            }
            out
        }
    }

    /// Two groups' blocks at one block index (`a` and `b`: whole group blocks; `b` may be `a`)
    /// unpacked for [`super::super::panel`], rows 0-7 of `a` in lanes 0-7 and those of `b` in
    /// lanes 8-15: `weights` the 64 registers of six-bit weights as bytes (0-63), register `kg`
    /// holding weights `4 kg` to `4 kg + 3` of each row; `scales` sixteen registers of i32, one
    /// a sub-block of sixteen weights. Returns each row's `d` as f32.
    ///
    /// # Safety
    /// The features; `a` and `b` whole group blocks; `weights` 64 writable registers and
    /// `scales` sixteen.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(in super::super) unsafe fn unpack_group_pair(
        a: *const u8,
        b: *const u8,
        weights: *mut __m512i,
        scales: *mut __m512i,
    ) -> __m512 {
        // SAFETY: as the caller promises; every read is inside a group block, every write
        // inside the registers promised.
        unsafe {
            // Each row's eight bytes of a load are two dwords (lanes 2r and 2r + 1): the first
            // of each row from `a` then from `b`, and the second.
            let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
            let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
            for cc in 0..4 {
                let (from_a, from_b) = (unpack_piece(a, cc), unpack_piece(b, cc));
                let (n, c) = (cc / 2, cc % 2);
                for i in 0..4 {
                    // Load i: weights 128n + 32c + 8i..+8 (low nibbles) and 64 further on
                    // (high nibbles).
                    let low = 32 * n + 8 * c + 2 * i;
                    let high = low + 16;
                    let merge = |from_a: __m512i, index: __m512i, from_b: __m512i| {
                        _mm512_permutex2var_epi32(from_a, index, from_b)
                    };
                    *weights.add(low) = merge(from_a.0[i], even, from_b.0[i]);
                    *weights.add(low + 1) = merge(from_a.0[i], odd, from_b.0[i]);
                    *weights.add(high) = merge(from_a.1[i], even, from_b.1[i]);
                    *weights.add(high + 1) = merge(from_a.1[i], odd, from_b.1[i]);
                }
            }
            // Scales `[quad][row][s % 4]` to `[s][row]`, sign-extended: once per block of a
            // band, against every activation row's pass, so plain reads.
            for sub_block in 0..16 {
                let at = SCALES + 32 * (sub_block / 4) + sub_block % 4;
                let lanes: [i32; 16] = std::array::from_fn(|lane| {
                    let group = if lane < ROWS { a } else { b };
                    i32::from(*group.add(at + 4 * (lane % ROWS)) as i8)
                });
                *scales.add(sub_block) = _mm512_loadu_si512(lanes.as_ptr() as *const __m512i);
            }
            let of = |p: *const u8| _mm256_cvtph_ps(_mm_loadu_si128(p.add(D) as *const __m128i));
            _mm512_castpd_ps(_mm512_insertf64x4::<1>(
                _mm512_castpd256_pd512(_mm256_castps_pd(of(a))),
                _mm256_castps_pd(of(b)),
            ))
        }
    }

    /// Each row's block integer of one group block, for the exactness tests.
    #[cfg(test)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn block_totals_of(group_block: &[u8], y: &BlockQ8K) -> [i32; ROWS] {
        assert_eq!(group_block.len(), GROUP_BLOCK_BYTES, "one group block");
        // SAFETY: as `dot_group`, on one group block (checked above).
        unsafe {
            let [totals] = block_totals(group_block.as_ptr(), [y]);
            let mut out = [0i32; ROWS];
            _mm256_storeu_si256(out.as_mut_ptr() as *mut __m256i, totals);
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{
        check_group_tiles, check_stored_matches_copy, random_activations, random_bytes,
    };
    use super::super::{available, q8k};
    use super::*;
    use half::f16;

    /// A random `rows x blocks` Q6_K matrix with finite, small scales.
    fn random_matrix(seed: u64, rows: usize, blocks: usize) -> Vec<u8> {
        let mut bytes = random_bytes(seed, rows * blocks * BLOCK_BYTES);
        for (index, block) in bytes.chunks_exact_mut(BLOCK_BYTES).enumerate() {
            let d = f16::from_f32((index % 7 + 1) as f32 / 30_000.0);
            block[208..].copy_from_slice(&d.to_le_bytes());
        }
        bytes
    }

    /// The reference's integer for one block: `sumi − 32·summs`.
    fn reference_total(block: &[u8], y: &BlockQ8K) -> i32 {
        let (sumi, summs) = q6k::block_sums_reference(block, y);
        sumi - 32 * summs
    }

    /// Each row's block integer of one group block, by the kernel `isa` runs, or `None` where
    /// it has no SIMD kernel of its own.
    fn kernel_totals(isa: Isa, group_block: &[u8], y: &BlockQ8K) -> Option<[i32; ROWS]> {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `available()` listed AVX-512 with everything its kernel needs, and the
            // callers pass whole group blocks.
            #[allow(unsafe_code)]
            Isa::Avx512 => Some(unsafe { avx512::block_totals_of(group_block, y) }),
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
                        if let Some(totals) = kernel_totals(isa, group_block, &xs[b]) {
                            assert_eq!(
                                totals[r % ROWS],
                                reference_total(block, &xs[b]),
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

    /// The largest sums a load's lanes can reach (every weight 63, every activation -128 or
    /// 127, every scale -128 or 127) come out of every kernel exact: the AVX-512 kernel packs
    /// each load's sums into i16 words, which must not saturate.
    #[test]
    fn extreme_blocks_sum_exactly_in_every_kernel() {
        for scale in [127u8, 0x80] {
            let mut block = [0xffu8; BLOCK_BYTES];
            block[192..208].fill(scale);
            block[208..].copy_from_slice(&f16::from_f32(0.5).to_le_bytes());
            let matrix: Vec<u8> = (0..ROWS).flat_map(|_| block).collect();
            let group = interleave(&matrix, ROWS, QK_K, 1).expect("one group");
            for activation in [-128i8, 127] {
                let y = BlockQ8K {
                    d: 0.125,
                    qs: [activation; QK_K],
                    bsums: [16 * i16::from(activation); QK_K / 16],
                };
                let expected = reference_total(&block, &y);
                for isa in available() {
                    if let Some(totals) = kernel_totals(isa, &group, &y) {
                        assert_eq!(
                            totals, [expected; ROWS],
                            "{isa:?}, activations {activation}"
                        );
                    }
                    let mut out = [[0f32; ROWS]];
                    dot_group(isa, &group, &[std::slice::from_ref(&y)], &mut out);
                    let expected = q6k::dot_reference(&block, std::slice::from_ref(&y));
                    for value in out[0] {
                        assert!((value - expected).abs() <= 1e-6 * expected.abs(), "{isa:?}");
                    }
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
                        .map(|(block, y)| q6k::dot_reference(block, std::slice::from_ref(y)).abs())
                        .sum()
                });
                let reference = (dot_group_reference(&group, &xs[0]), magnitude);
                check_group_tiles(isa, &group, &xs, tile(isa), reference, dot_group);
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
