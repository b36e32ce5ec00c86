//! Q8_K: the form llama.cpp quantizes an activation row to before a dot product with a K-quant
//! matrix (blocks of 256: one f32 scale, 256 signed bytes, and the sums of each 16 of them).

/// Values per K-quant block.
pub const QK_K: usize = 256;

/// One block of a Q8_K row, laid out as llama.cpp's `block_q8_K`.
#[derive(Debug, Clone, Copy, PartialEq)]
#[repr(C)]
pub struct BlockQ8K {
    pub d: f32,
    pub qs: [i8; QK_K],
    /// The sum of each 16 consecutive `qs`, which the K-quants' minimums multiply.
    pub bsums: [i16; QK_K / 16],
}

impl Default for BlockQ8K {
    fn default() -> BlockQ8K {
        BlockQ8K {
            d: 0.0,
            qs: [0; QK_K],
            bsums: [0; QK_K / 16],
        }
    }
}

/// Quantizes `xs` (a multiple of 256 long) into `out`, as llama.cpp's `quantize_row_q8_K_ref`:
/// the scale maps the value of largest magnitude to -127, and every value is rounded half to
/// even (its `nearest_int`), so that the same activations give the same bytes in both engines.
pub fn quantize_row(xs: &[f32], out: &mut [BlockQ8K]) {
    debug_assert_eq!(xs.len(), out.len() * QK_K);
    for (block, xs) in out.iter_mut().zip(xs.chunks_exact(QK_K)) {
        let mut max = 0f32;
        let mut amax = 0f32;
        for &x in xs {
            if x.abs() > amax {
                amax = x.abs();
                max = x;
            }
        }
        if amax == 0.0 {
            *block = BlockQ8K::default();
            continue;
        }
        let iscale = -127.0 / max;
        for (q, &x) in block.qs.iter_mut().zip(xs) {
            *q = nearest_int(iscale * x).min(127) as i8;
        }
        for (sum, qs) in block.bsums.iter_mut().zip(block.qs.chunks_exact(16)) {
            *sum = qs.iter().map(|&q| i16::from(q)).sum();
        }
        block.d = 1.0 / iscale;
    }
}

/// `value` rounded half to even, for |value| < 2²²: llama.cpp's `nearest_int`. Adding 1.5 · 2²³
/// leaves the rounded integer in the low mantissa bits. Why not `round_ties_even`: without
/// SSE4.1 in the build's baseline it is a call to libm's `rintf` per value, which was 5% of a
/// Q4_K prefill; this is two adds and a mask, and vectorizes.
#[inline]
pub fn nearest_int(value: f32) -> i32 {
    let shifted = value + 12_582_912.0;
    (shifted.to_bits() & 0x007f_ffff) as i32 - 0x0040_0000
}

/// `xs` quantized into a new row of blocks.
pub fn quantized(xs: &[f32]) -> Vec<BlockQ8K> {
    let mut out = vec![BlockQ8K::default(); xs.len() / QK_K];
    quantize_row(xs, &mut out);
    out
}

/// Each row of `xs` (rows of `cols` values) quantized, as [`quantized`] does, a prefill's rows
/// split over candle's CPU pool ([`super::activation_rows`]).
pub fn quantized_rows(xs: &[f32], cols: usize) -> Vec<Vec<BlockQ8K>> {
    super::activation_rows(xs, cols, quantized)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_quantized_in_parallel_are_each_rows_own() {
        for (rows, cols) in [(1, 256), (3, 512), (64, 2048)] {
            let xs: Vec<f32> = (0..rows * cols)
                .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * (1 + i % 7) as f32)
                .collect();
            let expected: Vec<Vec<BlockQ8K>> = xs.chunks_exact(cols).map(quantized).collect();
            assert_eq!(quantized_rows(&xs, cols), expected, "{rows} rows of {cols}");
        }
    }

    #[test]
    fn the_largest_magnitude_maps_to_minus_127_and_ties_round_to_even() {
        let mut xs = vec![0f32; QK_K];
        xs[0] = 2.0;
        xs[1] = -1.0;
        // 2.5/2 * 127 = 158.75 is out of range; pick a tie: 127 * x / 2 = 0.5 for x = 1/127.
        xs[2] = 1.0 / 127.0;
        let block = quantized(&xs)[0];
        assert_eq!(block.qs[0], -127);
        assert_eq!(block.qs[1], 64, "-127/2 * -1 = 63.5 rounds to the even 64");
        assert_eq!(block.qs[2], 0, "-0.5 rounds to the even 0");
        assert_eq!(block.d, -2.0 / 127.0);
        assert_eq!(block.bsums[0], -127 + 64);
        assert_eq!(quantized(&[0.0; QK_K])[0], BlockQ8K::default());
    }

    #[test]
    fn nearest_int_rounds_half_to_even_like_the_standard_library() {
        let mut value = -200.0f32;
        while value <= 200.0 {
            for v in [value, value + 0.5, value - 1e-3, value + 1e-3] {
                assert_eq!(nearest_int(v), v.round_ties_even() as i32, "{v}");
            }
            value += 0.25;
        }
        assert_eq!(nearest_int(f32::NAN), 0);
        assert_eq!(nearest_int(-0.5), 0);
        assert_eq!(nearest_int(126.5), 126);
        assert_eq!(nearest_int(-127.5), -128);
    }
}
