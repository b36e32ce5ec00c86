//! Q6_K matrix x Q8_K activations: the output matrix and half the down and value projections of
//! a Q4_K_M file (the type people download most), and every matrix of a Q6_K one.
//!
//! A Q6_K block (llama.cpp's `block_q6_K`, 210 bytes for 256 weights) holds 128 bytes of low
//! nibbles `ql`, 64 bytes of high bit pairs `qh`, sixteen signed 8-bit scales (one per 16
//! weights) and an f16 scale `d`, in that order. Weight i of sub-block s is `d·scale[s]·(q − 32)`
//! with q in 0..64, so its dot product with a Q8_K block is
//! `d·y.d·(Σ_s scale[s]·Σ q·q8 − 32·Σ_s scale[s]·bsum[s])`: two integer sums a block.
//!
//! Value order: weight `128n + 32k + l` (n < 2, k < 4, l < 32) takes the low nibble of
//! `ql[64n + l]` (k = 0), of `ql[64n + 32 + l]` (k = 1), the high nibble of those (k = 2, 3), and
//! bits `2k, 2k+1` of `qh[32n + l]`; its sub-block is `8n + 2k + l / 16`. So 32 consecutive
//! weights come from one 32-byte load of each and meet 32 consecutive activation bytes.

use half::f16;

use super::q8k::{BlockQ8K, QK_K};
use super::Isa;

/// Bytes per Q6_K block.
pub const BLOCK_BYTES: usize = 210;

/// A block's parts, read from its bytes.
struct Block<'a> {
    ql: &'a [u8],
    qh: &'a [u8],
    scales: [i8; 16],
    d: f32,
}

fn block(bytes: &[u8]) -> Block<'_> {
    let mut scales = [0i8; 16];
    for (scale, &byte) in scales.iter_mut().zip(&bytes[192..208]) {
        *scale = byte as i8;
    }
    Block {
        ql: &bytes[..128],
        qh: &bytes[128..192],
        scales,
        d: f16::from_le_bytes([bytes[208], bytes[209]]).to_f32(),
    }
}

/// Weight `i`'s six-bit value q (0..64) in a block.
fn value(block: &Block<'_>, i: usize) -> u8 {
    let (n, k, l) = (i / 128, (i % 128) / 32, i % 32);
    let low = block.ql[64 * n + 32 * (k % 2) + l];
    let nibble = if k < 2 { low & 0x0f } else { low >> 4 };
    let high = (block.qh[32 * n + l] >> (2 * k)) & 3;
    nibble | (high << 4)
}

/// A block's two integer sums against a Q8_K block: `Σ_s scale[s]·Σ q·q8` and
/// `Σ_s scale[s]·bsum[s]`. The reference every kernel is tested against.
pub fn block_sums_reference(bytes: &[u8], y: &BlockQ8K) -> (i32, i32) {
    let x = block(bytes);
    let mut sumi = 0i32;
    for s in 0..16 {
        let products: i32 = (16 * s..16 * s + 16)
            .map(|i| i32::from(value(&x, i)) * i32::from(y.qs[i]))
            .sum();
        sumi += i32::from(x.scales[s]) * products;
    }
    let summs = (0..16)
        .map(|s| i32::from(x.scales[s]) * i32::from(y.bsums[s]))
        .sum();
    (sumi, summs)
}

/// One row (its Q6_K bytes) dotted with a Q8_K row, by the scalar reference.
pub fn dot_reference(row: &[u8], ys: &[BlockQ8K]) -> f32 {
    row.chunks_exact(BLOCK_BYTES)
        .zip(ys)
        .map(|(bytes, y)| {
            let (sumi, summs) = block_sums_reference(bytes, y);
            block(bytes).d * y.d * (sumi - 32 * summs) as f32
        })
        .sum()
}

/// llama.cpp's Q6_K, multiplied with activations quantized to Q8_K.
pub struct Q6K;

impl super::Format for Q6K {
    type Activation = BlockQ8K;
    const BLOCK: usize = QK_K;
    const BLOCK_BYTES: usize = BLOCK_BYTES;

