//! `POST /v1/chat/completions`: reads and checks the request, waits for a turn in the model's
//! queue, and answers whole or as a stream of SSE chunks in OpenAI's shapes.
//!
//! Cancellation is by dropping: when a client disconnects, hyper drops the handler future (or the
//! stream body), which drops `ChatModel::complete`'s future, and a local model stops generating
//! at the next token; the queue place goes with it.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver};
use versus_api::wire::{
    finish_reason_to_wire, ChatCompletionChunk, ChatCompletionRequest, ChatCompletionResponse,
    Choice, ChunkChoice, Delta, ResponseMessage, WireContent, WirePart, WireUsage,
    CHAT_COMPLETION_CHUNK_OBJECT, CHAT_COMPLETION_OBJECT,
};
use versus_core::{ChatRequest, Completion, ModelError};

use super::error::ApiError;
use super::log::{RequestLine, RequestStart};
use super::queue::Turn;
use super::{ServeState, ServedModel};

/// SSE comments sent while a stream is quiet, so that proxies keep the connection and a
/// disconnected client is noticed.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

pub async fn chat_completions(
    State(state): State<ServeState>,
    Extension(start): Extension<RequestStart>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match answer(state, start, body).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn answer(
    state: ServeState,
    start: RequestStart,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(ApiError::unreadable_body)?;
    let wire = parse_request(&body)?;
    let served = state.model(&wire.model)?;
    start.note(|note| {
        note.model = Some(served.id.clone());
        note.stream = wire.stream;
        if start.log().log_content() {
            note.messages = serde_json::to_value(&wire.messages).ok();
        }
    });
    let model_id = served.id.clone();
    let with_model = |error: ApiError| error.with_model(&model_id);
    check_request(&wire, &served).map_err(with_model)?;
    let place = served.queue.admit().map_err(|full| {
        with_model(ApiError::overloaded(
            &served.id,
            full.waiting,
            full.retry_after_secs,
        ))
    })?;
    let turn = place.turn().await;
    let chunks = ChunkMaker {
        id: state.next_completion_id(),
        created: unix_now(),
        model: served.id.clone(),
        fingerprint: served.fingerprint.clone(),
    };
    let request = wire.to_chat();
    if wire.stream {
        let include_usage = wire.stream_options.is_some_and(|o| o.include_usage);
        stream(served, turn, request, chunks, include_usage, start)
            .await
            .map_err(with_model)
    } else {
        whole(served, turn, request, chunks, start)
            .await
            .map_err(with_model)
    }
}

/// The request body as OpenAI reads it, with its errors: unparseable JSON, a missing field, a
/// field of the wrong type (named in `param`).
fn parse_request(body: &[u8]) -> Result<ChatCompletionRequest, ApiError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            format!("We could not parse the JSON body of your request ({e}); send JSON like {{\"model\": \"ID\", \"messages\": [{{\"role\": \"user\", \"content\": \"Hi\"}}]}}."),
            None,
        )
    })?;
    let Some(fields) = value.as_object() else {
        return Err(ApiError::bad_request(
            "The request body must be a JSON object.",
            None,
        ));
    };
    for required in ["model", "messages"] {
        if !fields.contains_key(required) {
            return Err(ApiError::bad_request(
                format!("Missing required parameter: '{required}'."),
                Some(required),
            ));
        }
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        let param = e.path().to_string();
        ApiError::bad_request(
            format!("Invalid value for '{param}': {}.", e.inner()),
            Some(&param),
        )
    })
}

/// What the engine cannot do or OpenAI would refuse, refused before the request takes a place.
fn check_request(request: &ChatCompletionRequest, served: &ServedModel) -> Result<(), ApiError> {
    if let Some(n) = request.n.filter(|&n| n != 1) {
        return Err(ApiError::bad_request(
            format!("n = {n} is not supported: this server makes one choice per request (n = 1)."),
            Some("n"),
        ));
    }
    if request.messages.is_empty() {
        return Err(ApiError::bad_request(
            "'messages' must contain at least one message.",
            Some("messages"),
        ));
    }
    let in_range = |value: Option<f64>, name: &str, low: f64, high: f64| match value {
        Some(v) if !(low..=high).contains(&v) => Err(ApiError::bad_request(
            format!("Invalid '{name}': {v} is not between {low} and {high}."),
            Some(name),
        )),
        _ => Ok(()),
    };
    in_range(request.temperature, "temperature", 0.0, 2.0)?;
    in_range(request.top_p, "top_p", 0.0, 1.0)?;
    in_range(request.min_p, "min_p", 0.0, 1.0)?;
    if let Some(penalty) = request.repetition_penalty.filter(|&p| p <= 0.0) {
        return Err(ApiError::bad_request(
            format!("Invalid 'repetition_penalty': {penalty} is not above 0."),
            Some("repetition_penalty"),
        ));
    }
    for (name, limit) in [
        ("max_tokens", request.max_tokens),
        ("max_completion_tokens", request.max_completion_tokens),
    ] {
        if limit == Some(0) {
            return Err(ApiError::bad_request(
                format!("Invalid '{name}': it must be at least 1."),
                Some(name),
            ));
        }
    }
    if request
        .stop
        .as_ref()
        .is_some_and(|stops| stops.iter().any(String::is_empty))
    {
        return Err(ApiError::bad_request(
            "Invalid 'stop': stop strings must not be empty.",
            Some("stop"),
        ));
    }
    if !served.accepts_images {
        let with_image = request.messages.iter().position(|message| {
            matches!(&message.content, WireContent::Parts(parts)
                if parts.iter().any(|part| matches!(part, WirePart::ImageUrl { .. })))
        });
        if let Some(index) = with_image {
            return Err(ApiError::bad_request(
                format!(
                    "The model `{}` takes text only, and message {index} has an image.",
                    served.id
                ),
                Some(&format!("messages[{index}].content")),
            ));
        }
    }
    Ok(())
}

