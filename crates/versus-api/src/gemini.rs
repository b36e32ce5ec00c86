//! Google's Gemini API (`models/{model}:streamGenerateContent?alt=sse`, `:generateContent`): the
//! request (`systemInstruction`, `contents` with `user`/`model` roles, `generationConfig`, images
//! as `inlineData`), the `x-goog-api-key` header, and the answers, whose `usageMetadata` counts
//! thoughts apart and whose safety finish reasons (and blocked prompts) are blocks, never empty
//! answers.

use reqwest::header::HeaderName;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use versus_core::{ChatRequest, ContentPart, ErrorKind, FinishReason, ModelError, Role};

use crate::client::api_url;
use crate::error::ApiError;
use crate::protocol::{
    data_url_parts, decode, json_value, Problem, Protocol, StreamItem, Update, UsageReport,
};
use crate::wire::ErrorDetail;

/// The API version requests use when the base URL names none: the one the official
/// `google-genai` package (3.3.0, read 2026-12-07) uses by default.
pub const GEMINI_API_VERSION: &str = "v1";

pub(crate) struct Gemini {
    stream_url: Url,
    whole_url: Url,
}

impl Gemini {
    /// `{base_url}/v1/models/{model}:...`; a base that already ends in an API version
    /// (`/v1`, `/v1beta`, `/v1alpha`) keeps it.
    pub fn new(base_url: &str, model: &str) -> Result<Gemini, ApiError> {
        let trimmed = base_url.trim().trim_end_matches('/');
        let versioned = ["/v1beta", "/v1", "/v1alpha"]
            .iter()
            .any(|version| trimmed.ends_with(version));
        let url = |method: &str| {
            let call = format!("{model}:{method}");
            if versioned {
                api_url(trimmed, &["models", &call])
            } else {
                api_url(trimmed, &[GEMINI_API_VERSION, "models", &call])
            }
        };
        let mut stream_url = url("streamGenerateContent")?;
        stream_url.query_pairs_mut().append_pair("alt", "sse");
        Ok(Gemini {
            stream_url,
            whole_url: url("generateContent")?,
        })
    }
}

// ---- The request.

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateRequest {
    contents: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Content>,
    #[serde(skip_serializing_if = "GenerationConfig::is_empty")]
    generation_config: GenerationConfig,
}

