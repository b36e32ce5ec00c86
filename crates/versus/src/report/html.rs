//! The HTML report: one self-contained page built from the same `Report` as the Markdown and
//! JSON reports. It opens offline and nothing on it makes a request: the stylesheet and the one
//! small script are inline, charts are SVG written here, and a Content-Security-Policy meta tag
//! (scripts and styles allowed only by the hashes of our own two blocks, no connections, images
//! only from `data:`) stops anything else a browser might try.
//!
//! Model output is untrusted: answers reach the page only through
//! `crate::render::markdown_to_safe_html` (then `highlight::highlight_code_blocks`, which only
//! adds our own spans around escaped text); everything else (ids, prompts, errors, judge
//! outputs, suite names) goes through `crate::render::escape`.
//!
//! The parts are public so that `versus view` can reuse them: [`answer_html`], [`task_section`],
//! [`models_table`], [`criteria_table`], [`ratings_table`], [`charts`], [`STYLE`], [`SCRIPT`]
//! and [`content_security_policy`].

pub mod charts;
pub mod highlight;

use std::fmt::Write;

use base64::Engine as _;
use sha2::{Digest, Sha256};
use versus_core::stats::{mean, median};
use versus_core::{ContentPart, Role};

use super::markdown::{dollars, modalities, seconds, short_hash, thousands};
use super::{JudgementEntry, Report, ResultEntry, ScoreEntry, TaskEntry};
use crate::render::{escape, markdown_to_safe_html};
use charts::{Bar, BarChart, BarGroup, Interval, IntervalChart};

/// The page's stylesheet; it loads nothing (no URL functions, no imports, no web fonts).
pub const STYLE: &str = include_str!("assets/report.css");
/// The page's script: theme toggle and task filters, working only on data attributes and
/// `hidden`; it never inserts HTML.
pub const SCRIPT: &str = include_str!("assets/report.js");

/// The policy for a page whose only style and script are [`STYLE`] and [`SCRIPT`]: each is
/// allowed by its SHA-256 hash, so even a `<script>` or `<style>` that slipped past the sanitizer
/// would not run; `default-src 'none'` forbids every request (fonts, frames, fetches), images
/// may only be `data:` URLs (the page uses none but the empty favicon that stops the browser
/// asking for one), and forms and `<base>` are disabled.
pub fn content_security_policy() -> String {
    format!(
        "default-src 'none'; style-src {}; script-src {}; img-src data:; base-uri 'none'; form-action 'none'",
        csp_hash(STYLE),
        csp_hash(SCRIPT)
    )
}

/// `'sha256-BASE64'` of an inline block's exact text, as CSP computes it.
fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    // Writing to a String cannot fail.
    let _ = write_page(&mut out, report);
    out
}

/// An answer as HTML: Markdown rendered and sanitized, then code highlighted. The only way
/// model output enters the page.
pub fn answer_html(markdown: &str) -> String {
    highlight::highlight_code_blocks(&markdown_to_safe_html(markdown))
}

