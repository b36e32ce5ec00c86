//! Which HTTP API a hosted model is reached through (`WireApi`), and which generation parameters
//! each API takes: a parameter an API does not accept is refused when the suite is loaded, naming
//! the model and the field, never dropped on the way (it would change answers unseen).

use serde::{Deserialize, Serialize};

use crate::params::GenerationParams;
use crate::spec::ModelSpec;

/// The `max_tokens` sent to Anthropic's Messages API, which requires one, when neither the suite
/// nor the command line sets it.
pub const ANTHROPIC_DEFAULT_MAX_TOKENS: u32 = 4096;
/// The smallest thinking budget Anthropic accepts.
pub const ANTHROPIC_MIN_THINKING_BUDGET: u32 = 1024;
/// The most stop sequences Gemini takes.
pub const GEMINI_MAX_STOP_SEQUENCES: usize = 5;

/// Which of OpenAI's two APIs an `openai:` or `azure:` model is asked through (`api = ...`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenAiApi {
    /// `/chat/completions`, the default.
    Chat,
    /// `/responses`.
    Responses,
}

impl std::str::FromStr for OpenAiApi {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "chat" => Ok(OpenAiApi::Chat),
            "responses" => Ok(OpenAiApi::Responses),
            other => Err(format!("unknown api `{other}` (chat, responses)")),
        }
    }
}

/// How hard a reasoning model thinks before answering (the Responses API's `reasoning.effort`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    None,
    Minimal,
    Low,
    Medium,
    High,
    Xhigh,
}

impl ReasoningEffort {
    pub const NAMES: &'static [&'static str] =
        &["none", "minimal", "low", "medium", "high", "xhigh"];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::None => "none",
            ReasoningEffort::Minimal => "minimal",
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
            ReasoningEffort::Xhigh => "xhigh",
        }
    }
}

impl std::str::FromStr for ReasoningEffort {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReasoningEffort::NAMES
            .iter()
            .position(|name| *name == s)
            .map(|index| {
                [
                    ReasoningEffort::None,
                    ReasoningEffort::Minimal,
                    ReasoningEffort::Low,
                    ReasoningEffort::Medium,
                    ReasoningEffort::High,
                    ReasoningEffort::Xhigh,
                ][index]
            })
            .ok_or_else(|| {
                format!(
                    "unknown reasoning_effort `{s}` ({})",
                    ReasoningEffort::NAMES.join(", ")
                )
            })
    }
}

/// The HTTP API a hosted model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireApi {
    /// OpenAI's own `/chat/completions`.
    OpenAiChat,
    /// Another server's copy of `/chat/completions` (vLLM, llama.cpp, LM Studio, ...).
    CompatibleChat,
    OpenAiResponses,
    AnthropicMessages,
    Gemini,
    AzureChat,
    AzureResponses,
    Ollama,
}

/// A generation parameter, by the name a suite gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Param {
    Temperature,
    TopP,
    MaxTokens,
    Seed,
    Stop,
    TopK,
    MinP,
    RepetitionPenalty,
    ThinkingBudget,
    ReasoningEffort,
}

impl Param {
    pub const ALL: [Param; 10] = [
        Param::Temperature,
        Param::TopP,
        Param::MaxTokens,
        Param::Seed,
        Param::Stop,
        Param::TopK,
        Param::MinP,
        Param::RepetitionPenalty,
        Param::ThinkingBudget,
        Param::ReasoningEffort,
    ];

