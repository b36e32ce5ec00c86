//! The OpenAI chat-completions wire format: request body, whole response, stream chunk and error
//! body, with conversions to and from the `versus_core` vocabulary.
//!
//! These types are shared by the client here and by anything that speaks the same format as a
//! server, so they are lenient when reading (unknown fields ignored, most fields optional) and
//! strict about what they write (unset fields left out).

use serde::{Deserialize, Serialize};
use versus_core::{ChatRequest, ContentPart, FinishReason, Message, Role, Usage};

/// The body of `POST /chat/completions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatCompletionRequest {
    pub model: String,
    pub messages: Vec<WireMessage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// OpenAI's newer name for `max_tokens`; read by servers, never sent by the client (older
    /// servers do not know it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// One string or a list of them on the way in (OpenAI accepts both); a list on the way out.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "one_or_many_strings"
    )]
    pub stop: Option<Vec<String>>,
    /// How many answers to make; read by servers, never sent by the client (always one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<u32>,
    /// Extensions outside OpenAI's API that vLLM, llama.cpp and others accept; sent only when the
    /// suite sets them, so OpenAI itself reports them as unsupported rather than ignoring them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repetition_penalty: Option<f64>,
    /// Left out unless streaming, so that servers which reject the field still answer.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

impl ChatCompletionRequest {
    /// The wire request for `request`, asking `model` and, when `stream` is set, asking for SSE
    /// with a final usage chunk.
    pub fn from_chat(model: &str, request: &ChatRequest, stream: bool) -> ChatCompletionRequest {
        let params = &request.params;
        ChatCompletionRequest {
            model: model.to_string(),
            messages: request.messages.iter().map(WireMessage::from).collect(),
            temperature: params.temperature,
            top_p: params.top_p,
            max_tokens: params.max_tokens,
            max_completion_tokens: None,
            seed: params.seed,
            stop: params.stop.clone(),
            n: None,
            top_k: params.top_k,
            min_p: params.min_p,
            repetition_penalty: params.repetition_penalty,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        }
    }

    /// The `versus_core` request this wire request asks for (the model name is not part of it).
    /// `max_completion_tokens` wins over `max_tokens` when both are given, as it does on OpenAI.
    pub fn to_chat(&self) -> ChatRequest {
        ChatRequest {
            messages: self.messages.iter().map(WireMessage::to_message).collect(),
            params: versus_core::GenerationParams {
                temperature: self.temperature,
                top_p: self.top_p,
                max_tokens: self.max_completion_tokens.or(self.max_tokens),
                seed: self.seed,
                stop: self.stop.clone(),
                top_k: self.top_k,
                min_p: self.min_p,
                repetition_penalty: self.repetition_penalty,
                thinking_budget: None,
                reasoning_effort: None,
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StreamOptions {
    /// Ask for a last chunk carrying the token counts (with empty `choices`).
    #[serde(default)]
    pub include_usage: bool,
}

/// `stop` as OpenAI takes it: `"END"`, `["END", "\n\n"]` or `null`.
fn one_or_many_strings<'de, D>(deserializer: D) -> Result<Option<Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(
        match Option::<OneOrMany>::deserialize(deserializer)
            .map_err(|_| serde::de::Error::custom("expected a string or an array of strings"))?
        {
            None => None,
            Some(OneOrMany::One(text)) => Some(vec![text]),
            Some(OneOrMany::Many(texts)) => Some(texts),
        },
    )
}

/// One chat message on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireMessage {
    /// Read leniently: OpenAI's newer `developer` role is the system role by another name.
    #[serde(deserialize_with = "role_or_developer")]
    pub role: Role,
    pub content: WireContent,
}

fn role_or_developer<'de, D>(deserializer: D) -> Result<Role, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let name = String::deserialize(deserializer)?;
    match name.as_str() {
        "system" | "developer" => Ok(Role::System),
        "user" => Ok(Role::User),
        "assistant" => Ok(Role::Assistant),
        other => Err(serde::de::Error::unknown_variant(
            other,
            &["system", "developer", "user", "assistant"],
        )),
    }
}

