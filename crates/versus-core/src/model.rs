//! A model as a suite names it: id, spec, endpoint, generation overrides, and the metadata a
//! report shows (size, context length, modalities, price), with defaults for well-known models.

use serde::{Deserialize, Serialize};

use crate::completion::Usage;
use crate::params::GenerationParams;
use crate::spec::ModelSpec;
use crate::wire_api::{OpenAiApi, WireApi};

/// What a model can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Modality {
    Text,
    Image,
}

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub input: f64,
    pub output: f64,
}

/// Facts about a model shown in reports. Every field is optional: unknown is shown as unknown.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ModelMetadata {
    /// Parameter count as people write it ("14B", "3.8B").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    /// What the model reads; empty means unknown, which is treated as text only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub modalities: Vec<Modality>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<Price>,
    /// Where `price` comes from when versus's catalogue supplied it (and when it was read);
    /// `None` for a price the suite gives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price_source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    /// How the weights are computed with: `f32`, `bf16`, a quantization such as `q8_0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<String>,
    /// Where a local model runs (`cpu`, `cuda`, `metal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
}

impl ModelMetadata {
    /// `self` with the gaps filled from `fallback`.
    pub fn or(&self, fallback: &ModelMetadata) -> ModelMetadata {
        ModelMetadata {
            parameters: self
                .parameters
                .clone()
                .or_else(|| fallback.parameters.clone()),
            context_length: self.context_length.or(fallback.context_length),
            modalities: if self.modalities.is_empty() {
                fallback.modalities.clone()
            } else {
                self.modalities.clone()
            },
            price: self.price.or(fallback.price),
            // The source goes with the price it describes.
            price_source: if self.price.is_some() {
                self.price_source.clone()
            } else {
                fallback.price_source.clone()
            },
            architecture: self
                .architecture
                .clone()
                .or_else(|| fallback.architecture.clone()),
            dtype: self.dtype.clone().or_else(|| fallback.dtype.clone()),
            device: self.device.clone().or_else(|| fallback.device.clone()),
        }
    }

    pub fn accepts_images(&self) -> bool {
        self.modalities.contains(&Modality::Image)
    }

    /// The cost of one answer taken through a batch API: the list price times
    /// [`BATCH_PRICE_FACTOR`].
    pub fn batch_cost_usd(&self, usage: Option<Usage>) -> Option<f64> {
        self.cost_usd(usage).map(|cost| cost * BATCH_PRICE_FACTOR)
    }

    /// The cost of one call, when the price and the server's token counts are both known.
    pub fn cost_usd(&self, usage: Option<Usage>) -> Option<f64> {
        let price = self.price?;
        let usage = usage?;
        Some(
            (usage.prompt_tokens as f64 * price.input
                + usage.completion_tokens as f64 * price.output)
                / 1_000_000.0,
        )
    }
}

/// What the batch APIs versus uses charge, as a share of the list price: OpenAI's Batch API,
/// Anthropic's Message Batches and Gemini's batch mode each take half (their pricing pages, read
/// 2026-12-07).
pub const BATCH_PRICE_FACTOR: f64 = 0.5;

/// The number format a local model computes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DTypeChoice {
    /// f32 on CPU (candle's bf16 CPU matmul is about 15x slower than f32), the stored type on GPUs.
    #[default]
    Auto,
    F32,
    F16,
    Bf16,
}

/// Quantization applied to safetensors weights as they are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Quantization {
    #[serde(rename = "q8_0")]
    Q8_0,
    #[serde(rename = "q4k")]
    Q4K,
}

/// Where a local model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA or Metal when this build has it and one is present, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
    Metal,
}

impl std::str::FromStr for DTypeChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(DTypeChoice::Auto),
            "f32" => Ok(DTypeChoice::F32),
            "f16" => Ok(DTypeChoice::F16),
            "bf16" => Ok(DTypeChoice::Bf16),
            other => Err(format!("unknown dtype `{other}` (auto, f32, f16, bf16)")),
        }
    }
}

