//! The decoder: one pre-norm transformer (RMSNorm, grouped-query attention with RoPE, SwiGLU MLP)
//! for Phi-3/Phi-4, Llama and Qwen2, their differences expressed by [`DecoderConfig`] and by which
//! tensors the weights hold (fused or separate projections, biases, tied embeddings).
//!
//! It reproduces transformers' eager float32 computation, including two behaviours where
//! candle-transformers' models differ: LongRoPE divides by its factors and scales cos/sin by the
//! attention factor (see `rope`), and the LongRoPE factor set is chosen from the sequence length of
//! each forward pass, with the KV cache recomputed once when a sequence crosses the original
//! context, as transformers' `generate()` does (see [`Decoder::feed`]).
//!
//! Laid out like candle's model files: the parts (norm, projections, rotary, attention, MLP,
//! block), then the model.

use std::path::Path;

use candle_core::{DType, Device, Storage, Tensor, D};

use crate::config::{DecoderConfig, Family};
use crate::error::EngineError;
use crate::kv_cache::KvCache;
use crate::rope::{FactorSet, RotaryEmbedding};
use crate::weights::{EmbeddingWeight, ModelWeights, Projection, Quantization};

type Result<T> = std::result::Result<T, EngineError>;

/// RMSNorm with its learned weight (transformers: `weight * x / sqrt(mean(x²) + eps)`).
#[derive(Debug, Clone)]
struct RmsNorm {
    weight: Tensor,
    eps: f32,
}

impl RmsNorm {
    fn load(
        weights: &mut ModelWeights,
        name: &str,
        config: &DecoderConfig,
        device: &Device,
        dtype: DType,
    ) -> Result<RmsNorm> {
        Ok(RmsNorm {
            weight: weights.vector(name, config.hidden_size, dtype, device)?,
            eps: config.rms_norm_eps as f32,
        })
    }

    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        candle_nn::ops::rms_norm(xs, &self.weight, self.eps)
    }
}

/// A projection `x Wᵀ (+ b)`: stored bytes for versus's kernels, or candle's matmul.
#[derive(Debug, Clone)]
struct Linear {
    weight: Projection,
    bias: Option<Tensor>,
}

impl Linear {
    fn load(
        weights: &mut ModelWeights,
        prefix: &str,
        shape: (usize, usize),
        bias: bool,
        device: &Device,
        dtype: DType,
    ) -> Result<Linear> {
        let weight = weights.projection(&format!("{prefix}.weight"), shape, dtype, device)?;
        let bias = if bias {
            Some(weights.vector(&format!("{prefix}.bias"), shape.0, dtype, device)?)
        } else {
            None
        };
        Ok(Linear { weight, bias })
    }

    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        // Quantized matmuls read their input as one contiguous block.
        let ys = self.weight.forward(&xs.contiguous()?)?;
        match &self.bias {
            Some(bias) => ys.broadcast_add(bias),
            None => Ok(ys),
        }
    }
}

/// cos and sin for the positions of one forward pass, and which RoPE variant applies.
struct RotaryTables {
    cos: Tensor,
    sin: Tensor,
    /// llama.cpp's interleaved pairs (2i, 2i+1), for GGUF `llama` weights whose q/k rows its
    /// converter permuted; otherwise transformers' rotate-half pairs (i, i + d/2).
    interleaved: bool,
}

impl RotaryTables {
    /// Rotates the first `cos.dim(1) · 2` dimensions of `xs` `(batch, heads, positions, head_dim)`
    /// and passes the rest through (partial rotary, as in Phi-4-mini).
    fn apply(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let head_dim = xs.dim(D::Minus1)?;
        let rotary_dim = self.cos.dim(D::Minus1)? * 2;
        let rotate = |xs: &Tensor| {
            if self.interleaved {
                candle_nn::rotary_emb::rope_i(xs, &self.cos, &self.sin)
            } else {
                candle_nn::rotary_emb::rope(xs, &self.cos, &self.sin)
            }
        };
        if rotary_dim == head_dim {
            return rotate(&xs.contiguous()?);
        }
        let rotated = rotate(&xs.narrow(D::Minus1, 0, rotary_dim)?.contiguous()?)?;
        let passed = xs.narrow(D::Minus1, rotary_dim, head_dim - rotary_dim)?;
        Tensor::cat(&[&rotated, &passed], D::Minus1)
    }
}

/// The q, k and v projections: fused in one matrix (Phi-3's `qkv_proj`, rows q then k then v) or
/// separate (Llama, Qwen2, and phi3 GGUFs converted without fusion).
#[derive(Debug, Clone)]
enum QkvProjection {
    Fused(Linear),
    Separate { q: Linear, k: Linear, v: Linear },
}

