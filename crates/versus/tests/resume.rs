//! The store across invocations: the completion cache (`--no-cache`, `--reuse`, sampled vs
//! reproducible requests) and resuming a run that was killed or had failures by running the same
//! command again.
//!
//! New cache or resume tests go here. Helpers are in `support/mod.rs`.

mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use support::*;
use versus_testkit::{FakeServer, Fault, Rule, Script};

fn standard_sandbox(tweak: impl FnOnce(SuiteBuilder) -> SuiteBuilder) -> (Sandbox, FakeServer) {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    sandbox.suite(tweak(SuiteBuilder::standard(&server)).build());
    (sandbox, server)
}

/// Asserts that every result of the standard suite came from the cache with the fake server's
/// answer (no call in this run: 0 attempts).
#[track_caller]
fn assert_all_cached(report: &Report) {
    assert_eq!(report.results().len(), 6);
    for (index, prompt) in PROMPTS.iter().enumerate() {
        for model in ["m1", "m2"] {
            let result = report.result(&task_id(index), model);
            assert_eq!(result["status"], "ok", "{result}");
            assert_eq!(result["cached"], true, "{result}");
            assert_eq!(result["attempts"], 0, "no call in this run: {result}");
            assert_eq!(
                result["output"],
                versus_testkit::default_answer(model, prompt),
                "{result}"
            );
            assert_eq!(
                result["completion_tokens"],
                versus_testkit::word_count(&versus_testkit::default_answer(model, prompt)),
                "the stored usage comes with the cached answer: {result}"
            );
        }
    }
}

// ---- the cache ----

#[test]
fn the_same_run_again_is_answered_from_the_cache() {
    let (sandbox, server) = standard_sandbox(|s| s);
    sandbox.run(&[]).success();
    assert_eq!(server.request_count(), 6);

    let output = sandbox.run(&[]).success();
    assert!(output.stderr.contains("6 ok (6 from cache)"), "{output}");
    assert_eq!(server.request_count(), 6, "no request the second time");
    assert_all_cached(&sandbox.report_json(&[]));
    assert_eq!(
        sandbox.runs_json().len(),
        2,
        "a finished run is not resumed"
    );

    sandbox.run(&["--no-cache"]).success();
    assert_eq!(
        server.request_count(),
        12,
        "--no-cache calls every model again"
    );
    assert_standard_results(&sandbox.report_json(&[]), &["m1", "m2"], &[]);
}

#[test]
fn sampled_answers_are_not_reused_unless_asked() {
    let (sandbox, server) = standard_sandbox(|s| s.default("temperature", "0.7"));
    sandbox.run(&[]).success();
    assert_eq!(server.request_count(), 6);
    assert!(server
        .requests()
        .iter()
        .all(|r| r.params.temperature == Some(0.7) && r.params.seed.is_none()));

    let output = sandbox.run(&[]).success();
    assert!(output.stderr.contains("6 ok (0 from cache)"), "{output}");
    assert_eq!(
        server.request_count(),
        12,
        "a random sample is drawn again, not silently reused"
    );
    assert_standard_results(&sandbox.report_json(&[]), &["m1", "m2"], &[]);

    let output = sandbox.run(&["--reuse"]).success();
    assert!(output.stderr.contains("6 ok (6 from cache)"), "{output}");
    assert_eq!(
        server.request_count(),
        12,
        "--reuse takes the stored samples"
    );
    assert_all_cached(&sandbox.report_json(&[]));
}

#[test]
fn seeded_samples_are_reused() {
    let (sandbox, server) =
        standard_sandbox(|s| s.default("temperature", "0.7").default("seed", "1"));
    sandbox.run(&[]).success();
    assert_eq!(server.request_count(), 6);
    assert!(server
        .requests()
        .iter()
        .all(|r| r.params.temperature == Some(0.7) && r.params.seed == Some(1)));

    sandbox.run(&[]).success();
    assert_eq!(
        server.request_count(),
        6,
        "a seeded request is reproducible"
    );
    assert_all_cached(&sandbox.report_json(&[]));
}

#[test]
fn a_changed_parameter_is_not_answered_from_the_cache() {
    let (sandbox, server) = standard_sandbox(|s| s);
    sandbox.run(&[]).success();
    sandbox.run(&["--max-tokens", "50"]).success();
    assert_eq!(
        server.request_count(),
        12,
        "a different request, a new call"
    );
    assert!(server.requests()[6..]
        .iter()
        .all(|r| r.params.max_tokens == Some(50)));
}

