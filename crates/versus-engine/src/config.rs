//! Hyper-parameters of a decoder-only model, read from a Hugging Face `config.json` or from the
//! metadata of a llama.cpp GGUF file, in one shape for every family the decoder runs.
//!
//! `config.json` is read the way transformers reads it: the classic layout (`rope_theta` and
//! `rope_scaling` at top level, `"type"` or `"rope_type"`) and the transformers-5 layout
//! (`rope_parameters`) give the same [`DecoderConfig`].

use std::io::{Read, Seek};

use candle_core::quantized::gguf_file;
use serde_json::{Map, Value};

use crate::error::{candle_reason, EngineError};

/// The model families the decoder runs. They differ only in configuration: fused or separate
/// projections, q/k/v biases, tied embeddings and the RoPE variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// `Phi3ForCausalLM`: Phi-3, Phi-3.5, Phi-4 and Phi-4-mini (fused `qkv_proj` and `gate_up_proj`).
    Phi3,
    /// `LlamaForCausalLM`: Llama 3.x, SmolLM2 and other Llama-shaped models.
    Llama,
    /// `Qwen2ForCausalLM`: Qwen2 and Qwen2.5 (q/k/v biases).
    Qwen2,
}

impl Family {
    /// The family of a transformers architecture class name.
    pub fn from_architecture(architecture: &str) -> Option<Family> {
        match architecture {
            "Phi3ForCausalLM" => Some(Family::Phi3),
            "LlamaForCausalLM" => Some(Family::Llama),
            "Qwen2ForCausalLM" => Some(Family::Qwen2),
            _ => None,
        }
    }

    /// The family of a llama.cpp `general.architecture`.
    pub fn from_gguf_architecture(architecture: &str) -> Option<Family> {
        match architecture {
            "phi3" => Some(Family::Phi3),
            "llama" => Some(Family::Llama),
            "qwen2" => Some(Family::Qwen2),
            _ => None,
        }
    }

    /// The transformers class name.
    pub fn architecture(self) -> &'static str {
        match self {
            Family::Phi3 => "Phi3ForCausalLM",
            Family::Llama => "LlamaForCausalLM",
            Family::Qwen2 => "Qwen2ForCausalLM",
        }
    }

    /// llama.cpp's name for the family (`general.architecture`, and the prefix of its keys).
    pub fn gguf_architecture(self) -> &'static str {
        match self {
            Family::Phi3 => "phi3",
            Family::Llama => "llama",
            Family::Qwen2 => "qwen2",
        }
    }
}

/// How rotary position embedding frequencies are derived from `rope_theta`.
#[derive(Debug, Clone, PartialEq)]
pub enum RopeScaling {
    /// `inv_freq[i] = 1 / θ^(2i/d)`.
    Default,
    /// Llama 3.1's smooth interpolation between scaled and unscaled frequencies.
    Llama3 {
        factor: f64,
        low_freq_factor: f64,
        high_freq_factor: f64,
        original_max_position_embeddings: usize,
    },
    /// Phi-3.5 / Phi-4-mini LongRoPE: per-frequency divisors, a short set for sequences up to
    /// `original_max_position_embeddings` and a long set beyond, and an attention factor that
    /// multiplies cos and sin.
    LongRope {
        short_factor: Vec<f64>,
        long_factor: Vec<f64>,
        original_max_position_embeddings: usize,
        attention_factor: f64,
    },
    /// Per-frequency divisors as llama.cpp stores them in a GGUF `rope_freqs` tensor (its
    /// converter turns Llama 3's `llama3` scaling into this): `inv_freq[i] = 1 / (f[i]·θ^(2i/d))`.
    FrequencyFactors { factors: Vec<f64> },
}

/// Everything the decoder needs to know about a model's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct DecoderConfig {
    pub family: Family,
    /// The transformers class name (`Phi3ForCausalLM`, ...), also for GGUF files.
    pub architecture: String,
    /// Rows of the embedding and of the logits (config `vocab_size`; may exceed the tokenizer).
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_layers: usize,
    pub num_heads: usize,
    pub num_kv_heads: usize,
    pub head_dim: usize,
    /// Leading dimensions of each head that RoPE rotates: `head_dim · partial_rotary_factor`
    /// (Phi-4-mini rotates 96 of 128); the rest pass through unchanged.
    pub rotary_dim: usize,
    pub rms_norm_eps: f64,
    pub rope_theta: f64,
    pub rope_scaling: RopeScaling,
    pub max_position_embeddings: usize,
    /// Phi-3's sliding attention window: a query attends to the keys less than this many
    /// positions behind it. `None` for full attention.
    pub sliding_window: Option<usize>,
    pub tie_word_embeddings: bool,
    /// Biases on the q, k and v projections (always on for Qwen2; `attention_bias` for Llama,
    /// where it also adds one to the output projection).
    pub attention_bias: bool,
    pub bos_token_id: Option<u32>,
    pub eos_token_ids: Vec<u32>,
}

