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

/// Held by tests whose sandboxes keep processes alive for a while, and by the test that checks
/// no sandbox process is left: they must not overlap.
static LINGERING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lingering() -> std::sync::MutexGuard<'static, ()> {
    LINGERING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
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
    assert_eq!(execution.tests_finished, Some(true));
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
    let _alone = lingering();
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
// Answers that try to pass without passing the tests

/// A Python answer: a wrong Fibonacci function, then `trick`.
fn wrong_python_with(trick: &str) -> String {
    format!("```python\nimport os, sys\n\ndef fib(n):\n    return 0\n\n{trick}\n```")
}

/// Runs an answer that must fail because the tests did not finish, with `reason` in the reason.
fn unfinished(language: Language, answer: &str, tests: &str, reason: &str) -> Execution {
    let execution = answer_fails(language, answer, tests, reason);
    assert_eq!(execution.tests_finished, Some(false), "{execution:#?}");
    execution
}

#[test]
fn a_correct_answer_passes_with_the_marker_taken_out_of_stdout() {
    if !sandbox_ready() {
        return;
    }
    let answer = "```python\ndef fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\nprint('defined', end='')\n```";
    let program = Program::from_answer(answer, Language::Python, FIBONACCI_TESTS_PYTHON, None)
        .expect("a program");
    let marker = program.end_marker.clone().expect("a marker");
    let execution = run(&program, &quick()).expect("run");
    assert!(execution.passed, "{execution:#?}");
    assert_eq!(execution.tests_finished, Some(true));
    assert_eq!(execution.stdout, "defined");
    assert!(!execution.stdout.contains(&marker));
}

#[test]
fn python_sys_exit_before_the_tests_fails() {
    if !sandbox_ready() {
        return;
    }
    for (trick, reason) in [
        (
            "sys.exit(0)",
            "the answer exited before the tests ran (SystemExit(0))",
        ),
        (
            "raise SystemExit",
            "the answer exited before the tests ran (SystemExit())",
        ),
        (
            "exit()",
            "the answer exited before the tests ran (SystemExit())",
        ),
        (
            "raise SystemExit('all tests passed')",
            "the answer exited before the tests ran (SystemExit('all tests passed'))",
        ),
    ] {
        let execution = unfinished(
            Language::Python,
            &wrong_python_with(trick),
            FIBONACCI_TESTS_PYTHON,
            reason,
        );
        assert_eq!(execution.reason.as_deref(), Some(reason));
        // The reason says it; stderr keeps only what the program wrote.
        assert!(
            !execution.stderr.contains("versus-harness"),
            "{execution:#?}"
        );
    }
    // From inside the function, while the tests run.
    unfinished(
        Language::Python,
        "```python\nimport sys\n\ndef fib(n):\n    sys.exit(0)\n```",
        FIBONACCI_TESTS_PYTHON,
        "the tests did not finish: SystemExit(0) was raised during the tests",
    );
}

#[test]
fn python_os_exit_before_the_tests_fails() {
    if !sandbox_ready() {
        return;
    }
    for trick in [
        "os._exit(0)",
        "sys.stdout.flush()\nos.kill(os.getpid(), 9)",
        "import atexit\natexit.register(os._exit, 0)\nsys.exit(0)",
    ] {
        let execution = answer_fails(
            Language::Python,
            &wrong_python_with(trick),
            FIBONACCI_TESTS_PYTHON,
            "",
        );
        assert_ne!(execution.tests_finished, Some(true), "{execution:#?}");
    }
    unfinished(
        Language::Python,
        &wrong_python_with("os._exit(0)"),
        FIBONACCI_TESTS_PYTHON,
        "the tests did not finish: the process exited with 0 before the end-of-tests marker",
    );
}

