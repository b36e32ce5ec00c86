//! versus-api: hosted chat models over HTTP. `OpenAiClient` speaks the OpenAI chat-completions
//! format (OpenAI itself and the many servers that copy it: vLLM, llama.cpp, Ollama, LM Studio,
//! OpenRouter, ...), streams answers over SSE, and retries transient faults with back-off.
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

mod client;
mod error;
mod fault;
mod retry;
pub mod sse;
pub mod wire;

pub use client::{
    destination, ClientConfig, Destination, OpenAiClient, ResponseLimits,
    DEFAULT_MAX_RESPONSE_BYTES, DEFAULT_TIMEOUT, OPENAI_BASE_URL,
};
pub use error::ApiError;
pub use retry::{RetryPolicy, MAX_SERVER_DELAY};
