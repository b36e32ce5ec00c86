//! The providers' batch APIs, which answer many requests within hours at half the list price:
//! OpenAI's (a JSONL file uploaded to `/files`, a job at `/batches`, results in an output file),
//! Anthropic's Message Batches (`/v1/messages/batches`, results as JSONL) and Gemini's batch mode
//! (`models/{model}:batchGenerateContent`, a `batches/...` operation with the answers inlined).
//! Each request's body and each answer are the provider's ordinary ones, built and read by the
//! same `Protocol` as a live call; only the envelope differs.

use bytes::Bytes;
use reqwest::{Method, Url};
use serde::Deserialize;
use serde_json::{json, Value};
use versus_core::{ChatRequest, Completion, ErrorKind, ModelError};

use crate::client::{api_url, completion_from_whole, Api, ApiClient};
use crate::fault::Fault;
use crate::wire::ErrorDetail;

/// One request of a batch, named so that its answer can be matched back.
#[derive(Debug, Clone)]
pub struct BatchItem {
    /// Unique within the batch; `[A-Za-z0-9_-]`, at most 64 characters (Anthropic's rule, the
    /// strictest).
    pub custom_id: String,
    pub request: ChatRequest,
}

/// Where a submitted batch is.
#[derive(Debug)]
pub enum BatchPoll {
    /// Still running: how many of its requests have ended, out of how many, when the provider
    /// says.
    Running {
        ended: Option<u64>,
        total: Option<u64>,
    },
    /// Ended: a result for each request the provider reports on. Requests it does not report
    /// on were not run.
    Ended(Vec<BatchResult>),
    /// The whole batch failed (its input was refused, say), with the provider's reason.
    Failed(String),
}

/// What became of one request of a batch.
#[derive(Debug)]
pub struct BatchResult {
    pub custom_id: String,
    pub outcome: BatchOutcome,
}

#[derive(Debug)]
pub enum BatchOutcome {
    /// An answer, as a live call would have given it (with no timings: a batch has none per
    /// request). Boxed: an answer is large beside the other outcomes.
    Answered(Box<Completion>),
    /// The provider rejected or failed the request, with its reason; `error.kind` says whether
    /// asking again could help (`server`, `rate_limited`) or not (`bad_request`, `blocked`).
    Failed(ModelError),
    /// Not run: the batch expired or was cancelled before it; ask again.
    NotRun(String),
}

/// The most requests versus puts in one batch (OpenAI takes 50,000, Anthropic 100,000; Gemini's
/// inline requests are bounded by a 20 MB body).
pub const MAX_BATCH_REQUESTS: usize = 10_000;

/// What a batch id may look like before versus puts it in a URL path.
fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 256
        && id.split('/').all(|part| {
            !part.is_empty()
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                && part != "."
                && part != ".."
        })
}

impl ApiClient {
    /// Whether this API has a batch API versus can use.
    pub fn takes_batches(&self) -> bool {
        matches!(
            self.inner.api,
            Api::ChatCompletions | Api::Anthropic | Api::Gemini
        )
    }

