//! `versus run` against versus-testkit's fake server: the happy path, every fault the client
//! retries (or must not), keys, images, and choosing models and tasks on the command line.
//!
//! New tests of the run loop go here; suite and command-line mistakes go in `suite_errors.rs`,
//! cache and resume in `resume.rs`, `versus report`/`versus runs` in `report.rs`. Helpers are in
//! `support/mod.rs`.

mod support;

use std::time::Duration;

use base64::Engine as _;
use serde_json::json;
use support::*;
use versus_testkit::{
    default_answer, openai_error_body, word_count, FakeServer, Fault, Rule, Script,
};

/// The standard suite (`openai:m1`, `openai-compatible:m2`, tasks t1..t3) run once against a
/// server following `script`, after `tweak` adjusted the suite.
struct Ran {
    sandbox: Sandbox,
    server: FakeServer,
    output: Output,
    report: Report,
}

fn run_standard(script: Script, tweak: impl FnOnce(SuiteBuilder) -> SuiteBuilder) -> Ran {
    run_standard_in(Sandbox::with_key(), script, tweak)
}

fn run_standard_in(
    sandbox: Sandbox,
    script: Script,
    tweak: impl FnOnce(SuiteBuilder) -> SuiteBuilder,
) -> Ran {
    let server = FakeServer::start_in_thread(script).expect("start the fake server");
    sandbox.suite(tweak(SuiteBuilder::standard(&server)).build());
    let output = sandbox.run(&[]);
    let report = sandbox.report_json(&[]);
    Ran {
        sandbox,
        server,
        output,
        report,
    }
}

/// A rule for model `m1`'s requests for task t1 only.
fn m1_t1() -> Rule {
    Rule::model("m1").prompt_contains(PROMPTS[0])
}

/// Asserts how many requests the server got for each cell of the standard suite: 1, except the
/// `(task, model, requests)` listed.
#[track_caller]
fn assert_requests(server: &FakeServer, models: &[&str], except: &[(&str, &str, usize)]) {
    for (index, prompt) in PROMPTS.iter().enumerate() {
        let task = task_id(index);
        for model in models {
            let expected = except
                .iter()
                .find(|(t, m, _)| *t == task && m == model)
                .map_or(1, |(_, _, n)| *n);
            assert_eq!(
                count_for(server, model, prompt),
                expected,
                "requests for {task} on {model}"
            );
        }
    }
}

// ---- the happy path ----

#[test]
fn every_task_runs_on_every_model() {
    let ran = run_standard(Script::new(), |s| s);
    let output = ran.output.success();
    assert!(
        output
            .stderr
            .contains("6 cells, 6 ok (0 from cache), 0 failed"),
        "{output}"
    );

    assert_standard_results(&ran.report, &["m1", "m2"], &[]);
    assert_eq!(ran.report.json["schema_version"], 4);
    assert_eq!(ran.report.json["run"]["status"], "finished");

    let requests = ran.server.requests();
    assert_eq!(requests.len(), 6);
    assert_requests(&ran.server, &["m1", "m2"], &[]);
    let bearer = format!("Bearer {KEY}");
    for request in &requests {
        match request.model.as_str() {
            "m1" => assert_eq!(request.authorization.as_deref(), Some(bearer.as_str())),
            "m2" => assert_eq!(request.authorization, None, "no key for openai-compatible"),
            other => panic!("unexpected model {other}"),
        }
        assert!(request.stream, "streamed");
        assert!(request.include_usage, "stream_options.include_usage");
        assert_eq!(request.params.temperature, Some(0.0));
        assert_eq!(
            request.body["stream_options"],
            json!({"include_usage": true})
        );
        assert_eq!(
            request.messages,
            json!([{"role": "user", "content": request.last_user_text}]),
            "one plain user message"
        );
    }
}

// ---- faults the client recovers from ----

