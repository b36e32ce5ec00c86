//! Q8_0 matrix x Q8_0 vector. A Q8_0 block (llama.cpp's `block_q8_0`, 34 bytes) is an f16 scale
//! and 32 signed bytes; the activation row is quantized to the same blocks as llama.cpp's x86
//! `quantize_row_q8_0` does (the scale maps the largest magnitude to 127 and is stored as f16;
//! values are multiplied by 127/max and rounded half to even, as its AVX2 code rounds), so a
//! block's dot product is one integer sum times two scales.

use half::f16;

use super::Isa;

/// Values per Q8_0 block.
pub const QK8_0: usize = 32;

/// Bytes per Q8_0 block.
pub const BLOCK_BYTES: usize = 34;

/// One block of a Q8_0 activation row.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockQ8_0 {
    /// The scale, rounded to f16 as llama.cpp stores it, then widened.
    pub d: f32,
    pub qs: [i8; QK8_0],
}

/// `xs` (a multiple of 32 long) quantized as llama.cpp's x86 `quantize_row_q8_0` (its AVX2
/// path, which is what it runs on the machines versus is compared on: `127/max` as the
/// multiplier and round half to even, where the scalar reference divides by `max/127` and
/// rounds half away from zero).
pub fn quantized(xs: &[f32]) -> Vec<BlockQ8_0> {
    xs.chunks_exact(QK8_0)
        .map(|xs| {
            let amax = xs.iter().fold(0f32, |m, x| m.max(x.abs()));
            let d = amax / 127.0;
            let multiplier = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            let mut qs = [0i8; QK8_0];
            for (q, &x) in qs.iter_mut().zip(xs) {
                *q = (x * multiplier).round_ties_even() as i8;
            }
            BlockQ8_0 {
                d: f16::from_f32(d).to_f32(),
                qs,
            }
        })
        .collect()
}

/// A weight block's integer sum against an activation block: the reference kernels match.
pub fn block_sum_reference(bytes: &[u8], y: &BlockQ8_0) -> i32 {
    bytes[2..BLOCK_BYTES]
        .iter()
        .zip(&y.qs)
        .map(|(&w, &a)| i32::from(w as i8) * i32::from(a))
        .sum()
}

/// One row dotted with a Q8_0 row, by the scalar reference.
pub fn dot_reference(row: &[u8], ys: &[BlockQ8_0]) -> f32 {
    row.chunks_exact(BLOCK_BYTES)
        .zip(ys)
        .map(|(bytes, y)| {
            let d = f16::from_le_bytes([bytes[0], bytes[1]]).to_f32();
            d * y.d * block_sum_reference(bytes, y) as f32
        })
        .sum()
}

/// llama.cpp's Q8_0, multiplied with activations quantized to Q8_0.
pub struct Q8_0;

impl super::Format for Q8_0 {
    type Activation = BlockQ8_0;
    const BLOCK: usize = QK8_0;
    const BLOCK_BYTES: usize = BLOCK_BYTES;

    fn activations(xs: &[f32]) -> Vec<BlockQ8_0> {
        quantized(xs)
    }

    fn dot_reference(row: &[u8], ys: &[BlockQ8_0]) -> f32 {
        dot_reference(row, ys)
    }

