//! The providers' batch APIs as the fake serves them: OpenAI's files and `/v1/batches`,
//! Anthropic's `/v1/messages/batches`, Gemini's `models/{model}:batchGenerateContent` and
//! `batches/{id}`. Each request of a batch is answered as a live call would be (the script's
//! rules and faults apply, and it is logged with its batch's id) when the batch is created; the
//! batch then says "in progress" for `Script::batch_polls` status requests before it has ended
//! and its results can be read.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::formats::Format;
use crate::server::{incoming, json_response, unix_seconds, Incoming, Reply, RequestParts, Shared};

/// Files and batch jobs.
#[derive(Default)]
pub(crate) struct BatchStore {
    files: HashMap<String, Vec<u8>>,
    jobs: HashMap<String, Job>,
    next_number: u64,
}

struct Job {
    model: String,
    /// Status requests still to answer "in progress".
    polls_left: u32,
    /// Each request's custom id, status and whole body.
    results: Vec<(String, u16, Value)>,
    /// OpenAI: the input file's id.
    input_file: Option<String>,
}

impl BatchStore {
    /// Ends every batch at its next status request.
    pub(crate) fn end_all(&mut self) {
        for job in self.jobs.values_mut() {
            job.polls_left = 0;
        }
    }

    /// How many batch jobs were created.
    pub(crate) fn count(&self) -> usize {
        self.jobs.len()
    }

    fn next(&mut self, prefix: &str) -> String {
        self.next_number += 1;
        format!("{prefix}{}", self.next_number)
    }
}

/// Checks the key of a batch request the format's way; the error response when it fails.
fn check_key(
    shared: &Shared,
    format: Format,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<RequestParts, Box<Response>> {
    let request = RequestParts::new(uri, headers, Instant::now());
    let state = shared.lock();
    let authorized = state
        .script
        .required_api_key()
        .is_none_or(|key| incoming(format).authorized(&request, key));
    if authorized {
        Ok(request)
    } else {
        let (status, body) = format.unauthorized();
        Err(Box::new(json_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::UNAUTHORIZED),
            body,
        )))
    }
}

fn bad_request(format: Format, message: &str) -> Response {
    json_response(StatusCode::BAD_REQUEST, format.error_body(400, message, ""))
}

fn not_found(format: Format, what: &str) -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        format.error_body(404, &format!("no such {what} (versus-testkit)"), ""),
    )
}

