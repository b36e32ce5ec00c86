//! The database schema as an ordered list of migrations per backend, and the code that brings a
//! database up to date. SQLite records how many migrations a database has had in
//! `PRAGMA user_version`; PostgreSQL in the one-row table `versus_schema`.
//!
//! Both lists have the same length and version N of each creates the same tables and columns
//! (SQLite's `INTEGER` is PostgreSQL's `BIGINT`, `REAL` is `DOUBLE PRECISION`, a 0/1 flag is a
//! `BOOLEAN`). To change the schema, append a script to both lists; never edit one that has
//! shipped, because databases in the wild have already run it.

use crate::db::{params, Connection, Db, Dialect};
use crate::error::{BackendError, StoreError};

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

/// Migration 7: workers (`versus worker`). A run opened with `versus run --workers 0` is
/// `shared`; a worker claims its pending cells under a lease (`lease_owner` until
/// `lease_expires_ms`, the database's clock in Unix milliseconds, refreshed by a heartbeat), and
/// the cell keeps which worker recorded it. Each worker's heartbeat is in `workers`.
const ADD_WORKERS: &str = "
ALTER TABLE runs ADD COLUMN shared INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cells ADD COLUMN lease_owner TEXT;
ALTER TABLE cells ADD COLUMN lease_expires_ms INTEGER;
ALTER TABLE cells ADD COLUMN worker TEXT;
CREATE INDEX cells_by_status ON cells (run_id, status);
CREATE INDEX cells_by_lease_owner ON cells (lease_owner) WHERE lease_owner IS NOT NULL;

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    models_json  TEXT NOT NULL,
    started_ms   INTEGER NOT NULL,
    heartbeat_ms INTEGER NOT NULL
);
";

/// Every SQLite migration, in order: a database at version N has had the first N applied.
pub(crate) const MIGRATIONS: &[&str] = &[
    CREATE_RUNS_CELLS_COMPLETIONS,
    CREATE_SCORES_JUDGEMENTS_VOTES,
    ADD_SAMPLE_INDEX,
    ADD_RUN_OWNERS,
    ADD_COMPLETION_DETAILS,
    ADD_BATCHES,
    ADD_WORKERS,
];

/// PostgreSQL migration 1: what SQLite's migration 1 creates.
const PG_CREATE_RUNS_CELLS_COMPLETIONS: &str = concat!(
    "
CREATE TABLE runs (
    id               BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
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
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    latency_ms        DOUBLE PRECISION NOT NULL,
    ttft_ms           DOUBLE PRECISION,
    served_model      TEXT,
    attempts          BIGINT NOT NULL,
    created_at        TEXT NOT NULL DEFAULT (",
    sql_now!(),
    ")
);

CREATE TABLE cells (
    run_id         BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id        TEXT NOT NULL,
    model_id       TEXT NOT NULL,
    position       BIGINT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('pending', 'ok', 'failed', 'unsupported')),
    completion_key TEXT REFERENCES completions (key),
    error_kind     TEXT,
    error_message  TEXT,
    cached         BOOLEAN NOT NULL DEFAULT FALSE,
    attempts       BIGINT NOT NULL DEFAULT 0,
    updated_at     TEXT,
    PRIMARY KEY (run_id, task_id, model_id)
);
CREATE INDEX cells_by_completion_key ON cells (completion_key);
"
);

