//! The decode step's matrix products against the machine's memory bandwidth: for Phi-4's
//! projection shapes in every format versus's kernels take (Q4_K, Q5_K, Q6_K, Q8_0, F16, BF16),
//! the bytes of weights read per second by versus's kernel and by candle's matmul on the same
//! weights (the baseline), measured interleaved in the same run, beside what this machine can
//! read at all (a parallel sum over 1 GiB on the same threads). Then the same step for a batch
//! of 1, 4, 8 and 16 activation rows: how much longer 16 rows take than one is what batched
//! decoding gains. A Q4_K matrix is measured as the decoder uses it (rows interleaved eight by
//! eight where this CPU has that kernel) and, interleaved in the same rounds, with the
//! row-at-a-time kernel. Last, the same kernels on matrices small enough to stay in cache: the
//! time a step's five projections would take if reading the weights cost nothing, the ceiling
//! that a batch's gain meets once its kernels are bound by instructions rather than memory.
//!
//! `cargo bench -p versus-engine --bench kernels [-- q4k q5k q6k q8_0 f16 bf16]`
//! (`RAYON_NUM_THREADS` sets the threads of both, which share candle's CPU pool; by default one
//! per physical core).

use std::time::Instant;

use candle_core::quantized::QTensor;
use candle_core::{Device, Module, Tensor};
use versus_engine::kernels;
use versus_engine::matrix::{StoredBytes, StoredFormat, StoredMatrix};

const ROUNDS: usize = 7;

/// Phi-4's decode-step projections (rows, cols): q/k/v fused, o, gate/up fused, down, and the
/// output matrix.
const SHAPES: &[(&str, usize, usize)] = &[
    ("qkv_proj", 7680, 5120),
    ("o_proj", 5120, 5120),
    ("gate_up_proj", 35_840, 5120),
    ("down_proj", 5120, 17_920),
    ("lm_head", 100_352, 5120),
];