/// Answers each request of a new batch as a live call would be answered, logged with the
/// batch's id, and stores the job.
fn create_job(
    shared: &Shared,
    format: Format,
    model: &str,
    request: &RequestParts,
    items: Vec<(String, Value)>,
    input_file: Option<String>,
    prefix: &str,
) -> String {
    let id = shared.lock().batches.next(prefix);
    let mut results = Vec::with_capacity(items.len());
    for (custom_id, body) in items {
        let item = Incoming {
            model: (format == Format::Gemini).then(|| model.to_string()),
            stream: Some(false),
            batch: Some(id.clone()),
            ..incoming(format)
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let (raw, call) = item.parse(&bytes);
        let (reply, _) = shared.plan(&item, request.clone(), raw, call);
        let (status, body) = match reply {
            Reply::Error { status, body, .. } => {
                (status, serde_json::from_str(&body).unwrap_or(Value::Null))
            }
            Reply::Answer(plan) => plan.batch_result(),
        };
        results.push((custom_id, status, body));
    }
    let mut state = shared.lock();
    let polls = state.script.batch_polls_setting();
    state.batches.jobs.insert(
        id.clone(),
        Job {
            model: model.to_string(),
            polls_left: polls,
            results,
            input_file,
        },
    );
    id
}

/// Counts a status request against a job; whether it has ended.
fn poll(shared: &Shared, id: &str) -> Option<(bool, usize, usize)> {
    let mut state = shared.lock();
    let job = state.batches.jobs.get_mut(id)?;
    let ended = job.polls_left == 0;
    job.polls_left = job.polls_left.saturating_sub(1);
    let failed = job
        .results
        .iter()
        .filter(|(_, status, _)| *status != 200)
        .count();
    Some((ended, job.results.len(), failed))
}

// ---- OpenAI

/// The `file` part of a multipart upload.
fn multipart_file(content_type: &str, body: &[u8]) -> Option<Vec<u8>> {
    let boundary = content_type.split("boundary=").nth(1)?.trim_matches('"');
    let text = String::from_utf8_lossy(body);
    text.split(&format!("--{boundary}"))
        .filter_map(|part| part.split_once("\r\n\r\n"))
        .find(|(head, _)| head.contains("name=\"file\""))
        .map(|(_, content)| {
            content
                .strip_suffix("\r\n")
                .unwrap_or(content)
                .as_bytes()
                .to_vec()
        })
}

pub(crate) async fn openai_upload(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let format = Format::ChatCompletions;
    if let Err(refused) = check_key(&shared, format, &uri, &headers) {
        return *refused;
    }
    let content_type = headers
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let Some(file) = multipart_file(content_type, &body) else {
        return bad_request(format, "expected a multipart upload with a `file` part");
    };
    let size = file.len();
    let mut state = shared.lock();
    let id = state.batches.next("file-");
    state.batches.files.insert(id.clone(), file);
    json_response(
        StatusCode::OK,
        json!({"id": id, "object": "file", "bytes": size, "created_at": unix_seconds(),
               "filename": "batch.jsonl", "purpose": "batch", "status": "processed"})
        .to_string(),
    )
}

pub(crate) async fn openai_file_content(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let format = Format::ChatCompletions;
    if let Err(refused) = check_key(&shared, format, &uri, &headers) {
        return *refused;
    }
    match shared.lock().batches.files.get(&id) {
        Some(file) => crate::server::json_response(StatusCode::OK, file.clone()),
        None => not_found(format, "file"),
    }
}

fn openai_batch_object(id: &str, job: &Job, status: &str, ended: bool) -> Value {
    let failed = job
        .results
        .iter()
        .filter(|(_, code, _)| *code != 200)
        .count();
    json!({
        "id": id,
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "errors": null,
        "input_file_id": job.input_file,
        "completion_window": "24h",
        "status": status,
        "output_file_id": if ended { Some(format!("{id}-output")) } else { None },
        "error_file_id": if ended && failed > 0 { Some(format!("{id}-errors")) } else { None },
        "created_at": unix_seconds(),
        "request_counts": {
            "total": job.results.len(),
            "completed": if ended { job.results.len() - failed } else { 0 },
            "failed": if ended { failed } else { 0 },
        },
        "metadata": {"created_by": "versus"},
    })
}

pub(crate) async fn openai_create(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let format = Format::ChatCompletions;
    let request = match check_key(&shared, format, &uri, &headers) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let Ok(create) = serde_json::from_slice::<Value>(&body) else {
        return bad_request(format, "the body is not JSON");
    };
    if create["endpoint"] != "/v1/chat/completions" || create["completion_window"] != "24h" {
        return bad_request(
            format,
            "endpoint must be /v1/chat/completions and completion_window 24h",
        );
    }
    let Some(file_id) = create["input_file_id"].as_str() else {
        return bad_request(format, "input_file_id is required");
    };
    let Some(file) = shared.lock().batches.files.get(file_id).cloned() else {
        return not_found(format, "file");
    };
    let mut items = Vec::new();
    for line in String::from_utf8_lossy(&file)
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let Ok(line) = serde_json::from_str::<Value>(line) else {
            return bad_request(format, "a line of the input file is not JSON");
        };
        if line["method"] != "POST" || line["url"] != "/v1/chat/completions" {
            return bad_request(format, "each line must POST to /v1/chat/completions");
        }
        let Some(custom_id) = line["custom_id"].as_str() else {
            return bad_request(format, "each line needs a custom_id");
        };
        items.push((custom_id.to_string(), line["body"].clone()));
    }
    let id = create_job(
        &shared,
        format,
        "",
        &request,
        items,
        Some(file_id.to_string()),
        "batch_",
    );
    let state = shared.lock();
    let job = &state.batches.jobs[&id];
    json_response(
        StatusCode::OK,
        openai_batch_object(&id, job, "in_progress", false).to_string(),
    )
}

