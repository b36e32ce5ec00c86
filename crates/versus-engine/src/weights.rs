//! Model weights, from a Hugging Face folder (safetensors, one file or sharded, memory-mapped),
//! from a llama.cpp GGUF file (quantized tensors stay quantized), or from tensors in memory.
//!
//! The decoder asks for tensors by their Hugging Face names; a GGUF source translates them to
//! llama.cpp's (`model.layers.3.self_attn.o_proj.weight` → `blk.3.attn_output.weight`). Every
//! tensor is checked against the shape the config implies, and every failure (missing tensor,
//! wrong shape or dtype, truncated or corrupt file) is an [`EngineError`] naming the file and the
//! tensor.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::quantized::{gguf_file, GgmlDType, QMatMul, QTensor};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use memmap2::Mmap;

use crate::config::DecoderConfig;
use crate::error::{candle_reason, EngineError};
use crate::matrix::{StoredBytes, StoredFormat, StoredMatrix};

/// Quantization applied to safetensors (or F32/F16 GGUF) weights as they are loaded, for
/// `--quantize q8_0|q4k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quantization {
    /// llama.cpp's Q8_0: blocks of 32 weights with one f16 scale.
    Q8_0,
    /// llama.cpp's Q4_K: super-blocks of 256 weights with 6-bit sub-block scales.
    Q4K,
}

impl Quantization {
    /// Parses `q8_0` or `q4k` (also `q4_k`), case-insensitively.
    pub fn parse(name: &str) -> Option<Quantization> {
        match name.to_ascii_lowercase().as_str() {
            "q8_0" | "q8" => Some(Quantization::Q8_0),
            "q4k" | "q4_k" | "q4_k_m" => Some(Quantization::Q4K),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Quantization::Q8_0 => "q8_0",
            Quantization::Q4K => "q4k",
        }
    }

    fn ggml_dtype(self) -> GgmlDType {
        match self {
            Quantization::Q8_0 => GgmlDType::Q8_0,
            Quantization::Q4K => GgmlDType::Q4K,
        }
    }
}

pub use crate::matrix::Projection;

/// The token embedding: dense, quantized, or stored as the file has it (rows are dequantized
/// or widened as they are looked up, so such a model never holds an f32 copy of its largest
/// matrix).
#[derive(Debug, Clone)]
pub enum EmbeddingWeight {
    Dense(Tensor),
    Quantized(Arc<QTensor>),
    Stored(StoredMatrix),
}

impl EmbeddingWeight {
    /// The same matrix as an output projection (tied embeddings), sharing the storage.
    pub fn as_projection(&self) -> Projection {
        match self {
            EmbeddingWeight::Dense(tensor) => Projection::Candle(QMatMul::Tensor(tensor.clone())),
            EmbeddingWeight::Quantized(tensor) => {
                Projection::Candle(QMatMul::QTensor(tensor.clone()))
            }
            EmbeddingWeight::Stored(matrix) => Projection::Stored(matrix.clone()),
        }
    }

    /// Bytes the table takes.
    pub fn storage_bytes(&self) -> u64 {
        match self {
            EmbeddingWeight::Dense(tensor) => {
                (tensor.elem_count() * tensor.dtype().size_in_bytes()) as u64
            }
            EmbeddingWeight::Quantized(tensor) => tensor.storage_size_in_bytes() as u64,
            EmbeddingWeight::Stored(matrix) => matrix.storage_bytes(),
        }
    }
}

/// Whether a matrix may stay in its stored form for versus's kernels: they run on the CPU with
/// f32 activations.
fn kernels_apply(dtype: DType, device: &Device) -> bool {
    device.is_cpu() && dtype == DType::F32
}

