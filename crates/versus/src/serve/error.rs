//! The server's error: an HTTP status and OpenAI's error body (`{"error": {"message", "type",
//! "param", "code"}}`), so that OpenAI's clients raise their usual exceptions. The detail behind
//! a server-side failure goes to the request log, not to the client.

use axum::extract::rejection::BytesRejection;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use versus_api::wire::{ErrorBody, ErrorDetail};
use versus_core::{ErrorKind, ModelError};

use super::log::LogNote;

/// Why a request failed, as the client is told and as the log records it. Boxed: it travels in
/// every handler's `Result`, which should stay small.
#[derive(Debug, Clone)]
pub struct ApiError(Box<Failure>);

#[derive(Debug, Clone)]
struct Failure {
    status: StatusCode,
    /// What the client reads.
    message: String,
    /// OpenAI's `type`: `invalid_request_error`, `authentication_error`, ...
    kind: &'static str,
    /// The request field at fault.
    param: Option<String>,
    /// OpenAI's `code`: `model_not_found`, `invalid_api_key`, ...
    code: Option<&'static str>,
    /// Seconds the client should wait before trying again (429).
    retry_after_secs: Option<u64>,
    /// What the log records besides the message (an engine error behind a 500).
    detail: Option<String>,
    /// The model asked for, for the log.
    model: Option<String>,
}

impl Failure {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Failure {
        Failure {
            status,
            message: message.into(),
            kind,
            param: None,
            code: None,
            retry_after_secs: None,
            detail: None,
            model: None,
        }
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> ApiError {
        ApiError(Box::new(failure))
    }
}

impl ApiError {
    /// 400: the request is malformed or asks for something the server does not do.
    pub fn bad_request(message: impl Into<String>, param: Option<&str>) -> ApiError {
        ApiError::from(Failure {
            param: param.map(str::to_string),
            ..Failure::new(StatusCode::BAD_REQUEST, "invalid_request_error", message)
        })
    }

    /// 404: no model by that name is served.
    pub fn model_not_found(model: &str, served: &[&str]) -> ApiError {
        ApiError::from(Failure {
            param: Some("model".into()),
            code: Some("model_not_found"),
            model: Some(model.to_string()),
            ..Failure::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                format!(
                    "The model `{model}` does not exist; this server serves {}.",
                    served
                        .iter()
                        .map(|id| format!("`{id}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })
    }

    /// 404: no such endpoint.
    pub fn unknown_url(method: &Method, uri: &Uri) -> ApiError {
        ApiError::from(Failure {
            code: Some("unknown_url"),
            ..Failure::new(
                StatusCode::NOT_FOUND,
                "invalid_request_error",
                format!("Unknown request URL: {method} {}.", uri.path()),
            )
        })
    }

    /// 405: a known endpoint asked with the wrong method.
    pub fn method_not_allowed(method: &Method, uri: &Uri) -> ApiError {
        ApiError::from(Failure {
            code: Some("method_not_supported"),
            ..Failure::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "invalid_request_error",
                format!("Method {method} is not allowed on {}.", uri.path()),
            )
        })
    }

    /// 403: a request from where this server does not answer (a foreign `Host`, a cross-site
    /// origin).
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::from(Failure {
            code: Some("forbidden"),
            ..Failure::new(StatusCode::FORBIDDEN, "invalid_request_error", message)
        })
    }

    /// 415: a body that is not declared JSON.
    pub fn not_json(content_type: &str) -> ApiError {
        ApiError::from(Failure {
            code: Some("unsupported_media_type"),
            ..Failure::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request_error",
                format!(
                    "the body must be sent as `Content-Type: application/json`, not `{content_type}`"
                ),
            )
        })
    }

    /// 401: no key, or the wrong one. The key given is never repeated.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::from(Failure {
            code: Some("invalid_api_key"),
            ..Failure::new(StatusCode::UNAUTHORIZED, "authentication_error", message)
        })
    }

    /// 429: the model's queue is full.
    pub fn overloaded(model: &str, waiting: usize, retry_after_secs: u64) -> ApiError {
        ApiError::from(Failure {
            code: Some("rate_limit_exceeded"),
            retry_after_secs: Some(retry_after_secs),
            ..Failure::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                format!(
                    "The model `{model}` is busy: one request is running and {waiting} are waiting. Retry after {retry_after_secs} s."
                ),
            )
        })
    }

    /// The body could not be read (too large, cut off).
    pub fn unreadable_body(rejection: BytesRejection) -> ApiError {
        let status = rejection.status();
        ApiError::from(Failure::new(
            if status.is_client_error() {
                status
            } else {
                StatusCode::BAD_REQUEST
            },
            "invalid_request_error",
            format!(
                "The request body could not be read: {}",
                rejection.body_text()
            ),
        ))
    }

    /// A failed generation: the request's fault (400) or the server's (500, detail logged only).
    pub fn from_model(error: ModelError) -> ApiError {
        match error.kind {
            ErrorKind::BadRequest | ErrorKind::Unsupported => {
                ApiError::bad_request(error.message, Some("messages"))
            }
            _ => {
                let mut failure = ApiError::internal();
                failure.0.detail = Some(error.message);
                failure
            }
        }
    }

    /// 500, with nothing of the cause in the body.
    pub fn internal() -> ApiError {
        ApiError::from(Failure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The server had an error while processing your request.",
        ))
    }

    pub fn with_model(mut self, model: &str) -> ApiError {
        self.0.model = Some(model.to_string());
        self
    }

    /// The body OpenAI would send (also sent as an SSE event when a stream fails mid-way).
    pub fn body(&self) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                message: self.0.message.clone(),
                kind: Some(self.0.kind.to_string()),
                param: self.0.param.clone(),
                code: self.0.code.map(serde_json::Value::from),
            },
        }
    }

    /// What the request log says about this error.
    pub fn log_text(&self) -> String {
        match &self.0.detail {
            Some(detail) => format!("{} ({detail})", self.0.message),
            None => self.0.message.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.0.status, Json(self.body())).into_response();
        if let Some(seconds) = self.0.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        // The logging middleware writes the request's line with this.
        response.extensions_mut().insert(LogNote {
            model: self.0.model.clone(),
            error: Some(self.log_text()),
            ..LogNote::default()
        });
        response
    }
}
