//! Decoder throughput on a Phi-4-shaped model with random weights: full width and vocabulary
//! (hidden 5120, ffn 17920, 40 heads / 10 kv heads of 128, vocab 100352) but only 2 of its 40
//! layers, so it fits in memory and runs in minutes. Measures prefill and decode tokens/s on 2
//! threads in f32, f16, Q8_0 and Q4_K, and the aggregate decode tokens/s of 1, 4, 8 and 16
//! sequences decoded together (continuous batching's forward pass), and prints a table.
//!
//! `cargo bench -p versus-engine --bench engine [-- f32 f16 q8_0 q4k] [--layers N] [--gguf FILE]
//! [--profile prefill|decode|batch8] [--context N]` (the last runs one phase over and over, for
//! `perf record`; `--context` sets how many positions a decode profile's sequence holds before
//! its timed steps, 16 by default) (`RAYON_NUM_THREADS` overrides the thread count;
//! `VERSUS_ATTENTION=candle` times a decode step's attention through candle's ops). Multiply decode time by 20 for a rough
//! estimate of the full 40-layer model minus the embedding and output matrices' share.

use std::collections::HashMap;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use versus_engine::config::{DecoderConfig, Family, RopeScaling};
use versus_engine::decoder::{Decoder, Feed};
use versus_engine::kernels;
use versus_engine::weights::{ModelWeights, Quantization};

const PROMPT_TOKENS: usize = 128;
const DECODE_STEPS: usize = 32;
/// Prefills of the prompt per run, of which the median counts.
const PREFILL_RUNS: usize = 3;
/// Decode steps per round of the interleaved comparison with candle's matmul.
const ROUND_STEPS: usize = 4;

fn phi4_config(layers: usize) -> DecoderConfig {
    DecoderConfig {
        family: Family::Phi3,
        architecture: "Phi3ForCausalLM".to_string(),
        vocab_size: 100_352,
        hidden_size: 5120,
        intermediate_size: 17_920,
        num_layers: layers,
        num_heads: 40,
        num_kv_heads: 10,
        head_dim: 128,
        rotary_dim: 128,
        rms_norm_eps: 1e-5,
        rope_theta: 250_000.0,
        rope_scaling: RopeScaling::Default,
        max_position_embeddings: 16_384,
        sliding_window: None,
        tie_word_embeddings: false,
        attention_bias: false,
        bos_token_id: Some(100_257),
        eos_token_ids: vec![100_265],
    }
}

/// A fast deterministic generator (xorshift64*): the weights only need to be non-degenerate, and
/// 1.7 billion Box-Muller normals would take longer than the benchmark.
struct Uniform(u64);

