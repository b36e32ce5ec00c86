//! Repeated samples, measured: per cell (task x model) how many samples answered, passed and
//! differed; per model how often the samples were identical, how far one task's scores spread
//! across its samples (the within-task variance, which decides whether more samples or more
//! tasks are worth paying for), and pass@k as HumanEval defines it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use versus_core::significance::pass_at_k;
use versus_core::stats::mean;
use versus_core::RunPlan;

use super::{ModelEntry, ResultEntry, ScoreEntry};

/// Everything the reports say about repeated samples.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SampleReport {
    pub models: Vec<ModelSamples>,
    /// One entry per task and model that was asked more than once.
    pub cells: Vec<CellSamples>,
}

/// One model's samples over the whole run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ModelSamples {
    pub model: String,
    /// The most samples any task was asked of this model.
    pub samples: u32,
    /// Tasks with at least two answered samples.
    pub tasks_repeated: usize,
    /// Of those, the tasks whose answered samples are all the same text.
    pub tasks_identical: usize,
    /// The mean number of different answers per repeated task.
    pub mean_distinct_answers: Option<f64>,
    /// Within-task spread of each measure that has at least one task with two scored samples.
    pub spread: Vec<Spread>,
    /// pass@k for each k the suite asks for (`pass_at`), over the tasks that ask for it.
    pub pass_at: Vec<PassAtK>,
}

/// How far one measure moves between samples of the same task.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Spread {
    /// The scorer (`checks`, `rougeL`, `style.words`, ...) or `latency_ms`.
    pub measure: String,
    /// Tasks with at least two samples that have this measure.
    pub tasks: usize,
    /// The mean over those tasks of the unbiased sample variance across the task's samples.
    pub within_task_variance: f64,
    /// Its square root: how far one sample typically lies from its task's mean.
    pub within_task_sd: f64,
    /// The variance across tasks of the per-task means (unbiased), for comparison; `None` with
    /// fewer than two tasks. A within-task variance that is small beside it says that more
    /// tasks, not more samples, will sharpen a comparison.
    pub between_task_variance: Option<f64>,
}

/// pass@k over the tasks that ask for it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PassAtK {
    pub k: u32,
    /// The mean over tasks of the unbiased estimator 1 − C(n−c, k)/C(n, k); `None` when no
    /// task has k checked samples.
    pub value: Option<f64>,
    /// Tasks averaged.
    pub tasks: usize,
    /// Tasks that ask for this k but had fewer than k checked samples, left out.
    pub too_few_samples: usize,
}

/// One task x model asked more than once.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CellSamples {
    pub task: String,
    pub model: String,
    pub samples: u32,
    /// Samples that returned an answer.
    pub answered: u32,
    /// Different answer texts among them.
    pub distinct_answers: u32,
    /// Samples whose checks were scored, and how many of them passed; `None` without checks.
    pub checks_passed: Option<u32>,
    pub checks_scored: u32,
    /// The mean weighted check score over the scored samples.
    pub checks_mean: Option<f64>,
}

/// The `checks` scores of each (task, model), in sample order.
type CellScores<'a> = HashMap<(&'a str, &'a str), Vec<&'a ScoreEntry>>;

/// A line above the samples table in every format: what its figures are.
pub const SAMPLES_NOTE: &str = "Each task's value in the criteria table is the mean over its samples; the spread is the within-task standard deviation across samples (mean of the per-task variances), beside the spread of the task means.";

/// The measures whose spread is reported, in this order: the ones a verdict reads.
const SPREAD_MEASURES: &[&str] = &[
    "checks",
    "rougeL",
    "bleu",
    "style.words",
    "length.tokens",
    "latency_ms",
];

/// A human name for a spread measure, for the rendered reports.
pub fn measure_label(measure: &str) -> &str {
    match measure {
        "checks" => "weighted check score",
        "rougeL" => "ROUGE-L",
        "bleu" => "BLEU",
        "style.words" => "words",
        "length.tokens" => "output tokens",
        "latency_ms" => "latency (ms)",
        other => other,
    }
}

