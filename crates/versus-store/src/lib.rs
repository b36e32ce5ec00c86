//! versus-store: the database of versus — runs, the status of every cell, and the completion
//! cache — in an embedded SQLite file or on a shared PostgreSQL server, behind one interface.
//!
//! Every finished cell is committed in its own short transaction as it arrives (a SQLite file is
//! in WAL mode), so a run killed outright loses nothing that had finished.

mod batches;
mod db;
mod error;
mod grading;
mod location;
mod owners;
mod postgres;
mod records;
mod schema;
mod workers;

use std::path::Path;
use std::time::Duration;

use versus_core::{Completion, RunPlan, ServerTimings, Timings, Usage};

use db::{params, Db, Row, Tx};

pub use batches::{BatchCell, BatchEnd, PendingBatch};
pub use error::{BackendError, StoreError};
pub use grading::{JudgementRecord, ScoreRecord, VoteRecord};
pub use location::Database;
pub use owners::{Claim, RunOwner};
pub use records::{
    CellError, CellId, CellOutcome, CellRecord, CellStatus, NewRun, RunId, RunRecord, RunStatus,
    RunSummary, StoredCompletion,
};
pub use workers::{SharedWork, WorkerInfo, WorkerProgress};

use records::{
    error_kind_from_column, error_kind_to_column, finish_reason_from_column,
    finish_reason_to_column,
};
use schema::sql_now;

/// How long a statement waits for another process's write lock before giving up. Other writers
/// (a second `versus` on the same file) hold it only for one cell's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The completion columns of a query that names the `completions` table `p`, aliased so that
/// they cannot clash with the columns of a joined table.
macro_rules! completion_columns {
    () => {
        "p.key AS completion_key_, p.model_spec AS completion_model_spec, \
         p.text AS completion_text, p.finish_reason AS completion_finish_reason, \
         p.prompt_tokens AS completion_prompt_tokens, \
         p.completion_tokens AS completion_completion_tokens, \
         p.latency_ms AS completion_latency_ms, p.ttft_ms AS completion_ttft_ms, \
         p.served_model AS completion_served_model, p.attempts AS completion_attempts, \
         p.created_at AS completion_created_at, \
         p.reasoning_tokens AS completion_reasoning_tokens, \
         p.cached_prompt_tokens AS completion_cached_prompt_tokens, \
         p.cache_write_tokens AS completion_cache_write_tokens, \
         p.thinking AS completion_thinking, p.server_total_ms AS completion_server_total_ms, \
         p.server_load_ms AS completion_server_load_ms, \
         p.server_prompt_ms AS completion_server_prompt_ms, \
         p.server_generation_ms AS completion_server_generation_ms, \
         p.via_batch AS completion_via_batch"
    };
}

/// The columns of a [`CellRecord`] (without its completion) for a query that names `cells` `c`.
macro_rules! cell_columns {
    () => {
        "c.task_id, c.model_id, c.sample, c.status, c.error_kind, c.error_message, c.cached, \
         c.attempts, c.updated_at"
    };
}

/// The columns of a [`RunSummary`], for a query over `runs r LEFT JOIN cells c` grouped by run.
macro_rules! run_summary_columns {
    () => {
        "r.id, r.suite_name, r.started_at, r.finished_at, r.status, r.models_json, \
         r.tool_version, \
         COUNT(c.run_id) AS cells_total, \
         COALESCE(SUM(CASE WHEN c.status = 'ok' THEN 1 ELSE 0 END), 0) AS cells_ok, \
         COALESCE(SUM(CASE WHEN c.status = 'failed' THEN 1 ELSE 0 END), 0) AS cells_failed, \
         COALESCE(SUM(CASE WHEN c.status = 'unsupported' THEN 1 ELSE 0 END), 0) \
         AS cells_unsupported, \
         COALESCE(SUM(CASE WHEN c.status = 'pending' THEN 1 ELSE 0 END), 0) AS cells_pending, \
         (SELECT COUNT(*) FROM batches b WHERE b.run_id = r.id AND b.status = 'pending') \
         AS batches_waiting"
    };
}

