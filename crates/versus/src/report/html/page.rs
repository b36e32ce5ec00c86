//! The page around the report: the document and its head (the Content-Security-Policy that
//! allows only our own inline style and script, by hash), the body's layout (header with the
//! theme toggle, contents, one section per part, footer), and the task filters. The script
//! (`assets/report.js`) shows the toggle and the filters; without it the theme follows the
//! system and every task is shown.

use std::fmt::Write;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::report_charts::charts;
use super::tables::{criteria_table, figures_table, models_table, ratings_table};
use super::tasks::task_section;
use crate::render::escape;
use crate::report::format::short_hash;
use crate::report::Report;

/// The page's stylesheet; it loads nothing (no URL functions, no imports, no web fonts).
pub const STYLE: &str = include_str!("../assets/report.css");
/// The page's script: theme toggle and task filters, working only on data attributes and
/// `hidden`; it never inserts HTML.
pub const SCRIPT: &str = include_str!("../assets/report.js");

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
pub(super) fn csp_hash(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// The document: the head (policy, our style and script) and then [`body`].
pub(super) fn write_page(out: &mut String, report: &Report) -> std::fmt::Result {
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

    if report.samples.is_some() {
        writeln!(
            out,
            "<section id=\"samples\" aria-labelledby=\"samples-title\">\n<h2 id=\"samples-title\">Repeated samples</h2>"
        )?;
        out.push_str(&super::tables::samples_table(report));
        writeln!(out, "</section>")?;
    }

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
        "<nav class=\"toc\" aria-label=\"Contents\" data-testid=\"toc\">\n<p><a href=\"#models\">Models</a> · <a href=\"#criteria\">Criteria</a> · <a href=\"#ratings\">Ratings</a> · <a href=\"#charts\">Charts</a> · <a href=\"#figures\">Figures</a>{} · <a href=\"#tasks\">Tasks</a></p>\n<ol>",
        if report.samples.is_some() {
            " · <a href=\"#samples\">Repeated samples</a>"
        } else {
            ""
        }
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

fn write_filters(out: &mut String, report: &Report) -> std::fmt::Result {
    // Hidden until the script shows it: without the script the filters could not work.
    writeln!(
        out,
        "<div class=\"filters\" id=\"filters\" data-testid=\"filters\" role=\"group\" aria-label=\"Filter tasks\" hidden>"
    )?;
    writeln!(
        out,
        "<label>Category <select id=\"filter-category\" data-testid=\"filter-category\">\n<option value=\"\">all</option>"
    )?;
    for category in super::categories(report) {
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