impl DecoderConfig {
    /// Reads a Hugging Face `config.json`. `file` names the file in error messages.
    pub fn from_hf_json(text: &str, file: &str) -> Result<DecoderConfig, EngineError> {
        let root: Value = serde_json::from_str(text).map_err(|error| EngineError::Config {
            file: file.to_string(),
            field: "(json)".to_string(),
            reason: error.to_string(),
        })?;
        let object = root.as_object().ok_or_else(|| EngineError::Config {
            file: file.to_string(),
            field: "(json)".to_string(),
            reason: "expected a JSON object".to_string(),
        })?;
        let fields = JsonFields { object, file };

        let architecture = match object.get("architectures") {
            Some(Value::Array(names)) => match names.first() {
                Some(Value::String(name)) => name.clone(),
                _ => return Err(fields.invalid("architectures", "expected a list of class names")),
            },
            Some(_) => {
                return Err(fields.invalid("architectures", "expected a list of class names"))
            }
            None => return Err(fields.invalid("architectures", "missing")),
        };
        let family = Family::from_architecture(&architecture).ok_or_else(|| {
            EngineError::UnsupportedArchitecture {
                file: file.to_string(),
                architecture: architecture.clone(),
            }
        })?;

        let hidden_size = fields.usize("hidden_size")?;
        let num_heads = fields.usize("num_attention_heads")?;
        let num_kv_heads = fields
            .opt_usize("num_key_value_heads")?
            .unwrap_or(num_heads);
        // `head_dim` is explicit in Llama 3.2 and SmolLM2 configs, sometimes `null`, and otherwise
        // hidden_size / num_heads as in transformers.
        let head_dim = match fields.opt_usize("head_dim")? {
            Some(head_dim) => head_dim,
            None if num_heads > 0 => hidden_size / num_heads,
            None => return Err(fields.invalid("num_attention_heads", "must be positive")),
        };
        let partial_rotary_factor = fields.opt_f64("partial_rotary_factor")?.unwrap_or(1.0);
        let rotary_dim = (head_dim as f64 * partial_rotary_factor) as usize;
        let max_position_embeddings = fields.usize("max_position_embeddings")?;

        // transformers 5 writes `rope_parameters` (holding `rope_theta` too); published
        // checkpoints write `rope_theta` and `rope_scaling` at top level.
        let (rope_object, rope_field) = match object.get("rope_parameters") {
            Some(Value::Object(parameters)) => (Some(parameters), "rope_parameters"),
            Some(Value::Null) | None => match object.get("rope_scaling") {
                Some(Value::Object(scaling)) => (Some(scaling), "rope_scaling"),
                Some(Value::Null) | None => (None, "rope_scaling"),
                Some(_) => return Err(fields.invalid("rope_scaling", "expected an object or null")),
            },
            Some(_) => return Err(fields.invalid("rope_parameters", "expected an object")),
        };
        let rope_theta = match rope_object.and_then(|rope| rope.get("rope_theta")) {
            Some(value) => number(value).ok_or_else(|| {
                fields.invalid(&format!("{rope_field}.rope_theta"), "expected a number")
            })?,
            None => fields.opt_f64("rope_theta")?.unwrap_or(10_000.0),
        };
        let rope_scaling = match rope_object {
            None => RopeScaling::Default,
            Some(rope) => parse_rope_scaling(
                JsonFields { object: rope, file },
                rope_field,
                &fields,
                max_position_embeddings,
                rotary_dim,
            )?,
        };

        let sliding_window = match family {
            // Qwen2 configs carry a `sliding_window` that only applies with `use_sliding_window`
            // (off in every Qwen2.5 release), and Llama has none.
            Family::Qwen2 if fields.opt_bool("use_sliding_window")?.unwrap_or(false) => {
                fields.opt_usize("sliding_window")?
            }
            Family::Phi3 => fields.opt_usize("sliding_window")?,
            Family::Qwen2 | Family::Llama => None,
        };
        let attention_bias = match family {
            // Qwen2's q/k/v projections always carry biases; the config has no switch for it.
            Family::Qwen2 => true,
            Family::Llama => fields.opt_bool("attention_bias")?.unwrap_or(false),
            Family::Phi3 => false,
        };
        if family == Family::Llama && fields.opt_bool("mlp_bias")?.unwrap_or(false) {
            return Err(fields.invalid("mlp_bias", "MLP biases are not supported"));
        }
        if let Some(activation) = fields.opt_str("hidden_act")? {
            if activation != "silu" {
                return Err(fields.invalid(
                    "hidden_act",
                    &format!("`{activation}` is not supported; the decoder implements silu"),
                ));
            }
        }

        let eos_token_ids = match object.get("eos_token_id") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(ids)) => ids
                .iter()
                .map(|id| {
                    token_id(id).ok_or_else(|| fields.invalid("eos_token_id", "expected token ids"))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(id) => vec![token_id(id)
                .ok_or_else(|| fields.invalid("eos_token_id", "expected a token id"))?],
        };
        let bos_token_id = match object.get("bos_token_id") {
            None | Some(Value::Null) => None,
            Some(id) => Some(
                token_id(id)
                    .ok_or_else(|| fields.invalid("bos_token_id", "expected a token id"))?,
            ),
        };

        let config = DecoderConfig {
            family,
            architecture,
            vocab_size: fields.usize("vocab_size")?,
            hidden_size,
            intermediate_size: fields.usize("intermediate_size")?,
            num_layers: fields.usize("num_hidden_layers")?,
            num_heads,
            num_kv_heads,
            head_dim,
            rotary_dim,
            // transformers' per-family defaults when the config leaves the field out.
            rms_norm_eps: fields.opt_f64("rms_norm_eps")?.unwrap_or(match family {
                Family::Phi3 => 1e-5,
                Family::Llama | Family::Qwen2 => 1e-6,
            }),
            rope_theta,
            rope_scaling,
            max_position_embeddings,
            sliding_window,
            tie_word_embeddings: fields.opt_bool("tie_word_embeddings")?.unwrap_or(false),
            attention_bias,
            bos_token_id,
            eos_token_ids,
        };
        config.validate(file)?;
        Ok(config)
    }