    /// Submits `items` as one batch; returns the provider's batch id, to be stored before
    /// anything else so that an interrupted run polls this batch instead of paying twice.
    pub async fn submit_batch(&self, items: &[BatchItem]) -> Result<String, ModelError> {
        if items.is_empty() || items.len() > MAX_BATCH_REQUESTS {
            return Err(ModelError::new(
                ErrorKind::Config,
                format!(
                    "a batch takes 1 to {MAX_BATCH_REQUESTS} requests, not {}",
                    items.len()
                ),
            ));
        }
        let inner = &*self.inner;
        let bodies = items
            .iter()
            .map(|item| {
                let body = inner.protocol.body(&item.request, false)?;
                serde_json::from_slice::<Value>(&body).map_err(|error| {
                    ModelError::new(
                        ErrorKind::Config,
                        format!("could not encode a request: {error}"),
                    )
                })
            })
            .collect::<Result<Vec<Value>, ModelError>>()?;
        let id = match &inner.api {
            Api::ChatCompletions => self.submit_openai(items, bodies).await?,
            Api::Anthropic => {
                let requests: Vec<Value> = items
                    .iter()
                    .zip(bodies)
                    .map(|(item, params)| json!({"custom_id": item.custom_id, "params": params}))
                    .collect();
                let created: IdOnly = self
                    .post_json(
                        self.anthropic_url(&["batches"])?,
                        json!({"requests": requests}),
                    )
                    .await?;
                created.id
            }
            Api::Gemini => {
                let requests: Vec<Value> = items
                    .iter()
                    .zip(bodies)
                    .map(|(item, request)| {
                        json!({"request": request, "metadata": {"key": item.custom_id}})
                    })
                    .collect();
                let call = format!("{}:batchGenerateContent", inner.config.model);
                let body = json!({"batch": {
                    "displayName": "versus",
                    "inputConfig": {"requests": {"requests": requests}}
                }});
                let created: NameOnly = self
                    .post_json(self.gemini_url(&["models", &call])?, body)
                    .await?;
                created.name
            }
            _ => {
                return Err(ModelError::new(
                    ErrorKind::Unsupported,
                    format!("{} has no batch API versus can use", inner.target.format),
                ))
            }
        };
        if !valid_id(&id) {
            return Err(self.invalid(&format!("the batch id `{id}` is not one versus can use")));
        }
        Ok(id)
    }

    /// Asks where batch `id` is, and reads its results once it has ended.
    pub async fn poll_batch(&self, id: &str) -> Result<BatchPoll, ModelError> {
        if !valid_id(id) {
            return Err(ModelError::new(
                ErrorKind::Config,
                format!("`{id}` is not a batch id versus can use"),
            ));
        }
        match &self.inner.api {
            Api::ChatCompletions => self.poll_openai(id).await,
            Api::Anthropic => self.poll_anthropic(id).await,
            Api::Gemini => self.poll_gemini(id).await,
            _ => Err(ModelError::new(
                ErrorKind::Unsupported,
                "this API has no batch API versus can use",
            )),
        }
    }

    // ---- OpenAI