#[derive(Debug, Serialize)]
struct Content {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    parts: Vec<RequestPart>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum RequestPart {
    Text {
        text: String,
    },
    InlineData {
        #[serde(rename = "inlineData")]
        inline_data: InlineData,
    },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InlineData {
    mime_type: String,
    data: String,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stop_sequences: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking_config: Option<ThinkingConfig>,
}

impl GenerationConfig {
    fn is_empty(&self) -> bool {
        self.temperature.is_none()
            && self.top_p.is_none()
            && self.top_k.is_none()
            && self.max_output_tokens.is_none()
            && self.stop_sequences.is_none()
            && self.seed.is_none()
            && self.thinking_config.is_none()
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    thinking_budget: u32,
    /// Thought summaries come back as parts marked `thought`, kept as the answer's thinking.
    include_thoughts: bool,
}

fn text_parts(text: String) -> Vec<RequestPart> {
    vec![RequestPart::Text { text }]
}

fn request_body(request: &ChatRequest) -> Result<GenerateRequest, ModelError> {
    let params = &request.params;
    let system: Vec<String> = request
        .messages
        .iter()
        .filter(|message| message.role == Role::System)
        .map(|message| message.text_content())
        .collect();
    let mut contents = Vec::new();
    for message in request.messages.iter().filter(|m| m.role != Role::System) {
        let mut parts = Vec::new();
        for part in &message.content {
            parts.push(match part {
                ContentPart::Text { text } => RequestPart::Text { text: text.clone() },
                ContentPart::Image { url, source } => {
                    let Some((mime_type, data)) = data_url_parts(url) else {
                        return Err(ModelError::new(
                            ErrorKind::Unsupported,
                            format!(
                                "the Gemini API takes images as bytes, not URLs: name a file in the task's `images` instead of {}",
                                source.as_deref().unwrap_or(url)
                            ),
                        ));
                    };
                    RequestPart::InlineData {
                        inline_data: InlineData {
                            mime_type: mime_type.to_string(),
                            data: data.to_string(),
                        },
                    }
                }
            });
        }
        contents.push(Content {
            role: Some(if message.role == Role::Assistant {
                "model"
            } else {
                "user"
            }),
            parts,
        });
    }
    Ok(GenerateRequest {
        contents,
        system_instruction: (!system.is_empty()).then(|| Content {
            role: None,
            parts: text_parts(system.join("\n\n")),
        }),
        generation_config: GenerationConfig {
            temperature: params.temperature,
            top_p: params.top_p,
            top_k: params.top_k,
            max_output_tokens: params.max_tokens,
            stop_sequences: params.stop.clone(),
            seed: params.seed,
            thinking_config: params.thinking_budget.map(|budget| ThinkingConfig {
                thinking_budget: budget,
                include_thoughts: budget > 0,
            }),
        },
    })
}

// ---- The answers.

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<UsageMetadata>,
    #[serde(default)]
    model_version: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    #[serde(default)]
    content: Option<CandidateContent>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    safety_ratings: Vec<SafetyRating>,
    #[serde(default)]
    index: Option<u32>,
}

#[derive(Debug, Deserialize)]
struct CandidateContent {
    #[serde(default)]
    parts: Vec<ResponsePart>,
}

#[derive(Debug, Deserialize)]
struct ResponsePart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
    #[serde(default)]
    safety_ratings: Vec<SafetyRating>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SafetyRating {
    #[serde(default)]
    category: String,
    #[serde(default)]
    probability: String,
    #[serde(default)]
    blocked: bool,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    #[serde(default)]
    prompt_token_count: Option<u64>,
    #[serde(default)]
    candidates_token_count: Option<u64>,
    #[serde(default)]
    thoughts_token_count: Option<u64>,
    #[serde(default)]
    cached_content_token_count: Option<u64>,
}

impl UsageMetadata {
    /// Gemini counts thoughts apart from the answer (`candidatesTokenCount`) and bills both as
    /// output: versus's completion count is their sum, with the thoughts as its reasoning part.
    fn report(self) -> UsageReport {
        let answer = self.candidates_token_count;
        let thoughts = self.thoughts_token_count;
        let completion = match (answer, thoughts) {
            (None, None) => None,
            (answer, thoughts) => Some(answer.unwrap_or(0) + thoughts.unwrap_or(0)),
        };
        UsageReport {
            prompt: self.prompt_token_count,
            completion,
            reasoning: thoughts,
            cached: self.cached_content_token_count,
            cache_write: None,
        }
    }
}

/// The ratings that explain a block: those marked blocked, else those rated MEDIUM or HIGH.
fn explain(ratings: &[SafetyRating]) -> String {
    let named: Vec<String> = ratings
        .iter()
        .filter(|rating| rating.blocked || matches!(rating.probability.as_str(), "MEDIUM" | "HIGH"))
        .map(|rating| format!("{} {}", rating.category, rating.probability))
        .collect();
    if named.is_empty() {
        String::new()
    } else {
        format!(" ({})", named.join(", "))
    }
}

/// Finish reasons that mean Google withheld (part of) the answer.
const BLOCKING_FINISH_REASONS: &[&str] = &[
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
    "MODEL_ARMOR",
];

fn read_response(response: GenerateResponse) -> Result<Vec<Update>, Problem> {
    let mut updates = Vec::new();
    if let Some(model) = response.model_version {
        updates.push(Update::Model(model));
    }
    if let Some(usage) = response.usage_metadata {
        updates.push(Update::Usage(usage.report()));
    }
    if let Some(reason) = response
        .prompt_feedback
        .as_ref()
        .and_then(|feedback| feedback.block_reason.as_deref())
    {
        let ratings = response
            .prompt_feedback
            .as_ref()
            .map(|feedback| explain(&feedback.safety_ratings))
            .unwrap_or_default();
        return Err(Problem::Blocked(format!(
            "the prompt was blocked: `{reason}`{ratings}"
        )));
    }
    let Some(candidate) = response
        .candidates
        .into_iter()
        .find(|candidate| candidate.index.unwrap_or(0) == 0)
    else {
        return Ok(updates);
    };
    for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
        if let Some(text) = part.text {
            updates.push(if part.thought {
                Update::Thinking(text)
            } else {
                Update::Text(text)
            });
        }
    }
    if let Some(reason) = candidate.finish_reason {
        if BLOCKING_FINISH_REASONS.contains(&reason.as_str()) {
            return Err(Problem::Blocked(format!(
                "finish reason `{reason}`{}",
                explain(&candidate.safety_ratings)
            )));
        }
        updates.push(Update::Finish(match reason.as_str() {
            "STOP" => FinishReason::Stop,
            "MAX_TOKENS" => FinishReason::Length,
            other => FinishReason::Other(other.to_string()),
        }));
    }
    Ok(updates)
}

impl Protocol for Gemini {
    fn format_name(&self) -> &'static str {
        "the Gemini API format"
    }

    fn url(&self, stream: bool) -> Url {
        if stream {
            self.stream_url.clone()
        } else {
            self.whole_url.clone()
        }
    }

    fn auth_headers(&self, key: &str) -> Vec<(HeaderName, String)> {
        vec![(HeaderName::from_static("x-goog-api-key"), key.to_string())]
    }

