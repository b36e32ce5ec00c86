//! Helpers for the integration tests of the `versus` binary: a [`Sandbox`] (a temporary folder
//! that runs the real binary with its own database and a controlled environment), a
//! [`SuiteBuilder`] that writes suites pointing at `versus-testkit`'s fake server, and readers for
//! the JSON report and the server's request log.
//!
//! One helper per feature, so that a new test case is one line. Not every test file uses every
//! helper.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use versus_testkit::{default_answer, word_count, FakeServer, RecordedRequest};

/// The API key tests put in `OPENAI_API_KEY`: distinctive, so that a leak is easy to find.
pub const KEY: &str = "sk-versus-test-9f8e7d6c5b4a-SECRET";

/// The prompts of the standard three tasks `t1`, `t2`, `t3` (no prompt contains another).
pub const PROMPTS: [&str; 3] = [
    "Why is the sky blue?",
    "Write a haiku about rust and iron.",
    "Summarize the plot of Hamlet in one sentence.",
];

/// Whether a test that runs code in the sandbox (bubblewrap) should skip itself: only with
/// `VERSUS_SKIP_SANDBOX_TESTS=1`, which `scripts/test` documents for machines without bwrap.
pub fn sandbox_tests_skipped(test: &str) -> bool {
    let skipped = std::env::var("VERSUS_SKIP_SANDBOX_TESTS").is_ok_and(|value| value == "1");
    if skipped {
        eprintln!("VERSUS_SKIP_SANDBOX_TESTS=1: skipping {test}, which runs code in the sandbox");
    }
    skipped
}

/// The id of the standard task `index` (0-based): `t1`, `t2`, `t3`.
pub fn task_id(index: usize) -> String {
    format!("t{}", index + 1)
}

// ---- running the binary ----

/// A temporary folder with a database (`versus.db`) in which `versus` runs, with `OPENAI_*` and
/// `VERSUS_*` variables removed from its environment and only the ones the test sets added.
pub struct Sandbox {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
    /// `--db` when it is not the sandbox's SQLite file (a PostgreSQL URL).
    database: Option<String>,
}

impl Sandbox {
    /// A sandbox whose environment has no API key.
    pub fn new() -> Sandbox {
        Sandbox {
            dir: tempfile::Builder::new()
                .prefix("versus-test-")
                .tempdir()
                .expect("create a temporary folder"),
            env: Vec::new(),
            database: None,
        }
    }

    /// A sandbox whose `versus` uses the database `db` (a PostgreSQL URL) instead of its file.
    pub fn on_database(mut self, db: &str) -> Sandbox {
        self.database = Some(db.to_string());
        self
    }

    /// A sandbox with `OPENAI_API_KEY` set to [`KEY`].
    pub fn with_key() -> Sandbox {
        Sandbox::new().env("OPENAI_API_KEY", KEY)
    }

    /// Sets an environment variable for every `versus` this sandbox runs.
    pub fn env(mut self, name: &str, value: &str) -> Sandbox {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db(&self) -> PathBuf {
        self.path().join("versus.db")
    }

    /// Writes a file in the sandbox and returns its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {name}: {e}"));
        path
    }

    /// Writes `suite.toml`; run it with `versus run suite.toml` (relative, so that errors read
    /// `suite.toml:LINE:COL`).
    pub fn suite(&self, text: impl AsRef<str>) {
        self.write("suite.toml", text.as_ref());
    }

