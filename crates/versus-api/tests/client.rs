//! `OpenAiClient` against a scripted local server: streaming, non-streaming, SSE edge cases,
//! retries and back-off, timeouts, and the errors users see (without their API key in them).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;
use versus_api::{ClientConfig, OpenAiClient};
use versus_core::{
    ChatModel, ChatRequest, ContentPart, ErrorKind, FinishReason, GenerationParams, Message, Role,
    Usage,
};

const KEY: &str = "sk-test-secret-4c1f";

fn with_key(config: &mut ClientConfig) {
    config.api_key = Some(KEY.to_string());
    config.key_hint = Some("OPENAI_API_KEY".to_string());
}

// --- answers -------------------------------------------------------------------------------------

#[tokio::test]
async fn a_streamed_answer_is_assembled_with_usage_timings_and_model() {
    let reply = streamed(&["Hel", "lo", ", world"])
        .after(Duration::from_millis(30))
        .gap(Duration::from_millis(10));
    let (server, outcome) = ask_server(vec![reply]).await;
    let completion = outcome.completion();
    assert_eq!(completion.text, "Hello, world");
    assert_eq!(completion.finish_reason, FinishReason::Stop);
    assert_eq!(completion.usage, Some(Usage::new(7, 3)));
    assert_eq!(completion.served_model.as_deref(), Some(SERVED_MODEL));
    assert_eq!(completion.attempts, 1);
    let ttft = completion
        .timings
        .ttft_ms
        .expect("a streamed answer has a ttft");
    assert!(ttft >= 30.0, "ttft {ttft}");
    // Five more pieces follow the first delta, 10 ms apart.
    assert!(
        completion.timings.latency_ms >= ttft + 40.0,
        "{:?}",
        completion.timings
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn on_text_receives_each_delta_as_it_arrives() {
    let (_, outcome) = ask_server(vec![streamed(&["a", "b", "", "c"])]).await;
    assert_eq!(outcome.deltas, ["a", "b", "c"]);
    assert_eq!(outcome.completion().text, "abc");
}

#[tokio::test]
async fn a_non_streaming_request_reads_the_whole_json_answer() {
    let (server, outcome) = ask_server_with(vec![json_answer("Hi there")], |config| {
        config.stream = false
    })
    .await;
    let completion = outcome.completion();
    assert_eq!(completion.text, "Hi there");
    assert_eq!(completion.finish_reason, FinishReason::Length);
    assert_eq!(completion.usage, Some(Usage::new(7, 3)));
    assert_eq!(completion.timings.ttft_ms, None);
    assert!(completion.timings.latency_ms > 0.0);
    assert_eq!(completion.served_model.as_deref(), Some(SERVED_MODEL));
    assert_eq!(outcome.deltas, ["Hi there"]);
    let body = server.request(0).body;
    assert!(body.get("stream").is_none(), "{body}");
    assert!(body.get("stream_options").is_none(), "{body}");
}

#[tokio::test]
async fn a_server_that_ignores_stream_and_answers_json_is_understood() {
    let (server, outcome) = ask_server(vec![json_answer("plain")]).await;
    assert_eq!(outcome.completion().text, "plain");
    assert_eq!(outcome.completion().timings.ttft_ms, None);
    assert_eq!(server.request(0).body["stream"], json!(true));
}

#[tokio::test]
async fn no_usage_from_the_server_means_no_usage() {
    let events = [delta("x"), finish("stop"), done()];
    let (_, outcome) = ask_server(vec![sse(&events)]).await;
    assert_eq!(outcome.completion().text, "x");
    assert_eq!(outcome.completion().usage, None);

    let body = json!({"choices": [{"message": {"content": "y"}, "finish_reason": "stop"}]});
    let (_, outcome) = ask_server(vec![json_body(200, &body.to_string())]).await;
    assert_eq!(outcome.completion().text, "y");
    assert_eq!(outcome.completion().usage, None);
    assert_eq!(outcome.completion().served_model, None);
}

#[tokio::test]
async fn sse_split_anywhere_with_crlf_and_comments_is_decoded() {
    let first = delta("é");
    let first = first.as_bytes();
    // Split inside the JSON, inside the two-byte `é`, and between CR and LF.
    let cut = first.iter().position(|&byte| byte == 0xC3).expect("é") + 1;
    let pieces: Vec<&[u8]> = vec![
        b": keep-alive\r\n\r\nda",
        b"ta: ",
        &first[..cut],
        &first[cut..],
        b"\r",
        b"\n\r\ndata: ",
        br#"{"choices":[{"index":0,"delta":{"content":"t\u00e9"},"finish_reason":"stop"}]}"#,
        b"\r\n\r\n: done soon\r\ndata: [DONE]\r\n\r\n",
    ];
    let (_, outcome) = ask_server(vec![raw_sse(&pieces)]).await;
    assert_eq!(outcome.completion().text, "été");
    assert_eq!(outcome.completion().finish_reason, FinishReason::Stop);
}

#[tokio::test]
async fn a_stream_with_a_finish_reason_but_no_done_is_complete() {
    let events = [delta("ok"), finish("length")];
    let (server, outcome) = ask_server(vec![sse(&events)]).await;
    assert_eq!(outcome.completion().text, "ok");
    assert_eq!(outcome.completion().finish_reason, FinishReason::Length);
    assert_eq!(server.hits(), 1);
}

// --- the request ---------------------------------------------------------------------------------

#[tokio::test]
async fn the_request_carries_the_model_set_params_stream_options_and_key() {
    let server = serve(vec![streamed(&["ok"])]).await;
    let client = client(&server, with_key);
    let request = ChatRequest {
        messages: vec![Message::system("be brief"), Message::user("hi")],
        params: GenerationParams {
            temperature: Some(0.0),
            max_tokens: Some(64),
            stop: Some(vec!["\n\n".into()]),
            ..Default::default()
        },
    };
    ask(&client, &request).await.completion();
    let recorded = server.request(0);
    assert_eq!(
        recorded.body,
        json!({
            "model": MODEL,
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "hi"}
            ],
            "temperature": 0.0,
            "max_tokens": 64,
            "stop": ["\n\n"],
            "stream": true,
            "stream_options": {"include_usage": true}
        })
    );
    assert_eq!(
        recorded.headers["authorization"],
        format!("Bearer {KEY}").as_str()
    );
    assert_eq!(recorded.headers["content-type"], "application/json");
}

