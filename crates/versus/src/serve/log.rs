//! The request log: one line per request on stderr (time, method, path, status, model, token
//! counts, finish reason, time to first token, latency), and messages and answers only with
//! `--log-content`. Keys are never logged.
//!
//! A `RequestLine` writes itself when dropped, so a request whose future is dropped half-way
//! (the client disconnected, or the shutdown deadline passed) is still logged, as cancelled.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use versus_core::Usage;

/// Where request lines go, and what the server is doing (for the reason a request was cancelled).
pub struct RequestLog {
    log_content: bool,
    shutting_down: AtomicBool,
    in_flight: AtomicUsize,
    /// Lines kept in memory instead of written, for tests.
    captured: Option<Mutex<Vec<String>>>,
}

impl RequestLog {
    pub fn stderr(log_content: bool) -> RequestLog {
        RequestLog {
            log_content,
            shutting_down: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            captured: None,
        }
    }

    #[cfg(test)]
    pub fn in_memory(log_content: bool) -> RequestLog {
        RequestLog {
            captured: Some(Mutex::new(Vec::new())),
            ..RequestLog::stderr(log_content)
        }
    }

    /// The lines written so far (in-memory logs only).
    #[cfg(test)]
    pub fn lines(&self) -> Vec<String> {
        self.captured
            .as_ref()
            .and_then(|lines| lines.lock().ok().map(|lines| lines.clone()))
            .unwrap_or_default()
    }

    pub fn log_content(&self) -> bool {
        self.log_content
    }

    /// From now on, requests that end early are logged as cancelled by the shutdown.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
    }

    /// Requests started and not yet logged.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    fn write(&self, line: String) {
        match &self.captured {
            Some(lines) => {
                if let Ok(mut lines) = lines.lock() {
                    lines.push(line);
                }
            }
            None => eprintln!("{line}"),
        }
    }
}

/// What the log line says about a request besides its method, path, status and latency. Handlers
/// fill it in through `RequestStart::note`; an error response carries one as an extension.
#[derive(Debug, Clone, Default)]
pub struct LogNote {
    pub model: Option<String>,
    pub stream: bool,
    pub usage: Option<Usage>,
    pub finish: Option<String>,
    pub ttft_ms: Option<f64>,
    pub error: Option<String>,
    /// Messages and answer, filled in only with `--log-content`.
    pub messages: Option<serde_json::Value>,
    pub answer: Option<String>,
    /// Text pieces sent so far (streams).
    pub chunks: usize,
    /// The response body (a stream) writes the line itself when it ends.
    pub deferred: bool,
}

impl LogNote {
    /// Takes what an error response says.
    fn merge(&mut self, other: &LogNote) {
        if other.model.is_some() {
            self.model.clone_from(&other.model);
        }
        if other.error.is_some() {
            self.error.clone_from(&other.error);
        }
    }
}

/// Where and when a request began, and what is known about it so far: put in the request's
/// extensions by the middleware, so that handlers can fill in the note (model, tokens) and a
/// response that outlives its handler (a stream) can take over the line.
#[derive(Clone)]
pub struct RequestStart {
    method: Method,
    path: String,
    at: Instant,
    log: Arc<RequestLog>,
    note: Arc<Mutex<LogNote>>,
}

impl RequestStart {
    /// When the request arrived: time to first token counts from here, waiting included.
    pub fn arrived(&self) -> Instant {
        self.at
    }

    pub fn new(method: Method, path: String, log: Arc<RequestLog>) -> RequestStart {
        RequestStart {
            method,
            path,
            at: Instant::now(),
            log,
            note: Arc::new(Mutex::new(LogNote::default())),
        }
    }

    pub fn log(&self) -> &RequestLog {
        &self.log
    }

    /// Adds to what the request's line will say.
    pub fn note(&self, update: impl FnOnce(&mut LogNote)) {
        if let Ok(mut note) = self.note.lock() {
            update(&mut note);
        }
    }

