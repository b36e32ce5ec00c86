//! OpenAI's Responses API as the fake reads and writes it: `input` as a string or message items
//! (`input_text`, `input_image`, earlier `output_text`), `instructions`, `max_output_tokens`,
//! `reasoning`, and streams of typed events (`response.created` ... `response.completed`, each
//! with its `sequence_number`, no `[DONE]`).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{named_event, Answer, Writer};
use crate::wire::{word_count, ChatCall, SamplingParams};

#[derive(Deserialize)]
struct Request {
    model: String,
    input: Input,
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    max_output_tokens: Option<u64>,
    #[serde(default)]
    reasoning: Option<Reasoning>,
}

#[derive(Deserialize)]
struct Reasoning {
    #[serde(default)]
    effort: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Input {
    Text(String),
    Items(Vec<Item>),
}

#[derive(Deserialize)]
struct Item {
    role: String,
    content: ItemContent,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ItemContent {
    Text(String),
    Parts(Vec<Part>),
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part {
    InputText { text: String },
    OutputText { text: String },
    InputImage { image_url: String },
}

impl ItemContent {
    fn text(&self) -> String {
        match self {
            ItemContent::Text(text) => text.clone(),
            ItemContent::Parts(parts) => parts
                .iter()
                .filter_map(|part| match part {
                    Part::InputText { text } | Part::OutputText { text } => Some(text.as_str()),
                    Part::InputImage { .. } => None,
                })
                .collect(),
        }
    }
}

/// Reads a Responses request; on failure, the JSON and a message for the 400 answer.
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
        Err(error) => return (raw, Err(format!("invalid Responses request: {error}"))),
    };
    let items = match request.input {
        Input::Text(text) => vec![Item {
            role: "user".into(),
            content: ItemContent::Text(text),
        }],
        Input::Items(items) => items,
    };
    let image_urls = items
        .iter()
        .flat_map(|item| match &item.content {
            ItemContent::Parts(parts) => parts
                .iter()
                .filter_map(|part| match part {
                    Part::InputImage { image_url } => Some(image_url.clone()),
                    _ => None,
                })
                .collect(),
            ItemContent::Text(_) => Vec::new(),
        })
        .collect();
    let call = ChatCall {
        stream: request.stream.unwrap_or(false),
        include_usage: true,
        params: SamplingParams {
            temperature: request.temperature,
            top_p: request.top_p,
            max_tokens: request.max_output_tokens,
            seed: None,
            stop: Vec::new(),
            top_k: None,
            thinking: request.reasoning.and_then(|reasoning| reasoning.effort),
        },
        last_user_text: items
            .iter()
            .rev()
            .find(|item| item.role == "user")
            .map(|item| item.content.text())
            .unwrap_or_default(),
        image_urls,
        prompt_words: request.instructions.as_deref().map_or(0, word_count)
            + items
                .iter()
                .map(|item| word_count(&item.content.text()))
                .sum::<u64>(),
        model: request.model,
    };
    (raw, Ok(call))
}

/// Streams number their events.
#[derive(Default)]
pub(crate) struct ResponsesWriter {
    sequence: u64,
    reasoning_open: bool,
    text_open: bool,
}

fn usage(answer: &Answer<'_>) -> Value {
    match answer.usage {
        Some(counts) => json!({
            "input_tokens": counts.prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": counts.output(),
            "output_tokens_details": {"reasoning_tokens": counts.thinking},
            "total_tokens": counts.prompt + counts.output(),
        }),
        None => Value::Null,
    }
}

fn response_object(answer: &Answer<'_>, status: &str, output: Vec<Value>) -> Value {
    json!({
        "id": format!("resp_{}", answer.header.id),
        "object": "response",
        "created_at": answer.header.created,
        "status": status,
        "model": answer.header.model,
        "output": output,
        "parallel_tool_calls": true,
        "tool_choice": "auto",
        "tools": [],
        "error": null,
        "incomplete_details": null,
        "usage": if status == "in_progress" { Value::Null } else { usage(answer) },
    })
}

fn message_item(answer: &Answer<'_>, text: &str) -> Value {
    json!({
        "type": "message", "id": format!("msg_{}", answer.header.id), "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    })
}

fn reasoning_item(answer: &Answer<'_>, thinking: &str) -> Value {
    json!({
        "type": "reasoning", "id": format!("rs_{}", answer.header.id),
        "summary": [{"type": "summary_text", "text": thinking}],
    })
}

impl ResponsesWriter {
    fn event(&mut self, name: &str, mut data: Value) -> Bytes {
        data["type"] = json!(name);
        data["sequence_number"] = json!(self.sequence);
        self.sequence += 1;
        named_event(name, &data)
    }

    fn open_text(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        if self.text_open {
            return Vec::new();
        }
        self.text_open = true;
        let output_index = u64::from(self.reasoning_open);
        let item_id = format!("msg_{}", answer.header.id);
        vec![
            self.event(
                "response.output_item.added",
                json!({"output_index": output_index, "item": {"type": "message", "id": item_id,
                       "status": "in_progress", "role": "assistant", "content": []}}),
            ),
            self.event(
                "response.content_part.added",
                json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                       "part": {"type": "output_text", "text": "", "annotations": []}}),
            ),
        ]
    }

    fn output(&self, answer: &Answer<'_>) -> Vec<Value> {
        let mut output = Vec::new();
        if let Some(thinking) = answer.thinking {
            output.push(reasoning_item(answer, thinking));
        }
        output.push(message_item(answer, answer.text));
        output
    }
}

impl Writer for ResponsesWriter {
    fn start(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        let created = response_object(answer, "in_progress", Vec::new());
        vec![
            self.event("response.created", json!({"response": created.clone()})),
            self.event("response.in_progress", json!({"response": created})),
        ]
    }

