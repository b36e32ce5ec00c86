//! `versus serve` as clients meet it: the real binary on a free port (`--port 0`) serving tiny
//! local models, checked with the official `openai` Python package
//! (`tests/openai_client.py`), with `versus run` through an `openai-compatible:` model (the same
//! answers as in-process), with clients that disconnect, and with SIGTERM.
//!
//! The Python client must be importable (`python3 -m pip install 'openai==3.57.0'`, which
//! `.ci/run` does); without it the client test fails with that hint. Set
//! `VERSUS_SKIP_PYTHON_CLIENT_TESTS=1` to skip it instead (the other tests here need no Python).
//! Handler-level shapes and errors are tested without a socket in `src/serve/tests.rs`.

// libc calls on this test's own child processes, each with its SAFETY comment.
#![allow(unsafe_code)]

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::Sandbox;

/// The version `.ci/run` installs and these tests were written against.
const OPENAI_PIN: &str = "openai==3.57.0";
const KEY: &str = "sk-versus-serve-test-2c41-SECRET";

/// `versus model tiny <sandbox>/NAME --arch ARCH`, returning the folder.
fn tiny(sandbox: &Sandbox, name: &str, arch: &str) -> PathBuf {
    let dir = sandbox.path().join(name);
    let dir_text = dir.display().to_string();
    sandbox
        .versus(&["model", "tiny", &dir_text, "--arch", arch])
        .success();
    dir
}

