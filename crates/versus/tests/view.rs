//! `versus view` as a process: it prints its URL first (`--port 0` picks a free port), serves the
//! database of a real run whose model answered with hostile HTML, and off loopback it demands
//! the token it printed. The handlers themselves are tested in `src/view/tests.rs`.
//!
//! New tests of the `view` command line go here. Helpers are in `support/mod.rs` and below.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::sync::mpsc;
use std::time::Duration;

use support::*;
use versus_testkit::{FakeServer, Rule, Script};

/// What a hostile model answers: script, handlers, script URLs, remote styles and images.
const HOSTILE_ANSWER: &str = "<script>window.pwned = 1</script>\n\n\
     <img src=x onerror=\"window.pwned = 1\">\n\n\
     [click](javascript:window.pwned=1)\n\n\
     <div style=\"background:url(https://evil.example/x.png)\">styled</div>\n\n\
     ![pixel](https://evil.example/pixel.png)";

/// A running `versus view`, killed when dropped.
struct Viewer {
    child: Child,
    /// `127.0.0.1:PORT`.
    authority: String,
    /// The other lines it printed at start (the token, the login link).
    lines: Vec<String>,
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Viewer {
    /// Starts `versus view --port 0 EXTRA...` and reads the URL (and `extra_lines` more lines).
    fn start(sandbox: &Sandbox, extra: &[&str], extra_lines: usize) -> Viewer {
        let mut args = vec!["view", "--port", "0", "--quiet"];
        args.extend_from_slice(extra);
        let mut child = sandbox
            .command(&args)
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start versus view");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (lines_tx, lines_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let read_line = || {
            lines_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("versus view prints its URL")
        };
        let url = read_line();
        let port = url
            .strip_prefix("http://")
            .and_then(|rest| rest.trim_end_matches('/').rsplit(':').next())
            .unwrap_or_else(|| panic!("not a URL: {url}"))
            .to_string();
        let lines = (0..extra_lines).map(|_| read_line()).collect();
        Viewer {
            child,
            authority: format!("127.0.0.1:{port}"),
            lines,
        }
    }

    /// `GET path` with extra header lines; the status code and the raw response.
    fn get(&self, path: &str, headers: &[&str]) -> (u16, String) {
        self.get_from(&self.authority, path, headers)
    }

    /// `GET path` sent with `Host: host`.
    fn get_from(&self, host: &str, path: &str, headers: &[&str]) -> (u16, String) {
        let mut stream = TcpStream::connect(&self.authority).expect("connect to versus view");
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .expect("a read timeout");
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        stream
            .write_all(request.as_bytes())
            .expect("send the request");
        let mut response = String::new();
        stream
            .read_to_string(&mut response)
            .expect("read the response");
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP response: {response}"));
        (status, response)
    }
}

/// A sandbox whose database holds one run: `m1` answers [`HOSTILE_ANSWER`], `m2` the default.
fn hostile_run() -> (Sandbox, FakeServer) {
    let sandbox = Sandbox::with_key();
    let server =
        FakeServer::start_in_thread(Script::new().rule(Rule::model("m1").answer(HOSTILE_ANSWER)))
            .expect("start the fake server");
    sandbox.suite(SuiteBuilder::standard(&server).build());
    sandbox.run(&["--quiet"]).success();
    (sandbox, server)
}

/// Asserts a response holds none of the hostile answer's active parts (text is fine).
#[track_caller]
fn assert_no_hostile_markup(response: &str) {
    for needle in [
        "<script>",
        "<img",
        "onerror=\"",
        "href=\"javascript",
        "style=\"",
        "src=\"https://evil",
    ] {
        assert!(!response.contains(needle), "{needle} in\n{response}");
    }
}