fn write_page(out: &mut String, report: &Report) -> std::fmt::Result {
    let title = format!("versus: {}, run {}", report.run.suite, report.run.id);
    writeln!(out, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>")?;
    writeln!(out, "<meta charset=\"utf-8\">")?;
    writeln!(
        out,
        "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
        escape(&content_security_policy())
    )?;
    writeln!(
        out,
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    )?;
    writeln!(out, "<meta name=\"referrer\" content=\"no-referrer\">")?;
    writeln!(
        out,
        "<meta name=\"generator\" content=\"versus {}\">",
        escape(&report.tool.version)
    )?;
    writeln!(out, "<title>{}</title>", escape(&title))?;
    // An empty icon, so that browsers do not request /favicon.ico when the page is served.
    writeln!(out, "<link rel=\"icon\" href=\"data:,\">")?;
    // The exact text between the tags is what the CSP hashes cover.
    writeln!(out, "<style>{STYLE}</style>")?;
    writeln!(out, "<script>{SCRIPT}</script>")?;
    writeln!(out, "</head>\n<body>")?;
    out.push_str(&body(report));
    writeln!(out, "</body>\n</html>")
}

/// Everything inside `<body>`: header, overview, charts, tasks. No style or script in it.
pub fn body(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    let _ = write_body(&mut out, report);
    out
}

fn write_body(out: &mut String, report: &Report) -> std::fmt::Result {
    write_header(out, report)?;
    writeln!(out, "<main>")?;
    write_toc(out, report)?;
    writeln!(
        out,
        "<section id=\"models\" aria-labelledby=\"models-title\">\n<h2 id=\"models-title\">Models</h2>"
    )?;
    out.push_str(&models_table(report));
    writeln!(out, "</section>")?;

    writeln!(
        out,
        "<section id=\"criteria\" aria-labelledby=\"criteria-title\">\n<h2 id=\"criteria-title\">Criteria</h2>"
    )?;
    out.push_str(&criteria_table(report));
    writeln!(out, "</section>")?;

    writeln!(
        out,
        "<section id=\"ratings\" aria-labelledby=\"ratings-title\">\n<h2 id=\"ratings-title\">Ratings</h2>"
    )?;
    out.push_str(&ratings_table(report));
    writeln!(out, "</section>")?;

    writeln!(
        out,
        "<section id=\"charts\" aria-labelledby=\"charts-title\">\n<h2 id=\"charts-title\">Charts</h2>"
    )?;
    out.push_str(&charts(report));
    writeln!(out, "</section>")?;

    writeln!(
        out,
        "<section id=\"figures\" aria-labelledby=\"figures-title\">\n<h2 id=\"figures-title\">Figures</h2>"
    )?;
    out.push_str(&figures_table(report));
    writeln!(out, "</section>")?;

    writeln!(
        out,
        "<section id=\"tasks\" aria-labelledby=\"tasks-title\">\n<h2 id=\"tasks-title\">Tasks</h2>"
    )?;
    write_filters(out, report)?;
    for (index, task) in report.tasks.iter().enumerate() {
        out.push_str(&task_section(report, task, index));
    }
    writeln!(out, "</section>\n</main>")?;
    writeln!(
        out,
        "<footer class=\"page-header\">Written by versus {} from the store alone; verdicts follow the rules in docs/verdicts.md.</footer>",
        escape(&report.tool.version)
    )
}

fn write_header(out: &mut String, report: &Report) -> std::fmt::Result {
    let run = &report.run;
    writeln!(
        out,
        "<header class=\"page-header\" id=\"run-info\" data-testid=\"run-info\">\n<div class=\"topbar\">\n<h1>versus: {}</h1>",
        escape(&run.suite)
    )?;
    // Shown by the script; without it the theme follows the system.
    writeln!(
        out,
        "<button type=\"button\" id=\"theme-toggle\" data-testid=\"theme-toggle\" hidden>Theme</button>\n</div>"
    )?;
    writeln!(out, "<dl class=\"run-info\">")?;
    let mut item = |term: &str, value: &str| writeln!(out, "<dt>{term}</dt><dd>{value}</dd>");
    item("Run", &format!("{} ({})", run.id, escape(&run.status)))?;
    item("Started", &escape(&run.started_at))?;
    item(
        "Finished",
        &run.finished_at
            .as_deref()
            .map_or("not yet".to_string(), escape),
    )?;
    item(
        "Suite",
        &format!(
            "{} <span class=\"muted\" title=\"sha256 {}\">sha256 {}</span>",
            escape(&run.suite),
            escape(&run.suite_hash),
            escape(short_hash(&run.suite_hash))
        ),
    )?;
    item(
        "Tasks and models",
        &format!(
            "{} tasks × {} models",
            report.tasks.len(),
            report.models.len()
        ),
    )?;
    item(
        "versus",
        &format!(
            "{} made the run; {} wrote this report",
            escape(&run.tool_version),
            escape(&report.tool.version)
        ),
    )?;
    writeln!(out, "</dl>\n</header>")
}

fn write_toc(out: &mut String, report: &Report) -> std::fmt::Result {
    writeln!(
        out,
        "<nav class=\"toc\" aria-label=\"Contents\" data-testid=\"toc\">\n<p><a href=\"#models\">Models</a> · <a href=\"#criteria\">Criteria</a> · <a href=\"#ratings\">Ratings</a> · <a href=\"#charts\">Charts</a> · <a href=\"#figures\">Figures</a> · <a href=\"#tasks\">Tasks</a></p>\n<ol>"
    )?;
    for (index, task) in report.tasks.iter().enumerate() {
        writeln!(
            out,
            "<li data-toc-for=\"task-{n}\"><a href=\"#task-{n}\">{}</a> <span class=\"muted\">{}</span></li>",
            escape(&task.id),
            escape(&task.category),
            n = index + 1
        )?;
    }
    writeln!(out, "</ol>\n</nav>")
}

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
        let text = |value: &Option<String>| value.as_deref().map_or("–".to_string(), escape);
        writeln!(
            out,
            "<tr data-model=\"{id}\"><th scope=\"row\">{id}</th><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td></tr>",
            escape(&model.spec),
            text(&meta.architecture),
            text(&meta.parameters),
            text(&meta.dtype),
            text(&meta.device),
            meta.context_length.map_or("–".to_string(), thousands),
            escape(&modalities(meta)),
            meta.price
                .map_or("–".to_string(), |p| format!("{} / {}", p.input, p.output)),
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
    writeln!(out, "<th scope=\"col\">Verdict</th></tr></thead>\n<tbody>")?;
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
            "<td data-testid=\"criterion-verdict\">{}</td></tr>",
            escape(&row.verdict)
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
    if let Some(line) = super::judge_summary(report) {
        writeln!(
            out,
            "<p class=\"note\" data-testid=\"judge-summary\">{}</p>",
            escape(&line)
        )?;
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
            "<tr data-model=\"{id}\"><th scope=\"row\">{id}</th><td class=\"num\">{:.0}</td><td class=\"num\">{:.0}–{:.0}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:.0}%</td></tr>",
            r.rating,
            r.lower,
            r.upper,
            r.rank,
            r.battles,
            r.win_rate * 100.0,
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
    Ok(())
}

/// The per-model figures (as the Markdown report's table).
fn figures_table(report: &Report) -> String {
    let mut out = String::new();
    let _ = write_figures_table(&mut out, report);
    out
}

fn write_figures_table(out: &mut String, report: &Report) -> std::fmt::Result {
    writeln!(
        out,
        "<div class=\"table-scroll\"><table data-testid=\"figures-table\">\n<thead><tr><th scope=\"col\">Model</th><th scope=\"col\">Answered</th><th scope=\"col\">Failed</th><th scope=\"col\">Unsupported</th><th scope=\"col\">Mean latency</th><th scope=\"col\">Median latency</th><th scope=\"col\">Mean time to first token</th><th scope=\"col\">Mean tokens/s</th><th scope=\"col\">Input tokens</th><th scope=\"col\">Output tokens</th><th scope=\"col\">Cost</th></tr></thead>\n<tbody>"
    )?;
    let dash = |value: Option<String>| value.unwrap_or_else(|| "–".into());
    for s in &report.summary {
        writeln!(
            out,
            "<tr data-model=\"{id}\"><th scope=\"row\">{id}</th><td class=\"num\">{}/{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
            s.ok,
            s.cells,
            s.failed,
            s.unsupported,
            dash(s.mean_latency_ms.map(seconds)),
            dash(s.median_latency_ms.map(seconds)),
            dash(s.mean_ttft_ms.map(seconds)),
            dash(s.mean_tokens_per_second.map(|r| format!("{r:.1}"))),
            thousands(s.prompt_tokens),
            thousands(s.completion_tokens),
            escape(&dash(s.cost_usd.map(dollars))),
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

// ---- charts ----

/// The report's charts: ratings with intervals, judge win rates per category, time to first
/// token, tokens per second, and answer length.
pub fn charts(report: &Report) -> String {
    let mut out = String::from("<div class=\"charts\">\n");
    out.push_str(&charts::interval_chart(&ratings_chart(report)));
    out.push_str(&charts::bar_chart(&win_rate_chart(report)));
    out.push_str(&charts::bar_chart(&speed_chart(
        report,
        "ttft",
        "Time to first token",
        |r| r.ttft_ms.map(|ms| ms / 1000.0),
        |v| format!("{v:.2} s"),
        |v| format!("{v} s"),
    )));
    out.push_str(&charts::bar_chart(&speed_chart(
        report,
        "tokens-per-second",
        "Tokens per second",
        |r| r.tokens_per_second,
        |v| format!("{v:.1}/s"),
        |v| format!("{v}/s"),
    )));
    out.push_str(&charts::bar_chart(&length_chart(report)));
    out.push_str("</div>\n");
    out
}

fn model_series(report: &Report, model: &str) -> usize {
    report
        .models
        .iter()
        .position(|m| m.id == model)
        .unwrap_or(report.models.len())
}

fn ratings_chart(report: &Report) -> IntervalChart {
    IntervalChart {
        id: "ratings".into(),
        title: "Ratings with 95% intervals".into(),
        caption: "Bradley-Terry rating (dot) and bootstrap 95% interval (whisker) per model, from this run's judge verdicts and votes.".into(),
        rows: report
            .ratings
            .iter()
            .map(|r| Interval {
                label: r.model.clone(),
                series: model_series(report, &r.model),
                center: r.rating,
                lower: r.lower,
                upper: r.upper,
                text: format!("{:.0} ({:.0}–{:.0})", r.rating, r.lower, r.upper),
            })
            .collect(),
    }
}

/// One model's share of the judge's pairwise points in one category.
#[derive(Debug, Clone, PartialEq)]
pub struct WinRate {
    pub model: String,
    /// Points over comparisons, 0-1.
    pub rate: f64,
    pub comparisons: usize,
}

/// Win rates per category from the judge's pairwise verdicts, as core's win rates count them (a
/// win 1, a tie or inconsistent pair ½, errors left out); categories in task order, models in
/// report order.
pub fn win_rates_by_category(report: &Report) -> Vec<(String, Vec<WinRate>)> {
    let by_category = versus_core::ratings::win_rates_by_category(&report.judge_battles);
    let mut categories: Vec<&str> = Vec::new();
    for task in &report.tasks {
        if !categories.contains(&task.category.as_str()) {
            categories.push(&task.category);
        }
    }
    categories
        .into_iter()
        .filter_map(|category| {
            let rates = by_category.get(&Some(category.to_string()))?;
            let rows = report
                .models
                .iter()
                .filter_map(|m| {
                    let rate = rates.iter().find(|r| r.model == m.id)?;
                    Some(WinRate {
                        model: m.id.clone(),
                        rate: rate.win_rate,
                        comparisons: rate.battles,
                    })
                })
                .collect();
            Some((category.to_string(), rows))
        })
        .collect()
}

fn win_rate_chart(report: &Report) -> BarChart {
    let groups = win_rates_by_category(report)
        .into_iter()
        .map(|(category, rows)| BarGroup {
            label: Some(category),
            bars: rows
                .into_iter()
                .map(|win| Bar {
                    series: model_series(report, &win.model),
                    text: format!("{:.0}% of {}", win.rate * 100.0, win.comparisons),
                    label: win.model,
                    value: Some(win.rate),
                    points: Vec::new(),
                })
                .collect(),
        })
        .collect();
    BarChart {
        id: "win-rates".into(),
        title: "Judge win rate by category".into(),
        caption: "Share of pairwise comparisons won (ties and inconsistent pairs count half, errors not at all), per task category; the dashed line is 50%.".into(),
        groups,
        max: Some(1.0),
        reference: Some((0.5, "50%".into())),
        tick_format: |v| format!("{:.0}%", v * 100.0),
    }
}

/// A bar per model at the median of `value` over its fresh answers, each answer a dot; `format`
/// writes values, `tick_format` the axis (whose round ticks need fewer digits).
fn speed_chart(
    report: &Report,
    id: &str,
    title: &str,
    value: fn(&ResultEntry) -> Option<f64>,
    format: fn(f64) -> String,
    tick_format: fn(f64) -> String,
) -> BarChart {
    let bars = report
        .models
        .iter()
        .enumerate()
        .map(|(series, model)| {
            // Cached answers were not timed in this run, as in the criteria table's Speed row.
            let values: Vec<f64> = report
                .results
                .iter()
                .filter(|r| r.model == model.id && r.status == "ok" && !r.cached)
                .filter_map(value)
                .collect();
            let middle = median(&values);
            Bar {
                label: model.id.clone(),
                series,
                value: middle,
                text: middle.map_or("not measured".into(), |m| {
                    format!("{} (median of {})", format(m), values.len())
                }),
                points: values,
            }
        })
        .collect();
    BarChart {
        id: id.into(),
        title: format!("{title} (median)"),
        caption: format!("{title} per model: the bar is the median over the answers made in this run (cached ones excluded), each dot one answer."),
        groups: vec![BarGroup {
            label: None,
            bars,
        }],
        max: None,
        reference: None,
        tick_format,
    }
}

fn length_chart(report: &Report) -> BarChart {
    let words = report
        .models
        .iter()
        .enumerate()
        .map(|(series, model)| {
            let values: Vec<f64> = report
                .scores
                .iter()
                .filter(|s| s.model == model.id && s.scorer == "style.words")
                .filter_map(|s| s.value)
                .collect();
            let average = mean(&values);
            Bar {
                label: model.id.clone(),
                series,
                value: average,
                text: average.map_or("not scored".into(), |m| format!("{m:.0} words")),
                points: values,
            }
        })
        .collect();
    let tokens = report
        .models
        .iter()
        .enumerate()
        .map(|(series, model)| {
            let values: Vec<f64> = report
                .results
                .iter()
                .filter(|r| r.model == model.id && r.status == "ok")
                .filter_map(|r| r.completion_tokens.map(|t| t as f64))
                .collect();
            let average = mean(&values);
            Bar {
                label: model.id.clone(),
                series,
                value: average,
                text: average.map_or("not reported".into(), |m| format!("{m:.0} tokens")),
                points: values,
            }
        })
        .collect();
    BarChart {
        id: "length".into(),
        title: "Answer length (mean)".into(),
        caption: "Mean words per answer (style scores) and mean output tokens per answer (as the servers reported them); each dot one answer.".into(),
        groups: vec![
            BarGroup {
                label: Some("Words".into()),
                bars: words,
            },
            BarGroup {
                label: Some("Output tokens".into()),
                bars: tokens,
            },
        ],
        max: None,
        reference: None,
        tick_format: |v| format!("{v:.0}"),
    }
}

// ---- tasks ----

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

fn write_filters(out: &mut String, report: &Report) -> std::fmt::Result {
    let mut categories: Vec<&str> = Vec::new();
    for task in &report.tasks {
        if !categories.contains(&task.category.as_str()) {
            categories.push(&task.category);
        }
    }
    // Hidden until the script shows it: without the script the filters could not work.
    writeln!(
        out,
        "<div class=\"filters\" id=\"filters\" data-testid=\"filters\" role=\"group\" aria-label=\"Filter tasks\" hidden>"
    )?;
    writeln!(
        out,
        "<label>Category <select id=\"filter-category\" data-testid=\"filter-category\">\n<option value=\"\">all</option>"
    )?;
    for category in categories {
        writeln!(
            out,
            "<option value=\"{c}\">{c}</option>",
            c = escape(category)
        )?;
    }
    writeln!(out, "</select></label>")?;
    writeln!(
        out,
        "<label title=\"tasks whose verdict names a winner, or whose answers' check results differ\"><input type=\"checkbox\" id=\"filter-disagreements\" data-testid=\"filter-disagreements\"> only disagreements</label>"
    )?;
    writeln!(
        out,
        "<label title=\"tasks where some answer failed a check\"><input type=\"checkbox\" id=\"filter-failed\" data-testid=\"filter-failed\"> only failed checks</label>"
    )?;
    writeln!(
        out,
        "<output id=\"filter-count\" data-testid=\"filter-count\" aria-live=\"polite\"></output>\n</div>"
    )?;
    writeln!(
        out,
        "<p class=\"empty\" id=\"filter-none\" data-testid=\"filter-none\" hidden>No task matches the filters.</p>"
    )
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
    for (model_index, result) in report
        .results
        .iter()
        .filter(|r| r.task == task.id)
        .enumerate()
    {
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
    write!(out, "<div class=\"answer-head\"><h4>{model}</h4>")?;
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
    write_scores(out, report, &result.task, &result.model)?;
    writeln!(out, "</article>")
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
    match (result.prompt_tokens, result.completion_tokens) {
        (Some(prompt), Some(completion)) => {
            figures.push(("tokens in / out", format!("{prompt} / {completion}")))
        }
        (None, Some(completion)) => figures.push(("tokens out", completion.to_string())),
        _ => figures.push(("tokens", "not reported".into())),
    }
    if let Some(rate) = result.tokens_per_second {
        figures.push(("tokens/s", format!("{rate:.1}")));
    }
    if let Some(cost) = result.cost_usd {
        figures.push(("cost", dollars(cost)));
    }
    if result.finish_reason.as_deref() == Some("length") {
        figures.push(("finish", "cut at the token limit".into()));
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
fn write_scores(out: &mut String, report: &Report, task: &str, model: &str) -> std::fmt::Result {
    let mine: Vec<&ScoreEntry> = report
        .scores
        .iter()
        .filter(|s| s.task == task && s.model == model)
        .collect();
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
    let metrics = super::reference_metric_labels(&mine);
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
    for judgement in report
        .judgements
        .iter()
        .filter(|j| j.is_rating_of(task, model))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::{not_ok, ok, plan};
    use crate::report::{assemble, Grading, RunInfo};
    use versus_core::RunPlan;
    use versus_core::{ErrorKind, GenerationParams, Suite, SuiteSource};
    use versus_store::{CellRecord, CellStatus, JudgementRecord, ScoreRecord};

    fn run_info(suite: &str) -> RunInfo {
        RunInfo {
            id: 7,
            suite: suite.into(),
            suite_hash: "0123456789abcdef0123".into(),
            status: "finished".into(),
            started_at: "2026-01-01T00:00:00.000Z".into(),
            finished_at: Some("2026-01-01T00:01:00.000Z".into()),
            tool_version: "0.1.0".into(),
        }
    }

    fn score(
        task: &str,
        model: &str,
        scorer: &str,
        value: f64,
        passed: Option<bool>,
    ) -> ScoreRecord {
        ScoreRecord {
            task_id: task.into(),
            model_id: model.into(),
            scorer: scorer.into(),
            value: Some(value),
            passed,
            explanation: if passed == Some(false) {
                "expected \"yes\"".into()
            } else {
                String::new()
            },
        }
    }

    fn pairwise(task: &str, a: &str, b: &str, verdict: &str, explanation: &str) -> JudgementRecord {
        JudgementRecord {
            task_id: task.into(),
            kind: versus_core::JudgementKind::Pairwise,
            model_a: a.into(),
            model_b: b.into(),
            judge: "judge".into(),
            verdict: verdict.parse().expect("a judge verdict"),
            rating: None,
            detail: serde_json::json!({
                "explanation": explanation,
                "first": { "output": "A is better. [[A]]" },
                "second": { "output": "B is better. [[B]]" },
            }),
        }
    }

    fn rating(task: &str, model: &str, value: f64) -> JudgementRecord {
        JudgementRecord {
            task_id: task.into(),
            kind: versus_core::JudgementKind::Single,
            model_a: model.into(),
            model_b: String::new(),
            judge: "judge".into(),
            verdict: versus_core::JudgeVerdict::Rated,
            rating: Some(value),
            detail: serde_json::json!({
                "explanation": format!("rated {value}"),
                "call": { "output": format!("Fine. Rating: [[{value}]]") },
            }),
        }
    }

    /// The report module's snapshot run, graded: `sunrise` checked (gpt-4o-mini passes, local
    /// fails) and judged; `fibonacci` answered by one model; `photo` answered by both, no evidence.
    fn graded_report() -> Report {
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
                "```python\ndef fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n```",
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
            ok("photo", "local", "A cat, sleeping.", None, false),
        ];
        let grading = Grading {
            scores: vec![
                score(
                    "sunrise",
                    "gpt-4o-mini",
                    "check.1:says yes",
                    1.0,
                    Some(true),
                ),
                score("sunrise", "gpt-4o-mini", "checks", 1.0, Some(true)),
                score("sunrise", "local", "check.1:says yes", 0.0, Some(false)),
                score("sunrise", "local", "checks", 0.0, Some(false)),
                score("sunrise", "gpt-4o-mini", "style.words", 3.0, None),
                score("sunrise", "local", "style.words", 3.0, None),
                score(
                    "sunrise",
                    "gpt-4o-mini",
                    "style.flesch_reading_ease",
                    80.0,
                    None,
                ),
            ],
            judgements: vec![
                pairwise(
                    "sunrise",
                    "gpt-4o-mini",
                    "local",
                    "model_a",
                    "A then B: [[A]]; B then A: [[B]]",
                ),
                pairwise(
                    "photo",
                    "gpt-4o-mini",
                    "local",
                    "inconsistent",
                    "A then B: [[A]]; B then A: [[A]]",
                ),
                rating("sunrise", "gpt-4o-mini", 8.0),
                rating("sunrise", "local", 4.0),
            ],
            votes: Vec::new(),
        };
        assemble(run_info("snapshot"), &plan(), &cells, &grading)
    }

    /// Everything in `page` that could run or load something, besides the report's own style
    /// and script: elements that load or embed (`img`, `iframe`, `link` other than the empty
    /// icon...), event-handler, `style` and `src` attributes, and `javascript:`/`data:` links.
    /// Text is escaped, so every `<` left once the two blocks are cut out opens a real tag.
    fn active_content(page: &str) -> Vec<String> {
        let own_style = format!("<style>{STYLE}</style>");
        let own_script = format!("<script>{SCRIPT}</script>");
        let mut problems = Vec::new();
        if page.matches(&own_style).count() != 1 || page.matches(&own_script).count() != 1 {
            problems.push("the report's own style or script is missing or repeated".to_string());
        }
        let rest = page
            .replacen(&own_style, "", 1)
            .replacen(&own_script, "", 1);
        for tag in rest.split('<').skip(1) {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            let lower = tag.to_ascii_lowercase();
            let name = lower
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap_or("");
            let allowed_icon = lower == "link rel=\"icon\" href=\"data:,\"";
            if [
                "script",
                "style",
                "img",
                "iframe",
                "object",
                "embed",
                "link",
                "base",
                "form",
                "video",
                "audio",
                "source",
                "frame",
                "image",
                "use",
                "foreignobject",
            ]
            .contains(&name)
                && !allowed_icon
            {
                problems.push(format!("<{tag}>"));
            }
            if lower.starts_with("meta") && lower.contains("refresh") {
                problems.push(format!("<{tag}>"));
            }
            // Attribute names: words followed by `=` outside quoted values.
            let mut in_quotes = false;
            let mut word = String::new();
            for c in lower.chars() {
                match c {
                    '"' => in_quotes = !in_quotes,
                    '=' if !in_quotes => {
                        if word.starts_with("on")
                            || [
                                "style",
                                "src",
                                "srcset",
                                "href",
                                "xlink:href",
                                "action",
                                "formaction",
                                "background",
                                "poster",
                            ]
                            .contains(&word.as_str())
                        {
                            let value = &lower[lower
                                .find(&format!("{word}="))
                                .map_or(0, |at| at + word.len() + 1)..];
                            let value = value.trim_start_matches('"');
                            let harmless_link = word == "href"
                                && !value.starts_with("javascript:")
                                && !value.starts_with("data:")
                                && !value.starts_with("vbscript:");
                            if !harmless_link && !allowed_icon {
                                problems.push(format!("<{tag}>"));
                            }
                        }
                        word.clear();
                    }
                    c if !in_quotes && (c.is_ascii_alphanumeric() || c == '-' || c == ':') => {
                        word.push(c)
                    }
                    _ if !in_quotes => word.clear(),
                    _ => {}
                }
            }
        }
        problems
    }

    /// The text between the first `open` and the following `close`.
    fn between<'a>(text: &'a str, open: &str, close: &str) -> &'a str {
        let start = text.find(open).map(|at| at + open.len()).unwrap_or(0);
        let end = text[start..]
            .find(close)
            .map_or(text.len(), |at| start + at);
        &text[start..end]
    }

    fn section(page: &str, task_number: usize) -> &str {
        between(
            page,
            &format!("<section class=\"task\" id=\"task-{task_number}\""),
            "</section>",
        )
    }

    #[test]
    fn the_page_is_self_contained_and_its_csp_covers_exactly_its_own_blocks() {
        let page = render(&graded_report());
        assert!(page.starts_with("<!DOCTYPE html>"));
        let policy = content_security_policy();
        assert!(page.contains(&format!(
            "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">",
            escape(&policy)
        )));
        assert!(policy.starts_with("default-src 'none'; "));
        assert!(policy.contains(&csp_hash(between(&page, "<style>", "</style>"))));
        assert!(policy.contains(&csp_hash(between(&page, "<script>", "</script>"))));
        assert_eq!(active_content(&page), Vec::<String>::new());
        assert!(!page.contains("http://") && !page.contains("https://"));
        assert!(page.contains("window.__versusReady = true"));
    }

    #[test]
    fn answers_sit_side_by_side_rendered_and_highlighted() {
        let page = render(&graded_report());
        assert_eq!(page.matches("data-testid=\"answer\"").count(), 6);
        let sunrise = section(&page, 1);
        let answers = between(
            sunrise,
            "<div class=\"answers\" data-testid=\"answers\">",
            "<div class=\"pairwise\"",
        );
        assert!(
            answers.contains("data-task=\"sunrise\" data-model=\"gpt-4o-mini\" data-status=\"ok\"")
        );
        assert!(answers.contains("data-task=\"sunrise\" data-model=\"local\" data-status=\"ok\""));
        assert!(
            answers.contains("<h2>Why</h2>"),
            "answers are rendered Markdown: {answers}"
        );
        assert!(answers.contains("class=\"answer winner\""));
        let fibonacci = section(&page, 2);
        assert!(
            fibonacci.contains("<span class=\"tok-kw\">def</span>"),
            "{fibonacci}"
        );
        assert!(fibonacci.contains("<span class=\"tok-num\">2</span>"));
        assert!(fibonacci.contains("n &lt; "), "code text stays escaped");
        assert!(fibonacci.contains("Failed after 5 attempt(s): HTTP 500 after 5 attempts"));
        assert!(fibonacci.contains("<dt>cached</dt>"));
        let photo = section(&page, 3);
        assert!(
            photo.contains("<code>cat.png</code>"),
            "suite images are named: {photo}"
        );
    }

    #[test]
    fn criteria_ratings_and_judge_appear() {
        let report = graded_report();
        let page = render(&report);
        let criteria = between(&page, "<table data-testid=\"criteria\">", "</table>");
        assert_eq!(
            criteria.matches("data-criterion=").count(),
            report.criteria.len()
        );
        assert!(criteria.contains("<th scope=\"col\">gpt-4o-mini</th><th scope=\"col\">local</th>"));
        assert!(
            criteria.contains("title=\"checks passed, then judge win rate"),
            "rules are tooltips"
        );
        assert_eq!(
            page.matches("<li id=\"rule-").count(),
            report.criteria.len(),
            "and numbered notes"
        );
        assert!(page.contains("<table data-testid=\"ratings\">"));
        let sunrise = section(&page, 1);
        assert!(sunrise.contains("data-testid=\"pairwise-verdict\" data-verdict=\"model_a\""));
        assert!(sunrise.contains("Judge (judge) rating: <strong>8/10</strong>."));
        assert!(
            sunrise.contains("A is better. [[A]]"),
            "the judge's outputs are shown"
        );
        assert!(sunrise.contains("<span class=\"mark\">FAIL</span> says yes"));
        assert!(sunrise.contains("data-winner=\"gpt-4o-mini\" data-decided-by=\"checks\""));
    }

    #[test]
    fn charts_are_inline_svg_with_words() {
        let page = render(&graded_report());
        let opened = page.matches("<svg").count();
        assert_eq!(
            opened, 5,
            "ratings, win rates, first token, tokens/s, length"
        );
        assert_eq!(opened, page.matches("</svg>").count());
        assert_eq!(
            page.matches("<g class=\"row\">").count(),
            page.matches("</g>").count()
        );
        for id in [
            "ratings",
            "win-rates",
            "ttft",
            "tokens-per-second",
            "length",
        ] {
            let figure = between(&page, &format!("data-testid=\"chart-{id}\""), "</figure>");
            assert!(
                figure.contains(&format!("<title id=\"chart-{id}-title\">")),
                "{id}"
            );
            assert!(figure.contains("role=\"img\""), "{id}");
        }
        let wins = between(&page, "data-testid=\"chart-win-rates\"", "</figure>");
        assert!(
            wins.contains(">reasoning</text>") && wins.contains(">general</text>"),
            "{wins}"
        );
        assert!(
            wins.contains("100% of 1") && wins.contains("50% of 1"),
            "{wins}"
        );
    }

    #[test]
    fn win_rates_count_ties_as_half_and_skip_errors() {
        let mut report = graded_report();
        report.judgements.push(report.judgements[0].clone());
        report.judgements.last_mut().unwrap().verdict = versus_core::JudgeVerdict::Error;
        let rates = win_rates_by_category(&report);
        let row = |model: &str, rate: f64| WinRate {
            model: model.to_string(),
            rate,
            comparisons: 1,
        };
        assert_eq!(
            rates,
            [
                (
                    "reasoning".to_string(),
                    vec![row("gpt-4o-mini", 1.0), row("local", 0.0)]
                ),
                (
                    "general".to_string(),
                    vec![row("gpt-4o-mini", 0.5), row("local", 0.5)]
                ),
            ]
        );
    }

    #[test]
    fn filters_read_data_attributes_written_from_the_evidence() {
        let page = render(&graded_report());
        assert!(page.contains("id=\"filter-category\" data-testid=\"filter-category\""));
        assert!(page.contains("<option value=\"reasoning\">reasoning</option>"));
        assert!(page.contains("data-testid=\"filter-disagreements\""));
        assert!(page.contains("data-testid=\"filter-failed\""));
        let head = |n: usize| between(&page, &format!("id=\"task-{n}\""), ">").to_string();
        assert!(head(1).contains("data-category=\"reasoning\" data-disagreement=\"true\" data-failed-checks=\"true\""), "{}", head(1));
        assert!(
            head(2).contains(
                "data-category=\"coding\" data-disagreement=\"true\" data-failed-checks=\"false\""
            ),
            "{}",
            head(2)
        );
        assert!(head(3).contains("data-category=\"general\" data-disagreement=\"false\" data-failed-checks=\"false\""), "{}", head(3));
    }

    #[test]
    fn everything_but_sanitized_answers_is_escaped() {
        let suite = r#"
name = "<script>suite()</script>"
[[models]]
id = "<script>model()</script>"
spec = "openai:gpt-4o-mini"
[[models]]
id = "b\" onmouseover=\"x()"
spec = "openai-compatible:llama3"
base_url = "http://127.0.0.1:8080/v1"
architecture = "<iframe src=https://evil.example>"
[[tasks]]
id = "<img src=https://evil.example/t.png onerror=task()>"
category = "\"><script>category()</script>"
system = "</div><script>system()</script>"
prompt = "<style>@import url(https://evil.example/p.css)</style>"
images = ["https://evil.example/photo.png"]
reference = "<script>reference()</script>"
tags = ["<b>tag</b>"]
"#;
        let plan = RunPlan {
            suite: Suite::parse(&SuiteSource {
                origin: "hostile.toml",
                text: suite,
            })
            .unwrap(),
            overrides: GenerationParams::default(),
        };
        let task = plan.suite.tasks[0].id.clone();
        let (m1, m2) = (
            plan.suite.models[0].id.clone(),
            plan.suite.models[1].id.clone(),
        );
        let mut failed: CellRecord = not_ok(
            &task,
            &m2,
            CellStatus::Failed,
            ErrorKind::Server,
            "<iframe src=https://evil.example/e>",
        );
        failed.attempts = 2;
        let cells = vec![
            ok(&task, &m1, "<script>answer()</script><img src=https://evil.example/a.png>\n\n```js\nlet s = \"</code><script>x()</script>\";\n```", Some((1, 1)), false),
            failed,
        ];
        let mut judged = pairwise(&task, &m1, &m2, "model_a", "<script>explanation()</script>");
        judged.judge = "<script>judge()</script>".into();
        judged.detail = serde_json::json!({
            "explanation": "<script>explanation()</script>",
            "first": { "output": "<script>output()</script> [[A]]" },
        });
        let grading = Grading {
            scores: vec![ScoreRecord {
                task_id: task.clone(),
                model_id: m1.clone(),
                scorer: "check.1:<script>label()</script>".into(),
                value: Some(0.0),
                passed: Some(false),
                explanation: "<b onmouseover=score()>x</b>".into(),
            }],
            judgements: vec![judged],
            votes: Vec::new(),
        };
        let page = render(&assemble(
            run_info(&plan.suite.name),
            &plan,
            &cells,
            &grading,
        ));
        assert_eq!(active_content(&page), Vec::<String>::new());
        assert!(
            !page.contains("=\"x()"),
            "attribute values stay inside their quotes"
        );
        assert!(
            !page.contains("<b>") && !page.contains("</div><script"),
            "ids and prompts are text"
        );
        assert!(page.contains("&lt;script&gt;model()&lt;/script&gt;"));
        assert!(page.contains("data-model=\"b&quot; onmouseover=&quot;x()\""));
        assert!(page.contains("&lt;script&gt;output()&lt;/script&gt; [[A]]"));
        assert!(
            page.contains("<code>https://evil.example/photo.png</code>"),
            "images named, not loaded"
        );
    }

    #[test]
    fn task_snapshot() {
        let report = graded_report();
        insta::assert_snapshot!(task_section(&report, &report.tasks[0], 0));
    }
}
