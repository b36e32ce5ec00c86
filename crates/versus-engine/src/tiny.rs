//! Tiny random-weight models for tests and the offline demo: a model folder laid out exactly like a
//! published checkpoint of its family (config, tokenizer, chat template, safetensors with HF tensor
//! names), small enough to run in milliseconds. The tokenizers and templates are real ones (trained
//! for the fixture models in `tests/fixtures/models`, with each family's verbatim template),
//! embedded in the binary.

use std::collections::HashMap;
use std::path::Path;

use candle_core::{Device, Tensor};

use crate::error::EngineError;
use crate::sampling::Rng;

/// The families `versus model tiny` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TinyArch {
    /// Phi-4's layout: fused qkv and gate/up projections, untied embeddings.
    Phi3,
    /// Llama 3.2's layout: llama3 RoPE scaling, tied embeddings.
    Llama,
    /// Qwen2.5's layout: q/k/v biases, tied embeddings.
    Qwen2,
}

impl TinyArch {
    pub fn parse(name: &str) -> Option<TinyArch> {
        match name {
            "phi3" | "phi4" | "phi" => Some(TinyArch::Phi3),
            "llama" => Some(TinyArch::Llama),
            "qwen2" | "qwen" => Some(TinyArch::Qwen2),
            _ => None,
        }
    }

    /// The asset folder holding the family's config and tokenizer files.
    pub fn asset_name(self) -> &'static str {
        match self {
            TinyArch::Phi3 => "phi3",
            TinyArch::Llama => "llama",
            TinyArch::Qwen2 => "qwen2",
        }
    }

    fn config_json(self) -> &'static str {
        match self {
            TinyArch::Phi3 => include_str!("../assets/tiny/phi3/config.json"),
            TinyArch::Llama => include_str!("../assets/tiny/llama/config.json"),
            TinyArch::Qwen2 => include_str!("../assets/tiny/qwen2/config.json"),
        }
    }

    /// Standard deviation of the random weights, as in the fixture models.
    fn sigma(self) -> f32 {
        match self {
            TinyArch::Phi3 => 0.06,
            TinyArch::Llama | TinyArch::Qwen2 => 0.1,
        }
    }
}

