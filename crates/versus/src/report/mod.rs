//! Reports of a run, built from the store alone: the `Report` structure (which is also the JSON
//! report, schema in docs/report-schema.md) and its Markdown and HTML renderings.

pub mod format;
pub mod html;
pub mod markdown;
pub mod verdicts;

use serde::Serialize;
use versus_core::ratings::{Battle, Rating};
use versus_core::stats::{mean, median};
use versus_core::verdict::{CriterionRow, TaskVerdict};
use versus_core::{
    ErrorKind, GenerationParams, JudgeVerdict, JudgementKind, Message, ModelMetadata, RunPlan, Task,
};
use versus_store::{
    CellRecord, CellStatus, JudgementRecord, RunId, ScoreRecord, Store, VoteRecord,
};

/// Bumped on any change a consumer of the JSON could notice; documented in docs/report-schema.md.
pub const SCHEMA_VERSION: u32 = 2;

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema_version: u32,
    pub tool: ToolInfo,
    pub run: RunInfo,
    pub models: Vec<ModelEntry>,
    pub tasks: Vec<TaskEntry>,
    pub results: Vec<ResultEntry>,
    pub summary: Vec<ModelSummary>,
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
    /// The judge's pairwise verdicts as battles (votes not included), for the per-category win
    /// rates; derived from `judgements`, so not part of the JSON.
    #[serde(skip)]
    pub judge_battles: Vec<Battle>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScoreEntry {
    pub task: String,
    pub model: String,
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
}

#[derive(Debug, Clone, Serialize)]
pub struct ResultEntry {
    pub task: String,
    pub model: String,
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
            let cell = cells
                .iter()
                .find(|c| c.task_id == task.id && c.model_id == model.id);
            results.push(result_entry(&task.id, &model.id, &model.metadata, cell));
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
    let criteria = verdicts::criteria(&evidence, &ratings);
    Report {
        scores,
        judgements,
        verdicts: task_verdicts,
        criteria,
        ratings,
        ratings_note,
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
            base_url: m.base_url.clone(),
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
    }
}

/// The report's entry for a stored score.
pub fn score_entry(record: &ScoreRecord) -> ScoreEntry {
    ScoreEntry {
        task: record.task_id.clone(),
        model: record.model_id.clone(),
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
            status: CellStatus::Ok,
            completion: Some(StoredCompletion {
                key: format!("{task}-{model}"),
                model_spec: model.into(),
                completion: Completion {
                    text: text.into(),
                    finish_reason: FinishReason::Stop,
                    usage: usage.map(|(prompt_tokens, completion_tokens)| Usage {
                        prompt_tokens,
                        completion_tokens,
                    }),
                    timings: Timings {
                        latency_ms: 1500.0,
                        ttft_ms: Some(500.0),
                    },
                    served_model: None,
                    attempts: 1,
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