#[test]
fn printing_a_guessed_or_stale_marker_does_not_pass() {
    if !sandbox_ready() {
        return;
    }
    // A marker from an earlier run, which passed.
    let correct = "```python\ndef fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n```";
    let earlier = Program::from_answer(correct, Language::Python, FIBONACCI_TESTS_PYTHON, None)
        .expect("a program");
    let stale = earlier.end_marker.clone().expect("a marker");
    assert!(run(&earlier, &quick()).expect("run").passed);

    let guessed = format!("versus-end-of-tests-{}", "0".repeat(32));
    for fake in [stale, guessed] {
        for exit in ["os._exit(0)", "sys.exit(0)"] {
            let trick = format!("sys.stdout.write('\\n{fake}\\n')\nsys.stdout.flush()\n{exit}");
            let execution = answer_fails(
                Language::Python,
                &wrong_python_with(&trick),
                FIBONACCI_TESTS_PYTHON,
                "",
            );
            assert_eq!(execution.tests_finished, Some(false), "{execution:#?}");
            let reason = execution.reason.as_deref().unwrap_or_default();
            assert!(
                reason.starts_with("the tests did not finish")
                    || reason.starts_with("the answer exited before the tests ran"),
                "{execution:#?}"
            );
        }
    }
    // Printing the real marker early does not help either: it is then printed twice.
    let program = Program::from_answer(&wrong_python_with("pass"), Language::Python, "pass", None)
        .expect("a program");
    let marker = program.end_marker.clone().expect("a marker");
    let echoing = Program::new(
        Language::Python,
        program.source.replacen(
            "import builtins as _versus_builtins",
            &format!("print({marker:?})\nimport builtins as _versus_builtins"),
            1,
        ),
    );
    let echoing = Program {
        end_marker: Some(marker),
        ..echoing
    };
    let execution = run(&echoing, &quick()).expect("run");
    assert!(!execution.passed, "{execution:#?}");
    assert!(
        execution
            .reason
            .as_deref()
            .unwrap_or_default()
            .contains("printed more than once"),
        "{execution:#?}"
    );
}

/// The seed suite's Fibonacci tests (examples/seed.toml), with typed checks: without them, an
/// answer returning an object equal to everything passes.
const SEED_FIBONACCI_TESTS_TYPED: &str = r#"
import time
expected = [0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610, 987, 1597, 2584, 4181, 6765, 10946, 17711, 28657, 46368, 75025, 121393, 196418, 317811, 514229, 832040]
for n, value in enumerate(expected):
    got = candidate(n)
    assert type(got) is int, f"fibonacci({n}) returned {type(got).__name__}, not int"
    assert got == value, f"fibonacci({n}) returned {got!r}, expected {value}"
start = time.perf_counter()
got = candidate(90)
elapsed = time.perf_counter() - start
assert type(got) is int, f"fibonacci(90) returned {type(got).__name__}, not int"
assert got == 2880067194370816120, f"fibonacci(90) returned {got!r}, expected 2880067194370816120"
assert elapsed < 1.0, f"fibonacci(90) took {elapsed:.2f} s: not dynamic programming"
"#;

#[test]
fn an_answer_equal_to_everything_fails_a_typed_check() {
    if !sandbox_ready() {
        return;
    }
    answer_passes(
        Language::Python,
        FIBONACCI_DP_PYTHON,
        SEED_FIBONACCI_TESTS_TYPED,
    );
    let always_equal = "```python\nclass Always:\n    def __eq__(self, other):\n        return True\n    def __ne__(self, other):\n        return False\n    def __repr__(self):\n        return '55'\n\ndef fibonacci(n):\n    return Always()\n```";
    answer_fails(
        Language::Python,
        always_equal,
        SEED_FIBONACCI_TESTS_TYPED,
        "exit code 1: AssertionError: fibonacci(0) returned Always, not int",
    );
    // An int that is equal to everything is not an int either.
    let int_subclass = "```python\nclass Always(int):\n    __eq__ = lambda self, other: True\n    __hash__ = int.__hash__\n\ndef fibonacci(n):\n    return Always(0)\n```";
    answer_fails(
        Language::Python,
        int_subclass,
        SEED_FIBONACCI_TESTS_TYPED,
        "AssertionError: fibonacci(0) returned Always, not int",
    );
    // Nor does replacing the builtins the tests use change what they see.
    let patched_builtins = "```python\nimport builtins\n\nclass Always:\n    __eq__ = lambda self, other: True\n\nbuiltins.type = lambda value: int\nbuiltins.AssertionError = None\n\ndef fibonacci(n):\n    return Always()\n```";
    answer_fails(
        Language::Python,
        patched_builtins,
        SEED_FIBONACCI_TESTS_TYPED,
        "AssertionError: fibonacci(0) returned Always, not int",
    );
}