/// Grouped-query self-attention with a causal (optionally sliding-window) mask.
#[derive(Debug, Clone)]
struct Attention {
    qkv: QkvProjection,
    o_proj: Linear,
    num_heads: usize,
    num_kv_heads: usize,
    head_dim: usize,
    /// transformers' `self.scaling = head_dim ** -0.5`, applied after `q kᵀ`.
    scaling: f64,
}

impl Attention {
    fn load(
        weights: &mut ModelWeights,
        prefix: &str,
        config: &DecoderConfig,
        device: &Device,
        dtype: DType,
    ) -> Result<Attention> {
        let hidden = config.hidden_size;
        let q_width = config.num_heads * config.head_dim;
        let kv_width = config.num_kv_heads * config.head_dim;
        let separate_name = format!("{prefix}.q_proj.weight");
        let fused_name = format!("{prefix}.qkv_proj.weight");
        // Phi-3 checkpoints fuse q/k/v; use separate projections whenever the file has them, and
        // otherwise expect the layout of the family (so a missing tensor is named sensibly).
        let fused = !weights.contains(&separate_name)
            && (config.family == Family::Phi3 || weights.contains(&fused_name));
        let bias = config.attention_bias;
        let qkv = if fused {
            QkvProjection::Fused(Linear::load(
                weights,
                &format!("{prefix}.qkv_proj"),
                (q_width + 2 * kv_width, hidden),
                bias,
                device,
                dtype,
            )?)
        } else {
            QkvProjection::Separate {
                q: Linear::load(
                    weights,
                    &format!("{prefix}.q_proj"),
                    (q_width, hidden),
                    bias,
                    device,
                    dtype,
                )?,
                k: Linear::load(
                    weights,
                    &format!("{prefix}.k_proj"),
                    (kv_width, hidden),
                    bias,
                    device,
                    dtype,
                )?,
                v: Linear::load(
                    weights,
                    &format!("{prefix}.v_proj"),
                    (kv_width, hidden),
                    bias,
                    device,
                    dtype,
                )?,
            }
        };
        let o_proj = Linear::load(
            weights,
            &format!("{prefix}.o_proj"),
            (hidden, q_width),
            config.output_projection_bias(),
            device,
            dtype,
        )?;
        Ok(Attention {
            qkv,
            o_proj,
            num_heads: config.num_heads,
            num_kv_heads: config.num_kv_heads,
            head_dim: config.head_dim,
            scaling: (config.head_dim as f64).powf(-0.5),
        })
    }

