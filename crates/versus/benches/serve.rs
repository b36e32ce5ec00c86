//! Serve benchmark: the real `versus serve` binary with a tiny local model, and 1, 4 and 16
//! concurrent streaming clients (versus-api's OpenAI client) asking for 64 tokens each. Prints
//! requests per second, output tokens per second, and time to first token and inter-token
//! latency percentiles (p50/p90/p99) as the clients see them. The server generates one answer at
//! a time per model, so more clients raise throughput only through overlap of HTTP and
//! generation, and their time to first token includes the wait in the queue.
//!
//! `cargo bench -p versus --bench serve` (a minute at most); `cargo test --benches` runs a smoke
//! version with two requests per level.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use versus_api::{ClientConfig, OpenAiClient, RetryPolicy};
use versus_core::{ChatRequest, GenerationParams, Message};
use versus_engine::tiny::{write_tiny_model, TinyArch};

const MAX_TOKENS: u32 = 64;
const CLIENTS: [usize; 3] = [1, 4, 16];

/// The server process, killed when dropped.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One request as its client saw it.
struct Timed {
    ttft: Duration,
    gaps: Vec<Duration>,
    tokens: u64,
}

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) is a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let model_dir = dir.path().join("tiny-phi3");
    // Greedy, this model answers "Hello" with thousands of tokens and no end-of-turn token, so
    // every request makes exactly MAX_TOKENS tokens.
    write_tiny_model(&model_dir, TinyArch::Phi3, 0).expect("write the tiny model");
    let (_server, base_url) = start_server(&model_dir);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let client = Arc::new(
        OpenAiClient::new(ClientConfig {
            retry: RetryPolicy {
                max_retries: 0,
                ..RetryPolicy::default()
            },
            ..ClientConfig::new(&base_url, "tiny")
        })
        .expect("a client"),
    );
    // Warm-up: the first request pays for page faults and allocations.
    runtime.block_on(one_request(&client));

    println!(
        "serve benchmark: tiny phi3 model (random weights, CPU), streaming, {MAX_TOKENS} tokens per answer, one generation at a time"
    );
    println!(
        "{:>7} {:>8} {:>8} {:>9} | {:>26} | {:>26}",
        "clients",
        "requests",
        "req/s",
        "tokens/s",
        "TTFT ms p50 / p90 / p99",
        "ITL ms p50 / p90 / p99"
    );
    for clients in CLIENTS {
        let per_client = if smoke { 2 } else { (96 / clients).max(4) };
        let started = Instant::now();
        let timed = runtime.block_on(run_clients(&client, clients, per_client));
        let wall = started.elapsed().as_secs_f64();
        let mut ttfts: Vec<f64> = timed.iter().map(|t| ms(t.ttft)).collect();
        let mut gaps: Vec<f64> = timed
            .iter()
            .flat_map(|t| t.gaps.iter().map(|&g| ms(g)))
            .collect();
        let tokens: u64 = timed.iter().map(|t| t.tokens).sum();
        println!(
            "{clients:>7} {:>8} {:>8.1} {:>9.0} | {:>26} | {:>26}",
            timed.len(),
            timed.len() as f64 / wall,
            tokens as f64 / wall,
            percentiles(&mut ttfts),
            percentiles(&mut gaps),
        );
    }
}

/// Starts `versus serve --port 0` and reads its address from stdout's first line.
fn start_server(model_dir: &std::path::Path) -> (ServerProcess, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_versus"))
        .args([
            "--quiet", "serve", "--port", "0", "--queue", "64", "--model",
        ])
        .arg(format!("tiny=local:{}", model_dir.display()))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start versus serve");
    let stdout = child.stdout.take().expect("piped stdout");
    let server = ServerProcess(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("the address line");
    let base_url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (server, base_url)
}

async fn run_clients(client: &Arc<OpenAiClient>, clients: usize, per_client: usize) -> Vec<Timed> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let client = Arc::clone(client);
        tasks.spawn(async move {
            let mut timed = Vec::new();
            for _ in 0..per_client {
                timed.push(one_request(&client).await);
            }
            timed
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.extend(done.expect("a client task"));
    }
    all
}

async fn one_request(client: &OpenAiClient) -> Timed {
    let request = ChatRequest {
        messages: vec![Message::user("Hello")],
        params: GenerationParams {
            temperature: Some(0.0),
            max_tokens: Some(MAX_TOKENS),
            ..GenerationParams::default()
        },
    };
    let sent = Instant::now();
    let mut arrivals = Vec::with_capacity(MAX_TOKENS as usize);
    let completion = client
        .complete_streaming(&request, &mut |_| arrivals.push(Instant::now()))
        .await
        .expect("an answer");
    let first = *arrivals.first().expect("some text");
    Timed {
        ttft: first - sent,
        gaps: arrivals.windows(2).map(|w| w[1] - w[0]).collect(),
        tokens: completion.usage.map_or(0, |u| u.completion_tokens),
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// "p50 / p90 / p99" by nearest rank.
fn percentiles(values: &mut [f64]) -> String {
    if values.is_empty() {
        return "–".into();
    }
    values.sort_by(f64::total_cmp);
    let at =
        |p: f64| values[((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    format!("{:.2} / {:.2} / {:.2}", at(0.50), at(0.90), at(0.99))
}