/// Message content: a plain string (what every server accepts) or typed parts (needed for images).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum WireContent {
    Text(String),
    Parts(Vec<WirePart>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum WirePart {
    Text { text: String },
    ImageUrl { image_url: ImageUrl },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageUrl {
    /// An `http(s)://` URL or a `data:` URL carrying the bytes.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl From<&Message> for WireMessage {
    fn from(message: &Message) -> WireMessage {
        let content = match message.content.as_slice() {
            [] => WireContent::Text(String::new()),
            [ContentPart::Text { text }] => WireContent::Text(text.clone()),
            parts => WireContent::Parts(parts.iter().map(WirePart::from).collect()),
        };
        WireMessage {
            role: message.role,
            content,
        }
    }
}

impl From<&ContentPart> for WirePart {
    fn from(part: &ContentPart) -> WirePart {
        match part {
            ContentPart::Text { text } => WirePart::Text { text: text.clone() },
            ContentPart::Image { url, .. } => WirePart::ImageUrl {
                image_url: ImageUrl {
                    url: url.clone(),
                    detail: None,
                },
            },
        }
    }
}

impl WireMessage {
    pub fn to_message(&self) -> Message {
        let content = match &self.content {
            WireContent::Text(text) => vec![ContentPart::Text { text: text.clone() }],
            WireContent::Parts(parts) => parts
                .iter()
                .map(|part| match part {
                    WirePart::Text { text } => ContentPart::Text { text: text.clone() },
                    WirePart::ImageUrl { image_url } => ContentPart::Image {
                        url: image_url.url.clone(),
                        source: None,
                    },
                })
                .collect(),
        };
        Message {
            role: self.role,
            content,
        }
    }
}

/// A whole (non-streamed) answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatCompletionResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
    /// The model that answered, as the server names it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Names the server's configuration (engine version, weights, dtype): answers with the same
    /// seed and fingerprint are meant to repeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<WireUsage>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub message: ResponseMessage,
    /// Always written (as `null` when not asked for), as OpenAI does.
    #[serde(default)]
    pub logprobs: Option<serde_json::Value>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ResponseMessage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `null` when the model answered with something other than text (a tool call, a refusal).
    #[serde(default)]
    pub content: Option<String>,
    /// The thinking some servers (vLLM, DeepSeek) return beside the answer; never sent by
    /// `versus serve`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
}

/// One `data:` payload of a streamed answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChatCompletionChunk {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// Empty on the final usage chunk.
    #[serde(default)]
    pub choices: Vec<ChunkChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<WireUsage>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ChunkChoice {
    #[serde(default)]
    pub index: u32,
    #[serde(default)]
    pub delta: Delta,
    /// Always written (as `null` when not asked for), as OpenAI does.
    #[serde(default)]
    pub logprobs: Option<serde_json::Value>,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Delta {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Streamed thinking (vLLM's and DeepSeek's `reasoning_content`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<String>,
}

/// Token counts as the server reports them. Both counts are optional on the way in because some
/// servers send partial objects; `to_usage` only trusts complete ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WireUsage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_tokens: Option<u64>,
    /// `cached_tokens`: prompt tokens read from OpenAI's prompt cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    /// `reasoning_tokens`: completion tokens a reasoning model spent thinking.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PromptTokensDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cached_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CompletionTokensDetails {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
}

impl WireUsage {
    /// The counts, when the server gave both; never filled in by guessing.
    pub fn to_usage(&self) -> Option<Usage> {
        Some(Usage {
            cached_prompt_tokens: self.prompt_tokens_details.and_then(|d| d.cached_tokens),
            reasoning_tokens: self
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens),
            ..Usage::new(self.prompt_tokens?, self.completion_tokens?)
        })
    }
}

impl From<Usage> for WireUsage {
    fn from(usage: Usage) -> WireUsage {
        WireUsage {
            prompt_tokens: Some(usage.prompt_tokens),
            completion_tokens: Some(usage.completion_tokens),
            total_tokens: Some(usage.prompt_tokens + usage.completion_tokens),
            prompt_tokens_details: None,
            completion_tokens_details: None,
        }
    }
}

/// The finish reason as written on the wire (`None` for `FinishReason::Unknown`).
pub fn finish_reason_to_wire(reason: &FinishReason) -> Option<String> {
    match reason {
        FinishReason::Unknown => None,
        other => Some(other.as_str().to_string()),
    }
}

/// `object` of a whole answer.
pub const CHAT_COMPLETION_OBJECT: &str = "chat.completion";
/// `object` of a stream chunk.
pub const CHAT_COMPLETION_CHUNK_OBJECT: &str = "chat.completion.chunk";

/// The body of `GET /models`: the models a server offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelList {
    /// Always `"list"`.
    pub object: String,
    pub data: Vec<ModelObject>,
}

