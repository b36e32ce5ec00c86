//! OpenAI's chat-completions answers as the fake writes them (the request side is
//! `crate::wire::parse_chat_call`): a role chunk, content chunks, a finish chunk, a usage chunk
//! when `stream_options.include_usage` asks for one, and `[DONE]`.

use bytes::Bytes;
use serde_json::{json, Value};

use super::{Answer, Writer};
use crate::wire::{self, chunk_json, completion_json, sse_event, usage_chunk_json};

pub(crate) struct ChatWriter;

fn usage_value(answer: &Answer<'_>) -> Option<Value> {
    answer.usage.map(|usage| {
        let mut value = json!({
            "prompt_tokens": usage.prompt,
            "completion_tokens": usage.output(),
            "total_tokens": usage.prompt + usage.output(),
        });
        if usage.thinking > 0 {
            value["completion_tokens_details"] = json!({"reasoning_tokens": usage.thinking});
        }
        value
    })
}

fn chunk(answer: &Answer<'_>, delta: Value, finish_reason: Option<&str>) -> Bytes {
    sse_event(&chunk_json(answer.header, delta, finish_reason, answer.include_usage).to_string())
}

impl Writer for ChatWriter {
    fn start(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        vec![chunk(
            answer,
            json!({"role": "assistant", "content": ""}),
            None,
        )]
    }

    /// Thinking as vLLM and DeepSeek stream it: `reasoning_content` deltas.
    fn thinking(&mut self, answer: &Answer<'_>, delta: &str) -> Vec<Bytes> {
        vec![chunk(answer, json!({"reasoning_content": delta}), None)]
    }

    fn text(&mut self, answer: &Answer<'_>, delta: &str) -> Vec<Bytes> {
        vec![chunk(answer, json!({"content": delta}), None)]
    }

    fn finish(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        let mut pieces = vec![chunk(answer, json!({}), Some("stop"))];
        if let (true, Some(usage)) = (answer.include_usage, usage_value(answer)) {
            let mut last = usage_chunk_json(answer.header, 0, 0);
            last["usage"] = usage;
            pieces.push(sse_event(&last.to_string()));
        }
        pieces.push(sse_event(wire::SSE_DONE));
        pieces
    }

    fn blocked(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        vec![
            chunk(answer, json!({}), Some("content_filter")),
            sse_event(wire::SSE_DONE),
        ]
    }

    fn error_event(&mut self, _answer: &Answer<'_>) -> Vec<Bytes> {
        vec![sse_event(&wire::openai_error_body(
            "The server had an error while processing your request (injected by versus-testkit)",
            "server_error",
            None,
        ))]
    }

    fn malformed(&mut self, answer: &Answer<'_>) -> Vec<Bytes> {
        vec![
            sse_event(&format!(
                r#"{{"id": "{}", "choices": [{{"delta": {{"content": "oops"#,
                answer.header.id
            )),
            sse_event(wire::SSE_DONE),
        ]
    }

    fn whole(&self, answer: &Answer<'_>) -> Value {
        let mut completion = completion_json(answer.header, answer.text, None);
        if let Some(thinking) = answer.thinking {
            completion["choices"][0]["message"]["reasoning_content"] = json!(thinking);
        }
        if let Some(usage) = usage_value(answer) {
            completion["usage"] = usage;
        }
        completion
    }

    fn whole_blocked(&self, answer: &Answer<'_>) -> Value {
        let mut completion = completion_json(answer.header, "", None);
        completion["choices"][0]["finish_reason"] = json!("content_filter");
        completion
    }
}