/// What a query with [`run_summary_columns!`] groups by: every column of `runs` it reads
/// (PostgreSQL asks for them all when `runs` is a subquery).
macro_rules! run_summary_group_by {
    () => {
        "GROUP BY r.id, r.suite_name, r.started_at, r.finished_at, r.status, r.models_json, \
         r.tool_version"
    };
}

// After the column macros, which it uses.
mod view_queries;
pub use view_queries::{CellComparison, CellPreview, RunHeader};

/// The versus database. One connection; `Send`, so it can live on a dedicated blocking thread.
pub struct Store {
    db: Db,
    /// Where it is; to say so in messages (a URL without its password).
    location: Database,
}

impl Store {
    /// Opens the SQLite database at `path`, creating the file (but not its folder) if missing,
    /// and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::connect(&Database::Sqlite(path.to_path_buf()))
    }

    /// Opens the database `--db` names: a SQLite file, or a PostgreSQL server (its database
    /// must exist; its tables are created on first use), and brings its schema up to date.
    pub fn connect(location: &Database) -> Result<Store, StoreError> {
        let migrations = match location {
            Database::Sqlite(_) => schema::MIGRATIONS,
            Database::Postgres(_) => schema::POSTGRES_MIGRATIONS,
        };
        Store::open_with_migrations(location, migrations)
    }

    /// A private SQLite database that vanishes when dropped (for tests and dry runs).
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let location = Database::Sqlite(":memory:".into());
        let opening = |cause: rusqlite::Error| StoreError::Open {
            location: location.to_string(),
            cause: cause.into(),
        };
        let conn = rusqlite::Connection::open_in_memory().map_err(opening)?;
        configure(&conn, false).map_err(opening)?;
        Store::migrated(db::Connection::Sqlite(conn), location, schema::MIGRATIONS)
    }

    fn open_with_migrations(location: &Database, migrations: &[&str]) -> Result<Store, StoreError> {
        let opening = |cause: BackendError| StoreError::Open {
            location: location.to_string(),
            cause,
        };
        let conn = match location {
            Database::Sqlite(path) => {
                let conn =
                    rusqlite::Connection::open(path).map_err(|cause| opening(cause.into()))?;
                configure(&conn, true).map_err(|cause| opening(cause.into()))?;
                db::Connection::Sqlite(conn)
            }
            Database::Postgres(url) => {
                db::Connection::Postgres(postgres::PgConnection::connect(url).map_err(opening)?)
            }
        };
        Store::migrated(conn, location.clone(), migrations)
    }

    fn migrated(
        conn: db::Connection,
        location: Database,
        migrations: &[&str],
    ) -> Result<Store, StoreError> {
        let db = Db::new(conn);
        schema::migrate(&db, migrations, &location.to_string())?;
        Ok(Store { db, location })
    }

    /// The schema version of the open database (the number of migrations it has had).
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        schema::read_version(&self.db)
    }

    /// Where the database lives (`:memory:` for an in-memory one).
    pub fn location(&self) -> &Database {
        &self.location
    }

    /// Records a new run, `running`, with one `pending` cell per entry of `new.cells` (in that
    /// order), all in one transaction.
    pub fn create_run(&mut self, new: &NewRun<'_>) -> Result<RunId, StoreError> {
        let models_json = serde_json::Value::from(new.models.to_vec()).to_string();
        let tx = self.write_transaction()?;
        let run: RunId = tx
            .query_one(
                "INSERT INTO runs (suite_name, suite_hash, suite_text, plan_fingerprint, \
                 plan_json, models_json, tool_version, status) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
                params![
                    new.suite_name,
                    new.suite_hash,
                    new.suite_text,
                    new.plan_fingerprint,
                    new.plan.to_json(),
                    models_json,
                    new.tool_version,
                    RunStatus::Running.as_str(),
                ],
            )?
            .get("id")?;
        let rows = new
            .cells
            .iter()
            .enumerate()
            .map(|(position, cell)| {
                params![
                    run,
                    cell.task_id,
                    cell.model_id,
                    cell.sample,
                    position as i64,
                    CellStatus::Pending.as_str(),
                ]
            })
            .collect();
        tx.insert_rows(
            "cells",
            &[
                "run_id", "task_id", "model_id", "sample", "position", "status",
            ],
            rows,
        )?;
        tx.commit()?;
        Ok(run)
    }

    /// The newest run of this plan that still has work to do (a cell pending or failed).
    pub fn find_resumable_run(&self, plan_fingerprint: &str) -> Result<Option<RunId>, StoreError> {
        self.db
            .query_opt(
                "SELECT r.id FROM runs r WHERE r.plan_fingerprint = ?1 AND EXISTS (\
                 SELECT 1 FROM cells c WHERE c.run_id = r.id AND c.status IN (?2, ?3)) \
                 ORDER BY r.id DESC LIMIT 1",
                params![
                    plan_fingerprint,
                    CellStatus::Pending.as_str(),
                    CellStatus::Failed.as_str()
                ],
            )?
            .map(|row| row.get(0))
            .transpose()
    }

    /// Marks a run `running` again (and not finished) so that it can be resumed. Its cells are
    /// left as they are; the runner decides which to redo.
    pub fn reset_for_resume(&mut self, run: RunId) -> Result<(), StoreError> {
        self.set_run_status(run, RunStatus::Running)
    }

    /// Sets a run's status. `Finished` and `Interrupted` stamp `finished_at` with the current
    /// time; `Running` clears it.
    pub fn set_run_status(&mut self, run: RunId, status: RunStatus) -> Result<(), StoreError> {
        let sql = match status {
            RunStatus::Running => "UPDATE runs SET status = ?2, finished_at = NULL WHERE id = ?1",
            RunStatus::Finished | RunStatus::Interrupted => concat!(
                "UPDATE runs SET status = ?2, finished_at = ",
                sql_now!(),
                " WHERE id = ?1"
            ),
        };
        let changed = self.db.execute(sql, params![run, status.as_str()])?;
        if changed == 0 {
            return Err(StoreError::RunNotFound(run));
        }
        Ok(())
    }

    /// A run's cells in the order they were created, each with its completion when it has one.
    pub fn cells(&self, run: RunId) -> Result<Vec<CellRecord>, StoreError> {
        let rows = self.db.query(
            concat!(
                "SELECT ",
                cell_columns!(),
                ", ",
                completion_columns!(),
                " FROM cells c LEFT JOIN completions p ON p.key = c.completion_key \
                 WHERE c.run_id = ?1 ORDER BY c.position"
            ),
            params![run],
        )?;
        let cells = rows
            .iter()
            .map(|row| cell_from_row(run, row))
            .collect::<Result<Vec<_>, _>>()?;
        if cells.is_empty() && !self.run_exists(run)? {
            return Err(StoreError::RunNotFound(run));
        }
        Ok(cells)
    }

    /// The cached completion stored under `key`, if any.
    pub fn lookup_completion(&self, key: &str) -> Result<Option<StoredCompletion>, StoreError> {
        let row = self.db.query_opt(
            concat!(
                "SELECT ",
                completion_columns!(),
                " FROM completions p WHERE p.key = ?1"
            ),
            params![key],
        )?;
        match row {
            Some(row) => stored_completion_from_row(&row),
            None => Ok(None),
        }
    }

    /// Records how a cell ended, in one transaction: the completion goes into the cache and the
    /// cell points at it, or the cell takes the error.
    ///
    /// A fresh completion (`cached: false`) replaces whatever the cache held under its key, so
    /// the cell shows what the model answered in this run and later lookups get the newest
    /// answer. A cached one leaves the stored row untouched.
    pub fn record_cell(
        &mut self,
        run: RunId,
        cell: &CellId,
        outcome: &CellOutcome,
    ) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        record_outcome(&tx, run, cell, outcome)?;
        tx.commit()?;
        Ok(())
    }

    /// Every run, newest first, with its cell counts.
    pub fn runs(&self) -> Result<Vec<RunSummary>, StoreError> {
        let rows = self.db.query(
            concat!(
                "SELECT ",
                run_summary_columns!(),
                " FROM runs r LEFT JOIN cells c ON c.run_id = r.id ",
                run_summary_group_by!(),
                " ORDER BY r.id DESC"
            ),
            params![],
        )?;
        rows.iter().map(run_summary_from_row).collect()
    }

    /// The newest run, if there is any.
    pub fn latest_run(&self) -> Result<Option<RunId>, StoreError> {
        self.db
            .query_one("SELECT MAX(id) AS id FROM runs", params![])?
            .get("id")
    }

    /// One run with everything it was started from.
    pub fn run(&self, run: RunId) -> Result<RunRecord, StoreError> {
        let row = self.db.query_opt(
            concat!(
                "SELECT ",
                run_summary_columns!(),
                ", r.suite_hash, r.suite_text, r.plan_fingerprint, r.plan_json \
                 FROM runs r LEFT JOIN cells c ON c.run_id = r.id WHERE r.id = ?1 ",
                run_summary_group_by!(),
                ", r.suite_hash, r.suite_text, r.plan_fingerprint, r.plan_json"
            ),
            params![run],
        )?;
        let Some(row) = row else {
            return Err(StoreError::RunNotFound(run));
        };
        Ok(RunRecord {
            summary: run_summary_from_row(&row)?,
            suite_hash: row.get("suite_hash")?,
            suite_text: row.get("suite_text")?,
            plan_fingerprint: row.get("plan_fingerprint")?,
            plan: decode_plan(run, &row.get::<String>("plan_json")?)?,
        })
    }

    fn run_exists(&self, run: RunId) -> Result<bool, StoreError> {
        Ok(self
            .db
            .query_opt("SELECT 1 AS one FROM runs WHERE id = ?1", params![run])?
            .is_some())
    }

    /// A transaction that takes SQLite's write lock up front (see [`Db::transaction`]).
    fn write_transaction(&mut self) -> Result<Tx<'_>, StoreError> {
        self.db.transaction()
    }
}

