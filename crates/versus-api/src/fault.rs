//! What went wrong in one HTTP attempt (`Fault`): its kind, whether another attempt may help, and
//! the message the user finally sees, with the server's own words included but the API key
//! scrubbed out.

use std::time::Duration;

use reqwest::StatusCode;
use versus_core::redact::redact_urls_in;
use versus_core::{ErrorKind, ModelError};

use crate::wire::ErrorDetail;

/// How much of the server's text goes into a message; error pages can be long HTML.
const SERVER_TEXT_LIMIT: usize = 300;

/// What the messages about one endpoint need to know.
pub(crate) struct Target {
    /// The endpoint URL, redacted (user-info and query values hidden).
    pub url: String,
    pub model: String,
    /// The API key, kept only to scrub it from anything shown.
    pub secret: Option<String>,
    /// Where the key comes from (`OPENAI_API_KEY`), to tell the user what to check.
    pub key_hint: Option<String>,
    pub timeout: Duration,
    /// The wire format's name, for "not in the ... format" messages.
    pub format: &'static str,
}

impl Target {
    /// `text` with every occurrence of the API key replaced by `***`, and every URL in it
    /// redacted (a server or a library may quote the request URL back).
    pub fn scrub(&self, text: &str) -> String {
        let text = match self.secret.as_deref() {
            Some(secret) if !secret.is_empty() => text.replace(secret, "***"),
            _ => text.to_string(),
        };
        redact_urls_in(&text)
    }

    /// Server-supplied text made fit to show: key scrubbed (before truncating, so no fragment of
    /// it survives), whitespace collapsed, cut to a readable length. `None` when empty.
    pub fn server_text(&self, text: &str) -> Option<String> {
        let scrubbed = self.scrub(text);
        let collapsed = scrubbed.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            return None;
        }
        Some(truncate_chars(&collapsed, SERVER_TEXT_LIMIT))
    }

    /// The server's explanation in an error body: `error.message` when it is JSON, else the raw
    /// text.
    fn explanation(&self, body: &[u8]) -> (Option<ErrorDetail>, Option<String>) {
        let detail = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|value| ErrorDetail::from_body(&value));
        let text = match &detail {
            Some(detail) => self.server_text(&detail.message),
            None => self.server_text(&String::from_utf8_lossy(body)),
        };
        (detail, text)
    }
}

fn truncate_chars(text: &str, limit: usize) -> String {
    match text.char_indices().nth(limit) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_string(),
    }
}

/// `: text` when there is text, so messages read the same with or without it.
fn colon(text: &Option<String>) -> String {
    text.as_deref()
        .map(|text| format!(": {text}"))
        .unwrap_or_default()
}

/// The failure of one attempt.
#[derive(Debug)]
pub(crate) struct Fault {
    pub kind: ErrorKind,
    /// Whether another attempt might succeed.
    pub retryable: bool,
    pub message: String,
    /// The wait the server asked for before the next attempt.
    pub retry_after: Option<Duration>,
}

/// How an HTTP status is treated: its kind, and whether retrying may help.
fn classify(status: u16) -> (ErrorKind, bool) {
    match status {
        401 | 403 => (ErrorKind::Auth, false),
        404 => (ErrorKind::NotFound, false),
        408 => (ErrorKind::Timeout, true),
        429 => (ErrorKind::RateLimited, true),
        500..=599 => (ErrorKind::Server, true),
        400..=499 => (ErrorKind::BadRequest, false),
        _ => (ErrorKind::InvalidResponse, false),
    }
}

impl Fault {
    fn new(kind: ErrorKind, retryable: bool, message: String) -> Fault {
        Fault {
            kind,
            retryable,
            message,
            retry_after: None,
        }
    }

