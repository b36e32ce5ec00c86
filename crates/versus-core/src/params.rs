//! Generation parameters, and how suite defaults, model overrides and task overrides layer onto each other.

use serde::{Deserialize, Serialize};

use crate::wire_api::ReasoningEffort;

/// What a model is asked to do when sampling. `None` means "the server's or engine's default".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerationParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<Vec<String>>,
    /// Sample only among the k most likely tokens. Not part of OpenAI's API; vLLM and local
    /// models take it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Drop tokens less likely than `min_p` times the most likely one (vLLM, local models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    /// transformers' multiplicative repetition penalty; 1.0 is none (vLLM, local models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f64>,
    /// Tokens a model may spend thinking before it answers (Anthropic's extended thinking,
    /// Gemini's `thinkingBudget`; 0 turns Gemini's thinking off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_budget: Option<u32>,
    /// How hard a reasoning model thinks (the Responses API's `reasoning.effort`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<ReasoningEffort>,
}

impl GenerationParams {
    /// `self` with every field that `over` sets replaced by `over`'s value.
    pub fn overlaid(&self, over: &GenerationParams) -> GenerationParams {
        GenerationParams {
            temperature: over.temperature.or(self.temperature),
            top_p: over.top_p.or(self.top_p),
            max_tokens: over.max_tokens.or(self.max_tokens),
            seed: over.seed.or(self.seed),
            stop: over.stop.clone().or_else(|| self.stop.clone()),
            top_k: over.top_k.or(self.top_k),
            min_p: over.min_p.or(self.min_p),
            repetition_penalty: over.repetition_penalty.or(self.repetition_penalty),
            thinking_budget: over.thinking_budget.or(self.thinking_budget),
            reasoning_effort: over.reasoning_effort.or(self.reasoning_effort),
        }
    }

    /// The parameters of sample `sample` (0-based) of a cell asked `samples` times.
    ///
    /// One sample is asked as written. Repeated samples that sample (temperature not 0) get
    /// seed `base + sample`, where `base` is the seed the suite sets (0 when it sets none), so
    /// every sample is reproducible, cacheable under its own key and different from the others.
    /// Greedy samples are asked as written: their answers differ only where the server is not
    /// deterministic, which is what repeating them measures. An API that takes no seed
    /// (`seedable` false: Anthropic's, the Responses API) gets its samples as written too, each
    /// under its own cache key and none reproducible.
    pub fn for_sample(&self, sample: u32, samples: u32, seedable: bool) -> GenerationParams {
        let greedy = self.temperature == Some(0.0);
        if samples <= 1 || greedy || !seedable {
            return self.clone();
        }
        GenerationParams {
            seed: Some(self.seed.unwrap_or(0).wrapping_add(u64::from(sample))),
            ..self.clone()
        }
    }

    /// Whether two calls with these parameters should give the same answer, so that a stored
    /// answer may stand in for a new call: greedy decoding, or sampling with a fixed seed.
    pub fn is_reproducible(&self) -> bool {
        self.seed.is_some() || self.temperature.unwrap_or(1.0) == 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_prefers_the_override_field_by_field() {
        let base = GenerationParams {
            temperature: Some(0.0),
            max_tokens: Some(100),
            stop: Some(vec!["x".into()]),
            ..Default::default()
        };
        let over = GenerationParams {
            max_tokens: Some(256),
            seed: Some(3),
            ..Default::default()
        };
        let merged = base.overlaid(&over);
        assert_eq!(merged.temperature, Some(0.0));
        assert_eq!(merged.max_tokens, Some(256));
        assert_eq!(merged.seed, Some(3));
        assert_eq!(merged.stop, Some(vec!["x".to_string()]));
    }

    #[test]
    fn repeated_samples_that_sample_are_seeded_base_plus_index() {
        let sampled = GenerationParams {
            temperature: Some(0.7),
            ..Default::default()
        };
        let seeds = |params: &GenerationParams, samples: u32| -> Vec<Option<u64>> {
            (0..samples)
                .map(|i| params.for_sample(i, samples, true).seed)
                .collect()
        };
        assert_eq!(seeds(&sampled, 1), [None], "one sample is asked as written");
        assert_eq!(seeds(&sampled, 3), [Some(0), Some(1), Some(2)]);
        let seeded = GenerationParams {
            seed: Some(40),
            ..sampled.clone()
        };
        assert_eq!(seeds(&seeded, 3), [Some(40), Some(41), Some(42)]);
        assert!((0..3).all(|i| sampled.for_sample(i, 3, true).is_reproducible()));
        assert!(
            (0..3).all(|i| !sampled.for_sample(i, 3, false).is_reproducible()),
            "an API without seeds is not made to look reproducible"
        );
        let greedy = GenerationParams {
            temperature: Some(0.0),
            ..Default::default()
        };
        assert_eq!(seeds(&greedy, 3), [None, None, None]);
        // The server's default temperature samples.
        assert_eq!(seeds(&GenerationParams::default(), 2), [Some(0), Some(1)]);
    }

    #[test]
    fn reproducible_means_greedy_or_seeded() {
        let greedy = GenerationParams {
            temperature: Some(0.0),
            ..Default::default()
        };
        let seeded = GenerationParams {
            temperature: Some(0.7),
            seed: Some(1),
            ..Default::default()
        };
        let sampled = GenerationParams {
            temperature: Some(0.7),
            ..Default::default()
        };
        assert!(greedy.is_reproducible());
        assert!(seeded.is_reproducible());
        assert!(!sampled.is_reproducible());
        // The server default temperature is not zero for any API we know of.
        assert!(!GenerationParams::default().is_reproducible());
    }
}