    /// Attention over the rows of `xs` `(1, rows, hidden)`, which hold the new positions of
    /// several sequences one after another (`segments`, in order): the projections run once
    /// over every row, and each sequence attends over its own KV cache with its own positions.
    fn forward(
        &self,
        xs: &Tensor,
        segments: &mut [SegmentLayer<'_>],
    ) -> candle_core::Result<Tensor> {
        let q_width = self.num_heads * self.head_dim;
        let kv_width = self.num_kv_heads * self.head_dim;
        let (q, k, v) = match &self.qkv {
            QkvProjection::Fused(qkv) => {
                let qkv = qkv.forward(xs)?;
                (
                    qkv.narrow(D::Minus1, 0, q_width)?,
                    qkv.narrow(D::Minus1, q_width, kv_width)?,
                    qkv.narrow(D::Minus1, q_width + kv_width, kv_width)?,
                )
            }
            QkvProjection::Separate { q, k, v } => (q.forward(xs)?, k.forward(xs)?, v.forward(xs)?),
        };
        if let [segment] = segments {
            return self.o_proj.forward(&self.attend(&q, &k, &v, segment)?);
        }
        let mut attended = Vec::with_capacity(segments.len());
        let mut offset = 0;
        for segment in segments.iter_mut() {
            let rows = segment.positions;
            attended.push(self.attend(
                &q.narrow(1, offset, rows)?,
                &k.narrow(1, offset, rows)?,
                &v.narrow(1, offset, rows)?,
                segment,
            )?);
            offset += rows;
        }
        self.o_proj.forward(&Tensor::cat(&attended, 1)?)
    }

    /// One sequence's attention: `q`, `k`, `v` `(1, positions, width)` of its new positions,
    /// rotated, appended to its cache, attended over everything cached.
    fn attend(
        &self,
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        segment: &mut SegmentLayer<'_>,
    ) -> candle_core::Result<Tensor> {
        let (batch, positions, _) = q.dims3()?;
        let q_width = self.num_heads * self.head_dim;
        let split_heads = |t: &Tensor, heads: usize| {
            t.reshape((batch, positions, heads, self.head_dim))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = segment.rotary.apply(&split_heads(q, self.num_heads)?)?;
        let k = segment.rotary.apply(&split_heads(k, self.num_kv_heads)?)?;
        let v = split_heads(v, self.num_kv_heads)?;
        let (k, v) = segment.cache.append(&k, &v)?;
        if batch == 1 && positions == 1 && segment.mask.is_none() {
            if let Some(attended) = self.attend_in_place(&q, segment.cache)? {
                return Ok(attended);
            }
        }
        let keys = k.dim(2)?;

        // Grouped-query attention without repeating k and v: query head h uses kv head
        // h / group (transformers' `repeat_kv`), so the group's queries stack into one matmul.
        let group = self.num_heads / self.num_kv_heads;
        let q = q.reshape((batch * self.num_kv_heads, group * positions, self.head_dim))?;
        let k = k
            .contiguous()?
            .reshape((batch * self.num_kv_heads, keys, self.head_dim))?;
        let v = v
            .contiguous()?
            .reshape((batch * self.num_kv_heads, keys, self.head_dim))?;
        let scores = (q.matmul(&k.t()?)? * self.scaling)?;
        let scores = match segment.mask {
            Some(mask) => scores
                .reshape((batch * self.num_kv_heads, group, positions, keys))?
                .broadcast_add(mask)?
                .reshape((batch * self.num_kv_heads, group * positions, keys))?,
            None => scores,
        };
        // transformers takes the softmax in float32 whatever the compute dtype.
        let probabilities =
            candle_nn::ops::softmax_last_dim(&scores.to_dtype(DType::F32)?)?.to_dtype(v.dtype())?;
        probabilities
            .matmul(&v)?
            .reshape((batch, self.num_heads, positions, self.head_dim))?
            .transpose(1, 2)?
            .reshape((batch, positions, q_width))
    }
}

impl Attention {
    /// One new position's attention (`q`, `(1, heads, 1, head_dim)`, rotated) over `cache`
    /// read where it lies (`attention::attend_one`), as `(1, 1, heads · head_dim)`; `None` where
    /// that path does not apply (computing in F16 or BF16, off the CPU, or
    /// `VERSUS_ATTENTION=candle`), which then takes candle's ops.
    fn attend_in_place(&self, q: &Tensor, cache: &KvCache) -> candle_core::Result<Option<Tensor>> {
        if q.dtype() != DType::F32 || !q.device().is_cpu() || !crate::attention::in_place() {
            return Ok(None);
        }
        let Some((keys, values)) = cache.buffers() else {
            return Ok(None);
        };
        let (key_storage, key_layout) = keys.storage_and_layout();
        let (value_storage, value_layout) = values.storage_and_layout();
        let (Storage::Cpu(key_storage), Storage::Cpu(value_storage)) =
            (&*key_storage, &*value_storage)
        else {
            return Ok(None);
        };
        if !key_layout.is_contiguous() || !value_layout.is_contiguous() {
            return Ok(None);
        }
        let query = q.flatten_all()?.to_vec1::<f32>()?;
        let cached = crate::attention::CachedHeads {
            keys: &key_storage.as_slice::<f32>()?[key_layout.start_offset()..],
            values: &value_storage.as_slice::<f32>()?[value_layout.start_offset()..],
            kv_heads: self.num_kv_heads,
            capacity: cache.capacity(),
            len: cache.len(),
            head_dim: self.head_dim,
        };
        let attended =
            crate::attention::attend_one(&query, self.num_heads, &cached, self.scaling as f32);
        Ok(Some(Tensor::from_vec(
            attended,
            (1, 1, self.num_heads * self.head_dim),
            q.device(),
        )?))
    }
}

/// One sequence's share of a forward pass through one layer: how many rows are its, the
/// rotary tables and mask of its positions, and its cache for this layer.
struct SegmentLayer<'a> {
    positions: usize,
    rotary: &'a RotaryTables,
    mask: Option<&'a Tensor>,
    cache: &'a mut KvCache,
}

/// The gate and up projections: fused (Phi-3's `gate_up_proj`, gate rows first) or separate.
#[derive(Debug, Clone)]
enum GateUpProjection {
    Fused(Linear),
    Separate { gate: Linear, up: Linear },
}

/// SwiGLU MLP: `down(silu(gate(x)) · up(x))`.
#[derive(Debug, Clone)]
struct Mlp {
    gate_up: GateUpProjection,
    down: Linear,
}

impl Mlp {
    fn load(
        weights: &mut ModelWeights,
        prefix: &str,
        config: &DecoderConfig,
        device: &Device,
        dtype: DType,
    ) -> Result<Mlp> {
        let hidden = config.hidden_size;
        let intermediate = config.intermediate_size;
        let separate_name = format!("{prefix}.gate_proj.weight");
        let fused_name = format!("{prefix}.gate_up_proj.weight");
        let fused = !weights.contains(&separate_name)
            && (config.family == Family::Phi3 || weights.contains(&fused_name));
        let gate_up = if fused {
            GateUpProjection::Fused(Linear::load(
                weights,
                &format!("{prefix}.gate_up_proj"),
                (2 * intermediate, hidden),
                false,
                device,
                dtype,
            )?)
        } else {
            GateUpProjection::Separate {
                gate: Linear::load(
                    weights,
                    &format!("{prefix}.gate_proj"),
                    (intermediate, hidden),
                    false,
                    device,
                    dtype,
                )?,
                up: Linear::load(
                    weights,
                    &format!("{prefix}.up_proj"),
                    (intermediate, hidden),
                    false,
                    device,
                    dtype,
                )?,
            }
        };
        let down = Linear::load(
            weights,
            &format!("{prefix}.down_proj"),
            (hidden, intermediate),
            false,
            device,
            dtype,
        )?;
        Ok(Mlp { gate_up, down })
    }

