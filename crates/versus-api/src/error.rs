//! Errors from setting a client up (`ApiError`); failures of calls are `versus_core::ModelError`,
//! built in `fault.rs`.

use versus_core::{ErrorKind, ModelError};

/// Why an `OpenAiClient` could not be built. Never carries the API key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("invalid base_url `{url}`: {reason}")]
    InvalidBaseUrl { url: String, reason: String },
    #[error(
        "the API key{} cannot be sent in an HTTP header: it contains a line break or another \
         character headers cannot carry",
        key_hint.as_deref().map(|hint| format!(" in {hint}")).unwrap_or_default()
    )]
    InvalidApiKey { key_hint: Option<String> },
    #[error("an endpoint pool needs at least one endpoint")]
    EmptyPool,
    #[error("could not set up the HTTP client: {reason}")]
    HttpClient { reason: String },
}

impl From<ApiError> for ModelError {
    fn from(error: ApiError) -> ModelError {
        ModelError::new(ErrorKind::Config, error.to_string())
    }
}