    /// Reads the hyper-parameters of a llama.cpp GGUF file (`phi3`, `llama` or `qwen2`). The
    /// reader is needed for the RoPE factor tensors llama.cpp stores beside the weights
    /// (`rope_factors_long`/`rope_factors_short` for LongRoPE, `rope_freqs` for Llama 3).
    pub fn from_gguf<R: Read + Seek>(
        content: &gguf_file::Content,
        reader: &mut R,
        file: &str,
    ) -> Result<DecoderConfig, EngineError> {
        let metadata = GgufFields { content, file };
        let gguf_architecture = metadata.string("general.architecture")?;
        let family = Family::from_gguf_architecture(&gguf_architecture).ok_or_else(|| {
            EngineError::UnsupportedArchitecture {
                file: file.to_string(),
                architecture: format!("{gguf_architecture} (GGUF)"),
            }
        })?;
        let key = |name: &str| format!("{gguf_architecture}.{name}");

        let hidden_size = metadata.usize(&key("embedding_length"))?;
        let num_heads = metadata.usize(&key("attention.head_count"))?;
        let num_kv_heads = metadata
            .opt_usize(&key("attention.head_count_kv"))?
            .unwrap_or(num_heads);
        if num_heads == 0 {
            return Err(metadata.invalid(&key("attention.head_count"), "must be positive"));
        }
        let head_dim = metadata
            .opt_usize(&key("attention.key_length"))?
            .unwrap_or(hidden_size / num_heads);
        let rotary_dim = metadata
            .opt_usize(&key("rope.dimension_count"))?
            .unwrap_or(head_dim);
        let max_position_embeddings = metadata.usize(&key("context_length"))?;
        let rope_theta = metadata
            .opt_f64(&key("rope.freq_base"))?
            .unwrap_or(10_000.0);

        let vocab_size = match metadata.opt_usize(&key("vocab_size"))? {
            Some(vocab_size) => vocab_size,
            None => match content.tensor_infos.get("token_embd.weight") {
                Some(info) => info.shape.dims().first().copied().unwrap_or(0),
                None => {
                    return Err(EngineError::Tensor {
                        file: file.to_string(),
                        name: "token_embd.weight".to_string(),
                        reason: "missing".to_string(),
                    })
                }
            },
        };

        let rope_scaling = if content
            .tensor_infos
            .contains_key("rope_factors_long.weight")
        {
            let long_factor =
                read_factor_tensor(content, reader, "rope_factors_long.weight", file)?;
            let short_factor =
                read_factor_tensor(content, reader, "rope_factors_short.weight", file)?;
            let original_max_position_embeddings = metadata
                .opt_usize(&key("rope.scaling.original_context_length"))?
                .ok_or_else(|| {
                    metadata.invalid(&key("rope.scaling.original_context_length"), "missing")
                })?;
            let attention_factor = match metadata.opt_f64(&key("rope.scaling.attn_factor"))? {
                Some(factor) => factor,
                None => longrope_attention_factor(
                    max_position_embeddings,
                    original_max_position_embeddings,
                ),
            };
            RopeScaling::LongRope {
                short_factor,
                long_factor,
                original_max_position_embeddings,
                attention_factor,
            }
        } else if content.tensor_infos.contains_key("rope_freqs.weight") {
            RopeScaling::FrequencyFactors {
                factors: read_factor_tensor(content, reader, "rope_freqs.weight", file)?,
            }
        } else {
            match metadata.opt_string(&key("rope.scaling.type"))?.as_deref() {
                None | Some("none") => RopeScaling::Default,
                Some(other) => {
                    return Err(metadata.invalid(
                        &key("rope.scaling.type"),
                        &format!("RoPE scaling `{other}` is not supported"),
                    ))
                }
            }
        };

        // llama.cpp marks the end of a turn with eos, and Llama 3 also with eot/eom.
        let mut eos_token_ids = Vec::new();
        for name in [
            "tokenizer.ggml.eos_token_id",
            "tokenizer.ggml.eot_token_id",
            "tokenizer.ggml.eom_token_id",
        ] {
            if let Some(id) = metadata.opt_usize(name)? {
                let id = u32::try_from(id)
                    .map_err(|_| metadata.invalid(name, "token id out of range"))?;
                if !eos_token_ids.contains(&id) {
                    eos_token_ids.push(id);
                }
            }
        }
        let bos_token_id = match metadata.opt_usize("tokenizer.ggml.bos_token_id")? {
            Some(id) => Some(u32::try_from(id).map_err(|_| {
                metadata.invalid("tokenizer.ggml.bos_token_id", "token id out of range")
            })?),
            None => None,
        };

        let config = DecoderConfig {
            family,
            architecture: family.architecture().to_string(),
            vocab_size,
            hidden_size,
            intermediate_size: metadata.usize(&key("feed_forward_length"))?,
            num_layers: metadata.usize(&key("block_count"))?,
            num_heads,
            num_kv_heads,
            head_dim,
            rotary_dim,
            rms_norm_eps: metadata
                .opt_f64(&key("attention.layer_norm_rms_epsilon"))?
                .unwrap_or(1e-5),
            rope_theta,
            rope_scaling,
            max_position_embeddings,
            // llama.cpp writes 0 for "no window".
            sliding_window: metadata
                .opt_usize(&key("attention.sliding_window"))?
                .filter(|&window| window > 0),
            // The converter leaves `output.weight` out of a tied model.
            tie_word_embeddings: !content.tensor_infos.contains_key("output.weight"),
            // Qwen2 ships q/k/v biases; a Llama GGUF has them only if the checkpoint had them.
            attention_bias: family == Family::Qwen2
                || content.tensor_infos.contains_key("blk.0.attn_q.bias"),
            bos_token_id,
            eos_token_ids,
        };
        config.validate(file)?;
        Ok(config)
    }

