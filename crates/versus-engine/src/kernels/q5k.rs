//! Q5_K matrix x Q8_K activations (Q5_K_M files, and the Q5_K layers of mixed files).
//!
//! A Q5_K block (llama.cpp's `block_q5_K`, 176 bytes for 256 weights) is a Q4_K block with a
//! fifth bit: an f16 `d`, an f16 `dmin`, twelve bytes of packed 6-bit scales and minimums (the
//! Q4_K packing), 32 bytes `qh` of high bits, then 128 bytes of nibbles. Weight `64c + l`
//! (c < 4, l < 32) is the low nibble of `qs[32c + l]` plus 16 if bit 2c of `qh[l]` is set, and
//! weight `64c + 32 + l` the high nibble plus 16 if bit 2c+1 is; sub-block `2c` and `2c+1`.
//! Its dot product with a Q8_K block is the Q4_K one with q in 0..32.

use half::f16;

use super::q4k::scales_and_mins;
use super::q8k::{BlockQ8K, QK_K};
use super::Isa;

/// Bytes per Q5_K block.
pub const BLOCK_BYTES: usize = 176;

/// Weight `i`'s five-bit value (0..32) in a block.
fn value(bytes: &[u8], i: usize) -> u8 {
    let (qh, qs) = (&bytes[16..48], &bytes[48..176]);
    let (chunk, within) = (i / 64, i % 64);
    let (l, upper) = (within % 32, within >= 32);
    let nibble = if upper {
        qs[32 * chunk + l] >> 4
    } else {
        qs[32 * chunk + l] & 0x0f
    };
    let bit = 2 * chunk + usize::from(upper);
    nibble | (((qh[l] >> bit) & 1) << 4)
}

/// A block's two integer sums against a Q8_K block: `Σ_s scale[s]·Σ q·q8` and
/// `Σ_s min[s]·(bsum[2s] + bsum[2s+1])`. The reference every kernel is tested against.
pub fn block_sums_reference(bytes: &[u8], y: &BlockQ8K) -> (i32, i32) {
    let packed: &[u8; 12] = bytes[4..16].try_into().unwrap_or(&[0; 12]);
    let (scales, mins) = scales_and_mins(packed);
    let sumi = scales
        .iter()
        .enumerate()
        .map(|(s, &scale)| {
            let products: i32 = (32 * s..32 * s + 32)
                .map(|i| i32::from(value(bytes, i)) * i32::from(y.qs[i]))
                .sum();
            i32::from(scale) * products
        })
        .sum();
    let summs = (0..8)
        .map(|s| i32::from(mins[s]) * (i32::from(y.bsums[2 * s]) + i32::from(y.bsums[2 * s + 1])))
        .sum();
    (sumi, summs)
}

fn scales_of(bytes: &[u8]) -> (f32, f32) {
    (
        f16::from_le_bytes([bytes[0], bytes[1]]).to_f32(),
        f16::from_le_bytes([bytes[2], bytes[3]]).to_f32(),
    )
}

/// One row (its Q5_K bytes) dotted with a Q8_K row, by the scalar reference.
pub fn dot_reference(row: &[u8], ys: &[BlockQ8K]) -> f32 {
    row.chunks_exact(BLOCK_BYTES)
        .zip(ys)
        .map(|(bytes, y)| {
            let (d, dmin) = scales_of(bytes);
            let (sumi, summs) = block_sums_reference(bytes, y);
            d * y.d * sumi as f32 - dmin * y.d * summs as f32
        })
        .sum()
}

/// llama.cpp's Q5_K, multiplied with activations quantized to Q8_K.
pub struct Q5K;

impl super::Format for Q5K {
    type Activation = BlockQ8K;
    const BLOCK: usize = QK_K;
    const BLOCK_BYTES: usize = BLOCK_BYTES;

    fn activations(xs: &[f32]) -> Vec<BlockQ8K> {
        super::q8k::quantized(xs)
    }