    /// The suite's name for it (`top_p`).
    pub fn name(self) -> &'static str {
        match self {
            Param::Temperature => "temperature",
            Param::TopP => "top_p",
            Param::MaxTokens => "max_tokens",
            Param::Seed => "seed",
            Param::Stop => "stop",
            Param::TopK => "top_k",
            Param::MinP => "min_p",
            Param::RepetitionPenalty => "repetition_penalty",
            Param::ThinkingBudget => "thinking_budget",
            Param::ReasoningEffort => "reasoning_effort",
        }
    }

    /// The command-line flag that sets it, where there is one.
    pub fn flag(self) -> Option<&'static str> {
        match self {
            Param::Temperature => Some("--temperature"),
            Param::TopP => Some("--top-p"),
            Param::MaxTokens => Some("--max-tokens"),
            Param::Seed => Some("--seed"),
            Param::TopK => Some("--top-k"),
            Param::MinP => Some("--min-p"),
            Param::RepetitionPenalty => Some("--repetition-penalty"),
            Param::Stop | Param::ThinkingBudget | Param::ReasoningEffort => None,
        }
    }

    /// Whether `params` sets it.
    pub fn is_set(self, params: &GenerationParams) -> bool {
        match self {
            Param::Temperature => params.temperature.is_some(),
            Param::TopP => params.top_p.is_some(),
            Param::MaxTokens => params.max_tokens.is_some(),
            Param::Seed => params.seed.is_some(),
            Param::Stop => params.stop.is_some(),
            Param::TopK => params.top_k.is_some(),
            Param::MinP => params.min_p.is_some(),
            Param::RepetitionPenalty => params.repetition_penalty.is_some(),
            Param::ThinkingBudget => params.thinking_budget.is_some(),
            Param::ReasoningEffort => params.reasoning_effort.is_some(),
        }
    }
}

/// A parameter (or combination) an API refuses, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamProblem {
    pub param: Param,
    pub reason: String,
}

impl WireApi {
    /// The API a spec speaks, with the suite's `api` choice; `None` for local models.
    pub fn of(spec: &ModelSpec, api: Option<OpenAiApi>) -> Option<WireApi> {
        let responses = api == Some(OpenAiApi::Responses);
        Some(match spec {
            ModelSpec::OpenAi { .. } if responses => WireApi::OpenAiResponses,
            ModelSpec::OpenAi { .. } => WireApi::OpenAiChat,
            ModelSpec::OpenAiResponses { .. } => WireApi::OpenAiResponses,
            ModelSpec::OpenAiCompatible { .. } => WireApi::CompatibleChat,
            ModelSpec::Anthropic { .. } => WireApi::AnthropicMessages,
            ModelSpec::Gemini { .. } => WireApi::Gemini,
            ModelSpec::Azure { .. } if responses => WireApi::AzureResponses,
            ModelSpec::Azure { .. } => WireApi::AzureChat,
            ModelSpec::Ollama { .. } => WireApi::Ollama,
            ModelSpec::HuggingFace { .. } | ModelSpec::LocalDir { .. } | ModelSpec::Gguf { .. } => {
                return None
            }
        })
    }