#[test]
fn the_limits_still_hold_for_answers_with_tests() {
    if !sandbox_ready() {
        return;
    }
    let limits = Limits {
        wall: Duration::from_millis(1500),
        ..Limits::default()
    };
    let looping = "```python\ndef fib(n):\n    while True:\n        pass\n```";
    let execution = run_answer(
        looping,
        Language::Python,
        FIBONACCI_TESTS_PYTHON,
        None,
        &limits,
    )
    .expect("run");
    assert!(!execution.passed && execution.timed_out, "{execution:#?}");
    assert_eq!(
        execution.reason.as_deref(),
        Some("killed after 1.5 s wall-clock timeout")
    );
    assert_eq!(execution.tests_finished, Some(false));
    answer_fails(
        Language::Python,
        "```python\nhoard = bytearray(10 * 2**30)\n\ndef fib(n):\n    return n\n```",
        FIBONACCI_TESTS_PYTHON,
        "exceeded the 1 GiB memory limit (MemoryError)",
    );
    answer_fails(
        Language::JavaScript,
        "```js\nfunction fib(n) { for (;;) {} }\n```",
        "candidate(1);",
        "killed after 5 s wall-clock timeout",
    );
}

const FIBONACCI_TESTS_JAVASCRIPT: &str = r#"
const assert = require("assert");
const expected = [0n, 1n];
while (expected.length <= 78) expected.push(expected.at(-1) + expected.at(-2));
for (let n = 0; n <= 78; n++) {
  assert.strictEqual(candidate(n), Number(expected[n]), `fib(${n})`);
}
"#;

#[test]
fn javascript_process_exit_before_the_tests_fails() {
    if !sandbox_ready() {
        return;
    }
    for (trick, reason) in [
        (
            "process.exit(0);",
            "the answer exited before the tests ran (process.exit(0))",
        ),
        (
            "process.exit();",
            "the answer exited before the tests ran (process.exit())",
        ),
        (
            "process.reallyExit(0);",
            "the answer exited before the tests ran (process.reallyExit(0))",
        ),
    ] {
        let answer = format!("```javascript\nfunction fib(n) {{ return 0; }}\n{trick}\n```");
        let execution = unfinished(
            Language::JavaScript,
            &answer,
            FIBONACCI_TESTS_JAVASCRIPT,
            reason,
        );
        assert_eq!(execution.reason.as_deref(), Some(reason));
    }
    for (answer, reason) in [
        // From inside the function, while the tests run.
        (
            "```js\nfunction fib(n) { process.exit(0); }\n```",
            "the tests did not finish: process.exit(0) was called during the tests",
        ),
        // Stopping the script with an exception that is then swallowed.
        (
            "```js\nfunction fib(n) { return 0; }\nprocess.on('uncaughtException', () => {});\nthrow new Error('stop here');\n```",
            "the tests did not finish: the process exited with 0 before the end-of-tests marker",
        ),
        // Exiting with 0 once the tests have failed.
        (
            "```js\nfunction fib(n) { return 0; }\nprocess.on('uncaughtException', () => process.exit(0));\n```",
            "the tests did not finish: process.exit(0) was called during the tests",
        ),
    ] {
        unfinished(
            Language::JavaScript,
            answer,
            FIBONACCI_TESTS_JAVASCRIPT,
            reason,
        );
    }
}