/// Per-connection settings. WAL lets readers (a second `versus` showing a report) work while a
/// run writes, and with `synchronous = NORMAL` a commit survives the process being killed
/// (only a power loss can take back the last commits).
fn configure(conn: &rusqlite::Connection, file_backed: bool) -> Result<(), rusqlite::Error> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    if file_backed {
        // Returns the mode in force; a filesystem without WAL support keeps the rollback
        // journal, which is slower but just as safe, so the answer is not checked.
        let _mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Records how a cell ended inside `tx` (see [`Store::record_cell`]); the caller commits.
fn record_outcome(
    tx: &Tx<'_>,
    run: RunId,
    cell: &CellId,
    outcome: &CellOutcome,
) -> Result<(), StoreError> {
    let changed = match outcome {
        CellOutcome::Completed {
            key,
            model_spec,
            request_json,
            completion,
            cached,
        } => {
            store_completion(tx, key, model_spec, request_json, completion, *cached)?;
            // A cached cell made no calls in this run; the completion keeps its own count.
            let attempts = if *cached { 0 } else { completion.attempts };
            update_cell(
                tx,
                (run, cell),
                CellStatus::Ok,
                Some(key),
                None,
                *cached,
                attempts,
            )?
        }
        CellOutcome::Failed {
            kind,
            message,
            attempts,
        } => update_cell(
            tx,
            (run, cell),
            CellStatus::Failed,
            None,
            Some((&error_kind_to_column(*kind), message)),
            false,
            *attempts,
        )?,
        CellOutcome::Unsupported { reason } => update_cell(
            tx,
            (run, cell),
            CellStatus::Unsupported,
            None,
            Some((
                &error_kind_to_column(versus_core::ErrorKind::Unsupported),
                reason,
            )),
            false,
            0,
        )?,
    };
    if changed == 0 {
        // The caller's transaction, dropped uncommitted, rolls back the completion stored above.
        return Err(StoreError::CellNotFound {
            run,
            cell: cell.clone(),
        });
    }
    Ok(())
}

fn store_completion(
    tx: &Tx<'_>,
    key: &str,
    model_spec: &str,
    request_json: &str,
    completion: &Completion,
    cached: bool,
) -> Result<(), StoreError> {
    let on_conflict = if cached {
        // Normally already there (it was looked up); stored anyway so the cell's reference holds.
        " ON CONFLICT (key) DO NOTHING"
    } else {
        " ON CONFLICT (key) DO UPDATE SET model_spec = excluded.model_spec, \
         request_json = excluded.request_json, text = excluded.text, \
         finish_reason = excluded.finish_reason, prompt_tokens = excluded.prompt_tokens, \
         completion_tokens = excluded.completion_tokens, latency_ms = excluded.latency_ms, \
         ttft_ms = excluded.ttft_ms, served_model = excluded.served_model, \
         attempts = excluded.attempts, created_at = excluded.created_at, \
         reasoning_tokens = excluded.reasoning_tokens, \
         cached_prompt_tokens = excluded.cached_prompt_tokens, \
         cache_write_tokens = excluded.cache_write_tokens, thinking = excluded.thinking, \
         server_total_ms = excluded.server_total_ms, server_load_ms = excluded.server_load_ms, \
         server_prompt_ms = excluded.server_prompt_ms, \
         server_generation_ms = excluded.server_generation_ms, via_batch = excluded.via_batch"
    };
    let sql = format!(
        "INSERT INTO completions (key, model_spec, request_json, text, finish_reason, \
         prompt_tokens, completion_tokens, latency_ms, ttft_ms, served_model, attempts, \
         reasoning_tokens, cached_prompt_tokens, cache_write_tokens, thinking, \
         server_total_ms, server_load_ms, server_prompt_ms, server_generation_ms, via_batch) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
         ?18, ?19, ?20){on_conflict}"
    );
    let usage = completion.usage;
    let server = completion.server_timings;
    tx.execute(
        &sql,
        params![
            key,
            model_spec,
            request_json,
            completion.text,
            finish_reason_to_column(&completion.finish_reason),
            completion.usage.map(|usage| usage.prompt_tokens),
            completion.usage.map(|usage| usage.completion_tokens),
            completion.timings.latency_ms,
            completion.timings.ttft_ms,
            completion.served_model,
            completion.attempts,
            usage.and_then(|usage| usage.reasoning_tokens),
            usage.and_then(|usage| usage.cached_prompt_tokens),
            usage.and_then(|usage| usage.cache_write_tokens),
            completion.thinking,
            server.and_then(|timings| timings.total_ms),
            server.and_then(|timings| timings.load_ms),
            server.and_then(|timings| timings.prompt_ms),
            server.and_then(|timings| timings.generation_ms),
            completion.via_batch,
        ],
    )?;
    Ok(())
}

