//! Grading through the real binary: checks (code run in the sandbox), reference metrics, the
//! judge on a scripted server, verdicts, the criteria table, `versus score`, `versus ratings` and
//! `versus votes import`. Scorer exactness is tested in versus-core against reference vectors,
//! the sandbox's escapes in versus-sandbox, the judge's parsing and bias controls beside its code.
//! New grading cases go here.

mod support;

use support::{sandbox_tests_skipped, str_field, Sandbox, SuiteBuilder};
use versus_testkit::{FakeServer, Rule, Script};

const GOOD_FIB: &str = "Here is a DP solution:\n\n```python\ndef fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n```\n";
const BAD_FIB: &str = "```python\ndef fibonacci(n):\n    return n\n```\n";

const FIB_CHECK: &str = r#"
[[tasks.checks]]
type = "code"
language = "python"
function = "fibonacci"
tests = """
for n, value in enumerate([0, 1, 1, 2, 3, 5, 8, 13, 21, 34]):
    assert candidate(n) == value, f"fib({n}) = {candidate(n)}, expected {value}"
"""
"#;

/// A server where `good` writes a correct Fibonacci, `bad` a wrong one, and `judge` judges with
/// `judge_answer`.
fn server(judge_answer: &str) -> FakeServer {
    FakeServer::start_in_thread(
        Script::new()
            .rule(
                Rule::model("good")
                    .prompt_contains("Fibonacci")
                    .answer(GOOD_FIB),
            )
            .rule(
                Rule::model("bad")
                    .prompt_contains("Fibonacci")
                    .answer(BAD_FIB),
            )
            .rule(Rule::model("judge").answer(judge_answer)),
    )
    .expect("start the fake server")
}

fn suite(server: &FakeServer, judge: bool) -> String {
    let mut text = SuiteBuilder::new()
        .compatible(server, "good")
        .compatible(server, "bad")
        .build();
    text.push_str(&format!(
        "\n[[tasks]]\nid = \"fib\"\ncategory = \"coding\"\nprompt = \"Write the nth Fibonacci number function.\"\n{FIB_CHECK}\n[[tasks]]\nid = \"sum\"\ncategory = \"summarization\"\nprompt = \"Summarize: the sun rises in the east.\"\nreference = \"The sun rises in the east.\"\n"
    ));
    if judge {
        text.push_str(&format!(
            "\n[[models]]\nid = \"judge-model\"\nspec = \"openai-compatible:judge\"\nbase_url = \"{}\"\n",
            server.base_url()
        ));
    }
    text
}

