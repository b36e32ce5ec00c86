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
    #[serde(default)]
    pub params: GenerationParams,
    #[serde(default)]
    pub metadata: ModelMetadata,
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
            params: GenerationParams::default(),
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
