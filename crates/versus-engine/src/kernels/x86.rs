//! Horizontal sums of AVX2 registers and the L2 prefetch, shared by the x86 kernels.
#![allow(unsafe_code)]

use std::arch::x86_64::*;

/// Asks for the `len` bytes from `start` to be brought into L2 (`prefetcht1`), one prefetch
/// per 64-byte line. Any address will do: a prefetch reads nothing and never faults, and
/// `wrapping_add` keeps the arithmetic defined past an allocation's end. Into L2, not L1: see
/// `q4k_x8`'s `PREFETCH_BLOCKS`.
#[inline(always)]
pub(super) fn prefetch_l2(start: *const u8, len: usize) {
    for offset in (0..len).step_by(64) {
        // SAFETY: as above; SSE, which `prefetcht1` needs, is part of x86_64.
        unsafe { _mm_prefetch::<_MM_HINT_T1>(start.wrapping_add(offset) as *const i8) };
    }
}

/// A `vpshufb` index that fills 128-bit lane q of a register with copies of the i16 at byte
/// `bytes[q]` of the shuffled register's lane: how the Q5_K and Q6_K kernels spread a block's
/// sub-block scales (i16, eight to a lane) over the products they scale.
#[inline]
#[target_feature(enable = "avx512f")]
pub(super) fn i16_spread_index(bytes: [i8; 4]) -> __m512i {
    let pair = |byte: i8| {
        let lane = i32::from(byte as u8) | (i32::from(byte as u8 + 1) << 8);
        lane | (lane << 16)
    };
    let [a, b, c, d] = bytes.map(pair);
    _mm512_set_epi32(d, d, d, d, c, c, c, c, b, b, b, b, a, a, a, a)
}

/// The eight f32 lanes of `v`, added up.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn sum_f32x8(v: __m256) -> f32 {
    // SAFETY: register operations only; the caller guarantees AVX2. (The block is needed by
    // compilers before 1.86, which treat every intrinsic as unsafe.)
    #[allow(unused_unsafe)]
    unsafe {
        sum_f32x4(_mm_add_ps(
            _mm256_castps256_ps128(v),
            _mm256_extractf128_ps(v, 1),
        ))
    }
}

/// The four f32 lanes of `v`, added up.
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn sum_f32x4(v: __m128) -> f32 {
    // SAFETY: as `sum_f32x8`.
    #[allow(unused_unsafe)]
    unsafe {
        let v = _mm_add_ps(v, _mm_movehl_ps(v, v));
        let v = _mm_add_ss(v, _mm_movehdup_ps(v));
        _mm_cvtss_f32(v)
    }
}

/// The eight i32 lanes of `v`, added up (for the kernels' exactness tests).
#[cfg(test)]
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn sum_i32x8(v: __m256i) -> i32 {
    // SAFETY: as `sum_f32x8`.
    #[allow(unused_unsafe)]
    unsafe {
        sum_i32x4(_mm_add_epi32(
            _mm256_castsi256_si128(v),
            _mm256_extracti128_si256(v, 1),
        ))
    }
}

/// The four i32 lanes of `v`, added up (for the exactness tests, and the Q4_K and Q5_K row
/// kernels in the eight-row kernel's order).
#[target_feature(enable = "avx2,fma")]
pub(super) unsafe fn sum_i32x4(v: __m128i) -> i32 {
    // SAFETY: as `sum_f32x8`.
    #[allow(unused_unsafe)]
    unsafe {
        let v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0b01_00_11_10));
        let v = _mm_add_epi32(v, _mm_shuffle_epi32(v, 0b10_11_00_01));
        _mm_cvtsi128_si32(v)
    }
}
