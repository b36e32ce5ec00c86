//! Workers (`versus worker`, migration 7): processes on any number of machines that share the
//! pending cells of shared runs (`versus run --workers 0`).
//!
//! What each guarantee rests on:
//! - A cell is claimed by one worker at a time: the claim is one `UPDATE` of rows picked with
//!   `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL (rows another worker is claiming are
//!   skipped, not waited for, and re-checked once locked), inside `BEGIN IMMEDIATE` on SQLite
//!   (one writer at a time).
//! - A claim is a lease: `lease_owner` until `lease_expires_ms` (the database's clock, so
//!   machines with skewed clocks agree). A live worker's heartbeat extends its leases; a worker
//!   killed outright stops extending them, and once they expire any worker may claim the cells.
//! - A cell is recorded once: the answer is written in the transaction that closes the claim,
//!   and only while the cell is still pending and leased to the writer; the cell's primary key
//!   (run, task, model, sample) makes it one row. A worker that lost its lease keeps its paid
//!   answer in the completion cache, where the cell's new holder finds it.

use crate::db::{params, Dialect, SQLITE_UNIX_MS};
use crate::{record_outcome, CellId, CellOutcome, CellStatus, RunId, RunStatus, Store, StoreError};

/// Who a worker is, as `versus runs` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    /// Unique per process: host, process id and start time.
    pub id: String,
    pub host: String,
    pub pid: u32,
    /// The model ids it serves (empty: every model it can build).
    pub models: Vec<String>,
}

/// One worker's share of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerProgress {
    pub worker: String,
    pub host: String,
    pub pid: u32,
    /// Cells it recorded answered (or unsupported) and failed.
    pub cells_done: u64,
    pub cells_failed: u64,
    /// Cells it holds leases on now.
    pub cells_leased: u64,
    /// Cells recorded per second since it started.
    pub cells_per_second: f64,
    /// How long ago its last heartbeat was, in seconds.
    pub heartbeat_age_secs: f64,
}

/// Work left in shared runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SharedWork {
    /// Pending cells nobody holds a live lease on.
    pub claimable: u64,
    /// Pending cells under a live lease.
    pub leased: u64,
}

impl Store {
    /// Opens `run` to workers: its pending cells may be claimed, and the failed ones are pending
    /// again (to be asked anew, as a resumed run asks them).
    pub fn share_run(&mut self, run: RunId) -> Result<(), StoreError> {
        let tx = self.write_transaction()?;
        let changed = tx.execute(
            "UPDATE runs SET shared = ?2 WHERE id = ?1",
            params![run, true],
        )?;
        if changed == 0 {
            return Err(StoreError::RunNotFound(run));
        }
        tx.execute(
            "UPDATE cells SET status = ?2, error_kind = NULL, error_message = NULL, \
             lease_owner = NULL, lease_expires_ms = NULL, worker = NULL \
             WHERE run_id = ?1 AND status = ?3",
            params![
                run,
                CellStatus::Pending.as_str(),
                CellStatus::Failed.as_str()
            ],
        )?;
        tx.commit()
    }

    /// Whether `run` is shared with workers (`versus run --workers 0`).
    pub fn run_is_shared(&self, run: RunId) -> Result<bool, StoreError> {
        self.db
            .query_opt("SELECT shared FROM runs WHERE id = ?1", params![run])?
            .ok_or(StoreError::RunNotFound(run))?
            .get("shared")
    }

    /// Records (or refreshes) a worker and its heartbeat.
    pub fn register_worker(&mut self, worker: &WorkerInfo) -> Result<(), StoreError> {
        let models_json = serde_json::Value::from(worker.models.clone()).to_string();
        self.db.execute(
            &format!(
                "INSERT INTO workers (id, host, pid, models_json, started_ms, heartbeat_ms) \
                 VALUES (?1, ?2, ?3, ?4, {SQLITE_UNIX_MS}, {SQLITE_UNIX_MS}) \
                 ON CONFLICT (id) DO UPDATE SET heartbeat_ms = excluded.heartbeat_ms"
            ),
            params![worker.id, worker.host, worker.pid, models_json],
        )?;
        Ok(())
    }

