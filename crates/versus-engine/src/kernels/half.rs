//! F16 and BF16 matrices times f32 activations, the weights used as stored: two bytes a weight
//! read (half of what widening them to f32 on load reads, and half the memory), converted to
//! f32 in registers (F16C's `vcvtph2ps`, or a 16-bit shift for BF16) and multiplied in f32, so
//! the result is what f32 weights would give, within the order of the float sums.
//!
//! Why not candle's: its CPU matmul takes F16 weights only with F16 activations (rounding the
//! activations, and slower than f32 on the CPU), which is why versus used to widen every half
//! weight to f32 on load: twice the memory and, for a decode step, twice the bytes read.

use half::{bf16, f16};

use super::Isa;

/// How the two bytes of a weight encode it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HalfKind {
    F16,
    Bf16,
}

impl HalfKind {
    /// One weight (two little-endian bytes) as f32.
    pub fn to_f32(self, bytes: [u8; 2]) -> f32 {
        match self {
            HalfKind::F16 => f16::from_le_bytes(bytes).to_f32(),
            HalfKind::Bf16 => bf16::from_le_bytes(bytes).to_f32(),
        }
    }
}

/// Bytes per weight.
pub const WEIGHT_BYTES: usize = 2;

/// One row (its half-precision bytes) dotted with an f32 row, by the scalar reference: each
/// product fused into one of sixteen f32 partial sums as the kernels sum them (two accumulators
/// of eight lanes, so that two chains of fused multiply-adds are in flight: weight `i` goes to
/// accumulator `(i / 8) % 2`, lane `i % 8`), then the accumulators added and the lanes added
/// pairwise.
pub fn dot_reference(kind: HalfKind, row: &[u8], x: &[f32]) -> f32 {
    let mut partial = [[0f32; 8]; 2];
    for (i, (bytes, &x)) in row.chunks_exact(WEIGHT_BYTES).zip(x).enumerate() {
        let w = kind.to_f32([bytes[0], bytes[1]]);
        let sum = &mut partial[(i / 8) % 2][i % 8];
        *sum = w.mul_add(x, *sum);
    }
    let lanes: [f32; 8] = std::array::from_fn(|l| partial[0][l] + partial[1][l]);
    let quads = [
        lanes[0] + lanes[4],
        lanes[1] + lanes[5],
        lanes[2] + lanes[6],
        lanes[3] + lanes[7],
    ];
    let pairs = [quads[0] + quads[2], quads[1] + quads[3]];
    pairs[0] + pairs[1]
}

/// Half-precision weights of kind `KIND` (0: F16, 1: BF16) with f32 activations.
pub struct Half<const KIND: u8>;

/// F16 weights.
pub type F16 = Half<0>;
/// BF16 weights.
pub type Bf16 = Half<1>;

impl<const KIND: u8> Half<KIND> {
    const KIND: HalfKind = if KIND == 0 {
        HalfKind::F16
    } else {
        HalfKind::Bf16
    };
}

impl<const KIND: u8> super::Format for Half<KIND> {
    type Activation = f32;
    /// Eight weights: one AVX2 register.
    const BLOCK: usize = 8;
    const BLOCK_BYTES: usize = 8 * WEIGHT_BYTES;

    fn activations(xs: &[f32]) -> Vec<f32> {
        xs.to_vec()
    }

    fn dot_reference(row: &[u8], xs: &[f32]) -> f32 {
        dot_reference(Self::KIND, row, xs)
    }

    fn dot_tile(isa: Isa, row: &[u8], xs: &[&[f32]], out: &mut [f32]) {
        let cols = row.len() / WEIGHT_BYTES;
        assert!(
            xs.iter().all(|x| x.len() == cols),
            "activation rows of {cols}"
        );
        match isa {
            #[cfg(target_arch = "x86_64")]
            // SAFETY: `available()` offers `Avx512` and `Avx2` only when the CPU has AVX2, FMA and F16C; every
            // activation row has `cols` values (asserted above), a multiple of 8 (`BLOCK`).
            #[allow(unsafe_code)]
            Isa::Avx512 | Isa::Avx2 if cols.is_multiple_of(8) => unsafe {
                super::dispatch_tile!(xs, out, |tile| avx2::dot_tile(Self::KIND, row, tile))
            },
            _ => {
                for (out, x) in out.iter_mut().zip(xs) {
                    *out = dot_reference(Self::KIND, row, x);
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    //! AVX2 with F16C: eight weights a load, converted to f32 once and multiplied into each
    //! activation's accumulator.
    use std::arch::x86_64::*;

    use super::HalfKind;

    /// Eight weights from 16 bytes at `at`, as f32.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(kind: HalfKind, at: *const u8) -> __m256 {
        // SAFETY: the caller guarantees 16 readable bytes at `at`, and AVX2 and F16C.
        unsafe {
            let raw = _mm_loadu_si128(at as *const __m128i);
            match kind {
                HalfKind::F16 => _mm256_cvtph_ps(raw),
                // A bf16 is the top half of an f32.
                HalfKind::Bf16 => {
                    _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(raw), 16))
                }
            }
        }
    }

    /// The eight lanes of `v`, added as the reference adds them.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn sum_lanes(v: __m256) -> f32 {
        let mut lanes = [0f32; 8];
        // SAFETY: `lanes` is 32 bytes; the caller guarantees AVX2.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), v) };
        let quads = [
            lanes[0] + lanes[4],
            lanes[1] + lanes[5],
            lanes[2] + lanes[6],
            lanes[3] + lanes[7],
        ];
        (quads[0] + quads[2]) + (quads[1] + quads[3])
    }