    fn body(&self, request: &ChatRequest, _stream: bool) -> Result<Vec<u8>, ModelError> {
        serde_json::to_vec(&request_body(request)?).map_err(|error| {
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
        self.read_whole(data)
    }

    fn read_whole(&self, body: &str) -> Result<Vec<Update>, Problem> {
        let value = json_value(body, "the answer")?;
        if let Some(detail) = ErrorDetail::from_body(&value) {
            return Err(Problem::Reported(detail));
        }
        read_response(decode(value, body, "the answer")?)
    }

    fn rejects_key(&self, status: u16, body: &[u8]) -> bool {
        status == 400 && String::from_utf8_lossy(body).contains("API_KEY_INVALID")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use versus_core::{GenerationParams, Message};

    fn protocol() -> Gemini {
        Gemini::new("https://generativelanguage.googleapis.com", "gemini-x").expect("valid")
    }

    #[test]
    fn urls_name_the_model_and_method() {
        assert_eq!(
            protocol().url(true).as_str(),
            "https://generativelanguage.googleapis.com/v1/models/gemini-x:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            Gemini::new("http://127.0.0.1:9/v1beta/", "g")
                .expect("valid")
                .url(false)
                .as_str(),
            "http://127.0.0.1:9/v1beta/models/g:generateContent"
        );
    }

    #[test]
    fn the_request_has_system_instruction_roles_config_and_inline_images() {
        let request = ChatRequest {
            messages: vec![
                Message::system("Be brief."),
                Message::user("Hi"),
                Message::text(Role::Assistant, "Hello"),
                Message {
                    role: Role::User,
                    content: vec![
                        ContentPart::Text {
                            text: "And this?".into(),
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
                top_k: Some(3),
                max_tokens: Some(20),
                seed: Some(9),
                stop: Some(vec!["END".into()]),
                thinking_budget: Some(512),
                ..Default::default()
            },
        };
        let body: serde_json::Value =
            serde_json::from_slice(&protocol().body(&request, true).expect("encodes"))
                .expect("JSON");
        assert_eq!(
            body,
            json!({
                "contents": [
                    {"role": "user", "parts": [{"text": "Hi"}]},
                    {"role": "model", "parts": [{"text": "Hello"}]},
                    {"role": "user", "parts": [
                        {"text": "And this?"},
                        {"inlineData": {"mimeType": "image/png", "data": "AA=="}}
                    ]}
                ],
                "systemInstruction": {"parts": [{"text": "Be brief."}]},
                "generationConfig": {
                    "temperature": 0.0, "topK": 3, "maxOutputTokens": 20,
                    "stopSequences": ["END"], "seed": 9,
                    "thinkingConfig": {"thinkingBudget": 512, "includeThoughts": true}
                }
            })
        );
        let url_image = ChatRequest {
            messages: vec![Message {
                role: Role::User,
                content: vec![ContentPart::Image {
                    url: "https://example.com/a.png".into(),
                    source: Some("https://example.com/a.png".into()),
                }],
            }],
            params: GenerationParams::default(),
        };
        let error = protocol().body(&url_image, true).expect_err("a URL");
        assert_eq!(error.kind, ErrorKind::Unsupported);
    }

    #[test]
    fn chunks_give_text_thoughts_usage_and_finish() {
        let updates = protocol()
            .read_item(StreamItem {
                event: None,
                data: r#"{"candidates":[{"content":{"role":"model","parts":[{"text":"plan","thought":true},{"text":"Hi"}]},"finishReason":"STOP","index":0}],
                          "usageMetadata":{"promptTokenCount":8,"candidatesTokenCount":2,"thoughtsTokenCount":5,"cachedContentTokenCount":1,"totalTokenCount":15},
                          "modelVersion":"gemini-x-001"}"#,
            })
            .expect("valid");
        assert_eq!(
            updates,
            [
                Update::Model("gemini-x-001".into()),
                Update::Usage(UsageReport {
                    prompt: Some(8),
                    completion: Some(7),
                    reasoning: Some(5),
                    cached: Some(1),
                    cache_write: None
                }),
                Update::Thinking("plan".into()),
                Update::Text("Hi".into()),
                Update::Finish(FinishReason::Stop),
            ]
        );
    }

    #[test]
    fn safety_finishes_and_blocked_prompts_are_blocks_with_their_reasons() {
        let read = |data: &str| protocol().read_item(StreamItem { event: None, data });
        let blocked = read(
            r#"{"candidates":[{"finishReason":"SAFETY","index":0,"safetyRatings":[
                {"category":"HARM_CATEGORY_HARASSMENT","probability":"HIGH","blocked":true},
                {"category":"HARM_CATEGORY_HATE_SPEECH","probability":"NEGLIGIBLE"}]}]}"#,
        );
        match blocked {
            Err(Problem::Blocked(reason)) => {
                assert!(reason.contains("`SAFETY`"), "{reason}");
                assert!(reason.contains("HARM_CATEGORY_HARASSMENT HIGH"), "{reason}");
                assert!(!reason.contains("HATE_SPEECH"), "{reason}");
            }
            other => panic!("expected a block, got {other:?}"),
        }
        assert!(matches!(
            read(r#"{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"}}"#),
            Err(Problem::Blocked(reason)) if reason.contains("prompt was blocked")
        ));
        assert!(matches!(
            read(
                r#"{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}"#
            ),
            Err(Problem::Reported(_))
        ));
    }

    #[test]
    fn a_bad_key_is_told_by_its_reason() {
        let body = br#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"reason":"API_KEY_INVALID"}]}}"#;
        assert!(protocol().rejects_key(400, body));
        assert!(!protocol().rejects_key(400, b"{\"error\":{\"message\":\"bad\"}}"));
    }
}