#[test]
fn code_checks_decide_the_coding_verdict() {
    if sandbox_tests_skipped("code_checks_decide_the_coding_verdict") {
        return;
    }
    let server = server("[[A]]");
    let sandbox = Sandbox::new();
    sandbox.suite(suite(&server, false));
    sandbox.run(&[]).success();
    let report = sandbox.report_json(&[]);
    let json = &report.json;
    let score = |task: &str, model: &str, prefix: &str| {
        json["scores"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| {
                s["task"] == task
                    && s["model"] == model
                    && str_field(s, "scorer").starts_with(prefix)
            })
            .cloned()
            .unwrap_or_else(|| panic!("no {prefix} score for {task}/{model}"))
    };
    assert_eq!(score("fib", "good", "check.1")["passed"], true);
    let failed = score("fib", "bad", "check.1");
    assert_eq!(failed["passed"], false);
    assert!(
        str_field(&failed, "explanation").contains("fib(2) = 2, expected 1"),
        "{failed}"
    );
    // The summary task has a reference: ROUGE and BLEU are computed for it.
    assert!(score("sum", "good", "rougeL")["value"].as_f64().is_some());
    assert!(score("sum", "good", "bleu")["value"].as_f64().is_some());
    assert!(score("sum", "good", "style.flesch_reading_ease")["value"]
        .as_f64()
        .is_some());

    let verdict = json["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["task"] == "fib")
        .unwrap();
    assert_eq!(verdict["winner"], "good");
    assert_eq!(verdict["decided_by"], "checks");
    let criteria: Vec<String> = json["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| str_field(c, "criterion"))
        .collect();
    assert_eq!(
        criteria,
        [
            "Reasoning",
            "Coding",
            "Creativity",
            "Summarization",
            "Tone and style",
            "Verbosity",
            "Speed",
            "Cost",
            "Context length",
            "Size and architecture",
            "Multimodal support",
            "Overall"
        ]
    );
    // The checks are the coding row's evidence, and they favour `good`; one task, though, cannot
    // make the difference significant, and the row says so rather than naming a winner.
    let coding = &json["criteria"][1];
    assert_eq!(
        str_field(coding, "measure"),
        "checks passed per task (1 or 0)"
    );
    let comparison = &coding["comparisons"][0];
    assert_eq!(str_field(comparison, "model_a"), "good", "{coding}");
    assert_eq!(comparison["difference"].as_f64(), Some(1.0), "{coding}");
    assert_eq!(str_field(comparison, "test"), "mcnemar_exact");
    assert!(
        str_field(coding, "verdict").ends_with("one task cannot show a difference: add tasks"),
        "{coding}"
    );

    let markdown = sandbox.report_markdown(&[]);
    assert!(
        markdown.contains("**Verdict:** good (decided by checks)"),
        "{markdown}"
    );
    assert!(markdown.contains("## Criteria"), "{markdown}");
}

#[test]
fn a_position_biased_judge_gives_ties_and_rescoring_asks_nobody_again() {
    // Always "[[A]]": whichever answer is shown first wins, so the two orders disagree.
    let server = server("The first answer is better. [[A]]");
    let sandbox = Sandbox::new();
    sandbox.suite(suite(&server, true));
    sandbox.run(&["--judge", "judge-model"]).success();
    let json = sandbox.report_json(&[]).json;
    let pairwise: Vec<&serde_json::Value> = json["judgements"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["kind"] == "pairwise")
        .collect();
    assert!(!pairwise.is_empty());
    for judgement in &pairwise {
        assert_eq!(judgement["verdict"], "inconsistent", "{judgement}");
    }
    let requests_after_run = server.request_count();

    // Re-scoring reads stored answers and cached judgements: no request at all.
    sandbox
        .versus(&["score", "--judge", "judge-model"])
        .success();
    assert_eq!(server.request_count(), requests_after_run);

    // Ratings from the judge's (tied) battles.
    let ratings = sandbox
        .versus(&["ratings", "--format", "json", "--rounds", "50"])
        .success();
    let ratings: serde_json::Value = serde_json::from_str(&ratings.stdout).unwrap();
    assert_eq!(
        ratings["ratings"].as_array().unwrap().len(),
        3,
        "good, bad and the judge-model itself"
    );
    assert!(!ratings["pairs"].as_array().unwrap().is_empty());
}

#[test]
fn a_judge_named_on_the_command_line_takes_id_spec_and_base_url() {
    let server = server("[[A]]");
    let sandbox = Sandbox::new();
    sandbox.suite(suite(&server, false));
    sandbox.run(&["--no-judge"]).success();
    let url = server.base_url();
    sandbox
        .versus(&[
            "score",
            "--judge",
            "referee=openai-compatible:judge",
            "--base-url",
            &url,
        ])
        .success();
    assert!(server.count_where(|r| r.model == "judge") > 0);
    let json = sandbox.report_json(&[]).json;
    let judges: Vec<&str> = json["judgements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["judge"].as_str().unwrap_or_default())
        .collect();
    assert!(
        !judges.is_empty() && judges.iter().all(|j| *j == "referee"),
        "{judges:?}"
    );
    // `versus run` gives its `--base-url` to the judge too.
    sandbox
        .run(&[
            "--fresh",
            "--judge",
            "openai-compatible:judge",
            "--base-url",
            &url,
        ])
        .success();
}

#[test]
fn imported_votes_feed_the_ratings() {
    let sandbox = Sandbox::new();
    let mut lines = String::new();
    for _ in 0..30 {
        lines
            .push_str("{\"model_a\": \"alpha\", \"model_b\": \"beta\", \"winner\": \"model_a\"}\n");
    }
    for _ in 0..10 {
        lines
            .push_str("{\"model_a\": \"alpha\", \"model_b\": \"beta\", \"winner\": \"model_b\"}\n");
        lines.push_str(
            "{\"model_a\": \"beta\", \"model_b\": \"gamma\", \"winner\": \"tie (bothbad)\"}\n",
        );
    }
    sandbox.write("battles.jsonl", lines);
    sandbox
        .versus(&["votes", "import", "battles.jsonl"])
        .success()
        .stderr_has("imported 50 battles");
    let table = sandbox.versus(&["ratings", "--rounds", "100"]).success();
    let first = table.stdout.lines().nth(1).unwrap_or_default();
    assert!(first.contains("alpha"), "alpha wins most: {table}");
    assert!(table.stdout.contains("50 battles"), "{table}");
    assert!(table.stdout.contains("alpha vs beta: 30-0-10"), "{table}");
    assert!(table.stdout.contains("beta vs gamma: 0-10-0"), "{table}");

    sandbox.write(
        "bad.jsonl",
        "{\"model_a\": \"a\", \"model_b\": \"b\", \"winner\": \"model_a\"}\n{\"model_a\": \"a\", \"model_b\": \"b\", \"winner\": \"draw\"}\n",
    );
    sandbox
        .versus(&["votes", "import", "bad.jsonl"])
        .usage_error(&["bad.jsonl", "line 2", "draw"]);
}

#[test]
fn ratings_without_battles_say_what_to_do() {
    let server = server("[[A]]");
    let sandbox = Sandbox::new();
    sandbox.suite(suite(&server, false));
    sandbox.run(&[]).success();
    sandbox
        .versus(&["ratings"])
        .usage_error(&["no battles to rate", "--judge"]);
}

#[test]
fn the_seed_suite_is_scored_end_to_end() {
    if sandbox_tests_skipped("the_seed_suite_is_scored_end_to_end") {
        return;
    }
    let server = FakeServer::start_in_thread(
        Script::new().rule(
            Rule::model("good")
                .prompt_contains("Fibonacci")
                .answer(GOOD_FIB),
        ),
    )
    .expect("start the fake server");
    let sandbox = Sandbox::new();
    let base_url = server.base_url();
    sandbox
        .versus(&[
            "run",
            "--builtin",
            "seed",
            "--model",
            "good=openai-compatible:good",
            "--base-url",
            &base_url,
        ])
        .success();
    let json = sandbox.report_json(&[]).json;
    let scores = json["scores"].as_array().unwrap();
    let find = |task: &str, prefix: &str| {
        scores
            .iter()
            .find(|s| s["task"] == task && str_field(s, "scorer").starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} score for {task}"))
    };
    let code = find("fibonacci", "check.1:correct for n = 0..30");
    assert_eq!(code["passed"], true, "{code}");
    // The check's result says which total memory cap applied.
    assert!(
        str_field(code, "explanation").contains("[memory: "),
        "{code}"
    );
    assert!(
        find("gutenberg-summary", "rougeL")["value"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(find("sunrise", "check.1")["passed"].is_boolean());
    assert_eq!(json["verdicts"].as_array().unwrap().len(), 5);
}

#[test]
fn style_control_rates_with_the_arenas_covariates_and_leaves_out_battles_without_answers() {
    // Imported votes have no answers: style control has nothing to fit.
    let votes_only = Sandbox::new();
    votes_only.write(
        "battles.jsonl",
        "{\"model_a\": \"alpha\", \"model_b\": \"beta\", \"winner\": \"model_a\"}\n",
    );
    votes_only
        .versus(&["votes", "import", "battles.jsonl"])
        .success();
    votes_only
        .versus(&["ratings", "--style-control"])
        .usage_error(&["--style-control", "token count"]);

    // A judged run, where the judge prefers the dynamic-programming answer in either order and
    // calls everything else a tie, plus two imported votes.
    let server = FakeServer::start_in_thread(
        Script::new()
            .rule(
                Rule::model("judge")
                    .prompt_contains("[The Start of Assistant A's Answer]\nHere is a DP")
                    .answer("[[A]]"),
            )
            .rule(
                Rule::model("judge")
                    .prompt_contains("[The Start of Assistant B's Answer]\nHere is a DP")
                    .answer("[[B]]"),
            )
            .rule(Rule::model("judge").answer("Equal. [[C]]"))
            .rule(
                Rule::model("good")
                    .prompt_contains("Fibonacci")
                    .answer(GOOD_FIB),
            )
            .rule(
                Rule::model("bad")
                    .prompt_contains("Fibonacci")
                    .answer(BAD_FIB),
            ),
    )
    .expect("start the fake server");
    let sandbox = Sandbox::new();
    sandbox.suite(suite(&server, true));
    sandbox.run(&["--judge", "judge-model"]).success();
    sandbox.write(
        "battles.jsonl",
        "{\"model_a\": \"good\", \"model_b\": \"bad\", \"winner\": \"model_a\"}\n\
         {\"model_a\": \"bad\", \"model_b\": \"good\", \"winner\": \"model_b\"}\n",
    );
    sandbox
        .versus(&["votes", "import", "battles.jsonl"])
        .success();

    let table = sandbox
        .versus(&["ratings", "--style-control", "--rounds", "20"])
        .success();
    for needle in [
        "PLAIN BT",
        "Bradley-Terry with style control",
        "style coefficients",
        "length ",
        "headers ",
        "list_items ",
        "bold ",
        "note: 2 of 8 battles left out of the style-controlled fit",
    ] {
        assert!(table.stdout.contains(needle), "{needle}: {table}");
    }
    for model in ["good", "bad", "judge-model"] {
        assert!(
            table.stdout.lines().any(|line| line.contains(model)),
            "{model}: {table}"
        );
    }

    let json = sandbox
        .versus(&[
            "ratings",
            "--style-control",
            "--rounds",
            "20",
            "--format",
            "json",
        ])
        .success()
        .stderr_has("2 of 8 battles left out");
    let json: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["battles"], 8);
    assert_eq!(json["ratings"].as_array().unwrap().len(), 3);
    let style = &json["style_control"];
    assert_eq!(style["battles"], 6, "{style}");
    assert_eq!(style["left_out"], 2);
    assert_eq!(style["regularization"], 0.5);
    let ratings = style["ratings"].as_array().unwrap();
    assert_eq!(ratings.len(), 3);
    assert_eq!(ratings[0]["model"], "good", "{style}");
    let features: Vec<String> = style["style_coefficients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            assert!(c["value"].as_f64().unwrap().is_finite(), "{c}");
            assert!(c["lower"].as_f64().unwrap() <= c["upper"].as_f64().unwrap());
            str_field(c, "feature")
        })
        .collect();
    assert_eq!(features, ["length", "headers", "list_items", "bold"]);
    // The winner also wrote the longest answers: length gets some of the credit.
    let length = style["style_coefficients"][0]["value"].as_f64().unwrap();
    assert!(length > 0.0, "{style}");

    // Without the flag, the JSON has no style control.
    let plain = sandbox
        .versus(&["ratings", "--rounds", "20", "--format", "json"])
        .success();
    let plain: serde_json::Value = serde_json::from_str(&plain.stdout).unwrap();
    assert!(plain.get("style_control").is_none());
}
