//! One section per task: its prompt, the answers side by side (each rendered through
//! `crate::render::answer_html`, with its figures, checks, reference and style scores and the
//! judge's rating), the judge's pairwise verdicts with its full outputs, and the task's verdict;
//! and the flags the page's filters read from the evidence.

use std::fmt::Write;

use versus_core::{ContentPart, Role};

use crate::render::{answer_html, escape};
use crate::report::format::{dollars, seconds, tokens_per_second, NOT_REPORTED};
use crate::report::{JudgementEntry, Report, ResultEntry, ScoreEntry, TaskEntry};

/// What the filters read about a task, written as data attributes on its section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TaskFlags {
    /// The answers disagree: the task's verdict names a winner, or the answers' check results
    /// differ (one passes what another fails, or their check scores differ).
    pub disagreement: bool,
    /// Some answer failed at least one check.
    pub failed_checks: bool,
}

pub fn task_flags(report: &Report, task: &str) -> TaskFlags {
    let has_winner = report
        .verdicts
        .iter()
        .any(|v| v.task == task && v.winner.is_some());
    let check_scores: Vec<&ScoreEntry> = report
        .scores
        .iter()
        .filter(|s| s.task == task && s.scorer == "checks")
        .collect();
    let checks_differ = check_scores.windows(2).any(|pair| {
        pair[0].passed != pair[1].passed
            || match (pair[0].value, pair[1].value) {
                (Some(a), Some(b)) => (a - b).abs() > 1e-9,
                (a, b) => a.is_some() != b.is_some(),
            }
    });
    let failed_checks = report.scores.iter().any(|s| {
        s.task == task
            && (s.scorer.starts_with("check.") || s.scorer == "checks")
            && s.passed == Some(false)
    });
    TaskFlags {
        disagreement: has_winner || checks_differ,
        failed_checks,
    }
}

/// One task: its prompt, the answers side by side, the judge's pairwise verdicts and the
/// task's verdict. `index` is the task's 0-based position (ids are `task-N`, 1-based).
pub fn task_section(report: &Report, task: &TaskEntry, index: usize) -> String {
    let mut out = String::new();
    let _ = write_task(&mut out, report, task, index);
    out
}

fn write_task(
    out: &mut String,
    report: &Report,
    task: &TaskEntry,
    index: usize,
) -> std::fmt::Result {
    let n = index + 1;
    let flags = task_flags(report, &task.id);
    let task_id = escape(&task.id);
    writeln!(
        out,
        "<section class=\"task\" id=\"task-{n}\" data-testid=\"task\" data-task=\"{task_id}\" data-category=\"{}\" data-disagreement=\"{}\" data-failed-checks=\"{}\" aria-labelledby=\"task-{n}-title\">",
        escape(&task.category),
        flags.disagreement,
        flags.failed_checks
    )?;
    write!(
        out,
        "<div class=\"task-head\"><h3 id=\"task-{n}-title\">{n}. {task_id}</h3><span class=\"chip\" data-testid=\"task-category\">{}</span>",
        escape(&task.category)
    )?;
    for tag in &task.tags {
        write!(out, "<span class=\"chip\">#{}</span>", escape(tag))?;
    }
    if flags.failed_checks {
        write!(out, "<span class=\"chip flag\">failed checks</span>")?;
    }
    writeln!(out, "</div>")?;

    write_prompt(out, task)?;
    if !task.images.is_empty() {
        // Named only: the report holds no image bytes, and a remote URL must not be loaded.
        write!(
            out,
            "<p class=\"note\" data-testid=\"task-images\">Images sent with the prompt (named, not shown): "
        )?;
        let names: Vec<String> = task
            .images
            .iter()
            .map(|i| format!("<code>{}</code>", escape(i)))
            .collect();
        writeln!(out, "{}</p>", names.join(", "))?;
    }
    if let Some(reference) = &task.reference {
        writeln!(
            out,
            "<details data-testid=\"reference\"><summary>Reference answer</summary><div class=\"plain-text\">{}</div></details>",
            escape(reference)
        )?;
    }

    let winner = report
        .verdicts
        .iter()
        .find(|v| v.task == task.id)
        .and_then(|v| v.winner.as_deref());
    writeln!(out, "<div class=\"answers\" data-testid=\"answers\">")?;
    for (model_index, result) in report.first_answers(&task.id).enumerate() {
        write_answer(
            out,
            report,
            result,
            &format!("answer-{n}-{}", model_index + 1),
            winner == Some(result.model.as_str()),
        )?;
    }
    writeln!(out, "</div>")?;
    write_pairwise(out, report, &task.id)?;
    if let Some(verdict) = report.verdicts.iter().find(|v| v.task == task.id) {
        let head = match &verdict.winner {
            Some(winner) => format!(
                "<strong>{}</strong> wins (decided by {})",
                escape(winner),
                verdict.decided_by.as_str()
            ),
            None => "tie".to_string(),
        };
        writeln!(
            out,
            "<div class=\"verdict\" data-testid=\"verdict\" data-winner=\"{}\" data-decided-by=\"{}\"><strong>Verdict:</strong> {head}\n<ul>",
            escape(verdict.winner.as_deref().unwrap_or("")),
            verdict.decided_by.as_str()
        )?;
        for reason in &verdict.why {
            writeln!(out, "<li>{}</li>", escape(reason))?;
        }
        writeln!(out, "</ul></div>")?;
    }
    writeln!(out, "</section>")
}

