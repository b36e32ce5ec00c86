//! The HTTP server: routes, answers as the script decides, the request log, start and shutdown.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use bytes::Bytes;
use futures_util::stream;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::formats::{self, Answer, FakeUsage, Format};
use crate::log::RecordedRequest;
use crate::script::{Fault, Script};
use crate::wire::{self, ChatCall, ResponseHeader};

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

    /// The server's root, `http://127.0.0.1:PORT`: the base URL Anthropic's, Google's and
    /// Ollama's clients take, and an Azure endpoint.
    pub fn root_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the script (rules, queues and settings); the log is kept. For tests that run a
    /// client twice against different behaviour, e.g. a failing run and then its resume.
    pub fn set_script(&self, script: Script) {
        self.shared.lock().script = script;
    }

    /// The chat requests (of every format) received since the start (or `clear_log`), oldest
    /// first.
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

    /// Ends every batch job at its next status request (for jobs made to stay pending with
    /// `Script::batch_polls`).
    pub fn end_batches(&self) {
        self.shared.lock().batches.end_all();
    }

    /// How many batch jobs were created since the start.
    pub fn batch_count(&self) -> usize {
        self.shared.lock().batches.count()
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
        .route("/v1/responses", post(responses))
        .route("/v1/messages", post(anthropic_messages))
        .route("/v1beta/models/{call}", post(gemini))
        .route("/v1/models/{call}", post(gemini))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(azure_chat_deployment),
        )
        .route("/openai/v1/chat/completions", post(azure_chat_v1))
        .route("/openai/responses", post(azure_responses))
        .route("/openai/v1/responses", post(azure_responses))
        .route("/api/chat", post(ollama_chat))
        .route("/v1/files", post(crate::batches::openai_upload))
        .route(
            "/v1/files/{id}/content",
            get(crate::batches::openai_file_content),
        )
        .route("/v1/batches", post(crate::batches::openai_create))
        .route("/v1/batches/{id}", get(crate::batches::v1_batch_get))
        .route(
            "/v1/messages/batches",
            post(crate::batches::anthropic_create),
        )
        .route(
            "/v1/messages/batches/{id}",
            get(crate::batches::anthropic_get),
        )
        .route(
            "/v1/messages/batches/{id}/results",
            get(crate::batches::anthropic_results),
        )
        .route("/v1beta/batches/{id}", get(crate::batches::gemini_get))
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

pub(crate) struct Shared {
    state: Mutex<ServerState>,
}

pub(crate) struct ServerState {
    pub(crate) script: Script,
    log: Vec<RecordedRequest>,
    request_count: usize,
    next_response_number: u64,
    /// Uploaded files and batch jobs (`crate::batches`).
    pub(crate) batches: crate::batches::BatchStore,
}

impl Shared {
    fn new(script: Script) -> Shared {
        Shared {
            state: Mutex::new(ServerState {
                script,
                log: Vec::new(),
                request_count: 0,
                next_response_number: 1,
                batches: crate::batches::BatchStore::default(),
            }),
        }
    }

