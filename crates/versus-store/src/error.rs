//! Everything that can go wrong with the database, each message saying what and where.
//!
//! Messages quote SQLite's own words inline, and so no variant exposes the SQLite error as its
//! `source()`: an error chain printed in full (anyhow's `{:#}`) would otherwise say it twice.

use std::path::PathBuf;

use crate::records::RunId;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the database at {}: {cause}; check the path or pass --db", path.display())]
    Open {
        path: PathBuf,
        cause: rusqlite::Error,
    },

    #[error(
        "the database at {} was written by a newer versus (schema {found}, this build knows {supported}); upgrade versus or use another --db",
        path.display()
    )]
    NewerSchema {
        path: PathBuf,
        found: u32,
        supported: u32,
    },

    #[error("cannot upgrade the database at {} to schema {version}: {cause}", path.display())]
    Migration {
        path: PathBuf,
        version: u32,
        cause: rusqlite::Error,
    },

    /// A run's stored plan does not decode into this build's [`versus_core::RunPlan`].
    #[error(
        "run {run}'s plan cannot be read: {reason}; it was stored by an incompatible version of \
         versus (this is {}), so run its suite again to record it anew",
        env!("CARGO_PKG_VERSION")
    )]
    UnreadablePlan { run: RunId, reason: String },

    #[error("no run {0} in this database; `versus runs` lists them")]
    RunNotFound(RunId),

    #[error("run {run} has no cell for {cell}; cells are created with their run")]
    CellNotFound { run: RunId, cell: crate::CellId },

    /// A column holds something this build cannot decode (a damaged file, or one written by
    /// another program).
    #[error("the database holds an unreadable {what}: {reason}")]
    Corrupt { what: String, reason: String },

    #[error("database error: {0}")]
    Sqlite(rusqlite::Error),
}

impl StoreError {
    /// Another connection holds the lock (SQLITE_BUSY or SQLITE_LOCKED past the busy timeout):
    /// worth trying again later, unlike every other error.
    pub fn is_busy(&self) -> bool {
        let cause = match self {
            StoreError::Sqlite(cause)
            | StoreError::Open { cause, .. }
            | StoreError::Migration { cause, .. } => cause,
            _ => return false,
        };
        matches!(
            cause.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_causes_are_told_once_in_a_full_error_chain() {
        let error = StoreError::from(rusqlite::Error::InvalidQuery);
        assert!(std::error::Error::source(&error).is_none());
        assert_eq!(
            error.to_string(),
            format!("database error: {}", rusqlite::Error::InvalidQuery)
        );
    }
}
