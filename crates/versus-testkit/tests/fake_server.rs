//! The fake server seen from a plain HTTP client: wire format, every fault, rules and the log.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use versus_testkit::{answer_deltas, default_answer, FakeServer, Fault, Rule, Script};

// ---- helpers: one per feature, so a new case is one line ----

/// The minimal body versus sends for one prompt.
fn chat_body(model: &str, prompt: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": prompt}]})
}

fn streamed_body(model: &str, prompt: &str, include_usage: bool) -> Value {
    let mut body = chat_body(model, prompt);
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": include_usage});
    body
}

async fn post(server: &FakeServer, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", server.base_url()))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the fake server answers")
}

/// Status, headers and JSON body of a non-streamed request.
async fn ask(server: &FakeServer, body: &Value) -> (u16, reqwest::header::HeaderMap, Value) {
    let response = post(server, body).await;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a whole body");
    let json = serde_json::from_str(&text).unwrap_or_else(|_| json!({"unparsed": text}));
    (status, headers, json)
}

/// What a streamed request delivered: the `data:` payloads in order, and whether the connection
/// broke before the end.
#[derive(Debug)]
struct Transcript {
    content_type: String,
    data: Vec<String>,
    cut: bool,
}

impl Transcript {
    fn chunks(&self) -> Vec<Value> {
        self.data
            .iter()
            .filter(|data| *data != "[DONE]")
            .map(|data| serde_json::from_str(data).expect("chunks are JSON"))
            .collect()
    }

