//! The Markdown report, shaped like the seed article: the models, then every task with its prompt
//! and each model's answer under its own heading with its figures, then a table of figures.

use std::fmt::Write;

use versus_core::Role;

use super::format::{
    dollars, interval, modalities, or_dash, percent, price, rating, seconds, short_hash, thousands,
    tokens_per_second, NOT_REPORTED,
};
use super::{ModelSummary, Report, ResultEntry};

pub fn render(report: &Report) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_report(&mut out, report);
    out
}

fn write_report(out: &mut String, report: &Report) -> std::fmt::Result {
    let run = &report.run;
    writeln!(out, "# versus: {}\n", run.suite)?;
    let finished = run
        .finished_at
        .as_deref()
        .map(|at| format!(", finished {at}"))
        .unwrap_or_default();
    writeln!(
        out,
        "Run {} ({}), started {}{finished}. Suite `{}` (sha256 `{}`), versus {}.\n",
        run.id,
        run.status,
        run.started_at,
        run.suite,
        short_hash(&run.suite_hash),
        run.tool_version
    )?;

    writeln!(out, "## Models\n")?;
    writeln!(
        out,
        "| Model | Spec | Architecture | Parameters | Dtype | Device | Context length | Modalities | Price in / out (USD per 1M tokens) |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|")?;
    for model in &report.models {
        let text = |value: &Option<String>| or_dash(value.as_deref().map(cell_text));
        writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | {} | {} | {} | {} |",
            cell_text(&model.id),
            model.spec,
            text(&model.metadata.architecture),
            text(&model.metadata.parameters),
            text(&model.metadata.dtype),
            text(&model.metadata.device),
            or_dash(model.metadata.context_length.map(thousands)),
            modalities(&model.metadata),
            or_dash(model.metadata.price.as_ref().map(price)),
        )?;
    }
    writeln!(out)?;

    writeln!(out, "## Tasks\n")?;
    for (index, task) in report.tasks.iter().enumerate() {
        writeln!(out, "### {}. {} ({})\n", index + 1, task.id, task.category)?;
        for message in &task.messages {
            let label = match message.role {
                Role::System => "System",
                Role::User => "User",
                Role::Assistant => "Assistant",
            };
            writeln!(out, "**{label}:**\n")?;
            writeln!(out, "{}\n", quote(&message.text_content()))?;
        }
        if !task.images.is_empty() {
            writeln!(out, "Images: {}\n", task.images.join(", "))?;
        }
        for result in report.first_answers(&task.id) {
            writeln!(out, "#### {}\n", result.model)?;
            write_answer(out, result)?;
            write_scores(out, report, result)?;
            write_later_samples(out, report, result)?;
        }
        write_task_judgements(out, report, &task.id)?;
        if let Some(verdict) = report.verdicts.iter().find(|v| v.task == task.id) {
            let head = match &verdict.winner {
                Some(winner) => format!("{winner} (decided by {})", verdict.decided_by),
                None => "tie".to_string(),
            };
            writeln!(out, "**Verdict:** {head}. {}\n", verdict.why.join("; "))?;
        }
    }

    writeln!(out, "## Figures\n")?;
    writeln!(
        out,
        "| Model | Answered | Failed | Unsupported | Mean latency | Median latency | Mean time to first token | Mean tokens/s | Input tokens | Output tokens | Cost |"
    )?;
    writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|")?;
    for summary in &report.summary {
        write_summary_row(out, summary)?;
    }
    write_criteria(out, report)?;
    write_samples(out, report)?;
    let unreported: Vec<&ModelSummary> = report
        .summary
        .iter()
        .filter(|s| s.answers_with_usage < s.ok)
        .collect();
    if !unreported.is_empty() {
        writeln!(out)?;
        for s in unreported {
            writeln!(
                out,
                "- {}: the server reported token usage for {} of {} answers; token totals and cost cover those only.",
                s.model, s.answers_with_usage, s.ok
            )?;
        }
    }
    Ok(())
}

