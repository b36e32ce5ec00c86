//! Handler tests: the whole app through `oneshot`, no socket. Shapes and answers come from a real
//! tiny local model; queueing, cancellation and failures mid-stream from a scripted model that
//! can be held at a gate.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Semaphore;
use tower::ServiceExt;
use versus_core::testing::{Gate, ScriptedModel};
use versus_core::{ChatModel, ChatRequest, ErrorKind, Message, ModelError, Usage};
use versus_engine::source::ModelFiles;
use versus_engine::tiny::{write_tiny_model, TinyArch};
use versus_engine::{LoadOptions, LocalModel};

use super::*;

const KEY: &str = "sk-serve-test-5eb1c9-SECRET";

/// A tiny random-weight Qwen2 model, loaded in-process, and the folder that holds it.
fn tiny_model() -> (tempfile::TempDir, LocalModel) {
    tiny_model_of(TinyArch::Qwen2)
}

fn tiny_model_of(arch: TinyArch) -> (tempfile::TempDir, LocalModel) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    write_tiny_model(dir.path(), arch, 0).expect("write the tiny model");
    let files = ModelFiles::Folder {
        dir: dir.path().to_path_buf(),
    };
    let model = LocalModel::load_files(&files, "tiny", &LoadOptions::default()).expect("load it");
    (dir, model)
}

fn state_with(
    models: Vec<(&str, Arc<dyn ChatModel>)>,
    queue: usize,
    key: Option<&str>,
) -> ServeState {
    let served = models
        .into_iter()
        .map(|(id, model)| ServedModel::new(id.to_string(), model, "fp_test".into(), 1, queue))
        .collect();
    ServeState::new(served, key, RequestLog::in_memory(false)).expect("distinct ids")
}

fn tiny_state() -> (tempfile::TempDir, ServeState) {
    let (dir, model) = tiny_model();
    (dir, state_with(vec![("tiny", Arc::new(model))], 16, None))
}

fn post(body: impl Into<String>) -> Request<Body> {
    Request::post("/v1/chat/completions")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.into()))
        .expect("a request")
}

fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).expect("a request")
}

fn chat_body(model: &str, extra: Value) -> String {
    let mut body = json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Why is the sky blue?"}]}
        ],
        "temperature": 0,
        "max_tokens": 12
    });
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    body.to_string()
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.expect("infallible");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("the body");
    (
        status,
        headers,
        String::from_utf8(bytes.to_vec()).expect("UTF-8"),
    )
}

async fn send_json(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let (status, _, text) = send(app, request).await;
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"));
    (status, json)
}

/// The `data:` payloads of an SSE body, checking the framing on the way.
fn sse_data(text: &str) -> Vec<String> {
    assert!(
        text.ends_with("\n\n"),
        "events end with a blank line: {text:?}"
    );
    text.trim_end_matches("\n\n")
        .split("\n\n")
        .filter(|event| !event.starts_with(':'))
        .map(|event| {
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("an event is one data line: {event:?}"))
                .to_string()
        })
        .collect()
}

