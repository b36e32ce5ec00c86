//! The HTML report: one self-contained page built from the same `Report` as the Markdown and
//! JSON reports. It opens offline and nothing on it makes a request: the stylesheet and the one
//! small script are inline, charts are SVG written here, and a Content-Security-Policy meta tag
//! (scripts and styles allowed only by the hashes of our own two blocks, no connections, images
//! only from `data:`) stops anything else a browser might try.
//!
//! Model output is untrusted: answers reach the page only through [`crate::render::answer_html`]
//! (`crate::render::markdown_to_safe_html`, then `highlight::highlight_code_blocks`, which only
//! adds our own spans around escaped text); everything else (ids, prompts, errors, judge
//! outputs, suite names) goes through `crate::render::escape`. Numbers are written by
//! `crate::report::format`, as in the Markdown report.
//!
//! The page is built in parts, one file each:
//! - `page.rs`: the document (head, Content-Security-Policy, inline style and script), the body's
//!   layout (header, contents, sections, footer), the task filters and the theme toggle;
//! - `tables.rs`: the models, criteria, ratings and per-model figures tables;
//! - `report_charts.rs`: which charts the report draws, from what evidence; `charts.rs` draws
//!   them as inline SVG;
//! - `tasks.rs`: one section per task (prompt, answers side by side with their figures, checks
//!   and scores, the judge's outputs, the verdict) and the flags the filters read;
//! - `highlight.rs`: server-side highlighting of code in sanitized answers.
//!
//! The parts are public so that `versus view` can reuse them: [`tasks::task_section`],
//! [`tables::models_table`], [`tables::criteria_table`], [`tables::ratings_table`],
//! [`report_charts::charts`], [`page::STYLE`], [`page::SCRIPT`] and
//! [`page::content_security_policy`]; answers go through [`crate::render::answer_html`].

pub mod charts;
pub mod highlight;
pub mod page;
pub mod report_charts;
pub mod tables;
pub mod tasks;
#[cfg(test)]
mod tests;

use super::Report;

/// The whole page.
pub fn render(report: &Report) -> String {
    let mut out = String::with_capacity(64 * 1024);
    // Writing to a String cannot fail.
    let _ = page::write_page(&mut out, report);
    out
}

/// The run's task categories, each once, in task order (for the filters and the win-rate chart).
fn categories(report: &Report) -> Vec<&str> {
    let mut categories: Vec<&str> = Vec::new();
    for task in &report.tasks {
        if !categories.contains(&task.category.as_str()) {
            categories.push(&task.category);
        }
    }
    categories
}
