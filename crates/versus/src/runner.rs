//! The runner: plans the cells of a run (task x model x sample), resumes an interrupted run of the same
//! plan, answers what it can from the cache, and calls the models concurrently (bounded per model
//! and overall), committing every result to the store the moment it arrives.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use versus_core::fingerprint::{sample_completion_key, sha256_hex, sha256_json};
use versus_core::redact::redact_urls_in;
use versus_core::{ChatModel, ChatRequest, Completion, ModelError, RunPlan, Suite};
use versus_store::{
    CellId, CellOutcome, CellStatus, Claim, NewRun, RunId, RunOwner, RunStatus, Store,
};

use crate::batches;
use crate::models::{self, KeyPrompter, PreparedModel};
use crate::progress::Progress;
use crate::recorder::Recorder;
use crate::settings::RunSettings;

/// One answer to ask for (a task, a model, one of the task's samples) and the request it makes.
#[derive(Clone)]
pub(crate) struct PlannedCell {
    task_index: usize,
    pub(crate) model_index: usize,
    /// Which of the task's repeated samples (0-based).
    sample: u32,
    pub(crate) request: ChatRequest,
    key: String,
    /// Why the model cannot take this task, if it cannot.
    unsupported: Option<String>,
}

/// How a run ended.
pub struct RunOutcome {
    pub run_id: RunId,
    pub resumed: bool,
    pub total: usize,
    pub ok: usize,
    pub cached: usize,
    pub failed: Vec<Failure>,
    pub unsupported: usize,
    pub interrupted: bool,
    /// The models as this process ran them, base URLs whole (the stored plan has them
    /// redacted), for scoring in the same process.
    pub models: Vec<versus_core::ModelConfig>,
    /// `--workers 0`: the run was recorded and shared; its pending cells are the workers'.
    pub shared: bool,
    /// Cells left pending (for the workers, when shared).
    pub pending: usize,
}

pub struct Failure {
    pub cell: CellId,
    pub message: String,
}

