//! `versus run` against every native API through versus-testkit's fakes: a suite with one model
//! of each provider (OpenAI chat completions and Responses, Anthropic, Gemini, Azure OpenAI
//! classic and v1, Ollama) runs, reports (thinking tokens, Ollama's own durations, a Gemini block
//! recorded as blocked), resumes after SIGKILL asking only the missing cells, keeps every key out
//! of the store, the reports and the output, and refuses parameters an API does not take.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::*;
use versus_testkit::{default_answer, FakeServer, Fault, Format, Rule, Script};

/// Each provider's model in the suite: id, spec, the `[[models]]` lines that reach the fake, the
/// format it speaks, and the header its key travels in.
struct Provider {
    id: &'static str,
    spec: &'static str,
    format: Format,
    key_header: &'static str,
}

const PROVIDERS: [Provider; 7] = [
    Provider {
        id: "gpt",
        spec: "openai:gpt-x",
        format: Format::ChatCompletions,
        key_header: "authorization",
    },
    Provider {
        id: "resp",
        spec: "openai-responses:gpt-r",
        format: Format::Responses,
        key_header: "authorization",
    },
    Provider {
        id: "claude",
        spec: "anthropic:claude-x",
        format: Format::Anthropic,
        key_header: "x-api-key",
    },
    Provider {
        id: "gem",
        spec: "gemini:gemini-x",
        format: Format::Gemini,
        key_header: "x-goog-api-key",
    },
    Provider {
        id: "az",
        spec: "azure:az-deployment",
        format: Format::ChatCompletions,
        key_header: "api-key",
    },
    Provider {
        id: "az-resp",
        spec: "azure:az-responses",
        format: Format::Responses,
        key_header: "api-key",
    },
    Provider {
        id: "llama",
        spec: "ollama:llama-x",
        format: Format::Ollama,
        key_header: "authorization",
    },
];

/// The name the fake sees for a provider's model.
fn wire_name(provider: &Provider) -> &'static str {
    provider.spec.split_once(':').map_or("", |(_, name)| name)
}

/// The `[[models]]` table of a provider on `server`.
fn model_table(provider: &Provider, server: &FakeServer) -> String {
    let root = server.root_url();
    let place = match provider.id {
        "gpt" | "resp" => format!("base_url = \"{}\"", server.base_url()),
        "az" => format!("endpoint = \"{root}\"\napi_version = \"2024-10-21\""),
        "az-resp" => format!("endpoint = \"{root}\"\napi = \"responses\""),
        // Ollama takes no key of its own; this one stands for a proxy's in front of it.
        "llama" => format!("base_url = \"{root}\"\napi_key_env = \"OLLAMA_PROXY_KEY\""),
        _ => format!("base_url = \"{root}\""),
    };
    format!(
        "[[models]]\nid = \"{}\"\nspec = \"{}\"\n{place}\nmodalities = [\"text\", \"image\"]\n",
        provider.id, provider.spec
    )
}

/// A sandbox with every provider's key variable set to [`KEY`].
fn keyed_sandbox() -> Sandbox {
    Sandbox::with_key()
        .env("ANTHROPIC_API_KEY", KEY)
        .env("GEMINI_API_KEY", KEY)
        .env("AZURE_OPENAI_API_KEY", KEY)
        .env("OLLAMA_PROXY_KEY", KEY)
}

/// A suite with every provider and `tasks` (TOML), defaults suited to tests.
fn suite(server: &FakeServer, tasks: &str) -> String {
    let mut text = String::from(
        "name = \"providers\"\n[defaults]\nretry_backoff = 0.01\ntimeout = 10\nretries = 3\nmax_tokens = 200\n\n",
    );
    for provider in &PROVIDERS {
        text.push_str(&model_table(provider, server));
        text.push('\n');
    }
    text.push_str(tasks);
    text
}

fn standard_tasks() -> String {
    PROMPTS
        .iter()
        .enumerate()
        .map(|(index, prompt)| {
            format!(
                "[[tasks]]\nid = \"{}\"\nprompt = {}\n\n",
                task_id(index),
                toml_string(prompt)
            )
        })
        .collect()
}

