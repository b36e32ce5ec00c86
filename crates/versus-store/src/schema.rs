//! The database schema as an ordered list of migrations, and the code that brings a database up
//! to date. `PRAGMA user_version` records how many migrations a database has had.
//!
//! To change the schema, append a script to [`MIGRATIONS`]; never edit one that has shipped,
//! because databases in the wild have already run it.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::error::StoreError;

/// SQLite's own clock as an SQL expression, in the one form every timestamp column holds:
/// ISO 8601, UTC, millisecond precision (`2025-01-31T12:00:00.123Z`). A macro rather than a
/// constant so that it can be spliced into SQL text with `concat!`.
macro_rules! sql_now {
    () => {
        "strftime('%Y-%m-%dT%H:%M:%fZ','now')"
    };
}
pub(crate) use sql_now;

/// Migration 1: runs, their cells, and the completion cache.
const CREATE_RUNS_CELLS_COMPLETIONS: &str = concat!(
    "
CREATE TABLE runs (
    id               INTEGER PRIMARY KEY,
    suite_name       TEXT NOT NULL,
    suite_hash       TEXT NOT NULL,
    suite_text       TEXT NOT NULL,
    plan_fingerprint TEXT NOT NULL,
    plan_json        TEXT NOT NULL,
    models_json      TEXT NOT NULL,
    tool_version     TEXT NOT NULL,
    status           TEXT NOT NULL CHECK (status IN ('running', 'finished', 'interrupted')),
    started_at       TEXT NOT NULL DEFAULT (",
    sql_now!(),
    "),
    finished_at      TEXT
);
CREATE INDEX runs_by_plan_fingerprint ON runs (plan_fingerprint);

CREATE TABLE completions (
    key               TEXT PRIMARY KEY,
    model_spec        TEXT NOT NULL,
    request_json      TEXT NOT NULL,
    text              TEXT NOT NULL,
    finish_reason     TEXT NOT NULL,
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    latency_ms        REAL NOT NULL,
    ttft_ms           REAL,
    served_model      TEXT,
    attempts          INTEGER NOT NULL,
    created_at        TEXT NOT NULL DEFAULT (",
    sql_now!(),
    ")
);

CREATE TABLE cells (
    run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id        TEXT NOT NULL,
    model_id       TEXT NOT NULL,
    position       INTEGER NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'failed', 'unsupported')),
    completion_key TEXT REFERENCES completions (key),
    error_kind     TEXT,
    error_message  TEXT,
    cached         INTEGER NOT NULL DEFAULT 0,
    attempts       INTEGER NOT NULL DEFAULT 0,
    updated_at     TEXT,
    PRIMARY KEY (run_id, task_id, model_id)
);
-- Foreign-key checks look cells up by completion key; without an index each check scans.
CREATE INDEX cells_by_completion_key ON cells (completion_key);
"
);

