//! `/runs/{run}/tasks/{task}`: one task of a run with every model's answer side by side, their
//! figures, checks and scores, what the judge said, and the verdict.
//!
//! The page is the report's own view of the task: `report::assemble` over a plan holding just
//! this task, so figures and the verdict follow exactly the report's rules. Answers are rendered
//! with `render::answer_html`, as in the HTML report (sanitized Markdown, code highlighted), so
//! an answer reads the same in both; judge outputs (also model text) are escaped into `<pre>`.

use axum::extract::{Path, State};
use axum::response::Html;
use versus_core::{Role, Suite};
use versus_store::{RunHeader, RunId};

use super::error::ViewError;
use super::page::{escape, layout, milliseconds, optional, task_href};
use super::ViewState;
use crate::report::format::{DASH, NOT_REPORTED};
use crate::report::{self, Grading, JudgementEntry, Report, ResultEntry, RunInfo};
use versus_core::RunPlan;

pub async fn task_page(
    State(state): State<ViewState>,
    Path((run, task)): Path<(RunId, String)>,
) -> Result<Html<String>, ViewError> {
    state
        .blocking(move |store, state| {
            let header = store.run_header(run)?;
            let plan = state.plan(store, run, &header.plan_fingerprint)?;
            let Some(index) = plan.suite.tasks.iter().position(|t| t.id == task) else {
                return Err(ViewError::NotFound(format!(
                    "run {run} has no task `{task}`"
                )));
            };
            let ids = vec![task.clone()];
            let grading = Grading {
                scores: store.scores_for_tasks(run, &ids)?,
                judgements: store.judgements_for_tasks(run, &ids)?,
                votes: Vec::new(),
            };
            let cells = store.cells_for_tasks(run, &ids)?;
            let report = report::assemble(
                run_info(&header),
                &single_task_plan(&plan, index),
                &cells,
                &grading,
            );
            let neighbours = (
                index
                    .checked_sub(1)
                    .and_then(|i| plan.suite.tasks.get(i))
                    .map(|t| t.id.as_str()),
                plan.suite.tasks.get(index + 1).map(|t| t.id.as_str()),
            );
            Ok(render(&report, neighbours))
        })
        .await
}

pub fn run_info(header: &RunHeader) -> RunInfo {
    let run = &header.summary;
    RunInfo {
        id: run.id,
        suite: run.suite_name.clone(),
        suite_hash: header.suite_hash.clone(),
        status: run.status.as_str().to_string(),
        started_at: run.started_at.clone(),
        finished_at: run.finished_at.clone(),
        tool_version: run.tool_version.clone(),
    }
}

/// The plan with only task `index` (and every model).
pub fn single_task_plan(plan: &RunPlan, index: usize) -> RunPlan {
    let suite = &plan.suite;
    RunPlan {
        suite: Suite {
            name: suite.name.clone(),
            description: suite.description.clone(),
            defaults: suite.defaults.clone(),
            models: suite.models.clone(),
            tasks: suite.tasks.get(index).cloned().into_iter().collect(),
            judge: suite.judge.clone(),
            verdicts: suite.verdicts,
        },
        overrides: plan.overrides.clone(),
    }
}

/// The prompt: every message with its role, as escaped preformatted text.
pub fn prompt_html(report: &Report) -> String {
    let mut out = String::from("<section class=\"prompt\" data-testid=\"task-prompt\">\n");
    for task in &report.tasks {
        for message in &task.messages {
            let role = match message.role {
                Role::System => "System",
                Role::User => "User",
                Role::Assistant => "Assistant",
            };
            out.push_str(&format!(
                "<div class=\"message\"><h3>{role}</h3><pre>{}</pre></div>\n",
                escape(&message.text_content())
            ));
        }
        if !task.images.is_empty() {
            let images: Vec<String> = task.images.iter().map(|i| escape(i)).collect();
            out.push_str(&format!(
                "<p data-testid=\"task-images\">Images: {}</p>\n",
                images.join(", ")
            ));
        }
    }
    out.push_str("</section>\n");
    out
}

/// An answer as safe HTML (through [`crate::render::answer_html`]), or what stopped it.
pub fn answer_html(result: &ResultEntry, testid: &str) -> String {
    let model = escape(&result.model);
    match &result.output {
        Some(output) => format!(
            "<div class=\"answer\" data-testid=\"{testid}\" data-model=\"{model}\">{}</div>",
            crate::render::answer_html(output)
        ),
        None => format!(
            "<div class=\"answer missing\" data-testid=\"{testid}\" data-model=\"{model}\">\
             <p>{}: {}</p></div>",
            result.status,
            escape(result.error.as_deref().unwrap_or("no answer"))
        ),
    }
}