#[track_caller]
fn assert_error_shape(body: &Value, kind: &str) {
    let error = body["error"]
        .as_object()
        .unwrap_or_else(|| panic!("no error object: {body}"));
    let mut keys: Vec<&str> = error.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, ["code", "message", "param", "type"], "{body}");
    assert!(
        error["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(error["type"], kind, "{body}");
}

#[tokio::test]
async fn models_and_health_have_openai_shapes() {
    let (_dir, state) = tiny_state();
    let app = app(state);
    let (status, list) = send_json(&app, get("/v1/models")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["object"], "list");
    let entry = &list["data"][0];
    assert_eq!(entry["id"], "tiny");
    assert_eq!(entry["object"], "model");
    assert!(entry["created"].is_u64());
    assert_eq!(entry["owned_by"], "versus");
    let (status, one) = send_json(&app, get("/v1/models/tiny")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&one, entry);
    let (status, missing) = send_json(&app, get("/v1/models/gpt-4o")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_error_shape(&missing, "invalid_request_error");
    assert_eq!(missing["error"]["code"], "model_not_found");
    let (status, health) = send_json(&app, get("/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health, json!({"status": "ok"}));
}

#[tokio::test]
async fn a_whole_answer_has_openai_shape_and_is_the_engines_answer() {
    let (_dir, model) = tiny_model();
    let direct = model
        .complete(
            &ChatRequest {
                messages: vec![
                    Message::system("Be brief."),
                    Message::user("Why is the sky blue?"),
                ],
                params: versus_core::GenerationParams {
                    temperature: Some(0.0),
                    max_tokens: Some(12),
                    ..Default::default()
                },
            },
            &mut |_| {},
        )
        .await
        .expect("the engine answers");
    let app = app(state_with(vec![("tiny", Arc::new(model))], 16, None));
    let (status, headers, text) = send(&app, post(chat_body("tiny", json!({"seed": 3})))).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(headers[header::CONTENT_TYPE], "application/json");
    let body: Value = serde_json::from_str(&text).expect("JSON");
    assert!(
        body["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-")),
        "{body}"
    );
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].is_u64());
    assert_eq!(body["model"], "tiny");
    assert_eq!(body["system_fingerprint"], "fp_test");
    let choices = body["choices"].as_array().expect("choices");
    assert_eq!(choices.len(), 1);
    let choice = &choices[0];
    assert_eq!(choice["index"], 0);
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], direct.text.as_str());
    assert!(choice.as_object().expect("object").contains_key("logprobs"));
    assert_eq!(choice["logprobs"], Value::Null);
    assert_eq!(choice["finish_reason"], "length");
    let usage = &body["usage"];
    let prompt = usage["prompt_tokens"].as_u64().expect("prompt tokens");
    let completion = usage["completion_tokens"]
        .as_u64()
        .expect("completion tokens");
    assert_eq!(completion, 12);
    assert_eq!(usage["total_tokens"].as_u64(), Some(prompt + completion));
    assert_eq!(Some(Usage::new(prompt, completion)), direct.usage);
}

