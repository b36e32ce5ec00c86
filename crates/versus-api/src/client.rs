//! `ApiClient`: a `ChatModel` over a provider's HTTP API (OpenAI chat completions and the servers
//! that copy it, the Responses API, Anthropic, Gemini, Azure OpenAI, Ollama), with streaming,
//! per-attempt timeouts, response limits and the retry loop; each wire format is a `Protocol`.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::{Response, Url};
use versus_core::redact::redact_url;
use versus_core::{
    ChatModel, ChatRequest, Completion, FinishReason, ModelError, ServerTimings, Timings, Usage,
};

use crate::error::ApiError;
use crate::fault::{Fault, Target};
use crate::lines::LineDecoder;
use crate::protocol::{Framing, Problem, Protocol, StreamItem, Update, UsageReport};
use crate::retry::{self, RetryPolicy};
use crate::sse::{SseDecoder, SseEvent};

/// OpenAI's own API root.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// The default limit on one attempt, body included: long answers from slow models take minutes.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// An error body is only read this far: enough for the message, not a whole HTML page.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// How much of a malformed body is quoted back in the error.
const MALFORMED_QUOTE_LIMIT: usize = 120;

const USER_AGENT: &str = concat!("versus/", env!("CARGO_PKG_VERSION"));

/// The default cap on one response body (JSON or a whole SSE stream), as the suite's
/// `max_response_bytes` defaults to.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize =
    versus_core::suite::DEFAULT_MAX_RESPONSE_BYTES as usize;

/// How much of a server's answer one attempt reads before it fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseLimits {
    /// The most bytes of one response body (a JSON answer, or a whole stream).
    pub max_body_bytes: usize,
    /// The longest line of an SSE stream (and the longest data of one event).
    pub max_sse_line_bytes: usize,
}

impl Default for ResponseLimits {
    fn default() -> ResponseLimits {
        ResponseLimits {
            max_body_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_sse_line_bytes: crate::sse::DEFAULT_MAX_SSE_LINE_BYTES,
        }
    }
}

/// Where and how to reach one model.
#[derive(Clone)]
pub struct ClientConfig {
    /// The API root, e.g. `http://127.0.0.1:9000/v1`; requests go to `{base_url}/chat/completions`.
    pub base_url: String,
    /// The model name sent on the wire.
    pub model: String,
    /// Sent as `Authorization: Bearer ...`. Never shown: `Debug` redacts it and every message is
    /// scrubbed of it.
    pub api_key: Option<String>,
    /// The environment variable the key came from (`OPENAI_API_KEY`), named in auth errors.
    pub key_hint: Option<String>,
    /// Ask for an SSE stream (text as it is generated, and time to first token).
    pub stream: bool,
    /// The limit on one attempt, from sending the request to the end of the body.
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Caps on the answer's size; beyond them the attempt fails (and is not retried).
    pub limits: ResponseLimits,
}

impl ClientConfig {
    /// A streaming configuration without a key, with the default timeout and retry policy.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            model: model.into(),
            api_key: None,
            key_hint: None,
            stream: true,
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            limits: ResponseLimits::default(),
        }
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &redact_url(&self.base_url))
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("key_hint", &self.key_hint)
            .field("stream", &self.stream)
            .field("timeout", &self.timeout)
            .field("retry", &self.retry)
            .field("limits", &self.limits)
            .finish()
    }
}

/// Which API a client speaks, with what that API needs besides the base URL, model and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Api {
    /// OpenAI's `/chat/completions`, and every server that copies it.
    ChatCompletions,
    /// OpenAI's `/responses`.
    Responses,
    /// Anthropic's `/v1/messages`.
    Anthropic,
    /// Google's Gemini API (`models/{model}:generateContent`).
    Gemini,
    /// Azure OpenAI: the model is a deployment.
    Azure(AzureOptions),
    /// Ollama's native `/api/chat`.
    Ollama,
}

/// How an Azure OpenAI deployment is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureOptions {
    /// `Some`: the classic URLs (`/openai/deployments/{deployment}/...?api-version=...`);
    /// `None`: the v1 API (`/openai/v1/...`, the deployment named in the body).
    pub api_version: Option<String>,
    pub auth: AzureAuth,
    /// Chat completions or the Responses API.
    pub api: versus_core::OpenAiApi,
}

/// What Azure's key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureAuth {
    /// A resource key, sent as `api-key`.
    ApiKey,
    /// A Microsoft Entra ID token (`AZURE_OPENAI_AD_TOKEN`), sent as `Authorization: Bearer`.
    BearerToken,
}

