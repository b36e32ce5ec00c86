//! `LocalModel`: a model loaded in-process, answering chat requests through the `ChatModel` trait
//! like a hosted one: chat template, tokenizer, generation on a blocking thread, usage and timings.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use candle_core::{DType, Device};
use versus_core::{
    ChatModel, ChatRequest, Completion, DTypeChoice, DeviceChoice, ErrorKind, FinishReason,
    Message, ModelError, ModelSpec, Quantization, Timings, Usage,
};

use crate::decoder::Decoder;
use crate::error::EngineError;
use crate::generate::{Finish, GenerateOptions};
use crate::sampling::SamplingParams;
use crate::scheduler::{self, BatchLimits, Event, Scheduler, Submitted};
use crate::source::{self, ModelFiles};
use crate::template::ChatTemplate;
use crate::tokenizer::Tokenizer;
use crate::weights;

/// How to load a local model.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub dtype: DTypeChoice,
    pub quantize: Option<Quantization>,
    pub device: DeviceChoice,
    /// Extra chat template variables (`chat_template_kwargs`).
    pub chat_template_kwargs: BTreeMap<String, serde_json::Value>,
    /// Load even when the memory estimate says it will not fit.
    pub force: bool,
    /// Tokens of context to plan memory for (prompt plus answer).
    pub context_for_estimate: usize,
    /// The most requests decoded together (continuous batching); `None`: the default,
    /// [`scheduler::DEFAULT_MAX_BATCH`].
    pub max_batch: Option<usize>,
    /// Bytes the batch's KV caches may take together; `None`: half the memory available
    /// after loading (a request that does not fit waits for others to finish).
    pub kv_budget_bytes: Option<u64>,
}

/// What `versus model inspect` and reports show about a loaded model, read from the model itself.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    pub name: String,
    pub architecture: String,
    pub parameters: u64,
    /// The compute dtype, or the quantization of the weights.
    pub dtype: String,
    pub context_length: usize,
    pub device: String,
    pub vocab_size: usize,
    pub layers: usize,
    pub hidden_size: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub bos_token: Option<String>,
    pub eos_token: Option<String>,
    pub stop_token_ids: Vec<u32>,
    pub chat_template: Option<String>,
}

/// Sampling defaults from `generation_config.json`, which transformers applies when the request
/// leaves a setting unset.
#[derive(Debug, Clone, Default)]
struct GenerationDefaults {
    do_sample: bool,
    temperature: Option<f64>,
    top_k: Option<usize>,
    top_p: Option<f64>,
    min_p: Option<f64>,
    repetition_penalty: Option<f64>,
    max_new_tokens: Option<usize>,
}

struct Loaded {
    tokenizer: Arc<Tokenizer>,
    template: ChatTemplate,
    info: ModelInfo,
    defaults: GenerationDefaults,
    template_kwargs: serde_json::Map<String, serde_json::Value>,
    /// Runs every request's generation, several in one batch (continuous batching).
    scheduler: Scheduler,
    kv_bytes_per_position: u64,
}

/// A model run in-process. Cheap to clone.
#[derive(Clone)]
pub struct LocalModel {
    loaded: Arc<Loaded>,
}

/// Answers this long at most when the request names no limit.
const DEFAULT_MAX_NEW_TOKENS: usize = 1024;

/// Bytes of prompt text per token of context beyond which a prompt cannot fit (no vocabulary has
/// tokens this long).
const MAX_BYTES_PER_TOKEN: usize = 128;

impl LocalModel {
    /// Resolves the spec (downloading from the Hub when needed) and loads the model.
    pub async fn load(spec: &ModelSpec, options: LoadOptions) -> Result<LocalModel, EngineError> {
        let files = source::resolve(spec).await?;
        let name = spec.to_string();
        tokio::task::spawn_blocking(move || LocalModel::load_files(&files, &name, &options))
            .await
            .map_err(|e| EngineError::Other(format!("loading {e}")))?
    }

