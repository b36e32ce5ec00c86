//! Verdicts from evidence: a winner (or a tie) per task, and the criteria table the seed article
//! ends with, every cell showing its evidence and every verdict following a rule written down
//! here (and in docs/verdicts.md). Nothing in this file calls a model: it reads scores, judge
//! verdicts, votes and measured figures.

use std::collections::BTreeMap;

use versus_core::ratings::{ratings_with_intervals, win_rates, Battle, Rating};
use versus_core::stats::{mean, median};
pub use versus_core::verdict::{CriterionRow, DecidedBy, TaskVerdict};
use versus_core::{JudgeVerdict, JudgementKind};

use super::{JudgementEntry, ModelEntry, ResultEntry, ScoreEntry, TaskEntry};

/// The evidence a category row reads for one model: share of tasks whose checks pass, judge
/// win rate, mean judge rating, mean ROUGE-L.
#[derive(Debug, Clone, Default)]
struct CategoryEvidence {
    model: String,
    checks: Option<f64>,
    wins: Option<f64>,
    rating: Option<f64>,
    rouge: Option<f64>,
}

/// Smallest differences that count: below them, evidence does not separate two models.
const CHECK_MARGIN: f64 = 1e-9;
const WIN_RATE_MARGIN: f64 = 0.1;
const RATING_MARGIN: f64 = 0.5;
const ROUGE_MARGIN: f64 = 0.02;

/// Everything the verdicts read.
pub struct Evidence<'a> {
    pub models: &'a [ModelEntry],
    pub tasks: &'a [TaskEntry],
    pub results: &'a [ResultEntry],
    pub scores: &'a [ScoreEntry],
    pub judgements: &'a [JudgementEntry],
    /// The judge's pairwise verdicts as battles (`versus_core::record::battles`).
    pub judge_battles: &'a [Battle],
}

impl Evidence<'_> {
    fn score(&self, task: &str, model: &str, scorer: &str) -> Option<f64> {
        self.scores
            .iter()
            .find(|s| s.task == task && s.model == model && s.scorer == scorer)
            .and_then(|s| s.value)
    }

    fn ok(&self, task: &str, model: &str) -> bool {
        self.results
            .iter()
            .any(|r| r.task == task && r.model == model && r.status == "ok")
    }

    /// Pairwise points of each model on one task (a win 1, a tie or inconsistent pair ½, as
    /// core's win rates count them; errors count for nobody) and how many comparisons each had.
    fn judge_points(&self, task: &str) -> (BTreeMap<String, f64>, BTreeMap<String, usize>) {
        let on_task: Vec<Battle> = self
            .judge_battles
            .iter()
            .filter(|b| b.task.as_deref() == Some(task))
            .cloned()
            .collect();
        let mut points = BTreeMap::new();
        let mut compared = BTreeMap::new();
        for rate in win_rates(&on_task) {
            points.insert(rate.model.clone(), rate.win_rate * rate.battles as f64);
            compared.insert(rate.model, rate.battles);
        }
        (points, compared)
    }

    fn mean_rating(&self, task: &str, model: &str) -> Option<f64> {
        let ratings: Vec<f64> = self
            .judgements
            .iter()
            .filter(|j| j.task == task && j.kind == JudgementKind::Single && j.model_a == model)
            .filter_map(|j| j.rating)
            .collect();
        mean(&ratings)
    }
}

/// The model whose value leads all others by at least `margin`, if one does.
fn leader(values: &[(String, f64)], margin: f64) -> Option<String> {
    let mut sorted: Vec<&(String, f64)> = values.iter().collect();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    match sorted.as_slice() {
        [first] => Some(first.0.clone()),
        [first, second, ..] if first.1 - second.1 >= margin => Some(first.0.clone()),
        _ => None,
    }
}

fn percent(value: f64) -> String {
    format!("{:.0}%", value * 100.0)
}

/// Per-task verdicts. The rule, in order: a model whose answer alone succeeded wins; otherwise
/// the weighted check score decides when it differs; then the judge's pairwise points (a lead of
/// at least 10% of the comparisons); then the judge's single ratings (a lead of at least 0.5);
/// then ROUGE-L against the reference (a lead of at least 0.02); otherwise a tie.
pub fn task_verdicts(evidence: &Evidence<'_>) -> Vec<TaskVerdict> {
    evidence
        .tasks
        .iter()
        .map(|task| task_verdict(evidence, &task.id))
        .collect()
}

