//! The fake servers checked against the providers' official Python clients (`openai`,
//! `anthropic`, `google-genai`, pinned in scripts/test): each streams from the fake and parses
//! every event, so the fakes cannot drift from the real formats. Skipped, saying so, with
//! VERSUS_SKIP_PYTHON_CLIENT_TESTS=1.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use versus_testkit::{FakeServer, Fault, Rule, Script};

const KEY: &str = "sk-official-clients-test";
/// The pins scripts/test installs.
const PINS: &str = "'openai==3.57.0' 'anthropic==2.10.0' 'google-genai==3.3.0'";

fn clients_ready() -> bool {
    if std::env::var("VERSUS_SKIP_PYTHON_CLIENT_TESTS").as_deref() == Ok("1") {
        eprintln!("VERSUS_SKIP_PYTHON_CLIENT_TESTS=1: the official clients are not run");
        return false;
    }
    let import = Command::new("python3")
        .args(["-c", "import openai, anthropic; from google import genai"])
        .output();
    match import {
        Ok(output) if output.status.success() => true,
        Ok(output) => panic!(
            "an official Python client is not importable ({}); install them with `python3 -m pip install {PINS}` (scripts/test does), or set VERSUS_SKIP_PYTHON_CLIENT_TESTS=1 to skip this test",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(error) => panic!(
            "python3 cannot be run ({error}); install Python 3 and `python3 -m pip install {PINS}`, or set VERSUS_SKIP_PYTHON_CLIENT_TESTS=1"
        ),
    }
}

/// The script official_clients.py expects, model by model.
fn script() -> Script {
    Script::new()
        .require_api_key(KEY)
        // A batch has ended at its first status request.
        .batch_polls(0)
        .rule(Rule::model("thinker").thinking("First I weigh the options."))
        .rule(Rule::model("rate-limited").fault(Fault::status(429).retry_after("0.01")))
        .rule(Rule::model("overloaded").fault(Fault::status(529).retry_after("0.01")))
        .rule(Rule::model("blocked").fault_forever(Fault::Blocked))
        .rule(Rule::model("broken").fault_forever(Fault::error_event(1)))
        .rule(Rule::model("no-images").refuse_images())
}

#[test]
fn the_official_clients_parse_every_fake_format() {
    if !clients_ready() {
        return;
    }
    let server = FakeServer::start_in_thread(script()).expect("a fake server");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/official_clients.py");
    let mut child = Command::new("python3")
        .arg(&script)
        .arg(server.root_url())
        .arg(KEY)
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("GOOGLE_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run python3");
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "official_clients.py did not finish in two minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("output");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{} failed:\n{stdout}{}",
        script.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    for client in ["openai", "azure", "anthropic", "gemini", "batches"] {
        assert!(stdout.contains(&format!("{client}: ok")), "{stdout}");
    }
    // The clients' retries reached the server: each retried model was asked twice.
    assert_eq!(server.count_where(|r| r.model == "overloaded"), 2);
}