#[tokio::test]
async fn without_a_key_no_authorization_header_is_sent() {
    let (server, outcome) = ask_server(vec![streamed(&["ok"])]).await;
    outcome.completion();
    assert!(server.request(0).headers.get("authorization").is_none());
}

#[tokio::test]
async fn images_are_sent_as_image_url_parts() {
    let server = serve(vec![streamed(&["a cat"])]).await;
    let client = client(&server, |_| {});
    let image = "data:image/png;base64,iVBORw0KGgo=";
    let request = ChatRequest {
        messages: vec![Message {
            role: Role::User,
            content: vec![
                ContentPart::Text {
                    text: "What is this?".into(),
                },
                ContentPart::Image {
                    url: image.into(),
                    source: Some("cat.png".into()),
                },
            ],
        }],
        params: GenerationParams::default(),
    };
    assert_eq!(ask(&client, &request).await.completion().text, "a cat");
    assert_eq!(
        server.request(0).body["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": image}}
        ])
    );
}

#[tokio::test]
async fn a_trailing_slash_on_the_base_url_is_harmless() {
    let server = serve(vec![streamed(&["ok"])]).await;
    let base_url = format!("{}/", server.base_url);
    let client = client(&server, |config| config.base_url = base_url);
    assert_eq!(ask(&client, &hello()).await.completion().text, "ok");
    assert!(client.endpoint().ends_with("/v1/chat/completions"));
}

#[tokio::test]
async fn the_chat_model_trait_answers_like_the_client() {
    let server = serve(vec![streamed(&["via ", "trait"])]).await;
    let model: Box<dyn ChatModel> = Box::new(client(&server, |_| {}));
    let completion = model
        .complete(&hello(), &mut |_| {})
        .await
        .expect("an answer");
    assert_eq!(completion.text, "via trait");
    assert_eq!(completion.attempts, 1);
}

// --- retries -------------------------------------------------------------------------------------

