//! `versus worker`: answers the pending cells of shared runs (`versus run --workers 0`), beside
//! any number of other workers on any machine that reaches the same database.
//!
//! A worker rebuilds each run's cells from the stored plan with the runner's own planning (the
//! same requests, the same cache keys), serves the models it can build here (its keys, its
//! local model files, `--models`), claims cells under a lease (see versus-store's `workers`
//! module for what the guarantees rest on), answers each as the runner does (the cache first,
//! then the model with its retries), and records each answer in the transaction that closes
//! its claim. The worker that records a run's last cell finishes the run and scores it, as
//! `versus run` does after its last cell.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use versus_core::redact::{redact_urls_in, REDACTED};
use versus_core::{ChatModel, Completion, ContentPart, ModelError, RunPlan};
use versus_store::{CellId, CellOutcome, Database, RunId, Store, WorkerInfo};

use crate::cli::WorkerArgs;
use crate::exit::ExitStatus;
use crate::models::{self, KeyPolicy, KeyPrompter, PreparedModel};
use crate::runner::{self, PlannedCell};

/// How long a write may keep meeting a busy database (SQLite) before the worker gives up.
const BUSY_PATIENCE: Duration = Duration::from_secs(120);

/// A shared run as this worker serves it.
struct RunWork {
    prepared: Vec<PreparedModel>,
    cells: HashMap<CellId, PlannedCell>,
    /// The model ids this worker serves in this run.
    servable: Vec<String>,
    /// Slots per model (`concurrency`) and overall (`max_concurrency`), as the runner has.
    per_model: Vec<Arc<Semaphore>>,
    global: Arc<Semaphore>,
    /// How many cells to hold at once: enough to keep every slot busy.
    capacity: usize,
    plan: RunPlan,
}

/// How working on a run ended.
enum Flow {
    /// No cell left to claim; `recorded` cells were recorded by this worker.
    Done {
        recorded: usize,
    },
    Interrupted,
}

pub fn worker(db: &Database, quiet: bool, args: &WorkerArgs) -> anyhow::Result<ExitStatus> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(work(db, quiet, args))
}

async fn work(db: &Database, quiet: bool, args: &WorkerArgs) -> anyhow::Result<ExitStatus> {
    let mut store = crate::commands::open_store(db)?;
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis())
        .unwrap_or_default();
    let host = runner::host_name();
    let me = WorkerInfo {
        id: format!("{host}:{}:{started_ms}", std::process::id()),
        host,
        pid: std::process::id(),
        models: args.models.clone(),
    };
    store.register_worker(&me)?;
    let lease_ms = args.lease_secs.saturating_mul(1000);
    // Idle workers look for work often enough that a dead worker's cells wait little longer
    // than its lease.
    let idle_poll = Duration::from_millis((lease_ms / 4).clamp(100, 500));
    if !quiet {
        eprintln!(
            "worker {} on {db}: lease {} s{}",
            me.id,
            args.lease_secs,
            if args.models.is_empty() {
                String::new()
            } else {
                format!(", models {}", args.models.join(", "))
            }
        );
    }
    let policy = KeyPolicy::from_args(&args.keys);
    let mut keys = KeyPrompter::new(false).with_policy(policy.clone());
    let mut runs: HashMap<RunId, RunWork> = HashMap::new();
    let mut interrupt = std::pin::pin!(runner::interrupted());
    loop {
        let _ = store.worker_heartbeat(&me.id, lease_ms);
        let mut worked = false;
        for run in store.shared_runs_with_work()? {
            let run_work = match runs.entry(run) {
                std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
                std::collections::hash_map::Entry::Vacant(new) => {
                    new.insert(prepare_run(&store, run, args, &mut keys, quiet).await?)
                }
            };
            let run_work = &*run_work;
            if run_work.servable.is_empty() {
                continue;
            }
            let flow = work_on_run(
                run,
                run_work,
                &mut store,
                &me.id,
                lease_ms,
                quiet,
                &mut interrupt,
            )
            .await?;
            match flow {
                Flow::Interrupted => {
                    let _ = store.release_claims(&me.id);
                    return Ok(ExitStatus::Interrupted);
                }
                Flow::Done { recorded } => worked |= recorded > 0,
            }
            if store.finish_shared_run_if_done(run)? {
                finish(&mut store, run, run_work, &policy, quiet).await;
            }
        }
        if worked {
            continue;
        }
        if args.exit_when_idle {
            let mut served: Vec<String> = runs
                .values()
                .flat_map(|run| run.servable.iter().cloned())
                .collect();
            served.sort();
            served.dedup();
            let left = store.shared_work(Some(&served))?;
            if left.claimable == 0 && left.leased == 0 {
                break;
            }
        }
        tokio::select! {
            () = tokio::time::sleep(idle_poll) => {}
            () = &mut interrupt => {
                let _ = store.release_claims(&me.id);
                return Ok(ExitStatus::Interrupted);
            }
        }
    }
    if !quiet {
        eprintln!("worker {}: no cell left to answer; stopping", me.id);
    }
    Ok(ExitStatus::Success)
}

