//! versus-engine: runs open-weight models in-process on candle. The only crate that names candle.
//!
//! Model sources (`source`) resolve a spec to files; `config` reads a family's hyper-parameters;
//! `weights` loads safetensors or GGUF tensors; `decoder` is the one transformer for every family;
//! `tokenizer` (with `tokenizer_config` and `generation_config`, the readers of those files) and
//! `template` turn chat messages into token ids the way transformers does;
//! `sampling` and `generate` produce text.

pub mod assets;
pub mod attention;
pub mod config;
pub mod decoder;
pub mod detokenize;
pub mod error;
mod files;
pub mod generate;
mod generation_config;
pub mod gguf;
mod gguf_tokenizer;
pub mod kernels;
pub mod kv_cache;
pub mod local;
pub mod matrix;
pub mod rope;
pub mod sampling;
pub mod scheduler;
pub mod source;
pub mod template;
pub mod tiny;
pub mod tokenizer;
mod tokenizer_config;
pub mod weights;

pub use error::EngineError;
pub use local::{LoadOptions, LocalModel, ModelInfo};
