//! The HTML report's unit tests: the whole page from a graded run (self-contained, its CSP
//! covering exactly its own blocks, inert by `versus_testkit::html`'s one check), its tables,
//! charts and filters, hostile text everywhere, and a snapshot of one task's section.

use super::page::{content_security_policy, csp_hash, SCRIPT, STYLE};
use super::render;
use super::report_charts::{win_rates_by_category, WinRate};
use super::tasks::task_section;
use crate::render::escape;
use crate::report::tests::{not_ok, ok, plan};
use crate::report::{assemble, Grading, Report, RunInfo};
use versus_core::RunPlan;
use versus_core::{ErrorKind, GenerationParams, Suite, SuiteSource};
use versus_store::{CellRecord, CellStatus, JudgementRecord, ScoreRecord};
use versus_testkit::html::{assert_inert, Own};

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

fn score(task: &str, model: &str, scorer: &str, value: f64, passed: Option<bool>) -> ScoreRecord {
    ScoreRecord {
        task_id: task.into(),
        model_id: model.into(),
        sample: 0,
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
    assert_inert(&page, &Own::report_page(STYLE, SCRIPT));
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
    assert!(answers.contains("data-task=\"sunrise\" data-model=\"gpt-4o-mini\" data-status=\"ok\""));
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
        criteria.contains("title=\"paired over the category"),
        "rules are tooltips"
    );
    assert_eq!(
        page.matches("<li id=\"rule-").count(),
        report.criteria.len(),
        "and numbered notes"
    );
    assert!(page.contains("<table data-testid=\"ratings\">"));
    let measured = between(&page, "data-testid=\"judge-measures\"", "</div>");
    assert!(measured.contains("data-judge=\"judge\""), "{measured}");
    assert!(
        measured.contains("<li>Position: no single-order verdict named a winner, so there is nothing to test (4 unread verdicts not counted).</li>"),
        "these details hold no parsed verdicts: {measured}"
    );
    assert!(measured.contains("<li>Self-preference: judge is not one of the models compared"));
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
    assert!(
        head(1).contains(
            "data-category=\"reasoning\" data-disagreement=\"true\" data-failed-checks=\"true\""
        ),
        "{}",
        head(1)
    );
    assert!(
        head(2).contains(
            "data-category=\"coding\" data-disagreement=\"true\" data-failed-checks=\"false\""
        ),
        "{}",
        head(2)
    );
    assert!(
        head(3).contains(
            "data-category=\"general\" data-disagreement=\"false\" data-failed-checks=\"false\""
        ),
        "{}",
        head(3)
    );
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
            sample: 0,
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
    assert_inert(&page, &Own::report_page(STYLE, SCRIPT));
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
    // Beside the report module's other snapshots, where it was when this was one file.
    insta::with_settings!({ snapshot_path => "../snapshots" }, {
        insta::assert_snapshot!(task_section(&report, &report.tasks[0], 0));
    });
}

#[test]
fn later_samples_are_collapsed_inert_and_measured() {
    let mut cells = graded_report_cells_with_samples();
    cells.sort_by_key(|c| c.sample);
    let grading = Grading {
        scores: (0..3)
            .map(|sample| ScoreRecord {
                sample,
                ..score("sunrise", "local", "checks", 0.0, Some(sample == 1))
            })
            .collect(),
        ..Grading::default()
    };
    let report = assemble(run_info("samples"), &plan(), &cells, &grading);
    let page = render(&report);
    assert_inert(&page, &Own::report_page(STYLE, SCRIPT));
    let sunrise = section(&page, 1);
    assert!(
        sunrise.contains("<details class=\"samples\" data-testid=\"later-samples\"><summary>2 more samples</summary>"),
        "{sunrise}"
    );
    assert!(sunrise.contains("local, sample 3</h5>"), "{sunrise}");
    assert!(
        sunrise.contains("3 samples: 3 answered, 3 different answers; checks passed in 1 of 3"),
        "{sunrise}"
    );
    assert!(
        !page.contains("<img src=x onerror"),
        "a sample's HTML is sanitized"
    );
    let table = between(&page, "data-testid=\"samples-table\"", "</table>");
    assert!(table.contains("data-model=\"local\""), "{table}");
    assert!(
        page.contains("href=\"#samples\""),
        "the table of contents links it"
    );
}

/// The snapshot run's cells, with `sunrise` asked three times of `local`, a hostile later
/// sample among them.
fn graded_report_cells_with_samples() -> Vec<CellRecord> {
    let mut cells = vec![
        ok("sunrise", "gpt-4o-mini", "Yes.", None, false),
        ok("sunrise", "local", "Probably.", None, false),
    ];
    for (sample, text) in [(1, "Maybe <img src=x onerror=alert(1)>"), (2, "Surely.")] {
        let mut cell = ok("sunrise", "local", text, None, false);
        cell.sample = sample;
        cells.push(cell);
    }
    cells
}
