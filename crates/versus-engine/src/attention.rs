//! One new position's attention over a sequence's key/value cache, read where the cache keeps
//! it: the decode step's attention, for every sequence of a batch.
//!
//! Why not candle's ops, as a prompt's attention is: a decode step of one sequence took about
//! twenty of them a layer (views made contiguous, a matmul for the scores, a softmax, a matmul
//! for the values), each allocating its result, and the cached keys and values were copied out
//! of the cache's buffer into contiguous tensors at every step, for every layer: at a context
//! of 4096 positions, Phi-4's 40 layers copied 1.7 GB a token, more than the Q4_K weights a step
//! reads. With eight `versus serve` clients the second core waited a sixth of each step for the
//! first one's serial work, most of it these ops (`perf`). Here each group of query heads that
//! shares a key/value head reads that head's cached rows once, in place, and the groups are
//! split over candle's CPU pool once the context is long enough to pay for the hand-off.
//! Measured on the 2-core development machine (the Phi-4-shaped 2-layer Q4_K GGUF, `--bench
//! engine -- --profile decode --context 2048`, against `VERSUS_ATTENTION=candle`, interleaved
//! runs): 37.2-41.0 tokens/s against 25.9-28.8 after 2048 positions of context; within the
//! host's noise after 16.
//!
//! The arithmetic is the one candle's path does, in f32: each score the dot product of the
//! query and the key times the scaling, softmax along the keys (less their maximum, `exp`,
//! divided by the sum), the values added up weighted by the probabilities. Only the order of
//! the additions inside the dot products differs, so results agree to float rounding (tested
//! against that path), and a sequence's result does not depend on the batch it is in.

use std::sync::OnceLock;

use crate::kernels::{self, Isa};

/// Whether a decode step's attention takes this path: unless `VERSUS_ATTENTION=candle`, which
/// keeps candle's ops (to compare the two; read once).
pub fn in_place() -> bool {
    static IN_PLACE: OnceLock<bool> = OnceLock::new();
    *IN_PLACE.get_or_init(|| std::env::var("VERSUS_ATTENTION").as_deref() != Ok("candle"))
}

/// Multiply-adds (queries times cached positions times head width) from which one position's
/// attention is split over the pool: below, the hand-off costs more than the second core
/// gives. About a context of 200 positions for Phi-4's 40 heads of 128.
const PARALLEL_FROM: usize = 1 << 20;

/// One layer's cached keys and values of a sequence, as the cache's buffers hold them:
/// `(kv_heads, capacity, head_dim)`, row-major, the first `len` positions of each head filled.
#[derive(Debug, Clone, Copy)]
pub struct CachedHeads<'a> {
    pub keys: &'a [f32],
    pub values: &'a [f32],
    pub kv_heads: usize,
    pub capacity: usize,
    pub len: usize,
    pub head_dim: usize,
}

/// Attention of one new position: `query` holds its `heads` query heads (`heads · head_dim`,
/// head after head, already rotated), each attending over every cached position of key/value
/// head `h / (heads / kv_heads)` (grouped-query attention, transformers' `repeat_kv`).
/// Returns the heads' outputs, head after head.
///
/// # Panics
/// When the lengths do not match the shape, or `heads` is not a multiple of `kv_heads`.
pub fn attend_one(query: &[f32], heads: usize, cached: &CachedHeads<'_>, scaling: f32) -> Vec<f32> {
    let CachedHeads {
        kv_heads,
        capacity,
        len,
        head_dim,
        ..
    } = *cached;
    assert!(
        kv_heads > 0 && heads.is_multiple_of(kv_heads),
        "{heads} heads over {kv_heads}"
    );
    assert!(
        len <= capacity,
        "{len} cached positions in a buffer of {capacity}"
    );
    assert_eq!(
        query.len(),
        heads * head_dim,
        "query of {heads} heads of {head_dim}"
    );
    let buffer = kv_heads * capacity * head_dim;
    assert!(
        cached.keys.len() >= buffer && cached.values.len() >= buffer,
        "cache buffers of {kv_heads} heads of {capacity} positions of {head_dim}"
    );
    let group = heads / kv_heads;
    let group_width = group * head_dim;
    let isa = kernels::isa();
    let attend_kv_head = |kv_head: usize| {
        let rows = kv_head * capacity * head_dim..(kv_head * capacity + len) * head_dim;
        let group_query = &query[kv_head * group_width..(kv_head + 1) * group_width];
        let (keys, values) = (&cached.keys[rows.clone()], &cached.values[rows]);
        let mut scores = vec![0f32; group * len];
        let mut out = vec![0f32; group_width];
        attend_group(
            isa,
            group_query,
            (keys, values),
            (head_dim, scaling),
            &mut scores,
            &mut out,
        );
        out
    };
    if heads * len * head_dim < PARALLEL_FROM || kernels::threads() == 1 {
        (0..kv_heads).flat_map(attend_kv_head).collect()
    } else {
        kernels::map_on_pool(kv_heads, attend_kv_head).concat()
    }
}