fn write_prompt(out: &mut String, task: &TaskEntry) -> std::fmt::Result {
    writeln!(out, "<div class=\"prompt\" data-testid=\"prompt\">")?;
    for message in &task.messages {
        let (class, label) = match message.role {
            Role::System => ("system", "System"),
            Role::User => ("user", "User"),
            Role::Assistant => ("assistant", "Assistant"),
        };
        let mut text = String::new();
        for part in &message.content {
            match part {
                ContentPart::Text { text: piece } => text.push_str(&escape(piece)),
                // An image part: its name only, never its URL as a source.
                ContentPart::Image { url, source } => {
                    let name = source.clone().unwrap_or_else(|| {
                        if url.starts_with("data:") {
                            "embedded image".to_string()
                        } else {
                            url.clone()
                        }
                    });
                    let _ = write!(text, "\n[image: <code>{}</code>]", escape(&name));
                }
            }
        }
        writeln!(
            out,
            "<div class=\"message role-{class}\" data-role=\"{class}\"><div class=\"role\">{label}</div><div class=\"message-text\">{text}</div></div>"
        )?;
    }
    writeln!(out, "</div>")
}

fn write_answer(
    out: &mut String,
    report: &Report,
    result: &ResultEntry,
    element_id: &str,
    is_winner: bool,
) -> std::fmt::Result {
    let model = escape(&result.model);
    writeln!(
        out,
        "<article class=\"answer{}\" id=\"{element_id}\" data-testid=\"answer\" data-task=\"{}\" data-model=\"{model}\" data-status=\"{}\">",
        if is_winner { " winner" } else { "" },
        escape(&result.task),
        result.status
    )?;
    if result.sample == 0 {
        write!(out, "<div class=\"answer-head\"><h4>{model}</h4>")?;
    } else {
        write!(
            out,
            "<div class=\"answer-head\"><h5 data-testid=\"sample-heading\">{model}, sample {}</h5>",
            result.sample + 1
        )?;
    }
    if is_winner {
        write!(
            out,
            "<span class=\"badge\" data-testid=\"winner\">winner</span>"
        )?;
    }
    writeln!(out, "</div>")?;
    match result.status {
        "ok" => {
            writeln!(
                out,
                "<div class=\"answer-body\" data-testid=\"answer-body\">{}</div>",
                answer_html(result.output.as_deref().unwrap_or_default())
            )?;
            write_figures(out, result)?;
        }
        "failed" => writeln!(
            out,
            "<p class=\"status failed\" data-testid=\"answer-error\">Failed after {} attempt(s): {}</p>",
            result.attempts,
            escape(result.error.as_deref().unwrap_or("unknown error"))
        )?,
        "unsupported" => writeln!(
            out,
            "<p class=\"status unsupported\" data-testid=\"answer-error\">Unsupported: {}</p>",
            escape(
                result
                    .error
                    .as_deref()
                    .unwrap_or("the model cannot take this task")
            )
        )?,
        _ => writeln!(
            out,
            "<p class=\"status pending\" data-testid=\"answer-error\">Not run yet (the run was interrupted).</p>"
        )?,
    }
    write_scores(out, report, result)?;
    if result.sample == 0 {
        write_later_samples(out, report, result, element_id)?;
    }
    writeln!(out, "</article>")
}

