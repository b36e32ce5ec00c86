//! Ollama's native chat API as the fake reads and writes it: `messages` with base64 `images`,
//! sampling inside `options`, `stream` on unless `false`, and NDJSON lines ending with one that
//! is `done` and carries the counts and the server's durations (nanoseconds, made up
//! deterministically from the word counts so that tests can predict them).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{data_url, is_base64, ndjson_line, Answer, Writer};
use crate::wire::{word_count, ChatCall, SamplingParams};

/// The fake's load time, and its time per prompt and per answer word, in nanoseconds.
pub const LOAD_NANOS: u64 = 5_000_000;
pub const PROMPT_NANOS_PER_WORD: u64 = 1_000_000;
pub const EVAL_NANOS_PER_WORD: u64 = 2_000_000;

#[derive(Deserialize)]
struct Request {
    model: String,
    messages: Vec<Message>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    options: Option<Options>,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    #[serde(default)]
    content: String,
    #[serde(default)]
    images: Vec<String>,
}

#[derive(Deserialize)]
struct Options {
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    num_predict: Option<u64>,
    #[serde(default)]
    stop: Option<Vec<String>>,
}

/// Reads an `/api/chat` request; on failure, the JSON and a message for the 400 answer.
pub(crate) fn parse(body: &[u8]) -> (Value, Result<ChatCall, String>) {
    let raw: Value = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(error) => return (Value::Null, Err(format!("invalid JSON: {error}"))),
    };
    let request: Request = match serde_json::from_value(raw.clone()) {
        Ok(request) => request,
        Err(error) => return (raw, Err(format!("invalid request: {error}"))),
    };
    let mut image_urls = Vec::new();
    for message in &request.messages {
        for image in &message.images {
            if !is_base64(image) {
                return (raw, Err("illegal base64 data in images".into()));
            }
            image_urls.push(data_url("image/*", image));
        }
    }
    let options = request.options;
    let call = ChatCall {
        // Ollama streams unless told not to.
        stream: request.stream.unwrap_or(true),
        include_usage: true,
        params: SamplingParams {
            temperature: options.as_ref().and_then(|o| o.temperature),
            top_p: options.as_ref().and_then(|o| o.top_p),
            max_tokens: options.as_ref().and_then(|o| o.num_predict),
            seed: options.as_ref().and_then(|o| o.seed),
            stop: options
                .as_ref()
                .and_then(|o| o.stop.clone())
                .unwrap_or_default(),
            top_k: options.as_ref().and_then(|o| o.top_k),
            thinking: None,
        },
        last_user_text: request
            .messages
            .iter()
            .rev()
            .find(|message| message.role == "user")
            .map(|message| message.content.clone())
            .unwrap_or_default(),
        image_urls,
        prompt_words: request
            .messages
            .iter()
            .map(|message| word_count(&message.content))
            .sum(),
        model: request.model,
    };
    (raw, Ok(call))
}

/// Ollama's error body: `{"error": "..."}`.
pub(crate) fn error_body(message: &str) -> String {
    json!({"error": message}).to_string()
}

pub(crate) struct OllamaWriter;

fn line(answer: &Answer<'_>, message: Value, done: bool) -> Value {
    json!({
        "model": answer.header.model,
        "created_at": "2026-01-01T00:00:00Z",
        "message": message,
        "done": done,
    })
}

fn last(answer: &Answer<'_>, content: &str, thinking: Option<&str>) -> Value {
    let mut message = json!({"role": "assistant", "content": content});
    if let Some(thinking) = thinking {
        message["thinking"] = json!(thinking);
    }
    let mut value = line(answer, message, true);
    value["done_reason"] = json!("stop");
    if let Some(counts) = answer.usage {
        let prompt = counts.prompt * PROMPT_NANOS_PER_WORD;
        let eval = counts.output() * EVAL_NANOS_PER_WORD;
        value["total_duration"] = json!(LOAD_NANOS + prompt + eval);
        value["load_duration"] = json!(LOAD_NANOS);
        value["prompt_eval_count"] = json!(counts.prompt);
        value["prompt_eval_duration"] = json!(prompt);
        value["eval_count"] = json!(counts.output());
        value["eval_duration"] = json!(eval);
    }
    value
}

impl Writer for OllamaWriter {
    fn start(&mut self, _answer: &Answer<'_>) -> Vec<Bytes> {
        Vec::new()
    }

    fn thinking(&mut self, answer: &Answer<'_>, delta: &str) -> Vec<Bytes> {
        let message = json!({"role": "assistant", "content": "", "thinking": delta});
        vec![ndjson_line(&line(answer, message, false))]
    }

    fn text(&mut self, answer: &Answer<'_>, delta: &str) -> Vec<Bytes> {
        let message = json!({"role": "assistant", "content": delta});
        vec![ndjson_line(&line(answer, message, false))]
    }

    fn finish(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        vec![ndjson_line(&last(answer, "", None))]
    }

    /// Ollama has no safety block; a blocked answer is an error line.
    fn blocked(&mut self, _answer: &Answer<'_>) -> Vec<Bytes> {
        vec![ndjson_line(
            &json!({"error": "blocked (injected by versus-testkit)"}),
        )]
    }

    fn error_event(&mut self, _answer: &Answer<'_>) -> Vec<Bytes> {
        vec![ndjson_line(
            &json!({"error": "an error was encountered while running the model (injected by versus-testkit)"}),
        )]
    }

    fn malformed(&mut self, _answer: &Answer<'_>) -> Vec<Bytes> {
        vec![Bytes::from("{\"model\": \"m\", \"message\": {oops\n")]
    }

    fn whole(&self, answer: &Answer<'_>) -> Value {
        last(answer, answer.text, answer.thinking)
    }

    fn whole_blocked(&self, _answer: &Answer<'_>) -> Value {
        json!({"error": "blocked (injected by versus-testkit)"})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_unless_told_not_to_and_reads_options() {
        let body = json!({"model": "llama3", "messages": [
            {"role": "user", "content": "hi there", "images": ["AAAA"]}],
            "options": {"temperature": 0, "num_predict": 5, "top_k": 2}});
        let call = parse(body.to_string().as_bytes()).1.expect("valid");
        assert!(call.stream);
        assert_eq!(call.params.max_tokens, Some(5));
        assert_eq!(call.params.top_k, Some(2));
        assert_eq!(call.image_urls.len(), 1);
        assert!(parse(
            br#"{"model": "m", "messages": [{"role": "user", "content": "x", "images": ["%%"]}]}"#
        )
        .1
        .is_err());
    }
}