#[test]
fn rate_limit_waits_for_retry_after() {
    let ran = run_standard(
        Script::new().rule(m1_t1().fault(Fault::status(429).retry_after("1"))),
        |s| s,
    );
    ran.output.success();
    assert_standard_results(&ran.report, &["m1", "m2"], &[("t1", "m1", 2)]);
    assert_requests(&ran.server, &["m1", "m2"], &[("t1", "m1", 2)]);
    let tries = requests_for(&ran.server, "m1", PROMPTS[0]);
    assert_eq!(tries[0].status, 429);
    assert_eq!(tries[1].status, 200);
    let waited = tries[1].received_at - tries[0].received_at;
    assert!(
        waited >= Duration::from_secs(1),
        "Retry-After: 1 was not honoured: retried after {waited:?}"
    );
}

#[test]
fn server_errors_are_retried() {
    let ran = run_standard(
        Script::new().rule(m1_t1().faults([Fault::status(500), Fault::status(503)])),
        |s| s,
    );
    ran.output.success();
    assert_standard_results(&ran.report, &["m1", "m2"], &[("t1", "m1", 3)]);
    assert_requests(&ran.server, &["m1", "m2"], &[("t1", "m1", 3)]);
}

#[test]
fn a_cut_stream_is_retried_and_the_answer_is_whole() {
    let rule = Rule::model("m2")
        .prompt_contains(PROMPTS[1])
        .fault(Fault::cut_stream(2));
    let ran = run_standard(Script::new().rule(rule), |s| s);
    ran.output.success();
    // The output is the complete answer once, not the cut prefix followed by the retry.
    assert_standard_results(&ran.report, &["m1", "m2"], &[("t2", "m2", 2)]);
    assert_requests(&ran.server, &["m1", "m2"], &[("t2", "m2", 2)]);
}

#[test]
fn an_answer_slower_than_the_timeout_is_retried() {
    let ran = run_standard(
        Script::new().rule(m1_t1().fault(Fault::delay(Duration::from_secs(3)))),
        |s| s.default("timeout", "0.5"),
    );
    let output = ran.output.success();
    assert!(
        output.elapsed < Duration::from_secs(3),
        "the client waited for the slow answer instead of timing out\n{output}"
    );
    assert_standard_results(&ran.report, &["m1", "m2"], &[("t1", "m1", 2)]);
    assert_requests(&ran.server, &["m1", "m2"], &[("t1", "m1", 2)]);
}

#[test]
fn malformed_json_is_retried() {
    let ran = run_standard(
        Script::new().rule(m1_t1().fault(Fault::MalformedJson)),
        |s| s,
    );
    ran.output.success();
    assert_standard_results(&ran.report, &["m1", "m2"], &[("t1", "m1", 2)]);
    assert_requests(&ran.server, &["m1", "m2"], &[("t1", "m1", 2)]);
}

// ---- faults the client does not recover from ----