/// Writes a tiny model folder to `out` (created if needed). The same seed writes the same weights.
pub fn write_tiny_model(out: &Path, arch: TinyArch, seed: u64) -> Result<(), EngineError> {
    let io = |path: &Path, e: std::io::Error| EngineError::Io {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    std::fs::create_dir_all(out).map_err(|e| io(out, e))?;
    let mut config: serde_json::Value = serde_json::from_str(arch.config_json())
        .map_err(|e| EngineError::Other(format!("embedded tiny config: {e}")))?;
    // The weights below are written in float32.
    config["torch_dtype"] = serde_json::Value::from("float32");
    let shapes = tensor_shapes(&config, arch)?;

    let files = crate::assets::tiny_tokenizer_files(arch.asset_name()).ok_or_else(|| {
        EngineError::Other(format!("no embedded tokenizer for `{}`", arch.asset_name()))
    })?;
    for (name, text) in files {
        let path = out.join(name);
        crate::files::write_bytes_atomically(&path, text.as_bytes())?;
    }
    let config_path = out.join("config.json");
    let config_text =
        serde_json::to_string_pretty(&config).map_err(|e| EngineError::Other(e.to_string()))?;
    crate::files::write_bytes_atomically(&config_path, (config_text + "\n").as_bytes())?;

    let mut rng = Rng::new(seed);
    let mut tensors = HashMap::new();
    for (name, shape) in shapes {
        let count: usize = shape.iter().product();
        let is_norm = name.ends_with("norm.weight");
        let values: Vec<f32> = (0..count)
            .map(|_| {
                let noise = normal(&mut rng);
                // Norm weights near one (not exactly: an engine that skips them must fail), the rest
                // small around zero.
                if is_norm {
                    1.0 + 0.1 * noise
                } else {
                    arch.sigma() * noise
                }
            })
            .collect();
        let tensor = Tensor::from_vec(values, shape.as_slice(), &Device::Cpu)?;
        tensors.insert(name, tensor);
    }
    let weights_path = out.join("model.safetensors");
    crate::files::write_atomically(&weights_path, |temporary| {
        Ok(candle_core::safetensors::save(&tensors, temporary)?)
    })?;
    Ok(())
}

/// A standard normal draw (Box-Muller).
fn normal(rng: &mut Rng) -> f32 {
    let u1 = rng.next_f64().max(f64::MIN_POSITIVE);
    let u2 = rng.next_f64();
    ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
}

/// Tensor names and shapes of a checkpoint of this family, as transformers saves them.
fn tensor_shapes(
    config: &serde_json::Value,
    arch: TinyArch,
) -> Result<Vec<(String, Vec<usize>)>, EngineError> {
    let get = |field: &str| -> Result<usize, EngineError> {
        config[field]
            .as_u64()
            .map(|v| v as usize)
            .ok_or_else(|| EngineError::Config {
                file: "tiny config.json".into(),
                field: field.into(),
                reason: "missing or not an integer".into(),
            })
    };
    let hidden = get("hidden_size")?;
    let ffn = get("intermediate_size")?;
    let layers = get("num_hidden_layers")?;
    let heads = get("num_attention_heads")?;
    let kv_heads = get("num_key_value_heads")?;
    let vocab = get("vocab_size")?;
    let head_dim = config["head_dim"]
        .as_u64()
        .map(|v| v as usize)
        .unwrap_or(hidden / heads);
    let tied = config["tie_word_embeddings"].as_bool().unwrap_or(false);
    let (q, kv) = (heads * head_dim, kv_heads * head_dim);

    let mut shapes = vec![("model.embed_tokens.weight".to_string(), vec![vocab, hidden])];
    for layer in 0..layers {
        let p = format!("model.layers.{layer}");
        let mut add = |name: &str, shape: Vec<usize>| shapes.push((format!("{p}.{name}"), shape));
        add("input_layernorm.weight", vec![hidden]);
        add("post_attention_layernorm.weight", vec![hidden]);
        add("self_attn.o_proj.weight", vec![hidden, q]);
        add("mlp.down_proj.weight", vec![hidden, ffn]);
        match arch {
            TinyArch::Phi3 => {
                add("self_attn.qkv_proj.weight", vec![q + 2 * kv, hidden]);
                add("mlp.gate_up_proj.weight", vec![2 * ffn, hidden]);
            }
            TinyArch::Llama | TinyArch::Qwen2 => {
                add("self_attn.q_proj.weight", vec![q, hidden]);
                add("self_attn.k_proj.weight", vec![kv, hidden]);
                add("self_attn.v_proj.weight", vec![kv, hidden]);
                add("mlp.gate_proj.weight", vec![ffn, hidden]);
                add("mlp.up_proj.weight", vec![ffn, hidden]);
                if arch == TinyArch::Qwen2 {
                    add("self_attn.q_proj.bias", vec![q]);
                    add("self_attn.k_proj.bias", vec![kv]);
                    add("self_attn.v_proj.bias", vec![kv]);
                }
            }
        }
    }
    shapes.push(("model.norm.weight".to_string(), vec![hidden]));
    if !tied {
        shapes.push(("lm_head.weight".to_string(), vec![vocab, hidden]));
    }
    Ok(shapes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_follow_the_family_layout() {
        let names = |arch: TinyArch| -> Vec<String> {
            let config: serde_json::Value = serde_json::from_str(arch.config_json()).unwrap();
            tensor_shapes(&config, arch)
                .unwrap()
                .into_iter()
                .map(|(n, _)| n)
                .collect()
        };
        let phi = names(TinyArch::Phi3);
        assert!(phi.contains(&"model.layers.1.self_attn.qkv_proj.weight".to_string()));
        assert!(phi.contains(&"lm_head.weight".to_string()));
        let qwen = names(TinyArch::Qwen2);
        assert!(qwen.contains(&"model.layers.0.self_attn.k_proj.bias".to_string()));
        assert!(!qwen.contains(&"lm_head.weight".to_string()), "tied");
        let llama = names(TinyArch::Llama);
        assert!(!llama.iter().any(|n| n.ends_with(".bias")));
    }

    #[test]
    fn normal_draws_have_unit_variance() {
        let mut rng = Rng::new(3);
        let draws: Vec<f32> = (0..20_000).map(|_| normal(&mut rng)).collect();
        let mean = draws.iter().sum::<f32>() / draws.len() as f32;
        let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f32>() / draws.len() as f32;
        assert!(
            mean.abs() < 0.03 && (var - 1.0).abs() < 0.05,
            "{mean} {var}"
        );
    }
}
