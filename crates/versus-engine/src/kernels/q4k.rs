//! Q4_K matrix x Q8_K vector: the decode step's dominant cost on Q4_K and Q4_K_M files.
//!
//! A Q4_K block (llama.cpp's `block_q4_K`, 144 bytes for 256 weights) holds an f16 scale `d`, an
//! f16 minimum scale `dmin`, twelve bytes packing eight 6-bit scales and eight 6-bit minimums
//! (one pair per 32 weights), and 128 bytes of 4-bit weights. Weight i of sub-block s is
//! `d·scale[s]·q - dmin·min[s]`, so its dot product with a Q8_K block is
//! `d·y.d·Σ_s scale[s]·Σ q·q8 - dmin·y.d·Σ_s min[s]·(bsum[2s] + bsum[2s+1])`: two integer sums per
//! block, then two multiplications.

use half::f16;

use super::q8k::{BlockQ8K, QK_K};
use super::Isa;

/// Bytes per Q4_K block.
pub const BLOCK_BYTES: usize = 144;

/// The six-bit scales and minimums of a block's eight sub-blocks, unpacked from its twelve
/// bytes as llama.cpp's `get_scale_min_k4` does.
pub fn scales_and_mins(packed: &[u8; 12]) -> ([u8; 8], [u8; 8]) {
    let mut scales = [0u8; 8];
    let mut mins = [0u8; 8];
    for j in 0..8 {
        if j < 4 {
            scales[j] = packed[j] & 63;
            mins[j] = packed[j + 4] & 63;
        } else {
            scales[j] = (packed[j + 4] & 0x0f) | ((packed[j - 4] >> 6) << 4);
            mins[j] = (packed[j + 4] >> 4) | ((packed[j] >> 6) << 4);
        }
    }
    (scales, mins)
}

/// A block's parts, read from its bytes.
struct Block<'a> {
    d: f32,
    dmin: f32,
    packed_scales: &'a [u8; 12],
    qs: &'a [u8; 128],
}

fn block(bytes: &[u8]) -> Block<'_> {
    let (head, rest) = bytes.split_at(4);
    let (packed_scales, qs) = rest.split_at(12);
    Block {
        d: f16::from_le_bytes([head[0], head[1]]).to_f32(),
        dmin: f16::from_le_bytes([head[2], head[3]]).to_f32(),
        packed_scales: packed_scales.try_into().unwrap_or(&[0; 12]),
        qs: qs[..128].try_into().unwrap_or(&[0; 128]),
    }
}