    fn activations(xs: &[f32]) -> Vec<BlockQ8K> {
        super::q8k::quantized(xs)
    }

    fn dot_reference(row: &[u8], ys: &[BlockQ8K]) -> f32 {
        dot_reference(row, ys)
    }

    /// Eight on AVX-512, whose thirty-two registers hold eight activations' accumulators.
    fn tile(isa: Isa) -> usize {
        if isa == Isa::Avx512 {
            8
        } else {
            4
        }
    }

    fn dot_tile(isa: Isa, row: &[u8], ys: &[&[BlockQ8K]], out: &mut [f32]) {
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `available()` offers `Avx512` only when the CPU has AVX-512 F, BW, VL and
            // VNNI besides AVX2, FMA and F16C; a short activation row panics at its
            // bounds-checked index.
            #[allow(unsafe_code)]
            Isa::Avx512 => unsafe {
                super::dispatch_tile!(ys, out, |tile| avx512::dot_tile(row, tile))
            },
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `available()` offers `Avx2` only when the CPU has AVX2, FMA and F16C; a
            // short activation row panics at its bounds-checked index.
            #[allow(unsafe_code)]
            Isa::Avx2 => unsafe {
                super::dispatch_tile!(ys, out, |tile| avx2::dot_tile(row, tile))
            },
            _ => {
                for (out, y) in out.iter_mut().zip(ys) {
                    *out = dot_reference(row, y);
                }
            }
        }
    }
}