#[tokio::test]
async fn a_stream_is_sse_with_a_role_chunk_text_a_finish_usage_and_done() {
    let (_dir, state) = tiny_state();
    let app = app(state);
    let (_, whole) = send_json(&app, post(chat_body("tiny", json!({})))).await;
    let (status, headers, text) = send(
        &app,
        post(chat_body(
            "tiny",
            json!({"stream": true, "stream_options": {"include_usage": true}}),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
    let data = sse_data(&text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("a JSON chunk"))
        .collect();
    let id = chunks[0]["id"].as_str().expect("an id");
    for chunk in &chunks {
        assert_eq!(chunk["id"], id, "one id for the whole stream");
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "tiny");
        assert!(chunk["created"].is_u64());
        assert_eq!(chunk["system_fingerprint"], "fp_test");
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    let (usage_chunk, choice_chunks) = chunks.split_last().expect("chunks");
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"], whole["usage"]);
    let (finish, text_chunks) = choice_chunks.split_last().expect("a finish chunk");
    assert_eq!(finish["choices"][0]["delta"], json!({}));
    assert_eq!(finish["choices"][0]["finish_reason"], "length");
    let mut streamed = String::new();
    for chunk in text_chunks {
        let choice = &chunk["choices"][0];
        assert_eq!(choice["index"], 0);
        assert_eq!(choice["finish_reason"], Value::Null);
        assert_eq!(choice["logprobs"], Value::Null);
        streamed.push_str(choice["delta"]["content"].as_str().expect("text"));
    }
    assert_eq!(
        streamed,
        whole["choices"][0]["message"]["content"]
            .as_str()
            .expect("text")
    );

    let (_, _, without_usage) = send(&app, post(chat_body("tiny", json!({"stream": true})))).await;
    assert!(
        !without_usage.contains("\"usage\""),
        "usage only when asked: {without_usage}"
    );
    assert!(without_usage.ends_with("data: [DONE]\n\n"));
}

#[tokio::test]
async fn bad_requests_get_openai_errors_with_their_status() {
    let (_dir, state) = tiny_state();
    let app = app(state);
    let cases: Vec<(String, StatusCode, Option<&str>)> = vec![
        (
            "{\"model\": \"tiny\",".into(),
            StatusCode::BAD_REQUEST,
            None,
        ),
        ("[1, 2]".into(), StatusCode::BAD_REQUEST, None),
        (
            json!({"model": "tiny"}).to_string(),
            StatusCode::BAD_REQUEST,
            Some("messages"),
        ),
        (
            json!({"messages": []}).to_string(),
            StatusCode::BAD_REQUEST,
            Some("model"),
        ),
        (
            json!({"model": "tiny", "messages": "hi"}).to_string(),
            StatusCode::BAD_REQUEST,
            Some("messages"),
        ),
        (
            json!({"model": "tiny", "messages": [{"role": "robot", "content": "x"}]}).to_string(),
            StatusCode::BAD_REQUEST,
            Some("messages[0].role"),
        ),
        (
            json!({"model": "tiny", "messages": []}).to_string(),
            StatusCode::BAD_REQUEST,
            Some("messages"),
        ),
        (
            chat_body("tiny", json!({"temperature": "hot"})),
            StatusCode::BAD_REQUEST,
            Some("temperature"),
        ),
        (
            chat_body("tiny", json!({"temperature": 2.5})),
            StatusCode::BAD_REQUEST,
            Some("temperature"),
        ),
        (
            chat_body("tiny", json!({"max_tokens": 0})),
            StatusCode::BAD_REQUEST,
            Some("max_tokens"),
        ),
        (
            chat_body("tiny", json!({"n": 2})),
            StatusCode::BAD_REQUEST,
            Some("n"),
        ),
        (
            chat_body("tiny", json!({"stop": [""]})),
            StatusCode::BAD_REQUEST,
            Some("stop"),
        ),
        (
            json!({"model": "tiny", "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}
            ]}]})
            .to_string(),
            StatusCode::BAD_REQUEST,
            Some("messages[0].content"),
        ),
        (
            chat_body("gpt-4o", json!({})),
            StatusCode::NOT_FOUND,
            Some("model"),
        ),
    ];
    for (body, expected, param) in cases {
        let (status, error) = send_json(&app, post(body.clone())).await;
        assert_eq!(status, expected, "{body} -> {error}");
        assert_error_shape(&error, "invalid_request_error");
        assert_eq!(error["error"]["param"].as_str(), param, "{body} -> {error}");
    }
    // n = 1 is fine, and so is a single stop string.
    let (status, _) = send_json(
        &app,
        post(chat_body("tiny", json!({"n": 1, "stop": "\n\n"}))),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, error) = send_json(&app, get("/v1/chat/completions")).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_error_shape(&error, "invalid_request_error");
    let (status, error) = send_json(&app, get("/v1/embeddings")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error["error"]["code"], "unknown_url");
}