fn render(report: &Report, (previous, next): (Option<&str>, Option<&str>)) -> Html<String> {
    let run = report.run.id;
    let Some(task) = report.tasks.first() else {
        return layout("Task", "<p data-testid=\"error\">No such task.</p>");
    };
    let mut body = format!(
        "<h1>{id} <small>run {run}</small></h1>\n<p class=\"meta\">category {category} · \
         <a href=\"/runs/{run}\" data-testid=\"back-to-run\">all tasks of run {run}</a>",
        id = escape(&task.id),
        category = escape(&task.category),
    );
    if let Some(previous) = previous {
        body.push_str(&format!(
            " · <a href=\"{}\" data-testid=\"task-prev\" rel=\"prev\">← {}</a>",
            escape(&task_href(run, previous)),
            escape(previous)
        ));
    }
    if let Some(next) = next {
        body.push_str(&format!(
            " · <a href=\"{}\" data-testid=\"task-next\" rel=\"next\">{} →</a>",
            escape(&task_href(run, next)),
            escape(next)
        ));
    }
    body.push_str("</p>\n<h2>Prompt</h2>\n");
    body.push_str(&prompt_html(report));
    if let Some(reference) = &task.reference {
        body.push_str(&format!(
            "<details data-testid=\"task-reference\"><summary>Reference answer</summary>\
             <pre>{}</pre></details>\n",
            escape(reference)
        ));
    }
    body.push_str("<h2>Answers</h2>\n<div class=\"answers\" data-testid=\"answers\">\n");
    for result in report.first_answers(&task.id) {
        body.push_str(&answer_column(report, result));
    }
    body.push_str("</div>\n");
    body.push_str(&judgements_html(&report.judgements));
    if let Some(verdict) = report.verdicts.first() {
        let winner = verdict.winner.as_deref().unwrap_or("");
        let head = if winner.is_empty() {
            "Tie".to_string()
        } else {
            format!("{} wins", escape(winner))
        };
        let why: String = verdict
            .why
            .iter()
            .map(|line| format!("<li>{}</li>", escape(line)))
            .collect();
        body.push_str(&format!(
            "<section class=\"verdict\" data-testid=\"verdict\" data-winner=\"{w}\" \
             data-decided-by=\"{by}\"><h2>Verdict</h2><p><strong>{head}</strong> \
             (decided by {by})</p><ul>{why}</ul></section>\n",
            w = escape(winner),
            by = verdict.decided_by.as_str(),
        ));
    }
    layout(&format!("{} · run {run}", task.id), &body)
}

fn answer_column(report: &Report, result: &ResultEntry) -> String {
    let model = escape(&result.model);
    let mut out = format!(
        "<article class=\"answer-column\" data-testid=\"answer-column\" data-model=\"{model}\">\
         <h3>{model} <span class=\"badge status-{status}\" data-testid=\"answer-status\">{status}\
         </span></h3>\n",
        status = result.status,
    );
    out.push_str(&answer_html(result, "answer"));
    out.push_str(&figures_html(result));
    out.push_str(&scores_html(report, result));
    if result.sample == 0 {
        out.push_str(&later_samples_html(report, result));
    }
    out.push_str("</article>\n");
    out
}

/// A model's later samples of the task, collapsed: each answer with its figures and checks.
fn later_samples_html(report: &Report, first: &ResultEntry) -> String {
    let Some(line) = report.samples_line(&first.task, &first.model) else {
        return String::new();
    };
    let mut out = format!(
        "<p class=\"meta\" data-testid=\"samples-line\">{}</p>\n",
        escape(&line)
    );
    let later = report.later_samples(&first.task, &first.model);
    if later.is_empty() {
        return out;
    }
    out.push_str(&format!(
        "<details data-testid=\"later-samples\"><summary>{} more samples</summary>\n",
        later.len()
    ));
    for result in later {
        out.push_str(&format!(
            "<section class=\"sample\" data-testid=\"sample\" data-sample=\"{n}\">\
             <h4>Sample {n} <span class=\"badge status-{status}\">{status}</span></h4>\n",
            n = result.sample + 1,
            status = result.status,
        ));
        out.push_str(&answer_html(result, "sample-answer"));
        out.push_str(&figures_html(result));
        out.push_str(&scores_html(report, result));
        out.push_str("</section>\n");
    }
    out.push_str("</details>\n");
    out
}