/// A chat model behind a provider's HTTP API (OpenAI chat completions, the Responses API,
/// Anthropic, Gemini, Azure OpenAI, Ollama). Cloning is cheap and clones share one connection
/// pool.
#[derive(Clone)]
pub struct ApiClient {
    pub(crate) inner: Arc<Inner>,
}

/// The OpenAI chat-completions client: an [`ApiClient`] made with [`ApiClient::new`].
pub type OpenAiClient = ApiClient;

pub(crate) struct Inner {
    http: reqwest::Client,
    pub(crate) api: Api,
    pub(crate) protocol: Box<dyn Protocol>,
    endpoint: Url,
    /// The key's headers, marked sensitive so that they are never printed.
    auth: Vec<(HeaderName, HeaderValue)>,
    pub(crate) config: ClientConfig,
    pub(crate) target: Target,
}

impl fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiClient")
            .field("format", &self.inner.protocol.format_name())
            .field("endpoint", &self.inner.target.url)
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

impl ApiClient {
    /// An OpenAI chat-completions client (the format most servers speak). Checks the
    /// configuration and builds the HTTP client; no request is sent yet.
    pub fn new(config: ClientConfig) -> Result<ApiClient, ApiError> {
        ApiClient::for_api(Api::ChatCompletions, config)
    }