    fn forward(&self, xs: &Tensor) -> candle_core::Result<Tensor> {
        let activated = match &self.gate_up {
            // Phi-3: `gate, up = gate_up.chunk(2, dim=-1)`; candle's swiglu is exactly that.
            GateUpProjection::Fused(gate_up) => candle_nn::ops::swiglu(&gate_up.forward(xs)?)?,
            GateUpProjection::Separate { gate, up } => {
                (gate.forward(xs)?.silu()? * up.forward(xs)?)?
            }
        };
        self.down.forward(&activated)
    }
}

/// One pre-norm transformer block.
#[derive(Debug, Clone)]
struct Block {
    input_norm: RmsNorm,
    attention: Attention,
    post_attention_norm: RmsNorm,
    mlp: Mlp,
}

impl Block {
    fn load(
        weights: &mut ModelWeights,
        layer: usize,
        config: &DecoderConfig,
        device: &Device,
        dtype: DType,
    ) -> Result<Block> {
        let prefix = format!("model.layers.{layer}");
        Ok(Block {
            input_norm: RmsNorm::load(
                weights,
                &format!("{prefix}.input_layernorm.weight"),
                config,
                device,
                dtype,
            )?,
            attention: Attention::load(
                weights,
                &format!("{prefix}.self_attn"),
                config,
                device,
                dtype,
            )?,
            post_attention_norm: RmsNorm::load(
                weights,
                &format!("{prefix}.post_attention_layernorm.weight"),
                config,
                device,
                dtype,
            )?,
            mlp: Mlp::load(weights, &format!("{prefix}.mlp"), config, device, dtype)?,
        })
    }

    /// The block on `xs (1, rows, hidden)`. With `keep`, only those rows go on past the
    /// attention (which still caches every row's keys and values): the last block does this
    /// for the rows whose logits are wanted, as llama.cpp does, so a prefill's MLP runs for one
    /// row instead of all of them. Every kept row is what it would be without `keep` (each
    /// row's MLP is its own), and `keep` empty returns `None`.
    fn forward(
        &self,
        xs: &Tensor,
        segments: &mut [SegmentLayer<'_>],
        keep: Option<&Tensor>,
    ) -> candle_core::Result<Option<Tensor>> {
        let attended = self
            .attention
            .forward(&self.input_norm.forward(xs)?, segments)?;
        let xs = (xs + attended)?;
        let xs = match keep {
            Some(rows) if rows.dim(0)? == 0 => return Ok(None),
            Some(rows) => xs.index_select(rows, 1)?,
            None => xs,
        };
        let transformed = self.mlp.forward(&self.post_attention_norm.forward(&xs)?)?;
        Ok(Some((xs + transformed)?))
    }
}

/// A sequence being decoded: its tokens so far and the KV cache built from them.
#[derive(Debug, Clone)]
pub struct Sequence {
    tokens: Vec<u32>,
    caches: Vec<KvCache>,
    /// The LongRoPE factor set the cached keys were rotated with.
    cached_with: FactorSet,
}

impl Sequence {
    /// The tokens fed so far.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Positions cached (all tokens, between calls to `feed`).
    fn cached(&self) -> usize {
        self.caches.first().map_or(0, KvCache::len)
    }