    /// `versus --db <sandbox>/versus.db ARGS...`, run in the sandbox, ready to run or spawn.
    /// stdin is not a terminal (so no key is ever asked for) and stdout/stderr are captured.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_versus"));
        command
            .current_dir(self.path())
            .arg("--db")
            .arg(
                self.database
                    .clone()
                    .map_or_else(|| self.db().into_os_string(), Into::into),
            )
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            // Every provider's variables: a developer's own keys and endpoints never reach a test.
            if [
                "OPENAI_",
                "VERSUS_",
                "ANTHROPIC_",
                "GEMINI_",
                "GOOGLE_",
                "AZURE_OPENAI_",
                "OLLAMA_",
            ]
            .iter()
            .any(|prefix| name.starts_with(prefix))
            {
                command.env_remove(&*name);
            }
        }
        // Colour and terminal detection must not depend on the developer's shell.
        command.env("NO_COLOR", "1");
        for (name, value) in &self.env {
            command.env(name, value);
        }
        command
    }

    /// Runs `versus ARGS...` to the end.
    pub fn versus(&self, args: &[&str]) -> Output {
        let started = Instant::now();
        let output = self
            .command(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot start versus: {e}"));
        Output {
            args: args.iter().map(|a| a.to_string()).collect(),
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }

    /// Starts `versus ARGS...` without waiting, its output thrown away.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start versus: {e}"))
    }

    /// `versus run suite.toml EXTRA...`.
    pub fn run(&self, extra: &[&str]) -> Output {
        let mut args = vec!["run", "suite.toml"];
        args.extend_from_slice(extra);
        self.versus(&args)
    }

    /// The JSON report of the latest run (or of the run `--run` names in `extra`).
    pub fn report_json(&self, extra: &[&str]) -> Report {
        let mut args = vec!["report", "--format", "json"];
        args.extend_from_slice(extra);
        let output = self.versus(&args).success();
        Report::parse(&output.stdout)
    }

    /// The Markdown report of the latest run (or of the run `--run` names in `extra`).
    pub fn report_markdown(&self, extra: &[&str]) -> String {
        let mut args = vec!["report"];
        args.extend_from_slice(extra);
        self.versus(&args).success().stdout
    }

    /// `versus runs --format json`, newest first.
    pub fn runs_json(&self) -> Vec<Value> {
        let output = self.versus(&["runs", "--format", "json"]).success();
        let runs: Value = serde_json::from_str(&output.stdout)
            .unwrap_or_else(|e| panic!("`versus runs` JSON does not parse: {e}\n{output}"));
        runs.as_array().expect("runs is a JSON array").clone()
    }

    /// The bytes of the database and its WAL/journal files, for checks that nothing secret was
    /// stored.
    pub fn db_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for entry in std::fs::read_dir(self.path()).expect("list the sandbox") {
            let entry = entry.expect("a sandbox entry");
            if entry.file_name().to_string_lossy().starts_with("versus.db") {
                bytes.extend(std::fs::read(entry.path()).expect("read the database"));
            }
        }
        assert!(!bytes.is_empty(), "there is no database to inspect");
        bytes
    }
}

/// What one `versus` invocation did.
pub struct Output {
    pub args: Vec<String>,
    /// `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Output {
    /// Panics, showing everything, unless the exit code is `code`.
    #[track_caller]
    pub fn code(self, code: i32) -> Output {
        assert_eq!(self.code, Some(code), "unexpected exit code\n{self}");
        self
    }

    #[track_caller]
    pub fn success(self) -> Output {
        self.code(0)
    }

    /// Exit code 2, a usage or suite error, with every `needle` in stderr.
    #[track_caller]
    pub fn usage_error(self, needles: &[&str]) -> Output {
        let output = self.code(2);
        for needle in needles {
            assert!(
                output.stderr.contains(needle),
                "stderr lacks {needle:?}\n{output}"
            );
        }
        output
    }

    #[track_caller]
    pub fn stderr_has(self, needle: &str) -> Output {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{self}"
        );
        self
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "versus {}", self.args.join(" "))?;
        writeln!(
            f,
            "exit code: {:?} after {:.2} s",
            self.code,
            self.elapsed.as_secs_f64()
        )?;
        writeln!(f, "--- stdout ---\n{}", self.stdout)?;
        write!(f, "--- stderr ---\n{}", self.stderr)
    }
}

// ---- writing suites ----

/// A suite's TOML, built up: `[defaults]` suited to tests (quick back-off, short timeout), models
/// pointing at a fake server, tasks.
pub struct SuiteBuilder {
    defaults: BTreeMap<String, String>,
    models: Vec<String>,
    tasks: Vec<String>,
}

