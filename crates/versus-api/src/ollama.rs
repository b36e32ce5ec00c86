//! Ollama's native chat API (`POST /api/chat`): sampling parameters inside `options`, images as
//! base64 beside the message, answers streamed as NDJSON, and the server's own counts
//! (`prompt_eval_count`, `eval_count`) and durations (nanoseconds), which versus keeps beside its
//! own measurements.

use reqwest::header::{HeaderName, AUTHORIZATION};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use versus_core::{
    ChatRequest, ContentPart, ErrorKind, FinishReason, ModelError, Role, ServerTimings,
};

use crate::client::api_url;
use crate::error::ApiError;
use crate::protocol::{
    data_url_parts, decode, json_value, Framing, Problem, Protocol, StreamItem, Update, UsageReport,
};
use crate::wire::ErrorDetail;

/// Where Ollama listens unless told otherwise.
pub const OLLAMA_BASE_URL: &str = "http://127.0.0.1:11434";

pub(crate) struct Ollama {
    url: Url,
    model: String,
}

impl Ollama {
    /// `{base_url}/api/chat`.
    pub fn new(base_url: &str, model: &str) -> Result<Ollama, ApiError> {
        Ok(Ollama {
            url: api_url(base_url, &["api", "chat"])?,
            model: model.to_string(),
        })
    }
}

#[derive(Debug, Serialize)]
struct ChatBody<'a> {
    model: &'a str,
    messages: Vec<OllamaMessage>,
    stream: bool,
    #[serde(skip_serializing_if = "Options::is_empty")]
    options: Options,
}

#[derive(Debug, Serialize)]
struct OllamaMessage {
    role: &'static str,
    content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
struct Options {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    min_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repeat_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    num_predict: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop: Option<Vec<String>>,
}

impl Options {
    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.top_k.is_none()
            && self.min_p.is_none()
            && self.repeat_penalty.is_none()
            && self.seed.is_none()
            && self.num_predict.is_none()
            && self.stop.is_none()
    }
}

fn request_body<'a>(
    model: &'a str,
    request: &ChatRequest,
    stream: bool,
) -> Result<ChatBody<'a>, ModelError> {
    let params = &request.params;
    let mut messages = Vec::with_capacity(request.messages.len());
    for message in &request.messages {
        let mut images = Vec::new();
        for part in &message.content {
            if let ContentPart::Image { url, source } = part {
                let Some((_, data)) = data_url_parts(url) else {
                    return Err(ModelError::new(
                        ErrorKind::Unsupported,
                        format!(
                            "Ollama takes images as bytes, not URLs: name a file in the task's `images` instead of {}",
                            source.as_deref().unwrap_or(url)
                        ),
                    ));
                };
                images.push(data.to_string());
            }
        }
        messages.push(OllamaMessage {
            role: match message.role {
                Role::System => "system",
                Role::User => "user",
                Role::Assistant => "assistant",
            },
            content: message.text_content(),
            images,
        });
    }
    Ok(ChatBody {
        model,
        messages,
        stream,
        options: Options {
            temperature: params.temperature,
            top_p: params.top_p,
            top_k: params.top_k,
            min_p: params.min_p,
            repeat_penalty: params.repetition_penalty,
            seed: params.seed,
            num_predict: params.max_tokens,
            stop: params.stop.clone(),
        },
    })
}

/// One NDJSON line, or the whole answer when not streamed.
#[derive(Debug, Deserialize)]
struct ChatLine {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    message: Option<LineMessage>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    total_duration: Option<u64>,
    #[serde(default)]
    load_duration: Option<u64>,
    #[serde(default)]
    prompt_eval_duration: Option<u64>,
    #[serde(default)]
    eval_duration: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct LineMessage {
    #[serde(default)]
    content: String,
    #[serde(default)]
    thinking: Option<String>,
}

fn nanos_to_ms(nanos: Option<u64>) -> Option<f64> {
    nanos.map(|nanos| nanos as f64 / 1e6)
}

fn read_line(line: ChatLine) -> Vec<Update> {
    let mut updates = Vec::new();
    if let Some(model) = line.model {
        updates.push(Update::Model(model));
    }
    if let Some(message) = line.message {
        if let Some(thinking) = message.thinking {
            updates.push(Update::Thinking(thinking));
        }
        updates.push(Update::Text(message.content));
    }
    if line.done {
        updates.push(Update::Usage(UsageReport {
            prompt: line.prompt_eval_count,
            completion: line.eval_count,
            ..UsageReport::default()
        }));
        updates.push(Update::ServerTimings(ServerTimings {
            total_ms: nanos_to_ms(line.total_duration),
            load_ms: nanos_to_ms(line.load_duration),
            prompt_ms: nanos_to_ms(line.prompt_eval_duration),
            generation_ms: nanos_to_ms(line.eval_duration),
        }));
        updates.push(Update::Finish(match line.done_reason.as_deref() {
            Some("stop") => FinishReason::Stop,
            Some("length") => FinishReason::Length,
            Some(other) => FinishReason::Other(other.to_string()),
            None => FinishReason::Unknown,
        }));
        updates.push(Update::Done);
    }
    updates
}

impl Protocol for Ollama {
    fn format_name(&self) -> &'static str {
        "Ollama's chat format"
    }

