//! The sandbox against real escapes and real answers: each test runs code with python3, node or
//! rustc inside bubblewrap and checks that what must fail fails, with a reason.
//!
//! These tests need bubblewrap (`apt-get install bubblewrap`) and fail loudly without it, or when
//! it cannot create namespaces here, because passing silently would hide an unprotected
//! machine. To skip them deliberately (a machine where bwrap cannot work), set
//! `VERSUS_SKIP_SANDBOX_TESTS=1`.

use std::fs;
use std::io::ErrorKind;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use versus_sandbox::{
    run, run_answer, run_unsandboxed, sandbox_available, Execution, Language, Limits, Program,
    SandboxKind,
};

/// Whether to run: false only with `VERSUS_SKIP_SANDBOX_TESTS=1`; panics (with the install hint)
/// when the sandbox is not available.
fn sandbox_ready() -> bool {
    if std::env::var("VERSUS_SKIP_SANDBOX_TESTS").is_ok_and(|value| value == "1") {
        eprintln!("VERSUS_SKIP_SANDBOX_TESTS=1: skipping a sandbox test");
        return false;
    }
    if let Err(error) = sandbox_available() {
        panic!("the sandbox tests need a working bubblewrap: {error}\n(set VERSUS_SKIP_SANDBOX_TESTS=1 to skip them)");
    }
    true
}

fn quick() -> Limits {
    Limits {
        wall: Duration::from_secs(5),
        ..Limits::default()
    }
}

fn execute(language: Language, source: &str, limits: &Limits) -> Execution {
    let execution = run(&Program::new(language, source), limits)
        .unwrap_or_else(|error| panic!("could not run the program: {error}"));
    assert!(execution.sandbox.is_isolated(), "{execution:?}");
    execution
}

/// Runs Python code that must fail, and checks the reason mentions `reason`.
fn python_fails(source: &str, reason: &str) -> Execution {
    python_fails_within(source, reason, &quick())
}

fn python_fails_within(source: &str, reason: &str, limits: &Limits) -> Execution {
    let execution = execute(Language::Python, source, limits);
    assert!(
        !execution.passed,
        "this should have failed:\n{source}\n{execution:#?}"
    );
    let got = execution.reason.as_deref().unwrap_or_default();
    assert!(
        got.contains(reason),
        "reason {got:?} should mention {reason:?}\n{execution:#?}"
    );
    execution
}

/// Runs a Markdown answer against tests and expects it to pass.
fn answer_passes(language: Language, answer: &str, tests: &str) -> Execution {
    let execution = run_answer(answer, language, tests, None, &quick())
        .unwrap_or_else(|error| panic!("could not run the answer: {error}"));
    assert!(execution.passed, "the answer should pass:\n{execution:#?}");
    assert_eq!(execution.reason, None);
    execution
}

/// Runs a Markdown answer against tests and expects it to fail with `reason` in the reason.
fn answer_fails(language: Language, answer: &str, tests: &str, reason: &str) -> Execution {
    let execution = run_answer(answer, language, tests, None, &quick())
        .unwrap_or_else(|error| panic!("could not run the answer: {error}"));
    assert!(!execution.passed, "the answer should fail:\n{execution:#?}");
    let got = execution.reason.as_deref().unwrap_or_default();
    assert!(
        got.contains(reason),
        "reason {got:?} should mention {reason:?}\n{execution:#?}"
    );
    execution
}

/// Python that writes `path` (which must not be possible) and says so if it could.
fn write_attempt(path: &Path) -> String {
    format!(
        "open({:?}, 'w').write('escaped')\nprint('WROTE')\n",
        path.display().to_string()
    )
}

// ---------------------------------------------------------------------------------------------
// Escapes

#[test]
fn the_network_is_unreachable() {
    if !sandbox_ready() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").expect("listen on loopback");
    listener
        .set_nonblocking(true)
        .expect("nonblocking listener");
    let port = listener.local_addr().expect("listener address").port();
    for (host, port) in [("1.1.1.1", 53), ("127.0.0.1", port)] {
        let source = format!(
            "import socket\nsocket.create_connection(({host:?}, {port}), timeout=3)\nprint('CONNECTED')\n"
        );
        let execution = python_fails(&source, "Error");
        assert!(!execution.stdout.contains("CONNECTED"));
    }
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(error) if error.kind() == ErrorKind::WouldBlock),
        "the sandbox reached the host's loopback: {accepted:?}"
    );
}