/// One row dotted with one to eight activation rows (`ys`) in the float order of the eight-row
/// kernel (`q6k_x8`), where `isa` is AVX-512: each block's integer `sumi − 32·summs` times
/// `d·y.d` added by one FMA, block after block. What that kernel gives for the row, bit for
/// bit, so that a matrix can be read as stored while its interleaved copy is made. Elsewhere,
/// the reference.
pub fn dot_tile_in_x8_order(isa: Isa, row: &[u8], ys: &[&[BlockQ8K]], out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as `dot_tile`'s AVX-512 arm.
        #[allow(unsafe_code)]
        Isa::Avx512 => unsafe {
            super::dispatch_tile!(ys, out, |tile| avx512::dot_tile_in_x8_order(row, tile))
        },
        _ => {
            for (out, y) in out.iter_mut().zip(ys) {
                *out = dot_reference(row, y);
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    //! AVX2: each 32 weights are assembled from one load of `ql` and one of `qh` (masks and
    //! 16-bit shifts that never carry across bytes), multiplied with the activation bytes by
    //! `maddubs` (q is unsigned, at most 63·127·2 per pair: no saturation), and scaled per
    //! 16 weights by `madd`.
    use std::arch::x86_64::*;

    use super::super::x86;
    use super::{BlockQ8K, BLOCK_BYTES};

    /// A block's weights unpacked: the eight 32-weight vectors (n, k) in value order, and each
    /// one's pair of sub-block scales as i16 lanes (eight of each).
    pub(super) struct Unpacked {
        pub(super) q: [__m256i; 8],
        pub(super) scales: [__m256i; 8],
        /// All sixteen scales as i16, for the bsum term.
        pub(super) all_scales: __m256i,
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn unpack(bytes: &[u8]) -> Unpacked {
        debug_assert_eq!(bytes.len(), BLOCK_BYTES);
        let p = bytes.as_ptr();
        // SAFETY: a block is 210 bytes: ql at 0..128, qh at 128..192, scales at 192..208; every
        // load below stays inside them. The caller guarantees AVX2.
        unsafe {
            let nibble = _mm256_set1_epi8(0x0f);
            let zero = _mm256_setzero_si256();
            let mut unpacked = Unpacked {
                q: [zero; 8],
                scales: [zero; 8],
                all_scales: _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(192) as *const __m128i)),
            };
            for n in 0..2 {
                let ql0 = _mm256_loadu_si256(p.add(64 * n) as *const __m256i);
                let ql1 = _mm256_loadu_si256(p.add(64 * n + 32) as *const __m256i);
                let qh = _mm256_loadu_si256(p.add(128 + 32 * n) as *const __m256i);
                // Bits 2k, 2k+1 of each qh byte, moved to bits 4 and 5 (masked first, so the
                // 16-bit shifts carry nothing across bytes).
                let mask = |bits: u8| _mm256_and_si256(qh, _mm256_set1_epi8(bits as i8));
                let high = [
                    _mm256_slli_epi16(mask(0x03), 4),
                    _mm256_slli_epi16(mask(0x0c), 2),
                    mask(0x30),
                    _mm256_srli_epi16(mask(0xc0), 2),
                ];
                let low = [
                    _mm256_and_si256(ql0, nibble),
                    _mm256_and_si256(ql1, nibble),
                    _mm256_and_si256(_mm256_srli_epi16(ql0, 4), nibble),
                    _mm256_and_si256(_mm256_srli_epi16(ql1, 4), nibble),
                ];
                for k in 0..4 {
                    unpacked.q[4 * n + k] = _mm256_or_si256(low[k], high[k]);
                }
                for k in 0..4 {
                    let s = 8 * n + 2 * k;
                    let first = i16::from(bytes[192 + s] as i8);
                    let second = i16::from(bytes[192 + s + 1] as i8);
                    unpacked.scales[4 * n + k] =
                        _mm256_set_m128i(_mm_set1_epi16(second), _mm_set1_epi16(first));
                }
            }
            unpacked
        }
    }

    /// The two integer sums of an unpacked block against a Q8_K block (see
    /// `block_sums_reference`), as eight i32 lanes each.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_sums(x: &Unpacked, y: &BlockQ8K) -> (__m256i, __m256i) {
        let q8 = y.qs.as_ptr();
        // SAFETY: a Q8_K block has 256 bytes of q8 and 16 i16 bsums; v < 8 keeps every 32-byte
        // load inside them. The caller guarantees AVX2.
        unsafe {
            let mut sumi = _mm256_setzero_si256();
            for v in 0..8 {
                let a = _mm256_loadu_si256(q8.add(32 * v) as *const __m256i);
                let products = _mm256_maddubs_epi16(x.q[v], a);
                sumi = _mm256_add_epi32(sumi, _mm256_madd_epi16(x.scales[v], products));
            }
            let bsums = _mm256_loadu_si256(y.bsums.as_ptr() as *const __m256i);
            (sumi, _mm256_madd_epi16(x.all_scales, bsums))
        }
    }

    /// `block_sums` added up, for the exactness tests.
    #[cfg(test)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block_sums_scalar(bytes: &[u8], y: &BlockQ8K) -> (i32, i32) {
        // SAFETY: the caller guarantees AVX2 and FMA, which the callees need.
        unsafe {
            let (sumi, summs) = block_sums(&unpack(bytes), y);
            (x86::sum_i32x8(sumi), x86::sum_i32x8(summs))
        }
    }

    /// One row dotted with `N` activation rows: per block, the weights are unpacked once and
    /// multiplied with each activation in turn; each activation's `sumi − 32·summs` lanes
    /// accumulate in f32 (`d·y.d` per block), the same operations whatever `N` is.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_tile<const N: usize>(row: &[u8], ys: [&[BlockQ8K]; N]) -> [f32; N] {
        // SAFETY: the caller guarantees AVX2, FMA and F16C; blocks are read by `unpack` and
        // `block_sums` inside their bounds, activation blocks by bounds-checked index.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); N];
            for (block, bytes) in row.chunks_exact(BLOCK_BYTES).enumerate() {
                let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
                    u16::from_le_bytes([bytes[208], bytes[209]]),
                ))));
                let unpacked = unpack(bytes);
                for j in 0..N {
                    let y = &ys[j][block];
                    let (sumi, summs) = block_sums(&unpacked, y);
                    let total = _mm256_sub_epi32(sumi, _mm256_slli_epi32(summs, 5));
                    acc[j] =
                        _mm256_fmadd_ps(_mm256_set1_ps(d * y.d), _mm256_cvtepi32_ps(total), acc[j]);
                }
            }
            let mut out = [0f32; N];
            for j in 0..N {
                out[j] = x86::sum_f32x8(acc[j]);
            }
            out
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    //! AVX-512 with VNNI: the AVX2 unpacking's 32-weight vectors joined in pairs, so 64 weights
    //! meet 64 consecutive activation bytes in one load; `maddubs` then `dpwssd` (the scales and
    //! the i32 accumulation in one instruction).
    use std::arch::x86_64::*;

    use super::{BlockQ8K, BLOCK_BYTES};

    pub(super) struct Unpacked {
        q: [__m512i; 4],
        scales: [__m512i; 4],
        all_scales: __m256i,
    }

    /// A block unpacked at full width: each 64-byte `ql` load gives two pairs' low bits (its low
    /// and its high nibbles), a 32-byte `qh` load broadcast to both halves gives their high
    /// bits (masked, then shifted by a per-half count), and one `vpshufb` each spreads the
    /// sixteen scales over a pair's sub-blocks. Why not AVX2's unpacking joined in pairs, as
    /// before: its scale broadcasts and joins were most of a block's instructions, and this
    /// kernel was bound by them even at one activation row (the kernels bench's compute alone:
    /// 23.4 ms of a 27.7 ms decode step).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    pub(super) unsafe fn unpack(bytes: &[u8]) -> Unpacked {
        debug_assert_eq!(bytes.len(), BLOCK_BYTES);
        let p = bytes.as_ptr();
        // Per 16-bit lane, the first half's value then the second half's.
        let halves = |first: i16, second: i16| {
            let lanes: [i16; 32] = std::array::from_fn(|m| if m < 16 { first } else { second });
            // SAFETY: 64 bytes from a 64-byte array.
            unsafe { _mm512_loadu_si512(lanes.as_ptr() as *const __m512i) }
        };
        // SAFETY: a block is 210 bytes: ql at 0..128, qh at 128..192, scales at 192..208; every
        // load below stays inside them. The caller guarantees the features.
        unsafe {
            let nibble = _mm512_set1_epi8(0x0f);
            // k = 0 | 1: bits 0-1 | 2-3 of qh, to bits 4-5; k = 2 | 3: bits 4-5 | 6-7.
            let (low_bits, low_shift) = (halves(0x0303, 0x0c0c), halves(4, 2));
            let (high_bits, high_shift) = (halves(0x3030, -0x3f40), halves(0, 2));
            let all_scales = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(192) as *const __m128i));
            let zero = _mm512_setzero_si512();
            let mut unpacked = Unpacked {
                q: [zero; 4],
                scales: [zero; 4],
                all_scales,
            };
            for n in 0..2 {
                let ql = _mm512_loadu_si512(p.add(64 * n) as *const __m512i);
                let qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(
                    p.add(128 + 32 * n) as *const __m256i
                ));
                // Masked first, so the 16-bit shifts carry nothing across bytes.
                let low = _mm512_sllv_epi16(_mm512_and_si512(qh, low_bits), low_shift);
                let high = _mm512_srlv_epi16(_mm512_and_si512(qh, high_bits), high_shift);
                unpacked.q[2 * n] = _mm512_or_si512(_mm512_and_si512(ql, nibble), low);
                unpacked.q[2 * n + 1] =
                    _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), nibble), high);
            }
            // Pair p covers sub-blocks 4p..4p+4, eight 16-bit lanes of products each: the i16
            // scales' 128-bit lane that holds them, in every lane, then an in-lane shuffle.
            for (pair, spread) in unpacked.scales.iter_mut().enumerate() {
                let lane = if pair < 2 {
                    _mm256_castsi256_si128(all_scales)
                } else {
                    _mm256_extracti128_si256(all_scales, 1)
                };
                let first = (8 * (pair % 2)) as i8;
                let index = super::super::x86::i16_spread_index([0, 2, 4, 6].map(|s| first + s));
                *spread = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(lane), index);
            }
            unpacked
        }
    }

    /// `Σ_s scale[s]·Σ q·q8 − 32·Σ_s scale[s]·bsum[s]` of an unpacked block against a Q8_K
    /// block, as sixteen i32 lanes.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    pub(super) unsafe fn block_total(x: &Unpacked, y: &BlockQ8K) -> __m512i {
        let q8 = y.qs.as_ptr();
        // SAFETY: a Q8_K block has 256 bytes of q8 and 16 i16 bsums; pair < 4 keeps every
        // 64-byte load inside them. The caller guarantees the features.
        unsafe {
            let mut sumi = _mm512_setzero_si512();
            for pair in 0..4 {
                let a = _mm512_loadu_si512(q8.add(64 * pair) as *const __m512i);
                let products = _mm512_maddubs_epi16(x.q[pair], a);
                sumi = _mm512_dpwssd_epi32(sumi, products, x.scales[pair]);
            }
            let bsums = _mm256_loadu_si256(y.bsums.as_ptr() as *const __m256i);
            let summs = _mm256_madd_epi16(x.all_scales, bsums);
            _mm512_sub_epi32(sumi, _mm512_zextsi256_si512(_mm256_slli_epi32(summs, 5)))
        }
    }

    /// The block's total added up, for the exactness tests (`sumi − 32·summs`).
    #[cfg(test)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    pub(super) unsafe fn block_total_scalar(bytes: &[u8], y: &BlockQ8K) -> i32 {
        // SAFETY: the caller guarantees the features the callees need.
        unsafe { _mm512_reduce_add_epi32(block_total(&unpack(bytes), y)) }
    }

    /// One row dotted with `N` activation rows: the same operations for each whatever `N` is.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn dot_tile<const N: usize>(row: &[u8], ys: [&[BlockQ8K]; N]) -> [f32; N] {
        // SAFETY: the caller guarantees the features; blocks are read by `unpack` and
        // `block_total` inside their bounds, activation blocks by bounds-checked index.
        unsafe {
            let mut acc = [_mm512_setzero_ps(); N];
            for (block, bytes) in row.chunks_exact(BLOCK_BYTES).enumerate() {
                let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
                    u16::from_le_bytes([bytes[208], bytes[209]]),
                ))));
                let unpacked = unpack(bytes);
                for j in 0..N {
                    let y = &ys[j][block];
                    let total = block_total(&unpacked, y);
                    acc[j] =
                        _mm512_fmadd_ps(_mm512_set1_ps(d * y.d), _mm512_cvtepi32_ps(total), acc[j]);
                }
            }
            let mut out = [0f32; N];
            for j in 0..N {
                out[j] = _mm512_reduce_add_ps(acc[j]);
            }
            out
        }
    }

    /// [`dot_tile`] in the eight-row kernel's float order (see `dot_tile_in_x8_order` above):
    /// the block's lanes added up as integers, then one FMA.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn dot_tile_in_x8_order<const N: usize>(
        row: &[u8],
        ys: [&[BlockQ8K]; N],
    ) -> [f32; N] {
        // SAFETY: as `dot_tile`; the store fills an eight-lane array.
        unsafe {
            if N == 1 {
                // One row, the same steps in scalars: the eight-lane sums cost a lone row more
                // than they save (see Q4_K's `dot_row_in_x8_order`).
                let mut acc = 0f32;
                for (bytes, y) in row.chunks_exact(BLOCK_BYTES).zip(ys[0]) {
                    let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
                        u16::from_le_bytes([bytes[208], bytes[209]]),
                    ))));
                    let total = _mm512_reduce_add_epi32(block_total(&unpack(bytes), y));
                    acc = (total as f32).mul_add(d * y.d, acc);
                }
                return std::array::from_fn(|_| acc);
            }
            // Lane j: activation row j's f32 sum (rows past N stay 0).
            let mut acc = _mm256_setzero_ps();
            for (block, bytes) in row.chunks_exact(BLOCK_BYTES).enumerate() {
                let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
                    u16::from_le_bytes([bytes[208], bytes[209]]),
                ))));
                let unpacked = unpack(bytes);
                let mut totals = [_mm256_setzero_si256(); 8];
                let mut scales = [0f32; 8];
                for j in 0..N {
                    let y = &ys[j][block];
                    let total = block_total(&unpacked, y);
                    totals[j] = _mm256_add_epi32(
                        _mm512_castsi512_si256(total),
                        _mm512_extracti64x4_epi64::<1>(total),
                    );
                    scales[j] = y.d;
                }
                // The same product and FMA as one row at a time, eight rows a register.
                let scale = _mm256_mul_ps(_mm256_set1_ps(d), _mm256_loadu_ps(scales.as_ptr()));
                let totals = _mm256_cvtepi32_ps(super::super::x86::sums_i32x8(totals));
                acc = _mm256_fmadd_ps(totals, scale, acc);
            }
            let mut out = [0f32; 8];
            _mm256_storeu_ps(out.as_mut_ptr(), acc);
            std::array::from_fn(|j| out[j])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::{check_format, random_activations, random_bytes};

    fn random_blocks(seed: u64, blocks: usize) -> Vec<u8> {
        let mut bytes = random_bytes(seed, blocks * BLOCK_BYTES);
        for (index, block) in bytes.chunks_exact_mut(BLOCK_BYTES).enumerate() {
            let d = f16::from_f32((index % 7 + 1) as f32 / 30_000.0);
            block[208..].copy_from_slice(&d.to_le_bytes());
        }
        bytes
    }

    /// Weights from the dequantization llama.cpp writes (`dequantize_row_q6_K`), dotted in f64
    /// with the quantized activations, equal the reference.
    #[test]
    fn the_reference_equals_llama_cpps_dequantization_dotted() {
        let weights = random_blocks(5, 3);
        let x = crate::kernels::q8k::quantized(&random_activations(6, 3 * QK_K));
        let mut expected = 0f64;
        for (bytes, y) in weights.chunks_exact(BLOCK_BYTES).zip(&x) {
            let b = block(bytes);
            let mut w = [0f32; QK_K];
            for n in 0..2 {
                let (ql, qh, sc) = (&b.ql[64 * n..], &b.qh[32 * n..], &b.scales[8 * n..]);
                for l in 0..32 {
                    let is = l / 16;
                    let q1 = ((ql[l] & 0xf) | ((qh[l] & 3) << 4)) as i32 - 32;
                    let q2 = ((ql[l + 32] & 0xf) | (((qh[l] >> 2) & 3) << 4)) as i32 - 32;
                    let q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) as i32 - 32;
                    let q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) as i32 - 32;
                    w[128 * n + l] = b.d * f32::from(sc[is]) * q1 as f32;
                    w[128 * n + l + 32] = b.d * f32::from(sc[is + 2]) * q2 as f32;
                    w[128 * n + l + 64] = b.d * f32::from(sc[is + 4]) * q3 as f32;
                    w[128 * n + l + 96] = b.d * f32::from(sc[is + 6]) * q4 as f32;
                }
            }
            for (w, &q) in w.iter().zip(&y.qs) {
                expected += f64::from(*w) * f64::from(y.d) * f64::from(q);
            }
        }
        let got = dot_reference(&weights, &x);
        assert!(
            (f64::from(got) - expected).abs() <= 1e-4 * expected.abs().max(1.0),
            "{got} vs {expected}"
        );
    }

    #[test]
    fn every_kernel_equals_the_reference_on_random_blocks() {
        #[cfg(target_arch = "x86_64")]
        let block_total = |isa: Isa, bytes: &[u8], y: &BlockQ8K| match isa {
            // SAFETY: `available()` lists AVX-512 only when the CPU has it.
            #[allow(unsafe_code)]
            Isa::Avx512 => Some(unsafe { avx512::block_total_scalar(bytes, y) }),
            // SAFETY: `available()` lists AVX2 only when the CPU has AVX2 and FMA.
            #[allow(unsafe_code)]
            Isa::Avx2 => Some(unsafe {
                let (sumi, summs) = avx2::block_sums_scalar(bytes, y);
                sumi - 32 * summs
            }),
            Isa::Portable => None,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let block_total = |_: Isa, _: &[u8], _: &BlockQ8K| None::<i32>;
        let reference = |bytes: &[u8], y: &BlockQ8K| {
            let (sumi, summs) = block_sums_reference(bytes, y);
            sumi - 32 * summs
        };
        check_format::<Q6K, _>(random_blocks, &block_total, &reference);
    }
}
