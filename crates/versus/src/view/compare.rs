//! `/compare?a={run}&b={run}`: what changed from run `a` to run `b` for every (task, model) in
//! both: whether the answer changed, and whether it got better or worse.
//!
//! Better or worse follows the per-task verdict order of docs/verdicts.md, with its margins: an
//! answer where there was none (or none where there was one) decides; then the weighted check
//! score; then the judge's mean rating (0.5 or more); then ROUGE-L (0.02 or more). Otherwise the
//! pair is the same.

use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;
use versus_store::{CellComparison, CellStatus, RunId};

use super::error::ViewError;
use super::page::{escape, layout, milliseconds, optional, percent, task_href, Paging};
use super::ViewState;

const ROWS_PER_PAGE: usize = 100;
const CHECK_MARGIN: f64 = 1e-9;
const RATING_MARGIN: f64 = 0.5;
const ROUGE_MARGIN: f64 = 0.02;

#[derive(Debug, Deserialize)]
pub struct CompareQuery {
    a: Option<RunId>,
    b: Option<RunId>,
    page: Option<usize>,
    /// `changed` shows only rows that got better or worse or whose answer changed.
    show: Option<String>,
}

/// How one (task, model) moved from run `a` to run `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Better,
    Worse,
    Same,
}

impl Change {
    fn as_str(self) -> &'static str {
        match self {
            Change::Better => "better",
            Change::Worse => "worse",
            Change::Same => "same",
        }
    }
}

/// Compares by the first evidence that differs (see the module documentation).
pub fn change(row: &CellComparison) -> Change {
    let by = |a: Option<f64>, b: Option<f64>, margin: f64| match (a, b) {
        (Some(a), Some(b)) if b - a >= margin => Some(Change::Better),
        (Some(a), Some(b)) if a - b >= margin => Some(Change::Worse),
        _ => None,
    };
    let answered = |status: CellStatus| status == CellStatus::Ok;
    match (answered(row.status_a), answered(row.status_b)) {
        (false, true) => return Change::Better,
        (true, false) => return Change::Worse,
        (false, false) => return Change::Same,
        (true, true) => {}
    }
    by(row.checks_a, row.checks_b, CHECK_MARGIN)
        .or_else(|| by(row.rating_a, row.rating_b, RATING_MARGIN))
        .or_else(|| by(row.rouge_a, row.rouge_b, ROUGE_MARGIN))
        .unwrap_or(Change::Same)
}

pub async fn compare_page(
    State(state): State<ViewState>,
    Query(query): Query<CompareQuery>,
) -> Result<Html<String>, ViewError> {
    let form = compare_form(query.a, query.b);
    let (Some(a), Some(b)) = (query.a, query.b) else {
        let body = format!(
            "<h1>Compare two runs</h1>\n{form}<p>Pick two runs (see <a href=\"/\">runs</a>).</p>\n"
        );
        return Ok(layout("Compare", &body));
    };
    let rows = state
        .blocking(move |store, _| Ok(store.compare_runs(a, b)?))
        .await?;
    let changes: Vec<Change> = rows.iter().map(change).collect();
    let count = |wanted: Change| changes.iter().filter(|c| **c == wanted).count();
    let answers_changed = rows.iter().filter(|r| !r.same_answer).count();
    let only_changed = query.show.as_deref() == Some("changed");
    let listed: Vec<(&CellComparison, Change)> = rows
        .iter()
        .zip(changes.iter().copied())
        .filter(|(row, change)| !only_changed || *change != Change::Same || !row.same_answer)
        .collect();
    let paging = Paging::new(query.page, ROWS_PER_PAGE, listed.len());
    let mut body = format!(
        "<h1>Run {a} → run {b}</h1>\n{form}\
         <p class=\"totals\" data-testid=\"compare-totals\">{pairs} (task, model) pairs in both runs: \
         <span data-testid=\"totals-better\" data-count=\"{better}\">{better} better</span>, \
         <span data-testid=\"totals-worse\" data-count=\"{worse}\">{worse} worse</span>, \
         <span data-testid=\"totals-same\" data-count=\"{same}\">{same} the same</span>; \
         <span data-testid=\"totals-answers-changed\" data-count=\"{answers_changed}\">\
         {answers_changed} answers changed</span>.</p>\n\
         <p><a href=\"/compare?a={a}&amp;b={b}&amp;show={toggle}\" data-testid=\"compare-toggle\">{toggle_label}</a></p>\n",
        pairs = rows.len(),
        better = count(Change::Better),
        worse = count(Change::Worse),
        same = count(Change::Same),
        toggle = if only_changed { "all" } else { "changed" },
        toggle_label = if only_changed {
            "show every pair"
        } else {
            "show only what changed"
        },
    );
    if rows.is_empty() {
        body.push_str(
            "<p data-testid=\"compare-empty\">The runs have no (task, model) in common.</p>\n",
        );
        return Ok(layout("Compare", &body));
    }
    body.push_str(
        "<table class=\"compare\" data-testid=\"compare-table\">\n<thead><tr><th>Task</th>\
         <th>Model</th><th>Change</th><th>Answer</th><th>Status</th><th>Checks</th>\
         <th>Judge rating</th><th>ROUGE-L</th><th>Latency</th></tr></thead>\n<tbody>\n",
    );
    for (row, change) in &listed[paging.range()] {
        body.push_str(&compare_row(a, b, row, *change));
    }
    body.push_str("</tbody>\n</table>\n");
    let show = if only_changed { "&show=changed" } else { "" };
    body.push_str(&paging.nav(|page| format!("/compare?a={a}&b={b}{show}&page={page}")));
    Ok(layout(&format!("Run {a} → run {b}"), &body))
}