/// A quantized tensor as a projection: stored bytes for versus's kernels when they cover its
/// type (and apply), candle's quantized matmul otherwise.
fn quantized_projection(tensor: QTensor, kernels: bool) -> Result<Projection, String> {
    if kernels {
        if let (Some(format), Ok((rows, cols))) = (
            StoredFormat::from_ggml(tensor.dtype()),
            tensor.shape().dims2(),
        ) {
            let data = tensor.data().map_err(|e| candle_reason(&e))?;
            return StoredMatrix::new(StoredBytes::owned(&data), format, rows, cols)
                .map(Projection::Stored);
        }
    }
    Ok(Projection::Candle(QMatMul::QTensor(Arc::new(tensor))))
}

/// Where tensors come from.
enum Source {
    Safetensors {
        /// Each shard with the path that names it in errors.
        shards: Vec<(PathBuf, MmapedSafetensors)>,
        /// Tensor name → index into `shards`.
        routing: HashMap<String, usize>,
    },
    Gguf {
        path: PathBuf,
        content: gguf_file::Content,
        reader: BufReader<File>,
        /// The whole file, mapped: stored tensors are cut from it without a copy.
        map: Arc<Mmap>,
    },
    Memory(HashMap<String, Tensor>),
}

/// The tensors of one model and how to load them.
pub struct ModelWeights {
    source: Source,
    quantize: Option<Quantization>,
    dequantize: bool,
}

impl std::fmt::Debug for ModelWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelWeights")
            .field("source", &self.describe())
            .field("quantize", &self.quantize)
            .finish()
    }
}

impl ModelWeights {
    /// The weights of a Hugging Face model folder: `model.safetensors`, or the shards listed in
    /// `model.safetensors.index.json`.
    pub fn from_hf_dir(dir: &Path) -> Result<ModelWeights, EngineError> {
        let single = dir.join("model.safetensors");
        if single.is_file() {
            return ModelWeights::from_safetensors(&[single]);
        }
        let index = dir.join("model.safetensors.index.json");
        if index.is_file() {
            let text = std::fs::read_to_string(&index).map_err(|error| EngineError::Io {
                path: index.clone(),
                reason: error.to_string(),
            })?;
            let parsed: serde_json::Value =
                serde_json::from_str(&text).map_err(|error| EngineError::InvalidFile {
                    path: index.clone(),
                    reason: format!("not valid JSON: {error}"),
                })?;
            let Some(weight_map) = parsed.get("weight_map").and_then(|map| map.as_object()) else {
                return Err(EngineError::InvalidFile {
                    path: index,
                    reason: "no `weight_map` object".to_string(),
                });
            };
            let mut files: Vec<PathBuf> = Vec::new();
            for (tensor, file) in weight_map {
                let Some(file) = file.as_str() else {
                    return Err(EngineError::InvalidFile {
                        path: index.clone(),
                        reason: format!("`weight_map.{tensor}` is not a file name"),
                    });
                };
                let path = dir.join(file);
                if !files.contains(&path) {
                    files.push(path);
                }
            }
            files.sort();
            return ModelWeights::from_safetensors(&files);
        }
        Err(EngineError::Io {
            path: dir.to_path_buf(),
            reason: "no model.safetensors or model.safetensors.index.json in the model folder"
                .to_string(),
        })
    }

    /// The weights of one or more safetensors files, memory-mapped.
    pub fn from_safetensors(files: &[PathBuf]) -> Result<ModelWeights, EngineError> {
        let mut shards = Vec::with_capacity(files.len());
        let mut routing = HashMap::new();
        for path in files {
            if !path.is_file() {
                return Err(EngineError::Io {
                    path: path.clone(),
                    reason: "file not found".to_string(),
                });
            }
            // SAFETY: the file is mapped read-only and must not be modified while the model is
            // loaded, the same assumption transformers and every other mmap-based loader make.
            // The header is validated against the file length before any tensor is read.
            #[allow(unsafe_code)]
            let tensors = unsafe { MmapedSafetensors::new(path) }.map_err(|error| {
                EngineError::InvalidFile {
                    path: path.clone(),
                    reason: format!(
                        "not a complete safetensors file (truncated or corrupt?): {}",
                        candle_reason(&error)
                    ),
                }
            })?;
            for (name, _) in tensors.tensors() {
                routing.insert(name, shards.len());
            }
            shards.push((path.clone(), tensors));
        }
        Ok(ModelWeights {
            source: Source::Safetensors { shards, routing },
            quantize: None,
            dequantize: false,
        })
    }