/// The samples section of a report; `None` when every task was asked once and no task asks for
/// pass@k.
pub fn sample_report(
    plan: &RunPlan,
    models: &[ModelEntry],
    results: &[ResultEntry],
    scores: &[ScoreEntry],
) -> Option<SampleReport> {
    let repeated = results.iter().any(|r| r.sample > 0);
    let wants_pass_at = plan
        .suite
        .tasks
        .iter()
        .any(|task| !plan.pass_at_for(task).is_empty());
    if !repeated && !wants_pass_at {
        return None;
    }
    // Indexed once by (task, model): a 10,000-task run must not scan every answer per cell.
    let mut answers_of: HashMap<(&str, &str), Vec<&ResultEntry>> = HashMap::new();
    for result in results {
        answers_of
            .entry((result.task.as_str(), result.model.as_str()))
            .or_default()
            .push(result);
    }
    let mut checks_of: CellScores<'_> = HashMap::new();
    for score in scores.iter().filter(|s| s.scorer == "checks") {
        checks_of
            .entry((score.task.as_str(), score.model.as_str()))
            .or_default()
            .push(score);
    }
    let mut cells = Vec::new();
    let mut per_model = Vec::new();
    for model in models {
        let mut identical = 0;
        let mut distinct_counts = Vec::new();
        let mut samples = 0;
        for task in &plan.suite.tasks {
            let cell = (task.id.as_str(), model.id.as_str());
            let mine = answers_of.get(&cell).map_or(&[][..], Vec::as_slice);
            let count = mine.len() as u32;
            samples = samples.max(count);
            let answers: Vec<&str> = mine.iter().filter_map(|r| r.output.as_deref()).collect();
            let distinct = answers.iter().collect::<BTreeSet<_>>().len() as u32;
            if answers.len() >= 2 {
                distinct_counts.push(f64::from(distinct));
                if distinct == 1 {
                    identical += 1;
                }
            }
            if count > 1 {
                let checks = checks_of.get(&cell).map_or(&[][..], Vec::as_slice);
                let passed: Vec<bool> = checks.iter().filter_map(|s| s.passed).collect();
                let values: Vec<f64> = checks.iter().filter_map(|s| s.value).collect();
                cells.push(CellSamples {
                    task: task.id.clone(),
                    model: model.id.clone(),
                    samples: count,
                    answered: answers.len() as u32,
                    distinct_answers: distinct,
                    checks_passed: (!passed.is_empty())
                        .then(|| passed.iter().filter(|p| **p).count() as u32),
                    checks_scored: passed.len() as u32,
                    checks_mean: mean(&values),
                });
            }
        }
        per_model.push(ModelSamples {
            model: model.id.clone(),
            samples,
            tasks_repeated: distinct_counts.len(),
            tasks_identical: identical,
            mean_distinct_answers: mean(&distinct_counts),
            spread: SPREAD_MEASURES
                .iter()
                .filter_map(|measure| spread(&model.id, measure, results, scores))
                .collect(),
            pass_at: pass_at(plan, &model.id, &checks_of),
        });
    }
    Some(SampleReport {
        models: per_model,
        cells,
    })
}

/// Each task's values of one measure for one model, by task, in sample order.
fn values_by_task(
    model: &str,
    measure: &str,
    results: &[ResultEntry],
    scores: &[ScoreEntry],
) -> BTreeMap<String, Vec<f64>> {
    let mut by_task: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    if measure == "latency_ms" {
        // Cached answers were not timed in this run.
        for r in results
            .iter()
            .filter(|r| r.model == model && r.status == "ok" && !r.cached)
        {
            if let Some(latency) = r.latency_ms {
                by_task.entry(r.task.clone()).or_default().push(latency);
            }
        }
    } else {
        for s in scores
            .iter()
            .filter(|s| s.model == model && s.scorer == measure)
        {
            if let Some(value) = s.value.filter(|v| v.is_finite()) {
                by_task.entry(s.task.clone()).or_default().push(value);
            }
        }
    }
    by_task
}

fn spread(
    model: &str,
    measure: &str,
    results: &[ResultEntry],
    scores: &[ScoreEntry],
) -> Option<Spread> {
    let by_task = values_by_task(model, measure, results, scores);
    let within: Vec<f64> = by_task
        .values()
        .filter_map(|values| sample_variance(values))
        .collect();
    let within_task_variance = mean(&within)?;
    let means: Vec<f64> = by_task.values().filter_map(|values| mean(values)).collect();
    Some(Spread {
        measure: measure.to_string(),
        tasks: within.len(),
        within_task_variance,
        within_task_sd: within_task_variance.sqrt(),
        between_task_variance: sample_variance(&means),
    })
}

