//! The HTTP server: routes, answers as the script decides, the request log, start and shutdown.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;
use futures_util::stream;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::log::RecordedRequest;
use crate::script::{Fault, Script};
use crate::wire::{self, ChatCall, ResponseHeader, SamplingParams};

/// How long in-flight answers may go on after the server is dropped before they are cut.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

/// The pause before a cut answer's connection is closed. Hyper drops the bytes still in its write
/// buffer when a body fails in the same poll as its last write, and the client would see fewer
/// chunks than scripted: pausing makes hyper flush first.
const CUT_FLUSH_PAUSE: Duration = Duration::from_millis(20);

/// A scripted OpenAI-compatible server on 127.0.0.1. Dropping it stops the server.
pub struct FakeServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<bool>,
    /// The server's own thread and runtime, for `start_in_thread`.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeServer {
    /// Starts on a free port, serving from the current tokio runtime. The server only runs while
    /// that runtime is polled: a test that blocks its thread (waiting for a subprocess, say) needs
    /// [`FakeServer::start_in_thread`].
    pub async fn start(script: Script) -> io::Result<FakeServer> {
        FakeServer::start_on_port(script, 0).await
    }

    /// Starts on 127.0.0.1:`port` (0: any free port), serving from the current tokio runtime.
    pub async fn start_on_port(script: Script, port: u16) -> io::Result<FakeServer> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await?;
        let (server, signal) = FakeServer::new(script, listener.local_addr()?);
        tokio::spawn(serve(listener, Arc::clone(&server.shared), signal));
        Ok(server)
    }

    /// Starts on a free port with its own runtime on a background thread, for synchronous tests
    /// (that run the `versus` binary, say). Dropping the server stops it and joins the thread.
    pub fn start_in_thread(script: Script) -> io::Result<FakeServer> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("versus-testkit-server")
            .enable_all()
            .build()?;
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        let listener = {
            // Registering the socket needs the runtime that will drive it.
            let _entered = runtime.enter();
            TcpListener::from_std(listener)?
        };
        let (mut server, signal) = FakeServer::new(script, listener.local_addr()?);
        let shared = Arc::clone(&server.shared);
        let thread = std::thread::Builder::new()
            .name("versus-testkit-server".into())
            .spawn(move || runtime.block_on(serve(listener, shared, signal)))?;
        server.thread = Some(thread);
        Ok(server)
    }

    fn new(script: Script, addr: SocketAddr) -> (FakeServer, watch::Receiver<bool>) {
        let (shutdown, signal) = watch::channel(false);
        let server = FakeServer {
            addr,
            shared: Arc::new(Shared::new(script)),
            shutdown,
            thread: None,
        };
        (server, signal)
    }

    /// The base URL an OpenAI client takes: `http://127.0.0.1:PORT/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the script (rules, queues and settings); the log is kept. For tests that run a
    /// client twice against different behaviour, e.g. a failing run and then its resume.
    pub fn set_script(&self, script: Script) {
        self.shared.lock().script = script;
    }

    /// The chat-completions requests received since the start (or `clear_log`), oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().log.clone()
    }

    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.lock().log.last().cloned()
    }

    /// How many chat-completions requests arrived since the start (or `clear_log`), counted even
    /// when the script turns the log off.
    pub fn request_count(&self) -> usize {
        self.shared.lock().request_count
    }

    pub fn count_where(&self, mut predicate: impl FnMut(&RecordedRequest) -> bool) -> usize {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|request| predicate(request))
            .count()
    }

    pub fn clear_log(&self) {
        let mut state = self.shared.lock();
        state.log.clear();
        state.request_count = 0;
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.shutdown.send_replace(true);
        if let Some(thread) = self.thread.take() {
            // A panic on the server thread has already been printed there; a test that cares
            // sees its requests fail.
            let _ = thread.join();
        }
    }
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// Serves until `signal` says stop (or its sender is gone), then lets in-flight answers finish
/// for a short grace period.
async fn serve(listener: TcpListener, shared: Arc<Shared>, signal: watch::Receiver<bool>) {
    let app = Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/models", get(list_models))
        .fallback(unknown_endpoint)
        .with_state(shared);
    let mut graceful_signal = signal.clone();
    // Streamed answers are many small writes: without TCP_NODELAY, Nagle's algorithm and the
    // client's delayed ACKs hold each one up to 40 ms, which measures the kernel, not the client.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        // An error means the sender is gone: stop as well.
        let _ = graceful_signal.wait_for(|stop| *stop).await;
    });
    let mut grace_signal = signal;
    let grace_over = async move {
        let _ = grace_signal.wait_for(|stop| *stop).await;
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        // `axum::serve` never fails: it logs accept errors and retries.
        _ = server => {}
        () = grace_over => {}
    }
}

struct Shared {
    state: Mutex<ServerState>,
}

struct ServerState {
    script: Script,
    log: Vec<RecordedRequest>,
    request_count: usize,
    next_response_number: u64,
}