#[test]
fn a_rejected_key_fails_that_model_once_per_cell_and_never_leaks() {
    // The server echoes the key back in its error, as some do: versus must not repeat it.
    let body = openai_error_body(
        &format!("Incorrect API key provided: {KEY}"),
        "invalid_request_error",
        Some("invalid_api_key"),
    );
    let ran = run_standard(
        Script::new().rule(Rule::model("m1").fault_forever(Fault::status(401).body(body))),
        |s| s,
    );
    let output = ran.output.code(1);

    for (index, prompt) in PROMPTS.iter().enumerate() {
        let task = task_id(index);
        let failed = ran.report.result(&task, "m1");
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(failed["error_kind"], "auth", "{failed}");
        assert_eq!(failed["attempts"], 1, "401 is not retried: {failed}");
        assert!(failed["output"].is_null(), "{failed}");
        let message = str_field(failed, "error");
        assert!(message.contains("OPENAI_API_KEY"), "{message}");
        assert!(message.contains("HTTP 401"), "{message}");
        assert!(
            message.contains("Incorrect API key provided: ***"),
            "the server's words are kept, the key masked: {message}"
        );
        assert!(!message.contains(KEY), "the key leaked: {message}");
        assert_eq!(count_for(&ran.server, "m1", prompt), 1, "not retried");
        assert_answered(ran.report.result(&task, "m2"), "m2", prompt, 1);
    }
    // The key was sent, and is nowhere in what versus shows or stores.
    let bearer = format!("Bearer {KEY}");
    assert!(ran
        .server
        .requests()
        .iter()
        .filter(|r| r.model == "m1")
        .all(|r| r.authorization.as_deref() == Some(bearer.as_str())));
    assert!(output.stderr.contains("3 failed"), "{output}");
    assert!(output.stderr.contains("OPENAI_API_KEY"), "{output}");
    assert!(
        !output.stderr.contains(KEY),
        "the key leaked to stderr\n{output}"
    );
    assert!(!output.stdout.contains(KEY));
    assert!(
        !ran.report.text.contains(KEY),
        "the key leaked to the report"
    );
    let markdown = ran.sandbox.report_markdown(&[]);
    assert!(
        !markdown.contains(KEY),
        "the key leaked to the Markdown report"
    );
    let db = ran.sandbox.db_bytes();
    assert!(
        !db.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
        "the key is stored in the database"
    );
}

#[test]
fn a_model_that_always_fails_is_given_up_on_and_the_rest_completes() {
    let ran = run_standard(
        Script::new().rule(Rule::model("m2").fault_forever(Fault::status(500))),
        |s| s.default("retries", "2"),
    );
    let output = ran.output.code(1);
    assert!(
        output.stderr.contains("3 ok (0 from cache), 3 failed"),
        "{output}"
    );

    assert_eq!(ran.report.results().len(), 6, "the report is complete");
    for (index, prompt) in PROMPTS.iter().enumerate() {
        let task = task_id(index);
        let failed = ran.report.result(&task, "m2");
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(failed["error_kind"], "server", "{failed}");
        assert_eq!(failed["attempts"], 3, "{failed}");
        let message = str_field(failed, "error");
        assert!(message.contains("HTTP 500"), "{message}");
        assert!(message.contains("gave up after 3 attempts"), "{message}");
        assert_eq!(count_for(&ran.server, "m2", prompt), 3);
        assert_answered(ran.report.result(&task, "m1"), "m1", prompt, 1);
    }
    let summary = &ran.report.json["summary"];
    assert_eq!(summary[0]["ok"], 3);
    assert_eq!(summary[1]["failed"], 3);
    assert_eq!(ran.report.json["run"]["status"], "finished");
}

#[test]
fn a_missing_key_fails_that_model_without_calling_it() {
    let ran = run_standard_in(Sandbox::new(), Script::new(), |s| s);
    let output = ran.output.code(1);
    assert!(
        output.stderr.contains("OPENAI_API_KEY is not set"),
        "{output}"
    );
    assert_eq!(
        count_model(&ran.server, "m1"),
        0,
        "no request without a key"
    );
    for (index, prompt) in PROMPTS.iter().enumerate() {
        let task = task_id(index);
        let failed = ran.report.result(&task, "m1");
        assert_eq!(failed["status"], "failed", "{failed}");
        assert_eq!(failed["error_kind"], "config", "{failed}");
        assert_eq!(failed["attempts"], 0, "{failed}");
        let message = str_field(failed, "error");
        assert!(message.contains("OPENAI_API_KEY"), "{message}");
        assert_answered(ran.report.result(&task, "m2"), "m2", prompt, 1);
    }
}

// ---- images ----