// ---- resuming ----

#[test]
fn running_again_after_failures_retries_only_the_failed_cells() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(
        Script::new().rule(Rule::model("m2").fault_forever(Fault::status(503))),
    )
    .expect("start the fake server");
    sandbox.suite(
        SuiteBuilder::standard(&server)
            .default("retries", "0")
            .build(),
    );
    sandbox.run(&[]).code(1);
    let failed = sandbox.report_json(&[]);
    assert_eq!(failed.count_status("failed"), 3);
    let run_id = failed.json["run"]["id"].clone();

    // The server recovers; the same command finishes the same run.
    server.set_script(Script::new());
    server.clear_log();
    let output = sandbox.run(&[]).success();
    assert!(output.stderr.contains("(resumed)"), "{output}");
    assert_eq!(server.request_count(), 3);
    assert_eq!(
        count_model(&server, "m2"),
        3,
        "only the failed cells are redone"
    );

    let report = sandbox.report_json(&[]);
    assert_eq!(report.json["run"]["id"], run_id);
    assert_standard_results(&report, &["m1", "m2"], &[]);
    assert_eq!(sandbox.runs_json().len(), 1);
}

#[cfg(unix)]
#[test]
fn a_killed_run_resumes_with_only_the_missing_cells() {
    use std::os::unix::process::ExitStatusExt;

    const TASKS: usize = 20;
    let prompt = |i: usize| format!("Question {i:02}: what is {i} squared?");
    // Each answer takes 100 ms and each model takes one request at a time: the run takes about
    // two seconds, and is killed a few answers in.
    let server =
        FakeServer::start_in_thread(Script::new().fixed_latency(Duration::from_millis(100)))
            .expect("start the fake server");
    let sandbox = Sandbox::with_key();
    let mut suite = SuiteBuilder::new()
        .default("concurrency", "1")
        .openai(&server, "m1")
        .compatible(&server, "m2");
    for i in 0..TASKS {
        suite = suite.task(&format!("q{i:02}"), &prompt(i));
    }
    sandbox.suite(suite.build());
    let all_cells: BTreeSet<(String, String)> = (0..TASKS)
        .flat_map(|i| ["m1", "m2"].map(|m| (m.to_string(), prompt(i))))
        .collect();

    let mut child = sandbox.spawn(&["run", "suite.toml"]);
    wait_until(Duration::from_secs(30), "six requests", || {
        server.request_count() >= 6
    });
    assert!(
        child.try_wait().expect("poll versus").is_none(),
        "versus finished before it could be killed"
    );
    child.kill().expect("kill -9 versus");
    let status = child.wait().expect("reap versus");
    assert_eq!(status.signal(), Some(9), "{status:?}");
    // Requests already on their way when versus died may still be logged: let them land.
    std::thread::sleep(Duration::from_millis(300));

    let killed = sandbox.report_json(&[]);
    assert_eq!(
        killed.json["run"]["status"], "running",
        "killed, not finished"
    );
    assert_eq!(killed.results().len(), 2 * TASKS);
    let ok_before: BTreeSet<(String, String)> = killed
        .cells_with_status("ok")
        .into_iter()
        .map(|(task, model)| {
            let prompt = killed.prompt(&task);
            (model, prompt)
        })
        .collect();
    assert!(
        !ok_before.is_empty() && ok_before.len() < 2 * TASKS,
        "{} cells were stored before the kill",
        ok_before.len()
    );
    assert_eq!(
        killed.count_status("pending"),
        2 * TASKS - ok_before.len(),
        "every cell not stored is pending"
    );
    let run_id = killed.json["run"]["id"].clone();

    server.clear_log();
    let output = sandbox.run(&[]).success();
    assert!(output.stderr.contains("resumed"), "{output}");

    let requested: Vec<(String, String)> = server
        .requests()
        .into_iter()
        .map(|r| (r.model, r.last_user_text))
        .collect();
    let missing: BTreeSet<(String, String)> = all_cells.difference(&ok_before).cloned().collect();
    assert_eq!(
        requested.len(),
        missing.len(),
        "the second run makes one request per missing cell"
    );
    let requested: BTreeSet<(String, String)> = requested.into_iter().collect();
    assert_eq!(
        requested, missing,
        "exactly the missing cells are requested"
    );
    assert!(requested.is_disjoint(&ok_before));

    let report = sandbox.report_json(&[]);
    assert_eq!(report.json["run"]["id"], run_id, "the same run, resumed");
    assert_eq!(report.json["run"]["status"], "finished");
    assert_eq!(report.count_status("ok"), 2 * TASKS, "{}", report.text);
    for i in 0..TASKS {
        for model in ["m1", "m2"] {
            assert_answered(
                report.result(&format!("q{i:02}"), model),
                model,
                &prompt(i),
                1,
            );
        }
    }

    let runs = sandbox.runs_json();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["id"], run_id);
    assert_eq!(runs[0]["status"], "finished");
    assert_eq!(runs[0]["cells"], 2 * TASKS);
    assert_eq!(runs[0]["ok"], 2 * TASKS);
    assert_eq!(runs[0]["pending"], 0);
}

