//! Batch mode (`versus run --batch-api`): the cells of models whose provider has a batch API go
//! out as batches, each recorded in the store with the provider's id the moment it is accepted;
//! batches are polled until they end and their answers recorded cell by cell. A run interrupted
//! while batches are pending (Ctrl-C, `kill -9`) collects them when run again, asking nothing
//! twice. Cells a batch does not answer (expired, cancelled, a server error) go back to ordinary
//! calls; cells it rejects are recorded as failed with the provider's reason.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use versus_api::{ApiClient, BatchItem, BatchOutcome, BatchPoll, MAX_BATCH_REQUESTS};
use versus_core::{ErrorKind, ModelError, Suite};
use versus_store::{BatchCell, BatchEnd, CellId, PendingBatch, RunId, Store};

use crate::models::PreparedModel;
use crate::progress::Progress;
use crate::recorder::Recorder;
use crate::runner::{cell_id, completed, failed, tally, PlannedCell, RunOutcome};

/// How often the owner's heartbeat is refreshed while waiting for batches.
const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);

/// The poll interval for batches an interrupted run left when `--batch-api` is not given again.
pub const DEFAULT_POLL: Duration = Duration::from_secs(30);

/// A batch the provider has: its store row, provider id, model and cells by custom id.
pub struct Job {
    row: i64,
    provider_id: String,
    model_index: usize,
    client: ApiClient,
    cells: HashMap<String, PlannedCell>,
}

/// The id a cell carries inside a batch: its position in the plan, stable across resumes.
fn custom_id(position: usize) -> String {
    format!("cell-{position}")
}

/// Takes the cells of the batches an interrupted run submitted out of `work`, to be collected
/// rather than asked again. A batch whose model cannot be built now (its key is gone) stays
/// pending, its cells untouched, for a later run.
pub fn resume(
    pending: Vec<PendingBatch>,
    work: &mut Vec<(usize, PlannedCell)>,
    suite: &Suite,
    prepared: &[PreparedModel],
    progress: &mut Progress,
) -> Vec<Job> {
    let mut jobs = Vec::new();
    for batch in pending {
        let Some(model_index) = suite.models.iter().position(|m| m.id == batch.model_id) else {
            continue;
        };
        let Some(client) = prepared[model_index].batch.clone() else {
            progress.note(&format!(
                "warning: batch {} of model `{}` is still pending, but the model cannot use its batch API now; its cells wait for a run that can",
                batch.provider_batch_id, batch.model_id
            ));
            let waiting: HashSet<CellId> = batch.cells.iter().map(|c| c.cell.clone()).collect();
            work.retain(|(_, cell)| !waiting.contains(&cell_id(suite, cell)));
            continue;
        };
        let by_cell: HashMap<CellId, String> = batch
            .cells
            .iter()
            .map(|c| (c.cell.clone(), c.custom_id.clone()))
            .collect();
        let mut cells = HashMap::new();
        work.retain(|(_, cell)| match by_cell.get(&cell_id(suite, cell)) {
            Some(custom) => {
                cells.insert(custom.clone(), cell.clone());
                false
            }
            None => true,
        });
        progress.note(&format!(
            "collecting batch {} of model `{}` (submitted {}, {} cells)",
            batch.provider_batch_id,
            batch.model_id,
            batch.submitted_at,
            cells.len()
        ));
        jobs.push(Job {
            row: batch.row,
            provider_id: batch.provider_batch_id,
            model_index,
            client,
            cells,
        });
    }
    jobs
}

/// Submits the cells of `work` whose model has a batch API, one batch per model (split at
/// [`MAX_BATCH_REQUESTS`]), recording each batch before anything else; returns the jobs and
/// leaves in `work` the cells to call as usual (other models, and those whose batch the
/// provider refused).
#[allow(clippy::too_many_arguments)]
pub async fn submit(
    work: &mut Vec<(usize, PlannedCell)>,
    suite: &Suite,
    prepared: &[PreparedModel],
    store: &mut Store,
    run: RunId,
    progress: &mut Progress,
) -> anyhow::Result<Vec<Job>> {
    let mut by_model: HashMap<usize, Vec<(usize, PlannedCell)>> = HashMap::new();
    let mut live = Vec::new();
    for (position, cell) in work.drain(..) {
        if prepared[cell.model_index].batch.is_some() {
            by_model
                .entry(cell.model_index)
                .or_default()
                .push((position, cell));
        } else {
            live.push((position, cell));
        }
    }
    let mut jobs = Vec::new();
    let mut models: Vec<usize> = by_model.keys().copied().collect();
    models.sort_unstable();
    for model_index in models {
        let cells = by_model.remove(&model_index).unwrap_or_default();
        let Some(client) = prepared[model_index].batch.clone() else {
            continue;
        };
        let model_id = &suite.models[model_index].id;
        for chunk in cells.chunks(MAX_BATCH_REQUESTS) {
            let items: Vec<BatchItem> = chunk
                .iter()
                .map(|(position, cell)| BatchItem {
                    custom_id: custom_id(*position),
                    request: cell.request.clone(),
                })
                .collect();
            match client.submit_batch(&items).await {
                Ok(provider_id) => {
                    let batch_cells: Vec<BatchCell> = chunk
                        .iter()
                        .map(|(position, cell)| BatchCell {
                            custom_id: custom_id(*position),
                            cell: cell_id(suite, cell),
                        })
                        .collect();
                    // Stored before anything else: from here on, a run that dies collects this
                    // batch instead of paying for its cells again.
                    let row = store.record_batch(run, model_id, &provider_id, &batch_cells)?;
                    progress.note(&format!(
                        "submitted batch {provider_id} of model `{model_id}` ({} cells)",
                        chunk.len()
                    ));
                    jobs.push(Job {
                        row,
                        provider_id,
                        model_index,
                        client: client.clone(),
                        cells: chunk
                            .iter()
                            .map(|(position, cell)| (custom_id(*position), cell.clone()))
                            .collect(),
                    });
                }
                Err(error) => {
                    progress.note(&format!(
                        "warning: model `{model_id}`: the batch API refused the batch ({}); its {} cells are asked one by one",
                        versus_core::redact::redact_urls_in(&error.message),
                        chunk.len()
                    ));
                    live.extend(chunk.iter().cloned());
                }
            }
        }
    }
    *work = live;
    Ok(jobs)
}