    fn clear_cache(&mut self) {
        self.caches.iter_mut().for_each(KvCache::clear);
    }
}

/// One sequence's share of [`Decoder::feed_batch`]: the sequence and the tokens it takes.
pub struct Feed<'a> {
    pub sequence: &'a mut Sequence,
    pub tokens: &'a [u32],
}

/// What one feed computes for one sequence: the positions it had, the first one not cached
/// (all of them are recomputed when the cache had to be dropped), and the LongRoPE factor set.
#[derive(Debug, Clone, Copy)]
struct Pass {
    fed_before: usize,
    start: usize,
    factor_set: FactorSet,
}

/// One sequence's rows in one forward pass: positions `start .. start + positions`, and
/// whether they reach the end of its tokens.
#[derive(Debug, Clone, Copy)]
struct Part {
    index: usize,
    start: usize,
    positions: usize,
    last: bool,
}

/// A loaded model.
#[derive(Debug, Clone)]
pub struct Decoder {
    config: DecoderConfig,
    embedding: EmbeddingWeight,
    blocks: Vec<Block>,
    norm: RmsNorm,
    lm_head: Linear,
    rotary: RotaryEmbedding,
    interleaved_rope: bool,
    /// Most positions one forward pass takes at once (see `forward`).
    prefill_chunk: usize,
    device: Device,
    dtype: DType,
}

/// Default for `Decoder::prefill_chunk`: scores of 256 queries against 16k keys for 40 heads
/// are 640 MiB in f32; transformers' eager attention would hold all queries at once.
const DEFAULT_PREFILL_CHUNK: usize = 256;

impl Decoder {
    /// Builds the model from its config and weights; `dtype` is the compute dtype (f32 matches
    /// transformers; quantized weights stay quantized whatever it is).
    pub fn load(
        config: DecoderConfig,
        mut weights: ModelWeights,
        device: &Device,
        dtype: DType,
    ) -> Result<Decoder> {
        let embedding = weights.embedding(
            "model.embed_tokens.weight",
            (config.vocab_size, config.hidden_size),
            dtype,
            device,
        )?;
        let blocks = (0..config.num_layers)
            .map(|layer| Block::load(&mut weights, layer, &config, device, dtype))
            .collect::<Result<Vec<_>>>()?;
        let norm = RmsNorm::load(&mut weights, "model.norm.weight", &config, device, dtype)?;
        let lm_head = if config.tie_word_embeddings {
            Linear {
                weight: embedding.as_projection(),
                bias: None,
            }
        } else {
            Linear::load(
                &mut weights,
                "lm_head",
                (config.vocab_size, config.hidden_size),
                false,
                device,
                dtype,
            )?
        };
        Ok(Decoder {
            rotary: RotaryEmbedding::new(&config, device, dtype),
            interleaved_rope: weights.qk_rows_interleaved(),
            prefill_chunk: DEFAULT_PREFILL_CHUNK,
            config,
            embedding,
            blocks,
            norm,
            lm_head,
            device: device.clone(),
            dtype,
        })
    }

    /// Loads a Hugging Face model folder (`config.json` and safetensors weights).
    pub fn from_hf_dir(
        dir: &Path,
        device: &Device,
        dtype: DType,
        quantize: Option<Quantization>,
    ) -> Result<Decoder> {
        let config_path = dir.join("config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|error| EngineError::Io {
            path: config_path.clone(),
            reason: error.to_string(),
        })?;
        let config = DecoderConfig::from_hf_json(&text, &config_path.display().to_string())?;
        let weights = ModelWeights::from_hf_dir(dir)?.with_quantization(quantize);
        Decoder::load(config, weights, device, dtype)
    }

    /// Loads a GGUF file (hyper-parameters from its metadata, tensors kept quantized).
    pub fn from_gguf(path: &Path, device: &Device, dtype: DType) -> Result<Decoder> {
        let (config, weights) = ModelWeights::from_gguf(path)?;
        Decoder::load(config, weights, device, dtype)
    }

