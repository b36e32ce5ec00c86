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

/// Makes sure the pool the kernels split rows over exists, and returns its size. It is rayon's
/// global pool, the one candle's CPU ops use too, so that the kernels and candle never compete
/// for cores; when nothing has built it yet, it is built with one worker per physical core
/// (two hyper-threads share one core's load ports, so they add nothing to a bandwidth-bound
/// loop). `RAYON_NUM_THREADS`, then `VERSUS_KERNEL_THREADS`, override the count.
pub fn threads() -> usize {
    static CONFIGURED: OnceLock<()> = OnceLock::new();
    CONFIGURED.get_or_init(|| {
        if std::env::var_os("RAYON_NUM_THREADS").is_some() {
            return;
        }
        let threads = std::env::var("VERSUS_KERNEL_THREADS")
            .ok()
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or_else(physical_cores);
        // Fails only when the global pool already exists (candle built it first), which is
        // fine: the kernels then share it as it is.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
    });
    rayon::current_num_threads()
}

/// Physical cores: the distinct (package, core) pairs Linux lists, else the available
/// parallelism.
fn physical_cores() -> usize {
    let logical = std::thread::available_parallelism().map_or(1, |n| n.get());
    let Ok(text) = std::fs::read_to_string("/proc/cpuinfo") else {
        return logical;
    };
    let mut cores = std::collections::BTreeSet::new();
    let (mut package, mut core) = (None::<String>, None::<String>);
    for line in text.lines().chain(std::iter::once("")) {
        if line.trim().is_empty() {
            if let (Some(p), Some(c)) = (package.take(), core.take()) {
                cores.insert((p, c));
            }
            continue;
        }
        if let Some((key, value)) = line.split_once(':') {
            match key.trim() {
                "physical id" => package = Some(value.trim().to_string()),
                "core id" => core = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    if cores.is_empty() {
        logical
    } else {
        cores.len().min(logical)
    }
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
