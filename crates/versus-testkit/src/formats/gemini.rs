//! Google's Gemini API as the fake reads and writes it: `contents` with `user`/`model` roles,
//! `systemInstruction`, `generationConfig`, inline images (camelCase or snake_case, as Google's
//! JSON parser takes both), the model and the method (`generateContent`,
//! `streamGenerateContent?alt=sse`) in the path, and answers as `GenerateContentResponse`s with
//! `usageMetadata` counting thoughts apart; a block is `finishReason: SAFETY`.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{data_url, is_base64, Answer, Writer, IMAGE_TYPES};
use crate::wire::{sse_event, word_count, ChatCall, SamplingParams};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    contents: Vec<Content>,
    #[serde(default, alias = "system_instruction")]
    system_instruction: Option<Content>,
    #[serde(default, alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    #[serde(default)]
    text: Option<String>,
    #[serde(default, alias = "inline_data")]
    inline_data: Option<InlineData>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InlineData {
    #[serde(alias = "mime_type")]
    mime_type: String,
    data: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default, alias = "top_p")]
    top_p: Option<f64>,
    #[serde(default, alias = "top_k")]
    top_k: Option<f64>,
    #[serde(default, alias = "max_output_tokens")]
    max_output_tokens: Option<u64>,
    #[serde(default, alias = "stop_sequences")]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default, alias = "thinking_config")]
    thinking_config: Option<ThinkingConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ThinkingConfig {
    #[serde(default, alias = "thinking_budget")]
    thinking_budget: Option<i64>,
}

impl Content {
    fn text(&self) -> String {
        self.parts
            .iter()
            .filter_map(|part| part.text.as_deref())
            .collect()
    }
}

/// Reads a `generateContent` request for `model` (from the path); on failure, the JSON and a
/// message for the 400 answer.
pub(crate) fn parse(body: &[u8], model: &str, stream: bool) -> (Value, Result<ChatCall, String>) {
    let raw: Value = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(error) => {
            return (
                Value::Null,
                Err(format!("Invalid JSON payload received. {error}")),
            )
        }
    };
    let request: Request = match serde_json::from_value(raw.clone()) {
        Ok(request) => request,
        Err(error) => return (raw, Err(format!("Invalid JSON payload received. {error}"))),
    };
    if request.contents.is_empty() {
        return (
            raw,
            Err("* GenerateContentRequest.contents: contents is not specified".into()),
        );
    }
    let mut image_urls = Vec::new();
    for content in &request.contents {
        if !matches!(content.role.as_deref(), None | Some("user") | Some("model")) {
            return (raw, Err("Please use a valid role: user, model.".into()));
        }
        for part in &content.parts {
            if let Some(inline) = &part.inline_data {
                if !IMAGE_TYPES.contains(&inline.mime_type.as_str()) || !is_base64(&inline.data) {
                    return (raw, Err("Unable to process input image.".into()));
                }
                image_urls.push(data_url(&inline.mime_type, &inline.data));
            }
        }
    }
    let config = request.generation_config;
    let stop = config
        .as_ref()
        .and_then(|config| config.stop_sequences.clone())
        .unwrap_or_default();
    if stop.len() > 5 {
        return (raw, Err("stop_sequences: at most 5 are allowed".into()));
    }
    let call = ChatCall {
        model: model.to_string(),
        stream,
        include_usage: true,
        params: SamplingParams {
            temperature: config.as_ref().and_then(|c| c.temperature),
            top_p: config.as_ref().and_then(|c| c.top_p),
            max_tokens: config.as_ref().and_then(|c| c.max_output_tokens),
            seed: config.as_ref().and_then(|c| c.seed),
            stop,
            top_k: config.as_ref().and_then(|c| c.top_k).map(|k| k as u64),
            thinking: config
                .as_ref()
                .and_then(|c| c.thinking_config.as_ref())
                .and_then(|t| t.thinking_budget)
                .map(|budget| budget.to_string()),
        },
        last_user_text: request
            .contents
            .iter()
            .rev()
            .find(|content| content.role.as_deref() != Some("model"))
            .map(Content::text)
            .unwrap_or_default(),
        image_urls,
        prompt_words: request
            .system_instruction
            .as_ref()
            .map_or(0, |system| word_count(&system.text()))
            + request
                .contents
                .iter()
                .map(|content| word_count(&content.text()))
                .sum::<u64>(),
    };
    (raw, Ok(call))
}

/// Google's error body: `{"error":{"code":..,"message":..,"status":..}}`.
pub(crate) fn error_body(status: u16, message: &str) -> String {
    let name = match status {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "INTERNAL",
    };
    json!({"error": {"code": status, "message": message, "status": name}}).to_string()
}

/// What Google answers to a wrong key.
pub(crate) fn api_key_invalid_body() -> String {
    json!({"error": {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
        "details": [{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"}
        }]
    }})
    .to_string()
}