    fn text(&self) -> String {
        self.chunks()
            .iter()
            .filter_map(|chunk| {
                chunk["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }
}

async fn ask_streamed(server: &FakeServer, body: &Value) -> Transcript {
    let mut response = post(server, body).await;
    let content_type = response.headers()[reqwest::header::CONTENT_TYPE]
        .to_str()
        .expect("ASCII content type")
        .to_owned();
    let mut bytes = Vec::new();
    let cut = loop {
        match response.chunk().await {
            Ok(Some(piece)) => bytes.extend_from_slice(&piece),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    let text = String::from_utf8(bytes).expect("UTF-8 stream");
    let mut events: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(events.pop(), Some(""), "every event ends with a blank line");
    let data = events
        .iter()
        .map(|event| {
            event
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("not an SSE data line: {event:?}"))
                .to_owned()
        })
        .collect();
    Transcript {
        content_type,
        data,
        cut,
    }
}

/// Starts a server with one rule for model `m1`.
async fn server_with(rule: Rule) -> FakeServer {
    FakeServer::start(Script::new().rule(rule))
        .await
        .expect("start the fake server")
}

async fn assert_status_fault(fault: Fault, status: u16, retry_after: Option<&str>, code: Value) {
    let server = server_with(Rule::model("m1").fault(fault.clone())).await;
    let (got_status, headers, body) = ask(&server, &chat_body("m1", "hi")).await;
    assert_eq!(got_status, status, "{fault:?}");
    let got_retry_after = headers
        .get(reqwest::header::RETRY_AFTER)
        .map(|value| value.to_str().expect("ASCII"));
    assert_eq!(got_retry_after, retry_after, "{fault:?}");
    assert_eq!(body["error"]["code"], code, "{fault:?}: {body}");
    assert!(body["error"]["message"].is_string(), "{fault:?}: {body}");
    assert!(body["error"]["type"].is_string(), "{fault:?}: {body}");
    // The queue is used up: the retry succeeds.
    assert_eq!(ask(&server, &chat_body("m1", "hi")).await.0, 200);
    assert_eq!(server.requests()[0].status, status);
    assert_eq!(server.requests()[0].fault, Some(fault));
}

/// The answer text of a request, non-streamed; panics on anything but a 200.
async fn answer_to(server: &FakeServer, model: &str, prompt: &str) -> String {
    let (status, _, body) = ask(server, &chat_body(model, prompt)).await;
    assert_eq!(status, 200, "{body}");
    body["choices"][0]["message"]["content"]
        .as_str()
        .expect("an answer")
        .to_owned()
}

// ---- the normal answer ----

#[tokio::test]
async fn non_streamed_answer_has_the_openai_shape() {
    let server = FakeServer::start(Script::new()).await.expect("start");
    let body = json!({"model": "m1", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "name a colour"},
    ]});
    let (status, headers, completion) = ask(&server, &body).await;
    assert_eq!(status, 200);
    assert_eq!(headers[reqwest::header::CONTENT_TYPE], "application/json");
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], "m1");
    assert!(completion["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert!(completion["created"].as_u64().is_some());
    let choice = &completion["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        default_answer("m1", "name a colour")
    );
    assert_eq!(choice["finish_reason"], "stop");
    // "be brief name a colour" / "Answer from m1: name a colour"
    assert_eq!(
        completion["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11})
    );
}

#[tokio::test]
async fn streamed_deltas_rebuild_the_default_answer() {
    let server = FakeServer::start(Script::new()).await.expect("start");
    let transcript = ask_streamed(&server, &streamed_body("m1", "a sunrise über 🌅", false)).await;
    assert_eq!(transcript.content_type, "text/event-stream");
    assert!(!transcript.cut);
    assert_eq!(transcript.data.last().map(String::as_str), Some("[DONE]"));
    let chunks = transcript.chunks();
    assert!(chunks
        .iter()
        .all(|chunk| chunk["object"] == "chat.completion.chunk" && chunk.get("usage").is_none()));
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let answer = default_answer("m1", "a sunrise über 🌅");
    assert_eq!(transcript.text(), answer);
    // Role chunk, one chunk per delta, finish chunk.
    assert_eq!(chunks.len(), answer_deltas(&answer).len() + 2);
    assert!(answer_deltas(&answer).len() > 3);
    let last = &chunks[chunks.len() - 1]["choices"][0];
    assert_eq!(last["finish_reason"], "stop");
    assert_eq!(last["delta"], json!({}));
    assert!(chunks[..chunks.len() - 1]
        .iter()
        .all(|chunk| chunk["choices"][0]["finish_reason"].is_null()));
}

#[tokio::test]
async fn usage_chunk_comes_last_only_when_asked_for() {
    let server = FakeServer::start(Script::new()).await.expect("start");
    let transcript = ask_streamed(&server, &streamed_body("m1", "two words", true)).await;
    let chunks = transcript.chunks();
    let usage_chunk = chunks.last().expect("chunks");
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(
        usage_chunk["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 5, "total_tokens": 7})
    );
    // Like OpenAI, the other chunks say `"usage": null`.
    assert!(chunks[..chunks.len() - 1]
        .iter()
        .all(|chunk| chunk["usage"].is_null() && chunk.get("usage").is_some()));
    assert_eq!(transcript.data.last().map(String::as_str), Some("[DONE]"));
}

#[tokio::test]
async fn models_lists_the_models_of_the_rules() {
    let server = FakeServer::start(
        Script::new()
            .rule(Rule::model("m1"))
            .rule(Rule::model("m2")),
    )
    .await
    .expect("start");
    let models = reqwest::get(format!("{}/models", server.base_url()))
        .await
        .expect("answer")
        .text()
        .await
        .expect("a body");
    let models: Value = serde_json::from_str(&models).expect("JSON");
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "m1");
    assert_eq!(models["data"][1]["id"], "m2");
}

#[tokio::test]
async fn a_body_that_is_not_a_chat_request_gets_400() {
    let server = FakeServer::start(Script::new()).await.expect("start");
    let (status, _, body) = ask(&server, &json!({"model": "m1"})).await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(server.requests()[0].status, 400);
}

// ---- faults ----

#[tokio::test]
async fn status_faults_send_openai_errors_once() {
    assert_status_fault(
        Fault::status(429).retry_after("1"),
        429,
        Some("1"),
        json!("rate_limit_exceeded"),
    )
    .await;
    assert_status_fault(Fault::status(500), 500, None, Value::Null).await;
    assert_status_fault(Fault::status(401), 401, None, json!("invalid_api_key")).await;
    assert_status_fault(Fault::status(404), 404, None, json!("model_not_found")).await;
    assert_status_fault(
        Fault::status(503)
            .body(r#"{"error":{"message":"overloaded","type":"server_error","code":"busy"}}"#),
        503,
        None,
        json!("busy"),
    )
    .await;
}

#[tokio::test]
async fn cut_stream_stops_after_the_scripted_chunks() {
    let server = server_with(Rule::model("m1").fault(Fault::cut_stream(2))).await;
    let transcript = ask_streamed(&server, &streamed_body("m1", "sunrise", true)).await;
    assert!(transcript.cut);
    let answer = default_answer("m1", "sunrise");
    assert_eq!(transcript.text(), answer_deltas(&answer)[..2].concat());
    assert!(!transcript.data.iter().any(|data| data == "[DONE]"));
    assert!(transcript
        .chunks()
        .iter()
        .all(|chunk| chunk["choices"][0]["finish_reason"].is_null()));
    assert_eq!(server.requests()[0].status, 200);
}

#[tokio::test]
async fn cut_non_streamed_answer_breaks_the_body() {
    let server = server_with(Rule::model("m1").fault(Fault::cut_stream(0))).await;
    let response = post(&server, &chat_body("m1", "hi")).await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.text().await.is_err());
}

#[tokio::test]
async fn delay_outlasts_a_client_timeout_then_answers() {
    let delay = Duration::from_millis(300);
    let server =
        server_with(Rule::model("m1").faults([Fault::delay(delay), Fault::delay(delay)])).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(50))
        .build()
        .expect("client");
    let timed_out = impatient
        .post(format!("{}/chat/completions", server.base_url()))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(chat_body("m1", "hi").to_string())
        .send()
        .await;
    assert!(timed_out.is_err_and(|error| error.is_timeout()));
    let started = Instant::now();
    assert_eq!(
        answer_to(&server, "m1", "hi").await,
        default_answer("m1", "hi")
    );
    assert!(started.elapsed() >= delay);
}

#[tokio::test]
async fn malformed_json_in_both_modes() {
    let server =
        server_with(Rule::model("m1").faults([Fault::MalformedJson, Fault::MalformedJson])).await;
    let (status, headers, body) = ask(&server, &chat_body("m1", "hi")).await;
    assert_eq!(status, 200);
    assert_eq!(headers[reqwest::header::CONTENT_TYPE], "application/json");
    assert!(body.get("unparsed").is_some(), "{body}");
    let transcript = ask_streamed(&server, &streamed_body("m1", "hi", false)).await;
    assert!(transcript
        .data
        .iter()
        .any(|data| data != "[DONE]" && serde_json::from_str::<Value>(data).is_err()));
}

#[tokio::test]
async fn no_usage_leaves_usage_out_in_both_modes() {
    let server = server_with(Rule::model("m1").faults([Fault::NoUsage, Fault::NoUsage])).await;
    let (_, _, body) = ask(&server, &chat_body("m1", "hi")).await;
    assert!(body.get("usage").is_none());
    assert_eq!(
        body["choices"][0]["message"]["content"],
        default_answer("m1", "hi")
    );
    let transcript = ask_streamed(&server, &streamed_body("m1", "hi", true)).await;
    assert!(transcript
        .chunks()
        .iter()
        .all(|chunk| chunk["usage"].is_null()));
    assert_eq!(transcript.text(), default_answer("m1", "hi"));
}

#[tokio::test]
async fn ignore_stream_answers_whole_json() {
    let server = server_with(Rule::model("m1").fault(Fault::IgnoreStream)).await;
    let (status, headers, body) = ask(&server, &streamed_body("m1", "hi", true)).await;
    assert_eq!(status, 200);
    assert_eq!(headers[reqwest::header::CONTENT_TYPE], "application/json");
    assert_eq!(body["object"], "chat.completion");
}

// ---- rules ----

#[tokio::test]
async fn first_matching_rule_wins_and_hands_out_its_faults_in_order() {
    let server = FakeServer::start(
        Script::new()
            .rule(
                Rule::model("m1")
                    .prompt_contains("sunrise")
                    .faults([Fault::status(429), Fault::status(500)])
                    .answer("custom"),
            )
            .rule(Rule::model("m1").fault(Fault::status(404))),
    )
    .await
    .expect("start");
    let status = |prompt: &'static str| {
        let server = &server;
        async move { ask(server, &chat_body("m1", prompt)).await.0 }
    };
    assert_eq!(status("a sunrise").await, 429);
    assert_eq!(status("sunset").await, 404);
    assert_eq!(status("sunrise again").await, 500);
    assert_eq!(answer_to(&server, "m1", "sunrise").await, "custom");
    assert_eq!(
        answer_to(&server, "m1", "sunset").await,
        default_answer("m1", "sunset")
    );
    assert_eq!(
        answer_to(&server, "m2", "sunrise").await,
        default_answer("m2", "sunrise")
    );
}

#[tokio::test]
async fn fault_forever_never_recovers() {
    let server = server_with(
        Rule::model("m1")
            .fault(Fault::status(429))
            .fault_forever(Fault::status(500)),
    )
    .await;
    let statuses = [
        ask(&server, &chat_body("m1", "x")).await.0,
        ask(&server, &chat_body("m1", "x")).await.0,
        ask(&server, &chat_body("m1", "x")).await.0,
    ];
    assert_eq!(statuses, [429, 500, 500]);
}

#[tokio::test]
async fn set_script_replaces_the_rules_and_keeps_the_log() {
    let server = server_with(Rule::model("m1").fault_forever(Fault::status(500))).await;
    assert_eq!(ask(&server, &chat_body("m1", "x")).await.0, 500);
    server.set_script(Script::new());
    assert_eq!(ask(&server, &chat_body("m1", "x")).await.0, 200);
    assert_eq!(server.request_count(), 2);
    server.clear_log();
    assert_eq!(server.request_count(), 0);
    assert!(server.requests().is_empty());
}

// ---- global settings ----

#[tokio::test]
async fn require_api_key_rejects_missing_and_wrong_keys() {
    let server = FakeServer::start(Script::new().require_api_key("sk-right"))
        .await
        .expect("start");
    let send = |key: Option<&'static str>| {
        let url = format!("{}/chat/completions", server.base_url());
        async move {
            let mut request = reqwest::Client::new()
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(chat_body("m1", "hi").to_string());
            if let Some(key) = key {
                request = request.bearer_auth(key);
            }
            request.send().await.expect("answer").status().as_u16()
        }
    };
    assert_eq!(send(None).await, 401);
    assert_eq!(send(Some("sk-wrong")).await, 401);
    assert_eq!(send(Some("sk-right")).await, 200);
    let log = server.requests();
    assert_eq!(log[0].authorization, None);
    assert_eq!(log[1].authorization.as_deref(), Some("Bearer sk-wrong"));
    assert_eq!(log[2].status, 200);
}

#[tokio::test]
async fn fixed_latency_and_chunk_delay_slow_answers_down() {
    let latency = Duration::from_millis(100);
    let server = FakeServer::start(Script::new().fixed_latency(latency))
        .await
        .expect("start");
    let started = Instant::now();
    answer_to(&server, "m1", "hi").await;
    assert!(started.elapsed() >= latency);

    let chunk_delay = Duration::from_millis(20);
    let server = server_with(Rule::any().chunk_delay(chunk_delay)).await;
    let started = Instant::now();
    let transcript = ask_streamed(&server, &streamed_body("m1", "hi", false)).await;
    let pauses = transcript.data.len() as u32 - 1;
    assert!(started.elapsed() >= chunk_delay * pauses);
}

// ---- the log ----

#[tokio::test]
async fn log_records_what_was_asked_and_answered() {
    let server = server_with(Rule::model("m2").fault(Fault::status(429))).await;
    let body = json!({
        "model": "m1",
        "messages": [
            {"role": "user", "content": "earlier"},
            {"role": "assistant", "content": "reply"},
            {"role": "user", "content": [
                {"type": "text", "text": "describe "},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}},
                {"type": "text", "text": "this"},
            ]},
        ],
        "temperature": 0.5, "top_p": 0.9, "max_tokens": 64, "seed": 7, "stop": ["END"],
        "stream": true, "stream_options": {"include_usage": true},
    });
    ask_streamed(&server, &body).await;
    ask(&server, &chat_body("m2", "hi")).await;

    let first = server.requests()[0].clone();
    assert_eq!(first.model, "m1");
    assert_eq!(first.last_user_text, "describe this");
    assert_eq!(first.messages, body["messages"]);
    assert_eq!(first.body, body);
    assert!(first.stream && first.include_usage);
    assert_eq!(first.params.temperature, Some(0.5));
    assert_eq!(first.params.seed, Some(7));
    assert_eq!(first.params.stop, ["END"]);
    assert_eq!(first.image_urls, ["data:image/png;base64,AA=="]);
    assert_eq!((first.status, first.fault), (200, None));

    let second = server.last_request().expect("logged");
    assert_eq!(
        (second.status, second.fault),
        (429, Some(Fault::status(429)))
    );
    assert!(second.received_at >= first.received_at);
    assert_eq!(server.count_where(|request| request.status == 429), 1);
    assert_eq!(server.request_count(), 2);
}

