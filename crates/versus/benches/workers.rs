//! Workers benchmark: cells per second through PostgreSQL with 1, 2 and 4 `versus worker`
//! processes, against a loopback OpenAI-compatible server that answers at once, beside the
//! figure of one `versus run` process on a SQLite file (the baseline). The configurations are
//! interleaved, round after round, so that a machine's changing load falls on all of them alike.
//!
//! `scripts/with-postgres cargo bench -p versus --bench workers` (N = 2,000 cells over 2 models
//! and 3 rounds by default; `VERSUS_BENCH_N=...`, `VERSUS_BENCH_ROUNDS=...` to change them).
//! Without `VERSUS_TEST_POSTGRES` only the SQLite figure is measured.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use versus_testkit::{FakeServer, Script};

const MODELS: [&str; 2] = ["bench-a", "bench-b"];
const CONCURRENCY_PER_MODEL: usize = 4;
const WORKER_COUNTS: [usize; 3] = [1, 2, 4];

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) is a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let setting = |name: &str, full: usize, small: usize| {
        std::env::var(name)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(if smoke { small } else { full })
    };
    let total = setting("VERSUS_BENCH_N", 2000, 20);
    let rounds = setting("VERSUS_BENCH_ROUNDS", 3, 1);
    let tasks = total / MODELS.len();
    let cells = (tasks * MODELS.len()) as f64;
    let postgres = std::env::var("VERSUS_TEST_POSTGRES")
        .ok()
        .filter(|url| !url.is_empty());

    let server = FakeServer::start_in_thread(Script::new().log_requests(false))
        .expect("start the loopback server");
    let dir = tempfile::tempdir().expect("temporary directory");
    let suite = dir.path().join("bench.toml");
    std::fs::write(&suite, suite_text(&server.base_url(), tasks)).expect("write the suite");

    let mut configurations = vec!["sqlite, 1 process (versus run)".to_string()];
    if postgres.is_some() {
        configurations.extend(
            WORKER_COUNTS
                .iter()
                .map(|n| format!("postgres, {n} worker{}", if *n == 1 { "" } else { "s" })),
        );
    }
    let mut seconds: Vec<Vec<f64>> = vec![Vec::new(); configurations.len()];
    for round in 0..rounds {
        let sqlite = dir.path().join(format!("round{round}.db"));
        seconds[0].push(run_alone(dir.path(), &suite, &sqlite.to_string_lossy()).as_secs_f64());
        if let Some(server_url) = &postgres {
            for (index, workers) in WORKER_COUNTS.iter().enumerate() {
                let db = fresh_schema(server_url, &format!("r{round}w{workers}"));
                seconds[index + 1]
                    .push(run_workers(dir.path(), &suite, &db, *workers).as_secs_f64());
            }
        }
    }
    assert_eq!(
        server.request_count(),
        total * rounds * configurations.len(),
        "every configuration asks every cell once"
    );

    println!(
        "workers benchmark: {cells} cells ({tasks} tasks x {} models), {CONCURRENCY_PER_MODEL} in \
         flight per model per process, loopback server answering at once, {rounds} rounds \
         interleaved",
        MODELS.len()
    );
    println!(
        "  {:<34} {:>12} {:>12}  rounds (s)",
        "configuration", "cells/s", "vs sqlite"
    );
    let median = |times: &[f64]| {
        let mut sorted = times.to_vec();
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2]
    };
    let baseline = median(&seconds[0]);
    for (label, times) in configurations.iter().zip(&seconds) {
        let time = median(times);
        let shown: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
        println!(
            "  {label:<34} {:>12.1} {:>11.2}x  {}",
            cells / time,
            baseline / time,
            shown.join(" ")
        );
    }
    if postgres.is_none() {
        println!("  (no VERSUS_TEST_POSTGRES: the PostgreSQL figures need scripts/with-postgres)");
    }
}

fn suite_text(base_url: &str, tasks: usize) -> String {
    let mut text = format!(
        "name = \"bench\"\n[defaults]\nconcurrency = {CONCURRENCY_PER_MODEL}\nretries = 0\n"
    );
    for model in MODELS {
        text.push_str(&format!(
            "[[models]]\nspec = \"openai-compatible:{model}\"\nbase_url = \"{base_url}\"\n"
        ));
    }
    for i in 0..tasks {
        text.push_str(&format!(
            "[[tasks]]\nid = \"t{i}\"\nprompt = \"Question number {i}: why is the sky blue?\"\n"
        ));
    }
    text
}

/// A schema of its own on the server, as a URL whose connections use it.
fn fresh_schema(server: &str, name: &str) -> String {
    let schema = format!("versus_bench_{}_{name}", std::process::id());
    let mut admin = postgres::Client::connect(server, postgres::NoTls).expect("reach PostgreSQL");
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .expect("create a schema");
    let separator = if server.contains('?') { '&' } else { '?' };
    format!("{server}{separator}options=-csearch_path%3D{schema}")
}

fn versus(dir: &Path, db: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_versus"));
    command
        .current_dir(dir)
        .arg("--quiet")
        .arg("--db")
        .arg(db)
        .args(args)
        .stdin(Stdio::null())
        .env_remove("VERSUS_DB");
    command
}

/// One `versus run` process: planning, every call, every record, scoring.
fn run_alone(dir: &Path, suite: &Path, db: &str) -> Duration {
    let start = Instant::now();
    let suite = suite.to_string_lossy();
    let status = versus(dir, db, &["run", &suite])
        .status()
        .expect("start versus");
    assert!(status.success(), "versus run failed");
    start.elapsed()
}

/// `versus run --workers 0` and then `workers` workers until the run is finished (and scored by
/// the last one): the same work as [`run_alone`], through the shared database.
fn run_workers(dir: &Path, suite: &Path, db: &str, workers: usize) -> Duration {
    let start = Instant::now();
    let suite = suite.to_string_lossy();
    let planned = versus(dir, db, &["run", &suite, "--workers", "0"])
        .status()
        .expect("start versus");
    assert!(planned.success(), "versus run --workers 0 failed");
    let mut children: Vec<_> = (0..workers)
        .map(|_| {
            versus(dir, db, &["worker", "--exit-when-idle"])
                .spawn()
                .expect("start a worker")
        })
        .collect();
    for child in &mut children {
        let status = child.wait().expect("wait for a worker");
        assert!(status.success(), "a worker failed");
    }
    start.elapsed()
}
