//! The decoder against the golden outputs of the tiny fixture models: transformers' float32 logits
//! and greedy ids for every family, and llama.cpp's for the GGUF files. Each check is one helper,
//! so a new model or case is one line. Inputs are the golden `input_ids` (no tokenizer involved).

mod common;

use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::{gguf_file, GgmlDType, QTensor};
use candle_core::{DType, Device, Tensor};
use serde::Deserialize;
use versus_engine::config::DecoderConfig;
use versus_engine::decoder::{Decoder, Feed};
use versus_engine::rope::{self, FactorSet};
use versus_engine::weights::{ModelWeights, Quantization};

use common::fixtures_dir;

/// An f32 engine matches transformers to about 1e-5 (fixtures README, "Observed tolerances").
const F32_TOLERANCE: f32 = 1e-4;

/// Quantized computation against a reference that rounds activations differently. A quantized
/// matmul quantizes its activations first (llama.cpp and candle alike), and that rounding alone
/// moves these logits by 4.2e-2: llama.cpp's Q8_0 run vs transformers on the same dequantized
/// weights (fixtures README, "Observed tolerances"). Two such engines agree only to that noise
/// unless they round bit-identically, and candle and llama.cpp do not: candle's repacked x86
/// kernels quantize activations in blocks of 256 with an f32 scale, and even its portable Q8_0
/// path (blocks of 32 like llama.cpp) lands 2.7e-2 to 4e-2 from llama.cpp's run. Measured
/// here: up to 6.6e-2. The bound is that noise floor with a margin; the float computation on
/// the quantized weights is checked at f32 tolerance separately
/// (`gguf_q8_0_dequantized_matches_transformers`).
///
/// Why a bound of 1e-3 is out of reach even with activations quantized exactly as llama.cpp
/// quantizes them (versus's kernels do: same blocks, scale, f16 rounding and round-half-even):
/// the result is chaotic in the last bit of every float sum. A one-ulp difference in an
/// activation flips one Q8_0 rounding, and the flip reaches the logits. Measured on
/// `multi_turn`: versus's interleaved and row-at-a-time Q8_0 kernels, which differ only in the
/// order of their float sums, give logits 2.2e-2 apart (3e-7 on the other two conversations,
/// where no rounding flipped). Matching llama.cpp to 1e-3 would need every reduction of the
/// network (norms, softmax, dot products) summed in llama.cpp's order, bit for bit.
const ACTIVATION_ROUNDING_TOLERANCE: f32 = 1e-1;

#[derive(Debug, Deserialize)]
struct Golden {
    model: GoldenModel,
    conversations: Vec<Conversation>,
}

#[derive(Debug, Deserialize)]
struct GoldenModel {
    rope: GoldenRope,
}

#[derive(Debug, Deserialize)]
struct GoldenRope {
    attention_scaling: f64,
    inv_freq: Option<Vec<f32>>,
    inv_freq_short: Option<Vec<f32>>,
    inv_freq_long: Option<Vec<f32>>,
}

#[derive(Debug, Deserialize)]
struct Conversation {
    id: String,
    input_ids: Vec<u32>,
    greedy_ids: Vec<u32>,
    last_logits: Vec<f32>,
    position_logits: Option<Vec<Vec<f32>>>,
    kv_cache_loop_without_recompute: Option<Vec<u32>>,
}

#[derive(Debug, Deserialize)]
struct GoldenGguf {
    runs: HashMap<String, GgufRun>,
    transformers_q8_0_dequantized: GgufRun,
}

#[derive(Debug, Deserialize)]
struct GgufRun {
    conversations: Vec<GgufConversation>,
}

#[derive(Debug, Deserialize)]
struct GgufConversation {
    id: String,
    greedy_ids: Vec<u32>,
    last_logits: Option<Vec<f32>>,
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("cannot parse {}: {e}", path.display()))
}

fn golden(model: &str) -> Golden {
    read_json(&fixtures_dir().join(model).join("golden.json"))
}

fn golden_gguf() -> GoldenGguf {
    read_json(&fixtures_dir().join("tiny-phi4-gguf/golden_gguf.json"))
}

fn load_hf(model: &str) -> Decoder {
    load_hf_quantized(model, None)
}