    /// A response with a non-success status. `key_rejected`: the protocol recognised a rejected
    /// key under another status (Gemini's 400 `API_KEY_INVALID`), treated as a 401.
    pub fn from_status(
        status: StatusCode,
        body: &[u8],
        retry_after: Option<Duration>,
        key_rejected: bool,
        target: &Target,
    ) -> Fault {
        let code = status.as_u16();
        let url = &target.url;
        let (detail, text) = target.explanation(body);
        let said = colon(&text);
        let (kind, mut retryable) = classify(if key_rejected { 401 } else { code });
        let message = match code {
            _ if key_rejected => match (&target.secret, &target.key_hint) {
                (_, Some(hint)) => format!(
                    "the server at {url} rejected the API key (HTTP {code}){said}; check {hint}"
                ),
                (_, None) => format!(
                    "the server at {url} rejected the API key (HTTP {code}){said}; check the key \
                     configured for this model"
                ),
            },
            401 | 403 => match (&target.secret, &target.key_hint) {
                (Some(_), Some(hint)) => format!(
                    "the server at {url} rejected the API key (HTTP {code}){said}; check {hint}"
                ),
                (Some(_), None) => format!(
                    "the server at {url} rejected the API key (HTTP {code}){said}; check the key \
                     configured for this model"
                ),
                (None, Some(hint)) => format!(
                    "the server at {url} refused the request (HTTP {code}){said}; no API key was \
                     sent: set {hint}"
                ),
                (None, None) => format!(
                    "the server at {url} refused the request (HTTP {code}){said}; no API key was \
                     sent: configure one for this model"
                ),
            },
            404 => format!(
                "model `{}` not found at {url} (HTTP 404){said}; check the model name and base_url",
                target.model
            ),
            408 => format!("the server at {url} timed out the request (HTTP 408){said}"),
            429 if detail
                .as_ref()
                .and_then(ErrorDetail::code_str)
                .is_some_and(|code| code == "insufficient_quota") =>
            {
                // Out of credit is not a passing rate limit: waiting does not help.
                retryable = false;
                format!(
                    "the server at {url} says the account is out of quota (HTTP 429){said}; \
                     retrying will not help"
                )
            }
            429 => format!("the server at {url} is rate-limiting requests (HTTP 429){said}"),
            529 => format!("the server at {url} is overloaded (HTTP 529){said}"),
            500..=599 => format!("the server at {url} failed (HTTP {code}){said}"),
            400..=499 => format!("the server at {url} rejected the request (HTTP {code}){said}"),
            _ => format!("the server at {url} answered with unexpected HTTP status {code}{said}"),
        };
        Fault {
            retry_after: retry_after.filter(|_| retryable),
            ..Fault::new(kind, retryable, message)
        }
    }

    /// An `{"error": ...}` object where an answer was expected (a 200 body or a stream event).
    /// Some servers put the HTTP status they meant in `code`; otherwise it counts as a server
    /// failure.
    pub fn reported(detail: &ErrorDetail, target: &Target) -> Fault {
        let (kind, retryable) = detail
            .status_code()
            .filter(|code| !(200..300).contains(code))
            .map(classify)
            .unwrap_or((ErrorKind::Server, true));
        let text = target
            .server_text(&detail.message)
            .unwrap_or_else(|| "no message".to_string());
        Fault::new(
            kind,
            retryable,
            format!("the server at {} reported an error: {text}", target.url),
        )
    }

    /// The provider withheld the answer (a safety block, a refusal). Not retried: the same
    /// request is blocked again, and each attempt is paid.
    pub fn blocked(reason: &str, target: &Target) -> Fault {
        let reason = target
            .server_text(reason)
            .unwrap_or_else(|| "no reason given".to_string());
        Fault::new(
            ErrorKind::Blocked,
            false,
            format!("the server at {} blocked the answer: {reason}", target.url),
        )
    }

    /// The request could not be sent, or no response headers came back.
    pub fn send(error: &reqwest::Error, target: &Target) -> Fault {
        let what = if error.is_connect() {
            "could not connect to"
        } else {
            "the request failed at"
        };
        Fault::new(
            ErrorKind::Connection,
            true,
            format!("{what} {}: {}", target.url, cause(error)),
        )
    }

    /// The connection broke while the body was being read.
    pub fn read(error: &reqwest::Error, target: &Target) -> Fault {
        Fault::new(
            ErrorKind::Connection,
            true,
            format!(
                "the connection to {} broke while reading the answer: {}",
                target.url,
                cause(error)
            ),
        )
    }

    pub fn cut_stream(target: &Target) -> Fault {
        Fault::new(
            ErrorKind::Connection,
            true,
            format!(
                "the stream from {} ended before the answer was complete",
                target.url
            ),
        )
    }

    pub fn timeout(target: &Target) -> Fault {
        Fault::new(
            ErrorKind::Timeout,
            true,
            format!(
                "no complete answer from {} within the {:?} timeout",
                target.url, target.timeout
            ),
        )
    }

    /// The answer outgrew a limit (`what` says which). Not retried: a server that sends an
    /// endless line or a gigabyte body would do it again, and the tokens would be paid again.
    pub fn too_large(what: &str, target: &Target) -> Fault {
        Fault::new(
            ErrorKind::InvalidResponse,
            false,
            format!("the answer from {} is too large: {what}", target.url),
        )
    }

    /// A success status with a body that is not the chat-completions format. Retried, since
    /// proxies and overloaded servers sometimes garble one answer and not the next.
    pub fn invalid(what: &str, target: &Target) -> Fault {
        Fault::new(
            ErrorKind::InvalidResponse,
            true,
            format!(
                "the server at {} sent an answer that is not in {}: {what}",
                target.url, target.format
            ),
        )
    }

    /// The error the caller gets once no attempt is left (or the fault is not worth retrying).
    pub fn into_model_error(self, attempts: u32, target: &Target) -> ModelError {
        let mut message = self.message;
        if self.retryable {
            let plural = if attempts == 1 { "" } else { "s" };
            message.push_str(&format!(" (gave up after {attempts} attempt{plural})"));
        }
        ModelError {
            kind: self.kind,
            // The whole message is scrubbed again: the key must not leak through any path.
            message: target.scrub(&message),
            attempts,
        }
    }
}