    async fn submit_openai(
        &self,
        items: &[BatchItem],
        bodies: Vec<Value>,
    ) -> Result<String, ModelError> {
        let base = &self.inner.config.base_url;
        let mut jsonl = String::new();
        for (item, body) in items.iter().zip(bodies) {
            let line = json!({
                "custom_id": item.custom_id,
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": body,
            });
            jsonl.push_str(&line.to_string());
            jsonl.push('\n');
        }
        let boundary = format!("versus-batch-{:016x}", fastrand::u64(..));
        let mut form = String::new();
        form.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nbatch\r\n"
        ));
        form.push_str(&format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"versus-batch.jsonl\"\r\nContent-Type: application/jsonl\r\n\r\n"
        ));
        form.push_str(&jsonl);
        form.push_str(&format!("\r\n--{boundary}--\r\n"));
        let file: IdOnly = self
            .fetch_json(
                Method::POST,
                api_url(base, &["files"]).map_err(ModelError::from)?,
                Some((
                    Bytes::from(form),
                    format!("multipart/form-data; boundary={boundary}"),
                )),
            )
            .await?;
        let batch: IdOnly = self
            .post_json(
                api_url(base, &["batches"]).map_err(ModelError::from)?,
                json!({
                    "input_file_id": file.id,
                    "endpoint": "/v1/chat/completions",
                    "completion_window": "24h",
                    "metadata": {"created_by": "versus"}
                }),
            )
            .await?;
        Ok(batch.id)
    }

    async fn poll_openai(&self, id: &str) -> Result<BatchPoll, ModelError> {
        let base = &self.inner.config.base_url;
        let batch: OpenAiBatch = self
            .fetch_json(
                Method::GET,
                api_url(base, &["batches", id]).map_err(ModelError::from)?,
                None,
            )
            .await?;
        let counts = batch.request_counts.unwrap_or_default();
        match batch.status.as_str() {
            "validating" | "in_progress" | "finalizing" | "cancelling" => {
                return Ok(BatchPoll::Running {
                    ended: Some(counts.completed + counts.failed),
                    total: Some(counts.total),
                })
            }
            "failed" => {
                let reason = batch
                    .errors
                    .and_then(|errors| errors.data.into_iter().next())
                    .map(|error| error.message)
                    .unwrap_or_else(|| "the batch failed without saying why".to_string());
                return Ok(BatchPoll::Failed(reason));
            }
            _ => {}
        }
        // completed, expired or cancelled: whatever ended is in the output and error files.
        let mut results = Vec::new();
        for file in [batch.output_file_id, batch.error_file_id]
            .into_iter()
            .flatten()
        {
            if !valid_id(&file) {
                return Err(
                    self.invalid(&format!("the file id `{file}` is not one versus can use"))
                );
            }
            let bytes = self
                .inner
                .fetch(
                    Method::GET,
                    api_url(base, &["files", &file, "content"]).map_err(ModelError::from)?,
                    None,
                )
                .await?;
            for line in String::from_utf8_lossy(&bytes)
                .lines()
                .filter(|l| !l.trim().is_empty())
            {
                let line: OpenAiResultLine = serde_json::from_str(line).map_err(|error| {
                    self.invalid(&format!(
                        "a result line is not OpenAI's batch format ({error})"
                    ))
                })?;
                let outcome = match (line.response, line.error) {
                    (Some(response), _) if (200..300).contains(&response.status_code) => {
                        self.answered(&response.body.to_string())
                    }
                    (Some(response), _) => BatchOutcome::Failed(
                        self.rejected(response.status_code, &response.body.to_string()),
                    ),
                    (None, Some(error)) => BatchOutcome::Failed(self.reported(&error)),
                    (None, None) => BatchOutcome::NotRun("no result".to_string()),
                };
                results.push(BatchResult {
                    custom_id: line.custom_id,
                    outcome,
                });
            }
        }
        Ok(BatchPoll::Ended(results))
    }

    // ---- Anthropic

    fn anthropic_url(&self, rest: &[&str]) -> Result<Url, ModelError> {
        let mut path = vec!["v1", "messages"];
        path.extend_from_slice(rest);
        api_url(&self.inner.config.base_url, &path).map_err(ModelError::from)
    }

    async fn poll_anthropic(&self, id: &str) -> Result<BatchPoll, ModelError> {
        let batch: AnthropicBatch = self
            .fetch_json(Method::GET, self.anthropic_url(&["batches", id])?, None)
            .await?;
        if batch.processing_status != "ended" {
            let counts = batch.request_counts.unwrap_or_default();
            let ended = counts.succeeded + counts.errored + counts.canceled + counts.expired;
            return Ok(BatchPoll::Running {
                ended: Some(ended),
                total: Some(ended + counts.processing),
            });
        }
        // The results are read from this API's own URL, never from the `results_url` the answer
        // names: the key goes only where the user sent it.
        let bytes = self
            .inner
            .fetch(
                Method::GET,
                self.anthropic_url(&["batches", id, "results"])?,
                None,
            )
            .await?;
        let mut results = Vec::new();
        for line in String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.trim().is_empty())
        {
            let line: AnthropicResultLine = serde_json::from_str(line).map_err(|error| {
                self.invalid(&format!(
                    "a result line is not Anthropic's batch format ({error})"
                ))
            })?;
            let outcome = match line.result.kind.as_str() {
                "succeeded" => match line.result.message {
                    Some(message) => self.answered(&message.to_string()),
                    None => BatchOutcome::NotRun("a success without a message".to_string()),
                },
                "errored" => {
                    let body = line.result.error.unwrap_or(Value::Null);
                    let kind = ErrorDetail::from_body(&body)
                        .and_then(|detail| detail.kind)
                        .unwrap_or_default();
                    BatchOutcome::Failed(self.rejected(anthropic_status(&kind), &body.to_string()))
                }
                other => BatchOutcome::NotRun(format!("the batch reports it `{other}`")),
            };
            results.push(BatchResult {
                custom_id: line.custom_id,
                outcome,
            });
        }
        Ok(BatchPoll::Ended(results))
    }

    // ---- Gemini

    fn gemini_url(&self, rest: &[&str]) -> Result<Url, ModelError> {
        let base = self.inner.config.base_url.trim().trim_end_matches('/');
        let versioned = ["/v1beta", "/v1", "/v1alpha"]
            .iter()
            .any(|v| base.ends_with(v));
        let mut path = Vec::new();
        if !versioned {
            path.push(crate::gemini::GEMINI_API_VERSION);
        }
        path.extend_from_slice(rest);
        api_url(base, &path).map_err(ModelError::from)
    }

    async fn poll_gemini(&self, name: &str) -> Result<BatchPoll, ModelError> {
        let parts: Vec<&str> = name.split('/').collect();
        let operation: GeminiOperation = self
            .fetch_json(Method::GET, self.gemini_url(&parts)?, None)
            .await?;
        let batch = operation
            .response
            .or(operation.metadata)
            .unwrap_or_default();
        match batch.state.as_deref().unwrap_or("") {
            "BATCH_STATE_SUCCEEDED" | "JOB_STATE_SUCCEEDED" => {}
            "BATCH_STATE_FAILED" | "JOB_STATE_FAILED" => {
                let reason = operation
                    .error
                    .map(|error| error.message)
                    .unwrap_or_else(|| "the batch failed without saying why".to_string());
                return Ok(BatchPoll::Failed(reason));
            }
            "BATCH_STATE_CANCELLED"
            | "BATCH_STATE_EXPIRED"
            | "JOB_STATE_CANCELLED"
            | "JOB_STATE_EXPIRED" => {}
            _ => {
                let stats = batch.batch_stats.unwrap_or_default();
                return Ok(BatchPoll::Running {
                    ended: stats
                        .successful_request_count
                        .zip(stats.failed_request_count)
                        .map(|(done, failed)| done + failed),
                    total: stats.request_count,
                });
            }
        }
        let responses = batch
            .output
            .and_then(|output| output.inlined_responses)
            .map(|inlined| inlined.inlined_responses)
            .unwrap_or_default();
        let mut results = Vec::new();
        for response in responses {
            let Some(key) = response.metadata.and_then(|metadata| metadata.key) else {
                continue;
            };
            let outcome = match (response.response, response.error) {
                (Some(answer), _) => self.answered(&answer.to_string()),
                (None, Some(error)) => BatchOutcome::Failed(self.reported(&ErrorDetail {
                    message: error.message,
                    code: error.code.map(Value::from),
                    ..ErrorDetail::default()
                })),
                (None, None) => BatchOutcome::NotRun("no result".to_string()),
            };
            results.push(BatchResult {
                custom_id: key,
                outcome,
            });
        }
        Ok(BatchPoll::Ended(results))
    }

    // ---- shared

    fn answered(&self, body: &str) -> BatchOutcome {
        match completion_from_whole(&*self.inner.protocol, body) {
            Ok(completion) => BatchOutcome::Answered(Box::new(completion)),
            Err(problem) => BatchOutcome::Failed(
                self.inner
                    .fault(problem)
                    .into_model_error(1, &self.inner.target),
            ),
        }
    }

    fn rejected(&self, status: u16, body: &str) -> ModelError {
        let status = reqwest::StatusCode::from_u16(status)
            .unwrap_or(reqwest::StatusCode::INTERNAL_SERVER_ERROR);
        Fault::from_status(status, body.as_bytes(), None, false, &self.inner.target)
            .into_model_error(1, &self.inner.target)
    }

    fn reported(&self, detail: &ErrorDetail) -> ModelError {
        Fault::reported(detail, &self.inner.target).into_model_error(1, &self.inner.target)
    }

    fn invalid(&self, what: &str) -> ModelError {
        Fault::invalid(what, &self.inner.target).into_model_error(1, &self.inner.target)
    }

    async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        url: Url,
        body: Value,
    ) -> Result<T, ModelError> {
        self.fetch_json(
            Method::POST,
            url,
            Some((
                Bytes::from(body.to_string()),
                "application/json".to_string(),
            )),
        )
        .await
    }

    async fn fetch_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        url: Url,
        body: Option<(Bytes, String)>,
    ) -> Result<T, ModelError> {
        let bytes = self.inner.fetch(method, url, body).await?;
        serde_json::from_slice(&bytes).map_err(|error| {
            let quoted: String = String::from_utf8_lossy(&bytes).chars().take(120).collect();
            self.invalid(&format!(
                "the answer has the wrong shape ({error}); received `{}`",
                self.inner.target.scrub(&quoted)
            ))
        })
    }
}

