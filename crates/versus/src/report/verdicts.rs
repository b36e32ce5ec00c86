//! Verdicts from evidence: a winner (or a tie) per task, and the criteria table the seed article
//! ends with, every cell showing its evidence and every verdict following a rule written down
//! here (and in docs/verdicts.md). Nothing in this file calls a model: it reads scores, judge
//! verdicts, votes and measured figures.

use std::collections::BTreeMap;

use versus_core::ratings::{ratings_with_intervals, win_rates, Battle, Rating};
use versus_core::significance::PairedTest;
use versus_core::stats::{mean, median};
use versus_core::verdict::{
    adjust_all, compare, describe, p_text, significant_winner, undecided, Comparison, PairSample,
};
pub use versus_core::verdict::{CriterionRow, DecidedBy, TaskVerdict};
use versus_core::{JudgeVerdict, JudgementKind};

use super::{JudgementEntry, ModelEntry, ResultEntry, ScoreEntry, TaskEntry};

/// The evidence a category row reads for one model: share of tasks whose checks pass, judge
/// win rate, mean judge rating, mean ROUGE-L.
#[derive(Debug, Clone, Default)]
struct CategoryEvidence {
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

/// What every per-task winner says: one task settles that task, not which model is better.
pub const ONE_TASK: &str = "one task decides nothing about the models on its own: the criteria table tests the difference over every task";

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
    /// A task's value of one score for one model: the mean over its samples (the one value when
    /// it was asked once), so that a task stays one unit of the paired tests however many
    /// samples it has.
    fn score(&self, task: &str, model: &str, scorer: &str) -> Option<f64> {
        let values: Vec<f64> = self
            .scores
            .iter()
            .filter(|s| s.task == task && s.model == model && s.scorer == scorer)
            .filter_map(|s| s.value)
            .collect();
        mean(&values)
    }

    /// The share of a task's samples whose checks passed (1 or 0 when it was asked once).
    fn pass_rate(&self, task: &str, model: &str) -> Option<f64> {
        let passed: Vec<f64> = self
            .scores
            .iter()
            .filter(|s| s.task == task && s.model == model && s.scorer == "checks")
            .filter_map(|s| s.passed)
            .map(|p| if p { 1.0 } else { 0.0 })
            .collect();
        mean(&passed)
    }

    /// Whether any of these tasks has more than one scored sample for some model: then a task's
    /// pass/fail evidence is a pass rate, not a 0 or 1, and McNemar's test does not apply.
    fn repeated_checks(&self, tasks: &[&TaskEntry]) -> bool {
        let ids: std::collections::HashSet<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
        self.scores
            .iter()
            .any(|s| s.sample > 0 && s.scorer == "checks" && ids.contains(s.task.as_str()))
    }

