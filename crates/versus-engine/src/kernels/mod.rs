//! Hand-written CPU kernels for the decode step, where candle's generic quantized matmul leaves
//! memory bandwidth unused: a Q4_K or Q8_0 matrix times one activation row, with the activation
//! quantized (to Q8_K, to Q8_0) exactly as llama.cpp quantizes it, split over a persistent
//! thread pool.
//!
//! Why not candle's: on two cores its one-row quantized matmul read weights at about 11.6 GB/s
//! (Q4_K) and 11.8 GB/s (Q8_0) against 25 GB/s of bandwidth, where these read 19.9 and 14.1
//! (`cargo bench -p versus-engine --bench kernels`). They are used only where they are faster:
//! one to a few rows against a Q4_K or Q8_0 matrix on the CPU; prefill and every other type stay
//! on candle.
//!
//! Exactness: each kernel's integer dot products equal the scalar reference's bit for bit, and
//! the result equals it within float rounding (the order of the float sums differs); the tests
//! below check both on random blocks.

pub mod half;
pub mod q4k;
pub mod q8_0;
pub mod q8k;
#[cfg(target_arch = "x86_64")]
mod x86;

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

/// Whether the decoder uses these kernels where they apply: 0 not decided yet, 1 yes, 2 no.
static ENABLED: AtomicU8 = AtomicU8::new(0);

/// Whether the decoder uses these kernels where they apply: yes, unless `VERSUS_KERNELS=off`
/// (for comparing against candle's matmul, or ruling the kernels out when chasing a bug) or
/// [`set_enabled`] said otherwise.
pub fn enabled() -> bool {
    match ENABLED.load(Ordering::Relaxed) {
        1 => true,
        2 => false,
        _ => {
            let on = std::env::var("VERSUS_KERNELS").map_or(true, |v| v != "off");
            set_enabled(on);
            on
        }
    }
}

/// Turns the kernels on or off for the whole process (the benchmarks compare both in one run).
pub fn set_enabled(on: bool) {
    ENABLED.store(if on { 1 } else { 2 }, Ordering::Relaxed);
}

/// `out[i] = f(i)` for every row `i` of `out`, rows split over candle's CPU pool: the one its
/// own quantized matmuls and other CPU ops run on, sized to the physical cores, whose workers
/// spin briefly between calls. Sharing it matters: a second pool's threads compete with candle's
/// spinning ones on the same cores between every op of a decode step (on two cores the Q4_K
/// kernel read 12.8 GB/s on a rayon pool of its own and 19.9 on this one, in separate runs).
pub fn for_each_row(out: &mut [f32], f: impl Fn(usize) -> f32 + Sync) {
    let rows = out.len();
    let shared = SharedRows(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(rows, |range| {
        for i in range {
            // SAFETY: `execute_chunked` hands every index of 0..rows to exactly one call, so
            // each element is written by one thread only, and `out` outlives the call.
            #[allow(unsafe_code)]
            unsafe {
                shared.write(i, f(i));
            }
        }
    });
}

/// Activations per call of a tile kernel: each weight block is unpacked once for this many
/// activation rows. Four keeps a tile's accumulators in AVX2's sixteen registers.
pub const TILE: usize = 4;

/// Calls `f` on the activations in tiles of at most [`TILE`], with the matching part of `out`.
fn tiles<A>(ys: &[A], out: &mut [f32], mut f: impl FnMut(&[A], &mut [f32])) {
    for (tile, out) in ys.chunks(TILE).zip(out.chunks_mut(TILE)) {
        f(tile, out);
    }
}

#[cold]
fn unreachable_tile() {
    debug_assert!(false, "tiles are one to TILE activations long");
}

/// `out[j · rows + r] = dot(row r of weights, activation j)` for a matrix of `rows` rows of
/// `row_bytes` bytes and `ys.len()` activation rows: weight rows split over the kernel pool,
/// each row read once for every activation (`dot_many` takes them all and tiles them).
fn matmul<A: Sync>(
    weights: &[u8],
    rows: usize,
    row_bytes: usize,
    ys: &[A],
    out: &mut [f32],
    dot_many: impl Fn(&[u8], &[A], &mut [f32]) + Sync,
) {
    assert_eq!(
        weights.len(),
        rows * row_bytes,
        "weight bytes for {rows} rows"
    );
    assert_eq!(out.len(), rows * ys.len(), "outputs for {rows} rows");
    let n = ys.len();
    let shared = SharedRows(out.as_mut_ptr());
    candle_core::utils::barrier_pool().execute_chunked(rows, |range| {
        let mut row_out = vec![0f32; n];
        for r in range {
            dot_many(
                &weights[r * row_bytes..(r + 1) * row_bytes],
                ys,
                &mut row_out,
            );
            for (j, value) in row_out.iter().enumerate() {
                // SAFETY: `execute_chunked` hands every row to exactly one call, so each
                // element `j · rows + r` is written by one thread only; it is in bounds
                // (asserted above), and `out` outlives the call.
                #[allow(unsafe_code)]
                unsafe {
                    shared.write(j * rows + r, *value);
                }
            }
        }
    });
}

/// `out`'s elements, written by several threads at once, each its own.
struct SharedRows(*mut f32);

impl SharedRows {
    /// # Safety
    /// `i` is in bounds and no other thread writes or reads it meanwhile.
    #[allow(unsafe_code)]
    unsafe fn write(&self, i: usize, value: f32) {
        // SAFETY: as the caller promises.
        unsafe { *self.0.add(i) = value }
    }
}

// SAFETY: the pointer is only written at indices that `for_each_row` and `matmul` hand to one
// thread each.
#[allow(unsafe_code)]
unsafe impl Sync for SharedRows {}

/// The threads the kernels run on (candle's pool, with the calling thread).
pub fn threads() -> usize {
    candle_core::utils::barrier_pool().n_workers() + 1
}

/// Which instruction set the kernels use on this machine, chosen at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 with AVX2, FMA and F16C (every AVX2 CPU has them).
    Avx2,
    /// Anything else: the scalar reference.
    Portable,
}

/// The best instruction set this CPU has (checked once).
pub fn isa() -> Isa {
    static ISA: OnceLock<Isa> = OnceLock::new();
    *ISA.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                && std::arch::is_x86_feature_detected!("f16c")
            {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    })
}
