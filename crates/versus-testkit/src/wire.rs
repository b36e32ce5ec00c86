//! The OpenAI chat-completions wire format as the fake server reads and writes it, and the
//! deterministic answers and token counts tests can predict.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

/// The answer a request gets when no rule says otherwise.
pub fn default_answer(model: &str, last_user_text: &str) -> String {
    format!("Answer from {model}: {last_user_text}")
}

/// The fake server's token count: whitespace-separated words.
pub fn word_count(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

/// The longest streamed delta, in chars: long enough to be realistic, short enough that a
/// one-sentence answer arrives in several pieces.
const MAX_DELTA_CHARS: usize = 6;

/// How an answer is split into streamed content deltas: each delta is a word with the whitespace
/// before it, and words longer than a few chars are split further (always between chars, never
/// inside a UTF-8 sequence). Concatenated, the deltas give back the answer.
pub fn answer_deltas(answer: &str) -> Vec<String> {
    let mut deltas = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0;
    let mut previous_was_space = false;
    for ch in answer.chars() {
        let word_starts = ch.is_whitespace() && !previous_was_space;
        if !current.is_empty() && (word_starts || current_chars == MAX_DELTA_CHARS) {
            deltas.push(std::mem::take(&mut current));
            current_chars = 0;
        }
        current.push(ch);
        current_chars += 1;
        previous_was_space = ch.is_whitespace();
    }
    if !current.is_empty() {
        deltas.push(current);
    }
    deltas
}

/// An OpenAI error object: `{"error":{"message":..,"type":..,"param":null,"code":..}}`.
pub fn openai_error_body(message: &str, error_type: &str, code: Option<&str>) -> String {
    json!({
        "error": {"message": message, "type": error_type, "param": null, "code": code}
    })
    .to_string()
}

/// What an injected fault says it is: `429 Too Many Requests (injected by versus-testkit)`.
pub(crate) fn injected(status: u16) -> String {
    let reason = axum::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|status| status.canonical_reason())
        .unwrap_or("Error");
    format!("{status} {reason} (injected by versus-testkit)")
}

/// The error body the fake server sends for a status when the script gives none, shaped like
/// OpenAI's for that status.
#[cfg(test)]
pub(crate) fn default_error_body(status: u16, model: &str) -> String {
    default_error_body_with(status, &injected(status), model)
}

/// OpenAI's error body for `status`, saying `message`.
pub(crate) fn default_error_body_with(status: u16, message: &str, model: &str) -> String {
    match status {
        401 => openai_error_body(
            &format!("Incorrect API key provided: {message}"),
            "invalid_request_error",
            Some("invalid_api_key"),
        ),
        404 => openai_error_body(
            &format!("The model `{model}` does not exist: {message}"),
            "invalid_request_error",
            Some("model_not_found"),
        ),
        429 => openai_error_body(
            &format!("Rate limit reached for {model}: {message}"),
            "requests",
            Some("rate_limit_exceeded"),
        ),
        400..=499 => openai_error_body(message, "invalid_request_error", None),
        500..=599 => openai_error_body(message, "server_error", None),
        _ => openai_error_body(message, "error", None),
    }
}

/// Sampling settings a request carried, as sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplingParams {
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u64>,
    pub seed: Option<i64>,
    /// `stop` as a list, whether it was sent as one string or an array (Anthropic's
    /// `stop_sequences`, Gemini's `stopSequences`).
    pub stop: Vec<String>,
    /// Anthropic's, Gemini's and Ollama's `top_k`.
    pub top_k: Option<u64>,
    /// The thinking budget asked for (Anthropic's `thinking.budget_tokens`, Gemini's
    /// `thinkingBudget`) or the reasoning effort (the Responses API's `reasoning.effort`).
    pub thinking: Option<String>,
}

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    messages: Vec<WireMessage>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<WireStreamOptions>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    stop: Option<WireStop>,
}