/// `GET /v1/batches/{id}`: OpenAI's batches and Gemini's (the `v1` API) share the path; a
/// Gemini key header tells them apart.
pub(crate) async fn v1_batch_get(
    state: State<Arc<Shared>>,
    id: Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let gemini = headers.contains_key("x-goog-api-key")
        || uri.query().is_some_and(|query| query.contains("key="));
    if gemini {
        gemini_get(state, id, uri, headers).await
    } else {
        openai_get(state, id, uri, headers).await
    }
}

pub(crate) async fn openai_get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let format = Format::ChatCompletions;
    if let Err(refused) = check_key(&shared, format, &uri, &headers) {
        return *refused;
    }
    let Some((ended, _, _)) = poll(&shared, &id) else {
        return not_found(format, "batch");
    };
    let mut state = shared.lock();
    let object = {
        let job = &state.batches.jobs[&id];
        openai_batch_object(
            &id,
            job,
            if ended { "completed" } else { "in_progress" },
            ended,
        )
    };
    if ended {
        let job = &state.batches.jobs[&id];
        let (mut output, mut errors) = (String::new(), String::new());
        for (n, (custom_id, status, body)) in job.results.iter().enumerate() {
            let line = json!({
                "id": format!("batch_req_{n}"),
                "custom_id": custom_id,
                "response": {"status_code": status, "request_id": format!("req_{n}"), "body": body},
                "error": null,
            });
            let target = if *status == 200 {
                &mut output
            } else {
                &mut errors
            };
            target.push_str(&line.to_string());
            target.push('\n');
        }
        state
            .batches
            .files
            .insert(format!("{id}-output"), output.into_bytes());
        state
            .batches
            .files
            .insert(format!("{id}-errors"), errors.into_bytes());
    }
    json_response(StatusCode::OK, object.to_string())
}

// ---- Anthropic

fn anthropic_batch_object(root: &str, id: &str, job: &Job, ended: bool) -> Value {
    let errored = job
        .results
        .iter()
        .filter(|(_, status, _)| *status != 200)
        .count();
    let total = job.results.len();
    json!({
        "id": id,
        "type": "message_batch",
        "processing_status": if ended { "ended" } else { "in_progress" },
        "request_counts": {
            "processing": if ended { 0 } else { total },
            "succeeded": if ended { total - errored } else { 0 },
            "errored": if ended { errored } else { 0 },
            "canceled": 0,
            "expired": 0,
        },
        "ended_at": if ended { Some("2026-01-01T00:00:00Z") } else { None },
        "created_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-02T00:00:00Z",
        "archived_at": null,
        "cancel_initiated_at": null,
        "results_url": if ended { Some(format!("{root}/v1/messages/batches/{id}/results")) } else { None },
    })
}

fn root_of(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

pub(crate) async fn anthropic_create(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let format = Format::Anthropic;
    let request = match check_key(&shared, format, &uri, &headers) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let Ok(create) = serde_json::from_slice::<Value>(&body) else {
        return bad_request(format, "the body is not JSON");
    };
    let Some(requests) = create["requests"].as_array() else {
        return bad_request(format, "requests: field required");
    };
    let mut items = Vec::new();
    for item in requests {
        let Some(custom_id) = item["custom_id"].as_str() else {
            return bad_request(format, "requests: custom_id is required");
        };
        if custom_id.is_empty()
            || custom_id.len() > 64
            || !custom_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return bad_request(format, "custom_id: must match ^[a-zA-Z0-9_-]{1,64}$");
        }
        if item["params"].get("stream").is_some() {
            return bad_request(format, "params: streaming is not supported in batches");
        }
        items.push((custom_id.to_string(), item["params"].clone()));
    }
    let id = create_job(&shared, format, "", &request, items, None, "msgbatch_");
    let state = shared.lock();
    let object = anthropic_batch_object(&root_of(&headers), &id, &state.batches.jobs[&id], false);
    json_response(StatusCode::OK, object.to_string())
}

pub(crate) async fn anthropic_get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let format = Format::Anthropic;
    if let Err(refused) = check_key(&shared, format, &uri, &headers) {
        return *refused;
    }
    let Some((ended, _, _)) = poll(&shared, &id) else {
        return not_found(format, "batch");
    };
    let state = shared.lock();
    let object = anthropic_batch_object(&root_of(&headers), &id, &state.batches.jobs[&id], ended);
    json_response(StatusCode::OK, object.to_string())
}