/// Runs the plan; `keys` has checked every model's key route already (`commands::run`).
pub async fn run(
    settings: RunSettings,
    store: Store,
    mut keys: KeyPrompter,
    quiet: bool,
) -> anyhow::Result<RunOutcome> {
    let RunSettings {
        loaded,
        overrides,
        task_images,
        no_cache,
        reuse,
        fresh,
        keys: _,
        batch_poll,
        shared,
    } = settings;
    let mut plan = RunPlan {
        suite: loaded.suite,
        overrides,
    };

    let mut prepared: Vec<PreparedModel> = Vec::with_capacity(plan.suite.models.len());
    for config in &plan.suite.models {
        if shared {
            // The workers build the models, with their own keys and files.
            prepared.push(models::unprepared(
                config,
                format!("model `{}` is built by the workers", config.id),
            ));
            continue;
        }
        if config.spec.is_local() && !quiet {
            eprintln!("loading {} ({})...", config.id, config.spec);
        }
        prepared.push(models::prepare(config, &plan.suite.defaults, &mut keys).await);
    }
    // Local models report their own architecture, size, dtype and device; the stored plan keeps it.
    plan.suite.models = prepared.iter().map(|p| p.config.clone()).collect();
    let suite = &plan.suite;
    for model in &prepared {
        if let Err(error) = &model.model {
            if !quiet && !shared {
                eprintln!(
                    "warning: {}; its cells will be recorded as failed",
                    redact_urls_in(&error.message)
                );
            }
        }
    }

    let cells = plan_cells(&plan, &prepared, &task_images);
    let fingerprint = sha256_json(&(
        &suite.name,
        cells
            .iter()
            .map(|c| {
                (
                    &suite.tasks[c.task_index].id,
                    &suite.models[c.model_index].id,
                    &c.key,
                )
            })
            .collect::<Vec<_>>(),
    ));

    let mut store = store;
    // What is stored and reported has no credentials: base URLs and the suite's text redacted.
    let stored_plan = plan.redacted();
    let stored_text = redact_urls_in(&loaded.text);
    let owner = RunOwner {
        pid: std::process::id(),
        host: host_name(),
    };
    let (run_id, resumed) = open_run(
        &mut store,
        &stored_plan,
        &stored_text,
        &fingerprint,
        &cells,
        Opening { fresh, shared },
        &owner,
    )?;
    let mut recorder = Recorder::new(run_id, owner, quiet);
    let done: HashMap<CellId, CellStatus> = store
        .cells(run_id)?
        .into_iter()
        .map(|c| (c.id(), c.status))
        .collect();

    let mut outcome = RunOutcome {
        run_id,
        resumed,
        total: cells.len(),
        ok: 0,
        cached: 0,
        failed: Vec::new(),
        unsupported: 0,
        interrupted: false,
        models: suite.models.clone(),
        shared,
        pending: 0,
    };
    let mut progress = Progress::new(quiet, &suite.models, &cells_per_model(&cells, suite));

    // Cells settled without calling a model: already done in the resumed run, unsupported,
    // unbuildable models and cache hits.
    let mut work = Vec::new();
    for (position, cell) in cells.into_iter().enumerate() {
        let model = &prepared[cell.model_index];
        let id = cell_id(suite, &cell);
        match done.get(&id) {
            Some(CellStatus::Ok) => {
                outcome.ok += 1;
                progress.skipped(cell.model_index);
                continue;
            }
            Some(CellStatus::Unsupported) => {
                outcome.unsupported += 1;
                progress.skipped(cell.model_index);
                continue;
            }
            _ => {}
        }
        // A cache hit needs no model, so it is taken even when the model cannot be built (say,
        // its key is not set while re-rendering an earlier run).
        let settled = if let Some(reason) = &cell.unsupported {
            Some(CellOutcome::Unsupported {
                reason: reason.clone(),
            })
        } else if let Some(hit) = cache_hit(&store, &cell, &model.config.id, no_cache, reuse)? {
            Some(hit)
        } else if shared {
            // The workers build the models (their keys, their files): none is built here.
            None
        } else {
            model.model.as_ref().err().map(|error| failed(error, 0))
        };
        match settled {
            Some(settled) => {
                tally(&mut outcome, &id, &settled);
                progress.cell_done(cell.model_index, &id, &settled);
                recorder.record(&mut store, id, settled)?;
            }
            None => work.push((position, cell)),
        }
    }

    if shared {
        // Recorded; the workers answer the rest. The run stays `running` until the worker that
        // records its last cell finishes it.
        let stored = recorder
            .finish(&mut store, crate::recorder::FLUSH_PATIENCE)
            .await;
        stored?;
        store.share_run(run_id)?;
        recorder.release(&mut store);
        // Everything may have come from the cache: then the run is done here.
        outcome.pending = if store.finish_shared_run_if_done(run_id)? {
            0
        } else {
            store.run(run_id)?.summary.cells_pending as usize
        };
        progress.finish();
        return Ok(outcome);
    }

    // Batches an interrupted run left are collected, never asked again; with `--batch-api` the
    // cells of models with a batch API go out as new batches.
    let pending = store.pending_batches(run_id)?;
    let mut jobs = batches::resume(pending, &mut work, suite, &prepared, &mut progress);
    if batch_poll.is_some() {
        jobs.extend(
            batches::submit(
                &mut work,
                suite,
                &prepared,
                &mut store,
                run_id,
                &mut progress,
            )
            .await?,
        );
    }
    let mut executed = execute(
        &plan,
        &prepared,
        work,
        &mut store,
        &mut recorder,
        &mut outcome,
        &mut progress,
    )
    .await;
    if matches!(executed, Ok(false)) && !jobs.is_empty() {
        let poll = batch_poll.unwrap_or(batches::DEFAULT_POLL);
        executed = match batches::collect(
            jobs,
            poll,
            suite,
            &mut store,
            &mut recorder,
            &mut outcome,
            &mut progress,
        )
        .await
        {
            Ok(collected) if collected.interrupted => Ok(true),
            Ok(collected) => {
                execute(
                    &plan,
                    &prepared,
                    collected.retry,
                    &mut store,
                    &mut recorder,
                    &mut outcome,
                    &mut progress,
                )
                .await
            }
            Err(error) => Err(error),
        };
    }
    progress.finish();
    // Whatever happened, the answers received are stored (or rescued) before anything else.
    let stored = recorder
        .finish(&mut store, crate::recorder::FLUSH_PATIENCE)
        .await;
    let interrupted = executed?;
    stored?;
    outcome.interrupted = interrupted;
    store.set_run_status(
        run_id,
        if interrupted {
            RunStatus::Interrupted
        } else {
            RunStatus::Finished
        },
    )?;
    recorder.release(&mut store);
    Ok(outcome)
}

/// How old a run owner's heartbeat may be before another process takes the run over.
const OWNER_STALE_AFTER_SECS: i64 = 60;
/// How often a working process refreshes its heartbeat and retries unstored answers.
const HEARTBEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// This machine's name, to tell processes on several machines apart (a database on a shared
/// folder).
pub(crate) fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_string())
}

/// Whether process `pid` of this host still runs (Linux's /proc; elsewhere the heartbeat decides).
fn process_alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.is_dir() || proc.join(pid.to_string()).exists()
}

