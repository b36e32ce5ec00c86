//! Who may use the app and how state changes are protected.
//!
//! - **Where it listens.** 127.0.0.1 by default. Any other address needs an access token
//!   (`--token-env VAR`, or one generated and printed at start).
//! - **Host check.** Bound to loopback, the server answers only requests whose `Host` is a
//!   loopback name with its port: a web page cannot reach it through DNS rebinding (its own name
//!   re-pointed at 127.0.0.1) and read it as same-origin.
//! - **Access token.** With a token every request but `/login` and the static assets must carry
//!   it: `Authorization: Bearer TOKEN`, or the session cookie `/login` sets (`HttpOnly;
//!   SameSite=Strict`, holding a hash of the token rather than the token). Compared in constant
//!   time.
//! - **Cross-site requests.** Every request that is not GET or HEAD must come from this origin:
//!   `Sec-Fetch-Site` must be `same-origin` (or `none`: typed by the user) and `Origin`, when
//!   sent, must be this server. A cross-site form therefore gets 403 before any handler runs.
//! - **CSRF token.** On top of that, forms carry a token that must equal the `HttpOnly;
//!   SameSite=Strict` cookie `versus_csrf` (double submit); another site can neither read nor
//!   set it. GET handlers never change state.
//! - **Headers.** A Content-Security-Policy with no inline script or style and no remote
//!   anything, `nosniff`, referrers only within the app (`same-origin`: URLs can hold a login
//!   token; not `no-referrer`, under which browsers send `Origin: null` with the app's own form
//!   posts and the origin check above would refuse every vote), no framing, no caching.

use std::net::SocketAddr;

use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::error::ViewError;
use super::page;
use super::ViewState;

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; \
     base-uri 'none'";

const SESSION_COOKIE: &str = "versus_session";
const CSRF_COOKIE: &str = "versus_csrf";
/// Hex digits of a CSRF token (128 bits).
const CSRF_TOKEN_LEN: usize = 32;

/// The access rules of one server.
#[derive(Debug, Clone)]
pub struct Access {
    /// The access token, when one is required.
    token: Option<String>,
    /// The `Host` values accepted; `None` accepts any (the server is not on loopback, and a
    /// token guards it instead).
    allowed_hosts: Option<Vec<String>>,
}

impl Access {
    /// Rules for a server bound to `bound`, needing `token` if given.
    pub fn new(token: Option<String>, bound: SocketAddr) -> Access {
        let port = bound.port();
        let allowed_hosts = bound.ip().is_loopback().then(|| {
            vec![
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
            ]
        });
        Access {
            token,
            allowed_hosts,
        }
    }

    fn session_value(&self) -> Option<String> {
        self.token.as_deref().map(session_value)
    }

    /// Whether a request carries the token (header) or the session cookie.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let bearer = headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(|value| value.strip_prefix("Bearer "))
            .any(|given| same_secret(given.trim(), token));
        bearer
            || cookie(headers, SESSION_COOKIE)
                .is_some_and(|given| same_secret(given, &session_value(token)))
    }

    fn host_allowed(&self, headers: &HeaderMap) -> bool {
        let Some(allowed) = &self.allowed_hosts else {
            return true;
        };
        headers
            .get(header::HOST)
            .and_then(|host| host.to_str().ok())
            .is_some_and(|host| allowed.iter().any(|a| a.eq_ignore_ascii_case(host)))
    }
}

/// What the session cookie holds for `token`: a hash, so the cookie jar never holds the token
/// itself and its value is always cookie-safe.
fn session_value(token: &str) -> String {
    hex(&Sha256::digest(
        format!("versus view session\0{token}").as_bytes(),
    ))
}

/// Compares secrets in time independent of where they differ (both are hashed to equal length).
fn same_secret(given: &str, expected: &str) -> bool {
    let (given, expected) = (
        Sha256::digest(given.as_bytes()),
        Sha256::digest(expected.as_bytes()),
    );
    given
        .iter()
        .zip(expected.iter())
        .fold(0u8, |differ, (a, b)| differ | (a ^ b))
        == 0
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Fills `buffer` from the operating system's generator (unpredictable, unlike `fastrand`).
fn random_fill(buffer: &mut [u8]) -> Result<(), ViewError> {
    getrandom::fill(buffer).map_err(|error| {
        ViewError::Internal(anyhow::anyhow!(
            "the operating system gave no random bytes: {error}"
        ))
    })
}

/// `bytes` random bytes from the operating system, as hex.
pub fn random_hex(bytes: usize) -> Result<String, ViewError> {
    let mut buffer = vec![0u8; bytes];
    random_fill(&mut buffer)?;
    Ok(hex(&buffer))
}

/// A random number from the operating system's generator.
pub fn random_u64() -> Result<u64, ViewError> {
    let mut buffer = [0u8; 8];
    random_fill(&mut buffer)?;
    Ok(u64::from_le_bytes(buffer))
}

/// A fresh access token (256 bits).
pub fn random_token() -> anyhow::Result<String> {
    random_hex(32).map_err(|error| anyhow::anyhow!("{error:?}"))
}

/// The value of cookie `name`, if the request sent it.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim())
}