impl std::str::FromStr for Quantization {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "q8_0" => Ok(Quantization::Q8_0),
            "q4k" | "q4_k" => Ok(Quantization::Q4K),
            other => Err(format!("unknown quantization `{other}` (q8_0, q4k)")),
        }
    }
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "metal" => Ok(DeviceChoice::Metal),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| {
                    format!("unknown device `{other}` (auto, cpu, cuda, cuda:N, metal)")
                }),
        }
    }
}

impl std::fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceChoice::Metal => f.write_str("metal"),
        }
    }
}

impl Serialize for DeviceChoice {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DeviceChoice {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// How a local model is loaded and prompted; hosted models ignore it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LocalOptions {
    #[serde(default)]
    pub dtype: DTypeChoice,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantize: Option<Quantization>,
    #[serde(default)]
    pub device: DeviceChoice,
    /// Extra variables for the chat template (vLLM's name), e.g. `date_string`.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub chat_template_kwargs: std::collections::BTreeMap<String, serde_json::Value>,
    /// Load even when the memory estimate says the model does not fit.
    #[serde(default)]
    pub force: bool,
    /// The most requests the local engine decodes together (continuous batching); `None`: the
    /// engine's default. Not part of the cache key: batching does not change answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
}

impl LocalOptions {
    /// What, besides the spec, decides a local model's answers: part of its cache key.
    pub fn cache_identity(&self) -> String {
        let quantize = match self.quantize {
            Some(Quantization::Q8_0) => "q8_0",
            Some(Quantization::Q4K) => "q4k",
            None => "none",
        };
        format!(
            "local dtype={:?} quantize={quantize} device={} template_kwargs={}",
            self.dtype,
            self.device,
            serde_json::to_string(&self.chat_template_kwargs).unwrap_or_default()
        )
    }
}

/// A model taking part in a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The name used in reports and on the command line.
    pub id: String,
    pub spec: ModelSpec,
    /// The API root for hosted models (`.../v1`); `None` uses the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// The environment variable holding the API key; `None` uses the provider's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// Several API roots serving the same model (replicas): with `api_key_envs`, each (URL, key)
    /// pair is one endpoint of the model's pool (docs/endpoint-pools.md). Empty: `base_url` alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub base_urls: Vec<String>,
    /// Several variables holding keys for the same model, each an endpoint of its pool with each
    /// URL. Empty: `api_key_env` (or the provider's variable) alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_key_envs: Vec<String>,
    /// Whether the endpoints of a pool are part of the cache key: `false` (the default) shares
    /// answers across replicas, since they serve the same model.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pool_in_cache_key: bool,
    /// A budget of requests per minute for each key of this model; `None`: no budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// A budget of tokens (prompt and completion) per minute for each key; `None`: no budget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
    /// Which of OpenAI's APIs an `azure:` model is asked through (`openai:` models asked
    /// through the Responses API become `openai-responses:` specs instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api: Option<OpenAiApi>,
    /// Azure OpenAI's `api-version` (the classic `/openai/deployments/...` URLs); `None` uses
    /// the v1 API (`/openai/v1/...`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// Whether to ask for a streamed answer (and so measure time to first token).
    #[serde(default = "default_true")]
    pub stream: bool,
    /// Requests in flight at once for this model; `None` uses the suite default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// How many times each task is asked of this model; `None` uses the suite default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub samples: Option<u32>,
    #[serde(default)]
    pub params: GenerationParams,
    #[serde(default)]
    pub metadata: ModelMetadata,
    #[serde(default)]
    pub local: LocalOptions,
}

fn default_true() -> bool {
    true
}

impl ModelConfig {
    /// A model named only by its spec, with catalogue metadata when the model is well known.
    pub fn from_spec(spec: ModelSpec) -> ModelConfig {
        ModelConfig {
            id: spec.default_id(),
            metadata: known_metadata(&spec).unwrap_or_default(),
            spec,
            base_url: None,
            api_key_env: None,
            base_urls: Vec::new(),
            api_key_envs: Vec::new(),
            pool_in_cache_key: false,
            requests_per_minute: None,
            tokens_per_minute: None,
            api: None,
            api_version: None,
            stream: true,
            concurrency: None,
            samples: None,
            params: GenerationParams::default(),
            local: LocalOptions::default(),
        }
    }

