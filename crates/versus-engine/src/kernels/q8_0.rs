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
                *q = super::q8k::nearest_int(x * multiplier) as i8;
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
            // An AVX-512 version (two blocks a register, dpbusd) read 30-40% fewer bytes a
            // second than this one for a single row on the development machine (Zen 5), and no
            // more for sixteen, so Q8_0 stays on AVX2.
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `available()` offers `Avx512` and `Avx2` only when the CPU has AVX2, FMA
            // and F16C; a short activation row panics at its bounds-checked index.
            #[allow(unsafe_code)]
            Isa::Avx512 | Isa::Avx2 => unsafe {
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
    unsafe fn block_sum(bytes: &[u8], y: &BlockQ8_0) -> __m256i {
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
            // SAFETY: `available()` lists AVX-512 and AVX2 only when the CPU has AVX2 and FMA.
            #[allow(unsafe_code)]
            Isa::Avx512 | Isa::Avx2 => Some(unsafe { avx2::block_sum_scalar(bytes, y) }),
            Isa::Portable => None,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let block_sum = |_: Isa, _: &[u8], _: &BlockQ8_0| None::<i32>;
        check_format::<Q8_0, _>(random_blocks, &block_sum, &block_sum_reference);
    }
}