/// Activation rows per step in the batch table.
const BATCHES: &[usize] = &[1, 4, 8, 16];

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A `rows x cols` matrix of `format` with llama.cpp's own rounding: random normal-ish values
/// quantized by candle's quantizer (which writes llama.cpp's blocks), in slices so that the f32
/// copy stays small.
fn random_matrix(
    format: StoredFormat,
    rows: usize,
    cols: usize,
) -> candle_core::Result<StoredMatrix> {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut bytes = Vec::new();
    let slice_rows = 1024;
    for start in (0..rows).step_by(slice_rows) {
        let count = slice_rows.min(rows - start);
        let values: Vec<f32> = (0..count * cols)
            .map(|_| ((xorshift(&mut state) >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.07)
            .collect();
        let tensor = Tensor::from_vec(values, (count, cols), &Device::Cpu)?;
        let quantized = QTensor::quantize(&tensor, format.ggml())?;
        bytes.extend_from_slice(&quantized.data()?);
    }
    StoredMatrix::new(StoredBytes::owned(&bytes), format, rows, cols)
        .map_err(candle_core::Error::Msg)
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// GB/s of a parallel sum over 1 GiB, on the same threads: the bound a matrix-vector
/// product that reads each weight once cannot beat.
fn bandwidth() -> f64 {
    let words: Vec<u64> = (0..(1usize << 27)).map(|i| i as u64).collect();
    let bytes = (words.len() * 8) as f64;
    let mut times = Vec::new();
    for _ in 0..5 {
        let start = Instant::now();
        let chunks: Vec<&[u64]> = words.chunks(1 << 16).collect();
        let mut sums = vec![0f32; chunks.len()];
        kernels::for_each_row(&mut sums, |i| {
            chunks[i].iter().fold(0u64, |a, &w| a.wrapping_add(w)) as f32
        });
        std::hint::black_box(sums);
        times.push(start.elapsed().as_secs_f64());
    }
    bytes / median(times) / 1e9
}

fn activations(rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols)
        .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
        .collect()
}

fn parse_format(name: &str) -> Option<StoredFormat> {
    match name {
        "q4k" => Some(StoredFormat::Q4K),
        "q5k" => Some(StoredFormat::Q5K),
        "q6k" => Some(StoredFormat::Q6K),
        "q8_0" => Some(StoredFormat::Q8_0),
        "f16" => Some(StoredFormat::F16),
        "bf16" => Some(StoredFormat::Bf16),
        _ => None,
    }
}

fn main() -> candle_core::Result<()> {
    let mut formats: Vec<StoredFormat> = std::env::args()
        .skip(1)
        .filter_map(|a| parse_format(&a))
        .collect();
    if formats.is_empty() {
        formats = vec![
            StoredFormat::Q4K,
            StoredFormat::Q5K,
            StoredFormat::Q6K,
            StoredFormat::Q8_0,
            StoredFormat::F16,
            StoredFormat::Bf16,
        ];
    }
    // The kernels and candle share candle's CPU pool.
    let threads = kernels::threads();
    let bound = bandwidth();
    println!("threads: {threads}; memory bandwidth (parallel sum of 1 GiB): {bound:.1} GB/s\n");
    println!("| projection (rows x cols) | MB | versus GB/s | versus, a row at a time, GB/s | candle GB/s | versus / candle | versus % of bandwidth |");
    println!("|---|---|---|---|---|---|---|");
    let device = Device::Cpu;
    let mut batch_rows = Vec::new();
    for &format in &formats {
        let mut total = (0.0, 0.0, 0.0, 0.0);
        let mut batch_times = vec![0.0; BATCHES.len()];
        // As stored, what the matrices run at until their background copies are made (Q8_0,
        // and Q4_K, Q5_K and Q6_K with AVX-512).
        let mut stored_times = vec![0.0; BATCHES.len()];
        let mut reads_stored = false;
        for &(name, rows, cols) in SHAPES {
            let row_at_a_time = random_matrix(format, rows, cols)?;
            let matrix = row_at_a_time.clone().for_matmul();
            versus_engine::matrix::wait_for_background_work();
            let candle = matrix.candle()?;
            let x = activations(1, cols);
            let input = Tensor::from_vec(x.clone(), (1, cols), &device)?;
            let (mut ours, mut plain, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
            // Interleaved, so all sides see the same machine state.
            for _ in 0..ROUNDS {
                let start = Instant::now();
                std::hint::black_box(matrix.matmul(&x));
                ours.push(start.elapsed().as_secs_f64());
                if matrix.is_interleaved() {
                    let start = Instant::now();
                    std::hint::black_box(row_at_a_time.matmul(&x));
                    plain.push(start.elapsed().as_secs_f64());
                }
                let start = Instant::now();
                let ys = candle.forward(&input)?;
                std::hint::black_box(ys.to_vec2::<f32>()?);
                theirs.push(start.elapsed().as_secs_f64());
            }
            // A sanity check (exactness is the tests' job): the two round the activations
            // differently, so compare the outputs as vectors.
            let ys = candle.forward(&input)?.to_vec2::<f32>()?;
            let (mut difference, mut norm) = (0f64, 0f64);
            for (a, b) in ys[0].iter().zip(&matrix.matmul(&x)) {
                difference += f64::from(a - b).powi(2);
                norm += f64::from(*a).powi(2);
            }
            let relative = (difference / norm.max(1e-30)).sqrt();
            assert!(
                relative < 5e-2,
                "{format:?} {name}: versus and candle differ by {relative:.3} (relative L2)"
            );
            let bytes = matrix.storage_bytes() as f64;
            let (ours, theirs) = (median(ours), median(theirs));
            let plain = if plain.is_empty() {
                ours
            } else {
                median(plain)
            };
            total.0 += bytes;
            total.1 += ours;
            total.2 += theirs;
            total.3 += plain;
            println!(
                "| {format:?} {name} ({rows} x {cols}) | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} | {:.0}% |",
                bytes / 1e6,
                bytes / 1e9 / ours,
                bytes / 1e9 / plain,
                bytes / 1e9 / theirs,
                theirs / ours,
                bytes / 1e9 / ours / bound * 100.0
            );
            // The median of three calls.
            let time = |product: &dyn Fn() -> Vec<f32>| {
                median(
                    (0..3)
                        .map(|_| {
                            let start = Instant::now();
                            std::hint::black_box(product());
                            start.elapsed().as_secs_f64()
                        })
                        .collect(),
                )
            };
            for (slot, &n) in BATCHES.iter().enumerate() {
                let xs = activations(n, cols);
                batch_times[slot] += time(&|| matrix.matmul(&xs));
                if matrix.reads_stored_at_first() {
                    reads_stored = true;
                    stored_times[slot] += time(&|| matrix.matmul_as_stored(&xs));
                }
            }
        }
        let (bytes, ours, theirs, plain) = total;
        println!(
            "| {format:?}, all five: one decode step's worth | {:.0} | {:.1} | {:.1} | {:.1} | {:.2} | {:.0}% |",
            bytes / 1e6,
            bytes / 1e9 / ours,
            bytes / 1e9 / plain,
            bytes / 1e9 / theirs,
            theirs / ours,
            bytes / 1e9 / ours / bound * 100.0
        );
        let compute: Vec<f64> = BATCHES
            .iter()
            .map(|&n| in_cache_step_seconds(format, n, false))
            .collect::<candle_core::Result<_>>()?;
        batch_rows.push((format!("{format:?}"), batch_times, compute));
        if reads_stored {
            let compute: Vec<f64> = BATCHES
                .iter()
                .map(|&n| in_cache_step_seconds(format, n, true))
                .collect::<candle_core::Result<_>>()?;
            let label = format!("{format:?} as stored (until its copy is made)");
            batch_rows.push((label, stored_times, compute));
        }
    }
    println!("\nOne decode step's five projections for a batch of n activation rows (versus's kernels):\n");
    print!("| format |");
    for n in BATCHES {
        print!(" n = {n}: ms (x one row's time) |");
    }
    println!(" rows per second at n = 16 / at n = 1 |");
    println!("|---|{}---|", "---|".repeat(BATCHES.len()));
    for (label, times, _) in &batch_rows {
        print!("| {label} |");
        for time in times {
            print!(" {:.1} ({:.2}x) |", time * 1e3, time / times[0]);
        }
        let last = BATCHES.len() - 1;
        println!(
            " {:.2} |",
            BATCHES[last] as f64 / times[last] / (1.0 / times[0])
        );
    }
    println!(
        "\nThe same step's compute alone: the five projections' weights times the time per \
         weight measured on matrices that stay in cache (the time of {CACHE_ROWS_BYTES} bytes \
         of rows less that of half as many, the fastest of {ROUNDS} rounds, so that fixed \
         costs cancel). n rows can gain at most n times one row's step over their compute \
         time:\n"
    );
    print!("| format |");
    for n in BATCHES {
        print!(" n = {n}: compute ms (at most x n rows' gain) |");
    }
    println!();
    println!("|---|{}", "---|".repeat(BATCHES.len()));
    for (label, times, compute) in &batch_rows {
        print!("| {label} |");
        for (&n, time) in BATCHES.iter().zip(compute) {
            // A step is never faster than one row's, which reads every weight.
            let gain = n as f64 * times[0] / time.max(times[0]);
            print!(" {:.1} ({gain:.2}x) |", time * 1e3);
        }
        println!();
    }
    Ok(())
}

/// Bytes of weights in the larger of the two cache-resident matrices (split over the threads,
/// each thread's share fits its L2 with the activations).
const CACHE_ROWS_BYTES: usize = 1024 * 1024;

/// Seconds a decode step's five projections ([`SHAPES`]) take for `n` activation rows if the
/// weights cost nothing to read: the time per weight of `format`'s kernel on cache-resident
/// matrices of Phi-4's width, as the difference between `2R` rows and `R` rows (so that the
/// per-call costs, quantizing the activations and waking the pool, cancel), times the step's
/// weights.
fn in_cache_step_seconds(
    format: StoredFormat,
    n: usize,
    as_stored: bool,
) -> candle_core::Result<f64> {
    const COLS: usize = 5120;
    const CALLS: usize = 50;
    let row_bytes = format
        .row_bytes(COLS)
        .ok_or_else(|| candle_core::Error::Msg(format!("{format:?} rows of {COLS}")))?;
    let small_rows = (CACHE_ROWS_BYTES / 2 / row_bytes / 16).max(1) * 16;
    let small = random_matrix(format, small_rows, COLS)?.for_matmul();
    let large = random_matrix(format, 2 * small_rows, COLS)?.for_matmul();
    // Interleaved copies made in the background (Q8_0's; Q4_K's, Q5_K's and Q6_K's with
    // AVX-512): time them, the steady state.
    versus_engine::matrix::wait_for_background_work();
    let xs = activations(n, COLS);
    let time = |matrix: &StoredMatrix| {
        let start = Instant::now();
        for _ in 0..CALLS {
            if as_stored {
                std::hint::black_box(matrix.matmul_as_stored(&xs));
            } else {
                std::hint::black_box(matrix.matmul(&xs));
            }
        }
        start.elapsed().as_secs_f64() / CALLS as f64
    };
    let (mut small_times, mut large_times) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        small_times.push(time(&small));
        large_times.push(time(&large));
    }
    // The fastest rounds: with nothing to wait on in memory, a slower round is the host's noise.
    let fastest = |times: Vec<f64>| times.into_iter().fold(f64::INFINITY, f64::min);
    let (small_time, large_time) = (fastest(small_times), fastest(large_times));
    let per_weight = (large_time - small_time).max(0.0) / (small_rows * COLS) as f64;
    let step_weights: usize = SHAPES.iter().map(|&(_, rows, cols)| rows * cols).sum();
    Ok(per_weight * step_weights as f64)
}