fn task_verdict(evidence: &Evidence<'_>, task: &str) -> TaskVerdict {
    let answered: Vec<&str> = evidence
        .models
        .iter()
        .map(|m| m.id.as_str())
        .filter(|m| evidence.ok(task, m))
        .collect();
    let verdict = |winner: Option<String>, decided_by: DecidedBy, why: Vec<String>| TaskVerdict {
        task: task.to_string(),
        winner,
        decided_by,
        why,
    };
    match answered.as_slice() {
        [] => return verdict(None, DecidedBy::Nothing, vec!["no model answered".into()]),
        [only] if evidence.models.len() > 1 => {
            return verdict(
                Some(only.to_string()),
                DecidedBy::OnlyAnswer,
                vec![format!(
                    "only {only} answered; the others failed or could not take the task"
                )],
            )
        }
        _ => {}
    }
    let mut why = Vec::new();

    let checks: Vec<(String, f64)> = answered
        .iter()
        .filter_map(|m| {
            evidence
                .score(task, m, "checks")
                .map(|v| (m.to_string(), v))
        })
        .collect();
    if checks.len() == answered.len() && !checks.is_empty() {
        why.push(format!(
            "checks: {}",
            checks
                .iter()
                .map(|(m, v)| format!("{m} {}", percent(*v)))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if let Some(winner) = leader(&checks, CHECK_MARGIN) {
            return verdict(Some(winner), DecidedBy::Checks, why);
        }
    }

    let (points, compared) = evidence.judge_points(task);
    if !points.is_empty() {
        let rates: Vec<(String, f64)> = answered
            .iter()
            .filter_map(|m| {
                let n = *compared.get(*m)? as f64;
                Some((m.to_string(), points.get(*m).copied().unwrap_or(0.0) / n))
            })
            .collect();
        let inconsistent = evidence
            .judgements
            .iter()
            .filter(|j| {
                j.task == task
                    && j.kind == JudgementKind::Pairwise
                    && j.verdict == JudgeVerdict::Inconsistent
            })
            .count();
        why.push(format!(
            "judge (pairwise, both orders): {}{}",
            rates
                .iter()
                .map(|(m, r)| format!("{m} {}", percent(*r)))
                .collect::<Vec<_>>()
                .join(", "),
            if inconsistent > 0 {
                format!("; {inconsistent} inconsistent pair(s) counted as ties")
            } else {
                String::new()
            }
        ));
        if let Some(winner) = leader(&rates, WIN_RATE_MARGIN) {
            return verdict(Some(winner), DecidedBy::Judge, why);
        }
    }

    let ratings: Vec<(String, f64)> = answered
        .iter()
        .filter_map(|m| evidence.mean_rating(task, m).map(|r| (m.to_string(), r)))
        .collect();
    if ratings.len() == answered.len() && !ratings.is_empty() {
        why.push(format!(
            "judge ratings: {}",
            ratings
                .iter()
                .map(|(m, r)| format!("{m} {r:.1}/10"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if let Some(winner) = leader(&ratings, RATING_MARGIN) {
            return verdict(Some(winner), DecidedBy::Rating, why);
        }
    }

    let rouge: Vec<(String, f64)> = answered
        .iter()
        .filter_map(|m| {
            evidence
                .score(task, m, "rougeL")
                .map(|v| (m.to_string(), v))
        })
        .collect();
    if rouge.len() == answered.len() && !rouge.is_empty() {
        why.push(format!(
            "ROUGE-L F vs reference: {}",
            rouge
                .iter()
                .map(|(m, v)| format!("{m} {v:.3}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        if let Some(winner) = leader(&rouge, ROUGE_MARGIN) {
            return verdict(Some(winner), DecidedBy::Reference, why);
        }
    }
    if why.is_empty() {
        why.push("no checks, judge or reference for this task".into());
    } else {
        why.push("no evidence separates the answers".into());
    }
    verdict(None, DecidedBy::Nothing, why)
}

/// The criteria table: one row per criterion, a cell of evidence per model, a verdict by rule.
pub fn criteria(evidence: &Evidence<'_>, ratings: &[Rating]) -> Vec<CriterionRow> {
    let mut rows = Vec::new();
    for (criterion, category) in [
        ("Reasoning", "reasoning"),
        ("Coding", "coding"),
        ("Creativity", "creative"),
        ("Summarization", "summarization"),
    ] {
        rows.push(category_row(evidence, criterion, category));
    }
    rows.push(tone_row(evidence));
    rows.push(verbosity_row(evidence));
    rows.push(speed_row(evidence));
    rows.push(cost_row(evidence));
    rows.push(metadata_row(
        evidence,
        "Context length",
        |m| m.metadata.context_length.map(|c| c as f64),
        |v| format!("{v:.0} tokens"),
        true,
        "longer context",
    ));
    rows.push(size_row(evidence));
    rows.push(multimodal_row(evidence));
    rows.push(overall_row(evidence, ratings));
    rows
}

fn model_ids<'a>(evidence: &'a Evidence<'_>) -> Vec<&'a str> {
    evidence.models.iter().map(|m| m.id.as_str()).collect()
}

fn category_row(evidence: &Evidence<'_>, criterion: &str, category: &str) -> CriterionRow {
    let rule = "checks passed, then judge win rate (lead >= 10 points), then judge rating (lead >= 0.5), then ROUGE-L (lead >= 0.02); otherwise a tie".to_string();
    let tasks: Vec<&TaskEntry> = evidence
        .tasks
        .iter()
        .filter(|t| t.category == category)
        .collect();
    let models = model_ids(evidence);
    if tasks.is_empty() {
        return CriterionRow {
            criterion: criterion.into(),
            cells: models.iter().map(|_| "–".to_string()).collect(),
            verdict: format!("no {category} tasks in this run"),
            rule,
        };
    }
    let mut per_model: Vec<CategoryEvidence> = Vec::new();
    for model in &models {
        let checks: Vec<f64> = tasks
            .iter()
            .filter_map(|t| {
                evidence
                    .scores
                    .iter()
                    .find(|s| s.task == t.id && s.model == *model && s.scorer == "checks")
                    .and_then(|s| s.passed)
                    .map(|p| if p { 1.0 } else { 0.0 })
            })
            .collect();
        let mut points = 0.0;
        let mut compared = 0usize;
        for task in &tasks {
            let (p, c) = evidence.judge_points(&task.id);
            points += p.get(*model).copied().unwrap_or(0.0);
            compared += c.get(*model).copied().unwrap_or(0);
        }
        let ratings: Vec<f64> = tasks
            .iter()
            .filter_map(|t| evidence.mean_rating(&t.id, model))
            .collect();
        let rouge: Vec<f64> = tasks
            .iter()
            .filter_map(|t| evidence.score(&t.id, model, "rougeL"))
            .collect();
        per_model.push(CategoryEvidence {
            model: model.to_string(),
            checks: mean(&checks),
            wins: (compared > 0).then(|| points / compared as f64),
            rating: mean(&ratings),
            rouge: mean(&rouge),
        });
    }
    let cells = per_model
        .iter()
        .map(|row| {
            let mut parts = Vec::new();
            if let Some(c) = &row.checks {
                parts.push(format!("checks {}", percent(*c)));
            }
            if let Some(w) = &row.wins {
                parts.push(format!("judge wins {}", percent(*w)));
            }
            if let Some(r) = &row.rating {
                parts.push(format!("rated {r:.1}/10"));
            }
            if let Some(r) = &row.rouge {
                parts.push(format!("ROUGE-L {r:.3}"));
            }
            if parts.is_empty() {
                "no evidence".to_string()
            } else {
                parts.join(", ")
            }
        })
        .collect();
    let pick = |read: fn(&CategoryEvidence) -> Option<f64>, margin: f64| {
        let values: Option<Vec<(String, f64)>> = per_model
            .iter()
            .map(|row| read(row).map(|v| (row.model.clone(), v)))
            .collect();
        values.and_then(|v| leader(&v, margin))
    };
    let verdict = pick(|r| r.checks, CHECK_MARGIN)
        .map(|m| format!("{m}: more {category} checks passed"))
        .or_else(|| {
            pick(|r| r.wins, WIN_RATE_MARGIN)
                .map(|m| format!("{m}: wins more often with the judge"))
        })
        .or_else(|| {
            pick(|r| r.rating, RATING_MARGIN).map(|m| format!("{m}: rated higher by the judge"))
        })
        .or_else(|| {
            pick(|r| r.rouge, ROUGE_MARGIN).map(|m| format!("{m}: closer to the reference"))
        })
        .unwrap_or_else(|| "tie: no evidence separates the models".to_string());
    CriterionRow {
        criterion: criterion.into(),
        cells,
        verdict,
        rule,
    }
}

/// Mean of a score over a model's answers.
fn mean_score(evidence: &Evidence<'_>, model: &str, scorer: &str) -> Option<f64> {
    let values: Vec<f64> = evidence
        .scores
        .iter()
        .filter(|s| s.model == model && s.scorer == scorer)
        .filter_map(|s| s.value)
        .collect();
    mean(&values)
}

fn tone_row(evidence: &Evidence<'_>) -> CriterionRow {
    let models = model_ids(evidence);
    let mut readability = Vec::new();
    let cells = models
        .iter()
        .map(|m| {
            let ease = mean_score(evidence, m, "style.flesch_reading_ease");
            let grade = mean_score(evidence, m, "style.flesch_kincaid_grade");
            let words = mean_score(evidence, m, "style.words").unwrap_or(0.0);
            let informal = mean_score(evidence, m, "style.contractions").unwrap_or(0.0)
                + mean_score(evidence, m, "style.second_person").unwrap_or(0.0);
            let exclamations = mean_score(evidence, m, "style.exclamations").unwrap_or(0.0);
            if let Some(ease) = ease {
                readability.push((m.to_string(), ease));
            }
            match (ease, grade) {
                (Some(ease), Some(grade)) => format!(
                    "Flesch ease {ease:.0}, grade {grade:.1}; {:.1} contractions/second person per 100 words; {exclamations:.1} exclamations",
                    if words > 0.0 { informal * 100.0 / words } else { 0.0 }
                ),
                _ => "no answers".into(),
            }
        })
        .collect();
    let verdict = match leader(&readability, 5.0) {
        Some(m) => format!("{m}: easier to read (higher Flesch reading ease)"),
        None if readability.is_empty() => "no answers to compare".into(),
        None => "similar readability".into(),
    };
    CriterionRow {
        criterion: "Tone and style".into(),
        cells,
        verdict,
        rule: "Flesch reading ease (textstat's formula), mean over answers; a lead of 5 points or more decides".into(),
    }
}

fn verbosity_row(evidence: &Evidence<'_>) -> CriterionRow {
    let models = model_ids(evidence);
    let mut lengths = Vec::new();
    let cells = models
        .iter()
        .map(|m| {
            let words = mean_score(evidence, m, "style.words");
            let tokens = mean_score(evidence, m, "length.tokens");
            if let Some(w) = words {
                lengths.push((m.to_string(), w));
            }
            match (words, tokens) {
                (Some(w), Some(t)) => format!("{w:.0} words, {t:.0} tokens per answer"),
                (Some(w), None) => format!("{w:.0} words per answer"),
                _ => "no answers".into(),
            }
        })
        .collect();
    let mut sorted = lengths.clone();
    sorted.sort_by(|a, b| a.1.total_cmp(&b.1));
    let verdict = match sorted.as_slice() {
        [shortest, next, ..] if next.1 >= shortest.1 * 1.2 => {
            format!(
                "{}: more concise ({:.0} vs {:.0} words)",
                shortest.0, shortest.1, next.1
            )
        }
        [_, _, ..] => "similar length (within 20%)".into(),
        _ => "nothing to compare".into(),
    };
    CriterionRow {
        criterion: "Verbosity".into(),
        cells,
        verdict,
        rule: "mean words per answer; the shortest is more concise when the next is at least 20% longer".into(),
    }
}

fn speed_row(evidence: &Evidence<'_>) -> CriterionRow {
    let models = model_ids(evidence);
    let mut ttfts = Vec::new();
    let mut rates = Vec::new();
    let cells = models
        .iter()
        .map(|m| {
            let mine: Vec<&ResultEntry> = evidence
                .results
                .iter()
                .filter(|r| r.model == *m && r.status == "ok" && !r.cached)
                .collect();
            let ttft = median(&mine.iter().filter_map(|r| r.ttft_ms).collect::<Vec<_>>());
            let rate = median(
                &mine
                    .iter()
                    .filter_map(|r| r.tokens_per_second)
                    .collect::<Vec<_>>(),
            );
            if let Some(t) = ttft {
                // Lower is better: negate so the leader is the fastest.
                ttfts.push((m.to_string(), -t));
            }
            if let Some(r) = rate {
                rates.push((m.to_string(), r));
            }
            match (ttft, rate) {
                (Some(t), Some(r)) => {
                    format!("first token {:.2} s, {r:.1} tokens/s (medians)", t / 1000.0)
                }
                (None, Some(r)) => format!("{r:.1} tokens/s (median)"),
                (Some(t), None) => format!("first token {:.2} s (median)", t / 1000.0),
                _ => "not measured in this run".into(),
            }
        })
        .collect();
    let faster = |values: &[(String, f64)]| -> Option<String> {
        let mut sorted: Vec<&(String, f64)> = values.iter().collect();
        sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
        match sorted.as_slice() {
            [a, b, ..] if (a.1 - b.1).abs() >= 0.1 * b.1.abs().max(a.1.abs()) => Some(a.0.clone()),
            _ => None,
        }
    };
    let verdict = match (faster(&ttfts), faster(&rates)) {
        (Some(a), Some(b)) if a == b => format!("{a}: faster first token and higher throughput"),
        (Some(a), Some(b)) => format!("{a}: faster first token; {b}: higher throughput"),
        (Some(a), None) => format!("{a}: faster first token; similar throughput"),
        (None, Some(b)) => format!("{b}: higher throughput; similar first token"),
        (None, None) => "similar speed (within 10%)".into(),
    };
    CriterionRow {
        criterion: "Speed".into(),
        cells,
        verdict,
        rule: "median time to first token and median tokens/s over answers made in this run (cached answers excluded); a 10% difference decides".into(),
    }
}

fn cost_row(evidence: &Evidence<'_>) -> CriterionRow {
    let models = model_ids(evidence);
    let mut costs = Vec::new();
    let cells = models
        .iter()
        .zip(evidence.models)
        .map(|(m, entry)| {
            let values: Vec<f64> = evidence
                .results
                .iter()
                .filter(|r| r.model == *m)
                .filter_map(|r| r.cost_usd)
                .collect();
            match entry.metadata.price {
                Some(price) if !values.is_empty() => {
                    let total: f64 = values.iter().sum();
                    costs.push((m.to_string(), -total));
                    format!(
                        "${total:.6} for {} answers (${}/${} per 1M tokens)",
                        values.len(),
                        price.input,
                        price.output
                    )
                }
                Some(_) => "price known, no token counts".into(),
                None if entry.spec.starts_with("hf:")
                    || entry.spec.starts_with("local:")
                    || entry.spec.starts_with("gguf:") =>
                {
                    costs.push((m.to_string(), 0.0));
                    "local: no per-token price".into()
                }
                None => "no price given".into(),
            }
        })
        .collect();
    let verdict = if costs.len() == models.len() && models.len() > 1 {
        match leader(&costs, 1e-9) {
            Some(m) => format!("{m}: cheaper"),
            None => "same cost".into(),
        }
    } else {
        "incomplete: not every model has a price".into()
    };
    CriterionRow {
        criterion: "Cost".into(),
        cells,
        verdict,
        rule: "total cost of the run's answers from each model's price and reported tokens (local models cost nothing per token); the cheapest wins".into(),
    }
}

fn metadata_row(
    evidence: &Evidence<'_>,
    criterion: &str,
    read: fn(&ModelEntry) -> Option<f64>,
    show: fn(f64) -> String,
    higher_wins: bool,
    what: &str,
) -> CriterionRow {
    let mut values = Vec::new();
    let cells = evidence
        .models
        .iter()
        .map(|m| match read(m) {
            Some(v) => {
                values.push((m.id.clone(), if higher_wins { v } else { -v }));
                show(v)
            }
            None => "unknown".into(),
        })
        .collect();
    let verdict = if values.len() == evidence.models.len() && values.len() > 1 {
        leader(&values, 1e-9)
            .map(|m| format!("{m}: {what}"))
            .unwrap_or_else(|| "equal".into())
    } else {
        "unknown for some models".into()
    };
    CriterionRow {
        criterion: criterion.into(),
        cells,
        verdict,
        rule: format!(
            "from each model's metadata (read from local models themselves); the {what} wins"
        ),
    }
}

fn size_row(evidence: &Evidence<'_>) -> CriterionRow {
    let cells = evidence
        .models
        .iter()
        .map(|m| {
            let parameters = m.metadata.parameters.as_deref().unwrap_or("size unknown");
            match &m.metadata.architecture {
                Some(arch) => format!("{parameters}, {arch}"),
                None => parameters.to_string(),
            }
        })
        .collect();
    let known: Vec<(String, f64)> = evidence
        .models
        .iter()
        .filter_map(|m| {
            let text = m.metadata.parameters.as_deref()?;
            parse_parameters(text).map(|v| (m.id.clone(), -v))
        })
        .collect();
    let verdict = if known.len() == evidence.models.len() && known.len() > 1 {
        leader(&known, 1e-9)
            .map(|m| format!("{m}: smaller"))
            .unwrap_or_else(|| "same size".into())
    } else {
        "size unknown for some models (hosted models rarely publish it)".into()
    };
    CriterionRow {
        criterion: "Size and architecture".into(),
        cells,
        verdict,
        rule: "parameter counts from metadata; the smaller model is named (informational: smaller is cheaper to run)".into(),
    }
}

/// "14.7B" -> 1.47e10.
fn parse_parameters(text: &str) -> Option<f64> {
    let text = text.trim();
    let (number, scale) = match text.chars().last()? {
        'B' | 'b' => (&text[..text.len() - 1], 1e9),
        'M' | 'm' => (&text[..text.len() - 1], 1e6),
        'K' | 'k' => (&text[..text.len() - 1], 1e3),
        _ => (text, 1.0),
    };
    number.trim().parse::<f64>().ok().map(|n| n * scale)
}

fn multimodal_row(evidence: &Evidence<'_>) -> CriterionRow {
    let cells = evidence
        .models
        .iter()
        .map(|m| {
            if m.metadata.modalities.is_empty() {
                "text (assumed)".to_string()
            } else if m.metadata.accepts_images() {
                "text and images".to_string()
            } else {
                "text only".to_string()
            }
        })
        .collect();
    let readers: Vec<&str> = evidence
        .models
        .iter()
        .filter(|m| m.metadata.accepts_images())
        .map(|m| m.id.as_str())
        .collect();
    let verdict = match readers.as_slice() {
        [] => "no model reads images".into(),
        all if all.len() == evidence.models.len() => "all read images".into(),
        some => format!("{} reads images", some.join(", ")),
    };
    CriterionRow {
        criterion: "Multimodal support".into(),
        cells,
        verdict,
        rule: "declared modalities (suite or catalogue); a model that reads images leads".into(),
    }
}

fn overall_row(evidence: &Evidence<'_>, ratings: &[Rating]) -> CriterionRow {
    let cells = evidence
        .models
        .iter()
        .map(|m| match ratings.iter().find(|r| r.model == m.id) {
            Some(r) => format!(
                "{:.0} (95% CI {:.0}–{:.0}), rank {}, {} battles",
                r.rating, r.lower, r.upper, r.rank, r.battles
            ),
            None => "no battles".into(),
        })
        .collect();
    let verdict = if ratings.len() < 2 {
        "no pairwise evidence: configure a judge or cast votes".to_string()
    } else {
        let mut sorted: Vec<&Rating> = ratings.iter().collect();
        sorted.sort_by(|a, b| b.rating.total_cmp(&a.rating));
        let (top, next) = (sorted[0], sorted[1]);
        if top.lower > next.upper {
            format!(
                "{}: rated highest; its interval does not overlap the next",
                top.model
            )
        } else {
            format!("tie: {} leads but the 95% intervals overlap", top.model)
        }
    };
    CriterionRow {
        criterion: "Overall".into(),
        cells,
        verdict,
        rule: "Bradley-Terry rating (Chatbot Arena's method) from the judge's pairwise verdicts and votes, with bootstrap 95% intervals; a winner only when intervals do not overlap".into(),
    }
}

/// Ratings for a report: bootstrap rounds kept moderate so reports stay fast; `versus ratings`
/// runs the full 1000.
pub fn report_ratings(battles: &[Battle]) -> Vec<Rating> {
    if battles.is_empty() {
        return Vec::new();
    }
    ratings_with_intervals(battles, 200, 42)
}