#[test]
fn a_suite_of_every_provider_runs_and_reports_with_keys_kept_out() {
    let thinking = "Weigh the light first.";
    let script = Script::new()
        .require_api_key(KEY)
        .rule(
            Rule::model("claude-x")
                .prompt_contains("sky")
                .thinking(thinking),
        )
        .rule(
            Rule::model("gemini-x")
                .prompt_contains("sky")
                .thinking(thinking),
        )
        .rule(
            Rule::model("gpt-r")
                .prompt_contains("sky")
                .thinking(thinking),
        )
        .rule(
            Rule::model("gemini-x")
                .prompt_contains("Hamlet")
                .fault(Fault::Blocked),
        )
        .rule(
            Rule::model("claude-x")
                .prompt_contains("haiku")
                .fault(Fault::status(529).retry_after("0.01")),
        )
        .rule(
            Rule::model("gpt-r")
                .prompt_contains("haiku")
                .fault(Fault::error_event(1)),
        );
    let server = FakeServer::start_in_thread(script).expect("start the fake server");
    let sandbox = keyed_sandbox();
    sandbox.suite(suite(&server, &standard_tasks()));

    let output = sandbox.run(&["--no-score"]).code(1);
    assert!(output.stderr.contains("1 failed"), "{output}");

    let report = sandbox.report_json(&[]);
    for provider in &PROVIDERS {
        for (index, prompt) in PROMPTS.iter().enumerate() {
            let result = report.result(&task_id(index), provider.id);
            if provider.id == "gem" && prompt.contains("Hamlet") {
                assert_eq!(result["status"], "failed", "{result}");
                assert_eq!(result["error_kind"], "blocked", "{result}");
                let error = str_field(result, "error");
                assert!(error.contains("SAFETY"), "{error}");
                continue;
            }
            assert_eq!(result["status"], "ok", "{}: {result}", provider.id);
            assert_eq!(
                str_field(result, "output"),
                default_answer(wire_name(provider), prompt),
                "{}",
                provider.id
            );
        }
        // Each provider's requests came in its own format, its key in its own header.
        let requests: Vec<_> = server
            .requests()
            .into_iter()
            .filter(|r| r.model == wire_name(provider))
            .collect();
        assert!(!requests.is_empty(), "{}", provider.id);
        for request in &requests {
            assert_eq!(request.format, provider.format, "{}", provider.id);
            let sent = request.header(provider.key_header).unwrap_or_default();
            assert!(
                sent.ends_with(KEY),
                "{}: {} = {sent:?}",
                provider.id,
                provider.key_header
            );
        }
    }
    // Retried faults: Anthropic's 529 and the Responses API's error event mid-stream.
    assert_eq!(report.result("t2", "claude")["attempts"], 2);
    assert_eq!(report.result("t2", "resp")["attempts"], 2);
    // Thinking kept apart and counted; the answer is only the answer.
    for id in ["claude", "gem", "resp"] {
        let result = report.result("t1", id);
        assert_eq!(result["thinking"], thinking, "{id}: {result}");
        assert_eq!(result["reasoning_tokens"], 4, "{id}: {result}");
    }
    // Ollama's own durations beside versus's measurements, in both report formats.
    let llama = report.result("t1", "llama");
    assert!(
        llama["server_timings"]["total_ms"].as_f64().is_some(),
        "{llama}"
    );
    let markdown = sandbox.report_markdown(&[]);
    assert!(markdown.contains("server: total"), "{markdown}");
    assert!(markdown.contains("4 of them thinking"), "{markdown}");
    let html_path = sandbox.path().join("report.html");
    sandbox
        .versus(&[
            "report",
            "--format",
            "html",
            "-o",
            html_path.to_str().expect("utf-8"),
        ])
        .success();
    let html = std::fs::read_to_string(&html_path).expect("the HTML report");
    assert!(html.contains("server&#39;s own timings") || html.contains("server's own timings"));
    // The catalogue knows no fake model: no invented price.
    assert!(report.result("t1", "claude")["cost_usd"].is_null());

    // Key hygiene: nowhere in the store, the reports or the output.
    let db = sandbox.db_bytes();
    assert!(
        !db.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
        "the key is in the database"
    );
    for text in [
        &report.text,
        &markdown,
        &html,
        &output.stdout,
        &output.stderr,
    ] {
        assert!(!text.contains(KEY), "the key leaked");
    }
}