    /// The mean of one figure over a task's answers by one model (`ok`, made in this run when
    /// `fresh_only`), or `None` when none has it.
    fn result_mean(
        &self,
        task: &str,
        model: &str,
        fresh_only: bool,
        figure: fn(&ResultEntry) -> Option<f64>,
    ) -> Option<f64> {
        let values: Vec<f64> = self
            .results
            .iter()
            .filter(|r| r.task == task && r.model == model && r.status == "ok")
            .filter(|r| !(fresh_only && r.cached))
            .filter_map(figure)
            .collect();
        mean(&values)
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
    let verdict = |winner: Option<String>, decided_by: DecidedBy, mut why: Vec<String>| {
        if winner.is_some() && decided_by != DecidedBy::OnlyAnswer {
            why.push(ONE_TASK.to_string());
        }
        TaskVerdict {
            task: task.to_string(),
            winner,
            decided_by,
            why,
        }
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

/// The criteria table: one row per criterion, a cell of evidence per model, and a verdict.
/// Measured rows test every pair of models over the tasks both answered (paired tests, see
/// docs/verdicts.md), with p-values Holm-adjusted across the whole table; a row names a winner
/// only when that model beats every other with an adjusted p below `alpha`. Informational rows
/// (context length, size, modalities) follow a stated rule and say so.
pub fn criteria(
    evidence: &Evidence<'_>,
    ratings: &[Rating],
    battles: &[Battle],
    alpha: f64,
) -> Vec<CriterionRow> {
    let mut rows: Vec<(CriterionRow, Option<Decision>)> = Vec::new();
    for (criterion, category) in [
        ("Reasoning", "reasoning"),
        ("Coding", "coding"),
        ("Creativity", "creative"),
        ("Summarization", "summarization"),
    ] {
        rows.push(category_row(evidence, criterion, category, alpha));
    }
    rows.push(tone_row(evidence, alpha));
    rows.push(verbosity_row(evidence, alpha));
    rows.push(speed_row(evidence, alpha));
    rows.push(cost_row(evidence, alpha));
    rows.push((
        metadata_row(
            evidence,
            "Context length",
            |m| m.metadata.context_length.map(|c| c as f64),
            |v| format!("{v:.0} tokens"),
            true,
            "longer context",
        ),
        None,
    ));
    rows.push((size_row(evidence), None));
    rows.push((multimodal_row(evidence), None));
    rows.push(overall_row(evidence, ratings, battles, alpha));
    adjust_all(
        rows.iter_mut()
            .flat_map(|(row, _)| row.comparisons.iter_mut()),
    );
    rows.into_iter()
        .map(|(mut row, decision)| {
            if let Some(decision) = decision {
                decide(&mut row, &decision, alpha);
            }
            row
        })
        .collect()
}

/// How a measured row turns its adjusted comparisons into a verdict.
struct Decision {
    higher_is_better: bool,
    /// The verdict for a winner, e.g. "{m}: more coding checks passed".
    winner: fn(&str) -> String,
}

/// The fields of a row that follows a rule rather than a test.
fn informational() -> CriterionRow {
    CriterionRow {
        criterion: String::new(),
        cells: Vec::new(),
        verdict: String::new(),
        rule: String::new(),
        measure: None,
        comparisons: Vec::new(),
        how_sure: "informational: a stated rule, not a test".into(),
    }
}

/// A measured row before its verdict: the verdict waits for the table-wide adjustment.
fn measured(
    criterion: &str,
    cells: Vec<String>,
    rule: String,
    measure: &str,
    comparisons: Vec<Comparison>,
) -> CriterionRow {
    CriterionRow {
        criterion: criterion.into(),
        cells,
        verdict: String::new(),
        rule,
        measure: Some(measure.into()),
        comparisons,
        how_sure: String::new(),
    }
}

/// A row with nothing to test, saying why.
fn untestable(criterion: &str, cells: Vec<String>, rule: String, why: &str) -> CriterionRow {
    CriterionRow {
        criterion: criterion.into(),
        cells,
        verdict: why.into(),
        rule,
        measure: None,
        comparisons: Vec::new(),
        how_sure: "nothing to test".into(),
    }
}

fn decide(row: &mut CriterionRow, decision: &Decision, alpha: f64) {
    if row.comparisons.is_empty() {
        if row.verdict.is_empty() {
            row.verdict = "nothing to compare: fewer than two models answered".into();
            row.how_sure = "nothing to test".into();
        }
        return;
    }
    match significant_winner(&row.comparisons, decision.higher_is_better, alpha) {
        Some(winner) => {
            // The weakest of the winner's comparisons is what the claim rests on.
            let decisive = row
                .comparisons
                .iter()
                .filter(|c| c.model_a == winner || c.model_b == winner)
                .max_by(|a, b| a.p_adjusted.total_cmp(&b.p_adjusted))
                .expect("a winner has comparisons");
            row.how_sure = format!(
                "p = {} adjusted, n = {}",
                p_text(decisive.p_adjusted),
                decisive.n
            );
            row.verdict = format!("{}; {}", (decision.winner)(&winner), describe(decisive));
        }
        None => {
            let closest = row
                .comparisons
                .iter()
                .min_by(|a, b| a.p_adjusted.total_cmp(&b.p_adjusted))
                .expect("comparisons are not empty");
            row.how_sure = format!(
                "not significant: p = {} adjusted, n = {}",
                p_text(closest.p_adjusted),
                closest.n
            );
            row.verdict = undecided(closest);
        }
    }
}

fn model_ids<'a>(evidence: &'a Evidence<'_>) -> Vec<&'a str> {
    evidence.models.iter().map(|m| m.id.as_str()).collect()
}

/// Every pair of models, in report order.
fn model_pairs<'a>(evidence: &'a Evidence<'_>) -> Vec<(&'a str, &'a str)> {
    let models = model_ids(evidence);
    let mut pairs = Vec::new();
    for (i, a) in models.iter().enumerate() {
        for b in &models[i + 1..] {
            pairs.push((*a, *b));
        }
    }
    pairs
}

/// A task's cluster: its `group`, or the task itself.
fn cluster_of(task: &TaskEntry) -> String {
    match &task.group {
        Some(group) => format!("group:{group}"),
        None => format!("task:{}", task.id),
    }
}

/// For a pair of models, each unit's difference (first minus second) and its cluster.
type PairDifferences<'a> = dyn Fn(&str, &str) -> Vec<(f64, String)> + 'a;

/// Paired comparisons of every pair of models: `differences(a, b)` gives the pair's per-unit
/// differences (first minus second) with each unit's cluster. Seeds are fixed so a report is
/// reproducible.
fn compare_pairs(
    evidence: &Evidence<'_>,
    test: PairedTest,
    alpha: f64,
    differences: &PairDifferences<'_>,
) -> Vec<Comparison> {
    model_pairs(evidence)
        .into_iter()
        .enumerate()
        .filter_map(|(index, (a, b))| {
            let (differences, clusters) = differences(a, b).into_iter().unzip();
            let sample = PairSample {
                model_a: a.to_string(),
                model_b: b.to_string(),
                differences,
                clusters,
            };
            compare(&sample, test, alpha, SEED ^ index as u64)
        })
        .collect()
}

/// Paired comparisons on a per-task value (`None` where a model has none), over the tasks where
/// both models of a pair have one.
fn compare_values(
    evidence: &Evidence<'_>,
    tasks: &[&TaskEntry],
    test: PairedTest,
    alpha: f64,
    value: &dyn Fn(&TaskEntry, &str) -> Option<f64>,
) -> Vec<Comparison> {
    compare_pairs(evidence, test, alpha, &|a, b| {
        tasks
            .iter()
            .filter_map(|task| Some((value(task, a)? - value(task, b)?, cluster_of(task))))
            .collect()
    })
}

/// The seed of every resampling in the criteria table.
const SEED: u64 = 42;

/// Which evidence a category row tests: the first kind every model has, in this order.
#[derive(Clone, Copy, PartialEq)]
enum CategoryMeasure {
    Checks,
    Judge,
    Rating,
    Rouge,
}

fn category_row(
    evidence: &Evidence<'_>,
    criterion: &str,
    category: &str,
    alpha: f64,
) -> (CriterionRow, Option<Decision>) {
    let rule = "paired over the category's tasks, on the first evidence every model has: checks passed (McNemar's exact test; with repeated samples, the share of samples passed, sign-flip permutation test), else the judge's pairwise verdicts (sign test), else judge ratings, else ROUGE-L (sign-flip permutation tests); a winner only when it beats every other model with a Holm-adjusted p below alpha".to_string();
    let tasks: Vec<&TaskEntry> = evidence
        .tasks
        .iter()
        .filter(|t| t.category == category)
        .collect();
    let models = model_ids(evidence);
    if tasks.is_empty() {
        return (
            untestable(
                criterion,
                models.iter().map(|_| "–".to_string()).collect(),
                rule,
                &format!("no {category} tasks in this run"),
            ),
            None,
        );
    }
    let checks = |task: &TaskEntry, model: &str| evidence.pass_rate(&task.id, model);
    let repeated = evidence.repeated_checks(&tasks);
    let rating = |task: &TaskEntry, model: &str| evidence.mean_rating(&task.id, model);
    let rouge = |task: &TaskEntry, model: &str| evidence.score(&task.id, model, "rougeL");
    let mut per_model: Vec<CategoryEvidence> = Vec::new();
    for model in &models {
        let values = |read: &dyn Fn(&TaskEntry, &str) -> Option<f64>| -> Vec<f64> {
            tasks.iter().filter_map(|t| read(t, model)).collect()
        };
        let mut points = 0.0;
        let mut compared = 0usize;
        for task in &tasks {
            let (p, c) = evidence.judge_points(&task.id);
            points += p.get(*model).copied().unwrap_or(0.0);
            compared += c.get(*model).copied().unwrap_or(0);
        }
        per_model.push(CategoryEvidence {
            checks: mean(&values(&checks)),
            wins: (compared > 0).then(|| points / compared as f64),
            rating: mean(&values(&rating)),
            rouge: mean(&values(&rouge)),
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
    let everyone =
        |read: fn(&CategoryEvidence) -> Option<f64>| per_model.iter().all(|m| read(m).is_some());
    let measure = if everyone(|m| m.checks) {
        Some(CategoryMeasure::Checks)
    } else if everyone(|m| m.wins) {
        Some(CategoryMeasure::Judge)
    } else if everyone(|m| m.rating) {
        Some(CategoryMeasure::Rating)
    } else if everyone(|m| m.rouge) {
        Some(CategoryMeasure::Rouge)
    } else {
        None
    };
    let Some(measure) = measure else {
        return (
            untestable(
                criterion,
                cells,
                rule,
                "no evidence that every model has: add checks, a judge or a reference",
            ),
            None,
        );
    };
    let (comparisons, what, winner): (Vec<Comparison>, &str, fn(&str) -> String) = match measure {
        CategoryMeasure::Checks if repeated => (
            compare_values(
                evidence,
                &tasks,
                PairedTest::SignFlipPermutation,
                alpha,
                &checks,
            ),
            "share of the task's samples whose checks passed",
            |m| format!("{m}: more checks passed"),
        ),
        CategoryMeasure::Checks => (
            compare_values(evidence, &tasks, PairedTest::McNemarExact, alpha, &checks),
            "checks passed per task (1 or 0)",
            |m| format!("{m}: more checks passed"),
        ),
        CategoryMeasure::Judge => (
            judge_comparisons(evidence, &tasks, alpha),
            "the judge's pairwise verdict per task (+1 win, 0 tie, −1 loss)",
            |m| format!("{m}: wins more often with the judge"),
        ),
        CategoryMeasure::Rating => (
            compare_values(
                evidence,
                &tasks,
                PairedTest::SignFlipPermutation,
                alpha,
                &rating,
            ),
            "the judge's 1-10 rating per task",
            |m| format!("{m}: rated higher by the judge"),
        ),
        CategoryMeasure::Rouge => (
            compare_values(
                evidence,
                &tasks,
                PairedTest::SignFlipPermutation,
                alpha,
                &rouge,
            ),
            "ROUGE-L F against the reference per task",
            |m| format!("{m}: closer to the reference"),
        ),
    };
    (
        measured(criterion, cells, rule, what, comparisons),
        Some(Decision {
            higher_is_better: true,
            winner,
        }),
    )
}

/// The judge's pairwise verdicts on these tasks as per-task differences for every pair: +1
/// when the first model won, −1 when it lost, 0 for a tie (errors are not battles).
fn judge_comparisons(evidence: &Evidence<'_>, tasks: &[&TaskEntry], alpha: f64) -> Vec<Comparison> {
    compare_pairs(evidence, PairedTest::SignTest, alpha, &|a, b| {
        tasks
            .iter()
            .flat_map(|task| {
                evidence
                    .judge_battles
                    .iter()
                    .filter(|battle| battle.task.as_deref() == Some(task.id.as_str()))
                    .filter_map(move |battle| {
                        Some((battle_difference(battle, a, b)?, cluster_of(task)))
                    })
            })
            .collect()
    })
}

/// A battle between `a` and `b` as +1 (a won), −1 (b won) or 0 (a tie); `None` for a battle
/// between other models.
fn battle_difference(battle: &Battle, a: &str, b: &str) -> Option<f64> {
    let (first, second) = (battle.model_a.as_str(), battle.model_b.as_str());
    let sign = if (first, second) == (a, b) {
        1.0
    } else if (first, second) == (b, a) {
        -1.0
    } else {
        return None;
    };
    let (points_first, _) = battle.winner.points();
    Some(sign * (2.0 * points_first - 1.0))
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

fn all_tasks<'a>(evidence: &'a Evidence<'_>) -> Vec<&'a TaskEntry> {
    evidence.tasks.iter().collect()
}

fn tone_row(evidence: &Evidence<'_>, alpha: f64) -> (CriterionRow, Option<Decision>) {
    let models = model_ids(evidence);
    let cells = models
        .iter()
        .map(|m| {
            let ease = mean_score(evidence, m, "style.flesch_reading_ease");
            let grade = mean_score(evidence, m, "style.flesch_kincaid_grade");
            let words = mean_score(evidence, m, "style.words").unwrap_or(0.0);
            let informal = mean_score(evidence, m, "style.contractions").unwrap_or(0.0)
                + mean_score(evidence, m, "style.second_person").unwrap_or(0.0);
            let exclamations = mean_score(evidence, m, "style.exclamations").unwrap_or(0.0);
            match (ease, grade) {
                (Some(ease), Some(grade)) => format!(
                    "Flesch ease {ease:.0}, grade {grade:.1}; {:.1} contractions/second person per 100 words; {exclamations:.1} exclamations",
                    if words > 0.0 { informal * 100.0 / words } else { 0.0 }
                ),
                _ => "no answers".into(),
            }
        })
        .collect();
    let ease = |task: &TaskEntry, model: &str| {
        evidence.score(&task.id, model, "style.flesch_reading_ease")
    };
    let comparisons = compare_values(
        evidence,
        &all_tasks(evidence),
        PairedTest::SignFlipPermutation,
        alpha,
        &ease,
    );
    (
        measured(
            "Tone and style",
            cells,
            "Flesch reading ease (textstat's formula) per task, paired over the tasks both answered (sign-flip permutation test); the easier to read wins when significant".into(),
            "Flesch reading ease per answer",
            comparisons,
        ),
        Some(Decision {
            higher_is_better: true,
            winner: |m| format!("{m}: easier to read (higher Flesch reading ease)"),
        }),
    )
}

fn verbosity_row(evidence: &Evidence<'_>, alpha: f64) -> (CriterionRow, Option<Decision>) {
    let models = model_ids(evidence);
    let cells = models
        .iter()
        .map(|m| {
            let words = mean_score(evidence, m, "style.words");
            let tokens = mean_score(evidence, m, "length.tokens");
            match (words, tokens) {
                (Some(w), Some(t)) => format!("{w:.0} words, {t:.0} tokens per answer"),
                (Some(w), None) => format!("{w:.0} words per answer"),
                _ => "no answers".into(),
            }
        })
        .collect();
    let words = |task: &TaskEntry, model: &str| evidence.score(&task.id, model, "style.words");
    let comparisons = compare_values(
        evidence,
        &all_tasks(evidence),
        PairedTest::SignFlipPermutation,
        alpha,
        &words,
    );
    (
        measured(
            "Verbosity",
            cells,
            "words per answer, paired over the tasks both answered (sign-flip permutation test); the shorter is more concise when significant".into(),
            "words per answer",
            comparisons,
        ),
        Some(Decision {
            higher_is_better: false,
            winner: |m| format!("{m}: more concise (fewer words per answer)"),
        }),
    )
}

fn speed_row(evidence: &Evidence<'_>, alpha: f64) -> (CriterionRow, Option<Decision>) {
    let models = model_ids(evidence);
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
    let latency = |task: &TaskEntry, model: &str| {
        evidence.result_mean(&task.id, model, true, |r| r.latency_ms)
    };
    let comparisons = compare_values(
        evidence,
        &all_tasks(evidence),
        PairedTest::SignFlipPermutation,
        alpha,
        &latency,
    );
    (
        measured(
            "Speed",
            cells,
            "latency per task (ms), paired over the tasks both answered in this run, cached answers excluded (sign-flip permutation test); the faster wins when significant. Cells show median time to first token and tokens/s".into(),
            "latency per answer (ms)",
            comparisons,
        ),
        Some(Decision {
            higher_is_better: false,
            winner: |m| format!("{m}: faster (lower latency)"),
        }),
    )
}

fn cost_row(evidence: &Evidence<'_>, alpha: f64) -> (CriterionRow, Option<Decision>) {
    let models = model_ids(evidence);
    let is_local = |entry: &ModelEntry| {
        entry.spec.starts_with("hf:")
            || entry.spec.starts_with("local:")
            || entry.spec.starts_with("gguf:")
    };
    let mut priced = 0;
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
                    priced += 1;
                    let total: f64 = values.iter().sum();
                    format!(
                        "${total:.6} for {} answers (${}/${} per 1M tokens)",
                        values.len(),
                        price.input,
                        price.output
                    )
                }
                Some(_) => "price known, no token counts".into(),
                None if is_local(entry) => {
                    priced += 1;
                    "local: no per-token price".into()
                }
                None => "no price given".into(),
            }
        })
        .collect();
    let rule = "cost per task from each model's price and reported tokens (local models cost nothing per token), paired over the tasks both answered (sign-flip permutation test); the cheaper wins when significant".to_string();
    if priced < models.len() || models.len() < 2 {
        return (
            untestable(
                "Cost",
                cells,
                rule,
                "incomplete: not every model has a price",
            ),
            None,
        );
    }
    let cost = |task: &TaskEntry, model: &str| {
        let entry = evidence.models.iter().find(|e| e.id == model)?;
        if is_local(entry) {
            evidence.ok(&task.id, model).then_some(0.0)
        } else {
            evidence.result_mean(&task.id, model, false, |r| r.cost_usd)
        }
    };
    let comparisons = compare_values(
        evidence,
        &all_tasks(evidence),
        PairedTest::SignFlipPermutation,
        alpha,
        &cost,
    );
    (
        measured("Cost", cells, rule, "cost per answer (USD)", comparisons),
        Some(Decision {
            higher_is_better: false,
            winner: |m| format!("{m}: cheaper"),
        }),
    )
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
        ..informational()
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
        ..informational()
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
        ..informational()
    }
}

fn overall_row(
    evidence: &Evidence<'_>,
    ratings: &[Rating],
    battles: &[Battle],
    alpha: f64,
) -> (CriterionRow, Option<Decision>) {
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
    let rule = "the judge's pairwise verdicts and votes: a sign test on wins against losses for every pair (ties reported, not counted), beside Bradley-Terry ratings (Chatbot Arena's method) with bootstrap 95% intervals; a winner only when it beats every other model with a Holm-adjusted p below alpha".to_string();
    if ratings.len() < 2 {
        return (
            untestable(
                "Overall",
                cells,
                rule,
                "no pairwise evidence: configure a judge or cast votes",
            ),
            None,
        );
    }
    // Each battle is its own unit: votes and judge verdicts are separate judgements.
    let comparisons = compare_pairs(evidence, PairedTest::SignTest, alpha, &|a, b| {
        battles
            .iter()
            .enumerate()
            .filter_map(|(i, battle)| {
                Some((battle_difference(battle, a, b)?, format!("battle:{i}")))
            })
            .collect()
    });
    (
        measured(
            "Overall",
            cells,
            rule,
            "each battle between two models (+1 win, 0 tie, −1 loss)",
            comparisons,
        ),
        Some(Decision {
            higher_is_better: true,
            winner: |m| format!("{m}: wins its battles against every other model"),
        }),
    )
}

/// Ratings for a report: bootstrap rounds kept moderate so reports stay fast; `versus ratings`
/// runs the full 1000.
pub fn report_ratings(battles: &[Battle]) -> Vec<Rating> {
    if battles.is_empty() {
        return Vec::new();
    }
    ratings_with_intervals(battles, 200, 42)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::ok;
    use crate::report::{assemble, Grading, RunInfo};
    use versus_core::{GenerationParams, RunPlan, Suite, SuiteSource};
    use versus_store::ScoreRecord;

    /// A 40-task coding run of `a` and `b`, where `passes(model, task)` says whose checks pass.
    fn coding_run(passes: impl Fn(&str, usize) -> bool) -> crate::report::Report {
        sampled_coding_run(1, |model, task, _| passes(model, task))
    }

    /// A 40-task coding run of `a` and `b` asking each task `samples` times (pass@1 and pass@5
    /// asked for), where `passes(model, task, sample)` says whose checks pass; every answer's
    /// text is whether it passed, so identical evidence means identical answers.
    fn sampled_coding_run(
        samples: u32,
        passes: impl Fn(&str, usize, u32) -> bool,
    ) -> crate::report::Report {
        // The same hosted model twice, so price and speed are equal and only checks differ.
        let mut text = format!(
            "name = \"forty\"\n[defaults]\nsamples = {samples}\npass_at = [1, 5]\n[[models]]\nid = \"a\"\nspec = \"openai:gpt-4o-mini\"\n[[models]]\nid = \"b\"\nspec = \"openai:gpt-4o-mini\"\n",
        );
        for i in 0..40 {
            text.push_str(&format!(
                "[[tasks]]\nid = \"t{i}\"\ncategory = \"coding\"\nprompt = \"task {i}\"\n"
            ));
        }
        let plan = RunPlan {
            suite: Suite::parse(&SuiteSource {
                origin: "forty.toml",
                text: &text,
            })
            .expect("the scripted suite parses"),
            overrides: GenerationParams::default(),
        };
        let mut cells = Vec::new();
        let mut scores = Vec::new();
        for i in 0..40 {
            for model in ["a", "b"] {
                for sample in 0..samples {
                    let passed = passes(model, i, sample);
                    let mut cell = ok(
                        &format!("t{i}"),
                        model,
                        if passed {
                            "a passing answer"
                        } else {
                            "a failing answer"
                        },
                        Some((5, 5)),
                        false,
                    );
                    cell.sample = sample;
                    cells.push(cell);
                    scores.push(ScoreRecord {
                        task_id: format!("t{i}"),
                        model_id: model.into(),
                        sample,
                        scorer: "checks".into(),
                        value: Some(if passed { 1.0 } else { 0.0 }),
                        passed: Some(passed),
                        explanation: String::new(),
                    });
                }
            }
        }
        let grading = Grading {
            scores,
            ..Grading::default()
        };
        let run = RunInfo {
            id: 1,
            suite: "forty".into(),
            suite_hash: "h".into(),
            status: "finished".into(),
            started_at: "2026-01-01".into(),
            finished_at: None,
            tool_version: "test".into(),
        };
        assemble(run, &plan, &cells, &grading)
    }

    fn coding_row(report: &crate::report::Report) -> &CriterionRow {
        report
            .criteria
            .iter()
            .find(|row| row.criterion == "Coding")
            .expect("a coding row")
    }

    #[test]
    fn passing_every_check_against_failing_half_is_significant() {
        let report = coding_run(|model, task| model == "a" || task % 2 == 0);
        let row = coding_row(&report);
        assert!(
            row.verdict
                .starts_with("a: more checks passed; McNemar exact test a vs b, n = 40: +0.500"),
            "{}",
            row.verdict
        );
        let comparison = &row.comparisons[0];
        assert!(comparison.p_adjusted < 0.05 && comparison.p_value <= comparison.p_adjusted);
        assert!(
            row.how_sure.starts_with("p = ") && row.how_sure.ends_with("adjusted, n = 40"),
            "{}",
            row.how_sure
        );
        // Every measured row carries its test, n, effect, interval and both p-values.
        for row in report.criteria.iter().filter(|r| !r.comparisons.is_empty()) {
            assert!(
                row.verdict.contains("(95% CI") && row.verdict.contains("adjusted"),
                "{row:?}"
            );
        }
    }

    #[test]
    fn identical_answers_are_never_called_different() {
        let report = coding_run(|_, task| task % 3 == 0);
        let row = coding_row(&report);
        assert!(
            row.verdict
                .starts_with("no significant difference (McNemar exact test a vs b, n = 40: 0 ("),
            "{}",
            row.verdict
        );
        assert_eq!(row.comparisons[0].p_value, 1.0);
        assert!(
            row.how_sure.starts_with("not significant"),
            "{}",
            row.how_sure
        );
        for row in &report.criteria {
            assert!(
                !row.verdict.starts_with("a:") && !row.verdict.starts_with("b:"),
                "{row:?}"
            );
        }
    }

    #[test]
    fn one_task_cannot_decide_and_says_so() {
        let report = coding_run(|model, task| model == "a" || task % 2 == 0);
        let decided: Vec<&TaskVerdict> = report
            .verdicts
            .iter()
            .filter(|v| v.winner.is_some())
            .collect();
        assert_eq!(decided.len(), 20, "a wins the 20 tasks b fails");
        for verdict in decided {
            assert_eq!(verdict.decided_by, DecidedBy::Checks);
            assert_eq!(
                verdict.why.last().map(String::as_str),
                Some(ONE_TASK),
                "{verdict:?}"
            );
        }
    }

    #[test]
    fn identical_samples_are_never_called_different_whatever_their_number() {
        for samples in [2, 5, 10] {
            // Both models pass the same samples of the same tasks, varying within each task.
            let report = sampled_coding_run(samples, |_, task, sample| {
                (task + sample as usize).is_multiple_of(3)
            });
            let row = coding_row(&report);
            assert!(
                row.verdict.starts_with(
                    "no significant difference (sign-flip permutation test a vs b, n = 40: 0"
                ),
                "{samples} samples: {}",
                row.verdict
            );
            assert_eq!(row.comparisons[0].p_value, 1.0, "{samples} samples");
            for row in &report.criteria {
                assert!(
                    !row.verdict.starts_with("a:") && !row.verdict.starts_with("b:"),
                    "{samples} samples: {row:?}"
                );
            }
        }
    }

    #[test]
    fn with_samples_a_model_passing_everything_beats_one_passing_half() {
        let report = sampled_coding_run(5, |model, _, sample| model == "a" || sample % 2 == 0);
        let row = coding_row(&report);
        assert!(
            row.verdict.starts_with(
                "a: more checks passed; sign-flip permutation test a vs b, n = 40: +0.400"
            ),
            "{}",
            row.verdict
        );
        assert!(row.comparisons[0].p_adjusted < 0.05);
    }

    #[test]
    fn samples_are_counted_per_cell_and_pass_at_k_follows_humaneval() {
        // a passes samples 0 and 1 of each task (c = 2 of n = 5); b passes none.
        let report = sampled_coding_run(5, |model, _, sample| model == "a" && sample < 2);
        let samples = report.samples.as_ref().expect("a samples section");
        let a = &samples.models[0];
        assert_eq!((a.samples, a.tasks_repeated, a.tasks_identical), (5, 40, 0));
        assert_eq!(a.mean_distinct_answers, Some(2.0));
        let pass_at: Vec<(u32, f64, usize)> = a
            .pass_at
            .iter()
            .map(|p| (p.k, (p.value.unwrap() * 1e9).round() / 1e9, p.tasks))
            .collect();
        // pass@1 = c/n = 0.4; pass@5 with n = 5 and c = 2 is 1.
        assert_eq!(pass_at, [(1, 0.4, 40), (5, 1.0, 40)]);
        let b = &samples.models[1];
        assert_eq!((b.tasks_identical, b.pass_at[0].value), (40, Some(0.0)));
        let spread = &a.spread[0];
        assert_eq!(spread.measure, "checks");
        // Two of five samples score 1: variance (2·0.6² + 3·0.4²)/4 = 0.3.
        assert!(
            (spread.within_task_variance - 0.3).abs() < 1e-12,
            "{spread:?}"
        );
        assert!(spread.between_task_variance.unwrap() < 1e-20, "{spread:?}");
        let cell = &samples.cells[0];
        assert_eq!(
            (
                cell.samples,
                cell.answered,
                cell.distinct_answers,
                cell.checks_passed
            ),
            (5, 5, 2, Some(2))
        );
        assert_eq!(
            report.samples_line("t0", "a").as_deref(),
            Some("5 samples: 5 answered, 2 different answers; checks passed in 2 of 5")
        );
        let lines = crate::report::samples::identical_lines(samples);
        assert!(
            lines[1].contains("identical on 40 of 40 tasks"),
            "{lines:?}"
        );
        assert!(lines[1].contains("set a temperature"), "{lines:?}");
        // pass@5 needs 5 samples: with 3 it is left out and said so.
        let short = sampled_coding_run(3, |model, _, _| model == "a");
        let p5 = &short.samples.as_ref().unwrap().models[0].pass_at[1];
        assert_eq!((p5.value, p5.tasks, p5.too_few_samples), (None, 0, 40));
    }

    #[test]
    fn a_run_asking_once_has_no_samples_section_unless_pass_at_is_asked() {
        // coding_run asks for pass_at, so it has one, with pass@5 unavailable.
        let report = coding_run(|model, _| model == "a");
        let samples = report.samples.as_ref().expect("pass@k was asked for");
        assert_eq!(samples.models[0].pass_at[0].value, Some(1.0));
        assert!(samples.cells.is_empty());
    }
}