#[test]
fn view_prints_its_url_and_serves_a_real_run_with_hostile_answers_inert() {
    let (sandbox, _server) = hostile_run();
    let viewer = Viewer::start(&sandbox, &[], 0);
    let (status, runs) = viewer.get("/", &[]);
    assert_eq!(status, 200, "{runs}");
    assert!(runs.contains("data-testid=\"runs-table\""), "{runs}");
    assert!(
        runs.contains("default-src 'none'"),
        "the CSP header: {runs}"
    );
    for path in ["/runs/1", "/runs/1/tasks/t1", "/vote", "/ratings"] {
        let (status, page) = viewer.get(path, &[]);
        assert_eq!(status, 200, "{path}: {page}");
        assert_no_hostile_markup(&page);
    }
    let (_, task) = viewer.get("/runs/1/tasks/t1", &[]);
    assert!(
        task.contains("styled"),
        "the hostile answer is shown as text: {task}"
    );
    assert!(task.contains("data-model=\"m2\""), "{task}");
    // Bound to loopback, it answers only to loopback names (DNS rebinding).
    let port = viewer.authority.rsplit(':').next().unwrap_or_default();
    let (status, _) = viewer.get_from(&format!("evil.example:{port}"), "/", &[]);
    assert_eq!(status, 421);
    assert_eq!(
        viewer.get_from(&format!("localhost:{port}"), "/", &[]).0,
        200
    );
}

#[test]
fn off_loopback_the_printed_token_is_required() {
    let (sandbox, _server) = hostile_run();
    let viewer = Viewer::start(&sandbox, &["--host", "0.0.0.0"], 2);
    let token = viewer.lines[0]
        .strip_prefix("token: ")
        .unwrap_or_else(|| panic!("no token line: {:?}", viewer.lines))
        .to_string();
    assert!(token.len() >= 32, "{token}");
    assert!(viewer.lines[1].ends_with(&format!("/login?token={token}")));
    let (status, page) = viewer.get("/", &[]);
    assert_eq!(status, 401, "{page}");
    assert!(page.contains("data-testid=\"login-form\""));
    let bearer = format!("Authorization: Bearer {token}");
    assert_eq!(viewer.get("/", &[&bearer]).0, 200);
    let (status, login) = viewer.get(&format!("/login?token={token}"), &[]);
    assert_eq!(status, 303, "{login}");
    assert!(login.contains("versus_session="), "{login}");
}

#[test]
fn a_token_from_the_environment_must_be_long() {
    let (sandbox, _server) = hostile_run();
    let sandbox = sandbox.env("VIEW_TOKEN", "short");
    sandbox
        .versus(&["view", "--port", "0", "--token-env", "VIEW_TOKEN"])
        .usage_error(&["at least 16 characters"]);
}

#[test]
fn view_needs_an_existing_database() {
    Sandbox::new()
        .versus(&["view", "--port", "0"])
        .usage_error(&["no database"]);
}

#[test]
fn partial_headers_are_dropped_and_connections_capped() {
    // 1,100 connections holding partial headers made the viewer unreachable; now each must send
    // its headers within --header-timeout, and past --max-connections new ones are closed.
    let (sandbox, _server) = hostile_run();
    let viewer = Viewer::start(
        &sandbox,
        &["--header-timeout", "1", "--max-connections", "4"],
        0,
    );
    let hold = || {
        let mut stream = TcpStream::connect(&viewer.authority).expect("connect");
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .expect("send half the headers");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a read timeout");
        stream
    };
    let mut held: Vec<TcpStream> = (0..4).map(|_| hold()).collect();
    std::thread::sleep(Duration::from_millis(200));
    // The fifth is closed at once: it reads end-of-file, long before the header timeout.
    let mut extra = TcpStream::connect(&viewer.authority).expect("connect");
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    let started = std::time::Instant::now();
    let mut buffer = [0u8; 64];
    let read = extra.read(&mut buffer).unwrap_or(0);
    assert_eq!(read, 0, "closed over the cap");
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // The held ones are dropped after the header timeout, and the viewer answers again.
    for stream in &mut held {
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
    }
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    let (status, _) = viewer.get("/", &[]);
    assert_eq!(status, 200);
}

#[test]
fn a_connection_that_goes_silent_is_closed_at_the_idle_timeout() {
    let (sandbox, _server) = hostile_run();
    let viewer = Viewer::start(
        &sandbox,
        &["--header-timeout", "60", "--idle-timeout", "1"],
        0,
    );
    let mut stream = TcpStream::connect(&viewer.authority).expect("connect");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .expect("send part of a request");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a read timeout");
    let started = std::time::Instant::now();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);
    // Closed by the 1 s idle timeout, long before the 60 s header timeout.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}