/// Claims `run` for this process, or fails saying who holds it.
fn claim(store: &mut Store, run: RunId, owner: &RunOwner) -> anyhow::Result<()> {
    match store.claim_run(run, owner, OWNER_STALE_AFTER_SECS, process_alive)? {
        Claim::Claimed => Ok(()),
        Claim::HeldBy {
            owner,
            heartbeat_age_secs,
        } => anyhow::bail!(
            "run {run} is being worked on by process {} on {} (last heartbeat {heartbeat_age_secs} s ago); wait for it to finish (`versus runs` shows its progress) and run again, or pass --fresh to start a separate run",
            owner.pid,
            owner.host
        ),
    }
}

pub(crate) fn plan_cells(
    plan: &RunPlan,
    prepared: &[PreparedModel],
    task_images: &[Vec<versus_core::ContentPart>],
) -> Vec<PlannedCell> {
    let suite = &plan.suite;
    let mut cells = Vec::with_capacity(suite.tasks.len() * prepared.len());
    // Task-major order, so that every model makes progress on the same tasks at the same time;
    // a task's samples are side by side, so a report of an interrupted run has whole tasks.
    for (task_index, task) in suite.tasks.iter().enumerate() {
        let images = task_images.get(task_index).cloned().unwrap_or_default();
        for (model_index, model) in prepared.iter().enumerate() {
            let unsupported = (!images.is_empty() && !model.config.metadata.accepts_images())
                .then(|| {
                    format!(
                        "model `{}` does not read images; if it does, add `modalities = [\"text\", \"image\"]` to its [[models]] entry",
                        model.config.id
                    )
                });
            let params = plan.params_for(model_index, task_index);
            let samples = plan.samples_for(model_index, task_index);
            // Local models take seeds; an API that does not is asked its samples unseeded.
            let seedable = model
                .config
                .wire_api()
                .is_none_or(versus_core::WireApi::takes_seed);
            for sample in 0..samples {
                let request = ChatRequest {
                    messages: task.messages_with_images(images.clone()),
                    params: params.for_sample(sample, samples, seedable),
                };
                let key = sample_completion_key(
                    &model.config.spec,
                    model.endpoint.as_deref(),
                    &request,
                    sample,
                );
                cells.push(PlannedCell {
                    task_index,
                    model_index,
                    sample,
                    request,
                    key,
                    unsupported: unsupported.clone(),
                });
            }
        }
    }
    cells
}

/// The stored identity of a planned cell.
pub(crate) fn cell_id(suite: &Suite, cell: &PlannedCell) -> CellId {
    CellId::sample(
        &suite.tasks[cell.task_index].id,
        &suite.models[cell.model_index].id,
        cell.sample,
    )
}

fn cells_per_model(cells: &[PlannedCell], suite: &Suite) -> Vec<u64> {
    let mut counts = vec![0u64; suite.models.len()];
    for cell in cells {
        counts[cell.model_index] += 1;
    }
    counts
}

/// How a run is opened: `--fresh` (never resume), `--workers 0` (shared with workers).
#[derive(Clone, Copy)]
struct Opening {
    fresh: bool,
    shared: bool,
}

/// Resumes the newest unfinished run of the same plan, or creates a new one.
fn open_run(
    store: &mut Store,
    plan: &RunPlan,
    suite_text: &str,
    fingerprint: &str,
    cells: &[PlannedCell],
    opening: Opening,
    owner: &RunOwner,
) -> anyhow::Result<(RunId, bool)> {
    let Opening { fresh, shared } = opening;
    if !fresh {
        if let Some(run) = store.find_resumable_run(fingerprint)? {
            // Its cells are the workers' to claim: asking them here too would ask them twice.
            if !shared && store.run_is_shared(run)? {
                return Err(crate::settings::UsageError(format!(
                    "run {run} of this plan is shared with workers (`versus run --workers 0`); \
                     start `versus worker` to finish it, or pass --fresh to start a separate run"
                ))
                .into());
            }
            // Another process may be working on it: then this one leaves, asking nothing twice.
            claim(store, run, owner)?;
            store.reset_for_resume(run)?;
            return Ok((run, true));
        }
    }
    let suite = &plan.suite;
    let models: Vec<String> = suite.models.iter().map(|m| m.id.clone()).collect();
    let cell_ids: Vec<CellId> = cells.iter().map(|c| cell_id(suite, c)).collect();
    let run = store.create_run(&NewRun {
        suite_name: &suite.name,
        suite_hash: &sha256_hex(suite_text.as_bytes()),
        suite_text,
        plan_fingerprint: fingerprint,
        plan,
        models: &models,
        tool_version: env!("CARGO_PKG_VERSION"),
        cells: &cell_ids,
    })?;
    claim(store, run, owner)?;
    Ok((run, false))
}

