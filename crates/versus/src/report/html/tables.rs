//! The report's tables: the models with their metadata, the criteria with each verdict and the
//! rule that reached it (then the judge's consistency and "Judge, measured"), the Bradley-Terry
//! ratings, and each model's figures (answers, latency, speed, tokens, cost). Every cell is
//! escaped text; numbers come from `report::format`, as in the Markdown report.

use std::fmt::Write;

use crate::render::escape;
use crate::report::format::{
    dollars, interval, modalities, or_dash, percent, price, rating, seconds, thousands,
    tokens_per_second,
};
use crate::report::Report;

/// The models and their metadata.
pub fn models_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = write_models_table(&mut out, report);
    out
}

fn write_models_table(out: &mut String, report: &Report) -> std::fmt::Result {
    writeln!(
        out,
        "<div class=\"table-scroll\"><table data-testid=\"models\">\n<thead><tr><th scope=\"col\">Model</th><th scope=\"col\">Spec</th><th scope=\"col\">Architecture</th><th scope=\"col\">Parameters</th><th scope=\"col\">Dtype</th><th scope=\"col\">Device</th><th scope=\"col\">Context length</th><th scope=\"col\">Modalities</th><th scope=\"col\">Price in / out (USD per 1M tokens)</th></tr></thead>\n<tbody>"
    )?;
    for model in &report.models {
        let meta = &model.metadata;
        let text = |value: &Option<String>| or_dash(value.as_deref().map(escape));
        writeln!(
            out,
            "<tr data-model=\"{id}\"><th scope=\"row\">{id}</th><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&model.spec),
            text(&meta.architecture),
            text(&meta.parameters),
            text(&meta.dtype),
            text(&meta.device),
            or_dash(meta.context_length.map(thousands)),
            escape(&modalities(meta)),
            or_dash(meta.price.as_ref().map(price)),
            id = escape(&model.id),
        )?;
    }
    writeln!(out, "</tbody>\n</table></div>")
}

/// The criteria table: a row per criterion, the evidence per model, the verdict, and the rule
/// (as a tooltip on the criterion and as a numbered note under the table, which prints).
pub fn criteria_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = write_criteria_table(&mut out, report);
    out
}

fn write_criteria_table(out: &mut String, report: &Report) -> std::fmt::Result {
    if report.criteria.is_empty() {
        return writeln!(
            out,
            "<p class=\"empty\" data-testid=\"criteria\">No criteria for this run.</p>"
        );
    }
    write!(
        out,
        "<div class=\"table-scroll\"><table data-testid=\"criteria\">\n<thead><tr><th scope=\"col\">Criterion</th>"
    )?;
    for model in &report.models {
        write!(out, "<th scope=\"col\">{}</th>", escape(&model.id))?;
    }
    writeln!(
        out,
        "<th scope=\"col\">Verdict</th><th scope=\"col\">How sure</th></tr></thead>\n<tbody>"
    )?;
    for (index, row) in report.criteria.iter().enumerate() {
        let class = if row.criterion == "Overall" {
            " class=\"overall\""
        } else {
            ""
        };
        write!(
            out,
            "<tr{class} data-criterion=\"{criterion}\"><th scope=\"row\" title=\"{rule}\">{criterion}<a class=\"rule-ref\" href=\"#rule-{n}\" aria-label=\"rule {n}\">{n}</a></th>",
            criterion = escape(&row.criterion),
            rule = escape(&row.rule),
            n = index + 1
        )?;
        for cell in &row.cells {
            write!(out, "<td>{}</td>", escape(cell))?;
        }
        writeln!(
            out,
            "<td data-testid=\"criterion-verdict\">{}</td><td data-testid=\"criterion-how-sure\">{}</td></tr>",
            escape(&row.verdict),
            escape(&row.how_sure)
        )?;
    }
    writeln!(out, "</tbody>\n</table></div>")?;
    writeln!(
        out,
        "<h3>How each verdict is reached</h3>\n<ol class=\"rules note\" data-testid=\"criteria-rules\">"
    )?;
    for (index, row) in report.criteria.iter().enumerate() {
        writeln!(
            out,
            "<li id=\"rule-{}\"><strong>{}</strong>: {}.</li>",
            index + 1,
            escape(&row.criterion),
            escape(&row.rule)
        )?;
    }
    writeln!(out, "</ol>")?;
    if let Some(line) = crate::report::judge_summary(report) {
        writeln!(
            out,
            "<p class=\"note\" data-testid=\"judge-summary\">{}</p>",
            escape(&line)
        )?;
    }
    write_judge_measures(out, report)
}

/// "Judge, measured": each judge's position and length biases, self-preference and agreement
/// with votes, the lines the Markdown report writes.
fn write_judge_measures(out: &mut String, report: &Report) -> std::fmt::Result {
    for (judge, lines) in crate::report::judge_measure_lines(report) {
        writeln!(
            out,
            "<div class=\"note\" data-testid=\"judge-measures\" data-judge=\"{judge}\">\n<p><strong>Judge, measured</strong> ({judge}):</p>\n<ul>",
            judge = escape(&judge)
        )?;
        for line in lines {
            writeln!(out, "<li>{}</li>", escape(&line))?;
        }
        writeln!(out, "</ul>\n</div>")?;
    }
    Ok(())
}

