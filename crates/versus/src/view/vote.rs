//! `/vote`: blind voting, as Chatbot Arena does it. GET shows two answers to the same task from
//! two models picked at random, left and right at random, with the names hidden; POST records
//! the vote (left is the vote's `model_a`) and reveals the names.
//!
//! The page's form carries a single-use ballot id; which models sat where is kept on the server
//! (`ballots.rs`), so the names are not in the page before the vote and a client cannot vote
//! for models it was not shown. The POST also passes the origin check and the CSRF token
//! (`security.rs`). A GET never records anything, whatever its parameters.

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form};
use base64::Engine;
use serde::Deserialize;
use versus_core::ratings::Winner;
use versus_core::Task;
use versus_store::{CellRecord, CellStatus, RunId, VoteRecord};

use super::ballots::Ballot;
use super::error::ViewError;
use super::page::{escape, layout, task_href};
use super::security::{cookie, random_u64, strict_cookie, verify_csrf, CsrfToken};
use super::ViewState;
use crate::render::answer_html;

const VOTER_COOKIE: &str = "versus_voter";
/// Characters of a voter's name kept.
const VOTER_NAME_CHARS: usize = 64;
/// How long the browser remembers the voter's name.
const VOTER_COOKIE_SECONDS: u64 = 365 * 24 * 60 * 60;

#[derive(Debug, Deserialize)]
pub struct VoteQuery {
    /// Only this run's tasks; any run's by default.
    run: Option<RunId>,
}

#[derive(Debug, Deserialize)]
pub struct VoteForm {
    ballot: String,
    csrf: String,
    choice: String,
    #[serde(default)]
    voter: Option<String>,
    #[serde(default)]
    run: Option<RunId>,
}

/// The four buttons: form value, label, test id, the vote's `winner` (left is `model_a`).
const CHOICES: [(&str, &str, &str, Winner); 4] = [
    ("left", "Left is better", "vote-left", Winner::ModelA),
    ("right", "Right is better", "vote-right", Winner::ModelB),
    ("tie", "Tie", "vote-tie", Winner::Tie),
    ("bothbad", "Both bad", "vote-bothbad", Winner::TieBothBad),
];

/// The pair to show: a task and its answers, left and right.
struct Pair {
    run: RunId,
    task: Task,
    left: CellRecord,
    right: CellRecord,
}