fn compare_form(a: Option<RunId>, b: Option<RunId>) -> String {
    let value = |run: Option<RunId>| run.map(|r| r.to_string()).unwrap_or_default();
    format!(
        "<form method=\"get\" action=\"/compare\" class=\"filter\" data-testid=\"compare-form\">\
         <label>Run A <input type=\"number\" name=\"a\" min=\"1\" value=\"{}\" \
         data-testid=\"compare-a\" required></label> \
         <label>Run B <input type=\"number\" name=\"b\" min=\"1\" value=\"{}\" \
         data-testid=\"compare-b\" required></label> \
         <button type=\"submit\" data-testid=\"compare-submit\">Compare</button></form>\n",
        value(a),
        value(b)
    )
}

fn compare_row(a: RunId, b: RunId, row: &CellComparison, change: Change) -> String {
    let pair = |x: String, y: String| {
        if x == y {
            x
        } else {
            format!("{x} → {y}")
        }
    };
    let checks = |value: Option<f64>, passed: Option<bool>| match (value, passed) {
        (Some(v), Some(true)) => format!("{} pass", percent(v)),
        (Some(v), Some(false)) => format!("{} fail", percent(v)),
        (Some(v), None) => percent(v),
        (None, _) => "–".into(),
    };
    let delta = |x: Option<f64>, y: Option<f64>, digits: usize| match (x, y) {
        (Some(x), Some(y)) if (y - x).abs() > f64::EPSILON => {
            format!(
                "{} → {} ({:+.digits$})",
                optional(Some(x), digits),
                optional(Some(y), digits),
                y - x
            )
        }
        _ => pair(optional(x, digits), optional(y, digits)),
    };
    format!(
        "<tr data-testid=\"compare-row\" data-task=\"{task}\" data-model=\"{model}\" \
         data-change=\"{change}\" data-answer=\"{answer}\" data-sample=\"{sample}\" \
         class=\"change-{change}\">\
         <td><a href=\"{href_a}\">{task}</a> (<a href=\"{href_b}\">in B</a>)</td><td>{model}{label}</td>\
         <td>{change}</td><td>{answer}</td><td>{status}</td><td>{checks}</td><td>{rating}</td>\
         <td>{rouge}</td><td>{latency}</td></tr>\n",
        task = escape(&row.task_id),
        model = escape(&row.model_id),
        sample = row.sample,
        // Samples after the first are numbered from 1, as every report shows them.
        label = if row.sample > 0 {
            format!(", sample {}", row.sample + 1)
        } else {
            String::new()
        },
        change = change.as_str(),
        answer = if row.same_answer { "same" } else { "changed" },
        href_a = escape(&task_href(a, &row.task_id)),
        href_b = escape(&task_href(b, &row.task_id)),
        status = pair(row.status_a.as_str().into(), row.status_b.as_str().into()),
        checks = escape(&pair(
            checks(row.checks_a, row.passed_a),
            checks(row.checks_b, row.passed_b)
        )),
        rating = escape(&delta(row.rating_a, row.rating_b, 1)),
        rouge = escape(&delta(row.rouge_a, row.rouge_b, 3)),
        latency = escape(&pair(
            milliseconds(row.latency_a),
            milliseconds(row.latency_b)
        )),
    )
}