#[test]
fn images_go_to_image_models_and_text_models_are_unsupported() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.write("pixel.png", PIXEL_PNG);
    let look = "What is in the picture?";
    let plain = "Say hello.";
    sandbox.suite(
        SuiteBuilder::new()
            .model_with(
                "openai-compatible:vision",
                &server,
                "modalities = [\"text\", \"image\"]\n",
            )
            .compatible(&server, "m2")
            .task_with("look", look, "images = [\"pixel.png\"]\n")
            .task("plain", plain)
            .build(),
    );
    let output = sandbox.run(&[]).success();
    assert!(output.stderr.contains("1 unsupported"), "{output}");

    let report = sandbox.report_json(&[]);
    assert_answered(report.result("look", "vision"), "vision", look, 1);
    assert_answered(report.result("plain", "vision"), "vision", plain, 1);
    assert_answered(report.result("plain", "m2"), "m2", plain, 1);
    let unsupported = report.result("look", "m2");
    assert_eq!(unsupported["status"], "unsupported", "{unsupported}");
    assert!(
        str_field(unsupported, "error").contains("does not read images"),
        "{unsupported}"
    );
    assert_eq!(count_for(&server, "m2", look), 0, "no request for it");

    let data_url = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(PIXEL_PNG)
    );
    let sent = requests_for(&server, "vision", look);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].image_urls, std::slice::from_ref(&data_url));
    assert_eq!(
        sent[0].messages,
        json!([{"role": "user", "content": [
            {"type": "text", "text": look},
            {"type": "image_url", "image_url": {"url": data_url}},
        ]}])
    );
    assert!(requests_for(&server, "vision", plain)[0]
        .image_urls
        .is_empty());
    assert_eq!(server.request_count(), 3);
}

#[test]
fn image_urls_and_reference_files_are_passed_on() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.write("reference.txt", "A short summary.\n");
    let url = "https://example.com/cat.png";
    sandbox.suite(
        SuiteBuilder::new()
            .model_with(
                "openai-compatible:vision",
                &server,
                "modalities = [\"text\", \"image\"]\n",
            )
            .task_with("look", "What is this?", &format!("images = [\"{url}\"]\n"))
            .task_with("sum", "Summarize.", "reference_file = \"reference.txt\"\n")
            .build(),
    );
    sandbox.run(&[]).success();
    assert_eq!(
        requests_for(&server, "vision", "What is this?")[0].image_urls,
        [url]
    );
    let report = sandbox.report_json(&[]);
    let tasks = &report.json["tasks"];
    assert_eq!(tasks[0]["images"], json!([url]));
    assert_eq!(tasks[1]["reference"], "A short summary.\n");
    // The reference is for judging answers, not part of the prompt.
    assert_eq!(
        requests_for(&server, "vision", "Summarize.")[0].messages,
        json!([{"role": "user", "content": "Summarize."}])
    );
}

// ---- choosing models and tasks on the command line ----

#[test]
fn model_flag_replaces_the_suites_models() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.suite(SuiteBuilder::standard(&server).build());
    let url = server.base_url();
    sandbox
        .run(&["--model", "openai-compatible:m3", "--base-url", &url])
        .success();
    let report = sandbox.report_json(&[]);
    assert_eq!(report.json["models"].as_array().map(Vec::len), Some(1));
    assert_eq!(report.json["models"][0]["id"], "m3");
    assert_standard_results(&report, &["m3"], &[]);
    assert_eq!(server.request_count(), 3);
    assert_eq!(
        count_model(&server, "m3"),
        3,
        "only the --model model is called"
    );
}

#[test]
fn model_flag_takes_an_id() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.suite(SuiteBuilder::standard(&server).build());
    let url = server.base_url();
    sandbox
        .run(&[
            "--model",
            "left=openai-compatible:m3",
            "--model",
            "right=openai-compatible:m4",
            "--base-url",
            &url,
        ])
        .success();
    let report = sandbox.report_json(&[]);
    let ids: Vec<&str> = report.json["models"]
        .as_array()
        .expect("models")
        .iter()
        .map(|m| m["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids, ["left", "right"]);
    for (index, prompt) in PROMPTS.iter().enumerate() {
        for (id, name) in [("left", "m3"), ("right", "m4")] {
            let result = report.result(&task_id(index), id);
            assert_eq!(result["output"], default_answer(name, prompt), "{result}");
        }
    }
    assert_eq!(count_model(&server, "m3"), 3);
    assert_eq!(count_model(&server, "m4"), 3);
    assert_eq!(server.request_count(), 6);
}

#[test]
fn model_flag_picks_suite_models_by_id() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.suite(SuiteBuilder::standard(&server).build());
    sandbox.run(&["--model", "m2"]).success();
    let report = sandbox.report_json(&[]);
    assert_standard_results(&report, &["m2"], &[]);
    assert_requests(&server, &["m2"], &[]);
    sandbox
        .run(&["--model", "m7"])
        .usage_error(&["--model m7: neither a model id of the suite (m1, m2) nor a model spec"]);
}

