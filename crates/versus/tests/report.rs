//! `versus report` (Markdown and JSON, `--run`, `-o`) and `versus runs`, read back from the
//! database of real runs.
//!
//! New report or run-listing tests go here. Helpers are in `support/mod.rs`.

mod support;

use support::*;
use versus_testkit::{default_answer, word_count, FakeServer, Fault, Rule, Script};

/// A sandbox with the standard suite on a healthy server, run once.
fn ran_standard() -> (Sandbox, FakeServer) {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.suite(SuiteBuilder::standard(&server).build());
    sandbox.run(&["--quiet"]).success();
    (sandbox, server)
}

/// The cells of one row of `versus runs`' table (columns are two or more spaces apart).
fn table_row(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|cell| !cell.is_empty())
        .collect()
}

/// The position of `needle` in `text`, which must contain it.
#[track_caller]
fn position(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("the report lacks {needle:?}\n{text}"))
}

// ---- Markdown ----

#[test]
fn markdown_shows_each_prompt_with_each_models_answer_and_the_figures() {
    let (sandbox, _server) = ran_standard();
    let markdown = sandbox.report_markdown(&[]);

    assert!(markdown.starts_with("# versus: itest\n"), "{markdown}");
    assert!(markdown.contains("Run 1 (finished)"), "{markdown}");
    let models = position(&markdown, "## Models");
    assert!(markdown.contains("| m1 | `openai:m1` |"), "{markdown}");
    assert!(
        markdown.contains("| m2 | `openai-compatible:m2` |"),
        "{markdown}"
    );
    let tasks = position(&markdown, "## Tasks");
    assert!(models < tasks);

    // Every task in order: its heading, its prompt, then each model's answer under its heading.
    let mut from = tasks;
    for (index, prompt) in PROMPTS.iter().enumerate() {
        let section = &markdown[from..];
        let heading = position(
            section,
            &format!("### {}. {} (general)", index + 1, task_id(index)),
        );
        let quoted = position(section, &format!("**User:**\n\n> {prompt}\n"));
        let m1 = position(
            section,
            &format!("#### m1\n\n{}\n\n*latency ", default_answer("m1", prompt)),
        );
        let m2 = position(
            section,
            &format!("#### m2\n\n{}\n\n*latency ", default_answer("m2", prompt)),
        );
        assert!(heading < quoted && quoted < m1 && m1 < m2, "{markdown}");
        let tokens = format!("· {} tokens", word_count(&default_answer("m1", prompt)));
        assert!(section[m1..m2].contains(&tokens), "{markdown}");
        from += m2;
    }

    let figures = position(&markdown, "## Figures");
    assert!(figures > from, "the figures come last");
    assert!(markdown.contains(
        "| Model | Answered | Failed | Unsupported | Mean latency | Median latency | Mean time to first token | Mean tokens/s | Input tokens | Output tokens | Cost |"
    ));
    for model in ["m1", "m2"] {
        let row = markdown[figures..]
            .lines()
            .find(|line| line.starts_with(&format!("| {model} |")))
            .unwrap_or_else(|| panic!("no figures row for {model}\n{markdown}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(&cells[2..5], ["3/3", "0", "0"], "{row}");
        let input: u64 = PROMPTS.iter().map(|p| word_count(p)).sum();
        let output: u64 = PROMPTS
            .iter()
            .map(|p| word_count(&default_answer(model, p)))
            .sum();
        assert_eq!(cells[9], input.to_string(), "{row}");
        assert_eq!(cells[10], output.to_string(), "{row}");
        assert_eq!(cells[11], "–", "no price, no cost: {row}");
    }
}

#[test]
fn markdown_shows_failures_and_unsupported_cells() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(
        Script::new().rule(Rule::model("m1").fault_forever(Fault::status(404))),
    )
    .expect("start the fake server");
    sandbox.write("pixel.png", PIXEL_PNG);
    sandbox.suite(
        SuiteBuilder::new()
            .model_with("openai:m1", &server, "modalities = [\"text\", \"image\"]\n")
            .compatible(&server, "m2")
            .task_with("look", "What is this?", "images = [\"pixel.png\"]\n")
            .build(),
    );
    sandbox.run(&["--quiet"]).code(1);
    let markdown = sandbox.report_markdown(&[]);
    assert!(markdown.contains("Images: pixel.png"), "{markdown}");
    assert!(
        markdown.contains("#### m1\n\n*Failed after 1 attempt(s): model `m1` not found at"),
        "{markdown}"
    );
    assert!(
        markdown.contains("#### m2\n\n*Unsupported: model `m2` does not read images"),
        "{markdown}"
    );
    assert!(markdown.contains("| m1 | 0/1 | 1 | 0 |"), "{markdown}");
    assert!(markdown.contains("| m2 | 0/1 | 0 | 1 |"), "{markdown}");
}

#[test]
fn output_flag_writes_the_report_to_a_file() {
    let (sandbox, _server) = ran_standard();
    let on_stdout = sandbox.report_markdown(&[]);
    // Reports need only the database.
    std::fs::remove_file(sandbox.path().join("suite.toml")).expect("remove the suite");

    let output = sandbox.versus(&["report", "-o", "report.md"]).success();
    assert!(output.stdout.is_empty(), "{output}");
    let written = std::fs::read_to_string(sandbox.path().join("report.md")).expect("report.md");
    assert_eq!(written, on_stdout);

    sandbox
        .versus(&["report", "--format", "json", "--output", "report.json"])
        .success();
    let written = std::fs::read_to_string(sandbox.path().join("report.json")).expect("json");
    let report = Report::parse(&written);
    assert_standard_results(&report, &["m1", "m2"], &[]);
}

#[test]
fn run_flag_picks_the_run() {
    let (sandbox, _server) = ran_standard();
    sandbox.run(&["--quiet", "--task", "t2"]).success();

    let latest = sandbox.report_json(&[]);
    assert_eq!(latest.json["run"]["id"], 2);
    assert_eq!(latest.results().len(), 2);
    assert!(latest.results().iter().all(|r| r["task"] == "t2"));

    let first = sandbox.report_json(&["--run", "1"]);
    assert_eq!(first.json["run"]["id"], 1);
    assert_standard_results(&first, &["m1", "m2"], &[]);

    let markdown = sandbox.report_markdown(&["--run", "1"]);
    assert!(markdown.contains("Run 1 (finished)"), "{markdown}");
    assert!(markdown.contains(PROMPTS[0]), "{markdown}");

    sandbox
        .versus(&["report", "--run", "7"])
        .usage_error(&["no run 7 in this database", "versus runs"]);
    // A failure that is not a usage mistake (here, a folder that cannot be written) exits 1.
    sandbox
        .versus(&["report", "-o", "no-such-folder/report.md"])
        .code(1)
        .stderr_has("cannot write no-such-folder/report.md");
}

#[test]
fn json_report_describes_models_tasks_and_totals() {
    let (sandbox, server) = ran_standard();
    let report = sandbox.report_json(&[]);
    let json = &report.json;
    assert_eq!(json["schema_version"], 4);
    assert_eq!(json["tool"]["name"], "versus");
    assert_eq!(json["run"]["suite"], "itest");
    assert!(json["run"]["finished_at"].is_string());
    assert_eq!(json["models"][0]["id"], "m1");
    assert_eq!(json["models"][0]["spec"], "openai:m1");
    assert_eq!(json["models"][0]["base_url"], server.base_url());
    assert_eq!(json["models"][0]["params"]["temperature"], 0.0);
    assert_eq!(json["models"][1]["spec"], "openai-compatible:m2");
    let tasks = json["tasks"].as_array().expect("tasks");
    assert_eq!(tasks.len(), 3);
    for (index, prompt) in PROMPTS.iter().enumerate() {
        assert_eq!(tasks[index]["id"], task_id(index));
        assert_eq!(tasks[index]["category"], "general");
        assert_eq!(report.prompt(&task_id(index)), *prompt);
    }
    for (position, model) in ["m1", "m2"].into_iter().enumerate() {
        let summary = &json["summary"][position];
        assert_eq!(summary["model"], model);
        assert_eq!(summary["cells"], 3);
        assert_eq!(summary["ok"], 3);
        assert_eq!(summary["failed"], 0);
        assert_eq!(summary["answers_with_usage"], 3);
        let input: u64 = PROMPTS.iter().map(|p| word_count(p)).sum();
        let output: u64 = PROMPTS
            .iter()
            .map(|p| word_count(&default_answer(model, p)))
            .sum();
        assert_eq!(summary["prompt_tokens"], input);
        assert_eq!(summary["completion_tokens"], output);
        assert!(summary["mean_latency_ms"].as_f64().is_some(), "{summary}");
        assert!(summary["median_ttft_ms"].as_f64().is_some(), "{summary}");
        assert!(summary["cost_usd"].is_null(), "no price, no cost");
    }
}

#[test]
fn report_without_a_database_says_so() {
    let sandbox = Sandbox::new();
    sandbox
        .versus(&["report"])
        .usage_error(&["no database at", "versus.db", "versus run"]);
    assert!(!sandbox.db().exists(), "report does not create a database");
    sandbox
        .versus(&["runs"])
        .usage_error(&["no database at", "versus run"]);
    assert!(!sandbox.db().exists(), "runs does not create a database");
}

#[test]
fn report_on_an_empty_database_says_there_are_no_runs() {
    let sandbox = Sandbox::new();
    sandbox.write("versus.db", b"");
    sandbox
        .versus(&["report", "--format", "json"])
        .usage_error(&["the database has no runs yet", "versus run"]);
    let output = sandbox.versus(&["runs"]).success();
    assert!(output.stdout.contains("no runs yet"), "{output}");
    assert_eq!(sandbox.runs_json(), Vec::<serde_json::Value>::new());
}

// ---- versus runs ----

#[test]
fn runs_lists_every_run_with_its_counts() {
    let (sandbox, server) = ran_standard();
    // A second run in which m2 fails.
    server.set_script(Script::new().rule(Rule::model("m2").fault_forever(Fault::status(400))));
    sandbox
        .run(&["--quiet", "--task", "t1", "--no-cache"])
        .code(1);

    let output = sandbox.versus(&["runs"]).success();
    let lines: Vec<&str> = output.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "a header and a row per run\n{output}");
    assert_eq!(
        table_row(lines[0]),
        [
            "ID", "STARTED", "SUITE", "MODELS", "CELLS", "OK", "FAILED", "UNSUPP", "PENDING",
            "BATCHES", "STATUS"
        ]
    );
    // Newest first.
    let newest = table_row(lines[1]);
    assert_eq!(newest[0], "2");
    assert_eq!(
        &newest[2..],
        ["itest", "m1, m2", "2", "1", "1", "0", "0", "-", "finished"]
    );
    let oldest = table_row(lines[2]);
    assert_eq!(oldest[0], "1");
    assert_eq!(
        &oldest[2..],
        ["itest", "m1, m2", "6", "6", "0", "0", "0", "-", "finished"]
    );
    assert!(
        oldest[1].len() == 19 && oldest[1].contains(' '),
        "{oldest:?}"
    );

    let runs = sandbox.runs_json();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["id"], 2);
    assert_eq!(runs[0]["cells"], 2);
    assert_eq!(runs[0]["ok"], 1);
    assert_eq!(runs[0]["failed"], 1);
    assert_eq!(runs[1]["id"], 1);
    assert_eq!(runs[1]["suite"], "itest");
    assert_eq!(runs[1]["models"], serde_json::json!(["m1", "m2"]));
    assert_eq!(runs[1]["cells"], 6);
    assert_eq!(runs[1]["ok"], 6);
    assert_eq!(runs[1]["status"], "finished");
}
