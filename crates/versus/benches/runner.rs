//! Runner benchmark: `versus run` against a loopback OpenAI-compatible server that answers at
//! once, against a baseline of the same requests sent straight through versus-api's client with the
//! same concurrency, in the same process run. Reports requests per second, the runner's added
//! time per request, and the peak memory of the `versus` process.
//!
//! `cargo bench -p versus --bench runner` (N = 2,000 requests over 2 models by default;
//! `VERSUS_BENCH_N=...` to change it).

// libc calls on this test's own child processes, each with its SAFETY comment.
#![allow(unsafe_code)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use versus_api::{ClientConfig, OpenAiClient, RetryPolicy};
use versus_core::{ChatModel, ChatRequest, GenerationParams, Message};
use versus_testkit::{FakeServer, Script};

const MODELS: [&str; 2] = ["bench-a", "bench-b"];
const CONCURRENCY_PER_MODEL: usize = 4;

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) is a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let total: usize = std::env::var("VERSUS_BENCH_N")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(if smoke { 20 } else { 2000 });
    let tasks = total / MODELS.len();

    let server = FakeServer::start_in_thread(Script::new().log_requests(false))
        .expect("start the loopback server");
    let dir = tempfile::tempdir().expect("temporary directory");
    let suite = dir.path().join("bench.toml");
    std::fs::write(&suite, suite_text(&server.base_url(), tasks)).expect("write the suite");

    let baseline = baseline(&server.base_url(), tasks);
    let cold = run_versus(dir.path(), &suite, "cold");
    let cached = run_versus(dir.path(), &suite, "cached");
    assert_eq!(
        server.request_count(),
        2 * total,
        "baseline and the cold run each send every request once; the cached run sends none"
    );

    let n = (tasks * MODELS.len()) as f64;
    println!("runner benchmark: {n} requests ({tasks} tasks x {} models), {CONCURRENCY_PER_MODEL} in flight per model, loopback server answering at once", MODELS.len());
    println!(
        "  baseline (versus-api client, no runner):  {:>8.1} req/s  ({:.3} s)",
        n / baseline.as_secs_f64(),
        baseline.as_secs_f64()
    );
    for (label, result) in [
        ("versus run, cold", &cold),
        ("versus run, all cached", &cached),
    ] {
        println!(
            "  {label:<40} {:>8.1} req/s  ({:.3} s, {:.2}x baseline time, peak RSS {:.1} MiB)",
            n / result.wall.as_secs_f64(),
            result.wall.as_secs_f64(),
            result.wall.as_secs_f64() / baseline.as_secs_f64(),
            result.peak_rss_kib as f64 / 1024.0
        );
    }
    let added_ms = (cold.wall.as_secs_f64() - baseline.as_secs_f64()) * 1000.0 / n;
    println!("  runner's added time per request (cold - baseline) / N: {added_ms:.3} ms");
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

/// The same requests, sent through the same HTTP client with the same concurrency, without the
/// runner, the store or a process start.
fn baseline(base_url: &str, tasks: usize) -> Duration {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async {
        let start = Instant::now();
        let mut calls = tokio::task::JoinSet::new();
        for model in MODELS {
            let client: Arc<dyn ChatModel> = Arc::new(
                OpenAiClient::new(ClientConfig {
                    retry: RetryPolicy {
                        max_retries: 0,
                        ..RetryPolicy::default()
                    },
                    ..ClientConfig::new(base_url, model)
                })
                .expect("client"),
            );
            let slots = Arc::new(Semaphore::new(CONCURRENCY_PER_MODEL));
            for i in 0..tasks {
                let client = Arc::clone(&client);
                let slots = Arc::clone(&slots);
                calls.spawn(async move {
                    let _slot = slots.acquire_owned().await;
                    let request = ChatRequest {
                        messages: vec![Message::user(format!(
                            "Question number {i}: why is the sky blue?"
                        ))],
                        params: GenerationParams {
                            temperature: Some(0.0),
                            ..GenerationParams::default()
                        },
                    };
                    client
                        .complete(&request, &mut |_| {})
                        .await
                        .expect("answer")
                });
            }
        }
        while let Some(joined) = calls.join_next().await {
            joined.expect("call");
        }
        start.elapsed()
    })
}

struct Measured {
    wall: Duration,
    peak_rss_kib: i64,
}

// The child is reaped by `wait4` in `wait_with_rusage`, which clippy cannot see.
#[allow(clippy::zombie_processes)]
fn run_versus(dir: &Path, suite: &Path, label: &str) -> Measured {
    let start = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_versus"))
        .arg("--quiet")
        .arg("--db")
        .arg(dir.join("bench.db"))
        .arg("run")
        .arg(suite)
        .spawn()
        .expect("start versus");
    let (status, peak_rss_kib) = wait_with_rusage(child.id() as libc::pid_t);
    let wall = start.elapsed();
    assert_eq!(status, 0, "versus run ({label}) failed");
    Measured { wall, peak_rss_kib }
}

/// Waits for the child and returns its exit status and peak resident set size (KiB, Linux).
fn wait_with_rusage(pid: libc::pid_t) -> (i32, i64) {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value for the kernel to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `pid` is our own child, not yet waited for; both pointers are valid for writing.
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (code, usage.ru_maxrss)
}