#[test]
fn add_model_adds_to_the_suites_models() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.suite(SuiteBuilder::standard(&server).build());
    let url = server.base_url();
    sandbox
        .run(&["--add-model", "openai-compatible:m3", "--base-url", &url])
        .success();
    let report = sandbox.report_json(&[]);
    assert_standard_results(&report, &["m1", "m2", "m3"], &[]);
    assert_requests(&server, &["m1", "m2", "m3"], &[]);
    assert_eq!(server.request_count(), 9);
}

#[test]
fn add_model_with_an_existing_id_replaces_that_model() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.suite(SuiteBuilder::standard(&server).build());
    let url = server.base_url();
    sandbox
        .run(&["--add-model", "m2=openai-compatible:m4", "--base-url", &url])
        .success();
    let report = sandbox.report_json(&[]);
    assert_eq!(report.results().len(), 6);
    assert_eq!(report.json["models"][1]["id"], "m2");
    assert_eq!(report.json["models"][1]["spec"], "openai-compatible:m4");
    for (index, prompt) in PROMPTS.iter().enumerate() {
        let result = report.result(&task_id(index), "m2");
        assert_eq!(result["output"], default_answer("m4", prompt), "{result}");
    }
    assert_eq!(
        count_model(&server, "m2"),
        0,
        "the replaced model is not called"
    );
    assert_eq!(count_model(&server, "m4"), 3);
    assert_eq!(count_model(&server, "m1"), 3);
}

#[test]
fn task_filter_sends_only_those_tasks() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.suite(SuiteBuilder::standard(&server).build());
    let output = sandbox.run(&["--task", "t1", "--task", "t3"]).success();
    assert!(output.stderr.contains("4 cells"), "{output}");
    let report = sandbox.report_json(&[]);
    let tasks: Vec<&str> = report.json["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .map(|t| t["id"].as_str().expect("id"))
        .collect();
    assert_eq!(tasks, ["t1", "t3"]);
    assert_eq!(report.results().len(), 4);
    for model in ["m1", "m2"] {
        assert_answered(report.result("t1", model), model, PROMPTS[0], 1);
        assert_answered(report.result("t3", model), model, PROMPTS[2], 1);
        assert_eq!(count_for(&server, model, PROMPTS[0]), 1);
        assert_eq!(count_for(&server, model, PROMPTS[2]), 1);
    }
    assert_eq!(server.request_count(), 4, "t2 was filtered out");
}

#[test]
fn category_filter_sends_only_that_category() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.suite(
        SuiteBuilder::new()
            .compatible(&server, "m2")
            .task_with("code-a", "Write fizzbuzz.", "category = \"coding\"\n")
            .task_with("poem", "Write a poem.", "category = \"creative\"\n")
            .task_with("code-b", "Write quicksort.", "category = \"coding\"\n")
            .build(),
    );
    sandbox.run(&["--category", "coding"]).success();
    let report = sandbox.report_json(&[]);
    assert_eq!(report.results().len(), 2);
    assert_answered(report.result("code-a", "m2"), "m2", "Write fizzbuzz.", 1);
    assert_answered(report.result("code-b", "m2"), "m2", "Write quicksort.", 1);
    let mut sent: Vec<String> = server
        .requests()
        .into_iter()
        .map(|r| r.last_user_text)
        .collect();
    sent.sort();
    assert_eq!(sent, ["Write fizzbuzz.", "Write quicksort."]);
}