/// Check results, reference metrics and the judge's rating of one answer.
fn write_scores(out: &mut String, report: &Report, result: &ResultEntry) -> std::fmt::Result {
    let (task, model) = (result.task.as_str(), result.model.as_str());
    let mine = report.scores_of(result);
    let checks: Vec<String> = mine
        .iter()
        .filter(|s| s.scorer.starts_with("check."))
        .map(|s| {
            let label = s
                .scorer
                .split_once(':')
                .map_or(s.scorer.as_str(), |(_, l)| l);
            let mark = match s.passed {
                Some(true) => "pass",
                Some(false) => "FAIL",
                None => "not run",
            };
            format!("{mark}: {label} ({})", s.explanation)
        })
        .collect();
    if !checks.is_empty() {
        writeln!(out, "Checks:\n")?;
        for line in checks {
            writeln!(out, "- {}", cell_text(&line))?;
        }
        writeln!(out)?;
    }
    let metric = |name: &str| mine.iter().find(|s| s.scorer == name).and_then(|s| s.value);
    let metrics = super::reference_metric_labels(&mine);
    if !metrics.is_empty() {
        writeln!(out, "*Against the reference: {}*\n", metrics.join(" · "))?;
    }
    if let Some(ease) = metric("style.flesch_reading_ease") {
        let grade = metric("style.flesch_kincaid_grade").unwrap_or_default();
        let words = metric("style.words").unwrap_or_default();
        writeln!(
            out,
            "*Style: {words:.0} words · Flesch reading ease {ease:.1} · grade {grade:.1}*\n"
        )?;
    }
    // The judge reads first samples only.
    for judgement in report
        .judgements
        .iter()
        .filter(|j| result.sample == 0 && j.is_rating_of(task, model))
    {
        match judgement.rating {
            Some(rating) => writeln!(
                out,
                "*Judge ({}) rating: {rating}/10.* {}\n",
                judgement.judge,
                cell_text(&judgement.explanation)
            )?,
            None => writeln!(
                out,
                "*Judge ({}) rating failed:* {}\n",
                judgement.judge,
                cell_text(&judgement.explanation)
            )?,
        }
    }
    Ok(())
}

/// A model's later samples of a task, collapsed (GitHub renders `<details>`; elsewhere it reads
/// as a plain block), each with its figures and checks.
fn write_later_samples(out: &mut String, report: &Report, first: &ResultEntry) -> std::fmt::Result {
    let later = report.later_samples(&first.task, &first.model);
    let Some(line) = report.samples_line(&first.task, &first.model) else {
        return Ok(());
    };
    writeln!(out, "*{}.*\n", cell_text(&line))?;
    if later.is_empty() {
        return Ok(());
    }
    writeln!(
        out,
        "<details><summary>{} more samples of {}</summary>\n",
        later.len(),
        crate::render::escape(&first.model)
    )?;
    for result in later {
        writeln!(out, "##### Sample {}\n", result.sample + 1)?;
        write_answer(out, result)?;
        write_scores(out, report, result)?;
    }
    writeln!(out, "</details>\n")
}

fn write_task_judgements(out: &mut String, report: &Report, task: &str) -> std::fmt::Result {
    let pairs: Vec<&super::JudgementEntry> = report
        .judgements
        .iter()
        .filter(|j| j.is_pairwise_on(task))
        .collect();
    if pairs.is_empty() {
        return Ok(());
    }
    writeln!(out, "Judge, pairwise in both orders:\n")?;
    for j in pairs {
        let outcome = j.outcome();
        writeln!(
            out,
            "- {} vs {} ({}): {outcome}. {}",
            j.model_a,
            j.model_b,
            j.judge,
            cell_text(&j.explanation)
        )?;
    }
    writeln!(out)
}

/// The judge's consistency across positions, then "Judge, measured": its biases and agreement,
/// each line with its n and p.
fn write_judge_summary(out: &mut String, report: &Report) -> std::fmt::Result {
    if let Some(line) = super::judge_summary(report) {
        writeln!(out, "\n{line}")?;
    }
    for (judge, lines) in super::judge_measure_lines(report) {
        writeln!(out, "\nJudge, measured ({}):\n", cell_text(&judge))?;
        for line in lines {
            writeln!(out, "- {}", cell_text(&line))?;
        }
    }
    Ok(())
}

/// "Repeated samples": per model, how alike its samples were, how far scores spread within a
/// task, and pass@k.
fn write_samples(out: &mut String, report: &Report) -> std::fmt::Result {
    let Some(samples) = &report.samples else {
        return Ok(());
    };
    writeln!(out, "\n## Repeated samples\n")?;
    writeln!(out, "{}\n", super::samples::SAMPLES_NOTE)?;
    writeln!(
        out,
        "| Model | Samples per task | Identical on | Within-task spread | pass@k |"
    )?;
    writeln!(out, "|---|---|---|---|---|")?;
    for model in &samples.models {
        let spread: Vec<String> = model
            .spread
            .iter()
            .map(super::samples::spread_text)
            .collect();
        writeln!(
            out,
            "| {} | {} | {} of {} tasks | {} | {} |",
            cell_text(&model.model),
            model.samples,
            model.tasks_identical,
            model.tasks_repeated,
            cell_text(&or_dash(Some(spread.join("; ")).filter(|t| !t.is_empty()))),
            cell_text(&or_dash(
                Some(super::samples::pass_at_text(&model.pass_at)).filter(|t| !t.is_empty())
            )),
        )?;
    }
    writeln!(out)?;
    for line in super::samples::identical_lines(samples) {
        writeln!(out, "- {}", cell_text(&line))?;
    }
    Ok(())
}

