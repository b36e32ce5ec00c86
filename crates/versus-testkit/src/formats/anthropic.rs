//! Anthropic's Messages API as the fake reads and writes it: `max_tokens` required, `system` as
//! a string or text blocks, content as a string or `text`/`image` blocks (base64 images checked:
//! a media type Anthropic takes and real base64), and streams of `message_start`,
//! `content_block_start`/`delta`/`stop`, `ping`, `message_delta`, `message_stop`.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{data_url, is_base64, named_event, Answer, Writer, IMAGE_TYPES};
use crate::wire::{word_count, ChatCall, SamplingParams};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Request {
    model: String,
    max_tokens: u64,
    messages: Vec<Message>,
    #[serde(default)]
    system: Option<TextOrBlocks>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u64>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    thinking: Option<Thinking>,
    #[serde(default)]
    metadata: Option<Value>,
}

#[derive(Deserialize)]
struct Thinking {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    budget_tokens: Option<u64>,
}

#[derive(Deserialize)]
struct Message {
    role: String,
    content: TextOrBlocks,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum TextOrBlocks {
    Text(String),
    Blocks(Vec<Block>),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block {
    Text { text: String },
    Image { source: ImageSource },
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

impl TextOrBlocks {
    fn text(&self) -> String {
        match self {
            TextOrBlocks::Text(text) => text.clone(),
            TextOrBlocks::Blocks(blocks) => blocks
                .iter()
                .filter_map(|block| match block {
                    Block::Text { text } => Some(text.as_str()),
                    Block::Image { .. } => None,
                })
                .collect(),
        }
    }
}

/// Reads a Messages request; on failure, the JSON and a message for the 400 answer.
pub(crate) fn parse(body: &[u8]) -> (Value, Result<ChatCall, String>) {
    let raw: Value = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(error) => {
            return (
                Value::Null,
                Err(format!("request body is not JSON: {error}")),
            )
        }
    };
    let request: Request = match serde_json::from_value(raw.clone()) {
        Ok(request) => request,
        Err(error) => return (raw, Err(format!("invalid Messages request: {error}"))),
    };
    if request.messages.first().map(|m| m.role.as_str()) != Some("user") {
        return (
            raw,
            Err("messages: the first message must use the `user` role".into()),
        );
    }
    let mut image_urls = Vec::new();
    for message in &request.messages {
        if !matches!(message.role.as_str(), "user" | "assistant") {
            return (
                raw,
                Err(format!("messages: unexpected role `{}`", message.role)),
            );
        }
        let TextOrBlocks::Blocks(blocks) = &message.content else {
            continue;
        };
        for block in blocks {
            match block {
                Block::Image {
                    source: ImageSource::Base64 { media_type, data },
                } => {
                    if !IMAGE_TYPES.contains(&media_type.as_str()) {
                        return (
                            raw,
                            Err(format!("image: media_type `{media_type}` is not supported")),
                        );
                    }
                    if !is_base64(data) {
                        return (
                            raw,
                            Err("image: the source data is not valid base64".into()),
                        );
                    }
                    image_urls.push(data_url(media_type, data));
                }
                Block::Image {
                    source: ImageSource::Url { url },
                } => image_urls.push(url.clone()),
                Block::Text { .. } => {}
            }
        }
    }
    if let Some(thinking) = &request.thinking {
        if thinking.kind == "enabled"
            && thinking
                .budget_tokens
                .is_none_or(|b| b < 1024 || b >= request.max_tokens)
        {
            return (
                raw,
                Err(
                    "thinking.budget_tokens: must be at least 1024 and less than max_tokens".into(),
                ),
            );
        }
    }
    let _ = &request.metadata;
    let system_words = request
        .system
        .as_ref()
        .map_or(0, |system| word_count(&system.text()));
    let call = ChatCall {
        stream: request.stream.unwrap_or(false),
        include_usage: true,
        params: SamplingParams {
            temperature: request.temperature,
            top_p: request.top_p,
            max_tokens: Some(request.max_tokens),
            seed: None,
            stop: request.stop_sequences.unwrap_or_default(),
            top_k: request.top_k,
            thinking: request
                .thinking
                .and_then(|thinking| thinking.budget_tokens)
                .map(|budget| budget.to_string()),
        },
        last_user_text: request
            .messages
            .iter()
            .rev()
            .find(|message| message.role == "user")
            .map(|message| message.content.text())
            .unwrap_or_default(),
        image_urls,
        prompt_words: system_words
            + request
                .messages
                .iter()
                .map(|message| word_count(&message.content.text()))
                .sum::<u64>(),
        model: request.model,
    };
    (raw, Ok(call))
}

/// Anthropic's error body: `{"type":"error","error":{"type":..,"message":..},"request_id":..}`.
pub(crate) fn error_body(status: u16, message: &str) -> String {
    let kind = match status {
        400 | 413 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        _ => "api_error",
    };
    json!({
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_versus_testkit"
    })
    .to_string()
}

fn usage(answer: &Answer<'_>, output: u64) -> Value {
    let prompt = answer.usage.map_or(0, |usage| usage.prompt);
    json!({
        "input_tokens": prompt,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
    })
}

/// Streams: the index of the next content block, and whether one is open.
#[derive(Default)]
pub(crate) struct AnthropicWriter {
    next_index: u32,
    open: Option<&'static str>,
}

impl AnthropicWriter {
    /// Closes the open block when the next one is of another kind, opens a block of `kind`.
    fn block(&mut self, kind: &'static str) -> Vec<Bytes> {
        if self.open == Some(kind) {
            return Vec::new();
        }
        let mut pieces = self.close();
        let start = if kind == "thinking" {
            json!({"type": "thinking", "thinking": "", "signature": ""})
        } else {
            json!({"type": "text", "text": ""})
        };
        pieces.push(named_event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": self.next_index, "content_block": start}),
        ));
        self.open = Some(kind);
        pieces
    }

    fn close(&mut self) -> Vec<Bytes> {
        let Some(kind) = self.open.take() else {
            return Vec::new();
        };
        let mut pieces = Vec::new();
        if kind == "thinking" {
            pieces.push(named_event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": self.next_index,
                        "delta": {"type": "signature_delta", "signature": "versus-testkit-signature"}}),
            ));
        }
        pieces.push(named_event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": self.next_index}),
        ));
        self.next_index += 1;
        pieces
    }

    fn end(&mut self, answer: &Answer<'_>, stop_reason: &str) -> Vec<Bytes> {
        let mut pieces = self.close();
        let mut usage_value = json!({"output_tokens": answer.usage.map_or(0, |u| u.output())});
        if let Some(usage) = answer.usage.filter(|usage| usage.thinking > 0) {
            usage_value["output_tokens_details"] = json!({"thinking_tokens": usage.thinking});
        }
        let mut delta = json!({"type": "message_delta",
                               "delta": {"stop_reason": stop_reason, "stop_sequence": null}});
        // `NoUsage` leaves usage out, as no real Anthropic answer would: a client must not
        // make counts up when they are missing.
        if answer.usage.is_some() {
            delta["usage"] = usage_value;
        }
        pieces.push(named_event("message_delta", &delta));
        pieces.push(named_event(
            "message_stop",
            &json!({"type": "message_stop"}),
        ));
        pieces
    }
}

