//! `versus-fake-openai`: serves the default script on 127.0.0.1 until killed, for manual demos
//! and benchmark baselines. Prints its base URL on the first line of stdout.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use versus_testkit::{FakeServer, Rule, Script};

const USAGE: &str = "\
usage: versus-fake-openai [--port PORT] [--latency-ms MS] [--chunk-delay-ms MS]

Serves an OpenAI-compatible /v1/chat/completions on 127.0.0.1 that answers
\"Answer from {model}: {last user message}\", until interrupted.

  --port PORT           port to listen on (default 0: any free port)
  --latency-ms MS       wait before every answer (default 0)
  --chunk-delay-ms MS   wait between streamed chunks (default 0)";

struct Options {
    port: u16,
    latency: Duration,
    chunk_delay: Duration,
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut options = Options {
        port: 0,
        latency: Duration::ZERO,
        chunk_delay: Duration::ZERO,
    };
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        let millis = |value: String| {
            value
                .parse::<u64>()
                .map(Duration::from_millis)
                .map_err(|_| format!("{flag}: not a number of milliseconds: {value}"))
        };
        match flag.as_str() {
            "--port" => {
                let value = value()?;
                options.port = value
                    .parse()
                    .map_err(|_| format!("--port: not a port: {value}"))?;
            }
            "--latency-ms" => options.latency = millis(value()?)?,
            "--chunk-delay-ms" => options.chunk_delay = millis(value()?)?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> ExitCode {
    let options = match parse_options(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("versus-fake-openai: {message}");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    let mut script = Script::new()
        // A server that runs for hours must not keep every request.
        .log_requests(false)
        .rule(Rule::any().chunk_delay(options.chunk_delay));
    if !options.latency.is_zero() {
        script = script.fixed_latency(options.latency);
    }
    let server = match FakeServer::start_on_port(script, options.port).await {
        Ok(server) => server,
        Err(error) => {
            eprintln!(
                "versus-fake-openai: cannot listen on 127.0.0.1:{}: {error}",
                options.port
            );
            return ExitCode::FAILURE;
        }
    };
    println!("{}", server.base_url());
    // Whoever started us reads the URL before we are done.
    let _ = std::io::stdout().flush();
    if let Err(error) = tokio::signal::ctrl_c().await {
        eprintln!("versus-fake-openai: cannot wait for Ctrl-C ({error}); exiting");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "versus-fake-openai: served {} requests",
        server.request_count()
    );
    ExitCode::SUCCESS
}