    /// One row dotted with `N` activation rows: the same operations for each whatever `N` is.
    /// Two accumulators per activation (even and odd groups of eight weights), so that a
    /// single row is not held up by one chain of fused multiply-adds, each waiting for the last.
    #[target_feature(enable = "avx2,fma,f16c")]
    pub(super) unsafe fn dot_tile<const N: usize>(
        kind: HalfKind,
        row: &[u8],
        xs: [&[f32]; N],
    ) -> [f32; N] {
        let cols = row.len() / 2;
        // SAFETY: the caller guarantees AVX2, FMA and F16C, `cols` a multiple of 8 and `cols`
        // values in every `xs[j]`; each load reads 16 bytes of the row or 8 values of an
        // activation inside those bounds.
        unsafe {
            let mut even = [_mm256_setzero_ps(); N];
            let mut odd = [_mm256_setzero_ps(); N];
            let w = row.as_ptr();
            let pairs = cols / 16;
            for pair in 0..pairs {
                let i = 16 * pair;
                let first = load8(kind, w.add(2 * i));
                let second = load8(kind, w.add(2 * i + 16));
                for j in 0..N {
                    let x = xs[j].as_ptr().add(i);
                    even[j] = _mm256_fmadd_ps(first, _mm256_loadu_ps(x), even[j]);
                    odd[j] = _mm256_fmadd_ps(second, _mm256_loadu_ps(x.add(8)), odd[j]);
                }
            }
            if cols % 16 == 8 {
                let i = 16 * pairs;
                let last = load8(kind, w.add(2 * i));
                for j in 0..N {
                    let x = _mm256_loadu_ps(xs[j].as_ptr().add(i));
                    even[j] = _mm256_fmadd_ps(last, x, even[j]);
                }
            }
            let mut out = [0f32; N];
            for j in 0..N {
                out[j] = sum_lanes(_mm256_add_ps(even[j], odd[j]));
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(seed: u64, len: usize) -> Vec<f32> {
        let mut state = seed | 1;
        (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 4.0
            })
            .collect()
    }

    fn encode(kind: HalfKind, values: &[f32]) -> Vec<u8> {
        values
            .iter()
            .flat_map(|&v| match kind {
                HalfKind::F16 => f16::from_f32(v).to_le_bytes(),
                HalfKind::Bf16 => bf16::from_f32(v).to_le_bytes(),
            })
            .collect()
    }

    /// The kernels equal the reference bit for bit: the same products, fused the same way,
    /// summed in the same lanes and order.
    #[test]
    fn every_kernel_equals_the_reference_bit_for_bit() {
        let isa = crate::kernels::isa();
        for kind in [HalfKind::F16, HalfKind::Bf16] {
            for seed in 1..20u64 {
                let cols = 8 * (1 + seed as usize % 37);
                let row = encode(kind, &random(seed, cols));
                let xs: Vec<Vec<f32>> = (0..7).map(|j| random(seed * 100 + j, cols)).collect();
                let views: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
                let mut out = vec![0f32; xs.len()];
                match kind {
                    HalfKind::F16 => crate::kernels::dot_many::<F16>(isa, &row, &views, &mut out),
                    HalfKind::Bf16 => crate::kernels::dot_many::<Bf16>(isa, &row, &views, &mut out),
                }
                for (j, x) in xs.iter().enumerate() {
                    assert_eq!(
                        out[j].to_bits(),
                        dot_reference(kind, &row, x).to_bits(),
                        "{kind:?} seed {seed} activation {j}"
                    );
                }
            }
        }
    }

    /// The reference is the f32 dot product of the widened weights, within float rounding.
    #[test]
    fn the_reference_is_the_dot_product_of_the_widened_weights() {
        for kind in [HalfKind::F16, HalfKind::Bf16] {
            let cols = 512;
            let row = encode(kind, &random(3, cols));
            let x = random(4, cols);
            let exact: f64 = row
                .chunks_exact(2)
                .zip(&x)
                .map(|(b, &x)| f64::from(kind.to_f32([b[0], b[1]])) * f64::from(x))
                .sum();
            let got = dot_reference(kind, &row, &x);
            assert!(
                (f64::from(got) - exact).abs() < 1e-4,
                "{kind:?}: {got} vs {exact}"
            );
        }
    }

    #[test]
    fn the_matmul_dots_every_row_with_every_activation() {
        let (rows, cols, n) = (13, 64, 6);
        let values = random(9, rows * cols);
        let weights = encode(HalfKind::F16, &values);
        let xs = random(10, n * cols);
        let mut out = vec![0f32; n * rows];
        crate::kernels::matmul::<F16>(&weights, rows, cols, &xs, &mut out);
        for j in 0..n {
            for r in 0..rows {
                let expected = dot_reference(
                    HalfKind::F16,
                    &weights[r * cols * 2..(r + 1) * cols * 2],
                    &xs[j * cols..(j + 1) * cols],
                );
                assert_eq!(out[j * rows + r], expected, "activation {j}, row {r}");
            }
        }
    }
}