    /// How many endpoints the model's requests are spread over: one per (URL, key) pair of its
    /// `base_urls` and `api_key_envs`; 1 for a model with one of each (and for local models).
    pub fn endpoint_count(&self) -> usize {
        self.base_urls.len().max(1) * self.api_key_envs.len().max(1)
    }

    /// The HTTP API the model is asked through; `None` for local models.
    pub fn wire_api(&self) -> Option<WireApi> {
        WireApi::of(&self.spec, self.api)
    }
}

/// One model of the builtin catalogue: context length in tokens, list price in USD per million
/// tokens (input, output; `None` where the provider's price is tiered in a way one figure would
/// misstate), and whether it reads images.
struct CatalogueEntry {
    name: &'static str,
    context: Option<u64>,
    price: Option<(f64, f64)>,
    images: bool,
}

const fn entry(
    name: &'static str,
    context: Option<u64>,
    price: Option<(f64, f64)>,
    images: bool,
) -> CatalogueEntry {
    CatalogueEntry {
        name,
        context,
        price,
        images,
    }
}

/// OpenAI's list prices as published in 2025 (the first catalogue; not re-read since).
const OPENAI_CATALOGUE: &[CatalogueEntry] = &[
    entry("gpt-4o-mini", Some(128_000), Some((0.15, 0.60)), true),
    entry("gpt-4o", Some(128_000), Some((2.50, 10.00)), true),
    entry("gpt-4.1", Some(1_047_576), Some((2.00, 8.00)), true),
    entry("gpt-4.1-mini", Some(1_047_576), Some((0.40, 1.60)), true),
    entry("gpt-4.1-nano", Some(1_047_576), Some((0.10, 0.40)), true),
    entry("gpt-3.5-turbo", Some(16_385), Some((0.50, 1.50)), false),
];
const OPENAI_SOURCE: &str = "versus catalogue: OpenAI list price, 2025";

/// Anthropic's models, read on 2026-12-07 from Anthropic's model and pricing pages
/// (platform.claude.com/docs: models overview, each model's page, pricing). Standard prices
/// for prompts of any length; the Batch API halves both.
const ANTHROPIC_CATALOGUE: &[CatalogueEntry] = &[
    entry("claude-opus-5-5", Some(1_000_000), Some((4.0, 20.0)), true),
    entry("claude-opus-5", Some(1_000_000), Some((5.0, 25.0)), true),
    entry("claude-sonnet-5", Some(1_000_000), Some((2.0, 10.0)), true),
    entry("claude-haiku-4-5", Some(200_000), Some((1.0, 5.0)), true),
    entry(
        "claude-haiku-4-5-20251001",
        Some(200_000),
        Some((1.0, 5.0)),
        true,
    ),
    entry("claude-opus-4-6", None, Some((5.0, 25.0)), true),
    entry("claude-sonnet-4-6", None, Some((3.0, 15.0)), true),
    entry("claude-opus-4-5", Some(200_000), Some((5.0, 25.0)), true),
    entry("claude-sonnet-4-5", Some(200_000), Some((3.0, 15.0)), true),
    entry(
        "claude-sonnet-4-5-20250929",
        Some(200_000),
        Some((3.0, 15.0)),
        true,
    ),
    entry("claude-opus-4-1", Some(200_000), Some((15.0, 75.0)), true),
];
const ANTHROPIC_SOURCE: &str =
    "versus catalogue: Anthropic list price read 2026-12-07 (platform.claude.com pricing)";

/// Google's Gemini models, read on 2026-12-07 from the Gemini API's pricing page
/// (ai.google.dev/gemini-api/docs/pricing, paid tier, text and image input) and model pages.
/// The Pro models charge more for prompts over 200,000 tokens; the price here is the one for
/// shorter prompts. Output prices include thinking tokens.
const GEMINI_CATALOGUE: &[CatalogueEntry] = &[
    entry(
        "gemini-3-pro-preview",
        Some(1_048_576),
        Some((2.0, 12.0)),
        true,
    ),
    entry(
        "gemini-3-flash-preview",
        Some(1_048_576),
        Some((0.50, 3.0)),
        true,
    ),
    entry("gemini-2.5-pro", Some(1_048_576), Some((1.25, 10.0)), true),
    entry(
        "gemini-2.5-flash",
        Some(1_048_576),
        Some((0.30, 2.50)),
        true,
    ),
    entry(
        "gemini-2.5-flash-lite",
        Some(1_048_576),
        Some((0.10, 0.40)),
        true,
    ),
];
const GEMINI_SOURCE: &str =
    "versus catalogue: Gemini API list price read 2026-12-07 (ai.google.dev pricing, prompts up to 200k tokens)";

