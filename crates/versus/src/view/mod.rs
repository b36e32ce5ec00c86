//! `versus view`: a local web app over the store. Runs as tables and task-by-model matrices,
//! answers side by side, two runs compared, blind voting as Chatbot Arena does it, and the
//! ratings that votes and judge verdicts add up to. Server-rendered HTML on axum; the little
//! JavaScript there is (`assets/view.js`) only adds keyboard shortcuts.
//!
//! Routes: `/` runs, `/runs/{id}` matrix, `/runs/{id}/tasks/{task}` one task, `/compare`,
//! `/vote` (GET a pair, POST a vote), `/ratings`, `/login`, `/assets/*`.
//!
//! Security, in one place (`security.rs`): the server binds 127.0.0.1 unless told otherwise, and
//! then needs an access token; without a token it answers only requests addressed to a loopback
//! name (DNS rebinding). Every state change is a POST that passes an origin check and a CSRF
//! token, and a vote also needs its single-use ballot. Answers are untrusted and reach pages only
//! through `render::answer_html`; every other text is escaped; a strict
//! Content-Security-Policy forbids inline script.

mod ballots;
mod compare;
mod criteria;
mod db;
mod error;
mod matrix;
mod page;
mod ratings;
mod runs;
mod security;
mod task;
mod vote;

#[cfg(test)]
mod tests;

use crate::exit::ExitStatus;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::cli::ViewArgs;
use ballots::Ballots;
use db::{PlanCache, StorePool};
pub use security::Access;

/// Everything the handlers share: the store, caches, outstanding ballots, and the access rules.
#[derive(Clone)]
pub struct ViewState {
    inner: Arc<Shared>,
}

struct Shared {
    db: StorePool,
    plans: PlanCache,
    ballots: Ballots,
    access: Access,
}

impl ViewState {
    /// The state for a database that exists; connections are opened as requests need them.
    pub fn new(db: impl Into<versus_store::Database>, access: Access) -> ViewState {
        ViewState {
            inner: Arc::new(Shared {
                db: StorePool::new(db.into()),
                plans: PlanCache::default(),
                ballots: Ballots::default(),
                access,
            }),
        }
    }
}

/// The web app: every route, behind the access guard and the security headers.
pub fn app(state: ViewState) -> Router {
    Router::new()
        .route("/", get(runs::runs_page))
        .route("/runs/{run}", get(matrix::matrix_page))
        .route("/runs/{run}/tasks/{task}", get(task::task_page))
        .route("/runs/{run}/criteria", get(criteria::criteria_page))
        .route("/compare", get(compare::compare_page))
        // GET only shows a pair; the vote itself is a POST (a GET never changes anything).
        .route("/vote", get(vote::vote_page).post(vote::cast_vote))
        .route("/ratings", get(ratings::ratings_page))
        .route(
            "/login",
            get(security::login_get).post(security::login_post),
        )
        .route("/assets/view.css", get(stylesheet))
        .route("/assets/view.js", get(script))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security::guard,
        ))
        .layer(axum::middleware::from_fn(security::security_headers))
        .with_state(state)
}

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/view.css"),
    )
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/view.js"),
    )
}

async fn not_found() -> error::ViewError {
    error::ViewError::NotFound("no such page".into())
}

/// `versus view`: serves the app until Ctrl-C. Prints the URL first on stdout (then the login
/// URL with a generated token), so scripts can start it with `--port 0` and read where it is.
pub fn view(
    db: &versus_store::Database,
    quiet: bool,
    args: &ViewArgs,
) -> anyhow::Result<ExitStatus> {
    // Open once now so a missing, broken or newer database fails here, not on the first page.
    drop(crate::commands::existing_store(db)?);
    let token = access_token(args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(db.clone(), args, token, quiet))?;
    Ok(ExitStatus::Success)
}

/// Where the token comes from, when one is needed.
enum TokenSource {
    Environment(String),
    Generated,
}

/// The access token: from `--token-env`, or generated when the address is not loopback or
/// `--require-token` asks for one; `None` on loopback otherwise.
fn access_token(args: &ViewArgs) -> anyhow::Result<Option<(String, TokenSource)>> {
    if let Some(var) = &args.token_env {
        let token = std::env::var(var)
            .with_context(|| format!("--token-env {var}: the variable is not set"))?;
        // A short token could be guessed by anyone who can reach the port.
        if token.trim().len() < 16 {
            return Err(crate::settings::UsageError(format!(
                "--token-env {var}: the token must be at least 16 characters"
            ))
            .into());
        }
        return Ok(Some((
            token.trim().to_string(),
            TokenSource::Environment(var.clone()),
        )));
    }
    if !args.host.is_loopback() || args.require_token {
        return Ok(Some((security::random_token()?, TokenSource::Generated)));
    }
    Ok(None)
}

async fn serve(
    db: versus_store::Database,
    args: &ViewArgs,
    token: Option<(String, TokenSource)>,
    quiet: bool,
) -> anyhow::Result<()> {
    let address = SocketAddr::new(args.host, args.port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let bound = listener
        .local_addr()
        .context("cannot read the bound address")?;
    let url = format!("http://{}/", url_authority(bound));
    let access = Access::new(token.as_ref().map(|(t, _)| t.clone()), bound);
    // The first line on stdout is the URL, alone, for scripts and browser tests.
    println!("{url}");
    match &token {
        Some((token, TokenSource::Generated)) => {
            println!("token: {token}");
            println!("open: {url}login?token={token}");
        }
        Some((_, TokenSource::Environment(var))) => println!("token: from ${var}"),
        None => {}
    }
    if !quiet {
        eprintln!("versus view: serving {db} at {url} (Ctrl-C to stop)");
    }
    let app = app(ViewState::new(db, access));
    let limits = crate::http_server::ConnectionLimits::from_args(&args.connections)?;
    crate::http_server::serve(listener, app, limits, async {
        // Without a signal handler the server runs until killed, which is also fine.
        let _ = tokio::signal::ctrl_c().await;
    })
    .await;
    Ok(())
}

/// `127.0.0.1:7777` or `[::1]:7777`.
fn url_authority(address: SocketAddr) -> String {
    match address.ip() {
        IpAddr::V4(ip) => format!("{ip}:{}", address.port()),
        IpAddr::V6(ip) => format!("[{ip}]:{}", address.port()),
    }
}
