//! Scoring stored answers without calling the contestant models again: the suite's checks (code
//! run in the sandbox), reference metrics, style statistics and, when a judge is configured,
//! pairwise and single judgements. Scores are stored per answer; expensive evaluations (code
//! runs, judge calls) are cached in the store so re-scoring repeats none of them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};
use versus_core::checks::{metric_result, weighted_score, Check, CheckKind, CheckResult};
use versus_core::fingerprint::sha256_json;
use versus_core::metrics::{bleu, rouge, style};
use versus_core::Task;
use versus_store::{CellStatus, RunId, ScoreRecord, Store};

use crate::judge::Judge;
use crate::models::KeyPrompter;
use versus_core::{JudgeVerdict, RunPlan};

/// How to score.
#[derive(Debug, Clone, Default)]
pub struct ScoreOptions {
    /// The judge model (`--judge`), overriding the suite's `[judge]`.
    pub judge: Option<String>,
    /// The API root (`--base-url`) of a `--judge` given as a spec.
    pub judge_base_url: Option<String>,
    /// Skip the judge even if the suite names one.
    pub no_judge: bool,
    /// Run generated code without bubblewrap (resource limits only).
    pub allow_unsandboxed: bool,
    /// The suite's folder, for `[judge] prompts`.
    pub suite_dir: Option<PathBuf>,
    pub quiet: bool,
    /// The models as the run that just ended called them, with their base URLs whole; the
    /// stored plan has them redacted. Empty for `versus score`.
    pub live_models: Vec<versus_core::ModelConfig>,
    /// Where the judge's key may go.
    pub key_policy: crate::models::KeyPolicy,
    /// The suite may name a prompts folder outside its own (`--allow-outside-files`).
    pub allow_outside_files: bool,
}

/// What a scoring pass did.
#[derive(Debug, Default)]
pub struct ScoreSummary {
    pub answers: usize,
    pub scores: usize,
    pub checks_failed: usize,
    pub code_not_run: usize,
    pub judgements: usize,
    pub judge_errors: usize,
    pub warnings: Vec<String>,
}

/// Reads one figure from an answer's style statistics.
type StyleReader = fn(&style::StyleStats) -> f64;

/// The scorer names style statistics are stored under, with how each is read from the stats.
const STYLE_SCORERS: &[(&str, StyleReader)] = &[
    ("style.words", |s| s.words as f64),
    ("style.sentences", |s| s.sentences as f64),
    ("style.flesch_reading_ease", |s| s.flesch_reading_ease),
    ("style.flesch_kincaid_grade", |s| s.flesch_kincaid_grade),
    ("style.type_token_ratio", |s| s.type_token_ratio),
    ("style.mtld", |s| s.mtld),
    ("style.headers", |s| s.markdown.headers as f64),
    ("style.list_items", |s| {
        (s.markdown.unordered_list_items + s.markdown.ordered_list_items) as f64
    }),
    ("style.bold", |s| s.markdown.bold_spans as f64),
    ("style.code_blocks", |s| s.markdown.code_blocks as f64),
    ("style.tables", |s| s.markdown.tables as f64),
    ("style.contractions", |s| s.formality.contractions as f64),
    ("style.second_person", |s| s.formality.second_person as f64),
    ("style.exclamations", |s| {
        s.formality.exclamation_marks as f64
    }),
    ("style.questions", |s| s.formality.questions as f64),
];

