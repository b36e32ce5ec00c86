//! The chat-completions protocol: OpenAI's `/chat/completions` and every server that copies it,
//! and Azure OpenAI's deployments (the same format at other URLs, with an `api-key` header).

use reqwest::header::{HeaderName, AUTHORIZATION};
use reqwest::Url;
use versus_core::{ChatRequest, ErrorKind, FinishReason, ModelError, OpenAiApi};

use crate::client::{api_url, AzureAuth, AzureOptions};
use crate::error::ApiError;
use crate::protocol::{decode, json_value, Problem, Protocol, StreamItem, Update, UsageReport};
use crate::responses::{Responses, ResponsesAuth};
use crate::wire::{
    ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse, ErrorDetail,
};

/// How the key travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChatAuth {
    Bearer,
    /// Azure's `api-key` header.
    ApiKeyHeader,
}

pub(crate) struct ChatCompletions {
    url: Url,
    model: String,
    auth: ChatAuth,
    format: &'static str,
}

impl ChatCompletions {
    /// `{base_url}/chat/completions`, the key as a bearer token.
    pub fn new(base_url: &str, model: &str) -> Result<ChatCompletions, ApiError> {
        Ok(ChatCompletions {
            url: api_url(base_url, &["chat", "completions"])?,
            model: model.to_string(),
            auth: ChatAuth::Bearer,
            format: "the chat-completions format",
        })
    }
}

/// An Azure OpenAI deployment: chat completions or the Responses API, at the classic URLs (with
/// `api-version`) or the v1 ones.
pub(crate) fn azure(
    endpoint: &str,
    deployment: &str,
    options: &AzureOptions,
) -> Result<Box<dyn Protocol>, ApiError> {
    // An endpoint given with its `/openai` (or `/openai/v1`) path is the same endpoint.
    let root = endpoint.trim().trim_end_matches('/');
    let root = root
        .strip_suffix("/openai/v1")
        .or_else(|| root.strip_suffix("/openai"))
        .unwrap_or(root);
    let mut url = match (&options.api_version, options.api) {
        (Some(_), OpenAiApi::Chat) => api_url(
            root,
            &["openai", "deployments", deployment, "chat", "completions"],
        )?,
        (Some(_), OpenAiApi::Responses) => api_url(root, &["openai", "responses"])?,
        (None, OpenAiApi::Chat) => api_url(root, &["openai", "v1", "chat", "completions"])?,
        (None, OpenAiApi::Responses) => api_url(root, &["openai", "v1", "responses"])?,
    };
    if let Some(version) = &options.api_version {
        url.query_pairs_mut().append_pair("api-version", version);
    }
    Ok(match options.api {
        OpenAiApi::Chat => Box::new(ChatCompletions {
            url,
            model: deployment.to_string(),
            auth: match options.auth {
                AzureAuth::ApiKey => ChatAuth::ApiKeyHeader,
                AzureAuth::BearerToken => ChatAuth::Bearer,
            },
            format: "Azure OpenAI's chat-completions format",
        }),
        OpenAiApi::Responses => Box::new(Responses::new(
            url,
            deployment,
            match options.auth {
                AzureAuth::ApiKey => ResponsesAuth::AzureApiKey,
                AzureAuth::BearerToken => ResponsesAuth::Bearer,
            },
        )),
    })
}

/// A finish reason that means the provider withheld the answer is a block, not an answer.
fn finish(reason: &str) -> Result<Update, Problem> {
    match FinishReason::from_wire(Some(reason)) {
        FinishReason::ContentFilter => Err(Problem::Blocked(
            "finish reason `content_filter`: the provider's content filter withheld the answer"
                .to_string(),
        )),
        reason => Ok(Update::Finish(reason)),
    }
}

fn usage_report(usage: &crate::wire::WireUsage) -> Option<Update> {
    usage.to_usage().map(|usage| {
        Update::Usage(UsageReport {
            prompt: Some(usage.prompt_tokens),
            completion: Some(usage.completion_tokens),
            reasoning: usage.reasoning_tokens,
            cached: usage.cached_prompt_tokens,
            cache_write: None,
        })
    })
}

