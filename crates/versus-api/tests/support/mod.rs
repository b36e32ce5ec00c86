//! A scripted chat-completions server on 127.0.0.1 for the client tests: each request gets the
//! next `Reply` of the script (the last one repeats), and every request is recorded.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use versus_api::{ClientConfig, OpenAiClient, RetryPolicy};
use versus_core::{ChatRequest, Completion, Message, ModelError};

pub const MODEL: &str = "gpt-test";
pub const SERVED_MODEL: &str = "gpt-test-2024-01-01";

/// What the server answers to one request.
#[derive(Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    /// Sent one by one with `gap` between them, so that the client sees separate reads.
    pieces: Vec<Bytes>,
    gap: Duration,
    /// Wait before answering at all.
    delay: Duration,
    /// Break the connection after the last piece instead of ending the body cleanly.
    break_connection: bool,
}

impl Reply {
    fn new(status: u16, content_type: &str, pieces: Vec<Bytes>) -> Reply {
        Reply {
            status,
            headers: vec![("content-type", content_type.to_string())],
            pieces,
            gap: Duration::from_millis(2),
            delay: Duration::ZERO,
            break_connection: false,
        }
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Reply {
        self.headers.push((name, value.to_string()));
        self
    }

    /// Waits `delay` before sending the status line.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// Waits `gap` between body pieces.
    pub fn gap(mut self, gap: Duration) -> Reply {
        self.gap = gap;
        self
    }

    /// Resets the connection after the body pieces.
    pub fn broken(mut self) -> Reply {
        self.break_connection = true;
        self
    }
}

/// `data: {event}\n\n` for each event, each its own network write.
pub fn sse(events: &[String]) -> Reply {
    let pieces = events
        .iter()
        .map(|event| Bytes::from(format!("data: {event}\n\n")))
        .collect();
    Reply::new(200, "text/event-stream", pieces)
}

/// An SSE body written exactly as given, in the given pieces.
pub fn raw_sse(pieces: &[&[u8]]) -> Reply {
    let pieces = pieces
        .iter()
        .map(|piece| Bytes::copy_from_slice(piece))
        .collect();
    Reply::new(200, "text/event-stream", pieces)
}

pub fn delta(text: &str) -> String {
    json!({"model": SERVED_MODEL, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": null}]})
        .to_string()
}

pub fn finish(reason: &str) -> String {
    json!({"model": SERVED_MODEL, "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})
        .to_string()
}

pub fn usage(prompt: u64, completion: u64) -> String {
    json!({"model": SERVED_MODEL, "choices": [], "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}})
        .to_string()
}

pub fn done() -> String {
    "[DONE]".to_string()
}

/// A complete streamed answer: the deltas, `stop`, usage 7/len(deltas), `[DONE]`.
pub fn streamed(deltas: &[&str]) -> Reply {
    let mut events: Vec<String> = deltas.iter().map(|text| delta(text)).collect();
    events.push(finish("stop"));
    events.push(usage(7, deltas.len() as u64));
    events.push(done());
    sse(&events)
}

/// A streamed answer cut off after `deltas`: no finish reason, no `[DONE]`, clean EOF.
pub fn cut_stream(deltas: &[&str]) -> Reply {
    let events: Vec<String> = deltas.iter().map(|text| delta(text)).collect();
    sse(&events)
}

/// A whole JSON answer with usage 7/3.
pub fn json_answer(text: &str) -> Reply {
    let body = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": SERVED_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10}
    });
    json_body(200, &body.to_string())
}

pub fn json_body(status: u16, body: &str) -> Reply {
    Reply::new(
        status,
        "application/json",
        vec![Bytes::from(body.to_string())],
    )
}

/// An OpenAI-style error body with `message`.
pub fn error_status(status: u16, message: &str) -> Reply {
    let body = json!({"error": {"message": message, "type": "error", "code": null}});
    json_body(status, &body.to_string())
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub headers: HeaderMap,
    pub body: Value,
}

pub struct Server {
    pub base_url: String,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

impl Server {
    /// How many requests arrived.
    pub fn hits(&self) -> usize {
        self.recorded.lock().expect("lock").len()
    }

    pub fn request(&self, index: usize) -> Recorded {
        self.recorded.lock().expect("lock")[index].clone()
    }
}

struct Script {
    replies: Vec<Reply>,
    recorded: Arc<Mutex<Vec<Recorded>>>,
}

/// Starts a server answering `POST /v1/chat/completions` from `replies`.
pub async fn serve(replies: Vec<Reply>) -> Server {
    assert!(!replies.is_empty(), "a script needs at least one reply");
    let recorded = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Script {
        replies,
        recorded: Arc::clone(&recorded),
    });
    let router = Router::new()
        .route("/v1/chat/completions", post(answer))
        .with_state(script);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    Server {
        base_url: format!("http://{address}/v1"),
        recorded,
    }
}

async fn answer(State(script): State<Arc<Script>>, headers: HeaderMap, body: Bytes) -> Response {
    let reply = {
        let mut recorded = script.recorded.lock().expect("lock");
        recorded.push(Recorded {
            headers,
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        let index = (recorded.len() - 1).min(script.replies.len() - 1);
        script.replies[index].clone()
    };
    tokio::time::sleep(reply.delay).await;
    let gap = reply.gap;
    let break_connection = reply.break_connection;
    let pieces = reply
        .pieces
        .into_iter()
        .map(Some)
        .chain(std::iter::once(None));
    let body =
        futures_util::stream::unfold((pieces, true), move |(mut pieces, first)| async move {
            if !first {
                tokio::time::sleep(gap).await;
            }
            match pieces.next()? {
                Some(piece) => Some((Ok(piece), (pieces, false))),
                None if break_connection => Some((
                    Err(std::io::Error::other("connection broken on purpose")),
                    (pieces, false),
                )),
                None => None,
            }
        });
    let mut response =
        Response::builder().status(StatusCode::from_u16(reply.status).expect("status"));
    for (name, value) in &reply.headers {
        response = response.header(*name, value);
    }
    response.body(Body::from_stream(body)).expect("response")
}

/// A client for `server` with fast retries (3 retries, 5 ms base), a 2 s timeout, and whatever
/// `adjust` changes.
pub fn client(server: &Server, adjust: impl FnOnce(&mut ClientConfig)) -> OpenAiClient {
    let mut config = ClientConfig::new(&server.base_url, MODEL);
    config.timeout = Duration::from_secs(2);
    config.retry = RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
    };
    adjust(&mut config);
    OpenAiClient::new(config).expect("a valid config")
}

pub fn hello() -> ChatRequest {
    ChatRequest {
        messages: vec![Message::user("hello")],
        params: Default::default(),
    }
}

/// What one call returned, and every piece of text `on_text` was given.
pub struct Outcome {
    pub result: Result<Completion, ModelError>,
    pub deltas: Vec<String>,
}

impl Outcome {
    pub fn completion(&self) -> &Completion {
        match &self.result {
            Ok(completion) => completion,
            Err(error) => panic!("expected an answer, got {error:?}"),
        }
    }

    pub fn error(&self) -> &ModelError {
        match &self.result {
            Ok(completion) => panic!("expected an error, got {completion:?}"),
            Err(error) => error,
        }
    }

    pub fn shown(&self) -> String {
        self.deltas.concat()
    }
}

pub async fn ask(client: &OpenAiClient, request: &ChatRequest) -> Outcome {
    let mut deltas = Vec::new();
    let result = client
        .complete_streaming(request, &mut |text| deltas.push(text.to_string()))
        .await;
    Outcome { result, deltas }
}

/// Serves `replies` to a default client and asks it "hello".
pub async fn ask_server(replies: Vec<Reply>) -> (Server, Outcome) {
    ask_server_with(replies, |_| {}).await
}

pub async fn ask_server_with(
    replies: Vec<Reply>,
    adjust: impl FnOnce(&mut ClientConfig),
) -> (Server, Outcome) {
    let server = serve(replies).await;
    let client = client(&server, adjust);
    let outcome = ask(&client, &hello()).await;
    (server, outcome)
}