/// Scores every answer of a run, then asks the judge if there is one.
pub async fn score_run(
    store: &mut Store,
    run: RunId,
    options: &ScoreOptions,
) -> anyhow::Result<ScoreSummary> {
    let record = store.run(run)?;
    let mut plan = record.plan;
    for model in &mut plan.suite.models {
        if let Some(live) = options.live_models.iter().find(|m| m.id == model.id) {
            model.base_url.clone_from(&live.base_url);
            model.base_urls.clone_from(&live.base_urls);
        }
    }
    let cells = store.cells(run)?;
    let mut summary = ScoreSummary::default();
    let sandbox = versus_sandbox::sandbox_available();
    let mut answers: BTreeMap<(String, String), String> = BTreeMap::new();

    for cell in &cells {
        let (CellStatus::Ok, Some(stored)) = (cell.status, &cell.completion) else {
            continue;
        };
        let Some(task) = plan.suite.tasks.iter().find(|t| t.id == cell.task_id) else {
            continue;
        };
        let answer = &stored.completion.text;
        let completion_tokens = stored.completion.usage.map(|u| u.completion_tokens);
        let mut scores = Vec::new();

        let mut weighted: Vec<(f64, CheckResult)> = Vec::new();
        for (index, check) in task.checks.iter().enumerate() {
            let outcome = evaluate_check(
                store,
                check,
                task,
                answer,
                completion_tokens,
                &sandbox,
                options,
            )?;
            let scorer = format!("check.{}:{}", index + 1, check.label());
            match outcome {
                Some(result) => {
                    if !result.passed {
                        summary.checks_failed += 1;
                    }
                    scores.push(ScoreRecord {
                        task_id: task.id.clone(),
                        model_id: cell.model_id.clone(),
                        sample: cell.sample,
                        scorer,
                        value: Some(result.value),
                        passed: Some(result.passed),
                        explanation: result.explanation.clone(),
                    });
                    weighted.push((check.weight, result));
                }
                None => {
                    summary.code_not_run += 1;
                    scores.push(ScoreRecord {
                        task_id: task.id.clone(),
                        model_id: cell.model_id.clone(),
                        sample: cell.sample,
                        scorer,
                        value: None,
                        passed: None,
                        explanation: not_run_reason(&sandbox),
                    });
                }
            }
        }
        let pairs: Vec<(f64, &CheckResult)> = weighted.iter().map(|(w, r)| (*w, r)).collect();
        if let Some((value, passed)) = weighted_score(&pairs, task.pass_threshold) {
            scores.push(ScoreRecord {
                task_id: task.id.clone(),
                model_id: cell.model_id.clone(),
                sample: cell.sample,
                scorer: "checks".into(),
                value: Some(value),
                passed: Some(passed),
                explanation: format!(
                    "{:.0}% of the weighted checks passed (pass mark {:.0}%)",
                    value * 100.0,
                    task.pass_threshold * 100.0
                ),
            });
        }

        if let Some(reference) = &task.reference {
            for (scorer, value, explanation) in reference_metrics(reference, answer) {
                scores.push(ScoreRecord {
                    task_id: task.id.clone(),
                    model_id: cell.model_id.clone(),
                    sample: cell.sample,
                    scorer,
                    value: Some(value),
                    passed: None,
                    explanation,
                });
            }
        }
        let stats = style::style_stats(answer);
        for (scorer, read) in STYLE_SCORERS {
            scores.push(ScoreRecord {
                task_id: task.id.clone(),
                model_id: cell.model_id.clone(),
                sample: cell.sample,
                scorer: (*scorer).to_string(),
                value: Some(read(&stats)),
                passed: None,
                explanation: String::new(),
            });
        }
        if let Some(tokens) = completion_tokens {
            scores.push(ScoreRecord {
                task_id: task.id.clone(),
                model_id: cell.model_id.clone(),
                sample: cell.sample,
                scorer: "length.tokens".into(),
                value: Some(tokens as f64),
                passed: None,
                explanation: "as the model reported".into(),
            });
        }
        summary.answers += 1;
        summary.scores += scores.len();
        store.replace_scores(run, &cell.id(), &scores)?;
        // The judge reads each model's first sample: judging every pair of samples would
        // multiply its cost by the samples squared, and ratings need one answer per battle.
        if cell.sample == 0 {
            answers.insert((task.id.clone(), cell.model_id.clone()), answer.clone());
        }
    }
    if summary.code_not_run > 0 {
        summary.warnings.push(not_run_reason(&sandbox));
    }

    // `--base-url` reaches a judge named on the command line, as it reaches `--model`.
    let judge_model = if options.no_judge {
        None
    } else if let Some(model) = &options.judge {
        Some((model.clone(), options.judge_base_url.as_deref()))
    } else {
        plan.suite.judge.as_ref().map(|j| (j.model.clone(), None))
    };
    if let Some((judge_model, base_url)) = judge_model {
        judge_run(
            store,
            run,
            &plan,
            (&judge_model, base_url),
            &answers,
            options,
            &mut summary,
        )
        .await?;
    }
    Ok(summary)
}