/// One group of query heads (`queries`, head after head) over their key/value head's `len`
/// cached rows (`keys`, `values`: `len · head_dim` each), `scores` a scratch of `len` a head:
/// each head's softmax-weighted sum of the values into `out`, with the widest vector
/// instructions `isa` allows.
fn attend_group(
    isa: Isa,
    queries: &[f32],
    (keys, values): (&[f32], &[f32]),
    (head_dim, scaling): (usize, f32),
    scores: &mut [f32],
    out: &mut [f32],
) {
    match isa {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `kernels::isa()` reports AVX-512 only when this CPU has it.
        #[allow(unsafe_code)]
        Isa::Avx512 => unsafe {
            attend_group_avx512(queries, (keys, values), (head_dim, scaling), scores, out)
        },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `kernels::isa()` reports AVX2 (with FMA) only when this CPU has it.
        #[allow(unsafe_code)]
        Isa::Avx2 => unsafe {
            attend_group_avx2(queries, (keys, values), (head_dim, scaling), scores, out)
        },
        _ => attend_group_body(queries, (keys, values), (head_dim, scaling), scores, out),
    }
}

/// [`attend_group_body`] compiled for AVX-512.
///
/// # Safety
/// The CPU has AVX-512 F.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx512f,avx2,fma")]
unsafe fn attend_group_avx512(
    queries: &[f32],
    cached: (&[f32], &[f32]),
    shape: (usize, f32),
    scores: &mut [f32],
    out: &mut [f32],
) {
    attend_group_body(queries, cached, shape, scores, out)
}

/// [`attend_group_body`] compiled for AVX2.
///
/// # Safety
/// The CPU has AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
#[target_feature(enable = "avx2,fma")]
unsafe fn attend_group_avx2(
    queries: &[f32],
    cached: (&[f32], &[f32]),
    shape: (usize, f32),
    scores: &mut [f32],
    out: &mut [f32],
) {
    attend_group_body(queries, cached, shape, scores, out)
}

/// Lanes of the dot products' partial sums: independent additions the compiler keeps in
/// vector registers (Rust does not reorder float additions by itself).
const LANES: usize = 16;

/// The scores, their softmax and the weighted values of a group of query heads (see
/// [`attend_group`]); inlined into each instruction set's wrapper. Each cached row is read
/// once for the whole group, the group's queries and outputs (a few KB) staying in L1: at
/// long contexts a key/value head's rows outgrow L2, and reading them once a query head
/// made the attention bound by that.
#[inline(always)]
fn attend_group_body(
    queries: &[f32],
    (keys, values): (&[f32], &[f32]),
    (head_dim, scaling): (usize, f32),
    scores: &mut [f32],
    out: &mut [f32],
) {
    let len = keys.len() / head_dim;
    for (t, key) in keys.chunks_exact(head_dim).enumerate() {
        for (h, query) in queries.chunks_exact(head_dim).enumerate() {
            scores[h * len + t] = dot(query, key) * scaling;
        }
    }
    // Each head's softmax; its row of scores becomes its probabilities.
    for scores in scores.chunks_exact_mut(len) {
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0f32;
        for score in scores.iter_mut() {
            *score = (*score - max).exp();
            sum += *score;
        }
        for score in scores.iter_mut() {
            *score /= sum;
        }
    }
    out.fill(0.0);
    for (t, value) in values.chunks_exact(head_dim).enumerate() {
        for (h, out) in out.chunks_exact_mut(head_dim).enumerate() {
            let probability = scores[h * len + t];
            for (out, &value) in out.iter_mut().zip(value) {
                *out += probability * value;
            }
        }
    }
}

