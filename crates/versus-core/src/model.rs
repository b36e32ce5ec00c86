//! A model as a suite names it: id, spec, endpoint, generation overrides, and the metadata a
//! report shows (size, context length, modalities, price), with defaults for well-known models.

use serde::{Deserialize, Serialize};

use crate::completion::Usage;
use crate::params::GenerationParams;
use crate::spec::ModelSpec;

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
            stream: true,
            concurrency: None,
            samples: None,
            params: GenerationParams::default(),
            local: LocalOptions::default(),
        }
    }
}

/// Published facts about well-known hosted models (list prices in USD per million tokens, as
/// published by the provider in 2025), used when a suite does not say. A suite's own values win.
pub fn known_metadata(spec: &ModelSpec) -> Option<ModelMetadata> {
    let ModelSpec::OpenAi { model } = spec else {
        return None;
    };
    // (name, context length, input price, output price, reads images)
    const OPENAI: &[(&str, u64, f64, f64, bool)] = &[
        ("gpt-4o-mini", 128_000, 0.15, 0.60, true),
        ("gpt-4o", 128_000, 2.50, 10.00, true),
        ("gpt-4.1", 1_047_576, 2.00, 8.00, true),
        ("gpt-4.1-mini", 1_047_576, 0.40, 1.60, true),
        ("gpt-4.1-nano", 1_047_576, 0.10, 0.40, true),
        ("gpt-3.5-turbo", 16_385, 0.50, 1.50, false),
    ];
    let (_, context, input, output, images) =
        OPENAI.iter().find(|(name, ..)| *name == model.as_str())?;
    Some(ModelMetadata {
        parameters: None,
        context_length: Some(*context),
        modalities: if *images {
            vec![Modality::Text, Modality::Image]
        } else {
            vec![Modality::Text]
        },
        price: Some(Price {
            input: *input,
            output: *output,
        }),
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
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 500_000,
        };
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
    }

    #[test]
    fn unknown_models_get_no_invented_metadata() {
        let config = ModelConfig::from_spec(ModelSpec::parse("openai-compatible:llama3").unwrap());
        assert_eq!(config.metadata, ModelMetadata::default());
        assert_eq!(config.id, "llama3");
    }
}