pub async fn vote_page(
    State(state): State<ViewState>,
    Query(query): Query<VoteQuery>,
    Extension(csrf): Extension<CsrfToken>,
    headers: HeaderMap,
) -> Result<Html<String>, ViewError> {
    let pair = state
        .blocking(move |store, state| {
            let Some((run, task_id)) = store.random_votable_task(query.run)? else {
                return Ok(None);
            };
            let header = store.run_header(run)?;
            let plan = state.plan(store, run, &header.plan_fingerprint)?;
            let Some(task) = plan.suite.tasks.iter().find(|t| t.id == task_id) else {
                return Ok(None);
            };
            let mut answered: Vec<CellRecord> = store
                .cells_for_tasks(run, &[task_id])?
                .into_iter()
                // Votes are between models, on first samples, as the judge's battles are.
                .filter(|c| c.sample == 0 && c.status == CellStatus::Ok && c.completion.is_some())
                .collect();
            if answered.len() < 2 {
                return Ok(None);
            }
            // Two distinct answers at random; the first drawn sits left, so sides are random too.
            let left = answered.swap_remove(random_below(answered.len())?);
            let right = answered.swap_remove(random_below(answered.len())?);
            Ok(Some(Pair {
                run,
                task: task.clone(),
                left,
                right,
            }))
        })
        .await?;
    let mut body = String::from("<h1>Which answer is better?</h1>\n");
    let Some(pair) = pair else {
        body.push_str(
            "<p data-testid=\"vote-empty\">Nothing to vote on: no task has two answers yet.</p>\n",
        );
        return Ok(layout("Vote", &body));
    };
    // The CSRF cookie identifies the client: its ballots are bounded, and only it can use them.
    let ballot = state.inner.ballots.issue(
        &csrf.0,
        Ballot {
            run: pair.run,
            task: pair.task.id.clone(),
            category: Some(pair.task.category.clone()),
            left: pair.left.model_id.clone(),
            right: pair.right.model_id.clone(),
        },
    )?;
    body.push_str(&prompt_html(&pair.task));
    body.push_str("<div class=\"answers pair\" data-testid=\"vote-pair\">\n");
    for (side, cell) in [("left", &pair.left), ("right", &pair.right)] {
        // No model name anywhere in the page until the vote: not in text, not in attributes.
        body.push_str(&format!(
            "<article class=\"answer-column\" data-testid=\"answer-{side}\"><h3>{title}</h3>\
             <div class=\"answer\" data-testid=\"answer\">{answer}</div></article>\n",
            title = if side == "left" { "Left" } else { "Right" },
            answer = answer_html(answer_text(cell)),
        ));
    }
    body.push_str("</div>\n");
    let voter = voter_from_cookie(&headers).unwrap_or_default();
    let run_field = query
        .run
        .map(|run| format!("<input type=\"hidden\" name=\"run\" value=\"{run}\">"))
        .unwrap_or_default();
    let buttons: String = CHOICES
        .iter()
        .map(|(value, label, testid, _)| {
            format!(
                "<button type=\"submit\" name=\"choice\" value=\"{value}\" \
                 data-testid=\"{testid}\">{label}</button> "
            )
        })
        .collect();
    body.push_str(&format!(
        "<form method=\"post\" action=\"/vote\" class=\"vote\" data-testid=\"vote-form\">\
         <input type=\"hidden\" name=\"ballot\" value=\"{ballot}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">{run_field}\n\
         <p class=\"buttons\">{buttons}</p>\n\
         <p><label>Your name (optional) <input type=\"text\" name=\"voter\" maxlength=\"{max}\" \
         value=\"{voter}\" autocomplete=\"nickname\" data-testid=\"voter-name\"></label></p>\n\
         </form>\n\
         <p class=\"shortcuts\" data-testid=\"shortcuts\">Keys: <kbd>1</kbd> or <kbd>←</kbd> left \
         is better, <kbd>2</kbd> or <kbd>→</kbd> right is better, <kbd>3</kbd> or <kbd>=</kbd> \
         tie, <kbd>4</kbd> or <kbd>0</kbd> both bad; after voting, <kbd>n</kbd> or \
         <kbd>Enter</kbd> for the next pair. <a href=\"{skip}\" data-testid=\"vote-skip\">Skip \
         this pair</a></p>\n",
        ballot = escape(&ballot),
        csrf = escape(&csrf.0),
        max = VOTER_NAME_CHARS,
        voter = escape(&voter),
        skip = escape(&next_href(query.run)),
    ));
    Ok(layout("Vote", &body))
}

pub async fn cast_vote(
    State(state): State<ViewState>,
    Extension(csrf): Extension<CsrfToken>,
    Form(form): Form<VoteForm>,
) -> Result<Response, ViewError> {
    // The CSRF token and the choice are checked before the ballot is taken, so a forged or
    // malformed request cannot use up someone's ballot.
    verify_csrf(&csrf, &form.csrf)?;
    let Some(&(_, label, _, winner)) = CHOICES.iter().find(|c| c.0 == form.choice) else {
        return Err(ViewError::BadRequest(
            "choice must be left, right, tie or bothbad".into(),
        ));
    };
    let ballot = state
        .inner
        .ballots
        .take(&csrf.0, &form.ballot)
        .ok_or_else(|| {
            ViewError::Conflict(
                "this ballot was already used or has expired; vote on a new pair".into(),
            )
        })?;
    let voter: Option<String> = form
        .voter
        .as_deref()
        .map(|v| v.trim().chars().take(VOTER_NAME_CHARS).collect::<String>())
        .filter(|v| !v.is_empty());
    let vote = VoteRecord {
        run_id: Some(ballot.run),
        task_id: Some(ballot.task.clone()),
        category: ballot.category.clone(),
        model_a: ballot.left.clone(),
        model_b: ballot.right.clone(),
        winner,
        source: versus_core::VoteSource::Human,
        voter: voter.clone(),
        judge: None,
    };
    let (task, cells) = state
        .blocking({
            let ballot = ballot.clone();
            move |store, state| {
                store.add_votes(&[vote])?;
                let header = store.run_header(ballot.run)?;
                let plan = state.plan(store, ballot.run, &header.plan_fingerprint)?;
                let task = plan
                    .suite
                    .tasks
                    .iter()
                    .find(|t| t.id == ballot.task)
                    .cloned();
                let cells =
                    store.cells_for_tasks(ballot.run, std::slice::from_ref(&ballot.task))?;
                Ok((task, cells))
            }
        })
        .await?;
    let page = reveal_page(&ballot, label, winner, task.as_ref(), &cells, form.run);
    let voter_cookie = match &voter {
        Some(name) => strict_cookie(
            VOTER_COOKIE,
            &base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name),
            Some(VOTER_COOKIE_SECONDS),
        ),
        None => strict_cookie(VOTER_COOKIE, "", Some(0)),
    };
    Ok(([(header::SET_COOKIE, voter_cookie)], page).into_response())
}