#[derive(Deserialize)]
struct WireStreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireStop {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    /// Absent or null for assistant messages that only carry tool calls.
    #[serde(default)]
    content: Option<WireContent>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireContent {
    Text(String),
    Parts(Vec<WirePart>),
}

/// Content parts are checked strictly (an unknown type is a 400) so that a client sending a
/// malformed part finds out in tests rather than against a real server.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart {
    Text { text: String },
    ImageUrl { image_url: WireImageUrl },
}

#[derive(Deserialize)]
struct WireImageUrl {
    url: String,
}

impl WireMessage {
    fn text(&self) -> String {
        match &self.content {
            None => String::new(),
            Some(WireContent::Text(text)) => text.clone(),
            Some(WireContent::Parts(parts)) => parts
                .iter()
                .filter_map(|part| match part {
                    WirePart::Text { text } => Some(text.as_str()),
                    WirePart::ImageUrl { .. } => None,
                })
                .collect(),
        }
    }

    fn image_urls(&self) -> impl Iterator<Item = &str> {
        let parts = match &self.content {
            Some(WireContent::Parts(parts)) => parts.as_slice(),
            _ => &[],
        };
        parts.iter().filter_map(|part| match part {
            WirePart::ImageUrl { image_url } => Some(image_url.url.as_str()),
            WirePart::Text { .. } => None,
        })
    }
}

/// A chat-completions request, read and checked.
#[derive(Debug, Clone)]
pub(crate) struct ChatCall {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub params: SamplingParams,
    /// The text of the last `user` message (text parts joined); empty when there is none.
    pub last_user_text: String,
    /// Every image URL in the messages, in order.
    pub image_urls: Vec<String>,
    /// Words across the text of every message: the prompt token count.
    pub prompt_words: u64,
}

/// Reads a request body. On failure, returns the JSON (or `Null` when the body is not JSON) and
/// a message for the 400 answer.
pub(crate) fn parse_chat_call(body: &[u8]) -> (Value, Result<ChatCall, String>) {
    let raw: Value = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(error) => {
            return (
                Value::Null,
                Err(format!("request body is not JSON: {error}")),
            )
        }
    };
    let request: WireRequest = match serde_json::from_value(raw.clone()) {
        Ok(request) => request,
        Err(error) => {
            return (
                raw,
                Err(format!(
                    "request is not a chat-completions request: {error}"
                )),
            )
        }
    };
    let last_user_text = request
        .messages
        .iter()
        .rev()
        .find(|message| message.role == "user")
        .map(WireMessage::text)
        .unwrap_or_default();
    let call = ChatCall {
        stream: request.stream.unwrap_or(false),
        include_usage: request
            .stream_options
            .and_then(|options| options.include_usage)
            .unwrap_or(false),
        params: SamplingParams {
            temperature: request.temperature,
            top_p: request.top_p,
            max_tokens: request.max_tokens,
            seed: request.seed,
            stop: match request.stop {
                None => Vec::new(),
                Some(WireStop::One(stop)) => vec![stop],
                Some(WireStop::Many(stops)) => stops,
            },
            top_k: None,
            thinking: None,
        },
        image_urls: request
            .messages
            .iter()
            .flat_map(WireMessage::image_urls)
            .map(str::to_owned)
            .collect(),
        prompt_words: request
            .messages
            .iter()
            .map(|message| word_count(&message.text()))
            .sum(),
        last_user_text,
        model: request.model,
    };
    (raw, Ok(call))
}

/// The fields every object of one response repeats.
#[derive(Debug, Clone)]
pub(crate) struct ResponseHeader {
    pub id: String,
    pub created: u64,
    pub model: String,
}

fn usage_json(prompt_tokens: u64, completion_tokens: u64) -> Value {
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    })
}

/// A whole `chat.completion` object; `usage` is `(prompt_tokens, completion_tokens)`.
pub(crate) fn completion_json(
    header: &ResponseHeader,
    answer: &str,
    usage: Option<(u64, u64)>,
) -> Value {
    let mut completion = json!({
        "id": header.id,
        "object": "chat.completion",
        "created": header.created,
        "model": header.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": answer},
            "logprobs": null,
            "finish_reason": "stop",
        }],
    });
    if let Some((prompt, completion_tokens)) = usage {
        completion["usage"] = usage_json(prompt, completion_tokens);
    }
    completion
}