    /// Number of parameters, embeddings (and an untied output matrix) included.
    pub fn parameter_count(&self) -> u64 {
        let hidden = self.hidden_size as u64;
        let q_width = (self.num_heads * self.head_dim) as u64;
        let kv_width = (self.num_kv_heads * self.head_dim) as u64;
        let mut attention = hidden * q_width + 2 * hidden * kv_width + q_width * hidden;
        if self.attention_bias {
            attention += q_width + 2 * kv_width;
            if self.family == Family::Llama {
                attention += hidden;
            }
        }
        let mlp = 3 * hidden * self.intermediate_size as u64;
        let norms = 2 * hidden;
        let embeddings = self.vocab_size as u64 * hidden;
        let output = if self.tie_word_embeddings {
            0
        } else {
            embeddings
        };
        embeddings + output + self.num_layers as u64 * (attention + mlp + norms) + hidden
    }

    /// Whether the output projection of attention has a bias (Llama with `attention_bias`).
    pub fn output_projection_bias(&self) -> bool {
        self.family == Family::Llama && self.attention_bias
    }

    /// Rejects shapes the decoder cannot run, naming the field at fault.
    fn validate(&self, file: &str) -> Result<(), EngineError> {
        let invalid = |field: &str, reason: String| EngineError::Config {
            file: file.to_string(),
            field: field.to_string(),
            reason,
        };
        for (field, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_layers),
            ("num_attention_heads", self.num_heads),
            ("num_key_value_heads", self.num_kv_heads),
            ("head_dim", self.head_dim),
        ] {
            if value == 0 {
                return Err(invalid(field, "must be positive".to_string()));
            }
        }
        if !self.num_heads.is_multiple_of(self.num_kv_heads) {
            return Err(invalid(
                "num_key_value_heads",
                format!(
                    "{} does not divide num_attention_heads {}",
                    self.num_kv_heads, self.num_heads
                ),
            ));
        }
        if !self.rotary_dim.is_multiple_of(2)
            || self.rotary_dim == 0
            || self.rotary_dim > self.head_dim
        {
            return Err(invalid(
                "partial_rotary_factor",
                format!(
                    "rotary dimension {} must be even, positive and at most head_dim {}",
                    self.rotary_dim, self.head_dim
                ),
            ));
        }
        // Written so that NaN is rejected too.
        if self.rope_theta.partial_cmp(&0.0) != Some(std::cmp::Ordering::Greater) {
            return Err(invalid("rope_theta", "must be positive".to_string()));
        }
        let frequencies = self.rotary_dim / 2;
        match &self.rope_scaling {
            RopeScaling::LongRope {
                short_factor,
                long_factor,
                original_max_position_embeddings,
                ..
            } => {
                for (field, factors) in
                    [("short_factor", short_factor), ("long_factor", long_factor)]
                {
                    if factors.len() != frequencies {
                        return Err(invalid(
                            &format!("rope_scaling.{field}"),
                            format!(
                                "has {} entries, expected rotary_dim / 2 = {frequencies}",
                                factors.len()
                            ),
                        ));
                    }
                }
                if *original_max_position_embeddings == 0 {
                    return Err(invalid(
                        "original_max_position_embeddings",
                        "must be positive".to_string(),
                    ));
                }
            }
            RopeScaling::FrequencyFactors { factors } if factors.len() != frequencies => {
                return Err(invalid(
                    "rope_freqs",
                    format!(
                        "has {} entries, expected rotary_dim / 2 = {frequencies}",
                        factors.len()
                    ),
                ));
            }
            RopeScaling::Llama3 {
                low_freq_factor,
                high_freq_factor,
                ..
            } if high_freq_factor <= low_freq_factor => {
                return Err(invalid(
                    "rope_scaling.high_freq_factor",
                    "must exceed low_freq_factor".to_string(),
                ));
            }
            _ => {}
        }
        Ok(())
    }
}