#[test]
fn a_javascript_answer_cannot_replace_assert() {
    if !sandbox_ready() {
        return;
    }
    for trick in [
        "require('assert').strictEqual = () => {};",
        "const a = require('node:assert'); a.strictEqual = () => {};",
        "require = () => ({ strictEqual() {} });",
        "require('module').prototype.require = () => ({ strictEqual() {} });",
        // Declarations are hoisted above everything, the harness's first line included.
        "function require(id) { return id.includes('assert') ? { strictEqual() {} } : module.require(id); }",
        "var require = () => ({ strictEqual() {} });",
    ] {
        let answer = format!("```javascript\nfunction fib(n) {{ return 0; }}\n{trick}\n```");
        answer_fails(
            Language::JavaScript,
            &answer,
            FIBONACCI_TESTS_JAVASCRIPT,
            "AssertionError [ERR_ASSERTION]: fib(1)",
        );
    }
    // Tests keep the require they know: `require.main`, `assert/strict`, asynchronous checks.
    let tests = r#"
const assert = require("node:assert/strict");
assert.equal(require.main, module);
assert.deepEqual([candidate(1), candidate(10)], [1, 55]);
setTimeout(() => { assert.equal(candidate(20), 6765); console.log("later"); }, 20);
"#;
    let answer =
        "```js\n'use strict';\nconst fib = (n) => (n < 2 ? n : fib(n - 1) + fib(n - 2));\n```";
    let execution = answer_passes(Language::JavaScript, answer, tests);
    assert_eq!(execution.stdout, "later\n");
    // A helper of the answer's may be called `process` (or `require`) without harm.
    let helper = "```js\nfunction process(n) { return n < 2 ? n : process(n - 1) + process(n - 2); }\nfunction fib(n) { return process(n); }\n```";
    answer_passes(Language::JavaScript, helper, tests);
    let late_failure = "```js\nconst fib = (n) => (n < 2 ? n : fib(n - 1) + fib(n - 2)) + (n === 20 ? 1 : 0);\n```";
    answer_fails(Language::JavaScript, late_failure, tests, "AssertionError");
}

const FIBONACCI_TESTS_RUST: &str = r#"
fn main() {
    let mut expected: Vec<u64> = vec![0, 1];
    while expected.len() <= 90 {
        let next = expected[expected.len() - 1] + expected[expected.len() - 2];
        expected.push(next);
    }
    for n in (0..=30).chain([90]) {
        assert_eq!(candidate(n) as u64, expected[n as usize], "fib({n})");
        assert!(candidate(n) as u64 == expected[n as usize], "fib({n}) again");
    }
}
"#;

#[test]
fn a_rust_answer_cannot_redefine_the_asserting_macros() {
    if !sandbox_ready() {
        return;
    }
    for trick in [
        "macro_rules! assert_eq { ($($t:tt)*) => {} }\nmacro_rules! assert { ($($t:tt)*) => {} }",
        "#[macro_export]\nmacro_rules! assert_eq { ($($t:tt)*) => {} }\n#[macro_export]\nmacro_rules! assert { ($($t:tt)*) => {} }",
        "macro_rules! panic { ($($t:tt)*) => {} }\nmacro_rules! vec { ($($t:tt)*) => { Vec::new() } }",
    ] {
        let answer = format!("```rust\n{trick}\n\nfn fib(n: u64) -> u64 {{ n }}\n```");
        answer_fails(
            Language::Rust,
            &answer,
            FIBONACCI_TESTS_RUST,
            "panicked at main.rs",
        );
    }
    // Each macro alone: the tests call both.
    let assert_only = "```rust\nmacro_rules! assert { ($($t:tt)*) => {} }\n\nfn fib(n: u64) -> u64 { if n == 2 { 0 } else { n } }\n```";
    answer_fails(Language::Rust, assert_only, FIBONACCI_TESTS_RUST, "fib(2)");
}