#[test]
fn writing_outside_the_working_directory_fails() {
    if !sandbox_ready() {
        return;
    }
    let outside = tempfile::tempdir().expect("a temporary directory outside the sandbox");
    let home = PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()));
    let targets = [
        PathBuf::from("/tmp/../etc/versus-sandbox-escape"),
        outside.path().join("escape"),
        home.join("versus-sandbox-escape"),
        PathBuf::from("/usr/versus-sandbox-escape"),
        PathBuf::from("/versus-sandbox-escape"),
    ];
    for target in &targets {
        let execution = python_fails(&write_attempt(target), "Error");
        assert!(!execution.stdout.contains("WROTE"));
        assert!(!target.exists(), "{} was written", target.display());
    }
    // The working directory and /tmp are writable (in the sandbox's own memory).
    let execution = execute(
        Language::Python,
        "open('here.txt', 'w').write('ok')\nopen('/tmp/there.txt', 'w').write('ok')\n",
        &quick(),
    );
    assert!(execution.passed, "{execution:#?}");
}

#[test]
fn the_home_directory_is_unreadable() {
    if !sandbox_ready() {
        return;
    }
    let home = PathBuf::from(std::env::var("HOME").unwrap_or_else(|_| "/root".into()));
    let secret =
        Secret::create(&home.join(format!(".versus-sandbox-secret-{}", std::process::id())));
    let source = format!(
        "import os\nprint(os.listdir({home:?}) if os.path.isdir({home:?}) else 'no home')\nprint(open({path:?}).read())\n",
        home = home.display().to_string(),
        path = secret.path.display().to_string(),
    );
    let execution = python_fails(&source, "Error");
    assert!(
        !execution.stdout.contains(Secret::CONTENT),
        "{execution:#?}"
    );
    assert!(
        !execution.stdout.contains(".versus-sandbox-secret"),
        "{execution:#?}"
    );
}

/// A file that is removed when the test ends, pass or fail.
struct Secret {
    path: PathBuf,
}

impl Secret {
    const CONTENT: &'static str = "hunter2-versus-sandbox";

