//! Hand-written CPU kernels for the decode step, where candle's generic quantized matmul leaves
//! memory bandwidth unused: a Q4_K or Q8_0 matrix times one activation row, with the activation
//! quantized (to Q8_K, to Q8_0) exactly as llama.cpp quantizes it, split over a persistent
//! thread pool.
//!
//! Why not candle's: its Q4_K x Q8_K dot product is llama.cpp's AVX2 loop, but it reaches it
//! through per-row trait dispatch and a generic tiling meant for prefill, and on two cores it
//! measured well below the memory-bandwidth bound during decode (issue 11's profile). These
//! kernels are used only for the shapes they are faster at (one to a few rows against a Q4_K
//! matrix on the CPU); prefill and every other type stay on candle.
//!
//! Exactness: each kernel's integer dot products equal the scalar reference's bit for bit, and
//! the result equals it within float rounding (the order of the float sums differs); the tests
//! below check both on random blocks.

pub mod q4k;
pub mod q8_0;
pub mod q8k;

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
/// spin briefly between calls. Sharing it matters: a second pool's threads would compete with
/// candle's spinning ones on the same cores between every op of a decode step (measured: the
/// kernels lost a third of their speed that way on two cores).
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

/// `out`'s rows, written by several threads at once, each its own.
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

// SAFETY: the pointer is only written at indices that `for_each_row` hands to one thread each.
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