    fn dot_reference(row: &[u8], ys: &[BlockQ8K]) -> f32 {
        dot_reference(row, ys)
    }

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
/// kernel Q5_K's interleaved copies go through (`q5k_x8`), where `isa` is AVX-512: what that
/// kernel gives for the row, bit for bit. Elsewhere, the reference.
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
    //! AVX2: the Q4_K kernel's nibbles with each byte's fifth bit ORed in from `qh` (a mask and
    //! 16-bit shifts that carry nothing across bytes, since the bit is isolated first).
    use std::arch::x86_64::*;

    use super::super::q4k::avx2_unpack_scales;
    use super::super::x86;
    use super::{BlockQ8K, BLOCK_BYTES};

    /// A block's weights unpacked: each chunk's low and high 32 weights, the scale of the
    /// sub-block each belongs to as i16 lanes, and the eight minimums as i16.
    struct Unpacked {
        low: [__m256i; 4],
        high: [__m256i; 4],
        scale_low: [__m256i; 4],
        scale_high: [__m256i; 4],
        mins: __m128i,
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn unpack(bytes: &[u8]) -> Unpacked {
        debug_assert_eq!(bytes.len(), BLOCK_BYTES);
        let packed: &[u8; 12] = bytes[4..16].try_into().unwrap_or(&[0; 12]);
        let p = bytes.as_ptr();
        // SAFETY: qh is at 16..48 and the nibbles at 48..176 of the 176-byte block; chunk < 4
        // keeps every 32-byte load inside them. The caller guarantees AVX2.
        unsafe {
            let scales_and_mins = avx2_unpack_scales(packed);
            let scales = _mm256_castsi256_si128(scales_and_mins);
            let scales = _mm256_set_m128i(scales, scales);
            let nibble = _mm256_set1_epi8(0x0f);
            let one = _mm256_set1_epi8(1);
            let qh = _mm256_loadu_si256(p.add(16) as *const __m256i);
            let zero = _mm256_setzero_si256();
            let mut unpacked = Unpacked {
                low: [zero; 4],
                high: [zero; 4],
                scale_low: [zero; 4],
                scale_high: [zero; 4],
                mins: _mm256_extracti128_si256(scales_and_mins, 1),
            };
            for chunk in 0..4 {
                let lane = (4 * chunk) as u8;
                unpacked.scale_low[chunk] = _mm256_shuffle_epi8(
                    scales,
                    _mm256_set1_epi16(i16::from_le_bytes([lane, lane + 1])),
                );
                unpacked.scale_high[chunk] = _mm256_shuffle_epi8(
                    scales,
                    _mm256_set1_epi16(i16::from_le_bytes([lane + 2, lane + 3])),
                );
                let bits = _mm256_loadu_si256(p.add(48 + 32 * chunk) as *const __m256i);
                // Bit 2·chunk (and the next) of each qh byte, as 16 in that byte.
                let shifted = _mm256_srl_epi16(qh, _mm_cvtsi32_si128(2 * chunk as i32));
                let fifth_low = _mm256_slli_epi16(_mm256_and_si256(shifted, one), 4);
                let fifth_high =
                    _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(shifted, 1), one), 4);
                unpacked.low[chunk] = _mm256_or_si256(_mm256_and_si256(bits, nibble), fifth_low);
                unpacked.high[chunk] = _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16(bits, 4), nibble),
                    fifth_high,
                );
            }
            unpacked
        }
    }

    /// The two integer sums of an unpacked block against a Q8_K block (see
    /// `block_sums_reference`), as eight and four i32 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn block_sums(x: &Unpacked, y: &BlockQ8K) -> (__m256i, __m128i) {
        let q8 = y.qs.as_ptr();
        // SAFETY: a Q8_K block has 256 bytes of q8 and 16 i16 bsums; chunk < 4 keeps every
        // 32-byte load inside them. The caller guarantees AVX2.
        unsafe {
            let mut sumi = _mm256_setzero_si256();
            for chunk in 0..4 {
                let q8_low = _mm256_loadu_si256(q8.add(64 * chunk) as *const __m256i);
                let q8_high = _mm256_loadu_si256(q8.add(64 * chunk + 32) as *const __m256i);
                // u8 (< 32) x i8 pairs into i16 (at most 2·31·128), then scaled into i32.
                let low = _mm256_madd_epi16(
                    x.scale_low[chunk],
                    _mm256_maddubs_epi16(x.low[chunk], q8_low),
                );
                let high = _mm256_madd_epi16(
                    x.scale_high[chunk],
                    _mm256_maddubs_epi16(x.high[chunk], q8_high),
                );
                sumi = _mm256_add_epi32(sumi, _mm256_add_epi32(low, high));
            }
            let bsums = _mm256_loadu_si256(y.bsums.as_ptr() as *const __m256i);
            let pair_sums = _mm_hadd_epi16(
                _mm256_castsi256_si128(bsums),
                _mm256_extracti128_si256(bsums, 1),
            );
            (sumi, _mm_madd_epi16(x.mins, pair_sums))
        }
    }

    /// `block_sums` added up, for the exactness tests.
    #[cfg(test)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block_sums_scalar(bytes: &[u8], y: &BlockQ8K) -> (i32, i32) {
        // SAFETY: the caller guarantees AVX2 and FMA, which the callees need.
        unsafe {
            let (sumi, summs) = block_sums(&unpack(bytes), y);
            (x86::sum_i32x8(sumi), x86::sum_i32x4(summs))
        }
    }

    /// One row dotted with `N` activation rows, as the Q4_K kernel does it.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_tile<const N: usize>(row: &[u8], ys: [&[BlockQ8K]; N]) -> [f32; N] {
        // SAFETY: the caller guarantees AVX2, FMA and F16C; blocks are read by `unpack` and
        // `block_sums` inside their bounds, activation blocks by bounds-checked index.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); N];
            let mut acc_mins = [_mm_setzero_ps(); N];
            for (block, bytes) in row.chunks_exact(BLOCK_BYTES).enumerate() {
                let head = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                let both = _mm_cvtph_ps(_mm_cvtsi32_si128(head));
                let (d, dmin) = (_mm_cvtss_f32(both), _mm_cvtss_f32(_mm_movehdup_ps(both)));
                let unpacked = unpack(bytes);
                for j in 0..N {
                    let y = &ys[j][block];
                    let (sumi, summs) = block_sums(&unpacked, y);
                    acc[j] =
                        _mm256_fmadd_ps(_mm256_set1_ps(d * y.d), _mm256_cvtepi32_ps(sumi), acc[j]);
                    acc_mins[j] =
                        _mm_fmadd_ps(_mm_set1_ps(dmin * y.d), _mm_cvtepi32_ps(summs), acc_mins[j]);
                }
            }
            let mut out = [0f32; N];
            for j in 0..N {
                out[j] = x86::sum_f32x8(acc[j]) - x86::sum_f32x4(acc_mins[j]);
            }
            out
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx512 {
    //! AVX-512 with VNNI: a chunk's 64 weights (its low and high nibbles, each with its fifth
    //! bit) in one register, built from one 32-byte load of nibbles and the block's `qh`, both
    //! broadcast to the two halves and shifted by a per-half count; `maddubs` then `dpwssd`
    //! (the sub-block scale and the i32 accumulation in one instruction). Half the AVX2
    //! kernel's instructions per activation row, which is what a batch pays for.
    use std::arch::x86_64::*;

    use super::super::q4k::{
        avx2_unpack_scales, avx512_dot_tile_by, avx512_dot_tile_in_x8_order_by,
        Avx512Unpacked as Unpacked,
    };
    use super::{BlockQ8K, BLOCK_BYTES};

    /// The 16-bit lanes of a register's high 256 bits.
    const HIGH_HALF: __mmask32 = 0xffff_0000;

    /// A block unpacked into Q4_K's form: chunk c's 64 weights in value order, the scale of
    /// the sub-block each pair of them belongs to as i16 lanes, and the eight minimums.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    unsafe fn unpack(bytes: &[u8]) -> Unpacked {
        debug_assert_eq!(bytes.len(), BLOCK_BYTES);
        let packed: &[u8; 12] = bytes[4..16].try_into().unwrap_or(&[0; 12]);
        let p = bytes.as_ptr();
        // SAFETY: qh is at 16..48 and the nibbles at 48..176 of the 176-byte block; chunk < 4
        // keeps every 32-byte load inside them. The caller guarantees the features.
        unsafe {
            let scales_and_mins = avx2_unpack_scales(packed);
            // The eight scales (i16) in each 128-bit lane, for in-lane byte shuffles.
            let scales = _mm512_broadcast_i32x4(_mm256_castsi256_si128(scales_and_mins));
            let nibble = _mm512_set1_epi8(0x0f);
            // qh in both halves, the high half moved down a bit: chunk c then finds its low
            // nibbles' fifth bit (2c) and its high nibbles' (2c + 1) both at bit 2c.
            let qh = _mm512_broadcast_i64x4(_mm256_loadu_si256(p.add(16) as *const __m256i));
            let qh = _mm512_mask_srli_epi16(qh, HIGH_HALF, qh, 1);
            let zero = _mm512_setzero_si512();
            let mut unpacked = Unpacked {
                q: [zero; 4],
                scales: [zero; 4],
                mins: _mm256_extracti128_si256(scales_and_mins, 1),
            };
            for chunk in 0..4 {
                let bits = _mm512_broadcast_i64x4(_mm256_loadu_si256(
                    p.add(48 + 32 * chunk) as *const __m256i
                ));
                let bits = _mm512_mask_srli_epi16(bits, HIGH_HALF, bits, 4);
                let nibbles = _mm512_and_si512(bits, nibble);
                // Bit 2c moved to bit 4; masked first, so the 16-bit shifts carry nothing
                // across bytes.
                let fifth = _mm512_and_si512(qh, _mm512_set1_epi8(1 << (2 * chunk)));
                let fifth = match chunk {
                    0 => _mm512_slli_epi16(fifth, 4),
                    1 => _mm512_slli_epi16(fifth, 2),
                    2 => fifth,
                    _ => _mm512_srli_epi16(fifth, 2),
                };
                unpacked.q[chunk] = _mm512_or_si512(nibbles, fifth);
                // Sub-block 2c's scale over the low half, 2c + 1's over the high half.
                let (low, high) = ((4 * chunk) as i8, (4 * chunk + 2) as i8);
                let spread = super::super::x86::i16_spread_index([low, low, high, high]);
                unpacked.scales[chunk] = _mm512_shuffle_epi8(scales, spread);
            }
            unpacked
        }
    }

    /// `block_sums` added up, for the exactness tests.
    #[cfg(test)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    pub(super) unsafe fn block_sums_scalar(bytes: &[u8], y: &BlockQ8K) -> (i32, i32) {
        // SAFETY: the caller guarantees the features the callees need.
        unsafe {
            let (sumi, summs) = super::super::q4k::avx512_block_sums(&unpack(bytes), y);
            (
                _mm512_reduce_add_epi32(sumi),
                super::super::x86::sum_i32x4(summs),
            )
        }
    }

    /// One row dotted with `N` activation rows: Q4_K's AVX-512 kernel with this unpacking
    /// (the block sums of a chunk are the same once its weights are bytes below 32).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn dot_tile<const N: usize>(row: &[u8], ys: [&[BlockQ8K]; N]) -> [f32; N] {
        // SAFETY: the caller guarantees the features; `unpack` gets whole blocks.
        unsafe { avx512_dot_tile_by(row, BLOCK_BYTES, ys, |bytes| unpack(bytes)) }
    }

    /// [`dot_tile`] in the eight-row kernel's float order (see Q4_K's
    /// `dot_tile_in_x8_order_by`).
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn dot_tile_in_x8_order<const N: usize>(
        row: &[u8],
        ys: [&[BlockQ8K]; N],
    ) -> [f32; N] {
        // SAFETY: the caller guarantees the features; `unpack` gets whole blocks.
        unsafe { avx512_dot_tile_in_x8_order_by(row, BLOCK_BYTES, ys, |bytes| unpack(bytes)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::{check_format, random_activations, random_bytes};

    fn random_blocks(seed: u64, blocks: usize) -> Vec<u8> {
        let mut bytes = random_bytes(seed, blocks * BLOCK_BYTES);
        for (index, block) in bytes.chunks_exact_mut(BLOCK_BYTES).enumerate() {
            let d = f16::from_f32((index % 5 + 1) as f32 / 40_000.0);
            let dmin = f16::from_f32((index % 3 + 1) as f32 / 90_000.0);
            block[..2].copy_from_slice(&d.to_le_bytes());
            block[2..4].copy_from_slice(&dmin.to_le_bytes());
        }
        bytes
    }

    /// llama.cpp's `dequantize_row_q5_K`, dotted in f64 with the quantized activations, equals
    /// the reference.
    #[test]
    fn the_reference_equals_llama_cpps_dequantization_dotted() {
        let weights = random_blocks(8, 3);
        let x = crate::kernels::q8k::quantized(&random_activations(9, 3 * QK_K));
        let mut expected = 0f64;
        for (bytes, y) in weights.chunks_exact(BLOCK_BYTES).zip(&x) {
            let (d, dmin) = scales_of(bytes);
            let packed: &[u8; 12] = bytes[4..16].try_into().expect("12 bytes");
            let (scales, mins) = scales_and_mins(packed);
            let (qh, mut ql) = (&bytes[16..48], &bytes[48..]);
            let mut w = Vec::with_capacity(QK_K);
            let (mut u1, mut u2) = (1u8, 2u8);
            for j in 0..4 {
                let (d1, m1) = (d * f32::from(scales[2 * j]), dmin * f32::from(mins[2 * j]));
                let (d2, m2) = (
                    d * f32::from(scales[2 * j + 1]),
                    dmin * f32::from(mins[2 * j + 1]),
                );
                for l in 0..32 {
                    let q = (ql[l] & 0xf) + if qh[l] & u1 != 0 { 16 } else { 0 };
                    w.push(d1 * f32::from(q) - m1);
                }
                for l in 0..32 {
                    let q = (ql[l] >> 4) + if qh[l] & u2 != 0 { 16 } else { 0 };
                    w.push(d2 * f32::from(q) - m2);
                }
                ql = &ql[32..];
                u1 <<= 2;
                u2 <<= 2;
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
        let block_sums = |isa: Isa, bytes: &[u8], y: &BlockQ8K| match isa {
            // SAFETY: `available()` lists AVX2 only when the CPU has AVX2 and FMA.
            #[allow(unsafe_code)]
            Isa::Avx2 => Some(unsafe { avx2::block_sums_scalar(bytes, y) }),
            // SAFETY: `available()` lists AVX-512 only with VNNI, AVX2 and FMA.
            #[allow(unsafe_code)]
            Isa::Avx512 => Some(unsafe { avx512::block_sums_scalar(bytes, y) }),
            _ => None,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let block_sums = |_: Isa, _: &[u8], _: &BlockQ8K| None::<(i32, i32)>;
        check_format::<Q5K, _>(random_blocks, &block_sums, &block_sums_reference);
    }
}