/// A `Set-Cookie` value only this site's pages send back and scripts cannot read.
pub fn strict_cookie(name: &str, value: &str, max_age_seconds: Option<u64>) -> String {
    let max_age = max_age_seconds.map_or(String::new(), |s| format!("; Max-Age={s}"));
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{max_age}")
}

/// The CSRF token of this request's client, for forms (see [`verify_csrf`]).
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// Checks a form's CSRF token against the client's cookie (double submit).
pub fn verify_csrf(expected: &CsrfToken, submitted: &str) -> Result<(), ViewError> {
    if submitted.len() == CSRF_TOKEN_LEN && same_secret(submitted, &expected.0) {
        Ok(())
    } else {
        Err(ViewError::Forbidden(
            "the form's CSRF token does not match this browser's (reload the page; cookies must be on)",
        ))
    }
}

/// Why a state-changing request looks cross-site, if it does.
fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    if let Some(site) = headers.get("sec-fetch-site") {
        // `same-site` is refused too: another port on localhost is the same site.
        if !matches!(site.to_str(), Ok("same-origin" | "none")) {
            return Some("cross-site request refused");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
        let same = match (origin.to_str(), host) {
            (Ok(origin), Some(host)) => origin.eq_ignore_ascii_case(&format!("http://{host}")),
            _ => false,
        };
        if !same {
            return Some("request from another origin refused");
        }
    }
    None
}

/// The guard every request passes, in order: host check, access token, cross-site check for
/// anything but GET/HEAD, then the CSRF cookie is read (or issued) for the handlers' forms.
pub async fn guard(State(state): State<ViewState>, mut request: Request, next: Next) -> Response {
    let access = &state.inner.access;
    let headers = request.headers();
    if !access.host_allowed(headers) {
        return ViewError::WrongHost.into_response();
    }
    let path = request.uri().path();
    let public = path == "/login" || path.starts_with("/assets/");
    if !public && !access.admits(headers) {
        return ViewError::Unauthorized.into_response();
    }
    if !matches!(*request.method(), Method::GET | Method::HEAD) {
        if let Some(why) = cross_site(headers) {
            return ViewError::Forbidden(why).into_response();
        }
    }
    let existing = cookie(headers, CSRF_COOKIE)
        .filter(|t| t.len() == CSRF_TOKEN_LEN && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string);
    let (csrf, fresh) = match existing {
        Some(token) => (token, false),
        None => match random_hex(CSRF_TOKEN_LEN / 2) {
            Ok(token) => (token, true),
            Err(error) => return error.into_response(),
        },
    };
    request.extensions_mut().insert(CsrfToken(csrf.clone()));
    let mut response = next.run(request).await;
    if fresh {
        if let Ok(value) = HeaderValue::from_str(&strict_cookie(CSRF_COOKIE, &csrf, None)) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// Headers on every response (kept when a handler set its own).
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::HeaderName::from_static("cross-origin-opener-policy"),
            "same-origin",
        ),
        (
            header::HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ] {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    token: Option<String>,
}

/// `GET /login?token=...` (the link printed at start) or the login form.
pub async fn login_get(
    State(state): State<ViewState>,
    Query(form): Query<LoginForm>,
) -> Result<Response, ViewError> {
    match form.token {
        Some(token) => log_in(&state, &token),
        None if state.inner.access.token.is_none() => Ok(Redirect::to("/").into_response()),
        None => Ok(page::login_page("Enter the access token.").into_response()),
    }
}

/// `POST /login` from the form.
pub async fn login_post(
    State(state): State<ViewState>,
    Form(form): Form<LoginForm>,
) -> Result<Response, ViewError> {
    log_in(&state, form.token.as_deref().unwrap_or_default())
}

/// Sets the session cookie for the right token and goes to the runs; the redirect also takes
/// the token out of the address bar.
fn log_in(state: &ViewState, token: &str) -> Result<Response, ViewError> {
    let access = &state.inner.access;
    let Some(expected) = &access.token else {
        return Ok(Redirect::to("/").into_response());
    };
    if !same_secret(token.trim(), expected) {
        return Err(ViewError::Unauthorized);
    }
    let session = access.session_value().unwrap_or_default();
    let cookie = strict_cookie(SESSION_COOKIE, &session, None);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_by_value() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; versus_csrf=xyz"),
        );
        assert_eq!(cookie(&headers, "versus_csrf"), Some("xyz"));
        assert_eq!(cookie(&headers, "b"), None);
    }

    #[test]
    fn random_tokens_differ() {
        let (a, b) = (random_hex(16).unwrap(), random_hex(16).unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}
