//! `/runs/{run}`: a run as a matrix, tasks down and models across (as promptfoo shows it), a page
//! of tasks at a time, optionally one category.
//!
//! A page costs the same whatever the run's size: the run's header, its plan (parsed once, then
//! cached), and one query each for the page's cells (answers cut to a preview in SQL), scores and
//! judgements. Verdicts are computed for the page's tasks only, by the report's own rules.

use std::collections::{BTreeSet, HashMap};

use axum::extract::{Path, Query, State};
use axum::response::Html;
use serde::Deserialize;
use versus_core::ratings::Battle;
use versus_core::Task;
use versus_store::{CellPreview, JudgementRecord, RunHeader, RunId, ScoreRecord};

use super::error::ViewError;
use super::page::{
    escape, layout, milliseconds, one_line, optional, percent, task_href, timestamp, url_encode,
    Paging,
};
use super::ViewState;
use crate::report::verdicts::{task_verdicts, Evidence, TaskVerdict};
use crate::report::{
    judgement_entry, model_entries, score_entry, task_entry, JudgementEntry, ResultEntry,
    ScoreEntry, TaskEntry,
};
use versus_core::RunPlan;

pub const TASKS_PER_PAGE: usize = 50;
/// Characters of each answer read from the store for its preview...
const PREVIEW_FETCH_CHARS: usize = 400;
/// ...and shown, in one line.
const PREVIEW_CHARS: usize = 160;

#[derive(Debug, Deserialize)]
pub struct MatrixQuery {
    page: Option<usize>,
    category: Option<String>,
}

pub async fn matrix_page(
    State(state): State<ViewState>,
    Path(run): Path<RunId>,
    Query(query): Query<MatrixQuery>,
) -> Result<Html<String>, ViewError> {
    state
        .blocking(move |store, state| {
            let header = store.run_header(run)?;
            let plan = state.plan(store, run, &header.plan_fingerprint)?;
            let category = query.category.filter(|c| !c.is_empty());
            let tasks: Vec<&Task> = plan
                .suite
                .tasks
                .iter()
                .filter(|t| category.as_deref().is_none_or(|c| t.category == c))
                .collect();
            let paging = Paging::new(query.page, TASKS_PER_PAGE, tasks.len());
            let shown = &tasks[paging.range()];
            let ids: Vec<String> = shown.iter().map(|t| t.id.clone()).collect();
            let workers = store.worker_progress(run)?;
            let page = StoredPage {
                cells: store.cell_previews(run, &ids, PREVIEW_FETCH_CHARS)?,
                scores: store.scores_for_tasks(run, &ids)?,
                judgements: store.judgements_for_tasks(run, &ids)?,
            }
            .with_battles(&plan);
            let mut html = render(&header, &plan, category.as_deref(), paging, shown, &page);
            if !workers.is_empty() {
                // After the run's summary line: who is answering this run, and how fast.
                let marker = "</p>\n";
                if let Some(at) = html.0.find(marker) {
                    html.0
                        .insert_str(at + marker.len(), &workers_table(&workers));
                }
            }
            Ok(html)
        })
        .await
}

/// The workers of a shared run (`versus worker`): what each recorded, holds and how fast, and
/// its last heartbeat.
fn workers_table(workers: &[versus_store::WorkerProgress]) -> String {
    let mut table = String::from(
        "<table class=\"workers\" data-testid=\"workers\">\n<thead><tr><th>Worker</th>\
         <th>Done</th><th>Failed</th><th>Held</th><th>Cells/s</th><th>Last heartbeat</th>\
         </tr></thead>\n<tbody>\n",
    );
    for worker in workers {
        table.push_str(&format!(
            "<tr data-testid=\"worker-row\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{:.1}</td><td>{:.1} s ago</td></tr>\n",
            escape(&worker.worker),
            worker.cells_done,
            worker.cells_failed,
            worker.cells_leased,
            worker.cells_per_second,
            worker.heartbeat_age_secs
        ));
    }
    table.push_str("</tbody></table>\n");
    table
}