pub(crate) async fn anthropic_results(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let format = Format::Anthropic;
    if let Err(refused) = check_key(&shared, format, &uri, &headers) {
        return *refused;
    }
    let state = shared.lock();
    let Some(job) = state.batches.jobs.get(&id) else {
        return not_found(format, "batch");
    };
    if job.polls_left > 0 {
        return bad_request(format, "the batch has not ended yet");
    }
    let mut lines = String::new();
    for (custom_id, status, body) in &job.results {
        let result = if *status == 200 {
            json!({"type": "succeeded", "message": body})
        } else {
            json!({"type": "errored", "error": body})
        };
        lines.push_str(&json!({"custom_id": custom_id, "result": result}).to_string());
        lines.push('\n');
    }
    let mut response = json_response(StatusCode::OK, lines);
    response.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("application/binary"),
    );
    response
}

// ---- Gemini

fn gemini_batch(name: &str, job: &Job, ended: bool) -> Value {
    let failed = job
        .results
        .iter()
        .filter(|(_, status, _)| *status != 200)
        .count();
    let mut batch = json!({
        "@type": "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch",
        "model": format!("models/{}", job.model),
        "displayName": "versus",
        "state": if ended { "BATCH_STATE_SUCCEEDED" } else { "BATCH_STATE_RUNNING" },
        "createTime": "2026-01-01T00:00:00Z",
        "name": name,
        "batchStats": {
            "requestCount": job.results.len().to_string(),
            "successfulRequestCount": if ended { job.results.len() - failed } else { 0 }.to_string(),
            "failedRequestCount": if ended { failed } else { 0 }.to_string(),
        },
    });
    if ended {
        let responses: Vec<Value> = job
            .results
            .iter()
            .map(|(key, status, body)| {
                if *status == 200 {
                    json!({"response": body, "metadata": {"key": key}})
                } else {
                    let error = &body["error"];
                    json!({"error": {"code": error["code"], "message": error["message"]},
                           "metadata": {"key": key}})
                }
            })
            .collect();
        batch["output"] = json!({"inlinedResponses": {"inlinedResponses": responses}});
    }
    batch
}

/// `POST models/{model}:batchGenerateContent`, routed here by the Gemini handler.
pub(crate) fn gemini_create(
    shared: Arc<Shared>,
    model: &str,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let format = Format::Gemini;
    let request = match check_key(&shared, format, &uri, &headers) {
        Ok(request) => request,
        Err(refused) => return *refused,
    };
    let Ok(create) = serde_json::from_slice::<Value>(&body) else {
        return bad_request(format, "Invalid JSON payload received.");
    };
    let Some(requests) = create["batch"]["inputConfig"]["requests"]["requests"].as_array() else {
        return bad_request(format, "batch.input_config.requests is required");
    };
    let mut items = Vec::new();
    for item in requests {
        let Some(key) = item["metadata"]["key"].as_str() else {
            return bad_request(format, "each request needs metadata.key (versus-testkit)");
        };
        items.push((key.to_string(), item["request"].clone()));
    }
    let number = create_job(&shared, format, model, &request, items, None, "");
    let name = format!("batches/{number}");
    let mut state = shared.lock();
    if let Some(job) = state.batches.jobs.remove(&number) {
        let batch = gemini_batch(&name, &job, false);
        state.batches.jobs.insert(name.clone(), job);
        return json_response(
            StatusCode::OK,
            json!({"name": name, "metadata": batch}).to_string(),
        );
    }
    not_found(format, "batch")
}

pub(crate) async fn gemini_get(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let format = Format::Gemini;
    if let Err(refused) = check_key(&shared, format, &uri, &headers) {
        return *refused;
    }
    let name = format!("batches/{id}");
    let Some((ended, _, _)) = poll(&shared, &name) else {
        return not_found(format, "batch");
    };
    let state = shared.lock();
    let batch = gemini_batch(&name, &state.batches.jobs[&name], ended);
    let mut operation = json!({"name": name, "metadata": batch});
    if ended {
        operation["done"] = json!(true);
        operation["response"] = batch;
    }
    json_response(StatusCode::OK, operation.to_string())
}