/// Sets a cell's outcome; returns how many cells matched (0 or 1).
fn update_cell(
    tx: &Tx<'_>,
    (run, cell): (RunId, &CellId),
    status: CellStatus,
    completion_key: Option<&str>,
    error: Option<(&str, &str)>,
    cached: bool,
    attempts: u32,
) -> Result<u64, StoreError> {
    let (error_kind, error_message) = error.unzip();
    tx.execute(
        concat!(
            "UPDATE cells SET status = ?4, completion_key = ?5, error_kind = ?6, \
             error_message = ?7, cached = ?8, attempts = ?9, updated_at = ",
            sql_now!(),
            " WHERE run_id = ?1 AND task_id = ?2 AND model_id = ?3 AND sample = ?10"
        ),
        params![
            run,
            cell.task_id,
            cell.model_id,
            status.as_str(),
            completion_key,
            error_kind,
            error_message,
            cached,
            attempts,
            cell.sample,
        ],
    )
}

fn corrupt(what: String, reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        what,
        reason: reason.into(),
    }
}

/// The one place a stored plan is decoded.
pub(crate) fn decode_plan(run: RunId, json: &str) -> Result<RunPlan, StoreError> {
    RunPlan::from_json(json).map_err(|error| StoreError::UnreadablePlan {
        run,
        reason: error.to_string(),
    })
}