/// One `chat.completion.chunk`. Like OpenAI, chunks carry `"usage": null` when the usage chunk
/// was asked for.
pub(crate) fn chunk_json(
    header: &ResponseHeader,
    delta: Value,
    finish_reason: Option<&str>,
    include_usage: bool,
) -> Value {
    let mut chunk = json!({
        "id": header.id,
        "object": "chat.completion.chunk",
        "created": header.created,
        "model": header.model,
        "choices": [{
            "index": 0,
            "delta": delta,
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
    });
    if include_usage {
        chunk["usage"] = Value::Null;
    }
    chunk
}

/// The last chunk of a stream that asked for usage: no choices, only `usage`.
pub(crate) fn usage_chunk_json(
    header: &ResponseHeader,
    prompt_tokens: u64,
    completion_tokens: u64,
) -> Value {
    json!({
        "id": header.id,
        "object": "chat.completion.chunk",
        "created": header.created,
        "model": header.model,
        "choices": [],
        "usage": usage_json(prompt_tokens, completion_tokens),
    })
}

/// One SSE event carrying `data`.
pub(crate) fn sse_event(data: &str) -> Bytes {
    Bytes::from(format!("data: {data}\n\n"))
}

pub(crate) const SSE_DONE: &str = "[DONE]";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deltas_rebuild_the_answer_in_several_pieces() {
        for answer in [
            "Answer from m1: hello world",
            "Réponse de 🌅 über-long-composé   mot",
            "",
            "  leading and trailing  ",
        ] {
            let deltas = answer_deltas(answer);
            assert_eq!(deltas.concat(), answer);
            assert!(deltas.iter().all(|delta| !delta.is_empty()));
            assert!(deltas
                .iter()
                .all(|delta| delta.chars().count() <= MAX_DELTA_CHARS));
        }
        assert_eq!(
            answer_deltas("Answer from m1: sunrise"),
            ["Answer", " from", " m1:", " sunri", "se"]
        );
    }

    #[test]
    fn reads_string_and_part_contents() {
        let body = json!({
            "model": "m1",
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": null},
                {"role": "user", "content": [
                    {"type": "text", "text": "look at "},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                    {"type": "text", "text": "this"},
                ]},
            ],
            "stop": "END",
            "stream": true,
            "stream_options": {"include_usage": true},
        });
        let (_, call) = parse_chat_call(body.to_string().as_bytes());
        let call = call.expect("a valid request");
        assert_eq!(call.last_user_text, "look at this");
        assert_eq!(call.image_urls, ["data:image/png;base64,AA=="]);
        assert_eq!(call.prompt_words, 2 + 2 + 3);
        assert_eq!(call.params.stop, ["END"]);
        assert!(call.stream && call.include_usage);
    }

    #[test]
    fn rejects_what_is_not_a_chat_request() {
        let not_json = parse_chat_call(b"{oops");
        assert_eq!(not_json.0, Value::Null);
        assert!(not_json.1.is_err());
        let bad_part = json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "audio", "data": "x"}]}
        ]});
        assert!(parse_chat_call(bad_part.to_string().as_bytes()).1.is_err());
        let bad_type = json!({"model": "m", "messages": [], "temperature": "hot"});
        assert!(parse_chat_call(bad_type.to_string().as_bytes()).1.is_err());
    }

    #[test]
    fn default_error_bodies_look_like_openai() {
        let body: Value = serde_json::from_str(&default_error_body(429, "m1")).expect("JSON");
        assert_eq!(body["error"]["code"], "rate_limit_exceeded");
        let body: Value = serde_json::from_str(&default_error_body(503, "m1")).expect("JSON");
        assert_eq!(body["error"]["type"], "server_error");
    }
}