    /// Loads a model from files on disk (blocking: reads and converts every weight).
    pub fn load_files(
        files: &ModelFiles,
        name: &str,
        options: &LoadOptions,
    ) -> Result<LocalModel, EngineError> {
        let device = pick_device(options.device)?;
        let (decoder, tokenizer, defaults, stored) = match files {
            ModelFiles::Folder { dir } => {
                let stored = stored_dtype(dir);
                let dtype = compute_dtype(options.dtype, &device, stored);
                check_memory(files, name, options, dtype, stored)?;
                let quantize = options.quantize.map(|q| match q {
                    Quantization::Q8_0 => weights::Quantization::Q8_0,
                    Quantization::Q4K => weights::Quantization::Q4K,
                });
                let decoder = Decoder::from_hf_dir(dir, &device, dtype, quantize)?;
                let tokenizer = Tokenizer::from_folder(dir)?;
                (decoder, tokenizer, generation_defaults(dir), stored)
            }
            ModelFiles::Gguf { path } => {
                let dtype = compute_dtype(options.dtype, &device, None);
                check_memory(files, name, options, dtype, None)?;
                let metadata = read_gguf_metadata(path)?;
                let tokenizer = Tokenizer::from_gguf(&metadata)?;
                let decoder = Decoder::from_gguf(path, &device, dtype)?;
                (decoder, tokenizer, GenerationDefaults::default(), None)
            }
        };
        let mut template = ChatTemplate::from_tokenizer(&tokenizer, name)?.ok_or_else(|| {
            EngineError::Template {
                model: name.to_string(),
                reason: "the model has no chat template (tokenizer_config.json `chat_template` or GGUF `tokenizer.chat_template`); versus needs one to turn messages into a prompt".into(),
            }
        })?;
        if let ModelFiles::Gguf { path } = files {
            template = template.with_origin(&format!(
                "{} (GGUF metadata `tokenizer.chat_template`)",
                path.display()
            ));
        }
        let config = decoder.config();
        let mut stop_token_ids = tokenizer.eos_token_ids();
        for id in &config.eos_token_ids {
            if !stop_token_ids.contains(id) {
                stop_token_ids.push(*id);
            }
        }
        let dtype_label = match (options.quantize, files) {
            (Some(q), ModelFiles::Folder { .. }) => {
                format!("{q:?} (quantized on load)").to_lowercase()
            }
            (_, ModelFiles::Gguf { path }) => format!("gguf ({})", gguf_types(path)),
            (None, _) => format!(
                "{:?}{}",
                decoder.dtype(),
                stored
                    .map(|s| format!(" (stored {s:?})"))
                    .unwrap_or_default()
            )
            .to_lowercase(),
        };
        let info = ModelInfo {
            name: name.to_string(),
            architecture: config.architecture.clone(),
            parameters: config.parameter_count(),
            dtype: dtype_label,
            context_length: config.max_position_embeddings,
            device: device_label(&device),
            vocab_size: config.vocab_size,
            layers: config.num_layers,
            hidden_size: config.hidden_size,
            heads: config.num_heads,
            kv_heads: config.num_kv_heads,
            bos_token: tokenizer.bos_token().map(str::to_string),
            eos_token: tokenizer.eos_token().map(str::to_string),
            stop_token_ids,
            chat_template: tokenizer.chat_template().map(str::to_string),
        };
        let decoder = Arc::new(decoder);
        let tokenizer = Arc::new(tokenizer);
        let limits = BatchLimits {
            max_batch: options
                .max_batch
                .unwrap_or(scheduler::DEFAULT_MAX_BATCH)
                .max(1),
            prefill_chunk: scheduler::DEFAULT_PREFILL_CHUNK,
            kv_budget_bytes: options.kv_budget_bytes.unwrap_or_else(|| {
                source::available_memory().map_or(u64::MAX, |available| available / 2)
            }),
        };
        let kv_bytes_per_position = decoder.kv_bytes_per_position();
        let scheduler = Scheduler::start(
            Arc::clone(&decoder),
            Arc::clone(&tokenizer),
            limits,
            kv_bytes_per_position,
        )?;
        Ok(LocalModel {
            loaded: Arc::new(Loaded {
                tokenizer,
                template,
                info,
                defaults,
                template_kwargs: options.chat_template_kwargs.clone().into_iter().collect(),
                scheduler,
                kv_bytes_per_position,
            }),
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.loaded.info
    }

    /// The most requests this model decodes together: what a caller should send at once.
    pub fn max_batch(&self) -> usize {
        self.loaded.scheduler.limits().max_batch
    }

    /// Bytes one position of one request's KV cache takes (every layer's keys and values).
    pub fn kv_bytes_per_position(&self) -> u64 {
        self.loaded.kv_bytes_per_position
    }

    /// What the model's scheduler has done so far (forward passes, batch sizes).
    pub fn batch_stats(&self) -> scheduler::BatchStats {
        self.loaded.scheduler.stats()
    }

    /// The prompt text the chat template makes of `messages`, with the generation prompt.
    pub fn render_prompt(&self, messages: &[Message]) -> Result<String, EngineError> {
        self.loaded
            .template
            .render(messages, true, &self.loaded.template_kwargs)
    }

    /// Token ids of `messages`, as transformers' `apply_chat_template(tokenize=True)` gives them:
    /// the rendered prompt encoded without adding special tokens (the template writes them).
    pub fn prompt_ids(&self, messages: &[Message]) -> Result<Vec<u32>, EngineError> {
        let prompt = self.render_prompt(messages)?;
        // No token is this long: a prompt past it cannot fit the context, and tokenizing
        // hundreds of megabytes a template wrote would take minutes.
        let most = self
            .loaded
            .info
            .context_length
            .saturating_mul(MAX_BYTES_PER_TOKEN);
        if prompt.len() > most {
            return Err(EngineError::Template {
                model: self.loaded.info.name.clone(),
                reason: format!(
                    "the prompt it rendered is {} bytes, more than the model's context of {} tokens can hold",
                    prompt.len(),
                    self.loaded.info.context_length
                ),
            });
        }
        self.loaded.tokenizer.encode(&prompt, false)
    }

    /// The decoding settings for a request: the request's, then generation_config's defaults.
    fn options_for(&self, request: &ChatRequest, prompt_len: usize) -> GenerateOptions {
        let params = &request.params;
        let defaults = &self.loaded.defaults;
        let temperature = match params.temperature {
            Some(t) => Some(t),
            None if defaults.do_sample => defaults.temperature.or(Some(1.0)),
            None => Some(0.0),
        };
        let context_left = self
            .loaded
            .info
            .context_length
            .saturating_sub(prompt_len)
            .max(1);
        let max_new_tokens = params
            .max_tokens
            .map(|m| m as usize)
            .or(defaults.max_new_tokens)
            .unwrap_or(DEFAULT_MAX_NEW_TOKENS)
            .min(context_left);
        GenerateOptions {
            max_new_tokens,
            sampling: SamplingParams {
                temperature,
                top_k: params.top_k.map(|k| k as usize).or(defaults.top_k),
                top_p: params.top_p.or(defaults.top_p),
                min_p: params.min_p.or(defaults.min_p),
                repetition_penalty: params.repetition_penalty.or(defaults.repetition_penalty),
                seed: params.seed,
            },
            stop_ids: self.loaded.info.stop_token_ids.clone(),
            stop_strings: params.stop.clone().unwrap_or_default(),
            fallback_seed: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
        }
    }
}

#[async_trait]
impl ChatModel for LocalModel {
    async fn complete(
        &self,
        request: &ChatRequest,
        on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Completion, ModelError> {
        // The clock starts at arrival: time waiting for a place in the batch is part of this
        // request's latency and time to first token, as it would be at a server.
        let start = Instant::now();
        let to_model_error = |kind: ErrorKind| {
            move |e: EngineError| ModelError {
                kind,
                message: e.to_string(),
                attempts: 1,
            }
        };
        let prompt_ids = self
            .prompt_ids(&request.messages)
            .map_err(to_model_error(ErrorKind::BadRequest))?;
        let context = self.loaded.info.context_length;
        if prompt_ids.len() >= context {
            return Err(ModelError {
                kind: ErrorKind::BadRequest,
                message: format!(
                    "the prompt is {} tokens, and {} takes at most {context}",
                    prompt_ids.len(),
                    self.loaded.info.name
                ),
                attempts: 1,
            });
        }
        let options = self.options_for(request, prompt_ids.len());
        let prompt_len = prompt_ids.len();
        let Submitted {
            mut events, cancel, ..
        } = self
            .loaded
            .scheduler
            .submit(prompt_ids, options, start)
            .map_err(to_model_error(ErrorKind::Server))?;
        // Dropping this future (the runner cancelled the call) stops the generation.
        struct CancelOnDrop(Arc<AtomicBool>);
        impl Drop for CancelOnDrop {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _guard = CancelOnDrop(cancel);
        let mut outcome = None;
        while let Some(event) = events.recv().await {
            match event {
                Event::Text(piece) => on_text(&piece),
                Event::Done(result) => {
                    outcome = Some(result);
                    break;
                }
            }
        }
        let generation = outcome
            .ok_or_else(|| {
                ModelError::new(
                    ErrorKind::Server,
                    "the generation stopped without an answer",
                )
            })?
            .map_err(to_model_error(ErrorKind::Server))?;
        let finish_reason = match generation.finish {
            Finish::Stop => FinishReason::Stop,
            Finish::Length => FinishReason::Length,
            Finish::Cancelled => FinishReason::Other("cancelled".into()),
        };
        let latency = start.elapsed();
        Ok(Completion {
            text: generation.text,
            finish_reason,
            usage: Some(Usage::new(prompt_len as u64, generation.ids.len() as u64)),
            timings: Timings {
                latency_ms: latency.as_secs_f64() * 1000.0,
                // From the request's arrival to the first token (waiting and prefill
                // included), as a server's TTFT.
                ttft_ms: Some(generation.time_to_first_token.as_secs_f64() * 1000.0),
            },
            served_model: Some(self.loaded.info.name.clone()),
            attempts: 1,
            thinking: None,
            server_timings: None,
            via_batch: false,
        })
    }
}

fn pick_device(choice: DeviceChoice) -> Result<Device, EngineError> {
    let unavailable = |what: &str| {
        EngineError::Other(format!(
            "device {what} is not available: this build of versus has no {what} support (build with `--features {what}`) or no such device is present"
        ))
    };
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda(n) => Device::new_cuda(n).map_err(|_| unavailable("cuda")),
        DeviceChoice::Metal => Device::new_metal(0).map_err(|_| unavailable("metal")),
        DeviceChoice::Auto => {
            if candle_core::utils::cuda_is_available() {
                Device::new_cuda(0).map_err(EngineError::from)
            } else if candle_core::utils::metal_is_available() {
                Device::new_metal(0).map_err(EngineError::from)
            } else {
                Ok(Device::Cpu)
            }
        }
    }
}

fn device_label(device: &Device) -> String {
    match device {
        Device::Cpu => "cpu".into(),
        Device::Cuda(_) => "cuda".into(),
        Device::Metal(_) => "metal".into(),
    }
}

/// The dtype the weights are stored in, from config.json's `torch_dtype` (or `dtype`).
fn stored_dtype(dir: &Path) -> Option<DType> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let config: serde_json::Value = serde_json::from_str(&text).ok()?;
    let name = config
        .get("torch_dtype")
        .or_else(|| config.get("dtype"))?
        .as_str()?;
    match name {
        "float32" => Some(DType::F32),
        "float16" => Some(DType::F16),
        "bfloat16" => Some(DType::BF16),
        _ => None,
    }
}

/// `auto` computes in f32 on the CPU (candle's bf16 CPU matmul is about 15x slower than f32, and
/// f32 is what the references compute in) and in the stored type on a GPU.
fn compute_dtype(choice: DTypeChoice, device: &Device, stored: Option<DType>) -> DType {
    match choice {
        DTypeChoice::F32 => DType::F32,
        DTypeChoice::F16 => DType::F16,
        DTypeChoice::Bf16 => DType::BF16,
        DTypeChoice::Auto if device.is_cpu() => DType::F32,
        DTypeChoice::Auto => stored.unwrap_or(DType::F16),
    }
}

fn generation_defaults(dir: &Path) -> GenerationDefaults {
    let Some(config) = std::fs::read_to_string(dir.join("generation_config.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
    else {
        return GenerationDefaults::default();
    };
    GenerationDefaults {
        do_sample: config["do_sample"].as_bool().unwrap_or(false),
        temperature: config["temperature"].as_f64(),
        top_k: config["top_k"].as_u64().map(|k| k as usize),
        top_p: config["top_p"].as_f64(),
        min_p: config["min_p"].as_f64(),
        repetition_penalty: config["repetition_penalty"].as_f64(),
        max_new_tokens: config["max_new_tokens"].as_u64().map(|m| m as usize),
    }
}

fn read_gguf_metadata(
    path: &Path,
) -> Result<std::collections::HashMap<String, candle_core::quantized::gguf_file::Value>, EngineError>
{
    Ok(crate::gguf::read_content(path)?.content.metadata)
}

/// The tensor types of a GGUF file, e.g. "q8_0, f32".
fn gguf_types(path: &Path) -> String {
    let Ok(crate::gguf::CheckedGguf { content, .. }) = crate::gguf::read_content(path) else {
        return "unknown".into();
    };
    let mut types: Vec<String> = content
        .tensor_infos
        .values()
        .map(|t| format!("{:?}", t.ggml_dtype).to_lowercase())
        .collect();
    types.sort();
    types.dedup();
    types.join(", ")
}

/// Refuses to load a model that will not fit in memory, with the estimate and what is available.
fn check_memory(
    files: &ModelFiles,
    name: &str,
    options: &LoadOptions,
    dtype: DType,
    stored: Option<DType>,
) -> Result<(), EngineError> {
    if options.force {
        return Ok(());
    }
    let Some(available) = source::available_memory() else {
        return Ok(());
    };
    let on_disk = files.weight_bytes();
    let weights = match (files, options.quantize, stored) {
        (ModelFiles::Gguf { .. }, ..) => on_disk,
        // Q8_0 keeps 34 bytes per 32 weights, Q4_K 144 per 256; from 2-byte stored weights.
        (_, Some(Quantization::Q8_0), _) => on_disk / 2 * 34 / 32,
        (_, Some(Quantization::Q4K), _) => on_disk / 2 * 144 / 256,
        (_, None, Some(from)) => {
            on_disk / from.size_in_bytes() as u64 * dtype.size_in_bytes() as u64
        }
        (_, None, None) => on_disk,
    };
    // Plus a tenth for activations, the KV cache of a typical request and the runtime.
    let estimate = weights + weights / 10 + 256 * 1024 * 1024;
    if estimate > available {
        return Err(EngineError::Other(format!(
            "{name} needs about {:.1} GiB of memory in {dtype:?} and {:.1} GiB is available; try --quantize q8_0 or q4k, a smaller dtype, or --force to load anyway",
            estimate as f64 / (1u64 << 30) as f64,
            available as f64 / (1u64 << 30) as f64
        )));
    }
    Ok(())
}