/// PostgreSQL migration 2: what SQLite's migration 2 creates.
const PG_CREATE_SCORES_JUDGEMENTS_VOTES: &str = concat!(
    "
CREATE TABLE scores (
    run_id      BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id     TEXT NOT NULL,
    model_id    TEXT NOT NULL,
    scorer      TEXT NOT NULL,
    value       DOUBLE PRECISION,
    passed      BOOLEAN,
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
    run_id      BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    task_id     TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('pairwise', 'single')),
    model_a     TEXT NOT NULL,
    model_b     TEXT NOT NULL DEFAULT '',
    judge       TEXT NOT NULL,
    verdict     TEXT NOT NULL,
    rating      DOUBLE PRECISION,
    detail_json TEXT NOT NULL,
    created_at  TEXT NOT NULL DEFAULT (",
    sql_now!(),
    "),
    PRIMARY KEY (run_id, task_id, kind, model_a, model_b, judge)
);

CREATE TABLE votes (
    id         BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    run_id     BIGINT REFERENCES runs (id) ON DELETE SET NULL,
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

/// PostgreSQL migration 3: the `sample` index in the primary keys of cells and scores.
/// PostgreSQL changes a primary key in place, so nothing is copied.
const PG_ADD_SAMPLE_INDEX: &str = "
ALTER TABLE cells ADD COLUMN sample BIGINT NOT NULL DEFAULT 0 CHECK (sample >= 0);
ALTER TABLE cells DROP CONSTRAINT cells_pkey;
ALTER TABLE cells ADD PRIMARY KEY (run_id, task_id, model_id, sample);
ALTER TABLE scores ADD COLUMN sample BIGINT NOT NULL DEFAULT 0 CHECK (sample >= 0);
ALTER TABLE scores DROP CONSTRAINT scores_pkey;
ALTER TABLE scores ADD PRIMARY KEY (run_id, task_id, model_id, sample, scorer);
";

/// PostgreSQL migration 4: what SQLite's migration 4 creates.
const PG_ADD_RUN_OWNERS: &str = "
CREATE TABLE run_owners (
    run_id       BIGINT PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    pid          BIGINT NOT NULL,
    host         TEXT NOT NULL,
    claimed_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL
);
";

/// PostgreSQL migration 5: what SQLite's migration 5 adds.
const PG_ADD_COMPLETION_DETAILS: &str = "
ALTER TABLE completions ADD COLUMN reasoning_tokens BIGINT;
ALTER TABLE completions ADD COLUMN cached_prompt_tokens BIGINT;
ALTER TABLE completions ADD COLUMN cache_write_tokens BIGINT;
ALTER TABLE completions ADD COLUMN thinking TEXT;
ALTER TABLE completions ADD COLUMN server_total_ms DOUBLE PRECISION;
ALTER TABLE completions ADD COLUMN server_load_ms DOUBLE PRECISION;
ALTER TABLE completions ADD COLUMN server_prompt_ms DOUBLE PRECISION;
ALTER TABLE completions ADD COLUMN server_generation_ms DOUBLE PRECISION;
";

/// PostgreSQL migration 6: what SQLite's migration 6 creates.
const PG_ADD_BATCHES: &str = concat!(
    "
ALTER TABLE completions ADD COLUMN via_batch BOOLEAN NOT NULL DEFAULT FALSE;

CREATE TABLE batches (
    id                BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    run_id            BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
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
    batch_id  BIGINT NOT NULL REFERENCES batches (id) ON DELETE CASCADE,
    custom_id TEXT NOT NULL,
    task_id   TEXT NOT NULL,
    model_id  TEXT NOT NULL,
    sample    BIGINT NOT NULL,
    PRIMARY KEY (batch_id, custom_id)
);
"
);

/// PostgreSQL migration 7: what SQLite's migration 7 adds.
const PG_ADD_WORKERS: &str = "
ALTER TABLE runs ADD COLUMN shared BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE cells ADD COLUMN lease_owner TEXT;
ALTER TABLE cells ADD COLUMN lease_expires_ms BIGINT;
ALTER TABLE cells ADD COLUMN worker TEXT;
CREATE INDEX cells_by_status ON cells (run_id, status);
CREATE INDEX cells_by_lease_owner ON cells (lease_owner) WHERE lease_owner IS NOT NULL;

CREATE TABLE workers (
    id           TEXT PRIMARY KEY,
    host         TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    models_json  TEXT NOT NULL,
    started_ms   BIGINT NOT NULL,
    heartbeat_ms BIGINT NOT NULL
);
";

/// Every PostgreSQL migration, in order; version N matches SQLite's version N.
pub(crate) const POSTGRES_MIGRATIONS: &[&str] = &[
    PG_CREATE_RUNS_CELLS_COMPLETIONS,
    PG_CREATE_SCORES_JUDGEMENTS_VOTES,
    PG_ADD_SAMPLE_INDEX,
    PG_ADD_RUN_OWNERS,
    PG_ADD_COMPLETION_DETAILS,
    PG_ADD_BATCHES,
    PG_ADD_WORKERS,
];

/// The schema version this build writes.
pub(crate) fn latest_version(migrations: &[&str]) -> u32 {
    u32::try_from(migrations.len()).unwrap_or(u32::MAX)
}

/// Creates PostgreSQL's version table if missing. Every process that opens the database runs
/// it; `IF NOT EXISTS` and the insert that adds the row only once make that harmless.
const PG_CREATE_VERSION_TABLE: &str = "
CREATE TABLE IF NOT EXISTS versus_schema (
    one     BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),
    version BIGINT NOT NULL
);
INSERT INTO versus_schema (one, version) VALUES (TRUE, 0) ON CONFLICT (one) DO NOTHING;
";

/// Any fixed number: the key of the advisory lock that lets one process at a time migrate a
/// PostgreSQL database.
const PG_MIGRATION_LOCK: i64 = 0x7665_7273_7573; // "versus"

pub(crate) fn read_version(db: &Db) -> Result<u32, StoreError> {
    match db.dialect() {
        Dialect::Sqlite => db.with_connection(|conn| match conn {
            Connection::Sqlite(conn) => Ok(conn
                .pragma_query_value(None, "user_version", |row| row.get(0))
                .map_err(BackendError::from)?),
            Connection::Postgres(_) => unreachable_dialect(),
        }),
        Dialect::Postgres => {
            let row = db.query_opt("SELECT version FROM versus_schema", Vec::new())?;
            Ok(match row {
                Some(row) => row.get("version")?,
                None => 0,
            })
        }
    }
}

fn unreachable_dialect<T>() -> Result<T, StoreError> {
    Err(StoreError::Corrupt {
        what: "connection".to_string(),
        reason: "the connection's dialect and kind disagree".to_string(),
    })
}

fn write_version(db: &Db, version: u32) -> Result<(), StoreError> {
    match db.dialect() {
        Dialect::Sqlite => {
            db.with_connection(|conn| conn.batch(&format!("PRAGMA user_version = {version}")))?
        }
        Dialect::Postgres => {
            db.execute("UPDATE versus_schema SET version = ?1", params![version])?;
        }
    }
    Ok(())
}

/// Applies the migrations the database has not had yet, each in its own transaction, and
/// refuses a database that a newer build has already moved past. `location` only names the
/// database in errors.
pub(crate) fn migrate(db: &Db, migrations: &[&str], location: &str) -> Result<(), StoreError> {
    if db.dialect() == Dialect::Sqlite {
        return migrate_locked(db, migrations, location);
    }
    // PostgreSQL: one process at a time from the version table's creation on (two sessions
    // creating the same table at once can fail on the catalog's unique index). A session lock,
    // released whatever happens; one left by a dead process goes with its connection.
    let locking = |cause| StoreError::Migration {
        location: location.to_string(),
        version: 0,
        cause,
    };
    db.with_connection(|conn| {
        conn.execute("SELECT pg_advisory_lock(?1)", params![PG_MIGRATION_LOCK])
    })
    .map_err(locking)?;
    let migrated = db
        .with_connection(|conn| conn.batch(PG_CREATE_VERSION_TABLE))
        .map_err(locking)
        .and_then(|()| migrate_locked(db, migrations, location));
    let unlocked = db
        .with_connection(|conn| {
            conn.execute("SELECT pg_advisory_unlock(?1)", params![PG_MIGRATION_LOCK])
        })
        .map_err(locking);
    migrated.and(unlocked.map(|_| ()))
}

fn migrate_locked(db: &Db, migrations: &[&str], location: &str) -> Result<(), StoreError> {
    let supported = latest_version(migrations);
    let check_not_newer = |found: u32| {
        if found > supported {
            Err(StoreError::NewerSchema {
                location: location.to_string(),
                found,
                supported,
            })
        } else {
            Ok(())
        }
    };
    let failed = |version: u32| {
        move |error: StoreError| match error {
            StoreError::Backend(cause) => StoreError::Migration {
                location: location.to_string(),
                version,
                cause,
            },
            other => other,
        }
    };
    let found = read_version(db)?;
    check_not_newer(found)?;
    for (index, script) in migrations.iter().enumerate().skip(found as usize) {
        let version = latest_version(&migrations[..=index]);
        // SQLite's BEGIN IMMEDIATE takes the write lock before the version is read again (and
        // PostgreSQL's advisory lock is held already), so two processes opening a fresh
        // database at once cannot both apply the same migration.
        let tx = db.transaction().map_err(failed(version))?;
        let current = read_version(&tx).map_err(failed(version))?;
        check_not_newer(current)?;
        if current >= version {
            continue;
        }
        tx.with_connection(|conn| conn.batch(script))
            .map_err(|cause| failed(version)(StoreError::Backend(cause)))?;
        write_version(&tx, version).map_err(failed(version))?;
        tx.commit().map_err(failed(version))?;
    }
    Ok(())
}
