//! versus on a PostgreSQL database: every command that uses the store, and `versus worker`: four
//! worker processes share a 400-cell run behind the scripted fake server, two are killed with
//! SIGKILL mid-run, and the run still ends with every cell recorded once, no cell asked twice
//! beyond the dead workers' leases, and the report a single process gives.
//!
//! Needs a PostgreSQL server named by `VERSUS_TEST_POSTGRES` (`scripts/with-postgres` starts a
//! throw-away one, and `scripts/test` runs the tests beside it); without one the tests say they
//! were skipped.

mod support;

use std::collections::HashMap;
use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;
use versus_testkit::{FakeServer, Script};

/// A fresh schema on the test server, as a URL whose connections use it; `None` (with a message)
/// when no server is configured.
fn fresh_postgres(test: &str) -> Option<String> {
    let Some(server) = std::env::var("VERSUS_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        eprintln!(
            "skipped: {test}: VERSUS_TEST_POSTGRES is not set (scripts/with-postgres starts a \
             throw-away PostgreSQL and sets it)"
        );
        return None;
    };
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let schema = format!(
        "versus_workers_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin =
        postgres::Client::connect(&server, postgres::NoTls).expect("reach VERSUS_TEST_POSTGRES");
    admin
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .expect("create a schema");
    let separator = if server.contains('?') { '&' } else { '?' };
    Some(format!(
        "{server}{separator}options=-csearch_path%3D{schema}"
    ))
}

/// A suite of `tasks` tasks on models m1 and m2 of `server`, each answer checked.
fn grid_suite(server: &FakeServer, tasks: usize) -> String {
    let mut suite = SuiteBuilder::new()
        .default("concurrency", "2")
        .compatible(server, "m1")
        .compatible(server, "m2");
    for index in 0..tasks {
        suite = suite.task_with(
            &format!("t{index:03}"),
            &format!("Question number {index:03}"),
            "checks = [{ type = \"contains\", value = \"Answer\" }]",
        );
    }
    suite.build()
}