    /// A line for this request, written when finished or dropped.
    pub fn line(&self) -> RequestLine {
        self.log.in_flight.fetch_add(1, Ordering::Relaxed);
        RequestLine {
            start: self.clone(),
            written: false,
        }
    }
}

/// One request's log line, written exactly once: by `finish`, or as cancelled when dropped.
pub struct RequestLine {
    start: RequestStart,
    written: bool,
}

impl RequestLine {
    pub fn finish(mut self, status: StatusCode) {
        self.write(Some(status));
    }

    /// Another line takes over (the response is a stream that logs itself).
    pub fn hand_over(mut self) {
        self.written = true;
        self.start.log.in_flight.fetch_sub(1, Ordering::Relaxed);
    }

    /// Writes the line: with the status sent, or (`None`) as a request dropped half-way.
    fn write(&mut self, finished: Option<StatusCode>) {
        if self.written {
            return;
        }
        self.written = true;
        let log = &self.start.log;
        log.in_flight.fetch_sub(1, Ordering::Relaxed);
        let note = self
            .start
            .note
            .lock()
            .map(|note| note.clone())
            .unwrap_or_default();
        let mut line = format!(
            "{} {} {}",
            chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ"),
            self.start.method,
            self.start.path
        );
        // A stream dropped half-way already sent its 200; otherwise nothing was sent, and 499 is
        // the usual code for a request its client closed.
        let status = match finished {
            Some(status) => status.as_u16(),
            None if note.deferred => 200,
            None => 499,
        };
        let _ = write!(line, " status={status}");
        if let Some(model) = &note.model {
            let _ = write!(line, " model={model}");
        }
        if note.stream {
            line.push_str(" stream=true");
        }
        if finished.is_none() {
            let why = if log.shutting_down.load(Ordering::Relaxed) {
                "server shutting down"
            } else {
                "client disconnected"
            };
            let _ = write!(line, " cancelled=\"{why}\"");
            if note.deferred {
                let _ = write!(line, " chunks={}", note.chunks);
            }
        }
        if let Some(usage) = &note.usage {
            let _ = write!(
                line,
                " prompt_tokens={} completion_tokens={}",
                usage.prompt_tokens, usage.completion_tokens
            );
        }
        if let Some(finish) = &note.finish {
            let _ = write!(line, " finish={finish}");
        }
        if let Some(ttft) = note.ttft_ms {
            let _ = write!(line, " ttft_ms={ttft:.1}");
        }
        let _ = write!(
            line,
            " latency_ms={:.1}",
            self.start.at.elapsed().as_secs_f64() * 1000.0
        );
        if let Some(error) = &note.error {
            let _ = write!(line, " error={}", json_string(error));
        }
        if log.log_content {
            if let Some(messages) = &note.messages {
                let _ = write!(line, " messages={messages}");
            }
            if let Some(answer) = &note.answer {
                let _ = write!(line, " answer={}", json_string(answer));
            }
        }
        log.write(line);
    }
}

impl Drop for RequestLine {
    fn drop(&mut self) {
        self.write(None);
    }
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_else(|_| format!("{text:?}"))
}

/// Middleware: starts each request's line and writes it with the response's status; a handler
/// future dropped half-way leaves the line to its `Drop`, a stream takes it over.
pub async fn log_requests(
    State(log): State<Arc<RequestLog>>,
    mut request: Request,
    next: Next,
) -> Response {
    let start = RequestStart::new(
        request.method().clone(),
        request.uri().path().to_string(),
        log,
    );
    request.extensions_mut().insert(start.clone());
    let line = start.line();
    let response = next.run(request).await;
    let mut deferred = false;
    start.note(|note| {
        if let Some(said) = response.extensions().get::<LogNote>() {
            note.merge(said);
        }
        deferred = note.deferred;
    });
    if deferred {
        line.hand_over();
    } else {
        line.finish(response.status());
    }
    response
}