/// `a · b` in [`LANES`] partial sums, then those added up.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; LANES];
    let (a_chunks, b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f32 = a_chunks
        .remainder()
        .iter()
        .zip(b_chunks.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (a, b) in a_chunks.zip(b_chunks) {
        for lane in 0..LANES {
            lanes[lane] += a[lane] * b[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Tensor};

    /// Deterministic values in [-1, 1): the kernels tests' activations, scaled.
    fn values(seed: u64, len: usize) -> Vec<f32> {
        let activations = crate::kernels::tests::random_activations(seed, len);
        activations.into_iter().map(|value| value / 4.0).collect()
    }

    /// candle's path (the decoder's for a prompt): scores by matmul, softmax in f32, values by
    /// matmul, with k and v repeated for each query head of a group.
    fn by_candle(
        query: &[f32],
        heads: usize,
        cached: &CachedHeads<'_>,
        scaling: f32,
    ) -> candle_core::Result<Vec<f32>> {
        let device = Device::Cpu;
        let CachedHeads {
            kv_heads,
            capacity,
            len,
            head_dim,
            ..
        } = *cached;
        let group = heads / kv_heads;
        let buffer = |data: &[f32]| {
            Tensor::from_slice(
                &data[..kv_heads * capacity * head_dim],
                (kv_heads, capacity, head_dim),
                &device,
            )?
            .narrow(1, 0, len)?
            .contiguous()
        };
        let (keys, values) = (buffer(cached.keys)?, buffer(cached.values)?);
        let q = Tensor::from_slice(query, (kv_heads, group, head_dim), &device)?;
        let scores = (q.matmul(&keys.t()?)? * f64::from(scaling))?;
        let probabilities = candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?;
        probabilities
            .matmul(&values)?
            .flatten_all()?
            .to_vec1::<f32>()
    }

    /// Checks `attend_one` against candle's path for one shape, within float rounding.
    fn check(heads: usize, kv_heads: usize, head_dim: usize, capacity: usize, len: usize) {
        let buffer = kv_heads * capacity * head_dim;
        let (keys, values_) = (values(1, buffer), values(2, buffer));
        let query = values(3, heads * head_dim);
        let cached = CachedHeads {
            keys: &keys,
            values: &values_,
            kv_heads,
            capacity,
            len,
            head_dim,
        };
        let scaling = (head_dim as f32).powf(-0.5);
        let ours = attend_one(&query, heads, &cached, scaling);
        let theirs = by_candle(&query, heads, &cached, scaling).expect("candle's attention");
        assert_eq!(ours.len(), theirs.len());
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert!(
                (a - b).abs() <= 1e-5 * (1.0 + b.abs()),
                "{heads} heads / {kv_heads}, {len} of {capacity} positions: output {i} {a} against {b}"
            );
        }
    }

    #[test]
    fn one_position_attends_as_candles_path_does() {
        check(4, 4, 8, 1, 1);
        check(4, 2, 16, 8, 5);
        check(8, 2, 32, 40, 33);
        check(6, 3, 20, 17, 17);
        // Long enough to be split over the pool.
        check(40, 10, 128, 300, 260);
    }

    #[test]
    fn positions_past_len_are_not_read() {
        let (kv_heads, capacity, head_dim, len) = (2, 6, 16, 3);
        let buffer = kv_heads * capacity * head_dim;
        let (keys, values_) = (values(4, buffer), values(5, buffer));
        let query = values(6, 4 * head_dim);
        let attend = |keys: &[f32], values_: &[f32]| {
            let cached = CachedHeads {
                keys,
                values: values_,
                kv_heads,
                capacity,
                len,
                head_dim,
            };
            attend_one(&query, 4, &cached, 0.25)
        };
        let before = attend(&keys, &values_);
        // Garbage in every unfilled position of every head.
        let (mut keys, mut values_) = (keys, values_);
        for head in 0..kv_heads {
            let unfilled = (head * capacity + len) * head_dim..(head + 1) * capacity * head_dim;
            keys[unfilled.clone()].fill(f32::NAN);
            values_[unfilled].fill(1e30);
        }
        assert_eq!(attend(&keys, &values_), before);
    }
}