    /// Opens a GGUF file: its hyper-parameters and its tensors. Tensors that run past the end of
    /// the file are reported here, before anything is loaded.
    pub fn from_gguf(path: &Path) -> Result<(DecoderConfig, ModelWeights), EngineError> {
        let crate::gguf::CheckedGguf {
            content,
            mut reader,
            ..
        } = crate::gguf::read_content(path)?;
        let config = DecoderConfig::from_gguf(&content, &mut reader, &path.display().to_string())?;
        // SAFETY: the file is mapped read-only and must not be modified while the model is
        // loaded, the assumption llama.cpp and every other mmap-based loader make; every
        // tensor's range was checked against the file's length above.
        #[allow(unsafe_code)]
        let map = unsafe { Mmap::map(reader.get_ref()) }.map_err(|error| EngineError::Io {
            path: path.to_path_buf(),
            reason: format!("cannot map the file: {error}"),
        })?;
        let weights = ModelWeights {
            source: Source::Gguf {
                path: path.to_path_buf(),
                content,
                reader,
                map: Arc::new(map),
            },
            quantize: None,
            dequantize: false,
        };
        Ok((config, weights))
    }

    /// Tensors already in memory, by Hugging Face name (tests, benchmarks, converters).
    pub fn from_tensors(tensors: HashMap<String, Tensor>) -> ModelWeights {
        ModelWeights {
            source: Source::Memory(tensors),
            quantize: None,
            dequantize: false,
        }
    }

    /// Quantizes dense projection and embedding matrices while loading. A matrix whose rows do
    /// not fill whole blocks falls back to Q8_0 (Q4_K needs multiples of 256), then to dense.
    pub fn with_quantization(mut self, quantize: Option<Quantization>) -> ModelWeights {
        self.quantize = quantize;
        self
    }

    /// Dequantizes quantized (GGUF) tensors to the compute dtype while loading: the float
    /// computation on the quantized weights, which is what transformers computes on weights
    /// dequantized from a GGUF (no activation quantization).
    pub fn dequantized(mut self) -> ModelWeights {
        self.dequantize = true;
        self
    }

    /// Whether q and k rows are in llama.cpp's order for its `llama` architecture. Its converter
    /// permutes them so that llama.cpp's interleaved ("normal") RoPE, which rotates pairs
    /// (2i, 2i+1), computes what transformers' rotate-half RoPE computes on pairs (i, i + d/2).
    /// The decoder then applies the interleaved variant, as candle's quantized_llama does.
    /// phi3 and qwen2 GGUFs are not permuted (llama.cpp runs them with NeoX RoPE).
    pub fn qk_rows_interleaved(&self) -> bool {
        match &self.source {
            Source::Gguf { content, .. } => matches!(
                content.metadata.get("general.architecture"),
                Some(gguf_file::Value::String(architecture)) if architecture == "llama"
            ),
            Source::Safetensors { .. } | Source::Memory(_) => false,
        }
    }

    /// Whether a tensor (by Hugging Face name) is present.
    pub fn contains(&self, name: &str) -> bool {
        match &self.source {
            Source::Safetensors { routing, .. } => routing.contains_key(name),
            Source::Gguf { content, .. } => {
                gguf_name(name).is_some_and(|gguf| content.tensor_infos.contains_key(&gguf))
            }
            Source::Memory(tensors) => tensors.contains_key(name),
        }
    }

    /// A short description of the source, for messages.
    pub fn describe(&self) -> String {
        match &self.source {
            Source::Safetensors { shards, .. } => match shards.as_slice() {
                [(path, _)] => path.display().to_string(),
                shards => format!("{} safetensors shards", shards.len()),
            },
            Source::Gguf { path, .. } => path.display().to_string(),
            Source::Memory(_) => "tensors in memory".to_string(),
        }
    }

