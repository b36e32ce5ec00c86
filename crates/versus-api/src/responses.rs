//! OpenAI's Responses API (`POST /responses`, also Azure OpenAI's): the request (system text as
//! `instructions`, messages as `input`, `max_output_tokens`, `reasoning.effort`) and its typed
//! SSE events (`response.output_text.delta` ... `response.completed`, no `[DONE]`), with
//! reasoning summaries kept apart as thinking and reasoning and cached tokens from the usage's
//! details.

use reqwest::header::{HeaderName, AUTHORIZATION};
use reqwest::Url;
use serde::{Deserialize, Serialize};
use versus_core::{ChatRequest, ContentPart, ErrorKind, FinishReason, ModelError, Role};

use crate::client::api_url;
use crate::error::ApiError;
use crate::protocol::{decode, json_value, Problem, Protocol, StreamItem, Update, UsageReport};
use crate::wire::ErrorDetail;

/// `{base_url}/responses`.
pub(crate) fn responses_url(base_url: &str) -> Result<Url, ApiError> {
    api_url(base_url, &["responses"])
}

/// How the key travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ResponsesAuth {
    Bearer,
    /// Azure's `api-key` header.
    AzureApiKey,
}

pub(crate) struct Responses {
    url: Url,
    model: String,
    auth: ResponsesAuth,
}

impl Responses {
    pub fn new(url: Url, model: &str, auth: ResponsesAuth) -> Responses {
        Responses {
            url,
            model: model.to_string(),
            auth,
        }
    }
}

// ---- The request.

#[derive(Debug, Serialize)]
struct ResponsesRequest<'a> {
    model: &'a str,
    input: Vec<InputMessage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    instructions: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<ReasoningRequest>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    stream: bool,
    /// versus keeps its own record; nothing needs to stay on OpenAI's side.
    store: bool,
}

#[derive(Debug, Serialize)]
struct ReasoningRequest {
    effort: &'static str,
    /// Ask for a summary of the reasoning, which versus keeps as the answer's thinking.
    summary: &'static str,
}

#[derive(Debug, Serialize)]
struct InputMessage {
    role: &'static str,
    content: Vec<InputPart>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum InputPart {
    InputText {
        text: String,
    },
    InputImage {
        image_url: String,
    },
    /// An earlier assistant turn.
    OutputText {
        text: String,
    },
}

fn request_body<'a>(model: &'a str, request: &ChatRequest, stream: bool) -> ResponsesRequest<'a> {
    let params = &request.params;
    let system: Vec<String> = request
        .messages
        .iter()
        .filter(|message| message.role == Role::System)
        .map(|message| message.text_content())
        .collect();
    let input = request
        .messages
        .iter()
        .filter(|message| message.role != Role::System)
        .map(|message| {
            let assistant = message.role == Role::Assistant;
            InputMessage {
                role: if assistant { "assistant" } else { "user" },
                content: message
                    .content
                    .iter()
                    .map(|part| match part {
                        ContentPart::Text { text } if assistant => {
                            InputPart::OutputText { text: text.clone() }
                        }
                        ContentPart::Text { text } => InputPart::InputText { text: text.clone() },
                        ContentPart::Image { url, .. } => InputPart::InputImage {
                            image_url: url.clone(),
                        },
                    })
                    .collect(),
            }
        })
        .collect();
    ResponsesRequest {
        model,
        input,
        instructions: (!system.is_empty()).then(|| system.join("\n\n")),
        temperature: params.temperature,
        top_p: params.top_p,
        max_output_tokens: params.max_tokens,
        reasoning: params.reasoning_effort.map(|effort| ReasoningRequest {
            effort: effort.as_str(),
            summary: "auto",
        }),
        stream,
        store: false,
    }
}

// ---- The answers.