fn load_hf_quantized(model: &str, quantize: Option<Quantization>) -> Decoder {
    Decoder::from_hf_dir(
        &fixtures_dir().join(model),
        &Device::Cpu,
        DType::F32,
        quantize,
    )
    .unwrap_or_else(|e| panic!("cannot load {model}: {e}"))
}

fn load_gguf(path: &Path) -> Decoder {
    Decoder::from_gguf(path, &Device::Cpu, DType::F32)
        .unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
}

/// The largest absolute difference, after checking lengths.
fn max_abs_diff(actual: &[f32], expected: &[f32], what: &str) -> f32 {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    actual
        .iter()
        .zip(expected)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f32::max)
}

fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32, what: &str) -> f32 {
    let diff = max_abs_diff(actual, expected, what);
    eprintln!("{what}: max |Δ| = {diff:.3e}");
    assert!(
        diff <= tolerance,
        "{what}: max |Δ| {diff:e} exceeds {tolerance:e}"
    );
    diff
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

/// A plain greedy loop over `feed`: the prompt, then one token at a time.
fn greedy(decoder: &Decoder, prompt: &[u32], steps: usize) -> Vec<u32> {
    let mut sequence = decoder.new_sequence(prompt.len() + steps);
    let mut logits = decoder.feed(&mut sequence, prompt).expect("prefill");
    let mut generated = Vec::with_capacity(steps);
    for step in 0..steps {
        let next = argmax(&logits);
        generated.push(next);
        if step + 1 < steps {
            logits = decoder.feed(&mut sequence, &[next]).expect("decode step");
        }
    }
    generated
}

/// Prefill logits at the last prompt position, every conversation.
fn check_last_logits(decoder: &Decoder, golden: &Golden, label: &str) {
    check_last_logits_within(decoder, golden, F32_TOLERANCE, label);
}

fn check_last_logits_within(decoder: &Decoder, golden: &Golden, tolerance: f32, label: &str) {
    for conversation in &golden.conversations {
        let mut sequence = decoder.new_sequence(conversation.input_ids.len());
        let logits = decoder
            .feed(&mut sequence, &conversation.input_ids)
            .expect("prefill");
        assert_close(
            &logits,
            &conversation.last_logits,
            tolerance,
            &format!("{label} {} last_logits", conversation.id),
        );
    }
}

/// Logits at every position of the first conversation.
fn check_position_logits(decoder: &Decoder, golden: &Golden, label: &str) {
    let conversation = &golden.conversations[0];
    let expected = conversation
        .position_logits
        .as_ref()
        .expect("position_logits in the first conversation");
    let actual = decoder
        .logits_all(&conversation.input_ids)
        .expect("logits_all");
    assert_eq!(actual.len(), expected.len());
    let worst = actual
        .iter()
        .zip(expected)
        .enumerate()
        .map(|(position, (a, e))| max_abs_diff(a, e, &format!("{label} position {position}")))
        .fold(0.0, f32::max);
    eprintln!(
        "{label} {} position_logits: max |Δ| = {worst:.3e}",
        conversation.id
    );
    assert!(
        worst <= F32_TOLERANCE,
        "{label}: position logits differ by {worst:e}"
    );
}

/// 24 greedy steps equal the golden ids exactly.
fn check_greedy(decoder: &Decoder, golden: &Golden, label: &str) {
    for conversation in &golden.conversations {
        let ids = greedy(
            decoder,
            &conversation.input_ids,
            conversation.greedy_ids.len(),
        );
        assert_eq!(
            ids, conversation.greedy_ids,
            "{label} {} greedy ids",
            conversation.id
        );
    }
}

/// Feeding the prompt one token at a time ends at the same logits as one prefill.
fn check_token_by_token(decoder: &Decoder, golden: &Golden, label: &str) {
    let conversation = &golden.conversations[0];
    // Capacity 1: the cache has to grow along the way.
    let mut sequence = decoder.new_sequence(1);
    let mut logits = Vec::new();
    for &token in &conversation.input_ids {
        logits = decoder
            .feed(&mut sequence, &[token])
            .expect("feed one token");
    }
    assert_close(
        &logits,
        &conversation.last_logits,
        F32_TOLERANCE,
        &format!("{label} {} token by token", conversation.id),
    );
}

/// Every conversation decoded together through `feed_batch`, joining two steps apart (so
/// passes mix one sequence's prompt with the others' single tokens), gives each the greedy
/// ids it gets alone, with logits within float rounding of its unbatched ones at every step.
fn check_batched(decoder: &Decoder, golden: &Golden, tolerance: f32, label: &str) {
    let conversations = &golden.conversations;
    let alone: Vec<Vec<Vec<f32>>> = conversations
        .iter()
        .map(|conversation| {
            let steps = conversation.greedy_ids.len();
            let mut sequence = decoder.new_sequence(conversation.input_ids.len() + steps);
            let mut logits = vec![decoder
                .feed(&mut sequence, &conversation.input_ids)
                .expect("prefill alone")];
            for step in 0..steps - 1 {
                let next = argmax(&logits[step]);
                logits.push(decoder.feed(&mut sequence, &[next]).expect("decode alone"));
            }
            logits
        })
        .collect();
    let mut sequences: Vec<_> = conversations
        .iter()
        .map(|c| decoder.new_sequence(c.input_ids.len() + c.greedy_ids.len()))
        .collect();
    let mut generated: Vec<Vec<u32>> = vec![Vec::new(); conversations.len()];
    let joins_at = |index: usize| 2 * index;
    let mut step = 0;
    while generated
        .iter()
        .zip(conversations)
        .any(|(ids, c)| ids.len() < c.greedy_ids.len())
    {
        let mut members = Vec::new();
        let mut inputs: Vec<Vec<u32>> = Vec::new();
        for (index, conversation) in conversations.iter().enumerate() {
            if step < joins_at(index) || generated[index].len() >= conversation.greedy_ids.len() {
                continue;
            }
            members.push(index);
            inputs.push(match generated[index].last() {
                None => conversation.input_ids.clone(),
                Some(&last) => vec![last],
            });
        }
        let mut feeds: Vec<Feed<'_>> = Vec::new();
        for (index, sequence) in sequences.iter_mut().enumerate() {
            if let Some(at) = members.iter().position(|&member| member == index) {
                feeds.push(Feed {
                    sequence,
                    tokens: &inputs[at],
                });
            }
        }
        let logits = decoder.feed_batch(&mut feeds).expect("batched feed");
        for (&index, logits) in members.iter().zip(&logits) {
            let at = generated[index].len();
            assert_close(
                logits,
                &alone[index][at],
                tolerance,
                &format!("{label} {} batched step {at}", conversations[index].id),
            );
            generated[index].push(argmax(logits));
        }
        step += 1;
    }
    for (ids, conversation) in generated.iter().zip(conversations) {
        assert_eq!(
            ids, &conversation.greedy_ids,
            "{label} {} batched greedy ids",
            conversation.id
        );
    }
}

/// inv_freq and attention_scaling against transformers' values (to ~1e-7 relative).
fn check_rope(model: &str) {
    let golden = golden(model);
    let text = std::fs::read_to_string(fixtures_dir().join(model).join("config.json"))
        .expect("config.json");
    let config = DecoderConfig::from_hf_json(&text, "config.json").expect("config");
    let expected = &golden.model.rope;
    let cases = match (
        &expected.inv_freq,
        &expected.inv_freq_short,
        &expected.inv_freq_long,
    ) {
        (Some(inv_freq), _, _) => vec![(FactorSet::Short, inv_freq)],
        (None, Some(short), Some(long)) => vec![(FactorSet::Short, short), (FactorSet::Long, long)],
        _ => panic!("{model}: golden rope block without inv_freq"),
    };
    for (set, expected_inv_freq) in cases {
        let actual = rope::inverse_frequencies(&config, set);
        assert_eq!(actual.len(), expected_inv_freq.len(), "{model} {set:?}");
        for (i, (a, e)) in actual.iter().zip(expected_inv_freq).enumerate() {
            let relative = ((a - e) / e).abs();
            assert!(
                relative <= 2e-7,
                "{model} {set:?} inv_freq[{i}]: {a:e} vs transformers {e:e}"
            );
        }
    }
    let scaling = rope::attention_scaling(&config);
    assert!(
        (scaling - expected.attention_scaling).abs() <= 1e-12,
        "{model}: attention scaling {scaling} vs {}",
        expected.attention_scaling
    );
}

/// All transformers checks for one Hugging Face fixture.
fn check_hf_model(model: &str) {
    let decoder = load_hf(model);
    let golden = golden(model);
    check_last_logits(&decoder, &golden, model);
    check_position_logits(&decoder, &golden, model);
    check_greedy(&decoder, &golden, model);
    check_token_by_token(&decoder, &golden, model);
    check_batched(&decoder, &golden, BATCH_TOLERANCE, model);
}

/// Batched against unbatched on the same engine: the same computation, rows grouped
/// differently, so only float rounding differs.
const BATCH_TOLERANCE: f32 = 1e-5;

#[test]
fn tiny_phi4_matches_transformers() {
    check_hf_model("tiny-phi4");
}

#[test]
fn tiny_phi35_longrope_matches_transformers() {
    check_hf_model("tiny-phi35-longrope");
}

#[test]
fn tiny_llama32_matches_transformers() {
    check_hf_model("tiny-llama32");
}

#[test]
fn tiny_qwen25_matches_transformers() {
    check_hf_model("tiny-qwen25");
}

/// Prompts split into chunks (here 7 positions, across LongRoPE's switch too) give the same
/// logits as one pass.
#[test]
fn chunked_prefill_matches_transformers() {
    for model in ["tiny-phi35-longrope", "tiny-qwen25"] {
        let decoder = load_hf(model).with_prefill_chunk(7);
        let golden = golden(model);
        let label = format!("{model} in chunks of 7");
        check_last_logits(&decoder, &golden, &label);
        check_position_logits(&decoder, &golden, &label);
    }
}

/// Computing in the stored half-precision dtype: transformers itself moves these logits by
/// 2.5e-2 (phi-4 in bf16) and 1.1e-2 (Qwen2.5 in f16) from its f32 reference (fixtures README,
/// "Observed tolerances"); allow twice that.
#[test]
fn half_precision_compute_stays_near_f32() {
    for (model, dtype, bound) in [
        ("tiny-phi4", DType::BF16, 5e-2),
        ("tiny-qwen25", DType::F16, 2.5e-2),
    ] {
        let decoder = Decoder::from_hf_dir(&fixtures_dir().join(model), &Device::Cpu, dtype, None)
            .unwrap_or_else(|e| panic!("cannot load {model}: {e}"));
        check_last_logits_within(
            &decoder,
            &golden(model),
            bound,
            &format!("{model} in {dtype:?}"),
        );
    }
}

#[test]
fn rope_frequencies_match_transformers() {
    for model in [
        "tiny-phi4",
        "tiny-phi35-longrope",
        "tiny-llama32",
        "tiny-qwen25",
    ] {
        check_rope(model);
    }
}

/// Conversation 1 of the LongRoPE model starts short and crosses the original context while
/// generating; only recomputing the cache with the long factors (as `generate()` does) gives the
/// golden ids, which differ from those of a plain KV-cache loop.
#[test]
fn longrope_recomputes_the_cache_when_crossing_the_original_context() {
    let golden = golden("tiny-phi35-longrope");
    let conversation = &golden.conversations[1];
    assert!(
        conversation.input_ids.len() < 24,
        "the case must start with short factors"
    );
    let plain_loop = conversation
        .kv_cache_loop_without_recompute
        .as_ref()
        .expect("kv_cache_loop_without_recompute");
    assert_ne!(&conversation.greedy_ids, plain_loop);
    let decoder = load_hf("tiny-phi35-longrope");
    let ids = greedy(&decoder, &conversation.input_ids, 24);
    assert_eq!(ids, conversation.greedy_ids);
}

#[test]
fn gguf_f32_matches_transformers() {
    let decoder = load_gguf(&fixtures_dir().join("tiny-phi4-gguf/model-f32.gguf"));
    let golden = golden("tiny-phi4");
    let label = "tiny-phi4-gguf f32";
    check_last_logits(&decoder, &golden, label);
    check_position_logits(&decoder, &golden, label);
    check_greedy(&decoder, &golden, label);

    // And llama.cpp's own run of the same file (F32 KV cache).
    let reference = golden_gguf();
    for conversation in &reference.runs["f32"].conversations {
        let input = &golden
            .conversations
            .iter()
            .find(|c| c.id == conversation.id)
            .expect("conversation")
            .input_ids;
        let mut sequence = decoder.new_sequence(input.len());
        let logits = decoder.feed(&mut sequence, input).expect("prefill");
        let expected = conversation.last_logits.as_ref().expect("last_logits");
        assert_close(
            &logits,
            expected,
            F32_TOLERANCE,
            &format!("{label} {} vs llama.cpp", conversation.id),
        );
    }
}

/// Teacher-forced along a reference greedy path: at every step the reference's token is our
/// argmax, or within `near_tie` of our top logit (where two engines' rounding may pick either).
fn check_greedy_path_near_ties(
    decoder: &Decoder,
    prompt: &[u32],
    reference: &[u32],
    near_tie: f32,
    what: &str,
) {
    let mut sequence = decoder.new_sequence(prompt.len() + reference.len());
    let mut logits = decoder.feed(&mut sequence, prompt).expect("prefill");
    for (step, &expected) in reference.iter().enumerate() {
        let ours = argmax(&logits);
        let shortfall = logits[ours as usize] - logits[expected as usize];
        assert!(
            shortfall <= near_tie,
            "{what}: step {step}: reference token {expected} is {shortfall} below our choice {ours}"
        );
        if step + 1 < reference.len() {
            logits = decoder
                .feed(&mut sequence, &[expected])
                .expect("decode step");
        }
    }
}

/// The Q8_0 path: candle's quantized matmul quantizes activations as llama.cpp does, so the
/// reference is llama.cpp's Q8_0 run (`runs.q8_0`, F32 KV cache).
fn check_against_llama_cpp_q8_0(decoder: &Decoder, label: &str) {
    let golden = golden("tiny-phi4");
    let reference = golden_gguf();
    let input_of = |id: &str| {
        &golden
            .conversations
            .iter()
            .find(|c| c.id == id)
            .expect("conversation")
            .input_ids
    };
    for conversation in &reference.runs["q8_0"].conversations {
        let input = input_of(&conversation.id);
        let mut sequence = decoder.new_sequence(input.len());
        let logits = decoder.feed(&mut sequence, input).expect("prefill");
        let expected = conversation.last_logits.as_ref().expect("last_logits");
        assert_close(
            &logits,
            expected,
            ACTIVATION_ROUNDING_TOLERANCE,
            &format!("{label} {} vs llama.cpp q8_0", conversation.id),
        );
        check_greedy_path_near_ties(
            decoder,
            input,
            &conversation.greedy_ids,
            2.0 * ACTIVATION_ROUNDING_TOLERANCE,
            &format!("{label} {} along llama.cpp's greedy path", conversation.id),
        );
        // Exact greedy ids where llama.cpp's are stable: the same as transformers' on the f32
        // weights and on the dequantized Q8_0 weights, so neither weight nor activation
        // rounding moves them. Elsewhere top-2 margins fall below the rounding differences
        // (down to 4e-4) and engines legitimately diverge.
        let dequantized = reference
            .transformers_q8_0_dequantized
            .conversations
            .iter()
            .find(|c| c.id == conversation.id)
            .expect("conversation");
        let f32_ids = &golden
            .conversations
            .iter()
            .find(|c| c.id == conversation.id)
            .expect("conversation")
            .greedy_ids;
        if conversation.greedy_ids == dequantized.greedy_ids && &conversation.greedy_ids == f32_ids
        {
            let ids = greedy(decoder, input, conversation.greedy_ids.len());
            assert_eq!(
                ids, conversation.greedy_ids,
                "{label} {} greedy ids vs llama.cpp q8_0",
                conversation.id
            );
        }
    }
}

/// The Q8_0 file with its weights dequantized: the float computation transformers did on the
/// same dequantized weights (`transformers_q8_0_dequantized`), at f32 tolerance.
#[test]
fn gguf_q8_0_dequantized_matches_transformers() {
    let path = fixtures_dir().join("tiny-phi4-gguf/model-q8_0.gguf");
    let (config, weights) = ModelWeights::from_gguf(&path).expect("open gguf");
    let decoder =
        Decoder::load(config, weights.dequantized(), &Device::Cpu, DType::F32).expect("load");
    let golden = golden("tiny-phi4");
    let reference = golden_gguf();
    for conversation in &reference.transformers_q8_0_dequantized.conversations {
        let input = &golden
            .conversations
            .iter()
            .find(|c| c.id == conversation.id)
            .expect("conversation")
            .input_ids;
        let mut sequence = decoder.new_sequence(input.len());
        let logits = decoder.feed(&mut sequence, input).expect("prefill");
        let expected = conversation.last_logits.as_ref().expect("last_logits");
        let label = format!(
            "tiny-phi4-gguf q8_0 dequantized {} vs transformers",
            conversation.id
        );
        assert_close(&logits, expected, F32_TOLERANCE, &label);
        assert_eq!(
            greedy(&decoder, input, 24),
            conversation.greedy_ids,
            "{label}: greedy ids"
        );
    }
}

#[test]
fn gguf_q8_0_matches_llama_cpp() {
    let decoder = load_gguf(&fixtures_dir().join("tiny-phi4-gguf/model-q8_0.gguf"));
    check_against_llama_cpp_q8_0(&decoder, "tiny-phi4-gguf q8_0");
}

/// A prefill runs the last block's MLP only for the rows whose logits are wanted (as llama.cpp
/// does); the last position's logits equal, bit for bit, the last row of every position's
/// logits, where every row goes through the MLP.
#[test]
fn the_last_blocks_mlp_for_the_last_row_alone_gives_the_same_logits() {
    let decoder = load_gguf(&fixtures_dir().join("tiny-phi4-gguf/model-q8_0.gguf"));
    for conversation in &golden("tiny-phi4").conversations {
        let every = decoder
            .logits_all(&conversation.input_ids)
            .expect("logits_all");
        let mut sequence = decoder.new_sequence(conversation.input_ids.len());
        let last = decoder
            .feed(&mut sequence, &conversation.input_ids)
            .expect("prefill");
        assert_eq!(Some(&last), every.last(), "{}", conversation.id);
    }
}

/// Batching on quantized weights, through versus's kernels: every row is computed the same way
/// whatever the batch, so batched logits equal unbatched ones.
#[test]
fn batched_decoding_on_quantized_weights_equals_unbatched() {
    let golden = golden("tiny-phi4");
    let q8_0 = load_gguf(&fixtures_dir().join("tiny-phi4-gguf/model-q8_0.gguf"));
    let q4k = load_hf_quantized("tiny-phi4", Some(Quantization::Q4K));
    for (decoder, label) in [(q8_0, "q8_0 gguf"), (q4k, "q4k on load")] {
        // Their own greedy ids, which the batched run must reproduce.
        let mut own = Golden {
            model: GoldenModel {
                rope: GoldenRope {
                    attention_scaling: 1.0,
                    inv_freq: None,
                    inv_freq_short: None,
                    inv_freq_long: None,
                },
            },
            conversations: Vec::new(),
        };
        for conversation in &golden.conversations {
            own.conversations.push(Conversation {
                id: conversation.id.clone(),
                input_ids: conversation.input_ids.clone(),
                greedy_ids: greedy(&decoder, &conversation.input_ids, 12),
                last_logits: Vec::new(),
                position_logits: None,
                kv_cache_loop_without_recompute: None,
            });
        }
        check_batched(&decoder, &own, BATCH_TOLERANCE, label);
    }
}

/// Quantizing the safetensors to Q8_0 on load gives the very weights llama.cpp's converter
/// wrote to model-q8_0.gguf (same rounding, embeddings and output included), so the same
/// logits as that file.
#[test]
fn quantize_on_load_q8_0_equals_the_q8_0_gguf() {
    let quantized = load_hf_quantized("tiny-phi4", Some(Quantization::Q8_0));
    let gguf = load_gguf(&fixtures_dir().join("tiny-phi4-gguf/model-q8_0.gguf"));
    for conversation in &golden("tiny-phi4").conversations {
        let from_safetensors = quantized
            .logits_all(&conversation.input_ids)
            .expect("quantized");
        let from_gguf = gguf.logits_all(&conversation.input_ids).expect("gguf");
        let last = from_gguf.len() - 1;
        assert_close(
            &from_safetensors[last],
            &from_gguf[last],
            1e-6,
            &format!(
                "tiny-phi4 quantized on load vs q8_0 gguf {}",
                conversation.id
            ),
        );
    }
    check_against_llama_cpp_q8_0(&quantized, "tiny-phi4 quantized on load to q8_0");
}

/// Q4_K needs rows of 256: the tiny models' 128-wide rows fall back to Q8_0 and only phi-4's
/// down projection (256 wide) is Q4_K. A smoke test that the path runs and stays near f32: 4-bit
/// weights move these logits (at most ~2.5 in magnitude) by 0.2 to 0.3.
#[test]
fn quantize_on_load_q4k_runs() {
    let decoder = load_hf_quantized("tiny-phi4", Some(Quantization::Q4K));
    for conversation in &golden("tiny-phi4").conversations {
        let mut sequence = decoder.new_sequence(conversation.input_ids.len());
        let logits = decoder
            .feed(&mut sequence, &conversation.input_ids)
            .expect("prefill");
        let diff = max_abs_diff(&logits, &conversation.last_logits, "q4k");
        eprintln!(
            "tiny-phi4 quantized on load to q4k {}: max |Δ| vs f32 = {diff:.3e}",
            conversation.id
        );
        assert!(diff < 0.5, "q4k logits drift {diff}");
    }
}

/// Writes a GGUF the way llama.cpp's convert_hf_to_gguf does for `llama` or `qwen2` (F32
/// tensors, llama q/k rows permuted, Llama 3 scaling as a `rope_freqs` tensor) from a fixture's
/// safetensors, so the loader's handling of those architectures is checked against transformers.
fn write_gguf_like_llama_cpp(model: &str, architecture: &str, matrix_type: GgmlDType, path: &Path) {
    let dir = fixtures_dir().join(model);
    let text = std::fs::read_to_string(dir.join("config.json")).expect("config.json");
    let config = DecoderConfig::from_hf_json(&text, "config.json").expect("config");
    let tensors = candle_core::safetensors::load(dir.join("model.safetensors"), &Device::Cpu)
        .expect("safetensors");

    // llama.cpp's `permute`: reshape(n_head, 2, d/2, in).swapaxes(1, 2).
    let permute = |tensor: &Tensor, heads: usize| -> Tensor {
        let (rows, columns) = tensor.dims2().expect("2-D");
        tensor
            .reshape((heads, 2, rows / heads / 2, columns))
            .and_then(|t| t.transpose(1, 2))
            .and_then(|t| t.reshape((rows, columns)))
            .expect("permute")
    };
    let mut gguf_tensors: Vec<(String, QTensor)> = Vec::new();
    for (name, tensor) in &tensors {
        let tensor = tensor.to_dtype(DType::F32).expect("f32");
        let tensor = if architecture == "llama" && name.ends_with("q_proj.weight") {
            permute(&tensor, config.num_heads)
        } else if architecture == "llama" && name.ends_with("k_proj.weight") {
            permute(&tensor, config.num_kv_heads)
        } else {
            tensor
        };
        let gguf = versus_engine::weights::gguf_name(name)
            .unwrap_or_else(|| panic!("no GGUF name for {name}"));
        // 2-D weights in `matrix_type` where their rows fill its blocks (llama.cpp falls back
        // the same way); norms and biases stay F32.
        let row = tensor.dims().last().copied().unwrap_or(0);
        let dtype = if tensor.rank() == 2 && row % matrix_type.block_size() == 0 {
            matrix_type
        } else {
            GgmlDType::F32
        };
        gguf_tensors.push((gguf, QTensor::quantize(&tensor, dtype).expect("qtensor")));
    }
    if let versus_engine::config::RopeScaling::Llama3 {
        factor,
        low_freq_factor,
        high_freq_factor,
        original_max_position_embeddings,
    } = config.rope_scaling
    {
        // convert_hf_to_gguf's LlamaModel.generate_extra_tensors.
        let old = original_max_position_embeddings as f64;
        let (low_wavelength, high_wavelength) = (old / low_freq_factor, old / high_freq_factor);
        let factors: Vec<f32> = (0..config.head_dim / 2)
            .map(|i| {
                let exponent = f64::from((2 * i) as f32 / config.head_dim as f32);
                let frequency = f64::from(1.0f32 / config.rope_theta.powf(exponent) as f32);
                let wavelength = 2.0 * std::f64::consts::PI / frequency;
                if wavelength < high_wavelength {
                    1.0
                } else if wavelength > low_wavelength {
                    factor as f32
                } else {
                    let smooth =
                        (old / wavelength - low_freq_factor) / (high_freq_factor - low_freq_factor);
                    (1.0 / ((1.0 - smooth) / factor + smooth)) as f32
                }
            })
            .collect();
        let factors = Tensor::new(factors.as_slice(), &Device::Cpu).expect("factors");
        gguf_tensors.push((
            "rope_freqs.weight".to_string(),
            QTensor::quantize(&factors, GgmlDType::F32).expect("qtensor"),
        ));
    }

    use gguf_file::Value;
    let key = |name: &str| format!("{architecture}.{name}");
    let mut metadata: Vec<(String, Value)> = vec![
        (
            "general.architecture".to_string(),
            Value::String(architecture.to_string()),
        ),
        (
            key("context_length"),
            Value::U32(config.max_position_embeddings as u32),
        ),
        (
            key("embedding_length"),
            Value::U32(config.hidden_size as u32),
        ),
        (key("block_count"), Value::U32(config.num_layers as u32)),
        (
            key("feed_forward_length"),
            Value::U32(config.intermediate_size as u32),
        ),
        (
            key("attention.head_count"),
            Value::U32(config.num_heads as u32),
        ),
        (
            key("attention.head_count_kv"),
            Value::U32(config.num_kv_heads as u32),
        ),
        (
            key("attention.key_length"),
            Value::U32(config.head_dim as u32),
        ),
        (
            key("attention.value_length"),
            Value::U32(config.head_dim as u32),
        ),
        (
            key("rope.dimension_count"),
            Value::U32(config.head_dim as u32),
        ),
        (key("rope.freq_base"), Value::F32(config.rope_theta as f32)),
        (
            key("attention.layer_norm_rms_epsilon"),
            Value::F32(config.rms_norm_eps as f32),
        ),
        (key("vocab_size"), Value::U32(config.vocab_size as u32)),
    ];
    if let Some(eos) = config.eos_token_ids.first() {
        metadata.push(("tokenizer.ggml.eos_token_id".to_string(), Value::U32(*eos)));
    }
    let metadata_refs: Vec<(&str, &Value)> =
        metadata.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> =
        gguf_tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let mut file = std::fs::File::create(path).expect("create gguf");
    gguf_file::write(&mut file, &metadata_refs, &tensor_refs).expect("write gguf");
}

fn check_converted_gguf(model: &str, architecture: &str) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("model.gguf");
    write_gguf_like_llama_cpp(model, architecture, GgmlDType::F32, &path);
    let decoder = load_gguf(&path);
    let golden = golden(model);
    let label = format!("{model} as {architecture} gguf");
    check_last_logits(&decoder, &golden, &label);
    check_greedy(&decoder, &golden, &label);
}