/// The underlying reason of a reqwest error (`Connection refused`, ...), without reqwest's own
/// "error sending request for url (...)" wrapper, which repeats the URL.
fn cause(error: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(inner) = source {
        let text = inner.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = inner.source();
    }
    if parts.is_empty() {
        error.to_string()
    } else {
        parts.join(": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(secret: Option<&str>, hint: Option<&str>) -> Target {
        Target {
            url: "http://host/v1/chat/completions".into(),
            model: "gpt-x".into(),
            secret: secret.map(str::to_string),
            key_hint: hint.map(str::to_string),
            timeout: Duration::from_secs(1),
            format: "the chat-completions format",
        }
    }

    fn status_fault(code: u16, body: &str, target: &Target) -> Fault {
        let status = StatusCode::from_u16(code).expect("a status");
        Fault::from_status(
            status,
            body.as_bytes(),
            Some(Duration::from_secs(1)),
            false,
            target,
        )
    }

    #[test]
    fn statuses_map_to_kinds_and_retryability() {
        let target = target(Some("sk-1"), Some("OPENAI_API_KEY"));
        let cases = [
            (400, ErrorKind::BadRequest, false),
            (401, ErrorKind::Auth, false),
            (403, ErrorKind::Auth, false),
            (404, ErrorKind::NotFound, false),
            (408, ErrorKind::Timeout, true),
            (413, ErrorKind::BadRequest, false),
            (422, ErrorKind::BadRequest, false),
            (429, ErrorKind::RateLimited, true),
            (500, ErrorKind::Server, true),
            (503, ErrorKind::Server, true),
            (529, ErrorKind::Server, true),
            (302, ErrorKind::InvalidResponse, false),
        ];
        for (code, kind, retryable) in cases {
            let fault = status_fault(code, "", &target);
            assert_eq!((fault.kind, fault.retryable), (kind, retryable), "{code}");
            assert_eq!(fault.retry_after.is_some(), retryable, "{code}");
            assert!(fault.message.contains(&code.to_string()), "{code}");
        }
    }

    #[test]
    fn auth_messages_name_the_key_variable_and_never_the_key() {
        let with_key = target(Some("sk-secret"), Some("OPENAI_API_KEY"));
        let body = r#"{"error": {"message": "Incorrect API key provided: sk-secret"}}"#;
        let message = status_fault(401, body, &with_key)
            .into_model_error(1, &with_key)
            .message;
        assert!(message.contains("check OPENAI_API_KEY"), "{message}");
        assert!(
            message.contains("Incorrect API key provided: ***"),
            "{message}"
        );
        assert!(!message.contains("sk-secret"), "{message}");

        let without_key = target(None, Some("OPENAI_API_KEY"));
        let message = status_fault(401, "", &without_key).message;
        assert!(message.contains("no API key was sent: set OPENAI_API_KEY"));
    }

    #[test]
    fn server_text_is_scrubbed_before_it_is_cut() {
        let secret = "sk-abcdefghijklmnop";
        let target = target(Some(secret), None);
        // The key straddles the truncation point: no prefix of it may survive.
        let text = format!("{}{secret}", "x".repeat(SERVER_TEXT_LIMIT - 5));
        let shown = target.server_text(&text).expect("text");
        assert!(!shown.contains("sk-ab"), "{shown}");
        assert!(shown.ends_with('…') || shown.ends_with("***"));
        assert_eq!(target.server_text(" \n "), None);
    }

    #[test]
    fn quota_exhaustion_is_not_retried() {
        let target = target(Some("k"), None);
        let body = r#"{"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}}"#;
        let fault = status_fault(429, body, &target);
        assert_eq!(fault.kind, ErrorKind::RateLimited);
        assert!(!fault.retryable);
        assert!(fault.message.contains("exceeded your current quota"));
    }

    #[test]
    fn html_error_pages_are_collapsed_and_cut() {
        let target = target(None, None);
        let page = format!(
            "<html>\n  <body>{}</body></html>",
            "bad gateway ".repeat(100)
        );
        let message = status_fault(502, &page, &target).message;
        assert!(message.starts_with("the server at http://host/v1/chat/completions failed (HTTP 502): <html> <body>bad gateway"));
        assert!(message.chars().count() < SERVER_TEXT_LIMIT + 100);
    }

    #[test]
    fn reported_errors_use_the_status_in_code_when_there_is_one() {
        let target = target(None, None);
        let bad = ErrorDetail {
            message: "prompt too long".into(),
            code: Some(serde_json::json!(400)),
            ..ErrorDetail::default()
        };
        let fault = Fault::reported(&bad, &target);
        assert_eq!(
            (fault.kind, fault.retryable),
            (ErrorKind::BadRequest, false)
        );
        let overloaded = ErrorDetail {
            message: "overloaded".into(),
            ..ErrorDetail::default()
        };
        let fault = Fault::reported(&overloaded, &target);
        assert_eq!((fault.kind, fault.retryable), (ErrorKind::Server, true));
        let error = fault.into_model_error(3, &target);
        assert!(error.message.ends_with("(gave up after 3 attempts)"));
        assert_eq!(error.attempts, 3);
    }
}
