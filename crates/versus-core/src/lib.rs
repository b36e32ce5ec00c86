//! versus-core: the vocabulary every other crate speaks (suites, tasks, messages, model specs,
//! generation parameters, completions) and the pure computations on it. No I/O lives here:
//! no files, no network, no clock, no database.

pub mod builtin;
pub mod checks;
pub mod completion;
pub mod fenced;
pub mod fingerprint;
pub mod judge_measures;
pub mod message;
pub mod metrics;
pub mod model;
pub mod params;
mod random;
pub mod ratings;
pub mod record;
pub mod redact;
pub mod significance;
pub mod spec;
pub mod stats;
pub mod suggest;
pub mod suite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod verdict;
pub mod wire_api;

pub use completion::{
    ChatModel, ChatRequest, Completion, ErrorKind, FinishReason, ModelError, ServerTimings,
    Timings, Usage,
};
pub use message::{ContentPart, Message, Role};
pub use model::{
    DTypeChoice, DeviceChoice, LocalOptions, Modality, ModelConfig, ModelMetadata, Price,
    Quantization,
};
pub use params::GenerationParams;
pub use record::{JudgeVerdict, Judgement, JudgementKind, RunId, RunPlan, Vote, VoteSource};
pub use spec::ModelSpec;
pub use suite::{Defaults, FileRef, JudgeConfig, Location, Suite, SuiteError, SuiteSource, Task};
pub use wire_api::{OpenAiApi, Param, ReasoningEffort, WireApi};