/// A block's two integer sums against a Q8_K block: `Σ_s scale[s]·Σ q·q8` and
/// `Σ_s min[s]·(bsum[2s] + bsum[2s+1])`. The reference every kernel is tested against.
pub fn block_sums_reference(bytes: &[u8], y: &BlockQ8K) -> (i32, i32) {
    let x = block(bytes);
    let (scales, mins) = scales_and_mins(x.packed_scales);
    let mut sumi = 0i32;
    for chunk in 0..4 {
        let q4 = &x.qs[32 * chunk..32 * chunk + 32];
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

/// One row (its Q4_K bytes) dotted with a Q8_K row, by the scalar reference.
pub fn dot_reference(row: &[u8], ys: &[BlockQ8K]) -> f32 {
    row.chunks_exact(BLOCK_BYTES)
        .zip(ys)
        .map(|(bytes, y)| {
            let x = block(bytes);
            let (sumi, summs) = block_sums_reference(bytes, y);
            x.d * y.d * sumi as f32 - x.dmin * y.d * summs as f32
        })
        .sum()
}

/// llama.cpp's Q4_K, multiplied with activations quantized to Q8_K.
pub struct Q4K;

impl super::Format for Q4K {
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

/// One row dotted with one to eight activation rows (`ys`) in the float order of `q4k_x8`'s
/// AVX-512 kernel (see `avx512::dot_tile_in_x8_order_by`), where `isa` is AVX-512: what that
/// kernel gives for the row, bit for bit. Elsewhere, the reference.
pub fn dot_tile_in_x8_order(isa: Isa, row: &[u8], ys: &[&[BlockQ8K]], out: &mut [f32]) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as `dot_tile`'s AVX-512 arm.
        #[allow(unsafe_code)]
        Isa::Avx512 => unsafe {
            super::dispatch_tile!(ys, out, |tile| avx512::dot_tile_in_x8_order_by(
                row,
                BLOCK_BYTES,
                tile,
                |bytes| avx512::unpack(bytes)
            ))
        },
        _ => {
            for (out, y) in out.iter_mut().zip(ys) {
                *out = dot_reference(row, y);
            }
        }
    }
}

/// The scale unpacking Q5_K shares (its blocks pack scales and minimums the same way).
#[cfg(target_arch = "x86_64")]
pub(super) use avx2::unpack_scales as avx2_unpack_scales;
/// Its block sums, for Q5_K's exactness tests.
#[cfg(all(target_arch = "x86_64", test))]
pub(super) use avx512::block_sums as avx512_block_sums;
/// The AVX-512 kernel Q5_K shares, with its own unpacking.
#[cfg(target_arch = "x86_64")]
pub(super) use avx512::{
    dot_tile_by as avx512_dot_tile_by, dot_tile_in_x8_order_by as avx512_dot_tile_in_x8_order_by,
    Unpacked as Avx512Unpacked,
};

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    //! AVX2: 32 weights' nibbles per load, `maddubs` for the byte products and `madd` to apply
    //! the sub-block scale and widen in one step, the minimums from the precomputed bsums.
    use std::arch::x86_64::*;

    use super::super::x86;
    use super::{BlockQ8K, BLOCK_BYTES};

    /// The block's eight scales (low 128 bits) and eight minimums (high 128 bits) as i16, from
    /// its twelve packed bytes: `scales_and_mins` done on four u32 at once, as llama.cpp does.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(in crate::kernels) unsafe fn unpack_scales(packed: &[u8; 12]) -> __m256i {
        const LOW6: u32 = 0x3f3f_3f3f;
        const LOW4: u32 = 0x0f0f_0f0f;
        const LOW2: u32 = 0x0303_0303;
        let word = |i: usize| {
            u32::from_le_bytes([
                packed[4 * i],
                packed[4 * i + 1],
                packed[4 * i + 2],
                packed[4 * i + 3],
            ])
        };
        let (w0, w1, w2) = (word(0), word(1), word(2));
        let scales_low = w0 & LOW6;
        let scales_high = (w2 & LOW4) | (((w0 >> 6) & LOW2) << 4);
        let mins_low = w1 & LOW6;
        let mins_high = ((w2 >> 4) & LOW4) | (((w1 >> 6) & LOW2) << 4);
        // SAFETY: register operations only; the caller guarantees AVX2.
        #[allow(unused_unsafe)]
        unsafe {
            _mm256_cvtepu8_epi16(_mm_set_epi32(
                mins_high as i32,
                mins_low as i32,
                scales_high as i32,
                scales_low as i32,
            ))
        }
    }

    /// A block's weights unpacked for its dot products: each 32-byte chunk's low and high
    /// nibbles, the scale of the sub-block each multiplies broadcast to i16 lanes, and the eight
    /// minimums as i16.
    pub(super) struct Unpacked {
        pub(super) low: [__m256i; 4],
        pub(super) high: [__m256i; 4],
        pub(super) scale_low: [__m256i; 4],
        pub(super) scale_high: [__m256i; 4],
        pub(super) mins: __m128i,
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    pub(super) unsafe fn unpack(bytes: &[u8]) -> Unpacked {
        debug_assert_eq!(bytes.len(), BLOCK_BYTES);
        let packed: &[u8; 12] = bytes[4..16].try_into().unwrap_or(&[0; 12]);
        let q4 = bytes[16..].as_ptr();
        // SAFETY: a block has 128 bytes of nibbles after its 16-byte head; chunk < 4 keeps every
        // 32-byte load inside them. The caller guarantees AVX2.
        unsafe {
            let scales_and_mins = unpack_scales(packed);
            let scales = _mm256_castsi256_si128(scales_and_mins);
            let scales = _mm256_set_m128i(scales, scales);
            let low_nibbles = _mm256_set1_epi8(0x0f);
            let zero = _mm256_setzero_si256();
            let mut unpacked = Unpacked {
                low: [zero; 4],
                high: [zero; 4],
                scale_low: [zero; 4],
                scale_high: [zero; 4],
                mins: _mm256_extracti128_si256(scales_and_mins, 1),
            };
            for chunk in 0..4 {
                // Sub-block 2·chunk's scale (i16 lane 2·chunk) in every lane, and the next.
                let lane = (4 * chunk) as u8;
                unpacked.scale_low[chunk] = _mm256_shuffle_epi8(
                    scales,
                    _mm256_set1_epi16(i16::from_le_bytes([lane, lane + 1])),
                );
                unpacked.scale_high[chunk] = _mm256_shuffle_epi8(
                    scales,
                    _mm256_set1_epi16(i16::from_le_bytes([lane + 2, lane + 3])),
                );
                let bits = _mm256_loadu_si256(q4.add(32 * chunk) as *const __m256i);
                unpacked.low[chunk] = _mm256_and_si256(bits, low_nibbles);
                unpacked.high[chunk] = _mm256_and_si256(_mm256_srli_epi16(bits, 4), low_nibbles);
            }
            unpacked
        }
    }

    /// The two integer sums of an unpacked block against a Q8_K block (see
    /// `block_sums_reference`), as eight i32 lanes to be added up for the first and four for
    /// the second.
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
                // u8 x i8 pairs into i16 (at most 2·15·128, no saturation), then times the
                // sub-block's scale and pairs into i32.
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

    /// A block's `d` and `dmin` (its first four bytes, two f16) as f32, by F16C.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn scales_f32(bytes: &[u8]) -> (f32, f32) {
        let head = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        // SAFETY: register operations only; the caller guarantees F16C.
        #[allow(unused_unsafe)]
        unsafe {
            let both = _mm_cvtph_ps(_mm_cvtsi32_si128(head));
            (_mm_cvtss_f32(both), _mm_cvtss_f32(_mm_movehdup_ps(both)))
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

    /// One row dotted with `N` activation rows: per block, the weights' nibbles and scales are
    /// unpacked once and multiplied with each activation in turn. For each activation, the eight
    /// lanes of each block's scaled sum accumulate in f32 (`d·y.d` per block), the minimums'
    /// four lanes likewise, added up once at the end: the same operations whatever `N` is.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_tile<const N: usize>(row: &[u8], ys: [&[BlockQ8K]; N]) -> [f32; N] {
        // SAFETY: the caller guarantees AVX2, FMA and F16C, and that every `ys[j]` has a block
        // for each of the row's blocks; the 32-byte loads stay inside a block's 128 bytes of
        // nibbles and a Q8_K block's 256 bytes of q8 and 16 i16 bsums.
        unsafe {
            let mut acc = [_mm256_setzero_ps(); N];
            let mut acc_mins = [_mm_setzero_ps(); N];
            for (block, bytes) in row.chunks_exact(BLOCK_BYTES).enumerate() {
                let (d, dmin) = scales_f32(bytes);
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
            // The minimums are subtracted: `acc_mins` holds +dmin·y.d·Σ min·bsum.
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
    //! AVX-512 with VNNI: a block's 256 weights as four 64-byte vectors, each holding one
    //! 32-byte chunk's low nibbles then its high nibbles, which meet 64 consecutive activation
    //! bytes in one load. `maddubs` multiplies them into i16 pairs and `dpwssd` applies the
    //! sub-block scales and accumulates in i32 in one instruction: three instructions per 64
    //! weights and activation, where AVX2 needs eight.
    use std::arch::x86_64::*;

    use super::super::x86;
    use super::{BlockQ8K, BLOCK_BYTES};

    /// A block's weights unpacked: the four 64-weight vectors, each one's pair of sub-block
    /// scales as i16 lanes (32 of each), and the eight minimums as i16. Q5_K's kernel unpacks
    /// its blocks into the same form and shares the rest ([`dot_tile_by`]).
    pub(in crate::kernels) struct Unpacked {
        pub(in crate::kernels) q: [__m512i; 4],
        pub(in crate::kernels) scales: [__m512i; 4],
        pub(in crate::kernels) mins: __m128i,
    }

    /// The AVX2 unpacking (all in registers), each chunk's two halves joined.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    pub(in crate::kernels) unsafe fn unpack(bytes: &[u8]) -> Unpacked {
        // SAFETY: the caller guarantees the features, AVX2's among them, and a whole block.
        unsafe {
            let halves = super::avx2::unpack(bytes);
            let zero = _mm512_setzero_si512();
            let mut unpacked = Unpacked {
                q: [zero; 4],
                scales: [zero; 4],
                mins: halves.mins,
            };
            for chunk in 0..4 {
                unpacked.q[chunk] = _mm512_inserti64x4(
                    _mm512_castsi256_si512(halves.low[chunk]),
                    halves.high[chunk],
                    1,
                );
                unpacked.scales[chunk] = _mm512_inserti64x4(
                    _mm512_castsi256_si512(halves.scale_low[chunk]),
                    halves.scale_high[chunk],
                    1,
                );
            }
            unpacked
        }
    }

    /// The two integer sums of an unpacked block against a Q8_K block (see
    /// `block_sums_reference`), as sixteen and four i32 lanes.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    pub(in crate::kernels) unsafe fn block_sums(x: &Unpacked, y: &BlockQ8K) -> (__m512i, __m128i) {
        let q8 = y.qs.as_ptr();
        // SAFETY: a Q8_K block has 256 bytes of q8 and 16 i16 bsums; chunk < 4 keeps every
        // 64-byte load inside them. The caller guarantees the features.
        unsafe {
            let mut sumi = _mm512_setzero_si512();
            for chunk in 0..4 {
                let a = _mm512_loadu_si512(q8.add(64 * chunk) as *const __m512i);
                // u8 (< 16, or < 32 for Q5_K) x i8 pairs into i16 (at most 2·31·128, no
                // saturation), then times the scale and into the i32 lanes.
                let pairs = _mm512_maddubs_epi16(x.q[chunk], a);
                sumi = _mm512_dpwssd_epi32(sumi, pairs, x.scales[chunk]);
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
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma")]
    pub(super) unsafe fn block_sums_scalar(bytes: &[u8], y: &BlockQ8K) -> (i32, i32) {
        // SAFETY: the caller guarantees the features the callees need.
        unsafe {
            let (sumi, summs) = block_sums(&unpack(bytes), y);
            (_mm512_reduce_add_epi32(sumi), x86::sum_i32x4(summs))
        }
    }

    /// One row dotted with `N` activation rows: the same operations for each whatever `N` is.
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(super) unsafe fn dot_tile<const N: usize>(row: &[u8], ys: [&[BlockQ8K]; N]) -> [f32; N] {
        // SAFETY: the caller guarantees the features; `unpack` gets whole blocks.
        unsafe { dot_tile_by(row, BLOCK_BYTES, ys, |bytes| unpack(bytes)) }
    }

    /// [`dot_tile`] for any block of `block_bytes` that starts with Q4_K's f16 `d` and `dmin`
    /// and that `unpack` turns into [`Unpacked`] (Q4_K's, Q5_K's).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(in crate::kernels) unsafe fn dot_tile_by<const N: usize>(
        row: &[u8],
        block_bytes: usize,
        ys: [&[BlockQ8K]; N],
        unpack: impl Fn(&[u8]) -> Unpacked,
    ) -> [f32; N] {
        // SAFETY: the caller guarantees the features; blocks are read by `unpack` and
        // `block_sums` inside their bounds, activation blocks by bounds-checked index.
        unsafe {
            let mut acc = [_mm512_setzero_ps(); N];
            let mut acc_mins = [_mm_setzero_ps(); N];
            for (block, bytes) in row.chunks_exact(block_bytes).enumerate() {
                let head = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                let both = _mm_cvtph_ps(_mm_cvtsi32_si128(head));
                let (d, dmin) = (_mm_cvtss_f32(both), _mm_cvtss_f32(_mm_movehdup_ps(both)));
                let unpacked = unpack(bytes);
                for j in 0..N {
                    let y = &ys[j][block];
                    let (sumi, summs) = block_sums(&unpacked, y);
                    acc[j] =
                        _mm512_fmadd_ps(_mm512_set1_ps(d * y.d), _mm512_cvtepi32_ps(sumi), acc[j]);
                    acc_mins[j] =
                        _mm_fmadd_ps(_mm_set1_ps(dmin * y.d), _mm_cvtepi32_ps(summs), acc_mins[j]);
                }
            }
            let mut out = [0f32; N];
            for j in 0..N {
                out[j] = _mm512_reduce_add_ps(acc[j]) - x86::sum_f32x4(acc_mins[j]);
            }
            out
        }
    }

    /// [`dot_tile_by`] with the float arithmetic of `q4k_x8`'s AVX-512 kernel, so that a
    /// matrix read as stored gives, bit for bit, what the eight-row kernel gives on its
    /// interleaved copy (while the background thread makes it). That kernel keeps, per row,
    /// three f32 sums: of the low sub-blocks' integer sums (`sumi`'s lanes 0-7 here), of the
    /// high ones' (lanes 8-15) and of the minimums' sums, each block's integer times
    /// `d · y.d` (or `dmin · y.d`) added by one FMA in block order, and the result is
    /// `(low + high) - minimums`. The integers are the same whoever adds them up, so the
    /// same steps on them give the same floats. The tile's rows take one lane each of three
    /// registers, their integers brought down eight at a time (`x86::sums_i32x8`): against
    /// one row after another, a decode step's five projections as stored took 74-87 ms for
    /// eight rows and 143-167 for sixteen, against 90-98 and 187 (kernels bench, interleaved
    /// runs; the host was noisy).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    pub(in crate::kernels) unsafe fn dot_tile_in_x8_order_by<const N: usize>(
        row: &[u8],
        block_bytes: usize,
        ys: [&[BlockQ8K]; N],
        unpack: impl Fn(&[u8]) -> Unpacked,
    ) -> [f32; N] {
        // SAFETY: as `dot_tile_by`; the stores fill eight-lane arrays.
        unsafe {
            if N == 1 {
                let alone = dot_row_in_x8_order(row, block_bytes, ys[0], &unpack);
                return std::array::from_fn(|_| alone);
            }
            // Lane j of each: activation row j's f32 sum (rows past N stay 0).
            let (mut acc_low, mut acc_high, mut acc_mins) = (
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
                _mm256_setzero_ps(),
            );
            for (block, bytes) in row.chunks_exact(block_bytes).enumerate() {
                let head = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                let both = _mm_cvtph_ps(_mm_cvtsi32_si128(head));
                let (d, dmin) = (_mm_cvtss_f32(both), _mm_cvtss_f32(_mm_movehdup_ps(both)));
                let unpacked = unpack(bytes);
                let mut low = [_mm256_setzero_si256(); 8];
                let mut high = [_mm256_setzero_si256(); 8];
                let mut mins = [_mm_setzero_si128(); 8];
                let mut scales = [0f32; 8];
                for j in 0..N {
                    let y = &ys[j][block];
                    let (sumi, summs) = block_sums(&unpacked, y);
                    low[j] = _mm512_castsi512_si256(sumi);
                    high[j] = _mm512_extracti64x4_epi64::<1>(sumi);
                    mins[j] = summs;
                    scales[j] = y.d;
                }
                // The same products and FMAs as one row at a time, eight rows a register.
                let y_d = _mm256_loadu_ps(scales.as_ptr());
                let (scale, min_scale) = (
                    _mm256_mul_ps(_mm256_set1_ps(d), y_d),
                    _mm256_mul_ps(_mm256_set1_ps(dmin), y_d),
                );
                acc_low = _mm256_fmadd_ps(_mm256_cvtepi32_ps(x86::sums_i32x8(low)), scale, acc_low);
                acc_high =
                    _mm256_fmadd_ps(_mm256_cvtepi32_ps(x86::sums_i32x8(high)), scale, acc_high);
                acc_mins = _mm256_fmadd_ps(
                    _mm256_cvtepi32_ps(x86::sums_i32x4(mins)),
                    min_scale,
                    acc_mins,
                );
            }
            let mut out = [0f32; 8];
            _mm256_storeu_ps(
                out.as_mut_ptr(),
                _mm256_sub_ps(_mm256_add_ps(acc_low, acc_high), acc_mins),
            );
            std::array::from_fn(|j| out[j])
        }
    }

    /// [`dot_tile_in_x8_order_by`] for one activation row, the same steps in scalars: the
    /// eight-lane sums cost a lone row more than they save (kernels bench, Q4_K as stored at one
    /// row: 22.1-24.0 ms a step against 17.3-20.8 this way).
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")]
    unsafe fn dot_row_in_x8_order(
        row: &[u8],
        block_bytes: usize,
        ys: &[BlockQ8K],
        unpack: &impl Fn(&[u8]) -> Unpacked,
    ) -> f32 {
        // SAFETY: as `dot_tile_by`.
        unsafe {
            let (mut sum_low, mut sum_high, mut sum_mins) = (0f32, 0f32, 0f32);
            for (bytes, y) in row.chunks_exact(block_bytes).zip(ys) {
                let head = i32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                let both = _mm_cvtph_ps(_mm_cvtsi32_si128(head));
                let (d, dmin) = (_mm_cvtss_f32(both), _mm_cvtss_f32(_mm_movehdup_ps(both)));
                let (sumi, summs) = block_sums(&unpack(bytes), y);
                let low = _mm512_mask_reduce_add_epi32(0x00ff, sumi);
                let high = _mm512_mask_reduce_add_epi32(0xff00, sumi);
                let mins = x86::sum_i32x4(summs);
                sum_low = (low as f32).mul_add(d * y.d, sum_low);
                sum_high = (high as f32).mul_add(d * y.d, sum_high);
                sum_mins = (mins as f32).mul_add(dmin * y.d, sum_mins);
            }
            (sum_low + sum_high) - sum_mins
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::q8k::quantized;
    use crate::kernels::tests::check_format;

    /// Random Q4_K blocks: every byte random except the two f16 scales, kept finite and small.
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
            let dmin = f16::from_f32((next() % 1000) as f32 / 100_000.0);
            bytes.extend_from_slice(&d.to_le_bytes());
            bytes.extend_from_slice(&dmin.to_le_bytes());
            bytes.extend((0..140).map(|_| next() as u8));
        }
        bytes
    }

    fn random_activations(seed: u64, len: usize) -> Vec<f32> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 8.0
            })
            .collect()
    }

    #[test]
    fn unpacked_scales_match_llama_cpp_layout() {
        // Sub-blocks 0-3 take the low six bits of bytes 0-3 (scales) and 4-7 (mins); 4-7 take a
        // nibble of bytes 8-11 and the top two bits of bytes 0-3 (scales) or 4-7 (mins).
        let packed = [
            0b11_000001,
            2,
            3,
            4,
            0b01_000101,
            6,
            7,
            8,
            0x9a,
            0xbc,
            0xde,
            0xf0,
        ];
        let (scales, mins) = scales_and_mins(&packed);
        assert_eq!(scales, [1, 2, 3, 4, 0x0a | (3 << 4), 0x0c, 0x0e, 0x00]);
        assert_eq!(mins, [5, 6, 7, 8, 0x09 | (1 << 4), 0x0b, 0x0d, 0x0f]);
    }

    #[test]
    fn the_reference_equals_dequantize_then_dot_on_the_quantized_activations() {
        let weights = random_blocks(7, 4);
        let x = quantized(&random_activations(3, 4 * QK_K));
        let mut expected = 0f64;
        for (bytes, y) in weights.chunks_exact(BLOCK_BYTES).zip(&x) {
            let b = block(bytes);
            let (scales, mins) = scales_and_mins(b.packed_scales);
            for i in 0..QK_K {
                let (chunk, within) = (i / 64, i % 64);
                let sub = 2 * chunk + usize::from(within >= 32);
                let byte = b.qs[32 * chunk + within % 32];
                let q = if within < 32 { byte & 0x0f } else { byte >> 4 };
                let w = f64::from(b.d) * f64::from(scales[sub]) * f64::from(q)
                    - f64::from(b.dmin) * f64::from(mins[sub]);
                expected += w * f64::from(y.d) * f64::from(y.qs[i]);
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
            // SAFETY: `available()` lists AVX-512 only when the CPU has it.
            #[allow(unsafe_code)]
            Isa::Avx512 => Some(unsafe { avx512::block_sums_scalar(bytes, y) }),
            // SAFETY: `available()` lists AVX2 only when the CPU has it.
            #[allow(unsafe_code)]
            Isa::Avx2 => Some(unsafe { avx2::block_sums_scalar(bytes, y) }),
            Isa::Portable => None,
        };
        #[cfg(not(target_arch = "x86_64"))]
        let block_sums = |_: Isa, _: &[u8], _: &BlockQ8K| None::<(i32, i32)>;
        check_format::<Q4K, _>(random_blocks, &block_sums, &block_sums_reference);
    }
}