impl SuiteBuilder {
    /// Test defaults: `retry_backoff = 0.01`, `timeout = 5`, `retries = 3`; no models, no tasks.
    pub fn new() -> SuiteBuilder {
        let mut defaults = BTreeMap::new();
        defaults.insert("retry_backoff".to_string(), "0.01".to_string());
        defaults.insert("timeout".to_string(), "5".to_string());
        defaults.insert("retries".to_string(), "3".to_string());
        SuiteBuilder {
            defaults,
            models: Vec::new(),
            tasks: Vec::new(),
        }
    }

    /// The usual suite: `openai:m1` and `openai-compatible:m2` on `server`, and tasks `t1`..`t3`
    /// asking [`PROMPTS`].
    pub fn standard(server: &FakeServer) -> SuiteBuilder {
        SuiteBuilder::new()
            .openai(server, "m1")
            .compatible(server, "m2")
            .standard_tasks()
    }

    /// Sets a `[defaults]` key to a TOML value (`.default("temperature", "0.7")`).
    pub fn default(mut self, key: &str, value: &str) -> SuiteBuilder {
        self.defaults.insert(key.to_string(), value.to_string());
        self
    }

    /// `spec = "openai:NAME"` with `base_url` at the server; its key comes from `OPENAI_API_KEY`.
    pub fn openai(self, server: &FakeServer, name: &str) -> SuiteBuilder {
        let spec = format!("openai:{name}");
        self.model_with(&spec, server, "")
    }

    /// `spec = "openai-compatible:NAME"` with `base_url` at the server and no key.
    pub fn compatible(self, server: &FakeServer, name: &str) -> SuiteBuilder {
        let spec = format!("openai-compatible:{name}");
        self.model_with(&spec, server, "")
    }

    /// A model on the server with extra TOML lines in its `[[models]]` table.
    pub fn model_with(mut self, spec: &str, server: &FakeServer, extra: &str) -> SuiteBuilder {
        self.models.push(format!(
            "[[models]]\nspec = \"{spec}\"\nbase_url = \"{}\"\n{extra}",
            server.base_url()
        ));
        self
    }

    /// `[[tasks]]` with this id and prompt.
    pub fn task(self, id: &str, prompt: &str) -> SuiteBuilder {
        self.task_with(id, prompt, "")
    }

    /// `[[tasks]]` with this id and prompt and extra TOML lines.
    pub fn task_with(mut self, id: &str, prompt: &str, extra: &str) -> SuiteBuilder {
        self.tasks.push(format!(
            "[[tasks]]\nid = {}\nprompt = {}\n{extra}",
            toml_string(id),
            toml_string(prompt)
        ));
        self
    }

    /// Tasks `t1`..`t3` asking [`PROMPTS`].
    pub fn standard_tasks(mut self) -> SuiteBuilder {
        for (index, prompt) in PROMPTS.iter().enumerate() {
            self = self.task(&task_id(index), prompt);
        }
        self
    }

    pub fn build(&self) -> String {
        let mut text = String::from("name = \"itest\"\n\n[defaults]\n");
        for (key, value) in &self.defaults {
            text.push_str(&format!("{key} = {value}\n"));
        }
        for table in self.models.iter().chain(&self.tasks) {
            text.push('\n');
            text.push_str(table);
            if !table.ends_with('\n') {
                text.push('\n');
            }
        }
        text
    }
}

/// A TOML basic string.
pub fn toml_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string serializes")
}

// ---- reading the JSON report ----

/// `versus report --format json`, parsed.
pub struct Report {
    pub json: Value,
    pub text: String,
}

impl Report {
    pub fn parse(text: &str) -> Report {
        let json = serde_json::from_str(text)
            .unwrap_or_else(|e| panic!("the JSON report does not parse: {e}\n{text}"));
        Report {
            json,
            text: text.to_string(),
        }
    }

    pub fn results(&self) -> &[Value] {
        self.json["results"]
            .as_array()
            .expect("`results` is an array")
    }