/// A model's later samples of a task, collapsed under the first: each with its answer, figures
/// and checks, so a reader can see how the answers varied.
fn write_later_samples(
    out: &mut String,
    report: &Report,
    first: &ResultEntry,
    element_id: &str,
) -> std::fmt::Result {
    let Some(line) = report.samples_line(&first.task, &first.model) else {
        return Ok(());
    };
    writeln!(
        out,
        "<p class=\"scores\" data-testid=\"samples-line\">{}</p>",
        escape(&line)
    )?;
    let later = report.later_samples(&first.task, &first.model);
    if later.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<details class=\"samples\" data-testid=\"later-samples\"><summary>{} more samples</summary>",
        later.len()
    )?;
    for result in later {
        write_answer(
            out,
            report,
            result,
            &format!("{element_id}-sample-{}", result.sample + 1),
            false,
        )?;
    }
    writeln!(out, "</details>")
}

/// Latency, time to first token, tokens, tokens/s, cost, and whether the answer was cached.
fn write_figures(out: &mut String, result: &ResultEntry) -> std::fmt::Result {
    let mut figures: Vec<(&str, String)> = Vec::new();
    if let Some(ms) = result.latency_ms {
        figures.push(("latency", seconds(ms)));
    }
    if let Some(ms) = result.ttft_ms {
        figures.push(("first token", seconds(ms)));
    }
    if let Some(server) = result
        .server_timings
        .as_ref()
        .and_then(crate::report::markdown::server_timings)
    {
        figures.push(("server's own timings", server));
    }
    match (result.prompt_tokens, result.completion_tokens) {
        (Some(prompt), Some(completion)) => {
            figures.push(("tokens in / out", format!("{prompt} / {completion}")))
        }
        (None, Some(completion)) => figures.push(("tokens out", completion.to_string())),
        _ => figures.push(("tokens", NOT_REPORTED.into())),
    }
    if let Some(thinking) = result.reasoning_tokens {
        figures.push(("of which thinking", thinking.to_string()));
    }
    if let Some(rate) = result.tokens_per_second {
        figures.push(("tokens/s", tokens_per_second(rate)));
    }
    if let Some(cost) = result.cost_usd {
        figures.push(("cost", dollars(cost)));
    }
    if result.finish_reason.as_deref() == Some("length") {
        figures.push(("finish", "cut at the token limit".into()));
    }
    if result.via_batch {
        figures.push(("batch", "answered through a batch API, at its price".into()));
    }
    if result.cached {
        figures.push(("cached", "yes, no call in this run".into()));
    }
    if result.attempts > 1 {
        figures.push(("attempts", result.attempts.to_string()));
    }
    writeln!(out, "<dl class=\"figures\" data-testid=\"figures\">")?;
    for (term, value) in figures {
        writeln!(out, "<div><dt>{term}</dt><dd>{}</dd></div>", escape(&value))?;
    }
    writeln!(out, "</dl>")
}