impl Uniform {
    fn fill(&mut self, len: usize, scale: f32) -> Vec<f32> {
        (0..len)
            .map(|_| {
                self.0 ^= self.0 >> 12;
                self.0 ^= self.0 << 25;
                self.0 ^= self.0 >> 27;
                let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
                (bits as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect()
    }
}

/// Random weights under their Hugging Face names, stored in `dtype` (quantized runs are given
/// f16 tensors and quantize them while loading, which halves the peak memory).
fn random_weights(
    config: &DecoderConfig,
    dtype: DType,
) -> candle_core::Result<HashMap<String, Tensor>> {
    let device = Device::Cpu;
    let mut rng = Uniform(0x5EED_1234_ABCD_0001);
    // std 0.02, as the checkpoints' initializer_range.
    let scale = 0.02 * 3f32.sqrt();
    let mut matrix = |rows: usize, columns: usize| -> candle_core::Result<Tensor> {
        Tensor::from_vec(rng.fill(rows * columns, scale), (rows, columns), &device)?.to_dtype(dtype)
    };
    let hidden = config.hidden_size;
    let q_width = config.num_heads * config.head_dim;
    let kv_width = config.num_kv_heads * config.head_dim;
    let mut tensors = HashMap::new();
    tensors.insert(
        "model.embed_tokens.weight".to_string(),
        matrix(config.vocab_size, hidden)?,
    );
    tensors.insert(
        "lm_head.weight".to_string(),
        matrix(config.vocab_size, hidden)?,
    );
    for layer in 0..config.num_layers {
        let prefix = format!("model.layers.{layer}");
        let entries = [
            (
                "self_attn.qkv_proj.weight",
                matrix(q_width + 2 * kv_width, hidden)?,
            ),
            ("self_attn.o_proj.weight", matrix(hidden, q_width)?),
            (
                "mlp.gate_up_proj.weight",
                matrix(2 * config.intermediate_size, hidden)?,
            ),
            (
                "mlp.down_proj.weight",
                matrix(hidden, config.intermediate_size)?,
            ),
            (
                "input_layernorm.weight",
                Tensor::ones(hidden, dtype, &device)?,
            ),
            (
                "post_attention_layernorm.weight",
                Tensor::ones(hidden, dtype, &device)?,
            ),
        ];
        for (name, tensor) in entries {
            tensors.insert(format!("{prefix}.{name}"), tensor);
        }
    }
    tensors.insert(
        "model.norm.weight".to_string(),
        Tensor::ones(hidden, dtype, &device)?,
    );
    Ok(tensors)
}

struct Row {
    name: String,
    weight_gib: f64,
    /// Bytes of weights one decode step reads (`Decoder::decode_step_bytes`).
    decode_step_bytes: u64,
    load_s: f64,
    /// Seconds from the start of loading until background work (the interleaved copies of
    /// Q8_0 matrices, and of Q4_K, Q5_K and Q6_K ones with AVX-512) was done.
    ready_s: f64,
    prefill_tokens_per_s: f64,
    decode_tokens_per_s: f64,
    /// The same decode with versus's kernels off (candle's matmul for everything).
    candle_decode_tokens_per_s: f64,
    /// Aggregate decode tokens/s with 1, 4, 8 and 16 sequences decoded together.
    batched_tokens_per_s: Vec<(usize, f64)>,
}

/// Sequences decoded together in the batched measurement.
const BATCHES: &[usize] = &[1, 4, 8, 16];
/// Decode steps per batched measurement.
const BATCH_STEPS: usize = 8;

/// Aggregate decode tokens/s of `n` sequences decoded together through `feed_batch` (each
/// with its own short prompt, prefilled together first, untimed).
fn batched_decode(decoder: &Decoder, n: usize) -> Result<f64, Box<dyn std::error::Error>> {
    let prompts: Vec<Vec<u32>> = (0..n as u32)
        .map(|s| {
            (0..16u32)
                .map(|i| (i * 7919 + s * 104_729) % 100_000)
                .collect()
        })
        .collect();
    let mut sequences: Vec<_> = (0..n)
        .map(|_| decoder.new_sequence(16 + BATCH_STEPS + 1))
        .collect();
    let mut feeds: Vec<Feed<'_>> = sequences
        .iter_mut()
        .zip(&prompts)
        .map(|(sequence, prompt)| Feed {
            sequence,
            tokens: prompt,
        })
        .collect();
    let mut logits = decoder.feed_batch(&mut feeds)?;
    let started = Instant::now();
    for _ in 0..BATCH_STEPS {
        let next: Vec<[u32; 1]> = logits.iter().map(|l| [argmax(l)]).collect();
        let mut feeds: Vec<Feed<'_>> = sequences
            .iter_mut()
            .zip(&next)
            .map(|(sequence, token)| Feed {
                sequence,
                tokens: token,
            })
            .collect();
        logits = decoder.feed_batch(&mut feeds)?;
    }
    Ok((n * BATCH_STEPS) as f64 / started.elapsed().as_secs_f64())
}

/// GB/s of the fastest of five parallel sums over 1 GiB on the kernels' threads: the bound a
/// decode step, which reads each weight once, cannot beat. The best, not the median: on a
/// shared host the neighbours only ever take bandwidth away.
fn bandwidth_gbs() -> f64 {
    let words: Vec<u64> = (0..(1usize << 27)).map(|i| i as u64).collect();
    let chunks: Vec<&[u64]> = words.chunks(1 << 16).collect();
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let started = Instant::now();
        let mut sums = vec![0f32; chunks.len()];
        versus_engine::kernels::for_each_row(&mut sums, |i| {
            chunks[i].iter().fold(0u64, |a, &w| a.wrapping_add(w)) as f32
        });
        std::hint::black_box(sums);
        best = best.min(started.elapsed().as_secs_f64());
    }
    (words.len() * 8) as f64 / best / 1e9
}

fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (index, &value) in logits.iter().enumerate() {
        if value > logits[best] {
            best = index;
        }
    }
    best as u32
}

/// What to benchmark: random weights of one of the four types, or a GGUF file (the one
/// `tools/bench/engine_vs_llama_cpp.py` writes, so that llama.cpp reads the same weights).
enum Source {
    Random(&'static str),
    Gguf(std::path::PathBuf),
}

fn load(source: &Source, layers: usize) -> Result<Decoder, Box<dyn std::error::Error>> {
    let name = match source {
        Source::Gguf(path) => return Ok(Decoder::from_gguf(path, &Device::Cpu, DType::F32)?),
        Source::Random(name) => *name,
    };
    let config = phi4_config(layers);
    let (storage, compute, quantize) = match name {
        "f32" => (DType::F32, DType::F32, None),
        // Stored in f16, computed in f32: versus's kernels take the weights as stored.
        "f16" => (DType::F16, DType::F32, None),
        "q8_0" => (DType::F16, DType::F32, Some(Quantization::Q8_0)),
        "q4k" => (DType::F16, DType::F32, Some(Quantization::Q4K)),
        other => return Err(format!("unknown configuration {other}").into()),
    };
    let tensors = random_weights(&config, storage)?;
    let weights = ModelWeights::from_tensors(tensors).with_quantization(quantize);
    Ok(Decoder::load(config, weights, &Device::Cpu, compute)?)
}

/// A phase to repeat alone under a profiler (`--profile prefill|decode|batch8`).
#[derive(Clone, Copy)]
enum Phase {
    Prefill,
    Decode,
    /// Eight sequences decoded together.
    Batch8,
}

/// Loads `source` and runs only `phase`, over and over (ten prefills of the prompt, or 200
/// decode steps after a context of `context` positions), printing its rate: what `perf
/// record` should see.
fn repeat_phase(
    source: &Source,
    layers: usize,
    phase: Phase,
    context: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let decoder = load(source, layers)?;
    let load_s = started.elapsed().as_secs_f64();
    versus_engine::matrix::wait_for_background_work();
    println!(
        "loaded in {load_s:.2} s, at full speed after {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let prompt: Vec<u32> = (0..PROMPT_TOKENS as u32)
        .map(|i| (i * 7919) % 100_000)
        .collect();
    let started = Instant::now();
    let tokens = match phase {
        Phase::Prefill => {
            for _ in 0..10 {
                let mut sequence = decoder.new_sequence(PROMPT_TOKENS);
                decoder.feed(&mut sequence, &prompt)?;
            }
            10 * PROMPT_TOKENS
        }
        Phase::Decode => {
            // A longer context (`--context N`) is prefilled first, untimed.
            let context: Vec<u32> = (0..context.max(1) as u32)
                .map(|i| (i * 7919) % 100_000)
                .collect();
            let mut sequence = decoder.new_sequence(context.len() + 200);
            let mut logits = decoder.feed(&mut sequence, &context)?;
            let started = Instant::now();
            for _ in 0..200 {
                logits = decoder.feed(&mut sequence, &[argmax(&logits)])?;
            }
            println!(
                "{:.1} tokens/s (after a context of {} positions)",
                200.0 / started.elapsed().as_secs_f64(),
                context.len()
            );
            return Ok(());
        }
        Phase::Batch8 => {
            let mut rates = (0..10)
                .map(|_| batched_decode(&decoder, 8))
                .collect::<Result<Vec<f64>, _>>()?;
            rates.sort_by(f64::total_cmp);
            println!(
                "{:.1} tokens/s (the median of ten rounds; {:.1} to {:.1})",
                (rates[4] + rates[5]) / 2.0,
                rates[0],
                rates[9]
            );
            return Ok(());
        }
    };
    println!(
        "{:.1} tokens/s",
        tokens as f64 / started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn run(source: &Source, layers: usize) -> Result<Row, Box<dyn std::error::Error>> {
    let name = match source {
        Source::Random(name) => name.to_string(),
        Source::Gguf(path) => path.display().to_string(),
    };
    let started = Instant::now();
    let decoder = load(source, layers)?;
    let load_s = started.elapsed().as_secs_f64();
    // Q8_0 matrices (and Q4_K, Q5_K and Q6_K ones with AVX-512) are read as stored until a
    // background thread has interleaved them (see `matrix::Kernel`); the rates below are the
    // steady state after it.
    versus_engine::matrix::wait_for_background_work();
    let ready_s = started.elapsed().as_secs_f64();

    let prompt: Vec<u32> = (0..PROMPT_TOKENS as u32)
        .map(|i| (i * 7919) % 100_000)
        .collect();
    // Warm-up: candle's quantized matmul repacks its weights on first use, so both its prefill
    // path (more rows than versus's kernels take) and each decode path run once untimed.
    let mut warm_up = decoder.new_sequence(16);
    decoder.feed(&mut warm_up, &prompt[..12])?;
    decoder.feed(&mut warm_up, &prompt[12..13])?;
    kernels::set_enabled(false);
    decoder.feed(&mut warm_up, &prompt[13..14])?;
    kernels::set_enabled(true);

    // Prefill: the median of PREFILL_RUNS feeds of the prompt into fresh sequences (the last one
    // is kept for decode). One feed alone moved 268-416 tokens/s between runs of the same binary
    // on the 2-core development machine; the script measures llama.cpp the same way.
    let mut prefill_times = Vec::with_capacity(PREFILL_RUNS);
    let mut fed = None;
    for _ in 0..PREFILL_RUNS {
        let mut sequence = decoder.new_sequence(PROMPT_TOKENS + 2 * DECODE_STEPS);
        let started = Instant::now();
        let logits = decoder.feed(&mut sequence, &prompt)?;
        prefill_times.push(started.elapsed().as_secs_f64());
        fed = Some((sequence, logits));
    }
    let (mut sequence, mut logits) = fed.ok_or("no prefill ran")?;
    prefill_times.sort_by(f64::total_cmp);
    let prefill_s = prefill_times[PREFILL_RUNS / 2];
    // Decode with versus's kernels and with candle's matmul alone, interleaved in rounds of a
    // few steps so that both see the same machine and nearly the same context length.
    let (mut decode_s, mut candle_s) = (0.0, 0.0);
    for round in 0..2 * DECODE_STEPS / ROUND_STEPS {
        let ours = round % 2 == 0;
        kernels::set_enabled(ours);
        let started = Instant::now();
        for _ in 0..ROUND_STEPS {
            let next = argmax(&logits);
            logits = decoder.feed(&mut sequence, &[next])?;
        }
        let elapsed = started.elapsed().as_secs_f64();
        if ours {
            decode_s += elapsed;
        } else {
            candle_s += elapsed;
        }
    }
    kernels::set_enabled(true);
    let mut batched_tokens_per_s = Vec::new();
    for &n in BATCHES {
        batched_tokens_per_s.push((n, batched_decode(&decoder, n)?));
    }
    Ok(Row {
        batched_tokens_per_s,
        candle_decode_tokens_per_s: DECODE_STEPS as f64 / candle_s,
        name,
        weight_gib: decoder.weight_bytes() as f64 / (1u64 << 30) as f64,
        decode_step_bytes: decoder.decode_step_bytes(),
        load_s,
        ready_s,
        prefill_tokens_per_s: PROMPT_TOKENS as f64 / prefill_s,
        decode_tokens_per_s: DECODE_STEPS as f64 / decode_s,
    })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Before candle starts its thread pools; the benchmark is specified on 2 threads.
        std::env::set_var("RAYON_NUM_THREADS", "2");
    }
    let mut sources: Vec<Source> = Vec::new();
    let mut layers = 2;
    let mut profile = None;
    let mut context = 16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--layers" => {
                layers = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--layers needs a number")?
            }
            "--profile" => {
                profile = Some(match args.next().as_deref() {
                    Some("prefill") => Phase::Prefill,
                    Some("decode") => Phase::Decode,
                    Some("batch8") => Phase::Batch8,
                    _ => return Err("--profile takes prefill, decode or batch8".into()),
                })
            }
            "--context" => {
                context = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .ok_or("--context needs a number")?
            }
            "--gguf" => sources.push(Source::Gguf(
                args.next().ok_or("--gguf needs a file")?.into(),
            )),
            "f32" => sources.push(Source::Random("f32")),
            "f16" => sources.push(Source::Random("f16")),
            "q8_0" => sources.push(Source::Random("q8_0")),
            "q4k" => sources.push(Source::Random("q4k")),
            // `cargo bench` passes `--bench`; ignore flags meant for other harnesses.
            _ => {}
        }
    }
    if sources.is_empty() {
        sources = ["f32", "f16", "q8_0", "q4k"].map(Source::Random).into();
    }
    if let Some(phase) = profile {
        for source in &sources {
            repeat_phase(source, layers, phase, context)?;
        }
        return Ok(());
    }
    let threads = std::env::var("RAYON_NUM_THREADS").unwrap_or_default();
    let bandwidth = bandwidth_gbs();
    println!(
        "Phi-4 shape, {layers} of 40 layers, vocab 100352; prompt {PROMPT_TOKENS} tokens, {DECODE_STEPS} decode steps; {threads} threads"
    );
    println!();
    println!("Memory bandwidth (the best of five parallel sums over 1 GiB, on the same threads): {bandwidth:.1} GB/s");
    println!();
    println!("| weights | weight GiB | load s (at full speed after) | prefill tok/s | decode tok/s | decode GB/s read (% of bandwidth) | decode tok/s, candle's matmul only | ratio | batched decode tok/s: 1 / 4 / 8 / 16 sequences |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for source in &sources {
        let row = run(source, layers)?;
        let batched: Vec<String> = row
            .batched_tokens_per_s
            .iter()
            .map(|(_, rate)| format!("{rate:.1}"))
            .collect();
        let decode_gbs = row.decode_step_bytes as f64 * row.decode_tokens_per_s / 1e9;
        println!(
            "| {} | {:.2} | {:.1} ({:.1}) | {:.1} | {:.2} | {:.1} ({:.0}%) | {:.2} | {:.2} | {} |",
            row.name,
            row.weight_gib,
            row.load_s,
            row.ready_s,
            row.prefill_tokens_per_s,
            row.decode_tokens_per_s,
            decode_gbs,
            100.0 * decode_gbs / bandwidth,
            row.candle_decode_tokens_per_s,
            row.decode_tokens_per_s / row.candle_decode_tokens_per_s,
            batched.join(" / ")
        );
        // One line for scripts (tools/bench/engine_vs_llama_cpp.py reads it).
        let batched: Vec<String> = row
            .batched_tokens_per_s
            .iter()
            .map(|(n, rate)| format!("batch{n}={rate:.3}"))
            .collect();
        println!(
            "RESULT load_s={:.3} prefill={:.3} decode={:.3} candle_decode={:.3} {} ready_s={:.3} decode_step_bytes={} bandwidth_gbs={:.2}",
            row.load_s,
            row.prefill_tokens_per_s,
            row.decode_tokens_per_s,
            row.candle_decode_tokens_per_s,
            batched.join(" "),
            row.ready_s,
            row.decode_step_bytes,
            bandwidth
        );
    }
    Ok(())
}