/// One page, ready to render.
struct MatrixData {
    cells: Vec<CellPreview>,
    scores: Vec<ScoreRecord>,
    judgements: Vec<JudgementEntry>,
    /// The judge's pairwise verdicts as battles, for the verdicts.
    judge_battles: Vec<Battle>,
}

/// What the store gives, before the battles are derived.
struct StoredPage {
    cells: Vec<CellPreview>,
    scores: Vec<ScoreRecord>,
    judgements: Vec<JudgementRecord>,
}

impl StoredPage {
    fn with_battles(self, plan: &RunPlan) -> MatrixData {
        MatrixData {
            judge_battles: versus_core::record::battles(&self.judgements, &plan.categories(), []),
            judgements: self.judgements.iter().map(judgement_entry).collect(),
            cells: self.cells,
            scores: self.scores,
        }
    }
}

/// A result entry with what verdicts read (the status) and the preview's figures.
fn result_entry(task: &str, model: &str, cell: Option<&CellPreview>) -> ResultEntry {
    ResultEntry {
        task: task.to_string(),
        model: model.to_string(),
        sample: 0,
        status: cell.map_or("pending", |c| c.status.as_str()),
        output: None,
        error: cell.and_then(|c| c.error.clone()),
        error_kind: None,
        finish_reason: None,
        latency_ms: cell.and_then(|c| c.latency_ms),
        ttft_ms: None,
        prompt_tokens: None,
        completion_tokens: cell.and_then(|c| c.completion_tokens),
        tokens_per_second: None,
        cost_usd: None,
        cached: cell.is_some_and(|c| c.cached),
        attempts: 0,
        reasoning_tokens: None,
        cached_prompt_tokens: None,
        thinking: None,
        server_timings: None,
        via_batch: false,
    }
}

/// The verdicts of some tasks by the report's rules.
fn page_verdicts(plan: &RunPlan, shown: &[&Task], data: &MatrixData) -> Vec<TaskVerdict> {
    let models = model_entries(plan);
    let tasks: Vec<TaskEntry> = shown.iter().map(|t| task_entry(t)).collect();
    let by_cell: HashMap<(&str, &str), &CellPreview> = data
        .cells
        .iter()
        .map(|c| ((c.task_id.as_str(), c.model_id.as_str()), c))
        .collect();
    let results: Vec<ResultEntry> = shown
        .iter()
        .flat_map(|task| {
            models.iter().map(|model| {
                let cell = by_cell.get(&(task.id.as_str(), model.id.as_str())).copied();
                result_entry(&task.id, &model.id, cell)
            })
        })
        .collect();
    let scores: Vec<ScoreEntry> = data.scores.iter().map(score_entry).collect();
    task_verdicts(&Evidence {
        models: &models,
        tasks: &tasks,
        results: &results,
        scores: &scores,
        judgements: &data.judgements,
        judge_battles: &data.judge_battles,
    })
}