#[test]
fn a_rust_answer_that_exits_early_fails() {
    if !sandbox_ready() {
        return;
    }
    let answer = "```rust\nfn fib(n: u64) -> u64 {\n    std::process::exit(0)\n}\n```";
    unfinished(
        Language::Rust,
        answer,
        FIBONACCI_TESTS_RUST,
        "the tests did not finish: the process exited with 0 before the end-of-tests marker",
    );
    // Tests whose `main` returns an error fail with it.
    let correct = "```rust\nfn fib(n: u64) -> u64 { if n < 2 { n } else { let (mut a, mut b) = (0, 1); for _ in 0..n { (a, b) = (b, a + b); } a } }\n```";
    let tests = "fn main() -> Result<(), String> {\n    if candidate(10) == 55 { Err(\"deliberately\".into()) } else { Ok(()) }\n}\n";
    answer_fails(
        Language::Rust,
        correct,
        tests,
        "exit code 1: Error: \"deliberately\"",
    );
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
            // A program of one's own has no tests to finish.
            assert_eq!(execution.tests_finished, None);
        }
        Err(versus_sandbox::SandboxError::ToolchainUnreachable { .. }) => {}
        Err(error) => panic!("{error}"),
    }
}

#[test]
fn forked_children_share_one_memory_budget() {
    // Six forked children each held 900 MiB: RLIMIT_AS caps each process, not the run. Now the
    // run has a total (a cgroup v2 memory.max, or a process limit standing in for it), and the
    // result says which.
    if !sandbox_ready() {
        return;
    }
    let _alone = lingering();
    let limits = Limits {
        wall: Duration::from_secs(20),
        total_memory_bytes: 2 * 1024 * 1024 * 1024,
        ..Limits::default()
    };
    let source = "import os, sys, time\n\
        held = 0\n\
        children = []\n\
        for _ in range(6):\n\
        \x20   try:\n\
        \x20       pid = os.fork()\n\
        \x20   except OSError:\n\
        \x20       break\n\
        \x20   if pid == 0:\n\
        \x20       try:\n\
        \x20           block = b'x' * (600 * 2**20)\n\
        \x20           time.sleep(1)\n\
        \x20           os._exit(0)\n\
        \x20       except MemoryError:\n\
        \x20           os._exit(1)\n\
        \x20   children.append(pid)\n\
        for pid in children:\n\
        \x20   _, status = os.waitpid(pid, 0)\n\
        \x20   if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:\n\
        \x20       held += 1\n\
        print('held', held, flush=True)\n";
    let execution = execute(Language::Python, source, &limits);
    let cap = execution.memory_cap.clone().unwrap_or_default();
    assert!(
        cap.starts_with("cgroup v2 memory.max: 2 GiB") || cap.contains("within the 2 GiB budget"),
        "{execution:#?}"
    );
    let held: u64 = execution
        .stdout
        .trim()
        .strip_prefix("held ")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{execution:#?}"));
    assert!(
        held * 600 <= 2048,
        "{held} children held 600 MiB each under a 2 GiB budget\n{execution:#?}"
    );
}

#[test]
fn dev_and_dev_shm_are_size_capped() {
    // In user-namespace mode /dev and /dev/shm were uncapped tmpfs (600 MiB each written).
    if !sandbox_ready() {
        return;
    }
    let source = "written = 0\n\
        try:\n\
        \x20   for i in range(40):\n\
        \x20       with open(f'/dev/shm/f{i}', 'wb') as f:\n\
        \x20           f.write(b'x' * (15 * 2**20))\n\
        \x20       written += 15\n\
        except OSError as e:\n\
        \x20   print('shm refused after', written, 'MiB', flush=True)\n\
        try:\n\
        \x20   with open('/dev/big', 'wb') as f:\n\
        \x20       f.write(b'x' * (2 * 2**20))\n\
        \x20   print('dev took 2 MiB')\n\
        except OSError:\n\
        \x20   print('dev refused')\n\
        with open('/dev/null', 'w') as f:\n\
        \x20   f.write('still works')\n\
        import os\n\
        print(len(os.urandom(8)))\n";
    let execution = execute(Language::Python, source, &quick());
    assert!(execution.passed, "{execution:#?}");
    let refused_after: u64 = execution
        .stdout
        .lines()
        .find_map(|line| line.strip_prefix("shm refused after "))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("/dev/shm took 600 MiB\n{execution:#?}"));
    assert!(refused_after <= 256, "{refused_after} MiB");
    assert!(execution.stdout.contains("dev refused"), "{execution:#?}");
    assert!(
        execution.stdout.contains("\n8\n") || execution.stdout.ends_with("8\n"),
        "{execution:#?}"
    );
}