fn cell_from_row(run: RunId, row: &Row) -> Result<CellRecord, StoreError> {
    let task_id: String = row.get("task_id")?;
    let model_id: String = row.get("model_id")?;
    let sample: u32 = row.get("sample")?;
    let place = || format!("run {run}, {}", CellId::sample(&task_id, &model_id, sample));
    let status_text: String = row.get("status")?;
    let status = CellStatus::from_column(&status_text).ok_or_else(|| {
        corrupt(
            format!("cell status ({})", place()),
            format!("unknown value `{status_text}`"),
        )
    })?;
    let error_kind: Option<String> = row.get("error_kind")?;
    let error = match error_kind {
        Some(kind) => Some(CellError {
            kind: error_kind_from_column(&kind).ok_or_else(|| {
                corrupt(
                    format!("error kind ({})", place()),
                    format!("unknown value `{kind}`"),
                )
            })?,
            message: row
                .get::<Option<String>>("error_message")?
                .unwrap_or_default(),
        }),
        None => None,
    };
    Ok(CellRecord {
        status,
        completion: stored_completion_from_row(row)?,
        error,
        cached: row.get("cached")?,
        attempts: row.get("attempts")?,
        updated_at: row.get("updated_at")?,
        task_id,
        model_id,
        sample,
    })
}