/// The unbiased variance (n − 1 in the denominator); `None` for fewer than two values.
fn sample_variance(values: &[f64]) -> Option<f64> {
    if values.len() < 2 {
        return None;
    }
    let centre = mean(values)?;
    let squares: f64 = values.iter().map(|v| (v - centre).powi(2)).sum();
    Some(squares / (values.len() - 1) as f64)
}

/// pass@k per k: for each task that asks for k, n = its samples whose checks were scored and
/// c = those that passed; the estimator is averaged over the tasks with n ≥ k, as HumanEval
/// averages over problems.
fn pass_at(plan: &RunPlan, model: &str, checks_of: &CellScores<'_>) -> Vec<PassAtK> {
    let mut per_k: BTreeMap<u32, (Vec<f64>, usize)> = BTreeMap::new();
    for task in &plan.suite.tasks {
        let ks = plan.pass_at_for(task);
        if ks.is_empty() {
            continue;
        }
        let passed: Vec<bool> = checks_of
            .get(&(task.id.as_str(), model))
            .into_iter()
            .flatten()
            .filter_map(|s| s.passed)
            .collect();
        let n = passed.len();
        let c = passed.iter().filter(|p| **p).count();
        for &k in ks {
            let entry = per_k.entry(k).or_default();
            match pass_at_k(n, c, k as usize) {
                Some(estimate) => entry.0.push(estimate),
                None => entry.1 += 1,
            }
        }
    }
    per_k
        .into_iter()
        .map(|(k, (estimates, too_few_samples))| PassAtK {
            k,
            value: mean(&estimates),
            tasks: estimates.len(),
            too_few_samples,
        })
        .collect()
}

/// One line per model on how alike its samples were, for every report format.
pub fn identical_lines(report: &SampleReport) -> Vec<String> {
    report
        .models
        .iter()
        .filter(|m| m.tasks_repeated > 0)
        .map(|m| {
            let mut line = format!(
                "{}: the samples were identical on {} of {} tasks asked more than once",
                m.model, m.tasks_identical, m.tasks_repeated
            );
            if let Some(distinct) = m.mean_distinct_answers {
                line.push_str(&format!(
                    " ({distinct:.1} different answers per task on average)"
                ));
            }
            if m.tasks_identical == m.tasks_repeated {
                line.push_str(
                    "; repeating added nothing: with greedy decoding (temperature 0) every sample is the same answer, so set a temperature to measure how answers vary",
                );
            }
            line.push('.');
            line
        })
        .collect()
}

/// "pass@1 0.700 (10 tasks), pass@5 0.910 (10 tasks; 2 with fewer than 5 samples left out)".
pub fn pass_at_text(pass_at: &[PassAtK]) -> String {
    pass_at
        .iter()
        .map(|p| {
            let value = p.value.map_or("–".to_string(), |v| format!("{v:.3}"));
            let mut text = format!("pass@{} {value} ({} tasks", p.k, p.tasks);
            if p.too_few_samples > 0 {
                text.push_str(&format!(
                    "; {} with fewer than {} checked samples left out",
                    p.too_few_samples, p.k
                ));
            }
            text.push(')');
            text
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// "words: within-task SD 3.2 over 40 tasks (between tasks 12.5)".
pub fn spread_text(spread: &Spread) -> String {
    let between = spread.between_task_variance.map_or(String::new(), |v| {
        format!(", between-task SD {:.3}", v.sqrt())
    });
    format!(
        "{}: within-task SD {:.3} over {} tasks{between}",
        measure_label(&spread.measure),
        spread.within_task_sd,
        spread.tasks
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_variance_divides_by_n_minus_one() {
        assert_eq!(sample_variance(&[1.0]), None);
        assert_eq!(sample_variance(&[1.0, 3.0]), Some(2.0));
        assert_eq!(sample_variance(&[2.0, 2.0, 2.0]), Some(0.0));
    }
}