/// The HTTP status an Anthropic error type stands for (batch results carry the type only).
fn anthropic_status(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    }
}

// ---- Wire types of the envelopes (the answers inside are each protocol's).

#[derive(Deserialize)]
struct IdOnly {
    id: String,
}

#[derive(Deserialize)]
struct NameOnly {
    name: String,
}

#[derive(Deserialize)]
struct OpenAiBatch {
    status: String,
    #[serde(default)]
    output_file_id: Option<String>,
    #[serde(default)]
    error_file_id: Option<String>,
    #[serde(default)]
    request_counts: Option<OpenAiCounts>,
    #[serde(default)]
    errors: Option<OpenAiErrors>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct OpenAiCounts {
    #[serde(default)]
    total: u64,
    #[serde(default)]
    completed: u64,
    #[serde(default)]
    failed: u64,
}

#[derive(Deserialize)]
struct OpenAiErrors {
    #[serde(default)]
    data: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
struct OpenAiResultLine {
    custom_id: String,
    #[serde(default)]
    response: Option<OpenAiResultResponse>,
    #[serde(default)]
    error: Option<ErrorDetail>,
}

#[derive(Deserialize)]
struct OpenAiResultResponse {
    status_code: u16,
    #[serde(default)]
    body: Value,
}

#[derive(Deserialize)]
struct AnthropicBatch {
    processing_status: String,
    #[serde(default)]
    request_counts: Option<AnthropicCounts>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct AnthropicCounts {
    #[serde(default)]
    processing: u64,
    #[serde(default)]
    succeeded: u64,
    #[serde(default)]
    errored: u64,
    #[serde(default)]
    canceled: u64,
    #[serde(default)]
    expired: u64,
}

#[derive(Deserialize)]
struct AnthropicResultLine {
    custom_id: String,
    result: AnthropicResult,
}

#[derive(Deserialize)]
struct AnthropicResult {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct GeminiOperation {
    #[serde(default)]
    metadata: Option<GeminiBatch>,
    #[serde(default)]
    response: Option<GeminiBatch>,
    #[serde(default)]
    error: Option<GeminiStatus>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct GeminiBatch {
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    output: Option<GeminiOutput>,
    #[serde(default)]
    batch_stats: Option<GeminiStats>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct GeminiStats {
    #[serde(default, deserialize_with = "number_or_string")]
    request_count: Option<u64>,
    #[serde(default, deserialize_with = "number_or_string")]
    successful_request_count: Option<u64>,
    #[serde(default, deserialize_with = "number_or_string")]
    failed_request_count: Option<u64>,
}

/// Google writes 64-bit counts as strings.
fn number_or_string<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<u64>, D::Error> {
    Ok(match Option::<Value>::deserialize(deserializer)? {
        Some(Value::Number(number)) => number.as_u64(),
        Some(Value::String(text)) => text.parse().ok(),
        _ => None,
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiOutput {
    #[serde(default)]
    inlined_responses: Option<GeminiInlined>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GeminiInlined {
    #[serde(default)]
    inlined_responses: Vec<GeminiInlinedResponse>,
}

#[derive(Deserialize)]
struct GeminiInlinedResponse {
    #[serde(default)]
    response: Option<Value>,
    #[serde(default)]
    error: Option<GeminiStatus>,
    #[serde(default)]
    metadata: Option<GeminiMetadata>,
}

#[derive(Deserialize)]
struct GeminiMetadata {
    #[serde(default)]
    key: Option<String>,
}

#[derive(Deserialize)]
struct GeminiStatus {
    #[serde(default)]
    code: Option<u16>,
    #[serde(default)]
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ids_that_could_leave_the_api_are_refused() {
        assert!(valid_id("batch_abc123"));
        assert!(valid_id("msgbatch_01HkcTjaV5uDC8jWR4ZsDV8d"));
        assert!(valid_id("batches/abc-123"));
        for bad in [
            "",
            "../secrets",
            "a/../b",
            "batch?x=1",
            "a b",
            "https://evil/x",
            "a//b",
        ] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
