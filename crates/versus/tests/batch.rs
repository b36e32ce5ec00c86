//! `versus run --batch-api` through the fakes' batch APIs (OpenAI, Anthropic, Gemini): cells of
//! those models go out as batches and come back cell by cell at the batch price, other models
//! are called as usual, rejected cells are recorded with the provider's reason, cells a batch
//! failed go back to ordinary calls, and a run killed while its batches are pending collects them
//! when run again instead of paying twice.

mod support;

use std::time::{Duration, Instant};

use support::*;
use versus_testkit::{default_answer, FakeServer, Fault, Rule, Script};

/// The suite: a model of each batch provider and an Ollama one, each priced at $2/$4.
fn suite(server: &FakeServer, tasks: &str) -> String {
    let root = server.root_url();
    format!(
        r#"name = "batched"
[defaults]
retry_backoff = 0.01
timeout = 10
retries = 2
max_tokens = 100

[[models]]
id = "gpt"
spec = "openai:gpt-x"
base_url = "{base}"
price = {{ input = 2.0, output = 4.0 }}

[[models]]
id = "claude"
spec = "anthropic:claude-x"
base_url = "{root}"
price = {{ input = 2.0, output = 4.0 }}

[[models]]
id = "gem"
spec = "gemini:gemini-x"
base_url = "{root}"
price = {{ input = 2.0, output = 4.0 }}

[[models]]
id = "llama"
spec = "ollama:llama-x"
base_url = "{root}"
api_key_env = "OLLAMA_PROXY_KEY"

{tasks}"#,
        base = server.base_url()
    )
}

fn tasks(prompts: &[&str]) -> String {
    prompts
        .iter()
        .enumerate()
        .map(|(i, prompt)| {
            format!(
                "[[tasks]]\nid = \"t{}\"\nprompt = {}\n\n",
                i + 1,
                toml_string(prompt)
            )
        })
        .collect()
}

fn keyed() -> Sandbox {
    Sandbox::with_key()
        .env("ANTHROPIC_API_KEY", KEY)
        .env("GEMINI_API_KEY", KEY)
        .env("OLLAMA_PROXY_KEY", KEY)
}

const BATCH: [&str; 3] = ["--batch-api", "--batch-poll", "0.05"];

#[test]
fn batched_models_answer_through_their_batch_apis_at_half_price() {
    let script = Script::new()
        .require_api_key(KEY)
        .batch_polls(2)
        .rule(
            Rule::any()
                .prompt_contains("refuse me")
                .fault_forever(Fault::status(400)),
        )
        .rule(
            Rule::model("claude-x")
                .prompt_contains("flaky")
                .fault(Fault::status(500)),
        );
    let server = FakeServer::start_in_thread(script).expect("start the fake server");
    let sandbox = keyed();
    sandbox.suite(suite(
        &server,
        &tasks(&["Why is the sky blue?", "refuse me please", "a flaky one"]),
    ));

    let mut args = vec!["--no-score"];
    args.extend(BATCH);
    let output = sandbox.run(&args).code(1);
    assert!(output.stderr.contains("submitted batch"), "{output}");

    // One batch per batch model, its requests logged with the batch's id; Ollama called live.
    assert_eq!(server.batch_count(), 3);
    for request in server.requests() {
        match request.model.as_str() {
            "llama-x" => assert!(request.batch.is_none(), "Ollama has no batch API"),
            "gpt-x" | "gemini-x" => assert!(request.batch.is_some(), "{}", request.model),
            _ => {}
        }
    }
    // The 500 inside Claude's batch was asked again, live, once.
    let live_claude: Vec<_> = server
        .requests()
        .into_iter()
        .filter(|r| r.model == "claude-x" && r.batch.is_none())
        .collect();
    assert_eq!(live_claude.len(), 1, "{live_claude:?}");
    assert!(live_claude[0].last_user_text.contains("flaky"));

    let report = sandbox.report_json(&[]);
    for model in ["gpt", "claude", "gem"] {
        let sky = report.result("t1", model);
        assert_eq!(sky["status"], "ok", "{model}: {sky}");
        assert_eq!(sky["batch"], true, "{model}: {sky}");
        assert!(
            sky["latency_ms"].is_null(),
            "no timings for a batch answer: {sky}"
        );
        let prompt = sky["prompt_tokens"].as_f64().expect("usage");
        let completion = sky["completion_tokens"].as_f64().expect("usage");
        let half = (prompt * 2.0 + completion * 4.0) / 1e6 / 2.0;
        let cost = sky["cost_usd"].as_f64().expect("a cost");
        assert!((cost - half).abs() < 1e-12, "{model}: {cost} vs {half}");
        // Rejected by the provider: failed, with its reason, not asked again.
        let refused = report.result("t2", model);
        assert_eq!(refused["status"], "failed", "{model}: {refused}");
        assert_eq!(refused["error_kind"], "bad_request", "{model}: {refused}");
        assert!(
            str_field(refused, "error").contains("in batch"),
            "{refused}"
        );
    }
    assert_eq!(report.result("t3", "claude")["status"], "ok");
    assert!(
        report.result("t3", "claude")["batch"].is_null(),
        "answered live"
    );
    let llama = report.result("t1", "llama");
    assert_eq!(
        str_field(llama, "output"),
        default_answer("llama-x", "Why is the sky blue?")
    );
    assert!(llama["batch"].is_null());
    let runs = sandbox.runs_json();
    assert_eq!(runs[0]["batches_waiting"], 0);
    let markdown = sandbox.report_markdown(&[]);
    assert!(markdown.contains("· batch"), "{markdown}");
    let db = sandbox.db_bytes();
    assert!(
        !db.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
        "no key in the store"
    );
}

#[test]
fn a_run_killed_while_its_batches_are_pending_collects_them_instead_of_paying_twice() {
    use std::os::unix::process::ExitStatusExt;

    let server =
        FakeServer::start_in_thread(Script::new().require_api_key(KEY).batch_polls(u32::MAX))
            .expect("start the fake server");
    let sandbox = keyed();
    let prompts = ["one question", "another question"];
    sandbox.suite(suite(&server, &tasks(&prompts)));
    let mut args = vec!["run", "suite.toml", "--no-score"];
    args.extend(BATCH);

    let mut child = sandbox.spawn(&args);
    let started = Instant::now();
    // Three batches submitted and Ollama's two cells answered: then versus only waits.
    while server.batch_count() < 3 || server.count_where(|r| r.batch.is_none()) < 2 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "too slow to submit"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().expect("poll").is_none(),
        "versus waits for its batches"
    );
    child.kill().expect("kill -9 versus");
    assert_eq!(child.wait().expect("reap").signal(), Some(9));

    let runs = sandbox.runs_json();
    assert_eq!(runs[0]["batches_waiting"], 3, "{runs:?}");
    assert_eq!(runs[0]["pending"], 6, "{runs:?}");
    let table = sandbox.versus(&["runs"]).success();
    assert!(table.stdout.contains("3 waiting"), "{table}");
    let asked_before = server.request_count();

    server.end_batches();
    let output = sandbox.versus(&args).success();
    assert!(output.stderr.contains("collecting batch"), "{output}");
    assert_eq!(server.batch_count(), 3, "no batch submitted twice");
    assert_eq!(server.request_count(), asked_before, "no cell asked again");
    let report = sandbox.report_json(&[]);
    assert_eq!(report.count_status("ok"), 8, "{}", report.text);
    for model in ["gpt", "claude", "gem"] {
        assert_eq!(report.result("t2", model)["batch"], true);
    }
    assert_eq!(sandbox.runs_json()[0]["batches_waiting"], 0);
}