/// Rebuilds a shared run's cells from its stored plan and builds the models this worker serves.
async fn prepare_run(
    store: &Store,
    run: RunId,
    args: &WorkerArgs,
    keys: &mut KeyPrompter,
    quiet: bool,
) -> anyhow::Result<RunWork> {
    let plan = store.run_plan(run)?;
    let mut prepared = Vec::with_capacity(plan.suite.models.len());
    for config in &plan.suite.models {
        let not_here = |reason: String| models::unprepared(config, reason);
        let model = if !args.models.is_empty() && !args.models.contains(&config.id) {
            not_here(format!("model `{}` is not in --models", config.id))
        } else if config
            .base_url
            .as_deref()
            .is_some_and(|url| url.contains(REDACTED))
        {
            // The stored plan has the URL's credentials redacted; they cannot be guessed.
            not_here(format!(
                "model `{}`: its base URL carries credentials, which the database does not keep; \
                 give them as a key variable instead",
                config.id
            ))
        } else if let Err(error) = keys.check_route(config) {
            not_here(error.message)
        } else {
            models::prepare(config, &plan.suite.defaults, keys).await
        };
        if let Err(error) = &model.model {
            if !quiet && (args.models.is_empty() || args.models.contains(&config.id)) {
                eprintln!(
                    "worker: run {run}: not serving `{}`: {}",
                    config.id,
                    redact_urls_in(&error.message)
                );
            }
        }
        prepared.push(model);
    }
    // Images given by URL travel in the plan; a suite with image files is never shared.
    let images: Vec<Vec<ContentPart>> = plan
        .suite
        .tasks
        .iter()
        .map(|task| {
            task.images
                .iter()
                .map(|image| ContentPart::Image {
                    url: image.path.clone(),
                    source: Some(image.path.clone()),
                })
                .collect()
        })
        .collect();
    let cells: HashMap<CellId, PlannedCell> = runner::plan_cells(&plan, &prepared, &images)
        .into_iter()
        .map(|cell| (runner::cell_id(&plan.suite, &cell), cell))
        .collect();
    let servable: Vec<String> = prepared
        .iter()
        .filter(|model| model.model.is_ok())
        .map(|model| model.config.id.clone())
        .collect();
    let defaults = &plan.suite.defaults;
    let per_model: Vec<Arc<Semaphore>> = prepared
        .iter()
        .map(|model| {
            Arc::new(Semaphore::new(
                model.config.concurrency.unwrap_or(defaults.concurrency),
            ))
        })
        .collect();
    let capacity = prepared
        .iter()
        .filter(|model| model.model.is_ok())
        .map(|model| model.config.concurrency.unwrap_or(defaults.concurrency))
        .sum::<usize>()
        .min(defaults.max_concurrency)
        .max(1);
    Ok(RunWork {
        global: Arc::new(Semaphore::new(defaults.max_concurrency.max(1))),
        prepared,
        cells,
        servable,
        per_model,
        capacity,
        plan,
    })
}