#[tokio::test]
async fn a_key_is_required_when_set_and_never_logged() {
    let (_dir, model) = tiny_model();
    let state = state_with(vec![("tiny", Arc::new(model))], 16, Some(KEY));
    let log = Arc::clone(state.log());
    let app = app(state);
    let with_key = |key: &str| {
        Request::get("/v1/models")
            .header(header::AUTHORIZATION, format!("Bearer {key}"))
            .body(Body::empty())
            .expect("a request")
    };
    let (status, error) = send_json(&app, get("/v1/models")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_error_shape(&error, "authentication_error");
    assert_eq!(error["error"]["code"], "invalid_api_key");
    let (status, headers, _) = send(&app, post(chat_body("tiny", json!({})))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        headers.get(header::CONNECTION).map(|v| v.as_bytes()),
        Some(&b"close"[..]),
        "a refusal that leaves the body unread closes the connection"
    );
    let (status, error) = send_json(&app, with_key("sk-wrong")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(
        !error.to_string().contains("sk-wrong"),
        "the key sent is not repeated"
    );
    let (status, _) = send_json(&app, with_key(KEY)).await;
    assert_eq!(status, StatusCode::OK);
    let mut chat = post(chat_body("tiny", json!({})));
    chat.headers_mut().insert(
        header::AUTHORIZATION,
        format!("bearer {KEY}").parse().expect("a header value"),
    );
    let (status, _) = send_json(&app, chat).await;
    assert_eq!(status, StatusCode::OK, "the scheme is case-insensitive");
    let (status, _) = send_json(&app, get("/health")).await;
    assert_eq!(status, StatusCode::OK, "health needs no key");
    let lines = log.lines();
    assert_eq!(lines.len(), 6, "one line per request: {lines:#?}");
    assert!(lines
        .iter()
        .all(|line| !line.contains("SECRET") && !line.contains("sk-wrong")));
}

#[tokio::test]
async fn log_lines_have_counts_and_leave_content_out_unless_asked() {
    for log_content in [false, true] {
        let (_dir, model) = tiny_model();
        let served = vec![ServedModel::new(
            "tiny".into(),
            Arc::new(model),
            "fp".into(),
            1,
            4,
        )];
        let state =
            ServeState::new(served, None, RequestLog::in_memory(log_content)).expect("a state");
        let log = Arc::clone(state.log());
        let app = app(state);
        send_json(&app, post(chat_body("tiny", json!({})))).await;
        send(&app, post(chat_body("tiny", json!({"stream": true})))).await;
        let lines = log.lines();
        assert_eq!(lines.len(), 2, "{lines:#?}");
        for line in &lines {
            for needle in [
                "POST /v1/chat/completions",
                "status=200",
                "model=tiny",
                "prompt_tokens=",
                "completion_tokens=12",
                "finish=length",
                "latency_ms=",
            ] {
                assert!(line.contains(needle), "{needle} in {line}");
            }
            assert_eq!(line.contains("sky blue"), log_content, "{line}");
            assert_eq!(line.contains("answer="), log_content, "{line}");
        }
        assert!(
            lines[1].contains("stream=true") && lines[1].contains("ttft_ms="),
            "{}",
            lines[1]
        );
    }
}

/// A gate for [`ScriptedModel::gated`]: each request waits for a permit of `semaphore`.
fn gate_of(semaphore: &Arc<Semaphore>) -> Gate {
    let semaphore = Arc::clone(semaphore);
    Arc::new(move || {
        let semaphore = Arc::clone(&semaphore);
        Box::pin(async move {
            let _pass = semaphore.acquire().await.expect("the gate stays open");
        })
    })
}

async fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after_and_drains_in_order() {
    let gate = Arc::new(Semaphore::new(0));
    let model = Arc::new(ScriptedModel::answering("ok").gated(gate_of(&gate)));
    let app = app(state_with(
        vec![("gated", Arc::clone(&model) as Arc<dyn ChatModel>)],
        1,
        None,
    ));
    let running = tokio::spawn({
        let app = app.clone();
        async move { send_json(&app, post(chat_body("gated", json!({})))).await }
    });
    wait_until("the first request runs", || model.started() == 1).await;
    let waiting = tokio::spawn({
        let app = app.clone();
        async move { send_json(&app, post(chat_body("gated", json!({})))).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(model.started(), 1, "the second waits its turn");
    let (status, headers, text) = send(&app, post(chat_body("gated", json!({})))).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{text}");
    assert_eq!(headers[header::RETRY_AFTER], "1");
    let error: Value = serde_json::from_str(&text).expect("JSON");
    assert_error_shape(&error, "rate_limit_error");
    gate.add_permits(2);
    for task in [running, waiting] {
        let (status, body) = task.await.expect("the request task");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["choices"][0]["message"]["content"], "ok");
    }
}

#[tokio::test]
async fn a_dropped_request_cancels_its_generation_and_frees_the_model() {
    let gate = Arc::new(Semaphore::new(0));
    let model = Arc::new(ScriptedModel::answering("ok").gated(gate_of(&gate)));
    let state = state_with(
        vec![("gated", Arc::clone(&model) as Arc<dyn ChatModel>)],
        0,
        None,
    );
    let log = Arc::clone(state.log());
    let app = app(state);
    // What hyper does when the client goes away: drops the request's future.
    let abandoned = tokio::spawn({
        let app = app.clone();
        async move { send(&app, post(chat_body("gated", json!({})))).await }
    });
    wait_until("the request runs", || model.started() == 1).await;
    abandoned.abort();
    wait_until("the generation is dropped", || {
        model.cancelled().load(Ordering::SeqCst)
    })
    .await;
    gate.add_permits(1);
    let (status, _) = send_json(&app, post(chat_body("gated", json!({})))).await;
    assert_eq!(status, StatusCode::OK, "the queue place was given back");
    let lines = log.lines();
    assert!(
        lines[0].contains("status=499") && lines[0].contains("cancelled=\"client disconnected\""),
        "{lines:#?}"
    );
    assert!(lines[1].contains("status=200"), "{lines:#?}");
}

#[tokio::test]
async fn a_dropped_stream_stops_a_real_generation() {
    // Greedy, this model answers "Hello" with thousands of tokens (seconds, in a debug build)
    // without an end-of-turn token: only cancellation lets the next request in soon.
    let (_dir, model) = tiny_model_of(TinyArch::Phi3);
    let state = state_with(vec![("tiny", Arc::new(model))], 4, None);
    let log = Arc::clone(state.log());
    let app = app(state);
    let long = chat_body(
        "tiny",
        json!({"stream": true, "max_tokens": 16000, "messages": [{"role": "user", "content": "Hello"}]}),
    );
    let response = app.clone().oneshot(post(long)).await.expect("infallible");
    assert_eq!(response.status(), StatusCode::OK);
    let mut body = response.into_body().into_data_stream();
    let first = body.next().await.expect("a first event").expect("bytes");
    assert!(first.starts_with(b"data: "));
    drop(body);
    let began = Instant::now();
    let (status, _) = send_json(&app, post(chat_body("tiny", json!({"max_tokens": 4})))).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "the next request waited {:?}",
        began.elapsed()
    );
    let lines = log.lines();
    assert!(
        lines[0].contains("stream=true") && lines[0].contains("cancelled=\"client disconnected\""),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn a_failure_before_text_keeps_its_status_and_one_after_is_an_error_event() {
    let rejected = Arc::new(ScriptedModel::failing(ModelError::new(
        ErrorKind::BadRequest,
        "the prompt is 9000 tokens, and tiny takes at most 8192",
    )));
    let broken = Arc::new(ScriptedModel::failing_after(
        ["par", "tial"],
        ModelError::new(ErrorKind::Server, "engine detail: out of memory"),
    ));
    let state = state_with(
        vec![
            ("rejects", rejected as Arc<dyn ChatModel>),
            ("breaks", broken as Arc<dyn ChatModel>),
        ],
        4,
        None,
    );
    let log = Arc::clone(state.log());
    let app = app(state);
    let (status, error) =
        send_json(&app, post(chat_body("rejects", json!({"stream": true})))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("9000 tokens")),
        "{error}"
    );

    let (status, _, text) = send(&app, post(chat_body("breaks", json!({"stream": true})))).await;
    assert_eq!(status, StatusCode::OK);
    let data = sse_data(&text);
    assert!(
        !data.contains(&"[DONE]".to_string()),
        "no [DONE] after an error: {text}"
    );
    let last: Value = serde_json::from_str(data.last().expect("events")).expect("JSON");
    assert_error_shape(&last, "server_error");
    assert!(
        !text.contains("engine detail"),
        "the detail stays in the log"
    );

    let (status, error) = send_json(&app, post(chat_body("breaks", json!({})))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_error_shape(&error, "server_error");
    let lines = log.lines();
    assert!(
        lines[2].contains("engine detail: out of memory") && lines[2].contains("status=500"),
        "{lines:#?}"
    );
}

#[tokio::test]
async fn listening_beyond_loopback_needs_a_key() {
    assert!(listen_address("127.0.0.1", 0, false).await.is_ok());
    assert!(listen_address("::1", 0, false).await.is_ok());
    assert!(listen_address("localhost", 0, false).await.is_ok());
    let error = listen_address("0.0.0.0", 8080, false)
        .await
        .expect_err("refused");
    assert!(error.to_string().contains("--api-key-env"), "{error}");
    assert!(listen_address("0.0.0.0", 8080, true).await.is_ok());
}

#[test]
fn keys_come_from_the_environment_and_only_local_models_are_served() {
    let error = read_key("VERSUS_SERVE_TEST_SURELY_UNSET").expect_err("unset");
    assert!(
        error
            .to_string()
            .contains("VERSUS_SERVE_TEST_SURELY_UNSET is not set"),
        "{error}"
    );
    let args = |models: &[&str]| crate::cli::ServeArgs {
        models: models.iter().map(|m| m.to_string()).collect(),
        host: "127.0.0.1".into(),
        port: 0,
        api_key_env: None,
        queue: 16,
        log_content: false,
        shutdown_timeout: 1.0,
        template_vars: vec!["date_string=26 Jul 2024".into()],
        cors_origins: Vec::new(),
        local: Default::default(),
        connections: crate::cli::ConnectionArgs {
            header_timeout: 10.0,
            idle_timeout: 300.0,
            max_connections: 512,
        },
    };
    let hosted = model_configs(&args(&["openai:gpt-4o-mini"])).expect_err("hosted");
    assert!(
        hosted.to_string().contains("serves local models"),
        "{hosted}"
    );
    let twice = model_configs(&args(&["local:./a/m", "local:./b/m"])).expect_err("same id");
    assert!(twice.to_string().contains("ID=SPEC"), "{twice}");
    let configs = model_configs(&args(&["one=local:./a/m", "local:./b/m"])).expect("two models");
    assert_eq!(configs[0].id, "one");
    assert_eq!(configs[1].id, "m");
    assert_eq!(
        configs[1].local.chat_template_kwargs["date_string"],
        "26 Jul 2024"
    );
}

#[tokio::test]
async fn foreign_hosts_cross_site_origins_and_non_json_bodies_are_refused() {
    // On loopback, a forged `Host: evil.example` with `Origin: http://evil.example` and
    // `Content-Type: text/plain` got a completion: any page could use the local model.
    let bound: std::net::SocketAddr = "127.0.0.1:8080".parse().expect("an address");
    let state = state_with(
        vec![(
            "m",
            Arc::new(ScriptedModel::answering("ok")) as Arc<dyn ChatModel>,
        )],
        16,
        None,
    )
    .guarded(bound, &["http://localhost:3000".to_string()]);
    let app = app(state);
    let chat = |host: &str, origin: Option<&str>, content_type: &str| {
        let mut request = Request::post("/v1/chat/completions")
            .header(header::HOST, host)
            .header(header::CONTENT_TYPE, content_type);
        if let Some(origin) = origin {
            request = request.header(header::ORIGIN, origin);
        }
        request
            .body(Body::from(chat_body("m", json!({}))))
            .expect("a request")
    };
    let (status, body) = send_json(
        &app,
        chat("evil.example", Some("http://evil.example"), "text/plain"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = send_json(
        &app,
        chat(
            "127.0.0.1:8080",
            Some("http://evil.example"),
            "application/json",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body.to_string().contains("--cors-origin"), "{body}");
    let (status, body) = send_json(&app, chat("127.0.0.1:8080", None, "text/plain")).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body}");
    // What a local client sends works, and so does an allowed origin, with CORS headers.
    let (status, body) = send_json(
        &app,
        chat("localhost:8080", None, "application/json; charset=utf-8"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, headers, body) = send(
        &app,
        chat(
            "127.0.0.1:8080",
            Some("http://localhost:3000"),
            "application/json",
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
        "http://localhost:3000"
    );
    let preflight = Request::options("/v1/chat/completions")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, "http://localhost:3000")
        .body(Body::empty())
        .expect("a request");
    let (status, headers, _) = send(&app, preflight).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
        .to_str()
        .unwrap_or("")
        .contains("content-type"));
    // A cross-site GET without Origin is recognised by Sec-Fetch-Site.
    let models = Request::get("/v1/models")
        .header(header::HOST, "127.0.0.1:8080")
        .header("sec-fetch-site", "cross-site")
        .body(Body::empty())
        .expect("a request");
    assert_eq!(send(&app, models).await.0, StatusCode::FORBIDDEN);
}