// ---- running beside synchronous code ----

/// A bare HTTP/1.1 exchange, as a synchronous test has no async client.
fn post_blocking(server: &FakeServer, body: &Value) -> String {
    let mut connection = std::net::TcpStream::connect(server.addr()).expect("connect");
    let body = body.to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        server.addr(),
        body.len()
    );
    connection.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    connection.read_to_string(&mut response).expect("receive");
    response
}

#[test]
fn start_in_thread_serves_synchronous_tests_and_stops_on_drop() {
    let server = FakeServer::start_in_thread(Script::new()).expect("start");
    let response = post_blocking(&server, &chat_body("m1", "hello there"));
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(&default_answer("m1", "hello there")));
    assert_eq!(server.request_count(), 1);

    let addr = server.addr();
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still listening after drop"
    );
}

#[test]
fn dropping_a_threaded_server_does_not_wait_for_slow_answers() {
    let server = FakeServer::start_in_thread(
        Script::new().rule(Rule::any().fault(Fault::delay(Duration::from_secs(30)))),
    )
    .expect("start");
    let addr = server.addr();
    let slow_client = std::thread::spawn(move || {
        // The answer never comes: the server goes away first.
        let mut connection = std::net::TcpStream::connect(addr).expect("connect");
        let body = chat_body("m1", "hi").to_string();
        let request = format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        connection.write_all(request.as_bytes()).expect("send");
        let mut response = Vec::new();
        let _ = connection.read_to_end(&mut response);
        response
    });
    while server.request_count() == 0 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    drop(server);
    assert!(started.elapsed() < Duration::from_secs(2));
    let response = slow_client.join().expect("client thread");
    assert!(response.is_empty(), "no answer expected");
}