    /// The worker's heartbeat: extends every lease it holds to `lease_ms` from now. Returns how
    /// many cells it still holds.
    pub fn worker_heartbeat(&mut self, worker: &str, lease_ms: u64) -> Result<u64, StoreError> {
        let tx = self.write_transaction()?;
        tx.execute(
            &format!("UPDATE workers SET heartbeat_ms = {SQLITE_UNIX_MS} WHERE id = ?1"),
            params![worker],
        )?;
        let held = tx.execute(
            &format!(
                "UPDATE cells SET lease_expires_ms = {SQLITE_UNIX_MS} + ?2 \
                 WHERE lease_owner = ?1 AND status = ?3"
            ),
            params![worker, lease_ms, CellStatus::Pending.as_str()],
        )?;
        tx.commit()?;
        Ok(held)
    }

    /// Shared runs still running that have pending cells, oldest first.
    pub fn shared_runs_with_work(&self) -> Result<Vec<RunId>, StoreError> {
        self.db
            .query(
                "SELECT r.id FROM runs r WHERE r.shared = ?1 AND r.status = ?2 AND EXISTS (\
                 SELECT 1 FROM cells c WHERE c.run_id = r.id AND c.status = ?3) ORDER BY r.id",
                params![
                    true,
                    RunStatus::Running.as_str(),
                    CellStatus::Pending.as_str()
                ],
            )?
            .iter()
            .map(|row| row.get("id"))
            .collect()
    }