    fn dot_tile(isa: Isa, row: &[u8], ys: &[&[BlockQ8_0]], out: &mut [f32]) {
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

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    //! AVX2: `maddubs` multiplies unsigned by signed bytes, so the weights' signs move onto the
    //! activations (`sign`) and their magnitudes are multiplied; `madd` by ones widens to i32.
    use std::arch::x86_64::*;

    use super::super::x86;
    use super::{BlockQ8_0, BLOCK_BYTES};

    /// A block's integer sum, as eight i32 lanes.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block_sum(bytes: &[u8], y: &BlockQ8_0) -> __m256i {
        debug_assert_eq!(bytes.len(), BLOCK_BYTES);
        // SAFETY: 32 bytes of weights follow the 2-byte scale, and `qs` is 32 bytes; the caller
        // guarantees AVX2.
        unsafe {
            let w = _mm256_loadu_si256(bytes.as_ptr().add(2) as *const __m256i);
            let a = _mm256_loadu_si256(y.qs.as_ptr() as *const __m256i);
            // |w| · (a with w's sign): each product as before, no product of -128 · -128
            // (|−128| is 128 as u8, and a is at most 127 in magnitude).
            let pairs = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(a, w));
            _mm256_madd_epi16(pairs, _mm256_set1_epi16(1))
        }
    }

    #[cfg(test)]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn block_sum_scalar(bytes: &[u8], y: &BlockQ8_0) -> i32 {
        // SAFETY: the caller guarantees AVX2.
        unsafe { x86::sum_i32x8(block_sum(bytes, y)) }
    }

    /// One row dotted with `N` activation rows, each block's weights loaded once; for each
    /// activation, each block's eight lanes are scaled and accumulated in f32, the same
    /// operations whatever `N` is.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_tile<const N: usize>(row: &[u8], ys: [&[BlockQ8_0]; N]) -> [f32; N] {
        // SAFETY: the caller guarantees AVX2, FMA and F16C and a block in each `ys[j]` for each
        // of the row's blocks; memory is read only by `block_sum`, inside each block.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); N];
            for (block, bytes) in row.chunks_exact(BLOCK_BYTES).enumerate() {
                let d = _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(i32::from(
                    u16::from_le_bytes([bytes[0], bytes[1]]),
                ))));
                for j in 0..N {
                    let y = &ys[j][block];
                    acc[j] = _mm256_fmadd_ps(
                        _mm256_set1_ps(d * y.d),
                        _mm256_cvtepi32_ps(block_sum(bytes, y)),
                        acc[j],
                    );
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
    //! AVX-512 with VNNI: two blocks (64 weights) a register. The weights' magnitudes and signs
    //! are taken once per pair; for each activation the signs move onto its bytes (a masked
    //! negation) and `dpbusd` multiplies and sums four products into each i32 lane, lanes 0-7
    //! for the first block and 8-15 for the second. An odd last block takes the AVX2 path.
    use std::arch::x86_64::*;

    use super::super::x86;
    use super::{BlockQ8_0, BLOCK_BYTES};

    /// Two blocks' weights: their magnitudes (u8), and which are negative.
    pub(super) struct Pair {
        magnitudes: __m512i,
        negative: __mmask64,
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    pub(super) unsafe fn unpack(first: &[u8], second: &[u8]) -> Pair {
        debug_assert!(first.len() == BLOCK_BYTES && second.len() == BLOCK_BYTES);
        // SAFETY: each block has 32 bytes of weights after its 2-byte scale. The caller
        // guarantees the features.
        unsafe {
            let w = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256(first.as_ptr().add(2) as *const __m256i)),
                _mm256_loadu_si256(second.as_ptr().add(2) as *const __m256i),
                1,
            );
            Pair {
                // |−128| is 128 as u8, and an activation is at most 127 in magnitude.
                magnitudes: _mm512_abs_epi8(w),
                negative: _mm512_movepi8_mask(w),
            }
        }
    }

    /// The two blocks' integer sums against two activation blocks, as sixteen i32 lanes.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    pub(super) unsafe fn pair_sums(w: &Pair, first: &BlockQ8_0, second: &BlockQ8_0) -> __m512i {
        // SAFETY: each activation block has 32 bytes of qs. The caller guarantees the features.
        unsafe {
            let a = _mm512_inserti64x4(
                _mm512_castsi256_si512(_mm256_loadu_si256(first.qs.as_ptr() as *const __m256i)),
                _mm256_loadu_si256(second.qs.as_ptr() as *const __m256i),
                1,
            );
            let signed = _mm512_mask_sub_epi8(a, w.negative, _mm512_setzero_si512(), a);
            _mm512_dpbusd_epi32(_mm512_setzero_si512(), w.magnitudes, signed)
        }
    }

    /// The first block's sum from the pair path (the block paired with itself), for the
    /// exactness tests.
    #[cfg(test)]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    pub(super) unsafe fn block_sum_scalar(bytes: &[u8], y: &BlockQ8_0) -> i32 {
        // SAFETY: the caller guarantees the features the callees need.
        unsafe {
            let sums = pair_sums(&unpack(bytes, bytes), y, y);
            x86::sum_i32x8(_mm512_castsi512_si256(sums))
        }
    }

    fn scale(bytes: &[u8]) -> f32 {
        half::f16::from_le_bytes([bytes[0], bytes[1]]).to_f32()
    }

    /// One row dotted with `N` activation rows: the same operations for each whatever `N` is.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn dot_tile<const N: usize>(row: &[u8], ys: [&[BlockQ8_0]; N]) -> [f32; N] {
        // SAFETY: the caller guarantees the features; weight blocks are read inside their
        // bounds, activation blocks by bounds-checked index.
        unsafe {
            let mut acc = [_mm512_setzero_ps(); N];
            let mut tail = [_mm256_setzero_ps(); N];
            let mut pairs = row.chunks_exact(2 * BLOCK_BYTES);
            for (index, pair) in pairs.by_ref().enumerate() {
                let (first, second) = pair.split_at(BLOCK_BYTES);
                let (d0, d1) = (scale(first), scale(second));
                let w = unpack(first, second);
                for j in 0..N {
                    let (y0, y1) = (&ys[j][2 * index], &ys[j][2 * index + 1]);
                    let scales = _mm512_castpd_ps(_mm512_insertf64x4(
                        _mm512_castps_pd(_mm512_set1_ps(d0 * y0.d)),
                        _mm256_castps_pd(_mm256_set1_ps(d1 * y1.d)),
                        1,
                    ));
                    let sums = pair_sums(&w, y0, y1);
                    acc[j] = _mm512_fmadd_ps(scales, _mm512_cvtepi32_ps(sums), acc[j]);
                }
            }
            let last = pairs.remainder();
            if !last.is_empty() {
                let block = row.len() / BLOCK_BYTES - 1;
                let d = scale(last);
                for j in 0..N {
                    let y = &ys[j][block];
                    let sums = super::avx2::block_sum(last, y);
                    tail[j] =
                        _mm256_fmadd_ps(_mm256_set1_ps(d * y.d), _mm256_cvtepi32_ps(sums), tail[j]);
                }
            }
            let mut out = [0f32; N];
            for j in 0..N {
                out[j] = _mm512_reduce_add_ps(acc[j]) + x86::sum_f32x8(tail[j]);
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::tests::check_format;

    fn random_blocks(seed: u64, blocks: usize) -> Vec<u8> {
        let mut state = seed | 1;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut bytes = Vec::with_capacity(blocks * BLOCK_BYTES);
        for _ in 0..blocks {
            let d = f16::from_f32((next() % 1000) as f32 / 50_000.0);
            bytes.extend_from_slice(&d.to_le_bytes());
            // Every byte value, -128 included.
            bytes.extend((0..32).map(|_| next() as u8));
        }
        bytes
    }

    #[test]
    fn activations_quantize_as_llama_cpp_does() {
        let mut xs = vec![0f32; QK8_0];
        xs[0] = -2.54;
        xs[1] = 0.004;
        xs[2] = 0.635;
        let block = quantized(&xs)[0];
        assert_eq!(block.qs[0], -127);
        assert_eq!(block.qs[1], 0);
        assert_eq!(block.qs[2], 32, "0.635 / (2.54 / 127) = 31.75 rounds to 32");
        assert_eq!(
            block.d,
            f16::from_f32(2.54 / 127.0).to_f32(),
            "the scale is an f16"
        );
        assert!(quantized(&[0.0; QK8_0])[0].qs.iter().all(|q| *q == 0));
    }

    #[test]
    fn every_kernel_equals_the_reference_on_random_blocks() {
        #[cfg(target_arch = "x86_64")]
        let block_sum = |isa: Isa, bytes: &[u8], y: &BlockQ8_0| match isa {
            // SAFETY: `available()` lists AVX-512 only when the CPU has it.
            #[allow(unsafe_code)]
            Isa::Avx512 => Some(unsafe { avx512::block_sum_scalar(bytes, y) }),
            // SAFETY: `available()` lists AVX2 only when the CPU has AVX2 and FMA.
            #[allow(unsafe_code)]
            Isa::Avx2 => Some(unsafe { avx2::block_sum_scalar(bytes, y) }),
            Isa::Portable => None,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let block_sum = |_: Isa, _: &[u8], _: &BlockQ8_0| None::<i32>;
        check_format::<Q8_0, _>(random_blocks, &block_sum, &block_sum_reference);
    }
}