/// A running `versus serve`, killed when dropped.
struct Server {
    child: Child,
    /// `127.0.0.1:PORT`.
    address: String,
    /// `http://127.0.0.1:PORT/v1`.
    base_url: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `versus serve --port 0 ARGS...` and waits until it answers `/health`.
    fn start(sandbox: &Sandbox, args: &[&str]) -> Server {
        let mut all = vec!["serve", "--port", "0"];
        all.extend_from_slice(args);
        let mut child = sandbox
            .command(&all)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start versus serve: {e}"));
        let stderr = Arc::new(Mutex::new(String::new()));
        let stderr_pipe = child.stderr.take().expect("stderr is piped");
        let collected = Arc::clone(&stderr);
        thread::spawn(move || {
            for line in BufReader::new(stderr_pipe).lines().map_while(Result::ok) {
                if let Ok(mut text) = collected.lock() {
                    text.push_str(&line);
                    text.push('\n');
                }
            }
        });
        let stdout = child.stdout.take().expect("stdout is piped");
        let (first_line, lines) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let _ = first_line.send(line);
            // Keep draining, so the server never blocks on a full pipe.
            let _ = std::io::copy(&mut reader, &mut std::io::sink());
        });
        let line = lines
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_default();
        let base_url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| {
                let _ = child.kill();
                let _ = child.wait();
                thread::sleep(Duration::from_millis(100));
                panic!(
                    "the first stdout line is {line:?}, not `listening on URL`; stderr:\n{}",
                    stderr.lock().map(|s| s.clone()).unwrap_or_default()
                )
            })
            .to_string();
        let address = base_url
            .trim_start_matches("http://")
            .trim_end_matches("/v1")
            .to_string();
        let server = Server {
            child,
            address,
            base_url,
            stderr,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while http(&server.address, "GET", "/health", None, None).0 != 200 {
            assert!(Instant::now() < deadline, "no /health in 30 s");
            thread::sleep(Duration::from_millis(20));
        }
        server
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until the server's stderr contains `needle`.
    fn wait_for_log(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.stderr().contains(needle) {
            assert!(
                Instant::now() < deadline,
                "the log never said {needle:?}:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.id()).expect("a pid");
        // SAFETY: kill(2) on the child this test started, which has not been waited for.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "kill({pid}, {signal})");
    }

    /// Waits for the process to exit by itself, returning its exit code.
    fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code();
            }
            assert!(
                Instant::now() < deadline,
                "versus serve still runs after {timeout:?}:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A request addressed to `address` (on loopback the server answers only its own address).
fn request_bytes(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    key: Option<&str>,
) -> Vec<u8> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    if let Some(key) = key {
        head.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    let body = body.unwrap_or("");
    head.push_str(&format!(
        "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    head.into_bytes()
}

/// One HTTP/1.1 request on a fresh connection: the status and the raw body (0 when the server
/// cannot be reached).
fn http(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    key: Option<&str>,
) -> (u16, String) {
    let Ok(mut stream) = TcpStream::connect(address) else {
        return (0, String::new());
    };
    if stream
        .write_all(&request_bytes(address, method, path, body, key))
        .is_err()
    {
        return (0, String::new());
    }
    let mut response = String::new();
    if stream.read_to_string(&mut response).is_err() {
        return (0, String::new());
    }
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

fn chat_json(model: &str, prompt: &str, max_tokens: u32, stream: bool) -> String {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "temperature": 0,
        "max_tokens": max_tokens,
        "stream": stream,
    })
    .to_string()
}

/// Sends a chat request and returns the connection once the first bytes of the answer arrived
/// (streams), or right away (whole answers, which send nothing until they are done).
fn start_chat(address: &str, body: &str, stream: bool) -> TcpStream {
    let mut connection = TcpStream::connect(address).expect("connect");
    connection
        .write_all(&request_bytes(
            address,
            "POST",
            "/v1/chat/completions",
            Some(body),
            None,
        ))
        .expect("send");
    if stream {
        let mut first = [0u8; 256];
        let read = connection.read(&mut first).expect("the first bytes");
        let head = String::from_utf8_lossy(&first[..read]);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    }
    connection
}

fn python_client_ready() -> bool {
    if std::env::var("VERSUS_SKIP_PYTHON_CLIENT_TESTS").as_deref() == Ok("1") {
        eprintln!("VERSUS_SKIP_PYTHON_CLIENT_TESTS=1: the official openai client is not run");
        return false;
    }
    let import = Command::new("python3")
        .args(["-c", "import openai"])
        .output();
    match import {
        Ok(output) if output.status.success() => true,
        Ok(output) => panic!(
            "the official `openai` Python package is not importable ({}); install it with `python3 -m pip install '{OPENAI_PIN}'` (.ci/run does), or set VERSUS_SKIP_PYTHON_CLIENT_TESTS=1 to skip this test",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => panic!(
            "python3 cannot be run ({error}); install Python 3 and `python3 -m pip install '{OPENAI_PIN}'`, or set VERSUS_SKIP_PYTHON_CLIENT_TESTS=1 to skip this test"
        ),
    }
}

#[test]
fn the_official_openai_client_talks_to_versus_serve() {
    if !python_client_ready() {
        return;
    }
    let sandbox = Sandbox::new().env("VERSUS_SERVE_TEST_KEY", KEY);
    let model = tiny(&sandbox, "tiny", "qwen2");
    let spec = format!("tiny=local:{}", model.display());
    let server = Server::start(
        &sandbox,
        &["--model", &spec, "--api-key-env", "VERSUS_SERVE_TEST_KEY"],
    );
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai_client.py");
    let output = Command::new("python3")
        .arg(&script)
        .arg(&server.base_url)
        .args(["--model", "tiny", "--key", KEY])
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run python3");
    let stderr = server.stderr();
    assert!(
        output.status.success(),
        "{} failed:\n{}{}\nserver log:\n{stderr}",
        script.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stderr.contains("status=401") && stderr.contains("status=404"));
    assert!(!stderr.contains(KEY), "the key is never logged");
    assert!(
        !stderr.contains("sky blue"),
        "no message contents without --log-content"
    );
}

#[test]
fn a_suite_through_the_server_gets_the_in_process_answers() {
    let sandbox = Sandbox::new();
    let model = tiny(&sandbox, "tiny", "qwen2");
    sandbox.suite(format!(
        r#"
name = "through-serve"
[defaults]
temperature = 0.0
max_tokens = 24
stop = ["\n\n\n"]

[[models]]
id = "tiny"
spec = "local:{}"

[[tasks]]
id = "plain"
prompt = "Why is the sky blue?"

[[tasks]]
id = "with-system"
system = "You are a poet."
prompt = "Write a haiku about rust and iron."

[[tasks]]
id = "conversation"
max_tokens = 40
messages = [
  {{ role = "user", content = "Name a colour." }},
  {{ role = "assistant", content = "Blue." }},
  {{ role = "user", content = "Another one?" }},
]
"#,
        model.display()
    ));
    sandbox.run(&["--no-score"]).success();
    let spec = format!("tiny=local:{}", model.display());
    let server = Server::start(&sandbox, &["--model", &spec]);
    sandbox
        .run(&[
            "--no-score",
            "--model",
            "tiny=openai-compatible:tiny",
            "--base-url",
            &server.base_url,
        ])
        .success();
    let in_process = sandbox.report_json(&["--run", "1"]);
    let served = sandbox.report_json(&["--run", "2"]);
    for task in ["plain", "with-system", "conversation"] {
        let (a, b) = (in_process.result(task, "tiny"), served.result(task, "tiny"));
        assert_eq!(a["status"], "ok", "{a}");
        assert_eq!(b["status"], "ok", "{b}");
        assert_eq!(b["cached"], false, "the served run called the server");
        for field in [
            "output",
            "finish_reason",
            "prompt_tokens",
            "completion_tokens",
        ] {
            assert_eq!(a[field], b[field], "{task}: {field} differs");
        }
        assert!(
            !a["output"].as_str().unwrap_or_default().is_empty(),
            "{task}: empty"
        );
    }
    assert_eq!(
        server
            .stderr()
            .matches("status=200 model=tiny stream=true")
            .count(),
        3,
        "versus run streams each task once:\n{}",
        server.stderr()
    );
}

#[test]
fn a_client_that_disconnects_stops_its_generation() {
    let sandbox = Sandbox::new();
    // Greedy, this model answers "Hello" with thousands of tokens and no end-of-turn token:
    // seconds of work that only cancellation cuts short.
    let model = tiny(&sandbox, "long", "phi3");
    let spec = format!("long=local:{}", model.display());
    let server = Server::start(&sandbox, &["--model", &spec]);
    for stream in [true, false] {
        let connection = start_chat(
            &server.address,
            &chat_json("long", "Hello", 16000, stream),
            stream,
        );
        if !stream {
            // Let the generation start before hanging up.
            thread::sleep(Duration::from_millis(300));
        }
        drop(connection);
        let began = Instant::now();
        let (status, body) = http(
            &server.address,
            "POST",
            "/v1/chat/completions",
            Some(&chat_json("long", "Hi", 4, false)),
            None,
        );
        let waited = began.elapsed();
        assert_eq!(status, 200, "{body}");
        assert!(
            waited < Duration::from_secs(5),
            "the next request waited {waited:?} (stream: {stream}): the abandoned generation kept the model"
        );
    }
    server.wait_for_log(
        "cancelled=\"client disconnected\" chunks=",
        Duration::from_secs(5),
    );
    server.wait_for_log(
        "status=499 model=long cancelled=\"client disconnected\"",
        Duration::from_secs(5),
    );
}

#[test]
fn sigterm_lets_a_request_finish_and_cancels_one_past_the_deadline() {
    let sandbox = Sandbox::new();
    let model = tiny(&sandbox, "long", "phi3");
    let spec = format!("long=local:{}", model.display());

    // A request that ends within the grace period is answered in full, then the server exits.
    let mut server = Server::start(&sandbox, &["--model", &spec, "--shutdown-timeout", "60"]);
    let mut connection = start_chat(
        &server.address,
        &chat_json("long", "Hello", 1500, true),
        true,
    );
    server.signal(libc::SIGTERM);
    let mut rest = String::new();
    connection
        .read_to_string(&mut rest)
        .expect("the rest of the stream");
    assert!(
        rest.contains("data: [DONE]"),
        "the stream was cut: {}",
        &rest[rest.len().saturating_sub(300)..]
    );
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        server
            .stderr()
            .contains("shutting down: 1 request(s) in flight"),
        "{}",
        server.stderr()
    );

    // One that would run far longer is cancelled at the deadline.
    let mut server = Server::start(&sandbox, &["--model", &spec, "--shutdown-timeout", "0.5"]);
    let mut connection = start_chat(
        &server.address,
        &chat_json("long", "Hello", 16000, true),
        true,
    );
    let signalled = Instant::now();
    server.signal(libc::SIGTERM);
    assert_eq!(server.wait_exit(Duration::from_secs(10)), Some(0));
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "took {:?}",
        signalled.elapsed()
    );
    let mut rest = String::new();
    let _ = connection.read_to_string(&mut rest);
    assert!(
        !rest.contains("[DONE]"),
        "a cancelled stream does not claim to be done"
    );
    server.wait_for_log("cancelled=\"server shutting down\"", Duration::from_secs(2));
}

#[test]
fn refuses_to_serve_the_network_without_a_key_or_with_an_unset_one() {
    let sandbox = Sandbox::new();
    let spec = "local:./not-loaded-before-these-checks";
    sandbox
        .versus(&["serve", "--model", spec, "--host", "0.0.0.0"])
        .usage_error(&["--api-key-env", "0.0.0.0"]);
    sandbox
        .versus(&[
            "serve",
            "--model",
            spec,
            "--api-key-env",
            "VERSUS_SERVE_SURELY_UNSET",
        ])
        .usage_error(&["VERSUS_SERVE_SURELY_UNSET is not set"]);
    sandbox
        .versus(&["serve", "--model", "openai:gpt-4o-mini"])
        .usage_error(&["serves local models"]);
}
