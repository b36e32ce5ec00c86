//! `/runs/{run}/criteria`: the run's criteria table with its paired tests, exactly as the HTML
//! report shows it (the same function renders both). Unlike the matrix it reads the whole run,
//! because a test over tasks needs every task; it is a page of its own so the matrix stays fast.

use axum::extract::{Path, State};
use axum::response::Html;
use versus_store::RunId;

use super::error::ViewError;
use super::page::{escape, layout};
use super::ViewState;

pub async fn criteria_page(
    State(state): State<ViewState>,
    Path(run): Path<RunId>,
) -> Result<Html<String>, ViewError> {
    state
        .blocking(move |store, state| {
            // The header first: an unknown run is a 404 like every other run page.
            let header = store.run_header(run)?;
            let alpha = state
                .plan(store, run, &header.plan_fingerprint)?
                .suite
                .verdicts
                .alpha;
            let report = crate::report::build(store, run).map_err(ViewError::Internal)?;
            let body = format!(
                "<h1>Run {run}: criteria</h1>\n<p class=\"meta\"><a href=\"/runs/{run}\" \
                 data-testid=\"criteria-back\">Back to the run</a> · {suite}. Verdicts are paired \
                 tests over the tasks, Holm-adjusted across the table (alpha {alpha}); see \
                 docs/verdicts.md.</p>\n{table}",
                suite = escape(&header.summary.suite_name),
                table = crate::report::html::tables::criteria_table(&report),
            );
            Ok(layout(&format!("Run {run} criteria"), &body))
        })
        .await
}