/// Claims and answers `run`'s cells until none is left to claim, keeping `capacity` in flight.
async fn work_on_run(
    run: RunId,
    work: &RunWork,
    store: &mut Store,
    me: &str,
    lease_ms: u64,
    quiet: bool,
    interrupt: &mut std::pin::Pin<&mut impl std::future::Future<Output = ()>>,
) -> anyhow::Result<Flow> {
    let suite = &work.plan.suite;
    let mut calls: JoinSet<(PlannedCell, Result<Completion, ModelError>)> = JoinSet::new();
    let mut in_flight = 0usize;
    let mut exhausted = false;
    let mut recorded = 0usize;
    let mut heartbeat = tokio::time::interval(Duration::from_millis((lease_ms / 3).max(50)));
    loop {
        // Claims go out in batches (when half the slots are free), so that a claim's
        // transaction is shared by several cells.
        if !exhausted && in_flight <= work.capacity / 2 {
            let claimed = retry_busy(|| {
                store.claim_cells(run, me, &work.servable, lease_ms, work.capacity - in_flight)
            })
            .await?;
            exhausted = claimed.is_empty();
            for id in claimed {
                let Some(cell) = work.cells.get(&id) else {
                    let outcome = CellOutcome::Failed {
                        kind: versus_core::ErrorKind::Config,
                        message: format!(
                            "the run's plan has no {id}; record the run again with this version \
                             of versus"
                        ),
                        attempts: 0,
                    };
                    recorded += record(store, run, &id, &outcome, me, quiet).await?;
                    continue;
                };
                let model = &work.prepared[cell.model_index];
                if let Some(hit) = runner::cache_hit(store, cell, &model.config.id, false, false)? {
                    recorded += record(store, run, &id, &hit, me, quiet).await?;
                    continue;
                }
                let chat: Arc<dyn ChatModel> = match &model.model {
                    Ok(chat) => Arc::clone(chat),
                    Err(error) => {
                        let outcome = runner::failed(error, 0);
                        recorded += record(store, run, &id, &outcome, me, quiet).await?;
                        continue;
                    }
                };
                let model_slot = Arc::clone(&work.per_model[cell.model_index]);
                let global_slot = Arc::clone(&work.global);
                let cell = cell.clone();
                in_flight += 1;
                calls.spawn(async move {
                    let _model_permit = model_slot.acquire_owned().await;
                    let _global_permit = global_slot.acquire_owned().await;
                    let result = chat.complete(&cell.request, &mut |_| {}).await;
                    (cell, result)
                });
            }
            if !exhausted && in_flight <= work.capacity / 2 {
                // Cells settled from the cache leave room: claim again before waiting.
                continue;
            }
        }
        if in_flight == 0 {
            return Ok(Flow::Done { recorded });
        }
        tokio::select! {
            joined = calls.join_next() => {
                let Some(joined) = joined else { continue };
                in_flight -= 1;
                let (cell, result) = joined
                    .map_err(|error| anyhow::anyhow!("a model call panicked: {error}"))?;
                let id = runner::cell_id(suite, &cell);
                let model = &work.prepared[cell.model_index].config;
                let outcome = match result {
                    Ok(completion) => runner::completed(&cell, model.spec.to_string(), completion),
                    Err(error) => runner::failed(&error, error.attempts),
                };
                recorded += record(store, run, &id, &outcome, me, quiet).await?;
            }
            _ = heartbeat.tick() => {
                // A busy database delays the heartbeat; the next tick tries again, well
                // within the lease.
                let _ = store.worker_heartbeat(me, lease_ms);
            }
            () = &mut *interrupt => {
                calls.abort_all();
                return Ok(Flow::Interrupted);
            }
        }
    }
}

/// Records a claimed cell's outcome; 1 if recorded, 0 if the claim was lost meanwhile.
async fn record(
    store: &mut Store,
    run: RunId,
    cell: &CellId,
    outcome: &CellOutcome,
    me: &str,
    quiet: bool,
) -> anyhow::Result<usize> {
    let kept = retry_busy(|| store.record_claimed_cell(run, cell, outcome, me)).await?;
    if !quiet {
        let status = match (kept, outcome) {
            (false, _) => "claim lost (its lease expired and another worker took it)",
            (true, CellOutcome::Completed { cached: true, .. }) => "cached",
            (true, CellOutcome::Completed { .. }) => "ok",
            (true, CellOutcome::Failed { .. }) => "failed",
            (true, CellOutcome::Unsupported { .. }) => "unsupported",
        };
        eprintln!("worker: run {run}: {cell}: {status}");
    }
    Ok(usize::from(kept))
}

/// Runs a store call again while the database is busy (SQLite's one writer), for up to
/// [`BUSY_PATIENCE`].
async fn retry_busy<T>(
    mut call: impl FnMut() -> Result<T, versus_store::StoreError>,
) -> anyhow::Result<T> {
    let deadline = tokio::time::Instant::now() + BUSY_PATIENCE;
    let mut wait = Duration::from_millis(20);
    loop {
        match call() {
            Err(error) if error.is_busy() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(1));
            }
            other => return Ok(other?),
        }
    }
}

/// Scores a run this worker finished, as `versus run` scores its run; a failure is reported and
/// left to `versus score`.
async fn finish(store: &mut Store, run: RunId, work: &RunWork, policy: &KeyPolicy, quiet: bool) {
    let options = crate::scoring::ScoreOptions {
        judge: None,
        judge_base_url: None,
        no_judge: false,
        allow_unsandboxed: false,
        suite_dir: None,
        quiet,
        live_models: work.prepared.iter().map(|m| m.config.clone()).collect(),
        key_policy: policy.clone(),
        allow_outside_files: false,
    };
    match crate::scoring::score_run(store, run, &options).await {
        Ok(_) if !quiet => eprintln!("worker: run {run} finished and scored"),
        Ok(_) => {}
        Err(error) => eprintln!(
            "warning: run {run} finished, but scoring failed: {error:#}; `versus score --run {run}` tries again"
        ),
    }
}
