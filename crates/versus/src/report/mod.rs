//! Reports of a run, built from the store alone: the `Report` structure (which is also the JSON
//! report, schema in docs/report-schema.md) and its Markdown and HTML renderings.

pub mod format;
pub mod html;
pub mod markdown;
pub mod samples;
pub mod verdicts;

use serde::Serialize;
use versus_core::judge_measures::{FirstShown, JudgeMeasures, PairObservation};
use versus_core::ratings::{Battle, Rating};
use versus_core::stats::{mean, median};
use versus_core::verdict::{p_text, CriterionRow, TaskVerdict};
use versus_core::{
    ErrorKind, GenerationParams, JudgeVerdict, JudgementKind, Message, ModelMetadata, RunPlan, Task,
};
use versus_store::{
    CellRecord, CellStatus, JudgementRecord, RunId, ScoreRecord, Store, VoteRecord,
};

/// Bumped on any change a consumer of the JSON could notice; documented in docs/report-schema.md.
pub const SCHEMA_VERSION: u32 = 4;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: ToolInfo,
    pub run: RunInfo,
    pub models: Vec<ModelEntry>,
    pub tasks: Vec<TaskEntry>,
    /// Every answer: one per task, model and sample, in task order, then model, then sample.
    pub results: Vec<ResultEntry>,
    pub summary: Vec<ModelSummary>,
    /// Repeated samples, measured: how often they were identical, how far scores spread across
    /// one task's samples, and pass@k; `None` when every task was asked once.
    pub samples: Option<samples::SampleReport>,
    /// Every score of every answer (checks, reference metrics, style), by task and model.
    pub scores: Vec<ScoreEntry>,
    /// The judge's verdicts, with its explanations.
    pub judgements: Vec<JudgementEntry>,
    /// The winner of each task (or a tie) and why.
    pub verdicts: Vec<TaskVerdict>,
    /// The criteria table: evidence per model and a verdict per criterion.
    pub criteria: Vec<CriterionRow>,
    /// Bradley-Terry ratings from this run's judge verdicts and votes.
    pub ratings: Vec<Rating>,
    /// Set when the battles have no finite maximum-likelihood ratings (a model never lost or
    /// never won), so the ratings are where the Arena's optimiser stops rather than an optimum.
    pub ratings_note: Option<String>,
    /// The same battles rated with Chatbot Arena's style control (answer length and Markdown
    /// headers, list items and bold as covariates), so a model that wins by writing longer or
    /// more decorated answers is seen as such; `None` when no battle's two answers both have
    /// token counts.
    pub style_controlled: Option<versus_core::ratings::StyleControlled>,
    /// The judge, measured: for each judge with pairwise verdicts, its position and length
    /// biases, self-preference and agreement with votes (docs/verdicts.md); empty without one.
    pub judge_measures: Vec<JudgeMeasures>,
    /// The judge's pairwise verdicts as battles (votes not included), for the per-category win
    /// rates; derived from `judgements`, so not part of the JSON.
    #[serde(skip)]
    pub judge_battles: Vec<Battle>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScoreEntry {
    pub task: String,
    pub model: String,
    /// Which sample's answer it scores (0-based).
    pub sample: u32,
    pub scorer: String,
    pub value: Option<f64>,
    pub passed: Option<bool>,
    pub explanation: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct JudgementEntry {
    pub task: String,
    pub kind: JudgementKind,
    pub model_a: String,
    /// Empty for single ratings.
    pub model_b: String,
    pub judge: String,
    pub verdict: JudgeVerdict,
    pub rating: Option<f64>,
    /// What the judge said, briefly (both orders for pairwise).
    pub explanation: String,
    /// The judge's full outputs, as stored.
    pub detail: serde_json::Value,
}

impl JudgementEntry {
    /// How a pairwise verdict reads in every report format: "A wins", "tie", ...
    pub fn outcome(&self) -> String {
        match self.verdict {
            JudgeVerdict::ModelA => format!("{} wins", self.model_a),
            JudgeVerdict::ModelB => format!("{} wins", self.model_b),
            JudgeVerdict::Tie => "tie".to_string(),
            JudgeVerdict::Inconsistent => "inconsistent across orders (a tie)".to_string(),
            JudgeVerdict::Rated | JudgeVerdict::Error => "error (counted for nobody)".to_string(),
        }
    }

    /// A pairwise judgement of `task`.
    pub fn is_pairwise_on(&self, task: &str) -> bool {
        self.task == task && self.kind == JudgementKind::Pairwise
    }

    /// The judge's rating of `model`'s answer to `task`.
    pub fn is_rating_of(&self, task: &str, model: &str) -> bool {
        self.task == task && self.kind == JudgementKind::Single && self.model_a == model
    }
}

impl Report {
    /// The first sample of each model's answer to a task: what every report shows in full.
    pub fn first_answers<'a>(&'a self, task: &'a str) -> impl Iterator<Item = &'a ResultEntry> {
        self.results
            .iter()
            .filter(move |r| r.task == task && r.sample == 0)
    }

    /// A model's later samples of a task (none when it was asked once), shown collapsed.
    pub fn later_samples(&self, task: &str, model: &str) -> Vec<&ResultEntry> {
        self.results
            .iter()
            .filter(|r| r.task == task && r.model == model && r.sample > 0)
            .collect()
    }

    /// The scores of one answer (one sample).
    pub fn scores_of(&self, result: &ResultEntry) -> Vec<&ScoreEntry> {
        self.scores
            .iter()
            .filter(|s| {
                s.task == result.task && s.model == result.model && s.sample == result.sample
            })
            .collect()
    }

    /// "5 samples: 3 different answers; checks passed in 3 of 5", for a task and model asked
    /// more than once; `None` otherwise.
    pub fn samples_line(&self, task: &str, model: &str) -> Option<String> {
        let cell = self
            .samples
            .as_ref()?
            .cells
            .iter()
            .find(|c| c.task == task && c.model == model)?;
        let mut line = format!("{} samples: ", cell.samples);
        line.push_str(&match (cell.answered, cell.distinct_answers) {
            (0, _) => "none answered".to_string(),
            (_, 1) => format!("{} answered, all identical", cell.answered),
            (answered, distinct) => format!("{answered} answered, {distinct} different answers"),
        });
        if let Some(passed) = cell.checks_passed {
            line.push_str(&format!(
                "; checks passed in {passed} of {}",
                cell.checks_scored
            ));
        }
        Some(line)
    }
}

/// "ROUGE-1 0.452", ..., "BLEU 12.3": the reference metrics among one answer's scores, for display.
pub fn reference_metric_labels(scores: &[&ScoreEntry]) -> Vec<String> {
    let metric = |name: &str| {
        scores
            .iter()
            .find(|s| s.scorer == name)
            .and_then(|s| s.value)
    };
    let mut labels = Vec::new();
    for (name, label) in [
        ("rouge1", "ROUGE-1"),
        ("rouge2", "ROUGE-2"),
        ("rougeL", "ROUGE-L"),
        ("rougeLsum", "ROUGE-Lsum"),
    ] {
        if let Some(v) = metric(name) {
            labels.push(format!("{label} {v:.3}"));
        }
    }
    if let Some(v) = metric("bleu") {
        labels.push(format!("BLEU {v:.1}"));
    }
    labels
}

/// How consistent the judge was across positions, and how often it failed; `None` without a judge.
pub fn judge_summary(report: &Report) -> Option<String> {
    let count = |kind: JudgementKind, verdict: Option<JudgeVerdict>| {
        report
            .judgements
            .iter()
            .filter(|j| j.kind == kind && verdict.is_none_or(|v| j.verdict == v))
            .count()
    };
    let pairwise = count(JudgementKind::Pairwise, None);
    let single = count(JudgementKind::Single, None);
    if pairwise + single == 0 {
        return None;
    }
    let inconsistent = count(JudgementKind::Pairwise, Some(JudgeVerdict::Inconsistent));
    let errors = count(JudgementKind::Pairwise, Some(JudgeVerdict::Error));
    Some(format!(
        "Judge: {pairwise} pairwise comparisons in both orders: {} consistent, {inconsistent} inconsistent across positions (counted as ties), {errors} errors (counted for nobody); {single} ratings, {} errors.",
        pairwise - inconsistent - errors,
        count(JudgementKind::Single, Some(JudgeVerdict::Error))
    ))
}

/// Each pairwise judgement as the judge measures read it: what each order said about the answer
/// shown first, from the judgement's stored detail (read once, tolerantly: a detail without an
/// order's parsed verdict leaves that order unknown), and both answers' lengths in words.
pub fn pair_observations(
    judgements: &[JudgementEntry],
    results: &[ResultEntry],
    scores: &[ScoreEntry],
) -> Vec<PairObservation> {
    judgements
        .iter()
        .filter(|j| j.kind == JudgementKind::Pairwise)
        .map(|j| {
            let (length_a, length_b) =
                answer_lengths(&j.task, &j.model_a, &j.model_b, results, scores);
            PairObservation {
                task: j.task.clone(),
                judge: j.judge.clone(),
                model_a: j.model_a.clone(),
                model_b: j.model_b.clone(),
                verdict: j.verdict,
                a_first: first_shown(j.detail.get("first")),
                b_first: first_shown(j.detail.get("second")),
                length_a,
                length_b,
            }
        })
        .collect()
}

/// What one order's stored call (`{"parsed": "A" | "B" | "tie", ...}`, see
/// `judge::results::JudgeCall`) says about the answer shown first; `None` for a failed call or
/// anything else.
fn first_shown(call: Option<&serde_json::Value>) -> Option<FirstShown> {
    let parsed = call?.get("parsed")?.as_str()?.trim();
    match parsed.to_ascii_lowercase().as_str() {
        "a" => Some(FirstShown::Won),
        "b" => Some(FirstShown::Lost),
        "tie" | "c" => Some(FirstShown::Tie),
        _ => None,
    }
}

/// Two answers' lengths in words, measured the same way for both: textstat's word count
/// (`style.words`) when both answers have one, else whitespace-separated words of the stored
/// answers; `None` for an answer that is not there.
fn answer_lengths(
    task: &str,
    model_a: &str,
    model_b: &str,
    results: &[ResultEntry],
    scores: &[ScoreEntry],
) -> (Option<f64>, Option<f64>) {
    let style_words = |model: &str| {
        scores
            .iter()
            .find(|s| {
                s.task == task && s.model == model && s.sample == 0 && s.scorer == "style.words"
            })
            .and_then(|s| s.value)
            .filter(|v| v.is_finite())
    };
    if let (Some(a), Some(b)) = (style_words(model_a), style_words(model_b)) {
        return (Some(a), Some(b));
    }
    let text_words = |model: &str| {
        results
            .iter()
            .find(|r| r.task == task && r.model == model && r.sample == 0)
            .and_then(|r| r.output.as_deref())
            .map(|text| text.split_whitespace().count() as f64)
    };
    (text_words(model_a), text_words(model_b))
}

/// The "Judge, measured" block, the same lines in every format: for each judge, its label and
/// one line per measure, each with its n, and its p where a test applies.
pub fn judge_measure_lines(report: &Report) -> Vec<(String, Vec<String>)> {
    report
        .judge_measures
        .iter()
        .map(|m| {
            let lines = vec![
                position_line(m),
                length_line(m),
                self_preference_line(m),
                agreement_line(m),
            ];
            (m.judge.clone(), lines)
        })
        .collect()
}

fn position_line(m: &JudgeMeasures) -> String {
    let position = &m.position;
    let uncounted = not_counted(&[
        (position.ties, "tie", "ties"),
        (position.unknown, "unread verdict", "unread verdicts"),
    ]);
    match (position.test.share, position.test.p_value) {
        (Some(share), Some(p)) => format!(
            "Position: the answer shown first won {} of {} decided single-order verdicts ({}){uncounted}; sign test against ½: p = {}, n = {}.",
            position.first_won,
            position.test.n,
            format::percent(share),
            p_text(p),
            position.test.n,
        ),
        _ => format!(
            "Position: no single-order verdict named a winner, so there is nothing to test{uncounted}."
        ),
    }
}

fn length_line(m: &JudgeMeasures) -> String {
    let length = &m.length;
    let uncounted = not_counted(&[
        (length.equal_length, "of equal length", "of equal length"),
        (length.unknown, "without a length", "without a length"),
    ]);
    let correlation = match length.correlation {
        Some(r) => format!("r = {r:.2}"),
        None if length.battles < 2 => "r undefined (fewer than two battles)".to_string(),
        None => {
            "r undefined (every battle had the same outcome or the same difference)".to_string()
        }
    };
    match (length.test.share, length.test.p_value) {
        (Some(share), Some(p)) => format!(
            "Length: the longer answer (in words) won {} of {} decided battles between answers of different lengths ({}){uncounted}; sign test against ½: p = {}, n = {}; Pearson correlation of the length difference (a − b) with the outcome (+1 a won, −1 b won): {correlation}, n = {}.",
            length.longer_won,
            length.test.n,
            format::percent(share),
            p_text(p),
            length.test.n,
            length.battles,
        ),
        _ => format!(
            "Length: no decided battle between answers of different lengths, so there is nothing to test{uncounted}."
        ),
    }
}

/// " (2 ties, 1 unread verdict not counted)", or nothing when every count is 0.
fn not_counted(counts: &[(usize, &str, &str)]) -> String {
    let parts: Vec<String> = counts
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|&(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({} not counted)", parts.join(", "))
    }
}

fn self_preference_line(m: &JudgeMeasures) -> String {
    let Some(preference) = &m.self_preference else {
        return format!(
            "Self-preference: {} is not one of the models compared, so there is none to measure.",
            m.judge
        );
    };
    let record = |r: &versus_core::judge_measures::WinRecord, by: &str| {
        r.win_rate.map(|rate| {
            format!(
                "{} of {} {by}",
                format::percent(rate),
                plural(r.battles, "battle")
            )
        })
    };
    let own = record(&preference.by_self, "as judged by itself");
    match (own, preference.difference) {
        (Some(own), Some(difference)) => {
            let others: Vec<String> = [
                record(&preference.by_other_judges, "as judged by the other judges"),
                record(&preference.by_votes, "in votes"),
            ]
            .into_iter()
            .flatten()
            .collect();
            format!(
                "Self-preference: {} won {own}, against {} ({:+.0} points against the other judges and votes together; ties count half; descriptive, no test).",
                preference.model,
                others.join(" and "),
                difference * 100.0
            )
        }
        (Some(own), None) => format!(
            "Self-preference cannot be measured: {} won {own}, but no other judge and no vote covers its battles.",
            preference.model
        ),
        (None, _) => format!(
            "Self-preference cannot be measured: {} decided none of its own battles.",
            preference.model
        ),
    }
}

fn agreement_line(m: &JudgeMeasures) -> String {
    let agreement = &m.human_agreement;
    let Some(raw) = agreement.raw else {
        return "Agreement with human votes cannot be measured: no votes on the same tasks and pairs.".to_string();
    };
    let kappa = match agreement.kappa {
        Some(kappa) => format!("Cohen's kappa {kappa:.2}"),
        None => "Cohen's kappa undefined (verdicts and votes all one outcome)".to_string(),
    };
    format!(
        "Agreement with human votes on the same task and pair: {} of {} ({}); {kappa} over a wins / b wins / tie, n = {}.",
        agreement.agreements,
        agreement.n,
        format::percent(raw),
        agreement.n
    )
}

/// "1 battle", "3 battles".
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// Why ratings can look extreme with few battles.
pub const FINITE_MLE_NOTE: &str = "some model never lost (or never won) in these battles, so its Bradley-Terry rating has no finite maximum; the ratings are where Chatbot Arena's optimiser stops, and the intervals are not meaningful until there are more, and more mixed, battles";

/// What grading stored for a run.
#[derive(Debug, Clone, Default)]
pub struct Grading {
    pub scores: Vec<ScoreRecord>,
    pub judgements: Vec<JudgementRecord>,
    pub votes: Vec<VoteRecord>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ToolInfo {
    pub name: &'static str,
    pub version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub id: RunId,
    pub suite: String,
    pub suite_hash: String,
    pub status: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The versus version that made the run.
    pub tool_version: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ModelEntry {
    pub id: String,
    pub spec: String,
    pub base_url: Option<String>,
    pub metadata: ModelMetadata,
    pub params: GenerationParams,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaskEntry {
    pub id: String,
    pub category: String,
    pub messages: Vec<Message>,
    /// Paths or URLs of the images sent with the last user message.
    pub images: Vec<String>,
    pub reference: Option<String>,
    pub tags: Vec<String>,
    /// Tasks of one group are one unit for the verdicts' statistics.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ResultEntry {
    pub task: String,
    pub model: String,
    /// Which of the task's repeated samples this answer is (0-based; 0 when asked once).
    pub sample: u32,
    /// `ok`, `failed`, `unsupported`, or `pending` (the run was interrupted before it).
    pub status: &'static str,
    pub output: Option<String>,
    pub error: Option<String>,
    pub error_kind: Option<ErrorKind>,
    pub finish_reason: Option<String>,
    pub latency_ms: Option<f64>,
    pub ttft_ms: Option<f64>,
    /// As reported by the server; `null` when it reported nothing.
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    pub tokens_per_second: Option<f64>,
    /// From the model's price and the reported tokens; `null` when either is unknown.
    pub cost_usd: Option<f64>,
    /// The answer was taken from the cache rather than a new call.
    pub cached: bool,
    pub attempts: u32,
    /// Of `completion_tokens`, those spent thinking, when the server says (left out otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u64>,
    /// Of `prompt_tokens`, those read from the provider's cache, when the server says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_prompt_tokens: Option<u64>,
    /// What the model thought before answering, kept apart from `output` (never graded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// The server's own timings (Ollama), beside versus's measured `latency_ms`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_timings: Option<versus_core::ServerTimings>,
    /// Answered through a batch API (`versus run --batch`): charged at the batch price, and
    /// without latency, time to first token or tokens/s (a batch has none per answer).
    #[serde(rename = "batch", skip_serializing_if = "std::ops::Not::not")]
    pub via_batch: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelSummary {
    pub model: String,
    pub cells: usize,
    pub ok: usize,
    pub failed: usize,
    pub unsupported: usize,
    pub pending: usize,
    pub mean_latency_ms: Option<f64>,
    pub median_latency_ms: Option<f64>,
    pub mean_ttft_ms: Option<f64>,
    pub median_ttft_ms: Option<f64>,
    pub mean_tokens_per_second: Option<f64>,
    /// Sums over the answers whose usage the server reported (`answers_with_usage` of `ok`).
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub answers_with_usage: usize,
    pub cost_usd: Option<f64>,
}

/// Reads a run from the store and builds its report.
pub fn build(store: &Store, run_id: RunId) -> anyhow::Result<Report> {
    let record = store.run(run_id)?;
    let cells = store.cells(run_id)?;
    let grading = Grading {
        scores: store.scores(run_id)?,
        judgements: store.judgements(run_id)?,
        votes: store
            .votes()?
            .into_iter()
            .filter(|v| v.run_id == Some(run_id))
            .collect(),
    };
    Ok(assemble(
        RunInfo {
            id: run_id,
            suite: record.summary.suite_name.clone(),
            suite_hash: record.suite_hash.clone(),
            status: record.summary.status.as_str().to_string(),
            started_at: record.summary.started_at.clone(),
            finished_at: record.summary.finished_at.clone(),
            tool_version: record.summary.tool_version.clone(),
        },
        &record.plan,
        &cells,
        &grading,
    ))
}

/// Builds a report from a plan and its cells; pure, so tests can feed it directly.
pub fn assemble(run: RunInfo, plan: &RunPlan, cells: &[CellRecord], grading: &Grading) -> Report {
    let suite = &plan.suite;
    let models = model_entries(plan);
    let tasks: Vec<TaskEntry> = suite.tasks.iter().map(task_entry).collect();

    let mut results = Vec::new();
    for task in &suite.tasks {
        for model in &suite.models {
            let mut mine: Vec<&CellRecord> = cells
                .iter()
                .filter(|c| c.task_id == task.id && c.model_id == model.id)
                .collect();
            mine.sort_by_key(|c| c.sample);
            if mine.is_empty() {
                results.push(result_entry(&task.id, &model.id, &model.metadata, None));
            }
            for cell in mine {
                results.push(result_entry(
                    &task.id,
                    &model.id,
                    &model.metadata,
                    Some(cell),
                ));
            }
        }
    }
    let summary = models
        .iter()
        .map(|m| summarize(&m.id, &m.metadata, &results))
        .collect();
    let scores: Vec<ScoreEntry> = grading.scores.iter().map(score_entry).collect();
    let judgements: Vec<JudgementEntry> = grading.judgements.iter().map(judgement_entry).collect();
    let categories = plan.categories();
    let judge_battles = versus_core::record::battles(&grading.judgements, &categories, []);
    let battles = versus_core::record::battles(&grading.judgements, &categories, &grading.votes);
    let ratings = verdicts::report_ratings(&battles);
    let style_controlled = style_controlled(&battles, cells);
    let ratings_note = (!battles.is_empty() && !versus_core::ratings::has_finite_mle(&battles))
        .then(|| FINITE_MLE_NOTE.to_string());
    let evidence = verdicts::Evidence {
        models: &models,
        tasks: &tasks,
        results: &results,
        scores: &scores,
        judgements: &judgements,
        judge_battles: &judge_battles,
    };
    let task_verdicts = verdicts::task_verdicts(&evidence);
    let criteria = verdicts::criteria(&evidence, &ratings, &battles, plan.suite.verdicts.alpha);
    let contestants: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    let judge_measures = versus_core::judge_measures::measure_judges(
        &pair_observations(&judgements, &results, &scores),
        &grading.votes,
        &contestants,
    );
    let samples = samples::sample_report(plan, &models, &results, &scores);
    Report {
        samples,
        scores,
        judgements,
        verdicts: task_verdicts,
        criteria,
        ratings,
        ratings_note,
        style_controlled,
        judge_measures,
        judge_battles,
        schema_version: SCHEMA_VERSION,
        tool: ToolInfo {
            name: "versus",
            version: env!("CARGO_PKG_VERSION").to_string(),
        },
        run,
        models,
        tasks,
        results,
        summary,
    }
}

/// Style-controlled ratings of `battles`, each answer's style read from its stored text and its
/// reported token count (answers without one are left out, as are their battles).
fn style_controlled(
    battles: &[Battle],
    cells: &[CellRecord],
) -> Option<versus_core::ratings::StyleControlled> {
    use versus_core::ratings::{markdown_style_counts, style_controlled_ratings, styled_battles};
    let answers = cells
        .iter()
        // Battles are judged on first samples only.
        .filter(|cell| cell.sample == 0)
        .filter_map(|cell| {
            let stored = cell.completion.as_ref()?;
            let tokens = stored.completion.usage?.completion_tokens;
            Some((
                (cell.task_id.clone(), cell.model_id.clone()),
                markdown_style_counts(&stored.completion.text, tokens),
            ))
        })
        .collect();
    let (styled, _left_out) = styled_battles(battles, &answers);
    // As the plain ratings in reports: fewer rounds than `versus ratings`, the same seed.
    (!styled.is_empty()).then(|| style_controlled_ratings(&styled, 200, 42))
}

/// One line on the style-controlled ratings, for both report formats.
pub fn style_control_line(report: &Report) -> Option<String> {
    let controlled = report.style_controlled.as_ref()?;
    let ratings: Vec<String> = controlled
        .ratings
        .iter()
        .map(|r| {
            format!(
                "{} {} ({})",
                r.model,
                format::rating(r.rating),
                format::interval(r.lower, r.upper)
            )
        })
        .collect();
    let coefficients: Vec<String> = controlled
        .style_coefficients
        .iter()
        .map(|c| {
            format!(
                "{} {:+.2} ({:+.2} to {:+.2})",
                c.feature, c.value, c.lower, c.upper
            )
        })
        .collect();
    Some(format!(
        "Style-controlled (Chatbot Arena's method: answer length, headers, list items and bold as covariates, {} battles): {}; style coefficients, log-odds per standard deviation with 95% intervals: {}",
        controlled.battles,
        ratings.join(", "),
        coefficients.join(", ")
    ))
}

/// The report's entry for each model of a plan: its id, spec and metadata, and the parameters
/// it runs with before any task's own.
pub fn model_entries(plan: &RunPlan) -> Vec<ModelEntry> {
    plan.suite
        .models
        .iter()
        .enumerate()
        .map(|(index, m)| ModelEntry {
            id: m.id.clone(),
            spec: m.spec.to_string(),
            // Stored plans are redacted since they were; runs stored before that are too here.
            base_url: m.base_url.as_deref().map(versus_core::redact::redact_url),
            metadata: m.metadata.clone(),
            params: plan.model_params(index),
        })
        .collect()
}

/// The report's entry for a task.
pub fn task_entry(task: &Task) -> TaskEntry {
    TaskEntry {
        id: task.id.clone(),
        category: task.category.clone(),
        messages: task.messages.clone(),
        images: task.images.iter().map(|i| i.path.clone()).collect(),
        reference: task.reference.clone(),
        tags: task.tags.clone(),
        group: task.group.clone(),
    }
}

/// The report's entry for a stored score.
pub fn score_entry(record: &ScoreRecord) -> ScoreEntry {
    ScoreEntry {
        task: record.task_id.clone(),
        model: record.model_id.clone(),
        sample: record.sample,
        scorer: record.scorer.clone(),
        value: record.value,
        passed: record.passed,
        explanation: record.explanation.clone(),
    }
}

/// The report's entry for a stored judgement.
pub fn judgement_entry(record: &JudgementRecord) -> JudgementEntry {
    JudgementEntry {
        task: record.task_id.clone(),
        kind: record.kind,
        model_a: record.model_a.clone(),
        model_b: record.model_b.clone(),
        judge: record.judge.clone(),
        verdict: record.verdict,
        rating: record.rating,
        explanation: record.explanation().to_string(),
        detail: record.detail.clone(),
    }
}

fn result_entry(
    task: &str,
    model: &str,
    metadata: &ModelMetadata,
    cell: Option<&CellRecord>,
) -> ResultEntry {
    let mut entry = ResultEntry {
        task: task.to_string(),
        model: model.to_string(),
        sample: cell.map_or(0, |c| c.sample),
        status: "pending",
        output: None,
        error: None,
        error_kind: None,
        finish_reason: None,
        latency_ms: None,
        ttft_ms: None,
        prompt_tokens: None,
        completion_tokens: None,
        tokens_per_second: None,
        cost_usd: None,
        cached: false,
        attempts: 0,
        reasoning_tokens: None,
        cached_prompt_tokens: None,
        thinking: None,
        server_timings: None,
        via_batch: false,
    };
    let Some(cell) = cell else { return entry };
    entry.status = match cell.status {
        CellStatus::Pending => "pending",
        CellStatus::Ok => "ok",
        CellStatus::Failed => "failed",
        CellStatus::Unsupported => "unsupported",
    };
    entry.cached = cell.cached;
    entry.attempts = cell.attempts;
    if let Some(error) = &cell.error {
        entry.error = Some(error.message.clone());
        entry.error_kind = Some(error.kind);
    }
    if let (CellStatus::Ok, Some(stored)) = (cell.status, &cell.completion) {
        let completion = &stored.completion;
        entry.output = Some(completion.text.clone());
        entry.finish_reason = Some(completion.finish_reason.as_str().to_string());
        entry.latency_ms = Some(completion.timings.latency_ms);
        entry.ttft_ms = completion.timings.ttft_ms;
        entry.prompt_tokens = completion.usage.map(|u| u.prompt_tokens);
        entry.completion_tokens = completion.usage.map(|u| u.completion_tokens);
        entry.tokens_per_second = completion
            .usage
            .and_then(|u| completion.timings.tokens_per_second(u.completion_tokens));
        entry.cost_usd = metadata.cost_usd(completion.usage);
        entry.reasoning_tokens = completion.usage.and_then(|u| u.reasoning_tokens);
        entry.cached_prompt_tokens = completion.usage.and_then(|u| u.cached_prompt_tokens);
        entry.thinking.clone_from(&completion.thinking);
        entry.server_timings = completion.server_timings;
        if completion.via_batch {
            entry.via_batch = true;
            entry.latency_ms = None;
            entry.ttft_ms = None;
            entry.tokens_per_second = None;
            entry.cost_usd = metadata.batch_cost_usd(completion.usage);
        }
    }
    entry
}

fn summarize(model: &str, metadata: &ModelMetadata, results: &[ResultEntry]) -> ModelSummary {
    let mine: Vec<&ResultEntry> = results.iter().filter(|r| r.model == model).collect();
    let count = |status: &str| mine.iter().filter(|r| r.status == status).count();
    let collect = |field: fn(&ResultEntry) -> Option<f64>| -> Vec<f64> {
        mine.iter().filter_map(|r| field(r)).collect()
    };
    let latencies = collect(|r| r.latency_ms);
    let ttfts = collect(|r| r.ttft_ms);
    let rates = collect(|r| r.tokens_per_second);
    let with_usage: Vec<&&ResultEntry> = mine
        .iter()
        .filter(|r| r.completion_tokens.is_some())
        .collect();
    let costs = collect(|r| r.cost_usd);
    ModelSummary {
        model: model.to_string(),
        cells: mine.len(),
        ok: count("ok"),
        failed: count("failed"),
        unsupported: count("unsupported"),
        pending: count("pending"),
        mean_latency_ms: mean(&latencies),
        median_latency_ms: median(&latencies),
        mean_ttft_ms: mean(&ttfts),
        median_ttft_ms: median(&ttfts),
        mean_tokens_per_second: mean(&rates),
        prompt_tokens: with_usage.iter().filter_map(|r| r.prompt_tokens).sum(),
        completion_tokens: with_usage.iter().filter_map(|r| r.completion_tokens).sum(),
        answers_with_usage: with_usage.len(),
        cost_usd: metadata
            .price
            .and((!costs.is_empty()).then(|| costs.iter().sum())),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use versus_core::ratings::Winner;
    use versus_core::VoteSource;
    use versus_core::{
        Completion, FinishReason, GenerationParams, Suite, SuiteSource, Timings, Usage,
    };
    use versus_store::{CellError, StoredCompletion};

    const SUITE: &str = r#"
name = "snapshot"
[[models]]
spec = "openai:gpt-4o-mini"
[[models]]
id = "local"
spec = "openai-compatible:llama3"
base_url = "http://127.0.0.1:8080/v1"
parameters = "8B"
[[tasks]]
id = "sunrise"
category = "reasoning"
system = "Be brief."
prompt = "Observation: the sun rose.\n\nQuestion: will it rise tomorrow?"
[[tasks]]
id = "fibonacci"
category = "coding"
prompt = "Write fib."
[[tasks]]
id = "photo"
prompt = "What is in the picture?"
images = ["cat.png"]
"#;

    pub(crate) fn plan() -> RunPlan {
        RunPlan {
            suite: Suite::parse(&SuiteSource {
                origin: "snapshot.toml",
                text: SUITE,
            })
            .unwrap(),
            overrides: GenerationParams::default(),
        }
    }

    pub(crate) fn ok(
        task: &str,
        model: &str,
        text: &str,
        usage: Option<(u64, u64)>,
        cached: bool,
    ) -> CellRecord {
        CellRecord {
            task_id: task.into(),
            model_id: model.into(),
            sample: 0,
            status: CellStatus::Ok,
            completion: Some(StoredCompletion {
                key: format!("{task}-{model}"),
                model_spec: model.into(),
                completion: Completion {
                    text: text.into(),
                    finish_reason: FinishReason::Stop,
                    usage: usage.map(|(prompt_tokens, completion_tokens)| {
                        Usage::new(prompt_tokens, completion_tokens)
                    }),
                    timings: Timings {
                        latency_ms: 1500.0,
                        ttft_ms: Some(500.0),
                    },
                    served_model: None,
                    attempts: 1,
                    thinking: None,
                    server_timings: None,
                    via_batch: false,
                },
                created_at: "2026-01-01T00:00:00.000Z".into(),
            }),
            error: None,
            cached,
            attempts: 1,
            updated_at: None,
        }
    }

    pub(crate) fn not_ok(
        task: &str,
        model: &str,
        status: CellStatus,
        kind: ErrorKind,
        message: &str,
    ) -> CellRecord {
        CellRecord {
            task_id: task.into(),
            model_id: model.into(),
            sample: 0,
            status,
            completion: None,
            error: Some(CellError {
                kind,
                message: message.into(),
            }),
            cached: false,
            attempts: 5,
            updated_at: None,
        }
    }

    pub(crate) fn report() -> Report {
        let cells = vec![
            ok(
                "sunrise",
                "gpt-4o-mini",
                "Yes.\n\n## Why\nInduction.",
                Some((20, 11)),
                false,
            ),
            ok("sunrise", "local", "Probably | surely", None, false),
            ok(
                "fibonacci",
                "gpt-4o-mini",
                "```python\ndef fib(n):",
                Some((10, 101)),
                true,
            ),
            not_ok(
                "fibonacci",
                "local",
                CellStatus::Failed,
                ErrorKind::Server,
                "HTTP 500 after 5 attempts",
            ),
            ok("photo", "gpt-4o-mini", "A cat.", Some((1000, 3)), false),
            not_ok(
                "photo",
                "local",
                CellStatus::Unsupported,
                ErrorKind::Unsupported,
                "model `local` does not read images",
            ),
        ];
        assemble(
            RunInfo {
                id: 7,
                suite: "snapshot".into(),
                suite_hash: "0123456789abcdef0123".into(),
                status: "finished".into(),
                started_at: "2026-01-01T00:00:00.000Z".into(),
                finished_at: Some("2026-01-01T00:01:00.000Z".into()),
                tool_version: "0.1.0".into(),
            },
            &plan(),
            &cells,
            &Grading::default(),
        )
    }

    #[test]
    fn markdown_report() {
        insta::assert_snapshot!(markdown::render(&report()));
    }

    #[test]
    fn json_report() {
        let mut report = report();
        report.tool.version = "[version]".into();
        insta::assert_json_snapshot!(report);
    }

    /// A pairwise judgement as the judge stores it: its detail is `judge::PairwiseJudgement`,
    /// read from JSON so that the shape is the judge's own; `first` and `second` are what each
    /// order's call parsed (`A`: the answer shown first won).
    fn judged(
        task: &str,
        judge: &str,
        (a, b): (&str, &str),
        (first, second): (&str, &str),
        verdict: &str,
    ) -> JudgementRecord {
        let call = |parsed: &str| {
            serde_json::json!({
                "prompt": "builtin:pairwise.md",
                "output": format!("Better. [[{parsed}]]"),
                "parsed": parsed,
                "error": null,
                "cached": false,
            })
        };
        let judgement: crate::judge::PairwiseJudgement =
            serde_json::from_value(serde_json::json!({
                "model_a": a,
                "model_b": b,
                "verdict": verdict,
                "first": call(first),
                "second": call(second),
                "explanation": format!("A then B: [[{first}]]; B then A: [[{second}]]"),
            }))
            .expect("the judge's own shape");
        judgement.to_record(task, judge)
    }

    fn vote(task: &str, (a, b): (&str, &str), winner: Winner, source: VoteSource) -> VoteRecord {
        VoteRecord {
            run_id: Some(7),
            task_id: Some(task.into()),
            category: None,
            model_a: a.into(),
            model_b: b.into(),
            winner,
            source,
            voter: None,
            judge: None,
        }
    }

    /// Two judges over the snapshot suite: `gpt-4o-mini` (a contestant) and `judge-2`, with votes.
    fn measured_report() -> Report {
        measured_report_with(|_| None)
    }

    /// The judged run of `measured_report`, each answer with the usage `usage(answer)` gives.
    fn measured_report_with(usage: fn(&str) -> Option<(u64, u64)>) -> Report {
        let (gpt, local) = ("gpt-4o-mini", "local");
        let answer =
            |task: &str, model: &str, text: &str| ok(task, model, text, usage(text), false);
        let cells = vec![
            answer("sunrise", gpt, "one two three four"),
            answer("sunrise", local, "one two"),
            answer("fibonacci", gpt, "a b c"),
            answer("fibonacci", local, "a b c d e f"),
            answer("photo", gpt, "A cat."),
            answer("photo", local, "A cat, sleeping."),
        ];
        let words = |model: &str, value: f64| ScoreRecord {
            task_id: "sunrise".into(),
            model_id: model.into(),
            sample: 0,
            scorer: "style.words".into(),
            value: Some(value),
            passed: None,
            explanation: String::new(),
        };
        let mut unreadable = judged("photo", "judge-2", (gpt, local), ("A", "B"), "model_b");
        unreadable.detail = serde_json::json!({ "explanation": "stored by an older versus" });
        let grading = Grading {
            scores: vec![words(gpt, 10.0), words(local, 2.0)],
            judgements: vec![
                // The answer shown first won in both orders: inconsistent.
                judged("sunrise", gpt, (gpt, local), ("A", "A"), "inconsistent"),
                judged("fibonacci", gpt, (gpt, local), ("A", "B"), "model_a"),
                judged("photo", gpt, (gpt, local), ("A", "B"), "model_a"),
                judged("sunrise", "judge-2", (gpt, local), ("A", "B"), "model_a"),
                unreadable,
            ],
            votes: vec![
                vote("sunrise", (local, gpt), Winner::ModelB, VoteSource::Human),
                vote(
                    "fibonacci",
                    (gpt, local),
                    Winner::ModelA,
                    VoteSource::Import,
                ),
                vote("photo", (gpt, local), Winner::ModelB, VoteSource::Human),
            ],
        };
        let mut run = report().run;
        run.id = 7;
        assemble(run, &plan(), &cells, &grading)
    }

    fn close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("a value");
        assert!(
            (actual - expected).abs() < 1e-12,
            "{actual} is not {expected}"
        );
    }

    #[test]
    fn battles_are_also_rated_with_style_control() {
        // Token counts as the server would report them: one per word here.
        let report = measured_report_with(|text| Some((3, text.split_whitespace().count() as u64)));
        let controlled = report
            .style_controlled
            .as_ref()
            .expect("judged answers with token counts are rated with style control");
        let features: Vec<&str> = controlled
            .style_coefficients
            .iter()
            .map(|c| c.feature.as_str())
            .collect();
        assert_eq!(features, ["length", "headers", "list_items", "bold"]);
        assert!(controlled.battles > 0 && !controlled.ratings.is_empty());
        let line = style_control_line(&report).expect("a line for the reports");
        assert!(
            line.starts_with("Style-controlled (Chatbot Arena's method"),
            "{line}"
        );
        assert!(markdown::render(&report).contains("Style-controlled"));
        assert!(html::render(&report).contains("data-testid=\"style-control\""));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["style_controlled"]["style_coefficients"][0]["feature"],
            "length"
        );
        // Without usage there is nothing to control for, and the reports say nothing.
        assert_eq!(super::tests::report().style_controlled, None);
    }

    #[test]
    fn the_judge_is_measured() {
        let report = measured_report();
        let [own, other] = &report.judge_measures[..] else {
            panic!("two judges: {:?}", report.judge_measures);
        };
        assert_eq!(own.judge, "gpt-4o-mini");
        let c = &own.consistency;
        assert_eq!(
            (c.pairs, c.consistent, c.inconsistent, c.errors),
            (3, 2, 1, 0)
        );
        // Orders: sunrise A, A; fibonacci A, B; photo A, B: the first shown won 4, lost 2.
        let p = &own.position;
        assert_eq!((p.first_won, p.first_lost, p.ties, p.unknown), (4, 2, 0, 0));
        assert_eq!(p.test.n, 6);
        close(p.test.share, 4.0 / 6.0);
        close(p.test.p_value, 44.0 / 64.0); // 2·(1 + 6 + 15)/2⁶, binomtest(4, 6)
                                            // Decided: fibonacci (3 words beat 6) and photo (2 beat 3): the shorter won both.
        let l = &own.length;
        assert_eq!((l.battles, l.longer_won, l.shorter_won), (2, 0, 2));
        close(l.test.share, 0.0);
        close(l.test.p_value, 0.5);
        assert_eq!(l.correlation, None, "one outcome only");
        // By itself: a tie and two wins; by judge-2: a win and a loss; by votes: two wins and a
        // loss. Others together: 3 of 5.
        let s = own
            .self_preference
            .as_ref()
            .expect("gpt-4o-mini is a contestant");
        close(s.by_self.win_rate, 2.5 / 3.0);
        close(s.by_other_judges.win_rate, 0.5);
        close(s.by_votes.win_rate, 2.0 / 3.0);
        close(s.difference, 2.5 / 3.0 - 0.6);
        // Verdict against vote: sunrise tie / gpt wins, fibonacci gpt / gpt, photo gpt / local.
        // Judge A2 T1, votes A2 B1: κ = (3·1 − 4)/(9 − 4).
        let h = &own.human_agreement;
        assert_eq!((h.n, h.agreements), (3, 1));
        close(h.raw, 1.0 / 3.0);
        close(h.kappa, -0.2);

        assert_eq!(other.judge, "judge-2");
        // An unreadable detail leaves both its orders unknown; nothing panics.
        let p = &other.position;
        assert_eq!((p.first_won, p.first_lost, p.unknown), (1, 1, 2));
        close(p.test.p_value, 1.0);
        // Sunrise by textstat's words (10 beat 2), photo by the text's (3 beat 2): longer won.
        let l = &other.length;
        assert_eq!((l.battles, l.longer_won, l.shorter_won), (2, 2, 0));
        close(l.test.p_value, 0.5);
        close(l.correlation, 1.0);
        assert_eq!(other.self_preference, None);
        assert_eq!(
            (other.human_agreement.n, other.human_agreement.agreements),
            (2, 2)
        );
        close(other.human_agreement.kappa, 1.0);

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["judge_measures"][0]["position"]["test"]["n"], 6);
        assert_eq!(
            json["judge_measures"][1]["self_preference"],
            serde_json::Value::Null
        );
        let markdown = markdown::render(&report);
        assert!(markdown.contains("\nJudge, measured (gpt-4o-mini):\n\n- Position: the answer shown first won 4 of 6 decided single-order verdicts (67%); sign test against ½: p = 0.688, n = 6."), "{markdown}");
        assert!(
            markdown.contains("- Length: the longer answer (in words) won 0 of 2 decided battles"),
            "{markdown}"
        );
        assert!(markdown.contains("- Self-preference: gpt-4o-mini won 83% of 3 battles as judged by itself, against 50% of 2 battles as judged by the other judges and 67% of 3 battles in votes (+23 points against"), "{markdown}");
        assert!(markdown.contains("- Agreement with human votes on the same task and pair: 1 of 3 (33%); Cohen's kappa -0.20 over a wins / b wins / tie, n = 3."), "{markdown}");
        assert!(
            markdown.contains("- Self-preference: judge-2 is not one of the models compared"),
            "{markdown}"
        );
        assert!(markdown.contains("- Position: the answer shown first won 1 of 2 decided single-order verdicts (50%) (2 unread verdicts not counted); sign test against ½: p = 1.000, n = 2."), "{markdown}");
        let page = html::render(&report);
        assert_eq!(page.matches("data-testid=\"judge-measures\"").count(), 2);
        assert!(page.contains("data-judge=\"judge-2\""));
    }

    #[test]
    fn without_a_judge_nothing_is_measured() {
        let report = report();
        assert!(report.judge_measures.is_empty());
        assert!(!markdown::render(&report).contains("Judge, measured"));
    }

    #[test]
    fn summary_counts_and_sums() {
        let report = report();
        let gpt = &report.summary[0];
        assert_eq!((gpt.ok, gpt.failed, gpt.unsupported), (3, 0, 0));
        assert_eq!(gpt.completion_tokens, 115);
        assert_eq!(gpt.answers_with_usage, 3);
        // 1030 input tokens at $0.15/M and 115 output tokens at $0.60/M.
        let cost = gpt.cost_usd.unwrap();
        assert!((cost - (1030.0 * 0.15 + 115.0 * 0.60) / 1e6).abs() < 1e-15);
        let local = &report.summary[1];
        assert_eq!((local.ok, local.failed, local.unsupported), (1, 1, 1));
        assert_eq!(local.answers_with_usage, 0);
        assert_eq!(local.cost_usd, None, "no price, no cost");
        // Streamed: 10 tokens after the first in one second.
        assert_eq!(report.results[0].tokens_per_second, Some(10.0));
    }
}
