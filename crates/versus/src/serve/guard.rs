//! Who may talk to `versus serve` from a browser. Bound to loopback, the server answers only
//! requests whose `Host` names a loopback address with its port (as `versus view` does), so a
//! web page cannot reach it through DNS rebinding; a request from another site's page (an
//! `Origin` that is not this server, or `Sec-Fetch-Site: cross-site`) is refused unless
//! `--cors-origin` names that origin, which then gets CORS headers and preflight answers; and a
//! body must be declared `application/json`, which a page cannot send cross-site without a
//! preflight.

use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::{refused, ServeState};

/// The rules of one server.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// `Host` values accepted; `None` accepts any (not on loopback: a key guards the server).
    allowed_hosts: Option<Vec<String>>,
    /// Origins (`scheme://host[:port]`) allowed cross-site, from `--cors-origin`.
    cors_origins: Vec<String>,
}

impl Guard {
    pub fn new(bound: SocketAddr, cors_origins: &[String]) -> Guard {
        let port = bound.port();
        let allowed_hosts = bound.ip().is_loopback().then(|| {
            vec![
                format!("127.0.0.1:{port}"),
                format!("localhost:{port}"),
                format!("[::1]:{port}"),
            ]
        });
        Guard {
            allowed_hosts,
            cors_origins: cors_origins
                .iter()
                .map(|origin| origin.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    fn host_allowed(&self, host: Option<&str>) -> bool {
        match &self.allowed_hosts {
            None => true,
            Some(allowed) => {
                host.is_some_and(|host| allowed.iter().any(|a| a.eq_ignore_ascii_case(host)))
            }
        }
    }

    /// This server's own origin for the request's `Host`.
    fn same_origin(origin: &str, host: Option<&str>) -> bool {
        host.is_some_and(|host| {
            origin.eq_ignore_ascii_case(&format!("http://{host}"))
                || origin.eq_ignore_ascii_case(&format!("https://{host}"))
        })
    }
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The guard every request passes, before the key check and any handler.
pub async fn guard_request(
    State(state): State<ServeState>,
    request: Request,
    next: Next,
) -> Response {
    let guard = state.guard();
    let headers = request.headers();
    let host = header_text(headers, header::HOST);
    if !guard.host_allowed(host) {
        return refused(ApiError::forbidden(format!(
            "this server answers requests addressed to its loopback address only, not to Host `{}`",
            host.unwrap_or("")
        )));
    }
    let origin = header_text(headers, header::ORIGIN).map(|o| o.trim_end_matches('/'));
    let cross_site = match origin {
        Some(origin) => !Guard::same_origin(origin, host),
        None => header_text(headers, "sec-fetch-site".parse().expect("a header name"))
            .is_some_and(|site| site.eq_ignore_ascii_case("cross-site")),
    };
    let allowed_origin = origin
        .filter(|origin| guard.cors_origins.contains(&origin.to_ascii_lowercase()))
        .map(str::to_string);
    if cross_site && allowed_origin.is_none() {
        return refused(ApiError::forbidden(format!(
            "cross-site request from `{}` refused; start versus serve with --cors-origin {} to allow that site",
            origin.unwrap_or("another site"),
            origin.unwrap_or("ORIGIN")
        )));
    }
    if request.method() == Method::OPTIONS {
        if let Some(origin) = &allowed_origin {
            return with_cors(StatusCode::NO_CONTENT.into_response(), origin, true);
        }
    }
    if request.method() == Method::POST {
        let content_type = header_text(headers, header::CONTENT_TYPE).unwrap_or("");
        let media_type = content_type.split(';').next().unwrap_or("").trim();
        if !media_type.eq_ignore_ascii_case("application/json") {
            let refusal = refused(ApiError::not_json(content_type));
            return match &allowed_origin {
                Some(origin) => with_cors(refusal, origin, false),
                None => refusal,
            };
        }
    }
    let response = next.run(request).await;
    match &allowed_origin {
        Some(origin) => with_cors(response, origin, false),
        None => response,
    }
}

/// Adds the CORS headers for an allowed origin (and, for a preflight, what it may send).
fn with_cors(mut response: Response, origin: &str, preflight: bool) -> Response {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}
