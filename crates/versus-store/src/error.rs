//! Everything that can go wrong with the database, each message saying what and where.
//!
//! Messages quote the backend's own words inline, and so no variant exposes the backend's error
//! as its `source()`: an error chain printed in full (anyhow's `{:#}`) would otherwise say it
//! twice.

use crate::records::RunId;

/// What a backend (SQLite or PostgreSQL) reported.
#[derive(Debug)]
pub enum BackendError {
    Sqlite(rusqlite::Error),
    Postgres(postgres::Error),
    /// The thread that owns the PostgreSQL connection could not start or is gone.
    Thread(String),
}

impl std::fmt::Display for BackendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendError::Sqlite(error) => write!(f, "{error}"),
            BackendError::Postgres(error) => match error.as_db_error() {
                Some(db) => {
                    write!(f, "PostgreSQL {}: {}", db.code().code(), db.message())?;
                    if let Some(detail) = db.detail() {
                        write!(f, " ({detail})")?;
                    }
                    Ok(())
                }
                None => {
                    write!(f, "PostgreSQL: {error}")?;
                    // The client's own words for I/O and connection errors are in the source.
                    if let Some(source) = std::error::Error::source(error) {
                        write!(f, ": {source}")?;
                    }
                    Ok(())
                }
            },
            BackendError::Thread(message) => write!(f, "{message}"),
        }
    }
}

impl From<rusqlite::Error> for BackendError {
    fn from(error: rusqlite::Error) -> BackendError {
        BackendError::Sqlite(error)
    }
}

impl From<postgres::Error> for BackendError {
    fn from(error: postgres::Error) -> BackendError {
        BackendError::Postgres(error)
    }
}

impl BackendError {
    /// Another connection holds a lock (SQLITE_BUSY or SQLITE_LOCKED past the busy timeout), or
    /// PostgreSQL gave up a transaction to a conflict (serialization failure, deadlock, lock
    /// timeout): worth trying again later, unlike every other error.
    pub fn is_busy(&self) -> bool {
        match self {
            BackendError::Sqlite(cause) => matches!(
                cause.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            BackendError::Postgres(cause) => cause.code().is_some_and(|code| {
                use postgres::error::SqlState;
                [
                    SqlState::T_R_SERIALIZATION_FAILURE,
                    SqlState::T_R_DEADLOCK_DETECTED,
                    SqlState::LOCK_NOT_AVAILABLE,
                ]
                .contains(code)
            }),
            BackendError::Thread(_) => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `location` is the file, or the PostgreSQL URL without its password.
    #[error(
        "cannot open the database at {location}: {cause}; {}",
        open_hint(cause)
    )]
    Open {
        location: String,
        cause: BackendError,
    },

    #[error(
        "the database at {location} was written by a newer versus (schema {found}, this build knows {supported}); upgrade versus or use another --db"
    )]
    NewerSchema {
        location: String,
        found: u32,
        supported: u32,
    },

    #[error("cannot upgrade the database at {location} to schema {version}: {cause}")]
    Migration {
        location: String,
        version: u32,
        cause: BackendError,
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
    Backend(BackendError),
}

/// What to check when a database cannot be opened.
fn open_hint(cause: &BackendError) -> &'static str {
    match cause {
        BackendError::Sqlite(_) => "check the path or pass --db",
        BackendError::Postgres(_) | BackendError::Thread(_) => {
            "check the URL (host, port, database, user, password) and that the server is \
             running, or pass another --db"
        }
    }
}

impl StoreError {
    /// Worth trying again later (see [`BackendError::is_busy`]), unlike every other error.
    pub fn is_busy(&self) -> bool {
        match self {
            StoreError::Backend(cause)
            | StoreError::Open { cause, .. }
            | StoreError::Migration { cause, .. } => cause.is_busy(),
            _ => false,
        }
    }
}

impl From<BackendError> for StoreError {
    fn from(error: BackendError) -> StoreError {
        StoreError::Backend(error)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> StoreError {
        StoreError::Backend(BackendError::Sqlite(error))
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