/// The completion in a row selected with [`completion_columns!`]; `None` where a left join
/// found none.
fn stored_completion_from_row(row: &Row) -> Result<Option<StoredCompletion>, StoreError> {
    let Some(key) = row.get::<Option<String>>("completion_key_")? else {
        return Ok(None);
    };
    let prompt_tokens: Option<u64> = row.get("completion_prompt_tokens")?;
    let completion_tokens: Option<u64> = row.get("completion_completion_tokens")?;
    // Usage is written whole or not at all, so one count without the other means no usage.
    let reasoning_tokens: Option<u64> = row.get("completion_reasoning_tokens")?;
    let cached_prompt_tokens: Option<u64> = row.get("completion_cached_prompt_tokens")?;
    let cache_write_tokens: Option<u64> = row.get("completion_cache_write_tokens")?;
    let usage = prompt_tokens
        .zip(completion_tokens)
        .map(|(prompt_tokens, completion_tokens)| Usage {
            reasoning_tokens,
            cached_prompt_tokens,
            cache_write_tokens,
            ..Usage::new(prompt_tokens, completion_tokens)
        });
    let server_timings = ServerTimings {
        total_ms: row.get("completion_server_total_ms")?,
        load_ms: row.get("completion_server_load_ms")?,
        prompt_ms: row.get("completion_server_prompt_ms")?,
        generation_ms: row.get("completion_server_generation_ms")?,
    }
    .nonempty();
    let finish_reason: String = row.get("completion_finish_reason")?;
    Ok(Some(StoredCompletion {
        model_spec: row.get("completion_model_spec")?,
        completion: Completion {
            text: row.get("completion_text")?,
            finish_reason: finish_reason_from_column(&finish_reason),
            usage,
            timings: Timings {
                latency_ms: row.get("completion_latency_ms")?,
                ttft_ms: row.get("completion_ttft_ms")?,
            },
            served_model: row.get("completion_served_model")?,
            attempts: row.get("completion_attempts")?,
            thinking: row.get("completion_thinking")?,
            server_timings,
            via_batch: row.get("completion_via_batch")?,
        },
        created_at: row.get("completion_created_at")?,
        key,
    }))
}

fn run_summary_from_row(row: &Row) -> Result<RunSummary, StoreError> {
    let id: RunId = row.get("id")?;
    let status_text: String = row.get("status")?;
    let status = RunStatus::from_column(&status_text).ok_or_else(|| {
        corrupt(
            format!("status of run {id}"),
            format!("unknown value `{status_text}`"),
        )
    })?;
    let models_json: String = row.get("models_json")?;
    let models: Vec<String> = serde_json::from_str(&models_json)
        .map_err(|error| corrupt(format!("model list of run {id}"), error.to_string()))?;
    Ok(RunSummary {
        id,
        suite_name: row.get("suite_name")?,
        started_at: row.get("started_at")?,
        finished_at: row.get("finished_at")?,
        status,
        models,
        cells_total: row.get("cells_total")?,
        cells_ok: row.get("cells_ok")?,
        cells_failed: row.get("cells_failed")?,
        cells_unsupported: row.get("cells_unsupported")?,
        cells_pending: row.get("cells_pending")?,
        batches_waiting: row.get("batches_waiting")?,
        tool_version: row.get("tool_version")?,
    })
}

#[cfg(test)]
mod testing;
#[cfg(test)]
mod tests;