#[test]
fn every_provider_resumes_after_sigkill_asking_only_the_missing_cells() {
    use std::os::unix::process::ExitStatusExt;

    const TASKS: usize = 6;
    let prompt = |i: usize| format!("Question {i}: what is {i} squared?");
    let server = FakeServer::start_in_thread(
        Script::new()
            .require_api_key(KEY)
            .fixed_latency(Duration::from_millis(120)),
    )
    .expect("start the fake server");
    let sandbox = keyed_sandbox();
    let tasks: String = (0..TASKS)
        .map(|i| {
            format!(
                "[[tasks]]\nid = \"q{i}\"\nprompt = {}\n\n",
                toml_string(&prompt(i))
            )
        })
        .collect();
    sandbox.suite(suite(&server, &tasks).replace("retries = 3", "retries = 3\nconcurrency = 1"));
    let all: BTreeSet<(String, String)> = (0..TASKS)
        .flat_map(|i| {
            PROVIDERS
                .iter()
                .map(move |p| (wire_name(p).to_string(), prompt(i)))
        })
        .collect();

    let mut child = sandbox.spawn(&["run", "suite.toml", "--no-score"]);
    let started = std::time::Instant::now();
    // Seven models, one request at a time each: fifteen requests means two rounds have been
    // answered and stored.
    while server.request_count() < 15 {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "too slow to start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(
        child.try_wait().expect("poll").is_none(),
        "finished before the kill"
    );
    child.kill().expect("kill -9 versus");
    assert_eq!(child.wait().expect("reap").signal(), Some(9));
    std::thread::sleep(Duration::from_millis(300));

    let killed = sandbox.report_json(&[]);
    let done: BTreeSet<(String, String)> = killed
        .cells_with_status("ok")
        .into_iter()
        .map(|(task, model)| {
            let provider = PROVIDERS
                .iter()
                .find(|p| p.id == model)
                .expect("a provider");
            (wire_name(provider).to_string(), killed.prompt(&task))
        })
        .collect();
    assert!(
        !done.is_empty() && done.len() < all.len(),
        "{} stored",
        done.len()
    );

    server.clear_log();
    let output = sandbox.run(&["--no-score"]).success();
    assert!(output.stderr.contains("resumed"), "{output}");
    let asked: Vec<(String, String)> = server
        .requests()
        .into_iter()
        .map(|r| (r.model, r.last_user_text))
        .collect();
    let missing: BTreeSet<(String, String)> = all.difference(&done).cloned().collect();
    assert_eq!(asked.len(), missing.len(), "one request per missing cell");
    assert_eq!(asked.into_iter().collect::<BTreeSet<_>>(), missing);
    let report = sandbox.report_json(&[]);
    assert_eq!(report.count_status("ok"), all.len(), "{}", report.text);
    let db = sandbox.db_bytes();
    assert!(!db.windows(KEY.len()).any(|w| w == KEY.as_bytes()));
}

#[test]
fn parameters_an_api_does_not_take_are_refused_before_any_call() {
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    let sandbox = keyed_sandbox();
    sandbox.suite(suite(&server, &standard_tasks()));
    let output = sandbox.run(&["--seed", "7"]).usage_error(&[
        "model `resp` (openai-responses:gpt-r)",
        "does not take `seed`",
        "--seed",
    ]);
    assert!(
        output.stderr.contains("help: versus never drops"),
        "{output}"
    );
    assert_eq!(server.request_count(), 0);

    let only = sandbox.write(
        "claude.toml",
        format!(
            "[defaults]\nseed = 3\n{}\n[[tasks]]\nid = \"t\"\nprompt = \"Hi\"\n",
            model_table(&PROVIDERS[2], &server)
        ),
    );
    let output = sandbox
        .versus(&["run", only.to_str().expect("utf-8")])
        .usage_error(&[
            "claude.toml:",
            "Anthropic Messages API does not take `seed`",
            "[defaults]",
        ]);
    assert!(output.stderr.contains("model `claude`"), "{output}");
    assert_eq!(server.request_count(), 0);
}
