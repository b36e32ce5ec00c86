//! Errors of the local engine: each names the file, tensor or field at fault and what to do.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot read {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("{path}: {reason}")]
    InvalidFile { path: PathBuf, reason: String },
    #[error("{file}: field `{field}`: {reason}")]
    Config {
        file: String,
        field: String,
        reason: String,
    },
    #[error("unsupported architecture `{architecture}` in {file}; versus runs Phi3ForCausalLM, LlamaForCausalLM and Qwen2ForCausalLM")]
    UnsupportedArchitecture { file: String, architecture: String },
    #[error("tensor `{name}` in {file}: {reason}")]
    Tensor {
        file: String,
        name: String,
        reason: String,
    },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template of {model}: {reason}")]
    Template { model: String, reason: String },
    #[error("{0}")]
    Candle(String),
    /// A request the model cannot run: no tokens, or a token id outside the vocabulary.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    #[error("{0}")]
    Other(String),
}

impl From<candle_core::Error> for EngineError {
    fn from(error: candle_core::Error) -> EngineError {
        EngineError::Candle(candle_message(&error))
    }
}

/// candle's message without the backtrace candle attaches to it when `RUST_BACKTRACE` is set
/// (its `Display` prints the whole trace; a user needs the message).
pub fn candle_message(error: &candle_core::Error) -> String {
    match error {
        candle_core::Error::WithBacktrace { inner, .. } => candle_message(inner),
        candle_core::Error::WithPath { inner, path } => {
            format!("{}: {}", path.display(), candle_message(inner))
        }
        candle_core::Error::Context { inner, context } => {
            format!("{context}: {}", candle_message(inner))
        }
        other => other.to_string(),
    }
}

/// [`candle_message`] without the path candle adds, for errors that already name the file.
pub(crate) fn candle_reason(error: &candle_core::Error) -> String {
    match error {
        candle_core::Error::WithBacktrace { inner, .. } => candle_reason(inner),
        candle_core::Error::WithPath { inner, .. } => candle_reason(inner),
        other => candle_message(other),
    }
}

/// `text` parsed as JSON, or an error naming the file at `path`.
pub(crate) fn parse_json(text: &str, path: &Path) -> Result<serde_json::Value, EngineError> {
    serde_json::from_str(text).map_err(|e| EngineError::InvalidFile {
        path: path.to_path_buf(),
        reason: format!("invalid JSON: {e}"),
    })
}

/// An error in one field of the JSON file at `path`.
pub(crate) fn config_error(path: &Path, field: &str, reason: impl Into<String>) -> EngineError {
    EngineError::Config {
        file: path.display().to_string(),
        field: field.to_string(),
        reason: reason.into(),
    }
}