async fn judge_run(
    store: &mut Store,
    run: RunId,
    plan: &RunPlan,
    (judge_model, base_url): (&str, Option<&str>),
    answers: &BTreeMap<(String, String), String>,
    options: &ScoreOptions,
    summary: &mut ScoreSummary,
) -> anyhow::Result<()> {
    let settings = plan.suite.judge.clone();
    let base_dir = options
        .suite_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("."));
    let prompts_dir = settings
        .as_ref()
        .and_then(|j| j.prompts.as_ref())
        .map(|dir| {
            crate::settings::inside_suite_folder(&base_dir, dir, options.allow_outside_files)
                .map_err(|reason| anyhow::anyhow!("[judge] prompts: {reason}"))
        })
        .transpose()?;
    let mut keys = KeyPrompter::new(!options.quiet).with_policy(options.key_policy.clone());
    let judge = Judge::new(
        judge_model,
        base_url,
        &plan.suite,
        prompts_dir.as_deref(),
        &mut keys,
    )
    .await
    .with_context(|| format!("cannot set up the judge `{judge_model}`"))?;
    let (pairwise, single) = settings
        .as_ref()
        .map(|j| (j.pairwise, j.single))
        .unwrap_or((true, true));
    let model_ids: Vec<&str> = plan.suite.models.iter().map(|m| m.id.as_str()).collect();
    for task in &plan.suite.tasks {
        let answered: Vec<(&str, &String)> = model_ids
            .iter()
            .filter_map(|m| {
                answers
                    .get(&(task.id.clone(), m.to_string()))
                    .map(|a| (*m, a))
            })
            .collect();
        if pairwise {
            for (i, (model_a, answer_a)) in answered.iter().enumerate() {
                for (model_b, answer_b) in answered.iter().skip(i + 1) {
                    let judgement = judge
                        .pairwise(store, task, model_a, answer_a, model_b, answer_b)
                        .await;
                    let record = judgement.to_record(&task.id, judge.label());
                    if record.verdict == JudgeVerdict::Error {
                        summary.judge_errors += 1;
                    }
                    store.record_judgement(run, &record)?;
                    summary.judgements += 1;
                }
            }
        }
        if single {
            for (model, answer) in &answered {
                let judgement = judge.single(store, task, model, answer).await;
                let record = judgement.to_record(&task.id, model, judge.label());
                if record.verdict == JudgeVerdict::Error {
                    summary.judge_errors += 1;
                }
                store.record_judgement(run, &record)?;
                summary.judgements += 1;
            }
        }
    }
    Ok(())
}

/// ROUGE (F-measure, with stemming, as rouge-score) and sentence BLEU (as sacrebleu) against the
/// task's reference.
fn reference_metrics(reference: &str, answer: &str) -> Vec<(String, f64, String)> {
    let rouge = rouge::rouge(reference, answer, true);
    let bleu = bleu::sentence_bleu(answer, &[reference]);
    let described = |name: &str, score: &rouge::RougeScore| {
        (
            name.to_string(),
            score.fmeasure,
            format!(
                "F {:.4} (precision {:.4}, recall {:.4})",
                score.fmeasure, score.precision, score.recall
            ),
        )
    };
    vec![
        described("rouge1", &rouge.rouge1),
        described("rouge2", &rouge.rouge2),
        described("rougeL", &rouge.rouge_l),
        described("rougeLsum", &rouge.rouge_lsum),
        (
            "bleu".into(),
            bleu.score,
            format!("BLEU {:.2} (brevity penalty {:.3})", bleu.score, bleu.bp),
        ),
    ]
}

/// A metric check's value: a reference metric (needs a reference) or a style statistic.
fn metric_value(metric: &str, task: &Task, answer: &str) -> Result<f64, String> {
    let reference = || {
        task.reference
            .as_deref()
            .ok_or_else(|| format!("`{metric}` needs the task's `reference`"))
    };
    let stats = || style::style_stats(answer);
    Ok(match metric {
        "rouge1" => rouge::rouge(reference()?, answer, true).rouge1.fmeasure,
        "rouge2" => rouge::rouge(reference()?, answer, true).rouge2.fmeasure,
        "rougeL" => rouge::rouge(reference()?, answer, true).rouge_l.fmeasure,
        "rougeLsum" => rouge::rouge(reference()?, answer, true).rouge_lsum.fmeasure,
        "bleu" => bleu::sentence_bleu(answer, &[reference()?]).score,
        "flesch_reading_ease" => stats().flesch_reading_ease,
        "flesch_kincaid_grade" => stats().flesch_kincaid_grade,
        "words" => stats().words as f64,
        "sentences" => stats().sentences as f64,
        "type_token_ratio" => stats().type_token_ratio,
        "mtld" => stats().mtld,
        other => return Err(format!("unknown metric `{other}`")),
    })
}

/// What a code run produced, cached by everything that decides it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct CodeOutcome {
    passed: bool,
    explanation: String,
}