/// Bradley-Terry ratings with their intervals, ranks and win rates.
pub fn ratings_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = write_ratings_table(&mut out, report);
    out
}

fn write_ratings_table(out: &mut String, report: &Report) -> std::fmt::Result {
    if report.ratings.is_empty() {
        return writeln!(
            out,
            "<p class=\"empty\" data-testid=\"ratings\">No ratings: the run has no judge verdicts or votes.</p>"
        );
    }
    writeln!(
        out,
        "<div class=\"table-scroll\"><table data-testid=\"ratings\">\n<thead><tr><th scope=\"col\">Model</th><th scope=\"col\">Rating</th><th scope=\"col\">95% interval</th><th scope=\"col\">Rank</th><th scope=\"col\">Battles</th><th scope=\"col\">Win rate</th></tr></thead>\n<tbody>"
    )?;
    for r in &report.ratings {
        writeln!(
            out,
            "<tr data-model=\"{id}\"><th scope=\"row\">{id}</th><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            rating(r.rating),
            interval(r.lower, r.upper),
            r.rank,
            r.battles,
            percent(r.win_rate),
            id = escape(&r.model)
        )?;
    }
    writeln!(
        out,
        "</tbody>\n</table></div>\n<p class=\"note\">Bradley-Terry ratings (Chatbot Arena's method: scale 400, base 10, 1000 at the centre, ties as half) from this run's pairwise judge verdicts and votes, with bootstrap 95% intervals.</p>"
    )?;
    if let Some(note) = &report.ratings_note {
        writeln!(
            out,
            "<p class=\"note\" data-testid=\"ratings-note\">Note: {}.</p>",
            escape(note)
        )?;
    }
    if let Some(line) = crate::report::style_control_line(report) {
        writeln!(
            out,
            "<p class=\"note\" data-testid=\"style-control\">{}.</p>",
            escape(&line)
        )?;
    }
    Ok(())
}

/// The repeated-samples table (as the Markdown report's), with its notes.
pub(super) fn samples_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = write_samples_table(&mut out, report);
    out
}

fn write_samples_table(out: &mut String, report: &Report) -> std::fmt::Result {
    use crate::report::samples::{identical_lines, pass_at_text, spread_text};
    let Some(samples) = &report.samples else {
        return Ok(());
    };
    writeln!(
        out,
        "<p class=\"muted\">{}</p>",
        escape(crate::report::samples::SAMPLES_NOTE)
    )?;
    writeln!(
        out,
        "<table data-testid=\"samples-table\"><thead><tr><th>Model</th><th>Samples per task</th><th>Identical on</th><th>Within-task spread</th><th>pass@k</th></tr></thead><tbody>"
    )?;
    for model in &samples.models {
        let spread: Vec<String> = model.spread.iter().map(spread_text).collect();
        let dash = |text: String| {
            if text.is_empty() {
                "–".to_string()
            } else {
                text
            }
        };
        writeln!(
            out,
            "<tr data-testid=\"samples-row\" data-model=\"{m}\"><th>{m}</th><td>{}</td><td>{} of {} tasks</td><td>{}</td><td data-testid=\"pass-at\">{}</td></tr>",
            model.samples,
            model.tasks_identical,
            model.tasks_repeated,
            escape(&dash(spread.join("; "))),
            escape(&dash(pass_at_text(&model.pass_at))),
            m = escape(&model.model),
        )?;
    }
    writeln!(out, "</tbody></table>")?;
    let lines = identical_lines(samples);
    if !lines.is_empty() {
        writeln!(out, "<ul data-testid=\"samples-notes\">")?;
        for line in lines {
            writeln!(out, "<li>{}</li>", escape(&line))?;
        }
        writeln!(out, "</ul>")?;
    }
    Ok(())
}

/// The per-model figures (as the Markdown report's table).
pub(super) fn figures_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = write_figures_table(&mut out, report);
    out
}

fn write_figures_table(out: &mut String, report: &Report) -> std::fmt::Result {
    writeln!(
        out,
        "<div class=\"table-scroll\"><table data-testid=\"figures-table\">\n<thead><tr><th scope=\"col\">Model</th><th scope=\"col\">Answered</th><th scope=\"col\">Failed</th><th scope=\"col\">Unsupported</th><th scope=\"col\">Mean latency</th><th scope=\"col\">Median latency</th><th scope=\"col\">Mean time to first token</th><th scope=\"col\">Mean tokens/s</th><th scope=\"col\">Input tokens</th><th scope=\"col\">Output tokens</th><th scope=\"col\">Cost</th></tr></thead>\n<tbody>"
    )?;
    for s in &report.summary {
        writeln!(
            out,
            "<tr data-model=\"{id}\"><th scope=\"row\">{id}</th><td class=\"num\">{}/{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
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
            escape(&or_dash(s.cost_usd.map(dollars))),
            id = escape(&s.model)
        )?;
    }
    writeln!(out, "</tbody>\n</table></div>")?;
    for s in report
        .summary
        .iter()
        .filter(|s| s.answers_with_usage < s.ok)
    {
        writeln!(
            out,
            "<p class=\"note\">{}: the server reported token usage for {} of {} answers; token totals and cost cover those only.</p>",
            escape(&s.model),
            s.answers_with_usage,
            s.ok
        )?;
    }
    Ok(())
}