/// A response object (the body of a whole answer, and inside `response.*` events).
#[derive(Debug, Default, Deserialize)]
struct ResponseObject {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    output: Vec<OutputItem>,
    #[serde(default)]
    usage: Option<ResponsesUsage>,
    #[serde(default)]
    error: Option<ErrorDetail>,
    #[serde(default)]
    incomplete_details: Option<IncompleteDetails>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutputItem {
    Message {
        #[serde(default)]
        content: Vec<OutputContent>,
    },
    Reasoning {
        #[serde(default)]
        summary: Vec<SummaryPart>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutputContent {
    OutputText {
        #[serde(default)]
        text: String,
    },
    Refusal {
        #[serde(default)]
        refusal: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct SummaryPart {
    #[serde(default)]
    text: String,
}

#[derive(Debug, Deserialize)]
struct IncompleteDetails {
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct ResponsesUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<InputDetails>,
    #[serde(default)]
    output_tokens_details: Option<OutputDetails>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct InputDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
struct OutputDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

impl ResponsesUsage {
    fn report(self) -> UsageReport {
        UsageReport {
            prompt: self.input_tokens,
            completion: self.output_tokens,
            reasoning: self.output_tokens_details.and_then(|d| d.reasoning_tokens),
            cached: self.input_tokens_details.and_then(|d| d.cached_tokens),
            cache_write: None,
        }
    }
}

/// One streamed event, by its `type`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum StreamEvent {
    #[serde(rename = "response.created", alias = "response.in_progress")]
    Started {
        #[serde(default)]
        response: ResponseObject,
    },
    #[serde(rename = "response.output_text.delta")]
    TextDelta {
        #[serde(default)]
        delta: String,
    },
    #[serde(
        rename = "response.reasoning_summary_text.delta",
        alias = "response.reasoning_text.delta"
    )]
    ReasoningDelta {
        #[serde(default)]
        delta: String,
    },
    #[serde(rename = "response.refusal.done")]
    Refusal {
        #[serde(default)]
        refusal: String,
    },
    #[serde(
        rename = "response.completed",
        alias = "response.incomplete",
        alias = "response.failed"
    )]
    Finished {
        #[serde(default)]
        response: ResponseObject,
    },
    #[serde(rename = "error")]
    Error {
        #[serde(default)]
        code: Option<serde_json::Value>,
        #[serde(default)]
        message: String,
    },
    #[serde(other)]
    Other,
}

/// The end of a response: its usage, model and why it stopped, or why it failed.
fn finished(response: ResponseObject) -> Result<Vec<Update>, Problem> {
    let mut updates = Vec::new();
    if let Some(model) = response.model {
        updates.push(Update::Model(model));
    }
    if let Some(usage) = response.usage {
        updates.push(Update::Usage(usage.report()));
    }
    match response.status.as_deref() {
        Some("failed") => {
            let detail = response.error.unwrap_or(ErrorDetail {
                message: "the response failed without saying why".to_string(),
                ..ErrorDetail::default()
            });
            return Err(Problem::Reported(detail));
        }
        Some("incomplete") => {
            let reason = response
                .incomplete_details
                .and_then(|details| details.reason)
                .unwrap_or_default();
            match reason.as_str() {
                "max_output_tokens" => updates.push(Update::Finish(FinishReason::Length)),
                "content_filter" => {
                    return Err(Problem::Blocked(
                        "the response is incomplete: `content_filter`".to_string(),
                    ))
                }
                other => updates.push(Update::Finish(FinishReason::Other(other.to_string()))),
            }
        }
        _ => updates.push(Update::Finish(FinishReason::Stop)),
    }
    updates.push(Update::Done);
    Ok(updates)
}

impl Protocol for Responses {
    fn format_name(&self) -> &'static str {
        "the Responses API format"
    }

    fn url(&self, _stream: bool) -> Url {
        self.url.clone()
    }

    fn auth_headers(&self, key: &str) -> Vec<(HeaderName, String)> {
        match self.auth {
            ResponsesAuth::Bearer => vec![(AUTHORIZATION, format!("Bearer {key}"))],
            ResponsesAuth::AzureApiKey => {
                vec![(HeaderName::from_static("api-key"), key.to_string())]
            }
        }
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
        if data.is_empty() || data == "[DONE]" {
            return Ok(Vec::new());
        }
        let value = json_value(data, "a stream event")?;
        let event: StreamEvent = decode(value, data, "a stream event")?;
        Ok(match event {
            StreamEvent::Started { response } => {
                response.model.map(Update::Model).into_iter().collect()
            }
            StreamEvent::TextDelta { delta } => vec![Update::Text(delta)],
            StreamEvent::ReasoningDelta { delta } => vec![Update::Thinking(delta)],
            StreamEvent::Refusal { refusal } => {
                return Err(Problem::Blocked(format!("the model refused: {refusal}")))
            }
            StreamEvent::Finished { response } => finished(response)?,
            StreamEvent::Error { code, message } => {
                return Err(Problem::Reported(ErrorDetail {
                    message,
                    code,
                    ..ErrorDetail::default()
                }))
            }
            StreamEvent::Other => Vec::new(),
        })
    }