impl Shared {
    fn new(script: Script) -> Shared {
        Shared {
            state: Mutex::new(ServerState {
                script,
                log: Vec::new(),
                request_count: 0,
                next_response_number: 1,
            }),
        }
    }

    /// A panicking test thread must not take the server down with it: the state stays usable.
    fn lock(&self) -> MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides the reply to one request and logs it, in one step so that concurrent requests
    /// take queued faults in arrival order.
    fn plan(
        &self,
        raw_body: Value,
        call: Result<ChatCall, String>,
        authorization: Option<String>,
        received_at: Instant,
    ) -> (Reply, Option<Duration>) {
        let mut state = self.lock();
        let latency = state.script.fixed_latency_setting();
        let authorized = state
            .script
            .required_api_key()
            .is_none_or(|key| authorization.as_deref() == Some(format!("Bearer {key}").as_str()));
        let (reply, fault) = match &call {
            Err(message) => (
                Reply::error(
                    400,
                    wire::openai_error_body(message, "invalid_request_error", None),
                ),
                None,
            ),
            Ok(_) if !authorized => (
                Reply::error(
                    401,
                    wire::openai_error_body(
                        "Incorrect API key provided.",
                        "invalid_request_error",
                        Some("invalid_api_key"),
                    ),
                ),
                None,
            ),
            Ok(call) => {
                let decision = state.script.decide(&call.model, &call.last_user_text);
                let reply = match &decision.fault {
                    Some(Fault::Status {
                        code,
                        retry_after,
                        body,
                    }) => Reply::Error {
                        status: *code,
                        retry_after: retry_after.clone(),
                        body: body
                            .clone()
                            .unwrap_or_else(|| wire::default_error_body(*code, &call.model)),
                    },
                    fault => {
                        let answer = decision.answer.clone().unwrap_or_else(|| {
                            wire::default_answer(&call.model, &call.last_user_text)
                        });
                        let completion_tokens = wire::word_count(&answer);
                        Reply::Answer(AnswerPlan {
                            header: ResponseHeader {
                                id: format!(
                                    "chatcmpl-versus-testkit-{}",
                                    state.next_response_number
                                ),
                                created: unix_seconds(),
                                model: call.model.clone(),
                            },
                            answer,
                            stream: call.stream,
                            include_usage: call.include_usage,
                            usage: (call.prompt_words, completion_tokens),
                            chunk_delay: decision.chunk_delay,
                            fault: fault.clone(),
                        })
                    }
                };
                state.next_response_number += 1;
                (reply, decision.fault)
            }
        };
        state.request_count += 1;
        if state.script.logs_requests() {
            let status = reply.status();
            let record = match call {
                Ok(call) => RecordedRequest {
                    messages: raw_body.get("messages").cloned().unwrap_or(Value::Null),
                    body: raw_body,
                    model: call.model,
                    last_user_text: call.last_user_text,
                    stream: call.stream,
                    include_usage: call.include_usage,
                    params: call.params,
                    image_urls: call.image_urls,
                    authorization,
                    status,
                    fault,
                    received_at,
                },
                Err(_) => RecordedRequest {
                    model: String::new(),
                    last_user_text: String::new(),
                    messages: Value::Null,
                    body: raw_body,
                    stream: false,
                    include_usage: false,
                    params: SamplingParams::default(),
                    image_urls: Vec::new(),
                    authorization,
                    status,
                    fault: None,
                    received_at,
                },
            };
            state.log.push(record);
        }
        (reply, latency)
    }
}

fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let received_at = Instant::now();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let (raw_body, call) = wire::parse_chat_call(&body);
    let (reply, latency) = shared.plan(raw_body, call, authorization, received_at);
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    reply.into_response().await
}

async fn list_models(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let state = shared.lock();
    if let Some(key) = state.script.required_api_key() {
        let expected = format!("Bearer {key}");
        if headers
            .get(header::AUTHORIZATION)
            .map(HeaderValue::as_bytes)
            != Some(expected.as_bytes())
        {
            return json_response(
                StatusCode::UNAUTHORIZED,
                wire::openai_error_body(
                    "Incorrect API key provided.",
                    "invalid_request_error",
                    Some("invalid_api_key"),
                ),
            );
        }
    }
    let models: Vec<Value> = state
        .script
        .models()
        .into_iter()
        .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "versus-testkit"}))
        .collect();
    json_response(
        StatusCode::OK,
        json!({"object": "list", "data": models}).to_string(),
    )
}

async fn unknown_endpoint() -> Response {
    json_response(
        StatusCode::NOT_FOUND,
        wire::openai_error_body(
            "Unknown endpoint: versus-testkit serves /v1/chat/completions and /v1/models.",
            "invalid_request_error",
            None,
        ),
    )
}

fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
    response(status, "application/json", body.into())
}

