//! What a model is asked (`ChatRequest`) and what it answers (`Completion`: text, usage, timings,
//! finish reason), and the `ChatModel` trait that hosted and local models both implement.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::message::Message;
use crate::params::GenerationParams;

/// One request to a chat model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub messages: Vec<Message>,
    pub params: GenerationParams,
}

/// Why generation stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// A stop token or stop string.
    Stop,
    /// The token limit.
    Length,
    ContentFilter,
    ToolCalls,
    /// The server said something else; kept verbatim.
    Other(String),
    /// The server did not say.
    Unknown,
}

impl FinishReason {
    pub fn from_wire(reason: Option<&str>) -> FinishReason {
        match reason {
            None => FinishReason::Unknown,
            Some("stop") | Some("eos") => FinishReason::Stop,
            Some("length") => FinishReason::Length,
            Some("content_filter") => FinishReason::ContentFilter,
            Some("tool_calls") | Some("function_call") => FinishReason::ToolCalls,
            Some(other) => FinishReason::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            FinishReason::Stop => "stop",
            FinishReason::Length => "length",
            FinishReason::ContentFilter => "content_filter",
            FinishReason::ToolCalls => "tool_calls",
            FinishReason::Other(other) => other,
            FinishReason::Unknown => "unknown",
        }
    }
}

/// Token counts as reported by the model's server or engine. Never estimated: a server that
/// reports nothing leaves `Completion::usage` as `None`, and a detail it does not report is
/// `None`.
///
/// `prompt_tokens` counts every input token (cached ones included) and `completion_tokens` every
/// generated one (thinking included), whatever the provider's own split, so that cost and
/// throughput read the same for every API; the details say how much of each was what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Of `completion_tokens`, those spent thinking before the answer (reasoning tokens,
    /// extended thinking, Gemini's thoughts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Of `prompt_tokens`, those read from the provider's prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_prompt_tokens: Option<u64>,
    /// Of `prompt_tokens`, those written to the provider's prompt cache (Anthropic bills them
    /// apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_write_tokens: Option<u64>,
}

impl Usage {
    /// Prompt and completion counts without details.
    pub fn new(prompt_tokens: u64, completion_tokens: u64) -> Usage {
        Usage {
            prompt_tokens,
            completion_tokens,
            reasoning_tokens: None,
            cached_prompt_tokens: None,
            cache_write_tokens: None,
        }
    }

    /// The tokens of the answer itself: completion tokens less thinking, when thinking is known.
    pub fn answer_tokens(&self) -> u64 {
        self.completion_tokens
            .saturating_sub(self.reasoning_tokens.unwrap_or(0))
    }
}

/// What a server measured of its own work (Ollama reports these), in milliseconds; shown beside
/// versus's own measurements, never in their place.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ServerTimings {
    /// The whole request, as the server saw it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_ms: Option<f64>,
    /// Loading the model (0 when it was already loaded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load_ms: Option<f64>,
    /// Reading the prompt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_ms: Option<f64>,
    /// Generating the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation_ms: Option<f64>,
}

impl ServerTimings {
    /// `None` when the server said nothing.
    pub fn nonempty(self) -> Option<ServerTimings> {
        (self != ServerTimings::default()).then_some(self)
    }
}

/// Wall-clock measurements of one successful call, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timings {
    /// From sending the request (of the attempt that succeeded) to the last byte.
    pub latency_ms: f64,
    /// From sending the request to the first text delta; `None` when not streamed.
    pub ttft_ms: Option<f64>,
}

impl Timings {
    /// Output tokens per second over the generation phase (after the first token when known).
    pub fn tokens_per_second(&self, completion_tokens: u64) -> Option<f64> {
        let generation_ms = match self.ttft_ms {
            Some(ttft) if completion_tokens > 1 && self.latency_ms > ttft => {
                return Some((completion_tokens - 1) as f64 / ((self.latency_ms - ttft) / 1000.0));
            }
            _ => self.latency_ms,
        };
        (generation_ms > 0.0 && completion_tokens > 0)
            .then(|| completion_tokens as f64 / (generation_ms / 1000.0))
    }
}

/// A model's answer to one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Completion {
    pub text: String,
    pub finish_reason: FinishReason,
    pub usage: Option<Usage>,
    pub timings: Timings,
    /// The model name the server says answered (it may differ from the one asked for).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub served_model: Option<String>,
    /// How many HTTP requests (or engine runs) it took, retries included.
    pub attempts: u32,
    /// What the model thought before answering (extended thinking, reasoning summaries, thought
    /// parts), kept apart from `text`: never graded, judged or counted as the answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// The server's own timings, when it reports them (Ollama).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_timings: Option<ServerTimings>,
    /// The answer came from a provider's batch API: charged at the batch price, and without
    /// timings of its own (`timings` are zero and mean nothing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub via_batch: bool,
}

/// The broad class of a failure, which decides whether it is retried and what the user is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Missing or rejected credentials (401/403).
    Auth,
    /// Unknown model or endpoint (404).
    NotFound,
    /// The server rejected the request itself (400, 422).
    BadRequest,
    /// 429 after every retry.
    RateLimited,
    /// 5xx after every retry.
    Server,
    Timeout,
    /// Connection refused or reset, or a stream cut mid-way, after every retry.
    Connection,
    /// The server answered something that is not the chat-completions format.
    InvalidResponse,
    /// The model cannot take this input (e.g. images for a text-only model).
    Unsupported,
    /// The user's configuration is incomplete (a missing key, a model this build cannot run).
    Config,
    Cancelled,
    /// The provider withheld the answer (Gemini's SAFETY and similar finish reasons, a prompt
    /// it blocked, Anthropic's `refusal`): recorded as blocked, not as an empty answer.
    Blocked,
}

/// Why a model call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[error("{message}")]
pub struct ModelError {
    pub kind: ErrorKind,
    pub message: String,
    pub attempts: u32,
}

impl ModelError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> ModelError {
        ModelError {
            kind,
            message: message.into(),
            attempts: 0,
        }
    }
}

/// Something that answers chat messages: a hosted API or a model run in-process.
///
/// The runner, `versus chat` and (later) judges all go through this trait, so a local model and a
/// hosted one are interchangeable everywhere.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// Answers one request. Text is passed to `on_text` as it is generated (streamed), and the
    /// whole completion is returned at the end.
    async fn complete(
        &self,
        request: &ChatRequest,
        on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Completion, ModelError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finish_reasons_map_from_the_wire() {
        assert_eq!(FinishReason::from_wire(Some("stop")), FinishReason::Stop);
        assert_eq!(
            FinishReason::from_wire(Some("length")),
            FinishReason::Length
        );
        assert_eq!(FinishReason::from_wire(None), FinishReason::Unknown);
        assert_eq!(FinishReason::from_wire(Some("weird")).as_str(), "weird");
    }

    #[test]
    fn tokens_per_second_excludes_time_to_first_token() {
        let timings = Timings {
            latency_ms: 1100.0,
            ttft_ms: Some(100.0),
        };
        // 11 tokens: the first arrives at 100 ms, the other 10 over the next second.
        assert_eq!(timings.tokens_per_second(11), Some(10.0));
        let unstreamed = Timings {
            latency_ms: 2000.0,
            ttft_ms: None,
        };
        assert_eq!(unstreamed.tokens_per_second(10), Some(5.0));
        assert_eq!(unstreamed.tokens_per_second(0), None);
    }
}