/// Published facts about well-known hosted models, used when a suite does not say (a suite's
/// own values win). Each price says where it came from and when it was read
/// (`ModelMetadata::price_source`).
pub fn known_metadata(spec: &ModelSpec) -> Option<ModelMetadata> {
    let (name, catalogue, source) = match spec {
        ModelSpec::OpenAi { model } | ModelSpec::OpenAiResponses { model } => {
            (model, OPENAI_CATALOGUE, OPENAI_SOURCE)
        }
        ModelSpec::Anthropic { model } => (model, ANTHROPIC_CATALOGUE, ANTHROPIC_SOURCE),
        ModelSpec::Gemini { model } => (model, GEMINI_CATALOGUE, GEMINI_SOURCE),
        _ => return None,
    };
    let found = catalogue.iter().find(|entry| entry.name == name.as_str())?;
    Some(ModelMetadata {
        parameters: None,
        context_length: found.context,
        modalities: if found.images {
            vec![Modality::Text, Modality::Image]
        } else {
            vec![Modality::Text]
        },
        price: found.price.map(|(input, output)| Price { input, output }),
        price_source: found.price.map(|_| source.to_string()),
        architecture: None,
        dtype: None,
        device: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_needs_price_and_usage() {
        let metadata = known_metadata(&ModelSpec::parse("openai:gpt-4o-mini").unwrap()).unwrap();
        let usage = Usage::new(1_000_000, 500_000);
        let cost = metadata.cost_usd(Some(usage)).unwrap();
        assert!((cost - 0.45).abs() < 1e-12);
        assert_eq!(metadata.cost_usd(None), None);
        assert_eq!(ModelMetadata::default().cost_usd(Some(usage)), None);
    }

    #[test]
    fn suite_metadata_wins_over_the_catalogue() {
        let spec = ModelSpec::parse("openai:gpt-4o-mini").unwrap();
        let mine = ModelMetadata {
            context_length: Some(8000),
            ..Default::default()
        };
        let merged = mine.or(&known_metadata(&spec).unwrap());
        assert_eq!(merged.context_length, Some(8000));
        assert!(merged.accepts_images());
        assert!(merged.price.is_some());
        assert!(merged.price_source.is_some());
        let priced = ModelMetadata {
            price: Some(Price {
                input: 1.0,
                output: 2.0,
            }),
            ..Default::default()
        };
        assert_eq!(
            priced.or(&known_metadata(&spec).unwrap()).price_source,
            None,
            "the catalogue's source does not describe the suite's price"
        );
    }

    #[test]
    fn the_catalogue_knows_anthropic_and_gemini_models_with_dated_prices() {
        let known = |spec: &str| known_metadata(&ModelSpec::parse(spec).unwrap()).unwrap();
        let haiku = known("anthropic:claude-haiku-4-5");
        assert_eq!(haiku.context_length, Some(200_000));
        assert_eq!(
            haiku.price,
            Some(Price {
                input: 1.0,
                output: 5.0
            })
        );
        assert!(haiku.accepts_images());
        assert!(haiku.price_source.unwrap().contains("2026-12-07"));
        let flash = known("gemini:gemini-2.5-flash");
        assert_eq!(flash.context_length, Some(1_048_576));
        assert!(flash.price_source.unwrap().contains("ai.google.dev"));
        assert!(known_metadata(&ModelSpec::parse("anthropic:claude-unknown").unwrap()).is_none());
        assert!(known_metadata(&ModelSpec::parse("ollama:llama3").unwrap()).is_none());
    }

    #[test]
    fn unknown_models_get_no_invented_metadata() {
        let config = ModelConfig::from_spec(ModelSpec::parse("openai-compatible:llama3").unwrap());
        assert_eq!(config.metadata, ModelMetadata::default());
        assert_eq!(config.id, "llama3");
    }
}