    fn read_whole(&self, body: &str) -> Result<Vec<Update>, Problem> {
        let value = json_value(body, "the body")?;
        if let Some(detail) = ErrorDetail::from_body(&value) {
            return Err(Problem::Reported(detail));
        }
        let mut response: ResponseObject = decode(value, body, "the body")?;
        let mut updates = Vec::new();
        for item in std::mem::take(&mut response.output) {
            match item {
                OutputItem::Message { content } => {
                    for part in content {
                        match part {
                            OutputContent::OutputText { text } => updates.push(Update::Text(text)),
                            OutputContent::Refusal { refusal } => {
                                return Err(Problem::Blocked(format!(
                                    "the model refused: {refusal}"
                                )))
                            }
                            OutputContent::Other => {}
                        }
                    }
                }
                OutputItem::Reasoning { summary } => {
                    updates.extend(summary.into_iter().map(|part| Update::Thinking(part.text)))
                }
                OutputItem::Other => {}
            }
        }
        updates.extend(finished(response)?);
        Ok(updates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use versus_core::{GenerationParams, Message, ReasoningEffort};

    fn protocol() -> Responses {
        Responses::new(
            responses_url("http://h/v1").expect("valid"),
            "gpt-x",
            ResponsesAuth::Bearer,
        )
    }

    #[test]
    fn the_request_puts_system_text_in_instructions_and_images_as_input_images() {
        let request = ChatRequest {
            messages: vec![
                Message::system("Be brief."),
                Message::user("Hi"),
                Message::text(Role::Assistant, "Hello"),
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
                    ],
                },
            ],
            params: GenerationParams {
                temperature: Some(0.0),
                max_tokens: Some(50),
                reasoning_effort: Some(ReasoningEffort::Low),
                ..Default::default()
            },
        };
        let body: serde_json::Value =
            serde_json::from_slice(&protocol().body(&request, true).expect("encodes"))
                .expect("JSON");
        assert_eq!(
            body,
            json!({
                "model": "gpt-x",
                "instructions": "Be brief.",
                "input": [
                    {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
                    {"role": "assistant", "content": [{"type": "output_text", "text": "Hello"}]},
                    {"role": "user", "content": [
                        {"type": "input_text", "text": "What is this?"},
                        {"type": "input_image", "image_url": "data:image/png;base64,AA=="}
                    ]}
                ],
                "temperature": 0.0,
                "max_output_tokens": 50,
                "reasoning": {"effort": "low", "summary": "auto"},
                "stream": true,
                "store": false
            })
        );
    }

    #[test]
    fn events_become_text_thinking_usage_and_done() {
        let read = |data: &str| {
            protocol()
                .read_item(StreamItem { event: None, data })
                .expect("valid")
        };
        assert_eq!(
            read(r#"{"type":"response.output_text.delta","delta":"Hi","sequence_number":3}"#),
            [Update::Text("Hi".into())]
        );
        assert_eq!(
            read(r#"{"type":"response.reasoning_summary_text.delta","delta":"hmm"}"#),
            [Update::Thinking("hmm".into())]
        );
        assert!(read(r#"{"type":"response.content_part.added"}"#).is_empty());
        let done = read(
            r#"{"type":"response.completed","response":{"model":"gpt-x-1","status":"completed","output":[],
               "usage":{"input_tokens":10,"input_tokens_details":{"cached_tokens":4},"output_tokens":7,
                        "output_tokens_details":{"reasoning_tokens":3},"total_tokens":17}}}"#,
        );
        assert_eq!(
            done,
            [
                Update::Model("gpt-x-1".into()),
                Update::Usage(UsageReport {
                    prompt: Some(10),
                    completion: Some(7),
                    reasoning: Some(3),
                    cached: Some(4),
                    cache_write: None
                }),
                Update::Finish(FinishReason::Stop),
                Update::Done
            ]
        );
    }

    #[test]
    fn failures_errors_and_incomplete_answers_are_told_apart() {
        let read = |data: &str| protocol().read_item(StreamItem { event: None, data });
        assert!(matches!(
            read(r#"{"type":"error","code":"server_error","message":"boom"}"#),
            Err(Problem::Reported(detail)) if detail.message == "boom"
        ));
        assert!(matches!(
            read(
                r#"{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"down"}}}"#
            ),
            Err(Problem::Reported(_))
        ));
        let cut = read(r#"{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"}}}"#)
            .expect("an answer");
        assert!(cut.contains(&Update::Finish(FinishReason::Length)));
        assert!(matches!(
            read(
                r#"{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"content_filter"}}}"#
            ),
            Err(Problem::Blocked(_))
        ));
    }

    #[test]
    fn a_whole_response_reads_its_message_and_reasoning_summary() {
        let updates = protocol()
            .read_whole(
                r#"{"id":"resp_1","object":"response","status":"completed","model":"gpt-x",
                "output":[{"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"think"}]},
                          {"type":"message","id":"msg_1","role":"assistant","status":"completed",
                           "content":[{"type":"output_text","text":"Hello","annotations":[]}]}],
                "usage":{"input_tokens":3,"output_tokens":2}}"#,
            )
            .expect("valid");
        assert!(updates.contains(&Update::Thinking("think".into())));
        assert!(updates.contains(&Update::Text("Hello".into())));
        assert_eq!(updates.last(), Some(&Update::Done));
    }
}
