//! Model specs: the `provider:name` strings that say where a model lives (`openai:gpt-4o-mini`,
//! `anthropic:claude-haiku-4-5`, `gemini:gemini-2.5-flash`, `openai-responses:gpt-4.1`,
//! `azure:my-deployment`, `ollama:llama3.2`, `openai-compatible:llama3`, `hf:microsoft/phi-4@main`,
//! `local:./dir`, `gguf:./model.gguf`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Where a model lives and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ModelSpec {
    /// OpenAI's own chat-completions API.
    OpenAi { model: String },
    /// OpenAI's Responses API (`/v1/responses`); also `openai:MODEL` with `api = "responses"`.
    OpenAiResponses { model: String },
    /// Any server speaking the OpenAI chat-completions API (vLLM, Ollama, llama.cpp, LM Studio, Groq...).
    OpenAiCompatible { model: String },
    /// Anthropic's Messages API.
    Anthropic { model: String },
    /// Google's Generative Language API (Gemini).
    Gemini { model: String },
    /// A deployment on Azure OpenAI (the name is the deployment's, not the model's).
    Azure { deployment: String },
    /// Ollama's native chat API (`/api/chat`).
    Ollama { model: String },
    /// A model on the Hugging Face Hub, run in-process.
    HuggingFace {
        repo: String,
        revision: Option<String>,
    },
    /// A Hugging Face model folder on disk, run in-process.
    LocalDir { path: String },
    /// A single GGUF file, run in-process.
    Gguf { path: String },
}

/// The providers a spec may name, for messages and `did you mean`.
pub const PROVIDERS: &[&str] = &[
    "openai",
    "openai-responses",
    "openai-compatible",
    "anthropic",
    "gemini",
    "azure",
    "ollama",
    "hf",
    "local",
    "gguf",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid model spec `{spec}`: {reason}")]
pub struct SpecError {
    pub spec: String,
    pub reason: String,
}

impl ModelSpec {
    pub fn parse(spec: &str) -> Result<ModelSpec, SpecError> {
        let fail = |reason: String| SpecError {
            spec: spec.to_string(),
            reason,
        };
        let Some((provider, rest)) = spec.split_once(':') else {
            return Err(fail(format!(
                "expected PROVIDER:NAME with PROVIDER one of {}, e.g. `openai:gpt-4o-mini`",
                PROVIDERS.join(", ")
            )));
        };
        let rest = rest.trim();
        if rest.is_empty() {
            return Err(fail(format!("nothing after `{provider}:`")));
        }
        let parsed = match provider {
            "openai" => ModelSpec::OpenAi {
                model: rest.to_string(),
            },
            "openai-responses" => ModelSpec::OpenAiResponses {
                model: rest.to_string(),
            },
            "openai-compatible" => ModelSpec::OpenAiCompatible {
                model: rest.to_string(),
            },
            "anthropic" => ModelSpec::Anthropic {
                model: rest.to_string(),
            },
            "gemini" => ModelSpec::Gemini {
                // `models/gemini-2.5-flash`, as Google's own listings name it, is the same model.
                model: rest.strip_prefix("models/").unwrap_or(rest).to_string(),
            },
            "azure" => ModelSpec::Azure {
                deployment: rest.to_string(),
            },
            "ollama" => ModelSpec::Ollama {
                model: rest.to_string(),
            },
            "hf" => {
                let (repo, revision) = match rest.split_once('@') {
                    Some((repo, revision)) if !revision.is_empty() => {
                        (repo, Some(revision.to_string()))
                    }
                    Some(_) => return Err(fail("empty revision after `@`".into())),
                    None => (rest, None),
                };
                if repo.split('/').filter(|s| !s.is_empty()).count() != 2 {
                    return Err(fail(format!(
                        "a Hub repo is ORG/NAME, e.g. `hf:microsoft/phi-4`, not `{repo}`"
                    )));
                }
                ModelSpec::HuggingFace {
                    repo: repo.to_string(),
                    revision,
                }
            }
            "local" => ModelSpec::LocalDir {
                path: rest.to_string(),
            },
            "gguf" => ModelSpec::Gguf {
                path: rest.to_string(),
            },
            other => {
                let hint = crate::suggest::closest(other, PROVIDERS.iter().copied())
                    .map(|p| format!("; did you mean `{p}`?"))
                    .unwrap_or_default();
                return Err(fail(format!(
                    "unknown provider `{other}` (known: {}){hint}",
                    PROVIDERS.join(", ")
                )));
            }
        };
        Ok(parsed)
    }

    pub fn provider(&self) -> &'static str {
        match self {
            ModelSpec::OpenAi { .. } => "openai",
            ModelSpec::OpenAiResponses { .. } => "openai-responses",
            ModelSpec::OpenAiCompatible { .. } => "openai-compatible",
            ModelSpec::Anthropic { .. } => "anthropic",
            ModelSpec::Gemini { .. } => "gemini",
            ModelSpec::Azure { .. } => "azure",
            ModelSpec::Ollama { .. } => "ollama",
            ModelSpec::HuggingFace { .. } => "hf",
            ModelSpec::LocalDir { .. } => "local",
            ModelSpec::Gguf { .. } => "gguf",
        }
    }

    /// Whether the model runs in this process (as opposed to behind an HTTP API).
    pub fn is_local(&self) -> bool {
        matches!(
            self,
            ModelSpec::HuggingFace { .. } | ModelSpec::LocalDir { .. } | ModelSpec::Gguf { .. }
        )
    }

    /// The name a hosted API is asked for (an Azure deployment's name); `None` for local models.
    pub fn hosted_name(&self) -> Option<&str> {
        match self {
            ModelSpec::OpenAi { model }
            | ModelSpec::OpenAiResponses { model }
            | ModelSpec::OpenAiCompatible { model }
            | ModelSpec::Anthropic { model }
            | ModelSpec::Gemini { model }
            | ModelSpec::Ollama { model } => Some(model),
            ModelSpec::Azure { deployment } => Some(deployment),
            ModelSpec::HuggingFace { .. } | ModelSpec::LocalDir { .. } | ModelSpec::Gguf { .. } => {
                None
            }
        }
    }

    /// A short default id for the model: the model name, or the last path component.
    pub fn default_id(&self) -> String {
        let name = match self {
            ModelSpec::OpenAi { model }
            | ModelSpec::OpenAiResponses { model }
            | ModelSpec::OpenAiCompatible { model }
            | ModelSpec::Anthropic { model }
            | ModelSpec::Gemini { model }
            | ModelSpec::Ollama { model } => model.as_str(),
            ModelSpec::Azure { deployment } => deployment.as_str(),
            ModelSpec::HuggingFace { repo, .. } => repo.as_str(),
            ModelSpec::LocalDir { path } | ModelSpec::Gguf { path } => path.as_str(),
        };
        let last = name
            .trim_end_matches(['/', '\\'])
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or(name);
        let last = last.strip_suffix(".gguf").unwrap_or(last);
        if last.is_empty() {
            name.to_string()
        } else {
            last.to_lowercase()
        }
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelSpec::OpenAi { model } => write!(f, "openai:{model}"),
            ModelSpec::OpenAiResponses { model } => write!(f, "openai-responses:{model}"),
            ModelSpec::OpenAiCompatible { model } => write!(f, "openai-compatible:{model}"),
            ModelSpec::Anthropic { model } => write!(f, "anthropic:{model}"),
            ModelSpec::Gemini { model } => write!(f, "gemini:{model}"),
            ModelSpec::Azure { deployment } => write!(f, "azure:{deployment}"),
            ModelSpec::Ollama { model } => write!(f, "ollama:{model}"),
            ModelSpec::HuggingFace {
                repo,
                revision: Some(rev),
            } => write!(f, "hf:{repo}@{rev}"),
            ModelSpec::HuggingFace {
                repo,
                revision: None,
            } => write!(f, "hf:{repo}"),
            ModelSpec::LocalDir { path } => write!(f, "local:{path}"),
            ModelSpec::Gguf { path } => write!(f, "gguf:{path}"),
        }
    }
}