    fn thinking(&mut self, answer: &Answer<'_>, delta: &str) -> Vec<Bytes> {
        let item_id = format!("rs_{}", answer.header.id);
        let mut pieces = Vec::new();
        if !self.reasoning_open {
            self.reasoning_open = true;
            pieces.push(self.event(
                "response.output_item.added",
                json!({"output_index": 0, "item": {"type": "reasoning", "id": item_id, "summary": []}}),
            ));
        }
        pieces.push(self.event(
            "response.reasoning_summary_text.delta",
            json!({"item_id": item_id, "output_index": 0, "summary_index": 0, "delta": delta}),
        ));
        pieces
    }

    fn text(&mut self, answer: &Answer<'_>, delta: &str) -> Vec<Bytes> {
        let mut pieces = self.open_text(answer);
        let output_index = u64::from(self.reasoning_open);
        pieces.push(self.event(
            "response.output_text.delta",
            json!({"item_id": format!("msg_{}", answer.header.id), "output_index": output_index,
                   "content_index": 0, "delta": delta, "logprobs": []}),
        ));
        pieces
    }

    fn finish(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        let mut pieces = self.open_text(answer);
        let output_index = u64::from(self.reasoning_open);
        let item_id = format!("msg_{}", answer.header.id);
        pieces.push(self.event(
            "response.output_text.done",
            json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                   "text": answer.text, "logprobs": []}),
        ));
        pieces.push(self.event(
            "response.content_part.done",
            json!({"item_id": item_id, "output_index": output_index, "content_index": 0,
                   "part": {"type": "output_text", "text": answer.text, "annotations": []}}),
        ));
        pieces.push(self.event(
            "response.output_item.done",
            json!({"output_index": output_index, "item": message_item(answer, answer.text)}),
        ));
        let output = self.output(answer);
        pieces.push(self.event(
            "response.completed",
            json!({"response": response_object(answer, "completed", output)}),
        ));
        pieces
    }

    fn blocked(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        let mut response = response_object(answer, "incomplete", Vec::new());
        response["incomplete_details"] = json!({"reason": "content_filter"});
        vec![self.event("response.incomplete", json!({"response": response}))]
    }

    fn error_event(&mut self, _answer: &Answer<'_>) -> Vec<Bytes> {
        vec![self.event(
            "error",
            json!({"code": "server_error", "param": null,
                   "message": "The server had an error while processing your request (injected by versus-testkit)"}),
        )]
    }

    fn malformed(&mut self, _answer: &Answer<'_>) -> Vec<Bytes> {
        vec![Bytes::from(
            "event: response.output_text.delta\ndata: {\"type\": \"response.output_text.delta\", \"delta\": oops\n\n",
        )]
    }

    fn whole(&self, answer: &Answer<'_>) -> Value {
        response_object(answer, "completed", self.output(answer))
    }

    fn whole_blocked(&self, answer: &Answer<'_>) -> Value {
        let mut response = response_object(answer, "incomplete", Vec::new());
        response["incomplete_details"] = json!({"reason": "content_filter"});
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_instructions_items_and_images() {
        let body = json!({
            "model": "gpt-x", "instructions": "Be brief.", "stream": true,
            "input": [{"role": "user", "content": [
                {"type": "input_text", "text": "What is"},
                {"type": "input_image", "image_url": "data:image/png;base64,AAAA"}
            ]}],
            "max_output_tokens": 30, "reasoning": {"effort": "low"}
        });
        let call = parse(body.to_string().as_bytes()).1.expect("valid");
        assert_eq!(call.last_user_text, "What is");
        assert_eq!(call.image_urls, ["data:image/png;base64,AAAA"]);
        assert_eq!(call.params.max_tokens, Some(30));
        assert_eq!(call.params.thinking.as_deref(), Some("low"));
        assert_eq!(call.prompt_words, 2 + 2);
        let plain = parse(br#"{"model": "m", "input": "hello there"}"#)
            .1
            .expect("valid");
        assert_eq!(plain.last_user_text, "hello there");
    }
}