pub(crate) struct GeminiWriter;

fn response(answer: &Answer<'_>, parts: Vec<Value>, finish: Option<&str>, usage: bool) -> Value {
    let mut candidate = json!({"content": {"role": "model", "parts": parts}, "index": 0});
    if let Some(reason) = finish {
        candidate["finishReason"] = json!(reason);
    }
    let mut value = json!({
        "candidates": [candidate],
        "modelVersion": answer.header.model,
        "responseId": answer.header.id,
    });
    if let (true, Some(counts)) = (usage, answer.usage) {
        let mut metadata = json!({
            "promptTokenCount": counts.prompt,
            "candidatesTokenCount": counts.answer,
            "totalTokenCount": counts.prompt + counts.output(),
        });
        if counts.thinking > 0 {
            metadata["thoughtsTokenCount"] = json!(counts.thinking);
        }
        value["usageMetadata"] = metadata;
    }
    value
}

fn safety_block(answer: &Answer<'_>) -> Value {
    json!({
        "candidates": [{
            "finishReason": "SAFETY",
            "index": 0,
            "safetyRatings": [
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "HIGH", "blocked": true},
                {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"}
            ]
        }],
        "usageMetadata": {
            "promptTokenCount": answer.usage.map_or(0, |usage| usage.prompt),
            "totalTokenCount": answer.usage.map_or(0, |usage| usage.prompt)
        },
        "modelVersion": answer.header.model,
        "responseId": answer.header.id,
    })
}

impl Writer for GeminiWriter {
    fn start(&mut self, _answer: &Answer<'_>) -> Vec<Bytes> {
        Vec::new()
    }

    fn thinking(&mut self, answer: &Answer<'_>, delta: &str) -> Vec<Bytes> {
        let chunk = response(
            answer,
            vec![json!({"text": delta, "thought": true})],
            None,
            false,
        );
        vec![sse_event(&chunk.to_string())]
    }

    fn text(&mut self, answer: &Answer<'_>, delta: &str) -> Vec<Bytes> {
        let chunk = response(answer, vec![json!({"text": delta})], None, false);
        vec![sse_event(&chunk.to_string())]
    }

    /// Gemini's last chunk carries the finish reason and the usage; the stream just ends.
    fn finish(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        let last = response(answer, vec![json!({"text": ""})], Some("STOP"), true);
        vec![sse_event(&last.to_string())]
    }

    fn blocked(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        vec![sse_event(&safety_block(answer).to_string())]
    }

    fn error_event(&mut self, _answer: &Answer<'_>) -> Vec<Bytes> {
        vec![sse_event(&error_body(
            503,
            "The model is overloaded. Please try again later. (injected by versus-testkit)",
        ))]
    }

    fn malformed(&mut self, _answer: &Answer<'_>) -> Vec<Bytes> {
        vec![sse_event(
            r#"{"candidates": [{"content": {"parts": [{"text": "oops"#,
        )]
    }

    fn whole(&self, answer: &Answer<'_>) -> Value {
        let mut parts = Vec::new();
        if let Some(thinking) = answer.thinking {
            parts.push(json!({"text": thinking, "thought": true}));
        }
        parts.push(json!({"text": answer.text}));
        response(answer, parts, Some("STOP"), true)
    }

    fn whole_blocked(&self, answer: &Answer<'_>) -> Value {
        safety_block(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_spellings_and_the_model_from_the_path() {
        let body = json!({
            "contents": [{"role": "user", "parts": [
                {"text": "Look"},
                {"inline_data": {"mime_type": "image/png", "data": "AAAA"}}
            ]}],
            "systemInstruction": {"parts": [{"text": "Be brief."}]},
            "generationConfig": {"temperature": 0, "maxOutputTokens": 9, "stopSequences": ["X"], "seed": 4}
        });
        let call = parse(body.to_string().as_bytes(), "gemini-x", true)
            .1
            .expect("valid");
        assert_eq!(call.model, "gemini-x");
        assert_eq!(call.image_urls, ["data:image/png;base64,AAAA"]);
        assert_eq!(call.params.max_tokens, Some(9));
        assert_eq!(call.params.seed, Some(4));
        assert_eq!(call.prompt_words, 1 + 2);
    }

    #[test]
    fn refuses_bad_roles_images_and_too_many_stops() {
        let refused = |body: Value| parse(body.to_string().as_bytes(), "g", false).1.is_err();
        assert!(refused(
            json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]})
        ));
        assert!(refused(json!({"contents": [{"role": "user", "parts": [
            {"inlineData": {"mimeType": "image/png", "data": "not base64!"}}]}]})));
        assert!(refused(
            json!({"contents": [{"role": "user", "parts": [{"text": "x"}]}],
            "generationConfig": {"stopSequences": ["1", "2", "3", "4", "5", "6"]}})
        ));
        assert!(refused(json!({"contents": []})));
    }
}