    /// How messages name it: "the Anthropic Messages API".
    pub fn name(self) -> &'static str {
        match self {
            WireApi::OpenAiChat => "OpenAI's chat-completions API",
            WireApi::CompatibleChat => "the OpenAI-compatible chat-completions API",
            WireApi::OpenAiResponses => "OpenAI's Responses API",
            WireApi::AnthropicMessages => "the Anthropic Messages API",
            WireApi::Gemini => "the Gemini API",
            WireApi::AzureChat => "Azure OpenAI's chat-completions API",
            WireApi::AzureResponses => "Azure OpenAI's Responses API",
            WireApi::Ollama => "Ollama's chat API",
        }
    }

    /// Whether the API has a field for `param`.
    ///
    /// `openai:` and `openai-compatible:` send `top_k`, `min_p` and `repetition_penalty` when set
    /// (vLLM and llama.cpp take them; OpenAI answers 400 to them, which is not silent either).
    pub fn accepts(self, param: Param) -> bool {
        use Param::*;
        match self {
            WireApi::OpenAiChat | WireApi::CompatibleChat => {
                !matches!(param, ThinkingBudget | ReasoningEffort)
            }
            WireApi::AzureChat => matches!(param, Temperature | TopP | MaxTokens | Seed | Stop),
            WireApi::OpenAiResponses | WireApi::AzureResponses => {
                matches!(param, Temperature | TopP | MaxTokens | ReasoningEffort)
            }
            WireApi::AnthropicMessages => {
                matches!(
                    param,
                    Temperature | TopP | MaxTokens | Stop | TopK | ThinkingBudget
                )
            }
            WireApi::Gemini => matches!(
                param,
                Temperature | TopP | MaxTokens | Seed | Stop | TopK | ThinkingBudget
            ),
            WireApi::Ollama => !matches!(param, ThinkingBudget | ReasoningEffort),
        }
    }

    /// The first parameter in `params` this API refuses (absent or out of its range), if any.
    pub fn check(self, params: &GenerationParams) -> Option<ParamProblem> {
        let problem = |param: Param, reason: String| Some(ParamProblem { param, reason });
        for param in Param::ALL {
            if param.is_set(params) && !self.accepts(param) {
                let hint = match (self, param) {
                    (WireApi::AnthropicMessages | WireApi::OpenAiResponses, Param::Seed) => {
                        "; repeated samples of this model are asked without seeds and are not reproducible"
                    }
                    _ => "",
                };
                return problem(
                    param,
                    format!("{} does not take `{}`{hint}", self.name(), param.name()),
                );
            }
        }
        match self {
            WireApi::AnthropicMessages => {
                if let Some(t) = params.temperature.filter(|t| *t > 1.0) {
                    return problem(
                        Param::Temperature,
                        format!("{} takes temperatures from 0 to 1, not {t}", self.name()),
                    );
                }
                if let Some(budget) = params.thinking_budget {
                    if budget < ANTHROPIC_MIN_THINKING_BUDGET {
                        return problem(
                            Param::ThinkingBudget,
                            format!("{} takes a thinking budget of at least {ANTHROPIC_MIN_THINKING_BUDGET} tokens, not {budget}", self.name()),
                        );
                    }
                    let max_tokens = params.max_tokens.unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS);
                    if budget >= max_tokens {
                        return problem(
                            Param::ThinkingBudget,
                            format!("the thinking budget ({budget}) must be below max_tokens ({max_tokens}), which counts the thinking too"),
                        );
                    }
                    if params.temperature.is_some_and(|t| t != 1.0) {
                        return problem(
                            Param::Temperature,
                            format!("with a thinking budget, {} takes only temperature 1 (set `temperature = 1` on this model)", self.name()),
                        );
                    }
                    if params.top_k.is_some() {
                        return problem(
                            Param::TopK,
                            format!(
                                "with a thinking budget, {} does not take `top_k`",
                                self.name()
                            ),
                        );
                    }
                    if params.top_p.is_some_and(|p| p < 0.95) {
                        return problem(
                            Param::TopP,
                            format!(
                                "with a thinking budget, {} takes top_p from 0.95 to 1",
                                self.name()
                            ),
                        );
                    }
                }
            }
            WireApi::Gemini => {
                if let Some(stop) = params
                    .stop
                    .as_ref()
                    .filter(|stop| stop.len() > GEMINI_MAX_STOP_SEQUENCES)
                {
                    return problem(
                        Param::Stop,
                        format!(
                            "{} takes at most {GEMINI_MAX_STOP_SEQUENCES} stop sequences, not {}",
                            self.name(),
                            stop.len()
                        ),
                    );
                }
            }
            _ => {}
        }
        None
    }

    /// Whether a seed makes this API's answers repeatable: versus seeds repeated samples only
    /// where the API takes a seed.
    pub fn takes_seed(self) -> bool {
        self.accepts(Param::Seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(spec: &str) -> WireApi {
        WireApi::of(&ModelSpec::parse(spec).unwrap(), None).unwrap()
    }

    fn refused(api: WireApi, params: GenerationParams) -> Option<(Param, String)> {
        api.check(&params).map(|p| (p.param, p.reason))
    }

    #[test]
    fn each_api_refuses_what_it_cannot_take_by_name() {
        let seeded = GenerationParams {
            seed: Some(1),
            ..Default::default()
        };
        let (param, reason) = refused(api("anthropic:claude"), seeded.clone()).unwrap();
        assert_eq!(param, Param::Seed);
        assert!(
            reason.contains("Anthropic Messages API does not take `seed`"),
            "{reason}"
        );
        assert!(refused(api("openai-responses:gpt"), seeded.clone()).is_some());
        assert!(refused(api("gemini:g"), seeded.clone()).is_none());
        assert!(refused(api("ollama:llama3"), seeded.clone()).is_none());
        assert!(refused(api("openai:gpt"), seeded).is_none());
        let min_p = GenerationParams {
            min_p: Some(0.1),
            ..Default::default()
        };
        for spec in ["gemini:g", "anthropic:c", "azure:d", "openai-responses:o"] {
            assert_eq!(
                refused(api(spec), min_p.clone()).unwrap().0,
                Param::MinP,
                "{spec}"
            );
        }
        assert!(refused(api("ollama:m"), min_p).is_none());
        let stop = GenerationParams {
            stop: Some(vec!["x".into()]),
            ..Default::default()
        };
        assert_eq!(
            refused(api("openai-responses:o"), stop).unwrap().0,
            Param::Stop
        );
    }

    #[test]
    fn the_api_choice_picks_responses() {
        let spec = ModelSpec::parse("openai:gpt-4.1").unwrap();
        assert_eq!(
            WireApi::of(&spec, Some(OpenAiApi::Responses)),
            Some(WireApi::OpenAiResponses)
        );
        let azure = ModelSpec::parse("azure:dep").unwrap();
        assert_eq!(
            WireApi::of(&azure, Some(OpenAiApi::Responses)),
            Some(WireApi::AzureResponses)
        );
        assert_eq!(
            WireApi::of(&ModelSpec::parse("local:./m").unwrap(), None),
            None
        );
    }

    #[test]
    fn anthropic_ranges_and_thinking_rules() {
        let hot = GenerationParams {
            temperature: Some(1.5),
            ..Default::default()
        };
        assert!(refused(api("anthropic:c"), hot)
            .unwrap()
            .1
            .contains("0 to 1"));
        let thinking = |temperature, max_tokens, budget| GenerationParams {
            temperature,
            max_tokens,
            thinking_budget: Some(budget),
            ..Default::default()
        };
        assert!(refused(api("anthropic:c"), thinking(Some(1.0), Some(8000), 2000)).is_none());
        assert_eq!(
            refused(api("anthropic:c"), thinking(Some(0.0), Some(8000), 2000))
                .unwrap()
                .0,
            Param::Temperature
        );
        let (param, reason) = refused(api("anthropic:c"), thinking(None, None, 5000)).unwrap();
        assert_eq!(param, Param::ThinkingBudget);
        assert!(reason.contains("below max_tokens (4096)"), "{reason}");
        assert!(refused(api("anthropic:c"), thinking(None, Some(9000), 100)).is_some());
        assert!(refused(api("gemini:g"), thinking(Some(0.0), None, 0)).is_none());
    }

    #[test]
    fn gemini_takes_five_stop_sequences() {
        let stops = |n: usize| GenerationParams {
            stop: Some((0..n).map(|i| i.to_string()).collect()),
            ..Default::default()
        };
        assert!(refused(api("gemini:g"), stops(5)).is_none());
        assert_eq!(refused(api("gemini:g"), stops(6)).unwrap().0, Param::Stop);
    }

    #[test]
    fn reasoning_efforts_parse_by_name() {
        for name in ReasoningEffort::NAMES {
            assert_eq!(name.parse::<ReasoningEffort>().unwrap().as_str(), *name);
        }
        assert!("extreme".parse::<ReasoningEffort>().is_err());
    }
}
