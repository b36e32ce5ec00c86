//! Anthropic's Messages API (`POST /v1/messages`): the request (system text as the top-level
//! `system`, `max_tokens` always sent, images as base64 or URL `image` blocks, extended thinking
//! as `thinking`), the `x-api-key` and `anthropic-version` headers, and the streamed events
//! (`message_start`, `content_block_*`, `message_delta`, `message_stop`, `ping`, `error`), with
//! thinking blocks kept apart from the answer.

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use versus_core::wire_api::ANTHROPIC_DEFAULT_MAX_TOKENS;
use versus_core::{ChatRequest, ContentPart, ErrorKind, FinishReason, ModelError, Role};

use crate::client::api_url;
use crate::error::ApiError;
use crate::protocol::{
    data_url_parts, decode, json_value, Problem, Protocol, StreamItem, Update, UsageReport,
};
use crate::wire::ErrorDetail;

/// The API version the official `anthropic` Python package sends (2.10.0, read 2026-12-07).
pub const ANTHROPIC_VERSION: &str = "2026-10-21";

pub(crate) struct Messages {
    url: Url,
    model: String,
}

impl Messages {
    /// `{base_url}/v1/messages` (a base that already ends in `/v1` gets `/messages`).
    pub fn new(base_url: &str, model: &str) -> Result<Messages, ApiError> {
        Ok(Messages {
            url: api_url(base_url, &["v1", "messages"])?,
            model: model.to_string(),
        })
    }
}

// ---- The request.

#[derive(Debug, Serialize)]
struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    messages: Vec<RequestMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<ThinkingRequest>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
}

#[derive(Debug, Serialize)]
struct ThinkingRequest {
    #[serde(rename = "type")]
    kind: &'static str,
    budget_tokens: u32,
}

#[derive(Debug, Serialize)]
struct RequestMessage {
    role: &'static str,
    content: Vec<RequestBlock>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum RequestBlock {
    Text { text: String },
    Image { source: ImageSource },
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

fn request_body<'a>(model: &'a str, request: &ChatRequest, stream: bool) -> MessagesRequest<'a> {
    let params = &request.params;
    let system: Vec<String> = request
        .messages
        .iter()
        .filter(|message| message.role == Role::System)
        .map(|message| message.text_content())
        .collect();
    let messages = request
        .messages
        .iter()
        .filter(|message| message.role != Role::System)
        .map(|message| RequestMessage {
            role: if message.role == Role::Assistant {
                "assistant"
            } else {
                "user"
            },
            content: message
                .content
                .iter()
                .map(|part| match part {
                    ContentPart::Text { text } => RequestBlock::Text { text: text.clone() },
                    ContentPart::Image { url, .. } => RequestBlock::Image {
                        source: match data_url_parts(url) {
                            Some((media_type, data)) => ImageSource::Base64 {
                                media_type: media_type.to_string(),
                                data: data.to_string(),
                            },
                            None => ImageSource::Url { url: url.clone() },
                        },
                    },
                })
                .collect(),
        })
        .collect();
    MessagesRequest {
        model,
        max_tokens: params.max_tokens.unwrap_or(ANTHROPIC_DEFAULT_MAX_TOKENS),
        messages,
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        temperature: params.temperature,
        top_p: params.top_p,
        top_k: params.top_k,
        stop_sequences: params.stop.clone(),
        thinking: params.thinking_budget.map(|budget_tokens| ThinkingRequest {
            kind: "enabled",
            budget_tokens,
        }),
        stream,
    }
}

// ---- The answers.