    /// A client for `api`; `config.base_url` is that API's root (see each protocol).
    pub fn for_api(api: Api, config: ClientConfig) -> Result<ApiClient, ApiError> {
        let protocol: Box<dyn Protocol> = match &api {
            Api::ChatCompletions => Box::new(crate::openai_chat::ChatCompletions::new(
                &config.base_url,
                &config.model,
            )?),
            Api::Responses => Box::new(crate::responses::Responses::new(
                crate::responses::responses_url(&config.base_url)?,
                &config.model,
                crate::responses::ResponsesAuth::Bearer,
            )),
            Api::Anthropic => Box::new(crate::anthropic::Messages::new(
                &config.base_url,
                &config.model,
            )?),
            Api::Gemini => Box::new(crate::gemini::Gemini::new(&config.base_url, &config.model)?),
            Api::Azure(options) => {
                crate::openai_chat::azure(&config.base_url, &config.model, options)?
            }
            Api::Ollama => Box::new(crate::ollama::Ollama::new(&config.base_url, &config.model)?),
        };
        let endpoint = protocol.url(config.stream);
        let key = config
            .api_key
            .as_ref()
            .map(|key| key.trim().to_string())
            .filter(|key| !key.is_empty());
        let auth = match &key {
            Some(key) => protocol
                .auth_headers(key)
                .into_iter()
                .map(|(name, value)| {
                    let mut value =
                        HeaderValue::from_str(&value).map_err(|_| ApiError::InvalidApiKey {
                            key_hint: config.key_hint.clone(),
                        })?;
                    value.set_sensitive(true);
                    Ok((name, value))
                })
                .collect::<Result<Vec<_>, ApiError>>()?,
            None => Vec::new(),
        };
        let http = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .build()
            .map_err(|error| ApiError::HttpClient {
                reason: error.to_string(),
            })?;
        let target = Target {
            url: redact_url(endpoint.as_str()),
            model: config.model.clone(),
            secret: key,
            key_hint: config.key_hint.clone(),
            timeout: config.timeout,
            format: protocol.format_name(),
        };
        Ok(ApiClient {
            inner: Arc::new(Inner {
                http,
                api,
                protocol,
                endpoint,
                auth,
                config,
                target,
            }),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The full URL requests go to (`.../chat/completions`, `.../v1/messages`, ...), its
    /// user-info and query values redacted (`versus_core::redact`).
    pub fn endpoint(&self) -> &str {
        &self.inner.target.url
    }
}

/// Where a key sent to `base_url` goes: what a user is told, and whether it travels safely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// `host` or `host:port`, nothing else of the URL (no user-info, path or query).
    pub host: String,
    /// The scheme is https.
    pub encrypted: bool,
    /// The host is this machine (`localhost`, 127.0.0.0/8, `::1`).
    pub loopback: bool,
}

/// Reads `base_url` as `OpenAiClient` will.
pub fn destination(base_url: &str) -> Result<Destination, ApiError> {
    let url = endpoint_url(base_url)?;
    let host = url.host_str().unwrap_or_default().to_string();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = match bare.parse::<std::net::IpAddr>() {
        Ok(address) => address.is_loopback(),
        Err(_) => {
            let name = bare.trim_end_matches('.').to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
    };
    Ok(Destination {
        host: match url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        },
        encrypted: url.scheme() == "https",
        loopback,
    })
}

/// `{base_url}/chat/completions`, whatever trailing slashes the base has. A base that already
/// ends in `/chat/completions` (a common slip) is taken as the endpoint itself.
fn endpoint_url(base_url: &str) -> Result<Url, ApiError> {
    api_url(base_url, &["chat", "completions"])
}

/// `base_url` with `path` appended, whatever trailing slashes the base has. Where the base
/// already ends with the start of `path` (an Anthropic base ending in `/v1`, a Gemini one in
/// `/v1beta`, a whole endpoint), only the rest is appended. The scheme must be http(s) and there
/// must be a host; the query is kept.
pub(crate) fn api_url(base_url: &str, path: &[&str]) -> Result<Url, ApiError> {
    let invalid = |reason: String| ApiError::InvalidBaseUrl {
        url: redact_url(base_url),
        reason,
    };
    let mut url = Url::parse(base_url.trim()).map_err(|error| invalid(error.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid(format!(
            "the scheme must be http or https, not `{}`",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("there is no host".to_string()));
    }
    let segments: Vec<String> = url
        .path_segments()
        .map(|segments| {
            segments
                .filter(|segment| !segment.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let overlap = (0..=path.len().min(segments.len()))
        .rev()
        .find(|&k| {
            segments[segments.len() - k..]
                .iter()
                .zip(&path[..k])
                .all(|(have, want)| have == want)
        })
        .unwrap_or(0);
    url.path_segments_mut()
        .map_err(|()| invalid("it cannot have a path".to_string()))?
        .clear()
        .extend(&segments)
        .extend(&path[overlap..]);
    Ok(url)
}

impl ApiClient {
    /// Answers one request, passing text to `on_text` as it arrives; what `ChatModel::complete`
    /// is meant to do (see the note on that impl).
    ///
    /// Retries transient faults (429, 408, 5xx, Anthropic's 529, broken connections or streams,
    /// timeouts, malformed answers) up to `retry.max_retries` times, waiting what the server
    /// asks (`retry-after-ms`, `Retry-After`) or backing off; a retry does not show text twice.
    pub async fn complete_streaming(
        &self,
        request: &ChatRequest,
        on_text: &mut (dyn FnMut(&str) + Send),
    ) -> Result<Completion, ModelError> {
        let inner = &*self.inner;
        let body = self.request_body(request)?;
        let retry = &inner.config.retry;
        let mut forwarder = TextForwarder::new(on_text);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let fault = match self.try_once(body.clone(), &mut forwarder).await {
                Ok(answer) => return Ok(answer.into_completion(forwarder, attempts)),
                Err(fault) => fault,
            };
            if !fault.retryable || attempts > retry.max_retries {
                return Err(fault.into_model_error(attempts, &inner.target));
            }
            let delay = fault
                .retry_after
                .unwrap_or_else(|| retry.backoff(attempts - 1));
            tokio::time::sleep(delay).await;
        }
    }
}

impl ApiClient {
    /// The request's body in this client's wire format.
    pub(crate) fn request_body(&self, request: &ChatRequest) -> Result<Bytes, ModelError> {
        let inner = &*self.inner;
        Ok(Bytes::from(
            inner.protocol.body(request, inner.config.stream)?,
        ))
    }

    /// One attempt under the per-attempt timeout: the unit the retry loop here and an endpoint
    /// pool (`pool.rs`) both repeat.
    pub(crate) async fn try_once(
        &self,
        body: Bytes,
        forwarder: &mut TextForwarder<'_, '_>,
    ) -> Result<Answer, Fault> {
        let inner = &*self.inner;
        forwarder.start_attempt();
        let started = Instant::now();
        let attempt = inner.attempt(body, started, forwarder);
        match tokio::time::timeout(inner.config.timeout, attempt).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Err(Fault::timeout(&inner.target)),
        }
    }
}

#[async_trait]
impl ChatModel for ApiClient {
    async fn complete(
        &self,
        request: &ChatRequest,
        // Spelled with `for<'t>` because `#[async_trait]` would otherwise give the elided `&str`
        // a caller-chosen lifetime (dtolnay/async-trait#257), which network text cannot meet.
        on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Completion, ModelError> {
        self.complete_streaming(request, on_text).await
    }
}

/// What one successful attempt produced, apart from the answer's text (which the forwarder
/// holds).
pub(crate) struct Answer {
    progress: Progress,
    latency: Duration,
}

impl Answer {
    /// The tokens the answer's usage reports (prompt and completion), when it reports both.
    pub(crate) fn tokens(&self) -> Option<u64> {
        let usage = &self.progress.usage;
        usage
            .prompt
            .zip(usage.completion)
            .map(|(prompt, completion)| prompt.saturating_add(completion))
    }

    pub(crate) fn into_completion(
        self,
        forwarder: TextForwarder<'_, '_>,
        attempts: u32,
    ) -> Completion {
        let progress = self.progress;
        let usage = progress.usage.prompt.zip(progress.usage.completion).map(
            |(prompt_tokens, completion_tokens)| Usage {
                reasoning_tokens: progress.usage.reasoning,
                cached_prompt_tokens: progress.usage.cached,
                cache_write_tokens: progress.usage.cache_write,
                ..Usage::new(prompt_tokens, completion_tokens)
            },
        );
        Completion {
            text: forwarder.attempt_text,
            finish_reason: progress.finish_reason.unwrap_or(FinishReason::Unknown),
            usage,
            timings: Timings {
                latency_ms: millis(self.latency),
                ttft_ms: progress.ttft.map(millis),
            },
            served_model: progress.served_model,
            attempts,
            thinking: Some(progress.thinking).filter(|thinking| !thinking.is_empty()),
            server_timings: progress.server_timings,
            via_batch: false,
        }
    }
}

/// A completion from a whole answer read outside a live call (a batch's result): the protocol's
/// updates, with no timings of its own (`latency_ms` 0; the caller marks it as a batch answer).
pub(crate) fn completion_from_whole(
    protocol: &dyn Protocol,
    body: &str,
) -> Result<Completion, Problem> {
    let updates = protocol.read_whole(body)?;
    let mut text = String::new();
    let mut shown = |piece: &str| text.push_str(piece);
    let mut forwarder = TextForwarder::new(&mut shown);
    let mut progress = Progress::default();
    progress.apply(updates, Instant::now(), &mut forwarder);
    progress.ttft = None;
    let answer = Answer {
        progress,
        latency: Duration::ZERO,
    };
    Ok(answer.into_completion(forwarder, 1))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Passes text to the caller's `on_text` so that a retry does not show text twice.
///
/// When a stream is cut and retried, the new attempt usually starts with the same words (greedy
/// decoding, cached answers): those are held back until the new answer gets past what was already
/// shown. If the new answer differs, it is shown whole from its start, so that what the caller
/// displays always ends with the complete final answer.
pub(crate) struct TextForwarder<'a, 'f> {
    on_text: &'a mut (dyn FnMut(&str) + Send + 'f),
    /// The text of the attempt in progress.
    attempt_text: String,
    /// The text the caller was last shown, as it ends what they have seen.
    shown: String,
    /// The attempt in progress is still repeating `shown`.
    replaying: bool,
}

impl<'a, 'f> TextForwarder<'a, 'f> {
    pub(crate) fn new(on_text: &'a mut (dyn FnMut(&str) + Send + 'f)) -> TextForwarder<'a, 'f> {
        TextForwarder {
            on_text,
            attempt_text: String::new(),
            shown: String::new(),
            replaying: false,
        }
    }

    fn start_attempt(&mut self) {
        self.attempt_text.clear();
        self.replaying = !self.shown.is_empty();
    }

    fn push(&mut self, delta: &str) {
        if delta.is_empty() {
            return;
        }
        self.attempt_text.push_str(delta);
        if !self.replaying {
            (self.on_text)(delta);
            self.shown.push_str(delta);
            return;
        }
        if self.shown.starts_with(self.attempt_text.as_str()) {
            return;
        }
        self.replaying = false;
        if self.attempt_text.starts_with(self.shown.as_str()) {
            (self.on_text)(&self.attempt_text[self.shown.len()..]);
        } else {
            (self.on_text)(&self.attempt_text);
        }
        self.shown.clone_from(&self.attempt_text);
    }
}

/// How the body of a successful response is to be read.
#[derive(Debug, PartialEq, Eq)]
enum BodyFormat {
    EventStream,
    Ndjson,
    Json,
}

/// Decided by the content type first (servers that do not stream answer JSON even when asked to),
/// then by what was asked for and how the protocol streams.
fn body_format(headers: &HeaderMap, asked_to_stream: bool, framing: Framing) -> BodyFormat {
    let content_type = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let media_type = content_type.split(';').next().unwrap_or("").trim();
    if media_type == "text/event-stream" {
        BodyFormat::EventStream
    } else if media_type == "application/x-ndjson" || media_type == "application/jsonl" {
        BodyFormat::Ndjson
    } else if media_type == "application/json" || media_type.ends_with("+json") {
        BodyFormat::Json
    } else if asked_to_stream {
        match framing {
            Framing::Sse => BodyFormat::EventStream,
            Framing::Ndjson => BodyFormat::Ndjson,
        }
    } else {
        BodyFormat::Json
    }
}

/// What an answer has delivered so far.
#[derive(Default)]
struct Progress {
    finish_reason: Option<FinishReason>,
    usage: UsageReport,
    served_model: Option<String>,
    thinking: String,
    server_timings: Option<ServerTimings>,
    /// To the first piece of the answer's text (thinking before it counts in).
    ttft: Option<Duration>,
    /// The protocol's end of answer arrived.
    done: bool,
}

impl Progress {
    fn apply(
        &mut self,
        updates: Vec<Update>,
        started: Instant,
        forwarder: &mut TextForwarder<'_, '_>,
    ) {
        for update in updates {
            match update {
                Update::Text(text) => {
                    if !text.is_empty() {
                        self.ttft.get_or_insert_with(|| started.elapsed());
                        forwarder.push(&text);
                    }
                }
                Update::Thinking(text) => self.thinking.push_str(&text),
                Update::Finish(reason) => self.finish_reason = Some(reason),
                Update::Usage(report) => {
                    let usage = &mut self.usage;
                    usage.prompt = report.prompt.or(usage.prompt);
                    usage.completion = report.completion.or(usage.completion);
                    usage.reasoning = report.reasoning.or(usage.reasoning);
                    usage.cached = report.cached.or(usage.cached);
                    usage.cache_write = report.cache_write.or(usage.cache_write);
                }
                Update::Model(model) => {
                    if !model.is_empty() {
                        self.served_model = Some(model);
                    }
                }
                Update::ServerTimings(timings) => self.server_timings = timings.nonempty(),
                Update::Done => self.done = true,
            }
        }
    }
}

/// Items decoded from a streamed body, SSE or NDJSON.
enum ItemDecoder {
    Sse(SseDecoder),
    Lines(LineDecoder),
}

/// One decoded item, owned.
struct OwnedItem {
    event: Option<String>,
    data: String,
}

impl ItemDecoder {
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<OwnedItem>, String> {
        match self {
            ItemDecoder::Sse(decoder) => decoder
                .feed(bytes)
                .map(|events| events.into_iter().map(OwnedItem::from).collect())
                .map_err(|error| error.to_string()),
            ItemDecoder::Lines(decoder) => decoder
                .feed(bytes)
                .map(|lines| lines.into_iter().map(OwnedItem::line).collect())
                .map_err(|error| error.to_string()),
        }
    }

    fn finish(&mut self) -> Vec<OwnedItem> {
        match self {
            ItemDecoder::Sse(decoder) => {
                decoder.finish().map(OwnedItem::from).into_iter().collect()
            }
            ItemDecoder::Lines(decoder) => {
                decoder.finish().map(OwnedItem::line).into_iter().collect()
            }
        }
    }
}

impl From<SseEvent> for OwnedItem {
    fn from(event: SseEvent) -> OwnedItem {
        OwnedItem {
            event: event.event,
            data: event.data,
        }
    }
}

impl OwnedItem {
    fn line(data: String) -> OwnedItem {
        OwnedItem { event: None, data }
    }
}

impl Inner {
    /// A request that is not a chat answer (the batch APIs' files, jobs and results): sent with
    /// the key's and the protocol's headers, retried like an answer (429 with its wait, 5xx,
    /// broken connections, timeouts), its body read up to the response limit.
    pub(crate) async fn fetch(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<(Bytes, String)>,
    ) -> Result<Vec<u8>, ModelError> {
        let retry = &self.config.retry;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let attempt = self.fetch_once(method.clone(), url.clone(), body.clone());
            let fault = match tokio::time::timeout(self.config.timeout, attempt).await {
                Ok(Ok(bytes)) => return Ok(bytes),
                Ok(Err(fault)) => fault,
                Err(_elapsed) => Fault::timeout(&self.target),
            };
            if !fault.retryable || attempts > retry.max_retries {
                return Err(fault.into_model_error(attempts, &self.target));
            }
            let delay = fault
                .retry_after
                .unwrap_or_else(|| retry.backoff(attempts - 1));
            tokio::time::sleep(delay).await;
        }
    }

    async fn fetch_once(
        &self,
        method: reqwest::Method,
        url: Url,
        body: Option<(Bytes, String)>,
    ) -> Result<Vec<u8>, Fault> {
        let mut request = self.http.request(method, url);
        if let Some((bytes, content_type)) = body {
            request = request.header(CONTENT_TYPE, content_type).body(bytes);
        }
        for (name, value) in self.protocol.fixed_headers() {
            request = request.header(name, value);
        }
        for (name, value) in &self.auth {
            request = request.header(name.clone(), value.clone());
        }
        let mut response = request
            .send()
            .await
            .map_err(|error| Fault::send(&error, &self.target))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry::server_delay(response.headers(), SystemTime::now());
            let body = read_capped(response, ERROR_BODY_LIMIT).await;
            let key_rejected = self.protocol.rejects_key(status.as_u16(), &body);
            return Err(Fault::from_status(
                status,
                &body,
                retry_after,
                key_rejected,
                &self.target,
            ));
        }
        let limit = self.config.limits.max_body_bytes;
        let mut body = Vec::new();
        while let Some(bytes) = response
            .chunk()
            .await
            .map_err(|error| Fault::read(&error, &self.target))?
        {
            if body.len().saturating_add(bytes.len()) > limit {
                return Err(self.body_too_large());
            }
            body.extend_from_slice(&bytes);
        }
        Ok(body)
    }

    /// One HTTP request, from sending it to the end of the body.
    async fn attempt(
        &self,
        body: Bytes,
        started: Instant,
        forwarder: &mut TextForwarder<'_, '_>,
    ) -> Result<Answer, Fault> {
        let mut request = self
            .http
            .post(self.endpoint.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        for (name, value) in self.protocol.fixed_headers() {
            request = request.header(name, value);
        }
        for (name, value) in &self.auth {
            request = request.header(name.clone(), value.clone());
        }
        let response = request
            .send()
            .await
            .map_err(|error| Fault::send(&error, &self.target))?;
        let status = response.status();
        if !status.is_success() {
            let retry_after = retry::server_delay(response.headers(), SystemTime::now());
            let should_retry = retry::server_says_retry(response.headers());
            let body = read_capped(response, ERROR_BODY_LIMIT).await;
            let key_rejected = self.protocol.rejects_key(status.as_u16(), &body);
            let mut fault =
                Fault::from_status(status, &body, retry_after, key_rejected, &self.target);
            if let (Some(retry), false) = (should_retry, key_rejected) {
                fault.retryable = retry;
            }
            return Err(fault);
        }
        let mut progress = Progress::default();
        match body_format(
            response.headers(),
            self.config.stream,
            self.protocol.framing(),
        ) {
            BodyFormat::EventStream => {
                let decoder = ItemDecoder::Sse(SseDecoder::with_limit(
                    self.config.limits.max_sse_line_bytes,
                ));
                self.read_stream(response, decoder, started, &mut progress, forwarder)
                    .await?
            }
            BodyFormat::Ndjson => {
                let decoder = ItemDecoder::Lines(LineDecoder::with_limit(
                    self.config.limits.max_sse_line_bytes,
                ));
                self.read_stream(response, decoder, started, &mut progress, forwarder)
                    .await?
            }
            BodyFormat::Json => {
                self.read_json(response, started, &mut progress, forwarder)
                    .await?
            }
        }
        Ok(Answer {
            progress,
            latency: started.elapsed(),
        })
    }

    async fn read_stream(
        &self,
        mut response: Response,
        mut decoder: ItemDecoder,
        started: Instant,
        progress: &mut Progress,
        forwarder: &mut TextForwarder<'_, '_>,
    ) -> Result<(), Fault> {
        let limits = self.config.limits;
        let mut received = 0usize;
        let mut ended = false;
        while !progress.done && !ended {
            let items = match response.chunk().await {
                Ok(Some(bytes)) => {
                    received = received.saturating_add(bytes.len());
                    if received > limits.max_body_bytes {
                        return Err(self.body_too_large());
                    }
                    decoder
                        .feed(&bytes)
                        .map_err(|error| Fault::too_large(&error, &self.target))?
                }
                Ok(None) => {
                    ended = true;
                    decoder.finish()
                }
                Err(error) => return Err(Fault::read(&error, &self.target)),
            };
            for item in items {
                let updates = self
                    .protocol
                    .read_item(StreamItem {
                        event: item.event.as_deref(),
                        data: &item.data,
                    })
                    .map_err(|problem| self.fault(problem))?;
                progress.apply(updates, started, forwarder);
                if progress.done {
                    break;
                }
            }
        }
        if !progress.done && progress.finish_reason.is_none() {
            return Err(Fault::cut_stream(&self.target));
        }
        Ok(())
    }

    async fn read_json(
        &self,
        mut response: Response,
        started: Instant,
        progress: &mut Progress,
        forwarder: &mut TextForwarder<'_, '_>,
    ) -> Result<(), Fault> {
        let limit = self.config.limits.max_body_bytes;
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(self.body_too_large());
        }
        let mut body = Vec::new();
        while let Some(bytes) = response
            .chunk()
            .await
            .map_err(|error| Fault::read(&error, &self.target))?
        {
            if body.len().saturating_add(bytes.len()) > limit {
                return Err(self.body_too_large());
            }
            body.extend_from_slice(&bytes);
        }
        let text = String::from_utf8_lossy(&body);
        let updates = self
            .protocol
            .read_whole(&text)
            .map_err(|problem| self.fault(problem))?;
        progress.apply(updates, started, forwarder);
        // A whole answer has no time to first token: it all arrives at once.
        progress.ttft = None;
        Ok(())
    }

    /// The fault for a problem the protocol found in an answer.
    pub(crate) fn fault(&self, problem: Problem) -> Fault {
        match problem {
            Problem::Malformed { what, received } => self.malformed(&what, &received),
            Problem::Reported(detail) => Fault::reported(&detail, &self.target),
            Problem::Blocked(reason) => Fault::blocked(&reason, &self.target),
        }
    }

    fn body_too_large(&self) -> Fault {
        Fault::too_large(
            &format!(
                "the body is longer than {} bytes (the limit; raise it with `max_response_bytes`)",
                self.config.limits.max_body_bytes
            ),
            &self.target,
        )
    }

    /// A fault for a malformed body, quoting the start of what was received.
    fn malformed(&self, what: &str, received: &str) -> Fault {
        let quote = self
            .target
            .server_text(received)
            .map(|text| {
                let short: String = text.chars().take(MALFORMED_QUOTE_LIMIT).collect();
                format!("; received `{short}`")
            })
            .unwrap_or_default();
        Fault::invalid(&format!("{what}{quote}"), &self.target)
    }
}

/// The start of a body, for error messages; a read error just ends it early, since the status
/// already says what matters.
async fn read_capped(mut response: Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < limit {
        match response.chunk().await {
            Ok(Some(bytes)) => body.extend_from_slice(&bytes),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(limit);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(base: &str) -> String {
        endpoint_url(base).expect("a valid base").to_string()
    }

    #[test]
    fn endpoint_is_joined_whatever_the_slashes() {
        assert_eq!(
            endpoint("https://api.openai.com/v1"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(
            endpoint("http://127.0.0.1:9000/v1/"),
            "http://127.0.0.1:9000/v1/chat/completions"
        );
        assert_eq!(
            endpoint("http://localhost:8080"),
            "http://localhost:8080/chat/completions"
        );
        assert_eq!(
            endpoint("http://host/v1/chat/completions/"),
            "http://host/v1/chat/completions"
        );
        assert_eq!(
            endpoint("https://host/openai/v1?api-version=1"),
            "https://host/openai/v1/chat/completions?api-version=1"
        );
    }

    #[test]
    fn bad_base_urls_are_rejected() {
        for base in ["", "api.openai.com/v1", "ftp://host/v1", "mailto:a@b"] {
            assert!(
                matches!(endpoint_url(base), Err(ApiError::InvalidBaseUrl { .. })),
                "{base}"
            );
        }
    }

    #[test]
    fn destinations_name_the_host_only_and_know_loopback() {
        let at = |url: &str| destination(url).expect("valid");
        let local = at("http://u:PW@127.0.0.1:8080/v1?key=Q");
        assert_eq!(local.host, "127.0.0.1:8080");
        assert!(local.loopback && !local.encrypted);
        assert!(at("http://localhost/v1").loopback);
        assert!(at("http://[::1]:9/v1").loopback);
        assert!(at("http://127.9.9.9/v1").loopback);
        let remote = at("https://api.openai.com/v1");
        assert_eq!(remote.host, "api.openai.com");
        assert!(remote.encrypted && !remote.loopback);
        assert!(!at("http://localhost.evil.example/v1").loopback);
        assert!(!at("http://10.0.0.1/v1").loopback);
    }

    #[test]
    fn user_info_and_query_values_in_urls_are_masked() {
        let client = OpenAiClient::new(ClientConfig::new("http://user:hunter2@host/v1?key=Q", "m"))
            .expect("valid");
        assert_eq!(
            client.endpoint(),
            "http://***@host/v1/chat/completions?key=***"
        );
        let error = endpoint_url("ftp://u:PW@h/v1?key=Q")
            .expect_err("not http")
            .to_string();
        assert!(!error.contains("PW") && !error.contains("=Q"), "{error}");
    }

    #[test]
    fn keys_that_cannot_be_headers_are_rejected_without_echoing_them() {
        let mut config = ClientConfig::new(OPENAI_BASE_URL, "gpt");
        config.api_key = Some("sk-bad\nkey".into());
        config.key_hint = Some("OPENAI_API_KEY".into());
        let error = OpenAiClient::new(config).expect_err("invalid key");
        let message = error.to_string();
        assert!(message.contains("OPENAI_API_KEY"), "{message}");
        assert!(!message.contains("sk-bad"), "{message}");
    }

    fn forwarded(attempts: &[&[&str]]) -> (String, String) {
        let mut shown = String::new();
        let mut on_text = |text: &str| shown.push_str(text);
        let mut forwarder = TextForwarder::new(&mut on_text);
        for deltas in attempts {
            forwarder.start_attempt();
            for delta in *deltas {
                forwarder.push(delta);
            }
        }
        let last = forwarder.attempt_text.clone();
        drop(forwarder);
        (shown, last)
    }

    #[test]
    fn a_retry_that_repeats_the_cut_answer_is_not_shown_twice() {
        let (shown, last) = forwarded(&[&["Hel", "lo"], &["He", "llo", ", world"]]);
        assert_eq!(shown, "Hello, world");
        assert_eq!(last, "Hello, world");
    }

    #[test]
    fn a_retry_with_a_different_answer_is_shown_whole() {
        let (shown, last) = forwarded(&[&["Hel", "lo"], &["Hi", " there"]]);
        assert_eq!(shown, "HelloHi there");
        assert_eq!(last, "Hi there");
    }

    #[test]
    fn content_type_decides_before_the_request_does() {
        let headers = |content_type: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_str(content_type).expect("valid"),
            );
            headers
        };
        let sse = Framing::Sse;
        assert_eq!(
            body_format(&headers("application/json; charset=utf-8"), true, sse),
            BodyFormat::Json
        );
        assert_eq!(
            body_format(&headers("text/event-stream"), false, sse),
            BodyFormat::EventStream
        );
        assert_eq!(
            body_format(&headers("text/plain"), true, sse),
            BodyFormat::EventStream
        );
        assert_eq!(
            body_format(&headers("text/plain"), true, Framing::Ndjson),
            BodyFormat::Ndjson
        );
        assert_eq!(
            body_format(&headers("application/x-ndjson"), true, sse),
            BodyFormat::Ndjson
        );
        assert_eq!(body_format(&HeaderMap::new(), false, sse), BodyFormat::Json);
    }

    #[test]
    fn api_paths_join_once_whatever_the_base_already_has() {
        let url = |base: &str, path: &[&str]| api_url(base, path).expect("valid").to_string();
        let messages = ["v1", "messages"];
        assert_eq!(
            url("https://api.anthropic.com", &messages),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            url("https://api.anthropic.com/v1/", &messages),
            "https://api.anthropic.com/v1/messages"
        );
        assert_eq!(
            url("http://h:1/v1/messages", &messages),
            "http://h:1/v1/messages"
        );
        assert_eq!(
            url("http://h:11434", &["api", "chat"]),
            "http://h:11434/api/chat"
        );
        assert_eq!(
            url("http://h:11434/api", &["api", "chat"]),
            "http://h:11434/api/chat"
        );
        assert_eq!(
            url(
                "https://r.openai.azure.com/openai/v1",
                &["openai", "v1", "responses"]
            ),
            "https://r.openai.azure.com/openai/v1/responses"
        );
    }
}