/// Evaluates one check; `None` when it could not be run (code without a sandbox).
fn evaluate_check(
    store: &mut Store,
    check: &Check,
    task: &Task,
    answer: &str,
    completion_tokens: Option<u64>,
    sandbox: &Result<versus_sandbox::SandboxKind, versus_sandbox::SandboxError>,
    options: &ScoreOptions,
) -> anyhow::Result<Option<CheckResult>> {
    if let Some(result) = check.evaluate_text(answer, completion_tokens) {
        return Ok(Some(result));
    }
    match &check.kind {
        CheckKind::Metric { metric, min, max } => {
            Ok(Some(match metric_value(metric, task, answer) {
                Ok(value) => metric_result(metric, value, min, max),
                Err(reason) => CheckResult::fail(reason),
            }))
        }
        CheckKind::Code {
            language,
            tests,
            function,
            timeout,
        } => {
            if sandbox.is_err() && !options.allow_unsandboxed {
                return Ok(None);
            }
            let key = sha256_json(&(
                "code-check",
                // 2: a pass needs the harness's end-of-tests marker; passes cached by the
                // harness before it (which `sys.exit(0)` could fake) are not reused.
                2,
                &check.kind,
                answer,
                options.allow_unsandboxed,
            ));
            if let Some(cached) = store.lookup_evaluation(&key)? {
                if let Ok(outcome) = serde_json::from_str::<CodeOutcome>(&cached) {
                    return Ok(Some(code_result(outcome)));
                }
            }
            let outcome = run_code(
                language,
                tests,
                function.as_deref(),
                *timeout,
                answer,
                options,
            );
            store.store_evaluation(&key, "code", &serde_json::to_string(&outcome)?)?;
            Ok(Some(code_result(outcome)))
        }
        _ => Ok(None),
    }
}

fn code_result(outcome: CodeOutcome) -> CheckResult {
    if outcome.passed {
        CheckResult::pass(outcome.explanation)
    } else {
        CheckResult::fail(outcome.explanation)
    }
}

fn not_run_reason(
    sandbox: &Result<versus_sandbox::SandboxKind, versus_sandbox::SandboxError>,
) -> String {
    match sandbox {
        Err(error) => format!(
            "code checks not run: {error}; or pass --allow-unsandboxed to run model-written code with resource limits only"
        ),
        Ok(_) => "code checks not run".into(),
    }
}

/// Runs the answer's code with the task's tests in the sandbox, reporting why it failed.
fn run_code(
    language: &str,
    tests: &str,
    function: Option<&str>,
    timeout: Option<f64>,
    answer: &str,
    options: &ScoreOptions,
) -> CodeOutcome {
    let language: versus_sandbox::Language = match language.parse() {
        Ok(language) => language,
        Err(e) => {
            return CodeOutcome {
                passed: false,
                explanation: format!("{e}"),
            }
        }
    };
    let mut limits = versus_sandbox::Limits {
        allow_unsandboxed: options.allow_unsandboxed,
        ..versus_sandbox::Limits::default()
    };
    if let Some(seconds) = timeout.filter(|s| *s > 0.0) {
        limits.wall = std::time::Duration::from_secs_f64(seconds);
        limits.cpu_seconds = seconds.ceil() as u64;
    }
    // Which total memory cap applied (a cgroup, or a process limit standing in for one).
    let memory = |execution: &versus_sandbox::Execution| {
        execution
            .memory_cap
            .as_deref()
            .map(|cap| format!(" [memory: {cap}]"))
            .unwrap_or_default()
    };
    match versus_sandbox::run_answer(answer, language, tests, function, &limits) {
        Ok(execution) if execution.passed => CodeOutcome {
            passed: true,
            explanation: format!(
                "tests passed in {} ms{}",
                execution.wall_ms,
                memory(&execution)
            ),
        },
        Ok(execution) => {
            let reason = execution
                .reason
                .clone()
                .unwrap_or_else(|| "the tests failed".into());
            // The last lines of stderr usually hold the failed assertion.
            let tail: Vec<&str> = execution.stderr.lines().rev().take(3).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            let explanation = if tail.is_empty() {
                reason
            } else {
                format!("{reason}: {}", tail.join(" | "))
            };
            CodeOutcome {
                passed: false,
                explanation: format!("{explanation}{}", memory(&execution)),
            }
        }
        Err(error) => CodeOutcome {
            passed: false,
            explanation: format!("could not run the code: {error}"),
        },
    }
}
