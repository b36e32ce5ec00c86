//! The app's error type: each variant is a status code and a short message for the page; the
//! detail of an internal error goes to the log (stderr), never to the client.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use versus_store::StoreError;

use super::page;

#[derive(Debug)]
pub enum ViewError {
    /// 400, with what was wrong.
    BadRequest(String),
    /// 401: no or a wrong access token; the page offers a login form.
    Unauthorized,
    /// 403, with why (cross-site request, bad CSRF token, ...).
    Forbidden(&'static str),
    /// 404, with what was not found.
    NotFound(String),
    /// 409: a ballot already used or expired.
    Conflict(String),
    /// 503: too many ballots are open; try again later.
    Unavailable(String),
    /// 421: a request for a host name this server does not answer to (DNS rebinding).
    WrongHost,
    /// 500: logged in full, shown as a generic message.
    Internal(anyhow::Error),
}

impl From<StoreError> for ViewError {
    fn from(error: StoreError) -> ViewError {
        match error {
            StoreError::RunNotFound(run) => ViewError::NotFound(format!("no run {run}")),
            other => ViewError::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for ViewError {
    fn from(error: anyhow::Error) -> ViewError {
        ViewError::Internal(error)
    }
}

impl IntoResponse for ViewError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ViewError::BadRequest(message) => (StatusCode::BAD_REQUEST, message),
            ViewError::Unauthorized => {
                let body = page::login_page("This server needs its access token.");
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer realm=\"versus view\"")],
                    body,
                )
                    .into_response();
            }
            ViewError::Forbidden(why) => (StatusCode::FORBIDDEN, why.to_string()),
            ViewError::NotFound(what) => (StatusCode::NOT_FOUND, what),
            ViewError::Conflict(message) => (StatusCode::CONFLICT, message),
            ViewError::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, message),
            ViewError::WrongHost => (
                StatusCode::MISDIRECTED_REQUEST,
                "this server answers only to its own address".to_string(),
            ),
            ViewError::Internal(error) => {
                eprintln!("versus view: internal error: {error:#}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "something went wrong; the server's log says what".to_string(),
                )
            }
        };
        (status, page::error_page(status, &message)).into_response()
    }
}