    /// Claims up to `limit` pending cells of `run` for `worker`, of the models `models`, that
    /// nobody holds a live lease on, in the run's order; each leased for `lease_ms`.
    pub fn claim_cells(
        &mut self,
        run: RunId,
        worker: &str,
        models: &[String],
        lease_ms: u64,
        limit: usize,
    ) -> Result<Vec<CellId>, StoreError> {
        if models.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        // SKIP LOCKED: rows another worker is claiming right now are left to it, and each row
        // locked here is re-checked (still pending, lease still free) before it is taken.
        let lock = match self.db.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
        };
        // The rows are picked once, in a materialized CTE: a LIMIT inside `IN (...)` may be
        // evaluated again by PostgreSQL's plan and claim more than `limit`.
        let sql = format!(
            "WITH picked (pick_task, pick_model, pick_sample) AS MATERIALIZED (\
             SELECT task_id, model_id, sample FROM cells \
             WHERE run_id = ?1 AND status = ?4 \
             AND model_id IN (SELECT value FROM json_each(?5)) \
             AND (lease_owner IS NULL OR lease_expires_ms < {SQLITE_UNIX_MS}) \
             ORDER BY position LIMIT ?6{lock}) \
             UPDATE cells SET lease_owner = ?2, lease_expires_ms = {SQLITE_UNIX_MS} + ?3 \
             FROM picked WHERE run_id = ?1 AND status = ?4 AND task_id = pick_task \
             AND model_id = pick_model AND sample = pick_sample \
             RETURNING task_id, model_id, sample, position"
        );
        let tx = self.write_transaction()?;
        let mut claimed = tx
            .query(
                &sql,
                params![
                    run,
                    worker,
                    lease_ms,
                    CellStatus::Pending.as_str(),
                    serde_json::Value::from(models.to_vec()).to_string(),
                    i64::try_from(limit).unwrap_or(i64::MAX)
                ],
            )?
            .iter()
            .map(|row| {
                Ok((
                    row.get::<i64>("position")?,
                    CellId::sample(
                        row.get::<String>("task_id")?,
                        row.get::<String>("model_id")?,
                        row.get("sample")?,
                    ),
                ))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        tx.commit()?;
        claimed.sort();
        Ok(claimed.into_iter().map(|(_, cell)| cell).collect())
    }

    /// Records how a claimed cell ended and closes the claim, in one transaction, if `worker`
    /// still holds it (the cell is pending and leased to it, expired or not). Returns `false`
    /// when the claim was lost: then the cell is left to its new holder, and a fresh answer
    /// still goes into the completion cache.
    pub fn record_claimed_cell(
        &mut self,
        run: RunId,
        cell: &CellId,
        outcome: &CellOutcome,
        worker: &str,
    ) -> Result<bool, StoreError> {
        let lock = match self.db.dialect() {
            Dialect::Sqlite => "",
            Dialect::Postgres => " FOR UPDATE",
        };
        let tx = self.write_transaction()?;
        let held = tx
            .query_opt(
                &format!(
                    "SELECT 1 AS held FROM cells WHERE run_id = ?1 AND task_id = ?2 \
                     AND model_id = ?3 AND sample = ?4 AND status = ?5 AND lease_owner = ?6{lock}"
                ),
                params![
                    run,
                    cell.task_id,
                    cell.model_id,
                    cell.sample,
                    CellStatus::Pending.as_str(),
                    worker
                ],
            )?
            .is_some();
        if !held {
            if let CellOutcome::Completed {
                key,
                model_spec,
                request_json,
                completion,
                cached: false,
            } = outcome
            {
                crate::store_completion(&tx, key, model_spec, request_json, completion, false)?;
                tx.commit()?;
            }
            return Ok(false);
        }
        record_outcome(&tx, run, cell, outcome)?;
        tx.execute(
            "UPDATE cells SET lease_owner = NULL, lease_expires_ms = NULL, worker = ?5 \
             WHERE run_id = ?1 AND task_id = ?2 AND model_id = ?3 AND sample = ?4",
            params![run, cell.task_id, cell.model_id, cell.sample, worker],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// Gives back every cell `worker` holds (a worker stopping cleanly), so that others need
    /// not wait for the leases to expire.
    pub fn release_claims(&mut self, worker: &str) -> Result<(), StoreError> {
        self.db.execute(
            "UPDATE cells SET lease_owner = NULL, lease_expires_ms = NULL \
             WHERE lease_owner = ?1 AND status = ?2",
            params![worker, CellStatus::Pending.as_str()],
        )?;
        Ok(())
    }

    /// Marks a shared run finished once no cell of it is pending; returns whether it is.
    pub fn finish_shared_run_if_done(&mut self, run: RunId) -> Result<bool, StoreError> {
        let changed = self.db.execute(
            concat!(
                "UPDATE runs SET status = ?2, finished_at = ",
                crate::schema::sql_now!(),
                " WHERE id = ?1 AND status = ?3 AND NOT EXISTS (\
                 SELECT 1 FROM cells c WHERE c.run_id = ?1 AND c.status = ?4)"
            ),
            params![
                run,
                RunStatus::Finished.as_str(),
                RunStatus::Running.as_str(),
                CellStatus::Pending.as_str()
            ],
        )?;
        Ok(changed > 0)
    }

    /// Pending cells of running shared runs (of `models`, or of any model when `None`), split
    /// into those free to claim and those under a live lease.
    pub fn shared_work(&self, models: Option<&[String]>) -> Result<SharedWork, StoreError> {
        let models_json = models.map(|models| serde_json::Value::from(models.to_vec()).to_string());
        let row = self.db.query_one(
            &format!(
                "SELECT COALESCE(SUM(CASE WHEN c.lease_owner IS NULL \
                 OR c.lease_expires_ms < {SQLITE_UNIX_MS} THEN 1 ELSE 0 END), 0) AS claimable, \
                 COALESCE(SUM(CASE WHEN c.lease_owner IS NOT NULL \
                 AND c.lease_expires_ms >= {SQLITE_UNIX_MS} THEN 1 ELSE 0 END), 0) AS leased \
                 FROM cells c JOIN runs r ON r.id = c.run_id \
                 WHERE r.shared = ?1 AND r.status = ?2 AND c.status = ?3 \
                 AND (CAST(?4 AS TEXT) IS NULL OR c.model_id IN (SELECT value FROM json_each(?4)))"
            ),
            params![
                true,
                RunStatus::Running.as_str(),
                CellStatus::Pending.as_str(),
                models_json
            ],
        )?;
        Ok(SharedWork {
            claimable: row.get("claimable")?,
            leased: row.get("leased")?,
        })
    }

    /// Each worker's share of `run`: what it recorded and holds, its rate and its heartbeat.
    pub fn worker_progress(&self, run: RunId) -> Result<Vec<WorkerProgress>, StoreError> {
        self.db
            .query(
                // One pass over the run's cells: a recorded cell names its worker, a pending
                // one its leaseholder, never both.
                &format!(
                    "SELECT w.id, w.host, w.pid, \
                     {SQLITE_UNIX_MS} - w.heartbeat_ms AS heartbeat_age_ms, \
                     w.heartbeat_ms - w.started_ms AS alive_ms, \
                     shares.done, shares.failed, shares.leased \
                     FROM (SELECT COALESCE(c.worker, c.lease_owner) AS worker_id, \
                     SUM(CASE WHEN c.worker IS NOT NULL AND c.status IN ('ok', 'unsupported') \
                     THEN 1 ELSE 0 END) AS done, \
                     SUM(CASE WHEN c.worker IS NOT NULL AND c.status = 'failed' \
                     THEN 1 ELSE 0 END) AS failed, \
                     SUM(CASE WHEN c.worker IS NULL AND c.status = 'pending' \
                     THEN 1 ELSE 0 END) AS leased \
                     FROM cells c WHERE c.run_id = ?1 \
                     AND (c.worker IS NOT NULL OR c.lease_owner IS NOT NULL) \
                     GROUP BY COALESCE(c.worker, c.lease_owner)) shares \
                     JOIN workers w ON w.id = shares.worker_id ORDER BY w.id"
                ),
                params![run],
            )?
            .iter()
            .map(|row| {
                let done: u64 = row.get("done")?;
                let failed: u64 = row.get("failed")?;
                let alive_ms: i64 = row.get("alive_ms")?;
                let age_ms: i64 = row.get("heartbeat_age_ms")?;
                Ok(WorkerProgress {
                    worker: row.get("id")?,
                    host: row.get("host")?,
                    pid: row.get("pid")?,
                    cells_done: done,
                    cells_failed: failed,
                    cells_leased: row.get("leased")?,
                    cells_per_second: (done + failed) as f64 / (alive_ms.max(1) as f64 / 1000.0),
                    heartbeat_age_secs: age_ms.max(0) as f64 / 1000.0,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{fresh_database, on_both_backends};
    use crate::{Database, NewRun};

    on_both_backends!(
        a_claimed_cell_is_recorded_once_by_its_holder,
        an_expired_lease_is_claimed_again_and_the_old_holder_loses,
        workers_never_share_a_cell,
        a_shared_run_finishes_when_no_cell_is_pending,
    );

    fn worker(id: &str) -> WorkerInfo {
        WorkerInfo {
            id: id.into(),
            host: "h".into(),
            pid: 1,
            models: vec!["m1".into()],
        }
    }

    fn answer(text: &str) -> CellOutcome {
        CellOutcome::Completed {
            key: format!("key-{text}"),
            model_spec: "openai:m1".into(),
            request_json: "{}".into(),
            completion: versus_core::Completion {
                text: text.into(),
                finish_reason: versus_core::FinishReason::Stop,
                usage: None,
                timings: versus_core::Timings {
                    latency_ms: 1.0,
                    ttft_ms: None,
                },
                served_model: None,
                attempts: 1,
                thinking: None,
                server_timings: None,
                via_batch: false,
            },
            cached: false,
        }
    }

    /// A shared run of `tasks` cells on model `m1`, and the database it is in.
    fn shared_run(tasks: usize) -> (Database, Store, RunId) {
        let db = fresh_database();
        let mut store = Store::connect(&db).unwrap();
        let cells: Vec<CellId> = (0..tasks)
            .map(|t| CellId::first(format!("t{t}"), "m1"))
            .collect();
        let run = store
            .create_run(&NewRun {
                suite_name: "s",
                suite_hash: "h",
                suite_text: "",
                plan_fingerprint: "f",
                plan: &crate::tests::sample_plan(),
                models: &["m1".to_string()],
                tool_version: "0",
                cells: &cells,
            })
            .unwrap();
        store.share_run(run).unwrap();
        (db, store, run)
    }

    fn m1() -> Vec<String> {
        vec!["m1".to_string()]
    }

    fn a_claimed_cell_is_recorded_once_by_its_holder() {
        let (_db, mut store, run) = shared_run(3);
        store.register_worker(&worker("w1")).unwrap();
        let claimed = store.claim_cells(run, "w1", &m1(), 60_000, 2).unwrap();
        assert_eq!(
            claimed,
            [CellId::first("t0", "m1"), CellId::first("t1", "m1")]
        );
        assert_eq!(
            store.shared_work(None).unwrap(),
            SharedWork {
                claimable: 1,
                leased: 2
            }
        );
        // Other models' cells are not this worker's to take.
        assert!(store
            .claim_cells(run, "w2", &["m2".to_string()], 60_000, 5)
            .unwrap()
            .is_empty());
        assert!(store
            .record_claimed_cell(run, &claimed[0], &answer("a"), "w1")
            .unwrap());
        // Not twice, and not by a worker that never held it.
        assert!(!store
            .record_claimed_cell(run, &claimed[0], &answer("b"), "w1")
            .unwrap());
        assert!(!store
            .record_claimed_cell(run, &claimed[1], &answer("c"), "w2")
            .unwrap());
        let cells = store.cells(run).unwrap();
        assert_eq!(cells[0].completion.as_ref().unwrap().completion.text, "a");
        assert_eq!(cells[1].status, CellStatus::Pending);
        assert_eq!(store.worker_heartbeat("w1", 60_000).unwrap(), 1);
        let progress = store.worker_progress(run).unwrap();
        assert_eq!(progress.len(), 1);
        assert_eq!((progress[0].cells_done, progress[0].cells_leased), (1, 1));
        store.release_claims("w1").unwrap();
        assert_eq!(store.shared_work(Some(&m1())).unwrap().claimable, 2);
    }

    fn an_expired_lease_is_claimed_again_and_the_old_holder_loses() {
        let (_db, mut store, run) = shared_run(1);
        let first = store.claim_cells(run, "w1", &m1(), 0, 5).unwrap();
        assert_eq!(first.len(), 1);
        std::thread::sleep(std::time::Duration::from_millis(20));
        let second = store.claim_cells(run, "w2", &m1(), 60_000, 5).unwrap();
        assert_eq!(second, first, "an expired lease is free to claim");
        assert!(!store
            .record_claimed_cell(run, &first[0], &answer("late"), "w1")
            .unwrap());
        // The late answer was paid for: it waits in the cache for the new holder.
        assert!(store.lookup_completion("key-late").unwrap().is_some());
        assert!(store
            .record_claimed_cell(run, &first[0], &answer("on time"), "w2")
            .unwrap());
    }

    fn workers_never_share_a_cell() {
        let (db, mut store, run) = shared_run(40);
        let claimers: Vec<_> = (0..4)
            .map(|index| {
                let db = db.clone();
                std::thread::spawn(move || {
                    let mut store = Store::connect(&db).unwrap();
                    let me = format!("w{index}");
                    let mut mine = Vec::new();
                    loop {
                        let claimed = retry_busy(|| store.claim_cells(run, &me, &m1(), 60_000, 3));
                        if claimed.is_empty() {
                            return mine;
                        }
                        mine.extend(claimed);
                    }
                })
            })
            .collect();
        let mut all: Vec<CellId> = claimers
            .into_iter()
            .flat_map(|claimer| claimer.join().unwrap())
            .collect();
        all.sort();
        let before = all.len();
        all.dedup();
        assert_eq!((before, all.len()), (40, 40));
        assert!(store
            .claim_cells(run, "w9", &m1(), 60_000, 3)
            .unwrap()
            .is_empty());
    }

    /// SQLite answers a second writer with SQLITE_BUSY after its timeout; the caller tries again.
    fn retry_busy<T>(mut work: impl FnMut() -> Result<T, StoreError>) -> T {
        loop {
            match work() {
                Ok(value) => return value,
                Err(error) if error.is_busy() => continue,
                Err(error) => panic!("{error}"),
            }
        }
    }

    fn a_shared_run_finishes_when_no_cell_is_pending() {
        let (_db, mut store, run) = shared_run(1);
        assert_eq!(store.shared_runs_with_work().unwrap(), [run]);
        assert!(!store.finish_shared_run_if_done(run).unwrap());
        let cell = store.claim_cells(run, "w1", &m1(), 60_000, 1).unwrap();
        store
            .record_claimed_cell(run, &cell[0], &answer("a"), "w1")
            .unwrap();
        assert!(store.run_is_shared(run).unwrap());
        assert!(store.finish_shared_run_if_done(run).unwrap());
        assert!(store.shared_runs_with_work().unwrap().is_empty());
        assert_eq!(store.run(run).unwrap().summary.status, RunStatus::Finished);
    }
}