/// transformers' default LongRoPE attention factor, used when the config gives none:
/// `sqrt(1 + ln(max / original) / ln(original))`, or 1 when the context is not extended.
pub fn longrope_attention_factor(
    max_position_embeddings: usize,
    original_max_position_embeddings: usize,
) -> f64 {
    let factor = max_position_embeddings as f64 / original_max_position_embeddings as f64;
    if factor <= 1.0 {
        1.0
    } else {
        (1.0 + factor.ln() / (original_max_position_embeddings as f64).ln()).sqrt()
    }
}

/// Reads a `rope_scaling` (or transformers-5 `rope_parameters`) object.
fn parse_rope_scaling(
    rope: JsonFields<'_>,
    rope_field: &str,
    top: &JsonFields<'_>,
    max_position_embeddings: usize,
    rotary_dim: usize,
) -> Result<RopeScaling, EngineError> {
    let field = |name: &str| format!("{rope_field}.{name}");
    // Phi-3 wrote `"type"`, later checkpoints `"rope_type"`; Phi-3's first releases said "su".
    let rope_type = match rope
        .object
        .get("rope_type")
        .or_else(|| rope.object.get("type"))
    {
        Some(Value::String(name)) => name.as_str(),
        Some(_) => return Err(top.invalid(&field("rope_type"), "expected a string")),
        None => "default",
    };
    let in_rope = |name: &str| -> Result<Option<f64>, EngineError> {
        match rope.object.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => number(value)
                .map(Some)
                .ok_or_else(|| top.invalid(&field(name), "expected a number")),
        }
    };
    let required = |name: &str| -> Result<f64, EngineError> {
        in_rope(name)?.ok_or_else(|| top.invalid(&field(name), "missing"))
    };
    match rope_type {
        "default" => Ok(RopeScaling::Default),
        "llama3" => Ok(RopeScaling::Llama3 {
            factor: required("factor")?,
            low_freq_factor: required("low_freq_factor")?,
            high_freq_factor: required("high_freq_factor")?,
            original_max_position_embeddings: required("original_max_position_embeddings")?
                as usize,
        }),
        "longrope" | "su" => {
            let factors = |name: &str| -> Result<Vec<f64>, EngineError> {
                match rope.object.get(name) {
                    Some(Value::Array(values)) => values
                        .iter()
                        .map(|value| {
                            number(value)
                                .ok_or_else(|| top.invalid(&field(name), "expected numbers"))
                        })
                        .collect(),
                    Some(_) => Err(top.invalid(&field(name), "expected a list of numbers")),
                    None => Err(top.invalid(&field(name), "missing")),
                }
            };
            let short_factor = factors("short_factor")?;
            let long_factor = factors("long_factor")?;
            // Phi-3 keeps the pre-training context at top level; transformers 5 may move it into
            // `rope_parameters`. Without either, the context was never extended.
            let original_max_position_embeddings =
                match in_rope("original_max_position_embeddings")? {
                    Some(value) => value as usize,
                    None => top
                        .opt_usize("original_max_position_embeddings")?
                        .unwrap_or(max_position_embeddings),
                };
            // transformers derives the default from max / original (not from `factor`), exactly
            // as here; candle-transformers' phi3 leaves the attention factor out altogether.
            let attention_factor = match in_rope("attention_factor")? {
                Some(factor) => factor,
                None => longrope_attention_factor(
                    max_position_embeddings,
                    original_max_position_embeddings,
                ),
            };
            if short_factor.len() != rotary_dim / 2 || long_factor.len() != rotary_dim / 2 {
                return Err(top.invalid(
                    &field("short_factor"),
                    &format!(
                        "short and long factors must have rotary_dim / 2 = {} entries, found {} and {}",
                        rotary_dim / 2,
                        short_factor.len(),
                        long_factor.len()
                    ),
                ));
            }
            Ok(RopeScaling::LongRope {
                short_factor,
                long_factor,
                original_max_position_embeddings,
                attention_factor,
            })
        }
        other => Err(top.invalid(
            &field("rope_type"),
            &format!("RoPE scaling `{other}` is not supported (default, llama3 and longrope are)"),
        )),
    }
}