// ---- the builtin suite ----

#[test]
fn the_builtin_seed_suite_sends_the_articles_prompts_verbatim() {
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    let sandbox = Sandbox::with_key().env("OPENAI_BASE_URL", &server.base_url());
    sandbox
        .versus(&["run", "--builtin", "seed", "--model", "openai:m1"])
        .success();

    let report = sandbox.report_json(&[]);
    assert_eq!(report.json["run"]["suite"], "seed");
    assert_eq!(report.results().len(), 5);
    assert_eq!(report.count_status("ok"), 5, "{}", report.text);
    assert_eq!(server.request_count(), 5);
    let bearer = format!("Bearer {KEY}");
    for request in server.requests() {
        assert_eq!(request.model, "m1");
        assert_eq!(request.authorization.as_deref(), Some(bearer.as_str()));
        let task = report
            .results()
            .iter()
            .find(|r| r["output"] == default_answer("m1", &request.last_user_text))
            .expect("every request's answer is in the report");
        assert_eq!(task["model"], "m1");
    }

    let seed = include_str!("../../../examples/seed.toml");
    let sent = |needle: &str| -> versus_testkit::RecordedRequest {
        let found: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.last_user_text.contains(needle))
            .collect();
        assert_eq!(found.len(), 1, "one request contains {needle:?}");
        found.into_iter().next().expect("one")
    };

    let sunrise = sent("Observation:");
    assert_eq!(
        sunrise.last_user_text,
        "Observation: The sun has risen in the east every day for the past 1,000 days.\n\
         Question: Will the sun rise in the east tomorrow? Why?\n"
    );
    assert_eq!(sunrise.params.max_tokens, Some(256), "the task's own limit");

    let gutenberg_line = seed
        .lines()
        .find(|line| line.starts_with("Johannes Gutenberg (1398"))
        .expect("the Gutenberg text in examples/seed.toml");
    let gutenberg = sent("Johannes Gutenberg (1398");
    assert_eq!(
        gutenberg.last_user_text,
        format!(
            "summarize the following text\n{}",
            gutenberg_line.trim_end_matches("\"\"\"")
        )
    );
    assert_eq!(gutenberg.params.max_tokens, Some(1024));
    assert_eq!(gutenberg.params.temperature, Some(0.0));

    let explain = sent("How should I explain machine learning");
    assert_eq!(
        explain.messages,
        json!([
            {"role": "system", "content": "You are a data scientist providing insights and explanations to a curious audience."},
            {"role": "user", "content": "How should I explain machine learning to someone new to the field?"},
        ])
    );
    sent("Fibonacci number using dynamic programming");
    let story = sent("Write a short children’s story");
    assert_eq!(story.last_user_text, "Write a short children’s story");
}

// ---- model settings ----

#[test]
fn a_compatible_model_sends_the_key_its_api_key_env_names() {
    let sandbox = Sandbox::new().env("LOCAL_LLM_KEY", "local-secret");
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.suite(
        SuiteBuilder::new()
            .model_with(
                "openai-compatible:m2",
                &server,
                "api_key_env = \"LOCAL_LLM_KEY\"\n",
            )
            .model_with(
                "openai-compatible:m3",
                &server,
                "id = \"other\"\napi_key_env = \"UNSET_LLM_KEY\"\n",
            )
            .standard_tasks()
            .build(),
    );
    let output = sandbox.run(&[]).code(1);
    assert!(
        output
            .stderr
            .contains("model `other` needs an API key: UNSET_LLM_KEY is not set"),
        "{output}"
    );
    assert_eq!(
        server.request_count(),
        3,
        "no request for the model without its key"
    );
    assert!(server
        .requests()
        .iter()
        .all(|r| r.model == "m2" && r.authorization.as_deref() == Some("Bearer local-secret")));
    let report = sandbox.report_json(&[]);
    for (index, prompt) in PROMPTS.iter().enumerate() {
        assert_answered(report.result(&task_id(index), "m2"), "m2", prompt, 1);
        assert_eq!(
            report.result(&task_id(index), "other")["error_kind"],
            "config"
        );
    }
}