#[test]
fn fresh_starts_a_new_run_instead_of_resuming() {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(
        Script::new().rule(Rule::model("m2").fault_forever(Fault::status(503))),
    )
    .expect("start the fake server");
    sandbox.suite(
        SuiteBuilder::standard(&server)
            .default("retries", "0")
            .build(),
    );
    sandbox.run(&[]).code(1);
    server.set_script(Script::new());
    server.clear_log();

    let output = sandbox.run(&["--fresh"]).success();
    assert!(!output.stderr.contains("resumed"), "{output}");
    let runs = sandbox.runs_json();
    assert_eq!(runs.len(), 2, "a new run");
    assert_eq!(runs[1]["failed"], 3, "the old run is left as it was");
    // m1's answers are reproducible and stored: only m2 is called.
    assert_eq!(server.request_count(), 3);
    assert_eq!(count_model(&server, "m2"), 3);
    let report = sandbox.report_json(&[]);
    assert_eq!(report.json["run"]["id"], 2);
    assert_eq!(report.count_status("ok"), 6);
    assert_eq!(report.result("t1", "m1")["cached"], true);
    assert_eq!(report.result("t1", "m2")["cached"], false);
}

// ---- repeated samples ----

/// The (model, task prompt, seed) of every request the server got, sorted.
fn requests_by_seed(server: &FakeServer) -> Vec<(String, String, Option<i64>)> {
    let mut seen: Vec<(String, String, Option<i64>)> = server
        .requests()
        .iter()
        .map(|r| (r.model.clone(), r.last_user_text.clone(), r.params.seed))
        .collect();
    seen.sort();
    seen
}

#[test]
fn sampled_repeats_are_seeded_base_plus_index_and_each_is_cached() {
    let (sandbox, server) =
        standard_sandbox(|s| s.default("temperature", "0.7").default("seed", "40"));
    sandbox.run(&["--samples", "3"]).success();
    assert_eq!(server.request_count(), 18, "3 samples of 6 cells");
    for (index, prompt) in PROMPTS.iter().enumerate() {
        for model in ["m1", "m2"] {
            let seeds: BTreeSet<Option<i64>> = requests_for(&server, model, prompt)
                .iter()
                .map(|r| r.params.seed)
                .collect();
            assert_eq!(
                seeds,
                BTreeSet::from([Some(40), Some(41), Some(42)]),
                "task {index} on {model}"
            );
        }
    }
    let report = sandbox.report_json(&[]);
    assert_eq!(report.results().len(), 18);
    let samples: BTreeSet<u64> = report
        .results()
        .iter()
        .map(|r| r["sample"].as_u64().expect("a sample index"))
        .collect();
    assert_eq!(samples, BTreeSet::from([0, 1, 2]));
    assert_eq!(report.json["schema_version"], 4);
    let models = report.json["samples"]["models"]
        .as_array()
        .expect("samples section");
    assert_eq!(models[0]["samples"], 3);

    // Every sample is reproducible, so the same command again asks nothing.
    let output = sandbox.run(&["--samples", "3"]).success();
    assert!(output.stderr.contains("18 ok (18 from cache)"), "{output}");
    assert_eq!(server.request_count(), 18);
}