/// A number, integer or float (phi-4 writes `"rope_theta": 250000`).
fn number(value: &Value) -> Option<f64> {
    value.as_f64()
}

fn token_id(value: &Value) -> Option<u32> {
    value.as_u64().and_then(|id| u32::try_from(id).ok())
}

/// Typed access to the fields of a JSON object, with errors naming the file and field.
struct JsonFields<'a> {
    object: &'a Map<String, Value>,
    file: &'a str,
}

impl JsonFields<'_> {
    fn invalid(&self, field: &str, reason: &str) -> EngineError {
        EngineError::Config {
            file: self.file.to_string(),
            field: field.to_string(),
            reason: reason.to_string(),
        }
    }

    fn usize(&self, field: &str) -> Result<usize, EngineError> {
        self.opt_usize(field)?
            .ok_or_else(|| self.invalid(field, "missing"))
    }

    fn opt_usize(&self, field: &str) -> Result<Option<usize>, EngineError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => match value.as_u64() {
                Some(number) => Ok(Some(number as usize)),
                // A whole number written as a float (`4096.0`) is still a count.
                None => match value.as_f64() {
                    Some(number) if number >= 0.0 && number.fract() == 0.0 => {
                        Ok(Some(number as usize))
                    }
                    _ => Err(self.invalid(field, "expected a non-negative integer")),
                },
            },
        }
    }

    fn opt_f64(&self, field: &str) -> Result<Option<f64>, EngineError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => number(value)
                .map(Some)
                .ok_or_else(|| self.invalid(field, "expected a number")),
        }
    }

    fn opt_bool(&self, field: &str) -> Result<Option<bool>, EngineError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(value)) => Ok(Some(*value)),
            Some(_) => Err(self.invalid(field, "expected true or false")),
        }
    }

    fn opt_str(&self, field: &str) -> Result<Option<&str>, EngineError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(value)) => Ok(Some(value)),
            Some(_) => Err(self.invalid(field, "expected a string")),
        }
    }
}

/// Typed access to GGUF metadata, with errors naming the file and key.
struct GgufFields<'a> {
    content: &'a gguf_file::Content,
    file: &'a str,
}