/// After the vote: the names, the answers under them, and the way to the next pair.
fn reveal_page(
    ballot: &Ballot,
    label: &str,
    winner: Winner,
    task: Option<&Task>,
    cells: &[CellRecord],
    run_filter: Option<RunId>,
) -> Html<String> {
    let mut body = format!(
        "<h1>Thanks — vote recorded</h1>\n<p class=\"result\" data-testid=\"vote-result\" \
         data-winner=\"{winner}\">You voted: <strong>{label}</strong>. Left was \
         <strong data-testid=\"reveal-left\">{left}</strong>, right was \
         <strong data-testid=\"reveal-right\">{right}</strong> (task \
         <a href=\"{href}\">{task}</a> of run {run}).</p>\n\
         <p><a href=\"{next}\" class=\"button\" data-testid=\"vote-next\">Next pair</a> · \
         <a href=\"/ratings\" data-testid=\"vote-ratings\">Ratings</a></p>\n",
        winner = escape(winner.as_str()),
        left = escape(&ballot.left),
        right = escape(&ballot.right),
        href = escape(&task_href(ballot.run, &ballot.task)),
        task = escape(&ballot.task),
        run = ballot.run,
        next = escape(&next_href(run_filter)),
    );
    if let Some(task) = task {
        body.push_str(&prompt_html(task));
    }
    body.push_str("<div class=\"answers pair\">\n");
    for (side, model) in [("left", &ballot.left), ("right", &ballot.right)] {
        let text = cells
            .iter()
            .find(|c| &c.model_id == model && c.sample == 0)
            .map(answer_text)
            .unwrap_or_default();
        body.push_str(&format!(
            "<article class=\"answer-column\" data-testid=\"answer-{side}\" data-model=\"{m}\">\
             <h3>{m}</h3><div class=\"answer\" data-testid=\"answer\">{answer}</div></article>\n",
            m = escape(model),
            answer = answer_html(text),
        ));
    }
    body.push_str("</div>\n");
    layout("Vote recorded", &body)
}

fn answer_text(cell: &CellRecord) -> &str {
    cell.completion
        .as_ref()
        .map_or("", |c| c.completion.text.as_str())
}

fn prompt_html(task: &Task) -> String {
    let messages: String = task
        .messages
        .iter()
        .map(|m| {
            format!(
                "<div class=\"message\"><h3>{}</h3><pre>{}</pre></div>",
                escape(m.role.as_str()),
                escape(&m.text_content())
            )
        })
        .collect();
    format!("<section class=\"prompt\" data-testid=\"vote-prompt\">{messages}</section>\n")
}

fn next_href(run: Option<RunId>) -> String {
    run.map_or_else(|| "/vote".to_string(), |run| format!("/vote?run={run}"))
}

fn voter_from_cookie(headers: &HeaderMap) -> Option<String> {
    let encoded = cookie(headers, VOTER_COOKIE)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// A random index below `n` (n > 0) from the operating system's generator: the sides must not
/// be predictable, or the vote is not blind. (The modulo bias is below 2^-50 for any real `n`.)
fn random_below(n: usize) -> Result<usize, ViewError> {
    Ok((random_u64()? % n.max(1) as u64) as usize)
}