    /// A norm weight or bias: always dense, in `dtype`.
    pub fn vector(
        &mut self,
        name: &str,
        len: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<Tensor, EngineError> {
        match self.load(name, &[len], device, false)? {
            Loaded::Dense(tensor) => self.convert(name, tensor.to_dtype(dtype)),
            Loaded::Quantized(tensor) => self.convert(
                name,
                tensor.dequantize(device).and_then(|t| t.to_dtype(dtype)),
            ),
            Loaded::Stored(_) => Err(self.tensor_error(name, "a vector cannot be a stored matrix")),
        }
    }

    /// A projection matrix `(out_features, in_features)`: quantized and half-precision tensors
    /// stay as stored for versus's kernels on the CPU (quantized ones stay quantized on a GPU
    /// too), other dense ones are converted to `dtype` (or quantized, if asked).
    pub fn projection(
        &mut self,
        name: &str,
        shape: (usize, usize),
        dtype: DType,
        device: &Device,
    ) -> Result<Projection, EngineError> {
        let kernels = kernels_apply(dtype, device);
        let projection = match self.load(name, &[shape.0, shape.1], device, kernels)? {
            Loaded::Stored(matrix) => Ok(Projection::Stored(matrix)),
            Loaded::Quantized(tensor) => quantized_projection(tensor, kernels)
                .map_err(|reason| self.tensor_error(name, reason)),
            Loaded::Dense(tensor) => match self.quantize_dense(name, &tensor)? {
                Some(quantized) => quantized_projection(quantized, kernels)
                    .map_err(|reason| self.tensor_error(name, reason)),
                None => Ok(Projection::Candle(QMatMul::Tensor(
                    self.convert(name, tensor.to_dtype(dtype))?,
                ))),
            },
        }?;
        Ok(match projection {
            Projection::Stored(matrix) => Projection::Stored(matrix.for_matmul()),
            candle => candle,
        })
    }

    /// The token embedding `(vocab_size, hidden_size)`.
    pub fn embedding(
        &mut self,
        name: &str,
        shape: (usize, usize),
        dtype: DType,
        device: &Device,
    ) -> Result<EmbeddingWeight, EngineError> {
        let kernels = kernels_apply(dtype, device);
        let quantized =
            |weights: &Self, tensor: QTensor| match quantized_projection(tensor, kernels)
                .map_err(|reason| weights.tensor_error(name, reason))?
            {
                Projection::Stored(matrix) => Ok(EmbeddingWeight::Stored(matrix)),
                Projection::Candle(QMatMul::QTensor(tensor)) => {
                    Ok(EmbeddingWeight::Quantized(tensor))
                }
                Projection::Candle(_) => {
                    Err(weights.tensor_error(name, "a quantized embedding became dense"))
                }
            };
        match self.load(name, &[shape.0, shape.1], device, kernels)? {
            Loaded::Stored(matrix) => Ok(EmbeddingWeight::Stored(matrix)),
            Loaded::Quantized(tensor) => quantized(self, tensor),
            Loaded::Dense(tensor) => match self.quantize_dense(name, &tensor)? {
                Some(tensor) => quantized(self, tensor),
                None => Ok(EmbeddingWeight::Dense(
                    self.convert(name, tensor.to_dtype(dtype))?,
                )),
            },
        }
    }

    /// The name of the file holding `name`, for errors.
    fn file_of(&self, name: &str) -> String {
        match &self.source {
            Source::Safetensors { shards, routing } => match routing.get(name) {
                Some(&index) => shards[index].0.display().to_string(),
                None => self.describe(),
            },
            Source::Gguf { .. } | Source::Memory(_) => self.describe(),
        }
    }

    /// The name as the file spells it (llama.cpp's for GGUF).
    fn native_name(&self, name: &str) -> String {
        match &self.source {
            Source::Gguf { .. } => gguf_name(name).unwrap_or_else(|| name.to_string()),
            Source::Safetensors { .. } | Source::Memory(_) => name.to_string(),
        }
    }

    fn tensor_error(&self, name: &str, reason: impl Into<String>) -> EngineError {
        EngineError::Tensor {
            file: self.file_of(name),
            name: self.native_name(name),
            reason: reason.into(),
        }
    }

    fn convert(
        &self,
        name: &str,
        result: candle_core::Result<Tensor>,
    ) -> Result<Tensor, EngineError> {
        result.map_err(|error| self.tensor_error(name, candle_reason(&error)))
    }

    /// Loads one tensor, checking that it exists, has `shape` and a supported dtype. With
    /// `stored`, a matrix whose stored form versus's kernels take (quantized, or half precision
    /// when nothing asked to quantize it) comes as that, cut from the mapped file when there is
    /// one.
    fn load(
        &mut self,
        name: &str,
        shape: &[usize],
        device: &Device,
        stored: bool,
    ) -> Result<Loaded, EngineError> {
        let (file, native_name) = (self.file_of(name), self.native_name(name));
        let dequantize = self.dequantize;
        let requantize = self.quantize.is_some();
        let error = |reason: String| EngineError::Tensor {
            file: file.clone(),
            name: native_name.clone(),
            reason,
        };
        let missing = || error("missing".to_string());
        let wrong_shape =
            |found: &[usize]| error(format!("has shape {found:?}, the config implies {shape:?}"));
        match &mut self.source {
            Source::Safetensors { shards, routing } => {
                let Some(&index) = routing.get(name) else {
                    return Err(missing());
                };
                let tensors = &shards[index].1;
                let view = tensors.get(name).map_err(|e| error(candle_reason(&e)))?;
                if view.shape() != shape {
                    return Err(wrong_shape(view.shape()));
                }
                let half = match view.dtype() {
                    safetensors::Dtype::F16 => Some(StoredFormat::F16),
                    safetensors::Dtype::BF16 => Some(StoredFormat::Bf16),
                    _ => None,
                };
                if let (true, false, Some(format), [rows, cols]) = (stored, requantize, half, shape)
                {
                    return StoredMatrix::new(
                        StoredBytes::owned(view.data()),
                        format,
                        *rows,
                        *cols,
                    )
                    .map(Loaded::Stored)
                    .map_err(error);
                }
                let tensor = tensors
                    .load(name, device)
                    .map_err(|e| error(candle_reason(&e)))?;
                match tensor.dtype() {
                    DType::BF16 | DType::F16 | DType::F32 => {}
                    other => {
                        return Err(error(format!(
                            "stored as {other:?}; expected bf16, f16 or f32"
                        )))
                    }
                }
                Ok(Loaded::Dense(tensor))
            }
            Source::Gguf {
                content,
                reader,
                map,
                ..
            } => {
                let gguf = gguf_name(name).unwrap_or_else(|| name.to_string());
                let Some(info) = content.tensor_infos.get(&gguf) else {
                    return Err(missing());
                };
                if info.shape.dims() != shape {
                    return Err(wrong_shape(info.shape.dims()));
                }
                let quantized = !matches!(
                    info.ggml_dtype,
                    GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16
                );
                if let (true, false, Some(format), [rows, cols]) = (
                    stored && (quantized || !requantize),
                    dequantize,
                    StoredFormat::from_ggml(info.ggml_dtype),
                    shape,
                ) {
                    let start = content.tensor_data_offset + info.offset;
                    let block = info.ggml_dtype.block_size();
                    let len = info.shape.elem_count() / block * info.ggml_dtype.type_size();
                    let bytes = usize::try_from(start)
                        .ok()
                        .and_then(|start| StoredBytes::mapped(map, start, len))
                        .ok_or_else(|| error("its data runs past the end of the file".into()))?;
                    return StoredMatrix::new(bytes, format, *rows, *cols)
                        .map(Loaded::Stored)
                        .map_err(error);
                }
                let tensor = content
                    .tensor(reader, &gguf, device)
                    .map_err(|e| error(format!("cannot read: {}", candle_reason(&e))))?;
                match tensor.dtype() {
                    // Unquantized GGUF tensors are plain tensors.
                    GgmlDType::F32 | GgmlDType::F16 | GgmlDType::BF16 => {
                        let dense = tensor
                            .dequantize(device)
                            .map_err(|e| error(candle_reason(&e)))?;
                        Ok(Loaded::Dense(dense))
                    }
                    _ if dequantize => {
                        let dense = tensor
                            .dequantize(device)
                            .map_err(|e| error(candle_reason(&e)))?;
                        Ok(Loaded::Dense(dense))
                    }
                    _ => Ok(Loaded::Quantized(tensor)),
                }
            }
            Source::Memory(tensors) => {
                let Some(tensor) = tensors.get(name) else {
                    return Err(missing());
                };
                if tensor.dims() != shape {
                    return Err(wrong_shape(tensor.dims()));
                }
                let tensor = tensor
                    .to_device(device)
                    .map_err(|e| error(candle_reason(&e)))?;
                Ok(Loaded::Dense(tensor))
            }
        }
    }

    /// Quantizes a dense matrix if quantization was asked for and its rows fill whole blocks.
    fn quantize_dense(&self, name: &str, tensor: &Tensor) -> Result<Option<QTensor>, EngineError> {
        let Some(quantize) = self.quantize else {
            return Ok(None);
        };
        let row = tensor.dims().last().copied().unwrap_or(0);
        // llama.cpp falls back the same way for rows that Q4_K's 256-wide blocks do not divide.
        let dtype = [quantize.ggml_dtype(), GgmlDType::Q8_0]
            .into_iter()
            .find(|dtype| row % dtype.block_size() == 0);
        let Some(dtype) = dtype else {
            return Ok(None);
        };
        quantize_in_parallel(tensor, dtype)
            .map(Some)
            .map_err(|error| {
                self.tensor_error(
                    name,
                    format!("cannot quantize to {dtype:?}: {}", candle_reason(&error)),
                )
            })
    }
}

/// `tensor` quantized to `dtype` as `QTensor::quantize` does it, its rows split over candle's
/// CPU pool: each block is quantized on its own, so slices of rows give the same bytes. Why:
/// candle's K-quant quantizer searches each block's scales and runs on one thread; quantizing a
/// Phi-4-shaped model's two layers to Q4_K on load took 22 s on one of the development
/// machine's two cores (about 7 minutes for the 40-layer model).
fn quantize_in_parallel(tensor: &Tensor, dtype: GgmlDType) -> candle_core::Result<QTensor> {
    let threads = crate::kernels::threads();
    let rows = match tensor.dims() {
        [rows, _] if tensor.device().is_cpu() && threads > 1 && *rows >= 2 * threads => *rows,
        _ => return QTensor::quantize(tensor, dtype),
    };
    // Several slices a thread, so that one slow slice does not leave the others idle.
    let slice_rows = rows.div_ceil((4 * threads).min(rows));
    let slices = rows.div_ceil(slice_rows);
    let quantize_slice = |slice: usize| {
        let start = slice * slice_rows;
        let part = tensor.narrow(0, start, slice_rows.min(rows - start))?;
        // A storage of its own: `QTensor::quantize` reads its source's whole storage,
        // whatever the view's offset (candle 0.11), and `copy` keeps the offset.
        let shape = part.shape().clone();
        let values = part.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let part = Tensor::from_vec(values, shape, &Device::Cpu)?;
        Ok(QTensor::quantize(&part, dtype)?.data()?.into_owned())
    };
    // A pool call a thread's worth of slices at a time: the pool takes one call at a time, and
    // a model already answering beside this one waits at most one slice for its next step.
    let mut bytes = Vec::new();
    for first in (0..slices).step_by(threads) {
        let call = (first + threads).min(slices) - first;
        let parts: Vec<candle_core::Result<Vec<u8>>> =
            crate::kernels::map_on_pool(call, |offset| quantize_slice(first + offset));
        for part in parts {
            bytes.extend_from_slice(&part?);
        }
    }
    let storage = candle_core::quantized::QStorage::from_data(
        std::borrow::Cow::Owned(bytes),
        &Device::Cpu,
        dtype,
    )?;
    QTensor::new(storage, tensor.shape())
}

enum Loaded {
    Dense(Tensor),
    Quantized(QTensor),
    Stored(StoredMatrix),
}

/// llama.cpp's name for a Hugging Face tensor name. The fused Phi-3 `gate_up_proj` and the
/// separate `up_proj` both map to `ffn_up`; the decoder tells them apart by the presence of
/// `ffn_gate`.
pub fn gguf_name(hf_name: &str) -> Option<String> {
    match hf_name {
        "model.embed_tokens.weight" => return Some("token_embd.weight".to_string()),
        "model.norm.weight" => return Some("output_norm.weight".to_string()),
        "lm_head.weight" => return Some("output.weight".to_string()),
        _ => {}
    }
    let rest = hf_name.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, suffix) = part.rsplit_once('.')?;
    let gguf_module = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.qkv_proj" => "attn_qkv",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_up_proj" | "mlp.up_proj" => "ffn_up",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{gguf_module}.{suffix}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gguf_names_follow_llama_cpp() {
        assert_eq!(
            gguf_name("model.embed_tokens.weight").as_deref(),
            Some("token_embd.weight")
        );
        assert_eq!(
            gguf_name("model.layers.12.self_attn.qkv_proj.weight").as_deref(),
            Some("blk.12.attn_qkv.weight")
        );
        assert_eq!(
            gguf_name("model.layers.0.self_attn.q_proj.bias").as_deref(),
            Some("blk.0.attn_q.bias")
        );
        assert_eq!(
            gguf_name("model.layers.1.mlp.gate_up_proj.weight").as_deref(),
            Some("blk.1.ffn_up.weight")
        );
        assert_eq!(
            gguf_name("model.layers.1.post_attention_layernorm.weight").as_deref(),
            Some("blk.1.ffn_norm.weight")
        );
        assert_eq!(
            gguf_name("lm_head.weight").as_deref(),
            Some("output.weight")
        );
        assert_eq!(gguf_name("model.layers.x.mlp.up_proj.weight"), None);
    }