#[test]
fn stream_false_asks_for_one_json_answer() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.suite(
        SuiteBuilder::new()
            .model_with("openai-compatible:m2", &server, "stream = false\n")
            .standard_tasks()
            .build(),
    );
    sandbox.run(&[]).success();
    assert!(server
        .requests()
        .iter()
        .all(|r| !r.stream && r.body.get("stream_options").is_none()));
    let report = sandbox.report_json(&[]);
    for (index, prompt) in PROMPTS.iter().enumerate() {
        let result = report.result(&task_id(index), "m2");
        assert_eq!(result["output"], default_answer("m2", prompt), "{result}");
        assert_eq!(
            result["completion_tokens"],
            word_count(&default_answer("m2", prompt))
        );
        assert!(
            result["ttft_ms"].is_null(),
            "no first token without a stream: {result}"
        );
        assert!(result["latency_ms"].as_f64().is_some(), "{result}");
    }
}

#[test]
fn usage_the_server_does_not_report_is_not_invented() {
    let ran = run_standard(Script::new().rule(m1_t1().fault(Fault::NoUsage)), |s| s);
    ran.output.success();
    let result = ran.report.result("t1", "m1");
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(
        result["output"],
        default_answer("m1", PROMPTS[0]),
        "{result}"
    );
    assert!(result["prompt_tokens"].is_null(), "{result}");
    assert!(result["completion_tokens"].is_null(), "{result}");
    assert!(result["cost_usd"].is_null(), "{result}");
    assert_eq!(ran.report.json["summary"][0]["answers_with_usage"], 2);
    assert_answered(ran.report.result("t2", "m1"), "m1", PROMPTS[1], 1);
    let markdown = ran.sandbox.report_markdown(&[]);
    assert!(markdown.contains("tokens not reported"), "{markdown}");
    assert!(
        markdown.contains("m1: the server reported token usage for 2 of 3 answers"),
        "{markdown}"
    );
}

#[test]
fn a_server_that_ignores_stream_is_still_understood() {
    let ran = run_standard(
        Script::new().rule(Rule::model("m2").fault_forever(Fault::IgnoreStream)),
        |s| s,
    );
    ran.output.success();
    for (index, prompt) in PROMPTS.iter().enumerate() {
        let result = ran.report.result(&task_id(index), "m2");
        assert_eq!(result["output"], default_answer("m2", prompt), "{result}");
        assert_eq!(result["attempts"], 1, "{result}");
        assert_eq!(
            result["completion_tokens"],
            word_count(&default_answer("m2", prompt))
        );
    }
    assert_eq!(ran.server.request_count(), 6);
}

// ---- command-line overrides and output ----

#[test]
fn retries_flag_overrides_the_suite() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(
        Script::new().rule(m1_t1().faults([Fault::status(500), Fault::status(500)])),
    )
    .expect("start the fake server");
    sandbox.suite(SuiteBuilder::standard(&server).build());
    sandbox.run(&["--retries", "1"]).code(1);
    let report = sandbox.report_json(&[]);
    let failed = report.result("t1", "m1");
    assert_eq!(failed["status"], "failed", "{failed}");
    assert_eq!(failed["attempts"], 2, "{failed}");
    assert_eq!(count_for(&server, "m1", PROMPTS[0]), 2);
    assert_eq!(report.count_status("ok"), 5);
}

