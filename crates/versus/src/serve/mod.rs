//! `versus serve`: local models behind an OpenAI-compatible API, so that any OpenAI client can
//! talk to them. `POST /v1/chat/completions` (whole or streamed), `GET /v1/models`,
//! `GET /v1/models/{id}`, `GET /health`.
//!
//! Built as axum's examples are: `app(state)` is the whole service (tested with `oneshot`, no
//! socket), `serve` binds it and runs it until SIGINT/SIGTERM. The model table holds
//! `Arc<dyn ChatModel>`, so tests can serve a scripted model. Each model has a bounded queue
//! (`queue.rs`); every request is logged in one line (`log.rs`); errors are OpenAI's
//! (`error.rs`). The server listens on a loopback address unless given a key to require.

mod chat;
mod error;
mod guard;
mod log;
mod queue;
#[cfg(test)]
mod tests;

use crate::exit::ExitStatus;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use axum::extract::{Path, Request, State};
use axum::http::{header, Method, Uri};
use axum::middleware::{from_fn_with_state, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use versus_api::wire::{ModelList, ModelObject};
use versus_core::{ChatModel, ModelConfig};

use crate::cli::ServeArgs;
use crate::models;
use crate::settings::{apply_local_args, model_from_arg, UsageError};
use error::ApiError;
pub use log::RequestLog;
use queue::ModelQueue;

/// One model the server answers for.
pub struct ServedModel {
    /// The name clients ask for.
    pub id: String,
    pub model: Arc<dyn ChatModel>,
    /// `system_fingerprint`: the engine version and everything that decides the answers.
    pub fingerprint: String,
    /// When it was loaded (Unix seconds), for `GET /v1/models`.
    pub created: u64,
    pub accepts_images: bool,
    pub queue: ModelQueue,
}

impl ServedModel {
    pub fn new(
        id: String,
        model: Arc<dyn ChatModel>,
        fingerprint: String,
        running: usize,
        queue_capacity: usize,
    ) -> ServedModel {
        ServedModel {
            id,
            model,
            fingerprint,
            created: unix_now(),
            accepts_images: false,
            queue: ModelQueue::new(running, queue_capacity),
        }
    }

    fn object(&self) -> ModelObject {
        ModelObject {
            id: self.id.clone(),
            object: "model".into(),
            created: self.created,
            owned_by: "versus".into(),
        }
    }
}

/// Everything the handlers share. Cheap to clone.
#[derive(Clone)]
pub struct ServeState {
    models: Arc<BTreeMap<String, Arc<ServedModel>>>,
    /// SHA-256 of the key clients must send, when one is required; compared digest to digest,
    /// so the comparison takes the same time whatever the key sent.
    key_digest: Option<[u8; 32]>,
    log: Arc<RequestLog>,
    completion_ids: Arc<CompletionIds>,
    /// Host, origin and content-type rules (`guard.rs`).
    guard: Arc<guard::Guard>,
}

impl ServeState {
    /// Fails if two models have the same id.
    pub fn new(
        models: Vec<ServedModel>,
        api_key: Option<&str>,
        log: RequestLog,
    ) -> anyhow::Result<ServeState> {
        let mut table = BTreeMap::new();
        for model in models {
            let id = model.id.clone();
            if table.insert(id.clone(), Arc::new(model)).is_some() {
                bail!(UsageError(format!(
                    "two models are served as `{id}`; name them apart with ID=SPEC"
                )));
            }
        }
        Ok(ServeState {
            models: Arc::new(table),
            key_digest: api_key.map(key_digest),
            log: Arc::new(log),
            completion_ids: Arc::new(CompletionIds::new()),
            guard: Arc::new(guard::Guard::default()),
        })
    }

    /// The same, answering only as a server bound to `bound` should (`guard.rs`).
    pub fn guarded(mut self, bound: std::net::SocketAddr, cors_origins: &[String]) -> ServeState {
        self.guard = Arc::new(guard::Guard::new(bound, cors_origins));
        self
    }

    fn guard(&self) -> &guard::Guard {
        &self.guard
    }

    fn model(&self, id: &str) -> Result<Arc<ServedModel>, ApiError> {
        self.models.get(id).cloned().ok_or_else(|| {
            let served: Vec<&str> = self.models.keys().map(String::as_str).collect();
            ApiError::model_not_found(id, &served)
        })
    }

    fn next_completion_id(&self) -> String {
        self.completion_ids.next()
    }

    pub fn log(&self) -> &Arc<RequestLog> {
        &self.log
    }
}

/// `chatcmpl-` ids, unique within a process and unlikely to repeat across restarts.
struct CompletionIds {
    prefix: String,
    next: AtomicU64,
}

impl CompletionIds {
    fn new() -> CompletionIds {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let seed = Sha256::digest(format!("{nanos}-{}", std::process::id()));
        CompletionIds {
            prefix: hex(&seed[..8]),
            next: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("chatcmpl-{}{n:08x}", self.prefix)
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn key_digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The whole service: routes, key check, request log, OpenAI-shaped 404/405.
pub fn app(state: ServeState) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(chat::chat_completions))
        .route("/v1/models", get(list_models))
        .route("/v1/models/{*id}", get(get_model))
        .route_layer(from_fn_with_state(state.clone(), require_key));
    Router::new()
        .merge(api)
        .route("/health", get(health))
        .fallback(unknown_url)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(from_fn_with_state(state.clone(), guard::guard_request))
        .layer(from_fn_with_state(
            Arc::clone(&state.log),
            log::log_requests,
        ))
        .with_state(state)
}

async fn require_key(State(state): State<ServeState>, request: Request, next: Next) -> Response {
    let Some(expected) = &state.key_digest else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim());
    match given {
        None => refused(ApiError::unauthorized(
            "You didn't provide an API key. Send it in the Authorization header: `Authorization: Bearer KEY`.",
        )),
        Some(key) if !same_digest(&key_digest(key), expected) => {
            refused(ApiError::unauthorized("Incorrect API key provided."))
        }
        Some(_) => next.run(request).await,
    }
}

/// A refusal sent before the request's body was read: the connection then closes (hyper will
/// not read an unread body to reuse it), so the response says `Connection: close`. Without it a
/// client may send its next request on the dying connection and see a connection error instead
/// of the next answer (the official Python client did, now and then).
fn refused(error: ApiError) -> Response {
    let mut response = error.into_response();
    response.headers_mut().insert(
        header::CONNECTION,
        header::HeaderValue::from_static("close"),
    );
    response
}

/// Compares every byte, whatever the first difference.
fn same_digest(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

async fn list_models(State(state): State<ServeState>) -> Json<ModelList> {
    Json(ModelList {
        object: "list".into(),
        data: state.models.values().map(|m| m.object()).collect(),
    })
}

async fn get_model(
    State(state): State<ServeState>,
    Path(id): Path<String>,
) -> Result<Json<ModelObject>, ApiError> {
    Ok(Json(state.model(&id)?.object()))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

async fn unknown_url(method: Method, uri: Uri) -> ApiError {
    ApiError::unknown_url(&method, &uri)
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::method_not_allowed(&method, &uri)
}

/// `versus serve`: loads the models, binds, prints the address on stdout's first line, and
/// serves until SIGINT/SIGTERM.
pub fn serve(args: &ServeArgs, quiet: bool) -> anyhow::Result<ExitStatus> {
    let api_key = match &args.api_key_env {
        Some(variable) => Some(read_key(variable)?),
        None => None,
    };
    let configs = model_configs(args)?;
    let grace = Duration::try_from_secs_f64(args.shutdown_timeout).map_err(|_| {
        UsageError(format!(
            "--shutdown-timeout {}: expected a number of seconds, 0 or more",
            args.shutdown_timeout
        ))
    })?;
    let limits = crate::http_server::ConnectionLimits::from_args(&args.connections)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let outcome = runtime.block_on(async {
        let address = listen_address(&args.host, args.port, api_key.is_some()).await?;
        // Bound before loading, so a taken port fails in a second rather than after minutes of
        // loading weights.
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on {address}"))?;
        let mut served = Vec::new();
        for config in &configs {
            if !quiet {
                eprintln!("loading {} ({})...", config.id, config.spec);
            }
            let model = models::load_local(config)
                .await
                .map_err(anyhow::Error::from)?;
            let fingerprint = fingerprint(config, &model);
            // As many run at once as the model decodes together.
            let running = model.max_batch();
            served.push(ServedModel::new(
                config.id.clone(),
                Arc::new(model),
                fingerprint,
                running,
                args.queue,
            ));
        }
        let state = ServeState::new(
            served,
            api_key.as_deref(),
            RequestLog::stderr(args.log_content),
        )?;
        let bound = listener
            .local_addr()
            .context("cannot read the bound address")?;
        let state = state.guarded(bound, &args.cors_origins);
        announce(bound, &state, api_key.is_some(), quiet)?;
        run_until_signal(listener, state, grace, limits).await
    });
    // Tasks still running (requests cancelled at the deadline) are dropped here, which stops
    // their generation threads at the next token; do not wait long for them.
    runtime.shutdown_timeout(Duration::from_secs(2));
    outcome?;
    Ok(ExitStatus::Success)
}

/// The key from the environment; the server refuses to start without it.
fn read_key(variable: &str) -> anyhow::Result<String> {
    match std::env::var(variable) {
        Ok(key) if !key.trim().is_empty() => Ok(key.trim().to_string()),
        _ => bail!(UsageError(format!(
            "--api-key-env {variable}: {variable} is not set or empty; export {variable}=... with the key clients must send (`Authorization: Bearer KEY`)"
        ))),
    }
}

/// The models to serve: local specs only, with the local-model flags and template variables.
fn model_configs(args: &ServeArgs) -> anyhow::Result<Vec<ModelConfig>> {
    let mut template_vars = BTreeMap::new();
    for pair in &args.template_vars {
        let Some((name, value)) = pair.split_once('=') else {
            bail!(UsageError(format!(
                "--template-var {pair}: expected NAME=VALUE"
            )));
        };
        template_vars.insert(name.to_string(), serde_json::Value::from(value));
    }
    let mut configs = Vec::new();
    for arg in &args.models {
        let mut config = model_from_arg("--model", arg, None)?;
        if !config.spec.is_local() {
            bail!(UsageError(format!(
                "--model {arg}: `versus serve` serves local models (hf:, local:, gguf:); `{}` is already behind an API",
                config.spec
            )));
        }
        apply_local_args(&mut config, &args.local);
        config
            .local
            .chat_template_kwargs
            .extend(template_vars.clone());
        if configs.iter().any(|c: &ModelConfig| c.id == config.id) {
            bail!(UsageError(format!(
                "two models are served as `{}`; name them apart with ID=SPEC",
                config.id
            )));
        }
        configs.push(config);
    }
    Ok(configs)
}

/// Where to listen. A loopback address is reachable from this machine only; anything else puts
/// model compute on a network and needs a key.
async fn listen_address(host: &str, port: u16, has_key: bool) -> anyhow::Result<SocketAddr> {
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| {
            UsageError(format!(
                "--host {host}: not an address this machine knows ({e})"
            ))
        })?
        .collect();
    let Some(first) = addresses.first().copied() else {
        bail!(UsageError(format!("--host {host}: no address found")));
    };
    if !has_key && !addresses.iter().all(|a| a.ip().is_loopback()) {
        bail!(UsageError(format!(
            "--host {host} would serve models to the network without a key; pass --api-key-env VAR (the key clients must send, read from VAR), or listen on 127.0.0.1"
        )));
    }
    Ok(first)
}

/// `system_fingerprint`: versus's version, the spec and the options that decide the answers,
/// and what the engine made of them (dtype, device).
fn fingerprint(config: &ModelConfig, model: &versus_engine::LocalModel) -> String {
    let info = model.info();
    let identity = format!(
        "{}|{}|{}|{}|{}",
        env!("CARGO_PKG_VERSION"),
        config.spec,
        config.local.cache_identity(),
        info.dtype,
        info.device
    );
    format!("fp_{}", &hex(&Sha256::digest(identity))[..10])
}

/// The address on stdout's first line (for scripts and `--port 0`), the rest on stderr.
fn announce(bound: SocketAddr, state: &ServeState, keyed: bool, quiet: bool) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{bound}/v1").context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")?;
    if !quiet {
        let ids: Vec<&str> = state.models.keys().map(String::as_str).collect();
        eprintln!(
            "serving {} at http://{bound}/v1 ({}); Ctrl-C to stop",
            ids.join(", "),
            if keyed {
                "clients must send the key"
            } else {
                "no key needed"
            }
        );
    }
    Ok(())
}