/// The ids, times and names every chunk of one answer shares.
struct ChunkMaker {
    id: String,
    created: u64,
    model: String,
    fingerprint: String,
}

impl ChunkMaker {
    fn chunk(&self, delta: Delta, finish_reason: Option<String>) -> ChatCompletionChunk {
        ChatCompletionChunk {
            choices: vec![ChunkChoice {
                index: 0,
                delta,
                logprobs: None,
                finish_reason,
            }],
            ..self.empty_chunk()
        }
    }

    fn empty_chunk(&self) -> ChatCompletionChunk {
        ChatCompletionChunk {
            id: Some(self.id.clone()),
            object: Some(CHAT_COMPLETION_CHUNK_OBJECT.into()),
            created: Some(self.created),
            model: Some(self.model.clone()),
            system_fingerprint: Some(self.fingerprint.clone()),
            choices: Vec::new(),
            usage: None,
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

async fn whole(
    served: Arc<ServedModel>,
    turn: Turn,
    request: ChatRequest,
    chunks: ChunkMaker,
    start: RequestStart,
) -> Result<Response, ApiError> {
    let began = Instant::now();
    let result = served.model.complete(&request, &mut |_| {}).await;
    served.queue.record(began.elapsed());
    drop(turn);
    let completion = result.map_err(ApiError::from_model)?;
    let finish_reason = finish_reason_to_wire(&completion.finish_reason);
    start.note(|note| {
        note.usage = completion.usage;
        note.finish = finish_reason.clone();
        if start.log().log_content() {
            note.answer = Some(completion.text.clone());
        }
    });
    let body = ChatCompletionResponse {
        id: Some(chunks.id),
        object: Some(CHAT_COMPLETION_OBJECT.into()),
        created: Some(chunks.created),
        model: Some(chunks.model),
        system_fingerprint: Some(chunks.fingerprint),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage {
                role: Some("assistant".into()),
                content: Some(completion.text),
                reasoning_content: None,
            },
            logprobs: None,
            finish_reason,
        }],
        usage: completion.usage.map(WireUsage::from),
    };
    Ok(Json(body).into_response())
}

type Answer = Pin<Box<dyn Future<Output = Result<Completion, ModelError>> + Send>>;

/// Answers as SSE. The first piece of text (or the end) is awaited before the response starts,
/// so that a request the model rejects (a prompt longer than its context) gets its HTTP status
/// rather than a 200 stream carrying an error.
async fn stream(
    served: Arc<ServedModel>,
    turn: Turn,
    request: ChatRequest,
    chunks: ChunkMaker,
    include_usage: bool,
    start: RequestStart,
) -> Result<Response, ApiError> {
    let (piece_sender, pieces) = unbounded_channel::<String>();
    let model = Arc::clone(&served.model);
    let answer: Answer = Box::pin(async move {
        let mut forward = move |piece: &str| {
            // A closed receiver means the stream is gone, and this future is about to be too.
            let _ = piece_sender.send(piece.to_string());
        };
        model.complete(&request, &mut forward).await
    });
    let mut streaming = Streaming {
        answer: Some(answer),
        pieces,
        ready: VecDeque::new(),
        chunks,
        include_usage,
        began: Instant::now(),
        turn: Some(turn),
        served,
        started_text: false,
        text: String::new(),
        line: None,
        start,
    };
    match streaming.step().await {
        Some(Step::Piece(piece)) => streaming.on_piece(piece),
        Some(Step::Done(result)) => match *result {
            Err(error) => {
                streaming.release_model();
                return Err(ApiError::from_model(error));
            }
            Ok(completion) => streaming.on_done(Ok(completion)),
        },
        None => {}
    }
    streaming.start.note(|note| note.deferred = true);
    streaming.line = Some(streaming.start.line());
    let events = futures_util::stream::unfold(streaming, Streaming::next_event);
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response())
}

