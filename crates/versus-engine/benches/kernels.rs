//! The decode step's matrix-vector products against the machine's memory bandwidth: for Phi-4's
//! projection shapes in Q4_K and Q8_0, the bytes of weights read per second by versus's kernel and by
//! candle's quantized matmul (the baseline), measured interleaved in the same run, beside what
//! this machine can read at all (a parallel sum over 1 GiB on the same threads).
//!
//! `cargo bench -p versus-engine --bench kernels` (`RAYON_NUM_THREADS` sets the threads of both,
//! which share candle's CPU pool; by default one per physical core).

use std::time::Instant;

use candle_core::quantized::{ggml_file::qtensor_from_ggml, GgmlDType, QMatMul};
use candle_core::{Device, Module, Tensor};
use versus_engine::kernels::{self, q4k, q8_0, q8k};

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

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// Random blocks of `dtype` (Q4_K or Q8_0) with small finite scales: `scales` f16 at the head of
/// each block, random bytes after.
fn random_blocks(dtype: GgmlDType, rows: usize, cols: usize) -> Vec<u8> {
    let (values, block_bytes, scales) = match dtype {
        GgmlDType::Q4K => (q8k::QK_K, q4k::BLOCK_BYTES, 2),
        _ => (q8_0::QK8_0, q8_0::BLOCK_BYTES, 1),
    };
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let blocks = rows * cols / values;
    let mut bytes = Vec::with_capacity(blocks * block_bytes);
    for _ in 0..blocks {
        for _ in 0..scales {
            let d = half::f16::from_f32((xorshift(&mut state) % 1000) as f32 / 50_000.0);
            bytes.extend_from_slice(&d.to_le_bytes());
        }
        for _ in 0..block_bytes - 2 * scales {
            bytes.push(xorshift(&mut state) as u8);
        }
    }
    bytes
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
        let sum = sums;
        std::hint::black_box(sum);
        times.push(start.elapsed().as_secs_f64());
    }
    bytes / median(times) / 1e9
}

fn main() -> candle_core::Result<()> {
    // The kernels and candle share candle's CPU pool.
    let threads = kernels::threads();
    let bound = bandwidth();
    println!("threads: {threads}; memory bandwidth (parallel sum of 1 GiB): {bound:.1} GB/s\n");
    println!("| projection (rows x cols) | MB | versus GB/s | candle GB/s | versus / candle | versus % of bandwidth |");
    println!("|---|---|---|---|---|---|");
    let device = Device::Cpu;
    for dtype in [GgmlDType::Q4K, GgmlDType::Q8_0] {
        let mut total = (0.0, 0.0, 0.0);
        for &(name, rows, cols) in SHAPES {
            let weights = random_blocks(dtype, rows, cols);
            let qtensor = qtensor_from_ggml(dtype, &weights, vec![rows, cols], &device)?;
            let candle = QMatMul::from_qtensor(qtensor)?;
            let activations: Vec<f32> = (0..cols)
                .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
                .collect();
            let input = Tensor::from_vec(activations.clone(), (1, cols), &device)?;
            let mut out = vec![0f32; rows];
            let (mut ours, mut theirs) = (Vec::new(), Vec::new());
            // Interleaved, so both sides see the same machine state.
            for _ in 0..ROUNDS {
                let start = Instant::now();
                if dtype == GgmlDType::Q4K {
                    q4k::matvec(&weights, cols, &q8k::quantized(&activations), &mut out);
                } else {
                    q8_0::matvec(&weights, cols, &q8_0::quantized(&activations), &mut out);
                }
                std::hint::black_box(&out);
                ours.push(start.elapsed().as_secs_f64());
                let start = Instant::now();
                let ys = candle.forward(&input)?;
                std::hint::black_box(ys.to_vec2::<f32>()?);
                theirs.push(start.elapsed().as_secs_f64());
            }
            let ys = candle.forward(&input)?.to_vec2::<f32>()?;
            let worst = ys[0]
                .iter()
                .zip(&out)
                .map(|(a, b)| (a - b).abs() / a.abs().max(1.0))
                .fold(0f32, f32::max);
            assert!(worst < 1e-3, "{name}: versus and candle differ by {worst}");
            let mb = weights.len() as f64 / 1e6;
            let (ours, theirs) = (median(ours), median(theirs));
            total.0 += weights.len() as f64;
            total.1 += ours;
            total.2 += theirs;
            println!(
                "| {dtype:?} {name} ({rows} x {cols}) | {mb:.0} | {:.1} | {:.1} | {:.2} | {:.0}% |",
                mb / 1e3 / ours,
                mb / 1e3 / theirs,
                theirs / ours,
                mb / 1e3 / ours / bound * 100.0
            );
        }
        let (bytes, ours, theirs) = total;
        println!(
        "| {dtype:?}, all five: one decode step's worth | {:.0} | {:.1} | {:.1} | {:.2} | {:.0}% |",
        bytes / 1e6,
        bytes / 1e9 / ours,
        bytes / 1e9 / theirs,
        theirs / ours,
        bytes / 1e9 / ours / bound * 100.0
    );
    }
    Ok(())
}