impl std::str::FromStr for ModelSpec {
    type Err = SpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ModelSpec::parse(s)
    }
}

impl Serialize for ModelSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModelSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ModelSpec::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> ModelSpec {
        let spec = ModelSpec::parse(text).unwrap();
        assert_eq!(spec.to_string(), text);
        spec
    }

    #[test]
    fn parses_every_provider() {
        assert_eq!(
            round_trip("openai:gpt-4o-mini"),
            ModelSpec::OpenAi {
                model: "gpt-4o-mini".into()
            }
        );
        assert!(!round_trip("openai-compatible:llama3.1:8b").is_local());
        assert_eq!(
            round_trip("anthropic:claude-haiku-4-5"),
            ModelSpec::Anthropic {
                model: "claude-haiku-4-5".into()
            }
        );
        assert_eq!(round_trip("gemini:gemini-2.5-flash").provider(), "gemini");
        assert_eq!(
            round_trip("openai-responses:gpt-4.1").provider(),
            "openai-responses"
        );
        assert_eq!(
            round_trip("azure:my-gpt-4o"),
            ModelSpec::Azure {
                deployment: "my-gpt-4o".into()
            }
        );
        assert!(!round_trip("ollama:llama3.2:1b").is_local());
        assert_eq!(
            ModelSpec::parse("gemini:models/gemini-2.5-pro").unwrap(),
            ModelSpec::parse("gemini:gemini-2.5-pro").unwrap(),
            "Google's `models/` prefix names the same model"
        );
        assert_eq!(
            round_trip("hf:microsoft/phi-4@main"),
            ModelSpec::HuggingFace {
                repo: "microsoft/phi-4".into(),
                revision: Some("main".into())
            }
        );
        assert!(round_trip("local:./models/tiny").is_local());
        assert!(round_trip("gguf:/m/phi-4-Q4_K.gguf").is_local());
    }

    #[test]
    fn default_ids_are_short_names() {
        let id = |s: &str| ModelSpec::parse(s).unwrap().default_id();
        assert_eq!(id("openai:gpt-4o-mini"), "gpt-4o-mini");
        assert_eq!(id("hf:microsoft/phi-4"), "phi-4");
        assert_eq!(id("gguf:/m/Phi-4-Q4_K.gguf"), "phi-4-q4_k");
        assert_eq!(id("local:./tiny/"), "tiny");
    }

    #[test]
    fn rejects_bad_specs_with_a_reason() {
        let err = |s: &str| ModelSpec::parse(s).unwrap_err().to_string();
        assert!(err("gpt-4o-mini").contains("PROVIDER:NAME"));
        assert!(err("opena:gpt-4o").contains("did you mean `openai`"));
        assert!(err("antropic:claude").contains("did you mean `anthropic`"));
        assert!(err("hf:phi-4").contains("ORG/NAME"));
        assert!(err("openai:").contains("nothing after"));
    }
}