#[test]
fn greedy_repeats_are_each_asked_and_the_report_says_they_were_identical() {
    let (sandbox, server) = standard_sandbox(|s| s.default("samples", "2"));
    sandbox.run(&[]).success();
    assert_eq!(server.request_count(), 12, "each greedy sample is asked");
    assert!(
        requests_by_seed(&server)
            .iter()
            .all(|(_, _, seed)| seed.is_none()),
        "greedy samples are asked as written"
    );
    // One more sample: the first two come from the cache, only the third is asked.
    let output = sandbox.run(&["--samples", "3"]).success();
    assert!(output.stderr.contains("18 ok (12 from cache)"), "{output}");
    assert_eq!(server.request_count(), 18);
    let markdown = sandbox.report_markdown(&[]);
    assert!(markdown.contains("## Repeated samples"), "{markdown}");
    assert!(
        markdown.contains("m1: the samples were identical on 3 of 3 tasks asked more than once"),
        "{markdown}"
    );
    assert!(
        markdown.contains("<details><summary>2 more samples of m1</summary>"),
        "{markdown}"
    );
    assert!(
        markdown.contains("*3 samples: 3 answered, all identical.*"),
        "{markdown}"
    );
    // --fresh with --no-cache asks every sample again.
    sandbox
        .run(&["--samples", "3", "--fresh", "--no-cache"])
        .success();
    assert_eq!(server.request_count(), 36);
}

#[test]
fn samples_out_of_range_are_usage_errors() {
    let (sandbox, _server) = standard_sandbox(|s| s);
    sandbox
        .run(&["--samples", "0"])
        .usage_error(&["--samples 0: must be between 1 and 1000"]);
    sandbox
        .run(&["--samples", "1001"])
        .usage_error(&["--samples 1001"]);
}

// ---- one process per run; a busy database loses no answer ----

/// The standard suite against a server that answers after `latency`.
fn slow_sandbox(latency: Duration) -> (Sandbox, FakeServer) {
    let sandbox = Sandbox::with_key();
    let server = FakeServer::start_in_thread(Script::new().fixed_latency(latency))
        .expect("start the fake server");
    sandbox.suite(SuiteBuilder::standard(&server).build());
    (sandbox, server)
}

#[test]
fn a_second_process_leaves_a_run_another_one_works_on() {
    // Two processes on one database and plan both resumed the run and asked every cell twice.
    let (sandbox, server) = slow_sandbox(Duration::from_millis(1500));
    let mut first = sandbox.spawn(&[
        "run",
        "suite.toml",
        "--concurrency",
        "1",
        "--max-concurrency",
        "1",
    ]);
    wait_until(
        Duration::from_secs(30),
        "the first run's first request",
        || server.request_count() >= 1,
    );
    let second = sandbox.run(&[]).code(1);
    assert!(
        second.stderr.contains("is being worked on by process")
            && second.stderr.contains(&first.id().to_string()),
        "{second}"
    );
    let status = first.wait().expect("the first run ends");
    assert!(status.success());
    // Every cell was asked once, by the first process only.
    assert_eq!(server.request_count(), 6);
    let report = sandbox.report_json(&[]);
    assert_eq!(report.count_status("ok"), 6);
}

#[test]
fn answers_wait_in_memory_while_another_process_holds_the_database() {
    // A write lock held for longer than SQLite's busy timeout made a run exit with "database is
    // locked" after answers were paid for and none stored.
    let (sandbox, server) = slow_sandbox(Duration::from_millis(700));
    let mut run = sandbox.spawn(&[
        "run",
        "suite.toml",
        "--concurrency",
        "1",
        "--max-concurrency",
        "1",
    ]);
    wait_until(Duration::from_secs(30), "the run's first request", || {
        server.request_count() >= 1
    });
    let locker = rusqlite::Connection::open(sandbox.db()).expect("open the database");
    locker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    // Longer than the 5 s busy timeout: several answers arrive while the lock is held.
    std::thread::sleep(Duration::from_secs(8));
    locker.execute_batch("COMMIT").expect("release the lock");
    let status = run.wait().expect("the run ends");
    assert!(status.success(), "{status:?}");
    assert_eq!(server.request_count(), 6, "no answer was asked twice");
    let report = sandbox.report_json(&[]);
    assert_eq!(report.count_status("ok"), 6);
}