impl Writer for AnthropicWriter {
    fn start(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        vec![
            named_event(
                "message_start",
                &json!({"type": "message_start", "message": {
                    "id": format!("msg_{}", answer.header.id),
                    "type": "message",
                    "role": "assistant",
                    "model": answer.header.model,
                    "content": [],
                    "stop_reason": null,
                    "stop_sequence": null,
                    "usage": if answer.usage.is_some() { usage(answer, 1) } else { Value::Null },
                }}),
            ),
            named_event("ping", &json!({"type": "ping"})),
        ]
    }

    fn thinking(&mut self, _answer: &Answer<'_>, delta: &str) -> Vec<Bytes> {
        let mut pieces = self.block("thinking");
        pieces.push(named_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.next_index,
                    "delta": {"type": "thinking_delta", "thinking": delta}}),
        ));
        pieces
    }

    fn text(&mut self, _answer: &Answer<'_>, delta: &str) -> Vec<Bytes> {
        let mut pieces = self.block("text");
        pieces.push(named_event(
            "content_block_delta",
            &json!({"type": "content_block_delta", "index": self.next_index,
                    "delta": {"type": "text_delta", "text": delta}}),
        ));
        pieces
    }

    fn finish(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        // An empty answer still has its text block.
        let mut pieces = if self.next_index == 0 && self.open.is_none() {
            self.block("text")
        } else {
            Vec::new()
        };
        pieces.extend(self.end(answer, "end_turn"));
        pieces
    }

    fn blocked(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        self.end(answer, "refusal")
    }

    fn error_event(&mut self, _answer: &Answer<'_>) -> Vec<Bytes> {
        vec![named_event(
            "error",
            &json!({"type": "error", "error": {"type": "overloaded_error",
                    "message": "Overloaded (injected by versus-testkit)"}}),
        )]
    }

    fn malformed(&mut self, _answer: &Answer<'_>) -> Vec<Bytes> {
        vec![Bytes::from(
            "event: content_block_delta\ndata: {\"type\": \"content_block_delta\", \"delta\": {oops\n\n",
        )]
    }

    fn whole(&self, answer: &Answer<'_>) -> Value {
        let mut content = Vec::new();
        if let Some(thinking) = answer.thinking {
            content.push(json!({"type": "thinking", "thinking": thinking,
                                "signature": "versus-testkit-signature"}));
        }
        content.push(json!({"type": "text", "text": answer.text}));
        let mut message = json!({
            "id": format!("msg_{}", answer.header.id),
            "type": "message",
            "role": "assistant",
            "model": answer.header.model,
            "content": content,
            "stop_reason": "end_turn",
            "stop_sequence": null,
        });
        if let Some(counts) = answer.usage {
            let mut value = usage(answer, counts.output());
            if counts.thinking > 0 {
                value["output_tokens_details"] = json!({"thinking_tokens": counts.thinking});
            }
            message["usage"] = value;
        }
        message
    }

    fn whole_blocked(&self, answer: &Answer<'_>) -> Value {
        json!({
            "id": format!("msg_{}", answer.header.id),
            "type": "message",
            "role": "assistant",
            "model": answer.header.model,
            "content": [],
            "stop_reason": "refusal",
            "stop_sequence": null,
            "usage": usage(answer, 0),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_system_blocks_images_and_sampling() {
        let body = json!({
            "model": "claude-x", "max_tokens": 100, "system": "Be brief.",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "What is"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
                {"type": "text", "text": " this?"}
            ]}],
            "stop_sequences": ["END"], "top_k": 5, "stream": true
        });
        let call = parse(body.to_string().as_bytes()).1.expect("valid");
        assert_eq!(call.last_user_text, "What is this?");
        assert_eq!(call.image_urls, ["data:image/png;base64,AAAA"]);
        assert_eq!(call.params.stop, ["END"]);
        assert_eq!(call.params.top_k, Some(5));
        assert_eq!(call.prompt_words, 2 + 3);
        assert!(call.stream);
    }

    #[test]
    fn refuses_what_anthropic_refuses() {
        let refused = |body: Value| parse(body.to_string().as_bytes()).1.expect_err("refused");
        let message = json!([{"role": "user", "content": "hi"}]);
        assert!(refused(json!({"model": "m", "messages": message})).contains("max_tokens"));
        assert!(
            refused(json!({"model": "m", "max_tokens": 5, "messages": message, "seed": 1}))
                .contains("seed")
        );
        let bad_image = json!([{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AAAA"}}]}]);
        assert!(
            refused(json!({"model": "m", "max_tokens": 5, "messages": bad_image}))
                .contains("media_type")
        );
    }
}