    fn url(&self, _stream: bool) -> Url {
        self.url.clone()
    }

    /// Ollama itself takes no key; one configured for a proxy in front of it goes as a bearer
    /// token.
    fn auth_headers(&self, key: &str) -> Vec<(HeaderName, String)> {
        vec![(AUTHORIZATION, format!("Bearer {key}"))]
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Result<Vec<u8>, ModelError> {
        serde_json::to_vec(&request_body(&self.model, request, stream)?).map_err(|error| {
            ModelError::new(
                ErrorKind::Config,
                format!("could not encode the request as JSON: {error}"),
            )
        })
    }

    fn framing(&self) -> Framing {
        Framing::Ndjson
    }

    fn read_item(&self, item: StreamItem<'_>) -> Result<Vec<Update>, Problem> {
        self.read_whole(item.data)
    }

    fn read_whole(&self, body: &str) -> Result<Vec<Update>, Problem> {
        let value = json_value(body.trim(), "a line of the answer")?;
        if let Some(detail) = ErrorDetail::from_body(&value) {
            return Err(Problem::Reported(detail));
        }
        Ok(read_line(decode(value, body, "a line of the answer")?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use versus_core::{GenerationParams, Message};

    fn protocol() -> Ollama {
        Ollama::new(OLLAMA_BASE_URL, "llama3.2").expect("valid")
    }

    #[test]
    fn sampling_parameters_go_inside_options_and_images_beside_the_message() {
        let request = ChatRequest {
            messages: vec![
                Message::system("Be brief."),
                Message {
                    role: Role::User,
                    content: vec![
                        ContentPart::Text { text: "Hi".into() },
                        ContentPart::Image {
                            url: "data:image/png;base64,AA==".into(),
                            source: None,
                        },
                    ],
                },
            ],
            params: GenerationParams {
                temperature: Some(0.0),
                max_tokens: Some(64),
                seed: Some(3),
                repetition_penalty: Some(1.1),
                min_p: Some(0.05),
                ..Default::default()
            },
        };
        let body: serde_json::Value =
            serde_json::from_slice(&protocol().body(&request, true).expect("encodes"))
                .expect("JSON");
        assert_eq!(
            body,
            json!({
                "model": "llama3.2",
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Hi", "images": ["AA=="]}
                ],
                "stream": true,
                "options": {"temperature": 0.0, "min_p": 0.05, "repeat_penalty": 1.1,
                            "seed": 3, "num_predict": 64}
            })
        );
        assert_eq!(
            protocol().url(true).as_str(),
            "http://127.0.0.1:11434/api/chat"
        );
    }

    #[test]
    fn the_last_line_carries_counts_durations_and_the_reason() {
        let read = |data: &str| protocol().read_item(StreamItem { event: None, data });
        assert_eq!(
            read(r#"{"model":"llama3.2","created_at":"2026-01-01T00:00:00Z","message":{"role":"assistant","content":"Hi"},"done":false}"#)
                .expect("valid"),
            [Update::Model("llama3.2".into()), Update::Text("Hi".into())]
        );
        let last = read(r#"{"model":"llama3.2","message":{"role":"assistant","content":""},"done":true,"done_reason":"length",
            "total_duration":2500000000,"load_duration":500000000,"prompt_eval_count":12,"prompt_eval_duration":250000000,
            "eval_count":30,"eval_duration":1500000000}"#)
        .expect("valid");
        assert!(last.contains(&Update::Usage(UsageReport {
            prompt: Some(12),
            completion: Some(30),
            ..UsageReport::default()
        })));
        assert!(last.contains(&Update::ServerTimings(ServerTimings {
            total_ms: Some(2500.0),
            load_ms: Some(500.0),
            prompt_ms: Some(250.0),
            generation_ms: Some(1500.0),
        })));
        assert!(last.contains(&Update::Finish(FinishReason::Length)));
        assert!(matches!(
            read(r#"{"error":"model 'x' not found"}"#),
            Err(Problem::Reported(detail)) if detail.message.contains("not found")
        ));
    }
}
