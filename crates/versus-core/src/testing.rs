//! Test support (the `testing` feature): [`ScriptedModel`], the one scripted [`ChatModel`] every
//! crate's tests use in place of a real model, with no socket, clock or runtime of its own.
//!
//! It answers by rules on the request's text (the first rule whose needle occurs wins, else the
//! default answer), streams its answer in pieces with a yield between them (so a caller can drop
//! it mid-answer), can fail, can wait on a gate before answering, and records what it was asked.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use async_trait::async_trait;

use crate::{ChatModel, ChatRequest, Completion, FinishReason, ModelError, Role, Timings, Usage};

/// What a scripted model does for a request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Stream these pieces, then finish with their concatenation.
    Answer(Vec<String>),
    /// Stream these pieces (none: fail at once), then fail with the error, as a stream cut
    /// mid-way does.
    Fail(Vec<String>, ModelError),
}

impl Reply {
    /// One piece of text.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::Answer(vec![text.into()])
    }
}

/// A future awaited before each answer: a test holds it shut to keep requests in flight.
pub type Gate = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;

/// A [`ChatModel`] that follows a script. See the module documentation.
pub struct ScriptedModel {
    rules: Vec<(String, Reply)>,
    default: Reply,
    gate: Option<Gate>,
    started: AtomicUsize,
    cancelled: Arc<AtomicBool>,
    requests: Mutex<Vec<ChatRequest>>,
}

impl ScriptedModel {
    /// A model that always answers `text`, in one piece.
    pub fn answering(text: impl Into<String>) -> ScriptedModel {
        ScriptedModel::replying(Reply::text(text))
    }

    /// A model that always streams `pieces`.
    pub fn streaming<S: Into<String>>(pieces: impl IntoIterator<Item = S>) -> ScriptedModel {
        ScriptedModel::replying(Reply::Answer(pieces.into_iter().map(Into::into).collect()))
    }

    /// A model that always fails with `error`.
    pub fn failing(error: ModelError) -> ScriptedModel {
        ScriptedModel::replying(Reply::Fail(Vec::new(), error))
    }

    /// A model that always streams `pieces`, then fails with `error`.
    pub fn failing_after<S: Into<String>>(
        pieces: impl IntoIterator<Item = S>,
        error: ModelError,
    ) -> ScriptedModel {
        let pieces = pieces.into_iter().map(Into::into).collect();
        ScriptedModel::replying(Reply::Fail(pieces, error))
    }

    /// A model whose default reply is `reply`.
    pub fn replying(reply: Reply) -> ScriptedModel {
        ScriptedModel {
            rules: Vec::new(),
            default: reply,
            gate: None,
            started: AtomicUsize::new(0),
            cancelled: Arc::new(AtomicBool::new(false)),
            requests: Mutex::new(Vec::new()),
        }
    }

    /// Answers `text` to requests whose messages contain `needle`; earlier rules win.
    pub fn when(self, needle: impl Into<String>, text: impl Into<String>) -> ScriptedModel {
        self.when_reply(needle, Reply::text(text))
    }

    /// Replies `reply` to requests whose messages contain `needle`; earlier rules win.
    pub fn when_reply(mut self, needle: impl Into<String>, reply: Reply) -> ScriptedModel {
        self.rules.push((needle.into(), reply));
        self
    }

    /// Waits on `gate` before each answer.
    pub fn gated(mut self, gate: Gate) -> ScriptedModel {
        self.gate = Some(gate);
        self
    }

    /// How many requests have started.
    pub fn started(&self) -> usize {
        self.started.load(Ordering::SeqCst)
    }

    /// Set once an answer was dropped before it finished (a cancelled request).
    pub fn cancelled(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.cancelled)
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<ChatRequest> {
        self.requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    fn reply_for(&self, request: &ChatRequest) -> &Reply {
        let text: String = request
            .messages
            .iter()
            .map(|m| m.text_content())
            .collect::<Vec<_>>()
            .join("\n");
        self.rules
            .iter()
            .find(|(needle, _)| text.contains(needle.as_str()))
            .map_or(&self.default, |(_, reply)| reply)
    }
}

/// Sets the cancelled flag unless disarmed: dropping an answer mid-way is a cancellation.
struct Unfinished {
    cancelled: Arc<AtomicBool>,
    finished: bool,
}

impl Drop for Unfinished {
    fn drop(&mut self) {
        if !self.finished {
            self.cancelled.store(true, Ordering::SeqCst);
        }
    }
}

/// Returns `Pending` once, waking itself: lets other tasks run between streamed pieces without
/// naming a runtime.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            context.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[async_trait]
impl ChatModel for ScriptedModel {
    async fn complete(
        &self,
        request: &ChatRequest,
        on_text: &mut (dyn for<'t> FnMut(&'t str) + Send),
    ) -> Result<Completion, ModelError> {
        let mut guard = Unfinished {
            cancelled: Arc::clone(&self.cancelled),
            finished: false,
        };
        self.started.fetch_add(1, Ordering::SeqCst);
        self.requests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(request.clone());
        if let Some(gate) = &self.gate {
            gate().await;
        }
        let (pieces, error) = match self.reply_for(request).clone() {
            Reply::Answer(pieces) => (pieces, None),
            Reply::Fail(pieces, error) => (pieces, Some(error)),
        };
        for piece in &pieces {
            on_text(piece);
            YieldOnce(false).await;
        }
        guard.finished = true;
        if let Some(error) = error {
            return Err(error);
        }
        let prompt_tokens = request
            .messages
            .iter()
            .filter(|m| m.role != Role::Assistant)
            .count() as u64;
        Ok(Completion {
            text: pieces.concat(),
            finish_reason: FinishReason::Stop,
            usage: Some(Usage::new(prompt_tokens.max(1) + 2, pieces.len() as u64)),
            timings: Timings {
                latency_ms: 1.0,
                ttft_ms: None,
            },
            served_model: None,
            attempts: 1,
            thinking: None,
            server_timings: None,
            via_batch: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ErrorKind, GenerationParams, Message};

    fn ask(text: &str) -> ChatRequest {
        ChatRequest {
            messages: vec![Message::text(Role::User, text)],
            params: GenerationParams::default(),
        }
    }

    #[tokio::test]
    async fn rules_pick_the_answer_and_pieces_stream_in_order() {
        let model = ScriptedModel::streaming(["de", "fault"]).when("weather", "sunny");
        let mut seen = Vec::new();
        let plain = model
            .complete(&ask("hello"), &mut |t| seen.push(t.to_string()))
            .await
            .unwrap();
        assert_eq!(
            (plain.text.as_str(), seen),
            ("default", vec!["de".to_string(), "fault".to_string()])
        );
        let ruled = model
            .complete(&ask("the weather?"), &mut |_| {})
            .await
            .unwrap();
        assert_eq!(ruled.text, "sunny");
        assert_eq!(model.started(), 2);
        assert_eq!(
            model.requests()[1].messages[0].text_content(),
            "the weather?"
        );
        assert!(!model.cancelled().load(Ordering::SeqCst));
    }

    #[tokio::test]
    async fn failures_are_returned_as_scripted() {
        let model = ScriptedModel::failing(ModelError::new(ErrorKind::Server, "boom"));
        let error = model.complete(&ask("x"), &mut |_| {}).await.unwrap_err();
        assert_eq!(
            (error.kind, error.message.as_str()),
            (ErrorKind::Server, "boom")
        );
    }
}