#[tokio::test]
async fn a_429_waits_for_retry_after_then_succeeds() {
    let limited = error_status(429, "slow down").header("retry-after", "1");
    let started = Instant::now();
    let (server, outcome) = ask_server(vec![limited, streamed(&["ok"])]).await;
    assert_eq!(outcome.completion().attempts, 2);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_429_honours_retry_after_ms() {
    let limited = error_status(429, "slow down").header("retry-after-ms", "300");
    let started = Instant::now();
    let (_, outcome) = ask_server(vec![limited, streamed(&["ok"])]).await;
    assert_eq!(outcome.completion().attempts, 2);
    assert!(started.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn server_errors_are_retried_until_success() {
    let failure = error_status(500, "oops");
    let (server, outcome) = ask_server(vec![failure.clone(), failure, streamed(&["fine"])]).await;
    assert_eq!(outcome.completion().text, "fine");
    assert_eq!(outcome.completion().attempts, 3);
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn a_cut_stream_is_retried_without_showing_text_twice() {
    let (server, outcome) = ask_server(vec![cut_stream(&["Hel"]), streamed(&["Hel", "lo"])]).await;
    assert_eq!(outcome.completion().text, "Hello");
    assert_eq!(outcome.completion().attempts, 2);
    assert_eq!(outcome.shown(), "Hello");
    assert_eq!(server.hits(), 2);

    let (_, outcome) = ask_server(vec![cut_stream(&["Hel"])]).await;
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::Connection);
    assert!(
        error
            .message
            .contains("ended before the answer was complete"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn a_broken_connection_mid_stream_is_retried() {
    let broken = cut_stream(&["par"]).broken();
    let (_, outcome) = ask_server(vec![broken.clone(), streamed(&["whole"])]).await;
    assert_eq!(outcome.completion().text, "whole");
    assert_eq!(outcome.completion().attempts, 2);

    let (_, outcome) = ask_server(vec![broken]).await;
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::Connection);
    assert!(
        error.message.contains("broke while reading the answer"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn malformed_answers_are_retried() {
    let not_json = json_body(200, "{\"choices\": [");
    let bad_event = sse(&["{not json".to_string()]);
    let (server, outcome) = ask_server(vec![not_json, bad_event, streamed(&["ok"])]).await;
    assert_eq!(outcome.completion().text, "ok");
    assert_eq!(outcome.completion().attempts, 3);
    assert_eq!(server.hits(), 3);
}

#[tokio::test]
async fn an_error_object_in_the_stream_is_a_retried_server_error() {
    let overloaded = sse(&[
        delta("par"),
        json!({"error": {"message": "overloaded"}}).to_string(),
    ]);
    let (_, outcome) = ask_server(vec![overloaded, streamed(&["ok"])]).await;
    assert_eq!(outcome.completion().attempts, 2);

    let always = sse(&[json!({"error": {"message": "overloaded"}}).to_string()]);
    let (_, outcome) = ask_server(vec![always]).await;
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::Server);
    assert!(error.message.contains("overloaded"), "{}", error.message);
}

#[tokio::test]
async fn a_slow_attempt_times_out_and_is_retried() {
    let slow = streamed(&["late"]).after(Duration::from_secs(1));
    let (server, outcome) = ask_server_with(vec![slow, streamed(&["fast"])], |config| {
        config.timeout = Duration::from_millis(200)
    })
    .await;
    assert_eq!(outcome.completion().text, "fast");
    assert_eq!(outcome.completion().attempts, 2);
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_body_that_never_finishes_ends_in_a_timeout_error() {
    // Headers arrive at once; the body stalls: the timeout covers the whole body.
    let stalled = streamed(&["a", "b"]).gap(Duration::from_secs(1));
    let (server, outcome) = ask_server_with(vec![stalled], |config| {
        config.timeout = Duration::from_millis(200);
        config.retry.max_retries = 2;
    })
    .await;
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::Timeout);
    assert_eq!(error.attempts, 3);
    assert!(error.message.contains("200ms"), "{}", error.message);
    assert!(error.message.contains("3 attempts"), "{}", error.message);
    assert_eq!(server.hits(), 3);
    // Text shown by the first attempt is not repeated by the next two.
    assert_eq!(outcome.shown(), "a");
}

// --- errors --------------------------------------------------------------------------------------

#[tokio::test]
async fn persistent_server_errors_give_up_with_the_status_and_attempts() {
    let (server, outcome) = ask_server(vec![error_status(503, "maintenance")]).await;
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::Server);
    assert_eq!(error.attempts, 4);
    assert_eq!(server.hits(), 4);
    for expected in ["HTTP 503", "maintenance", "gave up after 4 attempts"] {
        assert!(error.message.contains(expected), "{}", error.message);
    }
}

#[tokio::test]
async fn persistent_rate_limits_give_up_as_rate_limited() {
    let (_, outcome) = ask_server(vec![error_status(429, "slow down")]).await;
    assert_eq!(outcome.error().kind, ErrorKind::RateLimited);
    assert!(outcome.error().message.contains("HTTP 429"));
}

#[tokio::test]
async fn a_rejected_key_is_not_retried_and_never_echoed() {
    let echo = error_status(401, &format!("Incorrect API key provided: {KEY}"));
    let (server, outcome) = ask_server_with(vec![echo], with_key).await;
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::Auth);
    assert_eq!(error.attempts, 1);
    assert_eq!(server.hits(), 1);
    assert!(error.message.contains("HTTP 401"), "{}", error.message);
    assert!(
        error.message.contains("check OPENAI_API_KEY"),
        "{}",
        error.message
    );
    assert!(!error.message.contains(KEY), "{}", error.message);
    assert!(
        !format!("{error:?}").contains(KEY),
        "Debug must not leak either"
    );
}

#[tokio::test]
async fn a_missing_key_is_named_in_the_auth_error() {
    let (_, outcome) = ask_server_with(vec![error_status(401, "no key")], |config| {
        config.key_hint = Some("OPENROUTER_API_KEY".into())
    })
    .await;
    let message = &outcome.error().message;
    assert!(
        message.contains("no API key was sent: set OPENROUTER_API_KEY"),
        "{message}"
    );
}

#[tokio::test]
async fn an_unknown_model_is_reported_with_its_name() {
    let (server, outcome) = ask_server(vec![error_status(404, "no such model")]).await;
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert_eq!(server.hits(), 1);
    for expected in [
        "model `gpt-test` not found",
        "HTTP 404",
        "no such model",
        "check the model name and base_url",
    ] {
        assert!(error.message.contains(expected), "{}", error.message);
    }
}

#[tokio::test]
async fn a_bad_request_is_not_retried_and_quotes_the_server() {
    let (server, outcome) = ask_server(vec![error_status(400, "max_tokens is too large")]).await;
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::BadRequest);
    assert_eq!(server.hits(), 1);
    assert!(error.message.contains("max_tokens is too large"));
}

#[tokio::test]
async fn an_unreachable_server_is_a_connection_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = listener.local_addr().expect("address");
    drop(listener);
    let mut config = ClientConfig::new(format!("http://{address}/v1"), MODEL);
    config.retry.max_retries = 1;
    config.retry.base_delay = Duration::from_millis(1);
    let client = OpenAiClient::new(config).expect("valid");
    let error = ask(&client, &hello()).await.result.expect_err("refused");
    assert_eq!(error.kind, ErrorKind::Connection);
    assert_eq!(error.attempts, 2);
    assert!(
        error.message.contains("could not connect"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn debug_output_never_shows_the_key() {
    let mut config = ClientConfig::new("http://127.0.0.1:1/v1", MODEL);
    with_key(&mut config);
    let shown = format!("{config:?}");
    assert!(!shown.contains(KEY), "{shown}");
    assert!(shown.contains("OPENAI_API_KEY"));
    let client = OpenAiClient::new(config).expect("valid");
    assert!(!format!("{client:?}").contains(KEY));
}

// --- bounded answers and redacted URLs ------------------------------------------------------------

#[tokio::test]
async fn an_endless_sse_line_fails_the_attempt_at_the_line_limit() {
    // A line that never ends, sent in 64 KiB pieces: the client stops at its limit instead of
    // allocating until the process aborts, and does not pay for the same answer again.
    let piece = vec![b'x'; 64 * 1024];
    let mut pieces: Vec<&[u8]> = vec![b"data: "];
    pieces.extend(std::iter::repeat_n(piece.as_slice(), 64));
    let (server, outcome) = ask_server_with(vec![raw_sse(&pieces)], |config| {
        config.limits.max_sse_line_bytes = 1024 * 1024;
    })
    .await;
    let error = outcome.error();
    assert_eq!(error.kind, ErrorKind::InvalidResponse);
    assert!(
        error.message.contains("longer than 1048576 bytes"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("max_sse_line_bytes"),
        "{}",
        error.message
    );
    assert_eq!(server.hits(), 1, "not retried");
}

#[tokio::test]
async fn a_body_over_the_limit_fails_the_attempt() {
    let big = format!("{{\"pad\": \"{}\"}}", "y".repeat(200_000));
    let (_, outcome) = ask_server_with(vec![json_body(200, &big)], |config| {
        config.stream = false;
        config.limits.max_body_bytes = 100_000;
    })
    .await;
    let error = outcome.error();
    assert!(
        error.message.contains("longer than 100000 bytes"),
        "{}",
        error.message
    );
    assert!(
        error.message.contains("max_response_bytes"),
        "{}",
        error.message
    );
    // A stream counts all its events together.
    let deltas: Vec<String> = (0..400).map(|_| "z".repeat(500)).collect();
    let deltas: Vec<&str> = deltas.iter().map(String::as_str).collect();
    let (_, outcome) = ask_server_with(vec![streamed(&deltas)], |config| {
        config.limits.max_body_bytes = 100_000;
    })
    .await;
    assert!(outcome.error().message.contains("longer than 100000 bytes"));
}

#[tokio::test]
async fn user_info_and_query_values_never_reach_an_error_message() {
    // Nothing listens on port 9: the connection is refused, and the message names the URL.
    let mut config = ClientConfig::new("http://user:hunter2@127.0.0.1:9/v1?key=QSECRET", MODEL);
    config.retry.max_retries = 0;
    let client = OpenAiClient::new(config).expect("a valid config");
    let outcome = ask(&client, &hello()).await;
    let message = &outcome.error().message;
    assert!(message.contains("127.0.0.1:9"), "{message}");
    assert!(!message.contains("hunter2"), "{message}");
    assert!(!message.contains("QSECRET"), "{message}");
    assert!(!format!("{client:?}").contains("hunter2"));
}
