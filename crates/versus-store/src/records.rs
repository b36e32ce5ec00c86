//! What goes into the database and what comes back out: runs, cells, stored completions, and
//! the text forms of the enums that columns hold.

use versus_core::{Completion, ErrorKind, FinishReason, RunPlan};

pub use versus_core::RunId;

/// Everything needed to start a run.
#[derive(Debug, Clone, Copy)]
pub struct NewRun<'a> {
    pub suite_name: &'a str,
    pub suite_hash: &'a str,
    pub suite_text: &'a str,
    /// Identifies the plan (tasks x models x parameters), to find an interrupted run to resume.
    pub plan_fingerprint: &'a str,
    pub plan: &'a RunPlan,
    /// Model ids, in the order the suite lists them.
    pub models: &'a [String],
    pub tool_version: &'a str,
    /// Every cell of the run, in the order reports should show them.
    pub cells: &'a [CellId],
}

/// One answer: a task, a model, and which of the task's repeated samples (0 for the first, and
/// for every run that asks each task once).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellId {
    pub task_id: String,
    pub model_id: String,
    pub sample: u32,
}

impl CellId {
    /// The first (or only) sample of a task for a model.
    pub fn first(task_id: impl Into<String>, model_id: impl Into<String>) -> CellId {
        CellId::sample(task_id, model_id, 0)
    }

    /// Sample `sample` (0-based) of a task for a model.
    pub fn sample(task_id: impl Into<String>, model_id: impl Into<String>, sample: u32) -> CellId {
        CellId {
            task_id: task_id.into(),
            model_id: model_id.into(),
            sample,
        }
    }
}

impl std::fmt::Display for CellId {
    /// "task `t`, model `m`", with "sample 3" when it is not the first: how errors name a cell.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "task `{}`, model `{}`", self.task_id, self.model_id)?;
        if self.sample > 0 {
            write!(f, ", sample {}", self.sample + 1)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Finished,
    /// Stopped by the user or an error before every cell was done; resumable.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Finished => "finished",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub(crate) fn from_column(text: &str) -> Option<RunStatus> {
        [
            RunStatus::Running,
            RunStatus::Finished,
            RunStatus::Interrupted,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellStatus {
    /// Not done yet (or interrupted before it finished).
    Pending,
    Ok,
    Failed,
    /// The model cannot take this task (e.g. images for a text-only model); never retried.
    Unsupported,
}

impl CellStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CellStatus::Pending => "pending",
            CellStatus::Ok => "ok",
            CellStatus::Failed => "failed",
            CellStatus::Unsupported => "unsupported",
        }
    }