    #[test]
    fn quantization_names() {
        assert_eq!(Quantization::parse("Q8_0"), Some(Quantization::Q8_0));
        assert_eq!(Quantization::parse("q4k"), Some(Quantization::Q4K));
        assert_eq!(Quantization::parse("q3"), None);
    }

    #[test]
    fn quantizing_rows_in_parallel_gives_candles_bytes() {
        // Safetensors hold F16 or BF16 weights; three rows are too few to split.
        for (rows, cols, dtype, stored) in [
            (37, 512, GgmlDType::Q4K, DType::F32),
            (64, 256, GgmlDType::Q8_0, DType::F32),
            (40, 256, GgmlDType::Q4K, DType::F16),
            (3, 256, GgmlDType::Q4K, DType::F32),
        ] {
            let values: Vec<f32> = (0..rows * cols)
                .map(|i| ((i * 7919 % 1000) as f32 / 500.0 - 1.0) * (1.0 + (i % 13) as f32))
                .collect();
            let tensor = Tensor::from_vec(values, (rows, cols), &Device::Cpu)
                .and_then(|tensor| tensor.to_dtype(stored))
                .expect("tensor");
            let ours = quantize_in_parallel(&tensor, dtype).expect("in parallel");
            let theirs = QTensor::quantize(&tensor, dtype).expect("candle's");
            assert_eq!(ours.shape(), theirs.shape());
            assert_eq!(
                ours.data().expect("bytes"),
                theirs.data().expect("bytes"),
                "{rows} x {cols} {stored:?} to {dtype:?}"
            );
        }
    }
}