    fn create(path: &Path) -> Secret {
        fs::write(path, Self::CONTENT).expect("write the secret file");
        Secret {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

#[test]
fn the_environment_and_other_processes_are_hidden() {
    if !sandbox_ready() {
        return;
    }
    let source = "import os\nleaked = [k for k in os.environ if k.startswith('CARGO') or k.startswith('RUST')]\nassert not leaked, leaked\npids = [p for p in os.listdir('/proc') if p.isdigit()]\nassert len(pids) < 10, pids\n";
    let execution = execute(Language::Python, source, &quick());
    assert!(execution.passed, "{execution:#?}");
}

#[test]
fn a_fork_bomb_is_stopped_at_the_process_limit() {
    if !sandbox_ready() {
        return;
    }
    let limits = Limits {
        processes: 24,
        wall: Duration::from_secs(3),
        ..Limits::default()
    };
    // Counting: children sleep; forking must be refused well before the machine suffers.
    let counting = "import os, sys, time\nn = 0\nwhile True:\n    try:\n        pid = os.fork()\n    except OSError:\n        print('refused after', n, flush=True)\n        sys.exit(3)\n    if pid == 0:\n        time.sleep(30)\n        os._exit(0)\n    n += 1\n";
    let execution = python_fails_within(counting, "exit code 3", &limits);
    let refused_after: u64 = execution
        .stdout
        .trim()
        .strip_prefix("refused after ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected output: {execution:#?}"));
    assert!(refused_after < limits.processes, "{refused_after} forks");

    // The real thing: every process forks forever; the timeout ends it all.
    let started = Instant::now();
    let bomb =
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n";
    let execution = python_fails_within(bomb, "wall-clock timeout", &limits);
    assert!(execution.timed_out);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_no_sandbox_processes_left();
}

/// No process runs as one of the sandbox's uids (as root, each run has its own in this range).
fn assert_no_sandbox_processes_left() {
    let sandbox_uids = 0x7000_0000u32..0x7100_0000;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left: Vec<String> = fs::read_dir("/proc")
            .expect("read /proc")
            .filter_map(Result::ok)
            .filter_map(|entry| fs::read_to_string(entry.path().join("status")).ok())
            .filter(|status| {
                status
                    .lines()
                    .find(|line| line.starts_with("Uid:"))
                    .and_then(|line| line.split_whitespace().nth(1))
                    .and_then(|uid| uid.parse::<u32>().ok())
                    .is_some_and(|uid| sandbox_uids.contains(&uid))
            })
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "sandbox processes survived: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_infinite_loop_is_killed_at_the_timeout() {
    if !sandbox_ready() {
        return;
    }
    let limits = Limits {
        wall: Duration::from_millis(1500),
        ..Limits::default()
    };
    let execution = python_fails_within(
        "while True:\n    pass\n",
        "killed after 1.5 s wall-clock timeout",
        &limits,
    );
    assert!(execution.timed_out);
    assert!(execution.wall_ms < 4000, "{} ms", execution.wall_ms);
}

#[test]
fn the_cpu_limit_stops_busy_code() {
    if !sandbox_ready() {
        return;
    }
    let limits = Limits {
        cpu_seconds: 1,
        wall: Duration::from_secs(8),
        ..Limits::default()
    };
    let execution = python_fails_within("while True:\n    pass\n", "CPU-time limit", &limits);
    assert_eq!(execution.signal, Some(libc_sigxcpu()));
    assert!(!execution.timed_out);
}

fn libc_sigxcpu() -> i32 {
    24 // SIGXCPU on Linux
}

#[test]
fn allocating_10_gb_fails_with_a_memory_reason() {
    if !sandbox_ready() {
        return;
    }
    python_fails(
        "b = bytearray(10 * 2**30)\nprint(len(b))\n",
        "exceeded the 1 GiB memory limit",
    );
}

#[test]
fn printing_a_gigabyte_is_capped() {
    if !sandbox_ready() {
        return;
    }
    for stream in ["stdout", "stderr"] {
        let started = Instant::now();
        let source = format!("import sys\nchunk = 'x' * (1 << 20)\nfor _ in range(1024):\n    sys.{stream}.write(chunk)\n");
        let execution = python_fails(
            &source,
            &format!("{stream} went past the 64 KiB output limit"),
        );
        assert!(execution.truncated);
        assert!(execution.stdout.len() <= 64 * 1024 && execution.stderr.len() <= 64 * 1024);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn filling_the_disk_is_bounded() {
    if !sandbox_ready() {
        return;
    }
    // One file past the file-size limit...
    python_fails(
        "open('big', 'wb').write(b'x' * (32 << 20))\n",
        "File too large",
    );
    // ...and many files within it, past the working directory's size.
    let limits = Limits {
        scratch_bytes: 32 << 20,
        ..quick()
    };
    python_fails_within(
        "for i in range(64):\n    open(f'f{i}', 'wb').write(b'x' * (4 << 20))\n",
        "No space left on device",
        &limits,
    );
}

// ---------------------------------------------------------------------------------------------
// Answers

const FIBONACCI_TESTS_PYTHON: &str = r#"
expected = [0, 1]
while len(expected) <= 90:
    expected.append(expected[-1] + expected[-2])
for n in list(range(31)) + [90]:
    got = candidate(n)
    assert got == expected[n], f"fib({n}) returned {got}, expected {expected[n]}"
"#;

const FIBONACCI_DP_PYTHON: &str = r#"Here is a dynamic-programming solution:

```python
def fibonacci(n: int) -> int:
    """Return the nth Fibonacci number, bottom-up."""
    if n < 2:
        return n
    dp = [0] * (n + 1)
    dp[1] = 1
    for i in range(2, n + 1):
        dp[i] = dp[i - 1] + dp[i - 2]
    return dp[n]

if __name__ == "__main__":
    n = int(input("n: "))
    print(fibonacci(n))
```

It runs in O(n) time.
"#;

#[test]
fn a_correct_python_answer_passes() {
    if !sandbox_ready() {
        return;
    }
    let execution = answer_passes(
        Language::Python,
        FIBONACCI_DP_PYTHON,
        FIBONACCI_TESTS_PYTHON,
    );
    assert!(execution.wall_ms < 5000);
}

#[test]
fn a_wrong_python_answer_fails_with_the_assertion_message() {
    if !sandbox_ready() {
        return;
    }
    let wrong = "```python\ndef fib(n):\n    a, b = 1, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n```";
    answer_fails(
        Language::Python,
        wrong,
        FIBONACCI_TESTS_PYTHON,
        "AssertionError: fib(0) returned 1, expected 0",
    );
}

#[test]
fn a_differently_named_function_is_found() {
    if !sandbox_ready() {
        return;
    }
    let answer = "```py\ndef _step(a, b):\n    return b, a + b\n\ndef nth_fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = _step(a, b)\n    return a\n```";
    answer_passes(Language::Python, answer, FIBONACCI_TESTS_PYTHON);
}

#[test]
fn an_answer_without_code_fails_clearly() {
    if !sandbox_ready() {
        return;
    }
    let execution = answer_fails(
        Language::Python,
        "The Fibonacci numbers are 0, 1, 1, 2, 3, 5...",
        FIBONACCI_TESTS_PYTHON,
        "no python code block",
    );
    assert_eq!(execution.exit_code, None);
}

#[test]
fn a_javascript_answer_passes_and_a_wrong_one_fails() {
    if !sandbox_ready() {
        return;
    }
    let tests = r#"
const assert = require("assert");
const expected = [0n, 1n];
while (expected.length <= 78) expected.push(expected.at(-1) + expected.at(-2));
for (let n = 0; n <= 78; n++) {
  assert.strictEqual(candidate(n), Number(expected[n]), `fib(${n})`);
}
"#;
    let answer = "```javascript\nexport const fib = (n) => {\n  const dp = [0, 1];\n  for (let i = 2; i <= n; i++) dp[i] = dp[i - 1] + dp[i - 2];\n  return dp[n];\n};\nconsole.log(fib(10));\n```";
    answer_passes(Language::JavaScript, answer, tests);
    let wrong = "```js\nfunction fib(n) { return n; }\n```";
    answer_fails(
        Language::JavaScript,
        wrong,
        tests,
        "AssertionError [ERR_ASSERTION]: fib(2)",
    );
}

#[test]
fn a_rust_answer_compiles_and_runs_in_the_sandbox() {
    if !sandbox_ready() {
        return;
    }
    let tests = r#"
fn main() {
    let mut expected: Vec<u64> = vec![0, 1];
    while expected.len() <= 90 {
        let next = expected[expected.len() - 1] + expected[expected.len() - 2];
        expected.push(next);
    }
    for n in (0..=30).chain([90]) {
        assert_eq!(candidate(n) as u64, expected[n as usize], "fib({n})");
    }
}
"#;
    let answer = "```rust\nfn fibonacci(n: u32) -> u128 {\n    let (mut a, mut b) = (0u128, 1u128);\n    for _ in 0..n {\n        (a, b) = (b, a + b);\n    }\n    a\n}\n\nfn main() {\n    println!(\"{}\", fibonacci(10));\n}\n```";
    let execution = answer_passes(Language::Rust, answer, tests);
    assert!(execution.compile_ms.is_some());

    let broken = "```rust\nfn fib(n: u32) -> u64 { n + undefined_name }\n```";
    answer_fails(Language::Rust, broken, tests, "compile error: error[E0425]");
    let wrong = "```rust\nfn fib(n: u64) -> u64 { n }\n```";
    answer_fails(Language::Rust, wrong, tests, "panicked");
}

// ---------------------------------------------------------------------------------------------
// Without the sandbox

#[test]
fn the_sandbox_kind_is_reported() {
    if !sandbox_ready() {
        return;
    }
    let kind = sandbox_available().expect("checked above");
    assert!(kind.is_isolated());
    assert!(kind.description().contains("bubblewrap"));
}

#[test]
fn unsandboxed_runs_say_so() {
    if !sandbox_ready() {
        return;
    }
    // node usually lives in /usr/bin, reachable by the unprivileged uid used as root.
    let program = Program::new(Language::JavaScript, "console.log('hello from outside');\n");
    match run_unsandboxed(&program, &quick()) {
        Ok(execution) => {
            assert_eq!(execution.sandbox, SandboxKind::Unsandboxed);
            assert!(execution.passed, "{execution:#?}");
            assert_eq!(execution.stdout, "hello from outside\n");
        }
        Err(versus_sandbox::SandboxError::ToolchainUnreachable { .. }) => {}
        Err(error) => panic!("{error}"),
    }
}
