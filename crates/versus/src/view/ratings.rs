//! `/ratings`: Bradley-Terry ratings with 95% intervals from every battle in the store (the
//! judge's pairwise verdicts of every run, and the votes), computed on each request exactly as
//! `versus ratings` computes them (same battles, rounds and seed), so a vote shows at once.

use std::collections::BTreeSet;

use axum::extract::{Query, State};
use axum::response::Html;
use serde::Deserialize;
use versus_core::ratings::{pairwise_results, ratings_with_intervals, DEFAULT_BOOTSTRAP_ROUNDS};

use super::error::ViewError;
use super::page::{escape, layout};
use super::ViewState;

/// The seed `versus ratings` uses by default: the same battles give the same intervals.
const BOOTSTRAP_SEED: u64 = 42;

#[derive(Debug, Deserialize)]
pub struct RatingsQuery {
    category: Option<String>,
}

pub async fn ratings_page(
    State(state): State<ViewState>,
    Query(query): Query<RatingsQuery>,
) -> Result<Html<String>, ViewError> {
    let category = query.category.filter(|c| !c.is_empty());
    state
        .blocking(move |store, _| {
            let all = store.battles(None, None)?;
            let categories: BTreeSet<String> =
                all.iter().filter_map(|b| b.category.clone()).collect();
            let battles: Vec<_> = match &category {
                Some(c) => all
                    .into_iter()
                    .filter(|b| b.category.as_deref() == Some(c.as_str()))
                    .collect(),
                None => all,
            };
            let mut body = String::from("<h1>Ratings</h1>\n");
            body.push_str(&category_form(&categories, category.as_deref()));
            if battles.is_empty() {
                body.push_str(
                    "<p data-testid=\"ratings-empty\">No battles yet: <a href=\"/vote\">vote</a>, \
                     score a run with a judge, or <code>versus votes import</code>.</p>\n",
                );
                return Ok(layout("Ratings", &body));
            }
            let ratings =
                ratings_with_intervals(&battles, DEFAULT_BOOTSTRAP_ROUNDS, BOOTSTRAP_SEED);
            let votes = battles.iter().filter(|b| b.judge.is_none()).count();
            body.push_str(&format!(
                "<p data-testid=\"ratings-battles\" data-count=\"{total}\">{total} battles \
                 ({judged} from judges, {votes} votes); Bradley-Terry as Chatbot Arena computes it \
                 (scale 400, base 10, initial 1000), {rounds} bootstrap rounds, seed {seed}.</p>\n\
                 <table data-testid=\"ratings-table\">\n<thead><tr><th>Rank</th><th>Model</th>\
                 <th>Rating</th><th>95% interval</th><th>Battles</th><th>Win rate</th></tr>\
                 </thead>\n<tbody>\n",
                total = battles.len(),
                judged = battles.len() - votes,
                rounds = DEFAULT_BOOTSTRAP_ROUNDS,
                seed = BOOTSTRAP_SEED,
            ));
            for r in &ratings {
                body.push_str(&format!(
                    "<tr data-testid=\"rating-row\" data-model=\"{m}\" data-rank=\"{rank}\" \
                     data-battles=\"{battles}\"><td>{rank}</td><td>{m}</td><td>{rating:.1}</td>\
                     <td>{lower:.1}–{upper:.1}</td><td>{battles}</td><td>{win:.1}%</td></tr>\n",
                    m = escape(&r.model),
                    rank = r.rank,
                    rating = r.rating,
                    lower = r.lower,
                    upper = r.upper,
                    battles = r.battles,
                    win = r.win_rate * 100.0,
                ));
            }
            body.push_str(
                "</tbody>\n</table>\n<h2>Wins, ties and losses per pair</h2>\n\
                 <table data-testid=\"pairs-table\">\n<thead><tr><th>Model A</th><th>Model B</th>\
                 <th>A wins</th><th>Ties</th><th>B wins</th></tr></thead>\n<tbody>\n",
            );
            for pair in pairwise_results(&battles) {
                body.push_str(&format!(
                    "<tr data-testid=\"pair-row\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
                     <td>{}</td></tr>\n",
                    escape(&pair.a),
                    escape(&pair.b),
                    pair.wins_a,
                    pair.ties,
                    pair.wins_b
                ));
            }
            body.push_str("</tbody>\n</table>\n");
            Ok(layout("Ratings", &body))
        })
        .await
}

fn category_form(categories: &BTreeSet<String>, selected: Option<&str>) -> String {
    if categories.is_empty() {
        return String::new();
    }
    let mut options = String::from("<option value=\"\">all</option>");
    for category in categories {
        options.push_str(&format!(
            "<option value=\"{c}\"{s}>{c}</option>",
            c = escape(category),
            s = if selected == Some(category.as_str()) {
                " selected"
            } else {
                ""
            }
        ));
    }
    format!(
        "<form method=\"get\" action=\"/ratings\" class=\"filter\" \
         data-testid=\"ratings-filter\"><label>Category <select name=\"category\">{options}\
         </select></label> <button type=\"submit\">Show</button></form>\n"
    )
}