/// A stored answer that may stand in for a call: caching is on, and the answer is reproducible
/// (greedy or seeded) or the user asked to reuse random samples.
pub(crate) fn cache_hit(
    store: &Store,
    cell: &PlannedCell,
    model_id: &str,
    no_cache: bool,
    reuse: bool,
) -> anyhow::Result<Option<CellOutcome>> {
    if no_cache || !(reuse || cell.request.params.is_reproducible()) {
        return Ok(None);
    }
    let hit = store
        .lookup_completion(&cell.key)
        .with_context(|| format!("cannot read the cache for model `{model_id}`"))?;
    Ok(hit.map(|stored| CellOutcome::Completed {
        key: stored.key,
        model_spec: stored.model_spec,
        request_json: String::new(),
        completion: stored.completion,
        cached: true,
    }))
}

pub(crate) fn tally(outcome: &mut RunOutcome, cell: &CellId, settled: &CellOutcome) {
    match settled {
        CellOutcome::Completed { cached, .. } => {
            outcome.ok += 1;
            if *cached {
                outcome.cached += 1;
            }
        }
        CellOutcome::Failed { message, .. } => outcome.failed.push(Failure {
            cell: cell.clone(),
            message: message.clone(),
        }),
        CellOutcome::Unsupported { .. } => outcome.unsupported += 1,
    }
}

/// A failed cell as stored: its message with any URL in it redacted.
pub(crate) fn failed(error: &ModelError, attempts: u32) -> CellOutcome {
    CellOutcome::Failed {
        kind: error.kind,
        message: redact_urls_in(&error.message),
        attempts,
    }
}

pub(crate) fn completed(cell: &PlannedCell, spec: String, completion: Completion) -> CellOutcome {
    CellOutcome::Completed {
        key: cell.key.clone(),
        model_spec: spec,
        request_json: serde_json::to_string(&cell.request).unwrap_or_default(),
        completion,
        cached: false,
    }
}

/// Calls the models for every cell in `work`, at most `concurrency` at once per model (per
/// endpoint of a pool) and `max_concurrency` overall. Returns whether the run was interrupted (Ctrl-C or SIGTERM).
async fn execute(
    plan: &RunPlan,
    prepared: &[PreparedModel],
    work: Vec<(usize, PlannedCell)>,
    store: &mut Store,
    recorder: &mut Recorder,
    outcome: &mut RunOutcome,
    progress: &mut Progress,
) -> anyhow::Result<bool> {
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    let suite = &plan.suite;
    let global = Arc::new(Semaphore::new(suite.defaults.max_concurrency));
    // The prepared configs: a local model's concurrency defaults to its batch size there. A
    // model's `concurrency` is per endpoint: a pool's requests may fill every endpoint (the pool
    // itself holds each to its adaptive share).
    let per_model: Vec<Arc<Semaphore>> = prepared
        .iter()
        .map(|m| {
            let per_endpoint = m.config.concurrency.unwrap_or(suite.defaults.concurrency);
            Arc::new(Semaphore::new(
                per_endpoint.saturating_mul(m.endpoints.max(1)),
            ))
        })
        .collect();

    let mut calls: JoinSet<(PlannedCell, Result<Completion, ModelError>)> = JoinSet::new();
    for (_, cell) in work {
        let Ok(model) = &prepared[cell.model_index].model else {
            continue;
        };
        let model: Arc<dyn ChatModel> = Arc::clone(model);
        let model_slot = Arc::clone(&per_model[cell.model_index]);
        let global_slot = Arc::clone(&global);
        calls.spawn(async move {
            // Take the model's slot first, so a slow model waiting for its own slots does not
            // hold global slots that other models could use.
            let _model_permit = model_slot.acquire_owned().await;
            let _global_permit = global_slot.acquire_owned().await;
            let result = model.complete(&cell.request, &mut |_| {}).await;
            (cell, result)
        });
    }

    let mut interrupt = std::pin::pin!(interrupted());
    loop {
        tokio::select! {
            joined = calls.join_next() => {
                let Some(joined) = joined else { return Ok(false) };
                let (cell, result) = match joined {
                    Ok(pair) => pair,
                    Err(error) if error.is_cancelled() => continue,
                    Err(error) => return Err(anyhow::anyhow!("a model call panicked: {error}")),
                };
                let id = cell_id(suite, &cell);
                let model = &prepared[cell.model_index].config;
                let settled = match result {
                    Ok(completion) => completed(&cell, model.spec.to_string(), completion),
                    Err(error) => failed(&error, error.attempts),
                };
                // Committed before anything else happens, so a kill -9 loses nothing finished
                // (unless another process holds the database: then kept in memory until it is
                // free).
                tally(outcome, &id, &settled);
                progress.cell_done(cell.model_index, &id, &settled);
                recorder.record(store, id, settled)?;
            }
            _ = heartbeat.tick() => recorder.heartbeat(store)?,
            () = &mut interrupt => {
                calls.abort_all();
                return Ok(true);
            }
        }
    }
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM.
pub(crate) async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