#[test]
fn llama_gguf_with_permuted_qk_and_rope_freqs_matches_transformers() {
    check_converted_gguf("tiny-llama32", "llama");
}

#[test]
fn qwen2_gguf_with_biases_and_tied_output_matches_transformers() {
    check_converted_gguf("tiny-qwen25", "qwen2");
}

/// The quantized tensor types llama.cpp files use load and run: each file's quantized
/// computation stays within activation-rounding noise of the float computation on the same
/// weights dequantized (the tiny models' 128-wide rows take 32-wide blocks; only phi-4's
/// 256-wide down projection takes the K-quants' 256-wide super-blocks).
#[test]
fn gguf_quantized_tensor_types_load() {
    let golden = golden("tiny-phi4");
    let conversation = &golden.conversations[0];
    for matrix_type in [
        GgmlDType::Q4_0,
        GgmlDType::Q8_0,
        GgmlDType::Q4K,
        GgmlDType::Q5K,
        GgmlDType::Q6K,
        GgmlDType::F16,
    ] {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("model.gguf");
        write_gguf_like_llama_cpp("tiny-phi4", "phi3", matrix_type, &path);
        let quantized = load_gguf(&path);
        let (config, weights) = ModelWeights::from_gguf(&path).expect("open gguf");
        let dequantized =
            Decoder::load(config, weights.dequantized(), &Device::Cpu, DType::F32).expect("load");
        let input = &conversation.input_ids;
        let logits = quantized
            .feed(&mut quantized.new_sequence(input.len()), input)
            .expect("prefill");
        let reference = dequantized
            .feed(&mut dequantized.new_sequence(input.len()), input)
            .expect("prefill");
        let weight_rounding = max_abs_diff(&reference, &conversation.last_logits, "dequantized");
        eprintln!("tiny-phi4 as {matrix_type:?} gguf: weight rounding moves logits by {weight_rounding:.3e}");
        assert_close(
            &logits,
            &reference,
            ACTIVATION_ROUNDING_TOLERANCE,
            &format!("tiny-phi4 as {matrix_type:?} gguf, quantized vs dequantized computation"),
        );
    }
}