    pub fn config(&self) -> &DecoderConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Sets how many positions one forward pass takes at once (prompts are split into chunks
    /// of this size; the logits do not depend on it beyond float rounding).
    pub fn with_prefill_chunk(mut self, positions: usize) -> Decoder {
        self.prefill_chunk = positions.max(1);
        self
    }

    /// Bytes held by the weights (quantized and half-precision matrices at their stored size).
    pub fn weight_bytes(&self) -> u64 {
        fn tensor_bytes(tensor: &Tensor) -> u64 {
            (tensor.elem_count() * tensor.dtype().size_in_bytes()) as u64
        }
        fn linear_bytes(linear: &Linear) -> u64 {
            linear.weight.storage_bytes() + linear.bias.as_ref().map_or(0, tensor_bytes)
        }
        let blocks: u64 = self
            .blocks
            .iter()
            .map(|block| {
                let qkv = match &block.attention.qkv {
                    QkvProjection::Fused(qkv) => linear_bytes(qkv),
                    QkvProjection::Separate { q, k, v } => {
                        linear_bytes(q) + linear_bytes(k) + linear_bytes(v)
                    }
                };
                let gate_up = match &block.mlp.gate_up {
                    GateUpProjection::Fused(gate_up) => linear_bytes(gate_up),
                    GateUpProjection::Separate { gate, up } => {
                        linear_bytes(gate) + linear_bytes(up)
                    }
                };
                qkv + linear_bytes(&block.attention.o_proj)
                    + gate_up
                    + linear_bytes(&block.mlp.down)
                    + tensor_bytes(&block.input_norm.weight)
                    + tensor_bytes(&block.post_attention_norm.weight)
            })
            .sum();
        let lm_head = if self.config.tie_word_embeddings {
            0
        } else {
            linear_bytes(&self.lm_head)
        };
        self.embedding.storage_bytes() + blocks + tensor_bytes(&self.norm.weight) + lm_head
    }

    /// Bytes of weights a decode step reads: every matrix but an embedding table of its own,
    /// of which a step reads one row (an embedding tied to the output is read whole, as the
    /// output). What bounds a single sequence's decode by memory bandwidth.
    pub fn decode_step_bytes(&self) -> u64 {
        let embedding = if self.config.tie_word_embeddings {
            0
        } else {
            self.embedding.storage_bytes()
        };
        self.weight_bytes() - embedding
    }

    /// Bytes one cached position of one sequence takes: keys and values of every layer.
    pub fn kv_bytes_per_position(&self) -> u64 {
        let config = &self.config;
        (config.num_layers * 2 * config.num_kv_heads * config.head_dim) as u64
            * self.dtype.size_in_bytes() as u64
    }

    /// The rotary embedding (its inverse frequencies are what transformers computes).
    pub fn rotary(&self) -> &RotaryEmbedding {
        &self.rotary
    }

    /// An empty sequence whose KV cache holds `capacity` positions (prompt plus tokens to
    /// generate) before it has to grow.
    pub fn new_sequence(&self, capacity: usize) -> Sequence {
        Sequence {
            tokens: Vec::new(),
            caches: (0..self.config.num_layers)
                .map(|_| KvCache::with_capacity(capacity))
                .collect(),
            cached_with: FactorSet::Short,
        }
    }

    /// Feeds tokens (a prompt, or one generated token) and returns the logits (f32,
    /// `vocab_size`) at the last position.
    ///
    /// LongRoPE as transformers runs it: a forward pass uses the long factors when the sequence
    /// it covers exceeds the original context, and `generate()` drops its KV cache once, at the
    /// first step where the sequence exceeds it, recomputing every position with the long
    /// factors. So when this call takes a sequence whose cache was built with the short factors
    /// past the original context, the whole sequence is recomputed. (A plain KV-cache loop
    /// would keep short-factor keys and diverge from transformers.)
    pub fn feed(&self, sequence: &mut Sequence, tokens: &[u32]) -> Result<Vec<f32>> {
        let mut logits = self.feed_batch(&mut [Feed { sequence, tokens }])?;
        logits
            .pop()
            .ok_or_else(|| EngineError::Other("the forward pass returned no logits".to_string()))
    }

    /// Feeds several sequences at once and returns each one's logits at its last position, in
    /// order: one forward pass over all their new tokens, whose projections (most of the work,
    /// and all of the weight reads) run once for every row, while each sequence attends over its
    /// own KV cache at its own positions. Each sequence's logits equal what [`Decoder::feed`]
    /// gives it alone, within float rounding (and exactly where versus's own kernels do the
    /// projections, since they compute every row the same way whatever the others are).
    ///
    /// Inputs longer than the prefill chunk go through in several passes; a sequence whose
    /// feed fails is left as it was before the call (its cache is rebuilt on the next one).
    pub fn feed_batch(&self, feeds: &mut [Feed<'_>]) -> Result<Vec<Vec<f32>>> {
        let mut plans = Vec::with_capacity(feeds.len());
        for feed in feeds.iter_mut() {
            if feed.tokens.is_empty() {
                return Err(EngineError::InvalidInput("no tokens to feed".to_string()));
            }
            self.check_token_ids(feed.tokens)?;
        }
        for feed in feeds.iter_mut() {
            let sequence = &mut *feed.sequence;
            let fed_before = sequence.tokens.len();
            let factor_set = self.rotary.factor_set(fed_before + feed.tokens.len());
            if sequence.cached() != fed_before
                || (fed_before > 0 && sequence.cached_with != factor_set)
            {
                sequence.clear_cache();
            }
            let start = sequence.cached();
            sequence.tokens.extend_from_slice(feed.tokens);
            plans.push(Pass {
                fed_before,
                start,
                factor_set,
            });
        }
        let mut sequences: Vec<&mut Sequence> =
            feeds.iter_mut().map(|feed| &mut *feed.sequence).collect();
        match self.forward_batch(&mut sequences, &plans, false) {
            Ok(logits) => {
                for (sequence, plan) in sequences.iter_mut().zip(&plans) {
                    sequence.cached_with = plan.factor_set;
                }
                Ok(logits
                    .into_iter()
                    .map(|mut rows| rows.pop().unwrap_or_default())
                    .collect())
            }
            Err(error) => {
                // Leave every sequence as it was; a partly appended cache is rebuilt on the next call.
                for (sequence, plan) in sequences.iter_mut().zip(&plans) {
                    sequence.tokens.truncate(plan.fed_before);
                    sequence.clear_cache();
                }
                Err(error)
            }
        }
    }

    /// Logits at every position of a fresh sequence (for tests and scoring).
    pub fn logits_all(&self, tokens: &[u32]) -> Result<Vec<Vec<f32>>> {
        if tokens.is_empty() {
            return Err(EngineError::InvalidInput("no tokens to score".to_string()));
        }
        self.check_token_ids(tokens)?;
        let mut sequence = self.new_sequence(tokens.len());
        sequence.tokens.extend_from_slice(tokens);
        let plan = Pass {
            fed_before: 0,
            start: 0,
            factor_set: self.rotary.factor_set(tokens.len()),
        };
        let mut logits = self.forward_batch(&mut [&mut sequence], &[plan], true)?;
        Ok(logits.pop().unwrap_or_default())
    }

    fn check_token_ids(&self, tokens: &[u32]) -> Result<()> {
        match tokens
            .iter()
            .find(|&&id| id as usize >= self.config.vocab_size)
        {
            Some(id) => Err(EngineError::InvalidInput(format!(
                "token id {id} is outside the vocabulary of {} ids",
                self.config.vocab_size
            ))),
            None => Ok(()),
        }
    }

    /// Runs each sequence's tokens from its `plan.start` (the positions not cached yet) through
    /// the model, appending to its caches, and returns for each the logits of every new position
    /// (`all_positions`) or of its last one.
    ///
    /// Long inputs go through in passes of at most `prefill_chunk` positions per sequence, so
    /// the attention scores (heads × chunk × keys) stay bounded; every pass uses each sequence's
    /// factor set for the whole feed, which is what transformers does when it runs the input in
    /// one call.
    fn forward_batch(
        &self,
        sequences: &mut [&mut Sequence],
        plans: &[Pass],
        all_positions: bool,
    ) -> Result<Vec<Vec<Vec<f32>>>> {
        let chunk = self.prefill_chunk.max(1);
        let mut logits: Vec<Vec<Vec<f32>>> = vec![Vec::new(); sequences.len()];
        let mut next: Vec<usize> = plans.iter().map(|plan| plan.start).collect();
        loop {
            // This pass: up to `chunk` positions of every sequence with some left.
            let mut parts = Vec::new();
            for (index, sequence) in sequences.iter().enumerate() {
                let end = sequence.tokens.len().min(next[index] + chunk);
                if next[index] < end {
                    parts.push(Part {
                        index,
                        start: next[index],
                        positions: end - next[index],
                        last: end == sequence.tokens.len(),
                    });
                }
            }
            if parts.is_empty() {
                return Ok(logits);
            }
            // The rows whose logits are wanted: all of them, or each finishing sequence's last.
            let mut wanted = Vec::new();
            let mut offset = 0;
            for part in &parts {
                if all_positions {
                    wanted.extend((offset..offset + part.positions).map(|row| (part.index, row)));
                } else if part.last {
                    wanted.push((part.index, offset + part.positions - 1));
                }
                offset += part.positions;
            }
            let keep = if wanted.len() == offset {
                None
            } else {
                let rows: Vec<u32> = wanted.iter().map(|&(_, row)| row as u32).collect();
                Some(Tensor::new(rows.as_slice(), &self.device)?)
            };
            let hidden = self.forward_hidden(sequences, plans, &parts, keep.as_ref())?;
            for part in &parts {
                next[part.index] = part.start + part.positions;
            }
            if let Some(hidden) = hidden {
                for ((index, _), row) in wanted.iter().zip(self.logits(&hidden)?) {
                    logits[*index].push(row);
                }
            }
        }
    }

    /// The hidden states `(1, rows, hidden)` after the last block, for the rows of every part
    /// of a pass, one part after another, or only for the rows `keep` (`None` when that is
    /// none: the pass only fills the caches).
    fn forward_hidden(
        &self,
        sequences: &mut [&mut Sequence],
        plans: &[Pass],
        parts: &[Part],
        keep: Option<&Tensor>,
    ) -> Result<Option<Tensor>> {
        let tokens: Vec<u32> = parts
            .iter()
            .flat_map(|part| {
                sequences[part.index].tokens[part.start..part.start + part.positions]
                    .iter()
                    .copied()
            })
            .collect();
        let ids = Tensor::new(tokens.as_slice(), &self.device)?.unsqueeze(0)?;
        let mut xs = match &self.embedding {
            EmbeddingWeight::Dense(table) => embedding_rows(table, &ids)?,
            EmbeddingWeight::Quantized(table) => table.embedding(&ids)?.to_dtype(self.dtype)?,
            EmbeddingWeight::Stored(table) => table
                .rows_f32(&tokens, &self.device)?
                .to_dtype(self.dtype)?
                .unsqueeze(0)?,
        };
        let mut rotaries = Vec::with_capacity(parts.len());
        let mut masks = Vec::with_capacity(parts.len());
        for part in parts {
            let (cos, sin) =
                self.rotary
                    .cos_sin(part.start, part.positions, plans[part.index].factor_set)?;
            rotaries.push(RotaryTables {
                cos,
                sin,
                interleaved: self.interleaved_rope,
            });
            masks.push(self.attention_mask(part.start, part.positions)?);
        }
        // Each part's sequence, once: a sequence appears in at most one part of a pass.
        let mut caches: Vec<&mut Vec<KvCache>> = Vec::with_capacity(parts.len());
        {
            let mut by_index: Vec<Option<&mut Vec<KvCache>>> = sequences
                .iter_mut()
                .map(|sequence| Some(&mut sequence.caches))
                .collect();
            for part in parts {
                let cache = by_index[part.index].take().ok_or_else(|| {
                    EngineError::Other("a sequence appears twice in one forward pass".into())
                })?;
                caches.push(cache);
            }
        }
        for (layer, block) in self.blocks.iter().enumerate() {
            let mut segments: Vec<SegmentLayer<'_>> = parts
                .iter()
                .zip(&rotaries)
                .zip(&masks)
                .zip(caches.iter_mut())
                .map(|(((part, rotary), mask), caches)| SegmentLayer {
                    positions: part.positions,
                    rotary,
                    mask: mask.as_ref(),
                    cache: &mut caches[layer],
                })
                .collect();
            let last = layer + 1 == self.blocks.len();
            match block.forward(&xs, &mut segments, keep.filter(|_| last))? {
                Some(next) => xs = next,
                None => return Ok(None),
            }
        }
        Ok(Some(xs))
    }

    /// Final norm and output projection: one f32 row of logits per position.
    fn logits(&self, hidden: &Tensor) -> Result<Vec<Vec<f32>>> {
        let logits = self.lm_head.forward(&self.norm.forward(hidden)?)?;
        Ok(logits.squeeze(0)?.to_dtype(DType::F32)?.to_vec2::<f32>()?)
    }

    /// The additive mask `(positions, start + positions)`: 0 where query `start + i` may attend
    /// to key `j` (j ≤ start + i, and within the sliding window if any), −∞ elsewhere. `None`
    /// when nothing is masked (a single new token with every key in reach).
    fn attention_mask(&self, start: usize, positions: usize) -> Result<Option<Tensor>> {
        let keys = start + positions;
        let window = self.config.sliding_window;
        let outside_window =
            |query: usize, key: usize| window.is_some_and(|window| query - key >= window);
        if positions == 1 && !outside_window(start, 0) {
            return Ok(None);
        }
        let mut mask = Vec::with_capacity(positions * keys);
        for i in 0..positions {
            let query = start + i;
            for key in 0..keys {
                let hidden = key > query || outside_window(query, key);
                mask.push(if hidden { f32::NEG_INFINITY } else { 0.0 });
            }
        }
        Ok(Some(
            Tensor::from_vec(mask, (positions, keys), &self.device)?.to_dtype(self.dtype)?,
        ))
    }
}

/// Row lookup in a dense embedding table: `ids (batch, positions)` → `(batch, positions, hidden)`.
fn embedding_rows(table: &Tensor, ids: &Tensor) -> candle_core::Result<Tensor> {
    let (batch, positions) = ids.dims2()?;
    let hidden = table.dim(1)?;
    table
        .index_select(&ids.flatten_all()?, 0)?
        .reshape((batch, positions, hidden))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The runner shares one loaded model between concurrent requests.
    #[test]
    fn a_decoder_can_be_shared_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Decoder>();
        assert_send_sync::<Sequence>();
    }
}
