//! `/`: the runs, newest first, a page at a time.

use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;
use versus_store::RunSummary;

use super::error::ViewError;
use super::page::{escape, layout, timestamp, Paging};
use super::ViewState;

const RUNS_PER_PAGE: usize = 50;

#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    page: Option<usize>,
}

pub async fn runs_page(
    State(state): State<ViewState>,
    Query(query): Query<RunsQuery>,
) -> Result<Html<String>, ViewError> {
    let (paging, runs) = state
        .blocking(move |store, _| {
            let total = usize::try_from(store.run_count()?).unwrap_or(usize::MAX);
            let paging = Paging::new(query.page, RUNS_PER_PAGE, total);
            let runs = store.runs_page(paging.offset() as u64, paging.per_page as u64)?;
            Ok((paging, runs))
        })
        .await?;
    let mut body = String::from("<h1>Runs</h1>\n");
    if runs.is_empty() {
        body.push_str(
            "<p data-testid=\"runs-empty\">No runs yet; start one with <code>versus run</code>.</p>\n",
        );
        return Ok(layout("Runs", &body));
    }
    body.push_str(
        "<table data-testid=\"runs-table\">\n<thead><tr><th>Run</th><th>Started</th>\
         <th>Suite</th><th>Models</th><th>Cells</th><th>OK</th><th>Failed</th><th>Status</th>\
         </tr></thead>\n<tbody>\n",
    );
    for run in &runs {
        body.push_str(&run_row(run));
    }
    body.push_str("</tbody>\n</table>\n");
    body.push_str(&paging.nav(|page| format!("/?page={page}")));
    Ok(layout("Runs", &body))
}

fn run_row(run: &RunSummary) -> String {
    let models: Vec<String> = run.models.iter().map(|m| escape(m)).collect();
    format!(
        "<tr data-testid=\"run-row\" data-run=\"{id}\"><td><a href=\"/runs/{id}\" \
         data-testid=\"run-link\">{id}</a></td><td>{started}</td><td>{suite}</td>\
         <td>{models}</td><td>{total}</td><td data-testid=\"run-ok\">{ok}</td>\
         <td data-testid=\"run-failed\">{failed}</td><td data-testid=\"run-status\">{status}</td></tr>\n",
        id = run.id,
        started = escape(&timestamp(&run.started_at)),
        suite = escape(&run.suite_name),
        models = models.join(", "),
        total = run.cells_total,
        ok = run.cells_ok,
        failed = run.cells_failed,
        status = run.status.as_str(),
    )
}
