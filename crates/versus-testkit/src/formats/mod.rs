//! The wire formats the fake server speaks besides OpenAI's chat completions (`crate::wire`):
//! OpenAI's Responses API, Anthropic's Messages API, Google's Gemini API and Ollama's chat API
//! (Azure OpenAI is chat completions and the Responses API at Azure's URLs). Each reads its
//! requests into one `ChatCall` and writes answers through one `Writer`, so the script's rules
//! and faults apply to every format alike.
//!
//! Like `wire.rs`, these are the fake's own copies of the formats, written from the providers'
//! documentation and checked against their official Python clients
//! (`crates/versus/tests/official_clients.py`): a fake sharing versus-api's types would agree
//! with any mistake in them.

pub(crate) mod anthropic;
pub(crate) mod chat;
pub(crate) mod gemini;
pub(crate) mod ollama;
pub(crate) mod responses;

use bytes::Bytes;
use serde_json::Value;

use crate::wire::ResponseHeader;

/// A wire format the fake server answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `POST /v1/chat/completions` (and Azure's chat URLs).
    ChatCompletions,
    /// `POST /v1/responses` (and Azure's).
    Responses,
    /// `POST /v1/messages`.
    Anthropic,
    /// `POST /v1/models/{model}:generateContent` and `:streamGenerateContent` (also under `/v1beta`).
    Gemini,
    /// `POST /api/chat`.
    Ollama,
}

impl Format {
    pub(crate) fn writer(self) -> Box<dyn Writer> {
        match self {
            Format::ChatCompletions => Box::new(chat::ChatWriter),
            Format::Responses => Box::new(responses::ResponsesWriter::default()),
            Format::Anthropic => Box::new(anthropic::AnthropicWriter::default()),
            Format::Gemini => Box::new(gemini::GeminiWriter),
            Format::Ollama => Box::new(ollama::OllamaWriter),
        }
    }

    /// The content type of a streamed answer.
    pub(crate) fn stream_content_type(self) -> &'static str {
        match self {
            Format::Ollama => "application/x-ndjson",
            _ => "text/event-stream",
        }
    }

    /// The error body for `status` in this format's shape; `message` says what happened.
    pub(crate) fn error_body(self, status: u16, message: &str, model: &str) -> String {
        match self {
            Format::ChatCompletions | Format::Responses => {
                crate::wire::default_error_body_with(status, message, model)
            }
            Format::Anthropic => anthropic::error_body(status, message),
            Format::Gemini => gemini::error_body(status, message),
            Format::Ollama => ollama::error_body(message),
        }
    }

    /// What a request with a wrong or missing key gets: status and body.
    pub(crate) fn unauthorized(self) -> (u16, String) {
        match self {
            Format::ChatCompletions | Format::Responses => (
                401,
                crate::wire::openai_error_body(
                    "Incorrect API key provided.",
                    "invalid_request_error",
                    Some("invalid_api_key"),
                ),
            ),
            Format::Anthropic => (401, anthropic::error_body(401, "invalid x-api-key")),
            // Google answers a bad key with 400 INVALID_ARGUMENT and the reason API_KEY_INVALID.
            Format::Gemini => (400, gemini::api_key_invalid_body()),
            Format::Ollama => (401, ollama::error_body("unauthorized")),
        }
    }
}

/// Token counts the fake reports: words, as everywhere in the testkit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FakeUsage {
    pub prompt: u64,
    /// The answer's words.
    pub answer: u64,
    /// The thinking's words (0 without thinking).
    pub thinking: u64,
}

impl FakeUsage {
    /// Every generated token, thinking included (how OpenAI and Anthropic count output).
    pub fn output(self) -> u64 {
        self.answer + self.thinking
    }
}

/// What one answer says, for the writers.
pub(crate) struct Answer<'a> {
    pub header: &'a ResponseHeader,
    pub text: &'a str,
    pub thinking: Option<&'a str>,
    /// `None` when the script leaves usage out.
    pub usage: Option<FakeUsage>,
    /// Chat completions' `stream_options.include_usage`; the other formats always report usage.
    pub include_usage: bool,
}

/// Writes one answer in a format: the pieces of a stream (each `Bytes` one SSE event or NDJSON
/// line) or a whole JSON body.
pub(crate) trait Writer: Send {
    /// What opens a stream (a role chunk, `message_start`, `response.created`...).
    fn start(&mut self, answer: &Answer<'_>) -> Vec<Bytes>;
    fn thinking(&mut self, answer: &Answer<'_>, delta: &str) -> Vec<Bytes>;
    fn text(&mut self, answer: &Answer<'_>, delta: &str) -> Vec<Bytes>;
    /// The end of a complete answer: its finish reason, usage and end marker.
    fn finish(&mut self, answer: &Answer<'_>) -> Vec<Bytes>;
    /// The end of an answer the provider withheld (Gemini's SAFETY, Anthropic's refusal, a
    /// content filter).
    fn blocked(&mut self, answer: &Answer<'_>) -> Vec<Bytes>;
    /// An error reported inside the stream (Anthropic's `error` event, an `{"error": ...}`
    /// chunk), after which the stream ends.
    fn error_event(&mut self, answer: &Answer<'_>) -> Vec<Bytes>;
    /// A piece whose JSON does not parse.
    fn malformed(&mut self, answer: &Answer<'_>) -> Vec<Bytes>;
    /// A whole, non-streamed answer.
    fn whole(&self, answer: &Answer<'_>) -> Value;
    /// A whole answer the provider withheld.
    fn whole_blocked(&self, answer: &Answer<'_>) -> Value;
}

/// One SSE event with a name (`event: NAME`) and JSON data.
pub(crate) fn named_event(name: &str, data: &Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

/// One NDJSON line.
pub(crate) fn ndjson_line(data: &Value) -> Bytes {
    Bytes::from(format!("{data}\n"))
}

/// Whether `data` is standard base64 (what every provider requires of inline images).
pub(crate) fn is_base64(data: &str) -> bool {
    use base64::Engine;
    !data.is_empty()
        && base64::engine::general_purpose::STANDARD
            .decode(data)
            .is_ok()
}

/// The image media types Anthropic and Gemini take inline.
pub(crate) const IMAGE_TYPES: &[&str] = &["image/png", "image/jpeg", "image/gif", "image/webp"];

/// `data:{media_type};base64,{data}`: how the log records inline images of every format.
pub(crate) fn data_url(media_type: &str, data: &str) -> String {
    format!("data:{media_type};base64,{data}")
}