#[derive(Debug, Default, Deserialize)]
struct MessageObject {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<ContentBlock>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<AnthropicUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct AnthropicUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens_details: Option<OutputTokensDetails>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct OutputTokensDetails {
    #[serde(default)]
    thinking_tokens: Option<u64>,
}

impl AnthropicUsage {
    /// Anthropic's `input_tokens` leaves out the tokens read from and written to its cache;
    /// versus's prompt count includes them (they are part of the prompt, at their own prices).
    fn report(self) -> UsageReport {
        UsageReport {
            prompt: self.input_tokens.map(|input| {
                input
                    + self.cache_read_input_tokens.unwrap_or(0)
                    + self.cache_creation_input_tokens.unwrap_or(0)
            }),
            completion: self.output_tokens,
            // Thinking is inside `output_tokens`; `output_tokens_details` says how much.
            reasoning: self
                .output_tokens_details
                .and_then(|details| details.thinking_tokens),
            cached: self.cache_read_input_tokens,
            cache_write: self.cache_creation_input_tokens,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StreamEvent {
    MessageStart {
        message: MessageObject,
    },
    ContentBlockStart {
        content_block: ContentBlock,
    },
    ContentBlockDelta {
        delta: BlockDelta,
    },
    ContentBlockStop,
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: Option<AnthropicUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: ErrorDetail,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockDelta {
    TextDelta {
        #[serde(default)]
        text: String,
    },
    ThinkingDelta {
        #[serde(default)]
        thinking: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// A stop reason as versus records it; `refusal` is a block.
fn stop(reason: &str) -> Result<Update, Problem> {
    Ok(Update::Finish(match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => {
            return Err(Problem::Blocked(
                "stop reason `refusal`: Anthropic's safety classifiers stopped the answer"
                    .to_string(),
            ))
        }
        other => FinishReason::Other(other.to_string()),
    }))
}

fn block(block: ContentBlock) -> Option<Update> {
    match block {
        ContentBlock::Text { text } => Some(Update::Text(text)),
        ContentBlock::Thinking { thinking } => Some(Update::Thinking(thinking)),
        ContentBlock::Other => None,
    }
}

impl Protocol for Messages {
    fn format_name(&self) -> &'static str {
        "the Anthropic Messages format"
    }

    fn url(&self, _stream: bool) -> Url {
        self.url.clone()
    }

    fn auth_headers(&self, key: &str) -> Vec<(HeaderName, String)> {
        vec![(HeaderName::from_static("x-api-key"), key.to_string())]
    }

    fn fixed_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        vec![(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        )]
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Result<Vec<u8>, ModelError> {
        serde_json::to_vec(&request_body(&self.model, request, stream)).map_err(|error| {
            ModelError::new(
                ErrorKind::Config,
                format!("could not encode the request as JSON: {error}"),
            )
        })
    }

    fn read_item(&self, item: StreamItem<'_>) -> Result<Vec<Update>, Problem> {
        let data = item.data.trim();
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let value = json_value(data, "a stream event")?;
        let event: StreamEvent = decode(value, data, "a stream event")?;
        Ok(match event {
            StreamEvent::MessageStart { message } => {
                let mut updates = Vec::new();
                if let Some(model) = message.model {
                    updates.push(Update::Model(model));
                }
                if let Some(usage) = message.usage {
                    updates.push(Update::Usage(usage.report()));
                }
                updates
            }
            StreamEvent::ContentBlockStart { content_block } => {
                block(content_block).into_iter().collect()
            }
            StreamEvent::ContentBlockDelta { delta } => match delta {
                BlockDelta::TextDelta { text } => vec![Update::Text(text)],
                BlockDelta::ThinkingDelta { thinking } => vec![Update::Thinking(thinking)],
                BlockDelta::Other => Vec::new(),
            },
            StreamEvent::MessageDelta { delta, usage } => {
                let mut updates = Vec::new();
                if let Some(usage) = usage {
                    updates.push(Update::Usage(usage.report()));
                }
                if let Some(reason) = delta.stop_reason {
                    updates.push(stop(&reason)?);
                }
                updates
            }
            StreamEvent::MessageStop => vec![Update::Done],
            StreamEvent::Error { error } => return Err(Problem::Reported(error)),
            StreamEvent::ContentBlockStop | StreamEvent::Ping | StreamEvent::Other => Vec::new(),
        })
    }

    fn read_whole(&self, body: &str) -> Result<Vec<Update>, Problem> {
        let value = json_value(body, "the body")?;
        if value.get("type").and_then(|kind| kind.as_str()) == Some("error") {
            if let Some(detail) = ErrorDetail::from_body(&value) {
                return Err(Problem::Reported(detail));
            }
        }
        let message: MessageObject = decode(value, body, "the body")?;
        let mut updates = Vec::new();
        if let Some(model) = message.model {
            updates.push(Update::Model(model));
        }
        if let Some(usage) = message.usage {
            updates.push(Update::Usage(usage.report()));
        }
        updates.extend(message.content.into_iter().filter_map(block));
        updates.push(match message.stop_reason {
            Some(reason) => stop(&reason)?,
            None => Update::Finish(FinishReason::Unknown),
        });
        updates.push(Update::Done);
        Ok(updates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use versus_core::{GenerationParams, Message};

    fn protocol() -> Messages {
        Messages::new("https://api.anthropic.com", "claude-x").expect("valid")
    }

    #[test]
    fn the_request_has_system_max_tokens_images_and_thinking() {
        let request = ChatRequest {
            messages: vec![
                Message::system("Be brief."),
                Message {
                    role: Role::User,
                    content: vec![
                        ContentPart::Text {
                            text: "What is this?".into(),
                        },
                        ContentPart::Image {
                            url: "data:image/png;base64,AA==".into(),
                            source: None,
                        },
                        ContentPart::Image {
                            url: "https://example.com/a.jpg".into(),
                            source: None,
                        },
                    ],
                },
            ],
            params: GenerationParams {
                temperature: Some(1.0),
                stop: Some(vec!["END".into()]),
                thinking_budget: Some(2048),
                ..Default::default()
            },
        };
        let body: serde_json::Value =
            serde_json::from_slice(&protocol().body(&request, true).expect("encodes"))
                .expect("JSON");
        assert_eq!(
            body,
            json!({
                "model": "claude-x",
                "max_tokens": ANTHROPIC_DEFAULT_MAX_TOKENS,
                "system": "Be brief.",
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AA=="}},
                    {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}
                ]}],
                "temperature": 1.0,
                "stop_sequences": ["END"],
                "thinking": {"type": "enabled", "budget_tokens": 2048},
                "stream": true
            })
        );
        assert_eq!(
            protocol().url(true).as_str(),
            "https://api.anthropic.com/v1/messages"
        );
    }

    #[test]
    fn a_stream_adds_up_to_text_thinking_usage_and_a_stop() {
        let events = [
            r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","model":"claude-x-1","content":[],"stop_reason":null,"usage":{"input_tokens":10,"cache_read_input_tokens":4,"cache_creation_input_tokens":2,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"Let me see."}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"Hi"}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},"usage":{"output_tokens":25,"output_tokens_details":{"thinking_tokens":9}}}"#,
            r#"{"type":"message_stop"}"#,
        ];
        let updates: Vec<Update> = events
            .iter()
            .flat_map(|data| {
                protocol()
                    .read_item(StreamItem { event: None, data })
                    .expect("valid")
            })
            .collect();
        assert!(updates.contains(&Update::Model("claude-x-1".into())));
        assert!(updates.contains(&Update::Thinking("Let me see.".into())));
        assert!(updates.contains(&Update::Text("Hi".into())));
        assert!(updates.contains(&Update::Usage(UsageReport {
            prompt: Some(16),
            completion: Some(1),
            reasoning: None,
            cached: Some(4),
            cache_write: Some(2)
        })));
        assert!(updates.contains(&Update::Usage(UsageReport {
            prompt: None,
            completion: Some(25),
            reasoning: Some(9),
            cached: None,
            cache_write: None
        })));
        assert!(updates.contains(&Update::Finish(FinishReason::Length)));
        assert_eq!(updates.last(), Some(&Update::Done));
    }

    #[test]
    fn errors_mid_stream_and_refusals_are_problems() {
        let read = |data: &str| protocol().read_item(StreamItem { event: None, data });
        assert!(matches!(
            read(r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
            Err(Problem::Reported(detail)) if detail.message == "Overloaded"
        ));
        assert!(matches!(
            read(
                r#"{"type":"message_delta","delta":{"stop_reason":"refusal"},"usage":{"output_tokens":3}}"#
            ),
            Err(Problem::Blocked(_))
        ));
        assert!(matches!(read("{not json"), Err(Problem::Malformed { .. })));
    }

    #[test]
    fn a_whole_message_keeps_thinking_apart() {
        let updates = protocol()
            .read_whole(
                r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
                "content":[{"type":"thinking","thinking":"hmm","signature":"s"},{"type":"text","text":"Hello"}],
                "stop_reason":"end_turn","usage":{"input_tokens":5,"output_tokens":7}}"#,
            )
            .expect("valid");
        assert!(updates.contains(&Update::Thinking("hmm".into())));
        assert!(updates.contains(&Update::Text("Hello".into())));
        assert!(updates.contains(&Update::Finish(FinishReason::Stop)));
        assert!(matches!(
            protocol().read_whole(
                r#"{"type":"error","error":{"type":"invalid_request_error","message":"bad"}}"#
            ),
            Err(Problem::Reported(_))
        ));
    }
}