fn render(
    header: &RunHeader,
    plan: &RunPlan,
    category: Option<&str>,
    paging: Paging,
    shown: &[&Task],
    data: &MatrixData,
) -> Html<String> {
    let run = &header.summary;
    let id = run.id;
    let mut body = format!(
        "<h1>Run {id}: {suite}</h1>\n<p class=\"meta\" data-testid=\"run-meta\">{status}, \
         started {started}; {ok} of {total} cells answered, {failed} failed, \
         {unsupported} unsupported, {pending} pending. \
         <a href=\"/runs/{id}/criteria\" data-testid=\"run-criteria\">Criteria, with how sure</a> · \
         <a href=\"/vote?run={id}\" data-testid=\"run-vote\">Vote on this run</a> · \
         <a href=\"/compare?a={id}\" data-testid=\"run-compare\">Compare with another run</a></p>\n",
        suite = escape(&run.suite_name),
        status = run.status.as_str(),
        started = escape(&timestamp(&run.started_at)),
        ok = run.cells_ok,
        total = run.cells_total,
        failed = run.cells_failed,
        unsupported = run.cells_unsupported,
        pending = run.cells_pending,
    );
    body.push_str(&category_filter(id, plan, category));
    if shown.is_empty() {
        body.push_str("<p data-testid=\"matrix-empty\">No tasks to show.</p>\n");
        return layout(&format!("Run {id}"), &body);
    }
    let models: Vec<&str> = plan.suite.models.iter().map(|m| m.id.as_str()).collect();
    let verdicts = page_verdicts(plan, shown, data);
    let by_cell: HashMap<(&str, &str), &CellPreview> = data
        .cells
        .iter()
        .map(|c| ((c.task_id.as_str(), c.model_id.as_str()), c))
        .collect();
    body.push_str("<table class=\"matrix\" data-testid=\"matrix\">\n<thead><tr><th>Task</th>");
    for model in &models {
        body.push_str(&format!(
            "<th data-testid=\"model-column\" data-model=\"{m}\">{m}</th>",
            m = escape(model)
        ));
    }
    body.push_str("<th>Verdict</th></tr></thead>\n<tbody>\n");
    for (task, verdict) in shown.iter().zip(&verdicts) {
        let task_id = escape(&task.id);
        body.push_str(&format!(
            "<tr data-testid=\"task-row\" data-task=\"{task_id}\"><th scope=\"row\">\
             <a href=\"{href}\" data-testid=\"task-link\">{task_id}</a>\
             <span class=\"category\">{category}</span></th>",
            href = escape(&task_href(id, &task.id)),
            category = escape(&task.category),
        ));
        for model in &models {
            let cell = by_cell.get(&(task.id.as_str(), *model)).copied();
            body.push_str(&cell_html(
                &task.id,
                model,
                cell,
                &data.scores,
                &data.judgements,
            ));
        }
        body.push_str(&verdict_cell(verdict));
        body.push_str("</tr>\n");
    }
    body.push_str("</tbody>\n</table>\n");
    body.push_str(&paging.nav(|page| match category {
        Some(category) => format!("/runs/{id}?category={}&page={page}", url_encode(category)),
        None => format!("/runs/{id}?page={page}"),
    }));
    layout(&format!("Run {id}"), &body)
}

fn category_filter(run: RunId, plan: &RunPlan, selected: Option<&str>) -> String {
    let categories: BTreeSet<&str> = plan
        .suite
        .tasks
        .iter()
        .map(|t| t.category.as_str())
        .collect();
    let mut options = format!(
        "<option value=\"\"{}>all</option>",
        if selected.is_none() { " selected" } else { "" }
    );
    for category in categories {
        options.push_str(&format!(
            "<option value=\"{c}\"{selected}>{c}</option>",
            c = escape(category),
            selected = if selected == Some(category) {
                " selected"
            } else {
                ""
            }
        ));
    }
    format!(
        "<form method=\"get\" action=\"/runs/{run}\" class=\"filter\" \
         data-testid=\"category-filter\"><label>Category \
         <select name=\"category\" data-testid=\"category-select\">{options}</select></label> \
         <button type=\"submit\" data-testid=\"category-apply\">Show</button></form>\n"
    )
}

