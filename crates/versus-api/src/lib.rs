//! versus-api: hosted chat models over HTTP. `ApiClient` speaks each provider's own format:
//! OpenAI chat completions (OpenAI itself and the many servers that copy it: vLLM, llama.cpp,
//! LM Studio, OpenRouter, ...; `OpenAiClient`), OpenAI's Responses API, Anthropic's Messages API,
//! Google's Gemini API, Azure OpenAI and Ollama's native API. It streams answers (SSE or NDJSON),
//! keeps thinking apart from the answer, and retries transient faults with back-off.
//! `PoolClient` spreads one model over several endpoints (replicas, keys) with ejection,
//! adaptive concurrency and per-key rate budgets.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use versus_api::{ClientConfig, OpenAiClient, OPENAI_BASE_URL};
//! use versus_core::{ChatRequest, Message};
//!
//! let mut config = ClientConfig::new(OPENAI_BASE_URL, "gpt-4o-mini");
//! config.api_key = std::env::var("OPENAI_API_KEY").ok();
//! config.key_hint = Some("OPENAI_API_KEY".into());
//! let client = OpenAiClient::new(config)?;
//! let request = ChatRequest {
//!     messages: vec![Message::user("Say hi")],
//!     params: Default::default(),
//! };
//! let completion = client
//!     .complete_streaming(&request, &mut |text| print!("{text}"))
//!     .await?;
//! println!("\n{:?} in {} attempt(s)", completion.usage, completion.attempts);
//! # Ok(())
//! # }
//! ```

mod anthropic;
mod batch;
mod client;
mod error;
mod fault;
mod gemini;
mod lines;
mod ollama;
mod openai_chat;
mod pool;
mod protocol;
mod responses;
mod retry;
pub mod sse;
pub mod wire;

pub use anthropic::ANTHROPIC_VERSION;
pub use batch::{BatchItem, BatchOutcome, BatchPoll, BatchResult, MAX_BATCH_REQUESTS};
pub use client::{
    destination, Api, ApiClient, AzureAuth, AzureOptions, ClientConfig, Destination, OpenAiClient,
    ResponseLimits, DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, OPENAI_BASE_URL,
};
pub use gemini::GEMINI_API_VERSION;
pub use ollama::OLLAMA_BASE_URL;
pub use pool::{
    PoolClient, PoolEvent, PoolObserver, PoolSettings, DEFAULT_COMPLETION_ESTIMATE,
    EJECT_AFTER_FAILURES, FIRST_EJECTION, MAX_EJECTION,
};

/// Anthropic's API root.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
/// Google's Gemini API root (requests add the API version, `v1`, as the official client does).
pub const GEMINI_BASE_URL: &str = "https://generativelanguage.googleapis.com";
pub use error::ApiError;
pub use retry::{RetryPolicy, MAX_SERVER_DELAY};