fn response(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// What one request gets.
enum Reply {
    Error {
        status: u16,
        retry_after: Option<String>,
        body: String,
    },
    Answer(AnswerPlan),
}

/// A 200 answer, with the fault that bends it, if any.
struct AnswerPlan {
    header: ResponseHeader,
    answer: String,
    stream: bool,
    include_usage: bool,
    /// `(prompt_tokens, completion_tokens)`, sent unless the fault is `NoUsage`.
    usage: (u64, u64),
    chunk_delay: Option<Duration>,
    fault: Option<Fault>,
}

impl Reply {
    fn error(status: u16, body: String) -> Reply {
        Reply::Error {
            status,
            retry_after: None,
            body,
        }
    }

    fn status(&self) -> u16 {
        match self {
            Reply::Error { status, .. } => *status,
            Reply::Answer(_) => 200,
        }
    }

    async fn into_response(self) -> Response {
        match self {
            Reply::Error {
                status,
                retry_after,
                body,
            } => {
                let status =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let mut response = json_response(status, body);
                if let Some(value) =
                    retry_after.and_then(|value| HeaderValue::from_str(&value).ok())
                {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                response
            }
            Reply::Answer(plan) => {
                if let Some(Fault::Delay(delay)) = plan.fault {
                    tokio::time::sleep(delay).await;
                }
                if plan.stream && plan.fault != Some(Fault::IgnoreStream) {
                    plan.streamed()
                } else {
                    plan.whole()
                }
            }
        }
    }
}

impl AnswerPlan {
    fn usage(&self) -> Option<(u64, u64)> {
        (self.fault != Some(Fault::NoUsage)).then_some(self.usage)
    }

    /// A non-streaming `chat.completion`.
    fn whole(&self) -> Response {
        let completion = wire::completion_json(&self.header, &self.answer, self.usage());
        match self.fault {
            Some(Fault::MalformedJson) => json_response(
                StatusCode::OK,
                format!(
                    r#"{{"id": "{}", "object": "chat.completion", choices: [oops"#,
                    self.header.id
                ),
            ),
            Some(Fault::CutStream { .. }) => {
                let full = Bytes::from(completion.to_string());
                let half = full.slice(..full.len() / 2);
                let mut response = response(
                    StatusCode::OK,
                    "application/json",
                    streamed_body(vec![half], None, true),
                );
                // Announce the whole length so the client knows the body was cut.
                response
                    .headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(full.len()));
                response
            }
            _ => json_response(StatusCode::OK, completion.to_string()),
        }
    }

    /// An SSE stream of `chat.completion.chunk`s.
    fn streamed(&self) -> Response {
        let header = &self.header;
        let chunk = |delta: Value, finish_reason: Option<&str>| {
            wire::sse_event(
                &wire::chunk_json(header, delta, finish_reason, self.include_usage).to_string(),
            )
        };
        let mut events = vec![chunk(json!({"role": "assistant", "content": ""}), None)];
        let deltas = wire::answer_deltas(&self.answer);
        let mut cut = false;
        match self.fault {
            Some(Fault::CutStream { after_chunks }) => {
                events.extend(
                    deltas
                        .iter()
                        .take(after_chunks)
                        .map(|delta| chunk(json!({"content": delta}), None)),
                );
                cut = true;
            }
            Some(Fault::MalformedJson) => {
                events.push(wire::sse_event(&format!(
                    r#"{{"id": "{}", "choices": [{{"delta": {{"content": "oops"#,
                    header.id
                )));
                events.push(wire::sse_event(wire::SSE_DONE));
            }
            _ => {
                events.extend(
                    deltas
                        .iter()
                        .map(|delta| chunk(json!({"content": delta}), None)),
                );
                events.push(chunk(json!({}), Some("stop")));
                if let (true, Some((prompt, completion))) = (self.include_usage, self.usage()) {
                    events.push(wire::sse_event(
                        &wire::usage_chunk_json(header, prompt, completion).to_string(),
                    ));
                }
                events.push(wire::sse_event(wire::SSE_DONE));
            }
        }
        let mut response = response(
            StatusCode::OK,
            "text/event-stream",
            streamed_body(events, self.chunk_delay, cut),
        );
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }
}

/// A body sent piece by piece, `delay` apart; `cut` ends it with an error, which makes the server
/// close the connection without finishing the response.
fn streamed_body(pieces: Vec<Bytes>, delay: Option<Duration>, cut: bool) -> Body {
    let (sender, receiver) = mpsc::channel::<io::Result<Bytes>>(4);
    tokio::spawn(async move {
        for (index, piece) in pieces.into_iter().enumerate() {
            if let (Some(delay), true) = (delay, index > 0) {
                tokio::time::sleep(delay).await;
            }
            if sender.send(Ok(piece)).await.is_err() {
                // The client is gone.
                return;
            }
        }
        if cut {
            let cut_error = io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "versus-testkit: connection cut by the script",
            );
            let _ = sender.send(Err(cut_error)).await;
        }
    });
    Body::from_stream(stream::unfold(receiver, |mut receiver| async move {
        let piece = receiver.recv().await?;
        if piece.is_err() {
            // Pending here, after the last bytes, is what makes hyper flush them before the cut.
            tokio::time::sleep(CUT_FLUSH_PAUSE).await;
        }
        Some((piece, receiver))
    }))
}
