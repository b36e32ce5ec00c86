//! Serve benchmark: the real `versus serve` binary with a local model, and 1, 4, 8 and 16
//! concurrent streaming clients (versus-api's OpenAI client). Prints requests per second, output
//! tokens per second (and as a multiple of one client's), the slowest and fastest client's
//! tokens per second (a starved client shows as a low minimum), and time to first token and
//! inter-token latency percentiles (p50/p90/p99) as the clients see them. The server decodes up
//! to its batch (8) of requests together, so more clients raise throughput as long as a decode
//! step for many costs little more than for one; time to first token includes any wait.
//!
//! `cargo bench -p versus --bench serve` uses a tiny random-weight model (a minute at most),
//! where a step is mostly fixed costs, not weight reads. `VERSUS_BENCH_MODEL=SPEC` serves a
//! real-sized one instead, with 32 tokens and sixteen requests a level (two a client from eight
//! clients on), and
//! `VERSUS_BENCH_QUANTIZE=q4k` (or `q8_0`) quantizes it on load. The GGUF files of
//! tools/bench/engine_vs_llama_cpp.py have a synthetic vocabulary that cannot tokenize chat
//! messages; tools/bench/phi4_shaped_folder.py makes a Phi-4-shaped folder with a real tokenizer
//! (`local:/tmp/phi4-2l-hf`) that can.
//! `cargo test --benches` runs a smoke version with two requests per level.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use versus_api::{ClientConfig, OpenAiClient, RetryPolicy};
use versus_core::{ChatRequest, GenerationParams, Message};
use versus_engine::tiny::{write_tiny_model, TinyArch};

const CLIENTS: [usize; 4] = [1, 4, 8, 16];

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
    took: Duration,
}

/// What one level's clients got: each client's requests.
type ClientResults = Vec<Vec<Timed>>;

fn main() {
    // `cargo bench` passes `--bench`; anything else (e.g. `cargo test --benches`) is a smoke run.
    let smoke = !std::env::args().any(|a| a == "--bench");
    let dir = tempfile::tempdir().expect("a temporary folder");
    let (spec, max_tokens, requests_per_client): (String, u32, fn(usize) -> usize) =
        match std::env::var("VERSUS_BENCH_MODEL") {
            // Sixteen requests a level at least (two a client beyond eight clients): with two,
            // one client's rate, which every other level is divided by, moved by half between
            // runs on the development machine.
            Ok(spec) => (spec, 32, |clients| (16 / clients).max(2)),
            Err(_) => {
                let model_dir = dir.path().join("tiny-phi3");
                // Greedy, this model answers "Hello" with thousands of tokens and no end-of-turn
                // token, so every request makes exactly as many tokens as it asks for.
                write_tiny_model(&model_dir, TinyArch::Phi3, 0).expect("write the tiny model");
                (format!("local:{}", model_dir.display()), 64, |clients| {
                    (96 / clients).max(4)
                })
            }
        };
    let (_server, base_url) = start_server(&spec);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let client = Arc::new(
        OpenAiClient::new(ClientConfig {
            retry: RetryPolicy {
                max_retries: 0,
                ..RetryPolicy::default()
            },
            ..ClientConfig::new(&base_url, "bench")
        })
        .expect("a client"),
    );
    // Warm-up: the first request pays for page faults and allocations.
    runtime.block_on(one_request(&client, max_tokens));

    println!(
        "serve benchmark: {spec}, streaming, {max_tokens} tokens per answer, batches of up to 8"
    );
    println!(
        "{:>7} {:>8} {:>8} {:>9} {:>9} {:>17} | {:>26} | {:>26}",
        "clients",
        "requests",
        "req/s",
        "tokens/s",
        "x 1 client",
        "client tok/s min-max",
        "TTFT ms p50 / p90 / p99",
        "ITL ms p50 / p90 / p99"
    );
    let mut one_client_rate = None;
    for clients in CLIENTS {
        let per_client = if smoke {
            2
        } else {
            requests_per_client(clients)
        };
        let started = Instant::now();
        let results = runtime.block_on(run_clients(&client, clients, per_client, max_tokens));
        let wall = started.elapsed().as_secs_f64();
        let per_client_rates: Vec<f64> = results
            .iter()
            .map(|timed| {
                let tokens: u64 = timed.iter().map(|t| t.tokens).sum();
                let busy: f64 = timed.iter().map(|t| t.took.as_secs_f64()).sum();
                tokens as f64 / busy
            })
            .collect();
        let timed: Vec<&Timed> = results.iter().flatten().collect();
        let mut ttfts: Vec<f64> = timed.iter().map(|t| ms(t.ttft)).collect();
        let mut gaps: Vec<f64> = timed
            .iter()
            .flat_map(|t| t.gaps.iter().map(|&g| ms(g)))
            .collect();
        let tokens: u64 = timed.iter().map(|t| t.tokens).sum();
        let rate = tokens as f64 / wall;
        let one = *one_client_rate.get_or_insert(rate);
        let slowest = per_client_rates
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        let fastest = per_client_rates.iter().copied().fold(0f64, f64::max);
        println!(
            "{clients:>7} {:>8} {:>8.1} {:>9.1} {:>9.2}x {:>17} | {:>26} | {:>26}",
            timed.len(),
            timed.len() as f64 / wall,
            rate,
            rate / one,
            format!("{slowest:.1}-{fastest:.1}"),
            percentiles(&mut ttfts),
            percentiles(&mut gaps),
        );
    }
}

/// Starts `versus serve --port 0` and reads its address from stdout's first line.
fn start_server(spec: &str) -> (ServerProcess, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_versus"));
    command
        .args([
            "--quiet", "serve", "--port", "0", "--queue", "64", "--model",
        ])
        .arg(format!("bench={spec}"));
    if let Ok(kind) = std::env::var("VERSUS_BENCH_QUANTIZE") {
        command.args(["--quantize", &kind]);
    }
    let mut child = command
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

async fn run_clients(
    client: &Arc<OpenAiClient>,
    clients: usize,
    per_client: usize,
    max_tokens: u32,
) -> ClientResults {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let client = Arc::clone(client);
        tasks.spawn(async move {
            let mut timed = Vec::new();
            for _ in 0..per_client {
                timed.push(one_request(&client, max_tokens).await);
            }
            timed
        });
    }
    let mut all = Vec::new();
    while let Some(done) = tasks.join_next().await {
        all.push(done.expect("a client task"));
    }
    all
}

async fn one_request(client: &OpenAiClient, max_tokens: u32) -> Timed {
    let request = ChatRequest {
        messages: vec![Message::user("Hello")],
        params: GenerationParams {
            temperature: Some(0.0),
            max_tokens: Some(max_tokens),
            ..GenerationParams::default()
        },
    };
    let sent = Instant::now();
    let mut arrivals = Vec::with_capacity(max_tokens as usize);
    let completion = client
        .complete_streaming(&request, &mut |_| arrivals.push(Instant::now()))
        .await
        .expect("an answer");
    let first = *arrivals.first().expect("some text");
    Timed {
        ttft: first - sent,
        gaps: arrivals.windows(2).map(|w| w[1] - w[0]).collect(),
        tokens: completion.usage.map_or(0, |u| u.completion_tokens),
        took: sent.elapsed(),
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