/// Serves until SIGINT/SIGTERM, then lets in-flight requests finish for `grace` before they are
/// cancelled (a second signal cancels them at once).
async fn run_until_signal(
    listener: tokio::net::TcpListener,
    state: ServeState,
    grace: Duration,
    limits: crate::http_server::ConnectionLimits,
) -> anyhow::Result<()> {
    let log = Arc::clone(state.log());
    let (stop_sender, stop) = tokio::sync::watch::channel(false);
    let mut stopped = stop.clone();
    let server = crate::http_server::serve(listener, app(state), limits, async move {
        let _ = stopped.wait_for(|stopped| *stopped).await;
    });
    let mut server = std::pin::pin!(server);
    tokio::select! {
        () = &mut server => return Ok(()),
        () = shutdown_signal() => {}
    }
    log.begin_shutdown();
    let _ = stop_sender.send(true);
    let in_flight = log.in_flight();
    if in_flight > 0 {
        eprintln!(
            "shutting down: {in_flight} request(s) in flight get {:.0} s to finish (signal again to cancel them now)",
            grace.as_secs_f64()
        );
    }
    tokio::select! {
        () = &mut server => {}
        () = tokio::time::sleep(grace) => {
            eprintln!("shutdown: cancelling {} request(s) still in flight", log.in_flight());
        }
        () = shutdown_signal() => {
            eprintln!("shutdown: cancelling {} request(s) in flight", log.in_flight());
        }
    }
    drop(stop);
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
