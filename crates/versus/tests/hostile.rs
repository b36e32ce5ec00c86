//! The committed corpus of hostile inputs in `tests/hostile/`, run through the real binary: every
//! suite, server answer (SSE streams and JSON bodies), GGUF header, chat template and model
//! answer there must end in a clean result or a clean error (exit 0, 1 or 2 with a message),
//! never a panic, an abort or a hang.
//!
//! A new hostile input is one new file in the right folder; inputs too large to commit are made
//! here (`generated_*`). What each folder holds is in `tests/hostile/README.md`.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::*;
use versus_testkit::{FakeServer, Rule, Script};

fn corpus(folder: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/hostile")
        .join(folder);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("an entry").path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "{} is empty", dir.display());
    files
}

/// Runs `versus ARGS` in the sandbox, killed (and the test failed) after `limit`.
fn bounded(sandbox: &Sandbox, args: &[&str], limit: Duration) -> Output {
    let started = Instant::now();
    let mut child = sandbox
        .command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start versus");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stdout.read_to_end(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = Vec::new();
        let _ = stderr.read_to_end(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for versus") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("versus {args:?} hung (killed after {limit:?})");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        args: args.iter().map(|a| a.to_string()).collect(),
        code: status.code(),
        stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
        elapsed: started.elapsed(),
    }
}

/// A clean end: exit 0, 1 or 2 (not a signal: an abort is SIGABRT), no panic message, and an
/// error that says something.
#[track_caller]
fn assert_clean(what: &str, output: &Output) {
    assert!(
        matches!(output.code, Some(0..=2)),
        "{what}: not a clean exit\n{output}"
    );
    assert!(
        !output.stderr.contains("panicked") && !output.stderr.contains("RUST_BACKTRACE"),
        "{what}: panicked\n{output}"
    );
    if output.code != Some(0) {
        assert!(
            output.stderr.contains("error") || output.stderr.contains("failed"),
            "{what}: failed without saying why\n{output}"
        );
    }
}

fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

// ---- suites ----

#[test]
fn hostile_suites_end_cleanly() {
    let server = FakeServer::start_in_thread(Script::new()).expect("start the fake server");
    for path in corpus("suites") {
        let sandbox = Sandbox::with_key();
        let bytes = std::fs::read(&path).expect("read the suite");
        let text = String::from_utf8_lossy(&bytes);
        // Only valid UTF-8 files get the server's address; the others stay byte for byte.
        let bytes = if std::str::from_utf8(&bytes).is_ok() {
            text.replace("{URL}", &server.base_url()).into_bytes()
        } else {
            bytes
        };
        sandbox.write("suite.toml", bytes);
        let output = bounded(
            &sandbox,
            &["run", "suite.toml", "--no-score"],
            Duration::from_secs(120),
        );
        assert_clean(&name_of(&path), &output);
    }
}

// ---- what servers send ----

/// A server that answers every request with `body` under `content_type`, then closes.
struct RawServer {
    address: String,
    stop: Arc<AtomicBool>,
}