impl GgufFields<'_> {
    fn invalid(&self, key: &str, reason: &str) -> EngineError {
        EngineError::Config {
            file: self.file.to_string(),
            field: key.to_string(),
            reason: reason.to_string(),
        }
    }

    fn string(&self, key: &str) -> Result<String, EngineError> {
        self.opt_string(key)?
            .ok_or_else(|| self.invalid(key, "missing"))
    }

    fn opt_string(&self, key: &str) -> Result<Option<String>, EngineError> {
        match self.content.metadata.get(key) {
            None => Ok(None),
            Some(gguf_file::Value::String(value)) => Ok(Some(value.clone())),
            Some(_) => Err(self.invalid(key, "expected a string")),
        }
    }

    fn usize(&self, key: &str) -> Result<usize, EngineError> {
        self.opt_usize(key)?
            .ok_or_else(|| self.invalid(key, "missing"))
    }

    fn opt_usize(&self, key: &str) -> Result<Option<usize>, EngineError> {
        use gguf_file::Value as V;
        let number = match self.content.metadata.get(key) {
            None => return Ok(None),
            Some(V::U8(v)) => Some(u64::from(*v)),
            Some(V::U16(v)) => Some(u64::from(*v)),
            Some(V::U32(v)) => Some(u64::from(*v)),
            Some(V::U64(v)) => Some(*v),
            Some(V::I8(v)) => u64::try_from(*v).ok(),
            Some(V::I16(v)) => u64::try_from(*v).ok(),
            Some(V::I32(v)) => u64::try_from(*v).ok(),
            Some(V::I64(v)) => u64::try_from(*v).ok(),
            Some(_) => None,
        };
        number
            .map(|n| Some(n as usize))
            .ok_or_else(|| self.invalid(key, "expected a non-negative integer"))
    }

    fn opt_f64(&self, key: &str) -> Result<Option<f64>, EngineError> {
        use gguf_file::Value as V;
        match self.content.metadata.get(key) {
            None => Ok(None),
            Some(V::F32(v)) => Ok(Some(f64::from(*v))),
            Some(V::F64(v)) => Ok(Some(*v)),
            Some(_) => match self.opt_usize(key) {
                Ok(value) => Ok(value.map(|v| v as f64)),
                Err(_) => Err(self.invalid(key, "expected a number")),
            },
        }
    }
}