impl Protocol for ChatCompletions {
    fn format_name(&self) -> &'static str {
        self.format
    }

    fn url(&self, _stream: bool) -> Url {
        self.url.clone()
    }

    fn auth_headers(&self, key: &str) -> Vec<(HeaderName, String)> {
        match self.auth {
            ChatAuth::Bearer => vec![(AUTHORIZATION, format!("Bearer {key}"))],
            ChatAuth::ApiKeyHeader => vec![(HeaderName::from_static("api-key"), key.to_string())],
        }
    }

    fn body(&self, request: &ChatRequest, stream: bool) -> Result<Vec<u8>, ModelError> {
        serde_json::to_vec(&ChatCompletionRequest::from_chat(
            &self.model,
            request,
            stream,
        ))
        .map_err(|error| {
            ModelError::new(
                ErrorKind::Config,
                format!("could not encode the request as JSON: {error}"),
            )
        })
    }

    fn read_item(&self, item: StreamItem<'_>) -> Result<Vec<Update>, Problem> {
        let data = item.data.trim();
        if data == "[DONE]" {
            return Ok(vec![Update::Done]);
        }
        if data.is_empty() {
            return Ok(Vec::new());
        }
        let value = json_value(data, "a stream event")?;
        if let Some(detail) = ErrorDetail::from_body(&value) {
            return Err(Problem::Reported(detail));
        }
        if item.event == Some("error") {
            return Err(Problem::Reported(ErrorDetail {
                message: data.to_string(),
                ..ErrorDetail::default()
            }));
        }
        let chunk: ChatCompletionChunk = decode(value, data, "a stream event")?;
        let mut updates = Vec::new();
        if let Some(model) = chunk.model {
            updates.push(Update::Model(model));
        }
        if let Some(usage) = chunk.usage.as_ref().and_then(usage_report) {
            updates.push(usage);
        }
        if let Some(choice) = chunk.choices.into_iter().find(|choice| choice.index == 0) {
            if let Some(thinking) = choice.delta.reasoning_content {
                updates.push(Update::Thinking(thinking));
            }
            if let Some(content) = choice.delta.content {
                updates.push(Update::Text(content));
            }
            if let Some(reason) = choice.finish_reason {
                updates.push(finish(&reason)?);
            }
        }
        Ok(updates)
    }

    fn read_whole(&self, body: &str) -> Result<Vec<Update>, Problem> {
        let value = json_value(body, "the body")?;
        if let Some(detail) = ErrorDetail::from_body(&value) {
            return Err(Problem::Reported(detail));
        }
        let answer: ChatCompletionResponse = decode(value, body, "the body")?;
        let Some(choice) = answer.choices.into_iter().find(|choice| choice.index == 0) else {
            return Err(Problem::malformed("the answer has no choices", body));
        };
        let mut updates = Vec::new();
        if let Some(model) = answer.model {
            updates.push(Update::Model(model));
        }
        if let Some(usage) = answer.usage.as_ref().and_then(usage_report) {
            updates.push(usage);
        }
        if let Some(thinking) = choice.message.reasoning_content {
            updates.push(Update::Thinking(thinking));
        }
        updates.push(Update::Text(choice.message.content.unwrap_or_default()));
        updates.push(match choice.finish_reason {
            Some(reason) => finish(&reason)?,
            None => Update::Finish(FinishReason::Unknown),
        });
        updates.push(Update::Done);
        Ok(updates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn azure_url(version: Option<&str>, api: OpenAiApi) -> String {
        let options = AzureOptions {
            api_version: version.map(str::to_string),
            auth: AzureAuth::ApiKey,
            api,
        };
        azure("https://res.openai.azure.com/", "my-dep", &options)
            .expect("valid")
            .url(true)
            .to_string()
    }

    #[test]
    fn azure_urls_in_both_shapes() {
        assert_eq!(
            azure_url(Some("2024-10-21"), OpenAiApi::Chat),
            "https://res.openai.azure.com/openai/deployments/my-dep/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(
            azure_url(None, OpenAiApi::Chat),
            "https://res.openai.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(
            azure_url(None, OpenAiApi::Responses),
            "https://res.openai.azure.com/openai/v1/responses"
        );
        assert_eq!(
            azure_url(Some("2025-04-01-preview"), OpenAiApi::Responses),
            "https://res.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
        );
    }

    #[test]
    fn azure_sends_its_key_as_api_key_and_tokens_as_bearer() {
        let key = |auth| {
            let options = AzureOptions {
                api_version: None,
                auth,
                api: OpenAiApi::Chat,
            };
            azure("https://r.openai.azure.com", "d", &options)
                .expect("valid")
                .auth_headers("K")
        };
        assert_eq!(key(AzureAuth::ApiKey)[0].0.as_str(), "api-key");
        assert_eq!(key(AzureAuth::BearerToken)[0].1, "Bearer K");
    }

    #[test]
    fn content_filter_is_a_block_and_reasoning_is_thinking() {
        let chat = ChatCompletions::new("http://h/v1", "m").expect("valid");
        fn item(data: &str) -> StreamItem<'_> {
            StreamItem { event: None, data }
        }
        let blocked = chat.read_item(item(
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"content_filter"}]}"#,
        ));
        assert!(matches!(blocked, Err(Problem::Blocked(_))));
        let updates = chat
            .read_item(item(
                r#"{"choices":[{"index":0,"delta":{"reasoning_content":"hmm","content":"Hi"}}]}"#,
            ))
            .expect("valid");
        assert_eq!(
            updates,
            [Update::Thinking("hmm".into()), Update::Text("Hi".into())]
        );
        let usage = chat
            .read_item(item(r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9,"prompt_tokens_details":{"cached_tokens":2},"completion_tokens_details":{"reasoning_tokens":4}}}"#))
            .expect("valid");
        assert_eq!(
            usage,
            [Update::Usage(UsageReport {
                prompt: Some(5),
                completion: Some(9),
                reasoning: Some(4),
                cached: Some(2),
                cache_write: None
            })]
        );
    }
}