fn write_criteria(out: &mut String, report: &Report) -> std::fmt::Result {
    if report.criteria.is_empty() {
        return Ok(());
    }
    writeln!(out, "\n## Criteria\n")?;
    let header: Vec<String> = report.models.iter().map(|m| cell_text(&m.id)).collect();
    writeln!(
        out,
        "| Criterion | {} | Verdict | How sure |",
        header.join(" | ")
    )?;
    writeln!(out, "|---|{}---|---|", "---|".repeat(header.len()))?;
    for row in &report.criteria {
        let cells: Vec<String> = row.cells.iter().map(|c| cell_text(c)).collect();
        writeln!(
            out,
            "| {} | {} | {} | {} |",
            row.criterion,
            cells.join(" | "),
            cell_text(&row.verdict),
            cell_text(&row.how_sure)
        )?;
    }
    writeln!(out, "\nHow each verdict is reached:\n")?;
    for row in &report.criteria {
        match &row.measure {
            Some(measure) => writeln!(
                out,
                "- {}: {} (per task: {measure}).",
                row.criterion, row.rule
            )?,
            None => writeln!(out, "- {}: {}.", row.criterion, row.rule)?,
        }
    }
    write_judge_summary(out, report)?;
    if !report.ratings.is_empty() {
        writeln!(out, "\n## Ratings\n")?;
        writeln!(
            out,
            "| Model | Rating | 95% interval | Rank | Battles | Win rate |"
        )?;
        writeln!(out, "|---|---|---|---|---|---|")?;
        for r in &report.ratings {
            writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                cell_text(&r.model),
                rating(r.rating),
                interval(r.lower, r.upper),
                r.rank,
                r.battles,
                percent(r.win_rate)
            )?;
        }
        if let Some(note) = &report.ratings_note {
            writeln!(out, "\nNote: {note}.")?;
        }
        if let Some(line) = super::style_control_line(report) {
            writeln!(out, "\n{}.", cell_text(&line))?;
        }
    }
    Ok(())
}

fn write_answer(out: &mut String, result: &ResultEntry) -> std::fmt::Result {
    match result.status {
        "ok" => {
            let text = result.output.as_deref().unwrap_or_default();
            writeln!(out, "{}\n", embed_answer(text.trim_end()))?;
            writeln!(out, "*{}*\n", figures_line(result))?;
        }
        "failed" => writeln!(
            out,
            "*Failed after {} attempt(s): {}*\n",
            result.attempts,
            result.error.as_deref().unwrap_or("unknown error")
        )?,
        "unsupported" => writeln!(
            out,
            "*Unsupported: {}*\n",
            result
                .error
                .as_deref()
                .unwrap_or("the model cannot take this task")
        )?,
        _ => writeln!(out, "*Not run yet (the run was interrupted).*\n")?,
    }
    Ok(())
}

/// "latency 1.23 s · first token 0.20 s · 120 tokens · 45.0 tokens/s · $0.000072 · cached"
fn figures_line(result: &ResultEntry) -> String {
    let mut parts = Vec::new();
    if let Some(ms) = result.latency_ms {
        parts.push(format!("latency {}", seconds(ms)));
    }
    if let Some(ms) = result.ttft_ms {
        parts.push(format!("first token {}", seconds(ms)));
    }
    if let Some(server) = result.server_timings.as_ref().and_then(server_timings) {
        parts.push(format!("server: {server}"));
    }
    match result.completion_tokens {
        Some(tokens) => parts.push(format!("{tokens} tokens")),
        None => parts.push(format!("tokens {NOT_REPORTED}")),
    }
    if let Some(thinking) = result.reasoning_tokens {
        parts.push(format!("{thinking} of them thinking"));
    }
    if let Some(rate) = result.tokens_per_second {
        parts.push(format!("{} tokens/s", tokens_per_second(rate)));
    }
    if let Some(cost) = result.cost_usd {
        parts.push(dollars(cost));
    }
    if result.finish_reason.as_deref() == Some("length") {
        parts.push("cut at the token limit".into());
    }
    if result.via_batch {
        parts.push("batch".into());
    }
    if result.cached {
        parts.push("cached".into());
    }
    parts.join(" · ")
}

