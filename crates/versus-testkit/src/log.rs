//! What the fake server remembers of each chat request it received, in any format.

use std::time::Instant;

use serde_json::Value;

use crate::formats::Format;
use crate::script::Fault;
use crate::wire::SamplingParams;

/// One chat request (in any format) as received, and how it was answered.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The wire format it came in.
    pub format: Format,
    /// Whether it came to one of Azure OpenAI's URLs.
    pub azure: bool,
    /// The batch job it came in (its id), or `None` for a live call.
    pub batch: Option<String>,
    /// The path and query, as sent (`/v1beta/models/g:streamGenerateContent?alt=sse`).
    pub path: String,
    /// Every header, names lowercased, values as sent (keys included: tests check them).
    pub headers: Vec<(String, String)>,
    /// Empty when the body was not a valid request.
    pub model: String,
    /// The text of the last `user` message (text parts joined); empty when there is none.
    pub last_user_text: String,
    /// The `messages` array exactly as sent (`Null` when the body was not a valid request).
    pub messages: Value,
    /// The whole request body as sent (`Null` when it was not JSON).
    pub body: Value,
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    pub params: SamplingParams,
    /// Every image URL in the messages, in order.
    pub image_urls: Vec<String>,
    /// The `Authorization` header, verbatim (`"Bearer sk-..."`).
    pub authorization: Option<String>,
    /// The HTTP status answered (200 for streams, even cut ones).
    pub status: u16,
    /// The fault the script applied, if any.
    pub fault: Option<Fault>,
    /// When the request arrived; compare two of them to check a client's back-off.
    pub received_at: Instant,
}

impl RecordedRequest {
    /// The value of header `name` (any case), if it was sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(header, _)| *header == name)
            .map(|(_, value)| value.as_str())
    }
}
