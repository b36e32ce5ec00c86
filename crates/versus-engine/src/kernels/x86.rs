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

/// The four i32 lanes of `v`, added up (for the exactness tests, and one row of Q4_K or Q5_K
/// in the eight-row kernel's order).
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

/// Lane `j` of the result: the eight i32 lanes of `v[j]` added up. Eight horizontal sums at the
/// price of about two: how the row kernels in an eight-row kernel's order bring each activation
/// row's block sums down to the integers that kernel adds into f32 (`dot_tile_in_x8_order`).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn sums_i32x8(v: [__m256i; 8]) -> __m256i {
    // Each `hadd` adds neighbouring lanes within 128-bit halves: after three rounds, half 0
    // holds the sums of v[0..4]'s low halves and half 1 of their high halves (likewise for
    // v[4..8]), and the last step adds the two halves.
    let pairs = [
        _mm256_hadd_epi32(v[0], v[1]),
        _mm256_hadd_epi32(v[2], v[3]),
        _mm256_hadd_epi32(v[4], v[5]),
        _mm256_hadd_epi32(v[6], v[7]),
    ];
    let first = _mm256_hadd_epi32(pairs[0], pairs[1]);
    let second = _mm256_hadd_epi32(pairs[2], pairs[3]);
    _mm256_add_epi32(
        _mm256_permute2x128_si256::<0x20>(first, second),
        _mm256_permute2x128_si256::<0x31>(first, second),
    )
}

/// Lane `j` of the result: the four i32 lanes of `v[j]` added up (see [`sums_i32x8`]).
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(super) fn sums_i32x4(v: [__m128i; 8]) -> __m256i {
    // v[j] in half 0 and v[j + 4] in half 1, then two rounds of `hadd`.
    let joined: [__m256i; 4] = std::array::from_fn(|j| _mm256_set_m128i(v[j + 4], v[j]));
    _mm256_hadd_epi32(
        _mm256_hadd_epi32(joined[0], joined[1]),
        _mm256_hadd_epi32(joined[2], joined[3]),
    )
}
