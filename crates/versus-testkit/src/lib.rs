//! A scripted, fault-injecting chat server on 127.0.0.1 speaking every wire format versus does,
//! for tests and benchmarks of versus.
//!
//! [`FakeServer`] serves OpenAI's `POST /v1/chat/completions` and `POST /v1/responses`,
//! Anthropic's `POST /v1/messages`, Gemini's `POST /v1/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse`, Azure OpenAI's `/openai/deployments/{deployment}/...` and
//! `/openai/v1/...` URLs, Ollama's `POST /api/chat` (each streamed or not, in its own format), and
//! `GET /v1/models`; [`Format`] names them.
//! By default every request gets [`default_answer`]`(model, last user message)`, with usage counted
//! in words ([`word_count`]: prompt tokens over every message's text, completion tokens over the
//! answer), so tests can predict outputs exactly. Streamed answers arrive in the pieces given by
//! [`answer_deltas`].
//!
//! A [`Script`] of [`Rule`]s bends that: each request goes to the first rule that matches it (by
//! model and/or a substring of the last user message), which hands out its queued [`Fault`]s one
//! per request, then its `fault_forever` fault if it has one, then normal answers (its own
//! `answer` text if set, after its `thinking` if set). Faults take each format's own shape (an
//! Anthropic `error` event, Gemini's SAFETY block, ...). Every request is logged as a
//! [`RecordedRequest`].
//!
//! ```
//! use std::time::Duration;
//! use versus_testkit::{FakeServer, Fault, Rule, Script};
//!
//! let script = Script::new()
//!     // The first request for m1 is rate limited, the retry succeeds.
//!     .rule(Rule::model("m1").fault(Fault::status(429).retry_after("1")))
//!     // m2's first stream about sunrises stops after two content chunks, mid-answer.
//!     .rule(Rule::model("m2").prompt_contains("sunrise").fault(Fault::cut_stream(2)))
//!     // m3 never answers in time.
//!     .rule(Rule::model("m3").fault_forever(Fault::delay(Duration::from_secs(30))));
//! let server = FakeServer::start_in_thread(script).expect("start the fake server");
//! // Point the client (e.g. the versus binary, as a subprocess) at `server.base_url()`, then:
//! assert!(server.base_url().starts_with("http://127.0.0.1:"));
//! assert_eq!(server.count_where(|request| request.model == "m1"), 0);
//! ```
//!
//! [`html`] holds the one check, used by every test of rendered pages, that a page is inert.

mod batches;
mod formats;
pub mod html;
mod log;
mod script;
mod server;
mod wire;

pub use formats::Format;
pub use log::RecordedRequest;
pub use script::{Fault, Rule, Script};
pub use server::FakeServer;
pub use wire::{answer_deltas, default_answer, openai_error_body, word_count, SamplingParams};