    pub(crate) fn from_column(text: &str) -> Option<CellStatus> {
        [
            CellStatus::Pending,
            CellStatus::Ok,
            CellStatus::Failed,
            CellStatus::Unsupported,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// A run as `versus runs` lists it.
#[derive(Debug, Clone)]
pub struct RunSummary {
    pub id: RunId,
    pub suite_name: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: RunStatus,
    pub models: Vec<String>,
    pub cells_total: u64,
    pub cells_ok: u64,
    pub cells_failed: u64,
    pub cells_unsupported: u64,
    pub cells_pending: u64,
    /// Batches submitted to a provider and not yet read back (`versus run --batch`).
    pub batches_waiting: u64,
    pub tool_version: String,
}

/// A run with everything it was started from.
#[derive(Debug, Clone)]
pub struct RunRecord {
    pub summary: RunSummary,
    pub suite_hash: String,
    pub suite_text: String,
    pub plan_fingerprint: String,
    /// Decoded once, here: every reader of a run gets this typed plan or the store's error.
    pub plan: RunPlan,
}

/// A completion from the cache.
#[derive(Debug, Clone)]
pub struct StoredCompletion {
    pub key: String,
    pub model_spec: String,
    pub completion: Completion,
    pub created_at: String,
}

#[derive(Debug, Clone)]
pub struct CellError {
    pub kind: ErrorKind,
    pub message: String,
}

/// One cell of a run as stored.
#[derive(Debug, Clone)]
pub struct CellRecord {
    pub task_id: String,
    pub model_id: String,
    /// Which repeated sample of the task this is (0-based).
    pub sample: u32,
    pub status: CellStatus,
    /// Set when the status is `Ok`.
    pub completion: Option<StoredCompletion>,
    /// Set when the status is `Failed`, and for `Unsupported` (kind `Unsupported`, the reason as
    /// the message).
    pub error: Option<CellError>,
    /// Whether the completion was reused from the cache rather than asked for in this run.
    pub cached: bool,
    /// Calls this cell made in its run: 0 while pending, for cached and for unsupported cells.
    pub attempts: u32,
    /// When the cell last changed; `None` while it has never been recorded.
    pub updated_at: Option<String>,
}

impl CellRecord {
    /// The cell's identity.
    pub fn id(&self) -> CellId {
        CellId::sample(&self.task_id, &self.model_id, self.sample)
    }
}

/// How a cell ended, as the runner reports it.
// One outcome lives per finished cell, briefly, on its way to the database: the completion's
// size costs nothing worth a box on every construction.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum CellOutcome {
    Completed {
        key: String,
        model_spec: String,
        request_json: String,
        completion: Completion,
        /// Reused from the cache: the completion is already stored under `key` and is left as it is.
        cached: bool,
    },
    Failed {
        kind: ErrorKind,
        message: String,
        attempts: u32,
    },
    Unsupported {
        reason: String,
    },
}

/// The text a finish reason is stored as: the same words the chat APIs use.
pub(crate) fn finish_reason_to_column(reason: &FinishReason) -> &str {
    reason.as_str()
}

/// The inverse of [`finish_reason_to_column`]. Unlike `FinishReason::from_wire` it maps no
/// synonyms (`eos`), so that every stored `Other` reason comes back verbatim.
pub(crate) fn finish_reason_from_column(text: &str) -> FinishReason {
    match text {
        "stop" => FinishReason::Stop,
        "length" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        "tool_calls" => FinishReason::ToolCalls,
        "unknown" => FinishReason::Unknown,
        other => FinishReason::Other(other.to_string()),
    }
}

/// The text an error kind is stored as: its serde name (`rate_limited`), the same word the
/// JSON reports use.
pub(crate) fn error_kind_to_column(kind: ErrorKind) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(name)) => name,
        // A fieldless enum always serializes to a string; the Debug name still identifies it.
        _ => format!("{kind:?}"),
    }
}

pub(crate) fn error_kind_from_column(text: &str) -> Option<ErrorKind> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_finish_reason_round_trips_through_its_column() {
        for reason in [
            FinishReason::Stop,
            FinishReason::Length,
            FinishReason::ContentFilter,
            FinishReason::ToolCalls,
            FinishReason::Unknown,
            FinishReason::Other("eos".into()),
            FinishReason::Other("end_turn".into()),
        ] {
            assert_eq!(
                finish_reason_from_column(finish_reason_to_column(&reason)),
                reason
            );
        }
    }

    #[test]
    fn statuses_round_trip_through_their_columns() {
        for status in [
            RunStatus::Running,
            RunStatus::Finished,
            RunStatus::Interrupted,
        ] {
            assert_eq!(RunStatus::from_column(status.as_str()), Some(status));
        }
        for status in [
            CellStatus::Pending,
            CellStatus::Ok,
            CellStatus::Failed,
            CellStatus::Unsupported,
        ] {
            assert_eq!(CellStatus::from_column(status.as_str()), Some(status));
        }
        assert_eq!(CellStatus::from_column("done"), None);
    }

    #[test]
    fn error_kinds_are_stored_by_their_serde_names() {
        assert_eq!(error_kind_to_column(ErrorKind::RateLimited), "rate_limited");
        assert_eq!(
            error_kind_from_column("invalid_response"),
            Some(ErrorKind::InvalidResponse)
        );
        assert_eq!(error_kind_from_column("gremlins"), None);
    }
}
