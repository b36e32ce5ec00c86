//! Storing a run's answers when the database is busy. Every outcome goes to the store the moment
//! it arrives; if another process holds the write lock past SQLite's busy timeout, the outcome
//! waits here, in memory, and is retried with back-off while the run goes on. An answer paid for
//! is never dropped: if the database stays locked past the patience at the end of a run, the
//! answers still unstored are written to a rescue file beside the database (in the current
//! folder for a PostgreSQL server), and the error names it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use versus_store::{CellId, CellOutcome, RunId, RunOwner, Store};

/// The first wait after a busy write; it doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// How long the end of a run waits for the database before writing the rescue file.
pub const FLUSH_PATIENCE: Duration = Duration::from_secs(600);

/// Outcomes not yet stored, and when to try again.
pub struct Recorder {
    run: RunId,
    /// This process, which holds the run (its heartbeat goes with the retries).
    owner: RunOwner,
    unsaved: VecDeque<(CellId, CellOutcome)>,
    next_try: Instant,
    backoff: Duration,
    warned: bool,
    quiet: bool,
}

impl Recorder {
    pub fn new(run: RunId, owner: RunOwner, quiet: bool) -> Recorder {
        Recorder {
            run,
            owner,
            unsaved: VecDeque::new(),
            next_try: Instant::now(),
            backoff: FIRST_BACKOFF,
            warned: false,
            quiet,
        }
    }

    /// Stores `outcome` now, or keeps it for a later try if the database is busy. Other errors
    /// (a full disk, a damaged file) stop the run.
    pub fn record(
        &mut self,
        store: &mut Store,
        cell: CellId,
        outcome: CellOutcome,
    ) -> anyhow::Result<()> {
        self.unsaved.push_back((cell, outcome));
        self.flush(store)
    }

    /// Refreshes this process's claim on the run and retries what waits. A busy database
    /// delays the heartbeat too; the next one tries again.
    pub fn heartbeat(&mut self, store: &mut Store) -> anyhow::Result<()> {
        let _ = store.heartbeat(self.run, &self.owner);
        self.flush(store)
    }

    /// Gives the run up (best effort: a claim left behind goes stale within a minute anyway).
    pub fn release(&self, store: &mut Store) {
        let _ = store.release_run(self.run, &self.owner);
    }

    /// Tries to store what waits, oldest first, unless the back-off says not yet.
    pub fn flush(&mut self, store: &mut Store) -> anyhow::Result<()> {
        if self.unsaved.is_empty() || Instant::now() < self.next_try {
            return Ok(());
        }
        while let Some((cell, outcome)) = self.unsaved.front() {
            match store.record_cell(self.run, cell, outcome) {
                Ok(()) => {
                    self.unsaved.pop_front();
                    self.backoff = FIRST_BACKOFF;
                }
                Err(error) if error.is_busy() => {
                    if !self.warned && !self.quiet {
                        eprintln!(
                            "warning: the database is locked by another process; {} answer(s) are kept in memory and stored when it is free",
                            self.unsaved.len()
                        );
                    }
                    self.warned = true;
                    self.next_try = Instant::now() + self.backoff;
                    self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                    return Ok(());
                }
                Err(error) => {
                    return Err(error)
                        .with_context(|| format!("cannot store the answer for {cell}"))
                }
            }
        }
        Ok(())
    }

    /// Stores everything still waiting, retrying for up to `patience`; then writes what could
    /// not be stored to a rescue file beside the database and fails naming it.
    pub async fn finish(&mut self, store: &mut Store, patience: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + patience;
        loop {
            self.flush(store)?;
            if self.unsaved.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                break;
            }
            let wait = self.next_try.saturating_duration_since(Instant::now());
            tokio::time::sleep(wait.max(Duration::from_millis(10))).await;
        }
        let rescue = self.write_rescue_file(store)?;
        anyhow::bail!(
            "the database stayed locked for {} s: {} answer(s) could not be stored and were written to {}",
            patience.as_secs(),
            self.unsaved.len(),
            rescue.display()
        )
    }

    /// One JSON line per unstored outcome: the cell and its completion (or failure).
    fn write_rescue_file(&self, store: &Store) -> anyhow::Result<PathBuf> {
        let mut text = String::new();
        for (cell, outcome) in &self.unsaved {
            let line = match outcome {
                CellOutcome::Completed {
                    key, completion, ..
                } => serde_json::json!({
                    "run": self.run, "task": cell.task_id, "model": cell.model_id,
                    "sample": cell.sample, "key": key, "completion": completion,
                }),
                CellOutcome::Failed { message, .. } => serde_json::json!({
                    "run": self.run, "task": cell.task_id, "model": cell.model_id,
                    "sample": cell.sample, "error": message,
                }),
                CellOutcome::Unsupported { reason } => serde_json::json!({
                    "run": self.run, "task": cell.task_id, "model": cell.model_id,
                    "sample": cell.sample, "unsupported": reason,
                }),
            };
            text.push_str(&line.to_string());
            text.push('\n');
        }
        let suffix = format!(".unsaved-run{}-{}.jsonl", self.run, std::process::id());
        let path = match store.location().sqlite_path() {
            Some(file) => {
                let mut path = file.as_os_str().to_owned();
                path.push(suffix);
                PathBuf::from(path)
            }
            None => PathBuf::from(format!("versus{suffix}")),
        };
        crate::files::write_atomically(&path, text.as_bytes())?;
        Ok(path)
    }
}