    /// A panicking test thread must not take the server down with it: the state stays usable.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ServerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides the reply to one request and logs it, in one step so that concurrent requests
    /// take queued faults in arrival order.
    pub(crate) fn plan(
        &self,
        incoming: &Incoming,
        request: RequestParts,
        raw_body: Value,
        call: Result<ChatCall, String>,
    ) -> (Reply, Option<Duration>) {
        let format = incoming.format;
        let mut state = self.lock();
        let latency = state.script.fixed_latency_setting();
        let authorized = state
            .script
            .required_api_key()
            .is_none_or(|key| incoming.authorized(&request, key));
        let (reply, fault) = match &call {
            Err(message) => (Reply::error(400, format.error_body(400, message, "")), None),
            Ok(_) if !authorized => {
                let (status, body) = format.unauthorized();
                (Reply::error(status, body), None)
            }
            Ok(_)
                if format == Format::Anthropic && request.header("anthropic-version").is_none() =>
            {
                (
                    Reply::error(
                        400,
                        format.error_body(400, "anthropic-version: header is required", ""),
                    ),
                    None,
                )
            }
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
                        body: body.clone().unwrap_or_else(|| {
                            format.error_body(*code, &wire::injected(*code), &call.model)
                        }),
                    },
                    _ if decision.refuse_images && !call.image_urls.is_empty() => Reply::error(
                        400,
                        format.error_body(
                            400,
                            &format!(
                                "The model `{}` does not support image input (versus-testkit)",
                                call.model
                            ),
                            &call.model,
                        ),
                    ),
                    fault => {
                        let answer = decision.answer.clone().unwrap_or_else(|| {
                            wire::default_answer(&call.model, &call.last_user_text)
                        });
                        let usage = FakeUsage {
                            prompt: call.prompt_words,
                            answer: wire::word_count(&answer),
                            thinking: decision.thinking.as_deref().map_or(0, wire::word_count),
                        };
                        Reply::Answer(AnswerPlan {
                            format,
                            header: ResponseHeader {
                                id: format!(
                                    "chatcmpl-versus-testkit-{}",
                                    state.next_response_number
                                ),
                                created: unix_seconds(),
                                model: call.model.clone(),
                            },
                            answer,
                            thinking: decision.thinking.clone(),
                            stream: call.stream,
                            include_usage: call.include_usage,
                            usage,
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
            let authorization = request.header("authorization").map(str::to_owned);
            let (model, last_user_text, stream, include_usage, params, image_urls) = match call {
                Ok(call) => (
                    call.model,
                    call.last_user_text,
                    call.stream,
                    call.include_usage,
                    call.params,
                    call.image_urls,
                ),
                Err(_) => Default::default(),
            };
            state.log.push(RecordedRequest {
                format,
                azure: incoming.azure,
                batch: incoming.batch.clone(),
                path: request.path,
                headers: request.headers,
                messages: raw_body
                    .get("messages")
                    .or_else(|| raw_body.get("contents"))
                    .or_else(|| raw_body.get("input"))
                    .cloned()
                    .unwrap_or(Value::Null),
                body: raw_body,
                model,
                last_user_text,
                stream,
                include_usage,
                params,
                image_urls,
                authorization,
                status,
                fault,
                received_at: request.received_at,
            });
        }
        (reply, latency)
    }
}

/// Which route a request came to: its format, and what the URL says in place of the body.
#[derive(Clone)]
pub(crate) struct Incoming {
    pub(crate) format: Format,
    pub(crate) azure: bool,
    /// The model named in the path (Gemini's model, Azure's deployment).
    pub(crate) model: Option<String>,
    /// Whether the path asks for a stream (Gemini's `streamGenerateContent`).
    pub(crate) stream: Option<bool>,
    /// The batch job a request belongs to (`None`: a live call).
    pub(crate) batch: Option<String>,
}

/// The parts of a request the fake reads besides its body.
#[derive(Clone)]
pub(crate) struct RequestParts {
    pub(crate) path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    received_at: Instant,
}

impl RequestParts {
    pub(crate) fn new(uri: &Uri, headers: &HeaderMap, received_at: Instant) -> RequestParts {
        RequestParts {
            path: uri
                .path_and_query()
                .map_or_else(|| uri.path().to_string(), |pq| pq.as_str().to_string()),
            query: uri
                .query()
                .map(|query| {
                    query
                        .split('&')
                        .filter_map(|pair| pair.split_once('='))
                        .map(|(name, value)| (name.to_string(), value.to_string()))
                        .collect()
                })
                .unwrap_or_default(),
            headers: headers
                .iter()
                .map(|(name, value)| {
                    (
                        name.as_str().to_ascii_lowercase(),
                        String::from_utf8_lossy(value.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            received_at,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }

    fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }
}

impl Incoming {
    /// Whether the key arrived the way this format sends it.
    pub(crate) fn authorized(&self, request: &RequestParts, key: &str) -> bool {
        let bearer = request.header("authorization") == Some(format!("Bearer {key}").as_str());
        match self.format {
            _ if self.azure => bearer || request.header("api-key") == Some(key),
            Format::ChatCompletions | Format::Responses | Format::Ollama => bearer,
            Format::Anthropic => bearer || request.header("x-api-key") == Some(key),
            Format::Gemini => {
                request.header("x-goog-api-key") == Some(key) || request.query("key") == Some(key)
            }
        }
    }

    /// Reads the body as this format's request.
    pub(crate) fn parse(&self, body: &[u8]) -> (Value, Result<ChatCall, String>) {
        let (raw, call) = match self.format {
            Format::ChatCompletions => wire::parse_chat_call(body),
            Format::Responses => formats::responses::parse(body),
            Format::Anthropic => formats::anthropic::parse(body),
            Format::Gemini => formats::gemini::parse(
                body,
                self.model.as_deref().unwrap_or_default(),
                self.stream.unwrap_or(false),
            ),
            Format::Ollama => formats::ollama::parse(body),
        };
        // An Azure deployment in the path is the model, whatever the body says.
        let call = call.map(|mut call| {
            if let (true, Some(deployment)) = (self.azure, &self.model) {
                call.model.clone_from(deployment);
            }
            call
        });
        (raw, call)
    }
}

pub(crate) fn unix_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// Answers one chat request of any format.
async fn answer(
    shared: Arc<Shared>,
    incoming: Incoming,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = RequestParts::new(&uri, &headers, Instant::now());
    let (raw_body, call) = incoming.parse(&body);
    let (reply, latency) = shared.plan(&incoming, request, raw_body, call);
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    reply.into_response().await
}

pub(crate) fn incoming(format: Format) -> Incoming {
    Incoming {
        format,
        azure: false,
        model: None,
        stream: None,
        batch: None,
    }
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(
        shared,
        incoming(Format::ChatCompletions),
        uri,
        headers,
        body,
    )
    .await
}

async fn responses(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(shared, incoming(Format::Responses), uri, headers, body).await
}

async fn anthropic_messages(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(shared, incoming(Format::Anthropic), uri, headers, body).await
}

async fn ollama_chat(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    answer(shared, incoming(Format::Ollama), uri, headers, body).await
}

/// `models/{model}:generateContent` or `models/{model}:streamGenerateContent?alt=sse`.
async fn gemini(
    State(shared): State<Arc<Shared>>,
    Path(call): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (model, method) = call.rsplit_once(':').unwrap_or((call.as_str(), ""));
    if method == "batchGenerateContent" {
        return crate::batches::gemini_create(shared, model, uri, headers, body);
    }
    let stream = match method {
        "generateContent" => false,
        "streamGenerateContent" if uri.query().is_some_and(|q| q.contains("alt=sse")) => true,
        "streamGenerateContent" => {
            return json_response(
                StatusCode::BAD_REQUEST,
                formats::gemini::error_body(
                    400,
                    "versus-testkit streams Gemini answers as SSE only: add ?alt=sse",
                ),
            )
        }
        other => {
            return json_response(
                StatusCode::NOT_FOUND,
                formats::gemini::error_body(404, &format!("unknown method `{other}`")),
            )
        }
    };
    let incoming = Incoming {
        model: Some(model.to_string()),
        stream: Some(stream),
        ..incoming(Format::Gemini)
    };
    answer(shared, incoming, uri, headers, body).await
}

/// Azure's classic URL, which needs `api-version`.
async fn azure_chat_deployment(
    State(shared): State<Arc<Shared>>,
    Path(deployment): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !uri.query().is_some_and(|q| q.contains("api-version=")) {
        return json_response(
            StatusCode::NOT_FOUND,
            wire::openai_error_body(
                "Resource not found: the api-version query parameter is missing",
                "invalid_request_error",
                Some("404"),
            ),
        );
    }
    let incoming = Incoming {
        azure: true,
        model: Some(deployment),
        ..incoming(Format::ChatCompletions)
    };
    answer(shared, incoming, uri, headers, body).await
}

async fn azure_chat_v1(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let incoming = Incoming {
        azure: true,
        ..incoming(Format::ChatCompletions)
    };
    answer(shared, incoming, uri, headers, body).await
}

async fn azure_responses(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let incoming = Incoming {
        azure: true,
        ..incoming(Format::Responses)
    };
    answer(shared, incoming, uri, headers, body).await
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
            "Unknown endpoint: versus-testkit serves /v1/chat/completions, /v1/responses, /v1/messages, /v1/models/{model}:generateContent, the batch APIs, Azure's /openai/... URLs, /api/chat and /v1/models.",
            "invalid_request_error",
            None,
        ),
    )
}

pub(crate) fn json_response(status: StatusCode, body: impl Into<Body>) -> Response {
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
pub(crate) enum Reply {
    Error {
        status: u16,
        retry_after: Option<String>,
        body: String,
    },
    Answer(AnswerPlan),
}

/// A 200 answer, with the fault that bends it, if any.
pub(crate) struct AnswerPlan {
    format: Format,
    header: ResponseHeader,
    answer: String,
    thinking: Option<String>,
    stream: bool,
    include_usage: bool,
    /// Sent unless the fault is `NoUsage`.
    usage: FakeUsage,
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
    /// What a batch reports for this answer: a status and the body a live call would have got
    /// whole (faults that only make sense on a live connection become a 500).
    pub(crate) fn batch_result(&self) -> (u16, Value) {
        let writer = self.format.writer();
        let answer = self.answer();
        match self.fault {
            Some(Fault::Blocked) => (200, writer.whole_blocked(&answer)),
            Some(Fault::MalformedJson) => (200, Value::String("{oops".to_string())),
            Some(Fault::CutStream { .. } | Fault::ErrorEvent { .. } | Fault::Delay(_)) => {
                let body = self
                    .format
                    .error_body(500, &wire::injected(500), &self.header.model);
                (500, serde_json::from_str(&body).unwrap_or(Value::Null))
            }
            _ => (200, writer.whole(&answer)),
        }
    }

    fn answer(&self) -> Answer<'_> {
        Answer {
            header: &self.header,
            text: &self.answer,
            thinking: self.thinking.as_deref(),
            usage: (self.fault != Some(Fault::NoUsage)).then_some(self.usage),
            include_usage: self.include_usage,
        }
    }

    /// A whole, non-streamed answer.
    fn whole(&self) -> Response {
        let writer = self.format.writer();
        let answer = self.answer();
        match self.fault {
            Some(Fault::MalformedJson) => json_response(
                StatusCode::OK,
                format!(
                    r#"{{"id": "{}", "object": "chat.completion", choices: [oops"#,
                    self.header.id
                ),
            ),
            Some(Fault::CutStream { .. }) => {
                let full = Bytes::from(writer.whole(&answer).to_string());
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
            Some(Fault::ErrorEvent { .. }) => json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                self.format
                    .error_body(500, &wire::injected(500), &self.header.model),
            ),
            Some(Fault::Blocked) => {
                json_response(StatusCode::OK, writer.whole_blocked(&answer).to_string())
            }
            _ => json_response(StatusCode::OK, writer.whole(&answer).to_string()),
        }
    }

    /// A streamed answer in the request's format (SSE, or NDJSON for Ollama).
    fn streamed(&self) -> Response {
        let mut writer = self.format.writer();
        let answer = self.answer();
        let mut pieces = writer.start(&answer);
        let deltas = wire::answer_deltas(&self.answer);
        let think = |writer: &mut Box<dyn formats::Writer>, pieces: &mut Vec<Bytes>| {
            if let Some(thinking) = &self.thinking {
                for delta in wire::answer_deltas(thinking) {
                    pieces.extend(writer.thinking(&answer, &delta));
                }
            }
        };
        let mut cut = false;
        match self.fault {
            Some(Fault::CutStream { after_chunks }) => {
                think(&mut writer, &mut pieces);
                for delta in deltas.iter().take(after_chunks) {
                    pieces.extend(writer.text(&answer, delta));
                }
                cut = true;
            }
            Some(Fault::ErrorEvent { after_chunks }) => {
                think(&mut writer, &mut pieces);
                for delta in deltas.iter().take(after_chunks) {
                    pieces.extend(writer.text(&answer, delta));
                }
                pieces.extend(writer.error_event(&answer));
            }
            Some(Fault::MalformedJson) => pieces.extend(writer.malformed(&answer)),
            Some(Fault::Blocked) => pieces.extend(writer.blocked(&answer)),
            _ => {
                think(&mut writer, &mut pieces);
                for delta in &deltas {
                    pieces.extend(writer.text(&answer, delta));
                }
                pieces.extend(writer.finish(&answer));
            }
        }
        let mut response = response(
            StatusCode::OK,
            self.format.stream_content_type(),
            streamed_body(pieces, self.chunk_delay, cut),
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