    /// The result of `task` on `model`.
    #[track_caller]
    pub fn result(&self, task: &str, model: &str) -> &Value {
        self.results()
            .iter()
            .find(|r| r["task"] == task && r["model"] == model)
            .unwrap_or_else(|| panic!("no result for {task} on {model} in\n{}", self.text))
    }

    /// Results with this status.
    pub fn count_status(&self, status: &str) -> usize {
        self.results()
            .iter()
            .filter(|r| r["status"] == status)
            .count()
    }

    /// `(task, model)` of every result with this status.
    pub fn cells_with_status(&self, status: &str) -> Vec<(String, String)> {
        self.results()
            .iter()
            .filter(|r| r["status"] == status)
            .map(|r| (str_field(r, "task"), str_field(r, "model")))
            .collect()
    }

    /// The prompt (last user message's text) of a task, as the report stores it.
    pub fn prompt(&self, task: &str) -> String {
        let task = self.json["tasks"]
            .as_array()
            .expect("`tasks` is an array")
            .iter()
            .find(|t| t["id"] == task)
            .unwrap_or_else(|| panic!("no task {task}"));
        let user = task["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .expect("a user message");
        user["content"]
            .as_array()
            .expect("content parts")
            .iter()
            .filter_map(|part| part["text"].as_str())
            .collect()
    }
}

pub fn str_field(value: &Value, field: &str) -> String {
    value[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string in {value}"))
        .to_string()
}

/// Asserts that `result` is a fresh (not cached) answer of the fake server's default, with its
/// usage in words and its timings, for a task whose messages are just `prompt`.
#[track_caller]
pub fn assert_answered(result: &Value, model: &str, prompt: &str, attempts: u64) {
    let answer = default_answer(model, prompt);
    assert_eq!(result["status"], "ok", "{result}");
    assert_eq!(result["output"], answer.as_str(), "{result}");
    assert_eq!(result["finish_reason"], "stop", "{result}");
    assert_eq!(result["prompt_tokens"], word_count(prompt), "{result}");
    assert_eq!(result["completion_tokens"], word_count(&answer), "{result}");
    assert!(result["latency_ms"].as_f64().is_some(), "{result}");
    assert!(result["ttft_ms"].as_f64().is_some(), "{result}");
    assert_eq!(result["cached"], false, "{result}");
    assert_eq!(result["attempts"], attempts, "{result}");
    assert!(result["error"].is_null(), "{result}");
}

/// Asserts that every result of the standard suite is a fresh answer in one attempt, except the
/// `(task, model, attempts)` cells listed.
#[track_caller]
pub fn assert_standard_results(report: &Report, models: &[&str], retried: &[(&str, &str, u64)]) {
    assert_eq!(
        report.results().len(),
        PROMPTS.len() * models.len(),
        "{}",
        report.text
    );
    for (index, prompt) in PROMPTS.iter().enumerate() {
        let task = task_id(index);
        for model in models {
            let attempts = retried
                .iter()
                .find(|(t, m, _)| *t == task && m == model)
                .map_or(1, |(_, _, attempts)| *attempts);
            assert_answered(report.result(&task, model), model, prompt, attempts);
        }
    }
}

// ---- reading the server's log ----

/// Requests the server received for `model` whose last user message is exactly `prompt`.
pub fn requests_for(server: &FakeServer, model: &str, prompt: &str) -> Vec<RecordedRequest> {
    server
        .requests()
        .into_iter()
        .filter(|r| r.model == model && r.last_user_text == prompt)
        .collect()
}

pub fn count_for(server: &FakeServer, model: &str, prompt: &str) -> usize {
    requests_for(server, model, prompt).len()
}

pub fn count_model(server: &FakeServer, model: &str) -> usize {
    server.count_where(|r| r.model == model)
}

/// Polls until `condition` holds, panicking after `timeout`.
#[track_caller]
pub fn wait_until(timeout: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A 1x1 transparent PNG.
pub const PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];