/// One matrix cell: status, checks, a plain-text preview of the answer (or the error), figures.
fn cell_html(
    task: &str,
    model: &str,
    cell: Option<&CellPreview>,
    scores: &[ScoreRecord],
    judgements: &[JudgementEntry],
) -> String {
    let status = cell.map_or("pending", |c| c.status.as_str());
    // The cell shows the first sample; later samples are counted beside it.
    let score = |scorer: &str| {
        scores.iter().find(|s| {
            s.task_id == task && s.model_id == model && s.sample == 0 && s.scorer == scorer
        })
    };
    let mut head = format!(
        "<span class=\"badge status-{status}\" data-testid=\"cell-status\">{status}</span>"
    );
    if cell.is_some_and(|c| c.cached) {
        head.push_str(" <span class=\"badge\">cached</span>");
    }
    if let Some(samples) = cell.map(|c| c.samples).filter(|n| *n > 1) {
        let passed: Vec<bool> = scores
            .iter()
            .filter(|s| s.task_id == task && s.model_id == model && s.scorer == "checks")
            .filter_map(|s| s.passed)
            .collect();
        let checks = if passed.is_empty() {
            String::new()
        } else {
            format!(
                ", {} of {} passed",
                passed.iter().filter(|p| **p).count(),
                passed.len()
            )
        };
        head.push_str(&format!(
            " <span class=\"badge\" data-testid=\"cell-samples\" data-samples=\"{samples}\">\
             {samples} samples{checks}</span>"
        ));
    }
    if let Some(checks) = score("checks") {
        let (class, word) = match checks.passed {
            Some(true) => ("pass", "pass"),
            Some(false) => ("fail", "fail"),
            None => ("", "checks"),
        };
        head.push_str(&format!(
            " <span class=\"badge {class}\" data-testid=\"cell-checks\" data-passed=\"{passed}\">\
             {word} {value}</span>",
            passed = checks
                .passed
                .map_or("", |p| if p { "true" } else { "false" }),
            value = checks.value.map(percent).unwrap_or_default(),
        ));
    }
    let text = match cell {
        Some(c) if c.preview.is_some() => c.preview.as_deref().unwrap_or_default(),
        Some(c) => c.error.as_deref().unwrap_or_default(),
        None => "",
    };
    let mut figures = Vec::new();
    if let Some(c) = cell.filter(|c| c.latency_ms.is_some()) {
        figures.push(milliseconds(c.latency_ms));
        if let Some(tokens) = c.completion_tokens {
            figures.push(format!("{tokens} tokens"));
        }
    }
    if let Some(rouge) = score("rougeL").and_then(|s| s.value) {
        figures.push(format!("ROUGE-L {rouge:.3}"));
    }
    let ratings: Vec<f64> = judgements
        .iter()
        .filter(|j| j.is_rating_of(task, model))
        .filter_map(|j| j.rating)
        .collect();
    if !ratings.is_empty() {
        let mean = ratings.iter().sum::<f64>() / ratings.len() as f64;
        figures.push(format!("rated {}", optional(Some(mean), 1)));
    }
    format!(
        "<td class=\"cell status-{status}\" data-testid=\"cell\" data-task=\"{task}\" \
         data-model=\"{model}\" data-status=\"{status}\"><div class=\"cell-head\">{head}</div>\
         <p class=\"preview\" data-testid=\"cell-preview\">{preview}</p>\
         <p class=\"figures\" data-testid=\"cell-scores\">{figures}</p></td>",
        task = escape(task),
        model = escape(model),
        preview = escape(&one_line(text, PREVIEW_CHARS)),
        figures = escape(&figures.join(" · ")),
    )
}

fn verdict_cell(verdict: &TaskVerdict) -> String {
    let winner = verdict.winner.as_deref().unwrap_or("");
    format!(
        "<td class=\"verdict\" data-testid=\"verdict\" data-task=\"{task}\" data-winner=\"{w}\" \
         data-decided-by=\"{by}\" title=\"{why}\">{shown}<br><small>{by}</small></td>",
        task = escape(&verdict.task),
        w = escape(winner),
        by = verdict.decided_by.as_str(),
        why = escape(&verdict.why.join("; ")),
        shown = if winner.is_empty() {
            "tie".to_string()
        } else {
            escape(winner)
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workers_table_has_a_row_per_worker_with_escaped_names() {
        let worker = versus_store::WorkerProgress {
            worker: "<b>host</b>:1:2".into(),
            host: "host".into(),
            pid: 1,
            cells_done: 12,
            cells_failed: 1,
            cells_leased: 3,
            cells_per_second: 2.5,
            heartbeat_age_secs: 0.5,
        };
        let table = workers_table(&[worker.clone(), worker]);
        assert_eq!(table.matches("data-testid=\"worker-row\"").count(), 2);
        assert!(table.contains("&lt;b&gt;host&lt;/b&gt;:1:2"), "{table}");
        assert!(
            table.contains("<td>12</td><td>1</td><td>3</td><td>2.5</td><td>0.5 s ago</td>"),
            "{table}"
        );
    }
}