/// Migration 2: what grading adds: scores of stored answers, the cache of expensive evaluations
/// (code runs, judge calls), judge verdicts, and votes from people and imports.
const CREATE_SCORES_JUDGEMENTS_VOTES: &str = concat!(
    "
CREATE TABLE scores (
    run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id     TEXT NOT NULL,
    model_id    TEXT NOT NULL,
    scorer      TEXT NOT NULL,
    value       REAL,
    passed      INTEGER,
    explanation TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (",
    sql_now!(),
    "),
    PRIMARY KEY (run_id, task_id, model_id, scorer)
);

CREATE TABLE evaluations (
    key         TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    result_json TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (",
    sql_now!(),
    ")
);

CREATE TABLE judgements (
    run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id     TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('pairwise', 'single')),
    model_a     TEXT NOT NULL,
    model_b     TEXT NOT NULL DEFAULT '',
    judge       TEXT NOT NULL,
    verdict     TEXT NOT NULL,
    rating      REAL,
    detail_json TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (",
    sql_now!(),
    "),
    PRIMARY KEY (run_id, task_id, kind, model_a, model_b, judge)
);

CREATE TABLE votes (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER REFERENCES runs (id) ON DELETE SET NULL,
    task_id    TEXT,
    category   TEXT,
    model_a    TEXT NOT NULL,
    model_b    TEXT NOT NULL,
    winner     TEXT NOT NULL CHECK (winner IN ('model_a', 'model_b', 'tie', 'tie (bothbad)')),
    source     TEXT NOT NULL CHECK (source IN ('human', 'import')),
    voter      TEXT,
    judge      TEXT,
    created_at TEXT NOT NULL DEFAULT (",
    sql_now!(),
    ")
);
"
);

/// Migration 3: repeated samples. A cell is one answer to one task by one model, and a task may
/// be asked `samples` times, so cells and scores gain a `sample` index (0 for every row a
/// database had before) in their primary keys. SQLite cannot change a primary key in place, so
/// both tables are rebuilt and their rows copied.
const ADD_SAMPLE_INDEX: &str = concat!(
    "
CREATE TABLE cells_with_samples (
    run_id         INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id        TEXT NOT NULL,
    model_id       TEXT NOT NULL,
    sample         INTEGER NOT NULL DEFAULT 0 CHECK (sample >= 0),
    position       INTEGER NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'failed', 'unsupported')),
    completion_key TEXT REFERENCES completions (key),
    error_kind     TEXT,
    error_message  TEXT,
    cached         INTEGER NOT NULL DEFAULT 0,
    attempts       INTEGER NOT NULL DEFAULT 0,
    updated_at     TEXT,
    PRIMARY KEY (run_id, task_id, model_id, sample)
);
INSERT INTO cells_with_samples (run_id, task_id, model_id, sample, position, status,
    completion_key, error_kind, error_message, cached, attempts, updated_at)
SELECT run_id, task_id, model_id, 0, position, status, completion_key, error_kind,
    error_message, cached, attempts, updated_at FROM cells;
DROP TABLE cells;
ALTER TABLE cells_with_samples RENAME TO cells;
CREATE INDEX cells_by_completion_key ON cells (completion_key);

CREATE TABLE scores_with_samples (
    run_id      INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id     TEXT NOT NULL,
    model_id    TEXT NOT NULL,
    sample      INTEGER NOT NULL DEFAULT 0 CHECK (sample >= 0),
    scorer      TEXT NOT NULL,
    value       REAL,
    passed      INTEGER,
    explanation TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (",
    sql_now!(),
    "),
    PRIMARY KEY (run_id, task_id, model_id, sample, scorer)
);
INSERT INTO scores_with_samples (run_id, task_id, model_id, sample, scorer, value, passed,
    explanation, created_at)
SELECT run_id, task_id, model_id, 0, scorer, value, passed, explanation, created_at FROM scores;
DROP TABLE scores;
ALTER TABLE scores_with_samples RENAME TO scores;
"
);

/// Version 4: which process works on a run (one at a time), with its heartbeat.
const ADD_RUN_OWNERS: &str = "
CREATE TABLE run_owners (
    run_id       INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    pid          INTEGER NOT NULL,
    host         TEXT NOT NULL,
    claimed_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
";

/// Migration 5: what the native APIs report beside the answer: the details of usage (thinking,
/// cached and cache-write tokens), the thinking itself (kept apart from the answer), and the
/// server's own timings (Ollama's durations). All nullable: older answers have none.
const ADD_COMPLETION_DETAILS: &str = "
ALTER TABLE completions ADD COLUMN reasoning_tokens INTEGER;
ALTER TABLE completions ADD COLUMN cached_prompt_tokens INTEGER;
ALTER TABLE completions ADD COLUMN cache_write_tokens INTEGER;
ALTER TABLE completions ADD COLUMN thinking TEXT;
ALTER TABLE completions ADD COLUMN server_total_ms REAL;
ALTER TABLE completions ADD COLUMN server_load_ms REAL;
ALTER TABLE completions ADD COLUMN server_prompt_ms REAL;
ALTER TABLE completions ADD COLUMN server_generation_ms REAL;
";

/// Migration 6: batch mode (`versus run --batch`). A batch submitted to a provider is recorded
/// with its id and its cells before anything else happens, so that an interrupted run polls it
/// instead of paying for the cells twice; answers taken from a batch are marked (`via_batch`).
const ADD_BATCHES: &str = concat!(
    "
ALTER TABLE completions ADD COLUMN via_batch INTEGER NOT NULL DEFAULT 0;

CREATE TABLE batches (
    id                INTEGER PRIMARY KEY,
    run_id            INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    model_id          TEXT NOT NULL,
    provider_batch_id TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'ended', 'failed')),
    reason            TEXT,
    submitted_at      TEXT NOT NULL DEFAULT (",
    sql_now!(),
    "),
    closed_at         TEXT
);
CREATE INDEX batches_by_run ON batches (run_id, status);

CREATE TABLE batch_cells (
    batch_id  INTEGER NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    custom_id TEXT NOT NULL,
    task_id   TEXT NOT NULL,
    model_id  TEXT NOT NULL,
    sample    INTEGER NOT NULL,
    PRIMARY KEY (batch_id, custom_id)
);
"
);

/// Every migration, in order: a database at version N has had the first N applied.
pub(crate) const MIGRATIONS: &[&str] = &[
    CREATE_RUNS_CELLS_COMPLETIONS,
    CREATE_SCORES_JUDGEMENTS_VOTES,
    ADD_SAMPLE_INDEX,
    ADD_RUN_OWNERS,
    ADD_COMPLETION_DETAILS,
    ADD_BATCHES,
];

/// The schema version this build writes.
pub(crate) fn latest_version(migrations: &[&str]) -> u32 {
    u32::try_from(migrations.len()).unwrap_or(u32::MAX)
}

pub(crate) fn read_version(conn: &Connection) -> Result<u32, rusqlite::Error> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Applies the migrations `conn` has not had yet, each in its own transaction, and refuses a
/// database that a newer build has already moved past. `location` only names the database in
/// errors.
pub(crate) fn migrate(
    conn: &mut Connection,
    migrations: &[&str],
    location: &Path,
) -> Result<(), StoreError> {
    let supported = latest_version(migrations);
    let check_not_newer = |found: u32| {
        if found > supported {
            Err(StoreError::NewerSchema {
                path: location.to_path_buf(),
                found,
                supported,
            })
        } else {
            Ok(())
        }
    };
    let found = read_version(conn)?;
    check_not_newer(found)?;
    for (index, script) in migrations.iter().enumerate().skip(found as usize) {
        let version = latest_version(&migrations[..=index]);
        let failed = |cause| StoreError::Migration {
            path: location.to_path_buf(),
            version,
            cause,
        };
        // IMMEDIATE takes the write lock before reading the version, so two processes opening a
        // fresh database at once cannot both apply the same migration.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        let current = read_version(&tx).map_err(failed)?;
        check_not_newer(current)?;
        if current >= version {
            continue;
        }
        tx.execute_batch(script).map_err(failed)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(failed)?;
        tx.commit().map_err(failed)?;
    }
    Ok(())
}