/// One entry of `GET /models`, and the body of `GET /models/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelObject {
    pub id: String,
    /// Always `"model"`.
    pub object: String,
    /// Unix seconds.
    pub created: u64,
    pub owned_by: String,
}

/// `{"error": {...}}`, the body of a failed request (and of an error sent mid-stream).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// Written as OpenAI writes it: all four keys present, `null` when unset.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub message: String,
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The request field at fault (`"messages"`, `"n"`), when one is.
    #[serde(default)]
    pub param: Option<String>,
    /// A string (`"insufficient_quota"`) on OpenAI, an HTTP status number on some other servers.
    #[serde(default)]
    pub code: Option<serde_json::Value>,
}

impl ErrorDetail {
    /// Reads the error out of a parsed body: `{"error": {"message": ..}}`, or the looser
    /// `{"error": "message"}` some servers send. `None` when the body holds no error.
    pub fn from_body(body: &serde_json::Value) -> Option<ErrorDetail> {
        match body.get("error")? {
            serde_json::Value::Null => None,
            serde_json::Value::String(message) => Some(ErrorDetail {
                message: message.clone(),
                ..ErrorDetail::default()
            }),
            detail @ serde_json::Value::Object(_) => Some(
                serde_json::from_value(detail.clone()).unwrap_or_else(|_| ErrorDetail {
                    message: detail.to_string(),
                    ..ErrorDetail::default()
                }),
            ),
            other => Some(ErrorDetail {
                message: other.to_string(),
                ..ErrorDetail::default()
            }),
        }
    }

    /// The HTTP status the server meant, for servers that put one in `code`.
    pub fn status_code(&self) -> Option<u16> {
        match &self.code {
            Some(serde_json::Value::Number(number)) => {
                number.as_u64().and_then(|code| u16::try_from(code).ok())
            }
            Some(serde_json::Value::String(text)) => text.parse().ok(),
            _ => None,
        }
        .filter(|code| (100..600).contains(code))
    }

