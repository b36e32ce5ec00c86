//! What a hostile suite or server cannot make versus do, against the real binary: send a key
//! from any variable or over plain http to another machine, read files outside the suite's
//! folder, or leak credentials in a URL into stderr, the database or a report.
//!
//! New refusals go here, one test each. Helpers are in `support/mod.rs`.

mod support;

use support::*;
use versus_testkit::{FakeServer, Script};

fn server() -> FakeServer {
    FakeServer::start_in_thread(Script::new()).expect("start the fake server")
}

// ---- keys go only where meant ----

#[test]
fn a_suite_cannot_send_any_variable_as_a_key() {
    let sandbox = Sandbox::with_key().env("VERSUS_TEST_PRIVATE", "private-value-77");
    let server = server();
    let suite = SuiteBuilder::new()
        .model_with(
            "openai-compatible:m1",
            &server,
            "api_key_env = \"VERSUS_TEST_PRIVATE\"\n",
        )
        .task("t1", "Hello?")
        .build();
    sandbox.suite(&suite);
    sandbox.run(&[]).usage_error(&[
        "VERSUS_TEST_PRIVATE",
        "does not look like an API key variable",
        "--allow-key-env VERSUS_TEST_PRIVATE",
    ]);
    assert_eq!(server.request_count(), 0, "nothing is sent");

    // The user can allow it, and is told where it goes.
    let output = sandbox
        .run(&["--allow-key-env", "VERSUS_TEST_PRIVATE"])
        .success();
    let host = server
        .base_url()
        .split('/')
        .nth(2)
        .unwrap_or_default()
        .to_string();
    assert!(
        output.stderr.contains(&format!(
            "the key in VERSUS_TEST_PRIVATE goes to {host} over plain http"
        )),
        "{output}"
    );
    assert!(!output.stderr.contains("private-value-77"), "{output}");
}

#[test]
fn a_key_goes_to_a_non_default_host_only_with_a_note() {
    let sandbox = Sandbox::with_key();
    let server = server();
    sandbox.suite(
        SuiteBuilder::new()
            .openai(&server, "m1")
            .task("t1", "Hello?")
            .build(),
    );
    let output = sandbox.run(&[]).success();
    assert!(
        output
            .stderr
            .contains("the key in OPENAI_API_KEY goes to 127.0.0.1:"),
        "{output}"
    );
    let quiet = sandbox.run(&["--quiet", "--fresh"]).success();
    assert!(!quiet.stderr.contains("goes to"), "{quiet}");
}

#[test]
fn a_key_is_never_sent_over_plain_http_to_another_machine() {
    // 203.0.113.0/24 is reserved for documentation: the refusal comes before any connection.
    let sandbox = Sandbox::with_key();
    sandbox.suite(
        "[[models]]\nspec = \"openai:gpt-4o-mini\"\nbase_url = \"http://203.0.113.9/v1\"\n\
         [[tasks]]\nid = \"t1\"\nprompt = \"Hello?\"\n",
    );
    let output = sandbox.run(&[]).usage_error(&[
        "refusing to send the key in OPENAI_API_KEY over plain http to 203.0.113.9",
        "--allow-insecure-http",
    ]);
    assert!(!sandbox.db().exists(), "no run is recorded\n{output}");
}

// ---- files stay inside the suite's folder ----

#[test]
fn a_suite_cannot_read_files_outside_its_folder() {
    let sandbox = Sandbox::with_key();
    let server = server();
    sandbox.write("secret.txt", "the-outside-secret");
    std::fs::create_dir_all(sandbox.path().join("suites")).expect("a folder");
    for reference in ["../secret.txt", "/etc/passwd"] {
        let suite = SuiteBuilder::new()
            .compatible(&server, "m1")
            .task_with(
                "t1",
                "Hello?",
                &format!("reference_file = {}\n", toml_string(reference)),
            )
            .build();
        sandbox.write("suites/suite.toml", &suite);
        sandbox.versus(&["run", "suites/suite.toml"]).usage_error(&[
            "suites/suite.toml:",
            "outside the suite's folder",
            "--allow-outside-files",
        ]);
    }
    assert_eq!(server.request_count(), 0);
    // The command line can allow it.
    let suite = SuiteBuilder::new()
        .compatible(&server, "m1")
        .task_with("t1", "Hello?", "reference_file = \"../secret.txt\"\n")
        .build();
    sandbox.write("suites/suite.toml", &suite);
    sandbox
        .versus(&["run", "suites/suite.toml", "--allow-outside-files"])
        .success();
}

// ---- credentials in URLs are redacted everywhere ----

#[test]
fn credentials_in_a_base_url_reach_no_output_store_or_report() {
    let sandbox = Sandbox::new();
    let server = server();
    sandbox.suite(SuiteBuilder::new().task("t1", "Hello?").build());
    let with_secrets = |base: &str| {
        let rest = base.trim_start_matches("http://");
        format!("http://user:hunter2pw@{rest}?key=QSECRET9")
    };
    // One run that succeeds, one whose server is not there (the error names the URL).
    let ok = sandbox
        .run(&[
            "--model",
            "m1=openai-compatible:m1",
            "--base-url",
            &with_secrets(&server.base_url()),
        ])
        .success();
    let closed = sandbox
        .run(&[
            "--model",
            "m2=openai-compatible:m2",
            "--base-url",
            &with_secrets("http://127.0.0.1:9/v1"),
            "--retries",
            "0",
        ])
        .code(1);
    assert!(closed.stderr.contains("127.0.0.1:9"), "{closed}");
    // Not `Output`'s display, which repeats the command line.
    let mut everything = [&ok, &closed]
        .iter()
        .map(|output| format!("{}{}", output.stdout, output.stderr))
        .collect::<String>();
    everything.push_str(&String::from_utf8_lossy(&sandbox.db_bytes()));
    for format in ["markdown", "json", "html"] {
        for run in ["1", "2"] {
            let report = sandbox
                .versus(&["report", "--run", run, "--format", format])
                .success();
            everything.push_str(&report.stdout);
        }
    }
    assert!(everything.contains("key=***"), "the redacted URL is shown");
    for secret in ["hunter2pw", "QSECRET9"] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}