/// "total 1.10 s, load 0.01 s, prompt 0.04 s, generation 1.00 s": what a server (Ollama)
/// measured itself; `None` when it said nothing.
pub fn server_timings(timings: &versus_core::ServerTimings) -> Option<String> {
    let parts: Vec<String> = [
        ("total", timings.total_ms),
        ("load", timings.load_ms),
        ("prompt", timings.prompt_ms),
        ("generation", timings.generation_ms),
    ]
    .into_iter()
    .filter_map(|(name, ms)| ms.map(|ms| format!("{name} {}", seconds(ms))))
    .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn write_summary_row(out: &mut String, s: &ModelSummary) -> std::fmt::Result {
    writeln!(
        out,
        "| {} | {}/{} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        cell_text(&s.model),
        s.ok,
        s.cells,
        s.failed,
        s.unsupported,
        or_dash(s.mean_latency_ms.map(seconds)),
        or_dash(s.median_latency_ms.map(seconds)),
        or_dash(s.mean_ttft_ms.map(seconds)),
        or_dash(s.mean_tokens_per_second.map(tokens_per_second)),
        thousands(s.prompt_tokens),
        thousands(s.completion_tokens),
        or_dash(s.cost_usd.map(dollars)),
    )
}

/// Text safe inside a table cell.
fn cell_text(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// A blockquote of `text`, every line prefixed, blank lines kept inside the quote.
fn quote(text: &str) -> String {
    text.trim_end()
        .lines()
        .map(|line| {
            if line.is_empty() {
                ">".to_string()
            } else {
                format!("> {line}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// An answer made safe to embed under its model's `####` heading: headings inside it are demoted
/// below that level (so an answer's `# Title` does not break the report's outline), an unclosed
/// code fence is closed (so one model's cut-off code block cannot swallow the rest of the report),
/// and raw HTML is escaped (`<` becomes `&lt;` outside code), so that a line starting `<!--`
/// cannot hide the rest of the report and `<img onerror=...>` cannot run in a viewer that renders
/// Markdown; the answer's own Markdown is kept. Text inside code blocks and code spans, and lines
/// indented as code, is left exactly as it is.
fn embed_answer(text: &str) -> String {
    const DEMOTE_BY: usize = 4;
    let lines: Vec<&str> = text.lines().collect();
    let mut out: Vec<String> = Vec::with_capacity(lines.len() + 1);
    let mut open_fence: Option<String> = None;
    for (index, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        if let Some(fence) = code_fence(trimmed) {
            match &open_fence {
                None => open_fence = Some(fence),
                Some(opening)
                    if fence.starts_with(opening.as_str())
                        && trimmed[fence.len()..].trim().is_empty() =>
                {
                    open_fence = None
                }
                Some(_) => {}
            }
            out.push(line.to_string());
            continue;
        }
        if open_fence.is_some() {
            out.push(line.to_string());
            continue;
        }
        let indent = line.len() - trimmed.len();
        let hashes = trimmed.chars().take_while(|&c| c == '#').count();
        let is_atx = indent < 4
            && (1..=6).contains(&hashes)
            && trimmed[hashes..]
                .chars()
                .next()
                .is_none_or(|c| c == ' ' || c == '\t');
        if is_atx {
            let level = (hashes + DEMOTE_BY).min(6);
            out.push(format!(
                "{}{}",
                "#".repeat(level),
                escape_raw_html(&trimmed[hashes..])
            ));
            continue;
        }
        // A setext underline (`===` or `---` under a paragraph line) makes a level 1 or 2 heading.
        let underline = line.trim();
        let previous = index.checked_sub(1).map(|i| lines[i].trim()).unwrap_or("");
        let is_setext = indent < 4
            && !underline.is_empty()
            && (underline.chars().all(|c| c == '=') || underline.chars().all(|c| c == '-'))
            && !previous.is_empty()
            && out.last().is_some_and(|last| {
                last.trim() == escape_raw_html(previous).trim() && !last.starts_with('#')
            })
            && !previous.starts_with(['-', '*', '+', '>', '|'])
            && code_fence(previous).is_none();
        if is_setext {
            let level = if underline.starts_with('=') { 1 } else { 2 } + DEMOTE_BY;
            if let Some(last) = out.last_mut() {
                *last = format!("{} {}", "#".repeat(level.min(6)), escape_raw_html(previous));
            }
            continue;
        }
        // Four spaces (or a tab) start an indented code block, shown as written.
        if indent >= 4 || line.starts_with('\t') {
            out.push(line.to_string());
        } else {
            out.push(escape_raw_html(line));
        }
    }
    if let Some(fence) = open_fence {
        out.push(fence);
    }
    out.join("\n")
}

/// `line` with every `<` outside inline code spans written `&lt;`, which Markdown shows as `<` but
/// never reads as HTML. A code span is a run of backticks closed by a run of the same length on
/// the line; an unclosed run is plain text.
fn escape_raw_html(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(next) = rest.find(['<', '`']) {
        let (before, from) = rest.split_at(next);
        out.push_str(before);
        if let Some(after) = from.strip_prefix('<') {
            out.push_str("&lt;");
            rest = after;
            continue;
        }
        let run = from.len() - from.trim_start_matches('`').len();
        let fence = &from[..run];
        let after = &from[run..];
        // The closing run must be exactly as long: find a run of `run` backticks not part of a
        // longer one.
        let mut search = 0;
        let mut close = None;
        while let Some(at) = after[search..].find(fence) {
            let start = search + at;
            let end = start + run;
            let longer =
                after[end..].starts_with('`') || (start > 0 && after[..start].ends_with('`'));
            if !longer {
                close = Some(end);
                break;
            }
            search = end + after[end..].len() - after[end..].trim_start_matches('`').len();
        }
        match close {
            Some(end) => {
                out.push_str(fence);
                out.push_str(&after[..end]);
                rest = &after[end..];
            }
            None => {
                out.push_str(fence);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The fence that opens or closes a code block on this (left-trimmed) line, if it is one.
fn code_fence(trimmed: &str) -> Option<String> {
    let first = trimmed.chars().next().filter(|&c| c == '`' || c == '~')?;
    let fence: String = trimmed.chars().take_while(|&c| c == first).collect();
    (fence.len() >= 3).then_some(fence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_html_in_answers_is_escaped_but_markdown_and_code_are_kept() {
        for (answer, embedded) in [
            ("<!-- hide the rest\nmore", "&lt;!-- hide the rest\nmore"),
            (
                "x <img src=x onerror=alert(1)> y",
                "x &lt;img src=x onerror=alert(1)> y",
            ),
            (
                "**bold** and `a < b` and ``x ` <y``",
                "**bold** and `a < b` and ``x ` <y``",
            ),
            ("an unclosed ` tick < here", "an unclosed ` tick &lt; here"),
            ("```html\n<b>code</b>\n```", "```html\n<b>code</b>\n```"),
            ("    <indented code>", "    <indented code>"),
            ("# <script>x</script>", "##### &lt;script>x&lt;/script>"),
            ("<i>Title</i>\n===", "##### &lt;i>Title&lt;/i>"),
            ("- item <b>one</b>", "- item &lt;b>one&lt;/b>"),
        ] {
            assert_eq!(embed_answer(answer), embedded, "{answer:?}");
        }
    }

    #[test]
    fn unclosed_fences_are_closed() {
        assert_eq!(embed_answer("```py\nx = 1"), "```py\nx = 1\n```");
        assert_eq!(embed_answer("```py\nx\n```\ntext"), "```py\nx\n```\ntext");
        assert_eq!(embed_answer("````\n```\ninner"), "````\n```\ninner\n````");
    }

    #[test]
    fn answer_headings_nest_under_the_model_heading() {
        assert_eq!(embed_answer("# Title\ntext"), "##### Title\ntext");
        assert_eq!(embed_answer("### Deep"), "###### Deep");
        assert_eq!(embed_answer("Title\n=====\nbody"), "##### Title\nbody");
        assert_eq!(embed_answer("Part\n---"), "###### Part");
        assert_eq!(embed_answer("```\n# comment\n```"), "```\n# comment\n```");
        assert_eq!(embed_answer("#hashtag"), "#hashtag");
        assert_eq!(
            embed_answer("- item\n---"),
            "- item\n---",
            "a rule after a list stays a rule"
        );
        assert_eq!(
            embed_answer("a\n\n---\nb"),
            "a\n\n---\nb",
            "a rule after a blank line stays"
        );
    }

    #[test]
    fn quotes_keep_blank_lines_inside() {
        assert_eq!(quote("a\n\nb\n"), "> a\n>\n> b");
    }
}