#[test]
fn temperature_and_max_tokens_flags_reach_the_server() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.suite(SuiteBuilder::standard(&server).build());
    sandbox
        .run(&[
            "--temperature",
            "0.3",
            "--max-tokens",
            "77",
            "--seed",
            "5",
            "--top-p",
            "0.9",
        ])
        .success();
    assert_eq!(server.request_count(), 6);
    for request in server.requests() {
        assert_eq!(request.params.temperature, Some(0.3));
        assert_eq!(request.params.max_tokens, Some(77));
        assert_eq!(request.params.seed, Some(5));
        assert_eq!(request.params.top_p, Some(0.9));
    }
}

#[test]
fn progress_goes_to_stderr_and_quiet_silences_it() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.suite(SuiteBuilder::standard(&server).build());
    let output = sandbox.run(&[]).success();
    assert!(output.stdout.is_empty(), "{output}");
    for needle in [
        "[m1] 3/3 ",
        "[m2] 3/3 ",
        "t1: ok (",
        "run 1 finished: 6 cells",
    ] {
        assert!(
            output.stderr.contains(needle),
            "stderr lacks {needle:?}\n{output}"
        );
    }
    let report_hint = format!(
        "report: versus --db {} report --run 1",
        sandbox.db().display()
    );
    assert!(output.stderr.contains(&report_hint), "{output}");

    let quiet = sandbox.run(&["--quiet", "--no-cache"]).success();
    assert!(
        quiet.stdout.is_empty() && quiet.stderr.is_empty(),
        "{quiet}"
    );
    assert_eq!(server.request_count(), 12);
}

#[test]
fn concurrency_limits_the_requests_in_flight_per_model() {
    let sandbox = Sandbox::with_key();
    let server =
        FakeServer::start_in_thread(Script::new().fixed_latency(Duration::from_millis(150)))
            .expect("start the fake server");
    sandbox.suite(
        SuiteBuilder::new()
            .compatible(&server, "m2")
            .standard_tasks()
            .build(),
    );
    sandbox.run(&["--concurrency", "2"]).success();
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    // The third request waits for one of the first two to be answered.
    let third_after = requests[2].received_at - requests[0].received_at;
    assert!(
        third_after >= Duration::from_millis(150),
        "three requests in flight at once ({third_after:?} apart)"
    );
}

#[cfg(unix)]
#[test]
fn sigterm_interrupts_the_run_and_running_again_finishes_it() {
    let sandbox = Sandbox::with_key();
    let server =
        FakeServer::start_in_thread(Script::new().fixed_latency(Duration::from_millis(100)))
            .expect("start the fake server");
    let mut suite = SuiteBuilder::new()
        .default("concurrency", "1")
        .compatible(&server, "m2");
    for i in 0..10 {
        suite = suite.task(&format!("q{i}"), &format!("Question number {i}?"));
    }
    sandbox.suite(suite.build());

    let child = sandbox
        .command(&["run", "suite.toml"])
        .spawn()
        .expect("start versus");
    wait_until(Duration::from_secs(30), "three requests", || {
        server.request_count() >= 3
    });
    let term = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(term.success());
    let output = child.wait_with_output().expect("wait for versus");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(stderr.contains("run the same command again"), "{stderr}");

    let interrupted = sandbox.report_json(&[]);
    assert_eq!(interrupted.json["run"]["status"], "interrupted");
    let done = interrupted.count_status("ok");
    assert!((1..10).contains(&done), "{done} cells done before SIGTERM");
    assert_eq!(interrupted.count_status("pending"), 10 - done);
    let markdown = sandbox.report_markdown(&[]);
    assert!(markdown.contains("Run 1 (interrupted)"), "{markdown}");
    assert!(
        markdown.contains("*Not run yet (the run was interrupted).*"),
        "{markdown}"
    );

    std::thread::sleep(Duration::from_millis(200));
    server.clear_log();
    let output = sandbox.run(&[]).success();
    assert!(
        output.stderr.contains("run 1 (resumed) finished"),
        "{output}"
    );
    assert_eq!(server.request_count(), 10 - done);
    let report = sandbox.report_json(&[]);
    assert_eq!(report.count_status("ok"), 10);
    assert_eq!(report.json["run"]["status"], "finished");
}