/// One answer's checks, then its other scores collapsed.
fn scores_html(report: &Report, result: &ResultEntry) -> String {
    let model = escape(&result.model);
    let mut out = String::new();
    let mine = report.scores_of(result);
    let checks: Vec<&&report::ScoreEntry> = mine
        .iter()
        .filter(|s| s.scorer.starts_with("check.") || s.scorer == "checks")
        .collect();
    if !checks.is_empty() {
        out.push_str(&format!(
            "<h4>Checks</h4><ul class=\"checks\" data-testid=\"checks\" data-model=\"{model}\">"
        ));
        for check in checks {
            let (class, word) = match check.passed {
                Some(true) => ("pass", "pass"),
                Some(false) => ("fail", "fail"),
                None => ("", "not run"),
            };
            let label = check
                .scorer
                .split_once(':')
                .map_or(check.scorer.as_str(), |(_, label)| label);
            out.push_str(&format!(
                "<li class=\"{class}\" data-testid=\"check\" data-passed=\"{passed}\">\
                 <span class=\"badge {class}\">{word}</span> {label}: {explanation}</li>",
                passed = check
                    .passed
                    .map_or("", |p| if p { "true" } else { "false" }),
                label = escape(label),
                explanation = escape(&check.explanation),
            ));
        }
        out.push_str("</ul>\n");
    }
    let others: Vec<&&report::ScoreEntry> = mine
        .iter()
        .filter(|s| !(s.scorer.starts_with("check.") || s.scorer == "checks"))
        .collect();
    if !others.is_empty() {
        out.push_str(&format!(
            "<details><summary>Scores</summary><table class=\"scores\" data-testid=\"scores\" \
             data-model=\"{model}\"><tbody>"
        ));
        for score in others {
            out.push_str(&format!(
                "<tr data-scorer=\"{s}\"><th>{s}</th><td>{v}</td><td>{e}</td></tr>",
                s = escape(&score.scorer),
                v = optional(score.value, 3),
                e = escape(&score.explanation),
            ));
        }
        out.push_str("</tbody></table></details>\n");
    }
    out
}

fn figures_html(result: &ResultEntry) -> String {
    let tokens = |t: Option<u64>| t.map_or(NOT_REPORTED.to_string(), |t| t.to_string());
    let rows = [
        ("Latency", milliseconds(result.latency_ms)),
        ("Time to first token", milliseconds(result.ttft_ms)),
        ("Input tokens", tokens(result.prompt_tokens)),
        ("Output tokens", tokens(result.completion_tokens)),
        ("Tokens/s", optional(result.tokens_per_second, 1)),
        (
            "Cost",
            result
                .cost_usd
                .map_or(DASH.to_string(), |c| format!("${c:.6}")),
        ),
        (
            "Finish",
            result.finish_reason.clone().unwrap_or_else(|| DASH.into()),
        ),
        (
            "From cache",
            if result.cached { "yes" } else { "no" }.to_string(),
        ),
    ];
    let mut out = format!(
        "<dl class=\"figures\" data-testid=\"figures\" data-model=\"{}\">",
        escape(&result.model)
    );
    for (label, value) in rows {
        out.push_str(&format!("<dt>{label}</dt><dd>{}</dd>", escape(&value)));
    }
    out.push_str("</dl>\n");
    out
}

/// The judge's verdicts with its explanation and full outputs (escaped: judge text is model
/// output too).
fn judgements_html(judgements: &[JudgementEntry]) -> String {
    if judgements.is_empty() {
        return String::new();
    }
    let mut out =
        String::from("<section class=\"judgements\" data-testid=\"judgements\"><h2>Judge</h2>\n");
    for j in judgements {
        let subject = if j.kind == versus_core::JudgementKind::Pairwise {
            format!("{} vs {}", escape(&j.model_a), escape(&j.model_b))
        } else {
            escape(&j.model_a)
        };
        let rating = j
            .rating
            .map(|r| format!(", rated {r:.1}/10"))
            .unwrap_or_default();
        out.push_str(&format!(
            "<article class=\"judgement\" data-testid=\"judgement\" data-kind=\"{kind}\" \
             data-verdict=\"{verdict}\"><h3>{kind}: {subject}</h3><p>judge {judge}: \
             <strong>{verdict}</strong>{rating}</p><p>{explanation}</p>",
            kind = j.kind.as_str(),
            verdict = j.verdict.as_str(),
            judge = escape(&j.judge),
            explanation = escape(&j.explanation),
        ));
        for (label, output) in judge_outputs(&j.detail) {
            out.push_str(&format!(
                "<details><summary>{}</summary><pre data-testid=\"judge-output\">{}</pre></details>",
                escape(&label),
                escape(&output)
            ));
        }
        out.push_str("</article>\n");
    }
    out.push_str("</section>\n");
    out
}

/// The judge's full texts in a stored judgement's detail: both orders of a pair, or the one call
/// of a rating.
fn judge_outputs(detail: &serde_json::Value) -> Vec<(String, String)> {
    let call = |key: &str, label: &str| {
        let call = detail.get(key)?;
        let output = call.get("output").and_then(|o| o.as_str()).unwrap_or("");
        let error = call.get("error").and_then(|e| e.as_str());
        let text = match error {
            Some(error) if output.is_empty() => format!("(no output: {error})"),
            _ => output.to_string(),
        };
        Some((label.to_string(), text))
    };
    [
        call("first", "Judge output, first order"),
        call("second", "Judge output, swapped order"),
        call("call", "Judge output"),
    ]
    .into_iter()
    .flatten()
    .collect()
}