/// The report without what differs between two runs of the same plan: timings, clocks, the
/// run's id (and the criteria, which read the timings).
fn comparable(mut report: Value) -> Value {
    fn strip(value: &mut Value) {
        match value {
            Value::Object(fields) => {
                fields.retain(|name, _| {
                    !(name.contains("latency")
                        || name.contains("ttft")
                        || name.contains("per_second")
                        || name.ends_with("_at"))
                });
                fields.values_mut().for_each(strip);
            }
            Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    if let Some(run) = report.get_mut("run").and_then(Value::as_object_mut) {
        run.remove("id");
    }
    if let Some(fields) = report.as_object_mut() {
        fields.remove("criteria");
    }
    strip(&mut report);
    report
}

fn report(sandbox: &Sandbox) -> Value {
    let output = sandbox.versus(&["report", "--format", "json"]).success();
    serde_json::from_str(&output.stdout).expect("the JSON report parses")
}

/// The newest run as `versus runs --format json` shows it.
fn newest_run(sandbox: &Sandbox) -> Value {
    sandbox.runs_json().into_iter().next().expect("a run")
}

fn count(run: &Value, field: &str) -> u64 {
    run[field]
        .as_u64()
        .unwrap_or_else(|| panic!("`{field}` in {run}"))
}

#[test]
fn four_workers_two_killed_record_every_cell_once_and_report_as_one_process() {
    let Some(db) = fresh_postgres("four_workers_two_killed") else {
        return;
    };
    const TASKS: usize = 200;
    const CELLS: usize = 2 * TASKS;
    // Slow enough answers that the run is well under way, not over, when the workers die.
    let server =
        FakeServer::start_in_thread(Script::new().fixed_latency(Duration::from_millis(40)))
            .expect("start the fake server");
    let suite = grid_suite(&server, TASKS);

    // The reference: one process, one SQLite file.
    let alone = Sandbox::with_key();
    alone.suite(&suite);
    alone.run(&["--quiet"]).success();
    let expected = comparable(report(&alone));
    let asked_alone = server.requests().len();
    assert_eq!(asked_alone, CELLS);

    let shared = Sandbox::with_key().on_database(&db);
    shared.suite(&suite);
    let planned = shared.run(&["--workers", "0"]).success();
    assert!(
        planned.stderr.contains("versus --db postgres://***@") && planned.stderr.contains("worker"),
        "{planned}"
    );
    assert!(!planned.stderr.contains("VERSUS_TEST"), "{planned}");
    assert_eq!(
        server.requests().len(),
        asked_alone,
        "the planner asks nothing"
    );

    let start = |_| shared.spawn(&["worker", "--exit-when-idle", "--lease-secs", "2"]);
    let mut workers: Vec<Child> = (0..4).map(start).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while count(&newest_run(&shared), "ok") < (CELLS / 4) as u64 {
        assert!(Instant::now() < deadline, "the workers made no progress");
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut killed = Vec::new();
    for worker in workers.iter_mut().take(2) {
        worker.kill().expect("SIGKILL a worker");
        worker.wait().expect("reap the killed worker");
        killed.push(worker.id());
    }
    // What the dead workers held when they died: the only cells that may be asked twice.
    let held_by_dead: u64 = newest_run(&shared)["workers"]
        .as_array()
        .expect("per-worker progress")
        .iter()
        .filter(|w| killed.contains(&(count(w, "pid") as u32)))
        .map(|w| count(w, "leased"))
        .sum();
    for worker in workers.iter_mut().skip(2) {
        loop {
            if let Some(status) = worker.try_wait().expect("poll a worker") {
                assert!(status.success(), "a surviving worker failed: {status}");
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the surviving workers did not finish the run"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    let run = newest_run(&shared);
    assert_eq!(run["status"], "finished", "{run}");
    assert_eq!(
        (
            count(&run, "cells"),
            count(&run, "ok"),
            count(&run, "pending")
        ),
        (CELLS as u64, CELLS as u64, 0),
        "{run}"
    );
    let recorded: u64 = run["workers"]
        .as_array()
        .expect("per-worker progress")
        .iter()
        .map(|w| count(w, "done"))
        .sum();
    assert_eq!(recorded, CELLS as u64, "each cell recorded once: {run}");

    // The server's log: every cell asked once, a dead worker's held cells at most twice.
    let mut asked: HashMap<String, usize> = HashMap::new();
    for request in &server.requests()[asked_alone..] {
        *asked
            .entry(format!("{}|{}", request.model, request.last_user_text))
            .or_default() += 1;
    }
    assert_eq!(asked.len(), CELLS, "every cell was asked");
    let twice = asked.values().filter(|&&n| n == 2).count() as u64;
    assert!(asked.values().all(|&n| n <= 2), "a cell asked 3 times");
    eprintln!("{CELLS} cells: {twice} asked twice; the killed workers held {held_by_dead} leases");
    assert!(
        twice <= held_by_dead,
        "{twice} cells asked twice, but the dead workers held only {held_by_dead}"
    );

    assert_eq!(comparable(report(&shared)), expected);
}

#[test]
fn a_worker_serves_only_its_models_and_a_run_waits_for_the_rest() {
    let Some(db) = fresh_postgres("a_worker_serves_only_its_models") else {
        return;
    };
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    let shared = Sandbox::with_key().on_database(&db);
    shared.suite(grid_suite(&server, 3));
    shared.run(&["--workers", "0", "--quiet"]).success();
    shared
        .versus(&[
            "worker",
            "--models",
            "m1",
            "--exit-when-idle",
            "--lease-secs",
            "1",
        ])
        .success();
    let run = newest_run(&shared);
    assert_eq!((count(&run, "ok"), count(&run, "pending")), (3, 3), "{run}");
    assert_eq!(run["status"], "running");
    assert!(server.requests().iter().all(|r| r.model == "m1"));
    // Its cells are the workers': a plain `versus run` of the plan does not ask them too.
    shared
        .run(&["--quiet"])
        .usage_error(&["shared with workers", "versus worker"]);
    shared
        .versus(&["worker", "--exit-when-idle", "--lease-secs", "1"])
        .success();
    let run = newest_run(&shared);
    assert_eq!(run["status"], "finished", "{run}");
    assert_eq!(count(&run, "ok"), 6);
    let table = shared.versus(&["runs"]).success().stdout;
    assert_eq!(table.matches("  worker ").count(), 2, "{table}");
    // A shared run the cache answers whole is finished (and scored) at once.
    let asked = server.requests().len();
    shared.run(&["--workers", "0", "--quiet"]).success();
    let cached = newest_run(&shared);
    assert_eq!(cached["status"], "finished", "{cached}");
    assert_eq!(count(&cached, "ok"), 6);
    assert_eq!(server.requests().len(), asked);
}

/// `GET path` from a `versus view` at `authority`; the status code and the body.
fn http_get(authority: &str, path: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(authority).expect("connect to versus view");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("a read timeout");
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n\r\n"
    )
    .expect("send the request");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .expect("read the response");
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    (status, response)
}

#[test]
fn every_command_works_on_postgres() {
    let Some(db) = fresh_postgres("every_command_works_on_postgres") else {
        return;
    };
    let script = Script::new().batch_polls(1).rule(
        versus_testkit::Rule::model("m1")
            .prompt_contains(PROMPTS[0])
            .fault(versus_testkit::Fault::status(400)),
    );
    let server = FakeServer::start_in_thread(script).expect("start the fake server");
    let sandbox = Sandbox::with_key().on_database(&db);
    sandbox.suite(SuiteBuilder::standard(&server).build());

    // run, then resume: the failed cell is asked again in the same run.
    let first = sandbox.run(&[]).code(1);
    assert!(
        first.stderr.contains("report: versus --db postgres://***@"),
        "{first}"
    );
    let again = sandbox.run(&[]).success();
    assert!(again.stderr.contains("(resumed)"), "{again}");
    assert_eq!(count(&newest_run(&sandbox), "ok"), 6);

    sandbox.versus(&["score"]).success();
    let report = sandbox.report_json(&[]);
    assert_eq!(report.count_status("ok"), 6);
    assert!(sandbox.report_markdown(&[]).contains("Run 1"));

    sandbox.write(
        "votes.jsonl",
        "{\"model_a\": \"m1\", \"model_b\": \"m2\", \"winner\": \"model_a\"}\n\
         {\"model_a\": \"m1\", \"model_b\": \"m2\", \"winner\": \"tie\"}\n",
    );
    sandbox
        .versus(&["votes", "import", "votes.jsonl"])
        .success();
    let ratings = sandbox.versus(&["ratings"]).success();
    assert!(ratings.stdout.contains("m1"), "{ratings}");

    // Batch mode: the batch's id and cells go to the same database.
    let batched = Sandbox::with_key().on_database(&db);
    batched.suite(
        SuiteBuilder::new()
            .model_with("openai:gpt-x", &server, "")
            .standard_tasks()
            .build(),
    );
    batched
        .run(&["--batch-api", "--batch-poll", "0.05", "--fresh"])
        .success();
    assert_eq!(server.batch_count(), 1);
    assert_eq!(batched.report_json(&[]).count_status("ok"), 3);

    let mut viewer = sandbox
        .command(&["view", "--port", "0", "--quiet"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start versus view");
    let stdout = viewer.stdout.take().expect("stdout is piped");
    let mut url = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut url)
        .expect("versus view prints its URL");
    let authority = url
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let (status, page) = http_get(&authority, "/runs/1");
    let _ = viewer.kill();
    let _ = viewer.wait();
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Run 1"), "{page}");
}