/// Whether a failed request of a batch is worth asking again one by one.
fn worth_asking_again(error: &ModelError) -> bool {
    matches!(
        error.kind,
        ErrorKind::Server | ErrorKind::RateLimited | ErrorKind::Timeout | ErrorKind::Connection
    )
}

/// How waiting for the batches ended.
pub struct Collected {
    /// Ctrl-C or SIGTERM: the batches still pending stay recorded for the next run.
    pub interrupted: bool,
    /// Cells no batch answered (expired, cancelled, a server error, a batch refused as a
    /// whole), to be asked one by one.
    pub retry: Vec<(usize, PlannedCell)>,
}

/// Polls `jobs` every `poll` until each has ended, recording answers cell by cell.
#[allow(clippy::too_many_arguments)]
pub async fn collect(
    mut jobs: Vec<Job>,
    poll: Duration,
    suite: &Suite,
    store: &mut Store,
    recorder: &mut Recorder,
    outcome: &mut RunOutcome,
    progress: &mut Progress,
) -> anyhow::Result<Collected> {
    let mut retry = Vec::new();
    let mut heartbeat = tokio::time::interval(HEARTBEAT_EVERY);
    let mut interrupt = std::pin::pin!(crate::runner::interrupted());
    let mut first = true;
    while !jobs.is_empty() {
        if !first {
            let wait = tokio::time::sleep(poll);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    () = &mut wait => break,
                    _ = heartbeat.tick() => recorder.heartbeat(store)?,
                    () = &mut interrupt => {
                        progress.note(&format!(
                            "interrupted: {} batch(es) still pending at the provider; run the same command again to collect them",
                            jobs.len()
                        ));
                        return Ok(Collected { interrupted: true, retry });
                    }
                }
            }
        }
        first = false;
        let mut still = Vec::new();
        for job in jobs {
            let model_id = &suite.models[job.model_index].id;
            match job.client.poll_batch(&job.provider_id).await {
                Ok(BatchPoll::Running { ended, total }) => {
                    if let (Some(ended), Some(total)) = (ended, total) {
                        progress.note(&format!(
                            "batch {} of model `{model_id}`: {ended}/{total} requests done",
                            job.provider_id
                        ));
                    }
                    still.push(job);
                }
                Ok(BatchPoll::Ended(results)) => {
                    record_results(
                        job, results, suite, store, recorder, outcome, progress, &mut retry,
                    )?;
                }
                Ok(BatchPoll::Failed(reason)) => {
                    progress.note(&format!(
                        "warning: batch {} of model `{model_id}` failed ({reason}); its cells are asked one by one",
                        job.provider_id
                    ));
                    store.close_batch(job.row, BatchEnd::Failed, Some(&reason))?;
                    retry.extend(job.cells.into_values().map(|cell| (0, cell)));
                }
                Err(error) if worth_asking_again(&error) => {
                    // The client retried already; the batch is still the provider's: ask later.
                    still.push(job);
                }
                Err(error) => {
                    let reason = versus_core::redact::redact_urls_in(&error.message);
                    progress.note(&format!(
                        "warning: batch {} of model `{model_id}` cannot be read ({reason}); its cells are asked one by one",
                        job.provider_id
                    ));
                    store.close_batch(job.row, BatchEnd::Failed, Some(&reason))?;
                    retry.extend(job.cells.into_values().map(|cell| (0, cell)));
                }
            }
        }
        jobs = still;
    }
    Ok(Collected {
        interrupted: false,
        retry,
    })
}

/// Records an ended batch's answers cell by cell and closes it.
#[allow(clippy::too_many_arguments)]
fn record_results(
    mut job: Job,
    results: Vec<versus_api::BatchResult>,
    suite: &Suite,
    store: &mut Store,
    recorder: &mut Recorder,
    outcome: &mut RunOutcome,
    progress: &mut Progress,
    retry: &mut Vec<(usize, PlannedCell)>,
) -> anyhow::Result<()> {
    let spec = suite.models[job.model_index].spec.to_string();
    for result in results {
        let Some(cell) = job.cells.remove(&result.custom_id) else {
            continue;
        };
        let settled = match result.outcome {
            BatchOutcome::Answered(completion) => {
                let mut completion = *completion;
                completion.via_batch = true;
                completion.attempts = 1;
                completed(&cell, spec.clone(), completion)
            }
            BatchOutcome::Failed(error) if worth_asking_again(&error) => {
                retry.push((0, cell));
                continue;
            }
            BatchOutcome::Failed(error) => failed(
                &ModelError {
                    message: format!("in batch {}: {}", job.provider_id, error.message),
                    ..error
                },
                1,
            ),
            BatchOutcome::NotRun(_) => {
                retry.push((0, cell));
                continue;
            }
        };
        let id = cell_id(suite, &cell);
        tally(outcome, &id, &settled);
        progress.cell_done(cell.model_index, &id, &settled);
        recorder.record(store, id, settled)?;
    }
    // Requests the provider said nothing about were not run.
    retry.extend(job.cells.drain().map(|(_, cell)| (0, cell)));
    store.close_batch(job.row, BatchEnd::Ended, None)?;
    Ok(())
}