/// Reads a small F32 factor tensor (`rope_factors_long`, `rope_freqs`, ...) as f64 values.
fn read_factor_tensor<R: Read + Seek>(
    content: &gguf_file::Content,
    reader: &mut R,
    name: &str,
    file: &str,
) -> Result<Vec<f64>, EngineError> {
    let tensor_error = |reason: String| EngineError::Tensor {
        file: file.to_string(),
        name: name.to_string(),
        reason,
    };
    let tensor = content
        .tensor(reader, name, &candle_core::Device::Cpu)
        .map_err(|error| tensor_error(candle_reason(&error)))?;
    let values = tensor
        .dequantize(&candle_core::Device::Cpu)
        .and_then(|t| t.flatten_all())
        .and_then(|t| t.to_vec1::<f32>())
        .map_err(|error| tensor_error(candle_reason(&error)))?;
    Ok(values.into_iter().map(f64::from).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PHI35: &str = r#"{
        "architectures": ["Phi3ForCausalLM"], "hidden_size": 128, "intermediate_size": 160,
        "num_attention_heads": 4, "num_key_value_heads": 4, "num_hidden_layers": 2,
        "max_position_embeddings": 1024, "original_max_position_embeddings": 24,
        "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "vocab_size": 1024, "eos_token_id": 1000,
        "bos_token_id": 1, "sliding_window": 262144, "tie_word_embeddings": false,
        "rope_scaling": {"type": "longrope", "short_factor": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1],
                         "long_factor": [2,2,2,2,2,2,2,2,2,2,2,2,2,2,2,2]}
    }"#;

    #[test]
    fn longrope_attention_factor_follows_transformers() {
        let config = DecoderConfig::from_hf_json(PHI35, "config.json").unwrap();
        let RopeScaling::LongRope {
            attention_factor,
            original_max_position_embeddings,
            ..
        } = config.rope_scaling
        else {
            panic!("expected LongRoPE, got {:?}", config.rope_scaling);
        };
        assert_eq!(original_max_position_embeddings, 24);
        assert!((attention_factor - 1.476_835_441_020_872_6).abs() < 1e-12);
        assert_eq!(config.head_dim, 32);
        assert_eq!(config.rotary_dim, 32);
        assert_eq!(config.eos_token_ids, vec![1000]);
        assert_eq!(config.sliding_window, Some(262_144));
    }

    #[test]
    fn transformers_5_rope_parameters_read_like_the_classic_layout() {
        let classic = r#"{"architectures": ["LlamaForCausalLM"], "hidden_size": 128,
            "intermediate_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2,
            "num_hidden_layers": 2, "head_dim": 32, "max_position_embeddings": 131072,
            "rms_norm_eps": 1e-05, "vocab_size": 1024, "tie_word_embeddings": true,
            "eos_token_id": [1004, 1011, 1012], "rope_theta": 500000.0,
            "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                             "original_max_position_embeddings": 8192, "rope_type": "llama3"}}"#;
        let v5 = r#"{"architectures": ["LlamaForCausalLM"], "hidden_size": 128,
            "intermediate_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2,
            "num_hidden_layers": 2, "head_dim": 32, "max_position_embeddings": 131072,
            "rms_norm_eps": 1e-05, "vocab_size": 1024, "tie_word_embeddings": true,
            "eos_token_id": [1004, 1011, 1012],
            "rope_parameters": {"rope_theta": 500000, "factor": 32.0, "high_freq_factor": 4.0,
                "low_freq_factor": 1.0, "original_max_position_embeddings": 8192, "rope_type": "llama3"}}"#;
        let classic = DecoderConfig::from_hf_json(classic, "classic.json").unwrap();
        let v5 = DecoderConfig::from_hf_json(v5, "v5.json").unwrap();
        assert_eq!(classic, v5);
        assert_eq!(
            classic.rope_scaling,
            RopeScaling::Llama3 {
                factor: 32.0,
                low_freq_factor: 1.0,
                high_freq_factor: 4.0,
                original_max_position_embeddings: 8192
            }
        );
        assert_eq!(classic.rope_theta, 500_000.0);
    }

    #[test]
    fn integer_rope_theta_and_null_scaling_are_accepted() {
        let text = r#"{"architectures": ["Phi3ForCausalLM"], "hidden_size": 128, "intermediate_size": 256,
            "num_attention_heads": 8, "num_key_value_heads": 2, "num_hidden_layers": 2,
            "max_position_embeddings": 16384, "original_max_position_embeddings": 16384,
            "rope_theta": 250000, "rope_scaling": null, "sliding_window": null, "vocab_size": 1024}"#;
        let config = DecoderConfig::from_hf_json(text, "config.json").unwrap();
        assert_eq!(config.rope_theta, 250_000.0);
        assert_eq!(config.rope_scaling, RopeScaling::Default);
        assert_eq!(config.sliding_window, None);
        assert_eq!(config.head_dim, 16);
    }

    #[test]
    fn unknown_architecture_is_named() {
        let text = r#"{"architectures": ["GPT2LMHeadModel"], "hidden_size": 8}"#;
        let error = DecoderConfig::from_hf_json(text, "gpt2/config.json").unwrap_err();
        assert!(
            matches!(error, EngineError::UnsupportedArchitecture { .. }),
            "{error:?}"
        );
        let message = error.to_string();
        assert!(
            message.contains("GPT2LMHeadModel") && message.contains("gpt2/config.json"),
            "{message}"
        );
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let missing = r#"{"architectures": ["LlamaForCausalLM"], "hidden_size": 128, "num_attention_heads": 4,
            "max_position_embeddings": 64}"#;
        let message = DecoderConfig::from_hf_json(missing, "m/config.json")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("m/config.json") && message.contains("vocab_size"),
            "{message}"
        );

        let wrong_type = PHI35.replace("\"rope_theta\": 10000.0", "\"rope_theta\": \"big\"");
        let message = DecoderConfig::from_hf_json(&wrong_type, "p/config.json")
            .unwrap_err()
            .to_string();
        assert!(message.contains("rope_theta"), "{message}");

        let unknown_rope = PHI35.replace("\"longrope\"", "\"yarn\"");
        let message = DecoderConfig::from_hf_json(&unknown_rope, "p/config.json")
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("rope_scaling.rope_type") && message.contains("yarn"),
            "{message}"
        );

        let short = PHI35.replace(
            "\"short_factor\": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]",
            "\"short_factor\": [1]",
        );
        let message = DecoderConfig::from_hf_json(&short, "p/config.json")
            .unwrap_err()
            .to_string();
        assert!(message.contains("short_factor"), "{message}");

        let message = DecoderConfig::from_hf_json("{not json", "x.json")
            .unwrap_err()
            .to_string();
        assert!(message.contains("x.json"), "{message}");
    }

    #[test]
    fn phi4_parameter_count() {
        let phi4 = r#"{"architectures": ["Phi3ForCausalLM"], "hidden_size": 5120, "intermediate_size": 17920,
            "num_attention_heads": 40, "num_key_value_heads": 10, "num_hidden_layers": 40,
            "max_position_embeddings": 16384, "rope_theta": 250000, "vocab_size": 100352}"#;
        let config = DecoderConfig::from_hf_json(phi4, "phi-4/config.json").unwrap();
        // microsoft/phi-4 is published as 14.7B parameters.
        assert_eq!(config.parameter_count(), 14_659_507_200);
    }
}