/// Check results, reference metrics, style, and the judge's rating of one answer.
fn write_scores(out: &mut String, report: &Report, result: &ResultEntry) -> std::fmt::Result {
    let (task, model) = (result.task.as_str(), result.model.as_str());
    let mine = report.scores_of(result);
    let checks: Vec<&&ScoreEntry> = mine
        .iter()
        .filter(|s| s.scorer.starts_with("check."))
        .collect();
    if !checks.is_empty() {
        writeln!(out, "<ul class=\"checks\" data-testid=\"checks\">")?;
        for check in checks {
            let label = check
                .scorer
                .split_once(':')
                .map_or(check.scorer.as_str(), |(_, l)| l);
            let (class, mark) = match check.passed {
                Some(true) => ("pass", "pass"),
                Some(false) => ("fail", "FAIL"),
                None => ("not-run", "not run"),
            };
            writeln!(
                out,
                "<li class=\"check {class}\" data-result=\"{class}\"><span class=\"mark\">{mark}</span> {}{}</li>",
                escape(label),
                if check.explanation.is_empty() {
                    String::new()
                } else {
                    format!(
                        " <span class=\"muted\">({})</span>",
                        escape(&check.explanation)
                    )
                }
            )?;
        }
        writeln!(out, "</ul>")?;
    }
    let metric = |name: &str| mine.iter().find(|s| s.scorer == name).and_then(|s| s.value);
    let metrics = crate::report::reference_metric_labels(&mine);
    if !metrics.is_empty() {
        writeln!(
            out,
            "<p class=\"scores\" data-testid=\"reference-scores\">Against the reference: {}</p>",
            escape(&metrics.join(" · "))
        )?;
    }
    if let Some(ease) = metric("style.flesch_reading_ease") {
        let mut style = Vec::new();
        if let Some(words) = metric("style.words") {
            style.push(format!("{words:.0} words"));
        }
        if let Some(sentences) = metric("style.sentences") {
            let plural = if sentences == 1.0 { "" } else { "s" };
            style.push(format!("{sentences:.0} sentence{plural}"));
        }
        style.push(format!("Flesch reading ease {ease:.1}"));
        if let Some(grade) = metric("style.flesch_kincaid_grade") {
            style.push(format!("grade {grade:.1}"));
        }
        if let Some(ttr) = metric("style.type_token_ratio") {
            style.push(format!("type-token ratio {ttr:.2}"));
        }
        writeln!(
            out,
            "<p class=\"scores\" data-testid=\"style-scores\">Style: {}</p>",
            escape(&style.join(" · "))
        )?;
    }
    // The judge reads first samples only.
    for judgement in report
        .judgements
        .iter()
        .filter(|j| result.sample == 0 && j.is_rating_of(task, model))
    {
        let head = match judgement.rating {
            Some(rating) => format!(
                "Judge ({}) rating: <strong>{rating}/10</strong>.",
                escape(&judgement.judge)
            ),
            None => format!("Judge ({}) rating failed.", escape(&judgement.judge)),
        };
        writeln!(
            out,
            "<div class=\"judge-rating\" data-testid=\"judge-rating\"><p>{head} {}</p>",
            escape(&judgement.explanation)
        )?;
        write_judge_outputs(out, judgement)?;
        writeln!(out, "</div>")?;
    }
    Ok(())
}

/// The judge's full outputs from a judgement's stored detail, collapsed; escaped like any model
/// output shown as text.
fn write_judge_outputs(out: &mut String, judgement: &JudgementEntry) -> std::fmt::Result {
    let output = |call: &str| {
        judgement
            .detail
            .get(call)
            .and_then(|c| c.get("output"))
            .and_then(|o| o.as_str())
            .filter(|o| !o.trim().is_empty())
    };
    let calls: Vec<(String, &str)> = if judgement.kind == versus_core::JudgementKind::Pairwise {
        [
            (
                format!("{} shown first", judgement.model_a),
                output("first"),
            ),
            (
                format!("{} shown first", judgement.model_b),
                output("second"),
            ),
        ]
        .into_iter()
        .filter_map(|(label, text)| Some((label, text?)))
        .collect()
    } else {
        output("call")
            .map(|text| ("rating".to_string(), text))
            .into_iter()
            .collect()
    };
    if calls.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<details data-testid=\"judge-output\"><summary>The judge's full answer{}</summary>",
        if calls.len() > 1 { "s" } else { "" }
    )?;
    for (label, text) in calls {
        writeln!(
            out,
            "<p class=\"muted\">{}</p><div class=\"plain-text\">{}</div>",
            escape(&label),
            escape(text)
        )?;
    }
    writeln!(out, "</details>")
}

fn write_pairwise(out: &mut String, report: &Report, task: &str) -> std::fmt::Result {
    let pairs: Vec<&JudgementEntry> = report
        .judgements
        .iter()
        .filter(|j| j.is_pairwise_on(task))
        .collect();
    if pairs.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<div class=\"pairwise\" data-testid=\"pairwise\"><strong>Judge, pairwise in both orders:</strong>\n<ul>"
    )?;
    for j in pairs {
        let outcome = j.outcome();
        writeln!(
            out,
            "<li data-testid=\"pairwise-verdict\" data-verdict=\"{}\">{} vs {} ({}): <strong>{}</strong>. {}",
            j.verdict.as_str(),
            escape(&j.model_a),
            escape(&j.model_b),
            escape(&j.judge),
            escape(&outcome),
            escape(&j.explanation)
        )?;
        write_judge_outputs(out, j)?;
        writeln!(out, "</li>")?;
    }
    writeln!(out, "</ul></div>")
}
