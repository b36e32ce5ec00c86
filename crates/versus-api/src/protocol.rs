//! What one provider's wire format decides (`Protocol`): where a request goes, its headers and
//! body, and what each piece of an answer (a whole JSON body, an SSE event, an NDJSON line) says,
//! as `Update`s. The transport in `client.rs` does everything else (timeouts, retries, limits,
//! the text forwarder, key scrubbing) the same way for every provider.

use reqwest::header::{HeaderName, HeaderValue};
use reqwest::Url;
use versus_core::{ChatRequest, FinishReason, ModelError, ServerTimings};

use crate::wire::ErrorDetail;

/// How a streamed answer is cut into items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// Server-sent events (`data:` lines, blank-line separated).
    Sse,
    /// One JSON object per line (Ollama).
    Ndjson,
}

/// One item of a streamed answer: an SSE event (with its `event:` name) or an NDJSON line.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamItem<'a> {
    pub event: Option<&'a str>,
    pub data: &'a str,
}

/// Token counts an item reports; later reports replace earlier ones field by field, so a
/// provider that sends input counts first and output counts last (Anthropic) adds up to one
/// `Usage`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct UsageReport {
    pub prompt: Option<u64>,
    pub completion: Option<u64>,
    pub reasoning: Option<u64>,
    pub cached: Option<u64>,
    pub cache_write: Option<u64>,
}

/// What an item says.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Update {
    /// A piece of the answer.
    Text(String),
    /// A piece of the model's thinking, kept apart from the answer.
    Thinking(String),
    Finish(FinishReason),
    Usage(UsageReport),
    /// The model that answered, as the server names it.
    Model(String),
    /// The server's own timings (Ollama).
    ServerTimings(ServerTimings),
    /// The answer is complete (`[DONE]`, `message_stop`, `response.completed`, `done: true`).
    Done,
}

/// Why an item could not be taken as an answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Problem {
    /// Not in the format; `received` is quoted back (scrubbed and cut).
    Malformed { what: String, received: String },
    /// An error where an answer was expected (a 200 body or a stream event).
    Reported(ErrorDetail),
    /// The provider withheld the answer (a safety block, a refusal), with its reason.
    Blocked(String),
}

impl Problem {
    pub fn malformed(what: impl Into<String>, received: &str) -> Problem {
        Problem::Malformed {
            what: what.into(),
            received: received.to_string(),
        }
    }
}

/// One provider's wire format.
pub(crate) trait Protocol: Send + Sync {
    /// How messages name the format: "the Anthropic Messages format".
    fn format_name(&self) -> &'static str;

    /// Where a request goes (streamed or not: Gemini's differ).
    fn url(&self, stream: bool) -> Url;

    /// The headers that carry the key (marked sensitive by the caller), e.g.
    /// `Authorization: Bearer KEY` or `x-api-key: KEY`.
    fn auth_headers(&self, key: &str) -> Vec<(HeaderName, String)>;

    /// Headers every request carries besides the key (`anthropic-version`).
    fn fixed_headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        Vec::new()
    }

    /// The request body.
    fn body(&self, request: &ChatRequest, stream: bool) -> Result<Vec<u8>, ModelError>;

    /// How a streamed answer is framed.
    fn framing(&self) -> Framing {
        Framing::Sse
    }

    /// What one streamed item says.
    fn read_item(&self, item: StreamItem<'_>) -> Result<Vec<Update>, Problem>;

    /// What a whole (non-streamed) JSON answer says.
    fn read_whole(&self, body: &str) -> Result<Vec<Update>, Problem>;

    /// Whether a rejected request was rejected for its key although its status is not 401 or
    /// 403 (Gemini answers a bad key with 400 `API_KEY_INVALID`).
    fn rejects_key(&self, _status: u16, _body: &[u8]) -> bool {
        false
    }
}

/// Parses `data` as JSON or says it is malformed.
pub(crate) fn json_value(data: &str, what: &str) -> Result<serde_json::Value, Problem> {
    serde_json::from_str(data)
        .map_err(|error| Problem::malformed(format!("{what} is not JSON ({error})"), data))
}

/// Decodes a parsed value into a wire type or says it has the wrong shape.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    data: &str,
    what: &str,
) -> Result<T, Problem> {
    serde_json::from_value(value)
        .map_err(|error| Problem::malformed(format!("{what} has the wrong shape ({error})"), data))
}

/// An image part's `data:` URL split into its media type and base64 payload; `None` for other
/// URLs (`https://...`).
pub(crate) fn data_url_parts(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (header, payload) = rest.split_once(',')?;
    let media_type = header.strip_suffix(";base64")?;
    Some((media_type, payload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_urls_split_into_type_and_payload() {
        assert_eq!(
            data_url_parts("data:image/png;base64,iVBOR"),
            Some(("image/png", "iVBOR"))
        );
        assert_eq!(data_url_parts("https://example.com/a.png"), None);
        assert_eq!(data_url_parts("data:image/png,plain"), None);
    }
}