impl RawServer {
    fn start(content_type: &'static str, body: Vec<u8>) -> RawServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("non-blocking");
        let address = listener.local_addr().expect("address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = Arc::clone(&stop);
        let body = Arc::new(body);
        std::thread::spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                let Ok((mut stream, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let body = Arc::clone(&body);
                std::thread::spawn(move || {
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let mut request = Vec::new();
                    let mut buffer = [0u8; 8192];
                    // The head, then as much body as Content-Length says.
                    while let Ok(read) = stream.read(&mut buffer) {
                        if read == 0 {
                            break;
                        }
                        request.extend_from_slice(&buffer[..read]);
                        let text = String::from_utf8_lossy(&request);
                        if let Some((head, rest)) = text.split_once("\r\n\r\n") {
                            let length = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if rest.len() >= length {
                                break;
                            }
                        }
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nConnection: close\r\n\r\n"
                    );
                    let _ = stream.write_all(head.as_bytes());
                    let _ = stream.write_all(&body);
                });
            }
        });
        RawServer { address, stop }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.address)
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Runs a one-task suite against a server sending `body`, streaming or not, with `extra` flags.
fn against_body(
    what: &str,
    content_type: &'static str,
    body: Vec<u8>,
    stream: bool,
    extra: &[&str],
) {
    let server = RawServer::start(content_type, body);
    let sandbox = Sandbox::new();
    sandbox.suite(format!(
        "[defaults]\nretries = 1\nretry_backoff = 0.01\ntimeout = 30\n\
         [[models]]\nspec = \"openai-compatible:m\"\nbase_url = \"{}\"\nstream = {stream}\n\
         [[tasks]]\nid = \"a\"\nprompt = \"hi\"\n",
        server.base_url()
    ));
    let mut args = vec!["run", "suite.toml"];
    args.extend_from_slice(extra);
    let output = bounded(&sandbox, &args, Duration::from_secs(120));
    assert_clean(what, &output);
    for format in ["markdown", "json", "html"] {
        let report = bounded(
            &sandbox,
            &["report", "--format", format],
            Duration::from_secs(60),
        );
        assert_clean(&format!("{what}, {format} report"), &report);
    }
}

#[test]
fn hostile_sse_streams_end_cleanly() {
    for path in corpus("sse") {
        let body = std::fs::read(&path).expect("read the stream");
        against_body(&name_of(&path), "text/event-stream", body, true, &[]);
    }
}

#[test]
fn generated_endless_sse_lines_and_events_end_cleanly() {
    let line = [b"data: ".as_slice(), &vec![b'x'; 3 << 20]].concat();
    against_body(
        "an endless line",
        "text/event-stream",
        line,
        true,
        &["--max-sse-line-bytes", "1048576"],
    );
    let lines = b"data: y\n".repeat(300_000);
    against_body(
        "an endless event",
        "text/event-stream",
        lines,
        true,
        &["--max-sse-line-bytes", "1048576"],
    );
}

#[test]
fn hostile_json_bodies_end_cleanly() {
    for path in corpus("json") {
        let body = std::fs::read(&path).expect("read the body");
        against_body(&name_of(&path), "application/json", body, false, &[]);
    }
    let huge = [b"{\"pad\": \"".as_slice(), &vec![b'z'; 6 << 20], b"\"}"].concat();
    against_body(
        "a body over the limit",
        "application/json",
        huge,
        false,
        &["--max-response-bytes", "4194304"],
    );
}

// ---- model files ----

#[test]
fn hostile_gguf_headers_are_refused_cleanly() {
    let sandbox = Sandbox::new();
    for path in corpus("gguf") {
        let spec = format!("gguf:{}", path.display());
        let output = bounded(
            &sandbox,
            &["model", "inspect", &spec],
            Duration::from_secs(60),
        );
        assert_clean(&name_of(&path), &output);
        assert_eq!(output.code, Some(2), "{}\n{output}", name_of(&path));
    }
}

#[test]
fn hostile_chat_templates_end_cleanly() {
    let sandbox = Sandbox::new();
    let model = sandbox.path().join("tiny");
    sandbox
        .versus(&["model", "tiny", "tiny", "--arch", "llama", "--quiet"])
        .success();
    let spec = format!("local:{}", model.display());
    for path in corpus("templates") {
        std::fs::copy(&path, model.join("chat_template.jinja")).expect("install the template");
        let output = bounded(
            &sandbox,
            &["chat", &spec, "hi", "--max-tokens", "2", "--quiet"],
            Duration::from_secs(180),
        );
        assert_clean(&name_of(&path), &output);
    }
}

// ---- model answers ----

#[test]
fn hostile_answers_are_stored_scored_and_reported_cleanly() {
    let answers = corpus("answers");
    let mut script = Script::new();
    let mut suite = SuiteBuilder::new();
    for (index, path) in answers.iter().enumerate() {
        let text = std::fs::read_to_string(path).expect("read the answer");
        let prompt = format!("question {index}");
        script = script.rule(
            Rule::any()
                .prompt_contains(format!("{prompt}."))
                .answer(text),
        );
        suite = suite.task_with(
            &format!("t{index}"),
            &format!("{prompt}."),
            "[[tasks.checks]]\ntype = \"code\"\nlanguage = \"python\"\ntests = \"assert True\"\n",
        );
    }
    let server = FakeServer::start_in_thread(script).expect("start the fake server");
    let sandbox = Sandbox::new();
    sandbox.suite(
        suite
            .compatible(&server, "m1")
            .compatible(&server, "m2")
            .build(),
    );
    let run = bounded(
        &sandbox,
        &["run", "suite.toml", "--allow-unsandboxed"],
        Duration::from_secs(300),
    );
    assert_clean("the run", &run);
    for format in ["markdown", "json", "html"] {
        let report = bounded(
            &sandbox,
            &["report", "--format", format],
            Duration::from_secs(60),
        );
        assert_clean(&format!("the {format} report"), &report);
        assert_eq!(report.code, Some(0), "{report}");
    }
}