enum Step {
    Piece(String),
    /// Boxed: a completion is large beside a piece of text.
    Done(Box<Result<Completion, ModelError>>),
}

/// One streamed answer on its way out: the model's future, the text it has produced, and the
/// events ready to send. Dropping it (the client went away) cancels the generation and writes
/// the log line as cancelled.
struct Streaming {
    answer: Option<Answer>,
    pieces: UnboundedReceiver<String>,
    ready: VecDeque<Event>,
    chunks: ChunkMaker,
    include_usage: bool,
    began: Instant,
    turn: Option<Turn>,
    served: Arc<ServedModel>,
    started_text: bool,
    /// The answer so far, kept only with `--log-content`.
    text: String,
    line: Option<RequestLine>,
    start: RequestStart,
}

impl Streaming {
    /// The model's next piece of text or its end; `None` once it has ended.
    async fn step(&mut self) -> Option<Step> {
        let answer = self.answer.as_mut()?;
        Some(tokio::select! {
            biased;
            Some(piece) = self.pieces.recv() => Step::Piece(piece),
            result = answer => Step::Done(Box::new(result)),
        })
    }

    async fn next_event(mut self) -> Option<(Result<Event, Infallible>, Streaming)> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some((Ok(event), self));
            }
            match self.step().await {
                Some(Step::Piece(piece)) => self.on_piece(piece),
                Some(Step::Done(result)) => self.on_done(*result),
                None => {
                    if let Some(line) = self.line.take() {
                        line.finish(StatusCode::OK);
                    }
                    return None;
                }
            }
        }
    }

    fn on_piece(&mut self, piece: String) {
        if piece.is_empty() {
            return;
        }
        self.start_text();
        if self.start.log().log_content() {
            self.text.push_str(&piece);
        }
        self.start.note(|note| {
            note.chunks += 1;
            if note.chunks == 1 {
                // From the request's arrival: time spent waiting for a place in the batch
                // counts, as the client sees it.
                note.ttft_ms = Some(self.start.arrived().elapsed().as_secs_f64() * 1000.0);
            }
        });
        let chunk = self.chunks.chunk(
            Delta {
                role: None,
                content: Some(piece),
                reasoning_content: None,
            },
            None,
        );
        self.ready.push_back(event(&chunk));
    }

    /// The first chunk names the role, with empty content, as OpenAI's do.
    fn start_text(&mut self) {
        if self.started_text {
            return;
        }
        self.started_text = true;
        let chunk = self.chunks.chunk(
            Delta {
                role: Some("assistant".into()),
                content: Some(String::new()),
                reasoning_content: None,
            },
            None,
        );
        self.ready.push_back(event(&chunk));
    }

    /// The generation is over: gives the model to the next request.
    fn release_model(&mut self) {
        self.answer = None;
        self.served.queue.record(self.began.elapsed());
        self.turn = None;
    }

    fn on_done(&mut self, result: Result<Completion, ModelError>) {
        self.release_model();
        while let Ok(piece) = self.pieces.try_recv() {
            self.on_piece(piece);
        }
        match result {
            Ok(completion) => {
                self.start_text();
                let finish_reason = finish_reason_to_wire(&completion.finish_reason);
                let text = std::mem::take(&mut self.text);
                self.start.note(|note| {
                    note.usage = completion.usage;
                    note.finish = finish_reason.clone();
                    if self.start.log().log_content() {
                        note.answer = Some(text);
                    }
                });
                let last = self.chunks.chunk(Delta::default(), finish_reason);
                self.ready.push_back(event(&last));
                if let Some(usage) = completion.usage.filter(|_| self.include_usage) {
                    let usage_chunk = ChatCompletionChunk {
                        usage: Some(WireUsage::from(usage)),
                        ..self.chunks.empty_chunk()
                    };
                    self.ready.push_back(event(&usage_chunk));
                }
                self.ready.push_back(Event::default().data("[DONE]"));
            }
            // After text has gone out the status cannot change: OpenAI sends the error as an
            // event, and its clients raise it.
            Err(error) => {
                let error = ApiError::from_model(error);
                self.start.note(|note| note.error = Some(error.log_text()));
                self.ready.push_back(event(&error.body()));
            }
        }
    }
}

/// `data: JSON\n\n`. The wire types always serialize (no maps with non-string keys).
fn event(value: &impl Serialize) -> Event {
    let json = serde_json::to_string(value).unwrap_or_else(|_| "{}".into());
    Event::default().data(json)
}