    /// The symbolic code (`"insufficient_quota"`), when `code` is a string.
    pub fn code_str(&self) -> Option<&str> {
        self.code.as_ref().and_then(serde_json::Value::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use versus_core::GenerationParams;

    fn request(messages: Vec<Message>, params: GenerationParams) -> ChatRequest {
        ChatRequest { messages, params }
    }

    #[test]
    fn single_text_parts_become_plain_strings_and_unset_params_are_left_out() {
        let chat = request(
            vec![Message::system("be brief"), Message::user("hi")],
            GenerationParams {
                temperature: Some(0.0),
                max_tokens: Some(5),
                ..Default::default()
            },
        );
        let body = serde_json::to_value(ChatCompletionRequest::from_chat("m", &chat, false))
            .expect("serializes");
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "user", "content": "hi"}
                ],
                "temperature": 0.0,
                "max_tokens": 5
            })
        );
    }

    #[test]
    fn streaming_asks_for_usage_and_images_become_image_url_parts() {
        let chat = request(
            vec![Message {
                role: Role::User,
                content: vec![
                    ContentPart::Text {
                        text: "what is this?".into(),
                    },
                    ContentPart::Image {
                        url: "data:image/png;base64,AA==".into(),
                        source: Some("cat.png".into()),
                    },
                ],
            }],
            GenerationParams {
                seed: Some(7),
                stop: Some(vec!["END".into()]),
                top_p: Some(0.5),
                ..Default::default()
            },
        );
        let wire = ChatCompletionRequest::from_chat("m", &chat, true);
        let body = serde_json::to_value(&wire).expect("serializes");
        assert_eq!(
            body,
            json!({
                "model": "m",
                "messages": [{"role": "user", "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
                ]}],
                "top_p": 0.5,
                "seed": 7,
                "stop": ["END"],
                "stream": true,
                "stream_options": {"include_usage": true}
            })
        );
        // The way back keeps everything but the image's suite-side source.
        let back = wire.to_chat();
        assert_eq!(back.params, chat.params);
        assert_eq!(back.messages[0].text_content(), "what is this?");
        assert!(back.messages[0].has_images());
    }

    #[test]
    fn reads_chunks_with_nulls_and_missing_fields() {
        let chunk: ChatCompletionChunk = serde_json::from_value(json!({
            "id": "x", "model": "gpt", "usage": null,
            "choices": [{"index": 0, "delta": {"content": null}, "finish_reason": null}]
        }))
        .expect("parses");
        assert_eq!(chunk.model.as_deref(), Some("gpt"));
        assert_eq!(chunk.choices[0].delta.content, None);
        let usage_only: ChatCompletionChunk = serde_json::from_value(json!({
            "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 4}
        }))
        .expect("parses");
        assert_eq!(
            usage_only.usage.and_then(|usage| usage.to_usage()),
            Some(Usage::new(3, 4))
        );
        let partial = WireUsage {
            prompt_tokens: Some(3),
            ..Default::default()
        };
        assert_eq!(partial.to_usage(), None);
    }

    #[test]
    fn servers_read_stop_as_a_string_or_a_list_and_the_newer_token_limit_first() {
        let one: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}],
            "stop": "END", "max_tokens": 9, "max_completion_tokens": 5, "n": 1
        }))
        .expect("parses");
        assert_eq!(one.stop, Some(vec!["END".to_string()]));
        assert_eq!(one.n, Some(1));
        assert_eq!(one.to_chat().params.max_tokens, Some(5));
        let many: ChatCompletionRequest = serde_json::from_value(json!({
            "model": "m", "messages": [], "stop": ["a", "b"], "stream_options": {}
        }))
        .expect("parses");
        assert_eq!(many.stop, Some(vec!["a".to_string(), "b".to_string()]));
        assert_eq!(many.stream_options, Some(StreamOptions::default()));
        let none: ChatCompletionRequest =
            serde_json::from_value(json!({"model": "m", "messages": [], "stop": null}))
                .expect("parses");
        assert_eq!(none.stop, None);
        let developer: WireMessage =
            serde_json::from_value(json!({"role": "developer", "content": "be brief"}))
                .expect("parses");
        assert_eq!(developer.role, Role::System);
        assert!(
            serde_json::from_value::<WireMessage>(json!({"role": "tool", "content": "x"}))
                .expect_err("no tools")
                .to_string()
                .contains("unknown variant `tool`")
        );
        let error = serde_json::from_value::<ChatCompletionRequest>(
            json!({"model": "m", "messages": [], "stop": 3}),
        )
        .expect_err("a number is no stop string");
        assert!(error.to_string().contains("string or an array"), "{error}");
    }

    #[test]
    fn error_details_are_written_with_every_key() {
        let body = ErrorBody {
            error: ErrorDetail {
                message: "no".into(),
                kind: Some("invalid_request_error".into()),
                ..ErrorDetail::default()
            },
        };
        assert_eq!(
            serde_json::to_value(&body).expect("serializes"),
            json!({"error": {"message": "no", "type": "invalid_request_error", "param": null, "code": null}})
        );
    }

    #[test]
    fn error_bodies_in_both_shapes() {
        let openai = ErrorDetail::from_body(&json!({
            "error": {"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}
        }))
        .expect("an error");
        assert_eq!(openai.message, "quota");
        assert_eq!(openai.code_str(), Some("insufficient_quota"));
        assert_eq!(openai.status_code(), None);
        let vllm = ErrorDetail::from_body(&json!({"error": {"message": "too long", "code": 400}}))
            .expect("an error");
        assert_eq!(vllm.status_code(), Some(400));
        let loose = ErrorDetail::from_body(&json!({"error": "boom"})).expect("an error");
        assert_eq!(loose.message, "boom");
        assert_eq!(ErrorDetail::from_body(&json!({"choices": []})), None);
        assert_eq!(ErrorDetail::from_body(&json!({"error": null})), None);
    }
}
