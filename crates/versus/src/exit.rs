//! Exit statuses as a type: what `versus` tells its caller, decided in one place. 0 every cell
//! succeeded (or is unsupported by its model), 1 some cells failed or the command could not
//! finish (a file, database or network error), 2 a usage or configuration error (a bad flag,
//! suite, model file, or a run that does not exist), 130 interrupted.

use std::process::ExitCode;

use versus_core::{ErrorKind, ModelError};
use versus_engine::EngineError;
use versus_store::StoreError;

use crate::settings::UsageError;

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// Everything asked for was done.
    Success,
    /// Some cells failed, or the command stopped on an error that is not the user's to fix in
    /// the command line (I/O, the database, the network).
    Failed,
    /// The command line, a suite, a model file or a named run is wrong: fix it and run again.
    Usage,
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

impl ExitStatus {
    pub fn code(self) -> u8 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failed => 1,
            ExitStatus::Usage => 2,
            ExitStatus::Interrupted => 130,
        }
    }

    /// The status an error ends the process with: a usage or configuration error anywhere in its
    /// chain makes it 2, anything else 1.
    pub fn of_error(error: &anyhow::Error) -> ExitStatus {
        let usage = error.chain().any(|cause| {
            cause.is::<UsageError>()
                || cause.is::<versus_core::SuiteError>()
                || cause.downcast_ref::<StoreError>().is_some_and(store_usage)
                || cause
                    .downcast_ref::<EngineError>()
                    .is_some_and(engine_usage)
                || cause.downcast_ref::<ModelError>().is_some_and(model_usage)
        });
        if usage {
            ExitStatus::Usage
        } else {
            ExitStatus::Failed
        }
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> ExitCode {
        ExitCode::from(status.code())
    }
}

/// Store errors the user causes by what they name: a run that is not there, a file that is not
/// a database (or is a newer one's).
fn store_usage(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::RunNotFound(_) | StoreError::Open { .. } | StoreError::NewerSchema { .. }
    )
}

/// Engine errors about the model the user named (missing, unreadable or malformed files, an
/// architecture or input it cannot take), as against failures while computing.
fn engine_usage(error: &EngineError) -> bool {
    !matches!(error, EngineError::Candle(_) | EngineError::Other(_))
}

/// A model that could not be built from what the user configured (a missing key or model file,
/// a model this build cannot run, an input it cannot take).
fn model_usage(error: &ModelError) -> bool {
    matches!(error.kind, ErrorKind::Config | ErrorKind::Unsupported)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_errors_anywhere_in_the_chain_exit_2_and_others_1() {
        let usage = anyhow::Error::from(UsageError("--port: not a number".into()))
            .context("cannot start the viewer");
        assert_eq!(ExitStatus::of_error(&usage), ExitStatus::Usage);
        let missing_run = anyhow::Error::from(StoreError::RunNotFound(7));
        assert_eq!(ExitStatus::of_error(&missing_run).code(), 2);
        let disk = anyhow::anyhow!("cannot write report.html: No space left on device");
        assert_eq!(ExitStatus::of_error(&disk).code(), 1);
        let engine = anyhow::Error::from(EngineError::Candle("matmul shape mismatch".into()));
        assert_eq!(ExitStatus::of_error(&engine).code(), 1);
        let no_key = anyhow::Error::from(ModelError::new(
            ErrorKind::Config,
            "OPENAI_API_KEY is not set",
        ));
        assert_eq!(ExitStatus::of_error(&no_key).code(), 2);
        let outage = anyhow::Error::from(ModelError::new(ErrorKind::Server, "HTTP 503"));
        assert_eq!(ExitStatus::of_error(&outage).code(), 1);
        assert_eq!(ExitCode::from(ExitStatus::Interrupted), ExitCode::from(130));
    }
}
